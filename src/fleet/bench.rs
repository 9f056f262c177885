//! `veyra bench` over the fleet: a run's items fanned out to the workers, one task each, and
//! their outcomes gathered by execution id. The run itself — its tasks, its store, the scoring,
//! the summary — stays with the submitter; a worker gets an item without its answer key
//! ([`for_solver`]) and sends back what the item left ([`SolvedItem`]).
//!
//! An item's execution id is named by its run, task and epoch ([`item_id`]): a run resumed
//! after its submitter was lost asks for the same ids, so an item that ran meanwhile is not
//! run again — the stream refuses the copy within its duplicate window, a worker finds the
//! final record after it — and its outcome is read from that record.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::Submitter;
use super::wire::{self, BenchItem, TaskMessage};
use crate::benchmarks::runner::{ItemRef, ItemSolver, SolvedItem, Target, for_solver};
use crate::error::VeyraError;
use crate::events::{ExecutionId, Priority};

/// Solves a run's items on the fleet.
#[derive(Debug, Clone)]
pub struct FleetSolver {
    submitter: Submitter,
    by: String,
}

impl FleetSolver {
    /// Items submitted through `submitter`, recorded as submitted `by`.
    pub fn new(submitter: Submitter, by: String) -> FleetSolver {
        FleetSolver { submitter, by }
    }
}

/// The execution id of generation `generation` of `item` solved on `target`: the same for
/// the same run, task (as sent), epoch, backend and model, never another's. A generation after
/// the first is asked for when an earlier one was cancelled (a resumed run solves it again, as
/// a run at home does).
pub fn item_id(item: ItemRef<'_>, target: &Target, generation: u32) -> ExecutionId {
    let sent = serde_json::to_vec(&for_solver(item.task)).unwrap_or_default();
    let mut hash = Sha256::new();
    for part in [
        b"veyra.fleet.item/1".as_slice(),
        item.run_id.as_bytes(),
        item.task.id.as_bytes(),
        item.epoch.to_string().as_bytes(),
        target.backend.as_bytes(),
        target.model.as_bytes(),
        Sha256::digest(&sent).as_slice(),
        generation.to_string().as_bytes(),
    ] {
        hash.update(part);
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A custom (version 8) id: its bits are SHA-256's.
    ExecutionId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// Generations of one item tried before giving up: each was cancelled.
const GENERATIONS: u32 = 64;
/// How long the submitter keeps trying the fleet's server (a restart) before an item's
/// outcome is given up for this run (a later `--resume` asks again).
const OUTAGE: std::time::Duration = std::time::Duration::from_secs(60);

impl ItemSolver for FleetSolver {
    fn solve<'a>(
        &'a self,
        item: ItemRef<'a>,
        target: &'a Target,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<SolvedItem, VeyraError>> {
        async move {
            for generation in 0..GENERATIONS {
                let id = item_id(item, target, generation);
                match self.once(id, item, target, cancel).await? {
                    Some(solved) => return Ok(solved),
                    // That generation was cancelled (a run stopped earlier): the next one.
                    None => continue,
                }
            }
            Err(VeyraError::Runtime(format!(
                "item {} epoch {} was cancelled {GENERATIONS} times on the fleet",
                item.task.id, item.epoch
            )))
        }
        .boxed()
    }
}

impl FleetSolver {
    /// One generation of an item: its outcome, or `None` when it was found cancelled while
    /// this run goes on.
    async fn once(
        &self,
        id: ExecutionId,
        item: ItemRef<'_>,
        target: &Target,
        cancel: &CancellationToken,
    ) -> Result<Option<SolvedItem>, VeyraError> {
        let task = TaskMessage {
            format: wire::TASK_FORMAT.into(),
            id,
            // The prompt travels in the item; this says what the task is to a reader.
            prompt: format!("benchmark item {} epoch {}", item.task.id, item.epoch),
            priority: Priority::Low,
            system: None,
            backend: Some(target.backend.clone()),
            model: Some(target.model.clone()),
            tools: None,
            by: self.by.clone(),
            item: Some(BenchItem {
                task: for_solver(item.task),
                epoch: item.epoch,
            }),
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
                "item {id} ended on the fleet without a kept result"
            )));
        };
        let error = |e: Option<String>, or: &str| {
            crate::sanitize::sanitize_line(&crate::sanitize::excerpt(
                e.as_deref().unwrap_or(or),
                2000,
            ))
            .into_owned()
        };
        match (result.status.as_str(), result.item) {
            ("succeeded", Some(solved)) => Ok(Some(solved)),
            ("succeeded", None) => Err(VeyraError::Runtime(format!(
                "worker {} kept no item with its result",
                crate::sanitize::quote(&crate::sanitize::excerpt(&result.worker, 80))
            ))),
            ("cancelled", _) if !cancel.is_cancelled() => Ok(None),
            ("cancelled", _) => Err(VeyraError::Cancelled(error(
                result.error,
                "cancelled on the fleet",
            ))),
            _ => Err(VeyraError::Runtime(error(
                result.error,
                "failed on the fleet",
            ))),
        }
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
