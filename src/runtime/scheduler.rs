//! The priority task scheduler: every prompt, from the console, `veyra run` or a benchmark, is
//! a task here.
//!
//! - **Order.** Five FIFO queues, `CRITICAL > HIGH > NORMAL > LOW > BACKGROUND`. With aging on
//!   (`runtime.aging_ms`), a waiting task gains one level per `aging_ms` of waiting; among equal
//!   effective levels the longest-waiting task goes first. So a BACKGROUND task under a steady
//!   stream of CRITICAL work runs after at most `4 × aging_ms` of waiting plus one slot's time.
//! - **Limits.** At most `max_concurrent` tasks hold a slot (from dispatch until their final
//!   state or a retry wait); at most `queue_capacity` wait in the queues, beyond which
//!   [`Scheduler::submit`] returns [`SubmitError::QueueFull`]: nothing is dropped silently.
//! - **Life of a task.** `Queued → Uplink → Running → Downlink → Succeeded | Failed | Cancelled`,
//!   with `Blackout` while the simulated link is in solar conjunction and `Retrying` while a
//!   retryable failure waits out its backoff (no slot held). Transit states appear only when the
//!   link is simulated. Every transition is one [`Event::TaskState`].
//! - **Retries.** Only for errors the handler marks retryable, up to `max_retries`, and never
//!   for an attempt that streamed or whose tools acted ([`super::attempt`]: the one rule, for
//!   a timeout as for any failure); the delay
//!   doubles from `backoff_ms` up to `backoff_max_ms`, and with jitter is drawn from
//!   `[d/2, d]` by a seeded ChaCha8 generator, so a seed gives the same schedule every run.
//! - **Cancellation.** [`Scheduler::cancel`] works on queued, waiting (retry, transit,
//!   blackout) and running tasks; a running handler is told through its
//!   [`CancellationToken`] and given [`CANCEL_GRACE`] to wind down (to record its audit entry)
//!   before it is dropped. Cancelling a cancelled task again is a no-op.
//! - **Shutdown.** [`Scheduler::shutdown`] stops accepting, cancels what is queued or waiting
//!   (and reports it), lets running tasks finish within a grace period, then cancels the rest.
//!
//! All waiting is on tokio's clock, so tests run it paused.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use chrono::Utc;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::attempt::{Effects, Verdict, verdict};
use super::contain::Contained;
use super::latency::LinkSim;
use crate::config::RuntimeConfig;
use crate::events::{Event, EventSink, ExecutionId, Priority, TaskStatus};

/// Task ids are execution ids: one id follows a prompt through every layer.
pub type TaskId = ExecutionId;

/// A task's input: any value its handler knows how to read (`downcast_ref`). Shared, so a retry
/// reuses it without copying.
pub type Payload = Arc<dyn std::any::Any + Send + Sync>;

/// The payload of a task that needs no input.
pub fn no_payload() -> Payload {
    Arc::new(())
}

/// Records of ended tasks kept for `task()` and for a clear "already finished" on cancel; older
/// ones are forgotten so a long session does not grow without bound.
pub const FINISHED_KEPT: usize = 10_000;

/// How long a cancelled or timed-out handler may take to wind down before it is dropped.
pub const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// What to run.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// Handler kind (`execute`, …); must be registered.
    pub kind: String,
    /// One-line description for task lists.
    pub title: String,
    /// Priority.
    pub priority: Priority,
    /// The handler's input.
    pub payload: Payload,
    /// Backend, for display (prompts only).
    pub backend: Option<String>,
    /// Model, for display (prompts only).
    pub model: Option<String>,
}

/// Why a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    /// Machine-readable kind (`rate_limit`, `timeout`, `bad_request`, …).
    pub kind: String,
    /// A sentence for the operator.
    pub message: String,
    /// Whether trying again may succeed.
    pub retryable: bool,
}

impl TaskError {
    /// A failure that a retry may fix.
    pub fn retryable(kind: &str, message: impl Into<String>) -> Self {
        TaskError {
            kind: kind.to_string(),
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that a retry will not fix.
    pub fn permanent(kind: &str, message: impl Into<String>) -> Self {
        TaskError {
            kind: kind.to_string(),
            message: message.into(),
            retryable: false,
        }
    }
}

/// What a handler gets for one attempt.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// The task.
    pub id: TaskId,
    /// Its priority.
    pub priority: Priority,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The payload given at submit.
    pub payload: Payload,
    /// Cancelled when the task is cancelled or times out: stop promptly when it fires.
    pub cancel: CancellationToken,
    /// Mark here what the attempt did that cannot be taken back (streamed text, a tool that
    /// may act): such an attempt is never run again, whatever its error.
    pub effects: Effects,
}

/// Runs tasks of one kind.
#[async_trait::async_trait]
pub trait TaskHandler: Send + Sync + 'static {
    /// One attempt.
    async fn run(&self, task: TaskContext) -> Result<(), TaskError>;
}

/// Scheduler limits, from `runtime:`.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// Slots.
    pub max_concurrent: usize,
    /// Waiting tasks allowed.
    pub queue_capacity: usize,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First retry delay.
    pub backoff: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Draw each delay from `[d/2, d]`.
    pub jitter: bool,
    /// Seed of the jitter generator.
    pub seed: u64,
    /// Time limit of one attempt.
    pub task_timeout: Option<Duration>,
    /// One priority level gained per this much waiting.
    pub aging: Option<Duration>,
}

impl SchedulerConfig {
    /// From `runtime:`; `seed` is used when the config has none.
    pub fn from_runtime(r: &RuntimeConfig, seed: u64) -> Self {
        let nonzero = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
        SchedulerConfig {
            max_concurrent: r.max_concurrent.max(1),
            queue_capacity: r.queue_capacity.max(1),
            max_retries: r.retries,
            backoff: Duration::from_millis(r.backoff_ms),
            backoff_max: Duration::from_millis(r.backoff_max_ms.max(r.backoff_ms)),
            jitter: r.jitter,
            seed: r.seed.unwrap_or(seed),
            task_timeout: (r.task_timeout > 0).then(|| Duration::from_secs(r.task_timeout)),
            aging: nonzero(r.aging_ms),
        }
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self::from_runtime(&RuntimeConfig::default(), 0)
    }
}

/// Why a task was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The queue is at capacity.
    #[error(
        "the task queue is full ({capacity} tasks waiting); wait for some to finish or raise runtime.queue_capacity"
    )]
    QueueFull {
        /// `queue_capacity`.
        capacity: usize,
    },
    /// No handler for the kind.
    #[error("no handler for task kind '{kind}'; registered kinds: {known}")]
    UnknownKind {
        /// The kind asked for.
        kind: String,
        /// Registered kinds, comma-separated.
        known: String,
    },
    /// The scheduler is shutting down.
    #[error("the scheduler is shutting down and accepts no new tasks")]
    ShuttingDown,
}

/// Why a cancel did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    /// No task has this id.
    #[error("no task {0}; pick one from the task list")]
    Unknown(TaskId),
    /// The task already ended.
    #[error("task {id} already {state}; nothing to cancel")]
    Finished {
        /// The task.
        id: TaskId,
        /// `succeeded` or `failed`.
        state: &'static str,
    },
}

/// What shutdown left behind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Tasks that never started (or were waiting to retry), cancelled.
    pub left_queued: Vec<TaskId>,
    /// Tasks that finished within the grace period.
    pub finished_in_grace: usize,
    /// Tasks still running after the grace period, cancelled.
    pub cancelled_running: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Queued,
    /// Holding a slot: transit, blackout or running.
    Active,
    /// Waiting out a retry backoff; no slot held.
    Delayed,
    Succeeded,
    Failed,
    Cancelled,
}

#[derive(Debug)]
struct Entry {
    /// Index into [`State::kinds`].
    kind: u16,
    priority: Priority,
    /// Dropped (`None`) once the task has ended.
    payload: Option<Payload>,
    attempts: u32,
    phase: Phase,
    cancel: Option<CancellationToken>,
    /// Times as [`Stamp`]s: 8 bytes each, so a million queued tasks stay small.
    created: Stamp,
    started: Option<Stamp>,
    finished: Option<Stamp>,
}

/// Milliseconds since the scheduler's epoch, plus one (so it is never zero).
type Stamp = std::num::NonZeroU64;

impl Entry {
    fn finish(&mut self, phase: Phase, at: Stamp) {
        self.phase = phase;
        self.cancel = None;
        self.payload = None;
        self.finished = Some(at);
    }
}

/// A snapshot of one task, for callers that want its whole record rather than its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// The task; also the correlation id of its log lines and audit entries.
    pub id: TaskId,
    /// Handler kind.
    pub kind: String,
    /// Priority.
    pub priority: Priority,
    /// `queued`, `active` (in transit, blackout or running), `waiting` (retry backoff),
    /// `succeeded`, `failed` or `cancelled`.
    pub state: &'static str,
    /// Attempts started.
    pub attempts: u32,
    /// Accepted at.
    pub created_at: chrono::DateTime<Utc>,
    /// First dispatched at.
    pub started_at: Option<chrono::DateTime<Utc>>,
    /// Ended at.
    pub finished_at: Option<chrono::DateTime<Utc>>,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Active => "active",
            Phase::Delayed => "waiting",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    id: TaskId,
    since: Stamp,
}

#[derive(Debug)]
struct State {
    queues: [VecDeque<Waiting>; 5],
    /// Task kinds, interned: entries keep a 2-byte index instead of a string each.
    kinds: Vec<Arc<str>>,
    /// Ended tasks, oldest first; records beyond [`FINISHED_KEPT`] are dropped.
    finished: VecDeque<TaskId>,
    tasks: HashMap<TaskId, Entry>,
    queued: usize,
    running: usize,
    accepting: bool,
    rng: ChaCha8Rng,
}

impl State {
    /// The next task to dispatch, honouring priority, FIFO and aging. Skips entries cancelled
    /// while queued (they are removed lazily).
    fn pop_next(&mut self, now: Stamp, aging: Option<Duration>) -> Option<Waiting> {
        let aging_ms = aging.map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX).max(1));
        loop {
            let mut best: Option<(i64, Stamp, usize)> = None;
            for (level, queue) in self.queues.iter().enumerate() {
                let Some(head) = queue.front() else { continue };
                let boost = aging_ms.map_or(0, |a| {
                    let waited = now.get().saturating_sub(head.since.get());
                    i64::try_from(waited / a).unwrap_or(i64::MAX)
                });
                let effective = (level as i64).saturating_sub(boost);
                let candidate = (effective, head.since, level);
                if best.is_none_or(|b| (candidate.0, candidate.1) < (b.0, b.1)) {
                    best = Some(candidate);
                }
            }
            let (_, _, level) = best?;
            let waiting = self.queues[level].pop_front()?;
            if self
                .tasks
                .get(&waiting.id)
                .is_some_and(|e| e.phase == Phase::Queued)
            {
                self.queued -= 1;
                return Some(waiting);
            }
        }
    }

    /// Remembers that `id` ended, forgetting the oldest ended task beyond [`FINISHED_KEPT`].
    fn retire(&mut self, id: TaskId) {
        self.finished.push_back(id);
        while self.finished.len() > FINISHED_KEPT {
            if let Some(old) = self.finished.pop_front() {
                self.tasks.remove(&old);
            }
        }
    }

    /// The index of `kind` in the interned table, adding it if new.
    fn intern(&mut self, kind: &str) -> u16 {
        if let Some(i) = self.kinds.iter().position(|k| &**k == kind) {
            return i as u16;
        }
        self.kinds.push(Arc::from(kind));
        u16::try_from(self.kinds.len() - 1).unwrap_or(u16::MAX)
    }

    fn kind(&self, index: u16) -> Arc<str> {
        self.kinds
            .get(usize::from(index))
            .cloned()
            .unwrap_or_else(|| Arc::from("?"))
    }
}

fn level(p: Priority) -> usize {
    match p {
        Priority::Critical => 0,
        Priority::High => 1,
        Priority::Normal => 2,
        Priority::Low => 3,
        Priority::Background => 4,
    }
}

struct Inner {
    config: SchedulerConfig,
    sink: Arc<dyn EventSink>,
    link: Option<Arc<LinkSim>>,
    handlers: RwLock<HashMap<String, Arc<dyn TaskHandler>>>,
    state: Mutex<State>,
    /// Signalled whenever a task reaches a final state.
    settled: Notify,
    /// When the scheduler started, on tokio's clock and on the wall clock.
    epoch: (Instant, chrono::DateTime<Utc>),
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

/// One dispatched attempt.
struct Job {
    id: TaskId,
    kind: Arc<str>,
    priority: Priority,
    attempt: u32,
    payload: Payload,
    cancel: CancellationToken,
    /// What this attempt did that cannot be taken back, as its handler marked it.
    effects: Effects,
}

/// How an attempt ended.
enum Outcome {
    Done,
    Cancelled,
    Error(TaskError),
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
    fn stamp(&self) -> Stamp {
        let ms = u64::try_from(self.epoch.0.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        Stamp::MIN.saturating_add(ms)
    }

    fn wall(&self, stamp: Stamp) -> chrono::DateTime<Utc> {
        let ms = i64::try_from(stamp.get() - 1).unwrap_or(i64::MAX);
        self.epoch.1 + chrono::TimeDelta::milliseconds(ms)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update is a few plain
        // assignments), so keep going with it rather than poisoning the whole console.
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn emit_state(&self, id: TaskId, status: TaskStatus, attempt: u32) {
        self.sink.emit(Event::TaskState {
            id,
            status,
            attempt,
            at: Utc::now(),
        });
    }

    /// Starts queued tasks while slots are free.
    fn pump(self: &Arc<Self>) {
        let mut jobs = Vec::new();
        {
            let mut st = self.lock();
            let now = self.stamp();
            while st.running < self.config.max_concurrent {
                let Some(waiting) = st.pop_next(now, self.config.aging) else {
                    break;
                };
                let Some(kind_index) = st.tasks.get(&waiting.id).map(|e| e.kind) else {
                    continue;
                };
                let kind = st.kind(kind_index);
                let Some(entry) = st.tasks.get_mut(&waiting.id) else {
                    continue;
                };
                entry.phase = Phase::Active;
                entry.attempts += 1;
                entry.started.get_or_insert(self.stamp());
                let token = CancellationToken::new();
                entry.cancel = Some(token.clone());
                let job = Job {
                    id: waiting.id,
                    kind: Arc::clone(&kind),
                    priority: entry.priority,
                    attempt: entry.attempts,
                    payload: entry.payload.clone().unwrap_or_else(no_payload),
                    cancel: token,
                    effects: Effects::default(),
                };
                st.running += 1;
                jobs.push(job);
            }
        }
        for job in jobs {
            let inner = Arc::clone(self);
            tokio::spawn(async move { inner.attempt(job).await });
        }
    }

    /// One attempt from dispatch to its outcome, then the bookkeeping. A panic anywhere in
    /// the attempt (a handler's bug) is contained: the task fails with kind `internal` and its
    /// slot is released like any other failure's.
    async fn attempt(self: Arc<Self>, job: Job) {
        let outcome = match Contained::new(self.lifecycle(&job)).await {
            Ok(outcome) => outcome,
            Err(panicked) => {
                tracing::error!(
                    task = %job.id,
                    kind = %job.kind,
                    attempt = job.attempt,
                    panic = %panicked,
                    "a task handler panicked; the task fails and Veyra carries on"
                );
                Outcome::Error(TaskError::permanent(
                    "internal",
                    format!(
                        "internal error: the '{}' handler panicked ({panicked}); \
                         this is a bug in Veyra, please report it with the log",
                        job.kind
                    ),
                ))
            }
        };
        match outcome {
            Outcome::Done => self.settle(&job, Phase::Succeeded, TaskStatus::Succeeded),
            Outcome::Cancelled => {
                let reason = if self.lock().accepting {
                    "operator"
                } else {
                    "shutdown"
                };
                self.settle(
                    &job,
                    Phase::Cancelled,
                    TaskStatus::Cancelled {
                        reason: reason.into(),
                    },
                );
            }
            Outcome::Error(e) => {
                // Read only now: the attempt has ended or been wound down, so every effect it
                // had is marked.
                match verdict(&e, job.attempt, self.config.max_retries, &job.effects) {
                    Verdict::Retry => self.retry_later(job, e).await,
                    Verdict::Final { because } => {
                        let mut error = e.message;
                        if let Some(because) = because {
                            tracing::warn!(
                                task = %job.id,
                                attempt = job.attempt,
                                kind = %e.kind,
                                not_retried = because.name(),
                                "a retryable failure is final: the attempt streamed or acted"
                            );
                            error = format!("{error}; {}", because.sentence());
                        }
                        self.settle(
                            &job,
                            Phase::Failed,
                            TaskStatus::Failed {
                                error,
                                kind: e.kind,
                                not_retried: because.map(|b| b.name().to_string()),
                            },
                        );
                    }
                }
            }
        }
    }

    async fn lifecycle(&self, job: &Job) -> Outcome {
        if let Some(link) = &self.link
            && let Err(outcome) = self.transit(job, link, Leg::Up).await
        {
            return outcome;
        }
        self.emit_state(job.id, TaskStatus::Running, job.attempt);
        let handler = {
            let handlers = match self.handlers.read() {
                Ok(h) => h,
                Err(poisoned) => poisoned.into_inner(),
            };
            handlers.get(&*job.kind).cloned()
        };
        let Some(handler) = handler else {
            return Outcome::Error(TaskError::permanent(
                "config",
                format!("the handler for '{}' was removed", job.kind),
            ));
        };
        let run_token = job.cancel.child_token();
        let ctx = TaskContext {
            id: job.id,
            priority: job.priority,
            attempt: job.attempt,
            payload: Arc::clone(&job.payload),
            cancel: run_token.clone(),
            effects: job.effects.clone(),
        };
        let mut run = handler.run(ctx);
        let deadline = self
            .config
            .task_timeout
            .map(|t| crate::limits::deadline(Instant::now(), t));
        let timed_out = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = &mut run => {
                if job.cancel.is_cancelled() {
                    return Outcome::Cancelled;
                }
                if let Err(e) = result {
                    return Outcome::Error(e);
                }
            }
            () = job.cancel.cancelled() => {
                let _ = tokio::time::timeout(CANCEL_GRACE, &mut run).await;
                return Outcome::Cancelled;
            }
            () = timed_out => {
                run_token.cancel();
                let _ = tokio::time::timeout(CANCEL_GRACE, &mut run).await;
                let limit = self.config.task_timeout.unwrap_or_default();
                // Retryable in kind; whether this attempt may run again is `verdict`'s call,
                // from what it streamed or did before it was stopped.
                return Outcome::Error(TaskError::retryable(
                    "timeout",
                    format!("the task ran longer than {}s (runtime.task_timeout)", limit.as_secs()),
                ));
            }
        }
        if let Some(link) = &self.link
            && let Err(outcome) = self.transit(job, link, Leg::Down).await
        {
            return outcome;
        }
        Outcome::Done
    }

    /// Waits out a blackout, then one leg of light time; `Err` when cancelled or the link
    /// cannot be computed.
    async fn transit(&self, job: &Job, link: &LinkSim, leg: Leg) -> Result<(), Outcome> {
        loop {
            match link.blackout_remaining() {
                Ok(Some(sim)) => {
                    let real = link.to_real(sim);
                    self.emit_state(
                        job.id,
                        TaskStatus::Blackout {
                            sim_ms: millis(sim),
                            real_ms: millis(real),
                        },
                        job.attempt,
                    );
                    self.wait(job, real).await?;
                }
                Ok(None) => break,
                Err(e) => return Err(Outcome::Error(TaskError::permanent("link", e.to_string()))),
            }
        }
        let sim = link
            .draw_one_way()
            .map_err(|e| Outcome::Error(TaskError::permanent("link", e.to_string())))?;
        let real = link.to_real(sim);
        let (sim_ms, real_ms) = (millis(sim), millis(real));
        let status = match leg {
            Leg::Up => TaskStatus::Uplink { sim_ms, real_ms },
            Leg::Down => TaskStatus::Downlink { sim_ms, real_ms },
        };
        self.emit_state(job.id, status, job.attempt);
        self.wait(job, real).await
    }

    async fn wait(&self, job: &Job, real: Duration) -> Result<(), Outcome> {
        tokio::select! {
            () = tokio::time::sleep(real) => Ok(()),
            () = job.cancel.cancelled() => Err(Outcome::Cancelled),
        }
    }

    /// Final state: record it, free the slot, start the next task.
    fn settle(self: &Arc<Self>, job: &Job, phase: Phase, status: TaskStatus) {
        {
            let mut st = self.lock();
            let at = self.stamp();
            if let Some(entry) = st.tasks.get_mut(&job.id) {
                entry.finish(phase, at);
            }
            st.retire(job.id);
            st.running -= 1;
            self.emit_state(job.id, status, job.attempt);
        }
        self.settled.notify_waiters();
        self.pump();
    }

    /// The backoff before attempt `failed + 1`.
    fn backoff(&self, failed_attempt: u32, rng: &mut ChaCha8Rng) -> Duration {
        let exp = failed_attempt.saturating_sub(1).min(31);
        let full = self
            .config
            .backoff
            .saturating_mul(1u32 << exp)
            .min(self.config.backoff_max);
        if !self.config.jitter || full.is_zero() {
            return full;
        }
        let half = full / 2;
        let extra = rng.random_range(0..=millis(full - half));
        half + Duration::from_millis(extra)
    }

    /// Frees the slot, waits the backoff (cancellable), then queues the task again.
    async fn retry_later(self: Arc<Self>, job: Job, error: TaskError) {
        let delay = {
            let mut st = self.lock();
            let delay = {
                let State { rng, .. } = &mut *st;
                self.backoff(job.attempt, rng)
            };
            if let Some(entry) = st.tasks.get_mut(&job.id) {
                entry.phase = Phase::Delayed;
            }
            st.running -= 1;
            self.emit_state(
                job.id,
                TaskStatus::Retrying {
                    delay_ms: millis(delay),
                    error: error.message,
                },
                job.attempt,
            );
            delay
        };
        self.pump();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = job.cancel.cancelled() => {}
        }
        {
            let mut st = self.lock();
            // Checked under the lock that `cancel` takes, so a cancel is never lost.
            let cancelled = job.cancel.is_cancelled();
            if cancelled || !st.accepting {
                let at = self.stamp();
                if let Some(entry) = st.tasks.get_mut(&job.id) {
                    entry.finish(Phase::Cancelled, at);
                }
                st.retire(job.id);
                let reason = if st.accepting { "operator" } else { "shutdown" };
                self.emit_state(
                    job.id,
                    TaskStatus::Cancelled {
                        reason: reason.into(),
                    },
                    job.attempt,
                );
                drop(st);
                self.settled.notify_waiters();
                return;
            }
            let Some(entry) = st.tasks.get_mut(&job.id) else {
                return;
            };
            entry.phase = Phase::Queued;
            entry.cancel = None;
            let priority = entry.priority;
            st.queues[level(priority)].push_back(Waiting {
                id: job.id,
                since: self.stamp(),
            });
            st.queued += 1;
            self.emit_state(job.id, TaskStatus::Queued, job.attempt);
        }
        self.pump();
    }
}

#[derive(Debug, Clone, Copy)]
enum Leg {
    Up,
    Down,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
