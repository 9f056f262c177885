//! `veyra attach ssh://[user@]host[:port]`: the protocol through `ssh`, which authenticates
//! and carries the bytes to `veyra attach --stdio` on the far host; nothing listens on a
//! network port. The `ssh` child ends with the session.

use std::process::Stdio;

use super::{Client, Inbound, ServiceError};

/// The `ssh` arguments for `target` (`ssh://[user@]host[:port]`), running `remote` there.
pub fn ssh_args(target: &str, remote: &str) -> Result<Vec<String>, ServiceError> {
    let bad = |why: &str| {
        ServiceError::Protocol(format!(
            "'{}' {why}; use ssh://[user@]host[:port]",
            crate::sanitize::sanitize_line(target)
        ))
    };
    let url = url::Url::parse(target).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if url.scheme() != "ssh" {
        return Err(bad("is not an ssh:// address"));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("names no host"))?;
    // A host or user that starts with '-' would be read by ssh as an option.
    if host.starts_with('-') || url.username().starts_with('-') {
        return Err(bad("names a host or user that starts with '-'"));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("has a path, query or fragment"));
    }
    let mut args = vec![
        "-T".to_string(),
        "-o".to_string(),
        "LogLevel=ERROR".to_string(),
    ];
    if let Some(port) = url.port() {
        args.push("-p".into());
        args.push(port.to_string());
    }
    if !url.username().is_empty() {
        args.push("-l".into());
        args.push(url.username().to_string());
    }
    args.push("--".into());
    args.push(host.to_string());
    args.push(format!("{remote} attach --stdio"));
    Ok(args)
}

/// Starts `ssh` to `target` and attaches through it as a console.
pub async fn attach(
    target: &str,
    remote: &str,
) -> Result<(Client, tokio::sync::mpsc::Receiver<Inbound>), ServiceError> {
    let args = ssh_args(target, remote)?;
    let mut child = tokio::process::Command::new("ssh")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Never onto the console's screen: what the far side says there goes to the Log pane,
        // sanitized (a password or host-key prompt goes to the terminal itself, not here).
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ServiceError::io(std::path::Path::new("ssh"), "cannot start ssh", e))?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(ServiceError::Runtime(
            "ssh started without its standard streams".into(),
        ));
    };
    let said: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let kept = std::sync::Arc::clone(&said);
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line =
                crate::sanitize::excerpt(&crate::sanitize::sanitize_line(&line), 300).into_owned();
            tracing::warn!("ssh: {line}");
            if let Ok(mut kept) = kept.lock() {
                kept.push(line);
                let excess = kept.len().saturating_sub(5);
                kept.drain(..excess);
            }
        }
    });
    // Authentication happens before the hello is answered: give a person time to type.
    Client::start(stdout, stdin, "console", true, Some(child), SSH_HELLO_WAIT)
        .await
        .map_err(|e| {
            let ssh_said = said.lock().map(|l| l.join("; ")).unwrap_or_default();
            let ssh_said = if ssh_said.is_empty() {
                String::new()
            } else {
                format!(" (ssh said: {ssh_said})")
            };
            match e {
                ServiceError::Gone(_) => ServiceError::Gone(format!(
                    "ssh to {} ended before a runtime answered{ssh_said}; is `{remote}` on the far \
                     host's PATH, and does a runtime serve there?",
                    crate::sanitize::sanitize_line(target)
                )),
                other => other,
            }
        })
}

/// How long `veyra attach ssh://…` waits for the runtime's welcome: ssh's authentication (a
/// passphrase, a host key to accept) comes first.
pub const SSH_HELLO_WAIT: std::time::Duration = std::time::Duration::from_secs(180);

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(target: &str) -> String {
        match ssh_args(target, "veyra") {
            Ok(args) => panic!("{target} was accepted: {args:?}"),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains("use ssh://[user@]host[:port]"),
                    "{target}: {text}"
                );
                text
            }
        }
    }

    #[test]
    fn a_plain_target_runs_the_remote_command_after_the_options() {
        assert_eq!(
            ssh_args("ssh://example.org", "veyra").unwrap(),
            [
                "-T",
                "-o",
                "LogLevel=ERROR",
                "--",
                "example.org",
                "veyra attach --stdio"
            ]
        );
        assert_eq!(
            ssh_args("ssh://ops@example.org:2222/", "/opt/veyra/bin/veyra").unwrap(),
            [
                "-T",
                "-o",
                "LogLevel=ERROR",
                "-p",
                "2222",
                "-l",
                "ops",
                "--",
                "example.org",
                "/opt/veyra/bin/veyra attach --stdio"
            ]
        );
    }

    #[test]
    fn a_host_or_user_that_ssh_would_read_as_an_option_is_refused() {
        for target in [
            "ssh://-oProxyCommand=x/",
            "ssh://-oProxyCommand=x",
            "ssh://-lroot@example.org",
        ] {
            let text = refused(target);
            assert!(text.contains("starts with '-'"), "{target}: {text}");
        }
    }

    #[test]
    fn a_path_query_or_fragment_is_refused() {
        for target in [
            "ssh://host/path",
            "ssh://host/?x=1",
            "ssh://host#frag",
            "ssh://host//",
        ] {
            let text = refused(target);
            assert!(
                text.contains("has a path, query or fragment"),
                "{target}: {text}"
            );
        }
    }

    #[test]
    fn other_schemes_hostless_and_malformed_targets_are_refused() {
        assert!(refused("http://host").contains("is not an ssh:// address"));
        assert!(refused("host").contains("is not a URL"));
        assert!(refused("ssh:///").contains("names no host"));
        assert!(refused("ssh://host:99999").contains("is not a URL"));
        // The target is echoed on one line, control characters made visible.
        let text = refused("ssh://host/a\u{1b}[2Jb");
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }
}
