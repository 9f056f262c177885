//! The agent loop, driven offline by the mock's tool scripts.

use serde_json::json;

use crate::config::{MockRule, MockToolCall, MockTurn, ToolSelection, VeyraConfig};
use crate::core::testing::core_with;
use crate::core::{ConfirmationPolicy, ExecutionRequest, ExecutionResult, VeyraCore};
use crate::error::VeyraError;
use crate::events::{ConfirmScope, Event, FinishReason};
use crate::governance::{AuditEntry, AuditEventType, AuditFilter};

fn call(name: &str, arguments: serde_json::Value) -> MockToolCall {
    MockToolCall {
        name: name.into(),
        arguments,
        raw_arguments: None,
    }
}

fn rule(pattern: &str, turns: Vec<MockTurn>, response: &str) -> MockRule {
    MockRule {
        pattern: pattern.into(),
        response: response.into(),
        fail: None,
        tool_calls: turns,
        repeat: false,
    }
}

/// [`core_with`] (an in-memory trail, a fresh workspace) on the given script.
fn scripted_core(
    script: Vec<MockRule>,
    f: impl FnOnce(&mut VeyraConfig),
) -> (VeyraCore, tempfile::TempDir) {
    core_with(|config| {
        config.model.mock.script = script;
        f(config);
    })
}

fn entries(core: &VeyraCore, t: AuditEventType) -> Vec<AuditEntry> {
    core.audit()
        .unwrap()
        .query(&AuditFilter {
            event_type: Some(t),
            ..AuditFilter::default()
        })
        .unwrap()
}

fn steps(events: &[Event]) -> Vec<(u32, String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::AgentStep {
                step,
                tool,
                outcome,
                ..
            } => Some((*step, tool.clone(), outcome.clone())),
            _ => None,
        })
        .collect()
}

async fn run(core: &VeyraCore, prompt: &str) -> (Result<ExecutionResult, VeyraError>, Vec<Event>) {
    let mut rx = core.subscribe();
    let result = core.execute_async(ExecutionRequest::new(prompt)).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (result, events)
}

#[tokio::test]
async fn a_scripted_write_runs_through_the_gate_is_audited_and_undone() {
    let (core, ws) = scripted_core(
        vec![rule(
            "write the report",
            vec![MockTurn::One(call(
                "file_write",
                json!({ "path": "report.txt", "content": "all nominal" }),
            ))],
            "Done: {result}",
        )],
        |c| c.governance.reversible_only = true,
    );
    let (result, events) = run(&core, "please write the report").await;
    let result = result.unwrap();
    assert_eq!(result.finish_reason, FinishReason::Stop);
    assert_eq!(result.tool_steps, 1);
    assert!(result.text.starts_with("Done: {"), "{}", result.text);
    assert_eq!(
        std::fs::read_to_string(ws.path().join("report.txt")).unwrap(),
        "all nominal"
    );
    assert_eq!(steps(&events), [(1, "file_write".into(), "success".into())]);
    let calls = entries(&core, AuditEventType::ToolInvocation);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].actor, "agent");
    assert_eq!(
        calls[0].metadata["parent_execution"],
        json!(result.id.to_string())
    );
    assert_eq!(calls[0].metadata["step"], 1);
    let execution = entries(&core, AuditEventType::Execution);
    assert_eq!(execution[0].metadata["tool_steps"], 1);
    assert_eq!(execution[0].metadata["tool_calls"], json!(["file_write"]));
    // The write went to policy as reversible (the journal keeps what it replaced).
    let writes: Vec<_> = entries(&core, AuditEventType::PolicyCheck)
        .into_iter()
        .filter(|e| e.action == "write_file")
        .collect();
    assert_eq!(writes[0].metadata["context"]["reversible"], true);
    assert_eq!(writes[0].outcome, "allow");

    core.undo_tool(None, "operator").await.unwrap();
    assert!(!ws.path().join("report.txt").exists());
    assert!(core.verify_audit().unwrap().is_ok());
}

#[tokio::test]
async fn a_refused_call_goes_back_to_the_model_which_answers_anyway() {
    let (core, ws) = scripted_core(
        vec![rule(
            "clean up",
            vec![MockTurn::One(call(
                "file_delete",
                json!({ "path": "keep.txt" }),
            ))],
            "Could not: {result}",
        )],
        |_| {},
    );
    std::fs::write(ws.path().join("keep.txt"), "x").unwrap();
    core.set_confirmation_policy(ConfirmationPolicy::DenyAll);
    let (result, events) = run(&core, "clean up the workspace").await;
    let result = result.unwrap();
    assert!(ws.path().join("keep.txt").exists());
    assert!(
        result.text.starts_with("Could not: refused: "),
        "{}",
        result.text
    );
    assert_eq!(
        steps(&events),
        [(1, "file_delete".into(), "refused".into())]
    );
    let violations = entries(&core, AuditEventType::SafetyViolation);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].action, "tool:file_delete");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::SafetyViolation { .. }))
    );
}

#[tokio::test]
async fn a_model_that_calls_tools_forever_is_stopped_at_max_steps() {
    let mut forever = rule(
        "loop",
        vec![MockTurn::One(call(
            "calculator",
            json!({ "expression": "1+1" }),
        ))],
        "never",
    );
    forever.repeat = true;
    let (core, _ws) = scripted_core(vec![forever], |c| c.tools.max_steps = 3);
    let (result, events) = run(&core, "loop please").await;
    let result = result.unwrap();
    assert_eq!(result.finish_reason, FinishReason::MaxSteps);
    assert_eq!(result.tool_steps, 3);
    assert_eq!(steps(&events).len(), 3);
    assert_eq!(entries(&core, AuditEventType::ToolInvocation).len(), 3);
    assert_eq!(
        entries(&core, AuditEventType::Execution)[0].metadata["finish_reason"],
        "max_steps"
    );
}

#[tokio::test]
async fn the_token_budget_is_a_hard_stop_over_all_steps() {
    let mut forever = rule(
        "spend",
        vec![MockTurn::One(call(
            "calculator",
            json!({ "expression": "2*(3+4)" }),
        ))],
        "never",
    );
    forever.repeat = true;
    let (core, _ws) = scripted_core(vec![forever], |c| {
        c.tools.max_steps = 100;
        c.runtime.max_tokens_per_task = 40;
    });
    let (result, _) = run(&core, "spend tokens").await;
    let result = result.unwrap();
    assert_eq!(result.finish_reason, FinishReason::TokenBudget);
    assert!(result.tool_steps < 100);
    let spent = result.usage.input + result.usage.output;
    assert!(spent >= 40, "stopped before the budget: {spent}");
    // The conversation grows each turn: the last turn may overshoot, never by a whole turn more.
    assert!(spent < 80, "{spent}");
}

#[tokio::test]
async fn malformed_arguments_and_tools_not_offered_are_answered_not_crashed() {
    let (core, _ws) = scripted_core(
        vec![rule(
            "misbehave",
            vec![
                MockTurn::One(MockToolCall {
                    name: "calculator".into(),
                    arguments: json!({}),
                    raw_arguments: Some("{\"expression\": \"1+".into()),
                }),
                MockTurn::One(call("light_time", json!({ "body": "mars" }))),
                MockTurn::One(call("rm_rf", json!({}))),
                MockTurn::One(call("calculator", json!({ "expression": 7 }))),
            ],
            "Last: {result}",
        )],
        |c| c.tools.offer = ToolSelection::Only(vec!["calculator".into()]),
    );
    let (result, events) = run(&core, "misbehave").await;
    let result = result.unwrap();
    assert_eq!(result.finish_reason, FinishReason::Stop);
    assert_eq!(
        steps(&events),
        [
            (1, "calculator".into(), "rejected".into()),
            (2, "light_time".into(), "rejected".into()),
            (3, "rm_rf".into(), "rejected".into()),
            (4, "calculator".into(), "rejected".into()),
        ]
    );
    assert!(result.text.contains("bad arguments"), "{}", result.text);
    let summaries: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::AgentStep { summary, .. } => Some(summary.clone()),
            _ => None,
        })
        .collect();
    assert!(summaries[0].contains("not valid JSON"), "{}", summaries[0]);
    assert!(
        summaries[1].contains("not available; the tools offered are: calculator"),
        "{}",
        summaries[1]
    );
    let rejected = entries(&core, AuditEventType::ToolInvocation);
    assert_eq!(rejected.len(), 4);
    assert!(rejected.iter().all(|e| e.outcome == "rejected"));
    assert!(core.verify_audit().unwrap().is_ok());
}

#[tokio::test]
async fn parallel_calls_in_one_turn_run_in_order() {
    let (core, _ws) = scripted_core(
        vec![rule(
            "both",
            vec![MockTurn::Many(vec![
                call("calculator", json!({ "expression": "1+1" })),
                call("calculator", json!({ "expression": "2+2" })),
            ])],
            "{result}",
        )],
        |_| {},
    );
    let (result, events) = run(&core, "both sums").await;
    let result = result.unwrap();
    let summaries: Vec<(u32, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::AgentStep { step, summary, .. } => Some((*step, summary.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(summaries.len(), 2);
    assert_eq!(summaries[0].0, 1);
    assert!(summaries[0].1.contains("2"), "{:?}", summaries);
    assert!(summaries[1].1.contains("4"), "{:?}", summaries);
    // `{result}` is the last result: the second call's.
    assert!(result.text.contains('4'), "{}", result.text);
}

#[tokio::test]
async fn with_no_tools_offered_the_model_answers_at_once() {
    let (core, ws) = scripted_core(
        vec![rule(
            "write",
            vec![MockTurn::One(call(
                "file_write",
                json!({ "path": "x.txt", "content": "x" }),
            ))],
            "plain answer",
        )],
        |c| c.tools.offer = ToolSelection::None,
    );
    let (result, events) = run(&core, "write it").await;
    assert_eq!(result.unwrap().text, "plain answer");
    assert!(steps(&events).is_empty());
    assert!(!ws.path().join("x.txt").exists());
}

#[tokio::test]
async fn a_session_yes_covers_the_same_tool_only_and_is_audited_with_its_scope() {
    let (core, ws) = scripted_core(
        vec![rule(
            "tidy",
            vec![
                MockTurn::One(call("file_delete", json!({ "path": "a.txt" }))),
                MockTurn::One(call("file_delete", json!({ "path": "b.txt" }))),
                MockTurn::One(call(
                    "file_write",
                    json!({ "path": "c.txt", "content": "c" }),
                )),
            ],
            "tidied",
        )],
        |c| c.governance.require_confirmation = vec!["tool:file_write".into()],
    );
    for f in ["a.txt", "b.txt"] {
        std::fs::write(ws.path().join(f), f).unwrap();
    }
    core.set_confirmation_policy(ConfirmationPolicy::Ask);
    let mut rx = core.subscribe();
    let answerer = core.clone();
    let asked = tokio::spawn(async move {
        let mut asked = Vec::new();
        while let Ok(e) = rx.recv().await {
            match e {
                Event::ConfirmationRequested {
                    request,
                    operation,
                    detail,
                    scopable,
                    ..
                } => {
                    assert!(scopable);
                    let detail = detail.unwrap_or_default();
                    // A session yes to the first delete; a plain yes to the write.
                    let scope = if operation == "tool:file_delete" {
                        ConfirmScope::Session
                    } else {
                        ConfirmScope::Once
                    };
                    answerer
                        .answer_confirmation_scoped(request, true, scope, "operator")
                        .unwrap();
                    asked.push((operation, detail));
                }
                Event::TaskState { status, .. } if status.is_final() => return asked,
                _ => {}
            }
        }
        asked
    });
    let result = core
        .execute_async(ExecutionRequest::new("tidy up"))
        .await
        .unwrap();
    let asked = asked.await.unwrap();
    assert_eq!(result.text, "tidied");
    assert!(!ws.path().join("a.txt").exists() && !ws.path().join("b.txt").exists());
    assert!(ws.path().join("c.txt").exists());
    // Asked for the first delete (with its arguments) and the write, not the second delete.
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(asked[0].0, "tool:file_delete");
    assert!(asked[0].1.contains("a.txt"), "{}", asked[0].1);
    assert_eq!(asked[1].0, "tool:file_write");
    let scopes: Vec<String> = entries(&core, AuditEventType::SafetyCheck)
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e.action,
                e.metadata["scope"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        scopes,
        [
            "tool:file_delete session",
            "tool:file_delete session",
            "tool:file_write once"
        ]
    );
}

#[tokio::test]
async fn an_unknown_tool_in_the_offer_is_a_usage_error() {
    let (core, _ws) = scripted_core(Vec::new(), |_| {});
    let err = core
        .execute_async(ExecutionRequest::new("hi").tools(ToolSelection::Only(vec!["shell".into()])))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Usage(m) if m.contains("shell")),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unattended_execution_is_never_asked_its_confirmations_are_denied_and_recorded() {
    let (core, ws) = scripted_core(
        vec![rule(
            "clear the log",
            vec![MockTurn::One(call(
                "file_delete",
                json!({ "path": "log.txt" }),
            ))],
            "could not: {result}",
        )],
        |_| {},
    );
    std::fs::write(ws.path().join("log.txt"), "kept").unwrap();
    // The console would ask (and nobody answers); a benchmark execution must not wait for it.
    core.set_confirmation_policy(ConfirmationPolicy::Ask);
    let mut rx = core.subscribe();
    let mut request = ExecutionRequest::new("clear the log").unattended();
    request.actor = "benchmark".into();
    // On the paused clock a wait for an answer would run into the timeout, failing the test.
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(3600),
        core.execute_async(request),
    )
    .await
    .expect("an unattended execution must not wait for an answer")
    .unwrap();
    assert!(result.text.contains("refused"), "{}", result.text);
    assert_eq!(
        std::fs::read_to_string(ws.path().join("log.txt")).unwrap(),
        "kept"
    );
    let mut asked = 0;
    let mut outcomes = Vec::new();
    while let Ok(e) = rx.try_recv() {
        match e {
            Event::ConfirmationRequested { .. } => asked += 1,
            Event::AgentStep { outcome, .. } => outcomes.push(outcome),
            _ => {}
        }
    }
    assert_eq!(asked, 0);
    assert_eq!(outcomes, ["refused"]);
    let check = entries(&core, AuditEventType::SafetyCheck);
    assert_eq!(check.len(), 1);
    assert_eq!(check[0].outcome, "denied");
    assert_eq!(check[0].action, "tool:file_delete");
    assert!(
        check[0].metadata["reason"]
            .as_str()
            .unwrap()
            .contains("unattended: a benchmark run has no operator to ask"),
        "{}",
        check[0].metadata
    );
    let violations = entries(&core, AuditEventType::SafetyViolation);
    assert_eq!(violations.len(), 1);
    assert!(
        violations[0].metadata["reason"]
            .as_str()
            .unwrap()
            .contains("needs confirmation and was denied (unattended"),
        "{}",
        violations[0].metadata
    );
}

#[tokio::test(start_paused = true)]
async fn an_unattended_prompt_that_needs_confirmation_is_refused_not_left_waiting() {
    let (core, _ws) = scripted_core(Vec::new(), |c| {
        c.governance.require_confirmation = vec!["execute".into()];
    });
    core.set_confirmation_policy(ConfirmationPolicy::Ask);
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(3600),
        core.execute_async(ExecutionRequest::new("hello").unattended()),
    )
    .await
    .expect("no wait")
    .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Refused(m) if m.contains("unattended")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_before_tools_hook_runs_once_before_the_first_call_and_a_failure_stops_the_call() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::core::BeforeTools;

    let (core, ws) = scripted_core(
        vec![rule(
            "write twice",
            vec![
                MockTurn::One(call(
                    "file_write",
                    json!({ "path": "a.txt", "content": "one" }),
                )),
                MockTurn::One(call(
                    "file_write",
                    json!({ "path": "b.txt", "content": "two" }),
                )),
            ],
            "Done",
        )],
        |_| {},
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = {
        let calls = Arc::clone(&calls);
        BeforeTools::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    };
    // No tool call: the hook never runs.
    let result = core
        .execute_async(ExecutionRequest::new("just answer").before_tools(counted.clone()))
        .await
        .unwrap();
    assert_eq!(result.tool_steps, 0);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Two calls: it runs once, before the first.
    let result = core
        .execute_async(ExecutionRequest::new("write twice").before_tools(counted))
        .await
        .unwrap();
    assert_eq!(result.tool_steps, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(ws.path().join("b.txt").exists());

    // A failing hook: the call does not run, it is recorded as rejected, the attempt fails.
    std::fs::remove_file(ws.path().join("a.txt")).unwrap();
    let failing = BeforeTools::new(|| Err("the scratch directory could not be made".into()));
    let err = core
        .execute_async(ExecutionRequest::new("write twice").before_tools(failing))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the scratch directory could not be made"),
        "{err}"
    );
    assert!(!ws.path().join("a.txt").exists());
    let rejected: Vec<AuditEntry> = entries(&core, AuditEventType::ToolInvocation)
        .into_iter()
        .filter(|e| e.outcome == "rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0]
            .metadata
            .to_string()
            .contains("the preparation for tool 'file_write' failed, so the call was not run"),
        "{:?}",
        rejected[0].metadata
    );
    // The attempt is closed on the record like any other: a failed EXECUTION entry.
    let closing = entries(&core, AuditEventType::Execution);
    let last = closing.last().unwrap();
    assert_eq!(last.outcome, "failure");
    assert_eq!(last.metadata["error_kind"], "before_tools");
    assert_eq!(last.metadata["tool_steps"], 1);
}

#[tokio::test]
async fn execute_with_steps_keeps_every_step_in_order_and_leaves_nothing_behind() {
    let (core, _ws) = scripted_core(
        vec![rule(
            "two calls",
            vec![
                MockTurn::One(call("calculator", json!({ "expression": "2 + 2" }))),
                MockTurn::One(call("file_delete", json!({ "path": "nothing.txt" }))),
            ],
            "Done: {result}",
        )],
        |c| c.governance.prohibited_operations = vec!["tool:file_delete".into()],
    );
    let mut rx = core.subscribe();
    let id = crate::events::ExecutionId::new();
    let (result, kept) = core
        .execute_with_steps(id, ExecutionRequest::new("make two calls"))
        .await;
    assert_eq!(result.unwrap().tool_steps, 2);
    let mut published = Vec::new();
    while let Ok(e) = rx.try_recv() {
        published.push(e);
    }
    // Exactly the bus's steps of this execution, in order, and nothing but steps.
    assert_eq!(steps(&kept), steps(&published));
    assert_eq!(
        steps(&kept),
        [
            (1, "calculator".into(), "success".into()),
            (2, "file_delete".into(), "refused".into())
        ]
    );
    assert_eq!(kept.len(), 2);
    assert!(core.inner.emitter.is_idle(), "nothing kept after the call");

    // A caller that stops waiting (its future dropped mid-run) leaves nothing behind either.
    let id = crate::events::ExecutionId::new();
    let waiting = core.execute_with_steps(id, ExecutionRequest::new("make two calls"));
    tokio::select! {
        biased;
        _ = waiting => panic!("the first poll only submits"),
        _ = std::future::ready(()) => {}
    }
    assert!(
        core.inner.emitter.is_idle(),
        "the dropped caller's watch is gone"
    );
    let _ = core.cancel(id);
}
