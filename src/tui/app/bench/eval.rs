//! A user's eval suite run in the Benchmarks pane ([`EvalBar`]): its one bar and its own
//! score, folded from the runtime's suite news — never a V-Score.

use super::*;

/// A user's eval suite a run measures: one bar, and its own score (never the V-Score).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalBar {
    /// The suite's name (sanitized).
    pub name: String,
    /// Its version (sanitized).
    pub version: String,
    /// Samples finished (earlier ones of a resumed run included).
    pub done: usize,
    /// Samples in all.
    pub total: usize,
    /// Samples whose execution failed, of those seen here.
    pub errors: usize,
    /// Scores of the samples seen here.
    pub(super) scores: Vec<f64>,
    /// The score over the samples seen here, or the stored run's at its end.
    pub estimate: Option<crate::benchmarks::stats::Estimate>,
    /// Samples the estimate covers.
    pub covered: usize,
}

impl EvalBar {
    /// A sample finished; the estimate is made again on the next refresh (at most once a
    /// tick, as the families' are), never once per sample.
    pub(super) fn record(&mut self, score: f64, failed: bool, done: usize, total: usize) {
        self.scores.push(score);
        self.errors += usize::from(failed);
        self.done = done;
        self.total = total;
    }

    pub(super) fn refresh(&mut self) {
        if self.covered != self.scores.len() {
            self.covered = self.scores.len();
            self.estimate = Some(stats::scores_estimate(&self.scores));
        }
    }
}

impl App {
    pub(super) fn apply_sample(&mut self, sample: crate::service::bench::SampleNews) {
        let Some(run) = self.bench.run.as_mut() else {
            return;
        };
        let Some(eval) = run.eval.as_mut() else {
            return;
        };
        eval.record(sample.score, sample.failed, sample.done, sample.total);
        run.stale = true;
        if sample.score < 1.0 {
            run.miss_count += 1;
            if run.misses.len() == FAILURES_KEPT {
                run.misses.pop_front();
            }
            run.misses.push_back(BenchMiss {
                task_id: crate::sanitize::sanitize_line(&sample.id).into(),
                epoch: 0,
                score: sample.score,
                reason: crate::sanitize::sanitize_line(&sample.reason).into(),
                failed: sample.failed,
            });
        }
    }

    pub(super) fn suite_ended(
        &mut self,
        end: Option<crate::service::bench::SuiteEnded>,
        error: Option<String>,
    ) {
        let Some(run) = self.bench.run.as_mut() else {
            return;
        };
        run.ended = Some(self.now);
        self.bench.in_flight.clear();
        if let Some(end) = end {
            run.state = match end.run.status {
                RunStatus::Complete => BenchState::Complete,
                RunStatus::Cancelled | RunStatus::Running => BenchState::Cancelled,
            };
            if let Some(eval) = run.eval.as_mut() {
                // The stored run's own figures, over every sample it kept.
                eval.done = end.summary.n;
                eval.total = end.summary.total;
                eval.covered = end.summary.n;
                eval.estimate = (end.summary.n > 0).then_some(end.summary.score);
                run.stale = false;
            }
        }
        if let Some(e) = error {
            run.state = BenchState::Failed(crate::sanitize::sanitize_line(&e).into());
            self.flash(format!("suite run failed: {e}"), FlashLevel::Error);
        }
    }
}
