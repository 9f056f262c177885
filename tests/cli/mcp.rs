//! Tools from an MCP server through the real binary, against the server built in this
//! repository (`examples/mcp_server.rs`, built by `cargo test`): listed with the server's
//! state, called through the gate, an API key that is neither inherited nor echoed, the
//! server's stderr kept off Veyra's, a crash named, and `veyra health` failing on a server that
//! does not start.

use std::path::PathBuf;

use super::{Sandbox, assert_error, run};

/// The demo server, built beside the binary under test.
fn demo_server() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_veyra"));
    let path = bin
        .parent()
        .expect("the binary is in target/<profile>")
        .join("examples")
        .join("mcp_server");
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds it, or `cargo build --example mcp_server`",
        path.display()
    );
    path
}

impl Sandbox {
    /// A configuration naming the demo server as `demo` (and `extra` lines under it).
    fn mcp_config(&self, extra: &str) -> PathBuf {
        let path = self.work().join("mcp.yaml");
        std::fs::write(
            &path,
            format!(
                "model:\n  api_key_env: TEST_MODEL_KEY\ntools:\n  mcp_servers:\n    - name: demo\n      command: {}\n      args: [--stderr-noise]\n      reversible: [echo]\n      timeout_ms: 10000\n{extra}",
                demo_server().display()
            ),
        )
        .expect("write the config");
        path
    }

    fn mcp(&self, config: &std::path::Path, args: &[&str]) -> super::Run {
        let mut cmd = self.cmd();
        cmd.env("TEST_MODEL_KEY", "sk-live-model-key-0123456789")
            .arg("--config")
            .arg(config)
            .args(args);
        run(cmd)
    }
}

#[test]
fn an_mcp_servers_tools_are_listed_and_called_through_the_gate() {
    let sb = Sandbox::new();
    let config = sb.mcp_config("");
    let list = sb.mcp(&config, &["tools", "list"]);
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    assert!(
        list.stdout.contains("mcp:demo:echo") && list.stdout.contains("external"),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout.contains("mcp demo: up (11 tools"),
        "{}",
        list.stdout
    );
    let call = sb.mcp(
        &config,
        &["tools", "invoke", "mcp:demo:echo", "--arg", "text=hello"],
    );
    assert_eq!(call.code, Some(0), "{}", call.stderr);
    assert_eq!(call.stdout, "hello\n");
    // The server's own stderr ("call 1: echo" in red) never reaches Veyra's.
    assert!(!call.stderr.contains("call 1"), "{}", call.stderr);
    let bad = sb.mcp(
        &config,
        &[
            "tools",
            "invoke",
            "mcp:demo:add",
            "--arg",
            "a=1",
            "--arg",
            "b=x",
        ],
    );
    assert_error(&bad, 2, &["argument 'b'"]);
    let unknown = sb.mcp(
        &config,
        &["tools", "invoke", "mcp:demo:ech", "--arg", "text=x"],
    );
    assert_error(
        &unknown,
        2,
        &["offers no tool 'ech'", "did you mean 'echo'"],
    );
    let crash = sb.mcp(&config, &["tools", "invoke", "mcp:demo:crash"]);
    assert_error(&crash, 1, &["mcp server 'demo' is down"]);
    // Each call is one TOOL_INVOCATION entry, the log verifies.
    let audit = sb.audit_json();
    assert_eq!(audit.matches("\"TOOL_INVOCATION\"").count(), 2, "{audit}");
    let mut verify = sb.cmd();
    verify.args(["audit", "verify"]);
    assert_eq!(run(verify).code, Some(0));
}

#[test]
fn veyras_api_key_is_neither_inherited_nor_echoed_back() {
    let sb = Sandbox::new();
    // Not named in env_pass: the server does not have it.
    let config = sb.mcp_config("");
    let call = sb.mcp(
        &config,
        &[
            "tools",
            "invoke",
            "mcp:demo:env",
            "--arg",
            "name=TEST_MODEL_KEY",
        ],
    );
    assert_eq!(call.code, Some(0), "{}", call.stderr);
    assert_eq!(call.stdout, "unset\n");
    // Named: the server has it, and echoing it back gets it scrubbed.
    let config = sb.mcp_config("      env_pass: [TEST_MODEL_KEY]\n");
    let call = sb.mcp(
        &config,
        &[
            "tools",
            "invoke",
            "mcp:demo:env",
            "--arg",
            "name=TEST_MODEL_KEY",
        ],
    );
    assert_eq!(call.code, Some(0), "{}", call.stderr);
    assert_eq!(call.stdout, "[redacted]\n");
    assert!(!sb.audit_json().contains("sk-live-model-key"));
    let shown = sb.mcp(&config, &["config", "show"]);
    assert!(
        !shown.stdout.contains("sk-live-model-key"),
        "{}",
        shown.stdout
    );
}

#[test]
fn a_server_that_does_not_start_makes_health_fail_and_names_it() {
    let sb = Sandbox::new();
    let config = sb.mcp_config(
        "    - name: broken\n      command: /nonexistent/mcp-server\n      timeout_ms: 2000\n",
    );
    let health = sb.mcp(&config, &["health"]);
    assert_eq!(health.code, Some(1), "{}\n{}", health.stdout, health.stderr);
    assert!(health.stdout.contains("mcp demo: up"), "{}", health.stdout);
    assert!(
        health
            .stdout
            .contains("mcp broken: down: it could not be started"),
        "{}",
        health.stdout
    );
    let call = sb.mcp(&config, &["tools", "invoke", "mcp:broken:anything"]);
    assert_error(&call, 2, &["mcp server 'broken' is down"]);
    // A bad entry is a configuration error naming the field.
    let bad = sb.mcp_config("    - name: Bad Name\n      command: x\n");
    let r = sb.mcp(&bad, &["tools", "list"]);
    assert_error(&r, 2, &["tools.mcp_servers[1].name"]);
}

#[test]
fn health_reports_a_serving_runtimes_own_servers() {
    let sb = Sandbox::new();
    let config = sb.mcp_config(
        "    - name: broken\n      command: /nonexistent/mcp-server\n      timeout_ms: 2000\n",
    );
    let _serving =
        super::serve::serve_with(&sb, &[std::ffi::OsStr::new("--config"), config.as_os_str()]);
    // The runtime starts its servers as it comes up: asked until it has tried both.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let health = loop {
        let h = sb.mcp(&config, &["health"]);
        let settled = h.stdout.contains("mcp demo: up") && h.stdout.contains("mcp broken: down");
        if settled || std::time::Instant::now() > deadline {
            break h;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        health.stdout.contains("mcp servers: as "),
        "{}",
        health.stdout
    );
    assert!(health.stdout.contains("mcp demo: up"), "{}", health.stdout);
    assert!(
        health
            .stdout
            .contains("mcp broken: down: it could not be started"),
        "{}",
        health.stdout
    );
    assert_eq!(health.code, Some(1), "a server that is down is unhealthy");
    // `tools list` and `describe` ask the runtime too.
    let list = sb.mcp(&config, &["tools", "list"]);
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    assert!(list.stdout.contains("mcp:demo:echo"), "{}", list.stdout);
    assert!(list.stdout.contains("mcp servers: as "), "{}", list.stdout);
    let described = sb.mcp(&config, &["tools", "describe", "mcp:demo:add"]);
    assert_eq!(described.code, Some(0), "{}", described.stderr);
    assert!(
        described.stdout.contains("\"required\""),
        "{}",
        described.stdout
    );
    let unknown = sb.mcp(&config, &["tools", "describe", "mcp:demo:ech"]);
    assert_error(
        &unknown,
        2,
        &["on the runtime", "did you mean 'mcp:demo:echo'"],
    );
}

/// The demo server on streamable HTTP at 127.0.0.1, wanting `token`; killed with the test.
struct HttpDemo {
    child: std::process::Child,
    url: String,
}

impl Drop for HttpDemo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_demo(token: &str) -> HttpDemo {
    use std::io::BufRead;
    let mut child = std::process::Command::new(demo_server())
        .args(["--http", "127.0.0.1:0"])
        .env("DEMO_TOKEN", token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the demo server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("its first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the demo server said: {line}"))
        .to_string();
    HttpDemo { child, url }
}

#[test]
fn a_url_server_gets_its_token_from_the_environment_and_never_shows_it() {
    let token = "tok-Remote-Secret-0123456789abcdef";
    let server = http_demo(token);
    let port = server
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let sb = Sandbox::new();
    let config = sb.write(
        "remote.yaml",
        &format!(
            "tools:\n  mcp_allow: ['127.0.0.1:{port}']\n  mcp_servers:\n    - name: remote\n      url: {}\n      bearer_env: REMOTE_MCP_TOKEN\n      timeout_ms: 5000\n",
            server.url
        ),
    );
    let with = |token: &str, args: &[&str]| {
        let mut cmd = sb.cmd();
        cmd.env("REMOTE_MCP_TOKEN", token)
            .arg("--config")
            .arg(&config)
            .args(args);
        run(cmd)
    };
    let health = with(token, &["health"]);
    assert_eq!(health.code, Some(0), "{}{}", health.stdout, health.stderr);
    assert!(
        health.stdout.contains("mcp remote: up (11 tools"),
        "{}",
        health.stdout
    );
    let said = with(
        token,
        &[
            "tools",
            "invoke",
            "mcp:remote:echo",
            "--arg",
            "text=over http",
            "--yes",
        ],
    );
    assert_eq!(said.code, Some(0), "{}", said.stderr);
    assert!(said.stdout.contains("over http"), "{}", said.stdout);
    // The server says back the header it got: the token never reaches the screen.
    let echoed = with(
        token,
        &["tools", "invoke", "mcp:remote:authorization", "--yes"],
    );
    assert_eq!(echoed.code, Some(0), "{}", echoed.stderr);
    assert!(!echoed.stdout.contains(token), "{}", echoed.stdout);
    assert!(echoed.stdout.contains("[redacted]"), "{}", echoed.stdout);
    // A wrong token: the server refuses the handshake; down, with a reason, and exit 1.
    let wrong = "tok-Wrong-Secret-0123456789abcdef";
    let health = with(wrong, &["health"]);
    assert_eq!(health.code, Some(1), "{}{}", health.stdout, health.stderr);
    assert!(
        health.stdout.contains("mcp remote: down"),
        "{}",
        health.stdout
    );
    for text in [&health.stdout, &health.stderr] {
        assert!(!text.contains(wrong) && !text.contains(token), "{text}");
    }
    // A host not on tools.mcp_allow is refused by the configuration, naming the key.
    let elsewhere = sb.write(
        "elsewhere.yaml",
        "tools:\n  mcp_servers:\n    - name: remote\n      url: https://mcp.example.com/mcp\n",
    );
    let mut cmd = sb.cmd();
    cmd.arg("--config").arg(&elsewhere).arg("health");
    assert_error(
        &run(cmd),
        2,
        &["tools.mcp_servers[0].url", "not on tools.mcp_allow"],
    );
}
