//! What one attempt has done that cannot be taken back, and the one rule that follows from it
//! (DESIGN §9): **an attempt that streamed anything to its caller, or whose tools acted, is
//! final.** No retry layer runs it again — not `runtime.retries` after a retryable error, not
//! `runtime.task_timeout`, not a redelivery.
//!
//! A handler marks what its attempt did on the [`Effects`] in its
//! [`TaskContext`](super::scheduler::TaskContext) as it happens (text streamed, a tool about to
//! act). The scheduler reads them only after the attempt has ended or been wound down, and
//! [`verdict`] is the only place that decides whether a failed attempt runs again: handlers say
//! whether an error is retryable in kind, never whether *this* attempt may be repeated.
//! (Backend retries happen inside one model call, before its answer has started streaming, so
//! they never repeat an effect either.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

const STREAMED: u8 = 1;
const ACTED: u8 = 2;

/// What an attempt has done that cannot be taken back. Cloning shares it: the handler marks,
/// the scheduler reads.
#[derive(Debug, Clone, Default)]
pub struct Effects(Arc<AtomicU8>);

/// Why an attempt is final whatever its error says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalBecause {
    /// A tool call reached the gate to act (whether or not it then succeeded).
    ToolsActed,
    /// Text reached the caller.
    Streamed,
}

impl FinalBecause {
    /// Machine-readable name, as in [`TaskStatus::Failed`](crate::events::TaskStatus::Failed)'s
    /// `not_retried`.
    pub fn name(self) -> &'static str {
        match self {
            FinalBecause::ToolsActed => "tools_acted",
            FinalBecause::Streamed => "streamed",
        }
    }

    /// The rule, as said to the operator.
    pub fn sentence(self) -> &'static str {
        match self {
            FinalBecause::ToolsActed => {
                "not retried: its tools had acted, and an attempt whose tools acted is never run again (side effects happen once)"
            }
            FinalBecause::Streamed => {
                "not retried: it had streamed output, and an attempt that streamed is never run again (side effects happen once)"
            }
        }
    }
}

impl Effects {
    /// Text of this attempt reached (or is about to reach) the caller.
    pub fn mark_streamed(&self) {
        self.0.fetch_or(STREAMED, Ordering::SeqCst);
    }

    /// A tool call of this attempt is about to pass the gate and may act.
    pub fn mark_acted(&self) {
        self.0.fetch_or(ACTED, Ordering::SeqCst);
    }

    /// Why the attempt may not run again, if it may not. Tools acting outranks streaming: it
    /// is the graver of the two.
    pub fn final_because(&self) -> Option<FinalBecause> {
        let bits = self.0.load(Ordering::SeqCst);
        if bits & ACTED != 0 {
            Some(FinalBecause::ToolsActed)
        } else if bits & STREAMED != 0 {
            Some(FinalBecause::Streamed)
        } else {
            None
        }
    }
}

/// What becomes of a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run it again after a backoff.
    Retry,
    /// The task fails with this attempt; `because` is set when the error alone would have
    /// been retried.
    Final {
        /// Why a retryable error was not retried.
        because: Option<FinalBecause>,
    },
}

/// The one retry rule: a failed attempt runs again only when its error is `retryable` in
/// kind, it has neither streamed nor acted, and `max_retries` allows another attempt after
/// `attempt` (numbered from 1).
pub fn verdict(retryable: bool, attempt: u32, max_retries: u32, effects: &Effects) -> Verdict {
    if !retryable {
        return Verdict::Final { because: None };
    }
    if let Some(because) = effects.final_because() {
        return Verdict::Final {
            because: Some(because),
        };
    }
    if attempt > max_retries {
        return Verdict::Final { because: None };
    }
    Verdict::Retry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_attempt_without_effects_is_retried() {
        let (retryable, permanent) = (true, false);
        let clean = Effects::default();
        assert_eq!(verdict(retryable, 1, 2, &clean), Verdict::Retry);
        assert_eq!(
            verdict(retryable, 3, 2, &clean),
            Verdict::Final { because: None }
        );
        assert_eq!(
            verdict(permanent, 1, 2, &clean),
            Verdict::Final { because: None }
        );

        let streamed = Effects::default();
        streamed.clone().mark_streamed();
        assert_eq!(
            verdict(retryable, 1, 2, &streamed),
            Verdict::Final {
                because: Some(FinalBecause::Streamed)
            }
        );
        let acted = Effects::default();
        acted.mark_streamed();
        acted.mark_acted();
        assert_eq!(
            verdict(retryable, 1, 2, &acted),
            Verdict::Final {
                because: Some(FinalBecause::ToolsActed)
            }
        );
        // A permanent error says nothing about effects: it was never going to be retried.
        assert_eq!(
            verdict(permanent, 1, 2, &acted),
            Verdict::Final { because: None }
        );
    }
}
