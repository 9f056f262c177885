//! Test fixtures of the console, shared by its modules' tests: a console on the mock at a fixed
//! time, so views and snapshots never depend on the clock.

use chrono::{DateTime, TimeZone, Utc};

use super::app::{App, LinkView};
use super::keymap::KeyMap;

/// The time the console's tests play at: 2026-11-26 12:00 UTC.
pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

/// A console on the mock, no themes, at [`now`].
pub(crate) fn app() -> App {
    app_at(now())
}

/// A console on the mock, no themes, its link status taken and its clock at `at`.
pub(crate) fn app_at(at: DateTime<Utc>) -> App {
    let link = LinkView {
        backend: "mock".into(),
        model: "veyra-mock-1".into(),
        link: crate::events::LinkStatus {
            simulated: false,
            preset: "earth".into(),
            mode: "uniform".into(),
            one_way_ms: 150,
            one_way_min_ms: 50,
            one_way_max_ms: 250,
            sun_deg: None,
            conjunction: "clear".into(),
            time_scale: 1.0,
            sim_time: at,
            taken_at: at,
            blackout_ends: None,
        },
    };
    App::new(link, true, KeyMap::default(), Vec::new(), at)
}
