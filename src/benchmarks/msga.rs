//! MSGA — Multi-Sovereign Governance Alignment: generated jurisdictions with their rules as
//! real Cedar policies and entities, and a proposed action; the model answers ALLOW or DENY
//! and the jurisdiction whose rule decided it (`NONE` when no rule applies and the default
//! deny decides).
//!
//! Ground truth is Cedar's own answer: the generated policies and entities are parsed and
//! evaluated with `cedar-policy` (no schema; the same semantics as Veyra's policy engine:
//! deny by default, a matching `forbid` overrides every `permit`, `in` follows the
//! jurisdiction hierarchy). A candidate is kept only when the policies that decide it all
//! belong to one jurisdiction, so the deciding jurisdiction is well defined; the three outcomes
//! (allowed, forbidden, no rule) are drawn about equally often.
//!
//! Difficulty: jurisdictions 2 / 3 / 4 / 6, hierarchy depth 1 / 2 / 2 / 3, policies per
//! jurisdiction 1 / 2 / 2–3 / 3–4, conditions per policy up to 1 / 1 / 2 / 3, `unless`
//! clauses from hard, distractor actors from medium.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy,
    PolicyId, PolicySet, Request, RestrictedExpression,
};
use serde_json::json;

use self::rules::{Rule, policy_rule};
use super::answer::{extract_fields, norm_label};
use super::draw::Draw;
use super::framework::{
    AnswerField, AnswerFormat, BenchError, BenchTask, Difficulty, Family, FamilyId, FieldKind,
    Outcome, SYSTEM_PROMPT, Score, TaskTools, combine, field_result, per_index, task_id,
};

/// The MSGA family.
#[derive(Debug, Clone, Copy)]
pub struct Msga;

const BODIES: [&str; 6] = ["Earth", "Luna", "Mars", "Ceres", "Europa", "Titan"];
const SETTLEMENTS: [&str; 8] = [
    "Jezero-Base",
    "Olympus-Station",
    "Shackleton-Camp",
    "Tranquility-Port",
    "Occator-Hub",
    "Conamara-Dome",
    "Kraken-Outpost",
    "Hellas-Works",
];
const ACTIONS: [&str; 6] = [
    "drill",
    "launch",
    "vent_atmosphere",
    "mine_ice",
    "transmit_data",
    "deploy_rover",
];
const ACTORS: [&str; 6] = [
    "rover-7",
    "miner-ai",
    "pilot-okafor",
    "engineer-lind",
    "drone-swarm-2",
    "governor-bot",
];
const ASSETS: [&str; 6] = [
    "drill-3",
    "ice-field-9",
    "shuttle-kestrel",
    "airlock-b",
    "relay-dish",
    "rover-bay",
];

/// Worlds (jurisdictions, entities, policies) drawn per task, and requests tried in each,
/// before settling for any well-defined case. Parsing a world is the expensive part; trying
/// another request against it is cheap.
const WORLDS: usize = 20;
const REQUESTS: usize = 10;

impl Family for Msga {
    fn id(&self) -> FamilyId {
        FamilyId::Msga
    }

    fn generate(
        &self,
        count: usize,
        difficulty: Difficulty,
        seed: u64,
    ) -> Result<Vec<BenchTask>, BenchError> {
        per_index(count, |i| {
            let mut draw = Draw::for_task(FamilyId::Msga, difficulty, seed, i as u64);
            let made =
                make_task(&mut draw, difficulty).map_err(|message| BenchError::Generate {
                    family: FamilyId::Msga,
                    index: i,
                    message,
                })?;
            let id = task_id(FamilyId::Msga, difficulty, seed, i);
            let format = answer_format();
            Ok(BenchTask {
                cluster: id.clone(),
                id,
                family: FamilyId::Msga,
                difficulty,
                prompt: format!("{}\n\n{}", made.prompt, format.instruction()),
                system: SYSTEM_PROMPT.to_string(),
                format,
                expected: format!("{} | {}", made.decision, made.jurisdiction),
                truth: json!({
                    "decision": made.decision,
                    "jurisdiction": made.jurisdiction,
                    "policies": made.policies,
                    "entities": made.entities,
                    "request": made.request,
                }),
                tools: TaskTools::None,
                dialogue: None,
            })
        })
    }

    fn score(&self, task: &BenchTask, outcome: &Outcome) -> Score {
        let fields = match extract_fields(&outcome.text, 2) {
            Ok(f) => f,
            Err(e) => return Score::zero(e),
        };
        let (decision, jurisdiction) = (task.truth_str("decision"), task.truth_str("jurisdiction"));
        let got_decision = norm_label(&fields[0]);
        if got_decision != "allow" && got_decision != "deny" {
            return Score::zero(format!(
                "decision '{}' is neither ALLOW nor DENY",
                crate::sanitize::excerpt(&fields[0], 40)
            ));
        }
        combine(vec![
            field_result(
                "decision",
                got_decision == norm_label(decision),
                &fields[0],
                decision,
            ),
            field_result(
                "jurisdiction",
                norm_label(&fields[1]) == norm_label(jurisdiction),
                &fields[1],
                jurisdiction,
            ),
        ])
    }
}

fn answer_format() -> AnswerFormat {
    AnswerFormat::new(vec![
        AnswerField {
            name: "decision".into(),
            kind: FieldKind::Choice {
                options: vec!["ALLOW".into(), "DENY".into()],
            },
        },
        AnswerField {
            name: "jurisdiction".into(),
            kind: FieldKind::Label,
        },
    ])
}

/// A generated case with Cedar's answer.
struct Made {
    prompt: String,
    decision: &'static str,
    jurisdiction: String,
    policies: String,
    entities: serde_json::Value,
    request: serde_json::Value,
}

/// A jurisdiction and its parent.
#[derive(Clone)]
struct Place {
    name: String,
    parent: Option<String>,
}

/// Sizes by difficulty.
struct Shape {
    places: usize,
    depth: usize,
    policies: (i64, i64),
    conditions: i64,
    unless: bool,
    actors: usize,
}

fn shape(d: Difficulty) -> Shape {
    match d {
        Difficulty::Easy => Shape {
            places: 2,
            depth: 1,
            policies: (1, 1),
            conditions: 1,
            unless: false,
            actors: 1,
        },
        Difficulty::Medium => Shape {
            places: 3,
            depth: 2,
            policies: (2, 2),
            conditions: 1,
            unless: false,
            actors: 2,
        },
        Difficulty::Hard => Shape {
            places: 4,
            depth: 2,
            policies: (2, 3),
            conditions: 2,
            unless: true,
            actors: 3,
        },
        Difficulty::Extreme => Shape {
            places: 6,
            depth: 3,
            policies: (3, 4),
            conditions: 3,
            unless: true,
            actors: 4,
        },
    }
}

fn make_task(draw: &mut Draw, difficulty: Difficulty) -> Result<Made, String> {
    // The outcome this task aims for: 0 allowed, 1 forbidden, 2 no rule applies.
    let target = draw.below(3);
    let mut fallback = None;
    for _ in 0..WORLDS {
        let mut case = candidate(draw, difficulty)?;
        let parsed = Parsed::new(&case)?;
        for attempt in 0..REQUESTS {
            if attempt > 0 {
                redraw_request(draw, &mut case);
            }
            let Some(evaluated) = evaluate(&parsed, &case)? else {
                continue;
            };
            let class = match (evaluated.0, evaluated.1.as_str()) {
                ("ALLOW", _) => 0,
                ("DENY", "NONE") => 2,
                _ => 1,
            };
            if class == target {
                return Ok(finish(case, evaluated));
            }
            if fallback.is_none() {
                fallback = Some((case.clone(), evaluated));
            }
        }
    }
    match fallback {
        Some((case, evaluated)) => Ok(finish(case, evaluated)),
        None => Err(format!(
            "no case with a single deciding jurisdiction in {} tries",
            WORLDS * REQUESTS
        )),
    }
}

/// A case before evaluation.
#[derive(Clone)]
struct Case {
    places: Vec<Place>,
    policies: Vec<(String, Rule)>,
    actors: Vec<(String, String, i64)>,
    asset: (String, String),
    principal: String,
    action: String,
    context: serde_json::Map<String, serde_json::Value>,
}

fn pick<'a>(draw: &mut Draw, items: &[&'a str]) -> &'a str {
    draw.pick(items).copied().unwrap_or("x")
}

fn candidate(draw: &mut Draw, difficulty: Difficulty) -> Result<Case, String> {
    let s = shape(difficulty);
    // Jurisdictions: bodies at the top, settlements inside them, and for depth 3 an accord
    // that every body belongs to.
    let mut places = Vec::new();
    let accord = (s.depth >= 3).then(|| "Sol-Accord".to_string());
    if let Some(a) = &accord {
        places.push(Place {
            name: a.clone(),
            parent: None,
        });
    }
    let bodies_n = if s.depth >= 2 {
        s.places.div_ceil(2)
    } else {
        s.places
    };
    let bodies: Vec<&str> = draw
        .sample(BODIES.len(), bodies_n)
        .into_iter()
        .map(|i| BODIES[i])
        .collect();
    for b in &bodies {
        places.push(Place {
            name: b.to_string(),
            parent: accord.clone(),
        });
    }
    if s.depth >= 2 {
        let settlements = s.places - bodies_n;
        for i in draw.sample(SETTLEMENTS.len(), settlements) {
            let body = pick(draw, &bodies);
            places.push(Place {
                name: SETTLEMENTS[i].to_string(),
                parent: Some(body.to_string()),
            });
        }
    }
    let leaves: Vec<String> = places
        .iter()
        .filter(|p| !places.iter().any(|q| q.parent.as_deref() == Some(&p.name)))
        .map(|p| p.name.clone())
        .collect();
    let leaf_refs: Vec<&str> = leaves.iter().map(String::as_str).collect();
    // Actors (the first makes the request), one asset.
    let mut actors = Vec::new();
    for i in draw.sample(ACTORS.len(), s.actors) {
        let home = pick(draw, &leaf_refs).to_string();
        actors.push((ACTORS[i].to_string(), home, draw.int(1, 5)));
    }
    let asset = (
        pick(draw, &ASSETS).to_string(),
        pick(draw, &leaf_refs).to_string(),
    );
    let action = pick(draw, &ACTIONS).to_string();
    let context = draw_context(draw);
    // Policies: each jurisdiction's rules, scoped to its own members or assets.
    let mut policies = Vec::new();
    for place in &places {
        let n = draw.int(s.policies.0, s.policies.1);
        for _ in 0..n {
            policies.push((
                place.name.clone(),
                policy_rule(draw, &place.name, &action, &s),
            ));
        }
    }
    if difficulty.level() >= 2 {
        draw.shuffle(&mut policies);
    }
    let principal = actors.first().map(|a| a.0.clone()).unwrap_or_default();
    Ok(Case {
        places,
        policies,
        actors,
        asset,
        principal,
        action,
        context,
    })
}

/// The request's context: every attribute the conditions may read.
fn draw_context(draw: &mut Draw) -> serde_json::Map<String, serde_json::Value> {
    let mut context = serde_json::Map::new();
    context.insert("reversible".into(), json!(draw.chance(0.5)));
    context.insert("crew_present".into(), json!(draw.chance(0.5)));
    context.insert("emergency".into(), json!(draw.chance(0.3)));
    context.insert("energy_kwh".into(), json!(draw.int(5, 500)));
    context.insert("hour".into(), json!(draw.int(0, 23)));
    context
}

/// Another request against the same world: another actor asks, in another context.
fn redraw_request(draw: &mut Draw, case: &mut Case) {
    if let Some(actor) = draw.pick(&case.actors) {
        case.principal = actor.0.clone();
    }
    case.context = draw_context(draw);
}

/// One condition over the context or the principal, as Cedar text.
fn uid(kind: &str, id: &str) -> serde_json::Value {
    json!({ "type": kind, "id": id })
}

fn entities_json(case: &Case) -> serde_json::Value {
    let mut list = Vec::new();
    for p in &case.places {
        let parents: Vec<serde_json::Value> =
            p.parent.iter().map(|q| uid("Jurisdiction", q)).collect();
        list.push(json!({"uid": uid("Jurisdiction", &p.name), "attrs": {}, "parents": parents}));
    }
    for (name, home, clearance) in &case.actors {
        list.push(json!({
            "uid": uid("Actor", name),
            "attrs": {"clearance": clearance},
            "parents": [uid("Jurisdiction", home)],
        }));
    }
    list.push(json!({
        "uid": uid("Asset", &case.asset.0),
        "attrs": {},
        "parents": [uid("Jurisdiction", &case.asset.1)],
    }));
    serde_json::Value::Array(list)
}

fn policy_source(case: &Case) -> String {
    case.policies
        .iter()
        .map(|(_, rule)| rule.text.as_str())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A world's policies and entities, parsed once.
struct Parsed {
    set: PolicySet,
    entities: Entities,
    /// Each policy's jurisdiction (its `@jurisdiction` annotation), by id.
    owners: HashMap<PolicyId, String>,
}

impl Parsed {
    /// The world's rules from their JSON form, named `policy0`, `policy1`, … as Cedar names
    /// the policies of a parsed text.
    fn new(case: &Case) -> Result<Self, String> {
        let mut owners = HashMap::with_capacity(case.policies.len());
        let policies = case
            .policies
            .iter()
            .enumerate()
            .map(|(i, (place, rule))| {
                let id = PolicyId::new(format!("policy{i}"));
                owners.insert(id.clone(), place.clone());
                Policy::from_json(Some(id), rule.json.clone())
                    .map_err(|e| format!("generated policy {i}: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Parsed {
            set: PolicySet::from_policies(policies)
                .map_err(|e| format!("generated policies: {e}"))?,
            entities: entities(case)?,
            owners,
        })
    }
}

/// The world's entities built from typed values: the same entities as [`entities_json`] (the
/// text the task shows), without parsing a type name for every one of them (Cedar's parser
/// warms a fresh regex cache for each name: it was a tenth of MSGA's generation).
fn entities(case: &Case) -> Result<Entities, String> {
    let [actor, _, asset, place] = kinds()?;
    let uid = |kind: &EntityTypeName, id: &str| {
        EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id))
    };
    let mut list = Vec::with_capacity(case.places.len() + case.actors.len() + 1);
    for p in &case.places {
        let parents = p.parent.iter().map(|q| uid(place, q)).collect();
        list.push(Entity::new_no_attrs(uid(place, &p.name), parents));
    }
    for (name, home, clearance) in &case.actors {
        let attrs = HashMap::from([(
            "clearance".to_string(),
            RestrictedExpression::new_long(*clearance),
        )]);
        let entity = Entity::new(uid(actor, name), attrs, HashSet::from([uid(place, home)]))
            .map_err(|e| format!("generated entity {name}: {e}"))?;
        list.push(entity);
    }
    list.push(Entity::new_no_attrs(
        uid(asset, &case.asset.0),
        HashSet::from([uid(place, &case.asset.1)]),
    ));
    Entities::from_entities(list, None).map_err(|e| format!("generated entities: {e}"))
}

/// The entity types of a world — `Actor`, `Action`, `Asset`, `Jurisdiction` — parsed once.
static KINDS: std::sync::LazyLock<Result<[EntityTypeName; 4], String>> =
    std::sync::LazyLock::new(|| {
        let parse = |name: &str| EntityTypeName::from_str(name).map_err(|e| format!("{name}: {e}"));
        Ok([
            parse("Actor")?,
            parse("Action")?,
            parse("Asset")?,
            parse("Jurisdiction")?,
        ])
    });

fn kinds() -> Result<&'static [EntityTypeName; 4], String> {
    KINDS.as_ref().map_err(|e| format!("the entity types: {e}"))
}

/// Cedar's decision and the deciding jurisdiction; `None` when the deciding policies belong
/// to several jurisdictions or evaluation reported errors (the candidate is dropped).
fn evaluate(parsed: &Parsed, case: &Case) -> Result<Option<(&'static str, String)>, String> {
    // Built from typed values, not JSON: this runs ~14 times per task.
    let kinds = kinds()?;
    let euid = |kind: &EntityTypeName, id: &str| {
        EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id))
    };
    let pairs = case
        .context
        .iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::Bool(b) => RestrictedExpression::new_bool(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => RestrictedExpression::new_long(i),
                    None => return Err(format!("generated context: {k} = {n} is not an integer")),
                },
                other => {
                    return Err(format!(
                        "generated context: {k} = {other} is neither a boolean nor an integer"
                    ));
                }
            };
            Ok((k.clone(), value))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let context = Context::from_pairs(pairs).map_err(|e| format!("generated context: {e}"))?;
    let request = Request::new(
        euid(&kinds[0], &case.principal),
        euid(&kinds[1], &case.action),
        euid(&kinds[2], &case.asset.0),
        context,
        None,
    )
    .map_err(|e| format!("generated request: {e}"))?;
    let response = Authorizer::new().is_authorized(&request, &parsed.set, &parsed.entities);
    let diagnostics = response.diagnostics();
    if diagnostics.errors().next().is_some() {
        return Ok(None);
    }
    let mut places: Vec<&String> = diagnostics
        .reason()
        .filter_map(|id| parsed.owners.get(id))
        .collect();
    places.sort();
    places.dedup();
    let decision = if response.decision() == Decision::Allow {
        "ALLOW"
    } else {
        "DENY"
    };
    Ok(match places.as_slice() {
        [] if decision == "DENY" => Some((decision, "NONE".to_string())),
        [one] => Some((decision, (*one).clone())),
        _ => None,
    })
}

fn finish(case: Case, (decision, jurisdiction): (&'static str, String)) -> Made {
    let mut facts = Vec::new();
    for p in &case.places {
        match &p.parent {
            Some(parent) => facts.push(format!("- Jurisdiction {} is part of {parent}.", p.name)),
            None => facts.push(format!("- Jurisdiction {} is sovereign.", p.name)),
        }
    }
    for (name, home, clearance) in &case.actors {
        facts.push(format!(
            "- Actor {name} (clearance {clearance}) is registered in {home}."
        ));
    }
    facts.push(format!(
        "- Asset {} is located in {}.",
        case.asset.0, case.asset.1
    ));
    let context: Vec<String> = case
        .context
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    let source = policy_source(&case);
    let prompt = format!(
        "Several jurisdictions govern activity across the solar system.\n{}\n\nTheir rules, as \
         Cedar policies (each annotated with the jurisdiction it belongs to):\n```cedar\n{}\n\
         ```\n\nProposed action: actor {} asks to `{}` on asset {}, with context {}.\n\nCedar \
         semantics: a request is denied unless at least one permit applies; any forbid that \
         applies overrides every permit; `in` follows the jurisdiction hierarchy. Is the \
         action allowed, and which jurisdiction's rule decides it? Answer NONE for the \
         jurisdiction when no rule applies.",
        facts.join("\n"),
        source,
        case.principal,
        case.action,
        case.asset.0,
        context.join(", ")
    );
    Made {
        prompt,
        decision,
        jurisdiction,
        policies: source,
        entities: entities_json(&case),
        request: json!({
            "principal": case.principal,
            "action": case.action,
            "resource": case.asset.0,
            "context": case.context,
        }),
    }
}

mod rules;
#[cfg(test)]
mod tests;
