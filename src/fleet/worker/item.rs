//! A chunk of a benchmark run's items on a worker (`veyra bench` fanned out, see
//! [`crate::fleet::bench`]): each solved through this worker's core as the run would solve it
//! at home — its scratch directory in this worker's workspace, its tools through this worker's
//! gate, a dialogue turn by turn — side by side, with the attempt marked acted before the first
//! tool call of any of them, and what each left kept with the chunk's result for the run to
//! score.

use super::*;
use crate::benchmarks::framework::TaskTools;
use crate::benchmarks::runner::{self, SolvedItem, Target};
use crate::fleet::wire::ItemOutcome;

/// Runs the items of `task` (claimed as `attempt`) to their kept outcome.
pub(super) async fn run_items(
    shared: &Shared,
    message: &jetstream::Message,
    task: &TaskMessage,
    claim: Arc<Claim>,
    attempt: u32,
) -> Result<Handled, VeyraError> {
    let id = task.id;
    // An item is solved with the tools it asks for or not at all: with fewer it would be
    // scored on another task. One that needs a tool this worker does not offer fails, saying
    // so, and the others of its chunk are solved.
    let offer = &shared.core.config().tools.offer;
    let refused: Vec<Option<String>> = task
        .items
        .iter()
        .map(|item| match &item.task.tools {
            TaskTools::Only(names) => names.iter().find(|n| !offer.offers(n)).map(|missing| {
                format!(
                    "worker {} does not offer the tool {} this item needs (tools.offer)",
                    shared.name,
                    crate::sanitize::quote(&crate::sanitize::excerpt(missing, 80))
                )
            }),
            TaskTools::None => None,
        })
        .collect();
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
    record(
        &shared.core,
        "fleet_item",
        &format!("execution:{id}"),
        "started",
        serde_json::json!({
            "worker": &*shared.name,
            "attempt": attempt,
            "items": task.items.iter().map(|i| serde_json::json!({
                "task": &i.task.id,
                "epoch": i.epoch,
            })).collect::<Vec<_>>(),
            "by": task.by,
        }),
    )
    .await;
    // Each item's scratch directory is named for this execution and its place in it, not
    // only its task: two runs of the same plan (the same task ids) may have items on one
    // worker at once.
    let key = wire::key(id);
    let solving_tasks: Vec<_> = task
        .items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let mut solving = item.task.clone();
            solving.id = format!("{}-{}-{n}", item.task.id, key.get(..12).unwrap_or(&key));
            solving
        })
        .collect();
    // Each item knows whether its own tools acted (the chunk's mark says only that some did).
    let marks: Vec<Arc<std::sync::atomic::AtomicBool>> =
        task.items.iter().map(|_| Arc::default()).collect();
    let solving = futures_util::future::join_all(
        solving_tasks
            .iter()
            .zip(&task.items)
            .zip(refused)
            .zip(&marks)
            .map(|(((t, item), refused), mark)| {
                let mut target = target.clone();
                let mark = Arc::clone(mark);
                target.before_tools = target.before_tools.take().map(|chunk| {
                    chunk.then(BeforeTools::new(move || {
                        mark.store(true, std::sync::atomic::Ordering::SeqCst);
                        Ok(())
                    }))
                });
                let cancel = &cancel;
                async move {
                    if let Some(why) = refused {
                        return Err(VeyraError::Refused(why));
                    }
                    // Waits here, not in a full queue of the core; a cancel ends the wait.
                    let _permit = tokio::select! {
                        permit = shared.solving.acquire() => match permit {
                            Ok(permit) => permit,
                            Err(_) => {
                                return Err(VeyraError::Runtime("the worker is stopping".into()));
                            }
                        },
                        () = cancel.cancelled() => {
                            return Err(VeyraError::Cancelled("cancelled before it started".into()));
                        }
                    };
                    runner::solve_item(&shared.core, t, item.epoch, &target, cancel).await
                }
            }),
    );
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
    // What the items left must fit in the final record, with room for its other fields,
    // within what this server takes in one message (a server set below the bucket's limit
    // would refuse the record for ever, and the chunk would go round again).
    let limit = wire::MAX_RESULT_BYTES.min(shared.fleet.client.server_info().max_payload);
    let mut room = limit.saturating_sub(wire::MAX_RESULT_ERROR + 4096 + SAID * solved.len());
    let cancelled = cancel.is_cancelled();
    let alone = solved.len() == 1;
    let items: Vec<ItemOutcome> = solved
        .into_iter()
        .zip(&marks)
        .map(|(solved, mark)| {
            let mut outcome = told(solved);
            outcome.acted = mark.load(std::sync::atomic::Ordering::SeqCst);
            kept_within(outcome, &mut room, alone)
        })
        .collect();
    // The chunk ran: its items say how each went. Cancelled, it says so too (the items that
    // finished first keep their outcomes).
    let (status, error, final_status) = if cancelled {
        let why = "cancelled on the fleet".to_string();
        (
            "cancelled",
            Some(why.clone()),
            TaskStatus::Cancelled { reason: why },
        )
    } else {
        ("succeeded", None, TaskStatus::Succeeded)
    };
    // Kept with the fence, as a streamed task's outcome is (see `run_claimed`). The answers
    // travel in the items (the outcome's own text field stays empty).
    let kept = outcome(shared, id, attempt, status, String::new(), error, items);
    if let Err(e) = claim.finish(kept).await {
        tracing::warn!(%id, "the chunk was taken over or its record could not be marked final ({e}); this attempt's outcome is dropped");
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

/// Room kept for each item's outcome beyond what the items leave: an outcome too large for
/// what is left says so in fewer bytes than this.
const SAID: usize = 512;

/// An item's outcome as the chunk's result keeps it.
fn told(solved: Result<SolvedItem, VeyraError>) -> ItemOutcome {
    let (status, error, item) = match solved {
        Ok(solved) => ("succeeded", None, Some(solved)),
        Err(VeyraError::Cancelled(why)) => ("cancelled", Some(why), None),
        Err(e) => ("failed", Some(e.to_string()), None),
    };
    ItemOutcome {
        status: status.into(),
        error: error.map(|e| cut(&e, 2000).to_string()),
        item,
        acted: false,
    }
}

/// `outcome`, taking its size from `room`. When it is larger than what is left, it says so
/// instead (within [`SAID`]): as not kept ([`wire::UNKEPT`]), to be asked for again with fewer
/// items beside it, when its tools did not act and it was not `alone`; else as a failure.
fn kept_within(outcome: ItemOutcome, room: &mut usize, alone: bool) -> ItemOutcome {
    let size = serde_json::to_vec(&outcome).map_or(usize::MAX, |b| b.len() + 1);
    if size <= *room {
        *room -= size;
        return outcome;
    }
    let again = !outcome.acted && !alone && outcome.status != "failed";
    ItemOutcome {
        acted: outcome.acted,
        status: if again { wire::UNKEPT } else { "failed" }.into(),
        error: Some(format!(
            "what the item left is {size} bytes, over the {room} its chunk's result had left{}",
            if again {
                "; asked for again with fewer items beside it"
            } else {
                " (run it with runtime.executor: local)"
            },
            room = *room
        )),
        item: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_that_leaves_more_than_its_chunks_result_has_left_fails_saying_so() {
        let left = |text: &str| {
            told(Ok(SolvedItem {
                text: text.into(),
                ..SolvedItem::default()
            }))
        };
        let mut room = 600;
        let small = kept_within(left("short"), &mut room, false);
        assert_eq!(small.status, "succeeded");
        assert!(room < 600);
        // Too big beside others, nothing acted: not kept, asked for again.
        let big = kept_within(left(&"x".repeat(1000)), &mut room, false);
        assert_eq!(big.status, wire::UNKEPT);
        assert!(big.item.is_none());
        assert!(serde_json::to_vec(&big).unwrap().len() < SAID, "{big:?}");
        let said = big.error.unwrap_or_default();
        assert!(said.contains("bytes, over the"), "{said}");
        // What is left still takes an item that fits.
        assert_eq!(
            kept_within(left("short"), &mut room, false).status,
            "succeeded"
        );
        // Alone, or after its tools acted, it is not asked for again: it fails.
        let alone = kept_within(left(&"x".repeat(1000)), &mut room, true);
        assert_eq!(alone.status, "failed");
        let mut acted = left(&"x".repeat(1000));
        acted.acted = true;
        let acted = kept_within(acted, &mut room, false);
        assert_eq!((acted.status.as_str(), acted.acted), ("failed", true));
        // A failure keeps its reason, cut to its limit; a cancellation says it was one.
        let failed = told(Err(VeyraError::Runtime("y".repeat(5000))));
        assert_eq!(failed.status, "failed");
        assert_eq!(failed.error.map(|e| e.len()), Some(2000));
        let cancelled = told(Err(VeyraError::Cancelled("the run stopped".into())));
        assert_eq!(cancelled.status, "cancelled");
    }
}
