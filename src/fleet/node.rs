//! A worker's runtime as the fleet's consoles see it (`veyra attach nats://…`): the events and
//! commands `veyra.rpc/1` carries on a runtime's socket, on the bus, through the same
//! [`Service`] — the same journal folds the events and the same gate decides the commands.
//!
//! - **Presence.** Every [`PRESENCE_EVERY`] the worker puts its [`FleetWorker`] in the
//!   `<stream>_WORKERS` bucket (memory-stored) under its [`node_key`]; the server forgets a
//!   worker [`PRESENCE_AGE`] after it last said so, and a worker that stops deletes its entry.
//! - **Events.** While a console has said within [`WATCHED_FOR`] that it watches (on
//!   `<prefix>.watch`, every [`WATCH_EVERY`]), the worker forwards its journal's lines on
//!   `<prefix>.node.<key>.events`: a message is a [`Header`] line (`epoch`, and `seq`, the
//!   number of the first line) and the lines, numbered on. With nobody watching the journal
//!   encodes nothing for the bus. A new epoch (the worker fell behind, or starts forwarding
//!   again) means lines were skipped: a console rebuilds its view.
//! - **Snapshot.** Asked on `<prefix>.node.<key>.snapshot`, the worker sends the asker's inbox
//!   its journal's snapshot in parts, each a [`Part`] line and event lines: the snapshot holds
//!   every line of its epoch up to `after`, so a console drops those and takes the next.
//! - **Commands** on `<prefix>.commands.node.<key>`: a [`NodeCommand`], carried out by the
//!   worker's service for the console as it says it is ([`NodeCaller`]: the bus's credentials
//!   are the boundary, and the audit entry says `nats` and where the console said it runs),
//!   answered with a `response` line.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tokio::time::Instant;
use tokio_util::bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::Fleet;
use crate::core::Caller;
use crate::error::VeyraError;
use crate::service::Service;
use crate::service::journal::Line;
use crate::service::protocol::{self, FleetWorker, Request, ServerMessage};

/// How often a worker says it is up.
pub(crate) const PRESENCE_EVERY: Duration = Duration::from_secs(2);
/// How long after a worker last said so the server forgets it.
pub(crate) const PRESENCE_AGE: Duration = Duration::from_secs(10);
/// How often a console says it watches.
pub(crate) const WATCH_EVERY: Duration = Duration::from_secs(5);
/// How long a worker forwards its events after a console last said it watches.
pub(crate) const WATCHED_FOR: Duration = Duration::from_secs(20);
/// Largest message a worker sends consoles (a NATS server takes 1 MiB by default); a line
/// longer than this leaves a gap the console repairs with a snapshot, where it is left out.
pub(crate) const MAX_NODE_MESSAGE: usize = 512 * 1024;

/// A worker's name as one subject token and bucket key: its letters, digits, `-` and `_`,
/// others as `_`, at most 48, and 8 hex digits of its SHA-256 so two names never share one.
pub(crate) fn node_key(name: &str) -> String {
    let shown: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    let digest = sha2::Sha256::digest(name.as_bytes());
    format!("{shown}-{}", hex::encode(&digest[..4]))
}

/// The first line of an events message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    /// Changes whenever lines were skipped.
    pub epoch: u64,
    /// The number of the message's first line (1 is the epoch's first).
    pub seq: u64,
}

/// The first line of a snapshot's part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Part {
    /// The epoch the snapshot belongs to.
    pub epoch: u64,
    /// The snapshot holds the epoch's lines up to this one.
    pub after: u64,
    /// The snapshot's last part.
    pub last: bool,
}

/// A console as it says it is, with a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeCommand {
    /// Who asks.
    pub by: NodeCaller,
    /// What.
    pub command: Request,
}

/// A console on the bus, as it says it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeCaller {
    /// Its host.
    pub host: String,
    /// Its process.
    pub pid: u32,
    /// Its user.
    pub uid: u32,
}

impl NodeCaller {
    /// This process.
    pub fn here() -> NodeCaller {
        NodeCaller {
            host: crate::core::hostname(),
            pid: std::process::id(),
            uid: crate::service::socket::own_uid(),
        }
    }

    /// As the worker records it: over `nats`, from where it said (sanitized, bounded).
    pub fn caller(&self) -> Caller {
        let host =
            crate::sanitize::excerpt(&crate::sanitize::sanitize_line(&self.host), 128).into_owned();
        Caller {
            pid: i32::try_from(self.pid).ok(),
            uid: self.uid,
            transport: format!("nats, from {host} as it said"),
        }
    }
}

/// `lines` as messages of at most [`MAX_NODE_MESSAGE`], each its header (made by `header`
/// from the index of its first line, and whether it is the last message) and its lines. A line
/// too long for any message is left out, and logged; the message after it starts past it, so
/// a console sees the gap.
fn pack(lines: &[Line], mut header: impl FnMut(u64, bool) -> String) -> Vec<Vec<u8>> {
    let limit = MAX_NODE_MESSAGE - 256;
    let mut out = Vec::new();
    let mut i = 0usize;
    loop {
        while i < lines.len() && lines[i].len() + 1 > limit {
            tracing::warn!(
                bytes = lines[i].len(),
                "an event too large for the bus was left out of what consoles get"
            );
            i += 1;
        }
        let first = i;
        let mut body = Vec::new();
        while i < lines.len() && lines[i].len() < limit && body.len() + lines[i].len() < limit {
            body.push(b'\n');
            body.extend_from_slice(lines[i].as_bytes());
            i += 1;
        }
        let last = i >= lines.len();
        let mut message = header(first as u64, last).into_bytes();
        message.extend_from_slice(&body);
        out.push(message);
        if last {
            return out;
        }
    }
}

/// What the worker knows of its own forwarding.
struct Forward {
    id: u64,
    rx: tokio::sync::mpsc::Receiver<Line>,
    lagged: Arc<std::sync::atomic::AtomicBool>,
    /// Lines are forwarded (the journal queues them for the bus).
    live: bool,
    /// Starts at this process's start time in nanoseconds, so a worker started again under
    /// the same name never repeats an epoch a console knows.
    epoch: u64,
    /// Lines of this epoch taken off the queue.
    taken: u64,
    watched_until: Instant,
}

impl Forward {
    /// Starts a new epoch: the queue emptied, the journal queueing again.
    fn restart(&mut self, service: &Service) {
        service.journal().restart(self.id, &mut self.rx);
        self.epoch = self.epoch.wrapping_add(1);
        self.taken = 0;
        self.live = true;
    }
}

/// Snapshots a worker sends at most per second (a snapshot copies the journal under the lock
/// every event takes): more are not answered, and their consoles ask again later.
const SNAPSHOTS_PER_SECOND: u32 = 20;
/// Commands from the bus a worker carries out at once; more are answered `busy`.
const COMMANDS_AT_ONCE: usize = 8;

/// Whether a console over the fleet is shown `event`: a worker's audit trail, link, backend
/// and MCP servers are its own (the console shows them through the workers' presence), so
/// they never leave it.
pub(crate) fn for_consoles(event: &crate::events::Event) -> bool {
    use crate::events::Event;
    !matches!(
        event,
        Event::AuditRecorded { .. }
            | Event::AuditVerified { .. }
            | Event::AuditCheckpoint { .. }
            | Event::LinkChanged { .. }
            | Event::BackendChanged { .. }
            | Event::McpServer { .. }
    )
}

/// The journal's line as consoles get it, or `None` when it is not theirs to see.
fn line_for_consoles(line: &Line) -> Option<Line> {
    match serde_json::from_str::<ServerMessage>(line) {
        Ok(ServerMessage::Event { event }) if for_consoles(&event) => Some(Arc::clone(line)),
        _ => None,
    }
}

/// Serves worker `name`'s runtime to the fleet's consoles until `stop`; then says it is gone.
/// `running` counts the tasks it holds.
pub(crate) async fn serve(
    fleet: Fleet,
    service: Service,
    name: Arc<str>,
    running: Arc<dyn Fn() -> usize + Send + Sync>,
    room: usize,
    stop: CancellationToken,
) {
    let key = node_key(&name);
    let subscribe = |subject: String| {
        let client = fleet.client.clone();
        async move { client.subscribe(subject).await }
    };
    let (snapshots, commands, watches) = match tokio::try_join!(
        subscribe(fleet.node_snapshot_subject(&key)),
        subscribe(fleet.node_command_subject(&key)),
        subscribe(fleet.watch_subject()),
    ) {
        Ok(subs) => subs,
        Err(e) => {
            tracing::warn!("this worker cannot serve the fleet's consoles: {e}");
            return;
        }
    };
    let (mut snapshots, mut commands, mut watches) = (snapshots, commands, watches);
    let presence = tokio::spawn(say_up(
        fleet.clone(),
        service.clone(),
        Arc::clone(&name),
        key.clone(),
        running,
        room,
        stop.clone(),
    ));
    let subscription = service.journal().subscribe();
    let mut forward = Forward {
        id: subscription.id,
        rx: subscription.rx,
        lagged: subscription.lagged,
        live: false,
        epoch: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 2)),
        taken: 0,
        watched_until: Instant::now(),
    };
    let events_subject = fleet.node_events_subject(&key);
    let mut tick = tokio::time::interval(PRESENCE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let permits = Arc::new(tokio::sync::Semaphore::new(COMMANDS_AT_ONCE));
    let (mut snapshot_window, mut snapshots_sent) = (Instant::now(), 0u32);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {
                if forward.live && Instant::now() >= forward.watched_until {
                    service.journal().pause(forward.id);
                    forward.live = false;
                } else if forward.live {
                    // Where the next line will be: a console that lost the tail of the stream
                    // (a line too large, a reconnect) sees the gap now, not at the next event.
                    announce(&fleet, &events_subject, forward.epoch, forward.taken + 1).await;
                }
            }
            Some(line) = forward.rx.recv() => {
                let mut lines = vec![line];
                while lines.len() < 1024 {
                    match forward.rx.try_recv() {
                        Ok(line) => lines.push(line),
                        Err(_) => break,
                    }
                }
                if !forward.live {
                    // Queued before the pause: nobody is watching.
                    continue;
                }
                let first = forward.taken + 1;
                forward.taken += lines.len() as u64;
                let epoch = forward.epoch;
                // Lines not for consoles are sent as `null`: they keep their numbers, so a
                // console still tells a gap.
                let shown: Vec<Line> = lines
                    .iter()
                    .map(|l| line_for_consoles(l).unwrap_or_else(|| Line::from("null")))
                    .collect();
                for message in pack(&shown, |offset, _| {
                    line_of(&Header { epoch, seq: first + offset })
                }) {
                    if let Err(e) = fleet.client.publish(events_subject.clone(), message.into()).await {
                        tracing::debug!("publishing events for consoles: {e}");
                    }
                }
                if forward.lagged.load(Ordering::SeqCst) {
                    // The bus fell behind the journal: a new epoch, which consoles repair with
                    // a snapshot.
                    tracing::info!("the fleet's consoles fell behind this worker; they resync");
                    forward.restart(&service);
                    announce(&fleet, &events_subject, forward.epoch, 1).await;
                }
            }
            Some(ask) = snapshots.next() => {
                // Answered only to an inbox: a worker publishes its journal nowhere else.
                let Some(reply) = ask.reply.filter(|r| r.as_str().starts_with("_INBOX.")) else {
                    continue;
                };
                if snapshot_window.elapsed() >= Duration::from_secs(1) {
                    (snapshot_window, snapshots_sent) = (Instant::now(), 0);
                }
                if snapshots_sent >= SNAPSHOTS_PER_SECOND {
                    tracing::debug!("a snapshot asked for over the rate; not answered");
                    continue;
                }
                snapshots_sent += 1;
                forward.watched_until = Instant::now() + WATCHED_FOR;
                if !forward.live {
                    forward.restart(&service);
                }
                let snapshot = service.journal().snapshot_for(forward.id);
                let (epoch, after) = (forward.epoch, snapshot.queued);
                // Encoded and sent beside the loop, which goes on forwarding: the console drops
                // what the snapshot already holds, whichever arrives first.
                let client = fleet.client.clone();
                tokio::spawn(async move {
                    let lines: Vec<Line> = snapshot
                        .events
                        .into_iter()
                        .filter(for_consoles)
                        .map(|event| Line::from(protocol::line(&ServerMessage::Event { event })))
                        .collect();
                    for part in pack(&lines, |_, last| line_of(&Part { epoch, after, last })) {
                        if let Err(e) = client.publish(reply.clone(), part.into()).await {
                            tracing::debug!("sending a console this worker's snapshot: {e}");
                            break;
                        }
                    }
                });
            }
            Some(_) = watches.next() => {
                forward.watched_until = Instant::now() + WATCHED_FOR;
                if !forward.live {
                    // Consoles that had a snapshot missed what came meanwhile: a new epoch.
                    forward.restart(&service);
                    announce(&fleet, &events_subject, forward.epoch, 1).await;
                }
            }
            Some(ask) = commands.next() => {
                let service = service.clone();
                let client = fleet.client.clone();
                match Arc::clone(&permits).try_acquire_owned() {
                    Ok(permit) => {
                        tokio::spawn(async move {
                            command(&service, &client, ask).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        if let Some(reply) = ask.reply.filter(|r| r.as_str().starts_with("_INBOX.")) {
                            let line = protocol::line(&ServerMessage::Response {
                                id: 0,
                                ok: None,
                                error: Some(protocol::RpcError {
                                    kind: "busy".into(),
                                    message: format!(
                                        "this worker is carrying out {COMMANDS_AT_ONCE} commands \
                                         from the bus; ask again"
                                    ),
                                }),
                            });
                            let _ = client.publish(reply, line.into()).await;
                        }
                    }
                }
            }
        }
    }
    service.journal().unsubscribe(forward.id);
    let _ = presence.await;
}

/// The workers up in `store` (the presence bucket), each with its key, at most `limit` of
/// them, in key order. An entry that does not read, or names another worker than its key
/// does, is skipped and logged; one that went meanwhile is skipped.
pub(crate) async fn present(
    store: &async_nats::jetstream::kv::Store,
    limit: usize,
) -> Result<Vec<(String, FleetWorker)>, VeyraError> {
    let keys = store
        .keys()
        .await
        .map_err(|e| super::nats_error("listing the fleet's workers", e))?;
    let mut keys: Vec<String> = keys.filter_map(|k| async { k.ok() }).collect().await;
    keys.sort();
    keys.truncate(limit);
    // Sixteen reads at a time, in key order: a large fleet is read in a few round trips.
    let mut entries = futures_util::stream::iter(keys)
        .map(|key| async move {
            let entry = store.get(&key).await;
            (key, entry)
        })
        .buffered(16);
    let mut workers = Vec::new();
    while let Some((key, entry)) = entries.next().await {
        match entry {
            Ok(Some(bytes)) => match serde_json::from_slice::<FleetWorker>(&bytes) {
                // An entry must be the worker its key says.
                Ok(worker) if node_key(&worker.name) == key => workers.push((key, worker)),
                Ok(_) => tracing::warn!(
                    "a worker's entry under {} names another worker; skipped",
                    crate::sanitize::quote(&key)
                ),
                Err(e) => tracing::warn!(
                    "a worker's entry under {} does not read ({}); skipped",
                    crate::sanitize::quote(&key),
                    crate::sanitize::excerpt(&e.to_string(), 120)
                ),
            },
            Ok(None) => {}
            Err(e) => tracing::debug!("reading a worker's entry: {e}"),
        }
    }
    Ok(workers)
}

/// Says the worker is up every [`PRESENCE_EVERY`] until `stop`, then that it is gone. Each
/// write is given up after a moment: a server that does not answer delays nothing else.
async fn say_up(
    fleet: Fleet,
    service: Service,
    name: Arc<str>,
    key: String,
    running: Arc<dyn Fn() -> usize + Send + Sync>,
    room: usize,
    stop: CancellationToken,
) {
    let store = fleet.workers();
    let host = crate::core::hostname();
    let mut tick = tokio::time::interval(PRESENCE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let core = service.core();
        let worker = FleetWorker {
            name: name.to_string(),
            host: host.clone(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            backend: core.backend_name(),
            model: core.model_name(),
            link: core.link_status(),
            running: running(),
            room,
            at: chrono::Utc::now(),
        };
        let Ok(bytes) = serde_json::to_vec(&worker) else {
            continue;
        };
        match tokio::time::timeout(PRESENCE_EVERY, store.put(key.as_str(), Bytes::from(bytes)))
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!("saying this worker is up: {e}"),
            Err(_) => tracing::debug!("saying this worker is up: no answer"),
        }
    }
    if !matches!(
        tokio::time::timeout(PRESENCE_EVERY, store.delete(key.as_str())).await,
        Ok(Ok(()))
    ) {
        tracing::debug!("saying this worker is gone: no answer (the server forgets it soon)");
    }
}

/// One line of JSON (these types always encode).
fn line_of<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Tells consoles where the stream is (a header and no lines): a new epoch's start, or the
/// number the next line will have.
async fn announce(fleet: &Fleet, subject: &str, epoch: u64, seq: u64) {
    let header = line_of(&Header { epoch, seq });
    if let Err(e) = fleet
        .client
        .publish(subject.to_string(), header.into())
        .await
    {
        tracing::debug!("telling consoles of a new epoch: {e}");
    }
}

/// The commands a worker takes from the bus: those that set or check the runtime as a whole.
/// A prompt comes through the task stream (its attempts recorded and fenced); what acts on the
/// store or grants anything (an undo, a tool call, an approval, a benchmark run) is for a
/// client of the worker's own socket, whom the socket's credentials name.
fn taken_from_the_bus(command: &Request) -> bool {
    matches!(
        command,
        Request::SetPreset { .. }
            | Request::SetSimulated { .. }
            | Request::SetBackend { .. }
            | Request::VerifyAudit
            | Request::ReloadPolicy
            | Request::Status
    )
}

/// Carries out a console's command and answers it; a message that is no command is answered
/// with why.
async fn command(service: &Service, client: &async_nats::Client, ask: async_nats::Message) {
    // Answered only to an inbox, as snapshots are.
    let Some(reply) = ask.reply.filter(|r| r.as_str().starts_with("_INBOX.")) else {
        return;
    };
    let result = match serde_json::from_slice::<NodeCommand>(&ask.payload) {
        Ok(NodeCommand { by, command }) if taken_from_the_bus(&command) => {
            let caller = by.caller();
            tracing::info!(client = %caller, "a command from the fleet");
            service.command(&caller, command).await
        }
        Ok(NodeCommand { by, .. }) => {
            tracing::warn!(client = %by.caller(), "refused a command from the bus that acts on this worker's store");
            Err(protocol::RpcError {
                kind: "refused".into(),
                message: "a fleet worker takes only link, backend, policy-reload, audit-verify                           and status commands from the bus; attach to its own runtime                           (`veyra attach ssh://HOST`) for the rest"
                    .into(),
            })
        }
        Err(e) => {
            tracing::warn!(
                "a command on the bus could not be read: {}",
                crate::sanitize::excerpt(&e.to_string(), 160)
            );
            Err(protocol::RpcError {
                kind: "bad_request".into(),
                message: format!(
                    "not a command this worker reads ({})",
                    crate::sanitize::excerpt(&e.to_string(), 160)
                ),
            })
        }
    };
    let (ok, error) = match result {
        Ok(reply) => (Some(reply), None),
        Err(e) => (None, Some(e)),
    };
    let line = protocol::line(&ServerMessage::Response { id: 0, ok, error });
    if let Err(e) = client.publish(reply, line.into()).await {
        tracing::debug!("answering a console's command: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_key_is_one_token_and_tells_names_apart() {
        let a = node_key("gpu-1.example.org/4242");
        let b = node_key("gpu-1_example_org/4242");
        assert!(crate::config::is_nats_token(&a), "{a}");
        assert!(a.starts_with("gpu-1_example_org_4242-"), "{a}");
        assert_ne!(a, b);
        assert!(node_key(&"x".repeat(500)).len() <= 48 + 9);
        assert!(crate::config::is_nats_token(&node_key("a b.c*>")));
    }

    #[test]
    fn pack_numbers_parts_and_leaves_out_a_line_too_large() {
        let small: Line = Line::from("a".repeat(100));
        let huge: Line = Line::from("b".repeat(MAX_NODE_MESSAGE));
        let big: Line = Line::from("c".repeat(MAX_NODE_MESSAGE / 2));
        let lines = vec![small.clone(), huge, big.clone(), big, small];
        let parts = pack(&lines, |first, last| format!("{first}:{last}"));
        let heads: Vec<String> = parts
            .iter()
            .map(|p| {
                String::from_utf8_lossy(p)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert_eq!(heads, ["0:false", "2:false", "3:true"]);
        assert!(parts.iter().all(|p| p.len() <= MAX_NODE_MESSAGE));
        // Nothing to send still sends the header (a snapshot's only part).
        let empty = pack(&[], |first, last| format!("{first}:{last}"));
        assert_eq!(empty, vec![b"0:true".to_vec()]);
    }
}
