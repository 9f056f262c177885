//! The command line of `veyra bench`: a run's options (a suite's among them), the
//! subcommands, and the checks on families, difficulty, count and epochs.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::benchmarks::suite::FieldMap;
use crate::benchmarks::{Difficulty, FamilyId};
use crate::config::bench::{RANGE_BENCH_COUNT, RANGE_BENCH_EPOCHS};

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
    /// Finish a cancelled or interrupted run (its id, a unique prefix, or `last`); a suite's
    /// run with `--suite` and the same file.
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
    /// Run your own eval suite instead of the families: a YAML suite or a JSONL dataset (see
    /// `veyra bench schema --suite`). With --count N, only its first N samples.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["family", "difficulty", "seed", "epochs", "tui"]
    )]
    pub suite: Option<PathBuf>,
    /// With --suite and a JSONL dataset: its field names, e.g. input=question,target=answer.
    #[arg(long, value_name = "SPEC", requires = "suite", value_parser = FieldMap::parse)]
    pub map: Option<FieldMap>,
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
    /// Print the JSON Schema of the veyra.bench.run/1 document (or, with --suite, of a YAML
    /// eval suite).
    Schema {
        /// Print the schema of a YAML suite file (`veyra bench --suite FILE`) instead.
        #[arg(long)]
        suite: bool,
    },
}
