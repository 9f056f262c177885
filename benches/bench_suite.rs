//! The benchmark suite's own cost: generating, running and scoring 1,000 tasks of
//! every built family (`FamilyId::ALL`, at medium; an IMDP task is a dialogue of 7 executions)
//! on the mock backend with the link off, audit in memory and the run store in memory; and the
//! runner's overhead per task against bare `execute_async` calls of the same prompts at the
//! same concurrency. Targets: the 7 × 1,000 tasks in ≤ 2 s, and overhead ≤ 2× a bare
//! `execute_async`.
//! Run: `cargo bench --bench bench_suite`.
//!
//! Measured 2026-12-01 (evening) on 2 shared cores, two-thread runtime (divan medians; this
//! machine's speed moved by a fifth between invocations): all seven families × 1,000
//! generated, run and scored in 1.78–2.01 s over six invocations, median 1.87 s (the previous
//! build: 2.07–2.14 s). Generation is ~0.45 s of it, nearly all MSGA (one Cedar text parse
//! per world it draws). The runner against bare `execute_async` in the same invocation, over
//! three: 1.31–1.56× at 1,000 tasks per family, 1.17–1.44× at 50 (the previous build:
//! 1.84–2.03×). See the README's Performance table.

use std::sync::Arc;

use divan::Bencher;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio_util::sync::CancellationToken;
use veyra::VeyraCore;
use veyra::benchmarks::runner::request_for;
use veyra::benchmarks::{BenchStore, BenchTask, Difficulty, FamilyId, RunPlan, Runner};
use veyra::config::VeyraConfig;

/// The allocator the `veyra` binary runs on (`src/main.rs`), so these figures are its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

/// The runtime `veyra` itself runs on: two worker threads.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a two-thread runtime builds")
}

/// A core on the mock with the link off and audit in memory; TOME's and ASR's scratch
/// directories go to a temporary workspace (removed when the returned directory is dropped),
/// not the user's data dir.
fn core() -> (VeyraCore, tempfile::TempDir) {
    let mut config = VeyraConfig::default();
    config.governance.store = veyra::config::AuditStoreKind::Memory;
    config.latency.simulate = false;
    let workspace = tempfile::tempdir().expect("a temporary directory for the workspace");
    config.tools.workspace = Some(workspace.path().to_path_buf());
    let core = VeyraCore::new(config).expect("default config is valid");
    (core, workspace)
}

fn plan(count: u32) -> RunPlan {
    RunPlan {
        families: FamilyId::ALL.to_vec(),
        count,
        difficulty: Difficulty::Medium,
        seed: 7,
        epochs: 1,
        weights: Default::default(),
    }
}

/// The families whose tasks are one execution each (not IMDP's dialogues), for comparing the
/// runner with bare executions.
fn single_shot_plan(count: u32) -> RunPlan {
    RunPlan {
        families: FamilyId::ALL
            .into_iter()
            .filter(|f| *f != FamilyId::Imdp)
            .collect(),
        count,
        difficulty: Difficulty::Medium,
        seed: 7,
        epochs: 1,
        weights: Default::default(),
    }
}

/// Generation alone: 1,000 tasks of each family.
#[divan::bench(args = FamilyId::ALL, sample_count = 5, sample_size = 1)]
fn generate_1000(family: FamilyId) -> Vec<BenchTask> {
    veyra::benchmarks::family(family)
        .generate(1000, Difficulty::Medium, 7)
        .expect("the generators work")
}

/// Generate, run and score 1,000 tasks of every family through the core into an in-memory
/// store. Each sample gets a fresh core, as each `veyra bench` gets a fresh process (one core
/// for all samples would carry every earlier sample's audit entries into the next), and the
/// core and store are dropped after the clock stops.
#[divan::bench(sample_count = 8, sample_size = 1)]
fn generate_run_score_all_x1000(bencher: Bencher) {
    let rt = runtime();
    bencher
        .with_inputs(|| {
            let store = Arc::new(BenchStore::in_memory().expect("an in-memory store"));
            let (core, workspace) = core();
            (Runner::new(core, store), workspace)
        })
        .bench_local_values(|(runner, workspace)| {
            let report = rt
                .block_on(runner.start(&plan(1000), &CancellationToken::new(), &mut |_| {}))
                .expect("the run completes");
            (report, runner, workspace)
        });
}

/// Pre-generated tasks of every single-shot family through the runner: scoring, the store,
/// progress. (IMDP's dialogues are left out: the runner plays 7 executions for each.) The
/// store is opened outside the clock (once per process, not per task); the run's record,
/// summary and `BENCHMARK` entry are inside it. At 50 per family those per-run costs weigh on
/// 300 tasks; at 1,000 per family (a `--count 1000` run) they are spread as in a real run.
#[divan::bench(args = [50, 1000], sample_count = 12, sample_size = 1)]
fn runner_tasks_per_family(bencher: Bencher, count: u32) {
    let rt = runtime();
    let (core, _workspace) = core();
    let plan = single_shot_plan(count);
    let tasks = plan.generate().expect("the generators work");
    bencher
        .with_inputs(|| {
            let store = Arc::new(BenchStore::in_memory().expect("an in-memory store"));
            (Runner::new(core.clone(), store), tasks.clone())
        })
        .bench_local_values(|(runner, tasks)| {
            let report = rt
                .block_on(runner.start_with_tasks(
                    &plan,
                    tasks,
                    &CancellationToken::new(),
                    &mut |_| {},
                ))
                .expect("the run completes");
            (report, runner)
        });
}

/// The same prompts as bare `execute_async` calls at the same concurrency.
#[divan::bench(args = [50, 1000], sample_count = 12, sample_size = 1)]
fn bare_execute_async_tasks_per_family(bencher: Bencher, count: u32) {
    let rt = runtime();
    let (core, _workspace) = core();
    let concurrency = core.config().runtime.max_concurrent;
    let requests: Vec<_> = single_shot_plan(count)
        .generate()
        .expect("the generators work")
        .iter()
        .map(request_for)
        .collect();
    bencher.bench_local(|| {
        rt.block_on(async {
            let mut queue = requests.iter().cloned();
            let mut running = FuturesUnordered::new();
            let mut done = 0usize;
            loop {
                while running.len() < concurrency {
                    let Some(r) = queue.next() else { break };
                    running.push(core.execute_async(r));
                }
                let Some(result) = running.next().await else {
                    break;
                };
                result.expect("the mock answers");
                done += 1;
            }
            done
        })
    });
}

/// The single-shot families one by one: 50 tasks through the runner.
#[divan::bench(args = SINGLE_SHOT, sample_count = 10, sample_size = 1)]
fn runner_50_of(bencher: Bencher, family: FamilyId) {
    let rt = runtime();
    let (core, _workspace) = core();
    let mut plan = single_shot_plan(50);
    plan.families = vec![family];
    let tasks = plan.generate().expect("the generators work");
    bencher
        .with_inputs(|| tasks.clone())
        .bench_local_values(|tasks| {
            let store = Arc::new(BenchStore::in_memory().expect("an in-memory store"));
            let runner = Runner::new(core.clone(), store);
            rt.block_on(runner.start_with_tasks(
                &plan,
                tasks,
                &CancellationToken::new(),
                &mut |_| {},
            ))
            .expect("the run completes")
        });
}

const SINGLE_SHOT: [FamilyId; 6] = [
    FamilyId::Cplc,
    FamilyId::Msga,
    FamilyId::Wmrt,
    FamilyId::Icsd,
    FamilyId::Tome,
    FamilyId::Asr,
];

/// The same, as bare `execute_async` calls.
#[divan::bench(args = SINGLE_SHOT, sample_count = 10, sample_size = 1)]
fn bare_50_of(bencher: Bencher, family: FamilyId) {
    let rt = runtime();
    let (core, _workspace) = core();
    let concurrency = core.config().runtime.max_concurrent;
    let mut plan = single_shot_plan(50);
    plan.families = vec![family];
    let requests: Vec<_> = plan
        .generate()
        .expect("the generators work")
        .iter()
        .map(request_for)
        .collect();
    bencher.bench_local(|| {
        rt.block_on(async {
            let mut queue = requests.iter().cloned();
            let mut running = FuturesUnordered::new();
            loop {
                while running.len() < concurrency {
                    let Some(r) = queue.next() else { break };
                    running.push(core.execute_async(r));
                }
                let Some(result) = running.next().await else {
                    break;
                };
                result.expect("the mock answers");
            }
        })
    });
}

/// Samples in the eval-suite figures.
const SUITE_SAMPLES: usize = 10_000;

/// A 10,000-sample YAML suite of arithmetic questions (`number` scorer), as a user writes one.
fn suite_text() -> String {
    let mut text = String::from(
        "name: generated\nversion: \"1\"\nscorer: {type: number, tolerance: 0}\nsamples:\n",
    );
    for i in 0..SUITE_SAMPLES {
        text.push_str(&format!(
            "  - id: s{i}\n    input: What is {i} plus {}?\n    target: {}\n",
            i % 97,
            i + i % 97
        ));
    }
    text
}

/// An eval suite of 10,000 samples on the mock: parsed and checked from its YAML, each sample
/// run through the core and scored, the summary made (the figure: the runner's cost
/// per task against a bare execution, `bare_execute_async_suite_prompts` below).
#[divan::bench(sample_count = 6, sample_size = 1)]
fn suite_10000_parse_run_score(bencher: Bencher) {
    let rt = runtime();
    let (core, _workspace) = core();
    let text = suite_text();
    let path = std::path::Path::new("generated.yaml");
    let in_flight = veyra::benchmarks::runner::in_flight(&core.config().runtime);
    bencher.bench_local(|| {
        rt.block_on(async {
            let suite = veyra::benchmarks::suite::format::from_yaml(&text, path)
                .expect("the generated suite is valid");
            let report = veyra::benchmarks::suite::run_suite(
                &core,
                &suite,
                None,
                in_flight,
                &CancellationToken::new(),
                &mut |_| {},
            )
            .await
            .expect("the suite runs");
            assert_eq!(report.summary.n, SUITE_SAMPLES);
            report
        })
    });
}

/// The same 10,000 prompts as bare `execute_async` calls at the same concurrency.
#[divan::bench(sample_count = 6, sample_size = 1)]
fn bare_execute_async_suite_prompts(bencher: Bencher) {
    let rt = runtime();
    let (core, _workspace) = core();
    let suite = veyra::benchmarks::suite::format::from_yaml(
        &suite_text(),
        std::path::Path::new("generated.yaml"),
    )
    .expect("the generated suite is valid");
    let requests: Vec<_> = suite
        .samples
        .iter()
        .map(|s| veyra::benchmarks::suite::run::request_for(s, suite.system.as_deref()))
        .collect();
    let in_flight = veyra::benchmarks::runner::in_flight(&core.config().runtime);
    bencher.bench_local(|| {
        rt.block_on(async {
            let mut queue = requests.iter().cloned();
            let mut running = FuturesUnordered::new();
            let mut done = 0usize;
            loop {
                while running.len() < in_flight {
                    let Some(r) = queue.next() else { break };
                    running.push(core.execute_async(r));
                }
                let Some(result) = running.next().await else {
                    break;
                };
                result.expect("the mock answers");
                done += 1;
            }
            done
        })
    });
}
