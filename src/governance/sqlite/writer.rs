//! The store's writer: the checks a writer makes before it appends (verify before signing, so
//! a new checkpoint never launders damage), and the thread that commits batches of entries
//! with the signed checkpoint that covers them and then updates the witnesses.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, params};

use super::rows::{integrity, last_row, max_anchor, read_checkpoints, read_head, verify_rows};
use super::{
    ANCHOR_EVERY, AuditError, CHECKPOINT_COLUMNS, COLUMNS, Checkpoint, CheckpointListener,
    FoundWitness, Job, KeyProblem, LogVerifier, MAX_BATCH, StoreOptions, TrustAnchors, Witness,
    WitnessFile, checkpoint, lock_hint, open_error, store_error, witness,
};
use crate::governance::integrity::IntegrityReason as R;
use crate::governance::merkle::Frontier;

/// What the writer knows of the chain, to sign checkpoints.
pub(super) struct WriterState {
    key: ed25519_dalek::SigningKey,
    frontier: Frontier,
    head: String,
}

impl WriterState {
    /// Checks the store before appending (see the module docs) and returns where to continue,
    /// with a witness to publish at once when one is missing or behind. The steps: read the
    /// witnesses; refuse a store behind any; start an empty store on a key of its own; else
    /// pin the newest checkpoint's signer to the key file, check the log ends where that
    /// checkpoint says, and verify the entries since the newest witness.
    pub(super) fn open(
        conn: &Connection,
        path: &Path,
        witness_paths: &[PathBuf],
        options: &StoreOptions,
    ) -> Result<(Self, Option<Witness>), AuditError> {
        let last = last_row(conn, path)?;
        let head = read_head(conn, path)?;
        let witnesses = read_witnesses(witness_paths, options)?;
        let n = last.as_ref().map_or(0, |(seq, _)| *seq);
        let key_path = checkpoint::key_path(path);
        let next_path = checkpoint::next_key_path(path);
        not_behind_a_witness(&witnesses, n)?;
        if n == 0 && head.is_none() {
            return Ok((Self::fresh(&key_path, &next_path)?, None));
        }
        let Some(head) = head else {
            let first = max_anchor(conn, path)?.min(n) + 1;
            return Err(integrity(R::Unsigned { first, last: n }, first));
        };
        let (key, signer) = pinned_key(&head, &key_path, &next_path)?;
        ends_at_the_checkpoint(n, &head, last.as_ref())?;
        // Resume from the newest witness (or, adopting, from nothing: verify everything).
        let newest = witnesses
            .iter()
            .max_by_key(|w| w.witness.checkpoint.tree_size)
            .cloned();
        let resume = Resume::from(newest.as_ref(), options.adopt, witness_paths)?;
        let start = resume.start;
        let anchors = TrustAnchors {
            key_file: Some(Ok(signer)),
            // The key file pins the signer here; the witness was checked above.
            key: Some(signer),
            explicit: true,
            witnesses: if options.adopt {
                witnesses.clone()
            } else {
                Vec::new()
            },
            ..TrustAnchors::default()
        };
        // Nothing after the witness: it must be the newest checkpoint itself.
        let stale_witness = (start == n
            && !options.adopt
            && newest.as_ref().map(|w| &w.witness.checkpoint) != Some(&head))
        .then(|| {
            integrity(
                R::WitnessMismatch(format!(
                    "the store's newest checkpoint differs from its witness at {n} entries"
                )),
                0,
            )
        });
        let frontier = verify_since(
            conn,
            path,
            &head,
            &anchors,
            options.adopt,
            resume,
            stale_witness,
        )?;
        let publish = (witnesses.len() < witness_paths.len() || start < n || options.adopt)
            .then(|| Witness::new(path, head.clone(), &frontier));
        Ok((
            WriterState {
                key,
                frontier,
                head: head.chain_head,
            },
            publish,
        ))
    }

    /// An empty store: its key (created unless one is there) and the genesis head; a key left
    /// over from an unfinished rotation is dropped.
    fn fresh(key_path: &Path, next_path: &Path) -> Result<Self, AuditError> {
        let key = match checkpoint::load_key(key_path) {
            Ok(k) => k,
            Err(KeyProblem::Missing(_)) => checkpoint::create_key(key_path)?,
            Err(p) => return Err(integrity(R::SignerNotPinned(p.to_string()), 0)),
        };
        let _ = std::fs::remove_file(next_path);
        Ok(WriterState {
            key,
            frontier: Frontier::new(),
            head: crate::governance::audit::GENESIS_PREV_HASH.to_string(),
        })
    }
}

/// The witnesses found at `witness_paths`; a damaged one is an error unless adopting, which
/// replaces it.
fn read_witnesses(
    witness_paths: &[PathBuf],
    options: &StoreOptions,
) -> Result<Vec<FoundWitness>, AuditError> {
    let mut witnesses = Vec::new();
    for wp in witness_paths {
        let read = match witness::read_witness(wp) {
            // Adopting replaces a damaged witness; otherwise damage is reported.
            Err(e) if options.adopt => {
                tracing::warn!("replacing a damaged audit witness: {e}");
                None
            }
            other => other?,
        };
        if let Some(w) = read {
            witnesses.push(FoundWitness {
                path: wp.clone(),
                witness: w,
            });
        }
    }
    Ok(witnesses)
}

/// A store behind any witness has lost acknowledged entries, whatever else is wrong.
fn not_behind_a_witness(witnesses: &[FoundWitness], n: u64) -> Result<(), AuditError> {
    if let Some(w) = witnesses
        .iter()
        .find(|w| w.witness.checkpoint.tree_size > n)
    {
        return Err(integrity(
            R::BehindWitness {
                witness: w.path.display().to_string(),
                recorded: w.witness.checkpoint.tree_size,
                present: n,
            },
            n + 1,
        ));
    }
    Ok(())
}

/// The writer's key, which must be the one that signed the newest checkpoint (`head`), and
/// that signer; a rotation that committed but did not yet move its key into place finishes
/// first.
fn pinned_key(
    head: &Checkpoint,
    key_path: &Path,
    next_path: &Path,
) -> Result<(ed25519_dalek::SigningKey, [u8; 32]), AuditError> {
    let signer = head
        .verify_signature()
        .map_err(|e| integrity(R::CheckpointInvalid(e), head.tree_size))?;
    // A rotation that committed but did not yet move its key into place finishes now.
    if let Ok(next) = checkpoint::load_key(next_path) {
        if next.verifying_key().to_bytes() == signer {
            std::fs::rename(next_path, key_path).map_err(|e| {
                store_error(key_path, "cannot finish an interrupted key rotation", e)
            })?;
        } else {
            let _ = std::fs::remove_file(next_path);
        }
    }
    let key = checkpoint::load_key(key_path)
        .map_err(|p| integrity(R::SignerNotPinned(p.to_string()), 0))?;
    if key.verifying_key().to_bytes() != signer {
        return Err(integrity(
            R::SignerNotPinned(format!(
                "the newest checkpoint is signed by key {} but the key file {} holds key {}: the key was replaced, or the log was re-signed",
                checkpoint::fingerprint(&signer),
                key_path.display(),
                checkpoint::fingerprint(&key.verifying_key().to_bytes())
            )),
            0,
        ));
    }
    Ok((key, signer))
}

/// The log of `n` entries, the newest `last` (its seq and hash), ends exactly where the newest
/// checkpoint says: no unsigned tail, nothing cut off, nothing rewritten.
fn ends_at_the_checkpoint(
    n: u64,
    head: &Checkpoint,
    last: Option<&(u64, String)>,
) -> Result<(), AuditError> {
    if n > head.tree_size {
        return Err(integrity(
            R::Unsigned {
                first: head.tree_size + 1,
                last: n,
            },
            head.tree_size + 1,
        ));
    }
    if n < head.tree_size {
        return Err(integrity(
            R::TailTruncated {
                checkpoint: head.tree_size,
                present: n,
            },
            n + 1,
        ));
    }
    if last.map(|(_, h)| h.as_str()) != Some(head.chain_head.as_str()) {
        return Err(integrity(
            R::CheckpointInvalid(
                "the newest entry is not the one the newest checkpoint signed: the log was rewritten".into(),
            ),
            n,
        ));
    }
    Ok(())
}

/// Where verification picks the log up: after the newest witness's entries, with its tree
/// and chain head and the key that signed it; or, adopting, from the start.
struct Resume {
    start: u64,
    frontier: Frontier,
    head: String,
    signer: Option<[u8; 32]>,
}

impl Resume {
    /// From the newest witness, or from nothing when adopting; with neither, the store is
    /// refused (a rollback could not be told apart from the real log).
    fn from(
        newest: Option<&FoundWitness>,
        adopt: bool,
        witness_paths: &[PathBuf],
    ) -> Result<Self, AuditError> {
        match (newest, adopt) {
            (_, true) => Ok(Resume {
                start: 0,
                frontier: Frontier::new(),
                head: crate::governance::audit::GENESIS_PREV_HASH.to_string(),
                signer: None,
            }),
            // (No witness is ahead of the store: that was checked first.)
            (Some(w), false) => {
                let (wkey, frontier) = w.witness.validate().map_err(|e| {
                    integrity(
                        R::WitnessMismatch(format!(
                            "the witness {} is damaged: {e}; if the store is sound, check it with `veyra audit verify --key HEX` and run `veyra audit adopt`",
                            w.path.display()
                        )),
                        0,
                    )
                })?;
                Ok(Resume {
                    start: w.witness.checkpoint.tree_size,
                    frontier,
                    head: w.witness.checkpoint.chain_head.clone(),
                    signer: Some(wkey),
                })
            }
            (None, false) => Err(integrity(
                R::SignerNotPinned(format!(
                    "no witness of this store ({}) was found, so a rollback could not be told apart from the real log. If the store was moved here deliberately, check it with `veyra audit verify --key HEX` or `--expect-size N --expect-head HEX`, then run `veyra audit adopt`",
                    witness_paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                0,
            )),
        }
    }
}

/// Verifies the entries after `resume.start` against the newest checkpoint `head` (and,
/// adopting, every checkpoint) under `anchors`, and returns the tree's frontier at the end of
/// the log. A `stale_witness` is reported once the entries themselves check out, before the
/// log is held to `head`.
fn verify_since(
    conn: &Connection,
    path: &Path,
    head: &Checkpoint,
    anchors: &TrustAnchors,
    adopt: bool,
    resume: Resume,
    stale_witness: Option<AuditError>,
) -> Result<Frontier, AuditError> {
    let checkpoints = if adopt {
        crate::governance::verify::sorted_checkpoints(
            read_checkpoints(conn, path)?
                .into_iter()
                .chain(std::iter::once(head.clone()))
                .collect(),
        )
    } else {
        vec![head.clone()]
    };
    let mut verifier = LogVerifier::resume(
        &checkpoints,
        anchors,
        &resume.head,
        resume.frontier,
        resume.signer,
    );
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM audit_entries WHERE seq > ?1 ORDER BY seq"
        ))
        .map_err(|e| open_error(path, e))?;
    let mut rows = stmt
        .query(params![i64::try_from(resume.start).unwrap_or(i64::MAX)])
        .map_err(|e| open_error(path, e))?;
    if let Some(f) = verify_rows(&mut rows, path, &mut verifier)? {
        return Err(AuditError::Integrity(f));
    }
    let frontier = verifier.frontier().clone();
    if let Some(e) = stale_witness {
        return Err(e);
    }
    verifier.finish(Some(head), true)?;
    Ok(frontier)
}

/// Who hears of each checkpoint once it is durable.
pub(super) type Listener = Arc<Mutex<Option<CheckpointListener>>>;

pub(super) fn notify(listener: &Listener, cp: &Checkpoint) {
    let listener = listener
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Some(f) = listener {
        f(cp);
    }
}

/// The writer thread: see the module docs.
pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) state: WriterState,
    pub(super) listener: Listener,
    pub(super) witnesses: Vec<WitnessFile>,
    pub(super) next_key: Arc<Mutex<Option<ed25519_dalek::SigningKey>>>,
}

impl Writer {
    pub(super) fn run(&mut self, rx: &mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
        for file in &self.witnesses {
            file.sync();
        }
    }

    fn commit_batch(&mut self, batch: Vec<Job>) {
        let old_size = self.state.frontier.size();
        let mut frontier = self.state.frontier.clone();
        for job in &batch {
            frontier.push_leaf_hash(job.leaf);
        }
        let head = batch
            .last()
            .map(|j| j.entry.hash.clone())
            .unwrap_or_else(|| self.state.head.clone());
        let rotating = batch.iter().any(|j| j.rotation);
        let new_key = if rotating {
            self.next_key
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        } else {
            None
        };
        let result = if rotating && new_key.is_none() {
            Err(format!(
                "{}: a key rotation arrived without a prepared key",
                self.path.display()
            ))
        } else {
            let key = new_key.as_ref().unwrap_or(&self.state.key);
            let cp = Checkpoint::sign(key, frontier.size(), frontier.root(), &head);
            let anchor = rotating || frontier.size() / ANCHOR_EVERY > old_size / ANCHOR_EVERY;
            commit(&mut self.conn, &batch, &cp, anchor)
                .map(|()| cp)
                .map_err(|e| {
                    let message = format!(
                        "{}: could not commit audit entries: {e}{}",
                        self.path.display(),
                        lock_hint(&e)
                    );
                    tracing::error!("{message}");
                    message
                })
        };
        if let Ok(cp) = &result {
            if let Some(key) = new_key {
                let key_path = checkpoint::key_path(&self.path);
                if let Err(e) = std::fs::rename(checkpoint::next_key_path(&self.path), &key_path) {
                    // The next open finishes the rotation from the `.key.next` file.
                    tracing::error!(
                        "{}: could not move the new key into place: {e}",
                        key_path.display()
                    );
                }
                self.state.key = key;
            }
            // Witnessed before acknowledged: an acknowledged entry is never beyond the witness.
            let witness = Witness::new(&self.path, cp.clone(), &frontier);
            for file in &mut self.witnesses {
                if let Err(e) = file.write(&witness) {
                    // The store is then ahead of this witness, which the next open accepts.
                    tracing::error!("could not update the audit witness: {e}");
                }
            }
            self.state.frontier = frontier;
            self.state.head = head;
        }
        let ack = result.as_ref().map(|_| ()).map_err(Clone::clone);
        for job in batch {
            let _ = job.done.send(ack.clone());
        }
        if let Ok(cp) = &result {
            notify(&self.listener, cp);
        }
    }
}

pub(super) fn commit(
    conn: &mut Connection,
    batch: &[Job],
    checkpoint: &Checkpoint,
    anchor: bool,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO audit_entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ))?;
        for job in batch {
            let e = &job.entry;
            insert.execute(params![
                e.seq as i64,
                e.id.to_string(),
                e.timestamp
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                e.event_type.name(),
                e.actor,
                e.action,
                e.resource,
                e.outcome,
                e.input_summary,
                job.metadata,
                e.prev_hash,
                e.hash,
                job.canonical,
            ])?;
        }
    }
    if batch.iter().any(|job| job.journal.is_some()) {
        let mut keep = tx.prepare_cached(
            "INSERT INTO tool_journal (seq, content, sha256) VALUES (?1, ?2, ?3)",
        )?;
        for job in batch {
            if let Some(blob) = &job.journal {
                keep.execute(params![job.entry.seq as i64, blob.content, blob.sha256])?;
            }
        }
    }
    let timestamp = checkpoint
        .timestamp
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let values = params![
        checkpoint.tree_size as i64,
        checkpoint.root,
        checkpoint.chain_head,
        timestamp,
        checkpoint.public_key,
        checkpoint.signature
    ];
    tx.prepare_cached(&format!(
        "INSERT INTO audit_head (slot, {CHECKPOINT_COLUMNS}) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT(slot) DO UPDATE SET tree_size = excluded.tree_size, root = excluded.root, \
         chain_head = excluded.chain_head, timestamp = excluded.timestamp, \
         public_key = excluded.public_key, signature = excluded.signature"
    ))?
    .execute(values)?;
    if anchor {
        tx.prepare_cached(&format!(
            "INSERT INTO audit_checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        ))?
        .execute(values)?;
    }
    tx.commit()
}
