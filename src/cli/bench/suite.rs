//! `veyra bench --suite FILE [--map SPEC] [--count N] [--json] [--out FILE] [--resume RUN]
//! [--record DIR | --replay DIR [--paced]]`: runs a user's eval suite
//! ([`crate::benchmarks::suite`]) where a family run goes — the runtime serving the store, or
//! one of this process's own — keeps it in the benchmark store as it goes, and prints its score with the 95 % interval: a table, or with
//! `--json` a document of the suite, every sample's id, score, reason and answer, and the
//! summary. `bench show`, `compare` of suite runs are here too. A bad file is refused before
//! anything runs (exit 2). Ctrl-C (or SIGTERM, SIGHUP) cancels what runs, prints what
//! finished, and exits 1 (143, 129); a second one stops waiting.

use std::io::IsTerminal;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::host::{self, Bars, Host};
use super::{BenchRunArgs, json_pretty, tables::estimate_cells};
use crate::benchmarks::cassette::{Manifest, Tripwire};
use crate::benchmarks::store::{self as bench_store, BenchStore, SuiteRunInfo};
use crate::benchmarks::suite::{self, SampleResult, SuiteReport};
use crate::cli::print_all;
use crate::config::LoadedConfig;
use crate::core::VeyraCore;
use crate::error::{ExitCode, VeyraError};
use crate::service::bench::{BenchNews, SuiteJob};
use crate::service::protocol::SuiteUpload;
use crate::signals::StopSignal;

/// The `--json` document's format name.
pub const FORMAT: &str = "veyra.bench.suite/1";

/// Runs `args.suite` (see the module docs), kept in the benchmark store as it goes (resumed
/// with `--resume RUN` from the same file): on the runtime serving the store when one does
/// (unless `standalone`; the file's text is sent, the runtime reads no file), else on a
/// runtime of this process's own, which serves the store while the run goes.
pub(super) async fn suite_run(
    args: BenchRunArgs,
    loaded: LoadedConfig,
    standalone: bool,
) -> Result<ExitCode, VeyraError> {
    let Some(path) = args.suite.as_deref() else {
        return Err(VeyraError::Usage("--suite names no file".into()));
    };
    let shown = path.display().to_string();
    let text =
        crate::fsread::read_regular_to_string(path, suite::format::MAX_FILE_BYTES, "suite file")
            .map_err(|e| {
                VeyraError::Usage(
                    crate::sanitize::sanitize_line(&format!("suite {shown}: {}", e.reason()))
                        .into_owned(),
                )
            })?;
    let loaded_suite = Arc::new(suite::format::from_text(&text, path, args.map.as_ref())?);
    // Listen for Ctrl-C (and SIGTERM, SIGHUP) before anything runs, so no signal slips past.
    let signals = crate::signals::StopSignals::install()?;
    let db = bench_store::default_path(&loaded.config);
    // An audit trail in memory (the demo's) keeps its runs in memory too: nothing to resume.
    let unkept = crate::service::bench::unkept(&loaded.config);
    if let (Some(why), Some(_)) = (unkept, &args.resume) {
        return Err(VeyraError::Usage(format!(
            "{why}; there is no suite run to resume"
        )));
    }
    if args.resume.is_some() && !db.exists() {
        return Err(VeyraError::Usage(format!(
            "no suite runs to resume: {} does not exist yet",
            db.display()
        )));
    }
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
            // `--replay`: the cassette answers, offline, if it recorded this suite from these
            // bytes; `--record`: every model call of the run is kept in a new one. Either way
            // a cassette that fails (a request not recorded, a write that failed) stops the
            // run (exit 2 or 1).
            let mut config = loaded.config;
            let replay = match &args.replay {
                Some(dir) => Some(super::cassette::open_suite_replay(
                    dir,
                    &mut config,
                    &loaded_suite,
                )?),
                None => None,
            };
            let cancel = CancellationToken::new();
            let tripwire = Tripwire::new(cancel.clone());
            let plan = crate::benchmarks::RunPlan::from_config(&config.bench)?;
            let registry = super::cassette::registry(
                &config,
                &Manifest::for_suite(&loaded_suite, &plan, &config.model),
                args.record.as_deref(),
                replay.map(|c| (c, args.paced)),
                &tripwire,
            )?;
            Host::here(
                VeyraCore::with_registry(config, registry)?,
                cancel,
                tripwire,
            )
        }
    };
    let map = args.map.as_ref().map(ToString::to_string);
    let job = SuiteJob {
        suite: Arc::clone(&loaded_suite),
        source: shown.clone(),
        map: map.clone().unwrap_or_default(),
        resume: args.resume.clone(),
        count: args.count.map(|c| c as usize),
    };
    let began = host
        .start_suite(job, || SuiteUpload {
            source: shown.clone(),
            text,
            map,
            count: args.count,
        })
        .await?;
    let mut bars = Bars::new(std::io::stderr().is_terminal());
    if let Some(s) = &began.suite {
        bars.suite_began(s.total, s.earlier);
    }
    let watcher = host::watch_signals(signals, host.stop(), began.number, bars.say(), "suite run");
    let stopped_by = watcher.stopped_by();
    let ended = loop {
        match host.next().await {
            Ok(BenchNews::Sample { sample }) => bars.sample(&sample),
            Ok(BenchNews::Began(_) | BenchNews::Progress { .. }) => {}
            Ok(BenchNews::Ended { suite, error, .. }) => break Ok((suite, error)),
            Err(e) => break Err(e),
        }
    };
    watcher.abort();
    bars.clear();
    let (end, error) = ended?;
    if let Some(e) = host.tripped() {
        if let Some(end) = &end {
            eprintln!(
                "veyra: the cassette stopped the suite run after {} of {} samples",
                end.summary.n, end.summary.total
            );
        }
        return Err(e);
    }
    let mut info = match (end, error) {
        (_, Some(e)) => return Err(VeyraError::Runtime(e)),
        (Some(end), None) => end.run,
        (None, None) => {
            return Err(VeyraError::Runtime(
                "the runtime ended the suite run without saying how".into(),
            ));
        }
    };
    // The id came from a runtime, perhaps over a socket: it reaches a terminal sanitized.
    info.id = crate::sanitize::sanitize_line(&info.id).into_owned();
    let report = suite::kept::stored_report(&*host.store(&db)?, &info)?;
    let document = document(&report);
    if let Some(out) = &args.out {
        std::fs::write(out, json_pretty(&document, "the suite run")?)
            .map_err(|e| VeyraError::io(format!("writing {}", out.display()), e))?;
    }
    if args.json {
        print_all(&json_pretty(&document, "the suite run")?)?;
    } else {
        print_all(&format!("run {}\n{}", info.id, table(&report)))?;
    }
    if !report.complete {
        match unkept {
            Some(why) => eprintln!(
                "veyra: the suite run was cancelled after {} of {} samples; {why}, so it cannot \
                 be resumed",
                report.summary.n, report.summary.total
            ),
            None => eprintln!(
                "veyra: the suite run was cancelled after {} of {} samples; finish it with \
                 `veyra bench --suite {} --resume {}`",
                report.summary.n,
                report.summary.total,
                crate::sanitize::sanitize_line(&shown),
                info.id
            ),
        }
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
    let short =
        |t: &str| crate::sanitize::sanitize_line(&crate::sanitize::excerpt(t, 64)).into_owned();
    let mut out = format!(
        "suite {name} v{version} · {}/{}{}\n",
        short(&report.backend),
        short(&report.model),
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

/// `veyra bench show RUN` of a suite run: its table and the samples below 1, or its document.
pub(super) fn show(
    store: &BenchStore,
    info: &SuiteRunInfo,
    json: bool,
) -> Result<ExitCode, VeyraError> {
    let report = suite::kept::stored_report(store, info)?;
    if json {
        return print_all(&json_pretty(&document(&report), "the suite run")?);
    }
    let mut out = format!(
        "run {} ({})\n{}",
        info.id,
        info.status.name(),
        table(&report)
    );
    let below: Vec<&SampleResult> = report.samples.iter().filter(|r| r.score < 1.0).collect();
    if !below.is_empty() {
        out.push_str(&format!(
            "{} sample{} below 1:\n",
            below.len(),
            if below.len() == 1 { "" } else { "s" }
        ));
        for r in below.iter().take(20) {
            out.push_str(&format!(
                "  {}: {}\n",
                crate::sanitize::sanitize_line(&crate::sanitize::excerpt(&r.id, 40)),
                crate::sanitize::sanitize_line(&crate::sanitize::excerpt(&r.reason, 160))
            ));
        }
        if below.len() > 20 {
            out.push_str(&format!(
                "  … and {} more (see `veyra bench show {} --json`)\n",
                below.len() - 20,
                info.id
            ));
        }
    }
    print_all(&out)
}

/// `veyra bench compare A B` of two runs of one suite: B − A, paired by sample id.
pub(super) fn compare(
    store: &BenchStore,
    a: &SuiteRunInfo,
    b: &SuiteRunInfo,
    json: bool,
) -> Result<ExitCode, VeyraError> {
    if a.name != b.name || a.digest != b.digest || a.map != b.map {
        return Err(VeyraError::Usage(format!(
            "runs {} and {} ran different suites ('{}' v{} and '{}' v{}, or other files of \
             one, or one read with another --map); compare runs of one suite from one file",
            a.id,
            b.id,
            crate::sanitize::quote(&a.name),
            crate::sanitize::quote(&a.version),
            crate::sanitize::quote(&b.name),
            crate::sanitize::quote(&b.version)
        )));
    }
    let scores =
        |run: &SuiteRunInfo| -> Result<std::collections::BTreeMap<String, f64>, VeyraError> {
            Ok(store
                .suite_samples(&run.id)?
                .into_iter()
                .map(|s| (s.result.id, s.result.score))
                .collect())
        };
    let (sa, sb) = (scores(a)?, scores(b)?);
    let paired: Vec<(&String, f64, f64)> = sa
        .iter()
        .filter_map(|(id, x)| sb.get(id).map(|y| (id, *x, *y)))
        .collect();
    if paired.is_empty() {
        return Err(VeyraError::Usage(format!(
            "runs {} and {} share no finished samples to pair",
            a.id, b.id
        )));
    }
    let pick =
        |f: &dyn Fn(&(&String, f64, f64)) -> f64| -> Vec<f64> { paired.iter().map(f).collect() };
    let in_a = crate::benchmarks::stats::scores_estimate(&pick(&|p| p.1));
    let in_b = crate::benchmarks::stats::scores_estimate(&pick(&|p| p.2));
    let diff = crate::benchmarks::stats::differences_estimate(&pick(&|p| p.2 - p.1));
    let (better, worse) = paired.iter().fold((0usize, 0usize), |(up, down), p| {
        (up + usize::from(p.2 > p.1), down + usize::from(p.2 < p.1))
    });
    // Samples only one run finished are not paired: said, never silently dropped.
    let only_a = sa.keys().filter(|id| !sb.contains_key(*id)).count();
    let only_b = sb.keys().filter(|id| !sa.contains_key(*id)).count();
    if json {
        #[derive(serde::Serialize)]
        struct Comparison<'a> {
            format: &'static str,
            suite: &'a str,
            a: &'a str,
            b: &'a str,
            paired: usize,
            a_score: &'a crate::benchmarks::stats::Estimate,
            b_score: &'a crate::benchmarks::stats::Estimate,
            difference: &'a crate::benchmarks::stats::Estimate,
            better: usize,
            worse: usize,
            only_in_a: usize,
            only_in_b: usize,
        }
        return print_all(&json_pretty(
            &Comparison {
                format: "veyra.bench.suite-compare/1",
                suite: &a.name,
                a: &a.id,
                b: &b.id,
                paired: paired.len(),
                a_score: &in_a,
                b_score: &in_b,
                difference: &diff,
                better,
                worse,
                only_in_a: only_a,
                only_in_b: only_b,
            },
            "the comparison",
        )?);
    }
    let (pm, ci) = estimate_cells(&diff);
    let name = crate::sanitize::sanitize_line(&crate::sanitize::excerpt(&a.name, 32)).into_owned();
    let mut out = format!(
        "suite {name}: B − A, paired by sample id\nA {}\nB {}\n",
        a.id, b.id
    );
    out.push_str(&format!(
        "{:>6} {:>7} {:>7} {:>8} {:>7}  {:<17} {:>6} {:>6}\n",
        "paired", "A", "B", "B − A", "±95%", "95% CI", "better", "worse"
    ));
    out.push_str(&format!(
        "{:>6} {:>7.3} {:>7.3} {:>+8.3} {:>7}  {:<17} {:>6} {:>6}\n",
        paired.len(),
        in_a.mean,
        in_b.mean,
        diff.mean,
        pm,
        ci,
        better,
        worse
    ));
    if only_a + only_b > 0 {
        out.push_str(&format!(
            "not paired: {only_a} samples finished only in A, {only_b} only in B\n"
        ));
    }
    print_all(&out)
}
