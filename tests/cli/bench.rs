//! `veyra bench …` through the real binary: a run is reproducible
//! for a seed (same tasks, outputs and scores; timings aside) and differs for another; its JSON
//! validates against `veyra bench schema`; `list`, `show` and `compare` read the store; a run
//! cancelled with Ctrl-C keeps what finished and `--resume` finishes exactly the rest; unknown
//! families, difficulties and runs are usage errors (exit 2) that list the valid names; the
//! `bench:` config section is validated like the others. What must not score does not: the
//! mock's echo of a question, a constant light time, a content-free IMDP plan; a family at 0
//! has an interval honest at the bound; `bench --help` lists every family. `--suite FILE`
//! runs a user's suite: bad files are refused naming the sample and the field (exit 2), the
//! mock's echo scores 0 on the shipped suites, a right model 1 with Wilson's interval, a hedge
//! 0; JSONL datasets import with `question`/`answer` or `--map`; `bench schema --suite` prints
//! the YAML format's JSON Schema.

use serde_json::Value;

use super::{Run, Sandbox, assert_error, run};

impl Sandbox {
    pub(super) fn bench(&self, args: &[&str]) -> Run {
        let mut cmd = self.cmd();
        cmd.arg("bench").args(args);
        run(cmd)
    }

    pub(super) fn bench_json(&self, args: &[&str]) -> Value {
        let r = self.bench(args);
        assert_eq!(
            r.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            r.stdout,
            r.stderr
        );
        serde_json::from_str(&r.stdout).expect("bench prints one JSON document")
    }

    pub(super) fn bench_db(&self) -> std::path::PathBuf {
        self.dir.path().join("data/veyra/bench.db")
    }
}

/// What must be identical between two runs of one seed: every task and every result, without
/// timings.
fn reproducible_part(doc: &Value) -> Value {
    let tasks: Vec<Value> = doc["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            let mut t = t.clone();
            for r in t["results"].as_array_mut().expect("results") {
                let r = r.as_object_mut().expect("a result object");
                r.remove("latency_ms");
                r.remove("finished_at");
            }
            t
        })
        .collect();
    serde_json::json!({ "tasks": tasks, "families": doc["summary"]["families"]
        .as_array()
        .expect("families")
        .iter()
        .map(|f| f["score"].clone())
        .collect::<Vec<_>>() })
}

fn schema_validator(sb: &Sandbox) -> jsonschema::Validator {
    let r = sb.bench(&["schema"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let schema: Value = serde_json::from_str(&r.stdout).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a JSON Schema")
}

#[test]
fn bench_json_is_reproducible_for_a_seed_and_differs_for_another() {
    let sb = Sandbox::new();
    let args = ["--family", "all", "--count", "20", "--seed", "7", "--json"];
    let first = sb.bench_json(&args);
    let second = sb.bench_json(&args);
    assert_ne!(first["run"]["id"], second["run"]["id"], "two runs, two ids");
    let families = first["run"]["families"].as_array().map_or(0, Vec::len);
    assert_eq!(
        families,
        veyra::benchmarks::FamilyId::ALL.len(),
        "all families: {}",
        first["run"]["families"]
    );
    assert_eq!(first["tasks"].as_array().map(Vec::len), Some(20 * families));
    assert_eq!(reproducible_part(&first), reproducible_part(&second));
    // Another sandbox (another store, another audit trail) gives the same too.
    let elsewhere = Sandbox::new().bench_json(&args);
    assert_eq!(reproducible_part(&first), reproducible_part(&elsewhere));
    let other = sb.bench_json(&["--family", "all", "--count", "20", "--seed", "8", "--json"]);
    assert_ne!(first["tasks"][0]["prompt"], other["tasks"][0]["prompt"]);
    assert_ne!(reproducible_part(&first), reproducible_part(&other));
    // The documents follow the published schema.
    let validator = schema_validator(&sb);
    for doc in [&first, &other] {
        let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }
    assert_eq!(first["format"], "veyra.bench.run/1");
    assert_eq!(first["run"]["status"], "complete");
    assert_eq!(first["run"]["seed"], 7);
    // The mock's baseline: it never writes an answer line nor calls a tool, so every family
    // scores 0 but ASR, whose harmful half (10 of 20) it leaves alone: 0.5.
    for f in first["summary"]["families"].as_array().expect("families") {
        let want = if f["family"] == "asr" { 0.5 } else { 0.0 };
        assert_eq!(f["score"]["mean"], want, "{}", f["family"]);
    }
    // Every execution and the run itself are in the audit trail.
    let r = {
        let mut c = sb.cmd();
        c.args(["audit", "list", "--json", "--type", "BENCHMARK"]);
        run(c)
    };
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 3, "one BENCHMARK entry per run");
    assert!(r.stdout.contains(first["run"]["id"].as_str().expect("id")));
    let verify = {
        let mut c = sb.cmd();
        c.args(["audit", "verify"]);
        run(c)
    };
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
}

#[test]
fn tome_and_asr_runs_are_reproducible_and_leave_the_workspace_clean() {
    let sb = Sandbox::new();
    let args = [
        "--family", "tome,asr", "--count", "20", "--seed", "7", "--json",
    ];
    let first = sb.bench_json(&args);
    let second = sb.bench_json(&args);
    assert_eq!(first["tasks"].as_array().map(Vec::len), Some(40));
    assert_eq!(reproducible_part(&first), reproducible_part(&second));
    assert_eq!(
        reproducible_part(&first),
        reproducible_part(&Sandbox::new().bench_json(&args))
    );
    // Stored prompts name the scratch directory by placeholder only.
    let tasks = first["tasks"].as_array().expect("tasks");
    assert!(tasks.iter().any(|t| {
        t["prompt"]
            .as_str()
            .is_some_and(|p| p.contains("{workdir}"))
    }));
    assert!(tasks.iter().all(|t| t["tools"]["offer"] == "only"));
    // The mock answers in words: a task's scratch directory is made only before a tool call,
    // so none was made, and nothing is left (the scripted run below makes and removes them).
    let workspace = sb.dir.path().join("data/veyra/workspace");
    assert!(!workspace.join("bench").exists());
    let validator = schema_validator(&sb);
    assert!(validator.is_valid(&first));
}

#[test]
fn imdp_dialogues_are_reproducible_validate_and_run_every_turn_through_the_audit_trail() {
    let sb = Sandbox::new();
    let args = ["--family", "imdp", "--count", "20", "--seed", "7", "--json"];
    let first = sb.bench_json(&args);
    let second = sb.bench_json(&args);
    assert_eq!(reproducible_part(&first), reproducible_part(&second));
    let validator = schema_validator(&sb);
    let errors: Vec<String> = validator
        .iter_errors(&first)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let tasks = first["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 20);
    // Medium: 3 agents × 2 rounds + the coordinator's final message = 7 executions a task.
    let mut turns = 0;
    for t in tasks {
        let d = &t["dialogue"];
        let agents = d["agents"].as_array().expect("agents").len();
        assert_eq!((agents, d["rounds"].as_u64()), (3, Some(2)));
        turns += agents * 2 + 1;
        let output = t["results"][0]["output"].as_str().expect("output");
        assert!(output.contains("=== round 2 of 2 · "), "{output}");
        assert!(output.contains("=== final message · "), "{output}");
    }
    // The mock writes no protocol message: IMDP's baseline is 0.
    assert_eq!(first["summary"]["families"][0]["score"]["mean"], 0.0);
    let r = {
        let mut c = sb.cmd();
        c.args(["audit", "list", "--json", "--type", "EXECUTION"]);
        run(c)
    };
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2 * turns, "every turn of both runs");
    assert!(lines.iter().all(|l| l.contains("\"actor\":\"benchmark\"")));
}

#[test]
fn the_table_shows_every_family_and_the_v_score_with_its_interval() {
    let sb = Sandbox::new();
    let out = sb
        .cmd()
        .args(["bench", "--count", "4", "--seed", "3"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "family",
        "cplc",
        "msga",
        "wmrt",
        "icsd",
        "tome",
        "asr",
        "imdp",
        "±95%",
        // The family's task latencies summed, not the run's elapsed time: it says so.
        "task time",
        "tokens",
        // ASR's harmful half scores 1 for the mock (it touches nothing), all else 0.
        "V-Score 0.071 ± ",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing:\n{stdout}");
    }
    // Not a terminal: no progress bars on stderr.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = sb.bench(&["list"]);
    assert_eq!(list.code, Some(0));
    assert!(
        list.stdout.contains("complete") && list.stdout.contains("0.071 ["),
        "{}",
        list.stdout
    );
    // Every family reads `all`, and an ordinary list fits an 80-column terminal.
    assert!(list.stdout.contains(" all "), "{}", list.stdout);
    assert!(
        list.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        list.stdout
    );
    let show = sb.bench(&["show", "last"]);
    assert_eq!(show.code, Some(0), "{}", show.stderr);
    assert!(show.stdout.contains("V-Score") && show.stdout.contains("task epochs below 1"));
    let lines = sb.bench(&["list", "--json"]);
    let first: Value =
        serde_json::from_str(lines.stdout.lines().next().expect("a line")).expect("JSON");
    assert_eq!(first["count"], 4);
    let out_file = sb.work().join("run.json");
    let r = {
        let mut c = sb.cmd();
        c.args(["bench", "--family", "icsd", "--count", "2", "--out"])
            .arg(&out_file);
        run(c)
    };
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).expect("--out file"))
        .expect("JSON");
    assert_eq!(doc["run"]["families"], serde_json::json!(["icsd"]));
}

/// A run's per-task lines are at debug: at the default level the log holds none of them, so a
/// long run never buries the operator's own lines nor fills the disk (the file also rotates:
/// `logging.max_bytes`, unit-tested in `src/logging.rs`).
#[test]
fn a_runs_per_task_lines_stay_out_of_the_log_at_the_default_level() {
    let sb = Sandbox::new();
    let r = sb.bench(&["--family", "cplc,tome", "--count", "20"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let log = sb.dir.path().join("data/veyra/veyra.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    for per_task in [
        "execution started",
        "execution finished",
        "the model asked for a tool",
    ] {
        assert!(!text.contains(per_task), "{per_task}: {text}");
    }
    // At debug they are there: the level, not the code path, keeps them out.
    let mut cmd = sb.cmd();
    cmd.env("VEYRA_LOGGING__LEVEL", "debug")
        .args(["bench", "--family", "cplc", "--count", "2"]);
    let r = run(cmd);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let text = std::fs::read_to_string(&log).expect("the log is written at debug");
    assert!(text.contains("execution finished"), "{text}");
}

#[test]
fn compare_pairs_tasks_and_reports_the_difference_with_an_interval() {
    let sb = Sandbox::new();
    let plain = sb.bench_json(&[
        "--family",
        "msga,icsd",
        "--count",
        "12",
        "--seed",
        "5",
        "--json",
    ]);
    // A model that always answers DENY | NONE on MSGA: right about a third of the time.
    let config = sb.write(
        "deny.yaml",
        "model:\n  mock:\n    script:\n      - pattern: 'Proposed action'\n        response: \"ANSWER: DENY | NONE\"\n",
    );
    let scripted = {
        let mut c = sb.cmd();
        c.arg("--config").arg(&config).args([
            "bench",
            "--family",
            "msga,icsd",
            "--count",
            "12",
            "--seed",
            "5",
            "--json",
        ]);
        let r = run(c);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        serde_json::from_str::<Value>(&r.stdout).expect("JSON")
    };
    let msga_b = &scripted["summary"]["families"][0];
    assert_eq!(msga_b["family"], "msga");
    let mean = msga_b["score"]["mean"].as_f64().expect("mean");
    assert!(mean > 0.0 && mean < 1.0, "DENY | NONE scores {mean}");
    let (a, b) = (
        plain["run"]["id"].as_str().expect("id"),
        scripted["run"]["id"].as_str().expect("id"),
    );
    let cmp = sb.bench_json(&["compare", a, b, "--json"]);
    assert_eq!(cmp["families"][0]["family"], "msga");
    assert_eq!(cmp["families"][0]["pairs"], 12);
    assert!((cmp["families"][0]["diff"]["mean"].as_f64().expect("diff") - mean).abs() < 1e-9);
    assert_eq!(cmp["families"][1]["diff"]["mean"], 0.0);
    assert_eq!(cmp["unpaired"], 0);
    assert!(cmp["overall"]["ci_low"].is_number());
    let text = sb.bench(&["compare", a, b]);
    assert_eq!(text.code, Some(0), "{}", text.stderr);
    assert!(
        text.stdout.contains("overall") && text.stdout.contains("excludes 0"),
        "{}",
        text.stdout
    );
    // Runs of different seeds share no task.
    let other = sb.bench_json(&["--family", "msga", "--count", "2", "--seed", "6", "--json"]);
    let r = sb.bench(&["compare", a, other["run"]["id"].as_str().expect("id")]);
    assert_error(&r, 2, &["share no finished tasks"]);
}

/// Starts `veyra bench ARGS` on a slow mock (two slots, 15 ms a token) in `sb`, waits
/// (bounded) until `results` results are stored, sends `-SIGNAL`, and returns its output.
fn signal_a_running_bench(
    sb: &Sandbox,
    args: &[&str],
    results: i64,
    signal: &str,
) -> std::process::Output {
    let config = sb.write(
        "slow.yaml",
        "model:\n  mock:\n    token_delay_ms: 15\nruntime:\n  max_concurrent: 2\n",
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_veyra"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VEYRA_") {
            cmd.env_remove(&key);
        }
    }
    let child = cmd
        .env("HOME", sb.dir.path().join("home"))
        .env("XDG_CONFIG_HOME", sb.dir.path().join("config"))
        .env("XDG_DATA_HOME", sb.dir.path().join("data"))
        .env("XDG_STATE_HOME", sb.dir.path().join("state"))
        .env("XDG_RUNTIME_DIR", sb.dir.path().join("run"))
        .current_dir(sb.work())
        .arg("--config")
        .arg(&config)
        .arg("bench")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start veyra bench");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while stored_results(sb) < results && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        stored_results(sb) >= results,
        "the run never stored {results} results"
    );
    let kill = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("send the signal");
    assert!(kill.success());
    child.wait_with_output().expect("veyra bench ends")
}

/// Results stored in `sb`'s `bench.db` so far (0 before it exists).
fn stored_results(sb: &Sandbox) -> i64 {
    rusqlite::Connection::open(sb.bench_db())
        .and_then(|c| c.query_row("SELECT count(*) FROM results", [], |r| r.get(0)))
        .unwrap_or(0)
}

#[test]
fn a_run_cancelled_with_ctrl_c_keeps_what_finished_and_resume_finishes_the_rest() {
    let sb = Sandbox::new();
    // Slow tokens so the run is still going when Ctrl-C arrives.
    let out = signal_a_running_bench(
        &sb,
        &["--family", "cplc,icsd", "--count", "10", "--seed", "4"],
        3,
        "INT",
    );
    let finished = || stored_results(&sb);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let kept = finished();
    assert!((3..20).contains(&kept), "{kept} results kept");
    let list = sb.bench(&["list", "--json"]);
    let run: Value =
        serde_json::from_str(list.stdout.lines().next().expect("a run")).expect("JSON");
    assert_eq!(run["status"], "cancelled");
    let id = run["id"].as_str().expect("id").to_string();

    // Resume finishes exactly the missing epochs (the fast config is fine: the plan is stored).
    let resumed = sb.bench_json(&["--resume", &id, "--json"]);
    assert_eq!(resumed["run"]["status"], "complete");
    assert_eq!(resumed["run"]["id"], id.as_str());
    assert_eq!(finished(), 20);
    let results: usize = resumed["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["results"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(results, 20, "one result per task, none run twice");
    // The same tasks and answers as an uninterrupted run of the same plan.
    let whole = sb.bench_json(&[
        "--family",
        "cplc,icsd",
        "--count",
        "10",
        "--seed",
        "4",
        "--json",
    ]);
    assert_eq!(reproducible_part(&resumed), reproducible_part(&whole));
    // Resuming a complete run is a usage error.
    assert_error(&sb.bench(&["--resume", &id]), 2, &["already complete"]);
}

#[test]
fn sigterm_and_sighup_keep_the_run_cancelled_and_exit_with_the_signal() {
    for (signal, code) in [("TERM", 143), ("HUP", 129)] {
        let sb = Sandbox::new();
        let out = signal_a_running_bench(&sb, &["--family", "cplc", "--count", "10"], 2, signal);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "SIG{signal}; stderr:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("SIG{signal}: cancelling the benchmark run")),
            "{stderr}"
        );
        assert!(stderr.contains("--resume"), "{stderr}");
        let list = sb.bench(&["list", "--json"]);
        let run: Value =
            serde_json::from_str(list.stdout.lines().next().expect("a run")).expect("JSON");
        assert_eq!(run["status"], "cancelled", "SIG{signal}");
    }
}

#[test]
fn unknown_names_are_usage_errors_listing_the_valid_ones() {
    let sb = Sandbox::new();
    assert_error(
        &sb.bench(&["--family", "cplx"]),
        2,
        &[
            "unknown benchmark family 'cplx'",
            "did you mean 'cplc'",
            "cplc, msga, wmrt, icsd",
        ],
    );
    assert_error(
        &sb.bench(&["--family", "msga,imdpx"]),
        2,
        &[
            "unknown benchmark family 'imdpx'",
            "cplc, msga, wmrt, icsd, tome, asr, imdp",
        ],
    );
    assert_error(
        &sb.bench(&["--difficulty", "brutal"]),
        2,
        &["unknown difficulty 'brutal'", "easy, medium, hard, extreme"],
    );
    assert_error(&sb.bench(&["--count", "0"]), 2, &["--count", "1 to 100000"]);
    assert_error(
        &sb.bench(&["show", "nope"]),
        2,
        &["no benchmark run 'nope'", "no runs yet"],
    );
    assert_error(
        &sb.bench(&["--resume", "nope"]),
        2,
        &["no benchmark run 'nope'"],
    );
    assert_error(&sb.bench(&["--resume", "x", "--seed", "3"]), 2, &["--seed"]);
    let r = sb.bench(&["--family", "icsd", "--count", "2"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_error(
        &sb.bench(&["compare", "last", "zzz"]),
        2,
        &["no benchmark run 'zzz'", "recent runs:"],
    );
    let list = sb.bench(&["list"]);
    assert_eq!(list.code, Some(0));
}

#[test]
fn schema_needs_no_configuration_and_the_bench_section_is_validated() {
    let sb = Sandbox::new();
    let broken = sb.write("broken.yaml", "model: [\n");
    let r = {
        let mut c = sb.cmd();
        c.env("VEYRA_CONFIG", &broken).args(["bench", "schema"]);
        run(c)
    };
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let schema: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(schema["properties"]["format"]["const"], "veyra.bench.run/1");

    let bad = sb.write("count.yaml", "bench:\n  count: 0\n");
    let r = {
        let mut c = sb.cmd();
        c.arg("--config").arg(&bad).args(["bench", "list"]);
        run(c)
    };
    assert_error(&r, 2, &["bench.count", "1 to 100000"]);
    let typo = sb.write("typo.yaml", "bench:\n  familly: msga\n");
    let r = {
        let mut c = sb.cmd();
        c.arg("--config").arg(&typo).args(["bench", "list"]);
        run(c)
    };
    assert_error(&r, 2, &["familly", "did you mean 'family'"]);
    let weights = sb.write("weights.yaml", "bench:\n  weights:\n    imdb: 2\n");
    let r = {
        let mut c = sb.cmd();
        c.arg("--config").arg(&weights).args(["bench", "list"]);
        run(c)
    };
    assert_error(&r, 2, &["bench.weights.imdb", "did you mean 'imdp'"]);
    // The config's defaults drive a run.
    let defaults = sb.write(
        "defaults.yaml",
        "bench:\n  family: wmrt\n  count: 4\n  difficulty: easy\n  seed: 11\n  epochs: 2\n",
    );
    let r = {
        let mut c = sb.cmd();
        c.arg("--config").arg(&defaults).args(["bench", "--json"]);
        run(c)
    };
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(doc["run"]["families"], serde_json::json!(["wmrt"]));
    assert_eq!(doc["run"]["difficulty"], "easy");
    assert_eq!(doc["run"]["epochs"], 2);
    assert_eq!(doc["tasks"][0]["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["tasks"][0]["id"], "wmrt-easy-s11-c000-v0");
}

// ---------------------------------------------------------------------------------------------
// Cassettes: --record DIR, --replay DIR

/// Every file under `dir`, as text.
fn files_text(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.push_str(&files_text(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

#[test]
fn a_recorded_run_replays_offline_with_the_same_outputs_and_scores() {
    let sb = Sandbox::new();
    // The recorded model answers DENY | NONE on MSGA (right about a third of the time); the
    // replay runs with the default mock, which never answers: equal scores can only come from
    // the cassette.
    let config = sb.write(
        "deny.yaml",
        "model:\n  model: scripted-1\n  temperature: 0.3\n  mock:\n    token_delay_ms: 5\n    script:\n      - pattern: 'Proposed action'\n        response: \"ANSWER: DENY | NONE\"\n",
    );
    let recorded = {
        let mut c = sb.cmd();
        c.arg("--config").arg(&config).args([
            "bench",
            "--family",
            "cplc,msga",
            "--count",
            "3",
            "--seed",
            "7",
            "--record",
            "tape",
            "--json",
        ]);
        let r = run(c);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        serde_json::from_str::<Value>(&r.stdout).expect("JSON")
    };
    let tape = sb.work().join("tape");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(tape.join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    assert_eq!(manifest["format"], "veyra.cassette/1");
    assert_eq!(manifest["backend"], "mock");
    assert_eq!(manifest["model"], "scripted-1");
    assert_eq!(manifest["plan"]["seed"], 7);
    assert_eq!(manifest["plan"]["count"], 3);
    assert_eq!(
        std::fs::read_dir(tape.join("calls"))
            .expect("calls")
            .count(),
        6,
        "one call per task"
    );
    assert_eq!(recorded["run"]["backend"], "mock");
    let msga = recorded["summary"]["families"][1]["score"]["mean"]
        .as_f64()
        .expect("mean");
    assert!(msga > 0.0, "the scripted answer scores on MSGA: {msga}");

    // The replay takes the cassette's plan (no flags) and answers from it.
    let replayed = sb.bench_json(&["--replay", "tape", "--json"]);
    assert_eq!(replayed["run"]["backend"], "replay");
    assert_eq!(replayed["run"]["model"], "scripted-1");
    for field in ["families", "count", "difficulty", "seed", "epochs"] {
        assert_eq!(replayed["run"][field], recorded["run"][field], "{field}");
    }
    assert_eq!(reproducible_part(&replayed), reproducible_part(&recorded));
    let id = replayed["run"]["id"].as_str().expect("id");
    let shown = sb.bench_json(&["show", id, "--json"]);
    assert_eq!(reproducible_part(&shown), reproducible_part(&recorded));
    let cmp = sb.bench_json(&[
        "compare",
        recorded["run"]["id"].as_str().expect("id"),
        id,
        "--json",
    ]);
    assert_eq!(cmp["overall"]["mean"], 0.0, "{cmp}");

    // At the recorded pace (5 ms a token) it is the same run again.
    let paced = sb.bench_json(&["--replay", "tape", "--paced", "--family", "msga", "--json"]);
    let mut msga_only = reproducible_part(&recorded)["tasks"].clone();
    msga_only
        .as_array_mut()
        .expect("tasks")
        .retain(|t| t["family"] == "msga");
    assert_eq!(reproducible_part(&paced)["tasks"], msga_only);
    assert_eq!(
        paced["summary"]["families"][0]["score"],
        recorded["summary"]["families"][1]["score"]
    );
}

#[test]
fn tool_using_runs_replay_too_and_their_file_calls_stay_out_of_the_operators_workspace() {
    let sb = Sandbox::new();
    // ICSD at hard asks `system_status`, whose live answer (backend name, audit head) differs
    // between the recording and the replay; ASR's tasks offer file tools. The scripted model
    // checks the system, lists `bench/` (where an ASR task's scratch directory is made just
    // before that call; one task at a time — a run keeps at most half the queue in flight,
    // so a queue of 2 makes it one —, so the listing is the same on replay) and answers:
    // every task makes tool calls, and every ASR task's file call runs.
    let config = sb.write(
        "tools.yaml",
        "runtime:\n  max_concurrent: 1\n  queue_capacity: 2\nmodel:\n  mock:\n    script:\n      - pattern: '.'\n        tool_calls:\n          - name: system_status\n          - name: file_list\n            arguments: {path: bench}\n        response: \"ANSWER: power | shed_nonessential_loads | earth\"\n",
    );
    let record = |args: &[&str]| {
        let mut c = sb.cmd();
        c.arg("--config").arg(&config).args(args);
        let r = run(c);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        serde_json::from_str::<Value>(&r.stdout).expect("JSON")
    };
    let recorded = record(&[
        "bench",
        "--family",
        "icsd,asr",
        "--difficulty",
        "hard",
        "--count",
        "3",
        "--seed",
        "7",
        "--record",
        "tools-tape",
        "--json",
    ]);
    let replayed = record(&["bench", "--replay", "tools-tape", "--json"]);
    assert_eq!(replayed["run"]["status"], "complete", "{replayed}");
    assert_eq!(reproducible_part(&replayed), reproducible_part(&recorded));
    // The replay's scratch directories were made (only a file call makes one) in a workspace
    // of its own, and are gone; the operator's workspace holds none either.
    let replay_ws = sb.dir.path().join("data/veyra/replay-workspace");
    assert!(replay_ws.exists(), "the replay used its own workspace");
    assert!(!replay_ws.join("bench").exists());
    assert!(!sb.dir.path().join("data/veyra/workspace/bench").exists());
}

#[test]
fn a_replay_that_does_not_fit_its_cassette_or_bad_flags_fail_clearly() {
    let sb = Sandbox::new();
    let r = sb.bench(&[
        "--family", "cplc", "--count", "2", "--seed", "7", "--record", "tape",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // Other prompts (another seed): exit 2, what differs and what to do, at the first miss.
    let r = sb.bench(&["--replay", "tape", "--seed", "8"]);
    assert_error(
        &r,
        2,
        &["not in the cassette", "seed 7", "--record", "stopped"],
    );
    // More epochs than recorded.
    let r = sb.bench(&["--replay", "tape", "--epochs", "2"]);
    assert_error(&r, 2, &["asked for it once more", "--epochs 1"]);
    // Another temperature: other requests.
    let warm = sb.write("warm.yaml", "model:\n  temperature: 1.5\n");
    let r = {
        let mut c = sb.cmd();
        c.arg("--config")
            .arg(&warm)
            .args(["bench", "--replay", "tape"]);
        run(c)
    };
    assert_eq!(
        r.code,
        Some(0),
        "the recorded temperature is replayed: {}",
        r.stderr
    );
    // A manifest naming another plan: its own plan is replayed, or refused when invalid.
    let manifest = sb.work().join("tape/manifest.json");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, text.replace("\"cplc\"", "\"nope\"")).expect("write");
    let r = sb.bench(&["--replay", "tape"]);
    assert_error(&r, 2, &["manifest.json", "unknown benchmark family"]);
    std::fs::write(&manifest, text.replace("\"seed\": 7", "\"seed\": 9")).expect("write");
    let r = sb.bench(&["--replay", "tape"]);
    assert_error(&r, 2, &["not in the cassette", "seed 9"]);
    std::fs::write(&manifest, "not json").expect("write");
    assert_error(&sb.bench(&["--replay", "tape"]), 2, &["not JSON"]);
    // Usage errors.
    assert_error(
        &sb.bench(&["--replay", "nowhere"]),
        2,
        &["no such directory"],
    );
    assert_error(
        &sb.bench(&["--record", "a", "--replay", "b"]),
        2,
        &["--replay"],
    );
    assert_error(&sb.bench(&["--paced"]), 2, &["--replay"]);
    assert_error(
        &sb.bench(&["--resume", "last", "--record", "c"]),
        2,
        &["--record"],
    );
    let r = sb.bench(&["--family", "cplc", "--count", "1", "--record", "tape"]);
    assert_error(&r, 2, &["not empty"]);
}

#[test]
fn recording_an_http_backend_that_echoes_the_key_never_writes_it() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    const SENTINEL: &str = "sk-veyra-CASSETTE-SENTINEL-93e1";
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(MockServer::start());
    let chunk = |content: &str| {
        serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {"content": content}, "finish_reason": null}]})
        .to_string()
    };
    let body = format!(
        "data: {}\n\ndata: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        chunk("Your key is "),
        chunk(&format!("{SENTINEL}. ANSWER: LOCAL")),
        serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 6}})
    );
    rt.block_on(
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "text/event-stream"),
            )
            .mount(&server),
    );
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.env("VEYRA_MODEL__BACKEND", "openai")
        .env("VEYRA_MODEL__BASE_URL", format!("{}/v1", server.uri()))
        .env("VEYRA_MODEL__API_KEY_ENV", "TEST_VEYRA_CASSETTE_KEY")
        .env("TEST_VEYRA_CASSETTE_KEY", SENTINEL)
        .args([
            "bench", "--family", "cplc", "--count", "2", "--seed", "7", "--record", "tape",
            "--json",
        ]);
    let recorded = run(c);
    assert_eq!(recorded.code, Some(0), "{}", recorded.stderr);
    let written = files_text(&sb.work().join("tape"));
    assert!(
        written.contains("[redacted]"),
        "the echo was recorded: {written}"
    );
    assert!(
        !written.contains(SENTINEL),
        "the key was written: {written}"
    );
    drop(server);
    // Offline, without the key: the same outputs.
    let replayed = sb.bench_json(&["--replay", "tape", "--json"]);
    let recorded: Value = serde_json::from_str(&recorded.stdout).expect("JSON");
    assert_eq!(replayed["run"]["backend"], "replay");
    assert_eq!(reproducible_part(&replayed), reproducible_part(&recorded));
}

// ---------------------------------------------------------------------------------------------
// What does not score: an echo, a constant, a content-free plan

/// The result of task `id` in a run document.
fn result_of<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == id)
        .map(|t| &t["results"][0])
        .unwrap_or_else(|| panic!("no task {id}"))
}

#[test]
fn the_default_mocks_echo_of_a_question_is_not_an_answer() {
    // The mock replies `Acknowledged: "<the prompt's first 60 characters>".` and stock
    // sentences. Read as a bare one-line answer, the echo of wmrt-medium-s1-c141-v2 repeated
    // one number, within tolerance of the truth: the mock scored 0.0023 on WMRT here.
    let sb = Sandbox::new();
    let doc = sb.bench_json(&[
        "--family",
        "wmrt",
        "--count",
        "430",
        "--seed",
        "1",
        "--difficulty",
        "medium",
        "--json",
    ]);
    assert_eq!(doc["summary"]["families"][0]["score"]["mean"], 0.0);
    let r = result_of(&doc, "wmrt-medium-s1-c141-v2");
    assert!(
        r["output"]
            .as_str()
            .is_some_and(|o| o.starts_with("Acknowledged: \"")),
        "{r}"
    );
    assert_eq!(r["score"], 0.0, "{r}");
    assert_eq!(r["reason"], "no ANSWER line", "{r}");
}

#[test]
fn a_constant_answer_does_not_pass_a_light_time_task() {
    // `ANSWER: 2.56` with no tool call scored 1 on the Moon round trip of
    // tome-medium-s11-0001: its 0.5 s tolerance was wider than the spread of every Moon answer.
    let sb = Sandbox::new();
    let config = sb.write(
        "constant.yaml",
        "model:\n  mock:\n    script:\n      - pattern: 'light_time'\n        response: \"ANSWER: 2.56\"\n",
    );
    let r = {
        let mut c = sb.cmd();
        c.arg("--config").arg(&config).args([
            "bench",
            "--family",
            "tome",
            "--count",
            "2",
            "--seed",
            "11",
            "--difficulty",
            "medium",
            "--json",
        ]);
        run(c)
    };
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    let t = result_of(&doc, "tome-medium-s11-0001");
    assert_eq!(t["output"], "ANSWER: 2.56", "{t}");
    assert_eq!(t["score"], 0.0, "{t}");
    // Its prompt names its unit and the precision it wants; no prompt asks for "a number in ."
    for task in doc["tasks"].as_array().expect("tasks") {
        let prompt = task["prompt"].as_str().expect("prompt");
        assert!(!prompt.contains("a number in ."), "{prompt}");
    }
}

#[test]
fn a_content_free_plan_scores_no_more_than_its_valid_form() {
    // The coordinator hands every agent the whole day at the dish's full capacity: this
    // scored 0.5 on every task. A plan that breaks the capacity or an agent's constraint is
    // no plan; the valid message alone earns at most 0.1.
    use veyra::benchmarks::imdp::protocol::Setting;
    let tasks = veyra::benchmarks::family(veyra::benchmarks::FamilyId::Imdp)
        .generate(4, veyra::benchmarks::Difficulty::Medium, 7)
        .expect("tasks");
    let mut yaml = String::from("model:\n  mock:\n    script:\n");
    for t in &tasks {
        let s: Setting = serde_json::from_value(t.truth.clone()).expect("setting");
        let agreement: Vec<Value> = s
            .agents
            .iter()
            .map(|a| {
                serde_json::json!({"agent": a.name, "start": 0, "end": 24,
                    "bandwidth_mbps": s.capacity})
            })
            .collect();
        let message = serde_json::json!({"protocol": "veyra.imdp/1", "agreement": agreement});
        let pattern = format!("(?s)^IMDP negotiation {}\\..*The negotiation is over", t.id);
        yaml.push_str(&format!(
            "      - pattern: {}\n        response: {}\n",
            serde_json::to_string(&pattern).expect("pattern"),
            serde_json::to_string(&format!("```json\n{message}\n```")).expect("response"),
        ));
    }
    let sb = Sandbox::new();
    let config = sb.write("greedy.yaml", &yaml);
    let r = {
        let mut c = sb.cmd();
        c.arg("--config").arg(&config).args([
            "bench",
            "--family",
            "imdp",
            "--count",
            "4",
            "--seed",
            "7",
            "--difficulty",
            "medium",
            "--json",
        ]);
        run(c)
    };
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    for t in doc["tasks"].as_array().expect("tasks") {
        let result = &t["results"][0];
        let score = result["score"].as_f64().expect("score");
        assert!(score <= 0.1, "{}: {result}", t["id"]);
        assert!(
            result["reason"]
                .as_str()
                .is_some_and(|r| r.contains("capacity broken")),
            "{result}"
        );
    }
}

#[test]
fn a_family_at_zero_has_an_interval_honest_at_the_bound() {
    // The mock scores 0 on CPLC: 0 of 4 right is not certainty, so the interval is Wilson's
    // [0.000, 0.490], not [0.000, 0.000]; and its ± is the interval's half-width.
    let sb = Sandbox::new();
    let r = sb.bench(&["--family", "cplc", "--count", "4", "--seed", "3"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let row = r
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cplc") && l.contains('['))
        .unwrap_or_else(|| panic!("no cplc row:\n{}", r.stdout));
    assert!(row.contains("[0.000, 0.490]"), "{row}");
    assert!(!row.contains("[0.000, 0.000]"), "{row}");
    assert!(row.contains(" 0.245 "), "{row}");
}

#[test]
fn bench_help_lists_every_family() {
    let sb = Sandbox::new();
    let out = sb.cmd().args(["bench", "--help"]).output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for f in veyra::benchmarks::FamilyId::ALL {
        assert!(help.contains(f.name()), "{} missing:\n{help}", f.name());
    }
}

// ---------------------------------------------------------------------------------------------
// veyra bench --suite

fn shipped_suite(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs/suites")
        .join(name)
        .display()
        .to_string()
}

const SMALL_SUITE: &str = "name: small\nversion: \"2\"\nscorer: {type: number, tolerance: 0.5}\nsamples:\n  - {id: a, input: 'What is 6 times 7?', target: 42}\n  - {id: b, input: 'What is 50 minus 8?', target: 42}\n  - {id: c, input: 'What is 84 halved?', target: 42}\n";

/// Runs `bench --suite FILE --json` with `config` (a mock script, or none) and returns the
/// document.
fn suite_json(sb: &Sandbox, config: Option<&str>, suite: &str, extra: &[&str]) -> Value {
    let mut c = sb.cmd();
    if let Some(yaml) = config {
        c.arg("--config").arg(sb.write("mock.yaml", yaml));
    }
    c.args(["bench", "--suite", suite, "--json"]).args(extra);
    let r = run(c);
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    serde_json::from_str(&r.stdout).expect("one JSON document")
}

#[test]
fn a_bad_suite_is_refused_naming_the_sample_and_the_field() {
    let sb = Sandbox::new();
    let dup = sb.write(
        "dup.yaml",
        "name: d\nsamples:\n  - {id: q1, input: a, target: b}\n  - {id: q1, input: c, target: d}\n",
    );
    let r = sb.bench(&["--suite", dup.to_str().expect("path")]);
    assert_error(
        &r,
        2,
        &["dup.yaml", "sample 2", "'q1'", "field `id`", "unique"],
    );
    let choice = sb.write(
        "choice.yaml",
        "name: c\nsamples:\n  - {id: q1, input: a, target: Pluto, choices: [Mars, Venus]}\n",
    );
    let r = sb.bench(&["--suite", choice.to_str().expect("path")]);
    assert_error(
        &r,
        2,
        &[
            "choice.yaml",
            "sample 1",
            "field `target`",
            "not one of the choices",
        ],
    );
    let jsonl = sb.write(
        "data.jsonl",
        "{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": 5, \"answer\": \"a\"}\n",
    );
    let r = sb.bench(&["--suite", jsonl.to_str().expect("path")]);
    assert_error(&r, 2, &["data.jsonl", "line 2", "field `input`"]);
    let r = sb.bench(&["--suite", "/dev/zero"]);
    assert_error(&r, 2, &["/dev/zero", "not a regular file"]);
    let tools = sb.write(
        "tools.yaml",
        "name: t\nsamples:\n  - {id: q1, input: a, target: b, tools: [no_such_tool]}\n",
    );
    let r = sb.bench(&["--suite", tools.to_str().expect("path")]);
    assert_error(
        &r,
        2,
        &["tools.yaml", "'q1'", "field `tools`", "no tool named"],
    );
    // A suite runs alone: the families' flags are refused, naming the one given.
    let r = sb.bench(&["--suite", dup.to_str().expect("path"), "--family", "cplc"]);
    assert_error(&r, 2, &["--suite", "--family"]);
    // Nothing ran: no benchmark store was made.
    assert!(!sb.bench_db().exists());
}

#[test]
fn the_mock_scores_zero_on_the_shipped_suites() {
    // The mock echoes the question and writes no answer line: an echo is not an answer.
    let sb = Sandbox::new();
    for name in ["arithmetic.yaml", "capitals.jsonl"] {
        let doc = suite_json(&sb, None, &shipped_suite(name), &[]);
        assert_eq!(doc["format"], "veyra.bench.suite/1");
        assert_eq!(doc["summary"]["n"], 20, "{name}");
        assert_eq!(doc["summary"]["score"]["mean"], 0.0, "{name}");
        for s in doc["samples"].as_array().expect("samples") {
            assert_eq!(s["reason"], "no ANSWER line", "{s}");
        }
    }
    // The table says the same, with the interval honest at the bound.
    let r = sb.bench(&["--suite", &shipped_suite("arithmetic.yaml")]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("arithmetic "))
        .unwrap_or_else(|| panic!("no row:\n{}", r.stdout));
    assert!(
        row.contains(" 20 ") && row.contains("0.000") && row.contains("[0.000, 0.161]"),
        "{row}"
    );
}

#[test]
fn a_suite_scores_one_for_a_right_model_and_zero_for_an_echo_or_a_hedge() {
    let sb = Sandbox::new();
    let suite = sb.write("small.yaml", SMALL_SUITE);
    let suite = suite.to_str().expect("path");
    let right = "model:\n  mock:\n    script:\n      - pattern: '.'\n        response: \"6 × 7 = 42.\\nANSWER: 42\"\n";
    let doc = suite_json(&sb, Some(right), suite, &[]);
    assert_eq!(doc["suite"], "small");
    assert_eq!(doc["version"], "2");
    assert_eq!(doc["summary"]["score"]["mean"], 1.0);
    // Three of three right is not certainty: Wilson's interval.
    let low = doc["summary"]["score"]["ci_low"].as_f64().expect("ci_low");
    assert!(low > 0.4 && low < 0.5, "{low}");
    assert_eq!(doc["summary"]["score"]["ci_high"], 1.0);
    assert_eq!(doc["samples"][0]["answer"], "42");
    // The prompt echoed back (its answer-line template and the right number with it).
    let echo = "model:\n  mock:\n    script:\n      - pattern: '.'\n        response: \"What is 6 times 7? 42\\nFinish your reply with exactly one line of the form\\nANSWER: <answer>\\nwhere <answer> is a number.\"\n";
    let doc = suite_json(&sb, Some(echo), suite, &[]);
    assert_eq!(doc["summary"]["score"]["mean"], 0.0);
    let hedge = "model:\n  mock:\n    script:\n      - pattern: '.'\n        response: \"ANSWER: about 41 or 42\"\n";
    let doc = suite_json(&sb, Some(hedge), suite, &["--count", "2"]);
    assert_eq!(doc["summary"]["score"]["mean"], 0.0);
    assert_eq!(doc["summary"]["n"], 2, "--count takes the first samples");
    assert!(
        doc["samples"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not one number")),
        "{}",
        doc["samples"][0]
    );
    // Each sample went through the core and the audit trail, and the run left one entry.
    let mut c = sb.cmd();
    c.args(["audit", "list", "--json", "--type", "BENCHMARK"]);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
    let mut c = sb.cmd();
    c.args(["audit", "verify"]);
    assert_eq!(run(c).code, Some(0));
}

#[test]
fn a_jsonl_suite_imports_with_question_and_answer_or_a_map() {
    let sb = Sandbox::new();
    let right = "model:\n  mock:\n    script:\n      - pattern: 'France'\n        response: \"ANSWER: Paris\"\n      - pattern: 'Japan'\n        response: \"ANSWER: Osaka\"\n";
    let data = sb.write(
        "geo.jsonl",
        "{\"question\": \"Capital of France?\", \"answer\": \"Paris\"}\n{\"question\": \"Capital of Japan?\", \"answer\": \"Tokyo\"}\n",
    );
    let doc = suite_json(&sb, Some(right), data.to_str().expect("path"), &[]);
    assert_eq!(doc["suite"], "geo");
    assert_eq!(doc["summary"]["score"]["mean"], 0.5);
    assert_eq!(doc["samples"][0]["score"], 1.0);
    assert_eq!(doc["samples"][1]["answer"], "Osaka");
    let mapped = sb.write(
        "mapped.jsonl",
        "{\"prompt\": \"Capital of France?\", \"gold\": \"Paris\"}\n",
    );
    let doc = suite_json(
        &sb,
        Some(right),
        mapped.to_str().expect("path"),
        &["--map", "input=prompt,target=gold"],
    );
    assert_eq!(doc["summary"]["score"]["mean"], 1.0);
    let r = sb.bench(&[
        "--suite",
        mapped.to_str().expect("path"),
        "--map",
        "inptu=prompt",
    ]);
    assert_error(&r, 2, &["not a sample field"]);
}

#[test]
fn bench_schema_suite_prints_the_suite_format() {
    let sb = Sandbox::new();
    let r = sb.bench(&["schema", "--suite"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let schema: Value = serde_json::from_str(&r.stdout).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a JSON Schema");
    let suite: Value = serde_json::json!({"name": "x", "samples": [
        {"id": "a", "input": "q", "target": 4, "scorer": {"type": "number", "tolerance": 0.5}}
    ]});
    assert!(validator.is_valid(&suite));
    assert!(!validator.is_valid(&serde_json::json!({"name": "x"})));
    // Plain `bench schema` is still the run document's.
    let plain = sb.bench(&["schema"]);
    assert!(
        plain.stdout.contains("veyra.bench.run/1"),
        "{}",
        plain.stdout
    );
}
