//! A benchmark run's tasks in the Tasks pane: counted in one row per run
//! ([`BenchTasksRow`]), never listed, so the operator's own prompts stay in sight. Each
//! task's submission says who asked for it: a run's are `benchmark`'s.

use super::*;

/// The Tasks pane's row of one benchmark run: its tasks counted, not listed.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchTasksRow {
    /// The run's id, once recorded.
    pub run_id: Option<String>,
    /// Its families (`cplc,msga`, `all`).
    pub families: String,
    /// Items finished.
    pub done: usize,
    /// Items in all.
    pub total: usize,
    /// Its tasks submitted and not ended.
    pub in_flight: usize,
    /// Where the run stands.
    pub state: BenchState,
}

impl BenchRun {
    /// Its row in the Tasks pane, with `in_flight` of its tasks not ended.
    pub fn tasks_row(&self, in_flight: usize) -> BenchTasksRow {
        let (done, total) = self.progress();
        let families = match (&self.suite, &self.eval) {
            (_, Some(eval)) => format!("suite {}", crate::sanitize::excerpt(&eval.name, 24)),
            (Some(suite), None) => families_name(&suite.families),
            (None, None) if self.families.is_empty() => self
                .label
                .split(" · ")
                .next()
                .unwrap_or_default()
                .to_string(),
            (None, None) => {
                families_name(&self.families.iter().map(|f| f.family).collect::<Vec<_>>())
            }
        };
        BenchTasksRow {
            run_id: self.id.clone(),
            families,
            done,
            total,
            in_flight: if self.state.is_active() { in_flight } else { 0 },
            state: self.state.clone(),
        }
    }
}

impl App {
    /// Whether the task just submitted is a benchmark run's (and is counted in the run's row,
    /// never listed): the core says who asked for each task, and a run's tasks are asked for
    /// by `benchmark`. Those of the run going are counted in flight; one of a run this console
    /// never saw going (it ended before a console attached) is simply not listed.
    pub(in crate::tui::app) fn claim_bench_task(
        &mut self,
        id: ExecutionId,
        actor: Option<&str>,
    ) -> bool {
        if actor != Some(crate::benchmarks::ACTOR) {
            return false;
        }
        if self.bench_running() {
            self.bench.in_flight.insert(id);
        }
        true
    }

    /// A task reached a final state: a run's is no longer in flight. True when it was one.
    pub(in crate::tui::app) fn bench_task_ended(&mut self, id: ExecutionId) -> bool {
        self.bench.in_flight.remove(&id)
    }

    /// True when `id` is one of the run's tasks in flight.
    pub fn is_bench_task(&self, id: ExecutionId) -> bool {
        self.bench.in_flight.contains(&id)
    }

    /// The Tasks pane's rows of this session's runs, oldest first.
    pub fn bench_task_rows(&self) -> Vec<BenchTasksRow> {
        let mut rows = self.bench.ended_rows.clone();
        if let Some(run) = &self.bench.run {
            rows.push(run.tasks_row(self.bench.in_flight.len()));
        }
        rows
    }
}
