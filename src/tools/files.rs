//! File tools confined to the workspace: `file_read`, `file_list`, `file_write`, `file_delete`.
//!
//! A path that leaves the workspace by its letters alone — absolute, or a `..` that climbs above
//! its top — is refused before anything is looked up. Every path is then opened through a
//! `cap-std` [`Dir`] handle on `tools.workspace`, so symlinks that lead out are refused by the
//! operating system's beneath-this-directory resolution, not by string checks — at the moment of
//! each open, so a path swapped for a symlink after it was checked still cannot lead out. Only
//! regular files with one hard link are read, written or deleted: the name is checked first, and
//! a file that is read is opened without waiting ([`crate::fsread::OPEN_FLAGS`]) and its opened
//! handle checked again, so a FIFO or device swapped in between is refused, never waited on. A
//! second hard link may be a name of a file outside the workspace, so such a file is refused
//! (`file_write` and `file_delete` also refuse a symlink, so that an undo restores exactly the
//! file they changed). Sizes are checked before any byte is read (`tools.max_read_bytes`) or
//! written (`tools.max_write_bytes`).
//!
//! # Undo
//! With the undo journal on (audit on: see [`FileTool::journaled`]) `file_write` and
//! `file_delete` read what they are about to replace — at most `tools.max_write_bytes`, the
//! most the journal keeps per call; a bigger file is refused, not silently made irreversible —
//! and hand it to the core in [`ToolOutput::undo`]. `file_write` replaces a file atomically
//! ([`replace_atomically`]: a temporary file in the same directory, renamed over it), so a
//! failed write leaves the old content in place.
//!
//! Every call runs on tokio's blocking pool ([`Tool::invoke`] hands it there): file I/O never
//! holds an async worker.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    Capability, FileAccess, Tool, ToolCategory, ToolError, ToolOutput, UndoRecord, str_arg,
};
use crate::config::ToolsConfig;
use crate::sanitize;

/// Most entries `file_list` returns.
pub const MAX_LIST_ENTRIES: usize = 1000;

/// Which file tool this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// `file_read`.
    Read,
    /// `file_list`.
    List,
    /// `file_write`.
    Write,
    /// `file_delete`.
    Delete,
}

/// One file tool over the workspace.
#[derive(Debug, Clone)]
pub struct FileTool {
    op: FileOp,
    workspace: PathBuf,
    max_read: u64,
    max_write: u64,
    /// True when the undo journal is on: writes and deletes keep what they replace.
    journal: bool,
    /// Called after a call's checks, just before the file is opened (tests swap files here).
    #[cfg(test)]
    before_open: Option<OpenHook>,
}

/// What a test runs between a file tool's checks and its open: `(workspace, path)`.
#[cfg(test)]
type HookFn = dyn Fn(&Path, &str) + Send + Sync;

/// A test's hook between a file tool's checks and its open.
#[cfg(test)]
#[derive(Clone)]
struct OpenHook(std::sync::Arc<HookFn>);

#[cfg(test)]
impl std::fmt::Debug for OpenHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenHook")
    }
}

impl FileTool {
    /// The tool `op` with the workspace and limits of `tools:`, without the undo journal.
    pub fn new(op: FileOp, config: &ToolsConfig) -> Self {
        FileTool {
            op,
            workspace: config.workspace_dir(),
            max_read: config.max_read_bytes,
            max_write: config.max_write_bytes,
            journal: false,
            #[cfg(test)]
            before_open: None,
        }
    }

    /// The tool with the undo journal on or off. On, `file_write` and `file_delete` keep what
    /// they replace and declare themselves reversible; off, they are irreversible (blocked
    /// while `governance.reversible_only` is on).
    pub fn journaled(mut self, journal: bool) -> Self {
        self.journal = journal;
        self
    }

    /// The four file tools; `journal` as [`FileTool::journaled`].
    pub fn all(config: &ToolsConfig, journal: bool) -> [FileTool; 4] {
        [FileOp::Read, FileOp::List, FileOp::Write, FileOp::Delete]
            .map(|op| Self::new(op, config).journaled(journal))
    }

    /// Opens `tools.workspace` (creating it if needed, and any missing parent, mode 0700: by
    /// default it is in Veyra's private data directory) as the directory every path is
    /// resolved beneath. An existing directory keeps its mode.
    pub fn open_workspace_dir(workspace: &Path) -> Result<Dir, ToolError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(workspace)
            .map_err(|e| {
            ToolError::Failed(format!(
                "the workspace {} could not be created: {e}; set tools.workspace to a writable directory",
                sanitize::quote(&workspace.display().to_string())
            ))
        })?;
        Dir::open_ambient_dir(workspace, cap_std::ambient_authority()).map_err(|e| {
            ToolError::Failed(format!(
                "the workspace {} could not be opened: {e}",
                sanitize::quote(&workspace.display().to_string())
            ))
        })
    }

    fn open_workspace(&self) -> Result<Dir, ToolError> {
        Self::open_workspace_dir(&self.workspace)
    }

    fn io_error(&self, path: &str, e: &std::io::Error) -> ToolError {
        workspace_io_error(&self.workspace, path, e)
    }

    #[cfg(test)]
    fn checked(&self, path: &str) {
        if let Some(hook) = &self.before_open {
            (hook.0)(&self.workspace, path);
        }
    }

    #[cfg(not(test))]
    fn checked(&self, _path: &str) {}

    fn regular_file(&self, dir: &Dir, path: &str) -> Result<u64, ToolError> {
        use cap_std::fs::MetadataExt;
        let meta = dir.metadata(path).map_err(|e| self.io_error(path, &e))?;
        if !meta.is_file() {
            return Err(not_regular(path));
        }
        if meta.nlink() > 1 {
            return Err(hard_linked(path, meta.nlink()));
        }
        Ok(meta.len())
    }

    /// Opens `path` for reading without waiting (a FIFO swapped in after the checks opens at
    /// once instead of blocking) and checks the opened handle — the file that will be read —
    /// is a regular file with one link. Its length.
    fn open_checked(&self, dir: &Dir, path: &str) -> Result<(std::fs::File, u64), ToolError> {
        use cap_std::fs::OpenOptionsExt;
        use std::os::unix::fs::MetadataExt;
        let mut options = cap_std::fs::OpenOptions::new();
        options.read(true).custom_flags(crate::fsread::OPEN_FLAGS);
        let file = dir
            .open_with(path, &options)
            .map_err(|e| self.io_error(path, &e))?
            .into_std();
        let meta = file.metadata().map_err(|e| self.io_error(path, &e))?;
        if !meta.is_file() {
            return Err(not_regular(path));
        }
        if meta.nlink() > 1 {
            return Err(hard_linked(path, meta.nlink()));
        }
        Ok((file, meta.len()))
    }

    fn read(&self, dir: &Dir, path: &str) -> Result<ToolOutput, ToolError> {
        let len = self.regular_file(dir, path)?;
        let too_big = |len: u64| ToolError::Refused {
            rule: "tools.max_read_bytes".into(),
            message: format!(
                "'{}' is {len} bytes, over tools.max_read_bytes ({}); it was not read",
                sanitize::quote(path),
                self.max_read
            ),
        };
        if len > self.max_read {
            return Err(too_big(len));
        }
        self.checked(path);
        let (file, len) = self.open_checked(dir, path)?;
        if len > self.max_read {
            return Err(too_big(len));
        }
        let mut bytes = Vec::new();
        file.take(self.max_read.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| self.io_error(path, &e))?;
        let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if read > self.max_read {
            return Err(too_big(read));
        }
        let digest = hex::encode(Sha256::digest(&bytes));
        let text = String::from_utf8(bytes).map_err(|_| {
            ToolError::Failed(format!(
                "'{}' is not UTF-8 text; file_read returns text only",
                sanitize::quote(path)
            ))
        })?;
        Ok(ToolOutput::new(
            json!({ "path": path, "bytes": read, "sha256": digest, "content": text }),
            format!("read {read} bytes, sha256:{}", &digest[..16]),
        ))
    }

    fn list(&self, dir: &Dir, path: &str) -> Result<ToolOutput, ToolError> {
        let entries = dir.read_dir(path).map_err(|e| self.io_error(path, &e))?;
        let mut listed = Vec::new();
        let mut truncated = false;
        for entry in entries {
            let entry = entry.map_err(|e| self.io_error(path, &e))?;
            if listed.len() == MAX_LIST_ENTRIES {
                truncated = true;
                break;
            }
            let kind = match entry.file_type() {
                Ok(t) if t.is_file() => "file",
                Ok(t) if t.is_dir() => "dir",
                Ok(t) if t.is_symlink() => "symlink",
                Ok(_) | Err(_) => "other",
            };
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            listed.push(json!({
                "name": entry.file_name().to_string_lossy(),
                "kind": kind,
                "bytes": size,
            }));
        }
        listed.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        let n = listed.len();
        Ok(ToolOutput::new(
            json!({ "path": path, "entries": listed, "truncated": truncated }),
            format!("{n} entries"),
        ))
    }

    fn write(&self, dir: &Dir, path: &str, content: &str) -> Result<ToolOutput, ToolError> {
        let len = u64::try_from(content.len()).unwrap_or(u64::MAX);
        if len > self.max_write {
            return Err(ToolError::Refused {
                rule: "tools.max_write_bytes".into(),
                message: format!(
                    "the content is {len} bytes, over tools.max_write_bytes ({}); nothing was written",
                    self.max_write
                ),
            });
        }
        let prior = self.replaced(dir, path, false)?;
        self.checked(path);
        replace_atomically(dir, path, content.as_bytes()).map_err(|e| self.io_error(path, &e))?;
        let digest = hex::encode(Sha256::digest(content.as_bytes()));
        let output = ToolOutput::new(
            json!({ "path": path, "bytes": len, "sha256": digest }),
            format!("wrote {len} bytes, sha256:{}", &digest[..16]),
        );
        Ok(match prior {
            Some(prior) => output.with_undo(UndoRecord {
                path: path.to_string(),
                workspace: self.workspace.clone(),
                prior,
                after_sha256: Some(digest),
                after_bytes: len,
            }),
            None => output,
        })
    }

    fn delete(&self, dir: &Dir, path: &str) -> Result<ToolOutput, ToolError> {
        let prior = self.replaced(dir, path, true)?;
        let len = self.regular_file(dir, path)?;
        self.checked(path);
        dir.remove_file(path).map_err(|e| self.io_error(path, &e))?;
        let output = ToolOutput::new(
            json!({ "path": path, "deleted": true, "bytes": len }),
            format!("deleted {len} bytes"),
        );
        Ok(match prior {
            Some(prior) => output.with_undo(UndoRecord {
                path: path.to_string(),
                workspace: self.workspace.clone(),
                prior,
                after_sha256: None,
                after_bytes: 0,
            }),
            None => output,
        })
    }

    /// Checks the file a write or delete is about to replace and, with the journal on, reads
    /// it: `Some(None)` when it does not exist, `Some(Some(bytes))` when it does, `None` with
    /// the journal off. Refuses a symlink, anything but a regular file, and (journal on) a file
    /// bigger than the journal keeps. `must_exist` makes a missing file an error.
    fn replaced(
        &self,
        dir: &Dir,
        path: &str,
        must_exist: bool,
    ) -> Result<Option<Option<Vec<u8>>>, ToolError> {
        let tool = match self.op {
            FileOp::Delete => "file_delete",
            FileOp::Read | FileOp::List | FileOp::Write => "file_write",
        };
        let meta = match dir.symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                return Ok(self.journal.then_some(None));
            }
            Err(e) => return Err(self.io_error(path, &e)),
        };
        if meta.file_type().is_symlink() {
            return Err(ToolError::Refused {
                rule: "tools.workspace".into(),
                message: format!(
                    "'{}' is a symbolic link; {tool} changes regular files only (name the file \
                     it points to), so that an undo restores exactly what was changed",
                    sanitize::quote(path)
                ),
            });
        }
        if !meta.is_file() {
            return Err(not_regular(path));
        }
        if cap_std::fs::MetadataExt::nlink(&meta) > 1 {
            return Err(hard_linked(path, cap_std::fs::MetadataExt::nlink(&meta)));
        }
        if !self.journal {
            return Ok(None);
        }
        let too_big = |len: u64| ToolError::Refused {
            rule: "tools.max_write_bytes".into(),
            message: format!(
                "'{}' is {len} bytes, over tools.max_write_bytes ({}), the most the undo journal \
                 keeps of a file; {tool} would not be reversible, so nothing was changed. Raise \
                 tools.max_write_bytes, or turn the journal off with governance.audit: false \
                 (file tools are then irreversible)",
                sanitize::quote(path),
                self.max_write
            ),
        };
        if meta.len() > self.max_write {
            return Err(too_big(meta.len()));
        }
        self.checked(path);
        let (file, len) = self.open_checked(dir, path)?;
        if len > self.max_write {
            return Err(too_big(len));
        }
        let mut bytes = Vec::new();
        file.take(self.max_write.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| self.io_error(path, &e))?;
        let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if read > self.max_write {
            return Err(too_big(read));
        }
        Ok(Some(Some(bytes)))
    }
}

/// The error for an I/O failure on `path` in `workspace`: leaving the workspace (or a
/// permission the operating system denies) is a refusal by `tools.workspace`.
pub(crate) fn workspace_io_error(workspace: &Path, path: &str, e: &std::io::Error) -> ToolError {
    let shown = sanitize::quote(path);
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => ToolError::Refused {
            rule: "tools.workspace".into(),
            message: format!(
                "'{shown}' is outside the workspace {} or not permitted: paths are relative \
                 to tools.workspace and may not leave it through '..', an absolute path or \
                 a symlink",
                sanitize::quote(&workspace.display().to_string())
            ),
        },
        std::io::ErrorKind::NotFound => {
            ToolError::Failed(format!("'{shown}' does not exist in the workspace"))
        }
        _ => ToolError::Failed(format!("'{shown}': {e}")),
    }
}

/// The refusal of anything but a regular file.
fn not_regular(path: &str) -> ToolError {
    ToolError::Refused {
        rule: "tools.workspace".into(),
        message: format!(
            "'{}' is not a regular file; file tools read, write and delete regular files only",
            sanitize::quote(path)
        ),
    }
}

/// The refusal of a regular file with more than one hard link: its other names may be outside
/// the workspace, so reading it could show, and journaling it could copy, a file from outside.
fn hard_linked(path: &str, links: u64) -> ToolError {
    ToolError::Refused {
        rule: "tools.workspace".into(),
        message: format!(
            "'{}' has {links} hard links, and a hard link may lead outside the workspace; file \
             tools read, write and delete files with one link only (copy the file into the \
             workspace instead of linking it)",
            sanitize::quote(path)
        ),
    }
}

/// Refuses, before anything is looked up, a path that leaves the workspace by its letters
/// alone: an absolute path, or a `..` that climbs above the workspace's top (`a/../../b`),
/// whether or not the directories it names exist. The operating system's beneath-resolution
/// still guards every open against symlinks; this makes the plain case a refusal, recorded as
/// one, and never a "does not exist".
fn lexically_inside(workspace: &Path, path: &str) -> Result<(), ToolError> {
    use std::path::Component;
    let mut depth: usize = 0;
    for component in Path::new(path).components() {
        let escapes = match component {
            Component::Prefix(_) | Component::RootDir => true,
            Component::CurDir => false,
            Component::Normal(_) => {
                depth += 1;
                false
            }
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => {
                    depth = d;
                    false
                }
                None => true,
            },
        };
        if escapes {
            return Err(ToolError::Refused {
                rule: "tools.workspace".into(),
                message: format!(
                    "'{}' is outside the workspace {}: paths are relative to tools.workspace and \
                     may not leave it through '..', an absolute path or a symlink",
                    sanitize::quote(path),
                    sanitize::quote(&workspace.display().to_string())
                ),
            });
        }
    }
    Ok(())
}

/// Replaces (or creates) the regular file `path` beneath `dir` with `content` atomically: the
/// bytes go to a new temporary file in the same directory, which is synced and renamed over
/// `path`. A reader sees the old content or the new, never a mix, and a failure leaves the old
/// content in place. An existing file's permissions carry over to the new one.
///
/// Not [`crate::fswrite::replace`]: `tempfile` creates and renames by host path, outside the
/// workspace's `Dir` handle, so a symlinked parent could take the write out of the workspace.
pub fn replace_atomically(dir: &Dir, path: &str, content: &[u8]) -> std::io::Result<()> {
    let target = Path::new(path);
    let name = target.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path names no file (it ends in '..' or '/')",
        )
    })?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => dir.open_dir(p)?,
        Some(_) | None => dir.try_clone()?,
    };
    let permissions = match parent.symlink_metadata(name) {
        Ok(meta) if meta.is_file() => Some(meta.permissions()),
        Ok(_) | Err(_) => None,
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".veyra-{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut options = cap_std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    let mut file = parent.open_with(&temp_name, &options)?;
    let written = (|| {
        if let Some(p) = permissions {
            file.set_permissions(p)?;
        }
        file.write_all(content)?;
        file.sync_all()?;
        parent.rename(&temp_name, &parent, name)
    })();
    if let Err(e) = written {
        let _ = parent.remove_file(&temp_name);
        return Err(e);
    }
    // Make the rename itself durable (best effort: not every file system syncs directories).
    if let Ok(d) = parent.open(".") {
        let _ = d.sync_all();
    }
    Ok(())
}

fn path_schema(extra: serde_json::Value, required: &[&str]) -> serde_json::Value {
    let mut properties = json!({
        "path": {
            "type": "string",
            "minLength": 1,
            "maxLength": 4096,
            "description": "a path relative to the workspace",
        }
    });
    if let (Some(p), Some(e)) = (properties.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

#[async_trait::async_trait]
impl Tool for FileTool {
    fn capability(&self) -> Capability {
        let (name, description, reversible, confirmation, schema) = match self.op {
            FileOp::Read => (
                "file_read",
                "Reads a UTF-8 text file in the workspace.",
                true,
                false,
                path_schema(json!({}), &["path"]),
            ),
            FileOp::List => (
                "file_list",
                "Lists a directory in the workspace (default: its top).",
                true,
                false,
                path_schema(json!({}), &[]),
            ),
            // Reversible only while the undo journal keeps what they replace.
            FileOp::Write => (
                "file_write",
                "Writes text to a file in the workspace, replacing what it held.",
                self.journal,
                false,
                path_schema(
                    json!({ "content": { "type": "string", "description": "the new content" } }),
                    &["path", "content"],
                ),
            ),
            FileOp::Delete => (
                "file_delete",
                "Deletes a file in the workspace.",
                self.journal,
                true,
                path_schema(json!({}), &["path"]),
            ),
        };
        Capability {
            name: name.into(),
            description: description.into(),
            category: ToolCategory::Filesystem,
            reversible,
            confirmation,
            schema,
        }
    }

    fn files(&self, args: &serde_json::Value) -> Vec<(FileAccess, String)> {
        let path = match (
            self.op,
            args.get("path").and_then(serde_json::Value::as_str),
        ) {
            (_, Some(p)) => p.to_string(),
            (FileOp::List, None) => ".".to_string(),
            (_, None) => return Vec::new(),
        };
        let access = match self.op {
            FileOp::Read | FileOp::List => FileAccess::Read,
            FileOp::Write | FileOp::Delete => FileAccess::Write,
        };
        vec![(access, path)]
    }

    /// Runs the call on the blocking pool: every step is a blocking system call (opens,
    /// reads, writes, a sync), which must not hold an async worker.
    async fn invoke(&self, args: &serde_json::Value) -> Result<ToolOutput, ToolError> {
        let tool = self.clone();
        let args = args.clone();
        tokio::task::spawn_blocking(move || tool.invoke_blocking(&args))
            .await
            .map_err(|e| ToolError::Failed(format!("the file tool's thread failed: {e}")))?
    }
}

impl FileTool {
    /// The call itself, blocking (see [`Tool::invoke`]).
    fn invoke_blocking(&self, args: &serde_json::Value) -> Result<ToolOutput, ToolError> {
        let path = match args.get("path").and_then(serde_json::Value::as_str) {
            Some(p) => p,
            None if self.op == FileOp::List => ".",
            None => {
                return Err(ToolError::BadArguments("argument 'path' is missing".into()));
            }
        };
        if Path::new(path).as_os_str().is_empty() {
            return Err(ToolError::BadArguments("argument 'path' is empty".into()));
        }
        lexically_inside(&self.workspace, path)?;
        let dir = self.open_workspace()?;
        match self.op {
            FileOp::Read => self.read(&dir, path),
            FileOp::List => self.list(&dir, path),
            FileOp::Write => self.write(&dir, path, str_arg(args, "content")),
            FileOp::Delete => self.delete(&dir, path),
        }
    }
}

#[cfg(test)]
mod tests;
