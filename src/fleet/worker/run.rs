//! A claimed task run through this worker's core: the redelivery told and recorded, the
//! request built within the worker's tool offer, its events streamed (the attempt marked acted
//! before its first tool or text), the record fenced final and the outcome kept.

use super::*;

/// Longest a task's events are held back before they are published: its first text, before
/// the attempt is marked acted and it streams, and the events before it (see [`run_claimed`]).
const HOLD: Duration = Duration::from_millis(25);

/// Runs attempt `attempt` of a task this worker has claimed (its record at `revision`, written
/// by this worker); `before`: the lost worker's record, when this is a redelivery.
pub(super) async fn run_claimed(
    shared: &Shared,
    message: &jetstream::Message,
    task: &TaskMessage,
    delivered: i64,
    before: Option<AttemptHead>,
    attempt: u32,
    revision: u64,
) -> Result<Handled, VeyraError> {
    let id = task.id;
    let key = wire::key(id);
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
    if !task.items.is_empty() {
        return super::item::run_items(shared, message, task, claim, attempt).await;
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
            return lose(shared, task, attempt, &e, Some(now), Loss::Refused).await;
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
        // Not taken now (a full queue, a shutdown, an id still held): handed back, its claim
        // released (nothing of it ran), so the next worker claims it afresh.
        Err(e @ VeyraError::Runtime(_)) => {
            claim.release().await;
            return Err(e);
        }
        // Never taken here (a backend or model this worker does not have): failed, with why.
        Err(e) => {
            let why = format!("worker {} cannot run it: {e}", shared.name);
            let now = claim.revision().await;
            return lose(shared, task, attempt, &why, Some(now), Loss::Refused).await;
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
    // Events that are ready together go out as one message, deltas joined: fewer messages on
    // the bus, the same events and text for the submitter.
    let mut ready: Vec<Event> = Vec::new();
    // Its events are held back for up to HOLD from the first one not yet published, and its
    // first text for up to HOLD from that text: a task that ends within it publishes them with
    // its outcome, in one message, once that is kept, and so never needs the acted mark
    // (nothing of it reached its submitter before it was final; a console watching the
    // worker's journal may have seen it, and starts the row again if the task runs again
    // elsewhere). Events without text whose hold ends go out as they are; once text's hold
    // ends, the attempt is marked acted and it streams from there.
    let mut holding: Option<tokio::time::Instant> = None;
    // Text has gone out: everything is published as it comes.
    let mut released = false;
    // What is held holds text.
    let mut held_text = false;
    let mut ended = false;
    while !ended {
        let mut next = tokio::select! {
            event = stream.next() => event,
            _ = progress.tick() => {
                let _ = message.ack_with(AckKind::Progress).await;
                claim.renew().await;
                continue;
            }
            () = tokio::time::sleep_until(holding.unwrap_or_else(tokio::time::Instant::now)), if holding.is_some() => {
                holding = None;
                released = held_text;
                held_text = false;
                publish_ready(shared, &claim, &events, &mut ready).await?;
                continue;
            }
        };
        loop {
            let Some(mut event) = next else {
                ended = true;
                break;
            };
            // The core counts its own attempts; on the fleet, earlier workers' count too.
            if let Event::TaskState { attempt: local, .. } = &mut event
                && *local > 0
            {
                *local = local.saturating_add(attempt - 1);
            }
            let mut joined = false;
            if !released {
                let is_text = matches!(event, Event::OutputDelta { .. });
                if is_text && !held_text {
                    held_text = true;
                    holding = Some(tokio::time::Instant::now() + HOLD);
                } else if holding.is_none() {
                    holding = Some(tokio::time::Instant::now() + HOLD);
                }
            }
            if let Event::OutputDelta { text: piece, .. } = &event {
                if text.len() < wire::MAX_RESULT_TEXT {
                    text.push_str(piece);
                }
                if let Some(Event::OutputDelta { text: waiting, .. }) = ready.last_mut()
                    && waiting.len() < MAX_EVENT_TEXT
                {
                    waiting.push_str(piece);
                    joined = true;
                }
            }
            if event.is_terminal() {
                last = Some(event);
                ended = true;
                break;
            }
            if !joined {
                ready.push(event);
            }
            match stream.next().now_or_never() {
                Some(more) => next = more,
                None => break,
            }
        }
        // Held text that outgrows one message is not held longer.
        if holding.is_some() && !ended && text.len() >= MAX_EVENT_TEXT {
            holding = None;
            released = true;
        }
        if released {
            publish_ready(shared, &claim, &events, &mut ready).await?;
        }
    }
    watched.ended = last.is_some();
    if last.is_none() {
        claim.release().await;
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
    // Kept with the fence: the record moves to final, holding the outcome, over this
    // worker's own revision, so a worker that took the task over meanwhile (and may be running
    // it) makes this fail, and this attempt's outcome is dropped rather than told beside that
    // one's.
    let room = cut(&text, text_room(shared)).len();
    text.truncate(room);
    let kept = outcome(shared, id, attempt, status_name, text, error, Vec::new());
    if let Err(e) = claim.finish(kept).await {
        tracing::warn!(%id, "the task was taken over or its record could not be marked final ({e}); this attempt's outcome is dropped");
        return Ok(Handled::Held);
    }
    // What was held back goes out now the outcome is kept, with the outcome: one message.
    ready.extend(last);
    publish_all(shared, &events, &ready).await;
    Ok(Handled::Done)
}

/// Publishes the events ready to go, the attempt marked acted first when they hold answer
/// text (its answer about to reach the submitter: the attempt has acted from here).
async fn publish_ready(
    shared: &Shared,
    claim: &Claim,
    subject: &str,
    ready: &mut Vec<Event>,
) -> Result<(), VeyraError> {
    if ready.iter().any(|e| matches!(e, Event::OutputDelta { .. })) {
        claim.acted().await.map_err(VeyraError::Runtime)?;
    }
    publish_all(shared, subject, ready).await;
    ready.clear();
    Ok(())
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
pub(in crate::fleet) fn offered_for_tests(
    core: &VeyraCore,
    asked: Option<&str>,
) -> Result<crate::config::ToolSelection, String> {
    offered(core, asked)
}
