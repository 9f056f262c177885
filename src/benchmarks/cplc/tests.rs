//! Tests of the CPLC family: generated tasks, their reference answers and the scorer.

use super::*;

fn tasks(n: usize, d: Difficulty, seed: u64) -> Vec<BenchTask> {
    Cplc.generate(n, d, seed).unwrap()
}

#[test]
fn difficulty_changes_the_task() {
    let easy = tasks(6, Difficulty::Easy, 3);
    let extreme = tasks(6, Difficulty::Extreme, 3);
    let len = |ts: &[BenchTask]| ts.iter().map(|t| t.prompt.len()).sum::<usize>();
    assert!(
        len(&extreme) > len(&easy) * 3 / 2,
        "{} vs {}",
        len(&extreme),
        len(&easy)
    );
    assert!(easy[0].prompt.contains("light time between Earth"));
    assert!(extreme[0].prompt.contains("contact windows"));
    assert!(extreme[0].prompt.contains("relay orbiter"));
    let cmds = |t: &BenchTask| t.prompt.matches("\n- C").count();
    assert_eq!(cmds(&easy[2]), 3);
    assert_eq!(cmds(&extreme[2]), 10);
}

#[test]
fn conjunctions_are_real_and_short() {
    let w = conjunctions().unwrap();
    assert!(w.len() >= 8, "{} conjunctions 2026-2049", w.len());
    for &(b, e) in w {
        assert!(e > b && e - b < 30 * 86_400, "{b}..{e}");
        assert!(elongation_deg((b + e) / 2).unwrap() < BLACKOUT_DEG);
    }
    // The 2028 conjunction: Mars passes behind the Sun in March–April 2028... or nearby.
    assert!(
        w.iter()
            .any(|&(b, _)| utc(b).unwrap().format("%Y").to_string() == "2028")
    );
}

#[test]
fn the_true_answer_scores_1_wrong_answers_0_garbage_0() {
    for d in Difficulty::ALL {
        for t in tasks(9, d, 11) {
            let right = Cplc.score(
                &t,
                &Outcome::text(format!("Reasoning…\nANSWER: {}", t.expected)),
            );
            assert_eq!(right.value, 1.0, "{}: {}", t.id, right.reason);
            let wrong = match t.truth["kind"].as_str().unwrap() {
                "ack" => {
                    let at = parse_timestamp(&t.expected).unwrap() + chrono::TimeDelta::hours(1);
                    stamp(at)
                }
                "decide" => {
                    if t.expected == "LOCAL" {
                        "REMOTE".into()
                    } else {
                        "LOCAL".into()
                    }
                }
                _ => {
                    if t.expected == "NONE" {
                        "C1".into()
                    } else {
                        "NONE".into()
                    }
                }
            };
            let s = Cplc.score(&t, &Outcome::text(format!("ANSWER: {wrong}")));
            assert_eq!(s.value, 0.0, "{}: {wrong} scored {}", t.id, s.reason);
            for garbage in [
                "",
                "ANSWER:",
                "I cannot say.\nMaybe later.",
                "ANSWER: ¯\\_(ツ)_/¯ | x",
            ] {
                assert_eq!(Cplc.score(&t, &Outcome::text(garbage)).value, 0.0);
            }
        }
    }
}

#[test]
fn ack_times_are_scored_within_the_tolerance() {
    let t = &tasks(1, Difficulty::Easy, 5)[0];
    let want = parse_timestamp(&t.expected).unwrap();
    let near = stamp(want + chrono::TimeDelta::seconds(3));
    assert_eq!(
        Cplc.score(t, &Outcome::text(format!("ANSWER: {near}")))
            .value,
        1.0
    );
    let spelled = (want).format("%Y-%m-%d %H:%M:%S UTC").to_string();
    assert_eq!(
        Cplc.score(t, &Outcome::text(format!("answer: {spelled}")))
            .value,
        1.0
    );
}

#[test]
fn time_fields_reject_the_words_number_fields_reject() {
    let t = &tasks(1, Difficulty::Easy, 5)[0];
    let e = &t.expected;
    for ok in [e.clone(), format!("≈ {e}"), format!("about {e}")] {
        let s = Cplc.score(t, &Outcome::text(format!("ANSWER: {ok}")));
        assert_eq!(s.value, 1.0, "{ok}: {}", s.reason);
    }
    for hedged in [
        "not {}",
        "no earlier than {}",
        "at least {}",
        "at most {}",
        "more than {}",
        "less than {}",
        "< {}",
        "≥ {}",
        "between {} and {}",
        "{} or later",
        "REFUSED / {}",
    ] {
        let text = format!("ANSWER: {}", hedged.replace("{}", e));
        let s = Cplc.score(t, &Outcome::text(&text));
        assert_eq!(s.value, 0.0, "{text}: {}", s.reason);
    }
}

#[test]
fn blackout_answers_are_order_free_and_late_sets_vary() {
    let ts = tasks(60, Difficulty::Medium, 2);
    let blackout: Vec<&BenchTask> = ts
        .iter()
        .filter(|t| t.truth["kind"] == "blackout")
        .collect();
    assert!(blackout.iter().any(|t| t.expected == "NONE"));
    assert!(blackout.iter().any(|t| t.expected != "NONE"));
    let t = blackout.iter().find(|t| t.expected.contains(',')).unwrap();
    let mut parts: Vec<&str> = t.expected.split(", ").collect();
    parts.reverse();
    let reversed = parts.join(" and ").to_lowercase();
    assert_eq!(
        Cplc.score(t, &Outcome::text(format!("ANSWER: {reversed}")))
            .value,
        1.0
    );
}

#[test]
fn decisions_are_balanced() {
    let ts = tasks(90, Difficulty::Hard, 4);
    let local = ts.iter().filter(|t| t.expected == "LOCAL").count();
    let remote = ts.iter().filter(|t| t.expected == "REMOTE").count();
    assert!(local >= 5 && remote >= 5, "{local} LOCAL, {remote} REMOTE");
    assert!(ts.iter().any(|t| t.truth["blackout"] == true));
}
