//! Benchmarks: generated task families, a runner that sends every task through
//! [`crate::core::VeyraCore`] as actor `benchmark`, statistics with honest error bars, a
//! SQLite store of every run, and a versioned JSON export.
//!
//! How the parts fit:
//! - [`framework`]: the contract — the [`Family`] trait (generate + score), [`BenchTask`],
//!   [`Outcome`], [`Score`], the [`Dialogue`] a multi-agent task carries and [`ACTOR`];
//!   [`draw`] gives generators their deterministic randomness and number formatting;
//!   [`answer`] parses answers leniently but strictly for every scorer.
//! - One file per family: [`cplc`], [`msga`], [`wmrt`], [`icsd`], [`tome`], [`asr`],
//!   [`imdp`]. Each imports only the framework and the leaf helpers; [`family`], here, is the
//!   one place that maps a [`FamilyId`] to its family, for the runner and every other caller.
//! - [`dialogue`] plays an IMDP task's [`Dialogue`] out, one execution per agent turn, and
//!   reads the final message back for the scorer.
//! - [`record`]: what an execution left on the record (tool steps, the audit trail's
//!   `TOOL_INVOCATION` entries, scratch files) for the families that score acts;
//!   [`scratch`] prepares, reads back and removes each task's scratch directory.
//! - [`runner`]: plans a run, solves each task through the core (concurrency from
//!   `runtime.max_concurrent`, cancellable), scores it, writes it to the [`store`] as it
//!   finishes, reports [`runner::Progress`] to a callback, and records one `BENCHMARK` audit
//!   entry per run.
//! - [`request`]: what a caller asks of a run (`:bench`, `veyra bench --tui`), the rest
//!   coming from `bench:`.
//! - [`stats`]: family means and standard errors (clustered for WMRT), the V-Score with its
//!   95 % interval, and paired comparison of two runs.
//! - [`cassette`]: `--record DIR` keeps every model call of a run with its timing, and the
//!   `replay` backend answers a `--replay DIR` run from them, offline.
//! - [`store`] keeps runs in `<data dir>/bench.db`; [`export`] writes them as
//!   `veyra.bench.run/1` documents whose JSON Schema is [`export::SCHEMA`].
//!
//! This layer sits above the core and below the CLI and console; it draws nothing itself.

pub mod answer;
pub mod asr;
pub mod cassette;
pub mod cplc;
pub mod dialogue;
pub mod draw;
pub mod export;
pub mod framework;
pub mod icsd;
pub mod imdp;
pub mod msga;
pub mod record;
pub mod request;
pub mod runner;
pub mod scratch;
pub mod stats;
pub mod store;
pub mod suite;
pub mod tome;
pub mod wmrt;

pub use framework::{
    ACTOR, AnswerField, AnswerFormat, AuditedCall, BenchError, BenchTask, CallRecord, Dialogue,
    DialogueAgent, Difficulty, Family, FamilyId, FieldKind, Outcome, Score, ScratchFile, TaskTools,
    ToolStep,
};
pub use runner::{Progress, RunPlan, RunReport, Runner};
pub use stats::{Comparison, FamilySummary, RunSummary, VScore};
pub use store::{BenchStore, RunInfo, RunStatus};

/// The family `id` names: the one dispatch from a [`FamilyId`] to its generator and scorer.
pub fn family(id: FamilyId) -> &'static dyn Family {
    match id {
        FamilyId::Cplc => &cplc::Cplc,
        FamilyId::Msga => &msga::Msga,
        FamilyId::Wmrt => &wmrt::Wmrt,
        FamilyId::Icsd => &icsd::Icsd,
        FamilyId::Tome => &tome::Tome,
        FamilyId::Asr => &asr::Asr,
        FamilyId::Imdp => &imdp::Imdp,
    }
}

#[cfg(test)]
mod tests;
