//! `veyra bench` fanned out over the fleet: the same run, its items solved by two workers,
//! scores as it does at home; an item asked for again (a run resumed) is gathered, not re-run.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;

use super::*;
use crate::benchmarks::runner::{ItemRef, ItemSolver, MAX_CHUNK, SolvedItem, Target};
use crate::benchmarks::{BenchStore, BenchTask, Difficulty, FamilyId, RunPlan, RunStatus, Runner};
use crate::fleet::bench::{FleetSolver, chunk_id};

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

/// The mock's model, as a run's items are aimed at it.
fn mock_target() -> Target {
    Target {
        backend: "mock".into(),
        model: "veyra-mock-1".into(),
        caller: None,
        before_tools: None,
    }
}

/// The first `n` single-shot tasks (no dialogue) of `tasks`.
fn single_shot(tasks: &[BenchTask], n: usize) -> Vec<&BenchTask> {
    let single: Vec<&BenchTask> = tasks
        .iter()
        .filter(|t| t.dialogue.is_none())
        .take(n)
        .collect();
    assert_eq!(single.len(), n, "{n} single-shot tasks");
    single
}

/// `tasks` as epoch 0 of run `run_id`, every item wanted.
fn items_of<'a>(run_id: &'a str, tasks: &[&'a BenchTask]) -> Vec<ItemRef<'a>> {
    tasks
        .iter()
        .map(|task| ItemRef {
            run_id,
            task,
            epoch: 0,
            wanted: true,
        })
        .collect()
}

/// Creates `id`'s record final, as `worker` would have kept it: `status`, `error` and what
/// each item left.
async fn keep_final(
    submitter: &Submitter,
    id: ExecutionId,
    worker: &str,
    status: &str,
    error: &str,
    items: Vec<wire::ItemOutcome>,
) {
    let record = Attempt {
        worker: worker.into(),
        attempt: 1,
        phase: Phase::Final,
        at: chrono::Utc::now(),
        outcome: Some(wire::TaskResult {
            id,
            worker: worker.into(),
            attempt: 1,
            status: status.into(),
            text: String::new(),
            error: Some(error.into()),
            items,
            at: chrono::Utc::now(),
        }),
    };
    submitter
        .fleet()
        .attempts()
        .create(wire::key(id), serde_json::to_vec(&record).unwrap().into())
        .await
        .unwrap();
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

/// [`scripted`], on workers that solve 15 items at once (a queue of 30: room for one chunk of
/// eight and not two), and take a moment over each answer.
fn scripted_in_small_rooms(c: &mut VeyraConfig) {
    scripted(c);
    c.runtime.queue_capacity = 30;
    c.model.mock.token_delay_ms = 20;
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
    let (cores, running) = workers(&config, &[&a, &b], &stop, scripted_in_small_rooms).await;
    let submitter = Submitter::new(Fleet::connect(&config, None).await.unwrap());
    // Eight items to a chunk: the run's 28 items go in four chunks, as a large run's would.
    let solver: Arc<dyn ItemSolver> =
        Arc::new(FleetSolver::new(submitter, "fleet test".into()).with_chunk(8));

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
        .with_solver(solver.clone())
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
    // Each worker holds one chunk at a time (its room is under two): both had a share.
    for (n, core) in cores.iter().enumerate() {
        let ran = executions(core)
            .iter()
            .filter(|e| e.actor == "benchmark" && e.action == "execute")
            .count();
        assert!(ran > 0, "worker {n} solved no item");
    }
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

/// A worker's entry in the presence bucket, saying `room`.
fn present(name: &str, room: usize) -> crate::service::protocol::FleetWorker {
    let (core, _workspace) = crate::core::testing::core_with(|_| {});
    crate::service::protocol::FleetWorker {
        name: name.into(),
        host: "gpu-1".into(),
        pid: 7,
        version: "0".into(),
        backend: "mock".into(),
        model: "veyra-mock-1".into(),
        link: core.link_status(),
        running: 0,
        room,
        at: chrono::Utc::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_keeps_in_flight_the_room_its_workers_say_they_have_within_bounds() {
    use crate::fleet::node::node_key;
    let Some(server) = nats_server() else { return };
    let config = nats(&server.url);
    let submitter = Submitter::new(Fleet::connect(&config, None).await.unwrap());
    let solver = FleetSolver::new(submitter.clone(), "fleet test".into());
    // Nobody up: the run goes with its own figure.
    assert_eq!(solver.room().await, None);
    let bucket = submitter.fleet().workers();
    let put = |key: String, bytes: Vec<u8>| {
        let bucket = bucket.clone();
        async move { bucket.put(key, bytes.into()).await.unwrap() }
    };
    let entry = |w: &crate::service::protocol::FleetWorker| serde_json::to_vec(w).unwrap();
    // A worker of an older version says no room: still nothing to go by.
    let mut old = serde_json::to_value(present("old", 0)).unwrap();
    old.as_object_mut().unwrap().remove("room");
    put(node_key("old"), serde_json::to_vec(&old).unwrap()).await;
    assert_eq!(solver.room().await, None);
    // Two workers: their rooms, summed.
    put(node_key("a"), entry(&present("a", 512))).await;
    put(node_key("b"), entry(&present("b", 256))).await;
    assert_eq!(solver.room().await, Some(768));
    // An entry under another worker's key, and one that does not read, count for nothing.
    put(node_key("c"), entry(&present("someone-else", 4096))).await;
    put(node_key("d"), b"{not json".to_vec()).await;
    assert_eq!(solver.room().await, Some(768));
    // A worker that says more room than any run keeps in flight is held to the cap.
    put(node_key("e"), entry(&present("e", usize::MAX))).await;
    assert_eq!(solver.room().await, Some(crate::fleet::bench::MAX_ROOM));
    // Items go to a chunk by the run's size unless the solver is told otherwise.
    assert_eq!(solver.chunk(3_000), 23);
    assert_eq!(solver.chunk(7_000), MAX_CHUNK);
    assert_eq!(solver.clone().with_chunk(0).chunk(7_000), 1);
    assert_eq!(solver.with_chunk(1_000).chunk(7_000), MAX_CHUNK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_asked_for_again_is_gathered_and_a_cancelled_one_is_solved_anew() {
    let Some(server) = nats_server() else { return };
    let config = slow_acks(&server.url);
    let submitter = Submitter::new(Fleet::connect(&config, None).await.unwrap());
    let solver = FleetSolver::new(submitter.clone(), "fleet test".into());
    let tasks = plan(2).generate().unwrap();
    let single = single_shot(&tasks, 2);
    let items = items_of("20261206-000000-resumed", &single);
    let target = mock_target();
    // What crosses the bus: watched as any subscriber on the subject could.
    let mut wire_copy = submitter
        .fleet()
        .client
        .subscribe(submitter.fleet().task_subject(crate::events::Priority::Low))
        .await
        .unwrap();
    // The run is stopped before any worker took the chunk: withdrawn, for good, each of its
    // items cancelled.
    let stopped = CancellationToken::new();
    stopped.cancel();
    let withdrawn = solver.solve(&items, &target, &stopped).await;
    assert_eq!(withdrawn.len(), 2);
    assert!(
        withdrawn
            .iter()
            .all(|w| matches!(w, Err(crate::error::VeyraError::Cancelled(_)))),
        "{withdrawn:?}"
    );
    let kept = submitter
        .fleet()
        .result(chunk_id(&items, &target, 0))
        .await
        .unwrap();
    assert_eq!(kept.map(|k| k.status), Some("cancelled".into()));
    // The task as published holds both items, and no answer key: no expected answer, and no
    // ground truth but the files a scratch directory starts with.
    let published = tokio::time::timeout(Duration::from_secs(10), wire_copy.next())
        .await
        .expect("the chunk was published")
        .unwrap();
    let sent = TaskMessage::decode(&published.payload).unwrap();
    assert_eq!(sent.items.len(), 2);
    // Its header says so, for the workers to share chunks by before decoding them.
    let said = published
        .headers
        .as_ref()
        .and_then(|h| h.get(wire::ITEMS_HEADER));
    assert_eq!(said.map(|v| v.as_str()), Some("2"));
    for (sent, task) in sent.items.iter().zip(&single) {
        assert!(
            !task.expected.is_empty(),
            "the task has an answer to keep back"
        );
        assert!(sent.task.expected.is_empty());
        assert!(
            sent.task
                .truth
                .as_object()
                .is_none_or(|t| t.keys().all(|k| k == "files")),
            "{:?}",
            sent.task.truth
        );
        assert_eq!(sent.task.prompt, task.prompt);
    }
    // A worker comes; the run is resumed: the withdrawn generation is not a result, the
    // chunk is solved anew.
    let a = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (cores, running) = workers(&config, &[&a], &stop, |_| {}).await;
    let first: Vec<_> = solver
        .solve(&items, &target, &CancellationToken::new())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(first.len(), 2);
    assert_ne!(first[0].text, "", "{first:?}");
    // Resumed again: the same chunk, the same ids, its kept outcomes, not run again.
    let again: Vec<_> = solver
        .solve(&items, &target, &CancellationToken::new())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, again);
    let kept = submitter
        .fleet()
        .result(chunk_id(&items, &target, 1))
        .await
        .unwrap()
        .expect("the second generation kept its outcome");
    assert_eq!(kept.status, "succeeded");
    assert_eq!(kept.items.len(), 2);
    // Another epoch, generation, model or member is another chunk.
    let other_epoch: Vec<ItemRef<'_>> = items.iter().map(|i| ItemRef { epoch: 1, ..*i }).collect();
    let ids = [
        chunk_id(&items, &target, 0),
        chunk_id(&items, &target, 1),
        chunk_id(&other_epoch, &target, 0),
        chunk_id(&items[..1], &target, 0),
        chunk_id(
            &items,
            &Target {
                model: "another".into(),
                ..target.clone()
            },
            0,
        ),
    ];
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        5
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
    assert_eq!(ran, 2, "each item ran once");
    let taken: Vec<_> = trail.iter().filter(|e| e.action == "fleet_item").collect();
    assert_eq!(taken.len(), 1, "the worker recorded the chunk it took");
    let named: Vec<&str> = taken[0].metadata["items"]
        .as_array()
        .expect("the chunk's items")
        .iter()
        .filter_map(|i| i["task"].as_str())
        .collect();
    assert_eq!(named, [single[0].id.as_str(), single[1].id.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_lost_after_its_tools_acted_fails_each_item_and_none_runs_again() {
    let Some(server) = nats_server() else { return };
    let config = slow_acks(&server.url);
    let submitter = Submitter::new(Fleet::connect(&config, None).await.unwrap());
    let solver = FleetSolver::new(submitter.clone(), "fleet test".into());
    let tasks = plan(1).generate().unwrap();
    let items = items_of("20261206-000000-lost", &single_shot(&tasks, 3));
    let target = mock_target();
    // A worker took the chunk, an item's tools acted, and the worker was lost: the worker that
    // found it kept the loss as the whole chunk's outcome.
    let id = chunk_id(&items, &target, 0);
    let why = "lost on worker w1 after its tools had acted or its answer had streamed";
    keep_final(&submitter, id, "w2", "failed", why, Vec::new()).await;
    // A worker is there, and would run the chunk if it could be run again.
    let a = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (cores, running) = workers(&config, &[&a], &stop, |_| {}).await;
    let told = solver
        .solve(&items, &target, &CancellationToken::new())
        .await;
    assert_eq!(told.len(), 3);
    for outcome in &told {
        let e = outcome
            .as_ref()
            .expect_err("a lost chunk's item")
            .to_string();
        assert!(e.contains(why), "{e}");
    }
    stop.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
    assert!(
        executions(&cores[0]).iter().all(|e| e.actor != "benchmark"),
        "nothing of the lost chunk ran again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_chunk_the_fleet_never_kept_solves_only_the_items_the_run_lacks_each_alone() {
    let Some(server) = nats_server() else { return };
    let config = slow_acks(&server.url);
    let submitter = Submitter::new(Fleet::connect(&config, None).await.unwrap());
    let solver = FleetSolver::new(submitter.clone(), "fleet test".into());
    let tasks = plan(1).generate().unwrap();
    // The run has the first item already (it ran at home, say): the fleet never kept this
    // chunk, so its items are not asked for together.
    let mut items = items_of("20261206-000000-partly", &single_shot(&tasks, 3));
    items[0].wanted = false;
    let target = mock_target();
    let a = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (cores, running) = workers(&config, &[&a], &stop, |_| {}).await;
    let told = solver
        .solve(&items, &target, &CancellationToken::new())
        .await;
    assert_eq!(told.len(), 3);
    assert!(told[0].is_err(), "the item the run has is not solved");
    assert!(told[1].is_ok() && told[2].is_ok(), "{told:?}");
    // Each wanted item went alone, under the id it has alone whatever the rest of its chunk.
    for item in &items[1..] {
        let kept = submitter
            .fleet()
            .result(chunk_id(std::slice::from_ref(item), &target, 0))
            .await
            .unwrap();
        assert_eq!(kept.map(|k| k.status), Some("succeeded".into()));
    }
    // The whole chunk's record was made final by the submitter, so a copy of it still queued
    // somewhere is never run.
    let whole = submitter
        .fleet()
        .result(chunk_id(&items, &target, 0))
        .await
        .unwrap()
        .expect("the whole chunk set aside");
    assert_eq!(whole.status, "alone");
    assert!(whole.items.is_empty());
    // A chunk of which the run wants nothing is not asked for at all.
    let none: Vec<ItemRef<'_>> = items
        .iter()
        .map(|i| ItemRef {
            wanted: false,
            ..*i
        })
        .collect();
    let told = solver
        .solve(&none[1..], &target, &CancellationToken::new())
        .await;
    assert!(told.iter().all(Result::is_err), "{told:?}");
    assert!(
        submitter
            .fleet()
            .result(chunk_id(&none[1..], &target, 0))
            .await
            .unwrap()
            .is_none()
    );
    // Asked again (a second resume): gathered, not run again.
    let again = solver
        .solve(&items, &target, &CancellationToken::new())
        .await;
    assert!(again[1].is_ok() && again[2].is_ok());
    stop.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
    let ran = executions(&cores[0])
        .iter()
        .filter(|e| e.actor == "benchmark" && e.action == "execute")
        .count();
    assert_eq!(ran, 2, "only the two items the run lacked ran, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_a_chunk_found_cancelled_only_what_never_acted_is_solved_again() {
    let Some(server) = nats_server() else { return };
    let config = slow_acks(&server.url);
    let submitter = Submitter::new(Fleet::connect(&config, None).await.unwrap());
    let solver = FleetSolver::new(submitter.clone(), "fleet test".into());
    let tasks = plan(1).generate().unwrap();
    let items = items_of("20261206-000000-stopped", &single_shot(&tasks, 3));
    let target = mock_target();
    // A run stopped earlier: its chunk was cancelled on a worker after the first item's tools
    // had acted, before the second started, and after the third had finished.
    let id = chunk_id(&items, &target, 0);
    let told = |status: &str, acted: bool, item: Option<SolvedItem>| wire::ItemOutcome {
        status: status.into(),
        error: (status == "cancelled").then(|| "the run was stopped".into()),
        item,
        acted,
    };
    let finished = SolvedItem {
        text: "kept from the first generation".into(),
        ..SolvedItem::default()
    };
    let items_told = vec![
        told("cancelled", true, None),
        told("cancelled", false, None),
        told("succeeded", false, Some(finished.clone())),
    ];
    keep_final(
        &submitter,
        id,
        "w1",
        "cancelled",
        "cancelled on the fleet",
        items_told,
    )
    .await;
    let a = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (cores, running) = workers(&config, &[&a], &stop, |_| {}).await;
    let outcomes = solver
        .solve(&items, &target, &CancellationToken::new())
        .await;
    assert_eq!(outcomes.len(), 3);
    let first = outcomes[0]
        .as_ref()
        .expect_err("it acted before it was cancelled");
    assert!(
        first.to_string().contains("after its tools had acted"),
        "{first}"
    );
    let second = outcomes[1].as_ref().expect("solved anew");
    assert_ne!(second.text, "", "{second:?}");
    assert_eq!(outcomes[2].as_ref().ok(), Some(&finished));
    // The second item alone went out as the next generation.
    let next = submitter
        .fleet()
        .result(chunk_id(&items[1..2], &target, 1))
        .await
        .unwrap()
        .expect("the next generation of the chunk, the second item alone");
    assert_eq!(next.items.len(), 1);
    stop.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
    let ran = executions(&cores[0])
        .iter()
        .filter(|e| e.actor == "benchmark" && e.action == "execute")
        .count();
    assert_eq!(ran, 1, "only the item that never ran was solved");
}
