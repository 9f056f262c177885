//! A worker's room for benchmark items: how many tasks it asks the queue for at low and
//! background priority, where a fanned-out run's chunks travel, so that the workers of a fleet
//! share a run's chunks rather than the first to ask taking them all (a worker holding more
//! chunks than it solves at once keeps them from another that would solve them now).
//!
//! A task's items are counted from its [`ITEMS_HEADER`] (set by the submitter) from when it is
//! taken until it ends. A round asks for as many tasks as the room left holds at the most a
//! chunk carries ([`MAX_CHUNK`]), whatever the size of the chunks it took last (a run's
//! chunks are of one size, but another run's, or an item asked for again, are not): rounds
//! follow each other while the room holds another chunk, so smaller chunks take more rounds,
//! and the room is never overrun by this version's chunks. The items that run are those the
//! task decodes to, whatever the header says: a header that lies skews only how the work is
//! shared, and the worker's item semaphore still bounds what solves at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::benchmarks::runner::MAX_CHUNK;
use crate::events::Priority;
use crate::fleet::wire::{ITEMS_HEADER, MAX_ITEMS};

/// See the module docs.
#[derive(Debug)]
pub(super) struct Room {
    /// Items it solves at once.
    size: usize,
    /// Items of the tasks it holds.
    held: Arc<AtomicUsize>,
}

impl Room {
    /// A room of `size` items (at least one).
    pub(super) fn new(size: usize) -> Room {
        Room {
            size: size.max(1),
            held: Arc::default(),
        }
    }

    /// Tasks of `priority` to ask for, with `free` more tasks to hold. Above low, `free`: an
    /// operator's prompt is never held back by a run. At low and background, as many as the
    /// room left holds (see the module docs), and none once it is full; one when it holds
    /// nothing, so a room smaller than a chunk still takes one.
    pub(super) fn want(&self, priority: Priority, free: usize) -> usize {
        if priority < Priority::Low {
            return free;
        }
        let held = self.held.load(Ordering::SeqCst);
        let fits = self.size.saturating_sub(held) / MAX_CHUNK;
        free.min(if held == 0 { fits.max(1) } else { fits })
    }

    /// The items of the task whose message has `headers`, held until the returned guard drops
    /// (when its task ends, however it ends).
    pub(super) fn hold(&self, headers: Option<&async_nats::HeaderMap>) -> Held {
        let items = items_of(headers);
        self.held.fetch_add(items, Ordering::SeqCst);
        Held {
            held: Arc::clone(&self.held),
            items,
        }
    }
}

/// Items a task's message says it carries: none without the header, at most [`MAX_ITEMS`],
/// and that many when the header is not a count (a task that says it carries items but not
/// how many is weighed as the largest).
fn items_of(headers: Option<&async_nats::HeaderMap>) -> usize {
    match headers.and_then(|h| h.get(ITEMS_HEADER)) {
        None => 0,
        Some(said) => said.as_str().parse::<u64>().map_or(MAX_ITEMS, |n| {
            usize::try_from(n).unwrap_or(MAX_ITEMS).min(MAX_ITEMS)
        }),
    }
}

/// A task's items, held in its worker's [`Room`] while it lives.
#[derive(Debug)]
pub(super) struct Held {
    held: Arc<AtomicUsize>,
    items: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.held.fetch_sub(self.items, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saying(items: &str) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(ITEMS_HEADER, items);
        headers
    }

    #[test]
    fn a_worker_takes_chunks_while_its_room_holds_another_and_prompts_always() {
        let room = Room::new(512);
        // Empty: as many chunks as the room holds.
        assert_eq!(room.want(Priority::Low, 64), 512 / MAX_CHUNK);
        assert_eq!(room.want(Priority::Background, 3), 3);
        // Fifteen chunks of 32 (480 items): room for one more; sixteen fill it.
        let mut chunks: Vec<Held> = (0..15).map(|_| room.hold(Some(&saying("32")))).collect();
        assert_eq!(room.want(Priority::Low, 64), 1);
        chunks.push(room.hold(Some(&saying("32"))));
        assert_eq!(room.want(Priority::Low, 64), 0);
        assert_eq!(room.want(Priority::Background, 64), 0);
        // Prompts above low go ahead whatever the run holds.
        for p in [Priority::Critical, Priority::High, Priority::Normal] {
            assert_eq!(room.want(p, 64), 64);
        }
        // Two chunks end (their tasks' guards drop, however the tasks ended): room for two.
        drop(chunks.split_off(14));
        assert_eq!(room.want(Priority::Low, 64), 2);
        drop(chunks);
        assert_eq!(room.want(Priority::Low, 64), 512 / MAX_CHUNK);
    }

    #[test]
    fn a_room_smaller_than_a_chunk_takes_one_at_a_time() {
        let room = Room::new(16);
        assert_eq!(room.want(Priority::Low, 64), 1);
        let one = room.hold(Some(&saying("32")));
        assert_eq!(room.want(Priority::Low, 64), 0);
        drop(one);
        assert_eq!(room.want(Priority::Low, 64), 1);
        // Nothing free, nothing asked for.
        assert_eq!(room.want(Priority::Low, 0), 0);
    }

    #[test]
    fn small_chunks_fill_a_room_over_rounds_and_mixed_sizes_never_overrun_it() {
        // An item to a chunk: each round takes what the room left holds at the largest
        // chunk, until it cannot hold another.
        let room = Room::new(100);
        let mut held = Vec::new();
        let mut rounds = 0;
        loop {
            let want = room.want(Priority::Low, 500);
            if want == 0 {
                break;
            }
            rounds += 1;
            held.extend((0..want).map(|_| room.hold(Some(&saying("1")))));
        }
        assert!(rounds > 1);
        assert!(
            (100 - MAX_CHUNK..=100).contains(&held.len()),
            "{}",
            held.len()
        );
        // A small task taken beside a large chunk does not open the room to many large ones.
        drop(held);
        let big = room.hold(Some(&saying("32")));
        let small = room.hold(Some(&saying("1")));
        let want = room.want(Priority::Low, 500);
        assert!(33 + want * MAX_CHUNK <= 100, "{want} more chunks");
        drop((big, small));
    }

    #[test]
    fn a_header_that_lies_or_is_missing_counts_within_bounds() {
        assert_eq!(items_of(None), 0);
        assert_eq!(items_of(Some(&async_nats::HeaderMap::new())), 0);
        // Said, but not as a count: weighed as the largest.
        assert_eq!(items_of(Some(&saying("not a number"))), MAX_ITEMS);
        assert_eq!(items_of(Some(&saying("-3"))), MAX_ITEMS);
        assert_eq!(
            items_of(Some(&saying("99999999999999999999999"))),
            MAX_ITEMS
        );
        assert_eq!(items_of(Some(&saying("100000"))), MAX_ITEMS);
        assert_eq!(items_of(Some(&saying("7"))), 7);
        // Plain tasks hold no items: a worker full of them still takes chunks.
        let room = Room::new(512);
        let _plain: Vec<Held> = (0..64).map(|_| room.hold(None)).collect();
        assert_eq!(room.want(Priority::Low, 8), 8);
    }
}
