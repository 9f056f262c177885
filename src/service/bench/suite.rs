//! A user's eval suite run by the runtime ([`BenchHost::start_suite`]), whoever asked: `veyra
//! bench --suite` in another shell (it sends the file's text; the runtime reads no file a
//! client names), or with nothing serving, the process that hosts the runtime itself. The run
//! takes the same one-at-a-time slot as the families' runs, is kept in the same `bench.db`
//! the same way (`crate::benchmarks::suite::kept`), and its news reaches every console: its
//! [`SuiteBegan`], one [`SampleNews`] per finished sample, and [`SuiteEnded`].

use std::sync::Arc;

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Began, BenchHost, BenchNews};
use crate::benchmarks::Difficulty;
use crate::benchmarks::store::{BenchStore, RunStatus, StoredSample, SuiteRunInfo};
use crate::benchmarks::suite::{self, SampleResult, Suite, SuiteRun, SuiteSummary};
use crate::core::Caller;
use crate::error::VeyraError;

/// The suite a run runs, as [`Began::suite`] says it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SuiteBegan {
    /// The stored run (a new one, or the one resumed).
    pub run: String,
    /// The suite's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The file it was read from, as the client named it.
    pub source: String,
    /// Samples the run has in all.
    pub total: u64,
    /// Samples it had finished before (a resumed run).
    pub earlier: u64,
}

impl SuiteBegan {
    /// `suite NAME vVERSION · N samples`.
    pub fn label(&self) -> String {
        format!(
            "suite {} v{} · {} samples",
            crate::sanitize::sanitize_line(&crate::sanitize::excerpt(&self.name, 40)),
            crate::sanitize::sanitize_line(&crate::sanitize::excerpt(&self.version, 16)),
            self.total
        )
    }
}

/// A suite's sample finished and is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SampleNews {
    /// Its place in the suite (from 0).
    pub index: usize,
    /// Its id.
    pub id: String,
    /// Its score.
    pub score: f64,
    /// The scorer's reason, or why the execution failed.
    pub reason: String,
    /// True when the execution failed (rather than answered wrong).
    pub failed: bool,
    /// Samples of the run finished so far (earlier ones included).
    pub done: usize,
    /// Samples in all.
    pub total: usize,
}

/// A suite's run at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SuiteEnded {
    /// The run as stored at the end.
    #[schemars(with = "serde_json::Value")]
    pub run: SuiteRunInfo,
    /// Its summary over every sample it kept.
    #[schemars(with = "serde_json::Value")]
    pub summary: SuiteSummary,
}

/// What a suite's run is asked to do.
#[derive(Debug, Clone)]
pub struct SuiteJob {
    /// The suite, checked and compiled.
    pub suite: Arc<Suite>,
    /// The file it came from, as the asker named it (kept with the run).
    pub source: String,
    /// The JSONL field renames it was read with (`input=question,…`; empty for none).
    pub map: String,
    /// Finish this stored run of the suite (its id, a unique prefix, or `last`).
    pub resume: Option<String>,
    /// Run only the first N samples (a new run).
    pub count: Option<usize>,
}

/// Most finished samples committed in one transaction (as the families' runner batches).
const MAX_BATCH: usize = 64;

impl BenchHost {
    /// Starts a run of `job`'s suite (or finishes its stored run), as [`BenchHost::start`]
    /// does a family run: `by` asked (`None`: the hosting process's operator); `headless` for
    /// a run whose asker watches only it. Samples are kept in `bench.db` as they finish,
    /// committed in batches off the async threads, and told once kept; a store that fails
    /// stops the run (what is not kept would be run again). An error says why nothing started
    /// (a usage error for a suite or run that does not fit, else the store's).
    pub fn start_suite(
        &self,
        job: SuiteJob,
        by: Option<Caller>,
        headless: bool,
    ) -> Result<Began, VeyraError> {
        let (mut current, number, who) = self.free_slot(by.as_ref()).map_err(VeyraError::Usage)?;
        // A new run that cannot run is refused before the store is even made.
        if job.resume.is_none() {
            suite::run::check(&self.core, &job.suite, job.count)?;
        }
        let store = self.store().map_err(VeyraError::Runtime)?;
        let (info, earlier) = suite::kept::open_run(
            &store,
            &self.core,
            &job.suite,
            &job.source,
            &job.map,
            job.resume.as_deref(),
            job.count,
        )?;
        let total = usize::try_from(info.total).unwrap_or(usize::MAX);
        let began = Began {
            number,
            resumed: job.resume.as_ref().map(|_| info.id.clone()),
            families: Vec::new(),
            count: u32::try_from(info.total).unwrap_or(u32::MAX),
            difficulty: Difficulty::default(),
            seed: 0,
            epochs: 1,
            weights: Default::default(),
            backend: self.core.backend_name(),
            model: self.core.model_name(),
            by: who.clone(),
            at: Utc::now(),
            suite: Some(SuiteBegan {
                run: info.id.clone(),
                name: info.name.clone(),
                version: info.version.clone(),
                source: info.source.clone(),
                total: info.total,
                earlier: earlier.len() as u64,
            }),
        };
        let in_flight = if headless {
            crate::benchmarks::runner::in_flight(&self.core.config().runtime)
        } else {
            self.console_in_flight()
        };
        let core = self.core.clone();
        let tripwire = self.tripwire.clone();
        let caller = by;
        self.launch(&mut current, began, who, move |token, publish| async move {
            // Whatever happens from here, the run never stays `running` in the store.
            let guard = Unfinished {
                store: Arc::clone(&store),
                run: info.id.clone(),
                total,
            };
            let (tx, rx) = std::sync::mpsc::channel::<(usize, SampleResult)>();
            let writer = {
                let (store, id, token) = (Arc::clone(&store), info.id.clone(), token.clone());
                let done = earlier.len();
                tokio::task::spawn_blocking(move || {
                    write_samples(&store, &id, rx, done, total, &token, &*publish)
                })
            };
            let mut progress = |index: usize, r: &SampleResult| {
                // After a cassette stopped the run, what fails is the cassette's miss, not the
                // model: nothing from then on is kept as a score.
                if tripwire.as_ref().is_some_and(|t| t.tripped().is_some()) {
                    return;
                }
                let _ = tx.send((index, r.clone()));
            };
            let report = suite::resume_suite(
                &core,
                &job.suite,
                Some(total),
                in_flight,
                &token,
                SuiteRun {
                    id: Some(info.id.clone()),
                    earlier,
                    caller,
                },
                &mut progress,
            )
            .await;
            drop(tx);
            let lost = match writer.await {
                Ok(lost) => lost,
                Err(e) => Some(format!("the suite run's writer stopped: {e}")),
            };
            let tripped = tripwire.as_ref().is_some_and(|t| t.tripped().is_some());
            let complete = matches!(&report, Ok(r) if r.complete) && lost.is_none() && !tripped;
            // Summed over what the store kept: a run that stopped is left cancelled (resumable).
            // The guard goes with the end: it stands until the end is kept, and never after.
            let (store_end, id) = (Arc::clone(&store), info.id.clone());
            let fallback = report.as_ref().ok().map(|r| r.summary.clone());
            let ended = tokio::task::spawn_blocking(move || {
                let mut guard = guard;
                let kept = suite::kept::stored_report(&store_end, &info);
                // A run whose results could not be read back is never called complete.
                let (summary, complete) = match (&kept, fallback) {
                    (Ok(kept), _) => (kept.summary.clone(), complete),
                    (Err(_), Some(summary)) => (summary, false),
                    (Err(_), None) => (suite::summarize(&[], total), false),
                };
                let status = if complete {
                    RunStatus::Complete
                } else {
                    RunStatus::Cancelled
                };
                let finished = store_end.finish_suite_run(&id, status, &summary);
                guard.total = 0;
                let run = store_end
                    .suite_run(&id)
                    .ok()
                    .flatten()
                    .map_or(info, |(run, _)| run);
                (run, summary, finished)
            })
            .await;
            let Ok((run, summary, finished)) = ended else {
                return BenchNews::ended_with("the suite run's end could not be kept".into());
            };
            let error = match (report, lost, finished) {
                (_, Some(lost), _) => Some(lost),
                (Err(e), None, _) => Some(e.to_string()),
                (Ok(_), None, Err(e)) => Some(format!("the suite run's end was not kept: {e}")),
                (Ok(_), None, Ok(())) => None,
            };
            BenchNews::Ended {
                run: None,
                summary: None,
                error,
                suite: Some(Box::new(SuiteEnded { run, summary })),
            }
        })
        .map_err(VeyraError::Usage)
    }
}

/// Commits samples as they come, at most [`MAX_BATCH`] a transaction, telling each once it
/// is kept; on a store failure it cancels the run (`token`) and keeps nothing more. Why the
/// run lost samples, when it did.
fn write_samples(
    store: &BenchStore,
    id: &str,
    rx: std::sync::mpsc::Receiver<(usize, SampleResult)>,
    mut done: usize,
    total: usize,
    token: &tokio_util::sync::CancellationToken,
    publish: &(dyn Fn(&BenchNews) + Send + Sync),
) -> Option<String> {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let rows: Vec<StoredSample> = batch
            .iter()
            .map(|(ord, result)| StoredSample {
                ord: *ord,
                result: result.clone(),
            })
            .collect();
        if let Err(e) = store.record_samples(id, &rows) {
            token.cancel();
            return Some(format!("the suite run stopped: {e}"));
        }
        for (index, r) in batch {
            done += 1;
            publish(&BenchNews::Sample {
                sample: SampleNews {
                    index,
                    id: r.id,
                    score: r.score,
                    reason: r.reason,
                    failed: r.error.is_some(),
                    done,
                    total,
                },
            });
        }
    }
    None
}

/// A suite run not yet finished in the store: dropped before its end was kept (a panic, a
/// runtime closing), it marks the run cancelled over what was kept, so `--resume` finds it.
struct Unfinished {
    store: Arc<BenchStore>,
    run: String,
    /// Samples in all; 0 once the run's end was kept.
    total: usize,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.total == 0 {
            return;
        }
        let kept: Vec<SampleResult> = self
            .store
            .suite_samples(&self.run)
            .map(|v| {
                v.into_iter()
                    .filter(|s| s.ord < self.total)
                    .map(|s| s.result)
                    .collect()
            })
            .unwrap_or_default();
        let _ = self.store.finish_suite_run(
            &self.run,
            RunStatus::Cancelled,
            &suite::summarize(&kept, self.total),
        );
    }
}
