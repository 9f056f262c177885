//! The event bus: every state change the core makes is published here once, as an [`Event`].
//!
//! The console, `veyra run --json` and any later remote console are subscribers that fold events
//! into their own view; nobody reads the core's state to draw a screen. `Event` is a tagged serde
//! enum, and one JSON line per event is the wire and log format.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Identifies one execution from submission to its final event. Also the correlation id that
/// every log line of the execution carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecutionId(pub Uuid);

impl ExecutionId {
    /// A fresh random id.
    pub fn new() -> Self {
        ExecutionId(Uuid::new_v4())
    }

    /// The first 8 hex digits, for narrow columns.
    pub fn short(&self) -> String {
        let mut s = self.0.simple().to_string();
        s.truncate(8);
        s
    }
}

impl Default for ExecutionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Task priority, highest first (DESIGN §3).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Default,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Must run before anything else.
    Critical,
    /// Ahead of normal work.
    High,
    /// The default.
    #[default]
    Normal,
    /// After normal work.
    Low,
    /// Only when nothing else waits.
    Background,
}

impl Priority {
    /// All priorities, highest first.
    pub const ALL: [Priority; 5] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
        Priority::Background,
    ];

    /// The lowercase name used on the command line and in the console.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
            Priority::Background => "background",
        }
    }

    /// The next priority in the console's `Ctrl-P` cycle (wraps around).
    pub fn cycle(self) -> Priority {
        match self {
            Priority::Critical => Priority::High,
            Priority::High => Priority::Normal,
            Priority::Normal => Priority::Low,
            Priority::Low => Priority::Background,
            Priority::Background => Priority::Critical,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Token counts of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input: u64,
    /// Generated tokens.
    pub output: u64,
}

/// Why a generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished its answer.
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// The model asked for tools.
    ToolCalls,
    /// The provider filtered the content.
    ContentFilter,
    /// Any other reason the provider gave.
    Other(String),
}

/// One state change of the core. Every variant is published exactly once per change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An execution was accepted.
    ExecutionSubmitted {
        /// The execution.
        id: ExecutionId,
        /// A one-line preview of the prompt (at most 80 characters) for task lists.
        title: String,
        /// Its priority.
        priority: Priority,
        /// Backend that will answer.
        backend: String,
        /// Model that will answer.
        model: String,
        /// When it was accepted.
        at: DateTime<Utc>,
    },
    /// The backend started working on the execution.
    ExecutionStarted {
        /// The execution.
        id: ExecutionId,
        /// When.
        at: DateTime<Utc>,
    },
    /// A piece of streamed answer text.
    OutputDelta {
        /// The execution.
        id: ExecutionId,
        /// The new text, to be appended.
        text: String,
    },
    /// The execution finished successfully.
    ExecutionFinished {
        /// The execution.
        id: ExecutionId,
        /// Token counts.
        usage: TokenUsage,
        /// Why generation stopped.
        finish_reason: FinishReason,
        /// Time from start to last token, ms.
        latency_ms: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// The execution failed.
    ExecutionFailed {
        /// The execution.
        id: ExecutionId,
        /// The error, as a sentence for the operator.
        error: String,
        /// Machine-readable kind (`rate_limit`, `timeout`, `cancelled`, …).
        kind: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// An entry was appended to the audit trail.
    AuditRecorded {
        /// Sequence number of the entry.
        seq: u64,
        /// Audit event type (`EXECUTION`, …).
        event_type: String,
        /// Who acted.
        actor: String,
        /// What was done.
        action: String,
        /// Outcome.
        outcome: String,
        /// The entry's hash (hex), the new chain head.
        hash: String,
        /// The execution it belongs to, if any.
        execution: Option<ExecutionId>,
    },
    /// The audit chain was verified.
    AuditVerified {
        /// Entries checked.
        entries: u64,
        /// `None` when the chain is intact; else the first bad entry and why.
        failure: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
}

impl Event {
    /// The execution this event belongs to, if any.
    pub fn execution(&self) -> Option<ExecutionId> {
        match self {
            Event::ExecutionSubmitted { id, .. }
            | Event::ExecutionStarted { id, .. }
            | Event::OutputDelta { id, .. }
            | Event::ExecutionFinished { id, .. }
            | Event::ExecutionFailed { id, .. } => Some(*id),
            Event::AuditRecorded { execution, .. } => *execution,
            Event::AuditVerified { .. } => None,
        }
    }

    /// True for the last event an execution publishes.
    pub fn is_terminal(&self) -> bool {
        match self {
            Event::ExecutionFinished { .. } | Event::ExecutionFailed { .. } => true,
            Event::ExecutionSubmitted { .. }
            | Event::ExecutionStarted { .. }
            | Event::OutputDelta { .. }
            | Event::AuditRecorded { .. }
            | Event::AuditVerified { .. } => false,
        }
    }
}

/// Default number of events a slow subscriber may fall behind before it misses some.
pub const BUS_CAPACITY: usize = 8192;

/// The one bus every event goes through. Cloning shares the bus.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
}

impl EventBus {
    /// A bus that holds up to `capacity` undelivered events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        EventBus { sender }
    }

    /// Publishes an event to every current subscriber. With no subscribers it is dropped.
    pub fn publish(&self, event: Event) {
        // `send` fails only when nobody listens, which is not an error for a bus.
        let _ = self.sender.send(event);
    }

    /// A new subscriber that sees every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(BUS_CAPACITY)
    }
}

/// A one-line preview of a prompt for task lists: first line, at most `max` characters.
pub fn title_of(prompt: &str, max: usize) -> String {
    let line = prompt
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        let mut s: String = line.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_as_tagged_json() {
        let e = Event::OutputDelta {
            id: ExecutionId(Uuid::nil()),
            text: "hi".into(),
        };
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(
            line,
            r#"{"type":"output_delta","id":"00000000-0000-0000-0000-000000000000","text":"hi"}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
    }

    #[test]
    fn priority_cycle_visits_all() {
        let mut p = Priority::Critical;
        let mut seen = vec![];
        for _ in 0..5 {
            seen.push(p);
            p = p.cycle();
        }
        assert_eq!(seen, Priority::ALL);
        assert_eq!(p, Priority::Critical);
    }

    #[test]
    fn titles_are_one_short_line() {
        assert_eq!(title_of("\n  hello\nworld", 80), "hello");
        assert_eq!(title_of("abcdef", 4), "abc…");
    }
}
