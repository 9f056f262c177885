use std::sync::Arc;

use super::*;
use crate::governance::MemoryStore;

fn record(n: usize) -> AuditRecord {
    AuditRecord {
        event_type: if n.is_multiple_of(2) {
            AuditEventType::Execution
        } else {
            AuditEventType::System
        },
        actor: if n.is_multiple_of(3) {
            "operator".into()
        } else {
            "agent".into()
        },
        action: "execute".into(),
        resource: "backend:mock".into(),
        outcome: "success".into(),
        input_summary: summarize_input(&format!("prompt {n}")),
        metadata: serde_json::json!({ "n": n, "nested": { "b": 1, "a": [1, 2] } }),
    }
}

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
fn hash_is_sha256_of_prev_and_rfc8785_bytes() {
    let (trail, _) = trail_with(1);
    let e = &entries(&trail)[0];
    let canonical = String::from_utf8(e.canonical_bytes().unwrap()).unwrap();
    // RFC 8785: keys sorted, no white space; nested object keys sorted too.
    assert!(
        canonical.starts_with(
            r#"{"action":"execute","actor":"operator","event_type":"EXECUTION","id":""#
        ),
        "{canonical}"
    );
    assert!(
        canonical.contains(r#""metadata":{"n":0,"nested":{"a":[1,2],"b":1}}"#),
        "{canonical}"
    );
    assert!(!canonical.contains("prev_hash") && !canonical.contains("\"hash\""));
    let mut h = Sha256::new();
    h.update([0u8; 32]);
    h.update(canonical.as_bytes());
    assert_eq!(e.hash, hex::encode(h.finalize()));
}

#[test]
fn input_summaries_hide_the_input() {
    let s = summarize_input("launch codes 1234");
    assert!(s.starts_with("hash:") && s.ends_with(":len:17"), "{s}");
    assert_eq!(s.len(), "hash:".len() + 16 + ":len:17".len());
    assert!(!s.contains("launch"));
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

#[test]
fn removed_and_reordered_entries_are_sequence_gaps() {
    let (trail, _) = trail_with(5);
    let mut e = entries(&trail);
    e.remove(2);
    let f = verify_chain(&e).unwrap_err();
    assert_eq!(f.index, 2);
    assert_eq!(f.reason, IntegrityReason::SequenceGap { expected: 3 });

    let mut e = entries(&trail);
    e.swap(1, 3);
    let f = verify_chain(&e).unwrap_err();
    assert_eq!(f.index, 1);
    assert_eq!(f.reason, IntegrityReason::SequenceGap { expected: 2 });
}

#[test]
fn malformed_hashes_are_reported_not_panicked_on() {
    let (trail, _) = trail_with(2);
    let mut e = entries(&trail);
    e[1].prev_hash = "zz".into();
    assert_eq!(
        verify_chain(&e).unwrap_err().reason,
        IntegrityReason::LinkBroken
    );
    let mut e = entries(&trail);
    e[1].hash = "ABC".into();
    assert_eq!(
        verify_chain(&e).unwrap_err().reason,
        IntegrityReason::MalformedHash
    );
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

/// The hand-ordered encoding equals a general RFC 8785 encoder on awkward content.
#[test]
fn canonical_bytes_match_a_general_rfc8785_encoder() {
    let trail = AuditTrail::in_memory();
    let awkward = [
        "plain",
        "quote \" backslash \\ slash /",
        "controls \u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f}\u{7f}",
        "unicode é 漢字 😀 \u{2028}",
    ];
    for (i, text) in awkward.iter().enumerate() {
        let entry = trail
            .record_blocking(AuditRecord {
                event_type: AuditEventType::ALL[i % 9],
                actor: text.to_string(),
                action: text.to_string(),
                resource: text.to_string(),
                outcome: text.to_string(),
                input_summary: summarize_input(text),
                metadata: serde_json::json!({
                    "z": [1.5, -0.0, 1e21, 3], "a": { "é": text, "e": null, "b": true },
                    text.to_string(): u64::MAX,
                }),
            })
            .unwrap();
        let general = serde_json_canonicalizer::to_vec(&serde_json::json!({
            "seq": entry.seq,
            "id": entry.id,
            "timestamp": entry.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "event_type": entry.event_type,
            "actor": entry.actor,
            "action": entry.action,
            "resource": entry.resource,
            "outcome": entry.outcome,
            "input_summary": entry.input_summary,
            "metadata": entry.metadata,
        }))
        .unwrap();
        assert_eq!(
            String::from_utf8(entry.canonical_bytes().unwrap()).unwrap(),
            String::from_utf8(general).unwrap(),
            "{text:?}"
        );
    }
}

mod plain_canonical {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::super::{is_plainly_canonical, write_plain};

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
            "[\u{0}-\u{1f}\"\\\\/a]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                // Keys in generated order: serde_json's Map keeps insertion order when any
                // crate in the build turns on `preserve_order` (cedar-policy does).
                prop::collection::vec(("[a-z_é😀]{0,5}", inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Where the fast path is taken, it writes exactly what the RFC 8785 encoder writes.
        #[test]
        fn fast_path_agrees_with_rfc8785(value in json()) {
            if is_plainly_canonical(&value) {
                let mut fast = Vec::new();
                write_plain(&mut fast, &value).unwrap();
                prop_assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    serde_json_canonicalizer::to_string(&value).unwrap()
                );
            }
        }
    }
}

#[test]
fn timestamps_are_written_as_rfc3339_with_micros() {
    use chrono::TimeZone;
    for t in [
        Utc.with_ymd_and_hms(2026, 1, 9, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap()
            + chrono::Duration::microseconds(999_999),
        Utc.with_ymd_and_hms(2000, 2, 29, 7, 5, 3).unwrap() + chrono::Duration::microseconds(42),
    ] {
        let mut out = Vec::new();
        super::push_timestamp(&mut out, &t);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        );
    }
    let mut out = Vec::new();
    super::push_digits(&mut out, 0, 1);
    super::push_digits(&mut out, 18_446_744_073_709_551_615, 1);
    assert_eq!(out, b"018446744073709551615");
}

#[test]
fn stored_fields_compose_the_canonical_bytes() {
    let (trail, _) = trail_with(3);
    let mut all = entries(&trail);
    all[1].actor = "quote \" backslash \\ control \u{1} emoji 🛰 \u{2028}".into();
    all[2].metadata =
        serde_json::json!({ "z": [1.5, "é", null], "a": { "b": 9007199254740993u64 } });
    for e in &all {
        let metadata = canonical_json(&e.metadata).unwrap();
        let id = e.id.hyphenated().to_string();
        let timestamp = e
            .timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let fields = StoredFields {
            seq: e.seq,
            id: &id,
            timestamp: &timestamp,
            event_type: e.event_type.name(),
            actor: &e.actor,
            action: &e.action,
            resource: &e.resource,
            outcome: &e.outcome,
            input_summary: &e.input_summary,
            metadata: &metadata,
        };
        let mut out = Vec::new();
        fields.compose(&mut out).unwrap();
        assert_eq!(out, e.canonical_bytes().unwrap());
        // Shapes that could hide a field boundary are refused.
        let mut bad = fields;
        bad.metadata = "{} ,\"outcome\":\"x\"";
        assert!(bad.compose(&mut out).is_err());
        let mut bad = fields;
        bad.id = "00000000-0000-0000-0000-00000000000\"";
        assert!(bad.compose(&mut out).is_err());
        let mut bad = fields;
        bad.timestamp = "2020-01-01T00:00:00.00000\"Z";
        assert!(bad.compose(&mut out).is_err());
    }
}
