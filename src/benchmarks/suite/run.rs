//! Running a suite: one execution per sample through the core (actor `benchmark`, unattended,
//! local, priority low, the sample's tools or none), a bounded number in flight, each scored
//! as it finishes; then the mean with its 95 % interval and one `BENCHMARK` audit entry.
//!
//! Cancelling the token stops submitting and cancels what runs (in the scheduler, so each is
//! audited as cancelled); what finished is reported, and the report says it is incomplete.

use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::format::{Sample, Suite};
use crate::benchmarks::ACTOR;
use crate::benchmarks::draw::fixed;
use crate::benchmarks::stats::{self, Estimate};
use crate::config::ToolSelection;
use crate::core::{ExecutionRequest, ExecutionResult, VeyraCore};
use crate::error::VeyraError;
use crate::events::{ExecutionId, Priority};
use crate::governance::{AuditEventType, AuditRecord, summarize_input};

/// One sample's result.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SampleResult {
    /// The sample's id.
    pub id: String,
    /// Its score in `[0, 1]`; 0 when the execution failed.
    pub score: f64,
    /// The scorer's reason, or why the execution failed.
    pub reason: String,
    /// The answer field read from the reply, when it had an answer line.
    pub answer: Option<String>,
    /// The whole reply (the configured key removed).
    pub output: String,
    /// The execution's error, when it failed.
    pub error: Option<String>,
    /// Time from submission to the end, ms.
    pub latency_ms: u64,
}

/// The mean score of what finished, with its interval.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SuiteSummary {
    /// Samples finished (failed executions included, at 0).
    pub n: usize,
    /// Samples in the suite (as run: `--count` may take the first few).
    pub total: usize,
    /// Mean, SE and 95 % interval.
    pub score: Estimate,
    /// Executions that failed.
    pub failed: usize,
}

/// A suite's run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuiteReport {
    /// The suite's name.
    pub suite: String,
    /// Its version.
    pub version: String,
    /// Backend that answered.
    pub backend: String,
    /// Model that answered.
    pub model: String,
    /// True when every sample finished (not cancelled).
    pub complete: bool,
    /// Per sample, in file order (only those that finished).
    pub samples: Vec<SampleResult>,
    /// The summary.
    pub summary: SuiteSummary,
}

/// The request a sample becomes, as a family's task does (`runner::request_for`): actor
/// `benchmark`, unattended, local, priority low, its tools or none.
pub fn request_for(sample: &Sample, system: Option<&str>) -> ExecutionRequest {
    let mut request = ExecutionRequest::new(sample.prompt.clone())
        .priority(Priority::Low)
        .tools(if sample.tools.is_empty() {
            ToolSelection::None
        } else {
            ToolSelection::Only(sample.tools.clone())
        })
        .unattended();
    request.system = system.map(str::to_string);
    request.actor = ACTOR.to_string();
    request.local = true;
    request
}

/// Runs `suite`'s first `limit` samples (all when `None`) through `core`, at most `in_flight`
/// submitted at once; `progress` hears of each as it finishes. Cancelling `cancel` ends the
/// run early with what finished.
pub async fn run_suite(
    core: &VeyraCore,
    suite: &Suite,
    limit: Option<usize>,
    in_flight: usize,
    cancel: &CancellationToken,
    progress: &mut (dyn FnMut(&SampleResult) + Send),
) -> Result<SuiteReport, VeyraError> {
    let mut each = |_: usize, r: &SampleResult| progress(r);
    let run = SuiteRun::default();
    resume_suite(core, suite, limit, in_flight, cancel, run, &mut each).await
}

/// Which stored run a suite's run is, and what it holds already.
#[derive(Debug, Default)]
pub struct SuiteRun {
    /// The run's id in the benchmark store, when it is kept there: its `BENCHMARK` entry names
    /// it.
    pub id: Option<String>,
    /// Results it has already (a resumed run), each with its sample's index in the suite.
    pub earlier: Vec<(usize, SampleResult)>,
    /// The client of a serving runtime that asked for the run, recorded on every sample's
    /// entries and the run's `BENCHMARK` entry.
    pub caller: Option<crate::core::Caller>,
}

/// [`run_suite`] for a stored run, which may have results already (a resumed run): those
/// samples are not run again, and the report and its `BENCHMARK` entry (which names the run,
/// and how many samples it had before) cover them too. `progress` hears of each new result
/// with its index.
pub async fn resume_suite(
    core: &VeyraCore,
    suite: &Suite,
    limit: Option<usize>,
    in_flight: usize,
    cancel: &CancellationToken,
    run: SuiteRun,
    progress: &mut (dyn FnMut(usize, &SampleResult) + Send),
) -> Result<SuiteReport, VeyraError> {
    let SuiteRun {
        id: run_id,
        earlier,
        caller,
    } = run;
    let samples = &suite.samples[..limit.unwrap_or(usize::MAX).min(suite.samples.len())];
    check_tools(core, suite, samples)?;
    // An earlier result counts only for the sample at its index with its id.
    let earlier: Vec<(usize, SampleResult)> = earlier
        .into_iter()
        .filter(|(i, r)| samples.get(*i).is_some_and(|s| s.id == r.id))
        .collect::<std::collections::BTreeMap<usize, SampleResult>>()
        .into_iter()
        .collect();
    let done: std::collections::HashSet<usize> = earlier.iter().map(|(i, _)| *i).collect();
    let had = earlier.len();
    let key = core.config().model.api_key().ok().flatten();
    // Every sample goes to the backend and model current as the run starts.
    let (backend, model) = (core.backend_name(), core.model_name());
    let mut queue = samples
        .iter()
        .enumerate()
        .filter(|(i, _)| !done.contains(i));
    let mut running = FuturesUnordered::new();
    let mut finished: Vec<(usize, SampleResult)> = earlier;
    loop {
        while running.len() < in_flight.max(1) && !cancel.is_cancelled() {
            let Some((index, sample)) = queue.next() else {
                break;
            };
            let mut request = request_for(sample, suite.system.as_deref());
            request.backend = Some(backend.clone());
            request.model = Some(model.clone());
            request.caller = caller.clone();
            running.push(solve(core, index, request, cancel));
        }
        let Some((index, latency_ms, result)) = running.next().await else {
            break;
        };
        // Items cancelled by the token are not results.
        if matches!(result, Err(VeyraError::Cancelled(_))) && cancel.is_cancelled() {
            continue;
        }
        let Some(sample) = samples.get(index) else {
            continue;
        };
        let mut scored = score(sample, result, latency_ms);
        if let std::borrow::Cow::Owned(clean) =
            crate::config::redact_key(&scored.output, key.as_ref())
        {
            scored.output = clean;
        }
        progress(index, &scored);
        finished.push((index, scored));
    }
    finished.sort_by_key(|(i, _)| *i);
    let results: Vec<SampleResult> = finished.into_iter().map(|(_, r)| r).collect();
    let summary = summarize(&results, samples.len());
    let report = SuiteReport {
        suite: suite.name.clone(),
        version: suite.version.clone(),
        backend,
        model,
        complete: results.len() == samples.len(),
        samples: results,
        summary,
    };
    audit(
        core,
        suite,
        &report,
        run_id.as_deref(),
        had,
        caller.as_ref(),
    )
    .await?;
    Ok(report)
}

/// Refuses (exit 2) a sample of the first `limit` offering a tool the core does not have (or
/// has off), before anything runs (or is stored).
pub fn check(core: &VeyraCore, suite: &Suite, limit: Option<usize>) -> Result<(), VeyraError> {
    let samples = &suite.samples[..limit.unwrap_or(usize::MAX).min(suite.samples.len())];
    check_tools(core, suite, samples)
}

fn check_tools(core: &VeyraCore, suite: &Suite, samples: &[Sample]) -> Result<(), VeyraError> {
    for sample in samples {
        for tool in &sample.tools {
            if let Err(e) = core.tools().describe(tool) {
                return Err(VeyraError::Usage(
                    crate::sanitize::sanitize_line(&format!(
                        "suite {}: sample id '{}': field `tools`: {e}",
                        suite.source.display(),
                        crate::sanitize::quote(&sample.id)
                    ))
                    .into_owned(),
                ));
            }
        }
    }
    Ok(())
}

/// Runs one request under an id of its own; on cancellation, cancels it in the scheduler and
/// waits for how it ended.
async fn solve(
    core: &VeyraCore,
    index: usize,
    request: ExecutionRequest,
    cancel: &CancellationToken,
) -> (usize, u64, Result<ExecutionResult, VeyraError>) {
    let started = Instant::now();
    let id = ExecutionId::new();
    let execution = core.execute_as(id, request);
    tokio::pin!(execution);
    let result = tokio::select! {
        // The execution first: once polled it is submitted, so a cancel can always reach it
        // (and never stops one the scheduler has not seen, which would then run to its end).
        biased;
        r = &mut execution => r,
        _ = cancel.cancelled() => {
            // Cancelled in the scheduler, then heard out: an execution that had already
            // answered keeps its result (its model call is never made again on resume).
            let _ = core.cancel(id);
            execution.await
        }
    };
    let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    (index, latency, result)
}

/// Scores a finished sample; a failed execution scores 0 with its error.
pub fn score(
    sample: &Sample,
    result: Result<ExecutionResult, VeyraError>,
    latency_ms: u64,
) -> SampleResult {
    match result {
        Ok(r) => {
            let verdict = sample
                .scorer
                .score(&r.text, &sample.targets, &sample.choices);
            SampleResult {
                id: sample.id.clone(),
                score: verdict.score,
                reason: verdict.reason,
                answer: verdict.answer,
                output: r.text,
                error: None,
                latency_ms,
            }
        }
        Err(e) => SampleResult {
            id: sample.id.clone(),
            score: 0.0,
            reason: "the execution failed".into(),
            answer: None,
            output: String::new(),
            error: Some(e.to_string()),
            latency_ms,
        },
    }
}

/// The summary of `results` out of `total` samples: the mean with its 95 % interval by the
/// rule [`stats`] applies to a family that is not clustered ([`stats::scores_estimate`]).
pub fn summarize(results: &[SampleResult], total: usize) -> SuiteSummary {
    let values: Vec<f64> = results.iter().map(|r| r.score).collect();
    let n = values.len();
    let score = stats::scores_estimate(&values);
    SuiteSummary {
        n,
        total,
        score,
        failed: results.iter().filter(|r| r.error.is_some()).count(),
    }
}

/// The run's one `BENCHMARK` audit entry (when audit is on): the suite, its file's digest,
/// the backend and the summary.
async fn audit(
    core: &VeyraCore,
    suite: &Suite,
    report: &SuiteReport,
    run_id: Option<&str>,
    had: usize,
    caller: Option<&crate::core::Caller>,
) -> Result<(), VeyraError> {
    use crate::core::WithClient as _;
    let Some(trail) = core.audit() else {
        return Ok(());
    };
    let s = &report.summary;
    trail
        .record(
            AuditRecord {
                event_type: AuditEventType::Benchmark,
                actor: ACTOR.into(),
                action: if had > 0 { "resume_suite" } else { "suite" }.into(),
                resource: format!("suite:{}@{}", suite.name, suite.version),
                // A run whose every execution failed measured nothing: not a success.
                outcome: if !report.complete {
                    "cancelled"
                } else if s.n > 0 && s.failed == s.n {
                    "failure"
                } else {
                    "success"
                }
                .into(),
                input_summary: summarize_input(&format!(
                    "{} sha256:{}",
                    suite.source.display(),
                    suite.digest
                )),
                metadata: json!({
                    "suite": suite.name,
                    "version": suite.version,
                    "run_id": run_id,
                    "finished_before": had,
                    "finished_now": s.n.saturating_sub(had),
                    "backend": report.backend,
                    "model": report.model,
                    "file_sha256": suite.digest,
                    "n": s.n,
                    "total": s.total,
                    "failed": s.failed,
                    "mean": (s.n > 0).then(|| fixed(s.score.mean, 4)),
                    "ci_low": s.score.ci_low.map(|v| fixed(v, 4)),
                    "ci_high": s.score.ci_high.map(|v| fixed(v, 4)),
                }),
            }
            .with_client(caller),
        )
        .await?;
    Ok(())
}
