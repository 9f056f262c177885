//! `veyra serve` (the runtime, headless, on its control socket), `veyra attach --stdio` (a
//! relay between standard streams and that socket, for `ssh host veyra attach --stdio`) and
//! `veyra rpc schema`.

use std::io::Write;

use crate::config::LoadedConfig;
use crate::core::{ConfirmationPolicy, VeyraCore};
use crate::error::{ExitCode, VeyraError};
use crate::service::protocol::{self, ClientMessage, ServerMessage};
use crate::service::{Client, Server, socket};
use crate::signals::StopSignals;

/// `veyra rpc schema`.
pub fn rpc_schema() -> Result<ExitCode, VeyraError> {
    let text = serde_json::to_string_pretty(&protocol::schema())
        .map_err(|e| VeyraError::Runtime(format!("encoding the schema: {e}")))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| VeyraError::io("writing to stdout", e))?;
    Ok(ExitCode::Success)
}

/// The socket for the configured store, or why there is none.
fn store_socket(loaded: &LoadedConfig) -> Result<std::path::PathBuf, VeyraError> {
    socket::socket_path(&loaded.config).ok_or_else(|| {
        VeyraError::Usage(
            "this configuration keeps its audit trail in memory (or has audit off): a runtime \
             serves a durable store (governance.store: sqlite) so that its clients share one \
             trail"
                .into(),
        )
    })
}

/// `veyra serve`: hosts the runtime until Ctrl-C or SIGTERM (exit 0: stopping is how a
/// service ends) or SIGHUP (129); what is in flight is cancelled and audited first.
pub async fn serve(loaded: LoadedConfig) -> Result<ExitCode, VeyraError> {
    let path = store_socket(&loaded)?;
    if let Some((client, _)) = Client::connect(&path, "veyra serve", false).await? {
        return Err(VeyraError::Usage(format!(
            "a runtime (pid {}, {}) already serves {} on {}; attach to it with `veyra attach`",
            client.runtime.pid,
            client.runtime.host,
            client.runtime.store,
            path.display()
        )));
    }
    let mut signals = StopSignals::install()?;
    let core = VeyraCore::new(loaded.config)?;
    // Questions go to the attached consoles (and a `veyra run`'s own terminal).
    core.set_confirmation_policy(ConfirmationPolicy::Ask);
    let bench = crate::service::bench::BenchHost::new(&core);
    if core.config().runtime.executor == crate::config::Executor::Nats {
        bench.set_solver(
            super::bench::fleet_solver(
                &core.config().nats,
                "veyra serve",
                "benchmark runs' items go to the fleet (runs and their store stay here)",
            )
            .await?,
        );
    }
    let server = Server::start(&core, &bench, &path, "serve")?;
    let _link_watch = core.watch_link(std::time::Duration::from_secs(1));
    eprintln!(
        "veyra: serving {} on {} (pid {}); stop with Ctrl-C or SIGTERM",
        core.config().audit_store_path().display(),
        path.display(),
        std::process::id()
    );
    let signal = signals.recv().await;
    tracing::info!(signal = signal.name(), "stopping the runtime");
    // A benchmark run going is cancelled and kept as such (`veyra bench --resume` finishes it).
    bench.close().await;
    let (report, audited) = core.stop_on_signal(signal.name()).await;
    let cancelled = report.left_queued.len() + report.cancelled_running;
    // The clients hear the cancellations, then that the runtime is going.
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let _ = writeln!(std::io::stderr(), "{}", signal.farewell(cancelled, audited));
    Ok(match signal {
        crate::signals::StopSignal::Hangup => signal.exit_code(),
        _ => ExitCode::Success,
    })
}

/// `veyra attach --stdio`: relays standard input to the runtime's socket and its replies to
/// standard output, first telling the runtime how the far client came (`ssh` and its address
/// when run under SSH). With no runtime, says so in the protocol (a `refused` line) so the
/// far client can tell its operator, and exits 1.
pub async fn attach_stdio(
    loaded: LoadedConfig,
    socket_arg: Option<std::path::PathBuf>,
) -> Result<ExitCode, VeyraError> {
    use tokio::io::AsyncWriteExt;
    let path = match socket_arg {
        Some(path) => path,
        None => store_socket(&loaded)?,
    };
    let mut stdout = tokio::io::stdout();
    let stream = match crate::service::client::connect_raw(&path).await {
        Ok(Some(stream)) => stream,
        Ok(None) => {
            let host = crate::core::hostname();
            let line = protocol::line(&ServerMessage::Refused {
                reason: format!(
                    "no runtime serves {} on {host}; start one there with `veyra serve` (or open \
                     a console there)",
                    loaded.config.audit_store_path().display()
                ),
            }) + "\n";
            let _ = stdout.write_all(line.as_bytes()).await;
            let _ = stdout.flush().await;
            return Ok(ExitCode::Runtime);
        }
        Err(e) => {
            let line = protocol::line(&ServerMessage::Refused {
                reason: e.to_string(),
            }) + "\n";
            let _ = stdout.write_all(line.as_bytes()).await;
            let _ = stdout.flush().await;
            return Err(e.into());
        }
    };
    let ssh = std::env::var("SSH_CONNECTION").ok().map(|c| {
        // "client-ip client-port server-ip server-port": the far end is the first two.
        c.split_whitespace().take(2).collect::<Vec<_>>().join(":")
    });
    let relay = protocol::line(&ClientMessage::Relay {
        via: if ssh.is_some() { "ssh" } else { "stdio" }.into(),
        peer: ssh,
    }) + "\n";
    let (mut from_runtime, mut to_runtime) = stream.into_split();
    to_runtime
        .write_all(relay.as_bytes())
        .await
        .map_err(|e| VeyraError::io("writing to the runtime", e))?;
    let mut stdin = tokio::io::stdin();
    let up = async {
        let _ = tokio::io::copy(&mut stdin, &mut to_runtime).await;
        let _ = to_runtime.shutdown().await;
        // Then wait for the runtime to close its side.
        std::future::pending::<()>().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut from_runtime, &mut stdout).await;
        let _ = stdout.flush().await;
    };
    // The session ends when the runtime closes it; the far client closing its side ends it
    // too (the runtime then closes, and the copy down ends).
    tokio::select! {
        () = down => {}
        () = up => {}
    }
    Ok(ExitCode::Success)
}
