//! IMDP dialogues through the runner: one execution per turn as actor `benchmark`, scored from
//! the final message, a failing turn failing the task, and cancellation mid-dialogue.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::benchmarks::dialogue::FINAL_HEADER;
use crate::benchmarks::framework::{Difficulty, FamilyId};
use crate::benchmarks::runner::{Progress, RunPlan, Runner};
use crate::benchmarks::store::{BenchStore, RunStatus};
use crate::config::MockRule;
use crate::core::VeyraCore;
use crate::core::testing::core_with;
use crate::events::{Event, TaskStatus};
use crate::governance::{AuditEventType, AuditFilter};

fn plan(difficulty: Difficulty, count: u32) -> RunPlan {
    RunPlan {
        families: vec![FamilyId::Imdp],
        count,
        difficulty,
        seed: 7,
        epochs: 1,
        weights: BTreeMap::new(),
    }
}

fn rule(pattern: &str, response: &str) -> MockRule {
    MockRule {
        pattern: pattern.into(),
        response: response.into(),
        fail: None,
        tool_calls: Vec::new(),
        repeat: false,
    }
}

fn executions(core: &VeyraCore) -> Vec<crate::governance::AuditEntry> {
    let filter = AuditFilter {
        event_type: Some(AuditEventType::Execution),
        ..Default::default()
    };
    core.audit().unwrap().query(&filter).unwrap()
}

#[tokio::test]
async fn a_dialogue_runs_one_execution_per_turn_as_benchmark_and_scores_its_final_message() {
    let tasks = plan(Difficulty::Medium, 2).generate().unwrap();
    // Negotiation turns get the mock's own text; each final turn answers with its task's plan.
    let (core, _ws) = core_with(|c| {
        c.model.mock.script = tasks
            .iter()
            .map(|t| {
                rule(
                    &format!(
                        "(?s)^IMDP negotiation {}\\..*The negotiation is over",
                        regex::escape(&t.id)
                    ),
                    &format!("Here is our agreement.\n```json\n{}\n```", t.expected),
                )
            })
            .collect();
    });
    let store = Arc::new(BenchStore::in_memory().unwrap());
    let runner = Runner::new(core.clone(), store.clone());
    let report = runner
        .start_with_tasks(
            &plan(Difficulty::Medium, 2),
            tasks.clone(),
            &CancellationToken::new(),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(report.info.status, RunStatus::Complete);
    assert_eq!(report.summary.families[0].score.mean, 1.0);
    // 3 agents × 2 rounds + the final message, per task, all as actor benchmark.
    let entries = executions(&core);
    assert_eq!(entries.len(), 2 * 7);
    assert!(entries.iter().all(|e| e.actor == "benchmark"));
    let results = store.results(&report.info.id).unwrap();
    assert_eq!(results.len(), 2);
    for (r, t) in results.iter().zip(&tasks) {
        assert_eq!(r.task_id, t.id);
        assert_eq!(r.score, 1.0, "{}", r.reason);
        // The stored output is the transcript, every turn in order, then the final message.
        let d = t.dialogue.as_ref().unwrap();
        let mut at = 0;
        for round in 1..=2 {
            for a in &d.agents {
                let header = format!("=== round {round} of 2 · {} ===", a.name);
                let found = r.output[at..].find(&header).map(|i| i + at);
                assert!(
                    found.is_some(),
                    "{header} missing after {at}:\n{}",
                    r.output
                );
                at = found.unwrap_or(at);
            }
        }
        assert!(
            r.output
                .contains(&format!("{FINAL_HEADER}{} ===", d.agents[0].name))
        );
        assert!(r.output.ends_with("```"));
        // Tokens are the sums over the 7 turns: every turn's prompt holds the briefing.
        let briefing_words = t.prompt.split_whitespace().count() as u64;
        assert!(r.tokens_in > 7 * briefing_words, "{}", r.tokens_in);
        assert!(r.tokens_out > 0);
    }
    // The tasks came back from the store with their dialogues.
    assert_eq!(store.tasks(&report.info.id).unwrap(), tasks);
}

#[tokio::test]
async fn the_mock_baseline_scores_0_and_a_failing_turn_fails_the_task() {
    let (core, _ws) = core_with(|_| {});
    let store = Arc::new(BenchStore::in_memory().unwrap());
    let report = Runner::new(core, store)
        .start(
            &plan(Difficulty::Easy, 3),
            &CancellationToken::new(),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(report.summary.families[0].score.mean, 0.0);
    assert_eq!(report.summary.families[0].errors, 0);

    // The second agent's turn fails: the task is kept with score 0 and the error.
    let tasks = plan(Difficulty::Easy, 1).generate().unwrap();
    let second = tasks[0].dialogue.as_ref().unwrap().agents[1].name.clone();
    let (core, _ws) = core_with(|c| {
        c.runtime.retries = 0;
        c.model.retries = 0;
        let mut r = rule(&format!("You are {second}\\."), "");
        r.fail = Some(crate::config::MockFailure {
            kind: crate::config::MockFailureKind::BadRequest,
            after_tokens: 0,
            message: Some("injected".into()),
        });
        c.model.mock.script = vec![r];
    });
    let store = Arc::new(BenchStore::in_memory().unwrap());
    let report = Runner::new(core.clone(), store.clone())
        .start(
            &plan(Difficulty::Easy, 1),
            &CancellationToken::new(),
            &mut |_| {},
        )
        .await
        .unwrap();
    let results = store.results(&report.info.id).unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].score, 0.0);
    assert!(
        results[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("injected")
    );
    // The closer never spoke: two executions, the second failed.
    assert_eq!(executions(&core).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn cancelling_mid_dialogue_cancels_the_running_turn_and_starts_no_other() {
    let (core, _ws) = core_with(|c| c.model.mock.token_delay_ms = 20);
    let store = Arc::new(BenchStore::in_memory().unwrap());
    let runner = Runner::new(core.clone(), store.clone());
    let cancel = CancellationToken::new();
    // Cancel as soon as the second turn is submitted: the first has finished, the second runs.
    let mut rx = core.subscribe();
    let trigger = cancel.clone();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut submitted = Vec::new();
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            if let Event::TaskSubmitted { id, .. } = &event {
                submitted.push(*id);
                if submitted.len() == 2 {
                    trigger.cancel();
                }
            }
            if let Event::TaskSubmitted { id, .. } | Event::TaskState { id, .. } = &event {
                seen.push((*id, event.clone()));
            }
            // Done when the second turn has reached its final state.
            if let Event::TaskState { id, status, .. } = &event
                && submitted.get(1) == Some(id)
                && status.is_final()
            {
                break;
            }
        }
        seen
    });
    let mut progress = Vec::new();
    let report = runner
        .start(&plan(Difficulty::Extreme, 1), &cancel, &mut |p| {
            progress.push(p)
        })
        .await
        .unwrap();
    assert_eq!(report.info.status, RunStatus::Cancelled);
    assert_eq!(report.finished_now, 0);
    assert!(store.results(&report.info.id).unwrap().is_empty());
    assert!(
        !progress
            .iter()
            .any(|p| matches!(p, Progress::TaskFinished { .. }))
    );
    // Nothing is left running, and no turn started after the cancel.
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        core.scheduler().wait_idle(),
    )
    .await
    .unwrap();
    assert_eq!(core.scheduler().active(), 0);
    let seen = tokio::time::timeout(std::time::Duration::from_secs(5), watcher)
        .await
        .unwrap()
        .unwrap();
    assert!(executions(&core).len() <= 2);
    let submitted: Vec<_> = seen
        .iter()
        .filter(|(_, e)| matches!(e, Event::TaskSubmitted { .. }))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(submitted.len(), 2, "the first turn and the one cancelled");
    let last_state = |id| {
        seen.iter()
            .rev()
            .find_map(|(i, e)| match e {
                Event::TaskState { status, .. } if *i == id => Some(status.clone()),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(last_state(submitted[0]), TaskStatus::Succeeded);
    assert!(matches!(
        last_state(submitted[1]),
        TaskStatus::Cancelled { .. }
    ));
    // Resume plays the whole dialogue again: 9 more turns for 4 agents × 2 rounds + 1.
    let before = executions(&core).len();
    let resumed = runner
        .resume(&report.info.id, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(resumed.info.status, RunStatus::Complete);
    assert_eq!(executions(&core).len(), before + 9);
}
