//! A start of one MCP server: its process started with the environment built for it (or,
//! for a `url` server, its endpoint reached over streamable HTTP), the handshake, its tools
//! listed, its standard error drained.

use super::*;

/// Reaches the server (or starts its process), completes the handshake, and lists its tools.
pub(super) async fn connect(server: &Arc<Server>) -> Result<Live, String> {
    match server.config.url.clone() {
        Some(url) => connect_url(server, &url).await,
        None => connect_process(server).await,
    }
}

/// What Veyra says it is in the handshake.
fn client_info() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("veyra", env!("CARGO_PKG_VERSION")),
    )
}

/// Reaches a `url` server over streamable HTTP: Veyra's own client (no redirect followed —
/// a redirect could lead off the allowed host —, no proxy, its replies held to the same
/// line cap as a process's), with the token from `bearer_env` when one is named.
async fn connect_url(server: &Arc<Server>, url: &str) -> Result<Live, String> {
    use rmcp::transport::streamable_http_client::{
        StreamableHttpClientTransport, StreamableHttpClientTransportConfig,
    };
    let c = &server.config;
    // Checked by the configuration already; held again here, where the request is made.
    if let Some(why) = crate::config::mcp_url_refusal(url, &server.allow) {
        return Err(format!("its url {why}"));
    }
    let token = match &c.bearer_env {
        Some(var) => match std::env::var(var) {
            Ok(t) if t.trim().len() >= crate::config::MIN_KEY_LEN => Some(t.trim().to_string()),
            Ok(t) if !t.trim().is_empty() => {
                return Err(format!(
                    "its token in {var} (bearer_env) is shorter than {} characters, too short to \
                     be told apart in what the server answers, so it is not sent",
                    crate::config::MIN_KEY_LEN
                ));
            }
            _ => {
                return Err(format!(
                    "its token variable {var} (bearer_env) is not set; set it and start Veyra \
                     again"
                ));
            }
        },
        None => None,
    };
    let timeout = Duration::from_millis(c.timeout_ms);
    let client = crate::web::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .referer(false)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(0)
        .user_agent(concat!("veyra/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("its HTTP client could not be built: {e}"))?;
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    config.auth_header = token;
    config.max_sse_event_size = MAX_LINE;
    config.max_json_response_size = MAX_LINE;
    // A session the server ended is not silently started again: the SDK would send the call
    // that met the end once more on the new session. The call fails instead ("it may have
    // acted"), and the supervisor reconnects and lists the tools again.
    config.reinit_on_expired_session = false;
    let transport = StreamableHttpClientTransport::with_client(client, config);
    let service = client_info().serve(transport).await.map_err(|e| {
        format!(
            "it did not complete the MCP handshake: {}",
            without_type_names(&e.to_string())
        )
    })?;
    live(service, None).await
}

/// The SDK's transport error without the Rust type it names (`Send message error Transport
/// [rmcp::transport::worker::WorkerTransport<…>] error: `), which says nothing to an operator.
pub(super) fn without_type_names(text: &str) -> String {
    match (text.find("Transport ["), text.find("] error: ")) {
        (Some(start), Some(end)) if start < end => text[end + "] error: ".len()..].to_string(),
        _ => text.to_string(),
    }
}

/// The rest of a start once the handshake is done: the tools listed, the connection watched.
async fn live(
    service: RunningService<RoleClient, ClientConfig>,
    process: Option<Process>,
) -> Result<Live, String> {
    let (tools, note) = list_tools(&service).await?;
    let peer = service.peer().clone();
    let end = service.cancellation_token();
    // The connection's loop is watched on its own: it can end while the process runs on.
    let closed = CancellationToken::new();
    let watch = closed.clone();
    tokio::spawn(async move {
        let _ = service.waiting().await;
        watch.cancel();
    });
    Ok(Live {
        process,
        peer,
        end,
        closed,
        tools,
        note,
    })
}

/// Starts the server's process with the environment built for it, completes the handshake,
/// and lists its tools.
async fn connect_process(server: &Arc<Server>) -> Result<Live, String> {
    let c = &server.config;
    let mut cmd = tokio::process::Command::new(&c.command);
    cmd.args(&c.args).env_clear();
    for var in BASE_ENV
        .iter()
        .copied()
        .chain(c.env_pass.iter().map(String::as_str))
    {
        if let Some(value) = std::env::var_os(var) {
            cmd.env(var, value);
        }
    }
    cmd.envs(&c.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group: a Ctrl-C at the console is Veyra's to handle, not the server's.
        .process_group(0);
    if let Some(dir) = &c.cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "it could not be started ('{}': {e})",
            sanitize::quote(&c.command)
        )
    })?;
    // Its pid is its group's id (`process_group(0)`); from here the group dies with the start.
    let group = GroupKill(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw),
    );
    let (Some(stdout), Some(stdin), Some(stderr)) =
        (child.stdout.take(), child.stdin.take(), child.stderr.take())
    else {
        return Err("its standard streams could not be opened".into());
    };
    server.lock().stderr.clear();
    tokio::spawn(read_stderr(Arc::downgrade(server), stderr));
    let transport =
        AsyncRwTransport::<RoleClient, _, _>::new(stdout, stdin).with_max_line_length(MAX_LINE);
    let service = client_info()
        .serve(transport)
        .await
        .map_err(|e| format!("it did not complete the MCP handshake: {e}"))?;
    live(service, Some(Process { child, group })).await
}

/// Every tool the server lists, page by page, at most [`MAX_TOOLS`] from at most
/// [`MAX_PAGES`] pages; the note says what was left out.
async fn list_tools(
    service: &RunningService<RoleClient, ClientConfig>,
) -> Result<(Vec<rmcp::model::Tool>, Option<String>), String> {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0..MAX_PAGES {
        let params = cursor
            .take()
            .map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
        let listed = match service.list_tools(params).await {
            Ok(listed) => listed,
            // A server with no tools capability answers "method not found": it offers none.
            Err(ServiceError::McpError(e)) if page == 0 && e.code.0 == -32601 => {
                return Ok((Vec::new(), Some("it offers no tools".into())));
            }
            Err(e) => return Err(format!("it did not list its tools: {e}")),
        };
        tools.extend(listed.tools);
        if tools.len() > MAX_TOOLS {
            tools.truncate(MAX_TOOLS);
            return Ok((
                tools,
                Some(format!(
                    "it lists more than {MAX_TOOLS} tools; the first {MAX_TOOLS} are offered"
                )),
            ));
        }
        match listed.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok((tools, None)),
        }
    }
    Ok((
        tools,
        Some(format!(
            "its tool list runs past {MAX_PAGES} pages; the rest is not offered"
        )),
    ))
}

/// Drains the server's standard error (so that it never blocks on a full pipe), keeping its
/// last lines, sanitized and shortened, and logging each at debug level.
async fn read_stderr(server: Weak<Server>, mut stderr: tokio::process::ChildStderr) {
    let mut buf = [0u8; 4096];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let Some(server) = server.upgrade() else {
            break;
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                keep_stderr_line(&server, &line);
                line.clear();
            } else if line.len() < 4 * STDERR_CHARS {
                line.push(b);
            }
        }
    }
    if !line.is_empty()
        && let Some(server) = server.upgrade()
    {
        keep_stderr_line(&server, &line);
    }
}

fn keep_stderr_line(server: &Server, raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    if text.trim().is_empty() {
        return;
    }
    let shown = sanitize::sanitize_line(&sanitize::excerpt(&server.scrub(&text), STDERR_CHARS))
        .into_owned();
    tracing::debug!(server = %server.config.name, "mcp server stderr: {shown}");
    let mut g = server.lock();
    if g.stderr.len() == STDERR_LINES {
        g.stderr.pop_front();
    }
    g.stderr.push_back(shown);
}
