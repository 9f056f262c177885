//! Where audit entries live. [`AuditStore`] is the seam between the trail (`trail.rs`), which
//! links entries into the chain, and storage; [`MemoryStore`] keeps entries in process memory
//! and `SqliteStore` (`sqlite.rs`) on disk. Stores that can seek do so for reads from a
//! sequence number ([`AuditStore::scan_from`]); [`AuditStore::scan_leaf_hashes`] feeds
//! inclusion proofs without the entries.
//!
//! An append answers with an [`AppendTicket`]: the store's acknowledgement that the entry is
//! durable. A store that writes on a thread of its own resolves it from there through a
//! `tokio` oneshot, so async code awaits it ([`AppendTicket::wait`]) without holding a worker
//! thread; [`AppendTicket::wait_blocking`] is for synchronous callers (outside any runtime,
//! or on its blocking pool).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::oneshot;

use super::AuditError;
use super::audit::AuditEntry;
use super::journal::JournalBlob;

/// Resolves when an appended entry is durable: the store's acknowledgement.
#[derive(Debug)]
pub struct AppendTicket(Ticket);

#[derive(Debug)]
enum Ticket {
    Ready(Result<(), AuditError>),
    Pending(oneshot::Receiver<Result<(), String>>),
}

/// What a ticket whose sender was dropped unanswered says.
fn writer_gone() -> AuditError {
    AuditError::Store("the audit writer stopped before confirming the entry".into())
}

impl AppendTicket {
    /// A ticket that is already resolved.
    pub fn ready(result: Result<(), AuditError>) -> Self {
        AppendTicket(Ticket::Ready(result))
    }

    /// A ticket resolved by whoever holds the sender (a store's writer thread, which sends
    /// once the entry is durable, or why it is not; sending never blocks).
    pub fn pending(rx: oneshot::Receiver<Result<(), String>>) -> Self {
        AppendTicket(Ticket::Pending(rx))
    }

    /// Resolves once the entry is durable, or the store says why it is not. Awaiting it
    /// suspends the task only: the worker thread goes on with other tasks meanwhile.
    pub async fn wait(self) -> Result<(), AuditError> {
        match self.0 {
            Ticket::Ready(r) => r,
            Ticket::Pending(rx) => match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(AuditError::Store(e)),
                Err(_) => Err(writer_gone()),
            },
        }
    }

    /// [`AppendTicket::wait`] for synchronous code: the CLI's one-shot commands outside any
    /// runtime, plain threads of tests and benchmarks, or a closure on tokio's blocking pool.
    /// Blocks the calling thread until the entry is durable.
    ///
    /// # Panics
    /// When called from async code (a runtime's worker or `block_on`), as tokio's own blocking
    /// receives do: that would hold the worker for a disk sync. Async code awaits
    /// [`AppendTicket::wait`].
    pub fn wait_blocking(self) -> Result<(), AuditError> {
        match self.0 {
            Ticket::Ready(r) => r,
            Ticket::Pending(rx) => match rx.blocking_recv() {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(AuditError::Store(e)),
                Err(_) => Err(writer_gone()),
            },
        }
    }
}

/// Called from the store's writer with each checkpoint it has written; must not block.
pub type CheckpointListener = Arc<dyn Fn(&super::checkpoint::Checkpoint) + Send + Sync>;

/// Storage for a chain of audit entries. The trail assigns sequence numbers and hashes; a store
/// only keeps entries in order and hands them back unchanged.
pub trait AuditStore: Send + Sync {
    /// Queues one entry, in chain order; must not block on the disk. The entry is durable once
    /// the ticket resolves; the trail calls this with its chain head locked and awaits the
    /// ticket after unlocking, so concurrent records share one commit (group commit). `canonical` is
    /// `entry.canonical_bytes()`, which the trail has already computed to hash the entry.
    fn append(
        &self,
        entry: Arc<AuditEntry>,
        canonical: Vec<u8>,
    ) -> Result<AppendTicket, AuditError>;
    /// [`AuditStore::append`], keeping `journal` (what the recorded tool call replaced) under
    /// the entry's sequence number: durable together with the entry, or not at all (see
    /// [`super::journal`]).
    fn append_journaled(
        &self,
        entry: Arc<AuditEntry>,
        canonical: Vec<u8>,
        journal: JournalBlob,
    ) -> Result<AppendTicket, AuditError> {
        let _ = (entry, canonical, journal);
        Err(AuditError::Store(
            "this audit store keeps no undo journal; file tools are irreversible with it".into(),
        ))
    }
    /// The journal blob kept with entry `seq`, if any. Untrusted until its hash is checked
    /// against the entry ([`JournalBlob::matches`]).
    fn journal(&self, seq: u64) -> Result<Option<JournalBlob>, AuditError> {
        let _ = seq;
        Ok(None)
    }
    /// Appends a key rotation entry made from [`AuditStore::prepare_rotation`]'s plan: the
    /// commit that holds it is signed by the new key, which replaces the old one once durable.
    fn append_rotation(
        &self,
        entry: Arc<AuditEntry>,
        canonical: Vec<u8>,
    ) -> Result<AppendTicket, AuditError> {
        let _ = (entry, canonical);
        Err(AuditError::Store(
            "this audit store does not sign checkpoints, so it has no key to rotate".into(),
        ))
    }
    /// Makes a new signing key and the old key's endorsement of it (see
    /// [`super::verify::ROTATION_ACTION`]); stores that sign checkpoints only.
    fn prepare_rotation(&self) -> Result<RotationPlan, AuditError> {
        Err(AuditError::Store(
            "this audit store does not sign checkpoints, so it has no key to rotate".into(),
        ))
    }
    /// Verifies the whole log against `anchors` (see [`super::verify`]): entries, the
    /// checkpoints kept, the newest one. Stores that change underneath (a writer running)
    /// read everything from one snapshot.
    fn verify_log(
        &self,
        anchors: &super::verify::TrustAnchors,
    ) -> Result<super::integrity::VerifyReport, AuditError> {
        let checkpoints = self.checkpoints()?;
        let head = self.latest_checkpoint()?;
        let mut verifier = super::verify::LogVerifier::new(&checkpoints, anchors);
        let mut failure = None;
        self.scan(&mut |entry| match verifier.push(entry) {
            Ok(()) => true,
            Err(f) => {
                failure = Some(f);
                false
            }
        })?;
        if let Some(f) = failure {
            return Err(AuditError::Integrity(f));
        }
        Ok(verifier.finish(head.as_ref(), self.signs())?)
    }
    /// True when the store signs checkpoints, so that verification requires them.
    fn signs(&self) -> bool {
        false
    }
    /// Every checkpoint the store keeps (the newest included), sorted by size.
    fn checkpoints(&self) -> Result<Vec<super::checkpoint::Checkpoint>, AuditError> {
        Ok(Vec::new())
    }
    /// What pins this store from outside: its key file and the witnesses found for it.
    fn local_anchors(&self) -> Result<super::verify::TrustAnchors, AuditError> {
        Ok(super::verify::TrustAnchors::default())
    }
    /// Number of entries.
    fn len(&self) -> Result<u64, AuditError>;
    /// True when the store holds no entries.
    fn is_empty(&self) -> Result<bool, AuditError> {
        Ok(self.len()? == 0)
    }
    /// The newest entry, from which a trail resumes its chain.
    fn last(&self) -> Result<Option<AuditEntry>, AuditError>;
    /// Calls `visit` on every entry in order until it returns `false`.
    fn scan(&self, visit: &mut dyn FnMut(&AuditEntry) -> bool) -> Result<(), AuditError>;
    /// [`AuditStore::scan`] from entry `seq` on: stores that can seek do, so reading what an
    /// execution just recorded does not cost the whole log.
    fn scan_from(
        &self,
        seq: u64,
        visit: &mut dyn FnMut(&AuditEntry) -> bool,
    ) -> Result<(), AuditError> {
        self.scan(&mut |e| e.seq < seq || visit(e))
    }
    /// Calls `visit` with the Merkle leaf hash ([`super::merkle::leaf_hash`] of the canonical
    /// bytes) of every entry in order, until it returns `false`: what an inclusion proof needs,
    /// without the entries. Stores that keep the canonical bytes read only those.
    fn scan_leaf_hashes(&self, visit: &mut dyn FnMut([u8; 32]) -> bool) -> Result<(), AuditError> {
        let mut failure = None;
        self.scan(&mut |entry| match entry.canonical_bytes() {
            Ok(bytes) => visit(super::merkle::leaf_hash(&bytes)),
            Err(e) => {
                failure = Some(e);
                false
            }
        })?;
        failure.map_or(Ok(()), Err)
    }
    /// Calls `listener` with each checkpoint once it is durable, for stores that sign them.
    fn on_checkpoint(&self, listener: CheckpointListener) {
        let _ = listener;
    }
    /// The newest signed checkpoint, for stores that keep them.
    fn latest_checkpoint(&self) -> Result<Option<super::checkpoint::Checkpoint>, AuditError> {
        Ok(None)
    }
}

/// A key rotation ready to be recorded: the old and new public keys (hex) and the old key's
/// signature over both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationPlan {
    /// The key that signs now.
    pub from: String,
    /// The key that signs from the rotation entry on.
    pub to: String,
    /// The old key's signature of [`super::checkpoint::rotation_message`].
    pub endorsement: String,
}

/// Entries (and their undo journal) in memory, lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: RwLock<Vec<Arc<AuditEntry>>>,
    journal: RwLock<HashMap<u64, JournalBlob>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the entry at `index`, so tests can tamper with a stored chain.
    #[cfg(test)]
    pub(crate) fn overwrite_for_test(&self, index: usize, entry: AuditEntry) {
        if let Ok(mut entries) = self.entries.write()
            && let Some(slot) = entries.get_mut(index)
        {
            *slot = Arc::new(entry);
        }
    }
}

fn poisoned() -> AuditError {
    AuditError::Store("the in-memory store was poisoned by a panic in another thread".into())
}

impl AuditStore for MemoryStore {
    fn append(
        &self,
        entry: Arc<AuditEntry>,
        _canonical: Vec<u8>,
    ) -> Result<AppendTicket, AuditError> {
        self.entries.write().map_err(|_| poisoned())?.push(entry);
        Ok(AppendTicket::ready(Ok(())))
    }

    fn append_journaled(
        &self,
        entry: Arc<AuditEntry>,
        _canonical: Vec<u8>,
        journal: JournalBlob,
    ) -> Result<AppendTicket, AuditError> {
        // Both locks are held together, so a reader never sees the entry without its blob.
        let mut entries = self.entries.write().map_err(|_| poisoned())?;
        let mut kept = self.journal.write().map_err(|_| poisoned())?;
        kept.insert(entry.seq, journal);
        entries.push(entry);
        Ok(AppendTicket::ready(Ok(())))
    }

    fn journal(&self, seq: u64) -> Result<Option<JournalBlob>, AuditError> {
        Ok(self
            .journal
            .read()
            .map_err(|_| poisoned())?
            .get(&seq)
            .cloned())
    }

    fn len(&self) -> Result<u64, AuditError> {
        Ok(self.entries.read().map_err(|_| poisoned())?.len() as u64)
    }

    fn last(&self) -> Result<Option<AuditEntry>, AuditError> {
        Ok(self
            .entries
            .read()
            .map_err(|_| poisoned())?
            .last()
            .map(|e| AuditEntry::clone(e)))
    }

    fn scan(&self, visit: &mut dyn FnMut(&AuditEntry) -> bool) -> Result<(), AuditError> {
        for entry in self.entries.read().map_err(|_| poisoned())?.iter() {
            if !visit(entry) {
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
        let entries = self.entries.read().map_err(|_| poisoned())?;
        // Entries are in chain order, so sequence numbers ascend: seek by binary search.
        let start = entries.partition_point(|e| e.seq < seq);
        for entry in entries.iter().skip(start) {
            if !visit(entry) {
                break;
            }
        }
        Ok(())
    }
}
