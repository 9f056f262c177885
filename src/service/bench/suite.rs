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
use crate::benchmarks::store::{RunStatus, StoredSample, SuiteRunInfo};
use crate::benchmarks::suite::{self, SampleResult, Suite, SuiteRun, SuiteSummary};
use crate::core::Caller;

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

impl BenchHost {
    /// Starts a run of `job`'s suite (or finishes its stored run), as [`BenchHost::start`]
    /// does a family run: `by` asked (`None`: the hosting process's operator); `headless` for
    /// a run whose asker watches only it. Every sample is kept in `bench.db` as it finishes;
    /// a store that fails stops the run (what is not kept would be run again). An error says
    /// why nothing started.
    pub fn start_suite(
        &self,
        job: SuiteJob,
        by: Option<Caller>,
        headless: bool,
    ) -> Result<Began, String> {
        let (mut current, number, who) = self.free_slot(by.as_ref())?;
        // A new run that cannot run is refused before the store is even made.
        if job.resume.is_none() {
            suite::run::check(&self.core, &job.suite, job.count).map_err(|e| e.to_string())?;
        }
        let store = self.store()?;
        let (info, earlier) = suite::kept::open_run(
            &store,
            &self.core,
            &job.suite,
            &job.source,
            &job.map,
            job.resume.as_deref(),
            job.count,
        )
        .map_err(|e| e.to_string())?;
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
            let mut lost: Option<String> = None;
            let mut done = earlier.len();
            let id = info.id.clone();
            let mut progress = |index: usize, r: &SampleResult| {
                // After a cassette stopped the run, what fails is the cassette's miss, not the
                // model: nothing from then on is kept as a score.
                if tripwire.as_ref().is_some_and(|t| t.tripped().is_some()) {
                    return;
                }
                if lost.is_some() {
                    return;
                }
                let kept = store.record_samples(
                    &id,
                    &[StoredSample {
                        ord: index,
                        result: r.clone(),
                    }],
                );
                if let Err(e) = kept {
                    lost = Some(format!("the suite run stopped: {e}"));
                    token.cancel();
                    return;
                }
                done += 1;
                publish(&BenchNews::Sample {
                    sample: SampleNews {
                        index,
                        id: r.id.clone(),
                        score: r.score,
                        reason: r.reason.clone(),
                        failed: r.error.is_some(),
                        done,
                        total,
                    },
                });
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
            let tripped = tripwire.as_ref().is_some_and(|t| t.tripped().is_some());
            let complete = matches!(&report, Ok(r) if r.complete) && lost.is_none() && !tripped;
            // Summed over what the store kept: a run that stopped is left cancelled (resumable),
            // never `running`.
            let kept = suite::kept::stored_report(&store, &info);
            let summary = match (&kept, &report) {
                (Ok(kept), _) => kept.summary.clone(),
                (Err(_), Ok(report)) => report.summary.clone(),
                (Err(_), Err(_)) => suite::summarize(&[], total),
            };
            let status = if complete {
                RunStatus::Complete
            } else {
                RunStatus::Cancelled
            };
            let finished = store.finish_suite_run(&info.id, status, &summary);
            let error = match (report, lost, finished) {
                (_, Some(lost), _) => Some(lost),
                (Err(e), None, _) => Some(e.to_string()),
                (Ok(_), None, Err(e)) => Some(format!("the suite run's end was not kept: {e}")),
                (Ok(_), None, Ok(())) => None,
            };
            let run = store
                .suite_run(&info.id)
                .ok()
                .flatten()
                .map_or(info, |(run, _)| run);
            BenchNews::Ended {
                run: None,
                summary: None,
                error,
                suite: Some(Box::new(SuiteEnded { run, summary })),
            }
        })
    }
}
