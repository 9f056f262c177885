//! Signed checkpoints: a hash chain alone cannot show that its tail was cut off or that the
//! whole chain was rewritten; a signed statement of "N entries, this tree head, this chain
//! head" can.
//!
//! # Format
//! A [`Checkpoint`] holds the tree size, the RFC 6962 tree head of the first `tree_size`
//! entries, the chain head (hash of entry `tree_size`), the time, the signer's Ed25519 public
//! key and the signature, all hex. The signed message is the UTF-8 text
//! `veyra-checkpoint/1\n<tree_size>\n<root>\n<chain_head>\n<timestamp>\n` (timestamp RFC 3339,
//! microseconds, `Z`).
//!
//! # Key
//! The signing key is a 32-byte Ed25519 seed, hex, in `<store>.key` beside the store, created
//! with mode 0600 on first use; a key file that others can read is refused. Verification pins
//! that key: a checkpoint signed by any other key (a chain rewritten with a fresh key) fails.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::AuditError;

/// One signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Entries covered.
    pub tree_size: u64,
    /// RFC 6962 tree head of those entries (hex).
    pub root: String,
    /// Hash of entry `tree_size` (hex).
    pub chain_head: String,
    /// When it was signed.
    pub timestamp: DateTime<Utc>,
    /// Signer's Ed25519 public key (hex).
    pub public_key: String,
    /// Ed25519 signature of [`Checkpoint::message`] (hex).
    pub signature: String,
}

impl Checkpoint {
    /// The bytes that are signed.
    pub fn message(
        tree_size: u64,
        root: &str,
        chain_head: &str,
        timestamp: &DateTime<Utc>,
    ) -> Vec<u8> {
        format!(
            "veyra-checkpoint/1\n{tree_size}\n{root}\n{chain_head}\n{}\n",
            timestamp.to_rfc3339_opts(SecondsFormat::Micros, true)
        )
        .into_bytes()
    }

    /// Signs a checkpoint now.
    pub fn sign(key: &SigningKey, tree_size: u64, root: [u8; 32], chain_head: &str) -> Self {
        let timestamp = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        let root = hex::encode(root);
        let signature = key.sign(&Self::message(tree_size, &root, chain_head, &timestamp));
        Checkpoint {
            tree_size,
            root,
            chain_head: chain_head.to_string(),
            timestamp,
            public_key: hex::encode(key.verifying_key().to_bytes()),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Checks the signature against the embedded public key; returns that key.
    pub fn verify_signature(&self) -> Result<[u8; 32], String> {
        // Written in lowercase; another spelling of the same bytes was not written by Veyra.
        let lowercase = |t: &str| {
            t.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !lowercase(&self.public_key) || !lowercase(&self.signature) {
            return Err("the key or signature is not in its written form (lowercase hex)".into());
        }
        let key: [u8; 32] = hex::decode(&self.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the public key is not 32 bytes of hex")?;
        let sig: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the signature is not 64 bytes of hex")?;
        let verifying =
            VerifyingKey::from_bytes(&key).map_err(|e| format!("bad public key: {e}"))?;
        let message = Self::message(
            self.tree_size,
            &self.root,
            &self.chain_head,
            &self.timestamp,
        );
        verifying
            .verify_strict(&message, &Signature::from_bytes(&sig))
            .map_err(|_| "the signature does not match".to_string())?;
        Ok(key)
    }
}

/// Where the signing key of the store at `store` lives.
pub fn key_path(store: &Path) -> PathBuf {
    store.with_extension("key")
}

/// Where a key being rotated in waits until the checkpoint it signs is durable.
pub fn next_key_path(store: &Path) -> PathBuf {
    store.with_extension("key.next")
}

/// A short, stable name for a public key: the first 16 hex digits of its SHA-256.
pub fn fingerprint(public_key: &[u8; 32]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(public_key)[..8])
}

/// Why a key file cannot pin the signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// There is no key file.
    Missing(PathBuf),
    /// Others may read it.
    TooOpen(PathBuf, u32),
    /// It cannot be read.
    Unreadable(PathBuf, String),
    /// It is not 64 hex digits.
    Malformed(PathBuf),
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyProblem::Missing(p) => write!(f, "the key file {} is missing", p.display()),
            KeyProblem::TooOpen(p, mode) => write!(
                f,
                "the key file {} is readable by others (mode {mode:o}), so it may have been replaced or copied; check it, then chmod 600",
                p.display()
            ),
            KeyProblem::Unreadable(p, e) => {
                write!(f, "the key file {} cannot be read: {e}", p.display())
            }
            KeyProblem::Malformed(p) => write!(
                f,
                "the key file {} is not a checkpoint key (expected 64 hex digits)",
                p.display()
            ),
        }
    }
}

/// Writes a fresh random key to `path` (mode 0600, synced); fails if the file exists.
pub fn create_key(path: &Path) -> Result<SigningKey, AuditError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| AuditError::Store(format!("no randomness for a new checkpoint key: {e}")))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            AuditError::Store(format!(
                "{}: cannot create the checkpoint key: {e}",
                path.display()
            ))
        })?;
    file.write_all(hex::encode(seed).as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| {
            AuditError::Store(format!(
                "{}: cannot write the checkpoint key: {e}",
                path.display()
            ))
        })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Most bytes of a key file: 64 hex digits and perhaps a newline.
pub const MAX_KEY_BYTES: u64 = 4 * 1024;

/// Loads a signing key, refusing a missing, unreadable, malformed or too-open file, and anything
/// but a regular file of at most [`MAX_KEY_BYTES`] ([`crate::fsread`]: the mode is checked on
/// the opened file, which is the one read).
pub fn load_key(path: &Path) -> Result<SigningKey, KeyProblem> {
    let unreadable = |e: crate::fsread::BoundedReadError| {
        if e.is_not_found() {
            KeyProblem::Missing(path.to_path_buf())
        } else {
            KeyProblem::Unreadable(path.to_path_buf(), e.reason())
        }
    };
    let (file, meta) = crate::fsread::open_regular(path, "key file").map_err(unreadable)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyProblem::TooOpen(path.to_path_buf(), mode));
    }
    let bytes =
        crate::fsread::read_capped(file, path, MAX_KEY_BYTES, "key file").map_err(unreadable)?;
    let text = crate::fsread::utf8(bytes, path, "key file").map_err(unreadable)?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| KeyProblem::Malformed(path.to_path_buf()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key of the store's key file, or why it cannot pin the signer.
pub fn key_file_public_key(store: &Path) -> Result<[u8; 32], KeyProblem> {
    load_key(&key_path(store)).map(|k| k.verifying_key().to_bytes())
}

/// Decodes a 32-byte public key from hex.
pub fn parse_public_key(text: &str) -> Option<[u8; 32]> {
    let bytes: [u8; 32] = hex::decode(text.trim()).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()?;
    Some(bytes)
}

/// The message an old key signs to hand the log over to a new key.
pub fn rotation_message(from: &str, to: &str) -> Vec<u8> {
    format!("veyra-key-rotation/1\n{from}\n{to}\n").into_bytes()
}

/// Checks that `from` endorsed `to` with `endorsement` (all hex).
pub fn verify_rotation(from: &str, to: &str, endorsement: &str) -> Result<(), String> {
    let key = parse_public_key(from).ok_or("the old key is not 32 bytes of hex")?;
    parse_public_key(to).ok_or("the new key is not 32 bytes of hex")?;
    let sig: [u8; 64] = hex::decode(endorsement)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the endorsement is not 64 bytes of hex")?;
    VerifyingKey::from_bytes(&key)
        .map_err(|e| format!("bad old key: {e}"))?
        .verify_strict(&rotation_message(from, to), &Signature::from_bytes(&sig))
        .map_err(|_| "the old key's endorsement of the new key does not verify".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_that_is_no_regular_file_or_too_big_is_unreadable_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.key");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o600)).unwrap();
        let zero = dir.path().join("zero.key");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let huge = dir.path().join("huge.key");
        let f = std::fs::File::create(&huge).unwrap();
        f.set_len(MAX_KEY_BYTES + 1).unwrap();
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .unwrap();
        for (path, needle) in [(fifo, "FIFO"), (zero, "character device"), (huge, "4 KiB")] {
            let (tx, rx) = std::sync::mpsc::channel();
            let shown = path.clone();
            std::thread::spawn(move || {
                let _ = tx.send(load_key(&shown).map(|_| ()));
            });
            let problem = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("loading the key hung")
                .unwrap_err();
            assert!(
                matches!(&problem, KeyProblem::Unreadable(p, _) if *p == path),
                "{problem:?}"
            );
            assert!(problem.to_string().contains(needle), "{problem}");
        }
        let good = dir.path().join("good.key");
        create_key(&good).unwrap();
        assert!(load_key(&good).is_ok());
        assert!(matches!(
            load_key(&dir.path().join("none.key")),
            Err(KeyProblem::Missing(_))
        ));
    }
}
