//! Audit exports: a JSON document that `veyra audit verify --file` checks offline.
//!
//! # Format (`veyra.audit.export/2`)
//! - `entries`: a whole export holds every entry from seq 1, in order; a filtered export holds
//!   the selected entries, with `proofs`, one RFC 6962 inclusion proof per entry against the
//!   checkpoint's tree head.
//! - `key_rotations` (filtered exports): every key rotation entry with its proof, so the signer
//!   history can be followed without the rest of the log.
//! - `checkpoint`: the signed checkpoint that covers every entry of the log at export time.
//!
//! Verification is strict: no checkpoint, entries it does not cover, a checkpoint covering more
//! than a whole export holds, or a signer other than the pinned one (`--key`, the local store's
//! key, or a witness) all fail. Printing a key is not pinning it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::audit::AuditEntry;
use super::checkpoint::{Checkpoint, fingerprint, parse_public_key, verify_rotation};
use super::integrity::{IntegrityFailure, IntegrityReason, VerifyReport};
use super::merkle::Inclusion;
use super::verify::{LogVerifier, TrustAnchors};
use super::witness::FoundWitness;

/// Export document format tag.
pub const EXPORT_FORMAT: &str = "veyra.audit.export/2";

/// An entry with its inclusion proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvedEntry {
    /// The entry.
    pub entry: AuditEntry,
    /// Its inclusion proof against the export's checkpoint.
    pub proof: Inclusion,
}

/// A JSON export of the trail, verifiable offline. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditExport {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// When the export was made.
    pub exported_at: DateTime<Utc>,
    /// True when a filter selected the entries (they carry proofs).
    pub filtered: bool,
    /// The entries, in chain order.
    pub entries: Vec<AuditEntry>,
    /// Filtered exports: one inclusion proof per entry, in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proofs: Vec<Inclusion>,
    /// Filtered exports: every key rotation of the log, proved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_rotations: Vec<ProvedEntry>,
    /// The signed checkpoint covering the whole log at export time.
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
}

impl AuditExport {
    /// A whole export.
    pub fn whole(entries: Vec<AuditEntry>, checkpoint: Option<Checkpoint>) -> Self {
        AuditExport {
            format: EXPORT_FORMAT.to_string(),
            exported_at: Utc::now(),
            filtered: false,
            entries,
            proofs: Vec::new(),
            key_rotations: Vec::new(),
            checkpoint,
        }
    }

    /// A filtered export of proved entries.
    pub fn filtered(
        entries: Vec<ProvedEntry>,
        key_rotations: Vec<ProvedEntry>,
        checkpoint: Option<Checkpoint>,
    ) -> Self {
        let (entries, proofs) = entries.into_iter().map(|p| (p.entry, p.proof)).unzip();
        AuditExport {
            format: EXPORT_FORMAT.to_string(),
            exported_at: Utc::now(),
            filtered: true,
            entries,
            proofs,
            key_rotations,
            checkpoint,
        }
    }

    /// Verifies the export against `anchors` (see the module docs). A key file in `anchors` is
    /// taken as a pin (it is the local store's key).
    pub fn verify(&self, anchors: &TrustAnchors) -> Result<VerifyReport, IntegrityFailure> {
        let mut anchors = anchors.clone();
        if anchors.key.is_none()
            && let Some(Ok(key)) = &anchors.key_file
        {
            anchors.key = Some(*key);
        }
        anchors.key_file = None;
        let size = self.checkpoint.as_ref().map_or(0, |c| c.tree_size);
        // Witnesses newer than the export pin the signer only; the export cannot be held
        // against a size it does not reach.
        let (probes, later): (Vec<FoundWitness>, Vec<FoundWitness>) = anchors
            .witnesses
            .drain(..)
            .partition(|w| w.witness.checkpoint.tree_size <= size);
        let later_keys = later
            .iter()
            .map(|w| {
                w.witness.validate().map(|(k, _)| k).map_err(|e| {
                    IntegrityFailure::log(
                        0,
                        IntegrityReason::WitnessMismatch(format!(
                            "the witness {} is damaged: {e}",
                            w.path.display()
                        )),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut report = if self.filtered {
            anchors.witnesses = probes;
            self.verify_filtered(&anchors)?
        } else {
            if !self.proofs.is_empty() || !self.key_rotations.is_empty() {
                return Err(IntegrityFailure::log(
                    0,
                    IntegrityReason::Unreadable(
                        "a whole export carries no proofs or key rotations; it was edited".into(),
                    ),
                ));
            }
            anchors.witnesses = probes;
            if !later_keys.is_empty() && anchors.key.is_none() {
                anchors.key = later_keys.first().copied();
            }
            let checkpoints: Vec<Checkpoint> = self.checkpoint.iter().cloned().collect();
            let mut verifier = LogVerifier::new(&checkpoints, &anchors);
            for entry in &self.entries {
                verifier.push(entry)?;
            }
            verifier.finish(self.checkpoint.as_ref(), true)?
        };
        for (w, key) in later.iter().zip(&later_keys) {
            let signer = report.signer.as_deref().and_then(parse_public_key);
            if signer != Some(*key) {
                return Err(IntegrityFailure::log(
                    0,
                    IntegrityReason::SignerNotPinned(format!(
                        "the witness {} names signer {}, but the export is signed by {}",
                        w.path.display(),
                        fingerprint(key),
                        report.signer.as_deref().unwrap_or("nobody")
                    )),
                ));
            }
            report.pinned_by.push(format!(
                "signer named by the witness {} (which records {} entries, more than the export)",
                w.path.display(),
                w.witness.checkpoint.tree_size
            ));
        }
        Ok(report)
    }

    fn verify_filtered(&self, anchors: &TrustAnchors) -> Result<VerifyReport, IntegrityFailure> {
        let Some(cp) = &self.checkpoint else {
            let first = self.entries.first().map_or(1, |e| e.seq);
            let last = self.entries.last().map_or(first, |e| e.seq);
            return Err(IntegrityFailure::log(
                first,
                IntegrityReason::Unsigned { first, last },
            ));
        };
        let key = cp.verify_signature().map_err(|e| {
            IntegrityFailure::log(cp.tree_size, IntegrityReason::CheckpointInvalid(e))
        })?;
        if self.proofs.len() != self.entries.len() {
            let seq = self.entries.get(self.proofs.len()).map_or(0, |e| e.seq);
            return Err(IntegrityFailure::log(
                seq,
                IntegrityReason::Unreadable(format!(
                    "a filtered export needs one inclusion proof per entry: {} entries, {} proofs",
                    self.entries.len(),
                    self.proofs.len()
                )),
            ));
        }
        let mut last_seq = 0;
        for (entry, proof) in self.entries.iter().zip(&self.proofs) {
            if entry.seq <= last_seq {
                return Err(entry_failure(
                    entry,
                    IntegrityReason::SequenceGap {
                        expected: last_seq + 1,
                    },
                ));
            }
            last_seq = entry.seq;
            check_proved(entry, proof, cp)?;
        }
        // The signer history, from the rotations (themselves proved).
        let mut signers: Vec<[u8; 32]> = Vec::new();
        let mut last_rotation = 0;
        for rotation in &self.key_rotations {
            let entry = &rotation.entry;
            check_proved(entry, &rotation.proof, cp)?;
            if entry.seq <= last_rotation {
                return Err(entry_failure(
                    entry,
                    IntegrityReason::RotationInvalid("key rotations are out of order".into()),
                ));
            }
            last_rotation = entry.seq;
            let field = |name: &str| entry.metadata[name].as_str().unwrap_or_default();
            let (from, to) = (field("from"), field("to"));
            verify_rotation(from, to, field("endorsement"))
                .map_err(|e| entry_failure(entry, IntegrityReason::RotationInvalid(e)))?;
            let (Some(from), Some(to)) = (parse_public_key(from), parse_public_key(to)) else {
                return Err(entry_failure(
                    entry,
                    IntegrityReason::RotationInvalid("a key is not 32 bytes of hex".into()),
                ));
            };
            match signers.last() {
                Some(current) if *current != from => {
                    return Err(entry_failure(
                        entry,
                        IntegrityReason::RotationInvalid(
                            "it hands over from a key that was not signing".into(),
                        ),
                    ));
                }
                Some(_) => {}
                None => signers.push(from),
            }
            signers.push(to);
        }
        match signers.last() {
            Some(last) if *last != key => {
                return Err(IntegrityFailure::log(
                    cp.tree_size,
                    IntegrityReason::CheckpointInvalid(
                        "the checkpoint is not signed by the key the rotations end with".into(),
                    ),
                ));
            }
            Some(_) => {}
            None => signers.push(key),
        }
        let mut report = VerifyReport {
            entries: u64::try_from(self.entries.len()).unwrap_or(u64::MAX),
            head: cp.chain_head.clone(),
            tree_head: cp.root.clone(),
            checkpoint: Some(cp.clone()),
            signer: Some(hex::encode(key)),
            pinned_by: Vec::new(),
            notes: Vec::new(),
        };
        let not_pinned =
            |why: String| IntegrityFailure::log(0, IntegrityReason::SignerNotPinned(why));
        if let Some(pin) = anchors.key {
            if !signers.contains(&pin) {
                return Err(not_pinned(format!(
                    "the export is signed by key {} (fingerprint {}), not by the key given (fingerprint {})",
                    hex::encode(key),
                    fingerprint(&key),
                    fingerprint(&pin)
                )));
            }
            report.pinned_by.push(format!("key {}", fingerprint(&pin)));
        }
        for w in &anchors.witnesses {
            let (wkey, _) = w.witness.validate().map_err(|e| {
                IntegrityFailure::log(
                    0,
                    IntegrityReason::WitnessMismatch(format!(
                        "the witness {} is damaged: {e}",
                        w.path.display()
                    )),
                )
            })?;
            if !signers.contains(&wkey) {
                return Err(not_pinned(format!(
                    "the witness {} names signer {}, which never signed this export's log",
                    w.path.display(),
                    fingerprint(&wkey)
                )));
            }
            let wcp = &w.witness.checkpoint;
            if wcp.tree_size == cp.tree_size && wcp.root != cp.root {
                return Err(IntegrityFailure::log(
                    0,
                    IntegrityReason::WitnessMismatch(format!(
                        "the export's checkpoint and the witness {} differ at {} entries",
                        w.path.display(),
                        cp.tree_size
                    )),
                ));
            }
            if wcp.tree_size != cp.tree_size {
                report.notes.push(format!(
                    "the witness {} records {} entries, the export's checkpoint {}: a filtered export cannot be compared at another size",
                    w.path.display(),
                    wcp.tree_size,
                    cp.tree_size
                ));
            }
            report
                .pinned_by
                .push(format!("witness {}", w.path.display()));
        }
        if anchors.expect.is_some_and(|e| e.tree_size == cp.tree_size) {
            let expected = anchors.expect.map(|e| hex::encode(e.tree_head));
            if expected.as_deref() != Some(cp.root.as_str()) {
                return Err(IntegrityFailure::log(
                    0,
                    IntegrityReason::WitnessMismatch(
                        "the export's tree head is not the expected one".into(),
                    ),
                ));
            }
            report.pinned_by.push("published tree head".into());
        }
        if report.pinned_by.is_empty() {
            return Err(not_pinned(
                "nothing pins the export's signer; pass --key HEX (the key the log's owner publishes) or --witness FILE, or verify next to the store that wrote it".into(),
            ));
        }
        Ok(report)
    }
}

fn entry_failure(entry: &AuditEntry, reason: IntegrityReason) -> IntegrityFailure {
    IntegrityFailure {
        index: entry.seq.saturating_sub(1),
        seq: entry.seq,
        reason,
    }
}

/// Checks one entry of a filtered export: its own hash, and its proof against `cp`.
fn check_proved(
    entry: &AuditEntry,
    proof: &Inclusion,
    cp: &Checkpoint,
) -> Result<(), IntegrityFailure> {
    let canonical = entry
        .canonical_bytes()
        .map_err(|e| entry_failure(entry, IntegrityReason::Unencodable(e.to_string())))?;
    match entry.compute_hash() {
        Ok(Some(hash)) if hash == entry.hash => {}
        Ok(None) => return Err(entry_failure(entry, IntegrityReason::MalformedHash)),
        _ => return Err(entry_failure(entry, IntegrityReason::ContentChanged)),
    }
    if proof.seq != entry.seq || proof.tree_size != cp.tree_size || proof.root != cp.root {
        return Err(entry_failure(
            entry,
            IntegrityReason::CheckpointInvalid(
                "its inclusion proof is not for this entry under the export's checkpoint".into(),
            ),
        ));
    }
    if !super::merkle::verify(&canonical, proof) {
        return Err(entry_failure(
            entry,
            IntegrityReason::CheckpointInvalid(
                "it is not in the signed tree: its inclusion proof does not verify".into(),
            ),
        ));
    }
    Ok(())
}
