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
    serve_with(sb, &[])
}

/// [`serve`] with global flags before `serve` (`--config FILE`).
pub(super) fn serve_with(sb: &Sandbox, flags: &[&std::ffi::OsStr]) -> Serving {
    let mut child = sb
        .std_cmd()
        .args(flags)
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

/// A `veyra attach --stdio` session that asked for events: the lines it reads, one by one.
struct Watcher {
    child: Child,
    _stdin: std::process::ChildStdin,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Watcher {
    fn start(sb: &Sandbox) -> Watcher {
        let mut child = sb
            .std_cmd()
            .args(["attach", "--stdio"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start veyra attach --stdio");
        let mut stdin = child.stdin.take().expect("piped stdin");
        writeln!(
            stdin,
            r#"{{"type":"hello","protocol":"veyra.rpc/1","client":"watcher","events":true}}"#
        )
        .unwrap();
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut watcher = Watcher {
            child,
            _stdin: stdin,
            lines,
        };
        watcher.until(|l| l["type"] == "live");
        watcher
    }

    /// Reads lines until one satisfies `pred`, and returns it with those before it.
    fn until(
        &mut self,
        mut pred: impl FnMut(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        let mut seen = Vec::new();
        for line in self.lines.by_ref() {
            let line = line.expect("read the relay");
            let value: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let done = pred(&value);
            seen.push(value);
            if done {
                return seen;
            }
        }
        panic!("the relay ended first: {seen:?}");
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn veyra_bench_runs_on_a_serving_runtime_and_an_attached_client_watches_it() {
    let sb = Sandbox::new();
    let serving = serve(&sb);
    let pid = serving.child.id();
    let mut watcher = Watcher::start(&sb);
    let mut cmd = sb.cmd();
    cmd.args([
        "bench", "--family", "cplc", "--count", "3", "--seed", "5", "--json",
    ]);
    let bench = run(cmd);
    assert_eq!(bench.code, Some(0), "{}", bench.stderr);
    assert!(
        bench.stderr.contains(&format!("attached to pid {pid}")),
        "{}",
        bench.stderr
    );
    let doc: serde_json::Value = serde_json::from_str(&bench.stdout).unwrap();
    let id = doc["run"]["id"].as_str().unwrap().to_string();
    assert_eq!(doc["tasks"].as_array().unwrap().len(), 3);
    assert_eq!(doc["run"]["status"], "complete");
    // The watcher saw the run begin, asked by the bench process, its three items, its end.
    let seen = watcher.until(|l| l["type"] == "bench" && l["news"]["news"] == "ended");
    let news: Vec<&serde_json::Value> = seen
        .iter()
        .filter(|l| l["type"] == "bench")
        .map(|l| &l["news"])
        .collect();
    assert_eq!(news[0]["news"], "began", "{news:?}");
    assert!(news[0]["by"].as_str().unwrap().contains("unix"), "{news:?}");
    let items = news
        .iter()
        .filter(|n| n["progress"]["step"] == "task_finished")
        .count();
    assert_eq!(items, 3, "{news:?}");
    assert_eq!(news.last().unwrap()["run"]["id"], id.as_str());
    // `bench show` reads the same run from the store.
    let mut cmd = sb.cmd();
    cmd.args(["bench", "show", &id]);
    let shown = run(cmd);
    assert_eq!(shown.code, Some(0), "{}", shown.stderr);
    // A cassette needs a runtime of its own: refused while one serves the store, saying which.
    let mut cmd = sb.cmd();
    cmd.args(["bench", "--family", "cplc", "--count", "2", "--record"])
        .arg(sb.work().join("cassette"));
    let refused = run(cmd);
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!("pid {pid}")),
        "{}",
        refused.stderr
    );
    // One audit trail that verifies, with the run's items on it.
    let mut cmd = sb.cmd();
    cmd.args(["audit", "verify"]);
    let verified = run(cmd);
    assert_eq!(verified.code, Some(0), "{}", verified.stderr);
}

#[test]
fn ctrl_c_on_an_attached_veyra_bench_cancels_the_runtimes_run_and_resume_finishes_it() {
    let sb = Sandbox::new();
    let config = sb.write(
        "slow.yaml",
        "model:\n  mock:\n    token_delay_ms: 15\nruntime:\n  max_concurrent: 2\n",
    );
    let serving = serve_with(&sb, &["--config".as_ref(), config.as_os_str()]);
    let mut watcher = Watcher::start(&sb);
    let child = sb
        .std_cmd()
        .args(["bench", "--family", "cplc", "--count", "40", "--seed", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start veyra bench");
    // Once two items finished, Ctrl-C.
    let mut finished = 0;
    watcher.until(|l| {
        l["news"]["progress"]["step"] == "task_finished" && {
            finished += 1;
            finished >= 2
        }
    });
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("send the signal");
    assert!(kill.success());
    let out = child.wait_with_output().expect("veyra bench ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let ended = watcher.until(|l| l["news"]["news"] == "ended");
    let ended = &ended.last().unwrap()["news"];
    assert_eq!(ended["run"]["status"], "cancelled", "{ended}");
    let id = ended["run"]["id"].as_str().unwrap().to_string();
    // The runtime serves on, and finishes the run when asked.
    let mut cmd = sb.cmd();
    cmd.args(["bench", "--resume", &id, "--json"]);
    let resumed = run(cmd);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    let doc: serde_json::Value = serde_json::from_str(&resumed.stdout).unwrap();
    assert_eq!(doc["run"]["status"], "complete");
    drop(serving);
}

/// One request over `veyra attach --stdio` (no events), and its response line.
fn request_over_stdio(sb: &Sandbox, command: &str) -> serde_json::Value {
    let mut relay = sb
        .std_cmd()
        .args(["attach", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start veyra attach --stdio");
    {
        let mut stdin = relay.stdin.take().expect("piped stdin");
        writeln!(
            stdin,
            r#"{{"type":"hello","protocol":"veyra.rpc/1","client":"pipe","events":false}}"#
        )
        .unwrap();
        writeln!(stdin, r#"{{"type":"request","id":1,"command":{command}}}"#).unwrap();
    }
    let out = relay.wait_with_output().expect("veyra attach --stdio ends");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["type"] == "response")
        .unwrap_or_else(|| panic!("no response: {stdout}"))
}

#[test]
fn a_serving_runtime_reloads_its_policy_set_audited_and_a_broken_one_changes_nothing() {
    let sb = Sandbox::new();
    let policies = sb.work().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let default =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/policies/default.cedar");
    std::fs::copy(&default, policies.join("default.cedar")).unwrap();
    let config = sb.write(
        "veyra.yaml",
        &format!("governance:\n  policy_file: {}\n", policies.display()),
    );
    let serving = serve_with(&sb, &["--config".as_ref(), config.as_os_str()]);
    // A rule added to the files is in force after the reload: background work is refused.
    std::fs::write(
        policies.join("quiet.cedar"),
        "@id(\"no-background\")\nforbid (principal, action == Veyra::Action::\"execute\", resource)\n\
         when { context has priority && context.priority == \"background\" };\n",
    )
    .unwrap();
    let reloaded = request_over_stdio(&sb, r#"{"command":"reload_policy"}"#);
    let ok = &reloaded["ok"];
    assert_eq!(ok["reply"], "policy_reloaded", "{reloaded}");
    assert_ne!(ok["from"], ok["to"], "{reloaded}");
    let mut cmd = sb.cmd();
    cmd.args(["run", "--priority", "background", "sweep"]);
    let refused = run(cmd);
    assert_eq!(refused.code, Some(4), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("no-background"),
        "{}",
        refused.stderr
    );
    // A broken file: the reload fails, saying where, and the set in force stays.
    std::fs::write(policies.join("broken.cedar"), "permit (principal,").unwrap();
    let failed = request_over_stdio(&sb, r#"{"command":"reload_policy"}"#);
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("broken.cedar"),
        "{failed}"
    );
    let mut cmd = sb.cmd();
    cmd.args(["run", "--priority", "background", "sweep again"]);
    assert_eq!(run(cmd).code, Some(4));
    let mut cmd = sb.cmd();
    cmd.args(["run", "hello"]);
    assert_eq!(run(cmd).code, Some(0));
    // The reload is on the record with both hashes and who asked.
    let mut cmd = sb.cmd();
    cmd.args(["audit", "list", "--json", "--type", "CONFIG_CHANGE"]);
    let list = run(cmd);
    let changes: Vec<serde_json::Value> = list
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "reload_policy")
        .collect();
    let change = changes
        .iter()
        .find(|e| e["outcome"] == "success")
        .unwrap_or_else(|| panic!("{}", list.stdout));
    // The refused attempt is on the record too, with why.
    let refused = changes
        .iter()
        .find(|e| e["outcome"] == "failure")
        .unwrap_or_else(|| panic!("{}", list.stdout));
    assert!(
        refused["metadata"]["error"]
            .as_str()
            .unwrap()
            .contains("broken.cedar"),
        "{refused}"
    );
    assert_eq!(change["metadata"]["to"], ok["to"]);
    assert_eq!(change["metadata"]["from"], ok["from"]);
    assert_eq!(change["metadata"]["client"]["transport"], "stdio");
    drop(serving);
}
