//! Audit trail figures: in-memory append, chain verification, and durable (SQLite, WAL,
//! `synchronous=FULL`) append from 8 concurrent writers sharing group commits.
//! Run: `cargo bench --bench audit`.

use std::sync::Arc;

use divan::Bencher;
use veyra::governance::{
    AuditEventType, AuditRecord, AuditTrail, MemoryStore, SqliteStore, summarize_input,
};

fn main() {
    divan::main();
}

fn record(n: u64) -> AuditRecord {
    AuditRecord {
        event_type: AuditEventType::Execution,
        actor: "operator".into(),
        action: "execute".into(),
        resource: "backend:mock".into(),
        outcome: "success".into(),
        input_summary: summarize_input("Summarise the habitat telemetry"),
        metadata: serde_json::json!({ "n": n, "backend": "mock", "tokens_out": 30 }),
    }
}

#[divan::bench]
fn in_memory_append(bencher: Bencher) {
    let trail = AuditTrail::in_memory();
    let mut n = 0;
    bencher.bench_local(|| {
        n += 1;
        trail.record(record(n)).expect("in-memory record")
    });
}

const CHAIN: u64 = 100_000;

#[divan::bench(sample_count = 10)]
fn verify_100k_entries(bencher: Bencher) {
    let trail = AuditTrail::new(Arc::new(MemoryStore::new())).expect("empty store");
    for n in 0..CHAIN {
        trail.record(record(n)).expect("in-memory record");
    }
    bencher
        .counter(divan::counter::ItemsCount::new(CHAIN))
        .bench_local(|| trail.verify_integrity().expect("intact chain"));
}

const WRITERS: u64 = 8;
const PER_WRITER: u64 = 500;

#[divan::bench(sample_count = 5, sample_size = 1)]
fn durable_append_8_writers(bencher: Bencher) {
    bencher
        .counter(divan::counter::ItemsCount::new(WRITERS * PER_WRITER))
        .with_inputs(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let store = SqliteStore::open(&dir.path().join("audit.db")).expect("a new store");
            let trail = AuditTrail::new(Arc::new(store)).expect("an empty chain");
            (dir, trail)
        })
        .bench_local_values(|(dir, trail)| {
            std::thread::scope(|scope| {
                for w in 0..WRITERS {
                    let trail = trail.clone();
                    scope.spawn(move || {
                        for i in 0..PER_WRITER {
                            trail
                                .record(record(w * PER_WRITER + i))
                                .expect("durable record");
                        }
                    });
                }
            });
            (dir, trail)
        });
}
