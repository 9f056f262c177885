//! The command line: clap definitions and the headless subcommands (DESIGN §3).
//!
//! Headless commands drive the same [`VeyraCore`] as the console and read the same events:
//! `veyra run` prints `OutputDelta` text as it streams, or every event as a JSON line.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use futures_util::StreamExt;

use crate::config::{self, LatencyPreset, LoadedConfig, REDACTED};
use crate::core::{ExecutionRequest, ResultFolder, VeyraCore};
use crate::error::{ExitCode, VeyraError};
use crate::events::{Event, Priority, TaskStatus};
use crate::sanitize::sanitize;

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
    /// Link preset (default: `latency.preset` from the configuration).
    #[arg(long, value_enum)]
    pub preset: Option<LatencyPreset>,
    /// Moment to compute for, RFC 3339 (default: now), e.g. 2003-08-27T00:00:00Z.
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_rfc3339(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e}; use RFC 3339, e.g. 2003-08-27T00:00:00Z"))
}

/// `veyra audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the audit chain (the store, or an export offline); exit 3 naming the first bad
    /// entry.
    Verify {
        /// The store to verify (default: governance.store_path).
        #[arg(long, value_name = "PATH", conflicts_with = "file")]
        db: Option<PathBuf>,
        /// An export document written by `veyra audit export`.
        #[arg(long, value_name = "EXPORT")]
        file: Option<PathBuf>,
    },
    /// List entries, oldest first.
    List {
        /// The store to read (default: governance.store_path).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        #[command(flatten)]
        filter: FilterArgs,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Prove that entry SEQ is in the log (RFC 6962 inclusion proof against the current tree head).
    Prove {
        /// Sequence number of the entry.
        seq: u64,
        /// The store to read (default: governance.store_path).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
    /// Export entries as a JSON document that `veyra audit verify --file` checks offline.
    Export {
        /// The store to read (default: governance.store_path).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        #[command(flatten)]
        filter: FilterArgs,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Entry filters of `veyra audit list` and `export`.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Only this event type (EXECUTION, TOOL_INVOCATION, POLICY_CHECK, SAFETY_CHECK,
    /// SAFETY_VIOLATION, CONFIG_CHANGE, LATENCY_CHANGE, BENCHMARK, SYSTEM).
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_event_type)]
    pub event_type: Option<crate::governance::AuditEventType>,
    /// Only this actor.
    #[arg(long)]
    pub actor: Option<String>,
    /// Not before this time (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Not after this time (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

impl FilterArgs {
    fn to_filter(&self) -> crate::governance::AuditFilter {
        crate::governance::AuditFilter {
            event_type: self.event_type,
            actor: self.actor.clone(),
            since: self.since,
            until: self.until,
        }
    }
}

fn parse_event_type(text: &str) -> Result<crate::governance::AuditEventType, String> {
    use crate::governance::AuditEventType;
    let upper = text.to_ascii_uppercase().replace('-', "_");
    AuditEventType::ALL
        .into_iter()
        .find(|t| t.name() == upper)
        .ok_or_else(|| {
            let names: Vec<&str> = AuditEventType::ALL.iter().map(|t| t.name()).collect();
            format!(
                "unknown event type{}; valid: {}",
                config::suggest::did_you_mean(&upper, names.iter().copied()),
                names.join(", ")
            )
        })
}

/// `veyra tui`.
#[derive(Debug, Args, Default, Clone)]
pub struct TuiArgs {
    /// Theme name (default, high-contrast, mono) or path to a theme file.
    #[arg(long, value_name = "NAME|PATH")]
    pub theme: Option<String>,
    /// Link preset to start with.
    #[arg(long, value_enum)]
    pub preset: Option<LatencyPreset>,
    /// Demo mode: simulated Mars link for today, 120× time compression, visible streaming.
    #[arg(long)]
    pub demo: bool,
}

/// `veyra run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The prompt; `-` or omitted reads it from stdin.
    pub prompt: Option<String>,
    /// Scheduling priority.
    #[arg(long, value_enum, default_value_t = Priority::Normal)]
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
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| VeyraError::io("reading the prompt from stdin", e))?;
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
            ..
        } = &event
        {
            let question =
                sanitize(&format!("veyra: {reason}. Allow {operation}? [y/N] ")).into_owned();
            let answer = tokio::task::spawn_blocking(move || {
                eprint!("{question}");
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).map(|_| line)
            })
            .await
            .map_err(|e| VeyraError::Runtime(format!("asking for confirmation: {e}")))?
            .map_err(|e| VeyraError::io("reading the answer from the terminal", e))?;
            let allowed = matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes");
            core.answer_confirmation(*request, allowed, "operator (terminal)")?;
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
        Some(result) => result.map(|_| ExitCode::Success),
        None => Err(VeyraError::Runtime(
            "the execution ended without a final state".into(),
        )),
    }
}

/// `veyra config show`.
pub fn config_show(loaded: &LoadedConfig) -> Result<ExitCode, VeyraError> {
    let yaml = serde_saphyr::to_string(&loaded.config)
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

/// Writes `text` to stdout and flushes, turning failures (a closed pipe) into errors. On a
/// terminal the text goes through the sanitizer: it may quote entries, config values or
/// policies, none of which may drive the terminal.
fn print_all(text: &str) -> Result<ExitCode, VeyraError> {
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
            match open_trail(&path).and_then(|t| t.verify_integrity().map_err(VeyraError::from)) {
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

fn open_trail(path: &std::path::Path) -> Result<crate::governance::AuditTrail, VeyraError> {
    let store = crate::governance::SqliteStore::open_read_only(path)?;
    Ok(crate::governance::AuditTrail::new(std::sync::Arc::new(
        store,
    ))?)
}

fn store_path(db: Option<&std::path::Path>, loaded: &LoadedConfig) -> PathBuf {
    db.map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| loaded.config.audit_store_path())
}

/// `veyra audit verify [--db PATH]`.
pub fn audit_verify_db(
    db: Option<&std::path::Path>,
    loaded: &LoadedConfig,
) -> Result<ExitCode, VeyraError> {
    let path = store_path(db, loaded);
    let trail = open_trail(&path)?;
    let started = std::time::Instant::now();
    let report = trail.verify_integrity()?;
    let root = trail.merkle_root()?;
    let checkpoint = match trail.latest_checkpoint()? {
        Some(cp) => format!(
            "checkpoint {} entries, signed {} by {}",
            cp.tree_size,
            cp.timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            cp.public_key
        ),
        None => "checkpoint none yet".to_string(),
    };
    print_all(&format!(
        "{}: ok — {} entries verified in {:.1?}\nchain head {}\ntree head  {}\n{checkpoint}\n",
        path.display(),
        report.entries,
        started.elapsed(),
        report.head,
        hex::encode(root)
    ))
}

/// `veyra audit list`.
pub fn audit_list(
    db: Option<&std::path::Path>,
    filter: &FilterArgs,
    json: bool,
    loaded: &LoadedConfig,
) -> Result<ExitCode, VeyraError> {
    let trail = open_trail(&store_path(db, loaded))?;
    let entries = trail.query(&filter.to_filter())?;
    let mut out = String::new();
    if json {
        for e in &entries {
            let line = serde_json::to_string(e)
                .map_err(|e| VeyraError::Runtime(format!("encoding an entry: {e}")))?;
            out.push_str(&line);
            out.push('\n');
        }
    } else {
        out.push_str(&format!(
            "{:>6}  {:<27}  {:<16}  {:<10}  {:<14}  {:<9}  {}\n",
            "SEQ", "TIME (UTC)", "TYPE", "ACTOR", "ACTION", "OUTCOME", "HASH"
        ));
        for e in &entries {
            out.push_str(&format!(
                "{:>6}  {:<27}  {:<16}  {:<10}  {:<14}  {:<9}  {}\n",
                e.seq,
                e.timestamp
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                e.event_type.name(),
                e.actor,
                e.action,
                e.outcome,
                e.short_hash()
            ));
        }
        out.push_str(&format!("{} entries\n", entries.len()));
    }
    print_all(&out)
}

/// `veyra audit export`.
pub fn audit_export(
    db: Option<&std::path::Path>,
    filter: &FilterArgs,
    out: Option<&std::path::Path>,
    loaded: &LoadedConfig,
) -> Result<ExitCode, VeyraError> {
    let trail = open_trail(&store_path(db, loaded))?;
    let export = trail.export(&filter.to_filter())?;
    let mut text = serde_json::to_string_pretty(&export)
        .map_err(|e| VeyraError::Runtime(format!("encoding the export: {e}")))?;
    text.push('\n');
    match out {
        None => print_all(&text),
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|e| VeyraError::io(format!("writing {}", path.display()), e))?;
            eprintln!(
                "{} entries written to {}",
                export.entries.len(),
                path.display()
            );
            Ok(ExitCode::Success)
        }
    }
}

/// `veyra audit verify --file EXPORT`.
pub fn audit_verify_file(file: &std::path::Path) -> Result<ExitCode, VeyraError> {
    use crate::governance::{AuditError, AuditExport};
    let text = std::fs::read_to_string(file)
        .map_err(|e| VeyraError::io(format!("reading audit export {}", file.display()), e))?;
    let export: AuditExport = serde_json::from_str(&text).map_err(|e| {
        VeyraError::Usage(format!(
            "{}:{}:{}: not a Veyra audit export: {e}",
            file.display(),
            e.line(),
            e.column()
        ))
    })?;
    if export.format != crate::governance::audit::EXPORT_FORMAT {
        return Err(VeyraError::Usage(format!(
            "{}: unsupported export format '{}'; this Veyra reads '{}'",
            file.display(),
            export.format,
            crate::governance::audit::EXPORT_FORMAT
        )));
    }
    if export.filtered {
        return Err(VeyraError::Usage(format!(
            "{}: this export was filtered, so it is not a whole chain and cannot be verified; export without filters",
            file.display()
        )));
    }
    let report = export
        .verify()
        .map_err(|f| VeyraError::Audit(AuditError::Integrity(f)))?;
    println!(
        "{}: ok — {} entries, chain head {}",
        file.display(),
        report.entries,
        report.head
    );
    match &export.checkpoint {
        Some(cp) => println!(
            "checkpoint: {} entries, tree head {}, signed {} by key {} (compare with the key the log's owner publishes)",
            cp.tree_size,
            cp.root,
            cp.timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            cp.public_key
        ),
        None => println!("checkpoint: none in this export (a truncated tail would not show)"),
    }
    Ok(ExitCode::Success)
}

/// `veyra latency`.
pub fn latency(args: LatencyArgs, loaded: &LoadedConfig) -> Result<ExitCode, VeyraError> {
    use crate::runtime::latency::{human, link_report};
    let preset = args.preset.unwrap_or(loaded.config.latency.preset);
    let at = args.at.unwrap_or_else(chrono::Utc::now);
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
                let preset =
                    <LatencyPreset as clap::ValueEnum>::from_str(&p, true).map_err(|_| {
                        bad(format!(
                            "preset '{p}' is not one of earth, lunar, mars, deep-space, custom"
                        ))
                    })?;
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
        for p in &policies {
            out.push_str(
                &crate::sanitize::to_json_line(p)
                    .map_err(|e| VeyraError::Runtime(format!("encoding a policy: {e}")))?,
            );
            out.push('\n');
        }
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

/// `veyra audit prove SEQ`: the inclusion proof as JSON, checked before it is printed.
pub fn audit_prove(
    seq: u64,
    db: Option<&std::path::Path>,
    loaded: &LoadedConfig,
) -> Result<ExitCode, VeyraError> {
    use crate::governance::merkle;
    let path = store_path(db, loaded);
    let trail = open_trail(&path)?;
    trail.verify_integrity()?;
    let entries = trail.query(&crate::governance::AuditFilter::default())?;
    let leaves = entries
        .iter()
        .map(|e| e.canonical_bytes())
        .collect::<Result<Vec<_>, _>>()?;
    let index = usize::try_from(seq.saturating_sub(1)).unwrap_or(usize::MAX);
    let Some(leaf) = (seq >= 1).then(|| leaves.get(index).cloned()).flatten() else {
        return Err(VeyraError::Usage(format!(
            "no entry {seq} in {}; it holds entries 1 to {}",
            path.display(),
            entries.len()
        )));
    };
    let proof = merkle::prove(leaves, index)
        .ok_or_else(|| VeyraError::Runtime(format!("could not build a proof for entry {seq}")))?;
    if !merkle::verify(&leaf, &proof) {
        return Err(VeyraError::Runtime(format!(
            "the proof for entry {seq} does not verify; report this as a bug"
        )));
    }
    let mut text = serde_json::to_string_pretty(&proof)
        .map_err(|e| VeyraError::Runtime(format!("encoding the proof: {e}")))?;
    text.push('\n');
    print_all(&text)
}
