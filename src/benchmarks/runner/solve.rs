//! One item of a run: the request a task becomes, how it is solved through the core (in its
//! scratch directory, or turn by turn for a dialogue), what it leaves on the record (its tool
//! steps, its `TOOL_INVOCATION` entries, its files), and how it is scored.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::benchmarks::family;
use crate::benchmarks::framework::{
    ACTOR, AuditedCall, BenchTask, Outcome, ScratchFile, TaskTools, ToolStep,
};
use crate::benchmarks::scratch::{self, LazyScratch, Scratch, WORKDIR};
use crate::benchmarks::store::TaskResult;
use crate::config::ToolSelection;
use crate::core::{BeforeTools, ExecutionRequest, ExecutionResult, VeyraCore};
use crate::error::VeyraError;
use crate::events::{Event, ExecutionId, Priority};
use crate::governance::{AuditEventType, AuditFilter};

/// One finished (or failed) item, before scoring.
pub(super) struct Solved {
    pub(super) index: usize,
    pub(super) epoch: u32,
    pub(super) latency_ms: u64,
    pub(super) result: Result<Answer, VeyraError>,
    pub(super) record: Record,
}

/// What a solved item answered, wherever it ran.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) text: String,
    pub(super) tool_steps: u32,
    pub(super) tokens_in: u64,
    pub(super) tokens_out: u64,
}

impl From<ExecutionResult> for Answer {
    fn from(r: ExecutionResult) -> Answer {
        Answer {
            text: r.text,
            tool_steps: r.tool_steps,
            tokens_in: r.usage.input,
            tokens_out: r.usage.output,
        }
    }
}

/// What the item left on the record besides its answer (see [`crate::benchmarks::record`]).
#[derive(Debug, Default)]
pub(super) struct Record {
    pub(super) steps: Vec<ToolStep>,
    pub(super) audit: Option<Vec<AuditedCall>>,
    pub(super) files: Option<Vec<ScratchFile>>,
    pub(super) workdir: String,
}

/// The request a task becomes: actor `benchmark`, unattended, local (it measures the model,
/// not the simulated link), the task's tools.
pub fn request_for(task: &BenchTask) -> ExecutionRequest {
    let mut request = ExecutionRequest::new(task.prompt.clone())
        .system(task.system.clone())
        .priority(Priority::Low)
        .tools(match &task.tools {
            TaskTools::None => ToolSelection::None,
            TaskTools::Only(names) => ToolSelection::Only(names.clone()),
        })
        .unattended();
    request.actor = ACTOR.to_string();
    request.local = true;
    request
}

/// The backend and model a run's every item goes to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Registered backend name.
    pub backend: String,
    /// Model.
    pub model: String,
    /// The client of a serving runtime that asked for the run, if one did.
    pub caller: Option<crate::core::Caller>,
    /// Work before each execution's first tool call, ahead of the item's own (a fleet
    /// worker's mark that the item's tools act).
    pub before_tools: Option<BeforeTools>,
}

impl Target {
    /// Sends `request` to this backend and model.
    pub fn aim(&self, request: &mut ExecutionRequest) {
        request.backend = Some(self.backend.clone());
        request.model = Some(self.model.clone());
        request.caller.clone_from(&self.caller);
        if let Some(hook) = &self.before_tools {
            request.before_tools = Some(match request.before_tools.take() {
                Some(own) => hook.clone().then(own),
                None => hook.clone(),
            });
        }
    }
}

/// Runs one item through the core (a dialogue turn by turn) on `target`; on cancellation,
/// cancels the running execution in the scheduler.
pub(super) async fn solve(
    core: &VeyraCore,
    task: &BenchTask,
    index: usize,
    epoch: u32,
    target: &Target,
    cancel: &CancellationToken,
) -> Solved {
    let started = Instant::now();
    let mut record = Record::default();
    let result = match &task.dialogue {
        Some(dialogue) => {
            crate::benchmarks::dialogue::converse(core, task, dialogue, target, cancel).await
        }
        None => solve_in_scratch(core, task, epoch, target, cancel, &mut record).await,
    };
    Solved {
        index,
        epoch,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        result: result.map(Answer::from),
        record,
    }
}

/// [`solve`] with the task's scratch directory, when it has one: made before its first tool
/// call runs ([`LazyScratch`]), read back and removed after.
async fn solve_in_scratch(
    core: &VeyraCore,
    task: &BenchTask,
    epoch: u32,
    target: &Target,
    cancel: &CancellationToken,
    record: &mut Record,
) -> Result<ExecutionResult, VeyraError> {
    let mut request = request_for(task);
    target.aim(&mut request);
    let scratch = match scratch::task_files(task) {
        None => None,
        Some(files) => {
            let files = files.map_err(|e| VeyraError::Runtime(format!("task {}: {e}", task.id)))?;
            let plan = Scratch::plan(&task.id, epoch, files).map_err(VeyraError::Runtime)?;
            request.prompt = request.prompt.replace(WORKDIR, plan.rel());
            record.workdir = plan.rel().to_string();
            let lazy = Arc::new(LazyScratch::new(core.config().tools.workspace_dir(), plan));
            let hook = Arc::clone(&lazy);
            let scratch = BeforeTools::new(move || hook.ensure());
            // After the target's own work (which `aim` set), never instead of it.
            request.before_tools = Some(match request.before_tools.take() {
                Some(first) => first.then(scratch),
                None => scratch,
            });
            Some(lazy)
        }
    };
    let result = run_recorded(core, request, cancel, record).await;
    if let Some(lazy) = scratch {
        // Closing a directory never made costs no disk work; a made one is read back and
        // removed off the async threads.
        let closed = match lazy.close_if_pending() {
            Some(closed) => closed,
            None => tokio::task::spawn_blocking(move || lazy.close())
                .await
                .map_err(|e| VeyraError::Runtime(format!("closing a scratch directory: {e}")))?,
        };
        if let Some(e) = &closed.not_removed {
            tracing::warn!(error = %e, task = %task.id, "a scratch directory was not removed");
        }
        record.files = Some(closed.files);
    }
    result
}

/// Runs `request`, keeping its tool steps and, once it has ended, its `TOOL_INVOCATION`
/// audit entries.
async fn run_recorded(
    core: &VeyraCore,
    request: ExecutionRequest,
    cancel: &CancellationToken,
    record: &mut Record,
) -> Result<ExecutionResult, VeyraError> {
    // Without a selection the request gets the configured offer.
    let offers_tools = !matches!(
        request.tools.as_ref().unwrap_or(&core.config().tools.offer),
        ToolSelection::None
    );
    // Where the trail stood when the execution started: its entries are read from there on,
    // not from the start of the log (which grows with every task of a run).
    let from = core.audit().map_or(0, |t| t.len());
    if !offers_tools {
        // No tool, no step to keep: only the final state is needed, not every token's event.
        let id = ExecutionId::new();
        return tokio::select! {
            r = core.execute_as(id, request) => r,
            _ = cancel.cancelled() => {
                let _ = core.cancel(id);
                Err(VeyraError::Cancelled("the benchmark run was cancelled".into()))
            }
        };
    }
    // Only the agent steps are kept besides the final state: no token is forwarded.
    let id = ExecutionId::new();
    let result = tokio::select! {
        (result, steps) = core.execute_with_steps(id, request) => {
            record.steps = steps
                .into_iter()
                .filter_map(|event| match event {
                    Event::AgentStep { step, tool, arguments, outcome, summary, audit_seq, .. } => {
                        Some(ToolStep { step, tool, arguments, outcome, summary, audit_seq })
                    }
                    _ => None,
                })
                .collect();
            result
        }
        _ = cancel.cancelled() => {
            // The task may have ended meanwhile; then there is nothing to cancel.
            let _ = core.cancel(id);
            return Err(VeyraError::Cancelled("the benchmark run was cancelled".into()));
        }
    };
    if core.audit().is_some() {
        // Every call the model makes, run or refused, is one agent step: all of them kept by
        // the core for this execution, and counted in the result. With none, the
        // trail holds no call of this execution, and reading it would only cost a thread hop.
        let called = !record.steps.is_empty() || result.as_ref().is_ok_and(|r| r.tool_steps > 0);
        record.audit = Some(if called {
            audited_calls(core, id, from).await?
        } else {
            Vec::new()
        });
    }
    result
}

/// The `TOOL_INVOCATION` entries whose `parent_execution` is `id`, read from the trail from
/// entry `from` on (the execution's entries all come after it started), off the async threads
/// (a durable store is read from disk).
async fn audited_calls(
    core: &VeyraCore,
    id: ExecutionId,
    from: u64,
) -> Result<Vec<AuditedCall>, VeyraError> {
    let core = core.clone();
    let parent = id.to_string();
    let entries = tokio::task::spawn_blocking(move || {
        let filter = AuditFilter {
            event_type: Some(AuditEventType::ToolInvocation),
            ..AuditFilter::default()
        };
        match core.audit() {
            Some(trail) => trail.query_from(from, &filter),
            None => Ok(Vec::new()),
        }
    })
    .await
    .map_err(|e| VeyraError::Runtime(format!("reading the audit trail: {e}")))?
    .map_err(|e| VeyraError::Runtime(format!("reading the audit trail: {e}")))?;
    Ok(entries
        .into_iter()
        .filter(|e| e.metadata["parent_execution"].as_str() == Some(parent.as_str()))
        .map(|e| AuditedCall {
            seq: e.seq,
            tool: e.metadata["tool"].as_str().unwrap_or_default().to_string(),
            outcome: e.outcome.clone(),
            step: e.metadata["step"]
                .as_u64()
                .and_then(|s| u32::try_from(s).ok()),
            path: e.metadata["undo"]["path"].as_str().map(str::to_string),
            summary: e.metadata["summary"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        })
        .collect())
}

/// Scores a finished item; it is consumed, so what the model left (files above all) moves
/// into the scorer's [`Outcome`] rather than being copied.
pub(super) fn score(task: &BenchTask, solved: Solved) -> TaskResult {
    let finished_at = Utc::now();
    match solved.result {
        Ok(r) => {
            let outcome = Outcome {
                text: r.text,
                tool_calls: r.tool_steps,
                steps: solved.record.steps,
                audit: solved.record.audit,
                files: solved.record.files,
                workdir: solved.record.workdir,
            };
            let s = family(task.family).score(task, &outcome);
            TaskResult {
                task_id: task.id.clone(),
                epoch: solved.epoch,
                output: outcome.text,
                score: s.value,
                reason: s.reason,
                error: None,
                latency_ms: solved.latency_ms,
                tokens_in: r.tokens_in,
                tokens_out: r.tokens_out,
                finished_at,
            }
        }
        Err(e) => TaskResult {
            task_id: task.id.clone(),
            epoch: solved.epoch,
            output: String::new(),
            score: 0.0,
            reason: "the execution failed".into(),
            error: Some(e.to_string()),
            latency_ms: solved.latency_ms,
            tokens_in: 0,
            tokens_out: 0,
            finished_at,
        },
    }
}
