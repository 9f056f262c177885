//! Test fixtures of the core, shared by its own tests and by the layers above it: a core on
//! an in-memory trail with a fresh workspace of its own.

use tempfile::TempDir;

use super::VeyraCore;
use crate::config::{AuditStoreKind, VeyraConfig};

/// A core with an in-memory trail (tests run in parallel; each keeps its own) and a fresh
/// workspace, `f` applied to the configuration last. The workspace lives in the returned
/// directory: keep it as long as the core (`let (core, _ws) = …`).
pub(crate) fn core_with(f: impl FnOnce(&mut VeyraConfig)) -> (VeyraCore, TempDir) {
    let ws = tempfile::tempdir().unwrap();
    let mut config = VeyraConfig::default();
    config.governance.store = AuditStoreKind::Memory;
    config.tools.workspace = Some(ws.path().to_path_buf());
    // Tests of the link switch it on themselves; elsewhere a task's events are its own.
    config.latency.simulate = false;
    f(&mut config);
    (VeyraCore::new(config).unwrap(), ws)
}
