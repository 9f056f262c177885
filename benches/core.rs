//! Cost of one execution through the core (mock backend, zero token delay, audit on) against a
//! bare `generate` call on the same mock. Run: `cargo bench --bench core`.

use divan::Bencher;
use veyra::config::VeyraConfig;
use veyra::models::{MockBackend, ModelBackend, ModelRequest};
use veyra::{ExecutionRequest, VeyraCore};

fn main() {
    divan::main();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

const PROMPT: &str = "Summarise the habitat telemetry for the last sol";

/// The request the core builds for `PROMPT` under the default configuration.
fn mock_request() -> ModelRequest {
    ModelRequest::new("veyra-mock-1", None, PROMPT, 0.7, 1024)
}

#[divan::bench]
fn execute_async_mock_audit_on(bencher: Bencher) {
    let rt = runtime();
    let mut config = VeyraConfig::default();
    config.governance.store = veyra::config::AuditStoreKind::Memory;
    let core = VeyraCore::new(config).expect("default config is valid");
    // A subscriber, as in the console, so every event is really delivered.
    let mut rx = core.subscribe();
    bencher.bench_local(|| {
        let r = rt
            .block_on(core.execute_async(ExecutionRequest::new(PROMPT)))
            .expect("mock execution succeeds");
        while rx.try_recv().is_ok() {}
        r
    });
}

#[divan::bench]
fn execute_async_mock_audit_on_no_subscriber(bencher: Bencher) {
    let rt = runtime();
    let mut config = VeyraConfig::default();
    config.governance.store = veyra::config::AuditStoreKind::Memory;
    let core = VeyraCore::new(config).expect("default config is valid");
    bencher.bench_local(|| {
        rt.block_on(core.execute_async(ExecutionRequest::new(PROMPT)))
            .expect("mock execution succeeds")
    });
}

#[divan::bench]
fn bare_mock_generate(bencher: Bencher) {
    let rt = runtime();
    let backend = MockBackend::new();
    let request = mock_request();
    bencher.bench_local(|| {
        rt.block_on(backend.generate(&request))
            .expect("mock generation succeeds")
    });
}

#[divan::bench]
fn audit_record_in_memory(bencher: Bencher) {
    use veyra::governance::{AuditEventType, AuditRecord, AuditTrail, summarize_input};
    let trail = AuditTrail::in_memory();
    bencher.bench_local(|| {
        trail
            .record_blocking(AuditRecord {
                event_type: AuditEventType::Execution,
                actor: "operator".into(),
                action: "execute".into(),
                resource: "backend:mock".into(),
                outcome: "success".into(),
                input_summary: summarize_input(PROMPT),
                metadata: serde_json::json!({
                    "execution_id": "6f1c2d4e-0000-4000-8000-000000000000",
                    "backend": "mock", "model": "veyra-mock-1", "priority": "normal",
                    "latency_ms": 0, "finish_reason": "stop", "tokens_in": 8, "tokens_out": 30,
                }),
            })
            .expect("in-memory record succeeds")
    });
}

#[divan::bench]
fn mock_stream_collect(bencher: Bencher) {
    use futures_util::StreamExt;
    let rt = runtime();
    let backend = MockBackend::new();
    let request = mock_request();
    bencher.bench_local(|| {
        rt.block_on(async {
            let mut s = backend.stream(&request).await.expect("mock stream starts");
            let mut n = 0;
            while let Some(c) = s.next().await {
                c.expect("mock chunk");
                n += 1;
            }
            n
        })
    });
}
