use std::time::Duration;

use futures_util::StreamExt;

use super::*;
use crate::config::{LatencyPreset, MockFailure, MockFailureKind};
use crate::core::testing::core_with;
use crate::events::Priority;
use crate::governance::{AuditEventType, summarize_input};
use crate::models::{MockBackend, ModelRequest};

fn of_type(core: &VeyraCore, t: AuditEventType) -> Vec<crate::governance::AuditEntry> {
    let filter = crate::governance::AuditFilter {
        event_type: Some(t),
        ..Default::default()
    };
    core.audit().unwrap().query(&filter).unwrap()
}

fn executions(core: &VeyraCore) -> Vec<crate::governance::AuditEntry> {
    of_type(core, AuditEventType::Execution)
}

fn policy_checks(core: &VeyraCore) -> Vec<crate::governance::AuditEntry> {
    of_type(core, AuditEventType::PolicyCheck)
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

fn kind(e: &Event) -> &'static str {
    match e {
        Event::TaskSubmitted { .. } => "submitted",
        Event::TaskState { status, .. } => status.name(),
        Event::OutputDelta { .. } => "delta",
        Event::ExecutionFinished { .. } => "finished",
        Event::AuditRecorded { .. } => "audit",
        Event::AuditVerified { .. } => "verified",
        Event::AuditCheckpoint { .. } => "checkpoint",
        Event::BackendChanged { .. } => "backend",
        Event::LinkChanged { .. } => "link",
        Event::McpServer { .. } => "mcp",
        Event::SafetyViolation { .. } => "violation",
        Event::ConfirmationRequested { .. } => "confirm?",
        Event::ConfirmationAnswered { .. } => "confirmed",
        Event::ToolInvoked { .. } => "tool",
        Event::AgentStep { .. } => "step",
    }
}

#[tokio::test]
async fn an_execution_streams_records_and_publishes_each_change_once() {
    let (core, _ws) = core_with(|_| {});
    let mut rx = core.subscribe();
    let result = core
        .execute_async(ExecutionRequest::new("Summarise the habitat telemetry"))
        .await
        .unwrap();
    let events = drain(&mut rx);
    let kinds: Vec<&str> = events.iter().map(kind).collect();
    let deltas = kinds.iter().filter(|k| **k == "delta").count();
    // The policy decision is recorded (and published) before the model is called.
    assert_eq!(kinds[..4], ["submitted", "queued", "running", "audit"]);
    assert_eq!(kinds[kinds.len() - 3..], ["audit", "finished", "succeeded"]);
    assert_eq!(deltas as u64, result.usage.output);
    assert_eq!(kinds.len(), deltas + 7);
    assert!(events.iter().all(|e| e.execution() == Some(result.id)));
    let streamed: String = events
        .iter()
        .filter_map(|e| match e {
            Event::OutputDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(streamed, result.text);

    let trail = core.audit().unwrap();
    let entries = trail.query(&Default::default()).unwrap();
    assert_eq!(entries.len(), 2);
    let p = &entries[0];
    assert_eq!(
        (p.event_type, p.outcome.as_str(), p.action.as_str()),
        (AuditEventType::PolicyCheck, "allow", "execute")
    );
    assert_eq!(
        (p.actor.as_str(), p.resource.as_str()),
        ("operator", "backend:mock")
    );
    assert_eq!(p.metadata["policies"][0], "operator-operates");
    assert_eq!(p.metadata["jurisdictions"][0], "Sol");
    assert_eq!(p.metadata["context"]["priority"], "normal");
    assert_eq!(p.metadata["context"]["destination"], "Earth");
    assert_eq!(p.metadata["execution_id"], result.id.to_string());
    let e = &entries[1];
    assert_eq!(result.audit_seq, Some(e.seq));
    assert_eq!(
        (e.event_type, e.outcome.as_str(), e.action.as_str()),
        (AuditEventType::Execution, "success", "execute")
    );
    assert_eq!(
        e.input_summary,
        summarize_input("Summarise the habitat telemetry")
    );
    assert!(
        !serde_json::to_string(e).unwrap().contains("habitat"),
        "raw prompt leaked into audit"
    );
    assert_eq!(e.metadata["execution_id"], result.id.to_string());
    trail.verify_integrity().unwrap();
}

#[tokio::test]
async fn the_same_prompt_gives_the_same_bytes() {
    let (core, _ws) = core_with(|_| {});
    let a = core
        .execute_async(ExecutionRequest::new("hello"))
        .await
        .unwrap();
    let b = core
        .execute_async(ExecutionRequest::new("hello"))
        .await
        .unwrap();
    assert_eq!(a.text, b.text);
    assert_ne!(a.id, b.id);
}

#[tokio::test]
async fn execute_stream_is_lossless_and_ends_with_the_terminal_event() {
    let (core, _ws) = core_with(|_| {});
    let stream = core.execute_stream(ExecutionRequest::new("hello")).unwrap();
    let id = stream.id();
    let events: Vec<Event> = stream.collect().await;
    assert!(events.last().unwrap().is_terminal());
    assert!(events.iter().all(|e| e.execution() == Some(id)));
    assert_eq!(events.iter().filter(|e| e.is_terminal()).count(), 1);
}

#[tokio::test]
async fn failures_are_published_audited_and_returned() {
    let (core, _ws) = core_with(|c| {
        c.model.mock.fail = Some(MockFailure {
            kind: MockFailureKind::Server,
            after_tokens: 2,
            message: None,
        })
    });
    let mut rx = core.subscribe();
    let err = core
        .execute_async(ExecutionRequest::new("hello"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Task { kind, .. } if kind == "server"),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), crate::error::ExitCode::Runtime);
    let events = drain(&mut rx);
    let kinds: Vec<&str> = events.iter().map(kind).collect();
    // Output had started streaming, so the server error is not retried.
    assert_eq!(
        kinds,
        [
            "submitted",
            "queued",
            "running",
            "audit",
            "delta",
            "delta",
            "audit",
            "failed"
        ]
    );
    let entry = &executions(&core)[0];
    assert_eq!(entry.outcome, "failure");
    assert_eq!(entry.metadata["error_kind"], "server");
}

/// A backend with a bug: it panics mid-stream.
struct PanickingBackend;

#[async_trait::async_trait]
impl crate::models::ModelBackend for PanickingBackend {
    fn name(&self) -> &str {
        "panicky"
    }

    async fn stream(
        &self,
        _request: &crate::models::ModelRequest,
    ) -> Result<crate::models::ChunkStream, crate::models::ModelError> {
        let chunks =
            futures_util::stream::iter([Ok(crate::models::StreamChunk::Text("half".into()))])
                .chain(futures_util::stream::once(async {
                    panic!("injected backend bug")
                }));
        Ok(Box::pin(chunks))
    }

    async fn health_check(&self) -> Result<(), crate::models::ModelError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_backend_fails_the_execution_with_kind_internal_and_never_hangs() {
    crate::runtime::contain::install_hook();
    let mut config = VeyraConfig::default();
    config.governance.store = crate::config::AuditStoreKind::Memory;
    config.model.backend = "panicky".into();
    let mut registry = crate::models::BackendRegistry::with_builtins();
    registry.register_backend(
        "panicky",
        Arc::new(|_: &crate::config::ModelConfig| {
            Ok(Arc::new(PanickingBackend) as Arc<dyn crate::models::ModelBackend>)
        }),
    );
    let core = VeyraCore::with_registry(config, registry).unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        core.execute_async(ExecutionRequest::new("hello")),
    )
    .await
    .expect("the execution ends")
    .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Task { kind, message } if kind == "internal" && message.contains("injected backend bug")),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), crate::error::ExitCode::Runtime);
    assert_eq!(core.scheduler().running(), 0, "the slot is released");
    // The next prompt runs.
    let second = core.execute_async(ExecutionRequest::new("again")).await;
    assert!(matches!(second, Err(VeyraError::Task { .. })), "{second:?}");
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_published() {
    let (core, _ws) = core_with(|_| {});
    let mut rx = core.subscribe();
    let err = core
        .execute_async(ExecutionRequest::new("  \n"))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
    let mut req = ExecutionRequest::new("hi");
    req.backend = Some("mokc".into());
    let err = core.execute_async(req).await.unwrap_err();
    assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
    assert!(err.to_string().contains("did you mean 'mock'?"), "{err}");
    assert!(drain(&mut rx).is_empty());
    assert!(core.audit().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn failures_before_the_first_token_are_retried_and_each_attempt_is_audited() {
    let (core, _ws) = core_with(|c| {
        c.runtime.jitter = false;
        c.model.mock.fail = Some(MockFailure {
            kind: MockFailureKind::RateLimit,
            after_tokens: 0,
            message: None,
        })
    });
    let mut rx = core.subscribe();
    let err = core
        .execute_async(ExecutionRequest::new("hello"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Task { kind, .. } if kind == "rate_limit"),
        "{err:?}"
    );
    let kinds: Vec<&str> = drain(&mut rx).iter().map(kind).collect();
    let retries = kinds.iter().filter(|k| **k == "retrying").count();
    assert_eq!(retries, 2, "runtime.retries = 2: {kinds:?}");
    let entries = executions(&core);
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e.outcome == "failure"));
    // Each attempt is decided by policy afresh (the link preset may have changed meanwhile).
    assert_eq!(policy_checks(&core).len(), 3);
    assert_eq!(entries[2].metadata["attempt"], 3);
}

#[tokio::test(start_paused = true)]
async fn a_prompt_crosses_the_simulated_link_and_can_be_cancelled_mid_flight() {
    let (core, _ws) = core_with(|c| {
        c.latency.simulate = true;
        c.latency.preset = crate::config::LatencyPreset::Mars;
        c.latency.mode = crate::config::LatencyMode::Fixed;
        c.latency.time_scale = 60.0;
    });
    let mut rx = core.subscribe();
    let start = tokio::time::Instant::now();
    let result = core
        .execute_async(ExecutionRequest::new("hello"))
        .await
        .unwrap();
    let kinds: Vec<&str> = drain(&mut rx)
        .iter()
        .map(kind)
        .filter(|k| *k != "delta")
        .collect();
    assert_eq!(
        kinds,
        [
            "submitted",
            "queued",
            "uplink",
            "running",
            "audit",
            "audit",
            "finished",
            "downlink",
            "succeeded"
        ]
    );
    // Mars `fixed`: the middle of 3.1–22.3 min each way, at 60× — about 25 s round trip.
    let elapsed = start.elapsed().as_secs_f64();
    assert!((24.4..26.4).contains(&elapsed), "{elapsed}");
    assert!(!result.text.is_empty());

    let id = core.submit(ExecutionRequest::new("second")).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    core.cancel(id).unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let kinds: Vec<&str> = drain(&mut rx).iter().map(kind).collect();
    assert_eq!(kinds, ["submitted", "queued", "uplink", "cancelled"]);
    assert!(core.cancel(id).is_ok(), "cancelling again is a no-op");
    assert_eq!(
        core.cancel(ExecutionId::new()).unwrap_err().exit_code(),
        crate::error::ExitCode::Usage
    );
}

#[tokio::test]
async fn switching_preset_is_audited_and_published() {
    let (core, _ws) = core_with(|_| {});
    let mut rx = core.subscribe();
    let status = core
        .set_preset(crate::config::LatencyPreset::Mars)
        .await
        .unwrap();
    assert_eq!(status.preset, "mars");
    let kinds: Vec<&str> = drain(&mut rx).iter().map(kind).collect();
    assert_eq!(kinds, ["audit", "audit", "link"]);
    let entries = core.audit().unwrap().query(&Default::default()).unwrap();
    assert_eq!(
        (entries[0].event_type, entries[0].resource.as_str()),
        (AuditEventType::PolicyCheck, "link:mars")
    );
    let entry = &entries[1];
    assert_eq!(entry.event_type, AuditEventType::LatencyChange);
    assert_eq!(
        (
            entry.metadata["from"].as_str(),
            entry.metadata["to"].as_str()
        ),
        (Some("earth"), Some("mars"))
    );
}

#[tokio::test]
async fn switching_the_simulation_is_audited_published_and_told_by_the_link() {
    // On by default (the fixture turns it off for tests of other things).
    assert!(crate::config::VeyraConfig::default().latency.simulate);
    let (core, _ws) = core_with(|c| c.latency.simulate = true);
    assert!(core.link_status().simulated);
    let mut rx = core.subscribe();
    let status = core.set_simulated(false).await.unwrap();
    assert!(!status.simulated && !core.link_status().simulated);
    let kinds: Vec<&str> = drain(&mut rx).iter().map(kind).collect();
    assert_eq!(kinds, ["audit", "link"]);
    // Switching to the state in force records nothing.
    core.set_simulated(false).await.unwrap();
    assert!(drain(&mut rx).is_empty());
    core.set_simulated(true).await.unwrap();
    let entries = core.audit().unwrap().query(&Default::default()).unwrap();
    let switches: Vec<(&str, &str, &str)> = entries
        .iter()
        .filter(|e| e.event_type == AuditEventType::LatencyChange)
        .map(|e| {
            (
                e.action.as_str(),
                e.metadata["from"].as_str().unwrap_or_default(),
                e.metadata["to"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        switches,
        [
            ("switch_simulation", "on", "off"),
            ("switch_simulation", "off", "on")
        ]
    );
    // Off, a prompt never touches the link; a benchmark item never does either way.
    core.set_simulated(false).await.unwrap();
    let mut rx = core.subscribe();
    core.execute_async(ExecutionRequest::new("hello"))
        .await
        .unwrap();
    let kinds: Vec<&str> = drain(&mut rx).iter().map(kind).collect();
    assert!(
        !kinds.contains(&"uplink") && !kinds.contains(&"downlink"),
        "{kinds:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn token_delay_runs_on_tokio_time() {
    let (core, _ws) = core_with(|c| c.model.mock.token_delay_ms = 40);
    let result = core
        .execute_async(ExecutionRequest::new("hello"))
        .await
        .unwrap();
    assert_eq!(
        result.latency,
        Duration::from_millis(40) * result.usage.output as u32
    );
}

#[tokio::test]
async fn audit_off_records_nothing() {
    let (core, _ws) = core_with(|c| c.governance.audit = false);
    let mut rx = core.subscribe();
    let result = core
        .execute_async(ExecutionRequest::new("hello"))
        .await
        .unwrap();
    assert_eq!(result.audit_seq, None);
    assert!(drain(&mut rx).iter().all(|e| kind(e) != "audit"));
    assert!(core.verify_audit().is_none());
}

#[tokio::test]
async fn verify_and_health_report_the_chain() {
    let (core, _ws) = core_with(|_| {});
    core.execute_async(ExecutionRequest::new("a"))
        .await
        .unwrap();
    core.execute_async(ExecutionRequest::new("b"))
        .await
        .unwrap();
    let mut rx = core.subscribe();
    // A policy check and an execution each.
    assert_eq!(core.verify_audit().unwrap().unwrap().entries, 4);
    assert!(matches!(
        drain(&mut rx)[..],
        [Event::AuditVerified {
            entries: 4,
            failure: None,
            ..
        }]
    ));
    let health = core.health_check().await;
    assert!(health.is_healthy());
    assert_eq!(health.audit.unwrap().entries, 4);
}

#[test]
fn blocking_execute_works_outside_a_runtime_only() {
    let (core, _ws) = core_with(|_| {});
    let r = core.execute("hello").unwrap();
    assert_eq!(
        r.text,
        MockBackend::generated_text(&ModelRequest::new("veyra-mock-1", None, "hello", 0.7, 1024))
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inside = rt.block_on(async { core.execute("hello") });
    assert!(matches!(inside, Err(VeyraError::Usage(_))));
}

#[tokio::test]
async fn a_durable_trail_resumes_across_cores_and_refuses_a_second_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("audit.db");
    let state = dir.path().join("state");
    let config = |path: &std::path::Path| {
        let mut c = VeyraConfig::default();
        c.governance.store_path = Some(path.to_path_buf());
        c.governance.witness_dir = Some(state.clone());
        c
    };
    let first = VeyraCore::new(config(&path)).unwrap();
    first
        .execute_async(ExecutionRequest::new("one"))
        .await
        .unwrap();
    let err = VeyraCore::new(config(&path)).unwrap_err().to_string();
    assert!(err.contains("in use by another Veyra process"), "{err}");
    drop(first);
    let second = VeyraCore::new(config(&path)).unwrap();
    let r = second
        .execute_async(ExecutionRequest::new("two"))
        .await
        .unwrap();
    assert_eq!(
        r.audit_seq,
        Some(4),
        "the chain resumes after the first core's entries"
    );
    assert_eq!(second.verify_audit().unwrap().unwrap().entries, 4);
}

#[tokio::test]
async fn a_prohibited_execution_is_refused_recorded_and_published() {
    let (core, _ws) =
        core_with(|c| c.governance.prohibited_operations = vec!["execute:mock".into()]);
    let mut rx = core.subscribe();
    let err = core
        .execute_async(ExecutionRequest::new("hello"))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), crate::error::ExitCode::Refused, "{err}");
    let events = drain(&mut rx);
    assert!(events.iter().any(
        |e| matches!(e, Event::SafetyViolation { rule, .. } if rule == "prohibited_operations")
    ));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::OutputDelta { .. })),
        "the model was never called"
    );
    let entries = core.audit().unwrap().query(&Default::default()).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (entries[0].event_type, entries[0].outcome.as_str()),
        (AuditEventType::PolicyCheck, "allow"),
        "policy allowed it; the boundary still refused"
    );
    assert_eq!(entries[1].event_type, AuditEventType::SafetyViolation);
}

#[tokio::test]
async fn confirmations_are_asked_answered_and_audited() {
    let (core, _ws) = core_with(|c| c.governance.require_confirmation = vec!["execute".into()]);
    let mut rx = core.subscribe();
    let answering = {
        let core = core.clone();
        tokio::spawn(async move {
            let mut answers = [true, false].into_iter();
            while let Ok(event) = rx.recv().await {
                if let Event::ConfirmationRequested { request, .. } = event {
                    let Some(allowed) = answers.next() else { break };
                    core.answer_confirmation(request, allowed, "operator")
                        .unwrap();
                }
            }
        })
    };
    core.execute_async(ExecutionRequest::new("allowed"))
        .await
        .unwrap();
    let err = core
        .execute_async(ExecutionRequest::new("denied"))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), crate::error::ExitCode::Refused);
    answering.abort();
    let outcomes: Vec<(AuditEventType, String)> = core
        .audit()
        .unwrap()
        .query(&Default::default())
        .unwrap()
        .into_iter()
        .map(|e| (e.event_type, e.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (AuditEventType::PolicyCheck, "allow".to_string()),
            (AuditEventType::SafetyCheck, "allowed".to_string()),
            (AuditEventType::Execution, "success".to_string()),
            (AuditEventType::PolicyCheck, "allow".to_string()),
            (AuditEventType::SafetyCheck, "denied".to_string()),
            (AuditEventType::SafetyViolation, "refused".to_string()),
        ]
    );
    assert!(core.answer_confirmation(999, true, "operator").is_err());
}

#[tokio::test]
async fn headless_policies_answer_without_asking() {
    let (core, _ws) = core_with(|c| c.governance.require_confirmation = vec!["execute".into()]);
    core.set_confirmation_policy(ConfirmationPolicy::AllowAll);
    core.execute_async(ExecutionRequest::new("yes"))
        .await
        .unwrap();
    core.set_confirmation_policy(ConfirmationPolicy::DenyAll);
    let err = core
        .execute_async(ExecutionRequest::new("no"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pass --yes"), "{err}");
}

fn multi_jurisdiction(c: &mut VeyraConfig) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs/policies/multi-jurisdiction");
    c.governance.policy_entities = Some(dir.join("entities.json"));
    c.governance.policy_file = Some(dir);
}

#[tokio::test]
async fn a_policy_denial_is_refused_recorded_and_published_before_the_model_runs() {
    let (core, _ws) = core_with(multi_jurisdiction);
    let mut rx = core.subscribe();
    let err = core
        .execute_async(ExecutionRequest::new("index the archive").priority(Priority::Background))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), crate::error::ExitCode::Refused, "{err}");
    assert!(
        err.to_string()
            .contains("Earth compute is reserved for critical, high and normal work"),
        "{err}"
    );
    let events = drain(&mut rx);
    assert!(
        events.iter().any(|e| matches!(e,
            Event::SafetyViolation { rule, operation, actor, .. }
                if rule == "policy:earth-no-offworld-background"
                    && operation == "execute backend:mock"
                    && actor == "operator")),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::OutputDelta { .. }))
    );
    assert!(executions(&core).is_empty(), "the model was never called");
    let checks = policy_checks(&core);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].outcome, "deny");
    assert_eq!(checks[0].metadata["jurisdictions"][0], "Earth");
    assert_eq!(checks[0].metadata["context"]["priority"], "background");

    // The same request at normal priority passes every jurisdiction.
    core.execute_async(ExecutionRequest::new("index the archive"))
        .await
        .unwrap();
}

#[tokio::test]
async fn actors_without_a_permit_are_denied_by_default() {
    let (core, _ws) = core_with(|_| {});
    let mut request = ExecutionRequest::new("hello");
    request.actor = "agent".into();
    let err = core.execute_async(request).await.unwrap_err();
    assert_eq!(err.exit_code(), crate::error::ExitCode::Refused);
    assert!(err.to_string().contains("deny by default"), "{err}");
    assert_eq!(
        policy_checks(&core)[0].metadata["policies"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn switching_preset_is_refused_when_policy_forbids_it() {
    use crate::governance::policy::{PolicySources, SourceText};
    let mut sources = PolicySources::builtin();
    sources.policies.push(SourceText {
        name: "no-deep-space.cedar".into(),
        text: r#"@id("no-deep-space") @reason("the deep-space relay is down for maintenance")
                 forbid (principal, action == Veyra::Action::"switch_preset",
                         resource == Veyra::Link::"deep-space");"#
            .into(),
    });
    let mut config = VeyraConfig::default();
    config.governance.store = crate::config::AuditStoreKind::Memory;
    let core = VeyraCore::with_parts(
        config,
        BackendRegistry::with_builtins(),
        Arc::new(CedarEngine::load(&sources).unwrap()),
    )
    .unwrap();
    let mut rx = core.subscribe();
    let err = core
        .set_preset(crate::config::LatencyPreset::DeepSpace)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), crate::error::ExitCode::Refused);
    assert!(err.to_string().contains("relay is down"), "{err}");
    assert_eq!(core.link_status().preset, "earth", "the link did not move");
    let kinds: Vec<&str> = drain(&mut rx).iter().map(kind).collect();
    assert_eq!(kinds, ["audit", "violation"]);
    assert!(
        core.set_preset(crate::config::LatencyPreset::Mars)
            .await
            .is_ok()
    );
}

#[test]
fn a_bad_policy_file_stops_start_up_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.cedar");
    std::fs::write(
        &file,
        "@id(\"x\")\npermit (principal, action, resource)\nwhen { context.nope };\n",
    )
    .unwrap();
    let mut config = VeyraConfig::default();
    config.governance.store = crate::config::AuditStoreKind::Memory;
    config.governance.policy_file = Some(file.clone());
    let err = VeyraCore::new(config).unwrap_err();
    assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}:3:", file.display())),
        "{text}"
    );
}

#[test]
fn a_schema_that_cannot_answer_veyras_requests_stops_start_up() {
    use crate::governance::policy::{PolicySources, SourceText};
    let mut sources = PolicySources::builtin();
    sources.schema = SourceText {
        name: "tiny.cedarschema".into(),
        text: "namespace Veyra { entity Jurisdiction; entity Actor; entity Backend; entity Link; \
               entity Tool; entity File; action execute appliesTo { principal: [Actor], \
               resource: [Backend] }; }"
            .into(),
    };
    sources.policies = vec![SourceText {
        name: "p.cedar".into(),
        text: "permit (principal, action, resource);".into(),
    }];
    sources.entities = SourceText {
        name: "e.json".into(),
        text: "[]".into(),
    };
    let engine = CedarEngine::load(&sources).unwrap();
    let err = VeyraCore::with_parts(
        VeyraConfig::default(),
        BackendRegistry::with_builtins(),
        Arc::new(engine),
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
    assert!(
        err.to_string()
            .contains("cannot answer Veyra's 'execute' requests"),
        "{err}"
    );
}

#[tokio::test]
async fn signed_checkpoints_are_published() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = VeyraConfig::default();
    config.governance.store_path = Some(dir.path().join("data").join("audit.db"));
    config.governance.witness_dir = Some(dir.path().join("state"));
    let core = VeyraCore::new(config).unwrap();
    let mut rx = core.subscribe();
    core.execute_async(ExecutionRequest::new("one"))
        .await
        .unwrap();
    // Every commit is signed: one for the policy check, one for the execution.
    drop(core);
    let checkpoints: Vec<u64> = drain(&mut rx)
        .into_iter()
        .filter_map(|e| match e {
            Event::AuditCheckpoint { tree_size, .. } => Some(tree_size),
            _ => None,
        })
        .collect();
    assert_eq!(checkpoints, [1, 2], "a policy check and an execution");
}

#[tokio::test]
async fn switching_backend_is_decided_audited_and_applies_to_new_prompts() {
    let mut registry = BackendRegistry::with_builtins();
    registry.register_backend(
        "second",
        Arc::new(|cfg: &crate::config::ModelConfig| {
            MockBackend::from_config(cfg).map(|b| Arc::new(b) as Arc<dyn ModelBackend>)
        }),
    );
    let mut config = VeyraConfig::default();
    config.governance.store = crate::config::AuditStoreKind::Memory;
    let core = VeyraCore::with_registry(config, registry).unwrap();
    let mut rx = core.subscribe();
    core.set_backend("mock", Some("veyra-mock-2"))
        .await
        .unwrap();
    let kinds: Vec<&str> = drain(&mut rx).iter().map(kind).collect();
    assert_eq!(kinds, ["audit", "audit", "backend"]);
    let change = of_type(&core, AuditEventType::ConfigChange);
    assert_eq!(change[0].action, "switch_backend");
    assert_eq!(change[0].metadata["from"]["model"], "veyra-mock-1");
    assert_eq!(change[0].metadata["to"]["model"], "veyra-mock-2");
    let r = core
        .execute_async(ExecutionRequest::new("hello"))
        .await
        .unwrap();
    assert_eq!(r.model, "veyra-mock-2");

    let err = core.set_backend("mokc", None).await.unwrap_err();
    assert!(err.to_string().contains("did you mean 'mock'"), "{err}");
    assert_eq!(
        core.model_name(),
        "veyra-mock-2",
        "a failed switch changes nothing"
    );
}

/// `:backend` runs the checks start-up runs, with the same messages: OpenAI's own API needs a
/// key, and is never sent the mock's model name; a refused switch changes nothing.
#[tokio::test]
async fn switching_backend_checks_what_start_up_checks() {
    let mut config = VeyraConfig::default();
    config.governance.store = crate::config::AuditStoreKind::Memory;
    let core = VeyraCore::new(config.clone()).unwrap();

    // No key: refused at the switch, as at start-up.
    let switch = core
        .set_backend("openai", Some("gpt-4o-mini"))
        .await
        .unwrap_err()
        .to_string();
    let mut openai = config.clone();
    openai.model.backend = "openai".into();
    openai.model.model = "gpt-4o-mini".into();
    let start = VeyraCore::new(openai.clone()).unwrap_err().to_string();
    assert!(switch.contains("OpenAI needs an API key"), "{switch}");
    assert_eq!(switch, start, "the same message in both places");
    assert_eq!(
        core.backend_name(),
        "mock",
        "a refused switch changes nothing"
    );
    assert_eq!(core.model_name(), "veyra-mock-1");

    // A key (PATH is set in every test environment; its value stands in for a key), but no
    // model named: the mock's would be sent. Refused, with the same message both ways.
    let mut keyed = config.clone();
    keyed.model.api_key_env = Some("PATH".into());
    let core = VeyraCore::new(keyed.clone()).unwrap();
    let switch = core
        .set_backend("openai", None)
        .await
        .unwrap_err()
        .to_string();
    let mut start_keyed = keyed.clone();
    start_keyed.model.backend = "openai".into();
    let start = VeyraCore::new(start_keyed).unwrap_err().to_string();
    assert!(
        switch.contains("'veyra-mock-1' is the mock backend's model"),
        "{switch}"
    );
    assert_eq!(switch, start);
    // A prompt that names the backend meets the same rule.
    let mut request = ExecutionRequest::new("hi");
    request.backend = Some("openai".into());
    let prompt = core.submit(request).unwrap_err().to_string();
    assert_eq!(prompt, start);
    assert!(of_type(&core, AuditEventType::ConfigChange).is_empty());

    // Named, it switches; a server of one's own needs neither key nor a model check.
    core.set_backend("openai", Some("gpt-4o-mini"))
        .await
        .unwrap();
    assert_eq!(core.model_name(), "gpt-4o-mini");
    let mut local = config.clone();
    local.model.base_url = Some("http://127.0.0.1:9/v1".into());
    let core = VeyraCore::new(local).unwrap();
    core.set_backend("openai", None).await.unwrap();
}

/// The link is republished when it moves (a whole second of delay, or the conjunction state),
/// not only on a preset switch; a link that does not move is published once.
#[tokio::test(start_paused = true)]
async fn the_link_watch_publishes_when_the_delay_moves_and_only_then() {
    let links = |rx: &mut tokio::sync::broadcast::Receiver<Event>| {
        drain(rx)
            .into_iter()
            .filter_map(|e| match e {
                Event::LinkChanged { link, switched, .. } => Some((link.one_way_ms, switched)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let (moving, _moving_ws) = core_with(|c| {
        c.latency.simulate = true;
        c.latency.preset = LatencyPreset::Mars;
        c.latency.mode = crate::config::LatencyMode::Ephemeris;
        c.latency.time_scale = 1_000_000.0;
    });
    let mut rx = moving.subscribe();
    let watch = moving.watch_link(Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let seen = links(&mut rx);
    // A million simulated seconds per real second: Mars's delay moves by far more than a
    // second between ticks, so every tick publishes.
    assert!(seen.len() >= 10, "{seen:?}");
    assert!(seen.iter().all(|(_, switched)| !switched));
    assert!(
        seen.windows(2).all(|w| w[0].0.abs_diff(w[1].0) >= 1000),
        "{seen:?}"
    );
    drop(watch);

    let (still, _still_ws) = core_with(|c| {
        c.latency.simulate = true;
        c.latency.preset = LatencyPreset::Lunar;
        c.latency.mode = crate::config::LatencyMode::Fixed;
    });
    let mut rx = still.subscribe();
    let watch = still.watch_link(Duration::from_secs(1));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        links(&mut rx).len(),
        1,
        "published once, then nothing moved"
    );
    still.set_preset(LatencyPreset::Earth).await.unwrap();
    let after = links(&mut rx);
    assert_eq!(after.len(), 1);
    assert!(after[0].1, "a switch says so");
    drop(watch);
}
