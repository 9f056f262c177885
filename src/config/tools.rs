//! `tools:` — where file tools may act, how much they may read and write, which hosts
//! `http_get` may reach and how much it may fetch, and how many tool steps one task may take.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Range of `tools.max_read_bytes` and `tools.max_write_bytes` (1 byte to 64 MiB).
pub const RANGE_TOOL_BYTES: std::ops::RangeInclusive<u64> = 1..=64 * 1024 * 1024;
/// Range of `tools.max_steps`.
pub const RANGE_TOOL_STEPS: std::ops::RangeInclusive<u64> = 1..=100;
/// Range of `tools.http_timeout_ms` (1 ms to 10 minutes).
pub const RANGE_HTTP_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1..=600_000;

/// `tools:` — limits of the built-in tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// The one directory file tools may touch; default `$XDG_DATA_HOME/veyra/workspace`.
    /// Paths given to file tools are relative to it and can never leave it.
    pub workspace: Option<PathBuf>,
    /// Largest file `file_read` reads, in bytes, 1 to 67,108,864.
    pub max_read_bytes: u64,
    /// Largest content `file_write` writes, in bytes, 1 to 67,108,864; with the undo journal on,
    /// also the largest file `file_write` may replace and `file_delete` may delete (the most
    /// the journal keeps of one file).
    pub max_write_bytes: u64,
    /// Tool calls one task may make before it is stopped, 1 to 100.
    pub max_steps: u32,
    /// The tools a model is offered in `veyra run` and the console: `all`, `none`, or a list
    /// of names (`veyra run --tools` overrides it per run). Every call still passes the gate.
    pub offer: ToolSelection,
    /// Hosts `http_get` may reach, each `host` (its scheme's default port, 80 or 443) or
    /// `host:port`, matched exactly and case-insensitively (`[::1]:8080` for IPv6). Empty, the
    /// default, turns `http_get` off.
    pub http_allow: Vec<String>,
    /// Largest response body `http_get` accepts, in bytes, 1 to 67,108,864 (default 1 MiB).
    pub http_max_bytes: u64,
    /// Time one `http_get` call may take from connecting to the last byte, in milliseconds,
    /// 1 to 600,000 (default 10,000).
    pub http_timeout_ms: u64,
    /// MCP servers whose tools are offered as `mcp:<server>:<tool>`, each call through the
    /// same gate as the built-in tools (see [`super::McpServerConfig`]).
    pub mcp_servers: Vec<super::McpServerConfig>,
    /// Hosts an MCP server's `url` may name: `host` or `host:port`, matched exactly (an entry
    /// without a port allows the scheme's default port only). Empty: no `url` server.
    pub mcp_allow: Vec<String>,
}

/// Which tools a model is offered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolSelection {
    /// Every registered tool.
    #[default]
    All,
    /// None: the model only answers.
    None,
    /// These tools, by name.
    Only(Vec<String>),
}

impl ToolSelection {
    /// Whether the tool `name` is offered.
    pub fn offers(&self, name: &str) -> bool {
        match self {
            ToolSelection::All => true,
            ToolSelection::None => false,
            ToolSelection::Only(names) => names.iter().any(|n| {
                n == name
                    || n.strip_suffix('*')
                        .is_some_and(|server| n.starts_with("mcp:") && name.starts_with(server))
            }),
        }
    }

    /// The names listed, for checking them against the registry (empty for `all`/`none`).
    pub fn names(&self) -> &[String] {
        match self {
            ToolSelection::Only(names) => names,
            ToolSelection::All | ToolSelection::None => &[],
        }
    }
}

impl std::str::FromStr for ToolSelection {
    type Err = String;

    /// `all`, `none`, or names separated by commas (`calculator,light_time`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "all" => Ok(ToolSelection::All),
            "none" => Ok(ToolSelection::None),
            "" => Err("is empty; use all, none, or tool names separated by commas".into()),
            list => {
                let names: Vec<String> = list.split(',').map(|n| n.trim().to_string()).collect();
                if let Some(bad) = names.iter().find(|n| {
                    (n.is_empty() || !n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                        && !super::mcp::is_mcp_selection(n)
                }) {
                    return Err(format!(
                        "'{}' is not a tool name; use all, none, or names like \
                         calculator,light_time (an MCP server's: mcp:<server>:<tool>, or \
                         mcp:<server>:* for all of them)",
                        crate::sanitize::quote(bad)
                    ));
                }
                Ok(ToolSelection::Only(names))
            }
        }
    }
}

impl std::fmt::Display for ToolSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolSelection::All => f.write_str("all"),
            ToolSelection::None => f.write_str("none"),
            ToolSelection::Only(names) => f.write_str(&names.join(",")),
        }
    }
}

impl Serialize for ToolSelection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ToolSelection::Only(names) => names.serialize(s),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for ToolSelection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(text) => text.parse().map_err(serde::de::Error::custom),
            Raw::List(names) => names.join(",").parse().map_err(serde::de::Error::custom),
        }
    }
}

/// One entry of `tools.http_allow`, parsed: a host in the form URLs carry it (lowercase,
/// IPv6 in brackets) and, when given, a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// The host, normalised as `url` normalises it.
    pub host: String,
    /// The one port allowed; `None` allows the scheme's default port only.
    pub port: Option<u16>,
}

impl AllowedHost {
    /// Parses `host` or `host:port`; the error says what is wrong and shows the form.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let form = "write a host or host:port, e.g. api.example.com, localhost:8080 or [::1]:8080";
        let text = entry.trim();
        if text.is_empty() {
            return Err(format!("an entry is empty; {form}"));
        }
        let shown = crate::sanitize::quote(text);
        if text.contains(['/', '@', '?', '#', ' ']) {
            return Err(format!(
                "'{shown}' is not a bare host (no scheme, path or user); {form}"
            ));
        }
        let (host, port) = match text.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((inside, "")) => (format!("[{inside}]"), None),
                Some((inside, tail)) => match tail.strip_prefix(':') {
                    Some(port) => (format!("[{inside}]"), Some(port)),
                    None => return Err(format!("'{shown}' has text after the ']'; {form}")),
                },
                None => return Err(format!("'{shown}' opens '[' without closing it; {form}")),
            },
            None => match text.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(format!(
                        "'{shown}' has more than one ':'; write IPv6 addresses in brackets, e.g. [::1]:8080"
                    ));
                }
                Some((host, port)) => (host.to_string(), Some(port)),
                None => (text.to_string(), None),
            },
        };
        let host = url::Host::parse(&host)
            .map_err(|e| format!("'{shown}' is not a valid host ({e}); {form}"))?
            .to_string();
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                Ok(_) | Err(_) => {
                    return Err(format!(
                        "'{shown}' has port '{}', not a number from 1 to 65535; {form}",
                        crate::sanitize::quote(p)
                    ));
                }
            },
        };
        Ok(AllowedHost { host, port })
    }

    /// True when `url` (http or https) is on this host and an allowed port.
    pub fn admits(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        host.eq_ignore_ascii_case(&self.host)
            && match self.port {
                None => url.port().is_none(),
                Some(p) => url.port_or_known_default() == Some(p),
            }
    }
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            workspace: None,
            max_read_bytes: 1024 * 1024,
            max_write_bytes: 1024 * 1024,
            max_steps: 8,
            offer: ToolSelection::All,
            http_allow: Vec::new(),
            http_max_bytes: 1024 * 1024,
            http_timeout_ms: 10_000,
            mcp_servers: Vec::new(),
            mcp_allow: Vec::new(),
        }
    }
}

impl ToolsConfig {
    /// The workspace directory file tools are confined to.
    pub fn workspace_dir(&self) -> PathBuf {
        self.workspace
            .clone()
            .unwrap_or_else(|| super::data_dir().join("workspace"))
    }

    /// `tools.mcp_allow`, parsed (validation has checked every entry).
    pub fn mcp_hosts(&self) -> Vec<AllowedHost> {
        self.mcp_allow
            .iter()
            .filter_map(|e| AllowedHost::parse(e).ok())
            .collect()
    }

    /// `tools.http_allow`, parsed (validation has checked every entry).
    pub fn http_hosts(&self) -> Vec<AllowedHost> {
        self.http_allow
            .iter()
            .filter_map(|e| AllowedHost::parse(e).ok())
            .collect()
    }

    /// Checks every range and every MCP server entry; `Err((key, message))` names the first
    /// bad value.
    pub fn check(&self) -> Result<(), (String, String)> {
        self.check_limits()
            .map_err(|(key, message)| (key.to_string(), message))?;
        let mut allow = Vec::new();
        for entry in &self.mcp_allow {
            allow.push(
                AllowedHost::parse(entry)
                    .map_err(|message| ("tools.mcp_allow".to_string(), message))?,
            );
        }
        super::mcp::check(&self.mcp_servers, &allow)
    }

    fn check_limits(&self) -> Result<(), (&'static str, String)> {
        let within = |key: &'static str, value: u64, range: std::ops::RangeInclusive<u64>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err((
                    key,
                    format!(
                        "{value} is out of range; use {} to {}",
                        range.start(),
                        range.end()
                    ),
                ))
            }
        };
        within(
            "tools.max_read_bytes",
            self.max_read_bytes,
            RANGE_TOOL_BYTES,
        )?;
        within(
            "tools.max_write_bytes",
            self.max_write_bytes,
            RANGE_TOOL_BYTES,
        )?;
        within("tools.max_steps", self.max_steps.into(), RANGE_TOOL_STEPS)?;
        within(
            "tools.http_max_bytes",
            self.http_max_bytes,
            RANGE_TOOL_BYTES,
        )?;
        within(
            "tools.http_timeout_ms",
            self.http_timeout_ms,
            RANGE_HTTP_TIMEOUT_MS,
        )?;
        for entry in &self.http_allow {
            AllowedHost::parse(entry).map_err(|message| ("tools.http_allow", message))?;
        }

        if self
            .workspace
            .as_ref()
            .is_some_and(|w| w.as_os_str().is_empty())
        {
            return Err((
                "tools.workspace",
                "is empty; name a directory, or leave it null for the default".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_limits_name_their_key() {
        assert!(ToolsConfig::default().check().is_ok());
        let c = ToolsConfig {
            max_read_bytes: 0,
            ..ToolsConfig::default()
        };
        assert_eq!(c.check().unwrap_err().0, "tools.max_read_bytes");
        let c = ToolsConfig {
            max_steps: 1000,
            ..ToolsConfig::default()
        };
        assert_eq!(c.check().unwrap_err().0, "tools.max_steps");
        let c = ToolsConfig {
            workspace: Some(PathBuf::new()),
            ..ToolsConfig::default()
        };
        assert_eq!(c.check().unwrap_err().0, "tools.workspace");
        let c = ToolsConfig {
            http_timeout_ms: 0,
            ..ToolsConfig::default()
        };
        assert_eq!(c.check().unwrap_err().0, "tools.http_timeout_ms");
        let c = ToolsConfig {
            http_allow: vec!["https://example.com/".into()],
            ..ToolsConfig::default()
        };
        let (key, message) = c.check().unwrap_err();
        assert_eq!(key, "tools.http_allow");
        assert!(message.contains("not a bare host"), "{message}");
    }

    #[test]
    fn allowed_hosts_match_exactly_case_insensitively_and_by_port() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        let plain = AllowedHost::parse("API.Example.com").unwrap();
        assert_eq!(plain.host, "api.example.com");
        assert!(plain.admits(&url("https://api.EXAMPLE.com/v1")));
        assert!(plain.admits(&url("http://api.example.com:80/")));
        assert!(!plain.admits(&url("https://api.example.com:8443/")));
        assert!(!plain.admits(&url("https://evil-api.example.com/")));
        assert!(!plain.admits(&url("https://api.example.com.evil.net/")));
        let ported = AllowedHost::parse("127.0.0.1:8080").unwrap();
        assert!(ported.admits(&url("http://127.0.0.1:8080/x")));
        assert!(!ported.admits(&url("http://127.0.0.1:8081/x")));
        assert!(!ported.admits(&url("http://127.0.0.1/x")));
        let v6 = AllowedHost::parse("[::1]:9000").unwrap();
        assert!(v6.admits(&url("http://[::1]:9000/")));
        for bad in [
            "",
            "a:b:c",
            "host:0",
            "host:99999",
            "[::1",
            "user@host",
            "h/p",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
    }
}
