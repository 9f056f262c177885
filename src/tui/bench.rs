//! The console's side of the runtime's benchmark runs: what the Benchmarks pane is fed.
//!
//! A run belongs to the runtime ([`BenchHost`]), whichever console or shell asked for it: the
//! console starts, plans and cancels one through its [`Handle`] like any other command, and
//! folds the run's news as [`BenchUpdate`]s — from the host's own sink when this process
//! hosts the runtime, from the session's feed when it is attached (folded with its events). So a `veyra bench` in another shell, or the console hosting the
//! runtime, shows its run here as it goes. The store's history (the sparkline) is read from
//! `bench.db` here, off the loop, and again after each run.
//!
//! Quitting a console that hosts the runtime cancels its run and waits a moment so the store
//! records it as cancelled (`veyra bench --resume RUN` finishes it); an attached console leaves
//! the runtime's run going.

use std::sync::Arc;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::app::{BenchPlan, BenchUpdate, HistoryPoint, Suite};
use crate::benchmarks::store::{self as bench_store, BenchStore, RunStatus};
use crate::service::Handle;
use crate::service::bench::{self as runs, BenchHost, BenchNews};

/// Where the pane's updates come from, and what the console reads of `bench.db`.
pub(super) struct BenchSlot {
    path: std::path::PathBuf,
    /// Why runs are not kept in `bench.db`, when they are not.
    unkept: Option<&'static str>,
    /// The runtime's runs, when this process hosts it (closed with the console).
    host: Option<Arc<BenchHost>>,
    tx: UnboundedSender<BenchUpdate>,
    /// What runs report, for the loop to fold.
    pub updates: UnboundedReceiver<BenchUpdate>,
}

impl BenchSlot {
    /// The slot of a console over `runtime`, whose configuration is `config`.
    pub fn new(runtime: &Handle, config: &crate::config::VeyraConfig) -> Self {
        let (tx, updates) = unbounded_channel();
        let host = match runtime {
            Handle::Local(_, host) => Some(Arc::clone(host)),
            Handle::Attached(_) => None,
        };
        let slot = BenchSlot {
            path: bench_store::default_path(config),
            unkept: runs::unkept(config),
            host,
            tx,
            updates,
        };
        if let Some(host) = &slot.host {
            let history = slot.history_reader();
            host.tap(move |news| history.news(news.clone()));
        }
        slot
    }

    /// Where the loop's commands report plans and failures to start.
    pub fn sender(&self) -> UnboundedSender<BenchUpdate> {
        self.tx.clone()
    }

    fn history_reader(&self) -> HistoryReader {
        HistoryReader {
            path: self.path.clone(),
            unkept: self.unkept,
            tx: self.tx.clone(),
        }
    }

    /// Reads the V-Scores of past runs in the background. A console that never ran a
    /// benchmark does not create the store just by looking.
    pub fn load_history(&self) {
        self.history_reader().load();
    }

    /// Cancels a run this process hosts and gives it a moment to record that it stopped; a
    /// runtime attached to keeps its run.
    pub async fn close(&mut self) {
        if let Some(host) = &self.host {
            host.close().await;
        }
    }
}

/// Turns news into updates, and reads the history again after a run.
#[derive(Clone)]
struct HistoryReader {
    path: std::path::PathBuf,
    unkept: Option<&'static str>,
    tx: UnboundedSender<BenchUpdate>,
}

impl HistoryReader {
    /// Passes `news` on; false once the console is gone.
    fn news(&self, news: BenchNews) -> bool {
        let end = news.is_end();
        let open = self.tx.send(BenchUpdate::from(news)).is_ok();
        if open && end {
            // The sparkline takes the run just finished.
            self.load();
        }
        open
    }

    fn load(&self) {
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
}

impl From<BenchNews> for BenchUpdate {
    fn from(news: BenchNews) -> Self {
        match news {
            BenchNews::Began(began) => BenchUpdate::Began(began),
            BenchNews::Progress { progress } => BenchUpdate::Progress(progress),
            BenchNews::Sample { sample } => BenchUpdate::Sample(sample),
            BenchNews::Ended {
                suite: Some(end),
                error,
                ..
            } => BenchUpdate::SuiteEnded(Some(end), error),
            BenchNews::Ended {
                summary: Some(summary),
                error: None,
                ..
            } => BenchUpdate::Ended(Ok(summary)),
            BenchNews::Ended { error, .. } => BenchUpdate::Ended(Err(
                error.unwrap_or_else(|| "the runtime sent no summary of the run".to_string())
            )),
        }
    }
}

impl From<runs::BenchPlan> for BenchPlan {
    fn from(plan: runs::BenchPlan) -> Self {
        BenchPlan {
            request: plan.request,
            suite: Suite {
                families: plan.families,
                count: plan.count,
                difficulty: plan.difficulty,
            },
            epochs: plan.epochs,
            executions: plan.executions,
            backend: crate::sanitize::sanitize_line(&plan.backend).into_owned(),
            model: crate::sanitize::sanitize_line(&plan.model).into_owned(),
            prompt_tokens: plan.prompt_tokens,
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
