//! Cost of one `calculator` call through the whole gate (policy, safety boundary, in-memory
//! audit of POLICY_CHECK and TOOL_INVOCATION, events) against the evaluator alone, and the
//! schema validation step. Target (issue #11): ≤ 50 µs median through the gate.
//! Run: `cargo bench --bench tools`.
//!
//! Measured 2026-12-01 on 2 shared cores (divan, 100 samples): through the gate median
//! 12.45 µs (policy decision + POLICY_CHECK and TOOL_INVOCATION entries in memory + events),
//! evaluator alone 2.40 µs, schema validation 50 ns.

use divan::Bencher;
use veyra::VeyraCore;
use veyra::config::VeyraConfig;

fn main() {
    divan::main();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

fn core() -> VeyraCore {
    let mut config = VeyraConfig::default();
    config.governance.store = veyra::config::AuditStoreKind::Memory;
    VeyraCore::new(config).expect("default config is valid")
}

const EXPRESSION: &str = "2 * (3 + 4) - sqrt(16) / 2";

#[divan::bench]
fn calculator_through_the_gate(bencher: Bencher) {
    let rt = runtime();
    let core = core();
    let args = serde_json::json!({ "expression": EXPRESSION });
    bencher.bench_local(|| {
        rt.block_on(core.invoke_tool("calculator", args.clone(), "operator"))
            .expect("the calculator answers")
    });
}

#[divan::bench]
fn calculator_alone(bencher: Bencher) {
    bencher.bench_local(|| veyra::tools::calculator::evaluate(divan::black_box(EXPRESSION)));
}

#[divan::bench]
fn schema_validation(bencher: Bencher) {
    let core = core();
    let args = serde_json::json!({ "expression": EXPRESSION });
    bencher.bench_local(|| core.tools().validate("calculator", divan::black_box(&args)));
}
