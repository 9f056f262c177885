//! The queue: five FIFO queues by priority, the record of every task ([`Entry`], in its
//! [`Phase`]), and the one choice of what runs next ([`State::pop_next`], with aging). Times are
//! [`Stamp`]s, milliseconds on the scheduler's own clock. The handle ([`super::handle`]) and the
//! attempt life ([`super::life`]) change this state under one lock; nothing here waits or spawns.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::api::{Payload, TaskId};
use super::slot::SlotGuard;
use crate::events::Priority;

/// Records of ended tasks kept for `task()` and for a clear "already finished" on cancel; older
/// ones are forgotten so a long session does not grow without bound.
pub const FINISHED_KEPT: usize = 10_000;

/// Where a task is in its life, as the queue records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for a slot (new, arrived over the link, or queued again for a retry).
    Queued,
    /// On its way over the simulated link (blackout, uplink); no slot held.
    Travelling,
    /// Its answer is on the way back (downlink); no slot held.
    Returning,
    /// Its handler is running; it holds a slot except while it waits on the audit trail
    /// ([`super::slot::off_slot`]).
    Active,
    /// Waiting out a retry backoff; no slot held.
    Delayed,
    Succeeded,
    Failed,
    Cancelled,
}

/// The record of one task, from submit until it is forgotten.
#[derive(Debug)]
pub(super) struct Entry {
    /// Index into [`State::kinds`].
    pub(super) kind: u16,
    pub(super) priority: Priority,
    /// Dropped (`None`) once the task has ended.
    pub(super) payload: Option<Payload>,
    pub(super) attempts: u32,
    /// Never crosses the link ([`super::TaskSpec::local`]).
    pub(super) local: bool,
    pub(super) phase: Phase,
    pub(super) cancel: Option<CancellationToken>,
    /// Set while the task waits in a queue for a slot: where [`State::pop_next`]'s choice is
    /// sent. A queue entry whose task has none is stale and skipped.
    pub(super) grant: Option<oneshot::Sender<SlotGuard>>,
    /// Times as [`Stamp`]s: 8 bytes each, so a million queued tasks stay small.
    pub(super) created: Stamp,
    pub(super) started: Option<Stamp>,
    pub(super) finished: Option<Stamp>,
}

/// Milliseconds since the scheduler's epoch, plus one (so it is never zero).
pub(super) type Stamp = std::num::NonZeroU64;

impl Entry {
    pub(super) fn finish(&mut self, phase: Phase, at: Stamp) {
        self.phase = phase;
        self.cancel = None;
        self.grant = None;
        self.payload = None;
        self.finished = Some(at);
    }
}

impl Phase {
    pub(super) fn is_final(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Cancelled)
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Travelling => "travelling",
            Phase::Returning => "returning",
            Phase::Active => "active",
            Phase::Delayed => "waiting",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Cancelled => "cancelled",
        }
    }
}

/// A task in a queue, and since when it has waited there.
#[derive(Debug, Clone, Copy)]
pub(super) struct Waiting {
    pub(super) id: TaskId,
    pub(super) since: Stamp,
}

/// Everything the scheduler knows, behind its one lock.
#[derive(Debug)]
pub(super) struct State {
    pub(super) queues: [VecDeque<Waiting>; 5],
    /// Task kinds, interned: entries keep a 2-byte index instead of a string each.
    pub(super) kinds: Vec<Arc<str>>,
    /// Ended tasks, oldest first; records beyond [`FINISHED_KEPT`] are dropped.
    pub(super) finished: VecDeque<TaskId>,
    pub(super) tasks: HashMap<TaskId, Entry>,
    /// Tasks in [`Phase::Queued`].
    pub(super) queued: usize,
    /// Tasks on the link: [`Phase::Travelling`] or [`Phase::Returning`].
    pub(super) travelling: usize,
    /// Slots held.
    pub(super) running: usize,
    pub(super) accepting: bool,
    pub(super) rng: ChaCha8Rng,
}

impl State {
    /// The next task to get a slot, honouring priority, FIFO and aging. Skips stale entries
    /// (of tasks cancelled while queued: they are removed lazily).
    pub(super) fn pop_next(&mut self, now: Stamp, aging: Option<Duration>) -> Option<Waiting> {
        let aging_ms = aging.map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX).max(1));
        loop {
            let mut best: Option<(i64, Stamp, usize)> = None;
            for (level, queue) in self.queues.iter().enumerate() {
                let Some(head) = queue.front() else { continue };
                let boost = aging_ms.map_or(0, |a| {
                    let waited = now.get().saturating_sub(head.since.get());
                    i64::try_from(waited / a).unwrap_or(i64::MAX)
                });
                let effective = (level as i64).saturating_sub(boost);
                let candidate = (effective, head.since, level);
                if best.is_none_or(|b| (candidate.0, candidate.1) < (b.0, b.1)) {
                    best = Some(candidate);
                }
            }
            let (_, _, level) = best?;
            let waiting = self.queues[level].pop_front()?;
            if self
                .tasks
                .get(&waiting.id)
                .is_some_and(|e| e.grant.is_some())
            {
                return Some(waiting);
            }
        }
    }

    /// Moves `id` to `phase`, keeping the counts of queued and travelling tasks; `at` is
    /// the time of a final phase.
    pub(super) fn set_phase(&mut self, id: TaskId, phase: Phase, at: Stamp) {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return;
        };
        match entry.phase {
            Phase::Queued => self.queued -= 1,
            Phase::Travelling | Phase::Returning => self.travelling -= 1,
            _ => {}
        }
        match phase {
            Phase::Queued => self.queued += 1,
            Phase::Travelling | Phase::Returning => self.travelling += 1,
            _ => {}
        }
        if phase.is_final() {
            entry.finish(phase, at);
        } else {
            entry.phase = phase;
        }
    }

    /// Whether `id` is forgotten or has ended.
    pub(super) fn has_ended(&self, id: TaskId) -> bool {
        self.tasks.get(&id).is_none_or(|e| e.phase.is_final())
    }

    /// Remembers that `id` ended, forgetting the oldest ended task beyond [`FINISHED_KEPT`].
    pub(super) fn retire(&mut self, id: TaskId) {
        self.finished.push_back(id);
        while self.finished.len() > FINISHED_KEPT {
            if let Some(old) = self.finished.pop_front() {
                self.tasks.remove(&old);
            }
        }
    }

    /// The index of `kind` in the interned table, adding it if new.
    pub(super) fn intern(&mut self, kind: &str) -> u16 {
        if let Some(i) = self.kinds.iter().position(|k| &**k == kind) {
            return i as u16;
        }
        self.kinds.push(Arc::from(kind));
        u16::try_from(self.kinds.len() - 1).unwrap_or(u16::MAX)
    }

    pub(super) fn kind(&self, index: u16) -> Arc<str> {
        self.kinds
            .get(usize::from(index))
            .cloned()
            .unwrap_or_else(|| Arc::from("?"))
    }
}

/// The queue of a priority: 0 for CRITICAL up to 4 for BACKGROUND.
pub(super) fn level(p: Priority) -> usize {
    match p {
        Priority::Critical => 0,
        Priority::High => 1,
        Priority::Normal => 2,
        Priority::Low => 3,
        Priority::Background => 4,
    }
}
