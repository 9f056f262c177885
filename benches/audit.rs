//! Audit trail figures: in-memory append; verification of 100,000 entries, in memory and from
//! the SQLite store (what `veyra audit verify` does: chain, tree, checkpoints, signer, witness);
//! durable (SQLite, WAL, `synchronous=FULL`) append from 8 and 64 concurrent writers sharing group
//! commits, each commit signed and witnessed; opening a 1,000,000-entry store for append, its
//! checks included. Run: `cargo bench --bench audit`.

use std::sync::Arc;

use divan::Bencher;
use veyra::governance::{
    AuditEventType, AuditRecord, AuditTrail, MemoryStore, SqliteStore, StoreOptions,
    summarize_input,
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
        trail.record_blocking(record(n)).expect("in-memory record")
    });
}

const CHAIN: u64 = 100_000;

#[divan::bench(sample_count = 10)]
fn verify_100k_entries(bencher: Bencher) {
    let trail = AuditTrail::new(Arc::new(MemoryStore::new())).expect("empty store");
    for n in 0..CHAIN {
        trail.record_blocking(record(n)).expect("in-memory record");
    }
    bencher
        .counter(divan::counter::ItemsCount::new(CHAIN))
        .bench_local(|| trail.verify_integrity().expect("intact chain"));
}

/// A store of `n` entries in a fresh directory, written by many threads so commits are large.
fn durable_store(n: u64) -> (tempfile::TempDir, std::path::PathBuf, StoreOptions) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("data").join("audit.db");
    let options = StoreOptions::witness_in(dir.path().join("state"));
    let store = SqliteStore::open(&path, &options).expect("a new store");
    let trail = AuditTrail::new(Arc::new(store)).expect("an empty chain");
    const THREADS: u64 = 64;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let trail = trail.clone();
            scope.spawn(move || {
                for i in (t..n).step_by(THREADS as usize) {
                    trail.record_blocking(record(i)).expect("durable record");
                }
            });
        }
    });
    (dir, path, options)
}

#[divan::bench(sample_count = 10)]
fn verify_100k_entries_from_the_store(bencher: Bencher) {
    let (_dir, path, options) = durable_store(CHAIN);
    let trail = AuditTrail::new(Arc::new(
        SqliteStore::open_read_only(&path, &options).expect("the store"),
    ))
    .expect("a trail");
    bencher
        .counter(divan::counter::ItemsCount::new(CHAIN))
        .bench_local(|| trail.verify_integrity().expect("intact store"));
}

const MILLION: u64 = 1_000_000;

#[divan::bench(sample_count = 5, sample_size = 1)]
fn open_1m_entry_store_for_append(bencher: Bencher) {
    let (_dir, path, options) = durable_store(MILLION);
    bencher.bench_local(|| SqliteStore::open(&path, &options).expect("a sound store"));
}

/// Entries per sample, shared among the writers.
const ENTRIES: u64 = 4_000;

/// Durable append from `writers` concurrent writers (threads, each waiting for its own
/// acknowledgement): the writer groups what is waiting into one commit, so more writers fill
/// each fsync.
#[divan::bench(args = [8, 64], sample_count = 5, sample_size = 1)]
fn durable_append(bencher: Bencher, writers: u64) {
    let per_writer = ENTRIES / writers;
    bencher
        .counter(divan::counter::ItemsCount::new(writers * per_writer))
        .with_inputs(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let store = SqliteStore::open(
                &dir.path().join("data").join("audit.db"),
                &StoreOptions::witness_in(dir.path().join("state")),
            )
            .expect("a new store");
            let trail = AuditTrail::new(Arc::new(store)).expect("an empty chain");
            (dir, trail)
        })
        .bench_local_values(|(dir, trail)| {
            std::thread::scope(|scope| {
                for w in 0..writers {
                    let trail = trail.clone();
                    scope.spawn(move || {
                        for i in 0..per_writer {
                            trail
                                .record_blocking(record(w * per_writer + i))
                                .expect("durable record");
                        }
                    });
                }
            });
            (dir, trail)
        });
}
