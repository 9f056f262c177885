//! `veyra worker`: pulls tasks, critical first, and runs each through its own core.
//!
//! Per task: the message is checked ([`TaskMessage::decode`], its subject against its
//! priority) and claimed in the attempts bucket — created when it has no record, which is the
//! usual case. A record that exists says whether it ran before: final (a replayed message, a
//! lost acknowledgement: acknowledged, not run), held by a worker that still renews it (left to
//! that worker), acted (its tools had been about to act, or its answer had reached the
//! submitter, on a worker that was lost: it fails as lost, named with that worker), or neither
//! (it runs again, the redelivery told in its events and recorded in this worker's audit
//! trail). The attempt is marked acted before its first tool call passes the gate or its first
//! text is published — awaited, so no redelivery can miss it. Its first events are held back
//! for a moment first: a task that ends within it (a short answer) publishes them, with its
//! outcome, in one message once that is kept, and so needs no mark. While it runs, the worker
//! tells the server it is still at it, and renews its record, every third of `ack_wait`. Its
//! events go to `<prefix>.events.<execution>`, several to a message when they are ready
//! together. At the end its record is made final, holding the outcome, in one write over its
//! own revision (a worker that took the task over makes this fail, and this attempt's outcome
//! is dropped; the outcome kept is the record holder's), and the message is acknowledged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, kv};
use chrono::Utc;
use futures_util::{FutureExt, StreamExt};
use tokio::task::JoinSet;
use tokio_util::bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::wire::{self, Attempt, AttemptHead, MAX_ATTEMPTS, Phase, TaskMessage, TaskResult};
use super::{Fleet, nats_error};
use crate::core::{BeforeTools, ExecutionRequest, VeyraCore};
use crate::error::VeyraError;
use crate::events::{Event, ExecutionId, Priority, TaskStatus};
use crate::governance::{AuditEventType, AuditRecord};

/// How long a worker keeps trying to write a record it has in hand while the
/// server cannot be reached (a restart), before it gives the task up.
const OUTAGE: Duration = Duration::from_secs(60);
/// Longest pause between empty polls of the queue.
const IDLE_MAX: Duration = Duration::from_millis(100);
/// Longest wait for the server's answer to one poll (it answers at once when it is up).
const FETCH_WAIT: Duration = Duration::from_secs(2);

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Its name in attempt records, outcomes and audit entries (default `host/pid`).
    pub name: String,
    /// Tasks it holds at once (running, or waiting for a slot of its core).
    pub in_flight: usize,
}

impl WorkerOptions {
    /// `host/pid`, and 16 tasks in flight per slot of the core (at least 64, at most its
    /// queue): a slot is held only while its task waits on the model, so a worker holding a
    /// few slots' worth keeps every slot busy while the rest wait on the fleet's writes.
    pub fn for_core(core: &VeyraCore) -> WorkerOptions {
        let host = crate::core::hostname();
        WorkerOptions {
            name: format!("{host}/{}", std::process::id()),
            in_flight: core
                .config()
                .runtime
                .max_concurrent
                .saturating_mul(16)
                .max(64)
                .min(core.config().runtime.queue_capacity.max(1)),
        }
    }
}

/// See the module docs.
pub struct Worker {
    fleet: Fleet,
    core: VeyraCore,
    options: WorkerOptions,
    /// Its runtime as clients see it (made by the first [`Worker::run`] when not given: a
    /// core has one journal).
    service: Mutex<Option<crate::service::Service>>,
}

/// What every task of one worker shares.
#[derive(Clone)]
struct Shared {
    fleet: Fleet,
    core: VeyraCore,
    name: Arc<str>,
    attempts: kv::Store,
    /// Tasks running here; a benchmark item's token cancels it (a streamed task is cancelled
    /// in the core by its id).
    running: Arc<Mutex<HashMap<ExecutionId, Option<CancellationToken>>>>,
    ack_every: Duration,
    /// The consumers' `ack_wait` as the server holds it (set by whoever made them first).
    ack_wait: Duration,
    /// What its consoles are shown (its core's events, and the tasks it decided without
    /// running them).
    journal: Arc<crate::service::journal::Journal>,
    /// Benchmark items solving here at once (a chunk brings many): within half its core's
    /// queue, so they wait here rather than find the queue full and fail.
    solving: Arc<tokio::sync::Semaphore>,
}

impl Worker {
    /// A worker of `fleet` running tasks through `core` (which should ask no one: a fleet
    /// task has no operator at the worker, so the core's confirmation policy decides).
    pub fn new(fleet: Fleet, core: VeyraCore, options: WorkerOptions) -> Worker {
        Worker {
            fleet,
            core,
            options,
            service: Mutex::default(),
        }
    }

    /// Serves the fleet's consoles through `service` (the one also serving the worker's
    /// socket, say) instead of one of its own: a core has one journal.
    pub fn with_service(self, service: crate::service::Service) -> Worker {
        if let Ok(mut held) = self.service.lock() {
            *held = Some(service);
        }
        self
    }

    /// Pulls and runs tasks until `stop`; then takes no more and lets those it runs end
    /// (each acknowledged as usual).
    pub async fn run(&self, stop: CancellationToken) -> Result<(), VeyraError> {
        let mut consumers = Vec::new();
        for priority in Priority::ALL {
            consumers.push(self.fleet.consumer(priority).await?);
        }
        // Timed by the consumers' ack_wait as the server has it, not this worker's setting:
        // the consumers may have been made by a worker configured otherwise.
        let ack_wait = consumers
            .first_mut()
            .map(|c| c.cached_info().config.ack_wait)
            .filter(|w| !w.is_zero())
            .unwrap_or(Duration::from_millis(self.fleet.config.ack_wait_ms));
        // Its runtime, for the fleet's consoles: presence, events, snapshots and commands.
        let service = {
            let mut held = self
                .service
                .lock()
                .map_err(|_| VeyraError::Runtime("the worker's service lock is poisoned".into()))?;
            match &*held {
                Some(service) => service.clone(),
                None => {
                    let bench = crate::service::bench::BenchHost::new(&self.core);
                    let service = crate::service::Service::new(&self.core, &bench, "worker")
                        .map_err(|e| VeyraError::Runtime(e.to_string()))?;
                    *held = Some(service.clone());
                    service
                }
            }
        };
        // Benchmark items solved here at once (half its core's queue), and what the fleet is
        // told it has room for: no more than the chunks it may hold carry at most.
        let solving = (self.core.config().runtime.queue_capacity / 2).max(1);
        let item_room = solving.min(
            self.options
                .in_flight
                .max(1)
                .saturating_mul(crate::benchmarks::runner::MAX_CHUNK),
        );
        let shared = Shared {
            fleet: self.fleet.clone(),
            core: self.core.clone(),
            name: Arc::from(self.options.name.as_str()),
            attempts: self.fleet.attempts(),
            running: Arc::default(),
            ack_every: (ack_wait / 3).max(Duration::from_millis(100)),
            ack_wait,
            journal: Arc::clone(service.journal()),
            solving: Arc::new(tokio::sync::Semaphore::new(solving)),
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
        // Submitters say when they have published, so an idle worker polls at once rather than
        // at its next pause; the pauses stay for submitters that do not say.
        let mut wakes = self
            .fleet
            .client
            .subscribe(self.fleet.wake_subject())
            .await
            .map_err(|e| nats_error("listening for new tasks", e))?;
        tracing::info!(worker = %shared.name, url = %self.fleet.url, "fleet worker pulling tasks");
        // Its store's witness goes to the fleet after each checkpoint, and once more at the end.
        let witnessing = CancellationToken::new();
        let witness = tokio::spawn(super::witness::publish_witnesses(
            self.fleet.clone(),
            self.core.clone(),
            witnessing.clone(),
        ));
        // Its runtime, for the fleet's consoles: presence, events, snapshots and commands.
        let held = Arc::clone(&shared.running);
        let node = tokio::spawn(super::node::serve(
            self.fleet.clone(),
            service,
            Arc::clone(&shared.name),
            Arc::new(move || held.lock().map_or(0, |r| r.len())),
            item_room,
            witnessing.clone(),
        ));
        let limit = self.options.in_flight.max(1);
        let room = room::Room::new(item_room);
        let mut tasks = JoinSet::new();
        let mut idle = Duration::from_millis(1);
        // Priorities that may have work: told by a submitter's wake, or left with more after a
        // full batch. Every priority is asked at least every IDLE_MAX whatever the hints say
        // (a redelivered task, a submitter that does not wake), and only hinted ones between.
        let mut hinted = [true; Priority::ALL.len()];
        let mut asked_all = tokio::time::Instant::now();
        while !stop.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            let free = limit.saturating_sub(tasks.len());
            let mut got = 0usize;
            if free > 0 {
                let all = asked_all.elapsed() >= IDLE_MAX;
                if all {
                    asked_all = tokio::time::Instant::now();
                }
                // Critical first: each round takes from the highest priority that has work.
                for (rank, (consumer, priority)) in consumers.iter().zip(Priority::ALL).enumerate()
                {
                    if !all && !hinted[rank] {
                        continue;
                    }
                    let want = room.want(priority, free);
                    if want == 0 {
                        continue;
                    }
                    let before = got;
                    let batch = consumer.fetch().max_messages(want).messages().await;
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
                                let held = room.hold(message.headers.as_ref());
                                let shared = shared.clone();
                                tasks.spawn(async move {
                                    let _held = held;
                                    handle(shared, message).await;
                                });
                            }
                            Err(e) => tracing::warn!("a task could not be read: {e}"),
                        }
                    }
                    hinted[rank] = got - before == want;
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
                Some(message) = cancels.next() => cancel(&shared, &message),
                Some(wake) = wakes.next() => {
                    // The wake names its priority; one that names none hints every priority.
                    let named = Priority::ALL
                        .iter()
                        .position(|p| p.name().as_bytes() == wake.payload.as_ref());
                    match named {
                        Some(rank) => hinted[rank] = true,
                        None => hinted = [true; Priority::ALL.len()],
                    }
                    // Wakes that came meanwhile are taken now, not one idle pass each.
                    while let Some(Some(more)) = wakes.next().now_or_never() {
                        match Priority::ALL
                            .iter()
                            .position(|p| p.name().as_bytes() == more.payload.as_ref())
                        {
                            Some(rank) => hinted[rank] = true,
                            None => hinted = [true; Priority::ALL.len()],
                        }
                    }
                    idle = Duration::from_millis(1);
                }
                () = stop.cancelled() => {}
            }
        }
        tracing::info!(worker = %shared.name, left = tasks.len(), "fleet worker stopping; letting its tasks end");
        while !tasks.is_empty() {
            tokio::select! {
                _ = tasks.join_next() => {}
                Some(message) = cancels.next() => cancel(&shared, &message),
            }
        }
        witnessing.cancel();
        let _ = witness.await;
        // Its entry in the presence bucket is deleted on the way out, given a moment.
        let _ = tokio::time::timeout(Duration::from_secs(5), node).await;
        // Acknowledgements and events are sent without waiting; what is still buffered goes
        // out before the worker says it has stopped.
        if let Err(e) = self.fleet.client.flush().await {
            tracing::warn!("sending what was left for the fleet: {e}");
        }
        Ok(())
    }
}

/// A cancel from the bus: the execution is cancelled here if it runs here, on behalf of the
/// console that sent it when it said who it is.
fn cancel(shared: &Shared, message: &async_nats::Message) {
    let subject = message.subject.as_str();
    let by = (!message.payload.is_empty())
        .then(|| serde_json::from_slice::<super::node::NodeCaller>(&message.payload).ok())
        .flatten()
        .map(|by| by.caller());
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
    let ours = shared.running.lock().ok().and_then(|r| r.get(&id).cloned());
    match ours {
        Some(Some(token)) => {
            tracing::info!(%id, "cancelled from the fleet");
            token.cancel();
        }
        Some(None) => {
            tracing::info!(%id, "cancelled from the fleet");
            let core = shared.core.clone();
            tokio::spawn(crate::core::as_caller(by, async move {
                let _ = core.cancel(id);
            }));
        }
        None => {}
    }
}

/// Shows the consoles a task this worker decided without its core (refused, or lost on
/// another worker): its submission as the core would have told it, then `end`.
fn tell_consoles(shared: &Shared, task: &TaskMessage, end: Event) {
    use crate::events::EventSink as _;
    shared.journal.emit(task.submitted("fleet", Utc::now()));
    shared.journal.emit(end);
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
        if running.contains_key(&id) {
            // The same execution delivered again while it runs here: this copy is not run.
            tracing::warn!(%id, "a second delivery of a task running here; left to the first");
            return;
        }
        // A benchmark item is cancelled by its token (its executions have ids of their own);
        // made now, so a cancel that comes while it is being claimed is not lost.
        running.insert(id, (!task.items.is_empty()).then(CancellationToken::new));
    }
    let outcome = run_task(&shared, &message, &task, delivered).await;
    if let Ok(mut running) = shared.running.lock() {
        running.remove(&id);
    }
    match outcome {
        Ok(Handled::Held) => {
            // Its holder is alive and renewing its lease: this copy is handed back for
            // ack_wait, by when the holder has acknowledged it or has gone.
            let _ = message.ack_with(AckKind::Nak(Some(shared.ack_wait))).await;
        }
        Ok(Handled::Done) => {
            // The outcome is kept before this: an acknowledgement that goes missing only
            // means a later delivery, which finds the result and acknowledges it.
            if let Err(e) = message.ack().await {
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
        // Only an execution nobody has claimed is failed here, its record created final with
        // the refusal: a copy that broke the rules never decides the outcome of the task it
        // copies (which may be running, or come later and find it final).
        let kept = outcome(
            shared,
            id,
            0,
            "failed",
            String::new(),
            Some(why.clone()),
            Vec::new(),
        );
        let fenced = match record_bytes(shared, 0, Phase::Final, Some(kept)) {
            Ok(bytes) => shared.attempts.create(wire::key(id), bytes).await.is_ok(),
            Err(_) => false,
        };
        if fenced {
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
    // Claimed at once when it has no record (the common case: one write, no read); a record
    // that exists is read and decides.
    let first = attempt_bytes(shared, 1, Phase::Running).map_err(VeyraError::Runtime)?;
    let entry = match shared.attempts.create(&key, first).await {
        Ok(revision) => {
            return run_claimed(shared, message, task, delivered, None, 1, revision).await;
        }
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => shared
            .attempts
            .entry(key.clone())
            .await
            .map_err(|e| nats_error("reading the attempts bucket", e))?
            .filter(|e| matches!(e.operation, kv::Operation::Put)),
        Err(e) => {
            // The server could not be reached, or the write's answer was lost: not run here;
            // handed back, and the record (if the write landed) decides next time.
            return Err(VeyraError::Runtime(format!(
                "the task could not be claimed ({e}); handed back"
            )));
        }
    };
    let revision = entry.as_ref().map(|e| e.revision);
    let before = match &entry {
        Some(e) => match AttemptHead::decode(&e.value) {
            Ok(a) => Some(a),
            // A record that cannot be read could say anything: the task is not run again.
            Err(err) => {
                let why = format!("its attempt record is damaged ({err}); not run again");
                return lose(shared, task, 0, &why, revision, Loss::Lost).await;
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
        && record::still_held(&shared.attempts, shared.ack_wait, &key, r).await
    {
        tracing::info!(%id, by = %shown_worker(&a.worker), "delivered again while its worker still holds it; left to that worker");
        return Ok(Handled::Held);
    }
    // This worker's own record of a fresh attempt, not running here: its claim landed but the
    // answer was lost, or its release did not. Taken up as the same attempt, not told as a
    // lost worker's.
    if let (Some(a), Some(r)) = (&before, revision)
        && a.worker == *shared.name
        && a.phase == Phase::Running
    {
        let bytes =
            attempt_bytes(shared, a.attempt, Phase::Running).map_err(VeyraError::Runtime)?;
        let revision = shared.attempts.update(&key, bytes, r).await.map_err(|e| {
            VeyraError::Runtime(format!("the task could not be claimed ({e}); handed back"))
        })?;
        return run_claimed(shared, message, task, delivered, None, a.attempt, revision).await;
    }
    let attempt = before.as_ref().map_or(1, |a| a.attempt.saturating_add(1));
    match &before {
        Some(a) if a.phase == Phase::Final => {
            // A replayed message (or an acknowledgement that was lost): already finished.
            tracing::info!(%id, by = %shown_worker(&a.worker), "a finished task was delivered again; not run again");
            // A final record keeps its outcome in the same write; one without is an earlier
            // version's, whose outcome is kept apart (found: done), or one written by hand or
            // by such a worker lost between its two writes (told as lost now).
            let mut kept = a.has_outcome() || shared.fleet.legacy_result(id).await?.is_some();
            if !kept {
                // Such a worker may be between its two writes: given the time of a lease
                // before the task is called lost.
                tokio::time::sleep(shared.ack_wait).await;
                kept = shared.fleet.legacy_result(id).await?.is_some();
            }
            if !kept {
                let why = format!(
                    "lost on worker {} after it was finished and before its outcome was kept",
                    shown_worker(&a.worker)
                );
                return lose(shared, task, a.attempt, &why, revision, Loss::Lost).await;
            }
            return Ok(Handled::Done);
        }
        Some(a) if a.phase == Phase::Acted => {
            let why = format!(
                "lost on worker {} after its tools had acted or its answer had streamed; an \
                 attempt that acted is never run again (side effects happen once)",
                shown_worker(&a.worker)
            );
            return lose(shared, task, a.attempt, &why, revision, Loss::Lost).await;
        }
        Some(a) if attempt > MAX_ATTEMPTS => {
            let why = format!(
                "lost {} times (last on worker {}); not tried again",
                a.attempt,
                shown_worker(&a.worker)
            );
            return lose(shared, task, a.attempt, &why, revision, Loss::Lost).await;
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
    run_claimed(shared, message, task, delivered, before, attempt, revision).await
}

mod item;
mod record;
mod room;
mod run;
#[cfg(test)]
pub(super) use record::still_held;
use record::{
    Claim, Loss, MAX_EVENT_TEXT, Unwatched, attempt_bytes, cut, failed, lose, outcome, publish,
    publish_all, record, record_bytes, shown_worker, text_room,
};
#[cfg(test)]
pub(super) use run::offered_for_tests;
use run::run_claimed;
