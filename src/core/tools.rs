//! Tool calls through the gate: [`VeyraCore::invoke_tool`].
//!
//! A call names a registered tool and gives JSON arguments. The arguments are checked against
//! the tool's schema (a misfit is a usage error naming the field, before anything is decided),
//! then the call passes the gate: policy `invoke_tool` on `tool:<name>` (and `read_file` or
//! `write_file` on `file:<path>` for each file it touches), the safety boundary as operation
//! `tool:<name>` (also checked as `tool`, so `prohibited_operations: [tool]` stops them all),
//! and a confirmation when the boundary or the tool itself asks. Then the tool runs and one
//! `TOOL_INVOCATION` entry records it: arguments as a hash and length only, the outcome, and
//! metadata (tool, category, reversible, duration, error kind, the output's one-line summary,
//! and for a journaled file tool the `undo` hashes: see [`super::undo`]), and
//! [`Event::ToolInvoked`] is published.

use std::time::Instant;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::gate::Passage;
use super::{CoreInner, VeyraCore, task_error};
use crate::error::VeyraError;
use crate::events::{Event, EventSink, ExecutionId};
use crate::governance::policy::{ContextValue, PolicyRequest, Resource, ResourceKind};
use crate::governance::{AuditEventType, AuditRecord, summarize_input};
use crate::tools::{FileAccess, ToolError, ToolOutput, ToolRegistry, Violation};

/// Characters of a tool call's arguments shown with a confirmation or an agent step.
const ARGUMENT_CHARS: usize = 160;

/// A tool call's arguments as one sanitized, shortened line of JSON.
pub(crate) fn describe_arguments(args: &serde_json::Value) -> String {
    crate::sanitize::sanitize_line(&crate::sanitize::excerpt(&args.to_string(), ARGUMENT_CHARS))
        .into_owned()
}

/// A finished tool call.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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

    /// Every configured MCP server's state (`tools.mcp_servers`), in configuration order.
    pub fn mcp_servers(&self) -> Vec<crate::tools::mcp::McpServerStatus> {
        self.inner.mcp.statuses()
    }

    /// Waits until every configured MCP server has been tried once, each for at most its
    /// `timeout_ms` and a second: for commands that list or call tools at once.
    pub async fn mcp_ready(&self) {
        self.inner.mcp.ready().await;
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
        self.invoke_tool_as(ExecutionId::new(), name, args, actor)
            .await
    }

    /// [`VeyraCore::invoke_tool`] under an id the caller chose (new), so that it can follow the
    /// call's events — its confirmation request — from the start: what a client of a serving
    /// runtime needs to answer its own call's question and no other.
    pub async fn invoke_tool_as(
        &self,
        id: ExecutionId,
        name: &str,
        args: serde_json::Value,
        actor: &str,
    ) -> Result<ToolInvocation, VeyraError> {
        self.inner.invoke_tool(id, name, args, actor, None).await
    }
}

/// The agent step a tool call belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Within<'a> {
    /// The execution whose model asked.
    pub execution: ExecutionId,
    /// Its step number (1-based over the execution).
    pub step: u32,
    /// The execution's cancellation: cancelling it ends a wait for confirmation.
    pub cancel: &'a CancellationToken,
    /// Nobody attends the execution (a benchmark): a confirmation is denied, never asked.
    pub unattended: bool,
}

impl CoreInner {
    /// [`VeyraCore::invoke_tool`], also for the agent loop (`within` a step of an execution).
    pub(crate) async fn invoke_tool(
        &self,
        id: ExecutionId,
        name: &str,
        args: serde_json::Value,
        actor: &str,
        within: Option<Within<'_>>,
    ) -> Result<ToolInvocation, VeyraError> {
        let core = self;
        let usage = |e: ToolError| VeyraError::Usage(e.to_string());
        // A call at once after start finds an MCP server's tools listed, or its reason.
        core.mcp.ready_for(name).await;
        let tool = core.tools.get(name).map_err(usage)?;
        core.tools.validate(name, &args).map_err(usage)?;
        let capability = tool.capability();
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
            let request = PolicyRequest::new(
                actor,
                access.action(),
                Resource {
                    kind: ResourceKind::File,
                    id: path,
                },
                preset,
            );
            policy.push(match access {
                FileAccess::Read => request,
                FileAccess::Write => {
                    request.with("reversible", ContextValue::Bool(capability.reversible))
                }
            });
        }
        let operation = format!("tool:{name}");
        // The boundary hears every name of the act, widest first: `tool`, and for an MCP
        // tool also `tool:mcp` and `tool:mcp:<server>`, so one entry can stop a whole server.
        let operations: Vec<&str> = std::iter::once("tool")
            .chain(
                operation
                    .match_indices(':')
                    .skip(1)
                    .map(|(at, _)| &operation[..at]),
            )
            .chain(std::iter::once(operation.as_str()))
            .collect();
        // An agent's call is decided, asked and recorded as part of its execution.
        let gate_id = within.map_or(id, |w| w.execution);
        core.admit(
            &Passage {
                policy,
                operations: &operations,
                reversible: capability.reversible,
                confirm: capability.confirmation,
                actor,
                id: gate_id,
                ask: true,
                detail: Some(describe_arguments(&args)),
                scopable: true,
                arguments: Some(&args),
                unattended: within.is_some_and(|w| w.unattended),
            },
            within.map_or(&CancellationToken::new(), |w| w.cancel),
        )
        .await
        .map_err(|e| task_error(&e.kind, &e.message))?;
        let started = Instant::now();
        let mut result = tool.invoke(&args).await;
        // What a file tool replaced goes to the undo journal, never into the output.
        let undo = result.as_mut().ok().and_then(|out| out.undo.take());
        let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (outcome, error_kind, summary) = match &result {
            Ok(out) => ("success", None, out.summary.clone()),
            Err(e @ ToolError::Refused { .. }) => ("refused", Some(e.kind()), e.to_string()),
            Err(e) => ("failure", Some(e.kind()), e.to_string()),
        };
        let entry = core
            .record_tool_call(
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
                        "parent_execution": within.map(|w| w.execution.to_string()),
                        "step": within.map(|w| w.step),
                    }),
                },
                undo,
                id,
            )
            .await
            .map_err(|e| task_error(&e.kind, &e.message))?;
        core.emitter.emit(Event::ToolInvoked {
            id,
            tool: name.to_string(),
            outcome: outcome.to_string(),
            summary: crate::sanitize::excerpt(&summary, crate::sanitize::EXCERPT_CHARS)
                .into_owned(),
            at: chrono::Utc::now(),
        });
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
                core.record_violation(&v, Some(gate_id))
                    .await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ConfirmationPolicy;
    use crate::core::testing::core_with;
    use crate::governance::AuditFilter;

    fn types(core: &VeyraCore) -> Vec<&'static str> {
        let entries = core
            .audit()
            .unwrap()
            .query(&AuditFilter::default())
            .unwrap();
        entries.iter().map(|e| e.event_type.name()).collect()
    }

    /// An embedder's tool: irreversible, so the boundary treats it as such.
    struct Vent;

    #[async_trait::async_trait]
    impl crate::tools::Tool for Vent {
        fn capability(&self) -> crate::tools::Capability {
            crate::tools::Capability {
                name: "vent_airlock".into(),
                description: "Vents the airlock.".into(),
                category: crate::tools::ToolCategory::System,
                reversible: false,
                confirmation: false,
                schema: serde_json::json!({"type": "object", "additionalProperties": false}),
            }
        }
        async fn invoke(
            &self,
            _: &serde_json::Value,
        ) -> Result<ToolOutput, crate::tools::ToolError> {
            Ok(ToolOutput::new(
                serde_json::json!({"vented": true}),
                "vented",
            ))
        }
    }

    fn built(f: impl FnOnce(&mut crate::config::VeyraConfig)) -> Result<VeyraCore, VeyraError> {
        let mut config = crate::config::VeyraConfig::default();
        config.governance.store = crate::config::AuditStoreKind::Memory;
        config.latency.simulate = false;
        f(&mut config);
        VeyraCore::builder(config)
            .tool(std::sync::Arc::new(Vent))
            .build()
    }

    #[tokio::test]
    async fn an_embedders_tool_passes_the_same_gate_as_the_built_in_ones() {
        // Allowed: decided, run, recorded.
        let core = built(|_| {}).unwrap();
        let done = core
            .invoke_tool("vent_airlock", serde_json::json!({}), "operator")
            .await
            .unwrap();
        assert_eq!(done.output.value["vented"], true);
        assert_eq!(types(&core), ["POLICY_CHECK", "TOOL_INVOCATION"]);
        // Irreversible: refused while only reversible work may run.
        let strict = built(|c| c.governance.reversible_only = true).unwrap();
        let refused = strict
            .invoke_tool("vent_airlock", serde_json::json!({}), "operator")
            .await
            .unwrap_err();
        assert_eq!(
            refused.exit_code(),
            crate::error::ExitCode::Refused,
            "{refused}"
        );
        // A name already taken is refused when the core is built.
        let mut config = crate::config::VeyraConfig::default();
        config.governance.store = crate::config::AuditStoreKind::Memory;
        let twice = VeyraCore::builder(config)
            .tool(std::sync::Arc::new(Vent))
            .tool(std::sync::Arc::new(Vent))
            .build()
            .unwrap_err();
        assert!(twice.to_string().contains("already registered"), "{twice}");
    }

    #[tokio::test]
    async fn a_tool_call_is_decided_run_audited_and_published() {
        let (core, _ws) = core_with(|_| {});
        let mut rx = core.subscribe();
        let done = core
            .invoke_tool(
                "calculator",
                serde_json::json!({ "expression": "6*7" }),
                "operator",
            )
            .await
            .unwrap();
        assert_eq!(done.output.value["value"], 42.0);
        assert_eq!(types(&core), ["POLICY_CHECK", "TOOL_INVOCATION"]);
        let mut tool_events = 0;
        while let Ok(e) = rx.try_recv() {
            if let Event::ToolInvoked { tool, outcome, .. } = e {
                assert_eq!((tool.as_str(), outcome.as_str()), ("calculator", "success"));
                tool_events += 1;
            }
        }
        assert_eq!(tool_events, 1);
        assert!(core.verify_audit().unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_tool_that_asks_waits_for_the_operator_and_a_no_refuses_it() {
        let (core, ws) = core_with(|_| {});
        std::fs::write(ws.path().join("f.txt"), "x").unwrap();
        core.set_confirmation_policy(ConfirmationPolicy::Ask);
        let mut rx = core.subscribe();
        let answerer = core.clone();
        let answering = tokio::spawn(async move {
            while let Ok(e) = rx.recv().await {
                if let Event::ConfirmationRequested {
                    request, reason, ..
                } = e
                {
                    assert!(reason.contains("always asks"), "{reason}");
                    answerer
                        .answer_confirmation(request, false, "operator")
                        .unwrap();
                    return;
                }
            }
        });
        let err = core
            .invoke_tool(
                "file_delete",
                serde_json::json!({ "path": "f.txt" }),
                "operator",
            )
            .await
            .unwrap_err();
        answering.await.unwrap();
        assert!(matches!(err, VeyraError::Refused(_)), "{err:?}");
        assert!(ws.path().join("f.txt").exists());
        assert_eq!(
            types(&core),
            [
                "POLICY_CHECK",
                "POLICY_CHECK",
                "SAFETY_CHECK",
                "SAFETY_VIOLATION"
            ]
        );
    }

    #[tokio::test]
    async fn the_agent_may_write_files_only_where_the_journal_can_undo_it() {
        let (core, ws) = core_with(|c| c.governance.audit = false);
        let err = core
            .invoke_tool(
                "file_write",
                serde_json::json!({ "path": "a.txt", "content": "x" }),
                "agent",
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, VeyraError::Refused(m) if m.contains("no policy permits agent")),
            "{err:?}"
        );
        assert!(!ws.path().join("a.txt").exists());
        let (core, ws) = core_with(|_| {});
        core.invoke_tool(
            "file_write",
            serde_json::json!({ "path": "a.txt", "content": "x" }),
            "agent",
        )
        .await
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(ws.path().join("a.txt")).unwrap(),
            "x"
        );
    }
}
