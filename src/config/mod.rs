//! Configuration: [`VeyraConfig`], its sections, loading, environment overrides and validation.
//!
//! The file format is YAML, read with `serde-saphyr` (a maintained, panic-free YAML parser that
//! reports line and column). Every section rejects unknown keys, and the error names the key,
//! where it is and the nearest valid key. Lookup order and `VEYRA_<SECTION>__<FIELD>` overrides
//! are described in DESIGN §4 and implemented by [`load_config`] and [`env`](mod@env).
//!
//! One file per concept: each section's types and ranges in its own file (`model`, `latency`,
//! `runtime`, `logging`, `governance`, `tui`, `tools`, `bench`), loading in `load`, overrides in
//! [`env`](mod@env), checks in `validate`, errors and provenance in `error` (the line of a file each key
//! comes from in `lines`, what a key takes in words in `takes`), secrets in `secret`. This
//! file holds [`VeyraConfig`] and re-exports the public API, so `crate::config::X` names stay.

pub mod bench;
pub mod env;
mod error;
mod fleet;
mod governance;
mod latency;
mod lines;
mod load;
mod logging;
mod mcp;
mod model;
mod runtime;
mod secret;
pub mod suggest;
mod takes;
pub mod theme;
mod tools;
mod tui;
mod validate;

use serde::{Deserialize, Serialize};

pub use bench::{BenchConfig, Difficulty, FamilyId};
pub use error::{ConfigError, Origin};
pub use fleet::{
    Executor, NatsConfig, RANGE_ACK_WAIT_MS, is_token as is_nats_token,
    url_refusal as nats_url_refusal,
};
pub use governance::{AuditStoreKind, GovernanceConfig};
pub use latency::{
    CustomRange, LatencyConfig, LatencyMode, LatencyPreset, RANGE_DEEP_SPACE_AU, RANGE_TIME_SCALE,
};
pub use load::{
    LoadedConfig, MAX_FILE_BYTES, check_file, data_dir, find_config_file, load_config,
    load_config_with_sources, load_from, parse_file, parse_str, state_dir,
};
pub(crate) use load::{explain_serde_message, read_file, yaml_error_parts};
pub use logging::{LOG_LEVELS, LogFormat, LoggingConfig, RANGE_LOG_BYTES, RANGE_LOG_KEEP};
pub use mcp::{
    BASE_ENV, MAX_MCP_SERVERS, McpServerConfig, RANGE_MCP_TIMEOUT_MS, is_mcp_tool_name,
    is_server_name, url_refusal as mcp_url_refusal,
};
pub use model::{
    MOCK_MODEL, MockConfig, MockFailure, MockFailureKind, MockRule, MockToolCall, MockTurn,
    ModelConfig, RANGE_DELAY_MS, RANGE_MAX_TOKENS, RANGE_MODEL_TIMEOUT_S, RANGE_RETRIES,
};
pub use runtime::{
    RANGE_AGING_MS, RANGE_BACKOFF_MS, RANGE_MAX_CONCURRENT, RANGE_QUEUE_CAPACITY,
    RANGE_TASK_TIMEOUT_S, RANGE_TASK_TOKENS, RuntimeConfig,
};
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
    /// The fleet's NATS server and names (`runtime.executor: nats`, `veyra worker`).
    pub nats: NatsConfig,
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
        for server in &mut shown.tools.mcp_servers {
            for value in server.env.values_mut() {
                *value = REDACTED.to_string();
            }
        }
        shown
    }
}

#[cfg(test)]
mod tests;
