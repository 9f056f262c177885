//! `VEYRA_<SECTION>__<FIELD>` environment overrides (DESIGN §4).
//!
//! A variable's name is a path into the config: `VEYRA_MODEL__BACKEND` is `model.backend`,
//! `VEYRA_MODEL__MOCK__TOKEN_DELAY_MS` is `model.mock.token_delay_ms`. The value is read the way
//! YAML reads a scalar (`true`, `42`, `0.5`, text); a list field takes comma-separated items.
//! Overrides are applied one at a time, in name order, and the whole config is re-checked after
//! each, so a wrong type is reported against the variable that caused it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ConfigError, VeyraConfig, suggest};

/// Variables with the prefix that are not overrides.
const NOT_OVERRIDES: [&str; 1] = ["VEYRA_CONFIG"];

/// The prefix every override starts with.
pub const PREFIX: &str = "VEYRA_";

/// The process environment as text, read without assuming UTF-8: a `VEYRA_*` variable whose
/// name or value is not valid UTF-8 is an error naming it; any other such variable is not
/// Veyra's business and is left out.
pub fn process_vars() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let ours = name.as_encoded_bytes().starts_with(PREFIX.as_bytes());
        match (name.into_string(), value.into_string()) {
            (Ok(name), Ok(value)) => vars.push((name, value)),
            (Ok(name), Err(_)) if ours => {
                return Err(ConfigError::Env {
                    message: "the value is not valid UTF-8 text; set it to plain text or unset it"
                        .into(),
                    var: name,
                });
            }
            (Err(name), _) if ours => {
                return Err(ConfigError::Env {
                    var: crate::sanitize::quote(&name.to_string_lossy()),
                    message: "the variable's name is not valid UTF-8 text; unset it".into(),
                });
            }
            _ => {}
        }
    }
    Ok(vars)
}

/// Applies every override in `vars` to `config`. Returns the new config and, for each dotted key
/// that was overridden, the variable that did it.
pub fn apply_overrides(
    config: VeyraConfig,
    vars: &[(String, String)],
) -> Result<(VeyraConfig, BTreeMap<String, String>), ConfigError> {
    let mut overrides: Vec<&(String, String)> = vars
        .iter()
        .filter(|(k, _)| k.starts_with(PREFIX) && !NOT_OVERRIDES.contains(&k.as_str()))
        .collect();
    if overrides.is_empty() {
        return Ok((config, BTreeMap::new()));
    }
    overrides.sort();
    let mut tree = serde_json::to_value(&config).map_err(|e| ConfigError::Env {
        var: PREFIX.to_string(),
        message: format!("internal error while applying overrides: {e}"),
    })?;
    let mut config = config;
    let mut sources = BTreeMap::new();
    for (var, raw) in overrides {
        let path = key_path(var, &tree)?;
        let slot = slot_mut(&mut tree, &path);
        let previous = slot.clone();
        let candidates = candidates(raw, &previous);
        let mut first_error = None;
        let mut accepted = false;
        for candidate in candidates {
            *slot_mut(&mut tree, &path) = candidate;
            match serde_json::from_value::<VeyraConfig>(tree.clone()) {
                Ok(c) => {
                    config = c;
                    accepted = true;
                    break;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if !accepted {
            let detail = first_error.map(|e| e.to_string()).unwrap_or_default();
            let key = path.join(".");
            if super::takes::is_type_error(&detail)
                && let Some(takes) = super::takes::takes(&key)
            {
                return Err(ConfigError::Env {
                    var: var.clone(),
                    message: super::takes::wrong_kind(&key, &takes, &super::mask_userinfo(raw)),
                });
            }
            return Err(ConfigError::Env {
                var: var.clone(),
                message: format!(
                    "value '{}' does not fit {}: {}",
                    crate::sanitize::quote(&super::mask_userinfo(raw)),
                    path.join("."),
                    crate::sanitize::quote(&super::mask_userinfo(&detail))
                ),
            });
        }
        sources.insert(path.join("."), var.clone());
    }
    Ok((config, sources))
}

/// Resolves `VEYRA_A__B` to `["a", "b"]`, checking every step exists.
fn key_path(var: &str, tree: &Value) -> Result<Vec<String>, ConfigError> {
    let body = &var[PREFIX.len()..];
    let parts: Vec<String> = body.split("__").map(|p| p.to_ascii_lowercase()).collect();
    let mut node = tree;
    let mut walked = Vec::new();
    for part in &parts {
        let Value::Object(map) = node else {
            return Err(ConfigError::Env {
                var: var.to_string(),
                message: format!(
                    "'{}' is a value, not a section; use VEYRA_{}",
                    walked.join("."),
                    walked.join("__").to_ascii_uppercase()
                ),
            });
        };
        match map.get(part) {
            Some(child) => {
                walked.push(part.clone());
                node = child;
            }
            None => {
                let what = if walked.is_empty() {
                    format!("section '{part}'")
                } else {
                    format!("key '{part}' in section '{}'", walked.join("."))
                };
                let suggestion = suggest::closest(part, map.keys().map(String::as_str))
                    .map(|s| {
                        let mut p = walked.clone();
                        p.push(s.to_string());
                        format!(
                            " (did you mean {PREFIX}{}?)",
                            p.join("__").to_ascii_uppercase()
                        )
                    })
                    .unwrap_or_default();
                let valid: Vec<&str> = map.keys().map(String::as_str).collect();
                return Err(ConfigError::Env {
                    var: var.to_string(),
                    message: format!("unknown {what}{suggestion}; valid: {}", valid.join(", ")),
                });
            }
        }
    }
    if node.is_object() {
        return Err(ConfigError::Env {
            var: var.to_string(),
            message: format!(
                "'{}' is a section; name one of its keys, e.g. {PREFIX}{}__{}",
                walked.join("."),
                walked.join("__").to_ascii_uppercase(),
                node.as_object()
                    .and_then(|m| m.keys().next())
                    .map(|k| k.to_ascii_uppercase())
                    .unwrap_or_default()
            ),
        });
    }
    Ok(parts)
}

/// The slot at `path`; `key_path` has checked that it exists.
fn slot_mut<'a>(tree: &'a mut Value, path: &[String]) -> &'a mut Value {
    let mut node = tree;
    for part in path {
        // `key_path` walked the same path through the same tree, so every step is present;
        // `entry` keeps this total without an unwrap.
        node = match node {
            Value::Object(map) => map.entry(part.clone()).or_insert(Value::Null),
            other => other,
        };
    }
    node
}

/// Interpretations of a raw variable value, most specific first.
fn candidates(raw: &str, previous: &Value) -> Vec<Value> {
    if previous.is_array() {
        let items: Vec<Value> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_string()))
            .collect();
        return vec![Value::Array(items)];
    }
    let text = raw.trim();
    let mut out = Vec::new();
    match text {
        "true" | "false" => out.push(Value::Bool(text == "true")),
        "" | "null" | "~" => out.push(Value::Null),
        _ => {
            if let Ok(i) = text.parse::<i64>() {
                out.push(Value::from(i));
            } else if let Ok(u) = text.parse::<u64>() {
                out.push(Value::from(u));
            } else if let Ok(f) = text.parse::<f64>()
                && let Some(n) = serde_json::Number::from_f64(f)
            {
                out.push(Value::Number(n));
            }
        }
    }
    out.push(Value::String(raw.to_string()));
    out
}
