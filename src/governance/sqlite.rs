//! The persistent audit store: SQLite (bundled), WAL mode, `synchronous=FULL`.
//!
//! # Layout
//! Table `audit_entries`, one row per entry, `seq` as primary key, every field of the entry as
//! a column (`metadata` as its RFC 8785 JSON text), plus `canonical`: the entry's RFC 8785 canonical bytes
//! exactly as they were hashed. Indexes on `(event_type, timestamp)` and `(actor, timestamp)`
//! serve `veyra audit list` filters. `BEFORE UPDATE` and `BEFORE DELETE` triggers refuse edits
//! through SQL; edits that get past them (dropping the triggers, editing the file) are caught by
//! verification. Table `audit_meta` records the format version.
//!
//! # Writing
//! One writer thread owns the write connection. Appends arrive in chain order over a channel;
//! the writer takes everything waiting (up to [`MAX_BATCH`]) into one transaction, commits it
//! (one fsync for the batch — group commit), then confirms each entry. A trail waits for that
//! confirmation, so `record` returns only once its entry is durable.
//!
//! # One writer per store
//! Opening a store for writing takes an exclusive lock on `<store>.lock` (which holds the
//! writer's pid) for the life of the store. A second process gets a clear error instead of a
//! forked chain. Readers (`veyra audit verify/list/export`) open the database read-only and
//! need no lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, params};

use super::AuditError;
use super::audit::{AuditEntry, AuditEventType, IntegrityFailure, IntegrityReason};
use super::checkpoint::{self, Checkpoint};
use super::merkle::Frontier;
use super::store::CheckpointListener;
use super::store::{AppendTicket, AuditStore};

/// Entries committed together at most.
pub const MAX_BATCH: usize = 1024;

/// Version of the table layout written in `audit_meta`.
pub const FORMAT_VERSION: &str = "1";

const SCHEMA: &str = "
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
";

/// A checkpoint is signed after this many new entries…
pub const CHECKPOINT_EVERY: u64 = 256;
/// …or after this long with new entries, and always when the store closes.
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

const COLUMNS: &str = "seq, id, timestamp, event_type, actor, action, resource, outcome, \
                       input_summary, metadata, prev_hash, hash, canonical";

/// One queued append.
struct Job {
    entry: Arc<AuditEntry>,
    canonical: Vec<u8>,
    /// The metadata column: the metadata's RFC 8785 text.
    metadata: String,
    /// Its Merkle leaf hash, computed by the caller so the single writer stays fast.
    leaf: [u8; 32],
    done: mpsc::Sender<Result<(), String>>,
}

/// See the module docs.
pub struct SqliteStore {
    path: PathBuf,
    reader: Mutex<Connection>,
    writer: Option<Mutex<mpsc::Sender<Job>>>,
    thread: Option<JoinHandle<()>>,
    listener: Listener,
    _lock: Option<File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("writable", &self.writer.is_some())
            .finish()
    }
}

fn store_error(path: &Path, what: &str, e: impl std::fmt::Display) -> AuditError {
    AuditError::Store(format!("{}: {what}: {e}", path.display()))
}

/// Turns SQLite's "not a database" and similar into a sentence about the file.
/// What to do when another program holds SQLite's lock on the store past the busy timeout.
fn lock_hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            " (another program has held a write transaction on the store for over 5 s, an \
             sqlite3 shell or a backup tool perhaps; close it, then restart Veyra: recording \
             stops rather than risk the chain)"
        }
        _ => "",
    }
}

fn open_error(path: &Path, e: rusqlite::Error) -> AuditError {
    let text = e.to_string();
    if text.contains("not a database") || text.contains("malformed") {
        AuditError::Store(format!(
            "{}: not a Veyra audit store (the file is not an SQLite database or is damaged: {text}); move it aside or set governance.store_path",
            path.display()
        ))
    } else {
        store_error(
            path,
            "cannot open the audit store",
            format!("{text}{}", lock_hint(&e)),
        )
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` for writing, taking the one-writer lock.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                store_error(
                    path,
                    "cannot create the audit store's directory (set governance.store_path to a writable place)",
                    e,
                )
            })?;
        }
        let lock = take_lock(path)?;
        let writer = Connection::open(path).map_err(|e| open_error(path, e))?;
        configure(&writer, path)?;
        writer
            .execute_batch(SCHEMA)
            .map_err(|e| open_error(path, e))?;
        check_format(&writer, path, true)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(path, e))?;
        let key = checkpoint::load_or_create_key(path)?;
        let state = WriterState::load(&writer, path, key)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let thread_path = path.to_path_buf();
        let listener: Listener = Arc::new(Mutex::new(None));
        let thread_listener = Arc::clone(&listener);
        let thread = std::thread::Builder::new()
            .name("veyra-audit-writer".into())
            .spawn(move || writer_loop(writer, rx, &thread_path, state, &thread_listener))
            .map_err(|e| store_error(path, "cannot start the audit writer", e))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            reader: Mutex::new(reader),
            writer: Some(Mutex::new(tx)),
            thread: Some(thread),
            listener,
            _lock: Some(lock),
        })
    }

    /// Opens an existing store read-only (no lock; a writer may be running).
    pub fn open_read_only(path: &Path) -> Result<Self, AuditError> {
        if !path.exists() {
            return Err(AuditError::Store(format!(
                "{}: no audit store here; it is created when Veyra first records (see governance.store_path)",
                path.display()
            )));
        }
        let reader = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| open_error(path, e))?;
        configure_reader(&reader, path)?;
        check_format(&reader, path, false)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            reader: Mutex::new(reader),
            writer: None,
            thread: None,
            listener: Arc::new(Mutex::new(None)),
            _lock: None,
        })
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reader(&self) -> Result<std::sync::MutexGuard<'_, Connection>, AuditError> {
        self.reader
            .lock()
            .map_err(|_| AuditError::Store("the audit reader was poisoned by a panic".into()))
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer after it has committed what it holds.
        self.writer = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn take_lock(path: &Path) -> Result<File, AuditError> {
    let lock_path = path.with_extension("db.lock");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            store_error(
                &lock_path,
                "cannot create the audit store's lock file (is the directory writable?)",
                e,
            )
        })?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        return Err(AuditError::Store(format!(
            "{}: the audit store is in use by another Veyra process{}; only one process may write to a chain (close it, or give this one its own governance.store_path)",
            path.display(),
            if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            }
        )));
    }
    let _ = file.set_len(0);
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(file)
}

fn configure(conn: &Connection, path: &Path) -> Result<(), AuditError> {
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

fn configure_reader(conn: &Connection, path: &Path) -> Result<(), AuditError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| open_error(path, e))
}

fn check_format(conn: &Connection, path: &Path, writable: bool) -> Result<(), AuditError> {
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
        Some(other) => Err(AuditError::Store(format!(
            "{}: audit store format {other} is not supported by this Veyra (it reads {FORMAT_VERSION}); use the Veyra that wrote it",
            path.display()
        ))),
    }
}

/// What the writer knows of the chain, to sign checkpoints.
struct WriterState {
    key: ed25519_dalek::SigningKey,
    frontier: Frontier,
    head: String,
    checkpointed: u64,
}

impl WriterState {
    /// Rebuilds the tree head from the stored canonical bytes.
    fn load(
        conn: &Connection,
        path: &Path,
        key: ed25519_dalek::SigningKey,
    ) -> Result<Self, AuditError> {
        let mut frontier = Frontier::new();
        let mut head = super::audit::GENESIS_PREV_HASH.to_string();
        let mut stmt = conn
            .prepare("SELECT canonical, hash FROM audit_entries ORDER BY seq")
            .map_err(|e| open_error(path, e))?;
        let mut rows = stmt.query([]).map_err(|e| open_error(path, e))?;
        while let Some(row) = rows.next().map_err(|e| open_error(path, e))? {
            let canonical: Vec<u8> = row.get(0).map_err(|e| open_error(path, e))?;
            frontier.push(&canonical);
            head = row.get(1).map_err(|e| open_error(path, e))?;
        }
        let checkpointed: i64 = conn
            .query_row(
                "SELECT COALESCE(MAX(tree_size), 0) FROM audit_checkpoints",
                [],
                |r| r.get(0),
            )
            .map_err(|e| open_error(path, e))?;
        Ok(WriterState {
            key,
            frontier,
            head,
            checkpointed: u64::try_from(checkpointed).unwrap_or(0),
        })
    }

    fn checkpoint(&mut self, conn: &Connection, path: &Path, listener: &Listener) {
        let size = self.frontier.size();
        if size == self.checkpointed {
            return;
        }
        let cp = Checkpoint::sign(&self.key, size, self.frontier.root(), &self.head);
        match insert_checkpoint(conn, &cp) {
            Ok(_) => {
                self.checkpointed = size;
                notify(listener, &cp);
            }
            Err(e) => tracing::error!("{}: could not write a checkpoint: {e}", path.display()),
        }
    }
}

/// Who hears of each checkpoint once it is durable.
type Listener = Arc<Mutex<Option<CheckpointListener>>>;

fn notify(listener: &Listener, cp: &Checkpoint) {
    let listener = listener
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Some(f) = listener {
        f(cp);
    }
}

fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Job>,
    path: &Path,
    mut state: WriterState,
    listener: &Listener,
) {
    loop {
        let first = match rx.recv_timeout(CHECKPOINT_INTERVAL) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                state.checkpoint(&conn, path, listener);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // The tree after this batch, and a checkpoint in the same transaction when one is due
        // (so a checkpoint costs no extra fsync).
        let mut frontier = state.frontier.clone();
        for job in &batch {
            frontier.push_leaf_hash(job.leaf);
        }
        let head = batch
            .last()
            .map(|j| j.entry.hash.clone())
            .unwrap_or_else(|| state.head.clone());
        let due = frontier.size() - state.checkpointed >= CHECKPOINT_EVERY;
        let checkpoint =
            due.then(|| Checkpoint::sign(&state.key, frontier.size(), frontier.root(), &head));
        let result = commit(&mut conn, &batch, checkpoint.as_ref()).map_err(|e| {
            let message = format!(
                "{}: could not commit audit entries: {e}{}",
                path.display(),
                lock_hint(&e)
            );
            tracing::error!("{message}");
            message
        });
        if result.is_ok() {
            state.frontier = frontier;
            state.head = head;
            if let Some(cp) = &checkpoint {
                state.checkpointed = cp.tree_size;
            }
        }
        for job in batch {
            let _ = job.done.send(result.clone());
        }
        if result.is_ok()
            && let Some(cp) = &checkpoint
        {
            notify(listener, cp);
        }
    }
    // The store is closing: cover everything with a final checkpoint.
    state.checkpoint(&conn, path, listener);
}

fn commit(
    conn: &mut Connection,
    batch: &[Job],
    checkpoint: Option<&Checkpoint>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    if let Some(cp) = checkpoint {
        insert_checkpoint(&tx, cp)?;
    }
    {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO audit_entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ))?;
        for job in batch {
            let e = &job.entry;
            insert.execute(params![
                e.seq as i64,
                e.id.to_string(),
                e.timestamp
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                e.event_type.name(),
                e.actor,
                e.action,
                e.resource,
                e.outcome,
                e.input_summary,
                job.metadata,
                e.prev_hash,
                e.hash,
                job.canonical,
            ])?;
        }
    }
    tx.commit()
}

fn insert_checkpoint(conn: &Connection, cp: &Checkpoint) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit_checkpoints (tree_size, root, chain_head, timestamp, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            cp.tree_size as i64,
            cp.root,
            cp.chain_head,
            cp.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            cp.public_key,
            cp.signature
        ],
    )
    .map(|_| ())
}

/// Reads one row back into an entry, checking its stored canonical bytes.
fn entry_from_row(row: &rusqlite::Row<'_>, index: u64) -> Result<AuditEntry, IntegrityFailure> {
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
    let event_type = AuditEventType::ALL
        .into_iter()
        .find(|t| t.name() == event_name)
        .ok_or_else(|| unreadable(format!("unknown event type '{event_name}'")))?;
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

impl AuditStore for SqliteStore {
    fn append(
        &self,
        entry: Arc<AuditEntry>,
        canonical: Vec<u8>,
    ) -> Result<AppendTicket, AuditError> {
        let Some(writer) = &self.writer else {
            return Err(AuditError::Store(format!(
                "{}: opened read-only",
                self.path.display()
            )));
        };
        let metadata = super::audit::canonical_json(&entry.metadata)?;
        let (done, rx) = mpsc::channel();
        writer
            .lock()
            .map_err(|_| AuditError::Store("the audit writer was poisoned by a panic".into()))?
            .send(Job {
                entry,
                leaf: super::merkle::leaf_hash(&canonical),
                canonical,
                metadata,
                done,
            })
            .map_err(|_| AuditError::Store("the audit writer has stopped".into()))?;
        Ok(AppendTicket::pending(rx))
    }

    fn len(&self) -> Result<u64, AuditError> {
        let conn = self.reader()?;
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM audit_entries", [], |r| r.get(0))
            .map_err(|e| open_error(&self.path, e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn last(&self) -> Result<Option<AuditEntry>, AuditError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM audit_entries ORDER BY seq DESC LIMIT 1"
            ))
            .map_err(|e| open_error(&self.path, e))?;
        let mut rows = stmt.query([]).map_err(|e| open_error(&self.path, e))?;
        match rows.next().map_err(|e| open_error(&self.path, e))? {
            None => Ok(None),
            Some(row) => entry_from_row(row, 0)
                .map(Some)
                .map_err(AuditError::Integrity),
        }
    }

    fn on_checkpoint(&self, listener: CheckpointListener) {
        *self
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(listener);
    }

    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        let conn = self.reader()?;
        let row = conn.query_row(
            "SELECT tree_size, root, chain_head, timestamp, public_key, signature FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            },
        );
        let (size, root, chain_head, timestamp, public_key, signature) = match row {
            Ok(row) => row,
            Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(None),
            // A store written before checkpoints existed has no such table.
            Err(e) if e.to_string().contains("no such table") => return Ok(None),
            Err(e) => return Err(open_error(&self.path, e)),
        };
        let timestamp = chrono::DateTime::parse_from_rfc3339(&timestamp)
            .map_err(|e| {
                AuditError::Store(format!(
                    "{}: unreadable checkpoint time: {e}",
                    self.path.display()
                ))
            })?
            .with_timezone(&chrono::Utc);
        Ok(Some(Checkpoint {
            tree_size: u64::try_from(size).unwrap_or(0),
            root,
            chain_head,
            timestamp,
            public_key,
            signature,
        }))
    }

    fn pinned_key(&self) -> Option<[u8; 32]> {
        checkpoint::pinned_public_key(&self.path)
    }

    fn scan(&self, visit: &mut dyn FnMut(&AuditEntry) -> bool) -> Result<(), AuditError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare(&format!("SELECT {COLUMNS} FROM audit_entries ORDER BY seq"))
            .map_err(|e| open_error(&self.path, e))?;
        let mut rows = stmt.query([]).map_err(|e| open_error(&self.path, e))?;
        let mut index = 0;
        while let Some(row) = rows.next().map_err(|e| open_error(&self.path, e))? {
            let entry = entry_from_row(row, index).map_err(AuditError::Integrity)?;
            if !visit(&entry) {
                break;
            }
            index += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
