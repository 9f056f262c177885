//! `veyra bench` over the fleet: a run's items fanned out to the workers in chunks (see
//! [`crate::benchmarks::runner::chunk_for`]), one task each, and their outcomes gathered by
//! execution id. A run keeps as many items in flight as the workers up say they solve at once
//! ([`FleetSolver::room`](ItemSolver::room), asked again while it goes): each worker's room
//! is half its core's queue, so every worker has items waiting for each slot it frees, and
//! its audit trail commits many at once. The run itself — its tasks, its store, the
//! scoring, the summary — stays with the submitter; a worker gets items without their answer
//! key ([`for_solver`]) and sends back what each left ([`SolvedItem`]).
//!
//! A chunk's execution id is named by its items — run, task (as sent), epoch — its backend,
//! model and generation ([`chunk_id`]). A run resumed after its submitter was lost asks for the
//! same chunks, so one that ran meanwhile is not run again — the stream refuses the copy within
//! its duplicate window, a worker finds the final record after it — and its outcomes are read
//! from that record. A chunk is one fleet task: a worker lost after the tools of any of its
//! items acted fails the whole chunk as lost (side effects happen once), where items sent one
//! by one would lose only those that acted.

use async_nats::jetstream::kv;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::Submitter;
use super::wire::{self, BenchItem, TaskMessage, UNKEPT};
use crate::benchmarks::runner::{
    ItemRef, ItemSolver, MAX_CHUNK, SolvedItem, Target, chunk_for, for_solver,
};
use crate::error::VeyraError;
use crate::events::{ExecutionId, Priority};

/// Solves a run's items on the fleet.
#[derive(Debug, Clone)]
pub struct FleetSolver {
    submitter: Submitter,
    by: String,
    /// Items to a chunk whatever the run's size (`None`: [`chunk_for`] it).
    chunk: Option<usize>,
}

impl FleetSolver {
    /// Items submitted through `submitter`, recorded as submitted `by`.
    pub fn new(submitter: Submitter, by: String) -> FleetSolver {
        FleetSolver {
            submitter,
            by,
            chunk: None,
        }
    }

    /// `n` items to a chunk (within 1 and [`MAX_CHUNK`]) whatever the run's size, rather than
    /// [`chunk_for`] it: a small run in many-item chunks, say.
    pub fn with_chunk(mut self, n: usize) -> FleetSolver {
        self.chunk = Some(n.clamp(1, MAX_CHUNK));
        self
    }

    /// Items the fleet's workers solve at once, as each says in the presence bucket, summed
    /// (at most [`MAX_ROOM`]); `None` when none says (none is up yet, or none can be read
    /// within [`ROOM_WAIT`]).
    async fn fleet_room(&self) -> Option<usize> {
        let store = self.submitter.fleet().workers();
        let present = tokio::time::timeout(ROOM_WAIT, super::node::present(&store, MAX_WORKERS));
        let workers = match present.await {
            Ok(Ok(workers)) => workers,
            Ok(Err(e)) => {
                tracing::debug!("the fleet's room: {e}");
                return None;
            }
            Err(_) => {
                tracing::debug!("the fleet's room: no answer within {ROOM_WAIT:?}");
                return None;
            }
        };
        let room = workers
            .iter()
            .map(|(_, w)| w.room.min(MAX_ROOM))
            .fold(0usize, usize::saturating_add)
            .min(MAX_ROOM);
        tracing::debug!(workers = workers.len(), room, "the fleet's room");
        (room > 0).then_some(room)
    }
}

// A chunk the runner cuts is one fleet task: never more items than a task carries.
const _: () = assert!(MAX_CHUNK <= wire::MAX_ITEMS);

/// Most items a fanned-out run keeps in flight, however much room the workers say they have
/// (a bucket entry is anyone's to write): 256 chunks of the most a chunk holds.
pub const MAX_ROOM: usize = 256 * MAX_CHUNK;
/// Most workers whose room is read.
const MAX_WORKERS: usize = 1_000;
/// How long the fleet's room is waited for as a run starts before it goes with its own figure.
const ROOM_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// An item as it is sent: without its answer key, and that task's JSON (hashed into the
/// chunk's id).
struct Sent {
    item: BenchItem,
    json: Vec<u8>,
}

impl Sent {
    fn of(item: ItemRef<'_>) -> Sent {
        let task = for_solver(item.task);
        let json = serde_json::to_vec(&task).unwrap_or_default();
        Sent {
            item: BenchItem {
                task,
                epoch: item.epoch,
            },
            json,
        }
    }
}

/// The execution id of generation `generation` of the chunk of `items` solved on `target`:
/// the same for the same items (run, task as sent, epoch), backend, model and generation,
/// never another's. A generation after the first is asked for, with the items an earlier one
/// left cancelled, when it was cancelled (a resumed run solves them again, as a run at home
/// does).
pub fn chunk_id(items: &[ItemRef<'_>], target: &Target, generation: u32) -> ExecutionId {
    let sent: Vec<Sent> = items.iter().map(|i| Sent::of(*i)).collect();
    let all: Vec<usize> = (0..items.len()).collect();
    id_of(items, &sent, &all, target, generation)
}

/// [`chunk_id`] of the items `members` of `items`, each sent as `sent`.
fn id_of(
    items: &[ItemRef<'_>],
    sent: &[Sent],
    members: &[usize],
    target: &Target,
    generation: u32,
) -> ExecutionId {
    let mut hash = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hash.update(bytes);
        hash.update([0]);
    };
    part(b"veyra.fleet.chunk/1");
    part(target.backend.as_bytes());
    part(target.model.as_bytes());
    part(generation.to_string().as_bytes());
    for &m in members {
        let (Some(item), Some(sent)) = (items.get(m), sent.get(m)) else {
            continue;
        };
        part(item.run_id.as_bytes());
        part(item.task.id.as_bytes());
        part(item.epoch.to_string().as_bytes());
        part(Sha256::digest(&sent.json).as_slice());
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A custom (version 8) id: its bits are SHA-256's.
    ExecutionId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// Generations of one chunk tried before giving up: in each, some items were found cancelled
/// or not kept.
const GENERATIONS: u32 = 64;
/// How long the submitter keeps trying the fleet's server (a restart) before a chunk's
/// outcome is given up for this run (a later `--resume` asks again).
const OUTAGE: std::time::Duration = std::time::Duration::from_secs(60);
/// Bytes of a task message besides its items (its backend and model may hold 4 KiB each).
const ENVELOPE: usize = 12 * 1024;

impl ItemSolver for FleetSolver {
    fn solve<'a>(
        &'a self,
        items: &'a [ItemRef<'a>],
        target: &'a Target,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Vec<Result<SolvedItem, VeyraError>>> {
        async move {
            let sent: Vec<Sent> = items.iter().map(|i| Sent::of(*i)).collect();
            let all: Vec<usize> = (0..items.len()).collect();
            self.split(items, &sent, &all, target, cancel).await
        }
        .boxed()
    }

    fn chunk(&self, total: usize) -> usize {
        self.chunk.unwrap_or_else(|| chunk_for(total))
    }

    fn room(&self) -> BoxFuture<'_, Option<usize>> {
        self.fleet_room().boxed()
    }
}

/// The status of a chunk's record made final by a submitter that sent its items one by one
/// instead (see [`FleetSolver::ask`]): no worker runs that chunk.
const ALONE: &str = "alone";

/// The outcome of an item the run did not ask for (it has it).
fn not_asked() -> Result<SolvedItem, VeyraError> {
    Err(VeyraError::Runtime("not asked for: the run has it".into()))
}

impl FleetSolver {
    /// The `members` of `items`, in halves while together they are more than a task carries
    /// (the same halves whenever the run asks again).
    fn split<'a>(
        &'a self,
        items: &'a [ItemRef<'a>],
        sent: &'a [Sent],
        members: &'a [usize],
        target: &'a Target,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Vec<Result<SolvedItem, VeyraError>>> {
        async move {
            let bytes: usize = members
                .iter()
                .filter_map(|&m| sent.get(m))
                .map(|s| s.json.len() + 64)
                .sum();
            let carried =
                wire::MAX_TASK_BYTES.min(self.submitter.fleet().client.server_info().max_payload);
            if members.len() > 1 && (bytes + ENVELOPE > carried || members.len() > wire::MAX_ITEMS)
            {
                let (a, b) = members.split_at(members.len() / 2);
                let (mut first, second) = futures_util::future::join(
                    self.split(items, sent, a, target, cancel),
                    self.split(items, sent, b, target, cancel),
                )
                .await;
                first.extend(second);
                return first;
            }
            self.ask(items, sent, members.to_vec(), 0, target, cancel)
                .await
        }
        .boxed()
    }

    /// Generation `generation` of the chunk of `members` of `items`, and the generations
    /// after it for the items found cancelled (a run stopped earlier) or not kept for want of
    /// room, one outcome per member in order.
    ///
    /// A chunk of which the run has some items already (a resumed run) is followed only if a
    /// worker holds it or kept it. Otherwise its record is made final by this submitter, so no
    /// worker ever runs it, and each item the run lacks goes alone, under an id of its own (the
    /// same at every later resume): an item the run has is never solved again, and none is
    /// solved both in a chunk and alone.
    fn ask<'a>(
        &'a self,
        items: &'a [ItemRef<'a>],
        sent: &'a [Sent],
        members: Vec<usize>,
        generation: u32,
        target: &'a Target,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Vec<Result<SolvedItem, VeyraError>>> {
        async move {
            let wanted = |m: usize| items.get(m).is_some_and(|i| i.wanted);
            if !members.iter().any(|&m| wanted(m)) {
                return members.iter().map(|_| not_asked()).collect();
            }
            if generation >= GENERATIONS {
                return members
                    .iter()
                    .map(|&m| {
                        let (task, epoch) = items
                            .get(m)
                            .map_or(("?", 0), |i| (i.task.id.as_str(), i.epoch));
                        Err(VeyraError::Runtime(format!(
                            "item {task} epoch {epoch} was asked for {GENERATIONS} times on the \
                             fleet and never kept"
                        )))
                    })
                    .collect();
            }
            let id = id_of(items, sent, &members, target, generation);
            if !members.iter().all(|&m| wanted(m)) {
                match self.set_aside(id, cancel).await {
                    Ok(true) => return self.alone(items, sent, &members, target, cancel).await,
                    Ok(false) => {}
                    Err(e) => return members.iter().map(|_| Err(again(&e))).collect(),
                }
            }
            let chunk: Vec<BenchItem> = members
                .iter()
                .filter_map(|&m| sent.get(m).map(|s| s.item.clone()))
                .collect();
            let told = match self.once(id, chunk, target, cancel).await {
                Ok(told) => told,
                Err(e) => return members.iter().map(|_| Err(again(&e))).collect(),
            };
            let mut outcomes: Vec<Result<SolvedItem, VeyraError>> = Vec::new();
            // Places in `outcomes` of the members asked for again, and those members.
            let (mut places, mut next) = (Vec::new(), Vec::new());
            for (&m, told) in members.iter().zip(told) {
                match told {
                    Some(outcome) => outcomes.push(outcome),
                    None => {
                        places.push(outcomes.len());
                        next.push(m);
                        outcomes.push(not_asked());
                    }
                }
            }
            if !next.is_empty() {
                let later = self
                    .ask(items, sent, next, generation + 1, target, cancel)
                    .await;
                for (place, outcome) in places.into_iter().zip(later) {
                    if let Some(slot) = outcomes.get_mut(place) {
                        *slot = outcome;
                    }
                }
            }
            outcomes
        }
        .boxed()
    }

    /// Each of `members` the run wants, alone.
    async fn alone(
        &self,
        items: &[ItemRef<'_>],
        sent: &[Sent],
        members: &[usize],
        target: &Target,
        cancel: &CancellationToken,
    ) -> Vec<Result<SolvedItem, VeyraError>> {
        let each = members.iter().map(|&m| async move {
            if !items.get(m).is_some_and(|i| i.wanted) {
                return not_asked();
            }
            self.ask(items, sent, vec![m], 0, target, cancel)
                .await
                .pop()
                .unwrap_or_else(not_asked)
        });
        futures_util::future::join_all(each).await
    }

    /// Makes chunk `id`'s record final unless it has one: true when its items are to go one
    /// by one (this call or an earlier one set it aside), false when a worker holds or kept it
    /// (it is followed).
    async fn set_aside(
        &self,
        id: ExecutionId,
        cancel: &CancellationToken,
    ) -> Result<bool, VeyraError> {
        let by = "(its submitter)".to_string();
        let record = wire::Attempt {
            worker: by.clone(),
            attempt: 0,
            phase: wire::Phase::Final,
            at: chrono::Utc::now(),
            outcome: Some(wire::TaskResult {
                id,
                worker: by,
                attempt: 0,
                status: ALONE.into(),
                text: String::new(),
                error: Some(
                    "its items went to the fleet one by one: the run had some of them".into(),
                ),
                items: Vec::new(),
                at: chrono::Utc::now(),
            }),
        };
        let bytes = serde_json::to_vec(&record)
            .map(tokio_util::bytes::Bytes::from)
            .map_err(|e| VeyraError::Runtime(e.to_string()))?;
        let attempts = self.submitter.fleet().attempts();
        let created = patiently(cancel, || async {
            match attempts.create(wire::key(id), bytes.clone()).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(VeyraError::Runtime(format!(
                    "the fleet could not set chunk {id} aside: {e}"
                ))),
            }
        })
        .await?;
        if created {
            return Ok(true);
        }
        let kept = patiently(cancel, || self.submitter.fleet().result(id)).await?;
        Ok(kept.is_some_and(|k| k.status == ALONE))
    }

    /// One generation of a chunk: each item's outcome, or `None` for one to ask for again
    /// (found cancelled while this run goes on, or not kept for want of room).
    async fn once(
        &self,
        id: ExecutionId,
        items: Vec<BenchItem>,
        target: &Target,
        cancel: &CancellationToken,
    ) -> Result<Vec<Option<Result<SolvedItem, VeyraError>>>, VeyraError> {
        let count = items.len();
        let prompt = match items.as_slice() {
            [one] => format!("benchmark item {} epoch {}", one.task.id, one.epoch),
            _ => format!("{count} benchmark items"),
        };
        let task = TaskMessage {
            format: wire::TASK_FORMAT.into(),
            id,
            // The prompts travel in the items; this says what the task is to a reader.
            prompt,
            priority: Priority::Low,
            system: None,
            backend: Some(target.backend.clone()),
            model: Some(target.model.clone()),
            tools: None,
            by: self.by.clone(),
            items,
        };
        // Submitted, or followed if the fleet has it already (a resumed run).
        let mut submission =
            patiently(cancel, || self.submitter.submit_or_follow(task.clone())).await?;
        loop {
            tokio::select! {
                event = submission.next() => match event {
                    Some(Ok(event)) if event.is_terminal() => break,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => break,
                },
                () = cancel.cancelled() => {
                    self.submitter.withdraw(id).await;
                    return Err(VeyraError::Cancelled("the benchmark run was cancelled".into()));
                }
            }
        }
        let Some(result) = patiently(cancel, || self.submitter.fleet().result(id)).await? else {
            return Err(VeyraError::Runtime(format!(
                "chunk {id} ended on the fleet without a kept result"
            )));
        };
        let error = |e: Option<String>, or: &str| {
            crate::sanitize::sanitize_line(&crate::sanitize::excerpt(
                e.as_deref().unwrap_or(or),
                2000,
            ))
            .into_owned()
        };
        let worker = crate::sanitize::quote(&crate::sanitize::excerpt(&result.worker, 80));
        if result.items.is_empty() {
            // Refused, lost or withdrawn whole: each item's outcome is the chunk's.
            let whole = |_| match result.status.as_str() {
                "cancelled" if !cancel.is_cancelled() => None,
                "cancelled" => Some(Err(VeyraError::Cancelled(error(
                    result.error.clone(),
                    "cancelled on the fleet",
                )))),
                "succeeded" => Some(Err(VeyraError::Runtime(format!(
                    "worker {worker} kept no items with its result"
                )))),
                _ => Some(Err(VeyraError::Runtime(error(
                    result.error.clone(),
                    "failed on the fleet",
                )))),
            };
            return Ok((0..count).map(whole).collect());
        }
        if result.items.len() != count {
            return Err(VeyraError::Runtime(format!(
                "worker {worker} kept {} outcomes for a chunk of {count} items",
                result.items.len()
            )));
        }
        Ok(result
            .items
            .into_iter()
            .map(|told| match (told.status.as_str(), told.item) {
                ("succeeded", Some(solved)) => Some(Ok(solved)),
                ("succeeded", None) => Some(Err(VeyraError::Runtime(format!(
                    "worker {worker} kept no item with its result"
                )))),
                // Its tools acted before it was cancelled: never solved again (side effects
                // happen once).
                ("cancelled", _) if told.acted => Some(Err(VeyraError::Runtime(format!(
                    "cancelled on worker {worker} after its tools had acted; not solved again \
                     (side effects happen once)"
                )))),
                // Ran without acting, but left more than its chunk had room for: asked for
                // again with fewer beside it.
                ("cancelled" | UNKEPT, _) if !cancel.is_cancelled() => None,
                ("cancelled" | UNKEPT, _) => Some(Err(VeyraError::Cancelled(error(
                    told.error,
                    "cancelled on the fleet",
                )))),
                _ => Some(Err(VeyraError::Runtime(error(
                    told.error,
                    "failed on the fleet",
                )))),
            })
            .collect())
    }
}

/// `e` again, for another item of the same chunk.
fn again(e: &VeyraError) -> VeyraError {
    match e {
        VeyraError::Cancelled(why) => VeyraError::Cancelled(why.clone()),
        VeyraError::Usage(why) => VeyraError::Usage(why.clone()),
        other => VeyraError::Runtime(other.to_string()),
    }
}

/// `attempt` tried again while the fleet's server cannot be reached, for up to [`OUTAGE`];
/// beyond that its error is the item's (once the run is cancelled, a cancellation: no result
/// is kept for it, and a `--resume` asks again).
async fn patiently<T, F, Fut>(cancel: &CancellationToken, mut attempt: F) -> Result<T, VeyraError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, VeyraError>>,
{
    let deadline = tokio::time::Instant::now() + OUTAGE;
    let mut wait = std::time::Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            // A task refused as too large is not the server's outage.
            Err(e @ VeyraError::Usage(_)) => return Err(e),
            // The run stopped meanwhile: not a result (a `--resume` asks again).
            Err(e) if cancel.is_cancelled() => {
                return Err(VeyraError::Cancelled(format!(
                    "the fleet could not be reached ({e})"
                )));
            }
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(VeyraError::Runtime(format!(
                    "the fleet could not be reached for a minute: {e}"
                )));
            }
            Err(e) => {
                tracing::debug!("the fleet, again shortly: {e}");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => {}
                }
                wait = (wait * 2).min(std::time::Duration::from_secs(2));
            }
        }
    }
}
