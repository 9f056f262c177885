//! The command line's clap definitions: [`Cli`], its [`Command`]s and their arguments. The
//! subcommands with files of their own (audit, bench, tools) define their arguments there.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::{AuditCommand, BenchArgs, ToolsCommand};
use crate::config::LatencyPreset;
use crate::events::Priority;

/// Veyra — a terminal mission console for governable LLM work over slow links.
#[derive(Debug, Parser)]
#[command(name = "veyra", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: $VEYRA_CONFIG, ./veyra.yaml, ~/.config/veyra/config.yaml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Host a runtime of this process's own even when one serves the configured store (which
    /// then refuses this one: a store has one writer). Without it, `veyra`, `veyra run`
    /// attach to a serving runtime when there is one.
    #[arg(long, global = true)]
    pub standalone: bool,

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
    /// Host the runtime headless and serve it on the control socket until stopped (Ctrl-C,
    /// SIGTERM): consoles, `veyra run` and `veyra attach` on the same store attach to it.
    Serve,
    /// Run tasks of the fleet: pull them from the NATS JetStream queue (`nats:`), run each
    /// through this machine's own core and gate, until Ctrl-C or SIGTERM.
    Worker(WorkerArgs),
    /// Open a console on a runtime that serves elsewhere: this store's (default), a socket,
    /// another host over SSH (`ssh://[user@]host[:port]`), or a whole fleet of workers
    /// (`nats://host[:port]`).
    Attach(AttachArgs),
    /// The control protocol (`veyra.rpc/1`).
    #[command(subcommand)]
    Rpc(RpcCommand),
}

/// `veyra worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The NATS server (default `nats.url`), e.g. nats://127.0.0.1:4222.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// This worker's name in the fleet's records (default `host/pid`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Tasks this worker holds at once, running or waiting for a slot of its own
    /// (`runtime.max_concurrent` run at a time); default 16 per slot, at least 64, at most
    /// `runtime.queue_capacity`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub in_flight: Option<u32>,
}

/// `veyra rpc …`.
#[derive(Debug, Subcommand)]
pub enum RpcCommand {
    /// Print the JSON Schema of every message in both directions.
    Schema,
}

/// `veyra attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// `ssh://[user@]host[:port]`: run `veyra attach --stdio` there through `ssh` and open the
    /// console on it (SSH authenticates; nothing listens on a network port). `nats://host:port`:
    /// one console over the fleet on that server (every worker's tasks; prompts go to the
    /// fleet's stream; `nats.credentials` authenticates).
    #[arg(value_name = "ssh://[user@]host[:port] | nats://host[:port]")]
    pub target: Option<String>,
    /// The runtime's socket (default: the one serving the configured store).
    #[arg(long, value_name = "PATH", conflicts_with = "target")]
    pub socket: Option<PathBuf>,
    /// Relay the protocol between standard input/output and the runtime's socket, for a
    /// transport that gives a byte stream (`ssh host veyra attach --stdio`).
    #[arg(long, conflicts_with = "target")]
    pub stdio: bool,
    /// The command that starts Veyra on the far host (with ssh://).
    #[arg(long, value_name = "CMD", default_value = "veyra")]
    pub remote_command: String,
    /// Theme name or path, as for `veyra --theme`.
    #[arg(long, value_name = "NAME|PATH")]
    pub theme: Option<String>,
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
    /// Decide every recorded POLICY_CHECK again under a candidate policy set (the log is
    /// verified first) and report the decisions that would flip; exit 0 when none would, 5
    /// when some would, 3 when the log does not verify.
    Replay {
        /// The candidate: a .cedar file or a directory of them (schema and entities stay the
        /// configured ones).
        #[arg(long, value_name = "FILE|DIR")]
        policy: std::path::PathBuf,
        /// Only entries decided at or after this time (RFC 3339).
        #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only entries decided at or before this time (RFC 3339).
        #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// The audit store (default: the configured one).
        #[arg(long, value_name = "PATH")]
        db: Option<std::path::PathBuf>,
        /// The report as JSON.
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
    /// Demo mode: the simulated Mars link as on 2026-12-01 (or `latency.start`), 120× time
    /// compression, visible streaming, and a scripted tour (any key takes over).
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_demo_help_says_the_date_it_plays() {
        let mut cli = super::Cli::command();
        let help = cli
            .find_subcommand_mut("tui")
            .expect("a tui command")
            .render_long_help()
            .to_string();
        assert!(help.contains("2026-12-01"), "{help}");
        assert!(!help.contains("today"), "{help}");
    }
}
