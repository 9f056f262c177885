//! What crosses the bus, one JSON object each, checked before anything acts on it: a task
//! ([`TaskMessage`], at most [`MAX_TASK_BYTES`]), a worker's record of an attempt
//! ([`Attempt`]), which holds the execution's final outcome ([`TaskResult`]) once it ended.
//! Events are the core's
//! own [`Event`] JSON, as `veyra run --json` prints them: one event per
//! message, or several that were ready together as a JSON array of them, in order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::{Event, ExecutionId, Priority};

/// The task format's name; a task of another format is refused.
pub const TASK_FORMAT: &str = "veyra.fleet.task/1";
/// Largest task message (NATS's default payload limit).
pub const MAX_TASK_BYTES: usize = 1024 * 1024;
/// Largest result kept.
pub const MAX_RESULT_BYTES: usize = 1024 * 1024;
/// Longest answer text a result keeps, in bytes (the events carry it whole).
pub const MAX_RESULT_TEXT: usize = 128 * 1024;
/// Longest error a result keeps, in bytes.
pub const MAX_RESULT_ERROR: usize = 16 * 1024;
/// Attempts at one task before it fails as lost: a task whose workers keep dying under it is
/// not handed out forever.
pub const MAX_ATTEMPTS: u32 = 5;

/// One task, as a submitter publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskMessage {
    /// [`TASK_FORMAT`].
    pub format: String,
    /// The execution: also the message's id, so the stream keeps one copy of a task
    /// published twice.
    pub id: ExecutionId,
    /// The prompt.
    pub prompt: String,
    /// Its priority (also the subject it is published on).
    pub priority: Priority,
    /// System prompt.
    #[serde(default)]
    pub system: Option<String>,
    /// Backend (default: the worker's).
    #[serde(default)]
    pub backend: Option<String>,
    /// Model (default: the backend's configured one on the worker).
    #[serde(default)]
    pub model: Option<String>,
    /// Tools offered: `all`, `none` or names (default: the worker's `tools.offer`).
    #[serde(default)]
    pub tools: Option<String>,
    /// Who submitted it (`veyra run on host (pid N)`), recorded by the worker that runs it.
    pub by: String,
    /// A chunk of a benchmark run's items to solve, instead of a prompt to stream (`veyra
    /// bench` fanned out, [`crate::fleet::bench`]): each solved as the run would solve it at
    /// home, what each left kept with the result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<BenchItem>,
}

/// Items one task carries at most.
pub const MAX_ITEMS: usize = 64;

/// The header of a task's message saying how many benchmark items it carries (absent for a
/// task without items): a worker weighs what it takes by it before decoding the task.
pub const ITEMS_HEADER: &str = "Veyra-Items";

/// A benchmark run's item, as a worker is asked for it: the task without its answer key
/// ([`crate::benchmarks::runner::for_solver`]) and the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchItem {
    /// The task.
    pub task: crate::benchmarks::BenchTask,
    /// The epoch.
    pub epoch: u32,
}

impl TaskMessage {
    /// Its submission as a console shows it (as a core would tell it), by `actor`, at `at`.
    pub(crate) fn submitted(&self, actor: &str, at: DateTime<Utc>) -> Event {
        Event::TaskSubmitted {
            id: self.id,
            kind: "execute".into(),
            title: crate::events::title_of(&self.prompt, 80),
            priority: self.priority,
            backend: self.backend.clone(),
            model: self.model.clone(),
            actor: Some(actor.into()),
            at,
        }
    }

    /// Parses and checks a task from the bus: its size, its format, a prompt that is there.
    pub fn decode(bytes: &[u8]) -> Result<TaskMessage, String> {
        if bytes.len() > MAX_TASK_BYTES {
            return Err(format!(
                "{} bytes, over the {MAX_TASK_BYTES}-byte limit",
                bytes.len()
            ));
        }
        let task: TaskMessage =
            serde_json::from_slice(bytes).map_err(|e| format!("not a task: {e}"))?;
        if task.format != TASK_FORMAT {
            return Err(format!(
                "format '{}', not {TASK_FORMAT}",
                crate::sanitize::quote(&task.format)
            ));
        }
        if task.prompt.trim().is_empty() {
            return Err("its prompt is empty".into());
        }
        if task.items.len() > MAX_ITEMS {
            return Err(format!(
                "{} items, over the {MAX_ITEMS} a task carries",
                task.items.len()
            ));
        }
        if task.by.len() > 512 {
            return Err("its submitter's name is over 512 bytes".into());
        }
        for (field, value) in [
            ("backend", &task.backend),
            ("model", &task.model),
            ("tools", &task.tools),
        ] {
            if value.as_ref().is_some_and(|v| v.len() > 4096) {
                return Err(format!("its {field} is over 4096 bytes"));
            }
        }
        Ok(task)
    }
}

/// How far an attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Running; nothing has acted or streamed yet: a redelivery may run it again.
    Running,
    /// Its tools were about to act, or its text had reached the submitter: never run again.
    Acted,
    /// Ended, its outcome in the record ([`Attempt::outcome`]): written by the worker holding
    /// the record, over the revision it last wrote (or created, for a task nobody claimed),
    /// so the outcome kept is the record holder's; never overwritten once it holds one.
    Final,
}

/// A worker's record of its attempt at a task (the attempts bucket, key = execution id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The worker.
    pub worker: String,
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// How far it got.
    pub phase: Phase,
    /// When this record was written.
    pub at: DateTime<Utc>,
    /// The execution's outcome, in a final record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<TaskResult>,
}

impl Attempt {
    /// Parses a record from the attempts bucket.
    pub fn decode(bytes: &[u8]) -> Result<Attempt, String> {
        if bytes.len() > MAX_RESULT_BYTES {
            return Err(format!("{} bytes, over the limit", bytes.len()));
        }
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// What every worker reads of an attempt record: whose, which attempt, how far, and whether it
/// holds an outcome — not the outcome itself, so one a newer worker wrote in a form this one
/// cannot read is never taken for a damaged record and overwritten.
#[derive(Debug, Clone, Deserialize)]
pub struct AttemptHead {
    /// The worker.
    pub worker: String,
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// How far it got.
    pub phase: Phase,
    #[serde(default)]
    outcome: Option<serde::de::IgnoredAny>,
}

impl AttemptHead {
    /// Parses the head of a record from the attempts bucket.
    pub fn decode(bytes: &[u8]) -> Result<AttemptHead, String> {
        if bytes.len() > MAX_RESULT_BYTES {
            return Err(format!("{} bytes, over the limit", bytes.len()));
        }
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// Whether the record holds an outcome.
    pub fn has_outcome(&self) -> bool {
        self.outcome.is_some()
    }
}

/// An execution's final outcome (in its final [`Attempt`] record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The execution.
    pub id: ExecutionId,
    /// The worker that ended it.
    pub worker: String,
    /// Attempts made.
    pub attempt: u32,
    /// `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// The answer (at most [`MAX_RESULT_TEXT`] characters; the events carry it whole).
    pub text: String,
    /// Why it failed or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What each of a chunk of benchmark items became, in the task's order, when it was one
    /// (and ran: a chunk refused or lost has none, its error is each item's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemOutcome>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The status of an item of a chunk that ran without acting but left more than the chunk's
/// record had room for: its submitter asks for it again, with fewer items beside it.
pub const UNKEPT: &str = "unkept";

/// What one benchmark item of a chunk became.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemOutcome {
    /// `succeeded`, `failed`, `cancelled` or [`UNKEPT`].
    pub status: String,
    /// Why it failed or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it left (its answer, steps, audited calls, files), when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<crate::benchmarks::runner::SolvedItem>,
    /// Its tools acted (a cancelled item that acted is never solved again).
    #[serde(default)]
    pub acted: bool,
}

/// The key of an execution in the buckets.
pub fn key(id: ExecutionId) -> String {
    id.0.simple().to_string()
}
