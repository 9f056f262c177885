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

/// A signal that closes Veyra: what was in flight is cancelled through the core (and audited),
/// the terminal is given back, one line on stderr says what was cancelled, and the process
/// exits with 128 + the signal's number ([`StopSignal::exit_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGHUP: the terminal went away.
    Hangup,
    /// SIGINT: `kill -INT`, or Ctrl-C where the terminal is not in raw mode.
    Interrupt,
    /// SIGTERM: asked to stop.
    Terminate,
}

impl StopSignal {
    /// The signal's name, as `kill -l` spells it with the prefix.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Hangup => "SIGHUP",
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }

    /// The exit code a process closed by this signal reports (128 + its number).
    pub fn exit_code(self) -> ExitCode {
        match self {
            StopSignal::Hangup => ExitCode::HungUp,
            StopSignal::Interrupt => ExitCode::Interrupted,
            StopSignal::Terminate => ExitCode::Terminated,
        }
    }

    /// The line stderr gets once the terminal is back: the signal, how many tasks were
    /// cancelled (and whether the audit trail recorded it), and that Veyra is exiting.
    pub fn farewell(self, cancelled: usize, audited: bool) -> String {
        let what = match cancelled {
            0 => "nothing was in flight".to_string(),
            1 => "cancelled 1 task in flight".to_string(),
            n => format!("cancelled {n} tasks in flight"),
        };
        let audited = if audited && cancelled > 0 {
            " (audited)"
        } else {
            ""
        };
        format!("veyra: {}: {what}{audited}; exiting", self.name())
    }
}

/// SIGTERM, SIGINT and SIGHUP, listened for from creation on (so none slips past between
/// start-up and the first wait).
#[derive(Debug)]
pub struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers (inside a tokio runtime).
    pub fn install() -> Result<Self, VeyraError> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen =
            |kind| signal(kind).map_err(|e| VeyraError::io("installing signal handlers", e));
        Ok(StopSignals {
            terminate: listen(SignalKind::terminate())?,
            hangup: listen(SignalKind::hangup())?,
            interrupt: listen(SignalKind::interrupt())?,
        })
    }

    /// The next of the three signals to arrive.
    pub async fn recv(&mut self) -> StopSignal {
        let (got, signal) = tokio::select! {
            got = self.terminate.recv() => (got, StopSignal::Terminate),
            got = self.hangup.recv() => (got, StopSignal::Hangup),
            got = self.interrupt.recv() => (got, StopSignal::Interrupt),
        };
        if got.is_none() {
            // The runtime is shutting down: no signal comes any more.
            std::future::pending::<()>().await;
        }
        signal
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
