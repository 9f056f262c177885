//! `runtime:` — the scheduler's limits: concurrency, retries and backoff, timeouts, aging,
//! queue capacity and the token budget of one task.

use serde::{Deserialize, Serialize};

/// Range of `runtime.max_concurrent`.
pub const RANGE_MAX_CONCURRENT: std::ops::RangeInclusive<u64> = 1..=4096;
/// Range of `runtime.backoff_ms` and `runtime.backoff_max_ms` (a day at most).
pub const RANGE_BACKOFF_MS: std::ops::RangeInclusive<u64> = 0..=86_400_000;
/// Range of `runtime.task_timeout`, seconds (a week at most; 0 = no limit).
pub const RANGE_TASK_TIMEOUT_S: std::ops::RangeInclusive<u64> = 0..=604_800;
/// Range of `runtime.aging_ms` (a day at most; 0 = off).
pub const RANGE_AGING_MS: std::ops::RangeInclusive<u64> = 0..=86_400_000;
/// Range of `runtime.max_tokens_per_task` (0 = no limit).
pub const RANGE_TASK_TOKENS: std::ops::RangeInclusive<u64> = 0..=100_000_000;
/// Range of `runtime.queue_capacity`.
pub const RANGE_QUEUE_CAPACITY: std::ops::RangeInclusive<u64> = 1..=10_000_000;

/// `runtime:` — the scheduler's limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Executions running at once, 1 to 4096.
    pub max_concurrent: usize,
    /// Retries of a failed task, for retryable errors only, 0 to 100.
    pub retries: u32,
    /// First retry delay in milliseconds, 0 to 86,400,000; doubles on each retry.
    pub backoff_ms: u64,
    /// Longest retry delay in milliseconds, `backoff_ms` to 86,400,000.
    pub backoff_max_ms: u64,
    /// Randomise each retry delay between half and all of it ("equal jitter").
    pub jitter: bool,
    /// Seed for jitter and simulated link delays; unset draws a fresh seed at start.
    pub seed: Option<u64>,
    /// Seconds a task may run before it is stopped as timed out, 1 to 604,800 (a week);
    /// 0 means no limit.
    pub task_timeout: u64,
    /// A queued task gains one priority level per this many milliseconds of waiting, so
    /// background work is not starved; 0 turns aging off, at most 86,400,000.
    pub aging_ms: u64,
    /// Tasks that may wait in the queue, 1 to 10,000,000.
    pub queue_capacity: usize,
    /// Tokens (input and output, summed over every model call of an agent loop) one task may
    /// spend before it is stopped with finish reason `token_budget`, 0 to 100,000,000;
    /// 0 means no limit.
    pub max_tokens_per_task: u64,
    /// Where tasks run: `local` (this process's scheduler, the default) or `nats` (workers on
    /// the NATS JetStream queue `nats:` names).
    pub executor: super::Executor,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_concurrent: 4,
            retries: 2,
            backoff_ms: 500,
            backoff_max_ms: 30_000,
            jitter: true,
            seed: None,
            task_timeout: 600,
            aging_ms: 30_000,
            queue_capacity: 1024,
            max_tokens_per_task: 200_000,
            executor: super::Executor::Local,
        }
    }
}
