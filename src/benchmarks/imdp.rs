//! IMDP — Inter-Model Diplomacy & Protocol Design: mission planners (2 to 4 agents, each its
//! own execution with its own system prompt) negotiate passes on one shared deep-space relay
//! dish over a few rounds; then the coordinator writes a protocol message that must be valid
//! against the JSON Schema the task prints, and is scored by checking every constraint by code.
//!
//! # The task
//! The planning horizon is hours 0 to 24. Each agent gets one contiguous pass `[start, end)` of
//! whole hours and one downlink bandwidth. Public (the shared briefing): the agents, the
//! relay's total capacity at any hour, the rounds, the schema. Private (each agent's system
//! prompt): the hours the relay can see it, its shortest acceptable pass, its least bandwidth,
//! from hard on a deadline, and the agents it must not overlap (both of a pair are told).
//!
//! Ground truth is a *planted* plan: the generator draws a pass per agent first and derives
//! every constraint so that the plan meets it (windows around the pass, minimums at or below
//! it, conflicts only between passes that do not overlap, capacity at or above the plan's peak
//! load), then checks the plan with the scorer's own [`protocol::check`] — so every task has at
//! least one solution, kept as `expected`.
//!
//! # Difficulty
//! | level | agents | rounds | executions | conflicts | capacity over the plan's peak | extras |
//! |---|---|---|---|---|---|---|
//! | easy | 2 | 1 | 3 | 0 | 40–60 Mbit/s, minimums up to a step below the plan | wide windows |
//! | medium | 3 | 2 | 7 | up to 1 | 20–30 Mbit/s | |
//! | hard | 3 | 2 | 7 | up to 2 | 5–15 Mbit/s, minimums equal to the plan | deadlines, distractors |
//! | extreme | 4 | 2 | 9 | up to 3 | 0–5 Mbit/s | tight windows, deadlines, distractors |
//!
//! # Score
//! 0 when the reply holds no JSON object, the last object does not parse, or it is not valid
//! against the task's schema (checked with `jsonschema`). Otherwise every constraint is checked
//! ([`protocol::check`]): per agent listed exactly once, pass inside its window, long enough,
//! enough bandwidth, by its deadline; per conflict no overlap; the shared capacity at every
//! hour. All of them are hard: a plan that meets them all scores 1, and one that breaks any
//! scores 0 for the plan — only [`protocol::SCHEMA_CREDIT`] (0.1) × the share met is left for
//! the valid message. So a content-free plan (the whole day at full capacity for everyone, an
//! equal share for all, an hour at 1 Mbit/s each) scores at most 0.1, not half a plan.

pub mod protocol;

use super::dialogue::final_message;
use super::draw::Draw;
use super::framework::{
    AnswerField, AnswerFormat, BenchError, BenchTask, Dialogue, DialogueAgent, Difficulty, Family,
    FamilyId, FieldKind, Outcome, Score, TaskTools, per_index, task_id,
};
use protocol::{AgentRules, HORIZON, Message, PROTOCOL, Pass, Setting};

/// The IMDP family.
#[derive(Debug, Clone, Copy)]
pub struct Imdp;

/// Mission names the agents take (lower case: they are the schema's enum).
pub const MISSIONS: [&str; 8] = [
    "ares", "boreas", "calypso", "dione", "europa", "freya", "helike", "io",
];

/// Relay dishes the missions share.
const RELAYS: [&str; 4] = [
    "the deep-space relay dish DSR-43",
    "the Mars relay orbiter MRO-2",
    "the lunar far-side relay Queqiao-R",
    "the 70 m dish DSS-14 at Goldstone",
];

/// What each level sets.
struct Level {
    agents: usize,
    rounds: u32,
    conflicts: usize,
    /// Capacity above the plan's peak load, Mbit/s.
    slack: (i64, i64),
    /// Hours of window around the planted pass, each side.
    window: (i64, i64),
    /// Minimums may sit one step below the plan.
    loose_minimums: bool,
    deadlines: bool,
    distractors: bool,
}

fn level(difficulty: Difficulty) -> Level {
    match difficulty {
        Difficulty::Easy => Level {
            agents: 2,
            rounds: 1,
            conflicts: 0,
            slack: (40, 60),
            window: (3, 6),
            loose_minimums: true,
            deadlines: false,
            distractors: false,
        },
        Difficulty::Medium => Level {
            agents: 3,
            rounds: 2,
            conflicts: 1,
            slack: (20, 30),
            window: (2, 5),
            loose_minimums: true,
            deadlines: false,
            distractors: false,
        },
        Difficulty::Hard => Level {
            agents: 3,
            rounds: 2,
            conflicts: 2,
            slack: (5, 15),
            window: (1, 4),
            loose_minimums: false,
            deadlines: true,
            distractors: true,
        },
        Difficulty::Extreme => Level {
            agents: 4,
            rounds: 2,
            conflicts: 3,
            slack: (0, 5),
            window: (0, 2),
            loose_minimums: false,
            deadlines: true,
            distractors: true,
        },
    }
}

impl Family for Imdp {
    fn id(&self) -> FamilyId {
        FamilyId::Imdp
    }

    fn generate(
        &self,
        count: usize,
        difficulty: Difficulty,
        seed: u64,
    ) -> Result<Vec<BenchTask>, BenchError> {
        per_index(count, |i| {
            let mut draw = Draw::for_task(FamilyId::Imdp, difficulty, seed, i as u64);
            let id = task_id(FamilyId::Imdp, difficulty, seed, i);
            make_task(&mut draw, id, difficulty).map_err(|message| BenchError::Generate {
                family: FamilyId::Imdp,
                index: i,
                message,
            })
        })
    }

    fn score(&self, task: &BenchTask, outcome: &Outcome) -> Score {
        let Some(dialogue) = &task.dialogue else {
            return Score::zero("the task has no dialogue (and so no schema)");
        };
        let setting: Setting = match serde_json::from_value(task.truth.clone()) {
            Ok(s) => s,
            Err(e) => return Score::zero(format!("the task's checker data is unreadable: {e}")),
        };
        let message = match protocol::extract_json(final_message(&outcome.text)) {
            Ok(v) => v,
            Err(e) => return Score::zero(e),
        };
        let validator = match jsonschema::validator_for(&dialogue.schema) {
            Ok(v) => v,
            Err(e) => return Score::zero(format!("the task's schema is invalid: {e}")),
        };
        if let Some(e) = validator.iter_errors(&message).next() {
            let at = e.instance_path().to_string();
            return Score::zero(format!(
                "not valid against the schema at '{}': {}",
                crate::sanitize::excerpt(&at, 40),
                crate::sanitize::excerpt(&e.to_string(), 120)
            ));
        }
        let passes = match protocol::passes(&message) {
            Ok(p) => p,
            Err(e) => return Score::zero(e),
        };
        let checked = protocol::check(&setting, &passes);
        Score::new(checked.score(), checked.reason())
    }
}

/// One task: the planted plan, the constraints around it, the prompts.
fn make_task(draw: &mut Draw, id: String, difficulty: Difficulty) -> Result<BenchTask, String> {
    let lv = level(difficulty);
    let names: Vec<&str> = draw
        .sample(MISSIONS.len(), lv.agents)
        .into_iter()
        .filter_map(|i| MISSIONS.get(i).copied())
        .collect();
    let relay = draw.pick(&RELAYS).copied().unwrap_or("the relay dish");
    // The planted plan: one pass per agent.
    let plan: Vec<Pass> = names
        .iter()
        .map(|name| {
            let hours = draw.int(2, 6);
            let start = draw.int(0, HORIZON - hours);
            Pass {
                agent: (*name).to_string(),
                start,
                end: start + hours,
                bandwidth_mbps: 10 * draw.int(2, 8),
            }
        })
        .collect();
    let mut agents: Vec<AgentRules> = plan
        .iter()
        .map(|p| {
            let open = (p.start - draw.int(lv.window.0, lv.window.1)).max(0);
            let close = (p.end + draw.int(lv.window.0, lv.window.1)).min(HORIZON);
            let step = i64::from(lv.loose_minimums && draw.chance(0.5));
            AgentRules {
                name: p.agent.clone(),
                open,
                close,
                min_hours: (p.end - p.start - step).max(1),
                min_mbps: (p.bandwidth_mbps - 10 * step).max(10),
                deadline: None,
            }
        })
        .collect();
    if lv.deadlines {
        // A deadline binds only when it is before the window closes.
        for (a, p) in agents.iter_mut().zip(&plan) {
            let deadline = p.end + draw.int(0, 1);
            if deadline < a.close && draw.chance(0.6) {
                a.deadline = Some(deadline);
            }
        }
    }
    // Conflicts only between passes of the plan that do not overlap.
    let mut disjoint = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        for q in plan.iter().skip(i + 1) {
            if p.end <= q.start || q.end <= p.start {
                disjoint.push((p.agent.clone(), q.agent.clone()));
            }
        }
    }
    let mut conflicts: Vec<(String, String)> = draw
        .sample(disjoint.len(), lv.conflicts)
        .into_iter()
        .filter_map(|i| disjoint.get(i).cloned())
        .collect();
    conflicts.sort();
    let peak = protocol::peak_load(&plan);
    let widest = plan.iter().map(|p| p.bandwidth_mbps).max().unwrap_or(0);
    let capacity = (peak + draw.int(lv.slack.0, lv.slack.1)).max(widest);
    let setting = Setting {
        capacity,
        agents,
        conflicts,
    };
    // The plan must be a solution, by the scorer's own check.
    let checked = protocol::check(&setting, &plan);
    if checked.score() < 1.0 {
        return Err(format!(
            "the planted plan fails its own constraints: {}",
            checked.reason()
        ));
    }
    let schema = protocol::schema(&setting);
    let expected = serde_json::to_string(&Message {
        protocol: PROTOCOL.into(),
        agreement: plan,
    })
    .map_err(|e| format!("encoding the planted plan: {e}"))?;
    let superseded = capacity + 10 * draw.int(3, 6);
    let prompt = briefing(&id, relay, &setting, lv.rounds, &schema, {
        lv.distractors.then_some(superseded)
    });
    let dialogue_agents: Vec<DialogueAgent> = setting
        .agents
        .iter()
        .map(|a| DialogueAgent {
            name: a.name.clone(),
            system: private_prompt(draw, relay, &setting, a, lv.distractors),
        })
        .collect();
    let closer = dialogue_agents
        .first()
        .map(|a| a.name.clone())
        .unwrap_or_default();
    // Sent as one prompt (outside the runner, e.g. `request_for`), the task is the
    // coordinator's view.
    let system = dialogue_agents
        .first()
        .map(|a| a.system.clone())
        .unwrap_or_default();
    Ok(BenchTask {
        cluster: id.clone(),
        id,
        family: FamilyId::Imdp,
        difficulty,
        prompt,
        system,
        format: AnswerFormat::new(vec![AnswerField {
            name: "protocol_message".into(),
            kind: FieldKind::Json,
        }]),
        expected,
        truth: serde_json::to_value(&setting).map_err(|e| format!("encoding the setting: {e}"))?,
        tools: TaskTools::None,
        dialogue: Some(Dialogue {
            agents: dialogue_agents,
            rounds: lv.rounds,
            closer: 0,
            final_instruction: format!(
                "The negotiation is over. You are {closer}, the coordinator. Write the final \
                 protocol message now: one JSON object valid against the JSON Schema above, in \
                 a ```json block, that gives every agent one pass and meets every constraint \
                 stated in the negotiation, your own and the shared capacity. Nothing after \
                 the block."
            ),
            schema,
        }),
    })
}

/// The shared briefing every turn's prompt starts with.
fn briefing(
    id: &str,
    relay: &str,
    setting: &Setting,
    rounds: u32,
    schema: &serde_json::Value,
    superseded: Option<i64>,
) -> String {
    let names: Vec<&str> = setting.agents.iter().map(|a| a.name.as_str()).collect();
    let closer = names.first().copied().unwrap_or_default();
    let mut text = format!(
        "IMDP negotiation {id}.\nAgents: {}. You are mission planners who share {relay} for the \
         next {HORIZON} hours (hour 0 to hour {HORIZON}). Each agent gets one contiguous pass \
         [start, end) of whole hours and one downlink bandwidth in Mbit/s for that pass.\n\
         Shared rule: at any hour, the bandwidths of the passes that include that hour add up \
         to at most {} Mbit/s.\n",
        names.join(", "),
        setting.capacity
    );
    if let Some(old) = superseded {
        text.push_str(&format!(
            "(An older bulletin gave the relay's capacity as {old} Mbit/s; that figure is out of \
             date.)\n"
        ));
    }
    let pretty = serde_json::to_string_pretty(schema).unwrap_or_else(|_| schema.to_string());
    text.push_str(&format!(
        "Each agent also has private constraints that the others learn only if it states them.\n\
         The negotiation has {rounds} round{}: in each round every agent speaks once, in the \
         order {}. After the last round {closer}, the coordinator, writes the final protocol \
         message: one JSON object valid against this JSON Schema\n{pretty}\nthat meets every \
         agent's constraints and the shared rule.",
        if rounds == 1 { "" } else { "s" },
        names.join(", ")
    ));
    text
}

/// One agent's system prompt: its role and its private constraints.
fn private_prompt(
    draw: &mut Draw,
    relay: &str,
    setting: &Setting,
    agent: &AgentRules,
    distractors: bool,
) -> String {
    let others: Vec<&str> = setting
        .agents
        .iter()
        .map(|a| a.name.as_str())
        .filter(|n| *n != agent.name)
        .collect();
    let mut text = format!(
        "You are the mission planner of {}, negotiating passes on {relay} with the planners of \
         {}. Be brief and concrete: state what you need, propose passes, and agree on one plan \
         that works for everyone. Your private constraints (the others do not know them unless \
         you say so):\n\
         - the relay can see {} only from hour {} to hour {}: your pass must lie inside that \
         window;\n\
         - you need one pass of at least {} consecutive hours;\n\
         - you need at least {} Mbit/s during your pass;\n",
        agent.name,
        others.join(", "),
        agent.name,
        agent.open,
        agent.close,
        agent.min_hours,
        agent.min_mbps
    );
    if let Some(deadline) = agent.deadline {
        text.push_str(&format!(
            "- your data must be down by hour {deadline}: your pass must end by then;\n"
        ));
    }
    for (x, y) in &setting.conflicts {
        let other = if *x == agent.name {
            y
        } else if *y == agent.name {
            x
        } else {
            continue;
        };
        text.push_str(&format!(
            "- you must not transmit at the same time as {other}: the two transmitters \
             interfere, so your passes must not overlap;\n"
        ));
    }
    if distractors {
        let last_week = 10 * draw.int(2, 9);
        text.push_str(&format!(
            "- note: your backup antenna is in maintenance, which does not affect relay passes;\n\
             - note: last week you used {last_week} Mbit/s; that figure does not bind this plan;\n"
        ));
    }
    text.push_str("Answer in plain text; the coordinator writes the final JSON message.");
    text
}

/// The content-free plans for a task: everyone the whole day at the dish's full capacity, an
/// equal share of it for all the whole day, one hour at 1 Mbit/s each. None of them may score
/// more than [`protocol::SCHEMA_CREDIT`].
#[cfg(test)]
pub(crate) fn content_free_plans(task: &BenchTask) -> Vec<(&'static str, String)> {
    let Ok(s) = serde_json::from_value::<Setting>(task.truth.clone()) else {
        return Vec::new();
    };
    let n = s.agents.len().max(1) as i64;
    let plan = |start: i64, end: i64, bandwidth_mbps: i64| {
        let agreement = s
            .agents
            .iter()
            .map(|a| Pass {
                agent: a.name.clone(),
                start,
                end,
                bandwidth_mbps,
            })
            .collect();
        serde_json::to_string(&Message {
            protocol: PROTOCOL.into(),
            agreement,
        })
        .unwrap_or_default()
    };
    vec![
        (
            "the whole day at full capacity",
            plan(0, HORIZON, s.capacity),
        ),
        (
            "an equal share for all",
            plan(0, HORIZON, (s.capacity / n).max(1)),
        ),
        ("one hour at 1 Mbit/s each", plan(0, 1, 1)),
    ]
}

#[cfg(test)]
mod tests;
