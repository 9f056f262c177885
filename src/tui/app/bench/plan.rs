//! The question before a run off the mock and replay: the [`BenchPlan`] the loop works out
//! (`tui::bench`) and the operator's `y` or `n` to it.

use super::*;

/// The backends a run starts on at once, without asking: they cost nothing and reach no one
/// (the mock, and a cassette played back offline).
pub const FREE_BACKENDS: [&str; 2] = [
    crate::models::mock::NAME,
    crate::benchmarks::cassette::REPLAY_BACKEND,
];

/// A run worked out for the operator to approve before it starts (off the mock and replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchPlan {
    /// What was asked (started as is on `y`).
    pub request: BenchRequest,
    /// Families, count and difficulty, with the configuration's defaults filled in.
    pub suite: Suite,
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

impl App {
    /// True when `b` starts a run at once: on the mock or a replayed cassette. Anywhere else
    /// a run costs money or reaches a server, and the console asks first.
    pub fn bench_is_free(&self) -> bool {
        FREE_BACKENDS.contains(&self.link.backend.as_str())
    }

    /// The plan waiting for the operator's answer, when the question is open.
    pub fn bench_question(&self) -> Option<&BenchPlan> {
        if let Some(Overlay::ConfirmBench(plan)) = &self.overlay {
            Some(plan)
        } else {
            None
        }
    }

    /// `y` or `n` to a run's plan: `y` starts it (unless one started meanwhile), `n` or `Esc`
    /// leaves it.
    pub(in crate::tui::app) fn answer_bench(&mut self, yes: bool) -> Vec<Command> {
        let Some(Overlay::ConfirmBench(plan)) = self.overlay.take() else {
            return Vec::new();
        };
        if !yes {
            self.flash("benchmark run not started", FlashLevel::Info);
            return Vec::new();
        }
        if self.bench_running() {
            self.flash("a benchmark run is already going", FlashLevel::Error);
            return Vec::new();
        }
        // Approved for one backend and model: switched since, the plan no longer says what
        // would run (nor what it would cost).
        if one_line(plan.backend.clone()) != self.link.backend
            || one_line(plan.model.clone()) != self.link.model
        {
            self.flash(
                format!(
                    "benchmark run not started: the plan was for {}/{}, the backend is now {}/{}; \
                     press b again",
                    one_line(plan.backend),
                    one_line(plan.model),
                    self.link.backend,
                    self.link.model
                ),
                FlashLevel::Error,
            );
            return Vec::new();
        }
        self.begin_bench(plan.request)
    }
}
