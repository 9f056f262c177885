//! The safety boundary: hard limits that no policy can lift.
//!
//! [`SafetyBoundary::check_operation`] returns a [`SafetyVerdict`]:
//! - `Blocked` when it is in `prohibited_operations`, or irreversible while `reversible_only`
//!   is on — always carrying the [`Violation`] to record and show, so a refusal without a
//!   reason cannot be written and the gate cannot fail open;
//! - `NeedsConfirmation` when it is in `require_confirmation` (the operator answers yes/no;
//!   a "no" becomes a violation too);
//! - `Allowed` otherwise.
//!
//! Operation names are matched exactly and case-insensitively. An execution is the operation
//! `execute` on resource `backend:<name>`, and is also checked as `execute:<name>`, so
//! `prohibited_operations: [execute:openai]` keeps one backend off limits.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::GovernanceConfig;

/// How an operation fares at the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SafetyLevel {
    /// Go ahead.
    Allowed,
    /// Ask the operator first.
    NeedsConfirmation,
    /// Never.
    Blocked,
}

impl SafetyLevel {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// An operation the boundary refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The operation, as checked.
    pub operation: String,
    /// `blocked` (or `needs_confirmation` for a confirmation the operator denied).
    pub level: SafetyLevel,
    /// The rule that refused it: `prohibited_operations`, `reversible_only` or
    /// `require_confirmation`.
    pub rule: String,
    /// A sentence for the operator.
    pub reason: String,
    /// Who asked for it.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// What the boundary says about one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafetyVerdict {
    /// Go ahead.
    Allowed,
    /// Ask the operator first; `rule` names the rule that asks.
    NeedsConfirmation {
        /// Always `require_confirmation` today; kept so the modal can name it.
        rule: String,
    },
    /// Never; the violation says which rule and why.
    Blocked(Violation),
}

impl SafetyVerdict {
    /// The verdict's level.
    pub fn level(&self) -> SafetyLevel {
        match self {
            SafetyVerdict::Allowed => SafetyLevel::Allowed,
            SafetyVerdict::NeedsConfirmation { .. } => SafetyLevel::NeedsConfirmation,
            SafetyVerdict::Blocked(_) => SafetyLevel::Blocked,
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SafetyBoundary {
    enabled: bool,
    reversible_only: bool,
    prohibited: BTreeSet<String>,
    require_confirmation: BTreeSet<String>,
}

fn normalise(names: &[String]) -> BTreeSet<String> {
    names
        .iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .collect()
}

impl SafetyBoundary {
    /// The boundary `governance:` describes (`safety: false` allows everything).
    pub fn from_config(g: &GovernanceConfig) -> Self {
        SafetyBoundary {
            enabled: g.safety,
            reversible_only: g.reversible_only,
            prohibited: normalise(&g.prohibited_operations),
            require_confirmation: normalise(&g.require_confirmation),
        }
    }

    /// A boundary with explicit rules (enabled).
    pub fn new(reversible_only: bool, prohibited: &[&str], require_confirmation: &[&str]) -> Self {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        SafetyBoundary {
            enabled: true,
            reversible_only,
            prohibited: normalise(&owned(prohibited)),
            require_confirmation: normalise(&owned(require_confirmation)),
        }
    }

    /// Classifies one operation on behalf of `actor`.
    pub fn check_operation(
        &self,
        operation: &str,
        is_reversible: bool,
        actor: &str,
    ) -> SafetyVerdict {
        self.check_any(&[operation], is_reversible, actor)
    }

    /// Classifies an operation known by several names (the most specific last); the strictest
    /// rule that matches any name wins.
    pub fn check_any(&self, names: &[&str], is_reversible: bool, actor: &str) -> SafetyVerdict {
        if !self.enabled {
            return SafetyVerdict::Allowed;
        }
        // Built only when there is something to report.
        let display = || names.last().copied().unwrap_or_default().to_string();
        let violation = |rule: &str, reason: String| Violation {
            operation: display(),
            level: SafetyLevel::Blocked,
            rule: rule.to_string(),
            reason,
            actor: actor.to_string(),
            at: Utc::now(),
        };
        let listed = |set: &BTreeSet<String>, name: &str| {
            set.iter().any(|entry| entry.eq_ignore_ascii_case(name))
        };
        if let Some(hit) = names.iter().find(|n| listed(&self.prohibited, n)) {
            let v = violation(
                "prohibited_operations",
                format!("'{hit}' is in governance.prohibited_operations"),
            );
            return SafetyVerdict::Blocked(v);
        }
        if self.reversible_only && !is_reversible {
            let v = violation(
                "reversible_only",
                format!(
                    "'{}' cannot be undone and governance.reversible_only is on",
                    display()
                ),
            );
            return SafetyVerdict::Blocked(v);
        }
        if names.iter().any(|n| listed(&self.require_confirmation, n)) {
            return SafetyVerdict::NeedsConfirmation {
                rule: "require_confirmation".into(),
            };
        }
        SafetyVerdict::Allowed
    }

    /// The violation to record when the operator says no to a confirmation.
    pub fn denied(operation: &str, actor: &str, by: &str) -> Violation {
        Violation {
            operation: operation.to_string(),
            level: SafetyLevel::NeedsConfirmation,
            rule: "require_confirmation".into(),
            reason: if by.contains("no terminal") {
                format!(
                    "'{operation}' needs confirmation and there is no terminal to ask on; pass --yes to allow it"
                )
            } else {
                format!("'{operation}' needs confirmation and was denied ({by})")
            },
            actor: actor.to_string(),
            at: Utc::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_are_the_serde_names() {
        for (level, name) in [
            (SafetyLevel::Allowed, "allowed"),
            (SafetyLevel::NeedsConfirmation, "needs_confirmation"),
            (SafetyLevel::Blocked, "blocked"),
        ] {
            assert_eq!(level.name(), name);
            assert_eq!(
                serde_json::to_string(&level).unwrap(),
                format!("\"{name}\"")
            );
        }
    }

    #[test]
    fn prohibited_operations_are_blocked_case_insensitively() {
        let b = SafetyBoundary::new(false, &["delete_all", "execute:openai"], &[]);
        let SafetyVerdict::Blocked(v) = b.check_operation("DELETE_ALL", true, "agent") else {
            panic!("a prohibited operation must be blocked");
        };
        assert_eq!(
            (v.rule.as_str(), v.actor.as_str()),
            ("prohibited_operations", "agent")
        );
        assert_eq!(
            b.check_any(&["execute", "execute:openai"], true, "operator")
                .level(),
            SafetyLevel::Blocked
        );
        assert_eq!(
            b.check_any(&["execute", "execute:mock"], true, "operator")
                .level(),
            SafetyLevel::Allowed
        );
    }

    #[test]
    fn reversible_only_blocks_what_cannot_be_undone() {
        let b = SafetyBoundary::new(true, &[], &["save_file"]);
        let SafetyVerdict::Blocked(v) = b.check_operation("format_disk", false, "agent") else {
            panic!("an irreversible operation must be blocked in reversible_only mode");
        };
        assert_eq!(v.rule, "reversible_only");
        assert_eq!(
            b.check_operation("save_file", true, "agent").level(),
            SafetyLevel::NeedsConfirmation
        );
        assert_eq!(
            b.check_operation("read_file", true, "agent").level(),
            SafetyLevel::Allowed
        );
    }

    #[test]
    fn a_disabled_boundary_allows_everything() {
        let g = GovernanceConfig {
            safety: false,
            ..GovernanceConfig::default()
        };
        let b = SafetyBoundary::from_config(&g);
        assert_eq!(
            b.check_operation("delete_all", false, "agent").level(),
            SafetyLevel::Allowed
        );
        let on = SafetyBoundary::from_config(&GovernanceConfig::default());
        assert_eq!(
            on.check_operation("delete_all", true, "agent").level(),
            SafetyLevel::Blocked
        );
    }
}
