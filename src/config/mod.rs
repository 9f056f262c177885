//! Configuration: [`VeyraConfig`], its sections, loading, environment overrides and validation.
//!
//! The file format is YAML, read with `serde-saphyr` (a maintained, panic-free YAML parser that
//! reports line and column). Every section rejects unknown keys, and the error names the key,
//! where it is and the nearest valid key. Lookup order and `VEYRA_<SECTION>__<FIELD>` overrides
//! are described in DESIGN §4 and implemented by [`load_config`] and [`env`].

pub mod bench;
pub mod env;
mod secret;
pub mod suggest;
pub mod theme;
mod tools;
mod tui;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use bench::{BenchConfig, Difficulty, FamilyId};
pub use secret::{
    MASKED_USERINFO, MIN_KEY_LEN, REDACTED, REDACTED_IN_TEXT, Secret, StreamRedactor, display_url,
    mask_userinfo, redact, redact_key,
};
pub use theme::{ResolvedTheme, ThemeColour};
pub use tools::{
    AllowedHost, RANGE_HTTP_TIMEOUT_MS, RANGE_TOOL_BYTES, RANGE_TOOL_STEPS, ToolSelection,
    ToolsConfig,
};
pub use tui::TuiConfig;

/// Range of `model.max_tokens`.
pub const RANGE_MAX_TOKENS: std::ops::RangeInclusive<u64> = 1..=10_000_000;
/// Range of `model.timeout`, seconds (a day at most).
pub const RANGE_MODEL_TIMEOUT_S: std::ops::RangeInclusive<u64> = 1..=86_400;
/// Range of `model.retries` and `runtime.retries`.
pub const RANGE_RETRIES: std::ops::RangeInclusive<u64> = 0..=100;
/// Range of `model.mock.token_delay_ms` and `latency.custom.{min,max}_ms` (a week at most).
pub const RANGE_DELAY_MS: std::ops::RangeInclusive<u64> = 0..=604_800_000;
/// Range of `latency.time_scale`: a thousand times slower to a million times faster.
pub const RANGE_TIME_SCALE: std::ops::RangeInclusive<f64> = 0.001..=1_000_000.0;
/// Range of `latency.deep_space_au`: a thousandth of an au to about 1.6 light-years.
pub const RANGE_DEEP_SPACE_AU: std::ops::RangeInclusive<f64> = 0.001..=100_000.0;
/// Range of `runtime.max_concurrent`.
pub const RANGE_MAX_CONCURRENT: std::ops::RangeInclusive<u64> = 1..=4096;
/// Range of `runtime.backoff_ms` and `runtime.backoff_max_ms` (a day at most).
pub const RANGE_BACKOFF_MS: std::ops::RangeInclusive<u64> = 0..=86_400_000;
/// Range of `runtime.task_timeout`, seconds (a week at most; 0 = no limit).
pub const RANGE_TASK_TIMEOUT_S: std::ops::RangeInclusive<u64> = 0..=604_800;
/// Range of `runtime.aging_ms` (a day at most; 0 = off).
pub const RANGE_AGING_MS: std::ops::RangeInclusive<u64> = 0..=86_400_000;
/// Range of `runtime.max_tokens_per_task` (0 = no limit).
pub const RANGE_TASK_TOKENS: std::ops::RangeInclusive<u64> = 0..=100_000_000;
/// Range of `runtime.queue_capacity`.
pub const RANGE_QUEUE_CAPACITY: std::ops::RangeInclusive<u64> = 1..=10_000_000;
/// Range of `logging.max_bytes` when not 0 (0 = never rotate).
pub const RANGE_LOG_BYTES: std::ops::RangeInclusive<u64> = 65_536..=1 << 30;
/// Range of `logging.keep`.
pub const RANGE_LOG_KEEP: std::ops::RangeInclusive<u64> = 0..=100;

/// The whole configuration. Every field has a default, so an empty file is a valid file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct VeyraConfig {
    /// Which model backend answers prompts, and how.
    pub model: ModelConfig,
    /// The simulated interplanetary link.
    pub latency: LatencyConfig,
    /// Scheduler limits.
    pub runtime: RuntimeConfig,
    /// Log level, format and file.
    pub logging: LoggingConfig,
    /// Audit trail, safety boundary and policy.
    pub governance: GovernanceConfig,
    /// The console.
    pub tui: TuiConfig,
    /// Limits of the built-in tools.
    pub tools: ToolsConfig,
    /// Defaults of `veyra bench`.
    pub bench: BenchConfig,
}

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

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            backend: "mock".into(),
            model: "veyra-mock-1".into(),
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
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::Invalid {
                key: "model.api_key_env".into(),
                origin: Origin::Default,
                message: format!(
                    "the environment variable '{var}' does not hold valid UTF-8 text; export the \
                     API key as plain text"
                ),
            }),
            _ => Err(ConfigError::Invalid {
                key: "model.api_key_env".into(),
                origin: Origin::Default,
                message: format!(
                    "the environment variable '{var}' is not set or empty; export it with your API key"
                ),
            }),
        }
    }
}

impl VeyraConfig {
    /// The configuration as `veyra config show` prints it: `model.base_url` with its
    /// user-info masked ([`display_url`]). Never for use: the masked URL no longer reaches the
    /// server.
    pub fn for_display(&self) -> VeyraConfig {
        let mut shown = self.clone();
        if let Some(url) = &mut shown.model.base_url
            && let std::borrow::Cow::Owned(masked) = display_url(url)
        {
            *url = masked;
        }
        shown
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

/// `latency:` — the simulated link between operator and model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyConfig {
    /// Simulate the link at all.
    pub simulate: bool,
    /// Which link.
    pub preset: LatencyPreset,
    /// How the delay is drawn.
    pub mode: LatencyMode,
    /// Range for the `custom` preset.
    pub custom: CustomRange,
    /// Simulated seconds per real second (60 = a Mars minute per second), 0.001 to 1,000,000.
    pub time_scale: f64,
    /// Distance of the `deep-space` preset, au (173 au is one light-day: Voyager 1 in 2026),
    /// 0.001 to 100,000.
    pub deep_space_au: f64,
    /// The simulated date the link's clock starts at (RFC 3339, within the ephemeris's years
    /// 1800–2050); unset: now. Replays a past or future geometry, e.g. a conjunction.
    pub start: Option<chrono::DateTime<chrono::Utc>>,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        LatencyConfig {
            simulate: false,
            preset: LatencyPreset::Earth,
            mode: LatencyMode::Uniform,
            custom: CustomRange::default(),
            time_scale: 1.0,
            deep_space_au: 173.0,
            start: None,
        }
    }
}

/// `latency.custom:` — one-way delay range in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CustomRange {
    /// Shortest one-way delay, ms, 0 to 604,800,000 (a week).
    pub min_ms: u64,
    /// Longest one-way delay, ms; not below `min_ms`, at most 604,800,000 (a week).
    pub max_ms: u64,
}

impl Default for CustomRange {
    fn default() -> Self {
        CustomRange {
            min_ms: 100,
            max_ms: 1000,
        }
    }
}

/// Link presets (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LatencyPreset {
    /// Terrestrial network.
    Earth,
    /// Earth–Moon.
    Lunar,
    /// Earth–Mars.
    Mars,
    /// Voyager-class deep space.
    DeepSpace,
    /// `latency.custom` range.
    Custom,
}

impl std::str::FromStr for LatencyPreset {
    type Err = String;

    /// A preset by name, case-insensitive; the error lists the valid names.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        LatencyPreset::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                format!(
                    "'{}' is not a link preset; use one of {}",
                    crate::sanitize::quote(text),
                    LatencyPreset::ALL.map(LatencyPreset::name).join(", ")
                )
            })
    }
}

impl LatencyPreset {
    /// Every preset, in the console's order.
    pub const ALL: [LatencyPreset; 5] = [
        LatencyPreset::Earth,
        LatencyPreset::Lunar,
        LatencyPreset::Mars,
        LatencyPreset::DeepSpace,
        LatencyPreset::Custom,
    ];

    /// The name used in config, CLI and console.
    pub fn name(self) -> &'static str {
        match self {
            LatencyPreset::Earth => "earth",
            LatencyPreset::Lunar => "lunar",
            LatencyPreset::Mars => "mars",
            LatencyPreset::DeepSpace => "deep-space",
            LatencyPreset::Custom => "custom",
        }
    }
}

impl fmt::Display for LatencyPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the one-way delay is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LatencyMode {
    /// Seeded random within the preset's range.
    Uniform,
    /// The middle of the preset's range.
    Fixed,
    /// True light time for the simulated date.
    Ephemeris,
}

impl fmt::Display for LatencyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LatencyMode::Uniform => "uniform",
            LatencyMode::Fixed => "fixed",
            LatencyMode::Ephemeris => "ephemeris",
        })
    }
}

/// `runtime:` — the scheduler's limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Executions running at once, 1 to 4096.
    pub max_concurrent: usize,
    /// Retries of a failed task, for retryable errors only, 0 to 100.
    pub retries: u32,
    /// First retry delay in milliseconds, 0 to 86,400,000; doubles on each retry.
    pub backoff_ms: u64,
    /// Longest retry delay in milliseconds, `backoff_ms` to 86,400,000.
    pub backoff_max_ms: u64,
    /// Randomise each retry delay between half and all of it ("equal jitter").
    pub jitter: bool,
    /// Seed for jitter and simulated link delays; unset draws a fresh seed at start.
    pub seed: Option<u64>,
    /// Seconds a task may run before it is stopped as timed out, 1 to 604,800 (a week);
    /// 0 means no limit.
    pub task_timeout: u64,
    /// A queued task gains one priority level per this many milliseconds of waiting, so
    /// background work is not starved; 0 turns aging off, at most 86,400,000.
    pub aging_ms: u64,
    /// Tasks that may wait in the queue, 1 to 10,000,000.
    pub queue_capacity: usize,
    /// Tokens (input and output, summed over every model call of an agent loop) one task may
    /// spend before it is stopped with finish reason `token_budget`, 0 to 100,000,000;
    /// 0 means no limit.
    pub max_tokens_per_task: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_concurrent: 4,
            retries: 2,
            backoff_ms: 500,
            backoff_max_ms: 30_000,
            jitter: true,
            seed: None,
            task_timeout: 600,
            aging_ms: 30_000,
            queue_capacity: 1024,
            max_tokens_per_task: 200_000,
        }
    }
}

/// `logging:` — where the structured log goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// Format of the log file.
    pub format: LogFormat,
    /// Log file; defaults to `<data dir>/veyra.log`.
    pub file: Option<PathBuf>,
    /// Size at which the log file is rotated, bytes (64 KiB to 1 GiB; 0 = never, for an
    /// outside `logrotate`). Default 10 MiB.
    pub max_bytes: u64,
    /// Rotated files kept beside it (`veyra.log.1` newest … `veyra.log.N`), 0 to 100.
    /// Default 3.
    pub keep: u32,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            format: LogFormat::Json,
            file: None,
            max_bytes: 10 << 20,
            keep: 3,
        }
    }
}

/// Log file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// Valid values of `logging.level`.
pub const LOG_LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

/// `governance:` — audit, safety and policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceConfig {
    /// Record every execution in the hash-chained audit trail.
    pub audit: bool,
    /// Where the trail is kept: `sqlite` (durable, the default) or `memory` (lost at exit).
    pub store: AuditStoreKind,
    /// Audit store path; defaults to `<data dir>/audit.db`.
    pub store_path: Option<PathBuf>,
    /// Enforce the safety boundary.
    pub safety: bool,
    /// Allow reversible operations only.
    pub reversible_only: bool,
    /// Operations that are always blocked.
    pub prohibited_operations: Vec<String>,
    /// Operations that need an operator's confirmation.
    pub require_confirmation: Vec<String>,
    /// Cedar policies: a `.cedar` file or a directory of them; default: the built-in
    /// `configs/policies/default.cedar`.
    pub policy_file: Option<PathBuf>,
    /// Cedar schema the policies are validated against; default: the built-in
    /// `configs/policies/veyra.cedarschema`.
    pub policy_schema: Option<PathBuf>,
    /// Cedar entities (jurisdictions, and who and what sits where); default: the built-in
    /// `configs/policies/entities.json`.
    pub policy_entities: Option<PathBuf>,
    /// Where the audit store's witness is kept; default `$XDG_STATE_HOME/veyra/witness`
    /// (`~/.local/state/veyra/witness`). Must not be inside the store's directory.
    pub witness_dir: Option<PathBuf>,
    /// More directories to keep a copy of the witness in (a mounted volume, another user's
    /// directory); none may be inside the store's directory.
    pub witnesses: Vec<PathBuf>,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        GovernanceConfig {
            audit: true,
            store: AuditStoreKind::Sqlite,
            store_path: None,
            safety: true,
            reversible_only: false,
            prohibited_operations: vec!["delete_all".into(), "format_disk".into()],
            require_confirmation: Vec::new(),
            policy_file: None,
            policy_schema: None,
            policy_entities: None,
            witness_dir: None,
            witnesses: Vec::new(),
        }
    }
}

/// Where the audit trail is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditStoreKind {
    /// SQLite file at `governance.store_path`: durable, one writing process at a time.
    Sqlite,
    /// Process memory: lost at exit (tests, throwaway sessions).
    Memory,
}

/// Where a configuration value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built-in default.
    Default,
    /// A configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in defaults"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

/// Everything that can be wrong with a configuration. Each message names the place and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named on the command line or in `VEYRA_CONFIG` does not exist.
    #[error("{}: config file not found; pass an existing file with --config, or omit it to use the defaults", path.display())]
    NotFound {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("{}: cannot read config file: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// YAML syntax error, wrong type or unknown key in a file.
    #[error("{}:{line}:{column}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What is wrong and what to do.
        message: String,
    },
    /// A `VEYRA_*` variable names no key or holds a value of the wrong type.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{key} (from {origin}): {message}")]
    Invalid {
        /// Dotted key path, e.g. `model.temperature`.
        key: String,
        /// Where the value came from.
        origin: Origin,
        /// What is wrong and what to do.
        message: String,
    },
}

/// The per-user data directory: `$XDG_DATA_HOME/veyra`, else `~/.local/share/veyra`,
/// else `./.veyra` when no home is known.
pub fn data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("veyra");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/veyra");
    }
    PathBuf::from(".veyra")
}

/// Veyra's state directory: `$XDG_STATE_HOME/veyra`, else `~/.local/state/veyra`; it holds
/// the audit witnesses, apart from the data directory.
pub fn state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("veyra");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/state/veyra");
    }
    PathBuf::from(".veyra-state")
}

/// The config file that [`load_config`] would read without `--config`, if any exists:
/// `$VEYRA_CONFIG`, `./veyra.yaml`, `$XDG_CONFIG_HOME/veyra/config.yaml` (or `~/.config/…`).
/// `VEYRA_CONFIG` naming a missing file is returned anyway, so loading reports it.
pub fn find_config_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VEYRA_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from("veyra.yaml");
    if local.is_file() {
        return Some(local);
    }
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let user = config_home.join("veyra/config.yaml");
    user.is_file().then_some(user)
}

/// A loaded configuration and where its values came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The effective configuration.
    pub config: VeyraConfig,
    /// The file it was read from; `None` for built-in defaults.
    pub file: Option<PathBuf>,
    /// Dotted key → the `VEYRA_*` variable that overrode it.
    pub overrides: BTreeMap<String, String>,
}

/// Loads the effective configuration: the file (`path`, else the lookup order of DESIGN §4,
/// else built-in defaults), then `VEYRA_<SECTION>__<FIELD>` overrides from the process
/// environment, then validation.
pub fn load_config(path: Option<&Path>) -> Result<VeyraConfig, ConfigError> {
    load_config_with_sources(path).map(|l| l.config)
}

/// [`load_config`], also telling where the values came from.
pub fn load_config_with_sources(path: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
    let vars = env::process_vars()?;
    load_from(path, &vars)
}

/// [`load_config_with_sources`] with an explicit environment (for tests and embedding).
pub fn load_from(
    path: Option<&Path>,
    vars: &[(String, String)],
) -> Result<LoadedConfig, ConfigError> {
    let found = match path {
        Some(p) => Some(p.to_path_buf()),
        None => find_config_file(),
    };
    let (config, origin) = match &found {
        Some(p) => (parse_file(p)?, Origin::File(p.clone())),
        None => (VeyraConfig::default(), Origin::Default),
    };
    let (config, overrides) = env::apply_overrides(config, vars)?;
    config.validate(&|key: &str| {
        overrides
            .get(key)
            .map(|v| Origin::Env(v.clone()))
            .unwrap_or_else(|| origin.clone())
    })?;
    Ok(LoadedConfig {
        config,
        file: found,
        overrides,
    })
}

/// Reads and validates one file on its own, without environment overrides
/// (`veyra config check`).
pub fn check_file(path: &Path) -> Result<VeyraConfig, ConfigError> {
    let config = parse_file(path)?;
    let origin = Origin::File(path.to_path_buf());
    config.validate(&|_| origin.clone())?;
    Ok(config)
}

/// Most bytes of a config or theme file: a config is a page of YAML, never a megabyte.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Parses a YAML file into a config, with located, actionable errors. The file must be a
/// regular file of at most [`MAX_FILE_BYTES`] ([`crate::fsread`]).
pub fn parse_file(path: &Path) -> Result<VeyraConfig, ConfigError> {
    let text = read_file(path, "config file").map_err(|e| match e {
        ConfigError::Unreadable { path, source }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            ConfigError::NotFound { path }
        }
        other => other,
    })?;
    parse_str(&text, path)
}

/// Reads a config or theme file (`what`) as [`crate::fsread`] reads every file it is handed.
pub(crate) fn read_file(path: &Path, what: &str) -> Result<String, ConfigError> {
    crate::fsread::read_regular_to_string(path, MAX_FILE_BYTES, what).map_err(|e| {
        ConfigError::Unreadable {
            path: path.to_path_buf(),
            source: e.into_io(),
        }
    })
}

/// Parses YAML text; `path` is used for error messages only.
pub fn parse_str(text: &str, path: &Path) -> Result<VeyraConfig, ConfigError> {
    // A file holding only comments or nothing at all is the defaults.
    let is_empty = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---");
    if is_empty {
        return Ok(VeyraConfig::default());
    }
    serde_saphyr::from_str::<VeyraConfig>(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        // The message and the line may quote the file: both are capped and sanitized, so a
        // megabyte-long line is not echoed whole.
        let explained = explain_serde_message(&yaml_error_message(&e));
        let mut message = crate::sanitize::sanitize_line(&crate::sanitize::excerpt(
            &explained,
            3 * crate::sanitize::EXCERPT_CHARS,
        ))
        .into_owned();
        if !message.starts_with("unknown key")
            && let Some(source) = text
                .lines()
                .nth(
                    usize::try_from(line)
                        .unwrap_or(usize::MAX)
                        .saturating_sub(1),
                )
                .filter(|_| line > 0)
        {
            message.push_str(&format!(
                " (in `{}`)",
                crate::sanitize::quote(source.trim())
            ));
        }
        ConfigError::File {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

/// The message of a YAML error without its snippet and location suffix.
fn yaml_error_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("").trim();
    // serde-saphyr appends " at line N column M"; the location is printed in front instead.
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" into
/// "unknown key 'x' in section 's' (did you mean 'a'?); valid keys: a, b".
pub(crate) fn explain_serde_message(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((key, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let expected = expected.trim_start_matches(',').trim();
    let list = expected
        .strip_prefix("expected one of ")
        .or_else(|| expected.strip_prefix("expected "))
        .unwrap_or("");
    let valid: Vec<&str> = list
        .split(',')
        .map(|s| s.trim().trim_matches('`'))
        .filter(|s| !s.is_empty() && *s != "nothing")
        .collect();
    let section = section_with_fields(&valid)
        .map(|s| {
            if s == "top level" {
                " at the top level".to_string()
            } else {
                format!(" in section '{s}'")
            }
        })
        .unwrap_or_default();
    format!(
        "unknown key '{key}'{section}{}; valid keys: {}",
        suggest::did_you_mean(key, valid.iter().copied()),
        valid.join(", ")
    )
}

/// The dotted name of the config section whose keys are exactly `fields`.
fn section_with_fields(fields: &[&str]) -> Option<String> {
    fn walk(value: &serde_json::Value, path: &str, fields: &[&str]) -> Option<String> {
        let serde_json::Value::Object(map) = value else {
            return None;
        };
        let mut want: Vec<&str> = fields.to_vec();
        let mut have: Vec<&str> = map.keys().map(String::as_str).collect();
        want.sort_unstable();
        have.sort_unstable();
        if !want.is_empty() && want == have {
            return Some(if path.is_empty() {
                "top level".to_string()
            } else {
                path.to_string()
            });
        }
        map.iter().find_map(|(k, v)| {
            let child = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            walk(v, &child, fields)
        })
    }
    let defaults = serde_json::to_value(VeyraConfig::default()).ok()?;
    walk(&defaults, "", fields)
}

/// True when `api_key_env` is not a plausible environment variable name, or looks like a
/// key: something other than letters, digits and `_`, a known key prefix, or a long run of
/// mixed-case letters and digits without the underscores a variable name has.
fn looks_like_a_key(value: &str) -> bool {
    let name_like = !value.is_empty()
        && value.len() <= 128
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !value.starts_with(|c: char| c.is_ascii_digit());
    if !name_like {
        return true;
    }
    let lower = value.to_ascii_lowercase();
    let has_lowercase = value.chars().any(|c| c.is_ascii_lowercase());
    let prefixed = ["sk_", "pk_", "rk_", "gsk_", "ghp_", "hf_"]
        .iter()
        .any(|p| lower.starts_with(p) && value.len() >= 20 && has_lowercase);
    let random_looking = value.len() >= 24
        && !value.contains('_')
        && value.chars().any(|c| c.is_ascii_digit())
        && has_lowercase;
    prefixed || random_looking
}

mod validate;

#[cfg(test)]
mod tests;
