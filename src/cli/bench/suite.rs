//! `veyra bench --suite FILE [--map SPEC] [--count N] [--json] [--out FILE] [--resume RUN]
//! [--record DIR | --replay DIR [--paced]]`: runs a user's eval suite
//! ([`crate::benchmarks::suite`]) on a runtime of this process's own, keeps it in the
//! benchmark store as it goes, and prints its score with the 95 % interval: a table, or with
//! `--json` a document of the suite, every sample's id, score, reason and answer, and the
//! summary. `bench show`, `compare` of suite runs are here too. A bad file is refused before
//! anything runs (exit 2). Ctrl-C (or SIGTERM, SIGHUP) cancels what runs, prints what
//! finished, and exits 1 (143, 129); a second one stops waiting.

use std::io::IsTerminal;

use tokio_util::sync::CancellationToken;

use super::{BenchRunArgs, json_pretty, tables::estimate_cells};
use crate::benchmarks::cassette::{Manifest, Tripwire};
use crate::benchmarks::runner::in_flight;
use crate::benchmarks::store::{
    self as bench_store, BenchStore, RunStatus, StoredSample, SuiteRunInfo,
};
use crate::benchmarks::suite::{self, FieldMap, SampleResult, SuiteReport};
use crate::cli::print_all;
use crate::config::LoadedConfig;
use crate::core::VeyraCore;
use crate::error::{ExitCode, VeyraError};
use crate::signals::StopSignal;

/// The `--json` document's format name.
pub const FORMAT: &str = "veyra.bench.suite/1";

/// Runs `args.suite` (see the module docs), kept in the benchmark store as it goes (resumed
/// with `--resume RUN` from the same file). Suites do not go through a serving runtime yet:
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
    // `--replay`: the cassette answers, offline, if it recorded this suite from these bytes;
    // `--record`: every model call of the run is kept in a new one. Either way a cassette that
    // fails (a request not recorded, a write that failed) stops the run (exit 2 or 1).
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
    let core = VeyraCore::with_registry(config, registry)?;
    // A new run that cannot run is refused before the store is even made.
    if args.resume.is_none() {
        suite::run::check(&core, &loaded_suite, args.count.map(|c| c as usize))?;
    }
    let db = bench_store::default_path(core.config());
    if args.resume.is_some() && !db.exists() {
        return Err(VeyraError::Usage(format!(
            "no suite runs to resume: {} does not exist yet",
            db.display()
        )));
    }
    let store = BenchStore::open(&db)?;
    let map = args.map.as_ref().map(map_text).unwrap_or_default();
    // A new run, or the one named, from the same file read the same way: its finished samples
    // are kept. A suite that cannot run is refused before a run is stored or reopened.
    let (run, earlier) = match &args.resume {
        Some(name) => {
            let found = find_resumable(&store, name, &loaded_suite, &map)?;
            suite::run::check(
                &core,
                &loaded_suite,
                Some(usize::try_from(found.total).unwrap_or(usize::MAX)),
            )?;
            let earlier = store
                .suite_samples(&found.id)?
                .into_iter()
                .map(|s| (s.ord, s.result))
                .collect::<Vec<_>>();
            store.reopen_suite_run(&found.id)?;
            (found, earlier)
        }
        None => {
            let run = SuiteRunInfo {
                id: crate::benchmarks::runner::new_run_id(),
                created_at: chrono::Utc::now(),
                finished_at: None,
                status: RunStatus::Running,
                name: loaded_suite.name.clone(),
                version: loaded_suite.version.clone(),
                digest: loaded_suite.digest.clone(),
                source: path.display().to_string(),
                map,
                total: args.count.map_or(loaded_suite.samples.len(), |c| {
                    (c as usize).min(loaded_suite.samples.len())
                }) as u64,
                backend: core.backend_name(),
                model: core.model_name(),
                config_hash: crate::benchmarks::runner::config_hash(core.config()),
                veyra_version: env!("CARGO_PKG_VERSION").to_string(),
            };
            store.create_suite_run(&run)?;
            (run, Vec::new())
        }
    };
    let stopped_by: std::sync::Arc<std::sync::OnceLock<StopSignal>> = Default::default();
    let total = usize::try_from(run.total).unwrap_or(usize::MAX);
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
    let (mut sum, mut done) = (
        earlier.iter().map(|(_, r)| r.score).sum::<f64>(),
        earlier.len(),
    );
    bar.set_position(done as u64);
    // Each result is committed as it finishes: a run that stops is resumed from it. A store
    // that fails stops the run (what is not kept would be run again).
    let mut lost: Option<VeyraError> = None;
    let mut progress = |index: usize, r: &SampleResult| {
        // After a cassette stopped the run, what fails is the cassette's miss, not the model:
        // nothing from then on is kept as a score.
        if tripwire.tripped().is_some() {
            return;
        }
        if lost.is_none()
            && let Err(e) = store.record_samples(
                &run.id,
                &[StoredSample {
                    ord: index,
                    result: r.clone(),
                }],
            )
        {
            lost = Some(e.into());
            cancel.cancel();
        }
        sum += r.score;
        done += 1;
        bar.set_position(done as u64);
        bar.set_message(format!("score so far {:.3}", sum / done as f64));
    };
    let report = suite::resume_suite(
        &core,
        &loaded_suite,
        Some(total),
        in_flight(&core.config().runtime),
        &cancel,
        suite::SuiteRun {
            id: Some(run.id.clone()),
            earlier,
        },
        &mut progress,
    )
    .await;
    watcher.abort();
    bar.finish_and_clear();
    let report = match (report, lost) {
        (Ok(report), None) => report,
        (report, lost) => {
            // The run stops here: it is left cancelled (resumable), summed over what the
            // store kept, never `running`.
            let kept: Vec<SampleResult> = store
                .suite_samples(&run.id)
                .map(|v| v.into_iter().map(|s| s.result).collect())
                .unwrap_or_default();
            let _ = store.finish_suite_run(
                &run.id,
                RunStatus::Cancelled,
                &suite::summarize(&kept, total),
            );
            return Err(match (report, lost) {
                (_, Some(e)) | (Err(e), None) => e,
                (Ok(_), None) => VeyraError::Runtime("the suite run stopped".into()),
            });
        }
    };
    let tripped = tripwire.error();
    let report = if tripped.is_some() {
        // Summed over what was kept before the cassette stopped it; resumable.
        let kept: Vec<SampleResult> = store
            .suite_samples(&run.id)?
            .into_iter()
            .map(|s| s.result)
            .collect();
        SuiteReport {
            complete: false,
            summary: suite::summarize(&kept, total),
            samples: kept,
            ..report
        }
    } else {
        report
    };
    store.finish_suite_run(
        &run.id,
        if report.complete {
            RunStatus::Complete
        } else {
            RunStatus::Cancelled
        },
        &report.summary,
    )?;
    if let Some(e) = tripped {
        eprintln!(
            "veyra: the cassette stopped the suite run after {} of {} samples",
            report.summary.n, report.summary.total
        );
        return Err(e);
    }
    let document = document(&report);
    if let Some(out) = &args.out {
        std::fs::write(out, json_pretty(&document, "the suite run")?)
            .map_err(|e| VeyraError::io(format!("writing {}", out.display()), e))?;
    }
    if args.json {
        print_all(&json_pretty(&document, "the suite run")?)?;
    } else {
        print_all(&format!("run {}\n{}", run.id, table(&report)))?;
    }
    if !report.complete {
        eprintln!(
            "veyra: the suite run was cancelled after {} of {} samples; finish it with \
             `veyra bench --suite {} --resume {}`",
            report.summary.n,
            report.summary.total,
            path.display(),
            run.id
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

/// `--map` as stored with a run: `input=question,target=answer`.
fn map_text(map: &FieldMap) -> String {
    map.0
        .iter()
        .map(|(to, from)| format!("{to}={from}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The run of this suite `name` names (an id, a unique prefix, or `last`: the newest run of
/// this suite), checked against what is being run: the same file's bytes, read with the same
/// `--map`, and not complete.
fn find_resumable(
    store: &BenchStore,
    name: &str,
    suite: &suite::Suite,
    map: &str,
) -> Result<SuiteRunInfo, VeyraError> {
    let runs: Vec<SuiteRunInfo> = store
        .suite_runs()?
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| r.name == suite.name)
        .collect();
    let name = name.trim();
    let found = crate::benchmarks::store::named(name, &runs, |r| &r.id);
    let run = match found.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(VeyraError::Usage(format!(
                "no run '{}' of the suite '{}' in {}; `veyra bench list` shows the runs",
                crate::sanitize::quote(name),
                crate::sanitize::quote(&suite.name),
                store.path()
            )));
        }
        many => {
            return Err(VeyraError::Usage(format!(
                "'{}' matches {} runs of the suite; give more of the id",
                crate::sanitize::quote(name),
                many.len()
            )));
        }
    };
    if run.status == RunStatus::Complete {
        return Err(VeyraError::Usage(format!(
            "suite run {} is complete; there is nothing to resume",
            run.id
        )));
    }
    let short = |d: &str| d.chars().take(12).collect::<String>();
    if run.digest != suite.digest {
        return Err(VeyraError::Usage(format!(
            "suite run {} ran {} with SHA-256 {}…; {} has {}… now: a changed suite is a new \
             run (drop --resume)",
            run.id,
            crate::sanitize::quote(&run.source),
            short(&run.digest),
            suite.source.display(),
            short(&suite.digest)
        )));
    }
    if run.map != map {
        return Err(VeyraError::Usage(format!(
            "suite run {} read its file with --map '{}', not '{}': the samples would be other \
             samples; resume it with the same --map",
            run.id,
            crate::sanitize::quote(&run.map),
            crate::sanitize::quote(map)
        )));
    }
    Ok(run)
}

/// `veyra bench show RUN` of a suite run: its table and the samples below 1, or its document.
pub(super) fn show(
    store: &BenchStore,
    info: &SuiteRunInfo,
    json: bool,
) -> Result<ExitCode, VeyraError> {
    let report = stored_report(store, info)?;
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

/// A stored suite run as the report its run printed.
fn stored_report(store: &BenchStore, info: &SuiteRunInfo) -> Result<SuiteReport, VeyraError> {
    let total = usize::try_from(info.total).unwrap_or(usize::MAX);
    // A row past the run's samples (a damaged store) is not one of its results.
    let samples: Vec<SampleResult> = store
        .suite_samples(&info.id)?
        .into_iter()
        .filter(|s| s.ord < total)
        .map(|s| s.result)
        .collect();
    Ok(SuiteReport {
        suite: info.name.clone(),
        version: info.version.clone(),
        backend: info.backend.clone(),
        model: info.model.clone(),
        complete: info.status == RunStatus::Complete,
        summary: suite::summarize(&samples, total),
        samples,
    })
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
