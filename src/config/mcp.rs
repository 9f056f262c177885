//! `tools.mcp_servers:` — Model Context Protocol servers whose tools Veyra offers: each either
//! started as a child process speaking MCP on its standard input and output (`command`), or
//! reached over streamable HTTP (`url`) on a host `tools.mcp_allow` lists — `https`, or plain
//! `http` on this machine's loopback only, so a token never crosses a network in the clear.
//!
//! A server's environment is built, never inherited: the child gets the few variables a
//! program needs to run ([`BASE_ENV`]), the `env` the entry sets, and the variables `env_pass`
//! names, nothing else. An API key in Veyra's environment reaches a server only when its name
//! is in `env_pass`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Range of `tools.mcp_servers[].timeout_ms` (1 ms to 10 minutes).
pub const RANGE_MCP_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1..=600_000;

/// Most MCP servers one configuration may name.
pub const MAX_MCP_SERVERS: usize = 32;

/// Variables every server gets from Veyra's environment when they are set: what a program
/// needs to find its interpreter and its home, and speak the operator's locale. No key is
/// among them.
pub const BASE_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
];

/// One entry of `tools.mcp_servers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// The server's name in Veyra: its tools are `mcp:<name>:<tool>`. Lowercase letters,
    /// digits, `_` and `-`, 1 to 32 of them, starting with a letter or digit.
    pub name: String,
    /// The program to start (a path, or a name looked up on `PATH`); or leave it out and give
    /// `url`.
    #[serde(default)]
    pub command: String,
    /// The server's streamable-HTTP endpoint (`https://host/mcp`, or `http://127.0.0.1:PORT/…`
    /// on this machine), on a host `tools.mcp_allow` lists; instead of `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// For a `url` server: the variable in Veyra's environment holding its token, sent as
    /// `Authorization: Bearer …` (the token itself never sits in the configuration) and
    /// scrubbed from what the server answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_env: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Variables set for it. Shown masked by `veyra config show`, and scrubbed from what the
    /// server answers, like keys.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables passed from Veyra's own environment by name (an API key the server needs);
    /// their values are scrubbed from what the server answers.
    #[serde(default)]
    pub env_pass: Vec<String>,
    /// Its working directory; default Veyra's.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Time the server may take to start and list its tools, and each call may take, in
    /// milliseconds (1 to 600,000; default 30,000). A call that takes longer fails, and the
    /// server is restarted as hung.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Its tools (by the server's own names) whose effect can be undone. Every other tool of
    /// an MCP server is irreversible: blocked while `governance.reversible_only` is on.
    #[serde(default)]
    pub reversible: Vec<String>,
}

fn default_timeout_ms() -> u64 {
    30_000
}

/// True for a server name: `[a-z0-9][a-z0-9_-]{0,31}`.
pub fn is_server_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=32).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

/// True for a tool name as an MCP server may give it: 1 to 128 of `[A-Za-z0-9_.-]` (what the
/// protocol recommends; a name with anything else is not offered).
pub fn is_mcp_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// True for an MCP tool in `tools.offer` or `--tools`: `mcp:<server>:<tool>`, or
/// `mcp:<server>:*` for every tool of the server.
pub(super) fn is_mcp_selection(name: &str) -> bool {
    name.strip_prefix("mcp:")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(server, tool)| {
            is_server_name(server) && (tool == "*" || is_mcp_tool_name(tool))
        })
}

/// True for an environment variable's name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Why `url` may not be a server's endpoint under `allow` (`tools.mcp_allow`), if it may not.
pub fn url_refusal(url: &str, allow: &[crate::config::AllowedHost]) -> Option<String> {
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return Some(format!(
                "'{}' is not a URL ({e}); write e.g. https://mcp.example.com/mcp",
                crate::sanitize::quote(url)
            ));
        }
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some(
            "carries credentials (user:password@); put the token in a variable and name it in \
             bearer_env"
                .into(),
        );
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Some(
                "is plain http to another machine, where its calls and token would cross the \
                 network in the clear; use https (http is for 127.0.0.1, ::1 or localhost)"
                    .into(),
            );
        }
        other => {
            return Some(format!(
                "'{}:' is not an MCP transport; use https:// (or http:// on this machine)",
                crate::sanitize::quote(other)
            ));
        }
    }
    if allow.iter().any(|a| a.admits(&parsed)) {
        return None;
    }
    let host = parsed.host_str().unwrap_or_default();
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!(
        "'{}{port}' is not on tools.mcp_allow (entries match exactly; one without a port allows \
         the scheme's default port only); add '{}{port}' to reach it",
        crate::sanitize::quote(host),
        crate::sanitize::quote(host)
    ))
}

/// Checks every entry, `url`s against `allow` (`tools.mcp_allow`, parsed); `Err((key,
/// message))` names the first bad value.
pub(super) fn check(
    servers: &[McpServerConfig],
    allow: &[crate::config::AllowedHost],
) -> Result<(), (String, String)> {
    if servers.len() > MAX_MCP_SERVERS {
        return Err((
            "tools.mcp_servers".into(),
            format!(
                "names {} servers; at most {MAX_MCP_SERVERS} are allowed",
                servers.len()
            ),
        ));
    }
    for (i, s) in servers.iter().enumerate() {
        let key = |field: &str| format!("tools.mcp_servers[{i}].{field}");
        if !is_server_name(&s.name) {
            return Err((
                key("name"),
                format!(
                    "'{}' is not a server name; use 1 to 32 lowercase letters, digits, '_' or \
                     '-', starting with a letter or digit (e.g. files, git-tools)",
                    crate::sanitize::quote(&s.name)
                ),
            ));
        }
        if servers[..i].iter().any(|o| o.name == s.name) {
            return Err((
                key("name"),
                format!("'{}' names two servers; each needs its own name", s.name),
            ));
        }
        match &s.url {
            Some(url) => {
                if !s.command.is_empty() {
                    return Err((
                        key("url"),
                        "is given with command; a server is started (command) or reached (url), \
                         not both"
                            .into(),
                    ));
                }
                if !s.args.is_empty()
                    || !s.env.is_empty()
                    || !s.env_pass.is_empty()
                    || s.cwd.is_some()
                {
                    return Err((
                        key("url"),
                        "is given with args, env, env_pass or cwd, which start a process; a url \
                         server is reached, not started: leave them out"
                            .into(),
                    ));
                }
                if let Some(why) = url_refusal(url, allow) {
                    return Err((key("url"), why));
                }
            }
            None => {
                if s.command.trim().is_empty() || s.command.contains('\0') {
                    return Err((
                        key("command"),
                        "is empty; name the program that runs the server, e.g. npx or \
                         /usr/bin/my-server, or give its url"
                            .into(),
                    ));
                }
                if s.bearer_env.is_some() {
                    return Err((
                        key("bearer_env"),
                        "is for a url server; a started server gets its token through env_pass"
                            .into(),
                    ));
                }
            }
        }
        if let Some(var) = s.bearer_env.as_deref().filter(|v| !is_var_name(v)) {
            return Err((
                key("bearer_env"),
                format!(
                    "'{}' is not a variable name; use letters, digits and '_', not starting \
                     with a digit",
                    crate::sanitize::quote(var)
                ),
            ));
        }
        if s.args.iter().any(|a| a.contains('\0')) || s.env.values().any(|v| v.contains('\0')) {
            return Err((
                key("args"),
                "holds a NUL byte, which no program argument or variable can carry".into(),
            ));
        }
        if !RANGE_MCP_TIMEOUT_MS.contains(&s.timeout_ms) {
            return Err((
                key("timeout_ms"),
                format!(
                    "{} is out of range; use {} to {}",
                    s.timeout_ms,
                    RANGE_MCP_TIMEOUT_MS.start(),
                    RANGE_MCP_TIMEOUT_MS.end()
                ),
            ));
        }
        if let Some(bad) = s
            .env
            .keys()
            .chain(s.env_pass.iter())
            .find(|k| !is_var_name(k))
        {
            return Err((
                key(if s.env.contains_key(bad) {
                    "env"
                } else {
                    "env_pass"
                }),
                format!(
                    "'{}' is not a variable name; use letters, digits and '_', not starting \
                     with a digit",
                    crate::sanitize::quote(bad)
                ),
            ));
        }
        if s.cwd.as_ref().is_some_and(|c| c.as_os_str().is_empty()) {
            return Err((
                key("cwd"),
                "is empty; name a directory, or leave it out for Veyra's own".into(),
            ));
        }
        if let Some(bad) = s.reversible.iter().find(|t| t.is_empty()) {
            return Err((
                key("reversible"),
                format!(
                    "'{}' is not a tool name; list the server's own tool names",
                    crate::sanitize::quote(bad)
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str) -> McpServerConfig {
        McpServerConfig {
            name: name.into(),
            command: "server".into(),
            url: None,
            bearer_env: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            env_pass: Vec::new(),
            cwd: None,
            timeout_ms: 1000,
            reversible: Vec::new(),
        }
    }

    #[test]
    fn bad_entries_name_their_field() {
        assert!(check(&[server("files"), server("git-tools")], &[]).is_ok());
        let key = |servers: &[McpServerConfig]| check(servers, &[]).unwrap_err().0;
        assert_eq!(key(&[server("Files")]), "tools.mcp_servers[0].name");
        assert_eq!(key(&[server("a:b")]), "tools.mcp_servers[0].name");
        assert_eq!(
            key(&[server("x"), server("x")]),
            "tools.mcp_servers[1].name"
        );
        let mut s = server("x");
        s.command = " ".into();
        assert_eq!(key(&[s]), "tools.mcp_servers[0].command");
        let mut s = server("x");
        s.timeout_ms = 0;
        assert_eq!(key(&[s]), "tools.mcp_servers[0].timeout_ms");
        let mut s = server("x");
        s.env_pass = vec!["OPENAI-KEY".into()];
        assert_eq!(key(&[s]), "tools.mcp_servers[0].env_pass");
        let mut s = server("x");
        s.env.insert("1X".into(), "v".into());
        assert_eq!(key(&[s]), "tools.mcp_servers[0].env");
    }

    fn remote(url: &str) -> McpServerConfig {
        McpServerConfig {
            command: String::new(),
            url: Some(url.into()),
            bearer_env: Some("DEMO_TOKEN".into()),
            ..server("remote")
        }
    }

    #[test]
    fn a_url_server_is_on_an_allowed_host_and_https_off_this_machine() {
        use crate::config::AllowedHost;
        let allow: Vec<AllowedHost> = ["mcp.example.com", "127.0.0.1:8931", "[::1]:8931"]
            .iter()
            .map(|h| AllowedHost::parse(h).unwrap())
            .collect();
        let ok = |url: &str| check(&[remote(url)], &allow);
        assert!(ok("https://mcp.example.com/mcp").is_ok());
        assert!(ok("http://127.0.0.1:8931/mcp").is_ok());
        assert!(ok("http://[::1]:8931/mcp").is_ok());
        let refused = |url: &str| {
            let (key, why) = ok(url).unwrap_err();
            assert_eq!(key, "tools.mcp_servers[0].url", "{url}");
            why
        };
        assert!(refused("http://mcp.example.com/mcp").contains("in the clear"));
        assert!(refused("https://evil.example.com/mcp").contains("not on tools.mcp_allow"));
        assert!(refused("https://mcp.example.com:8443/mcp").contains("not on tools.mcp_allow"));
        assert!(refused("https://u:p@mcp.example.com/mcp").contains("credentials"));
        assert!(refused("file:///etc/passwd").contains("not an MCP transport"));
        assert!(refused("not a url").contains("not a URL"));
        // Started or reached, not both; nothing that starts a process with a url.
        let mut both = remote("https://mcp.example.com/mcp");
        both.command = "server".into();
        assert!(check(&[both], &allow).unwrap_err().1.contains("not both"));
        let mut env = remote("https://mcp.example.com/mcp");
        env.env_pass = vec!["HOME".into()];
        assert!(
            check(&[env], &allow)
                .unwrap_err()
                .1
                .contains("reached, not started")
        );
        // A token variable is for url servers, and is a variable's name.
        let mut started = server("x");
        started.bearer_env = Some("TOKEN".into());
        assert_eq!(
            check(&[started], &allow).unwrap_err().0,
            "tools.mcp_servers[0].bearer_env"
        );
        let mut bad = remote("https://mcp.example.com/mcp");
        bad.bearer_env = Some("MY-TOKEN".into());
        assert_eq!(
            check(&[bad], &allow).unwrap_err().0,
            "tools.mcp_servers[0].bearer_env"
        );
    }

    #[test]
    fn an_offer_names_mcp_tools_one_by_one_or_by_server() {
        use crate::config::ToolSelection;
        let offer: ToolSelection = "calculator,mcp:files:read_file,mcp:git:*".parse().unwrap();
        assert!(offer.offers("mcp:files:read_file"));
        assert!(!offer.offers("mcp:files:write_file"));
        assert!(offer.offers("mcp:git:log"));
        assert!(!offer.offers("mcp:gitx:log"));
        assert!(offer.offers("calculator"));
        for bad in ["mcp:Files:x", "mcp:files", "mcp:files:a b", "mcp:*"] {
            assert!(bad.parse::<ToolSelection>().is_err(), "{bad}");
        }
    }

    #[test]
    fn env_values_never_show() {
        let mut s = server("x");
        s.env.insert("TOKEN".into(), "hunter2-very-secret".into());
        let mut config = crate::config::VeyraConfig::default();
        config.tools.mcp_servers.push(s);
        let shown = serde_json::to_string(&config.for_display()).unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("TOKEN"), "{shown}");
    }
}
