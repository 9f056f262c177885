//! MCP tools against the server built in this repository (`examples/mcp_server.rs`, which
//! `cargo test` builds): listed, called through the gate, and every way a server can go wrong.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use super::{McpServerStatus, McpState};
use crate::config::{McpServerConfig, MockRule, MockToolCall, MockTurn, VeyraConfig};
use crate::core::testing::core_with;
use crate::core::{ExecutionRequest, VeyraCore};
use crate::error::VeyraError;
use crate::governance::{AuditEventType, AuditFilter};

/// The demo server's binary, beside the test binary's directory.
pub(crate) fn demo_server() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let target = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let path = target.join("examples").join("mcp_server");
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds it, or `cargo build --example mcp_server`",
        path.display()
    );
    path
}

fn demo(f: impl FnOnce(&mut McpServerConfig)) -> McpServerConfig {
    let mut c = McpServerConfig {
        name: "demo".into(),
        command: demo_server().display().to_string(),
        url: None,
        bearer_env: None,
        args: vec!["--stderr-noise".into()],
        env: BTreeMap::new(),
        env_pass: Vec::new(),
        cwd: None,
        timeout_ms: 10_000,
        reversible: vec!["echo".into(), "add".into(), "count".into()],
    };
    f(&mut c);
    c
}

fn mcp_core(
    servers: Vec<McpServerConfig>,
    f: impl FnOnce(&mut VeyraConfig),
) -> (VeyraCore, tempfile::TempDir) {
    core_with(|c| {
        c.tools.mcp_servers = servers;
        f(c);
    })
}

/// Waits (at most 30 s, a guard against a hang, not a measure) until `server` is in `state`.
async fn until(core: &VeyraCore, server: &str, ok: impl Fn(&McpServerStatus) -> bool) {
    let wait = async {
        loop {
            if core.mcp_servers().iter().any(|s| s.name == server && ok(s)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .is_err()
    {
        panic!("server {server} never got there: {:?}", core.mcp_servers());
    }
}

fn entries(core: &VeyraCore, t: AuditEventType) -> Vec<crate::governance::AuditEntry> {
    core.audit()
        .unwrap()
        .query(&AuditFilter {
            event_type: Some(t),
            ..AuditFilter::default()
        })
        .unwrap()
}

fn content(out: &crate::core::ToolInvocation) -> String {
    out.output.value["content"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_servers_tools_are_listed_with_their_schemas_and_marks() {
    let (core, _ws) = mcp_core(vec![demo(|_| {})], |_| {});
    core.mcp_ready().await;
    let status = &core.mcp_servers()[0];
    assert_eq!(status.state, McpState::Up, "{status:?}");
    assert_eq!(status.tools, 11);
    assert!(status.pid.is_some());
    let tools = core.tools().list();
    let echo = tools
        .iter()
        .find(|t| t.capability.name == "mcp:demo:echo")
        .expect("echo is listed");
    assert!(
        echo.capability.reversible,
        "marked reversible by the configuration"
    );
    assert_eq!(echo.capability.category.name(), "external");
    assert!(
        echo.capability
            .description
            .starts_with("(from MCP server 'demo')")
    );
    assert_eq!(echo.capability.schema["required"], json!(["text"]));
    let crash = core.tools().describe("mcp:demo:crash").unwrap();
    assert!(!crash.capability.reversible, "irreversible unless marked");
    // The compiled-in tools are still there, and the model is given names it can take.
    assert!(tools.iter().any(|t| t.capability.name == "calculator"));
    assert_eq!(crate::tools::wire_name("mcp:demo:echo"), "mcp__demo__echo");
}

#[tokio::test]
async fn a_call_passes_the_gate_and_is_recorded_without_its_arguments() {
    let (core, _ws) = mcp_core(vec![demo(|_| {})], |_| {});
    let mut events = core.subscribe();
    let out = core
        .invoke_tool(
            "mcp:demo:echo",
            json!({ "text": "the secret plan" }),
            "operator",
        )
        .await
        .unwrap();
    assert_eq!(content(&out), "the secret plan");
    let checks = entries(&core, AuditEventType::PolicyCheck);
    assert!(
        checks
            .iter()
            .any(|e| e.resource == "tool:mcp:demo:echo" && e.outcome == "allow"),
        "{checks:?}"
    );
    let calls = entries(&core, AuditEventType::ToolInvocation);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].resource, "tool:mcp:demo:echo");
    assert!(
        calls[0].input_summary.starts_with("hash:"),
        "{}",
        calls[0].input_summary
    );
    let recorded = serde_json::to_string(&calls[0]).unwrap();
    assert!(!recorded.contains("secret plan"), "{recorded}");
    let mut invoked = false;
    while let Ok(e) = events.try_recv() {
        if let crate::events::Event::ToolInvoked { tool, outcome, .. } = e {
            invoked |= tool == "mcp:demo:echo" && outcome == "success";
        }
    }
    assert!(invoked);
}

#[tokio::test]
async fn arguments_that_do_not_fit_the_schema_never_reach_the_server() {
    let (core, _ws) = mcp_core(vec![demo(|_| {})], |_| {});
    let err = core
        .invoke_tool("mcp:demo:add", json!({ "a": 1, "b": "two" }), "operator")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Usage(m) if m.contains("argument 'b'")),
        "{err}"
    );
    assert!(entries(&core, AuditEventType::ToolInvocation).is_empty());
    // The server answered no call before this one.
    let out = core
        .invoke_tool("mcp:demo:count", json!({}), "operator")
        .await
        .unwrap();
    assert_eq!(content(&out), "1");
}

#[tokio::test]
async fn the_gate_decides_mcp_tools_by_name_server_and_reversibility() {
    // Reversible only: an unmarked tool is refused before it runs, a marked one runs.
    let (core, _ws) = mcp_core(vec![demo(|_| {})], |c| {
        c.governance.reversible_only = true;
    });
    let err = core
        .invoke_tool("mcp:demo:env", json!({ "name": "HOME" }), "operator")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Refused(m) if m.contains("reversible_only")),
        "{err}"
    );
    core.invoke_tool("mcp:demo:echo", json!({ "text": "hi" }), "operator")
        .await
        .unwrap();
    // One entry stops a whole server.
    let (core, _ws) = mcp_core(vec![demo(|_| {})], |c| {
        c.governance.prohibited_operations = vec!["tool:mcp:demo".into()];
    });
    let err = core
        .invoke_tool("mcp:demo:echo", json!({ "text": "hi" }), "operator")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Refused(m) if m.contains("tool:mcp:demo")),
        "{err}"
    );
    let out = core
        .invoke_tool("calculator", json!({ "expression": "1+1" }), "operator")
        .await;
    assert!(out.is_ok(), "other tools are not stopped: {out:?}");
}

#[tokio::test]
async fn a_cedar_forbid_on_one_mcp_tool_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let default = include_str!("../../../configs/policies/default.cedar");
    std::fs::write(
        dir.path().join("policy.cedar"),
        format!(
            "{default}\n@id(\"no-echo\")\nforbid (principal, action == Veyra::Action::\"invoke_tool\", \
             resource == Veyra::Tool::\"mcp:demo:echo\");\n"
        ),
    )
    .unwrap();
    let (core, _ws) = mcp_core(vec![demo(|_| {})], |c| {
        c.governance.policy_file = Some(dir.path().join("policy.cedar"));
    });
    let err = core
        .invoke_tool("mcp:demo:echo", json!({ "text": "hi" }), "operator")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Refused(m) if m.contains("no-echo")),
        "{err}"
    );
    assert!(
        core.invoke_tool("mcp:demo:add", json!({ "a": 1, "b": 2 }), "operator")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn escape_sequences_and_echoed_secrets_never_leave_the_result() {
    let (core, _ws) = mcp_core(
        vec![demo(|c| {
            c.env.insert("DEMO_TOKEN".into(), "tok-4f9a8b7c6d5e".into());
        })],
        |_| {},
    );
    let out = core
        .invoke_tool("mcp:demo:ansi", json!({}), "operator")
        .await
        .unwrap();
    let text = content(&out);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(!text.contains('\u{202e}'), "{text:?}");
    assert!(
        text.contains("plain") && text.contains('\u{241b}'),
        "{text:?}"
    );
    let out = core
        .invoke_tool("mcp:demo:env", json!({ "name": "DEMO_TOKEN" }), "operator")
        .await
        .unwrap();
    assert_eq!(content(&out), crate::config::REDACTED_IN_TEXT);
    // Veyra's own environment is not the server's: nothing but the base variables.
    let out = core
        .invoke_tool(
            "mcp:demo:env",
            json!({ "name": "CARGO_MANIFEST_DIR" }),
            "operator",
        )
        .await
        .unwrap();
    assert_eq!(content(&out), "unset");
}

#[tokio::test]
async fn a_large_result_is_cut_and_says_so() {
    let (core, _ws) = mcp_core(vec![demo(|_| {})], |_| {});
    let out = core
        .invoke_tool("mcp:demo:big", json!({ "kib": 200 }), "operator")
        .await
        .unwrap();
    let text = content(&out);
    assert!(
        text.len() <= super::tool::MAX_RESULT_BYTES + 32,
        "{}",
        text.len()
    );
    assert!(text.ends_with("[cut at 64 KiB]"));
    assert!(
        out.output.summary.contains("(cut)"),
        "{}",
        out.output.summary
    );
}

#[tokio::test]
async fn a_crash_mid_call_fails_the_call_once_and_the_server_comes_back() {
    let (core, _ws) = mcp_core(vec![demo(|_| {})], |_| {});
    core.mcp_ready().await;
    let first_pid = core.mcp_servers()[0].pid;
    let err = core
        .invoke_tool("mcp:demo:crash", json!({}), "operator")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Task { message, .. } if message.contains("mcp server 'demo' is down")),
        "{err}"
    );
    // Recorded once, as a failure.
    let calls = entries(&core, AuditEventType::ToolInvocation);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].outcome, "failure");
    until(&core, "demo", |s| {
        s.state == McpState::Down || s.restarts > 0
    })
    .await;
    until(&core, "demo", |s| {
        s.state == McpState::Up && s.restarts >= 1
    })
    .await;
    let status = &core.mcp_servers()[0];
    assert_ne!(status.pid, first_pid);
    // A fresh process: the crashed call is not run again.
    let out = core
        .invoke_tool("mcp:demo:count", json!({}), "operator")
        .await
        .unwrap();
    assert_eq!(content(&out), "1");
}

#[tokio::test]
async fn a_hung_call_times_out_and_the_server_is_restarted() {
    let (core, _ws) = mcp_core(vec![demo(|c| c.timeout_ms = 400)], |_| {});
    core.mcp_ready().await;
    let err = core
        .invoke_tool("mcp:demo:hang", json!({}), "operator")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Task { message, .. } if message.contains("did not answer within 400 ms")),
        "{err}"
    );
    until(&core, "demo", |s| {
        s.state == McpState::Up && s.restarts >= 1
    })
    .await;
    let out = core
        .invoke_tool("mcp:demo:count", json!({}), "operator")
        .await
        .unwrap();
    assert_eq!(content(&out), "1", "a new process answers");
}

#[tokio::test]
async fn a_server_that_cannot_start_is_down_with_its_reason_and_blocks_nothing() {
    let (core, _ws) = mcp_core(
        vec![demo(|c| c.command = "/nonexistent/mcp-server".into())],
        |_| {},
    );
    core.mcp_ready().await;
    let status = &core.mcp_servers()[0];
    assert_eq!(status.state, McpState::Down);
    let detail = status.detail.clone().unwrap_or_default();
    assert!(detail.contains("could not be started"), "{detail}");
    let err = core
        .invoke_tool("mcp:demo:echo", json!({ "text": "x" }), "operator")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Usage(m) if m.contains("mcp server 'demo' is down")),
        "{err}"
    );
    // The rest of Veyra works.
    let done = core.execute_async(ExecutionRequest::new("hello")).await;
    assert!(done.is_ok(), "{done:?}");
}

#[tokio::test]
async fn a_model_calls_an_mcp_tool_by_the_name_it_was_given() {
    let script = vec![MockRule {
        pattern: "shout".into(),
        response: "the server said {result}".into(),
        fail: None,
        tool_calls: vec![MockTurn::One(MockToolCall {
            name: "mcp__demo__echo".into(),
            arguments: json!({ "text": "HELLO" }),
            raw_arguments: None,
        })],
        repeat: false,
    }];
    let (core, _ws) = mcp_core(vec![demo(|_| {})], |c| c.model.mock.script = script);
    let result = core
        .execute_async(ExecutionRequest::new("shout hello"))
        .await
        .unwrap();
    assert!(result.text.contains("HELLO"), "{}", result.text);
    let calls = entries(&core, AuditEventType::ToolInvocation);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].resource, "tool:mcp:demo:echo");
    assert_eq!(calls[0].actor, "agent");
}

#[tokio::test]
async fn the_servers_end_with_the_core() {
    let (core, ws) = mcp_core(vec![demo(|_| {})], |_| {});
    core.mcp_ready().await;
    let pid = core.mcp_servers()[0].pid.expect("it runs");
    let proc = PathBuf::from(format!("/proc/{pid}"));
    assert!(proc.exists());
    drop(core);
    drop(ws);
    let gone = async {
        // A zombie is reaped by the supervisor; a process that lingers is a bug.
        while std::fs::read_to_string(proc.join("stat")).is_ok_and(|s| !s.contains(") Z ")) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(30), gone)
            .await
            .is_ok(),
        "server {pid} outlived its core"
    );
}

/// True once `pid` is gone (or a zombie nobody reaped yet), waited for at most 30 s.
async fn gone(pid: u32) -> bool {
    let stat = PathBuf::from(format!("/proc/{pid}/stat"));
    let wait = async {
        while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z ")) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .is_ok()
}

#[tokio::test]
async fn overlapping_hung_calls_stop_one_start_and_never_the_next() {
    let (core, _ws) = mcp_core(vec![demo(|c| c.timeout_ms = 400)], |_| {});
    core.mcp_ready().await;
    let (a, b) = tokio::join!(
        core.invoke_tool("mcp:demo:hang", json!({}), "operator"),
        core.invoke_tool("mcp:demo:hang", json!({}), "operator"),
    );
    assert!(a.is_err() && b.is_err());
    until(&core, "demo", |s| {
        s.state == McpState::Up && s.restarts >= 1
    })
    .await;
    // The new start serves: no hang left over from the old one stops it.
    for n in 1..=3 {
        let out = core
            .invoke_tool("mcp:demo:count", json!({}), "operator")
            .await
            .unwrap();
        assert_eq!(content(&out), n.to_string());
    }
    assert_eq!(core.mcp_servers()[0].restarts, 1);
}

#[tokio::test]
async fn a_server_behind_a_wrapper_is_killed_whole_and_a_closed_connection_is_a_fall() {
    // `sh` runs the server as its child, then closes its own output and lingers: once the
    // server crashes nobody holds the pipe, but a process of the start still runs.
    let script = format!("{} ; exec >&- ; exec sleep 600", demo_server().display());
    let (core, _ws) = mcp_core(
        vec![demo(|c| {
            c.command = "sh".into();
            c.args = vec!["-c".into(), script];
        })],
        |_| {},
    );
    core.mcp_ready().await;
    let wrapper = core.mcp_servers()[0].pid.expect("it runs");
    let out = core
        .invoke_tool("mcp:demo:pid", json!({}), "operator")
        .await
        .unwrap();
    let server: u32 = content(&out).parse().unwrap();
    assert_ne!(server, wrapper, "the server is the wrapper's child");
    assert!(
        core.invoke_tool("mcp:demo:crash", json!({}), "operator")
            .await
            .is_err()
    );
    // The connection closed while `sleep` went on: a fall, and the start is stopped whole.
    until(&core, "demo", |s| {
        s.restarts >= 1 && s.state == McpState::Up
    })
    .await;
    assert!(
        gone(wrapper).await,
        "the lingering wrapper {wrapper} was killed"
    );
    // A hung server behind the wrapper is killed with it, not left running.
    let (core2, _ws2) = mcp_core(
        vec![demo(|c| {
            c.command = "sh".into();
            c.args = vec!["-c".into(), format!("{}; true", demo_server().display())];
            c.timeout_ms = 400;
        })],
        |_| {},
    );
    let out = core2
        .invoke_tool("mcp:demo:pid", json!({}), "operator")
        .await
        .unwrap();
    let hung: u32 = content(&out).parse().unwrap();
    assert!(
        core2
            .invoke_tool("mcp:demo:hang", json!({}), "operator")
            .await
            .is_err()
    );
    assert!(
        gone(hung).await,
        "the hung server {hung} was killed with its wrapper"
    );
    drop(core);
}

#[test]
fn an_embedder_calling_execute_twice_finds_the_server_each_time() {
    let script = vec![MockRule {
        pattern: "count".into(),
        response: "count is {result}".into(),
        fail: None,
        tool_calls: vec![MockTurn::One(MockToolCall {
            name: "mcp__demo__count".into(),
            arguments: json!({}),
            raw_arguments: None,
        })],
        repeat: false,
    }];
    // Built outside any runtime; each `execute` makes (and drops) its own.
    let (core, _ws) = mcp_core(vec![demo(|_| {})], |c| c.model.mock.script = script);
    for _ in 0..2 {
        let r = core.execute("count please").unwrap();
        assert!(
            r.text.starts_with("count is {\"content\":\"1\""),
            "{}",
            r.text
        );
    }
}

#[test]
fn wire_names_never_collide() {
    use crate::tools::unique_wire_name;
    let mut taken = std::collections::HashSet::new();
    for name in ["mcp:a:b__c", "mcp:a__b:c"] {
        let w = unique_wire_name(name, |w| taken.contains(w)).unwrap();
        assert!(
            w.len() <= 64
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        );
        assert!(taken.insert(w));
    }
    let long_a = format!("mcp:server:{}a", "x".repeat(80));
    let long_b = format!("mcp:server:{}b", "x".repeat(80));
    let wa = unique_wire_name(&long_a, |w| taken.contains(w)).unwrap();
    taken.insert(wa.clone());
    let wb = unique_wire_name(&long_b, |w| taken.contains(w)).unwrap();
    assert_ne!(wa, wb);
    assert_eq!(
        unique_wire_name("calculator", |_| false).unwrap(),
        "calculator"
    );
}

mod http;
