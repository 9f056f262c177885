//! Bounds on numbers that come from outside: turning a count of seconds from a file, a header
//! or a computation into a [`Duration`] without a panic, and the ceiling on any wait the
//! network can ask for.
//!
//! `Duration::from_secs_f64` panics on a negative, non-finite or overflowing value and
//! `Instant + Duration` panics past the end of the clock; every such conversion in Veyra goes
//! through [`secs_f64`] or [`deadline`] instead. Ranges of the configuration's own numbers are
//! documented and checked in `config::VeyraConfig::validate`.
//!
//! [`Backoff`] is the one retry schedule: the scheduler and the HTTP client both ask it, each
//! with its own random source (the scheduler a seeded one, so its schedule replays).

use std::time::Duration;

/// Longest single wait Veyra schedules (a simulated light-time leg, a blackout, a timeout):
/// ten years. Anything longer is clamped to it, which is as good as for ever and cannot overflow
/// a clock.
pub const LONGEST_WAIT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// `secs` seconds as a [`Duration`]: negative and NaN become zero, anything above
/// [`LONGEST_WAIT`] (infinity included) becomes [`LONGEST_WAIT`].
pub fn secs_f64(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    if secs >= LONGEST_WAIT.as_secs_f64() {
        return LONGEST_WAIT;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(LONGEST_WAIT)
}

/// `now + wait`, or [`LONGEST_WAIT`] from now when that would not fit the clock.
pub fn deadline(now: tokio::time::Instant, wait: Duration) -> tokio::time::Instant {
    now.checked_add(wait.min(LONGEST_WAIT))
        .or_else(|| now.checked_add(LONGEST_WAIT))
        .unwrap_or(now)
}

/// Exponential backoff with jitter: the wait before a retry doubles from `first` up to `max`;
/// with `jitter`, a wait is drawn uniformly between half of that and all of it (whole
/// milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait before the first retry.
    pub first: Duration,
    /// Ceiling on any wait.
    pub max: Duration,
    /// Whether to spread waits over the upper half of their range.
    pub jitter: bool,
}

impl Backoff {
    /// The wait before retry number `retry` (0 for the first retry), drawing from `rng`.
    pub fn delay<R: rand::Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        use rand::RngExt;
        let full = self
            .first
            .saturating_mul(1u32 << retry.min(31))
            .min(self.max);
        if !self.jitter || full.is_zero() {
            return full;
        }
        let half = full / 2;
        let extra = rng.random_range(0..=millis(full - half));
        half + Duration::from_millis(extra)
    }
}

/// Whole milliseconds of `d`, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_to_its_ceiling_and_jitters_in_the_upper_half() {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(7);
        let plain = Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(60),
            jitter: false,
        };
        assert_eq!(plain.delay(0, &mut rng), Duration::from_millis(500));
        assert_eq!(plain.delay(3, &mut rng), Duration::from_secs(4));
        assert_eq!(plain.delay(40, &mut rng), Duration::from_secs(60));
        let jittered = Backoff {
            jitter: true,
            ..plain
        };
        for retry in 0..20 {
            let full = plain.delay(retry, &mut rng);
            let wait = jittered.delay(retry, &mut rng);
            assert!(
                wait >= full / 2 && wait <= full,
                "{retry}: {wait:?} of {full:?}"
            );
        }
    }

    #[test]
    fn hostile_seconds_never_panic() {
        assert_eq!(secs_f64(-1.0), Duration::ZERO);
        assert_eq!(secs_f64(f64::NAN), Duration::ZERO);
        assert_eq!(secs_f64(f64::INFINITY), LONGEST_WAIT);
        assert_eq!(secs_f64(1e20), LONGEST_WAIT);
        assert_eq!(secs_f64(1e300), LONGEST_WAIT);
        assert_eq!(secs_f64(1.5), Duration::from_millis(1500));
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_saturate() {
        let now = tokio::time::Instant::now();
        assert_eq!(deadline(now, Duration::MAX), now + LONGEST_WAIT);
        assert_eq!(
            deadline(now, Duration::from_secs(3)),
            now + Duration::from_secs(3)
        );
    }
}
