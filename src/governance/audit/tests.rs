//! The entry format and the chain, tested on chains linked here without a trail.

use chrono::SubsecRound;

use super::*;

/// What the tests record: event types, actors and metadata varying with `n`.
pub(crate) fn record(n: usize) -> AuditRecord {
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

/// `record` linked after `prev` as the trail links it (a fresh id, the time now), without a
/// trail.
fn link(record: AuditRecord, prev: Option<&AuditEntry>) -> AuditEntry {
    let mut entry = AuditEntry {
        seq: prev.map_or(1, |p| p.seq + 1),
        id: Uuid::new_v4(),
        timestamp: Utc::now().trunc_subsecs(6),
        event_type: record.event_type,
        actor: record.actor,
        action: record.action,
        resource: record.resource,
        outcome: record.outcome,
        input_summary: record.input_summary,
        metadata: record.metadata,
        prev_hash: prev.map_or_else(|| GENESIS_PREV_HASH.to_string(), |p| p.hash.clone()),
        hash: String::new(),
    };
    entry.hash = entry.compute_hash().unwrap().unwrap();
    entry
}

/// A chain of `n` entries made from [`record`].
fn chain(n: usize) -> Vec<AuditEntry> {
    let mut out: Vec<AuditEntry> = Vec::with_capacity(n);
    for i in 0..n {
        let entry = link(record(i), out.last());
        out.push(entry);
    }
    out
}

#[test]
fn hash_is_sha256_of_prev_and_rfc8785_bytes() {
    let e = &chain(1)[0];
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
fn removed_and_reordered_entries_are_sequence_gaps() {
    let all = chain(5);
    let mut e = all.clone();
    e.remove(2);
    let f = verify_chain(&e).unwrap_err();
    assert_eq!(f.index, 2);
    assert_eq!(f.reason, IntegrityReason::SequenceGap { expected: 3 });

    let mut e = all.clone();
    e.swap(1, 3);
    let f = verify_chain(&e).unwrap_err();
    assert_eq!(f.index, 1);
    assert_eq!(f.reason, IntegrityReason::SequenceGap { expected: 2 });
}

#[test]
fn malformed_hashes_are_reported_not_panicked_on() {
    let all = chain(2);
    let mut e = all.clone();
    e[1].prev_hash = "zz".into();
    assert_eq!(
        verify_chain(&e).unwrap_err().reason,
        IntegrityReason::LinkBroken
    );
    let mut e = all.clone();
    e[1].hash = "ABC".into();
    assert_eq!(
        verify_chain(&e).unwrap_err().reason,
        IntegrityReason::MalformedHash
    );
}

/// The hand-ordered encoding equals a general RFC 8785 encoder on awkward content.
#[test]
fn canonical_bytes_match_a_general_rfc8785_encoder() {
    let mut prev: Option<AuditEntry> = None;
    let awkward = [
        "plain",
        "quote \" backslash \\ slash /",
        "controls \u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f}\u{7f}",
        "unicode é 漢字 😀 \u{2028}",
    ];
    for (i, text) in awkward.iter().enumerate() {
        let entry = link(
            AuditRecord {
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
            },
            prev.as_ref(),
        );
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
        prev = Some(entry);
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
    let mut all = chain(3);
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

/// The event type names are inside every hash: strum's, serde's and the stored spelling must
/// stay these bytes, and parse back only from them.
#[test]
fn event_type_names_are_the_hashed_spellings() {
    let names = [
        "EXECUTION",
        "TOOL_INVOCATION",
        "POLICY_CHECK",
        "SAFETY_CHECK",
        "SAFETY_VIOLATION",
        "CONFIG_CHANGE",
        "LATENCY_CHANGE",
        "BENCHMARK",
        "SYSTEM",
    ];
    for (t, name) in AuditEventType::ALL.into_iter().zip(names) {
        assert_eq!(t.name(), name);
        assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{name}\""));
        assert_eq!(name.parse::<AuditEventType>(), Ok(t));
        assert!(name.to_ascii_lowercase().parse::<AuditEventType>().is_err());
    }
}
