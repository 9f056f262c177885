//! The persistent audit store: SQLite (bundled), WAL mode, `synchronous=FULL`. The tables
//! are laid out in `schema.rs`; the one-writer lock and the files' modes are in `files.rs`;
//! the writer thread and its checks on opening in `writer.rs`; reading rows back in `rows.rs`.
//!
//! # Writing
//! One writer thread owns the write connection. Appends arrive in chain order over a channel;
//! the writer takes everything waiting (up to [`MAX_BATCH`]) into one transaction with the
//! signed checkpoint that covers it, commits (one fsync — group commit), hands the checkpoint
//! to the witness writer ([`super::witness`]), then confirms each entry through its ticket's
//! oneshot (sending never blocks the writer). A trail awaits that confirmation, so `record`
//! resolves only once its entry is durable and signed — the waiting task is suspended, no
//! async worker is held — and a legitimate writer never leaves an unsigned tail, so entries
//! beyond the newest checkpoint are forgery.
//!
//! # Opening for append
//! A writer checks the store before it signs anything (so a new checkpoint cannot launder
//! damage): the key file pins the signer of the newest checkpoint; the store must not be behind
//! any witness; the entries since the newest witness are verified and must lead to the newest
//! checkpoint, whose tree head the writer then continues from. A key is created only for an
//! empty store. This costs O(entries since the witness), not O(log size).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, params};

use super::AuditError;
use super::audit::{AuditEntry, AuditEventType};
use super::checkpoint::{self, Checkpoint, KeyProblem};
use super::integrity::{IntegrityFailure, IntegrityReason, VerifyReport};
use super::journal::JournalBlob;
use super::store::{AppendTicket, AuditStore, CheckpointListener, RotationPlan};
use super::verify::{LogVerifier, TrustAnchors};
use super::witness::{self, FoundWitness, Witness, WitnessFile};

/// Entries committed together at most.
pub const MAX_BATCH: usize = 1024;

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
    /// What the recorded tool call replaced, kept in `tool_journal` in the same transaction.
    journal: Option<JournalBlob>,
    /// The acknowledgement: sent once the entry is durable (or why it is not).
    done: tokio::sync::oneshot::Sender<Result<(), String>>,
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

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer after it has committed what it holds.
        self.writer = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl SqliteStore {
    fn send(
        &self,
        entry: Arc<AuditEntry>,
        canonical: Vec<u8>,
        rotation: bool,
        journal: Option<JournalBlob>,
    ) -> Result<AppendTicket, AuditError> {
        let Some(writer) = &self.writer else {
            return Err(AuditError::Store(format!(
                "{}: opened read-only",
                self.path.display()
            )));
        };
        let metadata = super::audit::canonical_json(&entry.metadata)?;
        let (done, rx) = tokio::sync::oneshot::channel();
        writer
            .lock()
            .map_err(|_| AuditError::Store("the audit writer was poisoned by a panic".into()))?
            .send(Job {
                entry,
                leaf: super::merkle::leaf_hash(&canonical),
                canonical,
                metadata,
                rotation,
                journal,
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
        self.send(entry, canonical, false, None)
    }

    fn append_journaled(
        &self,
        entry: Arc<AuditEntry>,
        canonical: Vec<u8>,
        journal: JournalBlob,
    ) -> Result<AppendTicket, AuditError> {
        self.send(entry, canonical, false, Some(journal))
    }

    fn journal(&self, seq: u64) -> Result<Option<JournalBlob>, AuditError> {
        let Some(conn) = self.reader()? else {
            return Ok(None);
        };
        let found = conn.query_row(
            "SELECT content, sha256 FROM tool_journal WHERE seq = ?1",
            params![i64::try_from(seq).unwrap_or(i64::MAX)],
            |row| {
                // Read as bytes whatever the column's type: a blob edited into text is judged
                // by its hash like any other tampering, not reported as an I/O error.
                let content = row.get_ref(0)?.as_bytes().map(<[u8]>::to_vec);
                let sha256 = row.get_ref(1)?.as_bytes().map(<[u8]>::to_vec);
                Ok((content, sha256))
            },
        );
        match found {
            Ok((content, sha256)) => Ok(Some(JournalBlob {
                content: content.unwrap_or_default(),
                sha256: String::from_utf8_lossy(&sha256.unwrap_or_default()).into_owned(),
            })),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) if missing_table(&e) => Ok(None),
            Err(e) => Err(open_error(&self.path, e)),
        }
    }

    fn append_rotation(
        &self,
        entry: Arc<AuditEntry>,
        canonical: Vec<u8>,
    ) -> Result<AppendTicket, AuditError> {
        self.send(entry, canonical, true, None)
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
                IntegrityReason::SignerNotPinned(p.to_string()),
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
        let n: i64 = match conn.query_row("SELECT COUNT(*) FROM audit_entries", [], |r| r.get(0)) {
            Ok(n) => n,
            Err(e) if missing_table(&e) => 0,
            Err(e) => return Err(open_error(&self.path, e)),
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn last(&self) -> Result<Option<AuditEntry>, AuditError> {
        let Some(conn) = self.reader()? else {
            return Ok(None);
        };
        let mut stmt = match conn.prepare(&format!(
            "SELECT {COLUMNS} FROM audit_entries ORDER BY seq DESC LIMIT 1"
        )) {
            Ok(stmt) => stmt,
            Err(e) if missing_table(&e) => return Ok(None),
            Err(e) => return Err(open_error(&self.path, e)),
        };
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

    fn verify_log(&self, anchors: &TrustAnchors) -> Result<VerifyReport, AuditError> {
        let Some(conn) = self.reader()? else {
            // No file, or no tables: an empty log, held against its witnesses.
            return Ok(LogVerifier::new(&[], anchors).finish(None, true)?);
        };
        // One read transaction: the checkpoints and the entries come from one snapshot even
        // while the writer commits.
        conn.execute_batch("BEGIN")
            .map_err(|e| open_error(&self.path, e))?;
        let result = (|| {
            let mut checkpoints = read_checkpoints(&conn, &self.path)?;
            let head = read_head(&conn, &self.path)?;
            checkpoints.extend(head.clone());
            let checkpoints = super::verify::sorted_checkpoints(checkpoints);
            let mut verifier = LogVerifier::new(&checkpoints, anchors);
            let mut stmt = match conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM audit_entries ORDER BY seq"))
            {
                Ok(stmt) => stmt,
                // A dropped entries table holds nothing; the witness says what is missing.
                Err(e) if e.to_string().contains("no such table") => {
                    return Ok(verifier.finish(head.as_ref(), true)?);
                }
                Err(e) => return Err(open_error(&self.path, e)),
            };
            let mut rows = stmt.query([]).map_err(|e| open_error(&self.path, e))?;
            if let Some(f) = verify_rows(&mut rows, &self.path, &mut verifier)? {
                return Err(AuditError::Integrity(f));
            }
            Ok(verifier.finish(head.as_ref(), true)?)
        })();
        let _ = conn.execute_batch("COMMIT");
        result
    }

    fn scan(&self, visit: &mut dyn FnMut(&AuditEntry) -> bool) -> Result<(), AuditError> {
        let Some(conn) = self.reader()? else {
            return Ok(());
        };
        let mut stmt =
            match conn.prepare(&format!("SELECT {COLUMNS} FROM audit_entries ORDER BY seq")) {
                Ok(stmt) => stmt,
                Err(e) if missing_table(&e) => return Ok(()),
                Err(e) => return Err(open_error(&self.path, e)),
            };
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

    /// Reads the `canonical` column only: no entry is rebuilt.
    fn scan_leaf_hashes(&self, visit: &mut dyn FnMut([u8; 32]) -> bool) -> Result<(), AuditError> {
        let Some(conn) = self.reader()? else {
            return Ok(());
        };
        let mut stmt = match conn.prepare_cached("SELECT canonical FROM audit_entries ORDER BY seq")
        {
            Ok(stmt) => stmt,
            Err(e) if missing_table(&e) => return Ok(()),
            Err(e) => return Err(open_error(&self.path, e)),
        };
        let mut rows = stmt.query([]).map_err(|e| open_error(&self.path, e))?;
        while let Some(row) = rows.next().map_err(|e| open_error(&self.path, e))? {
            // Read as bytes whatever the column's type, as verification does.
            let canonical = row
                .get_ref(0)
                .ok()
                .and_then(|v| v.as_bytes().ok())
                .unwrap_or_default();
            if !visit(super::merkle::leaf_hash(canonical)) {
                break;
            }
        }
        Ok(())
    }

    fn scan_from(
        &self,
        seq: u64,
        visit: &mut dyn FnMut(&AuditEntry) -> bool,
    ) -> Result<(), AuditError> {
        let Some(conn) = self.reader()? else {
            return Ok(());
        };
        let from = i64::try_from(seq).unwrap_or(i64::MAX);
        let mut stmt = match conn.prepare(&format!(
            "SELECT {COLUMNS} FROM audit_entries WHERE seq >= ?1 ORDER BY seq"
        )) {
            Ok(stmt) => stmt,
            Err(e) if missing_table(&e) => return Ok(()),
            Err(e) => return Err(open_error(&self.path, e)),
        };
        let mut rows = stmt.query([from]).map_err(|e| open_error(&self.path, e))?;
        // Entry numbers in messages count from the first entry (sequence number 1).
        let mut index = seq.saturating_sub(1);
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

mod files;
mod rows;
mod schema;
mod writer;

use files::{check_witness_dirs, private_files, take_lock};
use rows::{entry_from_row, missing_table, read_checkpoints, read_head, verify_rows};
pub use schema::{ANCHOR_EVERY, FORMAT_VERSION};
use schema::{CHECKPOINT_COLUMNS, COLUMNS, SCHEMA, check_format, configure, configure_reader};
use writer::{Listener, Writer, WriterState};

#[cfg(test)]
mod tests;
