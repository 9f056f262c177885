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

/// Largest piece of text one event message carries; a longer delta is sent in pieces.
const MAX_EVENT_TEXT: usize = 256 * 1024;
/// Longest pause between empty polls of the queue.
const IDLE_MAX: Duration = Duration::from_millis(50);

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
                    while let Some(message) = batch.next().await {
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
        while tasks.join_next().await.is_some() {}
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
        Ok(task) if message.subject.as_str() == shared.fleet.task_subject(task.priority) => task,
        Ok(task) => {
            refuse(
                &shared,
                &message,
                &format!(
                    "a {} task on another priority's subject",
                    task.priority.name()
                ),
            )
            .await;
            return;
        }
        Err(why) => {
            refuse(&shared, &message, &why).await;
            return;
        }
    };
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
        Ok(()) => {
            if let Err(e) = message.double_ack().await {
                tracing::warn!(%id, "the task ended but its acknowledgement failed (it will be delivered again, and found finished): {e}");
            }
        }
        Err(e) => {
            // Not acknowledged: the server delivers it again after ack_wait, and the attempts
            // bucket decides then.
            tracing::warn!(%id, "the task was not finished here: {e}");
        }
    }
}

/// Refuses a message that is not a task this worker can take: logged, recorded, and never
/// delivered again (a garbage or oversized message would otherwise come back for ever).
async fn refuse(shared: &Shared, message: &jetstream::Message, why: &str) {
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
    let _ = message.ack_with(AckKind::Term).await;
}

/// Records a fleet decision in this worker's audit trail.
async fn record(
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

/// Runs (or declines to run again) one checked task. `Ok` once its outcome is kept.
async fn run_task(
    shared: &Shared,
    message: &jetstream::Message,
    task: &TaskMessage,
    delivered: i64,
) -> Result<(), VeyraError> {
    let id = task.id;
    let key = wire::key(id);
    let before = match shared.attempts.get(key.clone()).await {
        Ok(Some(bytes)) => Some(serde_json::from_slice::<Attempt>(&bytes).map_err(|e| {
            VeyraError::Runtime(format!("the attempt record of {id} is damaged: {e}"))
        })),
        Ok(None) => None,
        Err(e) => return Err(nats_error("reading the attempts bucket", e)),
    };
    let before = match before {
        // A record that cannot be read could say anything: the task is not run again.
        Some(Err(e)) => {
            return lose(shared, task, 0, &format!("{e}; not run again")).await;
        }
        Some(Ok(a)) => Some(a),
        None => None,
    };
    let attempt = before.as_ref().map_or(1, |a| a.attempt.saturating_add(1));
    match &before {
        Some(a) if a.phase == Phase::Final => {
            // A replayed message (or an acknowledgement that was lost): already finished.
            tracing::info!(%id, by = %a.worker, "a finished task was delivered again; not run again");
            return Ok(());
        }
        Some(a) if a.phase == Phase::Acted => {
            let why = format!(
                "lost on worker {} after its tools had acted or its answer had streamed; an attempt \
                 that acted is never run again (side effects happen once)",
                a.worker
            );
            return lose(shared, task, a.attempt, &why).await;
        }
        Some(a) if attempt > MAX_ATTEMPTS => {
            let why = format!(
                "lost {} times (last on worker {}); not tried again",
                a.attempt, a.worker
            );
            return lose(shared, task, a.attempt, &why).await;
        }
        _ => {}
    }
    let events = shared.fleet.events_subject(id);
    if let Some(a) = &before {
        let said = format!(
            "redelivered: worker {} was lost before this task's tools acted; running it again (attempt {attempt})",
            a.worker
        );
        tracing::warn!(%id, "{said}");
        record(
            &shared.core,
            "fleet_redelivery",
            &format!("execution:{id}"),
            "redelivered",
            serde_json::json!({ "worker": &*shared.name, "lost_worker": a.worker, "attempt": attempt, "delivered": delivered }),
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
    put_attempt(shared, &key, attempt, Phase::Running).await?;
    let acted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut request = ExecutionRequest::new(task.prompt.clone()).priority(task.priority);
    request.system = task.system.clone();
    request.backend = task.backend.clone();
    request.model = task.model.clone();
    request.actor = "fleet".into();
    request.unattended = true;
    if let Some(tools) = &task.tools {
        match tools.parse() {
            Ok(t) => request.tools = Some(t),
            Err(e) => return lose(shared, task, attempt, &format!("its tools: {e}")).await,
        }
    }
    {
        // Before the first tool call passes the gate: the attempt is marked acted, and the
        // mark is kept by the server, or the call does not run.
        let (shared, key, acted) = (shared.clone(), key.clone(), Arc::clone(&acted));
        let handle = tokio::runtime::Handle::current();
        request = request.before_tools(BeforeTools::new(move || {
            if acted.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Ok(());
            }
            handle
                .block_on(put_attempt(&shared, &key, attempt, Phase::Acted))
                .map_err(|e| format!("the fleet could not record that its tools act: {e}"))
        }));
    }
    let mut stream = match shared.core.execute_stream_as(id, request) {
        Ok(s) => s,
        Err(e) => return lose(shared, task, attempt, &e.to_string()).await,
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
            if !acted.swap(true, std::sync::atomic::Ordering::SeqCst) {
                put_attempt(shared, &key, attempt, Phase::Acted).await?;
            }
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
    let text: String = text.chars().take(wire::MAX_RESULT_TEXT).collect();
    keep_result(shared, id, attempt, status_name, text, error).await?;
    put_attempt(shared, &key, attempt, Phase::Final).await?;
    if let Some(event) = &last {
        publish(shared, &events, event).await;
    }
    Ok(())
}

/// Fails a task without running it (lost, refused on this worker): its result is kept, its
/// final state published, the decision recorded.
async fn lose(
    shared: &Shared,
    task: &TaskMessage,
    attempt: u32,
    why: &str,
) -> Result<(), VeyraError> {
    let id = task.id;
    tracing::warn!(%id, "{why}");
    record(
        &shared.core,
        "fleet_lost",
        &format!("execution:{id}"),
        "failure",
        serde_json::json!({ "worker": &*shared.name, "attempt": attempt, "reason": why }),
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
    put_attempt(shared, &wire::key(id), attempt, Phase::Final).await?;
    publish(
        shared,
        &shared.fleet.events_subject(id),
        &Event::TaskState {
            id,
            status: TaskStatus::Failed {
                error: why.to_string(),
                kind: "lost".into(),
                not_retried: Some("tools_acted".into()).filter(|_| why.contains("acted")),
            },
            attempt,
            at: Utc::now(),
        },
    )
    .await;
    Ok(())
}

async fn put_attempt(
    shared: &Shared,
    key: &str,
    attempt: u32,
    phase: Phase,
) -> Result<(), VeyraError> {
    let record = Attempt {
        worker: shared.name.to_string(),
        attempt,
        phase,
        at: Utc::now(),
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| VeyraError::Runtime(e.to_string()))?;
    shared
        .attempts
        .put(key, Bytes::from(bytes))
        .await
        .map(drop)
        .map_err(|e| nats_error("writing the attempts bucket", e))
}

async fn keep_result(
    shared: &Shared,
    id: ExecutionId,
    attempt: u32,
    status: &str,
    text: String,
    error: Option<String>,
) -> Result<(), VeyraError> {
    let result = TaskResult {
        id,
        worker: shared.name.to_string(),
        attempt,
        status: status.into(),
        text,
        error,
        at: Utc::now(),
    };
    let bytes = serde_json::to_vec(&result).map_err(|e| VeyraError::Runtime(e.to_string()))?;
    shared
        .results
        .put(wire::key(id), Bytes::from(bytes))
        .await
        .map(drop)
        .map_err(|e| nats_error("keeping the result", e))
}

/// Publishes one event (a long text delta in pieces); a failure is logged (the result bucket
/// still has the outcome).
async fn publish(shared: &Shared, subject: &str, event: &Event) {
    let pieces: Vec<Event> = match event {
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
    };
    for piece in pieces {
        match serde_json::to_vec(&piece) {
            Ok(bytes) => {
                if let Err(e) = shared
                    .fleet
                    .client
                    .publish(subject.to_string(), Bytes::from(bytes))
                    .await
                {
                    tracing::warn!("publishing an event: {e}");
                }
            }
            Err(e) => tracing::warn!("encoding an event: {e}"),
        }
    }
}
