//! One verification for every form of the log — a store, a whole export, a writer resuming
//! after its witness — so the rules cannot drift apart.
//!
//! A [`LogVerifier`] takes the entries in order and checks, as it goes:
//! - the hash chain (sequence numbers, links, content) and the RFC 6962 tree over the entries;
//! - every signed checkpoint the log keeps, at its size: the signature, the signer in effect
//!   there, and the tree and chain heads. Holding each kept checkpoint against the tree rebuilt
//!   from the entries is what an RFC 6962 consistency proof between successive checkpoints
//!   establishes, made exact: old checkpoints left under a rewritten history fail here;
//! - key rotations: an entry `CONFIG_CHANGE`/[`ROTATION_ACTION`] whose metadata holds the old key,
//!   the new key and the old key's signature over both; from its sequence number on,
//!   checkpoints are signed by the new key;
//! - witnesses and published checkpoints (`--witness`, `--expect-size/--expect-head`) at the size
//!   they recorded.
//!
//! [`LogVerifier::finish`] then checks what only the end shows: a log shorter than a checkpoint
//! or witness (rolled back), entries no checkpoint covers (forged appends, deleted checkpoints),
//! and that something outside the store pins the signer ([`TrustAnchors`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::audit::{AuditEntry, AuditEventType, ChainVerifier, GENESIS_PREV_HASH, decode_hash};
use super::checkpoint::{Checkpoint, KeyProblem, fingerprint, verify_rotation};
use super::integrity::{IntegrityFailure, IntegrityReason, VerifyReport, missing};
use super::merkle::Frontier;
use super::witness::FoundWitness;

/// Action of the entry that hands the log to a new signing key.
pub const ROTATION_ACTION: &str = "rotate_signing_key";

/// A checkpoint published elsewhere: the tree head the log must have at a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    /// Entries.
    pub tree_size: u64,
    /// RFC 6962 tree head at that size.
    pub tree_head: [u8; 32],
}

/// What a log is held against beyond its own contents.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    /// A public key the log's owner published (`--key`); it must be one of the log's signers.
    pub key: Option<[u8; 32]>,
    /// Witnesses: files named with `--witness` and the store's own.
    pub witnesses: Vec<FoundWitness>,
    /// A published tree head (`--expect-size N --expect-head HEX`).
    pub expect: Option<Expectation>,
    /// The store's key file, when a local store is involved: its public key or why it is unusable.
    pub key_file: Option<Result<[u8; 32], KeyProblem>>,
    /// True when the operator named an anchor (`--key`, `--witness`, `--expect-*`).
    pub explicit: bool,
    /// Where witnesses were looked for, and what to do without one (for the message).
    pub missing_witness_hint: String,
}

impl TrustAnchors {
    /// Adds the anchors of `other` (explicit ones from the command line) to these.
    pub fn merge(&mut self, other: &TrustAnchors) {
        if other.key.is_some() {
            self.key = other.key;
        }
        self.witnesses.extend(other.witnesses.iter().cloned());
        if other.expect.is_some() {
            self.expect = other.expect;
        }
        if other.key_file.is_some() {
            self.key_file.clone_from(&other.key_file);
        }
        self.explicit |= other.explicit;
        if !other.missing_witness_hint.is_empty() {
            self.missing_witness_hint
                .clone_from(&other.missing_witness_hint);
        }
    }
}

/// What is checked when the log reaches a size.
#[derive(Debug, Clone, Copy)]
enum Probe {
    Checkpoint(usize),
    Witness(usize),
    Expect,
}

/// See the module docs.
pub struct LogVerifier<'a> {
    chain: ChainVerifier,
    frontier: Frontier,
    probes: BTreeMap<u64, Vec<Probe>>,
    checkpoints: &'a [Checkpoint],
    anchors: &'a TrustAnchors,
    /// Signers in the order the log handed over to them.
    signers: Vec<[u8; 32]>,
    /// Hash of the newest entry checked.
    chain_head: [u8; 32],
    witnessed: Vec<String>,
    /// A failure found before any entry (reported by [`LogVerifier::finish`]).
    invalid: Option<IntegrityFailure>,
}

fn short(key: &[u8; 32]) -> String {
    format!("{} (fingerprint {})", hex::encode(key), fingerprint(key))
}

impl<'a> LogVerifier<'a> {
    /// A verifier of a whole log that keeps `checkpoints`.
    pub fn new(checkpoints: &'a [Checkpoint], anchors: &'a TrustAnchors) -> Self {
        let mut verifier = Self::resume(
            checkpoints,
            anchors,
            GENESIS_PREV_HASH,
            Frontier::new(),
            None,
        );
        // Veyra signs no checkpoint of an empty log: one is a forgery or damage.
        if checkpoints.iter().any(|c| c.tree_size == 0) {
            verifier.invalid = Some(IntegrityFailure::log(
                0,
                IntegrityReason::CheckpointInvalid("a checkpoint claims to cover 0 entries".into()),
            ));
        }
        verifier
    }

    /// A verifier that continues a log already verified up to `frontier.size()` entries whose
    /// last hash is `chain_head`, signed by `signer` at that point.
    pub fn resume(
        checkpoints: &'a [Checkpoint],
        anchors: &'a TrustAnchors,
        chain_head: &str,
        frontier: Frontier,
        signer: Option<[u8; 32]>,
    ) -> Self {
        let start = frontier.size();
        let mut probes: BTreeMap<u64, Vec<Probe>> = BTreeMap::new();
        for (i, cp) in checkpoints.iter().enumerate() {
            if cp.tree_size > start {
                probes
                    .entry(cp.tree_size)
                    .or_default()
                    .push(Probe::Checkpoint(i));
            }
        }
        for (i, w) in anchors.witnesses.iter().enumerate() {
            if w.witness.checkpoint.tree_size > start {
                probes
                    .entry(w.witness.checkpoint.tree_size)
                    .or_default()
                    .push(Probe::Witness(i));
            }
        }
        if let Some(e) = anchors.expect
            && e.tree_size > start
        {
            probes.entry(e.tree_size).or_default().push(Probe::Expect);
        }
        LogVerifier {
            chain: ChainVerifier::resume(start, decode_hash(chain_head).unwrap_or([0; 32])),
            frontier,
            probes,
            checkpoints,
            anchors,
            signers: signer.into_iter().collect(),
            chain_head: decode_hash(chain_head).unwrap_or([0; 32]),
            witnessed: Vec::new(),
            invalid: None,
        }
    }

    /// Checks the next entry.
    pub fn push(&mut self, entry: &AuditEntry) -> Result<(), IntegrityFailure> {
        let canonical = self.chain.check(entry)?;
        // `check` has decoded the hash.
        let hash = decode_hash(&entry.hash).unwrap_or([0; 32]);
        let leaf = super::merkle::leaf_hash(&canonical);
        self.after_leaf(hash, leaf, is_rotation(entry).then_some(entry))
    }

    /// Checks the next entry given decoded: its links (`None` where not 64 lowercase hex
    /// digits), its chain hash `SHA-256(prev_hash ‖ canonical)` computed from its own
    /// `prev_hash` and its Merkle leaf hash, both computed elsewhere (on another thread); the
    /// caller has tied its canonical bytes to its fields.
    pub(crate) fn push_hashed(
        &mut self,
        seq: u64,
        prev_hash: Option<[u8; 32]>,
        hash: Option<[u8; 32]>,
        computed: Option<[u8; 32]>,
        leaf: [u8; 32],
        rotation: Option<&AuditEntry>,
    ) -> Result<(), IntegrityFailure> {
        let hash = self.chain.check_decoded(seq, prev_hash, hash, computed)?;
        self.after_leaf(hash, leaf, rotation)
    }

    fn after_leaf(
        &mut self,
        hash: [u8; 32],
        leaf: [u8; 32],
        rotation: Option<&AuditEntry>,
    ) -> Result<(), IntegrityFailure> {
        self.frontier.push_leaf_hash(leaf);
        self.chain_head = hash;
        if let Some(entry) = rotation {
            self.rotate(entry)?;
        }
        let size = self.frontier.size();
        if let Some(probes) = self.probes.remove(&size) {
            let root = self.frontier.root();
            for probe in probes {
                self.probe(probe, size, &root)?;
            }
        }
        Ok(())
    }

    fn rotate(&mut self, entry: &AuditEntry) -> Result<(), IntegrityFailure> {
        let fail = |why: String| IntegrityFailure {
            index: entry.seq.saturating_sub(1),
            seq: entry.seq,
            reason: IntegrityReason::RotationInvalid(why),
        };
        let field = |name: &str| {
            entry.metadata[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| fail(format!("its metadata has no '{name}'")))
        };
        let (from, to, endorsement) = (field("from")?, field("to")?, field("endorsement")?);
        verify_rotation(&from, &to, &endorsement).map_err(fail)?;
        let (Some(from_key), Some(to_key)) = (
            super::checkpoint::parse_public_key(&from),
            super::checkpoint::parse_public_key(&to),
        ) else {
            return Err(fail("a key is not 32 bytes of hex".into()));
        };
        match self.signers.last() {
            Some(current) if *current != from_key => {
                return Err(fail(format!(
                    "it hands over from key {}, but the log was signed by {}",
                    short(&from_key),
                    short(current)
                )));
            }
            Some(_) => {}
            None => self.signers.push(from_key),
        }
        self.signers.push(to_key);
        Ok(())
    }

    /// Holds `key` against the signer in effect at `size`; the first key seen starts the history.
    fn check_signer(
        &mut self,
        key: [u8; 32],
        size: u64,
        what: &str,
    ) -> Result<(), IntegrityFailure> {
        match self.signers.last() {
            None => {
                self.signers.push(key);
                Ok(())
            }
            Some(current) if *current == key => Ok(()),
            Some(current) => Err(IntegrityFailure {
                index: size.saturating_sub(1),
                seq: size,
                reason: IntegrityReason::CheckpointInvalid(format!(
                    "{what} is signed by key {}, but the log's signer at {size} entries is {}: the log was re-signed",
                    short(&key),
                    short(current)
                )),
            }),
        }
    }

    fn probe(&mut self, probe: Probe, size: u64, root: &[u8; 32]) -> Result<(), IntegrityFailure> {
        let root_hex = hex::encode(root);
        match probe {
            Probe::Checkpoint(i) => {
                let cp = &self.checkpoints[i];
                let key = cp.verify_signature().map_err(|e| IntegrityFailure {
                    index: size.saturating_sub(1),
                    seq: size,
                    reason: IntegrityReason::CheckpointInvalid(e),
                })?;
                self.check_signer(key, size, "the checkpoint")?;
                if cp.root != root_hex || cp.chain_head != hex::encode(self.chain_head) {
                    return Err(IntegrityFailure {
                        index: size.saturating_sub(1),
                        seq: size,
                        reason: IntegrityReason::CheckpointInvalid(format!(
                            "the entries no longer match the checkpoint signed at {size} entries: the log was rewritten"
                        )),
                    });
                }
            }
            Probe::Witness(i) => {
                let found = &self.anchors.witnesses[i];
                let (key, _) = found.witness.validate().map_err(|e| {
                    IntegrityFailure::log(
                        size,
                        IntegrityReason::WitnessMismatch(format!(
                            "the witness {} is damaged: {e}",
                            found.path.display()
                        )),
                    )
                })?;
                let cp = &found.witness.checkpoint;
                if cp.root != root_hex || cp.chain_head != hex::encode(self.chain_head) {
                    return Err(IntegrityFailure::log(
                        size,
                        IntegrityReason::WitnessMismatch(format!(
                            "at {size} entries the log's tree head is {root_hex}, but the witness {} recorded {}",
                            found.path.display(),
                            cp.root
                        )),
                    ));
                }
                let path = found.path.display().to_string();
                self.check_signer(key, size, &format!("the witness {path}"))?;
                self.witnessed
                    .push(format!("witness {path} at {size} entries"));
            }
            Probe::Expect => {
                let Some(expect) = self.anchors.expect else {
                    return Ok(());
                };
                if expect.tree_head != *root {
                    return Err(IntegrityFailure::log(
                        size,
                        IntegrityReason::WitnessMismatch(format!(
                            "at {size} entries the log's tree head is {root_hex}, not the expected {}",
                            hex::encode(expect.tree_head)
                        )),
                    ));
                }
                self.witnessed
                    .push(format!("published tree head at {size} entries"));
            }
        }
        Ok(())
    }

    /// Entries checked so far.
    pub fn entries(&self) -> u64 {
        self.frontier.size()
    }

    /// The frontier so far (a writer resumes from it).
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// The signer in effect after the entries so far.
    pub fn signer(&self) -> Option<[u8; 32]> {
        self.signers.last().copied()
    }

    /// Checks what only the end of the log shows. `head` is the checkpoint that must cover every
    /// entry; `signed` is false for logs that are not signed at all (in-memory trails), which
    /// get the chain checks only.
    pub fn finish(
        self,
        head: Option<&Checkpoint>,
        signed: bool,
    ) -> Result<VerifyReport, IntegrityFailure> {
        if let Some(f) = self.invalid {
            return Err(f);
        }
        let n = self.frontier.size();
        // What the log should have reached but did not: it was rolled back or cut.
        for probes in self.probes.values() {
            for probe in probes {
                match *probe {
                    Probe::Witness(i) => {
                        let w = &self.anchors.witnesses[i];
                        return Err(IntegrityFailure::log(
                            n + 1,
                            IntegrityReason::BehindWitness {
                                witness: w.path.display().to_string(),
                                recorded: w.witness.checkpoint.tree_size,
                                present: n,
                            },
                        ));
                    }
                    Probe::Expect => {
                        let size = self.anchors.expect.map_or(0, |e| e.tree_size);
                        return Err(IntegrityFailure::log(
                            n + 1,
                            IntegrityReason::WitnessMismatch(format!(
                                "the published checkpoint covers {size} entries but the log holds {n}: {}",
                                missing(size.saturating_sub(n))
                            )),
                        ));
                    }
                    Probe::Checkpoint(_) => {}
                }
            }
        }
        if let Some(&size) = self.probes.keys().next_back() {
            return Err(IntegrityFailure::log(
                n + 1,
                IntegrityReason::TailTruncated {
                    checkpoint: size,
                    present: n,
                },
            ));
        }
        let mut report = VerifyReport {
            entries: n,
            head: hex::encode(self.chain_head),
            tree_head: hex::encode(self.frontier.root()),
            checkpoint: head.cloned(),
            signer: self.signers.last().map(hex::encode),
            pinned_by: self.witnessed,
            notes: Vec::new(),
        };
        if !signed {
            return Ok(report);
        }
        if n > 0 {
            let covered = head.map_or(0, |h| h.tree_size).min(n);
            if covered < n {
                let first = self
                    .checkpoints
                    .iter()
                    .map(|c| c.tree_size)
                    .filter(|&s| s <= n)
                    .max()
                    .unwrap_or(0)
                    .max(covered)
                    + 1;
                return Err(IntegrityFailure::log(
                    first,
                    IntegrityReason::Unsigned { first, last: n },
                ));
            }
        }
        let current = self.signers.last().copied();
        let not_pinned =
            |why: String| IntegrityFailure::log(0, IntegrityReason::SignerNotPinned(why));
        if let Some(key) = self.anchors.key {
            match current {
                Some(_) if self.signers.contains(&key) => {
                    report.pinned_by.push(format!("key {}", fingerprint(&key)));
                }
                Some(cur) => {
                    return Err(not_pinned(format!(
                        "the log is signed by key {}, not by the key given ({})",
                        short(&cur),
                        short(&key)
                    )));
                }
                None => {}
            }
        }
        match &self.anchors.key_file {
            Some(Ok(file_key)) => {
                if let Some(cur) = current
                    && cur != *file_key
                {
                    return Err(not_pinned(format!(
                        "the store's key file holds key {}, but the log is signed by {}: the key was replaced, or the log was re-signed",
                        short(file_key),
                        short(&cur)
                    )));
                }
            }
            Some(Err(KeyProblem::Missing(path))) if self.anchors.explicit || n == 0 => {
                report.notes.push(format!(
                    "no key file at {} (the signer is pinned by what you gave)",
                    path.display()
                ));
            }
            Some(Err(problem)) if n > 0 => return Err(not_pinned(problem.to_string())),
            Some(Err(_)) | None => {}
        }
        if n > 0
            && self.anchors.witnesses.is_empty()
            && self.anchors.key.is_none()
            && self.anchors.expect.is_none()
        {
            return Err(not_pinned(format!(
                "nothing outside the log pins its signer or its size, so a rollback or a re-signed log would not show; {}",
                if self.anchors.missing_witness_hint.is_empty() {
                    "pass --key HEX (the key the log's owner publishes), --witness FILE, or --expect-size N --expect-head HEX"
                } else {
                    &self.anchors.missing_witness_hint
                }
            )));
        }
        Ok(report)
    }
}

/// True for the entry that hands the log to a new key.
pub fn is_rotation(entry: &AuditEntry) -> bool {
    entry.event_type == AuditEventType::ConfigChange && entry.action == ROTATION_ACTION
}

/// The checkpoints a store keeps, sorted by size, without exact duplicates.
pub fn sorted_checkpoints(mut checkpoints: Vec<Checkpoint>) -> Vec<Checkpoint> {
    checkpoints.sort_by_key(|c| c.tree_size);
    checkpoints.dedup();
    checkpoints
}

/// Witness files named on the command line, read and attributed to their paths.
pub fn witness_files(paths: &[PathBuf]) -> Result<Vec<FoundWitness>, super::AuditError> {
    let mut out = Vec::new();
    for path in paths {
        match super::witness::read_witness(path)? {
            Some(witness) => out.push(FoundWitness {
                path: path.clone(),
                witness,
            }),
            None => {
                return Err(super::AuditError::Store(format!(
                    "{}: no such witness file",
                    path.display()
                )));
            }
        }
    }
    Ok(out)
}
