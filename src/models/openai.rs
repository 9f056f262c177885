//! OpenAI Chat Completions, and every server that speaks it: OpenAI itself, Ollama
//! (`http://localhost:11434/v1`), vLLM (`:8000/v1`), llama.cpp's `llama-server` (`:8080/v1`).
//!
//! `POST {base_url}/chat/completions` with `Authorization: Bearer <key>` when
//! `model.api_key_env` names a key (local servers need none). The body carries the whole
//! conversation — system, user, assistant turns with their `tool_calls` (a malformed call's
//! arguments go back exactly as the model wrote them), and `tool` messages, an error result's
//! content prefixed `error: ` — and `tools` when any are declared. Streaming asks for
//! `stream_options.include_usage`, reads `data:` chunks up to `[DONE]`, and assembles
//! `delta.tool_calls` per index *and* id: some compatible servers send every call at index 0,
//! so a new id at a known index starts a new call. A stream that ends after a `finish_reason`
//! but without `[DONE]` (some servers omit it) is complete; one that ends before is an error.
//! Unknown fields are ignored everywhere. `health_check` lists models (`GET /models`), which
//! costs no tokens.

use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::Deserialize;
use serde_json::json;

use super::base::{
    ChunkStream, MalformedArguments, Message, ModelBackend, ModelError, ModelErrorKind,
    ModelRequest, ModelResponse, StreamChunk, ToolCall, ToolSpec,
};
use super::http::{
    HttpClient, SseEvent, Step, StreamParser, base_url, chunks, join, kind_of_provider_error,
    secret_header,
};
use crate::config::ModelConfig;
use crate::events::{FinishReason, TokenUsage};

/// Where OpenAI is when `model.base_url` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// See the module docs.
#[derive(Debug, Clone)]
pub struct OpenAiBackend {
    name: String,
    http: HttpClient,
    base_url: String,
    headers: HeaderMap,
}

impl OpenAiBackend {
    /// A backend registered as `name`, configured by `model:`.
    pub fn from_config(name: &str, config: &ModelConfig) -> Result<Self, ModelError> {
        let mut headers = HeaderMap::new();
        let key = config
            .api_key()
            .map_err(|e| ModelError::new(name, ModelErrorKind::Config, e.to_string()))?;
        match key {
            Some(key) => {
                let value = secret_header(name, &format!("Bearer {}", key.expose()))?;
                headers.insert(AUTHORIZATION, value);
            }
            // OpenAI's own API (`model.base_url` unset or naming it) refuses every request
            // without a key: say so now, not at the first prompt. A server of one's own may
            // need none.
            None if base_url(config, DEFAULT_BASE_URL).starts_with(DEFAULT_BASE_URL) => {
                return Err(ModelError::new(
                    name,
                    ModelErrorKind::Config,
                    "OpenAI needs an API key: set model.api_key_env to the name of the variable \
                     that holds it (e.g. OPENAI_API_KEY) and export that variable, or point \
                     model.base_url at a server that needs none",
                ));
            }
            None => {}
        }
        Ok(OpenAiBackend {
            name: name.to_string(),
            http: HttpClient::new(name, config)?,
            base_url: base_url(config, DEFAULT_BASE_URL),
            headers,
        })
    }

    /// The Chat Completions body for `request`: the whole conversation, and the tools when
    /// any are declared (the key is left out otherwise: some compatible servers reject an empty
    /// list).
    fn body(request: &ModelRequest, stream: bool) -> serde_json::Value {
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if let Some(system) = &request.system {
            messages.push(json!({ "role": "system", "content": system }));
        }
        messages.extend(request.messages.iter().map(message));
        let mut body = json!({
            "model": request.model,
            "messages": messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "stream": stream,
        });
        if !request.tools.is_empty() {
            body["tools"] = request.tools.iter().map(tool).collect();
        }
        if stream {
            body["stream_options"] = json!({ "include_usage": true });
        }
        body
    }
}

/// One turn of the conversation as a Chat Completions message.
fn message(message: &Message) -> serde_json::Value {
    match message {
        Message::User(text) => json!({ "role": "user", "content": text }),
        Message::Assistant { text, tool_calls } => {
            // A turn of calls only has `null` content; a turn of nothing at all still needs
            // a content string.
            let content = if text.is_empty() && !tool_calls.is_empty() {
                serde_json::Value::Null
            } else {
                text.as_str().into()
            };
            let mut turn = json!({ "role": "assistant", "content": content });
            if !tool_calls.is_empty() {
                turn["tool_calls"] = tool_calls.iter().map(call).collect();
            }
            turn
        }
        Message::Tool(result) => {
            // The message has no error flag: the prefix is how the model can tell.
            let content = if result.is_error {
                format!("error: {}", result.content)
            } else {
                result.content.clone()
            };
            json!({ "role": "tool", "tool_call_id": result.call_id, "content": content })
        }
    }
}

/// A call the model made, as it goes back in the history: its arguments as JSON text, or a
/// malformed call's text exactly as the model wrote it.
fn call(call: &ToolCall) -> serde_json::Value {
    let arguments = match &call.arguments {
        Ok(value) => value.to_string(),
        Err(malformed) => malformed.raw.clone(),
    };
    json!({
        "id": call.id,
        "type": "function",
        "function": { "name": call.name, "arguments": arguments },
    })
}

/// A tool declaration.
fn tool(spec: &ToolSpec) -> serde_json::Value {
    json!({
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    })
}

#[async_trait::async_trait]
impl ModelBackend for OpenAiBackend {
    fn name(&self) -> &str {
        &self.name
    }

    async fn generate(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let started = tokio::time::Instant::now();
        let url = join(&self.base_url, "chat/completions");
        let response = self
            .http
            .post(&url, &self.headers, &Self::body(request, false))
            .await?;
        let value = self.http.json_body(response).await?;
        let redactor = self.http.redactor();
        let completion: Completion = serde_json::from_value(value).map_err(|e| {
            redactor.error(ModelError::new(
                &self.name,
                ModelErrorKind::Protocol,
                format!("unexpected completion shape: {e}"),
            ))
        })?;
        let choice = completion.choices.into_iter().next().ok_or_else(|| {
            ModelError::new(
                &self.name,
                ModelErrorKind::Protocol,
                "the completion has no choices",
            )
        })?;
        Ok(ModelResponse {
            text: redactor.answer(choice.message.content.unwrap_or_default()),
            model: completion.model.unwrap_or_else(|| request.model.clone()),
            finish_reason: finish_reason(choice.finish_reason.as_deref()),
            usage: completion.usage.map(Usage::tokens).unwrap_or_default(),
            latency: started.elapsed(),
        })
    }

    async fn stream(&self, request: &ModelRequest) -> Result<ChunkStream, ModelError> {
        let url = join(&self.base_url, "chat/completions");
        let response = self
            .http
            .post(&url, &self.headers, &Self::body(request, true))
            .await?;
        let request_id = super::http::request_id(response.headers());
        let events = self.http.events(response);
        let parser = ChatStream::new(&self.name, request_id);
        Ok(chunks(events, parser, self.http.redactor().clone()))
    }

    async fn health_check(&self) -> Result<(), ModelError> {
        let url = join(&self.base_url, "models");
        let response = self.http.get(&url, &self.headers).await?;
        self.http.json_body(response).await.map(|_| ())
    }
}

/// Chat Completions stream state.
#[derive(Debug)]
pub struct ChatStream {
    backend: String,
    request_id: Option<String>,
    finish: Option<FinishReason>,
    usage: TokenUsage,
    /// Calls being assembled, in the order they started.
    calls: Vec<PartialCall>,
    finished: bool,
}

#[derive(Debug)]
struct PartialCall {
    index: u64,
    id: String,
    name: String,
    arguments: String,
}

impl ChatStream {
    /// A parser for one response.
    pub fn new(backend: &str, request_id: Option<String>) -> Self {
        ChatStream {
            backend: backend.to_string(),
            request_id,
            finish: None,
            usage: TokenUsage::default(),
            calls: Vec::new(),
            finished: false,
        }
    }

    fn error(&self, kind: ModelErrorKind, message: String) -> ModelError {
        let mut e = ModelError::new(&self.backend, kind, message);
        e.request_id.clone_from(&self.request_id);
        e
    }

    /// The assembled tool calls and the final chunk.
    fn complete(&mut self) -> Result<Vec<StreamChunk>, ModelError> {
        self.finished = true;
        let mut out = Vec::new();
        for call in std::mem::take(&mut self.calls) {
            let arguments = MalformedArguments::parse(call.arguments);
            out.push(StreamChunk::ToolCall(ToolCall {
                id: call.id,
                name: call.name,
                arguments,
            }));
        }
        out.push(StreamChunk::Done {
            finish_reason: self.finish.clone().unwrap_or(FinishReason::Stop),
            usage: self.usage,
        });
        Ok(out)
    }
}

impl StreamParser for ChatStream {
    fn feed(&mut self, event: &SseEvent) -> Result<Step, ModelError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return self.complete().map(Step::Done);
        }
        if data.is_empty() {
            return Ok(Step::More(Vec::new()));
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            self.error(
                ModelErrorKind::Protocol,
                format!(
                    "a stream chunk is not valid JSON ({e}): {}",
                    crate::sanitize::excerpt(data, 120)
                ),
            )
        })?;
        if let Some(err) = chunk.error {
            let kind = err
                .kind
                .as_deref()
                .or(err.code.as_deref())
                .map_or(ModelErrorKind::Server, kind_of_provider_error);
            return Err(self.error(
                kind,
                format!(
                    "the server reported an error mid-stream: {}",
                    err.message.unwrap_or_default()
                ),
            ));
        }
        if let Some(usage) = chunk.usage {
            self.usage = usage.tokens();
        }
        let mut out = Vec::new();
        for choice in chunk.choices {
            if choice.index != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    out.push(StreamChunk::Text(text));
                }
                for d in delta.tool_calls {
                    let index = d.index.unwrap_or(0);
                    let continues = self
                        .calls
                        .iter()
                        .rposition(|c| c.index == index)
                        .filter(|&i| d.id.as_ref().is_none_or(|id| *id == self.calls[i].id));
                    let call = match continues {
                        Some(i) => &mut self.calls[i],
                        None => {
                            self.calls.push(PartialCall {
                                index,
                                id: d.id.clone().unwrap_or_else(|| format!("call_{index}")),
                                name: String::new(),
                                arguments: String::new(),
                            });
                            let last = self.calls.len() - 1;
                            &mut self.calls[last]
                        }
                    };
                    if let Some(f) = d.function {
                        if let Some(name) = f.name {
                            call.name.push_str(&name);
                        }
                        if let Some(args) = f.arguments {
                            call.arguments.push_str(&args);
                        }
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(finish_reason(Some(&reason)));
            }
        }
        Ok(Step::More(out))
    }

    fn end(&mut self) -> Result<Vec<StreamChunk>, ModelError> {
        if self.finished {
            return Ok(Vec::new());
        }
        if self.finish.is_some() {
            // Complete but for `[DONE]`, which some compatible servers never send.
            return self.complete();
        }
        Err(self.error(
            ModelErrorKind::Protocol,
            "the stream ended before the answer finished (no finish_reason, no [DONE])".into(),
        ))
    }
}

pub(crate) fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        None | Some("stop") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<StreamError>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StreamError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl Usage {
    fn tokens(self) -> TokenUsage {
        TokenUsage {
            input: self.prompt_tokens,
            output: self.completion_tokens,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<CompletionChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
struct CompletionChoice {
    message: CompletionMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CompletionMessage {
    #[serde(default)]
    content: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::models::base::tool_conversation;

    #[test]
    fn the_body_carries_the_whole_conversation_and_the_tools() {
        let body = OpenAiBackend::body(&tool_conversation(), true);
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Check power and thermal."},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_a", "type": "function",
                     "function": {"name": "get_power", "arguments": "{\"zone\":\"hab-1\"}"}},
                    {"id": "call_b", "type": "function",
                     "function": {"name": "get_thermal", "arguments": "{\"zone\": hab"}},
                ]},
                {"role": "tool", "tool_call_id": "call_a", "content": "{\"kw\":4.2}"},
                {"role": "tool", "tool_call_id": "call_b",
                 "content": "error: the arguments are not JSON"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_c", "type": "function",
                     "function": {"name": "ping", "arguments": "{}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_c", "content": "pong"},
            ])
        );
        assert_eq!(
            body["tools"][0],
            json!({"type": "function", "function": {
                "name": "get_power",
                "description": "Reads get_power.",
                "parameters": {"type": "object", "properties": {}},
            }})
        );
        assert_eq!(body["tools"].as_array().map(Vec::len), Some(3));
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
    }

    #[test]
    fn without_tools_the_key_is_left_out() {
        let request = ModelRequest::new("m", None, "hello", 0.0, 8);
        let body = OpenAiBackend::body(&request, false);
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [{"role": "user", "content": "hello"}],
                "temperature": 0.0,
                "max_tokens": 8,
                "stream": false,
            })
        );
    }
}
