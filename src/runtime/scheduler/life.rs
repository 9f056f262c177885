//! The life of one attempt: [`Inner::pump`] dispatches queued tasks into free slots, each
//! attempt crosses the simulated link (blackout, uplink), runs its handler under the task
//! timeout and its cancellation token, crosses back (downlink), and ends either settled in a
//! final state (succeeded, failed, cancelled) or — when [`verdict`] allows a retry — freed to
//! wait out its backoff and queued again. A panicking handler is contained ([`Contained`]) and
//! fails its task only.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api::{CANCEL_GRACE, Payload, TaskContext, TaskError, TaskId, no_payload};
use super::handle::Inner;
use super::queue::{Phase, State, Waiting, level};
use crate::events::{Priority, TaskStatus};
use crate::runtime::attempt::{Effects, Verdict, verdict};
use crate::runtime::contain::Contained;
use crate::runtime::latency::LinkSim;

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

impl Inner {
    /// Starts queued tasks while slots are free.
    pub(super) fn pump(self: &Arc<Self>) {
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
                match verdict(
                    e.retryable,
                    job.attempt,
                    self.config.max_retries,
                    &job.effects,
                ) {
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
        crate::limits::Backoff {
            first: self.config.backoff,
            max: self.config.backoff_max,
            jitter: self.config.jitter,
        }
        .delay(failed_attempt.saturating_sub(1), rng)
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
