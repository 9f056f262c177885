//! Tools from Model Context Protocol servers (`tools.mcp_servers`), offered as
//! `mcp:<server>:<tool>` beside the compiled-in ones and passing the same gate.
//!
//! Each configured server is a child process speaking MCP (JSON-RPC, one message per line) on
//! its standard input and output, through the official SDK (`rmcp`, client side). Veyra starts
//! it itself rather than through the SDK's child-process transport, so that it owns what matters
//! to an operator: the environment is built, not inherited (`config::BASE_ENV`, the entry's
//! `env`, and the variables its `env_pass` names: no API key reaches a server unless named);
//! the child has its own process group (a Ctrl-C typed at the console is not delivered to it);
//! its standard error is captured, never written over the console; a line from it is capped;
//! and it is killed when Veyra lets it go.
//!
//! A supervisor task per server (`server.rs`) starts it, lists its tools (paged, capped at
//! [`MAX_TOOLS`] per server, each schema compiled once and each name checked), and watches
//! it. A server that fails to start, exits, or leaves a call unanswered past its `timeout_ms`
//! is marked down with the reason, logged, published as [`crate::events::Event::McpServer`],
//! and started again after a backoff (1 s doubling to a minute). A call to a tool of a server
//! that is down fails at once, naming it: `mcp server 'x' is down: …`. Nothing here waits on a
//! server except a call to it, and [`McpHub::ready`] for the commands that list or call tools
//! before they have any.
//!
//! What a server answers is untrusted (`tool.rs`): its text is sanitized (escape sequences
//! become visible placeholders), capped, and scrubbed of every secret Veyra knows of (the
//! model key, the values the server was given) and of anything shaped like a credential.

mod server;
mod tool;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::ToolError;
use super::registry::{Entry, ToolSource};
use crate::config::{McpServerConfig, Secret, VeyraConfig};
use crate::events::EventSink;
use server::Server;

/// The prefix of every MCP tool's name.
pub const PREFIX: &str = "mcp:";

/// Most tools one server may offer; the rest are not registered (and said so in the log).
pub const MAX_TOOLS: usize = 256;

/// Where a server is, as `veyra health` and the events say it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum McpState {
    /// Being started (the first time, or again after going down).
    Starting,
    /// Running, its tools listed.
    Up,
    /// Not running; it is started again after a backoff.
    Down,
    /// Stopped with Veyra.
    Stopped,
}

impl McpState {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// One server's state, for `veyra health`, `veyra tools list` and the events.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct McpServerStatus {
    /// Its name in Veyra.
    pub name: String,
    /// Where it is.
    pub state: McpState,
    /// Its process id while it runs.
    pub pid: Option<u32>,
    /// Tools it offers (those of its last listing while it is down).
    pub tools: usize,
    /// Times it was started again after going down.
    pub restarts: u32,
    /// Why it is down (sanitized, secrets scrubbed), or what its listing left out.
    pub detail: Option<String>,
    /// When it reached this state.
    pub since: chrono::DateTime<chrono::Utc>,
}

/// Every configured MCP server and its tools (see the module docs). The core owns one and
/// mounts it in its tool registry; dropping it stops the servers.
pub struct McpHub {
    servers: Vec<Arc<Server>>,
    shutdown: CancellationToken,
    /// Each server's supervisor, once started (in `servers`' order).
    supervisors: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for McpHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpHub")
            .field(
                "servers",
                &self.servers.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl McpHub {
    /// The servers `config` names, not started yet; `events` hears each change of state.
    /// Every secret Veyra knows of when it starts is scrubbed from what they answer.
    pub fn new(config: &VeyraConfig, events: Arc<dyn EventSink>) -> Self {
        let model_key = config.model.api_key().ok().flatten().map(Arc::new);
        let allow = config.tools.mcp_hosts();
        let servers = config
            .tools
            .mcp_servers
            .iter()
            .map(|c| {
                Arc::new(Server::new(
                    c.clone(),
                    allow.clone(),
                    Arc::new(Scrub {
                        secrets: secrets_of(c, model_key.clone()),
                    }),
                    Arc::clone(&events),
                ))
            })
            .collect();
        McpHub {
            servers,
            shutdown: CancellationToken::new(),
            supervisors: Mutex::new(Vec::new()),
        }
    }

    /// True when no server is configured.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Starts every server's supervisor on the current tokio runtime; without one it does
    /// nothing yet (the next call from inside a runtime starts them). A supervisor whose
    /// runtime has gone (an embedder's `VeyraCore::execute` builds one per call) is started
    /// again on this one: its server was killed with it.
    pub fn start(&self) {
        if self.servers.is_empty() || self.shutdown.is_cancelled() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut supervisors = match self.supervisors.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if supervisors.is_empty() {
            for s in &self.servers {
                supervisors
                    .push(runtime.spawn(server::supervise(Arc::clone(s), self.shutdown.clone())));
            }
            return;
        }
        for (handle, s) in supervisors.iter_mut().zip(&self.servers) {
            if handle.is_finished() {
                // Its connection died with the old runtime: no call may use it, and `ready`
                // waits for the new start.
                s.orphaned();
                *handle = runtime.spawn(server::supervise(Arc::clone(s), self.shutdown.clone()));
            }
        }
    }

    /// Waits until every server has been tried once (up, or down with its reason), each for at
    /// most its `timeout_ms` and a second: what `veyra tools list` and a prompt offered MCP
    /// tools wait for, so that a server's tools are there when it answers in time.
    pub async fn ready(&self) {
        self.start();
        let waits = self.servers.iter().map(|s| {
            let s = Arc::clone(s);
            async move {
                let limit = Duration::from_millis(s.config().timeout_ms) + Duration::from_secs(1);
                let _ = tokio::time::timeout(limit, s.tried()).await;
            }
        });
        futures_util::future::join_all(waits).await;
    }

    /// As [`McpHub::ready`] for the server of tool `name` only (none when it names none).
    pub async fn ready_for(&self, name: &str) {
        self.start();
        let Some(s) =
            split(name).and_then(|(server, _)| self.servers.iter().find(|s| s.name() == server))
        else {
            return;
        };
        let limit = Duration::from_millis(s.config().timeout_ms) + Duration::from_secs(1);
        let _ = tokio::time::timeout(limit, s.tried()).await;
    }

    /// Every server's state, in configuration order.
    pub fn statuses(&self) -> Vec<McpServerStatus> {
        self.start();
        self.servers.iter().map(|s| s.status()).collect()
    }

    /// Names `name` (`mcp:<server>:<tool>`) a configured server?
    pub fn knows_server(&self, name: &str) -> bool {
        split(name).is_some_and(|(server, _)| self.servers.iter().any(|s| s.name() == server))
    }
}

impl Drop for McpHub {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl ToolSource for McpHub {
    fn prefix(&self) -> &'static str {
        PREFIX
    }

    fn entries(&self) -> Vec<Arc<Entry>> {
        self.start();
        self.servers.iter().flat_map(|s| s.entries()).collect()
    }

    fn entry(&self, name: &str) -> Result<Arc<Entry>, ToolError> {
        self.start();
        let shown = crate::sanitize::quote(name);
        let Some((server, tool)) = split(name) else {
            return Err(ToolError::Unknown(format!(
                "'{shown}' is not an MCP tool name; they are mcp:<server>:<tool> \
                 (`veyra tools list` shows them)"
            )));
        };
        let Some(s) = self.servers.iter().find(|s| s.name() == server) else {
            let names: Vec<&str> = self.servers.iter().map(|s| s.name()).collect();
            return Err(ToolError::Unknown(format!(
                "no MCP server named '{}' is configured{}; tools.mcp_servers names them",
                crate::sanitize::quote(server),
                crate::config::suggest::did_you_mean(server, names.iter().copied())
            )));
        };
        s.entry(tool)
    }
}

/// What is scrubbed from a server's words: every secret it could know, and anything shaped
/// like a credential.
pub(crate) struct Scrub {
    secrets: Vec<Arc<Secret>>,
}

impl Scrub {
    /// `text` without them.
    fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if let std::borrow::Cow::Owned(clean) = crate::config::redact_key(&out, Some(secret)) {
                out = clean;
            }
        }
        crate::config::redact(&out, None).into_owned()
    }
}

/// A server as its tools see it: one call, answered as the server sent it.
#[async_trait::async_trait]
trait Remote: Send + Sync {
    /// Calls the server's tool `tool` (its own name) once.
    async fn call(
        &self,
        tool: &str,
        args: &serde_json::Value,
    ) -> Result<rmcp::model::CallToolResult, ToolError>;
}

/// `mcp:<server>:<tool>` split into server and tool.
fn split(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix(PREFIX)?.split_once(':')
}

/// What is scrubbed from a server's answers: the model key, and every value the server was
/// given in its environment by the configuration (`env`, and those `env_pass` passes) that is
/// long enough to search for.
fn secrets_of(config: &McpServerConfig, model_key: Option<Arc<Secret>>) -> Vec<Arc<Secret>> {
    // A token is sent trimmed (`connect_url`): kept trimmed, so its echo is found.
    let passed = config
        .env_pass
        .iter()
        .chain(config.bearer_env.iter())
        .filter_map(|var| std::env::var(var).ok())
        .map(|v| v.trim().to_string());
    model_key
        .into_iter()
        .chain(
            config
                .env
                .values()
                .cloned()
                .chain(passed)
                .filter(|v| v.len() >= crate::config::MIN_KEY_LEN)
                .map(|v| Arc::new(Secret::new(v))),
        )
        .collect()
}

#[cfg(test)]
mod tests;
