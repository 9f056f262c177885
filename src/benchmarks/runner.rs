//! The solver and the run: every task goes through [`VeyraCore`] as actor `benchmark`, so the
//! scheduler, the link, Cedar policy, the safety boundary and the audit trail apply to it as to
//! any prompt.
//!
//! # Run flow
//! 1. [`Runner::start`] generates the plan's tasks, records the run and all its tasks in the
//!    [`BenchStore`] (status `running`), and builds the work list: every (task, epoch), the
//!    families interleaved so all of them progress together.
//! 2. Up to [`in_flight`] items are submitted at once (the scheduler runs `runtime.max_concurrent`
//!    of them at a time), each under an id the runner chose
//!    (to cancel it by): through [`VeyraCore::execute_with_steps`] when it offers tools (the
//!    final state and every `AgentStep`, but no token), else [`VeyraCore::execute_as`].
//!    The request offers the task's tools (`ToolSelection::None` when it offers none) and
//!    is *unattended*: anything in it that needs a confirmation is denied at once and
//!    recorded so (a run has no operator; it never waits). A task with `truth.files` has a
//!    scratch directory ([`super::scratch`]), made just before its first tool call runs. The
//!    item brings back its tool steps (the `AgentStep` events), the audit trail's
//!    `TOOL_INVOCATION` entries of the execution and the scratch files left
//!    ([`super::record`]); then the directory, if made, is removed.
//!    A task with a [`super::Dialogue`] (IMDP) is played out by [`super::dialogue::converse`]
//!    instead: one execution per agent turn, one after the other, unattended and cancelled the
//!    same way.
//! 3. As items finish, the freed slots get their next items first; then the finished ones
//!    are scored by their family and written to the store at once (those finished by the same
//!    wake-up in one transaction, run on the blocking pool like every store call: rusqlite
//!    waits on the disk, which no async worker may), and a [`Progress::TaskFinished`] goes to
//!    the caller's callback for each. A failed execution is kept with score 0 and its error.
//! 4. Cancelling the token stops submitting, cancels what runs (in the scheduler, so it is
//!    audited as cancelled), and leaves the run `cancelled`; nothing finished is lost and
//!    [`Runner::resume`] runs exactly the missing (task, epoch) items. A store failure stops
//!    the run the same way; the batch it failed on is not kept (resume runs it again).
//! 5. At the end the summary ([`stats`]) is stored with the run, one `BENCHMARK` audit entry
//!    records the run id, seed, config hash and summary, and [`Progress::Finished`] is sent.
//!
//! Progress goes to a plain callback so the CLI (indicatif bars) and the console (events on its
//! own channel) can both follow a run; this layer knows no terminal.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::draw::fixed;
use super::family;
use super::framework::{ACTOR, BenchError, BenchTask, Difficulty, FamilyId};
use super::stats::{self, Estimate, RunSummary};
use super::store::{BenchStore, RunInfo, RunStatus, TaskResult, task_scores};
use crate::config::{BenchConfig, VeyraConfig};
use crate::core::{VeyraCore, WithClient};
use crate::error::VeyraError;
use crate::events::Event;
use crate::governance::{AuditEventType, AuditRecord, summarize_input};
use futures_util::future::Either;

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// Families, in family order.
    pub families: Vec<FamilyId>,
    /// Tasks per family.
    pub count: u32,
    /// Difficulty.
    pub difficulty: Difficulty,
    /// Generator seed.
    pub seed: u64,
    /// Times each task runs.
    pub epochs: u32,
    /// V-Score weight per family.
    pub weights: BTreeMap<FamilyId, f64>,
}

impl RunPlan {
    /// The plan `bench:` describes.
    pub fn from_config(bench: &BenchConfig) -> Result<Self, BenchError> {
        let families = FamilyId::parse_list(&bench.family).map_err(BenchError::Usage)?;
        Ok(RunPlan {
            weights: FamilyId::ALL
                .iter()
                .map(|&f| (f, bench.weight(f)))
                .collect(),
            families,
            count: bench.count,
            difficulty: bench.difficulty,
            seed: bench.seed,
            epochs: bench.epochs,
        })
    }

    /// Every task of the plan, family by family.
    pub fn generate(&self) -> Result<Vec<BenchTask>, BenchError> {
        let mut tasks = Vec::new();
        for &f in &self.families {
            tasks.extend(family(f).generate(self.count as usize, self.difficulty, self.seed)?);
        }
        Ok(tasks)
    }

    /// The weights of the plan's families only.
    fn family_weights(&self) -> BTreeMap<FamilyId, f64> {
        self.families
            .iter()
            .map(|f| (*f, self.weights.get(f).copied().unwrap_or(1.0)))
            .collect()
    }
}

/// What a run reports as it goes (and what a serving runtime tells its clients of a run,
/// tagged by `step`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Progress {
    /// The run starts (or resumes): per family, the items (tasks × epochs) in all and those
    /// already finished.
    Started {
        /// The run's id.
        run_id: String,
        /// Per family: (items in all, items finished before this start).
        families: Vec<(FamilyId, usize, usize)>,
    },
    /// One epoch of one task finished and is stored.
    TaskFinished {
        /// Its family.
        family: FamilyId,
        /// The task.
        task_id: String,
        /// The task's cluster (its id, unless it is a variant of a shared case).
        cluster: String,
        /// The epoch.
        epoch: u32,
        /// Its score.
        score: f64,
        /// The scorer's reason, or the execution's error.
        reason: String,
        /// True when the execution failed.
        failed: bool,
        /// Items of this family finished so far.
        done: usize,
        /// Items of this family in all.
        total: usize,
    },
    /// The run ended.
    Finished {
        /// The run's id.
        run_id: String,
        /// How.
        status: RunStatus,
    },
}

/// Most finished items committed in one transaction: a bound on what a crash can lose when
/// items keep finishing as fast as they are looked for.
const MAX_BATCH: usize = 64;

/// The result of [`Runner::start`] or [`Runner::resume`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// The run (status as stored at the end).
    pub info: RunInfo,
    /// Its summary over everything finished.
    pub summary: RunSummary,
    /// Items finished by this call.
    pub finished_now: usize,
}

/// Runs benchmarks through one core into one store.
#[derive(Debug, Clone)]
pub struct Runner {
    core: VeyraCore,
    store: Arc<BenchStore>,
    /// Items submitted and not yet finished.
    in_flight: usize,
    /// The client of a serving runtime that started the run, recorded on every item.
    caller: Option<crate::core::Caller>,
    /// Where items are solved when not through `core` (the fleet).
    solver: Option<Arc<dyn ItemSolver>>,
    /// How often the solver is asked again for its room ([`remote::ROOM_EVERY`]).
    room_every: std::time::Duration,
}

impl Runner {
    /// A runner keeping [`in_flight`] items submitted for the core's `runtime:` limits.
    pub fn new(core: VeyraCore, store: Arc<BenchStore>) -> Self {
        let in_flight = in_flight(&core.config().runtime);
        Runner {
            core,
            store,
            in_flight,
            caller: None,
            solver: None,
            room_every: remote::ROOM_EVERY,
        }
    }

    /// Solves every item with `solver` (the fleet's workers) instead of this core; the run,
    /// its store, the scoring and the summary stay here.
    pub fn with_solver(mut self, solver: Arc<dyn ItemSolver>) -> Self {
        self.solver = Some(solver);
        self
    }

    /// Records `caller` (the client of a serving runtime that asked for the run) as who
    /// asked, in every item's audit entries.
    pub fn with_caller(mut self, caller: Option<crate::core::Caller>) -> Self {
        self.caller = caller;
        self
    }

    /// Overrides how many items are submitted at once (at least 1).
    pub fn with_in_flight(mut self, in_flight: usize) -> Self {
        self.in_flight = in_flight.max(1);
        self
    }

    /// Asks the solver for its room every `every` rather than [`remote::ROOM_EVERY`].
    #[cfg(test)]
    fn with_room_every(mut self, every: std::time::Duration) -> Self {
        self.room_every = every;
        self
    }

    /// The store runs are written to.
    pub fn store(&self) -> &BenchStore {
        &self.store
    }

    /// Generates, records and runs `plan` as a new run.
    pub async fn start(
        &self,
        plan: &RunPlan,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<RunReport, VeyraError> {
        // Generating 1,000s of tasks takes a while (and its own threads): not on an async one.
        let owned = plan.clone();
        let tasks = tokio::task::spawn_blocking(move || owned.generate())
            .await
            .map_err(|e| VeyraError::Runtime(format!("generating the benchmark tasks: {e}")))??;
        self.start_with_tasks(plan, tasks, cancel, progress).await
    }

    /// Records and runs `tasks` (what `plan.generate()` gave, or stored tasks of the same
    /// plan) as a new run.
    pub async fn start_with_tasks(
        &self,
        plan: &RunPlan,
        tasks: Vec<BenchTask>,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<RunReport, VeyraError> {
        let info = RunInfo {
            id: new_run_id(),
            created_at: Utc::now(),
            finished_at: None,
            status: RunStatus::Running,
            families: plan.families.clone(),
            count: plan.count,
            difficulty: plan.difficulty,
            seed: plan.seed,
            epochs: plan.epochs,
            weights: plan.family_weights(),
            config_hash: config_hash(self.core.config()),
            backend: self.core.backend_name(),
            model: self.core.model_name(),
            veyra_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let created = info.clone();
        let (stored, tasks) = self
            .with_store(move |store| (store.create_run(&created, &tasks), tasks))
            .await?;
        stored?;
        self.execute(info, tasks, false, cancel, progress).await
    }

    /// Finishes a stored run: runs every (task, epoch) it has no result for.
    pub async fn resume(
        &self,
        run: &str,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<RunReport, VeyraError> {
        let name = run.to_string();
        let info = self.with_store(move |store| store.resolve(&name)).await??;
        if info.status == RunStatus::Complete {
            return Err(VeyraError::Usage(format!(
                "benchmark run {} is already complete; nothing to resume (see `veyra bench show \
                 {}`)",
                info.id, info.id
            )));
        }
        let id = info.id.clone();
        let tasks = self.with_store(move |store| store.tasks(&id)).await??;
        // A chunk size it cannot go out with stops it before it is reopened.
        self.chunk_of(&info, tasks.len()).await?;
        let id = info.id.clone();
        self.with_store(move |store| store.reopen_run(&id))
            .await??;
        self.execute(info, tasks, true, cancel, progress).await
    }

    /// Items to a chunk of run `info` (of `tasks` tasks) solved elsewhere, `None` at home: the
    /// figure kept with the run, else the solver's, kept now. A chunk cut otherwise than the
    /// run first went out with has another id, and its items, solved in the first cut, would
    /// be solved again.
    async fn chunk_of(&self, info: &RunInfo, tasks: usize) -> Result<Option<usize>, VeyraError> {
        let Some(solver) = &self.solver else {
            return Ok(None);
        };
        let proposed = solver.chunk(tasks.saturating_mul(info.epochs as usize));
        let id = info.id.clone();
        let kept = self
            .with_store(move |store| store.run_chunk(&id, proposed, remote::MAX_CHUNK))
            .await??;
        Ok(Some(kept))
    }

    async fn execute(
        &self,
        mut info: RunInfo,
        tasks: Vec<BenchTask>,
        resumed: bool,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<RunReport, VeyraError> {
        // The configured key (when one is set), kept out of every stored output.
        let key = self.core.config().model.api_key().ok().flatten();
        // What earlier calls finished (a resumed run); the statistics at the end take these
        // and what this call records, kept here rather than read back from the store.
        let mut results = if resumed {
            let id = info.id.clone();
            self.with_store(move |store| store.results(&id)).await??
        } else {
            Vec::new()
        };
        let done: BTreeSet<(&str, u32)> = results
            .iter()
            .map(|r| (r.task_id.as_str(), r.epoch))
            .collect();
        // Solved elsewhere, the items go in the run's chunks, and as many are kept in flight
        // as the solver has room for (its workers' room, asked again while the run goes).
        let chunk = self.chunk_of(&info, tasks.len()).await?;
        let room = match (&self.solver, chunk) {
            (Some(solver), Some(_)) => Some(
                remote::Room::follow(Arc::clone(solver), self.in_flight, self.room_every).await,
            ),
            _ => None,
        };
        // In chunks; a room that grows is taken up as the next chunk ends.
        let limit = || match (&room, chunk) {
            (Some(room), Some(chunk)) => room.items().div_ceil(chunk),
            _ => self.in_flight,
        };
        let work = remote::work(&tasks, info.epochs, &done, chunk);
        let mut totals: BTreeMap<FamilyId, (usize, usize)> = BTreeMap::new();
        for t in &tasks {
            for e in 0..info.epochs {
                let slot = totals.entry(t.family).or_default();
                slot.0 += 1;
                if done.contains(&(t.id.as_str(), e)) {
                    slot.1 += 1;
                }
            }
        }
        drop(done);
        progress(Progress::Started {
            run_id: info.id.clone(),
            families: totals.iter().map(|(f, (t, d))| (*f, *t, *d)).collect(),
        });
        // Every item goes to the backend and model current as the run starts, whatever the
        // operator switches to while it goes (a run approved on one backend never spends on
        // another).
        let target = Target {
            backend: self.core.backend_name(),
            model: self.core.model_name(),
            caller: self.caller.clone(),
            before_tools: None,
        };
        // The caller's token stops the run; so does a store failure, through this child.
        let stop = cancel.child_token();
        let mut queue = work.into_iter();
        // The run's id names each item a solver elsewhere is asked for.
        let run_id = info.id.clone();
        let mut running = FuturesUnordered::new();
        let mut finished_now = 0usize;
        let mut failure = None;
        let mut batch: Vec<(&BenchTask, TaskResult)> = Vec::new();
        let mut finished: Vec<Solved> = Vec::new();
        // Fills the free slots with the next items; each starts when first polled.
        let mut refill = |running: &mut FuturesUnordered<_>| {
            while running.len() < limit() && !stop.is_cancelled() {
                let Some(chunk) = queue.next() else {
                    break;
                };
                running.push(match (&self.solver, chunk.as_slice()) {
                    (None, &[(index, epoch, _)]) => {
                        let Some(task) = tasks.get(index) else {
                            continue;
                        };
                        Either::Left(
                            solve(&self.core, task, index, epoch, &target, &stop)
                                .map(|solved| vec![solved]),
                        )
                    }
                    (None, _) => continue,
                    (Some(solver), _) => Either::Right(remote::solve_elsewhere(
                        solver.as_ref(),
                        &run_id,
                        &tasks,
                        chunk,
                        &target,
                        &stop,
                    )),
                });
            }
        };
        loop {
            refill(&mut running);
            let Some(first) = running.next().await else {
                break;
            };
            // The freed slots get their next items (started by the poll that looks for more
            // finished ones) before this thread scores and stores: the executions go on
            // while it does. Everything finished by now is committed in one transaction:
            // still as it finishes, at one commit per wake-up rather than one per item.
            finished.extend(first);
            while finished.len() < MAX_BATCH {
                refill(&mut running);
                match running.next().now_or_never() {
                    Some(Some(solved)) => finished.extend(solved),
                    _ => break,
                }
            }
            // At the cap, the last item's slot is still free, and what the last refill pushed
            // has not been polled: fill and start them too.
            if finished.len() >= MAX_BATCH {
                refill(&mut running);
                if let Some(Some(solved)) = running.next().now_or_never() {
                    finished.extend(solved);
                }
            }
            for solved in finished.drain(..) {
                // Items cancelled by the token are not results: resume runs them again.
                let cancelled =
                    matches!(solved.result, Err(VeyraError::Cancelled(_))) && stop.is_cancelled();
                if let (false, Some(task)) = (cancelled, tasks.get(solved.index)) {
                    let mut result = score(task, solved);
                    // What is stored (and shown by `bench show`) never holds the key, whatever
                    // the backend let through: the whole output is scrubbed, so a key split
                    // between streamed pieces is caught too.
                    if let std::borrow::Cow::Owned(clean) =
                        crate::config::redact_key(&result.output, key.as_ref())
                    {
                        result.output = clean;
                    }
                    batch.push((task, result));
                }
            }
            if batch.is_empty() {
                continue;
            }
            // The rows go to the blocking pool to be committed, and come back to be reported.
            let (batch_tasks, rows): (Vec<&BenchTask>, Vec<TaskResult>) = batch.drain(..).unzip();
            let id = info.id.clone();
            let (stored, rows) = self
                .with_store(move |store| (store.record_results(&id, &rows), rows))
                .await?;
            if let Err(e) = stored {
                // Without the store nothing more can be kept: stop, keep what is stored.
                failure = Some(e);
                stop.cancel();
                continue;
            }
            for (task, result) in batch_tasks.into_iter().zip(rows) {
                finished_now += 1;
                let slot = totals.entry(task.family).or_default();
                slot.1 += 1;
                progress(Progress::TaskFinished {
                    family: task.family,
                    task_id: task.id.clone(),
                    cluster: task.cluster.clone(),
                    epoch: result.epoch,
                    score: result.score,
                    reason: result
                        .error
                        .clone()
                        .unwrap_or_else(|| result.reason.clone()),
                    failed: result.error.is_some(),
                    done: slot.1,
                    total: slot.0,
                });
                results.push(result);
            }
        }
        let complete = results.len() == tasks.len() * info.epochs as usize;
        let status = if complete {
            RunStatus::Complete
        } else {
            RunStatus::Cancelled
        };
        let summary = stats::summarize(&task_scores(&tasks, &results), &info.families, &|f| {
            info.weight(f)
        });
        let now = Utc::now();
        let (id, kept) = (info.id.clone(), summary.clone());
        self.with_store(move |store| store.finish_run(&id, status, &kept, now))
            .await??;
        info.status = status;
        info.finished_at = Some(now);
        self.audit(&info, &summary, resumed, finished_now).await?;
        progress(Progress::Finished {
            run_id: info.id.clone(),
            status,
        });
        if let Some(e) = failure {
            return Err(e.into());
        }
        Ok(RunReport {
            info,
            summary,
            finished_now,
        })
    }

    /// Runs `work` on the store on the blocking pool: rusqlite waits on the disk (a commit
    /// syncs), which must not hold an async worker. What `work` needs it owns, and hands back
    /// what the caller still needs.
    async fn with_store<T: Send + 'static>(
        &self,
        work: impl FnOnce(&BenchStore) -> T + Send + 'static,
    ) -> Result<T, VeyraError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| VeyraError::Runtime(format!("the benchmark store's thread failed: {e}")))
    }

    /// The run's one `BENCHMARK` audit entry (when audit is on), published on the bus.
    async fn audit(
        &self,
        info: &RunInfo,
        summary: &RunSummary,
        resumed: bool,
        finished_now: usize,
    ) -> Result<(), VeyraError> {
        let Some(trail) = self.core.audit() else {
            return Ok(());
        };
        // Numbers go in as fixed-decimal text: exact, and the same on every machine.
        let estimate = |e: &Estimate| {
            json!({
                "mean": fixed(e.mean, 4),
                "ci_low": e.ci_low.map(|v| fixed(v, 4)),
                "ci_high": e.ci_high.map(|v| fixed(v, 4)),
            })
        };
        let families: serde_json::Map<String, serde_json::Value> = summary
            .families
            .iter()
            .map(|f| {
                let mut v = estimate(&f.score);
                if let Some(o) = v.as_object_mut() {
                    o.insert("n".into(), json!(f.n));
                    o.insert("errors".into(), json!(f.errors));
                }
                (f.family.name().to_string(), v)
            })
            .collect();
        let entry = trail.record(
            AuditRecord {
            event_type: AuditEventType::Benchmark,
            actor: ACTOR.into(),
            action: if resumed { "resume_run" } else { "run" }.into(),
            resource: format!("bench:{}", info.id),
            outcome: match info.status {
                RunStatus::Complete => "success",
                RunStatus::Cancelled => "cancelled",
                RunStatus::Running => "running",
            }
            .into(),
            input_summary: summarize_input(&format!(
                "{}:{}:{}:{}:{}",
                info.families
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(","),
                info.count,
                info.difficulty,
                info.seed,
                info.epochs
            )),
            metadata: json!({
                "run_id": info.id,
                "seed": info.seed.to_string(),
                "config_hash": info.config_hash,
                "families": info.families.iter().map(|f| f.name()).collect::<Vec<_>>(),
                "count": info.count,
                "difficulty": info.difficulty.name(),
                "epochs": info.epochs,
                "backend": info.backend,
                "model": info.model,
                "finished_now": finished_now,
                "summary": { "v_score": estimate(&summary.v_score.score), "families": families },
            }),
        }
        .with_client(self.caller.as_ref()))
        .await?;
        self.core.bus().publish(Event::AuditRecorded {
            seq: entry.seq,
            event_type: entry.event_type.name().into(),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            outcome: entry.outcome.clone(),
            hash: entry.hash.clone(),
            execution: None,
        });
        Ok(())
    }
}

/// How many items a run keeps submitted: many more than the slots, so that while some wait
/// on the link or on the audit trail's commit (holding no slot) others fill the slots, and
/// each commit makes many waiting entries durable at once. At least 256 (where the 7 × 1,000
/// run stops getting faster on two cores: 64 in flight take 2.3 s, 256 take 1.7 s), 64 per
/// slot beyond that, and never more than half the queue, so an operator's prompt always
/// finds room (and, at a higher priority than the run's `low`, goes first).
pub fn in_flight(runtime: &crate::config::RuntimeConfig) -> usize {
    let wanted = runtime.max_concurrent.saturating_mul(64).max(256);
    wanted.min(runtime.queue_capacity / 2).max(1)
}

/// A new run id: `YYYYMMDD-HHMMSS-` and 8 random hex digits.
pub fn new_run_id() -> String {
    let now = Utc::now();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{}-{}",
        now.format("%Y%m%d-%H%M%S"),
        random.get(..8).unwrap_or("00000000")
    )
}

/// The first 16 hex digits of SHA-256 over the RFC 8785 JSON of the configuration (which holds
/// no secrets: keys are named by environment variable, never stored).
pub fn config_hash(config: &VeyraConfig) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_value(config)
        .ok()
        .and_then(|v| serde_json_canonicalizer::to_string(&v).ok())
        .unwrap_or_default();
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(digest)
        .get(..16)
        .unwrap_or_default()
        .to_string()
}

mod remote;
mod solve;

pub use remote::{
    ItemRef, ItemSolver, MAX_CHUNK, MIN_CHUNKS, ROOM_EVERY, SolvedItem, chunk_for, for_solver,
    solve_item,
};
use solve::{Answer, Record, Solved, score, solve};
pub use solve::{Target, request_for};

#[cfg(test)]
mod tests;
