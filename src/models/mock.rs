//! The deterministic mock backend: the default, so Veyra runs with no network and no keys.
//!
//! # Contract
//! - **Deterministic.** The answer is a pure function of (prompt, system prompt, model,
//!   temperature): the same inputs give byte-identical text on every run and machine. The seed is
//!   `SHA-256("veyra-mock/1" ‖ model ‖ 0x00 ‖ temperature as IEEE-754 bits, little endian ‖
//!   system ‖ 0x00 ‖ prompt)`; its bytes pick sentences from a fixed bank.
//! - **Streams token by token.** A token is a word with the white space that follows it; chunks
//!   arrive `model.mock.token_delay_ms` apart (on tokio's clock, so tests can pause time).
//! - **Scriptable.** `model.mock.script` rules (regex → response) answer matching prompts.
//! - **Can fail on purpose.** A rule or `model.mock.fail` injects an error of a given kind, before
//!   the first token (`after_tokens: 0`, a retry-safe failure) or in the middle of the stream.
//! - **Usage** counts white-space separated words: input = system + prompt, output = tokens sent.
//! - `max_tokens` truncates the answer with finish reason `length`.

use std::time::Duration;

use regex::Regex;
use sha2::{Digest, Sha256};

use super::base::{
    ChunkStream, ModelBackend, ModelError, ModelErrorKind, ModelRequest, ModelResponse, StreamChunk,
};
use crate::config::{MockConfig, MockFailure, MockFailureKind, ModelConfig};
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
    tokens: Vec<String>,
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
        let (text, failure) = match rule {
            Some(rule) => (rule.response.clone(), rule.fail.as_ref()),
            None => (Self::generated_text(request), self.config.fail.as_ref()),
        };
        let mut tokens = tokenize(&text);
        let max = request.max_tokens as usize;
        let finish_reason = if tokens.len() > max {
            tokens.truncate(max);
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        let input =
            word_count(request.system.as_deref().unwrap_or("")) + word_count(request.prompt());
        Plan {
            usage: TokenUsage {
                input,
                output: tokens.len() as u64,
            },
            tokens,
            finish_reason,
            failure: failure.map(|f| (f.after_tokens as usize, injected_error(f))),
        }
    }
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

fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
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
                tokio::time::sleep(delay * after.min(plan.tokens.len()) as u32).await;
            }
            return Err(error);
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay * plan.tokens.len() as u32).await;
        }
        Ok(ModelResponse {
            text: plan.tokens.concat(),
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
                    && sent >= (*after).min(plan.tokens.len())
                {
                    let error = error.clone();
                    return Some((Err(error), (plan, sent, true)));
                }
                if sent < plan.tokens.len() {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    // Each token is sent once, so it can be moved out rather than copied.
                    let token = std::mem::take(&mut plan.tokens[sent]);
                    return Some((Ok(StreamChunk::Text(token)), (plan, sent + 1, false)));
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
