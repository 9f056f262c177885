//! The HTTP backends against a local server (wiremock on 127.0.0.1) replaying real-format
//! transcripts: text and tool-call streams of both providers, tool round trips (the call and
//! its result sent back in the next request), malformed tool-call arguments, usage, a missing
//! `[DONE]`, a truncated stream, a malformed chunk, mid-stream errors, 429 with `retry-after`
//! then success, 500 until the retries run out, 401, a spend limit, and a server too slow to
//! answer.
//!
//! A scenario both providers share (text stream, tool round trip, mid-stream error, 401, a key
//! split over two deltas, malformed tool arguments) is written once over a [`Provider`], the
//! description of one wire format, and runs as `<scenario>::openai` and `<scenario>::anthropic`;
//! what only one provider does keeps its own test.
//!
//! Retry delays here are the few milliseconds the server asks for (`retry-after-ms`), so the
//! tests run on the real clock: tokio's paused clock would fire the idle timeout while the
//! client waits on a real socket. The backoff arithmetic itself is unit-tested in
//! `src/models/http.rs`.

use std::time::Duration;

use futures_util::StreamExt;
use veyra::config::ModelConfig;
use veyra::events::{FinishReason, TokenUsage};
use veyra::models::anthropic::AnthropicBackend;
use veyra::models::openai::OpenAiBackend;
use veyra::models::{
    Message, ModelBackend, ModelError, ModelErrorKind, ModelRequest, StreamChunk, ToolCall,
    ToolResult, ToolSpec,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A key no output may ever contain.
const SENTINEL: &str = "sk-veyra-SENTINEL-7f3a9c";
const KEY_VAR: &str = "VEYRA_TEST_BACKENDS_KEY";

fn set_key() {
    // Every test sets the same value, so parallel tests cannot disagree.
    // SAFETY: set once per test before any backend reads it; all writers write the same value.
    unsafe { std::env::set_var(KEY_VAR, SENTINEL) };
}

fn config(server: &MockServer, retries: u32, timeout: u64) -> ModelConfig {
    set_key();
    ModelConfig {
        base_url: Some(format!("{}/v1", server.uri())),
        api_key_env: Some(KEY_VAR.into()),
        retries,
        timeout,
        ..ModelConfig::default()
    }
}

fn request() -> ModelRequest {
    ModelRequest::new(
        "test-model",
        Some("Be brief.".into()),
        "Status of the habitat?",
        0.2,
        64,
    )
}

fn sse(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "text/event-stream")
}

/// `data:` lines from JSON chunks, then `[DONE]` when asked.
fn openai_stream(chunks: &[&str], done: bool) -> String {
    let mut out = String::new();
    for c in chunks {
        out.push_str(&format!("data: {c}\n\n"));
    }
    if done {
        out.push_str("data: [DONE]\n\n");
    }
    out
}

/// What a stream delivered: its text, its tool calls, its final chunk, the error that ended it.
type Collected = (
    String,
    Vec<ToolCall>,
    Option<(FinishReason, TokenUsage)>,
    Option<ModelError>,
);

/// Collects the stream of the standard [`request`].
async fn collect(backend: &dyn ModelBackend) -> Collected {
    collect_for(backend, &request()).await
}

/// Collects a stream: every chunk until the end, or the error that ended it.
async fn collect_for(backend: &dyn ModelBackend, request: &ModelRequest) -> Collected {
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut done = None;
    let mut stream = match backend.stream(request).await {
        Ok(s) => s,
        Err(e) => return (text, calls, done, Some(e)),
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamChunk::Text(t)) => text.push_str(&t),
            Ok(StreamChunk::ToolCall(c)) => calls.push(c),
            Ok(StreamChunk::Done {
                finish_reason,
                usage,
            }) => done = Some((finish_reason, usage)),
            Err(e) => return (text, calls, done, Some(e)),
        }
    }
    (text, calls, done, None)
}

fn assert_no_key(e: &ModelError) {
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(SENTINEL),
        "the key leaked into an error: {shown}"
    );
}

const TEXT_CHUNKS: [&str; 4] = [
    r#"{"id":"c1","object":"chat.completion.chunk","model":"test-model","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"All systems"},"finish_reason":null}],"usage":null,"system_fingerprint":"fp_x"}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" nominal."},"finish_reason":"stop"}],"usage":null}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}}"#,
];

#[tokio::test]
async fn openai_tool_calls_are_assembled_per_index_and_id() {
    let chunks = [
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_power","arguments":""}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"zone\":"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"hab-1\"}"}}]}}]}"#,
        // A compatible server that numbers every call 0: a new id is a new call.
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_b","type":"function","function":{"name":"get_thermal","arguments":"{}"}}]}}]}"#,
        // A parallel call at its own index.
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_c","function":{"name":"ping","arguments":""}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":22}}"#,
    ];
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(sse(&openai_stream(&chunks, true)))
        .mount(&server)
        .await;
    let backend = OpenAiBackend::from_config("openai", &config(&server, 0, 10)).unwrap();
    let (text, calls, done, error) = collect(&backend).await;
    assert_eq!(error, None);
    assert_eq!(text, "");
    let got: Vec<(&str, &str, serde_json::Value)> = calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.clone().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("call_a", "get_power", serde_json::json!({"zone": "hab-1"})),
            ("call_b", "get_thermal", serde_json::json!({})),
            ("call_c", "ping", serde_json::json!({})),
        ]
    );
    assert_eq!(done.unwrap().0, FinishReason::ToolCalls);
}

#[tokio::test]
async fn a_missing_done_after_finish_is_complete_but_a_truncated_stream_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(sse(&openai_stream(&TEXT_CHUNKS, false)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(sse(&openai_stream(&TEXT_CHUNKS[..2], false)))
        .mount(&server)
        .await;
    let backend = OpenAiBackend::from_config("openai", &config(&server, 0, 10)).unwrap();
    let (text, _, done, error) = collect(&backend).await;
    assert_eq!(error, None);
    assert_eq!(text, "All systems nominal.");
    assert_eq!(done.unwrap().1.output, 4);

    let (text, _, done, error) = collect(&backend).await;
    assert_eq!(text, "All systems", "what came before the cut is kept");
    assert_eq!(done, None);
    let e = error.expect("truncated");
    assert_eq!(e.kind, ModelErrorKind::Protocol);
    assert!(
        e.message.contains("ended before the answer finished"),
        "{e}"
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after-ms", "20")
                .insert_header("x-request-id", "req_429")
                .set_body_json(serde_json::json!({"error": {"message": "Rate limit reached", "type": "requests"}})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(sse(&openai_stream(&TEXT_CHUNKS, true)))
        .expect(1)
        .mount(&server)
        .await;
    let backend = OpenAiBackend::from_config("openai", &config(&server, 2, 10)).unwrap();
    let (text, _, _, error) = collect(&backend).await;
    assert_eq!(error, None);
    assert_eq!(text, "All systems nominal.");
}

#[tokio::test]
async fn server_errors_are_retried_until_the_limit_then_reported() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500)
                .insert_header("retry-after-ms", "5")
                .insert_header("x-request-id", "req_500")
                .set_body_json(serde_json::json!({"error": {"message": "Internal error", "type": "server_error"}})),
        )
        .expect(3)
        .mount(&server)
        .await;
    let backend = OpenAiBackend::from_config("openai", &config(&server, 2, 10)).unwrap();
    let (_, _, _, error) = collect(&backend).await;
    let e = error.expect("gave up");
    assert_eq!(e.kind, ModelErrorKind::Server);
    assert_eq!(e.request_id.as_deref(), Some("req_500"));
    assert!(e.to_string().contains("HTTP 500: Internal error"), "{e}");
    assert_no_key(&e);
}

#[tokio::test]
async fn a_server_too_slow_to_answer_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(sse(&openai_stream(&TEXT_CHUNKS, true)).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let backend = OpenAiBackend::from_config("openai", &config(&server, 0, 1)).unwrap();
    let (_, _, _, error) = collect(&backend).await;
    let e = error.expect("timeout");
    assert_eq!(e.kind, ModelErrorKind::Timeout);
    assert!(e.message.contains("within 1 s"), "{e}");
}

#[tokio::test]
async fn nothing_listening_is_a_connection_error_naming_the_server() {
    // A port that was just free: bind, read it, drop.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    set_key();
    let config = ModelConfig {
        base_url: Some(format!("http://127.0.0.1:{port}/v1")),
        retries: 0,
        ..ModelConfig::default()
    };
    let backend = OpenAiBackend::from_config("openai", &config).unwrap();
    let (_, _, _, error) = collect(&backend).await;
    let e = error.expect("refused");
    assert_eq!(e.kind, ModelErrorKind::Connection);
    assert!(e.message.contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn openai_generate_and_health_check() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "c2", "object": "chat.completion", "model": "test-model-0613",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Nominal."}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"object": "list", "data": [{"id": "test-model"}]}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let backend = OpenAiBackend::from_config("openai", &config(&server, 0, 10)).unwrap();
    let r = backend.generate(&request()).await.unwrap();
    assert_eq!(
        (r.text.as_str(), r.model.as_str(), r.finish_reason, r.usage),
        (
            "Nominal.",
            "test-model-0613",
            FinishReason::Length,
            TokenUsage {
                input: 9,
                output: 2
            }
        )
    );
    backend.health_check().await.unwrap();
}

fn anthropic_stream(events: &[(&str, &str)]) -> String {
    events
        .iter()
        .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
        .collect()
}

const ANTHROPIC_TEXT: [(&str, &str); 9] = [
    (
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-test","stop_reason":null,"usage":{"input_tokens":25,"output_tokens":1}}}"#,
    ),
    (
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    ),
    ("ping", r#"{"type":"ping"}"#),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" from Earth."}}"#,
    ),
    (
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    ),
    (
        "some_future_event",
        r#"{"type":"some_future_event","whatever":true}"#,
    ),
    (
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
    ),
    ("message_stop", r#"{"type":"message_stop"}"#),
];

#[tokio::test]
async fn anthropic_tool_use_input_is_assembled_at_block_stop() {
    let events = [
        ANTHROPIC_TEXT[0],
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_power","input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"zone\": \"ha"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"b-1\"}"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":40}}"#,
        ),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ];
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(sse(&anthropic_stream(&events)))
        .mount(&server)
        .await;
    let backend = AnthropicBackend::from_config("anthropic", &config(&server, 0, 10)).unwrap();
    let (text, calls, done, error) = collect(&backend).await;
    assert_eq!(error, None);
    assert_eq!(text, "Checking.");
    assert_eq!(
        calls,
        [ToolCall {
            id: "toolu_01".into(),
            name: "get_power".into(),
            arguments: Ok(serde_json::json!({"zone": "hab-1"})),
        }]
    );
    assert_eq!(
        done.unwrap(),
        (
            FinishReason::ToolCalls,
            TokenUsage {
                input: 25,
                output: 40
            }
        )
    );
}

#[tokio::test]
async fn anthropic_without_a_key_is_a_configuration_error() {
    let config = ModelConfig {
        api_key_env: None,
        ..ModelConfig::default()
    };
    let e = AnthropicBackend::from_config("anthropic", &config).unwrap_err();
    assert_eq!(e.kind, ModelErrorKind::Config);
    assert!(e.message.contains("model.api_key_env"), "{e}");
    let config = ModelConfig {
        api_key_env: Some("VEYRA_TEST_SURELY_UNSET_KEY".into()),
        ..ModelConfig::default()
    };
    let e = AnthropicBackend::from_config("anthropic", &config).unwrap_err();
    assert!(e.message.contains("VEYRA_TEST_SURELY_UNSET_KEY"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Tool round trips: the model calls a tool, the caller sends the result back in the next request.

/// The standard request with one tool declared.
fn tool_request() -> ModelRequest {
    let mut req = request();
    req.tools = vec![ToolSpec {
        name: "get_power".into(),
        description: "Reads a zone's power draw.".into(),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {"zone": {"type": "string"}},
            "required": ["zone"],
        }),
    }];
    req
}

/// `req` followed by the model's turn of `calls` and one result per call (`"4.2 kW"`).
fn follow_up(mut req: ModelRequest, text: &str, calls: Vec<ToolCall>) -> ModelRequest {
    let results: Vec<Message> = calls
        .iter()
        .map(|c| {
            Message::Tool(ToolResult {
                call_id: c.id.clone(),
                name: c.name.clone(),
                content: "4.2 kW".into(),
                is_error: false,
            })
        })
        .collect();
    req.messages.push(Message::Assistant {
        text: text.into(),
        tool_calls: calls,
    });
    req.messages.extend(results);
    req
}

/// The JSON bodies the server received, in order.
async fn bodies(server: &MockServer) -> Vec<serde_json::Value> {
    server
        .received_requests()
        .await
        .expect("recording is on")
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
        .collect()
}

/// An Anthropic answer that calls `get_power` with input streamed as `pieces`.
fn anthropic_tool_use(pieces: &[&str]) -> String {
    let mut events = vec![
        ANTHROPIC_TEXT[0].0.to_string(),
        ANTHROPIC_TEXT[0].1.to_string(),
        "content_block_start".into(),
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_pw","name":"get_power","input":{}}}"#.into(),
    ];
    for piece in pieces {
        events.push("content_block_delta".into());
        events.push(
            serde_json::json!({
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            })
            .to_string(),
        );
    }
    events.extend([
        "content_block_stop".into(),
        r#"{"type":"content_block_stop","index":0}"#.into(),
        "message_delta".into(),
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":20}}"#.into(),
        "message_stop".into(),
        r#"{"type":"message_stop"}"#.into(),
    ]);
    let pairs: Vec<(&str, &str)> = events
        .chunks(2)
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect();
    anthropic_stream(&pairs)
}

// ---------------------------------------------------------------------------------------------
// One scenario, both providers: each wire format is described once in a `Provider`, each
// scenario is written once over it, and `for_each_provider!` runs it as `<scenario>::openai`
// and `<scenario>::anthropic`, so a failure names the provider.

/// What a scenario needs to know about one provider's wire format.
struct Provider {
    /// The backend's registered name.
    name: &'static str,
    /// The endpoint the backend posts to, under the mock server.
    path: &'static str,
    /// The backend, configured by `config`.
    backend: fn(&ModelConfig) -> Box<dyn ModelBackend>,
    /// Headers every request must carry: the key, and the API version where there is one.
    headers: fn() -> Vec<(&'static str, String)>,
    /// The canonical text answer as streamed, its text and its usage.
    text_stream: fn() -> String,
    text: &'static str,
    usage: TokenUsage,
    /// The provider's own checks of the body sent for the standard [`request`].
    check_request_body: fn(&serde_json::Value),
    /// A normal answer streamed as these text deltas.
    deltas: fn(&[&str]) -> String,
    /// An answer that calls `get_power` with its arguments streamed as these pieces; the id of
    /// that call.
    tool_call: fn(&[&str]) -> String,
    call_id: &'static str,
    /// The text the caller's assistant turn carries in the tool round trip.
    follow_up_text: &'static str,
    /// The provider's own checks of the two bodies of the tool round trip.
    check_round_trip: fn(&[serde_json::Value]),
    /// An answer that starts with `mid_stream_text`, then an error event: its kind, its words.
    mid_stream_error: fn() -> String,
    mid_stream_text: &'static str,
    mid_stream_kind: ModelErrorKind,
    mid_stream_message: &'static str,
    /// The body of a 401 refusing the key.
    auth_failure: fn() -> serde_json::Value,
}

static OPENAI: Provider = Provider {
    name: "openai",
    path: "/v1/chat/completions",
    backend: |config| Box::new(OpenAiBackend::from_config("openai", config).unwrap()),
    headers: || vec![("authorization", format!("Bearer {SENTINEL}"))],
    text_stream: || openai_stream(&TEXT_CHUNKS, true),
    text: "All systems nominal.",
    usage: TokenUsage {
        input: 12,
        output: 4,
    },
    check_request_body: |sent| {
        assert_eq!(sent["stream"], true);
        assert_eq!(sent["stream_options"]["include_usage"], true);
        assert_eq!(sent["messages"][0]["role"], "system");
        assert_eq!(sent["messages"][1]["content"], "Status of the habitat?");
    },
    deltas: openai_deltas,
    tool_call: openai_tool_call,
    call_id: "call_pw",
    follow_up_text: "",
    check_round_trip: |sent| {
        for body in sent {
            assert_eq!(body["tools"][0]["type"], "function");
            assert_eq!(body["tools"][0]["function"]["name"], "get_power");
            assert_eq!(
                body["tools"][0]["function"]["parameters"]["required"],
                serde_json::json!(["zone"])
            );
        }
        assert_eq!(
            sent[1]["messages"],
            serde_json::json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Status of the habitat?"},
                {"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_pw",
                    "type": "function",
                    "function": {"name": "get_power", "arguments": "{\"zone\":\"hab-1\"}"},
                }]},
                {"role": "tool", "tool_call_id": "call_pw", "content": "4.2 kW"},
            ])
        );
    },
    mid_stream_error: || {
        openai_stream(
            &[
                TEXT_CHUNKS[1],
                r#"{"error":{"message":"The server had an error","type":"server_error"}}"#,
            ],
            false,
        )
    },
    mid_stream_text: "All systems",
    mid_stream_kind: ModelErrorKind::Server,
    mid_stream_message: "The server had an error",
    auth_failure: || serde_json::json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}),
};

static ANTHROPIC: Provider = Provider {
    name: "anthropic",
    path: "/v1/messages",
    backend: |config| Box::new(AnthropicBackend::from_config("anthropic", config).unwrap()),
    headers: || {
        vec![
            ("x-api-key", SENTINEL.to_string()),
            ("anthropic-version", "2023-06-01".to_string()),
        ]
    },
    text_stream: || anthropic_stream(&ANTHROPIC_TEXT),
    text: "Hello from Earth.",
    usage: TokenUsage {
        input: 25,
        output: 15,
    },
    check_request_body: |sent| {
        assert_eq!(sent["system"], "Be brief.");
        assert_eq!(sent["max_tokens"], 64);
    },
    deltas: anthropic_deltas,
    tool_call: anthropic_tool_use,
    call_id: "toolu_pw",
    follow_up_text: "Reading the meter.",
    check_round_trip: |sent| {
        for body in sent {
            assert_eq!(body["tools"][0]["name"], "get_power");
            assert_eq!(
                body["tools"][0]["input_schema"]["required"],
                serde_json::json!(["zone"])
            );
        }
        assert_eq!(sent[1]["system"], "Be brief.");
        assert_eq!(
            sent[1]["messages"],
            serde_json::json!([
                {"role": "user", "content": "Status of the habitat?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Reading the meter."},
                    {"type": "tool_use", "id": "toolu_pw", "name": "get_power",
                     "input": {"zone": "hab-1"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_pw", "content": "4.2 kW",
                     "is_error": false},
                ]},
            ])
        );
    },
    mid_stream_error: || {
        anthropic_stream(&[
            ANTHROPIC_TEXT[0],
            ANTHROPIC_TEXT[1],
            ANTHROPIC_TEXT[3],
            (
                "error",
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ),
        ])
    },
    mid_stream_text: "Hello",
    mid_stream_kind: ModelErrorKind::Overloaded,
    mid_stream_message: "Overloaded",
    auth_failure: || serde_json::json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
};

/// A Chat Completions answer streamed as `deltas`, then `stop`, usage and `[DONE]`.
fn openai_deltas(deltas: &[&str]) -> String {
    let mut chunks: Vec<String> = deltas
        .iter()
        .map(|text| {
            serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {"content": text}, "finish_reason": null}]})
            .to_string()
        })
        .collect();
    chunks.push(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#.into());
    chunks.push(r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":6}}"#.into());
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    openai_stream(&refs, true)
}

/// A Chat Completions answer that calls `get_power` (`call_pw`) with `pieces` as arguments.
fn openai_tool_call(pieces: &[&str]) -> String {
    let mut chunks = vec![
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_pw","type":"function","function":{"name":"get_power","arguments":""}}]},"finish_reason":null}]}"#.to_string(),
    ];
    for piece in pieces {
        chunks.push(
            serde_json::json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": piece}}]}, "finish_reason": null}]})
            .to_string(),
        );
    }
    chunks.push(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#.into());
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    openai_stream(&refs, true)
}

/// A Messages answer streamed as `deltas` in one text block, ending with `end_turn`.
fn anthropic_deltas(deltas: &[&str]) -> String {
    let mut events = vec![
        (
            "message_start",
            r#"{"type":"message_start","message":{"usage":{"input_tokens":3}}}"#.to_string(),
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
                .to_string(),
        ),
    ];
    for text in deltas {
        events.push((
            "content_block_delta",
            serde_json::json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text}})
            .to_string(),
        ));
    }
    events.extend([
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#.to_string(),
        ),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":6}}"#
                .to_string(),
        ),
        ("message_stop", r#"{"type":"message_stop"}"#.to_string()),
    ]);
    let pairs: Vec<(&str, &str)> = events.iter().map(|(e, d)| (*e, d.as_str())).collect();
    anthropic_stream(&pairs)
}

/// Runs each named scenario once per provider, as `<scenario>::openai` and
/// `<scenario>::anthropic`.
macro_rules! for_each_provider {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn openai() {
                super::$scenario(&super::OPENAI).await;
            }
            #[tokio::test]
            async fn anthropic() {
                super::$scenario(&super::ANTHROPIC).await;
            }
        }
    )*};
}

for_each_provider!(
    text_stream_with_usage,
    tool_call_round_trip_sends_the_call_and_its_result_back,
    a_mid_stream_error_ends_the_stream_clearly,
    an_auth_failure_is_not_retried,
    a_key_split_over_two_deltas_is_redacted_in_the_stream,
    malformed_tool_call_arguments_reach_the_caller,
);

/// The canonical text answer, with the key and version headers required: text, no calls,
/// `Stop` with the provider's usage, one request.
async fn text_stream_with_usage(p: &Provider) {
    let server = MockServer::start().await;
    let mut mock = Mock::given(method("POST")).and(path(p.path));
    for (name, value) in (p.headers)() {
        mock = mock.and(header(name, value.as_str()));
    }
    mock.respond_with(sse(&(p.text_stream)()))
        .expect(1)
        .mount(&server)
        .await;
    let backend = (p.backend)(&config(&server, 2, 10));
    let (text, calls, done, error) = collect(&*backend).await;
    assert_eq!(error, None);
    assert_eq!(text, p.text);
    assert!(calls.is_empty());
    assert_eq!(done, Some((FinishReason::Stop, p.usage)));
    let sent: serde_json::Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    (p.check_request_body)(&sent);
}

/// The model calls `get_power`; the caller sends the call and its result back and gets the
/// answer. Both requests offer the tool.
async fn tool_call_round_trip_sends_the_call_and_its_result_back(p: &Provider) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(p.path))
        .respond_with(sse(&(p.tool_call)(&["{\"zo", "ne\":\"hab-1\"}"])))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(p.path))
        .respond_with(sse(&(p.text_stream)()))
        .expect(1)
        .mount(&server)
        .await;
    let backend = (p.backend)(&config(&server, 0, 10));

    let first = tool_request();
    let (text, calls, done, error) = collect_for(&*backend, &first).await;
    assert_eq!(error, None);
    assert_eq!(text, "");
    assert_eq!(
        calls,
        [ToolCall {
            id: p.call_id.into(),
            name: "get_power".into(),
            arguments: Ok(serde_json::json!({"zone": "hab-1"})),
        }]
    );
    assert_eq!(done.unwrap().0, FinishReason::ToolCalls);

    let second = follow_up(first, p.follow_up_text, calls);
    let (text, calls, done, error) = collect_for(&*backend, &second).await;
    assert_eq!(error, None);
    assert_eq!(text, p.text);
    assert!(calls.is_empty());
    assert_eq!(done.unwrap().0, FinishReason::Stop);

    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 2);
    (p.check_round_trip)(&sent);
}

/// An error event after the answer began: the text so far is kept, the error is the
/// provider's, marked mid-stream (not to be replayed), and carries no key.
async fn a_mid_stream_error_ends_the_stream_clearly(p: &Provider) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(sse(&(p.mid_stream_error)()))
        .mount(&server)
        .await;
    let backend = (p.backend)(&config(&server, 0, 10));
    let (text, _, _, error) = collect(&*backend).await;
    assert_eq!(text, p.mid_stream_text);
    let e = error.expect("mid-stream error");
    assert_eq!(e.kind, p.mid_stream_kind);
    assert!(e.message.contains(p.mid_stream_message), "{e}");
    assert!(e.mid_stream, "the answer had begun: not to be replayed");
    assert_no_key(&e);
}

/// A 401 is asked once even with retries left, and says where the key comes from.
async fn an_auth_failure_is_not_retried(p: &Provider) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(p.path))
        .respond_with(ResponseTemplate::new(401).set_body_json((p.auth_failure)()))
        .expect(1)
        .mount(&server)
        .await;
    let backend = (p.backend)(&config(&server, 3, 10));
    let (_, _, _, error) = collect(&*backend).await;
    let e = error.expect("401");
    assert_eq!(e.kind, ModelErrorKind::Auth);
    assert!(e.message.contains("model.api_key_env"), "{e}");
    assert_no_key(&e);
    server.verify().await;
}

/// The key echoed in two pieces over two deltas never reaches the caller.
async fn a_key_split_over_two_deltas_is_redacted_in_the_stream(p: &Provider) {
    let server = MockServer::start().await;
    let (head, tail) = split_key();
    Mock::given(method("POST"))
        .and(path(p.path))
        .respond_with(sse(&(p.deltas)(&[
            &format!("Your key is {head}"),
            &format!("{tail}. ANSWER: LOCAL"),
        ])))
        .mount(&server)
        .await;
    let backend = (p.backend)(&config(&server, 0, 10));
    assert_eq!(backend.name(), p.name);
    let mut stream = backend.stream(&request()).await.unwrap();
    let mut deltas = Vec::new();
    while let Some(chunk) = stream.next().await {
        if let StreamChunk::Text(t) = chunk.unwrap() {
            deltas.push(t);
        }
    }
    assert_eq!(deltas, ["Your key is ", "[redacted]. ANSWER: LOCAL"]);
}

/// Arguments that are not JSON reach the caller as the raw text and the parse error; the
/// stream still ends with `Done`.
async fn malformed_tool_call_arguments_reach_the_caller(p: &Provider) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(p.path))
        .respond_with(sse(&(p.tool_call)(&["{\"zone\": ", "hab-1}"])))
        .mount(&server)
        .await;
    let backend = (p.backend)(&config(&server, 0, 10));
    let (_, calls, done, error) = collect_for(&*backend, &tool_request()).await;
    assert_eq!(error, None, "a malformed call is not an error");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].id.as_str(), calls[0].name.as_str()),
        (p.call_id, "get_power")
    );
    let malformed = calls[0].arguments.clone().expect_err("malformed arguments");
    assert_eq!(malformed.raw, "{\"zone\": hab-1}");
    assert!(!malformed.error.is_empty());
    assert_eq!(
        done.expect("the stream still ends with Done").0,
        FinishReason::ToolCalls
    );
}

// Provider-specific halves of scenarios above.

#[tokio::test]
async fn openai_a_malformed_chunk_ends_the_stream_clearly() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(sse(&openai_stream(
            &[
                TEXT_CHUNKS[1],
                r#"{"choices":[{"index":0,"delta":{"content":"x"#,
            ],
            true,
        )))
        .mount(&server)
        .await;
    let backend = OpenAiBackend::from_config("openai", &config(&server, 0, 10)).unwrap();
    let (_, _, _, error) = collect(&backend).await;
    let e = error.expect("malformed");
    assert_eq!(e.kind, ModelErrorKind::Protocol);
    assert!(e.message.contains("not valid JSON"), "{e}");
}

#[tokio::test]
async fn openai_spend_limits_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(
            serde_json::json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let backend = OpenAiBackend::from_config("openai", &config(&server, 3, 10)).unwrap();
    let (_, _, _, error) = collect(&backend).await;
    let e = error.expect("quota");
    assert_eq!(e.kind, ModelErrorKind::RateLimit);
    assert!(e.message.contains("not retried"), "{e}");
}

#[tokio::test]
async fn anthropic_529_is_overloaded() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(529)
                .insert_header("request-id", "req_529")
                .set_body_json(serde_json::json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
        )
        .mount(&server)
        .await;
    let backend = AnthropicBackend::from_config("anthropic", &config(&server, 0, 10)).unwrap();
    let (_, _, _, error) = collect(&backend).await;
    let e = error.expect("529");
    assert_eq!(e.kind, ModelErrorKind::Overloaded);
    assert!(!e.mid_stream);
    assert_eq!(e.request_id.as_deref(), Some("req_529"));
    assert_no_key(&e);
}

/// Runs only when `LIVE_OPENAI_API_KEY` holds a real key (and says so otherwise): one short
/// streamed answer from the real API.
#[tokio::test]
async fn live_openai_opt_in() {
    if std::env::var("LIVE_OPENAI_API_KEY").is_err() {
        eprintln!("skipped: set LIVE_OPENAI_API_KEY to run the live OpenAI test");
        return;
    }
    let config = ModelConfig {
        api_key_env: Some("LIVE_OPENAI_API_KEY".into()),
        model: std::env::var("LIVE_OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into()),
        ..ModelConfig::default()
    };
    let backend = OpenAiBackend::from_config("openai", &config).unwrap();
    let mut req = request();
    req.model = config.model.clone();
    let r = backend.generate(&req).await.unwrap();
    assert!(!r.text.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Through the binary: configuration alone points Veyra at a server.

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn veyra(data: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_veyra"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VEYRA_") {
            cmd.env_remove(&key);
        }
    }
    // Other tests of this process set KEY_VAR (a `VEYRA_*` name) at any moment, possibly after
    // the loop above looked: remove it by name, or the child reads it as an unknown override.
    cmd.env_remove(KEY_VAR);
    cmd.env("HOME", data.join("home"))
        .env("XDG_CONFIG_HOME", data.join("config"))
        .env("XDG_DATA_HOME", data.join("data"))
        .env("XDG_STATE_HOME", data.join("state"))
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().copied())
        .args(args)
        .timeout(Duration::from_secs(60));
    let out = cmd.output().expect("veyra runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file under `dir`, as text where it is text.
fn all_files(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.push_str(&all_files(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

#[test]
fn veyra_run_streams_from_an_openai_compatible_server_and_never_shows_the_key() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    rt.block_on(async {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(header(
                "authorization",
                format!("Bearer {SENTINEL}").as_str(),
            ))
            .respond_with(sse(&openai_stream(&TEXT_CHUNKS, true)))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/models"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": []})))
            .mount(&server)
            .await;
    });
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", server.uri());
    let env = [
        ("VEYRA_MODEL__BACKEND", "openai"),
        ("VEYRA_MODEL__BASE_URL", base.as_str()),
        ("VEYRA_MODEL__API_KEY_ENV", "TEST_VEYRA_CLI_KEY"),
        ("TEST_VEYRA_CLI_KEY", SENTINEL),
        ("VEYRA_LOGGING__LEVEL", "trace"),
    ];
    let r = veyra(dir.path(), &env, &["run", "Status of the habitat?"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.trim_end(), "All systems nominal.");
    let mut seen = r.stdout + &r.stderr;
    for args in [
        vec!["run", "--json", "again"],
        vec!["health"],
        vec!["config", "show"],
        vec!["audit", "list", "--json"],
        vec!["audit", "export"],
    ] {
        let r = veyra(dir.path(), &env, &args);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.stderr);
        seen.push_str(&r.stdout);
        seen.push_str(&r.stderr);
    }
    assert!(seen.contains("backend openai: ok"), "{seen}");
    assert!(
        seen.contains(r#""tokens_out":4"#),
        "usage is recorded: {seen}"
    );
    seen.push_str(&all_files(dir.path()));
    assert!(
        seen.contains("All systems"),
        "the log and outputs were read"
    );
    assert!(!seen.contains(SENTINEL), "the API key leaked");

    // The same server refusing the key: a clear error, exit 1, still no key.
    let r = veyra(
        dir.path(),
        &[
            ("VEYRA_MODEL__BACKEND", "openai"),
            ("VEYRA_MODEL__BASE_URL", "http://127.0.0.1:9/v1"),
            ("VEYRA_MODEL__RETRIES", "0"),
            ("VEYRA_RUNTIME__RETRIES", "0"),
            ("VEYRA_MODEL__API_KEY_ENV", "TEST_VEYRA_CLI_KEY"),
            ("TEST_VEYRA_CLI_KEY", SENTINEL),
        ],
        &["run", "hello"],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("127.0.0.1:9"), "{}", r.stderr);
    assert!(!r.stderr.contains(SENTINEL) && !r.stderr.contains("panicked"));
}

#[test]
fn veyra_run_streams_from_anthropic() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .respond_with(sse(&anthropic_stream(&ANTHROPIC_TEXT)))
            .mount(&server),
    );
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", server.uri());
    let r = veyra(
        dir.path(),
        &[
            ("VEYRA_MODEL__BACKEND", "anthropic"),
            ("VEYRA_MODEL__BASE_URL", base.as_str()),
            ("VEYRA_MODEL__API_KEY_ENV", "TEST_VEYRA_CLI_KEY"),
            ("TEST_VEYRA_CLI_KEY", SENTINEL),
        ],
        &["run", "hello"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.trim_end(), "Hello from Earth.");
}

#[test]
fn a_bad_base_url_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = veyra(
        dir.path(),
        &[
            ("VEYRA_MODEL__BACKEND", "openai"),
            ("VEYRA_MODEL__BASE_URL", "localhost:11434/v1"),
        ],
        &["run", "hello"],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("model.base_url"), "{}", r.stderr);
    assert!(r.stderr.contains("not an http(s) URL"), "{}", r.stderr);
}

#[tokio::test]
async fn the_core_never_replays_a_generation_that_has_begun() {
    let server = MockServer::start().await;
    // The response starts (message_start), then the server is overloaded before any text.
    Mock::given(method("POST"))
        .respond_with(sse(&anthropic_stream(&[
            ANTHROPIC_TEXT[0],
            (
                "error",
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ),
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let mut config = veyra::config::VeyraConfig::default();
    config.governance.store = veyra::config::AuditStoreKind::Memory;
    config.model = ModelConfig {
        backend: "anthropic".into(),
        ..self::config(&server, 2, 10)
    };
    config.runtime.retries = 2;
    config.runtime.backoff_ms = 1;
    let core = veyra::core::VeyraCore::new(config).unwrap();
    let err = core
        .execute_async(veyra::core::ExecutionRequest::new("hello"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Overloaded"), "{err}");
    // `expect(1)` is checked when the server drops: one request, no task-level retry.
}

/// The agent loop against an OpenAI-compatible server, end to end through `veyra run`: the
/// server asks for the calculator, Veyra runs it through the gate, sends the result back as a
/// `tool` message, and prints the final answer; the call is in the audit trail.
#[test]
fn veyra_run_with_tools_completes_an_openai_tool_call_round_trip() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    let asks = openai_stream(
        &[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_7","type":"function","function":{"name":"calculator","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"expression\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"6*7\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":9}}"#,
        ],
        true,
    );
    let answers = openai_stream(
        &[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"The answer is 42."}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":40,"completion_tokens":5}}"#,
        ],
        true,
    );
    rt.block_on(async {
        // The first mock mounted that matches answers: a request carrying a tool result gets
        // the final answer, any other the tool call.
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(wiremock::matchers::body_string_contains("\"tool_call_id\""))
            .respond_with(sse(&answers))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(sse(&asks))
            .mount(&server)
            .await;
    });
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", server.uri());
    let env = [
        ("VEYRA_MODEL__BACKEND", "openai"),
        ("VEYRA_MODEL__BASE_URL", base.as_str()),
        ("VEYRA_MODEL__API_KEY_ENV", "TEST_VEYRA_CLI_KEY"),
        ("TEST_VEYRA_CLI_KEY", SENTINEL),
    ];
    let r = veyra(
        dir.path(),
        &env,
        &["run", "--tools", "calculator", "What is six times seven?"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.trim_end(), "The answer is 42.");
    assert!(
        r.stderr
            .contains("step 1: calculator {\"expression\":\"6*7\"} → 6*7 = 42"),
        "{}",
        r.stderr
    );
    let requests = rt.block_on(server.received_requests()).unwrap();
    let bodies: Vec<serde_json::Value> = requests
        .iter()
        .filter(|r| r.url.path() == "/v1/chat/completions")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2);
    for body in &bodies {
        let tools: Vec<&str> = body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            tools,
            ["calculator"],
            "only the tools asked for are offered"
        );
    }
    let messages = bodies[1]["messages"].as_array().unwrap();
    let assistant = &messages[messages.len() - 2];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["tool_calls"][0]["id"], "call_7");
    assert_eq!(
        assistant["tool_calls"][0]["function"]["arguments"],
        r#"{"expression":"6*7"}"#
    );
    let tool = &messages[messages.len() - 1];
    assert_eq!(tool["role"], "tool");
    assert_eq!(tool["tool_call_id"], "call_7");
    assert!(tool["content"].as_str().unwrap().contains("42"), "{tool}");
    let r = veyra(dir.path(), &env, &["audit", "list", "--json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let entries: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect::<Vec<_>>();
    let flat = serde_json::to_string(&entries).unwrap();
    assert!(flat.contains("TOOL_INVOCATION"), "{flat}");
    assert!(!flat.contains(SENTINEL) && !r.stderr.contains(SENTINEL));
}

// ---------------------------------------------------------------------------------------------
// Secrets that arrive in pieces, and URLs that carry one.

/// The key's two pieces as a server splits it over two deltas.
fn split_key() -> (&'static str, &'static str) {
    SENTINEL.split_at(13)
}

/// A Chat Completions stream that echoes the key split over two deltas.
fn split_key_stream() -> String {
    let (head, tail) = split_key();
    openai_deltas(&[
        &format!("Your key is {head}"),
        &format!("{tail}. ANSWER: LOCAL"),
    ])
}

/// Neither the key nor either of its pieces is in `text`.
fn assert_no_key_piece(text: &str, what: &str) {
    let (head, tail) = split_key();
    assert!(
        !text.contains(head) && !text.contains(tail),
        "{what}: the key or a piece of it leaked: {text}"
    );
}

#[test]
fn a_key_split_over_two_deltas_reaches_no_output_no_store_and_no_cassette() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(sse(&split_key_stream()))
            .mount(&server),
    );
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", server.uri());
    let env = [
        ("VEYRA_MODEL__BACKEND", "openai"),
        ("VEYRA_MODEL__BASE_URL", base.as_str()),
        ("VEYRA_MODEL__API_KEY_ENV", "TEST_VEYRA_CLI_KEY"),
        ("TEST_VEYRA_CLI_KEY", SENTINEL),
        ("VEYRA_LOGGING__LEVEL", "trace"),
    ];
    // The console's stream.
    let r = veyra(dir.path(), &env, &["run", "What is my key?"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.trim_end(), "Your key is [redacted]. ANSWER: LOCAL");
    assert_no_key_piece(&(r.stdout + &r.stderr), "veyra run");
    // `--json`: the deltas as events.
    let r = veyra(dir.path(), &env, &["run", "--json", "What is my key?"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains("[redacted]. ANSWER: LOCAL"),
        "{}",
        r.stdout
    );
    assert_no_key_piece(&(r.stdout + &r.stderr), "veyra run --json");
    // A benchmark run recorded into a cassette and stored in bench.db, then shown and replayed.
    let tape = dir.path().join("tape");
    let tape_arg = tape.to_string_lossy().into_owned();
    let r = veyra(
        dir.path(),
        &env,
        &[
            "bench", "--family", "cplc", "--count", "1", "--seed", "7", "--record", &tape_arg,
            "--json",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_no_key_piece(&(r.stdout + &r.stderr), "veyra bench --json");
    let shown = veyra(dir.path(), &env, &["bench", "show", "last", "--json"]);
    assert_eq!(shown.code, Some(0), "{}", shown.stderr);
    assert!(
        shown
            .stdout
            .contains("Your key is [redacted]. ANSWER: LOCAL"),
        "the stored output is the redacted answer: {}",
        shown.stdout
    );
    assert_no_key_piece(&shown.stdout, "veyra bench show");
    let cassette = all_files(&tape);
    assert!(cassette.contains("[redacted]"), "{cassette}");
    drop(server);
    let replayed = veyra(dir.path(), &[], &["bench", "--replay", &tape_arg, "--json"]);
    assert_eq!(replayed.code, Some(0), "{}", replayed.stderr);
    assert!(
        replayed
            .stdout
            .contains("Your key is [redacted]. ANSWER: LOCAL"),
        "{}",
        replayed.stdout
    );
    assert_no_key_piece(&replayed.stdout, "the replay");
    // Every file written: bench.db (and its journal), the cassette, the log.
    assert_no_key_piece(&all_files(dir.path()), "the files written");
}

#[test]
fn a_key_in_the_base_urls_user_info_is_never_shown_or_logged() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    rt.block_on(async {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(sse(&openai_stream(&TEXT_CHUNKS, true)))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/models"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": []})))
            .mount(&server)
            .await;
    });
    let dir = tempfile::tempdir().unwrap();
    let port = server.address().port();
    let base = format!("http://u:{SENTINEL}@127.0.0.1:{port}/v1");
    let env = [
        ("VEYRA_MODEL__BACKEND", "openai"),
        ("VEYRA_MODEL__BASE_URL", base.as_str()),
        ("VEYRA_LOGGING__LEVEL", "trace"),
    ];
    let r = veyra(dir.path(), &env, &["config", "show"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout
            .contains(&format!("http://***@127.0.0.1:{port}/v1")),
        "{}",
        r.stdout
    );
    let mut seen = r.stdout + &r.stderr;
    for args in [
        vec!["run", "Status?"],
        vec!["run", "--json", "Status?"],
        vec!["health"],
    ] {
        let r = veyra(dir.path(), &env, &args);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.stderr);
        seen.push_str(&r.stdout);
        seen.push_str(&r.stderr);
    }
    // Nothing listening: the connection error names the server, not the user-info.
    let dead = format!("http://u:{SENTINEL}@127.0.0.1:9/v1");
    let r = veyra(
        dir.path(),
        &[
            ("VEYRA_MODEL__BACKEND", "openai"),
            ("VEYRA_MODEL__BASE_URL", dead.as_str()),
            ("VEYRA_MODEL__RETRIES", "0"),
            ("VEYRA_RUNTIME__RETRIES", "0"),
        ],
        &["run", "hello"],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("127.0.0.1:9"), "{}", r.stderr);
    seen.push_str(&r.stderr);
    // A URL that is not http(s) is refused without repeating the user-info.
    let r = veyra(
        dir.path(),
        &[
            ("VEYRA_MODEL__BACKEND", "openai"),
            (
                "VEYRA_MODEL__BASE_URL",
                &format!("ftp://u:{SENTINEL}@host/v1"),
            ),
        ],
        &["run", "hello"],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("ftp://***@host/v1"), "{}", r.stderr);
    seen.push_str(&r.stderr);
    seen.push_str(&all_files(dir.path()));
    assert!(
        seen.contains("All systems"),
        "the outputs and the log were read"
    );
    assert!(!seen.contains(SENTINEL), "the user-info leaked: {seen}");
}
