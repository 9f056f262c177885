//! The audit trail: the one writer of the chain (DESIGN §6). [`AuditTrail`] assigns sequence
//! numbers, links and hashes entries (the format is in [`super::audit`]), hands them to an
//! [`AuditStore`], and reads them back: queries, verification, exports with inclusion proofs.
//!
//! # Recording
//! [`AuditTrail::record`] is async: it links the entry to the chain head under a short lock,
//! hands it to the store, and awaits the store's acknowledgement (an [`AppendTicket`]) after
//! releasing the lock, so concurrent records share one commit and no async worker waits on the
//! disk. It resolves only once the entry is durable; a store that fails to make an entry durable
//! stops the trail (nothing more is recorded until restart). [`AuditTrail::record_blocking`] is
//! the same for synchronous code.
//!
//! # Reading one entry
//! [`AuditTrail::entry`] seeks to its sequence number. [`AuditTrail::prove_entry`] proves it
//! against the log as last verified in full: the first proof verifies the log and keeps its
//! Merkle tree coarsely; later ones read the entry's block and O(log n) kept hashes, and say
//! when the verification behind them was made and what was appended since (see `proved.rs`).
//! `veyra audit verify` ([`AuditTrail::verify_integrity`]) is the full check.

use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{SubsecRound, Utc};
use uuid::Uuid;

use super::AuditError;
use super::audit::{
    AuditEntry, AuditEventType, AuditFilter, AuditRecord, GENESIS_PREV_HASH, chain_hash,
    decode_hash,
};
use super::checkpoint::Checkpoint;
use super::export::{AuditExport, ProvedEntry};
use super::integrity::{IntegrityFailure, IntegrityReason, VerifyReport};
use super::journal::JournalBlob;
use super::merkle::{self, Frontier, Inclusion};
use super::store::{AppendTicket, AuditStore, CheckpointListener, MemoryStore};
use super::verify::{ROTATION_ACTION, TrustAnchors};

mod proved;
pub use proved::Proved;
use proved::{TreeBuilder, VerifiedTree};

/// The chain head the next entry links to.
#[derive(Debug)]
struct Head {
    seq: u64,
    hash: [u8; 32],
    hash_hex: String,
}

/// The audit trail: assigns sequence numbers, links and hashes entries, and keeps them in an
/// [`AuditStore`]. Cloning shares the trail.
#[derive(Clone)]
pub struct AuditTrail {
    store: Arc<dyn AuditStore>,
    head: Arc<Mutex<Head>>,
    /// Set when the store failed to make an entry durable; recording stops.
    failed: Arc<Mutex<Option<String>>>,
    /// The log's tree as last verified in full, for cheap proofs; dropped when a verification
    /// fails.
    verified: Arc<Mutex<Option<Arc<VerifiedTree>>>>,
}

impl fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditTrail").finish_non_exhaustive()
    }
}

impl AuditTrail {
    /// A trail over `store`, resuming after its newest entry.
    pub fn new(store: Arc<dyn AuditStore>) -> Result<Self, AuditError> {
        let head = match store.last()? {
            Some(last) => Head {
                seq: last.seq,
                hash: decode_hash(&last.hash).ok_or_else(|| {
                    AuditError::Integrity(IntegrityFailure {
                        index: last.seq.saturating_sub(1),
                        seq: last.seq,
                        reason: IntegrityReason::MalformedHash,
                    })
                })?,
                hash_hex: last.hash.clone(),
            },
            None => Head {
                seq: 0,
                hash: [0; 32],
                hash_hex: GENESIS_PREV_HASH.to_string(),
            },
        };
        Ok(AuditTrail {
            store,
            head: Arc::new(Mutex::new(head)),
            failed: Arc::new(Mutex::new(None)),
            verified: Arc::default(),
        })
    }

    /// A trail in memory.
    pub fn in_memory() -> Self {
        let store: Arc<dyn AuditStore> = Arc::new(MemoryStore::new());
        AuditTrail {
            store,
            head: Arc::new(Mutex::new(Head {
                seq: 0,
                hash: [0; 32],
                hash_hex: GENESIS_PREV_HASH.to_string(),
            })),
            failed: Arc::new(Mutex::new(None)),
            verified: Arc::default(),
        }
    }

    /// Appends a record to the chain and resolves to the entry as stored (shared with the
    /// store, not copied) once the store acknowledges it durable. The wait is an await: the
    /// task is suspended while the store's writer commits, no async worker is held.
    pub async fn record(&self, record: AuditRecord) -> Result<Arc<AuditEntry>, AuditError> {
        self.record_inner(record, false, None).await
    }

    /// [`AuditTrail::record`] for synchronous callers (plain threads of tests and benchmarks,
    /// a closure on tokio's blocking pool): blocks the calling thread until the entry is
    /// durable. Async code awaits [`AuditTrail::record`] instead: called from async code this
    /// panics (see [`AppendTicket::wait_blocking`]).
    pub fn record_blocking(&self, record: AuditRecord) -> Result<Arc<AuditEntry>, AuditError> {
        let (entry, ticket) = self.enqueue(record, false, None)?;
        self.settle(entry, ticket.wait_blocking())
    }

    /// [`AuditTrail::record`] with what the recorded tool call replaced: the store keeps
    /// `journal` under the entry's sequence number, durable together with the entry
    /// (see [`super::journal`]). `None` records plainly.
    pub async fn record_journaled(
        &self,
        record: AuditRecord,
        journal: Option<JournalBlob>,
    ) -> Result<Arc<AuditEntry>, AuditError> {
        self.record_inner(record, false, journal).await
    }

    /// The journal blob kept with entry `seq`, if any; untrusted until
    /// [`JournalBlob::matches`] holds it against the entry's hash.
    pub fn journal(&self, seq: u64) -> Result<Option<JournalBlob>, AuditError> {
        self.store.journal(seq)
    }

    /// Hands the log to a new signing key: records a `CONFIG_CHANGE` entry
    /// ([`ROTATION_ACTION`]) holding the old key, the new key and the old key's
    /// endorsement; the commit holding it is signed by the new key. `actor` names who asked.
    /// Synchronous: `veyra audit rotate-key` runs it outside any async runtime, and it blocks
    /// until the entry is durable (see [`AuditTrail::record_blocking`]).
    pub fn rotate_signing_key(&self, actor: &str) -> Result<Arc<AuditEntry>, AuditError> {
        let plan = self.store.prepare_rotation()?;
        let (entry, ticket) = self.enqueue(
            AuditRecord {
                event_type: AuditEventType::ConfigChange,
                actor: actor.to_string(),
                action: ROTATION_ACTION.to_string(),
                resource: "audit:signing_key".to_string(),
                outcome: "success".to_string(),
                input_summary: String::new(),
                metadata: serde_json::json!({
                    "from": plan.from,
                    "to": plan.to,
                    "endorsement": plan.endorsement,
                }),
            },
            true,
            None,
        )?;
        self.settle(entry, ticket.wait_blocking())
    }

    async fn record_inner(
        &self,
        record: AuditRecord,
        rotation: bool,
        journal: Option<JournalBlob>,
    ) -> Result<Arc<AuditEntry>, AuditError> {
        let (entry, ticket) = self.enqueue(record, rotation, journal)?;
        // Awaited outside the head lock (`enqueue` has released it), so concurrent records
        // share a commit.
        let acknowledged = ticket.wait().await;
        self.settle(entry, acknowledged)
    }

    /// Links `record` to the chain head and hands it to the store, with the head locked (a
    /// std mutex, held across no await); returns the entry and the store's acknowledgement
    /// ticket, to be waited for after the lock is released.
    fn enqueue(
        &self,
        record: AuditRecord,
        rotation: bool,
        journal: Option<JournalBlob>,
    ) -> Result<(Arc<AuditEntry>, AppendTicket), AuditError> {
        if !record.metadata.is_object() {
            return Err(AuditError::Encode(
                "metadata must be a JSON object".to_string(),
            ));
        }
        if let Some(reason) = self.failed.lock().ok().and_then(|f| f.clone()) {
            return Err(AuditError::Store(format!(
                "the audit store failed earlier ({reason}); nothing more is recorded until Veyra restarts"
            )));
        }
        let mut head = self
            .head
            .lock()
            .map_err(|_| AuditError::Store("the chain head was poisoned by a panic".into()))?;
        let mut entry = AuditEntry {
            seq: head.seq + 1,
            id: Uuid::new_v4(),
            timestamp: Utc::now().trunc_subsecs(6),
            event_type: record.event_type,
            actor: record.actor,
            action: record.action,
            resource: record.resource,
            outcome: record.outcome,
            input_summary: record.input_summary,
            metadata: record.metadata,
            prev_hash: head.hash_hex.clone(),
            hash: String::new(),
        };
        let canonical = entry.canonical_bytes()?;
        entry.hash = chain_hash(&head.hash, &canonical);
        let entry = Arc::new(entry);
        let ticket = match (rotation, journal) {
            (true, _) => self.store.append_rotation(Arc::clone(&entry), canonical)?,
            (false, Some(blob)) => {
                self.store
                    .append_journaled(Arc::clone(&entry), canonical, blob)?
            }
            (false, None) => self.store.append(Arc::clone(&entry), canonical)?,
        };
        head.seq = entry.seq;
        head.hash = decode_hash(&entry.hash).unwrap_or([0; 32]);
        head.hash_hex.clone_from(&entry.hash);
        Ok((entry, ticket))
    }

    /// The entry once its acknowledgement came: on a failure the trail stops recording.
    fn settle(
        &self,
        entry: Arc<AuditEntry>,
        acknowledged: Result<(), AuditError>,
    ) -> Result<Arc<AuditEntry>, AuditError> {
        if let Err(e) = acknowledged {
            // Later entries may already link to this one: stop recording rather than fork or
            // corrupt the chain. The durable prefix stays valid and resumes on restart.
            if let Ok(mut failed) = self.failed.lock() {
                failed.get_or_insert_with(|| e.to_string());
            }
            return Err(e);
        }
        Ok(entry)
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.head.lock().map(|h| h.seq).unwrap_or(0)
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current chain head (hash of the newest entry, or the genesis value).
    pub fn head_hash(&self) -> String {
        self.head
            .lock()
            .map(|h| h.hash_hex.clone())
            .unwrap_or_else(|_| GENESIS_PREV_HASH.to_string())
    }

    /// Verifies every stored entry, every checkpoint the store keeps and the store's own
    /// anchors (key file, witnesses); names the first bad entry.
    pub fn verify_integrity(&self) -> Result<VerifyReport, AuditError> {
        self.verify_with(&TrustAnchors::default())
    }

    /// [`AuditTrail::verify_integrity`], also holding the log against `extra` anchors (a
    /// published key, witness files, a published tree head).
    pub fn verify_with(&self, extra: &TrustAnchors) -> Result<VerifyReport, AuditError> {
        // Witnesses are read before the log: a witness never runs ahead of what is durable.
        let mut anchors = self.store.local_anchors()?;
        anchors.merge(extra);
        let report = self.store.verify_log(&anchors);
        if report.is_err() {
            // What was verified before is no ground for a proof any more.
            self.keep_verified(None);
        }
        report
    }

    fn keep_verified(&self, tree: Option<Arc<VerifiedTree>>) {
        if let Ok(mut kept) = self.verified.lock() {
            *kept = tree;
        }
    }

    fn last_verified(&self) -> Option<Arc<VerifiedTree>> {
        self.verified.lock().ok().and_then(|kept| kept.clone())
    }

    /// Calls `listener` with each checkpoint the store writes from now on (stores that sign
    /// checkpoints only); it runs on the store's writer and must not block.
    pub fn on_checkpoint(&self, listener: CheckpointListener) {
        self.store.on_checkpoint(listener);
    }

    /// The store's newest signed checkpoint, if it keeps them.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        self.store.latest_checkpoint()
    }

    /// The RFC 6962 tree head over every entry's canonical bytes.
    pub fn merkle_root(&self) -> Result<[u8; 32], AuditError> {
        let mut frontier = Frontier::new();
        let mut failure = None;
        self.store
            .scan(&mut |entry| match entry.canonical_bytes() {
                Ok(bytes) => {
                    frontier.push(&bytes);
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(frontier.root()),
        }
    }

    /// Hands `visit` each entry that passes `filter`, in chain order, one at a time (a replay
    /// of 100,000 entries never holds them all).
    pub fn scan_matching(
        &self,
        filter: &AuditFilter,
        visit: &mut dyn FnMut(&AuditEntry),
    ) -> Result<(), AuditError> {
        self.store.scan(&mut |entry| {
            if filter.matches(entry) {
                visit(entry);
            }
            true
        })
    }

    /// Entries that pass `filter`, in chain order.
    pub fn query(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, AuditError> {
        let mut out = Vec::new();
        self.store.scan(&mut |entry| {
            if filter.matches(entry) {
                out.push(entry.clone());
            }
            true
        })?;
        Ok(out)
    }

    /// Entries from `seq` on that pass `filter`, in chain order, read from there (what an
    /// execution recorded since it started, without reading the whole log).
    pub fn query_from(
        &self,
        seq: u64,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        let mut out = Vec::new();
        self.store.scan_from(seq, &mut |entry| {
            if filter.matches(entry) {
                out.push(entry.clone());
            }
            true
        })?;
        Ok(out)
    }

    /// A JSON export of the entries that pass `filter`, after verifying the store: with the
    /// checkpoint that covers every entry and, when filtered, an inclusion proof per entry (and
    /// the key rotations, proved likewise), so it verifies offline.
    pub fn export(&self, filter: &AuditFilter) -> Result<AuditExport, AuditError> {
        let report = self.verify_integrity()?;
        let filtered = *filter != AuditFilter::default();
        let all = self.query(&AuditFilter::default())?;
        let checkpoint = if self.store.signs() {
            report.checkpoint.clone()
        } else {
            None
        };
        if !filtered {
            return Ok(AuditExport::whole(all, checkpoint));
        }
        let leaves = all
            .iter()
            .map(AuditEntry::canonical_bytes)
            .collect::<Result<Vec<_>, _>>()?;
        let proofs = merkle::prove_many(leaves);
        let mut entries = Vec::new();
        let mut key_rotations = Vec::new();
        for (entry, proof) in all.into_iter().zip(proofs) {
            if entry.event_type == AuditEventType::ConfigChange && entry.action == ROTATION_ACTION {
                key_rotations.push(ProvedEntry {
                    entry: entry.clone(),
                    proof: proof.clone(),
                });
            }
            if filter.matches(&entry) {
                entries.push(ProvedEntry { entry, proof });
            }
        }
        Ok(AuditExport::filtered(entries, key_rotations, checkpoint))
    }

    /// Entry `seq`, read from the store where it sits (the stores seek to it); `None` when
    /// there is none.
    pub fn entry(&self, seq: u64) -> Result<Option<AuditEntry>, AuditError> {
        let mut found = None;
        self.store.scan_from(seq, &mut |e| {
            if e.seq == seq {
                found = Some(e.clone());
            }
            false
        })?;
        Ok(found)
    }

    /// An RFC 6962 inclusion proof of entry `seq` against the tree head of the log as verified
    /// in full ([`AuditTrail::prove_entry`], without saying when); `None` when there is no such
    /// entry.
    pub fn prove(&self, seq: u64) -> Result<Option<Inclusion>, AuditError> {
        Ok(self.prove_entry(seq)?.map(|p| p.inclusion))
    }

    /// An RFC 6962 inclusion proof of entry `seq`, and the full verification behind its tree
    /// head; `None` when there is no such entry.
    ///
    /// When the trail verified the log before (a proof, an export) and `seq` was among the
    /// entries verified, the proof is against that verification's tree head: it reads the
    /// entry, the leaf hashes of its block and of the log's last block (at most 128 entries) and
    /// O(log n) hashes kept from the verification, and says when that was and how many entries
    /// came after it. A proof that does not lead to the verified head (the store changed since)
    /// and an entry newer than the verification both verify the log in full first (every entry,
    /// checkpoint and anchor, as [`AuditTrail::verify_integrity`]), which names a bad entry.
    pub fn prove_entry(&self, seq: u64) -> Result<Option<Proved>, AuditError> {
        let Some(entry) = self.entry(seq)? else {
            return Ok(None);
        };
        let canonical = entry.canonical_bytes()?;
        // When the store no longer holds what was verified, the full check below says where.
        if let Some(tree) = self.last_verified().filter(|t| seq <= t.size)
            && let Some(proved) = self.prove_in(&tree, seq, &canonical, false)?
        {
            return Ok(Some(proved));
        }
        let at = Utc::now();
        let report = self.verify_integrity()?;
        let mut builder = TreeBuilder::new(report.entries);
        self.store
            .scan_leaf_hashes(&mut |leaf| builder.push(leaf))?;
        let Some(tree) = builder
            .finish(at)
            .filter(|t| hex::encode(t.root) == report.tree_head)
        else {
            // The store changed between the verification and the read: nothing to prove against.
            return Ok(None);
        };
        let tree = Arc::new(tree);
        self.keep_verified(Some(tree.clone()));
        if seq > tree.size {
            // Appended after the verification: not under the verified head.
            return Ok(None);
        }
        self.prove_in(&tree, seq, &canonical, true)
    }

    /// The proof of entry `seq` (whose canonical bytes are `canonical`) in `tree`, when it
    /// leads to the tree's verified head.
    fn prove_in(
        &self,
        tree: &VerifiedTree,
        seq: u64,
        canonical: &[u8],
        fresh: bool,
    ) -> Result<Option<Proved>, AuditError> {
        let proof = tree.prove(seq.saturating_sub(1), &mut |start, end| {
            self.leaf_hashes(start, end)
        })?;
        let root = hex::encode(tree.root);
        Ok(proof
            .filter(|p| p.root == root && merkle::verify(canonical, p))
            .map(|inclusion| Proved {
                inclusion,
                verified_at: tree.at,
                verified_entries: tree.size,
                appended_since: self.len().saturating_sub(tree.size),
                fresh,
            }))
    }

    /// The leaf hashes of leaves `[start, end)` (entries `start + 1` to `end`), read from
    /// where they sit; fewer when the store holds fewer.
    fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<[u8; 32]>, AuditError> {
        let mut hashes = Vec::new();
        let mut failure = None;
        self.store.scan_from(start + 1, &mut |e| {
            if e.seq != start + 1 + hashes.len() as u64 {
                return false;
            }
            match e.canonical_bytes() {
                Ok(bytes) => hashes.push(merkle::leaf_hash(&bytes)),
                Err(err) => {
                    failure = Some(err);
                    return false;
                }
            }
            e.seq < end
        })?;
        failure.map_or(Ok(hashes), Err)
    }
}

#[cfg(test)]
mod tests;
