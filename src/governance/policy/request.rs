//! The request vocabulary: what the core asks ([`PolicyRequest`]: a principal, an action, a
//! [`Resource`] written `kind:id`, and a context of [`ContextValue`]s) and what an engine answers
//! ([`PolicyDecision`], naming its [`DecidingPolicy`]s), plus [`PolicyInfo`] for listings. Plain
//! data, serialized into the audit trail as it is; the Cedar engine ([`super::cedar`]) turns it
//! into Cedar's types.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::error::PolicyError;
use crate::config::LatencyPreset;
use crate::config::suggest::did_you_mean;

/// The kinds of resource a request can name, as `kind:id`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::EnumString, strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ResourceKind {
    /// A model backend (`backend:openai`).
    Backend,
    /// A tool (`tool:shell`).
    Tool,
    /// A file (`file:/path`).
    File,
    /// A link preset (`link:mars`).
    Link,
}

impl ResourceKind {
    /// Every kind, in the order help texts list them.
    pub const ALL: [ResourceKind; 4] = [
        ResourceKind::Backend,
        ResourceKind::Tool,
        ResourceKind::File,
        ResourceKind::Link,
    ];

    /// The prefix used in `kind:id`.
    pub fn prefix(self) -> &'static str {
        self.into()
    }

    /// The Cedar entity type, without namespace.
    pub(super) fn cedar_type(self) -> &'static str {
        match self {
            ResourceKind::Backend => "Backend",
            ResourceKind::Tool => "Tool",
            ResourceKind::File => "File",
            ResourceKind::Link => "Link",
        }
    }
}

/// A resource, written (and serialized) `kind:id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    /// What it is.
    pub kind: ResourceKind,
    /// Its name (backend or tool name, path, preset).
    pub id: String,
}

impl Resource {
    /// A backend by name.
    pub fn backend(name: impl Into<String>) -> Self {
        Resource {
            kind: ResourceKind::Backend,
            id: name.into(),
        }
    }

    /// A link preset.
    pub fn link(preset: LatencyPreset) -> Self {
        Resource {
            kind: ResourceKind::Link,
            id: preset.name().into(),
        }
    }
}

impl Serialize for Resource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.id)
    }
}

impl FromStr for Resource {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, PolicyError> {
        let kinds = || {
            ResourceKind::ALL
                .iter()
                .map(|k| format!("{}:NAME", k.prefix()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some((prefix, id)) = s.split_once(':') else {
            return Err(PolicyError::Request(format!(
                "resource '{s}' has no kind; write one of {}",
                kinds()
            )));
        };
        let Ok(kind) = prefix.parse::<ResourceKind>() else {
            return Err(PolicyError::Request(format!(
                "unknown resource kind '{prefix}'{}; write one of {}",
                did_you_mean(prefix, ResourceKind::ALL.iter().map(|k| k.prefix())),
                kinds()
            )));
        };
        if id.is_empty() {
            return Err(PolicyError::Request(format!(
                "resource '{s}' has an empty name; write {prefix}:NAME"
            )));
        }
        Ok(Resource {
            kind,
            id: id.to_string(),
        })
    }
}

/// The jurisdiction at the far end of a link preset: where work sent over it goes.
pub fn destination_of(preset: LatencyPreset) -> &'static str {
    match preset {
        LatencyPreset::Earth => "Earth",
        LatencyPreset::Lunar => "Moon",
        LatencyPreset::Mars => "Mars",
        LatencyPreset::DeepSpace => "Deep-Space",
        LatencyPreset::Custom => "Custom",
    }
}

/// One value of a request's context.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ContextValue {
    /// A string.
    Str(String),
    /// A whole number.
    Long(i64),
    /// A boolean.
    Bool(bool),
    /// A jurisdiction (Cedar type `Veyra::Jurisdiction`).
    Jurisdiction(String),
}

/// A question for the policy engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyRequest {
    /// The actor asking (`operator`, `agent`, `benchmark`, …).
    pub principal: String,
    /// The action (`execute`, `switch_backend`, …).
    pub action: String,
    /// What it acts on.
    pub resource: Resource,
    /// The action's context, as the schema declares it.
    pub context: BTreeMap<String, ContextValue>,
}

impl PolicyRequest {
    /// A request with the context every action has: the link `preset` and its `destination`.
    pub fn new(
        principal: impl Into<String>,
        action: impl Into<String>,
        resource: Resource,
        preset: LatencyPreset,
    ) -> Self {
        let mut context = BTreeMap::new();
        context.insert("preset".into(), ContextValue::Str(preset.name().into()));
        context.insert(
            "destination".into(),
            ContextValue::Jurisdiction(destination_of(preset).into()),
        );
        PolicyRequest {
            principal: principal.into(),
            action: action.into(),
            resource,
            context,
        }
    }

    /// Adds or replaces one context attribute.
    pub fn with(mut self, key: &str, value: ContextValue) -> Self {
        self.context.insert(key.to_string(), value);
        self
    }

    /// `operator → execute → backend:mock`, for messages.
    pub fn describe(&self) -> String {
        format!("{} → {} → {}", self.principal, self.action, self.resource)
    }
}

/// `permit` or `forbid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum PolicyEffect {
    /// Allows when it matches (unless a forbid matches too).
    Permit,
    /// Denies when it matches, whatever permits.
    Forbid,
}

impl PolicyEffect {
    /// `permit` or `forbid`.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// A policy that decided a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecidingPolicy {
    /// The policy's id: its `@id`, else `<file>#<n>`.
    pub id: String,
    /// Its effect.
    pub effect: PolicyEffect,
    /// Its annotations (`reason`, `jurisdiction`, …), without `id`.
    pub annotations: BTreeMap<String, String>,
}

/// The answer to a [`PolicyRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDecision {
    /// Allowed or not.
    pub allowed: bool,
    /// The policies that decided: the matching forbids on a deny, the matching permits on an
    /// allow; empty on a deny no policy matched (deny by default).
    pub policies: Vec<DecidingPolicy>,
    /// Policies skipped because they failed to evaluate (`<id>: <error>`).
    pub errors: Vec<String>,
}

impl PolicyDecision {
    /// `allow` or `deny`.
    pub fn name(&self) -> &'static str {
        if self.allowed { "allow" } else { "deny" }
    }

    /// The ids of the deciding policies, or `default-deny`/`none`.
    pub fn rule(&self) -> String {
        if self.policies.is_empty() {
            if self.allowed { "none" } else { "default-deny" }.to_string()
        } else {
            self.policies
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// A sentence for the operator: the deciding policies' `@reason`s.
    pub fn reason(&self, request: &PolicyRequest) -> String {
        let reasons: Vec<String> = self
            .policies
            .iter()
            .map(|p| match p.annotations.get("reason") {
                Some(r) => match p.annotations.get("jurisdiction") {
                    Some(j) => format!("{r} ({j}, policy {})", p.id),
                    None => format!("{r} (policy {})", p.id),
                },
                None => format!("policy {}", p.id),
            })
            .collect();
        if reasons.is_empty() {
            if self.allowed {
                format!("{} allowed", request.describe())
            } else {
                format!(
                    "no policy permits {} (deny by default); add a permit to the policy file",
                    request.describe()
                )
            }
        } else {
            reasons.join("; ")
        }
    }

    /// The `@jurisdiction`s of the deciding policies, without repeats.
    pub fn jurisdictions(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for p in &self.policies {
            if let Some(j) = p.annotations.get("jurisdiction")
                && !seen.contains(j)
            {
                seen.push(j.clone());
            }
        }
        seen
    }
}

/// One loaded policy, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyInfo {
    /// The policy's id.
    pub id: String,
    /// Its effect.
    pub effect: PolicyEffect,
    /// Its annotations, without `id`.
    pub annotations: BTreeMap<String, String>,
    /// The file it came from.
    pub source: String,
    /// The policy as Cedar text.
    pub text: String,
}
