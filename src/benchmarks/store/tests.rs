use super::*;
use crate::benchmarks::family;
use crate::benchmarks::framework::{Difficulty, FamilyId};
use crate::benchmarks::stats;

fn info(id: &str, minute: u32) -> RunInfo {
    use chrono::TimeZone;
    RunInfo {
        id: id.into(),
        created_at: Utc.with_ymd_and_hms(2031, 5, 4, 10, minute, 0).unwrap(),
        finished_at: None,
        status: RunStatus::Running,
        families: vec![FamilyId::Msga],
        count: 3,
        difficulty: Difficulty::Easy,
        seed: u64::MAX,
        epochs: 1,
        weights: [(FamilyId::Msga, 2.5)].into_iter().collect(),
        config_hash: "0123456789abcdef".into(),
        backend: "mock".into(),
        model: "veyra-mock-1".into(),
        veyra_version: "0.1.0".into(),
    }
}

fn result(task: &BenchTask, epoch: u32, score: f64) -> TaskResult {
    TaskResult {
        task_id: task.id.clone(),
        epoch,
        output: format!("ANSWER: {}", task.expected),
        score,
        reason: "ok".into(),
        error: None,
        latency_ms: 12,
        tokens_in: 100,
        tokens_out: 7,
        finished_at: Utc::now(),
    }
}

#[test]
fn runs_tasks_and_results_round_trip() {
    let store = BenchStore::in_memory().unwrap();
    let tasks = family(FamilyId::Msga)
        .generate(3, Difficulty::Easy, 1)
        .unwrap();
    store.create_run(&info("r1", 0), &tasks).unwrap();
    assert_eq!(store.tasks("r1").unwrap(), tasks);
    let r = result(&tasks[1], 0, 1.0);
    store.record_result("r1", &r).unwrap();
    let back = store.results("r1").unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].task_id, r.task_id);
    assert_eq!(back[0].tokens_in, 100);
    let (run, summary) = store.run("r1").unwrap().unwrap();
    assert_eq!(run, info("r1", 0));
    assert_eq!(run.seed, u64::MAX, "a u64 seed survives SQLite");
    assert!(summary.is_none());
    let scores = store.task_scores("r1").unwrap();
    let s = stats::summarize(&scores, &run.families, &|f| run.weight(f));
    store
        .finish_run("r1", RunStatus::Complete, &s, Utc::now())
        .unwrap();
    let (run, summary) = store.run("r1").unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Complete);
    assert_eq!(summary.unwrap(), s);
}

#[test]
fn runs_resolve_by_id_prefix_or_last_and_errors_list_recent_ones() {
    let store = BenchStore::in_memory().unwrap();
    let e = store.resolve("nope").unwrap_err().to_string();
    assert!(e.contains("no runs yet"), "{e}");
    store
        .create_run(&info("20310504-100000-aaaa1111", 0), &[])
        .unwrap();
    store
        .create_run(&info("20310504-100500-aaab2222", 5), &[])
        .unwrap();
    assert_eq!(
        store.resolve("last").unwrap().id,
        "20310504-100500-aaab2222"
    );
    assert_eq!(
        store.resolve("20310504-1000").unwrap().id,
        "20310504-100000-aaaa1111"
    );
    let e = store.resolve("20310504").unwrap_err().to_string();
    assert!(e.contains("matches 2 runs"), "{e}");
    let e = store.resolve("zzz").unwrap_err().to_string();
    assert!(
        e.contains("recent runs: 20310504-100500-aaab2222, 20310504-100000-aaaa1111"),
        "{e}"
    );
    assert_eq!(store.runs().unwrap().len(), 2);
}

#[test]
fn a_crash_keeps_every_result_written_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/bench.db");
    let tasks = family(FamilyId::Icsd)
        .generate(4, Difficulty::Easy, 1)
        .unwrap();
    {
        let store = BenchStore::open(&path).unwrap();
        store.create_run(&info("r1", 0), &tasks).unwrap();
        store
            .record_result("r1", &result(&tasks[0], 0, 1.0))
            .unwrap();
        store
            .record_result("r1", &result(&tasks[2], 0, 0.5))
            .unwrap();
        // Dropped without finishing the run, as a killed process would leave it.
    }
    let store = BenchStore::open(&path).unwrap();
    let (run, _) = store.run("r1").unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Running);
    let ids: Vec<String> = store
        .results("r1")
        .unwrap()
        .into_iter()
        .map(|r| r.task_id)
        .collect();
    assert_eq!(ids, vec![tasks[0].id.clone(), tasks[2].id.clone()]);
}

#[test]
fn a_store_from_a_newer_veyra_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let e = BenchStore::open(&path).unwrap_err().to_string();
    assert!(e.contains("newer than this Veyra understands"), "{e}");
}

#[test]
fn the_default_path_is_beside_the_audit_store() {
    let mut config = crate::config::VeyraConfig::default();
    config.governance.store_path = Some("/srv/veyra/audit.db".into());
    assert_eq!(default_path(&config), PathBuf::from("/srv/veyra/bench.db"));
}

#[test]
fn dialogue_tasks_round_trip_and_a_version_1_store_gains_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let icsd = family(FamilyId::Icsd)
        .generate(2, Difficulty::Easy, 1)
        .unwrap();
    {
        // A version-1 store: the tasks table without the dialogue column, one run in it.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&SCHEMA.replace("    dialogue TEXT,\n", ""))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let t = &icsd[0];
        conn.execute(
            "INSERT INTO runs (id, created_at, status, families, count, difficulty, seed, \
             epochs, weights, config_hash, backend, model, veyra_version) VALUES ('old', \
             '2031-05-04T10:00:00+00:00', 'complete', '[\"icsd\"]', 1, 'easy', '1', 1, '{}', \
             'x', 'mock', 'm', '0.1.0')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO tasks (run_id, ord, task_id, family, difficulty, cluster, prompt, \
             system, format, expected, truth, tools) VALUES ('old', 0, ?1, 'icsd', 'easy', ?1, \
             ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                t.id,
                t.prompt,
                t.system,
                serde_json::to_string(&t.format).unwrap(),
                t.expected,
                serde_json::to_string(&t.truth).unwrap(),
                serde_json::to_string(&t.tools).unwrap(),
            ],
        )
        .unwrap();
    }
    let store = BenchStore::open(&path).unwrap();
    assert_eq!(store.tasks("old").unwrap(), vec![icsd[0].clone()]);
    let mut tasks = family(FamilyId::Imdp)
        .generate(2, Difficulty::Hard, 3)
        .unwrap();
    tasks.extend(icsd);
    assert!(tasks[0].dialogue.is_some());
    store.create_run(&info("new", 1), &tasks).unwrap();
    drop(store);
    let store = BenchStore::open(&path).unwrap();
    assert_eq!(store.tasks("new").unwrap(), tasks);
    let version: i64 = store
        .lock()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn a_batch_of_results_is_committed_whole_or_not_at_all() {
    let store = BenchStore::in_memory().unwrap();
    let tasks = family(FamilyId::Msga)
        .generate(3, Difficulty::Easy, 1)
        .unwrap();
    store.create_run(&info("r1", 0), &tasks).unwrap();
    // A NaN score is NULL to SQLite, which `score REAL NOT NULL` refuses: the second row of
    // the batch fails, and the first, already inserted, is rolled back with it.
    let bad = [result(&tasks[0], 0, 1.0), result(&tasks[1], 0, f64::NAN)];
    let err = store.record_results("r1", &bad).unwrap_err();
    assert!(err.to_string().contains(&tasks[1].id), "{err}");
    assert!(store.results("r1").unwrap().is_empty());
    let good = [result(&tasks[0], 0, 1.0), result(&tasks[2], 0, 0.5)];
    store.record_results("r1", &good).unwrap();
    let back = store.results("r1").unwrap();
    assert_eq!(back.len(), 2);
    // Read back in task order whatever order they were written in.
    assert_eq!(back[0].task_id, tasks[0].id);
    assert_eq!(back[1].task_id, tasks[2].id);
}

#[test]
fn the_store_and_its_wal_are_0600_in_a_0700_directory_even_when_they_were_looser() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/bench.db");
    let store = BenchStore::open(&path).unwrap();
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        assert_eq!(mode(Path::new(&name)), 0o600, "bench.db{suffix}");
    }
    drop(store);
    // A store left 0644 by an older Veyra is narrowed when it is opened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = BenchStore::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
}
