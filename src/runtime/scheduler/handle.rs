//! The handle: [`Scheduler`], cloned by every caller, and the shared [`Inner`] behind it. Its
//! methods submit, cancel, report on and shut down tasks by changing the queue
//! ([`super::queue`]) under the lock; [`Inner::pump`] (in [`super::life`]) then starts what may
//! run.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::api::{
    CANCEL_GRACE, CancelError, SchedulerConfig, ShutdownReport, SubmitError, TaskHandler, TaskId,
    TaskInfo, TaskSpec,
};
use super::queue::{Entry, Phase, Stamp, State, Waiting, level};
use crate::events::{Event, EventSink, TaskStatus};
use crate::runtime::latency::LinkSim;

/// What every clone of a [`Scheduler`] shares.
pub(super) struct Inner {
    pub(super) config: SchedulerConfig,
    pub(super) sink: Arc<dyn EventSink>,
    pub(super) link: Option<Arc<LinkSim>>,
    pub(super) handlers: RwLock<HashMap<String, Arc<dyn TaskHandler>>>,
    pub(super) state: Mutex<State>,
    /// Signalled whenever a task reaches a final state.
    pub(super) settled: Notify,
    /// When the scheduler started, on tokio's clock and on the wall clock.
    pub(super) epoch: (Instant, chrono::DateTime<Utc>),
}

/// The scheduler. Cloning shares it. Submitting needs a tokio runtime (tasks are spawned).
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler publishing to `sink`, with the simulated `link` if any.
    pub fn new(
        config: SchedulerConfig,
        sink: Arc<dyn EventSink>,
        link: Option<Arc<LinkSim>>,
    ) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Scheduler {
            inner: Arc::new(Inner {
                config,
                sink,
                link,
                handlers: RwLock::new(HashMap::new()),
                state: Mutex::new(State {
                    queues: Default::default(),
                    tasks: HashMap::new(),
                    kinds: Vec::new(),
                    finished: VecDeque::new(),
                    queued: 0,
                    running: 0,
                    accepting: true,
                    rng,
                }),
                settled: Notify::new(),
                epoch: (Instant::now(), Utc::now()),
            }),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &SchedulerConfig {
        &self.inner.config
    }

    /// Registers (or replaces) the handler of a kind.
    pub fn register_handler(&self, kind: &str, handler: Arc<dyn TaskHandler>) {
        let mut handlers = match self.inner.handlers.write() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        handlers.insert(kind.to_string(), handler);
    }

    /// Accepts a task under a fresh id.
    pub fn submit(&self, spec: TaskSpec) -> Result<TaskId, SubmitError> {
        self.submit_with_id(TaskId::new(), spec)
    }

    /// Accepts a task under a caller-chosen id (the execution id of a prompt).
    pub fn submit_with_id(&self, id: TaskId, spec: TaskSpec) -> Result<TaskId, SubmitError> {
        {
            let handlers = match self.inner.handlers.read() {
                Ok(h) => h,
                Err(poisoned) => poisoned.into_inner(),
            };
            if !handlers.contains_key(&spec.kind) {
                let mut known: Vec<&str> = handlers.keys().map(String::as_str).collect();
                known.sort_unstable();
                return Err(SubmitError::UnknownKind {
                    kind: spec.kind,
                    known: if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    },
                });
            }
        }
        {
            let mut st = self.inner.lock();
            if !st.accepting {
                return Err(SubmitError::ShuttingDown);
            }
            if st.queued >= self.inner.config.queue_capacity {
                return Err(SubmitError::QueueFull {
                    capacity: self.inner.config.queue_capacity,
                });
            }
            let kind = st.intern(&spec.kind);
            st.tasks.insert(
                id,
                Entry {
                    kind,
                    priority: spec.priority,
                    payload: Some(spec.payload),
                    attempts: 0,
                    phase: Phase::Queued,
                    cancel: None,
                    created: self.inner.stamp(),
                    started: None,
                    finished: None,
                },
            );
            let since = self.inner.stamp();
            st.queues[level(spec.priority)].push_back(Waiting { id, since });
            st.queued += 1;
            let at = Utc::now();
            self.inner.sink.emit(Event::TaskSubmitted {
                id,
                kind: spec.kind,
                title: spec.title,
                priority: spec.priority,
                backend: spec.backend,
                model: spec.model,
                at,
            });
            self.inner.sink.emit(Event::TaskState {
                id,
                status: TaskStatus::Queued,
                attempt: 0,
                at,
            });
        }
        Inner::pump(&self.inner);
        Ok(id)
    }

    /// Cancels a task in any non-final state. Cancelling a cancelled task is a no-op.
    pub fn cancel(&self, id: TaskId) -> Result<(), CancelError> {
        let mut st = self.inner.lock();
        let Some(entry) = st.tasks.get_mut(&id) else {
            return Err(CancelError::Unknown(id));
        };
        match entry.phase {
            Phase::Succeeded => Err(CancelError::Finished {
                id,
                state: "succeeded",
            }),
            Phase::Failed => Err(CancelError::Finished {
                id,
                state: "failed",
            }),
            Phase::Cancelled => Ok(()),
            Phase::Queued => {
                entry.finish(Phase::Cancelled, self.inner.stamp());
                let attempt = entry.attempts;
                st.queued -= 1;
                st.retire(id);
                self.inner.emit_state(
                    id,
                    TaskStatus::Cancelled {
                        reason: "operator".into(),
                    },
                    attempt,
                );
                drop(st);
                self.inner.settled.notify_waiters();
                Ok(())
            }
            Phase::Active | Phase::Delayed => {
                if let Some(token) = &entry.cancel {
                    token.cancel();
                }
                Ok(())
            }
        }
    }

    /// The record of one task.
    pub fn task(&self, id: TaskId) -> Option<TaskInfo> {
        let st = self.inner.lock();
        let e = st.tasks.get(&id)?;
        Some(TaskInfo {
            id,
            kind: st.kind(e.kind).to_string(),
            priority: e.priority,
            state: e.phase.name(),
            attempts: e.attempts,
            created_at: self.inner.wall(e.created),
            started_at: e.started.map(|s| self.inner.wall(s)),
            finished_at: e.finished.map(|s| self.inner.wall(s)),
        })
    }

    /// Tasks waiting in the queues.
    pub fn queued(&self) -> usize {
        self.inner.lock().queued
    }

    /// Tasks holding a slot.
    pub fn running(&self) -> usize {
        self.inner.lock().running
    }

    /// Tasks not yet in a final state.
    pub fn active(&self) -> usize {
        let st = self.inner.lock();
        st.tasks
            .values()
            .filter(|e| matches!(e.phase, Phase::Queued | Phase::Active | Phase::Delayed))
            .count()
    }

    /// Waits until no task is queued, waiting or running.
    pub async fn wait_idle(&self) {
        loop {
            let settled = self.inner.settled.notified();
            if self.active() == 0 {
                return;
            }
            settled.await;
        }
    }

    /// Stops accepting tasks, cancels queued and waiting ones, lets running ones finish within
    /// `grace`, then cancels the rest (each gets [`CANCEL_GRACE`] to wind down).
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        let running_at_start;
        {
            let mut st = self.inner.lock();
            st.accepting = false;
            let mut left = Vec::new();
            for queue in st.queues.iter_mut() {
                left.extend(queue.drain(..).map(|w| w.id));
            }
            st.queued = 0;
            for id in left {
                if let Some(entry) = st.tasks.get_mut(&id)
                    && entry.phase == Phase::Queued
                {
                    entry.finish(Phase::Cancelled, self.inner.stamp());
                    let attempt = entry.attempts;
                    self.inner.emit_state(
                        id,
                        TaskStatus::Cancelled {
                            reason: "shutdown".into(),
                        },
                        attempt,
                    );
                    report.left_queued.push(id);
                    st.retire(id);
                }
            }
            for (id, entry) in st.tasks.iter() {
                if entry.phase == Phase::Delayed {
                    if let Some(token) = &entry.cancel {
                        token.cancel();
                    }
                    report.left_queued.push(*id);
                }
            }
            running_at_start = st.running;
        }
        self.inner.settled.notify_waiters();
        let _ = tokio::time::timeout(grace, self.wait_running_zero()).await;
        let still = {
            let st = self.inner.lock();
            for entry in st.tasks.values() {
                if entry.phase == Phase::Active
                    && let Some(token) = &entry.cancel
                {
                    token.cancel();
                }
            }
            st.running
        };
        report.cancelled_running = still;
        report.finished_in_grace = running_at_start.saturating_sub(still);
        let _ = tokio::time::timeout(CANCEL_GRACE * 2, self.wait_running_zero()).await;
        report
    }

    async fn wait_running_zero(&self) {
        loop {
            let settled = self.inner.settled.notified();
            if self.running() == 0 {
                return;
            }
            settled.await;
        }
    }
}

impl Inner {
    pub(super) fn stamp(&self) -> Stamp {
        let ms = u64::try_from(self.epoch.0.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        Stamp::MIN.saturating_add(ms)
    }

    pub(super) fn wall(&self, stamp: Stamp) -> chrono::DateTime<Utc> {
        let ms = i64::try_from(stamp.get() - 1).unwrap_or(i64::MAX);
        self.epoch.1 + chrono::TimeDelta::milliseconds(ms)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update is a few plain
        // assignments), so keep going with it rather than poisoning the whole console.
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(super) fn emit_state(&self, id: TaskId, status: TaskStatus, attempt: u32) {
        self.sink.emit(Event::TaskState {
            id,
            status,
            attempt,
            at: Utc::now(),
        });
    }
}
