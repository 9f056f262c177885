//! Reading the store back: rows into entries, checkpoint rows into checkpoints, and the fast
//! verification path that checks rows against their canonical bytes without parsing them.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::Connection;

use super::{
    AuditEntry, AuditError, AuditEventType, CHECKPOINT_COLUMNS, Checkpoint, IntegrityFailure,
    IntegrityReason, LogVerifier, open_error,
};

/// An integrity failure of the log at `seq`.
pub(super) fn integrity(
    reason: crate::governance::integrity::IntegrityReason,
    seq: u64,
) -> AuditError {
    AuditError::Integrity(IntegrityFailure::log(seq, reason))
}

pub(super) fn last_row(
    conn: &Connection,
    path: &Path,
) -> Result<Option<(u64, String)>, AuditError> {
    match conn.query_row(
        "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1",
        [],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    ) {
        Ok((seq, hash)) => Ok(Some((u64::try_from(seq).unwrap_or(0), hash))),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(open_error(path, e)),
    }
}

pub(super) fn max_anchor(conn: &Connection, path: &Path) -> Result<u64, AuditError> {
    let max: i64 = match conn.query_row(
        "SELECT COALESCE(MAX(tree_size), 0) FROM audit_checkpoints",
        [],
        |r| r.get(0),
    ) {
        Ok(v) => v,
        Err(e) if missing_table(&e) => 0,
        Err(e) => return Err(open_error(path, e)),
    };
    Ok(u64::try_from(max).unwrap_or(0))
}

pub(super) fn checkpoint_from_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<Checkpoint, String>> {
    // A column of the wrong type (text edited into a blob) is a damaged checkpoint, not an I/O
    // error: it is reported as an integrity failure.
    macro_rules! column {
        ($i:expr, $t:ty) => {
            match r.get::<_, $t>($i) {
                Ok(v) => v,
                Err(e) => {
                    return Ok(Err(format!(
                        "a checkpoint is unreadable (column {}): {e}",
                        $i
                    )))
                }
            }
        };
    }
    let size: i64 = column!(0, i64);
    let timestamp: String = column!(3, String);
    let Ok(time) = chrono::DateTime::parse_from_rfc3339(&timestamp) else {
        return Ok(Err(format!(
            "the checkpoint at {size} entries has an unreadable time '{timestamp}'"
        )));
    };
    let time = time.with_timezone(&chrono::Utc);
    if time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true) != timestamp {
        return Ok(Err(format!(
            "the checkpoint at {size} entries has its time in a form Veyra does not write"
        )));
    }
    let Ok(tree_size) = u64::try_from(size) else {
        return Ok(Err(format!("a checkpoint has a negative size {size}")));
    };
    Ok(Ok(Checkpoint {
        tree_size,
        root: column!(1, String),
        chain_head: column!(2, String),
        timestamp: time,
        public_key: column!(4, String),
        signature: column!(5, String),
    }))
}

pub(super) fn query_checkpoints(
    conn: &Connection,
    path: &Path,
    table: &str,
) -> Result<Vec<Checkpoint>, AuditError> {
    let mut stmt = match conn.prepare(&format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM {table} ORDER BY tree_size"
    )) {
        Ok(s) => s,
        // A dropped table holds no checkpoints; verification then finds the entries unsigned.
        Err(e) if missing_table(&e) => return Ok(Vec::new()),
        Err(e) => return Err(open_error(path, e)),
    };
    let rows = stmt
        .query_map([], checkpoint_from_row)
        .map_err(|e| open_error(path, e))?;
    let mut out = Vec::new();
    for row in rows {
        match row.map_err(|e| open_error(path, e))? {
            Ok(cp) => out.push(cp),
            Err(why) => {
                return Err(integrity(
                    crate::governance::integrity::IntegrityReason::CheckpointInvalid(why),
                    0,
                ));
            }
        }
    }
    Ok(out)
}

pub(super) fn read_checkpoints(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<Checkpoint>, AuditError> {
    query_checkpoints(conn, path, "audit_checkpoints")
}

pub(super) fn read_head(conn: &Connection, path: &Path) -> Result<Option<Checkpoint>, AuditError> {
    let mut heads = query_checkpoints(conn, path, "audit_head")?;
    if heads.len() > 1 {
        return Err(integrity(
            crate::governance::integrity::IntegrityReason::CheckpointInvalid(
                "the store holds more than one newest checkpoint".into(),
            ),
            0,
        ));
    }
    Ok(heads.pop())
}

/// True when SQLite says a table is missing: someone dropped it. The store then reads as
/// holding nothing there, and verification says what is missing against the witness.
pub(super) fn missing_table(e: &rusqlite::Error) -> bool {
    e.to_string().contains("no such table")
}

/// Feeds stored rows (selected with [`COLUMNS`]) to `verifier` without parsing them: each
/// row's columns must compose its stored canonical bytes exactly
/// ([`crate::governance::audit::StoredFields::compose`]), and those bytes are what the chain and the tree
/// are checked over. Only key rotation entries are parsed (their metadata is needed).
///
/// Two threads share the work: this one steps SQLite and checks the columns; a scoped worker
/// computes each row's chain and leaf hashes (independent of other rows, since a row carries
/// its own `prev_hash`) and feeds the verifier in order. Chunks of [`VERIFY_CHUNK`] rows pass
/// between them over a bounded channel.
pub(super) fn verify_rows(
    rows: &mut rusqlite::Rows<'_>,
    path: &Path,
    verifier: &mut LogVerifier<'_>,
) -> Result<Option<IntegrityFailure>, AuditError> {
    let (tx, rx) = mpsc::sync_channel::<Chunk>(4);
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || -> Option<IntegrityFailure> {
            for chunk in rx {
                for row in &chunk.rows {
                    let canonical = &chunk.bytes[row.canonical.clone()];
                    let computed = row
                        .prev_hash
                        .map(|prev| crate::governance::audit::chain_digest(&prev, canonical));
                    let leaf = crate::governance::merkle::leaf_hash(canonical);
                    if let Err(f) = verifier.push_hashed(
                        row.seq,
                        row.prev_hash,
                        row.hash,
                        computed,
                        leaf,
                        row.rotation.as_deref(),
                    ) {
                        return Some(f);
                    }
                }
                if let Some(f) = chunk.bad {
                    return Some(f);
                }
            }
            None
        });
        let mut chunk = Chunk::default();
        let mut composed = Vec::with_capacity(512);
        let mut index = 0u64;
        let read = loop {
            match rows.next() {
                Err(e) => break Err(open_error(path, e)),
                Ok(None) => break Ok(()),
                Ok(Some(row)) => {
                    if let Err(f) = chunk.push(row, index, &mut composed) {
                        chunk.bad = Some(f);
                        break Ok(());
                    }
                    index += 1;
                    if chunk.rows.len() == VERIFY_CHUNK
                        && tx.send(std::mem::take(&mut chunk)).is_err()
                    {
                        // The worker stopped at a failure; it is the answer.
                        break Ok(());
                    }
                }
            }
        };
        if !chunk.rows.is_empty() || chunk.bad.is_some() {
            let _ = tx.send(chunk);
        }
        drop(tx);
        let failure = worker.join().map_err(|_| {
            AuditError::Store(format!(
                "{}: the verification worker stopped unexpectedly",
                path.display()
            ))
        })?;
        match (failure, read) {
            (Some(f), _) => Ok(Some(f)),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(None),
        }
    })
}

/// Rows handed from the reader to the hashing worker at a time.
pub(super) const VERIFY_CHUNK: usize = 1024;

/// Rows checked against their canonical bytes, which sit end to end in `bytes`; `bad` is the
/// failure that ended reading, after these rows.
#[derive(Default)]
pub(super) struct Chunk {
    bytes: Vec<u8>,
    rows: Vec<ChunkRow>,
    bad: Option<IntegrityFailure>,
}

pub(super) struct ChunkRow {
    seq: u64,
    prev_hash: Option<[u8; 32]>,
    hash: Option<[u8; 32]>,
    canonical: std::ops::Range<usize>,
    rotation: Option<Box<AuditEntry>>,
}

impl Chunk {
    /// Checks that the row's columns compose its canonical bytes and takes it in.
    fn push(
        &mut self,
        row: &rusqlite::Row<'_>,
        index: u64,
        composed: &mut Vec<u8>,
    ) -> Result<(), IntegrityFailure> {
        use rusqlite::types::ValueRef;
        let seq = match row.get_ref(0) {
            Ok(ValueRef::Integer(n)) => u64::try_from(n).ok(),
            _ => None,
        };
        let fail = |reason| IntegrityFailure {
            index,
            seq: seq.unwrap_or(index + 1),
            reason,
        };
        let unreadable = |why: String| fail(IntegrityReason::Unreadable(why));
        let Some(seq) = seq else {
            return Err(unreadable("seq is not a positive integer".into()));
        };
        let text = |i: usize| -> Result<&str, IntegrityFailure> {
            match row.get_ref(i) {
                Ok(ValueRef::Text(bytes)) => std::str::from_utf8(bytes)
                    .map_err(|_| unreadable(format!("column {i} is not UTF-8"))),
                _ => Err(unreadable(format!("column {i} is not text"))),
            }
        };
        let canonical = match row.get_ref(12) {
            Ok(ValueRef::Blob(bytes)) => bytes,
            _ => return Err(unreadable("canonical is not a blob".into())),
        };
        let fields = crate::governance::audit::StoredFields {
            seq,
            id: text(1)?,
            timestamp: text(2)?,
            event_type: text(3)?,
            actor: text(4)?,
            action: text(5)?,
            resource: text(6)?,
            outcome: text(7)?,
            input_summary: text(8)?,
            metadata: text(9)?,
        };
        fields.compose(composed).map_err(unreadable)?;
        if composed.as_slice() != canonical {
            return Err(fail(IntegrityReason::CanonicalMismatch));
        }
        let rotation = if fields.event_type == AuditEventType::ConfigChange.name()
            && fields.action == crate::governance::verify::ROTATION_ACTION
        {
            Some(Box::new(entry_from_row(row, index)?))
        } else {
            None
        };
        let start = self.bytes.len();
        self.bytes.extend_from_slice(canonical);
        self.rows.push(ChunkRow {
            seq,
            prev_hash: crate::governance::audit::decode_hash(text(10)?),
            hash: crate::governance::audit::decode_hash(text(11)?),
            canonical: start..self.bytes.len(),
            rotation,
        });
        Ok(())
    }
}

/// Reads one row back into an entry, checking its stored canonical bytes.
pub(super) fn entry_from_row(
    row: &rusqlite::Row<'_>,
    index: u64,
) -> Result<AuditEntry, IntegrityFailure> {
    let seq: i64 = row.get(0).unwrap_or(-1);
    let unreadable = |what: String| IntegrityFailure {
        index,
        seq: u64::try_from(seq).unwrap_or(0),
        reason: IntegrityReason::Unreadable(what),
    };
    let text = |i: usize| -> Result<String, IntegrityFailure> {
        row.get::<_, String>(i)
            .map_err(|e| unreadable(format!("column {i}: {e}")))
    };
    let event_name = text(3)?;
    let event_type: AuditEventType = event_name
        .parse()
        .map_err(|_| unreadable(format!("unknown event type '{event_name}'")))?;
    // Columns that are parsed must also read back exactly as written, so that a byte changed
    // to an equivalent spelling ('z' for 'Z', an uppercase UUID, JSON white space) still shows.
    let id_text = text(1)?;
    let id: uuid::Uuid = id_text
        .parse()
        .map_err(|e| unreadable(format!("id: {e}")))?;
    if id.hyphenated().to_string() != id_text {
        return Err(unreadable(format!(
            "id '{id_text}' is not in its written form"
        )));
    }
    let timestamp_text = text(2)?;
    let timestamp = chrono::DateTime::parse_from_rfc3339(&timestamp_text)
        .map_err(|e| unreadable(format!("timestamp: {e}")))?
        .with_timezone(&chrono::Utc);
    if timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true) != timestamp_text {
        return Err(unreadable(format!(
            "timestamp '{timestamp_text}' is not in its written form"
        )));
    }
    let metadata_text = text(9)?;
    let metadata: serde_json::Value =
        serde_json::from_str(&metadata_text).map_err(|e| unreadable(format!("metadata: {e}")))?;
    // Metadata is stored in its RFC 8785 form; any other spelling of the same value (keys
    // reordered, a number respelt) was not written by Veyra.
    if crate::governance::audit::canonical_json(&metadata)
        .ok()
        .as_deref()
        != Some(metadata_text.as_str())
    {
        return Err(unreadable("metadata is not in its written form".into()));
    }
    let canonical: Vec<u8> = row
        .get(12)
        .map_err(|e| unreadable(format!("canonical: {e}")))?;
    let entry = AuditEntry {
        seq: u64::try_from(seq).map_err(|_| unreadable(format!("seq {seq}")))?,
        id,
        timestamp,
        event_type,
        actor: text(4)?,
        action: text(5)?,
        resource: text(6)?,
        outcome: text(7)?,
        input_summary: text(8)?,
        metadata,
        prev_hash: text(10)?,
        hash: text(11)?,
    };
    match entry.canonical_bytes() {
        Ok(bytes) if bytes == canonical => Ok(entry),
        Ok(_) => Err(IntegrityFailure {
            index,
            seq: entry.seq,
            reason: IntegrityReason::CanonicalMismatch,
        }),
        Err(e) => Err(unreadable(e.to_string())),
    }
}
