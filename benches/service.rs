//! The runtime service's figures (issue #25), through the real binary and real processes:
//!
//! 1. `veyra run hello` attached to a serving runtime vs `--standalone`, whole process, wall
//!    time (median of 30 runs each, the link simulation off so only the process's own work is
//!    timed).
//! 2. The runtime's processor time while consoles follow one 1,000-token stream: 1 follower
//!    vs 16 (each a `veyra attach --stdio` relay whose reader drains every line, as a console
//!    does), read from the runtime's `/proc/PID/schedstat` (nanoseconds on a CPU) around the
//!    stream; the two alternate on one runtime, 15 pairs: medians and their ratio.
//!
//! Run: `cargo bench --bench service`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A sandbox of its own: home, XDG directories and a configuration.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(config: &str) -> Sandbox {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for sub in ["home", "config", "data", "state", "work"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("a sandbox directory");
        }
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).expect("a runtime directory");
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("a private runtime directory");
        std::fs::write(dir.path().join("veyra.yaml"), config).expect("the configuration");
        Sandbox { dir }
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_veyra"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("VEYRA_") {
                cmd.env_remove(&key);
            }
        }
        let d = self.dir.path();
        cmd.env("HOME", d.join("home"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_DATA_HOME", d.join("data"))
            .env("XDG_STATE_HOME", d.join("state"))
            .env("XDG_RUNTIME_DIR", d.join("run"))
            .env("VEYRA_CONFIG", d.join("veyra.yaml"))
            .current_dir(d.join("work"));
        cmd
    }

    /// `veyra serve`, once its socket is there.
    fn serve(&self) -> Serving {
        let mut child = self
            .cmd()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("veyra serve starts");
        let mut line = String::new();
        BufReader::new(child.stderr.take().expect("piped stderr"))
            .read_line(&mut line)
            .expect("veyra serve's first line");
        let socket = line
            .split(" on ")
            .nth(1)
            .and_then(|rest| rest.split(" (pid").next())
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("veyra serve said: {line}"));
        while !socket.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        Serving { child }
    }
}

struct Serving {
    child: Child,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Nanoseconds process `pid` has spent on a CPU (all its threads).
fn cpu_ns(pid: u32) -> u64 {
    let task = PathBuf::from(format!("/proc/{pid}/task"));
    std::fs::read_dir(&task)
        .expect("the runtime's threads")
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Wall time of one `veyra run hello` in `sb`, with `args`.
fn run_once(sb: &Sandbox, args: &[&str]) -> f64 {
    let start = Instant::now();
    let status = sb
        .cmd()
        .arg("run")
        .args(args)
        .arg("hello")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("veyra run");
    assert!(status.success());
    start.elapsed().as_secs_f64() * 1e3
}

/// A console-like follower: a relay attached with events, its every line drained.
struct Follower {
    child: Child,
    reader: Option<std::thread::JoinHandle<u64>>,
}

fn follow(sb: &Sandbox) -> Follower {
    let mut child = sb
        .cmd()
        .args(["attach", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("veyra attach --stdio");
    let mut stdin = child.stdin.take().expect("piped stdin");
    writeln!(
        stdin,
        r#"{{"type":"hello","protocol":"veyra.rpc/1","client":"bench","events":true}}"#
    )
    .expect("the hello");
    // Kept open: the session lasts until the relay is killed.
    std::mem::forget(stdin);
    let stdout = child.stdout.take().expect("piped stdout");
    let (live_tx, live_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = 0u64;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains(r#""type":"live""#) {
                let _ = live_tx.send(());
            }
            lines += 1;
        }
        lines
    });
    live_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the follower goes live");
    Follower {
        child,
        reader: Some(reader),
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// The runtime's processor time (ms) over one 1,000-token stream (a `veyra run` of it).
fn one_stream(sb: &Sandbox, pid: u32) -> f64 {
    let before = cpu_ns(pid);
    let status = sb
        .cmd()
        .args(["run", "long answer please"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("veyra run");
    assert!(status.success());
    // What the followers are still being sent is part of the stream's cost.
    std::thread::sleep(Duration::from_millis(300));
    (cpu_ns(pid) - before) as f64 / 1e6
}

/// Pairs of streams on one runtime, one followed by 1 console and one by 16, alternating so
/// that whatever drifts on the machine meanwhile falls on both alike.
fn paired_streams(sb: &Sandbox, rounds: usize) -> (Vec<f64>, Vec<f64>) {
    let serving = sb.serve();
    let pid = serving.child.id();
    let _first = follow(sb);
    // One stream before measuring: the store, the policy and the code paths warm.
    one_stream(sb, pid);
    let (mut one, mut sixteen) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        one.push(one_stream(sb, pid));
        let more: Vec<Follower> = (0..15).map(|_| follow(sb)).collect();
        sixteen.push(one_stream(sb, pid));
        drop(more);
    }
    (one, sixteen)
}

fn config(extra: &str) -> String {
    let words: Vec<String> = (0..1000).map(|n| format!("w{n}")).collect();
    format!(
        "latency:\n  simulate: false\nmodel:\n  mock:\n{extra}    script:\n      - pattern: \"long answer\"\n        response: \"{}\"\n",
        words.join(" ")
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo bench -- --list` and `cargo test --benches`: nothing to list or test.
        return;
    }
    let quick = std::env::args().any(|a| a == "--test");
    let (runs, streams) = if quick { (2, 1) } else { (30, 15) };

    // 1. Attached vs standalone.
    let sb = Sandbox::new(&config(""));
    // The store exists before either is timed.
    run_once(&sb, &["--standalone"]);
    let standalone: Vec<f64> = (0..runs)
        .map(|_| run_once(&sb, &["--standalone"]))
        .collect();
    let attached = {
        let _serving = sb.serve();
        run_once(&sb, &[]);
        (0..runs).map(|_| run_once(&sb, &[])).collect::<Vec<f64>>()
    };
    println!(
        "veyra run hello, whole process, median of {runs}: standalone {:.2} ms, attached {:.2} ms",
        median(standalone),
        median(attached)
    );

    // 2. One stream, 1 vs 16 followers; tokens paced 2 ms apart, as a fast model streams.
    let sb = Sandbox::new(&config("    token_delay_ms: 2\n"));
    let (one, sixteen) = paired_streams(&sb, streams);
    let (one, sixteen) = (median(one), median(sixteen));
    println!(
        "runtime processor time per 1,000-token stream, median of {streams}: 1 follower {one:.1} ms, \
         16 followers {sixteen:.1} ms ({:.2}×)",
        sixteen / one
    );
}
