//! File tools confined to the workspace: `file_read`, `file_list`, `file_write`, `file_delete`.
//!
//! Every path is opened through a `cap-std` [`Dir`] handle on `tools.workspace`, so `..` that
//! climbs out, absolute paths and symlinks that lead out are refused by the operating system's
//! beneath-this-directory resolution, not by string checks. Only regular files are read,
//! written or deleted (a device, FIFO or socket is refused before it is opened), and sizes are
//! checked before any byte is read (`tools.max_read_bytes`) or written (`tools.max_write_bytes`).

use std::io::Read;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Capability, FileAccess, Tool, ToolCategory, ToolError, ToolOutput, str_arg};
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
}

impl FileTool {
    /// The tool `op` with the workspace and limits of `tools:`.
    pub fn new(op: FileOp, config: &ToolsConfig) -> Self {
        FileTool {
            op,
            workspace: config.workspace_dir(),
            max_read: config.max_read_bytes,
            max_write: config.max_write_bytes,
        }
    }

    /// The four file tools.
    pub fn all(config: &ToolsConfig) -> [FileTool; 4] {
        [FileOp::Read, FileOp::List, FileOp::Write, FileOp::Delete].map(|op| Self::new(op, config))
    }

    fn open_workspace(&self) -> Result<Dir, ToolError> {
        std::fs::create_dir_all(&self.workspace).map_err(|e| {
            ToolError::Failed(format!(
                "the workspace {} could not be created: {e}; set tools.workspace to a writable directory",
                sanitize::quote(&self.workspace.display().to_string())
            ))
        })?;
        Dir::open_ambient_dir(&self.workspace, cap_std::ambient_authority()).map_err(|e| {
            ToolError::Failed(format!(
                "the workspace {} could not be opened: {e}",
                sanitize::quote(&self.workspace.display().to_string())
            ))
        })
    }

    fn io_error(&self, path: &str, e: &std::io::Error) -> ToolError {
        let shown = sanitize::quote(path);
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => ToolError::Refused {
                rule: "tools.workspace".into(),
                message: format!(
                    "'{shown}' is outside the workspace {} or not permitted: paths are relative \
                     to tools.workspace and may not leave it through '..', an absolute path or \
                     a symlink",
                    sanitize::quote(&self.workspace.display().to_string())
                ),
            },
            std::io::ErrorKind::NotFound => {
                ToolError::Failed(format!("'{shown}' does not exist in the workspace"))
            }
            _ => ToolError::Failed(format!("'{shown}': {e}")),
        }
    }

    fn regular_file(&self, dir: &Dir, path: &str) -> Result<u64, ToolError> {
        let meta = dir.metadata(path).map_err(|e| self.io_error(path, &e))?;
        if !meta.is_file() {
            return Err(ToolError::Refused {
                rule: "tools.workspace".into(),
                message: format!(
                    "'{}' is not a regular file; file tools read, write and delete regular files only",
                    sanitize::quote(path)
                ),
            });
        }
        Ok(meta.len())
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
        let file = dir.open(path).map_err(|e| self.io_error(path, &e))?;
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
        match dir.metadata(path) {
            Ok(_) => {
                self.regular_file(dir, path)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io_error(path, &e)),
        }
        dir.write(path, content.as_bytes())
            .map_err(|e| self.io_error(path, &e))?;
        let digest = hex::encode(Sha256::digest(content.as_bytes()));
        Ok(ToolOutput::new(
            json!({ "path": path, "bytes": len, "sha256": digest }),
            format!("wrote {len} bytes, sha256:{}", &digest[..16]),
        ))
    }

    fn delete(&self, dir: &Dir, path: &str) -> Result<ToolOutput, ToolError> {
        let len = self.regular_file(dir, path)?;
        dir.remove_file(path).map_err(|e| self.io_error(path, &e))?;
        Ok(ToolOutput::new(
            json!({ "path": path, "deleted": true, "bytes": len }),
            format!("deleted {len} bytes"),
        ))
    }
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
            // Irreversible until the undo journal keeps the previous content.
            FileOp::Write => (
                "file_write",
                "Writes text to a file in the workspace, replacing what it held.",
                false,
                false,
                path_schema(
                    json!({ "content": { "type": "string", "description": "the new content" } }),
                    &["path", "content"],
                ),
            ),
            FileOp::Delete => (
                "file_delete",
                "Deletes a file in the workspace.",
                false,
                true,
                path_schema(json!({}), &["path"]),
            ),
        };
        Capability {
            name,
            description,
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

    async fn invoke(&self, args: &serde_json::Value) -> Result<ToolOutput, ToolError> {
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
mod tests {
    use super::*;

    fn tool(op: FileOp, ws: &Path) -> FileTool {
        let config = ToolsConfig {
            workspace: Some(ws.to_path_buf()),
            max_read_bytes: 16,
            max_write_bytes: 16,
            ..ToolsConfig::default()
        };
        FileTool::new(op, &config)
    }

    fn run(t: &FileTool, args: serde_json::Value) -> Result<ToolOutput, ToolError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(t.invoke(&args))
    }

    #[test]
    fn paths_out_of_the_workspace_are_refused_by_construction() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("a")).unwrap();
        std::fs::write(dir.path().join("outside.txt"), "outside").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.txt"), ws.join("link")).unwrap();
        let read = tool(FileOp::Read, &ws);
        for path in [
            "../outside.txt",
            "a/../../outside.txt",
            "/etc/passwd",
            "link",
        ] {
            let err = run(&read, serde_json::json!({ "path": path })).unwrap_err();
            assert!(
                matches!(&err, ToolError::Refused { rule, .. } if rule == "tools.workspace"),
                "{path}: {err:?}"
            );
        }
    }

    #[test]
    fn size_limits_hold_for_reads_and_writes() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join("big")).unwrap();
        f.set_len(2 * 1024 * 1024 * 1024).unwrap();
        let err = run(
            &tool(FileOp::Read, dir.path()),
            serde_json::json!({ "path": "big" }),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ToolError::Refused { rule, .. } if rule == "tools.max_read_bytes"),
            "{err:?}"
        );
        let err = run(
            &tool(FileOp::Write, dir.path()),
            serde_json::json!({ "path": "w", "content": "x".repeat(17) }),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ToolError::Refused { rule, .. } if rule == "tools.max_write_bytes"),
            "{err:?}"
        );
        assert!(!dir.path().join("w").exists());
    }
}
