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
//! [`AuditTrail::entry`] seeks to its sequence number; [`AuditTrail::prove`] reads the entry
//! and the leaf hashes of the log (never the other entries) to build its inclusion proof.

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
use super::merkle::{self, Frontier, Inclusion, InclusionBuilder};
use super::store::{AppendTicket, AuditStore, CheckpointListener, MemoryStore};
use super::verify::{ROTATION_ACTION, TrustAnchors};

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
        self.store.verify_log(&anchors)
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

    /// An RFC 6962 inclusion proof of entry `seq` against the tree head the store verified to
    /// (every entry, checkpoint and anchor checked first, as [`AuditTrail::verify_integrity`]);
    /// `None` when there is no such entry. The proof is built from the leaf hashes of the
    /// verified entries in O(log n) memory (the store reads only the canonical bytes, see
    /// [`AuditStore::scan_leaf_hashes`]) and must lead to the verified tree head.
    pub fn prove(&self, seq: u64) -> Result<Option<Inclusion>, AuditError> {
        let report = self.verify_integrity()?;
        let Some(entry) = self.entry(seq)? else {
            return Ok(None);
        };
        let Some(mut builder) = InclusionBuilder::new(seq.saturating_sub(1), report.entries) else {
            // Appended after the verification: not under the verified head.
            return Ok(None);
        };
        self.store
            .scan_leaf_hashes(&mut |leaf| builder.push(leaf))?;
        let canonical = entry.canonical_bytes()?;
        Ok(builder
            .finish()
            .filter(|p| p.root == report.tree_head && merkle::verify(&canonical, p)))
    }
}

#[cfg(test)]
mod tests;
