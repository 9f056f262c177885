//! One attempt of an execution: the `execute` task handler and its agent loop.
//!
//! The prompt passes the gate once (policy `execute`, the safety boundary, a confirmation if
//! asked for). Then the model is called with the conversation and the tools it is offered;
//! while it answers with tool calls, each call is taken in order as one *step*: a call with
//! malformed arguments or naming a tool it was not offered is answered with an error without
//! running anything; any other goes through [`CoreInner::invoke_tool`] as actor `agent` (the
//! whole gate again, per call). Every step is a `TOOL_INVOCATION` audit entry and an
//! [`Event::AgentStep`]; its result, or its refusal or failure as a tool error, goes back to
//! the model, which may recover. The loop ends with a final answer, after `tools.max_steps`
//! tool calls (finish reason `max_steps`), or when the task's tokens over all model calls
//! reach `runtime.max_tokens_per_task` (finish reason `token_budget`; each call's
//! `max_tokens` is also cut to what is left). A request's [`BeforeTools`] hook runs once,
//! just before the first call that would reach a tool; if it fails, that call is recorded as
//! rejected and the attempt ends as a failure (error kind `before_tools`, not retried). One
//! `EXECUTION` entry closes the attempt.

use std::collections::HashMap;
use std::sync::Weak;

use chrono::Utc;
use futures_util::StreamExt;
use tracing::Instrument;

use super::tools::{Within, describe_arguments};
use super::{BeforeTools, CoreInner, EXECUTE, ExecutionRequest, ExecutionResult, Passage};
use crate::error::VeyraError;
use crate::events::{Event, EventSink, ExecutionId, FinishReason, TokenUsage};
use crate::governance::policy::{ContextValue, PolicyRequest, Resource};
use crate::governance::{AuditEventType, AuditRecord, summarize_input};
use crate::models::{
    Message, ModelBackend, ModelError, ModelErrorKind, ModelRequest, StreamChunk, ToolCall,
    ToolResult,
};
use crate::runtime::scheduler::{TaskContext, TaskError, TaskHandler};

/// An info line for an attended execution, a debug line for an unattended one (a benchmark's
/// thousands of tasks would bury the operator's own lines and fill the log).
macro_rules! progress {
    ($unattended:expr, $($arg:tt)+) => {
        if $unattended {
            tracing::debug!($($arg)+)
        } else {
            tracing::info!($($arg)+)
        }
    };
}

/// The error kind of an attempt whose preparation before tool calls failed.
const BEFORE_TOOLS: &str = "before_tools";

/// Characters of a tool result sent back to the model; longer results are cut, saying so.
const RESULT_CHARS: usize = 64 * 1024;

/// Runs `execute` tasks: one attempt of a prompt through the backend.
pub(super) struct ExecuteHandler {
    pub(super) core: Weak<CoreInner>,
}

/// How the model part of an attempt ended.
enum Answer {
    Done(FinishReason, TokenUsage),
    Failed(ModelError),
    Cancelled,
    /// The attempt cannot go on for a reason of Veyra's, not the model's (the preparation
    /// before tool calls failed): recorded as a failure, not retried.
    Aborted(String),
}

#[async_trait::async_trait]
impl TaskHandler for ExecuteHandler {
    async fn run(&self, task: TaskContext) -> Result<(), TaskError> {
        let Some(core) = self.core.upgrade() else {
            return Err(TaskError::permanent("shutdown", "the core has shut down"));
        };
        let Some(request) = task.payload.downcast_ref::<ExecutionRequest>().cloned() else {
            return Err(TaskError::permanent(
                "bad_request",
                "an execute task was submitted without an ExecutionRequest payload",
            ));
        };
        let span =
            tracing::info_span!("execution", execution_id = %task.id, attempt = task.attempt);
        let caller = request.caller.clone();
        super::caller::as_caller(caller, run_execution(&core, task, request).instrument(span)).await
    }
}

/// One attempt: the gate, the agent loop, the attempt's `EXECUTION` entry, then the answer.
async fn run_execution(
    core: &CoreInner,
    task: TaskContext,
    request: ExecutionRequest,
) -> Result<(), TaskError> {
    let ExecutionRequest {
        prompt,
        system,
        priority: _,
        backend,
        model,
        actor,
        tools,
        unattended,
        local: _,
        caller: _,
        before_tools,
    } = request;
    let backend = core
        .resolve_backend(backend.as_deref())
        .map_err(|e| TaskError::permanent(e.kind.name(), e.to_string()))?;
    let backend_name = backend.name().to_string();
    offer::wait_for_servers(core, tools.as_ref(), &task.cancel).await;
    let (model_request, tool_names) = offer::model_request(core, model, system, prompt, tools);
    let policy_request = policy_request(core, &task, &actor, &backend_name, &model_request);
    let operation = format!("execute:{backend_name}");
    core.admit(
        &Passage {
            policy: vec![policy_request],
            operations: &[EXECUTE, &operation],
            reversible: true,
            confirm: false,
            actor: &actor,
            id: task.id,
            ask: task.attempt == 1,
            detail: None,
            scopable: false,
            arguments: None,
            unattended,
        },
        &task.cancel,
    )
    .await?;
    progress!(unattended, backend = %backend_name, model = %model_request.model, priority = %task.priority, tools = model_request.tools.len(), "execution started");
    let prompt_summary = summarize_input(model_request.prompt());
    let model = model_request.model.clone();
    let started = tokio::time::Instant::now();
    let mut agent = Agent {
        core,
        task: &task,
        backend: backend.as_ref(),
        request: model_request,
        tool_names,
        text: String::new(),
        steps: 0,
        called: Vec::new(),
        usage: TokenUsage::default(),
        unattended,
        before_tools,
        aborted: None,
    };
    let answer = agent.run().await?;
    let Agent {
        text,
        steps,
        called,
        ..
    } = agent;
    let attempt = Attempt {
        actor,
        backend: backend_name,
        model,
        prompt_summary,
        text,
        steps,
        called,
        latency: started.elapsed(),
        unattended,
    };
    let audit_seq = record_attempt(core, &task, &attempt, &answer).await?;
    finish(core, &task, attempt, answer, audit_seq)
}

/// What policy is asked before the attempt: may `actor` run `execute` on this backend, with
/// the task's priority, the model and the prompt's length as context.
fn policy_request(
    core: &CoreInner,
    task: &TaskContext,
    actor: &str,
    backend_name: &str,
    model_request: &ModelRequest,
) -> PolicyRequest {
    PolicyRequest::new(
        actor,
        EXECUTE,
        Resource::backend(backend_name),
        core.link.preset(),
    )
    .with("priority", ContextValue::Str(task.priority.name().into()))
    .with("model", ContextValue::Str(model_request.model.clone()))
    .with(
        "prompt_chars",
        ContextValue::Long(
            i64::try_from(model_request.prompt().chars().count()).unwrap_or(i64::MAX),
        ),
    )
}

/// What one attempt did, once its agent loop has ended: for its `EXECUTION` entry and its
/// result.
struct Attempt {
    actor: String,
    backend: String,
    model: String,
    /// The prompt as the audit trail keeps it ([`summarize_input`]).
    prompt_summary: String,
    /// All text the model streamed.
    text: String,
    steps: u32,
    /// Names of the tools called, in order (sanitized).
    called: Vec<String>,
    latency: std::time::Duration,
    unattended: bool,
}

impl Attempt {
    fn latency_ms(&self) -> u64 {
        u64::try_from(self.latency.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Records the attempt's one `EXECUTION` audit entry; its sequence number, when audit is on.
async fn record_attempt(
    core: &CoreInner,
    task: &TaskContext,
    attempt: &Attempt,
    answer: &Answer,
) -> Result<Option<u64>, TaskError> {
    let (outcome, mut metadata) = match answer {
        Answer::Done(finish_reason, usage) => (
            "success",
            serde_json::json!({
                "finish_reason": finish_reason,
                "tokens_in": usage.input,
                "tokens_out": usage.output,
            }),
        ),
        Answer::Failed(e) => {
            let mut m = serde_json::json!({ "error_kind": e.kind.name() });
            if let Some(id) = &e.request_id {
                m["request_id"] = id.as_str().into();
            }
            ("failure", m)
        }
        Answer::Cancelled => ("cancelled", serde_json::json!({})),
        Answer::Aborted(_) => ("failure", serde_json::json!({ "error_kind": BEFORE_TOOLS })),
    };
    if let serde_json::Value::Object(map) = &mut metadata {
        map.insert("execution_id".into(), task.id.to_string().into());
        map.insert("attempt".into(), task.attempt.into());
        map.insert("backend".into(), attempt.backend.clone().into());
        map.insert("model".into(), attempt.model.clone().into());
        map.insert("priority".into(), task.priority.name().into());
        map.insert("latency_ms".into(), attempt.latency_ms().into());
        if attempt.steps > 0 {
            map.insert("tool_steps".into(), attempt.steps.into());
            map.insert("tool_calls".into(), attempt.called.clone().into());
        }
    }
    let entry = core
        .record_for_task(
            AuditRecord {
                event_type: AuditEventType::Execution,
                actor: attempt.actor.clone(),
                action: "execute".into(),
                resource: format!("backend:{}", attempt.backend),
                outcome: outcome.into(),
                input_summary: attempt.prompt_summary.clone(),
                metadata,
            },
            Some(task.id),
            "this execution",
        )
        .await?;
    Ok(entry.map(|entry| entry.seq))
}

/// Ends the attempt as its answer says: a done answer is kept for the caller and published
/// as [`Event::ExecutionFinished`]; anything else is the task's error.
fn finish(
    core: &CoreInner,
    task: &TaskContext,
    attempt: Attempt,
    answer: Answer,
    audit_seq: Option<u64>,
) -> Result<(), TaskError> {
    let latency_ms = attempt.latency_ms();
    match answer {
        Answer::Done(finish_reason, usage) => {
            let steps = attempt.steps;
            core.emitter.keep_answer(ExecutionResult {
                id: task.id,
                text: attempt.text,
                backend: attempt.backend,
                model: attempt.model,
                finish_reason: finish_reason.clone(),
                usage,
                latency: attempt.latency,
                audit_seq,
                tool_steps: steps,
            });
            progress!(
                attempt.unattended,
                tokens_in = usage.input,
                tokens_out = usage.output,
                latency_ms,
                steps,
                "execution finished"
            );
            core.emitter.emit(Event::ExecutionFinished {
                id: task.id,
                usage,
                finish_reason,
                latency_ms,
                at: Utc::now(),
            });
            Ok(())
        }
        Answer::Failed(e) => {
            tracing::warn!(error = %e, "execution failed");
            // Retryable in kind only: whether this attempt may run again, after what it
            // streamed or did, is the scheduler's one rule (`runtime::attempt`), fed by the
            // effects marked on `task.effects`. A stream cut midway is not retried at all.
            let retryable = e.kind.is_retryable() && !e.mid_stream;
            Err(TaskError {
                kind: e.kind.name().to_string(),
                message: e.to_string(),
                retryable,
            })
        }
        Answer::Aborted(reason) => {
            tracing::warn!(reason = %reason, "execution aborted");
            Err(TaskError::permanent(BEFORE_TOOLS, reason))
        }
        Answer::Cancelled => {
            tracing::info!("execution cancelled");
            Err(TaskError::permanent(
                "cancelled",
                "cancelled by the operator",
            ))
        }
    }
}

/// One model turn: what it said and asked for.
struct Turn {
    calls: Vec<ToolCall>,
    text: String,
    finish: FinishReason,
    usage: TokenUsage,
}

/// The agent loop of one attempt (see the module docs).
struct Agent<'a> {
    core: &'a CoreInner,
    task: &'a TaskContext,
    backend: &'a dyn ModelBackend,
    /// The conversation so far, with the tools offered.
    request: ModelRequest,
    /// The registry name of each tool offered, by the name the model was given.
    tool_names: HashMap<String, String>,
    /// All text the model streamed, over every turn.
    text: String,
    /// Tool calls taken so far.
    steps: u32,
    /// Names of the tools called, in order (sanitized).
    called: Vec<String>,
    /// Tokens over every model call.
    usage: TokenUsage,
    /// Nobody attends the execution: its calls' confirmations are denied at once.
    unattended: bool,
    /// Still to run before the first tool call (taken when it runs).
    before_tools: Option<BeforeTools>,
    /// Set when a step found the attempt cannot go on (the preparation before tool calls
    /// failed): why. The loop ends with [`Answer::Aborted`] after that step is published.
    aborted: Option<String>,
}

impl Agent<'_> {
    /// Runs turns until a final answer, a limit, a failure or cancellation. `Err` only when
    /// the audit trail could not record a step (the task ends: nothing acts unrecorded).
    async fn run(&mut self) -> Result<Answer, TaskError> {
        let budget = self.core.config.runtime.max_tokens_per_task;
        let max_steps = self.core.config.tools.max_steps;
        let max_tokens = self.core.config.model.max_tokens;
        loop {
            if budget > 0 {
                let spent = self.usage.input.saturating_add(self.usage.output);
                let left = budget.saturating_sub(spent);
                if left == 0 {
                    tracing::warn!(spent, budget, "token budget spent");
                    return Ok(Answer::Done(FinishReason::TokenBudget, self.usage));
                }
                self.request.max_tokens = max_tokens.min(u32::try_from(left).unwrap_or(u32::MAX));
            }
            let turn = match self.turn().await {
                Ok(turn) => turn,
                Err(answer) => return Ok(answer),
            };
            self.usage.input = self.usage.input.saturating_add(turn.usage.input);
            self.usage.output = self.usage.output.saturating_add(turn.usage.output);
            if turn.calls.is_empty() {
                return Ok(Answer::Done(turn.finish, self.usage));
            }
            if budget > 0 && self.usage.input.saturating_add(self.usage.output) >= budget {
                tracing::warn!(
                    budget,
                    "token budget spent; the tool calls asked for are not run"
                );
                return Ok(Answer::Done(FinishReason::TokenBudget, self.usage));
            }
            self.request.messages.push(Message::Assistant {
                text: turn.text,
                tool_calls: turn.calls.clone(),
            });
            for call in turn.calls {
                if self.steps >= max_steps {
                    tracing::warn!(max_steps, "tools.max_steps reached");
                    return Ok(Answer::Done(FinishReason::MaxSteps, self.usage));
                }
                self.steps += 1;
                // The step is published to the caller whatever becomes of it.
                self.task.effects.mark_streamed();
                let result = self.step(call).await?;
                if let Some(reason) = self.aborted.take() {
                    return Ok(Answer::Aborted(reason));
                }
                if self.task.cancel.is_cancelled() {
                    return Ok(Answer::Cancelled);
                }
                self.request.messages.push(Message::Tool(result));
            }
        }
    }

    /// One model call, streamed to the operator. `Err` carries how the attempt ends.
    async fn turn(&mut self) -> Result<Turn, Answer> {
        let core = self.core;
        let id = self.task.id;
        let backend_name = self.backend.name();
        let mut turn = Turn {
            calls: Vec::new(),
            text: String::new(),
            finish: FinishReason::Stop,
            usage: TokenUsage::default(),
        };
        let mut stream = self
            .backend
            .stream(&self.request)
            .await
            .map_err(Answer::Failed)?;
        loop {
            tokio::select! {
                chunk = stream.next() => match chunk {
                    Some(Ok(StreamChunk::Text(piece))) => {
                        // Text after an earlier turn's starts on a line of its own.
                        if turn.text.is_empty() && !self.text.is_empty() && !self.text.ends_with('\n') {
                            self.text.push('\n');
                            core.emitter.emit(Event::OutputDelta { id, text: "\n".into() });
                        }
                        self.task.effects.mark_streamed();
                        turn.text.push_str(&piece);
                        self.text.push_str(&piece);
                        core.emitter.emit(Event::OutputDelta { id, text: piece });
                    }
                    Some(Ok(StreamChunk::ToolCall(call))) => {
                        progress!(self.unattended, tool = %crate::sanitize::quote(&call.name), call_id = %crate::sanitize::quote(&call.id), "the model asked for a tool");
                        turn.calls.push(call);
                    }
                    Some(Ok(StreamChunk::Done { finish_reason, usage })) => {
                        turn.finish = finish_reason;
                        turn.usage = usage;
                        return Ok(turn);
                    }
                    Some(Err(e)) => return Err(Answer::Failed(e)),
                    None => return Err(Answer::Failed(ModelError::new(
                        backend_name,
                        ModelErrorKind::Protocol,
                        "the answer stream ended before its final chunk",
                    ))),
                },
                () = self.task.cancel.cancelled() => return Err(Answer::Cancelled),
            }
        }
    }

    /// Takes one tool call: refuses what cannot run, passes the rest through the gate, and
    /// publishes the step. The result goes back to the model either way.
    async fn step(&mut self, call: ToolCall) -> Result<ToolResult, TaskError> {
        let core = self.core;
        let step = self.steps;
        let registered = self.tool_names.get(&call.name).cloned();
        let offered = registered.is_some();
        // A tool offered is shown by its registered name (`mcp:demo:echo`, not the
        // `mcp__demo__echo` the model was given); anything else as the model wrote it.
        let shown_name = crate::sanitize::sanitize_line(&crate::sanitize::excerpt(
            registered.as_deref().unwrap_or(&call.name),
            64,
        ))
        .into_owned();
        self.called.push(shown_name.clone());
        // The tool's own one-line summary, shown to the operator; errors show as sent.
        let mut shown_summary = None;
        let (outcome, content, arguments, audit_seq) = match &call.arguments {
            Err(malformed) => {
                let reason = format!(
                    "the arguments are not valid JSON ({}); call the tool again with a JSON \
                     object that fits its schema",
                    malformed.error
                );
                let seq = self.reject(&shown_name, &malformed.raw, &reason).await?;
                (
                    "rejected",
                    reason,
                    crate::sanitize::sanitize_line(&crate::sanitize::excerpt(&malformed.raw, 160))
                        .into_owned(),
                    seq,
                )
            }
            Ok(args) if !offered => {
                let names: Vec<&str> = self.request.tools.iter().map(|t| t.name.as_str()).collect();
                let reason = if names.is_empty() {
                    format!(
                        "tool '{shown_name}' is not available: no tools are offered in this task"
                    )
                } else {
                    format!(
                        "tool '{shown_name}' is not available; the tools offered are: {}",
                        names.join(", ")
                    )
                };
                let seq = self.reject(&shown_name, &args.to_string(), &reason).await?;
                ("rejected", reason, describe_arguments(args), seq)
            }
            Ok(args) => {
                let within = Within {
                    execution: self.task.id,
                    step,
                    cancel: &self.task.cancel,
                    unattended: self.unattended,
                };
                let arguments = describe_arguments(args);
                let prepared = match self.before_tools.take() {
                    Some(hook) => hook.run().await,
                    None => Ok(()),
                };
                if let Err(cause) = prepared {
                    // The call cannot run where it was meant to: recorded as rejected, unrun,
                    // and the attempt ends after this step ([`Answer::Aborted`]).
                    let reason = format!(
                        "the preparation for tool '{shown_name}' failed, so the call was not \
                         run: {cause}"
                    );
                    let seq = self.reject(&shown_name, &args.to_string(), &reason).await?;
                    self.aborted = Some(reason.clone());
                    shown_summary = Some(reason.clone());
                    ("rejected", reason, arguments, seq)
                } else {
                    // From here the call may act: the attempt is never run again.
                    self.task.effects.mark_acted();
                    match core
                        .invoke_tool(
                            ExecutionId::new(),
                            registered.as_deref().unwrap_or(&call.name),
                            args.clone(),
                            "agent",
                            Some(within),
                        )
                        .await
                    {
                        Ok(done) => {
                            let mut content = done.output.value.to_string();
                            if content.len() > RESULT_CHARS {
                                let cut = (0..=RESULT_CHARS)
                                    .rev()
                                    .find(|&i| content.is_char_boundary(i))
                                    .unwrap_or(0);
                                content.truncate(cut);
                                content.push_str(" … [result cut at 64 KiB]");
                            }
                            shown_summary = Some(done.output.summary);
                            ("success", content, arguments, done.audit_seq)
                        }
                        Err(VeyraError::Refused(message)) => {
                            let content = format!("refused: {message}");
                            shown_summary = Some(message);
                            ("refused", content, arguments, None)
                        }
                        Err(VeyraError::Usage(message)) => {
                            // Misfit arguments: nothing was decided or run yet, so record it here.
                            let seq = self
                                .reject(&shown_name, &args.to_string(), &message)
                                .await?;
                            shown_summary = Some(message.clone());
                            (
                                "rejected",
                                format!("bad arguments: {message}"),
                                arguments,
                                seq,
                            )
                        }
                        Err(VeyraError::Task { kind, message }) if kind == "audit" => {
                            return Err(TaskError::permanent(&kind, message));
                        }
                        Err(e) => {
                            shown_summary = Some(e.to_string());
                            ("failure", format!("failed: {e}"), arguments, None)
                        }
                    }
                }
            }
        };
        let is_error = outcome != "success";
        core.emitter.emit(Event::AgentStep {
            id: self.task.id,
            step,
            tool: shown_name.clone(),
            arguments,
            outcome: outcome.to_string(),
            summary: crate::sanitize::excerpt(
                shown_summary.as_deref().unwrap_or(&content),
                crate::sanitize::EXCERPT_CHARS,
            )
            .into_owned(),
            audit_seq,
            at: Utc::now(),
        });
        Ok(ToolResult {
            call_id: call.id,
            name: call.name,
            content,
            is_error,
        })
    }

    /// Records a call that never reached a tool (`TOOL_INVOCATION`, outcome `rejected`).
    async fn reject(
        &self,
        tool: &str,
        raw_arguments: &str,
        reason: &str,
    ) -> Result<Option<u64>, TaskError> {
        let entry = self
            .core
            .record_for_task(
                AuditRecord {
                    event_type: AuditEventType::ToolInvocation,
                    actor: "agent".into(),
                    action: "invoke_tool".into(),
                    resource: format!("tool:{tool}"),
                    outcome: "rejected".into(),
                    input_summary: summarize_input(raw_arguments),
                    metadata: serde_json::json!({
                        "tool": tool,
                        "reason": reason,
                        "parent_execution": self.task.id.to_string(),
                        "step": self.steps,
                    }),
                },
                Some(self.task.id),
                "a rejected tool call",
            )
            .await?;
        Ok(entry.map(|e| e.seq))
    }
}

mod offer;

#[cfg(test)]
mod tests;
