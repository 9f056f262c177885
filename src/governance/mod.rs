//! Governance: the tamper-evident audit trail and the policy engine.
//!
//! Governance knows nothing of models or screens: callers hand it records, it chains them;
//! callers ask it questions, it answers from the policies.

pub mod audit;
pub mod checkpoint;
pub mod export;
pub mod integrity;
pub mod journal;
pub mod merkle;
pub mod policy;
pub mod replay;
pub mod sqlite;
pub mod store;
pub mod trail;
pub mod verify;
pub mod witness;

pub use audit::{
    AuditEntry, AuditEventType, AuditFilter, AuditRecord, GENESIS_PREV_HASH, summarize_input,
    verify_chain,
};
pub use export::{AuditExport, EXPORT_FORMAT as EXPORT_FORMAT_TAG};
pub use integrity::{IntegrityFailure, IntegrityReason, VerifyReport};
pub use journal::JournalBlob;
pub use policy::{CedarEngine, PolicyDecision, PolicyEngine, PolicyError, PolicyRequest};
pub use sqlite::{SqliteStore, StoreOptions};
pub use store::{AppendTicket, AuditStore, MemoryStore, RotationPlan};
pub use trail::AuditTrail;
pub use verify::{Expectation, TrustAnchors};

/// Errors of the audit trail.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The chain does not verify.
    #[error("audit chain integrity failure: {0}")]
    Integrity(#[from] IntegrityFailure),
    /// The store could not append or read.
    #[error("audit store: {0}")]
    Store(String),
    /// An entry could not be encoded (metadata that is not a JSON object, …).
    #[error("audit entry could not be encoded: {0}")]
    Encode(String),
}

impl StoreOptions {
    /// The options the configuration asks for: its witness directories
    /// ([`VeyraConfig::audit_witness_dirs`](crate::config::VeyraConfig::audit_witness_dirs)),
    /// no adoption.
    pub fn from_config(config: &crate::config::VeyraConfig) -> Self {
        StoreOptions {
            witness_dirs: config.audit_witness_dirs(),
            adopt: false,
        }
    }
}

impl AuditError {
    /// True when this error means the chain itself is broken (exit code 3).
    pub fn is_integrity_failure(&self) -> bool {
        matches!(self, AuditError::Integrity(_))
    }
}
