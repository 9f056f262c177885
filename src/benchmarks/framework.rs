//! The contract every family and the runner share, and nothing that runs: a [`Family`]
//! *generates* [`BenchTask`]s from (count, difficulty, seed) and *scores* an [`Outcome`]
//! against the task's ground truth; the runner (`runner.rs`) is the *solver* that takes each
//! task through the core, and `mod.rs` maps a [`FamilyId`] to its family.
//!
//! A task carries everything needed to run and re-score it later without the generator: the
//! prompt, the system prompt, the [`AnswerFormat`] the prompt asks for, the ground truth as
//! JSON, the expected answer as text, the tools offered ([`TaskTools`]) and, for multi-agent
//! families, the [`Dialogue`] to play out. The helpers at the end (`per_index`,
//! [`task_id`], `field_result`, `combine`) are what the generators and scorers share.

use serde::{Deserialize, Serialize};

pub use super::record::{AuditedCall, CallRecord, ScratchFile, ToolStep};
pub use crate::config::{Difficulty, FamilyId};

/// The actor benchmark executions run as (policy principal and audit actor), single-shot
/// tasks and dialogue turns alike.
pub const ACTOR: &str = "benchmark";

/// Everything that can go wrong while preparing or running a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A generator could not build a task (a bug in the generator, reported, not panicked).
    #[error("generating {family} task {index}: {message}")]
    Generate {
        /// The family.
        family: FamilyId,
        /// Index of the task.
        index: usize,
        /// What went wrong.
        message: String,
    },
    /// The benchmark store failed.
    #[error("benchmark store {path}: {message}")]
    Store {
        /// The store file (`:memory:` for an in-memory store).
        path: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// A run, family or argument that does not exist or does not fit.
    #[error("{0}")]
    Usage(String),
}

impl From<BenchError> for crate::error::VeyraError {
    /// Unknown runs and bad arguments are usage errors (exit 2); the rest are runtime
    /// failures (exit 1).
    fn from(e: BenchError) -> Self {
        match e {
            BenchError::Usage(m) => crate::error::VeyraError::Usage(m),
            other @ (BenchError::Generate { .. } | BenchError::Store { .. }) => {
                crate::error::VeyraError::Runtime(other.to_string())
            }
        }
    }
}

/// Tools a task offers the model. Most families answer from the prompt alone; those that
/// score acts (TOME, ASR, ICSD) offer tools, and the runner passes the selection to the core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "offer", content = "names")]
pub enum TaskTools {
    /// No tools: the model only answers.
    #[default]
    None,
    /// These tools, by name.
    Only(Vec<String>),
}

/// What one field of the answer holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FieldKind {
    /// A number in `unit`, scored within a tolerance.
    Number {
        /// The unit the prompt asks for (`s`, `m`, `°C`); empty for a plain number (a count, an
        /// exact integer), which the prompt then asks for as "a number".
        unit: String,
    },
    /// A UTC time, `YYYY-MM-DDTHH:MM:SSZ`, scored within a tolerance.
    Timestamp,
    /// One of fixed labels, matched exactly after normalization.
    Choice {
        /// The labels, as the prompt lists them.
        options: Vec<String>,
    },
    /// A name from the task's text (a jurisdiction), matched exactly after normalization.
    Label,
    /// Labels separated by commas, or `NONE`; matched as a set.
    Set,
    /// One JSON document valid against the JSON Schema the task carries (IMDP's protocol
    /// message, in its [`Dialogue`]).
    Json,
}

/// One field of the answer line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerField {
    /// Its name, as the prompt says it (`decision`, `jurisdiction`).
    pub name: String,
    /// What it holds.
    #[serde(flatten)]
    pub kind: FieldKind,
}

/// The answer format every prompt ends with: one line `ANSWER: <field> | <field> …`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerFormat {
    /// The fields, in order.
    pub fields: Vec<AnswerField>,
}

impl AnswerFormat {
    /// A format of the given fields.
    pub fn new(fields: Vec<AnswerField>) -> Self {
        AnswerFormat { fields }
    }

    /// The sentence appended to each prompt that states the format.
    pub fn instruction(&self) -> String {
        let placeholders: Vec<String> = self
            .fields
            .iter()
            .map(|f| format!("<{}>", f.name))
            .collect();
        let mut text = format!(
            "Finish your reply with exactly one line of the form\nANSWER: {}\n",
            placeholders.join(" | ")
        );
        for field in &self.fields {
            let what = match &field.kind {
                FieldKind::Number { unit } if unit.is_empty() => "a number".to_string(),
                FieldKind::Number { unit } => format!("a number in {unit}"),
                FieldKind::Timestamp => "a UTC time written YYYY-MM-DDTHH:MM:SSZ".to_string(),
                FieldKind::Choice { options } => format!("one of {}", options.join(", ")),
                FieldKind::Label => "a name exactly as written above".to_string(),
                FieldKind::Set => {
                    "the matching labels separated by commas, or NONE if there are none".to_string()
                }
                FieldKind::Json => "one JSON object valid against the schema above".to_string(),
            };
            text.push_str(&format!("where <{}> is {what}.\n", field.name));
        }
        text
    }
}

/// Most agents a dialogue may have (a stored task with more is refused, not run).
pub const MAX_AGENTS: usize = 8;
/// Most rounds a dialogue may have.
pub const MAX_ROUNDS: u32 = 8;

/// One agent of a dialogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialogueAgent {
    /// Its name, as the others address it (`ares`).
    pub name: String,
    /// Its own system prompt: its role and private constraints.
    pub system: String,
}

/// A negotiation among agents that ends with one message: every round each agent speaks once,
/// in order, then the closer writes the final message (`dialogue.rs` plays it out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dialogue {
    /// The agents, in speaking order.
    pub agents: Vec<DialogueAgent>,
    /// Rounds; in each one every agent speaks once.
    pub rounds: u32,
    /// Index in `agents` of the agent who writes the final message.
    pub closer: usize,
    /// What the closer is asked after the last round.
    pub final_instruction: String,
    /// The JSON Schema the final message must follow (also printed in the shared briefing).
    pub schema: serde_json::Value,
}

impl Dialogue {
    /// Executions the dialogue takes: one per agent per round, and the final message.
    pub fn executions(&self) -> usize {
        self.agents
            .len()
            .saturating_mul(self.rounds as usize)
            .saturating_add(1)
    }

    /// Checks that the dialogue can be run: at least one agent and one round, within
    /// [`MAX_AGENTS`] and [`MAX_ROUNDS`], a closer among the agents.
    pub fn check(&self) -> Result<(), String> {
        if self.agents.is_empty() || self.agents.len() > MAX_AGENTS {
            return Err(format!(
                "the dialogue has {} agents; it needs 1 to {MAX_AGENTS}",
                self.agents.len()
            ));
        }
        if self.rounds == 0 || self.rounds > MAX_ROUNDS {
            return Err(format!(
                "the dialogue has {} rounds; it needs 1 to {MAX_ROUNDS}",
                self.rounds
            ));
        }
        if self.closer >= self.agents.len() {
            return Err(format!(
                "the dialogue's closer is agent {} of {}",
                self.closer,
                self.agents.len()
            ));
        }
        Ok(())
    }

    /// The agent who writes the final message.
    pub(crate) fn closer(&self) -> Result<&DialogueAgent, String> {
        self.agents
            .get(self.closer)
            .ok_or_else(|| format!("the dialogue has no agent {}", self.closer))
    }
}

/// One generated task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchTask {
    /// Unique within a suite and stable for a seed: `<family>-<difficulty>-s<seed>-<index>`
    /// (WMRT: `…-c<cluster>-v<variant>`). Runs are compared task by task on it.
    pub id: String,
    /// The family.
    pub family: FamilyId,
    /// The difficulty.
    pub difficulty: Difficulty,
    /// Tasks that are variants of one case share a cluster (WMRT); otherwise the task's id.
    pub cluster: String,
    /// What the model is asked.
    pub prompt: String,
    /// The system prompt.
    pub system: String,
    /// The answer format the prompt asks for.
    pub format: AnswerFormat,
    /// The expected answer line, as a perfect reply would write it (`DENY | Mars`).
    pub expected: String,
    /// Ground truth and checker data (tolerances, accepted spellings), family-specific.
    pub truth: serde_json::Value,
    /// Tools offered to the model.
    pub tools: TaskTools,
    /// For multi-agent families (IMDP): the agents and rounds the runner plays out, one
    /// execution per turn, instead of sending `prompt` once. `None` for single-shot tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialogue: Option<Dialogue>,
}

impl BenchTask {
    /// The text field `key` of the ground truth; empty when absent (a generator bug, which
    /// the family's own tests would show as a true answer scoring 0).
    pub fn truth_str(&self, key: &str) -> &str {
        self.truth
            .get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    }
}

/// What the solver brings back for scoring (see [`super::record`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// The model's whole answer.
    pub text: String,
    /// Tool calls it made (for families that score economy of calls).
    pub tool_calls: u32,
    /// Its tool calls as the execution's `AgentStep` events reported them, in order.
    pub steps: Vec<ToolStep>,
    /// The execution's `TOOL_INVOCATION` audit entries; `None` when audit is off.
    pub audit: Option<Vec<AuditedCall>>,
    /// The files in the task's scratch directory after the run; `None` when it had none.
    pub files: Option<Vec<ScratchFile>>,
    /// The scratch directory as the prompt named it (relative to `tools.workspace`), or empty.
    pub workdir: String,
}

impl Outcome {
    /// An outcome of answer text alone.
    pub fn text(text: impl Into<String>) -> Self {
        Outcome {
            text: text.into(),
            ..Outcome::default()
        }
    }

    /// Every call with what the record says about it: steps joined with their audit entries
    /// (the trail decides what ran), paths relative to the scratch directory.
    pub fn calls(&self) -> Vec<CallRecord> {
        super::record::join(&self.steps, self.audit.as_deref(), &self.workdir)
    }

    /// The scratch file at `path` (relative), if it is there after the run.
    pub fn file(&self, path: &str) -> Option<&ScratchFile> {
        self.files.as_ref()?.iter().find(|f| f.path == path)
    }
}

/// A score in `0..=1` with a short reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// 0 (wrong) to 1 (right).
    pub value: f64,
    /// Why, in a few words (`decision DENY ok; jurisdiction 'earth' != 'mars'`).
    pub reason: String,
}

impl Score {
    /// A score, clamped into `0..=1` (NaN becomes 0).
    pub fn new(value: f64, reason: impl Into<String>) -> Self {
        let value = if value.is_nan() {
            0.0
        } else {
            value.clamp(0.0, 1.0)
        };
        Score {
            value,
            reason: reason.into(),
        }
    }

    /// Zero, with the reason.
    pub fn zero(reason: impl Into<String>) -> Self {
        Score::new(0.0, reason)
    }
}

/// A benchmark family: generates tasks and scores answers to them.
pub trait Family: Send + Sync {
    /// Which family this is.
    fn id(&self) -> FamilyId;

    /// `count` tasks at `difficulty`, a pure function of the arguments: the same seed gives
    /// byte-identical tasks, and task `i` does not depend on `count`.
    fn generate(
        &self,
        count: usize,
        difficulty: Difficulty,
        seed: u64,
    ) -> Result<Vec<BenchTask>, BenchError>;

    /// Scores `outcome` against `task`'s ground truth. Never panics, whatever the text.
    fn score(&self, task: &BenchTask, outcome: &Outcome) -> Score;
}

/// Tasks `0..count` made by `make(index)`, in index order. Every family draws task `i` from its
/// own [`super::draw::Draw::for_task`] stream, so the work can be split: it runs on
/// `min(cores, ⌈count / PARALLEL_FROM⌉)` threads, each taking one contiguous part, and gives
/// the same tasks byte for byte as one thread would. The error of the lowest index wins; a
/// panic in a generator propagates as it would on one thread.
pub(crate) fn per_index(
    count: usize,
    make: impl Fn(usize) -> Result<BenchTask, BenchError> + Sync,
) -> Result<Vec<BenchTask>, BenchError> {
    let threads = std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
        .min(count.div_ceil(PARALLEL_FROM).max(1));
    if threads <= 1 {
        return (0..count).map(&make).collect();
    }
    let chunk = count.div_ceil(threads);
    let make = &make;
    let parts: Vec<Result<Vec<BenchTask>, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * chunk).min(count)..((t + 1) * chunk).min(count);
                scope.spawn(move || range.map(make).collect::<Result<Vec<_>, _>>())
            })
            .collect();
        // Every part is joined before any result is looked at.
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut tasks = Vec::with_capacity(count);
    for part in parts {
        tasks.extend(part?);
    }
    Ok(tasks)
}

/// Tasks per generator thread: [`per_index`] uses a second thread from `PARALLEL_FROM + 1`
/// tasks on.
pub(crate) const PARALLEL_FROM: usize = 64;

/// The id of task `index`: `<family>-<difficulty>-s<seed>-<index, 4 digits>`.
pub fn task_id(family: FamilyId, difficulty: Difficulty, seed: u64, index: usize) -> String {
    format!("{family}-{difficulty}-s{seed}-{index:04}")
}

/// The system prompt of every single-shot family (IMDP's agents have their own).
pub const SYSTEM_PROMPT: &str = "You are being evaluated by Veyra's benchmark suite. Reason \
carefully, state the facts you use, and end with the answer line in exactly the format asked \
for. Do not ask questions back.";

/// Per-field checks shared by the scorers: a field's score and the reason part.
pub(crate) fn field_result(name: &str, ok: bool, got: &str, want: &str) -> (f64, String) {
    if ok {
        (1.0, format!("{name} ok"))
    } else {
        (
            0.0,
            format!(
                "{name} '{}' != '{}'",
                crate::sanitize::excerpt(got, 40),
                want
            ),
        )
    }
}

/// Combines per-field results into a score: the mean of the fields, reasons joined.
pub(crate) fn combine(parts: Vec<(f64, String)>) -> Score {
    if parts.is_empty() {
        return Score::zero("no fields");
    }
    let n = parts.len() as f64;
    let total: f64 = parts.iter().map(|p| p.0).sum();
    let reason = parts
        .into_iter()
        .map(|p| p.1)
        .collect::<Vec<_>>()
        .join("; ");
    Score::new(total / n, reason)
}
