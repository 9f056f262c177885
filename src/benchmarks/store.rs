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
//! - `run_chunks(run_id PK, chunk)`: items to a chunk of a run whose items are solved
//!   elsewhere (the fleet), kept when its items first go out, so a resumed run cuts the same
//!   chunks whatever the version resuming it would choose. A table of its own rather than a
//!   column: a store that has it still opens in a version without it.
//! - `suite_runs` and `suite_results`: eval suites' runs (see `suites.rs`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::framework::{BenchError, BenchTask};
use super::stats::RunSummary;

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
CREATE TABLE IF NOT EXISTS run_chunks (
    run_id TEXT PRIMARY KEY REFERENCES runs(id),
    chunk INTEGER NOT NULL
);
";

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
        tx.execute_batch(suites::SCHEMA)
            .map_err(|e| fail("creating the suite tables", e))?;
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

    /// Items to a chunk of run `run_id`, solved elsewhere: the figure kept when its items
    /// first went out, else `proposed`, kept now (the first figure kept stays). A kept figure
    /// outside 1 to `max` (a newer version's, or changed outside Veyra) is refused.
    pub fn run_chunk(
        &self,
        run_id: &str,
        proposed: usize,
        max: usize,
    ) -> Result<usize, BenchError> {
        let proposed = i64::try_from(proposed.clamp(1, max)).unwrap_or(1);
        let conn = self.lock();
        conn.execute(
            "INSERT OR IGNORE INTO run_chunks (run_id, chunk) VALUES (?1, ?2)",
            params![run_id, proposed],
        )
        .map_err(|e| self.err("keeping the run's chunk size", e))?;
        let kept: i64 = conn
            .query_row(
                "SELECT chunk FROM run_chunks WHERE run_id = ?1",
                params![run_id],
                |row| row.get(0),
            )
            .map_err(|e| self.err("reading the run's chunk size", e))?;
        usize::try_from(kept)
            .ok()
            .filter(|c| (1..=max).contains(c))
            .ok_or_else(|| {
                self.err(
                    &format!("run {run_id}"),
                    format!(
                        "its items went {kept} to a chunk, and this version cuts 1 to {max}; \
                         resume it with the version that started it (or the store was changed \
                         outside Veyra)"
                    ),
                )
            })
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

mod read;
mod records;
mod suites;

pub(crate) use read::named;
pub use read::task_scores;
pub use records::{RunInfo, RunStatus, TaskResult};
pub use suites::{AnyRun, StoredSample, SuiteRunInfo};

#[cfg(test)]
mod tests;
