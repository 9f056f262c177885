//! `model:` — which backend answers prompts and its generation parameters, and `model.mock:`,
//! the deterministic mock backend's scripted answers, tool calls and injected failures.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// Range of `model.max_tokens`.
pub const RANGE_MAX_TOKENS: std::ops::RangeInclusive<u64> = 1..=10_000_000;
/// Range of `model.timeout`, seconds (a day at most).
pub const RANGE_MODEL_TIMEOUT_S: std::ops::RangeInclusive<u64> = 1..=86_400;
/// Range of `model.retries` and `runtime.retries`.
pub const RANGE_RETRIES: std::ops::RangeInclusive<u64> = 0..=100;
/// Range of `model.mock.token_delay_ms` and `latency.custom.{min,max}_ms` (a week at most).
pub const RANGE_DELAY_MS: std::ops::RangeInclusive<u64> = 0..=604_800_000;

/// `model:` — the backend and its generation parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Registered backend name (`mock` by default; see `veyra health`).
    pub backend: String,
    /// Model name passed to the backend.
    pub model: String,
    /// Base URL for HTTP backends (e.g. `http://localhost:11434/v1`).
    pub base_url: Option<String>,
    /// Name of the environment variable that holds the API key. The key itself is never
    /// written in a file.
    pub api_key_env: Option<String>,
    /// Sampling temperature, 0 to 2.
    pub temperature: f64,
    /// Upper bound on generated tokens, 1 to 10,000,000.
    pub max_tokens: u32,
    /// Request timeout in seconds, 1 to 86,400.
    pub timeout: u64,
    /// How often a failed request is retried before the first streamed byte, 0 to 100.
    pub retries: u32,
    /// The deterministic mock backend.
    pub mock: MockConfig,
}

/// The mock backend's model, `model.model`'s default: a name no provider's API knows.
pub const MOCK_MODEL: &str = "veyra-mock-1";

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            backend: "mock".into(),
            model: MOCK_MODEL.into(),
            base_url: None,
            api_key_env: None,
            temperature: 0.7,
            max_tokens: 1024,
            timeout: 120,
            retries: 2,
            mock: MockConfig::default(),
        }
    }
}

impl ModelConfig {
    /// Reads the API key from the variable named by `api_key_env`.
    /// `Ok(None)` when no variable is configured.
    pub fn api_key(&self) -> Result<Option<Secret>, ConfigError> {
        let Some(var) = &self.api_key_env else {
            return Ok(None);
        };
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(Secret::new(v.trim()))),
            // The variable is the source of the fault: name it, and the key that names it.
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::Env {
                var: var.clone(),
                message: "does not hold valid UTF-8 text (model.api_key_env names it for the \
                          API key); export the API key as plain text"
                    .into(),
            }),
            _ => Err(ConfigError::Env {
                var: var.clone(),
                message: "is not set or empty (model.api_key_env names it for the API key); \
                          export it with your API key"
                    .into(),
            }),
        }
    }
}

/// `model.mock:` — the deterministic mock backend's contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MockConfig {
    /// Delay between streamed tokens, in milliseconds, 0 (as fast as possible) to 604,800,000.
    pub token_delay_ms: u64,
    /// Scripted answers: the first rule whose pattern matches the prompt decides.
    pub script: Vec<MockRule>,
    /// Fail every request that no script rule answers.
    pub fail: Option<MockFailure>,
}

/// One scripted answer of the mock backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockRule {
    /// A regular expression searched for in the prompt.
    pub pattern: String,
    /// The answer, streamed token by token. Ignored when `fail` is set and `after_tokens` is 0.
    #[serde(default)]
    pub response: String,
    /// Make this rule fail instead of (or part-way through) answering.
    #[serde(default)]
    pub fail: Option<MockFailure>,
    /// Tool calls to make before answering, one model turn each (a turn may hold several
    /// calls). The turn is picked by how many assistant turns the conversation already has;
    /// once they are spent the rule answers `response`, with `{result}` replaced by the last
    /// tool result the conversation holds. A request that declares no tools at all is answered
    /// with `response` at once (a request that declares any tool gets the turn's calls, even
    /// to tools it does not declare). The precise rule is in `src/models/mock.rs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<MockTurn>,
    /// Repeat the last turn of `tool_calls` forever (a model that never stops calling tools).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
}

/// One turn of scripted tool calls: a single call, or several made together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MockTurn {
    /// One call.
    One(MockToolCall),
    /// Several calls in one turn, run in order.
    Many(Vec<MockToolCall>),
}

impl MockTurn {
    /// The calls of this turn, in order.
    pub fn calls(&self) -> &[MockToolCall] {
        match self {
            MockTurn::One(call) => std::slice::from_ref(call),
            MockTurn::Many(calls) => calls,
        }
    }
}

/// A tool call the mock makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockToolCall {
    /// The tool's name (need not be a declared tool: that is how tests name unknown ones).
    pub name: String,
    /// Its arguments (default: an empty object).
    #[serde(default = "empty_object")]
    pub arguments: serde_json::Value,
    /// Send this text as the arguments instead, exactly (to test malformed JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_arguments: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// A failure the mock backend injects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockFailure {
    /// The kind of error, as a real backend would report it.
    pub kind: MockFailureKind,
    /// Tokens streamed before the failure (0 fails before the first byte).
    #[serde(default)]
    pub after_tokens: u32,
    /// The error message.
    #[serde(default)]
    pub message: Option<String>,
}

/// Error kinds the mock can inject; they map one to one onto backend error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MockFailureKind {
    /// Bad or missing credentials.
    Auth,
    /// Too many requests.
    RateLimit,
    /// The provider is overloaded.
    Overloaded,
    /// The request was malformed.
    BadRequest,
    /// The provider failed.
    Server,
    /// The request timed out.
    Timeout,
    /// The connection failed.
    Connection,
    /// The reply did not follow the protocol.
    Protocol,
}
