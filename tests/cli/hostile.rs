//! Hostile input through the real binary: a hostile OpenAI-compatible server on
//! 127.0.0.1 (wiremock) that streams escape sequences and C1 controls, answers with error
//! bodies full of them, echoes the API key back and names absurd `retry-after` delays; config
//! values that used to panic; environment variables that are not UTF-8; a key written where its
//! variable's name belongs; and a megabyte-long line in a config file. Files in the wrong
//! shape: a config, scenario or witness that is a FIFO, `/dev/zero` or huge, and a prompt piped
//! from `/dev/zero`, each refused at once and by name; and, with audit off, a data directory
//! and `bench.db` that others cannot read.
//!
//! Piped output keeps the answer byte-exact (that is what `veyra run | tool` needs); errors and
//! JSON never carry a raw ESC or C1 character, and the key appears nowhere: not on stdout or
//! stderr, not in the log file, not in the audit store. What a terminal shows is checked in
//! `tests/e2e_pty.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The key the hostile server echoes.
const KEY: &str = "sk-hostile-SENTINEL-c0ffee1234";
const KEY_VAR: &str = "HOSTILE_TEST_API_KEY";

/// What the hostile server streams, piece by piece.
const PIECES: [&str; 7] = [
    "Hello \u{1b}]0;PWNED\u{7}",
    "\u{1b}[2J",
    "\u{1b}]52;c;cHduZWQ=\u{7}",
    "\u{9b}31mred",
    " your key is sk-hostile-SENTINEL-c0ffee1234",
    " \u{202e}gnp.exe",
    " done.",
];

/// A sandbox: HOME, XDG directories and the working directory in a fresh temporary directory.
struct Sandbox {
    dir: tempfile::TempDir,
}

struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn all(&self) -> String {
        format!("{}{}", self.stdout(), self.stderr())
    }
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for sub in ["home", "config", "data", "work"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("a sandbox directory");
        }
        Sandbox { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join("work").join(name);
        std::fs::write(&p, text).expect("write a test file");
        p
    }

    fn cmd(&self, env: &[(&str, &str)], args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_veyra"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("VEYRA_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env_remove("NO_COLOR")
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.data())
            .env("RUST_BACKTRACE", "1")
            .envs(env.iter().copied())
            .args(args)
            .current_dir(self.dir.path().join("work"))
            .stdin(std::process::Stdio::null());
        cmd
    }

    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        output(self.cmd(env, args))
    }
}

/// Runs `cmd` to its end, failing the test if it takes more than a minute (a hang).
fn output(mut cmd: std::process::Command) -> Run {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("veyra starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let id = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => {
            let out = out.expect("veyra's output");
            Run {
                code: out.status.code(),
                stdout: out.stdout,
                stderr: out.stderr,
            }
        }
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            panic!("veyra hung for a minute");
        }
    }
}

/// True when `bytes` hold ESC, or a C1 control as UTF-8 (`C2 80`–`C2 9F`).
fn has_raw_control(bytes: &[u8]) -> bool {
    bytes.contains(&0x1b)
        || bytes
            .windows(2)
            .any(|w| w[0] == 0xC2 && (0x80..=0x9F).contains(&w[1]))
}

/// Every file under `dir`, as bytes.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.extend(bytes);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn no_panic(r: &Run) {
    let all = r.all();
    assert!(
        !all.contains("panicked") && !all.contains("RUST_BACKTRACE"),
        "a panic:\n{all}"
    );
}

fn chunk(content: &str) -> String {
    serde_json::json!({
        "id": "c1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}],
    })
    .to_string()
}

fn hostile_stream() -> String {
    let mut body = String::new();
    for piece in PIECES {
        body.push_str(&format!("data: {}\n\n", chunk(piece)));
    }
    body.push_str("data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    body.push_str("data: [DONE]\n\n");
    body
}

/// The error body: the key, a bearer token and escapes.
fn hostile_error(kind: &str) -> serde_json::Value {
    serde_json::json!({"error": {
        "message": format!(
            "Invalid Authorization: Bearer {KEY} \u{1b}[31mred\u{1b}]0;PWNED\u{7} \u{9b}6n \u{1b}[2J"
        ),
        "type": kind,
    }})
}

/// Starts the hostile server; the prompt picks the behaviour.
fn hostile_server(rt: &tokio::runtime::Runtime) -> MockServer {
    rt.block_on(async {
        let server = MockServer::start().await;
        let post = || Mock::given(method("POST")).and(path("/v1/chat/completions"));
        post()
            .and(body_string_contains("hostile-401"))
            .respond_with(
                ResponseTemplate::new(401)
                    .insert_header("x-request-id", format!("req-{KEY}").as_str())
                    .set_body_json(hostile_error("invalid_request_error")),
            )
            .with_priority(1)
            .mount(&server)
            .await;
        post()
            .and(body_string_contains("hostile-400-text"))
            .respond_with(ResponseTemplate::new(400).set_body_raw(
                format!("\u{1b}]0;PWNED\u{7}\u{1b}[2J bad request, key {KEY}").into_bytes(),
                "text/plain",
            ))
            .with_priority(1)
            .mount(&server)
            .await;
        post()
            .and(body_string_contains("hostile-midstream"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(
                    format!(
                        "data: {}\n\ndata: {}\n\n",
                        chunk("partial "),
                        hostile_error("server_error")
                    )
                    .into_bytes(),
                    "text/event-stream",
                ),
            )
            .with_priority(1)
            .mount(&server)
            .await;
        post()
            .and(body_string_contains("hostile-retry"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("retry-after", "1e20")
                    .insert_header("retry-after-ms", "1e300")
                    .set_body_json(hostile_error("rate_limit_exceeded")),
            )
            .with_priority(1)
            .mount(&server)
            .await;
        post()
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(hostile_stream().into_bytes(), "text/event-stream"),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/models"))
            .respond_with(
                ResponseTemplate::new(401).set_body_json(hostile_error("invalid_api_key")),
            )
            .mount(&server)
            .await;
        server
    })
}

fn hostile_env(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("VEYRA_MODEL__BACKEND", "openai".into()),
        ("VEYRA_MODEL__BASE_URL", base.into()),
        ("VEYRA_MODEL__API_KEY_ENV", KEY_VAR.into()),
        (KEY_VAR, KEY.into()),
        ("VEYRA_MODEL__RETRIES", "0".into()),
        ("VEYRA_RUNTIME__RETRIES", "0".into()),
        ("VEYRA_LOGGING__LEVEL", "trace".into()),
    ]
}

#[test]
fn a_hostile_server_cannot_reach_the_terminal_or_reflect_the_key() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let server = hostile_server(&rt);
    let sb = Sandbox::new();
    let base = format!("{}/v1", server.uri());
    let owned = hostile_env(&base);
    let env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut everything = Vec::new();

    // Piped, the answer is byte-exact (but for the key, which is never shown).
    let r = sb.run(&env, &["run", "tell me a story"]);
    no_panic(&r);
    assert_eq!(r.code, Some(0), "{}", r.stderr());
    let expected: String = PIECES.concat().replace(KEY, "[redacted]");
    assert_eq!(r.stdout(), format!("{expected}\n"));
    assert!(!has_raw_control(&r.stderr), "{:?}", r.stderr());
    everything.extend(&r.stdout);
    everything.extend(&r.stderr);

    // `--raw` is the same when piped.
    let raw = sb.run(&env, &["run", "--raw", "tell me a story"]);
    assert_eq!(raw.stdout, r.stdout);

    // JSON escapes C0 and C1 alike: no raw control byte, and the text reads back exactly.
    let r = sb.run(&env, &["run", "--json", "tell me a story"]);
    no_panic(&r);
    assert_eq!(r.code, Some(0), "{}", r.stderr());
    assert!(!has_raw_control(&r.stdout), "{}", r.stdout());
    assert!(r.stdout().contains("\\u009b31mred"), "{}", r.stdout());
    let text: String = r
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["type"] == "output_delta")
        .filter_map(|e| e["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, expected);
    everything.extend(&r.stdout);
    everything.extend(&r.stderr);

    // Errors: an HTTP 401 echoing the key, a text 400 full of escapes, an error event
    // mid-stream, and a 429 asking to wait 10^20 seconds. Each fails the task (exit 1), never
    // panics or hangs, and never shows an escape or the key.
    for (prompt, needle) in [
        ("hostile-401", "HTTP 401"),
        ("hostile-400-text", "HTTP 400"),
        ("hostile-midstream", "mid-stream"),
        ("hostile-retry", "HTTP 429"),
    ] {
        for json in [false, true] {
            let mut args = vec!["run", prompt];
            if json {
                args.insert(1, "--json");
            }
            let r = sb.run(&env, &args);
            no_panic(&r);
            assert_eq!(r.code, Some(1), "{args:?}: {}", r.all());
            assert!(
                r.all().contains(needle),
                "{args:?} should say {needle:?}:\n{}",
                r.all()
            );
            assert!(!has_raw_control(&r.stderr), "{args:?}: {:?}", r.stderr());
            if json {
                assert!(!has_raw_control(&r.stdout), "{args:?}: {}", r.stdout());
            }
            assert!(r.all().contains("[redacted]"), "{args:?}: {}", r.all());
            everything.extend(&r.stdout);
            everything.extend(&r.stderr);
        }
    }

    // `health`: the models list answers 401 with the same body.
    let r = sb.run(&env, &["health"]);
    no_panic(&r);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout().contains("FAILED"), "{}", r.stdout());
    assert!(
        !has_raw_control(&r.stdout) && !has_raw_control(&r.stderr),
        "{}",
        r.all()
    );
    everything.extend(&r.stdout);
    everything.extend(&r.stderr);

    // The log and the audit store hold no key either; the log is the owner's alone.
    let files = all_bytes(&sb.data());
    assert!(contains(&files, "PWNED"), "the log and store were read");
    everything.extend(&files);
    assert!(!contains(&everything, KEY), "the key leaked");
    assert!(
        !contains(&everything, "SENTINEL-c0ffee"),
        "part of the key leaked"
    );
    let log = sb.data().join("veyra/veyra.log");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&log).expect("a log file").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the log is readable by others");
    let log_bytes = std::fs::read(&log).expect("the log");
    assert!(contains(&log_bytes, "PWNED"), "the log quotes the server");
    assert!(!has_raw_control(&log_bytes), "the log holds raw escapes");
}

#[test]
fn config_values_that_used_to_panic_are_configuration_errors() {
    let sb = Sandbox::new();
    for (yaml, key, args) in [
        (
            "runtime:\n  task_timeout: 9223372036854775807\n",
            "runtime.task_timeout",
            &["run", "hi"][..],
        ),
        (
            "latency:\n  time_scale: 1.0e-300\n",
            "latency.time_scale",
            &["run", "hi"][..],
        ),
        (
            "latency:\n  time_scale: 1.0e-300\n",
            "latency.time_scale",
            &["latency", "--preset", "mars"][..],
        ),
        (
            "latency:\n  deep_space_au: 1.0e17\n",
            "latency.deep_space_au",
            &["latency", "--preset", "deep-space"][..],
        ),
        (
            "latency:\n  simulate: true\n  preset: deep-space\n  deep_space_au: 1.0e17\n",
            "latency.deep_space_au",
            &["run", "hi"][..],
        ),
    ] {
        let file = sb.write("bad.yaml", yaml);
        let mut all = vec!["--config", file.to_str().expect("a UTF-8 path")];
        all.extend_from_slice(args);
        let r = sb.run(&[], &all);
        no_panic(&r);
        assert_eq!(r.code, Some(2), "{yaml} {args:?}: {}", r.all());
        assert!(r.stderr().contains(key), "{}", r.stderr());
        assert!(r.stderr().contains("out of range"), "{}", r.stderr());
    }
    // The same values from the environment.
    let r = sb.run(
        &[("VEYRA_RUNTIME__TASK_TIMEOUT", "9223372036854775807")],
        &["run", "hi"],
    );
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr().contains("VEYRA_RUNTIME__TASK_TIMEOUT"),
        "{}",
        r.stderr()
    );
}

#[test]
fn environment_variables_that_are_not_utf8_never_panic() {
    use std::os::unix::ffi::OsStrExt;
    let sb = Sandbox::new();
    let bad = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    let mut cmd = sb.cmd(&[], &["run", "hi"]);
    cmd.env("FOO", bad);
    let r = output(cmd);
    no_panic(&r);
    assert_eq!(
        r.code,
        Some(0),
        "another program's variable is ignored: {}",
        r.all()
    );

    let mut cmd = sb.cmd(&[], &["run", "hi"]);
    cmd.env("VEYRA_MODEL__BACKEND", bad);
    let r = output(cmd);
    no_panic(&r);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr().contains("VEYRA_MODEL__BACKEND"),
        "{}",
        r.stderr()
    );
    assert!(r.stderr().contains("UTF-8"), "{}", r.stderr());
}

#[test]
fn escapes_in_arguments_and_config_values_are_shown_not_obeyed() {
    let sb = Sandbox::new();
    let r = sb.run(
        &[("VEYRA_MODEL__BACKEND", "\u{1b}[31mred\u{9b}0m")],
        &["run", "hi"],
    );
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(!has_raw_control(&r.stderr), "{:?}", r.stderr());
    assert!(r.stderr().contains("␛[31mred<U+009B>0m"), "{}", r.stderr());

    let r = sb.run(&[], &["run", "--priority", "\u{1b}]0;PWNED\u{7}", "hi"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(!has_raw_control(&r.stderr), "{:?}", r.stderr());

    // The mock echoes the prompt; a scripted answer may hold anything. JSON escapes both.
    let r = sb.run(
        &[],
        &["run", "--json", "hi \u{1b}]0;PWNED\u{7}\u{1b}[2J \u{9b}"],
    );
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(!has_raw_control(&r.stdout), "{}", r.stdout());
}

#[test]
fn a_key_where_its_variable_name_belongs_is_refused_and_never_repeated() {
    let sb = Sandbox::new();
    for args in [&["config", "show"][..], &["run", "hi"][..], &["health"][..]] {
        let r = sb.run(&[("VEYRA_MODEL__API_KEY_ENV", KEY)], args);
        no_panic(&r);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.all());
        assert!(r.stderr().contains("model.api_key_env"), "{}", r.stderr());
        assert!(
            !r.all().contains(KEY) && !r.all().contains("SENTINEL"),
            "{}",
            r.all()
        );
    }
    let file = sb.write("key.yaml", &format!("model:\n  api_key_env: \"{KEY}\"\n"));
    let r = sb.run(
        &[],
        &["config", "check", file.to_str().expect("a UTF-8 path")],
    );
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(!r.all().contains(KEY), "{}", r.all());
}

#[test]
fn a_megabyte_line_in_a_config_file_is_not_echoed_whole() {
    let sb = Sandbox::new();
    // Just under the 1 MiB a config file may hold (past it, the file is not read at all).
    let line = format!(
        "model:\n  temperature: \"{}\u{1b}[2J\"\n",
        "x".repeat((1 << 20) - 4096)
    );
    let file = sb.write("huge.yaml", &line);
    for args in [
        vec!["config", "check", file.to_str().expect("a UTF-8 path")],
        vec![
            "--config",
            file.to_str().expect("a UTF-8 path"),
            "run",
            "hi",
        ],
    ] {
        let r = sb.run(&[], &args);
        no_panic(&r);
        assert_eq!(r.code, Some(2), "{args:?}");
        assert!(
            r.stderr.len() < 4096,
            "{args:?}: {} bytes on stderr",
            r.stderr.len()
        );
        assert!(r.stderr().contains('…'), "{}", r.stderr());
        assert!(!has_raw_control(&r.stderr), "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Every file Veyra reads is bounded and regular (a FIFO, /dev/zero or a huge file in its place
// fails at once, naming it), and what Veyra writes is private with audit on or off

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

#[test]
fn a_config_that_is_dev_zero_a_fifo_or_huge_is_refused_at_once_naming_it() {
    let sb = Sandbox::new();
    let fifo = sb.dir.path().join("work/fifo.yaml");
    mkfifo(&fifo);
    let huge = sb.dir.path().join("work/huge.yaml");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(4 << 30))
        .expect("a sparse file");
    let fifo = fifo.to_str().expect("a UTF-8 path");
    let huge = huge.to_str().expect("a UTF-8 path");
    for (args, needles) in [
        (
            vec!["config", "check", "/dev/zero"],
            vec!["/dev/zero", "config file", "not a regular file"],
        ),
        (
            vec!["config", "check", fifo],
            vec!["fifo.yaml", "FIFO", "not a regular file"],
        ),
        (
            vec!["--config", fifo, "run", "hi"],
            vec!["fifo.yaml", "FIFO"],
        ),
        (
            vec!["config", "check", huge],
            vec!["huge.yaml", "larger than 1 MiB"],
        ),
    ] {
        let r = sb.run(&[], &args);
        no_panic(&r);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.all());
        for needle in needles {
            assert!(r.stderr().contains(needle), "{args:?}: {}", r.stderr());
        }
        assert!(r.stderr.len() < 4096, "{args:?}: {}", r.stderr());
    }
}

#[test]
fn a_scenario_that_is_a_fifo_or_dev_zero_is_refused_before_the_screen_is_taken() {
    let sb = Sandbox::new();
    let fifo = sb.dir.path().join("work/scenario.yaml");
    mkfifo(&fifo);
    let fifo = fifo.to_str().expect("a UTF-8 path");
    for (file, needle) in [(fifo, "FIFO"), ("/dev/zero", "character device")] {
        // `output` fails the test if veyra waits a minute on the FIFO: a guard only.
        let r = sb.run(&[], &["--scenario", file]);
        no_panic(&r);
        assert_eq!(r.code, Some(2), "{file}: {}", r.all());
        assert!(r.stderr().contains("demo scenario"), "{}", r.stderr());
        assert!(r.stderr().contains(needle), "{file}: {}", r.stderr());
    }
}

/// The one witness file of the sandbox's default store, after a first run made it.
fn the_witness(sb: &Sandbox, state: &Path) -> PathBuf {
    let r = sb.run(
        &[("XDG_STATE_HOME", state.to_str().expect("UTF-8"))],
        &["run", "hi"],
    );
    assert_eq!(r.code, Some(0), "{}", r.all());
    let dir = state.join("veyra/witness");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the witness directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

#[test]
fn a_witness_that_is_a_symlink_to_dev_zero_fails_verification_clearly() {
    let sb = Sandbox::new();
    let state = sb.dir.path().join("state");
    let witness = the_witness(&sb, &state);
    std::fs::remove_file(&witness).expect("the witness goes");
    std::os::unix::fs::symlink("/dev/zero", &witness).expect("a symlink");
    let env = [("XDG_STATE_HOME", state.to_str().expect("UTF-8"))];
    let r = sb.run(&env, &["audit", "verify"]);
    no_panic(&r);
    assert_eq!(r.code, Some(3), "{}", r.all());
    let name = witness
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a name");
    for needle in [name, "character device", "not a regular file"] {
        assert!(r.stderr().contains(needle), "{}", r.stderr());
    }
    // Writing to the store is refused the same way, never by reading the device.
    let r = sb.run(&env, &["run", "hi"]);
    no_panic(&r);
    assert_ne!(r.code, Some(0), "{}", r.all());
    assert!(r.stderr().contains("character device"), "{}", r.stderr());
}

#[test]
fn a_fifo_in_the_witness_place_does_not_hang_a_run() {
    let sb = Sandbox::new();
    let state = sb.dir.path().join("state");
    let witness = the_witness(&sb, &state);
    std::fs::remove_file(&witness).expect("the witness goes");
    mkfifo(&witness);
    let env = [("XDG_STATE_HOME", state.to_str().expect("UTF-8"))];
    // `output` fails the test if veyra runs for a minute: a guard, not a measure.
    for args in [&["run", "hi"][..], &["audit", "verify"][..]] {
        let r = sb.run(&env, args);
        no_panic(&r);
        assert_eq!(r.code, Some(3), "{args:?}: {}", r.all());
        assert!(r.stderr().contains("FIFO"), "{args:?}: {}", r.stderr());
    }
}

#[test]
fn a_prompt_piped_without_end_is_refused_at_its_cap() {
    let sb = Sandbox::new();
    let mut cmd = sb.cmd(&[], &["run", "-"]);
    cmd.stdin(std::fs::File::open("/dev/zero").expect("/dev/zero"));
    let r = output(cmd);
    no_panic(&r);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr().contains("16 MiB"), "{}", r.stderr());
}

#[test]
fn with_audit_off_the_data_directory_is_0700_and_bench_db_0600() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let sb = Sandbox::new();
    let state = sb.dir.path().join("state");
    let env = [
        ("VEYRA_GOVERNANCE__AUDIT", "false"),
        ("XDG_STATE_HOME", state.to_str().expect("UTF-8")),
    ];
    let r = sb.run(&env, &["bench", "--family", "cplc", "--count", "2"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let data = sb.data().join("veyra");
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("bench.db")), 0o600, "bench.db");
    // A data directory and a store an older Veyra left open to others are narrowed.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(
        data.join("bench.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let r = sb.run(&env, &["bench", "--family", "cplc", "--count", "2"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(mode(&data), 0o700, "the data directory");
    for entry in std::fs::read_dir(&data).expect("the data directory") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            assert_eq!(
                mode(&path) & 0o077,
                0,
                "{} is open to others",
                path.display()
            );
        }
    }
}
