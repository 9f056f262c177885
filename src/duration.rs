//! The one short form of a duration for narrow columns: `1.2s`, `42s`, `3m05s`, `5h12m`,
//! `12d3h` — two units at most, tenths only under ten seconds.
//!
//! The console's countdowns (`T-3m05s`), elapsed times, ETAs and the status bar's one-way
//! light time all use it. It is written here rather than taken from `humantime`, whose
//! `format_duration` spells every unit with spaces and down to nanoseconds (`3m 5s 120ms`),
//! wider than the columns and unlike what the console has always shown.

use std::time::Duration;

/// `d` in at most two units, to the tenth of a second under ten seconds.
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    if s < 10 {
        format!("{}.{}s", s, d.subsec_millis() / 100)
    } else if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{}h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// A delay that may be well under a second (Earth's link, 50–250 ms): milliseconds below a
/// second (`50ms`), [`short`] from a second up.
pub fn delay(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        short(d)
    }
}

/// A [`chrono::Duration`] cut to whole seconds (a negative one is zero): what a clock that
/// ticks once a second shows, `3.0s` rather than `3.4s`.
pub fn whole_seconds(d: chrono::Duration) -> Duration {
    Duration::from_secs(d.to_std().unwrap_or_default().as_secs())
}

/// A [`chrono::Duration`] (an elapsed time, an ETA) the same way; a negative one is `0.0s`.
pub fn short_signed(d: chrono::Duration) -> String {
    short(d.to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_two_units_at_most() {
        let ms = Duration::from_millis;
        assert_eq!(short(ms(0)), "0.0s");
        assert_eq!(short(ms(1_250)), "1.2s");
        assert_eq!(short(ms(9_999)), "9.9s");
        assert_eq!(short(ms(10_000)), "10s");
        assert_eq!(short(ms(42_900)), "42s");
        assert_eq!(short(ms(185_000)), "3m05s");
        assert_eq!(short(ms(960_000)), "16m00s");
        assert_eq!(short(ms(7_800_000)), "2h10m");
        assert_eq!(short(ms(18_720_000)), "5h12m");
        assert_eq!(short(ms(1_033_200_000)), "11d23h");
        assert_eq!(short_signed(chrono::Duration::milliseconds(-5)), "0.0s");
        assert_eq!(short_signed(chrono::Duration::seconds(21)), "21s");
        assert_eq!(
            short(whole_seconds(chrono::Duration::milliseconds(3_450))),
            "3.0s"
        );
        assert_eq!(
            whole_seconds(chrono::Duration::milliseconds(-5)),
            Duration::ZERO
        );
        assert_eq!(delay(ms(50)), "50ms");
        assert_eq!(delay(ms(999)), "999ms");
        assert_eq!(delay(ms(1_250)), "1.2s");
    }
}
