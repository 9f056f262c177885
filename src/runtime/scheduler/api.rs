//! What callers of the scheduler see: the task they submit ([`TaskSpec`]), what its handler
//! gets and returns ([`TaskContext`], [`TaskHandler`], [`TaskError`]), the limits
//! ([`SchedulerConfig`]), the refusals ([`SubmitError`], [`CancelError`]) and the records
//! ([`TaskInfo`], [`ShutdownReport`]). The handle ([`super::handle`]) takes these in and gives
//! them out; the attempt life ([`super::life`]) runs handlers with them.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::config::RuntimeConfig;
use crate::events::{ExecutionId, Priority};
use crate::runtime::attempt::Effects;

/// Task ids are execution ids: one id follows a prompt through every layer.
pub type TaskId = ExecutionId;

/// A task's input: any value its handler knows how to read (`downcast_ref`). Shared, so a retry
/// reuses it without copying.
pub type Payload = Arc<dyn std::any::Any + Send + Sync>;

/// The payload of a task that needs no input.
pub fn no_payload() -> Payload {
    Arc::new(())
}

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
    /// Who asked (`operator`, `benchmark`, …), as the audit trail names them.
    pub actor: Option<String>,
    /// Stays on this side of the simulated link: a benchmark item measures the model, not the
    /// link, so it never waits on light time or a blackout.
    pub local: bool,
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
    /// Tasks allowed to wait: queued for a slot or on the link.
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
    /// A task of this id is already held (a fleet task's id is its submitter's; one id runs
    /// once at a time, and a retired id is never taken over).
    #[error("a task of this id is already here; it is not run twice")]
    DuplicateId,
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

/// A snapshot of one task, for callers that want its whole record rather than its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// The task; also the correlation id of its log lines and audit entries.
    pub id: TaskId,
    /// Handler kind.
    pub kind: String,
    /// Priority.
    pub priority: Priority,
    /// `queued` (for a slot), `travelling` (uplink or blackout), `active` (running),
    /// `returning` (downlink), `waiting` (retry backoff),
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
