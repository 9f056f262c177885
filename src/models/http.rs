//! HTTP plumbing shared by the OpenAI-compatible and Anthropic clients: one `reqwest` client
//! (rustls), the mapping of provider failures onto [`ModelErrorKind`], retries before the first
//! byte, server-sent events with an idle timeout (decoded by [`sse::SseDecoder`] in linear time,
//! one event capped at [`sse::MAX_EVENT_BYTES`]), and the driver that turns those events into
//! a [`ChunkStream`] through a provider's [`StreamParser`] (each provider's module holds only
//! its parser) and the `Redactor` (in `redact.rs`).
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
//! (error bodies, headers, stream error events) passes the `Redactor` before it becomes an
//! error: the configured key and anything shaped like a bearer token or API key become
//! `[redacted]`, a URL's user-info `***`. Answer text loses the configured key only (a model
//! may write "Bearer"), even when the key arrives split over two streamed pieces: the driver
//! holds back a piece's tail while it could begin the key, and every consumer of the stream
//! (the console, `--json`, stored outputs, cassettes) reads the redacted text.
//!
//! # Clamps
//! Every duration a server names (`retry-after`, `retry-after-ms`) is clamped to
//! `MAX_RETRY_DELAY` before it is used; nothing a server sends can overflow a clock.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderValue};

use super::base::{ChunkStream, ModelError, ModelErrorKind, StreamChunk};
use crate::config::{ModelConfig, StreamRedactor};

mod redact;
pub mod sse;

pub(crate) use redact::Redactor;

/// Longest wait between retries, whatever the server asks for.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// First backoff delay; doubles per retry.
const BASE_RETRY_DELAY: Duration = Duration::from_millis(500);
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

/// A response body read as events (see [`HttpClient::events`]).
struct SseReader<B> {
    body: Pin<Box<B>>,
    decoder: sse::SseDecoder,
    backend: String,
    idle: Duration,
    redactor: Redactor,
    /// The body ended: nothing more is read.
    ended: bool,
    /// The error that ends the stream, handed on after the events before it.
    failure: Option<ModelError>,
}

impl<B, T> SseReader<B>
where
    B: Stream<Item = reqwest::Result<T>>,
    T: AsRef<[u8]>,
{
    /// The next event, the error that ends the stream, or `None` at its end.
    async fn next(&mut self) -> Option<Result<SseEvent, ModelError>> {
        loop {
            if let Some(event) = self.decoder.next_event() {
                return Some(Ok(event));
            }
            if let Some(error) = self.failure.take() {
                return Some(Err(error));
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout(self.idle, self.body.next()).await {
                Err(_) => {
                    let message = format!(
                        "the stream went silent for {} s (model.timeout)",
                        self.idle.as_secs()
                    );
                    self.fail(ModelErrorKind::Timeout, message);
                }
                // An unfinished event at the end is dropped, as the standard says.
                Ok(None) => self.ended = true,
                Ok(Some(Err(e))) => {
                    self.fail(
                        ModelErrorKind::Connection,
                        format!("the stream broke off: {e}"),
                    );
                }
                Ok(Some(Ok(bytes))) => {
                    if let Err(too_large) = self.decoder.push(bytes.as_ref()) {
                        self.fail(ModelErrorKind::Protocol, too_large.to_string());
                    }
                }
            }
        }
    }

    /// Ends the stream with an error (scrubbed: a transport error may quote the URL).
    fn fail(&mut self, kind: ModelErrorKind, message: String) {
        self.ended = true;
        let error = ModelError::new(&self.backend, kind, message);
        self.failure = Some(self.redactor.error(error));
    }
}

/// Turns a parser's output into a chunk stream: events in, chunks out, then the parser's
/// verdict on how the stream ended. Every error from here on is `mid_stream`: the response
/// has begun, so the generation must not be replayed. Errors (which quote the server) pass the
/// redactor whole; answer text loses the configured key, also when it is split between two
/// pieces (the held-back tail is handed on before the next tool call, final chunk or error).
pub(crate) fn chunks<P: StreamParser + Send + 'static>(
    events: SseStream,
    parser: P,
    redactor: Redactor,
) -> ChunkStream {
    let driver = Driver {
        events,
        parser,
        text: redactor.stream(),
        redactor,
        pending: VecDeque::new(),
        ended: false,
    };
    Box::pin(futures_util::stream::unfold(driver, |mut d| async move {
        loop {
            if let Some(item) = d.pending.pop_front() {
                return Some((item, d));
            }
            if d.ended {
                return None;
            }
            match d.events.next().await {
                Some(Ok(event)) => match d.parser.feed(&event) {
                    Ok(Step::More(out)) => d.accept(out),
                    Ok(Step::Done(out)) => {
                        d.accept(out);
                        d.end(None);
                    }
                    Err(e) => d.end(Some(e)),
                },
                Some(Err(e)) => d.end(Some(e)),
                None => match d.parser.end() {
                    Ok(out) => {
                        d.accept(out);
                        d.end(None);
                    }
                    Err(e) => d.end(Some(e)),
                },
            }
        }
    }))
}

/// The state of [`chunks`]: the events, the parser, and what is ready to hand on.
struct Driver<P> {
    events: SseStream,
    parser: P,
    redactor: Redactor,
    /// The answer text's redactor, holding back a tail that could begin the key.
    text: StreamRedactor,
    pending: VecDeque<Result<StreamChunk, ModelError>>,
    ended: bool,
}

impl<P> Driver<P> {
    /// Queues the parser's chunks, redacted.
    fn accept(&mut self, out: Vec<StreamChunk>) {
        for chunk in out {
            match chunk {
                StreamChunk::Text(text) => {
                    let clean = self.text.push(text);
                    if !clean.is_empty() {
                        self.pending.push_back(Ok(StreamChunk::Text(clean)));
                    }
                }
                StreamChunk::ToolCall(call) => {
                    self.flush();
                    let call = self.redactor.tool_call(call);
                    self.pending.push_back(Ok(StreamChunk::ToolCall(call)));
                }
                done @ StreamChunk::Done { .. } => {
                    self.flush();
                    self.pending.push_back(Ok(done));
                }
            }
        }
    }

    /// Hands on the text held back: what follows cannot complete the key.
    fn flush(&mut self) {
        if self.text.holds() {
            let rest = self.text.finish();
            self.pending.push_back(Ok(StreamChunk::Text(rest)));
        }
    }

    /// Ends the stream, with `error` when it failed.
    fn end(&mut self, error: Option<ModelError>) {
        self.flush();
        if let Some(e) = error {
            let mut e = self.redactor.error(e);
            e.mid_stream = true;
            self.pending.push_back(Err(e));
        }
        self.ended = true;
    }
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
        let client = crate::web::client_builder()
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

    /// The response's server-sent events; a silence longer than the idle timeout between two
    /// reads ends the stream with a timeout error, an event larger than
    /// [`sse::MAX_EVENT_BYTES`] with a protocol error naming the cap.
    pub(crate) fn events(&self, response: reqwest::Response) -> SseStream {
        self.events_capped(response, sse::MAX_EVENT_BYTES)
    }

    /// [`HttpClient::events`] with another cap on one event (tests use a small one).
    pub(crate) fn events_capped(&self, response: reqwest::Response, cap: usize) -> SseStream {
        let reader = SseReader {
            body: Box::pin(response.bytes_stream()),
            decoder: sse::SseDecoder::with_cap(cap),
            backend: self.backend.clone(),
            idle: self.idle,
            redactor: self.redactor.clone(),
            ended: false,
            failure: None,
        };
        Box::pin(futures_util::stream::unfold(reader, |mut r| async move {
            let item = r.next().await?;
            Some((item, r))
        }))
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

/// Exponential backoff with jitter: between half and all of `BASE · 2^attempt`, capped at
/// [`MAX_RETRY_DELAY`].
fn backoff(attempt: u32) -> Duration {
    use rand::SeedableRng;
    // Jitter only needs to differ between clients: a generator seeded from a v4 UUID will do.
    let seed = uuid::Uuid::new_v4().as_u64_pair().0;
    crate::limits::Backoff {
        first: BASE_RETRY_DELAY,
        max: MAX_RETRY_DELAY,
        jitter: true,
    }
    .delay(attempt, &mut rand::rngs::ChaCha8Rng::seed_from_u64(seed))
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
