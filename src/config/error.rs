//! [`ConfigError`], everything that can be wrong with a configuration, and [`Origin`], where a
//! value came from, so each message names the place and the fix.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from, for error messages: the same sources `veyra config
/// show` lists (a flag, a file and its line, a `VEYRA_*` variable, the built-in defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built-in default.
    Default,
    /// A configuration file, and the line that set the value when it is known.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value, when known.
        line: Option<u64>,
    },
    /// An environment variable.
    Env(String),
    /// A command-line flag, as typed (`--theme`).
    Flag(String),
}

impl Origin {
    /// The file `path` as a whole (no line known).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Origin::File {
            path: path.into(),
            line: None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in defaults"),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Flag(flag) => write!(f, "command-line flag {flag}"),
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

impl ConfigError {
    /// The same error with `origin` as where `key`'s value came from, when it is about `key`
    /// (a caller that knows better than the code that found the fault: `--theme` over
    /// `tui.theme`).
    pub fn from_origin(self, key: &str, origin: Origin) -> Self {
        match self {
            ConfigError::Invalid {
                key: k, message, ..
            } if k == key => ConfigError::Invalid {
                key: k,
                origin,
                message,
            },
            other => other,
        }
    }
}
