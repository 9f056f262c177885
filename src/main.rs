//! The `veyra` binary: parse arguments, dispatch, map errors to exit codes. Nothing else.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use clap::Parser;
use veyra::cli::{
    self, AuditCommand, BenchCommand, Cli, Command, ConfigCommand, PolicyCommand, RpcCommand,
    ToolsCommand, TuiArgs,
};
use veyra::tui::ConsoleOptions;
use veyra::{ExitCode, VeyraError};

/// The process's allocator. Veyra allocates small and often from both runtime threads (events,
/// audit entries, JSON): in a `perf` profile of the benchmark suite's own benchmark
/// (`benches/bench_suite.rs`, which declares the same allocator so its figures are the
/// binary's), glibc's malloc took about a fifth of all samples and mimalloc under half that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // A panicking task fails alone, quietly; the scheduler logs it.
    veyra::runtime::contain::install_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2, sanitized
            // (they quote the argument, which may hold escape sequences).
            if !e.use_stderr() {
                let _ = e.print();
                return exit(ExitCode::Success);
            }
            eprint!("{}", veyra::sanitize::sanitize(&e.render().to_string()));
            return exit(ExitCode::Usage);
        }
    };
    match dispatch(cli) {
        Ok(code) => exit(code),
        // A reader that stopped reading (`veyra run | head`) is not an error to report.
        Err(e) if e.is_broken_pipe() => exit(ExitCode::Success),
        Err(e) => {
            // Errors quote config values, arguments and servers' replies: never raw.
            eprintln!(
                "veyra: error: {}",
                veyra::sanitize::sanitize(&e.to_string())
            );
            exit(e.exit_code())
        }
    }
}

/// The console's options from `veyra [tui]`'s arguments.
fn console_options(args: TuiArgs, standalone: bool) -> ConsoleOptions {
    ConsoleOptions {
        theme: args.theme,
        preset: args.preset,
        demo: args.demo,
        scenario: args.scenario,
        bench: None,
        standalone,
    }
}

fn exit(code: ExitCode) -> std::process::ExitCode {
    std::process::ExitCode::from(code.code() as u8)
}

fn dispatch(cli: Cli) -> Result<ExitCode, VeyraError> {
    // `config check` validates the named file alone; it must work even when the effective
    // configuration is broken.
    if let Some(Command::Config(ConfigCommand::Check { file })) = &cli.command {
        return cli::config_check(file);
    }
    // `audit verify --file` checks an export offline; it must work without a configuration
    // (the local store's key pins the signer too when one loads).
    if let Some(Command::Audit(AuditCommand::Verify(args))) = &cli.command
        && args.file.is_some()
    {
        let loaded = cli::load(cli.config.as_deref()).ok();
        return cli::audit_verify_file(args, loaded.as_ref());
    }
    // `rpc schema` prints a constant; it needs no configuration.
    if let Some(Command::Rpc(RpcCommand::Schema)) = &cli.command {
        return cli::rpc_schema();
    }
    // `bench schema` prints a constant; it needs no configuration.
    if let Some(Command::Bench(args)) = &cli.command
        && let Some(BenchCommand::Schema { suite }) = args.command
    {
        return cli::bench_schema(suite);
    }
    let loaded = cli::load(cli.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| VeyraError::io("starting the async runtime", e))?;
    let standalone = cli.standalone;
    match cli.command {
        None => runtime.block_on(veyra::tui::run(
            loaded,
            console_options(cli.console, standalone),
        )),
        Some(Command::Tui(args)) => {
            runtime.block_on(veyra::tui::run(loaded, console_options(args, standalone)))
        }
        Some(Command::Serve) => {
            cli::init_headless_logging(&loaded.config)?;
            runtime.block_on(cli::serve(loaded))
        }
        Some(Command::Worker(args)) => {
            cli::init_headless_logging(&loaded.config)?;
            runtime.block_on(cli::worker(loaded, args.nats, args.name, args.in_flight))
        }
        Some(Command::Attach(args)) if args.stdio => {
            cli::init_headless_logging(&loaded.config)?;
            let code = runtime.block_on(cli::attach_stdio(loaded, args.socket));
            // Standard input may still be read by a blocking thread: do not wait for it.
            runtime.shutdown_background();
            code
        }
        Some(Command::Attach(args)) => {
            let options = veyra::tui::AttachOptions {
                target: args.target,
                socket: args.socket,
                remote_command: args.remote_command,
                theme: args.theme,
            };
            let code = runtime.block_on(veyra::tui::attach(loaded, options));
            // An ssh carrier's standard streams may still be read by blocking threads.
            runtime.shutdown_background();
            code
        }
        Some(Command::Rpc(RpcCommand::Schema)) => cli::rpc_schema(),
        Some(Command::Bench(args)) if cli::wants_console(&args) => {
            let console = cli::bench_console(args, loaded)?;
            let options = ConsoleOptions {
                bench: Some(console.request),
                standalone,
                ..ConsoleOptions::default()
            };
            match console.registry {
                Some(registry) => runtime.block_on(veyra::tui::run_with_registry(
                    console.loaded,
                    options,
                    registry,
                )),
                None => runtime.block_on(veyra::tui::run(console.loaded, options)),
            }
        }
        Some(Command::Run(args)) => {
            cli::init_headless_logging(&loaded.config)?;
            runtime.block_on(cli::run(args, loaded, standalone))
        }
        Some(Command::Health) => {
            cli::init_headless_logging(&loaded.config)?;
            runtime.block_on(cli::health(loaded))
        }
        Some(Command::Config(ConfigCommand::Show)) => cli::config_show(&loaded),
        Some(Command::Latency(args)) => cli::latency(args, &loaded),
        Some(Command::Audit(AuditCommand::Verify(args))) => cli::audit_verify_db(&args, &loaded),
        Some(Command::Audit(AuditCommand::RotateKey { db })) => {
            cli::audit_rotate_key(db.as_deref(), &loaded)
        }
        Some(Command::Audit(AuditCommand::Adopt { db })) => {
            cli::audit_adopt(db.as_deref(), &loaded)
        }
        Some(Command::Audit(AuditCommand::List { db, filter, json })) => {
            cli::audit_list(db.as_deref(), &filter, json, &loaded)
        }
        Some(Command::Audit(AuditCommand::Prove { seq, db })) => {
            cli::audit_prove(seq, db.as_deref(), &loaded)
        }
        Some(Command::Audit(AuditCommand::Export { db, filter, out })) => {
            cli::audit_export(db.as_deref(), &filter, out.as_deref(), &loaded)
        }
        Some(Command::Policy(PolicyCommand::Check {
            principal,
            action,
            resource,
            context,
            json,
        })) => {
            let request = cli::policy_request(
                &principal,
                &action,
                &resource,
                context.as_deref(),
                &loaded.config,
            )?;
            cli::policy_check(&request, json, &loaded)
        }
        Some(Command::Policy(PolicyCommand::List { json })) => cli::policy_list(json, &loaded),
        Some(Command::Policy(PolicyCommand::Replay {
            policy,
            since,
            until,
            db,
            json,
        })) => cli::policy_replay(
            &policy,
            &veyra::governance::replay::ReplayWindow { since, until },
            db.as_deref(),
            json,
            &loaded,
        ),
        Some(Command::Tools(ToolsCommand::List { json })) => {
            runtime.block_on(cli::tools_list(json, &loaded, standalone))
        }
        Some(Command::Tools(ToolsCommand::Describe { name })) => {
            runtime.block_on(cli::tools_describe(&name, &loaded, standalone))
        }
        Some(Command::Tools(ToolsCommand::Invoke {
            name,
            args,
            yes,
            json,
        })) => {
            cli::init_headless_logging(&loaded.config)?;
            runtime.block_on(cli::tools_invoke(
                &name, &args, yes, json, loaded, standalone,
            ))
        }
        Some(Command::Tools(ToolsCommand::Undo { seq, yes, json })) => {
            cli::init_headless_logging(&loaded.config)?;
            runtime.block_on(cli::tools_undo(seq, yes, json, loaded, standalone))
        }
        Some(Command::Bench(args)) => {
            cli::init_headless_logging(&loaded.config)?;
            runtime.block_on(cli::bench(args, loaded, standalone))
        }
        Some(Command::Config(ConfigCommand::Check { .. })) => Ok(ExitCode::Success),
    }
}
