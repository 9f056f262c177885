//! The core's event publisher: every event goes on the bus once, and to the per-execution
//! observers that asked for it (a lossless stream, or only the final state and answer).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::ExecutionResult;
use crate::events::{Event, EventBus, EventSink, ExecutionId, TaskStatus};

/// Publishes events on the bus, to the per-execution observers that asked for every event
/// ([`VeyraCore::execute_stream`]), and the final state to callers that wait only for the end
/// ([`VeyraCore::execute_async`]). With nobody watching, the only cost is one atomic load.
#[derive(Debug)]
pub(crate) struct Emitter {
    pub(crate) bus: EventBus,
    pub(crate) watchers: Mutex<Watchers>,
    /// Stream and final watchers together.
    pub(crate) watched: AtomicUsize,
    /// Stream watchers alone: with none, only final states need the lock.
    pub(crate) streaming: AtomicUsize,
}

#[derive(Debug, Default)]
pub(crate) struct Watchers {
    streams: HashMap<ExecutionId, mpsc::UnboundedSender<Event>>,
    finals: HashMap<ExecutionId, oneshot::Sender<TaskStatus>>,
    /// Answers of successful attempts, kept only for executions someone waits on.
    answers: HashMap<ExecutionId, ExecutionResult>,
}

impl Emitter {
    fn watchers(&self) -> std::sync::MutexGuard<'_, Watchers> {
        match self.watchers.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn watch_stream(&self, id: ExecutionId, tx: mpsc::UnboundedSender<Event>) {
        self.watchers().streams.insert(id, tx);
        self.watched.fetch_add(1, Ordering::SeqCst);
        self.streaming.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn watch_final(&self, id: ExecutionId, tx: oneshot::Sender<TaskStatus>) {
        self.watchers().finals.insert(id, tx);
        self.watched.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn unwatch(&self, id: ExecutionId) {
        let mut w = self.watchers();
        let streams = usize::from(w.streams.remove(&id).is_some());
        let removed = streams + usize::from(w.finals.remove(&id).is_some());
        w.answers.remove(&id);
        self.watched.fetch_sub(removed, Ordering::SeqCst);
        self.streaming.fetch_sub(streams, Ordering::SeqCst);
    }

    /// Keeps the answer of a successful attempt if someone waits for this execution.
    pub(crate) fn keep_answer(&self, result: ExecutionResult) {
        if self.watched.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut w = self.watchers();
        if w.finals.contains_key(&result.id) {
            w.answers.insert(result.id, result);
        }
    }

    pub(crate) fn take_answer(&self, id: ExecutionId) -> Option<ExecutionResult> {
        self.watchers().answers.remove(&id)
    }
}

impl EventSink for Emitter {
    fn emit(&self, event: Event) {
        let terminal = event.is_terminal();
        let interested = if terminal {
            self.watched.load(Ordering::SeqCst) > 0
        } else {
            self.streaming.load(Ordering::SeqCst) > 0
        };
        if interested && let Some(id) = event.execution() {
            let mut w = self.watchers();
            let mut removed = 0;
            if let Some(tx) = w.streams.get(&id) {
                // A dropped receiver only means the caller stopped listening.
                let _ = tx.send(event.clone());
                if terminal {
                    w.streams.remove(&id);
                    removed += 1;
                    self.streaming.fetch_sub(1, Ordering::SeqCst);
                }
            }
            if terminal
                && let Event::TaskState { status, .. } = &event
                && let Some(tx) = w.finals.remove(&id)
            {
                let _ = tx.send(status.clone());
                removed += 1;
            }
            self.watched.fetch_sub(removed, Ordering::SeqCst);
        }
        self.bus.publish(event);
    }
}
