//! The Benchmarks pane's state: the run the console started, folded from the runner's
//! [`Progress`], and the V-Scores of past runs read from the benchmark store.
//!
//! The runner reports each finished item with its family, cluster and score; the view keeps
//! every task's scores and recomputes the family estimates and the V-Score interval with the
//! same [`stats::summarize`] the CLI uses — at most once per clock tick while a run goes, and
//! from the runner's own summary when it ends — so the pane never shows a figure the stored run
//! would not. While a run goes, the V-Score covers only the families with a finished task (a
//! family not yet begun is not a zero), and the pane says so; a cancelled run is summed the
//! same way, over what finished.
//!
//! Off the mock and replay backends `b` asks first: the loop works out the plan
//! ([`BenchPlan`]: executions, backend, model, tokens the prompts come to) and the console
//! shows it for `y` or `n`. A run's tasks are not rows of the Tasks pane: they are counted in
//! one row per run ([`BenchTasksRow`]), so the operator's own prompts stay in sight.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::*;
use crate::benchmarks::stats::{self, RunSummary, TaskScores};
use crate::benchmarks::{Difficulty, FamilyId, Progress, RunStatus};
use crate::events::ExecutionId;

/// Misses kept for the failures view (the newest; the count covers all of them).
pub const FAILURES_KEPT: usize = 500;
/// Past runs kept for the sparkline.
pub const HISTORY_KEPT: usize = 60;
/// Ended runs of this session kept as rows of the Tasks pane.
pub const RUN_ROWS_KEPT: usize = 8;

/// What a run measures: its families, tasks per family and difficulty. Only runs of the same
/// suite are compared (the sparkline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    /// Families, in family order.
    pub families: Vec<FamilyId>,
    /// Tasks per family.
    pub count: u32,
    /// Difficulty.
    pub difficulty: Difficulty,
}

impl Suite {
    /// `cplc,msga 20 × medium` (`all` for every family).
    pub fn name(&self) -> String {
        format!(
            "{} {} × {}",
            families_name(&self.families),
            self.count,
            self.difficulty
        )
    }
}

/// `cplc,msga`, or `all` for every family.
pub fn families_name(families: &[FamilyId]) -> String {
    if families.len() == FamilyId::ALL.len() {
        "all".to_string()
    } else {
        families
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

pub use crate::benchmarks::request::BenchRequest;

/// How the console's run stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BenchState {
    /// Asked for; the runner is generating and recording the tasks.
    Starting,
    /// Tasks are running.
    Running,
    /// Cancel was asked; running tasks are being stopped.
    Cancelling,
    /// Every task finished.
    Complete,
    /// Stopped before the end (what finished is stored; `veyra bench --resume RUN`).
    Cancelled,
    /// The run could not start or stopped on an error (the message says which).
    Failed(String),
}

impl BenchState {
    /// True while the run has not ended.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            BenchState::Starting | BenchState::Running | BenchState::Cancelling
        )
    }

    /// The word the pane shows.
    pub fn name(&self) -> &'static str {
        match self {
            BenchState::Starting => "starting",
            BenchState::Running => "running",
            BenchState::Cancelling => "cancelling",
            BenchState::Complete => "complete",
            BenchState::Cancelled => "cancelled",
            BenchState::Failed(_) => "failed",
        }
    }
}

/// One family's bar.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyBar {
    /// The family.
    pub family: FamilyId,
    /// Items (tasks × epochs) in all.
    pub total: usize,
    /// Items finished.
    pub done: usize,
    /// Items whose execution failed.
    pub errors: usize,
}

/// An item that scored below 1, for the failures view.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchMiss {
    /// The task.
    pub task_id: String,
    /// The epoch.
    pub epoch: u32,
    /// Its score.
    pub score: f64,
    /// The scorer's reason, or the execution's error (sanitized).
    pub reason: String,
    /// True when the execution failed (rather than answered wrong).
    pub failed: bool,
}

/// The run the console started.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRun {
    /// Its id, once the runner recorded it.
    pub id: Option<String>,
    /// What was asked, as the pane's header says it (`all · 20 × medium`).
    pub label: String,
    /// Where it stands.
    pub state: BenchState,
    /// When it was asked for.
    pub started: DateTime<Utc>,
    /// When it ended.
    pub ended: Option<DateTime<Utc>>,
    /// One bar per family, in family order.
    pub families: Vec<FamilyBar>,
    /// Every task's finished scores (for the live estimates).
    pub tasks: Vec<TaskScores>,
    index: HashMap<String, usize>,
    /// Family estimates and the V-Score over what finished so far.
    pub summary: Option<RunSummary>,
    /// Scores arrived since `summary` was computed.
    pub stale: bool,
    /// Items that scored below 1, newest last (at most [`FAILURES_KEPT`]).
    pub misses: std::collections::VecDeque<BenchMiss>,
    /// Items that scored below 1, all of them.
    pub miss_count: usize,
    /// Items finished before this session (a resumed run).
    pub resumed_done: usize,
    /// V-Score weight of each family.
    pub weights: BTreeMap<FamilyId, f64>,
    /// The backend it runs on (the console's when it started).
    pub backend: String,
    /// Its model.
    pub model: String,
    /// Its suite, once the loop settled the plan.
    pub suite: Option<Suite>,
    /// Who asked for it (`operator` on the hosting console, else the client).
    pub by: String,
    /// Its number in the runtime, once it began there (what `c` cancels).
    pub number: Option<u64>,
    /// The eval suite it measures, for a suite's run (its families are then none).
    pub eval: Option<EvalBar>,
}

impl BenchRun {
    /// A run just asked for.
    pub fn new(label: String, now: DateTime<Utc>) -> Self {
        BenchRun {
            by: "operator".into(),
            number: None,
            eval: None,
            backend: String::new(),
            model: String::new(),
            suite: None,
            id: None,
            label,
            state: BenchState::Starting,
            started: now,
            ended: None,
            families: Vec::new(),
            tasks: Vec::new(),
            index: HashMap::new(),
            summary: None,
            stale: false,
            misses: std::collections::VecDeque::new(),
            miss_count: 0,
            resumed_done: 0,
            weights: BTreeMap::new(),
        }
    }

    /// Items finished and in all, over every family.
    pub fn progress(&self) -> (usize, usize) {
        if let Some(eval) = &self.eval {
            return (eval.done, eval.total);
        }
        self.families
            .iter()
            .fold((0, 0), |(d, t), f| (d + f.done, t + f.total))
    }

    /// Time left at the pace so far, once something finished in this session.
    pub fn eta(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        if self.state != BenchState::Running {
            return None;
        }
        let (done, total) = self.progress();
        let done_now = done.saturating_sub(self.resumed_done);
        if done_now == 0 || done >= total {
            return None;
        }
        let elapsed = (now - self.started).num_milliseconds().max(0);
        let left = elapsed.saturating_mul((total - done) as i64) / done_now as i64;
        Some(chrono::Duration::milliseconds(left))
    }

    /// Families in the V-Score and families planned: the V-Score covers only the families
    /// with a finished task (a family not begun is not a zero).
    pub fn coverage(&self) -> (usize, usize) {
        let covered = self
            .summary
            .as_ref()
            .map_or(0, |s| s.families.iter().filter(|f| f.n > 0).count());
        (covered, self.families.len())
    }

    /// Recomputes the estimates when scores arrived since the last time, over the families
    /// with a finished task.
    pub fn refresh(&mut self) {
        if !self.stale {
            return;
        }
        self.stale = false;
        if let Some(eval) = self.eval.as_mut() {
            eval.refresh();
            return;
        }
        let families: Vec<FamilyId> = self
            .families
            .iter()
            .map(|f| f.family)
            .filter(|f| {
                self.tasks
                    .iter()
                    .any(|t| t.family == *f && !t.scores.is_empty())
            })
            .collect();
        let weights = self.weights.clone();
        self.summary = Some(stats::summarize(&self.tasks, &families, &|f| {
            weights.get(&f).copied().unwrap_or(1.0)
        }));
    }

    fn record(&mut self, family: FamilyId, task_id: &str, cluster: &str, score: f64, failed: bool) {
        let i = match self.index.get(task_id) {
            Some(&i) => i,
            None => {
                self.tasks.push(TaskScores {
                    family,
                    task_id: task_id.to_string(),
                    cluster: cluster.to_string(),
                    scores: Vec::new(),
                    errors: 0,
                    latency_ms: 0,
                    tokens_in: 0,
                    tokens_out: 0,
                });
                self.index.insert(task_id.to_string(), self.tasks.len() - 1);
                self.tasks.len() - 1
            }
        };
        if let Some(t) = self.tasks.get_mut(i) {
            t.scores.push(score);
            t.errors += u32::from(failed);
        }
        self.stale = true;
    }
}

/// One past run in the sparkline.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    /// The run.
    pub run_id: String,
    /// Its V-Score.
    pub v_score: f64,
    /// What it measured: only runs of one suite are compared.
    pub suite: Suite,
}

/// Everything the Benchmarks pane shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BenchView {
    /// The run started in this console (the latest one).
    pub run: Option<BenchRun>,
    /// V-Scores of the store's complete runs, oldest first (at most [`HISTORY_KEPT`]).
    pub history: Vec<HistoryPoint>,
    /// Why the history could not be read, when it could not.
    pub history_error: Option<String>,
    /// Why runs started here are not kept in `bench.db`, when they are not (the demo).
    pub unkept: Option<String>,
    /// Ended runs of this session, for their rows in Tasks (oldest first, at most
    /// [`RUN_ROWS_KEPT`]).
    pub ended_rows: Vec<BenchTasksRow>,
    /// The current run's tasks submitted and not ended.
    in_flight: HashSet<ExecutionId>,
    /// When the open run question appeared: keys within [`CONFIRM_GUARD`] of it are not its
    /// answer (a `y` meant for something else as the plan lands).
    pub(in crate::tui::app) asked_at: Option<tokio::time::Instant>,
}

/// What the loop reports about benchmark runs, for [`App::apply_bench`].
#[derive(Debug, Clone, PartialEq)]
pub enum BenchUpdate {
    /// A run began on the runtime: this console's, or one another client asked for.
    Began(crate::service::bench::Began),
    /// The run this console asked for did not start, and why.
    NotStarted(String),
    /// The runner's progress.
    Progress(Progress),
    /// A suite's sample finished.
    Sample(crate::service::bench::SampleNews),
    /// The run ended: its summary over everything finished, or why it failed.
    Ended(Result<RunSummary, String>),
    /// A suite's run ended: the run as stored (when it got that far), and why it failed (when
    /// it did).
    SuiteEnded(
        Option<Box<crate::service::bench::SuiteEnded>>,
        Option<String>,
    ),
    /// The store's past runs (oldest first), or why they could not be read.
    History(Result<Vec<HistoryPoint>, String>),
    /// Runs are not kept in `bench.db` in this console, and why (the demo's).
    Unkept(String),
    /// The plan of a run asked for off the mock, for the operator to approve, or why there is
    /// none.
    Plan(Result<BenchPlan, String>),
}

impl App {
    /// True while a benchmark run started here has not ended.
    pub fn bench_running(&self) -> bool {
        self.bench.run.as_ref().is_some_and(|r| r.state.is_active())
    }

    /// `b` / `:bench`: starts a run unless one is going, and shows the pane; off the mock and
    /// replay, asks the loop for the plan first, for the operator to approve
    /// ([`App::apply_bench`] with [`BenchUpdate::Plan`]).
    pub fn start_bench(&mut self, request: BenchRequest) -> Vec<Command> {
        if self.bench_running() {
            let hint = self.keymap.key_hint(Mode::Normal, Action::CancelTask);
            self.flash(
                format!("a benchmark run is going; {hint} on the Benchmarks pane cancels it"),
                FlashLevel::Error,
            );
            return Vec::new();
        }
        if !self.bench_is_free() {
            self.flash(
                format!(
                    "working out the benchmark plan on {}/{} before asking you",
                    self.link.backend, self.link.model
                ),
                FlashLevel::Info,
            );
            return vec![Command::PlanBench(request)];
        }
        self.begin_bench(request)
    }

    /// The run asked for begins: its pane shows, the loop starts it.
    fn begin_bench(&mut self, request: BenchRequest) -> Vec<Command> {
        let families = request.families.as_ref().map_or_else(
            || "configured families".to_string(),
            |f| f.iter().map(|f| f.name()).collect::<Vec<_>>().join(","),
        );
        let label = format!(
            "{families} · {} × {}",
            request
                .count
                .map_or_else(|| "bench.count".to_string(), |n| n.to_string()),
            request
                .difficulty
                .map_or("bench.difficulty", Difficulty::name)
        );
        self.new_bench_run(label);
        self.show_pane(Pane::Benchmarks);
        vec![Command::StartBench(request)]
    }

    /// A fresh run in the pane; the one before keeps its row in Tasks.
    fn new_bench_run(&mut self, label: String) {
        let mut run = BenchRun::new(label, self.now);
        run.backend.clone_from(&self.link.backend);
        run.model.clone_from(&self.link.model);
        if let Some(old) = self.bench.run.replace(run) {
            let row = old.tasks_row(0);
            self.bench.ended_rows.push(row);
            let excess = self.bench.ended_rows.len().saturating_sub(RUN_ROWS_KEPT);
            self.bench.ended_rows.drain(..excess);
        }
        self.bench.in_flight.clear();
    }

    /// A run began on the runtime. The one this console asked for takes what the runtime
    /// settled on (the configuration's defaults filled in); one another client asked for (a
    /// `veyra bench` in another shell, the hosting console) is shown as it goes.
    fn bench_began(&mut self, began: crate::service::bench::Began) {
        let ours = self
            .bench
            .run
            .as_ref()
            .is_some_and(|r| r.state == BenchState::Starting && r.number.is_none());
        if !ours {
            self.new_bench_run(began.label());
        }
        let Some(run) = self.bench.run.as_mut() else {
            return;
        };
        if !ours {
            // Begun elsewhere, perhaps long before this console attached: its elapsed time
            // and pace count from when it began.
            run.started = began.at.min(self.now);
        }
        run.number = Some(began.number);
        run.label = began.label();
        run.by = crate::sanitize::sanitize_line(&began.by).into_owned();
        run.backend = crate::sanitize::sanitize_line(&began.backend).into_owned();
        run.model = crate::sanitize::sanitize_line(&began.model).into_owned();
        run.weights = began.weights;
        match began.suite {
            Some(suite) => {
                // An eval suite's run: its own score, never a point of the V-Score history.
                run.suite = None;
                run.id = Some(crate::sanitize::sanitize_line(&suite.run).into_owned());
                run.state = BenchState::Running;
                let total = usize::try_from(suite.total).unwrap_or(usize::MAX);
                let earlier = usize::try_from(suite.earlier).unwrap_or(usize::MAX);
                run.resumed_done = earlier;
                run.eval = Some(EvalBar {
                    name: crate::sanitize::sanitize_line(&suite.name).into_owned(),
                    version: crate::sanitize::sanitize_line(&suite.version).into_owned(),
                    done: earlier,
                    total,
                    errors: 0,
                    scores: Vec::new(),
                    estimate: None,
                    covered: 0,
                });
            }
            None => {
                run.suite = Some(Suite {
                    families: began.families,
                    count: began.count,
                    difficulty: began.difficulty,
                });
            }
        }
    }

    /// `c` on the Benchmarks pane.
    pub(super) fn cancel_bench(&mut self) -> Vec<Command> {
        match self.bench.run.as_mut() {
            // Asked for here and not begun on the runtime yet: nothing to name in a cancel.
            Some(run) if run.state == BenchState::Starting && run.number.is_none() => {
                self.flash(
                    "the run is still starting; press c again once it runs",
                    FlashLevel::Info,
                );
                Vec::new()
            }
            Some(run) if matches!(run.state, BenchState::Starting | BenchState::Running) => {
                run.state = BenchState::Cancelling;
                vec![Command::CancelBench]
            }
            Some(run) if run.state == BenchState::Cancelling => Vec::new(),
            _ => {
                let hint = self.keymap.key_hint(Mode::Normal, Action::StartBench);
                self.flash(
                    format!("no benchmark run to cancel; {hint} starts one"),
                    FlashLevel::Info,
                );
                Vec::new()
            }
        }
    }

    /// The plan the runtime settled on (with the configuration's defaults filled in).
    pub fn bench_planned(&mut self, label: String, weights: BTreeMap<FamilyId, f64>) {
        if let Some(run) = self.bench.run.as_mut() {
            run.label = label;
            run.weights = weights;
        }
    }

    /// The suite the runtime settled on, for the pane and the sparkline.
    pub fn bench_suite(&mut self, suite: Suite) {
        if let Some(run) = self.bench.run.as_mut() {
            run.suite = Some(suite);
        }
    }

    /// Folds what the loop reports about a run.
    pub fn apply_bench(&mut self, update: BenchUpdate) {
        self.fold_bench(update);
        self.settle_quit_question();
    }

    fn fold_bench(&mut self, update: BenchUpdate) {
        match update {
            BenchUpdate::Began(began) => self.bench_began(began),
            BenchUpdate::NotStarted(e) => {
                // Only the run this console asked for, if no run took its place meanwhile.
                if let Some(run) = self
                    .bench
                    .run
                    .as_mut()
                    .filter(|r| r.state == BenchState::Starting && r.number.is_none())
                {
                    run.ended = Some(self.now);
                    run.state = BenchState::Failed(crate::sanitize::sanitize_line(&e).into());
                }
                self.flash(format!("benchmark run not started: {e}"), FlashLevel::Error);
            }
            BenchUpdate::Unkept(why) => self.bench.unkept = Some(why),
            BenchUpdate::Plan(Ok(plan)) => {
                if self.bench_running() {
                    self.flash("a benchmark run is already going", FlashLevel::Error);
                } else if self.overlay.is_some() || self.confirm.is_some() {
                    // Another question or view is open: never put this one in its place, where
                    // a key meant for that one would answer it.
                    self.flash(
                        "the benchmark plan is ready but something else is open; press b again",
                        FlashLevel::Error,
                    );
                } else {
                    self.overlay = Some(Overlay::ConfirmBench(plan));
                    // Shown now, or once the operator leaves the prompt (`handle_key_at`).
                    self.bench.asked_at =
                        (self.mode() == Mode::Question).then(tokio::time::Instant::now);
                }
            }
            BenchUpdate::Plan(Err(e)) => {
                self.flash(format!("benchmark run not started: {e}"), FlashLevel::Error);
            }
            BenchUpdate::History(Ok(points)) => {
                let skip = points.len().saturating_sub(HISTORY_KEPT);
                self.bench.history = points.into_iter().skip(skip).collect();
                self.bench.history_error = None;
            }
            BenchUpdate::History(Err(e)) => self.bench.history_error = Some(e),
            BenchUpdate::Ended(result) => {
                let Some(run) = self.bench.run.as_mut() else {
                    return;
                };
                run.ended = Some(self.now);
                self.bench.in_flight.clear();
                match result {
                    Ok(summary) => {
                        if run.state.is_active() {
                            // `Finished` said how; a run that never sent it was cut short.
                            run.state = BenchState::Cancelled;
                        }
                        if run.state == BenchState::Complete {
                            run.summary = Some(summary);
                            run.stale = false;
                        } else {
                            // The runner sums a cancelled run over its plan, an unfinished
                            // family as a zero: the pane reports what finished.
                            run.stale = true;
                            run.refresh();
                        }
                    }
                    Err(e) => {
                        run.refresh();
                        run.state = BenchState::Failed(crate::sanitize::sanitize_line(&e).into());
                        let text = format!("benchmark run failed: {e}");
                        self.flash(text, FlashLevel::Error);
                    }
                }
            }
            BenchUpdate::Progress(p) => self.apply_progress(p),
            BenchUpdate::Sample(sample) => self.apply_sample(sample),
            BenchUpdate::SuiteEnded(end, error) => self.suite_ended(end.map(|e| *e), error),
        }
    }

    fn apply_progress(&mut self, p: Progress) {
        let Some(run) = self.bench.run.as_mut() else {
            return;
        };
        match p {
            Progress::Started { run_id, families } => {
                // The id may come from a runtime over a socket: kept sanitized.
                run.id = Some(crate::sanitize::sanitize_line(&run_id).into_owned());
                run.state = BenchState::Running;
                run.families = families
                    .iter()
                    .map(|&(family, total, done)| FamilyBar {
                        family,
                        total,
                        done,
                        errors: 0,
                    })
                    .collect();
                run.resumed_done = families.iter().map(|f| f.2).sum();
                run.stale = true;
            }
            Progress::TaskFinished {
                family,
                task_id,
                cluster,
                epoch,
                score,
                reason,
                failed,
                done,
                total,
            } => {
                if let Some(bar) = run.families.iter_mut().find(|b| b.family == family) {
                    bar.done = done;
                    bar.total = total;
                    bar.errors += usize::from(failed);
                }
                run.record(family, &task_id, &cluster, score, failed);
                if score < 1.0 {
                    run.miss_count += 1;
                    if run.misses.len() == FAILURES_KEPT {
                        run.misses.pop_front();
                    }
                    run.misses.push_back(BenchMiss {
                        task_id: crate::sanitize::sanitize_line(&task_id).into(),
                        epoch,
                        score,
                        reason: crate::sanitize::sanitize_line(&reason).into(),
                        failed,
                    });
                }
            }
            Progress::Finished { status, .. } => {
                run.ended = Some(self.now);
                run.state = match status {
                    RunStatus::Complete => BenchState::Complete,
                    RunStatus::Cancelled | RunStatus::Running => BenchState::Cancelled,
                };
            }
        }
    }
}

mod detail;
mod eval;
pub use eval::EvalBar;
mod plan;
mod rows;
pub use plan::{BenchPlan, FREE_BACKENDS};
pub use rows::BenchTasksRow;

#[cfg(test)]
mod tests;
