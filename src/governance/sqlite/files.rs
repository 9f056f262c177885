//! The store's files: the one-writer lock, private modes for the store and its WAL, and where
//! witnesses may not live.
//!
//! # One writer per store
//! Opening a store for writing takes an exclusive lock on `<store>.db.lock` (which holds the
//! writer's pid) for the life of the store. A second process gets a clear error instead of a
//! forked chain. Readers (`veyra audit verify/list/export`) open the database read-only and
//! need no lock.
//!
//! # Files
//! The store, its WAL and shared-memory files, the lock, the key and the witnesses are created
//! mode 0600 (SQLite gives the WAL the main file's mode), whatever the umask.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{AuditError, StoreOptions, store_error, witness};

/// Refuses witness directories that are the store's directory or inside it: whoever can
/// rewrite the store could then rewrite its witness too.
pub(super) fn check_witness_dirs(path: &Path, options: &StoreOptions) -> Result<(), AuditError> {
    let store_dir = witness::canonical_store_path(path)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for dir in &options.witness_dirs {
        let resolved = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        if resolved.starts_with(&store_dir) {
            return Err(AuditError::Store(format!(
                "{}: the audit witness directory {} is inside the store's directory {}; whoever can change the store could change its witness too. Keep witnesses elsewhere (XDG_STATE_HOME, governance.witnesses) or move the store (governance.store_path)",
                path.display(),
                dir.display(),
                store_dir.display()
            )));
        }
    }
    Ok(())
}

/// Creates the store file with mode 0600 if it is missing, and makes the store, WAL and
/// shared-memory files 0600 if they exist (SQLite gives new WAL files the store's mode).
pub(super) fn private_files(path: &Path) -> Result<(), AuditError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if !path.exists() {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| store_error(path, "cannot create the audit store", e))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = PathBuf::from(file);
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| store_error(&file, "cannot make the audit file private", e))?;
        }
    }
    Ok(())
}

/// Takes the one-writer lock on `<store>.db.lock` and writes this process's pid into it; a
/// lock held elsewhere is refused, naming the holder.
pub(super) fn take_lock(path: &Path) -> Result<File, AuditError> {
    let lock_path = path.with_extension("db.lock");
    let mut file = std::os::unix::fs::OpenOptionsExt::mode(
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true),
        0o600,
    )
    .open(&lock_path)
    .map_err(|e| {
        store_error(
            &lock_path,
            "cannot create the audit store's lock file (is the directory writable?)",
            e,
        )
    })?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        return Err(AuditError::Store(format!(
            "{}: the audit store is in use by another Veyra process{}; only one process may write to a chain (close it, or give this one its own governance.store_path)",
            path.display(),
            if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            }
        )));
    }
    let _ = file.set_len(0);
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(file)
}
