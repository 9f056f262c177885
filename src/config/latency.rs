//! `latency:` — the simulated interplanetary link: its presets, how the delay is drawn, and
//! the custom range.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Range of `latency.time_scale`: a thousand times slower to a million times faster.
pub const RANGE_TIME_SCALE: std::ops::RangeInclusive<f64> = 0.001..=1_000_000.0;
/// Range of `latency.deep_space_au`: a thousandth of an au to about 1.6 light-years.
pub const RANGE_DEEP_SPACE_AU: std::ops::RangeInclusive<f64> = 0.001..=100_000.0;

/// `latency:` — the simulated link between operator and model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyConfig {
    /// Whether tasks cross the simulated link (default on; `:sim on|off` in the console).
    /// Benchmark items never do: they measure the model, not the link.
    pub simulate: bool,
    /// Which link.
    pub preset: LatencyPreset,
    /// How the delay is drawn.
    pub mode: LatencyMode,
    /// Range for the `custom` preset.
    pub custom: CustomRange,
    /// Simulated seconds per real second (60 = a Mars minute per second), 0.001 to 1,000,000.
    pub time_scale: f64,
    /// Distance of the `deep-space` preset, au (173 au is one light-day: Voyager 1 in 2026),
    /// 0.001 to 100,000.
    pub deep_space_au: f64,
    /// The simulated date the link's clock starts at (RFC 3339, within the ephemeris's years
    /// 1800–2050); unset: now. Replays a past or future geometry, e.g. a conjunction.
    pub start: Option<chrono::DateTime<chrono::Utc>>,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        LatencyConfig {
            // On: tasks cross the link out of the box. Earth's is a terrestrial network
            // (50–250 ms a leg); Lunar, Mars and deep space are one key away.
            simulate: true,
            preset: LatencyPreset::Earth,
            mode: LatencyMode::Uniform,
            custom: CustomRange::default(),
            time_scale: 1.0,
            deep_space_au: 173.0,
            start: None,
        }
    }
}

/// `latency.custom:` — one-way delay range in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CustomRange {
    /// Shortest one-way delay, ms, 0 to 604,800,000 (a week).
    pub min_ms: u64,
    /// Longest one-way delay, ms; not below `min_ms`, at most 604,800,000 (a week).
    pub max_ms: u64,
}

impl Default for CustomRange {
    fn default() -> Self {
        CustomRange {
            min_ms: 100,
            max_ms: 1000,
        }
    }
}

/// Link presets (DESIGN §3).
///
/// Parsing (`"mars".parse()`) is case-insensitive; the error lists the valid names.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(
    serialize_all = "kebab-case",
    ascii_case_insensitive,
    parse_err_ty = String,
    parse_err_fn = not_a_preset
)]
pub enum LatencyPreset {
    /// Terrestrial network.
    Earth,
    /// Earth–Moon.
    Lunar,
    /// Earth–Mars.
    Mars,
    /// Voyager-class deep space.
    DeepSpace,
    /// `latency.custom` range.
    Custom,
}

impl LatencyPreset {
    /// Every preset, in the console's order.
    pub const ALL: [LatencyPreset; 5] = [
        LatencyPreset::Earth,
        LatencyPreset::Lunar,
        LatencyPreset::Mars,
        LatencyPreset::DeepSpace,
        LatencyPreset::Custom,
    ];

    /// The name used in config, CLI and console.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The error of parsing a [`LatencyPreset`]: what was given and the valid names.
fn not_a_preset(text: &str) -> String {
    format!(
        "'{}' is not a link preset; use one of {}",
        crate::sanitize::quote(text),
        LatencyPreset::ALL.map(LatencyPreset::name).join(", ")
    )
}

impl fmt::Display for LatencyPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the one-way delay is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum LatencyMode {
    /// Seeded random within the preset's range.
    Uniform,
    /// The middle of the preset's range.
    Fixed,
    /// True light time for the simulated date.
    Ephemeris,
}

impl fmt::Display for LatencyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_and_mode_names_match_serde() {
        for p in LatencyPreset::ALL {
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
            assert_eq!(
                p.name().to_ascii_uppercase().parse::<LatencyPreset>(),
                Ok(p)
            );
        }
        assert_eq!(LatencyPreset::DeepSpace.name(), "deep-space");
        for m in [
            LatencyMode::Uniform,
            LatencyMode::Fixed,
            LatencyMode::Ephemeris,
        ] {
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert_eq!(
            "venus".parse::<LatencyPreset>(),
            Err(
                "'venus' is not a link preset; use one of earth, lunar, mars, deep-space, custom"
                    .to_string()
            )
        );
    }
}
