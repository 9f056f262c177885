//! The console's frame latency while a benchmark run commits: how far behind its events each
//! frame is. The real core runs with the default durable audit store (SQLite, in a temporary
//! directory) and starts a run of all seven families the way `veyra bench --tui` does; the real
//! console loop (`veyra::tui::drive`, the loop `veyra` runs) folds the core's events and draws
//! every frame at 160×48 into ratatui's `TestBackend`, on the two-worker runtime `veyra` runs
//! on, the loop on the main thread as in `src/main.rs`.
//!
//! A frame's lag is the time from the oldest event it is the first to show being sent to the
//! frame being on the backend. Events that carry their send time (`at`: a task's submission
//! and every state change, thousands a second in a run) bound it: the frame's lag is at most
//! its time since the newest timed event an earlier frame showed (every new event was sent
//! after that one). The loop reports that time with each frame ([`veyra::tui::FrameDrawn`]),
//! and the oldest `at` among the frame's new events, printed as an estimate beside it (an `at`
//! may be taken a little before its event is sent). The figures are the upper bound.
//! Every frame that shows a new event counts; the bound is 50 ms for every one.
//!
//! Run: `cargo bench --bench console` (tasks per family: `VEYRA_CONSOLE_COUNT`, default 300).

use std::time::Duration;

use chrono::{DateTime, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use veyra::VeyraCore;
use veyra::benchmarks::{Difficulty, FamilyId};
use veyra::config::{AuditStoreKind, VeyraConfig};
use veyra::tui::app::BenchRequest;
use veyra::tui::scrolling::ScrollingBackend;

/// The allocator the `veyra` binary runs on (`src/main.rs`), so these figures are its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The bound on any frame's lag.
const BOUND: Duration = Duration::from_millis(50);

/// The longest the run may take before the measurement stops anyway.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Processor time the calling thread (the loop's, as in `veyra`) has used so far.
fn loop_cpu() -> Duration {
    // SAFETY: `getrusage` only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.unsigned_abs())
            + Duration::from_micros(t.tv_usec.unsigned_abs())
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn main() {
    let count: u32 = std::env::var("VEYRA_CONSOLE_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = VeyraConfig::default();
    config.governance.store = AuditStoreKind::Sqlite;
    config.governance.store_path = Some(dir.path().join("audit.db"));
    config.tools.workspace = Some(dir.path().join("workspace"));
    // The link off: every task's events come as fast as the mock answers, the densest stream.
    config.latency.simulate = false;
    let frame_rate = config.tui.frame_rate;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a two-thread runtime builds");
    let core = runtime
        .block_on(async { VeyraCore::new(config) })
        .expect("the core starts");

    let themes = veyra::tui::theme_list("default").expect("the built-in themes load");
    let mut app = veyra::tui::initial_app(&core, themes).expect("the console's view");
    app.set_zoom(true);
    let first = app.start_bench(BenchRequest {
        families: Some(FamilyId::ALL.to_vec()),
        count: Some(count),
        difficulty: Some(Difficulty::Medium),
        seed: Some(7),
        epochs: Some(1),
    });
    let backend = ScrollingBackend::new(TestBackend::new(160, 48)).expect("a test backend");
    let mut terminal = Terminal::new(backend).expect("a terminal");

    // No key is ever pressed; the keys end (and with them the loop) once the run has ended.
    let (key_tx, mut key_rx) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<_>>();
    let keys = futures_util::stream::poll_fn(move |cx| key_rx.poll_recv(cx));
    let mut key_tx = Some(key_tx);
    // Each frame that showed new events: its lag's upper and lower bounds, and its drawing.
    let mut frames = 0usize;
    let mut lags: Vec<Duration> = Vec::new();
    let mut lower: Vec<Duration> = Vec::new();
    let mut drawing: Vec<Duration> = Vec::new();
    let mut shown = 0u64;
    let mut missed = 0u64;
    let mut seen_running = false;
    let started = std::time::Instant::now();
    let mut on_frame = |frame: veyra::tui::FrameDrawn<'_>| {
        frames += 1;
        drawing.push(frame.drawing);
        if frame.bus_events > shown {
            let since = |sent: DateTime<Utc>| (frame.at - sent).to_std().unwrap_or(Duration::ZERO);
            if let Some(sent) = frame.shown_sent {
                lags.push(since(sent));
            }
            if let Some(sent) = frame.first_sent {
                lower.push(since(sent));
            }
            shown = frame.bus_events;
        }
        missed = frame.app.missed_events();
        let running = frame.app.bench_running();
        seen_running |= running;
        if (seen_running && !running) || started.elapsed() > RUN_LIMIT {
            key_tx = None;
        }
    };
    let period = Duration::from_secs(1) / frame_rate.max(1);
    let cpu_before = loop_cpu();
    runtime
        .block_on(veyra::tui::drive(
            &mut terminal,
            keys,
            &core,
            &mut app,
            period,
            first,
            &mut on_frame,
        ))
        .expect("the console runs");
    let elapsed = started.elapsed();
    let cpu = loop_cpu().saturating_sub(cpu_before);
    runtime.block_on(core.shutdown(Duration::from_secs(1)));
    lags.sort();
    lower.sort();
    drawing.sort();
    let at = |q: f64| lags[((lags.len().max(1) - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "console frame lag while a benchmark run commits (7 families × {count}, durable audit \
         store, 160×48, {frame_rate} frames/s):"
    );
    println!(
        "  run {:.1} s, {shown} events folded ({missed} missed), {frames} frames, {} showing new \
         events; drawing a frame: median {:.2} ms, max {:.2} ms; the loop's thread used {:.2} s \
         of processor",
        elapsed.as_secs_f64(),
        lags.len(),
        ms(drawing[(drawing.len().max(1) - 1) / 2]),
        ms(drawing.last().copied().unwrap_or_default()),
        cpu.as_secs_f64(),
    );
    if lags.is_empty() {
        println!("  no frame showed an event");
        return;
    }
    let over = lags.iter().filter(|&&l| l > BOUND).count();
    println!(
        "  lag median {:.1} ms, p99 {:.1} ms, max {:.1} ms; {over} frame(s) over {} ms",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0)),
        BOUND.as_millis()
    );
    if let Some(low) = lower.last() {
        println!(
            "  (estimate from the oldest `at` among each frame's new events: median {:.1} ms, \
             max {:.1} ms)",
            ms(lower[(lower.len() - 1) / 2]),
            ms(*low)
        );
    }
}
