//! The handle: [`Scheduler`], cloned by every caller, and the shared [`Inner`] behind it. Its
//! methods submit, cancel, report on and shut down tasks by changing the queue
//! ([`super::queue`]) under the lock; each accepted task lives in its own tokio task
//! ([`Inner::life`], in [`super::life`]) and gets its slots from [`super::slot`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api::{
    CANCEL_GRACE, CancelError, SchedulerConfig, ShutdownReport, SubmitError, TaskHandler, TaskId,
    TaskInfo, TaskSpec,
};
use super::queue::{Entry, Phase, Stamp, State, Waiting, level};
use super::slot::{Grant, SlotGuard, Slots};
use crate::events::{Event, EventSink, TaskStatus};
use crate::runtime::latency::LinkSim;

/// What every clone of a [`Scheduler`] shares.
pub(super) struct Inner {
    /// Itself, for the slots it hands out.
    me: std::sync::Weak<Inner>,
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
            inner: Arc::new_cyclic(|me| Inner {
                me: me.clone(),
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
                    travelling: 0,
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
            if st.queued + st.travelling >= self.inner.config.queue_capacity {
                return Err(SubmitError::QueueFull {
                    capacity: self.inner.config.queue_capacity,
                });
            }
            if st.tasks.contains_key(&id) {
                return Err(SubmitError::DuplicateId);
            }
            let kind = st.intern(&spec.kind);
            st.tasks.insert(
                id,
                Entry {
                    kind,
                    priority: spec.priority,
                    payload: Some(spec.payload),
                    attempts: 0,
                    local: spec.local,
                    phase: Phase::Queued,
                    cancel: Some(CancellationToken::new()),
                    grant: None,
                    created: self.inner.stamp(),
                    started: None,
                    finished: None,
                },
            );
            st.queued += 1;
            let at = Utc::now();
            self.inner.sink.emit(Event::TaskSubmitted {
                id,
                kind: spec.kind,
                title: spec.title,
                priority: spec.priority,
                backend: spec.backend,
                model: spec.model,
                actor: spec.actor,
                at,
            });
            self.inner.sink.emit(Event::TaskState {
                id,
                status: TaskStatus::Queued,
                attempt: 0,
                at,
            });
            // Without a link to cross, the task waits for a slot from now, in submit order;
            // with one, it sets off at once and queues when it arrives.
            let grant = match self.inner.crossing(spec.local) {
                None => Some(self.inner.enqueue(&mut st, id, false)),
                Some(_) => None,
            };
            tokio::spawn(Arc::clone(&self.inner).life(id, grant));
        }
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
                // Ended here and now; its waiting life hears it (the grant is dropped) and
                // records nothing more.
                let attempt = entry.attempts;
                if let Some(token) = entry.cancel.take() {
                    token.cancel();
                }
                st.set_phase(id, Phase::Cancelled, self.inner.stamp());
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
            Phase::Travelling | Phase::Returning | Phase::Active | Phase::Delayed => {
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

    /// Tasks holding a slot (at the backend).
    pub fn running(&self) -> usize {
        self.inner.lock().running
    }

    /// Tasks on the simulated link, either way.
    pub fn travelling(&self) -> usize {
        self.inner.lock().travelling
    }

    /// Tasks not yet in a final state.
    pub fn active(&self) -> usize {
        let st = self.inner.lock();
        st.tasks.values().filter(|e| !e.phase.is_final()).count()
    }

    /// Tasks whose handler has run or runs now in this attempt: running, or their answer
    /// on the way back.
    fn underway(&self) -> usize {
        let st = self.inner.lock();
        st.tasks
            .values()
            .filter(|e| matches!(e.phase, Phase::Active | Phase::Returning))
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

    /// Stops accepting tasks, cancels queued and waiting ones (retry backoff, on the way out
    /// over the link), lets running ones (and answers on the way back) finish within `grace`,
    /// then cancels the rest (each gets [`CANCEL_GRACE`] to wind down).
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        let underway_at_start;
        {
            let mut st = self.inner.lock();
            st.accepting = false;
            // Queued ones end now, in the order they would have run.
            let mut left: Vec<TaskId> = Vec::new();
            for queue in st.queues.iter() {
                left.extend(queue.iter().map(|w| w.id));
            }
            left.retain(|id| {
                st.tasks
                    .get(id)
                    .is_some_and(|e| e.phase == Phase::Queued && e.grant.is_some())
            });
            // Queued without a place in a queue: about to set off over the link.
            let mut departing: Vec<TaskId> = st
                .tasks
                .iter()
                .filter(|(id, e)| e.phase == Phase::Queued && !left.contains(id))
                .map(|(id, _)| *id)
                .collect();
            departing.sort_by_key(|id| st.tasks.get(id).map(|e| e.created));
            left.extend(departing);
            for id in left {
                let Some(entry) = st.tasks.get_mut(&id) else {
                    continue;
                };
                let attempt = entry.attempts;
                if let Some(token) = entry.cancel.take() {
                    token.cancel();
                }
                st.set_phase(id, Phase::Cancelled, self.inner.stamp());
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
            // Waiting to retry or travelling out: their lives end them as cancelled.
            let mut waiting: Vec<(Stamp, TaskId)> = st
                .tasks
                .iter()
                .filter(|(_, e)| matches!(e.phase, Phase::Delayed | Phase::Travelling))
                .map(|(id, e)| (e.created, *id))
                .collect();
            waiting.sort_unstable();
            for (_, id) in waiting {
                if let Some(token) = st.tasks.get(&id).and_then(|e| e.cancel.as_ref()) {
                    token.cancel();
                }
                report.left_queued.push(id);
            }
            underway_at_start = st
                .tasks
                .values()
                .filter(|e| matches!(e.phase, Phase::Active | Phase::Returning))
                .count();
        }
        self.inner.settled.notify_waiters();
        let _ = tokio::time::timeout(grace, self.wait_underway_zero()).await;
        let still = {
            let st = self.inner.lock();
            let mut still = 0;
            for entry in st.tasks.values() {
                if matches!(entry.phase, Phase::Active | Phase::Returning) {
                    still += 1;
                    if let Some(token) = &entry.cancel {
                        token.cancel();
                    }
                }
            }
            still
        };
        report.cancelled_running = still;
        report.finished_in_grace = underway_at_start.saturating_sub(still);
        let _ = tokio::time::timeout(CANCEL_GRACE * 2, self.wait_idle()).await;
        report
    }

    async fn wait_underway_zero(&self) {
        loop {
            let settled = self.inner.settled.notified();
            if self.underway() == 0 {
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

impl Inner {
    /// Puts `id` in its priority's queue to wait for a slot — at the back, or at the front
    /// for a task that is mid-run and only gave its slot back for a while — and grants what
    /// is free. The caller holds the lock.
    pub(super) fn enqueue(&self, st: &mut State, id: TaskId, front: bool) -> Grant {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let Some(entry) = st.tasks.get_mut(&id) else {
            // Forgotten: the sender is dropped, so the waiter hears at once.
            return rx;
        };
        entry.grant = Some(tx);
        let level = level(entry.priority);
        let waiting = Waiting {
            id,
            since: self.stamp(),
        };
        if front {
            st.queues[level].push_front(waiting);
        } else {
            st.queues[level].push_back(waiting);
        }
        self.grant(st);
        rx
    }

    /// Hands free slots to waiting tasks in priority order (with aging). A task that waited
    /// in `Queued` enters `Running` here, under the lock, so the order of the `Running` events
    /// is the order of the grants.
    pub(super) fn grant(&self, st: &mut State) {
        let now = self.stamp();
        while st.running < self.config.max_concurrent {
            let Some(waiting) = st.pop_next(now, self.config.aging) else {
                break;
            };
            let Some(entry) = st.tasks.get_mut(&waiting.id) else {
                continue;
            };
            let Some(tx) = entry.grant.take() else {
                continue;
            };
            let fresh = entry.phase == Phase::Queued;
            st.running += 1;
            // `self` is borrowed from a live `Arc`, so this upgrade succeeds; were the
            // scheduler being dropped, nobody would be left to run.
            let Some(me) = self.me.upgrade() else {
                break;
            };
            let guard = SlotGuard::new(me as Arc<dyn Slots>);
            match tx.send(guard) {
                Ok(()) => {
                    if fresh {
                        st.set_phase(waiting.id, Phase::Active, now);
                        if let Some(entry) = st.tasks.get_mut(&waiting.id) {
                            entry.attempts += 1;
                            entry.started.get_or_insert(now);
                            self.emit_state(waiting.id, TaskStatus::Running, entry.attempts);
                        }
                    }
                }
                Err(unreceived) => {
                    // The waiter is gone (its task was dropped): the slot goes to the next
                    // one. Given back by hand, since dropping it would take the lock.
                    unreceived.disarm();
                    st.running -= 1;
                }
            }
        }
    }
}

impl Slots for Inner {
    fn give_back(&self) {
        let mut st = self.lock();
        st.running -= 1;
        self.grant(&mut st);
    }

    fn wait_again(&self, id: TaskId) -> Grant {
        let mut st = self.lock();
        self.enqueue(&mut st, id, true)
    }
}
