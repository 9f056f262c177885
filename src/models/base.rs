//! The model layer's contract: [`ModelBackend`], its request and response types, and
//! [`ModelError`]. Backends know nothing of governance or the console.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::events::{FinishReason, TokenUsage};

/// One generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    /// The user's prompt.
    pub prompt: String,
    /// Optional system prompt.
    pub system: Option<String>,
    /// Model name.
    pub model: String,
    /// Sampling temperature, 0 to 2.
    pub temperature: f64,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
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
    /// The tool's name.
    pub name: String,
    /// Its arguments, parsed from the JSON the model wrote.
    pub arguments: serde_json::Value,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
        match self {
            ModelErrorKind::Config => "config",
            ModelErrorKind::Auth => "auth",
            ModelErrorKind::RateLimit => "rate_limit",
            ModelErrorKind::Overloaded => "overloaded",
            ModelErrorKind::BadRequest => "bad_request",
            ModelErrorKind::Server => "server",
            ModelErrorKind::Timeout => "timeout",
            ModelErrorKind::Connection => "connection",
            ModelErrorKind::Protocol => "protocol",
        }
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
