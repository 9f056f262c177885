//! Validation of a loaded configuration (every number in its documented range, names that
//! exist, paths of the right shape) and the paths derived from it. [`VeyraConfig::validate`]
//! runs one check per section, in the order of the file: model, tools, bench, latency,
//! runtime, logging, tui; the first error found is returned.

use std::path::PathBuf;

use super::*;

impl VeyraConfig {
    /// Checks ranges and consistency. `origin` says where a dotted key's value came from.
    pub fn validate(&self, origin: &dyn Fn(&str) -> Origin) -> Result<(), ConfigError> {
        let check = Check { origin };
        check.model(&self.model)?;
        check.tools(&self.tools)?;
        check.bench(&self.bench)?;
        check.latency(&self.latency)?;
        check.runtime(&self.runtime)?;
        check.logging(&self.logging)?;
        check.tui(&self.tui)?;
        if let Err((key, message)) = self.nats.check(self.runtime.executor) {
            return Err(check.invalid(&key, message));
        }
        Ok(())
    }

    /// The audit store path, resolved against the data directory.
    pub fn audit_store_path(&self) -> PathBuf {
        self.governance
            .store_path
            .clone()
            .unwrap_or_else(|| data_dir().join("audit.db"))
    }

    /// Where the audit store keeps its witnesses: `$XDG_STATE_HOME/veyra/witness` (or
    /// `~/.local/state/veyra/witness`), then `governance.witnesses`.
    pub fn audit_witness_dirs(&self) -> Vec<PathBuf> {
        let mut witness_dirs = vec![
            self.governance
                .witness_dir
                .clone()
                .unwrap_or_else(|| state_dir().join("witness")),
        ];
        witness_dirs.extend(self.governance.witnesses.iter().cloned());
        witness_dirs
    }

    /// The log file path, resolved against the data directory.
    pub fn log_file_path(&self) -> PathBuf {
        self.logging
            .file
            .clone()
            .unwrap_or_else(|| data_dir().join("veyra.log"))
    }
}

/// The checks of one configuration, one function per section. Each error names the dotted key
/// and where its value came from.
struct Check<'a> {
    /// Where a dotted key's value came from.
    origin: &'a dyn Fn(&str) -> Origin,
}

impl Check<'_> {
    /// The error for `key`: `message`, with where the value came from.
    fn invalid(&self, key: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_string(),
            origin: (self.origin)(key),
            message,
        }
    }

    /// `value` of `key` within `range`, else an error naming the range and its `unit`. Every
    /// number has a range (documented on its field); outside it is an error, not a panic or an
    /// overflow later.
    fn within(
        &self,
        key: &str,
        value: u64,
        range: std::ops::RangeInclusive<u64>,
        unit: &str,
    ) -> Result<(), ConfigError> {
        if range.contains(&value) {
            Ok(())
        } else {
            Err(self.invalid(
                key,
                format!(
                    "{value} is out of range; use {} to {}{unit}",
                    range.start(),
                    range.end()
                ),
            ))
        }
    }

    /// `model:`, with the mock backend's script.
    fn model(&self, m: &ModelConfig) -> Result<(), ConfigError> {
        if m.backend.trim().is_empty() {
            return Err(self.invalid("model.backend", "must name a backend, e.g. 'mock'".into()));
        }
        if !(0.0..=2.0).contains(&m.temperature) || m.temperature.is_nan() {
            return Err(self.invalid(
                "model.temperature",
                format!("{} is out of range; use a value from 0 to 2", m.temperature),
            ));
        }
        self.within(
            "model.max_tokens",
            m.max_tokens.into(),
            RANGE_MAX_TOKENS,
            " tokens",
        )?;
        self.within(
            "model.timeout",
            m.timeout,
            RANGE_MODEL_TIMEOUT_S,
            " seconds",
        )?;
        self.within("model.retries", m.retries.into(), RANGE_RETRIES, " retries")?;
        self.within(
            "model.mock.token_delay_ms",
            m.mock.token_delay_ms,
            RANGE_DELAY_MS,
            " ms",
        )?;
        if let Some(base) = &m.base_url {
            match url::Url::parse(base) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                Ok(_) | Err(_) => {
                    return Err(self.invalid(
                        "model.base_url",
                        format!(
                            "'{}' is not an http(s) URL; write e.g. \
                             http://localhost:11434/v1 or https://api.openai.com/v1",
                            crate::sanitize::quote(&super::display_url(base))
                        ),
                    ));
                }
            }
        }
        if m.api_key_env.as_deref().is_some_and(looks_like_a_key) {
            // The value is never repeated: it may be the key itself.
            return Err(self.invalid(
                "model.api_key_env",
                "does not look like the name of an environment variable (letters, digits and _, \
                 e.g. OPENAI_API_KEY); it must name the variable that holds the key, never hold \
                 the key itself (the value is not shown here; if it was a key, revoke it)"
                    .into(),
            ));
        }
        for (i, rule) in m.mock.script.iter().enumerate() {
            if let Err(e) = regex::Regex::new(&rule.pattern) {
                return Err(self.invalid(
                    &format!("model.mock.script[{i}].pattern"),
                    format!(
                        "is not a valid regular expression: {}",
                        crate::sanitize::excerpt(
                            &e.to_string(),
                            3 * crate::sanitize::EXCERPT_CHARS
                        )
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `tools:` ([`ToolsConfig::check`]).
    fn tools(&self, tools: &ToolsConfig) -> Result<(), ConfigError> {
        if let Err((key, message)) = tools.check() {
            return Err(self.invalid(&key, message));
        }
        Ok(())
    }

    /// `bench:` ([`BenchConfig::check`]).
    fn bench(&self, bench: &BenchConfig) -> Result<(), ConfigError> {
        if let Err((key, message)) = bench.check() {
            return Err(self.invalid(&key, message));
        }
        Ok(())
    }

    /// `latency:`.
    fn latency(&self, l: &LatencyConfig) -> Result<(), ConfigError> {
        if !RANGE_TIME_SCALE.contains(&l.time_scale) {
            return Err(self.invalid(
                "latency.time_scale",
                format!(
                    "{} is out of range; use {} to {} (1 = real time, 60 = a minute per second)",
                    l.time_scale,
                    RANGE_TIME_SCALE.start(),
                    RANGE_TIME_SCALE.end()
                ),
            ));
        }
        if let Some(start) = l.start {
            use chrono::Datelike;
            let (first, last) = crate::ephemeris::VALID_YEARS;
            if !(first..=last).contains(&start.year()) {
                return Err(self.invalid(
                    "latency.start",
                    format!(
                        "{} is out of range: the ephemeris covers {first}–{last}; pick a date \
                         in those years, or remove the key to start at now",
                        start.to_rfc3339()
                    ),
                ));
            }
        }
        if !RANGE_DEEP_SPACE_AU.contains(&l.deep_space_au) {
            return Err(self.invalid(
                "latency.deep_space_au",
                format!(
                    "{} is out of range; use a distance from {} to {} au (173 au is one light-day)",
                    l.deep_space_au,
                    RANGE_DEEP_SPACE_AU.start(),
                    RANGE_DEEP_SPACE_AU.end()
                ),
            ));
        }
        self.within(
            "latency.custom.min_ms",
            l.custom.min_ms,
            RANGE_DELAY_MS,
            " ms",
        )?;
        self.within(
            "latency.custom.max_ms",
            l.custom.max_ms,
            RANGE_DELAY_MS,
            " ms",
        )?;
        if l.custom.min_ms > l.custom.max_ms {
            return Err(self.invalid(
                "latency.custom",
                format!(
                    "min_ms ({}) is greater than max_ms ({}); swap them",
                    l.custom.min_ms, l.custom.max_ms
                ),
            ));
        }
        Ok(())
    }

    /// `runtime:`.
    fn runtime(&self, r: &RuntimeConfig) -> Result<(), ConfigError> {
        self.within(
            "runtime.max_concurrent",
            r.max_concurrent as u64,
            RANGE_MAX_CONCURRENT,
            " tasks",
        )?;
        self.within(
            "runtime.retries",
            r.retries.into(),
            RANGE_RETRIES,
            " retries",
        )?;
        self.within("runtime.backoff_ms", r.backoff_ms, RANGE_BACKOFF_MS, " ms")?;
        self.within(
            "runtime.backoff_max_ms",
            r.backoff_max_ms,
            RANGE_BACKOFF_MS,
            " ms",
        )?;
        self.within(
            "runtime.task_timeout",
            r.task_timeout,
            RANGE_TASK_TIMEOUT_S,
            " seconds (0 = no limit)",
        )?;
        self.within(
            "runtime.aging_ms",
            r.aging_ms,
            RANGE_AGING_MS,
            " ms (0 = off)",
        )?;
        self.within(
            "runtime.queue_capacity",
            r.queue_capacity as u64,
            RANGE_QUEUE_CAPACITY,
            " tasks",
        )?;
        self.within(
            "runtime.max_tokens_per_task",
            r.max_tokens_per_task,
            RANGE_TASK_TOKENS,
            " tokens (0 = no limit)",
        )?;
        if r.backoff_max_ms < r.backoff_ms {
            return Err(self.invalid(
                "runtime.backoff_max_ms",
                format!(
                    "{} is below runtime.backoff_ms ({}); raise it or lower backoff_ms",
                    r.backoff_max_ms, r.backoff_ms
                ),
            ));
        }
        Ok(())
    }

    /// `logging:`.
    fn logging(&self, logging: &LoggingConfig) -> Result<(), ConfigError> {
        if logging.max_bytes != 0 {
            self.within(
                "logging.max_bytes",
                logging.max_bytes,
                RANGE_LOG_BYTES,
                " bytes (0 = never rotate)",
            )?;
        }
        self.within(
            "logging.keep",
            u64::from(logging.keep),
            RANGE_LOG_KEEP,
            " rotated files",
        )?;
        let level = logging.level.to_ascii_lowercase();
        if !LOG_LEVELS.contains(&level.as_str()) {
            return Err(self.invalid(
                "logging.level",
                format!(
                    "unknown level '{}'{}; valid levels: {}",
                    crate::sanitize::quote(&logging.level),
                    suggest::did_you_mean(&level, LOG_LEVELS),
                    LOG_LEVELS.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// `tui:`.
    fn tui(&self, tui: &TuiConfig) -> Result<(), ConfigError> {
        if !(1..=120).contains(&tui.frame_rate) {
            return Err(self.invalid(
                "tui.frame_rate",
                format!(
                    "{} is out of range; use 1 to 120 frames per second",
                    tui.frame_rate
                ),
            ));
        }
        Ok(())
    }
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
