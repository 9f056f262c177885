//! The trail's tests: recording, resuming, queries, exports, proofs, and tampering with what
//! a store holds caught by its verification.

use std::sync::Arc;

use super::*;
use crate::governance::audit::tests::record;

fn trail_with(n: usize) -> (AuditTrail, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let trail = AuditTrail::new(store.clone()).unwrap();
    for i in 0..n {
        trail.record_blocking(record(i)).unwrap();
    }
    (trail, store)
}

fn entries(trail: &AuditTrail) -> Vec<AuditEntry> {
    trail.query(&AuditFilter::default()).unwrap()
}

#[test]
fn export_round_trips_through_json_and_verifies() {
    let (trail, _) = trail_with(6);
    let export = trail.export(&AuditFilter::default()).unwrap();
    assert!(!export.filtered);
    let text = serde_json::to_string_pretty(&export).unwrap();
    let back: AuditExport = serde_json::from_str(&text).unwrap();
    assert_eq!(back, export);
    // An in-memory trail signs nothing, so its export has no covering checkpoint.
    let anchors = crate::governance::TrustAnchors::default();
    let f = back.verify(&anchors).unwrap_err();
    assert_eq!(f.reason, IntegrityReason::Unsigned { first: 1, last: 6 });

    let edited = text.replacen("\"success\"", "\"failure\"", 1);
    let back: AuditExport = serde_json::from_str(&edited).unwrap();
    let f = back.verify(&anchors).unwrap_err();
    assert_eq!((f.seq, f.reason), (1, IntegrityReason::ContentChanged));
}

#[test]
fn query_filters_by_type_actor_and_time() {
    let (trail, _) = trail_with(6);
    let all = entries(&trail);
    // From an entry on: the rest of the chain, filtered the same way.
    let from = |seq| {
        trail
            .query_from(
                seq,
                &AuditFilter {
                    event_type: Some(AuditEventType::System),
                    ..Default::default()
                },
            )
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(from(0), vec![2, 4, 6]);
    assert_eq!(from(3), vec![4, 6]);
    assert_eq!(from(7), Vec::<u64>::new());
    let by_type = trail
        .query(&AuditFilter {
            event_type: Some(AuditEventType::System),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        by_type.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 4, 6]
    );
    let by_actor = trail
        .query(&AuditFilter {
            actor: Some("operator".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        by_actor.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 4]
    );
    let window = trail
        .query(&AuditFilter {
            since: Some(all[2].timestamp),
            until: Some(all[3].timestamp),
            ..Default::default()
        })
        .unwrap();
    assert!(
        window
            .iter()
            .all(|e| e.timestamp >= all[2].timestamp && e.timestamp <= all[3].timestamp)
    );
    assert!(window.iter().any(|e| e.seq == 3));
    assert!(
        trail
            .export(&AuditFilter {
                actor: Some("x".into()),
                ..Default::default()
            })
            .unwrap()
            .filtered
    );
}

#[test]
fn a_trail_resumes_after_the_newest_stored_entry() {
    let (trail, store) = trail_with(3);
    let head = trail.head_hash();
    let resumed = AuditTrail::new(store).unwrap();
    assert_eq!(resumed.len(), 3);
    let next = resumed.record_blocking(record(9)).unwrap();
    assert_eq!(next.seq, 4);
    assert_eq!(next.prev_hash, head);
    resumed.verify_integrity().unwrap();
}

#[test]
fn metadata_must_be_an_object() {
    let trail = AuditTrail::in_memory();
    let mut r = record(0);
    r.metadata = serde_json::json!([1]);
    assert!(matches!(
        trail.record_blocking(r),
        Err(AuditError::Encode(_))
    ));
    assert!(trail.is_empty());
}

#[test]
fn one_entry_is_read_and_proved_by_its_sequence_number() {
    let (trail, store) = trail_with(7);
    let all = entries(&trail);
    let leaves: Vec<Vec<u8>> = all.iter().map(|e| e.canonical_bytes().unwrap()).collect();
    let head = hex::encode(trail.merkle_root().unwrap());
    for e in &all {
        assert_eq!(trail.entry(e.seq).unwrap().as_ref(), Some(e));
        let proof = trail.prove(e.seq).unwrap().expect("a proof");
        let index = usize::try_from(e.seq - 1).unwrap();
        assert_eq!(Some(&proof), merkle::prove(leaves.clone(), index).as_ref());
        assert_eq!(proof.root, head);
    }
    for absent in [0, 8, u64::MAX] {
        assert_eq!(trail.entry(absent).unwrap(), None);
        assert_eq!(trail.prove(absent).unwrap(), None);
    }
    // A changed entry is not proved: the store does not verify.
    let mut changed = all[2].clone();
    changed.outcome = "failure".into();
    store.overwrite_for_test(2, changed);
    assert!(matches!(trail.prove(5), Err(AuditError::Integrity(_))));
}

#[test]
fn chain_starts_at_genesis_and_links() {
    let (trail, _) = trail_with(3);
    let e = entries(&trail);
    assert_eq!(e[0].seq, 1);
    assert_eq!(e[0].prev_hash, GENESIS_PREV_HASH);
    assert_eq!(e[1].prev_hash, e[0].hash);
    assert_eq!(e[2].prev_hash, e[1].hash);
    assert_eq!(trail.head_hash(), e[2].hash);
    let report = trail.verify_integrity().unwrap();
    assert_eq!(report.entries, 3);
    assert_eq!(report.head, e[2].hash);
}

#[test]
fn tampering_with_any_field_names_the_entry() {
    type Mutation = Box<dyn Fn(&mut AuditEntry)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        ("actor", Box::new(|e| e.actor.push('x'))),
        ("action", Box::new(|e| e.action = "delete".into())),
        ("resource", Box::new(|e| e.resource.clear())),
        ("outcome", Box::new(|e| e.outcome = "failure".into())),
        ("input_summary", Box::new(|e| e.input_summary.push('0'))),
        ("metadata", Box::new(|e| e.metadata["n"] = 99.into())),
        (
            "timestamp",
            Box::new(|e| e.timestamp += chrono::Duration::microseconds(1)),
        ),
        (
            "event_type",
            Box::new(|e| e.event_type = AuditEventType::SafetyViolation),
        ),
        ("id", Box::new(|e| e.id = uuid::Uuid::nil())),
    ];
    for (field, mutate) in mutations {
        let (trail, store) = trail_with(4);
        let mut e = entries(&trail)[2].clone();
        mutate(&mut e);
        store.overwrite_for_test(2, e);
        match trail.verify_integrity() {
            Err(AuditError::Integrity(f)) => {
                assert_eq!((f.index, f.seq), (2, 3), "{field}");
                assert_eq!(f.reason, IntegrityReason::ContentChanged, "{field}");
            }
            other => panic!("{field}: tampering not detected: {other:?}"),
        }
    }
}

#[test]
fn rewriting_a_hash_breaks_the_next_link() {
    let (trail, store) = trail_with(4);
    let mut e = entries(&trail)[1].clone();
    e.outcome = "forged".into();
    e.hash = e.compute_hash().unwrap().unwrap();
    store.overwrite_for_test(1, e);
    let f = match trail.verify_integrity() {
        Err(AuditError::Integrity(f)) => f,
        other => panic!("{other:?}"),
    };
    assert_eq!((f.index, f.reason), (2, IntegrityReason::LinkBroken));
}
