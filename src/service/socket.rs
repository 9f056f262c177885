//! Where a runtime serves its store: `$XDG_RUNTIME_DIR/veyra/<store key>.sock` (or
//! `$XDG_STATE_HOME/veyra/run/…` when there is no runtime directory), the socket 0600 in a 0700
//! directory of the user's own. The store key is a digest of the store's absolute path, so
//! every client configured for one store finds the one runtime writing it.
//!
//! The file is only a meeting point: a runtime binds it after it holds the store's one-writer
//! lock, so a socket file found then is a dead runtime's and is replaced; a client that finds a
//! file nobody answers on treats it as no runtime; a directory that is not private, or a
//! socket served by another user, is refused, never used.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ServiceError;
use crate::config::VeyraConfig;

/// The directory runtimes' sockets live in.
pub fn socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("veyra"),
        None => crate::config::state_dir().join("run"),
    }
}

/// The socket of the runtime serving `config`'s audit store; `None` when the store is kept in
/// memory (a runtime of its own, which nothing else can share).
pub fn socket_path(config: &VeyraConfig) -> Option<PathBuf> {
    if !config.governance.audit || config.governance.store != crate::config::AuditStoreKind::Sqlite
    {
        return None;
    }
    let store = config.audit_store_path();
    // The same store however it is spelled: its absolute path, symlinks resolved as far as
    // they exist (the file may not yet).
    let absolute = std::path::absolute(&store).unwrap_or(store);
    let resolved = match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map(|p| p.join(name))
            .unwrap_or(absolute.clone()),
        _ => absolute.clone(),
    };
    Some(socket_dir().join(format!("{}.sock", store_key(&resolved))))
}

/// The first 16 hex digits of the SHA-256 of the store's path.
pub fn store_key(store: &Path) -> String {
    let digest = Sha256::digest(store.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..8])
}

/// The calling process's effective user id.
pub fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Makes `dir` (0700) if missing, and refuses one that is not the user's own or is open to
/// others: a socket there could be swapped by someone else.
pub fn private_dir(dir: &Path) -> Result<(), ServiceError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| ServiceError::io(dir, "cannot create the socket directory", e))?;
        }
        Err(e) => return Err(ServiceError::io(dir, "cannot read the socket directory", e)),
        Ok(_) => {}
    }
    check_private(dir)
}

/// Refuses a socket directory that is a symlink, not a directory, not the user's own, or open
/// to group or others.
pub fn check_private(dir: &Path) -> Result<(), ServiceError> {
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| ServiceError::io(dir, "cannot read the socket directory", e))?;
    let problem = if meta.file_type().is_symlink() {
        Some("is a symlink".to_string())
    } else if !meta.is_dir() {
        Some("is not a directory".to_string())
    } else if meta.uid() != own_uid() {
        Some(format!("belongs to uid {}, not to you", meta.uid()))
    } else if meta.permissions().mode() & 0o077 != 0 {
        Some(format!(
            "is open to others (mode {:o})",
            meta.permissions().mode() & 0o777
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ServiceError::Unsafe(format!(
            "{}: the socket directory {problem}; a runtime's socket must live in a directory \
             only you can enter (remove it, or `chmod 700` it if it is yours)",
            dir.display()
        ))),
        None => Ok(()),
    }
}

/// Binds the runtime's socket at `path`, replacing what a dead runtime left there. The caller
/// holds the store's one-writer lock, so no live runtime can be serving `path`.
pub fn bind(path: &Path) -> Result<tokio::net::UnixListener, ServiceError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    match std::fs::symlink_metadata(path) {
        Ok(_) => {
            tracing::info!(socket = %path.display(), "replacing a stale runtime socket");
            std::fs::remove_file(path)
                .map_err(|e| ServiceError::io(path, "cannot remove the stale socket", e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ServiceError::io(path, "cannot read the socket path", e)),
    }
    let listener = tokio::net::UnixListener::bind(path)
        .map_err(|e| ServiceError::io(path, "cannot listen on the socket", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ServiceError::io(path, "cannot make the socket private", e))?;
    Ok(listener)
}

/// Removes the socket at `path` if it is still the one bound (same inode): a runtime leaving
/// never removes a newer runtime's socket.
pub fn unbind(path: &Path, inode: Option<u64>) {
    if let (Some(inode), Ok(meta)) = (inode, std::fs::symlink_metadata(path))
        && meta.ino() == inode
    {
        let _ = std::fs::remove_file(path);
    }
}

/// The inode of the socket file at `path`.
pub fn inode(path: &Path) -> Option<u64> {
    std::fs::symlink_metadata(path).ok().map(|m| m.ino())
}
