//! The runtime's side of the control socket: it accepts clients of its own user only (the
//! socket's peer credentials, checked before a byte is read), shakes hands, sends each client
//! the snapshot and then the live events through the [`Journal`], and carries out their
//! commands through the core's one gate, on their behalf ([`as_caller`]).
//!
//! What a client can do to the runtime is bounded: at most [`MAX_CLIENTS`] at once, a line of
//! at most [`MAX_CLIENT_LINE`] bytes, [`HANDSHAKE`] to say
//! hello, [`MAX_REQUESTS`] commands in flight, and a client that stops reading for
//! [`WRITE_STALL`] is closed. Garbage closes the connection. Every refusal and close is
//! logged with its reason (the hosting console shows it in the Log pane). A client's commands
//! are carried out in `commands.rs`, what is sent to it is written in `writer.rs`.

mod commands;
mod writer;

use commands::{request, response};
use writer::writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;

use super::bench::BenchHost;
use super::journal::Journal;
use super::protocol::{
    self, AuditInfo, ClientMessage, MAX_CLIENT_LINE, PROTOCOL, Reply, Request, RpcError,
    RuntimeInfo, ServerMessage,
};
use super::{ServiceError, socket};
use crate::core::{Caller, VeyraCore, as_caller};
use crate::events::ExecutionId;

/// Most clients attached at once; the next is refused, saying so.
pub const MAX_CLIENTS: usize = 64;
/// Time a new connection has to say hello.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// Commands one client may have in flight (an undo waiting for a confirmation is one).
pub const MAX_REQUESTS: usize = 32;
/// How long a departed client's requests in flight may still take to answer before they are
/// dropped.
pub const REQUEST_GRACE: Duration = Duration::from_secs(5);
/// A client whose socket takes no bytes for this long is closed.
pub const WRITE_STALL: Duration = Duration::from_secs(30);

/// What every connection shares.
struct Shared {
    core: VeyraCore,
    bench: Arc<BenchHost>,
    journal: Arc<Journal>,
    host: String,
    clients: AtomicUsize,
    stop: CancellationToken,
}

/// A serving runtime's listener. Dropping it stops accepting, tells the clients the runtime
/// is going away and removes the socket (when it is still this runtime's).
pub struct Server {
    shared: Arc<Shared>,
    socket: PathBuf,
    inode: Option<u64>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

/// A runtime made ready to serve clients: its core and benchmark runs, with the journal
/// installed as their tap. One serves the control socket ([`Service::serve`]) and a fleet
/// worker's consoles on the bus ([`crate::fleet`]) alike; a core has one.
#[derive(Clone)]
pub struct Service {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("host", &self.shared.host)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// `core` and its benchmark runs `bench`, tapped by a new journal; `host` says what hosts
    /// it (`serve`, `console`, `worker`). Fails when the core has a tap already.
    pub fn new(
        core: &VeyraCore,
        bench: &Arc<BenchHost>,
        host: &str,
    ) -> Result<Service, ServiceError> {
        let journal = Arc::new(Journal::default());
        core.tap(journal.clone())
            .map_err(|e| ServiceError::Runtime(e.to_string()))?;
        let weak = Arc::downgrade(&journal);
        bench.tap(move |news| match weak.upgrade() {
            Some(journal) => {
                journal.bench(news);
                true
            }
            None => false,
        });
        Ok(Service {
            shared: Arc::new(Shared {
                core: core.clone(),
                bench: Arc::clone(bench),
                journal,
                host: host.to_string(),
                clients: AtomicUsize::new(0),
                stop: CancellationToken::new(),
            }),
        })
    }

    /// Serves it on `socket` (see [`socket::bind`]). Needs a tokio runtime.
    pub fn serve(&self, socket: &Path) -> Result<Server, ServiceError> {
        let listener = socket::bind(socket)?;
        tokio::spawn(accept(Arc::clone(&self.shared), listener));
        tracing::info!(socket = %socket.display(), "serving the runtime");
        Ok(Server {
            shared: Arc::clone(&self.shared),
            inode: socket::inode(socket),
            socket: socket.to_path_buf(),
        })
    }

    /// The core it serves.
    pub fn core(&self) -> &VeyraCore {
        &self.shared.core
    }

    /// The journal every client's view is rebuilt from.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.shared.journal
    }

    /// What the runtime is now.
    pub fn info(&self) -> RuntimeInfo {
        runtime_info(&self.shared)
    }

    /// Carries out `command` for `caller` as a request of a client with events (so a `follow`
    /// is refused: its events would come twice) and gives its answer.
    pub async fn command(&self, caller: &Caller, command: Request) -> Result<Reply, RpcError> {
        let (control, mut answers) = mpsc::channel::<String>(16);
        let follows = commands::Follows::default();
        request(&self.shared, caller, 0, command, true, &control, &follows).await;
        drop(control);
        let gone = || RpcError {
            kind: "runtime".into(),
            message: "the runtime gave no answer".into(),
        };
        let line = answers.recv().await.ok_or_else(gone)?;
        match serde_json::from_str::<ServerMessage>(&line) {
            Ok(ServerMessage::Response {
                ok: Some(reply), ..
            }) => Ok(reply),
            Ok(ServerMessage::Response { error: Some(e), .. }) => Err(e),
            _ => Err(gone()),
        }
    }
}

impl Server {
    /// Serves `core` and its benchmark runs `bench` on `socket` (see [`socket::bind`]);
    /// `host` says what hosts it (`serve`, `console`). The core and the runs get the journal
    /// as their tap. Needs a tokio runtime.
    pub fn start(
        core: &VeyraCore,
        bench: &Arc<BenchHost>,
        socket: &Path,
        host: &str,
    ) -> Result<Server, ServiceError> {
        // Bound first: a socket that cannot be served leaves the core as it was.
        let listener = socket::bind(socket)?;
        let service = Service::new(core, bench, host)?;
        tokio::spawn(accept(Arc::clone(&service.shared), listener));
        tracing::info!(socket = %socket.display(), "serving the runtime");
        Ok(Server {
            shared: service.shared,
            inode: socket::inode(socket),
            socket: socket.to_path_buf(),
        })
    }

    /// The socket it listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Clients attached now.
    pub fn clients(&self) -> usize {
        self.shared.clients.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.cancel();
        socket::unbind(&self.socket, self.inode);
    }
}

/// What the runtime is now, for a welcome or a status reply.
fn runtime_info(shared: &Shared) -> RuntimeInfo {
    let core = &shared.core;
    let config = core.config();
    RuntimeInfo {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        host: shared.host.clone(),
        store: config.audit_store_path().display().to_string(),
        backend: core.backend_name(),
        model: core.model_name(),
        link: core.link_status(),
        audit: core.audit().map(|trail| AuditInfo {
            entries: trail.len(),
            head: trail.head_hash(),
            durable: config.governance.store == crate::config::AuditStoreKind::Sqlite,
            checkpoint: trail
                .latest_checkpoint()
                .ok()
                .flatten()
                .map(|cp| (cp.tree_size, cp.timestamp)),
        }),
        clients: shared.clients.load(Ordering::SeqCst),
        mcp: core.mcp_servers(),
    }
}

/// Accepts until the runtime stops.
async fn accept(shared: Arc<Shared>, listener: tokio::net::UnixListener) {
    loop {
        let accepted = tokio::select! {
            () = shared.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: wait a moment rather than spin.
                tracing::warn!(error = %e, "accepting a client failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let cred = match stream.peer_cred() {
            Ok(cred) => cred,
            Err(e) => {
                tracing::warn!(error = %e, "refused a client: its credentials cannot be read");
                continue;
            }
        };
        if cred.uid() != socket::own_uid() {
            tracing::warn!(
                uid = cred.uid(),
                pid = cred.pid(),
                "refused a client of another user"
            );
            refuse(
                stream,
                "this runtime serves only its own user; attach as that user (over SSH, \
                 `veyra attach ssh://user@host`)",
            );
            continue;
        }
        if shared.clients.load(Ordering::SeqCst) >= MAX_CLIENTS {
            tracing::warn!(
                pid = cred.pid(),
                "refused a client: {MAX_CLIENTS} are attached"
            );
            refuse(
                stream,
                &format!(
                    "this runtime has {MAX_CLIENTS} clients attached, the most it serves; close one"
                ),
            );
            continue;
        }
        shared.clients.fetch_add(1, Ordering::SeqCst);
        let caller = Caller {
            pid: cred.pid(),
            uid: cred.uid(),
            transport: "unix".into(),
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let who = caller.clone();
            let reason = connection(&shared, stream, caller).await;
            shared.clients.fetch_sub(1, Ordering::SeqCst);
            match reason {
                Ok(reason) => tracing::info!(client = %who, "client left: {reason}"),
                Err(reason) => tracing::warn!(client = %who, "client closed: {reason}"),
            }
        });
    }
}

/// Tells a refused client why, if it listens, and closes. What it sent meanwhile is read and
/// dropped unparsed (at most 64 KiB, for at most a second): closing a socket with unread bytes
/// resets it, and the client would never read the refusal.
fn refuse(mut stream: UnixStream, reason: &str) {
    use tokio::io::AsyncReadExt;
    let line = protocol::line(&ServerMessage::Refused {
        reason: reason.to_string(),
    }) + "\n";
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            stream.write_all(line.as_bytes()).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            let mut drained = 0usize;
            while drained < 64 * 1024 {
                match stream.read(&mut sink).await? {
                    0 => break,
                    n => drained += n,
                }
            }
            Ok::<(), std::io::Error>(())
        })
        .await;
    });
}

/// One client from hello to goodbye: `Ok` with why it ended normally, `Err` with why it was
/// closed.
async fn connection(
    shared: &Arc<Shared>,
    stream: UnixStream,
    mut caller: Caller,
) -> Result<String, String> {
    let (read, mut write) = stream.into_split();
    let mut lines = FramedRead::new(read, LinesCodec::new_with_max_length(MAX_CLIENT_LINE));
    let (client, events) =
        match tokio::time::timeout(HANDSHAKE, handshake(&mut lines, &mut caller)).await {
            Ok(Ok(hello)) => hello,
            Ok(Err(reason)) => {
                let line = protocol::line(&ServerMessage::Refused {
                    reason: reason.clone(),
                }) + "\n";
                // Said, then what else the client sent is dropped unread for a moment (closing
                // with unread bytes would reset the socket before the refusal is read).
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    write.write_all(line.as_bytes()).await?;
                    write.shutdown().await?;
                    let mut dropped = 0usize;
                    while dropped < 64 && lines.next().await.is_some() {
                        dropped += 1;
                    }
                    Ok::<(), std::io::Error>(())
                })
                .await;
                return Err(reason);
            }
            Err(_) => {
                let reason = format!("said no hello within {}s", HANDSHAKE.as_secs());
                let _ = write_closing(&mut write, &reason).await;
                return Err(reason);
            }
        };
    tracing::info!(client = %caller, kind = %client, "client attached");
    let welcome = ServerMessage::Welcome {
        protocol: PROTOCOL.to_string(),
        runtime: runtime_info(shared),
        you: caller.clone(),
    };
    // The welcome goes first, before the writer sends anything else (a snapshot).
    let welcome = protocol::line(&welcome) + "\n";
    match tokio::time::timeout(WRITE_STALL, write.write_all(welcome.as_bytes())).await {
        Ok(Ok(())) => {}
        _ => return Err("closed during the handshake".into()),
    }
    let (control, control_rx) = mpsc::channel::<String>(256);
    let subscription = events.then(|| shared.journal.subscribe());
    let sub_id = subscription.as_ref().map(|s| s.id);
    let writer = tokio::spawn(writer(
        write,
        control_rx,
        subscription,
        Arc::clone(&shared.journal),
    ));
    let follows: Arc<commands::Follows> = Arc::default();
    let permits = Arc::new(Semaphore::new(MAX_REQUESTS));
    // The client's requests in flight: once it is gone they get [`REQUEST_GRACE`] to answer,
    // then are dropped — an act still waiting for a confirmation is never carried out for a
    // client that left.
    let mut in_flight = tokio::task::JoinSet::new();
    let ended = loop {
        let next = tokio::select! {
            () = shared.stop.cancelled() => {
                let _ = control
                    .send(protocol::line(&ServerMessage::Closing {
                        reason: format!("the runtime (pid {}) is shutting down", std::process::id()),
                    }))
                    .await;
                break Ok("the runtime is shutting down".to_string());
            }
            next = lines.next() => next,
        };
        let text = match next {
            None => break Ok("disconnected".to_string()),
            Some(Ok(text)) => text,
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                break Err(closing(
                    &control,
                    format!(
                        "sent a line longer than {} MiB, the most a runtime reads",
                        MAX_CLIENT_LINE >> 20
                    ),
                )
                .await);
            }
            Some(Err(LinesCodecError::Io(e))) => break Err(format!("reading failed: {e}")),
        };
        if text.trim().is_empty() {
            continue;
        }
        let (id, command) = match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Request { id, command }) => (id, command),
            Ok(other) => {
                break Err(closing(
                    &control,
                    format!(
                        "sent {} after the handshake; only requests may follow it",
                        message_name(&other)
                    ),
                )
                .await);
            }
            Err(e) => {
                break Err(closing(
                    &control,
                    format!(
                        "sent a line that is not a {PROTOCOL} message ({})",
                        crate::sanitize::excerpt(&e.to_string(), 120)
                    ),
                )
                .await);
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            let _ = control
                .send(response(
                    id,
                    Err(RpcError {
                        kind: "busy".into(),
                        message: format!(
                            "{MAX_REQUESTS} requests of this client are in flight; wait for \
                             their answers"
                        ),
                    }),
                ))
                .await;
            continue;
        };
        let shared = Arc::clone(shared);
        let control = control.clone();
        let caller = caller.clone();
        let follows = Arc::clone(&follows);
        let subscribed = sub_id.is_some();
        in_flight.spawn(async move {
            request(
                &shared, &caller, id, command, subscribed, &control, &follows,
            )
            .await;
            drop(permit);
        });
        // Finished requests leave the set as they go.
        while in_flight.try_join_next().is_some() {}
    };
    // A client that followed its own prompts is gone: nobody will read their answers.
    let followed = match follows.bench.lock() {
        Ok(f) => *f,
        Err(poisoned) => *poisoned.into_inner(),
    };
    if let Some(run) = followed {
        tracing::info!(client = %caller, run, "the client following a benchmark run left; cancelling it");
        let _ = shared.bench.cancel(Some(run));
    }
    let orphans: Vec<ExecutionId> = match follows.executions.lock() {
        Ok(mut set) => set.drain().collect(),
        Err(poisoned) => poisoned.into_inner().drain().collect(),
    };
    for id in orphans {
        let _ = as_caller(Some(caller.clone()), async { shared.core.cancel(id) }).await;
    }
    // A client that only closed its sending side still reads: what it asked may answer.
    let _ = tokio::time::timeout(REQUEST_GRACE, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    in_flight.abort_all();
    // "Allow until the console closes": what this client allowed ends with it, once none of
    // its requests can grant more (and the core refuses what it gave in a race with this).
    as_caller(
        Some(caller.clone()),
        shared.core.revoke_client_approvals(&caller),
    )
    .await;
    if let Some(id) = sub_id {
        shared.journal.unsubscribe(id);
    }
    drop(control);
    // The writer sends what is queued (a closing line) and ends when the queue closes; a
    // client that reads nothing holds it at most `WRITE_STALL`.
    let _ = tokio::time::timeout(WRITE_STALL + Duration::from_secs(1), writer).await;
    ended
}

/// Queues a closing line with `reason` and returns the reason.
async fn closing(control: &mpsc::Sender<String>, reason: String) -> String {
    let _ = control
        .send(protocol::line(&ServerMessage::Closing {
            reason: reason.clone(),
        }))
        .await;
    reason
}

async fn write_closing(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reason: &str,
) -> std::io::Result<()> {
    let line = protocol::line(&ServerMessage::Closing {
        reason: reason.to_string(),
    }) + "\n";
    match tokio::time::timeout(Duration::from_secs(1), write.write_all(line.as_bytes())).await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

fn message_name(message: &ClientMessage) -> &'static str {
    match message {
        ClientMessage::Hello { .. } => "a second hello",
        ClientMessage::Relay { .. } => "a relay line",
        ClientMessage::Request { .. } => "a request",
    }
}

/// Reads the hello (after a relay's line, if any): the client's kind and whether it wants
/// events, or why it is refused.
async fn handshake(
    lines: &mut FramedRead<tokio::net::unix::OwnedReadHalf, LinesCodec>,
    caller: &mut Caller,
) -> Result<(String, bool), String> {
    let mut relayed = false;
    loop {
        let text = match lines.next().await {
            None => return Err("closed before saying hello".into()),
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                return Err("sent an over-long first line".into());
            }
            Some(Err(LinesCodecError::Io(e))) => return Err(format!("reading failed: {e}")),
            Some(Ok(text)) => text,
        };
        // Read loosely first: a client of another version must hear which one this is.
        let short =
            |t: &str| crate::sanitize::excerpt(&crate::sanitize::sanitize_line(t), 60).into_owned();
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
            format!("this is a Veyra runtime speaking {PROTOCOL}; the first line must be its hello")
        })?;
        if value.get("type").and_then(|t| t.as_str()) == Some("hello")
            && let Some(other) = value.get("protocol").and_then(|p| p.as_str())
            && other != PROTOCOL
        {
            return Err(format!(
                "this runtime speaks {PROTOCOL} (Veyra {}); the client speaks {}: use the same \
                 Veyra version on both ends",
                env!("CARGO_PKG_VERSION"),
                short(other)
            ));
        }
        match serde_json::from_value::<ClientMessage>(value) {
            Ok(ClientMessage::Relay { via, peer }) if !relayed => {
                relayed = true;
                let via = crate::sanitize::excerpt(&crate::sanitize::sanitize_line(&via), 16)
                    .into_owned();
                caller.transport = match peer {
                    Some(peer) => format!(
                        "{via} from {}",
                        crate::sanitize::excerpt(&crate::sanitize::sanitize_line(&peer), 64)
                    ),
                    None => via,
                };
            }
            Ok(ClientMessage::Hello { client, events, .. }) => {
                let client = crate::sanitize::excerpt(&crate::sanitize::sanitize_line(&client), 40)
                    .into_owned();
                return Ok((client, events));
            }
            Ok(_) => return Err("the first line must be a hello".into()),
            Err(e) => {
                return Err(format!(
                    "the hello is not a {PROTOCOL} hello ({})",
                    short(&e.to_string())
                ));
            }
        }
    }
}
