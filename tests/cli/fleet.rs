//! The fleet through the binary: a `nats-server` started here (127.0.0.1, a port of its own
//! choosing, a temporary store; skipped, saying so, when none is installed), `veyra worker`
//! processes each with their own store, and `veyra run` with `runtime.executor: nats`
//! submitting to them — including a worker killed with SIGKILL mid-run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Sandbox;

/// A process killed (and reaped) when the test ends.
pub(super) struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `nats-server` with JetStream and its client URL, or `None` (the test skips).
pub(super) fn nats_server(dir: &std::path::Path) -> Option<(Killed, String)> {
    let mut child = match Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", "-1", "-js", "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: nats-server could not be started ({e}); .ci/run installs it");
            return None;
        }
    };
    let mut lines = BufReader::new(child.stderr.take()?).lines();
    let mut url = None;
    for line in lines.by_ref().take(200) {
        let Ok(line) = line else { break };
        if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
            url = Some(format!("nats://{}", rest.trim()));
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Some((Killed(child), url?))
}

fn config(url: &str, delay_ms: u64) -> String {
    format!(
        "runtime:\n  executor: nats\nnats:\n  url: {url}\n  ack_wait_ms: 2000\nmodel:\n  mock:\n    token_delay_ms: {delay_ms}\nlatency:\n  simulate: false\n"
    )
}

/// Starts `veyra worker` named `name` in its own sandbox.
fn worker(sb: &Sandbox, config: &std::path::Path, name: &str) -> Killed {
    let child = sb
        .std_cmd()
        .arg("--config")
        .arg(config)
        .args(["worker", "--name", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start veyra worker");
    Killed(child)
}

#[test]
fn veyra_run_goes_to_a_worker_and_a_killed_workers_tasks_end_once_on_the_other() {
    let store = tempfile::tempdir().unwrap();
    let Some((_server, url)) = nats_server(store.path()) else {
        return;
    };
    let (w1, w2, client) = (Sandbox::new(), Sandbox::new(), Sandbox::new());
    // A slow mock: every answer takes a while, so a task is mid-way when its worker dies.
    let slow = client.write("fleet.yaml", &config(&url, 120));
    let w1_config = w1.write("fleet.yaml", &config(&url, 120));
    let w2_config = w2.write("fleet.yaml", &config(&url, 120));
    let mut first = worker(&w1, &w1_config, "w1");
    // One prompt, through the fleet, printed as a local run prints it.
    let out = client
        .std_cmd()
        .arg("--config")
        .arg(&slow)
        .args(["run", "hello fleet"])
        .output()
        .expect("veyra run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("submitted to the fleet"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello fleet"));
    // Six at once, then w1 is killed mid-run; w2 takes over what w1 had not begun.
    let runs: Vec<Child> = (0..6)
        .map(|i| {
            client
                .std_cmd()
                .arg("--config")
                .arg(&slow)
                .args(["run", "--json", &format!("task number {i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("veyra run")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let _ = first.0.kill(); // SIGKILL
    let _ = first.0.wait();
    let _second = worker(&w2, &w2_config, "w2");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut succeeded = 0;
    let mut lost = 0;
    for run in runs {
        let out = run.wait_with_output().expect("veyra run ends");
        assert!(Instant::now() < deadline, "the runs ended in time");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let finals: Vec<&str> = stdout
            .lines()
            .filter(|l| {
                l.contains("\"task_state\"")
                    && (l.contains("\"succeeded\"")
                        || l.contains("\"failed\"")
                        || l.contains("\"cancelled\""))
            })
            .collect();
        assert_eq!(
            finals.len(),
            1,
            "one final state per task, never two: {stdout}"
        );
        if finals[0].contains("\"succeeded\"") {
            succeeded += 1;
            assert_eq!(out.status.code(), Some(0));
        } else {
            assert!(finals[0].contains("lost on worker w1"), "{}", finals[0]);
            lost += 1;
        }
    }
    assert_eq!(succeeded + lost, 6);
    assert!(succeeded >= 1, "w2 finished what w1 had not begun");
}

/// Copies every file under `from` into `to` (made), as a backup taken while nothing writes.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_worker_rolled_back_with_its_local_witness_is_caught_by_the_fleets_witness() {
    let store = tempfile::tempdir().unwrap();
    let Some((_server, url)) = nats_server(store.path()) else {
        return;
    };
    let (w, client) = (Sandbox::new(), Sandbox::new());
    let fast = client.write("fleet.yaml", &config(&url, 0));
    let w_config = w.write("fleet.yaml", &config(&url, 0));
    let run = |prompt: &str| {
        let out = client
            .std_cmd()
            .arg("--config")
            .arg(&fast)
            .args(["run", prompt])
            .output()
            .expect("veyra run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let stop = |mut worker: Killed| {
        let _ = Command::new("kill")
            .args(["-TERM", &worker.0.id().to_string()])
            .status();
        let _ = worker.0.wait();
    };
    let (data, state) = (w.dir.path().join("data"), w.dir.path().join("state"));
    let backup = tempfile::tempdir().unwrap();
    // Two tasks, then the worker stops: its store and its local witness are copied.
    let first = worker(&w, &w_config, "w");
    run("one");
    run("two");
    stop(first);
    copy_tree(&data, &backup.path().join("data"));
    copy_tree(&state, &backup.path().join("state"));
    // Two more, then both are put back as they were: a rollback the node cannot see.
    let second = worker(&w, &w_config, "w");
    run("three");
    run("four");
    stop(second);
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::remove_dir_all(&state).unwrap();
    copy_tree(&backup.path().join("data"), &data);
    copy_tree(&backup.path().join("state"), &state);
    let verify = |extra: &[&str]| {
        let out = w
            .std_cmd()
            .arg("--config")
            .arg(&w_config)
            .args(["audit", "verify"])
            .args(extra)
            .output()
            .expect("veyra audit verify");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // Alone, the rolled-back store and witness agree with each other.
    let (code, said) = verify(&[]);
    assert_eq!(code, Some(0), "{said}");
    // Against what the fleet saw, the rollback shows.
    let bucket = format!("{url}/VEYRA_TASKS_WITNESS");
    let (code, said) = verify(&["--witness", &bucket]);
    assert_eq!(code, Some(3), "{said}");
    assert!(said.contains("VEYRA_TASKS_WITNESS"), "{said}");
}

#[test]
fn veyra_bench_fans_its_items_out_to_a_worker_and_scores_them_here() {
    let store = tempfile::tempdir().unwrap();
    let Some((_server, url)) = nats_server(store.path()) else {
        return;
    };
    let (w, client) = (Sandbox::new(), Sandbox::new());
    let at_worker = w.write("fleet.yaml", &config(&url, 0));
    let fleet = client.write("fleet.yaml", &config(&url, 0));
    let _worker = worker(&w, &at_worker, "w1");
    let out = client
        .std_cmd()
        .arg("--config")
        .arg(&fleet)
        .args([
            "bench",
            "--family",
            "cplc,tome,imdp",
            "--count",
            "3",
            "--json",
        ])
        .output()
        .expect("veyra bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("the run's items go to the fleet"),
        "{stderr}"
    );
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the run as JSON");
    assert_eq!(run["run"]["status"], "complete", "{run}");
    // Every item ran at the worker, as actor benchmark, and none at the submitter.
    let trail = |sandbox: &Sandbox, config: &std::path::Path| {
        let out = sandbox
            .std_cmd()
            .arg("--config")
            .arg(config)
            .args(["audit", "list", "--json"])
            .output()
            .expect("veyra audit list");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let at_w = trail(&w, &at_worker);
    assert!(at_w.contains("\"fleet_item\""), "{at_w}");
    assert!(at_w.contains("\"benchmark\""), "{at_w}");
    // The submitter's trail holds the run (its BENCHMARK entry), and no item's execution.
    let here = trail(&client, &fleet);
    assert!(here.contains("BENCHMARK"), "{here}");
    assert!(
        !here
            .lines()
            .any(|l| l.contains("\"benchmark\"") && l.contains("\"execute\"")),
        "{here}"
    );
    // Recording or replaying a cassette goes through this process's backends: refused.
    let out = client
        .std_cmd()
        .arg("--config")
        .arg(&fleet)
        .args(["bench", "--family", "cplc", "--count", "1", "--record"])
        .arg(store.path().join("c.jsonl"))
        .output()
        .expect("veyra bench --record");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("runtime.executor: nats"));
}

#[test]
fn veyra_attach_refuses_a_fleet_address_it_cannot_use_and_never_echoes_its_password() {
    let sb = Sandbox::new();
    for (command, address, said) in [
        (
            "attach",
            "nats://ops:hunter2@127.0.0.1:4222",
            "carries credentials",
        ),
        ("attach", "nats://", "names no host"),
        ("attach", "tls://:4222", "is not a URL"),
        ("attach", "nats://ops:hunter2@exa mple:4222", "is not a URL"),
        // A token written without a scheme is not repeated either.
        ("--nats", "hunter2@127.0.0.1:4222", "is not a URL"),
    ] {
        let args: Vec<&str> = match command {
            "attach" => vec!["attach", address],
            _ => vec!["worker", "--nats", address],
        };
        let out = sb.std_cmd().args(&args).output().expect("veyra");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{address}: {stderr}");
        assert!(stderr.contains(said), "{address}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}
