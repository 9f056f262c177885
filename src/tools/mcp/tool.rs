//! An MCP server's tool as a Veyra [`Tool`], and what its answer becomes.

use std::sync::{Arc, Weak};

use rmcp::model::CallToolResult;

use super::{PREFIX, Remote, Scrub};
use crate::sanitize;
use crate::tools::registry::Entry;
use crate::tools::{Capability, Tool, ToolCategory, ToolError, ToolOutput};

/// Most bytes of text an MCP tool's answer keeps; the rest is cut, saying so.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;
/// Largest argument schema (as JSON) a listed tool may have; a larger one is not offered.
const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Characters of a tool's description kept (it is the server's word, shown to models).
const DESCRIPTION_CHARS: usize = 400;

/// Most bytes of argument schemas one server's tools may have together (each is compiled, and
/// every one is sent to the model with every prompt that offers it).
const MAX_SERVER_SCHEMA_BYTES: usize = 512 * 1024;
/// Most `pattern`s (each a compiled regular expression) one server's schemas may hold together.
const MAX_SERVER_PATTERNS: usize = 256;

/// What one server's listing has used of its budget so far.
#[derive(Debug, Default)]
pub(super) struct Budget {
    schema_bytes: usize,
    patterns: usize,
}

/// `pattern` and `patternProperties` keys anywhere in `value`.
fn patterns_in(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| usize::from(k == "pattern" || k == "patternProperties") + patterns_in(v))
            .sum(),
        serde_json::Value::Array(items) => items.iter().map(patterns_in).sum(),
        _ => 0,
    }
}

/// One tool of one server (see the module docs).
pub(super) struct McpTool {
    /// Weak: the server keeps its tools, so a strong link would keep both forever.
    server: Weak<dyn Remote>,
    /// The server's name in Veyra.
    server_name: String,
    /// What is scrubbed from its answers.
    scrub: Arc<Scrub>,
    /// The server's own name for it.
    remote: String,
    capability: Capability,
}

impl McpTool {
    /// The registry entry for `tool` as `server` listed it; the error says why it is not
    /// offered (a name or schema Veyra cannot take).
    pub(super) fn entry<S: Remote + 'static>(
        server: &Arc<S>,
        config: &crate::config::McpServerConfig,
        scrub: &Arc<Scrub>,
        tool: &rmcp::model::Tool,
        budget: &mut Budget,
    ) -> Result<Entry, String> {
        let remote = tool.name.to_string();
        if !crate::config::is_mcp_tool_name(&remote) {
            return Err(format!(
                "tool '{}' is not offered: its name is not 1 to 128 of A-Z a-z 0-9 _ . -",
                sanitize::quote(&sanitize::excerpt(&remote, 64))
            ));
        }
        // A name or schema holding a secret would carry it to the audit trail and the model.
        if scrub.text(&remote) != remote {
            return Err("a tool is not offered: its name holds a secret".into());
        }
        let schema = serde_json::Value::Object((*tool.input_schema).clone());
        let text = serde_json::to_string(&schema).unwrap_or_default();
        let size = text.len();
        if size > MAX_SCHEMA_BYTES {
            return Err(format!(
                "tool '{remote}' is not offered: its argument schema is {size} bytes, more than \
                 {MAX_SCHEMA_BYTES}"
            ));
        }
        if scrub.text(&text) != text {
            return Err(format!(
                "tool '{remote}' is not offered: its argument schema holds a secret"
            ));
        }
        let patterns = patterns_in(&schema);
        if budget.schema_bytes + size > MAX_SERVER_SCHEMA_BYTES
            || budget.patterns + patterns > MAX_SERVER_PATTERNS
        {
            return Err(format!(
                "tool '{remote}' is not offered: the server's schemas together pass \
                 {MAX_SERVER_SCHEMA_BYTES} bytes or {MAX_SERVER_PATTERNS} patterns"
            ));
        }
        budget.schema_bytes += size;
        budget.patterns += patterns;
        let said = tool
            .description
            .as_deref()
            .or(tool.title.as_deref())
            .unwrap_or("no description");
        let description = format!(
            "(from MCP server '{}') {}",
            config.name,
            sanitize::sanitize_line(&sanitize::excerpt(&scrub.text(said), DESCRIPTION_CHARS))
        );
        let capability = Capability {
            name: format!("{PREFIX}{}:{remote}", config.name).into(),
            description: description.into(),
            category: ToolCategory::External,
            reversible: config.reversible.contains(&remote),
            confirmation: false,
            schema,
        };
        let weak: Weak<dyn Remote> = Arc::downgrade(server) as Weak<S>;
        Entry::new(Arc::new(McpTool {
            server: weak,
            server_name: config.name.clone(),
            scrub: Arc::clone(scrub),
            remote: remote.clone(),
            capability,
        }))
        .map_err(|e| format!("tool '{remote}' is not offered: {e}"))
    }
}

#[async_trait::async_trait]
impl Tool for McpTool {
    fn capability(&self) -> Capability {
        self.capability.clone()
    }

    async fn invoke(&self, args: &serde_json::Value) -> Result<ToolOutput, ToolError> {
        let Some(server) = self.server.upgrade() else {
            return Err(ToolError::Failed(
                "its mcp server was stopped with Veyra".into(),
            ));
        };
        let result = server.call(&self.remote, args).await?;
        output(&self.scrub, &self.server_name, &self.remote, result)
    }
}

/// A server's answer to a call of `tool`, made safe: each content block as text (text as
/// sent; an image, audio or a link as a line saying what it was), joined, scrubbed of
/// secrets, sanitized and capped at [`MAX_RESULT_BYTES`]; structured content scrubbed the
/// same way, kept when it fits. An answer flagged as an error is the tool's failure.
fn output(
    scrub: &Scrub,
    name: &str,
    tool: &str,
    result: CallToolResult,
) -> Result<ToolOutput, ToolError> {
    let mut parts = Vec::new();
    for block in &result.content {
        let Ok(value) = serde_json::to_value(block) else {
            continue;
        };
        parts.push(block_text(&value));
    }
    let joined = parts.join("\n");
    let raw_len = joined.len();
    let text = sanitize::sanitize(&scrub.text(&joined)).into_owned();
    let (text, cut) = cap(text);
    let structured = result.structured_content.map(|v| {
        let clean = scrub_json(scrub, v);
        match serde_json::to_vec(&clean) {
            Ok(bytes) if bytes.len() <= MAX_RESULT_BYTES => clean,
            _ => serde_json::Value::String(format!(
                "[structured content left out: more than {MAX_RESULT_BYTES} bytes]"
            )),
        }
    });
    if result.is_error == Some(true) {
        return Err(ToolError::Failed(format!(
            "mcp server '{name}' says tool '{tool}' failed: {}",
            sanitize::sanitize_line(&sanitize::excerpt(&text, 3 * sanitize::EXCERPT_CHARS))
        )));
    }
    let summary = format!(
        "mcp {name}:{tool}: {} content block{}, {raw_len} bytes of text{}",
        result.content.len(),
        if result.content.len() == 1 { "" } else { "s" },
        if cut { " (cut)" } else { "" }
    );
    let mut value = serde_json::json!({ "content": text });
    if let Some(s) = structured {
        value["structured"] = s;
    }
    Ok(ToolOutput::new(value, summary))
}

/// One content block as text.
fn block_text(block: &serde_json::Value) -> String {
    let field = |k: &str| block.get(k).and_then(serde_json::Value::as_str);
    match field("type").unwrap_or_default() {
        "text" => field("text").unwrap_or_default().to_string(),
        "image" | "audio" => format!(
            "[{} {}, {} bytes of base64 left out]",
            field("type").unwrap_or_default(),
            field("mimeType").unwrap_or("of unknown type"),
            field("data").map_or(0, str::len)
        ),
        "resource" => {
            let resource = block.get("resource");
            let inner = |k: &str| {
                resource
                    .and_then(|r| r.get(k))
                    .and_then(serde_json::Value::as_str)
            };
            match inner("text") {
                Some(text) => text.to_string(),
                None => format!(
                    "[resource {} left out: not text]",
                    inner("uri").unwrap_or("")
                ),
            }
        }
        "resource_link" => format!("[resource link: {}]", field("uri").unwrap_or_default()),
        other => format!("[content of type '{other}' left out]"),
    }
}

/// `text` cut at [`MAX_RESULT_BYTES`] on a character boundary; true when it was cut.
fn cap(mut text: String) -> (String, bool) {
    if text.len() <= MAX_RESULT_BYTES {
        return (text, false);
    }
    let at = (0..=MAX_RESULT_BYTES)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text.truncate(at);
    text.push_str(" … [cut at 64 KiB]");
    (text, true)
}

/// Every string in `value` scrubbed of secrets and sanitized.
fn scrub_json(scrub: &Scrub, value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(sanitize::sanitize(&scrub.text(&s)).into_owned()),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| scrub_json(scrub, v)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    (
                        sanitize::sanitize(&scrub.text(&k)).into_owned(),
                        scrub_json(scrub, v),
                    )
                })
                .collect(),
        ),
        other => other,
    }
}
