//! `veyra bench …`: run benchmarks, list, show and compare past runs, print the export schema.
//! Parsing and printing only; the work is in [`crate::benchmarks`].
//!
//! On a terminal a run shows one `indicatif` bar per family on stderr; at the end a table
//! (family, n, score, ± of the 95 % interval, time, tokens) and the V-Score with its interval
//! go to stdout. `--json` prints the run's `veyra.bench.run/1` document instead; `--out FILE`
//! writes it to a file as well. Ctrl-C cancels the run (what finished is kept; `--resume RUN`
//! finishes it) and exits 1. `--record DIR` keeps the run's model calls in a cassette and
//! `--replay DIR [--paced]` runs it again from one (see [`crate::benchmarks::cassette`]); a
//! cassette that does not fit the run stops it with exit 2. `--suite FILE` runs a user's eval
//! suite instead ([`suite`]).

use std::io::IsTerminal;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::print_all;
use crate::benchmarks::RunPlan;
use crate::benchmarks::cassette::Tripwire;
use crate::benchmarks::export;
use crate::benchmarks::request::BenchRequest;
use crate::benchmarks::store::{self as bench_store, BenchStore, RunStatus};
use crate::config::LoadedConfig;
use crate::core::VeyraCore;
use crate::error::{ExitCode, VeyraError};
use crate::service::bench::BenchNews;
use crate::signals::StopSignal;

mod args;
mod cassette;
mod host;
mod past;
mod suite;
mod tables;

pub use args::{BenchArgs, BenchCommand, BenchRunArgs, FamilyList};
use host::{Bars, Host};
use past::{bench_compare, bench_list, bench_show};
use tables::run_table;

/// `veyra bench schema [--suite]`: the run document's schema, or a YAML suite's; needs no
/// configuration.
pub fn bench_schema(suite: bool) -> Result<ExitCode, VeyraError> {
    if suite {
        return print_all(&json_pretty(
            &crate::benchmarks::suite::format::schema(),
            "the suite schema",
        )?);
    }
    print_all(export::SCHEMA)
}

/// `veyra bench …` (all but `schema`, which [`bench_schema`] answers). A run goes through
/// the runtime serving the configured store when one does (unless `standalone`), else on a
/// runtime of this process's own, which serves the store while the run goes.
pub async fn bench(
    args: BenchArgs,
    loaded: LoadedConfig,
    standalone: bool,
) -> Result<ExitCode, VeyraError> {
    let path = bench_store::default_path(&loaded.config);
    match args.command {
        None if args.run.suite.is_some() => suite::suite_run(args.run, loaded, standalone).await,
        None => bench_run(args.run, loaded, &path, standalone).await,
        Some(BenchCommand::List { json }) => bench_list(&path, json),
        Some(BenchCommand::Show { run, json }) => bench_show(&path, &run, json),
        Some(BenchCommand::Compare { a, b, json }) => bench_compare(&path, &a, &b, json),
        Some(BenchCommand::Schema { suite }) => bench_schema(suite),
    }
}

/// The store, or `None` when no run was ever made.
fn existing_store(path: &Path) -> Result<Option<BenchStore>, VeyraError> {
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(BenchStore::open(path)?))
}

fn no_runs(path: &Path, run: &str) -> VeyraError {
    VeyraError::Usage(format!(
        "no benchmark run '{}': there are no runs yet in {}; start one with `veyra bench`",
        crate::sanitize::quote(run),
        path.display()
    ))
}

fn json_pretty<T: serde::Serialize>(value: &T, what: &str) -> Result<String, VeyraError> {
    let mut text = crate::sanitize::to_json_pretty(value)
        .map_err(|e| VeyraError::Runtime(format!("encoding {what}: {e}")))?;
    text.push('\n');
    Ok(text)
}

/// What `veyra bench --tui [--replay DIR [--paced]]` opens: the console with this run going
/// on the Benchmarks pane (zoomed). With `--replay` the console's backends are `registry`'s,
/// holding the cassette's, so a recorded run is shown again offline (at its recorded pace
/// with `--paced`). The binary opens the console: this layer knows no screen.
pub struct BenchConsole {
    /// The configuration, with what `--replay` changed.
    pub loaded: LoadedConfig,
    /// The run to start at once.
    pub request: BenchRequest,
    /// The backends, when they are not the built-in ones (`--replay`).
    pub registry: Option<crate::models::BackendRegistry>,
}

/// True when `veyra bench` asks for the console (`--tui`) rather than a headless run.
pub fn wants_console(args: &BenchArgs) -> bool {
    args.command.is_none() && args.run.tui
}

/// The console `veyra bench --tui` opens (see [`BenchConsole`]).
pub fn bench_console(
    args: BenchArgs,
    mut loaded: LoadedConfig,
) -> Result<BenchConsole, VeyraError> {
    let args = args.run;
    let mut plan = RunPlan::from_config(&loaded.config.bench)?;
    let replay = match &args.replay {
        Some(dir) => Some(cassette::open_replay(dir, &mut loaded.config, &mut plan)?),
        None => None,
    };
    let request = BenchRequest {
        families: Some(args.family.map_or(plan.families.clone(), |FamilyList(f)| f)),
        count: Some(args.count.unwrap_or(plan.count)),
        difficulty: Some(args.difficulty.unwrap_or(plan.difficulty)),
        seed: Some(args.seed.unwrap_or(plan.seed)),
        epochs: Some(args.epochs.unwrap_or(plan.epochs)),
    };
    let registry = match replay {
        // A request the cassette lacks fails its task with the reason (shown as a miss); the
        // console's own cancel key stops the run.
        Some(cassette) => Some(cassette::registry(
            &loaded.config,
            &crate::benchmarks::cassette::Manifest::new(&plan, &loaded.config.model),
            None,
            Some((cassette, args.paced)),
            &Tripwire::new(CancellationToken::new()),
        )?),
        None => None,
    };
    Ok(BenchConsole {
        loaded,
        request,
        registry,
    })
}

async fn bench_run(
    args: BenchRunArgs,
    mut loaded: LoadedConfig,
    path: &Path,
    standalone: bool,
) -> Result<ExitCode, VeyraError> {
    if args.tui {
        // The console is above this layer: `bench_console` says what to open, the binary opens it.
        return Err(VeyraError::Usage(
            "`--tui` opens the console: take `bench_console` and open it with `tui::run`".into(),
        ));
    }
    let mut plan = RunPlan::from_config(&loaded.config.bench)?;
    let replay = match &args.replay {
        Some(dir) => Some(cassette::open_replay(dir, &mut loaded.config, &mut plan)?),
        None => None,
    };
    if let Some(FamilyList(f)) = args.family {
        plan.families = f;
    }
    plan.count = args.count.unwrap_or(plan.count);
    plan.difficulty = args.difficulty.unwrap_or(plan.difficulty);
    plan.seed = args.seed.unwrap_or(plan.seed);
    plan.epochs = args.epochs.unwrap_or(plan.epochs);
    if args.resume.is_none()
        && plan
            .families
            .iter()
            .all(|f| plan.weights.get(f).copied().unwrap_or(1.0) == 0.0)
    {
        return Err(VeyraError::Usage(
            "every family chosen weighs 0 in bench.weights, so the V-Score is undefined; pick \
             another family or give one a positive weight"
                .into(),
        ));
    }
    if let Some(run) = &args.resume
        && !path.exists()
    {
        return Err(no_runs(path, run));
    }
    // Listen for Ctrl-C (and SIGTERM, SIGHUP) before anything runs, so no signal can slip
    // past. The first cancels the run, which is kept as cancelled (`--resume` finishes it);
    // a second stops waiting.
    let signals = crate::signals::StopSignals::install()?;
    let cassette = args.record.is_some() || args.replay.is_some();
    let attached = if standalone {
        None
    } else {
        crate::service::attach_configured(&loaded.config, "veyra bench", false).await?
    };
    let mut host = match attached {
        Some((client, _)) if cassette => {
            return Err(VeyraError::Usage(format!(
                "--record and --replay run on a runtime of their own, and {} serves this store; \
                 stop it first, or give this run another store (`--config`)",
                client.describe()
            )));
        }
        Some((client, inbound)) => {
            eprintln!(
                "veyra: attached to {}; --standalone runs without it",
                client.describe()
            );
            Host::Attached {
                client: Box::new(client),
                inbound,
            }
        }
        None => {
            // With runtime.executor: nats the items go to the fleet's workers; the run, its
            // store and its scoring stay here.
            // `--standalone` keeps the items here too, as `veyra run --standalone` does.
            let fleet = (loaded.config.runtime.executor == crate::config::Executor::Nats
                && !standalone)
                .then(|| loaded.config.nats.clone());
            if fleet.is_some() && (args.record.is_some() || replay.is_some()) {
                return Err(VeyraError::Usage(
                    "--record and --replay go through this process's own backends; with \
                     runtime.executor: nats the items run on the fleet's (add --standalone \
                     to run them here)"
                        .into(),
                ));
            }
            let cancel = CancellationToken::new();
            // A cassette failure (a request not recorded, a write that failed) stops the run.
            let tripwire = Tripwire::new(cancel.clone());
            let registry = cassette::registry(
                &loaded.config,
                &crate::benchmarks::cassette::Manifest::new(&plan, &loaded.config.model),
                args.record.as_deref(),
                replay.map(|c| (c, args.paced)),
                &tripwire,
            )?;
            let host = Host::here(
                VeyraCore::with_registry(loaded.config, registry)?,
                cancel,
                tripwire,
            );
            if let (Some(nats), Host::Here { runs, .. }) = (fleet, &host) {
                runs.set_solver(
                    fleet_solver(
                        &nats,
                        "veyra bench",
                        "the run's items go to the fleet (the run and its store stay here)",
                    )
                    .await?,
                );
            }
            host
        }
    };
    let stop = host.stop();
    let request = BenchRequest {
        families: Some(plan.families.clone()),
        count: Some(plan.count),
        difficulty: Some(plan.difficulty),
        seed: Some(plan.seed),
        epochs: Some(plan.epochs),
    };
    let number = host.start(request, args.resume.clone()).await?;
    let mut bars = Bars::new(std::io::stderr().is_terminal());
    let watcher = host::watch_signals(signals, stop, number, bars.say(), "benchmark run");
    let stopped_by = watcher.stopped_by();
    let ended = loop {
        match host.next().await {
            Ok(BenchNews::Progress { progress }) => bars.update(&progress),
            Ok(BenchNews::Began(_) | BenchNews::Sample { .. }) => {}
            Ok(BenchNews::Ended {
                run,
                summary,
                error,
                ..
            }) => break Ok((run, summary, error)),
            Err(e) => break Err(e),
        }
    };
    watcher.abort();
    bars.clear();
    let (run, summary, error) = ended?;
    if let Some(e) = host.tripped() {
        if let Some(info) = &run {
            eprintln!(
                "veyra: run {} stopped; it is kept as cancelled",
                crate::sanitize::sanitize_line(&info.id)
            );
        }
        return Err(e);
    }
    let (info, summary) = match (run, summary, error) {
        (Some(info), Some(summary), None) => (info, summary),
        (_, _, Some(e)) => return Err(VeyraError::Runtime(e)),
        _ => {
            return Err(VeyraError::Runtime(
                "the runtime ended the run without saying how".into(),
            ));
        }
    };
    // The id came from a runtime, perhaps over a socket: it reaches a terminal sanitized.
    let mut info = info;
    info.id = crate::sanitize::sanitize_line(&info.id).into_owned();
    let cancelled = info.status != RunStatus::Complete;
    // The whole document (every task read back from the store) only when it is written out or
    // counted: the table needs just the run and its summary, computed from the same results.
    let doc = if args.out.is_some() || args.json || cancelled {
        Some(export::from_store(&*host.store(path)?, &info)?)
    } else {
        None
    };
    if let (Some(out), Some(doc)) = (&args.out, &doc) {
        std::fs::write(out, json_pretty(doc, "the run")?)
            .map_err(|e| VeyraError::io(format!("writing {}", out.display()), e))?;
    }
    match &doc {
        Some(doc) if args.json => print_all(&json_pretty(doc, "the run")?)?,
        _ => print_all(&run_table(&info, &summary))?,
    };
    if let (true, Some(doc)) = (cancelled, &doc) {
        let total = doc.tasks.len() * info.epochs as usize;
        let done: usize = doc.tasks.iter().map(|t| t.results.len()).sum();
        eprintln!(
            "veyra: run {} cancelled after {done} of {total} task epochs; finish it with `veyra \
             bench --resume {}`",
            info.id, info.id
        );
        // Ctrl-C is the operator's own stop (exit 1, as a cancelled run); SIGTERM and SIGHUP
        // say who stopped it (143, 129).
        return Ok(match stopped_by.get() {
            Some(signal) if *signal != StopSignal::Interrupt => signal.exit_code(),
            _ => ExitCode::Runtime,
        });
    }
    Ok(ExitCode::Success)
}

/// The fleet as a run's solver (`runtime.executor: nats`): connected now, so a fleet that
/// cannot be reached is said before the run starts; `announce` is said with its address.
pub(crate) async fn fleet_solver(
    nats: &crate::config::NatsConfig,
    what: &str,
    announce: &str,
) -> Result<std::sync::Arc<dyn crate::benchmarks::runner::ItemSolver>, VeyraError> {
    let fleet = crate::fleet::Fleet::connect(nats, None).await?;
    let host = crate::core::hostname();
    eprintln!("veyra: {} at {}", announce, fleet.url());
    Ok(std::sync::Arc::new(crate::fleet::bench::FleetSolver::new(
        crate::fleet::Submitter::new(fleet),
        format!("{what} on {host} (pid {})", std::process::id()),
    )))
}
