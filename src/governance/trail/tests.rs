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

/// A store that counts what is read from it: full verifications and entries visited.
struct Counting {
    inner: MemoryStore,
    verifications: std::sync::atomic::AtomicU64,
    visited: std::sync::atomic::AtomicU64,
}

impl Counting {
    fn take(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.verifications.swap(0, SeqCst),
            self.visited.swap(0, SeqCst),
        )
    }
}

impl AuditStore for Counting {
    fn append(
        &self,
        entry: Arc<AuditEntry>,
        canonical: Vec<u8>,
    ) -> Result<AppendTicket, AuditError> {
        self.inner.append(entry, canonical)
    }
    fn verify_log(&self, anchors: &TrustAnchors) -> Result<VerifyReport, AuditError> {
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.verify_log(anchors)
    }
    fn len(&self) -> Result<u64, AuditError> {
        self.inner.len()
    }
    fn last(&self) -> Result<Option<AuditEntry>, AuditError> {
        self.inner.last()
    }
    fn scan(&self, visit: &mut dyn FnMut(&AuditEntry) -> bool) -> Result<(), AuditError> {
        self.inner.scan(&mut |e| {
            self.visited
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            visit(e)
        })
    }
    fn scan_from(
        &self,
        seq: u64,
        visit: &mut dyn FnMut(&AuditEntry) -> bool,
    ) -> Result<(), AuditError> {
        self.inner.scan_from(seq, &mut |e| {
            self.visited
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            visit(e)
        })
    }
}

#[test]
fn a_proof_reuses_the_last_verification_and_reads_a_few_entries_saying_so() {
    let store = Arc::new(Counting {
        inner: MemoryStore::new(),
        verifications: Default::default(),
        visited: Default::default(),
    });
    let trail = AuditTrail::new(store.clone()).unwrap();
    for i in 0..1000 {
        trail.record_blocking(record(i)).unwrap();
    }
    let leaves: Vec<Vec<u8>> = entries(&trail)
        .iter()
        .map(|e| e.canonical_bytes().unwrap())
        .collect();
    store.take();
    // The first proof verifies the log in full and keeps its tree.
    let first = trail.prove_entry(500).unwrap().expect("a proof");
    assert!(first.fresh);
    assert_eq!((first.verified_entries, first.appended_since), (1000, 0));
    assert_eq!(store.take().0, 1, "one full verification");
    // The next ones verify nothing and read two blocks of entries at most, each the proof of
    // the whole tree.
    for seq in [1, 64, 65, 777, 999, 1000] {
        let p = trail.prove_entry(seq).unwrap().expect("a proof");
        assert!(!p.fresh);
        assert_eq!(p.verified_at, first.verified_at);
        let index = usize::try_from(seq - 1).unwrap();
        assert_eq!(
            Some(&p.inclusion),
            merkle::prove(leaves.clone(), index).as_ref()
        );
        let (verifications, visited) = store.take();
        assert_eq!(verifications, 0);
        assert!(
            visited <= 2 * 64 + 2,
            "{visited} entries read to prove {seq}"
        );
    }
    // Appended since: an old entry is still proved against the verified head, saying how many
    // came after; a new one verifies again.
    for i in 0..3 {
        trail.record_blocking(record(i)).unwrap();
    }
    let old = trail.prove_entry(10).unwrap().expect("a proof");
    assert_eq!(
        (old.fresh, old.verified_entries, old.appended_since),
        (false, 1000, 3)
    );
    assert_eq!(old.inclusion.tree_size, 1000);
    store.take();
    let new = trail.prove_entry(1003).unwrap().expect("a proof");
    assert_eq!(
        (new.fresh, new.verified_entries, new.appended_since),
        (true, 1003, 0)
    );
    assert_eq!(store.take().0, 1);
}

#[test]
fn an_entry_changed_after_the_verification_is_caught_when_proved() {
    let (trail, store) = trail_with(200);
    assert!(trail.prove_entry(150).unwrap().unwrap().fresh);
    // Changed in the block of the entry proved: the cheap proof does not lead to the verified
    // head, and the full check it falls back on names the entry.
    let mut changed = entries(&trail)[129].clone();
    changed.outcome = "failure".into();
    store.overwrite_for_test(129, changed);
    match trail.prove_entry(140) {
        Err(AuditError::Integrity(f)) => assert_eq!(f.seq, 130),
        other => panic!("{other:?}"),
    }
    // A failed verification is no ground for later proofs either.
    assert!(matches!(
        trail.prove_entry(10),
        Err(AuditError::Integrity(_))
    ));
}
