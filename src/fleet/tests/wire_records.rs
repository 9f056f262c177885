//! What crosses the bus read the way a worker of another version wrote it (events a newer
//! worker sends, an outcome in a newer form, an outcome an earlier version kept apart), and
//! the phases a task's record goes through.

use super::*;

#[test]
fn a_message_of_several_events_keeps_those_it_can_read() {
    let id = ExecutionId::new();
    let known = serde_json::to_value(Event::OutputDelta {
        id,
        text: "kept".into(),
    })
    .unwrap();
    let payload = serde_json::to_vec(&serde_json::json!([
        known,
        { "type": "from_a_newer_worker", "id": id },
        known
    ]))
    .unwrap();
    let events = submit::read_events(&payload, id);
    assert_eq!(events.len(), 2, "{events:?}");
    let one = serde_json::to_vec(&known).unwrap();
    assert_eq!(submit::read_events(&one, id).len(), 1);
    assert!(submit::read_events(b"{not json", id).is_empty());
}

#[test]
fn a_record_whose_outcome_this_worker_cannot_read_is_still_read_as_final() {
    // A newer worker's outcome: the head is read, the outcome left alone, never taken for a
    // damaged record (which a worker would overwrite with a loss).
    let newer = br#"{"worker":"w9","attempt":2,"phase":"final","at":"2026-12-06T00:00:00Z","outcome":{"shape":"from a newer worker"}}"#;
    let head = wire::AttemptHead::decode(newer).unwrap();
    assert_eq!(
        (head.worker.as_str(), head.attempt, head.phase),
        ("w9", 2, Phase::Final)
    );
    assert!(head.has_outcome());
    assert!(
        wire::Attempt::decode(newer).is_err(),
        "the whole record is not this version's"
    );
    // An earlier version's final record, its outcome kept apart: read as holding none.
    let earlier = br#"{"worker":"w1","attempt":1,"phase":"final","at":"2026-12-06T00:00:00Z"}"#;
    assert!(!wire::AttemptHead::decode(earlier).unwrap().has_outcome());
    assert!(wire::AttemptHead::decode(&vec![b' '; wire::MAX_RESULT_BYTES + 1]).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_kept_by_other_versions_are_found_left_alone_and_never_run_again() {
    let Some(server) = nats_server() else { return };
    let config = nats(&server.url);
    let fleet = Fleet::connect(&config, None).await.unwrap();
    let submitter = Submitter::new(fleet.clone());
    // An earlier version's worker: the record made final with no outcome, the outcome kept in
    // the `<stream>_RESULTS` bucket.
    let earlier = task("finished by an earlier version");
    let final_record =
        br#"{"worker":"old","attempt":1,"phase":"final","at":"2026-12-06T00:00:00Z"}"#;
    fleet
        .attempts()
        .put(wire::key(earlier.id), final_record.to_vec().into())
        .await
        .unwrap();
    assert!(
        fleet.result(earlier.id).await.unwrap().is_none(),
        "no bucket of results, no outcome"
    );
    let results = ensure_bucket(
        &fleet.js,
        &format!("{}_RESULTS", config.stream),
        Duration::from_secs(3600),
        async_nats::jetstream::stream::StorageType::File,
        wire::MAX_RESULT_BYTES,
    )
    .await
    .unwrap();
    let kept = wire::TaskResult {
        id: earlier.id,
        worker: "old".into(),
        attempt: 1,
        status: "succeeded".into(),
        text: "the answer kept apart".into(),
        error: None,
        at: chrono::Utc::now(),
        items: Vec::new(),
    };
    results
        .put(
            wire::key(earlier.id),
            serde_json::to_vec(&kept).unwrap().into(),
        )
        .await
        .unwrap();
    assert_eq!(fleet.result(earlier.id).await.unwrap(), Some(kept));
    // Delivered to this version's worker: found finished, not run, not told as lost.
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (cores, running) = workers(&config, &[&dir], &stop, |_| {}).await;
    let events = until_final(submitter.submit(earlier.clone()).await.unwrap()).await;
    ends_succeeded(&events);
    assert!(
        events.iter().any(
            |e| matches!(e, Event::OutputDelta { text, .. } if text == "the answer kept apart")
        ),
        "{events:?}"
    );
    // A newer worker's final record, its outcome in a form this version cannot read: left as
    // it is (not overwritten with a loss), and its submitter told it cannot be read.
    let newer = task("finished by a newer version");
    let newer_record = br#"{"worker":"new","attempt":1,"phase":"final","at":"2026-12-06T00:00:00Z","outcome":{"shape":"from a newer worker"}}"#;
    let written = fleet
        .attempts()
        .put(wire::key(newer.id), newer_record.to_vec().into())
        .await
        .unwrap();
    let events = until_final(submitter.submit(newer.clone()).await.unwrap()).await;
    assert!(
        matches!(events.last(), Some(Event::TaskState { status: TaskStatus::Failed { error, .. }, .. }) if error.contains("cannot read")),
        "{events:?}"
    );
    let entry = fleet
        .attempts()
        .entry(wire::key(newer.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        entry.revision, written,
        "the newer record is never overwritten"
    );
    stop.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
    let trail = cores[0].audit().unwrap();
    let entries = trail.query(&AuditFilter::default()).unwrap();
    assert!(
        !entries.iter().any(|e| e.action == "fleet_lost"),
        "not told as lost"
    );
}

/// Runs `task` to its end through `submitter`: the writes its record took (the attempts
/// bucket's stream counts every write; nothing else writes to it meanwhile), and the phases
/// its record was seen in, read every few milliseconds while it ran.
async fn run_watched(fleet: &Fleet, submitter: &Submitter, task: TaskMessage) -> (u64, Vec<Phase>) {
    let stream = format!("KV_{}_ATTEMPTS", fleet.config.stream);
    let writes = || async {
        let stream = fleet.js.get_stream(&stream).await.unwrap();
        stream.cached_info().state.last_sequence
    };
    let before = writes().await;
    let key = wire::key(task.id);
    let attempts = fleet.attempts();
    let seen = tokio::spawn(async move {
        let mut phases: Vec<Phase> = Vec::new();
        loop {
            if let Ok(Some(entry)) = attempts.get(key.clone()).await {
                let phase = wire::AttemptHead::decode(&entry).unwrap().phase;
                if phases.last() != Some(&phase) {
                    phases.push(phase);
                }
                if phase == Phase::Final {
                    return phases;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let events = until_final(submitter.submit(task).await.unwrap()).await;
    ends_succeeded(&events);
    let phases = tokio::time::timeout(Duration::from_secs(10), seen)
        .await
        .unwrap()
        .unwrap();
    (writes().await - before, phases)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_answer_is_never_marked_acted_and_one_that_streams_is() {
    let Some(server) = nats_server() else { return };
    let config = nats(&server.url);
    let fleet = Fleet::connect(&config, None).await.unwrap();
    let submitter = Submitter::new(fleet.clone());
    // At zero token delay the answer ends within the hold: its record claimed, then made final
    // with its outcome — two writes, no mark; its events went out only after that. (Its trail
    // in memory: no disk flush between its text and its end on a loaded machine.)
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (_cores, running) = workers(&config, &[&dir], &stop, |c| {
        c.governance.store = AuditStoreKind::Memory;
    })
    .await;
    let (writes, phases) = run_watched(&fleet, &submitter, task("a short answer")).await;
    assert_eq!(writes, 2, "a claim and the final record: {phases:?}");
    assert!(!phases.contains(&Phase::Acted), "{phases:?}");
    stop.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
    // At 40 ms a token its text outlives the hold: marked acted before it streams.
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (_cores, running) = workers(&config, &[&dir], &stop, |c| {
        c.model.mock.token_delay_ms = 40;
    })
    .await;
    let (writes, phases) = run_watched(&fleet, &submitter, task("an answer that streams")).await;
    assert!(phases.contains(&Phase::Acted), "{phases:?}");
    assert_eq!(phases.last(), Some(&Phase::Final));
    assert!(
        writes >= 3,
        "a claim, the mark and the final record: {writes}"
    );
    stop.cancel();
    for r in running {
        r.await.unwrap().unwrap();
    }
}
