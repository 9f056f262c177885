//! Replays over a trail a real core wrote: nothing flips under the same set, a new `forbid`
//! flips what it matches and names itself, and the recorded context rebuilds the question
//! exactly. (A log that does not verify is refused: `tests/cli/audit_attacks.rs`.)

use super::*;
use crate::core::{ExecutionRequest, VeyraCore};

use crate::events::Priority;
use crate::governance::policy::{PolicySources, SourceText};

/// A candidate: the default policy plus `extra`.
fn candidate(extra: &str) -> crate::governance::CedarEngine {
    let mut sources = PolicySources::builtin();
    sources.policies.push(SourceText {
        name: "candidate.cedar".into(),
        text: extra.into(),
    });
    crate::governance::CedarEngine::load(&sources).unwrap()
}

/// A core on the default policy (its trail in memory) that ran a normal and a background
/// prompt.
async fn worked() -> VeyraCore {
    let (core, _ws) = crate::core::testing::core_with(|_| {});
    core.execute_async(ExecutionRequest::new("first").priority(Priority::Normal))
        .await
        .unwrap();
    core.execute_async(ExecutionRequest::new("second").priority(Priority::Background))
        .await
        .unwrap();
    core
}

#[tokio::test]
async fn the_same_set_flips_nothing_and_every_entry_names_the_set_that_decided_it() {
    let core = worked().await;
    let trail = core.audit().unwrap();
    let same = crate::governance::CedarEngine::builtin().unwrap();
    let report = replay(trail, &same, &ReplayWindow::default()).unwrap();
    assert!(report.decided >= 2, "{report:?}");
    assert_eq!(report.unchanged, report.decided);
    assert!(!report.flips());
    assert!(report.unreadable.is_empty(), "{report:?}");
    // Every decision was recorded under the set the core runs, which is the candidate's.
    let hash = same.set_hash().unwrap();
    assert_eq!(report.recorded_sets.len(), 1);
    assert_eq!(report.recorded_sets.get(&hash), Some(&report.decided));
}

#[tokio::test]
async fn a_new_forbid_flips_what_it_matches_counted_under_its_id_with_examples() {
    let core = worked().await;
    let trail = core.audit().unwrap();
    // Background work is forbidden from now on: only the second prompt's decision flips.
    let stricter = candidate(
        r#"@id("no-background")
forbid (principal, action == Veyra::Action::"execute", resource)
when { context has priority && context.priority == "background" };"#,
    );
    let report = replay(trail, &stricter, &ReplayWindow::default()).unwrap();
    assert_eq!(
        (report.allow_to_deny, report.deny_to_allow),
        (1, 0),
        "{report:?}"
    );
    assert_eq!(
        report.by_policy.get("no-background"),
        Some(&PolicyFlips {
            allow_to_deny: 1,
            deny_to_allow: 0
        })
    );
    let flip = &report.examples[0];
    assert_eq!(
        (flip.recorded.as_str(), flip.candidate.as_str()),
        ("allow", "deny")
    );
    assert_eq!(flip.policies, vec!["no-background".to_string()]);
    // A window that ends before any decision replays nothing.
    let before = ReplayWindow {
        since: None,
        until: Some(chrono::Utc::now() - chrono::Duration::days(1)),
    };
    let none = replay(trail, &stricter, &before).unwrap();
    assert_eq!((none.decided, none.flips()), (0, false));
}

#[test]
fn the_recorded_context_rebuilds_the_question_jurisdiction_and_all() {
    let entry = AuditEntry {
        seq: 1,
        id: uuid::Uuid::nil(),
        timestamp: chrono::Utc::now(),
        event_type: AuditEventType::PolicyCheck,
        actor: "operator".into(),
        action: "execute".into(),
        resource: "backend:mock".into(),
        outcome: "allow".into(),
        input_summary: String::new(),
        metadata: serde_json::json!({
            "context": {"destination": "Mars", "preset": "mars", "prompt_chars": 12, "urgent": true},
        }),
        prev_hash: String::new(),
        hash: String::new(),
    };
    let request = recorded_request(&entry).unwrap();
    assert_eq!(
        request.context.get("destination"),
        Some(&ContextValue::Jurisdiction("Mars".into()))
    );
    assert_eq!(
        request.context.get("preset"),
        Some(&ContextValue::Str("mars".into()))
    );
    assert_eq!(
        request.context.get("prompt_chars"),
        Some(&ContextValue::Long(12))
    );
    assert_eq!(
        request.context.get("urgent"),
        Some(&ContextValue::Bool(true))
    );
    let mut odd = entry.clone();
    odd.metadata = serde_json::json!({"context": {"ratio": 0.5}});
    assert!(recorded_request(&odd).unwrap_err().contains("integer"));
    odd.resource = "nonsense".into();
    assert!(recorded_request(&odd).is_err());
}
