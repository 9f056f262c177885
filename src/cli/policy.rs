//! `veyra policy check`, `list` and `replay`: the request the core would send, decided by the
//! Cedar engine; the loaded policies with their effect, jurisdiction and reason; and every
//! recorded decision decided again under a candidate set, with what would flip.

use super::{json_lines, print_all};
use crate::config::{self, LatencyPreset, LoadedConfig};
use crate::error::{ExitCode, VeyraError};
use crate::events::Priority;

/// The request `veyra policy check` decides: the core's default context for the action,
/// overridden by `--context`.
pub fn policy_request(
    principal: &str,
    action: &str,
    resource: &str,
    context: Option<&str>,
    config: &config::VeyraConfig,
) -> Result<crate::governance::PolicyRequest, VeyraError> {
    use crate::governance::policy::{ContextValue, PolicyRequest, Resource, destination_of};
    if principal.trim().is_empty() {
        return Err(VeyraError::Usage(
            "--principal is empty; name an actor such as operator".into(),
        ));
    }
    let resource: Resource = resource.parse()?;
    let mut request = PolicyRequest::new(principal, action, resource, config.latency.preset);
    if action == crate::core::EXECUTE {
        request = request
            .with(
                "priority",
                ContextValue::Str(Priority::Normal.name().into()),
            )
            .with("model", ContextValue::Str(config.model.model.clone()))
            .with("prompt_chars", ContextValue::Long(0));
    }
    let Some(text) = context else {
        return Ok(request);
    };
    let bad = |m: String| VeyraError::Usage(format!("--context: {m}"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "not JSON ({e}); write an object, e.g. '{{\"priority\":\"background\"}}'"
        ))
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(bad(
            "write a JSON object, e.g. '{\"priority\":\"background\"}'".into(),
        ));
    };
    let destination_given = map.contains_key("destination");
    for (key, v) in map {
        let value = match (key.as_str(), v) {
            ("destination", serde_json::Value::String(j)) => ContextValue::Jurisdiction(j),
            ("preset", serde_json::Value::String(p)) => {
                let preset = p.parse::<LatencyPreset>().map_err(bad)?;
                if !destination_given {
                    request = request.with(
                        "destination",
                        ContextValue::Jurisdiction(destination_of(preset).into()),
                    );
                }
                ContextValue::Str(preset.name().into())
            }
            (_, serde_json::Value::String(text)) => ContextValue::Str(text),
            (_, serde_json::Value::Bool(b)) => ContextValue::Bool(b),
            (_, serde_json::Value::Number(n)) => match n.as_i64() {
                Some(n) => ContextValue::Long(n),
                None => return Err(bad(format!("{key}: {n} is not a whole number"))),
            },
            (_, other) => {
                return Err(bad(format!(
                    "{key}: {other} is not a string, whole number or boolean"
                )));
            }
        };
        request = request.with(&key, value);
    }
    Ok(request)
}

/// `veyra policy check`.
pub fn policy_check(
    request: &crate::governance::PolicyRequest,
    json: bool,
    loaded: &LoadedConfig,
) -> Result<ExitCode, VeyraError> {
    use crate::governance::PolicyEngine;
    let engine = crate::governance::CedarEngine::from_config(&loaded.config.governance)?;
    let decision = engine.decide(request)?;
    let mut out = String::new();
    if json {
        let doc = serde_json::json!({
            "decision": decision.name(),
            "request": request,
            "policies": decision.policies,
            "reason": decision.reason(request),
            "errors": decision.errors,
        });
        out = crate::sanitize::to_json_pretty(&doc)
            .map_err(|e| VeyraError::Runtime(format!("encoding the decision: {e}")))?;
        out.push('\n');
    } else {
        out.push_str(&format!("{:<5}  {}\n", decision.name(), request.describe()));
        if decision.policies.is_empty() {
            out.push_str("       no policy matched: denied by default\n");
        }
        for p in &decision.policies {
            let jurisdiction = p
                .annotations
                .get("jurisdiction")
                .map(|j| format!(" [{j}]"))
                .unwrap_or_default();
            out.push_str(&format!(
                "       {} {}{jurisdiction}",
                p.effect.name(),
                p.id
            ));
            if let Some(reason) = p.annotations.get("reason") {
                out.push_str(&format!(": {reason}"));
            }
            out.push('\n');
        }
        for e in &decision.errors {
            out.push_str(&format!("       skipped (evaluation error): {e}\n"));
        }
        let context: Vec<String> = request
            .context
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    serde_json::to_string(v).unwrap_or_else(|_| "?".into())
                )
            })
            .collect();
        out.push_str(&format!("context  {}\n", context.join(" ")));
    }
    print_all(&out)?;
    Ok(if decision.allowed {
        ExitCode::Success
    } else {
        ExitCode::Refused
    })
}

/// `veyra policy list`.
pub fn policy_list(json: bool, loaded: &LoadedConfig) -> Result<ExitCode, VeyraError> {
    use crate::governance::PolicyEngine;
    let engine = crate::governance::CedarEngine::from_config(&loaded.config.governance)?;
    let policies = engine.policies();
    let mut out = String::new();
    if json {
        out = json_lines(&policies, "a policy")?;
    } else {
        out.push_str(&format!(
            "{} policies from {}\n",
            policies.len(),
            engine.sources().join(", ")
        ));
        let width = policies
            .iter()
            .map(|p| p.id.len())
            .max()
            .unwrap_or(2)
            .max(2);
        for p in &policies {
            let get = |k: &str| p.annotations.get(k).map_or("-", String::as_str);
            out.push_str(&format!(
                "{:<6} {:<width$}  {:<14} {}\n",
                p.effect.name(),
                p.id,
                get("jurisdiction"),
                get("reason"),
            ));
        }
    }
    print_all(&out)
}

/// `veyra policy replay`: the candidate set loaded (schema and entities as configured), the
/// configured (or `db`) trail verified, every `POLICY_CHECK` in the window decided again.
/// Exit 0 when nothing flips, 5 when something does.
pub fn policy_replay(
    candidate: &std::path::Path,
    window: &crate::governance::replay::ReplayWindow,
    db: Option<&std::path::Path>,
    json: bool,
    loaded: &LoadedConfig,
) -> Result<ExitCode, VeyraError> {
    let mut governance = loaded.config.governance.clone();
    governance.policy_file = Some(candidate.to_path_buf());
    let engine = crate::governance::CedarEngine::from_config(&governance)?;
    let trail = super::audit::open_configured(db, loaded)?;
    let report = crate::governance::replay::replay(&trail, &engine, window)
        .map_err(|crate::governance::replay::ReplayError::Audit(e)| VeyraError::from(e))?;
    let out = if json {
        let mut text = crate::sanitize::to_json_pretty(&report)
            .map_err(|e| VeyraError::Runtime(format!("encoding the report: {e}")))?;
        text.push('\n');
        text
    } else {
        replay_text(&report, candidate)
    };
    print_all(&out)?;
    let unreadable: u64 = report.unreadable.values().sum();
    if unreadable > 0 {
        eprintln!(
            "veyra: {unreadable} recorded decisions could not be rebuilt and were not replayed \
             (see `unreadable` in --json): the answer covers the rest only"
        );
    }
    Ok(if report.flips() {
        ExitCode::Flips
    } else {
        ExitCode::Success
    })
}

/// The report for a person.
fn replay_text(r: &crate::governance::replay::ReplayReport, candidate: &std::path::Path) -> String {
    use crate::sanitize::sanitize_line;
    let short = |h: &str| h.chars().take(12).collect::<String>();
    let mut out = format!(
        "replayed {} POLICY_CHECK entries (log verified: {} entries) under {} ({})\n",
        r.decided,
        r.verified_entries,
        sanitize_line(&candidate.display().to_string()),
        r.candidate_set
            .as_deref()
            .map_or_else(|| "no hash".into(), short),
    );
    out.push_str(&format!(
        "  unchanged     {}\n  allow → deny  {}\n  deny → allow  {}\n",
        r.unchanged, r.allow_to_deny, r.deny_to_allow
    ));
    let unreadable: u64 = r.unreadable.values().sum();
    if unreadable > 0 {
        out.push_str(&format!("  not rebuilt   {unreadable}"));
        let why: Vec<String> = r
            .unreadable
            .iter()
            .map(|(why, n)| format!("{n}: {why}"))
            .collect();
        out.push_str(&format!(" ({})\n", why.join("; ")));
    }
    if r.recorded_sets.len() > 1 || r.recorded_sets.contains_key("unrecorded") {
        let sets: Vec<String> = r
            .recorded_sets
            .iter()
            .map(|(set, n)| format!("{} ×{n}", short(set)))
            .collect();
        out.push_str(&format!("recorded under {}\n", sets.join(", ")));
    }
    if !r.by_policy.is_empty() {
        let width = r
            .by_policy
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(6)
            .max(6);
        out.push_str(&format!("{:<width$}  allow→deny  deny→allow\n", "policy"));
        for (id, f) in &r.by_policy {
            out.push_str(&format!(
                "{:<width$}  {:>10}  {:>10}\n",
                sanitize_line(id),
                f.allow_to_deny,
                f.deny_to_allow
            ));
        }
    }
    if !r.examples.is_empty() {
        out.push_str("first flips:\n");
        for f in &r.examples {
            out.push_str(&format!(
                "  #{} {}  {} {} {}  {} → {}  ({})\n",
                f.seq,
                f.timestamp.format("%Y-%m-%d %H:%M:%S"),
                sanitize_line(&f.principal),
                sanitize_line(&f.action),
                sanitize_line(&f.resource),
                f.recorded,
                f.candidate,
                sanitize_line(&f.policies.join(", "))
            ));
        }
    }
    if !r.flips() {
        out.push_str("nothing would flip\n");
    }
    out
}
