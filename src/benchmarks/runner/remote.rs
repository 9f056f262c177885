//! Items solved elsewhere: a run's items can go to workers on other hosts (the fleet,
//! `runtime.executor: nats`) rather than through this process's core. A worker solves an item
//! exactly as [`super::solve`] does here — its scratch directory, its tools through the worker's
//! own gate, a dialogue turn by turn — and sends back what it left ([`SolvedItem`]); the item is
//! scored here, against a ground truth that never leaves this process ([`for_solver`]).

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::solve::Target;
use super::{Record, Solved};
use crate::benchmarks::framework::{AuditedCall, BenchTask, ScratchFile, ToolStep};
use crate::core::VeyraCore;
use crate::error::VeyraError;

/// What a solved item brings back, wherever it ran: its answer and what it left on the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolvedItem {
    /// The whole answer.
    pub text: String,
    /// Tool calls the model made.
    pub tool_steps: u32,
    /// Tokens in, over every model call.
    pub tokens_in: u64,
    /// Tokens out, over every model call.
    pub tokens_out: u64,
    /// Its tool steps.
    pub steps: Vec<ToolStep>,
    /// Its `TOOL_INVOCATION` entries, in the solver's trail (`None`: that trail is off).
    pub audit: Option<Vec<AuditedCall>>,
    /// The files its scratch directory held at the end (`None`: it had none).
    pub files: Option<Vec<ScratchFile>>,
    /// Its scratch directory, relative to the solver's workspace.
    pub workdir: String,
}

/// One item of a run, as a solver elsewhere is asked for it.
#[derive(Debug, Clone, Copy)]
pub struct ItemRef<'a> {
    /// The run (with the task and epoch, it names the item for good: a run resumed asks for
    /// the same item again, and a solver can find what it kept of it).
    pub run_id: &'a str,
    /// The task, whole (a solver sends on only [`for_solver`]'s part of it).
    pub task: &'a BenchTask,
    /// The epoch.
    pub epoch: u32,
}

/// Solves a run's items somewhere other than the runner's core.
pub trait ItemSolver: Send + Sync + std::fmt::Debug {
    /// Solves `item` on `target`; `cancel` stops it (the solver cancels it where it runs).
    fn solve<'a>(
        &'a self,
        item: ItemRef<'a>,
        target: &'a Target,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<SolvedItem, VeyraError>>;
}

/// The task as a solver elsewhere needs it: its expected answer and its ground truth stay with
/// the scorer; only the files its scratch directory starts with (`truth.files`) go.
pub fn for_solver(task: &BenchTask) -> BenchTask {
    let mut sent = task.clone();
    sent.expected = String::new();
    sent.truth = match task.truth.get("files") {
        Some(files) => serde_json::json!({ "files": files }),
        None => serde_json::Value::Null,
    };
    sent
}

/// Solves `task`'s `epoch` through `core` as a run here would (a worker's side of
/// [`ItemSolver`]): `target.before_tools` runs before its first tool call.
pub async fn solve_item(
    core: &VeyraCore,
    task: &BenchTask,
    epoch: u32,
    target: &Target,
    cancel: &CancellationToken,
) -> Result<SolvedItem, VeyraError> {
    let solved = super::solve::solve(core, task, 0, epoch, target, cancel).await;
    let r = solved.result?;
    Ok(SolvedItem {
        text: r.text,
        tool_steps: r.tool_steps,
        tokens_in: r.tokens_in,
        tokens_out: r.tokens_out,
        steps: solved.record.steps,
        audit: solved.record.audit,
        files: solved.record.files,
        workdir: solved.record.workdir,
    })
}

/// The runner's side: item `index` solved by `solver`, as a [`Solved`] to score.
pub(super) async fn solve_elsewhere(
    solver: &dyn ItemSolver,
    item: ItemRef<'_>,
    index: usize,
    target: &Target,
    cancel: &CancellationToken,
) -> Solved {
    let started = std::time::Instant::now();
    let solved = solver.solve(item, target, cancel).await;
    let (result, record) = match solved {
        Ok(s) => (
            Ok(super::Answer {
                text: s.text,
                tool_steps: s.tool_steps,
                tokens_in: s.tokens_in,
                tokens_out: s.tokens_out,
            }),
            Record {
                steps: s.steps,
                audit: s.audit,
                files: s.files,
                workdir: s.workdir,
            },
        ),
        Err(e) => (Err(e), Record::default()),
    };
    Solved {
        index,
        epoch: item.epoch,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        result,
        record,
    }
}
