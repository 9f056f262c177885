//! Error types shared by the whole program and the mapping from errors to exit codes.
//!
//! Every error a user can cause is a sentence for the operator: what was wrong, where, and what
//! to do. `main` prints it on stderr and exits with [`ExitCode`] (DESIGN §3).

use std::fmt;

use crate::config::ConfigError;
use crate::models::ModelError;

/// Process exit codes, as promised by DESIGN §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything worked.
    Success = 0,
    /// A runtime failure: backend, I/O, a failed execution.
    Runtime = 1,
    /// Bad usage or configuration.
    Usage = 2,
    /// The audit chain does not verify.
    Integrity = 3,
    /// Refused by policy or the safety boundary.
    Refused = 4,
    /// `veyra policy replay`: some recorded decision would flip under the candidate set.
    Flips = 5,
    /// Closed by SIGHUP (128 + 1, as shells report a process the signal ended).
    HungUp = 129,
    /// Closed by SIGINT (128 + 2).
    Interrupted = 130,
    /// Closed by SIGTERM (128 + 15).
    Terminated = 143,
}

impl ExitCode {
    /// The numeric code handed to the operating system.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The top-level error of the library: every public fallible operation ends in one of these.
#[derive(Debug, thiserror::Error)]
pub enum VeyraError {
    /// The configuration could not be loaded or is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A model backend failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The caller asked for something that cannot be done as asked.
    #[error("{0}")]
    Usage(String),
    /// An input/output operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What Veyra was doing, e.g. "reading the prompt from stdin".
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The audit trail could not record or does not verify.
    #[error(transparent)]
    Audit(#[from] crate::governance::AuditError),
    /// The policies could not be loaded, or a policy question was malformed.
    #[error(transparent)]
    Policy(#[from] crate::governance::PolicyError),
    /// An operation was refused by the governance layer.
    #[error("refused: {0}")]
    Refused(String),
    /// The task was cancelled before it finished.
    #[error("cancelled ({0})")]
    Cancelled(String),
    /// A task ended in failure (after any retries).
    #[error("{message}")]
    Task {
        /// Machine-readable kind (`rate_limit`, `timeout`, …).
        kind: String,
        /// What went wrong.
        message: String,
    },
    /// Anything else that went wrong at run time (terminal, runtime start-up, ...).
    #[error("{0}")]
    Runtime(String),
}

impl From<crate::logging::LoggingError> for VeyraError {
    fn from(e: crate::logging::LoggingError) -> Self {
        VeyraError::io(
            format!("opening log file {} (logging.file)", e.path.display()),
            e.source,
        )
    }
}

impl VeyraError {
    /// Wraps an I/O error with what Veyra was doing when it happened.
    pub fn io(context: impl fmt::Display, source: std::io::Error) -> Self {
        VeyraError::Io {
            context: context.to_string(),
            source,
        }
    }

    /// True when the error is only that stdout's reader went away (`veyra run | head`).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, VeyraError::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The exit code this error maps to (DESIGN §3).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            VeyraError::Config(_) | VeyraError::Usage(_) | VeyraError::Policy(_) => ExitCode::Usage,
            VeyraError::Model(e) if e.kind == crate::models::ModelErrorKind::Config => {
                ExitCode::Usage
            }
            VeyraError::Model(_) | VeyraError::Io { .. } | VeyraError::Runtime(_) => {
                ExitCode::Runtime
            }
            VeyraError::Cancelled(_) | VeyraError::Task { .. } => ExitCode::Runtime,
            VeyraError::Audit(e) => {
                if e.is_integrity_failure() {
                    ExitCode::Integrity
                } else {
                    ExitCode::Runtime
                }
            }
            VeyraError::Refused(_) => ExitCode::Refused,
        }
    }
}
