//! The policy engine: who may do what, where, decided by Cedar policies.
//!
//! Veyra asks one question before it acts: may this principal (an actor: `operator`, `agent`,
//! `benchmark`) take this action (`execute`, `switch_backend`, `switch_preset`, `invoke_tool`,
//! `read_file`, `write_file`) on this resource (a backend, tool, file or link preset), in this
//! context? [`PolicyEngine::decide`] answers allow or deny, with the policies that decided it
//! and their annotations (`@id`, `@reason`, `@jurisdiction`), and the core records every
//! answer as a `POLICY_CHECK` audit entry.
//!
//! [`CedarEngine`] answers with [Cedar](https://www.cedarpolicy.com): deny by default, a
//! matching `forbid` overrides every `permit`. Jurisdictions are an entity hierarchy
//! (`Jurisdiction::"Mars-Habitat-1" in Jurisdiction::"Mars"`), so one request is checked against
//! the rule sets of every jurisdiction its principal, resource or destination belongs to.
//!
//! Policies, schema and entities come from `governance.policy_file` (a `.cedar` file or a
//! directory of them), `governance.policy_schema` and `governance.policy_entities`; each falls
//! back to the file shipped in `configs/policies/`, compiled in. Every policy is validated
//! strictly against the schema at start-up: a policy that fails to parse or validate stops
//! Veyra with `file:line:column` and Cedar's message.
//!
//! Resources are written `kind:id` everywhere (`backend:mock`, `tool:shell`,
//! `file:/tmp/notes.txt`, `link:mars`), as in the audit trail.
//!
//! The parts: `request` holds the vocabulary of questions and answers, `sources` loads the
//! policy, schema and entities texts, `cedar` is the engine built from them, and `error`
//! says what went wrong and where. Every engine answers through [`PolicyEngine`].

mod cedar;
mod error;
mod request;
mod sources;

pub use cedar::{CedarEngine, NAMESPACE};
pub use error::{PolicyError, Problem};
pub use request::{
    ContextValue, DecidingPolicy, PolicyDecision, PolicyEffect, PolicyInfo, PolicyRequest,
    Resource, ResourceKind, destination_of,
};
pub use sources::{
    DEFAULT_ENTITIES, DEFAULT_POLICY, DEFAULT_SCHEMA, MAX_SOURCE_BYTES, PolicySources, SourceText,
};

/// Decides policy requests. The core holds one; tests and embedders may supply their own.
pub trait PolicyEngine: Send + Sync {
    /// Answers one request.
    fn decide(&self, request: &PolicyRequest) -> Result<PolicyDecision, PolicyError>;
    /// The loaded policies.
    fn policies(&self) -> Vec<PolicyInfo>;
    /// Where the policies came from (files, or the built-in default).
    fn sources(&self) -> Vec<String>;
    /// The hash of the policy set that decides (SHA-256, hex), recorded with every decision
    /// so `veyra policy replay` can tell which set decided what; `None` for an engine that
    /// has no such identity.
    fn set_hash(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests;
