//! The life of a task, one tokio task from acceptance to its final state ([`Inner::life`]).
//! Each attempt crosses the simulated link (blackout, uplink) holding no slot, waits for a
//! slot ([`super::slot`]), runs its handler under the task timeout and its cancellation token,
//! gives the slot back, crosses back (downlink), and ends either settled in a final state
//! (succeeded, failed, cancelled) or — when [`verdict`] allows a retry — waits out its backoff
//! and goes again. A panicking handler is contained ([`Contained`]) and fails its task only.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api::{CANCEL_GRACE, Payload, TaskContext, TaskError, TaskId, no_payload};
use super::handle::Inner;
use super::queue::{Phase, State};
use super::slot::{Grant, Held, Slots};
use crate::events::{Priority, TaskStatus};
use crate::runtime::attempt::{Effects, Verdict, verdict};
use crate::runtime::contain::Contained;
use crate::runtime::latency::LinkSim;

/// One attempt of a task.
struct Job {
    id: TaskId,
    kind: Arc<str>,
    priority: Priority,
    /// The attempt's number, from 1; known once it departs or gets its slot.
    attempt: u32,
    payload: Payload,
    /// The task's token: cancelling it ends the task in whatever it is doing.
    cancel: CancellationToken,
    /// What this attempt did that cannot be taken back, as its handler marked it.
    effects: Effects,
    /// Never crosses the link.
    local: bool,
}

/// How an attempt ended.
enum Outcome {
    Done,
    Cancelled,
    Error(TaskError),
}

impl Inner {
    /// The whole life of a task, spawned when it is accepted: attempts until a final state.
    /// `queued` is its grant when it was queued for a slot at once (no link to cross first).
    pub(super) async fn life(self: Arc<Self>, id: TaskId, mut queued: Option<Grant>) {
        loop {
            let Some(mut job) = self.job(id) else {
                return;
            };
            let outcome = match Contained::new(self.attempt(&mut job, queued.take())).await {
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
                Outcome::Done => {
                    return self.settle(&job, Phase::Succeeded, TaskStatus::Succeeded);
                }
                Outcome::Cancelled => {
                    let reason = if self.lock().accepting {
                        "operator"
                    } else {
                        "shutdown"
                    };
                    return self.settle(
                        &job,
                        Phase::Cancelled,
                        TaskStatus::Cancelled {
                            reason: reason.into(),
                        },
                    );
                }
                Outcome::Error(e) => {
                    // Read only now: the attempt has ended or been wound down, so every
                    // effect it had is marked.
                    match verdict(
                        e.retryable,
                        job.attempt,
                        self.config.max_retries,
                        &job.effects,
                    ) {
                        Verdict::Retry => match self.retry_later(&job, e).await {
                            Some(next) => queued = next,
                            None => return,
                        },
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
                            return self.settle(
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
    }

    /// The next attempt of `id`, or `None` when the task has ended (cancelled while queued).
    fn job(&self, id: TaskId) -> Option<Job> {
        let st = self.lock();
        let entry = st.tasks.get(&id)?;
        if entry.phase.is_final() {
            return None;
        }
        Some(Job {
            id,
            kind: st.kind(entry.kind),
            priority: entry.priority,
            attempt: entry.attempts + 1,
            payload: entry.payload.clone().unwrap_or_else(no_payload),
            cancel: entry.cancel.clone().unwrap_or_default(),
            effects: Effects::default(),
            local: entry.local,
        })
    }

    /// The link a task crosses now: `None` when none is simulated (`latency.simulate` off, or
    /// switched off with `:sim off`) or the task is `local`.
    pub(super) fn crossing(&self, local: bool) -> Option<&Arc<LinkSim>> {
        self.link.as_ref().filter(|link| !local && link.is_on())
    }

    /// One attempt: across the link (when simulated) to a slot, the handler under the task
    /// timeout and the task's token, the slot given back, and back across the link.
    async fn attempt(self: &Arc<Self>, job: &mut Job, queued: Option<Grant>) -> Outcome {
        let grant = match (queued, self.crossing(job.local)) {
            (Some(grant), _) => grant,
            (None, Some(link)) => {
                if !self.depart(job.id) {
                    return Outcome::Cancelled;
                }
                if let Err(outcome) = self.transit(job, link, Leg::Up).await {
                    return outcome;
                }
                self.arrive(job.id)
            }
            (None, None) => {
                let mut st = self.lock();
                // Set off with the link on, arriving with it off (`:sim off`): the task may
                // have ended meanwhile, and an ended task gets no slot.
                if st.has_ended(job.id) {
                    return Outcome::Cancelled;
                }
                self.enqueue(&mut st, job.id, false)
            }
        };
        let slot = tokio::select! {
            got = grant => match got {
                Ok(slot) => slot,
                // The grant was dropped: the task ended while it waited (cancelled).
                Err(_) => return Outcome::Cancelled,
            },
            () = job.cancel.cancelled() => return Outcome::Cancelled,
        };
        job.attempt = self
            .lock()
            .tasks
            .get(&job.id)
            .map_or(job.attempt, |e| e.attempts);
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
        let slots: Arc<dyn Slots> = Arc::clone(self) as Arc<dyn Slots>;
        let held = Held::new(slots, job.id, run_token.clone(), slot);
        let mut run = std::pin::pin!(Arc::clone(&held).scope(handler.run(ctx)));
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
        // The answer is in hand: the slot goes to the next task before the way back.
        held.release();
        if let Some(link) = self.crossing(job.local) {
            {
                let mut st = self.lock();
                if st.has_ended(job.id) {
                    return Outcome::Cancelled;
                }
                st.set_phase(job.id, Phase::Returning, self.stamp());
            }
            if let Err(outcome) = self.transit(job, link, Leg::Down).await {
                return outcome;
            }
        }
        Outcome::Done
    }

    /// Puts `id` on the uplink; false when it has ended (cancelled while queued).
    fn depart(&self, id: TaskId) -> bool {
        let mut st = self.lock();
        if st.has_ended(id) {
            return false;
        }
        st.set_phase(id, Phase::Travelling, self.stamp());
        true
    }

    /// `id` is across the link: it waits for a slot like any queued task, and says so when
    /// none is free.
    fn arrive(self: &Arc<Self>, id: TaskId) -> Grant {
        let mut st = self.lock();
        if st.has_ended(id) {
            // The sender is dropped with the channel: the waiter hears at once.
            return tokio::sync::oneshot::channel().1;
        }
        st.set_phase(id, Phase::Queued, self.stamp());
        let grant = self.enqueue(&mut st, id, false);
        if let Some(entry) = st.tasks.get(&id)
            && entry.phase == Phase::Queued
        {
            let attempts = entry.attempts;
            self.emit_state(id, TaskStatus::Queued, attempts);
        }
        grant
    }

    /// Waits out a blackout, then one leg of light time; `Err` when cancelled or the link
    /// cannot be computed. The link switched off (`:sim off`) ends the wait at once.
    async fn transit(&self, job: &Job, link: &LinkSim, leg: Leg) -> Result<(), Outcome> {
        loop {
            // Before the check: a switch made after it still wakes the wait.
            let switched = link.changed();
            if !link.is_on() {
                return Ok(());
            }
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
                    // Until the conjunction ends, or the operator switches away from Mars.
                    tokio::select! {
                        result = self.wait(job, real) => result?,
                        () = switched => {}
                    }
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
        let arrives = Instant::now() + real;
        loop {
            let switched = link.changed();
            if !link.is_on() {
                return Ok(());
            }
            tokio::select! {
                result = self.wait(job, arrives.saturating_duration_since(Instant::now())) => {
                    return result;
                }
                () = switched => {}
            }
        }
    }

    async fn wait(&self, job: &Job, real: Duration) -> Result<(), Outcome> {
        tokio::select! {
            () = tokio::time::sleep(real) => Ok(()),
            () = job.cancel.cancelled() => Err(Outcome::Cancelled),
        }
    }

    /// Final state: record it (once: a task cancelled while queued has already ended).
    fn settle(&self, job: &Job, phase: Phase, status: TaskStatus) {
        {
            let mut st = self.lock();
            if st.has_ended(job.id) {
                return;
            }
            st.set_phase(job.id, phase, self.stamp());
            st.retire(job.id);
            self.emit_state(job.id, status, job.attempt);
        }
        self.settled.notify_waiters();
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

    /// Waits the backoff (cancellable, no slot held), then queues the task again: `None`
    /// when it ended instead, else the grant to wait on (`Some(None)` when the next attempt
    /// crosses the link first).
    async fn retry_later(self: &Arc<Self>, job: &Job, error: TaskError) -> Option<Option<Grant>> {
        let delay = {
            let mut st = self.lock();
            if st.has_ended(job.id) {
                return None;
            }
            let delay = {
                let State { rng, .. } = &mut *st;
                self.backoff(job.attempt, rng)
            };
            st.set_phase(job.id, Phase::Delayed, self.stamp());
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
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = job.cancel.cancelled() => {}
        }
        let mut st = self.lock();
        if st.has_ended(job.id) {
            return None;
        }
        // Checked under the lock that `cancel` takes, so a cancel is never lost.
        if job.cancel.is_cancelled() || !st.accepting {
            st.set_phase(job.id, Phase::Cancelled, self.stamp());
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
            return None;
        }
        st.set_phase(job.id, Phase::Queued, self.stamp());
        self.emit_state(job.id, TaskStatus::Queued, job.attempt);
        Some(match self.crossing(job.local) {
            Some(_) => None,
            None => Some(self.enqueue(&mut st, job.id, false)),
        })
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
