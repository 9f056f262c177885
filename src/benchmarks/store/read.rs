//! Reading the benchmark store back: the runs (newest first, or the one a user names), a
//! run's tasks and results, and the per-task scores statistics are computed from.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{BenchStore, RunInfo, RunStatus, TaskResult, to_u64};
use crate::benchmarks::framework::{BenchError, BenchTask};
use crate::benchmarks::stats::{RunSummary, TaskScores};

/// The runs a user's `name` names among `runs` (newest first, `id` giving each one's id): the
/// one whose id it is, else those whose id it begins (none for an empty name), or `last`, the
/// newest. One run is a match; none or several is for the caller to explain.
pub(crate) fn named<'a, T>(name: &str, runs: &'a [T], id: impl Fn(&T) -> &str) -> Vec<&'a T> {
    let name = name.trim();
    if name == "last" {
        runs.first().into_iter().collect()
    } else if let Some(exact) = runs.iter().find(|r| id(r) == name) {
        vec![exact]
    } else if name.is_empty() {
        Vec::new()
    } else {
        runs.iter().filter(|r| id(r).starts_with(name)).collect()
    }
}

impl BenchStore {
    /// Every run, newest first, with its stored summary (none while running).
    pub fn runs(&self) -> Result<Vec<(RunInfo, Option<RunSummary>)>, BenchError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, created_at, finished_at, status, families, count, difficulty, seed, \
                 epochs, weights, config_hash, backend, model, veyra_version, summary \
                 FROM runs ORDER BY created_at DESC, id DESC",
            )
            .map_err(|e| self.err("listing runs", e))?;
        let rows = stmt
            .query_map([], raw_run)
            .map_err(|e| self.err("listing runs", e))?;
        let mut out = Vec::new();
        for row in rows {
            let raw = row.map_err(|e| self.err("reading a run", e))?;
            out.push(self.decode_run(raw)?);
        }
        Ok(out)
    }

    /// The run `id`, exactly.
    pub fn run(&self, id: &str) -> Result<Option<(RunInfo, Option<RunSummary>)>, BenchError> {
        let raw = self
            .lock()
            .query_row(
                "SELECT id, created_at, finished_at, status, families, count, difficulty, seed, \
                 epochs, weights, config_hash, backend, model, veyra_version, summary \
                 FROM runs WHERE id = ?1",
                params![id],
                raw_run,
            )
            .optional()
            .map_err(|e| self.err("reading the run", e))?;
        raw.map(|r| self.decode_run(r)).transpose()
    }

    /// The run a user names: its id, a unique prefix of it, or `last` (the newest). The error
    /// lists the newest runs.
    pub fn resolve(&self, name: &str) -> Result<RunInfo, BenchError> {
        let runs = self.runs()?;
        let name = name.trim();
        let found: Vec<&RunInfo> = named(name, &runs, |r| &r.0.id)
            .into_iter()
            .map(|r| &r.0)
            .collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            // A suite's run is not resumed or read here: say how it is.
            [] if name != "last"
                && !name.is_empty()
                && let Some(suite) = self
                    .suite_runs()
                    .ok()
                    .and_then(|s| s.into_iter().find(|r| r.0.id.starts_with(name))) =>
            {
                Err(BenchError::Usage(format!(
                    "run {} is a run of the suite '{}': `veyra bench show {}` shows it, and \
                     `veyra bench --suite FILE --resume {}` resumes it",
                    suite.0.id,
                    crate::sanitize::quote(&suite.0.name),
                    suite.0.id,
                    suite.0.id
                )))
            }
            [] => {
                let recent: Vec<&str> = runs.iter().take(5).map(|r| r.0.id.as_str()).collect();
                Err(BenchError::Usage(if recent.is_empty() {
                    format!(
                        "no benchmark run '{}' in {}: there are no runs yet; start one with \
                         `veyra bench`",
                        crate::sanitize::quote(name),
                        self.path
                    )
                } else {
                    format!(
                        "no benchmark run '{}' in {}; recent runs: {} (or `last`; see `veyra \
                         bench list`)",
                        crate::sanitize::quote(name),
                        self.path,
                        recent.join(", ")
                    )
                }))
            }
            many => Err(BenchError::Usage(format!(
                "'{}' matches {} runs ({}); give more of the id",
                crate::sanitize::quote(name),
                many.len(),
                many.iter()
                    .take(5)
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The tasks of a run, in run order.
    pub fn tasks(&self, run_id: &str) -> Result<Vec<BenchTask>, BenchError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT task_id, family, difficulty, cluster, prompt, system, format, expected, \
                 truth, tools, dialogue FROM tasks WHERE run_id = ?1 ORDER BY ord",
            )
            .map_err(|e| self.err("reading tasks", e))?;
        let rows = stmt
            .query_map(params![run_id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, String>(8)?,
                    row.get::<_, String>(9)?,
                    row.get::<_, Option<String>>(10)?,
                ))
            })
            .map_err(|e| self.err("reading tasks", e))?;
        let mut out = Vec::new();
        for row in rows {
            let (
                id,
                family,
                difficulty,
                cluster,
                prompt,
                system,
                format,
                expected,
                truth,
                tools,
                dialogue,
            ) = row.map_err(|e| self.err("reading a task", e))?;
            let bad = |what: &str, e: String| self.err(&format!("task {id}: {what}"), e);
            out.push(BenchTask {
                family: family.parse().map_err(|e| bad("family", e))?,
                difficulty: difficulty.parse().map_err(|e| bad("difficulty", e))?,
                cluster,
                prompt,
                system,
                format: serde_json::from_str(&format)
                    .map_err(|e| bad("answer format", e.to_string()))?,
                expected,
                truth: serde_json::from_str(&truth).map_err(|e| bad("truth", e.to_string()))?,
                tools: serde_json::from_str(&tools).map_err(|e| bad("tools", e.to_string()))?,
                dialogue: dialogue
                    .map(|d| serde_json::from_str(&d))
                    .transpose()
                    .map_err(|e| bad("dialogue", e.to_string()))?,
                id,
            });
        }
        Ok(out)
    }

    /// The finished epochs of a run, in task order then epoch.
    pub fn results(&self, run_id: &str) -> Result<Vec<TaskResult>, BenchError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT r.task_id, r.epoch, r.output, r.score, r.reason, r.error, r.latency_ms, \
                 r.tokens_in, r.tokens_out, r.finished_at FROM results r \
                 JOIN tasks t ON t.run_id = r.run_id AND t.task_id = r.task_id \
                 WHERE r.run_id = ?1 ORDER BY t.ord, r.epoch",
            )
            .map_err(|e| self.err("reading results", e))?;
        let rows = stmt
            .query_map(params![run_id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, f64>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, Option<String>>(5)?,
                    row.get::<_, i64>(6)?,
                    row.get::<_, i64>(7)?,
                    row.get::<_, i64>(8)?,
                    row.get::<_, String>(9)?,
                ))
            })
            .map_err(|e| self.err("reading results", e))?;
        let mut out = Vec::new();
        for row in rows {
            let (task_id, epoch, output, score, reason, error, latency, tin, tout, at) =
                row.map_err(|e| self.err("reading a result", e))?;
            out.push(TaskResult {
                finished_at: parse_time(&at).map_err(|e| self.err("a result's time", e))?,
                task_id,
                epoch: u32::try_from(epoch).unwrap_or(0),
                output,
                score,
                reason,
                error,
                latency_ms: to_u64(latency),
                tokens_in: to_u64(tin),
                tokens_out: to_u64(tout),
            });
        }
        Ok(out)
    }

    /// The run's tasks with their finished epochs, as statistics take them.
    pub fn task_scores(&self, run_id: &str) -> Result<Vec<TaskScores>, BenchError> {
        let tasks = self.tasks(run_id)?;
        let results = self.results(run_id)?;
        Ok(task_scores(&tasks, &results))
    }

    fn decode_run(&self, raw: RawRun) -> Result<(RunInfo, Option<RunSummary>), BenchError> {
        let bad = |what: &str, e: String| self.err(&format!("run {}: {what}", raw.id), e);
        let info = RunInfo {
            created_at: parse_time(&raw.created_at).map_err(|e| bad("created_at", e))?,
            finished_at: raw
                .finished_at
                .as_deref()
                .map(parse_time)
                .transpose()
                .map_err(|e| bad("finished_at", e))?,
            status: raw
                .status
                .parse::<RunStatus>()
                .map_err(|_| bad("status", format!("unknown status '{}'", raw.status)))?,
            families: serde_json::from_str(&raw.families)
                .map_err(|e| bad("families", e.to_string()))?,
            count: u32::try_from(raw.count).unwrap_or(0),
            difficulty: raw.difficulty.parse().map_err(|e| bad("difficulty", e))?,
            seed: raw
                .seed
                .parse()
                .map_err(|e: std::num::ParseIntError| bad("seed", e.to_string()))?,
            epochs: u32::try_from(raw.epochs).unwrap_or(1),
            weights: serde_json::from_str(&raw.weights)
                .map_err(|e| bad("weights", e.to_string()))?,
            config_hash: raw.config_hash,
            backend: raw.backend,
            model: raw.model,
            veyra_version: raw.veyra_version,
            id: raw.id.clone(),
        };
        let summary = raw
            .summary
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| bad("summary", e.to_string()))?;
        Ok((info, summary))
    }
}

/// Groups results by task (in task order) for statistics.
pub fn task_scores(tasks: &[BenchTask], results: &[TaskResult]) -> Vec<TaskScores> {
    let mut by: BTreeMap<&str, Vec<&TaskResult>> = BTreeMap::new();
    for r in results {
        by.entry(r.task_id.as_str()).or_default().push(r);
    }
    tasks
        .iter()
        .map(|t| {
            let mut mine = by.remove(t.id.as_str()).unwrap_or_default();
            // Epoch order, whatever order the results come in (as they finished, in a run).
            mine.sort_by_key(|r| r.epoch);
            TaskScores {
                family: t.family,
                task_id: t.id.clone(),
                cluster: t.cluster.clone(),
                scores: mine.iter().map(|r| r.score).collect(),
                errors: mine.iter().filter(|r| r.error.is_some()).count() as u32,
                latency_ms: mine.iter().map(|r| r.latency_ms).sum(),
                tokens_in: mine.iter().map(|r| r.tokens_in).sum(),
                tokens_out: mine.iter().map(|r| r.tokens_out).sum(),
            }
        })
        .collect()
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("'{text}' is not an RFC 3339 time: {e}"))
}

/// A `runs` row as stored.
struct RawRun {
    id: String,
    created_at: String,
    finished_at: Option<String>,
    status: String,
    families: String,
    count: i64,
    difficulty: String,
    seed: String,
    epochs: i64,
    weights: String,
    config_hash: String,
    backend: String,
    model: String,
    veyra_version: String,
    summary: Option<String>,
}

fn raw_run(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRun> {
    Ok(RawRun {
        id: row.get(0)?,
        created_at: row.get(1)?,
        finished_at: row.get(2)?,
        status: row.get(3)?,
        families: row.get(4)?,
        count: row.get(5)?,
        difficulty: row.get(6)?,
        seed: row.get(7)?,
        epochs: row.get(8)?,
        weights: row.get(9)?,
        config_hash: row.get(10)?,
        backend: row.get(11)?,
        model: row.get(12)?,
        veyra_version: row.get(13)?,
        summary: row.get(14)?,
    })
}
