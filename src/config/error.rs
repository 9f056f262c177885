//! [`ConfigError`], everything that can be wrong with a configuration, and [`Origin`], where a
//! value came from, so each message names the place and the fix.

use std::fmt;
use std::path::PathBuf;

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
