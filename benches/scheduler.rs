//! Scheduler throughput: 100,000 no-op tasks (latency off, `max_concurrent` 64) through the
//! scheduler, against spawning and joining the same no-op work directly on tokio.
//! Run: `cargo bench --bench scheduler`.

use std::sync::Arc;
use std::time::Duration;

use divan::Bencher;
use veyra::events::{Event, EventSink, Priority};
use veyra::runtime::scheduler::{
    Scheduler, SchedulerConfig, TaskContext, TaskError, TaskHandler, TaskSpec, no_payload,
};

fn main() {
    divan::main();
}

const TASKS: usize = 100_000;

/// Drops events, as a bus with no subscriber does.
#[derive(Debug)]
struct Discard;

impl EventSink for Discard {
    fn emit(&self, _event: Event) {}
}

struct NoOp;

#[async_trait::async_trait]
impl TaskHandler for NoOp {
    async fn run(&self, _task: TaskContext) -> Result<(), TaskError> {
        Ok(())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime builds")
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn scheduler_100k_noop_tasks(bencher: Bencher) {
    let rt = runtime();
    bencher
        .counter(divan::counter::ItemsCount::new(TASKS))
        .bench_local(|| {
            rt.block_on(async {
                let config = SchedulerConfig {
                    max_concurrent: 64,
                    queue_capacity: TASKS,
                    max_retries: 0,
                    backoff: Duration::ZERO,
                    backoff_max: Duration::ZERO,
                    jitter: false,
                    seed: 1,
                    task_timeout: None,
                    aging: None,
                };
                let s = Scheduler::new(config, Arc::new(Discard), None);
                s.register_handler("noop", Arc::new(NoOp));
                for _ in 0..TASKS {
                    s.submit(TaskSpec {
                        kind: "noop".into(),
                        title: String::new(),
                        priority: Priority::Normal,
                        payload: no_payload(),
                        backend: None,
                        model: None,
                        actor: None,
                        local: false,
                    })
                    .expect("the queue holds every task");
                }
                s.wait_idle().await;
            })
        });
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn tokio_spawn_join_100k_noop(bencher: Bencher) {
    let rt = runtime();
    bencher
        .counter(divan::counter::ItemsCount::new(TASKS))
        .bench_local(|| {
            rt.block_on(async {
                let handles: Vec<_> = (0..TASKS).map(|_| tokio::spawn(async {})).collect();
                for h in handles {
                    h.await.expect("a no-op task completes");
                }
            })
        });
}
