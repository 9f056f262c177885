//! The model layer's contract: [`ModelBackend`], its request and response types, and
//! [`ModelError`]. Backends know nothing of governance or the console.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::events::{FinishReason, TokenUsage};

/// One generation request: a conversation, the tools the model may call, and sampling settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    /// Optional system prompt (sent as the provider's system field or first message).
    pub system: Option<String>,
    /// The conversation so far, oldest first. It starts with the operator's prompt as a
    /// [`Message::User`]; an agent loop appends the model's turns and the tool results.
    pub messages: Vec<Message>,
    /// The tools the model may call in this request (empty: none).
    pub tools: Vec<ToolSpec>,
    /// Model name.
    pub model: String,
    /// Sampling temperature, 0 to 2.
    pub temperature: f64,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
}

impl ModelRequest {
    /// A one-prompt request with no tools.
    pub fn new(
        model: impl Into<String>,
        system: Option<String>,
        prompt: impl Into<String>,
        temperature: f64,
        max_tokens: u32,
    ) -> Self {
        ModelRequest {
            system,
            messages: vec![Message::User(prompt.into())],
            tools: Vec::new(),
            model: model.into(),
            temperature,
            max_tokens,
        }
    }

    /// The operator's prompt: the first user message (empty when there is none).
    pub fn prompt(&self) -> &str {
        self.messages
            .iter()
            .find_map(|m| match m {
                Message::User(text) => Some(text.as_str()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// What the operator (or a benchmark) asked.
    User(String),
    /// What the model answered: text, tool calls, or both.
    Assistant {
        /// The text part (may be empty).
        text: String,
        /// The calls it asked for, in order.
        tool_calls: Vec<ToolCall>,
    },
    /// The answer to one tool call.
    Tool(ToolResult),
}

/// The result of one tool call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolResult {
    /// The id of the call this answers ([`ToolCall::id`]).
    pub call_id: String,
    /// The tool's name.
    pub name: String,
    /// The result (JSON text) or, when `is_error`, why the call was refused or failed.
    pub content: String,
    /// True when the call did not run or failed; the model may recover.
    pub is_error: bool,
}

/// A tool the model may call: the declaration sent to the provider.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    /// Tool name, `[a-z_]+`.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments (an object schema).
    pub parameters: serde_json::Value,
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelResponse {
    /// The generated text.
    pub text: String,
    /// The model that answered.
    pub model: String,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Token counts.
    pub usage: TokenUsage,
    /// Time from request to last token.
    pub latency: Duration,
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamChunk {
    /// Text to append.
    Text(String),
    /// The model asks for a tool (assembled from the provider's pieces).
    ToolCall(ToolCall),
    /// The stream's last chunk: why it stopped and what it cost.
    Done {
        /// Why generation stopped.
        finish_reason: FinishReason,
        /// Token counts.
        usage: TokenUsage,
    },
}

/// A tool call the model asked for, as the provider sent it. Running it is the tool layer's
/// business; the model layer only assembles it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    /// The provider's id for the call (answers refer to it).
    pub id: String,
    /// The tool's name (untrusted: it may name a tool the model was not given).
    pub name: String,
    /// Its arguments, parsed from the JSON the model wrote, or what was wrong with that JSON.
    /// A malformed call is not a protocol error: the agent loop tells the model and goes on.
    pub arguments: Result<serde_json::Value, MalformedArguments>,
}

/// Tool-call arguments that are not a JSON value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MalformedArguments {
    /// What the model wrote (sent back to the provider as its own history, never shown raw).
    pub raw: String,
    /// The parser's complaint.
    pub error: String,
}

impl MalformedArguments {
    /// Parses the arguments text a provider streamed: empty text is an empty object.
    pub fn parse(raw: String) -> Result<serde_json::Value, MalformedArguments> {
        if raw.trim().is_empty() {
            return Ok(serde_json::Value::Object(serde_json::Map::new()));
        }
        serde_json::from_str(&raw).map_err(|e| MalformedArguments {
            error: e.to_string(),
            raw,
        })
    }
}

/// A stream of chunks; an `Err` item ends the stream.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<StreamChunk, ModelError>> + Send>>;

/// What a model backend can do. Implementations are cheap to share (`Arc<dyn ModelBackend>`).
#[async_trait::async_trait]
pub trait ModelBackend: Send + Sync {
    /// Registered backend name (`mock`, `openai`, …).
    fn name(&self) -> &str;

    /// The whole answer at once.
    async fn generate(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let started = tokio::time::Instant::now();
        let mut stream = self.stream(request).await?;
        let mut text = String::new();
        let mut done = None;
        while let Some(chunk) = stream.next().await {
            match chunk? {
                StreamChunk::Text(t) => text.push_str(&t),
                StreamChunk::ToolCall(_) => {}
                StreamChunk::Done {
                    finish_reason,
                    usage,
                } => done = Some((finish_reason, usage)),
            }
        }
        let (finish_reason, usage) = done.ok_or_else(|| {
            ModelError::new(
                self.name(),
                ModelErrorKind::Protocol,
                "the stream ended without a final chunk",
            )
        })?;
        Ok(ModelResponse {
            text,
            model: request.model.clone(),
            finish_reason,
            usage,
            latency: started.elapsed(),
        })
    }

    /// The answer as a stream of chunks, ending with [`StreamChunk::Done`]. An error returned
    /// here (rather than inside the stream) means nothing was generated, so a retry is safe.
    async fn stream(&self, request: &ModelRequest) -> Result<ChunkStream, ModelError>;

    /// Checks the backend can answer, spending no tokens where the provider allows.
    async fn health_check(&self) -> Result<(), ModelError>;
}

/// Kinds of backend failure, shared by every provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ModelErrorKind {
    /// The backend is unknown or misconfigured (a usage error, exit 2).
    Config,
    /// Bad or missing credentials.
    Auth,
    /// Too many requests.
    RateLimit,
    /// The provider is overloaded.
    Overloaded,
    /// The provider rejected the request.
    BadRequest,
    /// The provider failed.
    Server,
    /// No answer in time.
    Timeout,
    /// The connection failed.
    Connection,
    /// The reply broke the protocol.
    Protocol,
}

impl ModelErrorKind {
    /// Snake-case name, as in events and JSON.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// True for failures that may pass when tried again.
    pub fn is_retryable(self) -> bool {
        match self {
            ModelErrorKind::RateLimit
            | ModelErrorKind::Overloaded
            | ModelErrorKind::Server
            | ModelErrorKind::Timeout
            | ModelErrorKind::Connection => true,
            ModelErrorKind::Config
            | ModelErrorKind::Auth
            | ModelErrorKind::BadRequest
            | ModelErrorKind::Protocol => false,
        }
    }
}

impl fmt::Display for ModelErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend failure: which backend, what kind, the provider's words and request id.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ModelError {
    /// Backend name.
    pub backend: String,
    /// What kind of failure.
    pub kind: ModelErrorKind,
    /// What happened and, where known, what to do.
    pub message: String,
    /// The provider's request id, for support tickets.
    pub request_id: Option<String>,
    /// The answer had started arriving when this happened: the generation is not replayed,
    /// whatever the kind.
    pub mid_stream: bool,
}

impl ModelError {
    /// A new error without request id.
    pub fn new(backend: &str, kind: ModelErrorKind, message: impl Into<String>) -> Self {
        ModelError {
            backend: backend.to_string(),
            kind,
            message: message.into(),
            request_id: None,
            mid_stream: false,
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backend '{}' ({}): {}",
            self.backend, self.kind, self.message
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

/// A conversation that exercises every part of a request body, for the backends' tests.
#[cfg(test)]
pub(crate) fn tool_conversation() -> ModelRequest {
    let mut request = ModelRequest::new(
        "test-model",
        Some("Be brief.".into()),
        "Check power and thermal.",
        0.2,
        64,
    );
    let malformed = MalformedArguments::parse("{\"zone\": hab".into());
    assert!(malformed.is_err(), "the fixture's second call is malformed");
    request.messages.extend([
        Message::Assistant {
            text: "Checking.".into(),
            tool_calls: vec![
                ToolCall {
                    id: "call_a".into(),
                    name: "get_power".into(),
                    arguments: Ok(serde_json::json!({"zone": "hab-1"})),
                },
                ToolCall {
                    id: "call_b".into(),
                    name: "get_thermal".into(),
                    arguments: malformed,
                },
            ],
        },
        Message::Tool(ToolResult {
            call_id: "call_a".into(),
            name: "get_power".into(),
            content: "{\"kw\":4.2}".into(),
            is_error: false,
        }),
        Message::Tool(ToolResult {
            call_id: "call_b".into(),
            name: "get_thermal".into(),
            content: "the arguments are not JSON".into(),
            is_error: true,
        }),
        Message::Assistant {
            text: String::new(),
            tool_calls: vec![ToolCall {
                id: "call_c".into(),
                name: "ping".into(),
                arguments: Ok(serde_json::json!({})),
            }],
        },
        Message::Tool(ToolResult {
            call_id: "call_c".into(),
            name: "ping".into(),
            content: "pong".into(),
            is_error: false,
        }),
    ]);
    request.tools = ["get_power", "get_thermal", "ping"]
        .into_iter()
        .map(|name| ToolSpec {
            name: name.into(),
            description: format!("Reads {name}."),
            parameters: serde_json::json!({"type": "object", "properties": {}}),
        })
        .collect();
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kind_names_are_the_serde_names() {
        let kinds = [
            (ModelErrorKind::Config, "config"),
            (ModelErrorKind::Auth, "auth"),
            (ModelErrorKind::RateLimit, "rate_limit"),
            (ModelErrorKind::Overloaded, "overloaded"),
            (ModelErrorKind::BadRequest, "bad_request"),
            (ModelErrorKind::Server, "server"),
            (ModelErrorKind::Timeout, "timeout"),
            (ModelErrorKind::Connection, "connection"),
            (ModelErrorKind::Protocol, "protocol"),
        ];
        for (kind, name) in kinds {
            assert_eq!(kind.name(), name);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
        }
    }
}
