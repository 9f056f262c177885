//! The event bus: every state change the core makes is published here once, as an [`Event`].
//!
//! The console, `veyra run --json` and any later remote console are subscribers that fold events
//! into their own view; nobody reads the core's state to draw a screen. `Event` is a tagged serde
//! enum, and one JSON line per event is the wire and log format.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Identifies one execution from submission to its final event. Also the correlation id that
/// every log line of the execution carries.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct ExecutionId(pub Uuid);

impl ExecutionId {
    /// A fresh random id.
    pub fn new() -> Self {
        ExecutionId(Uuid::new_v4())
    }

    /// The first 8 hex digits, for narrow columns.
    pub fn short(&self) -> String {
        let mut s = self.0.simple().to_string();
        s.truncate(8);
        s
    }
}

impl Default for ExecutionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Task priority, highest first (DESIGN §3).
///
/// Parsing (`"high".parse()`) is case-insensitive; the error lists the valid names.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Default,
    strum::EnumString,
    strum::IntoStaticStr,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[strum(
    serialize_all = "lowercase",
    ascii_case_insensitive,
    parse_err_ty = String,
    parse_err_fn = not_a_priority
)]
pub enum Priority {
    /// Must run before anything else.
    Critical,
    /// Ahead of normal work.
    High,
    /// The default.
    #[default]
    Normal,
    /// After normal work.
    Low,
    /// Only when nothing else waits.
    Background,
}

impl Priority {
    /// All priorities, highest first.
    pub const ALL: [Priority; 5] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
        Priority::Background,
    ];

    /// The lowercase name used on the command line and in the console.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The next priority in the console's `Ctrl-P` cycle: up first (from the default
    /// `normal`, one press is `high`, two `critical`), then round from the bottom.
    pub fn cycle(self) -> Priority {
        match self {
            Priority::Normal => Priority::High,
            Priority::High => Priority::Critical,
            Priority::Critical => Priority::Background,
            Priority::Background => Priority::Low,
            Priority::Low => Priority::Normal,
        }
    }
}

/// The error of parsing a [`Priority`]: what was given and the valid names.
fn not_a_priority(text: &str) -> String {
    format!(
        "'{}' is not a priority; use one of {}",
        crate::sanitize::quote(text),
        Priority::ALL.map(Priority::name).join(", ")
    )
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Token counts of one generation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input: u64,
    /// Generated tokens.
    pub output: u64,
}

/// Why a generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished its answer.
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// The model asked for tools.
    ToolCalls,
    /// The agent loop stopped the model after `tools.max_steps` tool calls.
    MaxSteps,
    /// The agent loop stopped the model when the task's tokens (input and output over all
    /// steps) reached `runtime.max_tokens_per_task`.
    TokenBudget,
    /// The provider filtered the content.
    ContentFilter,
    /// Any other reason the provider gave.
    Other(String),
}

/// Where a task is in its life. One [`Event::TaskState`] is published per transition:
/// `Queued → Uplink → Running → Downlink → Succeeded | Failed | Cancelled`, with `Retrying`
/// (waiting out a backoff) and `Blackout` (waiting for the link to clear) on the way. Transit
/// states appear only when the link is simulated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for a free slot.
    Queued,
    /// Travelling to the remote side.
    Uplink {
        /// One-way delay in simulated time, ms.
        sim_ms: u64,
        /// The same wait in real time, ms (`sim_ms / time_scale`).
        real_ms: u64,
    },
    /// Being worked on.
    Running,
    /// The answer is travelling back.
    Downlink {
        /// One-way delay in simulated time, ms.
        sim_ms: u64,
        /// The same wait in real time, ms.
        real_ms: u64,
    },
    /// Waiting before the next attempt.
    Retrying {
        /// Real time until the next attempt, ms.
        delay_ms: u64,
        /// Why the last attempt failed.
        error: String,
    },
    /// The link is in solar conjunction; waiting for it to clear.
    Blackout {
        /// Simulated time until the link clears, ms.
        sim_ms: u64,
        /// The same wait in real time, ms.
        real_ms: u64,
    },
    /// Finished successfully.
    Succeeded,
    /// Finished with an error (after any retries).
    Failed {
        /// The error, as a sentence for the operator.
        error: String,
        /// Machine-readable kind (`rate_limit`, `timeout`, …).
        kind: String,
        /// Set when the error alone would have been retried but the attempt was final: why
        /// (`tools_acted`, `streamed`; the rule is in `error` too).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_retried: Option<String>,
    },
    /// Cancelled by the operator or at shutdown.
    Cancelled {
        /// Who or what cancelled it.
        reason: String,
    },
}

impl TaskStatus {
    /// True for `Succeeded`, `Failed` and `Cancelled`.
    pub fn is_final(&self) -> bool {
        match self {
            TaskStatus::Succeeded | TaskStatus::Failed { .. } | TaskStatus::Cancelled { .. } => {
                true
            }
            TaskStatus::Queued
            | TaskStatus::Uplink { .. }
            | TaskStatus::Running
            | TaskStatus::Downlink { .. }
            | TaskStatus::Retrying { .. }
            | TaskStatus::Blackout { .. } => false,
        }
    }

    /// The state's name (`queued`, `uplink`, …).
    pub fn name(&self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Uplink { .. } => "uplink",
            TaskStatus::Running => "running",
            TaskStatus::Downlink { .. } => "downlink",
            TaskStatus::Retrying { .. } => "retrying",
            TaskStatus::Blackout { .. } => "blackout",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed { .. } => "failed",
            TaskStatus::Cancelled { .. } => "cancelled",
        }
    }
}

/// The simulated link as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LinkStatus {
    /// Whether the link is simulated at all.
    pub simulated: bool,
    /// Preset name.
    pub preset: String,
    /// Mode name.
    pub mode: String,
    /// Current one-way delay in simulated time, ms: the light time for the date in
    /// `ephemeris`, the value used in `fixed`, the middle of the range in `uniform`.
    pub one_way_ms: u64,
    /// Shortest one-way delay of the preset's range, simulated ms (what `uniform` draws from).
    #[serde(default)]
    pub one_way_min_ms: u64,
    /// Longest one-way delay of the preset's range, simulated ms.
    #[serde(default)]
    pub one_way_max_ms: u64,
    /// Sun–Earth–planet angle, degrees, where the preset has one (Mars only).
    #[serde(default)]
    pub sun_deg: Option<f64>,
    /// `clear`, `reduced` or `blackout`.
    pub conjunction: String,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// The simulated clock when this status was taken.
    pub sim_time: DateTime<Utc>,
    /// The real clock when this status was taken; with `time_scale` it gives simulated now.
    pub taken_at: DateTime<Utc>,
    /// In a blackout, when the link reopens (simulated time).
    #[serde(default)]
    pub blackout_ends: Option<DateTime<Utc>>,
}

impl LinkStatus {
    /// Simulated time at real time `now`, extrapolated from this status.
    /// A status from another process (an attached runtime, a fleet worker) may carry any
    /// date and scale: the result saturates at chrono's range rather than overflow.
    pub fn sim_time_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let real_ms = now.signed_duration_since(self.taken_at).num_milliseconds() as f64;
        let scale = if self.time_scale.is_finite() {
            self.time_scale
        } else {
            1.0
        };
        let sim_ms = (real_ms * scale).clamp(-1e15, 1e15) as i64;
        let step = chrono::TimeDelta::milliseconds(sim_ms);
        self.sim_time
            .checked_add_signed(step)
            .unwrap_or(if sim_ms < 0 {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            })
    }

    /// The far end of the link in words: `Mars`, `the Moon`, `deep space`, `the backend`.
    pub fn far_end(&self) -> &'static str {
        match self.preset.as_str() {
            "mars" => "Mars",
            "lunar" => "the Moon",
            "deep-space" => "deep space",
            _ => "the backend",
        }
    }

    /// Real time from `now` until simulated time reaches `sim` (zero once it has): what the
    /// operator waits for a simulated moment, such as the end of a blackout.
    pub fn real_until(&self, sim: DateTime<Utc>, now: DateTime<Utc>) -> std::time::Duration {
        let sim_left = (sim - self.sim_time_at(now)).num_milliseconds().max(0) as f64;
        std::time::Duration::from_millis((sim_left / self.time_scale).min(1e15) as u64)
    }
}

/// One state change of the core. Every variant is published exactly once per change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A task was accepted by the scheduler (it is `Queued`).
    TaskSubmitted {
        /// The task.
        id: ExecutionId,
        /// Handler kind (`execute` for prompts).
        kind: String,
        /// A one-line preview of the prompt (at most 80 characters) for task lists.
        title: String,
        /// Its priority.
        priority: Priority,
        /// Backend that will answer, for prompts.
        backend: Option<String>,
        /// Model that will answer, for prompts.
        model: Option<String>,
        /// Who asked (`operator`, `benchmark`, …), as the audit trail names them; absent in
        /// events recorded before it was told.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
        /// When it was accepted.
        at: DateTime<Utc>,
    },
    /// A task changed state.
    TaskState {
        /// The task.
        id: ExecutionId,
        /// The new state.
        status: TaskStatus,
        /// Attempt number, from 1 (0 while it has not started).
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A piece of streamed answer text.
    OutputDelta {
        /// The execution.
        id: ExecutionId,
        /// The new text, to be appended.
        text: String,
    },
    /// The model finished an answer (the task may still have its downlink ahead).
    ExecutionFinished {
        /// The execution.
        id: ExecutionId,
        /// Token counts.
        usage: TokenUsage,
        /// Why generation stopped.
        finish_reason: FinishReason,
        /// Time from start to last token, ms.
        latency_ms: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// An entry was appended to the audit trail.
    AuditRecorded {
        /// Sequence number of the entry.
        seq: u64,
        /// Audit event type (`EXECUTION`, …).
        event_type: String,
        /// Who acted.
        actor: String,
        /// What was done.
        action: String,
        /// Outcome.
        outcome: String,
        /// The entry's hash (hex), the new chain head.
        hash: String,
        /// The execution it belongs to, if any.
        execution: Option<ExecutionId>,
    },
    /// The audit chain was verified.
    AuditVerified {
        /// Entries checked.
        entries: u64,
        /// `None` when the chain is intact; else the first bad entry and why.
        failure: Option<String>,
        /// How long verification took, ms.
        duration_ms: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// The durable audit store signed a checkpoint.
    AuditCheckpoint {
        /// Entries it covers.
        tree_size: u64,
        /// Their RFC 6962 tree head (hex).
        root: String,
        /// When it was signed.
        at: DateTime<Utc>,
    },
    /// The safety boundary or the policy refused an operation (or the operator denied a
    /// confirmation).
    SafetyViolation {
        /// The task it belongs to, if any.
        id: Option<ExecutionId>,
        /// The operation.
        operation: String,
        /// `blocked` or `needs_confirmation`.
        level: String,
        /// The rule that refused it (`prohibited_operations`, …, or `policy:<ids>`).
        rule: String,
        /// Why, for the operator.
        reason: String,
        /// Who asked for the operation.
        actor: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// An operation waits for the operator's yes or no.
    ConfirmationRequested {
        /// Number of this request, to answer it by.
        request: u64,
        /// The task waiting.
        id: ExecutionId,
        /// The operation.
        operation: String,
        /// Why confirmation is needed (names the rule that asks).
        reason: String,
        /// What exactly would happen, e.g. a tool's arguments (sanitized and shortened).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// True when the answer may cover the rest of the session
        /// ([`ConfirmScope::Session`]): tool calls only.
        #[serde(default)]
        scopable: bool,
    },
    /// A confirmation was answered.
    ConfirmationAnswered {
        /// The request.
        request: u64,
        /// The task.
        id: ExecutionId,
        /// Yes or no.
        allowed: bool,
        /// Who answered (`operator`, `--yes`, `no terminal`, …).
        by: String,
        /// How far a yes reaches.
        #[serde(default)]
        scope: ConfirmScope,
    },
    /// One step of an agent loop: a tool call the model asked for, and what became of it.
    /// Published for every call, including those that never reached a tool (malformed
    /// arguments, a tool not offered, a refusal at the gate).
    AgentStep {
        /// The execution whose model asked.
        id: ExecutionId,
        /// 1 for the first tool call of the execution, counting on over all turns.
        step: u32,
        /// The tool the model named (sanitized).
        tool: String,
        /// Its arguments as JSON text (sanitized and shortened).
        arguments: String,
        /// `success`, `refused`, `failure` or `rejected` (never reached a tool).
        outcome: String,
        /// The result's summary, or why it was refused or failed (untrusted; sanitize).
        summary: String,
        /// The `TOOL_INVOCATION` entry that records it, when audit is on.
        audit_seq: Option<u64>,
        /// When it finished.
        at: DateTime<Utc>,
    },
    /// A tool call passed the gate and ran; its `TOOL_INVOCATION` entry is already recorded.
    ToolInvoked {
        /// The call.
        id: ExecutionId,
        /// The tool.
        tool: String,
        /// `success`, `refused` (by the tool's own rule) or `failure`.
        outcome: String,
        /// One line: the result's summary or the error (untrusted; sanitize before showing).
        summary: String,
        /// When it finished.
        at: DateTime<Utc>,
    },
    /// The operator switched the backend (and model) for prompts sent from now on.
    BackendChanged {
        /// The backend now.
        backend: String,
        /// The model now.
        model: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The simulated link changed (preset switched, delay or conjunction state moved).
    LinkChanged {
        /// The link now.
        link: LinkStatus,
        /// True when the operator switched the preset; false when the link itself moved (its
        /// one-way delay by a whole second or more, or its conjunction state).
        #[serde(default)]
        switched: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// An MCP server (`tools.mcp_servers`) is starting, came up, went down or stopped.
    McpServer {
        /// Its name in Veyra (its tools are `mcp:<server>:<tool>`).
        server: String,
        /// `starting`, `up`, `down` or `stopped`.
        state: String,
        /// Tools it offers (those of its last listing while it is down).
        tools: u32,
        /// Times it was started again after going down.
        restarts: u32,
        /// Why it is down (sanitized, secrets scrubbed), or what its listing left out.
        detail: Option<String>,
        /// True when it went down again for the reason it went down last time (a server that
        /// stays broken, retried with backoff): not news.
        #[serde(default)]
        again: bool,
        /// When.
        at: DateTime<Utc>,
    },
}

impl Event {
    /// The task this event belongs to, if any.
    pub fn execution(&self) -> Option<ExecutionId> {
        match self {
            Event::TaskSubmitted { id, .. }
            | Event::TaskState { id, .. }
            | Event::OutputDelta { id, .. }
            | Event::ExecutionFinished { id, .. }
            | Event::ConfirmationRequested { id, .. }
            | Event::ConfirmationAnswered { id, .. }
            | Event::AgentStep { id, .. }
            | Event::ToolInvoked { id, .. } => Some(*id),
            Event::AuditRecorded { execution, .. } => *execution,
            Event::SafetyViolation { id, .. } => *id,
            Event::AuditVerified { .. }
            | Event::AuditCheckpoint { .. }
            | Event::BackendChanged { .. }
            | Event::LinkChanged { .. }
            | Event::McpServer { .. } => None,
        }
    }

    /// True for the last event a task publishes (its final state).
    pub fn is_terminal(&self) -> bool {
        match self {
            Event::TaskState { status, .. } => status.is_final(),
            Event::TaskSubmitted { .. }
            | Event::OutputDelta { .. }
            | Event::ExecutionFinished { .. }
            | Event::AuditRecorded { .. }
            | Event::AuditVerified { .. }
            | Event::AuditCheckpoint { .. }
            | Event::BackendChanged { .. }
            | Event::LinkChanged { .. }
            | Event::McpServer { .. }
            | Event::SafetyViolation { .. }
            | Event::ConfirmationRequested { .. }
            | Event::ConfirmationAnswered { .. }
            | Event::AgentStep { .. }
            | Event::ToolInvoked { .. } => false,
        }
    }
}

/// How far an operator's answer to a confirmation reaches.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ConfirmScope {
    /// This one request.
    #[default]
    Once,
    /// Every later call of the same tool until the core shuts down (the console closes).
    /// Only a yes to a tool call may have it.
    Session,
}

impl ConfirmScope {
    /// Snake-case name, as in audit metadata.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Where events go: the bus, and anything else that must see them in order.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Publishes one event.
    fn emit(&self, event: Event);
}

impl EventSink for EventBus {
    fn emit(&self, event: Event) {
        self.publish(event);
    }
}

/// Default number of events a slow subscriber may fall behind before it misses some.
pub const BUS_CAPACITY: usize = 8192;

/// The one bus every event goes through. Cloning shares the bus.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
}

impl EventBus {
    /// A bus that holds up to `capacity` undelivered events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        EventBus { sender }
    }

    /// Publishes an event to every current subscriber. With no subscribers it is dropped.
    pub fn publish(&self, event: Event) {
        // `send` fails only when nobody listens, which is not an error for a bus.
        let _ = self.sender.send(event);
    }

    /// A new subscriber that sees every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(BUS_CAPACITY)
    }
}

/// A one-line preview of a prompt for task lists: first line, at most `max` characters.
pub fn title_of(prompt: &str, max: usize) -> String {
    let line = prompt
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        crate::sanitize::excerpt(line, max.saturating_sub(1)).into_owned()
    }
}

#[cfg(test)]
mod tests;
