//! One execution's events as an ordered stream, and the folder that turns them into its
//! [`ExecutionResult`].

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::mpsc;

use super::{ExecutionResult, task_error};
use crate::error::VeyraError;
use crate::events::{Event, ExecutionId, FinishReason, TaskStatus, TokenUsage};

/// A running execution's events (see [`VeyraCore::execute_stream`](crate::VeyraCore::execute_stream)).
#[derive(Debug)]
pub struct ExecutionStream {
    pub(super) id: ExecutionId,
    pub(super) rx: mpsc::UnboundedReceiver<Event>,
}

impl ExecutionStream {
    /// The execution's id.
    pub fn id(&self) -> ExecutionId {
        self.id
    }

    /// Reads the remaining events and returns the execution's result: the answer of the last
    /// attempt, or the error it ended with.
    pub async fn finish(mut self) -> Result<ExecutionResult, VeyraError> {
        let mut folder = ResultFolder::new(self.id);
        while let Some(event) = self.rx.recv().await {
            if let Some(result) = folder.apply(&event) {
                return result;
            }
        }
        Err(VeyraError::Runtime(
            "the execution ended without a final state".into(),
        ))
    }
}

/// Folds one execution's events into its [`ExecutionResult`].
#[derive(Debug)]
pub struct ResultFolder {
    result: ExecutionResult,
}

impl ResultFolder {
    /// A folder for execution `id`.
    pub fn new(id: ExecutionId) -> Self {
        ResultFolder {
            result: ExecutionResult {
                id,
                text: String::new(),
                backend: String::new(),
                model: String::new(),
                finish_reason: FinishReason::Stop,
                usage: TokenUsage::default(),
                latency: Duration::ZERO,
                audit_seq: None,
                tool_steps: 0,
            },
        }
    }

    /// Applies one event; returns the outcome once the final state arrives.
    pub fn apply(&mut self, event: &Event) -> Option<Result<ExecutionResult, VeyraError>> {
        let result = &mut self.result;
        if event.execution() != Some(result.id) {
            return None;
        }
        match event {
            Event::TaskSubmitted { backend, model, .. } => {
                result.backend = backend.clone().unwrap_or_default();
                result.model = model.clone().unwrap_or_default();
            }
            Event::TaskState {
                status, attempt, ..
            } => match status {
                TaskStatus::Running if *attempt > 1 => result.text.clear(),
                TaskStatus::Succeeded => return Some(Ok(result.clone())),
                TaskStatus::Failed { error, kind, .. } => {
                    return Some(Err(task_error(kind, error)));
                }
                TaskStatus::Cancelled { reason } => {
                    return Some(Err(VeyraError::Cancelled(reason.clone())));
                }
                TaskStatus::Queued
                | TaskStatus::Uplink { .. }
                | TaskStatus::Running
                | TaskStatus::Downlink { .. }
                | TaskStatus::Retrying { .. }
                | TaskStatus::Blackout { .. } => {}
            },
            Event::OutputDelta { text, .. } => result.text.push_str(text),
            Event::ExecutionFinished {
                usage,
                finish_reason,
                latency_ms,
                ..
            } => {
                result.usage = *usage;
                result.finish_reason = finish_reason.clone();
                result.latency = Duration::from_millis(*latency_ms);
            }
            Event::AuditRecorded { seq, .. } => result.audit_seq = Some(*seq),
            Event::AgentStep { step, .. } => result.tool_steps = *step,
            Event::AuditVerified { .. }
            | Event::AuditCheckpoint { .. }
            | Event::BackendChanged { .. }
            | Event::LinkChanged { .. }
            | Event::SafetyViolation { .. }
            | Event::ConfirmationRequested { .. }
            | Event::ConfirmationAnswered { .. }
            | Event::ToolInvoked { .. } => {}
        }
        None
    }
}

impl Stream for ExecutionStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}
