//! The core's event publisher: every event goes on the bus once, and to the per-execution
//! observers that asked for it (a lossless stream, or only the final state and answer).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::oneshot;

use super::ExecutionResult;
use super::stream::StreamFeed;
use crate::events::{Event, EventBus, EventSink, ExecutionId, TaskStatus};

/// Publishes events on the bus, to the per-execution observers that asked for every event
/// ([`VeyraCore::execute_stream`](super::VeyraCore::execute_stream)), and the final state to
/// callers that wait only for the end
/// ([`VeyraCore::execute_async`](super::VeyraCore::execute_async)). With nobody watching, the
/// only cost is one atomic load.
#[derive(Debug)]
pub(crate) struct Emitter {
    pub(crate) bus: EventBus,
    pub(crate) watchers: Mutex<Watchers>,
    /// Stream and final watchers together.
    pub(crate) watched: AtomicUsize,
    /// Stream watchers alone: with none, a token never takes the lock.
    pub(crate) streaming: AtomicUsize,
    /// Final watchers that also keep their execution's agent steps: with none (and no stream
    /// watcher), only final states take the lock.
    pub(crate) stepping: AtomicUsize,
    /// One more sink that sees every event, in order, before the bus: a serving runtime's
    /// journal ([`VeyraCore::tap`](super::VeyraCore::tap)), which cannot lag as a bus
    /// subscriber can.
    pub(crate) tap: std::sync::OnceLock<std::sync::Arc<dyn EventSink>>,
}

#[derive(Debug, Default)]
pub(crate) struct Watchers {
    /// Lossless streams' feeds, whose queues stay short however slow the reader
    /// ([`StreamFeed`]).
    streams: HashMap<ExecutionId, StreamFeed>,
    finals: HashMap<ExecutionId, oneshot::Sender<TaskStatus>>,
    /// Answers of successful attempts, kept only for executions someone waits on.
    answers: HashMap<ExecutionId, ExecutionResult>,
    /// The `AgentStep` events of executions whose final watcher asked for them, in order.
    steps: HashMap<ExecutionId, Vec<Event>>,
}

impl Emitter {
    fn watchers(&self) -> std::sync::MutexGuard<'_, Watchers> {
        match self.watchers.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn watch_stream(&self, id: ExecutionId, tx: StreamFeed) {
        // Counted once per id: a second watch on an id replaces the first.
        if self.watchers().streams.insert(id, tx).is_none() {
            self.watched.fetch_add(1, Ordering::SeqCst);
            self.streaming.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Sends `id`'s final state to `tx`; with `keep_steps`, its `AgentStep` events are kept
    /// for [`Emitter::take`] too.
    pub(crate) fn watch_final(
        &self,
        id: ExecutionId,
        tx: oneshot::Sender<TaskStatus>,
        keep_steps: bool,
    ) {
        // Counted once per id: a second watch on an id replaces the first.
        let mut w = self.watchers();
        if w.finals.insert(id, tx).is_none() {
            self.watched.fetch_add(1, Ordering::SeqCst);
        }
        if keep_steps && w.steps.insert(id, Vec::new()).is_none() {
            self.stepping.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Forgets every watch on `id` and what was kept for it.
    pub(crate) fn unwatch(&self, id: ExecutionId) {
        let mut w = self.watchers();
        let streams = usize::from(w.streams.remove(&id).is_some());
        let removed = streams + usize::from(w.finals.remove(&id).is_some());
        w.answers.remove(&id);
        if w.steps.remove(&id).is_some() {
            self.stepping.fetch_sub(1, Ordering::SeqCst);
        }
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

    /// Whether no execution is watched and nothing is kept for any.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        let w = self.watchers();
        w.streams.is_empty()
            && w.finals.is_empty()
            && w.answers.is_empty()
            && w.steps.is_empty()
            && self.watched.load(Ordering::SeqCst) == 0
            && self.streaming.load(Ordering::SeqCst) == 0
            && self.stepping.load(Ordering::SeqCst) == 0
    }

    /// The kept answer and agent steps of `id`, which is then forgotten.
    pub(crate) fn take(&self, id: ExecutionId) -> (Option<ExecutionResult>, Vec<Event>) {
        let mut w = self.watchers();
        let answer = w.answers.remove(&id);
        let steps = w.steps.remove(&id);
        if steps.is_some() {
            self.stepping.fetch_sub(1, Ordering::SeqCst);
        }
        (answer, steps.unwrap_or_default())
    }
}

impl EventSink for Emitter {
    fn emit(&self, event: Event) {
        let terminal = event.is_terminal();
        let step = matches!(event, Event::AgentStep { .. });
        let interested = if terminal {
            self.watched.load(Ordering::SeqCst) > 0
        } else {
            self.streaming.load(Ordering::SeqCst) > 0
                || (step && self.stepping.load(Ordering::SeqCst) > 0)
        };
        if interested && let Some(id) = event.execution() {
            let mut w = self.watchers();
            let mut removed = 0;
            if step && let Some(steps) = w.steps.get_mut(&id) {
                steps.push(event.clone());
            }
            if let Some(tx) = w.streams.get(&id) {
                // A dropped stream only means the caller stopped listening.
                tx.send(event.clone());
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
        if let Some(tap) = self.tap.get() {
            tap.emit(event.clone());
        }
        self.bus.publish(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emitter() -> Emitter {
        Emitter {
            bus: EventBus::default(),
            watchers: Mutex::new(Watchers::default()),
            watched: AtomicUsize::new(0),
            streaming: AtomicUsize::new(0),
            stepping: AtomicUsize::new(0),
            tap: std::sync::OnceLock::new(),
        }
    }

    #[test]
    fn a_second_watch_on_one_id_is_counted_once_and_the_end_clears_everything() {
        let e = emitter();
        let id = ExecutionId::new();
        let (first, _) = oneshot::channel();
        let (second, done) = oneshot::channel();
        e.watch_final(id, first, true);
        e.watch_final(id, second, true);
        let (tx, _rx) = StreamFeed::new(id);
        e.watch_stream(id, tx);
        let (tx, _rx2) = StreamFeed::new(id);
        e.watch_stream(id, tx);
        assert_eq!(e.watched.load(Ordering::SeqCst), 2);
        assert_eq!(e.streaming.load(Ordering::SeqCst), 1);
        assert_eq!(e.stepping.load(Ordering::SeqCst), 1);
        e.emit(Event::TaskState {
            id,
            status: TaskStatus::Succeeded,
            attempt: 1,
            at: chrono::Utc::now(),
        });
        assert!(matches!(done.blocking_recv(), Ok(TaskStatus::Succeeded)));
        let _ = e.take(id);
        assert!(e.is_idle(), "a counter or an entry outlived the execution");
    }
}
