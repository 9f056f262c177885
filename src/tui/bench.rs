//! The console's benchmark runs: the loop's side of the Benchmarks pane.
//!
//! A run is the same [`Runner`] `veyra bench` uses, on the console's own core, so its tasks
//! appear in the Tasks pane, pass the same gate, and are audited like any prompt. It runs in
//! its own tokio task and reports [`BenchUpdate`]s on a channel the loop folds into the
//! [`App`](super::app::App); the loop never waits on it. One run at a time; quitting cancels it
//! and waits a moment so the store records it as cancelled (`veyra bench --resume RUN`
//! finishes it).
//!
//! Off the mock and replay backends the console asks before a run: [`BenchSlot::plan`]
//! generates the tasks (off the loop), sums what they would cost and reports a
//! [`BenchPlan`]; the tasks are kept for the run the operator approves. A console whose audit
//! trail is kept in memory (the demo's) keeps its runs in memory too: they never join
//! `bench.db` or its history.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::app::{BenchPlan, BenchRequest, BenchUpdate, HistoryPoint, Suite};
use crate::benchmarks::store::{self as bench_store, BenchStore, RunStatus};
use crate::benchmarks::{BenchTask, FamilyId, RunPlan, Runner};
use crate::core::VeyraCore;

/// How long quitting waits for a cancelled run to record that it stopped.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// What [`BenchSlot::start`] settled on, for the pane.
pub(super) struct Started {
    /// `families · count × difficulty · seed S`.
    pub label: String,
    /// V-Score weight of each family.
    pub weights: BTreeMap<FamilyId, f64>,
    /// What the run measures.
    pub suite: Suite,
}

/// Tasks generated for a plan shown to the operator, kept for the run they approve.
struct Planned {
    request: BenchRequest,
    plan: RunPlan,
    tasks: Vec<BenchTask>,
}

/// The console's benchmark run, if any, and the channel runs report on.
pub(super) struct BenchSlot {
    /// The runtime's core; `None` in a console attached to another process's runtime, whose
    /// runs are that process's.
    core: Option<VeyraCore>,
    path: std::path::PathBuf,
    /// Why runs are not kept in `bench.db`, when they are not.
    unkept: Option<&'static str>,
    store: Option<Arc<BenchStore>>,
    planned: Arc<std::sync::Mutex<Option<Planned>>>,
    cancel: Option<CancellationToken>,
    task: Option<JoinHandle<()>>,
    tx: UnboundedSender<BenchUpdate>,
    /// What runs report, for the loop to fold.
    pub updates: UnboundedReceiver<BenchUpdate>,
}

impl BenchSlot {
    /// No run yet; the store is `bench.db` beside the audit store.
    pub fn new(core: &VeyraCore) -> Self {
        let (tx, updates) = unbounded_channel();
        BenchSlot {
            path: bench_store::default_path(core.config()),
            unkept: unkept(core.config()),
            core: Some(core.clone()),
            store: None,
            planned: Arc::default(),
            cancel: None,
            task: None,
            tx,
            updates,
        }
    }

    /// A slot for a console attached to another process's runtime: it shows the store's
    /// history, and starts no run (the runtime's host does).
    pub fn detached(config: &crate::config::VeyraConfig) -> Self {
        let (tx, updates) = unbounded_channel();
        BenchSlot {
            path: bench_store::default_path(config),
            unkept: unkept(config),
            core: None,
            store: None,
            planned: Arc::default(),
            cancel: None,
            task: None,
            tx,
            updates,
        }
    }

    /// Reads the V-Scores of past runs in the background. A console that never ran a
    /// benchmark does not create the store just by looking.
    pub fn load_history(&self) {
        if let Some(why) = self.unkept {
            let _ = self.tx.send(BenchUpdate::Unkept(why.to_string()));
            return;
        }
        if !self.path.exists() {
            return;
        }
        let path = self.path.clone();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let points = BenchStore::open(&path)
                .map_err(|e| e.to_string())
                .and_then(|store| history(&store));
            let _ = tx.send(BenchUpdate::History(points));
        });
    }

    /// The core runs start on, or why this console starts none.
    fn core(&self) -> Result<&VeyraCore, String> {
        self.core.as_ref().ok_or_else(|| {
            "this console is attached to another process's runtime: start benchmark runs on the \
             console that hosts it; their tasks show here"
                .to_string()
        })
    }

    /// The run `request` asks for, over the configuration's `bench:` defaults.
    fn run_plan(&self, request: &BenchRequest) -> Result<RunPlan, String> {
        let core = self.core()?;
        let mut plan = RunPlan::from_config(&core.config().bench).map_err(|e| e.to_string())?;
        if let Some(f) = &request.families {
            plan.families = f.clone();
        }
        plan.count = request.count.unwrap_or(plan.count);
        plan.difficulty = request.difficulty.unwrap_or(plan.difficulty);
        plan.seed = request.seed.unwrap_or(plan.seed);
        plan.epochs = request.epochs.unwrap_or(plan.epochs);
        if plan
            .families
            .iter()
            .all(|f| plan.weights.get(f).copied().unwrap_or(1.0) == 0.0)
        {
            return Err(
                "every family chosen weighs 0 in bench.weights, so the V-Score is undefined".into(),
            );
        }
        Ok(plan)
    }

    /// Works out what `request` would run, off the loop: the tasks are generated (and kept for
    /// the run, if approved) and their prompts measured. Reports [`BenchUpdate::Plan`].
    pub fn plan(&self, request: BenchRequest) {
        let plan = match self.run_plan(&request) {
            Ok(plan) => plan,
            Err(e) => {
                let _ = self.tx.send(BenchUpdate::Plan(Err(e)));
                return;
            }
        };
        let (backend, model) = match self.core() {
            Ok(core) => (core.backend_name(), core.model_name()),
            Err(e) => {
                let _ = self.tx.send(BenchUpdate::Plan(Err(e)));
                return;
            }
        };
        let tx = self.tx.clone();
        let planned = Arc::clone(&self.planned);
        tokio::task::spawn_blocking(move || {
            let shown = plan.generate().map_err(|e| e.to_string()).map(|tasks| {
                let shown = bench_plan(&request, &plan, &tasks, backend, model);
                if let Ok(mut slot) = planned.lock() {
                    *slot = Some(Planned {
                        request,
                        plan,
                        tasks,
                    });
                }
                shown
            });
            let _ = tx.send(BenchUpdate::Plan(shown));
        });
    }

    /// Starts a run of `request` over the configuration's `bench:` defaults (with the tasks
    /// generated for its plan, when the operator approved one). Returns what the pane shows
    /// of it, or why it cannot start.
    pub fn start(&mut self, request: &BenchRequest) -> Result<Started, String> {
        if self.task.as_ref().is_some_and(|t| !t.is_finished()) {
            return Err("a benchmark run is already going".into());
        }
        let planned = self
            .planned
            .lock()
            .ok()
            .and_then(|mut p| p.take())
            .filter(|p| &p.request == request);
        let (plan, tasks) = match planned {
            Some(p) => (p.plan, Some(p.tasks)),
            None => (self.run_plan(request)?, None),
        };
        let store = match &self.store {
            Some(s) => s.clone(),
            None => {
                let opened = match self.unkept {
                    Some(_) => BenchStore::in_memory(),
                    None => BenchStore::open(&self.path),
                };
                let s = Arc::new(opened.map_err(|e| e.to_string())?);
                self.store = Some(s.clone());
                s
            }
        };
        let label = format!(
            "{} · {} × {} · seed {}",
            plan.families
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(","),
            plan.count,
            plan.difficulty,
            plan.seed
        );
        let weights = plan
            .families
            .iter()
            .map(|f| (*f, plan.weights.get(f).copied().unwrap_or(1.0)))
            .collect();
        let suite = Suite {
            families: plan.families.clone(),
            count: plan.count,
            difficulty: plan.difficulty,
        };
        let kept = self.unkept.is_none();
        let cancel = CancellationToken::new();
        // Twice the slots in flight, not the headless run's hundreds: every submitted item is
        // a row in Tasks beside the operator's own prompts, and twice the slots still keeps
        // every slot busy while half the items wait on the audit log's commit.
        let core = self.core()?.clone();
        let slots = core.config().runtime.max_concurrent;
        let runner = Runner::new(core, store.clone()).with_in_flight(slots.saturating_mul(2));
        let tx = self.tx.clone();
        let token = cancel.clone();
        self.task = Some(tokio::spawn(async move {
            let progress_tx = tx.clone();
            let mut on_progress = move |p| {
                let _ = progress_tx.send(BenchUpdate::Progress(p));
            };
            let ended = match tasks {
                Some(tasks) => {
                    runner
                        .start_with_tasks(&plan, tasks, &token, &mut on_progress)
                        .await
                }
                None => runner.start(&plan, &token, &mut on_progress).await,
            }
            .map(|report| report.summary)
            .map_err(|e| e.to_string());
            let _ = tx.send(BenchUpdate::Ended(ended));
            if !kept {
                return;
            }
            // The sparkline takes the run just finished.
            let points = tokio::task::spawn_blocking(move || history(&store))
                .await
                .unwrap_or_else(|e| Err(format!("reading the history: {e}")));
            let _ = tx.send(BenchUpdate::History(points));
        }));
        self.cancel = Some(cancel);
        Ok(Started {
            label,
            weights,
            suite,
        })
    }

    /// Cancels the run, if one is going; what finished stays in the store.
    pub fn cancel(&self) {
        if let Some(c) = &self.cancel {
            c.cancel();
        }
    }

    /// Cancels a run still going and gives it a moment to record that it stopped.
    pub async fn close(&mut self) {
        self.cancel();
        if let Some(task) = self.task.take()
            && tokio::time::timeout(CLOSE_WAIT, task).await.is_err()
        {
            tracing::warn!(
                "the benchmark run did not stop in time; `veyra bench --resume` finishes it"
            );
        }
    }
}

/// Why a console on `config` keeps its runs out of `bench.db`, when it does: an audit trail
/// kept in memory (the demo's) goes with the console, and so do its runs — a tour's run must
/// not join the operator's history or its sparkline.
fn unkept(config: &crate::config::VeyraConfig) -> Option<&'static str> {
    match config.governance.store {
        crate::config::AuditStoreKind::Memory => {
            Some("the audit trail is in memory here, so runs are not kept")
        }
        crate::config::AuditStoreKind::Sqlite => None,
    }
}

/// Characters per token in the estimate of a plan's prompt tokens (a common rule of thumb for
/// English text; the plan says it is an estimate).
const CHARS_PER_TOKEN: u64 = 4;

/// What the operator is asked to approve for `plan` and its generated `tasks`.
fn bench_plan(
    request: &BenchRequest,
    plan: &RunPlan,
    tasks: &[BenchTask],
    backend: String,
    model: String,
) -> BenchPlan {
    let chars: u64 = tasks
        .iter()
        .map(|t| (t.prompt.chars().count() + t.system.chars().count()) as u64)
        .sum();
    BenchPlan {
        request: request.clone(),
        suite: Suite {
            families: plan.families.clone(),
            count: plan.count,
            difficulty: plan.difficulty,
        },
        epochs: plan.epochs,
        executions: tasks.len().saturating_mul(plan.epochs as usize),
        backend,
        model,
        prompt_tokens: chars
            .div_ceil(CHARS_PER_TOKEN)
            .saturating_mul(u64::from(plan.epochs)),
    }
}

/// The V-Scores of the store's complete runs, oldest first.
fn history(store: &BenchStore) -> Result<Vec<HistoryPoint>, String> {
    let runs = store.runs().map_err(|e| e.to_string())?;
    Ok(runs
        .into_iter()
        .rev()
        .filter(|(info, _)| info.status == RunStatus::Complete)
        .filter_map(|(info, summary)| {
            summary.map(|s| HistoryPoint {
                v_score: s.v_score.score.mean,
                suite: Suite {
                    families: info.families,
                    count: info.count,
                    difficulty: info.difficulty,
                },
                run_id: info.id,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests;
