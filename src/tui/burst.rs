//! How the loop takes what the core and a benchmark run send: whatever is already waiting is
//! folded into the view in batches, and a batch ends at the time the next frame is due
//! ([`super::frame::FrameScheduler::fold_until`]) or after [`MAX_BATCH`] items, whichever comes
//! first. A run committing thousands of results a second then never holds a frame back: the
//! loop draws what it folded so far, then goes on with the rest. Nothing is dropped: what a
//! batch leaves stays in its channel for the next.

use chrono::{DateTime, Utc};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::app::{App, BenchUpdate};
use crate::events::Event;
use crate::service::Inbound;

/// Where the loop's events come from: this process's own bus, or a runtime it attached to.
pub(super) enum Feed {
    /// The core's bus (this process hosts the runtime).
    Bus(broadcast::Receiver<Event>),
    /// A runtime's session: its snapshot, then live events.
    Remote(mpsc::Receiver<Inbound>),
}

/// One thing a [`Feed`] gives.
#[derive(Debug)]
pub(super) enum Item {
    /// An event.
    Event(Event),
    /// The bus dropped this many events for this console.
    Missed(u64),
    /// The runtime is sending a fresh snapshot; this many events were missed.
    Resync(u64),
    /// News of the runtime's benchmark run.
    Bench(crate::service::bench::BenchNews),
    /// The snapshot is complete.
    Live,
    /// The fleet's workers now.
    Fleet(Vec<crate::service::protocol::FleetWorker>),
    /// Nothing more will come; why, when a runtime said.
    Closed(Option<String>),
}

impl Feed {
    /// The next item, waiting for it.
    pub(super) async fn recv(&mut self) -> Item {
        match self {
            Feed::Bus(rx) => match rx.recv().await {
                Ok(event) => Item::Event(event),
                Err(RecvError::Lagged(n)) => Item::Missed(n),
                Err(RecvError::Closed) => Item::Closed(None),
            },
            Feed::Remote(rx) => match rx.recv().await {
                Some(inbound) => Item::from(inbound),
                None => Item::Closed(Some("the session ended".into())),
            },
        }
    }

    /// The next item if one is waiting.
    fn try_recv(&mut self) -> Option<Item> {
        match self {
            Feed::Bus(rx) => match rx.try_recv() {
                Ok(event) => Some(Item::Event(event)),
                Err(TryRecvError::Lagged(n)) => Some(Item::Missed(n)),
                // Empty, or closed: the next `recv` says so.
                Err(TryRecvError::Empty | TryRecvError::Closed) => None,
            },
            Feed::Remote(rx) => rx.try_recv().ok().map(Item::from),
        }
    }
}

impl From<Inbound> for Item {
    fn from(inbound: Inbound) -> Self {
        match inbound {
            Inbound::Event(event) => Item::Event(event),
            Inbound::Resync { missed, .. } => Item::Resync(missed),
            Inbound::Bench(news) => Item::Bench(news),
            Inbound::Live => Item::Live,
            Inbound::Fleet(workers) => Item::Fleet(workers),
            Inbound::Closed(reason) => Item::Closed(Some(reason)),
        }
    }
}

/// Most items one batch folds, whatever the clock says (a paused clock in tests never reaches
/// the deadline). A bus event is folded in about a microsecond, so a batch is ~1 ms of work.
pub(super) const MAX_BATCH: usize = 1024;

/// What one batch of bus events did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Batch {
    /// Events taken off the bus, the missed ones (a lag) counted.
    pub taken: u64,
    /// Every event was streamed text (drawn at the stream period, not the frame rate).
    pub only_text: bool,
    /// Characters of streamed text in the batch.
    pub text_chars: usize,
    /// The batch stopped at its deadline or its size with events possibly still waiting.
    pub cut: bool,
    /// The bus is gone: the core shut down.
    pub closed: bool,
    /// Why, when a runtime this console attached to said.
    pub gone: Option<String>,
    /// A benchmark run of the runtime's ended (its history is worth reading again).
    pub bench_ended: bool,
    /// When the batch's events that carry their time (a task's submission and state
    /// changes) were sent: what a frame's lag is measured from ([`super::FrameDrawn`]).
    pub sent: Sent,
}

/// The send times of the first and the last event among some that carry theirs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Sent {
    /// The first such event's.
    pub first: Option<DateTime<Utc>>,
    /// The last such event's.
    pub last: Option<DateTime<Utc>>,
}

impl Sent {
    /// These, then `later`.
    pub fn then(self, later: Sent) -> Sent {
        Sent {
            first: self.first.or(later.first),
            last: later.last.or(self.last),
        }
    }
}

/// Folds `first` (what the loop's `recv` gave) and then what is already waiting on `events`,
/// until the feed is empty, `until` passes or `max` items were folded.
pub(super) fn fold_events(
    app: &mut App,
    events: &mut Feed,
    first: Item,
    until: Instant,
    max: usize,
) -> Batch {
    let mut batch = Batch {
        taken: 0,
        only_text: true,
        text_chars: 0,
        cut: false,
        closed: false,
        gone: None,
        bench_ended: false,
        sent: Sent::default(),
    };
    let mut next = Some(first);
    let mut folded = 0usize;
    while let Some(item) = next {
        match item {
            Item::Event(event) => batch.fold(app, event),
            Item::Missed(n) => batch.missed(app, n),
            Item::Resync(missed) => {
                batch.only_text = false;
                app.resync(missed);
            }
            Item::Bench(news) => {
                batch.only_text = false;
                batch.bench_ended |= news.is_end();
                app.apply_bench(BenchUpdate::from(news));
            }
            Item::Live => batch.only_text = false,
            Item::Fleet(workers) => {
                batch.only_text = false;
                app.set_fleet(&workers);
            }
            Item::Closed(reason) => {
                batch.closed = true;
                batch.gone = reason;
                return batch;
            }
        }
        folded += 1;
        if folded >= max || Instant::now() >= until {
            batch.cut = true;
            break;
        }
        next = events.try_recv();
    }
    batch
}

impl Batch {
    fn fold(&mut self, app: &mut App, event: Event) {
        match &event {
            Event::OutputDelta { text, .. } => self.text_chars += text.chars().count(),
            _ => self.only_text = false,
        }
        self.taken += 1;
        if let Event::TaskSubmitted { at, .. } | Event::TaskState { at, .. } = &event {
            self.sent.first.get_or_insert(*at);
            self.sent.last = Some(*at);
        }
        app.apply(event);
    }

    fn missed(&mut self, app: &mut App, n: u64) {
        self.only_text = false;
        self.taken += n;
        app.missed(n);
    }
}

/// [`fold_events`] for a benchmark run's updates: `first`, then what is waiting, until the
/// channel is empty, `until` passes or `max` were folded. True when it stopped early.
pub(super) fn fold_bench(
    app: &mut App,
    updates: &mut mpsc::UnboundedReceiver<BenchUpdate>,
    first: BenchUpdate,
    until: Instant,
    max: usize,
) -> bool {
    app.apply_bench(first);
    let mut folded = 1usize;
    loop {
        if folded >= max || Instant::now() >= until {
            return true;
        }
        match updates.try_recv() {
            Ok(update) => app.apply_bench(update),
            Err(_) => return false,
        }
        folded += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::events::{EventBus, ExecutionId, TaskStatus};

    fn delta(n: usize) -> Event {
        Event::OutputDelta {
            id: ExecutionId::new(),
            text: format!("token {n} "),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_folded_in_bounded_batches_and_nothing_is_lost() {
        let bus = EventBus::new(100_000);
        let mut events = Feed::Bus(bus.subscribe());
        for n in 0..10_000 {
            bus.publish(delta(n));
        }
        let mut app = crate::tui::testing::app();
        let until = Instant::now() + Duration::from_secs(3600);
        let mut batches = Vec::new();
        while let Some(first) = events.try_recv() {
            let batch = fold_events(&mut app, &mut events, first, until, MAX_BATCH);
            assert!(batch.only_text && !batch.closed);
            batches.push(batch.taken);
        }
        // Ten full batches, then what was left: every event folded once.
        assert_eq!(batches.len(), 10);
        assert!(batches[..9].iter().all(|&n| n == MAX_BATCH as u64));
        assert_eq!(batches.iter().sum::<u64>(), 10_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_ends_when_the_next_frame_is_due() {
        let bus = EventBus::new(1000);
        let mut events = Feed::Bus(bus.subscribe());
        for n in 0..100 {
            bus.publish(delta(n));
        }
        let mut app = crate::tui::testing::app();
        let first = events.recv().await;
        // The frame is due now: the event in hand is folded, the rest waits for after it.
        let batch = fold_events(&mut app, &mut events, first, Instant::now(), MAX_BATCH);
        assert_eq!((batch.taken, batch.cut), (1, true));
        let Feed::Bus(rx) = &events else {
            unreachable!("a bus feed")
        };
        assert_eq!(rx.len(), 99, "the rest stays on the bus");
        // With time left, the rest is one batch that ends because the bus is empty.
        let first = events.recv().await;
        let until = Instant::now() + Duration::from_millis(33);
        let batch = fold_events(&mut app, &mut events, first, until, MAX_BATCH);
        assert_eq!((batch.taken, batch.cut), (99, false));
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_keeps_when_its_first_and_last_timed_events_were_sent() {
        let bus = EventBus::new(100);
        let mut events = Feed::Bus(bus.subscribe());
        let mut app = crate::tui::testing::app();
        let id = ExecutionId::new();
        let t0 = crate::tui::testing::now();
        let at = |s| t0 + chrono::Duration::seconds(s);
        bus.publish(delta(0));
        for (s, status) in [(1, TaskStatus::Queued), (2, TaskStatus::Running)] {
            bus.publish(Event::TaskState {
                id,
                status,
                attempt: 1,
                at: at(s),
            });
        }
        bus.publish(delta(1));
        let first = events.recv().await;
        let until = Instant::now() + Duration::from_millis(33);
        let batch = fold_events(&mut app, &mut events, first, until, MAX_BATCH);
        assert_eq!(batch.taken, 4);
        assert_eq!(batch.sent.first, Some(at(1)));
        assert_eq!(batch.sent.last, Some(at(2)));
        let later = Sent {
            first: Some(at(3)),
            last: Some(at(4)),
        };
        assert_eq!(
            batch.sent.then(later),
            Sent {
                first: Some(at(1)),
                last: Some(at(4))
            }
        );
        assert_eq!(batch.sent.then(Sent::default()), batch.sent);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lag_is_counted_and_is_not_streamed_text() {
        let bus = EventBus::new(4);
        let mut events = Feed::Bus(bus.subscribe());
        for n in 0..10 {
            bus.publish(delta(n));
        }
        let mut app = crate::tui::testing::app();
        let first = events.recv().await;
        let until = Instant::now() + Duration::from_millis(33);
        let batch = fold_events(&mut app, &mut events, first, until, MAX_BATCH);
        // Six missed and four folded: every event published is accounted for, in bus order.
        assert_eq!(batch.taken, 10);
        assert!(!batch.only_text);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_s_updates_are_folded_in_bounded_batches() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for _ in 0..100 {
            tx.send(BenchUpdate::History(Ok(Vec::new()))).unwrap();
        }
        let mut app = crate::tui::testing::app();
        let until = Instant::now() + Duration::from_secs(1);
        let first = rx.try_recv().unwrap();
        assert!(fold_bench(&mut app, &mut rx, first, until, 64));
        assert_eq!(rx.len(), 36);
        let first = rx.try_recv().unwrap();
        assert!(!fold_bench(&mut app, &mut rx, first, until, 64));
        assert!(rx.is_empty());
    }
}
