//! A worker's records of a task on the bus: its claim on the task's attempt record (every
//! change over the revision it last wrote), the guard that cancels a task left unwatched, a
//! task failed without running, the outcome kept in the record before the acknowledgement, the
//! events it publishes, and the decisions its audit trail records.

use super::*;

/// Largest piece of text one event message carries, in bytes; a longer delta is sent in
/// pieces (each well under the server's 1 MiB payload limit, escapes included).
pub(super) const MAX_EVENT_TEXT: usize = 128 * 1024;

/// This worker's hold on a task's attempt record: every change goes through the revision this
/// worker last wrote, so a second worker that took the task over makes the next change fail
/// (and this one stops) instead of both running. While the task runs the record is rewritten
/// every third of `ack_wait` (a lease): a worker handed the task again sees it change and
/// leaves the task to its holder instead of calling it lost.
pub(super) struct Claim {
    pub(super) shared: Shared,
    pub(super) key: String,
    pub(super) attempt: u32,
    /// The revision this worker last wrote and the phase it wrote; every write holds it.
    pub(super) held: tokio::sync::Mutex<(u64, Phase)>,
    /// Set once the attempt is marked acted (or the mark failed, for good).
    pub(super) acted: tokio::sync::OnceCell<Result<(), String>>,
}

impl Claim {
    pub(super) fn new(shared: &Shared, key: String, attempt: u32, revision: u64) -> Claim {
        Claim {
            shared: shared.clone(),
            key,
            attempt,
            held: tokio::sync::Mutex::new((revision, Phase::Running)),
            acted: tokio::sync::OnceCell::new(),
        }
    }

    /// The revision this worker last wrote.
    pub(super) async fn revision(&self) -> u64 {
        self.held.lock().await.0
    }

    /// Moves the record to `phase` if it is still the one this worker wrote. A server that
    /// cannot be reached (restarting) is tried again for up to [`OUTAGE`]; a write that landed
    /// but whose answer was lost is recognised by reading the record back.
    pub(super) async fn set(&self, phase: Phase) -> Result<(), String> {
        let bytes = attempt_bytes(&self.shared, self.attempt, phase)?;
        self.write(phase, bytes).await
    }

    /// Makes the record final with the attempt's outcome, if it is still the one this worker
    /// wrote: the fence and the kept outcome in one write, so a worker that took the task over
    /// meanwhile makes it fail and this attempt's outcome is dropped rather than told beside
    /// that one's.
    pub(super) async fn finish(&self, outcome: TaskResult) -> Result<(), String> {
        let bytes = record_bytes(&self.shared, self.attempt, Phase::Final, Some(outcome))?;
        self.write(Phase::Final, bytes).await
    }

    /// Writes `bytes` (a record of `phase`) over the revision this worker last wrote.
    async fn write(&self, phase: Phase, bytes: Bytes) -> Result<(), String> {
        let mut held = self.held.lock().await;
        let deadline = tokio::time::Instant::now() + OUTAGE;
        let mut wait = Duration::from_millis(100);
        loop {
            let revision = held.0;
            let error = match self
                .shared
                .attempts
                .update(&self.key, bytes.clone(), revision)
                .await
            {
                Ok(next) => {
                    *held = (next, phase);
                    return Ok(());
                }
                Err(e) => e.to_string(),
            };
            match self.shared.attempts.entry(self.key.clone()).await {
                Ok(Some(entry)) if entry.revision != revision => {
                    let mine = AttemptHead::decode(&entry.value).is_ok_and(|a| {
                        a.worker == *self.shared.name
                            && a.attempt == self.attempt
                            && a.phase == phase
                    });
                    if mine {
                        *held = (entry.revision, phase);
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

    /// Renews the lease: the record written again, same phase, over this worker's revision.
    /// Tried once (the next renewal comes a third of `ack_wait` later); a record another
    /// worker took over is left alone, and this worker's next mark fails on it.
    pub(super) async fn renew(&self) {
        let Ok(mut held) = self.held.try_lock() else {
            // A mark is being written: that write renews the lease.
            return;
        };
        if held.1 == Phase::Final {
            // Ended: its record holds the outcome and is never written again.
            return;
        }
        let Ok(bytes) = attempt_bytes(&self.shared, self.attempt, held.1) else {
            return;
        };
        let error = match self.shared.attempts.update(&self.key, bytes, held.0).await {
            Ok(next) => {
                held.0 = next;
                return;
            }
            Err(e) => e,
        };
        // A write that landed but whose answer was lost is this worker's: its revision is
        // taken up, or every later write would fail on a revision that has moved on.
        match self.shared.attempts.entry(self.key.clone()).await {
            Ok(Some(entry)) if entry.revision != held.0 => {
                let mine = AttemptHead::decode(&entry.value).is_ok_and(|a| {
                    a.worker == *self.shared.name && a.attempt == self.attempt && a.phase == held.1
                });
                if mine {
                    held.0 = entry.revision;
                } else {
                    tracing::warn!(key = %self.key, "another worker took over this task's record; this attempt stops at its next mark");
                }
            }
            _ => tracing::debug!(key = %self.key, "renewing the task's lease: {error}"),
        }
    }

    /// Gives the claim up when nothing of the attempt acted (the task handed back before it
    /// ran): the record is deleted over this worker's revision, so the next worker claims the
    /// task afresh instead of waiting out a lease nobody renews. Best effort: a record left
    /// behind only costs the next worker that wait.
    pub(super) async fn release(&self) {
        if self.acted.initialized() {
            return;
        }
        let held = self.held.lock().await;
        if held.1 != Phase::Running {
            return;
        }
        if let Err(e) = self
            .shared
            .attempts
            .delete_expect_revision(&self.key, Some(held.0))
            .await
        {
            tracing::debug!(key = %self.key, "releasing the task's claim: {e}");
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

/// Whether the worker named in a task's record (`revision`) still holds it: a live holder
/// renews its record every third of `ack_wait`, so a record unchanged over a whole `ack_wait`
/// (three renewals missed) is one whose worker is gone. `false` also when it cannot be told
/// (the caller then runs its compare-and-set over `revision`, which fails if the holder wrote
/// meanwhile).
pub(crate) async fn still_held(
    attempts: &kv::Store,
    ack_wait: Duration,
    key: &str,
    revision: u64,
) -> bool {
    tokio::time::sleep(ack_wait + Duration::from_millis(100)).await;
    match attempts.entry(key.to_string()).await {
        Ok(Some(entry)) => entry.revision != revision,
        Ok(None) | Err(_) => false,
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
    record_bytes(shared, attempt, phase, None)
}

/// The record this worker writes for its attempt, with its outcome when final.
pub(super) fn record_bytes(
    shared: &Shared,
    attempt: u32,
    phase: Phase,
    outcome: Option<TaskResult>,
) -> Result<Bytes, String> {
    serde_json::to_vec(&Attempt {
        worker: shared.name.to_string(),
        attempt,
        phase,
        at: Utc::now(),
        outcome,
    })
    .map(Bytes::from)
    .map_err(|e| e.to_string())
}

/// A worker name read from the bus, fit for a log line or a message.
pub(super) fn shown_worker(name: &str) -> String {
    crate::sanitize::quote(&crate::sanitize::excerpt(name, 80))
}

/// Why a task is failed without running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Loss {
    /// Lost with a worker (or its record damaged): recorded as `fleet_lost`, kind `lost`.
    Lost,
    /// A request this worker's core will not take (an unknown backend or model, a tool it
    /// does not have): recorded as `fleet_refused`, kind `refused`.
    Refused,
}

/// Fails a task without running it (lost, or unable to run here): its attempt record made final
/// with the failure as its outcome (over the revision read, when there was one: a worker that
/// changed it meanwhile keeps the task, and this copy is handed back); the final state is
/// published and the decision recorded only when that write landed.
pub(super) async fn lose(
    shared: &Shared,
    task: &TaskMessage,
    attempt: u32,
    why: &str,
    revision: Option<u64>,
    loss: Loss,
) -> Result<Handled, VeyraError> {
    let (action, kind) = match loss {
        Loss::Lost => ("fleet_lost", "lost"),
        Loss::Refused => ("fleet_refused", "refused"),
    };
    let id = task.id;
    tracing::warn!(%id, "{}", crate::sanitize::sanitize_line(&crate::sanitize::excerpt(why, 400)));
    let key = wire::key(id);
    let kept = outcome(
        shared,
        id,
        attempt,
        "failed",
        String::new(),
        Some(why.to_string()),
        Vec::new(),
    );
    let bytes =
        record_bytes(shared, attempt, Phase::Final, Some(kept)).map_err(VeyraError::Runtime)?;
    let finalised = match revision {
        None => shared
            .attempts
            .create(&key, bytes)
            .await
            .map(drop)
            .map_err(|e| match e.kind() {
                kv::CreateErrorKind::AlreadyExists => FenceError::Moved(e.to_string()),
                _ => FenceError::Other(e.to_string()),
            }),
        Some(r) => shared
            .attempts
            .update(&key, bytes, r)
            .await
            .map(drop)
            .map_err(|e| match e.kind() {
                kv::UpdateErrorKind::WrongLastRevision => FenceError::Moved(e.to_string()),
                _ => FenceError::Other(e.to_string()),
            }),
    };
    match finalised {
        Ok(()) => {}
        // Another worker wrote the record meanwhile: the task is its, this copy handed back.
        Err(FenceError::Moved(e)) => {
            tracing::info!(%id, "the task's record changed meanwhile ({e}); left to the worker that changed it");
            return Ok(Handled::Held);
        }
        Err(FenceError::Other(e)) => {
            return Err(nats_error("marking the task failed", e));
        }
    }
    record(
        &shared.core,
        action,
        &format!("execution:{id}"),
        "failure",
        serde_json::json!({ "worker": &*shared.name, "attempt": attempt, "reason": why, "by": task.by }),
    )
    .await;
    let mut event = failed(id, attempt, why, kind);
    if let Event::TaskState {
        status: TaskStatus::Failed { not_retried, .. },
        ..
    } = &mut event
        && why.contains("acted")
    {
        *not_retried = Some("tools_acted".into());
    }
    publish(shared, &shared.fleet.events_subject(id), &event).await;
    // A benchmark item is the run's to show (its submitter's console), not a task here.
    if task.items.is_empty() {
        super::tell_consoles(shared, task, event);
    }
    Ok(Handled::Done)
}

/// Why a compare-and-set on a record failed.
enum FenceError {
    /// The record is not the one expected: another worker wrote it.
    Moved(String),
    /// The server did not answer, or refused for another reason.
    Other(String),
}

/// An attempt's outcome as its final record keeps it, its text and error cut to fit.
pub(super) fn outcome(
    shared: &Shared,
    id: ExecutionId,
    attempt: u32,
    status: &str,
    mut text: String,
    error: Option<String>,
    items: Vec<wire::ItemOutcome>,
) -> TaskResult {
    // Held in bytes, escapes included, well under the bucket's value limit; cut in place.
    let keep = cut(&text, wire::MAX_RESULT_TEXT).len();
    text.truncate(keep);
    TaskResult {
        id,
        worker: shared.name.to_string(),
        attempt,
        status: status.into(),
        text,
        error: error.map(|e| cut(&e, wire::MAX_RESULT_ERROR).to_string()),
        at: Utc::now(),
        items,
    }
}

/// Most answer text a final record keeps, in bytes: [`wire::MAX_RESULT_TEXT`], or less when
/// this server takes smaller messages (a record it refuses would be written again for ever).
/// Text and error may grow up to six times escaped.
pub(super) fn text_room(shared: &Shared) -> usize {
    let limit = wire::MAX_RESULT_BYTES.min(shared.fleet.client.server_info().max_payload);
    (limit.saturating_sub(6 * wire::MAX_RESULT_ERROR + 4096) / 6).min(wire::MAX_RESULT_TEXT)
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

/// A task's final state as a failure of `kind`.
pub(super) fn failed(id: ExecutionId, attempt: u32, why: &str, kind: &str) -> Event {
    Event::TaskState {
        id,
        status: TaskStatus::Failed {
            error: why.to_string(),
            kind: kind.into(),
            not_retried: None,
        },
        attempt,
        at: Utc::now(),
    }
}

/// Records a fleet decision in this worker's audit trail.
pub(super) async fn record(
    core: &VeyraCore,
    action: &str,
    resource: &str,
    outcome: &str,
    metadata: serde_json::Value,
) {
    if let Some(trail) = core.audit()
        && let Err(e) = trail
            .record(AuditRecord {
                event_type: AuditEventType::Execution,
                actor: "fleet".into(),
                action: action.into(),
                resource: resource.into(),
                outcome: outcome.into(),
                input_summary: String::new(),
                metadata,
            })
            .await
    {
        tracing::error!("the audit trail did not record a fleet decision: {e}");
    }
}

/// Largest message of several events, in bytes (one event alone may be up to a piece of
/// text, escapes included, under the server's 1 MiB payload limit).
const MAX_PACK: usize = 256 * 1024;

/// Publishes one event; a failure is logged (the task's record still has the outcome).
pub(super) async fn publish(shared: &Shared, subject: &str, event: &Event) {
    publish_all(shared, subject, std::slice::from_ref(event)).await;
}

/// Publishes `events` in order, as few messages as fit: one event alone as its JSON object,
/// several as a JSON array of them; a long text delta in pieces of at most
/// [`MAX_EVENT_TEXT`] bytes. A failure is logged (the task's record still has the outcome).
pub(super) async fn publish_all(shared: &Shared, subject: &str, events: &[Event]) {
    let mut pack: Vec<u8> = Vec::new();
    let mut packed = 0usize;
    for event in events {
        for piece in pieces(event) {
            let bytes = match serde_json::to_vec(&piece) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("encoding an event: {e}");
                    continue;
                }
            };
            // The array's brackets and a comma: at most three bytes more.
            if packed > 0 && pack.len() + bytes.len() + 3 > MAX_PACK {
                send(shared, subject, std::mem::take(&mut pack), packed).await;
                packed = 0;
            }
            if packed == 1 {
                pack.insert(0, b'[');
            }
            if packed > 0 {
                pack.push(b',');
            }
            pack.extend_from_slice(&bytes);
            packed += 1;
        }
    }
    if packed > 0 {
        send(shared, subject, pack, packed).await;
    }
}

/// Sends one packed message: `count` events, an array when more than one.
async fn send(shared: &Shared, subject: &str, mut pack: Vec<u8>, count: usize) {
    if count > 1 {
        pack.push(b']');
    }
    if let Err(e) = shared
        .fleet
        .client
        .publish(subject.to_string(), Bytes::from(pack))
        .await
    {
        tracing::warn!("publishing an event: {e}");
    }
}

/// An event as it crosses the bus: a text delta longer than [`MAX_EVENT_TEXT`] in pieces.
fn pieces(event: &Event) -> Vec<Event> {
    match event {
        Event::OutputDelta { id, text } if text.len() > MAX_EVENT_TEXT => {
            let mut out = Vec::new();
            let mut rest = text.as_str();
            while !rest.is_empty() {
                let mut cut = rest.len().min(MAX_EVENT_TEXT);
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push(Event::OutputDelta {
                    id: *id,
                    text: rest[..cut].to_string(),
                });
                rest = &rest[cut..];
            }
            out
        }
        other => vec![other.clone()],
    }
}
