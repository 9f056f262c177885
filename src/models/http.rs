//! HTTP plumbing shared by the OpenAI-compatible and Anthropic clients: one `reqwest` client
//! (rustls), the mapping of provider failures onto [`ModelErrorKind`], retries before the first
//! byte, server-sent events with an idle timeout, and the driver that turns those events into
//! a [`ChunkStream`] through a provider's [`StreamParser`] (each provider's module holds only
//! its parser).
//!
//! # Retries
//! A request is retried — up to `model.retries` times, with exponential backoff and jitter, or
//! after the delay the server names in `retry-after-ms` / `retry-after` — when the connection
//! failed or timed out, or the status is 408, 409, 429, 5xx or 529. Never for a 429 that says a
//! spend limit or quota is exhausted (waiting does not help), and never once a response has
//! started streaming: a generation is not replayed.
//!
//! # Secrets
//! API keys travel only in request headers. Errors are built from the status, the provider's
//! error message and request id, never from headers or the request. A hostile or careless
//! server may still echo the key back, so everything a server sends that is not the answer
//! (error bodies, headers, stream error events) passes the [`Redactor`] before it becomes an
//! error: the configured key and anything shaped like a bearer token or API key become
//! `[redacted]`. Answer text loses the configured key only (a model may write "Bearer").
//!
//! # Clamps
//! Every duration a server names (`retry-after`, `retry-after-ms`) is clamped to
//! [`MAX_RETRY_DELAY`] before it is used; nothing a server sends can overflow a clock.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderValue};

use super::base::{ChunkStream, ModelError, ModelErrorKind, StreamChunk, ToolCall};
use crate::config::{ModelConfig, Secret};

/// Longest wait between retries, whatever the server asks for.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// First backoff delay; doubles per retry.
const BASE_RETRY_DELAY: Duration = Duration::from_millis(500);
/// Largest piece of a response handed to the SSE parser at once (see [`HttpClient::events`]).
const SSE_PIECE: usize = 2048;
/// Time allowed to establish a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A JSON-over-HTTP client for one backend.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    backend: String,
    client: reqwest::Client,
    retries: u32,
    /// Longest silence allowed: before the response starts, and between streamed bytes.
    idle: Duration,
    redactor: Redactor,
}

/// Scrubs secrets from what a server sends back (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    key: Option<std::sync::Arc<Secret>>,
}

impl Redactor {
    /// A redactor for `key`, the configured API key if any.
    pub(crate) fn new(key: Option<Secret>) -> Self {
        Redactor {
            key: key.map(std::sync::Arc::new),
        }
    }

    /// `text` without the key or anything shaped like a credential.
    pub(crate) fn text<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        crate::config::redact(text, self.key.as_deref())
    }

    /// Answer text without the configured key (only that: see the module docs).
    pub(crate) fn answer(&self, text: String) -> String {
        match crate::config::redact_key(&text, self.key.as_deref()) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(clean) => clean,
        }
    }

    /// A tool call without the configured key in its id, name or arguments (a server may
    /// echo the key into any of them; the call's arguments are shown to the operator).
    pub(crate) fn tool_call(&self, mut call: ToolCall) -> ToolCall {
        if self.key.is_none() {
            return call;
        }
        call.id = self.answer(call.id);
        call.name = self.answer(call.name);
        call.arguments = match call.arguments {
            Ok(value) => Ok(self.json(value)),
            Err(mut malformed) => {
                malformed.raw = self.answer(malformed.raw);
                malformed.error = self.answer(malformed.error);
                Err(malformed)
            }
        };
        call
    }

    /// `value` with the configured key taken out of every string and object key in it.
    fn json(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(text) => Value::String(self.answer(text)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.answer(k), self.json(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// `error` with its message and request id scrubbed.
    pub(crate) fn error(&self, mut error: ModelError) -> ModelError {
        if let std::borrow::Cow::Owned(clean) = self.text(&error.message) {
            error.message = clean;
        }
        error.request_id = error
            .request_id
            .map(|id| crate::sanitize::excerpt(&self.text(&id), 120).into_owned());
        error
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (`message` when absent).
    pub event: String,
    /// The `data:` field.
    pub data: String,
}

/// Server-sent events of one response.
pub(crate) type SseStream = Pin<Box<dyn Stream<Item = Result<SseEvent, ModelError>> + Send>>;

/// Turns a parser's output into a chunk stream: events in, chunks out, then the parser's
/// verdict on how the stream ended. Every error from here on is `mid_stream`: the response
/// has begun, so the generation must not be replayed. Errors (which quote the server) pass the
/// redactor whole; answer text loses the configured key.
pub(crate) fn chunks<P: StreamParser + Send + 'static>(
    events: SseStream,
    parser: P,
    redactor: Redactor,
) -> ChunkStream {
    let stream = raw_chunks(events, parser).map(move |item| match item {
        Ok(StreamChunk::Text(text)) => Ok(StreamChunk::Text(redactor.answer(text))),
        Ok(StreamChunk::ToolCall(call)) => Ok(StreamChunk::ToolCall(redactor.tool_call(call))),
        Ok(other) => Ok(other),
        Err(e) => {
            let mut e = redactor.error(e);
            e.mid_stream = true;
            Err(e)
        }
    });
    Box::pin(stream)
}

fn raw_chunks<P: StreamParser + Send + 'static>(events: SseStream, parser: P) -> ChunkStream {
    let state = (events, parser, VecDeque::<StreamChunk>::new(), false);
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut events, mut parser, mut pending, mut ended)| async move {
            loop {
                if let Some(chunk) = pending.pop_front() {
                    return Some((Ok(chunk), (events, parser, pending, ended)));
                }
                if ended {
                    return None;
                }
                match events.next().await {
                    Some(Ok(event)) => match parser.feed(&event) {
                        Ok(Step::More(out)) => pending.extend(out),
                        Ok(Step::Done(out)) => {
                            pending.extend(out);
                            ended = true;
                        }
                        Err(e) => return Some((Err(e), (events, parser, pending, true))),
                    },
                    Some(Err(e)) => return Some((Err(e), (events, parser, pending, true))),
                    None => {
                        ended = true;
                        match parser.end() {
                            Ok(out) => pending.extend(out),
                            Err(e) => return Some((Err(e), (events, parser, pending, true))),
                        }
                    }
                }
            }
        },
    ))
}

/// What one event did to the answer.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// These chunks, and more to come.
    More(Vec<StreamChunk>),
    /// These chunks, and the answer is complete.
    Done(Vec<StreamChunk>),
}

/// A provider's stream format: events in, chunks out.
pub trait StreamParser {
    /// One event.
    fn feed(&mut self, event: &SseEvent) -> Result<Step, ModelError>;
    /// The events ran out before [`Step::Done`]: the final chunks, or why the answer is
    /// incomplete.
    fn end(&mut self) -> Result<Vec<StreamChunk>, ModelError>;
}

impl HttpClient {
    /// A client for `backend` with `model.timeout` and `model.retries`.
    pub(crate) fn new(backend: &str, config: &ModelConfig) -> Result<Self, ModelError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("veyra/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ModelError::new(
                    backend,
                    ModelErrorKind::Config,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(HttpClient {
            backend: backend.to_string(),
            client,
            retries: config.retries,
            idle: Duration::from_secs(config.timeout.clamp(1, 86_400)),
            // A missing key is the backend's error to report; here it only means nothing to
            // scrub but credential shapes.
            redactor: Redactor::new(config.api_key().ok().flatten()),
        })
    }

    /// The scrubber for this backend's server texts.
    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// POSTs `body` as JSON; returns the response once its status is 2xx, retrying as the
    /// module docs say.
    pub(crate) async fn post(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, ModelError> {
        let mut attempt: u32 = 0;
        loop {
            let send = self
                .client
                .post(url)
                .headers(headers.clone())
                .json(body)
                .send();
            let failure = match tokio::time::timeout(self.idle, send).await {
                Err(_) => Failure {
                    error: ModelError::new(
                        &self.backend,
                        ModelErrorKind::Timeout,
                        format!(
                            "no response from {} within {} s (model.timeout)",
                            host(url),
                            self.idle.as_secs()
                        ),
                    ),
                    retry: true,
                    retry_after: None,
                },
                Ok(Err(e)) => self.transport(&e, url),
                Ok(Ok(response)) if response.status().is_success() => return Ok(response),
                Ok(Ok(response)) => self.status_failure(response).await,
            };
            let failure = Failure {
                error: self.redactor.error(failure.error),
                ..failure
            };
            if !failure.retry || attempt >= self.retries {
                return Err(failure.error);
            }
            let delay = failure
                .retry_after
                .unwrap_or_else(|| backoff(attempt))
                .min(MAX_RETRY_DELAY);
            tracing::warn!(
                backend = %self.backend,
                error = %failure.error,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                attempt = attempt + 1,
                "request failed before streaming; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// GETs `url` once (health checks: no retries, the answer is the point).
    pub(crate) async fn get(
        &self,
        url: &str,
        headers: &HeaderMap,
    ) -> Result<reqwest::Response, ModelError> {
        let send = self.client.get(url).headers(headers.clone()).send();
        match tokio::time::timeout(self.idle, send).await {
            Err(_) => Err(ModelError::new(
                &self.backend,
                ModelErrorKind::Timeout,
                format!(
                    "no response from {} within {} s",
                    host(url),
                    self.idle.as_secs()
                ),
            )),
            Ok(Err(e)) => Err(self.redactor.error(self.transport(&e, url).error)),
            Ok(Ok(response)) if response.status().is_success() => Ok(response),
            Ok(Ok(response)) => Err(self
                .redactor
                .error(self.status_failure(response).await.error)),
        }
    }

    /// Reads a whole JSON body, within the idle timeout.
    pub(crate) async fn json_body(
        &self,
        response: reqwest::Response,
    ) -> Result<serde_json::Value, ModelError> {
        let request_id = request_id(response.headers());
        let bytes = match tokio::time::timeout(self.idle, response.bytes()).await {
            Err(_) => {
                return Err(ModelError::new(
                    &self.backend,
                    ModelErrorKind::Timeout,
                    format!("the response body stalled for {} s", self.idle.as_secs()),
                ));
            }
            Ok(Err(e)) => return Err(self.redactor.error(self.transport(&e, "").error)),
            Ok(Ok(b)) => b,
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            let mut err = ModelError::new(
                &self.backend,
                ModelErrorKind::Protocol,
                format!("the response is not JSON ({e}): {}", snippet(&bytes)),
            );
            err.request_id = request_id;
            self.redactor.error(err)
        })
    }

    /// The response's server-sent events; a silence longer than the idle timeout ends the
    /// stream with a timeout error.
    pub(crate) fn events(&self, response: reqwest::Response) -> SseStream {
        let backend = self.backend.clone();
        let idle = self.idle;
        let redactor = self.redactor.clone();
        // eventsource-stream copies its unparsed remainder after every line, so a large read
        // would cost time quadratic in its size; pieces of at most SSE_PIECE bytes keep it
        // linear (slicing `Bytes` copies nothing).
        let pieces = response.bytes_stream().flat_map(|read| {
            let pieces: Vec<_> = match read {
                Ok(bytes) => (0..bytes.len())
                    .step_by(SSE_PIECE)
                    .map(|start| Ok(bytes.slice(start..bytes.len().min(start + SSE_PIECE))))
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            futures_util::stream::iter(pieces)
        });
        let inner = pieces.eventsource();
        let stream = futures_util::stream::unfold(
            (Box::pin(inner), backend, false),
            move |(mut inner, backend, ended)| {
                let redactor = redactor.clone();
                async move {
                    if ended {
                        return None;
                    }
                    match tokio::time::timeout(idle, inner.next()).await {
                        Err(_) => Some((
                            Err(ModelError::new(
                                &backend,
                                ModelErrorKind::Timeout,
                                format!(
                                    "the stream went silent for {} s (model.timeout)",
                                    idle.as_secs()
                                ),
                            )),
                            (inner, backend, true),
                        )),
                        Ok(None) => None,
                        Ok(Some(Ok(event))) => Some((
                            Ok(SseEvent {
                                event: event.event,
                                data: event.data,
                            }),
                            (inner, backend, false),
                        )),
                        Ok(Some(Err(e))) => {
                            let error = redactor.error(ModelError::new(
                                &backend,
                                ModelErrorKind::Connection,
                                format!("the stream broke off: {e}"),
                            ));
                            Some((Err(error), (inner, backend, true)))
                        }
                    }
                }
            },
        );
        Box::pin(stream)
    }

    fn transport(&self, e: &reqwest::Error, url: &str) -> Failure {
        let kind = if e.is_timeout() {
            ModelErrorKind::Timeout
        } else if e.is_connect() || e.is_request() || e.is_body() {
            ModelErrorKind::Connection
        } else if e.is_decode() {
            ModelErrorKind::Protocol
        } else {
            ModelErrorKind::Connection
        };
        // reqwest's message names the URL (never a header, so never a key).
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        if kind == ModelErrorKind::Connection && !url.is_empty() {
            message.push_str(&format!(
                " (is the server at {} running? check model.base_url)",
                host(url)
            ));
        }
        Failure {
            error: ModelError::new(&self.backend, kind, message),
            retry: kind != ModelErrorKind::Protocol,
            retry_after: None,
        }
    }

    async fn status_failure(&self, response: reqwest::Response) -> Failure {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let retry_after = retry_after(&headers);
        // An error body is small; a stalled one is not worth waiting the full timeout for.
        let body = tokio::time::timeout(self.idle, response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let (provider_type, provider_message) = provider_error(&body);
        let kind = kind_of_status(status, provider_type.as_deref());
        let spent = status == 429 && is_spend_limit(provider_type.as_deref(), &provider_message);
        let retry = !spent && matches!(status, 408 | 409 | 429 | 500..=599);
        let mut message = format!("HTTP {status}");
        if !provider_message.is_empty() {
            message.push_str(&format!(": {provider_message}"));
        }
        match status {
            401 | 403 => message.push_str(
                " (check the key in the variable model.api_key_env names, and its permissions)",
            ),
            404 => message.push_str(" (check model.base_url and model.model)"),
            _ if spent => message.push_str(" (a spend limit or quota is exhausted; not retried)"),
            _ => {}
        }
        let mut error = ModelError::new(&self.backend, kind, message);
        error.request_id = request_id(&headers);
        Failure {
            error,
            retry,
            retry_after,
        }
    }
}

/// Why a request failed and whether trying again can help.
struct Failure {
    error: ModelError,
    retry: bool,
    retry_after: Option<Duration>,
}

/// The error kind for an HTTP status (and the provider's own error type, where it says more).
pub(crate) fn kind_of_status(status: u16, provider_type: Option<&str>) -> ModelErrorKind {
    match (status, provider_type) {
        (_, Some("overloaded_error")) | (529, _) => ModelErrorKind::Overloaded,
        (401 | 403, _) => ModelErrorKind::Auth,
        (408, _) => ModelErrorKind::Timeout,
        (429, _) => ModelErrorKind::RateLimit,
        (409 | 500..=599, _) => ModelErrorKind::Server,
        _ => ModelErrorKind::BadRequest,
    }
}

/// The kind for a provider's error type inside a stream (`server_error`, `overloaded_error`, …).
pub(crate) fn kind_of_provider_error(provider_type: &str) -> ModelErrorKind {
    match provider_type {
        "overloaded_error" | "overloaded" => ModelErrorKind::Overloaded,
        "rate_limit_error" | "rate_limit_exceeded" | "rate_limit" => ModelErrorKind::RateLimit,
        "authentication_error" | "permission_error" | "invalid_api_key" => ModelErrorKind::Auth,
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            ModelErrorKind::BadRequest
        }
        "timeout_error" | "timeout" => ModelErrorKind::Timeout,
        _ => ModelErrorKind::Server,
    }
}

/// A 429 that no wait will cure.
fn is_spend_limit(provider_type: Option<&str>, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    provider_type == Some("insufficient_quota")
        || m.contains("insufficient_quota")
        || m.contains("exceeded your current quota")
        || m.contains("spend limit")
        || m.contains("billing")
}

/// The provider's error type and message from an error body of either provider's shape:
/// `{"error": {"type", "code", "message"}}`, `{"type": "error", "error": {…}}`, or plain text.
pub(crate) fn provider_error(body: &[u8]) -> (Option<String>, String) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, snippet(body));
    };
    let error = value.get("error").unwrap_or(&value);
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    let kind = text(error.get("type"))
        .filter(|t| t != "error")
        .or_else(|| text(error.get("code")));
    let message = text(error.get("message"))
        .or_else(|| text(value.get("message")))
        .or_else(|| error.as_str().map(str::to_string))
        .unwrap_or_else(|| snippet(body));
    (kind, message)
}

/// At most 300 characters of a body, on one line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", one_line.get(..i).unwrap_or_default()),
        None => one_line,
    }
}

/// The delay a response asks for: `retry-after-ms` (milliseconds), else `retry-after` in
/// seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    // Whatever the server says, the wait is clamped: `1e20` seconds must not overflow a clock.
    let clamp = |d: Duration| d.min(MAX_RETRY_DELAY);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && !ms.is_nan()
        && ms >= 0.0
    {
        return Some(clamp(crate::limits::secs_f64(ms / 1000.0)));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (!secs.is_nan() && secs >= 0.0).then(|| clamp(crate::limits::secs_f64(secs)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(clamp(wait.to_std().unwrap_or(Duration::ZERO)))
}

/// The provider's request id (`x-request-id` for OpenAI, `request-id` for Anthropic).
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Exponential backoff with jitter: between half and all of `BASE · 2^attempt`.
fn backoff(attempt: u32) -> Duration {
    let full = BASE_RETRY_DELAY
        .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(MAX_RETRY_DELAY);
    let half = full / 2;
    // Jitter only needs to differ between clients; uuid's v4 generator is a ready source.
    let random = uuid::Uuid::new_v4().as_u64_pair().0;
    let span = u64::try_from(half.as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    half + Duration::from_millis(random % span)
}

/// `scheme://host:port` of a URL, for messages.
fn host(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => url.to_string(),
    }
}

/// A header carrying a secret: marked sensitive, so reqwest never prints it. The value is never
/// part of the error.
pub(crate) fn secret_header(backend: &str, value: &str) -> Result<HeaderValue, ModelError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        ModelError::new(
            backend,
            ModelErrorKind::Config,
            "the API key holds characters an HTTP header cannot carry; check the variable \
             model.api_key_env names",
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// `model.base_url`, or the provider's own.
pub(crate) fn base_url(config: &ModelConfig, default: &str) -> String {
    config
        .base_url
        .clone()
        .unwrap_or_else(|| default.to_string())
}

/// `base` and `path` joined with one slash.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests;
