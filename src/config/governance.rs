//! `governance:` — the audit trail and where it is kept, the safety boundary, and the Cedar
//! policy files.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `governance:` — audit, safety and policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceConfig {
    /// Record every execution in the hash-chained audit trail.
    pub audit: bool,
    /// Where the trail is kept: `sqlite` (durable, the default) or `memory` (lost at exit).
    pub store: AuditStoreKind,
    /// Audit store path; defaults to `<data dir>/audit.db`.
    pub store_path: Option<PathBuf>,
    /// Enforce the safety boundary.
    pub safety: bool,
    /// Allow reversible operations only.
    pub reversible_only: bool,
    /// Operations that are always blocked.
    pub prohibited_operations: Vec<String>,
    /// Operations that need an operator's confirmation.
    pub require_confirmation: Vec<String>,
    /// Cedar policies: a `.cedar` file or a directory of them; default: the built-in
    /// `configs/policies/default.cedar`.
    pub policy_file: Option<PathBuf>,
    /// Cedar schema the policies are validated against; default: the built-in
    /// `configs/policies/veyra.cedarschema`.
    pub policy_schema: Option<PathBuf>,
    /// Cedar entities (jurisdictions, and who and what sits where); default: the built-in
    /// `configs/policies/entities.json`.
    pub policy_entities: Option<PathBuf>,
    /// Where the audit store's witness is kept; default `$XDG_STATE_HOME/veyra/witness`
    /// (`~/.local/state/veyra/witness`). Must not be inside the store's directory.
    pub witness_dir: Option<PathBuf>,
    /// More directories to keep a copy of the witness in (a mounted volume, another user's
    /// directory); none may be inside the store's directory.
    pub witnesses: Vec<PathBuf>,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        GovernanceConfig {
            audit: true,
            store: AuditStoreKind::Sqlite,
            store_path: None,
            safety: true,
            reversible_only: false,
            prohibited_operations: vec!["delete_all".into(), "format_disk".into()],
            require_confirmation: Vec::new(),
            policy_file: None,
            policy_schema: None,
            policy_entities: None,
            witness_dir: None,
            witnesses: Vec::new(),
        }
    }
}

/// Where the audit trail is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditStoreKind {
    /// SQLite file at `governance.store_path`: durable, one writing process at a time.
    Sqlite,
    /// Process memory: lost at exit (tests, throwaway sessions).
    Memory,
}
