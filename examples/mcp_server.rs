//! A small MCP server on standard input and output, built with the official SDK's server side:
//! what Veyra's tests and benches talk to (`tools.mcp_servers`), and a working example of a
//! server to try Veyra's MCP support with:
//!
//! ```yaml
//! tools:
//!   mcp_servers:
//!     - name: demo
//!       command: target/debug/examples/mcp_server
//!       reversible: [echo, add]
//! ```
//!
//! Its tools: `echo {text}` says the text back; `add {a, b}` adds two numbers; `env {name}`
//! says a variable of its own environment (`unset` when it has none); `ansi` answers with
//! escape sequences; `big {kib}` answers that many KiB of text; `count` says how many calls
//! this process has answered; `sleep {ms}` answers after that long; `hang` never answers;
//! `crash` ends the process mid-call; `pid` says its process id. With `--stderr-noise` it writes a line to its standard
//! error for every call (Veyra must keep that off the console).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Demo {
    calls: Arc<AtomicU64>,
    noisy: bool,
}

fn schema(value: Value) -> Arc<serde_json::Map<String, Value>> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(serde_json::Map::new()),
    }
}

fn tools() -> Vec<Tool> {
    let text = |field: &str| {
        schema(json!({
            "type": "object",
            "properties": { field: { "type": "string" } },
            "required": [field],
            "additionalProperties": false
        }))
    };
    let number = |field: &str| {
        schema(json!({
            "type": "object",
            "properties": { field: { "type": "integer", "minimum": 0, "maximum": 600000 } },
            "required": [field],
            "additionalProperties": false
        }))
    };
    let nothing = || schema(json!({ "type": "object", "additionalProperties": false }));
    vec![
        Tool::new("echo", "Says the text back.", text("text")),
        Tool::new(
            "add",
            "Adds two numbers.",
            schema(json!({
                "type": "object",
                "properties": { "a": { "type": "number" }, "b": { "type": "number" } },
                "required": ["a", "b"],
                "additionalProperties": false
            })),
        ),
        Tool::new(
            "env",
            "Says a variable of the server's environment.",
            text("name"),
        ),
        Tool::new("ansi", "Answers with terminal escape sequences.", nothing()),
        Tool::new("big", "Answers this many KiB of text.", number("kib")),
        Tool::new(
            "count",
            "Says how many calls this process answered.",
            nothing(),
        ),
        Tool::new(
            "sleep",
            "Answers after this many milliseconds.",
            number("ms"),
        ),
        Tool::new("hang", "Never answers.", nothing()),
        Tool::new("crash", "Ends the server mid-call.", nothing()),
        Tool::new("pid", "Says the server's process id.", nothing()),
    ]
}

fn text(s: impl Into<String>) -> Result<CallToolResponse, ErrorData> {
    Ok(CallToolResponse::Complete(CallToolResult::success(vec![
        ContentBlock::text(s),
    ])))
}

impl ServerHandler for Demo {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new("veyra-demo-mcp", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.noisy {
            eprintln!("\x1b[31mcall {n}: {}\x1b[0m", request.name);
        }
        let args = request.arguments.unwrap_or_default();
        let str_arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default();
        let num_arg = |k: &str| args.get(k).and_then(Value::as_f64).unwrap_or_default();
        match request.name.as_ref() {
            "echo" => text(str_arg("text")),
            "add" => text(format!("{}", num_arg("a") + num_arg("b"))),
            "env" => text(std::env::var(str_arg("name")).unwrap_or_else(|_| "unset".into())),
            "ansi" => {
                text("\x1b[2J\x1b[H\x1b]0;owned\x07plain \u{202e}desrever\u{202c} end\x1b[0m")
            }
            "big" => text("x".repeat(num_arg("kib") as usize * 1024)),
            "count" => text(n.to_string()),
            "sleep" => {
                tokio::time::sleep(std::time::Duration::from_millis(num_arg("ms") as u64)).await;
                text("slept")
            }
            "hang" => std::future::pending().await,
            "crash" => std::process::exit(3),
            "pid" => text(std::process::id().to_string()),
            other => Err(ErrorData::invalid_params(
                format!("no tool named {other}"),
                None,
            )),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = Demo {
        noisy: std::env::args().any(|a| a == "--stderr-noise"),
        ..Demo::default()
    };
    let service = demo.serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    Ok(())
}
