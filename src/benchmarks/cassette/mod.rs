//! Benchmark cassettes: `veyra bench --record DIR` keeps every model call of a run —
//! the request and the stream exactly as the backend delivered it, with its timing — and
//! `veyra bench --replay DIR` runs the benchmark again from them, offline and at no cost, so a
//! run on a paid model can be re-scored, debugged and shown again.
//!
//! How the parts fit: [`record::RecordingBackend`] wraps any backend and hands each finished
//! call to a [`record::CassetteWriter`]; [`replay::Cassette`] indexes a cassette directory and
//! [`replay::ReplayBackend`] (registered as `replay`) answers each request from it. A
//! [`Tripwire`] carries the first cassette failure (a request not recorded, a damaged file, a
//! write that failed) to the caller and stops the run through its cancellation token.
//!
//! # Format `veyra.cassette/1`
//! ```text
//! DIR/manifest.json                     format, Veyra version, time, backend, model, temperature,
//!                                       max_tokens and the run's plan (families, count,
//!                                       difficulty, seed, epochs)
//! DIR/calls/<seq>-<key>.json            one model call: seq, key, request, opened, events
//! ```
//! - `key` is the lowercase hex SHA-256 of the request's RFC 8785 (JCS) JSON: model, system,
//!   messages (tool calls and results included), tools, temperature and max_tokens
//!   ([`request_key`]). Calls with the same key (epochs, agent loops, dialogues that repeat a
//!   prompt) are replayed in the order they were made: `seq` counts calls from 1 as they start.
//! - `events` is the stream as received: `text`, `tool_call` (arguments as JSON, or the
//!   malformed text with the parser's complaint), `done` (finish reason and usage) or `error`
//!   (kind, message, request id, whether mid-stream), each with `at_ms`, its offset from the
//!   call's start on tokio's clock. `opened: false` means the backend failed before streaming
//!   (its one event is that error).
//! - A call is written when its stream ends (final chunk, error, or end without final chunk),
//!   to a hidden temporary file that is synced and then renamed, so a crash leaves only whole
//!   calls. A call whose stream was dropped unfinished (a cancelled task) is not kept.
//!
//! # Secrets
//! A [`ModelRequest`] has no credential in it (keys travel only in the HTTP backends' headers),
//! the HTTP backends already scrub the configured key from answer text, tool calls and errors,
//! and the recorder scrubs it once more from every string it writes (request included) and
//! from the joined text of consecutive `text` events (`scrub_text_events`: a key split
//! between two of them would otherwise be joined back on replay), so no cassette file holds
//! the key even when a server echoes it, whole or in pieces, through any backend.
//!
//! # Hostile cassettes
//! Reading is bounded: the manifest is at most [`MAX_MANIFEST_BYTES`], a call file at most
//! [`MAX_CALL_BYTES`], a cassette at most [`MAX_CALLS`] calls, an offset at most
//! [`MAX_OFFSET_MS`]. Symbolic links are refused, files are opened through a `cap-std`
//! directory handle (nothing outside DIR can be reached), and call files are read only when
//! their request comes. Every violation is an error naming the file and what to do.

pub mod record;
pub mod replay;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::framework::{Difficulty, FamilyId};
use super::runner::RunPlan;
use crate::config::bench::{RANGE_BENCH_COUNT, RANGE_BENCH_EPOCHS};
use crate::config::{ModelConfig, Secret, StreamRedactor};
use crate::error::VeyraError;
use crate::events::{FinishReason, TokenUsage};
use crate::models::{Message, ModelErrorKind, ModelRequest, ToolSpec};

pub use record::{CassetteWriter, RecordingBackend};
pub use replay::{Cassette, Pacing, ReplayBackend};

/// Format name and version of a cassette, in its manifest.
pub const FORMAT: &str = "veyra.cassette/1";
/// What every version of the format starts with.
const FORMAT_FAMILY: &str = "veyra.cassette/";
/// The manifest's file name in DIR.
pub const MANIFEST: &str = "manifest.json";
/// The folder of call files in DIR.
pub const CALLS: &str = "calls";
/// Largest manifest read.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
/// Largest call file read.
pub const MAX_CALL_BYTES: u64 = 16 * 1024 * 1024;
/// Most calls a cassette may hold.
pub const MAX_CALLS: usize = 1_000_000;
/// Largest offset of an event from its call's start: one day (`model.timeout`'s ceiling).
pub const MAX_OFFSET_MS: u64 = 86_400_000;
/// Name the replay backend registers under.
pub const REPLAY_BACKEND: &str = "replay";

/// A cassette failure: the cassette or its use is wrong (exit 2), or a file could not be
/// read or written (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    /// The cassette is missing, damaged, of another version, or does not fit the run.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What Veyra was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl CassetteError {
    fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CassetteError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<CassetteError> for VeyraError {
    fn from(e: CassetteError) -> Self {
        match e {
            CassetteError::Invalid(message) => VeyraError::Usage(message),
            CassetteError::Io { context, source } => VeyraError::Io { context, source },
        }
    }
}

/// `DIR/manifest.json`: what was recorded, and the plan a replay defaults to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The Veyra that recorded it.
    pub veyra_version: String,
    /// When recording started (UTC).
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The backend recorded (`mock`, `openai`, …).
    pub backend: String,
    /// The model recorded.
    pub model: String,
    /// `model.temperature` of the recording (part of every request).
    pub temperature: f64,
    /// `model.max_tokens` of the recording (part of every request).
    pub max_tokens: u32,
    /// The run's plan (for a suite's recording: the configuration's, unused).
    pub plan: PlanRecord,
    /// The eval suite recorded, when the run was a suite's (`veyra bench --suite`): its
    /// replay needs the same file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<SuiteRecord>,
}

/// The eval suite a cassette recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteRecord {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The SHA-256 of its file.
    pub digest: String,
}

impl Manifest {
    /// The manifest of a recording of `plan` with `model`.
    pub fn new(plan: &RunPlan, model: &ModelConfig) -> Self {
        Manifest {
            format: FORMAT.to_string(),
            veyra_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: chrono::Utc::now(),
            backend: model.backend.clone(),
            model: model.model.clone(),
            temperature: model.temperature,
            max_tokens: model.max_tokens,
            plan: PlanRecord::from_plan(plan),
            suite: None,
        }
    }

    /// The manifest of a recording of `suite`'s run with `model` (its plan is `plan`, unused).
    pub fn for_suite(
        suite: &crate::benchmarks::suite::Suite,
        plan: &RunPlan,
        model: &ModelConfig,
    ) -> Self {
        let mut manifest = Manifest::new(plan, model);
        manifest.suite = Some(SuiteRecord {
            name: suite.name.clone(),
            version: suite.version.clone(),
            digest: suite.digest.clone(),
        });
        manifest
    }

    /// Checks what a hostile or damaged manifest could get wrong (names, ranges, lengths).
    fn validate(&self) -> Result<(), String> {
        if let Some(suite) = &self.suite {
            if suite.name.is_empty() || suite.name.len() > 256 || suite.version.len() > 256 {
                return Err(
                    "'suite.name' and 'suite.version' must have 1 to 256 characters".into(),
                );
            }
            if suite.digest.len() != 64 || !suite.digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("'suite.digest' must be 64 hex digits (a SHA-256)".into());
            }
        }
        if self.model.trim().is_empty() || self.model.len() > 256 {
            return Err("'model' must be a name of 1 to 256 characters".into());
        }
        if self.backend.trim().is_empty() || self.backend.len() > 64 {
            return Err("'backend' must be a name of 1 to 64 characters".into());
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err("'temperature' must be from 0 to 2".into());
        }
        if self.max_tokens == 0 {
            return Err("'max_tokens' must be at least 1".into());
        }
        self.plan.apply(&mut RunPlan {
            families: Vec::new(),
            count: 1,
            difficulty: Difficulty::default(),
            seed: 0,
            epochs: 1,
            weights: Default::default(),
        })
    }

    /// One line for messages: `mock/veyra-mock-1, cplc,msga × 3 medium, seed 7, 1 epoch`.
    pub fn describe(&self) -> String {
        format!(
            "{}/{}, {} × {} {}, seed {}, {} epoch{}",
            crate::sanitize::sanitize_line(&self.backend),
            crate::sanitize::sanitize_line(&self.model),
            crate::sanitize::sanitize_line(&self.plan.families.join(",")),
            self.plan.count,
            crate::sanitize::sanitize_line(&self.plan.difficulty),
            self.plan.seed,
            self.plan.epochs,
            if self.plan.epochs == 1 { "" } else { "s" }
        )
    }
}

/// The plan part of the manifest. Names are kept as text and parsed on use, so a cassette
/// naming a family this Veyra lacks gets the family parser's message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRecord {
    /// Family names.
    pub families: Vec<String>,
    /// Tasks per family.
    pub count: u32,
    /// Difficulty name.
    pub difficulty: String,
    /// Generator seed.
    pub seed: u64,
    /// Times each task ran.
    pub epochs: u32,
}

impl PlanRecord {
    /// The record of `plan`.
    pub fn from_plan(plan: &RunPlan) -> Self {
        PlanRecord {
            families: plan.families.iter().map(|f| f.name().to_string()).collect(),
            count: plan.count,
            difficulty: plan.difficulty.name().to_string(),
            seed: plan.seed,
            epochs: plan.epochs,
        }
    }

    /// Sets `plan`'s families, count, difficulty, seed and epochs to the recorded ones (its
    /// weights stay: scoring is the replaying configuration's business). The error says
    /// which field is wrong.
    pub fn apply(&self, plan: &mut RunPlan) -> Result<(), String> {
        if self.families.is_empty() || self.families.len() > 64 {
            return Err("'plan.families' must list 1 to 64 families".into());
        }
        let mut families = Vec::new();
        for name in &self.families {
            let family: FamilyId = name.parse().map_err(|e| format!("'plan.families': {e}"))?;
            if !families.contains(&family) {
                families.push(family);
            }
        }
        families.sort();
        if !RANGE_BENCH_COUNT.contains(&u64::from(self.count)) {
            return Err(format!(
                "'plan.count' is {}, outside {} to {}",
                self.count,
                RANGE_BENCH_COUNT.start(),
                RANGE_BENCH_COUNT.end()
            ));
        }
        if !RANGE_BENCH_EPOCHS.contains(&u64::from(self.epochs)) {
            return Err(format!(
                "'plan.epochs' is {}, outside {} to {}",
                self.epochs,
                RANGE_BENCH_EPOCHS.start(),
                RANGE_BENCH_EPOCHS.end()
            ));
        }
        let difficulty: Difficulty = self
            .difficulty
            .parse()
            .map_err(|e| format!("'plan.difficulty': {e}"))?;
        plan.families = families;
        plan.count = self.count;
        plan.difficulty = difficulty;
        plan.seed = self.seed;
        plan.epochs = self.epochs;
        Ok(())
    }
}

/// One recorded model call: a `DIR/calls/<seq>-<key>.json` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedCall {
    /// Order of the call's start in the run, from 1.
    pub seq: u64,
    /// [`request_key`] of the request.
    pub key: String,
    /// The request's JSON (what the key hashes, the configured key scrubbed), for reading.
    pub request: serde_json::Value,
    /// False when the backend failed before streaming (then `events` is that one error).
    pub opened: bool,
    /// The stream as received.
    pub events: Vec<RecordedEvent>,
}

/// One thing a stream delivered, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedEvent {
    /// Milliseconds from the call's start (tokio's clock).
    pub at_ms: u64,
    /// What arrived.
    pub event: StreamEvent,
}

/// What a stream delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StreamEvent {
    /// Text to append.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call.
    ToolCall {
        /// The provider's id of the call.
        id: String,
        /// The tool's name.
        name: String,
        /// Its arguments.
        arguments: RecordedArguments,
    },
    /// The final chunk.
    Done {
        /// Why generation stopped.
        finish_reason: FinishReason,
        /// Token counts.
        usage: TokenUsage,
    },
    /// The error that ended the stream (or prevented it).
    Error {
        /// The backend that failed.
        backend: String,
        /// What kind of failure.
        kind: ModelErrorKind,
        /// The provider's words (scrubbed).
        message: String,
        /// The provider's request id.
        request_id: Option<String>,
        /// True when the answer had started arriving.
        mid_stream: bool,
    },
}

impl StreamEvent {
    /// True for the events that end a stream.
    pub fn is_final(&self) -> bool {
        match self {
            StreamEvent::Done { .. } | StreamEvent::Error { .. } => true,
            StreamEvent::Text { .. } | StreamEvent::ToolCall { .. } => false,
        }
    }
}

/// Tool-call arguments as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RecordedArguments {
    /// Parsed JSON.
    Json(serde_json::Value),
    /// Text that was not JSON, and the parser's complaint.
    Malformed {
        /// What the model wrote.
        raw: String,
        /// The parser's complaint.
        error: String,
    },
}

/// The JSON of one message in a key: every part of it, tagged by role.
fn message_json(message: &Message) -> serde_json::Value {
    use serde_json::json;
    match message {
        Message::User(text) => json!({ "role": "user", "content": text }),
        Message::Assistant { text, tool_calls } => json!({
            "role": "assistant",
            "content": text,
            "tool_calls": tool_calls
                .iter()
                .map(|c| json!({
                    "id": c.id,
                    "name": c.name,
                    "arguments": match &c.arguments {
                        Ok(value) => json!({ "json": value }),
                        Err(m) => json!({ "malformed": { "raw": m.raw, "error": m.error } }),
                    },
                }))
                .collect::<Vec<_>>(),
        }),
        Message::Tool(r) => json!({
            "role": "tool",
            "call_id": r.call_id,
            "name": r.name,
            // `system_status` reports live state (backend name, audit head, queue) that differs
            // between the recording and the replay by design; the call is keyed, its live
            // answer is not.
            "content": if r.name == LIVE_STATE_TOOL { "" } else { r.content.as_str() },
            "is_error": r.is_error,
        }),
    }
}

/// The tool whose result is live state, left out of keys.
const LIVE_STATE_TOOL: &str = "system_status";

/// The JSON of a tool declaration in a key.
fn tool_json(tool: &ToolSpec) -> serde_json::Value {
    serde_json::json!({
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
    })
}

/// A request's cassette key (lowercase hex SHA-256 of its RFC 8785 JSON) and that JSON: model,
/// system, messages, tools, temperature and max_tokens.
pub fn request_key(request: &ModelRequest) -> Result<(String, serde_json::Value), String> {
    let value = serde_json::json!({
        "model": request.model,
        "system": request.system,
        "messages": request.messages.iter().map(message_json).collect::<Vec<_>>(),
        "tools": request.tools.iter().map(tool_json).collect::<Vec<_>>(),
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
    });
    let canonical = serde_json_canonicalizer::to_string(&value)
        .map_err(|e| format!("encoding the request as canonical JSON: {e}"))?;
    Ok((hex::encode(Sha256::digest(canonical.as_bytes())), value))
}

/// `events` with the key taken out of the text that consecutive `text` events join to. A run
/// of `text` events whose joined text holds no key is kept as it is (the replay is chunk for
/// chunk); one that does is redacted as a stream is: each event keeps the text that could be
/// handed on when it arrived (a tail that could begin the key moves to the next one), events
/// left empty are dropped, and the tail held at the run's end is one more `text` event at the
/// time of its last one.
pub(crate) fn scrub_text_events(
    events: &[RecordedEvent],
    key: Option<&Secret>,
) -> Vec<RecordedEvent> {
    fn text_of(e: &RecordedEvent) -> Option<&str> {
        match &e.event {
            StreamEvent::Text { text } => Some(text),
            StreamEvent::ToolCall { .. } | StreamEvent::Done { .. } | StreamEvent::Error { .. } => {
                None
            }
        }
    }
    let mut out = Vec::with_capacity(events.len());
    let mut rest = events;
    while let Some((first, after)) = rest.split_first() {
        let run = rest.iter().take_while(|e| text_of(e).is_some()).count();
        if run == 0 {
            out.push(first.clone());
            rest = after;
            continue;
        }
        let (texts, after) = rest.split_at(run);
        rest = after;
        let joined: String = texts.iter().filter_map(text_of).collect();
        if matches!(
            crate::config::redact_key(&joined, key),
            std::borrow::Cow::Borrowed(_)
        ) {
            out.extend_from_slice(texts);
            continue;
        }
        let mut redactor = StreamRedactor::new(key.cloned().map(Arc::new));
        let mut last_at = 0;
        for e in texts {
            last_at = e.at_ms;
            let clean = redactor.push(text_of(e).unwrap_or_default().to_string());
            if !clean.is_empty() {
                out.push(RecordedEvent {
                    at_ms: e.at_ms,
                    event: StreamEvent::Text { text: clean },
                });
            }
        }
        if redactor.holds() {
            out.push(RecordedEvent {
                at_ms: last_at,
                event: StreamEvent::Text {
                    text: redactor.finish(),
                },
            });
        }
    }
    out
}

/// `value` with the key scrubbed from every string and object key in it.
pub(crate) fn scrub(value: serde_json::Value, key: Option<&Secret>) -> serde_json::Value {
    use serde_json::Value;
    let Some(key) = key else { return value };
    let text = |s: String| match crate::config::redact_key(&s, Some(key)) {
        std::borrow::Cow::Borrowed(_) => s,
        std::borrow::Cow::Owned(clean) => clean,
    };
    match value {
        Value::String(s) => Value::String(text(s)),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| scrub(v, Some(key))).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (text(k), scrub(v, Some(key))))
                .collect(),
        ),
        other @ (Value::Null | Value::Bool(_) | Value::Number(_)) => other,
    }
}

/// Whether a failure stops a run as a usage error (exit 2) or a runtime one (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripKind {
    /// The cassette does not fit the run, or is damaged.
    Usage,
    /// A cassette file could not be written.
    Runtime,
}

/// The first cassette failure of a run. Tripping it cancels the run's token, so the run stops
/// at once instead of failing every remaining task the same way.
#[derive(Debug, Clone)]
pub struct Tripwire {
    first: Arc<Mutex<Option<(TripKind, String)>>>,
    cancel: CancellationToken,
}

impl Tripwire {
    /// A tripwire that cancels `cancel` when tripped.
    pub fn new(cancel: CancellationToken) -> Self {
        Tripwire {
            first: Arc::new(Mutex::new(None)),
            cancel,
        }
    }

    /// Records `message` (when nothing was recorded before) and cancels the run.
    pub fn trip(&self, kind: TripKind, message: String) {
        let mut first = match self.first.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if first.is_none() {
            *first = Some((kind, message));
        }
        drop(first);
        self.cancel.cancel();
    }

    /// The first failure, if any.
    pub fn tripped(&self) -> Option<(TripKind, String)> {
        match self.first.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The first failure as the error a command returns.
    pub fn error(&self) -> Option<VeyraError> {
        self.tripped().map(|(kind, message)| match kind {
            TripKind::Usage => VeyraError::Usage(message),
            TripKind::Runtime => VeyraError::Runtime(message),
        })
    }
}
