//! Cost of one `calculator` call through the whole gate (policy, safety boundary, in-memory
//! audit of POLICY_CHECK and TOOL_INVOCATION, events) against the evaluator alone, and the
//! schema validation step. Target: ≤ 50 µs median through the gate.
//! Run: `cargo bench --bench tools`.
//!
//! Also one MCP tool call through the gate against the same call made bare with the SDK, to a
//! local stdio server that answers at once (this binary, as the demo server). Target: ≤ 1 ms
//! median added.
//!
//! Also one agent step (an execution whose model makes one tool call) against a plain
//! execution. Target: ≤ 2× the plain execution.
//!
//! Measured 2026-12-01 on 2 shared cores (divan, 100 samples, medians): through the gate
//! 12.71 µs, of which the evaluator 2.27 µs, the Cedar decision 1.84 µs, the safety check
//! 0.02 µs, two in-memory audit entries 2 × 1.19 µs, schema validation 0.03 µs (the rest is
//! events and bookkeeping). One agent step 35.9 µs against a plain execution 20.95 µs: 1.71×.

use divan::Bencher;
use veyra::VeyraCore;
use veyra::config::VeyraConfig;

/// The demo MCP server (`examples/mcp_server.rs`), which this binary becomes when started with
/// [`SERVER_VAR`] set: the bench's own server, so that `cargo bench` needs nothing else built.
#[allow(dead_code)]
#[path = "../examples/mcp_server.rs"]
mod demo;

/// Set in the environment of the child this bench starts as its MCP server.
const SERVER_VAR: &str = "VEYRA_BENCH_MCP_SERVER";

fn main() {
    if std::env::var_os(SERVER_VAR).is_some() {
        if let Err(e) = demo::main() {
            eprintln!("mcp server: {e}");
        }
        return;
    }
    divan::main();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

fn core() -> VeyraCore {
    let mut config = VeyraConfig::default();
    config.governance.store = veyra::config::AuditStoreKind::Memory;
    VeyraCore::new(config).expect("default config is valid")
}

const EXPRESSION: &str = "2 * (3 + 4) - sqrt(16) / 2";

#[divan::bench]
fn calculator_through_the_gate(bencher: Bencher) {
    let rt = runtime();
    let core = core();
    let args = serde_json::json!({ "expression": EXPRESSION });
    bencher.bench_local(|| {
        rt.block_on(core.invoke_tool("calculator", args.clone(), "operator"))
            .expect("the calculator answers")
    });
}

#[divan::bench]
fn calculator_alone(bencher: Bencher) {
    bencher.bench_local(|| veyra::tools::calculator::evaluate(divan::black_box(EXPRESSION)));
}

#[divan::bench]
fn schema_validation(bencher: Bencher) {
    let core = core();
    let args = serde_json::json!({ "expression": EXPRESSION });
    bencher.bench_local(|| core.tools().validate("calculator", divan::black_box(&args)));
}

/// The split of the gate: the Cedar decision for `invoke_tool` alone.
#[divan::bench]
fn split_policy_decision(bencher: Bencher) {
    use std::str::FromStr;
    use veyra::governance::PolicyEngine;
    use veyra::governance::policy::{ContextValue, PolicyRequest, Resource};
    let engine = veyra::governance::CedarEngine::builtin().expect("the built-in policy loads");
    let request = PolicyRequest::new(
        "operator",
        "invoke_tool",
        Resource::from_str("tool:calculator").expect("a valid resource"),
        veyra::config::LatencyPreset::Earth,
    )
    .with("reversible", ContextValue::Bool(true));
    bencher.bench_local(|| engine.decide(divan::black_box(&request)));
}

/// The split of the gate: the safety boundary's verdict alone.
#[divan::bench]
fn split_safety_check(bencher: Bencher) {
    let boundary = veyra::tools::SafetyBoundary::from_config(&VeyraConfig::default().governance);
    bencher.bench_local(|| {
        boundary.check_any(
            divan::black_box(&["tool", "tool:calculator"]),
            true,
            "operator",
        )
    });
}

/// The split of the gate: one audit entry appended in memory (a call appends two).
#[divan::bench]
fn split_audit_record(bencher: Bencher) {
    let core = core();
    let trail = core.audit().expect("audit is on");
    bencher.bench_local(|| {
        trail
            .record_blocking(veyra::governance::AuditRecord {
                event_type: veyra::governance::AuditEventType::ToolInvocation,
                actor: "operator".into(),
                action: "invoke_tool".into(),
                resource: "tool:calculator".into(),
                outcome: "success".into(),
                input_summary: veyra::governance::summarize_input(EXPRESSION),
                metadata: serde_json::json!({ "tool": "calculator", "duration_us": 3 }),
            })
            .expect("the entry is recorded")
    });
}

/// A core whose mock answers `agent` prompts with one calculator call, then an answer.
fn agent_core() -> VeyraCore {
    use veyra::config::{MockRule, MockToolCall, MockTurn};
    let mut config = VeyraConfig::default();
    config.governance.store = veyra::config::AuditStoreKind::Memory;
    config.model.mock.script = vec![MockRule {
        pattern: "^agent".into(),
        response: "The value is {result}.".into(),
        fail: None,
        tool_calls: vec![MockTurn::One(MockToolCall {
            name: "calculator".into(),
            arguments: serde_json::json!({ "expression": EXPRESSION }),
            raw_arguments: None,
        })],
        repeat: false,
    }];
    VeyraCore::new(config).expect("the config is valid")
}

/// One plain execution on the mock (no tool call), the reference for the agent step.
#[divan::bench]
fn plain_execution(bencher: Bencher) {
    let rt = runtime();
    let core = agent_core();
    bencher.bench_local(|| {
        rt.block_on(core.execute_async(veyra::ExecutionRequest::new("plain question")))
            .expect("the mock answers")
    });
}

/// One execution whose model makes one tool call: two model turns, the gate, the tool, the
/// step's audit entries. Target: ≤ 2× `plain_execution`.
#[divan::bench]
fn one_agent_step(bencher: Bencher) {
    let rt = runtime();
    let core = agent_core();
    bencher.bench_local(|| {
        let r = rt
            .block_on(core.execute_async(veyra::ExecutionRequest::new("agent question")))
            .expect("the mock answers");
        assert_eq!(r.tool_steps, 1);
        r
    });
}

/// A core on the in-memory trail whose MCP server `bench` is this binary as the demo server.
fn mcp_core() -> VeyraCore {
    let mut config = VeyraConfig::default();
    config.governance.store = veyra::config::AuditStoreKind::Memory;
    config.tools.mcp_servers = vec![veyra::config::McpServerConfig {
        name: "bench".into(),
        command: std::env::current_exe()
            .expect("the bench knows its path")
            .display()
            .to_string(),
        url: None,
        bearer_env: None,
        args: Vec::new(),
        env: [(SERVER_VAR.to_string(), "1".to_string())].into(),
        env_pass: Vec::new(),
        cwd: None,
        timeout_ms: 30_000,
        reversible: vec!["echo".into()],
    }];
    VeyraCore::new(config).expect("the config is valid")
}

/// One MCP tool call through the whole gate (schema, policy, safety boundary, the call over
/// the server's pipes, sanitizing and scrubbing its answer, two in-memory audit entries,
/// events). Target: ≤ 1 ms median more than `mcp_call_bare`.
#[divan::bench]
fn mcp_call_through_the_gate(bencher: Bencher) {
    let rt = runtime();
    let core = mcp_core();
    rt.block_on(core.mcp_ready());
    let args = serde_json::json!({ "text": "ping" });
    bencher.bench_local(|| {
        rt.block_on(core.invoke_tool("mcp:bench:echo", args.clone(), "operator"))
            .expect("the server answers")
    });
}

/// The server's own time: the same call made with the SDK's client straight over the pipes,
/// nothing else.
#[divan::bench]
fn mcp_call_bare(bencher: Bencher) {
    use rmcp::ServiceExt;
    let rt = runtime();
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("own path"));
    child
        .env(SERVER_VAR, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let (service, _child) = rt.block_on(async {
        let mut child = child.spawn().expect("the server starts");
        let stdout = child.stdout.take().expect("piped");
        let stdin = child.stdin.take().expect("piped");
        let service = ().serve((stdout, stdin)).await.expect("the handshake completes");
        (service, child)
    });
    bencher.bench_local(|| {
        let mut params = rmcp::model::CallToolRequestParams::new("echo");
        params.arguments = serde_json::json!({ "text": "ping" }).as_object().cloned();
        rt.block_on(service.call_tool(params))
            .expect("the server answers")
    });
}
