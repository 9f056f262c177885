//! `veyra tools …`: list, describe and invoke tools from the shell. Invocations pass the same
//! gate as a model's calls (policy, safety, confirmation, audit); this file only parses and
//! prints.

use std::io::IsTerminal;

use clap::Subcommand;

use super::print_all;
use crate::config::LoadedConfig;
use crate::core::{ConfirmationPolicy, VeyraCore};
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
}

/// `veyra tools list`.
pub fn tools_list(json: bool, loaded: &LoadedConfig) -> Result<ExitCode, VeyraError> {
    let registry = crate::tools::builtin::with_builtins(&loaded.config)
        .map_err(|e| VeyraError::Runtime(format!("registering the built-in tools: {e}")))?;
    let tools = registry.list();
    let mut out = String::new();
    if json {
        out = super::json_lines(&tools, "a tool")?;
    } else {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        out.push_str(&format!(
            "{:<16} {:<12} {:<11} {:<13} {}\n",
            "NAME", "CATEGORY", "REVERSIBLE", "CONFIRMATION", "DESCRIPTION"
        ));
        for t in &tools {
            let c = &t.capability;
            out.push_str(&format!(
                "{:<16} {:<12} {:<11} {:<13} {}\n",
                c.name,
                c.category.name(),
                yes_no(c.reversible),
                yes_no(c.confirmation),
                c.description
            ));
        }
    }
    print_all(&out)
}

/// `veyra tools describe NAME`.
pub fn tools_describe(name: &str, loaded: &LoadedConfig) -> Result<ExitCode, VeyraError> {
    let registry = crate::tools::builtin::with_builtins(&loaded.config)
        .map_err(|e| VeyraError::Runtime(format!("registering the built-in tools: {e}")))?;
    let info = registry
        .describe(name)
        .map_err(|e| VeyraError::Usage(e.to_string()))?;
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

/// `veyra tools invoke NAME --arg k=v … [--yes] [--json]`.
pub async fn tools_invoke(
    name: &str,
    pairs: &[String],
    yes: bool,
    json: bool,
    loaded: LoadedConfig,
) -> Result<ExitCode, VeyraError> {
    let core = VeyraCore::new(loaded.config)?;
    let info = core
        .tools()
        .describe(name)
        .map_err(|e| VeyraError::Usage(e.to_string()))?;
    let args = parse_args(pairs, &info.capability.schema)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    core.set_confirmation_policy(if yes {
        ConfirmationPolicy::AllowAll
    } else if interactive {
        ConfirmationPolicy::Ask
    } else {
        ConfirmationPolicy::DenyAll
    });
    // Answers confirmation requests on the terminal while the call waits at the gate.
    let mut events = core.subscribe();
    let asker = core.clone();
    let answering = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let Event::ConfirmationRequested {
                request,
                operation,
                reason,
                ..
            } = event
            {
                let question =
                    sanitize(&format!("veyra: {reason}. Allow {operation}? [y/N] ")).into_owned();
                let answer = tokio::task::spawn_blocking(move || {
                    eprint!("{question}");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line).map(|_| line)
                })
                .await;
                let allowed = matches!(
                    answer.as_ref().map(|a| a.as_ref().map(|l| l.trim())),
                    Ok(Ok("y" | "Y" | "yes" | "YES" | "Yes"))
                );
                let _ = asker.answer_confirmation(request, allowed, "operator (terminal)");
            }
        }
    });
    let result = core.invoke_tool(name, args, "operator").await;
    answering.abort();
    let invocation = result?;
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
