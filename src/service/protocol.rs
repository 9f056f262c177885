//! `veyra.rpc/1`: the messages a serving runtime and its clients exchange, one JSON object per
//! line (newline-delimited JSON, each object tagged by `type`).
//!
//! Why not JSON-RPC 2.0: most of what crosses the wire is the runtime pushing events, and an
//! event here is exactly the line `veyra run --json` prints, wrapped once (`{"type":"event",
//! "event":{…}}`), so `socat - UNIX-CONNECT:… | jq` reads it like any other Veyra output.
//! JSON-RPC would turn every event into a notification with a method name and params, add a
//! version field to every token of a stream, and bring batches and positional params nobody
//! here needs. What JSON-RPC gives that matters — request ids, typed errors — is kept.
//!
//! A session: the client sends [`ClientMessage::Hello`] (a relay such as `veyra attach
//! --stdio` first sends [`ClientMessage::Relay`]); the runtime answers
//! [`ServerMessage::Welcome`] or [`ServerMessage::Refused`] (another protocol version, another
//! user, too many clients) and closes. A client that asked for events then gets
//! [`ServerMessage::Resync`], the events that rebuild the view (a snapshot), [`ServerMessage::Live`],
//! and every event after it; a client that falls behind gets another `resync` (saying how many
//! it missed) instead of a backlog. Requests carry an id the runtime's
//! [`ServerMessage::Response`] repeats. `veyra rpc schema` prints the JSON Schema of both
//! directions ([`schema`]).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bench::{Began, BenchNews, BenchPlan};
use crate::benchmarks::request::BenchRequest;
use crate::core::{Approval, ArgumentPattern, Caller};
use crate::events::{ConfirmScope, Event, ExecutionId, LinkStatus, Priority};

/// The protocol's name and version. A runtime refuses a client that speaks another.
pub const PROTOCOL: &str = "veyra.rpc/1";

/// Longest line a runtime reads from a client (a prompt is the large part): 8 MiB. A longer
/// one closes the connection, saying why.
pub const MAX_CLIENT_LINE: usize = 8 << 20;

/// Longest line a client reads from a runtime: a snapshot is sent event by event, so no line is
/// much longer than one event; a task's kept output is at most [`super::journal::MAX_OUTPUT`].
pub const MAX_SERVER_LINE: usize = 16 << 20;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The first line of a session (after a relay's).
    Hello {
        /// Must be [`PROTOCOL`].
        protocol: String,
        /// What the client is (`console`, `veyra run`, …), for the runtime's log.
        client: String,
        /// True to receive the snapshot and every event; false for a client that follows only
        /// what it submits (`veyra run`).
        events: bool,
    },
    /// Sent first by a relay (`veyra attach --stdio`) that carries another client's bytes: how
    /// that client reached the relay. The runtime records it with the relay's own credentials.
    Relay {
        /// `stdio`, or `ssh` when the relay runs under an SSH session.
        via: String,
        /// The far end, as the relay knows it (`SSH_CONNECTION`'s client address and port).
        #[serde(default)]
        peer: Option<String>,
    },
    /// A command for the runtime.
    Request {
        /// Chosen by the client; repeated in the response.
        id: u64,
        /// What to do.
        command: Request,
    },
}

/// A command. Each is decided by the runtime's own gate, as if typed on its console, and the
/// audit entries it records name the client that asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Submit a prompt.
    Submit {
        /// The prompt.
        prompt: String,
        /// Scheduling priority.
        #[serde(default)]
        priority: Priority,
        /// System prompt.
        #[serde(default)]
        system: Option<String>,
        /// Backend for this prompt only.
        #[serde(default)]
        backend: Option<String>,
        /// Model for this prompt only.
        #[serde(default)]
        model: Option<String>,
        /// Tools offered: `all`, `none` or names separated by commas (default `tools.offer`).
        #[serde(default)]
        tools: Option<String>,
        /// Stream this execution's every event to this client, losslessly, and cancel it if
        /// the client goes away before it ends (`veyra run`). Only on a session without
        /// events.
        #[serde(default)]
        follow: bool,
    },
    /// Cancel a task.
    Cancel {
        /// The task.
        id: ExecutionId,
    },
    /// Switch the link preset (`earth`, `lunar`, `mars`, `deep-space`, `custom`).
    SetPreset {
        /// The preset.
        preset: String,
    },
    /// Switch the link simulation on or off.
    SetSimulated {
        /// On or off.
        on: bool,
    },
    /// Switch the backend (and model) for prompts sent from now on.
    SetBackend {
        /// The backend.
        backend: String,
        /// The model (default: the backend's configured one).
        #[serde(default)]
        model: Option<String>,
    },
    /// Answer a confirmation; the first answer wins.
    Answer {
        /// The request's number.
        request: u64,
        /// Yes or no.
        allowed: bool,
        /// How far a yes reaches.
        #[serde(default)]
        scope: ConfirmScope,
    },
    /// Verify the audit chain in full.
    VerifyAudit,
    /// Undo a file tool call, by its `TOOL_INVOCATION` entry. On a session without events,
    /// the undo's own confirmation request comes to this client as an event, to answer.
    Undo {
        /// The entry's sequence number (default: the newest call not yet undone).
        #[serde(default)]
        seq: Option<u64>,
    },
    /// Invoke a tool as the operator, through the gate. On a session without events, the
    /// call's own confirmation request comes to this client as an event, to answer.
    InvokeTool {
        /// The tool.
        name: String,
        /// Its arguments (a JSON object, checked against the tool's schema).
        args: serde_json::Value,
    },
    /// An audit entry in full, with its inclusion proof, as lines.
    AuditEntry {
        /// The entry's sequence number.
        seq: u64,
    },
    /// The text of the rule behind a violation (`policy:<ids>` or a boundary rule), as lines.
    ExplainRule {
        /// The violation's rule.
        rule: String,
    },
    /// What the runtime is: [`Reply::Status`].
    Status,
    /// Work out what a benchmark run would cost ([`Reply::BenchPlan`]); a run started next
    /// with the same request runs the tasks generated for it.
    BenchPlan {
        /// The run (unset fields take the runtime's `bench:` configuration).
        request: BenchRequest,
    },
    /// Start the runtime's benchmark run (one at a time), or finish a stored one. Its news
    /// reaches every client with events ([`ServerMessage::Bench`]).
    BenchStart {
        /// The run (unset fields take the runtime's `bench:` configuration).
        #[serde(default)]
        request: BenchRequest,
        /// Finish this stored run instead (its id or a unique prefix).
        #[serde(default)]
        resume: Option<String>,
        /// Send this client the run's news, losslessly, and cancel the run if the client goes
        /// away before it ends (`veyra bench`). Only on a session without events.
        #[serde(default)]
        follow: bool,
    },
    /// Start a run of an eval suite on the runtime (one run at a time, families' or a
    /// suite's), or finish a stored run of it; kept in the runtime's `bench.db`. Its news
    /// reaches every client with events ([`ServerMessage::Bench`]).
    BenchSuite {
        /// The suite, as the client read it: the runtime reads no file a client names.
        suite: SuiteUpload,
        /// Finish this stored run of the suite instead (its id, a unique prefix, or `last`);
        /// the same file's bytes, read with the same map.
        #[serde(default)]
        resume: Option<String>,
        /// Send this client the run's news, losslessly, and cancel the run if the client goes
        /// away before it ends (`veyra bench --suite`). Only on a session without events.
        #[serde(default)]
        follow: bool,
    },
    /// Cancel the runtime's benchmark run; what finished is kept.
    BenchCancel {
        /// Only this run (its `began.number`), so a cancel meant for a run that ended never
        /// stops the next; absent: whichever run is going.
        #[serde(default)]
        run: Option<u64>,
    },
    /// Load the runtime's policy set again from its files and put it in force
    /// ([`Reply::PolicyReloaded`]); a set that does not load changes nothing.
    ReloadPolicy,
    /// The standing approvals ([`Reply::Approvals`]).
    Approvals,
    /// Allow calls of a tool without asking until revoked or this client leaves
    /// ([`Reply::Approval`]); audited.
    Approve {
        /// The tool, by its registered name.
        tool: String,
        /// Only calls whose argument matches this pattern.
        #[serde(default)]
        argument: Option<ArgumentPattern>,
    },
    /// The runtime's tools, its MCP servers' included ([`Reply::Tools`]).
    Tools,
    /// Take back a standing approval ([`Reply::Approval`]: the one taken back); audited.
    RevokeApproval {
        /// Its number.
        id: u64,
    },
}

/// An eval suite's file as a client read it, for the runtime to check, compile and run
/// (`veyra bench --suite FILE` with a runtime serving the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteUpload {
    /// The file's name as the client gave it: its extension says the format (`.yaml`,
    /// `.yml`, `.jsonl`, `.ndjson`), and it names the suite in errors and in the stored run.
    pub source: String,
    /// The file's whole text.
    pub text: String,
    /// A JSONL dataset's field renames, as `--map` takes them (`input=question,…`).
    #[serde(default)]
    pub map: Option<String>,
    /// Run only the first N samples (a new run).
    #[serde(default)]
    pub count: Option<u32>,
}

/// What a request did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "reply", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// The request was carried out; nothing more to say.
    Done,
    /// A prompt was accepted.
    Submitted {
        /// Its execution.
        id: ExecutionId,
    },
    /// The link as it is now.
    Link {
        /// The link.
        link: LinkStatus,
    },
    /// The audit chain was verified (also published as an event).
    Verified {
        /// Entries checked.
        entries: u64,
        /// `None` when intact, else the first bad entry and why.
        failure: Option<String>,
    },
    /// An undo restored a file.
    Undone {
        /// The entry undone.
        undone: u64,
        /// The file.
        path: String,
        /// The whole outcome, as `veyra tools undo --json` prints it.
        outcome: serde_json::Value,
    },
    /// A tool call finished: the invocation, as `veyra tools invoke --json` prints it.
    Tool {
        /// The invocation.
        invocation: serde_json::Value,
    },
    /// Something to show in full.
    Detail {
        /// What it is.
        title: String,
        /// Its lines (sanitized by the runtime; a client sanitizes again before a terminal).
        lines: Vec<String>,
    },
    /// What the runtime is.
    Status {
        /// The runtime.
        runtime: RuntimeInfo,
    },
    /// What a benchmark run would cost.
    BenchPlan {
        /// The plan.
        plan: BenchPlan,
    },
    /// The policy set was reloaded (and recorded as a `CONFIG_CHANGE`).
    PolicyReloaded {
        /// The hash of the set that was in force.
        from: String,
        /// The hash of the set in force now.
        to: String,
    },
    /// A benchmark run began.
    BenchStarted {
        /// What it runs, and who asked.
        began: Began,
    },
    /// The runtime's tools, by name.
    Tools {
        /// Each one's capability.
        tools: Vec<crate::tools::ToolInfo>,
    },
    /// The standing approvals, oldest first.
    Approvals {
        /// Them.
        approvals: Vec<Approval>,
    },
    /// An approval granted or taken back.
    Approval {
        /// It.
        approval: Approval,
    },
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RpcError {
    /// A short machine-readable kind: `usage`, `refused`, `not_found`, `bad_request`,
    /// `runtime`, `busy`.
    pub kind: String,
    /// What went wrong and what to do, for a person.
    pub message: String,
}

/// What a runtime sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    /// The handshake succeeded.
    Welcome {
        /// [`PROTOCOL`].
        protocol: String,
        /// The runtime.
        runtime: RuntimeInfo,
        /// The client, as the runtime sees it (and records it in audit entries).
        you: Caller,
    },
    /// The handshake failed; the runtime closes the connection.
    Refused {
        /// Why, and what to do.
        reason: String,
    },
    /// The answer to a request: `ok` or `error`.
    Response {
        /// The request's id.
        id: u64,
        /// What it did, when it succeeded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ok: Option<Reply>,
        /// Why it failed, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<RpcError>,
    },
    /// Forget what was folded: the events that rebuild the view follow, then [`ServerMessage::Live`].
    Resync {
        /// `attached` for the first, `lagged` when the client fell behind.
        reason: String,
        /// Events the client missed by falling behind (0 for the first).
        missed: u64,
    },
    /// One event, exactly as `veyra run --json` prints it.
    Event {
        /// The event.
        event: Event,
    },
    /// News of the runtime's benchmark run (in a snapshot: the run going or the last one).
    Bench {
        /// The news.
        news: BenchNews,
    },
    /// The snapshot is complete; what follows is live.
    Live,
    /// The workers of the fleet a client attached to (`veyra attach nats://…`), sent when
    /// they change: each with its link, for the status bar. A single runtime never sends it.
    Fleet {
        /// The live workers, by name.
        workers: Vec<FleetWorker>,
    },
    /// The runtime closes this connection (or is going away), and why.
    Closing {
        /// Why.
        reason: String,
    },
}

/// What a runtime is, for a client's status bar and `veyra attach`'s first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeInfo {
    /// The hosting process.
    pub pid: u32,
    /// Its Veyra version.
    pub version: String,
    /// `serve`, or `console` when a console hosts it.
    pub host: String,
    /// The audit store it writes.
    pub store: String,
    /// Backend for prompts that name none.
    pub backend: String,
    /// Model for prompts that name none.
    pub model: String,
    /// The link.
    pub link: LinkStatus,
    /// The audit trail, when audit is on.
    pub audit: Option<AuditInfo>,
    /// Clients attached now.
    pub clients: usize,
    /// Its MCP servers' states (`tools.mcp_servers`), what `veyra health` reports of them.
    #[serde(default)]
    pub mcp: Vec<crate::tools::mcp::McpServerStatus>,
}

/// A fleet worker as it says it is (every few seconds, in the fleet's `WORKERS` bucket): what a
/// console over the fleet counts and shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetWorker {
    /// Its name (`veyra worker --name`, default `host/pid`).
    pub name: String,
    /// The host it runs on.
    pub host: String,
    /// Its process.
    pub pid: u32,
    /// Its Veyra version.
    pub version: String,
    /// Backend for tasks that name none.
    pub backend: String,
    /// Model for tasks that name none.
    pub model: String,
    /// Its link.
    pub link: LinkStatus,
    /// Tasks it holds now.
    pub running: usize,
    /// Benchmark items it solves at once (half its core's queue): what a fanned-out run
    /// keeps in flight for it (0: it does not say).
    #[serde(default)]
    pub room: usize,
    /// When it said so.
    pub at: DateTime<Utc>,
}

/// The audit trail's state, as a console restores it on attaching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditInfo {
    /// Entries in the chain.
    pub entries: u64,
    /// The chain's head hash (hex).
    pub head: String,
    /// True for a durable (SQLite) store.
    pub durable: bool,
    /// The latest signed checkpoint: entries covered and when.
    pub checkpoint: Option<(u64, DateTime<Utc>)>,
}

/// The JSON Schema of both directions: `{"protocol", "client": …, "server": …}`.
pub fn schema() -> serde_json::Value {
    serde_json::json!({
        "protocol": PROTOCOL,
        "framing": "one JSON object per line (UTF-8, \\n); the runtime reads lines up to 8 MiB",
        "client": schemars::schema_for!(ClientMessage),
        "server": schemars::schema_for!(ServerMessage),
    })
}

/// One message as a wire line (without the newline). Events hold no value serde can refuse.
pub fn line<T: Serialize>(message: &T) -> String {
    crate::sanitize::to_json_line(message).unwrap_or_else(|e| {
        // Unreachable for these types (string keys, no non-finite floats the sanitizer keeps);
        // said rather than panicked.
        format!(
            "{{\"type\":\"closing\",\"reason\":\"the runtime could not encode a message: {}\"}}",
            e.to_string().replace(['"', '\\'], "'")
        )
    })
}

#[cfg(test)]
mod tests;
