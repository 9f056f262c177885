//! A benchmark run's item on a worker (`veyra bench` fanned out, see [`crate::fleet::bench`]):
//! solved through this worker's core as the run would solve it at home — its scratch
//! directory in this worker's workspace, its tools through this worker's gate, a dialogue turn
//! by turn — with the attempt marked acted before its first tool call, and what it left kept
//! with its result for the run to score.

use super::*;
use crate::benchmarks::framework::TaskTools;
use crate::benchmarks::runner::{self, SolvedItem, Target};
use crate::fleet::wire::BenchItem;

/// Runs `item` (task `task`, claimed as `attempt`) to its kept outcome.
pub(super) async fn run_item(
    shared: &Shared,
    message: &jetstream::Message,
    task: &TaskMessage,
    item: &BenchItem,
    claim: Arc<Claim>,
    attempt: u32,
) -> Result<Handled, VeyraError> {
    let id = task.id;
    // An item is solved with the tools it asks for or not at all: with fewer it would be
    // scored on another task.
    if let TaskTools::Only(names) = &item.task.tools {
        let offer = &shared.core.config().tools.offer;
        if let Some(missing) = names.iter().find(|n| !offer.offers(n)) {
            let why = format!(
                "worker {} does not offer the tool {} this item needs (tools.offer)",
                shared.name,
                crate::sanitize::quote(&crate::sanitize::excerpt(missing, 80))
            );
            let now = claim.revision().await;
            return lose(shared, task, attempt, &why, Some(now), Loss::Refused).await;
        }
    }
    let acted = {
        // Before the first tool call of any of its executions passes the gate: the attempt is
        // marked acted, and the mark kept by the server, or the call does not run.
        let claim = Arc::clone(&claim);
        let handle = tokio::runtime::Handle::current();
        BeforeTools::new(move || {
            handle
                .block_on(claim.acted())
                .map_err(|e| format!("the fleet could not record that its tools act: {e}"))
        })
    };
    let target = Target {
        backend: task
            .backend
            .clone()
            .unwrap_or_else(|| shared.core.backend_name()),
        model: task
            .model
            .clone()
            .unwrap_or_else(|| shared.core.model_name()),
        caller: None,
        before_tools: Some(acted),
    };
    // Cancelled from the bus by the token `handle` made for it.
    let cancel = shared
        .running
        .lock()
        .ok()
        .and_then(|r| r.get(&id).cloned().flatten())
        .unwrap_or_default();
    // Its scratch directory is named for this execution, not only its task: two runs of the
    // same plan (the same task ids) may have items on one worker at once.
    let mut solving_task = item.task.clone();
    let key = wire::key(id);
    solving_task.id = format!("{}-{}", item.task.id, key.get(..12).unwrap_or(&key));
    record(
        &shared.core,
        "fleet_item",
        &format!("execution:{id}"),
        "started",
        serde_json::json!({
            "worker": &*shared.name,
            "attempt": attempt,
            "task": &item.task.id,
            "epoch": item.epoch,
            "by": task.by,
        }),
    )
    .await;
    let solving = runner::solve_item(&shared.core, &solving_task, item.epoch, &target, &cancel);
    tokio::pin!(solving);
    let mut progress = tokio::time::interval(shared.ack_every);
    progress.tick().await;
    let solved = loop {
        tokio::select! {
            solved = &mut solving => break solved,
            _ = progress.tick() => {
                let _ = message.ack_with(AckKind::Progress).await;
                claim.renew().await;
            }
        }
    };
    // What the item left must fit in its final record, with room for the record's other
    // fields, within what this server takes in one message (a server set below the bucket's
    // limit would refuse the record for ever, and the item would go round again).
    let limit = wire::MAX_RESULT_BYTES.min(shared.fleet.client.server_info().max_payload);
    let room = limit.saturating_sub(wire::MAX_RESULT_ERROR + 4096);
    let solved = solved.and_then(|s| fits(s, room).map_err(VeyraError::Runtime));
    let (status, error, kept, final_status) = match solved {
        Ok(solved) => ("succeeded", None, Some(solved), TaskStatus::Succeeded),
        Err(VeyraError::Cancelled(why)) => (
            "cancelled",
            Some(why.clone()),
            None,
            TaskStatus::Cancelled { reason: why },
        ),
        Err(e) => {
            let why = e.to_string();
            (
                "failed",
                Some(why.clone()),
                None,
                TaskStatus::Failed {
                    error: why,
                    kind: "item".into(),
                    not_retried: None,
                },
            )
        }
    };
    // Kept with the fence, as a streamed task's outcome is (see `run_claimed`). The answer
    // travels in the item (the outcome's own text field stays empty).
    let kept = outcome(shared, id, attempt, status, String::new(), error, kept);
    if let Err(e) = claim.finish(kept).await {
        tracing::warn!(%id, "the item was taken over or its record could not be marked final ({e}); this attempt's outcome is dropped");
        return Ok(Handled::Held);
    }
    publish(
        shared,
        &shared.fleet.events_subject(id),
        &Event::TaskState {
            id,
            status: final_status,
            attempt,
            at: Utc::now(),
        },
    )
    .await;
    Ok(Handled::Done)
}

/// What an item left, unless it is more than `room` bytes (a result's limit).
fn fits(item: SolvedItem, room: usize) -> Result<SolvedItem, String> {
    let size = serde_json::to_vec(&item)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > room {
        return Err(format!(
            "what the item left is {size} bytes, over the {room} a fleet result holds"
        ));
    }
    Ok(item)
}
