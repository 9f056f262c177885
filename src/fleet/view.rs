//! One console over the fleet (`veyra attach nats://…`, and `veyra` with
//! `runtime.executor: nats`): a session of `veyra.rpc/1` like any runtime's, served in this
//! process from the bus, so the console, its panes and its keys are the ones it has on a
//! single runtime.
//!
//! What the session carries:
//! - **The workers** ([`FleetWorker`], read from the `WORKERS` bucket every
//!   [`LIST_EVERY`]), as a `fleet` message whenever they change: the status bar counts them
//!   and their links.
//! - **Their events.** A snapshot of every worker's journal, then each worker's events as it
//!   forwards them ([`super::node`]): lines its snapshot held are dropped, and a gap or a new
//!   epoch makes the session resync (at most once a [`RESYNC_GAP`]). Each worker keeps its own
//!   audit trail and link, so their audit, link and backend events stay with it: the status
//!   bar shows them through the `fleet` message, and `audit at each worker`.
//! - **Commands.** A prompt is published to the task stream like any fleet task; a cancel is
//!   a withdrawal or a cancel on the bus; the link, backend, policy and audit commands go to
//!   every worker's `<prefix>.commands.node.<key>`, each decided and audited by that worker.
//!   What acts on one runtime's store (an undo, an audit entry, approvals, a tool) is refused
//!   with where to do it.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::bytes::Bytes;
use tokio_util::codec::{FramedRead, LinesCodec};

use super::node::{self, Header, NodeCaller, Part};
use super::{Fleet, Submitter};
use crate::config::VeyraConfig;
use crate::error::VeyraError;
use crate::events::LinkStatus;
use crate::service::protocol::{
    self, ClientMessage, FleetWorker, MAX_CLIENT_LINE, PROTOCOL, RuntimeInfo, ServerMessage,
};
use crate::service::{Client, Inbound};

mod requests;
use requests::requests;

/// How often the session reads who is up.
const LIST_EVERY: Duration = Duration::from_secs(2);
/// Least time between two resyncs.
const RESYNC_GAP: Duration = Duration::from_secs(1);
/// How long a worker may be silent while it sends its snapshot (before the first part and
/// between parts), and how long the whole may take.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(3);
const SNAPSHOT_WHOLE: Duration = Duration::from_secs(30);
/// How long after a worker's snapshot failed it is asked again.
const UNSYNCED_RETRY: Duration = Duration::from_secs(10);
/// How long a worker has to answer a command.
const COMMAND_WAIT: Duration = Duration::from_secs(15);
/// Most bytes of one worker's snapshot: its journal keeps at most 500 ended tasks with 64 KiB
/// of answer each, and the tasks running.
const MAX_SNAPSHOT: usize = 96 << 20;
/// Most workers the session lists (a bucket is the fleet's to fill; a console draws a few).
const MAX_WORKERS: usize = 1_000;

/// Opens a console's session over `fleet` (see the module docs). `config` gives what shows
/// before any worker says what it runs.
pub async fn attach(
    fleet: Fleet,
    config: &VeyraConfig,
    kind: &str,
) -> Result<(Client, mpsc::Receiver<Inbound>), VeyraError> {
    let presence = fleet.workers();
    let events = fleet
        .client
        .subscribe(format!("{}.node.*.events", fleet.config.subject_prefix))
        .await
        .map_err(|e| super::nats_error("listening for the workers' events", e))?;
    let link =
        crate::runtime::latency::LinkSim::new(&config.latency, 0, chrono::Utc::now()).status();
    let bridge = Bridge {
        submitter: Submitter::new(fleet.clone()),
        fleet,
        by: NodeCaller::here(),
        presence,
        workers: Vec::new(),
        listed: std::collections::BTreeSet::new(),
        nodes: HashMap::new(),
        unsynced: HashMap::new(),
        sync_missing: false,
        resync_at: None,
        last_resync: Instant::now(),
        backend: config.model.backend.clone(),
        model: config.model.model.clone(),
        link,
    };
    let (near, far) = tokio::io::duplex(256 * 1024);
    let (far_read, far_write) = tokio::io::split(far);
    tokio::spawn(bridge.run(far_read, far_write, events));
    let (read, write) = tokio::io::split(near);
    Client::start(
        read,
        write,
        kind,
        true,
        None,
        crate::service::client::HELLO_WAIT,
    )
    .await
    .map_err(VeyraError::from)
}

/// What the session knows of one worker's events: the epoch, and the last line taken.
#[derive(Debug, Clone, Copy)]
struct NodeView {
    epoch: u64,
    seq: u64,
}

/// The session's side (see the module docs).
struct Bridge {
    fleet: Fleet,
    submitter: Submitter,
    by: NodeCaller,
    presence: async_nats::jetstream::kv::Store,
    /// The live workers, by name.
    workers: Vec<FleetWorker>,
    /// Their keys ([`node::node_key`]), as read with them (in order: snapshots come in it).
    listed: std::collections::BTreeSet<String>,
    /// Each synced worker's events, by key.
    nodes: HashMap<String, NodeView>,
    /// Workers whose snapshot the last resync could not get, and when: asked again after
    /// [`UNSYNCED_RETRY`], not at each of their events.
    unsynced: HashMap<String, (Instant, u32)>,
    /// Workers not yet synced (new, or whose snapshot failed) are to be synced on their own,
    /// without rebuilding the rest of the view.
    sync_missing: bool,
    /// Why the view must be rebuilt, when it must.
    resync_at: Option<&'static str>,
    last_resync: Instant,
    backend: String,
    model: String,
    link: LinkStatus,
}

/// Lines to the client.
type Out = mpsc::Sender<String>;

impl Bridge {
    /// The fleet as a runtime: the first worker's backend and link (the status bar counts the
    /// rest), or the configuration's while none is up.
    fn info(&self) -> RuntimeInfo {
        let first = self.workers.first();
        RuntimeInfo {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            host: "fleet".into(),
            store: format!("{} (stream {})", self.fleet.url(), self.fleet.config.stream),
            backend: first.map_or_else(|| self.backend.clone(), |w| w.backend.clone()),
            model: first.map_or_else(|| self.model.clone(), |w| w.model.clone()),
            link: first.map_or_else(|| self.link.clone(), |w| w.link.clone()),
            audit: None,
            clients: 0,
            mcp: Vec::new(),
        }
    }

    async fn run(
        mut self,
        read: ReadHalf<DuplexStream>,
        write: WriteHalf<DuplexStream>,
        mut events: async_nats::Subscriber,
    ) {
        let mut lines = FramedRead::new(read, LinesCodec::new_with_max_length(MAX_CLIENT_LINE));
        // The client's hello (this process's own console: anything else is a bug said once).
        let watching = match lines.next().await {
            Some(Ok(text)) => match serde_json::from_str::<ClientMessage>(&text) {
                Ok(ClientMessage::Hello {
                    protocol, events, ..
                }) if protocol == PROTOCOL => events,
                _ => {
                    tracing::warn!("the fleet session's client said no hello");
                    return;
                }
            },
            _ => return,
        };
        self.list().await;
        let (out, out_rx) = mpsc::channel::<String>(1024);
        let welcome = ServerMessage::Welcome {
            protocol: PROTOCOL.to_string(),
            runtime: self.info(),
            you: self.by.caller(),
        };
        if out.send(protocol::line(&welcome)).await.is_err() {
            return;
        }
        tokio::spawn(write_lines(write, out_rx));
        // The client's requests are read beside the loop, so a resync waiting on a slow worker
        // never holds a prompt or a cancel back; they see the workers as last listed.
        let (known, seen) = tokio::sync::watch::channel(self.known());
        let closed = tokio_util::sync::CancellationToken::new();
        tokio::spawn(requests(
            lines,
            seen,
            (self.fleet.clone(), self.submitter.clone(), self.by.clone()),
            out.clone(),
            closed.clone(),
        ));
        if watching {
            self.watch().await;
            if self.resync("attached", &out).await.is_err() {
                return;
            }
            known.send_replace(self.known());
        }
        let mut list = tokio::time::interval(LIST_EVERY);
        list.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watch = tokio::time::interval(node::WATCH_EVERY);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = closed.cancelled() => return,
                Some(message) = events.next(), if watching => {
                    if self.take(&message, &out).await.is_err() {
                        return;
                    }
                }
                _ = list.tick() => {
                    let before = self.workers.clone();
                    self.list().await;
                    // A worker that came up (or was missed while the server restarted) is
                    // synced now, not when it next has news.
                    if watching && self.listed.iter().any(|key| self.wants_sync(key)) {
                        self.sync_missing = true;
                    }
                    if watching && self.workers != before {
                        let workers = self.workers.clone();
                        if out.send(protocol::line(&ServerMessage::Fleet { workers })).await.is_err() {
                            return;
                        }
                    }
                }
                _ = watch.tick(), if watching => self.watch().await,
            }
            if let Some(reason) = self.resync_at
                && self.last_resync.elapsed() >= RESYNC_GAP
                && self.resync(reason, &out).await.is_err()
            {
                return;
            }
            if self.sync_missing && self.sync(&out).await.is_err() {
                return;
            }
            known.send_if_modified(|k| {
                let now = self.known();
                let changed = *k != now;
                *k = now;
                changed
            });
        }
    }

    /// What a request needs of the session: the live workers' names, and the fleet as a
    /// runtime.
    fn known(&self) -> (Vec<String>, RuntimeInfo) {
        (
            self.workers.iter().map(|w| w.name.clone()).collect(),
            self.info(),
        )
    }

    /// Tells the workers a console watches.
    async fn watch(&self) {
        if let Err(e) = self
            .fleet
            .client
            .publish(self.fleet.watch_subject(), Bytes::new())
            .await
        {
            tracing::debug!("telling the workers this console watches: {e}");
        }
    }

    /// Reads who is up (names sorted; an entry that does not read is skipped and logged).
    async fn list(&mut self) {
        let present = match node::present(&self.presence, MAX_WORKERS).await {
            Ok(present) => present,
            Err(e) => {
                tracing::debug!("{e}");
                return;
            }
        };
        let listed: std::collections::BTreeSet<String> =
            present.iter().map(|(key, _)| key.clone()).collect();
        let mut workers: Vec<FleetWorker> = present.into_iter().map(|(_, w)| w).collect();
        workers.sort_by(|a, b| a.name.cmp(&b.name));
        // Another process under a name (restarted, or a second one): what was synced of the
        // old one says nothing of it.
        for w in &workers {
            if let Some(old) = self.workers.iter().find(|o| o.name == w.name)
                && (old.pid, &old.host) != (w.pid, &w.host)
            {
                // Its rows in the view are the old process's: the view is rebuilt.
                self.nodes.remove(&node::node_key(&w.name));
                self.resync_at.get_or_insert("lagged");
            }
        }
        // `at` changes at every report: compared without it, a steady fleet sends nothing.
        for w in &mut workers {
            if let Some(old) = self.workers.iter().find(|o| o.name == w.name)
                && (FleetWorker {
                    at: old.at,
                    ..w.clone()
                }) == *old
            {
                w.at = old.at;
            }
        }
        self.workers = workers;
        self.listed = listed;
    }

    /// Rebuilds the client's view: a resync, the workers, each one's snapshot, then live.
    async fn resync(&mut self, reason: &str, out: &Out) -> Result<(), ()> {
        self.last_resync = Instant::now();
        self.list().await;
        // What the listing found is rebuilt now.
        self.resync_at = None;
        let send = |message: ServerMessage| out.send(protocol::line(&message));
        send(ServerMessage::Resync {
            reason: reason.to_string(),
            missed: 0,
        })
        .await
        .map_err(drop)?;
        send(ServerMessage::Fleet {
            workers: self.workers.clone(),
        })
        .await
        .map_err(drop)?;
        self.nodes.clear();
        self.unsynced.clear();
        self.sync(out).await?;
        send(ServerMessage::Live).await.map_err(drop)
    }

    /// One message of a worker's events: its new lines forwarded, a gap or a new epoch noted
    /// for a resync.
    async fn take(&mut self, message: &async_nats::Message, out: &Out) -> Result<(), ()> {
        let prefix = format!("{}.node.", self.fleet.config.subject_prefix);
        let Some(key) = message
            .subject
            .as_str()
            .strip_prefix(&prefix)
            .and_then(|s| s.strip_suffix(".events"))
        else {
            return Ok(());
        };
        // Only listed workers are followed: events under any other key (a worker not yet
        // listed, or anyone publishing there) wait for the next listing.
        if !self.listed.contains(key) {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&message.payload);
        let mut lines = text.split('\n');
        let Some(Ok(header)) = lines.next().map(serde_json::from_str::<Header>) else {
            tracing::warn!(worker = %crate::sanitize::sanitize_line(key), "a worker's events message does not read; skipped");
            return Ok(());
        };
        let Some(view) = self.nodes.get_mut(key) else {
            // A worker that came up, or one whose snapshot was missed.
            if self.wants_sync(key) {
                self.sync_missing = true;
            }
            return Ok(());
        };
        if header.epoch != view.epoch {
            // It fell behind, began forwarding again, or is another process of that name.
            self.resync_at.get_or_insert("lagged");
            return Ok(());
        }
        if header.seq > view.seq.saturating_add(1) {
            // Lines were lost (at its end, too: a header alone says where the next one is).
            self.resync_at.get_or_insert("lagged");
            return Ok(());
        }
        for (offset, line) in lines.enumerate() {
            let Some(n) = u64::try_from(offset)
                .ok()
                .and_then(|o| header.seq.checked_add(o))
            else {
                break;
            };
            if n <= view.seq {
                continue;
            }
            view.seq = n;
            forward(line, out).await?;
        }
        Ok(())
    }

    /// Syncs the listed workers not synced yet, one at a time (what the session holds is one
    /// worker's snapshot at most): each one's snapshot is sent on top of the view, which holds
    /// nothing of it. One whose snapshot fails is asked again later, backing off.
    async fn sync(&mut self, out: &Out) -> Result<(), ()> {
        self.sync_missing = false;
        let keys: Vec<String> = self
            .listed
            .iter()
            .filter(|key| self.wants_sync(key))
            .cloned()
            .collect();
        for key in keys {
            match snapshot(&self.fleet, &key).await {
                Ok((view, lines)) => {
                    for line in lines {
                        forward(&line, out).await?;
                    }
                    self.unsynced.remove(&key);
                    self.nodes.insert(key, view);
                }
                Err(why) => {
                    tracing::warn!(worker = %key, "no snapshot of this worker: {why}");
                    let tries = self.unsynced.get(&key).map_or(0, |(_, n)| *n);
                    self.unsynced
                        .insert(key, (Instant::now(), tries.saturating_add(1)));
                }
            }
        }
        // Those that left are forgotten.
        let listed = &self.listed;
        self.unsynced.retain(|key, _| listed.contains(key));
        Ok(())
    }

    /// Whether worker `key` is to be synced: it is not, and its last snapshot did not fail
    /// within [`UNSYNCED_RETRY`], doubled at each failure (at most 32 times).
    fn wants_sync(&self, key: &str) -> bool {
        !self.nodes.contains_key(key)
            && self.unsynced.get(key).is_none_or(|(at, tries)| {
                at.elapsed() >= UNSYNCED_RETRY * (1u32 << (*tries).saturating_sub(1).min(5))
            })
    }
}

/// A worker's event line to the client, when the console shows it for the fleet (its audit,
/// link and backend stay with it); anything not an event is dropped.
async fn forward(line: &str, out: &Out) -> Result<(), ()> {
    let Ok(ServerMessage::Event { event }) = serde_json::from_str::<ServerMessage>(line) else {
        return Ok(());
    };
    if !node::for_consoles(&event) {
        return Ok(());
    }
    out.send(protocol::line(&ServerMessage::Event { event }))
        .await
        .map_err(drop)
}

/// Worker `key`'s snapshot: where its events go on from, and its event lines.
async fn snapshot(fleet: &Fleet, key: &str) -> Result<(NodeView, Vec<String>), String> {
    let inbox = fleet.client.new_inbox();
    let mut parts = fleet
        .client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| e.to_string())?;
    fleet
        .client
        .publish_with_reply(fleet.node_snapshot_subject(key), inbox, Bytes::new())
        .await
        .map_err(|e| e.to_string())?;
    let whole = Instant::now() + SNAPSHOT_WHOLE;
    let mut lines = Vec::new();
    let mut bytes = 0usize;
    let mut view: Option<NodeView> = None;
    loop {
        let deadline = whole.min(Instant::now() + SNAPSHOT_WAIT);
        let message = match tokio::time::timeout_at(deadline, parts.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Err("the connection closed".into()),
            Err(_) => {
                return Err(format!(
                    "it was silent for {}s, or took over {}s",
                    SNAPSHOT_WAIT.as_secs(),
                    SNAPSHOT_WHOLE.as_secs()
                ));
            }
        };
        let text = String::from_utf8_lossy(&message.payload);
        let mut split = text.split('\n');
        let Some(Ok(part)) = split.next().map(serde_json::from_str::<Part>) else {
            return Err("a part of it does not read".into());
        };
        match view {
            Some(v) if v.epoch != part.epoch || v.seq != part.after => {
                return Err("its parts disagree".into());
            }
            _ => {
                view = Some(NodeView {
                    epoch: part.epoch,
                    seq: part.after,
                })
            }
        }
        lines.extend(split.filter(|l| !l.is_empty()).map(str::to_string));
        bytes += message.payload.len();
        if bytes > MAX_SNAPSHOT {
            return Err(format!(
                "it sent more than {} MiB, more than a worker's journal holds",
                MAX_SNAPSHOT >> 20
            ));
        }
        if part.last {
            break;
        }
    }
    view.map(|v| (v, lines))
        .ok_or_else(|| "it sent nothing".into())
}

/// Writes the session's lines to the client until either side is gone.
async fn write_lines(mut write: WriteHalf<DuplexStream>, mut lines: mpsc::Receiver<String>) {
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        if write.write_all(line.as_bytes()).await.is_err() {
            return;
        }
    }
}
