//! [`ToolRegistry`]: the tools by name, each with its argument schema compiled once.
//!
//! `register` refuses a second tool of the same name; `validate` checks arguments against the
//! schema before a tool runs and names the first bad field; `invoke` validates and runs, and is
//! what the core calls once the gate has admitted the call.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::{Capability, Tool, ToolError, ToolOutput};
use crate::config::suggest::did_you_mean;
use crate::sanitize;

/// One registered tool and its compiled schema.
struct Entry {
    tool: Arc<dyn Tool>,
    capability: Capability,
    validator: jsonschema::Validator,
}

/// A tool as `veyra tools list` and `describe` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolInfo {
    /// Its capability (name, description, category, reversible, confirmation, schema).
    #[serde(flatten)]
    pub capability: Capability,
}

/// See the module docs.
#[derive(Default)]
pub struct ToolRegistry {
    tools: BTreeMap<&'static str, Entry>,
    /// Tools left out by configuration, with what turns them on (for the unknown-tool error).
    off: BTreeMap<&'static str, String>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRegistry")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool. Fails when the name is taken or the schema is not a valid JSON Schema.
    pub fn register(&mut self, tool: Arc<dyn Tool>) -> Result<(), ToolError> {
        let capability = tool.capability();
        if self.tools.contains_key(capability.name) {
            return Err(ToolError::BadArguments(format!(
                "a tool named '{}' is already registered; tool names must be unique",
                capability.name
            )));
        }
        let validator = jsonschema::validator_for(&capability.schema).map_err(|e| {
            ToolError::BadArguments(format!(
                "the argument schema of tool '{}' is not a valid JSON Schema: {e}",
                capability.name
            ))
        })?;
        self.tools.insert(
            capability.name,
            Entry {
                tool,
                capability,
                validator,
            },
        );
        Ok(())
    }

    /// Notes that `name` is off and `how` turns it on, so that naming it says so instead of
    /// "no tool named".
    pub fn set_off(&mut self, name: &'static str, how: impl Into<String>) {
        self.off.insert(name, how.into());
    }

    /// Every tool, by name.
    pub fn list(&self) -> Vec<ToolInfo> {
        self.tools
            .values()
            .map(|e| ToolInfo {
                capability: e.capability.clone(),
            })
            .collect()
    }

    /// As [`ToolRegistry::list`], only the tools `keep` accepts by name: the others'
    /// capabilities (schemas included) are not copied. Every execution asks for its offer.
    pub fn list_where(&self, keep: impl Fn(&str) -> bool) -> Vec<ToolInfo> {
        self.tools
            .values()
            .filter(|e| keep(e.capability.name))
            .map(|e| ToolInfo {
                capability: e.capability.clone(),
            })
            .collect()
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
                let at = e.instance_path().to_string();
                let place = if at.is_empty() {
                    "the arguments".to_string()
                } else {
                    format!("argument '{}'", at.trim_start_matches('/'))
                };
                Err(ToolError::BadArguments(format!(
                    "tool '{name}': {place}: {}; see `veyra tools describe {name}`",
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

    fn entry(&self, name: &str) -> Result<&Entry, ToolError> {
        if let Some(how) = self.off.get(name) {
            return Err(ToolError::Unknown(format!("tool '{name}' is off: {how}")));
        }
        self.tools.get(name).ok_or_else(|| {
            ToolError::Unknown(format!(
                "no tool named '{}'{}; `veyra tools list` shows them",
                sanitize::quote(name),
                did_you_mean(name, self.tools.keys().copied())
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
