//! The audit entry and its hash chain (DESIGN §6): the format every other part of governance
//! reads and writes. The trail that records entries (`trail.rs`) builds on it.
//!
//! # Format
//! An [`AuditEntry`] has a sequence number (from 1), id, timestamp (UTC, RFC 3339 with
//! microseconds, `Z`), event type, actor, action, resource, outcome, input summary, metadata (a
//! JSON object), `prev_hash` and `hash`.
//!
//! **Canonical bytes** of an entry are the RFC 8785 (JSON Canonicalization Scheme) encoding, made
//! by `serde_json_canonicalizer`, of the JSON object holding every field except `prev_hash` and
//! `hash`: `{"action","actor","event_type","id","input_summary","metadata","outcome","resource",
//! "seq","timestamp"}` — keys sorted by UTF-16 code units, no insignificant white space, numbers
//! in ECMAScript form, strings minimally escaped. [`AuditEntry::canonical_bytes`] writes them
//! from an entry; `StoredFields::compose` writes the same bytes from the columns a store keeps,
//! so a store's rows are checked without parsing them.
//!
//! **Chain**: `hash = SHA-256(prev_hash ‖ canonical bytes)`, where `prev_hash` enters as its 32
//! raw bytes; both are written as 64 lowercase hex digits. The first entry's `prev_hash` is 64
//! zeros ([`GENESIS_PREV_HASH`]). Changing any field of any entry changes its hash and breaks the
//! link of the entry after it; [`verify_chain`] names the first entry where that shows.
//!
//! Input summaries never hold raw prompts: [`summarize_input`] gives `hash:<16 hex>:len:<bytes>`.
//! [`AuditFilter`] selects entries for queries and exports.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::AuditError;
use super::integrity::{IntegrityFailure, IntegrityReason, VerifyReport};

/// `prev_hash` of the first entry.
pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// What kind of thing an entry records (DESIGN §6).
///
/// Its names are part of the hashed bytes: serde and strum spell them the same, and parsing
/// (`"TOOL_INVOCATION".parse()`) takes only that exact spelling.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditEventType {
    /// A prompt was executed.
    Execution,
    /// A tool was invoked.
    ToolInvocation,
    /// A policy decision was taken.
    PolicyCheck,
    /// A safety check was made.
    SafetyCheck,
    /// The safety boundary refused something.
    SafetyViolation,
    /// Configuration changed at run time.
    ConfigChange,
    /// The simulated link changed.
    LatencyChange,
    /// A benchmark ran.
    Benchmark,
    /// The system itself (start, stop).
    System,
}

impl AuditEventType {
    /// Every type, in the order of DESIGN §6.
    pub const ALL: [AuditEventType; 9] = [
        AuditEventType::Execution,
        AuditEventType::ToolInvocation,
        AuditEventType::PolicyCheck,
        AuditEventType::SafetyCheck,
        AuditEventType::SafetyViolation,
        AuditEventType::ConfigChange,
        AuditEventType::LatencyChange,
        AuditEventType::Benchmark,
        AuditEventType::System,
    ];

    /// The name as written in entries (`EXECUTION`, …).
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for AuditEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a caller asks the trail to record; the trail adds sequence, id, time and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Kind of entry.
    pub event_type: AuditEventType,
    /// Who acted (`operator`, `agent`, `benchmark`, `system`).
    pub actor: String,
    /// What was done (`execute`, `invoke_tool`, …).
    pub action: String,
    /// What it was done to (a backend, a tool, a file).
    pub resource: String,
    /// How it ended (`success`, `failure`, `denied`, …).
    pub outcome: String,
    /// A digest of the input, never the input: see [`summarize_input`].
    pub input_summary: String,
    /// Extra facts; must be a JSON object.
    pub metadata: serde_json::Value,
}

/// One link of the chain. See the module docs for the exact format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// Unique id of the entry.
    pub id: Uuid,
    /// When it was recorded (UTC, microsecond precision).
    #[serde(with = "rfc3339_micros")]
    pub timestamp: DateTime<Utc>,
    /// Kind of entry.
    pub event_type: AuditEventType,
    /// Who acted.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub resource: String,
    /// How it ended.
    pub outcome: String,
    /// Digest of the input.
    pub input_summary: String,
    /// Extra facts (a JSON object).
    pub metadata: serde_json::Value,
    /// Hash of the entry before (hex), or 64 zeros.
    pub prev_hash: String,
    /// `SHA-256(prev_hash ‖ canonical bytes)` (hex).
    pub hash: String,
}

impl AuditEntry {
    /// The RFC 8785 canonical bytes of every field but `prev_hash` and `hash`.
    ///
    /// Written field by field in RFC 8785 key order (the keys are ASCII, so UTF-16 order is
    /// byte order): `action, actor, event_type, id, input_summary, metadata, outcome, resource,
    /// seq, timestamp`. Strings go through `serde_json`, which escapes exactly as RFC 8785 does
    /// (`\"`, `\\`, `\b\f\n\r\t`, other controls as lowercase `\u00xx`, nothing else); `seq` is a
    /// plain integer; `metadata` is canonicalized by `serde_json_canonicalizer` unless it is
    /// plainly canonical already (see `is_plainly_canonical`). Tests check the result byte for
    /// byte against `serde_json_canonicalizer` over the whole body.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, AuditError> {
        let encode = |e: serde_json::Error| AuditError::Encode(e.to_string());
        let mut out = Vec::with_capacity(384);
        let field = |out: &mut Vec<u8>, key: &str, value: &str| -> Result<(), AuditError> {
            out.extend_from_slice(key.as_bytes());
            serde_json::to_writer(&mut *out, value).map_err(encode)
        };
        field(&mut out, "{\"action\":", &self.action)?;
        field(&mut out, ",\"actor\":", &self.actor)?;
        field(&mut out, ",\"event_type\":", self.event_type.name())?;
        let mut id = uuid::Uuid::encode_buffer();
        field(
            &mut out,
            ",\"id\":",
            self.id.hyphenated().encode_lower(&mut id),
        )?;
        field(&mut out, ",\"input_summary\":", &self.input_summary)?;
        out.extend_from_slice(b",\"metadata\":");
        write_canonical(&mut out, &self.metadata)?;
        field(&mut out, ",\"outcome\":", &self.outcome)?;
        field(&mut out, ",\"resource\":", &self.resource)?;
        out.extend_from_slice(b",\"seq\":");
        push_digits(&mut out, self.seq, 1);
        out.extend_from_slice(b",\"timestamp\":\"");
        push_timestamp(&mut out, &self.timestamp);
        out.extend_from_slice(b"\"}");
        Ok(out)
    }

    /// Recomputes this entry's hash from its fields and `prev_hash`.
    /// `None` when `prev_hash` is not 64 hex digits.
    pub fn compute_hash(&self) -> Result<Option<String>, AuditError> {
        let Some(prev) = decode_hash(&self.prev_hash) else {
            return Ok(None);
        };
        Ok(Some(chain_hash(&prev, &self.canonical_bytes()?)))
    }

    /// The first 12 hex digits of the hash, for narrow displays.
    pub fn short_hash(&self) -> &str {
        self.hash.get(..12).unwrap_or(&self.hash)
    }
}

/// Appends `n` in decimal, zero-padded to at least `width` digits.
pub(crate) fn push_digits(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for _ in (buf.len() - i)..width {
        out.push(b'0');
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `t` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` — the same text as
/// `to_rfc3339_opts(SecondsFormat::Micros, true)` (a test checks), without the formatter.
fn push_timestamp(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .as_bytes(),
        );
        return;
    }
    push_digits(out, year as u64, 4);
    out.push(b'-');
    push_digits(out, u64::from(t.month()), 2);
    out.push(b'-');
    push_digits(out, u64::from(t.day()), 2);
    out.push(b'T');
    push_digits(out, u64::from(t.hour()), 2);
    out.push(b':');
    push_digits(out, u64::from(t.minute()), 2);
    out.push(b':');
    push_digits(out, u64::from(t.second()), 2);
    out.push(b'.');
    // Leap seconds show as 60 in chrono's nanosecond field overflow; micros stay 6 digits.
    push_digits(out, u64::from(t.nanosecond() % 1_000_000_000 / 1000), 6);
    out.push(b'Z');
}

/// True when [`write_plain`] writes `value` in RFC 8785 form: every object key is ASCII (so
/// byte order is RFC 8785's UTF-16 order) and every number is an integer of at most 2^53 in
/// magnitude (RFC 8785 writes numbers as IEEE doubles, so floats and larger integers are where
/// the two differ). Audit metadata is almost always such a value; anything else goes through
/// `serde_json_canonicalizer`. A property test checks the two encoders agree on every value
/// this accepts.
pub(crate) fn is_plainly_canonical(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => true,
        Value::Number(n) => {
            const EXACT: u64 = 1 << 53;
            n.as_i64().is_some_and(|i| i.unsigned_abs() <= EXACT)
                || n.as_u64().is_some_and(|u| u <= EXACT)
        }
        Value::Array(items) => items.iter().all(is_plainly_canonical),
        Value::Object(map) => map
            .iter()
            .all(|(k, v)| k.is_ascii() && is_plainly_canonical(v)),
    }
}

/// Appends the RFC 8785 form of `value`.
fn write_canonical(out: &mut Vec<u8>, value: &serde_json::Value) -> Result<(), AuditError> {
    let encode = |e: serde_json::Error| AuditError::Encode(e.to_string());
    if is_plainly_canonical(value) {
        write_plain(out, value).map_err(encode)
    } else {
        serde_json_canonicalizer::to_writer(value, out).map_err(encode)
    }
}

/// The RFC 8785 text of `value`: the one spelling the store keeps metadata in, so any other
/// spelling of the same value read back from a store is a changed entry.
pub(crate) fn canonical_json(value: &serde_json::Value) -> Result<String, AuditError> {
    let mut out = Vec::with_capacity(128);
    write_canonical(&mut out, value)?;
    String::from_utf8(out).map_err(|e| AuditError::Encode(e.to_string()))
}

/// Writes a value [`is_plainly_canonical`] accepts in RFC 8785 form: objects with their keys
/// sorted, no white space; strings and integers as `serde_json` writes them (the same escapes
/// as RFC 8785). Keys are sorted here rather than trusted to `serde_json::Map`, whose order is
/// insertion order when any crate in the build enables serde_json's `preserve_order`.
fn write_plain(out: &mut Vec<u8>, value: &serde_json::Value) -> Result<(), serde_json::Error> {
    use serde_json::Value;
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_plain(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k)?;
                out.push(b':');
                write_plain(out, v)?;
            }
            out.push(b'}');
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            serde_json::to_writer(&mut *out, value)?;
        }
    }
    Ok(())
}

/// `SHA-256(prev ‖ canonical)`.
pub(crate) fn chain_digest(prev: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    h.finalize().into()
}

/// `SHA-256(prev ‖ canonical)` as lowercase hex.
pub(crate) fn chain_hash(prev: &[u8; 32], canonical: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    hex::encode(h.finalize())
}

/// Decodes 64 lowercase hex digits.
/// Value of each lowercase hex digit; 0xff for every other byte (uppercase included: hashes
/// are written in lowercase, and a changed case is a changed entry).
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Decodes 64 lowercase hex digits (verification decodes two per entry, so this is hot).
pub(crate) fn decode_hash(hex_text: &str) -> Option<[u8; 32]> {
    let bytes = hex_text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let (hi, lo) = (
            HEX_VALUE[usize::from(pair[0])],
            HEX_VALUE[usize::from(pair[1])],
        );
        if (hi | lo) & 0xf0 != 0 {
            return None;
        }
        out[i] = (hi << 4) | lo;
    }
    Some(out)
}

/// `hash:<first 16 hex digits of SHA-256>:len:<length in bytes>` — identifies an input without
/// revealing it.
pub fn summarize_input(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    let mut prefix = hex::encode(&digest[..8]);
    prefix.truncate(16);
    format!("hash:{prefix}:len:{}", input.len())
}

/// Verifies a chain: sequence numbers from 1 without gaps, every `prev_hash` linking to the hash
/// before it, every hash matching the entry's content. Stops at the first bad entry.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> Result<VerifyReport, IntegrityFailure> {
    let mut verifier = ChainVerifier::default();
    for entry in entries {
        verifier.check(entry)?;
    }
    Ok(verifier.report())
}

/// Incremental form of [`verify_chain`], for stores that stream entries.
#[derive(Debug, Default)]
pub(crate) struct ChainVerifier {
    index: u64,
    prev: [u8; 32],
}

impl ChainVerifier {
    /// A verifier that continues after `entries` entries whose last hash is `prev`.
    pub(crate) fn resume(entries: u64, prev: [u8; 32]) -> Self {
        ChainVerifier {
            index: entries,
            prev,
        }
    }

    /// Checks the next entry; returns its canonical bytes.
    pub(crate) fn check(&mut self, entry: &AuditEntry) -> Result<Vec<u8>, IntegrityFailure> {
        let canonical = entry.canonical_bytes().map_err(|e| IntegrityFailure {
            index: self.index,
            seq: entry.seq,
            reason: IntegrityReason::Unencodable(e.to_string()),
        })?;
        self.check_bytes(entry.seq, &entry.prev_hash, &entry.hash, &canonical)?;
        Ok(canonical)
    }

    /// Checks the next entry given as its sequence number, links and canonical bytes (which the
    /// caller has tied to the entry's fields).
    pub(crate) fn check_bytes(
        &mut self,
        seq: u64,
        prev_hash: &str,
        hash: &str,
        canonical: &[u8],
    ) -> Result<(), IntegrityFailure> {
        let prev = decode_hash(prev_hash);
        let computed = prev.map(|p| chain_digest(&p, canonical));
        self.check_decoded(seq, prev, decode_hash(hash), computed)
            .map(|_| ())
    }

    /// [`ChainVerifier::check_bytes`] with the links decoded (`None` where not 64 lowercase
    /// hex digits) and the chain hash computed elsewhere (on another thread) as
    /// `SHA-256(prev_hash ‖ canonical)` from the entry's own `prev_hash`. Once the link holds,
    /// that `prev_hash` is this verifier's previous hash, so the result is the same. Returns the
    /// entry's hash.
    pub(crate) fn check_decoded(
        &mut self,
        seq: u64,
        prev_hash: Option<[u8; 32]>,
        hash: Option<[u8; 32]>,
        computed: Option<[u8; 32]>,
    ) -> Result<[u8; 32], IntegrityFailure> {
        let fail = |reason| IntegrityFailure {
            index: self.index,
            seq,
            reason,
        };
        let expected = self.index + 1;
        if seq != expected {
            return Err(fail(IntegrityReason::SequenceGap { expected }));
        }
        if prev_hash != Some(self.prev) {
            return Err(fail(IntegrityReason::LinkBroken));
        }
        let Some(recorded) = hash else {
            return Err(fail(IntegrityReason::MalformedHash));
        };
        if computed != Some(recorded) {
            return Err(fail(IntegrityReason::ContentChanged));
        }
        self.prev = recorded;
        self.index += 1;
        Ok(recorded)
    }

    pub(crate) fn report(self) -> VerifyReport {
        VerifyReport {
            entries: self.index,
            head: hex::encode(self.prev),
            tree_head: String::new(),
            checkpoint: None,
            signer: None,
            pinned_by: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// Selects entries for `query` and `export`. Empty fields match everything; the time range is
/// inclusive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// Only this type.
    pub event_type: Option<AuditEventType>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Not before.
    pub since: Option<DateTime<Utc>>,
    /// Not after.
    pub until: Option<DateTime<Utc>>,
}

impl AuditFilter {
    /// True when `entry` passes the filter.
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.event_type.is_none_or(|t| t == entry.event_type)
            && self.actor.as_deref().is_none_or(|a| a == entry.actor)
            && self.since.is_none_or(|s| entry.timestamp >= s)
            && self.until.is_none_or(|u| entry.timestamp <= u)
    }
}

/// An entry's fields as a store keeps them (metadata as its RFC 8785 text), for checking them
/// against the entry's stored canonical bytes without parsing them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredFields<'a> {
    pub seq: u64,
    pub id: &'a str,
    pub timestamp: &'a str,
    pub event_type: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub outcome: &'a str,
    pub input_summary: &'a str,
    pub metadata: &'a str,
}

impl StoredFields<'_> {
    /// Writes the canonical bytes these fields stand for into `out` (cleared first), or says
    /// why they cannot stand for any. Equal to [`AuditEntry::canonical_bytes`] of the entry
    /// the fields were written from (a test checks). The encoding is injective: strings are
    /// escaped; the id and timestamp must have their written shapes (no quote can hide in
    /// them); the metadata must be exactly one JSON object, so where it ends is fixed by the
    /// JSON grammar. So fields that compose an entry's canonical bytes are that entry's fields.
    pub(crate) fn compose(&self, out: &mut Vec<u8>) -> Result<(), String> {
        let id = self.id.as_bytes();
        let id_ok = id.len() == 36
            && id.iter().enumerate().all(|(i, &b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            });
        if !id_ok {
            return Err(format!("id '{}' is not in its written form", self.id));
        }
        let ts = self.timestamp.as_bytes();
        let ts_ok = ts.len() == 27
            && ts.iter().enumerate().all(|(i, &b)| match i {
                4 | 7 => b == b'-',
                10 => b == b'T',
                13 | 16 => b == b':',
                19 => b == b'.',
                26 => b == b'Z',
                _ => b.is_ascii_digit(),
            });
        if !ts_ok {
            return Err(format!(
                "timestamp '{}' is not in its written form",
                self.timestamp
            ));
        }
        if !self.metadata.starts_with('{')
            || serde_json::from_str::<serde::de::IgnoredAny>(self.metadata).is_err()
        {
            return Err("metadata is not one JSON object".into());
        }
        out.clear();
        let field = |out: &mut Vec<u8>, key: &str, value: &str| -> Result<(), String> {
            out.extend_from_slice(key.as_bytes());
            serde_json::to_writer(&mut *out, value).map_err(|e| e.to_string())
        };
        field(out, "{\"action\":", self.action)?;
        field(out, ",\"actor\":", self.actor)?;
        field(out, ",\"event_type\":", self.event_type)?;
        out.extend_from_slice(b",\"id\":\"");
        out.extend_from_slice(id);
        out.push(b'"');
        field(out, ",\"input_summary\":", self.input_summary)?;
        out.extend_from_slice(b",\"metadata\":");
        out.extend_from_slice(self.metadata.as_bytes());
        field(out, ",\"outcome\":", self.outcome)?;
        field(out, ",\"resource\":", self.resource)?;
        out.extend_from_slice(b",\"seq\":");
        push_digits(out, self.seq, 1);
        out.extend_from_slice(b",\"timestamp\":\"");
        out.extend_from_slice(ts);
        out.extend_from_slice(b"\"}");
        Ok(())
    }
}

/// Serde for timestamps as RFC 3339 UTC with exactly six fractional digits, so the canonical
/// bytes of an entry read back from JSON are the bytes it was hashed with.
mod rfc3339_micros {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
pub(crate) mod tests;
