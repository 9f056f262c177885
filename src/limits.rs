//! Bounds on numbers that come from outside: turning a count of seconds from a file, a header
//! or a computation into a [`Duration`] without a panic, and the ceiling on any wait the
//! network can ask for.
//!
//! `Duration::from_secs_f64` panics on a negative, non-finite or overflowing value and
//! `Instant + Duration` panics past the end of the clock; every such conversion in Veyra goes
//! through [`secs_f64`] or [`deadline`] instead. Ranges of the configuration's own numbers are
//! documented and checked in `config::VeyraConfig::validate`.

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

#[cfg(test)]
mod tests {
    use super::*;

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
