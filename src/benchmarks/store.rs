//! The benchmark store: every run in SQLite at `<data dir>/bench.db`, beside the audit store.
//!
//! # Schema (`PRAGMA user_version = 2`)
//! - `runs(id PK, created_at, finished_at, status, families, count, difficulty, seed, epochs,
//!   weights, config_hash, backend, model, veyra_version, summary)` — `families`, `weights`
//!   and `summary` are JSON; `seed` is decimal text (a u64 does not fit SQLite's integer);
//!   times are RFC 3339 UTC.
//! - `tasks(run_id, ord, task_id, family, difficulty, cluster, prompt, system, format,
//!   expected, truth, tools, dialogue)`, primary key `(run_id, task_id)` — written once, when
//!   the run is created, so a run can be resumed or re-scored without its generator.
//!   `dialogue` is the JSON of an IMDP task's agents and rounds, NULL for other tasks; version
//!   2 added it, and opening a version-1 store adds the column.
//! - `results(run_id, task_id, epoch, output, score, reason, error, latency_ms, tokens_in,
//!   tokens_out, finished_at)`, primary key `(run_id, task_id, epoch)` — one row per finished
//!   epoch, committed as the epoch finishes (WAL, `synchronous = NORMAL`: a crash of the
//!   process keeps every row written before it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::framework::{BenchError, BenchTask, Difficulty, FamilyId};
use super::stats::{RunSummary, TaskScores};

/// The version of the store's schema.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    families TEXT NOT NULL,
    count INTEGER NOT NULL,
    difficulty TEXT NOT NULL,
    seed TEXT NOT NULL,
    epochs INTEGER NOT NULL,
    weights TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    veyra_version TEXT NOT NULL,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL REFERENCES runs(id),
    ord INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    family TEXT NOT NULL,
    difficulty TEXT NOT NULL,
    cluster TEXT NOT NULL,
    prompt TEXT NOT NULL,
    system TEXT NOT NULL,
    format TEXT NOT NULL,
    expected TEXT NOT NULL,
    truth TEXT NOT NULL,
    tools TEXT NOT NULL,
    dialogue TEXT,
    PRIMARY KEY (run_id, task_id)
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(id),
    task_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    output TEXT NOT NULL,
    score REAL NOT NULL,
    reason TEXT NOT NULL,
    error TEXT,
    latency_ms INTEGER NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (run_id, task_id, epoch)
);
";

/// Where a run stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RunStatus {
    /// Started and not finished: running now, or the process stopped (resume it).
    Running,
    /// Every task of every epoch finished.
    Complete,
    /// Cancelled by the operator; resume it to finish.
    Cancelled,
}

impl RunStatus {
    /// The name stored and shown.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// What a run is: its plan and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's id (`YYYYMMDD-HHMMSS-xxxxxxxx`).
    pub id: String,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it last finished (completed or cancelled).
    pub finished_at: Option<DateTime<Utc>>,
    /// Where it stands.
    pub status: RunStatus,
    /// Families run.
    pub families: Vec<FamilyId>,
    /// Tasks per family.
    pub count: u32,
    /// Difficulty.
    pub difficulty: Difficulty,
    /// Generator seed.
    pub seed: u64,
    /// Epochs per task.
    pub epochs: u32,
    /// V-Score weights.
    pub weights: BTreeMap<FamilyId, f64>,
    /// SHA-256 prefix of the effective configuration (RFC 8785 JSON).
    pub config_hash: String,
    /// Backend that answered.
    pub backend: String,
    /// Model that answered.
    pub model: String,
    /// Veyra's version.
    pub veyra_version: String,
}

impl RunInfo {
    /// The weight of `family` (1 when not recorded).
    pub fn weight(&self, family: FamilyId) -> f64 {
        self.weights.get(&family).copied().unwrap_or(1.0)
    }
}

/// One finished epoch of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The task.
    pub task_id: String,
    /// The epoch, from 0.
    pub epoch: u32,
    /// The model's whole answer (empty when the execution failed).
    pub output: String,
    /// Score, 0 to 1.
    pub score: f64,
    /// Why that score.
    pub reason: String,
    /// The execution's error, when it failed (scored 0).
    pub error: Option<String>,
    /// Wall time from submission to the final state, ms.
    pub latency_ms: u64,
    /// Input tokens.
    pub tokens_in: u64,
    /// Output tokens.
    pub tokens_out: u64,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
}

/// The store (see the module docs). Cheap to share behind an `Arc`; one connection, locked
/// per call.
#[derive(Debug)]
pub struct BenchStore {
    conn: Mutex<Connection>,
    path: String,
}

/// `bench.db` beside the audit store (by default `<data dir>/bench.db`).
pub fn default_path(config: &crate::config::VeyraConfig) -> PathBuf {
    let audit = config.audit_store_path();
    audit
        .parent()
        .map_or_else(|| PathBuf::from("bench.db"), |p| p.join("bench.db"))
}

/// Creates the store file `path` with mode 0600 if it is missing (SQLite then gives its WAL and
/// shared-memory files the same mode), and narrows it and its `-wal` and `-shm` files to 0600
/// if they are looser. Existing files are changed by path, never opened: closing a descriptor
/// of a database file would drop the locks SQLite holds on it in this process.
fn private_files(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(crate::fsread::OPEN_FLAGS)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        let meta = match std::fs::symlink_metadata(&file) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode();
        if meta.is_file() && mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    Ok(())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl BenchStore {
    /// Opens (creating it and its directory when missing) the store at `path`. It holds
    /// prompts and answers, so it is private whatever the configuration: a directory Veyra
    /// creates is 0700, and so is Veyra's own data directory ([`crate::config::data_dir`]) if
    /// it was looser; a directory the operator chose keeps its mode. The store and its WAL and
    /// shared-memory files are 0600 (created so, and narrowed if they were looser).
    pub fn open(path: &Path) -> Result<Self, BenchError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && (!dir.exists() || dir == crate::config::data_dir())
        {
            crate::governance::witness::private_dir(dir).map_err(|e| BenchError::Store {
                path: shown.clone(),
                message: format!(
                    "cannot create the directory {} (mode 0700): {e}; create it or point \
                     governance.store_path elsewhere",
                    dir.display()
                ),
            })?;
        }
        private_files(path).map_err(|e| BenchError::Store {
            path: shown.clone(),
            message: format!(
                "cannot make the store private (mode 0600): {e}; check the path and its \
                 permissions"
            ),
        })?;
        let conn = Connection::open(path).map_err(|e| BenchError::Store {
            path: shown.clone(),
            message: format!("cannot open: {e}; check the path and its permissions"),
        })?;
        Self::init(conn, shown)
    }

    /// A store in memory (tests, benches).
    pub fn in_memory() -> Result<Self, BenchError> {
        let conn = Connection::open_in_memory().map_err(|e| BenchError::Store {
            path: ":memory:".into(),
            message: e.to_string(),
        })?;
        Self::init(conn, ":memory:".into())
    }

    fn init(mut conn: Connection, path: String) -> Result<Self, BenchError> {
        let fail = |what: &str, e: rusqlite::Error| BenchError::Store {
            path: path.clone(),
            message: format!("{what}: {e}"),
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| fail("setting the busy timeout", e))?;
        if path != ":memory:" {
            let _: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(|e| fail("switching to WAL", e))?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| fail("setting synchronous", e))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| fail("reading the schema version", e))?;
        if version > SCHEMA_VERSION {
            return Err(BenchError::Store {
                path,
                message: format!(
                    "schema version {version} is newer than this Veyra understands \
                     ({SCHEMA_VERSION}); use a newer veyra"
                ),
            });
        }
        // Tables, the version 1 → 2 column and the version number in one transaction: a crash
        // or a second opener between them cannot leave a store that no longer opens.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| fail("starting the schema transaction", e))?;
        tx.execute_batch(SCHEMA)
            .map_err(|e| fail("creating the tables", e))?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| fail("reading the schema version", e))?;
        if version == 1 {
            // Version 1 had no dialogue column; its tasks have no dialogue (NULL).
            tx.execute_batch("ALTER TABLE tasks ADD COLUMN dialogue TEXT")
                .map_err(|e| fail("adding the dialogue column (schema 1 to 2)", e))?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| fail("writing the schema version", e))?;
        tx.commit().map_err(|e| fail("committing the schema", e))?;
        Ok(BenchStore {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The store's path (`:memory:` in memory).
    pub fn path(&self) -> &str {
        &self.path
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> BenchError {
        BenchError::Store {
            path: self.path.clone(),
            message: format!("{what}: {e}"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        match self.conn.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Records a new run and all its tasks, in one transaction.
    pub fn create_run(&self, info: &RunInfo, tasks: &[BenchTask]) -> Result<(), BenchError> {
        let json = |v: &dyn erased::Json| v.to_json().map_err(|e| self.err("encoding", e));
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(|e| self.err("starting a transaction", e))?;
        tx.execute(
            "INSERT INTO runs (id, created_at, finished_at, status, families, count, difficulty, \
             seed, epochs, weights, config_hash, backend, model, veyra_version, summary) \
             VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, NULL)",
            params![
                info.id,
                info.created_at.to_rfc3339(),
                info.status.name(),
                json(&info.families)?,
                info.count,
                info.difficulty.name(),
                info.seed.to_string(),
                info.epochs,
                json(&info.weights)?,
                info.config_hash,
                info.backend,
                info.model,
                info.veyra_version,
            ],
        )
        .map_err(|e| self.err("recording the run", e))?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO tasks (run_id, ord, task_id, family, difficulty, cluster, prompt, \
                     system, format, expected, truth, tools, dialogue) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .map_err(|e| self.err("preparing the task insert", e))?;
            for (ord, t) in tasks.iter().enumerate() {
                stmt.execute(params![
                    info.id,
                    to_i64(ord as u64),
                    t.id,
                    t.family.name(),
                    t.difficulty.name(),
                    t.cluster,
                    t.prompt,
                    t.system,
                    json(&t.format)?,
                    t.expected,
                    json(&t.truth)?,
                    json(&t.tools)?,
                    t.dialogue.as_ref().map(|d| json(d)).transpose()?,
                ])
                .map_err(|e| self.err(&format!("recording task {}", t.id), e))?;
            }
        }
        tx.commit().map_err(|e| self.err("committing the run", e))
    }

    /// Records one finished epoch (committed at once).
    pub fn record_result(&self, run_id: &str, r: &TaskResult) -> Result<(), BenchError> {
        self.record_results(run_id, std::iter::once(r))
    }

    /// Records finished epochs in one transaction (all or none), committed at once.
    pub fn record_results<'a>(
        &self,
        run_id: &str,
        results: impl IntoIterator<Item = &'a TaskResult>,
    ) -> Result<(), BenchError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(|e| self.err("starting a transaction", e))?;
        for r in results {
            Self::insert_result(&tx, run_id, r)
                .map_err(|e| self.err(&format!("recording the result of {}", r.task_id), e))?;
        }
        tx.commit()
            .map_err(|e| self.err("committing finished results", e))
    }

    fn insert_result(conn: &Connection, run_id: &str, r: &TaskResult) -> rusqlite::Result<()> {
        // Prepared once per connection: this runs for every finished item of a run.
        let mut stmt = conn.prepare_cached(
            "INSERT OR REPLACE INTO results (run_id, task_id, epoch, output, score, reason, \
                 error, latency_ms, tokens_in, tokens_out, finished_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        stmt.execute(params![
            run_id,
            r.task_id,
            r.epoch,
            r.output,
            r.score,
            r.reason,
            r.error,
            to_i64(r.latency_ms),
            to_i64(r.tokens_in),
            to_i64(r.tokens_out),
            r.finished_at.to_rfc3339(),
        ])?;
        Ok(())
    }

    /// Marks a run finished (complete or cancelled) with its summary.
    pub fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        summary: &RunSummary,
        at: DateTime<Utc>,
    ) -> Result<(), BenchError> {
        let summary = serde_json::to_string(summary).map_err(|e| self.err("encoding", e))?;
        self.lock()
            .execute(
                "UPDATE runs SET status = ?2, finished_at = ?3, summary = ?4 WHERE id = ?1",
                params![run_id, status.name(), at.to_rfc3339(), summary],
            )
            .map_err(|e| self.err("finishing the run", e))?;
        Ok(())
    }

    /// Marks a run running again (on resume).
    pub fn reopen_run(&self, run_id: &str) -> Result<(), BenchError> {
        self.lock()
            .execute(
                "UPDATE runs SET status = 'running' WHERE id = ?1",
                params![run_id],
            )
            .map_err(|e| self.err("reopening the run", e))?;
        Ok(())
    }

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
        let found: Vec<&RunInfo> = if name == "last" {
            runs.first().map(|r| &r.0).into_iter().collect()
        } else if let Some(exact) = runs.iter().find(|r| r.0.id == name) {
            vec![&exact.0]
        } else if name.is_empty() {
            Vec::new()
        } else {
            runs.iter()
                .filter(|r| r.0.id.starts_with(name))
                .map(|r| &r.0)
                .collect()
        };
        match found.as_slice() {
            [one] => Ok((*one).clone()),
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

/// JSON encoding of the column values, behind one object-safe trait.
mod erased {
    /// A value stored as JSON text.
    pub trait Json {
        fn to_json(&self) -> serde_json::Result<String>;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> serde_json::Result<String> {
            serde_json::to_string(self)
        }
    }
}

#[cfg(test)]
mod tests;
