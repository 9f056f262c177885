//! Stream parsing overhead (#5): a 10,000-chunk recorded Chat Completions stream served by a
//! local server (wiremock on 127.0.0.1), consumed through `OpenAiBackend::stream`, against
//! reading the same response's raw bytes alone; and the same parse with every text chunk passed
//! through the terminal sanitizer (#10), as `veyra run` does on a terminal: its cost must stay
//! within 5% of the parse's throughput.
//! Run: `cargo bench --bench backends`.

use divan::Bencher;
use divan::counter::ItemsCount;
use futures_util::StreamExt;
use veyra::config::ModelConfig;
use veyra::models::openai::OpenAiBackend;
use veyra::models::{ModelBackend, ModelRequest, StreamChunk};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CHUNKS: usize = 10_000;

fn main() {
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(transcript().into_bytes(), "text/event-stream"),
            )
            .mount(&server)
            .await;
        server
    });
    (rt, server)
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
    let config = ModelConfig {
        backend: "openai".into(),
        base_url: Some(format!("{}/v1", server.uri())),
        ..ModelConfig::default()
    };
    let backend = OpenAiBackend::from_config("openai", &config).expect("a backend");
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
    let client = reqwest::Client::new();
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
