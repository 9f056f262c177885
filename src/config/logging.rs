//! `logging:` — the structured log's level, format, file and rotation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Range of `logging.max_bytes` when not 0 (0 = never rotate).
pub const RANGE_LOG_BYTES: std::ops::RangeInclusive<u64> = 65_536..=1 << 30;
/// Range of `logging.keep`.
pub const RANGE_LOG_KEEP: std::ops::RangeInclusive<u64> = 0..=100;

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
