//! [`ToolRegistry`]: the tools by name, each with its argument schema compiled once.
//!
//! `register` refuses a second tool of the same name; `validate` checks arguments against the
//! schema before a tool runs and names the first bad field; `invoke` validates and runs, and is
//! what the core calls once the gate has admitted the call. Tools that come and go while the
//! core runs (an MCP server's) are mounted as a tool source under their prefix.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::{Capability, Tool, ToolError, ToolOutput};
use crate::config::suggest::did_you_mean;
use crate::sanitize;

/// Largest compiled size of a regular expression in a tool's argument schema (its `pattern`s
/// run on the linear-time engine: a hostile schema cannot make validation backtrack).
const SCHEMA_REGEX_LIMIT: usize = 1 << 20;

/// One registered tool and its compiled schema.
pub(crate) struct Entry {
    pub(crate) tool: Arc<dyn Tool>,
    pub(crate) capability: Capability,
    validator: jsonschema::Validator,
}

impl Entry {
    /// The tool with its argument schema compiled; fails when the schema is not a valid JSON
    /// Schema (remote `$ref`s are not fetched: such a schema does not compile).
    pub(crate) fn new(tool: Arc<dyn Tool>) -> Result<Self, ToolError> {
        let capability = tool.capability();
        let validator = jsonschema::options()
            .with_pattern_options(
                jsonschema::PatternOptions::regex()
                    .size_limit(SCHEMA_REGEX_LIMIT)
                    .dfa_size_limit(SCHEMA_REGEX_LIMIT),
            )
            .build(&capability.schema)
            .map_err(|e| {
                ToolError::BadArguments(format!(
                    "the argument schema of tool '{}' is not a valid JSON Schema: {}",
                    sanitize::quote(&capability.name),
                    sanitize::excerpt(&e.to_string(), 3 * sanitize::EXCERPT_CHARS)
                ))
            })?;
        Ok(Entry {
            tool,
            capability,
            validator,
        })
    }
}

/// Tools that come and go while the core runs, all named under one prefix: an MCP server's
/// (`mcp:`), listed when the server starts and gone with it.
pub(crate) trait ToolSource: Send + Sync {
    /// The prefix every one of its names starts with.
    fn prefix(&self) -> &'static str;
    /// Its tools now, by name.
    fn entries(&self) -> Vec<Arc<Entry>>;
    /// The tool `name` (which starts with the prefix); the error says why there is none (an
    /// unknown name, a server that is down).
    fn entry(&self, name: &str) -> Result<Arc<Entry>, ToolError>;
}

/// A tool as `veyra tools list` and `describe` show it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ToolInfo {
    /// Its capability (name, description, category, reversible, confirmation, schema).
    #[serde(flatten)]
    pub capability: Capability,
}

/// See the module docs.
#[derive(Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<Entry>>,
    /// Tools left out by configuration, with what turns them on (for the unknown-tool error).
    off: BTreeMap<&'static str, String>,
    /// Tools that come and go (MCP servers'), each source under its own prefix.
    sources: Vec<Arc<dyn ToolSource>>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRegistry")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .field(
                "sources",
                &self.sources.iter().map(|s| s.prefix()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool. Fails when the name is taken, is not `[a-z_]+`, or the schema is not a
    /// valid JSON Schema.
    pub fn register(&mut self, tool: Arc<dyn Tool>) -> Result<(), ToolError> {
        let entry = Entry::new(tool)?;
        let name = entry.capability.name.to_string();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(ToolError::BadArguments(format!(
                "'{}' is not a tool name: a compiled-in tool is named with lowercase letters \
                 and '_' only (names with ':' belong to MCP servers)",
                sanitize::quote(&name)
            )));
        }
        if self.tools.contains_key(&name) {
            return Err(ToolError::BadArguments(format!(
                "a tool named '{name}' is already registered; tool names must be unique"
            )));
        }
        self.tools.insert(name, Arc::new(entry));
        Ok(())
    }

    /// Adds tools that come and go under `source`'s prefix (an MCP hub's `mcp:`).
    pub(crate) fn mount(&mut self, source: Arc<dyn ToolSource>) {
        self.sources.push(source);
    }

    /// Notes that `name` is off and `how` turns it on, so that naming it says so instead of
    /// "no tool named".
    pub fn set_off(&mut self, name: &'static str, how: impl Into<String>) {
        self.off.insert(name, how.into());
    }

    /// Every tool, by name: the compiled-in ones, then those of the sources.
    pub fn list(&self) -> Vec<ToolInfo> {
        self.list_where(|_| true)
    }

    /// As [`ToolRegistry::list`], only the tools `keep` accepts by name: the others'
    /// capabilities (schemas included) are not copied. Every execution asks for its offer.
    pub fn list_where(&self, keep: impl Fn(&str) -> bool) -> Vec<ToolInfo> {
        let info = |e: &Entry| ToolInfo {
            capability: e.capability.clone(),
        };
        let mut out: Vec<ToolInfo> = self
            .tools
            .values()
            .filter(|e| keep(&e.capability.name))
            .map(|e| info(e))
            .collect();
        for source in &self.sources {
            out.extend(
                source
                    .entries()
                    .iter()
                    .filter(|e| keep(&e.capability.name))
                    .map(|e| info(e)),
            );
        }
        out
    }

    /// One tool's capability; unknown names get a did-you-mean.
    pub fn describe(&self, name: &str) -> Result<ToolInfo, ToolError> {
        self.entry(name).map(|e| ToolInfo {
            capability: e.capability.clone(),
        })
    }

    /// The tool itself (for the gate, which asks it which files a call touches).
    pub fn get(&self, name: &str) -> Result<Arc<dyn Tool>, ToolError> {
        self.entry(name).map(|e| Arc::clone(&e.tool))
    }

    /// Checks `args` against the tool's schema; the error names the first bad field.
    pub fn validate(&self, name: &str, args: &serde_json::Value) -> Result<(), ToolError> {
        let entry = self.entry(name)?;
        match entry.validator.iter_errors(args).next() {
            None => Ok(()),
            Some(e) => {
                let shown = sanitize::quote(name);
                let at = e.instance_path().to_string();
                let place = if at.is_empty() {
                    "the arguments".to_string()
                } else {
                    format!("argument '{}'", sanitize::quote(at.trim_start_matches('/')))
                };
                Err(ToolError::BadArguments(format!(
                    "tool '{shown}': {place}: {}; see `veyra tools describe {shown}`",
                    sanitize::excerpt(&e.to_string(), 3 * sanitize::EXCERPT_CHARS)
                )))
            }
        }
    }

    /// Validates and runs one call. The core's gate must have admitted it.
    pub async fn invoke(
        &self,
        name: &str,
        args: &serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        self.validate(name, args)?;
        let tool = self.get(name)?;
        tool.invoke(args).await
    }

    fn entry(&self, name: &str) -> Result<Arc<Entry>, ToolError> {
        if let Some(how) = self.off.get(name) {
            return Err(ToolError::Unknown(format!("tool '{name}' is off: {how}")));
        }
        if let Some(source) = self.sources.iter().find(|s| name.starts_with(s.prefix())) {
            return source.entry(name);
        }
        self.tools.get(name).cloned().ok_or_else(|| {
            ToolError::Unknown(format!(
                "no tool named '{}'{}; `veyra tools list` shows them",
                sanitize::quote(name),
                did_you_mean(name, self.tools.keys().map(String::as_str))
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::calculator::Calculator;

    #[test]
    fn a_duplicate_name_is_refused() {
        let mut r = ToolRegistry::new();
        r.register(Arc::new(Calculator)).unwrap();
        let err = r.register(Arc::new(Calculator)).unwrap_err();
        assert!(err.to_string().contains("already registered"), "{err}");
    }

    #[test]
    fn validation_names_the_bad_field() {
        let mut r = ToolRegistry::new();
        r.register(Arc::new(Calculator)).unwrap();
        let missing = r
            .validate("calculator", &serde_json::json!({}))
            .unwrap_err();
        assert!(missing.to_string().contains("expression"), "{missing}");
        let extra = r
            .validate(
                "calculator",
                &serde_json::json!({ "expression": "1", "colour": "red" }),
            )
            .unwrap_err();
        assert!(extra.to_string().contains("colour"), "{extra}");
        let typed = r
            .validate("calculator", &serde_json::json!({ "expression": 1 }))
            .unwrap_err();
        assert!(
            typed.to_string().contains("argument 'expression'"),
            "{typed}"
        );
        assert!(matches!(
            r.validate("calculater", &serde_json::json!({})),
            Err(ToolError::Unknown(m)) if m.contains("did you mean 'calculator'")
        ));
    }
}
