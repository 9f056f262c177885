//! `veyra worker [--nats URL] [--name NAME]`: a fleet worker (see [`crate::fleet`]). It runs a
//! full core on this machine's configuration — its own policy, boundary, audit store and
//! tools workspace — and pulls tasks from the NATS JetStream queue `nats:` names until Ctrl-C
//! or SIGTERM; then it takes no more and lets those it runs end, each acknowledged as usual.
//! Nobody answers questions at a worker: a tool call that needs a confirmation is refused.

use crate::config::LoadedConfig;
use crate::core::{ConfirmationPolicy, VeyraCore};
use crate::error::{ExitCode, VeyraError};
use crate::fleet::{Fleet, Worker, WorkerOptions};
use crate::signals::StopSignals;

/// Runs the worker until a signal (see the module docs).
pub async fn worker(
    loaded: LoadedConfig,
    url: Option<String>,
    name: Option<String>,
    in_flight: Option<u32>,
) -> Result<ExitCode, VeyraError> {
    let mut signals = StopSignals::install()?;
    let fleet = Fleet::connect(&loaded.config.nats, url.as_deref()).await?;
    let core = VeyraCore::new(loaded.config)?;
    core.set_confirmation_policy(ConfirmationPolicy::DenyAll);
    let mut options = WorkerOptions::for_core(&core);
    if let Some(name) = name {
        if !crate::config::is_nats_token(&name.replace('/', "_")) {
            return Err(VeyraError::Usage(format!(
                "--name '{}': use 1 to 64 letters, digits, '_', '-' or '/'",
                crate::sanitize::quote(&name)
            )));
        }
        options.name = name;
    }
    if let Some(n) = in_flight {
        // More than its queue holds would only be handed back.
        options.in_flight = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(core.config().runtime.queue_capacity.max(1));
    }
    eprintln!(
        "veyra: worker {} pulling tasks from {} (stream {}); stop with Ctrl-C or SIGTERM",
        options.name,
        fleet.url(),
        core.config().nats.stream
    );
    // Its runtime is served on its store's socket as `veyra serve` would (`veyra attach` on
    // this host), and to the fleet's consoles on the bus, through one service.
    let bench = crate::service::bench::BenchHost::new(&core);
    let service = crate::service::Service::new(&core, &bench, "worker")?;
    let _server = match crate::service::socket::socket_path(core.config()) {
        Some(path) => match service.serve(&path) {
            Ok(server) => Some(server),
            Err(e) => {
                eprintln!("veyra: this worker's runtime is not served on its socket: {e}");
                None
            }
        },
        None => None,
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = Worker::new(fleet, core.clone(), options).with_service(service);
    let run = worker.run(stop.clone());
    tokio::pin!(run);
    let signal = tokio::select! {
        result = &mut run => {
            result?;
            return Ok(ExitCode::Success);
        }
        signal = signals.recv() => signal,
    };
    eprintln!(
        "veyra: {}: taking no more tasks; letting those running end (again to stop at once)",
        signal.name()
    );
    stop.cancel();
    tokio::select! {
        result = &mut run => result?,
        second = signals.recv() => {
            // Its tasks are left unacknowledged: the server hands them to other workers after
            // ack_wait, and their attempt records decide whether they run again.
            eprintln!(
                "veyra: {}: stopping now; its unfinished tasks go back to the fleet",
                second.name()
            );
            return Ok(second.exit_code());
        }
    }
    core.shutdown(std::time::Duration::from_secs(5)).await;
    Ok(signal.exit_code())
}
