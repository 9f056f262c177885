//! Playing out multi-agent dialogues (IMDP): a task that carries a [`Dialogue`] (defined with
//! the other task types in `framework.rs`) is played out turn by turn instead of being sent
//! once, and [`final_message`] reads the result back for the scorer.
//!
//! # How a dialogue runs ([`converse`])
//! - Round by round, every agent speaks once, in the order the dialogue lists them. Each turn
//!   is its **own execution** through [`VeyraCore::execute_as`] as actor `benchmark`, with
//!   the agent's own system prompt (its private constraints) and a prompt made of the task's
//!   shared briefing, the transcript so far and the turn's instruction ([`turn_prompt`]).
//! - After the last round the **closer** (one designated agent, the coordinator) writes the
//!   final message in one more execution ([`final_prompt`]). So a dialogue of `n` agents and
//!   `r` rounds is `n·r + 1` executions, one after the other.
//! - Every execution goes through the core like a single-shot task: the scheduler, the link,
//!   Cedar policy, the safety boundary and the audit trail see each turn. Cancelling the run's
//!   token cancels the running turn in the scheduler and starts no other one.
//! - The result is one [`ExecutionResult`]: latency, tokens and tool calls are the sums over
//!   the turns; the text is the transcript ([`Transcript`]), sanitized (terminal controls made
//!   visible, `\r\n` made `\n`) and bounded (each turn at most [`TURN_CHARS`] characters, the
//!   final message at most [`FINAL_CHARS`]), ending with a [`FINAL_HEADER`] line and the final
//!   message. Scorers read the text after the last such line ([`final_message`]).
//! - All agents use the configured backend and model (`model.backend`, or what the console
//!   switched to). An [`ExecutionRequest`] can name a backend and model, but every backend is
//!   built from the one `model:` section (one base URL, one key), so agents get no backend of
//!   their own.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::framework::{ACTOR, BenchTask, Dialogue, DialogueAgent};
use crate::config::ToolSelection;
use crate::core::{ExecutionRequest, ExecutionResult, VeyraCore};
use crate::error::VeyraError;
use crate::events::{ExecutionId, Priority, TokenUsage};

/// Most characters of one negotiation turn kept in the transcript (and shown to the others).
pub const TURN_CHARS: usize = 2_000;
/// Most characters of the final message kept (a longer one is cut, and no longer parses).
pub const FINAL_CHARS: usize = 16_000;
/// The start of the transcript line before the final message.
pub const FINAL_HEADER: &str = "=== final message · ";

/// The transcript of a dialogue as it grows: one section per turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    text: String,
}

impl Transcript {
    /// Adds one negotiation turn (sanitized, cut at [`TURN_CHARS`]).
    pub fn push_turn(&mut self, round: u32, rounds: u32, agent: &str, said: &str) {
        self.text.push_str(&format!(
            "=== round {round} of {rounds} · {} ===\n{}\n",
            clean(agent, 60),
            clean(said, TURN_CHARS)
        ));
    }

    /// Adds the final message (sanitized, cut at [`FINAL_CHARS`]) and returns the whole text.
    pub fn finish(mut self, agent: &str, message: &str) -> String {
        self.text.push_str(&format!(
            "{FINAL_HEADER}{} ===\n{}",
            clean(agent, 60),
            clean(message, FINAL_CHARS)
        ));
        self.text
    }

    /// The transcript so far.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `text` with `\r\n` made `\n`, terminal controls made visible placeholders, cut at `max`
/// characters (with `… [cut]`).
fn clean(text: &str, max: usize) -> String {
    let text = text.replace("\r\n", "\n");
    let trimmed = text.trim();
    let cut = match trimmed.char_indices().nth(max) {
        Some((i, _)) => format!("{} … [cut]", trimmed.get(..i).unwrap_or_default()),
        None => trimmed.to_string(),
    };
    crate::sanitize::sanitize(&cut).into_owned()
}

/// The final message of a transcript: the text after the last [`FINAL_HEADER`] line, or the
/// whole text when there is none (an answer that is not a transcript).
pub fn final_message(text: &str) -> &str {
    match text.rfind(FINAL_HEADER) {
        Some(at) => {
            let rest = text.get(at..).unwrap_or_default();
            match rest.find('\n') {
                Some(nl) => rest.get(nl + 1..).unwrap_or_default(),
                None => "",
            }
        }
        None => text,
    }
}

/// The prompt of one negotiation turn.
pub fn turn_prompt(
    task: &BenchTask,
    dialogue: &Dialogue,
    transcript: &Transcript,
    round: u32,
    agent: &DialogueAgent,
) -> String {
    let so_far = if transcript.as_str().is_empty() {
        "(nothing yet: you speak first)\n"
    } else {
        transcript.as_str()
    };
    format!(
        "{}\n\nTranscript so far:\n{so_far}\nRound {round} of {}. You are {}. Write your message \
         to the other agents: what you need and the plan you propose. Do not write the final \
         protocol message yet.",
        task.prompt, dialogue.rounds, agent.name
    )
}

/// The prompt of the closer's final turn.
pub fn final_prompt(task: &BenchTask, dialogue: &Dialogue, transcript: &Transcript) -> String {
    format!(
        "{}\n\nTranscript of the negotiation:\n{}\n{}",
        task.prompt,
        transcript.as_str(),
        dialogue.final_instruction
    )
}

/// The request of one turn: actor `benchmark`, the agent's system prompt, no tools,
/// unattended (a run has no operator: anything that asks is denied at once), local (on this
/// side of the simulated link, as every benchmark item).
fn turn_request(prompt: String, agent: &DialogueAgent) -> ExecutionRequest {
    let mut request = ExecutionRequest::new(prompt)
        .system(agent.system.clone())
        .priority(Priority::Low)
        .tools(ToolSelection::None)
        .unattended();
    request.actor = ACTOR.to_string();
    request.local = true;
    request
}

/// Plays `dialogue` out through the core (module docs). A failed or cancelled turn ends the
/// dialogue with that error; a cancelled token cancels the running turn in the scheduler.
pub async fn converse(
    core: &VeyraCore,
    task: &BenchTask,
    dialogue: &Dialogue,
    target: &crate::benchmarks::runner::Target,
    cancel: &CancellationToken,
) -> Result<ExecutionResult, VeyraError> {
    dialogue
        .check()
        .map_err(|m| VeyraError::Runtime(format!("task {}: {m}", task.id)))?;
    let closer = dialogue
        .closer()
        .map_err(|m| VeyraError::Runtime(format!("task {}: {m}", task.id)))?;
    let mut transcript = Transcript::default();
    let mut totals = Totals::default();
    for round in 1..=dialogue.rounds {
        for agent in &dialogue.agents {
            let prompt = turn_prompt(task, dialogue, &transcript, round, agent);
            let mut request = turn_request(prompt, agent);
            target.aim(&mut request);
            let said = turn(core, request, cancel, &mut totals).await?;
            transcript.push_turn(round, dialogue.rounds, &agent.name, &said.text);
        }
    }
    let prompt = final_prompt(task, dialogue, &transcript);
    let mut request = turn_request(prompt, closer);
    target.aim(&mut request);
    let last = turn(core, request, cancel, &mut totals).await?;
    let text = transcript.finish(&closer.name, &last.text);
    Ok(ExecutionResult {
        text,
        usage: totals.usage,
        latency: totals.latency,
        tool_steps: totals.tool_steps,
        ..last
    })
}

/// Sums over the turns of a dialogue.
#[derive(Debug, Default)]
struct Totals {
    usage: TokenUsage,
    latency: Duration,
    tool_steps: u32,
}

/// One turn through the core, cancellable like the single-shot solver.
async fn turn(
    core: &VeyraCore,
    request: ExecutionRequest,
    cancel: &CancellationToken,
    totals: &mut Totals,
) -> Result<ExecutionResult, VeyraError> {
    if cancel.is_cancelled() {
        return Err(VeyraError::Cancelled(
            "the benchmark run was cancelled".into(),
        ));
    }
    let started = Instant::now();
    // Only the final state is needed (a turn offers no tools): no per-token events.
    let id = ExecutionId::new();
    let result = tokio::select! {
        r = core.execute_as(id, request) => r?,
        _ = cancel.cancelled() => {
            // The turn may have ended meanwhile; then there is nothing to cancel.
            let _ = core.cancel(id);
            return Err(VeyraError::Cancelled("the benchmark run was cancelled".into()));
        }
    };
    totals.usage.input = totals.usage.input.saturating_add(result.usage.input);
    totals.usage.output = totals.usage.output.saturating_add(result.usage.output);
    totals.latency = totals.latency.saturating_add(started.elapsed());
    totals.tool_steps = totals.tool_steps.saturating_add(result.tool_steps);
    Ok(result)
}

#[cfg(test)]
mod tests;
