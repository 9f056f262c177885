//! Policy changes replayed before they ship: every recorded `POLICY_CHECK` decided again under a
//! candidate policy set, and the decisions that would flip.
//!
//! A `POLICY_CHECK` entry holds the whole question — principal (its actor), action, resource and
//! the context the core sent (`metadata.context`) — so [`replay`] rebuilds each request exactly
//! and asks the candidate engine. The trail is verified first: a replay over a log that does not
//! verify would answer the governance team's question with entries anyone could have written.
//!
//! The context is recorded as plain JSON, where a jurisdiction and a string look alike: the one
//! jurisdiction-typed attribute Veyra sends is `destination` (`veyra policy check --context`
//! reads it the same way), every other string is a string.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::audit::{AuditEntry, AuditEventType, AuditFilter};
use super::policy::{ContextValue, PolicyEngine, PolicyRequest, Resource};
use super::trail::AuditTrail;

/// Flips of each direction kept as examples.
pub const EXAMPLES: usize = 5;

/// Which entries to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// Not before.
    pub since: Option<DateTime<Utc>>,
    /// Not after.
    pub until: Option<DateTime<Utc>>,
}

/// One decision that would flip.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flip {
    /// The entry.
    pub seq: u64,
    /// When it was decided.
    pub timestamp: DateTime<Utc>,
    /// Who asked.
    pub principal: String,
    /// For what.
    pub action: String,
    /// On what.
    pub resource: String,
    /// `allow` or `deny`, as recorded.
    pub recorded: String,
    /// `allow` or `deny`, under the candidate.
    pub candidate: String,
    /// The candidate's deciding policies (`default-deny` when none permits).
    pub policies: Vec<String>,
}

/// Flips counted for one policy id (the candidate's deciding policy, or `default-deny`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyFlips {
    /// Allowed as recorded, denied under the candidate.
    pub allow_to_deny: u64,
    /// Denied as recorded, allowed under the candidate.
    pub deny_to_allow: u64,
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplayReport {
    /// Entries in the trail, all verified.
    pub verified_entries: u64,
    /// The candidate set's hash.
    pub candidate_set: Option<String>,
    /// `POLICY_CHECK` entries in the window, decided again.
    pub decided: u64,
    /// Decided the same.
    pub unchanged: u64,
    /// Allowed as recorded, denied under the candidate.
    pub allow_to_deny: u64,
    /// Denied as recorded, allowed under the candidate.
    pub deny_to_allow: u64,
    /// Per deciding policy of the candidate.
    pub by_policy: BTreeMap<String, PolicyFlips>,
    /// The first [`EXAMPLES`] flips of each direction, in log order.
    pub examples: Vec<Flip>,
    /// Entries decided by each recorded set (`unrecorded` for entries written before sets
    /// were recorded).
    pub recorded_sets: BTreeMap<String, u64>,
    /// Entries whose question could not be rebuilt, and why (counted by reason).
    pub unreadable: BTreeMap<String, u64>,
}

impl ReplayReport {
    /// True when some decision would flip.
    pub fn flips(&self) -> bool {
        self.allow_to_deny + self.deny_to_allow > 0
    }
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The trail does not verify (or could not be read).
    #[error(transparent)]
    Audit(#[from] super::AuditError),
}

/// The question `entry` recorded, rebuilt; why not, when it cannot be.
pub fn recorded_request(entry: &AuditEntry) -> Result<PolicyRequest, String> {
    let resource: Resource = entry
        .resource
        .parse()
        .map_err(|_| "a resource not written kind:id".to_string())?;
    let mut context = BTreeMap::new();
    if let Some(recorded) = entry.metadata.get("context") {
        let Some(map) = recorded.as_object() else {
            return Err("a context that is not an object".into());
        };
        for (key, value) in map {
            let value = match value {
                serde_json::Value::String(s) if key == "destination" => {
                    ContextValue::Jurisdiction(s.clone())
                }
                serde_json::Value::String(s) => ContextValue::Str(s.clone()),
                serde_json::Value::Bool(b) => ContextValue::Bool(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(n) => ContextValue::Long(n),
                    None => return Err("a context number that is not an integer".into()),
                },
                _ => return Err("a context value that is not a string, integer or boolean".into()),
            };
            context.insert(key.clone(), value);
        }
    }
    Ok(PolicyRequest {
        principal: entry.actor.clone(),
        action: entry.action.clone(),
        resource,
        context,
    })
}

/// Verifies `trail`, then decides every `POLICY_CHECK` entry in `window` again under
/// `candidate` and reports what would flip.
pub fn replay(
    trail: &AuditTrail,
    candidate: &dyn PolicyEngine,
    window: &ReplayWindow,
) -> Result<ReplayReport, ReplayError> {
    let verified = trail.verify_integrity()?;
    let mut report = ReplayReport {
        verified_entries: verified.entries,
        candidate_set: candidate.set_hash(),
        ..ReplayReport::default()
    };
    let filter = AuditFilter {
        event_type: Some(AuditEventType::PolicyCheck),
        actor: None,
        since: window.since,
        until: window.until,
    };
    let mut examples = (0usize, 0usize);
    // Only what was verified: an entry appended since (entries are numbered from 1) waits for
    // the next replay.
    let verified_up_to = verified.entries;
    trail.scan_matching(&filter, &mut |entry| {
        if entry.seq > verified_up_to {
            return;
        }
        report.decided += 1;
        let set = entry
            .metadata
            .get("policy_set")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unrecorded");
        *report.recorded_sets.entry(set.to_string()).or_default() += 1;
        let request = match recorded_request(entry) {
            Ok(r) => r,
            Err(why) => {
                *report.unreadable.entry(why).or_default() += 1;
                return;
            }
        };
        // An engine that cannot decide denies, as the gate does (fail closed).
        let decision = candidate.decide(&request);
        let (allowed, policies) = match &decision {
            Ok(d) => (
                d.allowed,
                if d.policies.is_empty() {
                    vec![d.rule()]
                } else {
                    d.policies.iter().map(|p| p.id.clone()).collect()
                },
            ),
            Err(_) => (false, vec!["undecidable".to_string()]),
        };
        let recorded_allow = entry.outcome == "allow";
        if allowed == recorded_allow {
            report.unchanged += 1;
            return;
        }
        let shown = if recorded_allow {
            report.allow_to_deny += 1;
            examples.0 += 1;
            examples.0 <= EXAMPLES
        } else {
            report.deny_to_allow += 1;
            examples.1 += 1;
            examples.1 <= EXAMPLES
        };
        for id in &policies {
            let flips = report.by_policy.entry(id.clone()).or_default();
            if recorded_allow {
                flips.allow_to_deny += 1;
            } else {
                flips.deny_to_allow += 1;
            }
        }
        if shown {
            report.examples.push(Flip {
                seq: entry.seq,
                timestamp: entry.timestamp,
                principal: entry.actor.clone(),
                action: entry.action.clone(),
                resource: entry.resource.clone(),
                recorded: entry.outcome.clone(),
                candidate: if allowed { "allow" } else { "deny" }.into(),
                policies,
            });
        }
    })?;
    Ok(report)
}

#[cfg(test)]
mod tests;
