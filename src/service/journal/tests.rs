//! The journal on its own: a slow client's lag and resync, and what it keeps.

use super::*;
use crate::events::{Priority, TaskStatus};

#[test]
fn a_slow_client_is_marked_lagged_and_resynced_with_nothing_missed_or_doubled() {
    let journal = Journal::default();
    let mut sub = journal.subscribe();
    // A new subscriber starts lagged: nothing reaches it before its snapshot.
    let (missed, snapshot) = journal.resync(sub.id, &mut sub.rx);
    assert_eq!((missed, snapshot.events.len()), (0, 0));
    let id = ExecutionId::new();
    journal.emit(Event::TaskSubmitted {
        id,
        kind: "execute".into(),
        title: "t".into(),
        priority: Priority::Normal,
        backend: None,
        model: None,
        actor: None,
        at: chrono::Utc::now(),
    });
    for n in 0..QUEUE + 10 {
        journal.emit(Event::OutputDelta {
            id,
            text: format!("{n} "),
        });
    }
    assert!(sub.lagged.load(std::sync::atomic::Ordering::SeqCst));
    // The queue held what fit (the submission and QUEUE - 1 pieces); the other 11 were
    // counted, not queued.
    let (missed, snapshot) = journal.resync(sub.id, &mut sub.rx);
    assert_eq!(missed, 11);
    assert!(
        sub.rx.try_recv().is_err(),
        "what was queued before the snapshot is gone"
    );
    // The snapshot holds the task with its whole answer joined.
    let text: String = snapshot
        .events
        .iter()
        .filter_map(|e| match e {
            Event::OutputDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(text.starts_with("0 1 2 ") && text.ends_with(&format!("{} ", QUEUE + 9)));
    // Live again: the next event arrives once.
    journal.emit(Event::OutputDelta {
        id,
        text: "after".into(),
    });
    let line = sub.rx.try_recv().unwrap();
    assert!(line.contains("after"));
    assert!(sub.rx.try_recv().is_err());
}

#[test]
fn the_journal_keeps_bounded_history_and_drops_answered_questions() {
    let journal = Journal::default();
    for n in 0..super::MAX_ENDED + 50 {
        let id = ExecutionId::new();
        journal.emit(Event::TaskSubmitted {
            id,
            kind: "execute".into(),
            title: format!("{n}"),
            priority: Priority::Normal,
            backend: None,
            model: None,
            actor: None,
            at: chrono::Utc::now(),
        });
        journal.emit(Event::ConfirmationRequested {
            request: n as u64,
            id,
            operation: "execute".into(),
            reason: "r".into(),
            detail: None,
            scopable: false,
        });
        journal.emit(Event::OutputDelta {
            id,
            text: "x".repeat(super::MAX_OUTPUT + 10),
        });
        journal.emit(Event::TaskState {
            id,
            status: TaskStatus::Succeeded,
            attempt: 1,
            at: chrono::Utc::now(),
        });
    }
    let snapshot = journal.snapshot();
    let tasks = snapshot
        .iter()
        .filter(|e| matches!(e, Event::TaskSubmitted { .. }))
        .count();
    assert_eq!(tasks, super::MAX_ENDED);
    assert!(
        !snapshot
            .iter()
            .any(|e| matches!(e, Event::ConfirmationRequested { .. })),
        "a task that ended asks nothing"
    );
    // An answer cut at the cap says so.
    assert!(snapshot.iter().any(|e| matches!(e,
        Event::OutputDelta { text, .. } if text.contains("10 more characters"))));
}

fn submitted(id: ExecutionId, title: &str) -> Event {
    Event::TaskSubmitted {
        id,
        kind: "execute".into(),
        title: title.into(),
        priority: Priority::Normal,
        backend: None,
        model: None,
        actor: None,
        at: chrono::Utc::now(),
    }
}

#[test]
fn a_snapshot_for_a_live_forwarder_says_how_many_of_its_queued_lines_it_holds() {
    let journal = Journal::default();
    let mut sub = journal.subscribe();
    let _ = journal.resync(sub.id, &mut sub.rx);
    let (a, b) = (ExecutionId::new(), ExecutionId::new());
    journal.emit(submitted(a, "a"));
    journal.emit(submitted(b, "b"));
    // Taken by the forwarder: one; still queued: one. The snapshot holds both, and says so.
    assert!(sub.rx.try_recv().is_ok());
    let snapshot = journal.snapshot_for(sub.id);
    assert_eq!((snapshot.queued, snapshot.events.len()), (2, 2));
    // The queue is left as it was: the forwarder still sends line 2 to those already live.
    assert!(sub.rx.try_recv().is_ok());
    journal.emit(submitted(ExecutionId::new(), "c"));
    assert_eq!(journal.snapshot_for(sub.id).queued, 3);
    // Paused, nothing is queued (nor encoded) for it; a resync starts the count again.
    journal.pause(sub.id);
    journal.emit(submitted(ExecutionId::new(), "d"));
    assert!(sub.rx.try_recv().is_ok(), "line 3, queued before the pause");
    assert!(sub.rx.try_recv().is_err());
    let (_, snapshot) = journal.resync(sub.id, &mut sub.rx);
    assert_eq!((snapshot.queued, snapshot.events.len()), (0, 4));
    journal.emit(submitted(ExecutionId::new(), "e"));
    assert_eq!(journal.snapshot_for(sub.id).queued, 1);
}

#[test]
fn an_execution_submitted_again_is_kept_once() {
    let journal = Journal::default();
    let id = ExecutionId::new();
    journal.emit(submitted(id, "first attempt"));
    journal.emit(Event::TaskState {
        id,
        status: TaskStatus::Running,
        attempt: 1,
        at: chrono::Utc::now(),
    });
    journal.emit(submitted(id, "taken over"));
    let shown: Vec<String> = journal
        .snapshot()
        .iter()
        .filter_map(|e| match e {
            Event::TaskSubmitted { title, .. } => Some(title.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(shown, ["taken over"]);
}
