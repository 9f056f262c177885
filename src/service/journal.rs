//! The serving runtime's journal: it sees every event the core publishes, in order (it is the
//! core's tap, so it cannot lag the way a bus subscriber can), folds them into what a client
//! needs to draw the same panes — every task not yet ended and the last [`MAX_ENDED`] ended,
//! with their output, steps and pending questions; the last [`MAX_AUDIT`] audit entries and
//! [`MAX_VIOLATIONS`] violations; the link and the backend — and fans each event out to the
//! attached clients.
//!
//! Each event is encoded once and shared by every client. A client's queue is bounded
//! ([`QUEUE`] lines): when it is full the client is marked lagged and gets nothing more until
//! its writer has caught up and asks for a [`Journal::resync`] — a fresh snapshot taken under
//! the same lock the fan-out holds, so nothing is missed or told twice. A slow client therefore
//! costs the runtime one failed `try_send` per event and a snapshot when it catches up; the
//! runtime never waits on it, and what the journal keeps is bounded whatever the clients do.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::bench::BenchNews;
use super::protocol::{self, ServerMessage};
use crate::benchmarks::Progress;
use crate::events::{Event, EventSink, ExecutionId};

/// Ended tasks the journal keeps for clients that attach later (the console keeps 1,000).
pub const MAX_ENDED: usize = 500;
/// Audit entries kept for the Audit pane of clients that attach later.
pub const MAX_AUDIT: usize = 1_000;
/// Violations kept for the Safety pane.
pub const MAX_VIOLATIONS: usize = 200;
/// Characters of a task's answer kept for clients that attach later (the rest was streamed to
/// the clients attached while it was written).
pub const MAX_OUTPUT: usize = 64 * 1024;
/// Agent steps kept per task.
const MAX_STEPS: usize = 64;
/// Lines a client's queue holds before the client is marked lagged.
pub const QUEUE: usize = 4_096;
/// Finished items of the benchmark run kept for clients that attach later: a run of 7
/// families × 1,000 tasks × 2 epochs whole. Past it, a later console's bars still move with
/// the live news, and its interim V-Score covers the items kept (`veyra bench show` has all).
pub const MAX_BENCH_ITEMS: usize = 14_000;
/// Characters of a kept item's reason (the live news carries it whole).
const MAX_BENCH_REASON: usize = 240;

/// A line on its way to a client, shared by every client it goes to.
pub type Line = Arc<str>;

/// One attached client, as the fan-out sees it.
#[derive(Debug)]
struct Subscriber {
    tx: mpsc::Sender<Line>,
    lagged: Arc<AtomicBool>,
    missed: u64,
    /// Lines queued to it since its last resync: what numbers its lines for a forwarder that
    /// tells others where a snapshot ends ([`Journal::snapshot_for`]).
    queued: u64,
}

/// What a client's writer holds: its queue and the flag that says it fell behind.
#[derive(Debug)]
pub struct Subscription {
    /// The client's id in the journal.
    pub id: u64,
    /// Its queue of event lines.
    pub rx: mpsc::Receiver<Line>,
    /// Set when its queue overflowed: drain it and [`Journal::resync`].
    pub lagged: Arc<AtomicBool>,
}

/// One task, folded: its events in order, streamed text joined into one piece per run of
/// pieces, at most [`MAX_OUTPUT`] bytes of text and [`MAX_STEPS`] steps.
#[derive(Debug)]
struct TaskFold {
    order: u64,
    events: Vec<Event>,
    text: usize,
    steps: usize,
    /// Characters of the answer beyond [`MAX_OUTPUT`] that were not kept.
    dropped: usize,
}

impl TaskFold {
    fn push_text(&mut self, id: ExecutionId, text: &str) {
        let room = MAX_OUTPUT.saturating_sub(self.text);
        let mut cut = text.len().min(room);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        self.dropped += text[cut..].chars().count();
        let kept = &text[..cut];
        if kept.is_empty() {
            return;
        }
        self.text += kept.len();
        if let Some(Event::OutputDelta { text, .. }) = self.events.last_mut() {
            text.push_str(kept);
        } else {
            self.events.push(Event::OutputDelta {
                id,
                text: kept.to_string(),
            });
        }
    }
}

/// What the journal keeps to rebuild a client's view.
#[derive(Debug, Default)]
struct Fold {
    backend: Option<Event>,
    link: Option<Event>,
    /// Each MCP server's last state (servers are few: `config::MAX_MCP_SERVERS`).
    mcp: BTreeMap<String, Event>,
    verified: Option<Event>,
    checkpoint: Option<Event>,
    next_order: u64,
    tasks: HashMap<ExecutionId, TaskFold>,
    order: BTreeMap<u64, ExecutionId>,
    ended: VecDeque<ExecutionId>,
    audit: VecDeque<Event>,
    violations: VecDeque<Event>,
    pending: BTreeMap<u64, Event>,
    /// The benchmark run going, or the last one: its news in order (items up to
    /// [`MAX_BENCH_ITEMS`]).
    bench: Vec<BenchNews>,
    bench_items: usize,
}

#[derive(Debug, Default)]
struct State {
    fold: Fold,
    subscribers: HashMap<u64, Subscriber>,
}

/// See the module docs. Install it with [`VeyraCore::tap`](crate::core::VeyraCore::tap).
#[derive(Debug, Default)]
pub struct Journal {
    state: Mutex<State>,
    next_id: AtomicU64,
    /// Events folded, for the runtime's own figures.
    folded: AtomicU64,
}

impl Journal {
    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A new client: its queue starts with nothing; call [`Journal::resync`] for the snapshot
    /// first (the subscription starts lagged, so nothing reaches it before the snapshot).
    pub fn subscribe(&self) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE);
        let lagged = Arc::new(AtomicBool::new(true));
        self.state().subscribers.insert(
            id,
            Subscriber {
                tx,
                lagged: Arc::clone(&lagged),
                missed: 0,
                queued: 0,
            },
        );
        Subscription { id, rx, lagged }
    }

    /// Forgets a client.
    pub fn unsubscribe(&self, id: u64) {
        self.state().subscribers.remove(&id);
    }

    /// Clients attached now.
    pub fn clients(&self) -> usize {
        self.state().subscribers.len()
    }

    /// Events folded so far.
    pub fn folded(&self) -> u64 {
        self.folded.load(Ordering::Relaxed)
    }

    /// The snapshot for client `id` and how many events it missed, and the client is live
    /// again: every event after the snapshot reaches its queue. The caller drains the queue
    /// first (what is in it is older than the snapshot).
    pub fn resync(&self, id: u64, queue: &mut mpsc::Receiver<Line>) -> (u64, Snapshot) {
        let mut state = self.state();
        // Anything queued before the lag is older than the snapshot.
        while queue.try_recv().is_ok() {}
        let events = Snapshot {
            events: state.fold.snapshot(),
            bench: state.fold.bench.clone(),
            queued: 0,
        };
        let missed = match state.subscribers.get_mut(&id) {
            Some(sub) => {
                sub.lagged.store(false, Ordering::SeqCst);
                sub.queued = 0;
                std::mem::take(&mut sub.missed)
            }
            None => 0,
        };
        (missed, events)
    }

    /// The snapshot as it is now for live client `id`, its queue left as it is: `queued`
    /// says how many of the lines queued to it since its last resync the snapshot covers, so
    /// one forwarder can serve clients that attach at different times (a fleet worker's
    /// consoles, [`crate::fleet`]) and each drops the lines its snapshot already holds.
    pub fn snapshot_for(&self, id: u64) -> Snapshot {
        let state = self.state();
        Snapshot {
            events: state.fold.snapshot(),
            bench: state.fold.bench.clone(),
            queued: state.subscribers.get(&id).map_or(0, |s| s.queued),
        }
    }

    /// Client `id` live again from now, its queue emptied and its count started again, without
    /// a snapshot: for a forwarder that starts a new epoch its own readers repair with
    /// [`Journal::snapshot_for`].
    pub fn restart(&self, id: u64, queue: &mut mpsc::Receiver<Line>) {
        let mut state = self.state();
        while queue.try_recv().is_ok() {}
        if let Some(sub) = state.subscribers.get_mut(&id) {
            sub.lagged.store(false, Ordering::SeqCst);
            sub.queued = 0;
            sub.missed = 0;
        }
    }

    /// Stops queueing lines for client `id` (marks it lagged) until its next resync: for a
    /// forwarder nobody reads now, so the runtime does not encode events for nobody.
    pub fn pause(&self, id: u64) {
        if let Some(sub) = self.state().subscribers.get(&id) {
            sub.lagged.store(true, Ordering::SeqCst);
        }
    }

    /// The snapshot as it is now (tests, and a client that wants no live events).
    pub fn snapshot(&self) -> Vec<Event> {
        self.state().fold.snapshot()
    }

    /// The benchmark run's news as a client that attached now would get it.
    pub fn bench_snapshot(&self) -> Vec<BenchNews> {
        self.state().fold.bench.clone()
    }

    /// Folds news of the runtime's benchmark run and fans it out, as [`EventSink::emit`] does
    /// an event (install it with [`BenchHost::tap`](super::bench::BenchHost::tap)).
    pub fn bench(&self, news: &BenchNews) {
        let mut state = self.state();
        fan_out(&mut state, || {
            protocol::line(&ServerMessage::Bench { news: news.clone() })
        });
        state.fold.apply_bench(news);
    }
}

/// What rebuilds a client's view: the benchmark run's news, then the events.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The events.
    pub events: Vec<Event>,
    /// The benchmark run going, or the last one.
    pub bench: Vec<BenchNews>,
    /// Lines queued to the client since its last resync that this snapshot covers (0 from
    /// [`Journal::resync`], which empties the queue).
    pub queued: u64,
}

/// Queues a line (encoded once, and only when a client is listening) for every live client;
/// a full queue marks its client lagged, a closed one forgets it.
fn fan_out(state: &mut State, encode: impl FnOnce() -> String) {
    let live = state
        .subscribers
        .values()
        .any(|s| !s.lagged.load(Ordering::Relaxed));
    let line: Option<Line> = live.then(|| encode().into());
    let mut gone = Vec::new();
    for (id, sub) in &mut state.subscribers {
        if sub.lagged.load(Ordering::Relaxed) {
            sub.missed += 1;
            continue;
        }
        let Some(line) = &line else { continue };
        match sub.tx.try_send(Arc::clone(line)) {
            Ok(()) => sub.queued += 1,
            Err(mpsc::error::TrySendError::Full(_)) => {
                sub.lagged.store(true, Ordering::SeqCst);
                sub.missed += 1;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => gone.push(*id),
        }
    }
    for id in gone {
        state.subscribers.remove(&id);
    }
}

impl EventSink for Journal {
    fn emit(&self, event: Event) {
        self.folded.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        fan_out(&mut state, || {
            protocol::line(&ServerMessage::Event {
                event: event.clone(),
            })
        });
        state.fold.apply(event);
    }
}

/// Pushes `item` on a bounded queue, dropping the oldest beyond `max`.
fn keep<T>(queue: &mut VecDeque<T>, item: T, max: usize) {
    queue.push_back(item);
    while queue.len() > max {
        queue.pop_front();
    }
}

impl Fold {
    /// Keeps the run's news: a run that begins replaces the last one.
    fn apply_bench(&mut self, news: &BenchNews) {
        match news {
            BenchNews::Began(_) => {
                self.bench.clear();
                self.bench_items = 0;
            }
            BenchNews::Progress {
                progress: Progress::TaskFinished { .. },
            }
            | BenchNews::Sample { .. } => {
                if self.bench_items >= MAX_BENCH_ITEMS {
                    return;
                }
                self.bench_items += 1;
            }
            BenchNews::Progress { .. } | BenchNews::Ended { .. } => {}
        }
        let mut kept = news.clone();
        let reason = match &mut kept {
            BenchNews::Progress {
                progress: Progress::TaskFinished { reason, .. },
            } => Some(reason),
            BenchNews::Sample { sample } => Some(&mut sample.reason),
            _ => None,
        };
        if let Some(reason) = reason
            && reason.chars().count() > MAX_BENCH_REASON
        {
            *reason = reason.chars().take(MAX_BENCH_REASON).collect::<String>() + "…";
        }
        self.bench.push(kept);
    }

    fn apply(&mut self, event: Event) {
        match &event {
            Event::TaskSubmitted { id, .. } => {
                // The same execution submitted again (a fleet task taken over, or handed back
                // and taken again) replaces what was kept of it.
                if let Some(old) = self.tasks.get(id) {
                    self.order.remove(&old.order);
                    self.ended.retain(|e| e != id);
                }
                let order = self.next_order;
                self.next_order += 1;
                self.order.insert(order, *id);
                let id = *id;
                self.tasks.insert(
                    id,
                    TaskFold {
                        order,
                        events: vec![event],
                        text: 0,
                        steps: 0,
                        dropped: 0,
                    },
                );
            }
            Event::TaskState { id, status, .. } => {
                let id = *id;
                let ended = status.is_final();
                if let Some(task) = self.tasks.get_mut(&id) {
                    // States are a handful per attempt; attempts are bounded by the retries.
                    task.events.push(event);
                    if ended {
                        self.pending.retain(|_, e| e.execution() != Some(id));
                        self.ended.push_back(id);
                        while self.ended.len() > MAX_ENDED {
                            if let Some(old) = self.ended.pop_front()
                                && let Some(gone) = self.tasks.remove(&old)
                            {
                                self.order.remove(&gone.order);
                            }
                        }
                    }
                }
            }
            Event::OutputDelta { id, text } => {
                if let Some(task) = self.tasks.get_mut(id) {
                    task.push_text(*id, text);
                }
            }
            Event::ExecutionFinished { id, .. } => {
                if let Some(task) = self.tasks.get_mut(id) {
                    task.events.push(event);
                }
            }
            Event::AgentStep { id, .. } | Event::ToolInvoked { id, .. } => {
                if let Some(task) = self.tasks.get_mut(id)
                    && task.steps < MAX_STEPS
                {
                    task.steps += 1;
                    task.events.push(event);
                }
            }
            Event::AuditRecorded { .. } => keep(&mut self.audit, event, MAX_AUDIT),
            Event::SafetyViolation { .. } => keep(&mut self.violations, event, MAX_VIOLATIONS),
            Event::ConfirmationRequested { request, .. } => {
                self.pending.insert(*request, event);
            }
            Event::ConfirmationAnswered { request, .. } => {
                self.pending.remove(request);
            }
            Event::AuditVerified { .. } => self.verified = Some(event),
            Event::AuditCheckpoint { .. } => self.checkpoint = Some(event),
            Event::BackendChanged { .. } => self.backend = Some(event),
            Event::LinkChanged { .. } => self.link = Some(event),
            Event::McpServer { server, .. } => {
                // Only configured servers publish, so the names are bounded.
                self.mcp.insert(server.clone(), event);
            }
        }
    }

    /// The events that rebuild a view folded from nothing: the backend and link, the audit
    /// trail's recent entries and state, every kept task's events in order (its answer joined,
    /// and said where it was cut), the violations, then the questions still open.
    fn snapshot(&self) -> Vec<Event> {
        let mut out = Vec::new();
        out.extend(self.backend.iter().cloned());
        out.extend(self.link.iter().cloned());
        out.extend(self.mcp.values().cloned());
        out.extend(self.audit.iter().cloned());
        out.extend(self.verified.iter().cloned());
        out.extend(self.checkpoint.iter().cloned());
        for id in self.order.values() {
            let Some(task) = self.tasks.get(id) else {
                continue;
            };
            out.extend(task.events.iter().cloned());
            if task.dropped > 0 {
                out.push(Event::OutputDelta {
                    id: *id,
                    text: format!(
                        "\n[… {} more characters: the runtime keeps the first {} KiB of an \
                         answer for consoles that attach later]\n",
                        task.dropped,
                        MAX_OUTPUT / 1024
                    ),
                });
            }
        }
        out.extend(self.violations.iter().cloned());
        out.extend(self.pending.values().cloned());
        out
    }
}

#[cfg(test)]
mod tests;
