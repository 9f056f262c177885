use serde_json::{Value, json};

use super::protocol::{self, Pass};
use super::*;
use crate::benchmarks::dialogue::Transcript;
use crate::benchmarks::framework::{MAX_AGENTS, MAX_ROUNDS};

fn tasks(n: usize, d: Difficulty, seed: u64) -> Vec<BenchTask> {
    Imdp.generate(n, d, seed).unwrap()
}

fn setting(t: &BenchTask) -> Setting {
    serde_json::from_value(t.truth.clone()).unwrap()
}

fn expected(t: &BenchTask) -> Value {
    serde_json::from_str(&t.expected).unwrap()
}

fn score(t: &BenchTask, text: &str) -> f64 {
    Imdp.score(t, &Outcome::text(text)).value
}

/// The expected message with `edit` applied to its agreement.
fn edited(t: &BenchTask, edit: impl FnOnce(&mut Vec<Value>)) -> String {
    let mut v = expected(t);
    let list = v["agreement"].as_array_mut().unwrap();
    edit(list);
    v.to_string()
}

#[test]
fn difficulty_changes_the_task() {
    let per = |d: Difficulty| {
        let ts = tasks(40, d, 3);
        let agents = ts[0].dialogue.as_ref().unwrap().agents.len();
        let executions = ts[0].dialogue.as_ref().unwrap().executions();
        let conflicts: usize = ts.iter().map(|t| setting(t).conflicts.len()).sum();
        let deadlines: usize = ts
            .iter()
            .map(|t| {
                setting(t)
                    .agents
                    .iter()
                    .filter(|a| a.deadline.is_some())
                    .count()
            })
            .sum();
        // Spare capacity over the planted plan's peak.
        let slack: i64 = ts
            .iter()
            .map(|t| {
                let plan: Message = serde_json::from_str(&t.expected).unwrap();
                setting(t).capacity - protocol::peak_load(&plan.agreement)
            })
            .sum();
        let distractors = ts[0].prompt.contains("out of date");
        (agents, executions, conflicts, deadlines, slack, distractors)
    };
    let easy = per(Difficulty::Easy);
    let medium = per(Difficulty::Medium);
    let hard = per(Difficulty::Hard);
    let extreme = per(Difficulty::Extreme);
    assert_eq!((easy.0, medium.0, hard.0, extreme.0), (2, 3, 3, 4));
    assert_eq!((easy.1, medium.1, hard.1, extreme.1), (3, 7, 7, 9));
    assert_eq!(easy.2, 0);
    assert!(medium.2 > 0 && hard.2 > medium.2 && extreme.2 > medium.2);
    assert_eq!((easy.3, medium.3), (0, 0));
    assert!(hard.3 > 0 && extreme.3 > 0);
    assert!(easy.4 > medium.4 && medium.4 > hard.4 && hard.4 > extreme.4);
    assert!(!easy.5 && !medium.5 && hard.5 && extreme.5);
}

#[test]
fn every_task_carries_its_dialogue_schema_and_private_constraints() {
    for d in Difficulty::ALL {
        for t in tasks(10, d, 11) {
            let dialogue = t.dialogue.as_ref().unwrap();
            assert_eq!(dialogue.check(), Ok(()));
            let s = setting(&t);
            // The schema is printed in the shared prompt and compiles.
            let pretty = serde_json::to_string_pretty(&dialogue.schema).unwrap();
            assert!(t.prompt.contains(&pretty), "{}", t.id);
            assert!(jsonschema::validator_for(&dialogue.schema).is_ok());
            assert!(t.prompt.contains(&format!("at most {} Mbit/s", s.capacity)));
            assert!(dialogue.final_instruction.contains("JSON"));
            // Each agent's own constraints are in its system prompt, nobody else's window.
            for (agent, rules) in dialogue.agents.iter().zip(&s.agents) {
                assert_eq!(agent.name, rules.name);
                let window = format!("from hour {} to hour {}", rules.open, rules.close);
                assert!(agent.system.contains(&window), "{}", agent.system);
                assert!(!t.prompt.contains(&window));
                if let Some(deadline) = rules.deadline {
                    assert!(agent.system.contains(&format!("down by hour {deadline}")));
                }
            }
            for (x, y) in &s.conflicts {
                let of = |n: &str| &dialogue.agents.iter().find(|a| a.name == n).unwrap().system;
                assert!(of(x).contains(&format!("same time as {y}")));
                assert!(of(y).contains(&format!("same time as {x}")));
            }
            // The planted plan is valid against the schema and meets everything.
            let v = jsonschema::validator_for(&dialogue.schema).unwrap();
            assert!(v.is_valid(&expected(&t)), "{}", t.expected);
            assert_eq!(t.expected, t.expected.to_lowercase(), "all lower case");
        }
    }
}

#[test]
fn the_true_answer_scores_1_in_any_dress() {
    for d in Difficulty::ALL {
        for t in tasks(12, d, 6) {
            let e = &t.expected;
            let pretty = serde_json::to_string_pretty(&expected(&t)).unwrap();
            for text in [
                e.clone(),
                format!("Agreed plan:\n```json\n{pretty}\n```\nThanks all."),
                format!("ANSWER: {e}."),
                format!("We considered {{\"draft\": true}} first.\nFinal: {e}"),
            ] {
                let s = Imdp.score(&t, &Outcome::text(text.clone()));
                assert_eq!(s.value, 1.0, "{}: {text} → {}", t.id, s.reason);
            }
            // Inside a transcript, the final message is what counts.
            let mut tr = Transcript::default();
            tr.push_turn(1, 1, "x", "I propose {\"protocol\": \"nope\"}");
            assert_eq!(score(&t, &tr.finish("ares", e)), 1.0);
        }
    }
}

#[test]
fn wrong_messages_score_no_more_than_the_schema_credit() {
    let low = |t: &BenchTask, text: &str| {
        let s = Imdp.score(t, &Outcome::text(text));
        assert!(s.value <= protocol::SCHEMA_CREDIT, "{text}: {}", s.reason);
    };
    for d in Difficulty::ALL {
        for t in tasks(12, d, 9) {
            let s = setting(&t);
            let first = s.agents[0].clone();
            // A missing agent.
            let missing = edited(&t, |l| {
                l.remove(0);
            });
            low(&t, &missing);
            // Outside the window (shifted to its edge and beyond, same length).
            let len = first.min_hours;
            let start = if first.close + len <= HORIZON {
                Some(first.close)
            } else if first.open > 0 {
                Some(0)
            } else {
                None
            };
            if let Some(start) = start {
                let outside = edited(&t, |l| {
                    l[0]["start"] = json!(start);
                    l[0]["end"] = json!(start + len);
                });
                low(&t, &outside);
            }
            // Too little bandwidth.
            let thin = edited(&t, |l| l[0]["bandwidth_mbps"] = json!(first.min_mbps - 1));
            low(&t, &thin);
            // Over capacity: every pass at full capacity over the whole day.
            let greedy = edited(&t, |l| {
                for p in l.iter_mut() {
                    p["start"] = json!(0);
                    p["end"] = json!(HORIZON);
                    p["bandwidth_mbps"] = json!(s.capacity);
                }
            });
            let g = Imdp.score(&t, &Outcome::text(greedy));
            assert!(g.value <= protocol::SCHEMA_CREDIT, "{}", g.reason);
            assert!(g.reason.contains("capacity broken"), "{}", g.reason);
            // An overlap of a conflicting pair.
            if let Some((x, y)) = s.conflicts.first() {
                let plan: Message = serde_json::from_str(&t.expected).unwrap();
                let py = plan
                    .agreement
                    .iter()
                    .find(|p| p.agent == *y)
                    .unwrap()
                    .clone();
                let overlap = edited(&t, |l| {
                    for p in l.iter_mut() {
                        if p["agent"] == x.as_str() {
                            p["start"] = json!(py.start);
                            p["end"] = json!(py.end);
                        }
                    }
                });
                low(&t, &overlap);
            }
            // A duplicated agent fails that agent.
            let twice = edited(&t, |l| {
                let copy = l[0].clone();
                l[1] = copy;
            });
            low(&t, &twice);
        }
    }
}

#[test]
fn a_content_free_plan_is_not_half_a_plan() {
    // Before: the whole day at full capacity scored 0.5 on 90 of 90 medium tasks, an equal
    // share up to 0.77, an hour at 1 Mbit/s each 0.35. A plan that breaks the dish's capacity
    // or an agent's hard constraint scores 0 for the plan; the valid form earns at most 0.1.
    for d in Difficulty::ALL {
        for t in tasks(90, d, 1) {
            for (what, text) in content_free_plans(&t) {
                let s = Imdp.score(&t, &Outcome::text(format!("```json\n{text}\n```")));
                assert!(
                    s.value <= protocol::SCHEMA_CREDIT,
                    "{}: {what} scored {}: {}",
                    t.id,
                    s.value,
                    s.reason
                );
            }
        }
    }
}

#[test]
fn messages_off_the_schema_score_0() {
    let t = &tasks(1, Difficulty::Medium, 2)[0];
    let s = setting(t);
    let mut bad = Vec::new();
    let mut v = expected(t);
    v["protocol"] = json!("veyra.imdp/2");
    bad.push(v.to_string());
    bad.push(edited(t, |l| l[0]["agent"] = json!("zeus")));
    bad.push(edited(t, |l| l[0]["agent"] = json!("ARES")));
    bad.push(edited(t, |l| l[0]["start"] = json!("3")));
    bad.push(edited(t, |l| l[0]["start"] = json!(2.5)));
    bad.push(edited(t, |l| l[0]["end"] = json!(HORIZON + 1)));
    bad.push(edited(t, |l| {
        l[0]["bandwidth_mbps"] = json!(s.capacity + 1)
    }));
    bad.push(edited(t, |l| l[0]["note"] = json!("extra")));
    bad.push(edited(t, |l| l.clear()));
    bad.push(edited(t, |l| {
        let more = l[0].clone();
        l.push(more.clone());
        l.push(more.clone());
        l.push(more);
    }));
    let mut extra = expected(t);
    extra["signed"] = json!(true);
    bad.push(extra.to_string());
    for text in bad {
        let r = Imdp.score(t, &Outcome::text(text.clone()));
        assert_eq!(r.value, 0.0, "{text}: {}", r.reason);
    }
    // 3.0 is an integer in JSON Schema, and counts as 3.
    let float = edited(t, |l| {
        let start = l[0]["start"].as_i64().unwrap();
        l[0]["start"] = json!(start as f64);
    });
    assert_eq!(score(t, &float), 1.0);
}

#[test]
fn garbage_scores_0_without_panic() {
    let t = &tasks(1, Difficulty::Extreme, 4)[0];
    let deep = format!("{}{}", "{\"a\":".repeat(5000), "}".repeat(5000));
    let deep_arrays = format!(
        "{{\"agreement\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let unterminated = format!("{{\"protocol\": \"{}", "x".repeat(60_000));
    let huge = format!("{}{}", " ".repeat(protocol::MAX_REPLY_BYTES), t.expected);
    let braces = "{".repeat(50_000);
    let closers = "}".repeat(50_000);
    for g in [
        "",
        "no json here",
        "{",
        "}{",
        "{\"protocol\": \"veyra.imdp/1\"",
        "{'protocol': 'veyra.imdp/1', 'agreement': []}",
        "\u{202e}{\u{0}}\u{1b}[2J",
        "\u{fffd}\u{fffd}{\"protocol\":\"\u{fffd}\"}",
        "null",
        "[1, 2, 3]",
        "{\"protocol\": \"veyra.imdp/1\", \"agreement\": [{\"agent\": \"x\\\"}\"}]}",
        &deep,
        &deep_arrays,
        &unterminated,
        &huge,
        &braces,
        &closers,
    ] {
        let s = Imdp.score(t, &Outcome::text(g));
        assert_eq!(s.value, 0.0, "{}", crate::sanitize::excerpt(g, 60));
    }
    // A task without its dialogue or with broken checker data scores 0, no panic.
    let mut broken = t.clone();
    broken.dialogue = None;
    assert_eq!(score(&broken, &t.expected), 0.0);
    let mut broken = t.clone();
    broken.truth = json!({"capacity": "lots"});
    assert_eq!(score(&broken, &t.expected), 0.0);
    let mut broken = t.clone();
    if let Some(d) = broken.dialogue.as_mut() {
        d.schema = json!({"type": 12});
    }
    assert_eq!(score(&broken, &t.expected), 0.0);
}

#[test]
fn json_objects_are_found_leniently_but_the_last_one_counts() {
    let v = protocol::extract_json("pre {\"a\": \"}{\"} mid {\"b\": [1, {\"c\": 2}]} post");
    assert_eq!(v, Ok(json!({"b": [1, {"c": 2}]})));
    // The last object that parses, even when a later brace span does not.
    let v = protocol::extract_json("{\"a\": 1} then {not json}");
    assert_eq!(v, Ok(json!({"a": 1})));
    assert!(protocol::extract_json("plain prose").is_err());
}

#[test]
fn the_check_counts_every_constraint() {
    let s = Setting {
        capacity: 50,
        agents: vec![
            protocol::AgentRules {
                name: "ares".into(),
                open: 0,
                close: 10,
                min_hours: 2,
                min_mbps: 20,
                deadline: Some(6),
            },
            protocol::AgentRules {
                name: "io".into(),
                open: 4,
                close: 12,
                min_hours: 3,
                min_mbps: 30,
                deadline: None,
            },
        ],
        conflicts: vec![("ares".into(), "io".into())],
    };
    let pass = |agent: &str, start, end, bw| Pass {
        agent: agent.into(),
        start,
        end,
        bandwidth_mbps: bw,
    };
    let good = [pass("ares", 1, 4, 20), pass("io", 5, 8, 30)];
    let c = protocol::check(&s, &good);
    // 5 for ares (with its deadline), 4 for io, 1 conflict, 1 capacity.
    assert_eq!(c.verdicts.len(), 11);
    assert_eq!(c.score(), 1.0);
    // One constraint broken: no plan; the valid message keeps 0.1 × 10/11.
    let overlap = [pass("ares", 3, 6, 20), pass("io", 5, 8, 30)];
    let c = protocol::check(&s, &overlap);
    assert!(!c.solved());
    assert_eq!(c.score(), protocol::SCHEMA_CREDIT * 10.0 / 11.0);
    assert!(
        c.reason().contains("ares and io do not overlap"),
        "{}",
        c.reason()
    );
    // Capacity (and io's window and the conflict) broken: 8 of 11 met.
    let over = [pass("ares", 1, 4, 20), pass("io", 2, 8, 40)];
    let c = protocol::check(&s, &over);
    assert!(!c.capacity_ok);
    assert_eq!(c.score(), protocol::SCHEMA_CREDIT * 8.0 / 11.0);
    assert!(c.reason().contains("capacity broken"), "{}", c.reason());
    let none = protocol::check(&s, &[]);
    assert_eq!(
        none.score(),
        protocol::SCHEMA_CREDIT / 11.0,
        "only capacity holds"
    );
}

#[test]
fn dialogues_that_cannot_run_are_refused() {
    let task = &tasks(1, Difficulty::Easy, 1)[0];
    let good = task.dialogue.clone().unwrap();
    assert_eq!(good.check(), Ok(()));
    assert_eq!(good.executions(), 3);
    let mut bad = good.clone();
    bad.rounds = 0;
    assert!(bad.check().is_err());
    bad.rounds = MAX_ROUNDS + 1;
    assert!(bad.check().is_err());
    let mut bad = good.clone();
    bad.closer = bad.agents.len();
    assert!(bad.check().unwrap_err().contains("closer"));
    let mut bad = good.clone();
    bad.agents.clear();
    assert!(bad.check().is_err());
    let mut bad = good;
    bad.agents = vec![bad.agents[0].clone(); MAX_AGENTS + 1];
    assert!(bad.check().is_err());
}
