//! One execution's events as an ordered stream, and the folder that turns them into its
//! [`ExecutionResult`].
//!
//! The stream is fed by the core's emitter through a [`StreamFeed`]: a queue whose length does
//! not grow with the answer. A reader slower than the model (a terminal over SSH, a paused
//! pipe) finds consecutive pieces of text joined into one `OutputDelta`; every other event is
//! kept as it came, in order. The emitter never waits on a reader (it publishes from inside the
//! execution, which must not stall on a client), and nothing a reader relies on is dropped.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::Stream;

use super::{ExecutionResult, task_error};
use crate::error::VeyraError;
use crate::events::{Event, ExecutionId, FinishReason, TaskStatus, TokenUsage};

/// A running execution's events (see [`VeyraCore::execute_stream`](crate::VeyraCore::execute_stream)).
#[derive(Debug)]
pub struct ExecutionStream {
    pub(super) id: ExecutionId,
    queue: Arc<Mutex<Queue>>,
}

/// What an execution's stream holds for its reader.
///
/// The bound: text pieces that arrive while the reader is behind are joined to the
/// `OutputDelta` at the back of the queue, so the queue holds at most one text item between two
/// other events. The other events of one execution are few and fixed by its configuration, not
/// by its answer: its states (a handful per attempt, attempts capped by `runtime.retries`), its
/// audit entries and tool steps (capped by the agent's step limit), its confirmations and its
/// end. So the queue's length is at most twice that number plus one, whatever the length of the
/// answer or the speed of the reader; the text itself is held once, as the reader would hold it.
/// A bounded channel with backpressure was not chosen: the emitter runs inside the execution and
/// must never wait on a client (a stalled reader would stall the model's stream, its timeout and
/// the slot it holds), and dropping text is not an option for a lossless stream.
#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Event>,
    /// The feed is gone: after what is queued, the stream ends.
    ended: bool,
    /// The stream is gone: what would be queued is dropped.
    reader_gone: bool,
    /// The reader waiting for the next event.
    waker: Option<Waker>,
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    match queue.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The emitter's end of an [`ExecutionStream`]: never blocks, never drops an event the reader
/// relies on, and joins text pieces the reader has not taken yet (see [`Queue`]).
#[derive(Debug)]
pub(crate) struct StreamFeed {
    queue: Arc<Mutex<Queue>>,
}

impl StreamFeed {
    /// A feed and the stream it feeds, for execution `id`.
    pub(crate) fn new(id: ExecutionId) -> (StreamFeed, ExecutionStream) {
        let queue = Arc::new(Mutex::new(Queue::default()));
        (
            StreamFeed {
                queue: queue.clone(),
            },
            ExecutionStream { id, queue },
        )
    }

    /// Queues `event` for the reader; a text piece joins the text at the back of the queue.
    pub(crate) fn send(&self, event: Event) {
        let waker = {
            let mut q = lock(&self.queue);
            if q.reader_gone {
                return;
            }
            match (q.events.back_mut(), event) {
                (
                    Some(Event::OutputDelta {
                        id: back,
                        text: tail,
                    }),
                    Event::OutputDelta { id, text },
                ) if *back == id => tail.push_str(&text),
                (_, event) => q.events.push_back(event),
            }
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Events waiting for the reader (for tests of the bound).
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue).events.len()
    }
}

impl ExecutionStream {
    /// Events waiting to be read (for tests of the bound).
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue).events.len()
    }
}

impl Drop for StreamFeed {
    fn drop(&mut self) {
        let waker = {
            let mut q = lock(&self.queue);
            q.ended = true;
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Drop for ExecutionStream {
    fn drop(&mut self) {
        let mut q = lock(&self.queue);
        q.reader_gone = true;
        q.events.clear();
    }
}

impl ExecutionStream {
    /// The execution's id.
    pub fn id(&self) -> ExecutionId {
        self.id
    }

    /// Reads the remaining events and returns the execution's result: the answer of the last
    /// attempt, or the error it ended with.
    pub async fn finish(mut self) -> Result<ExecutionResult, VeyraError> {
        use futures_util::StreamExt;
        let mut folder = ResultFolder::new(self.id);
        while let Some(event) = self.next().await {
            if let Some(result) = folder.apply(&event) {
                return result;
            }
        }
        Err(VeyraError::Runtime(
            "the execution ended without a final state".into(),
        ))
    }
}

/// Folds one execution's events into its [`ExecutionResult`].
#[derive(Debug)]
pub struct ResultFolder {
    result: ExecutionResult,
}

impl ResultFolder {
    /// A folder for execution `id`.
    pub fn new(id: ExecutionId) -> Self {
        ResultFolder {
            result: ExecutionResult {
                id,
                text: String::new(),
                backend: String::new(),
                model: String::new(),
                finish_reason: FinishReason::Stop,
                usage: TokenUsage::default(),
                latency: Duration::ZERO,
                audit_seq: None,
                tool_steps: 0,
            },
        }
    }

    /// Applies one event; returns the outcome once the final state arrives.
    pub fn apply(&mut self, event: &Event) -> Option<Result<ExecutionResult, VeyraError>> {
        let result = &mut self.result;
        if event.execution() != Some(result.id) {
            return None;
        }
        match event {
            Event::TaskSubmitted { backend, model, .. } => {
                result.backend = backend.clone().unwrap_or_default();
                result.model = model.clone().unwrap_or_default();
            }
            Event::TaskState {
                status, attempt, ..
            } => match status {
                TaskStatus::Running if *attempt > 1 => result.text.clear(),
                TaskStatus::Succeeded => return Some(Ok(result.clone())),
                TaskStatus::Failed { error, kind, .. } => {
                    return Some(Err(task_error(kind, error)));
                }
                TaskStatus::Cancelled { reason } => {
                    return Some(Err(VeyraError::Cancelled(reason.clone())));
                }
                TaskStatus::Queued
                | TaskStatus::Uplink { .. }
                | TaskStatus::Running
                | TaskStatus::Downlink { .. }
                | TaskStatus::Retrying { .. }
                | TaskStatus::Blackout { .. } => {}
            },
            Event::OutputDelta { text, .. } => result.text.push_str(text),
            Event::ExecutionFinished {
                usage,
                finish_reason,
                latency_ms,
                ..
            } => {
                result.usage = *usage;
                result.finish_reason = finish_reason.clone();
                result.latency = Duration::from_millis(*latency_ms);
            }
            Event::AuditRecorded { seq, .. } => result.audit_seq = Some(*seq),
            Event::AgentStep { step, .. } => result.tool_steps = *step,
            Event::AuditVerified { .. }
            | Event::AuditCheckpoint { .. }
            | Event::BackendChanged { .. }
            | Event::LinkChanged { .. }
            | Event::McpServer { .. }
            | Event::SafetyViolation { .. }
            | Event::ConfirmationRequested { .. }
            | Event::ConfirmationAnswered { .. }
            | Event::ToolInvoked { .. } => {}
        }
        None
    }
}

impl Stream for ExecutionStream {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut q = lock(&self.queue);
        if let Some(event) = q.events.pop_front() {
            return Poll::Ready(Some(event));
        }
        if q.ended {
            return Poll::Ready(None);
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn state(id: ExecutionId, status: TaskStatus) -> Event {
        Event::TaskState {
            id,
            status,
            attempt: 1,
            at: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_holds_a_short_queue_and_still_gets_the_whole_text() {
        let id = ExecutionId::new();
        let (feed, stream) = StreamFeed::new(id);
        feed.send(state(id, TaskStatus::Running));
        // A long answer, one token at a time, while the reader reads nothing.
        let mut sent = String::new();
        for n in 0..100_000 {
            let text = format!("token{n} ");
            sent.push_str(&text);
            feed.send(Event::OutputDelta { id, text });
            assert!(feed.queued() <= 2, "the queue grew to {}", feed.queued());
        }
        feed.send(state(id, TaskStatus::Succeeded));
        assert_eq!(feed.queued(), 3);
        drop(feed);
        let events: Vec<Event> = stream.collect().await;
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                Event::OutputDelta { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, sent, "every piece of text, in order");
        assert!(matches!(
            events.first(),
            Some(Event::TaskState {
                status: TaskStatus::Running,
                ..
            })
        ));
        assert!(events.last().is_some_and(Event::is_terminal));
    }

    #[tokio::test]
    async fn the_core_streams_a_long_answer_to_a_reader_that_reads_only_at_the_end() {
        use crate::config::{AuditStoreKind, MockRule, VeyraConfig};
        let ws = tempfile::tempdir().unwrap();
        let mut config = VeyraConfig::default();
        config.governance.store = AuditStoreKind::Memory;
        config.tools.workspace = Some(ws.path().to_path_buf());
        config.latency.simulate = false;
        config.model.max_tokens = 100_000;
        let answer = (0..20_000).map(|n| format!("word{n} ")).collect::<String>();
        config.model.mock.script = vec![MockRule {
            pattern: "long".into(),
            response: answer.clone(),
            fail: None,
            tool_calls: Vec::new(),
            repeat: false,
        }];
        let core = crate::VeyraCore::new(config).unwrap();
        let stream = core
            .execute_stream(crate::core::ExecutionRequest::new("a long answer"))
            .unwrap();
        // The reader waits for the end (on the bus) before reading a single event.
        let mut bus = core.subscribe();
        let id = stream.id();
        loop {
            match bus.recv().await {
                Ok(e) if e.is_terminal() && e.execution() == Some(id) => break,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        // Thousands of pieces were streamed; a handful of events wait, the text joined.
        assert!(stream.queued() < 20, "{} events queued", stream.queued());
        let result = stream.finish().await.unwrap();
        assert_eq!(result.text, answer);
    }

    #[tokio::test]
    async fn text_is_never_joined_across_another_event_and_a_reader_keeping_up_sees_each_piece() {
        let id = ExecutionId::new();
        let (feed, mut stream) = StreamFeed::new(id);
        for piece in ["a", "b"] {
            feed.send(Event::OutputDelta {
                id,
                text: piece.into(),
            });
            // Read at once: nothing to join.
            let Some(Event::OutputDelta { text, .. }) = stream.next().await else {
                panic!("a text piece");
            };
            assert_eq!(text, piece);
        }
        // A retry between two pieces keeps them apart (the folder clears the text there).
        feed.send(Event::OutputDelta {
            id,
            text: "c".into(),
        });
        feed.send(state(id, TaskStatus::Running));
        feed.send(Event::OutputDelta {
            id,
            text: "d".into(),
        });
        assert_eq!(feed.queued(), 3);
        drop(feed);
        assert_eq!(stream.collect::<Vec<_>>().await.len(), 3);
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_and_a_gone_reader_keeps_nothing() {
        let id = ExecutionId::new();
        let (feed, mut stream) = StreamFeed::new(id);
        let reader = tokio::spawn(async move { stream.next().await.is_some() });
        tokio::task::yield_now().await;
        feed.send(state(id, TaskStatus::Queued));
        assert!(reader.await.unwrap());
        let (feed, stream) = StreamFeed::new(id);
        drop(stream);
        feed.send(Event::OutputDelta {
            id,
            text: "x".into(),
        });
        assert_eq!(feed.queued(), 0);
    }
}
