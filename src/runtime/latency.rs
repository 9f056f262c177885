//! Light time of the simulated link, per preset, for a date: what `veyra latency` prints and
//! what the scheduler's uplink/downlink waits are drawn from.
//!
//! | preset | one-way delay |
//! |---|---|
//! | `earth` | terrestrial network, 50–250 ms |
//! | `lunar` | Earth–Moon light time for the date (1.19–1.36 s) |
//! | `mars` | Earth–Mars light time for the date (3.1–22.3 min), with solar conjunction |
//! | `deep-space` | light time to `latency.deep_space_au` (default 173 au: ~24 h, Voyager 1 in 2026) |
//! | `custom` | `latency.custom.min_ms`–`max_ms` |

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::config::{LatencyConfig, LatencyMode, LatencyPreset};
use crate::ephemeris::{self, AU_KM, Body, C_KM_S, OutOfRange};
use crate::events::LinkStatus;

/// Sun–Earth–Mars angle under which the link is in blackout, degrees.
pub const BLACKOUT_DEG: f64 = 2.0;
/// Sun–Earth–Mars angle under which the link is degraded, degrees.
pub const REDUCED_DEG: f64 = 5.0;
/// Terrestrial network one-way delay range.
pub const EARTH_RANGE_MS: (u64, u64) = (50, 250);

/// Whether the Sun is in the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conjunction {
    /// The Sun is well clear of the line of sight.
    Clear,
    /// Within 5° of the Sun: the link works with reduced quality.
    Reduced,
    /// Within 2° of the Sun: no communication.
    Blackout,
}

impl Conjunction {
    /// State for a Sun–Earth–planet angle.
    pub fn from_elongation(deg: f64) -> Conjunction {
        if deg < BLACKOUT_DEG {
            Conjunction::Blackout
        } else if deg < REDUCED_DEG {
            Conjunction::Reduced
        } else {
            Conjunction::Clear
        }
    }
}

impl fmt::Display for Conjunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conjunction::Clear => "clear",
            Conjunction::Reduced => "reduced (within 5° of the Sun)",
            Conjunction::Blackout => "BLACKOUT (solar conjunction, within 2° of the Sun)",
        })
    }
}

/// The link for one preset at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkReport {
    /// Preset name.
    pub preset: String,
    /// Simulated moment.
    pub at: DateTime<Utc>,
    /// Shortest one-way delay of the preset's range.
    pub one_way_min: Duration,
    /// Longest one-way delay of the preset's range.
    pub one_way_max: Duration,
    /// The one-way light time for the date, where the preset has a geometry.
    pub one_way: Duration,
    /// Distance, km, where the preset has a geometry.
    pub distance_km: Option<f64>,
    /// Sun–Earth–planet angle, degrees (Mars only).
    pub elongation_deg: Option<f64>,
    /// Conjunction state (Mars only; others are always clear).
    pub conjunction: Conjunction,
}

impl LinkReport {
    /// Uplink plus downlink, without processing time.
    pub fn round_trip(&self) -> Duration {
        self.one_way * 2
    }

    /// Distance in astronomical units.
    pub fn distance_au(&self) -> Option<f64> {
        self.distance_km.map(|km| km / AU_KM)
    }
}

fn light(km: f64) -> Duration {
    crate::limits::secs_f64(km / C_KM_S)
}

/// The link of `preset` at `at`, using `config` for the deep-space distance and custom range.
pub fn link_report(
    preset: LatencyPreset,
    at: DateTime<Utc>,
    config: &LatencyConfig,
) -> Result<LinkReport, OutOfRange> {
    let report =
        |one_way_min, one_way_max, one_way, distance_km, elongation_deg: Option<f64>| LinkReport {
            preset: preset.name().to_string(),
            at,
            one_way_min,
            one_way_max,
            one_way,
            distance_km,
            elongation_deg,
            conjunction: elongation_deg.map_or(Conjunction::Clear, Conjunction::from_elongation),
        };
    Ok(match preset {
        LatencyPreset::Earth => {
            let (lo, hi) = EARTH_RANGE_MS;
            report(
                Duration::from_millis(lo),
                Duration::from_millis(hi),
                Duration::from_millis((lo + hi) / 2),
                None,
                None,
            )
        }
        LatencyPreset::Lunar => {
            let km = ephemeris::moon_distance_km(at)?;
            report(
                light(356_400.0),
                light(406_700.0),
                light(km),
                Some(km),
                None,
            )
        }
        LatencyPreset::Mars => {
            let g = ephemeris::planet_link(Body::Mars, at)?;
            report(
                Duration::from_millis(186_000),
                Duration::from_millis(1_338_000),
                crate::limits::secs_f64(g.light_seconds()),
                Some(g.distance_km()),
                Some(g.elongation_deg),
            )
        }
        LatencyPreset::DeepSpace => {
            let km = config.deep_space_au * AU_KM;
            report(light(km), light(km), light(km), Some(km), None)
        }
        LatencyPreset::Custom => {
            let (lo, hi) = (config.custom.min_ms, config.custom.max_ms);
            report(
                Duration::from_millis(lo),
                Duration::from_millis(hi),
                Duration::from_millis(lo / 2 + hi / 2),
                None,
                None,
            )
        }
    })
}

/// Step used to search for the end of a blackout, simulated time.
const BLACKOUT_STEP: chrono::TimeDelta = chrono::TimeDelta::hours(6);
/// A blackout longer than this is reported as an error rather than waited out.
const BLACKOUT_LIMIT: chrono::TimeDelta = chrono::TimeDelta::days(120);

/// The live simulated link: a simulated clock running `time_scale` times faster than tokio's
/// clock from a start date, the current preset and mode, and a seeded generator for `uniform`
/// draws. Switching preset affects only draws made afterwards, i.e. tasks not yet sent.
#[derive(Debug)]
pub struct LinkSim {
    config: LatencyConfig,
    time_scale: f64,
    sim_start: DateTime<Utc>,
    real_start: tokio::time::Instant,
    state: Mutex<LinkState>,
    /// Whether tasks cross it (`latency.simulate`, `:sim on|off`). Off, the clock and the
    /// geometry go on (the status bar still tells the light time), but nothing waits on them.
    on: std::sync::atomic::AtomicBool,
    /// Signalled when the preset changes or the link is switched on or off: a task waiting
    /// out a blackout or a leg of light time looks again.
    changed: tokio::sync::Notify,
}

#[derive(Debug)]
struct LinkState {
    preset: LatencyPreset,
    mode: LatencyMode,
    rng: ChaCha8Rng,
}

impl LinkSim {
    /// A link per `config`, its simulated clock starting at `sim_start`, draws seeded by `seed`.
    pub fn new(config: &LatencyConfig, seed: u64, sim_start: DateTime<Utc>) -> Self {
        LinkSim {
            config: config.clone(),
            time_scale: config.time_scale,
            sim_start,
            real_start: tokio::time::Instant::now(),
            state: Mutex::new(LinkState {
                preset: config.preset,
                mode: config.mode,
                rng: ChaCha8Rng::seed_from_u64(seed),
            }),
            on: std::sync::atomic::AtomicBool::new(config.simulate),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Whether tasks cross the link now.
    pub fn is_on(&self) -> bool {
        self.on.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Switches the simulation on or off; returns whether it was on. Switched off, tasks on
    /// their way arrive at once (the wait is for a link no longer simulated); switched on,
    /// tasks sent from now on cross it.
    pub fn set_on(&self, on: bool) -> bool {
        let was = self.on.swap(on, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_waiters();
        was
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Simulated now.
    pub fn sim_now(&self) -> DateTime<Utc> {
        let real = self.real_start.elapsed().as_secs_f64() * self.time_scale;
        let delta = chrono::TimeDelta::milliseconds((real * 1000.0).min(1e15) as i64);
        self.sim_start + delta
    }

    /// Real time for a simulated duration (at most [`crate::limits::LONGEST_WAIT`]).
    pub fn to_real(&self, sim: Duration) -> Duration {
        crate::limits::secs_f64(sim.as_secs_f64() / self.time_scale)
    }

    /// The preset in force.
    pub fn preset(&self) -> LatencyPreset {
        self.lock().preset
    }

    /// Switches preset; returns the previous one. Tasks waiting out a blackout look again
    /// ([`LinkSim::changed`]).
    pub fn set_preset(&self, preset: LatencyPreset) -> LatencyPreset {
        let previous = std::mem::replace(&mut self.lock().preset, preset);
        self.changed.notify_waiters();
        previous
    }

    /// Resolves at the next preset switch or on/off switch (created before the check it
    /// guards, like any [`tokio::sync::Notify`] wait).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The report for the current preset at simulated now.
    pub fn report(&self) -> Result<LinkReport, OutOfRange> {
        link_report(self.preset(), self.sim_now(), &self.config)
    }

    /// One one-way delay (simulated time) for a task being sent now.
    pub fn draw_one_way(&self) -> Result<Duration, OutOfRange> {
        let (preset, mode) = {
            let st = self.lock();
            (st.preset, st.mode)
        };
        let report = link_report(preset, self.sim_now(), &self.config)?;
        let (lo, hi) = (report.one_way_min, report.one_way_max);
        Ok(match mode {
            LatencyMode::Fixed => lo + (hi - lo) / 2,
            LatencyMode::Ephemeris => report.one_way,
            LatencyMode::Uniform => {
                let span = u64::try_from((hi - lo).as_millis()).unwrap_or(u64::MAX);
                let extra = self.lock().rng.random_range(0..=span);
                lo + Duration::from_millis(extra)
            }
        })
    }

    /// Simulated time until a solar-conjunction blackout ends; `None` when the link is not in
    /// blackout. Only Mars in `ephemeris` mode has conjunctions.
    pub fn blackout_remaining(&self) -> Result<Option<Duration>, OutOfRange> {
        let (preset, mode) = {
            let st = self.lock();
            (st.preset, st.mode)
        };
        blackout_remaining_at(preset, mode, self.sim_now())
    }

    /// The link as the status bar shows it: the delay in use and the preset's range, the Sun
    /// angle, and in a blackout when the link reopens.
    pub fn status(&self) -> LinkStatus {
        let (preset, mode) = {
            let st = self.lock();
            (st.preset, st.mode)
        };
        let now = self.sim_now();
        let report = link_report(preset, now, &self.config);
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (one_way, range, sun_deg, conjunction) = match &report {
            Ok(r) => {
                let one_way = match mode {
                    LatencyMode::Ephemeris => r.one_way,
                    LatencyMode::Fixed | LatencyMode::Uniform => {
                        r.one_way_min + (r.one_way_max - r.one_way_min) / 2
                    }
                };
                let conjunction = if mode == LatencyMode::Ephemeris {
                    r.conjunction
                } else {
                    Conjunction::Clear
                };
                (
                    one_way,
                    (r.one_way_min, r.one_way_max),
                    r.elongation_deg,
                    conjunction,
                )
            }
            Err(_) => (
                Duration::ZERO,
                (Duration::ZERO, Duration::ZERO),
                None,
                Conjunction::Clear,
            ),
        };
        let blackout_ends = match conjunction {
            Conjunction::Blackout => blackout_remaining_at(preset, mode, now)
                .ok()
                .flatten()
                .and_then(|left| chrono::TimeDelta::from_std(left).ok())
                .map(|left| now + left),
            Conjunction::Clear | Conjunction::Reduced => None,
        };
        LinkStatus {
            simulated: self.is_on(),
            preset: preset.name().to_string(),
            mode: mode.to_string(),
            one_way_ms: ms(one_way),
            one_way_min_ms: ms(range.0),
            one_way_max_ms: ms(range.1),
            sun_deg,
            conjunction: match conjunction {
                Conjunction::Clear => "clear",
                Conjunction::Reduced => "reduced",
                Conjunction::Blackout => "blackout",
            }
            .to_string(),
            time_scale: self.time_scale,
            sim_time: now,
            taken_at: Utc::now(),
            blackout_ends,
        }
    }
}

/// Simulated time from `now` until the blackout of `preset` in `mode` ends; `None` when the
/// link is not in blackout. Only Mars in `ephemeris` mode has conjunctions. The end is found
/// in steps of [`BLACKOUT_STEP`], and a wait is at most [`BLACKOUT_LIMIT`].
fn blackout_remaining_at(
    preset: LatencyPreset,
    mode: LatencyMode,
    now: DateTime<Utc>,
) -> Result<Option<Duration>, OutOfRange> {
    if preset != LatencyPreset::Mars || mode != LatencyMode::Ephemeris {
        return Ok(None);
    }
    let in_blackout = |at| {
        ephemeris::planet_link(Body::Mars, at)
            .map(|g| Conjunction::from_elongation(g.elongation_deg) == Conjunction::Blackout)
    };
    if !in_blackout(now)? {
        return Ok(None);
    }
    let mut at = now;
    while in_blackout(at)? {
        at += BLACKOUT_STEP;
        if at - now > BLACKOUT_LIMIT {
            break;
        }
    }
    Ok(Some((at - now).to_std().unwrap_or_default()))
}

/// `3.1 min`, `1.28 s`, `24.0 h`, `150 ms` — a delay in the unit an operator reads it in.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 60.0 {
        format!("{s:.2} s")
    } else if s < 3600.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn mars_report_for_the_2003_approach() {
        let r = link_report(
            LatencyPreset::Mars,
            at(2003, 8, 27),
            &LatencyConfig::default(),
        )
        .unwrap();
        assert_eq!(human(r.one_way), "3.1 min");
        assert_eq!(r.round_trip(), r.one_way * 2);
        assert!((r.distance_au().unwrap() - 0.3727).abs() < 0.002);
        assert_eq!(r.conjunction, Conjunction::Clear);
    }

    #[test]
    fn mars_conjunction_states() {
        let r = link_report(
            LatencyPreset::Mars,
            at(2026, 1, 9),
            &LatencyConfig::default(),
        )
        .unwrap();
        assert_eq!(r.conjunction, Conjunction::Blackout);
        assert_eq!(Conjunction::from_elongation(3.0), Conjunction::Reduced);
        assert_eq!(Conjunction::from_elongation(45.0), Conjunction::Clear);
    }

    fn mars(mode: LatencyMode) -> LatencyConfig {
        LatencyConfig {
            preset: LatencyPreset::Mars,
            mode,
            ..LatencyConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_status_in_a_blackout_says_the_sun_angle_and_when_it_reopens() {
        let sim = LinkSim::new(&mars(LatencyMode::Ephemeris), 1, at(2021, 10, 8));
        let s = sim.status();
        assert_eq!(s.conjunction, "blackout");
        let sun = s.sun_deg.unwrap();
        assert!(sun < BLACKOUT_DEG, "{sun}");
        let ends = s.blackout_ends.expect("a blackout has an end");
        let left = sim.blackout_remaining().unwrap().unwrap();
        assert_eq!(
            ends,
            s.sim_time + chrono::TimeDelta::from_std(left).unwrap()
        );
        // The 2021 conjunction: the link reopens on the 14th (found in six-hour steps).
        assert_eq!(ends, at(2021, 10, 14));
        assert!(!in_blackout_at(ends), "it is clear at {ends}");
        assert!(
            in_blackout_at(ends - BLACKOUT_STEP),
            "still dark before {ends}"
        );
        assert_eq!((s.one_way_min_ms, s.one_way_max_ms), (186_000, 1_338_000));
        assert!(
            s.one_way_ms > 1_200_000,
            "near the far side: {}",
            s.one_way_ms
        );
        // Clear skies: no end, but the Sun angle all the same.
        let clear = LinkSim::new(&mars(LatencyMode::Ephemeris), 1, at(2026, 12, 1)).status();
        assert_eq!(
            (clear.conjunction.as_str(), clear.blackout_ends),
            ("clear", None)
        );
        assert!(clear.sun_deg.unwrap() > REDUCED_DEG);
    }

    fn in_blackout_at(t: DateTime<Utc>) -> bool {
        link_report(LatencyPreset::Mars, t, &LatencyConfig::default())
            .unwrap()
            .conjunction
            == Conjunction::Blackout
    }

    #[tokio::test(start_paused = true)]
    async fn uniform_and_fixed_report_the_range_and_no_blackout() {
        for mode in [LatencyMode::Uniform, LatencyMode::Fixed] {
            let s = LinkSim::new(&mars(mode), 1, at(2021, 10, 8)).status();
            assert_eq!(s.conjunction, "clear", "{mode}");
            assert_eq!(s.blackout_ends, None, "{mode}");
            assert_eq!((s.one_way_min_ms, s.one_way_max_ms), (186_000, 1_338_000));
            assert_eq!(s.one_way_ms, 762_000, "{mode}: the middle");
        }
        let earth = LinkSim::new(&LatencyConfig::default(), 1, at(2021, 10, 8)).status();
        assert_eq!((earth.one_way_min_ms, earth.one_way_max_ms), EARTH_RANGE_MS);
        assert_eq!(earth.sun_deg, None);
    }

    #[test]
    fn deep_space_defaults_to_about_a_light_day() {
        let r = link_report(
            LatencyPreset::DeepSpace,
            at(2026, 11, 26),
            &LatencyConfig::default(),
        )
        .unwrap();
        let hours = r.one_way.as_secs_f64() / 3600.0;
        assert!((23.5..24.5).contains(&hours), "{hours}");
    }

    #[test]
    fn lunar_and_earth_ranges() {
        let cfg = LatencyConfig::default();
        let l = link_report(LatencyPreset::Lunar, at(2026, 11, 26), &cfg).unwrap();
        assert!(
            l.one_way >= l.one_way_min && l.one_way <= l.one_way_max,
            "{l:?}"
        );
        assert_eq!(human(l.one_way_min), "1.19 s");
        assert_eq!(human(l.one_way_max), "1.36 s");
        let e = link_report(LatencyPreset::Earth, at(2026, 11, 26), &cfg).unwrap();
        assert_eq!(
            (human(e.one_way_min), human(e.one_way_max)),
            ("50 ms".into(), "250 ms".into())
        );
    }
}
