//! How a task's text ends in the Output pane: the line that says how the task ended when it
//! did not end well, after the text and scrolled with it.

use super::*;
use crate::tui::output::{Closed, LineKind};

impl TaskView {
    /// The line under the task's text that says how it ended when it did not end well: its
    /// error (failed, retrying, cancelled), or an answer that did not end on its own, in the
    /// warning's kind.
    pub fn closing(&self) -> Option<(String, LineKind)> {
        let error = match &self.status {
            TaskStatus::Failed { error, .. } => Some(error.clone()),
            TaskStatus::Retrying { error, .. } => {
                Some(format!("attempt {} failed: {error}", self.attempt))
            }
            TaskStatus::Cancelled { reason } => Some(format!("cancelled ({reason})")),
            TaskStatus::Queued
            | TaskStatus::Uplink { .. }
            | TaskStatus::Running
            | TaskStatus::Downlink { .. }
            | TaskStatus::Blackout { .. }
            | TaskStatus::Succeeded => None,
        };
        if let Some(error) = error {
            return Some((format!("✗ {error}"), LineKind::Failure));
        }
        let notice = match (&self.status, &self.finish_reason) {
            (TaskStatus::Succeeded, Some(FinishReason::Length)) => {
                "⚠ the answer was cut at model.max_tokens"
            }
            (TaskStatus::Succeeded, Some(FinishReason::MaxSteps)) => {
                "⚠ stopped after tools.max_steps tool calls; the answer is incomplete"
            }
            (TaskStatus::Succeeded, Some(FinishReason::TokenBudget)) => {
                "⚠ stopped at runtime.max_tokens_per_task; the answer is incomplete"
            }
            (TaskStatus::Succeeded, Some(FinishReason::ContentFilter)) => {
                "⚠ the provider filtered the answer"
            }
            _ => return None,
        };
        Some((notice.to_string(), LineKind::Warning))
    }

    /// The text the Output pane shows, wraps and scrolls over: the output, then the
    /// [closing line](TaskView::closing).
    pub fn shown_text(&self) -> Closed<'_> {
        Closed {
            buffer: &self.output,
            closing: self.closing(),
        }
    }
}
