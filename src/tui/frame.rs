//! When the console draws: only after something changed, and never more often than the frame
//! period (`tui.frame_rate`), so a burst of events — a fast stream, a benchmark run's results
//! — is folded into one frame rather than drawn event by event.
//!
//! Streamed text alone is drawn at most every [`STREAM_PERIOD`], and once [`STREAM_FILL`]
//! characters wait (or the oldest has waited [`STREAM_WAIT`]): each frame costs a fixed
//! number of bytes besides its text (the cursor's way to the text and back to the prompt),
//! and over SSH fewer, fuller frames keep the bytes written close to the characters streamed
//! — at a fast model's pace ten frames a second, at thirty tokens a second about six. Anything
//! else (a key, a state change) still gets the next frame at the frame rate.

use std::time::Duration;

use tokio::time::Instant;

/// Decides when the next frame is drawn. The loop calls [`FrameScheduler::request`] when its
/// view changed, asks [`FrameScheduler::next`] how long it may sleep, and calls
/// [`FrameScheduler::drawn`] after drawing.
#[derive(Debug, Clone)]
pub struct FrameScheduler {
    period: Duration,
    stream_period: Duration,
    last: Option<Instant>,
    dirty: bool,
    /// Characters of streamed text not drawn yet (a piece of text counts one at least).
    streamed: usize,
}

/// The shortest time between two frames of streamed text alone.
pub const STREAM_PERIOD: Duration = Duration::from_millis(100);

/// Characters of streamed text that make a frame worth its fixed cost: a frame of text alone
/// waits for this many (after [`STREAM_PERIOD`]) or for [`STREAM_WAIT`].
pub const STREAM_FILL: usize = 24;

/// The longest a streamed piece of text waits to be drawn.
pub const STREAM_WAIT: Duration = Duration::from_millis(250);

/// The least time the loop folds waiting events for when a frame is already due: a backlog
/// shrinks between two frames, however late the loop is.
pub const MIN_FOLD: Duration = Duration::from_millis(1);

impl FrameScheduler {
    /// A scheduler drawing at most once per `period` (at least 1 ms); the first frame is due at
    /// once.
    pub fn new(period: Duration) -> Self {
        let period = period.max(Duration::from_millis(1));
        FrameScheduler {
            period,
            stream_period: period.max(STREAM_PERIOD),
            last: None,
            dirty: true,
            streamed: 0,
        }
    }

    /// Only streamed text changed, `chars` characters of it: a frame is wanted once enough
    /// text waits, or the oldest has waited [`STREAM_WAIT`].
    pub fn request_streamed(&mut self, chars: usize) {
        self.streamed = self.streamed.saturating_add(chars.max(1));
    }

    /// Something on screen changed: a frame is wanted.
    pub fn request(&mut self) {
        self.dirty = true;
    }

    /// As [`FrameScheduler::request`], when `changed`.
    pub fn request_if(&mut self, changed: bool) {
        self.dirty |= changed;
    }

    /// When the next frame is due: `None` while nothing changed; at or before `now` when it
    /// should be drawn now.
    pub fn next(&self) -> Option<Instant> {
        let wait = if self.dirty {
            self.period
        } else if self.streamed >= STREAM_FILL {
            self.stream_period
        } else if self.streamed > 0 {
            self.stream_period.max(STREAM_WAIT)
        } else {
            return None;
        };
        Some(match self.last {
            Some(last) => last + wait,
            // Never drawn: at once (any instant in the past will do; the loop compares).
            None => Instant::now(),
        })
    }

    /// True when a frame should be drawn at `now`.
    pub fn due(&self, now: Instant) -> bool {
        match (self.next(), self.last) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(at), Some(_)) => now >= at,
        }
    }

    /// Until when the loop may fold what is waiting before it draws: when the next frame is
    /// due if something changes now (the last frame plus the period), and at least
    /// [`MIN_FOLD`] after `now`. A burst folded up to then is drawn on time.
    pub fn fold_until(&self, now: Instant) -> Instant {
        let due = self.last.map_or(now, |last| last + self.period);
        due.max(now + MIN_FOLD)
    }

    /// A frame was drawn at `now`: nothing more is wanted until the next request.
    pub fn drawn(&mut self, now: Instant) {
        self.last = Some(now);
        self.dirty = false;
        self.streamed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_millis(33);

    #[tokio::test(start_paused = true)]
    async fn the_first_frame_is_due_at_once_then_only_after_a_change() {
        let mut frames = FrameScheduler::new(PERIOD);
        let t0 = Instant::now();
        assert!(frames.due(t0));
        frames.drawn(t0);
        assert!(!frames.due(t0 + Duration::from_secs(10)), "nothing changed");
        assert_eq!(frames.next(), None, "the loop may sleep until an event");
        frames.request_if(false);
        assert_eq!(frames.next(), None);
        frames.request_if(true);
        assert_eq!(frames.next(), Some(t0 + PERIOD));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_changes_is_one_frame_per_period() {
        let mut frames = FrameScheduler::new(PERIOD);
        let t0 = Instant::now();
        frames.drawn(t0);
        let mut drawn = 0;
        // 1,000 changes, one a millisecond, for a second: at most one frame per period.
        for ms in 1..=1000u64 {
            tokio::time::advance(Duration::from_millis(1)).await;
            frames.request();
            let now = Instant::now();
            assert_eq!(now, t0 + Duration::from_millis(ms));
            if frames.due(now) {
                frames.drawn(now);
                drawn += 1;
            }
        }
        assert_eq!(
            drawn,
            1000 / 33,
            "{drawn} frames in a second at 30 a second"
        );
        // The last change is not lost: a frame is still due within a period.
        let next = frames.next().expect("a frame is wanted");
        assert!(next <= Instant::now() + PERIOD);
    }

    #[tokio::test(start_paused = true)]
    async fn streamed_text_alone_waits_for_the_stream_period_and_a_key_does_not() {
        let mut frames = FrameScheduler::new(PERIOD);
        let t0 = Instant::now();
        frames.drawn(t0);
        let mut drawn = 0;
        // A piece of text every millisecond for a second: ten frames, not thirty.
        for _ in 0..1000 {
            tokio::time::advance(Duration::from_millis(1)).await;
            frames.request_streamed(3);
            let now = Instant::now();
            if frames.due(now) {
                frames.drawn(now);
                drawn += 1;
            }
        }
        assert_eq!(drawn, 10, "{drawn} frames in a second of streaming");
        // The tenth was drawn just now; a short piece waits for more, or the longest wait.
        frames.request_streamed(5);
        assert_eq!(
            frames.next(),
            Some(t0 + Duration::from_secs(1) + STREAM_WAIT)
        );
        // Enough text: the stream period.
        frames.request_streamed(STREAM_FILL);
        assert_eq!(
            frames.next(),
            Some(t0 + Duration::from_secs(1) + STREAM_PERIOD)
        );
        // A key in the middle of it is drawn at the frame rate.
        frames.request();
        assert_eq!(frames.next(), Some(t0 + Duration::from_secs(1) + PERIOD));
    }

    #[tokio::test(start_paused = true)]
    async fn at_thirty_tokens_a_second_frames_wait_for_a_line_s_worth_of_text() {
        let mut frames = FrameScheduler::new(PERIOD);
        let t0 = Instant::now();
        frames.drawn(t0);
        let (mut drawn, mut chars, mut per_frame) = (0, 0, Vec::new());
        // A token of five characters every 33 ms, for ten seconds.
        for _ in 0..300 {
            tokio::time::advance(Duration::from_millis(33)).await;
            frames.request_streamed(5);
            chars += 5;
            let now = Instant::now();
            if frames.due(now) {
                frames.drawn(now);
                drawn += 1;
                per_frame.push(chars);
                chars = 0;
            }
        }
        // Five tokens (165 ms) make a frame: six a second, not ten.
        assert_eq!(drawn, 60, "{drawn} frames in ten seconds");
        assert!(per_frame.iter().all(|&c| c >= STREAM_FILL), "{per_frame:?}");
        // A lone token waits no longer than the longest wait.
        tokio::time::advance(Duration::from_millis(33)).await;
        frames.request_streamed(5);
        assert_eq!(
            frames.next(),
            Some(Instant::now() - Duration::from_millis(33) + STREAM_WAIT)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn folding_stops_when_the_next_frame_would_be_due() {
        let mut frames = FrameScheduler::new(PERIOD);
        let t0 = Instant::now();
        // Never drawn: the first frame is due at once, so only the least slice is folded.
        assert_eq!(frames.fold_until(t0), t0 + MIN_FOLD);
        frames.drawn(t0);
        let t = t0 + Duration::from_millis(10);
        assert_eq!(frames.fold_until(t), t0 + PERIOD, "up to the next frame");
        // Late (the loop was busy): a slice, then the frame.
        let late = t0 + Duration::from_millis(50);
        assert_eq!(frames.fold_until(late), late + MIN_FOLD);
    }

    #[tokio::test(start_paused = true)]
    async fn sleeping_until_next_then_drawing_keeps_the_period() {
        let mut frames = FrameScheduler::new(PERIOD);
        frames.drawn(Instant::now());
        frames.request();
        let next = frames.next().expect("wanted");
        assert!(!frames.due(next - Duration::from_millis(1)));
        tokio::time::sleep_until(next).await;
        assert!(frames.due(Instant::now()));
        // A zero period still spaces frames by a millisecond.
        let mut fast = FrameScheduler::new(Duration::ZERO);
        let t = Instant::now();
        fast.drawn(t);
        fast.request();
        assert_eq!(fast.next(), Some(t + Duration::from_millis(1)));
    }
}
