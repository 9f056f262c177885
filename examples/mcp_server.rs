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
//! `crash` ends the process mid-call; `pid` says its process id; `authorization` says the
//! `Authorization` header its request came with (over HTTP: what a server that echoes a token
//! does). With `--stderr-noise` it writes a line to its standard error for every call (Veyra
//! must keep that off the console).
//!
//! With `--http ADDR` (e.g. `127.0.0.1:0`) it serves streamable HTTP on `ADDR` instead, at
//! `/mcp`, and prints `listening on http://HOST:PORT/mcp` first; when `DEMO_TOKEN` is set, a
//! request without `Authorization: Bearer $DEMO_TOKEN` is refused (401):
//!
//! ```yaml
//! tools:
//!   mcp_allow: ["127.0.0.1:8931"]
//!   mcp_servers:
//!     - name: remote
//!       url: http://127.0.0.1:8931/mcp
//!       bearer_env: DEMO_TOKEN
//! ```

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
        Tool::new(
            "authorization",
            "Says the Authorization header the call came with.",
            nothing(),
        ),
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
        context: RequestContext<RoleServer>,
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
            "authorization" => text(
                context
                    .extensions
                    .get::<http::request::Parts>()
                    .and_then(|p| p.headers.get(http::header::AUTHORIZATION))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_string(),
            ),
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
    let args: Vec<String> = std::env::args().collect();
    if let Some(addr) = args
        .iter()
        .position(|a| a == "--http")
        .and_then(|i| args.get(i + 1))
    {
        return serve_http(demo, addr).await;
    }
    let service = demo.serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    Ok(())
}

/// Serves `demo` over streamable HTTP on `addr` until killed.
async fn serve_http(demo: Demo, addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;

    use http_body_util::BodyExt;
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    use tower_service::Service;

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("listening on http://{local}/mcp");
    std::io::stdout().flush()?;
    let token = std::env::var("DEMO_TOKEN").ok();
    let service = StreamableHttpService::new(
        move || Ok(demo.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let (service, token) = (service.clone(), token.clone());
        tokio::spawn(async move {
            let handle = hyper::service::service_fn(move |req: http::Request<_>| {
                let (mut service, token) = (service.clone(), token.clone());
                async move {
                    let wanted = token.map(|t| format!("Bearer {t}"));
                    let given = req
                        .headers()
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    if wanted.is_some() && wanted.as_deref() != given {
                        let refusal =
                            http_body_util::Full::new(bytes::Bytes::from_static(b"unauthorized"))
                                .boxed();
                        let mut response = http::Response::new(refusal);
                        *response.status_mut() = http::StatusCode::UNAUTHORIZED;
                        return Ok(response);
                    }
                    service.call(req).await
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), handle)
                .await;
        });
    }
}
