//! `veyra bench …`: run benchmarks, list, show and compare past runs, print the export schema.
//! Parsing and printing only; the work is in [`crate::benchmarks`].
//!
//! On a terminal a run shows one `indicatif` bar per family on stderr; at the end a table
//! (family, n, score, ± of the 95 % interval, time, tokens) and the V-Score with its interval
//! go to stdout. `--json` prints the run's `veyra.bench.run/1` document instead; `--out FILE`
//! writes it to a file as well. Ctrl-C cancels the run (what finished is kept; `--resume RUN`
//! finishes it) and exits 1. `--record DIR` keeps the run's model calls in a cassette and
//! `--replay DIR [--paced]` runs it again from one (see [`crate::benchmarks::cassette`]); a
//! cassette that does not fit the run stops it with exit 2.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use super::print_all;
use crate::benchmarks::cassette::Tripwire;
use crate::benchmarks::export::{self, RunExport};
use crate::benchmarks::request::BenchRequest;
use crate::benchmarks::stats::{self, Comparison, Estimate, RunSummary};
use crate::benchmarks::store::{self as bench_store, BenchStore, RunInfo, RunStatus};
use crate::benchmarks::{Difficulty, FamilyId, Progress, RunPlan, Runner};
use crate::config::LoadedConfig;
use crate::config::bench::{RANGE_BENCH_COUNT, RANGE_BENCH_EPOCHS};
use crate::core::{ConfirmationPolicy, VeyraCore};
use crate::error::{ExitCode, VeyraError};

mod cassette;

/// `veyra bench`: run a benchmark, or one of its subcommands.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// `list`, `show`, `compare` or `schema`; a run when omitted.
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// What to run.
    #[command(flatten)]
    pub run: BenchRunArgs,
}

/// Families as given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyList(pub Vec<FamilyId>);

fn parse_families(text: &str) -> Result<FamilyList, String> {
    FamilyId::parse_list(text).map(FamilyList)
}

fn parse_difficulty(text: &str) -> Result<Difficulty, String> {
    text.trim().parse()
}

fn parse_count(text: &str) -> Result<u32, String> {
    parse_in(text, RANGE_BENCH_COUNT)
}

fn parse_epochs(text: &str) -> Result<u32, String> {
    parse_in(text, RANGE_BENCH_EPOCHS)
}

fn parse_in(text: &str, range: std::ops::RangeInclusive<u64>) -> Result<u32, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            format!(
                "use a whole number from {} to {}",
                range.start(),
                range.end()
            )
        })
}

/// `veyra bench [flags]`.
#[derive(Debug, Args, Default)]
pub struct BenchRunArgs {
    /// Families: all, or a comma-separated list of cplc, msga, wmrt, icsd, tome, asr, imdp
    /// (default: bench.family).
    #[arg(long, value_name = "F[,F…]|all", value_parser = parse_families)]
    pub family: Option<FamilyList>,
    /// Tasks per family, 1 to 100,000 (default: bench.count).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub count: Option<u32>,
    /// easy, medium, hard or extreme (default: bench.difficulty).
    #[arg(long, value_name = "D", value_parser = parse_difficulty)]
    pub difficulty: Option<Difficulty>,
    /// Seed of the task generators (default: bench.seed).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Times each task runs, 1 to 100; every epoch's score is kept (default: bench.epochs).
    #[arg(long, value_name = "K", value_parser = parse_epochs)]
    pub epochs: Option<u32>,
    /// Print the run as a veyra.bench.run/1 JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the run's JSON document to FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Open the console with the Benchmarks pane zoomed and this run going (a dashboard for
    /// a shared screen).
    #[arg(long, conflicts_with_all = ["json", "out", "resume", "record"])]
    pub tui: bool,
    /// Finish a cancelled or interrupted run (its id, a unique prefix, or `last`).
    #[arg(long, value_name = "RUN", conflicts_with_all = ["family", "count", "difficulty", "seed", "epochs", "record", "replay"])]
    pub resume: Option<String>,
    /// Keep every model call of the run (request, stream, timing) in a new cassette directory.
    #[arg(long, value_name = "DIR", conflicts_with = "replay")]
    pub record: Option<PathBuf>,
    /// Run again from a cassette, offline: its plan unless flags override, backend `replay`.
    #[arg(long, value_name = "DIR")]
    pub replay: Option<PathBuf>,
    /// With --replay: send chunks at their recorded pace (÷ latency.time_scale), not at once.
    #[arg(long, requires = "replay")]
    pub paced: bool,
}

/// `veyra bench …` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Past runs, newest first, with their V-Score.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One run: its table, or its veyra.bench.run/1 document with --json.
    Show {
        /// The run: its id, a unique prefix, or `last`.
        run: String,
        /// Print the JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Paired comparison B − A of two runs of the same tasks, per family and overall, with
    /// 95 % intervals.
    Compare {
        /// The baseline run.
        a: String,
        /// The run compared with it.
        b: String,
        /// Print the comparison as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the veyra.bench.run/1 document.
    Schema,
}

/// `veyra bench schema`: needs no configuration.
pub fn bench_schema() -> Result<ExitCode, VeyraError> {
    print_all(export::SCHEMA)
}

/// `veyra bench …` (all but `schema`, which [`bench_schema`] answers).
pub async fn bench(args: BenchArgs, loaded: LoadedConfig) -> Result<ExitCode, VeyraError> {
    let path = bench_store::default_path(&loaded.config);
    match args.command {
        None => bench_run(args.run, loaded, &path).await,
        Some(BenchCommand::List { json }) => bench_list(&path, json),
        Some(BenchCommand::Show { run, json }) => bench_show(&path, &run, json),
        Some(BenchCommand::Compare { a, b, json }) => bench_compare(&path, &a, &b, json),
        Some(BenchCommand::Schema) => bench_schema(),
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
            &plan,
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
    let store = match &args.resume {
        Some(run) => existing_store(path)?.ok_or_else(|| no_runs(path, run))?,
        None => BenchStore::open(path)?,
    };
    let store = Arc::new(store);
    let cancel = CancellationToken::new();
    // A cassette failure (a request not recorded, a write that failed) stops the run.
    let tripwire = Tripwire::new(cancel.clone());
    let registry = cassette::registry(
        &loaded.config,
        &plan,
        args.record.as_deref(),
        replay.map(|c| (c, args.paced)),
        &tripwire,
    )?;
    let core = VeyraCore::with_registry(loaded.config, registry)?;
    // Nobody answers questions during a benchmark: anything that asks is denied.
    core.set_confirmation_policy(ConfirmationPolicy::DenyAll);
    let runner = Runner::new(core, store.clone());
    // Listen for Ctrl-C before anything runs, so no signal can slip past.
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| VeyraError::io("installing the Ctrl-C handler", e))?;
    let watcher = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if interrupts.recv().await.is_some() {
                eprintln!("veyra: cancelling the benchmark run (Ctrl-C again to abort at once)");
                cancel.cancel();
            }
            if interrupts.recv().await.is_some() {
                eprintln!("veyra: interrupted twice; not waiting");
                std::process::exit(ExitCode::Runtime.code());
            }
        })
    };
    let mut bars = Bars::new(std::io::stderr().is_terminal());
    let mut on_progress = |p: Progress| bars.update(&p);
    let report = match &args.resume {
        Some(run) => runner.resume(run, &cancel, &mut on_progress).await,
        None => runner.start(&plan, &cancel, &mut on_progress).await,
    };
    watcher.abort();
    bars.clear();
    if let Some(e) = tripwire.error() {
        if let Ok(report) = &report {
            eprintln!(
                "veyra: run {} stopped; it is kept as cancelled",
                report.info.id
            );
        }
        return Err(e);
    }
    let report = report?;
    let doc = export::from_store(&store, &report.info)?;
    if let Some(out) = &args.out {
        std::fs::write(out, json_pretty(&doc, "the run")?)
            .map_err(|e| VeyraError::io(format!("writing {}", out.display()), e))?;
    }
    if args.json {
        print_all(&json_pretty(&doc, "the run")?)?;
    } else {
        print_all(&run_table(&doc))?;
    }
    if report.info.status != RunStatus::Complete {
        let total = doc.tasks.len() * report.info.epochs as usize;
        let done: usize = doc.tasks.iter().map(|t| t.results.len()).sum();
        eprintln!(
            "veyra: run {} cancelled after {done} of {total} task epochs; finish it with `veyra \
             bench --resume {}`",
            report.info.id, report.info.id
        );
        return Ok(ExitCode::Runtime);
    }
    Ok(ExitCode::Success)
}

/// One progress bar per family on stderr, when it is a terminal.
struct Bars {
    multi: Option<indicatif::MultiProgress>,
    bars: BTreeMap<FamilyId, (indicatif::ProgressBar, f64)>,
}

impl Bars {
    fn new(enabled: bool) -> Self {
        Bars {
            multi: enabled.then(indicatif::MultiProgress::new),
            bars: BTreeMap::new(),
        }
    }

    fn update(&mut self, p: &Progress) {
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

    fn clear(&self) {
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }
}

fn estimate_cells(e: &Estimate) -> (String, String) {
    let pm = match e.se {
        Some(se) => format!("{:.3}", stats::Z95 * se),
        None => "n/a".to_string(),
    };
    let ci = match (e.ci_low, e.ci_high) {
        (Some(l), Some(h)) => format!("[{l:.3}, {h:.3}]"),
        _ => "n/a (fewer than 2)".to_string(),
    };
    (pm, ci)
}

/// The V-Score line: never without its interval, or why there is none.
pub fn v_score_line(summary: &RunSummary) -> String {
    let v = &summary.v_score.score;
    match (v.se, v.ci_low, v.ci_high) {
        (Some(se), Some(l), Some(h)) => format!(
            "V-Score {:.3} ± {:.3} (95% CI {l:.3} to {h:.3})\n",
            v.mean,
            stats::Z95 * se
        ),
        _ => format!(
            "V-Score {:.3} (95% CI unavailable: a family has fewer than 2 tasks or clusters; run \
             more tasks)\n",
            v.mean
        ),
    }
}

fn header(run: &RunInfo) -> String {
    let families: Vec<&str> = run.families.iter().map(|f| f.name()).collect();
    format!(
        "run {} · {} · {}\n{} × {} {} · seed {} · {} epoch{} · {}/{}\n",
        run.id,
        run.status.name(),
        run.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        families.join(","),
        run.count,
        run.difficulty,
        run.seed,
        run.epochs,
        if run.epochs == 1 { "" } else { "s" },
        run.backend,
        run.model,
    )
}

/// The result table of a run.
pub fn run_table(doc: &RunExport) -> String {
    let mut out = header(&doc.run);
    out.push_str(&format!(
        "{:<6} {:>6} {:>7} {:>7}  {:<17} {:>9} {:>10} {:>6}\n",
        "family", "n", "score", "±95%", "95% CI", "time", "tokens", "errors"
    ));
    for f in &doc.summary.families {
        let (pm, ci) = estimate_cells(&f.score);
        out.push_str(&format!(
            "{:<6} {:>6} {:>7.3} {:>7}  {:<17} {:>9} {:>10} {:>6}\n",
            f.family.name(),
            f.n,
            f.score.mean,
            pm,
            ci,
            format!("{:.1} s", f.latency_ms as f64 / 1000.0),
            f.tokens_in + f.tokens_out,
            f.errors
        ));
    }
    for f in &doc.summary.families {
        if let (Some(c), Some(k)) = (f.consistency, f.clusters) {
            out.push_str(&format!(
                "{} consistency {c:.3}: share of its {k} clusters answered right in every variant\n",
                f.family.name()
            ));
        }
    }
    out.push_str(&v_score_line(&doc.summary));
    out
}

fn bench_list(path: &Path, json: bool) -> Result<ExitCode, VeyraError> {
    let runs = match existing_store(path)? {
        Some(store) => store.runs()?,
        None => Vec::new(),
    };
    if json {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            #[serde(flatten)]
            run: &'a RunInfo,
            v_score: Option<&'a Estimate>,
        }
        let lines: Vec<Line<'_>> = runs
            .iter()
            .map(|(run, summary)| Line {
                run,
                v_score: summary.as_ref().map(|s| &s.v_score.score),
            })
            .collect();
        return print_all(&super::json_lines(&lines, "a run")?);
    }
    if runs.is_empty() {
        return print_all(&format!(
            "no benchmark runs yet in {}; start one with `veyra bench`\n",
            path.display()
        ));
    }
    // The run id starts with its UTC date and time; every family is `all`. Columns are as wide
    // as their widest value, so a list of ordinary runs fits 80 columns.
    let rows: Vec<[String; 7]> = runs
        .iter()
        .map(|(run, summary)| {
            let families = if run.families == FamilyId::ALL {
                "all".to_string()
            } else {
                run.families
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let v = match summary {
                Some(s) => {
                    let e = &s.v_score.score;
                    match (e.ci_low, e.ci_high) {
                        (Some(l), Some(h)) => format!("{:.3} [{l:.3}, {h:.3}]", e.mean),
                        _ => format!("{:.3} [no interval]", e.mean),
                    }
                }
                None => "-".to_string(),
            };
            [
                run.id.clone(),
                run.status.name().to_string(),
                families,
                run.count.to_string(),
                run.difficulty.name().to_string(),
                run.seed.to_string(),
                v,
            ]
        })
        .collect();
    let head = [
        "run",
        "status",
        "families",
        "n",
        "level",
        "seed",
        "V-Score (95% CI)",
    ];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain(std::iter::once(head[i].len()))
            .max()
            .unwrap_or(0)
    };
    let w: Vec<usize> = (0..7).map(width).collect();
    let line = |r: [&str; 7]| {
        format!(
            "{:<w0$} {:<w1$} {:<w2$} {:>w3$} {:<w4$} {:>w5$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4],
            w5 = w[5],
        )
    };
    let mut out = line(head);
    for r in &rows {
        out.push_str(&line([
            r[0].as_str(),
            r[1].as_str(),
            r[2].as_str(),
            r[3].as_str(),
            r[4].as_str(),
            r[5].as_str(),
            r[6].as_str(),
        ]));
    }
    print_all(&out)
}

fn bench_show(path: &Path, run: &str, json: bool) -> Result<ExitCode, VeyraError> {
    let store = existing_store(path)?.ok_or_else(|| no_runs(path, run))?;
    let info = store.resolve(run)?;
    let doc = export::from_store(&store, &info)?;
    if json {
        return print_all(&json_pretty(&doc, "the run")?);
    }
    let mut out = run_table(&doc);
    let failed: Vec<String> = doc
        .tasks
        .iter()
        .flat_map(|t| {
            t.results
                .iter()
                .filter(|r| r.score < 1.0)
                .map(move |r| format!("  {} (epoch {}): {}", t.task.id, r.epoch, r.reason))
        })
        .collect();
    if !failed.is_empty() {
        out.push_str(&format!("{} task epochs below 1:\n", failed.len()));
        for line in failed.iter().take(20) {
            out.push_str(line);
            out.push('\n');
        }
        if failed.len() > 20 {
            out.push_str(&format!(
                "  … and {} more (see `veyra bench show {} --json`)\n",
                failed.len() - 20,
                info.id
            ));
        }
    }
    print_all(&out)
}

fn bench_compare(path: &Path, a: &str, b: &str, json: bool) -> Result<ExitCode, VeyraError> {
    let store = existing_store(path)?.ok_or_else(|| no_runs(path, a))?;
    let run_a = store.resolve(a)?;
    let run_b = store.resolve(b)?;
    let comparison = stats::compare(
        &run_a.id,
        &store.task_scores(&run_a.id)?,
        &run_b.id,
        &store.task_scores(&run_b.id)?,
        &|f| run_a.weight(f),
    );
    if comparison.families.is_empty() {
        return Err(VeyraError::Usage(format!(
            "runs {} and {} share no finished tasks to pair; compare runs made with the same \
             families, difficulty and seed",
            run_a.id, run_b.id
        )));
    }
    if json {
        return print_all(&json_pretty(&comparison, "the comparison")?);
    }
    print_all(&comparison_table(&comparison, &run_a, &run_b))
}

fn significance(s: Option<bool>) -> &'static str {
    match s {
        Some(true) => "yes",
        Some(false) => "no",
        None => "n/a",
    }
}

/// The text of a comparison.
pub fn comparison_table(c: &Comparison, a: &RunInfo, b: &RunInfo) -> String {
    let mut out = format!(
        "B − A, paired by task: A = {} ({}/{}), B = {} ({}/{})\n",
        a.id, a.backend, a.model, b.id, b.backend, b.model
    );
    out.push_str(&format!(
        "{:<8} {:>6} {:>8}  {:<19} {}\n",
        "family", "pairs", "Δ mean", "95% CI", "excludes 0"
    ));
    for f in &c.families {
        let (_, ci) = estimate_cells(&f.diff);
        out.push_str(&format!(
            "{:<8} {:>6} {:>+8.3}  {:<19} {}\n",
            f.family.name(),
            f.pairs,
            f.diff.mean,
            ci,
            significance(f.significant)
        ));
    }
    let (_, ci) = estimate_cells(&c.overall);
    out.push_str(&format!(
        "{:<8} {:>6} {:>+8.3}  {:<19} {}\n",
        "overall",
        c.families.iter().map(|f| f.pairs).sum::<usize>(),
        c.overall.mean,
        ci,
        significance(c.significant)
    ));
    if c.unpaired > 0 {
        out.push_str(&format!(
            "{} finished tasks had no partner in the other run and were left out\n",
            c.unpaired
        ));
    }
    out
}
