//! The small built-in tools — `light_time`, `check_operation`, `list_prohibited` — and
//! [`with_builtins`], the registry every core starts with (these, `calculator`, the file tools
//! and, when `tools.http_allow` lists a host, `http_get`).
//!
//! `light_time` reads [`crate::ephemeris`], a leaf module of pure astronomy.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::calculator::Calculator;
use super::files::FileTool;
use super::http::HttpGet;
use super::system::{ProbeSlot, SystemStatus};
use super::{
    Capability, SafetyBoundary, SafetyVerdict, Tool, ToolCategory, ToolError, ToolOutput,
    ToolRegistry, str_arg,
};
use crate::config::VeyraConfig;
use crate::ephemeris::{self, Body, C_KM_S};

/// A registry holding every built-in tool, configured from `config`. The file tools keep an
/// undo journal (and so are reversible) exactly when audit is on: the journal lives in the
/// audit store.
///
/// `system_status` reports through `probe`, which the core fills once it exists (an empty
/// slot, as `veyra tools list` passes, only lists the tool).
pub fn with_builtins(config: &VeyraConfig, probe: ProbeSlot) -> Result<ToolRegistry, ToolError> {
    let mut registry = ToolRegistry::new();
    let boundary = SafetyBoundary::from_config(&config.governance);
    let mut tools: Vec<Arc<dyn Tool>> = vec![
        Arc::new(Calculator),
        Arc::new(LightTime),
        Arc::new(SystemStatus::new(probe)),
        Arc::new(CheckOperation {
            boundary: boundary.clone(),
        }),
        Arc::new(ListProhibited {
            prohibited: config.governance.prohibited_operations.clone(),
            require_confirmation: config.governance.require_confirmation.clone(),
            reversible_only: config.governance.reversible_only,
        }),
    ];
    for tool in FileTool::all(&config.tools, config.governance.audit) {
        tools.push(Arc::new(tool));
    }
    match HttpGet::from_config(&config.tools)? {
        Some(http) => tools.push(Arc::new(http)),
        None => registry.set_off(
            "http_get",
            "tools.http_allow is empty; list the hosts it may reach there (e.g. \
             http_allow: [api.example.com]) to turn it on",
        ),
    }
    for tool in tools {
        registry.register(tool)?;
    }
    Ok(registry)
}

/// `light_time`: one-way and round-trip light time from Earth to a body at a date.
#[derive(Debug, Default, Clone, Copy)]
pub struct LightTime;

#[async_trait::async_trait]
impl Tool for LightTime {
    fn capability(&self) -> Capability {
        Capability {
            name: "light_time".into(),
            description: "One-way and round-trip light time from Earth to the Moon, Mars or \
                          Jupiter at a date (default: now), with the Sun–Earth–body angle."
                .into(),
            category: ToolCategory::Analysis,
            reversible: true,
            confirmation: false,
            schema: json!({
                "type": "object",
                "properties": {
                    "body": { "type": "string", "enum": ["moon", "mars", "jupiter"] },
                    "at": { "type": "string", "description": "RFC 3339 date, e.g. 2026-12-01T00:00:00Z", "maxLength": 64 },
                },
                "required": ["body"],
                "additionalProperties": false,
            }),
        }
    }

    async fn invoke(&self, args: &serde_json::Value) -> Result<ToolOutput, ToolError> {
        let at = match args.get("at").and_then(serde_json::Value::as_str) {
            None => Utc::now(),
            Some(text) => DateTime::parse_from_rfc3339(text)
                .map_err(|e| {
                    ToolError::BadArguments(format!(
                        "argument 'at': '{}' is not an RFC 3339 date ({e}); write e.g. 2026-12-01T00:00:00Z",
                        crate::sanitize::quote(text)
                    ))
                })?
                .with_timezone(&Utc),
        };
        let body = str_arg(args, "body");
        let fail =
            |e: ephemeris::OutOfRange| ToolError::BadArguments(format!("argument 'at': {e}"));
        let (km, elongation) = match body {
            "moon" => (ephemeris::moon_distance_km(at).map_err(fail)?, None),
            "mars" | "jupiter" => {
                let which = if body == "mars" {
                    Body::Mars
                } else {
                    Body::Jupiter
                };
                let g = ephemeris::planet_link(which, at).map_err(fail)?;
                (g.distance_km(), Some(g.elongation_deg))
            }
            other => {
                return Err(ToolError::BadArguments(format!(
                    "argument 'body': '{}' is not one of moon, mars, jupiter",
                    crate::sanitize::quote(other)
                )));
            }
        };
        let one_way = km / C_KM_S;
        Ok(ToolOutput::new(
            json!({
                "body": body,
                "at": at.to_rfc3339(),
                "distance_km": km,
                "one_way_s": one_way,
                "round_trip_s": 2.0 * one_way,
                "elongation_deg": elongation,
            }),
            format!("{body}: one-way {one_way:.1} s"),
        ))
    }
}

/// `check_operation`: what the safety boundary would say about an operation, acting on nothing.
#[derive(Debug, Clone)]
pub struct CheckOperation {
    boundary: SafetyBoundary,
}

#[async_trait::async_trait]
impl Tool for CheckOperation {
    fn capability(&self) -> Capability {
        Capability {
            name: "check_operation".into(),
            description: "Says what the safety boundary would decide for an operation \
                          (allowed, needs confirmation, or blocked and why), acting on nothing."
                .into(),
            category: ToolCategory::Safety,
            reversible: true,
            confirmation: false,
            schema: json!({
                "type": "object",
                "properties": {
                    "operation": { "type": "string", "minLength": 1, "maxLength": 256 },
                    "reversible": { "type": "boolean", "default": true },
                },
                "required": ["operation"],
                "additionalProperties": false,
            }),
        }
    }

    async fn invoke(&self, args: &serde_json::Value) -> Result<ToolOutput, ToolError> {
        let operation = str_arg(args, "operation");
        let reversible = args
            .get("reversible")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true);
        let verdict = self
            .boundary
            .check_operation(operation, reversible, "agent");
        let (rule, reason) = match &verdict {
            SafetyVerdict::Allowed => (None, None),
            SafetyVerdict::NeedsConfirmation { rule } => (Some(rule.clone()), None),
            SafetyVerdict::Blocked(v) => (Some(v.rule.clone()), Some(v.reason.clone())),
        };
        let level = verdict.level().name();
        Ok(ToolOutput::new(
            json!({ "operation": operation, "level": level, "rule": rule, "reason": reason }),
            level,
        ))
    }
}

/// `list_prohibited`: the boundary's rules as configured.
#[derive(Debug, Clone)]
pub struct ListProhibited {
    prohibited: Vec<String>,
    require_confirmation: Vec<String>,
    reversible_only: bool,
}

#[async_trait::async_trait]
impl Tool for ListProhibited {
    fn capability(&self) -> Capability {
        Capability {
            name: "list_prohibited".into(),
            description: "Lists the prohibited operations, those that need confirmation, and \
                          whether only reversible operations are allowed."
                .into(),
            category: ToolCategory::Safety,
            reversible: true,
            confirmation: false,
            schema: json!({ "type": "object", "properties": {}, "additionalProperties": false }),
        }
    }

    async fn invoke(&self, _args: &serde_json::Value) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::new(
            json!({
                "prohibited_operations": self.prohibited,
                "require_confirmation": self.require_confirmation,
                "reversible_only": self.reversible_only,
            }),
            format!("{} prohibited", self.prohibited.len()),
        ))
    }
}
