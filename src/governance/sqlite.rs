//! The persistent audit store: SQLite (bundled), WAL mode, `synchronous=FULL`.
//!
//! # Layout (format 2)
//! Table `audit_entries`, one row per entry, `seq` as primary key, every field of the entry as
//! a column (`metadata` as its RFC 8785 JSON text), plus `canonical`: the entry's RFC 8785
//! canonical bytes exactly as they were hashed. Indexes on `(event_type, timestamp)` and
//! `(actor, timestamp)` serve `veyra audit list` filters. `audit_head` holds the newest signed
//! checkpoint (one row, replaced by every commit); `audit_checkpoints` keeps one checkpoint
//! every [`ANCHOR_EVERY`] entries and at each key rotation, for verification to hold history
//! against. Triggers refuse edits through SQL; edits that get past them (dropping the triggers,
//! editing the file) are caught by verification. `audit_meta` records the format version.
//!
//! # Writing
//! One writer thread owns the write connection. Appends arrive in chain order over a channel;
//! the writer takes everything waiting (up to [`MAX_BATCH`]) into one transaction with the
//! signed checkpoint that covers it, commits (one fsync — group commit), hands the checkpoint
//! to the witness writer ([`super::witness`]), then confirms each entry. A trail waits for that
//! confirmation, so `record` returns only once its entry is durable and signed: a legitimate
//! writer never leaves an unsigned tail, so entries beyond the newest checkpoint are forgery.
//!
//! # Opening for append
//! A writer checks the store before it signs anything (so a new checkpoint cannot launder
//! damage): the key file pins the signer of the newest checkpoint; the store must not be behind
//! any witness; the entries since the newest witness are verified and must lead to the newest
//! checkpoint, whose tree head the writer then continues from. A key is created only for an
//! empty store. This costs O(entries since the witness), not O(log size).
//!
//! # One writer per store
//! Opening a store for writing takes an exclusive lock on `<store>.db.lock` (which holds the
//! writer's pid) for the life of the store. A second process gets a clear error instead of a
//! forked chain. Readers (`veyra audit verify/list/export`) open the database read-only and
//! need no lock.
//!
//! # Files
//! The store, its WAL and shared-memory files, the lock, the key and the witnesses are created
//! mode 0600 (SQLite gives the WAL the main file's mode), whatever the umask.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, params};

use super::AuditError;
use super::audit::{AuditEntry, AuditEventType, IntegrityFailure, IntegrityReason};
use super::checkpoint::{self, Checkpoint, KeyProblem};
use super::merkle::Frontier;
use super::store::{AppendTicket, AuditStore, CheckpointListener, RotationPlan};
use super::verify::{LogVerifier, TrustAnchors};
use super::witness::{self, FoundWitness, Witness, WitnessFile};

/// Entries committed together at most.
pub const MAX_BATCH: usize = 1024;

/// Version of the table layout written in `audit_meta`.
pub const FORMAT_VERSION: &str = "2";

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
";

/// A checkpoint is kept for verification every this many entries (every commit is signed; the
/// newest signature lives in `audit_head`).
pub const ANCHOR_EVERY: u64 = 1024;

const CHECKPOINT_COLUMNS: &str = "tree_size, root, chain_head, timestamp, public_key, signature";

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
    /// A key rotation entry: the checkpoint of its commit is signed by the prepared key.
    rotation: bool,
    done: mpsc::Sender<Result<(), String>>,
}

/// Where a store keeps its witnesses, and how it opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Directories that hold a witness of the store (the first is the primary one); none of
    /// them may be the store's directory or inside it.
    pub witness_dirs: Vec<PathBuf>,
    /// Accept a store that has no witness yet (moved here deliberately) after verifying all of
    /// it against its key file: `veyra audit adopt`.
    pub adopt: bool,
}

impl StoreOptions {
    /// Witnesses in `dir` only.
    pub fn witness_in(dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            witness_dirs: vec![dir.into()],
            adopt: false,
        }
    }

    fn witness_paths(&self, store: &Path) -> Vec<PathBuf> {
        self.witness_dirs
            .iter()
            .map(|d| witness::witness_file(store, d))
            .collect()
    }
}

/// See the module docs.
pub struct SqliteStore {
    path: PathBuf,
    /// `None` when the store's file is missing or holds no tables: it reads as empty, so that
    /// verification can say how many acknowledged entries its witness misses.
    reader: Option<Mutex<Connection>>,
    writer: Option<Mutex<mpsc::Sender<Job>>>,
    thread: Option<JoinHandle<()>>,
    listener: Listener,
    options: StoreOptions,
    /// A key prepared by [`AuditStore::prepare_rotation`], for the writer to sign with.
    next_key: Arc<Mutex<Option<ed25519_dalek::SigningKey>>>,
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
    /// Opens (creating if needed) the store at `path` for writing, taking the one-writer lock,
    /// after checking it (see the module docs): a store that fails is refused with the failure.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Self, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            witness::private_dir(dir).map_err(|e| {
                store_error(
                    path,
                    "cannot create the audit store's directory (set governance.store_path to a writable place)",
                    e,
                )
            })?;
        }
        check_witness_dirs(path, options)?;
        private_files(path)?;
        let lock = take_lock(path)?;
        let writer = Connection::open(path).map_err(|e| open_error(path, e))?;
        configure(&writer, path)?;
        writer
            .execute_batch(SCHEMA)
            .map_err(|e| open_error(path, e))?;
        check_format(&writer, path, true)?;
        private_files(path)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(path, e))?;
        let witness_paths = options.witness_paths(path);
        let (state, publish_now) = WriterState::open(&writer, path, &witness_paths, options)?;
        let mut witnesses = witness_paths
            .iter()
            .map(|p| WitnessFile::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(w) = publish_now {
            for file in &mut witnesses {
                file.write(&w).map_err(AuditError::Store)?;
            }
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let thread_path = path.to_path_buf();
        let listener: Listener = Arc::new(Mutex::new(None));
        let thread_listener = Arc::clone(&listener);
        let next_key: Arc<Mutex<Option<ed25519_dalek::SigningKey>>> = Arc::default();
        let thread_next_key = Arc::clone(&next_key);
        let thread = std::thread::Builder::new()
            .name("veyra-audit-writer".into())
            .spawn(move || {
                let mut writer = Writer {
                    conn: writer,
                    path: thread_path,
                    state,
                    listener: thread_listener,
                    witnesses,
                    next_key: thread_next_key,
                };
                writer.run(&rx);
            })
            .map_err(|e| store_error(path, "cannot start the audit writer", e))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            reader: Some(Mutex::new(reader)),
            writer: Some(Mutex::new(tx)),
            thread: Some(thread),
            listener,
            options: options.clone(),
            next_key,
            _lock: Some(lock),
        })
    }

    /// Opens an existing store read-only (no lock; a writer may be running). A store whose file
    /// is missing, or holds no tables (its WAL was lost), opens as empty when a witness of it
    /// exists, so that verification reports the missing entries.
    pub fn open_read_only(path: &Path, options: &StoreOptions) -> Result<Self, AuditError> {
        let store = |reader: Option<Connection>| SqliteStore {
            path: path.to_path_buf(),
            reader: reader.map(Mutex::new),
            writer: None,
            thread: None,
            listener: Arc::new(Mutex::new(None)),
            options: options.clone(),
            next_key: Arc::default(),
            _lock: None,
        };
        let witnessed = || -> Result<bool, AuditError> {
            Ok(!witness::find_witnesses(path, &options.witness_dirs)?.is_empty())
        };
        if !path.exists() {
            if witnessed()? {
                return Ok(store(None));
            }
            return Err(AuditError::Store(format!(
                "{}: no audit store here; it is created when Veyra first records (see governance.store_path)",
                path.display()
            )));
        }
        // The connection sits behind this store's own mutex: SQLite's per-call mutex is waste.
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(path, e))?;
        configure_reader(&reader, path)?;
        let tables: i64 = reader
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| open_error(path, e))?;
        if tables == 0 {
            if witnessed()? {
                return Ok(store(None));
            }
            return Err(AuditError::Store(format!(
                "{}: not a Veyra audit store (an empty database: was its -wal file lost?)",
                path.display()
            )));
        }
        check_format(&reader, path, false)?;
        Ok(store(Some(reader)))
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reader(&self) -> Result<Option<std::sync::MutexGuard<'_, Connection>>, AuditError> {
        self.reader
            .as_ref()
            .map(|r| {
                r.lock().map_err(|_| {
                    AuditError::Store("the audit reader was poisoned by a panic".into())
                })
            })
            .transpose()
    }
}

/// Refuses witness directories that are the store's directory or inside it: whoever can
/// rewrite the store could then rewrite its witness too.
fn check_witness_dirs(path: &Path, options: &StoreOptions) -> Result<(), AuditError> {
    let store_dir = witness::canonical_store_path(path)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for dir in &options.witness_dirs {
        let resolved = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        if resolved.starts_with(&store_dir) {
            return Err(AuditError::Store(format!(
                "{}: the audit witness directory {} is inside the store's directory {}; whoever can change the store could change its witness too. Keep witnesses elsewhere (XDG_STATE_HOME, governance.witnesses) or move the store (governance.store_path)",
                path.display(),
                dir.display(),
                store_dir.display()
            )));
        }
    }
    Ok(())
}

/// Creates the store file with mode 0600 if it is missing, and makes the store, WAL and
/// shared-memory files 0600 if they exist (SQLite gives new WAL files the store's mode).
fn private_files(path: &Path) -> Result<(), AuditError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if !path.exists() {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| store_error(path, "cannot create the audit store", e))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = PathBuf::from(file);
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| store_error(&file, "cannot make the audit file private", e))?;
        }
    }
    Ok(())
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
    let mut file = std::os::unix::fs::OpenOptionsExt::mode(
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true),
        0o600,
    )
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

/// What the writer knows of the chain, to sign checkpoints.
struct WriterState {
    key: ed25519_dalek::SigningKey,
    frontier: Frontier,
    head: String,
}

fn integrity(reason: super::audit::IntegrityReason, seq: u64) -> AuditError {
    AuditError::Integrity(IntegrityFailure::log(seq, reason))
}

impl WriterState {
    /// Checks the store before appending (see the module docs) and returns where to continue,
    /// with a witness to publish at once when one is missing or behind.
    fn open(
        conn: &Connection,
        path: &Path,
        witness_paths: &[PathBuf],
        options: &StoreOptions,
    ) -> Result<(Self, Option<Witness>), AuditError> {
        use super::audit::IntegrityReason as R;
        let last = last_row(conn, path)?;
        let head = read_head(conn, path)?;
        let mut witnesses = Vec::new();
        for wp in witness_paths {
            if let Some(w) = witness::read_witness(wp)? {
                witnesses.push(FoundWitness {
                    path: wp.clone(),
                    witness: w,
                });
            }
        }
        let n = last.as_ref().map_or(0, |(seq, _)| *seq);
        let key_path = checkpoint::key_path(path);
        let next_path = checkpoint::next_key_path(path);
        // A store behind any witness has lost acknowledged entries, whatever else is wrong.
        if let Some(w) = witnesses
            .iter()
            .find(|w| w.witness.checkpoint.tree_size > n)
        {
            return Err(integrity(
                R::BehindWitness {
                    witness: w.path.display().to_string(),
                    recorded: w.witness.checkpoint.tree_size,
                    present: n,
                },
                n + 1,
            ));
        }
        if n == 0 && head.is_none() {
            let key = match checkpoint::load_key(&key_path) {
                Ok(k) => k,
                Err(KeyProblem::Missing(_)) => checkpoint::create_key(&key_path)?,
                Err(p) => return Err(integrity(R::SignerNotPinned(p.to_string()), 0)),
            };
            let _ = std::fs::remove_file(&next_path);
            let state = WriterState {
                key,
                frontier: Frontier::new(),
                head: super::audit::GENESIS_PREV_HASH.to_string(),
            };
            return Ok((state, None));
        }
        let Some(head) = head else {
            let first = max_anchor(conn, path)?.min(n) + 1;
            return Err(integrity(R::Unsigned { first, last: n }, first));
        };
        let signer = head
            .verify_signature()
            .map_err(|e| integrity(R::CheckpointInvalid(e), head.tree_size))?;
        // A rotation that committed but did not yet move its key into place finishes now.
        if let Ok(next) = checkpoint::load_key(&next_path) {
            if next.verifying_key().to_bytes() == signer {
                std::fs::rename(&next_path, &key_path).map_err(|e| {
                    store_error(&key_path, "cannot finish an interrupted key rotation", e)
                })?;
            } else {
                let _ = std::fs::remove_file(&next_path);
            }
        }
        let key = checkpoint::load_key(&key_path)
            .map_err(|p| integrity(R::SignerNotPinned(p.to_string()), 0))?;
        if key.verifying_key().to_bytes() != signer {
            return Err(integrity(
                R::SignerNotPinned(format!(
                    "the newest checkpoint is signed by key {} but the key file {} holds key {}: the key was replaced, or the log was re-signed",
                    checkpoint::fingerprint(&signer),
                    key_path.display(),
                    checkpoint::fingerprint(&key.verifying_key().to_bytes())
                )),
                0,
            ));
        }
        if n > head.tree_size {
            return Err(integrity(
                R::Unsigned {
                    first: head.tree_size + 1,
                    last: n,
                },
                head.tree_size + 1,
            ));
        }
        if n < head.tree_size {
            return Err(integrity(
                R::TailTruncated {
                    checkpoint: head.tree_size,
                    present: n,
                },
                n + 1,
            ));
        }
        if last.as_ref().map(|(_, h)| h.as_str()) != Some(head.chain_head.as_str()) {
            return Err(integrity(
                R::CheckpointInvalid(
                    "the newest entry is not the one the newest checkpoint signed: the log was rewritten".into(),
                ),
                n,
            ));
        }
        let key_file = Some(Ok(signer));
        // Resume from the newest witness (or, adopting, from nothing: verify everything).
        let newest = witnesses
            .iter()
            .max_by_key(|w| w.witness.checkpoint.tree_size)
            .cloned();
        let (start, resume_frontier, resume_head, resume_signer) = match (&newest, options.adopt) {
            (_, true) => (
                0,
                Frontier::new(),
                super::audit::GENESIS_PREV_HASH.to_string(),
                None,
            ),
            (Some(w), false) => {
                if w.witness.checkpoint.tree_size > n {
                    return Err(integrity(
                        R::BehindWitness {
                            witness: w.path.display().to_string(),
                            recorded: w.witness.checkpoint.tree_size,
                            present: n,
                        },
                        n + 1,
                    ));
                }
                let (wkey, frontier) = w.witness.validate().map_err(|e| {
                    integrity(
                        R::WitnessMismatch(format!(
                            "the witness {} is damaged: {e}; if the store is sound, check it with `veyra audit verify --key HEX` and run `veyra audit adopt`",
                            w.path.display()
                        )),
                        0,
                    )
                })?;
                (
                    w.witness.checkpoint.tree_size,
                    frontier,
                    w.witness.checkpoint.chain_head.clone(),
                    Some(wkey),
                )
            }
            (None, false) => {
                return Err(integrity(
                    R::SignerNotPinned(format!(
                        "no witness of this store ({}) was found, so a rollback could not be told apart from the real log. If the store was moved here deliberately, check it with `veyra audit verify --key HEX` or `--expect-size N --expect-head HEX`, then run `veyra audit adopt`",
                        witness_paths
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    0,
                ));
            }
        };
        let anchors = TrustAnchors {
            key_file,
            // The key file pins the signer here; the witness was checked above.
            key: Some(signer),
            explicit: true,
            witnesses: if options.adopt {
                witnesses.clone()
            } else {
                Vec::new()
            },
            ..TrustAnchors::default()
        };
        let checkpoints = if options.adopt {
            super::verify::sorted_checkpoints(
                read_checkpoints(conn, path)?
                    .into_iter()
                    .chain(std::iter::once(head.clone()))
                    .collect(),
            )
        } else {
            vec![head.clone()]
        };
        let mut verifier = LogVerifier::resume(
            &checkpoints,
            &anchors,
            &resume_head,
            resume_frontier,
            resume_signer,
        );
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM audit_entries WHERE seq > ?1 ORDER BY seq"
            ))
            .map_err(|e| open_error(path, e))?;
        let mut rows = stmt
            .query(params![i64::try_from(start).unwrap_or(i64::MAX)])
            .map_err(|e| open_error(path, e))?;
        if let Some(f) = verify_rows(&mut rows, path, &mut verifier)? {
            return Err(AuditError::Integrity(f));
        }
        let frontier = verifier.frontier().clone();
        if start == n && !options.adopt {
            // Nothing after the witness: it must be the newest checkpoint itself.
            if newest.as_ref().map(|w| &w.witness.checkpoint) != Some(&head) {
                return Err(integrity(
                    R::WitnessMismatch(format!(
                        "the store's newest checkpoint differs from its witness at {n} entries"
                    )),
                    0,
                ));
            }
        }
        verifier.finish(Some(&head), true)?;
        let publish = (witnesses.len() < witness_paths.len() || start < n || options.adopt)
            .then(|| Witness::new(path, head.clone(), &frontier));
        Ok((
            WriterState {
                key,
                frontier,
                head: head.chain_head,
            },
            publish,
        ))
    }
}

fn last_row(conn: &Connection, path: &Path) -> Result<Option<(u64, String)>, AuditError> {
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

fn max_anchor(conn: &Connection, path: &Path) -> Result<u64, AuditError> {
    let max: i64 = match conn.query_row(
        "SELECT COALESCE(MAX(tree_size), 0) FROM audit_checkpoints",
        [],
        |r| r.get(0),
    ) {
        Ok(v) => v,
        Err(e) if e.to_string().contains("no such table") => 0,
        Err(e) => return Err(open_error(path, e)),
    };
    Ok(u64::try_from(max).unwrap_or(0))
}

fn checkpoint_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Checkpoint, String>> {
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

fn query_checkpoints(
    conn: &Connection,
    path: &Path,
    table: &str,
) -> Result<Vec<Checkpoint>, AuditError> {
    let mut stmt = match conn.prepare(&format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM {table} ORDER BY tree_size"
    )) {
        Ok(s) => s,
        // A dropped table holds no checkpoints; verification then finds the entries unsigned.
        Err(e) if e.to_string().contains("no such table") => return Ok(Vec::new()),
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
                    super::audit::IntegrityReason::CheckpointInvalid(why),
                    0,
                ));
            }
        }
    }
    Ok(out)
}

fn read_checkpoints(conn: &Connection, path: &Path) -> Result<Vec<Checkpoint>, AuditError> {
    query_checkpoints(conn, path, "audit_checkpoints")
}

fn read_head(conn: &Connection, path: &Path) -> Result<Option<Checkpoint>, AuditError> {
    let mut heads = query_checkpoints(conn, path, "audit_head")?;
    if heads.len() > 1 {
        return Err(integrity(
            super::audit::IntegrityReason::CheckpointInvalid(
                "the store holds more than one newest checkpoint".into(),
            ),
            0,
        ));
    }
    Ok(heads.pop())
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

/// The writer thread: see the module docs.
struct Writer {
    conn: Connection,
    path: PathBuf,
    state: WriterState,
    listener: Listener,
    witnesses: Vec<WitnessFile>,
    next_key: Arc<Mutex<Option<ed25519_dalek::SigningKey>>>,
}

impl Writer {
    fn run(&mut self, rx: &mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
        for file in &self.witnesses {
            file.sync();
        }
    }

    fn commit_batch(&mut self, batch: Vec<Job>) {
        let old_size = self.state.frontier.size();
        let mut frontier = self.state.frontier.clone();
        for job in &batch {
            frontier.push_leaf_hash(job.leaf);
        }
        let head = batch
            .last()
            .map(|j| j.entry.hash.clone())
            .unwrap_or_else(|| self.state.head.clone());
        let rotating = batch.iter().any(|j| j.rotation);
        let new_key = if rotating {
            self.next_key
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        } else {
            None
        };
        let result = if rotating && new_key.is_none() {
            Err(format!(
                "{}: a key rotation arrived without a prepared key",
                self.path.display()
            ))
        } else {
            let key = new_key.as_ref().unwrap_or(&self.state.key);
            let cp = Checkpoint::sign(key, frontier.size(), frontier.root(), &head);
            let anchor = rotating || frontier.size() / ANCHOR_EVERY > old_size / ANCHOR_EVERY;
            commit(&mut self.conn, &batch, &cp, anchor)
                .map(|()| cp)
                .map_err(|e| {
                    let message = format!(
                        "{}: could not commit audit entries: {e}{}",
                        self.path.display(),
                        lock_hint(&e)
                    );
                    tracing::error!("{message}");
                    message
                })
        };
        if let Ok(cp) = &result {
            if let Some(key) = new_key {
                let key_path = checkpoint::key_path(&self.path);
                if let Err(e) = std::fs::rename(checkpoint::next_key_path(&self.path), &key_path) {
                    // The next open finishes the rotation from the `.key.next` file.
                    tracing::error!(
                        "{}: could not move the new key into place: {e}",
                        key_path.display()
                    );
                }
                self.state.key = key;
            }
            // Witnessed before acknowledged: an acknowledged entry is never beyond the witness.
            let witness = Witness::new(&self.path, cp.clone(), &frontier);
            for file in &mut self.witnesses {
                if let Err(e) = file.write(&witness) {
                    // The store is then ahead of this witness, which the next open accepts.
                    tracing::error!("could not update the audit witness: {e}");
                }
            }
            self.state.frontier = frontier;
            self.state.head = head;
        }
        let ack = result.as_ref().map(|_| ()).map_err(Clone::clone);
        for job in batch {
            let _ = job.done.send(ack.clone());
        }
        if let Ok(cp) = &result {
            notify(&self.listener, cp);
        }
    }
}

fn commit(
    conn: &mut Connection,
    batch: &[Job],
    checkpoint: &Checkpoint,
    anchor: bool,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
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
    let timestamp = checkpoint
        .timestamp
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let values = params![
        checkpoint.tree_size as i64,
        checkpoint.root,
        checkpoint.chain_head,
        timestamp,
        checkpoint.public_key,
        checkpoint.signature
    ];
    tx.prepare_cached(&format!(
        "INSERT INTO audit_head (slot, {CHECKPOINT_COLUMNS}) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT(slot) DO UPDATE SET tree_size = excluded.tree_size, root = excluded.root, \
         chain_head = excluded.chain_head, timestamp = excluded.timestamp, \
         public_key = excluded.public_key, signature = excluded.signature"
    ))?
    .execute(values)?;
    if anchor {
        tx.prepare_cached(&format!(
            "INSERT INTO audit_checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        ))?
        .execute(values)?;
    }
    tx.commit()
}

/// Feeds stored rows (selected with [`COLUMNS`]) to `verifier` without parsing them: each
/// row's columns must compose its stored canonical bytes exactly
/// ([`super::audit::StoredFields::compose`]), and those bytes are what the chain and the tree
/// are checked over. Only key rotation entries are parsed (their metadata is needed).
///
/// Two threads share the work: this one steps SQLite and checks the columns; a scoped worker
/// computes each row's chain and leaf hashes (independent of other rows, since a row carries
/// its own `prev_hash`) and feeds the verifier in order. Chunks of [`VERIFY_CHUNK`] rows pass
/// between them over a bounded channel.
fn verify_rows(
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
                        .map(|prev| super::audit::chain_digest(&prev, canonical));
                    let leaf = super::merkle::leaf_hash(canonical);
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
const VERIFY_CHUNK: usize = 1024;

/// Rows checked against their canonical bytes, which sit end to end in `bytes`; `bad` is the
/// failure that ended reading, after these rows.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    rows: Vec<ChunkRow>,
    bad: Option<IntegrityFailure>,
}

struct ChunkRow {
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
        let fields = super::audit::StoredFields {
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
            && fields.action == super::verify::ROTATION_ACTION
        {
            Some(Box::new(entry_from_row(row, index)?))
        } else {
            None
        };
        let start = self.bytes.len();
        self.bytes.extend_from_slice(canonical);
        self.rows.push(ChunkRow {
            seq,
            prev_hash: super::audit::decode_hash(text(10)?),
            hash: super::audit::decode_hash(text(11)?),
            canonical: start..self.bytes.len(),
            rotation,
        });
        Ok(())
    }
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

impl SqliteStore {
    fn send(
        &self,
        entry: Arc<AuditEntry>,
        canonical: Vec<u8>,
        rotation: bool,
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
                rotation,
                done,
            })
            .map_err(|_| AuditError::Store("the audit writer has stopped".into()))?;
        Ok(AppendTicket::pending(rx))
    }
}

impl AuditStore for SqliteStore {
    fn append(
        &self,
        entry: Arc<AuditEntry>,
        canonical: Vec<u8>,
    ) -> Result<AppendTicket, AuditError> {
        self.send(entry, canonical, false)
    }

    fn append_rotation(
        &self,
        entry: Arc<AuditEntry>,
        canonical: Vec<u8>,
    ) -> Result<AppendTicket, AuditError> {
        self.send(entry, canonical, true)
    }

    fn prepare_rotation(&self) -> Result<RotationPlan, AuditError> {
        use ed25519_dalek::Signer;
        if self.writer.is_none() {
            return Err(AuditError::Store(format!(
                "{}: opened read-only",
                self.path.display()
            )));
        }
        let old = checkpoint::load_key(&checkpoint::key_path(&self.path)).map_err(|p| {
            AuditError::Integrity(IntegrityFailure::log(
                0,
                super::audit::IntegrityReason::SignerNotPinned(p.to_string()),
            ))
        })?;
        let next_path = checkpoint::next_key_path(&self.path);
        let _ = std::fs::remove_file(&next_path);
        let new = checkpoint::create_key(&next_path)?;
        let from = hex::encode(old.verifying_key().to_bytes());
        let to = hex::encode(new.verifying_key().to_bytes());
        let endorsement = hex::encode(
            old.sign(&checkpoint::rotation_message(&from, &to))
                .to_bytes(),
        );
        *self
            .next_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(new);
        Ok(RotationPlan {
            from,
            to,
            endorsement,
        })
    }

    fn signs(&self) -> bool {
        true
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        let Some(conn) = self.reader()? else {
            return Ok(Vec::new());
        };
        let mut all = read_checkpoints(&conn, &self.path)?;
        all.extend(read_head(&conn, &self.path)?);
        Ok(super::verify::sorted_checkpoints(all))
    }

    fn local_anchors(&self) -> Result<TrustAnchors, AuditError> {
        let searched = self.options.witness_paths(&self.path);
        Ok(TrustAnchors {
            key_file: Some(checkpoint::key_file_public_key(&self.path)),
            witnesses: witness::find_witnesses(&self.path, &self.options.witness_dirs)?,
            missing_witness_hint: format!(
                "no witness of this store was found ({}); pass --witness FILE, --key HEX or --expect-size N --expect-head HEX, or, if the store was moved here deliberately, run `veyra audit adopt`",
                searched
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ..TrustAnchors::default()
        })
    }

    fn len(&self) -> Result<u64, AuditError> {
        let Some(conn) = self.reader()? else {
            return Ok(0);
        };
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM audit_entries", [], |r| r.get(0))
            .map_err(|e| open_error(&self.path, e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn last(&self) -> Result<Option<AuditEntry>, AuditError> {
        let Some(conn) = self.reader()? else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM audit_entries ORDER BY seq DESC LIMIT 1"
            ))
            .map_err(|e| open_error(&self.path, e))?;
        let mut rows = stmt.query([]).map_err(|e| open_error(&self.path, e))?;
        match rows.next().map_err(|e| open_error(&self.path, e))? {
            None => Ok(None),
            Some(row) => {
                let seq: i64 = row.get(0).unwrap_or(1);
                entry_from_row(row, u64::try_from(seq).unwrap_or(1).saturating_sub(1))
                    .map(Some)
                    .map_err(AuditError::Integrity)
            }
        }
    }

    fn on_checkpoint(&self, listener: CheckpointListener) {
        *self
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(listener);
    }

    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        let Some(conn) = self.reader()? else {
            return Ok(None);
        };
        read_head(&conn, &self.path)
    }

    fn verify_entries(
        &self,
        verifier: &mut LogVerifier<'_>,
    ) -> Result<Option<IntegrityFailure>, AuditError> {
        let Some(conn) = self.reader()? else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM audit_entries ORDER BY seq"))
            .map_err(|e| open_error(&self.path, e))?;
        let mut rows = stmt.query([]).map_err(|e| open_error(&self.path, e))?;
        verify_rows(&mut rows, &self.path, verifier)
    }

    fn scan(&self, visit: &mut dyn FnMut(&AuditEntry) -> bool) -> Result<(), AuditError> {
        let Some(conn) = self.reader()? else {
            return Ok(());
        };
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
