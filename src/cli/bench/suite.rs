//! `veyra bench --suite FILE [--map SPEC] [--count N] [--json] [--out FILE]`: runs a user's
//! eval suite ([`crate::benchmarks::suite`]) on a runtime of this process's own and prints
//! its score with the 95 % interval: a table, or with `--json` a document of the suite, every
//! sample's id, score, reason and answer, and the summary. A bad file is refused before
//! anything runs (exit 2). Ctrl-C (or SIGTERM, SIGHUP) cancels what runs, prints what
//! finished, and exits 1 (143, 129); a second one stops waiting.

use std::io::IsTerminal;

use tokio_util::sync::CancellationToken;

use super::{BenchRunArgs, json_pretty, tables::estimate_cells};
use crate::benchmarks::runner::in_flight;
use crate::benchmarks::suite::{self, SampleResult, SuiteReport};
use crate::cli::print_all;
use crate::config::LoadedConfig;
use crate::core::VeyraCore;
use crate::error::{ExitCode, VeyraError};
use crate::signals::StopSignal;

/// The `--json` document's format name.
pub const FORMAT: &str = "veyra.bench.suite/1";

/// Runs `args.suite` (see the module docs). Suites do not go through a serving runtime yet:
/// with one serving the store, the run is refused (exit 2) unless `standalone`.
pub(super) async fn suite_run(
    args: BenchRunArgs,
    loaded: LoadedConfig,
    standalone: bool,
) -> Result<ExitCode, VeyraError> {
    let Some(path) = args.suite.as_deref() else {
        return Err(VeyraError::Usage("--suite names no file".into()));
    };
    let loaded_suite = suite::format::load(path, args.map.as_ref())?;
    // Listen for Ctrl-C (and SIGTERM, SIGHUP) before anything runs, so no signal slips past.
    let mut signals = crate::signals::StopSignals::install()?;
    if !standalone
        && let Some((client, _)) =
            crate::service::attach_configured(&loaded.config, "veyra bench", false).await?
    {
        return Err(VeyraError::Usage(format!(
            "a runtime ({}) serves this store; suites do not go through it yet — use \
             --standalone with another store (`--config`), or stop it",
            client.describe()
        )));
    }
    let core = VeyraCore::new(loaded.config)?;
    let cancel = CancellationToken::new();
    let stopped_by: std::sync::Arc<std::sync::OnceLock<StopSignal>> = Default::default();
    let total = args.count.map_or(loaded_suite.samples.len(), |c| {
        (c as usize).min(loaded_suite.samples.len())
    });
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "suite [{bar:32}] {pos:>5}/{len:<5} {msg} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let watcher = {
        let (cancel, bar, stopped_by) = (cancel.clone(), bar.clone(), stopped_by.clone());
        tokio::spawn(async move {
            let first = signals.recv().await;
            let _ = stopped_by.set(first);
            bar.suspend(|| {
                eprintln!(
                    "veyra: {}: cancelling the suite run (again to abort at once)",
                    first.name()
                )
            });
            cancel.cancel();
            let second = signals.recv().await;
            bar.suspend(|| eprintln!("veyra: interrupted twice; not waiting"));
            std::process::exit(match second {
                StopSignal::Interrupt => ExitCode::Runtime.code(),
                other => other.exit_code().code(),
            });
        })
    };
    let (mut sum, mut done) = (0.0, 0usize);
    let mut progress = |r: &SampleResult| {
        sum += r.score;
        done += 1;
        bar.set_position(done as u64);
        bar.set_message(format!("score so far {:.3}", sum / done as f64));
    };
    let report = suite::run_suite(
        &core,
        &loaded_suite,
        args.count.map(|c| c as usize),
        in_flight(&core.config().runtime),
        &cancel,
        &mut progress,
    )
    .await;
    watcher.abort();
    bar.finish_and_clear();
    let report = report?;
    let document = document(&report);
    if let Some(out) = &args.out {
        std::fs::write(out, json_pretty(&document, "the suite run")?)
            .map_err(|e| VeyraError::io(format!("writing {}", out.display()), e))?;
    }
    if args.json {
        print_all(&json_pretty(&document, "the suite run")?)?;
    } else {
        print_all(&table(&report))?;
    }
    if !report.complete {
        eprintln!(
            "veyra: the suite run was cancelled after {} of {} samples",
            report.summary.n, report.summary.total
        );
        return Ok(match stopped_by.get() {
            Some(signal) if *signal != StopSignal::Interrupt => signal.exit_code(),
            _ => ExitCode::Runtime,
        });
    }
    let s = &report.summary;
    if s.n > 0 && s.failed == s.n {
        // Nothing was measured: every execution failed (the backend down, the gate refusing).
        eprintln!(
            "veyra: every one of the {} executions failed; the score measures nothing (see the \
             reasons with --json)",
            s.n
        );
        return Ok(ExitCode::Runtime);
    }
    Ok(ExitCode::Success)
}

/// The `--json` document: the format, the suite, every sample and the summary.
#[derive(serde::Serialize)]
struct Document<'a> {
    format: &'static str,
    #[serde(flatten)]
    report: &'a SuiteReport,
}

fn document(report: &SuiteReport) -> Document<'_> {
    Document {
        format: FORMAT,
        report,
    }
}

/// The table: one row for the suite, the names sanitized (they come from the file).
fn table(report: &SuiteReport) -> String {
    let s = &report.summary;
    let (pm, ci) = estimate_cells(&s.score);
    let name =
        crate::sanitize::sanitize_line(&crate::sanitize::excerpt(&report.suite, 32)).into_owned();
    let version =
        crate::sanitize::sanitize_line(&crate::sanitize::excerpt(&report.version, 12)).into_owned();
    let mut out = format!(
        "suite {name} v{version} · {}/{}{}\n",
        crate::sanitize::sanitize_line(&report.backend),
        crate::sanitize::sanitize_line(&report.model),
        if report.complete { "" } else { " · cancelled" }
    );
    out.push_str(&format!(
        "{:<24} {:>8} {:>6} {:>7} {:>7}  {:<17} {:>6}\n",
        "suite", "version", "n", "score", "±95%", "95% CI", "failed"
    ));
    out.push_str(&format!(
        "{:<24} {:>8} {:>6} {:>7.3} {:>7}  {:<17} {:>6}\n",
        crate::sanitize::excerpt(&name, 24),
        crate::sanitize::excerpt(&version, 8),
        s.n,
        s.score.mean,
        pm,
        ci,
        s.failed
    ));
    out
}
