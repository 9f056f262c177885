//! `bench:` — defaults of `veyra bench`, and the two names every layer above shares: the
//! benchmark families ([`FamilyId`]) and the difficulties ([`Difficulty`]).
//!
//! They live here, in the lowest layer, for the same reason [`super::LatencyPreset`] does: the
//! configuration validates them, and the benchmarks, the CLI and the console all parse them
//! the same way.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::suggest::did_you_mean;

/// Range of `bench.count` (tasks per family).
pub const RANGE_BENCH_COUNT: std::ops::RangeInclusive<u64> = 1..=100_000;
/// Range of `bench.epochs` (times each task runs).
pub const RANGE_BENCH_EPOCHS: std::ops::RangeInclusive<u64> = 1..=100;
/// Range of each of `bench.weights`.
pub const RANGE_BENCH_WEIGHT: std::ops::RangeInclusive<f64> = 0.0..=1000.0;

/// A benchmark family that exists.
///
/// Parsing (`"cplc".parse()`) is case-insensitive; the error names the valid families.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(
    serialize_all = "lowercase",
    ascii_case_insensitive,
    parse_err_ty = String,
    parse_err_fn = not_a_family
)]
pub enum FamilyId {
    /// Cross-Planet Latency Cognition: planning under light-time delay.
    Cplc,
    /// Multi-Sovereign Governance Alignment: Cedar policies of several jurisdictions.
    Msga,
    /// World-Model Robustness & Transfer: one physical question across worlds.
    Wmrt,
    /// Infrastructure Cognition & Self-Diagnostics: faults in a telemetry snapshot.
    Icsd,
    /// Tool-Orchestrated Meta-Engineering: tasks that need tools, run for real.
    Tome,
    /// Alignment, Safety & Red-Teaming: harmful requests and benign look-alikes.
    Asr,
    /// Inter-Model Diplomacy & Protocol Design: agents negotiate, then one writes a protocol
    /// message in a JSON Schema.
    Imdp,
}

impl FamilyId {
    /// Every family, in the order tables list them.
    pub const ALL: [FamilyId; 7] = [
        FamilyId::Cplc,
        FamilyId::Msga,
        FamilyId::Wmrt,
        FamilyId::Icsd,
        FamilyId::Tome,
        FamilyId::Asr,
        FamilyId::Imdp,
    ];

    /// The name used in config, CLI, store and task ids (`cplc`, …).
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The family's full title.
    pub fn title(self) -> &'static str {
        match self {
            FamilyId::Cplc => "Cross-Planet Latency Cognition",
            FamilyId::Msga => "Multi-Sovereign Governance Alignment",
            FamilyId::Wmrt => "World-Model Robustness & Transfer",
            FamilyId::Icsd => "Infrastructure Cognition & Self-Diagnostics",
            FamilyId::Tome => "Tool-Orchestrated Meta-Engineering",
            FamilyId::Asr => "Alignment, Safety & Red-Teaming",
            FamilyId::Imdp => "Inter-Model Diplomacy & Protocol Design",
        }
    }

    /// The families' names joined with `, ` (for error messages).
    pub fn valid_names() -> String {
        FamilyId::ALL
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Parses `all` or a comma-separated list of families into a sorted list without
    /// duplicates. The error says what was wrong and lists the valid names.
    pub fn parse_list(text: &str) -> Result<Vec<FamilyId>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("all") {
            return Ok(FamilyId::ALL.to_vec());
        }
        if text.is_empty() {
            return Err(format!(
                "no family given; use all or a list of {}",
                FamilyId::valid_names()
            ));
        }
        let mut families = Vec::new();
        for name in text.split(',') {
            let family: FamilyId = name.trim().parse()?;
            if !families.contains(&family) {
                families.push(family);
            }
        }
        families.sort();
        Ok(families)
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a [`FamilyId`]: what was given, a near name, the valid ones.
fn not_a_family(text: &str) -> String {
    let name = text.trim().to_ascii_lowercase();
    format!(
        "unknown benchmark family '{}'{}; valid families: {} (or all)",
        crate::sanitize::quote(text.trim()),
        did_you_mean(&name, FamilyId::ALL.iter().map(|f| f.name())),
        FamilyId::valid_names()
    )
}

/// How hard the generated tasks are. Each family makes harder levels really harder: more
/// constraints, larger numbers, distractors, longer context.
///
/// Parsing (`"hard".parse()`) is case-insensitive; the error lists the valid levels.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Default,
    schemars::JsonSchema,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(
    serialize_all = "lowercase",
    ascii_case_insensitive,
    parse_err_ty = String,
    parse_err_fn = not_a_difficulty
)]
pub enum Difficulty {
    /// Few facts, given directly.
    Easy,
    /// More facts, some to derive.
    #[default]
    Medium,
    /// Distractors and tight margins.
    Hard,
    /// Long context, several steps, little slack.
    Extreme,
}

impl Difficulty {
    /// Every level, easiest first.
    pub const ALL: [Difficulty; 4] = [
        Difficulty::Easy,
        Difficulty::Medium,
        Difficulty::Hard,
        Difficulty::Extreme,
    ];

    /// The name used in config, CLI, store and task ids.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// 0 for easy to 3 for extreme, for generators that scale with the level.
    pub fn level(self) -> usize {
        match self {
            Difficulty::Easy => 0,
            Difficulty::Medium => 1,
            Difficulty::Hard => 2,
            Difficulty::Extreme => 3,
        }
    }
}

impl fmt::Display for Difficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a [`Difficulty`]: what was given, a near name, the valid ones.
fn not_a_difficulty(text: &str) -> String {
    let name = text.trim().to_ascii_lowercase();
    let names: Vec<&str> = Difficulty::ALL.iter().map(|d| d.name()).collect();
    format!(
        "unknown difficulty '{}'{}; valid difficulties: {}",
        crate::sanitize::quote(text.trim()),
        did_you_mean(&name, names.iter().copied()),
        names.join(", ")
    )
}

/// `bench:` — what `veyra bench` (and the console's `b`) runs when not told otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BenchConfig {
    /// Families to run: `all` or a comma-separated list (`cplc,msga`).
    pub family: String,
    /// Tasks per family, 1 to 100,000.
    pub count: u32,
    /// Difficulty of the generated tasks.
    pub difficulty: Difficulty,
    /// Seed of the task generators: the same seed gives the same tasks, byte for byte.
    pub seed: u64,
    /// Times each task runs (every epoch's score is kept), 1 to 100.
    pub epochs: u32,
    /// Weight of each family in the V-Score, 0 to 1000 (a family not listed weighs 1).
    pub weights: BTreeMap<String, f64>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            family: "all".into(),
            count: 20,
            difficulty: Difficulty::Medium,
            seed: 7,
            epochs: 1,
            weights: BTreeMap::new(),
        }
    }
}

impl BenchConfig {
    /// The weight of `family` in the V-Score.
    pub fn weight(&self, family: FamilyId) -> f64 {
        self.weights.get(family.name()).copied().unwrap_or(1.0)
    }

    /// Checks names and ranges: `Err((dotted key, message))`.
    pub fn check(&self) -> Result<(), (String, String)> {
        FamilyId::parse_list(&self.family).map_err(|m| ("bench.family".to_string(), m))?;
        let within = |key: &str, value: u64, range: std::ops::RangeInclusive<u64>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err((
                    key.to_string(),
                    format!(
                        "{value} is out of range; use {} to {}",
                        range.start(),
                        range.end()
                    ),
                ))
            }
        };
        within("bench.count", self.count.into(), RANGE_BENCH_COUNT)?;
        within("bench.epochs", self.epochs.into(), RANGE_BENCH_EPOCHS)?;
        for (name, weight) in &self.weights {
            let key = format!("bench.weights.{name}");
            name.parse::<FamilyId>().map_err(|m| (key.clone(), m))?;
            if !RANGE_BENCH_WEIGHT.contains(weight) {
                return Err((
                    key,
                    format!(
                        "{weight} is out of range; use a weight from {} to {}",
                        RANGE_BENCH_WEIGHT.start(),
                        RANGE_BENCH_WEIGHT.end()
                    ),
                ));
            }
        }
        if let Ok(families) = FamilyId::parse_list(&self.family)
            && families.iter().all(|f| self.weight(*f) == 0.0)
        {
            return Err((
                "bench.weights".to_string(),
                "every family of bench.family weighs 0, so the V-Score is undefined; give at \
                 least one a positive weight"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_parse_case_insensitively_and_list_valid_names() {
        assert_eq!("CPLC".parse::<FamilyId>(), Ok(FamilyId::Cplc));
        let e = "cplx".parse::<FamilyId>().unwrap_err();
        assert!(e.contains("did you mean 'cplc'"), "{e}");
        assert!(e.contains("cplc, msga, wmrt, icsd, tome, asr, imdp"), "{e}");
        assert_eq!("Tome".parse::<FamilyId>(), Ok(FamilyId::Tome));
        assert_eq!("ASR".parse::<FamilyId>(), Ok(FamilyId::Asr));
        assert_eq!("IMDP".parse::<FamilyId>(), Ok(FamilyId::Imdp));
        assert_eq!(
            FamilyId::Imdp.title(),
            "Inter-Model Diplomacy & Protocol Design"
        );
        assert_eq!(FamilyId::ALL.last(), Some(&FamilyId::Imdp));
    }

    #[test]
    fn family_lists_are_sorted_without_duplicates() {
        assert_eq!(
            FamilyId::parse_list("wmrt, cplc,wmrt"),
            Ok(vec![FamilyId::Cplc, FamilyId::Wmrt])
        );
        assert_eq!(FamilyId::parse_list("ALL"), Ok(FamilyId::ALL.to_vec()));
        assert!(FamilyId::parse_list("").is_err());
        assert_eq!(
            FamilyId::parse_list("asr,tome,icsd"),
            Ok(vec![FamilyId::Icsd, FamilyId::Tome, FamilyId::Asr])
        );
        assert!(
            FamilyId::parse_list("cplc,imdq")
                .unwrap_err()
                .contains("did you mean 'imdp'")
        );
    }

    #[test]
    fn difficulty_errors_list_the_valid_levels() {
        assert_eq!("Hard".parse::<Difficulty>(), Ok(Difficulty::Hard));
        let e = "brutal".parse::<Difficulty>().unwrap_err();
        assert!(e.contains("easy, medium, hard, extreme"), "{e}");
    }

    #[test]
    fn check_rejects_bad_values_naming_the_key() {
        let ok = BenchConfig::default();
        assert_eq!(ok.check(), Ok(()));
        let bad = BenchConfig {
            count: 0,
            ..BenchConfig::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "bench.count");
        let mut bad = BenchConfig::default();
        bad.weights.insert("msgaa".into(), 1.0);
        assert_eq!(bad.check().unwrap_err().0, "bench.weights.msgaa");
        let mut bad = BenchConfig::default();
        bad.weights.insert("msga".into(), f64::NAN);
        assert!(bad.check().is_err());
        let mut zero = BenchConfig {
            family: "msga".into(),
            ..BenchConfig::default()
        };
        zero.weights.insert("msga".into(), 0.0);
        assert_eq!(zero.check().unwrap_err().0, "bench.weights");
    }
}
