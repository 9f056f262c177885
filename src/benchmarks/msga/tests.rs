//! Tests of the MSGA family: generated tasks, their reference answers and the scorer.

use super::*;

fn tasks(n: usize, d: Difficulty, seed: u64) -> Vec<BenchTask> {
    Msga.generate(n, d, seed).unwrap()
}

#[test]
fn difficulty_changes_the_task() {
    let count = |d| {
        tasks(10, d, 1)
            .iter()
            .map(|t| t.truth["policies"].as_str().unwrap().matches(';').count())
            .sum::<usize>()
    };
    let (easy, extreme) = (count(Difficulty::Easy), count(Difficulty::Extreme));
    assert!(extreme > 4 * easy, "{easy} vs {extreme} policies");
    let t = &tasks(1, Difficulty::Extreme, 1)[0];
    assert!(t.prompt.contains("Sol-Accord"));
}

#[test]
fn outcomes_are_balanced_and_agree_with_cedar() {
    let ts = tasks(30, Difficulty::Hard, 3);
    let allow = ts.iter().filter(|t| t.truth["decision"] == "ALLOW").count();
    let none = ts
        .iter()
        .filter(|t| t.truth["jurisdiction"] == "NONE")
        .count();
    assert!(allow >= 4 && none >= 4 && ts.len() - allow - none >= 4);
    // Re-evaluate one task from its stored truth with Cedar directly.
    for t in &ts {
        let set = PolicySet::from_str(t.truth["policies"].as_str().unwrap()).unwrap();
        let entities = Entities::from_json_value(t.truth["entities"].clone(), None).unwrap();
        let r = &t.truth["request"];
        let request = Request::new(
            EntityUid::from_json(uid("Actor", r["principal"].as_str().unwrap())).unwrap(),
            EntityUid::from_json(uid("Action", r["action"].as_str().unwrap())).unwrap(),
            EntityUid::from_json(uid("Asset", r["resource"].as_str().unwrap())).unwrap(),
            Context::from_json_value(r["context"].clone(), None).unwrap(),
            None,
        )
        .unwrap();
        let d = Authorizer::new()
            .is_authorized(&request, &set, &entities)
            .decision();
        assert_eq!(
            d == Decision::Allow,
            t.truth["decision"] == "ALLOW",
            "{}",
            t.id
        );
    }
}

#[test]
fn the_true_answer_scores_1_wrong_answers_0_garbage_0() {
    for d in Difficulty::ALL {
        for t in tasks(6, d, 9) {
            let s = Msga.score(
                &t,
                &Outcome::text(format!("So:\n**ANSWER:** {}", t.expected)),
            );
            assert_eq!(s.value, 1.0, "{}: {}", t.id, s.reason);
            let flipped = if t.truth["decision"] == "ALLOW" {
                "DENY"
            } else {
                "ALLOW"
            };
            let s = Msga.score(
                &t,
                &Outcome::text(format!("ANSWER: {flipped} | Nowhere-Land")),
            );
            assert_eq!(s.value, 0.0, "{}", s.reason);
            let half = format!(
                "ANSWER: {} | Nowhere-Land",
                t.truth["decision"].as_str().unwrap()
            );
            assert_eq!(Msga.score(&t, &Outcome::text(half)).value, 0.5);
            for g in [
                "",
                "ALLOW",
                "ANSWER: MAYBE | Mars",
                "ANSWER: | |",
                "\u{0}\u{1b}[2J",
            ] {
                assert_eq!(Msga.score(&t, &Outcome::text(g)).value, 0.0, "{g:?}");
            }
        }
    }
}

#[test]
fn jurisdictions_are_matched_leniently() {
    let t = tasks(12, Difficulty::Medium, 5)
        .into_iter()
        .find(|t| t.truth["jurisdiction"] != "NONE")
        .unwrap();
    let j = t.truth["jurisdiction"].as_str().unwrap();
    let d = t.truth["decision"].as_str().unwrap().to_lowercase();
    let text = format!("answer: {d} | Jurisdiction::\"{}\"", j.to_uppercase());
    assert_eq!(Msga.score(&t, &Outcome::text(text)).value, 1.0);
}

/// The oracle evaluates exactly the policy the task shows: every generated rule's JSON form is
/// the policy its Cedar text parses to, at every difficulty (every condition kind, `in [..]`
/// actions, `unless` clauses, conjunctions of several conditions).
#[test]
fn rules_are_their_text() {
    let mut rules = 0;
    for d in Difficulty::ALL {
        for i in 0..150 {
            let mut draw = Draw::for_task(FamilyId::Msga, d, 11, i);
            let case = candidate(&mut draw, d).unwrap();
            for (_, rule) in &case.policies {
                let parsed = Policy::parse(None, &rule.text).unwrap().to_json().unwrap();
                let built = Policy::from_json(None, rule.json.clone())
                    .unwrap()
                    .to_json()
                    .unwrap();
                assert_eq!(parsed, built, "{}", rule.text);
                rules += 1;
            }
        }
    }
    assert!(rules > 2_000, "{rules}");
}
