//! End-to-end tests of the console in a real pseudo-terminal: the `veyra` binary runs in a pty,
//! its output is fed into a `vt100` terminal emulator, and the tests read the emulated screen
//! the way an operator would.
//!
//! Covered: at 100×30 the console draws the `Tasks` and `Prompt` panes; typing `i`, a prompt and
//! Enter submits it; the mock backend's answer (`Acknowledged …`) appears in the `Output` pane
//! and the task is marked `✓`; `y` copies it with an OSC 52 sequence; `q` quits with exit status 0 and the terminal has left the
//! alternate screen. At 50×12 the console says `Terminal too small` and `q` still quits.
//! `Ctrl-C` while editing clears the draft and a second `Ctrl-C` quits; SIGTERM, SIGHUP and
//! SIGINT close the console, cancelling (and auditing) what is in flight, saying so on stderr
//! and exiting 143, 129, 130; all restore the terminal. `veyra bench --tui` quit mid-run names
//! the run and prints its resume command; `veyra bench`'s bars leave nothing after Ctrl-C.
//!
//! Hostile input: a hostile OpenAI-compatible server streams escape sequences and
//! C1 controls into the Output pane and echoes the key: neither the emulated screen nor the raw
//! bytes written to the terminal carry them, and the other panes survive a `\e[2J`. `veyra run`
//! on a terminal shows escapes as placeholders (`--raw` passes them). Typing through the moment
//! a confirmation arrives answers nothing: the request still waits afterwards.
//!
//! One runtime, many terminals: a console hosting the runtime, a second console attached to it
//! and `veyra run` from a third terminal on the same store — a question asked in both consoles
//! and answered from the second, every task in both Tasks panes, one trail that verifies.
//!
//! The child gets the same clean environment as `tests/cli.rs` (HOME and XDG directories in a
//! temporary directory, no `VEYRA_*` variables, an empty working directory) plus
//! `TERM=xterm-256color`.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

/// How long any one expected screen state may take to appear.
const DEADLINE: Duration = Duration::from_secs(20);

/// A running `veyra` console in a pseudo-terminal.
struct Console {
    parser: Arc<Mutex<vt100::Parser>>,
    /// Every byte the child wrote to the terminal.
    raw: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    // Kept open for the life of the session; dropping it closes the pty.
    _master: Box<dyn MasterPty + Send>,
    /// The sandbox, shared by consoles started beside this one.
    _dir: Arc<tempfile::TempDir>,
    /// The extra environment the console was started with.
    env: Vec<(String, String)>,
}

impl Console {
    /// Starts `veyra` (no subcommand: the console) in a `cols`×`rows` pty.
    fn start(cols: u16, rows: u16) -> Console {
        Self::start_with(cols, rows, &[])
    }

    /// As [`Console::start`], with extra environment variables (config overrides).
    fn start_with(cols: u16, rows: u16, env: &[(&str, &str)]) -> Console {
        Self::start_args(cols, rows, env, &[])
    }

    /// `veyra ARGS` in a `cols`×`rows` pty, with extra environment variables.
    fn start_args(cols: u16, rows: u16, env: &[(&str, &str)], args: &[&str]) -> Console {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        for sub in ["home", "config", "data", "work"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create sandbox directory");
        }
        // Runtimes' sockets: private, as a login's runtime directory is.
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).expect("create sandbox directory");
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("make the runtime directory private");
        Self::spawn(Arc::new(dir), cols, rows, env, args)
    }

    /// Another `veyra ARGS` in the same sandbox (same home, data and environment) in a pty of
    /// its own: a second terminal on the same machine.
    fn start_beside(&self, cols: u16, rows: u16, args: &[&str]) -> Console {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Self::spawn(Arc::clone(&self._dir), cols, rows, &env, args)
    }

    fn spawn(
        dir: Arc<tempfile::TempDir>,
        cols: u16,
        rows: u16,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Console {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");

        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_veyra"));
        cmd.args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("VEYRA_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env_remove("VEYRA_CONFIG");
        cmd.env_remove("NO_COLOR");
        cmd.env("HOME", dir.path().join("home"));
        cmd.env("XDG_CONFIG_HOME", dir.path().join("config"));
        cmd.env("XDG_DATA_HOME", dir.path().join("data"));
        cmd.env("XDG_STATE_HOME", dir.path().join("state"));
        cmd.env("XDG_RUNTIME_DIR", dir.path().join("run"));
        cmd.env("TERM", "xterm-256color");
        cmd.env("RUST_BACKTRACE", "1");
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd.cwd(dir.path().join("work"));

        let child = pty
            .slave
            .spawn_command(cmd)
            .expect("spawn veyra in the pty");
        // Only the child holds the slave side now, so the reader sees EOF when it exits.
        drop(pty.slave);

        let parser = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let mut source = pty.master.try_clone_reader().expect("pty reader");
        let sink = Arc::clone(&parser);
        let raw_sink = Arc::clone(&raw);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match source.read(&mut buf) {
                    // EOF, or EIO once the child has closed the slave side.
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Ok(mut r) = raw_sink.lock() {
                            r.extend_from_slice(&buf[..n]);
                        }
                        match sink.lock() {
                            Ok(mut p) => p.process(&buf[..n]),
                            Err(_) => break,
                        }
                    }
                }
            }
        });
        let writer = pty.master.take_writer().expect("pty writer");
        Console {
            parser,
            raw,
            reader: Some(reader),
            writer,
            child,
            _master: pty.master,
            _dir: dir,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// `veyra ARGS` run headless in the console's sandbox (same home, data and environment),
    /// e.g. to read the audit trail the console left.
    fn veyra_beside(&self, args: &[&str]) -> std::process::Output {
        let dir = self._dir.path();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_veyra"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("VEYRA_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env_remove("NO_COLOR")
            .env("HOME", dir.join("home"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.join("work"))
            .args(args);
        cmd.output().expect("run veyra beside the console")
    }

    /// The screen as text, one line per row.
    fn screen_text(&self) -> String {
        match self.parser.lock() {
            Ok(p) => p.screen().contents(),
            Err(poisoned) => poisoned.into_inner().screen().contents(),
        }
    }

    /// Polls the screen until `ready` holds; fails with a dump of the screen after the deadline.
    fn wait_for(&mut self, what: &str, ready: impl Fn(&str) -> bool) {
        let start = Instant::now();
        loop {
            let text = self.screen_text();
            if ready(&text) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader drain what the child wrote before it went away.
                std::thread::sleep(Duration::from_millis(200));
                let text = self.screen_text();
                if ready(&text) {
                    return;
                }
                panic!("veyra exited ({status:?}) while waiting for {what}; screen:\n{text}");
            }
            if start.elapsed() > DEADLINE {
                // `kill` sends SIGHUP first, on which veyra restores the terminal: dump first.
                let _ = self.child.kill();
                panic!("timed out after {DEADLINE:?} waiting for {what}; screen:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `bytes` into the terminal.
    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to the pty");
        self.writer.flush().expect("flush the pty");
    }

    /// Waits for the child to exit and the reader to reach EOF; returns the exit status.
    fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let start = Instant::now();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() > DEADLINE => {
                    // `kill` sends SIGHUP first, on which veyra restores the terminal: take the
                    // screen before that.
                    let screen = self.screen_text();
                    let _ = self.child.kill();
                    panic!("veyra did not exit within {DEADLINE:?}; screen:\n{screen}");
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("waiting for veyra: {e}"),
            }
        };
        if let Some(reader) = self.reader.take() {
            // The child is gone, so the slave side is closed and the reader ends soon.
            let start = Instant::now();
            while !reader.is_finished() && start.elapsed() < DEADLINE {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                reader.is_finished(),
                "the pty reader did not reach EOF after veyra exited"
            );
            reader.join().expect("the pty reader panicked");
        }
        status
    }

    /// The bytes written to the terminal so far.
    fn raw_bytes(&self) -> Vec<u8> {
        match self.raw.lock() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn alternate_screen(&self) -> bool {
        match self.parser.lock() {
            Ok(p) => p.screen().alternate_screen(),
            Err(poisoned) => poisoned.into_inner().screen().alternate_screen(),
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        // Never leave a console running behind a failed test.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// True when some row shows the task marked done: `✓` left of the task's title.
fn task_done(screen: &str, title_start: &str) -> bool {
    screen
        .lines()
        .any(|line| match (line.find('✓'), line.find(title_start)) {
            (Some(mark), Some(title)) => mark < title,
            _ => false,
        })
}

#[test]
fn submit_a_prompt_see_the_answer_and_quit() {
    let mut console = Console::start(100, 30);
    console.wait_for("the Tasks and Prompt panes", |s| {
        s.contains("Tasks") && s.contains("Prompt") && s.contains("Output")
    });
    assert!(
        console.alternate_screen(),
        "the console should draw on the alternate screen"
    );

    // `i` starts editing; the Prompt title then shows the editing keys.
    console.send(b"i");
    console.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    console.send(b"Summarise the habitat telemetry");
    console.wait_for("the typed prompt", |s| {
        s.contains("Summarise the habitat telemetry")
    });
    console.send(b"\r");

    console.wait_for("the mock answer in the Output pane", |s| {
        s.contains("Acknowledged")
    });
    console.wait_for("the task marked ✓", |s| task_done(s, "Summar"));

    // The prompt stays in editing mode after a submit, so `q` alone would be typed into it:
    // leave editing with Esc first (sent on its own so it is not read as Alt-q).
    console.send(b"\x1b");
    console.wait_for("the Prompt out of editing mode", |s| {
        s.contains("to type a prompt")
    });
    // `y` copies the answer through the terminal: an OSC 52 sequence is written.
    console.send(b"y");
    console.wait_for("the copy reported", |s| s.contains("copied "));
    assert!(
        has(&console.raw_bytes(), b"\x1b]52;c;"),
        "no OSC 52 sequence was written"
    );
    console.send(b"q");
    let status = console.wait_exit();
    let screen = console.screen_text();
    assert!(
        status.success(),
        "veyra exited with {status:?}; screen:\n{screen}"
    );
    assert!(
        !console.alternate_screen(),
        "the terminal is still on the alternate screen after exit; screen:\n{screen}"
    );
    assert!(
        !screen.contains("panicked"),
        "a panic was printed; screen:\n{screen}"
    );
}

/// The rows that draw a focused pane's frame (thick rules), which say where focus is.
fn focus_rows(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter(|l| l.contains('━') || l.contains('┏'))
        .map(str::to_string)
        .collect()
}

#[test]
fn shift_tab_as_terminals_send_it_moves_focus_back() {
    let mut console = Console::start(100, 30);
    console.wait_for("the console", |s| {
        s.contains("Tasks") && s.contains("Prompt")
    });
    let start = focus_rows(&console.screen_text());
    assert!(!start.is_empty(), "no focused pane drawn");
    console.send(b"\t");
    console.wait_for("focus on the next pane", |s| focus_rows(s) != start);
    // What a terminal sends for Shift-Tab: `ESC [ Z`.
    console.send(b"\x1b[Z");
    console.wait_for("focus back where it started", |s| focus_rows(s) == start);
    let screen = console.screen_text();
    assert!(
        !screen.contains("does nothing here"),
        "Shift-Tab was not recognised:\n{screen}"
    );
    console.send(b"q");
    assert!(console.wait_exit().success());
}

#[test]
fn too_small_terminal_says_so_and_q_still_quits() {
    let mut console = Console::start(50, 12);
    console.wait_for("the too-small notice", |s| s.contains("Terminal too small"));
    console.send(b"q");
    let status = console.wait_exit();
    let screen = console.screen_text();
    assert!(
        status.success(),
        "veyra exited with {status:?}; screen:\n{screen}"
    );
    assert!(
        !console.alternate_screen(),
        "the terminal is still on the alternate screen after exit; screen:\n{screen}"
    );
}

#[test]
fn ctrl_c_clears_a_draft_then_quits_and_restores_the_terminal() {
    let mut console = Console::start(100, 30);
    console.wait_for("the Tasks and Prompt panes", |s| {
        s.contains("Tasks") && s.contains("Prompt")
    });
    console.send(b"i");
    console.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    console.send(b"half a thought");
    console.wait_for("the typed text", |s| s.contains("half a thought"));
    console.send(b"\x03");
    console.wait_for("the draft cleared", |s| {
        !s.contains("half a thought") && s.contains("draft cleared")
    });
    console.send(b"\x03");
    let status = console.wait_exit();
    let screen = console.screen_text();
    assert!(
        status.success(),
        "veyra exited with {status:?}; screen:\n{screen}"
    );
    assert!(
        !console.alternate_screen(),
        "the terminal is still on the alternate screen after exit; screen:\n{screen}"
    );
}

#[test]
fn sigint_closes_the_console_and_restores_the_terminal() {
    let mut console = Console::start(100, 30);
    console.wait_for("the Tasks and Prompt panes", |s| {
        s.contains("Tasks") && s.contains("Prompt")
    });
    let pid = console.child.process_id().expect("the child's pid");
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -INT {pid} failed");
    let status = console.wait_exit();
    let screen = console.screen_text();
    assert!(
        status.signal().is_none(),
        "veyra died of {status:?} instead of closing; screen:\n{screen}"
    );
    // 128 + 2, as shells report a process SIGINT ended; said once the terminal is back.
    assert_eq!(status.exit_code(), 130, "screen:\n{screen}");
    assert!(
        screen.contains("veyra: SIGINT: nothing was in flight; exiting"),
        "screen:\n{screen}"
    );
    assert!(
        !console.alternate_screen(),
        "the terminal is still on the alternate screen after SIGINT; screen:\n{screen}"
    );
    let raw = console.raw_bytes();
    assert!(
        raw.windows(8).any(|w| w == b"\x1b[?1049l"),
        "the alternate screen was never left"
    );
    assert!(
        raw.windows(6).any(|w| w == b"\x1b[?25h"),
        "the cursor was never shown again"
    );
}

#[test]
fn sigterm_closes_the_console_and_restores_the_terminal() {
    let mut console = Console::start(100, 30);
    console.wait_for("the Tasks and Prompt panes", |s| {
        s.contains("Tasks") && s.contains("Prompt")
    });
    let pid = console.child.process_id().expect("the child's pid");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -TERM {pid} failed");
    let status = console.wait_exit();
    let screen = console.screen_text();
    // Veyra handles SIGTERM itself: it closes the console and exits normally instead of dying
    // of the signal.
    assert!(
        status.signal().is_none(),
        "veyra died of {status:?} instead of closing; screen:\n{screen}"
    );
    assert_eq!(status.exit_code(), 143, "screen:\n{screen}");
    assert!(
        !console.alternate_screen(),
        "the terminal is still on the alternate screen after SIGTERM; screen:\n{screen}"
    );
}

/// Sends `signal` (`TERM`, `HUP`, `INT`) to the console while a prompt runs on a slow mock:
/// the console cancels it through the core, gives the terminal back, says what it cancelled
/// on stderr (after the alternate screen is left, so it stays on the operator's screen) and
/// exits with 128 + the signal's number; the audit trail holds the cancelled execution.
fn signal_with_a_task_in_flight(signal: &str, name: &str, code: u32) {
    let mut console = Console::start_with(
        100,
        30,
        // Each streamed token takes 2 s: the answer is still coming when the signal arrives.
        &[("VEYRA_MODEL__MOCK__TOKEN_DELAY_MS", "2000")],
    );
    console.wait_for("the Tasks and Prompt panes", |s| {
        s.contains("Tasks") && s.contains("Prompt")
    });
    console.send(b"i");
    console.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    console.send(b"A long answer, please\r");
    console.wait_for("the task running", |s| s.contains("· running"));
    let pid = console.child.process_id().expect("the child's pid");
    let killed = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -{signal} {pid} failed");
    let status = console.wait_exit();
    let screen = console.screen_text();
    assert!(
        status.signal().is_none(),
        "veyra died of {status:?} instead of closing; screen:\n{screen}"
    );
    assert_eq!(status.exit_code(), code, "SIG{signal}; screen:\n{screen}");
    assert!(
        !console.alternate_screen(),
        "the terminal is still on the alternate screen after SIG{signal}; screen:\n{screen}"
    );
    let farewell = format!("veyra: {name}: cancelled 1 task in flight (audited); exiting");
    assert_eq!(
        screen.matches(&farewell).count(),
        1,
        "said once, on the restored screen:\n{screen}"
    );
    let raw = console.raw_bytes();
    let left = raw
        .windows(8)
        .rposition(|w| w == b"\x1b[?1049l")
        .expect("the alternate screen was left");
    let said = raw
        .windows(farewell.len())
        .position(|w| w == farewell.as_bytes())
        .expect("the farewell was written");
    assert!(
        said > left,
        "the farewell was written before the terminal was restored"
    );
    // The cancellation is on the record like any other.
    let list = console.veyra_beside(&["audit", "list", "--json"]);
    let entries = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(
        entries
            .lines()
            .any(|l| l.contains("\"execute\"") && l.contains("\"cancelled\"")),
        "no cancelled execution in the audit trail:\n{entries}"
    );
}

#[test]
fn sigterm_with_a_task_in_flight_cancels_it_audited_says_so_and_exits_143() {
    signal_with_a_task_in_flight("TERM", "SIGTERM", 143);
}

#[test]
fn sighup_with_a_task_in_flight_cancels_it_audited_says_so_and_exits_129() {
    signal_with_a_task_in_flight("HUP", "SIGHUP", 129);
}

#[test]
fn sigint_with_a_task_in_flight_cancels_it_audited_says_so_and_exits_130() {
    signal_with_a_task_in_flight("INT", "SIGINT", 130);
}

/// The Runtime issue's acceptance check: on a simulated Mars link (`fixed`: 12.7 light-minutes
/// each way, compressed 600× to about 1.3 s) a prompt visibly goes up, runs and comes down, and
/// `c` cancels a second one mid-flight.
#[test]
fn a_prompt_travels_the_mars_link_and_c_cancels_one_mid_flight() {
    let mut console = Console::start_with(
        100,
        30,
        &[
            ("VEYRA_LATENCY__SIMULATE", "true"),
            ("VEYRA_LATENCY__PRESET", "mars"),
            ("VEYRA_LATENCY__MODE", "fixed"),
            ("VEYRA_LATENCY__TIME_SCALE", "600"),
            ("VEYRA_MODEL__MOCK__TOKEN_DELAY_MS", "60"),
        ],
    );
    console.wait_for("the status bar on the mars link", |s| {
        s.contains("mars fixed")
    });
    console.send(b"i");
    console.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    console.send(b"Plan the traverse\r");
    console.wait_for("the task on its uplink", |s| {
        s.contains("· uplink ") && s.contains("↑")
    });
    console.wait_for("the task running", |s| s.contains("· running"));
    console.wait_for("the answer on its downlink", |s| {
        s.contains("· downlink ") && s.contains("Acknowledged")
    });
    console.wait_for("the task marked ✓", |s| task_done(s, "Plan the"));

    console.send(b"Cancel me\r");
    console.wait_for("the second task on its uplink", |s| {
        s.contains("· uplink ") && s.contains("Cancel me")
    });
    console.send(b"\x1b");
    console.wait_for("the Prompt out of editing mode", |s| {
        s.contains("to type a prompt")
    });
    console.send(b"c");
    console.wait_for("the second task cancelled", |s| {
        s.contains("· cancelled") && s.contains("⊗")
    });
    console.send(b"q");
    let status = console.wait_exit();
    assert!(status.success(), "veyra exited with {status:?}");
}

/// True when `bytes` hold `needle`.
fn has(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle)
}

/// True when `bytes` hold a C1 control as UTF-8 (`C2 80`–`C2 9F`).
fn has_c1(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .any(|w| w[0] == 0xC2 && (0x80..=0x9F).contains(&w[1]))
}

/// The key the hostile server echoes.
const HOSTILE_KEY: &str = "sk-hostile-PTY-SENTINEL-5eed";

fn hostile_chunk(content: &str) -> String {
    let chunk = serde_json::json!({
        "id": "c1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}],
    });
    format!("data: {chunk}\n\n")
}

#[test]
fn a_hostile_server_cannot_drive_the_console_or_show_the_key() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        let mut body = String::new();
        for piece in [
            "Hello \u{1b}]0;PWNED\u{7}",
            "\u{1b}[2J\u{1b}[H",
            "\u{1b}]52;c;cHduZWQ=\u{7}",
            "\u{9b}31mred",
            &format!(" key {HOSTILE_KEY}"),
            " \u{202e}gnp.exe done.",
        ] {
            body.push_str(&hostile_chunk(piece));
        }
        body.push_str(
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
        );
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "text/event-stream"),
            )
            .mount(&server)
            .await;
        server
    });
    let base = format!("{}/v1", server.uri());
    let mut console = Console::start_with(
        120,
        40,
        &[
            ("VEYRA_MODEL__BACKEND", "openai"),
            ("VEYRA_MODEL__BASE_URL", &base),
            ("VEYRA_MODEL__API_KEY_ENV", "HOSTILE_PTY_KEY"),
            ("HOSTILE_PTY_KEY", HOSTILE_KEY),
        ],
    );
    console.wait_for("the console", |s| {
        s.contains("Tasks") && s.contains("Prompt") && s.contains("Output")
    });
    let before = console.raw_bytes().len();
    console.send(b"i");
    console.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    console.send(b"Tell me a story\r");
    console.wait_for("the task marked ✓", |s| task_done(s, "Tell me"));
    console.wait_for("the hostile answer shown as placeholders", |s| {
        s.contains("PWNED␇") && s.contains("done.") && s.contains("[redacted]")
    });
    let screen = console.screen_text();
    for pane in ["Tasks", "Output", "Log", "Audit", "Safety", "Prompt"] {
        assert!(
            screen.contains(pane),
            "the {pane} pane is gone after \\e[2J; screen:\n{screen}"
        );
    }
    assert!(screen.contains("␛[2J"), "{screen}");
    assert!(
        !screen.contains(HOSTILE_KEY),
        "the key is on screen:\n{screen}"
    );
    let raw = console.raw_bytes();
    let after = raw.get(before..).unwrap_or_default();
    for (what, needle) in [
        ("an OSC sequence", &b"\x1b]"[..]),
        ("a screen clear", b"\x1b[2J"),
        ("a bidi override", "\u{202e}".as_bytes()),
        ("the key", HOSTILE_KEY.as_bytes()),
    ] {
        assert!(!has(after, needle), "{what} reached the terminal");
    }
    assert!(!has_c1(after), "a C1 control reached the terminal");
    console.send(b"\x1b");
    console.wait_for("the Prompt out of editing mode", |s| {
        s.contains("to type a prompt")
    });
    console.send(b"q");
    assert!(console.wait_exit().success());
}

#[test]
fn typing_through_a_confirmation_answers_nothing() {
    let mut console = Console::start_with(
        100,
        30,
        &[("VEYRA_GOVERNANCE__REQUIRE_CONFIRMATION", "execute:mock")],
    );
    console.wait_for("the console", |s| {
        s.contains("Tasks") && s.contains("Prompt")
    });
    console.send(b"i");
    console.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    console.send(b"Check the seals\r");
    // Keep typing, y and n included, through the moment the request arrives and after it.
    let text = "why yes and no nnnn yyyy ";
    for c in text.bytes().cycle().take(60) {
        console.send(&[c]);
        std::thread::sleep(Duration::from_millis(15));
    }
    console.wait_for("the request announced, still waiting", |s| {
        s.contains("1 confirmation waiting") && s.contains("1 waiting")
    });
    let screen = console.screen_text();
    assert!(
        !screen.contains("Acknowledged") && !task_done(&screen, "Check the"),
        "typed text approved the operation; screen:\n{screen}"
    );
    assert!(
        !screen.contains("Confirm operation"),
        "the modal opened under the operator's fingers; screen:\n{screen}"
    );
    assert!(screen.contains("why yes and no"), "{screen}");

    // Leaving the prompt opens the modal; after its guard interval, y allows.
    console.send(b"\x1b");
    console.wait_for("the modal", |s| {
        s.contains("Confirm operation") && s.contains("rule:")
    });
    std::thread::sleep(Duration::from_millis(700));
    console.send(b"y");
    console.wait_for("the answer once allowed", |s| s.contains("Acknowledged"));
    console.wait_for("the task marked ✓", |s| task_done(s, "Check the"));
    console.send(b"q");
    assert!(console.wait_exit().success());
}

#[test]
fn veyra_run_on_a_terminal_shows_escapes_as_placeholders() {
    let prompt = "hi \u{1b}]0;PWNED\u{7}\u{1b}[2J \u{9b}6n \u{202e}abc";
    let mut run = Console::start_args(100, 30, &[], &["run", prompt]);
    let status = run.wait_exit();
    let raw = run.raw_bytes();
    let shown = String::from_utf8_lossy(&raw).into_owned();
    assert!(status.success(), "{status:?}: {shown}");
    assert!(
        !raw.contains(&0x1b),
        "an escape reached the terminal: {shown:?}"
    );
    assert!(
        !has_c1(&raw),
        "a C1 control reached the terminal: {shown:?}"
    );
    assert!(
        shown.contains("␛]0;PWNED␇␛[2J <U+009B>6n <U+202E>abc"),
        "{shown}"
    );

    // `--raw` is the operator's explicit choice to pass the bytes through.
    let mut run = Console::start_args(100, 30, &[], &["run", "--raw", prompt]);
    assert!(run.wait_exit().success());
    assert!(has(&run.raw_bytes(), b"\x1b]0;PWNED\x07"));

    // An argument quoted back by another command is shown, not obeyed.
    let mut run = Console::start_args(
        100,
        30,
        &[],
        &[
            "policy",
            "check",
            "--principal",
            "\u{1b}[31mx\u{9b}",
            "--action",
            "execute",
            "--resource",
            "backend:mock",
        ],
    );
    run.wait_exit();
    let raw = run.raw_bytes();
    let shown = String::from_utf8_lossy(&raw).into_owned();
    assert!(shown.contains("␛[31mx"), "{shown}");
    assert!(!raw.contains(&0x1b) && !has_c1(&raw), "{shown:?}");
}

/// Issue #11's console checks: in `reversible_only` mode a model's `file_write` succeeds and
/// `:undo` restores the file; a `file_delete` asks, `n` refuses it, the model is told, and the
/// refusal is in the Safety pane.
#[test]
fn a_model_writes_a_file_undo_restores_it_and_a_refused_delete_is_told() {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let workspace = scratch.path().join("workspace");
    std::fs::create_dir_all(&workspace).expect("the workspace");
    let config = scratch.path().join("veyra.yaml");
    std::fs::write(
        &config,
        format!(
            r#"model:
  mock:
    script:
      - pattern: "write the report"
        tool_calls:
          - name: file_write
            arguments: {{ path: report.md, content: "power nominal" }}
        response: "written: {{result}}"
      - pattern: "clean up"
        tool_calls:
          - name: file_delete
            arguments: {{ path: keep.md }}
        response: "model was told: {{result}}"
governance:
  reversible_only: true
tools:
  workspace: {}
"#,
            workspace.display()
        ),
    )
    .expect("write the config");
    let config = config.to_string_lossy().into_owned();
    let mut console = Console::start_args(120, 36, &[], &["--config", &config]);
    console.wait_for("the console", |s| {
        s.contains("Tasks") && s.contains("Prompt")
    });
    console.send(b"i");
    console.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    console.send(b"write the report\r");
    console.wait_for("the tool step inline and the answer", |s| {
        s.contains("⚙ file_write") && s.contains("written:")
    });
    assert_eq!(
        std::fs::read_to_string(workspace.join("report.md")).expect("the model wrote it"),
        "power nominal"
    );
    console.send(b"\x1b");
    console.wait_for("the prompt left", |s| s.contains("press i to type"));
    console.send(b":undo\r");
    // Said twice, by whichever comes last: the command's answer, or the undo's own tool
    // event (the same news from the audit trail).
    console.wait_for("the undo reported", |s| {
        s.contains("undid entry 4: report.md is as it was before")
            || s.contains("tool undo: success — removed 'report.md', which entry 4 created")
    });
    assert!(
        !workspace.join("report.md").exists(),
        "undo removed the new file"
    );

    std::fs::write(workspace.join("keep.md"), "keep me").expect("a file to keep");
    console.send(b"i");
    console.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    console.send(b"clean up\r");
    std::thread::sleep(Duration::from_millis(100));
    console.send(b"\x1b");
    console.wait_for("the modal with the tool and its arguments", |s| {
        s.contains("Confirm operation")
            && s.contains("tool:file_delete")
            && s.contains("keep.md")
            && s.contains("until the console closes")
    });
    std::thread::sleep(Duration::from_millis(700));
    console.send(b"n");
    console.wait_for("the refusal in Output and Safety", |s| {
        s.contains("model was told: refused:") && s.contains("Safety (1)")
    });
    assert_eq!(
        std::fs::read_to_string(workspace.join("keep.md")).expect("still there"),
        "keep me"
    );
    console.send(b"q");
    assert!(console.wait_exit().success());
}

/// `veyra bench --tui`: the Benchmarks pane opens zoomed with the run going, its bars fill as
/// tasks finish, the V-Score comes with its interval, Enter lists the misses, the stored run
/// joins the history; `b` starts another run and `c` cancels it.
#[test]
fn bench_tui_watches_a_run_fill_then_b_and_c_start_and_cancel_one() {
    let mut console = Console::start_args(
        100,
        30,
        &[
            // One task at a time, each answer streamed slowly enough to watch.
            ("VEYRA_RUNTIME__MAX_CONCURRENT", "1"),
            ("VEYRA_MODEL__MOCK__TOKEN_DELAY_MS", "15"),
        ],
        &[
            "bench",
            "--tui",
            "--family",
            "cplc,msga",
            "--count",
            "4",
            "--seed",
            "7",
        ],
    );
    console.wait_for("the zoomed Benchmarks pane running", |s| {
        s.contains("Benchmarks · running · zoomed")
    });
    // Live: a bar part-filled, before the run ends.
    console.wait_for("a bar part-filled", |s| {
        s.lines()
            .any(|l| l.contains("CPLC") && ["1/4", "2/4", "3/4"].iter().any(|n| l.contains(n)))
    });
    console.wait_for("the run complete with its interval", |s| {
        // Every answer wrong: a score of exactly 0 has its one-sided Wilson interval, no ±.
        s.contains("Benchmarks · complete") && s.contains("V-Score 0.000  95% CI 0.000–")
    });
    console.wait_for("the run in the history", |s| {
        s.contains("history ▁ last 0.000 · 1 run")
    });
    console.send(b"\r");
    console.wait_for("the misses", |s| {
        s.contains("Benchmark misses") && s.contains("cplc-medium-s7-0000")
    });
    console.send(b"\x1b");
    // Esc then a key at once reads as Alt-key: let the overlay close first.
    console.wait_for("the misses closed", |s| !s.contains("Benchmark misses"));
    console.send(b"b");
    console.wait_for("a second run going", |s| s.contains("Benchmarks · running"));
    console.send(b"c");
    console.wait_for("the second run cancelled", |s| {
        s.contains("Benchmarks · cancelled")
    });
    // q asks first while a task is still in flight (the cancelled run's last task may not have
    // ended yet): then y quits.
    console.send(b"q");
    let start = Instant::now();
    while console.child.try_wait().ok().flatten().is_none() && start.elapsed() < DEADLINE {
        if console.screen_text().contains("Quit?") {
            // The console may have exited meanwhile; a failed write then changes nothing.
            let _ = console
                .writer
                .write_all(b"y")
                .and_then(|()| console.writer.flush());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = console.wait_exit();
    assert!(status.success(), "veyra exited with {status:?}");
}

/// `veyra bench --tui`, quit mid-run: the quit question names the run it will cancel, and
/// once the terminal is restored stderr says how to finish it, as `veyra bench` does.
#[test]
fn bench_tui_quit_mid_run_names_the_run_and_prints_the_resume_command() {
    let mut console = Console::start_args(
        100,
        30,
        &[
            ("VEYRA_RUNTIME__MAX_CONCURRENT", "1"),
            // Slow enough that the run is far from done when the operator quits.
            ("VEYRA_MODEL__MOCK__TOKEN_DELAY_MS", "500"),
        ],
        &[
            "bench", "--tui", "--family", "cplc", "--count", "8", "--seed", "7",
        ],
    );
    console.wait_for("the zoomed Benchmarks pane running", |s| {
        s.contains("Benchmarks · running")
    });
    console.send(b"q");
    console.wait_for("the quit question naming the run", |s| {
        s.contains("Quit?") && s.contains("benchmark run ") && s.contains("will be cancelled")
    });
    let screen = console.screen_text();
    let id = screen
        .lines()
        .find_map(|l| {
            let rest = &l[l.find("benchmark run ")? + "benchmark run ".len()..];
            Some(rest[..rest.find(" will be cancelled")?].to_string())
        })
        .expect("the run's id in the question");
    assert!(
        screen.contains(&format!("veyra bench --resume {id}")),
        "the question says how to finish the run:\n{screen}"
    );
    console.send(b"y");
    let status = console.wait_exit();
    let screen = console.screen_text();
    assert!(
        status.success(),
        "veyra exited with {status:?}; screen:\n{screen}"
    );
    assert!(!console.alternate_screen(), "screen:\n{screen}");
    assert!(
        screen.contains(&format!("finish it with `veyra bench --resume {id}`")),
        "no resume command after the terminal was restored:\n{screen}"
    );
    // What it names is there to resume.
    let show = console.veyra_beside(&["bench", "show", &id]);
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
}

/// `veyra bench` on a terminal, Ctrl-C mid-run: the progress bars go, and only the
/// cancellation message and the result table stay.
#[test]
fn bench_ctrl_c_clears_the_progress_bars() {
    let mut console = Console::start_args(
        100,
        30,
        &[
            ("VEYRA_RUNTIME__MAX_CONCURRENT", "1"),
            ("VEYRA_MODEL__MOCK__TOKEN_DELAY_MS", "300"),
        ],
        &[
            "bench",
            "--family",
            "cplc,msga",
            "--count",
            "6",
            "--seed",
            "7",
        ],
    );
    // The bar template ends in "eta …": both families' bars are drawn (each the width of the
    // terminal, so the emulator's text may join them on one wrapped line: count, not lines).
    console.wait_for("two progress bars", |s| s.matches(" eta ").count() == 2);
    console.send(b"\x03");
    let status = console.wait_exit();
    let screen = console.screen_text();
    assert_eq!(
        status.exit_code(),
        1,
        "a cancelled run exits 1; screen:\n{screen}"
    );
    assert!(
        screen.contains("veyra: cancelling the benchmark run"),
        "screen:\n{screen}"
    );
    assert!(
        screen.contains("finish it with `veyra bench --resume"),
        "screen:\n{screen}"
    );
    assert_eq!(
        screen.matches(" eta ").count(),
        0,
        "progress bars left on the screen:\n{screen}"
    );
}

#[test]
fn the_demo_tour_lights_every_pane_then_the_operator_answers_its_confirmation() {
    let mut console = Console::start_args(160, 48, &[], &["--demo"]);
    console.wait_for("the tour's first line", |s| {
        s.contains("demo: a scripted tour · any key takes over")
    });
    // Prompts at several priorities, counting down on the Mars link.
    console.wait_for("prompts at four priorities with link countdowns", |s| {
        [
            ("NORM", "Give me"),
            ("BKGD", "Is a dust"),
            ("CRIT", "system check"),
            ("HIGH", "clean up"),
        ]
        .iter()
        .all(|(p, t)| s.lines().any(|l| l.contains(p) && l.contains(t)))
            && s.lines()
                .any(|l| (l.contains("↑ ") || l.contains("↓ ")) && l.contains(" T-"))
    });
    console.wait_for("the prohibited delete in Safety", |s| {
        s.contains("⊘ tool:file_delete prohibited_operations")
    });
    console.wait_for("the benchmark run filling its pane", |s| {
        s.contains("Benchmarks · running")
            && s.lines()
                .any(|l| l.contains("CPLC ▕█") && l.contains("/12"))
    });
    console.wait_for("the audit chain verified", |s| {
        s.lines().any(|l| l.contains("✓") && l.contains("verified"))
    });
    console.wait_for("Output focused on the first answer", |s| {
        s.contains("━ Output") && s.contains("Habitat status at the last contact")
    });
    console.wait_for("a tool call asking for confirmation", |s| {
        s.contains("Confirm operation") && s.contains("Allow tool:file_write")
    });
    console.wait_for("the tour's last line", |s| {
        s.contains("writing waits for your y or n")
    });
    let screen = console.screen_text();
    assert!(
        screen.lines().any(|l| l.contains(" I ")
            && (l.contains(" execution started") || l.contains(" execution finished"))),
        "the Log has lines: {screen}"
    );
    assert!(
        screen.contains("POLICY_CHECK write_file allow"),
        "the Audit pane has the write's policy decision: {screen}"
    );
    // The operator takes over: y answers the confirmation, the write runs.
    console.send(b"y");
    console.wait_for("the write done", |s| s.contains("tool file_write: success"));
    console.send(b"q");
    let start = Instant::now();
    while console.child.try_wait().ok().flatten().is_none() && start.elapsed() < DEADLINE {
        if console.screen_text().contains("Quit?") {
            let _ = console
                .writer
                .write_all(b"y")
                .and_then(|()| console.writer.flush());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = console.wait_exit();
    assert!(status.success(), "veyra exited with {status:?}");
}

#[test]
fn any_key_stops_a_scenario_and_acts() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("tour.yaml");
    std::fs::write(
        &file,
        "steps:\n  - say: \"step one of a long tour\"\n  - after: 600\n    say: \"never\"\n",
    )
    .expect("write the scenario");
    let path = file.to_string_lossy().into_owned();
    let mut console = Console::start_args(100, 30, &[], &["--scenario", &path]);
    console.wait_for("the first step", |s| s.contains("step one of a long tour"));
    // The operator presses z: the script stops, saying so, and z zooms as it would.
    console.send(b"z");
    console.wait_for("the script stopped and the pane zoomed", |s| {
        s.contains("demo script stopped: the console is yours") && s.contains("· zoomed")
    });
    console.send(b"q");
    let status = console.wait_exit();
    assert!(status.success(), "veyra exited with {status:?}");
}

/// Bytes the console writes per character of a streamed answer, in steady state while Output
/// scrolls (the budget is ≤ 2 bytes; the figure is printed for the record). A 1,000-token
/// answer streams at 160×48; the bytes counted are those written from when the answer's first
/// words are on screen to when its last are.
/// Streams `words` words from the mock, `token_delay_ms` apart, into a 160×48 console and
/// returns the bytes written to the terminal per streamed character.
fn bytes_per_streamed_char(token_delay_ms: u64, words: usize) -> f64 {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let config = scratch.path().join("veyra.yaml");
    let words: Vec<String> = (0..words)
        .map(|i| {
            if i % 12 == 11 {
                format!("w{i}\n")
            } else {
                format!("w{i}")
            }
        })
        .collect();
    let last = words.len() - 1;
    let answer = words.join(" ");
    std::fs::write(
        &config,
        format!(
            "model:\n  mock:\n    token_delay_ms: {token_delay_ms}\n    script:\n      - pattern: \"stream\"\n        response: {}\n",
            serde_json::to_string(&answer).expect("a JSON string is YAML")
        ),
    )
    .expect("write the config");
    let config = config.to_string_lossy().into_owned();
    let mut console = Console::start_args(160, 48, &[], &["--config", &config]);
    console.wait_for("the console", |s| s.contains("Prompt"));
    console.send(b"i");
    console.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    console.send(b"stream\r");
    // Measured from the fourth line on, when the task's start (its row, the Log's lines, the
    // status bar's rate) is drawn: what streaming costs, not what starting a task does.
    console.wait_for("the first lines", |s| s.contains("w36"));
    let start = console.raw_bytes().len();
    let last_word = format!("w{last}");
    console.wait_for("the last words", |s| s.contains(&last_word));
    let written = console.raw_bytes().len() - start;
    // The characters streamed after `w36` (the screen may show a few more by then, so the
    // figure errs high).
    let first = answer.find("w36").map_or(0, |i| i + "w36".len());
    let chars = answer[first..].chars().count();
    let per_char = written as f64 / chars as f64;
    eprintln!(
        "bytes written per streamed character at one token every {token_delay_ms} ms: \
         {written} / {chars} = {per_char:.2}"
    );
    // The last word can show before the task's final state; `q` with a task in flight asks
    // first, so wait for the ✓.
    console.wait_for("the task marked ✓", |s| task_done(s, "stream"));
    console.send(b"\x1b");
    console.wait_for("the prompt left", |s| s.contains("press i to type"));
    console.send(b"q");
    let status = console.wait_exit();
    assert!(status.success(), "veyra exited with {status:?}");
    per_char
}

#[test]
fn bytes_written_per_streamed_character_are_measured() {
    // A fast model (a token every 3 ms): frames carry many characters each. The figure
    // depends on the machine's speed, so this is a regression bound (the README's
    // Performance table has the measured figure). Without the terminal scrolling the pane's
    // rows it is about 40.
    let fast = bytes_per_streamed_char(3, 1000);
    assert!(
        fast < 4.0,
        "{fast:.2} bytes per character at a token every 3 ms"
    );
}

#[test]
fn at_a_models_real_pace_a_streamed_character_costs_at_most_two_and_a_half_bytes() {
    // 30 tokens a second, as a hosted model streams: each frame carries three tokens, so
    // what a frame costs besides its text decides the figure (the pace is the model's, not
    // the machine's).
    let paced = bytes_per_streamed_char(33, 300);
    assert!(
        paced <= 2.5,
        "{paced:.2} bytes per character at 30 tokens a second"
    );
}

/// Processor time (user + system) the process `pid` has used, in clock ticks, from
/// `/proc/PID/stat` (fields 14 and 15; the command name before them may hold spaces, so the
/// fields are counted from its closing parenthesis).
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let after = stat
        .rsplit_once(')')
        .expect("a stat line has the command in parentheses")
        .1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| -> u64 { fields[i].parse().expect("a tick count") };
    // `after` starts at field 3 (the state): utime is field 14, stime field 15.
    field(11) + field(12)
}

#[test]
#[cfg(target_os = "linux")]
fn the_idle_console_uses_almost_no_processor_time() {
    let mut console = Console::start(160, 48);
    console.wait_for("the console", |s| s.contains("Prompt"));
    let pid = console.child.process_id().expect("the child has a pid");
    let hz: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0);
    // Nothing runs; the console redraws once a second for its clock and waits on input.
    let (start, before) = (Instant::now(), cpu_ticks(pid));
    std::thread::sleep(Duration::from_secs(10));
    let (used, wall) = (cpu_ticks(pid) - before, start.elapsed());
    let share = used as f64 / hz / wall.as_secs_f64();
    eprintln!(
        "idle processor time: {used} ticks of 1/{hz} s over {:.1} s = {:.2} % of a core",
        wall.as_secs_f64(),
        share * 100.0
    );
    // A regression bound for a debug build on a shared machine; the issue's 1 % is for the
    // release build (see the README's Performance table).
    assert!(share < 0.05, "{:.2} % of a core while idle", share * 100.0);
    console.send(b"q");
    assert!(console.wait_exit().success());
}

/// The issue's operator over SSH: 80×24, `TERM=xterm`, `NO_COLOR=1`. The panes are tabs; a
/// command completes with Tab and comes back with ↑; `/` filters Tasks; `z` zooms; `t`
/// switches the theme and `3` the link, each saying so; no colour is ever written.
#[test]
fn an_operator_at_80x24_without_colour_filters_zooms_recalls_and_switches() {
    let mut console = Console::start_with(80, 24, &[("TERM", "xterm"), ("NO_COLOR", "1")]);
    console.wait_for("the tab strip", |s| s.contains("[Output]"));
    for prompt in ["alpha one", "beta two"] {
        console.send(b"i");
        console.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
        console.send(prompt.as_bytes());
        console.send(b"\r");
        console.wait_for("the answer", |s| s.contains("Acknowledged"));
        console.send(b"\x1b");
        console.wait_for("the prompt left", |s| s.contains("press i to type"));
    }
    // `:focus ta` + Tab completes to `focus tasks`; Enter shows the Tasks tab.
    console.send(b":");
    console.send(b"focus ta\t");
    console.wait_for("the completed command", |s| s.contains(":focus tasks"));
    console.send(b"\r");
    console.wait_for("the Tasks tab", |s| s.contains("[Tasks"));
    console.wait_for("both tasks done", |s| {
        task_done(s, "alpha one") && task_done(s, "beta two")
    });
    // `/beta`: only the matching row, and the title says so.
    console.send(b"/");
    console.send(b"beta\r");
    console.wait_for("the filtered list", |s| {
        s.contains("/beta") && s.contains("beta two") && !s.contains("alpha one")
    });
    // `z` zooms: the strip gives way, the title says so; `z` again restores it.
    console.send(b"z");
    console.wait_for("the zoomed Tasks", |s| {
        s.contains("zoomed") && !s.contains("[Tasks")
    });
    console.send(b"z");
    console.wait_for("the strip back", |s| s.contains("[Tasks"));
    // ↑ in the command line brings back the last command.
    console.send(b":");
    console.send(b"\x1b[A");
    console.wait_for("the recalled command", |s| s.contains(":focus tasks"));
    console.send(b"\x1b");
    console.wait_for("the command line closed", |s| !s.contains(":focus tasks"));
    // Nothing so far wrote a colour.
    let raw = console.raw_bytes();
    for colour in [&b"\x1b[38;"[..], b"\x1b[48;", b";38;5;", b";48;5;"] {
        assert!(
            !has(&raw, colour),
            "NO_COLOR, yet a colour sequence {:?} was written",
            String::from_utf8_lossy(colour)
        );
    }
    // The theme and the link switch from the keyboard, and say so (the operator asked for
    // the next theme: its colours are theirs).
    console.send(b"t");
    console.wait_for("the theme switched", |s| s.contains("theme: "));
    console.send(b"3");
    console.wait_for("the Mars link", |s| s.contains("mars"));
    console.send(b"q");
    let status = console.wait_exit();
    assert!(status.success(), "veyra exited with {status:?}");
}

/// Rows of the Tasks pane whose title starts with `title`, with the state glyph `mark` left of
/// it.
fn rows_marked(screen: &str, mark: char, title: &str) -> usize {
    screen
        .lines()
        .filter(|line| match (line.find(mark), line.find(title)) {
            (Some(m), Some(t)) => m < t,
            _ => false,
        })
        .count()
}

#[test]
fn earth_work_runs_while_mars_waits_out_a_conjunction() {
    // 2021-10-08: Mars a degree from the Sun, the link in blackout for days. The link is
    // simulated by default; four slots (runtime.max_concurrent).
    let mut console = Console::start_with(
        140,
        40,
        &[
            ("VEYRA_LATENCY__START", "2021-10-08T00:00:00Z"),
            ("VEYRA_LATENCY__MODE", "ephemeris"),
            ("VEYRA_LATENCY__PRESET", "mars"),
        ],
    );
    console.wait_for("the blackout in the status bar, with when it ends", |s| {
        s.contains("BLACKOUT") && s.contains("reopens 2021-")
    });
    console.send(b"i");
    console.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    for i in 1..=5 {
        console.send(format!("Mars survey {i}\r").as_bytes());
    }
    // Five tasks for four slots, and none waits for a slot: waiting out a conjunction is not
    // work at the backend.
    console.wait_for("five tasks waiting out the blackout", |s| {
        rows_marked(s, '⊘', "Mars survey") == 5
    });
    console.send(b"\x1b");
    console.wait_for("the Prompt out of editing mode", |s| {
        s.contains("to type a prompt")
    });
    // A benchmark (it never crosses the link) runs to the end on the slots beside them.
    console.send(b":bench cplc 8\r");
    console.wait_for("the benchmark complete while Mars still waits", |s| {
        s.contains("Benchmarks · complete") && rows_marked(s, '⊘', "Mars survey") == 5
    });
    // The operator switches to Earth: a critical prompt goes at once, and the waiting tasks,
    // not sent yet, go over the link in force.
    console.send(b"1");
    console.wait_for("the link on Earth, the blackout gone", |s| {
        s.contains("earth ephemeris") && !s.contains("BLACKOUT")
    });
    console.send(b"i");
    console.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    console.send(b"\x10\x10"); // Ctrl-P twice: critical
    console.send(b"Earth check\r");
    console.wait_for("every task done", |s| {
        task_done(s, "Earth check") && rows_marked(s, '✓', "Mars survey") == 5
    });
    console.send(b"\x1b");
    console.wait_for("the Prompt out of editing mode", |s| {
        s.contains("to type a prompt")
    });
    console.send(b"q");
    let status = console.wait_exit();
    assert!(status.success(), "veyra exited with {status:?}");
}

#[test]
fn bench_tui_in_one_terminal_and_an_attached_console_watch_and_drive_the_same_runs() {
    let mut host = Console::start_args(
        120,
        35,
        &[
            ("VEYRA_RUNTIME__MAX_CONCURRENT", "1"),
            ("VEYRA_MODEL__MOCK__TOKEN_DELAY_MS", "15"),
        ],
        &[
            "bench", "--tui", "--family", "cplc", "--count", "6", "--seed", "7",
        ],
    );
    host.wait_for("the dashboard running", |s| {
        s.contains("Benchmarks · running · zoomed")
    });
    let mut second = host.start_beside(120, 35, &["--theme", "mono"]);
    // The run going joins the attached console from the snapshot, one row in its Tasks (its
    // items are not listed), then moves with the live news to its end, as on the dashboard.
    second.wait_for("the run in the attached console", |s| {
        s.contains("⇄ attached pid") && s.contains("cplc") && !s.contains("LOW  ")
    });
    host.wait_for("the run complete on the dashboard", |s| {
        s.contains("Benchmarks · complete") && s.contains("V-Score 0.000")
    });
    second.wait_for("the run complete in the attached console's Tasks", |s| {
        s.contains("cplc 6/6 complete")
    });
    // The attached console starts the next run on the runtime, and cancels it.
    second.send(b"b");
    host.wait_for("the attached console's run on the dashboard", |s| {
        s.contains("Benchmarks · running")
    });
    second.wait_for("its run going", |s| s.contains("Benchmarks · running"));
    second.send(b"c");
    for console in [&mut host, &mut second] {
        console.wait_for("the run cancelled in both", |s| {
            s.contains("Benchmarks · cancelled")
        });
    }
    second.send(b"q");
    assert!(second.wait_exit().success());
    // Both runs are in the store, one complete and one cancelled, by the runtime's own account.
    let list = host.veyra_beside(&["bench", "list", "--json"]);
    let runs = String::from_utf8_lossy(&list.stdout);
    assert!(
        runs.contains(r#""status":"complete""#) && runs.contains(r#""status":"cancelled""#),
        "{runs}"
    );
    host.send(b"q");
    let start = Instant::now();
    while host.child.try_wait().ok().flatten().is_none() && start.elapsed() < DEADLINE {
        if host.screen_text().contains("Quit?") {
            let _ = host
                .writer
                .write_all(b"y")
                .and_then(|()| host.writer.flush());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(host.wait_exit().success());
}

#[test]
fn one_runtime_many_terminals_a_hosting_console_a_second_console_and_veyra_run() {
    let mut host = Console::start_with(
        120,
        35,
        &[("VEYRA_GOVERNANCE__REQUIRE_CONFIRMATION", "execute:mock")],
    );
    host.wait_for("the hosting console", |s| {
        s.contains("Tasks") && s.contains("Prompt")
    });
    let mut second = host.start_beside(120, 35, &[]);
    second.wait_for("the second console, attached", |s| {
        s.contains("Prompt") && s.contains("⇄ attached pid")
    });
    host.wait_for("the host counting its client", |s| {
        s.contains("⇄ serving · 1 client")
    });

    // A prompt typed in the second console asks its question in both; the second answers.
    second.send(b"i");
    second.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    second.send(b"Check the seals\r\x1b");
    host.wait_for("the question in the hosting console", |s| {
        s.contains("Confirm operation")
    });
    second.wait_for("the question in the second console", |s| {
        s.contains("Confirm operation")
    });
    std::thread::sleep(Duration::from_millis(700));
    second.send(b"y");
    host.wait_for("the host told who answered", |s| {
        s.contains("was answered yes by operator (pid")
    });
    for console in [&mut host, &mut second] {
        console.wait_for("the task done in both", |s| {
            task_done(s, "Check the") && !s.contains("Confirm operation")
        });
    }

    // `veyra run` from a third terminal: its answer on its stdout, its task in both consoles.
    // Its question is its own, answered on its side (`--yes`): no console's modal opens.
    let run = host.veyra_beside(&["run", "--yes", "ping from a shell"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stdout.contains("ping from a shell"), "{stdout}");
    assert!(stderr.contains("attached to pid"), "{stderr}");
    for console in [&mut host, &mut second] {
        console.wait_for("veyra run's task in both consoles", |s| {
            task_done(s, "ping from a")
        });
    }

    // The second console leaves; the runtime goes on. Then the host closes.
    second.send(b"q");
    assert!(second.wait_exit().success());
    host.wait_for("the host with no client", |s| !s.contains("⇄ serving"));
    host.send(b"q");
    assert!(host.wait_exit().success());
    // One trail, written on behalf of three terminals, that verifies; it names the clients.
    let verify = host.veyra_beside(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let list = host.veyra_beside(&["audit", "list", "--json"]);
    let entries = String::from_utf8_lossy(&list.stdout);
    assert!(entries.contains(r#""transport":"unix""#), "{entries}");
}

#[test]
fn an_attached_console_whose_runtime_is_killed_says_so_and_hosts_one_on_yes() {
    let mut host = Console::start(120, 35);
    host.wait_for("the hosting console", |s| {
        s.contains("Tasks") && s.contains("Prompt")
    });
    let mut second = host.start_beside(120, 35, &[]);
    second.wait_for("the second console, attached", |s| {
        s.contains("⇄ attached pid")
    });
    let pid = host.child.process_id().expect("the host's pid");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    second.wait_for("the runtime gone, and the question", |s| {
        s.contains("Runtime gone") && s.contains("host a runtime here")
    });
    // Typing is not an answer: only y or n are.
    second.send(b"x");
    std::thread::sleep(Duration::from_millis(200));
    assert!(second.screen_text().contains("Runtime gone"));
    second.send(b"y");
    second.wait_for("the console on a runtime of its own", |s| {
        !s.contains("Runtime gone") && !s.contains("⇄ attached") && s.contains("Prompt")
    });
    second.send(b"i");
    second.wait_for("the Prompt in editing mode", |s| s.contains("send ·"));
    second.send(b"after the take-over\r");
    second.wait_for("its answer", |s| task_done(s, "after the take"));
    second.send(b"\x1b");
    second.wait_for("the Prompt left", |s| s.contains("press i to type"));
    second.send(b"q");
    assert!(second.wait_exit().success());
    let verify = second.veyra_beside(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
