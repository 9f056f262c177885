//! Past runs: `veyra bench list`, `show RUN` and `compare A B`, from the store, as tables or
//! JSON.

use std::path::Path;

use super::tables::{comparison_table, run_table};
use super::{existing_store, json_pretty, no_runs, print_all};
use crate::benchmarks::FamilyId;
use crate::benchmarks::export;
use crate::benchmarks::stats::{self, Estimate};
use crate::benchmarks::store::{AnyRun, RunInfo, SuiteRunInfo};
use crate::error::{ExitCode, VeyraError};

/// `veyra bench list`: every run, newest first.
pub(super) fn bench_list(path: &Path, json: bool) -> Result<ExitCode, VeyraError> {
    let (runs, suites) = match existing_store(path)? {
        Some(store) => (store.runs()?, store.suite_runs()?),
        None => (Vec::new(), Vec::new()),
    };
    if json {
        #[derive(serde::Serialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        enum Line<'a> {
            Families {
                #[serde(flatten)]
                run: &'a RunInfo,
                v_score: Option<&'a Estimate>,
            },
            Suite {
                #[serde(flatten)]
                run: &'a SuiteRunInfo,
                score: Option<&'a Estimate>,
            },
        }
        let mut lines: Vec<(&chrono::DateTime<chrono::Utc>, Line<'_>)> = runs
            .iter()
            .map(|(run, summary)| {
                (
                    &run.created_at,
                    Line::Families {
                        run,
                        v_score: summary.as_ref().map(|s| &s.v_score.score),
                    },
                )
            })
            .chain(suites.iter().map(|(run, summary)| {
                (
                    &run.created_at,
                    Line::Suite {
                        run,
                        score: summary.as_ref().map(|s| &s.score),
                    },
                )
            }))
            .collect();
        lines.sort_by(|a, b| b.0.cmp(a.0));
        let lines: Vec<Line<'_>> = lines.into_iter().map(|(_, l)| l).collect();
        return print_all(&crate::cli::json_lines(&lines, "a run")?);
    }
    if runs.is_empty() && suites.is_empty() {
        return print_all(&format!(
            "no benchmark runs yet in {}; start one with `veyra bench`\n",
            path.display()
        ));
    }
    // The run id starts with its UTC date and time; every family is `all`. Columns are as wide
    // as their widest value, so a list of ordinary runs fits 80 columns.
    let interval = |e: &Estimate| match (e.ci_low, e.ci_high) {
        (Some(l), Some(h)) => format!("{:.3} [{l:.3}, {h:.3}]", e.mean),
        _ => format!("{:.3} [no interval]", e.mean),
    };
    let mut dated: Vec<(chrono::DateTime<chrono::Utc>, [String; 7])> = suites
        .iter()
        .map(|(run, summary)| {
            let name = crate::sanitize::sanitize_line(&crate::sanitize::excerpt(
                &format!("suite:{}@{}", run.name, run.version),
                40,
            ))
            .into_owned();
            (
                run.created_at,
                [
                    run.id.clone(),
                    run.status.name().to_string(),
                    name,
                    run.total.to_string(),
                    "-".into(),
                    "-".into(),
                    summary
                        .as_ref()
                        .map_or("-".into(), |s| format!("suite {}", interval(&s.score))),
                ],
            )
        })
        .collect();
    dated.extend(runs.iter().map(|(run, summary)| {
        let families = if run.families == FamilyId::ALL {
            "all".to_string()
        } else {
            run.families
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(",")
        };
        let v = match summary {
            Some(s) => interval(&s.v_score.score),
            None => "-".to_string(),
        };
        (
            run.created_at,
            [
                run.id.clone(),
                run.status.name().to_string(),
                families,
                run.count.to_string(),
                run.difficulty.name().to_string(),
                run.seed.to_string(),
                v,
            ],
        )
    }));
    // Newest first, both kinds together.
    dated.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1[0].cmp(&a.1[0])));
    let rows: Vec<[String; 7]> = dated.into_iter().map(|(_, row)| row).collect();
    let head = [
        "run",
        "status",
        "families",
        "n",
        "level",
        "seed",
        "V-Score (95% CI)",
    ];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain(std::iter::once(head[i].len()))
            .max()
            .unwrap_or(0)
    };
    let w: Vec<usize> = (0..7).map(width).collect();
    let line = |r: [&str; 7]| {
        format!(
            "{:<w0$} {:<w1$} {:<w2$} {:>w3$} {:<w4$} {:>w5$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4],
            w5 = w[5],
        )
    };
    let mut out = line(head);
    for r in &rows {
        out.push_str(&line([
            r[0].as_str(),
            r[1].as_str(),
            r[2].as_str(),
            r[3].as_str(),
            r[4].as_str(),
            r[5].as_str(),
            r[6].as_str(),
        ]));
    }
    print_all(&out)
}

/// `veyra bench show RUN`: one run's table, or its document with `--json`.
pub(super) fn bench_show(path: &Path, run: &str, json: bool) -> Result<ExitCode, VeyraError> {
    let store = existing_store(path)?.ok_or_else(|| no_runs(path, run))?;
    let info = match store.resolve_any(run)? {
        AnyRun::Families(info) => info,
        AnyRun::Suite(info) => return super::suite::show(&store, &info, json),
    };
    let doc = export::from_store(&store, &info)?;
    if json {
        return print_all(&json_pretty(&doc, "the run")?);
    }
    let mut out = run_table(&doc.run, &doc.summary);
    let failed: Vec<String> = doc
        .tasks
        .iter()
        .flat_map(|t| {
            t.results
                .iter()
                .filter(|r| r.score < 1.0)
                .map(move |r| format!("  {} (epoch {}): {}", t.task.id, r.epoch, r.reason))
        })
        .collect();
    if !failed.is_empty() {
        out.push_str(&format!("{} task epochs below 1:\n", failed.len()));
        for line in failed.iter().take(20) {
            out.push_str(line);
            out.push('\n');
        }
        if failed.len() > 20 {
            out.push_str(&format!(
                "  … and {} more (see `veyra bench show {} --json`)\n",
                failed.len() - 20,
                info.id
            ));
        }
    }
    print_all(&out)
}

/// `veyra bench compare A B`: B − A, paired by task.
pub(super) fn bench_compare(
    path: &Path,
    a: &str,
    b: &str,
    json: bool,
) -> Result<ExitCode, VeyraError> {
    let store = existing_store(path)?.ok_or_else(|| no_runs(path, a))?;
    let (run_a, run_b) = match (store.resolve_any(a)?, store.resolve_any(b)?) {
        (AnyRun::Families(a), AnyRun::Families(b)) => (a, b),
        (AnyRun::Suite(a), AnyRun::Suite(b)) => return super::suite::compare(&store, &a, &b, json),
        (a, b) => {
            let id = |r: &AnyRun| match r {
                AnyRun::Families(r) => r.id.clone(),
                AnyRun::Suite(r) => r.id.clone(),
            };
            return Err(VeyraError::Usage(format!(
                "runs {} and {} are not of one kind: one ran the families, the other a suite; \
                 compare family runs with family runs, and a suite's runs with each other",
                id(&a),
                id(&b)
            )));
        }
    };
    let comparison = stats::compare(
        &run_a.id,
        &store.task_scores(&run_a.id)?,
        &run_b.id,
        &store.task_scores(&run_b.id)?,
        &|f| run_a.weight(f),
    );
    if comparison.families.is_empty() {
        return Err(VeyraError::Usage(format!(
            "runs {} and {} share no finished tasks to pair; compare runs made with the same \
             families, difficulty and seed",
            run_a.id, run_b.id
        )));
    }
    if json {
        return print_all(&json_pretty(&comparison, "the comparison")?);
    }
    print_all(&comparison_table(&comparison, &run_a, &run_b))
}
