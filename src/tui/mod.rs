//! The full-screen console. This module owns the terminal: it sets it up, restores it on quit,
//! panic, SIGINT, SIGTERM and SIGHUP, and runs the loop that turns keys into [`app::Command`]s for the
//! core and folds the core's [`Event`](crate::events::Event)s into [`app::App`]. A signal
//! cancels what is in flight through the core ([`VeyraCore::stop_on_signal`]), and once the
//! terminal is restored one line on stderr says what was cancelled (and how to finish a
//! benchmark run cut short); the process exits 128 + the signal's number. Frames are drawn only when something
//! changed, at most `tui.frame_rate` times a second. Where the runtime is — this process's own
//! (serving other clients too), or one the console attached to — and the console's life around
//! the loop are in `session.rs`. One function carries out each command
//! (`Dispatch::dispatch`, in `dispatch.rs`); the detail views it opens are built in `detail.rs`,
//! and the `:` history kept between runs is read and written in `history.rs`.
//!
//! `ratatui` and `crossterm` are used only below this module (DESIGN §2).

pub mod app;
mod bench;
mod burst;
pub mod demo;
mod detail;
mod dispatch;
mod drive;
pub mod frame;
mod history;
pub mod keymap;
pub mod layout;
pub mod log_layer;
pub mod outlet;
pub mod output;
pub mod panes;
pub mod pen;
pub mod scrolling;
mod session;
#[cfg(test)]
pub(crate) mod testing;
pub mod theme;

use std::time::Duration;

use chrono::Utc;
use crossterm::event::{Event as TermEvent, KeyEventKind};
use futures_util::{Stream, StreamExt};

use crate::config::{ResolvedTheme, theme as theme_cfg};
use crate::core::VeyraCore;
use crate::error::VeyraError;
use crate::signals::{StopSignal, StopSignals};
use app::{App, Command, LinkView};
use keymap::KeyMap;
use theme::Theme;

pub(crate) use detail::Notice;
#[cfg(test)]
pub(crate) use detail::audit_detail;
pub use detail::explain_rule;
use dispatch::{Dispatch, Flow};
pub use drive::{FrameDrawn, drive};
pub use history::{MAX_HISTORY_BYTES, load_history, save_history};
pub use session::{AttachOptions, ConsoleOptions, attach, run, run_with_registry};

/// The themes the console cycles through: the configured one first, then the built-ins.
/// `NO_COLOR` starts on the monochrome theme.
pub fn theme_list(configured: &str) -> Result<Vec<ResolvedTheme>, VeyraError> {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let first = if no_color { "mono" } else { configured };
    let mut themes = vec![theme_cfg::load_theme(first)?];
    for name in theme_cfg::builtin_names() {
        if themes.iter().all(|t| t.name != name) {
            themes.push(theme_cfg::load_theme(name)?);
        }
    }
    Ok(themes)
}

/// The demo's configuration (`configs/demo.yaml`): the mock's scripted answers and the
/// governance lists its story needs.
const DEMO_CONFIG: &str = include_str!("../../configs/demo.yaml");

/// Log lines kept between two frames for the `Log` pane (more are dropped, oldest first): a
/// second's worth at the idle console's one frame a second, even while a benchmark run logs.
const LOG_HOT_DEPTH: usize = 10_000;

/// The simulated date `--demo` plays on, unless the configuration names one: Mars 9.8
/// light-minutes away, far from a conjunction.
// 2026-12-01T00:00:00Z, a valid timestamp: the fallback is never taken (a test checks it).
const DEMO_DATE: chrono::DateTime<chrono::Utc> =
    match chrono::DateTime::from_timestamp(1_796_083_200, 0) {
        Some(t) => t,
        None => chrono::DateTime::UNIX_EPOCH,
    };

/// `--demo`: the Mars link as on 2026-12-01 (unless `latency.start` names a date), 120× faster than real time, with answers that
/// stream visibly — a prompt's whole journey takes well under a minute. It always runs on the
/// mock (a tour must never send prompts to a paid API on its own) with the audit trail in
/// memory (the tour's entries stay out of the operator's durable trail). A mock with no
/// script of its own gets the demo's (`configs/demo.yaml`), which the scenario's prompts rely
/// on, and the demo's prohibited and confirmed operations are added to the configured ones:
/// the demo only ever adds refusals, never lifts one.
pub fn apply_demo(config: &mut crate::config::VeyraConfig) -> Result<(), VeyraError> {
    let demo = crate::config::parse_str(
        DEMO_CONFIG,
        std::path::Path::new("<built-in configs/demo.yaml>"),
    )
    .map_err(|e| VeyraError::Runtime(format!("the built-in demo configuration: {e}")))?;
    config.model.backend = "mock".into();
    config.model.model = demo.model.model;
    config.governance.store = crate::config::AuditStoreKind::Memory;
    config.latency.simulate = true;
    config.latency.preset = crate::config::LatencyPreset::Mars;
    config.latency.mode = crate::config::LatencyMode::Ephemeris;
    config.latency.time_scale = 120.0;
    // The tour was written for Mars at 9.8 light-minutes: played on that date it looks the same
    // any day, and never waits out a solar conjunction (weeks of blackout). A date the user's
    // configuration names is kept.
    config.latency.start.get_or_insert(DEMO_DATE);
    if config.model.mock.token_delay_ms == 0 {
        config.model.mock.token_delay_ms = demo.model.mock.token_delay_ms;
    }
    if config.model.mock.script.is_empty() {
        config.model.mock.script = demo.model.mock.script;
    }
    let g = &mut config.governance;
    for (list, add) in [
        (
            &mut g.prohibited_operations,
            demo.governance.prohibited_operations,
        ),
        (
            &mut g.require_confirmation,
            demo.governance.require_confirmation,
        ),
    ] {
        for op in add {
            if !list.iter().any(|o| o.eq_ignore_ascii_case(&op)) {
                list.push(op);
            }
        }
    }
    Ok(())
}

/// Builds the console's initial state from the configuration.
pub fn initial_app(core: &VeyraCore, themes: Vec<ResolvedTheme>) -> Result<App, VeyraError> {
    let config = core.config();
    let keymap = KeyMap::with_overrides(&config.tui.keys).map_err(VeyraError::Usage)?;
    let link = LinkView {
        backend: core.backend_name(),
        // The model name can come from a cassette's manifest: untrusted text.
        model: crate::sanitize::sanitize_line(&config.model.model).into_owned(),
        link: core.link_status(),
    };
    let mut app = App::new(link, config.governance.audit, keymap, themes, Utc::now());
    // A durable trail already has entries from earlier sessions.
    if let Some(trail) = core.audit() {
        app.restore_audit(
            trail.len(),
            trail.head_hash(),
            config.governance.store == crate::config::AuditStoreKind::Sqlite,
            // A store that cannot read its checkpoint now says so on `v`.
            trail
                .latest_checkpoint()
                .ok()
                .flatten()
                .map(|cp| (cp.tree_size, cp.timestamp)),
        );
    }
    Ok(app)
}

/// The console's terminal: crossterm underneath, rows moved by the terminal where that is
/// cheaper ([`scrolling::ScrollingBackend`]).
type Screen = ratatui::Terminal<scrolling::ScrollingBackend<pen::PenBackend<std::io::Stdout>>>;

/// Takes the mouse (clicks, wheel) from the terminal, or gives it back.
fn set_mouse(on: bool) {
    use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
    let _ = if on {
        crossterm::execute!(std::io::stdout(), EnableMouseCapture)
    } else {
        crossterm::execute!(std::io::stdout(), DisableMouseCapture)
    };
}

/// Raw mode, the alternate screen and ratatui's panic hook (which restores the terminal),
/// with the console's own backend.
fn take_screen() -> std::io::Result<Screen> {
    // `try_init` does all three; its plain crossterm terminal is dropped unused (dropping
    // it writes nothing: it never hid the cursor).
    drop(ratatui::try_init()?);
    // A panic also gives back the mouse and ends bracketed paste (harmless when neither was
    // on), before ratatui's hook leaves the alternate screen.
    let restore = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(
            std::io::stdout(),
            crossterm::event::DisableMouseCapture,
            crossterm::event::DisableBracketedPaste,
            // The console's pen outlives a frame ([`pen`]): the message is not drawn with it.
            crossterm::style::SetAttribute(crossterm::style::Attribute::Reset)
        );
        restore(info);
    }));
    let backend = pen::PenBackend::new(std::io::stdout());
    ratatui::Terminal::new(scrolling::ScrollingBackend::new(backend)?)
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// The operator quit, the keys ended or the runtime's bus closed.
    Quit,
    /// A signal came.
    Signal(StopSignal),
    /// The runtime attached to is gone and the operator asked to host one here.
    Host,
}

impl Closed {
    /// The signal that closed the console, if one did.
    fn signal(self) -> Option<StopSignal> {
        match self {
            Closed::Signal(signal) => Some(signal),
            Closed::Quit | Closed::Host => None,
        }
    }
}

/// What the loop takes besides the terminal, the core and the view: commands to run first
/// (`veyra bench --tui`'s start), the demo's script, the Log pane's records, and who is told
/// of each frame drawn ([`drive`]).
struct Feeds<'f> {
    /// The runtime's events.
    events: burst::Feed,
    first: Vec<Command>,
    player: Option<demo::Player>,
    log_sink: log_layer::LogSink,
    on_frame: Option<&'f mut dyn FnMut(FrameDrawn<'_>)>,
    /// The server this console's runtime serves other clients on, whose count the status bar
    /// shows.
    serving: Option<&'f crate::service::Server>,
}

/// The console: draws on `terminal` when something changed (at most once a frame period),
/// turns `keys` into commands, and folds the core's events and the benchmark run's updates in
/// batches that end when the next frame is due ([`burst`]), so a burst never holds a frame
/// back. Ends when the operator quits, `keys` ends, the core's bus closes or a signal comes.
async fn event_loop<B, K>(
    terminal: &mut ratatui::Terminal<scrolling::ScrollingBackend<B>>,
    mut keys: K,
    runtime: &crate::service::Handle,
    app: &mut App,
    frame_period: Duration,
    bench: &mut bench::BenchSlot,
    feeds: Feeds<'_>,
) -> Result<Closed, VeyraError>
where
    B: ratatui::backend::Backend<Error: std::error::Error + Send + Sync + 'static> + outlet::Outlet,
    K: Stream<Item = std::io::Result<TermEvent>> + Unpin,
{
    let Feeds {
        mut events,
        first,
        mut player,
        log_sink,
        mut on_frame,
        serving,
    } = feeds;
    let draw_err = outlet::failed::<B::Error>;
    // In raw mode Ctrl-C is a key; SIGINT comes only from `kill -INT` and is a way out too.
    let mut signals = StopSignals::install()?;
    // The status bar follows the link as it moves, not only when the operator switches it (a
    // runtime elsewhere watches its own link).
    let _link_watch = runtime
        .core()
        .map(|core| core.watch_link(Duration::from_secs(1)));
    // For `on_frame`: events taken off the bus so far (a lag's missed ones counted), and when
    // the timed ones among them were sent (those shown already, those new since the last frame).
    let mut bus_events = 0u64;
    let mut sent_shown: Option<chrono::DateTime<Utc>> = None;
    let mut sent_new = burst::Sent::default();
    let mut clock = tokio::time::interval(Duration::from_millis(250));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let depth = theme::ColourDepth::detect();
    let mut theme = Theme::for_depth(
        app.current_theme()
            .ok_or_else(|| VeyraError::Runtime("no theme loaded".into()))?,
        depth,
    );
    let mut frames = frame::FrameScheduler::new(frame_period);
    // What acts started in the background (an undo) report back, when no event says it.
    let (notices, mut notes) = tokio::sync::mpsc::unbounded_channel::<Notice>();
    let orders = dispatch::Orders::start();
    // The store's history is read at start, off the loop.
    bench.load_history();
    let mut pending = first;
    // False once the runtime attached to is gone: nothing more comes.
    let mut feed_open = true;

    loop {
        if frames.due(tokio::time::Instant::now()) {
            let started = tokio::time::Instant::now();
            let size = terminal
                .size()
                .map_err(draw_err("reading the terminal size"))?;
            let area = ratatui::layout::Rect::new(0, 0, size.width, size.height);
            let areas = layout::fit(app, area);
            // Streamed text scrolls the Output pane: the terminal may move its rows.
            terminal
                .backend_mut()
                .hint((!layout::too_small(area)).then(|| areas.output_text()));
            app.take_log(log_sink.take());
            terminal
                .draw(|frame| layout::render(app, &theme, frame))
                .map_err(draw_err("drawing the console"))?;
            if app.take_bell() {
                terminal.backend_mut().inner_mut().bell();
            }
            let drawn = tokio::time::Instant::now();
            frames.drawn(drawn);
            if let Some(tell) = on_frame.as_mut() {
                tell(FrameDrawn {
                    at: Utc::now(),
                    drawing: drawn - started,
                    bus_events,
                    shown_sent: sent_shown,
                    first_sent: sent_new.first,
                    app: &*app,
                });
            }
            sent_shown = sent_new.last.or(sent_shown);
            sent_new = burst::Sent::default();
        }
        let next_frame = frames.next();
        let mut commands = std::mem::take(&mut pending);
        let scripted = player.as_ref().and_then(demo::Player::due);
        tokio::select! {
            maybe = keys.next() => match maybe {
                Some(Ok(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => {
                    // After what was pending (`veyra bench --tui`'s start), never instead of it.
                    commands.extend(app.handle_key(&key));
                    // The operator takes over: the key acts, and the demo script stops (saying
                    // so after the key, which may clear the status bar's message).
                    if let Some(p) = player.as_mut() {
                        p.stop(app);
                    }
                    frames.request();
                }
                Some(Ok(TermEvent::Mouse(mouse))) if app.mouse() => {
                    let size = terminal
                        .size()
                        .map_err(draw_err("reading the terminal size"))?;
                    let area = ratatui::layout::Rect::new(0, 0, size.width, size.height);
                    if !layout::too_small(area) {
                        // A movement (the terminal reports every one) does nothing and
                        // draws nothing; a click or a notch that acted is the operator
                        // taking over.
                        let areas = layout::Areas::for_app(app, area);
                        let target = layout::mouse_target(app, &areas, mouse.column, mouse.row);
                        if let Some(acted) = app.handle_mouse(&mouse, target) {
                            commands.extend(acted);
                            if let Some(p) = player.as_mut() {
                                p.stop(app);
                            }
                            frames.request();
                        }
                    }
                }
                Some(Ok(TermEvent::Paste(text))) => {
                    if let Some(p) = player.as_mut() {
                        p.stop(app);
                    }
                    app.paste(&text);
                    frames.request();
                }
                Some(Ok(TermEvent::Resize(..))) => frames.request(),
                Some(Ok(_)) => {}
                // The terminal went away (its keyboard ended, or reads fail with EIO, as after
                // a hangup): whichever of this and the SIGHUP comes first, it is a hangup.
                Some(Err(e)) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => {
                    return Ok(Closed::Signal(StopSignal::Hangup));
                }
                Some(Err(e)) => return Err(VeyraError::io("reading the keyboard", e)),
                None => return Ok(Closed::Signal(StopSignal::Hangup)),
            },
            received = events.recv(), if feed_open => {
                // What is waiting is folded until the next frame is due; the rest after it.
                let until = frames.fold_until(tokio::time::Instant::now());
                let batch = burst::fold_events(app, &mut events, received, until, burst::MAX_BATCH);
                if batch.closed {
                    match batch.gone {
                        // The runtime attached to is gone: the operator is asked what now.
                        Some(reason) => {
                            tracing::warn!(reason = %reason, "the runtime is gone");
                            app.runtime_gone(&reason);
                            feed_open = false;
                            frames.request();
                        }
                        None => return Ok(Closed::Quit),
                    }
                }
                if batch.bench_ended {
                    // The sparkline takes the run the runtime just finished.
                    bench.load_history();
                }
                bus_events += batch.taken;
                sent_new = sent_new.then(batch.sent);
                // Streamed text alone waits for a fuller frame; anything else is drawn next.
                if batch.only_text && !batch.cut {
                    frames.request_streamed(batch.text_chars);
                } else {
                    frames.request();
                }
            }
            Some(update) = bench.updates.recv() => {
                // A burst of finished tasks is folded until the next frame is due.
                let until = frames.fold_until(tokio::time::Instant::now());
                burst::fold_bench(app, &mut bench.updates, update, until, burst::MAX_BATCH);
                frames.request();
            }
            Some(notice) = notes.recv() => {
                match notice {
                    Notice::Flash(text, level) => app.flash(text, level),
                    Notice::Detail { title, lines } => {
                        app.show_detail(title, lines);
                    }
                }
                frames.request();
            }
            _ = clock.tick() => {
                let now = Utc::now();
                let new_second = now.timestamp() != app.now().timestamp();
                app.tick(now);
                if let Some(server) = serving {
                    let peer = match server.clients() {
                        0 => None,
                        1 => Some("serving · 1 client".to_string()),
                        n => Some(format!("serving · {n} clients")),
                    };
                    if app.peer() != peer.as_deref() {
                        app.set_peer(peer);
                        frames.request();
                    }
                }
                // Redraw for the clock once a second, for countdowns four times a second.
                frames.request_if(new_second || app.has_countdowns());
            }
            _ = tokio::time::sleep_until(scripted.unwrap_or_else(tokio::time::Instant::now)), if scripted.is_some() => {
                if let Some(p) = player.as_mut() {
                    commands.extend(p.play(app, tokio::time::Instant::now()));
                }
                frames.request();
            }
            _ = tokio::time::sleep_until(next_frame.unwrap_or_else(tokio::time::Instant::now)), if next_frame.is_some() => {}
            signal = signals.recv() => {
                tracing::warn!(signal = signal.name(), "signal received; closing the console");
                return Ok(Closed::Signal(signal));
            }
        }
        // A waiting confirmation opens its modal once the operator is not typing; its guard
        // interval starts now.
        let modal = app.confirm();
        app.settle_confirmation(tokio::time::Instant::now());
        frames.request_if(app.confirm() != modal);
        for command in commands {
            let mut to = Dispatch {
                terminal: terminal.backend_mut().inner_mut(),
                runtime,
                app: &mut *app,
                theme: &mut theme,
                depth,
                bench: &mut *bench,
                notices: &notices,
                orders: &orders,
            };
            match to.dispatch(command).await {
                Flow::Continue => {}
                Flow::Quit => return Ok(Closed::Quit),
                Flow::Host => return Ok(Closed::Host),
            }
        }
        if app.quit() {
            return Ok(Closed::Quit);
        }
    }
}
