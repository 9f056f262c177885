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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision, Effect, Entities, EntityId, EntityTypeName,
    EntityUid, Policy, PolicyId, PolicySet, PrincipalConstraint, Request, ResourceConstraint,
    RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use serde::Serialize;

use crate::config::suggest::did_you_mean;
use crate::config::{GovernanceConfig, LatencyPreset};

/// The default policy, `configs/policies/default.cedar`.
pub const DEFAULT_POLICY: &str = include_str!("../../configs/policies/default.cedar");
/// The schema, `configs/policies/veyra.cedarschema`.
pub const DEFAULT_SCHEMA: &str = include_str!("../../configs/policies/veyra.cedarschema");
/// The default entities, `configs/policies/entities.json`.
pub const DEFAULT_ENTITIES: &str = include_str!("../../configs/policies/entities.json");

/// Cedar namespace of Veyra's types and actions.
pub const NAMESPACE: &str = "Veyra";

/// The kinds of resource a request can name, as `kind:id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
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
        match self {
            ResourceKind::Backend => "backend",
            ResourceKind::Tool => "tool",
            ResourceKind::File => "file",
            ResourceKind::Link => "link",
        }
    }

    /// The Cedar entity type, without namespace.
    fn cedar_type(self) -> &'static str {
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
        let Some(kind) = ResourceKind::ALL.into_iter().find(|k| k.prefix() == prefix) else {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyEffect {
    /// Allows when it matches (unless a forbid matches too).
    Permit,
    /// Denies when it matches, whatever permits.
    Forbid,
}

impl PolicyEffect {
    /// `permit` or `forbid`.
    pub fn name(self) -> &'static str {
        match self {
            PolicyEffect::Permit => "permit",
            PolicyEffect::Forbid => "forbid",
        }
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

/// A problem in a policy, schema or entities file, located where Cedar says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or `<built-in …>`).
    pub path: String,
    /// 1-based line; 0 when unknown.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    /// Cedar's message, with its help when it has one.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path, self.line, self.column, self.message
            )
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Errors of the policy layer.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Policies, schema or entities do not parse or validate (start-up stops).
    #[error("{}", join_problems(.0))]
    Invalid(Vec<Problem>),
    /// A file could not be read.
    #[error("{}: cannot read the {what}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// `policy file`, `schema` or `entities file`.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The request itself is malformed (unknown action, wrong context, bad resource).
    #[error("policy request: {0}")]
    Request(String),
}

fn join_problems(problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&p.to_string());
    }
    out
}

/// Decides policy requests. The core holds one; tests and embedders may supply their own.
pub trait PolicyEngine: Send + Sync {
    /// Answers one request.
    fn decide(&self, request: &PolicyRequest) -> Result<PolicyDecision, PolicyError>;
    /// The loaded policies.
    fn policies(&self) -> Vec<PolicyInfo>;
    /// Where the policies came from (files, or the built-in default).
    fn sources(&self) -> Vec<String>;
}

/// One text to load, with the name errors give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceText {
    /// File path, or `<built-in configs/policies/…>`.
    pub name: String,
    /// Its contents.
    pub text: String,
}

impl SourceText {
    fn builtin(file: &str, text: &str) -> Self {
        SourceText {
            name: format!("<built-in configs/policies/{file}>"),
            text: text.to_string(),
        }
    }

    /// Reads a policy file, schema or entities file: a regular file of at most
    /// [`MAX_SOURCE_BYTES`] ([`crate::fsread`]).
    fn read(path: &Path, what: &'static str) -> Result<Self, PolicyError> {
        crate::fsread::read_regular_to_string(path, MAX_SOURCE_BYTES, what)
            .map(|text| SourceText {
                name: path.display().to_string(),
                text,
            })
            .map_err(|e| PolicyError::Unreadable {
                path: path.to_path_buf(),
                what,
                source: e.into_io(),
            })
    }
}

/// Most bytes of one policy file, schema or entities file: hand-written policies are
/// kilobytes, and an entities file listing every principal stays within a few MiB.
pub const MAX_SOURCE_BYTES: u64 = 8 << 20;

/// The texts a [`CedarEngine`] is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySources {
    /// Policy files, in load order.
    pub policies: Vec<SourceText>,
    /// The schema (Cedar schema syntax).
    pub schema: SourceText,
    /// Entities (Cedar entities JSON).
    pub entities: SourceText,
}

impl PolicySources {
    /// The shipped default policy, schema and entities.
    pub fn builtin() -> Self {
        PolicySources {
            policies: vec![SourceText::builtin("default.cedar", DEFAULT_POLICY)],
            schema: SourceText::builtin("veyra.cedarschema", DEFAULT_SCHEMA),
            entities: SourceText::builtin("entities.json", DEFAULT_ENTITIES),
        }
    }

    /// What `governance:` names, each part falling back to the built-in one. A `policy_file`
    /// that is a directory contributes every `*.cedar` file in it, sorted by name.
    pub fn from_config(g: &GovernanceConfig) -> Result<Self, PolicyError> {
        let mut sources = PolicySources::builtin();
        if let Some(path) = &g.policy_file {
            sources.policies = if path.is_dir() {
                let listing =
                    std::fs::read_dir(path).map_err(|source| PolicyError::Unreadable {
                        path: path.clone(),
                        what: "policy directory",
                        source,
                    })?;
                let mut files = Vec::new();
                for entry in listing {
                    let entry = entry.map_err(|source| PolicyError::Unreadable {
                        path: path.clone(),
                        what: "policy directory",
                        source,
                    })?;
                    let p = entry.path();
                    if p.extension().is_some_and(|e| e == "cedar") {
                        files.push(p);
                    }
                }
                files.sort();
                if files.is_empty() {
                    return Err(PolicyError::Invalid(vec![Problem {
                        path: path.display().to_string(),
                        line: 0,
                        column: 0,
                        message: "the policy directory holds no *.cedar file; with no policy \
                                  everything is denied — add one, or unset governance.policy_file \
                                  for the default policy"
                            .into(),
                    }]));
                }
                files
                    .iter()
                    .map(|p| SourceText::read(p, "policy file"))
                    .collect::<Result<_, _>>()?
            } else {
                vec![SourceText::read(path, "policy file")?]
            };
        }
        if let Some(path) = &g.policy_schema {
            sources.schema = SourceText::read(path, "schema")?;
        }
        if let Some(path) = &g.policy_entities {
            sources.entities = SourceText::read(path, "entities file")?;
        }
        Ok(sources)
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// A [`Problem`] from a Cedar diagnostic: located at its first label, with its help.
fn problem(source: &SourceText, d: &dyn Diagnostic) -> Problem {
    let offset = d
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset());
    let (line, column) = offset.map_or((0, 0), |o| line_col(&source.text, o));
    let mut message = d.to_string();
    // Some Cedar errors say only what failed and keep the why in their source chain.
    let mut cause = std::error::Error::source(d);
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !message.contains(&c_text) {
            message.push_str(&format!(": {c_text}"));
        }
        cause = c.source();
    }
    if let Some(help) = d.help() {
        message.push_str(&format!(" (help: {help})"));
    }
    Problem {
        path: source.name.clone(),
        line,
        column,
        message,
    }
}

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
    policies: PolicySet,
    schema: Schema,
    entities: Entities,
    authorizer: Authorizer,
    /// Policy id → the file it came from.
    origin: BTreeMap<String, String>,
    /// Policy id → how it is reported when it decides.
    deciding: HashMap<String, DecidingPolicy>,
    sources: Vec<String>,
    schema_name: String,
    actor: EntityTypeName,
    action: EntityTypeName,
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
            Err(e) => return Err(PolicyError::Invalid(vec![problem(&sources.schema, &e)])),
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
                    problems.extend(errors.iter().map(|e| problem(source, e)));
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
                    problems.push(problem(source, &e));
                }
            }
            let result = validator.validate(&renamed, ValidationMode::Strict);
            for w in result.validation_warnings() {
                tracing::warn!(file = %source.name, warning = %w, "policy validation warning");
            }
            let before = problems.len();
            problems.extend(result.validation_errors().map(|e| problem(source, e)));
            if problems.len() == before {
                for policy in renamed.policies() {
                    if let Err(e) = policies.add(policy.clone()) {
                        problems.push(problem(source, &e));
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
    fn context(&self, request: &PolicyRequest) -> Result<Context, PolicyError> {
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

    fn resource_type(&self, kind: ResourceKind) -> &EntityTypeName {
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
        let mut p = problem(source, &e);
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
}

#[cfg(test)]
mod tests;
