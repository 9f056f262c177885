//! Eval suites from files: a user's own samples (`veyra bench --suite FILE`), run through the
//! same core, gate and audit as the built-in families, scored by the same lenient-in-form,
//! strict-in-content answer parsing ([`super::answer`]), and summarised with a 95 % interval.
//!
//! How the parts fit:
//! - [`format`](mod@format): the file formats — a YAML suite ([`SuiteSpec`], whose JSON Schema
//!   `veyra bench schema --suite` prints) or a JSONL dataset (one sample per line, fields
//!   renamed by a [`FieldMap`]) — read with the bounded reader and checked whole before
//!   anything runs: every refusal names the file, the sample and the field.
//! - [`scorer`]: the scorers a sample names (`exact`, `choice`, `number`, `regex`,
//!   `includes`, `json_schema`), compiled once at load, each reading only the reply's
//!   `ANSWER:` line; and the answer-format sentence every prompt ends with.
//! - [`custom`]: a benchmark of an embedder's own in Rust ([`CustomBenchmark`]: it generates
//!   its tasks and scores each reply), run as a suite is.
//! - [`kept`]: a run as the benchmark store keeps it — recorded new, or a stored run
//!   reopened from the same file — and read back as its report.
//! - [`run`]: one execution per sample through [`crate::core::VeyraCore`] as actor
//!   `benchmark`, a bounded number in flight, cancellable; the mean score with its interval,
//!   by the rule [`super::stats`] applies to a family.

pub mod custom;
pub mod format;
pub mod kept;
pub mod run;
pub mod scorer;

pub use custom::{CustomBenchmark, CustomTask};
pub use format::{FieldMap, Sample, SampleSpec, Suite, SuiteSpec, TargetSpec};
pub use run::{
    SampleResult, SuiteReport, SuiteRun, SuiteSummary, resume_suite, run_suite, summarize,
};
pub use scorer::{Scorer, ScorerSpec, Verdict};

#[cfg(test)]
mod tests;
