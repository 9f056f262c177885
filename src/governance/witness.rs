//! The witness: a copy of each signed checkpoint kept outside the store's directory, so that
//! someone who can rewrite the store cannot also roll it back unseen.
//!
//! # Format
//! One JSON file per store, `<witness dir>/<store key>.json`, where the store key is the first
//! 16 hex digits of SHA-256 of the store's canonical absolute path (the store file cannot
//! redirect its own witness). It holds the format tag `veyra.witness/1`, the store's path, the
//! newest [`Checkpoint`] (tree size, tree head, chain head, time, signer, signature), the signer's
//! [`fingerprint`], and the Merkle frontier at that size (the peaks, hex), from which a writer
//! resumes without reading the log; the frontier is authenticated by hashing it to the signed
//! tree head.
//!
//! # Writing
//! The store's writer hands every committed checkpoint to [`WitnessWriter`], whose thread
//! writes the newest one it has (older ones are skipped) with write-to-temporary and rename,
//! mode 0600, in a 0700 directory, without an fsync: a witness that lags behind after a crash is
//! legitimate (the store is *ahead*); a store *behind* its witness has lost acknowledged entries.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuditError;
use super::checkpoint::{Checkpoint, fingerprint};
use super::merkle::Frontier;

/// Format tag of a witness file.
pub const WITNESS_FORMAT: &str = "veyra.witness/1";

/// One witness file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Witness {
    /// [`WITNESS_FORMAT`].
    pub format: String,
    /// The store it witnesses (for people; the file name is what binds it).
    pub store: String,
    /// Fingerprint of the signer ([`fingerprint`] of `checkpoint.public_key`).
    pub signer: String,
    /// The newest checkpoint seen.
    pub checkpoint: Checkpoint,
    /// Merkle frontier peaks at `checkpoint.tree_size`, largest first (hex).
    pub frontier: Vec<String>,
}

impl Witness {
    /// The witness of `checkpoint` with the `frontier` it was signed over.
    pub fn new(store: &Path, checkpoint: Checkpoint, frontier: &Frontier) -> Self {
        let signer = super::checkpoint::parse_public_key(&checkpoint.public_key)
            .map(|k| fingerprint(&k))
            .unwrap_or_default();
        Witness {
            format: WITNESS_FORMAT.to_string(),
            store: store.display().to_string(),
            signer,
            checkpoint,
            frontier: frontier.peaks(),
        }
    }

    /// Checks the file's own consistency: format, signature, fingerprint, and that the frontier
    /// hashes to the signed tree head. Returns the signer's key and the frontier.
    pub fn validate(&self) -> Result<([u8; 32], Frontier), String> {
        if self.format != WITNESS_FORMAT {
            return Err(format!(
                "unsupported witness format '{}' (this Veyra reads '{WITNESS_FORMAT}')",
                self.format
            ));
        }
        let key = self
            .checkpoint
            .verify_signature()
            .map_err(|e| format!("its checkpoint does not verify: {e}"))?;
        if fingerprint(&key) != self.signer {
            return Err("its signer fingerprint does not match its checkpoint's key".into());
        }
        let frontier = Frontier::from_peaks(self.checkpoint.tree_size, &self.frontier)
            .filter(|f| hex::encode(f.root()) == self.checkpoint.root)
            .ok_or("its frontier does not hash to its signed tree head")?;
        Ok((key, frontier))
    }
}

/// A witness read from a file, with where it came from.
#[derive(Debug, Clone)]
pub struct FoundWitness {
    /// The file.
    pub path: PathBuf,
    /// Its content.
    pub witness: Witness,
}

/// The file name of the witness of the store at `store` (see the module docs).
pub fn witness_file(store: &Path, dir: &Path) -> PathBuf {
    let canonical = canonical_store_path(store);
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    dir.join(format!("{}.json", hex::encode(&digest[..8])))
}

/// The store's absolute path with its directory resolved (the file itself may not exist).
pub fn canonical_store_path(store: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(store) {
        return p;
    }
    let name = store.file_name().map(PathBuf::from).unwrap_or_default();
    let parent = store
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(parent)
        .map(|p| p.join(&name))
        .unwrap_or_else(|_| store.to_path_buf())
}

/// Reads one witness file: `Ok(None)` when there is none.
pub fn read_witness(path: &Path) -> Result<Option<Witness>, AuditError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(AuditError::Store(format!(
                "{}: cannot read the audit witness: {e}",
                path.display()
            )));
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        AuditError::Store(format!(
            "{}:{}:{}: not a Veyra audit witness: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

/// Every witness of `store` found in `dirs`.
pub fn find_witnesses(store: &Path, dirs: &[PathBuf]) -> Result<Vec<FoundWitness>, AuditError> {
    let mut found = Vec::new();
    for dir in dirs {
        let path = witness_file(store, dir);
        if let Some(witness) = read_witness(&path)? {
            found.push(FoundWitness { path, witness });
        }
    }
    Ok(found)
}

/// Creates `dir` (and its parents) with mode 0700, and makes `dir` itself 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Writes `witness` to `path` atomically (temporary file, then rename), mode 0600, no fsync.
pub fn write_witness(path: &Path, witness: &Witness) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{}: no directory", path.display()))?;
    private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_vec_pretty(witness).map_err(|e| e.to_string())?;
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    file.write_all(&text)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Fsyncs a witness file (when the store closes).
fn sync_witness(path: &Path) {
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.sync_all();
    }
}

#[derive(Default)]
struct Slot {
    newest: Option<Witness>,
    closing: bool,
}

/// Writes witnesses off the store's writer thread, newest first, skipping superseded ones.
pub struct WitnessWriter {
    shared: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WitnessWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessWriter").finish_non_exhaustive()
    }
}

impl WitnessWriter {
    /// Starts the thread that writes to every file in `paths`.
    pub fn start(paths: Vec<PathBuf>) -> Result<Self, AuditError> {
        let shared: Arc<(Mutex<Slot>, Condvar)> = Arc::default();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("veyra-audit-witness".into())
            .spawn(move || witness_loop(&thread_shared, &paths))
            .map_err(|e| AuditError::Store(format!("cannot start the witness writer: {e}")))?;
        Ok(WitnessWriter {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `witness`, replacing any not yet written.
    pub fn publish(&self, witness: Witness) {
        let (lock, wake) = &*self.shared;
        let mut slot = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.newest = Some(witness);
        wake.notify_one();
    }

    /// Writes everything queued, fsyncs, and stops the thread.
    pub fn close(&mut self) {
        {
            let (lock, wake) = &*self.shared;
            let mut slot = lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            slot.closing = true;
            wake.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for WitnessWriter {
    fn drop(&mut self) {
        self.close();
    }
}

fn witness_loop(shared: &(Mutex<Slot>, Condvar), paths: &[PathBuf]) {
    let (lock, wake) = shared;
    loop {
        let (next, closing) = {
            let mut slot = lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while slot.newest.is_none() && !slot.closing {
                slot = wake
                    .wait(slot)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            (slot.newest.take(), slot.closing)
        };
        if let Some(witness) = next {
            for path in paths {
                if let Err(e) = write_witness(path, &witness) {
                    tracing::error!("could not update the audit witness: {e}");
                }
            }
        }
        if closing {
            let (lock, _) = shared;
            let rest = lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .newest
                .take();
            for path in paths {
                if let Some(w) = &rest
                    && let Err(e) = write_witness(path, w)
                {
                    tracing::error!("could not update the audit witness: {e}");
                }
                sync_witness(path);
            }
            return;
        }
    }
}
