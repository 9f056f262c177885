//! Eval suites' runs in the benchmark store, beside the families' and in the same file:
//! `suite_runs` (what ran: the suite's name, version, file and digest, the backend and model,
//! where it stands, its summary) and `suite_results` (one row per finished sample, committed as
//! it finishes). The tables came without a schema version of their own: an older Veyra opens
//! the store and does not see them.
//!
//! A run is resumed from the same file (its digest must match: a changed file is a different
//! suite), its finished samples kept; two runs of one suite are compared sample by sample.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{BenchStore, RunStatus, to_i64, to_u64};
use crate::benchmarks::framework::BenchError;
use crate::benchmarks::suite::{SampleResult, SuiteSummary};

/// The suite tables (created with the others, `IF NOT EXISTS`).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS suite_runs (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    source TEXT NOT NULL,
    map TEXT NOT NULL,
    total INTEGER NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    veyra_version TEXT NOT NULL,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS suite_results (
    run_id TEXT NOT NULL REFERENCES suite_runs(id),
    ord INTEGER NOT NULL,
    sample_id TEXT NOT NULL,
    score REAL NOT NULL,
    reason TEXT NOT NULL,
    answer TEXT,
    output TEXT NOT NULL,
    error TEXT,
    latency_ms INTEGER NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (run_id, sample_id)
);
";

/// What a suite run is: the suite, where it came from, and where the run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteRunInfo {
    /// The run's id (`YYYYMMDD-HHMMSS-xxxxxxxx`, as a family run's).
    pub id: String,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it last finished (completed or cancelled).
    pub finished_at: Option<DateTime<Utc>>,
    /// Where it stands.
    pub status: RunStatus,
    /// The suite's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The SHA-256 of its file, as read.
    pub digest: String,
    /// The file, as named.
    pub source: String,
    /// The `--map` it was read with (empty without one): part of what the suite is.
    pub map: String,
    /// Samples the run takes (`--count` may take the first few).
    pub total: u64,
    /// Backend that answered.
    pub backend: String,
    /// Model that answered.
    pub model: String,
    /// The configuration's hash (`runner::config_hash`).
    pub config_hash: String,
    /// The Veyra that ran it.
    pub veyra_version: String,
}

/// One sample's row, with its place in the suite.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSample {
    /// Its index in the suite's file order.
    pub ord: usize,
    /// The result.
    pub result: SampleResult,
}

type RawSuiteRun = (
    String,
    String,
    Option<String>,
    String,
    [String; 5],
    i64,
    [String; 4],
    Option<String>,
);

fn raw_suite_run(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawSuiteRun> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        [
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
        ],
        row.get(9)?,
        [row.get(10)?, row.get(11)?, row.get(12)?, row.get(13)?],
        row.get(14)?,
    ))
}

const COLUMNS: &str = "id, created_at, finished_at, status, name, version, digest, source, map, \
                       total, backend, model, config_hash, veyra_version, summary";

impl BenchStore {
    /// Records a new suite run.
    pub fn create_suite_run(&self, info: &SuiteRunInfo) -> Result<(), BenchError> {
        self.lock()
            .execute(
                "INSERT INTO suite_runs (id, created_at, finished_at, status, name, version, \
                 digest, source, map, total, backend, model, config_hash, veyra_version, \
                 summary) VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
                 NULL)",
                params![
                    info.id,
                    info.created_at.to_rfc3339(),
                    info.status.name(),
                    info.name,
                    info.version,
                    info.digest,
                    info.source,
                    info.map,
                    to_i64(info.total),
                    info.backend,
                    info.model,
                    info.config_hash,
                    info.veyra_version,
                ],
            )
            .map_err(|e| self.err("recording the suite run", e))?;
        Ok(())
    }

    /// Records finished samples, in one transaction.
    pub fn record_samples(&self, run_id: &str, samples: &[StoredSample]) -> Result<(), BenchError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(|e| self.err("starting a transaction", e))?;
        for s in samples {
            let r = &s.result;
            tx.execute(
                "INSERT OR REPLACE INTO suite_results (run_id, ord, sample_id, score, reason, \
                 answer, output, error, latency_ms, finished_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    run_id,
                    to_i64(s.ord as u64),
                    r.id,
                    r.score,
                    r.reason,
                    r.answer,
                    r.output,
                    r.error,
                    to_i64(r.latency_ms),
                    Utc::now().to_rfc3339(),
                ],
            )
            .map_err(|e| self.err("recording a sample", e))?;
        }
        tx.commit()
            .map_err(|e| self.err("committing the samples", e))
    }

    /// Marks a suite run finished (complete or cancelled) with its summary.
    pub fn finish_suite_run(
        &self,
        run_id: &str,
        status: RunStatus,
        summary: &SuiteSummary,
    ) -> Result<(), BenchError> {
        let summary =
            serde_json::to_string(summary).map_err(|e| self.err("encoding the summary", e))?;
        self.lock()
            .execute(
                "UPDATE suite_runs SET status = ?2, finished_at = ?3, summary = ?4 WHERE id = ?1",
                params![run_id, status.name(), Utc::now().to_rfc3339(), summary],
            )
            .map_err(|e| self.err("finishing the suite run", e))?;
        Ok(())
    }

    /// Marks a suite run running again (resumed).
    pub fn reopen_suite_run(&self, run_id: &str) -> Result<(), BenchError> {
        self.lock()
            .execute(
                "UPDATE suite_runs SET status = ?2 WHERE id = ?1",
                params![run_id, RunStatus::Running.name()],
            )
            .map_err(|e| self.err("reopening the suite run", e))?;
        Ok(())
    }

    /// Every suite run, newest first, with its summary (none while running).
    pub fn suite_runs(&self) -> Result<Vec<(SuiteRunInfo, Option<SuiteSummary>)>, BenchError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM suite_runs ORDER BY created_at DESC, id DESC"
            ))
            .map_err(|e| self.err("listing suite runs", e))?;
        let rows = stmt
            .query_map([], raw_suite_run)
            .map_err(|e| self.err("listing suite runs", e))?;
        let mut out = Vec::new();
        // A damaged row is left out (and said in the log), so that it cannot hide every
        // other run, the families' included.
        for row in rows {
            match row
                .map_err(|e| self.err("reading a suite run", e))
                .and_then(|raw| self.decode_suite_run(raw))
            {
                Ok(run) => out.push(run),
                Err(e) => {
                    tracing::warn!(error = %e, "a suite run in the store is damaged; left out")
                }
            }
        }
        Ok(out)
    }

    /// The suite run `id`, exactly.
    pub fn suite_run(
        &self,
        id: &str,
    ) -> Result<Option<(SuiteRunInfo, Option<SuiteSummary>)>, BenchError> {
        let raw = self
            .lock()
            .query_row(
                &format!("SELECT {COLUMNS} FROM suite_runs WHERE id = ?1"),
                params![id],
                raw_suite_run,
            )
            .optional()
            .map_err(|e| self.err("reading the suite run", e))?;
        raw.map(|r| self.decode_suite_run(r)).transpose()
    }

    /// A suite run's finished samples, in suite order.
    pub fn suite_samples(&self, run_id: &str) -> Result<Vec<StoredSample>, BenchError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT ord, sample_id, score, reason, answer, output, error, latency_ms \
                 FROM suite_results WHERE run_id = ?1 ORDER BY ord",
            )
            .map_err(|e| self.err("reading samples", e))?;
        let rows = stmt
            .query_map(params![run_id], |row| {
                Ok(StoredSample {
                    ord: usize::try_from(to_u64(row.get::<_, i64>(0)?)).unwrap_or(usize::MAX),
                    result: SampleResult {
                        id: row.get(1)?,
                        score: row.get(2)?,
                        reason: row.get(3)?,
                        answer: row.get(4)?,
                        output: row.get(5)?,
                        error: row.get(6)?,
                        latency_ms: to_u64(row.get(7)?),
                    },
                })
            })
            .map_err(|e| self.err("reading samples", e))?;
        let mut out = Vec::new();
        for row in rows {
            let s = row.map_err(|e| self.err("reading a sample", e))?;
            if !(0.0..=1.0).contains(&s.result.score) {
                return Err(self.err(
                    "reading a sample",
                    format!(
                        "sample '{}' of run {run_id} has score {}, outside 0 to 1",
                        crate::sanitize::quote(&s.result.id),
                        s.result.score
                    ),
                ));
            }
            out.push(s);
        }
        Ok(out)
    }

    fn decode_suite_run(
        &self,
        raw: RawSuiteRun,
    ) -> Result<(SuiteRunInfo, Option<SuiteSummary>), BenchError> {
        let (
            id,
            created,
            finished,
            status,
            [name, version, digest, source, map],
            total,
            rest,
            summary,
        ) = raw;
        let [backend, model, config_hash, veyra_version] = rest;
        let bad = |field: &str, e: String| {
            self.err(
                "reading a suite run",
                format!("run {id}: field {field}: {e}"),
            )
        };
        let time = |field: &str, t: &str| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| bad(field, e.to_string()))
        };
        let info = SuiteRunInfo {
            created_at: time("created_at", &created)?,
            finished_at: finished
                .as_deref()
                .map(|t| time("finished_at", t))
                .transpose()?,
            status: status
                .parse()
                .map_err(|_| bad("status", format!("unknown status '{status}'")))?,
            name,
            version,
            digest,
            source,
            map,
            total: to_u64(total),
            backend,
            model,
            config_hash,
            veyra_version,
            id: id.clone(),
        };
        let summary = summary
            .map(|s| serde_json::from_str(&s).map_err(|e| bad("summary", e.to_string())))
            .transpose()?;
        Ok((info, summary))
    }
}

/// A run of either kind, as a user names it.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyRun {
    /// A run of the built-in families.
    Families(super::RunInfo),
    /// A run of an eval suite.
    Suite(SuiteRunInfo),
}

impl BenchStore {
    /// The run a user names, of either kind: its id, a unique prefix, or `last` (the newest
    /// of all). The error lists the newest runs.
    pub fn resolve_any(&self, name: &str) -> Result<AnyRun, BenchError> {
        let name = name.trim();
        let families = self.runs()?;
        let suites = self.suite_runs()?;
        let mut all: Vec<(DateTime<Utc>, String, AnyRun)> = families
            .into_iter()
            .map(|(r, _)| (r.created_at, r.id.clone(), AnyRun::Families(r)))
            .chain(
                suites
                    .into_iter()
                    .map(|(r, _)| (r.created_at, r.id.clone(), AnyRun::Suite(r))),
            )
            .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
        let found: Vec<&AnyRun> = super::read::named(name, &all, |r| &r.1)
            .into_iter()
            .map(|r| &r.2)
            .collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => {
                let recent: Vec<&str> = all.iter().take(5).map(|r| r.1.as_str()).collect();
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
                "'{}' matches {} runs; give more of the id",
                crate::sanitize::quote(name),
                many.len()
            ))),
        }
    }
}
