//! The command line: clap definitions and the headless subcommands (DESIGN §3).
//!
//! Headless commands drive the same [`VeyraCore`](crate::core::VeyraCore) as the console and
//! read the same events: `veyra run` prints `OutputDelta` text as it streams, or every event as
//! a JSON line. The arguments are in `args`, `veyra run` in `run`, the policy commands in
//! `policy`, audit, bench and tools in files of their own; this file holds loading, `config`,
//! `health` and `latency`, the output helpers they share, and re-exports so `crate::cli::X`
//! names stay.

use std::io::{IsTerminal, Write};

use crate::config::{self, LoadedConfig, REDACTED};
use crate::error::{ExitCode, VeyraError};
use crate::sanitize::sanitize;

mod args;
mod audit;
mod bench;
mod policy;
mod run;
mod serve;
mod tools;
mod worker;
pub(crate) use args::parse_rfc3339;
pub use args::{
    AttachArgs, Cli, Command, ConfigCommand, LatencyArgs, PolicyCommand, RpcCommand, RunArgs,
    TuiArgs,
};
pub use audit::{
    AuditCommand, FilterArgs, VerifyArgs, audit_adopt, audit_export, audit_list, audit_prove,
    audit_rotate_key, audit_verify_db, audit_verify_file,
};
pub use bench::{
    BenchArgs, BenchCommand, BenchConsole, BenchRunArgs, bench, bench_console, bench_schema,
    wants_console,
};
pub use policy::{policy_check, policy_list, policy_replay, policy_request};
pub use run::{MAX_PROMPT_BYTES, run};
pub use serve::{attach_stdio, rpc_schema, serve};
pub use tools::{ToolsCommand, parse_args, tools_describe, tools_invoke, tools_list, tools_undo};
pub use worker::worker;

/// Loads the configuration for a command, honouring `--config`.
pub fn load(cli_config: Option<&std::path::Path>) -> Result<LoadedConfig, VeyraError> {
    Ok(config::load_config_with_sources(cli_config)?)
}

/// Starts file logging for a headless command.
pub fn init_headless_logging(config: &config::VeyraConfig) -> Result<(), VeyraError> {
    crate::logging::init(&config.logging, &config.log_file_path(), None)?;
    Ok(())
}

/// `veyra config show`.
pub fn config_show(loaded: &LoadedConfig) -> Result<ExitCode, VeyraError> {
    let yaml = serde_saphyr::to_string(&loaded.config.for_display())
        .map_err(|e| VeyraError::Runtime(format!("rendering the configuration: {e}")))?;
    let mut out = String::new();
    match &loaded.file {
        Some(f) => out.push_str(&format!("# effective configuration from {}\n", f.display())),
        None => out.push_str("# effective configuration from built-in defaults\n"),
    }
    for (key, var) in &loaded.overrides {
        out.push_str(&format!("# {key} overridden by {var}\n"));
    }
    if let Some(var) = &loaded.config.model.api_key_env {
        let state = match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => format!("set ({REDACTED})"),
            _ => "NOT SET".to_string(),
        };
        out.push_str(&format!("# API key from ${var}: {state}\n"));
    }
    out.push_str(&yaml);
    print_all(&out)
}

/// One JSON line per item (C1 and bidi characters escaped), for `--json` listings; `what`
/// names an item in the error.
pub(crate) fn json_lines<T: serde::Serialize>(
    items: &[T],
    what: &str,
) -> Result<String, VeyraError> {
    let mut out = String::new();
    for item in items {
        out.push_str(
            &crate::sanitize::to_json_line(item)
                .map_err(|e| VeyraError::Runtime(format!("encoding {what}: {e}")))?,
        );
        out.push('\n');
    }
    Ok(out)
}

/// Writes `text` to stdout and flushes, turning failures (a closed pipe) into errors. On a
/// terminal the text goes through the sanitizer: it may quote entries, config values or
/// policies, none of which may drive the terminal.
pub(crate) fn print_all(text: &str) -> Result<ExitCode, VeyraError> {
    let mut stdout = std::io::stdout().lock();
    let shown = if stdout.is_terminal() {
        sanitize(text)
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    stdout
        .write_all(shown.as_bytes())
        .and_then(|_| stdout.flush())
        .map_err(|e| VeyraError::io("writing to stdout", e))?;
    Ok(ExitCode::Success)
}

/// `veyra config check FILE`.
pub fn config_check(file: &std::path::Path) -> Result<ExitCode, VeyraError> {
    config::check_file(file)?;
    print_all(&format!("{}: ok\n", file.display()))
}

/// `veyra health`: the backend's own check and the audit store, read-only (so it works while
/// a console holds the store).
pub async fn health(loaded: LoadedConfig) -> Result<ExitCode, VeyraError> {
    let config = &loaded.config;
    let registry = crate::models::BackendRegistry::with_builtins();
    let mut healthy = true;
    match registry.get_backend(&config.model.backend, &config.model) {
        Ok(backend) => match backend.health_check().await {
            Ok(()) => println!("backend {}: ok", backend.name()),
            Err(e) => {
                healthy = false;
                println!(
                    "backend {}: FAILED: {}",
                    backend.name(),
                    sanitize(&e.to_string())
                );
            }
        },
        // A backend that does not exist is a configuration error, not an unhealthy backend.
        Err(e) => return Err(e.into()),
    }
    // So are policies that do not load: nothing would start with them.
    {
        use crate::governance::PolicyEngine;
        let engine = crate::governance::CedarEngine::from_config(&config.governance)?;
        println!(
            "policy: ok ({} policies from {})",
            engine.policies().len(),
            engine.sources().join(", ")
        );
    }
    // The MCP servers: a serving runtime's own, as it reports them; else each is started,
    // listed and stopped again. One that is not up is unhealthy.
    if !config.tools.mcp_servers.is_empty() {
        let attached = crate::service::attach_configured(config, "veyra health", false).await?;
        let statuses = match &attached {
            Some((client, _)) => {
                println!("mcp servers: as {} runs them", client.describe());
                client.runtime.mcp.clone()
            }
            None => {
                let hub = crate::tools::mcp::McpHub::new(
                    config,
                    std::sync::Arc::new(crate::events::EventBus::default()),
                );
                hub.ready().await;
                hub.statuses()
            }
        };
        drop(attached);
        healthy &= statuses
            .iter()
            .all(|s| s.state == crate::tools::mcp::McpState::Up);
        print!("{}", tools::mcp_lines(&statuses));
    }
    if !config.governance.audit {
        println!("audit: off (governance.audit = false)");
    } else if config.governance.store == config::AuditStoreKind::Memory {
        println!("audit: in memory (governance.store = memory); nothing persisted to check");
    } else {
        let path = config.audit_store_path();
        if !path.exists() {
            println!(
                "audit: ok (no store yet at {}; created on first record)",
                path.display()
            );
        } else {
            match audit::open_trail(&path, &crate::governance::StoreOptions::from_config(config))
                .and_then(|t| t.verify_integrity().map_err(VeyraError::from))
            {
                Ok(report) => println!(
                    "audit: ok ({} entries, chain verified, {})",
                    report.entries,
                    path.display()
                ),
                Err(e) => {
                    healthy = false;
                    println!("audit: FAILED: {}", sanitize(&e.to_string()));
                }
            }
        }
    }
    Ok(if healthy {
        ExitCode::Success
    } else {
        ExitCode::Runtime
    })
}

/// `veyra latency`.
pub fn latency(args: LatencyArgs, loaded: &LoadedConfig) -> Result<ExitCode, VeyraError> {
    use crate::runtime::latency::{human, link_report};
    let preset = args.preset.unwrap_or(loaded.config.latency.preset);
    // The link's simulated clock starts at `latency.start` when the configuration names one.
    let at = args
        .at
        .or(loaded.config.latency.start)
        .unwrap_or_else(chrono::Utc::now);
    let report = link_report(preset, at, &loaded.config.latency)
        .map_err(|e| VeyraError::Usage(format!("--at: {e}")))?;
    let mut out = String::new();
    if args.json {
        out = crate::sanitize::to_json_pretty(&report)
            .map_err(|e| VeyraError::Runtime(format!("encoding the report: {e}")))?;
        out.push('\n');
    } else {
        let secs = |d: std::time::Duration| format!("{:.1} s", d.as_secs_f64());
        out.push_str(&format!("link        {}\n", report.preset));
        out.push_str(&format!(
            "at          {}\n",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
        if let (Some(km), Some(au)) = (report.distance_km, report.distance_au()) {
            out.push_str(&format!("distance    {km:.0} km ({au:.4} au)\n"));
        }
        out.push_str(&format!(
            "one-way     {} ({})\n",
            human(report.one_way),
            secs(report.one_way)
        ));
        out.push_str(&format!(
            "round trip  {} ({}) of light time, plus processing\n",
            human(report.round_trip()),
            secs(report.round_trip())
        ));
        out.push_str(&format!(
            "range       {} – {} one way\n",
            human(report.one_way_min),
            human(report.one_way_max)
        ));
        match report.elongation_deg {
            Some(deg) => out.push_str(&format!("sun angle   {deg:.1}° — {}\n", report.conjunction)),
            None => out.push_str(&format!("conjunction {}\n", report.conjunction)),
        }
    }
    print_all(&out)
}
