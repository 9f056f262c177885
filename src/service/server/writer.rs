//! A client's writer: its responses and followed events first, then its snapshot and live
//! events, gathered into writes of up to [`WRITE_BATCH`] bytes; a client that lagged is
//! resynced from the journal before anything else is sent to it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::WRITE_STALL;
use crate::service::journal::{Journal, Subscription};
use crate::service::protocol::{self, ServerMessage};

/// Bytes one write to a client gathers from its queue.
const WRITE_BATCH: usize = 64 * 1024;

/// The beat events are written to clients on: one frame of a console drawing at its default 30
/// frames a second, so an attached console shows an event at most one frame later than the
/// hosting one (with up to [`BEAT_SHARE`] followers; see [`beat`]). A stream's one write (and
/// one wake-up) per token per client becomes one per beat, on a beat all writers share
/// (`next_beat`). With 16 followers the runtime's processor time per 1,000-token stream was
/// 1.47× one follower's with a write per token, 1.37× with a timer per writer, 1.16–1.23× on
/// one shared 30 ms beat, and 1.09× with the beat shared out ([`beat`]; `cargo bench --bench
/// service`).
const LINGER: std::time::Duration = std::time::Duration::from_millis(30);

/// Sends a client its queue: control lines (responses, a followed execution's events) and, with
/// a subscription, the snapshot and live events, resyncing it when it lagged. Ends when the
/// control queue closes (the connection ended) or the client stops reading.
pub(super) async fn writer(
    mut write: tokio::net::unix::OwnedWriteHalf,
    mut control: mpsc::Receiver<String>,
    mut subscription: Option<Subscription>,
    journal: Arc<Journal>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
    let mut first = true;
    loop {
        // A lagged (or new) subscriber gets its snapshot before anything else it is sent.
        if let Some(sub) = subscription.as_mut()
            && sub.lagged.load(Ordering::SeqCst)
        {
            let (missed, events) = journal.resync(sub.id, &mut sub.rx);
            let reason = if first { "attached" } else { "lagged" };
            // What was published before a new client's first snapshot is in it, not missed.
            let missed = if first { 0 } else { missed };
            if !first {
                tracing::info!(missed, "a client fell behind; resyncing it from a snapshot");
            }
            push(
                &mut buf,
                &protocol::line(&ServerMessage::Resync {
                    reason: reason.into(),
                    missed,
                }),
            );
            // The benchmark run first: its tasks among the events are then known as its own.
            let lines = (events.bench.into_iter())
                .map(|news| ServerMessage::Bench { news })
                .chain((events.events.into_iter()).map(|event| ServerMessage::Event { event }));
            for message in lines {
                push(&mut buf, &protocol::line(&message));
                if buf.len() >= WRITE_BATCH && !flush(&mut write, &mut buf).await {
                    return;
                }
            }
            push(&mut buf, &protocol::line(&ServerMessage::Live));
        }
        first = false;
        if !buf.is_empty() && !flush(&mut write, &mut buf).await {
            return;
        }
        // Wait for the next line from either queue; control first. The shared event lines are
        // copied only into the write buffer.
        let mut unsubscribed = false;
        // Events alone wait for the next beat ([`LINGER`]); anything from the control queue (a
        // response, a followed execution's event) goes at once.
        let mut linger = false;
        match subscription.as_mut() {
            Some(sub) => tokio::select! {
                biased;
                line = control.recv() => match line {
                    Some(line) => push(&mut buf, &line),
                    None => return,
                },
                line = sub.rx.recv() => match line {
                    Some(line) => {
                        push(&mut buf, &line);
                        linger = true;
                    }
                    // The journal forgot this client (the connection is ending): wait on the
                    // control queue alone rather than poll a closed one.
                    None => unsubscribed = true,
                },
            },
            None => match control.recv().await {
                Some(line) => push(&mut buf, &line),
                None => return,
            },
        }
        if unsubscribed {
            subscription = None;
        }
        if linger {
            let until = tokio::time::sleep_until(next_beat(journal.clients()));
            tokio::pin!(until);
            tokio::select! {
                () = &mut until => {}
                line = control.recv() => match line {
                    Some(line) => push(&mut buf, &line),
                    None => return,
                },
            }
        }
        // Then whatever else is waiting, up to a batch.
        while buf.len() < WRITE_BATCH {
            if let Ok(line) = control.try_recv() {
                push(&mut buf, &line);
                continue;
            }
            match subscription.as_mut().map(|s| s.rx.try_recv()) {
                Some(Ok(line)) => push(&mut buf, &line),
                _ => break,
            }
        }
    }
}

/// Clients with events that share one [`LINGER`] of writes: past them, the beat lengthens by a
/// [`LINGER`] per [`BEAT_SHARE`] clients more.
pub(super) const BEAT_SHARE: usize = 4;

/// How long events wait for their write with `clients` attached for events: one frame
/// ([`LINGER`]) for up to [`BEAT_SHARE`] of them, a frame more for each [`BEAT_SHARE`] beyond.
/// The runtime then writes to its followers about `BEAT_SHARE` times a frame whatever their
/// number — each write wakes the reader on the far end of a socket, the cost that grows with
/// every follower (`perf` of 16 followers of a stream: the kernel's socket wake-ups were the
/// largest share) — and a follower's events come at most a beat late: 30 ms with 4, 120 ms
/// with 16, 480 ms with the 64 a runtime serves at most.
pub(super) fn beat(clients: usize) -> std::time::Duration {
    let shares = u32::try_from(clients.div_ceil(BEAT_SHARE).max(1)).unwrap_or(u32::MAX);
    LINGER.saturating_mul(shares)
}

/// The next [`beat`] boundary of one clock every writer shares: the writers of all clients
/// wake on the same beat, one timer firing and one wake-up of the runtime's threads for all of
/// them, rather than one each at its own moment.
fn next_beat(clients: usize) -> tokio::time::Instant {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let now = tokio::time::Instant::now();
    let period = beat(clients).as_nanos().max(1);
    let since = now.saturating_duration_since(epoch).as_nanos();
    let next = (since / period + 1) * period;
    epoch + std::time::Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
}

fn push(buf: &mut Vec<u8>, line: &str) {
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
}

/// Writes `buf` and empties it; false when the client is gone or stopped reading. What the
/// socket takes at once is written without a timer (the usual case: a beat's lines fit its
/// buffer); only the rest waits, for at most [`WRITE_STALL`].
async fn flush(write: &mut tokio::net::unix::OwnedWriteHalf, buf: &mut Vec<u8>) -> bool {
    let mut written = 0;
    let mut ok = true;
    while written < buf.len() {
        match write.try_write(&buf[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => {
                ok = false;
                break;
            }
        }
    }
    if ok && written < buf.len() {
        ok = matches!(
            tokio::time::timeout(WRITE_STALL, write.write_all(&buf[written..])).await,
            Ok(Ok(()))
        );
    }
    buf.clear();
    if !ok {
        tracing::warn!(
            "a client stopped reading for {}s or went away; closing it",
            WRITE_STALL.as_secs()
        );
    }
    ok
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::beat;

    #[test]
    fn the_beat_is_a_frame_for_four_followers_and_a_frame_more_per_four_beyond() {
        let ms = |n| beat(n).as_millis();
        assert_eq!((ms(0), ms(1), ms(4)), (30, 30, 30));
        assert_eq!((ms(5), ms(8), ms(9)), (60, 60, 90));
        assert_eq!((ms(16), ms(64)), (120, 480));
        assert!(beat(usize::MAX) >= Duration::from_secs(1));
    }
}
