//! A worker's records of a task on the bus: its claim on the task's attempt record (every
//! change over the revision it last wrote), the guard that cancels a task left unwatched, a
//! task failed without running, and the result kept before the acknowledgement.

use super::*;

/// This worker's hold on a task's attempt record: every change goes through the revision this
/// worker last wrote, so a second worker that took the task over makes the next change fail
/// (and this one stops) instead of both running.
pub(super) struct Claim {
    pub(super) shared: Shared,
    pub(super) key: String,
    pub(super) attempt: u32,
    pub(super) revision: std::sync::atomic::AtomicU64,
    /// Set once the attempt is marked acted (or the mark failed, for good).
    pub(super) acted: tokio::sync::OnceCell<Result<(), String>>,
}

impl Claim {
    /// Moves the record to `phase` if it is still the one this worker wrote. A server that
    /// cannot be reached (restarting) is tried again for up to [`OUTAGE`]; a write that landed
    /// but whose answer was lost is recognised by reading the record back.
    pub(super) async fn set(&self, phase: Phase) -> Result<(), String> {
        let bytes = attempt_bytes(&self.shared, self.attempt, phase)?;
        let deadline = tokio::time::Instant::now() + OUTAGE;
        let mut wait = Duration::from_millis(100);
        loop {
            let revision = self.revision.load(std::sync::atomic::Ordering::SeqCst);
            let error = match self
                .shared
                .attempts
                .update(&self.key, bytes.clone(), revision)
                .await
            {
                Ok(next) => {
                    self.revision
                        .store(next, std::sync::atomic::Ordering::SeqCst);
                    return Ok(());
                }
                Err(e) => e.to_string(),
            };
            match self.shared.attempts.entry(self.key.clone()).await {
                Ok(Some(entry)) if entry.revision != revision => {
                    let mine = serde_json::from_slice::<Attempt>(&entry.value).is_ok_and(|a| {
                        a.worker == *self.shared.name
                            && a.attempt == self.attempt
                            && a.phase == phase
                    });
                    if mine {
                        self.revision
                            .store(entry.revision, std::sync::atomic::Ordering::SeqCst);
                        return Ok(());
                    }
                    return Err(format!(
                        "its attempt record changed under this worker (another worker took the \
                         task over): {error}"
                    ));
                }
                Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Ok(_) | Err(_) => {
                    return Err(format!(
                        "the fleet's server did not take the record: {error}"
                    ));
                }
            }
        }
    }

    /// Marks the attempt acted, once, before anything of it acts or reaches the submitter;
    /// every caller waits for the one write, and a failed write fails every caller after it.
    pub(super) async fn acted(&self) -> Result<(), String> {
        self.acted
            .get_or_init(|| self.set(Phase::Acted))
            .await
            .clone()
    }
}

/// Cancels a task still running in the core when its handling stops early (a dropped stream
/// does not cancel it), so nothing runs on unwatched.
pub(super) struct Unwatched {
    pub(super) core: VeyraCore,
    pub(super) id: ExecutionId,
    pub(super) ended: bool,
}

impl Drop for Unwatched {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.core.cancel(self.id);
        }
    }
}

/// The record this worker writes for its attempt.
pub(super) fn attempt_bytes(shared: &Shared, attempt: u32, phase: Phase) -> Result<Bytes, String> {
    serde_json::to_vec(&Attempt {
        worker: shared.name.to_string(),
        attempt,
        phase,
        at: Utc::now(),
    })
    .map(Bytes::from)
    .map_err(|e| e.to_string())
}

/// A worker name read from the bus, fit for a log line or a message.
pub(super) fn shown_worker(name: &str) -> String {
    crate::sanitize::quote(&crate::sanitize::excerpt(name, 80))
}

/// Fails a task without running it (lost, or unable to run here): its attempt record set
/// final (over the revision read, when there was one: a worker that changed it meanwhile keeps
/// the task), its result kept, its final state published, the decision recorded.
pub(super) async fn lose(
    shared: &Shared,
    task: &TaskMessage,
    attempt: u32,
    why: &str,
    revision: Option<u64>,
) -> Result<(), VeyraError> {
    let id = task.id;
    tracing::warn!(%id, "{why}");
    let key = wire::key(id);
    let bytes = attempt_bytes(shared, attempt, Phase::Final).map_err(VeyraError::Runtime)?;
    let finalised = match revision {
        None => shared
            .attempts
            .create(&key, bytes)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Some(r) => shared
            .attempts
            .update(&key, bytes, r)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = finalised {
        tracing::info!(%id, "the task's record changed meanwhile ({e}); left to the worker that changed it");
        return Ok(());
    }
    record(
        &shared.core,
        "fleet_lost",
        &format!("execution:{id}"),
        "failure",
        serde_json::json!({ "worker": &*shared.name, "attempt": attempt, "reason": why, "by": task.by }),
    )
    .await;
    keep_result(
        shared,
        id,
        attempt,
        "failed",
        String::new(),
        Some(why.to_string()),
    )
    .await?;
    let mut event = failed(id, attempt, why, "lost");
    if let Event::TaskState {
        status: TaskStatus::Failed { not_retried, .. },
        ..
    } = &mut event
        && why.contains("acted")
    {
        *not_retried = Some("tools_acted".into());
    }
    publish(shared, &shared.fleet.events_subject(id), &event).await;
    Ok(())
}

pub(super) async fn keep_result(
    shared: &Shared,
    id: ExecutionId,
    attempt: u32,
    status: &str,
    text: String,
    error: Option<String>,
) -> Result<(), VeyraError> {
    // Held in bytes, escapes included, well under the bucket's value limit.
    let result = TaskResult {
        id,
        worker: shared.name.to_string(),
        attempt,
        status: status.into(),
        text: cut(&text, wire::MAX_RESULT_TEXT).to_string(),
        error: error.map(|e| cut(&e, wire::MAX_RESULT_ERROR).to_string()),
        at: Utc::now(),
    };
    let bytes =
        Bytes::from(serde_json::to_vec(&result).map_err(|e| VeyraError::Runtime(e.to_string()))?);
    // The outcome is in hand: a server restarting is waited for, not taken as a failure.
    let deadline = tokio::time::Instant::now() + OUTAGE;
    let mut wait = Duration::from_millis(100);
    loop {
        match shared.results.put(wire::key(id), bytes.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(nats_error("keeping the result", e));
            }
            Err(e) => {
                tracing::debug!(%id, "keeping the result, again shortly: {e}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// `text`'s first `max` bytes at most, cut at a character's edge.
pub(super) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
