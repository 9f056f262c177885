//! Items solved elsewhere: a run's items can go to workers on other hosts (the fleet,
//! `runtime.executor: nats`) rather than through this process's core. A worker solves an item
//! exactly as [`super::solve`] does here — its scratch directory, its tools through the worker's
//! own gate, a dialogue turn by turn — and sends back what it left ([`SolvedItem`]); the item is
//! scored here, against a ground truth that never leaves this process ([`for_solver`]).
//!
//! Items go out in chunks ([`work`]): what carrying one item costs elsewhere (a fleet task's
//! writes, messages and acknowledgement) is paid once for the chunk. How many items a chunk
//! holds follows the run's size ([`chunk_for`]), and a chunk is cut from the run's whole work
//! list, not from what is left of it, so a run resumed asks for the same chunks as the run it
//! resumes (a solver elsewhere finds what it kept of them).

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::solve::Target;
use super::{Record, Solved};
use crate::benchmarks::framework::{AuditedCall, BenchTask, FamilyId, ScratchFile, ToolStep};
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
    /// How long it took where it ran, in milliseconds.
    #[serde(default)]
    pub elapsed_ms: u64,
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
    /// The run still needs its outcome: false for an item of a chunk a resumed run has kept
    /// already (asked for with its chunk, so the chunk is the same; never solved again for it).
    pub wanted: bool,
}

/// Solves a run's items somewhere other than the runner's core.
pub trait ItemSolver: Send + Sync + std::fmt::Debug {
    /// Solves a chunk of `items` (the same chunk whenever the run asks again: see
    /// [`ItemSolver::chunk`]) on `target`, and returns one outcome per item, in order;
    /// `cancel` stops them (the solver cancels them where they run).
    fn solve<'a>(
        &'a self,
        items: &'a [ItemRef<'a>],
        target: &'a Target,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Vec<Result<SolvedItem, VeyraError>>>;

    /// Items to a chunk in a run of `total` items, 1 to [`MAX_CHUNK`]: [`chunk_for`] unless
    /// the solver says otherwise. It must depend on nothing but `total`, so that a resumed
    /// run (the same total) cuts the same chunks.
    fn chunk(&self, total: usize) -> usize {
        chunk_for(total)
    }

    /// Items it can be solving at once (its workers' room, say), which the run keeps in
    /// flight: asked as the run starts and every [`ROOM_EVERY`] while it goes. `None`: it
    /// does not know (the run keeps its own figure, [`super::in_flight`], or the last answer).
    fn room(&self) -> BoxFuture<'_, Option<usize>> {
        Box::pin(std::future::ready(None))
    }
}

/// Items a chunk holds at most. At 32, carrying an item to a worker costs a 32nd of a task,
/// and the items of a chunk share about 1 MiB of kept result, 31 KiB each on average (shared
/// in order: an item that leaves more than its chunk has left is asked for again with fewer
/// beside it if its tools did not act, and fails saying so if they did). Larger chunks cut
/// the fan-out's cost no further (README, Performance) and would shrink that share.
pub const MAX_CHUNK: usize = 32;

/// Chunks a run is cut into at least, when it has that many items: enough for a fleet to
/// spread them over many workers, so a small run on slow models still reaches every one.
pub const MIN_CHUNKS: usize = 128;

/// Items to a chunk in a run of `total` items: as many as keep the run at [`MIN_CHUNKS`]
/// chunks or more, between 1 and [`MAX_CHUNK`] (a run under 256 items goes an item to a
/// chunk; at 4,096 items and beyond, 32: the 7,000 of `--family all --count 1000` go in 219
/// chunks).
pub fn chunk_for(total: usize) -> usize {
    (total / MIN_CHUNKS).clamp(1, MAX_CHUNK)
}

/// How often a run solved elsewhere asks its solver again how many items it has room for.
pub const ROOM_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The items a solver has room for while a run goes: asked as the run starts, then every
/// `every` (a worker that joins mid-run raises it, one that leaves lowers it), the newest
/// answer kept (`fallback` until one comes; an asking that gets none keeps the last).
/// Dropping it stops the asking.
pub(super) struct Room {
    items: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    asking: tokio::task::JoinHandle<()>,
}

impl Room {
    pub(super) async fn follow(
        solver: std::sync::Arc<dyn ItemSolver>,
        fallback: usize,
        every: std::time::Duration,
    ) -> Room {
        use std::sync::atomic::Ordering::Relaxed;
        let first = solver.room().await.unwrap_or(fallback).max(1);
        let items = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(first));
        let kept = std::sync::Arc::clone(&items);
        let asking = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Some(n) = solver.room().await {
                    kept.store(n.max(1), Relaxed);
                }
            }
        });
        Room { items, asking }
    }

    /// The newest answer, in items.
    pub(super) fn items(&self) -> usize {
        self.items.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.asking.abort();
    }
}

/// One chunk of a run's work: each item's (task index, epoch), and whether the run still
/// wants it (a resumed run has some of a chunk's items already).
pub(in crate::benchmarks) type Chunk = Vec<(usize, u32, bool)>;

/// The run's work: each item without a result (`done`) alone, or, solved elsewhere (`chunk`
/// is the items to a chunk), in chunks cut from the whole work list and kept where some item
/// is not done.
pub(in crate::benchmarks) fn work(
    tasks: &[BenchTask],
    epochs: u32,
    done: &BTreeSet<(&str, u32)>,
    chunk: Option<usize>,
) -> Vec<Chunk> {
    let Some(chunk) = chunk else {
        return work_list(tasks, epochs, done)
            .into_iter()
            .map(|(i, e)| vec![(i, e, true)])
            .collect();
    };
    let is_done = |i: usize, e: u32| {
        tasks
            .get(i)
            .is_some_and(|t| done.contains(&(t.id.as_str(), e)))
    };
    work_list(tasks, epochs, &BTreeSet::new())
        .chunks(chunk.clamp(1, MAX_CHUNK))
        .map(|c| {
            c.iter()
                .map(|&(i, e)| (i, e, !is_done(i, e)))
                .collect::<Chunk>()
        })
        .filter(|c| c.iter().any(|&(_, _, wanted)| wanted))
        .collect()
}

/// Every (task index, epoch) without a result: epoch by epoch, and within an epoch the
/// families interleaved (task 0 of each family, then task 1, …).
pub(super) fn work_list(
    tasks: &[BenchTask],
    epochs: u32,
    done: &BTreeSet<(&str, u32)>,
) -> Vec<(usize, u32)> {
    let mut by_family: BTreeMap<FamilyId, Vec<usize>> = BTreeMap::new();
    for (i, t) in tasks.iter().enumerate() {
        by_family.entry(t.family).or_default().push(i);
    }
    let longest = by_family.values().map(Vec::len).max().unwrap_or(0);
    let mut work = Vec::new();
    for epoch in 0..epochs {
        for k in 0..longest {
            for list in by_family.values() {
                if let Some(&i) = list.get(k)
                    && let Some(t) = tasks.get(i)
                    && !done.contains(&(t.id.as_str(), epoch))
                {
                    work.push((i, epoch));
                }
            }
        }
    }
    work
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
    let elapsed_ms = solved.latency_ms;
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
        elapsed_ms,
    })
}

/// The runner's side: `chunk` of `tasks` solved by `solver`, as a [`Solved`] to score for
/// each item the run wants.
pub(super) async fn solve_elsewhere(
    solver: &dyn ItemSolver,
    run_id: &str,
    tasks: &[BenchTask],
    chunk: Chunk,
    target: &Target,
    cancel: &CancellationToken,
) -> Vec<Solved> {
    let started = std::time::Instant::now();
    let items: Vec<ItemRef<'_>> = chunk
        .iter()
        .filter_map(|&(index, epoch, wanted)| {
            tasks.get(index).map(|task| ItemRef {
                run_id,
                task,
                epoch,
                wanted,
            })
        })
        .collect();
    let mut outcomes = solver.solve(&items, target, cancel).await.into_iter();
    let waited = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut solved = Vec::new();
    for &(index, epoch, wanted) in &chunk {
        if tasks.get(index).is_none() {
            continue;
        }
        let outcome = outcomes.next().unwrap_or_else(|| {
            Err(VeyraError::Runtime(
                "the solver sent back fewer outcomes than the chunk had items".into(),
            ))
        });
        if !wanted {
            continue;
        }
        let (result, record, latency_ms) = match outcome {
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
                s.elapsed_ms,
            ),
            Err(e) => (Err(e), Record::default(), waited),
        };
        solved.push(Solved {
            index,
            epoch,
            latency_ms,
            result,
            record,
        });
    }
    if outcomes.next().is_some() {
        tracing::warn!(
            "the solver sent back more outcomes than the chunk had items; the rest are ignored"
        );
    }
    solved
}
