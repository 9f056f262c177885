//! The priority task scheduler: every prompt, from the console, `veyra run` or a benchmark, is
//! a task here.
//!
//! - **Order.** Five FIFO queues, `CRITICAL > HIGH > NORMAL > LOW > BACKGROUND`. With aging on
//!   (`runtime.aging_ms`), a waiting task gains one level per `aging_ms` of waiting; among equal
//!   effective levels the longest-waiting task goes first. So a BACKGROUND task under a steady
//!   stream of CRITICAL work runs after at most `4 × aging_ms` of waiting plus one slot's time.
//! - **Limits.** At most `max_concurrent` tasks hold a slot: a slot is held only at the
//!   backend, while a handler runs (`slot`). A task on the link — travelling, waiting out a
//!   blackout, or its answer on the way back —, waiting out a retry backoff, or waiting for
//!   the audit trail to make an entry durable ([`off_slot`]) holds none, so a Mars
//!   conjunction never stalls Earth work. At most `queue_capacity` tasks wait — queued for a
//!   slot or on the link —, beyond which [`Scheduler::submit`] returns
//!   [`SubmitError::QueueFull`]: nothing is dropped silently.
//! - **Life of a task.** `Queued → Uplink → Running → Downlink → Succeeded | Failed | Cancelled`,
//!   with `Blackout` while the simulated link is in solar conjunction, `Queued` again when a
//!   task arrives over the link to find every slot taken, and `Retrying` while a retryable
//!   failure waits out its backoff. Transit states appear only when the link is simulated.
//!   Every transition is one [`Event::TaskState`](crate::events::Event::TaskState).
//! - **Retries.** Only for errors the handler marks retryable, up to `max_retries`, and never
//!   for an attempt that streamed or whose tools acted ([`super::attempt`]: the one rule, for
//!   a timeout as for any failure); the delay
//!   doubles from `backoff_ms` up to `backoff_max_ms`, and with jitter is drawn from
//!   `[d/2, d]` by a seeded ChaCha8 generator, so a seed gives the same schedule every run.
//! - **Cancellation.** [`Scheduler::cancel`] works on queued, waiting (retry, transit,
//!   blackout) and running tasks; a running handler is told through its
//!   [`CancellationToken`](tokio_util::sync::CancellationToken) and given [`CANCEL_GRACE`] to
//!   wind down (to record its audit entry) before it is dropped. Cancelling a cancelled task
//!   again is a no-op.
//! - **Shutdown.** [`Scheduler::shutdown`] stops accepting, cancels what is queued or waiting
//!   (and reports it), lets running tasks finish within a grace period, then cancels the rest.
//!
//! All waiting is on tokio's clock, so tests run it paused.
//!
//! The parts: `api` holds the types callers use, `queue` the waiting tasks and the choice
//! of the next one, `handle` the [`Scheduler`] callers hold, `slot` the slots and who gets
//! them, and `life` what happens to a task from acceptance to its final state.

mod api;
mod handle;
mod life;
mod queue;
mod slot;

pub use api::{
    CANCEL_GRACE, CancelError, Payload, SchedulerConfig, ShutdownReport, SubmitError, TaskContext,
    TaskError, TaskHandler, TaskId, TaskInfo, TaskSpec, no_payload,
};
pub use handle::Scheduler;
pub use queue::FINISHED_KEPT;
pub use slot::off_slot;

#[cfg(test)]
mod tests;
