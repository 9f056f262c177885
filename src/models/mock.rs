//! The deterministic mock backend: the default, so Veyra runs with no network and no keys.
//!
//! # Contract
//! - **Deterministic.** The answer is a pure function of (prompt, system prompt, model,
//!   temperature): the same inputs give byte-identical text on every run and machine. The seed is
//!   `SHA-256("veyra-mock/1" ‖ model ‖ 0x00 ‖ temperature as IEEE-754 bits, little endian ‖
//!   system ‖ 0x00 ‖ prompt)`; its bytes pick sentences from a fixed bank. The prompt is the
//!   conversation's first user message.
//! - **Streams token by token.** A token is a word with the white space that follows it; chunks
//!   arrive `model.mock.token_delay_ms` apart (on tokio's clock, so tests can pause time).
//! - **Scriptable.** `model.mock.script` rules (regex → response) answer matching prompts; the
//!   first rule whose pattern is found in the prompt answers.
//! - **Calls tools when scripted.** A matching rule with `tool_calls` answers turn by turn. Turn
//!   `k` is the number of assistant messages the request's conversation already holds.
//!   - If the request declares at least one tool (any tool: a scripted call may name one that
//!     is not declared) and the rule has a turn `k` — or `repeat` is set and the rule has at
//!     least one turn, in which case turn `k` past the last is the last — the answer is that
//!     turn's calls, in order, as [`StreamChunk::ToolCall`]s, then `Done` with finish reason
//!     `tool_calls`. No text is sent on a tool turn and `max_tokens` does not cut it. Call `i`
//!     of turn `k` (both counted from 0) has id `call_{k+1}_{i+1}`; its arguments are
//!     `arguments`, or, when `raw_arguments` is set, that text parsed as a provider's would be
//!     ([`MalformedArguments::parse`]: malformed JSON gives `Err`, with the text as `raw`).
//!   - Otherwise the rule answers `response`, streamed as any answer, with every `{result}`
//!     replaced by the content of the conversation's last tool result (empty when it has
//!     none). Rules without `tool_calls` answer `response` as written.
//! - **Can fail on purpose.** A rule or `model.mock.fail` injects an error of a given kind, before
//!   the first token (`after_tokens: 0`, a retry-safe failure) or in the middle of the stream.
//!   A rule's failure applies to each of its turns; on a tool turn a call counts as a token.
//! - **Usage** counts white-space separated words. Input: the system prompt and every message
//!   of the conversation — user text, assistant text and the JSON text of each of its calls'
//!   arguments (a malformed call's raw text), tool result content. Output: the tokens sent; a
//!   tool call counts as the words of its arguments' JSON text, at least 1.
//! - `max_tokens` truncates the answer with finish reason `length`.

use std::time::Duration;

use regex::Regex;
use sha2::{Digest, Sha256};

use super::base::{
    ChunkStream, MalformedArguments, Message, ModelBackend, ModelError, ModelErrorKind,
    ModelRequest, ModelResponse, StreamChunk, ToolCall,
};
use crate::config::{MockConfig, MockFailure, MockFailureKind, MockRule, MockTurn, ModelConfig};
use crate::events::{FinishReason, TokenUsage};

/// Name the mock registers under.
pub const NAME: &str = "mock";

/// Sentences the generated answers are built from.
const BANK: [&str; 16] = [
    "Link budget is nominal and the uplink window is open.",
    "Telemetry from the habitat shows all subsystems within limits.",
    "I recommend confirming the plan with the ground team before acting.",
    "The request is reversible, so it can proceed under the current policy.",
    "Power reserves are sufficient for the next two sols.",
    "No prohibited operations are involved in this request.",
    "The answer will reach the operator after the one-way light delay.",
    "Consider batching follow-up questions to save round trips.",
    "Thermal margins are healthy across the monitored zones.",
    "Audit records for this execution are being written to the chain.",
    "A conservative option is to wait for the next communication window.",
    "The rover's navigation solution converged on the first pass.",
    "Dust levels are rising; solar output may drop by a few percent.",
    "All scheduled tasks are on track for completion.",
    "This is a simulated answer from the deterministic mock backend.",
    "Further detail is available on request at the next contact.",
];

/// What a request resolves to under the mock's configuration.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    /// What to send before `Done`: text tokens, or a tool turn's calls.
    chunks: Vec<StreamChunk>,
    finish_reason: FinishReason,
    usage: TokenUsage,
    /// Fail after this many tokens with this error.
    failure: Option<(usize, ModelError)>,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct MockBackend {
    config: MockConfig,
    rules: Vec<Regex>,
}

impl MockBackend {
    /// Builds the mock from `model:`; rejects script patterns that are not regular expressions.
    pub fn from_config(model: &ModelConfig) -> Result<Self, ModelError> {
        let rules = model
            .mock
            .script
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                Regex::new(&rule.pattern).map_err(|e| {
                    ModelError::new(
                        NAME,
                        ModelErrorKind::Config,
                        format!(
                            "model.mock.script[{i}].pattern is not a valid regular expression: {e}"
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(MockBackend {
            config: model.mock.clone(),
            rules,
        })
    }

    /// A mock with default settings (no delay, no script).
    pub fn new() -> Self {
        MockBackend {
            config: MockConfig::default(),
            rules: Vec::new(),
        }
    }

    /// The answer text for a request when no script rule matches.
    pub fn generated_text(request: &ModelRequest) -> String {
        let mut h = Sha256::new();
        h.update(b"veyra-mock/1");
        h.update(request.model.as_bytes());
        h.update([0]);
        h.update(request.temperature.to_bits().to_le_bytes());
        h.update(request.system.as_deref().unwrap_or("").as_bytes());
        h.update([0]);
        h.update(request.prompt().as_bytes());
        let seed = h.finalize();
        let subject = crate::events::title_of(request.prompt(), 60);
        let mut text = format!("Acknowledged: \"{subject}\".");
        let sentences = 2 + usize::from(seed[0] % 3);
        for i in 0..sentences {
            let pick = usize::from(seed[1 + i]) % BANK.len();
            text.push(' ');
            text.push_str(BANK[pick]);
        }
        text
    }

    fn plan(&self, request: &ModelRequest) -> Plan {
        let rule = self
            .rules
            .iter()
            .zip(&self.config.script)
            .find(|(re, _)| re.is_match(request.prompt()))
            .map(|(_, rule)| rule);
        let input = input_words(request);
        let failure = rule
            .map_or(self.config.fail.as_ref(), |rule| rule.fail.as_ref())
            .map(|f| (f.after_tokens as usize, injected_error(f)));
        if let Some(rule) = rule
            && let Some((k, turn)) = tool_turn(rule, request)
        {
            let calls = scripted_calls(k, turn);
            let output = calls
                .iter()
                .map(|c| word_count(&arguments_text(c)).max(1))
                .sum();
            return Plan {
                chunks: calls.into_iter().map(StreamChunk::ToolCall).collect(),
                finish_reason: FinishReason::ToolCalls,
                usage: TokenUsage { input, output },
                failure,
            };
        }
        let text = match rule {
            Some(rule) if !rule.tool_calls.is_empty() => {
                rule.response.replace("{result}", last_tool_result(request))
            }
            Some(rule) => rule.response.clone(),
            None => Self::generated_text(request),
        };
        let mut tokens = tokenize(&text);
        let max = request.max_tokens as usize;
        let finish_reason = if tokens.len() > max {
            tokens.truncate(max);
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        Plan {
            usage: TokenUsage {
                input,
                output: tokens.len() as u64,
            },
            chunks: tokens.into_iter().map(StreamChunk::Text).collect(),
            finish_reason,
            failure,
        }
    }
}

/// The turn of `rule` that answers `request`, with its number `k` (see the module docs), or
/// `None` when the rule answers with text.
fn tool_turn<'a>(rule: &'a MockRule, request: &ModelRequest) -> Option<(usize, &'a MockTurn)> {
    if request.tools.is_empty() {
        return None;
    }
    let k = request
        .messages
        .iter()
        .filter(|m| matches!(m, Message::Assistant { .. }))
        .count();
    let turn = match rule.tool_calls.get(k) {
        Some(turn) => turn,
        None if rule.repeat => rule.tool_calls.last()?,
        None => return None,
    };
    Some((k, turn))
}

/// Turn `k`'s calls with their deterministic ids.
fn scripted_calls(k: usize, turn: &MockTurn) -> Vec<ToolCall> {
    turn.calls()
        .iter()
        .enumerate()
        .map(|(i, call)| ToolCall {
            id: format!("call_{}_{}", k + 1, i + 1),
            name: call.name.clone(),
            arguments: match &call.raw_arguments {
                Some(raw) => MalformedArguments::parse(raw.clone()),
                None => Ok(call.arguments.clone()),
            },
        })
        .collect()
}

/// The JSON text of a call's arguments, or a malformed call's raw text.
fn arguments_text(call: &ToolCall) -> String {
    match &call.arguments {
        Ok(value) => value.to_string(),
        Err(malformed) => malformed.raw.clone(),
    }
}

/// The content of the conversation's last tool result (empty when it has none).
fn last_tool_result(request: &ModelRequest) -> &str {
    request
        .messages
        .iter()
        .rev()
        .find_map(|m| match m {
            Message::Tool(result) => Some(result.content.as_str()),
            Message::User(_) | Message::Assistant { .. } => None,
        })
        .unwrap_or_default()
}

/// Input usage: the words of the system prompt and of every message (see the module docs).
fn input_words(request: &ModelRequest) -> u64 {
    let system = word_count(request.system.as_deref().unwrap_or(""));
    let conversation: u64 = request
        .messages
        .iter()
        .map(|m| match m {
            Message::User(text) => word_count(text),
            Message::Assistant { text, tool_calls } => {
                word_count(text)
                    + tool_calls
                        .iter()
                        .map(|c| word_count(&arguments_text(c)))
                        .sum::<u64>()
            }
            Message::Tool(result) => word_count(&result.content),
        })
        .sum();
    system + conversation
}

impl Default for MockBackend {
    fn default() -> Self {
        Self::new()
    }
}

fn injected_error(f: &MockFailure) -> ModelError {
    let kind = match f.kind {
        MockFailureKind::Auth => ModelErrorKind::Auth,
        MockFailureKind::RateLimit => ModelErrorKind::RateLimit,
        MockFailureKind::Overloaded => ModelErrorKind::Overloaded,
        MockFailureKind::BadRequest => ModelErrorKind::BadRequest,
        MockFailureKind::Server => ModelErrorKind::Server,
        MockFailureKind::Timeout => ModelErrorKind::Timeout,
        MockFailureKind::Connection => ModelErrorKind::Connection,
        MockFailureKind::Protocol => ModelErrorKind::Protocol,
    };
    let message = f
        .message
        .clone()
        .unwrap_or_else(|| format!("injected {} failure (model.mock)", kind.name()));
    ModelError::new(NAME, kind, message)
}

/// Splits text into tokens: each word keeps the white space that follows it, so the tokens
/// concatenate back to the text exactly.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::with_capacity(text.len() / 5 + 1);
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            tokens.push(text[start..i].to_string());
            start = i;
            in_space = false;
        }
    }
    if start < text.len() {
        tokens.push(text[start..].to_string());
    }
    tokens
}

/// How many words `text` has: `split_whitespace().count()`, a byte at a time when the text is
/// ASCII (prompts are, nearly always, and they are counted on every request).
fn word_count(text: &str) -> u64 {
    if !text.is_ascii() {
        return text.split_whitespace().count() as u64;
    }
    // The ASCII characters `char::is_whitespace` accepts: space, and tab through carriage
    // return (vertical tab included, unlike `u8::is_ascii_whitespace`).
    let space = |b: u8| b == b' ' || (b'\t'..=b'\r').contains(&b);
    let mut words = 0;
    let mut in_word = false;
    for &b in text.as_bytes() {
        let starts = !space(b) && !in_word;
        words += u64::from(starts);
        in_word = !space(b);
    }
    words
}

#[async_trait::async_trait]
impl ModelBackend for MockBackend {
    fn name(&self) -> &str {
        NAME
    }

    async fn generate(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let started = tokio::time::Instant::now();
        let plan = self.plan(request);
        let delay = Duration::from_millis(self.config.token_delay_ms);
        if let Some((after, error)) = plan.failure {
            if !delay.is_zero() {
                tokio::time::sleep(delay * after.min(plan.chunks.len()) as u32).await;
            }
            return Err(error);
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay * plan.chunks.len() as u32).await;
        }
        let text = plan
            .chunks
            .iter()
            .map(|chunk| match chunk {
                StreamChunk::Text(token) => token.as_str(),
                StreamChunk::ToolCall(_) | StreamChunk::Done { .. } => "",
            })
            .collect();
        Ok(ModelResponse {
            text,
            model: request.model.clone(),
            finish_reason: plan.finish_reason,
            usage: plan.usage,
            latency: started.elapsed(),
        })
    }

    async fn stream(&self, request: &ModelRequest) -> Result<ChunkStream, ModelError> {
        let plan = self.plan(request);
        if let Some((0, error)) = &plan.failure {
            return Err(error.clone());
        }
        let delay = Duration::from_millis(self.config.token_delay_ms);
        let stream = futures_util::stream::unfold(
            (plan, 0usize, false),
            move |(mut plan, sent, finished)| async move {
                if finished {
                    return None;
                }
                // A failure asked for after more tokens than the answer has fires after the last.
                if let Some((after, error)) = &plan.failure
                    && sent >= (*after).min(plan.chunks.len())
                {
                    let error = error.clone();
                    return Some((Err(error), (plan, sent, true)));
                }
                if sent < plan.chunks.len() {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    // Each chunk is sent once, so it can be moved out rather than copied.
                    let chunk =
                        std::mem::replace(&mut plan.chunks[sent], StreamChunk::Text(String::new()));
                    return Some((Ok(chunk), (plan, sent + 1, false)));
                }
                let done = StreamChunk::Done {
                    finish_reason: plan.finish_reason.clone(),
                    usage: plan.usage,
                };
                Some((Ok(done), (plan, sent, true)))
            },
        );
        Ok(Box::pin(stream))
    }

    async fn health_check(&self) -> Result<(), ModelError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
