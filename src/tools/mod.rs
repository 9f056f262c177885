//! Tools a model (or the operator, through `veyra tools invoke`) can call, and the safety
//! boundary every operation passes.
//!
//! A [`Tool`] declares its capability — name, description, [`ToolCategory`], whether its effect
//! can be undone, whether it always asks for confirmation, and the JSON Schema of its
//! arguments — and acts in [`Tool::invoke`]. The [`ToolRegistry`] holds the tools, validates
//! arguments against each schema (compiled once) before a tool runs, and names the bad field
//! when they do not fit. The registry acts on nothing by itself: the core passes every call
//! through its gate (policy → safety → confirmation) first and audits it after.

pub mod builtin;
pub mod calculator;
pub mod files;
pub mod http;
pub mod mcp;
pub mod registry;
pub mod safety;
pub mod system;

use std::borrow::Cow;

use serde::Serialize;

pub use registry::{ToolInfo, ToolRegistry};
pub use safety::{SafetyBoundary, SafetyLevel, SafetyVerdict, Violation};

/// What a tool is for; `veyra tools list` shows it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ToolCategory {
    /// Reads and reports without changing anything.
    Analysis,
    /// Computes an answer from its arguments alone.
    Computation,
    /// Reads or changes files in the workspace.
    Filesystem,
    /// Reaches another host.
    Network,
    /// Reports on Veyra itself.
    System,
    /// Explains the safety boundary.
    Safety,
    /// Offered by an MCP server: what it does is the server's word.
    External,
}

impl ToolCategory {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// How a tool touches a file, for the policy request the gate makes before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAccess {
    /// Policy action `read_file`.
    Read,
    /// Policy action `write_file` (writing and deleting).
    Write,
}

impl FileAccess {
    /// The Cedar action.
    pub fn action(self) -> &'static str {
        match self {
            FileAccess::Read => "read_file",
            FileAccess::Write => "write_file",
        }
    }
}

/// What a tool answers.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ToolOutput {
    /// The result as JSON (untrusted: sanitize before showing it).
    pub value: serde_json::Value,
    /// A one-line summary for the audit trail; never raw file contents.
    pub summary: String,
    /// What the call replaced, for the undo journal (file tools with the journal on). The core
    /// takes it out and journals it; it is never serialized, shown or published.
    #[serde(skip)]
    pub undo: Option<UndoRecord>,
}

impl ToolOutput {
    /// An output whose summary is given.
    pub fn new(value: serde_json::Value, summary: impl Into<String>) -> Self {
        ToolOutput {
            value,
            summary: summary.into(),
            undo: None,
        }
    }

    /// The output with what the call replaced, for the undo journal.
    pub fn with_undo(mut self, undo: UndoRecord) -> Self {
        self.undo = Some(undo);
        self
    }
}

/// What a file tool replaced and what it left, so that its call can be undone: the core keeps
/// `prior` in the audit store's undo journal and the hashes in the call's `TOOL_INVOCATION`
/// entry (see `core::undo`).
#[derive(Clone, PartialEq, Eq)]
pub struct UndoRecord {
    /// The file, relative to the workspace, as the call named it.
    pub path: String,
    /// The workspace the path is relative to.
    pub workspace: std::path::PathBuf,
    /// The content before the call; `None` when the file did not exist.
    pub prior: Option<Vec<u8>>,
    /// SHA-256 (hex) of what the call left; `None` when it left no file (a delete).
    pub after_sha256: Option<String>,
    /// Size in bytes of what the call left (0 when it left no file).
    pub after_bytes: u64,
}

impl UndoRecord {
    /// SHA-256 (hex) of the prior content; `None` when the file did not exist.
    pub fn prior_sha256(&self) -> Option<String> {
        self.prior
            .as_deref()
            .map(crate::governance::journal::sha256_hex)
    }
}

/// Never prints file contents: sizes and hashes only.
impl std::fmt::Debug for UndoRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UndoRecord")
            .field("path", &self.path)
            .field("workspace", &self.workspace)
            .field("prior_bytes", &self.prior.as_ref().map(Vec::len))
            .field("after_sha256", &self.after_sha256)
            .field("after_bytes", &self.after_bytes)
            .finish()
    }
}

/// Why a tool call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// No tool has this name.
    #[error("{0}")]
    Unknown(String),
    /// The arguments do not fit the tool's schema, or make no sense.
    #[error("{0}")]
    BadArguments(String),
    /// The tool refused by one of its own rules (a path out of the workspace, a size limit);
    /// `rule` names the rule.
    #[error("{message}")]
    Refused {
        /// The rule, e.g. `tools.workspace`, `tools.max_read_bytes`.
        rule: String,
        /// A sentence for the operator.
        message: String,
    },
    /// The tool ran and failed (a missing file, an I/O error, a computation with no answer).
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    /// Short name for audit metadata.
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::Unknown(_) => "unknown_tool",
            ToolError::BadArguments(_) => "bad_arguments",
            ToolError::Refused { .. } => "refused",
            ToolError::Failed(_) => "failed",
        }
    }
}

/// A tool's capability: everything the registry, the gate and `veyra tools list` need.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Capability {
    /// Unique name: `[a-z_]+` for a compiled-in tool, `mcp:<server>:<tool>` for one an MCP
    /// server offers (see [`mcp`]).
    pub name: Cow<'static, str>,
    /// One sentence: what it does (an MCP server's description is sanitized and shortened).
    pub description: Cow<'static, str>,
    /// What it is for.
    pub category: ToolCategory,
    /// False when its effect cannot be undone (blocked while `reversible_only` is on).
    pub reversible: bool,
    /// True when every call asks the operator first, whatever `require_confirmation` says.
    pub confirmation: bool,
    /// JSON Schema of its arguments (an object).
    pub schema: serde_json::Value,
}

/// A tool. Implementations must not panic on any argument the schema admits.
#[async_trait::async_trait]
pub trait Tool: Send + Sync {
    /// What the tool is and what it takes.
    fn capability(&self) -> Capability;

    /// The files a call with `args` touches, for the gate's `read_file`/`write_file` policy
    /// requests (paths as given, relative to the workspace).
    fn files(&self, args: &serde_json::Value) -> Vec<(FileAccess, String)> {
        let _ = args;
        Vec::new()
    }

    /// Acts. `args` already fit the schema.
    async fn invoke(&self, args: &serde_json::Value) -> Result<ToolOutput, ToolError>;
}

/// The name a model is given for tool `name`: the name itself for a compiled-in tool
/// (`[a-z_]+`); for an MCP tool, `mcp:<server>:<tool>` with each `:` as `__` and any other
/// character a model API refuses as `_`, at most 64 characters (what OpenAI and Anthropic
/// both take). The core maps the model's calls back by the names it offered.
pub fn wire_name(name: &str) -> Cow<'_, str> {
    let fits = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if name.len() <= 64 && name.bytes().all(fits) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        match c {
            ':' => out.push_str("__"),
            c if c.is_ascii() && fits(c as u8) => out.push(c),
            _ => out.push('_'),
        }
    }
    out.truncate(64);
    Cow::Owned(out)
}

/// [`wire_name`], made unique among the names `taken` already holds: a name that collides
/// (`mcp:a:b__c` and `mcp:a__b:c` both read `mcp__a__b__c`) or was cut to 64 characters gets
/// the first 8 hex digits of its SHA-256 after its first 55 characters. `None` when even that
/// is taken.
pub fn unique_wire_name(name: &str, taken: impl Fn(&str) -> bool) -> Option<String> {
    let plain = wire_name(name);
    let cut = plain.len() == 64 && name.len() > 64;
    if !cut && !taken(&plain) {
        return Some(plain.into_owned());
    }
    let digest = crate::governance::journal::sha256_hex(name.as_bytes());
    let hashed = format!(
        "{}_{}",
        plain.get(..55).unwrap_or(&plain),
        digest.get(..8).unwrap_or(&digest)
    );
    (!taken(&hashed)).then_some(hashed)
}

/// A string argument the schema declared required (empty when absent, which validation
/// has already ruled out).
pub(crate) fn str_arg<'a>(args: &'a serde_json::Value, key: &str) -> &'a str {
    args.get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
}
