//! Scheduler behaviour under tokio's paused clock: order, limits, retries, cancellation of every
//! state, aging, shutdown, and that no task is ever lost.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use tokio::time::Instant;

use super::*;
use crate::config::{LatencyConfig, LatencyMode, LatencyPreset};
use crate::events::{Event, EventSink, Priority, TaskStatus};
use crate::runtime::latency::LinkSim;

/// Collects every event in order.
#[derive(Debug, Default)]
struct Collector(Mutex<Vec<Event>>);

impl EventSink for Collector {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Collector {
    fn states(&self, id: TaskId) -> Vec<TaskStatus> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::TaskState { id: i, status, .. } if *i == id => Some(status.clone()),
                _ => None,
            })
            .collect()
    }

    fn names(&self, id: TaskId) -> Vec<&'static str> {
        self.states(id).iter().map(TaskStatus::name).collect()
    }

    /// Ids in the order they entered `Running`.
    fn started(&self) -> Vec<TaskId> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::TaskState {
                    id,
                    status: TaskStatus::Running,
                    ..
                } => Some(*id),
                _ => None,
            })
            .collect()
    }
}

/// Sleeps `ms` from the payload (cancellable), tracking concurrency.
#[derive(Default)]
struct Sleepy {
    now: AtomicUsize,
    max: AtomicUsize,
}

#[async_trait::async_trait]
impl TaskHandler for Sleepy {
    async fn run(&self, task: TaskContext) -> Result<(), TaskError> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        let ms = task
            .payload
            .downcast_ref::<serde_json::Value>()
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(10);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => {}
            () = task.cancel.cancelled() => {}
        }
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Fails the first `failures` attempts, recording when each attempt started.
struct Flaky {
    failures: u32,
    retryable: bool,
    attempts: AtomicU32,
    starts: Mutex<Vec<Instant>>,
}

impl Flaky {
    fn new(failures: u32, retryable: bool) -> Self {
        Flaky {
            failures,
            retryable,
            attempts: AtomicU32::new(0),
            starts: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl TaskHandler for Flaky {
    async fn run(&self, _task: TaskContext) -> Result<(), TaskError> {
        self.starts.lock().unwrap().push(Instant::now());
        let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= self.failures {
            let e = if self.retryable {
                TaskError::retryable("server", "injected outage")
            } else {
                TaskError::permanent("bad_request", "injected refusal")
            };
            return Err(e);
        }
        Ok(())
    }
}

/// Runs until cancelled; counts the cancellations it saw.
#[derive(Default)]
struct UntilCancelled {
    saw_cancel: AtomicUsize,
}

#[async_trait::async_trait]
impl TaskHandler for UntilCancelled {
    async fn run(&self, task: TaskContext) -> Result<(), TaskError> {
        task.cancel.cancelled().await;
        self.saw_cancel.fetch_add(1, Ordering::SeqCst);
        Err(TaskError::permanent("cancelled", "stopped"))
    }
}

fn config(max_concurrent: usize) -> SchedulerConfig {
    SchedulerConfig {
        max_concurrent,
        queue_capacity: 10_000,
        max_retries: 3,
        backoff: Duration::from_millis(100),
        backoff_max: Duration::from_millis(1000),
        jitter: false,
        seed: 7,
        task_timeout: None,
        aging: None,
    }
}

fn spec(kind: &str, priority: Priority, payload: serde_json::Value) -> TaskSpec {
    TaskSpec {
        kind: kind.into(),
        title: "t".into(),
        priority,
        payload: Arc::new(payload),
        backend: None,
        model: None,
        actor: None,
        local: false,
    }
}

fn scheduler(cfg: SchedulerConfig, link: Option<Arc<LinkSim>>) -> (Scheduler, Arc<Collector>) {
    let events = Arc::new(Collector::default());
    let s = Scheduler::new(cfg, events.clone(), link);
    (s, events)
}

/// Panics on the first attempt of a task whose payload is `"panic"`.
struct Panicky;

#[async_trait::async_trait]
impl TaskHandler for Panicky {
    async fn run(&self, task: TaskContext) -> Result<(), TaskError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if task.payload.downcast_ref::<serde_json::Value>() == Some(&"panic".into()) {
            panic!("injected handler bug");
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_fails_its_task_and_frees_its_slot() {
    crate::runtime::contain::install_hook();
    let (s, events) = scheduler(config(1), None);
    s.register_handler("panicky", Arc::new(Panicky));
    let bad = s
        .submit(spec("panicky", Priority::Normal, "panic".into()))
        .unwrap();
    let good = s
        .submit(spec("panicky", Priority::Normal, "fine".into()))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), s.wait_idle())
        .await
        .expect("nothing waits for ever");
    let last = events.states(bad).pop().unwrap();
    match last {
        TaskStatus::Failed { kind, error, .. } => {
            assert_eq!(kind, "internal");
            assert!(error.contains("injected handler bug"), "{error}");
        }
        other => panic!("expected failed, got {other:?}"),
    }
    assert_eq!(events.names(good), ["queued", "running", "succeeded"]);
    assert_eq!(s.running(), 0, "the slot is released");
    assert_eq!(s.task(bad).unwrap().attempts, 1, "a panic is not retried");
}

#[tokio::test(start_paused = true)]
async fn the_longest_task_timeout_does_not_overflow_the_clock() {
    let mut cfg = config(1);
    cfg.task_timeout = Some(Duration::from_secs(u64::MAX));
    let (s, events) = scheduler(cfg, None);
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let id = s.submit(spec("sleep", Priority::Normal, 5.into())).unwrap();
    s.wait_idle().await;
    assert_eq!(events.names(id), ["queued", "running", "succeeded"]);
}

#[tokio::test(start_paused = true)]
async fn priority_order_under_contention_and_fifo_within_a_level() {
    let (s, events) = scheduler(config(1), None);
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let blocker = s
        .submit(spec("sleep", Priority::Normal, 100.into()))
        .unwrap();
    let order = [
        Priority::Low,
        Priority::Critical,
        Priority::Background,
        Priority::High,
        Priority::Normal,
        Priority::Critical,
    ];
    let ids: Vec<TaskId> = order
        .iter()
        .map(|p| s.submit(spec("sleep", *p, 10.into())).unwrap())
        .collect();
    s.wait_idle().await;
    let expected = vec![blocker, ids[1], ids[5], ids[3], ids[4], ids[0], ids[2]];
    assert_eq!(events.started(), expected);
}

#[tokio::test(start_paused = true)]
async fn every_transition_is_one_event_without_a_link() {
    let (s, events) = scheduler(config(2), None);
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let id = s.submit(spec("sleep", Priority::Normal, 5.into())).unwrap();
    s.wait_idle().await;
    assert_eq!(events.names(id), ["queued", "running", "succeeded"]);
    let submitted = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::TaskSubmitted { .. }))
        .count();
    assert_eq!(submitted, 1);
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_exact_backoff_schedule() {
    let (s, events) = scheduler(config(1), None);
    let flaky = Arc::new(Flaky::new(3, true));
    s.register_handler("flaky", flaky.clone());
    let start = Instant::now();
    let id = s
        .submit(spec("flaky", Priority::Normal, serde_json::Value::Null))
        .unwrap();
    s.wait_idle().await;
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 4);
    let offsets: Vec<u128> = flaky
        .starts
        .lock()
        .unwrap()
        .iter()
        .map(|t| (*t - start).as_millis())
        .collect();
    assert_eq!(offsets, [0, 100, 300, 700]);
    let delays: Vec<u64> = events
        .states(id)
        .iter()
        .filter_map(|st| match st {
            TaskStatus::Retrying { delay_ms, .. } => Some(*delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [100, 200, 400]);
    assert_eq!(events.names(id).last(), Some(&"succeeded"));
    let info = s.task(id).unwrap();
    assert_eq!(
        (info.kind.as_str(), info.state, info.attempts),
        ("flaky", "succeeded", 4)
    );
    let (started, finished) = (info.started_at.unwrap(), info.finished_at.unwrap());
    assert!(info.created_at <= started && started <= finished);
    assert_eq!((finished - info.created_at).num_milliseconds(), 700);
    assert!(s.task(TaskId::new()).is_none());
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_limit_and_only_for_retryable_errors() {
    let (s, events) = scheduler(config(1), None);
    let always = Arc::new(Flaky::new(u32::MAX, true));
    s.register_handler("always", always.clone());
    let refused = Arc::new(Flaky::new(u32::MAX, false));
    s.register_handler("refused", refused.clone());
    let a = s
        .submit(spec("always", Priority::Normal, serde_json::Value::Null))
        .unwrap();
    let b = s
        .submit(spec("refused", Priority::Normal, serde_json::Value::Null))
        .unwrap();
    s.wait_idle().await;
    assert_eq!(
        always.attempts.load(Ordering::SeqCst),
        4,
        "1 attempt + max_retries 3"
    );
    assert!(
        matches!(events.states(a).last(), Some(TaskStatus::Failed { kind, .. }) if kind == "server")
    );
    assert_eq!(refused.attempts.load(Ordering::SeqCst), 1);
    assert_eq!(events.names(b), ["queued", "running", "failed"]);
}

#[tokio::test(start_paused = true)]
async fn jitter_is_seeded_and_bounded() {
    async fn delays(seed: u64) -> Vec<u64> {
        let mut cfg = config(1);
        cfg.jitter = true;
        cfg.seed = seed;
        let (s, events) = scheduler(cfg, None);
        s.register_handler("always", Arc::new(Flaky::new(u32::MAX, true)));
        let id = s
            .submit(spec("always", Priority::Normal, serde_json::Value::Null))
            .unwrap();
        s.wait_idle().await;
        events
            .states(id)
            .iter()
            .filter_map(|st| match st {
                TaskStatus::Retrying { delay_ms, .. } => Some(*delay_ms),
                _ => None,
            })
            .collect()
    }
    let a = delays(42).await;
    assert_eq!(a, delays(42).await, "same seed, same schedule");
    assert_ne!(a, delays(43).await, "another seed, another schedule");
    for (d, full) in a.iter().zip([100u64, 200, 400]) {
        assert!(
            (full / 2..=full).contains(d),
            "{d} not in [{}, {full}]",
            full / 2
        );
    }
}

#[tokio::test(start_paused = true)]
async fn cancel_works_on_queued_running_and_waiting_tasks() {
    let (s, events) = scheduler(config(1), None);
    let until = Arc::new(UntilCancelled::default());
    s.register_handler("until", until.clone());
    s.register_handler("always", Arc::new(Flaky::new(u32::MAX, true)));
    let running = s
        .submit(spec("until", Priority::Normal, serde_json::Value::Null))
        .unwrap();
    let queued = s
        .submit(spec("until", Priority::Normal, serde_json::Value::Null))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    s.cancel(queued).unwrap();
    assert_eq!(events.names(queued), ["queued", "cancelled"]);
    s.cancel(running).unwrap();
    s.cancel(running).unwrap(); // idempotent
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(events.names(running), ["queued", "running", "cancelled"]);
    assert_eq!(
        until.saw_cancel.load(Ordering::SeqCst),
        1,
        "the handler was told, not abandoned"
    );

    let delayed = s
        .submit(spec("always", Priority::Normal, serde_json::Value::Null))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(events.names(delayed).last(), Some(&"retrying"));
    s.cancel(delayed).unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(events.names(delayed).last(), Some(&"cancelled"));
    s.wait_idle().await;
    assert_eq!(s.running(), 0);
    s.cancel(delayed).unwrap();
    assert_eq!(
        events
            .names(delayed)
            .iter()
            .filter(|n| **n == "cancelled")
            .count(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_unknown_or_finished_tasks_says_why() {
    let (s, _) = scheduler(config(1), None);
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let done = s.submit(spec("sleep", Priority::Normal, 1.into())).unwrap();
    s.wait_idle().await;
    let err = s.cancel(done).unwrap_err();
    assert_eq!(
        err,
        CancelError::Finished {
            id: done,
            state: "succeeded"
        }
    );
    assert!(err.to_string().contains("already succeeded"));
    let unknown = TaskId::new();
    assert_eq!(
        s.cancel(unknown).unwrap_err(),
        CancelError::Unknown(unknown)
    );
}

fn fixed_link(
    preset: LatencyPreset,
    time_scale: f64,
    start: chrono::DateTime<Utc>,
) -> Arc<LinkSim> {
    let cfg = LatencyConfig {
        simulate: true,
        preset,
        mode: if preset == LatencyPreset::Mars {
            LatencyMode::Ephemeris
        } else {
            LatencyMode::Fixed
        },
        time_scale,
        ..LatencyConfig::default()
    };
    Arc::new(LinkSim::new(&cfg, 1, start))
}

#[tokio::test(start_paused = true)]
async fn a_task_travels_up_runs_and_travels_down_on_scaled_time() {
    let link = fixed_link(LatencyPreset::Lunar, 10.0, Utc::now());
    let (s, events) = scheduler(config(1), Some(link));
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let start = Instant::now();
    let id = s.submit(spec("sleep", Priority::Normal, 0.into())).unwrap();
    s.wait_idle().await;
    let states = events.states(id);
    assert_eq!(
        states.iter().map(TaskStatus::name).collect::<Vec<_>>(),
        ["queued", "uplink", "running", "downlink", "succeeded"]
    );
    let TaskStatus::Uplink { sim_ms, real_ms } = states[1] else {
        unreachable!()
    };
    let TaskStatus::Downlink {
        real_ms: down_ms, ..
    } = states[3]
    else {
        unreachable!()
    };
    // Lunar `fixed`: the middle of 1.19–1.36 light-seconds, a tenth of it in real time.
    assert!((1270..=1280).contains(&sim_ms), "{sim_ms}");
    assert_eq!(real_ms, sim_ms / 10);
    let elapsed = start.elapsed().as_millis();
    // Each sleep is rounded up to the timer's millisecond.
    assert!(
        elapsed.abs_diff(u128::from(real_ms + down_ms)) <= 2,
        "both legs, no processing time: {elapsed}"
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_mid_transit_and_during_blackout() {
    let link = fixed_link(LatencyPreset::Lunar, 1.0, Utc::now());
    let (s, events) = scheduler(config(2), Some(link));
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let up = s.submit(spec("sleep", Priority::Normal, 0.into())).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.cancel(up).unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(events.names(up), ["queued", "uplink", "cancelled"]);
    let down = s.submit(spec("sleep", Priority::Normal, 0.into())).unwrap();
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert_eq!(events.names(down).last(), Some(&"downlink"));
    s.cancel(down).unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(events.names(down).last(), Some(&"cancelled"));

    // 2026-01-09: Mars in solar conjunction.
    let conjunction = Utc.with_ymd_and_hms(2026, 1, 9, 0, 0, 0).unwrap();
    let (s, events) = scheduler(
        config(1),
        Some(fixed_link(LatencyPreset::Mars, 3600.0, conjunction)),
    );
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let id = s.submit(spec("sleep", Priority::Normal, 0.into())).unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let TaskStatus::Blackout { sim_ms, real_ms } = events.states(id)[1] else {
        panic!("expected a blackout: {:?}", events.names(id));
    };
    assert!(sim_ms > 86_400_000, "a conjunction lasts days: {sim_ms}");
    assert_eq!(real_ms, sim_ms / 3600);
    s.cancel(id).unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(events.names(id), ["queued", "blackout", "cancelled"]);
}

#[tokio::test(start_paused = true)]
async fn a_blackout_is_waited_out_then_the_task_goes_up() {
    let conjunction = Utc.with_ymd_and_hms(2026, 1, 9, 0, 0, 0).unwrap();
    let (s, events) = scheduler(
        config(1),
        Some(fixed_link(LatencyPreset::Mars, 86_400.0, conjunction)),
    );
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let id = s.submit(spec("sleep", Priority::Normal, 0.into())).unwrap();
    s.wait_idle().await;
    assert_eq!(
        events.names(id),
        [
            "queued",
            "blackout",
            "uplink",
            "running",
            "downlink",
            "succeeded"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_and_drops_nothing() {
    let mut cfg = config(1);
    cfg.queue_capacity = 2;
    let (s, events) = scheduler(cfg, None);
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let ids: Vec<TaskId> = (0..3)
        .map(|_| {
            s.submit(spec("sleep", Priority::Normal, 10.into()))
                .unwrap()
        })
        .collect();
    let err = s
        .submit(spec("sleep", Priority::Normal, 10.into()))
        .unwrap_err();
    assert_eq!(err, SubmitError::QueueFull { capacity: 2 });
    assert!(err.to_string().contains("runtime.queue_capacity"));
    s.wait_idle().await;
    for id in ids {
        assert_eq!(events.names(id).last(), Some(&"succeeded"));
    }
}

#[tokio::test(start_paused = true)]
async fn unknown_kinds_are_refused_at_submit() {
    let (s, _) = scheduler(config(1), None);
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let err = s
        .submit(spec("slep", Priority::Normal, serde_json::Value::Null))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no handler for task kind 'slep'; registered kinds: sleep"
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_over_its_time_limit_fails_as_timeout() {
    let mut cfg = config(1);
    cfg.max_retries = 0;
    cfg.task_timeout = Some(Duration::from_secs(1));
    let (s, events) = scheduler(cfg, None);
    let until = Arc::new(UntilCancelled::default());
    s.register_handler("until", until.clone());
    let start = Instant::now();
    let id = s
        .submit(spec("until", Priority::Normal, serde_json::Value::Null))
        .unwrap();
    s.wait_idle().await;
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert!(
        matches!(events.states(id).last(), Some(TaskStatus::Failed { kind, .. }) if kind == "timeout")
    );
    assert_eq!(until.saw_cancel.load(Ordering::SeqCst), 1);
}

/// Marks the effect its payload names (`"streamed"`, `"acted"`, or none), then fails as its
/// payload's second word says: `hang` waits to be stopped (a timeout), `fail` returns a
/// retryable error at once.
#[derive(Default)]
struct Effectful {
    attempts: AtomicUsize,
}

#[async_trait::async_trait]
impl TaskHandler for Effectful {
    async fn run(&self, task: TaskContext) -> Result<(), TaskError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let plan = task
            .payload
            .downcast_ref::<serde_json::Value>()
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        if plan.starts_with("streamed") {
            task.effects.mark_streamed();
        } else if plan.starts_with("acted") {
            task.effects.mark_acted();
        }
        if plan.ends_with("hang") {
            task.cancel.cancelled().await;
            return Err(TaskError::permanent("cancelled", "stopped"));
        }
        Err(TaskError::retryable("server", "HTTP 500"))
    }
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_streamed_or_acted_is_never_run_again_by_any_retry_layer() {
    // (payload, attempts expected, not_retried expected)
    let cases = [
        ("none hang", 4, None),
        ("streamed hang", 1, Some("streamed")),
        ("acted hang", 1, Some("tools_acted")),
        ("none fail", 4, None),
        ("streamed fail", 1, Some("streamed")),
        ("acted fail", 1, Some("tools_acted")),
    ];
    for (plan, attempts, why) in cases {
        let mut cfg = config(1);
        cfg.task_timeout = Some(Duration::from_secs(1));
        let (s, events) = scheduler(cfg, None);
        let handler = Arc::new(Effectful::default());
        s.register_handler("effectful", handler.clone());
        let id = s
            .submit(spec("effectful", Priority::Normal, plan.into()))
            .unwrap();
        s.wait_idle().await;
        assert_eq!(handler.attempts.load(Ordering::SeqCst), attempts, "{plan}");
        let Some(TaskStatus::Failed {
            error, not_retried, ..
        }) = events.states(id).last().cloned()
        else {
            panic!("{plan}: {:?}", events.states(id));
        };
        assert_eq!(not_retried.as_deref(), why, "{plan}");
        if why.is_some() {
            assert!(
                error.contains("not retried") && error.contains("side effects happen once"),
                "{plan}: {error}"
            );
            assert!(
                !events
                    .states(id)
                    .iter()
                    .any(|st| matches!(st, TaskStatus::Retrying { .. })),
                "{plan}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn aging_lets_background_work_through_a_steady_stream_of_critical_work() {
    async fn background_start(aging: Option<Duration>) -> Duration {
        let mut cfg = config(1);
        cfg.aging = aging;
        let (s, events) = scheduler(cfg, None);
        s.register_handler("sleep", Arc::new(Sleepy::default()));
        let start = Instant::now();
        // Critical work arriving every 20 ms, each taking 25 ms: the queue never empties.
        let feeder = {
            let s = s.clone();
            tokio::spawn(async move {
                for _ in 0..200 {
                    s.submit(spec("sleep", Priority::Critical, 25.into()))
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        let bg = s
            .submit(spec("sleep", Priority::Background, 1.into()))
            .unwrap();
        loop {
            if events.started().contains(&bg) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let waited = start.elapsed();
        feeder.abort();
        waited
    }
    let with_aging = background_start(Some(Duration::from_millis(100))).await;
    assert!(
        with_aging <= Duration::from_millis(500),
        "aged in {with_aging:?}"
    );
    let without = background_start(None).await;
    assert!(
        without >= Duration::from_millis(3000),
        "starved until the stream ended: {without:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_reports_what_was_left_and_lets_running_work_finish() {
    let (s, events) = scheduler(config(1), None);
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let running = s
        .submit(spec("sleep", Priority::Normal, 200.into()))
        .unwrap();
    let waiting: Vec<TaskId> = (0..3)
        .map(|_| {
            s.submit(spec("sleep", Priority::Normal, 10.into()))
                .unwrap()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let report = s.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.left_queued, waiting);
    assert_eq!((report.finished_in_grace, report.cancelled_running), (1, 0));
    assert_eq!(events.names(running).last(), Some(&"succeeded"));
    assert_eq!(
        s.submit(spec("sleep", Priority::Normal, 1.into()))
            .unwrap_err(),
        SubmitError::ShuttingDown
    );

    let (s, events) = scheduler(config(1), None);
    s.register_handler("until", Arc::new(UntilCancelled::default()));
    let stuck = s
        .submit(spec("until", Priority::Normal, serde_json::Value::Null))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let report = s.shutdown(Duration::from_millis(500)).await;
    assert_eq!((report.finished_in_grace, report.cancelled_running), (0, 1));
    assert!(
        matches!(events.states(stuck).last(), Some(TaskStatus::Cancelled { reason }) if reason == "shutdown")
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random submissions and cancellations: the slot limit always holds and every task ends
    /// in exactly one final state.
    #[test]
    fn limits_hold_and_no_task_is_lost(
        max_concurrent in 1usize..5,
        tasks in prop::collection::vec((0usize..5, 0u64..40, any::<bool>()), 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let (s, events) = scheduler(config(max_concurrent), None);
            let sleepy = Arc::new(Sleepy::default());
            s.register_handler("sleep", sleepy.clone());
            let mut ids = Vec::new();
            for (p, ms, cancel) in &tasks {
                let id = s.submit(spec("sleep", Priority::ALL[*p], (*ms).into())).unwrap();
                ids.push((id, *cancel));
                tokio::time::sleep(Duration::from_millis(ms / 4)).await;
            }
            for (id, cancel) in &ids {
                if *cancel {
                    let _ = s.cancel(*id);
                }
            }
            s.wait_idle().await;
            prop_assert!(sleepy.max.load(Ordering::SeqCst) <= max_concurrent);
            for (id, _) in &ids {
                let finals = events.states(*id).iter().filter(|st| st.is_final()).count();
                prop_assert_eq!(finals, 1, "task {} ended {} times", id, finals);
            }
            prop_assert_eq!(s.running(), 0);
            prop_assert_eq!(s.queued(), 0);
            Ok(())
        })?;
    }
}

#[tokio::test(start_paused = true)]
async fn records_of_ended_tasks_are_bounded() {
    let mut cfg = config(64);
    cfg.queue_capacity = FINISHED_KEPT + 10;
    let (s, _) = scheduler(cfg, None);
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let ids: Vec<TaskId> = (0..FINISHED_KEPT + 5)
        .map(|_| s.submit(spec("sleep", Priority::Normal, 0.into())).unwrap())
        .collect();
    s.wait_idle().await;
    assert!(s.task(ids[0]).is_none(), "the oldest record was forgotten");
    assert_eq!(s.cancel(ids[0]).unwrap_err(), CancelError::Unknown(ids[0]));
    assert_eq!(s.task(*ids.last().unwrap()).unwrap().state, "succeeded");
}

#[tokio::test(start_paused = true)]
async fn tasks_in_a_blackout_hold_no_slot_and_go_when_the_operator_switches_to_earth() {
    // 2026-01-09: Mars in solar conjunction; an hour of simulated time per real second.
    let conjunction = Utc.with_ymd_and_hms(2026, 1, 9, 0, 0, 0).unwrap();
    let link = fixed_link(LatencyPreset::Mars, 3600.0, conjunction);
    let (s, events) = scheduler(config(4), Some(Arc::clone(&link)));
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let mars: Vec<TaskId> = (0..4)
        .map(|_| {
            s.submit(spec("sleep", Priority::Normal, 10.into()))
                .unwrap()
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(60)).await;
    for id in &mars {
        assert_eq!(events.names(*id), ["queued", "blackout"]);
    }
    assert_eq!(
        (s.running(), s.travelling()),
        (0, 4),
        "waiting out a conjunction is not work at the backend"
    );

    link.set_preset(LatencyPreset::Earth);
    let critical = s
        .submit(spec("sleep", Priority::Critical, 10.into()))
        .unwrap();
    let start = Instant::now();
    s.wait_idle().await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "Earth light time, not the rest of the conjunction: {:?}",
        start.elapsed()
    );
    // Five tasks for four slots: it may find them taken when it arrives, for a few ms.
    let critical = events.names(critical);
    assert_eq!(critical[..2], ["queued", "uplink"]);
    assert_eq!(
        critical[critical.len() - 3..],
        ["running", "downlink", "succeeded"]
    );
    for id in &mars {
        assert_eq!(
            events.names(*id),
            [
                "queued",
                "blackout",
                "uplink",
                "running",
                "downlink",
                "succeeded"
            ],
            "not yet sent, so it goes over the link in force"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn local_tasks_never_cross_and_switching_the_link_off_lands_those_on_their_way() {
    // Mars in conjunction: a task sent over it waits for days of simulated time.
    let conjunction = Utc.with_ymd_and_hms(2026, 1, 9, 0, 0, 0).unwrap();
    let link = fixed_link(LatencyPreset::Mars, 1.0, conjunction);
    let (s, events) = scheduler(config(2), Some(Arc::clone(&link)));
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let waiting = s
        .submit(spec("sleep", Priority::Normal, 10.into()))
        .unwrap();
    // A local task (a benchmark item) runs at once, beside it.
    let local = s
        .submit(TaskSpec {
            local: true,
            ..spec("sleep", Priority::Low, 10.into())
        })
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        events.names(local),
        ["queued", "running", "succeeded"],
        "no uplink, no blackout, no downlink"
    );
    assert_eq!(events.names(waiting), ["queued", "blackout"]);

    // `:sim off`: the blackout wait ends now, and the task goes straight to its slot.
    assert!(link.set_on(false));
    s.wait_idle().await;
    assert_eq!(
        events.names(waiting),
        ["queued", "blackout", "running", "succeeded"]
    );
    assert!(!link.status().simulated, "the status says the link is off");
    // Off, a new task never touches the link either.
    let after = s
        .submit(spec("sleep", Priority::Normal, 10.into()))
        .unwrap();
    s.wait_idle().await;
    assert_eq!(events.names(after), ["queued", "running", "succeeded"]);

    // On again (on Earth), tasks cross once more; switched off mid-leg, the leg ends at once.
    link.set_preset(LatencyPreset::Earth);
    assert!(!link.set_on(true));
    let crossing = s
        .submit(spec("sleep", Priority::Normal, 10.into()))
        .unwrap();
    s.wait_idle().await;
    assert_eq!(
        events.names(crossing),
        ["queued", "uplink", "running", "downlink", "succeeded"]
    );
    let lunar = fixed_link(LatencyPreset::Lunar, 1.0, Utc::now());
    let (s, events) = scheduler(config(1), Some(Arc::clone(&lunar)));
    s.register_handler("sleep", Arc::new(Sleepy::default()));
    let id = s
        .submit(spec("sleep", Priority::Normal, 10.into()))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(events.names(id), ["queued", "uplink"]);
    let start = Instant::now();
    lunar.set_on(false);
    s.wait_idle().await;
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(10),
        "only the handler's 10 ms"
    );
    assert_eq!(
        events.names(id),
        ["queued", "uplink", "running", "succeeded"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_on_the_link_leaves_its_slot_to_the_next_and_queues_when_it_arrives() {
    let link = fixed_link(LatencyPreset::Lunar, 1.0, Utc::now());
    let (s, events) = scheduler(config(1), Some(link));
    let sleepy = Arc::new(Sleepy::default());
    s.register_handler("sleep", sleepy.clone());
    // The first holds the only slot for 5 s; the second arrives after ~1.3 s and waits.
    let long = s
        .submit(spec("sleep", Priority::Normal, 5000.into()))
        .unwrap();
    let second = s
        .submit(spec("sleep", Priority::Normal, 10.into()))
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(events.names(long), ["queued", "uplink", "running"]);
    assert_eq!(events.names(second), ["queued", "uplink", "queued"]);
    assert_eq!((s.running(), s.queued()), (1, 1));
    // The first gives its slot back before its answer travels down.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(
        events.names(long),
        ["queued", "uplink", "running", "downlink"]
    );
    assert_eq!(events.names(second)[3], "running");
    s.wait_idle().await;
    assert_eq!(sleepy.max.load(Ordering::SeqCst), 1, "the limit held");
    assert_eq!(events.names(second).last(), Some(&"succeeded"));
}

/// Waits on something that is not the backend (as the audit trail's commit is) through
/// [`off_slot`], then sleeps holding the slot; tracks how many hold a slot at once.
#[derive(Default)]
struct WaitsOffSlot {
    now: AtomicUsize,
    max: AtomicUsize,
    off: AtomicUsize,
    max_off: AtomicUsize,
}

#[async_trait::async_trait]
impl TaskHandler for WaitsOffSlot {
    async fn run(&self, _task: TaskContext) -> Result<(), TaskError> {
        let enter = |now: &AtomicUsize, max: &AtomicUsize| {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(n, Ordering::SeqCst);
        };
        enter(&self.now, &self.max);
        tokio::time::sleep(Duration::from_millis(10)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        off_slot(async {
            enter(&self.off, &self.max_off);
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.off.fetch_sub(1, Ordering::SeqCst);
        })
        .await;
        enter(&self.now, &self.max);
        tokio::time::sleep(Duration::from_millis(10)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_waiting_off_its_slot_lets_others_run_and_takes_a_slot_back_to_go_on() {
    let (s, events) = scheduler(config(2), None);
    let handler = Arc::new(WaitsOffSlot::default());
    s.register_handler("off", handler.clone());
    let ids: Vec<TaskId> = (0..8)
        .map(|_| {
            s.submit(spec("off", Priority::Normal, serde_json::Value::Null))
                .unwrap()
        })
        .collect();
    let start = Instant::now();
    s.wait_idle().await;
    assert_eq!(
        handler.max.load(Ordering::SeqCst),
        2,
        "never more than the slots"
    );
    assert!(
        handler.max_off.load(Ordering::SeqCst) > 2,
        "waits off the slot overlap beyond the slot count: {}",
        handler.max_off.load(Ordering::SeqCst)
    );
    // Holding slots through the waits would take 8 × 120 ms / 2 = 480 ms.
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    for id in ids {
        assert_eq!(
            events.names(id),
            ["queued", "running", "succeeded"],
            "no extra states"
        );
    }
    assert_eq!(s.running(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_task_cancelled_while_off_its_slot_winds_down_without_waiting_for_one() {
    let (s, events) = scheduler(config(1), None);
    s.register_handler("off", Arc::new(WaitsOffSlot::default()));
    s.register_handler("until", Arc::new(UntilCancelled::default()));
    let off = s
        .submit(spec("off", Priority::Normal, serde_json::Value::Null))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // `off` is waiting off its slot; this one takes the slot and keeps it.
    let hog = s
        .submit(spec("until", Priority::Normal, serde_json::Value::Null))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(events.names(hog), ["queued", "running"]);
    s.cancel(off).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(events.names(off).last(), Some(&"cancelled"));
    s.cancel(hog).unwrap();
    s.wait_idle().await;
    assert_eq!(s.running(), 0);
}
