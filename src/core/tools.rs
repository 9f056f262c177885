//! Tool calls through the gate: [`VeyraCore::invoke_tool`].
//!
//! A call names a registered tool and gives JSON arguments. The arguments are checked against
//! the tool's schema (a misfit is a usage error naming the field, before anything is decided),
//! then the call passes the gate: policy `invoke_tool` on `tool:<name>` (and `read_file` or
//! `write_file` on `file:<path>` for each file it touches), the safety boundary as operation
//! `tool:<name>` (also checked as `tool`, so `prohibited_operations: [tool]` stops them all),
//! and a confirmation when the boundary or the tool itself asks. Then the tool runs and one
//! `TOOL_INVOCATION` entry records it: arguments as a hash and length only, the outcome, and
//! metadata (tool, category, reversible, duration, error kind, the output's one-line summary).

use std::time::Instant;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::gate::Passage;
use super::{VeyraCore, task_error};
use crate::error::VeyraError;
use crate::events::ExecutionId;
use crate::governance::policy::{ContextValue, PolicyRequest, Resource, ResourceKind};
use crate::governance::{AuditEventType, AuditRecord, summarize_input};
use crate::tools::{ToolError, ToolOutput, ToolRegistry, Violation};

/// A finished tool call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolInvocation {
    /// The call's id (events and audit entries carry it as `execution_id`).
    pub id: ExecutionId,
    /// The tool.
    pub tool: String,
    /// What it answered.
    pub output: ToolOutput,
    /// Sequence number of the `TOOL_INVOCATION` entry, when audit is on.
    pub audit_seq: Option<u64>,
}

impl VeyraCore {
    /// The tools this core can run.
    pub fn tools(&self) -> &ToolRegistry {
        &self.inner.tools
    }

    /// Runs one tool call on behalf of `actor` through the gate (see the module docs).
    /// Unknown tools and misfit arguments are usage errors (exit 2); a call refused by policy,
    /// the safety boundary, the operator or the tool's own rules is [`VeyraError::Refused`]
    /// (exit 4); a tool that fails is a task error (exit 1).
    pub async fn invoke_tool(
        &self,
        name: &str,
        args: serde_json::Value,
        actor: &str,
    ) -> Result<ToolInvocation, VeyraError> {
        let core = &self.inner;
        let usage = |e: ToolError| VeyraError::Usage(e.to_string());
        let tool = core.tools.get(name).map_err(usage)?;
        core.tools.validate(name, &args).map_err(usage)?;
        let capability = tool.capability();
        let id = ExecutionId::new();
        let preset = core.link.preset();
        let mut policy = vec![
            PolicyRequest::new(
                actor,
                "invoke_tool",
                Resource {
                    kind: ResourceKind::Tool,
                    id: name.to_string(),
                },
                preset,
            )
            .with("reversible", ContextValue::Bool(capability.reversible)),
        ];
        for (access, path) in tool.files(&args) {
            policy.push(PolicyRequest::new(
                actor,
                access.action(),
                Resource {
                    kind: ResourceKind::File,
                    id: path,
                },
                preset,
            ));
        }
        let operation = format!("tool:{name}");
        core.admit(
            &Passage {
                policy,
                operations: &["tool", &operation],
                reversible: capability.reversible,
                confirm: capability.confirmation,
                actor,
                id,
                ask: true,
            },
            &CancellationToken::new(),
        )
        .await
        .map_err(|e| task_error(&e.kind, &e.message))?;
        let started = Instant::now();
        let result = tool.invoke(&args).await;
        let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (outcome, error_kind, summary) = match &result {
            Ok(out) => ("success", None, out.summary.clone()),
            Err(e @ ToolError::Refused { .. }) => ("refused", Some(e.kind()), e.to_string()),
            Err(e) => ("failure", Some(e.kind()), e.to_string()),
        };
        let entry = core
            .record_for_task(
                AuditRecord {
                    event_type: AuditEventType::ToolInvocation,
                    actor: actor.to_string(),
                    action: "invoke_tool".into(),
                    resource: format!("tool:{name}"),
                    outcome: outcome.into(),
                    input_summary: summarize_input(&args.to_string()),
                    metadata: serde_json::json!({
                        "tool": name,
                        "category": capability.category.name(),
                        "reversible": capability.reversible,
                        "duration_us": duration_us,
                        "error_kind": error_kind,
                        "summary": crate::sanitize::excerpt(&summary, crate::sanitize::EXCERPT_CHARS),
                        "execution_id": id.to_string(),
                    }),
                },
                Some(id),
                "this tool call",
            )
            .map_err(|e| task_error(&e.kind, &e.message))?;
        match result {
            Ok(output) => Ok(ToolInvocation {
                id,
                tool: name.to_string(),
                output,
                audit_seq: entry.map(|e| e.seq),
            }),
            Err(ToolError::Refused { rule, message }) => {
                let v = Violation {
                    operation,
                    level: crate::tools::SafetyLevel::Blocked,
                    rule,
                    reason: message.clone(),
                    actor: actor.to_string(),
                    at: chrono::Utc::now(),
                };
                core.record_violation(&v, Some(id))
                    .map_err(|e| task_error(&e.kind, &e.message))?;
                Err(VeyraError::Refused(message))
            }
            Err(e @ (ToolError::Unknown(_) | ToolError::BadArguments(_))) => {
                Err(VeyraError::Usage(e.to_string()))
            }
            Err(ToolError::Failed(message)) => Err(VeyraError::Task {
                kind: "tool".into(),
                message: format!("tool '{name}' failed: {message}"),
            }),
        }
    }
}
