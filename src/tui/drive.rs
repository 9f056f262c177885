//! The console's loop without a terminal of its own: [`drive`] runs the very loop the console
//! runs (the same folding, frame scheduling, drawing and commands) on any backend — ratatui's
//! `TestBackend` in the `console` bench — with keys from a stream, and tells its caller of every
//! frame it draws. That is how the console's frame latency is measured (`cargo bench --bench
//! console`): against the real loop, not a copy of it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crossterm::event::Event as TermEvent;
use futures_util::Stream;
use ratatui::Terminal;
use ratatui::backend::Backend;

use super::app::{App, Command};
use super::bench::BenchSlot;
use super::outlet::Outlet;
use super::scrolling::ScrollingBackend;
use super::{Feeds, LOG_HOT_DEPTH, event_loop, log_layer};
use crate::core::VeyraCore;
use crate::error::VeyraError;

/// One frame the loop drew, as [`drive`] reports it.
#[derive(Debug)]
pub struct FrameDrawn<'a> {
    /// When the frame was on the backend (drawn and flushed), by the wall clock events' `at`
    /// are stamped with.
    pub at: DateTime<Utc>,
    /// How long drawing it took (layout, render, the backend's writes).
    pub drawing: Duration,
    /// Events the loop had taken off the core's bus when it drew (missed ones counted), in bus
    /// order: the frame shows every one of them, and none after.
    pub bus_events: u64,
    /// When the newest event shown by an earlier frame that carries its time (a task's
    /// submission or state change: `at`) was sent. Every event new in this frame was sent
    /// after it: `at` minus this bounds this frame's lag from above.
    pub shown_sent: Option<DateTime<Utc>>,
    /// When the oldest event new in this frame that carries its time was sent: `at` minus
    /// this bounds the frame's lag from below.
    pub first_sent: Option<DateTime<Utc>>,
    /// The view the frame showed.
    pub app: &'a App,
}

/// Runs the console's loop on `terminal` over `core`: carries out `first` (e.g. the commands of
/// [`App::start_bench`]), then takes keys from `keys` and the core's events, and calls
/// `on_frame` after every frame. Ends when `keys` ends, the view quits, the core's bus closes
/// or a signal comes; a benchmark run still going is then cancelled, as when the console
/// closes. The caller subscribes to nothing: the loop subscribes to the bus when it starts.
pub async fn drive<B, K>(
    terminal: &mut Terminal<ScrollingBackend<B>>,
    keys: K,
    core: &VeyraCore,
    app: &mut App,
    frame_period: Duration,
    first: Vec<Command>,
    on_frame: &mut dyn FnMut(FrameDrawn<'_>),
) -> Result<(), VeyraError>
where
    B: Backend<Error: std::error::Error + Send + Sync + 'static> + Outlet,
    K: Stream<Item = std::io::Result<TermEvent>> + Unpin,
{
    let runtime =
        crate::service::Handle::Local(core.clone(), crate::service::bench::BenchHost::new(core));
    let mut bench = BenchSlot::new(&runtime, core.config());
    let result = event_loop(
        terminal,
        keys,
        &runtime,
        app,
        frame_period,
        &mut bench,
        Feeds {
            events: super::burst::Feed::Bus(core.subscribe()),
            first,
            player: None,
            log_sink: log_layer::LogSink::new(LOG_HOT_DEPTH),
            on_frame: Some(on_frame),
            serving: None,
        },
    )
    .await;
    bench.close().await;
    result.map(drop)
}
