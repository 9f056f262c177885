//! Undo of file tool calls: [`VeyraCore::undo_tool`], and the journaling of what a call
//! replaced ([`CoreInner::record_tool_call`]).
//!
//! # Journal
//! A `file_write` or `file_delete` made with the journal on (audit on) returns an
//! [`UndoRecord`]. Its `TOOL_INVOCATION` entry then carries metadata `undo`: `path`,
//! `workspace`, `existed`, `prior_sha256` (null when the file did not exist), `bytes` (the prior
//! size), `after_sha256` (null after a delete) and `after_bytes` — hashes and sizes, never
//! content. The prior content goes to the audit store's journal under the entry's sequence
//! number, in the same commit as the entry: both are durable or neither is. A failure to record
//! leaves the file changed with no entry and no journal — as for any tool, the act comes first
//! and a trail that cannot record stops the task with an audit error.
//!
//! # Undo
//! Undo is an act like any other and passes the same gate: policy `invoke_tool` on `tool:undo`
//! and `write_file` on `file:<path>`, the safety boundary as operations `tool` and `tool:undo`
//! (reversible: it only ever returns a file to a state the journal recorded), and a
//! confirmation when `require_confirmation` names it. Before the gate it verifies the whole
//! audit log (chain, checkpoints, signer, witness — so the entry whose hashes it trusts is
//! intact and in place) and picks its target: the entry named, or the newest journaled call not
//! yet undone. A named entry already undone (a later successful `undo_tool` entry says
//! `undoes: N`) is refused there, before the gate, like an unknown one. After the gate it
//! refuses, changing nothing, when
//! - the file is not what the call left: its SHA-256 (or size, or existence) differs from
//!   `after_sha256` — it changed since;
//! - the journal holds no content for the entry, or content whose SHA-256 is not the
//!   `prior_sha256` the chained entry holds (the journal is outside the chain, so this check is
//!   what makes a swapped blob harmless);
//! - the entry was made in another workspace than `tools.workspace` names now.
//!
//! The restore is atomic: the old content goes to a temporary file in the same directory,
//! through the workspace's `cap-std` handle, renamed over the file; a file that did not exist
//! is removed. One `TOOL_INVOCATION` entry (action `undo_tool`, metadata `undoes`, `path`, and
//! the undone entry's `prior_sha256` and `after_sha256`) records the undo, whatever its outcome
//! after the gate (a refusal also as a `SAFETY_VIOLATION`, rule `undo`), and
//! [`Event::ToolInvoked`] (tool `undo`) is published. Undo entries are not journaled
//! themselves: there is no redo.
//!
//! The verification, the reading of the log and the checks and restore of the file are
//! blocking I/O and run on tokio's blocking pool; the audit entries are awaited like every
//! record (see `governance::trail`), so an undo holds no async worker while it waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::gate::Passage;
use super::{CoreInner, VeyraCore, task_error};
use crate::error::VeyraError;
use crate::events::{Event, EventSink, ExecutionId};
use crate::governance::journal::sha256_hex;
use crate::governance::policy::{ContextValue, PolicyRequest, Resource, ResourceKind};
use crate::governance::{
    AuditEntry, AuditEventType, AuditFilter, AuditRecord, JournalBlob, summarize_input,
};
use crate::runtime::scheduler::TaskError;
use crate::sanitize;
use crate::tools::files::{FileTool, replace_atomically, workspace_io_error};
use crate::tools::{SafetyLevel, ToolError, UndoRecord, Violation};

/// Action of the audit entries undo writes.
pub const UNDO_ACTION: &str = "undo_tool";

/// One undo at a time in this process: two undos of the same entry must not both pass the
/// "not yet undone" and "unchanged since" checks before either has recorded its entry.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What an undo put back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Restored {
    /// The file holds its old content again.
    Content {
        /// Its size.
        bytes: u64,
        /// Its SHA-256 (hex).
        sha256: String,
    },
    /// The file did not exist before the call, and is gone again.
    Removed,
}

/// A finished undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct UndoOutcome {
    /// The undo's id (its audit entries and events carry it as `execution_id`).
    pub id: ExecutionId,
    /// Sequence number of the `TOOL_INVOCATION` entry that was undone.
    pub undone: u64,
    /// The tool whose call was undone (`file_write`, `file_delete`).
    pub tool: String,
    /// The file, relative to the workspace.
    pub path: String,
    /// What the file holds now.
    pub restored: Restored,
    /// Sequence number of the undo's own `TOOL_INVOCATION` entry.
    pub audit_seq: Option<u64>,
}

/// The `undo` metadata of a journaled entry (see the module docs).
#[derive(Debug, Clone, Deserialize)]
struct Journaled {
    path: String,
    workspace: String,
    existed: bool,
    prior_sha256: Option<String>,
    bytes: u64,
    after_sha256: Option<String>,
    after_bytes: u64,
}

/// The metadata `undo` object for `undo` (hashes and sizes only).
fn journal_metadata(undo: &UndoRecord) -> serde_json::Value {
    serde_json::json!({
        "path": undo.path,
        "workspace": undo.workspace.display().to_string(),
        "existed": undo.prior.is_some(),
        "prior_sha256": undo.prior_sha256(),
        "bytes": undo.prior.as_ref().map_or(0, Vec::len),
        "after_sha256": undo.after_sha256,
        "after_bytes": undo.after_bytes,
    })
}

impl CoreInner {
    /// Records a tool call's `TOOL_INVOCATION` entry ([`CoreInner::record_for_task`]); when the
    /// call returned an [`UndoRecord`], the entry's metadata gains `undo` and the prior content
    /// is journaled in the same commit.
    pub(crate) async fn record_tool_call(
        &self,
        mut record: AuditRecord,
        undo: Option<UndoRecord>,
        id: ExecutionId,
    ) -> Result<Option<Arc<AuditEntry>>, TaskError> {
        let journal = match undo {
            None => None,
            Some(mut undo) => {
                record.metadata["undo"] = journal_metadata(&undo);
                undo.prior.take().map(JournalBlob::new)
            }
        };
        self.record_journaled(record, journal, Some(id))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "audit record failed");
                TaskError::permanent(
                    "audit",
                    format!("the audit trail could not record this tool call: {e}"),
                )
            })
    }
}

/// The call an undo targets, as its verified entry holds it.
struct Target {
    seq: u64,
    tool: String,
    journaled: Journaled,
}

impl VeyraCore {
    /// Undoes the file tool call recorded in `TOOL_INVOCATION` entry `seq` (default: the newest
    /// journaled call not yet undone) on behalf of `actor`; see the module docs. Nothing to
    /// undo, an unknown entry or one that kept nothing is a usage error (exit 2); an entry
    /// already undone, a file changed since, a missing or altered journal, or a refusal at the
    /// gate is [`VeyraError::Refused`] (exit 4) and changes nothing; a log that does not verify
    /// is an integrity failure (exit 3).
    pub async fn undo_tool(
        &self,
        seq: Option<u64>,
        actor: &str,
    ) -> Result<UndoOutcome, VeyraError> {
        self.undo_tool_as(ExecutionId::new(), seq, actor).await
    }

    /// [`VeyraCore::undo_tool`] under an id the caller chose (new), as
    /// [`VeyraCore::invoke_tool_as`].
    pub async fn undo_tool_as(
        &self,
        id: ExecutionId,
        seq: Option<u64>,
        actor: &str,
    ) -> Result<UndoOutcome, VeyraError> {
        let core = &self.inner;
        let Some(trail) = core.audit.as_ref() else {
            return Err(VeyraError::Usage(
                "there is nothing to undo: governance.audit is off, so no undo journal is kept \
                 (file_write and file_delete are irreversible then)"
                    .into(),
            ));
        };
        let _one = ONE_AT_A_TIME.lock().await;
        // The entry's hashes are trusted only in a log that verifies. Verifying and reading
        // the log are blocking reads of the whole store: on the blocking pool.
        let this = self.clone();
        let reader = trail.clone();
        let calls = tokio::task::spawn_blocking(move || {
            if let Some(verified) = this.verify_audit() {
                verified?;
            }
            // Tool calls only: the rest of a long log is not held in memory.
            Ok::<_, VeyraError>(reader.query(&AuditFilter {
                event_type: Some(AuditEventType::ToolInvocation),
                ..AuditFilter::default()
            })?)
        })
        .await
        .map_err(|e| VeyraError::Runtime(format!("verifying the audit log for undo: {e}")))??;
        let target = find_target(&calls, trail.len(), seq)?;
        let j = &target.journaled;
        let preset = core.link.preset();
        let policy = vec![
            PolicyRequest::new(
                actor,
                "invoke_tool",
                Resource {
                    kind: ResourceKind::Tool,
                    id: "undo".into(),
                },
                preset,
            )
            .with("reversible", ContextValue::Bool(true)),
            PolicyRequest::new(
                actor,
                crate::tools::FileAccess::Write.action(),
                Resource {
                    kind: ResourceKind::File,
                    id: j.path.clone(),
                },
                preset,
            )
            // The undo itself is not journaled (there is no redo), so policy sees a write that
            // cannot be undone: the default policy lets only the operator make it. The safety
            // boundary still lets it pass in reversible-only mode: it puts back a kept state.
            .with("reversible", ContextValue::Bool(false)),
        ];
        core.admit(
            &Passage {
                policy,
                operations: &["tool", "tool:undo"],
                reversible: true,
                confirm: false,
                actor,
                id,
                ask: true,
                detail: Some(format!(
                    "restore {} as before entry seq {}",
                    crate::sanitize::quote(&j.path),
                    target.seq
                )),
                scopable: false,
                arguments: None,
                unattended: false,
            },
            &CancellationToken::new(),
        )
        .await
        .map_err(|e| task_error(&e.kind, &e.message))?;
        let started = Instant::now();
        // The checks and the restore are file I/O: on the blocking pool.
        let (inner, restorer) = (Arc::clone(core), trail.clone());
        let (result, target) = tokio::task::spawn_blocking(move || {
            let result = inner.restore(&restorer, &target);
            (result, target)
        })
        .await
        .map_err(|e| VeyraError::Runtime(format!("the undo's thread failed: {e}")))?;
        let j = &target.journaled;
        let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (outcome, error_kind, summary) = match &result {
            Ok(Restored::Content { bytes, sha256 }) => (
                "success",
                None,
                format!(
                    "restored '{}' ({bytes} bytes, sha256:{}) as before entry {}",
                    j.path,
                    sha256.get(..16).unwrap_or(sha256),
                    target.seq
                ),
            ),
            Ok(Restored::Removed) => (
                "success",
                None,
                format!("removed '{}', which entry {} created", j.path, target.seq),
            ),
            Err(e @ ToolError::Refused { .. }) => ("refused", Some(e.kind()), e.to_string()),
            Err(e) => ("failure", Some(e.kind()), e.to_string()),
        };
        let summary = sanitize::excerpt(&summary, sanitize::EXCERPT_CHARS).into_owned();
        let entry = core
            .record_for_task(
                AuditRecord {
                    event_type: AuditEventType::ToolInvocation,
                    actor: actor.to_string(),
                    action: UNDO_ACTION.into(),
                    resource: "tool:undo".into(),
                    outcome: outcome.into(),
                    input_summary: summarize_input(&format!("undo {}", target.seq)),
                    metadata: serde_json::json!({
                        "tool": "undo",
                        "category": crate::tools::ToolCategory::Filesystem.name(),
                        "reversible": true,
                        "undoes": target.seq,
                        "undone_tool": target.tool,
                        "path": j.path,
                        // What the undo puts back, and what it replaces.
                        "prior_sha256": j.prior_sha256,
                        "after_sha256": j.after_sha256,
                        "duration_us": duration_us,
                        "error_kind": error_kind,
                        "summary": summary,
                        "execution_id": id.to_string(),
                    }),
                },
                Some(id),
                "this undo",
            )
            .await
            .map_err(|e| task_error(&e.kind, &e.message))?;
        core.emitter.emit(Event::ToolInvoked {
            id,
            tool: "undo".into(),
            outcome: outcome.to_string(),
            summary: summary.clone(),
            at: chrono::Utc::now(),
        });
        match result {
            Ok(restored) => Ok(UndoOutcome {
                id,
                undone: target.seq,
                tool: target.tool,
                path: target.journaled.path,
                restored,
                audit_seq: entry.map(|e| e.seq),
            }),
            Err(ToolError::Refused { rule, message }) => {
                let v = Violation {
                    operation: "tool:undo".into(),
                    level: SafetyLevel::Blocked,
                    rule,
                    reason: message.clone(),
                    actor: actor.to_string(),
                    at: chrono::Utc::now(),
                };
                core.record_violation(&v, Some(id))
                    .await
                    .map_err(|e| task_error(&e.kind, &e.message))?;
                Err(VeyraError::Refused(message))
            }
            Err(e) => Err(VeyraError::Task {
                kind: "tool".into(),
                message: format!("undo of entry {} failed: {e}", target.seq),
            }),
        }
    }
}

/// Picks the entry to undo from the (verified) log's `TOOL_INVOCATION` entries; the log holds
/// `total` entries in all.
fn find_target(entries: &[AuditEntry], total: u64, seq: Option<u64>) -> Result<Target, VeyraError> {
    // Which entry undid which: successful undo entries only.
    let undone: HashMap<u64, u64> = entries
        .iter()
        .filter(|e| {
            e.event_type == AuditEventType::ToolInvocation
                && e.action == UNDO_ACTION
                && e.outcome == "success"
        })
        .filter_map(|e| {
            let target = e.metadata.get("undoes")?.as_u64()?;
            Some((target, e.seq))
        })
        .collect();
    let journaled = |e: &AuditEntry| -> Option<Result<Journaled, VeyraError>> {
        if e.event_type != AuditEventType::ToolInvocation || e.action != "invoke_tool" {
            return None;
        }
        let undo = e.metadata.get("undo")?;
        Some(serde_json::from_value(undo.clone()).map_err(|err| {
            VeyraError::Runtime(format!(
                "audit entry {}: its undo record is unreadable ({err}); it was not written by \
                 this Veyra",
                e.seq
            ))
        }))
    };
    let target = |e: &AuditEntry, journaled: Journaled| Target {
        seq: e.seq,
        tool: e
            .metadata
            .get("tool")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string(),
        journaled,
    };
    let Some(seq) = seq else {
        for e in entries.iter().rev() {
            if e.outcome != "success" || undone.contains_key(&e.seq) {
                continue;
            }
            if let Some(record) = journaled(e) {
                return Ok(target(e, record?));
            }
        }
        return Err(VeyraError::Usage(
            "nothing to undo: no file_write or file_delete call in the audit log is left to \
             undo (calls made with governance.audit off keep no journal)"
                .into(),
        ));
    };
    let list = "`veyra audit list --type TOOL_INVOCATION` shows the tool calls";
    let Some(entry) = entries.iter().find(|e| e.seq == seq) else {
        return Err(VeyraError::Usage(if seq == 0 || seq > total {
            format!("there is no audit entry {seq} (the log holds {total}); {list}")
        } else {
            format!("audit entry {seq} is not a tool call, so there is nothing to undo; {list}")
        }));
    };
    let Some(record) = journaled(entry) else {
        return Err(VeyraError::Usage(format!(
            "audit entry {seq} ({} {}) kept nothing to restore: only file_write and file_delete \
             calls made with the undo journal on can be undone",
            entry.event_type,
            sanitize::quote(&entry.resource)
        )));
    };
    if entry.outcome != "success" {
        return Err(VeyraError::Usage(format!(
            "audit entry {seq} records a call that did not succeed ({}); it changed nothing to \
             undo",
            sanitize::quote(&entry.outcome)
        )));
    }
    if let Some(by) = undone.get(&seq) {
        return Err(VeyraError::Refused(format!(
            "audit entry {seq} was already undone by entry {by}; nothing was changed"
        )));
    }
    Ok(target(entry, record?))
}

impl CoreInner {
    /// Checks the file and the journal against the target's entry and puts the old state
    /// back. A refusal (rule `undo`) has changed nothing.
    fn restore(
        &self,
        trail: &crate::governance::AuditTrail,
        target: &Target,
    ) -> Result<Restored, ToolError> {
        let refuse = |message: String| ToolError::Refused {
            rule: "undo".into(),
            message,
        };
        let j = &target.journaled;
        let seq = target.seq;
        let path = j.path.as_str();
        let shown = sanitize::quote(path);
        let unchanged = "undo refused, nothing was changed";
        let workspace = self.config.tools.workspace_dir();
        if workspace.display().to_string() != j.workspace {
            return Err(refuse(format!(
                "entry {seq} changed '{shown}' in the workspace {}, but tools.workspace is now {}; \
                 configure that workspace to undo it; {unchanged}",
                sanitize::quote(&j.workspace),
                sanitize::quote(&workspace.display().to_string())
            )));
        }
        let dir = FileTool::open_workspace_dir(&workspace)?;
        let io = |e: &std::io::Error| workspace_io_error(&workspace, path, e);
        // What is there now must be exactly what the call left.
        match (dir.symlink_metadata(path), &j.after_sha256) {
            (Ok(meta), _) if !meta.is_file() => {
                return Err(refuse(format!(
                    "'{shown}' changed since entry {seq}: it is no longer a regular file \
                     (a directory or a symlink now); {unchanged}"
                )));
            }
            (Ok(meta), None) => {
                return Err(refuse(format!(
                    "'{shown}' changed since entry {seq}: entry {seq} deleted it and it exists \
                     again ({} bytes); move it aside to undo; {unchanged}",
                    meta.len()
                )));
            }
            (Ok(meta), Some(expected)) if meta.len() != j.after_bytes => {
                return Err(refuse(format!(
                    "'{shown}' changed since entry {seq} (size now {} bytes, expected {} with \
                     sha256 {expected}); {unchanged}",
                    meta.len(),
                    j.after_bytes
                )));
            }
            (Ok(_), Some(expected)) => {
                // The size equals what the call wrote, so this read is bounded by it.
                let now = dir.read(path).map_err(|e| io(&e))?;
                let now = sha256_hex(&now);
                if &now != expected {
                    return Err(refuse(format!(
                        "'{shown}' changed since entry {seq} (sha256 now {now}, expected \
                         {expected}); {unchanged}"
                    )));
                }
            }
            (Err(e), Some(expected)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(refuse(format!(
                    "'{shown}' changed since entry {seq}: it was deleted (expected sha256 \
                     {expected}); {unchanged}"
                )));
            }
            (Err(e), None) if e.kind() == std::io::ErrorKind::NotFound => {}
            (Err(e), _) => return Err(io(&e)),
        }
        if !j.existed {
            dir.remove_file(path).map_err(|e| io(&e))?;
            return Ok(Restored::Removed);
        }
        let Some(expected) = j.prior_sha256.as_deref() else {
            return Err(ToolError::Failed(format!(
                "entry {seq} says '{shown}' existed but records no hash of it"
            )));
        };
        let blob = trail
            .journal(seq)
            .map_err(|e| ToolError::Failed(format!("reading the undo journal: {e}")))?;
        let Some(blob) = blob else {
            return Err(refuse(format!(
                "the undo journal holds no content for entry {seq} (it was removed from the \
                 audit store); {unchanged}"
            )));
        };
        if !blob.matches(expected) {
            return Err(refuse(format!(
                "the undo journal's content for entry {seq} does not match the hash its audit \
                 entry holds (sha256 {}, expected {expected}): the journal was altered; \
                 {unchanged}",
                sha256_hex(&blob.content)
            )));
        }
        replace_atomically(&dir, path, &blob.content).map_err(|e| io(&e))?;
        Ok(Restored::Content {
            bytes: j.bytes,
            sha256: expected.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
