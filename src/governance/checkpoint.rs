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

/// Loads the store's signing key, creating it (mode 0600) if there is none.
pub fn load_or_create_key(store: &Path) -> Result<SigningKey, AuditError> {
    let path = key_path(store);
    if path.exists() {
        return load_key(&path);
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| AuditError::Store(format!("no randomness for a new checkpoint key: {e}")))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
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

fn load_key(path: &Path) -> Result<SigningKey, AuditError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| AuditError::Store(format!("{}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AuditError::Store(format!(
            "{}: the checkpoint key is readable by others (mode {mode:o}); run chmod 600 on it",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        AuditError::Store(format!(
            "{}: cannot read the checkpoint key: {e}",
            path.display()
        ))
    })?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            AuditError::Store(format!(
                "{}: not a checkpoint key (expected 64 hex digits)",
                path.display()
            ))
        })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key pinned for the store at `store`, if its key file can be read.
pub fn pinned_public_key(store: &Path) -> Option<[u8; 32]> {
    load_key(&key_path(store))
        .ok()
        .map(|k| k.verifying_key().to_bytes())
}
