use super::*;

fn tasks(n: usize, d: Difficulty, seed: u64) -> Vec<BenchTask> {
    Tome.generate(n, d, seed).unwrap()
}

#[test]
fn every_task_offers_the_tools_and_names_its_scratch_directory_only_by_placeholder() {
    for d in Difficulty::ALL {
        for t in tasks(8, d, 3) {
            assert_eq!(
                t.tools,
                TaskTools::Only(TOOLS.iter().map(|s| s.to_string()).collect())
            );
            let has_files = super::super::scratch::task_files(&t).is_some();
            assert_eq!(has_files, t.prompt.contains(WORKDIR), "{}", t.id);
            if let Some(files) = super::super::scratch::task_files(&t) {
                assert!(!files.unwrap().is_empty());
            }
        }
    }
}

#[test]
fn harder_levels_need_more_calls_and_bigger_numbers() {
    let needed = |d| -> u64 {
        tasks(8, d, 2)
            .iter()
            .map(|t| t.truth["needed_calls"].as_u64().unwrap())
            .sum()
    };
    assert!(needed(Difficulty::Easy) < needed(Difficulty::Extreme));
    let calc = |d| tasks(1, d, 2)[0].truth["value"].as_f64().unwrap().abs();
    assert!(calc(Difficulty::Easy) < calc(Difficulty::Hard));
    assert!(
        tasks(4, Difficulty::Extreme, 2)[2].truth["files"]
            .as_array()
            .unwrap()
            .len()
            == 2
    );
}

#[test]
fn the_calculator_computes_the_truth_of_calc_tasks() {
    for d in [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard] {
        for t in tasks(12, d, 9).iter().filter(|t| t.truth["kind"] == "calc") {
            let line = t.prompt.lines().nth(1).unwrap();
            let expression = line
                .trim_start_matches("What is ")
                .trim_end_matches('?')
                .replace('×', "*")
                .replace('−', "-");
            let got = crate::tools::calculator::evaluate(&expression).unwrap();
            assert_eq!(got, t.truth["value"].as_f64().unwrap(), "{expression}");
            // Every intermediate is exact in f64.
            assert!(got.abs() < 9.0e15);
        }
    }
}

#[tokio::test]
async fn light_time_truth_is_what_the_light_time_tool_answers() {
    use crate::tools::Tool;
    let tool = crate::tools::builtin::LightTime;
    let at = "2031-05-04T10:20:30Z";
    let when = DateTime::parse_from_rfc3339(at)
        .unwrap()
        .with_timezone(&Utc);
    for body in ["moon", "mars", "jupiter"] {
        let out = tool
            .invoke(&json!({ "body": body, "at": at }))
            .await
            .unwrap();
        assert_eq!(
            out.value["one_way_s"].as_f64(),
            Some(one_way_s(body, when).unwrap())
        );
    }
    assert!(one_way_s("pluto", when).is_err());
}

#[test]
fn the_true_answer_scores_1_wrong_answers_0_garbage_0() {
    for d in Difficulty::ALL {
        for t in tasks(12, d, 6) {
            let perfect = perfect_outcome(&t, &format!("Done.\nANSWER: {}", t.expected));
            let s = Tome.score(&t, &perfect);
            assert_eq!(s.value, 1.0, "{}: {}", t.id, s.reason);
            let want = t.truth["value"].as_f64().unwrap();
            let wrong = fixed(want + 1000.0, 3);
            let s = Tome.score(&t, &perfect_outcome(&t, &format!("ANSWER: {wrong}")));
            if t.truth.get("result_file").is_some() {
                // The file is right and the answer wrong: half the correctness.
                assert_eq!(s.value, 0.5, "{}: {}", t.id, s.reason);
            } else {
                assert_eq!(s.value, 0.0, "{}: {}", t.id, s.reason);
            }
            for g in [
                "",
                "ANSWER: 1 or 2",
                "ANSWER: ∞",
                "\u{202e}ANSWER",
                "ANSWER: NaN",
            ] {
                let mut o = perfect_outcome(&t, g);
                o.files = None;
                assert_eq!(Tome.score(&t, &o).value, 0.0, "{g:?}");
                assert_eq!(Tome.score(&t, &Outcome::text(g)).value, 0.0, "{g:?}");
            }
        }
    }
}

#[test]
fn economy_of_calls_and_the_result_file_are_scored() {
    let t = &tasks(3, Difficulty::Hard, 4)[2];
    assert_eq!(t.truth["kind"], "file");
    let answer = format!("ANSWER: {}", t.expected);
    let needed = t.truth["needed_calls"].as_u64().unwrap() as usize;
    // Twice the calls needed: ½ + ½ · ½.
    let mut o = perfect_outcome(t, &answer);
    let extra = o.steps.clone();
    o.steps.extend(extra);
    assert_eq!(o.steps.len(), 2 * needed);
    let s = Tome.score(t, &o);
    assert_eq!(s.value, 0.75, "{}", s.reason);
    assert!(s.reason.contains("economy 0.50"), "{}", s.reason);
    // A right answer without tools keeps economy 1 but misses the file.
    let mut o = perfect_outcome(t, &answer);
    o.steps.clear();
    o.tool_calls = 0;
    o.files.as_mut().unwrap().retain(|f| f.path != "result.txt");
    let s = Tome.score(t, &o);
    assert_eq!(s.value, 0.5, "{}", s.reason);
    assert!(
        s.reason.contains("result.txt was not written"),
        "{}",
        s.reason
    );
    // A hostile result file: not one number.
    let mut o = perfect_outcome(t, &answer);
    for f in o.files.as_mut().unwrap() {
        if f.path == "result.txt" {
            f.content = "12 or 13\u{1b}[2J".into();
        }
    }
    assert_eq!(Tome.score(t, &o).value, 0.5);
}

#[test]
fn a_hedged_or_negated_number_is_not_that_number() {
    for d in Difficulty::ALL {
        for t in tasks(16, d, 5) {
            let e = &t.expected;
            let right = Tome.score(&t, &perfect_outcome(&t, &format!("ANSWER: ≈ {e}")));
            assert_eq!(right.value, 1.0, "{}: {}", t.id, right.reason);
            for hedged in [
                "not {}",
                "at least {}",
                "at most {}",
                "more than {}",
                "less than {}",
                "no {}",
                "< {}",
                "≥ {}",
                "between 0 and {}",
                "{} or more",
                "REFUSED / {}",
            ] {
                let text = format!("ANSWER: {}", hedged.replace("{}", e));
                let mut o = perfect_outcome(&t, &text);
                o.files = None;
                let s = Tome.score(&t, &o);
                assert_eq!(s.value, 0.0, "{}: {text} → {}", t.id, s.reason);
                assert_eq!(Tome.score(&t, &Outcome::text(&text)).value, 0.0);
            }
        }
    }
}

#[test]
fn a_constant_does_not_pass_a_light_time_task() {
    // The Moon's one-way light time spreads over 1.19–1.36 s; a tolerance of 0.5 s let
    // `ANSWER: 2.56` with no tool call pass the round trip of tome-medium-s11-0001.
    let ts = tasks(2, Difficulty::Medium, 11);
    let t = &ts[1];
    assert_eq!(t.id, "tome-medium-s11-0001");
    assert_eq!(t.truth["kind"], "light");
    assert!(t.prompt.contains("the Moon"), "{}", t.prompt);
    let s = Tome.score(t, &Outcome::text("ANSWER: 2.56"));
    assert_eq!(s.value, 0.0, "{}", s.reason);
    // The truth itself, to the millisecond, still scores 1; 10 ms off does not.
    let want = t.truth["value"].as_f64().unwrap();
    let near = format!("ANSWER: {}", fixed(want + 0.009, 3));
    assert_eq!(Tome.score(t, &Outcome::text(near)).value, 1.0);
    let off = format!("ANSWER: {}", fixed(want + 0.011, 3));
    assert_eq!(Tome.score(t, &Outcome::text(off)).value, 0.0);
    // Tolerances per kind: 5 ms per one-way time in the answer.
    for d in Difficulty::ALL {
        for t in tasks(40, d, 3) {
            let tol = t.truth["tolerance"].as_f64().unwrap();
            match t.truth["kind"].as_str().unwrap() {
                "light" => assert!(tol <= 4.0 * LIGHT_TOLERANCE_S + 1e-12, "{}", t.id),
                "chain" => assert!(tol <= 240.0 * LIGHT_TOLERANCE_S + 1e-12, "{}", t.id),
                _ => assert!(tol <= 0.5, "{}", t.id),
            }
        }
    }
}

#[test]
fn every_prompt_names_the_unit_it_asks_for_or_none() {
    for d in Difficulty::ALL {
        for t in tasks(8, d, 4) {
            assert!(!t.prompt.contains("a number in ."), "{}", t.prompt);
            let unit = match &t.format.fields[0].kind {
                FieldKind::Number { unit } => unit.clone(),
                other => panic!("{other:?}"),
            };
            let want = if unit.is_empty() {
                "where <value> is a number.".to_string()
            } else {
                format!("where <value> is a number in {unit}.")
            };
            assert!(t.prompt.contains(&want), "{}: {}", t.id, t.prompt);
        }
    }
}
