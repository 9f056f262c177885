//! A world's rules, drawn: each one's Cedar text (what the task shows) and the same policy in
//! Cedar's JSON form (what the generator evaluates; building it skips Cedar's text parser).

use serde_json::json;

use super::{ACTIONS, Shape, pick};
use crate::benchmarks::draw::Draw;

/// A generated rule: its Cedar text (what the task shows) and the same policy in Cedar's JSON
/// form (what the generator evaluates: building it skips Cedar's text parser, which was most
/// of MSGA's generation time). `rules_are_their_text` checks the two are one policy.
#[derive(Clone)]
pub(super) struct Rule {
    pub(super) text: String,
    pub(super) json: serde_json::Value,
}

/// A condition: its text and its conjuncts, as Cedar's JSON expressions.
fn condition(draw: &mut Draw) -> (String, Vec<serde_json::Value>) {
    let attr = |var: &str, name: &str| json!({".": {"left": {"Var": var}, "attr": name}});
    let cmp = |op: &str, left: serde_json::Value, n: i64| json!({ op: {"left": left, "right": {"Value": n}} });
    match draw.below(7) {
        0 => (
            "context.reversible".into(),
            vec![attr("context", "reversible")],
        ),
        1 => (
            "!context.reversible".into(),
            vec![json!({"!": {"arg": attr("context", "reversible")}})],
        ),
        2 => (
            "context.crew_present".into(),
            vec![attr("context", "crew_present")],
        ),
        3 => {
            let n = draw.int(5, 50) * 10;
            (
                format!("context.energy_kwh > {n}"),
                vec![cmp(">", attr("context", "energy_kwh"), n)],
            )
        }
        4 => {
            let n = draw.int(2, 5);
            (
                format!("principal.clearance >= {n}"),
                vec![cmp(">=", attr("principal", "clearance"), n)],
            )
        }
        5 => (
            "context.emergency".into(),
            vec![attr("context", "emergency")],
        ),
        _ => {
            let from = draw.int(0, 16);
            let to = from + draw.int(4, 8);
            (
                format!("context.hour >= {from} && context.hour < {to}"),
                vec![
                    cmp(">=", attr("context", "hour"), from),
                    cmp("<", attr("context", "hour"), to),
                ],
            )
        }
    }
}

/// `a && b && c` as Cedar reads it: `(a && b) && c`.
fn conjunction(terms: Vec<serde_json::Value>) -> serde_json::Value {
    terms
        .into_iter()
        .reduce(|left, right| json!({"&&": {"left": left, "right": right}}))
        .unwrap_or_else(|| json!({"Value": true}))
}

pub(super) fn policy_rule(draw: &mut Draw, place: &str, action: &str, s: &Shape) -> Rule {
    let jurisdiction = json!({"type": "Jurisdiction", "id": place});
    let act = |id: &str| json!({"type": "Action", "id": id});
    let effect = if draw.chance(0.55) {
        "permit"
    } else {
        "forbid"
    };
    let in_place = draw.chance(0.6);
    let (scope, principal) = if in_place {
        (
            format!("principal in Jurisdiction::\"{place}\",\n  action"),
            json!({"op": "in", "entity": jurisdiction}),
        )
    } else {
        ("principal,\n  action".to_string(), json!({"op": "All"}))
    };
    // Most rules concern the proposed action; the others are distractors.
    let first = if draw.chance(0.65) {
        action.to_string()
    } else {
        pick(draw, &ACTIONS).to_string()
    };
    let (action_part, action_json) = if draw.chance(0.3) {
        let second = pick(draw, &ACTIONS);
        if second == first {
            (
                format!(" == Action::\"{first}\""),
                json!({"op": "==", "entity": act(&first)}),
            )
        } else {
            (
                format!(" in [Action::\"{first}\", Action::\"{second}\"]"),
                json!({"op": "in", "entities": [act(&first), act(second)]}),
            )
        }
    } else {
        (
            format!(" == Action::\"{first}\""),
            json!({"op": "==", "entity": act(&first)}),
        )
    };
    let (resource, resource_json) = if !in_place || draw.chance(0.3) {
        (
            format!("resource in Jurisdiction::\"{place}\""),
            json!({"op": "in", "entity": jurisdiction}),
        )
    } else {
        ("resource".to_string(), json!({"op": "All"}))
    };
    let mut text =
        format!("@jurisdiction(\"{place}\")\n{effect} (\n  {scope}{action_part},\n  {resource}\n)");
    let mut conditions = Vec::new();
    let k = draw.int(0, s.conditions);
    if k > 0 {
        let (texts, terms): (Vec<String>, Vec<Vec<serde_json::Value>>) =
            (0..k).map(|_| condition(draw)).unzip();
        text.push_str(&format!("\nwhen {{ {} }}", texts.join(" && ")));
        conditions.push(json!({"kind": "when", "body": conjunction(terms.concat())}));
    }
    if s.unless && draw.chance(0.35) {
        let (unless, terms) = condition(draw);
        text.push_str(&format!("\nunless {{ {unless} }}"));
        conditions.push(json!({"kind": "unless", "body": conjunction(terms)}));
    }
    text.push(';');
    Rule {
        text,
        json: json!({
            "effect": effect,
            "principal": principal,
            "action": action_json,
            "resource": resource_json,
            "conditions": conditions,
            "annotations": {"jurisdiction": place},
        }),
    }
}
