//! Stream parsing overhead (#5): a 10,000-chunk recorded Chat Completions stream served by a
//! local server (wiremock on 127.0.0.1), consumed through `OpenAiBackend::stream`, against
//! reading the same response's raw bytes alone; and the same parse with every text chunk passed
//! through the terminal sanitizer (#10), as `veyra run` does on a terminal: its cost must stay
//! within 5% of the parse's throughput.
//!
//! Secrets split across chunks: the same parse with a configured key, so every text chunk
//! passes the streaming redactor (`parse_10k_chunk_stream_redacted` against
//! `parse_10k_chunk_stream`, whose redactor has no key and passes text through); its cost
//! must stay within 5% of the parse's throughput. `stream_redactor_10k_chunks` times the
//! redactor alone over the same texts, a tenth of them ending in what could begin the key.
//!
//! One huge event: a 5 MB tool-call argument in a single `data:` line
//! (`parse_5mb_tool_call_in_one_event`, which must take at most 0.2 s) against the same bytes
//! over 1,000 deltas (`parse_5mb_tool_call_in_1000_deltas`).
//!
//! Run: `cargo bench --bench backends` (or one of them: `cargo bench --bench backends -- 5mb`).

use std::sync::Arc;

use divan::Bencher;
use divan::counter::{BytesCount, ItemsCount};
use futures_util::StreamExt;
use veyra::config::{ModelConfig, Secret, StreamRedactor};
use veyra::models::openai::OpenAiBackend;
use veyra::models::{ModelBackend, ModelRequest, StreamChunk};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CHUNKS: usize = 10_000;
/// The variable the redacted parse reads its key from, and the key.
const KEY_VAR: &str = "VEYRA_BENCH_BACKENDS_KEY";
const KEY: &str = "sk-bench-SENTINEL-0123456789abcdef";
/// The size of the huge tool-call argument.
const HUGE: usize = 5_000_000;

fn main() {
    // SAFETY: set once, before divan starts any thread.
    unsafe { std::env::set_var(KEY_VAR, KEY) };
    divan::main();
}

/// A recorded-format stream: one role chunk, 10,000 content chunks, finish, usage, `[DONE]`.
fn transcript() -> String {
    let mut out = String::from(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    );
    for i in 0..CHUNKS {
        out.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1732600000,\"model\":\"test-model\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" token{i}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
        ));
    }
    out.push_str("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    out.push_str("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":10000}}\n\n");
    out.push_str("data: [DONE]\n\n");
    out
}

fn setup() -> (tokio::runtime::Runtime, MockServer) {
    serve(transcript())
}

/// A local server answering every POST with `body` as an event stream.
fn serve(body: String) -> (tokio::runtime::Runtime, MockServer) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "text/event-stream"),
            )
            .mount(&server)
            .await;
        server
    });
    (rt, server)
}

/// An OpenAI backend for `server`, with the bench key when `keyed`.
fn backend(server: &MockServer, keyed: bool) -> OpenAiBackend {
    let config = ModelConfig {
        backend: "openai".into(),
        base_url: Some(format!("{}/v1", server.uri())),
        api_key_env: keyed.then(|| KEY_VAR.to_string()),
        ..ModelConfig::default()
    };
    OpenAiBackend::from_config("openai", &config).expect("a backend")
}

/// A stream whose one tool call has a [`HUGE`]-byte argument, sent in `deltas` pieces.
fn huge_tool_call(deltas: usize) -> String {
    let arguments = format!("{{\"blob\":\"{}\"}}", "x".repeat(HUGE));
    let step = arguments.len().div_ceil(deltas);
    let mut out = String::from(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"function\":{\"name\":\"write_file\",\"arguments\":\"\"}}]}}]}\n\n",
    );
    for piece in arguments.as_bytes().chunks(step) {
        let piece = std::str::from_utf8(piece).expect("ASCII");
        let delta = serde_json::json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": piece}}]}}]});
        out.push_str(&format!("data: {delta}\n\n"));
    }
    out.push_str(
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
    );
    out.push_str("data: [DONE]\n\n");
    out
}

#[divan::bench(sample_count = 10)]
fn parse_5mb_tool_call_in_one_event(bencher: Bencher) {
    parse_huge(bencher, 1);
}

#[divan::bench(sample_count = 10)]
fn parse_5mb_tool_call_in_1000_deltas(bencher: Bencher) {
    parse_huge(bencher, 1000);
}

fn parse_huge(bencher: Bencher, deltas: usize) {
    let (rt, server) = serve(huge_tool_call(deltas));
    let backend = backend(&server, true);
    let request = ModelRequest::new("test-model", None, "go", 0.0, 16_000);
    bencher.counter(BytesCount::new(HUGE)).bench_local(|| {
        rt.block_on(async {
            let mut stream = backend.stream(&request).await.expect("a stream");
            let mut calls = 0usize;
            while let Some(chunk) = stream.next().await {
                if let StreamChunk::ToolCall(call) = chunk.expect("a chunk") {
                    let arguments = call.arguments.expect("JSON arguments");
                    assert_eq!(arguments["blob"].as_str().map(str::len), Some(HUGE));
                    calls += 1;
                }
            }
            assert_eq!(calls, 1);
        });
    });
}

#[divan::bench(sample_count = 20)]
fn parse_10k_chunk_stream_redacted(bencher: Bencher) {
    let (rt, server) = setup();
    let backend = backend(&server, true);
    let request = ModelRequest::new("test-model", None, "go", 0.0, 16_000);
    bencher.counter(ItemsCount::new(CHUNKS)).bench_local(|| {
        rt.block_on(async {
            let mut stream = backend.stream(&request).await.expect("a stream");
            let mut texts = 0usize;
            while let Some(chunk) = stream.next().await {
                if let StreamChunk::Text(_) = chunk.expect("a chunk") {
                    texts += 1;
                }
            }
            assert_eq!(texts, CHUNKS);
        });
    });
}

#[divan::bench(sample_count = 20)]
fn stream_redactor_10k_chunks(bencher: Bencher) {
    // Every tenth piece ends in the key's first bytes, so it is held and joined to the next.
    let pieces: Vec<String> = (0..CHUNKS)
        .map(|i| {
            if i % 10 == 0 {
                format!(" token{i} sk-be")
            } else {
                format!(" token{i}")
            }
        })
        .collect();
    let key = Arc::new(Secret::new(KEY));
    bencher
        .counter(ItemsCount::new(CHUNKS))
        .with_inputs(|| pieces.clone())
        .bench_local_values(|pieces| {
            let mut redactor = StreamRedactor::new(Some(Arc::clone(&key)));
            let mut bytes = 0usize;
            for piece in pieces {
                bytes += redactor.push(piece).len();
            }
            bytes + redactor.finish().len()
        });
}

#[divan::bench(sample_count = 20)]
fn parse_10k_chunk_stream(bencher: Bencher) {
    parse(bencher, false);
}

#[divan::bench(sample_count = 20)]
fn parse_10k_chunk_stream_sanitized(bencher: Bencher) {
    parse(bencher, true);
}

fn parse(bencher: Bencher, sanitized: bool) {
    let (rt, server) = setup();
    let backend = backend(&server, false);
    let request = ModelRequest::new("test-model", None, "go", 0.0, 16_000);
    bencher.counter(ItemsCount::new(CHUNKS)).bench_local(|| {
        rt.block_on(async {
            let mut stream = backend.stream(&request).await.expect("a stream");
            let mut texts = 0usize;
            while let Some(chunk) = stream.next().await {
                if let StreamChunk::Text(text) = chunk.expect("a chunk") {
                    if sanitized {
                        divan::black_box(veyra::sanitize::sanitize(&text));
                    }
                    texts += 1;
                }
            }
            assert_eq!(texts, CHUNKS);
        });
    });
}

#[divan::bench(sample_count = 20)]
fn read_raw_bytes_only(bencher: Bencher) {
    let (rt, server) = setup();
    let client = veyra::web::client_builder()
        .build()
        .expect("a plain HTTP client");
    let url = format!("{}/v1/chat/completions", server.uri());
    bencher.counter(ItemsCount::new(CHUNKS)).bench_local(|| {
        rt.block_on(async {
            let response = client
                .post(&url)
                .body("{}")
                .send()
                .await
                .expect("a response");
            let mut bytes = response.bytes_stream();
            let mut n = 0usize;
            while let Some(b) = bytes.next().await {
                n += b.expect("bytes").len();
            }
            assert!(n > CHUNKS * 100);
        });
    });
}
