//! `runtime.executor` and `nats:` — where tasks run: on this machine's own scheduler
//! (`local`, the default: nothing changes on one machine), or on a fleet of workers pulling
//! them from a NATS JetStream work queue (`nats`; see `crate::fleet`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Range of `nats.ack_wait_ms`: how long a worker may go without saying it still works on a
/// task before the server hands the task to another (1 s to an hour).
pub const RANGE_ACK_WAIT_MS: std::ops::RangeInclusive<u64> = 1_000..=3_600_000;

/// Where tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Executor {
    /// This process's own scheduler.
    #[default]
    Local,
    /// Workers on a NATS JetStream work queue (`veyra worker`).
    Nats,
}

/// `nats:` — the fleet's server and names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// The server: `nats://host:port` (`tls://` for TLS). `veyra worker --nats URL` and
    /// `veyra attach nats://…` override it.
    pub url: Option<String>,
    /// A NATS credentials file (`.creds`: a user JWT and its nkey seed), read when connecting.
    pub credentials: Option<PathBuf>,
    /// The JetStream stream holding the task queue.
    pub stream: String,
    /// The first token of every subject: `<prefix>.tasks.<priority>`,
    /// `<prefix>.events.<execution>`.
    pub subject_prefix: String,
    /// Milliseconds a worker may be silent about a task before it is delivered to another
    /// (a running task's worker says it is still at it well within this).
    pub ack_wait_ms: u64,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: None,
            credentials: None,
            stream: "VEYRA_TASKS".into(),
            subject_prefix: "veyra".into(),
            ack_wait_ms: 30_000,
        }
    }
}

/// True for a NATS name token: 1 to 64 of `[A-Za-z0-9_-]` (no `.`, `*`, `>` or space, which
/// would change what a subject matches).
pub fn is_token(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

impl NatsConfig {
    /// Checks every field; `Err((key, message))` names the first bad one. `executor` is the
    /// configured one: with `nats` a server must be named.
    pub fn check(&self, executor: Executor) -> Result<(), (String, String)> {
        if let Some(url) = &self.url
            && let Some(why) = url_refusal(url)
        {
            return Err(("nats.url".into(), why));
        }
        if executor == Executor::Nats && self.url.is_none() {
            return Err((
                "nats.url".into(),
                "is not set, and runtime.executor is nats; name the server (nats://host:4222), \
                 or set runtime.executor: local"
                    .into(),
            ));
        }
        if !is_token(&self.stream) {
            return Err((
                "nats.stream".into(),
                format!(
                    "'{}' is not a stream name; use 1 to 64 letters, digits, '_' or '-'",
                    crate::sanitize::quote(&self.stream)
                ),
            ));
        }
        if !is_token(&self.subject_prefix) {
            return Err((
                "nats.subject_prefix".into(),
                format!(
                    "'{}' is not a subject token; use 1 to 64 letters, digits, '_' or '-' (no \
                     '.', '*' or '>')",
                    crate::sanitize::quote(&self.subject_prefix)
                ),
            ));
        }
        if !RANGE_ACK_WAIT_MS.contains(&self.ack_wait_ms) {
            return Err((
                "nats.ack_wait_ms".into(),
                format!(
                    "{} is out of range; use {} to {}",
                    self.ack_wait_ms,
                    RANGE_ACK_WAIT_MS.start(),
                    RANGE_ACK_WAIT_MS.end()
                ),
            ));
        }
        if self
            .credentials
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err((
                "nats.credentials".into(),
                "is empty; name a .creds file, or leave it out".into(),
            ));
        }
        Ok(())
    }
}

/// Why `url` is not a NATS server's address, if it is not.
pub fn url_refusal(url: &str) -> Option<String> {
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            // What could be a user and password is never repeated, even in an address that
            // does not parse.
            let shown = match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    format!("{}://…@{}", &url[..scheme], &url[at + 1..])
                }
                (_, Some(at)) => format!("…@{}", &url[at + 1..]),
                _ => url.to_string(),
            };
            return Some(format!(
                "'{}' is not a URL ({e}); write e.g. nats://127.0.0.1:4222",
                crate::sanitize::quote(&shown)
            ));
        }
    };
    if !matches!(parsed.scheme(), "nats" | "tls") {
        return Some(format!(
            "'{}:' is not a NATS scheme; use nats:// (or tls://)",
            crate::sanitize::quote(parsed.scheme())
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some(
            "carries credentials (user:password@); name a credentials file in nats.credentials"
                .into(),
        );
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Some("names no host; write e.g. nats://127.0.0.1:4222".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_are_named() {
        let ok = NatsConfig {
            url: Some("nats://127.0.0.1:4222".into()),
            ..NatsConfig::default()
        };
        assert!(ok.check(Executor::Nats).is_ok());
        assert!(NatsConfig::default().check(Executor::Local).is_ok());
        assert_eq!(
            NatsConfig::default().check(Executor::Nats).unwrap_err().0,
            "nats.url"
        );
        let key = |c: NatsConfig| c.check(Executor::Local).unwrap_err().0;
        for bad in ["http://x:4222", "nats://u:p@x:4222", "not a url"] {
            assert_eq!(
                key(NatsConfig {
                    url: Some(bad.into()),
                    ..NatsConfig::default()
                }),
                "nats.url",
                "{bad}"
            );
        }
        for bad in ["veyra.tasks", "a*", ">", ""] {
            assert_eq!(
                key(NatsConfig {
                    subject_prefix: bad.into(),
                    ..NatsConfig::default()
                }),
                "nats.subject_prefix",
                "{bad}"
            );
        }
        assert_eq!(
            key(NatsConfig {
                ack_wait_ms: 10,
                ..NatsConfig::default()
            }),
            "nats.ack_wait_ms"
        );
    }
}
