//! The signals that close Veyra (SIGTERM, SIGINT, SIGHUP): which arrived, what the process
//! says and the exit code it ends with (128 + the signal's number, DESIGN §3).

use crate::error::{ExitCode, VeyraError};

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
    /// `None` when the process started with SIGHUP ignored: under `nohup` a hangup must not
    /// stop the work (a handler would replace the ignoring).
    hangup: Option<tokio::signal::unix::Signal>,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers (inside a tokio runtime); SIGHUP's only if it is not ignored
    /// (`nohup`).
    pub fn install() -> Result<Self, VeyraError> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen =
            |kind| signal(kind).map_err(|e| VeyraError::io("installing signal handlers", e));
        Ok(StopSignals {
            terminate: listen(SignalKind::terminate())?,
            hangup: (!hangup_ignored())
                .then(|| listen(SignalKind::hangup()))
                .transpose()?,
            interrupt: listen(SignalKind::interrupt())?,
        })
    }

    /// The next of the three signals to arrive.
    pub async fn recv(&mut self) -> StopSignal {
        let (got, signal) = tokio::select! {
            got = self.terminate.recv() => (got, StopSignal::Terminate),
            got = async {
                match self.hangup.as_mut() {
                    Some(hangup) => hangup.recv().await,
                    None => std::future::pending().await,
                }
            } => (got, StopSignal::Hangup),
            got = self.interrupt.recv() => (got, StopSignal::Interrupt),
        };
        if got.is_none() {
            // The runtime is shutting down: no signal comes any more.
            std::future::pending::<()>().await;
        }
        signal
    }
}

/// Whether this process started with SIGHUP ignored, as `nohup` leaves it: the `SigIgn` mask
/// of `/proc/self/status` (bit 0 is signal 1, SIGHUP). Unreadable (not Linux): not ignored.
fn hangup_ignored() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(sig_ign_mask)
        .is_some_and(|mask| mask & 1 == 1)
}

/// The `SigIgn:` mask of a `/proc/PID/status` text.
fn sig_ign_mask(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ignored_mask_is_read_from_proc_status() {
        let status = "Name:\tveyra\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000001\n";
        assert_eq!(sig_ign_mask(status), Some(1));
        assert_eq!(sig_ign_mask("SigIgn:\t0000000000001000\n"), Some(0x1000));
        assert_eq!(sig_ign_mask("SigIgn:\tzz\n"), None);
        assert_eq!(sig_ign_mask("Name:\tveyra\n"), None);
    }
}
