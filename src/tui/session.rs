//! A console session: where its runtime is — this process's own, serving other clients on its
//! store's socket, or one it attached to (`veyra attach`, or `veyra` finding a runtime that
//! serves its store) — and the console's life around the loop: the screen taken, the loop run,
//! the screen given back, and a runtime of its own stopped (one attached to goes on).

use std::time::Duration;

use chrono::Utc;
use crossterm::event::EventStream;

use super::app::{self, App, LinkView};
use super::keymap::KeyMap;
use super::{
    Feeds, LOG_HOT_DEPTH, apply_demo, bench, burst, demo, event_loop, initial_app, load_history,
    log_layer, save_history, set_mouse, take_screen, theme_list,
};
use crate::config::{LoadedConfig, ResolvedTheme};
use crate::core::VeyraCore;
use crate::error::{ExitCode, VeyraError};
use crate::signals::StopSignal;

/// The console's initial state for a runtime it attached to, from what the runtime said of
/// itself (its backend, model, link and audit trail; untrusted text, sanitized).
fn attached_app(
    config: &crate::config::VeyraConfig,
    runtime: &crate::service::protocol::RuntimeInfo,
    themes: Vec<ResolvedTheme>,
) -> Result<App, VeyraError> {
    let keymap = KeyMap::with_overrides(&config.tui.keys).map_err(VeyraError::Usage)?;
    let link = LinkView {
        backend: crate::sanitize::sanitize_line(&runtime.backend).into_owned(),
        model: crate::sanitize::sanitize_line(&runtime.model).into_owned(),
        link: runtime.link.clone(),
    };
    let mut app = App::new(link, runtime.audit.is_some(), keymap, themes, Utc::now());
    if let Some(audit) = &runtime.audit {
        app.restore_audit(
            audit.entries,
            crate::sanitize::sanitize_line(&audit.head).into_owned(),
            audit.durable,
            audit.checkpoint,
        );
    }
    if runtime.host == "fleet" {
        app.set_fleet(&[]);
    } else {
        app.set_peer(Some(format!("attached pid {}", runtime.pid)));
    }
    app.set_attached(true);
    Ok(app)
}

/// Where `veyra attach` finds its runtime, and how it looks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachOptions {
    /// `ssh://[user@]host[:port]`.
    pub target: Option<String>,
    /// A runtime's socket.
    pub socket: Option<std::path::PathBuf>,
    /// The command that starts Veyra on the far host.
    pub remote_command: String,
    /// Theme name or path.
    pub theme: Option<String>,
}

/// `veyra attach [ssh://…] [--socket PATH]`: the console on a runtime that serves elsewhere.
pub async fn attach(loaded: LoadedConfig, args: AttachOptions) -> Result<ExitCode, VeyraError> {
    let mut config = loaded.config;
    if let Some(theme) = args.theme {
        config.tui.theme = theme;
    }
    let themes = theme_list(&config.tui.theme)?;
    // A fleet is named by its server's address; anything else is an ssh:// target.
    let fleet = args
        .target
        .as_deref()
        .filter(|t| t.starts_with("nats://") || t.starts_with("tls://"));
    // A wrong address is said as such, before anything else (a terminal, ssh) is needed.
    if let Some(url) = fleet {
        if let Some(why) = crate::config::nats_url_refusal(url) {
            return Err(VeyraError::Usage(format!("the fleet address {why}")));
        }
    } else if let Some(target) = &args.target {
        crate::service::ssh::ssh_args(target, &args.remote_command)?;
    }
    {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() {
            return Err(VeyraError::Usage(
                "the console needs a terminal on stdout; `veyra attach --stdio` relays the \
                 protocol for a program"
                    .into(),
            ));
        }
    }
    if let Some(url) = fleet {
        let hosting = Hosting::fleet(&config, Some(url)).await?;
        return console(config, themes, hosting, None, None).await;
    }
    let session = match (&args.target, &args.socket) {
        (Some(target), _) => Some(crate::service::ssh::attach(target, &args.remote_command).await?),
        (None, Some(socket)) => crate::service::Client::connect(socket, "console", true).await?,
        (None, None) => crate::service::attach_configured(&config, "console", true).await?,
    };
    let Some((client, inbound)) = session else {
        let socket = args
            .socket
            .or_else(|| crate::service::socket::socket_path(&config))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(none: the store is kept in memory)".into());
        return Err(VeyraError::Usage(format!(
            "no runtime serves {} (socket {socket}); start one with `veyra serve`, or run \
             `veyra` to host one in a console",
            config.audit_store_path().display()
        )));
    };
    console(
        config,
        themes,
        Hosting::Attached {
            client: Box::new(client),
            inbound,
        },
        None,
        None,
    )
    .await
}

/// How the console starts: what the command line may override in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleOptions {
    /// Theme name or path, instead of `tui.theme`.
    pub theme: Option<String>,
    /// Link preset, instead of `latency.preset`.
    pub preset: Option<crate::config::LatencyPreset>,
    /// Demo mode ([`apply_demo`]), playing a scenario ([`demo::Scenario`]).
    pub demo: bool,
    /// The scenario `--demo` plays instead of the built-in one (`--scenario`).
    pub scenario: Option<std::path::PathBuf>,
    /// Start this benchmark run at once, with the Benchmarks pane zoomed (`veyra bench --tui`).
    pub bench: Option<app::BenchRequest>,
    /// Host a runtime even when one serves the store (`--standalone`).
    pub standalone: bool,
}

/// Runs the console until the operator quits or a signal arrives.
pub async fn run(loaded: LoadedConfig, args: ConsoleOptions) -> Result<ExitCode, VeyraError> {
    open(
        loaded,
        args,
        crate::models::BackendRegistry::with_builtins(),
        false,
    )
    .await
}

/// [`run`] with the backends of `registry` (`veyra bench --tui --replay DIR` adds the
/// cassette's `replay` backend): always on a runtime of its own, which has them.
pub async fn run_with_registry(
    loaded: LoadedConfig,
    args: ConsoleOptions,
    registry: crate::models::BackendRegistry,
) -> Result<ExitCode, VeyraError> {
    open(loaded, args, registry, true).await
}

/// The console on `registry`'s backends; `own` when it must host its runtime (the backends
/// are not the built-in ones).
async fn open(
    loaded: LoadedConfig,
    args: ConsoleOptions,
    registry: crate::models::BackendRegistry,
    own: bool,
) -> Result<ExitCode, VeyraError> {
    use std::io::IsTerminal;
    // Where the theme's name came from, for the error if it names nothing.
    let theme_origin = match &args.theme {
        Some(_) => crate::config::Origin::Flag("--theme".into()),
        None => loaded.origin("tui.theme"),
    };
    let mut config = loaded.config;
    if let Some(theme) = args.theme {
        config.tui.theme = theme;
    }
    if let Some(preset) = args.preset {
        config.latency.preset = preset;
    }
    // A scenario is read, and refused if wrong, before anything else starts.
    let scenario = match (&args.scenario, args.demo) {
        (Some(path), _) => Some(demo::Scenario::load(path)?),
        (None, true) => Some(demo::Scenario::builtin()?),
        (None, false) => None,
    };
    if scenario.is_some() {
        apply_demo(&mut config)?;
    }
    // Everything that can fail on bad input fails before the screen is taken over, and a
    // wrong flag or file says so even where no console could open.
    let themes = theme_list(&config.tui.theme).map_err(|e| match e {
        VeyraError::Config(e) => VeyraError::Config(e.from_origin("tui.theme", theme_origin)),
        other => other,
    })?;
    if !std::io::stdout().is_terminal() {
        return Err(VeyraError::Usage(
            "the console needs a terminal on stdout; for scripts use `veyra run` (see `veyra --help`)".into(),
        ));
    }
    // A runtime serving this store is attached to, unless told otherwise (a benchmark
    // dashboard's run then goes on it); the demo and a replayed run host their own. With
    // `runtime.executor: nats` the console is over the fleet, its prompts going to the
    // fleet's stream (a benchmark dashboard hosts its run here, its items fanned out).
    let hosting = if !args.standalone
        && !own
        && scenario.is_none()
        && args.bench.is_none()
        && config.runtime.executor == crate::config::Executor::Nats
    {
        Hosting::fleet(&config, None).await?
    } else if !args.standalone
        && !own
        && scenario.is_none()
        && let Some((client, inbound)) =
            crate::service::attach_configured(&config, "console", true).await?
    {
        Hosting::Attached {
            client: Box::new(client),
            inbound,
        }
    } else {
        Hosting::host(&config, registry, scenario.is_none())?
    };
    console(config, themes, hosting, scenario, args.bench).await
}

/// Where the console's runtime is.
enum Hosting {
    /// In this process: the core, and the server that lets other clients attach (or why it
    /// does not serve).
    Here {
        core: VeyraCore,
        /// Its benchmark runs.
        bench: std::sync::Arc<crate::service::bench::BenchHost>,
        serving: Option<Result<crate::service::Server, String>>,
    },
    /// In another process (or on another host), through this session.
    Attached {
        client: Box<crate::service::Client>,
        inbound: tokio::sync::mpsc::Receiver<crate::service::Inbound>,
    },
}

impl Hosting {
    /// A session over the fleet at `url` (or `nats.url`).
    async fn fleet(
        config: &crate::config::VeyraConfig,
        url: Option<&str>,
    ) -> Result<Hosting, VeyraError> {
        let fleet = crate::fleet::Fleet::connect(&config.nats, url).await?;
        let (client, inbound) = crate::fleet::attach(fleet, config, "console").await?;
        Ok(Hosting::Attached {
            client: Box::new(client),
            inbound,
        })
    }

    /// A runtime of this process's own on `config`, serving its store when `serve` and the
    /// store is durable.
    fn host(
        config: &crate::config::VeyraConfig,
        registry: crate::models::BackendRegistry,
        serve: bool,
    ) -> Result<Hosting, VeyraError> {
        let core = VeyraCore::with_registry(config.clone(), registry)?;
        let bench = crate::service::bench::BenchHost::new(&core);
        let serving = serve
            .then(|| crate::service::socket::socket_path(config))
            .flatten()
            .map(|path| {
                crate::service::Server::start(&core, &bench, &path, "console")
                    .map_err(|e| e.to_string())
            });
        Ok(Hosting::Here {
            core,
            bench,
            serving,
        })
    }
}

/// The console over `hosting`'s runtime: the screen taken, the loop run, the screen given back,
/// and a runtime of its own stopped (one attached to goes on). When the runtime it attached to
/// goes away and the operator asks to host one here, the loop starts again on it (or on one
/// that came up meanwhile), in the same screen.
async fn console(
    config: crate::config::VeyraConfig,
    themes: Vec<ResolvedTheme>,
    mut hosting: Hosting,
    scenario: Option<demo::Scenario>,
    bench_request: Option<app::BenchRequest>,
) -> Result<ExitCode, VeyraError> {
    let frame_period = Duration::from_secs(1) / config.tui.frame_rate.max(1);
    let mut app = app_for(&hosting, &config, themes.clone())?;
    let history_file = crate::config::state_dir().join("command_history");
    app.restore_history(load_history(&history_file));
    let mut first = Vec::new();
    if let Some(request) = bench_request {
        // The dashboard a team leaves on a shared screen: the pane zoomed, the run going.
        app.set_zoom(true);
        first = app.start_bench(request);
    }

    // The Log pane's records wait in the sink until the loop takes them before a frame (the
    // only time they are looked at): no thread or timer runs for them.
    let log_sink = log_layer::LogSink::new(LOG_HOT_DEPTH);
    let status = crate::logging::init(
        &config.logging,
        &config.log_file_path(),
        Some(Box::new(log_layer::ConsoleLogLayer::new(log_sink.clone()))),
    )?;
    tracing::info!(backend = %app.link().backend, "console started");
    if let Some(w) = status.warning {
        tracing::warn!("{w}");
    }

    let mut terminal = take_screen().map_err(|e| {
        // Whatever was taken (raw mode, the alternate screen) is given back.
        ratatui::restore();
        VeyraError::io("taking over the terminal", e)
    })?;
    // ratatui's hook restores the terminal on a panic; a panic contained in one task must not.
    crate::runtime::contain::install_hook();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableBracketedPaste);
    app.set_mouse(config.tui.mouse);
    if config.tui.mouse {
        set_mouse(true);
    }
    let mut player = scenario.map(|s| demo::Player::new(s, tokio::time::Instant::now()));
    let (result, runtime, serving, mut bench) = loop {
        let (runtime, feed, serving) = into_runtime(hosting);
        let mut bench = bench::BenchSlot::new(&runtime, &config);
        let result = event_loop(
            &mut terminal,
            EventStream::new(),
            &runtime,
            &mut app,
            frame_period,
            &mut bench,
            Feeds {
                events: feed,
                first: std::mem::take(&mut first),
                player: player.take(),
                log_sink: log_sink.clone(),
                on_frame: None,
                serving: serving.as_ref(),
            },
        )
        .await;
        if !matches!(result, Ok(super::Closed::Host)) {
            break (result, runtime, serving, bench);
        }
        let next = take_over(&config).await;
        let next = next.and_then(|next| {
            let fresh = app_for(&next, &config, themes.clone())?;
            Ok((next, fresh))
        });
        match next {
            Ok((next, mut fresh)) => {
                fresh.restore_history(app.history().to_vec());
                fresh.set_mouse(app.mouse());
                app = fresh;
                hosting = next;
                tracing::info!("the console goes on with a new runtime");
            }
            // Said once the screen is given back.
            Err(e) => break (Err(e), runtime, serving, bench),
        }
    };
    let signal = result
        .as_ref()
        .ok()
        .copied()
        .and_then(super::Closed::signal);
    // A run still going on a runtime hosted here is cancelled and marked so in the store
    // (`--resume` finishes it); one attached to keeps its run.
    let mid_run = app.bench_running() && runtime.core().is_some();
    bench.close().await;
    while let Ok(update) = bench.updates.try_recv() {
        app.apply_bench(update);
    }
    let unfinished_run = app
        .bench()
        .run
        .as_ref()
        .filter(|run| mid_run && run.state != app::BenchState::Complete)
        .map(|run| {
            let (done, total) = run.progress();
            (run.id.clone(), done, total)
        });
    if let Err(e) = save_history(&history_file, app.history()) {
        tracing::warn!(error = %e, file = %history_file.display(), "could not keep the command history");
    }
    // Running tasks get a moment to finish and record their audit entries; the rest are
    // cancelled (and audited as such). A signal asks to stop now: nothing gets the moment,
    // and the stop is on the record with what it cancelled. A runtime this console attached
    // to goes on: only the session ends.
    let (report, audited) = match (runtime.core(), signal) {
        (Some(core), Some(signal)) => core.stop_on_signal(signal.name()).await,
        (Some(core), None) => (core.shutdown(Duration::from_secs(1)).await, false),
        (None, _) => (Default::default(), false),
    };
    // The other clients hear the cancellations, then that the runtime is going.
    drop(serving);
    let cancelled = report.left_queued.len() + report.cancelled_running;
    if cancelled > 0 {
        tracing::info!(
            left_queued = report.left_queued.len(),
            cancelled_running = report.cancelled_running,
            "tasks cancelled at exit"
        );
    }
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableBracketedPaste);
    // Given back whatever the view thinks: it costs nothing.
    set_mouse(false);
    // The terminal's own pen back before the screen is (`pen`): the lines below are not
    // drawn in the console's last colours.
    drop(terminal);
    ratatui::restore();
    tracing::info!("console closed");
    // What the operator must know once the terminal is theirs again, on stderr; after a
    // hangup there may be no terminal to write to, and that is no error.
    use std::io::Write as _;
    let mut stderr = std::io::stderr();
    if let Some((run, done, total)) = unfinished_run {
        let _ = writeln!(stderr, "{}", resume_hint(run.as_deref(), done, total));
    }
    if let Some(signal) = signal {
        let _ = writeln!(stderr, "{}", signal.farewell(cancelled, audited));
    }
    result.map(|closed| {
        closed
            .signal()
            .map_or(ExitCode::Success, StopSignal::exit_code)
    })
}

/// A runtime for a console whose runtime went away: one that came up meanwhile, attached to,
/// else one hosted here. The old runtime's process may still hold the store for a moment as it
/// exits: tried again for up to [`TAKE_OVER_WAIT`].
async fn take_over(config: &crate::config::VeyraConfig) -> Result<Hosting, VeyraError> {
    let deadline = tokio::time::Instant::now() + TAKE_OVER_WAIT;
    loop {
        if let Some((client, inbound)) =
            crate::service::attach_configured(config, "console", true).await?
        {
            return Ok(Hosting::Attached {
                client: Box::new(client),
                inbound,
            });
        }
        match Hosting::host(
            config,
            crate::models::BackendRegistry::with_builtins(),
            true,
        ) {
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::info!(error = %e, "the store is not free yet; trying again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// How long a console taking over waits for the store to be free.
const TAKE_OVER_WAIT: Duration = Duration::from_secs(3);

/// The console's first view of `hosting`'s runtime.
fn app_for(
    hosting: &Hosting,
    config: &crate::config::VeyraConfig,
    themes: Vec<ResolvedTheme>,
) -> Result<App, VeyraError> {
    match hosting {
        Hosting::Here { core, .. } => initial_app(core, themes),
        Hosting::Attached { client, .. } => attached_app(config, &client.runtime, themes),
    }
}

/// What the loop drives: the runtime, its events, and the server of a runtime hosted here
/// (or the reason it serves no other client, logged).
fn into_runtime(
    hosting: Hosting,
) -> (
    crate::service::Handle,
    burst::Feed,
    Option<crate::service::Server>,
) {
    match hosting {
        Hosting::Here {
            core,
            bench,
            serving,
        } => {
            let server = match serving {
                Some(Ok(server)) => Some(server),
                Some(Err(e)) => {
                    tracing::warn!("this console serves no other client: {e}");
                    None
                }
                None => None,
            };
            let feed = burst::Feed::Bus(core.subscribe());
            (crate::service::Handle::Local(core, bench), feed, server)
        }
        Hosting::Attached { client, inbound } => {
            if client.runtime.host == "fleet" {
                tracing::info!(
                    "attached to the fleet at {}",
                    crate::sanitize::sanitize_line(&client.runtime.store)
                );
            } else {
                tracing::info!(
                    pid = client.runtime.pid,
                    host = %client.runtime.host,
                    "attached to a runtime"
                );
            }
            (
                crate::service::Handle::Attached(client),
                burst::Feed::Remote(inbound),
                None,
            )
        }
    }
}

/// The line stderr gets when the console closed with a benchmark run going (`run`: its id,
/// when the runner recorded one; `done` of `total` task epochs finished), worded as
/// `veyra bench` says it after Ctrl-C.
fn resume_hint(run: Option<&str>, done: usize, total: usize) -> String {
    match run {
        Some(id) => {
            let id = crate::sanitize::sanitize_line(id);
            format!(
                "veyra: run {id} cancelled after {done} of {total} task epochs; finish it with \
                 `veyra bench --resume {id}`"
            )
        }
        None => "veyra: the benchmark run was cancelled before it recorded any task".to_string(),
    }
}
