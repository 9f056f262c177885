//! Runtime figures: one ephemeris light-time computation (Earth–Mars geometry for a date).
//! Run: `cargo bench --bench runtime`.

use chrono::{TimeZone, Utc};
use veyra::ephemeris::{Body, planet_link};

fn main() {
    divan::main();
}

#[divan::bench]
fn mars_light_time() -> f64 {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
        .single()
        .expect("a valid date");
    planet_link(Body::Mars, divan::black_box(at))
        .expect("2026 is within the elements' validity")
        .light_seconds()
}
