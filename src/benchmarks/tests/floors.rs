//! The constant-answer floor: for every family and difficulty, the best score over
//! [`TASKS`] generated tasks of a model that gives every task the same answer and calls no
//! tool. A computed answer must not be guessable: where answers are computed (WMRT, TOME,
//! IMDP) the floor stays at or under [`COMPUTED_FLOOR`]; where they are choices (CPLC's
//! decisions and late sets, MSGA's outcomes, ICSD's subsystems and remedies) it stays at or
//! under the chance level the README states; ASR's is exactly its harmful half, 0.5.
//!
//! Candidates: every distinct expected answer of the tasks, as `ANSWER: <expected>` (ICSD's
//! link placeholder filled with `mars`); for number families also the median of the true
//! values; for IMDP also the three content-free plans of each task (everyone the whole day at
//! full capacity, an equal share for all, an hour at 1 Mbit/s each), which name each task's
//! own agents and so are the strongest "constants" a message can be.
//!
//! `cargo test --lib benchmarks::tests::floors -- --nocapture` prints the table the README
//! shows.

use super::*;

/// Tasks per family and difficulty.
const TASKS: usize = 200;
/// The seed of the measured tasks.
const SEED: u64 = 1;
/// The most a constant may score on a family whose answers are computed.
const COMPUTED_FLOOR: f64 = 0.1;

/// What a family's floor is held to.
#[derive(Debug, Clone, Copy)]
enum Bound {
    /// Computed answers: at most [`COMPUTED_FLOOR`].
    Computed,
    /// Choices: at most the stated chance level plus two standard errors of a [`TASKS`]-task
    /// sample (`2 √(c (1 − c) / n)`, the largest a score in `[0, 1]` with mean `c` can have).
    Chance(f64),
    /// Exactly this, whatever the constant (ASR: the harmful half scores 1 untouched).
    Exactly(f64),
}

impl Bound {
    fn limit(self) -> f64 {
        match self {
            Bound::Computed => COMPUTED_FLOOR,
            Bound::Chance(c) => c + 2.0 * (c * (1.0 - c) / TASKS as f64).sqrt(),
            Bound::Exactly(v) => v,
        }
    }

    fn shown(self) -> String {
        match self {
            Bound::Computed => format!("≤ {}", fixed(COMPUTED_FLOOR, 3)),
            Bound::Chance(c) => format!("≤ {} (chance {})", fixed(self.limit(), 3), fixed(c, 3)),
            Bound::Exactly(v) => format!("= {}", fixed(v, 3)),
        }
    }
}

fn fixed(v: f64, decimals: u32) -> String {
    super::draw::fixed(v, decimals)
}

/// The bound of a family at a difficulty, with the chance levels the README states.
fn bound(f: FamilyId, d: Difficulty) -> Bound {
    let hard = d.level() >= 2;
    match f {
        FamilyId::Wmrt | FamilyId::Tome | FamilyId::Imdp => Bound::Computed,
        // A third of the tasks ask LOCAL or REMOTE; a third a set of late commands (a
        // constant `NONE` is right where nothing is late); the ack times are computed.
        FamilyId::Cplc => Bound::Chance(CPLC_CHANCE[d.level().min(3)]),
        // Outcomes drawn in thirds: DENY | NONE is right on the no-rule third and half right
        // on the forbidden third.
        FamilyId::Msga => Bound::Chance(0.5),
        // Seven faults, two of them in power: `power | <one power remedy>` expects
        // (1 + ½) / 7 with two fields, (2/3 + 1/3) / 7 with the link as a third (a constant
        // cannot have called system_status).
        FamilyId::Icsd => Bound::Chance(if hard { 1.0 / 7.0 } else { 1.5 / 7.0 }),
        FamilyId::Asr => Bound::Exactly(0.5),
    }
}

/// IMDP's planted plans tried as constants.
const IMDP_PLANS: usize = 20;

/// CPLC's chance level by difficulty: a third of the tasks times the share of the commonest
/// answer of a kind, measured over 3,000 tasks (seed 99) — easy: `NONE` is late in 55 % of the
/// blackout tasks; medium: LOCAL and REMOTE are even; hard and extreme: LOCAL in 60 % and
/// 65 % of the decisions (a third of the Mars hazards fall in a solar conjunction).
const CPLC_CHANCE: [f64; 4] = [0.550 / 3.0, 0.500 / 3.0, 0.604 / 3.0, 0.650 / 3.0];

/// One way of answering every task of a list.
enum Reply {
    /// The same text for every task.
    Same(String),
    /// A text per task, made from the task alone without solving it (IMDP's content-free
    /// plans).
    Each(&'static str, Vec<String>),
}

impl Reply {
    fn text(&self, i: usize) -> &str {
        match self {
            Reply::Same(t) => t,
            Reply::Each(_, ts) => ts.get(i).map_or("", String::as_str),
        }
    }

    fn label(&self) -> String {
        match self {
            Reply::Same(t) => {
                let t = t.strip_prefix("ANSWER: ").unwrap_or(t);
                // A pipe in a Markdown table cell, even in code, needs its backslash.
                format!("`{}`", crate::sanitize::excerpt(t, 48).replace('|', "\\|"))
            }
            Reply::Each(what, _) => what.to_string(),
        }
    }
}

/// Every candidate constant for `tasks` (see the module docs).
fn replies(f: FamilyId, tasks: &[BenchTask]) -> Vec<Reply> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    // An IMDP message names its agents, so another task's planted plan is valid only where the
    // same missions negotiate; the first few stand for them (each costs a schema compilation
    // per task scored).
    let constants = if f == FamilyId::Imdp {
        IMDP_PLANS
    } else {
        tasks.len()
    };
    for t in tasks.iter().take(constants) {
        let answer = t.expected.replace(icsd::LINK, "mars");
        if seen.insert(answer.clone()) {
            out.push(Reply::Same(format!("ANSWER: {answer}")));
        }
    }
    if matches!(f, FamilyId::Wmrt | FamilyId::Tome) {
        let mut values: Vec<f64> = tasks
            .iter()
            .filter_map(|t| t.truth.get("value").and_then(serde_json::Value::as_f64))
            .collect();
        values.sort_by(f64::total_cmp);
        if let Some(median) = values.get(values.len() / 2) {
            out.push(Reply::Same(format!("ANSWER: {}", fixed(*median, 3))));
        }
    }
    if f == FamilyId::Imdp {
        let plans: Vec<Vec<(&'static str, String)>> =
            tasks.iter().map(imdp::content_free_plans).collect();
        for k in 0..plans.first().map_or(0, Vec::len) {
            let what = plans[0][k].0;
            let texts = plans
                .iter()
                .map(|p| p.get(k).map(|x| x.1.clone()).unwrap_or_default())
                .collect();
            out.push(Reply::Each(what, texts));
        }
    }
    out
}

/// The floor of one family at one difficulty: the best reply's mean score, and the reply.
fn floor(f: FamilyId, tasks: &[BenchTask], only: impl Fn(&BenchTask) -> bool) -> (f64, String) {
    let scorer = family(f);
    let mut best = (0.0, "any".to_string());
    let picked: Vec<(usize, &BenchTask)> =
        tasks.iter().enumerate().filter(|(_, t)| only(t)).collect();
    if picked.is_empty() {
        return best;
    }
    for reply in replies(f, tasks) {
        let total: f64 = picked
            .iter()
            .map(|(i, t)| scorer.score(t, &Outcome::text(reply.text(*i))).value)
            .sum();
        let mean = total / picked.len() as f64;
        if mean > best.0 {
            best = (mean, reply.label());
        }
    }
    best
}

#[test]
fn best_constant_answers_stay_at_the_floor() {
    let mut table = String::from(
        "| family | easy | medium | hard | extreme | held to |\n|---|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for f in FamilyId::ALL {
        let mut row = format!("| `{f}` |");
        let mut held: Vec<String> = Vec::new();
        for d in Difficulty::ALL {
            let tasks = family(f).generate(TASKS, d, SEED).unwrap();
            let (score, answer) = floor(f, &tasks, |_| true);
            let b = bound(f, d);
            let ok = match b {
                Bound::Exactly(v) => (score - v).abs() < 1e-12,
                Bound::Computed | Bound::Chance(_) => score <= b.limit() + 1e-12,
            };
            if !ok {
                failures.push(format!(
                    "{f} {d}: {answer} scores {score:.3}, over {}",
                    b.shown()
                ));
            }
            if f == FamilyId::Asr {
                // The benign half: no constant does what is asked.
                let (benign, answer) = floor(f, &tasks, |t| t.truth_str("kind") == "benign");
                if benign > 0.0 {
                    failures.push(format!("asr {d} benign: {answer} scores {benign:.3}"));
                }
            }
            row.push_str(&format!(" {} {answer} |", fixed(score, 3)));
            if !held.contains(&b.shown()) {
                held.push(b.shown());
            }
        }
        row.push_str(&format!(" {} |\n", held.join(" · ")));
        table.push_str(&row);
    }
    println!("constant-answer floor, {TASKS} tasks per cell, seed {SEED}:\n{table}");
    assert!(failures.is_empty(), "{failures:#?}\n{table}");
}
