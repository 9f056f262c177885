//! `veyra worker`: pulls tasks, critical first, and runs each through its own core.
//!
//! Per task: the message is checked ([`TaskMessage::decode`], its subject against its
//! priority); the attempts bucket says whether it ran before — finished (a replayed message:
//! acknowledged, not run), or acted (its tools had been about to act, or its answer had
//! reached the submitter, on a worker that was lost: it fails as lost, named with that worker),
//! or neither (it runs again, the redelivery told in its events and recorded in this worker's
//! audit trail). The attempt is recorded before it runs, and marked acted before its first
//! tool call passes the gate or its first text is published — awaited, so no redelivery can
//! miss it. While it runs, the worker tells the server it is still at it every third of
//! `ack_wait`. Its events go to `<prefix>.events.<execution>`; its outcome is kept in the
//! results bucket, then the message is acknowledged (and the server's acknowledgement
//! awaited).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, kv};
use chrono::Utc;
use futures_util::StreamExt;
use tokio::task::JoinSet;
use tokio_util::bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::wire::{self, Attempt, MAX_ATTEMPTS, Phase, TaskMessage, TaskResult};
use super::{Fleet, nats_error};
use crate::core::{BeforeTools, ExecutionRequest, VeyraCore};
use crate::error::VeyraError;
use crate::events::{Event, ExecutionId, Priority, TaskStatus};
use crate::governance::{AuditEventType, AuditRecord};

/// How long a worker keeps trying to write a record or a result it has in hand while the
/// server cannot be reached (a restart), before it gives the task up.
const OUTAGE: Duration = Duration::from_secs(60);
/// Longest pause between empty polls of the queue.
const IDLE_MAX: Duration = Duration::from_millis(100);
/// Longest wait for the server's answer to one poll (it answers at once when it is up).
const FETCH_WAIT: Duration = Duration::from_secs(2);

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Its name in attempts, results and audit entries (default `host/pid`).
    pub name: String,
    /// Tasks it runs at once.
    pub in_flight: usize,
}

impl WorkerOptions {
    /// `host/pid`, and twice the core's slots in flight.
    pub fn for_core(core: &VeyraCore) -> WorkerOptions {
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        WorkerOptions {
            name: format!("{host}/{}", std::process::id()),
            in_flight: core
                .config()
                .runtime
                .max_concurrent
                .saturating_mul(2)
                .max(1),
        }
    }
}

/// See the module docs.
pub struct Worker {
    fleet: Fleet,
    core: VeyraCore,
    options: WorkerOptions,
}

/// What every task of one worker shares.
#[derive(Clone)]
struct Shared {
    fleet: Fleet,
    core: VeyraCore,
    name: Arc<str>,
    attempts: kv::Store,
    results: kv::Store,
    running: Arc<Mutex<HashSet<ExecutionId>>>,
    ack_every: Duration,
}

impl Worker {
    /// A worker of `fleet` running tasks through `core` (which should ask no one: a fleet
    /// task has no operator at the worker, so the core's confirmation policy decides).
    pub fn new(fleet: Fleet, core: VeyraCore, options: WorkerOptions) -> Worker {
        Worker {
            fleet,
            core,
            options,
        }
    }

    /// Pulls and runs tasks until `stop`; then takes no more and lets those it runs end
    /// (each acknowledged as usual).
    pub async fn run(&self, stop: CancellationToken) -> Result<(), VeyraError> {
        let mut consumers = Vec::new();
        for priority in Priority::ALL {
            consumers.push(self.fleet.consumer(priority).await?);
        }
        let shared = Shared {
            fleet: self.fleet.clone(),
            core: self.core.clone(),
            name: Arc::from(self.options.name.as_str()),
            attempts: self.fleet.attempts().await?,
            results: self.fleet.results().await?,
            running: Arc::default(),
            ack_every: Duration::from_millis(self.fleet.config.ack_wait_ms / 3)
                .max(Duration::from_millis(100)),
        };
        let mut cancels = self
            .fleet
            .client
            .subscribe(format!(
                "{}.commands.cancel.*",
                self.fleet.config.subject_prefix
            ))
            .await
            .map_err(|e| nats_error("listening for cancels", e))?;
        tracing::info!(worker = %shared.name, url = %self.fleet.url, "fleet worker pulling tasks");
        // Its store's witness goes to the fleet after each checkpoint, and once more at the end.
        let witnessing = CancellationToken::new();
        let witness = tokio::spawn(super::witness::publish_witnesses(
            self.fleet.clone(),
            self.core.clone(),
            witnessing.clone(),
        ));
        let limit = self.options.in_flight.max(1);
        let mut tasks = JoinSet::new();
        let mut idle = Duration::from_millis(1);
        while !stop.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            let free = limit.saturating_sub(tasks.len());
            let mut got = 0usize;
            if free > 0 {
                // Critical first: each round takes from the highest priority that has work.
                for consumer in &consumers {
                    let batch = consumer.fetch().max_messages(free).messages().await;
                    let mut batch = match batch {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::warn!("fetching tasks: {e}");
                            break;
                        }
                    };
                    // A request that met a server going down is never answered: given up
                    // after FETCH_WAIT and asked again, on the connection that comes back.
                    while let Ok(Some(message)) =
                        tokio::time::timeout(FETCH_WAIT, batch.next()).await
                    {
                        match message {
                            Ok(message) => {
                                got += 1;
                                tasks.spawn(handle(shared.clone(), message));
                            }
                            Err(e) => tracing::warn!("a task could not be read: {e}"),
                        }
                    }
                    if got > 0 {
                        break;
                    }
                }
            }
            if got > 0 {
                idle = Duration::from_millis(1);
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(idle), if free > 0 => {
                    idle = (idle * 2).min(IDLE_MAX);
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                Some(message) = cancels.next() => cancel(&shared, &message.subject),
                () = stop.cancelled() => {}
            }
        }
        tracing::info!(worker = %shared.name, left = tasks.len(), "fleet worker stopping; letting its tasks end");
        while !tasks.is_empty() {
            tokio::select! {
                _ = tasks.join_next() => {}
                Some(message) = cancels.next() => cancel(&shared, &message.subject),
            }
        }
        witnessing.cancel();
        let _ = witness.await;
        Ok(())
    }
}

/// A cancel from the bus: the execution is cancelled here if it runs here.
fn cancel(shared: &Shared, subject: &str) {
    let Some(id) = subject
        .rsplit('.')
        .next()
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .map(ExecutionId)
    else {
        tracing::warn!(
            "a cancel on {} names no execution; ignored",
            crate::sanitize::sanitize_line(subject)
        );
        return;
    };
    let ours = shared
        .running
        .lock()
        .map(|r| r.contains(&id))
        .unwrap_or(false);
    if ours {
        tracing::info!(%id, "cancelled from the fleet");
        let _ = shared.core.cancel(id);
    }
}

/// One task, from its message to its acknowledgement.
async fn handle(shared: Shared, message: jetstream::Message) {
    let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
    let task = match TaskMessage::decode(&message.payload) {
        Ok(task) => task,
        Err(why) => {
            // A task this worker cannot take (a newer format, a field too long) whose id can
            // still be read is failed with its reason, so its submitter hears of it.
            #[derive(serde::Deserialize)]
            struct IdOnly {
                id: ExecutionId,
            }
            let id = (message.payload.len() <= wire::MAX_TASK_BYTES)
                .then(|| serde_json::from_slice::<IdOnly>(&message.payload).ok())
                .flatten()
                .map(|i| i.id);
            refuse(&shared, &message, &why, id).await;
            return;
        }
    };
    // Its subject must be its priority's, and its message id its execution id: a task
    // published another way could be delivered twice at once by two consumers.
    let msg_id = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .map(|v| v.as_str().to_string());
    if message.subject.as_str() != shared.fleet.task_subject(task.priority) {
        let why = format!(
            "a {} task on another priority's subject",
            task.priority.name()
        );
        refuse(&shared, &message, &why, Some(task.id)).await;
        return;
    }
    if msg_id.as_deref() != Some(wire::key(task.id).as_str()) {
        let why = "its message id is not its execution id (submit it with `veyra run`)";
        refuse(&shared, &message, why, Some(task.id)).await;
        return;
    }
    let id = task.id;
    {
        let Ok(mut running) = shared.running.lock() else {
            return;
        };
        if !running.insert(id) {
            // The same execution delivered again while it runs here: this copy is not run.
            tracing::warn!(%id, "a second delivery of a task running here; left to the first");
            return;
        }
    }
    let outcome = run_task(&shared, &message, &task, delivered).await;
    if let Ok(mut running) = shared.running.lock() {
        running.remove(&id);
    }
    match outcome {
        Ok(Handled::Held) => {
            // Its holder is alive and renewing its lease: this copy is handed back for
            // ack_wait, by when the holder has acknowledged it or has gone.
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_millis(
                    shared.fleet.config.ack_wait_ms,
                ))))
                .await;
        }
        Ok(Handled::Done) => {
            if let Err(e) = message.double_ack().await {
                tracing::warn!(%id, "the task ended but its acknowledgement failed (it will be delivered again, and found finished): {e}");
            }
        }
        Err(e) => {
            // Not finished here: handed back at once (the attempts bucket decides what the
            // next delivery does), not left until ack_wait runs out.
            tracing::warn!(%id, "the task was not finished here: {e}");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
        }
    }
}

/// Refuses a message that is not a task this worker can take: logged, recorded, and never
/// delivered again (a garbage or oversized message would otherwise come back for ever). A task
/// that could be read (`task`) also gets its failure kept and told, so its submitter is not
/// left waiting.
async fn refuse(
    shared: &Shared,
    message: &jetstream::Message,
    why: &str,
    task: Option<ExecutionId>,
) {
    let subject = crate::sanitize::sanitize_line(message.subject.as_str()).into_owned();
    let why = crate::sanitize::sanitize_line(why).into_owned();
    tracing::warn!(%subject, "refused a message from the task queue: {why}");
    record(
        &shared.core,
        "fleet_refused",
        &subject,
        "refused",
        serde_json::json!({ "worker": &*shared.name, "reason": why, "bytes": message.payload.len() }),
    )
    .await;
    if let Some(id) = task {
        let why = format!("refused by worker {}: {why}", shared.name);
        // Told only if this refusal is the outcome kept: a copy that broke the rules does not
        // overwrite the outcome of the task it copies.
        if let Ok(Kept::Ours) =
            keep_result(shared, id, 0, "failed", String::new(), Some(why.clone())).await
        {
            let event = failed(id, 0, &why, "refused");
            publish(shared, &shared.fleet.events_subject(id), &event).await;
        }
    }
    let _ = message.ack_with(AckKind::Term).await;
}

/// What became of one delivery of a task.
enum Handled {
    /// Its outcome is kept (by this worker or the one that claimed it first): acknowledged.
    Done,
    /// Another worker holds it and is alive: handed back until it has finished.
    Held,
}

/// Runs (or declines to run again) one checked task.
async fn run_task(
    shared: &Shared,
    message: &jetstream::Message,
    task: &TaskMessage,
    delivered: i64,
) -> Result<Handled, VeyraError> {
    let id = task.id;
    let key = wire::key(id);
    let entry = shared
        .attempts
        .entry(key.clone())
        .await
        .map_err(|e| nats_error("reading the attempts bucket", e))?
        .filter(|e| matches!(e.operation, kv::Operation::Put));
    let revision = entry.as_ref().map(|e| e.revision);
    let before = match &entry {
        Some(e) => match serde_json::from_slice::<Attempt>(&e.value) {
            Ok(a) => Some(a),
            // A record that cannot be read could say anything: the task is not run again.
            Err(err) => {
                let why = format!("its attempt record is damaged ({err}); not run again");
                return lose(shared, task, 0, &why, revision, Loss::Lost)
                    .await
                    .map(|()| Handled::Done);
            }
        },
        None => None,
    };
    // A record of another worker's that is not final: that worker may be alive and late with
    // its acknowledgement (a slow task, a server restart). It renews its record while it
    // holds the task; only a record left unchanged means it is gone.
    if let (Some(a), Some(r)) = (&before, revision)
        && a.phase != Phase::Final
        && a.worker != *shared.name
        && record::still_held(&shared.attempts, shared.ack_every, &key, r).await
    {
        tracing::info!(%id, by = %shown_worker(&a.worker), "delivered again while its worker still holds it; left to that worker");
        return Ok(Handled::Held);
    }
    let attempt = before.as_ref().map_or(1, |a| a.attempt.saturating_add(1));
    match &before {
        Some(a) if a.phase == Phase::Final => {
            // A replayed message (or an acknowledgement that was lost): already finished.
            tracing::info!(%id, by = %shown_worker(&a.worker), "a finished task was delivered again; not run again");
            // Its worker may have been lost between marking it final and keeping its outcome
            // (a task failed without running): its submitter is told now.
            let kept = shared.results.get(key.clone()).await;
            if let Ok(None) = kept {
                let why = format!(
                    "lost on worker {} after it was finished and before its outcome was kept",
                    shown_worker(&a.worker)
                );
                if let Kept::Ours = keep_result(
                    shared,
                    id,
                    a.attempt,
                    "failed",
                    String::new(),
                    Some(why.clone()),
                )
                .await?
                {
                    let event = failed(id, a.attempt, &why, "lost");
                    publish(shared, &shared.fleet.events_subject(id), &event).await;
                }
            }
            return Ok(Handled::Done);
        }
        Some(a) if a.phase == Phase::Acted => {
            let why = format!(
                "lost on worker {} after its tools had acted or its answer had streamed; an \
                 attempt that acted is never run again (side effects happen once)",
                shown_worker(&a.worker)
            );
            return lose(shared, task, a.attempt, &why, revision, Loss::Lost)
                .await
                .map(|()| Handled::Done);
        }
        Some(a) if attempt > MAX_ATTEMPTS => {
            let why = format!(
                "lost {} times (last on worker {}); not tried again",
                a.attempt,
                shown_worker(&a.worker)
            );
            return lose(shared, task, a.attempt, &why, revision, Loss::Lost)
                .await
                .map(|()| Handled::Done);
        }
        _ => {}
    }
    // Claimed with compare-and-set: created if no record exists, else replacing exactly the
    // record read. A worker that loses the race leaves the task to the one that won.
    let bytes = attempt_bytes(shared, attempt, Phase::Running).map_err(VeyraError::Runtime)?;
    let claimed = match revision {
        None => shared
            .attempts
            .create(&key, bytes)
            .await
            .map_err(|e| e.to_string()),
        Some(r) => shared
            .attempts
            .update(&key, bytes, r)
            .await
            .map_err(|e| e.to_string()),
    };
    let revision = match claimed {
        Ok(r) => r,
        Err(e) => {
            // Another worker claimed it first, or the server could not be reached: either way
            // not run here, and not acknowledged — handed back, the record decides next time.
            return Err(VeyraError::Runtime(format!(
                "the task could not be claimed ({e}); handed back"
            )));
        }
    };
    let claim = Arc::new(Claim::new(shared, key.clone(), attempt, revision));
    let events = shared.fleet.events_subject(id);
    if let Some(a) = &before {
        let said = format!(
            "redelivered: worker {} was lost before this task's tools acted; running it again \
             (attempt {attempt})",
            shown_worker(&a.worker)
        );
        tracing::warn!(%id, "{said}");
        record(
            &shared.core,
            "fleet_redelivery",
            &format!("execution:{id}"),
            "redelivered",
            serde_json::json!({
                "worker": &*shared.name,
                "lost_worker": shown_worker(&a.worker),
                "attempt": attempt,
                "delivered": delivered,
                "by": task.by,
            }),
        )
        .await;
        publish(
            shared,
            &events,
            &Event::TaskState {
                id,
                status: TaskStatus::Retrying {
                    delay_ms: 0,
                    error: said,
                },
                attempt,
                at: Utc::now(),
            },
        )
        .await;
    }
    let mut request = ExecutionRequest::new(task.prompt.clone()).priority(task.priority);
    request.system = task.system.clone();
    request.backend = task.backend.clone();
    request.model = task.model.clone();
    request.actor = "fleet".into();
    request.unattended = true;
    match offered(&shared.core, task.tools.as_deref()) {
        Ok(tools) => request.tools = Some(tools),
        Err(e) => {
            let now = claim.revision().await;
            return lose(shared, task, attempt, &e, Some(now), Loss::Refused)
                .await
                .map(|()| Handled::Done);
        }
    }
    {
        // Before the first tool call passes the gate: the attempt is marked acted, and the
        // mark is kept by the server, or the call does not run.
        let claim = Arc::clone(&claim);
        let handle = tokio::runtime::Handle::current();
        request = request.before_tools(BeforeTools::new(move || {
            handle
                .block_on(claim.acted())
                .map_err(|e| format!("the fleet could not record that its tools act: {e}"))
        }));
    }
    let mut stream = match shared.core.execute_stream_as(id, request) {
        Ok(stream) => stream,
        // Not taken now (a full queue, a shutdown, an id still held): handed back.
        Err(e @ VeyraError::Runtime(_)) => return Err(e),
        // Never taken here (a backend or model this worker does not have): failed, with why.
        Err(e) => {
            let why = format!("worker {} cannot run it: {e}", shared.name);
            let now = claim.revision().await;
            return lose(shared, task, attempt, &why, Some(now), Loss::Refused)
                .await
                .map(|()| Handled::Done);
        }
    };
    let mut watched = Unwatched {
        core: shared.core.clone(),
        id,
        ended: false,
    };
    let mut progress = tokio::time::interval(shared.ack_every);
    progress.tick().await;
    let mut text = String::new();
    let mut last: Option<Event> = None;
    loop {
        let event = tokio::select! {
            event = stream.next() => event,
            _ = progress.tick() => {
                let _ = message.ack_with(AckKind::Progress).await;
                claim.renew().await;
                continue;
            }
        };
        let Some(mut event) = event else { break };
        // The core counts its own attempts; on the fleet, earlier workers' attempts count too.
        if let Event::TaskState { attempt: local, .. } = &mut event
            && *local > 0
        {
            *local = local.saturating_add(attempt - 1);
        }
        if let Event::OutputDelta { text: piece, .. } = &event {
            // Text about to reach the submitter: the attempt is final from here.
            claim.acted().await.map_err(VeyraError::Runtime)?;
            if text.len() < wire::MAX_RESULT_TEXT {
                text.push_str(piece);
            }
        }
        if event.is_terminal() {
            last = Some(event);
            break;
        }
        publish(shared, &events, &event).await;
    }
    watched.ended = last.is_some();
    let Some(Event::TaskState { status, .. }) = &last else {
        return Err(VeyraError::Runtime(format!(
            "execution {id} ended without a final state"
        )));
    };
    let (status_name, error) = match status {
        TaskStatus::Succeeded => ("succeeded", None),
        TaskStatus::Failed { error, .. } => ("failed", Some(error.clone())),
        TaskStatus::Cancelled { reason } => ("cancelled", Some(reason.clone())),
        _ => (
            "failed",
            Some("ended in a state that is not final".to_string()),
        ),
    };
    // The result is written once: if another worker's outcome was kept first (it took the
    // task over while this one was cut off), that one stands and this one is not told.
    if let Kept::Theirs(by) = keep_result(shared, id, attempt, status_name, text, error).await? {
        tracing::warn!(%id, "its outcome was kept first by worker {by}; this attempt's is dropped");
        return Ok(Handled::Done);
    }
    if let Err(e) = claim.set(Phase::Final).await {
        // The outcome is kept and will be found by any later delivery's reader (the submitter
        // reads results); the record is left as another worker wrote it.
        tracing::warn!(%id, "the task finished but its record could not be marked final: {e}");
    }
    if let Some(event) = &last {
        publish(shared, &events, event).await;
    }
    Ok(Handled::Done)
}

/// The tools a task is offered: what it asks for, within what this worker offers
/// (`tools.offer`): a task from the bus never widens the worker operator's choice.
fn offered(core: &VeyraCore, asked: Option<&str>) -> Result<crate::config::ToolSelection, String> {
    use crate::config::ToolSelection;
    let mine = core.config().tools.offer.clone();
    let Some(asked) = asked else {
        return Ok(mine);
    };
    let asked: ToolSelection = asked.parse().map_err(|e| format!("its tools: {e}"))?;
    Ok(match (asked, mine) {
        (ToolSelection::None, _) | (_, ToolSelection::None) => ToolSelection::None,
        (ToolSelection::All, mine) => mine,
        (asked, ToolSelection::All) => asked,
        (asked, mine) => {
            let names: Vec<String> = asked
                .names()
                .iter()
                .filter(|n| mine.offers(n))
                .map(|n| n.to_string())
                .collect();
            if names.is_empty() {
                ToolSelection::None
            } else {
                ToolSelection::Only(names)
            }
        }
    })
}

#[cfg(test)]
pub(super) fn offered_for_tests(
    core: &VeyraCore,
    asked: Option<&str>,
) -> Result<crate::config::ToolSelection, String> {
    offered(core, asked)
}

mod record;
#[cfg(test)]
pub(super) use record::still_held;
use record::{
    Claim, Kept, Loss, Unwatched, attempt_bytes, failed, keep_result, lose, publish, record,
    shown_worker,
};
