//! Memory held by 1,000,000 queued tasks: submits them to a scheduler whose only slot is
//! blocked, then reports the growth of resident memory per task and the peak RSS (Linux
//! `/proc/self/status`). Run: `cargo bench --bench scheduler_memory`.

use std::sync::Arc;

use veyra::events::{Event, EventSink, Priority};
use veyra::runtime::scheduler::{
    Scheduler, SchedulerConfig, TaskContext, TaskError, TaskHandler, TaskSpec, no_payload,
};

const TASKS: usize = 1_000_000;

#[derive(Debug)]
struct Discard;

impl EventSink for Discard {
    fn emit(&self, _event: Event) {}
}

/// Never finishes on its own: keeps the one slot busy so every other task stays queued.
struct Block;

#[async_trait::async_trait]
impl TaskHandler for Block {
    async fn run(&self, task: TaskContext) -> Result<(), TaskError> {
        task.cancel.cancelled().await;
        Ok(())
    }
}

/// `VmRSS` and `VmHWM` in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and only builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime builds");
    rt.block_on(async {
        let config = SchedulerConfig {
            max_concurrent: 1,
            queue_capacity: TASKS + 1,
            ..SchedulerConfig::default()
        };
        let s = Scheduler::new(config, Arc::new(Discard), None);
        s.register_handler("block", Arc::new(Block));
        let spec = || TaskSpec {
            kind: "block".into(),
            title: String::new(),
            priority: Priority::Normal,
            payload: no_payload(),
            backend: None,
            model: None,
            actor: None,
            local: false,
        };
        s.submit(spec()).expect("first task");
        tokio::task::yield_now().await;
        let (before, _) = rss_kib();
        for _ in 0..TASKS {
            s.submit(spec()).expect("the queue holds every task");
        }
        let (after, peak) = rss_kib();
        let per_task = (after.saturating_sub(before) * 1024) as f64 / TASKS as f64;
        println!(
            "{TASKS} queued tasks: {per_task:.0} bytes per task (RSS {} MiB → {} MiB, peak {} MiB); queued = {}",
            before / 1024,
            after / 1024,
            peak / 1024,
            s.queued()
        );
    });
}
