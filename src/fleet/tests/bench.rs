//! `veyra bench` fanned out over the fleet: the same run, its items solved by two workers,
//! scores as it does at home; an item asked for again (a run resumed) is gathered, not re-run.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;

use super::*;
use crate::benchmarks::runner::{ItemRef, ItemSolver, Target};
use crate::benchmarks::{BenchStore, Difficulty, FamilyId, RunPlan, RunStatus, Runner};
use crate::fleet::bench::{FleetSolver, item_id};

/// Acknowledgements a long while apart: a test's two busy threads never make a live
/// worker's lease look lapsed.
fn slow_acks(url: &str) -> NatsConfig {
    NatsConfig {
        ack_wait_ms: 10_000,
        ..nats(url)
    }
}

fn plan(count: u32) -> RunPlan {
    RunPlan {
        families: FamilyId::ALL.to_vec(),
        count,
        difficulty: Difficulty::Medium,
        seed: 11,
        epochs: 1,
        weights: BTreeMap::new(),
    }
}

/// A model that makes one calculator call whenever its request declares tools, then answers.
fn scripted(c: &mut VeyraConfig) {
    c.model.mock.script = vec![crate::config::MockRule {
        pattern: "(?s).".into(),
        response: "ANSWER: 42".into(),
        fail: None,
        tool_calls: vec![crate::config::MockTurn::One(crate::config::MockToolCall {
            name: "calculator".into(),
            arguments: serde_json::json!({ "expression": "6*7" }),
            raw_arguments: None,
        })],
        repeat: false,
    }];
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_fanned_out_over_two_workers_scores_as_the_same_run_at_home() {
    let Some(server) = nats_server() else { return };
    let config = slow_acks(&server.url);
    let (a, b, home) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let stop = CancellationToken::new();
    let (cores, running) = workers(&config, &[&a, &b], &stop, scripted).await;
    let submitter = Submitter::new(Fleet::connect(&config, None).await.unwrap());
    let solver: Arc<dyn ItemSolver> = Arc::new(FleetSolver::new(submitter, "fleet test".into()));

    // The same plan at home, and with every item on the fleet.
    let at_home = {
        let core = worker_core(home.path(), scripted);
        let store = Arc::new(BenchStore::in_memory().unwrap());
        let report = Runner::new(core, store.clone())
            .start(&plan(4), &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap();
        (report, store)
    };
    let submitting = worker_core(home.path().join("submitter").as_path(), |_| {});
    let store = Arc::new(BenchStore::in_memory().unwrap());
    let report = Runner::new(submitting.clone(), store.clone())
        .with_solver(solver)
        .start(&plan(4), &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.info.status, RunStatus::Complete);
    let items = report.finished_now;
    assert_eq!(items, at_home.0.finished_now);
    // Task by task, the same score and the same answer as at home.
    let scores = |store: &BenchStore, run: &str| {
        store
            .results(run)
            .unwrap()
            .into_iter()
            .map(|r| (r.task_id, (r.score, r.output, r.error)))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        scores(&store, &report.info.id),
        scores(&at_home.1, &at_home.0.info.id)
    );
    for f in &report.summary.families {
        let home = at_home
            .0
            .summary
            .families
            .iter()
            .find(|h| h.family == f.family)
            .unwrap();
        assert_eq!(f.score.mean, home.score.mean, "{}", f.family);
    }
    stop.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
    // Every item ran on one of the workers, none here: the submitting core's trail holds no
    // execution of an item.
    let on_workers: usize = cores
        .iter()
        .map(|c| {
            executions(c)
                .iter()
                .filter(|e| e.actor == "benchmark" && e.action == "execute")
                .count()
        })
        .sum();
    assert!(
        on_workers >= items,
        "{on_workers} executions for {items} items"
    );
    assert!(
        executions(&submitting)
            .iter()
            .all(|e| e.actor != "benchmark" || e.action != "execute"),
        "no item ran at the submitter"
    );
    // The items' tools ran on the workers, through their gates, and came back as steps.
    let called: usize = cores
        .iter()
        .map(|c| {
            c.audit()
                .unwrap()
                .query(&AuditFilter {
                    event_type: Some(AuditEventType::ToolInvocation),
                    ..AuditFilter::default()
                })
                .unwrap()
                .len()
        })
        .sum();
    assert!(called > 0, "the scripted model's calls ran on the workers");
    for core in &cores {
        assert!(core.verify_audit().unwrap().is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_asked_for_again_is_gathered_and_a_cancelled_one_is_solved_anew() {
    let Some(server) = nats_server() else { return };
    let config = slow_acks(&server.url);
    let submitter = Submitter::new(Fleet::connect(&config, None).await.unwrap());
    let solver = FleetSolver::new(submitter.clone(), "fleet test".into());
    let tasks = plan(1).generate().unwrap();
    let task = tasks
        .iter()
        .find(|t| t.dialogue.is_none())
        .expect("a single-shot task");
    let item = ItemRef {
        run_id: "20261206-000000-resumed",
        task,
        epoch: 0,
    };
    let target = Target {
        backend: "mock".into(),
        model: "veyra-mock-1".into(),
        caller: None,
        before_tools: None,
    };
    // What crosses the bus: watched as any subscriber on the subject could.
    let mut wire_copy = submitter
        .fleet()
        .client
        .subscribe(submitter.fleet().task_subject(crate::events::Priority::Low))
        .await
        .unwrap();
    // The run is stopped before any worker took the item: withdrawn, for good.
    let stopped = CancellationToken::new();
    stopped.cancel();
    let withdrawn = solver.solve(item, &target, &stopped).await;
    assert!(
        matches!(withdrawn, Err(crate::error::VeyraError::Cancelled(_))),
        "{withdrawn:?}"
    );
    let kept = submitter
        .fleet()
        .result(item_id(item, &target, 0))
        .await
        .unwrap();
    assert_eq!(kept.map(|k| k.status), Some("cancelled".into()));
    // The task as published holds no answer key: no expected answer, and no ground truth but
    // the files a scratch directory starts with.
    let published = tokio::time::timeout(Duration::from_secs(10), wire_copy.next())
        .await
        .expect("the item was published")
        .unwrap();
    let sent = TaskMessage::decode(&published.payload).unwrap();
    let sent_task = sent.item.expect("an item").task;
    assert!(
        !task.expected.is_empty(),
        "the task has an answer to keep back"
    );
    assert!(sent_task.expected.is_empty());
    assert!(
        sent_task
            .truth
            .as_object()
            .is_none_or(|t| t.keys().all(|k| k == "files")),
        "{:?}",
        sent_task.truth
    );
    assert_eq!(sent_task.prompt, task.prompt);
    // A worker comes; the run is resumed: the withdrawn generation is not a result, the item
    // is solved anew.
    let a = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (cores, running) = workers(&config, &[&a], &stop, |_| {}).await;
    let first = solver
        .solve(item, &target, &CancellationToken::new())
        .await
        .unwrap();
    // Resumed again: the same item, the same ids, its kept outcome, not run again.
    let again = solver
        .solve(item, &target, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(first, again);
    let kept = submitter
        .fleet()
        .result(item_id(item, &target, 1))
        .await
        .unwrap();
    assert_eq!(kept.map(|k| k.status), Some("succeeded".into()));
    // Another epoch, generation or model is another item.
    let ids = [
        item_id(item, &target, 0),
        item_id(item, &target, 1),
        item_id(ItemRef { epoch: 1, ..item }, &target, 0),
        item_id(
            item,
            &Target {
                model: "another".into(),
                ..target.clone()
            },
            0,
        ),
    ];
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        4
    );
    stop.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
    let trail = executions(&cores[0]);
    let ran = trail
        .iter()
        .filter(|e| e.actor == "benchmark" && e.action == "execute")
        .count();
    assert_eq!(ran, 1, "the item ran once");
    assert_eq!(
        trail.iter().filter(|e| e.action == "fleet_item").count(),
        1,
        "the worker recorded the item it took"
    );
}
