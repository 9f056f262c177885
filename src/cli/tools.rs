//! `veyra tools …`: list, describe and invoke tools, and undo file tool calls, from the shell.
//! Invocations and undos pass the same gate as a model's calls (policy, safety, confirmation,
//! audit); this file only parses and prints.

use std::io::IsTerminal;

use clap::Subcommand;

use super::print_all;
use crate::config::LoadedConfig;
use crate::core::{ConfirmationPolicy, Restored, VeyraCore};
use crate::error::{ExitCode, VeyraError};
use crate::events::Event;
use crate::sanitize::sanitize;

/// `veyra tools …`.
#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// List the tools: name, category, reversible, confirmation.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one tool: what it does and the JSON Schema of its arguments.
    Describe {
        /// The tool's name.
        name: String,
    },
    /// Call a tool through the gate; exit 4 when policy, the safety boundary or the operator
    /// refuses it, 2 for an unknown tool or arguments that do not fit its schema.
    Invoke {
        /// The tool's name.
        name: String,
        /// An argument, KEY=VALUE; repeat for more. Values are strings unless the schema
        /// declares the key a number, integer or boolean.
        #[arg(long = "arg", value_name = "KEY=VALUE")]
        args: Vec<String>,
        /// Allow a call that needs confirmation without asking.
        #[arg(long)]
        yes: bool,
        /// Print the result as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Undo a file_write or file_delete: put back what it replaced, from the undo journal.
    /// Refused (exit 4), changing nothing, when the file changed since, the entry was already
    /// undone, or the journal does not match its audit entry.
    Undo {
        /// Sequence number of the call's TOOL_INVOCATION entry (`veyra audit list --type
        /// TOOL_INVOCATION`); default: the newest call not yet undone.
        seq: Option<u64>,
        /// Allow the undo without asking when governance.require_confirmation names it.
        #[arg(long)]
        yes: bool,
        /// Print the result as one JSON line.
        #[arg(long)]
        json: bool,
    },
}

/// Where a listing of the tools comes from.
enum Listing {
    /// The built-in tools of `config` (no MCP server configured).
    Local(crate::tools::ToolRegistry),
    /// A core of this process (on the mock, audit off: it runs nothing) that started the MCP
    /// servers and waited until each was tried; kept so they stay up while it is read.
    Hosted(VeyraCore),
    /// The serving runtime's own tools and servers, as it reported them.
    Runtime {
        tools: Vec<crate::tools::ToolInfo>,
        servers: Vec<crate::tools::mcp::McpServerStatus>,
        who: String,
    },
}

impl Listing {
    /// The tools as a runtime of `config` has them, MCP servers' included: the serving
    /// runtime's own when one serves the store (unless `standalone`), else built here.
    async fn of(config: &crate::config::VeyraConfig, standalone: bool) -> Result<Self, VeyraError> {
        if config.tools.mcp_servers.is_empty() {
            let registry = crate::tools::builtin::with_builtins(config, Default::default())
                .map_err(|e| VeyraError::Runtime(format!("registering the built-in tools: {e}")))?;
            return Ok(Listing::Local(registry));
        }
        if !standalone
            && let Some((client, _)) =
                crate::service::attach_configured(config, "veyra tools", false).await?
        {
            let reply = client
                .request(crate::service::protocol::Request::Tools)
                .await
                .map_err(super::run::remote_error)?;
            let crate::service::protocol::Reply::Tools { tools } = reply else {
                return Err(VeyraError::Runtime(format!(
                    "the runtime answered a tool listing with {reply:?}"
                )));
            };
            return Ok(Listing::Runtime {
                tools,
                servers: client.runtime.mcp.clone(),
                who: client.describe(),
            });
        }
        let mut listing = without_model(config.clone());
        listing.governance.audit = false;
        let core = VeyraCore::new(listing)?;
        core.mcp_ready().await;
        Ok(Listing::Hosted(core))
    }

    fn tools(&self) -> Vec<crate::tools::ToolInfo> {
        match self {
            Listing::Local(registry) => registry.list(),
            Listing::Hosted(core) => core.tools().list(),
            Listing::Runtime { tools, .. } => tools.clone(),
        }
    }

    fn describe(&self, name: &str) -> Result<crate::tools::ToolInfo, VeyraError> {
        let usage = |e: crate::tools::ToolError| VeyraError::Usage(e.to_string());
        match self {
            Listing::Local(registry) => registry.describe(name).map_err(usage),
            Listing::Hosted(core) => core.tools().describe(name).map_err(usage),
            Listing::Runtime { tools, who, .. } => tools
                .iter()
                .find(|t| t.capability.name == name)
                .cloned()
                .ok_or_else(|| {
                    VeyraError::Usage(format!(
                        "no tool named '{}' on the runtime ({who}){}; `veyra tools list` shows them",
                        crate::sanitize::quote(name),
                        crate::config::suggest::did_you_mean(
                            name,
                            tools.iter().map(|t| t.capability.name.as_ref())
                        )
                    ))
                }),
        }
    }

    /// The MCP servers' states, when any is configured.
    fn servers(&self) -> Option<(Vec<crate::tools::mcp::McpServerStatus>, Option<&str>)> {
        match self {
            Listing::Local(_) => None,
            Listing::Hosted(core) => Some((core.mcp_servers(), None)),
            Listing::Runtime { servers, who, .. } => Some((servers.clone(), Some(who))),
        }
    }
}

/// `veyra tools list`: every tool, then each MCP server's state.
pub async fn tools_list(
    json: bool,
    loaded: &LoadedConfig,
    standalone: bool,
) -> Result<ExitCode, VeyraError> {
    let listing = Listing::of(&loaded.config, standalone).await?;
    let tools = listing.tools();
    let mut out = String::new();
    if json {
        out = super::json_lines(&tools, "a tool")?;
    } else {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let width = tools
            .iter()
            .map(|t| t.capability.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(16);
        out.push_str(&format!(
            "{:<width$} {:<12} {:<11} {:<13} {}\n",
            "NAME", "CATEGORY", "REVERSIBLE", "CONFIRMATION", "DESCRIPTION"
        ));
        for t in &tools {
            let c = &t.capability;
            out.push_str(&format!(
                "{:<width$} {:<12} {:<11} {:<13} {}\n",
                sanitize(&c.name),
                c.category.name(),
                yes_no(c.reversible),
                yes_no(c.confirmation),
                sanitize(&c.description)
            ));
        }
        if let Some((servers, who)) = listing.servers() {
            out.push('\n');
            if let Some(who) = who {
                out.push_str(&format!("mcp servers: as {who} runs them\n"));
            }
            out.push_str(&mcp_lines(&servers));
        }
    }
    print_all(&out)
}

/// One line per MCP server: `mcp NAME: up (N tools, pid P)` or `mcp NAME: down: why`.
pub fn mcp_lines(servers: &[crate::tools::mcp::McpServerStatus]) -> String {
    use crate::tools::mcp::McpState;
    let mut out = String::new();
    for s in servers {
        let detail = s.detail.as_deref().map(sanitize).unwrap_or_default();
        let line = match s.state {
            McpState::Up => format!(
                "mcp {}: up ({} tools{}){}",
                s.name,
                s.tools,
                s.pid.map(|p| format!(", pid {p}")).unwrap_or_default(),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!("; {detail}")
                }
            ),
            McpState::Starting => format!("mcp {}: starting", s.name),
            McpState::Down | McpState::Stopped => {
                format!("mcp {}: {}: {detail}", s.name, s.state.name())
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `veyra tools describe NAME`.
pub async fn tools_describe(
    name: &str,
    loaded: &LoadedConfig,
    standalone: bool,
) -> Result<ExitCode, VeyraError> {
    let info = Listing::of(&loaded.config, standalone)
        .await?
        .describe(name)?;
    let mut out = crate::sanitize::to_json_pretty(&info)
        .map_err(|e| VeyraError::Runtime(format!("encoding a tool: {e}")))?;
    out.push('\n');
    print_all(&out)
}

/// Turns `KEY=VALUE` pairs into the JSON object a tool takes, typed by its schema.
pub fn parse_args(
    pairs: &[String],
    schema: &serde_json::Value,
) -> Result<serde_json::Value, VeyraError> {
    let mut object = serde_json::Map::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(VeyraError::Usage(format!(
                "--arg '{}' is not KEY=VALUE; write e.g. --arg path=notes.txt",
                crate::sanitize::quote(pair)
            )));
        };
        let declared = schema
            .pointer(&format!("/properties/{key}/type"))
            .and_then(serde_json::Value::as_str);
        let parsed = match declared {
            Some("number" | "integer" | "boolean") => serde_json::from_str(value)
                .unwrap_or_else(|_| serde_json::Value::String(value.to_string())),
            _ => serde_json::Value::String(value.to_string()),
        };
        if object.insert(key.to_string(), parsed).is_some() {
            return Err(VeyraError::Usage(format!(
                "--arg '{}' is given twice; give each argument once",
                crate::sanitize::quote(key)
            )));
        }
    }
    Ok(serde_json::Value::Object(object))
}

/// Sets how `core` answers confirmations — `--yes`: allow; a terminal: ask on it; else deny —
/// and, for a terminal, starts the task that asks. Abort the task when the act is done.
fn answer_on_terminal(core: &VeyraCore, yes: bool) -> tokio::task::JoinHandle<()> {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    core.set_confirmation_policy(if yes {
        ConfirmationPolicy::AllowAll
    } else if interactive {
        ConfirmationPolicy::Ask
    } else {
        ConfirmationPolicy::DenyAll
    });
    // Answers confirmation requests on the terminal while the act waits at the gate.
    let mut events = core.subscribe();
    let asker = core.clone();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let Event::ConfirmationRequested {
                request,
                operation,
                reason,
                ..
            } = event
            {
                let allowed = ask_terminal(&reason, &operation).await;
                let _ = asker.answer_confirmation(request, allowed, "operator (terminal)");
            }
        }
    })
}

/// Asks on the terminal whether to allow `operation` (`reason` says why it asks): a yes only
/// for y or yes.
async fn ask_terminal(reason: &str, operation: &str) -> bool {
    let question = sanitize(&format!("veyra: {reason}. Allow {operation}? [y/N] ")).into_owned();
    let answer = tokio::task::spawn_blocking(move || {
        eprint!("{question}");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await;
    matches!(
        answer.as_ref().map(|a| a.as_ref().map(|l| l.trim())),
        Ok(Ok("y" | "Y" | "yes" | "YES" | "Yes"))
    )
}

/// Carries out `command` on the runtime serving the configured store, if one does (`None`
/// otherwise): its own question is answered here — `--yes` allows, a terminal asks, else no.
async fn through_runtime(
    loaded: &LoadedConfig,
    command: crate::service::protocol::Request,
    yes: bool,
) -> Result<Option<crate::service::protocol::Reply>, VeyraError> {
    use crate::service::Inbound;
    use crate::service::protocol::Request;
    let Some((client, mut inbound)) =
        crate::service::attach_configured(&loaded.config, "veyra tools", false).await?
    else {
        return Ok(None);
    };
    eprintln!(
        "veyra: attached to {}; --standalone runs without it",
        client.describe()
    );
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let call = client.request(command);
    tokio::pin!(call);
    let mut open = true;
    loop {
        tokio::select! {
            reply = &mut call => return reply.map(Some).map_err(super::run::remote_error),
            inbound = inbound.recv(), if open => match inbound {
                Some(Inbound::Event(Event::ConfirmationRequested {
                    request,
                    operation,
                    reason,
                    ..
                })) => {
                    let allowed = if yes {
                        true
                    } else if interactive {
                        ask_terminal(&reason, &operation).await
                    } else {
                        false
                    };
                    if let Err(e) = client
                        .request(Request::Answer {
                            request,
                            allowed,
                            scope: crate::events::ConfirmScope::Once,
                        })
                        .await
                    {
                        // Answered first by a console: that answer stands.
                        eprintln!("veyra: {}", sanitize(&e.message));
                    }
                }
                Some(_) => {}
                // The session ended: the call's own answer says how.
                None => open = false,
            },
        }
    }
}

/// The value of a runtime's reply, as the type it was encoded from.
fn decode<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, VeyraError> {
    serde_json::from_value(value)
        .map_err(|e| VeyraError::Runtime(format!("the runtime's reply does not decode: {e}")))
}

/// `config` for a core that calls tools and never a model: on the mock backend, so a model's
/// missing key or unreachable server never stands between the operator and a tool call or an
/// undo. Nothing a tool call is checked against (policy, safety, confirmation) names the
/// backend.
fn without_model(mut config: crate::config::VeyraConfig) -> crate::config::VeyraConfig {
    config.model.backend = crate::models::mock::NAME.to_string();
    config
}

/// `veyra tools invoke NAME --arg k=v … [--yes] [--json]`.
pub async fn tools_invoke(
    name: &str,
    pairs: &[String],
    yes: bool,
    json: bool,
    loaded: LoadedConfig,
    standalone: bool,
) -> Result<ExitCode, VeyraError> {
    // The arguments are typed by the tool's schema: the same registry as the runtime's (an
    // MCP tool's schema is the server's, asked of it here).
    let info = {
        if name.starts_with(crate::tools::mcp::PREFIX) {
            Listing::of(&loaded.config, standalone)
                .await?
                .describe(name)?
        } else {
            let mut config = loaded.config.clone();
            config.tools.mcp_servers.clear();
            Listing::of(&config, true).await?.describe(name)?
        }
    };
    let args = parse_args(pairs, &info.capability.schema)?;
    let command = crate::service::protocol::Request::InvokeTool {
        name: name.to_string(),
        args: args.clone(),
    };
    let remote = if standalone {
        None
    } else {
        through_runtime(&loaded, command, yes).await?
    };
    let invocation: crate::core::ToolInvocation = match remote {
        Some(crate::service::protocol::Reply::Tool { invocation }) => decode(invocation)?,
        Some(other) => {
            return Err(VeyraError::Runtime(format!(
                "the runtime answered the call with {other:?}"
            )));
        }
        None => {
            let core = VeyraCore::new(without_model(loaded.config))?;
            let answering = answer_on_terminal(&core, yes);
            let result = core.invoke_tool(name, args, "operator").await;
            answering.abort();
            result?
        }
    };
    let mut out = if json {
        crate::sanitize::to_json_line(&invocation)
            .map_err(|e| VeyraError::Runtime(format!("encoding the result: {e}")))?
    } else if let Some(content) = invocation
        .output
        .value
        .get("content")
        .and_then(|c| c.as_str())
    {
        sanitize(content).into_owned()
    } else {
        crate::sanitize::to_json_pretty(&invocation.output.value)
            .map_err(|e| VeyraError::Runtime(format!("encoding the result: {e}")))?
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    print_all(&out)
}

/// `veyra tools undo [SEQ] [--yes] [--json]`.
pub async fn tools_undo(
    seq: Option<u64>,
    yes: bool,
    json: bool,
    loaded: LoadedConfig,
    standalone: bool,
) -> Result<ExitCode, VeyraError> {
    let remote = if standalone {
        None
    } else {
        through_runtime(
            &loaded,
            crate::service::protocol::Request::Undo { seq },
            yes,
        )
        .await?
    };
    let outcome: crate::core::UndoOutcome = match remote {
        Some(crate::service::protocol::Reply::Undone { outcome, .. }) => decode(outcome)?,
        Some(other) => {
            return Err(VeyraError::Runtime(format!(
                "the runtime answered the undo with {other:?}"
            )));
        }
        None => {
            let core = VeyraCore::new(without_model(loaded.config))?;
            let answering = answer_on_terminal(&core, yes);
            let result = core.undo_tool(seq, "operator").await;
            answering.abort();
            result?
        }
    };
    let mut out = if json {
        crate::sanitize::to_json_line(&outcome)
            .map_err(|e| VeyraError::Runtime(format!("encoding the result: {e}")))?
    } else {
        let what = match &outcome.restored {
            Restored::Content { bytes, sha256 } => {
                format!("restored its previous content, {bytes} bytes, sha256 {sha256}")
            }
            Restored::Removed => "removed the file it created".to_string(),
        };
        let recorded = outcome
            .audit_seq
            .map(|s| format!("; recorded as audit entry {s}"))
            .unwrap_or_default();
        sanitize(&format!(
            "undid entry {} ({} '{}'): {what}{recorded}",
            outcome.undone, outcome.tool, outcome.path
        ))
        .into_owned()
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    print_all(&out)
}
