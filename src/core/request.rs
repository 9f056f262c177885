//! The values that cross the core's edge: an [`ExecutionRequest`] going in (with its
//! [`BeforeTools`] hook), the [`ExecutionResult`] coming out, the [`HealthReport`] of
//! [`VeyraCore::health_check`](super::VeyraCore::health_check), and how confirmations are
//! answered ([`ConfirmationPolicy`]). Plain data: nothing here runs a task.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ToolSelection;
use crate::events::{ExecutionId, FinishReason, Priority, TokenUsage};

/// What to execute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRequest {
    /// The prompt; must not be blank.
    pub prompt: String,
    /// Optional system prompt.
    pub system: Option<String>,
    /// Scheduling priority.
    pub priority: Priority,
    /// Backend for this execution only (default: the core's current backend).
    pub backend: Option<String>,
    /// Model for this execution only (default: `model.model`).
    pub model: Option<String>,
    /// Who asks (`operator`, `benchmark`, …), as recorded in the audit trail.
    pub actor: String,
    /// The tools the model is offered (default: `tools.offer`). Its calls run as actor
    /// `agent` through the gate.
    pub tools: Option<ToolSelection>,
    /// True when nobody attends the execution (a benchmark run): anything in it that needs a
    /// confirmation — the prompt itself or a tool call of its model — is denied at once,
    /// recorded as such, whatever the confirmation policy or earlier session-wide answers say.
    #[serde(default)]
    pub unattended: bool,
    /// Stays on this side of the simulated link (a benchmark item: it measures the model, not
    /// the link). Everything else crosses it while `latency.simulate` is on.
    #[serde(default)]
    pub local: bool,
    /// The client of a serving runtime that sent it, named in every audit entry the
    /// execution records (`metadata.client`); `None` for the process's own work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<super::Caller>,
    /// Work done once, off the async threads, before the first tool call of the execution
    /// runs (a benchmark makes a task's scratch directory here, so an answer without tool
    /// calls touches no disk). An error ends the attempt before the call runs. Not part of
    /// the request's data: never serialized.
    #[serde(skip)]
    pub before_tools: Option<BeforeTools>,
}

/// See [`ExecutionRequest::before_tools`]. Runs at most once per attempt; a retried attempt
/// calls it again, so it must be idempotent.
#[derive(Clone)]
pub struct BeforeTools(Arc<dyn Fn() -> Result<(), String> + Send + Sync>);

impl BeforeTools {
    /// Wraps `f`.
    pub fn new(f: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        BeforeTools(Arc::new(f))
    }

    /// `self`, then `next`: the second runs only when the first let the call go ahead.
    pub fn then(self, next: BeforeTools) -> BeforeTools {
        BeforeTools::new(move || {
            (self.0)()?;
            (next.0)()
        })
    }

    /// Runs it on the blocking pool.
    pub(crate) async fn run(&self) -> Result<(), String> {
        let f = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || f())
            .await
            .map_err(|e| e.to_string())?
    }
}

impl std::fmt::Debug for BeforeTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeforeTools(..)")
    }
}

/// Two hooks are equal when they are the same closure.
impl PartialEq for BeforeTools {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl ExecutionRequest {
    /// A normal-priority request from the operator.
    pub fn new(prompt: impl Into<String>) -> Self {
        ExecutionRequest {
            prompt: prompt.into(),
            system: None,
            priority: Priority::Normal,
            backend: None,
            model: None,
            actor: "operator".to_string(),
            tools: None,
            unattended: false,
            local: false,
            caller: None,
            before_tools: None,
        }
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the system prompt.
    pub fn system(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Sets the tools the model is offered.
    pub fn tools(mut self, tools: ToolSelection) -> Self {
        self.tools = Some(tools);
        self
    }

    /// Marks the execution unattended (see [`ExecutionRequest::unattended`]).
    pub fn unattended(mut self) -> Self {
        self.unattended = true;
        self
    }

    /// Sets the work done before the first tool call (see [`ExecutionRequest::before_tools`]).
    pub fn before_tools(mut self, hook: BeforeTools) -> Self {
        self.before_tools = Some(hook);
        self
    }
}

/// A finished execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionResult {
    /// The execution.
    pub id: ExecutionId,
    /// The whole answer.
    pub text: String,
    /// Backend that answered.
    pub backend: String,
    /// Model that answered.
    pub model: String,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Token counts, summed over every model call of the agent loop.
    pub usage: TokenUsage,
    /// Time from start to last token.
    pub latency: Duration,
    /// Sequence number of the `EXECUTION` audit entry, when audit is on.
    pub audit_seq: Option<u64>,
    /// Tool calls the model made (each one an [`Event::AgentStep`](crate::events::Event::AgentStep)).
    pub tool_steps: u32,
}

/// Health of the core's parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// Backend name.
    pub backend: String,
    /// `None` when the backend answered its health check, else why not.
    pub backend_error: Option<String>,
    /// Audit trail state: `None` when audit is off.
    pub audit: Option<AuditHealth>,
}

/// Audit part of [`HealthReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditHealth {
    /// Entries in the chain.
    pub entries: u64,
    /// `None` when the chain verifies, else the first bad entry.
    pub failure: Option<String>,
}

impl HealthReport {
    /// True when every part is healthy.
    pub fn is_healthy(&self) -> bool {
        self.backend_error.is_none() && self.audit.as_ref().is_none_or(|a| a.failure.is_none())
    }
}

/// Task error kind of an operation refused by the safety boundary or the operator.
pub const REFUSED: &str = "refused";

/// How confirmations are answered when the boundary asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmationPolicy {
    /// Publish [`Event::ConfirmationRequested`](crate::events::Event::ConfirmationRequested) and wait for
    /// [`VeyraCore::answer_confirmation`](super::VeyraCore::answer_confirmation) (the console, an interactive `veyra run`).
    Ask,
    /// Allow without asking (`veyra run --yes`).
    AllowAll,
    /// Deny without asking (no terminal to ask on).
    DenyAll,
}
