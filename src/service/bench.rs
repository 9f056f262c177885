//! The runtime's benchmark runs: one at a time, owned by the process that hosts the runtime,
//! whoever asked for it — the hosting console's `b`, `veyra bench` in another shell, or a
//! console attached over SSH. A run is the same [`Runner`] `veyra bench` always used, on the
//! runtime's own core, so its items pass the same gate and land in the same audit trail (each
//! naming the client that asked, when one did).
//!
//! What a run does is told as [`BenchNews`]: [`BenchNews::Began`] (what it runs and who asked),
//! the runner's [`Progress`], then [`BenchNews::Ended`]. Every sink added with
//! [`BenchHost::tap`] (the serving runtime's journal, which fans the news out to attached
//! consoles and keeps the run for those that attach later) and every [`BenchHost::subscribe`]r
//! (the hosting console, a `veyra bench` that follows its run) gets each piece once, in order.
//!
//! A runtime whose audit trail is kept in memory (the demo's) keeps its runs in memory too:
//! they never join `bench.db` or its history.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::benchmarks::cassette::Tripwire;
use crate::benchmarks::request::BenchRequest;
use crate::benchmarks::stats::RunSummary;
use crate::benchmarks::store::{self as bench_store, BenchStore, RunInfo};
use crate::benchmarks::{BenchTask, Difficulty, FamilyId, Progress, RunPlan, Runner};
use crate::core::{Caller, VeyraCore};

mod suite;
pub use suite::{SampleNews, SuiteBegan, SuiteEnded, SuiteJob};

/// How long closing waits for a cancelled run to record that it stopped.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Characters per token in the estimate of a plan's prompt tokens (a common rule of thumb for
/// English text; the plan says it is an estimate).
const CHARS_PER_TOKEN: u64 = 4;

/// A run begins: what it runs, and who asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Began {
    /// The run's number in this runtime (from 1): what a cancel names, so it stops this run
    /// and never one started after it.
    pub number: u64,
    /// The run resumed, when it is one (a new run's id comes with its first progress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<String>,
    /// Its families, in order.
    pub families: Vec<FamilyId>,
    /// Tasks per family.
    pub count: u32,
    /// Difficulty.
    pub difficulty: Difficulty,
    /// Generator seed.
    pub seed: u64,
    /// Times each task runs.
    pub epochs: u32,
    /// V-Score weight of each family.
    pub weights: BTreeMap<FamilyId, f64>,
    /// The backend every item goes to.
    pub backend: String,
    /// Its model.
    pub model: String,
    /// Who asked: `operator` on the hosting console, else the client as the runtime saw it.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The eval suite it runs, for a suite's run (its families are then none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<SuiteBegan>,
}

impl Began {
    /// `families · count × difficulty · seed S`, as the Benchmarks pane titles a run; a
    /// suite's run is `suite NAME vVERSION · N samples`.
    pub fn label(&self) -> String {
        if let Some(suite) = &self.suite {
            return suite.label();
        }
        format!(
            "{} · {} × {} · seed {}",
            self.families
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(","),
            self.count,
            self.difficulty,
            self.seed
        )
    }
}

/// What a benchmark run does, as its host tells it (tagged by `news`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "news", rename_all = "snake_case")]
pub enum BenchNews {
    /// A run begins.
    Began(Began),
    /// The runner's progress.
    Progress {
        /// What it did.
        progress: Progress,
    },
    /// A suite's sample finished and is stored.
    Sample {
        /// It.
        sample: SampleNews,
    },
    /// The run ended.
    Ended {
        /// The run as stored at the end, when it got that far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Option<serde_json::Value>")]
        run: Option<RunInfo>,
        /// Its summary over everything finished (`veyra bench schema` describes it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Option<serde_json::Value>")]
        summary: Option<RunSummary>,
        /// Why it failed, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// A suite's run as stored at the end, with its summary, when it got that far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        suite: Option<Box<SuiteEnded>>,
    },
}

impl BenchNews {
    /// The end of a run that failed, and why.
    pub fn ended_with(error: String) -> BenchNews {
        BenchNews::Ended {
            run: None,
            summary: None,
            error: Some(error),
            suite: None,
        }
    }

    /// True for the last news of a run.
    pub fn is_end(&self) -> bool {
        matches!(self, BenchNews::Ended { .. })
    }
}

/// What a run would cost, for the operator to approve before it starts off the mock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BenchPlan {
    /// What was asked (started as is on approval).
    pub request: BenchRequest,
    /// Families, with the configuration's defaults filled in.
    pub families: Vec<FamilyId>,
    /// Tasks per family.
    pub count: u32,
    /// Difficulty.
    pub difficulty: Difficulty,
    /// Times each task runs.
    pub epochs: u32,
    /// Executions in all: families × count × epochs (a dialogue task's turns are more).
    pub executions: usize,
    /// The backend the run would use.
    pub backend: String,
    /// Its model.
    pub model: String,
    /// Input tokens the prompts come to, estimated as their characters ÷ 4 (system prompt
    /// included, every epoch; answers, tool results and later dialogue turns not counted).
    pub prompt_tokens: u64,
}

/// Where news goes: false once the far end is gone (it is then forgotten).
type Sink = Box<dyn Fn(&BenchNews) -> bool + Send + Sync>;

/// How a run's work tells its news to every sink.
type Publisher = Arc<dyn Fn(&BenchNews) + Send + Sync>;

/// Tasks generated for a plan shown to the operator, kept for the run they approve.
struct Planned {
    request: BenchRequest,
    plan: RunPlan,
    tasks: Vec<BenchTask>,
}

/// The run going, if any.
struct Current {
    cancel: CancellationToken,
    task: JoinHandle<()>,
    by: String,
    /// Set just before the run's end is told: whoever hears it may start the next at once.
    ended: Arc<std::sync::atomic::AtomicBool>,
    /// [`Began::number`].
    number: u64,
}

impl Current {
    fn going(&self) -> bool {
        !self.ended.load(std::sync::atomic::Ordering::SeqCst) && !self.task.is_finished()
    }
}

/// See the module docs. Cheap to share (`Arc`).
pub struct BenchHost {
    core: VeyraCore,
    path: PathBuf,
    /// Why runs are not kept in `bench.db`, when they are not.
    unkept: Option<&'static str>,
    store: Mutex<Option<Arc<BenchStore>>>,
    planned: Arc<Mutex<Option<Planned>>>,
    current: Arc<Mutex<Option<Current>>>,
    /// The number the next run gets.
    next_number: std::sync::atomic::AtomicU64,
    /// Cancels every run (a cassette's tripwire holds it).
    outer: CancellationToken,
    /// The cassette's tripwire, when runs go through one: once it tripped, what fails is the
    /// cassette's miss, not the model's, and a suite's sample is not kept as a score.
    tripwire: Option<Tripwire>,
    sinks: Arc<Mutex<Vec<Sink>>>,
    /// Where family runs' items are solved when not through `core` (the fleet).
    solver: Mutex<Option<Arc<dyn crate::benchmarks::runner::ItemSolver>>>,
}

impl std::fmt::Debug for BenchHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchHost")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl BenchHost {
    /// The runs of `core`'s runtime, kept in `bench.db` beside its audit store.
    pub fn new(core: &VeyraCore) -> Arc<BenchHost> {
        BenchHost::with_cancel(core, CancellationToken::new())
    }

    /// As [`BenchHost::new`], every run also stopped by `outer`.
    pub fn with_cancel(core: &VeyraCore, outer: CancellationToken) -> Arc<BenchHost> {
        BenchHost::build(core, outer, None)
    }

    /// As [`BenchHost::with_cancel`], every run going through a cassette that trips `tripwire`
    /// (whose token is `outer`).
    pub fn with_tripwire(
        core: &VeyraCore,
        outer: CancellationToken,
        tripwire: Tripwire,
    ) -> Arc<BenchHost> {
        BenchHost::build(core, outer, Some(tripwire))
    }

    fn build(
        core: &VeyraCore,
        outer: CancellationToken,
        tripwire: Option<Tripwire>,
    ) -> Arc<BenchHost> {
        Arc::new(BenchHost {
            tripwire,
            core: core.clone(),
            path: bench_store::default_path(core.config()),
            unkept: unkept(core.config()),
            store: Mutex::new(None),
            planned: Arc::default(),
            current: Arc::default(),
            next_number: std::sync::atomic::AtomicU64::new(1),
            outer,
            sinks: Arc::default(),
            solver: Mutex::new(None),
        })
    }

    /// Solves the items of every family run started from now on with `solver` (the fleet's
    /// workers, `runtime.executor: nats`) rather than this runtime's core; the run, its store
    /// and its scoring stay here. Suites run here still.
    pub fn set_solver(&self, solver: Arc<dyn crate::benchmarks::runner::ItemSolver>) {
        *locked(&self.solver) = Some(solver);
    }

    /// Why runs are not kept in `bench.db` here, when they are not.
    pub fn unkept(&self) -> Option<&'static str> {
        self.unkept
    }

    /// The store runs are kept in, opened on first use (in memory when runs are not kept).
    pub fn store(&self) -> Result<Arc<BenchStore>, String> {
        let mut slot = locked(&self.store);
        if let Some(s) = slot.as_ref() {
            return Ok(Arc::clone(s));
        }
        let opened = match self.unkept {
            Some(_) => BenchStore::in_memory(),
            None => BenchStore::open(&self.path),
        };
        let s = Arc::new(opened.map_err(|e| e.to_string())?);
        *slot = Some(Arc::clone(&s));
        Ok(s)
    }

    /// Adds a sink every piece of news is handed to, in order, from the run's own task; it
    /// must not block. It stays until it returns false.
    pub fn tap(&self, sink: impl Fn(&BenchNews) -> bool + Send + Sync + 'static) {
        locked(&self.sinks).push(Box::new(sink));
    }

    /// Every piece of news from now on, until the receiver is dropped (the hosting process's
    /// own console and `veyra bench`: they read as fast as runs report).
    pub fn subscribe(&self) -> UnboundedReceiver<BenchNews> {
        let (tx, rx) = unbounded_channel();
        self.tap(move |news| tx.send(news.clone()).is_ok());
        rx
    }

    /// As [`BenchHost::subscribe`], holding at most `capacity` pieces not yet read: a reader
    /// that falls further behind is dropped (its receiver then ends before the run's end), so
    /// a client that reads slowly cannot make the runtime hold a run's news without bound.
    pub fn subscribe_bounded(&self, capacity: usize) -> tokio::sync::mpsc::Receiver<BenchNews> {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        self.tap(move |news| tx.try_send(news.clone()).is_ok());
        rx
    }

    fn publish(sinks: &Mutex<Vec<Sink>>, news: &BenchNews) {
        locked(sinks).retain(|sink| sink(news));
    }

    /// True while a run has not ended.
    pub fn running(&self) -> bool {
        locked(&self.current).as_ref().is_some_and(Current::going)
    }

    /// The run `request` asks for, over the configuration's `bench:` defaults.
    fn run_plan(&self, request: &BenchRequest) -> Result<RunPlan, String> {
        let mut plan =
            RunPlan::from_config(&self.core.config().bench).map_err(|e| e.to_string())?;
        if let Some(f) = &request.families {
            plan.families = f.clone();
        }
        plan.count = request.count.unwrap_or(plan.count);
        plan.difficulty = request.difficulty.unwrap_or(plan.difficulty);
        plan.seed = request.seed.unwrap_or(plan.seed);
        plan.epochs = request.epochs.unwrap_or(plan.epochs);
        // A request may come over the socket: held to what the configuration allows.
        use crate::config::bench::{RANGE_BENCH_COUNT, RANGE_BENCH_EPOCHS};
        if !RANGE_BENCH_COUNT.contains(&u64::from(plan.count)) {
            return Err(format!(
                "count {} is out of range: {}–{} tasks per family",
                plan.count,
                RANGE_BENCH_COUNT.start(),
                RANGE_BENCH_COUNT.end()
            ));
        }
        if !RANGE_BENCH_EPOCHS.contains(&u64::from(plan.epochs)) {
            return Err(format!(
                "epochs {} is out of range: {}–{}",
                plan.epochs,
                RANGE_BENCH_EPOCHS.start(),
                RANGE_BENCH_EPOCHS.end()
            ));
        }
        if plan.families.is_empty() {
            return Err("no family chosen; name one, or all".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = plan.families.iter().find(|f| !seen.insert(**f)) {
            return Err(format!("family {} is named twice", twice.name()));
        }
        if plan
            .families
            .iter()
            .all(|f| plan.weights.get(f).copied().unwrap_or(1.0) == 0.0)
        {
            return Err(
                "every family chosen weighs 0 in bench.weights, so the V-Score is undefined; pick \
                 another family or give one a positive weight"
                    .into(),
            );
        }
        Ok(plan)
    }

    /// Works out what `request` would run (the tasks generated off the async threads and kept
    /// for the run, if it is approved) and what it would cost.
    pub async fn plan(&self, request: BenchRequest) -> Result<BenchPlan, String> {
        let plan = self.run_plan(&request)?;
        let (backend, model) = (self.core.backend_name(), self.core.model_name());
        let planned = Arc::clone(&self.planned);
        tokio::task::spawn_blocking(move || {
            let tasks = plan.generate().map_err(|e| e.to_string())?;
            let shown = bench_plan(&request, &plan, &tasks, backend, model);
            *locked(&planned) = Some(Planned {
                request,
                plan,
                tasks,
            });
            Ok(shown)
        })
        .await
        .map_err(|e| format!("working out the plan: {e}"))?
    }

    /// Starts a run of `request` over the configuration's `bench:` defaults (with the tasks
    /// generated for its plan, when one was approved), or finishes stored run `resume`. `by`
    /// is the client that asked (`None`: the hosting process's operator). `headless` for a run
    /// whose asker watches only it (`veyra bench`): it keeps as many items in flight as the
    /// runner's default, not a console's few. The run's news follows; an error says why
    /// nothing started.
    pub fn start(
        &self,
        request: &BenchRequest,
        resume: Option<&str>,
        by: Option<Caller>,
        headless: bool,
    ) -> Result<Began, String> {
        let (mut current, number, who) = self.free_slot(by.as_ref())?;
        let store = self.store()?;
        let (began, work) = match resume {
            Some(run) => {
                let info = store.resolve(run).map_err(|e| e.to_string())?;
                if info.status == crate::benchmarks::RunStatus::Complete {
                    return Err(format!(
                        "benchmark run {} is already complete; nothing to resume (see `veyra \
                         bench show {}`)",
                        info.id, info.id
                    ));
                }
                let began = Began {
                    number,
                    resumed: Some(info.id.clone()),
                    families: info.families.clone(),
                    count: info.count,
                    difficulty: info.difficulty,
                    seed: info.seed,
                    epochs: info.epochs,
                    weights: info.weights.clone(),
                    backend: self.core.backend_name(),
                    model: self.core.model_name(),
                    by: who.clone(),
                    at: Utc::now(),
                    suite: None,
                };
                (began, Work::Resume(info.id))
            }
            None => {
                let planned = locked(&self.planned)
                    .take()
                    .filter(|p| &p.request == request);
                let (plan, tasks) = match planned {
                    Some(p) => (p.plan, Some(p.tasks)),
                    None => (self.run_plan(request)?, None),
                };
                let began = Began {
                    number,
                    resumed: None,
                    families: plan.families.clone(),
                    count: plan.count,
                    difficulty: plan.difficulty,
                    seed: plan.seed,
                    epochs: plan.epochs,
                    weights: plan
                        .families
                        .iter()
                        .map(|f| (*f, plan.weights.get(f).copied().unwrap_or(1.0)))
                        .collect(),
                    backend: self.core.backend_name(),
                    model: self.core.model_name(),
                    by: who.clone(),
                    at: Utc::now(),
                    suite: None,
                };
                (began, Work::New(Box::new(plan), tasks))
            }
        };
        // A console's run keeps twice the slots in flight, not the headless run's hundreds:
        // the operator's own prompts wait behind fewer items, and twice the slots still keeps
        // every slot busy while half the items wait on the audit log's commit. Items solved
        // on the fleet take no slot here (and the operator's prompts go ahead of them there,
        // at a higher priority): as many are kept in flight as the fleet's workers say they
        // solve at once.
        let mut runner = Runner::new(self.core.clone(), store).with_caller(by);
        if let Some(solver) = locked(&self.solver).clone() {
            runner = runner.with_solver(solver);
        } else if !headless {
            runner = runner.with_in_flight(self.console_in_flight());
        }
        self.launch(&mut current, began, who, move |token, publish| async move {
            let mut on_progress = move |progress| publish(&BenchNews::Progress { progress });
            let report = match work {
                Work::New(plan, Some(tasks)) => {
                    runner
                        .start_with_tasks(&plan, tasks, &token, &mut on_progress)
                        .await
                }
                Work::New(plan, None) => runner.start(&plan, &token, &mut on_progress).await,
                Work::Resume(run) => runner.resume(&run, &token, &mut on_progress).await,
            };
            match report {
                Ok(report) => BenchNews::Ended {
                    run: Some(report.info),
                    summary: Some(report.summary),
                    error: None,
                    suite: None,
                },
                Err(e) => BenchNews::ended_with(e.to_string()),
            }
        })
    }

    /// Items a console's run keeps in flight: twice the runtime's slots.
    fn console_in_flight(&self) -> usize {
        self.core.config().runtime.max_concurrent.saturating_mul(2)
    }

    /// Tells `began` and runs `work` as the current run (the slot `current` is locked and
    /// free): `work` gets the run's cancel token and a way to tell news, and ends with the
    /// run's end, which is told once the slot is free for the next run.
    fn launch<F, Fut>(
        &self,
        current: &mut MutexGuard<'_, Option<Current>>,
        began: Began,
        who: String,
        work: F,
    ) -> Result<Began, String>
    where
        F: FnOnce(CancellationToken, Publisher) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = BenchNews> + Send + 'static,
    {
        let number = began.number;
        let cancel = self.outer.child_token();
        let token = cancel.clone();
        let sinks = Arc::clone(&self.sinks);
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ended_flag = Arc::clone(&ended);
        let slot = Arc::clone(&self.current);
        BenchHost::publish(&sinks, &BenchNews::Began(began.clone()));
        let publisher: Publisher = {
            let sinks = Arc::clone(&sinks);
            Arc::new(move |news: &BenchNews| BenchHost::publish(&sinks, news))
        };
        let task = tokio::spawn(async move {
            let run = work(token, publisher);
            // A run that panicked still ends, saying so: followers never wait for an end that
            // cannot come.
            let news = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run))
                .await
                .unwrap_or_else(|_| {
                    BenchNews::ended_with(
                        "the benchmark run stopped on an internal error (a panic; see the log)"
                            .into(),
                    )
                });
            // Ended and told under the slot's lock: no next run can begin (and be told) between
            // the two, so every sink hears this run's end before the next one's start.
            let _slot = locked(&slot);
            ended_flag.store(true, std::sync::atomic::Ordering::SeqCst);
            BenchHost::publish(&sinks, &news);
        });
        **current = Some(Current {
            cancel,
            task,
            by: who,
            ended,
            number,
        });
        Ok(began)
    }

    /// The slot for a new run, locked, with the run's number and who asked: an error while a
    /// run is going.
    fn free_slot(
        &self,
        by: Option<&Caller>,
    ) -> Result<(MutexGuard<'_, Option<Current>>, u64, String), String> {
        let current = locked(&self.current);
        if let Some(c) = current.as_ref().filter(|c| c.going()) {
            return Err(format!(
                "a benchmark run is already going (started by {}); cancel it first",
                c.by
            ));
        }
        let number = self
            .next_number
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let who = by.map_or_else(|| "operator".to_string(), Caller::to_string);
        Ok((current, number, who))
    }

    /// Cancels the run going (what finished stays in the store) — only run `number` when one
    /// is named, so a cancel meant for a run that ended never stops the next; an error when
    /// there is nothing to cancel.
    pub fn cancel(&self, number: Option<u64>) -> Result<(), String> {
        match locked(&self.current).as_ref().filter(|c| c.going()) {
            Some(c) if number.is_none_or(|n| n == c.number) => {
                c.cancel.cancel();
                Ok(())
            }
            Some(c) => Err(format!(
                "benchmark run {} is not going (run {} is, started by {})",
                number.unwrap_or_default(),
                c.number,
                c.by
            )),
            None => Err("no benchmark run is going".into()),
        }
    }

    /// Cancels a run still going and gives it a moment to record that it stopped.
    pub async fn close(&self) {
        let current = locked(&self.current).take();
        if let Some(c) = current {
            c.cancel.cancel();
            if tokio::time::timeout(CLOSE_WAIT, c.task).await.is_err() {
                tracing::warn!(
                    "the benchmark run did not stop in time; `veyra bench --resume` finishes it"
                );
            }
        }
    }
}

/// What a run does: a new plan (with its tasks, when they were generated for its approval), or
/// the rest of a stored run.
enum Work {
    New(Box<RunPlan>, Option<Vec<BenchTask>>),
    Resume(String),
}

/// Why a runtime on `config` keeps its runs out of `bench.db`, when it does: an audit trail
/// kept in memory (the demo's) goes with the runtime, and so do its runs — a tour's run must
/// not join the operator's history or its sparkline.
pub fn unkept(config: &crate::config::VeyraConfig) -> Option<&'static str> {
    match config.governance.store {
        crate::config::AuditStoreKind::Memory => {
            Some("the audit trail is in memory here, so runs are not kept")
        }
        crate::config::AuditStoreKind::Sqlite => None,
    }
}

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
        families: plan.families.clone(),
        count: plan.count,
        difficulty: plan.difficulty,
        epochs: plan.epochs,
        executions: tasks.len().saturating_mul(plan.epochs as usize),
        backend,
        model,
        prompt_tokens: chars
            .div_ceil(CHARS_PER_TOKEN)
            .saturating_mul(u64::from(plan.epochs)),
    }
}

#[cfg(test)]
mod tests;
