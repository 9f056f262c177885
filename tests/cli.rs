//! Black-box tests of the headless CLI contract (DESIGN §3 and §4): they run the real `veyra`
//! binary and check exit codes, stdout and stderr.
//!
//! Covered: `--version`, `--help` and usage errors; `veyra run` (determinism, trailing newline,
//! `--json` event lines, prompts from stdin, empty prompts); configuration errors from files and
//! `VEYRA_*` variables (missing file, YAML syntax with `file:line:col`, unknown keys with
//! suggestions, wrong types, out-of-range values, unknown backends); `veyra config check` on the
//! shipped example configs and on a broken file; `veyra config show` never printing a secret;
//! injected mock backend failures (exit 1); `veyra health`; `veyra audit verify --file` on an
//! intact, a tampered, a truncated and a non-JSON export (exit 0 / 3 / 3 / 2); and the console
//! refusing to start when stdout is not a terminal (exit 2).
//!
//! Every command runs in a sandbox: `HOME`, `XDG_CONFIG_HOME` and `XDG_DATA_HOME` point into a
//! fresh temporary directory, every `VEYRA_*` variable of the test process is removed, and the
//! working directory is an empty temporary directory, so no user or repository configuration
//! leaks in.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;
use veyra::governance::{AuditEventType, AuditFilter, AuditRecord, AuditTrail};

#[path = "cli/audit_attacks.rs"]
mod audit_attacks;
#[path = "cli/bench.rs"]
mod bench;
#[path = "cli/fleet.rs"]
mod fleet;
#[path = "cli/fleet_console.rs"]
mod fleet_console;
#[path = "cli/hostile.rs"]
mod hostile;
#[path = "cli/mcp.rs"]
mod mcp;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/side_effects.rs"]
mod side_effects;
#[path = "cli/ssh.rs"]
mod ssh;
#[path = "cli/suites.rs"]
mod suites;
#[path = "cli/tools.rs"]
mod tools;

/// A clean environment for one or more runs of the binary.
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        for sub in ["home", "config", "data", "work"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create sandbox directory");
        }
        // Runtimes' sockets: private, as a login's runtime directory is.
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).expect("create sandbox directory");
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("make the runtime directory private");
        Sandbox { dir }
    }

    /// [`Sandbox::cmd`]'s environment on a plain `std::process::Command`, for a process the
    /// test starts, signals or kills itself.
    fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_veyra"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("VEYRA_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env_remove("NO_COLOR")
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .current_dir(self.work());
        cmd
    }

    /// The working directory of the commands; relative paths in tests resolve here.
    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Writes `text` to `name` in the working directory and returns its absolute path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.work().join(name);
        std::fs::write(&path, text).expect("write a test file");
        path
    }

    /// The binary with a clean configuration environment.
    fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_veyra"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("VEYRA_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env_remove("VEYRA_CONFIG")
            .env_remove("NO_COLOR")
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            // A panic would print its backtrace; the error tests check that none appears.
            .env("RUST_BACKTRACE", "1")
            .current_dir(self.work())
            .timeout(std::time::Duration::from_secs(60));
        cmd
    }
}

/// The captured result of one run.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(mut cmd: Command) -> Run {
    let out = cmd.output().expect("run veyra");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts a clean, user-facing error: the exit code, every needle on stderr, no panic and no
/// backtrace.
fn assert_error(run: &Run, code: i32, needles: &[&str]) {
    assert_error_of("", run, code, needles);
}

/// [`assert_error`] for the run named `what`: every failure message starts with that name.
fn assert_error_of(what: &str, run: &Run, code: i32, needles: &[&str]) {
    let what = if what.is_empty() {
        String::new()
    } else {
        format!("{what}: ")
    };
    assert_eq!(
        run.code,
        Some(code),
        "{what}expected exit {code}\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        !run.stderr.trim().is_empty(),
        "{what}expected a message on stderr, stderr is empty (stdout: {})",
        run.stdout
    );
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "{what}stderr should contain {needle:?}:\n{}",
            run.stderr
        );
    }
    for bad in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(
            !run.stderr.contains(bad) && !run.stdout.contains(bad),
            "{what}output contains {bad:?}:\nstdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
    }
}

/// One row of an error table: a command in a fresh [`Sandbox`] that must fail cleanly.
struct ErrorCase {
    /// Names the row in every failure message.
    name: &'static str,
    /// Files to write first, by path under the sandbox root (`work/` is the working directory,
    /// `config/` is `XDG_CONFIG_HOME`).
    files: &'static [(&'static str, &'static str)],
    /// Variables to set; `{work}` in a value stands for the working directory's absolute path.
    env: &'static [(&'static str, &'static str)],
    /// The arguments of `veyra`.
    args: &'static [&'static str],
    /// The exit code expected.
    code: i32,
    /// What stderr must contain.
    needles: &'static [&'static str],
}

/// Runs every row in its own sandbox and checks it with [`assert_error_of`], naming the row;
/// a failing row does not hide the rows after it, and the test fails listing every one.
fn check_error_table(table: &[ErrorCase]) {
    let failed: Vec<&str> = table
        .iter()
        .filter(|case| std::panic::catch_unwind(|| check_error_case(case)).is_err())
        .map(|case| case.name)
        .collect();
    assert!(failed.is_empty(), "failing rows: {failed:?}");
}

fn check_error_case(case: &ErrorCase) {
    let sb = Sandbox::new();
    for (path, text) in case.files {
        let path = sb.dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a file path has a parent"))
            .expect("create the file's directory");
        std::fs::write(&path, text).expect("write a test file");
    }
    let mut c = sb.cmd();
    let work = sb.work();
    for (key, value) in case.env {
        c.env(key, value.replace("{work}", &work.to_string_lossy()));
    }
    c.args(case.args);
    assert_error_of(case.name, &run(c), case.code, case.needles);
}

// ---------------------------------------------------------------------------------------------
// Arguments

#[test]
fn version_prints_the_version_and_exits_0() {
    let sb = Sandbox::new();
    sb.cmd()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_exits_0_and_lists_subcommands() {
    let sb = Sandbox::new();
    sb.cmd()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("run").and(predicate::str::contains("health")));
    sb.cmd().args(["run", "--help"]).assert().code(0);
}

#[test]
fn usage_errors_exit_2_naming_the_culprit() {
    check_error_table(&[
        ErrorCase {
            name: "unknown subcommand",
            files: &[],
            env: &[],
            args: &["frobnicate"],
            code: 2,
            needles: &["frobnicate"],
        },
        ErrorCase {
            name: "unknown flag",
            files: &[],
            env: &[],
            args: &["run", "--no-such-flag", "hello"],
            code: 2,
            needles: &["--no-such-flag"],
        },
        ErrorCase {
            name: "bad priority value",
            files: &[],
            env: &[],
            args: &["run", "--priority", "urgent", "hello"],
            code: 2,
            needles: &["urgent"],
        },
    ]);
}

// ---------------------------------------------------------------------------------------------
// veyra run

#[test]
fn run_prints_the_mock_answer_deterministically() {
    let first = {
        let sb = Sandbox::new();
        let mut c = sb.cmd();
        c.args(["run", "hello"]);
        run(c)
    };
    let second = {
        let sb = Sandbox::new();
        let mut c = sb.cmd();
        c.args(["run", "hello"]);
        run(c)
    };
    assert_eq!(first.code, Some(0), "stderr: {}", first.stderr);
    assert_eq!(second.code, Some(0), "stderr: {}", second.stderr);
    assert!(first.stdout.contains("Acknowledged"), "{}", first.stdout);
    assert!(first.stdout.ends_with('\n'), "{:?}", first.stdout);
    assert_eq!(
        first.stdout.as_bytes(),
        second.stdout.as_bytes(),
        "two runs of the same prompt differ"
    );
    // The same sandbox again (now with a data directory from the first run) gives the same text.
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args(["run", "hello"]);
    let a = run(c);
    let mut c = sb.cmd();
    c.args(["run", "hello"]);
    let b = run(c);
    assert_eq!(a.stdout, first.stdout);
    assert_eq!(b.stdout, first.stdout);
}

#[test]
fn run_answer_depends_on_the_prompt() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args(["run", "hello"]);
    let a = run(c);
    let mut c = sb.cmd();
    c.args(["run", "check the power budget"]);
    let b = run(c);
    assert_eq!(b.code, Some(0), "stderr: {}", b.stderr);
    assert_ne!(a.stdout, b.stdout);
    assert!(b.stdout.contains("check the power budget"), "{}", b.stdout);
}

#[test]
fn run_json_prints_one_event_per_line() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args(["run", "--json", "hello"]);
    let r = run(c);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"))
        })
        .collect();
    assert!(events.len() >= 3, "too few events:\n{}", r.stdout);
    let types: Vec<&str> = events
        .iter()
        .map(|e| {
            e.get("type")
                .and_then(|t| t.as_str())
                .unwrap_or_else(|| panic!("event without a string \"type\": {e}"))
        })
        .collect();
    assert_eq!(types.first(), Some(&"task_submitted"), "{types:?}");
    assert!(types.contains(&"execution_finished"), "{types:?}");
    assert_eq!(types.last(), Some(&"task_state"), "{types:?}");
    assert!(types.contains(&"audit_recorded"), "{types:?}");
    assert!(types.contains(&"output_delta"), "{types:?}");
    // The streamed deltas add up to the answer.
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "output_delta")
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(text.starts_with("Acknowledged"), "{text:?}");
    // Every execution event is about the same execution.
    let id = events[0]["id"].as_str().expect("submitted event has an id");
    for e in events.iter().filter(|e| e.get("id").is_some()) {
        assert_eq!(e["id"].as_str(), Some(id), "{e}");
    }
}

#[test]
fn run_reads_the_prompt_from_stdin_with_dash() {
    let sb = Sandbox::new();
    sb.cmd()
        .args(["run", "-"])
        .write_stdin("hi")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Acknowledged").and(predicate::str::contains("hi")));
}

#[test]
fn run_reads_the_prompt_from_piped_stdin_without_an_argument() {
    let sb = Sandbox::new();
    sb.cmd()
        .arg("run")
        .write_stdin("hi\n")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Acknowledged"));
}

#[test]
fn run_with_empty_stdin_is_a_usage_error() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.arg("run").write_stdin("");
    assert_error(&run(c), 2, &["stdin"]);
    let mut c = sb.cmd();
    c.args(["run", "-"]).write_stdin("  \n");
    assert_error(&run(c), 2, &["stdin"]);
}

#[test]
fn run_with_empty_prompt_argument_is_a_usage_error() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args(["run", ""]);
    let r = run(c);
    assert_error(&r, 2, &["prompt"]);
    assert!(
        r.stdout.is_empty(),
        "nothing should be printed: {}",
        r.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration errors

/// Every way a configuration can be wrong, from a file, `VEYRA_*` variables or arguments: exit
/// 2 and a message naming the place (`file:line:col`, the variable, the key) and the fix.
const CONFIG_ERRORS: &[ErrorCase] = &[
    ErrorCase {
        name: "missing config file",
        files: &[],
        env: &[],
        args: &["run", "--config", "does-not-exist.yaml", "hi"],
        code: 2,
        needles: &["does-not-exist.yaml", "not found"],
    },
    ErrorCase {
        name: "missing file named by VEYRA_CONFIG",
        files: &[],
        env: &[("VEYRA_CONFIG", "{work}/gone.yaml")],
        args: &["run", "hi"],
        code: 2,
        needles: &["gone.yaml"],
    },
    ErrorCase {
        name: "YAML syntax error: unterminated string",
        files: &[("work/bad.yaml", "model:\n  backend: \"mock\n")],
        env: &[],
        args: &["run", "--config", "bad.yaml", "hi"],
        code: 2,
        needles: &["bad.yaml:2:"],
    },
    ErrorCase {
        name: "YAML syntax error: bad indentation",
        files: &[("work/indent.yaml", "model:\n  backend: mock\n   model: x\n")],
        env: &[],
        args: &["run", "--config", "indent.yaml", "hi"],
        code: 2,
        needles: &["indent.yaml:3:"],
    },
    ErrorCase {
        name: "unknown key suggests the nearest",
        files: &[("work/typo.yaml", "model:\n  backnd: mock\n")],
        env: &[],
        args: &["run", "--config", "typo.yaml", "hi"],
        code: 2,
        needles: &["typo.yaml:2:", "backnd", "backend"],
    },
    ErrorCase {
        name: "unknown section",
        files: &[("work/section.yaml", "modle:\n  backend: mock\n")],
        env: &[],
        args: &["run", "--config", "section.yaml", "hi"],
        code: 2,
        needles: &["section.yaml:1:", "modle", "model"],
    },
    ErrorCase {
        name: "wrong type says what the key takes in words",
        files: &[("work/type.yaml", "model:\n  max_tokens: lots\n")],
        env: &[],
        args: &["run", "--config", "type.yaml", "hi"],
        code: 2,
        needles: &[
            "type.yaml:2:",
            "model.max_tokens takes a whole number from 1 to 10,000,000, got \"lots\"",
        ],
    },
    ErrorCase {
        name: "a word where a whole number goes",
        files: &[("work/slots.yaml", "runtime:\n  max_concurrent: abc\n")],
        env: &[],
        args: &["run", "--config", "slots.yaml", "hi"],
        code: 2,
        needles: &[
            "slots.yaml:2:",
            "runtime.max_concurrent takes a whole number from 1 to 4096, got \"abc\"",
        ],
    },
    ErrorCase {
        name: "a list where text goes",
        files: &[("work/list.yaml", "model:\n  model: [1]\n")],
        env: &[],
        args: &["run", "--config", "list.yaml", "hi"],
        code: 2,
        needles: &["list.yaml:2:", "model.model takes text, got \"[1]\""],
    },
    ErrorCase {
        name: "a word where true or false goes",
        files: &[("work/flag.yaml", "runtime:\n  jitter: sometimes\n")],
        env: &[],
        args: &["run", "--config", "flag.yaml", "hi"],
        code: 2,
        needles: &[
            "flag.yaml:2:",
            "runtime.jitter takes true or false, got \"sometimes\"",
        ],
    },
    ErrorCase {
        name: "out-of-range temperature names the file and line",
        files: &[(
            "work/hot.yaml",
            "# too hot\nmodel:\n  backend: mock\n  temperature: 3.5\n",
        )],
        env: &[],
        args: &["run", "--config", "hot.yaml", "hi"],
        code: 2,
        needles: &["model.temperature (from hot.yaml:4)", "3.5"],
    },
    ErrorCase {
        name: "the file in XDG_CONFIG_HOME is read",
        files: &[("config/veyra/config.yaml", "model:\n  temperature: 9\n")],
        env: &[],
        args: &["run", "hi"],
        code: 2,
        needles: &["model.temperature (from ", "config.yaml:2)"],
    },
    ErrorCase {
        name: "env override with the wrong type says what the key takes",
        files: &[],
        env: &[("VEYRA_RUNTIME__MAX_CONCURRENT", "abc")],
        args: &["run", "hi"],
        code: 2,
        needles: &[
            "environment variable VEYRA_RUNTIME__MAX_CONCURRENT",
            "runtime.max_concurrent takes a whole number from 1 to 4096, got \"abc\"",
        ],
    },
    ErrorCase {
        name: "env override beats the file and is named",
        files: &[("work/warm.yaml", "model:\n  temperature: 0.5\n")],
        env: &[("VEYRA_MODEL__TEMPERATURE", "9")],
        args: &["run", "--config", "warm.yaml", "hi"],
        code: 2,
        needles: &["model.temperature (from environment variable VEYRA_MODEL__TEMPERATURE)"],
    },
    ErrorCase {
        name: "an unknown theme from the flag names the flag",
        files: &[("work/themed.yaml", "tui:\n  theme: dracula\n")],
        env: &[],
        args: &["--config", "themed.yaml", "--theme", "nosuch"],
        code: 2,
        needles: &["tui.theme (from command-line flag --theme)", "nosuch"],
    },
    ErrorCase {
        name: "an unknown theme from a file names the file and line",
        files: &[(
            "work/theme.yaml",
            "model:\n  backend: mock\ntui:\n  theme: nosuch\n",
        )],
        env: &[],
        args: &["--config", "theme.yaml"],
        code: 2,
        needles: &["tui.theme (from theme.yaml:4)", "nosuch"],
    },
    ErrorCase {
        name: "an unknown theme from the environment names the variable",
        files: &[("work/other.yaml", "model:\n  backend: mock\n")],
        env: &[("VEYRA_TUI__THEME", "nosuch")],
        args: &["--config", "other.yaml"],
        code: 2,
        needles: &["tui.theme (from environment variable VEYRA_TUI__THEME)"],
    },
    ErrorCase {
        name: "OpenAI without a key fails at start-up, before any prompt is sent",
        files: &[],
        env: &[("VEYRA_MODEL__BACKEND", "openai")],
        args: &["run", "hi"],
        code: 2,
        needles: &[
            "OpenAI needs an API key",
            "model.api_key_env",
            "OPENAI_API_KEY",
        ],
    },
    ErrorCase {
        name: "a prompt sent to OpenAI by --backend meets the start-up check",
        files: &[],
        env: &[],
        args: &["run", "--backend", "openai", "hi"],
        code: 2,
        needles: &["OpenAI needs an API key", "model.api_key_env"],
    },
    ErrorCase {
        name: "OpenAI with a key but only the mock's model is refused at start-up",
        files: &[],
        env: &[
            ("VEYRA_MODEL__BACKEND", "openai"),
            ("VEYRA_MODEL__API_KEY_ENV", "TEST_OPENAI_KEY"),
            ("TEST_OPENAI_KEY", "sk-test-not-a-real-key-0000000000"),
        ],
        args: &["run", "hi"],
        code: 2,
        needles: &[
            "'veyra-mock-1' is the mock backend's model",
            "VEYRA_MODEL__MODEL",
        ],
    },
    ErrorCase {
        name: "a key variable that is not set is named",
        files: &[(
            "work/key.yaml",
            "model:\n  backend: anthropic\n  api_key_env: TEST_UNSET_KEY\n",
        )],
        env: &[],
        args: &["run", "--config", "key.yaml", "hi"],
        code: 2,
        needles: &["environment variable TEST_UNSET_KEY", "not set or empty"],
    },
    ErrorCase {
        name: "unknown env override suggests the nearest",
        files: &[],
        env: &[("VEYRA_MODEL__BACKND", "x")],
        args: &["run", "hi"],
        code: 2,
        needles: &["VEYRA_MODEL__BACKND", "VEYRA_MODEL__BACKEND"],
    },
    ErrorCase {
        name: "env override out of range",
        files: &[],
        env: &[("VEYRA_MODEL__TEMPERATURE", "3.5")],
        args: &["run", "hi"],
        code: 2,
        needles: &["model.temperature", "VEYRA_MODEL__TEMPERATURE"],
    },
    ErrorCase {
        name: "unknown backend on the command line",
        files: &[],
        env: &[],
        args: &["run", "--backend", "nope", "hi"],
        code: 2,
        needles: &["nope", "mock"],
    },
    ErrorCase {
        name: "unknown backend from the environment",
        files: &[],
        env: &[("VEYRA_MODEL__BACKEND", "nope")],
        args: &["run", "hi"],
        code: 2,
        needles: &["nope", "mock"],
    },
    ErrorCase {
        name: "unknown backend in a config file",
        files: &[("work/backend.yaml", "model:\n  backend: nope\n")],
        env: &[],
        args: &["health", "--config", "backend.yaml"],
        code: 2,
        needles: &["nope", "mock"],
    },
    ErrorCase {
        name: "config check: unknown key",
        files: &[("work/broken.yaml", "model:\n  backnd: mock\n")],
        env: &[],
        args: &["config", "check", "broken.yaml"],
        code: 2,
        needles: &["broken.yaml:2:", "backend"],
    },
    ErrorCase {
        name: "config check: out of range",
        files: &[("work/range.yaml", "tui:\n  frame_rate: 0\n")],
        env: &[],
        args: &["config", "check", "range.yaml"],
        code: 2,
        needles: &["tui.frame_rate"],
    },
    ErrorCase {
        name: "config check: missing file",
        files: &[],
        env: &[],
        args: &["config", "check", "absent.yaml"],
        code: 2,
        needles: &["absent.yaml"],
    },
];

#[test]
fn config_errors_exit_2_naming_the_place_and_the_fix() {
    check_error_table(CONFIG_ERRORS);
}

// ---------------------------------------------------------------------------------------------
// veyra config

fn example_configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn config_check_accepts_every_shipped_example() {
    let files = example_configs();
    assert!(
        !files.is_empty(),
        "configs/ holds no *.yaml example; DESIGN §2 promises example configs there"
    );
    let sb = Sandbox::new();
    for file in files {
        let mut c = sb.cmd();
        c.arg("config").arg("check").arg(&file);
        let r = run(c);
        assert_eq!(
            r.code,
            Some(0),
            "{} should check clean:\n{}",
            file.display(),
            r.stderr
        );
        assert!(r.stdout.contains("ok"), "{}", r.stdout);
    }
}

#[test]
fn config_check_accepts_a_valid_file() {
    let sb = Sandbox::new();
    sb.write(
        "good.yaml",
        "# a small but complete example\nmodel:\n  backend: mock\n  temperature: 0.2\nruntime:\n  max_concurrent: 2\n",
    );
    sb.cmd()
        .args(["config", "check", "good.yaml"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("good.yaml"));
    // An empty file is the defaults.
    sb.write("empty.yaml", "");
    sb.cmd()
        .args(["config", "check", "empty.yaml"])
        .assert()
        .code(0);
}

#[test]
fn config_check_ignores_a_broken_effective_config() {
    // `config check FILE` validates FILE alone, even when the environment is broken.
    let sb = Sandbox::new();
    sb.write("good.yaml", "model:\n  backend: mock\n");
    sb.cmd()
        .env("VEYRA_MODEL__BACKND", "x")
        .args(["config", "check", "good.yaml"])
        .assert()
        .code(0);
}

#[test]
fn config_show_prints_the_effective_config() {
    let sb = Sandbox::new();
    sb.cmd()
        .args(["config", "show"])
        .env("VEYRA_LATENCY__PRESET", "mars")
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("backend: mock")
                .and(predicate::str::contains("preset: mars"))
                .and(predicate::str::contains("VEYRA_LATENCY__PRESET")),
        );
}

#[test]
fn config_show_never_prints_the_api_key() {
    const SECRET: &str = "sk-sentinel-123456";
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.env("SENTINEL_API_KEY", SECRET)
        .env("VEYRA_MODEL__API_KEY_ENV", "SENTINEL_API_KEY")
        .args(["config", "show"]);
    let r = run(c);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    assert!(r.stdout.contains("SENTINEL_API_KEY"), "{}", r.stdout);
    assert!(
        !r.stdout.contains(SECRET),
        "secret on stdout:\n{}",
        r.stdout
    );
    assert!(
        !r.stderr.contains(SECRET),
        "secret on stderr:\n{}",
        r.stderr
    );
    assert!(!r.stdout.contains("sk-sentinel"), "{}", r.stdout);

    // The same through a config file, and through `run`, which also reads the key.
    sb.write("key.yaml", "model:\n  api_key_env: SENTINEL_API_KEY\n");
    for args in [
        &["config", "show", "--config", "key.yaml"][..],
        &["run", "--config", "key.yaml", "hello"][..],
        &["health", "--config", "key.yaml"][..],
    ] {
        let mut c = sb.cmd();
        c.env("SENTINEL_API_KEY", SECRET).args(args);
        let r = run(c);
        assert!(
            !r.stdout.contains(SECRET) && !r.stderr.contains(SECRET),
            "secret printed by {args:?}:\nstdout:\n{}\nstderr:\n{}",
            r.stdout,
            r.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Backend failures and health

#[test]
fn injected_mid_stream_failure_exits_1_with_a_message() {
    let sb = Sandbox::new();
    sb.write(
        "fail.yaml",
        "model: {mock: {fail: {kind: server, after_tokens: 2}}}\n",
    );
    let mut c = sb.cmd();
    c.args(["run", "--config", "fail.yaml", "hi"]);
    let r = run(c);
    assert_error(&r, 1, &["veyra: error:", "server"]);
    // The two tokens before the failure were streamed.
    assert!(r.stdout.starts_with("Acknowledged"), "{:?}", r.stdout);
}

#[test]
fn injected_failure_before_the_first_token_exits_1_with_the_message() {
    let sb = Sandbox::new();
    sb.write(
        "auth.yaml",
        "model:\n  mock:\n    fail: {kind: auth, message: \"key rejected by the ground station\"}\n",
    );
    let mut c = sb.cmd();
    c.args(["run", "--config", "auth.yaml", "hi"]);
    let r = run(c);
    assert_error(&r, 1, &["key rejected by the ground station"]);
    assert!(!r.stdout.contains("Acknowledged"), "{:?}", r.stdout);
}

#[test]
fn injected_failure_in_json_mode_ends_with_a_failed_task_state() {
    let sb = Sandbox::new();
    sb.write(
        "fail.yaml",
        "model: {mock: {fail: {kind: server, after_tokens: 2}}}\n",
    );
    let mut c = sb.cmd();
    c.args(["run", "--json", "--config", "fail.yaml", "hi"]);
    let r = run(c);
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    let last = r.stdout.lines().last().expect("some events");
    let last: serde_json::Value = serde_json::from_str(last).expect("JSON line");
    assert_eq!(last["type"], "task_state", "{last}");
    assert_eq!(last["status"]["state"], "failed", "{last}");
}

#[test]
fn health_reports_the_mock_backend_ok() {
    let sb = Sandbox::new();
    sb.cmd()
        .arg("health")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("backend mock: ok"));
}

// ---------------------------------------------------------------------------------------------
// veyra audit verify

/// Records a three-entry chain in the sandbox's own store (signed, witnessed) and writes its
/// export; the sandbox's store key then pins the export's signer.
fn write_export(sb: &Sandbox, name: &str) -> PathBuf {
    let store = veyra::governance::SqliteStore::open(
        &sb.dir.path().join("data/veyra/audit.db"),
        &veyra::governance::StoreOptions::witness_in(sb.dir.path().join("state/veyra/witness")),
    )
    .expect("open the sandbox store");
    let trail = AuditTrail::new(std::sync::Arc::new(store)).expect("a trail");
    for (i, outcome) in ["success", "success", "denied"].into_iter().enumerate() {
        trail
            .record_blocking(AuditRecord {
                event_type: AuditEventType::Execution,
                actor: "operator".into(),
                action: "execute".into(),
                resource: "mock".into(),
                outcome: outcome.into(),
                input_summary: veyra::governance::summarize_input(&format!("prompt {i}")),
                metadata: serde_json::json!({ "n": i }),
            })
            .expect("record an audit entry");
    }
    let export = trail
        .export(&AuditFilter::default())
        .expect("export the trail");
    let text = serde_json::to_string_pretty(&export).expect("serialize the export");
    sb.write(name, &text)
}

fn edit_export(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let text = std::fs::read_to_string(path).expect("read export");
    let mut doc: serde_json::Value = serde_json::from_str(&text).expect("export is JSON");
    edit(&mut doc);
    std::fs::write(path, serde_json::to_string_pretty(&doc).expect("serialize"))
        .expect("write export");
}

#[test]
fn audit_verify_accepts_an_intact_export() {
    let sb = Sandbox::new();
    let path = write_export(&sb, "export.json");
    sb.cmd()
        .args(["audit", "verify", "--file"])
        .arg(&path)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("3 entries"));
}

#[test]
fn audit_verify_names_the_tampered_entry() {
    let sb = Sandbox::new();
    let path = write_export(&sb, "export.json");
    edit_export(&path, |doc| {
        doc["entries"][1]["outcome"] = serde_json::json!("failure");
    });
    let mut c = sb.cmd();
    c.args(["audit", "verify", "--file"]).arg(&path);
    let r = run(c);
    assert_error(&r, 3, &["seq 2"]);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn audit_verify_names_a_removed_entry() {
    let sb = Sandbox::new();
    let path = write_export(&sb, "export.json");
    edit_export(&path, |doc| {
        let entries = doc["entries"].as_array_mut().expect("entries array");
        entries.remove(1);
    });
    let mut c = sb.cmd();
    c.args(["audit", "verify", "--file"]).arg(&path);
    assert_error(&run(c), 3, &["seq 3"]);
}

#[test]
fn audit_verify_rejects_a_file_that_is_not_an_export() {
    let sb = Sandbox::new();
    let path = sb.write("notes.txt", "this is not JSON\n");
    let mut c = sb.cmd();
    c.args(["audit", "verify", "--file"]).arg(&path);
    assert_error(&run(c), 2, &["notes.txt"]);

    let path = sb.write("other.json", "{\"hello\": 1}\n");
    let mut c = sb.cmd();
    c.args(["audit", "verify", "--file"]).arg(&path);
    assert_error(&run(c), 2, &["other.json"]);
}

#[test]
fn audit_verify_refuses_a_filtered_export_without_proofs() {
    let sb = Sandbox::new();
    let path = write_export(&sb, "export.json");
    edit_export(&path, |doc| doc["filtered"] = serde_json::json!(true));
    let mut c = sb.cmd();
    c.args(["audit", "verify", "--file"]).arg(&path);
    assert_error(&run(c), 3, &["inclusion proof"]);
}

// ---------------------------------------------------------------------------------------------
// The console

#[test]
fn console_without_a_terminal_is_a_usage_error() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.arg("tui").write_stdin("");
    assert_error(&run(c), 2, &["terminal"]);
    let mut c = sb.cmd();
    c.write_stdin("");
    assert_error(&run(c), 2, &["terminal"]);
}

#[test]
fn a_wrong_demo_scenario_is_refused_before_the_screen_is_taken() {
    let sb = Sandbox::new();
    // Missing: named.
    let mut c = sb.cmd();
    c.args(["--scenario", "nowhere.yaml"]).write_stdin("");
    assert_error(&run(c), 2, &["demo scenario nowhere.yaml"]);
    // A step that does two things: its number and what to write.
    let file = sb.work().join("tour.yaml");
    std::fs::write(
        &file,
        "steps:\n  - say: hi\n  - prompt: a\n    command: verify\n",
    )
    .expect("write the scenario");
    let mut c = sb.cmd();
    c.args(["tui", "--scenario"]).arg(&file).write_stdin("");
    assert_error(&run(c), 2, &["tour.yaml, step 2", "a step does one thing"]);
    // What only the operator may do, by either route: the keys of `:backend openai x`, or
    // the command itself.
    std::fs::write(&file, "steps:\n  - key: ':'\n  - key: b\n  - key: enter\n")
        .expect("write the scenario");
    let mut c = sb.cmd();
    c.args(["--scenario"]).arg(&file).write_stdin("");
    assert_error(
        &run(c),
        2,
        &["tour.yaml, step 1", "may not press", "`command:`"],
    );
    std::fs::write(&file, "steps:\n  - command: ' Backend openai x'\n").expect("write");
    let mut c = sb.cmd();
    c.args(["--scenario"]).arg(&file).write_stdin("");
    assert_error(&run(c), 2, &["tour.yaml, step 1", "may not run `:backend`"]);
    // A good one gets as far as asking for a terminal.
    std::fs::write(&file, "steps:\n  - say: hi\n").expect("write the scenario");
    let mut c = sb.cmd();
    c.args(["--scenario"]).arg(&file).write_stdin("");
    assert_error(&run(c), 2, &["terminal"]);
}

// ---------------------------------------------------------------------------------------------
// veyra latency

#[test]
fn latency_for_the_2003_mars_approach_is_about_three_minutes() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.cmd();
    cmd.args([
        "latency",
        "--preset",
        "mars",
        "--at",
        "2003-08-27T00:00:00Z",
    ]);
    let run = run(cmd);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("one-way     3.1 min"), "{}", run.stdout);
    assert!(run.stdout.contains("round trip  6.2 min"), "{}", run.stdout);
    assert!(run.stdout.contains("au)"), "{}", run.stdout);
    assert!(run.stdout.contains("clear"), "{}", run.stdout);
}

#[test]
fn latency_reports_the_2026_solar_conjunction() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.cmd();
    cmd.args([
        "latency",
        "--preset",
        "mars",
        "--at",
        "2026-01-09T00:00:00Z",
        "--json",
    ]);
    let run = run(cmd);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    assert_eq!(report["conjunction"], "blackout");
}

#[test]
fn latency_computes_for_the_configured_start_date_unless_told_another() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "conjunction.yaml",
        "latency:\n  preset: mars\n  start: 2026-01-09T00:00:00Z\n",
    );
    let mut cmd = sandbox.cmd();
    cmd.args(["latency", "--config", "conjunction.yaml", "--json"]);
    let run1 = run(cmd);
    assert_eq!(run1.code, Some(0), "{}", run1.stderr);
    let report: serde_json::Value = serde_json::from_str(&run1.stdout).expect("JSON report");
    assert_eq!(report["conjunction"], "blackout");
    let mut cmd = sandbox.cmd();
    cmd.args([
        "latency",
        "--config",
        "conjunction.yaml",
        "--at",
        "2003-08-27T00:00:00Z",
    ]);
    let run2 = run(cmd);
    assert!(
        run2.stdout.contains("one-way     3.1 min"),
        "{}",
        run2.stdout
    );
    // A date the ephemeris does not cover is refused when the configuration is loaded.
    sandbox.write("far.yaml", "latency:\n  start: 2051-01-01T00:00:00Z\n");
    let mut cmd = sandbox.cmd();
    cmd.args(["latency", "--config", "far.yaml"]);
    assert_error(&run(cmd), 2, &["latency.start", "1800–2050"]);
}

#[test]
fn latency_outside_the_ephemeris_range_is_a_usage_error() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.cmd();
    cmd.args([
        "latency",
        "--preset",
        "mars",
        "--at",
        "2051-01-01T00:00:00Z",
    ]);
    assert_error(&run(cmd), 2, &["1800–2050"]);
    let mut cmd = sandbox.cmd();
    cmd.args(["latency", "--at", "yesterday"]);
    assert_error(&run(cmd), 2, &["RFC 3339"]);
    let mut cmd = sandbox.cmd();
    cmd.args(["latency", "--preset", "venus"]);
    assert_error(&run(cmd), 2, &["earth", "mars"]);
}

// ---------------------------------------------------------------------------------------------
// Signals during veyra run

/// What `veyra run --json hello` did after `kill -SIGNAL` reached it on its uplink.
struct Signalled {
    /// The task's id.
    task: String,
    /// The event lines printed after the signal.
    rest: Vec<String>,
    out: std::process::Output,
}

/// Starts `veyra run --json hello` in `sandbox` (under `nohup` when `nohup`), waits for its
/// task's uplink event (the test waits for the event, not for a time), sends `-SIGNAL`, and
/// collects what follows. `time_scale` slows the Lunar link: at 0.01 a leg takes about two
/// minutes, so the task is surely in flight.
fn signal_on_the_uplink(
    sandbox: &Sandbox,
    nohup: bool,
    time_scale: &str,
    signal: &str,
) -> Signalled {
    use std::io::{BufRead, BufReader};
    let mut cmd = if nohup {
        let mut c = std::process::Command::new("nohup");
        c.arg(env!("CARGO_BIN_EXE_veyra"));
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_veyra"))
    };
    let mut child = cmd
        .args(["run", "--json", "hello"])
        .env_remove("VEYRA_CONFIG")
        .env("HOME", sandbox.dir.path().join("home"))
        .env("XDG_CONFIG_HOME", sandbox.dir.path().join("config"))
        .env("XDG_DATA_HOME", sandbox.dir.path().join("data"))
        .env("XDG_STATE_HOME", sandbox.dir.path().join("state"))
        .env("VEYRA_LATENCY__PRESET", "lunar")
        .env("VEYRA_LATENCY__TIME_SCALE", time_scale)
        .current_dir(sandbox.work())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start veyra");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut task = None;
    for line in lines.by_ref() {
        let line = line.expect("a line");
        if line.contains(r#""state":"uplink""#) {
            let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON event");
            task = event["id"].as_str().map(str::to_string);
            break;
        }
    }
    let task = task.expect("the task went on its uplink");
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let rest = lines.map(|l| l.expect("a line")).collect();
    let out = child.wait_with_output().expect("veyra exits");
    Signalled { task, rest, out }
}

/// `kill -SIGNAL` while `veyra run`'s task is on its uplink: the task is cancelled through the
/// core, stderr says so once, the exit code is 128 + the signal's number, and the stop is in
/// the audit trail with the task it cancelled.
fn signal_cancels_the_task_in_flight(signal: &str, name: &str, code: i32) {
    let sandbox = Sandbox::new();
    let Signalled { task, rest, out } = signal_on_the_uplink(&sandbox, false, "0.01", signal);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "SIG{signal}; stderr: {stderr}"
    );
    let farewell = format!("veyra: {name}: cancelled 1 task in flight (audited); exiting");
    assert_eq!(stderr.matches(&farewell).count(), 1, "{stderr}");
    let last = rest.last().expect("events after the signal");
    assert!(last.contains(r#""state":"cancelled""#), "{last}");
    // The stop is on the record, naming the signal and the task it cancelled.
    let mut c = sandbox.cmd();
    c.args(["audit", "list", "--json"]);
    let listed = run(c);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.contains(r#""shutdown""#) && l.contains(name) && l.contains(&task)),
        "no shutdown entry naming {name} and {task}:\n{}",
        listed.stdout
    );
}

#[test]
fn ctrl_c_cancels_the_task_in_flight_and_exits_130() {
    signal_cancels_the_task_in_flight("INT", "SIGINT", 130);
}

#[test]
fn sigterm_cancels_the_task_in_flight_and_exits_143() {
    signal_cancels_the_task_in_flight("TERM", "SIGTERM", 143);
}

#[test]
fn sighup_cancels_the_task_in_flight_and_exits_129() {
    signal_cancels_the_task_in_flight("HUP", "SIGHUP", 129);
}

#[test]
fn under_nohup_a_hangup_does_not_stop_the_work() {
    // `nohup` starts veyra with SIGHUP ignored; a Lunar leg of about a second keeps the task
    // in flight when the hangup comes, and the task then finishes.
    let sandbox = Sandbox::new();
    let Signalled { rest, out, .. } = signal_on_the_uplink(&sandbox, true, "1", "HUP");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = rest.last().expect("events after the hangup");
    assert!(last.contains(r#""state":"succeeded""#), "{last}");
}

// ---------------------------------------------------------------------------------------------
// The durable audit store

#[test]
fn runs_are_recorded_durably_listed_exported_and_verified() {
    let sb = Sandbox::new();
    for prompt in ["one", "two", "three"] {
        let mut c = sb.cmd();
        c.args(["run", prompt]);
        assert_eq!(run(c).code, Some(0));
    }
    let mut c = sb.cmd();
    c.args(["audit", "verify"]);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // Each run is a policy decision and an execution.
    assert!(r.stdout.contains("6 entries verified"), "{}", r.stdout);

    let mut c = sb.cmd();
    c.args(["audit", "list", "--type", "policy_check"]);
    let r = run(c);
    assert!(r.stdout.contains("3 entries"), "{}", r.stdout);
    assert!(r.stdout.contains("allow"), "{}", r.stdout);

    let mut c = sb.cmd();
    c.args([
        "audit",
        "list",
        "--type",
        "execution",
        "--actor",
        "operator",
    ]);
    let r = run(c);
    assert!(r.stdout.contains("3 entries"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("one") && !r.stdout.contains("three"),
        "prompts never appear: {}",
        r.stdout
    );

    let mut c = sb.cmd();
    c.args(["audit", "export", "--out", "export.json"]);
    assert_eq!(run(c).code, Some(0));
    let mut c = sb.cmd();
    c.args(["audit", "verify", "--file", "export.json"]);
    assert_eq!(run(c).code, Some(0));
}

#[test]
fn tampering_with_the_store_exits_3_naming_the_entry() {
    let sb = Sandbox::new();
    for prompt in ["one", "two", "three"] {
        let mut c = sb.cmd();
        c.args(["run", prompt]);
        assert_eq!(run(c).code, Some(0));
    }
    let db = sb.dir.path().join("data/veyra/audit.db");
    let conn = rusqlite::Connection::open(&db).expect("open the store");
    conn.execute_batch(
        "DROP TRIGGER audit_entries_no_update; UPDATE audit_entries SET actor = 'mallory' WHERE seq = 2;",
    )
    .expect("tamper");
    drop(conn);
    let mut c = sb.cmd();
    c.args(["audit", "verify", "--db"]).arg(&db);
    assert_error(&run(c), 3, &["seq 2", "content changed"]);
    let mut c = sb.cmd();
    c.arg("health");
    let r = run(c);
    assert_eq!(r.code, Some(1));
    assert!(r.stdout.contains("audit: FAILED"), "{}", r.stdout);
}

#[test]
fn a_damaged_or_missing_store_is_a_clear_error() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args(["audit", "verify"]);
    assert_error(&run(c), 1, &["no audit store here"]);
    let junk = sb.write("junk.db", &"x".repeat(5000));
    let mut c = sb.cmd();
    c.args(["audit", "list", "--db"]).arg(&junk);
    assert_error(&run(c), 1, &["not a Veyra audit store"]);
    let mut c = sb.cmd();
    c.args(["audit", "list", "--type", "EXECUTON"]);
    assert_error(&run(c), 2, &["did you mean 'EXECUTION'?"]);
}

// ---------------------------------------------------------------------------------------------
// The safety boundary (exit code 4)

#[test]
fn a_prohibited_execution_exits_4_and_is_recorded() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.env("VEYRA_GOVERNANCE__PROHIBITED_OPERATIONS", "execute:mock")
        .args(["run", "hello"]);
    assert_error(&run(c), 4, &["refused", "prohibited_operations"]);
    let mut c = sb.cmd();
    c.args(["audit", "list", "--type", "SAFETY_VIOLATION"]);
    let r = run(c);
    assert!(r.stdout.contains("1 entries"), "{}", r.stdout);
}

#[test]
fn a_confirmation_without_a_terminal_is_denied_unless_yes() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.env("VEYRA_GOVERNANCE__REQUIRE_CONFIRMATION", "execute")
        .args(["run", "hello"]);
    assert_error(&run(c), 4, &["pass --yes"]);
    let mut c = sb.cmd();
    c.env("VEYRA_GOVERNANCE__REQUIRE_CONFIRMATION", "execute")
        .args(["run", "--yes", "hello"]);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("Acknowledged"));
}

#[test]
fn audit_prove_prints_a_verifiable_inclusion_proof() {
    let sb = Sandbox::new();
    for prompt in ["one", "two", "three"] {
        let mut c = sb.cmd();
        c.args(["run", prompt]);
        assert_eq!(run(c).code, Some(0));
    }
    let mut c = sb.cmd();
    c.args(["audit", "prove", "2"]);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let proof: veyra::governance::merkle::Inclusion =
        serde_json::from_str(&r.stdout).expect("a proof");
    assert_eq!((proof.seq, proof.tree_size, proof.path.len()), (2, 6, 3));
    let mut c = sb.cmd();
    c.args(["audit", "prove", "7"]);
    assert_error(&run(c), 2, &["holds entries 1 to 6"]);
}

#[test]
fn an_export_with_its_tail_cut_off_fails_against_its_checkpoint() {
    let sb = Sandbox::new();
    for prompt in ["one", "two", "three"] {
        let mut c = sb.cmd();
        c.args(["run", prompt]);
        assert_eq!(run(c).code, Some(0));
    }
    let mut c = sb.cmd();
    c.args(["audit", "export", "--out", "export.json"]);
    assert_eq!(run(c).code, Some(0));
    let path = sb.work().join("export.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the export")).expect("JSON");
    assert_eq!(doc["checkpoint"]["tree_size"], 6, "{doc}");
    doc["entries"].as_array_mut().expect("entries").pop();
    std::fs::write(&path, doc.to_string()).expect("write the cut export");
    let mut c = sb.cmd();
    c.args(["audit", "verify", "--file", "export.json"]);
    assert_error(
        &run(c),
        3,
        &[
            "1 acknowledged entry is missing",
            "covers 6 entries but the log holds 5",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// The policy engine

fn multi_jurisdiction(c: &mut Command) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs/policies/multi-jurisdiction");
    c.env("VEYRA_GOVERNANCE__POLICY_FILE", &dir).env(
        "VEYRA_GOVERNANCE__POLICY_ENTITIES",
        dir.join("entities.json"),
    );
}

#[test]
fn policy_check_answers_from_the_shell_with_exit_0_or_4() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args([
        "policy",
        "check",
        "--principal",
        "operator",
        "--action",
        "execute",
        "--resource",
        "backend:mock",
    ]);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.starts_with("allow"), "{}", r.stdout);
    assert!(
        r.stdout.contains("permit operator-operates [Sol]"),
        "{}",
        r.stdout
    );

    let mut c = sb.cmd();
    multi_jurisdiction(&mut c);
    c.args([
        "policy",
        "check",
        "--principal",
        "operator",
        "--action",
        "execute",
        "--resource",
        "backend:mock",
        "--context",
        r#"{"priority":"background","preset":"deep-space"}"#,
        "--json",
    ]);
    let r = run(c);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(doc["decision"], "deny");
    assert_eq!(doc["request"]["resource"], "backend:mock");
    assert_eq!(doc["request"]["context"]["destination"], "Deep-Space");
    let ids: Vec<&str> = doc["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "earth-no-offworld-background",
            "habitat-no-deep-space-relay"
        ]
    );

    let mut c = sb.cmd();
    c.args(["policy", "list"]);
    let r = run(c);
    assert_eq!(r.code, Some(0));
    assert!(r.stdout.starts_with("6 policies from"), "{}", r.stdout);
}

#[test]
fn policy_check_refuses_malformed_questions() {
    let sb = Sandbox::new();
    for (args, needle) in [
        (
            vec![
                "--principal",
                "operator",
                "--action",
                "exectue",
                "--resource",
                "backend:mock",
            ],
            "did you mean 'execute'",
        ),
        (
            vec![
                "--principal",
                "operator",
                "--action",
                "execute",
                "--resource",
                "bakend:mock",
            ],
            "did you mean 'backend'",
        ),
        (
            vec![
                "--principal",
                "operator",
                "--action",
                "execute",
                "--resource",
                "backend:mock",
                "--context",
                "{priority",
            ],
            "--context: not JSON",
        ),
        (
            vec![
                "--principal",
                "operator",
                "--action",
                "execute",
                "--resource",
                "backend:mock",
                "--context",
                r#"{"prompt_chars":"many"}"#,
            ],
            "prompt_chars",
        ),
        (
            vec![
                "--principal",
                " ",
                "--action",
                "execute",
                "--resource",
                "backend:mock",
            ],
            "--principal is empty",
        ),
    ] {
        let mut c = sb.cmd();
        c.args(["policy", "check"]).args(&args);
        assert_error(&run(c), 2, &[needle]);
    }
}

#[test]
fn a_policy_denial_exits_4_and_is_recorded_as_policy_check() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    multi_jurisdiction(&mut c);
    c.args(["run", "--priority", "background", "reindex the archive"]);
    assert_error(
        &run(c),
        4,
        &[
            "refused",
            "Earth compute is reserved",
            "earth-no-offworld-background",
        ],
    );
    let mut c = sb.cmd();
    c.args(["audit", "list", "--type", "POLICY_CHECK", "--json"]);
    let r = run(c);
    let entry: serde_json::Value =
        serde_json::from_str(r.stdout.lines().next().expect("one entry")).expect("JSON");
    assert_eq!(entry["outcome"], "deny");
    assert_eq!(
        entry["metadata"]["policies"][0],
        "earth-no-offworld-background"
    );
    assert!(
        !r.stdout.contains("reindex"),
        "the prompt never reaches the audit trail"
    );
    let mut c = sb.cmd();
    c.args(["audit", "list", "--type", "EXECUTION"]);
    assert!(
        run(c).stdout.contains("0 entries"),
        "the model was never called"
    );
}

#[test]
fn a_policy_file_that_does_not_validate_stops_start_up_with_file_and_line() {
    let sb = Sandbox::new();
    let bad = sb.write(
        "rules.cedar",
        "@id(\"typo\")\npermit (\n  principal == Veyra::Actr::\"operator\",\n  action,\n  resource\n);\n",
    );
    for args in [vec!["run", "hello"], vec!["health"], vec!["policy", "list"]] {
        let mut c = sb.cmd();
        c.env("VEYRA_GOVERNANCE__POLICY_FILE", &bad).args(&args);
        assert_error(
            &run(c),
            2,
            &[
                &format!("{}:3:", bad.display()),
                "unrecognized entity type `Veyra::Actr`",
                "did you mean `Veyra::Actor`?",
            ],
        );
    }
    let unparsable = sb.write(
        "broken.cedar",
        "permit (principal, action, resource) when {",
    );
    let mut c = sb.cmd();
    c.env("VEYRA_GOVERNANCE__POLICY_FILE", &unparsable)
        .args(["run", "hello"]);
    assert_error(&run(c), 2, &[&format!("{}:1:", unparsable.display())]);
}

#[test]
fn a_store_locked_by_another_program_is_a_clear_error_and_stays_readable() {
    let sb = Sandbox::new();
    let mut c = sb.cmd();
    c.args(["run", "one"]);
    assert_eq!(run(c).code, Some(0));
    let db = sb.dir.path().join("data/veyra/audit.db");
    let conn = rusqlite::Connection::open(&db).expect("open the store");
    conn.execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");
    // The writer waits out SQLite's busy timeout, then gives up without writing anything.
    let mut c = sb.cmd();
    c.args(["run", "two"]);
    assert_error(&run(c), 1, &["database is locked", "another program"]);
    // Readers are not blocked by a writer in WAL mode.
    let mut c = sb.cmd();
    c.args(["audit", "verify"]);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    conn.execute_batch("ROLLBACK").expect("release the lock");
    drop(conn);
    let mut c = sb.cmd();
    c.args(["run", "three"]);
    assert_eq!(
        run(c).code,
        Some(0),
        "the store works again once the lock is gone"
    );
    let mut c = sb.cmd();
    c.args(["audit", "verify"]);
    let r = run(c);
    assert!(r.stdout.contains("4 entries verified"), "{}", r.stdout);
}
