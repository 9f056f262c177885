//! Who asked: the client of a serving runtime behind a command (DESIGN §8). The runtime
//! decides every command with its own gate; the audit entries an act records name the client
//! in their metadata (`client`: pid, uid, transport), so a trail shared by many terminals
//! still says which one acted. A [`Caller`] travels with a submitted prompt
//! ([`ExecutionRequest::caller`](super::ExecutionRequest)) and, for the acts a command does
//! at once, in a task-local scope ([`as_caller`]).

use serde::{Deserialize, Serialize};

use crate::governance::AuditRecord;

/// A client of a serving runtime, as the runtime saw it (the socket's peer credentials), not
/// as it described itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Caller {
    /// The peer's process id, when the socket told it.
    pub pid: Option<i32>,
    /// The peer's user id.
    pub uid: u32,
    /// How it reached the runtime: `unix`, or `stdio` (a `veyra attach --stdio` relay, e.g.
    /// through `ssh`), with what the relay said of its far end.
    pub transport: String,
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid}, uid {}, {}", self.uid, self.transport),
            None => write!(f, "uid {}, {}", self.uid, self.transport),
        }
    }
}

tokio::task_local! {
    static CALLER: Caller;
}

/// Runs `f` on behalf of `caller`: every audit entry it records names the client.
pub async fn as_caller<F: std::future::Future>(caller: Option<Caller>, f: F) -> F::Output {
    match caller {
        Some(caller) => CALLER.scope(caller, f).await,
        None => f.await,
    }
}

/// The caller of the act in progress, if a client asked for it.
pub(crate) fn current() -> Option<Caller> {
    CALLER.try_with(Caller::clone).ok()
}

/// `record` with `metadata.client` set when a client asked for the act in progress.
pub(crate) fn stamp(mut record: AuditRecord) -> AuditRecord {
    if let Some(caller) = current()
        && let Some(map) = record.metadata.as_object_mut()
        && let Ok(client) = serde_json::to_value(&caller)
    {
        map.insert("client".into(), client);
    }
    record
}

/// `metadata.client` for a record written outside the act's own task (a benchmark run's
/// `BENCHMARK` entry, written when the run ends): set from `caller` when there is one.
pub trait WithClient {
    /// The record with `metadata.client` set from `caller`, when there is one.
    fn with_client(self, caller: Option<&Caller>) -> Self;
}

impl WithClient for AuditRecord {
    fn with_client(mut self, caller: Option<&Caller>) -> Self {
        if let Some(caller) = caller
            && let Some(map) = self.metadata.as_object_mut()
            && let Ok(client) = serde_json::to_value(caller)
        {
            map.insert("client".into(), client);
        }
        self
    }
}

/// This machine's host name, as clients and fleet workers name where they run.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}
