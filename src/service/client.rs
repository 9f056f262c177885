//! A client's side of `veyra.rpc/1`, over any byte stream: the runtime's socket, or the
//! standard streams of `ssh host veyra attach --stdio`. [`Client::request`] sends a command
//! and waits for its response; what the runtime pushes (the snapshot, events, a close) arrives
//! as [`Inbound`] on the channel [`Client::start`] hands back, bounded, so a client that does
//! not keep up makes the runtime resync it rather than queue without end.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use super::ServiceError;
use super::protocol::{
    self, ClientMessage, MAX_SERVER_LINE, PROTOCOL, Reply, Request, RpcError, RuntimeInfo,
    ServerMessage,
};
use crate::core::Caller;
use crate::events::Event;

/// Time the runtime has to answer a hello.
pub const HELLO_WAIT: Duration = Duration::from_secs(15);
/// What the inbound channel holds before the client stops reading the runtime (which then
/// resyncs it).
const INBOUND: usize = 8_192;

/// What the runtime pushes to a client that asked for events.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// Forget what was folded: a snapshot follows (`reason`: `attached` or `lagged`; `missed`
    /// events were not sent).
    Resync {
        /// Why.
        reason: String,
        /// Events missed.
        missed: u64,
    },
    /// An event (of the snapshot, or live).
    Event(Event),
    /// News of the runtime's benchmark run (of the snapshot, or live).
    Bench(super::bench::BenchNews),
    /// The snapshot is complete.
    Live,
    /// The fleet's workers now (a console attached to a fleet).
    Fleet(Vec<super::protocol::FleetWorker>),
    /// The runtime is gone or closed this client, and why. Nothing follows.
    Closed(String),
}

/// Requests waiting for their responses, and why the session ended once it has: a request
/// made after that fails at once rather than wait for an answer that cannot come.
#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Result<Reply, RpcError>>>,
    ended: Option<String>,
}

type Waiting = Arc<Mutex<Pending>>;

/// Ends `pending`: every waiting request fails with `reason`, and so does every later one.
fn end(pending: &Waiting, reason: &str) {
    if let Ok(mut p) = pending.lock() {
        p.ended.get_or_insert_with(|| reason.to_string());
        for (_, tx) in p.waiting.drain() {
            let _ = tx.send(Err(RpcError {
                kind: "gone".into(),
                message: reason.to_string(),
            }));
        }
    }
}

/// One attached session. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Client {
    out: mpsc::Sender<String>,
    waiting: Waiting,
    next: Arc<AtomicU64>,
    /// What the runtime said of itself when the client attached.
    pub runtime: Arc<RuntimeInfo>,
    /// The client as the runtime sees it.
    pub you: Caller,
    /// The process carrying the session (`ssh`), ended with the last clone.
    _carrier: Option<Arc<Carrier>>,
}

/// A child process that carries a session, killed when the session ends.
#[derive(Debug)]
pub struct Carrier(pub Mutex<tokio::process::Child>);

impl Drop for Carrier {
    fn drop(&mut self) {
        if let Ok(mut child) = self.0.lock() {
            let _ = child.start_kill();
        }
    }
}

impl Client {
    /// Shakes hands over `read`/`write` as `kind` (`console`, `veyra run`, …), asking for
    /// events or not, and starts the session. `relay` is the line a relay sends first.
    pub async fn start<R, W>(
        read: R,
        mut write: W,
        kind: &str,
        events: bool,
        carrier: Option<tokio::process::Child>,
        wait: Duration,
    ) -> Result<(Client, mpsc::Receiver<Inbound>), ServiceError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let carrier = carrier.map(|c| Arc::new(Carrier(Mutex::new(c))));
        let hello = protocol::line(&ClientMessage::Hello {
            protocol: PROTOCOL.to_string(),
            client: kind.to_string(),
            events,
        }) + "\n";
        write
            .write_all(hello.as_bytes())
            .await
            .map_err(|e| ServiceError::Gone(format!("sending the hello failed: {e}")))?;
        let mut lines = FramedRead::new(read, LinesCodec::new_with_max_length(MAX_SERVER_LINE));
        let first = tokio::time::timeout(wait, lines.next())
            .await
            .map_err(|_| {
                ServiceError::Protocol(format!(
                    "the runtime did not answer the hello within {}s",
                    wait.as_secs()
                ))
            })?;
        let (runtime, you) = match first {
            Some(Ok(text)) => match serde_json::from_str::<ServerMessage>(&text) {
                Ok(ServerMessage::Welcome {
                    protocol,
                    runtime,
                    you,
                }) if protocol == PROTOCOL => (runtime, you),
                Ok(ServerMessage::Refused { reason }) => {
                    return Err(ServiceError::Refused(reason));
                }
                Ok(other) => {
                    return Err(ServiceError::Protocol(format!(
                        "the runtime answered the hello with {}",
                        kind_of(&other)
                    )));
                }
                Err(e) => {
                    return Err(ServiceError::Protocol(format!(
                        "the far end does not speak {PROTOCOL} ({e}); is it a Veyra runtime of \
                         this version?"
                    )));
                }
            },
            Some(Err(e)) => {
                return Err(ServiceError::Protocol(format!("reading the welcome: {e}")));
            }
            None => {
                return Err(ServiceError::Gone(
                    "the runtime closed the connection before welcoming this client".into(),
                ));
            }
        };
        let (out, out_rx) = mpsc::channel::<String>(256);
        let (inbound, inbound_rx) = mpsc::channel(INBOUND);
        let waiting: Waiting = Arc::default();
        tokio::spawn(write_lines(write, out_rx, Arc::clone(&waiting)));
        tokio::spawn(read_lines(lines, Arc::clone(&waiting), inbound));
        Ok((
            Client {
                out,
                waiting,
                next: Arc::new(AtomicU64::new(1)),
                runtime: Arc::new(runtime),
                you,
                _carrier: carrier,
            },
            inbound_rx,
        ))
    }

    /// Connects to the runtime serving `socket`: `Ok(None)` when nothing does (no file, or a
    /// dead runtime's file nobody answers on). A socket served by another user is refused.
    pub async fn connect(
        socket: &Path,
        kind: &str,
        events: bool,
    ) -> Result<Option<(Client, mpsc::Receiver<Inbound>)>, ServiceError> {
        let Some(stream) = connect_raw(socket).await? else {
            return Ok(None);
        };
        let (read, write) = stream.into_split();
        Client::start(read, write, kind, events, None, HELLO_WAIT)
            .await
            .map(Some)
    }

    /// `pid N (host)` of the runtime attached to, for a line on a terminal (sanitized: the
    /// runtime said it).
    pub fn describe(&self) -> String {
        crate::sanitize::sanitize_line(&format!("pid {} ({})", self.runtime.pid, self.runtime.host))
            .into_owned()
    }

    /// Sends `command` and waits for its response.
    pub async fn request(&self, command: Request) -> Result<Reply, RpcError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.waiting.lock() {
            if let Some(reason) = &p.ended {
                return Err(RpcError {
                    kind: "gone".into(),
                    message: reason.clone(),
                });
            }
            p.waiting.insert(id, tx);
        }
        let line = protocol::line(&ClientMessage::Request { id, command });
        if self.out.send(line).await.is_err() {
            return Err(gone());
        }
        rx.await.unwrap_or_else(|_| Err(gone()))
    }
}

/// The runtime's socket, checked: its directory private, its server of this user. `Ok(None)`
/// when no runtime answers there (no file, or a dead runtime's).
pub async fn connect_raw(socket: &Path) -> Result<Option<tokio::net::UnixStream>, ServiceError> {
    if let Some(dir) = socket.parent()
        && dir.exists()
    {
        super::socket::check_private(dir)?;
    }
    let stream = match tokio::net::UnixStream::connect(socket).await {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(ServiceError::io(socket, "cannot connect to the runtime", e)),
    };
    let cred = stream
        .peer_cred()
        .map_err(|e| ServiceError::io(socket, "cannot read the runtime's credentials", e))?;
    if cred.uid() != super::socket::own_uid() {
        return Err(ServiceError::Unsafe(format!(
            "{}: the socket is served by uid {}, not by you; not attaching",
            socket.display(),
            cred.uid()
        )));
    }
    Ok(Some(stream))
}

fn gone() -> RpcError {
    RpcError {
        kind: "gone".into(),
        message: "the runtime is gone".into(),
    }
}

fn kind_of(message: &ServerMessage) -> &'static str {
    match message {
        ServerMessage::Welcome { .. } => "a welcome of another protocol",
        ServerMessage::Refused { .. } => "a refusal",
        ServerMessage::Response { .. } => "a response",
        ServerMessage::Resync { .. } => "a resync",
        ServerMessage::Event { .. } => "an event",
        ServerMessage::Live => "live",
        ServerMessage::Bench { .. } => "benchmark news",
        ServerMessage::Closing { .. } => "closing",
        ServerMessage::Fleet { .. } => "the fleet's workers",
    }
}

async fn write_lines<W: AsyncWrite + Unpin>(
    mut write: W,
    mut lines: mpsc::Receiver<String>,
    pending: Waiting,
) {
    while let Some(line) = lines.recv().await {
        let mut buf = line.into_bytes();
        buf.push(b'\n');
        if let Err(e) = async {
            write.write_all(&buf).await?;
            write.flush().await
        }
        .await
        {
            // Nothing more reaches the runtime: what waits for an answer fails now.
            end(&pending, &format!("writing to the runtime failed: {e}"));
            return;
        }
    }
    let _ = write.shutdown().await;
}

async fn read_lines<R: AsyncRead + Unpin>(
    mut lines: FramedRead<R, LinesCodec>,
    waiting: Waiting,
    inbound: mpsc::Sender<Inbound>,
) {
    let reason = loop {
        let text = match lines.next().await {
            None => break "the runtime closed the connection".to_string(),
            Some(Ok(text)) => text,
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                break format!(
                    "the runtime sent a line over {} MiB; closed",
                    MAX_SERVER_LINE >> 20
                );
            }
            Some(Err(LinesCodecError::Io(e))) => break format!("reading from the runtime: {e}"),
        };
        let message = match serde_json::from_str::<ServerMessage>(&text) {
            Ok(m) => m,
            Err(e) => break format!("the runtime sent a line that is not {PROTOCOL} ({e})"),
        };
        let pushed = match message {
            ServerMessage::Response { id, ok, error } => {
                let result = match (ok, error) {
                    (Some(reply), None) => Ok(reply),
                    (_, Some(e)) => Err(e),
                    (None, None) => Err(RpcError {
                        kind: "bad_response".into(),
                        message: "the runtime's response held neither a result nor an error".into(),
                    }),
                };
                let tx = waiting.lock().ok().and_then(|mut p| p.waiting.remove(&id));
                if let Some(tx) = tx {
                    let _ = tx.send(result);
                }
                continue;
            }
            ServerMessage::Event { event } => Inbound::Event(event),
            ServerMessage::Resync { reason, missed } => Inbound::Resync { reason, missed },
            ServerMessage::Live => Inbound::Live,
            ServerMessage::Bench { news } => Inbound::Bench(news),
            ServerMessage::Fleet { workers } => Inbound::Fleet(workers),
            ServerMessage::Closing { reason } => break reason,
            ServerMessage::Welcome { .. } | ServerMessage::Refused { .. } => {
                break "the runtime sent a second handshake".to_string();
            }
        };
        if inbound.send(pushed).await.is_err() {
            // Nobody reads the events: responses still matter.
            continue;
        }
    };
    end(&waiting, &reason);
    let _ = inbound.send(Inbound::Closed(reason)).await;
}
