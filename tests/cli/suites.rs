//! Eval suites' runs in the benchmark store through the real binary: listed beside the
//! families' runs, shown, compared sample by sample, and resumed after Ctrl-C without running a
//! finished sample again (and not from a file that changed).

use serde_json::Value;

use super::{Sandbox, assert_error};

/// A six-sample suite of sums.
const SUITE: &str = "name: sums\nversion: \"1\"\nscorer: {type: number}\nsamples:\n\
  - {id: a, input: What is 1 plus 1?, target: 2}\n\
  - {id: b, input: What is 2 plus 2?, target: 4}\n\
  - {id: c, input: What is 3 plus 3?, target: 6}\n\
  - {id: d, input: What is 4 plus 4?, target: 8}\n\
  - {id: e, input: What is 5 plus 5?, target: 10}\n\
  - {id: f, input: What is 6 plus 6?, target: 12}\n";

/// A mock that answers the first `right` sums right and the rest wrong, `delay` ms a token.
fn answers(right: usize, delay: u64) -> String {
    let mut out = format!("model:\n  mock:\n    token_delay_ms: {delay}\n    script:\n");
    for n in 1..=6usize {
        let sum = if n <= right { 2 * n } else { 2 * n + 1 };
        out.push_str(&format!(
            "      - {{pattern: '{n} plus {n}', response: 'ANSWER: {sum}'}}\n"
        ));
    }
    out.push_str("runtime:\n  max_concurrent: 1\n");
    out
}

impl Sandbox {
    fn suite_run(&self, config: &str, extra: &[&str]) -> super::Run {
        let mut cmd = self.cmd();
        cmd.arg("--config")
            .arg(self.work().join(config))
            .args(["bench", "--suite"])
            .arg(self.work().join("sums.yaml"))
            .args(extra);
        super::run(cmd)
    }

    fn stored_samples(&self) -> i64 {
        rusqlite::Connection::open(self.bench_db())
            .and_then(|c| c.query_row("SELECT count(*) FROM suite_results", [], |r| r.get(0)))
            .unwrap_or(0)
    }
}

fn run_id(r: &super::Run) -> String {
    r.stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("run "))
        .expect("the table names its run")
        .to_string()
}

#[test]
fn suite_runs_are_listed_shown_and_compared_by_sample() {
    let sb = Sandbox::new();
    sb.write("sums.yaml", SUITE);
    sb.write("two.yaml", &answers(2, 0));
    sb.write("five.yaml", &answers(5, 0));
    let a = sb.suite_run("two.yaml", &[]);
    assert_eq!(a.code, Some(0), "{}", a.stderr);
    let b = sb.suite_run("five.yaml", &[]);
    assert_eq!(b.code, Some(0), "{}", b.stderr);
    let (a, b) = (run_id(&a), run_id(&b));
    let list = sb.bench(&["list"]);
    assert!(list.stdout.contains("suite:sums@1"), "{}", list.stdout);
    assert!(list.stdout.contains(&a) && list.stdout.contains(&b));
    let lines: Vec<Value> = sb
        .bench(&["list", "--json"])
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines[0]["kind"], "suite");
    assert_eq!(lines[0]["id"], b.as_str(), "newest first");
    assert!((lines[0]["score"]["mean"].as_f64().unwrap() - 5.0 / 6.0).abs() < 1e-9);
    let shown = sb.bench(&["show", &a]);
    assert!(
        shown.stdout.contains("4 samples below 1"),
        "{}",
        shown.stdout
    );
    let doc = sb.bench_json(&["show", &a, "--json"]);
    assert_eq!(doc["format"], "veyra.bench.suite/1");
    assert_eq!(doc["samples"].as_array().map_or(0, Vec::len), 6);
    let cmp = sb.bench_json(&["compare", &a, &b, "--json"]);
    assert_eq!(cmp["paired"], 6);
    assert_eq!(cmp["better"], 3);
    assert_eq!(cmp["worse"], 0);
    assert!((cmp["difference"]["mean"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    let text = sb.bench(&["compare", &a, &b]);
    assert!(
        text.stdout.contains("paired by sample id"),
        "{}",
        text.stdout
    );
    // A suite's run is resumed with its file, not as a family run.
    let r = sb.bench(&["--resume", &a]);
    assert_error(
        &r,
        2,
        &["is a run of the suite 'sums'", "--suite FILE --resume"],
    );
    // A suite's run and a family run are not compared.
    let family = sb.bench_json(&["--family", "cplc", "--count", "2", "--json"]);
    let r = sb.bench(&["compare", &a, family["run"]["id"].as_str().unwrap()]);
    assert_error(&r, 2, &["not of one kind"]);
}

#[test]
fn a_cancelled_suite_run_resumes_without_running_a_finished_sample_again() {
    let sb = Sandbox::new();
    sb.write("sums.yaml", SUITE);
    sb.write("slow.yaml", &answers(6, 40));
    let mut cmd = sb.std_cmd();
    let child = cmd
        .arg("--config")
        .arg(sb.work().join("slow.yaml"))
        .args(["bench", "--suite"])
        .arg(sb.work().join("sums.yaml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start veyra bench");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sb.stored_samples() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(sb.stored_samples() >= 2, "the run never stored two samples");
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("send the signal");
    assert!(kill.success());
    let out = child.wait_with_output().expect("veyra bench ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let kept = sb.stored_samples();
    assert!((2..6).contains(&kept), "{kept} kept");
    let list: Value =
        serde_json::from_str(sb.bench(&["list", "--json"]).stdout.lines().next().unwrap()).unwrap();
    assert_eq!(list["status"], "cancelled");
    let id = list["id"].as_str().unwrap().to_string();
    // A changed file is a different suite.
    sb.write("sums.yaml", &SUITE.replace("6 plus 6", "7 plus 7"));
    let r = sb.suite_run("slow.yaml", &["--resume", &id]);
    assert_error(&r, 2, &["a changed suite is a new run"]);
    sb.write("sums.yaml", SUITE);
    let r = sb.suite_run("slow.yaml", &["--resume", &id, "--json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["summary"]["n"], 6);
    assert_eq!(sb.stored_samples(), 6);
    // The resumed run ran exactly the samples without a result: after the cancelled run's
    // BENCHMARK entry, one finished execution per missing sample. (An answer still on the
    // simulated downlink when Ctrl-C came is lost with the cancel, so it is missing too.)
    let audit = sb.audit_json();
    let lines: Vec<&str> = audit.lines().collect();
    let first_end = lines
        .iter()
        .position(|l| l.contains("\"BENCHMARK\""))
        .expect("the cancelled run's BENCHMARK entry");
    let resumed_runs = lines[first_end + 1..]
        .iter()
        .filter(|l| {
            l.contains("\"EXECUTION\"") && l.contains("\"benchmark\"") && l.contains("\"success\"")
        })
        .count();
    assert_eq!(resumed_runs as i64, 6 - kept, "{audit}");
    // Its BENCHMARK entry names the run and what it held before.
    let entry: Value = serde_json::from_str(
        lines
            .iter()
            .rev()
            .find(|l| l.contains("\"BENCHMARK\""))
            .expect("the resumed run's entry"),
    )
    .unwrap();
    assert_eq!(entry["action"], "resume_suite");
    assert_eq!(entry["metadata"]["run_id"], id.as_str());
    assert_eq!(entry["metadata"]["finished_before"], kept);
    assert_eq!(entry["metadata"]["finished_now"], 6 - kept);
    let again = sb.suite_run("slow.yaml", &["--resume", &id]);
    assert_error(&again, 2, &["is complete"]);
}

#[test]
fn a_suite_run_is_recorded_and_replayed_offline_only_with_its_own_file() {
    let sb = Sandbox::new();
    sb.write("sums.yaml", SUITE);
    sb.write("two.yaml", &answers(2, 0));
    sb.write("five.yaml", &answers(5, 0));
    let tape = sb.work().join("tape");
    let tape_arg = tape.to_str().expect("path");
    let recorded = sb.suite_run("two.yaml", &["--record", tape_arg, "--json"]);
    assert_eq!(recorded.code, Some(0), "{}", recorded.stderr);
    let recorded: Value = serde_json::from_str(&recorded.stdout).unwrap();
    // Replayed under a mock that would answer otherwise: the cassette answers.
    let replayed = sb.suite_run("five.yaml", &["--replay", tape_arg, "--json"]);
    assert_eq!(replayed.code, Some(0), "{}", replayed.stderr);
    let replayed: Value = serde_json::from_str(&replayed.stdout).unwrap();
    assert_eq!(replayed["backend"], "replay");
    assert_eq!(replayed["summary"]["score"], recorded["summary"]["score"]);
    let scores = |doc: &Value| -> Vec<Value> {
        doc["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["score"].clone())
            .collect()
    };
    assert_eq!(scores(&replayed), scores(&recorded));
    // Another file is another suite; a family run is not a suite's.
    sb.write("sums.yaml", &SUITE.replace("6 plus 6", "7 plus 7"));
    let r = sb.suite_run("two.yaml", &["--replay", tape_arg]);
    assert_error(&r, 2, &["replay it with the file it recorded"]);
    let r = sb.bench(&["--replay", tape_arg]);
    assert_error(&r, 2, &["recorded a run of the suite 'sums'"]);
}

#[test]
fn a_replay_the_cassette_cannot_answer_stops_the_run_and_keeps_no_false_zero() {
    let sb = Sandbox::new();
    sb.write("sums.yaml", SUITE);
    sb.write("two.yaml", &answers(6, 0));
    let tape = sb.work().join("tape");
    let tape_arg = tape.to_str().expect("path");
    // Only the first three samples are recorded.
    let r = sb.suite_run("two.yaml", &["--record", tape_arg, "--count", "3"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = sb.suite_run("two.yaml", &["--replay", tape_arg]);
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    let line: Value =
        serde_json::from_str(sb.bench(&["list", "--json"]).stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["backend"], "replay");
    assert_eq!(
        line["status"], "cancelled",
        "never complete with false zeros"
    );
    let shown = sb.bench_json(&["show", line["id"].as_str().unwrap(), "--json"]);
    let scores: Vec<f64> = shown["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["score"].as_f64().unwrap())
        .collect();
    assert!(scores.iter().all(|s| *s == 1.0), "{scores:?}");
    assert!(scores.len() <= 3, "{scores:?}");
}

#[test]
fn a_suite_goes_through_the_runtime_serving_its_store_and_is_kept_there() {
    let sb = Sandbox::new();
    sb.write("sums.yaml", SUITE);
    sb.write("four.yaml", &answers(4, 0));
    let config = sb.work().join("four.yaml");
    let _serving =
        super::serve::serve_with(&sb, &[std::ffi::OsStr::new("--config"), config.as_os_str()]);
    let r = sb.suite_run("four.yaml", &["--json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("attached to pid"), "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["format"], "veyra.bench.suite/1");
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["summary"]["n"], 6);
    assert_eq!(doc["samples"].as_array().map_or(0, Vec::len), 6);
    assert!((doc["summary"]["score"]["mean"].as_f64().unwrap() - 4.0 / 6.0).abs() < 1e-9);
    // Kept in the store the runtime serves, as a run of this process's own would be.
    let list: Value =
        serde_json::from_str(sb.bench(&["list", "--json"]).stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        (list["kind"].as_str(), list["status"].as_str()),
        (Some("suite"), Some("complete"))
    );
    assert_eq!(sb.stored_samples(), 6);
    // The run's BENCHMARK entry, written by the runtime, names the client that asked.
    let audit = sb.audit_json();
    let entry: Value = serde_json::from_str(
        audit
            .lines()
            .rev()
            .find(|l| l.contains("\"BENCHMARK\""))
            .expect("the run's entry"),
    )
    .unwrap();
    assert_eq!(entry["action"], "suite");
    assert_eq!(entry["metadata"]["client"]["transport"], "unix", "{entry}");
    // A complete run is not resumed, there either.
    let again = sb.suite_run("four.yaml", &["--resume", "last"]);
    assert_error(&again, 2, &["is complete"]);
    // A cassette needs a runtime of its own.
    let tape = sb.work().join("tape");
    let r = sb.suite_run("four.yaml", &["--record", tape.to_str().unwrap()]);
    assert_error(&r, 2, &["serves this store"]);
    // A wrong file is refused before anything is sent, naming the sample and the field.
    sb.write(
        "sums.yaml",
        &SUITE.replace("target: 4}", "target: 4, scorer: {type: choice}}"),
    );
    let r = sb.suite_run("four.yaml", &[]);
    assert_error(&r, 2, &["sample 2", "choice"]);
}
