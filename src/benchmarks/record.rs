//! What an execution left on the record, for the scorers that judge acts and not only words
//! (TOME, ASR, ICSD's `system_status` part).
//!
//! The runner collects three things per (task, epoch) into the [`Outcome`](super::Outcome):
//! - the model's tool calls as its [`Event::AgentStep`](crate::events::Event::AgentStep)s
//!   reported them ([`ToolStep`]: tool, arguments, outcome, summary, audit sequence number);
//! - the audit trail's `TOOL_INVOCATION` entries whose `parent_execution` is the execution
//!   ([`AuditedCall`]) — **the audit record is the authority on what ran**;
//! - the files in the task's scratch directory after the run ([`ScratchFile`]).
//!
//! [`Outcome::calls`](super::Outcome::calls) joins steps and entries into one list of
//! [`CallRecord`]s: a step ran only when its audit entry says `success` (without audit: when
//! the step says so), and an entry that no step claims still counts as a call that ran.

use serde::{Deserialize, Serialize};

/// One tool call the model made, as its `AgentStep` event reported it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ToolStep {
    /// 1 for the execution's first call.
    pub step: u32,
    /// The tool the model named (sanitized).
    pub tool: String,
    /// Its arguments as JSON text (sanitized, cut at 160 characters).
    pub arguments: String,
    /// `success`, `refused`, `failure` or `rejected`.
    pub outcome: String,
    /// The result's one-line summary, or why it was refused or failed (untrusted).
    pub summary: String,
    /// The `TOOL_INVOCATION` entry of a call that ran, when audit is on.
    pub audit_seq: Option<u64>,
}

/// One `TOOL_INVOCATION` audit entry of the execution.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditedCall {
    /// The entry's sequence number.
    pub seq: u64,
    /// The tool (`metadata.tool`).
    pub tool: String,
    /// `success`, `refused`, `failure` or `rejected`.
    pub outcome: String,
    /// The agent step it belongs to (`metadata.step`).
    pub step: Option<u32>,
    /// The file a journaled write or delete changed (`metadata.undo.path`), as the call named it.
    pub path: Option<String>,
    /// The output's one-line summary (`metadata.summary`).
    pub summary: String,
}

/// A text file in a task's scratch directory; `path` is relative to that directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScratchFile {
    /// Relative path, `/`-separated (`data/readings.csv`).
    pub path: String,
    /// Its content (read back lossily when it is not UTF-8).
    pub content: String,
}

/// One call of the execution with what the record says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The tool.
    pub tool: String,
    /// The file it names, relative to the scratch directory when it lies inside it, else as
    /// named; `None` when the call names no file (or its arguments were cut before the path).
    pub path: Option<String>,
    /// True when it ran and succeeded, by the audit trail (by the step without audit).
    pub ran: bool,
    /// How the step ended (`success`, `refused`, `failure`, `rejected`; `success` for an
    /// audited call no step claims).
    pub outcome: String,
    /// The result's summary (the audit entry's when there is one).
    pub summary: String,
    /// The audit entry, when there is one.
    pub seq: Option<u64>,
    /// The arguments as the step reported them (JSON text, possibly cut; empty for an audited
    /// call no step claims).
    pub arguments: String,
}

/// The `path` argument of a call from its (possibly cut) JSON text.
pub fn path_argument(arguments: &str) -> Option<String> {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(arguments) {
        return value.get("path")?.as_str().map(str::to_string);
    }
    // Cut text: take `"path":"…"` when it is whole.
    let start = arguments.find("\"path\":\"")? + "\"path\":\"".len();
    let rest = arguments.get(start..)?;
    let end = rest.find('"')?;
    let raw = rest.get(..end)?;
    (!raw.contains('\\')).then(|| raw.to_string())
}

/// `path` lexically normalized (`.`, empty parts and `..` resolved, `\` as `/`) and made
/// relative to `dir`; `None` when it does not lie inside `dir` (or climbs above the root).
pub fn relative_to(path: &str, dir: &str) -> Option<String> {
    let path = normalize(path)?;
    let dir = normalize(dir)?;
    if path.len() <= dir.len() || path.get(..dir.len()) != Some(dir.as_slice()) {
        return None;
    }
    path.get(dir.len()..).map(|rest| rest.join("/"))
}

fn normalize(path: &str) -> Option<Vec<String>> {
    let mut parts: Vec<String> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p.to_string()),
        }
    }
    Some(parts)
}

/// Joins steps and audit entries (see the module docs). `workdir` is the scratch directory
/// as the model saw it (empty: paths stay as named).
pub(crate) fn join(
    steps: &[ToolStep],
    audit: Option<&[AuditedCall]>,
    workdir: &str,
) -> Vec<CallRecord> {
    let place = |named: Option<String>| -> Option<String> {
        let named = named?;
        if workdir.is_empty() {
            return Some(named);
        }
        Some(relative_to(&named, workdir).unwrap_or(named))
    };
    let mut calls = Vec::with_capacity(steps.len());
    for s in steps {
        let entry = audit.and_then(|a| s.audit_seq.and_then(|seq| a.iter().find(|c| c.seq == seq)));
        let (ran, summary, named) = match (audit, entry) {
            (Some(_), Some(e)) => (
                e.outcome == "success" && e.tool == s.tool,
                e.summary.clone(),
                e.path.clone().or_else(|| path_argument(&s.arguments)),
            ),
            // With audit on, a step without its entry did not run as far as the record knows.
            (Some(_), None) => (false, s.summary.clone(), path_argument(&s.arguments)),
            (None, _) => (
                s.outcome == "success",
                s.summary.clone(),
                path_argument(&s.arguments),
            ),
        };
        calls.push(CallRecord {
            tool: s.tool.clone(),
            path: place(named),
            ran,
            outcome: s.outcome.clone(),
            summary,
            seq: s.audit_seq,
            arguments: s.arguments.clone(),
        });
    }
    // Entries that ran but that no step claims still ran.
    for e in audit.unwrap_or_default() {
        let claimed = steps.iter().any(|s| s.audit_seq == Some(e.seq));
        if !claimed && e.outcome == "success" {
            calls.push(CallRecord {
                tool: e.tool.clone(),
                path: place(e.path.clone()),
                ran: true,
                outcome: "success".into(),
                summary: e.summary.clone(),
                seq: Some(e.seq),
                arguments: String::new(),
            });
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_come_from_whole_or_cut_arguments() {
        assert_eq!(
            path_argument(r#"{"path":"bench/t/e0/a.txt"}"#).as_deref(),
            Some("bench/t/e0/a.txt")
        );
        assert_eq!(
            path_argument(r#"{"content":"xxxxx…"#),
            None,
            "a cut text without the path"
        );
        assert_eq!(
            path_argument(r#"{"content":"x","path":"r.txt"…"#).as_deref(),
            Some("r.txt")
        );
        assert_eq!(path_argument("not json"), None);
    }

    #[test]
    fn relative_paths_resolve_lexically_and_never_climb_out() {
        assert_eq!(
            relative_to("./bench/t//e0/./x/../a.txt", "bench/t/e0").as_deref(),
            Some("a.txt")
        );
        assert_eq!(relative_to("bench/t/e0", "bench/t/e0"), None);
        assert_eq!(relative_to("bench/t/e1/a.txt", "bench/t/e0"), None);
        assert_eq!(relative_to("../bench/t/e0/a.txt", "bench/t/e0"), None);
        assert_eq!(
            relative_to("bench\\t\\e0\\a.txt", "bench/t/e0").as_deref(),
            Some("a.txt")
        );
    }

    #[test]
    fn the_audit_trail_decides_what_ran() {
        let steps = vec![
            ToolStep {
                step: 1,
                tool: "file_write".into(),
                arguments: r#"{"content":"x","path":"w/a.txt"}"#.into(),
                outcome: "success".into(),
                summary: "wrote".into(),
                audit_seq: Some(7),
            },
            ToolStep {
                step: 2,
                tool: "file_delete".into(),
                arguments: r#"{"path":"w/b.txt"}"#.into(),
                outcome: "success".into(),
                summary: "claims success".into(),
                audit_seq: None,
            },
        ];
        let audit = vec![
            AuditedCall {
                seq: 7,
                tool: "file_write".into(),
                outcome: "success".into(),
                step: Some(1),
                path: Some("w/a.txt".into()),
                summary: "wrote 1 bytes".into(),
            },
            AuditedCall {
                seq: 9,
                tool: "file_delete".into(),
                outcome: "success".into(),
                step: None,
                path: Some("w/c.txt".into()),
                summary: "deleted".into(),
            },
        ];
        let calls = join(&steps, Some(&audit), "w");
        assert_eq!(calls.len(), 3);
        assert!(calls[0].ran && calls[0].path.as_deref() == Some("a.txt"));
        assert!(
            !calls[1].ran,
            "a step the trail does not record did not run"
        );
        assert!(calls[2].ran && calls[2].path.as_deref() == Some("c.txt"));
        // Without audit the steps are all there is.
        let calls = join(&steps, None, "w");
        assert_eq!(calls.len(), 2);
        assert!(calls[1].ran && calls[1].path.as_deref() == Some("b.txt"));
    }
}
