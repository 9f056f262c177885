//! One console over the fleet ([`super::super::view`]): what it is shown and what its commands
//! do, against a real server and workers.

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{nats, nats_server, task, until_final, worker, workers};
use crate::config::VeyraConfig;
use crate::events::{Event, ExecutionId, TaskStatus};
use crate::fleet::{Fleet, Submitter};
use crate::governance::{AuditEventType, AuditFilter};
use crate::service::Inbound;
use crate::service::protocol::{FleetWorker, Reply, Request};

/// What a console folded: the tasks it saw succeed, the workers it was last told of, and
/// how many resyncs it got.
#[derive(Default)]
struct Seen {
    succeeded: HashSet<ExecutionId>,
    submitted: HashSet<ExecutionId>,
    cancelled: HashSet<ExecutionId>,
    workers: Vec<FleetWorker>,
    resyncs: usize,
    live: bool,
}

impl Seen {
    fn take(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Event(Event::TaskSubmitted { id, .. }) => {
                self.submitted.insert(id);
            }
            Inbound::Event(Event::TaskState {
                id,
                status: TaskStatus::Succeeded,
                ..
            }) => {
                self.succeeded.insert(id);
            }
            Inbound::Event(Event::TaskState {
                id,
                status: TaskStatus::Cancelled { .. },
                ..
            }) => {
                self.cancelled.insert(id);
            }
            Inbound::Event(Event::AuditRecorded { .. } | Event::LinkChanged { .. }) => {
                panic!("a worker's audit and link events stay with it")
            }
            Inbound::Fleet(workers) => self.workers = workers,
            Inbound::Resync { .. } => self.resyncs += 1,
            Inbound::Live => self.live = true,
            Inbound::Closed(why) => panic!("the session closed: {why}"),
            _ => {}
        }
    }
}

/// Folds what arrives until `done` holds (a minute at most).
async fn until(
    inbound: &mut tokio::sync::mpsc::Receiver<Inbound>,
    seen: &mut Seen,
    done: impl Fn(&Seen) -> bool,
) {
    let fold = async {
        while !done(seen) {
            match inbound.recv().await {
                Some(i) => seen.take(i),
                None => panic!("the session ended"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), fold)
        .await
        .expect("the console sees it within a minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_over_the_fleet_sees_every_workers_tasks_and_its_commands_reach_them() {
    let Some(server) = nats_server() else { return };
    let config = nats(&server.url);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let stop = CancellationToken::new();
    let (mut cores, mut running) = workers(&config, &[&dir_a], &stop, |_| {}).await;
    let submitter = Submitter::new(Fleet::connect(&config, None).await.unwrap());
    // Tasks finished before the console attaches come in its snapshot.
    let mut before = Vec::new();
    for i in 0..3 {
        let t = task(&format!("before the console {i}"));
        before.push(t.id);
        until_final(submitter.submit(t).await.unwrap()).await;
    }
    let fleet = Fleet::connect(&config, None).await.unwrap();
    let (console, mut inbound) = crate::fleet::attach(fleet, &VeyraConfig::default(), "console")
        .await
        .unwrap();
    assert_eq!(console.runtime.host, "fleet");
    let mut seen = Seen::default();
    until(&mut inbound, &mut seen, |s| s.live).await;
    assert!(
        before.iter().all(|id| seen.succeeded.contains(id)),
        "the snapshot holds what ran before"
    );
    // Its presence may land just after the first listing.
    until(&mut inbound, &mut seen, |s| s.workers.len() == 1).await;
    assert_eq!(seen.workers[0].name, "w0");

    // A second worker comes up: it is counted, and what it runs reaches the console.
    let (second, run) = worker(&config, &dir_b, "w1", &stop, |_| {}).await;
    cores.push(second);
    running.push(run);
    until(&mut inbound, &mut seen, |s| s.workers.len() == 2).await;
    let mut after = Vec::new();
    for i in 0..40 {
        let t = task(&format!("after the console {i}"));
        after.push(t.id);
        until_final(submitter.submit(t).await.unwrap()).await;
    }
    until(&mut inbound, &mut seen, |s| {
        after.iter().all(|id| s.succeeded.contains(id))
    })
    .await;
    let mut by = HashSet::new();
    for id in &after {
        let result = submitter.fleet().result(*id).await.unwrap().unwrap();
        by.insert(result.worker);
    }
    assert_eq!(
        by.len(),
        2,
        "both workers ran tasks the console saw: {by:?}"
    );

    // A prompt from the console goes to the stream and runs on a worker.
    let Reply::Submitted { id } = console
        .request(Request::Submit {
            prompt: "from the console".into(),
            priority: crate::events::Priority::High,
            system: None,
            backend: None,
            model: None,
            tools: Some("none".into()),
            follow: false,
        })
        .await
        .unwrap()
    else {
        panic!("not a submission")
    };
    until(&mut inbound, &mut seen, |s| s.succeeded.contains(&id)).await;

    // A link switch is carried out by every worker, on the console's behalf.
    let reply = console
        .request(Request::SetPreset {
            preset: "mars".into(),
        })
        .await
        .unwrap();
    assert!(
        matches!(reply, Reply::Link { ref link } if link.preset == "mars"),
        "{reply:?}"
    );
    for core in &cores[..2] {
        assert_eq!(core.link_status().preset, "mars");
        let changes = core
            .audit()
            .unwrap()
            .query(&AuditFilter {
                event_type: Some(AuditEventType::LatencyChange),
                ..AuditFilter::default()
            })
            .unwrap();
        let client = &changes.last().expect("the switch is audited").metadata["client"];
        assert!(
            client["transport"]
                .as_str()
                .is_some_and(|t| t.starts_with("nats, from ")),
            "{client}"
        );
    }
    until(&mut inbound, &mut seen, |s| {
        s.workers.len() == 2 && s.workers.iter().all(|w| w.link.preset == "mars")
    })
    .await;

    // What acts on one runtime's store is refused, saying where to do it.
    let refused = console
        .request(Request::Undo { seq: None })
        .await
        .unwrap_err();
    assert!(
        refused.message.contains("veyra attach ssh://"),
        "{refused:?}"
    );

    // Anyone on the bus may send a worker a command: what acts on its store or grants anything
    // is refused by the worker itself, whoever asks; garbage is answered, not obeyed.
    let raw = Fleet::connect(&config, None).await.unwrap();
    let subject = raw.node_command_subject(&crate::fleet::node::node_key("w0"));
    for (payload, kind) in [
        (
            serde_json::to_vec(&crate::fleet::node::NodeCommand {
                by: crate::fleet::node::NodeCaller::here(),
                command: Request::InvokeTool {
                    name: "write_file".into(),
                    args: serde_json::json!({"path": "x.txt", "content": "from the bus"}),
                },
            })
            .unwrap(),
            "refused",
        ),
        // Harmless on the worker's socket, and still not taken from the bus.
        (
            serde_json::to_vec(&crate::fleet::node::NodeCommand {
                by: crate::fleet::node::NodeCaller::here(),
                command: Request::Approvals,
            })
            .unwrap(),
            "refused",
        ),
        (b"{\"not\": \"a command\"}".to_vec(), "bad_request"),
    ] {
        let answer = raw
            .client
            .request(subject.clone(), payload.into())
            .await
            .unwrap();
        let Ok(crate::service::protocol::ServerMessage::Response { error: Some(e), .. }) =
            serde_json::from_slice(&answer.payload)
        else {
            panic!("{answer:?}")
        };
        assert_eq!(e.kind, kind, "{e:?}");
    }
    assert!(!dir_a.path().join("ws").join("x.txt").exists());

    stop.cancel();
    for r in running {
        let _ = r.await;
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_shrugs_off_forged_events_and_follows_a_worker_started_again_under_its_name() {
    let Some(server) = nats_server() else { return };
    let config = nats(&server.url);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first_stop = CancellationToken::new();
    let (_first, first_run) = worker(&config, &dir_a, "w0", &first_stop, |_| {}).await;
    let submitter = Submitter::new(Fleet::connect(&config, None).await.unwrap());
    let ran = task("on the first w0");
    let ran_id = ran.id;
    until_final(submitter.submit(ran).await.unwrap()).await;
    let fleet = Fleet::connect(&config, None).await.unwrap();
    let (console, mut inbound) =
        crate::fleet::attach(fleet.clone(), &VeyraConfig::default(), "console")
            .await
            .unwrap();
    let mut seen = Seen::default();
    until(&mut inbound, &mut seen, |s| {
        s.live && s.succeeded.contains(&ran_id) && s.workers.len() == 1
    })
    .await;
    let resyncs = seen.resyncs;

    // Events under a key no worker has: not shown, and no resync.
    let forged = ExecutionId::new();
    let line = crate::service::protocol::line(&crate::service::protocol::ServerMessage::Event {
        event: Event::TaskSubmitted {
            id: forged,
            kind: "execute".into(),
            title: "forged".into(),
            priority: crate::events::Priority::Normal,
            backend: None,
            model: None,
            actor: None,
            at: chrono::Utc::now(),
        },
    });
    let w0 = crate::fleet::node::node_key("w0");
    for (key, header) in [
        ("nobody-00000000".to_string(), r#"{"epoch":1,"seq":1}"#),
        // The worker's own subject, with numbers that would overflow: a resync, no panic.
        (w0.clone(), r#"{"epoch":1,"seq":18446744073709551615}"#),
        (w0.clone(), "not a header"),
    ] {
        fleet
            .client
            .publish(
                fleet.node_events_subject(&key),
                format!("{header}\n{line}").into(),
            )
            .await
            .unwrap();
    }
    fleet.client.flush().await.unwrap();
    // The next real task shows; the forged one never does.
    let after = task("after the forgeries");
    let after_id = after.id;
    until_final(submitter.submit(after).await.unwrap()).await;
    until(&mut inbound, &mut seen, |s| s.succeeded.contains(&after_id)).await;
    assert!(
        !seen.submitted.contains(&forged),
        "a forged event was shown"
    );
    assert!(
        seen.resyncs <= resyncs + 1,
        "one resync at most for the forged epoch: {} after {resyncs}",
        seen.resyncs
    );

    // The worker stops and another process takes its name (same host and pid here: only its
    // epoch tells it apart). The console follows the new one.
    first_stop.cancel();
    let _ = first_run.await;
    let second_stop = CancellationToken::new();
    let (_second, second_run) = worker(&config, &dir_b, "w0", &second_stop, |_| {}).await;
    let again = task("on the second w0");
    let again_id = again.id;
    until_final(submitter.submit(again).await.unwrap()).await;
    until(&mut inbound, &mut seen, |s| s.succeeded.contains(&again_id)).await;
    second_stop.cancel();
    let _ = second_run.await;

    // With no worker up, a prompt from the console is shown queued at once, not nowhere.
    let Reply::Submitted { id } = console
        .request(Request::Submit {
            prompt: "while nobody works".into(),
            priority: crate::events::Priority::Normal,
            system: None,
            backend: None,
            model: None,
            tools: None,
            follow: false,
        })
        .await
        .unwrap()
    else {
        panic!("not a submission")
    };
    until(&mut inbound, &mut seen, |s| s.submitted.contains(&id)).await;
    // Cancelled before any worker took it: withdrawn, and told as cancelled.
    console.request(Request::Cancel { id }).await.unwrap();
    until(&mut inbound, &mut seen, |s| s.cancelled.contains(&id)).await;
    assert_eq!(
        submitter
            .fleet()
            .result(id)
            .await
            .unwrap()
            .map(|r| r.status),
        Some("cancelled".to_string())
    );
    drop(server);
}
