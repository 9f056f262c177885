//! A `url` server: the demo server serving streamable HTTP on 127.0.0.1, reached with a token
//! from the environment — listed and called through the same gate, the token never shown even
//! when the server echoes it, and a wrong token, a missing one and a server that went away each
//! marked down with its reason.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use super::*;

/// The demo server on HTTP, killed with the test.
struct HttpDemo {
    child: Child,
    url: String,
}

impl Drop for HttpDemo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the demo server on 127.0.0.1 (a port of its choosing), wanting `token` when given.
fn http_demo(token: Option<&str>) -> HttpDemo {
    let mut cmd = Command::new(demo_server());
    cmd.args(["--http", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env_remove("DEMO_TOKEN");
    if let Some(t) = token {
        cmd.env("DEMO_TOKEN", t);
    }
    let mut child = cmd.spawn().expect("start the demo server");
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

/// A `url` entry for `url`, its token in variable `var`.
fn remote(url: &str, var: Option<&str>) -> McpServerConfig {
    demo(|c| {
        c.name = "remote".into();
        c.command = String::new();
        c.args = Vec::new();
        c.url = Some(url.into());
        c.bearer_env = var.map(str::to_string);
        c.timeout_ms = 3_000;
    })
}

fn allowing(url: &str) -> impl FnOnce(&mut VeyraConfig) {
    let port = url::Url::parse(url).unwrap().port().unwrap();
    move |c: &mut VeyraConfig| c.tools.mcp_allow = vec![format!("127.0.0.1:{port}")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_server_is_listed_and_called_through_the_gate_and_a_hang_is_not_called_again() {
    let server = http_demo(None);
    let (core, _ws) = mcp_core(vec![remote(&server.url, None)], allowing(&server.url));
    core.mcp_ready().await;
    let status = &core.mcp_servers()[0];
    assert_eq!(status.state, McpState::Up, "{status:?}");
    assert_eq!(status.tools, 11);
    assert_eq!(status.pid, None, "Veyra started no process for it");
    let out = core
        .invoke_tool(
            "mcp:remote:echo",
            json!({ "text": "over http" }),
            "operator",
        )
        .await
        .unwrap();
    assert_eq!(content(&out), "over http");
    // The call passed the gate like any other.
    let calls = entries(&core, AuditEventType::ToolInvocation);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].resource, "tool:mcp:remote:echo");
    // Without bearer_env no token is sent.
    let out = core
        .invoke_tool("mcp:remote:authorization", json!({}), "operator")
        .await
        .unwrap();
    assert_eq!(content(&out), "none");
    // A call that never answers is not made again: it fails, and the session is started over.
    let before = core
        .invoke_tool("mcp:remote:count", json!({}), "operator")
        .await
        .unwrap();
    let hung = core
        .invoke_tool("mcp:remote:hang", json!({}), "operator")
        .await
        .unwrap_err();
    assert!(hung.to_string().contains("may have acted"), "{hung}");
    until(&core, "remote", |s| {
        s.restarts >= 1 && s.state == McpState::Up
    })
    .await;
    let after = core
        .invoke_tool("mcp:remote:count", json!({}), "operator")
        .await
        .unwrap();
    // The server counts every call it answered: echo, authorization, count, hang (never
    // answered, counted once), then this count — the hang was sent exactly once.
    assert_eq!(content(&before), "3");
    assert_eq!(content(&after), "5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_and_a_server_gone_are_each_down_with_a_reason() {
    let server = http_demo(Some("tok-Right-0123456789abcdef"));
    let (core, _ws) = mcp_core(
        vec![
            remote(&server.url, None),
            McpServerConfig {
                name: "unset".into(),
                ..remote(&server.url, Some("VEYRA_TEST_MCP_TOKEN_NEVER_SET"))
            },
        ],
        allowing(&server.url),
    );
    core.mcp_ready().await;
    let servers = core.mcp_servers();
    // No token where the server wants one: refused at the handshake.
    let refused = servers.iter().find(|s| s.name == "remote").unwrap();
    assert_eq!(refused.state, McpState::Down, "{refused:?}");
    let why = refused.detail.clone().unwrap_or_default();
    assert!(why.contains("handshake"), "{why}");
    let unset = servers.iter().find(|s| s.name == "unset").unwrap();
    let why = unset.detail.clone().unwrap_or_default();
    assert!(
        why.contains("VEYRA_TEST_MCP_TOKEN_NEVER_SET") && why.contains("not set"),
        "{why}"
    );
    // A call to a server that is down says so, and nothing is sent.
    let err = core
        .invoke_tool("mcp:remote:echo", json!({ "text": "x" }), "operator")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("mcp server 'remote'"), "{err}");
    drop(core);
    // Up, then the server goes away: the call fails, and the server is marked down.
    let server = http_demo(None);
    let (core, _ws) = mcp_core(vec![remote(&server.url, None)], allowing(&server.url));
    core.mcp_ready().await;
    assert_eq!(core.mcp_servers()[0].state, McpState::Up);
    drop(server);
    let err = core
        .invoke_tool("mcp:remote:echo", json!({ "text": "x" }), "operator")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("mcp server 'remote'"), "{err}");
    until(&core, "remote", |s| s.state == McpState::Down).await;
}
