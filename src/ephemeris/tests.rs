//! Ephemeris checked against published figures; each case names its source.

use chrono::{Duration, TimeZone, Utc};

use super::*;

fn date(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

/// Mars's closest approach of 2003: 2003-08-27 09:51 UTC at 0.37272 au (55.76 million km),
/// the closest in about 60,000 years (NASA/JPL press release, August 2003). 0.3727 au is
/// 186 s, about 3.1 minutes of one-way light time.
#[test]
fn mars_closest_approach_2003_08_27() {
    let at = Utc.with_ymd_and_hms(2003, 8, 27, 9, 51, 0).unwrap();
    let g = planet_link(Body::Mars, at).unwrap();
    assert!((g.distance_au - 0.3727).abs() < 0.002, "{}", g.distance_au);
    let minutes = g.light_seconds() / 60.0;
    assert!((minutes - 3.1).abs() < 0.05, "{minutes}");
    // Opposition: Mars opposite the Sun in the sky.
    assert!(g.elongation_deg > 170.0, "{}", g.elongation_deg);
}

/// Mars solar conjunction of 9 January 2026 (NASA Mars Exploration Program, "Mars Solar
/// Conjunction" schedule; Mars passes within about 1° of the Sun as seen from Earth).
#[test]
fn mars_solar_conjunction_2026_01_09() {
    let g = planet_link(Body::Mars, date(2026, 1, 9)).unwrap();
    assert!(g.elongation_deg < 2.0, "{}", g.elongation_deg);
    // Far side of the Sun: about 2.4 au, over 20 light-minutes.
    assert!(g.distance_au > 2.3, "{}", g.distance_au);
    // A month earlier the link was clear of the 5° "reduced" zone.
    let before = planet_link(Body::Mars, date(2025, 11, 1)).unwrap();
    assert!(before.elongation_deg > 5.0, "{}", before.elongation_deg);
}

/// Earth–Mars one-way light time stays within 3.1–22.3 minutes over 2000–2050 (the textbook
/// range, e.g. ESA "Mars Express: communicating with Earth": 3 to 22 minutes).
#[test]
fn mars_light_time_range_2000_to_2050() {
    let mut at = date(2000, 1, 1);
    let end = date(2050, 12, 31);
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    while at <= end {
        let minutes = planet_link(Body::Mars, at).unwrap().light_seconds() / 60.0;
        lo = lo.min(minutes);
        hi = hi.max(minutes);
        at += Duration::days(2);
    }
    assert!((3.0..3.2).contains(&lo), "shortest {lo}");
    assert!((22.0..22.5).contains(&hi), "longest {hi}");
}

/// Earth–Jupiter distance ranges over about 3.95–6.45 au (NASA Jupiter fact sheet: 588–968
/// million km), 33–54 light-minutes.
#[test]
fn jupiter_distance_range() {
    let mut at = date(2020, 1, 1);
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    while at <= date(2032, 1, 1) {
        let g = planet_link(Body::Jupiter, at).unwrap();
        lo = lo.min(g.distance_km());
        hi = hi.max(g.distance_km());
        at += Duration::days(3);
    }
    assert!((580e6..600e6).contains(&lo), "{lo}");
    assert!((955e6..975e6).contains(&hi), "{hi}");
}

/// The Moon's distance ranges over about 356,400–406,700 km (perigee/apogee extremes, Meeus
/// ch. 50), 1.19–1.36 light-seconds.
#[test]
fn moon_light_time_range() {
    let mut at = date(2026, 1, 1);
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    while at <= date(2027, 12, 31) {
        let s = moon_distance_km(at).unwrap() / C_KM_S;
        lo = lo.min(s);
        hi = hi.max(s);
        at += Duration::hours(6);
    }
    assert!((1.18..1.21).contains(&lo), "{lo}");
    assert!((1.34..1.37).contains(&hi), "{hi}");
}

#[test]
fn dates_outside_the_elements_validity_are_refused() {
    let err = planet_link(Body::Mars, date(2051, 1, 1)).unwrap_err();
    assert_eq!((err.first, err.last), (1800, 2050));
    assert!(err.to_string().contains("1800–2050"));
    assert!(planet_link(Body::Mars, date(1799, 12, 31)).is_err());
    assert!(moon_distance_km(date(2100, 1, 1)).is_err());
    assert!(planet_link(Body::Mars, date(1800, 1, 1)).is_ok());
}

#[test]
fn keplers_equation_is_solved() {
    for e in [0.0, 0.0167, 0.0934, 0.5, 0.9] {
        for i in -18..=18 {
            let m = f64::from(i) * 10f64.to_radians();
            let ecc = eccentric_anomaly(m, e);
            assert!((ecc - e * ecc.sin() - m).abs() < 1e-10, "e={e} m={m}");
        }
    }
}
