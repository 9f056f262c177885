//! The tables `veyra bench` prints: a run's (by family, with the V-Score line) and a
//! comparison's (B − A, paired by task).

use crate::benchmarks::stats::{self, Comparison, Estimate, RunSummary};
use crate::benchmarks::store::RunInfo;

/// The ± of an estimate's 95 % interval and the interval itself, as table cells.
pub(super) fn estimate_cells(e: &Estimate) -> (String, String) {
    let pm = match e.se {
        Some(se) => format!("{:.3}", stats::Z95 * se),
        None => "n/a".to_string(),
    };
    let ci = match (e.ci_low, e.ci_high) {
        (Some(l), Some(h)) => format!("[{l:.3}, {h:.3}]"),
        _ => "n/a (fewer than 2)".to_string(),
    };
    (pm, ci)
}

/// The V-Score line: never without its interval, or why there is none.
pub fn v_score_line(summary: &RunSummary) -> String {
    let v = &summary.v_score.score;
    match (v.se, v.ci_low, v.ci_high) {
        (Some(se), Some(l), Some(h)) => format!(
            "V-Score {:.3} ± {:.3} (95% CI {l:.3} to {h:.3})\n",
            v.mean,
            stats::Z95 * se
        ),
        _ => format!(
            "V-Score {:.3} (95% CI unavailable: a family has fewer than 2 tasks or clusters; run \
             more tasks)\n",
            v.mean
        ),
    }
}

fn header(run: &RunInfo) -> String {
    let families: Vec<&str> = run.families.iter().map(|f| f.name()).collect();
    format!(
        "run {} · {} · {}\n{} × {} {} · seed {} · {} epoch{} · {}/{}\n",
        run.id,
        run.status.name(),
        run.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        families.join(","),
        run.count,
        run.difficulty,
        run.seed,
        run.epochs,
        if run.epochs == 1 { "" } else { "s" },
        run.backend,
        run.model,
    )
}

/// The result table of a run.
pub fn run_table(run: &RunInfo, summary: &RunSummary) -> String {
    let mut out = header(run);
    out.push_str(&format!(
        "{:<6} {:>6} {:>7} {:>7}  {:<17} {:>9} {:>10} {:>6}\n",
        "family", "n", "score", "±95%", "95% CI", "task time", "tokens", "errors"
    ));
    for f in &summary.families {
        let (pm, ci) = estimate_cells(&f.score);
        out.push_str(&format!(
            "{:<6} {:>6} {:>7.3} {:>7}  {:<17} {:>9} {:>10} {:>6}\n",
            f.family.name(),
            f.n,
            f.score.mean,
            pm,
            ci,
            format!("{:.1} s", f.latency_ms as f64 / 1000.0),
            f.tokens_in + f.tokens_out,
            f.errors
        ));
    }
    for f in &summary.families {
        if let (Some(c), Some(k)) = (f.consistency, f.clusters) {
            out.push_str(&format!(
                "{} consistency {c:.3}: share of its {k} clusters answered right in every variant\n",
                f.family.name()
            ));
        }
    }
    out.push_str(&v_score_line(summary));
    out
}

fn significance(s: Option<bool>) -> &'static str {
    match s {
        Some(true) => "yes",
        Some(false) => "no",
        None => "n/a",
    }
}

/// The text of a comparison.
pub fn comparison_table(c: &Comparison, a: &RunInfo, b: &RunInfo) -> String {
    let mut out = format!(
        "B − A, paired by task: A = {} ({}/{}), B = {} ({}/{})\n",
        a.id, a.backend, a.model, b.id, b.backend, b.model
    );
    out.push_str(&format!(
        "{:<8} {:>6} {:>8}  {:<19} {}\n",
        "family", "pairs", "Δ mean", "95% CI", "excludes 0"
    ));
    for f in &c.families {
        let (_, ci) = estimate_cells(&f.diff);
        out.push_str(&format!(
            "{:<8} {:>6} {:>+8.3}  {:<19} {}\n",
            f.family.name(),
            f.pairs,
            f.diff.mean,
            ci,
            significance(f.significant)
        ));
    }
    let (_, ci) = estimate_cells(&c.overall);
    out.push_str(&format!(
        "{:<8} {:>6} {:>+8.3}  {:<19} {}\n",
        "overall",
        c.families.iter().map(|f| f.pairs).sum::<usize>(),
        c.overall.mean,
        ci,
        significance(c.significant)
    ));
    if c.unpaired > 0 {
        out.push_str(&format!(
            "{} finished tasks had no partner in the other run and were left out\n",
            c.unpaired
        ));
    }
    out
}
