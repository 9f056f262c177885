//! The command line: clap definitions and the headless subcommands (DESIGN §3).
//!
//! Headless commands drive the same [`VeyraCore`] as the console and read the same events:
//! `veyra run` prints `OutputDelta` text as it streams, or every event as a JSON line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use futures_util::StreamExt;

use crate::config::{self, LatencyPreset, LoadedConfig, REDACTED};
use crate::core::{ExecutionRequest, ResultFolder, VeyraCore};
use crate::error::{ExitCode, VeyraError};
use crate::events::{ConfirmScope, Event, FinishReason, Priority, TaskStatus};
use crate::sanitize::sanitize;

mod audit;
mod bench;
mod tools;
pub use audit::{
    AuditCommand, FilterArgs, VerifyArgs, audit_adopt, audit_export, audit_list, audit_prove,
    audit_rotate_key, audit_verify_db, audit_verify_file,
};
pub use bench::{
    BenchArgs, BenchCommand, BenchConsole, BenchRunArgs, bench, bench_console, bench_schema,
    wants_console,
};
pub use tools::{ToolsCommand, parse_args, tools_describe, tools_invoke, tools_list, tools_undo};

/// Veyra — a terminal mission console for governable LLM work over slow links.
#[derive(Debug, Parser)]
#[command(name = "veyra", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: $VEYRA_CONFIG, ./veyra.yaml, ~/.config/veyra/config.yaml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Console options, for `veyra` without a subcommand.
    #[command(flatten)]
    pub console: TuiArgs,

    /// What to do; the console when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the console (the default).
    Tui(TuiArgs),
    /// Run one prompt through the full path and stream the answer to stdout.
    Run(RunArgs),
    /// Show or check configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check the backend and the audit trail; exit 0 only when healthy.
    Health,
    /// One-way and round-trip light time, distance and conjunction state of a link.
    Latency(LatencyArgs),
    /// Inspect audit trails.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Ask the policy engine, or list its policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// List, describe and invoke tools, and undo file tool calls, through the gate.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Run benchmarks (progress on stderr, a table or JSON on stdout), record a run's model
    /// calls (--record DIR) or replay them offline (--replay DIR); list, show and compare past
    /// runs; print the export schema.
    Bench(BenchArgs),
}

/// `veyra policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Decide one request as the core would; exit 0 when allowed, 4 when denied.
    ///
    /// The context starts from what the core sends: `preset` (latency.preset) and its
    /// `destination` jurisdiction, and for `execute` also `priority` normal, `model`
    /// (model.model) and `prompt_chars` 0. --context JSON overrides any of them; a `preset`
    /// given there moves `destination` with it.
    Check {
        /// Who asks: operator, agent, benchmark, or any actor in the entities file.
        #[arg(long, value_name = "ACTOR")]
        principal: String,
        /// The action: execute, switch_backend, switch_preset, invoke_tool, read_file, write_file.
        #[arg(long, value_name = "ACTION")]
        action: String,
        /// What it acts on: backend:NAME, tool:NAME, file:PATH or link:PRESET.
        #[arg(long, value_name = "KIND:NAME")]
        resource: String,
        /// Context attributes as a JSON object, e.g. '{"priority":"background"}'.
        #[arg(long, value_name = "JSON")]
        context: Option<String>,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the loaded policies with their effect, jurisdiction and reason.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `veyra latency`.
#[derive(Debug, Args)]
pub struct LatencyArgs {
    /// Link preset: earth, lunar, mars, deep-space, custom (default: `latency.preset`).
    #[arg(long, value_name = "PRESET")]
    pub preset: Option<LatencyPreset>,
    /// Moment to compute for, RFC 3339 (default: `latency.start`, else now), e.g.
    /// 2003-08-27T00:00:00Z.
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn parse_rfc3339(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e}; use RFC 3339, e.g. 2003-08-27T00:00:00Z"))
}

/// `veyra tui`.
#[derive(Debug, Args, Default, Clone)]
pub struct TuiArgs {
    /// Theme name (default, daylight, high-contrast, deep-space, mono) or path to a theme file.
    #[arg(long, value_name = "NAME|PATH")]
    pub theme: Option<String>,
    /// Link preset to start with: earth, lunar, mars, deep-space, custom.
    #[arg(long, value_name = "PRESET")]
    pub preset: Option<LatencyPreset>,
    /// Demo mode: simulated Mars link for today, 120× time compression, visible streaming,
    /// and a scripted tour (any key takes over).
    #[arg(long)]
    pub demo: bool,
    /// Play this scenario file in demo mode instead of the built-in tour (implies --demo;
    /// see configs/scenarios/demo.yaml).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<std::path::PathBuf>,
}

/// `veyra run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The prompt; `-` or omitted reads it from stdin.
    pub prompt: Option<String>,
    /// Scheduling priority: critical, high, normal, low, background.
    #[arg(long, value_name = "PRIORITY", default_value = "normal")]
    pub priority: Priority,
    /// Backend for this run (see `veyra health`).
    #[arg(long)]
    pub backend: Option<String>,
    /// Model for this run.
    #[arg(long)]
    pub model: Option<String>,
    /// System prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// Print every event as one JSON line instead of the answer text.
    #[arg(long)]
    pub json: bool,
    /// Write the model's text byte for byte even to a terminal (by default, control and escape
    /// characters are shown as visible placeholders there; piped output is always byte-exact).
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,
    /// Answer yes to every confirmation the safety boundary asks for (without it, you are
    /// asked on the terminal, or the operation is denied when there is no terminal).
    #[arg(long)]
    pub yes: bool,
    /// Tools the model may call: `all`, `none`, or names separated by commas
    /// (default: `tools.offer`). Every call passes policy, the safety boundary and audit.
    #[arg(long, value_name = "all|none|NAME,…")]
    pub tools: Option<crate::config::ToolSelection>,
}

/// `veyra config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets redacted).
    Show,
    /// Validate a configuration file.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

/// Loads the configuration for a command, honouring `--config`.
pub fn load(cli_config: Option<&std::path::Path>) -> Result<LoadedConfig, VeyraError> {
    Ok(config::load_config_with_sources(cli_config)?)
}

/// Starts file logging for a headless command.
pub fn init_headless_logging(config: &config::VeyraConfig) -> Result<(), VeyraError> {
    crate::logging::init(&config.logging, &config.log_file_path(), None)?;
    Ok(())
}

/// Most bytes of a prompt read from stdin: far past any model's context window.
pub const MAX_PROMPT_BYTES: u64 = 16 << 20;

/// Reads the prompt from the argument or stdin.
fn read_prompt(arg: Option<String>) -> Result<String, VeyraError> {
    let from_stdin = matches!(arg.as_deref(), None | Some("-"));
    if !from_stdin {
        return Ok(arg.unwrap_or_default());
    }
    let stdin = std::io::stdin();
    if arg.is_none() && stdin.is_terminal() {
        return Err(VeyraError::Usage(
            "no prompt given; run `veyra run \"PROMPT\"` or pipe one: `echo PROMPT | veyra run -`"
                .into(),
        ));
    }
    // Stdin may be a pipe that never ends (`veyra run - < /dev/zero`): read no further than
    // the largest prompt.
    let shown = std::path::Path::new("stdin");
    let text = crate::fsread::read_capped(stdin.lock(), shown, MAX_PROMPT_BYTES, "prompt")
        .and_then(|bytes| crate::fsread::utf8(bytes, shown, "prompt"))
        .map_err(|e| match e {
            crate::fsread::BoundedReadError::Io { source, .. } => {
                VeyraError::io("reading the prompt from stdin", source)
            }
            crate::fsread::BoundedReadError::TooLarge { cap, .. } => VeyraError::Usage(format!(
                "the prompt on stdin is larger than {}, the most `veyra run -` reads; none of it \
                 was used (pipe a shorter prompt)",
                crate::fsread::human_bytes(cap)
            )),
            e @ (crate::fsread::BoundedReadError::NotRegular { .. }
            | crate::fsread::BoundedReadError::NotUtf8 { .. }) => VeyraError::Usage(e.to_string()),
        })?;
    if text.trim().is_empty() {
        return Err(VeyraError::Usage(
            "stdin closed without a prompt; pipe some text, e.g. `echo PROMPT | veyra run -`"
                .into(),
        ));
    }
    Ok(text)
}

/// `veyra run`.
pub async fn run(args: RunArgs, loaded: LoadedConfig) -> Result<ExitCode, VeyraError> {
    let prompt = read_prompt(args.prompt)?;
    let core = VeyraCore::new(loaded.config)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    core.set_confirmation_policy(if args.yes {
        crate::core::ConfirmationPolicy::AllowAll
    } else if interactive {
        crate::core::ConfirmationPolicy::Ask
    } else {
        crate::core::ConfirmationPolicy::DenyAll
    });
    let mut request = ExecutionRequest::new(prompt).priority(args.priority);
    request.system = args.system;
    request.backend = args.backend;
    request.model = args.model;
    request.tools = args.tools;
    // Listen for Ctrl-C before anything is submitted, so no signal can slip past.
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| VeyraError::io("installing the Ctrl-C handler", e))?;
    let mut stream = core.execute_stream(request)?;
    let mut folder = ResultFolder::new(stream.id());
    let stdout = std::io::stdout();
    // Answer text reaches a terminal only through the sanitizer, unless asked for raw; piped,
    // it stays byte-exact for the next program.
    let sanitize_answer = !args.raw && stdout.is_terminal();
    let write_err = |e| VeyraError::io("writing to stdout", e);
    let mut ends_with_newline = true;
    let mut outcome = None;
    let id = stream.id();
    let mut interrupted = false;
    loop {
        // Ctrl-C cancels the task (it is audited as cancelled) and waits for it to wind down;
        // a second Ctrl-C stops waiting.
        let event = tokio::select! {
            event = stream.next() => event,
            _ = interrupts.recv() => {
                if interrupted {
                    return Err(VeyraError::Cancelled("interrupted twice; not waiting".into()));
                }
                interrupted = true;
                eprintln!("veyra: cancelling task {id} (Ctrl-C again to abort at once)");
                if let Err(e) = core.cancel(id) {
                    eprintln!("veyra: {}", sanitize(&e.to_string()));
                }
                continue;
            }
        };
        let Some(event) = event else { break };
        if let Event::ConfirmationRequested {
            request,
            operation,
            reason,
            detail,
            scopable,
            ..
        } = &event
        {
            let detail = detail
                .as_deref()
                .map(|d| format!(" with {d}"))
                .unwrap_or_default();
            let choices = if *scopable {
                "[y]es once / [a]lways this run / [N]o"
            } else {
                "[y/N]"
            };
            let question = sanitize(&format!(
                "veyra: {reason}. Allow {operation}{detail}? {choices} "
            ))
            .into_owned();
            let answer = tokio::task::spawn_blocking(move || {
                eprint!("{question}");
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).map(|_| line)
            })
            .await
            .map_err(|e| VeyraError::Runtime(format!("asking for confirmation: {e}")))?
            .map_err(|e| VeyraError::io("reading the answer from the terminal", e))?;
            let (allowed, scope) = match answer.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" => (true, ConfirmScope::Once),
                "a" | "always" if *scopable => (true, ConfirmScope::Session),
                _ => (false, ConfirmScope::Once),
            };
            core.answer_confirmation_scoped(*request, allowed, scope, "operator (terminal)")?;
        }
        if !args.json
            && let Event::AgentStep {
                step,
                tool,
                arguments,
                outcome,
                summary,
                ..
            } = &event
        {
            // Tool calls go to stderr, so stdout stays the answer alone.
            let result = if outcome == "success" {
                format!("→ {summary}")
            } else {
                format!("{outcome}: {summary}")
            };
            eprintln!(
                "{}",
                sanitize(&format!(
                    "veyra: ⚙ step {step}: {tool} {arguments} {result}"
                ))
            );
        }
        let mut out = stdout.lock();
        if args.json {
            let line = crate::sanitize::to_json_line(&event)
                .map_err(|e| VeyraError::Runtime(format!("encoding an event: {e}")))?;
            writeln!(out, "{line}").map_err(write_err)?;
        } else if let Event::OutputDelta { text, .. } = &event {
            let shown = if sanitize_answer {
                sanitize(text)
            } else {
                std::borrow::Cow::Borrowed(text.as_str())
            };
            out.write_all(shown.as_bytes()).map_err(write_err)?;
            ends_with_newline = text.ends_with('\n');
        } else if let Event::TaskState {
            status: TaskStatus::Running,
            attempt,
            ..
        } = &event
            && *attempt > 1
        {
            // A retry starts the answer over; say so rather than splice two answers.
            if !ends_with_newline {
                writeln!(out).map_err(write_err)?;
            }
            writeln!(out, "--- attempt {attempt} ---").map_err(write_err)?;
            ends_with_newline = true;
        }
        out.flush().map_err(write_err)?;
        if let Some(result) = folder.apply(&event) {
            outcome = Some(result);
        }
    }
    if !args.json && !ends_with_newline {
        let mut out = stdout.lock();
        writeln!(out).map_err(write_err)?;
    }
    match outcome {
        Some(Ok(result)) => match result.finish_reason {
            // A hard stop: the model did not finish its answer.
            FinishReason::MaxSteps => Err(VeyraError::Task {
                kind: "max_steps".into(),
                message: format!(
                    "stopped after {} tool calls (tools.max_steps); the answer is incomplete — \
                     raise tools.max_steps or narrow the task",
                    result.tool_steps
                ),
            }),
            FinishReason::TokenBudget => Err(VeyraError::Task {
                kind: "token_budget".into(),
                message: format!(
                    "stopped at {} tokens (runtime.max_tokens_per_task) after {} tool calls; the \
                     answer is incomplete — raise the budget or narrow the task",
                    result.usage.input + result.usage.output,
                    result.tool_steps
                ),
            }),
            _ => Ok(ExitCode::Success),
        },
        Some(Err(e)) => Err(e),
        None => Err(VeyraError::Runtime(
            "the execution ended without a final state".into(),
        )),
    }
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

/// The request `veyra policy check` decides: the core's default context for the action,
/// overridden by `--context`.
pub fn policy_request(
    principal: &str,
    action: &str,
    resource: &str,
    context: Option<&str>,
    config: &config::VeyraConfig,
) -> Result<crate::governance::PolicyRequest, VeyraError> {
    use crate::governance::policy::{ContextValue, PolicyRequest, Resource, destination_of};
    if principal.trim().is_empty() {
        return Err(VeyraError::Usage(
            "--principal is empty; name an actor such as operator".into(),
        ));
    }
    let resource: Resource = resource.parse()?;
    let mut request = PolicyRequest::new(principal, action, resource, config.latency.preset);
    if action == crate::core::EXECUTE {
        request = request
            .with(
                "priority",
                ContextValue::Str(Priority::Normal.name().into()),
            )
            .with("model", ContextValue::Str(config.model.model.clone()))
            .with("prompt_chars", ContextValue::Long(0));
    }
    let Some(text) = context else {
        return Ok(request);
    };
    let bad = |m: String| VeyraError::Usage(format!("--context: {m}"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "not JSON ({e}); write an object, e.g. '{{\"priority\":\"background\"}}'"
        ))
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(bad(
            "write a JSON object, e.g. '{\"priority\":\"background\"}'".into(),
        ));
    };
    let destination_given = map.contains_key("destination");
    for (key, v) in map {
        let value = match (key.as_str(), v) {
            ("destination", serde_json::Value::String(j)) => ContextValue::Jurisdiction(j),
            ("preset", serde_json::Value::String(p)) => {
                let preset = p.parse::<LatencyPreset>().map_err(bad)?;
                if !destination_given {
                    request = request.with(
                        "destination",
                        ContextValue::Jurisdiction(destination_of(preset).into()),
                    );
                }
                ContextValue::Str(preset.name().into())
            }
            (_, serde_json::Value::String(text)) => ContextValue::Str(text),
            (_, serde_json::Value::Bool(b)) => ContextValue::Bool(b),
            (_, serde_json::Value::Number(n)) => match n.as_i64() {
                Some(n) => ContextValue::Long(n),
                None => return Err(bad(format!("{key}: {n} is not a whole number"))),
            },
            (_, other) => {
                return Err(bad(format!(
                    "{key}: {other} is not a string, whole number or boolean"
                )));
            }
        };
        request = request.with(&key, value);
    }
    Ok(request)
}

/// `veyra policy check`.
pub fn policy_check(
    request: &crate::governance::PolicyRequest,
    json: bool,
    loaded: &LoadedConfig,
) -> Result<ExitCode, VeyraError> {
    use crate::governance::PolicyEngine;
    let engine = crate::governance::CedarEngine::from_config(&loaded.config.governance)?;
    let decision = engine.decide(request)?;
    let mut out = String::new();
    if json {
        let doc = serde_json::json!({
            "decision": decision.name(),
            "request": request,
            "policies": decision.policies,
            "reason": decision.reason(request),
            "errors": decision.errors,
        });
        out = crate::sanitize::to_json_pretty(&doc)
            .map_err(|e| VeyraError::Runtime(format!("encoding the decision: {e}")))?;
        out.push('\n');
    } else {
        out.push_str(&format!("{:<5}  {}\n", decision.name(), request.describe()));
        if decision.policies.is_empty() {
            out.push_str("       no policy matched: denied by default\n");
        }
        for p in &decision.policies {
            let jurisdiction = p
                .annotations
                .get("jurisdiction")
                .map(|j| format!(" [{j}]"))
                .unwrap_or_default();
            out.push_str(&format!(
                "       {} {}{jurisdiction}",
                p.effect.name(),
                p.id
            ));
            if let Some(reason) = p.annotations.get("reason") {
                out.push_str(&format!(": {reason}"));
            }
            out.push('\n');
        }
        for e in &decision.errors {
            out.push_str(&format!("       skipped (evaluation error): {e}\n"));
        }
        let context: Vec<String> = request
            .context
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    serde_json::to_string(v).unwrap_or_else(|_| "?".into())
                )
            })
            .collect();
        out.push_str(&format!("context  {}\n", context.join(" ")));
    }
    print_all(&out)?;
    Ok(if decision.allowed {
        ExitCode::Success
    } else {
        ExitCode::Refused
    })
}

/// `veyra policy list`.
pub fn policy_list(json: bool, loaded: &LoadedConfig) -> Result<ExitCode, VeyraError> {
    use crate::governance::PolicyEngine;
    let engine = crate::governance::CedarEngine::from_config(&loaded.config.governance)?;
    let policies = engine.policies();
    let mut out = String::new();
    if json {
        out = json_lines(&policies, "a policy")?;
    } else {
        out.push_str(&format!(
            "{} policies from {}\n",
            policies.len(),
            engine.sources().join(", ")
        ));
        let width = policies
            .iter()
            .map(|p| p.id.len())
            .max()
            .unwrap_or(2)
            .max(2);
        for p in &policies {
            let get = |k: &str| p.annotations.get(k).map_or("-", String::as_str);
            out.push_str(&format!(
                "{:<6} {:<width$}  {:<14} {}\n",
                p.effect.name(),
                p.id,
                get("jurisdiction"),
                get("reason"),
            ));
        }
    }
    print_all(&out)
}
