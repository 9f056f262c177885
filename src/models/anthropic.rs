//! Anthropic Messages: `POST {base_url}/messages` with `x-api-key` and
//! `anthropic-version: 2023-06-01`.
//!
//! The body carries the system prompt in `system`, the conversation as alternating `user` /
//! `assistant` messages — an assistant turn is a `text` block (when it has text) and one
//! `tool_use` block per call (a malformed call's `input` is `{}`); tool results are
//! `tool_result` blocks (`is_error` set for a failed or refused call), consecutive ones merged
//! into one `user` message — and `tools` (`name`, `description`, `input_schema`) when any are
//! declared.
//!
//! The stream is `message_start` (input tokens), `content_block_start` / `content_block_delta`
//! / `content_block_stop` per block (`text_delta` text is streamed as it comes;
//! `input_json_delta` pieces of a `tool_use` block are concatenated and parsed at the block's
//! stop), `message_delta` (stop reason and cumulative output tokens), `message_stop`. `ping` and
//! event types this version does not know are ignored; a mid-stream `error` event ends the
//! stream with its kind (`overloaded_error` → overloaded, …). `health_check` lists models
//! (`GET /models`), which costs no tokens.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::json;

use super::base::{
    ChunkStream, MalformedArguments, Message, ModelBackend, ModelError, ModelErrorKind,
    ModelRequest, StreamChunk, ToolCall,
};
use super::http::{
    HttpClient, SseEvent, Step, StreamParser, base_url, chunks, join, kind_of_provider_error,
    secret_header,
};
use crate::config::ModelConfig;
use crate::events::{FinishReason, TokenUsage};

/// Where Anthropic is when `model.base_url` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com/v1";
/// The API version this client speaks.
pub const API_VERSION: &str = "2023-06-01";

/// See the module docs.
#[derive(Debug, Clone)]
pub struct AnthropicBackend {
    name: String,
    http: HttpClient,
    base_url: String,
    headers: HeaderMap,
}

impl AnthropicBackend {
    /// A backend registered as `name`, configured by `model:`; needs `model.api_key_env`.
    pub fn from_config(name: &str, config: &ModelConfig) -> Result<Self, ModelError> {
        let config_error = |m: String| ModelError::new(name, ModelErrorKind::Config, m);
        let key = config
            .api_key()
            .map_err(|e| config_error(e.to_string()))?
            .ok_or_else(|| {
                config_error(
                    "Anthropic needs an API key: set model.api_key_env to the name of the \
                     variable that holds it (e.g. ANTHROPIC_API_KEY) and export that variable"
                        .into(),
                )
            })?;
        let mut headers = HeaderMap::new();
        let value = secret_header(name, key.expose())?;
        headers.insert("x-api-key", value);
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        Ok(AnthropicBackend {
            name: name.to_string(),
            http: HttpClient::new(name, config)?,
            base_url: base_url(config, DEFAULT_BASE_URL),
            headers,
        })
    }
}

#[async_trait::async_trait]
impl ModelBackend for AnthropicBackend {
    fn name(&self) -> &str {
        &self.name
    }

    async fn stream(&self, request: &ModelRequest) -> Result<ChunkStream, ModelError> {
        let body = body(request);
        let url = join(&self.base_url, "messages");
        let response = self.http.post(&url, &self.headers, &body).await?;
        let request_id = super::http::request_id(response.headers());
        let events = self.http.events(response);
        Ok(chunks(
            events,
            MessageStream::new(&self.name, request_id),
            self.http.redactor().clone(),
        ))
    }

    async fn health_check(&self) -> Result<(), ModelError> {
        let url = join(&self.base_url, "models");
        let response = self.http.get(&url, &self.headers).await?;
        self.http.json_body(response).await.map(|_| ())
    }
}

/// The Messages body for `request` (always streamed): the system prompt in its own field, the
/// conversation as alternating `user` / `assistant` messages, and the tools when any are
/// declared.
fn body(request: &ModelRequest) -> serde_json::Value {
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature.min(1.0),
        "messages": messages(&request.messages),
        "stream": true,
    });
    if let Some(system) = &request.system {
        body["system"] = system.clone().into();
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|spec| {
                json!({
                    "name": spec.name,
                    "description": spec.description,
                    "input_schema": spec.parameters,
                })
            })
            .collect();
    }
    body
}

/// The conversation as Messages: tool results travel as `tool_result` blocks of a `user`
/// message, and consecutive turns of one role merge into one message (the API requires the
/// roles to alternate). A message of one text block is sent as a plain string.
fn messages(conversation: &[Message]) -> Vec<serde_json::Value> {
    let mut merged: Vec<(&str, Vec<serde_json::Value>)> = Vec::new();
    for message in conversation {
        let (role, blocks) = match message {
            Message::User(text) => ("user", vec![json!({ "type": "text", "text": text })]),
            Message::Assistant { text, tool_calls } => {
                let mut blocks = Vec::with_capacity(tool_calls.len() + 1);
                if !text.is_empty() {
                    blocks.push(json!({ "type": "text", "text": text }));
                }
                blocks.extend(tool_calls.iter().map(tool_use));
                ("assistant", blocks)
            }
            Message::Tool(result) => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": result.call_id,
                    "content": result.content,
                    "is_error": result.is_error,
                })],
            ),
        };
        // An empty turn is left out (the API rejects empty content); its neighbours merge.
        if blocks.is_empty() {
            continue;
        }
        match merged.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => merged.push((role, blocks)),
        }
    }
    merged
        .into_iter()
        .map(|(role, blocks)| {
            let text = match blocks.as_slice() {
                [only] if only.get("type").and_then(serde_json::Value::as_str) == Some("text") => {
                    only.get("text").cloned()
                }
                _ => None,
            };
            let content = text.unwrap_or_else(|| serde_json::Value::Array(blocks));
            json!({ "role": role, "content": content })
        })
        .collect()
}

/// A call the model made, as a `tool_use` block. `input` must be an object: a malformed call's
/// arguments (or any non-object) become `{}`, and the tool result says what was wrong.
fn tool_use(call: &ToolCall) -> serde_json::Value {
    let input = match &call.arguments {
        Ok(value @ serde_json::Value::Object(_)) => value.clone(),
        Ok(_) | Err(_) => json!({}),
    };
    json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": input })
}

/// Messages stream state.
#[derive(Debug)]
pub struct MessageStream {
    backend: String,
    request_id: Option<String>,
    usage: TokenUsage,
    stop: Option<FinishReason>,
    /// Open `tool_use` blocks by index: id, name, JSON so far.
    tools: BTreeMap<u64, (String, String, String)>,
    finished: bool,
}

impl MessageStream {
    /// A parser for one response.
    pub fn new(backend: &str, request_id: Option<String>) -> Self {
        MessageStream {
            backend: backend.to_string(),
            request_id,
            usage: TokenUsage::default(),
            stop: None,
            tools: BTreeMap::new(),
            finished: false,
        }
    }

    fn error(&self, kind: ModelErrorKind, message: String) -> ModelError {
        let mut e = ModelError::new(&self.backend, kind, message);
        e.request_id.clone_from(&self.request_id);
        e
    }

    fn parse<T: for<'de> Deserialize<'de>>(&self, event: &SseEvent) -> Result<T, ModelError> {
        serde_json::from_str(&event.data).map_err(|e| {
            self.error(
                ModelErrorKind::Protocol,
                format!(
                    "a '{}' event is not what the API documents ({e})",
                    event.event
                ),
            )
        })
    }
}

impl StreamParser for MessageStream {
    fn feed(&mut self, event: &SseEvent) -> Result<Step, ModelError> {
        let mut out = Vec::new();
        match event.event.as_str() {
            "message_start" => {
                let start: MessageStart = self.parse(event)?;
                self.usage.input = start.message.usage.input_tokens.unwrap_or(0);
                self.usage.output = start.message.usage.output_tokens.unwrap_or(0);
            }
            "content_block_start" => {
                let start: BlockStart = self.parse(event)?;
                if start.content_block.kind == "tool_use" {
                    self.tools.insert(
                        start.index,
                        (
                            start.content_block.id.unwrap_or_default(),
                            start.content_block.name.unwrap_or_default(),
                            String::new(),
                        ),
                    );
                } else if let Some(text) = start.content_block.text.filter(|t| !t.is_empty()) {
                    out.push(StreamChunk::Text(text));
                }
            }
            "content_block_delta" => {
                let delta: BlockDelta = self.parse(event)?;
                match delta.delta.kind.as_str() {
                    "text_delta" => {
                        if let Some(text) = delta.delta.text.filter(|t| !t.is_empty()) {
                            out.push(StreamChunk::Text(text));
                        }
                    }
                    "input_json_delta" => {
                        if let Some((_, _, json)) = self.tools.get_mut(&delta.index) {
                            json.push_str(&delta.delta.partial_json.unwrap_or_default());
                        }
                    }
                    // thinking_delta, signature_delta, citations_delta, and what comes next.
                    _ => {}
                }
            }
            "content_block_stop" => {
                let stop: BlockStop = self.parse(event)?;
                if let Some((id, name, json)) = self.tools.remove(&stop.index) {
                    let arguments = MalformedArguments::parse(json);
                    out.push(StreamChunk::ToolCall(ToolCall {
                        id,
                        name,
                        arguments,
                    }));
                }
            }
            "message_delta" => {
                let delta: MessageDelta = self.parse(event)?;
                if let Some(reason) = delta.delta.stop_reason {
                    self.stop = Some(stop_reason(&reason));
                }
                if let Some(usage) = delta.usage {
                    // Cumulative: the latest count is the count.
                    if let Some(o) = usage.output_tokens {
                        self.usage.output = o;
                    }
                    if let Some(i) = usage.input_tokens {
                        self.usage.input = i;
                    }
                }
            }
            "message_stop" => {
                self.finished = true;
                out.push(StreamChunk::Done {
                    finish_reason: self.stop.clone().unwrap_or(FinishReason::Stop),
                    usage: self.usage,
                });
                return Ok(Step::Done(out));
            }
            "error" => {
                let error: ErrorEvent = self.parse(event)?;
                return Err(self.error(
                    kind_of_provider_error(&error.error.kind),
                    format!(
                        "the server reported an error mid-stream ({}): {}",
                        error.error.kind, error.error.message
                    ),
                ));
            }
            // `ping`, and event types added after this version.
            _ => {}
        }
        Ok(Step::More(out))
    }

    fn end(&mut self) -> Result<Vec<StreamChunk>, ModelError> {
        if self.finished {
            return Ok(Vec::new());
        }
        Err(self.error(
            ModelErrorKind::Protocol,
            "the stream ended before message_stop".into(),
        ))
    }
}

fn stop_reason(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct MessageStart {
    message: StartMessage,
}

#[derive(Debug, Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: UsageCounts,
}

#[derive(Debug, Default, Deserialize)]
struct UsageCounts {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct BlockStart {
    index: u64,
    content_block: ContentBlock,
}

#[derive(Debug, Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BlockDelta {
    index: u64,
    delta: DeltaBody,
}

#[derive(Debug, Deserialize)]
struct DeltaBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BlockStop {
    index: u64,
}

#[derive(Debug, Deserialize)]
struct MessageDelta {
    delta: MessageDeltaBody,
    #[serde(default)]
    usage: Option<UsageCounts>,
}

#[derive(Debug, Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorEvent {
    error: ErrorBody,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::models::base::tool_conversation;

    #[test]
    fn the_body_alternates_roles_and_merges_tool_results() {
        let body = body(&tool_conversation());
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Check power and thermal."},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_a", "name": "get_power",
                     "input": {"zone": "hab-1"}},
                    {"type": "tool_use", "id": "call_b", "name": "get_thermal", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_a", "content": "{\"kw\":4.2}",
                     "is_error": false},
                    {"type": "tool_result", "tool_use_id": "call_b",
                     "content": "the arguments are not JSON", "is_error": true},
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_c", "name": "ping", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_c", "content": "pong",
                     "is_error": false},
                ]},
            ])
        );
        assert_eq!(
            body["tools"][0],
            json!({
                "name": "get_power",
                "description": "Reads get_power.",
                "input_schema": {"type": "object", "properties": {}},
            })
        );
        assert_eq!(body["tools"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn without_tools_the_key_is_left_out() {
        let request = ModelRequest::new("m", None, "hello", 1.5, 8);
        assert_eq!(
            body(&request),
            json!({
                "model": "m",
                "max_tokens": 8,
                "temperature": 1.0,
                "messages": [{"role": "user", "content": "hello"}],
                "stream": true,
            })
        );
    }

    #[test]
    fn an_operator_message_after_tool_results_joins_their_user_message() {
        let mut request = ModelRequest::new("m", None, "first", 0.0, 8);
        request.messages.extend([
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: "t1".into(),
                    name: "ping".into(),
                    arguments: Ok(json!([1])),
                }],
            },
            Message::Tool(crate::models::ToolResult {
                call_id: "t1".into(),
                name: "ping".into(),
                content: "pong".into(),
                is_error: false,
            }),
            Message::User("and now?".into()),
            // An empty turn is left out; the user turns around it merge.
            Message::Assistant {
                text: String::new(),
                tool_calls: Vec::new(),
            },
            Message::User("hello?".into()),
        ]);
        assert_eq!(
            body(&request)["messages"],
            json!([
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "ping", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "pong",
                     "is_error": false},
                    {"type": "text", "text": "and now?"},
                    {"type": "text", "text": "hello?"},
                ]},
            ])
        );
    }
}
