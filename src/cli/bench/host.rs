//! Where a headless `veyra bench` run goes — the runtime serving the store, or one of this
//! process's own (serving the store in turn, so a console can watch the run) — how it is
//! cancelled from either side of the socket, and its progress bars on stderr.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::benchmarks::cassette::Tripwire;
use crate::benchmarks::request::BenchRequest;
use crate::benchmarks::store::BenchStore;
use crate::benchmarks::{FamilyId, Progress};
use crate::core::{ConfirmationPolicy, VeyraCore};
use crate::error::{ExitCode, VeyraError};
use crate::service::bench::{Began, BenchHost, BenchNews, SampleNews, SuiteJob};
use crate::service::protocol::{MAX_CLIENT_LINE, Reply, Request, RpcError, SuiteUpload};
use crate::signals::StopSignal;

/// Where a headless run goes: the runtime serving the store, or one of this process's own
/// (serving the store in turn, so a console can watch the run).
pub(super) enum Host {
    Attached {
        client: Box<crate::service::Client>,
        inbound: tokio::sync::mpsc::Receiver<crate::service::Inbound>,
    },
    Here {
        runs: Arc<BenchHost>,
        news: tokio::sync::mpsc::UnboundedReceiver<BenchNews>,
        tripwire: Tripwire,
        _server: Option<crate::service::Server>,
    },
}

impl Host {
    /// A runtime of this process's own on `core` (every run stopped by `cancel`, which a
    /// cassette's `tripwire` holds), serving the store while the run goes so a console can
    /// watch it (`veyra` on the same store attaches).
    pub(super) fn here(core: VeyraCore, cancel: CancellationToken, tripwire: Tripwire) -> Host {
        // Questions go to the consoles attached (a benchmark's own items never ask: they are
        // unattended).
        core.set_confirmation_policy(ConfirmationPolicy::Ask);
        let runs = BenchHost::with_tripwire(&core, cancel, tripwire.clone());
        let news = runs.subscribe();
        let server = match crate::service::socket::socket_path(core.config()) {
            Some(socket) => {
                match crate::service::Server::start(&core, &runs, &socket, "veyra bench") {
                    Ok(server) => Some(server),
                    Err(e) => {
                        tracing::warn!("this run serves no console: {e}");
                        None
                    }
                }
            }
            None => None,
        };
        Host::Here {
            runs,
            news,
            tripwire,
            _server: server,
        }
    }

    /// A cancel for the run, whichever side of the socket it is on.
    pub(super) fn stop(&self) -> Stop {
        match self {
            Host::Here { runs, .. } => Stop::Here(Arc::clone(runs)),
            Host::Attached { client, .. } => Stop::There(client.clone()),
        }
    }

    /// Starts a run of a suite: `job` here, or `upload`'s (the same suite as the file's text)
    /// on the runtime attached to, which reads no file itself. What began (its number, to
    /// cancel it by).
    pub(super) async fn start_suite(
        &self,
        job: SuiteJob,
        upload: impl FnOnce() -> SuiteUpload,
    ) -> Result<Began, VeyraError> {
        match self {
            Host::Here { runs, .. } => runs.start_suite(job, None, true),
            Host::Attached { client, .. } => {
                let upload = upload();
                // One line carries the request: refused here, saying what to do, rather than
                // by the runtime closing the session.
                let line = serde_json::to_string(&upload.text).map_or(usize::MAX, |t| t.len());
                if line.saturating_add(64 << 10) > MAX_CLIENT_LINE {
                    return Err(VeyraError::Usage(format!(
                        "the suite is {} MiB as sent, and {} takes at most {} MiB a request; run \
                         it with --standalone and another store (`--config`), or split it",
                        line >> 20,
                        client.describe(),
                        MAX_CLIENT_LINE >> 20
                    )));
                }
                expect_started(
                    client
                        .request(Request::BenchSuite {
                            suite: upload,
                            resume: job.resume,
                            follow: true,
                        })
                        .await,
                )
            }
        }
    }

    /// Starts the run; its news follows ([`Host::next`]). Its number, to cancel it by.
    pub(super) async fn start(
        &self,
        request: BenchRequest,
        resume: Option<String>,
    ) -> Result<u64, VeyraError> {
        match self {
            Host::Here { runs, .. } => runs
                .start(&request, resume.as_deref(), None, true)
                .map(|began| began.number)
                .map_err(VeyraError::Usage),
            Host::Attached { client, .. } => expect_started(
                client
                    .request(Request::BenchStart {
                        request,
                        resume,
                        follow: true,
                    })
                    .await,
            )
            .map(|began| began.number),
        }
    }

    /// The run's next news; an error when the runtime went away first.
    pub(super) async fn next(&mut self) -> Result<BenchNews, VeyraError> {
        use crate::service::Inbound;
        match self {
            Host::Here { news, .. } => news
                .recv()
                .await
                .ok_or_else(|| VeyraError::Runtime("the benchmark run went away".into())),
            Host::Attached { client, inbound } => loop {
                match inbound.recv().await {
                    Some(Inbound::Bench(news)) => return Ok(news),
                    Some(Inbound::Closed(reason)) => {
                        return Err(VeyraError::Runtime(format!(
                            "the runtime (pid {}) went away before the benchmark run ended: {}",
                            client.runtime.pid,
                            crate::sanitize::sanitize_line(&reason)
                        )));
                    }
                    Some(_) => {}
                    None => {
                        return Err(VeyraError::Runtime(
                            "the session to the runtime ended".into(),
                        ));
                    }
                }
            },
        }
    }

    /// The store the run was kept in.
    pub(super) fn store(&self, path: &Path) -> Result<Arc<BenchStore>, VeyraError> {
        match self {
            Host::Here { runs, .. } => runs.store().map_err(VeyraError::Runtime),
            Host::Attached { .. } => Ok(Arc::new(BenchStore::open(path)?)),
        }
    }

    /// Why a cassette stopped the run, when one did.
    pub(super) fn tripped(&self) -> Option<VeyraError> {
        match self {
            Host::Here { tripwire, .. } => tripwire.error(),
            Host::Attached { .. } => None,
        }
    }
}

/// What began, from the runtime's answer to a start.
fn expect_started(reply: Result<Reply, RpcError>) -> Result<Began, VeyraError> {
    reply
        .and_then(|reply| match reply {
            Reply::BenchStarted { began } => Ok(began),
            other => Err(RpcError {
                kind: "bad_response".into(),
                message: format!("the runtime answered with an unexpected {other:?}"),
            }),
        })
        .map_err(|e| match e.kind.as_str() {
            "usage" => VeyraError::Usage(e.message),
            _ => VeyraError::Runtime(e.message),
        })
}

/// A cancel for the run, whichever side of the socket it is on.
#[derive(Clone)]
pub(super) enum Stop {
    Here(Arc<BenchHost>),
    There(Box<crate::service::Client>),
}

impl Stop {
    /// Cancels run `number` (never one started after it).
    pub(super) async fn cancel(&self, number: u64) {
        let _ = match self {
            Stop::Here(runs) => runs.cancel(Some(number)),
            Stop::There(client) => client
                .request(crate::service::protocol::Request::BenchCancel { run: Some(number) })
                .await
                .map(drop)
                .map_err(|e| e.message),
        };
    }
}

/// One progress bar per family on stderr, when it is a terminal.
///
/// The bars keep the cursor at the right edge of their last line, and the terminal echoes
/// Ctrl-C as `^C` there, which moves it one line down behind indicatif's back: the bars would
/// then be cleared one line too low, and the top one stay on the screen for good. While the
/// bars are drawn the terminal does not echo control characters ([`QuietControls`]).
pub(super) struct Bars {
    multi: Option<indicatif::MultiProgress>,
    bars: BTreeMap<FamilyId, (indicatif::ProgressBar, f64)>,
    /// A suite's one bar, with the sum of the scores seen.
    suite: Option<(indicatif::ProgressBar, f64, usize)>,
    quiet: QuietControls,
}

impl Bars {
    pub(super) fn new(enabled: bool) -> Self {
        Bars {
            multi: enabled.then(indicatif::MultiProgress::new),
            bars: BTreeMap::new(),
            suite: None,
            quiet: if enabled {
                QuietControls::on_stderr()
            } else {
                QuietControls::default()
            },
        }
    }

    pub(super) fn update(&mut self, p: &Progress) {
        let Some(multi) = &self.multi else { return };
        match p {
            Progress::Started { families, .. } => {
                let style = indicatif::ProgressStyle::with_template(
                    "{prefix:>5} [{bar:32}] {pos:>5}/{len:<5} {msg} eta {eta}",
                )
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
                for (family, total, done) in families {
                    let bar = multi.add(indicatif::ProgressBar::new(*total as u64));
                    bar.set_style(style.clone());
                    bar.set_prefix(family.name());
                    bar.set_position(*done as u64);
                    self.bars.insert(*family, (bar, 0.0));
                }
            }
            Progress::TaskFinished {
                family,
                score,
                done,
                failed,
                ..
            } => {
                if let Some((bar, sum)) = self.bars.get_mut(family) {
                    *sum += score;
                    bar.set_position(*done as u64);
                    let suffix = if *failed { " (a task failed)" } else { "" };
                    bar.set_message(format!("score so far {:.3}{suffix}", *sum / *done as f64));
                }
            }
            Progress::Finished { .. } => {
                for (bar, _) in self.bars.values() {
                    bar.finish();
                }
            }
        }
    }

    /// A suite's run began: its one bar, `earlier` of `total` samples done before.
    pub(super) fn suite_began(&mut self, total: u64, earlier: u64) {
        let Some(multi) = &self.multi else { return };
        let bar = multi.add(indicatif::ProgressBar::new(total));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "suite [{bar:32}] {pos:>5}/{len:<5} {msg} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_position(earlier);
        self.suite = Some((bar, 0.0, 0));
    }

    /// A suite's sample finished.
    pub(super) fn sample(&mut self, sample: &SampleNews) {
        if let Some((bar, sum, seen)) = &mut self.suite {
            *sum += sample.score;
            *seen += 1;
            bar.set_position(sample.done as u64);
            bar.set_message(format!("score so far {:.3}", *sum / *seen as f64));
        }
    }

    /// Takes the bars off the screen, finished or not. A bar dropped unfinished (a run
    /// cancelled mid-way) would draw itself once more as it goes, so each is finished and
    /// cleared first: only what is printed after stays.
    pub(super) fn clear(&self) {
        for (bar, _) in self.bars.values() {
            bar.finish_and_clear();
        }
        if let Some((bar, ..)) = &self.suite {
            bar.finish_and_clear();
        }
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
        self.quiet.restore();
    }

    /// Prints `line` on stderr above the bars, so they are drawn again below it rather than
    /// over it (a line written past them would leave them on the screen for good). The
    /// terminal's echo comes back before a line that ends the process.
    pub(super) fn say(&self) -> impl Fn(&str, bool) + Send + 'static {
        let multi = self.multi.clone();
        let quiet = self.quiet.clone();
        move |line: &str, last: bool| {
            match &multi {
                Some(multi) => multi.suspend(|| eprintln!("{line}")),
                None => eprintln!("{line}"),
            }
            if last {
                quiet.restore();
            }
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.quiet.restore();
    }
}

/// The terminal on stderr with its echo of control characters (`ECHOCTL`) turned off, and
/// how it was before, to give back ([`QuietControls::restore`], any number of times).
#[derive(Clone, Default)]
struct QuietControls {
    saved: Option<rustix::termios::Termios>,
}

impl QuietControls {
    /// Turns the echo of control characters off on stderr's terminal; does nothing (and
    /// restores nothing) where that fails (not a terminal).
    fn on_stderr() -> Self {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        let stderr = std::io::stderr();
        let Ok(saved) = tcgetattr(&stderr) else {
            return QuietControls::default();
        };
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHOCTL);
        if tcsetattr(&stderr, OptionalActions::Now, &quiet).is_err() {
            return QuietControls::default();
        }
        QuietControls { saved: Some(saved) }
    }

    /// Gives the terminal its echo back, as it was.
    fn restore(&self) {
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stderr(),
                rustix::termios::OptionalActions::Now,
                saved,
            );
        }
    }
}

/// What stops a headless run from the outside: the first Ctrl-C (or SIGTERM, SIGHUP) cancels
/// run `number` where it runs, a second stops waiting.
pub(super) struct Watcher {
    task: tokio::task::JoinHandle<()>,
    stopped_by: Arc<std::sync::OnceLock<StopSignal>>,
}

impl Watcher {
    /// The signal that stopped the run, when one did.
    pub(super) fn stopped_by(&self) -> Arc<std::sync::OnceLock<StopSignal>> {
        Arc::clone(&self.stopped_by)
    }

    /// Stops watching (the run ended).
    pub(super) fn abort(&self) {
        self.task.abort();
    }
}

/// Watches `signals` for run `number` (`what`: `benchmark run`, `suite run`), saying what it
/// does with `say` (above the bars).
pub(super) fn watch_signals(
    mut signals: crate::signals::StopSignals,
    stop: Stop,
    number: u64,
    say: impl Fn(&str, bool) + Send + 'static,
    what: &'static str,
) -> Watcher {
    let stopped_by: Arc<std::sync::OnceLock<StopSignal>> = Arc::default();
    let first_seen = Arc::clone(&stopped_by);
    let task = tokio::spawn(async move {
        let first = signals.recv().await;
        let _ = first_seen.set(first);
        say(
            &match first {
                StopSignal::Interrupt => {
                    format!("veyra: cancelling the {what} (Ctrl-C again to abort at once)")
                }
                other => format!(
                    "veyra: {}: cancelling the {what} (again to abort at once)",
                    other.name()
                ),
            },
            false,
        );
        stop.cancel(number).await;
        let second = signals.recv().await;
        say("veyra: interrupted twice; not waiting", true);
        std::process::exit(match second {
            StopSignal::Interrupt => ExitCode::Runtime.code(),
            other => other.exit_code().code(),
        });
    });
    Watcher { task, stopped_by }
}
