//! The console's benchmark runs: the loop's side of the Benchmarks pane.
//!
//! A run is the same [`Runner`] `veyra bench` uses, on the console's own core, so its tasks
//! appear in the Tasks pane, pass the same gate, and are audited like any prompt. It runs in
//! its own tokio task and reports [`BenchUpdate`]s on a channel the loop folds into the
//! [`App`](super::app::App); the loop never waits on it. One run at a time; quitting cancels it
//! and waits a moment so the store records it as cancelled (`veyra bench --resume RUN`
//! finishes it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::app::{BenchRequest, BenchUpdate, HistoryPoint};
use crate::benchmarks::store::{self as bench_store, BenchStore, RunStatus};
use crate::benchmarks::{FamilyId, RunPlan, Runner};
use crate::core::VeyraCore;

/// How long quitting waits for a cancelled run to record that it stopped.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// The console's benchmark run, if any, and the channel runs report on.
pub(super) struct BenchSlot {
    core: VeyraCore,
    path: std::path::PathBuf,
    store: Option<Arc<BenchStore>>,
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
            core: core.clone(),
            store: None,
            cancel: None,
            task: None,
            tx,
            updates,
        }
    }

    /// Reads the V-Scores of past runs in the background. A console that never ran a
    /// benchmark does not create the store just by looking.
    pub fn load_history(&self) {
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

    /// Starts a run of `request` over the configuration's `bench:` defaults. Returns the
    /// plan's label and family weights for the pane, or why it cannot start.
    pub fn start(
        &mut self,
        request: &BenchRequest,
    ) -> Result<(String, BTreeMap<FamilyId, f64>), String> {
        if self.task.as_ref().is_some_and(|t| !t.is_finished()) {
            return Err("a benchmark run is already going".into());
        }
        let mut plan =
            RunPlan::from_config(&self.core.config().bench).map_err(|e| e.to_string())?;
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
        let store = match &self.store {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(BenchStore::open(&self.path).map_err(|e| e.to_string())?);
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
        let cancel = CancellationToken::new();
        // Twice the slots in flight, not the headless run's hundreds: every submitted item is
        // a row in Tasks beside the operator's own prompts, and twice the slots still keeps
        // every slot busy while half the items wait on the audit log's commit.
        let slots = self.core.config().runtime.max_concurrent;
        let runner =
            Runner::new(self.core.clone(), store.clone()).with_in_flight(slots.saturating_mul(2));
        let tx = self.tx.clone();
        let token = cancel.clone();
        self.task = Some(tokio::spawn(async move {
            let progress_tx = tx.clone();
            let mut on_progress = move |p| {
                let _ = progress_tx.send(BenchUpdate::Progress(p));
            };
            let ended = runner
                .start(&plan, &token, &mut on_progress)
                .await
                .map(|report| report.summary)
                .map_err(|e| e.to_string());
            let _ = tx.send(BenchUpdate::Ended(ended));
            // The sparkline takes the run just finished.
            let points = tokio::task::spawn_blocking(move || history(&store))
                .await
                .unwrap_or_else(|e| Err(format!("reading the history: {e}")));
            let _ = tx.send(BenchUpdate::History(points));
        }));
        self.cancel = Some(cancel);
        Ok((label, weights))
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

/// The V-Scores of the store's complete runs, oldest first.
fn history(store: &BenchStore) -> Result<Vec<HistoryPoint>, String> {
    let runs = store.runs().map_err(|e| e.to_string())?;
    Ok(runs
        .into_iter()
        .rev()
        .filter(|(info, _)| info.status == RunStatus::Complete)
        .filter_map(|(info, summary)| {
            summary.map(|s| HistoryPoint {
                run_id: info.id,
                v_score: s.v_score.score.mean,
            })
        })
        .collect())
}
