//! Statistics of a run and of two runs compared. The formulas (also in the README):
//!
//! - A task's score `x_t` is the mean of its epochs' scores (every epoch's raw score is kept
//!   in the store; the task is the sampling unit).
//! - Family mean `m = Σ x_t / n`; standard error `SE = s / √n` with
//!   `s² = Σ (x_t − m)² / (n − 1)`.
//! - Clustered families (WMRT): cluster means `c_k` (mean of the cluster's `x_t`);
//!   `m = Σ c_k / C`, `SE = sd(c_k) / √C` — variants of one question are not independent
//!   evidence. Consistency = share of clusters whose every task scored 1.
//! - 95 % interval: `m ± 1.96 · SE`, clipped to `[0, 1]`. With fewer than two tasks (clusters)
//!   there is no spread estimate: SE and interval are absent, and said to be.
//! - When every task score (cluster mean, for WMRT) is 0 or 1 — a pass/fail family, and any
//!   family whose mean is 0 or 1 — or all scores are equal, the interval is Wilson's score
//!   interval for `m · n` of `n` instead ([`wilson`]), which stays honest at the bounds: ten
//!   tasks all right give `[0.722, 1.000]`, not `[1.000, 1.000]`. Its SE is the interval's
//!   half-width / 1.96, so the `±` shown and the V-Score's SE agree with it.
//! - V-Score `V = Σ w_f m_f / Σ w_f` (weights `bench.weights`, default 1);
//!   `SE_V = √(Σ w_f² SE_f²) / Σ w_f`; interval `V ± 1.96 · SE_V`.
//! - Paired comparison of runs A and B: tasks paired by id, `d_t = x_t(B) − x_t(A)`; per family
//!   the mean of `d_t` with its SE (clustered as above) and 95 % interval; overall the weighted
//!   mean of the family differences with `√(Σ w² SE²) / Σ w`. A difference is significant when
//!   its interval excludes zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::framework::FamilyId;

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.96;

/// The finished epochs of one task, as statistics need them.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskScores {
    /// The task's family.
    pub family: FamilyId,
    /// The task's id.
    pub task_id: String,
    /// The task's cluster.
    pub cluster: String,
    /// One score per finished epoch.
    pub scores: Vec<f64>,
    /// Epochs whose execution failed (scored 0).
    pub errors: u32,
    /// Latency summed over the epochs, ms.
    pub latency_ms: u64,
    /// Input tokens summed over the epochs.
    pub tokens_in: u64,
    /// Output tokens summed over the epochs.
    pub tokens_out: u64,
}

impl TaskScores {
    /// The task's score: the mean over its epochs (`None` before any finished).
    pub fn mean(&self) -> Option<f64> {
        mean(&self.scores)
    }
}

/// A mean with its standard error and 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The point estimate.
    pub mean: f64,
    /// Its standard error; `None` with fewer than two units.
    pub se: Option<f64>,
    /// Lower end of the 95 % interval.
    pub ci_low: Option<f64>,
    /// Upper end of the 95 % interval.
    pub ci_high: Option<f64>,
}

impl Estimate {
    /// An estimate from a mean and an optional SE, its interval clipped to `[lo, hi]`.
    fn new(mean: f64, se: Option<f64>, lo: f64, hi: f64) -> Self {
        Estimate {
            mean,
            se,
            ci_low: se.map(|s| (mean - Z95 * s).max(lo)),
            ci_high: se.map(|s| (mean + Z95 * s).min(hi)),
        }
    }

    /// True when the interval exists and excludes zero.
    pub fn excludes_zero(&self) -> Option<bool> {
        match (self.ci_low, self.ci_high) {
            (Some(l), Some(h)) => Some(l > 0.0 || h < 0.0),
            _ => None,
        }
    }
}

/// One family of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilySummary {
    /// The family.
    pub family: FamilyId,
    /// Tasks with at least one finished epoch.
    pub n: usize,
    /// Clusters, for clustered families.
    pub clusters: Option<usize>,
    /// Finished epochs over all tasks.
    pub epochs: usize,
    /// Mean score, SE and interval.
    pub score: Estimate,
    /// Share of clusters answered right in every variant (clustered families).
    pub consistency: Option<f64>,
    /// Epochs whose execution failed.
    pub errors: u32,
    /// Latency summed over every epoch, ms.
    pub latency_ms: u64,
    /// Input tokens.
    pub tokens_in: u64,
    /// Output tokens.
    pub tokens_out: u64,
}

/// The V-Score: the weighted mean of the family means, always with its interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VScore {
    /// Value, SE and interval.
    pub score: Estimate,
    /// The weight of each family, as used.
    pub weights: BTreeMap<FamilyId, f64>,
}

/// The summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Per family, in family order.
    pub families: Vec<FamilySummary>,
    /// The V-Score.
    pub v_score: VScore,
}

/// True for families whose tasks are variants of shared cases.
pub fn is_clustered(family: FamilyId) -> bool {
    match family {
        FamilyId::Wmrt => true,
        FamilyId::Cplc
        | FamilyId::Msga
        | FamilyId::Icsd
        | FamilyId::Tome
        | FamilyId::Asr
        | FamilyId::Imdp => false,
    }
}

/// The arithmetic mean (`None` when empty).
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// Standard error of the mean, `s/√n` with the `n − 1` sample deviation (`None` for n < 2).
pub fn standard_error(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let m = mean(values)?;
    let var = values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n as f64 - 1.0);
    Some((var / n as f64).sqrt())
}

/// Wilson's 95 % score interval for `k` successes in `n` trials (`None` for `n` = 0):
/// `(p̂ + z²/2n ± z √(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n)`, `p̂ = k/n`, `z` = [`Z95`].
pub fn wilson(k: f64, n: f64) -> Option<(f64, f64)> {
    if n <= 0.0 {
        return None;
    }
    let p = (k / n).clamp(0.0, 1.0);
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// What a set of units measures: task scores in `[0, 1]`, or paired differences in `[-1, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    Scores,
    Differences,
}

impl Scale {
    fn bounds(self) -> (f64, f64) {
        match self {
            Scale::Scores => (0.0, 1.0),
            Scale::Differences => (-1.0, 1.0),
        }
    }
}

/// Mean and SE of `(cluster, value)` pairs: over cluster means when `clustered`, else over the
/// values; scores that are all 0 or 1 get Wilson's interval (see the module docs). Returns
/// the estimate and the number of units.
fn estimate(units: &[(String, f64)], clustered: bool, scale: Scale) -> (Estimate, usize) {
    let (lo, hi) = scale.bounds();
    let values: Vec<f64> = if clustered {
        let mut by: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (c, v) in units {
            by.entry(c.as_str()).or_default().push(*v);
        }
        by.values().filter_map(|v| mean(v)).collect()
    } else {
        units.iter().map(|u| u.1).collect()
    };
    let m = mean(&values).unwrap_or(0.0);
    // Pass/fail scores, or scores without spread (all equal): `m ± 1.96 · SE` would claim a
    // certainty no sample gives. Wilson's interval, whose variance p̂(1 − p̂) is the largest any
    // score in [0, 1] with that mean can have, is honest for both.
    let pass_fail = values.iter().all(|v| *v == 0.0 || *v == 1.0);
    let no_spread = values.iter().all(|v| *v == m);
    let n = values.len();
    if scale == Scale::Scores
        && (pass_fail || no_spread)
        && n >= 2
        && let Some((low, high)) = wilson(values.iter().sum(), n as f64)
    {
        let estimate = Estimate {
            mean: m,
            se: Some((high - low) / (2.0 * Z95)),
            ci_low: Some(low),
            ci_high: Some(high),
        };
        return (estimate, n);
    }
    (Estimate::new(m, standard_error(&values), lo, hi), n)
}

/// The estimate of independent scores in `[0, 1]` (an eval suite's samples): the rule a
/// family that is not clustered gets, Wilson's interval included.
pub fn scores_estimate(values: &[f64]) -> Estimate {
    let units: Vec<(String, f64)> = values.iter().map(|v| (String::new(), *v)).collect();
    estimate(&units, false, Scale::Scores).0
}

/// The estimate of paired differences in `[-1, 1]` (two runs of one eval suite, sample by
/// sample): mean and SE of the differences, the interval clamped to `[-1, 1]`.
pub fn differences_estimate(values: &[f64]) -> Estimate {
    let units: Vec<(String, f64)> = values.iter().map(|v| (String::new(), *v)).collect();
    let e = estimate(&units, false, Scale::Differences).0;
    // Differences without spread (every sample moved alike) give an SE of 0: an interval of
    // one point would claim a certainty a few samples never give. None is given.
    if e.se == Some(0.0) {
        return Estimate {
            mean: e.mean,
            se: None,
            ci_low: None,
            ci_high: None,
        };
    }
    e
}

/// Combines family estimates with weights: `Σ w m / Σ w`, `√(Σ w² SE²) / Σ w` (no SE when any
/// family has none). Equal weights when all given weights are zero.
fn combine(parts: &[(f64, Estimate)], lo: f64, hi: f64) -> Estimate {
    let total: f64 = parts.iter().map(|p| p.0).sum();
    let equal = total <= 0.0;
    let w = |p: &(f64, Estimate)| if equal { 1.0 } else { p.0 };
    let total = if equal { parts.len() as f64 } else { total };
    if parts.is_empty() || total <= 0.0 {
        return Estimate::new(0.0, None, lo, hi);
    }
    let value = parts.iter().map(|p| w(p) * p.1.mean).sum::<f64>() / total;
    let se = parts
        .iter()
        .map(|p| p.1.se.map(|s| w(p) * w(p) * s * s))
        .sum::<Option<f64>>()
        .map(|v| v.sqrt() / total);
    Estimate::new(value, se, lo, hi)
}

/// Summarizes a run's tasks (only tasks with a finished epoch count) for `families`, weighted
/// by `weight`.
pub fn summarize(
    tasks: &[TaskScores],
    families: &[FamilyId],
    weight: &dyn Fn(FamilyId) -> f64,
) -> RunSummary {
    let mut out = Vec::new();
    for &family in families {
        let mine: Vec<&TaskScores> = tasks
            .iter()
            .filter(|t| t.family == family && !t.scores.is_empty())
            .collect();
        let units: Vec<(String, f64)> = mine
            .iter()
            .filter_map(|t| t.mean().map(|m| (t.cluster.clone(), m)))
            .collect();
        let clustered = is_clustered(family);
        let (score, unit_count) = estimate(&units, clustered, Scale::Scores);
        let consistency = clustered.then(|| {
            let mut by: BTreeMap<&str, bool> = BTreeMap::new();
            for (c, v) in &units {
                let all = by.entry(c.as_str()).or_insert(true);
                *all = *all && *v >= 1.0;
            }
            if by.is_empty() {
                0.0
            } else {
                by.values().filter(|b| **b).count() as f64 / by.len() as f64
            }
        });
        out.push(FamilySummary {
            family,
            n: mine.len(),
            clusters: clustered.then_some(unit_count),
            epochs: mine.iter().map(|t| t.scores.len()).sum(),
            score,
            consistency,
            errors: mine.iter().map(|t| t.errors).sum(),
            latency_ms: mine.iter().map(|t| t.latency_ms).sum(),
            tokens_in: mine.iter().map(|t| t.tokens_in).sum(),
            tokens_out: mine.iter().map(|t| t.tokens_out).sum(),
        });
    }
    let parts: Vec<(f64, Estimate)> = out.iter().map(|f| (weight(f.family), f.score)).collect();
    let weights = families.iter().map(|&f| (f, weight(f))).collect();
    RunSummary {
        v_score: VScore {
            score: combine(&parts, 0.0, 1.0),
            weights,
        },
        families: out,
    }
}

/// The paired difference B − A of one family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyDiff {
    /// The family.
    pub family: FamilyId,
    /// Pairs (tasks in both runs).
    pub pairs: usize,
    /// Mean of B − A, its SE and interval.
    pub diff: Estimate,
    /// Whether the interval excludes zero (`None` without an interval).
    pub significant: Option<bool>,
}

/// A paired comparison of two runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Run A (the baseline).
    pub a: String,
    /// Run B.
    pub b: String,
    /// Per family, in family order (families with pairs only).
    pub families: Vec<FamilyDiff>,
    /// Weighted over the families (run A's weights).
    pub overall: Estimate,
    /// Whether the overall interval excludes zero.
    pub significant: Option<bool>,
    /// Tasks of either run without a partner.
    pub unpaired: usize,
}

/// Pairs `a` and `b` by task id and compares them (see the module docs).
pub fn compare(
    a_id: &str,
    a: &[TaskScores],
    b_id: &str,
    b: &[TaskScores],
    weight: &dyn Fn(FamilyId) -> f64,
) -> Comparison {
    let b_by: BTreeMap<&str, &TaskScores> = b
        .iter()
        .filter(|t| !t.scores.is_empty())
        .map(|t| (t.task_id.as_str(), t))
        .collect();
    let mut pairs: BTreeMap<FamilyId, Vec<(String, f64)>> = BTreeMap::new();
    let mut paired = 0usize;
    for ta in a {
        let (Some(xa), Some(tb)) = (ta.mean(), b_by.get(ta.task_id.as_str())) else {
            continue;
        };
        let Some(xb) = tb.mean() else { continue };
        paired += 1;
        pairs
            .entry(ta.family)
            .or_default()
            .push((ta.cluster.clone(), xb - xa));
    }
    let finished = |ts: &[TaskScores]| ts.iter().filter(|t| !t.scores.is_empty()).count();
    let unpaired = finished(a) + finished(b) - 2 * paired;
    let mut families = Vec::new();
    for (family, units) in pairs {
        let (diff, _) = estimate(&units, is_clustered(family), Scale::Differences);
        families.push(FamilyDiff {
            family,
            pairs: units.len(),
            significant: diff.excludes_zero(),
            diff,
        });
    }
    let parts: Vec<(f64, Estimate)> = families
        .iter()
        .map(|f| (weight(f.family), f.diff))
        .collect();
    let overall = combine(&parts, -1.0, 1.0);
    Comparison {
        a: a_id.to_string(),
        b: b_id.to_string(),
        families,
        significant: overall.excludes_zero(),
        overall,
        unpaired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(family: FamilyId, id: &str, cluster: &str, scores: &[f64]) -> TaskScores {
        TaskScores {
            family,
            task_id: id.into(),
            cluster: cluster.into(),
            scores: scores.to_vec(),
            errors: 0,
            latency_ms: 10,
            tokens_in: 3,
            tokens_out: 4,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn mean_and_standard_error_by_hand() {
        // 1, 0, 1, 1: mean 0.75, s² = (3·0.0625 + 0.5625)/3 = 0.25, SE = √(0.25/4) = 0.25.
        assert_eq!(mean(&[1.0, 0.0, 1.0, 1.0]), Some(0.75));
        assert!(close(standard_error(&[1.0, 0.0, 1.0, 1.0]).unwrap(), 0.25));
        assert_eq!(standard_error(&[1.0]), None);
        assert_eq!(mean(&[]), None);
    }

    #[test]
    fn epochs_average_within_a_task() {
        let ts = vec![
            task(FamilyId::Msga, "a", "a", &[1.0, 0.0]),
            task(FamilyId::Msga, "b", "b", &[1.0, 1.0]),
        ];
        let s = summarize(&ts, &[FamilyId::Msga], &|_| 1.0);
        let f = &s.families[0];
        // Task means 0.5 and 1: mean 0.75, SE = √(0.125/2) = 0.25.
        assert!(close(f.score.mean, 0.75));
        assert!(close(f.score.se.unwrap(), 0.25));
        assert_eq!((f.n, f.epochs), (2, 4));
        assert!(close(f.score.ci_low.unwrap(), 0.75 - 0.49));
        assert_eq!(f.score.ci_high, Some(1.0), "clipped to 1");
        assert_eq!((f.latency_ms, f.tokens_in, f.tokens_out), (20, 6, 8));
    }

    #[test]
    fn clustered_standard_error_uses_cluster_means() {
        // Clusters: c1 = {1, 1} → 1; c2 = {0, 1} → 0.5; c3 = {0, 0} → 0.
        let ts = vec![
            task(FamilyId::Wmrt, "1a", "c1", &[1.0]),
            task(FamilyId::Wmrt, "1b", "c1", &[1.0]),
            task(FamilyId::Wmrt, "2a", "c2", &[0.0]),
            task(FamilyId::Wmrt, "2b", "c2", &[1.0]),
            task(FamilyId::Wmrt, "3a", "c3", &[0.0]),
            task(FamilyId::Wmrt, "3b", "c3", &[0.0]),
        ];
        let s = summarize(&ts, &[FamilyId::Wmrt], &|_| 1.0);
        let f = &s.families[0];
        // Mean 0.5; sd of (1, 0.5, 0) = 0.5; SE = 0.5/√3.
        assert!(close(f.score.mean, 0.5));
        assert!(close(f.score.se.unwrap(), 0.5 / 3f64.sqrt()));
        assert_eq!(f.clusters, Some(3));
        assert!(close(f.consistency.unwrap(), 1.0 / 3.0));
        // Unclustered, the same six values would give a smaller SE: √(0.3/6) ≈ 0.2236.
        let naive = standard_error(&[1.0, 1.0, 0.0, 1.0, 0.0, 0.0]).unwrap();
        assert!(naive < f.score.se.unwrap());
    }

    #[test]
    fn v_score_weights_means_and_combines_standard_errors() {
        // Family A: scores 0.75, 0.25 → mean 0.5, SE √(0.125/2) = 0.25; family B: 0.8, 1 →
        // mean 0.9, SE √(0.02/2) = 0.1.
        let ts = vec![
            task(FamilyId::Cplc, "a1", "a1", &[0.75]),
            task(FamilyId::Cplc, "a2", "a2", &[0.25]),
            task(FamilyId::Icsd, "b1", "b1", &[0.8]),
            task(FamilyId::Icsd, "b2", "b2", &[1.0]),
        ];
        let w = |f: FamilyId| if f == FamilyId::Cplc { 3.0 } else { 1.0 };
        let s = summarize(&ts, &[FamilyId::Cplc, FamilyId::Icsd], &w);
        // V = (3·0.5 + 1·0.9)/4 = 0.6; SE = √(9·0.0625 + 0.01)/4.
        assert!(close(s.v_score.score.mean, 0.6));
        let se = (9.0 * 0.0625f64 + 0.01).sqrt() / 4.0;
        assert!(close(s.v_score.score.se.unwrap(), se));
        assert!(close(s.v_score.score.ci_low.unwrap(), 0.6 - Z95 * se));
        // Family B's interval 0.9 ± 0.196 is clipped to 1.
        assert_eq!(s.families[1].score.ci_high, Some(1.0));
        assert_eq!(s.v_score.weights[&FamilyId::Cplc], 3.0);
    }

    #[test]
    fn pass_fail_and_spreadless_families_get_an_interval_honest_at_the_bounds() {
        let family = |scores: &[f64]| {
            let ts: Vec<TaskScores> = scores
                .iter()
                .enumerate()
                .map(|(i, s)| task(FamilyId::Asr, &format!("t{i}"), &format!("t{i}"), &[*s]))
                .collect();
            summarize(&ts, &[FamilyId::Asr], &|_| 1.0).families[0].score
        };
        let near = |a: f64, b: f64| (a - b).abs() < 1e-6;
        // Ten of ten right: Wilson [0.722, 1], not [1, 1].
        let all = family(&[1.0; 10]);
        assert_eq!(all.mean, 1.0);
        assert!(near(all.ci_low.unwrap(), 0.722_460), "{all:?}");
        assert_eq!(all.ci_high, Some(1.0));
        assert!(all.se.unwrap() > 0.0);
        // None right: [0, 0.278].
        let none = family(&[0.0; 10]);
        assert_eq!(none.ci_low, Some(0.0));
        assert!(near(none.ci_high.unwrap(), 1.0 - 0.722_460), "{none:?}");
        // Ten of twenty: [0.299, 0.701], and the SE is its half-width / 1.96.
        let half: Vec<f64> = (0..20).map(|i| f64::from(i % 2)).collect();
        let h = family(&half);
        assert!(near(h.ci_low.unwrap(), 0.299_295), "{h:?}");
        assert!(near(h.ci_high.unwrap(), 0.700_705), "{h:?}");
        assert!(near(h.se.unwrap(), 0.200_705 / Z95), "{h:?}");
        // All equal but fractional: no spread in the sample is not certainty either.
        let flat = family(&[0.5; 6]);
        assert!(
            flat.ci_low.unwrap() < 0.5 && flat.ci_high.unwrap() > 0.5,
            "{flat:?}"
        );
        // Wilson by hand: 3 of 10.
        let (lo, hi) = wilson(3.0, 10.0).unwrap();
        assert!(near(lo, 0.107_789) && near(hi, 0.603_227));
        assert_eq!(wilson(0.0, 0.0), None);
    }

    #[test]
    fn a_single_task_has_no_interval() {
        let ts = vec![task(FamilyId::Msga, "a", "a", &[1.0])];
        let s = summarize(&ts, &[FamilyId::Msga], &|_| 1.0);
        assert_eq!(s.families[0].score.se, None);
        assert_eq!(s.v_score.score.se, None);
        assert_eq!(s.v_score.score.ci_low, None);
    }

    #[test]
    fn paired_comparison_by_hand() {
        let a = vec![
            task(FamilyId::Msga, "t1", "t1", &[0.0]),
            task(FamilyId::Msga, "t2", "t2", &[0.0]),
            task(FamilyId::Msga, "t3", "t3", &[1.0]),
            task(FamilyId::Msga, "only-a", "only-a", &[1.0]),
        ];
        let b = vec![
            task(FamilyId::Msga, "t1", "t1", &[1.0]),
            task(FamilyId::Msga, "t2", "t2", &[1.0]),
            task(FamilyId::Msga, "t3", "t3", &[1.0]),
        ];
        let c = compare("A", &a, "B", &b, &|_| 1.0);
        // d = 1, 1, 0: mean 2/3, s² = 1/3, SE = √(1/9) = 1/3; CI 0.667 ± 0.653 → excludes 0.
        let f = &c.families[0];
        assert_eq!(f.pairs, 3);
        assert!(close(f.diff.mean, 2.0 / 3.0));
        assert!(close(f.diff.se.unwrap(), 1.0 / 3.0));
        assert_eq!(f.significant, Some(true));
        assert_eq!(c.unpaired, 1);
        assert!(close(c.overall.mean, 2.0 / 3.0));
        // Identical runs: zero difference, not significant.
        let same = compare("A", &a, "A", &a, &|_| 1.0);
        assert!(close(same.overall.mean, 0.0));
        assert_eq!(same.significant, Some(false));
    }
}
