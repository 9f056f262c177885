//! The Cedar engine: [`CedarEngine::load`] parses the schema, the entities and every policy
//! of the [`PolicySources`], names each policy (its `@id`, else `<file>#<n>`) and validates it
//! strictly against the schema; [`PolicyEngine::decide`] turns a [`PolicyRequest`] into Cedar's
//! types and asks Cedar, with two memos that make a decision cheap without changing it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision, Effect, Entities, EntityId, EntityTypeName,
    EntityUid, Policy, PolicyId, PolicySet, PrincipalConstraint, Request, ResourceConstraint,
    RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;

use super::PolicyEngine;
use super::error::{PolicyError, Problem};
use super::request::{
    ContextValue, DecidingPolicy, PolicyDecision, PolicyEffect, PolicyInfo, PolicyRequest,
    Resource, ResourceKind,
};
use super::sources::{PolicySources, SourceText};
use crate::config::GovernanceConfig;
use crate::config::suggest::did_you_mean;

/// Cedar namespace of Veyra's types and actions.
pub const NAMESPACE: &str = "Veyra";

/// The `Veyra::<name>` entity type.
fn type_name(name: &str) -> EntityTypeName {
    // Cannot fail: NAMESPACE and every name passed here are plain identifiers.
    #[allow(clippy::expect_used)]
    EntityTypeName::from_str(&format!("{NAMESPACE}::{name}"))
        .expect("Veyra's entity type names are valid Cedar identifiers")
}

/// Entries each memo of [`CedarEngine`] holds before it starts over.
const MEMO_LIMIT: usize = 4096;

/// Cedar's answers from policies validated against Veyra's schema.
///
/// Two memos keep a decision cheap without changing it:
/// - per (principal, action, resource), the policies whose scope matches them, with that
///   scope lifted. Cedar evaluates every policy of the set it is given; a policy whose scope
///   does not match evaluates to false without error, so leaving it out changes neither the
///   decision nor the policies and errors reported, and a policy whose scope is known to match
///   is decided by its conditions alone (a property test checks against the full set).
/// - the shapes of requests already validated against the schema: principal, action,
///   resource, context keys and value types (and jurisdiction ids, which an enumerated entity
///   type would constrain). A request of a validated shape is valid whatever its string,
///   number and boolean values are, so it is built without validating again.
pub struct CedarEngine {
    pub(super) policies: PolicySet,
    pub(super) schema: Schema,
    pub(super) entities: Entities,
    pub(super) authorizer: Authorizer,
    /// Policy id → the file it came from.
    origin: BTreeMap<String, String>,
    /// Policy id → how it is reported when it decides.
    deciding: HashMap<String, DecidingPolicy>,
    sources: Vec<String>,
    /// [`PolicySources::hash`] of what it was loaded from.
    hash: String,
    schema_name: String,
    pub(super) actor: EntityTypeName,
    pub(super) action: EntityTypeName,
    jurisdiction: EntityTypeName,
    resource_types: [EntityTypeName; 4],
    actions: Vec<String>,
    scoped: RwLock<HashMap<(String, String, Resource), Arc<PolicySet>>>,
    validated: RwLock<HashSet<String>>,
}

impl fmt::Debug for CedarEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CedarEngine")
            .field("sources", &self.sources)
            .field("policies", &self.origin.len())
            .finish_non_exhaustive()
    }
}

impl CedarEngine {
    /// The engine `governance:` describes.
    pub fn from_config(g: &GovernanceConfig) -> Result<Self, PolicyError> {
        Self::load(&PolicySources::from_config(g)?)
    }

    /// The built-in default policy.
    pub fn builtin() -> Result<Self, PolicyError> {
        Self::load(&PolicySources::builtin())
    }

    /// Parses the schema, the entities and every policy file, and validates the policies
    /// strictly against the schema. Every problem found is reported, each located.
    pub fn load(sources: &PolicySources) -> Result<Self, PolicyError> {
        let schema = match Schema::from_cedarschema_str(&sources.schema.text) {
            Ok((schema, warnings)) => {
                for w in warnings {
                    tracing::warn!(schema = %sources.schema.name, warning = %w, "policy schema warning");
                }
                schema
            }
            Err(e) => return Err(PolicyError::Invalid(vec![sources.schema.problem(&e)])),
        };
        let entities = load_entities(&sources.entities, &schema)?;

        let validator = Validator::new(schema.clone());
        let mut problems = Vec::new();
        let mut policies = PolicySet::new();
        let mut origin = BTreeMap::new();
        for source in &sources.policies {
            let parsed = match PolicySet::from_str(&source.text) {
                Ok(p) => p,
                Err(errors) => {
                    problems.extend(errors.iter().map(|e| source.problem(e)));
                    continue;
                }
            };
            if parsed.templates().next().is_some() {
                problems.push(Problem {
                    path: source.name.clone(),
                    line: 0,
                    column: 0,
                    message: "policy templates (?principal, ?resource) are not supported; name \
                              the principal and resource in the policy"
                        .into(),
                });
                continue;
            }
            let file = Path::new(&source.name)
                .file_name()
                .map_or_else(|| source.name.clone(), |f| f.to_string_lossy().into_owned())
                .trim_end_matches('>')
                .to_string();
            // Cedar names parsed policies `policy0`, `policy1`, … in file order.
            let mut numbered: Vec<(usize, &Policy)> = parsed
                .policies()
                .map(|p| {
                    let n = p
                        .id()
                        .to_string()
                        .trim_start_matches("policy")
                        .parse::<usize>()
                        .unwrap_or(usize::MAX);
                    (n, p)
                })
                .collect();
            numbered.sort_by_key(|(n, _)| *n);
            let mut renamed = PolicySet::new();
            for (n, policy) in numbered {
                let id = match policy.annotation("id") {
                    Some(id) => id.to_string(),
                    None => format!("{file}#{}", n.saturating_add(1)),
                };
                if let Some(first) = origin.get(&id) {
                    problems.push(Problem {
                        path: source.name.clone(),
                        line: 0,
                        column: 0,
                        message: format!(
                            "two policies are named '{id}' (the other is in {first}); give each \
                             policy its own @id"
                        ),
                    });
                    continue;
                }
                origin.insert(id.clone(), source.name.clone());
                if let Err(e) = renamed.add(policy.new_id(PolicyId::new(&id))) {
                    problems.push(source.problem(&e));
                }
            }
            let result = validator.validate(&renamed, ValidationMode::Strict);
            for w in result.validation_warnings() {
                tracing::warn!(file = %source.name, warning = %w, "policy validation warning");
            }
            let before = problems.len();
            problems.extend(result.validation_errors().map(|e| source.problem(e)));
            if problems.len() == before {
                for policy in renamed.policies() {
                    if let Err(e) = policies.add(policy.clone()) {
                        problems.push(source.problem(&e));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems));
        }
        let deciding = policies
            .policies()
            .map(|p| (p.id().to_string(), describe(p)))
            .collect();
        let mut actions: Vec<String> = schema
            .actions()
            .map(|a| a.id().unescaped().to_string())
            .collect();
        actions.sort();
        Ok(CedarEngine {
            policies,
            schema,
            entities,
            authorizer: Authorizer::new(),
            origin,
            deciding,
            sources: sources.policies.iter().map(|s| s.name.clone()).collect(),
            hash: sources.hash(),
            schema_name: sources.schema.name.clone(),
            actor: type_name("Actor"),
            action: type_name("Action"),
            jurisdiction: type_name("Jurisdiction"),
            resource_types: ResourceKind::ALL.map(|k| type_name(k.cedar_type())),
            actions,
            scoped: RwLock::new(HashMap::new()),
            validated: RwLock::new(HashSet::new()),
        })
    }

    /// The request's context as Cedar values.
    pub(super) fn context(&self, request: &PolicyRequest) -> Result<Context, PolicyError> {
        let pairs = request.context.iter().map(|(k, v)| {
            let value = match v {
                ContextValue::Str(s) => RestrictedExpression::new_string(s.clone()),
                ContextValue::Long(n) => RestrictedExpression::new_long(*n),
                ContextValue::Bool(b) => RestrictedExpression::new_bool(*b),
                ContextValue::Jurisdiction(j) => RestrictedExpression::new_entity_uid(
                    EntityUid::from_type_name_and_id(self.jurisdiction.clone(), EntityId::new(j)),
                ),
            };
            (k.clone(), value)
        });
        Context::from_pairs(pairs).map_err(|e| PolicyError::Request(format!("context: {e}")))
    }

    /// `x in e`, as Cedar means it: equal, or `e` is an ancestor of `x`.
    fn is_in(&self, x: &EntityUid, e: &EntityUid) -> bool {
        x == e || self.entities.is_ancestor_of(e, x)
    }

    /// True when `policy`'s scope can match this principal, action and resource.
    fn in_scope(&self, policy: &Policy, p: &EntityUid, a: &EntityUid, r: &EntityUid) -> bool {
        let principal = match policy.principal_constraint() {
            PrincipalConstraint::Any => true,
            PrincipalConstraint::Eq(e) => *p == e,
            PrincipalConstraint::In(e) => self.is_in(p, &e),
            PrincipalConstraint::Is(t) => *p.type_name() == t,
            PrincipalConstraint::IsIn(t, e) => *p.type_name() == t && self.is_in(p, &e),
        };
        let action = match policy.action_constraint() {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(e) => *a == e,
            ActionConstraint::In(list) => list.iter().any(|e| self.is_in(a, e)),
        };
        let resource = match policy.resource_constraint() {
            ResourceConstraint::Any => true,
            ResourceConstraint::Eq(e) => *r == e,
            ResourceConstraint::In(e) => self.is_in(r, &e),
            ResourceConstraint::Is(t) => *r.type_name() == t,
            ResourceConstraint::IsIn(t, e) => *r.type_name() == t && self.is_in(r, &e),
        };
        principal && action && resource
    }

    /// The policies whose scope can match the request's principal, action and resource.
    fn scoped_policies(
        &self,
        request: &PolicyRequest,
        p: &EntityUid,
        a: &EntityUid,
        r: &EntityUid,
    ) -> Result<Arc<PolicySet>, PolicyError> {
        let key = (
            request.principal.clone(),
            request.action.clone(),
            request.resource.clone(),
        );
        if let Some(set) = read(&self.scoped).get(&key) {
            return Ok(Arc::clone(set));
        }
        let selecting = |e: String| PolicyError::Request(format!("selecting policies: {e}"));
        let mut set = PolicySet::new();
        for policy in self.policies.policies() {
            if self.in_scope(policy, p, a, r) {
                set.add(unscoped(policy).map_err(selecting)?)
                    .map_err(|e| selecting(e.to_string()))?;
            }
        }
        let set = Arc::new(set);
        let mut memo = write(&self.scoped);
        if memo.len() >= MEMO_LIMIT {
            memo.clear();
        }
        memo.insert(key, Arc::clone(&set));
        Ok(set)
    }

    pub(super) fn resource_type(&self, kind: ResourceKind) -> &EntityTypeName {
        let i = ResourceKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_default();
        &self.resource_types[i]
    }

    fn deciding(&self, id: &PolicyId) -> DecidingPolicy {
        let id: &str = id.as_ref();
        self.deciding
            .get(id)
            .cloned()
            .unwrap_or_else(|| DecidingPolicy {
                id: id.to_string(),
                effect: PolicyEffect::Permit,
                annotations: BTreeMap::new(),
            })
    }
}

/// `policy` with its scope lifted (`principal, action, resource` unconstrained), for a set
/// whose every request is already known to match that scope: Cedar then evaluates only the
/// `when`/`unless` conditions, in the same order and with the same errors.
fn unscoped(policy: &Policy) -> Result<Policy, String> {
    let mut est = policy.to_json().map_err(|e| e.to_string())?;
    for part in ["principal", "action", "resource"] {
        if let Some(constraint) = est.get_mut(part) {
            *constraint = serde_json::json!({ "op": "All" });
        }
    }
    Policy::from_json(Some(policy.id().clone()), est).map_err(|e| e.to_string())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What makes a request valid or not against the schema: everything but the values of its
/// string, number and boolean context attributes.
fn shape(request: &PolicyRequest) -> String {
    let mut key = String::with_capacity(128);
    for part in [
        request.principal.as_str(),
        request.action.as_str(),
        request.resource.kind.prefix(),
        request.resource.id.as_str(),
    ] {
        key.push_str(part);
        key.push('\u{0}');
    }
    for (k, v) in &request.context {
        key.push_str(k);
        match v {
            ContextValue::Str(_) => key.push_str(":s"),
            ContextValue::Long(_) => key.push_str(":l"),
            ContextValue::Bool(_) => key.push_str(":b"),
            ContextValue::Jurisdiction(j) => {
                key.push_str(":j=");
                key.push_str(j);
            }
        }
        key.push('\u{0}');
    }
    key
}

/// How `policy` is reported when it decides.
fn describe(policy: &Policy) -> DecidingPolicy {
    DecidingPolicy {
        id: policy.id().to_string(),
        effect: match policy.effect() {
            Effect::Forbid => PolicyEffect::Forbid,
            Effect::Permit => PolicyEffect::Permit,
        },
        annotations: policy
            .annotations()
            .filter(|(k, _)| *k != "id")
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn load_entities(source: &SourceText, schema: &Schema) -> Result<Entities, PolicyError> {
    // serde_json first: its errors have a line and column, Cedar's do not.
    let value: serde_json::Value = serde_json::from_str(&source.text).map_err(|e| {
        PolicyError::Invalid(vec![Problem {
            path: source.name.clone(),
            line: e.line(),
            column: e.column(),
            message: format!("not valid JSON: {e}"),
        }])
    })?;
    let entities = Entities::from_json_value(value, Some(schema)).map_err(|e| {
        let mut p = source.problem(&e);
        // Cedar's entity errors carry no source position.
        (p.line, p.column) = (0, 0);
        p.message = format!(
            "{} (entities are Cedar entities JSON: [{{\"uid\": {{\"type\": \"Veyra::Actor\", \
             \"id\": \"operator\"}}, \"attrs\": {{}}, \"parents\": [...]}}])",
            p.message
        );
        PolicyError::Invalid(vec![p])
    })?;
    // Action groups (`action in Veyra::Action::"group"`) live in the schema; Cedar evaluates
    // `in` against the entities, so they join them.
    let actions = schema.action_entities().map_err(|e| {
        PolicyError::Invalid(vec![Problem {
            path: source.name.clone(),
            line: 0,
            column: 0,
            message: format!("the schema's actions cannot become entities: {e}"),
        }])
    })?;
    entities.add_entities(actions, Some(schema)).map_err(|e| {
        PolicyError::Invalid(vec![Problem {
            path: source.name.clone(),
            line: 0,
            column: 0,
            message: format!(
                "{e}; leave actions out of the entities file, the schema declares them"
            ),
        }])
    })
}

impl PolicyEngine for CedarEngine {
    fn decide(&self, request: &PolicyRequest) -> Result<PolicyDecision, PolicyError> {
        if !self.actions.contains(&request.action) {
            return Err(PolicyError::Request(format!(
                "unknown action '{}'{}; the schema declares {}",
                request.action,
                did_you_mean(&request.action, self.actions.iter().map(String::as_str)),
                self.actions.join(", ")
            )));
        }
        let principal =
            EntityUid::from_type_name_and_id(self.actor.clone(), EntityId::new(&request.principal));
        let action =
            EntityUid::from_type_name_and_id(self.action.clone(), EntityId::new(&request.action));
        let resource = EntityUid::from_type_name_and_id(
            self.resource_type(request.resource.kind).clone(),
            EntityId::new(&request.resource.id),
        );
        let context = self.context(request)?;
        let policies = self.scoped_policies(request, &principal, &action, &resource)?;
        let shape = shape(request);
        let known = read(&self.validated).contains(&shape);
        let schema = (!known).then_some(&self.schema);
        let cedar_request =
            Request::new(principal, action, resource, context, schema).map_err(|e| {
                let mut message = e.to_string();
                if let Some(help) = e.help() {
                    message.push_str(&format!(" ({help})"));
                }
                message.push_str(&format!(
                    "; {} declares what '{}' applies to and its context",
                    self.schema_name, request.action
                ));
                PolicyError::Request(message)
            })?;
        if !known {
            let mut memo = write(&self.validated);
            if memo.len() >= MEMO_LIMIT {
                memo.clear();
            }
            memo.insert(shape);
        }
        let response = self
            .authorizer
            .is_authorized(&cedar_request, &policies, &self.entities);
        let diagnostics = response.diagnostics();
        let mut policies: Vec<DecidingPolicy> =
            diagnostics.reason().map(|id| self.deciding(id)).collect();
        policies.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(PolicyDecision {
            allowed: response.decision() == Decision::Allow,
            policies,
            errors: diagnostics.errors().map(|e| e.to_string()).collect(),
        })
    }

    fn policies(&self) -> Vec<PolicyInfo> {
        self.origin
            .iter()
            .map(|(id, source)| {
                let d = self.deciding(&PolicyId::new(id));
                PolicyInfo {
                    id: d.id,
                    effect: d.effect,
                    annotations: d.annotations,
                    source: source.clone(),
                    text: self
                        .policies
                        .policy(&PolicyId::new(id))
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    fn sources(&self) -> Vec<String> {
        self.sources.clone()
    }

    fn set_hash(&self) -> Option<String> {
        Some(self.hash.clone())
    }
}
