//! The protocol over real `ssh`: a private `sshd` on 127.0.0.1 (its own host key, client key,
//! port and configuration in a temporary directory), `veyra serve` in a sandbox, and
//! `ssh … veyra attach --stdio` carrying a hello and a request to it; the runtime records the
//! caller's transport as ssh. Skipped, with the reason on stderr, where no `sshd` is installed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Sandbox;
use super::serve::serve;

const SSHD: &str = "/usr/sbin/sshd";

/// How long ssh may take to carry the whole session before the test fails.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// An `sshd` the test started, killed (by its pid, through the `Child`) when the test ends.
struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Sshd {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` as one word for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn ssh_keygen(path: &Path, kind: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "veyra-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen -t {kind}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A free port on 127.0.0.1 (free when this returns; sshd binds it right after).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Starts a private `sshd` whose only key is `dir/client_key`, or says why it cannot.
fn start_sshd(dir: &Path) -> Result<Sshd, String> {
    if !Path::new(SSHD).exists() {
        return Err(format!("{SSHD} is not installed (package openssh-server)"));
    }
    if Command::new("ssh").arg("-V").output().is_err() {
        return Err("no ssh client on PATH (package openssh-client)".into());
    }
    // sshd insists on its privilege-separation directory.
    if let Err(e) = std::fs::create_dir_all("/run/sshd") {
        return Err(format!("cannot create /run/sshd: {e}"));
    }
    let host_key = dir.join("host_key");
    let client_key = dir.join("client_key");
    ssh_keygen(&host_key, "ed25519");
    ssh_keygen(&client_key, "ed25519");
    let authorized = dir.join("authorized_keys");
    std::fs::copy(dir.join("client_key.pub"), &authorized).expect("write authorized_keys");
    let port = free_port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "ListenAddress 127.0.0.1\n\
             Port {port}\n\
             HostKey {host_key}\n\
             AuthorizedKeysFile {authorized}\n\
             PidFile {pid}\n\
             StrictModes no\n\
             UsePAM no\n\
             PermitRootLogin yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             PrintMotd no\n\
             LogLevel VERBOSE\n",
            host_key = host_key.display(),
            authorized = authorized.display(),
            pid = dir.join("sshd.pid").display(),
        ),
    )
    .expect("write sshd_config");
    let log = dir.join("sshd.log");
    let child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("create the sshd log"))
        .spawn()
        .map_err(|e| format!("cannot start {SSHD}: {e}"))?;
    let mut sshd = Sshd { child, port, log };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(sshd);
        }
        if let Ok(Some(status)) = sshd.child.try_wait() {
            panic!("sshd exited ({status}) before listening:\n{}", sshd.log());
        }
        assert!(
            Instant::now() < deadline,
            "sshd did not listen on 127.0.0.1:{port}:\n{}",
            sshd.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn attach_stdio_over_real_ssh_reaches_the_runtime_and_is_recorded_as_ssh() {
    let keys = tempfile::tempdir().expect("create a temporary directory");
    let sshd = match start_sshd(keys.path()) {
        Ok(sshd) => sshd,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let sb = Sandbox::new();
    let serving = serve(&sb);
    let pid = serving.child.id();

    // sshd gives the session its own environment: the remote command points Veyra at the
    // sandbox's directories itself.
    let root = sb.dir.path();
    let mut remote = format!(
        "cd {} && exec env",
        shell_quote(&sb.work().to_string_lossy())
    );
    for (key, sub) in [
        ("HOME", "home"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_RUNTIME_DIR", "run"),
    ] {
        let value = format!("{key}={}", root.join(sub).display());
        remote.push(' ');
        remote.push_str(&shell_quote(&value));
    }
    remote.push(' ');
    remote.push_str(&shell_quote(env!("CARGO_BIN_EXE_veyra")));
    remote.push_str(" attach --stdio");

    let mut ssh = Command::new("ssh")
        .args(["-F", "/dev/null", "-T"])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "BatchMode=yes"])
        .args(["-o", "IdentitiesOnly=yes"])
        .args(["-o", "LogLevel=ERROR"])
        .args(["-o", "ConnectTimeout=20"])
        .arg("-i")
        .arg(keys.path().join("client_key"))
        .args(["-p", &sshd.port.to_string()])
        .args(["--", "127.0.0.1", &remote])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ssh");
    {
        let mut stdin = ssh.stdin.take().expect("piped stdin");
        writeln!(
            stdin,
            r#"{{"type":"hello","protocol":"veyra.rpc/1","client":"pipe","events":false}}"#
        )
        .unwrap();
        writeln!(
            stdin,
            r#"{{"type":"request","id":7,"command":{{"command":"status"}}}}"#
        )
        .unwrap();
        // Closing our side ends the session once the runtime has answered.
    }
    // Read both streams on threads, so a hung ssh fails the test instead of hanging it.
    let stdout = ssh.stdout.take().expect("piped stdout");
    let mut stderr = ssh.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect();
        let _ = tx.send(lines);
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let lines = match rx.recv_timeout(SESSION_TIMEOUT) {
        Ok(lines) => lines,
        Err(_) => {
            let _ = ssh.kill();
            let _ = ssh.wait();
            panic!(
                "ssh did not end within {SESSION_TIMEOUT:?}; ssh said:\n{}\nsshd said:\n{}",
                errors.join().unwrap_or_default(),
                sshd.log()
            );
        }
    };
    let status = ssh.wait().expect("ssh ends");
    let errors = errors.join().unwrap_or_default();
    let context = format!(
        "ssh {status}\nstdout:\n{}\nssh stderr:\n{errors}\nsshd said:\n{}",
        lines.join("\n"),
        sshd.log()
    );
    assert!(status.success(), "{context}");
    let messages: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{context}")))
        .collect();
    let welcome = messages
        .first()
        .unwrap_or_else(|| panic!("no welcome\n{context}"));
    assert_eq!(welcome["type"], "welcome", "{context}");
    assert_eq!(welcome["runtime"]["pid"], pid, "{context}");
    let transport = welcome["you"]["transport"].as_str().unwrap_or_default();
    eprintln!("the runtime recorded transport {transport:?}");
    assert!(
        transport.starts_with("ssh from 127.0.0.1"),
        "transport {transport:?}\n{context}"
    );
    assert!(
        messages
            .iter()
            .any(|l| l["type"] == "response" && l["id"] == 7 && l["ok"]["reply"] == "status"),
        "{context}"
    );
    drop(serving);
    drop(sshd);
}
