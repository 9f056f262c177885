//! Submitting to the fleet: a task is published on its priority's subject with its execution id
//! as the message id (so the stream keeps one copy of a task published twice), after its events'
//! subject is listened to, so none of its events can come first. Its events are followed to the
//! final one; when events go missing (NATS core delivery is at most once), the task's final
//! record has the outcome, and the final state is made from it.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::bytes::Bytes;

use super::wire::{self, TaskMessage};
use super::{Fleet, nats_error};
use crate::error::VeyraError;
use crate::events::{Event, ExecutionId, Priority, TaskStatus};

/// How long a submission waits without an event before it looks for a kept result.
const QUIET: Duration = Duration::from_secs(2);

/// Publishes tasks and follows them.
#[derive(Debug, Clone)]
pub struct Submitter {
    fleet: Fleet,
    /// Where a published task's priority goes to be told to idle workers (made on the first
    /// publish, in the runtime that publishes).
    wakes: std::sync::Arc<std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Priority>>>,
}

/// One submitted task: its events, in order, until its final state.
pub struct Submission {
    id: ExecutionId,
    fleet: Fleet,
    events: async_nats::Subscriber,
    /// Events of a message that carried several, not yet handed out.
    queue: std::collections::VecDeque<Event>,
    ended: bool,
    /// Some of its answer was handed out.
    seen_text: bool,
}

impl Submitter {
    /// A submitter on `fleet`.
    pub fn new(fleet: Fleet) -> Submitter {
        Submitter {
            fleet,
            wakes: std::sync::Arc::default(),
        }
    }

    /// Tells idle workers that a task of `priority` was published. The wakes of tasks
    /// published while one is being sent go out together after it, one per priority: each
    /// task's publish is still followed by a wake, without a message per task.
    fn wake(&self, priority: Priority) {
        let sender = self.wakes.get_or_init(|| {
            let (sender, mut asked) = tokio::sync::mpsc::unbounded_channel::<Priority>();
            let fleet = self.fleet.clone();
            // Ends when the last clone of this submitter is dropped.
            tokio::spawn(async move {
                while let Some(first) = asked.recv().await {
                    let mut named = [false; Priority::ALL.len()];
                    let mut mark = |p: Priority| {
                        if let Some(rank) = Priority::ALL.iter().position(|q| *q == p) {
                            named[rank] = true;
                        }
                    };
                    mark(first);
                    while let Ok(more) = asked.try_recv() {
                        mark(more);
                    }
                    for (rank, priority) in Priority::ALL.iter().enumerate() {
                        if named[rank] {
                            // Best effort: workers poll on their own anyway.
                            let _ = fleet
                                .client
                                .publish(
                                    fleet.wake_subject(),
                                    Bytes::from_static(priority.name().as_bytes()),
                                )
                                .await;
                        }
                    }
                }
            });
            sender
        });
        let _ = sender.send(priority);
    }

    /// The fleet it submits to.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Publishes `task` (its format set here) and returns its events to follow. An error when
    /// the server did not take it, or already holds a task of that id.
    pub async fn submit(&self, task: TaskMessage) -> Result<Submission, VeyraError> {
        let id = task.id;
        let (submission, duplicate) = self.publish(task).await?;
        if duplicate {
            return Err(VeyraError::Usage(format!(
                "task {id} was submitted already; the fleet keeps one copy"
            )));
        }
        Ok(submission)
    }

    /// As [`Submitter::submit`], but a task of an id the fleet has already (a run resumed
    /// after its submitter was lost) is followed rather than refused: its events if it still
    /// runs, else its kept result.
    pub async fn submit_or_follow(&self, task: TaskMessage) -> Result<Submission, VeyraError> {
        Ok(self.publish(task).await?.0)
    }

    /// Publishes `task`; whether the stream already held a copy.
    async fn publish(&self, mut task: TaskMessage) -> Result<(Submission, bool), VeyraError> {
        task.format = wire::TASK_FORMAT.into();
        let bytes = serde_json::to_vec(&task).map_err(|e| VeyraError::Runtime(e.to_string()))?;
        if bytes.len() > wire::MAX_TASK_BYTES {
            return Err(VeyraError::Usage(format!(
                "the task is {} bytes; the fleet takes at most {} (a shorter prompt, or run it \
                 with runtime.executor: local)",
                bytes.len(),
                wire::MAX_TASK_BYTES
            )));
        }
        let events = self
            .fleet
            .client
            .subscribe(self.fleet.events_subject(task.id))
            .await
            .map_err(|e| nats_error("listening for the task's events", e))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", wire::key(task.id).as_str());
        if !task.items.is_empty() {
            headers.insert(wire::ITEMS_HEADER, task.items.len().to_string().as_str());
        }
        let ack = self
            .fleet
            .js
            .publish_with_headers(
                self.fleet.task_subject(task.priority),
                headers,
                Bytes::from(bytes),
            )
            .await
            .map_err(|e| nats_error("submitting the task", e))?
            .await
            .map_err(|e| nats_error("submitting the task", e))?;
        // Idle workers poll at once.
        self.wake(task.priority);
        Ok((
            Submission {
                id: task.id,
                fleet: self.fleet.clone(),
                events,
                queue: std::collections::VecDeque::new(),
                ended: false,
                seen_text: false,
            },
            ack.duplicate,
        ))
    }
}

impl Submitter {
    /// Withdraws a task no worker has claimed yet, for good: its record made final with a
    /// `cancelled` outcome, so a worker that pulls it later leaves it. A task already
    /// claimed is asked to cancel on the bus instead (its worker decides and records it).
    pub async fn withdraw(&self, id: ExecutionId) {
        self.withdraw_by(id, None).await;
    }

    /// [`Submitter::withdraw`] for a console, which the cancel names so the worker that acts
    /// on it records who asked.
    /// True when it was withdrawn (no worker had it); false when the cancel went on the bus.
    pub(crate) async fn withdraw_by(
        &self,
        id: ExecutionId,
        by: Option<&super::node::NodeCaller>,
    ) -> bool {
        let attempts = self.fleet.attempts();
        // Its record created final, with the cancellation as its outcome: one write.
        let record = serde_json::to_vec(&wire::Attempt {
            worker: "(its submitter)".into(),
            attempt: 0,
            phase: wire::Phase::Final,
            at: chrono::Utc::now(),
            outcome: Some(wire::TaskResult {
                id,
                worker: "(its submitter)".into(),
                attempt: 0,
                status: "cancelled".into(),
                text: String::new(),
                error: Some("withdrawn by its submitter before a worker took it".into()),
                at: chrono::Utc::now(),
                items: Vec::new(),
            }),
        })
        .map(Bytes::from);
        let fenced = match record {
            Ok(bytes) => attempts.create(wire::key(id), bytes).await.is_ok(),
            Err(_) => false,
        };
        if fenced {
            return true;
        }
        let payload = by
            .and_then(|by| serde_json::to_vec(by).ok())
            .map_or_else(Bytes::new, Bytes::from);
        let _ = self
            .fleet
            .client
            .publish(self.fleet.cancel_subject(id), payload)
            .await;
        false
    }
}

impl Submission {
    /// The execution.
    pub fn id(&self) -> ExecutionId {
        self.id
    }

    /// The next event, ending with the task's final state (`None` after it). A message that is
    /// not one of this task's events is skipped and logged.
    pub async fn next(&mut self) -> Option<Result<Event, VeyraError>> {
        while !self.ended {
            if let Some(event) = self.queue.pop_front() {
                if event.execution() != Some(self.id) {
                    tracing::warn!(id = %self.id, "an event of another execution on this task's subject; skipped");
                    continue;
                }
                if event.is_terminal() {
                    self.ended = true;
                }
                if matches!(event, Event::OutputDelta { .. }) {
                    self.seen_text = true;
                }
                return Some(Ok(event));
            }
            let message = match tokio::time::timeout(QUIET, self.events.next()).await {
                Ok(Some(message)) => message,
                Ok(None) => {
                    self.ended = true;
                    return Some(Err(VeyraError::Runtime(
                        "the connection to the fleet closed before the task ended".into(),
                    )));
                }
                Err(_) => match self.kept().await {
                    Ok(Some((event, text))) => {
                        // An answer whose events were lost (or never sent: its worker was lost
                        // between keeping it and telling it) is told from what was kept.
                        if !self.seen_text && !text.is_empty() {
                            self.queue
                                .push_back(Event::OutputDelta { id: self.id, text });
                        }
                        self.queue.push_back(event);
                        continue;
                    }
                    Ok(None) => continue,
                    // The server may be restarting: looked for again after the next quiet.
                    Err(e) => {
                        tracing::debug!(id = %self.id, "looking for a kept result: {e}");
                        continue;
                    }
                },
            };
            self.queue.extend(read_events(&message.payload, self.id));
        }
        None
    }

    /// The final state made from a kept result, and its answer, when there is one.
    async fn kept(&self) -> Result<Option<(Event, String)>, VeyraError> {
        let Some(result) = self.fleet.result(self.id).await? else {
            return Ok(None);
        };
        let status = match result.status.as_str() {
            "succeeded" => TaskStatus::Succeeded,
            "cancelled" => TaskStatus::Cancelled {
                reason: result.error.clone().unwrap_or_default(),
            },
            _ => TaskStatus::Failed {
                error: result.error.clone().unwrap_or_default(),
                kind: "fleet".into(),
                not_retried: None,
            },
        };
        Ok(Some((
            Event::TaskState {
                id: self.id,
                status,
                attempt: result.attempt,
                at: result.at,
            },
            result.text,
        )))
    }

    /// Asks the worker running the task to cancel it (the worker decides and records it).
    pub async fn cancel(&self) -> Result<(), VeyraError> {
        self.fleet
            .client
            .publish(self.fleet.cancel_subject(self.id), Bytes::new())
            .await
            .map_err(|e| nats_error("sending the cancel", e))
    }
}

/// The events of one message: one event, or several in order (a JSON array). An event that
/// cannot be read (a newer worker's kind) is skipped and logged, the others kept.
pub(super) fn read_events(payload: &[u8], id: ExecutionId) -> Vec<Event> {
    // Read as events at once when every one can be (the usual case), else one by one.
    let whole = if payload.first() == Some(&b'[') {
        serde_json::from_slice::<Vec<Event>>(payload)
    } else {
        serde_json::from_slice::<Event>(payload).map(|e| vec![e])
    };
    if let Ok(events) = whole {
        return events;
    }
    let values = if payload.first() == Some(&b'[') {
        serde_json::from_slice::<Vec<serde_json::Value>>(payload)
    } else {
        serde_json::from_slice::<serde_json::Value>(payload).map(|v| vec![v])
    };
    let values = match values {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(%id, "a message on the fleet could not be read: {e}");
            return Vec::new();
        }
    };
    values
        .into_iter()
        .filter_map(|v| match serde_json::from_value::<Event>(v) {
            Ok(event) => Some(event),
            Err(e) => {
                tracing::warn!(%id, "an event on the fleet could not be read: {e}");
                None
            }
        })
        .collect()
}
