//! The store's tables (format 2), the connection settings, and the format check on opening.
//!
//! Table `audit_entries`, one row per entry, `seq` as primary key, every field of the entry as
//! a column (`metadata` as its RFC 8785 JSON text), plus `canonical`: the entry's RFC 8785
//! canonical bytes exactly as they were hashed. Indexes on `(event_type, timestamp)` and
//! `(actor, timestamp)` serve `veyra audit list` filters. `audit_head` holds the newest signed
//! checkpoint (one row, replaced by every commit); `audit_checkpoints` keeps one checkpoint
//! every [`ANCHOR_EVERY`] entries and at each key rotation, for verification to hold history
//! against. Triggers refuse edits through SQL; edits that get past them (dropping the triggers,
//! editing the file) are caught by verification. `audit_meta` records the format version.
//!
//! `tool_journal` keeps the undo journal ([`crate::governance::journal`]): one row per
//! journaled tool call, `seq` (the `TOOL_INVOCATION` entry's), `content`, `sha256`, written in
//! the same transaction as its entry. It is outside the chain, so verification ignores it; an
//! undo holds a blob against the hash in its (verified) entry instead. The table was added within format 2: a writer
//! creates it on open, and a store without it simply has no journal.

use std::path::Path;

use rusqlite::{Connection, params};

use super::{AuditError, open_error, store_error};

/// Version of the table layout written in `audit_meta`.
pub const FORMAT_VERSION: &str = "2";

/// The tables, indexes and triggers, created if missing.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_entries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    event_type TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    outcome TEXT NOT NULL,
    input_summary TEXT NOT NULL,
    metadata TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    canonical BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_type_time ON audit_entries (event_type, timestamp);
CREATE INDEX IF NOT EXISTS audit_actor_time ON audit_entries (actor, timestamp);
CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    tree_size INTEGER PRIMARY KEY,
    root TEXT NOT NULL,
    chain_head TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TABLE IF NOT EXISTS audit_head (
    slot INTEGER PRIMARY KEY CHECK (slot = 1),
    tree_size INTEGER NOT NULL,
    root TEXT NOT NULL,
    chain_head TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_head_no_rollback BEFORE UPDATE ON audit_head
WHEN NEW.tree_size < OLD.tree_size
BEGIN SELECT RAISE(ABORT, 'the signed head only moves forward'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'the signed head cannot be deleted'); END;
CREATE TABLE IF NOT EXISTS tool_journal (
    seq INTEGER PRIMARY KEY,
    content BLOB NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS tool_journal_no_update BEFORE UPDATE ON tool_journal
BEGIN SELECT RAISE(ABORT, 'the undo journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tool_journal_no_delete BEFORE DELETE ON tool_journal
BEGIN SELECT RAISE(ABORT, 'the undo journal is append-only'); END;
";

/// A checkpoint is kept for verification every this many entries (every commit is signed; the
/// newest signature lives in `audit_head`).
pub const ANCHOR_EVERY: u64 = 1024;

/// The columns of a checkpoint row, in the order they are written and read.
pub(super) const CHECKPOINT_COLUMNS: &str =
    "tree_size, root, chain_head, timestamp, public_key, signature";

/// The columns of an entry row, in the order they are written and read.
pub(super) const COLUMNS: &str = "seq, id, timestamp, event_type, actor, action, resource, outcome, \
                       input_summary, metadata, prev_hash, hash, canonical";

/// A write connection: WAL mode, `synchronous=FULL`, and the reader's settings.
pub(super) fn configure(conn: &Connection, path: &Path) -> Result<(), AuditError> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| open_error(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(store_error(
            path,
            "cannot switch the audit store to WAL mode",
            format!("journal_mode is {mode}"),
        ));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| open_error(path, e))?;
    configure_reader(conn, path)
}

/// Any connection: a busy timeout of 5 s.
pub(super) fn configure_reader(conn: &Connection, path: &Path) -> Result<(), AuditError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| open_error(path, e))
}

/// Checks the format record (writing it into a new store when `writable`); an older or
/// unknown format is refused with what to do.
pub(super) fn check_format(
    conn: &Connection,
    path: &Path,
    writable: bool,
) -> Result<(), AuditError> {
    let version: Option<String> = conn
        .query_row(
            "SELECT value FROM audit_meta WHERE key = 'format'",
            [],
            |row| row.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            other => Err(open_error(path, other)),
        })?;
    match version.as_deref() {
        Some(FORMAT_VERSION) => Ok(()),
        None if writable => conn
            .execute(
                "INSERT INTO audit_meta (key, value) VALUES ('format', ?1)",
                params![FORMAT_VERSION],
            )
            .map(|_| ())
            .map_err(|e| open_error(path, e)),
        None => Err(AuditError::Store(format!(
            "{}: not a Veyra audit store (no format record)",
            path.display()
        ))),
        Some("1") => Err(AuditError::Store(format!(
            "{}: audit store format 1 was written by an older Veyra that left entries between checkpoints unsigned; this Veyra reads format {FORMAT_VERSION} only. Verify and export it with the Veyra that wrote it, then move it aside (a new store is started here)",
            path.display()
        ))),
        Some(other) => Err(AuditError::Store(format!(
            "{}: audit store format {other} is not supported by this Veyra (it reads {FORMAT_VERSION}); use the Veyra that wrote it",
            path.display()
        ))),
    }
}
