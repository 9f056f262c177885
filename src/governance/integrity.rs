//! What verification reports: why an entry or a log fails ([`IntegrityReason`], named by
//! sequence number in [`IntegrityFailure`]), and what it found when it passes
//! ([`VerifyReport`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an entry fails verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrityReason {
    /// The entry's fields do not hash to its `hash`: its content was changed.
    ContentChanged,
    /// `prev_hash` is not the hash of the entry before it (or not 64 zeros for the first).
    LinkBroken,
    /// The sequence number is not the one expected: an entry is missing or out of order.
    SequenceGap {
        /// The sequence number that should be here.
        expected: u64,
    },
    /// A hash field is not 64 lowercase hex digits.
    MalformedHash,
    /// The entry could not be encoded.
    Unencodable(String),
    /// The stored row could not be read back as an entry (a field edited into nonsense).
    Unreadable(String),
    /// The stored canonical bytes are not the entry's canonical bytes.
    CanonicalMismatch,
    /// Entries the latest signed checkpoint covers are gone.
    TailTruncated {
        /// Entries the checkpoint covers.
        checkpoint: u64,
        /// Entries present.
        present: u64,
    },
    /// A checkpoint does not hold: bad signature, unknown signer, or heads that differ.
    CheckpointInvalid(String),
    /// Entries no signed checkpoint covers: appended outside Veyra, or a checkpoint was deleted.
    Unsigned {
        /// First entry not covered.
        first: u64,
        /// Last entry not covered.
        last: u64,
    },
    /// The store holds fewer entries than a witness of it recorded.
    BehindWitness {
        /// The witness file.
        witness: String,
        /// Entries the witness recorded.
        recorded: u64,
        /// Entries present.
        present: u64,
    },
    /// The log differs from a witness or a published checkpoint at the size it recorded.
    WitnessMismatch(String),
    /// Nothing outside the store pins the signer, or the signer is not the pinned one.
    SignerNotPinned(String),
    /// A key rotation entry does not hold.
    RotationInvalid(String),
}

impl IntegrityReason {
    /// True when the reason is about one entry (named by its sequence number), false when it is
    /// about the log as a whole.
    pub fn names_entry(&self) -> bool {
        match self {
            IntegrityReason::ContentChanged
            | IntegrityReason::LinkBroken
            | IntegrityReason::SequenceGap { .. }
            | IntegrityReason::MalformedHash
            | IntegrityReason::Unencodable(_)
            | IntegrityReason::Unreadable(_)
            | IntegrityReason::CanonicalMismatch
            | IntegrityReason::CheckpointInvalid(_)
            | IntegrityReason::RotationInvalid(_) => true,
            IntegrityReason::TailTruncated { .. }
            | IntegrityReason::Unsigned { .. }
            | IntegrityReason::BehindWitness { .. }
            | IntegrityReason::WitnessMismatch(_)
            | IntegrityReason::SignerNotPinned(_) => false,
        }
    }
}

impl fmt::Display for IntegrityReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntegrityReason::ContentChanged => {
                f.write_str("content changed: its fields no longer hash to its recorded hash")
            }
            IntegrityReason::LinkBroken => {
                f.write_str("link broken: prev_hash does not match the hash of the entry before it")
            }
            IntegrityReason::SequenceGap { expected } => write!(
                f,
                "sequence gap: expected seq {expected}; an entry was removed or reordered"
            ),
            IntegrityReason::MalformedHash => {
                f.write_str("malformed hash: not 64 lowercase hex digits")
            }
            IntegrityReason::Unencodable(e) => write!(f, "cannot be encoded: {e}"),
            IntegrityReason::Unreadable(e) => write!(f, "unreadable: {e}"),
            IntegrityReason::TailTruncated {
                checkpoint,
                present,
            } => write!(
                f,
                "{}: a signed checkpoint covers {checkpoint} entries but the log holds {present} (rolled back or cut)",
                missing(checkpoint.saturating_sub(*present))
            ),
            IntegrityReason::Unsigned { first, last } => {
                if first == last {
                    write!(
                        f,
                        "entry seq {first} is not covered by any signed checkpoint: it was added outside Veyra, or the checkpoint covering it was deleted"
                    )
                } else {
                    write!(
                        f,
                        "entries seq {first} to {last} are not covered by any signed checkpoint: they were added outside Veyra, or the checkpoint covering them was deleted"
                    )
                }
            }
            IntegrityReason::BehindWitness {
                witness,
                recorded,
                present,
            } => write!(
                f,
                "{}: the witness {witness} recorded {recorded} entries but the log holds {present} (rolled back: deleted rows or checkpoints, a cut tail, lost WAL frames, or a missing file)",
                missing(recorded.saturating_sub(*present))
            ),
            IntegrityReason::WitnessMismatch(why) => write!(f, "history rewritten: {why}"),
            IntegrityReason::SignerNotPinned(why) => write!(f, "cannot pin the signer: {why}"),
            IntegrityReason::RotationInvalid(why) => write!(f, "key rotation invalid: {why}"),
            IntegrityReason::CheckpointInvalid(why) => write!(f, "checkpoint invalid: {why}"),
            IntegrityReason::CanonicalMismatch => f.write_str(
                "content changed: the stored canonical bytes differ from the entry's fields",
            ),
        }
    }
}

/// "1 acknowledged entry is missing", "3 acknowledged entries are missing".
pub(crate) fn missing(n: u64) -> String {
    if n == 1 {
        "1 acknowledged entry is missing".to_string()
    } else {
        format!("{n} acknowledged entries are missing")
    }
}

/// The first bad entry of a chain, or what is wrong with the log as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityFailure {
    /// 0-based position of the entry in the chain as stored.
    pub index: u64,
    /// Its sequence number as stored.
    pub seq: u64,
    /// What is wrong with it.
    pub reason: IntegrityReason,
}

impl std::error::Error for IntegrityFailure {}

impl fmt::Display for IntegrityFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.names_entry() {
            write!(f, "entry seq {}: {}", self.seq, self.reason)
        } else {
            write!(f, "{}", self.reason)
        }
    }
}

impl IntegrityFailure {
    /// A failure of the log as a whole (`seq` is the first entry concerned, or 0).
    pub fn log(seq: u64, reason: IntegrityReason) -> Self {
        IntegrityFailure {
            index: seq.saturating_sub(1),
            seq,
            reason,
        }
    }
}

/// The result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// Hash of the last entry (the head), or the genesis value for an empty chain.
    pub head: String,
    /// RFC 6962 tree head over the entries.
    #[serde(default)]
    pub tree_head: String,
    /// The checkpoint covering every entry, for signed logs.
    #[serde(default)]
    pub checkpoint: Option<super::checkpoint::Checkpoint>,
    /// The signer of the newest checkpoint (hex).
    #[serde(default)]
    pub signer: Option<String>,
    /// What outside the log confirmed it (witnesses, published heads, a given key).
    #[serde(default)]
    pub pinned_by: Vec<String>,
    /// Remarks for the operator.
    #[serde(default)]
    pub notes: Vec<String>,
}
