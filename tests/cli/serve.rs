//! One runtime, many clients, through the binary: `veyra serve`, `veyra run` attached to it,
//! `veyra attach --stdio` through a pipe pair, a killed runtime and the socket it left.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{Sandbox, run};

/// A `veyra serve` the test started, killed if the test ends early.
pub(super) struct Serving {
    pub(super) child: Child,
    pub(super) socket: PathBuf,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `veyra serve` in `sb` and waits for its socket.
pub(super) fn serve(sb: &Sandbox) -> Serving {
    let mut child = sb
        .std_cmd()
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start veyra serve");
    let stderr = child.stderr.take().expect("piped stderr");
    // The first line names the socket.
    let mut line = String::new();
    BufReader::new(stderr)
        .read_line(&mut line)
        .expect("read veyra serve's first line");
    let socket = line
        .split(" on ")
        .nth(1)
        .and_then(|rest| rest.split(" (pid").next())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("veyra serve said: {line}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "no socket at {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Serving { child, socket }
}

#[test]
fn veyra_run_attaches_to_a_serving_runtime_and_a_killed_one_is_replaced() {
    let sb = Sandbox::new();
    let mut serving = serve(&sb);
    let pid = serving.child.id();
    assert!(
        serving
            .socket
            .starts_with(sb.dir.path().join("run").join("veyra")),
        "{}",
        serving.socket.display()
    );
    // The socket is the user's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&serving.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // Attached: the answer on stdout, where it ran on stderr.
    let mut cmd = sb.cmd();
    cmd.args(["run", "ping from a second shell"]);
    let attached = run(cmd);
    assert_eq!(attached.code, Some(0), "{}", attached.stderr);
    assert!(
        attached.stdout.contains("ping from a second shell"),
        "{}",
        attached.stdout
    );
    assert!(
        attached.stderr.contains(&format!("attached to pid {pid}")),
        "{}",
        attached.stderr
    );
    // --standalone hosts its own runtime: the store has one writer, so it is refused.
    let mut cmd = sb.cmd();
    cmd.args(["run", "--standalone", "hi"]);
    let alone = run(cmd);
    assert_eq!(alone.code, Some(1), "{}", alone.stderr);
    assert!(
        alone.stderr.contains("in use by another Veyra process"),
        "{}",
        alone.stderr
    );

    // The protocol through a pipe pair, as ssh carries it.
    let mut relay = sb
        .std_cmd()
        .args(["attach", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start veyra attach --stdio");
    {
        let mut stdin = relay.stdin.take().expect("piped stdin");
        writeln!(
            stdin,
            r#"{{"type":"hello","protocol":"veyra.rpc/1","client":"pipe","events":false}}"#
        )
        .unwrap();
        writeln!(
            stdin,
            r#"{{"type":"request","id":7,"command":{{"command":"status"}}}}"#
        )
        .unwrap();
        // Closing our side ends the session once the runtime has answered.
    }
    let out = relay.wait_with_output().expect("veyra attach --stdio ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0]["type"], "welcome", "{stdout}");
    assert_eq!(lines[0]["runtime"]["pid"], pid, "{stdout}");
    assert_eq!(lines[0]["you"]["transport"], "stdio", "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "response" && l["id"] == 7 && l["ok"]["reply"] == "status"),
        "{stdout}"
    );

    // Killed: the socket stays behind, and the next run is not fooled by it.
    serving.child.kill().unwrap();
    serving.child.wait().unwrap();
    assert!(
        serving.socket.exists(),
        "a killed runtime leaves its socket"
    );
    let mut cmd = sb.cmd();
    cmd.args(["run", "after the runtime died"]);
    let hosted = run(cmd);
    assert_eq!(hosted.code, Some(0), "{}", hosted.stderr);
    assert!(!hosted.stderr.contains("attached"), "{}", hosted.stderr);
    // No runtime to relay to: the far client hears why, in the protocol.
    let mut cmd = sb.cmd();
    cmd.args(["attach", "--stdio"]).write_stdin("");
    let none = run(cmd);
    assert_eq!(none.code, Some(1));
    assert!(
        none.stdout.contains(r#""type":"refused""#),
        "{}",
        none.stdout
    );
    assert!(none.stdout.contains("veyra serve"), "{}", none.stdout);

    // One trail, written by three processes in turn, that verifies.
    let mut cmd = sb.cmd();
    cmd.args(["audit", "verify"]);
    let verified = run(cmd);
    assert_eq!(
        verified.code,
        Some(0),
        "{}{}",
        verified.stdout,
        verified.stderr
    );
    // A new runtime replaces the stale socket and serves again.
    let again = serve(&sb);
    assert_eq!(again.socket, serving.socket);
    let mut cmd = sb.cmd();
    cmd.args(["run", "hello again"]);
    let attached = run(cmd);
    assert!(
        attached
            .stderr
            .contains(&format!("attached to pid {}", again.child.id())),
        "{}",
        attached.stderr
    );
}

#[test]
fn rpc_schema_prints_both_directions() {
    let sb = Sandbox::new();
    let mut cmd = sb.cmd();
    cmd.args(["rpc", "schema"]);
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(schema["protocol"], "veyra.rpc/1");
    assert!(schema["client"]["oneOf"].is_array() || schema["client"]["anyOf"].is_array());
    assert!(schema["server"].is_object());
}

#[test]
fn tools_go_through_a_serving_runtime_and_answer_only_their_own_question() {
    let sb = Sandbox::new();
    let ws = sb.workspace();
    let serving = serve(&sb);
    let pid = serving.child.id();
    let r = sb.tools(&[
        "invoke",
        "file_write",
        "--arg",
        "path=notes.txt",
        "--arg",
        "content=kept",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("attached to pid {pid}")),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("notes.txt")).unwrap(),
        "kept"
    );
    // A delete always asks: with no terminal the answer is no (exit 4), the file stays.
    let r = sb.tools(&["invoke", "file_delete", "--arg", "path=notes.txt"]);
    assert_eq!(r.code, Some(4), "{}{}", r.stdout, r.stderr);
    assert!(ws.join("notes.txt").exists());
    // --yes answers its own question.
    let r = sb.tools(&["invoke", "file_delete", "--arg", "path=notes.txt", "--yes"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!ws.join("notes.txt").exists());
    // And the undo goes through the runtime too: the file is back.
    let r = sb.tools(&["undo", "--yes", "--json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let outcome: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(outcome["tool"], "file_delete", "{}", r.stdout);
    assert_eq!(
        std::fs::read_to_string(ws.join("notes.txt")).unwrap(),
        "kept"
    );
    // Every call is in the runtime's one trail, naming the client that asked.
    drop(serving);
    let entries = sb.audit_json();
    let invocations: Vec<serde_json::Value> = entries
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["event_type"] == "TOOL_INVOCATION")
        .collect();
    assert!(invocations.len() >= 3, "{entries}");
    for e in &invocations {
        assert_eq!(e["metadata"]["client"]["transport"], "unix", "{e}");
    }
    sb.assert_audit_verifies();
}
