//! One runtime, many clients (DESIGN §8). The process that hosts a runtime — `veyra serve`, or
//! a console with nothing to attach to — serves it on a control socket ([`socket`]) with
//! [`Server`]; consoles, `veyra run` and `veyra attach` on the same store attach to it as
//! [`Client`]s and speak [`protocol`] (`veyra.rpc/1`): a snapshot and the live events the core
//! publishes (through the [`journal`]), and commands the runtime decides with its own gate,
//! recording which client asked. [`Handle`] is what a console drives, whichever side of the
//! socket its runtime is on.

pub mod bench;
pub mod client;
pub mod detail;
pub mod journal;
pub mod protocol;
pub mod server;
pub mod socket;
pub mod ssh;

use std::path::Path;

pub use client::{Client, Inbound};
pub use server::{Server, Service};

use crate::config::LatencyPreset;
use crate::core::{ExecutionRequest, VeyraCore};
use crate::error::VeyraError;
use crate::events::{ConfirmScope, ExecutionId, LinkStatus, Priority};
use protocol::{Reply, Request, RpcError};

/// What can go wrong serving or attaching.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A file or socket operation failed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file or socket.
        path: String,
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A socket or its directory that must not be trusted.
    #[error("{0}")]
    Unsafe(String),
    /// The runtime refused this client, and why.
    #[error("the runtime refused this client: {0}")]
    Refused(String),
    /// The far end does not speak the protocol.
    #[error("{0}")]
    Protocol(String),
    /// The runtime went away.
    #[error("{0}")]
    Gone(String),
    /// Anything else.
    #[error("{0}")]
    Runtime(String),
}

impl ServiceError {
    pub(crate) fn io(path: &Path, what: &str, source: std::io::Error) -> Self {
        ServiceError::Io {
            path: path.display().to_string(),
            what: what.to_string(),
            source,
        }
    }
}

impl From<ServiceError> for VeyraError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unsafe(m) => VeyraError::Usage(m),
            other => VeyraError::Runtime(other.to_string()),
        }
    }
}

/// Attaches to the runtime serving `config`'s store as `kind`, if one does: `Ok(None)` when
/// the store is kept in memory or nothing serves it.
pub async fn attach_configured(
    config: &crate::config::VeyraConfig,
    kind: &str,
    events: bool,
) -> Result<Option<(Client, tokio::sync::mpsc::Receiver<Inbound>)>, ServiceError> {
    let Some(path) = socket::socket_path(config) else {
        return Ok(None);
    };
    match Client::connect(&path, kind, events).await {
        // A socket that cannot be reached (a path too long for a socket, no permission) is
        // no runtime to attach to: this process hosts one, and says why it did not attach.
        Err(ServiceError::Io { path, what, source }) => {
            tracing::warn!(socket = %path, "{what}: {source}; hosting a runtime here");
            Ok(None)
        }
        other => other,
    }
}

/// A runtime a console drives: its own core, or one it attached to. Each method is one
/// command; its errors are the sentences the console shows.
#[derive(Debug, Clone)]
pub enum Handle {
    /// This process hosts the runtime: its core and its benchmark runs.
    Local(VeyraCore, std::sync::Arc<bench::BenchHost>),
    /// Another process does; the session to it.
    Attached(Box<Client>),
}

fn said(e: RpcError) -> String {
    e.message
}

fn unexpected(reply: &Reply) -> String {
    format!("the runtime answered with an unexpected {reply:?}")
}

impl Handle {
    /// The core, when this process hosts it.
    pub fn core(&self) -> Option<&VeyraCore> {
        match self {
            Handle::Local(core, _) => Some(core),
            Handle::Attached(_) => None,
        }
    }

    /// Submits a prompt from the operator.
    pub async fn submit(&self, prompt: String, priority: Priority) -> Result<ExecutionId, String> {
        match self {
            Handle::Local(core, _) => core
                .submit(ExecutionRequest::new(prompt).priority(priority))
                .map_err(|e| e.to_string()),
            Handle::Attached(client) => match client
                .request(Request::Submit {
                    prompt,
                    priority,
                    system: None,
                    backend: None,
                    model: None,
                    tools: None,
                    follow: false,
                })
                .await
                .map_err(said)?
            {
                Reply::Submitted { id } => Ok(id),
                other => Err(unexpected(&other)),
            },
        }
    }

    /// Cancels a task.
    pub async fn cancel(&self, id: ExecutionId) -> Result<(), String> {
        match self {
            Handle::Local(core, _) => core.cancel(id).map_err(|e| e.to_string()),
            Handle::Attached(client) => client
                .request(Request::Cancel { id })
                .await
                .map(drop)
                .map_err(said),
        }
    }

    /// Switches the link preset.
    pub async fn set_preset(&self, preset: LatencyPreset) -> Result<LinkStatus, String> {
        match self {
            Handle::Local(core, _) => core.set_preset(preset).await.map_err(|e| e.to_string()),
            Handle::Attached(client) => link(
                client
                    .request(Request::SetPreset {
                        preset: preset.to_string(),
                    })
                    .await,
            ),
        }
    }

    /// Switches the link simulation.
    pub async fn set_simulated(&self, on: bool) -> Result<LinkStatus, String> {
        match self {
            Handle::Local(core, _) => core.set_simulated(on).await.map_err(|e| e.to_string()),
            Handle::Attached(client) => link(client.request(Request::SetSimulated { on }).await),
        }
    }

    /// Switches the backend (and model).
    pub async fn set_backend(&self, backend: &str, model: Option<&str>) -> Result<(), String> {
        match self {
            Handle::Local(core, _) => core
                .set_backend(backend, model)
                .await
                .map_err(|e| e.to_string()),
            Handle::Attached(client) => client
                .request(Request::SetBackend {
                    backend: backend.to_string(),
                    model: model.map(str::to_string),
                })
                .await
                .map(drop)
                .map_err(said),
        }
    }

    /// Answers a confirmation.
    pub async fn answer(
        &self,
        request: u64,
        allowed: bool,
        scope: ConfirmScope,
    ) -> Result<(), String> {
        match self {
            Handle::Local(core, _) => core
                .answer_confirmation_scoped(request, allowed, scope, "operator")
                .map_err(|e| e.to_string()),
            Handle::Attached(client) => client
                .request(Request::Answer {
                    request,
                    allowed,
                    scope,
                })
                .await
                .map(drop)
                .map_err(said),
        }
    }

    /// Verifies the audit chain in full; the result is published as an event. An attached
    /// runtime's answer is given too (entries checked, and the first failure): over a fleet,
    /// whose workers' audit events stay with them, it is the only word of the result.
    pub async fn verify_audit(&self) -> Result<Option<(u64, Option<String>)>, String> {
        match self {
            Handle::Local(core, _) => {
                let core = core.clone();
                tokio::task::spawn_blocking(move || core.verify_audit())
                    .await
                    .map(|_| None)
                    .map_err(|e| format!("verifying: {e}"))
            }
            Handle::Attached(client) => match client.request(Request::VerifyAudit).await {
                Ok(Reply::Verified { entries, failure }) => Ok(Some((entries, failure))),
                Ok(_) => Ok(None),
                Err(e) => Err(said(e)),
            },
        }
    }

    /// Undoes a file tool call: the entry undone and the file.
    pub async fn undo(&self, seq: Option<u64>) -> Result<(u64, String), String> {
        match self {
            Handle::Local(core, _) => core
                .undo_tool(seq, "operator")
                .await
                .map(|done| (done.undone, done.path))
                .map_err(|e| e.to_string()),
            Handle::Attached(client) => match client.request(Request::Undo { seq }).await {
                Ok(Reply::Undone { undone, path, .. }) => Ok((undone, path)),
                Ok(other) => Err(unexpected(&other)),
                Err(e) => Err(said(e)),
            },
        }
    }

    /// An audit entry in full: title and lines.
    pub async fn audit_entry(&self, seq: u64) -> Result<(String, Vec<String>), String> {
        match self {
            Handle::Local(core, _) => {
                let core = core.clone();
                tokio::task::spawn_blocking(move || detail::audit_entry(&core, seq))
                    .await
                    .map_err(|e| format!("reading entry {seq}: {e}"))?
            }
            Handle::Attached(client) => {
                detail_reply(client.request(Request::AuditEntry { seq }).await)
            }
        }
    }

    /// The text of a violation's rule.
    pub async fn rule_text(&self, rule: &str) -> Result<Vec<String>, String> {
        match self {
            Handle::Local(core, _) => Ok(detail::rule_text(core, rule)),
            Handle::Attached(client) => detail_reply(
                client
                    .request(Request::ExplainRule {
                        rule: rule.to_string(),
                    })
                    .await,
            )
            .map(|(_, lines)| lines),
        }
    }
}

impl Handle {
    /// Works out what a benchmark run would cost, for the operator to approve.
    pub async fn bench_plan(
        &self,
        request: crate::benchmarks::request::BenchRequest,
    ) -> Result<bench::BenchPlan, String> {
        match self {
            Handle::Local(_, runs) => runs.plan(request).await,
            Handle::Attached(client) => {
                match client.request(Request::BenchPlan { request }).await {
                    Ok(Reply::BenchPlan { plan }) => Ok(plan),
                    Ok(other) => Err(unexpected(&other)),
                    Err(e) => Err(said(e)),
                }
            }
        }
    }

    /// Starts the runtime's benchmark run; its news follows on the console's feed.
    pub async fn bench_start(
        &self,
        request: crate::benchmarks::request::BenchRequest,
    ) -> Result<bench::Began, String> {
        match self {
            Handle::Local(_, runs) => runs.start(&request, None, None, false),
            Handle::Attached(client) => match client
                .request(Request::BenchStart {
                    request,
                    resume: None,
                    follow: false,
                })
                .await
            {
                Ok(Reply::BenchStarted { began }) => Ok(began),
                Ok(other) => Err(unexpected(&other)),
                Err(e) => Err(said(e)),
            },
        }
    }

    /// Reloads the runtime's policy set: the hashes before and after.
    pub async fn reload_policy(&self) -> Result<(String, String), String> {
        match self {
            Handle::Local(core, _) => core.reload_policy().await.map_err(|e| e.to_string()),
            Handle::Attached(client) => match client.request(Request::ReloadPolicy).await {
                Ok(Reply::PolicyReloaded { from, to }) => Ok((from, to)),
                Ok(other) => Err(unexpected(&other)),
                Err(e) => Err(said(e)),
            },
        }
    }

    /// The runtime's standing approvals.
    pub async fn approvals(&self) -> Result<Vec<crate::core::Approval>, String> {
        match self {
            Handle::Local(core, _) => Ok(core.approvals()),
            Handle::Attached(client) => match client.request(Request::Approvals).await {
                Ok(Reply::Approvals { approvals }) => Ok(approvals),
                Ok(other) => Err(unexpected(&other)),
                Err(e) => Err(said(e)),
            },
        }
    }

    /// Allows calls of `tool` (matching `argument`, when given) without asking, until revoked
    /// or this console closes.
    pub async fn approve(
        &self,
        tool: String,
        argument: Option<crate::core::ArgumentPattern>,
    ) -> Result<crate::core::Approval, String> {
        match self {
            Handle::Local(core, _) => core
                .approve(&tool, argument, "operator")
                .await
                .map_err(|e| e.to_string()),
            Handle::Attached(client) => {
                approval(client.request(Request::Approve { tool, argument }).await)
            }
        }
    }

    /// Takes back approval `id`.
    pub async fn revoke_approval(&self, id: u64) -> Result<crate::core::Approval, String> {
        match self {
            Handle::Local(core, _) => core
                .revoke_approval(id, "operator")
                .await
                .map_err(|e| e.to_string()),
            Handle::Attached(client) => {
                approval(client.request(Request::RevokeApproval { id }).await)
            }
        }
    }

    /// Cancels the runtime's benchmark run (`run` only, when named).
    pub async fn bench_cancel(&self, run: Option<u64>) -> Result<(), String> {
        match self {
            Handle::Local(_, runs) => runs.cancel(run),
            Handle::Attached(client) => client
                .request(Request::BenchCancel { run })
                .await
                .map(drop)
                .map_err(said),
        }
    }
}

fn approval(reply: Result<Reply, RpcError>) -> Result<crate::core::Approval, String> {
    match reply {
        Ok(Reply::Approval { approval }) => Ok(approval),
        Ok(other) => Err(unexpected(&other)),
        Err(e) => Err(said(e)),
    }
}

fn link(reply: Result<Reply, RpcError>) -> Result<LinkStatus, String> {
    match reply {
        Ok(Reply::Link { link }) => Ok(link),
        Ok(other) => Err(unexpected(&other)),
        Err(e) => Err(said(e)),
    }
}

/// A detail reply's title and lines, sanitized again: they came over a socket.
fn detail_reply(reply: Result<Reply, RpcError>) -> Result<(String, Vec<String>), String> {
    match reply {
        Ok(Reply::Detail { title, lines }) => Ok((
            crate::sanitize::sanitize_line(&title).into_owned(),
            lines
                .iter()
                .map(|l| crate::sanitize::sanitize_line(l).into_owned())
                .collect(),
        )),
        Ok(other) => Err(unexpected(&other)),
        Err(e) => Err(said(e)),
    }
}

#[cfg(test)]
mod tests;
