//! One MCP server: its supervisor ([`supervise`]), its state, its tools, and a call to it.

use std::collections::{BTreeMap, VecDeque};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, PaginatedRequestParams,
};
use rmcp::service::{RunningService, ServiceError};
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::{Peer, RoleClient, ServiceExt};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::tool::McpTool;
use super::{MAX_TOOLS, McpServerStatus, McpState, Remote, Scrub};
use crate::config::{BASE_ENV, McpServerConfig};
use crate::events::{Event, EventSink};
use crate::sanitize;
use crate::tools::ToolError;
use crate::tools::registry::Entry;

/// The first wait before a server that went down is started again; it doubles each time, up
/// to [`BACKOFF_MAX`], and starts over once the server stayed up for [`STABLE`].
const BACKOFF_START: Duration = Duration::from_secs(1);
/// The longest wait before a server is started again.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How long a server must stay up for its next fall to be treated as a first.
const STABLE: Duration = Duration::from_secs(60);
/// Longest message line a server may send (a longer one is dropped unread).
const MAX_LINE: usize = 4 * 1024 * 1024;
/// How often a `url` server is pinged to learn that it went away between calls.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Pages of a tool listing read at most (a server that pages forever is cut off).
const MAX_PAGES: usize = 16;
/// Lines of a server's standard error kept for `health` and the reason it went down.
const STDERR_LINES: usize = 8;
/// Characters of one standard-error line kept.
const STDERR_CHARS: usize = 300;

/// A live connection: calls go through `peer`. `hung` is this start's own: a call that
/// timed out cancels it, and only this start is stopped for it (never the next one).
#[derive(Clone)]
struct Conn {
    peer: Peer<RoleClient>,
    hung: CancellationToken,
    /// This start's own too: a call whose transport failed cancels it (a `url` server that
    /// went away leaves no process to exit and may leave its client's loop waiting).
    lost: CancellationToken,
}

struct Inner {
    state: McpState,
    pid: Option<u32>,
    restarts: u32,
    detail: Option<String>,
    since: chrono::DateTime<Utc>,
    /// Its tools by the server's own names (kept while it is down: a call says it is down).
    tools: BTreeMap<String, Arc<Entry>>,
    conn: Option<Conn>,
    stderr: VecDeque<String>,
    /// Why it went down last (kept while it is started again), to tell a new fall from the
    /// same one again.
    last_down: Option<String>,
}

/// See the module docs.
pub(super) struct Server {
    config: McpServerConfig,
    /// `tools.mcp_allow`: the hosts a `url` server may be on.
    allow: Vec<crate::config::AllowedHost>,
    scrub: Arc<Scrub>,
    events: Arc<dyn EventSink>,
    inner: Mutex<Inner>,
    /// Starts tried so far (each up, or down with its reason).
    tried: watch::Sender<u32>,
}

impl Server {
    pub(super) fn new(
        config: McpServerConfig,
        allow: Vec<crate::config::AllowedHost>,
        scrub: Arc<Scrub>,
        events: Arc<dyn EventSink>,
    ) -> Self {
        Server {
            config,
            allow,
            scrub,
            events,
            inner: Mutex::new(Inner {
                state: McpState::Starting,
                pid: None,
                restarts: 0,
                detail: None,
                since: Utc::now(),
                tools: BTreeMap::new(),
                conn: None,
                stderr: VecDeque::new(),
                last_down: None,
            }),
            tried: watch::Sender::new(0),
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.config.name
    }

    pub(super) fn config(&self) -> &McpServerConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Its supervisor's runtime is gone (and the server with it): no call may use its
    /// connection, and it counts as not tried until the next supervisor has tried it.
    pub(super) fn orphaned(&self) {
        self.lock().conn = None;
        self.tried.send_replace(0);
    }

    /// Resolves once the server has been tried at least once.
    pub(super) async fn tried(&self) {
        let mut rx = self.tried.subscribe();
        let _ = rx.wait_for(|n| *n > 0).await;
    }

    pub(super) fn status(&self) -> McpServerStatus {
        let g = self.lock();
        McpServerStatus {
            name: self.config.name.clone(),
            state: g.state,
            pid: g.pid,
            tools: g.tools.len(),
            restarts: g.restarts,
            detail: g.detail.clone(),
            since: g.since,
        }
    }

    pub(super) fn entries(&self) -> Vec<Arc<Entry>> {
        self.lock().tools.values().cloned().collect()
    }

    /// The tool `tool` (the server's own name); an unknown one is named with the server's
    /// state when it has none listed.
    pub(super) fn entry(&self, tool: &str) -> Result<Arc<Entry>, ToolError> {
        let g = self.lock();
        if let Some(e) = g.tools.get(tool) {
            return Ok(Arc::clone(e));
        }
        let name = &self.config.name;
        let shown = sanitize::quote(tool);
        Err(match g.state {
            McpState::Up => ToolError::Unknown(format!(
                "mcp server '{name}' offers no tool '{shown}'{}; `veyra tools list` shows them",
                crate::config::suggest::did_you_mean(tool, g.tools.keys().map(String::as_str))
            )),
            McpState::Starting if g.restarts == 0 && g.detail.is_none() => ToolError::Unknown(
                format!("mcp server '{name}' is starting; its tools are not listed yet"),
            ),
            _ => ToolError::Unknown(format!(
                "mcp server '{name}' is down: {}; its tools are not known",
                g.detail.as_deref().unwrap_or("it has not started yet")
            )),
        })
    }

    /// `text` without any secret this server could know, nor anything shaped like one.
    pub(super) fn scrub(&self, text: &str) -> String {
        self.scrub.text(text)
    }

    /// A message from the server, made safe to show: scrubbed, one line, shortened.
    fn shown(&self, text: &str) -> String {
        sanitize::sanitize_line(&sanitize::excerpt(
            &self.scrub(text),
            3 * sanitize::EXCERPT_CHARS,
        ))
        .into_owned()
    }

    fn down_error(&self) -> ToolError {
        let g = self.lock();
        ToolError::Failed(format!(
            "mcp server '{}' is down: {}",
            self.config.name,
            g.detail.as_deref().unwrap_or("it is starting")
        ))
    }

    /// Moves to `state`, logs it and publishes it. Falling again for the same reason is
    /// logged at debug level and published as such (`again`), so a server that stays broken
    /// does not fill the log or flash every retry.
    fn set(&self, state: McpState, pid: Option<u32>, detail: Option<String>) {
        let (status, again) = {
            let mut g = self.lock();
            let again = match state {
                McpState::Down => {
                    let again = g.last_down == detail;
                    g.last_down.clone_from(&detail);
                    again
                }
                McpState::Up => {
                    g.last_down = None;
                    false
                }
                McpState::Starting | McpState::Stopped => false,
            };
            if g.state == McpState::Down && state == McpState::Starting {
                g.restarts += 1;
            }
            g.state = state;
            g.pid = pid;
            g.since = Utc::now();
            if state != McpState::Starting {
                g.detail = detail;
            }
            if state != McpState::Up {
                g.conn = None;
            }
            let status = McpServerStatus {
                name: self.config.name.clone(),
                state,
                pid,
                tools: g.tools.len(),
                restarts: g.restarts,
                detail: g.detail.clone(),
                since: g.since,
            };
            (status, again)
        };
        let name = &self.config.name;
        match state {
            McpState::Up => tracing::info!(
                server = %name,
                tools = status.tools,
                pid = ?pid,
                "mcp server '{name}' is up with {} tools", status.tools
            ),
            McpState::Down if again => tracing::debug!(
                server = %name,
                restarts = status.restarts,
                "mcp server '{name}' is still down: {}",
                status.detail.as_deref().unwrap_or_default()
            ),
            McpState::Down => tracing::warn!(
                server = %name,
                "mcp server '{name}' is down: {}",
                status.detail.as_deref().unwrap_or_default()
            ),
            McpState::Starting | McpState::Stopped => {
                tracing::debug!(server = %name, "mcp server '{name}' is {}", state.name());
            }
        }
        self.events.emit(Event::McpServer {
            server: status.name,
            state: state.name().into(),
            tools: u32::try_from(status.tools).unwrap_or(u32::MAX),
            restarts: status.restarts,
            detail: status.detail,
            again,
            at: status.since,
        });
    }

    /// The reason the server went down, with its last words on standard error if any.
    fn with_stderr(&self, reason: String) -> String {
        let g = self.lock();
        match g.stderr.back() {
            Some(last) => format!("{reason}; its last words on stderr: {last}"),
            None => reason,
        }
    }
}

#[async_trait::async_trait]
impl Remote for Server {
    /// One call of the server's tool `tool` (its own name). Never run again here: a call that
    /// got no answer may have acted.
    async fn call(
        &self,
        tool: &str,
        args: &serde_json::Value,
    ) -> Result<rmcp::model::CallToolResult, ToolError> {
        let Some(conn) = self.lock().conn.clone() else {
            return Err(self.down_error());
        };
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = args.as_object().cloned();
        let name = &self.config.name;
        let limit = Duration::from_millis(self.config.timeout_ms);
        match tokio::time::timeout(limit, conn.peer.call_tool(params)).await {
            Err(_) => {
                // This start is stopped as hung; a start after it is not touched.
                conn.hung.cancel();
                Err(ToolError::Failed(format!(
                    "mcp server '{name}' did not answer within {} ms; the call may have acted, \
                     and the server is restarted as hung",
                    self.config.timeout_ms
                )))
            }
            Ok(Err(ServiceError::McpError(e))) => Err(ToolError::Failed(format!(
                "mcp server '{name}' refused the call: {}",
                self.shown(&e.message)
            ))),
            Ok(Err(e)) => {
                // The connection itself is gone: this start is over, the supervisor starts the
                // next. Any other failure (an HTTP status, a reply too large or malformed) is
                // this call's alone; a server gone quiet is found by its heartbeat.
                if matches!(e, ServiceError::TransportClosed) {
                    conn.lost.cancel();
                }
                Err(ToolError::Failed(format!(
                    "mcp server '{name}' is down: the call got no answer ({}); it may have acted",
                    self.shown(&without_type_names(&e.to_string()))
                )))
            }
            Ok(Ok(result)) => Ok(result),
        }
    }
}

/// A started server: its process (and its process group) when Veyra started one, its
/// connection, its tools.
struct Live {
    process: Option<Process>,
    peer: Peer<RoleClient>,
    /// Ends the connection's loop (for a `url` server, its session: nothing else would).
    end: rmcp::service::RunningServiceCancellationToken,
    /// Cancelled when the connection's loop ends (the server closed its output, or the
    /// transport failed) while the process may still run.
    closed: CancellationToken,
    tools: Vec<rmcp::model::Tool>,
    note: Option<String>,
}

/// A server's process, started by Veyra.
struct Process {
    child: tokio::process::Child,
    /// Kills the whole group when the start ends, however it ends.
    group: GroupKill,
}

impl Live {
    /// Why the server went, once it does: its process ended; or, for a `url` server (no
    /// process to watch, and a client that only learns of a dead server when it next sends),
    /// it did not answer a ping — one every [`HEARTBEAT`], each given `limit`.
    async fn exited(&mut self, limit: Duration) -> String {
        match &mut self.process {
            Some(p) => match p.child.wait().await {
                Ok(s) => format!("it exited ({s})"),
                Err(e) => format!("its process could not be watched: {e}"),
            },
            None => {
                // Two misses in a row, a second apart, make it gone: one lost ping is not a
                // dead server. An error answer is an answer.
                let mut missed: Option<String> = None;
                loop {
                    let wait = if missed.is_some() {
                        Duration::from_secs(1)
                    } else {
                        HEARTBEAT
                    };
                    tokio::time::sleep(wait).await;
                    let ping = rmcp::model::ClientRequest::PingRequest(Default::default());
                    let why = match tokio::time::timeout(limit, self.peer.send_request(ping)).await
                    {
                        Ok(Ok(_) | Err(ServiceError::McpError(_))) => None,
                        Ok(Err(e)) => Some(format!(
                            "it did not answer a ping ({})",
                            without_type_names(&e.to_string())
                        )),
                        Err(_) => Some(format!(
                            "it did not answer a ping within {} ms",
                            limit.as_millis()
                        )),
                    };
                    match (why, missed.take()) {
                        (Some(why), Some(_)) => return why,
                        (why, _) => missed = why,
                    }
                }
            }
        }
    }

    fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(|p| p.child.id())
    }
}

/// The server's process group, killed on drop: a server started through a wrapper (`npx`,
/// `uvx`, `sh -c`) is a grandchild of Veyra, and killing the child alone would leave it.
struct GroupKill(Option<rustix::process::Pid>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            // The group is the child's own (`process_group(0)`): nothing else is in it.
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

/// Keeps `server` running until `shutdown`: start, list, watch, and after a fall start again
/// with backoff (see the module docs of `tools::mcp`).
pub(super) async fn supervise(server: Arc<Server>, shutdown: CancellationToken) {
    let mut backoff = BACKOFF_START;
    let limit = Duration::from_millis(server.config.timeout_ms);
    let stopped = |server: &Server| {
        server.set(McpState::Stopped, None, Some("stopped with Veyra".into()));
    };
    loop {
        server.set(McpState::Starting, None, None);
        let attempt = tokio::select! {
            attempt = tokio::time::timeout(limit, connect(&server)) => attempt,
            () = shutdown.cancelled() => return stopped(&server),
        };
        let reason = match attempt {
            Err(_) => format!(
                "it did not start and list its tools within {} ms",
                server.config.timeout_ms
            ),
            Ok(Err(reason)) => reason,
            Ok(Ok(mut live)) => {
                let up = Instant::now();
                let pid = live.pid();
                let (hung, lost) = install(&server, &live);
                server.set(McpState::Up, pid, live.note.take());
                server.tried.send_modify(|n| *n += 1);
                let closed = live.closed.clone();
                let reason = tokio::select! {
                    reason = live.exited(limit) => reason,
                    () = hung.cancelled() => format!(
                        "a call got no answer within {} ms, so it was stopped as hung",
                        server.config.timeout_ms
                    ),
                    () = closed.cancelled() => {
                        "it closed the connection".to_string()
                    }
                    () = lost.cancelled() => {
                        "a call got no answer (its connection failed)".to_string()
                    }
                    () = shutdown.cancelled() => {
                        server.lock().conn = None;
                        stop(live).await;
                        return stopped(&server);
                    }
                };
                // No call goes to this start from here on.
                server.lock().conn = None;
                stop(live).await;
                if up.elapsed() >= STABLE {
                    backoff = BACKOFF_START;
                }
                reason
            }
        };
        let reason = server.with_stderr(server.shown(&reason));
        server.set(McpState::Down, None, Some(reason));
        server.tried.send_modify(|n| *n += 1);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return stopped(&server),
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Registers a fresh start's tools and connection; returns the start's `hung` and `lost`
/// tokens.
fn install(server: &Arc<Server>, live: &Live) -> (CancellationToken, CancellationToken) {
    let mut tools = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut budget = super::tool::Budget::default();
    for t in &live.tools {
        match McpTool::entry(server, &server.config, &server.scrub, t, &mut budget) {
            Ok(entry) => {
                tools.insert(t.name.to_string(), Arc::new(entry));
            }
            Err(why) => skipped.push(server.shown(&why)),
        }
    }
    let name = &server.config.name;
    for why in &skipped {
        tracing::warn!(server = %name, "mcp server '{name}': {why}");
    }
    let (hung, lost) = (CancellationToken::new(), CancellationToken::new());
    let mut g = server.lock();
    g.tools = tools;
    g.conn = Some(Conn {
        peer: live.peer.clone(),
        hung: hung.clone(),
        lost: lost.clone(),
    });
    (hung, lost)
}

/// Ends a start: the connection closed, the process group killed, the process reaped.
async fn stop(live: Live) {
    let Live { process, end, .. } = live;
    end.cancel();
    if let Some(Process { mut child, group }) = process {
        drop(group);
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    }
}

mod connect;
use connect::{connect, without_type_names};
