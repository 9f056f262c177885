//! Slots: what `runtime.max_concurrent` counts. A slot is held only while a task is at the
//! backend — running its handler. A task on the link (uplink, blackout, downlink), waiting out
//! a retry backoff, or waiting for the audit trail to make an entry durable ([`off_slot`])
//! holds none, so a Mars conjunction never stalls Earth work and a run bound by commit latency
//! keeps every slot busy.
//!
//! A slot is a [`SlotGuard`]: made by the scheduler's `grant` under its lock, handed to
//! the waiting task through a oneshot channel, and given back when it is dropped — whether
//! the task finished, failed, panicked or was cancelled while the grant was in flight.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::api::TaskId;

/// One slot, held by one task. Dropping it frees the slot and grants it to the next waiter.
pub(super) struct SlotGuard {
    slots: Arc<dyn Slots>,
    /// False once the slot was given back by hand (a grant nobody received).
    armed: bool,
}

impl std::fmt::Debug for SlotGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotGuard")
            .field("armed", &self.armed)
            .finish()
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if self.armed {
            self.slots.give_back();
        }
    }
}

/// The receiving end of a task waiting for a slot.
pub(super) type Grant = oneshot::Receiver<SlotGuard>;

/// What a slot needs of the scheduler that grants it ([`super::handle::Inner`]).
pub(super) trait Slots: Send + Sync {
    /// Takes one slot back and grants what is free.
    fn give_back(&self);
    /// Queues `id`, which is mid-run, at the front of its priority to get a slot again.
    fn wait_again(&self, id: TaskId) -> Grant;
}

impl SlotGuard {
    /// A slot just counted as held.
    pub(super) fn new(slots: Arc<dyn Slots>) -> Self {
        SlotGuard { slots, armed: true }
    }

    /// Gives the slot back by hand: for a grant nobody received, under the lock that
    /// dropping it would take.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

tokio::task_local! {
    /// The slot of the task whose handler is running on this tokio task.
    static HELD: Arc<Held>;
}

/// A running handler's slot, which [`off_slot`] gives back and takes again.
pub(super) struct Held {
    slots: Arc<dyn Slots>,
    id: TaskId,
    cancel: CancellationToken,
    guard: Mutex<Option<SlotGuard>>,
}

impl Held {
    pub(super) fn new(
        slots: Arc<dyn Slots>,
        id: TaskId,
        cancel: CancellationToken,
        guard: SlotGuard,
    ) -> Arc<Self> {
        Arc::new(Held {
            slots,
            id,
            cancel,
            guard: Mutex::new(Some(guard)),
        })
    }

    /// Gives the slot back (when held).
    pub(super) fn release(&self) -> bool {
        let guard = match self.guard.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        guard.is_some()
    }

    fn keep(&self, guard: SlotGuard) {
        match self.guard.lock() {
            Ok(mut g) => *g = Some(guard),
            Err(poisoned) => *poisoned.into_inner() = Some(guard),
        }
    }

    /// Runs `handler` with this slot reachable by [`off_slot`].
    pub(super) async fn scope<F: Future>(self: Arc<Self>, handler: F) -> F::Output {
        HELD.scope(self, handler).await
    }
}

/// Awaits `wait` without holding the calling task's scheduler slot: the slot goes to the next
/// waiting task, and is taken again — ahead of tasks of the same priority that have not
/// started — before this returns. For waits that are not work at the backend (the audit
/// trail making an entry durable). Outside a scheduled task's handler it is plain `wait.await`.
///
/// Hold no lock across it that a running task may wait for: taking the slot back waits for a
/// running task to give one up. If the task is cancelled while it waits for the slot, this
/// returns without one, so the handler can wind down (record its end) at once.
pub async fn off_slot<F: Future>(wait: F) -> F::Output {
    let Ok(held) = HELD.try_with(Arc::clone) else {
        return wait.await;
    };
    if !held.release() {
        return wait.await;
    }
    let out = wait.await;
    let grant = held.slots.wait_again(held.id);
    tokio::select! {
        got = grant => {
            if let Ok(guard) = got {
                held.keep(guard);
            }
        }
        () = held.cancel.cancelled() => {}
    }
    out
}
