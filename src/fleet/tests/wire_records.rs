//! What crosses the bus read the way a worker of another version wrote it: events a newer
//! worker sends, an outcome in a newer form, and an outcome an earlier version kept apart.

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
async fn an_outcome_an_earlier_version_kept_apart_is_found_and_its_task_not_run_again() {
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
        item: None,
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
    assert!(
        matches!(
            events.last(),
            Some(Event::TaskState {
                status: TaskStatus::Succeeded,
                ..
            })
        ),
        "{events:?}"
    );
    assert!(
        events.iter().any(
            |e| matches!(e, Event::OutputDelta { text, .. } if text == "the answer kept apart")
        ),
        "{events:?}"
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
