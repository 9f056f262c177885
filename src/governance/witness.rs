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
//! The file has two slots of [`SLOT`] bytes, each a whole witness padded with spaces. The
//! store's writer overwrites the older slot in place after every commit, before it
//! acknowledges the commit's entries, so an acknowledged entry is always witnessed (in the page
//! cache). There is no fsync (one at close): a witness that lags behind after a power loss is
//! legitimate (the store is *ahead*), and a write torn by one leaves the other slot whole. A
//! store *behind* its witness has lost acknowledged entries. Writing in place costs no new
//! inode or directory entry, which would weigh on the store's own fsync.
//!
//! A witness copied elsewhere (to publish it) may be either that file or one witness as plain
//! JSON; [`read_witness`] reads both.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuditError;
use super::checkpoint::{Checkpoint, fingerprint};
use super::merkle::Frontier;

/// Bytes of one slot of a witness file (a witness is at most a few KiB: the frontier holds at
/// most 64 peaks).
pub const SLOT: usize = 16 * 1024;

/// Most bytes of a witness file: its two slots (a witness kept as plain JSON is smaller).
pub const MAX_WITNESS_BYTES: u64 = 2 * SLOT as u64;

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
    dir.join(format!("{}.json", store_key(store)))
}

/// The store's key: the first 16 hex digits of SHA-256 of its canonical absolute path — its
/// witness file's name, and its key in a fleet's witness bucket.
pub fn store_key(store: &Path) -> String {
    let canonical = canonical_store_path(store);
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..8])
}

/// Parses a witness kept as plain JSON elsewhere (a fleet's witness bucket), checked as a
/// witness file's slot is; `from` names it in errors.
pub fn parse_witness(bytes: &[u8], from: &str) -> Result<Witness, AuditError> {
    let damaged = |why: String| {
        AuditError::Integrity(super::integrity::IntegrityFailure::log(
            0,
            super::integrity::IntegrityReason::WitnessMismatch(format!(
                "the witness {from} is damaged: {why}"
            )),
        ))
    };
    if bytes.len() as u64 > MAX_WITNESS_BYTES {
        return Err(damaged(format!("{} bytes, over the limit", bytes.len())));
    }
    let witness: Witness = serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))?;
    witness.validate().map(drop).map_err(damaged)?;
    Ok(witness)
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

/// Reads one witness file (two slots, or plain JSON): the newest valid witness in it,
/// `Ok(None)` when there is no file or its slots are blank.
///
/// A witness that is not a regular file of at most [`MAX_WITNESS_BYTES`] is damaged (a FIFO,
/// `/dev/zero` or a huge file in its place is refused at once, never waited on or loaded).
pub fn read_witness(path: &Path) -> Result<Option<Witness>, AuditError> {
    let damaged = |why: String| {
        AuditError::Integrity(super::integrity::IntegrityFailure::log(
            0,
            super::integrity::IntegrityReason::WitnessMismatch(format!(
                "the witness {} is damaged: {why}; if the store is sound, check it with `veyra audit verify --key HEX` and run `veyra audit adopt`",
                path.display()
            )),
        ))
    };
    let bytes = match crate::fsread::read_regular(path, MAX_WITNESS_BYTES, "audit witness") {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e @ crate::fsread::BoundedReadError::Io { .. }) => {
            return Err(AuditError::Store(e.to_string()));
        }
        Err(
            e @ (crate::fsread::BoundedReadError::NotRegular { .. }
            | crate::fsread::BoundedReadError::TooLarge { .. }
            | crate::fsread::BoundedReadError::NotUtf8 { .. }),
        ) => return Err(damaged(e.reason())),
    };
    if bytes.len() == 2 * SLOT {
        let mut best: Option<Witness> = None;
        let mut problems = Vec::new();
        for slot in bytes.chunks(SLOT) {
            let text = String::from_utf8_lossy(slot);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_str::<Witness>(text) {
                Ok(w) => match w.validate() {
                    Ok(_) => {
                        if best
                            .as_ref()
                            .is_none_or(|b| b.checkpoint.tree_size < w.checkpoint.tree_size)
                        {
                            best = Some(w);
                        }
                    }
                    Err(e) => problems.push(e),
                },
                Err(e) => problems.push(e.to_string()),
            }
        }
        return match (best, problems.is_empty()) {
            (Some(w), _) => Ok(Some(w)),
            (None, true) => Ok(None),
            (None, false) => Err(damaged(problems.join("; "))),
        };
    }
    let text = String::from_utf8_lossy(&bytes);
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| damaged(format!("line {} column {}: {e}", e.line(), e.column())))
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

/// A witness file open for writing (see the module docs).
#[derive(Debug)]
pub struct WitnessFile {
    path: PathBuf,
    file: std::fs::File,
    /// The slot the next write goes to.
    next: u64,
    /// How many bytes of each slot may hold text (the rest is spaces already).
    used: [usize; 2],
}

impl WitnessFile {
    /// Opens (creating, mode 0600, in a 0700 directory) the witness file at `path`. A file
    /// that is not two slots (plain JSON, a new file) is rewritten as two at the first write.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let fail = |e: std::io::Error| {
            AuditError::Store(format!(
                "{}: cannot open the audit witness: {e} (set governance.witness_dir to a writable place outside the store's directory)",
                path.display()
            ))
        };
        if let Some(dir) = path.parent() {
            private_dir(dir).map_err(fail)?;
        }
        // Without waiting (a FIFO opens at once), and only a regular file: the handle is
        // checked, and the old content read through it, never through the path again.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(crate::fsread::OPEN_FLAGS)
            .open(path)
            .map_err(fail)?;
        let not_regular = |e: crate::fsread::BoundedReadError| {
            AuditError::Store(format!(
                "{}: cannot open the audit witness: {}; remove it (the store's writer makes a \
                 new one) or set governance.witness_dir to another place",
                path.display(),
                e.reason()
            ))
        };
        let len = crate::fsread::check_regular(&file, path, "audit witness")
            .map_err(not_regular)?
            .len();
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
        if len != 2 * SLOT as u64 {
            // A witness kept as plain JSON moves into the first slot; anything else (read no
            // further than a witness can be) is not one.
            let mut old = Vec::new();
            (&file)
                .take(MAX_WITNESS_BYTES)
                .read_to_end(&mut old)
                .map_err(fail)?;
            let mut slots = vec![b' '; 2 * SLOT];
            if serde_json::from_slice::<Witness>(&old).is_ok() && old.len() < SLOT {
                slots[..old.len()].copy_from_slice(&old);
            }
            file.set_len(0).map_err(fail)?;
            file.write_all_at(&slots, 0).map_err(fail)?;
        }
        // Write over the older slot first.
        let size = |slot: u64| -> u64 {
            let mut buf = vec![0u8; SLOT];
            if file.read_exact_at(&mut buf, slot * SLOT as u64).is_err() {
                return 0;
            }
            serde_json::from_str::<Witness>(String::from_utf8_lossy(&buf).trim())
                .map_or(0, |w| w.checkpoint.tree_size)
        };
        let next = if size(0) <= size(1) { 0 } else { 1 };
        Ok(WitnessFile {
            path: path.to_path_buf(),
            file,
            next,
            used: [SLOT; 2],
        })
    }

    /// Writes `witness` (compact JSON) over the older slot, in place, without an fsync.
    pub fn write(&mut self, witness: &Witness) -> Result<(), String> {
        let mut text = serde_json::to_vec(witness).map_err(|e| e.to_string())?;
        if text.len() >= SLOT {
            return Err(format!(
                "{}: the witness is {} bytes, more than a slot holds ({SLOT})",
                self.path.display(),
                text.len()
            ));
        }
        // Blank only what the slot's previous text may have used: the rest is spaces already.
        let slot = usize::from(self.next == 1);
        let len = text.len();
        text.resize(self.used[slot].max(len + 1).min(SLOT), b' ');
        self.file
            .write_all_at(&text, self.next * SLOT as u64)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.used[slot] = len + 1;
        self.next ^= 1;
        Ok(())
    }

    /// Makes the file durable (when the store closes).
    pub fn sync(&self) {
        let _ = self.file.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` off the test's thread, failing if it hangs (a guard, not a measure of speed).
    fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the witness read hung")
    }

    fn mkfifo(path: &Path) {
        let made = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(made.success());
    }

    #[test]
    fn a_witness_that_is_a_fifo_dev_zero_or_huge_is_damaged_not_waited_on_or_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.json");
        mkfifo(&fifo);
        let zero = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let huge = dir.path().join("huge.json");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(8 << 30)
            .unwrap();
        for (path, needle) in [(fifo, "FIFO"), (zero, "character device"), (huge, "32 KiB")] {
            let shown = path.clone();
            let err = within_a_minute(move || read_witness(&shown).unwrap_err());
            assert!(err.is_integrity_failure(), "{err:?}");
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(needle), "{text}");
        }
        assert!(
            read_witness(&dir.path().join("none.json"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_writer_refuses_a_fifo_in_the_witness_place_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("w.json");
        mkfifo(&fifo);
        let shown = fifo.clone();
        let err = within_a_minute(move || WitnessFile::open(&shown).unwrap_err());
        let text = err.to_string();
        assert!(text.contains("FIFO") && text.contains("w.json"), "{text}");
        let zero = dir.path().join("z.json");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = within_a_minute(move || WitnessFile::open(&zero).unwrap_err());
        assert!(err.to_string().contains("character device"), "{err}");
    }
}
