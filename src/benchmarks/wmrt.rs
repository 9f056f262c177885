//! WMRT — World-Model Robustness & Transfer: one physical question asked again under different
//! worlds (Earth, Moon, Mars, Europa, Titan), each time in other words and among irrelevant
//! facts. The variants of one question form a *cluster* (`BenchTask::cluster`); statistics
//! cluster the standard error on them and report the share of clusters answered right in every
//! variant (consistency).
//!
//! Questions: fall time, pendulum period, projectile range, jump height (all hinge on the
//! world's surface gravity) and the boiling point of water in a pressurized habitat (which
//! does not depend on the world at all — the world is the distractor). Ground truth is computed
//! from the formulas; numbers are scored within 2 % (3 % where the model must recall gravity;
//! boiling points within 0.5 °C where the prompt gives the relation, 1 °C where it must be
//! recalled). Tolerances sit well below the spread of the true answers: the test
//! `best_constant_answers_stay_at_the_floor` shows no constant scores over 0.1.
//!
//! Difficulty: easy states g and uses 2 worlds per cluster; medium states g among distractors,
//! 3 worlds; hard leaves g to the model's knowledge, 4 worlds, more distractors; extreme gives
//! only the world's mass and radius (g = GM/R²), lengths in feet, 5 worlds.

use serde_json::json;

use super::answer::{extract_fields, number, within};
use super::draw::{Draw, fixed};
use super::framework::{
    AnswerField, AnswerFormat, BenchError, BenchTask, Difficulty, Family, FamilyId, FieldKind,
    Outcome, SYSTEM_PROMPT, Score, TaskTools,
};

/// The WMRT family.
#[derive(Debug, Clone, Copy)]
pub struct Wmrt;

/// Gravitational constant, m³ kg⁻¹ s⁻².
const G_CONST: f64 = 6.674e-11;
/// Metres per foot.
const FOOT_M: f64 = 0.3048;

/// A world and the facts the prompts may state about it.
struct World {
    name: &'static str,
    /// Surface gravity, m/s².
    g: f64,
    mass_kg: f64,
    radius_km: f64,
    day_hours: f64,
    mean_temp_c: f64,
    atmosphere: &'static str,
}

const WORLDS: [World; 5] = [
    World {
        name: "Earth",
        g: 9.81,
        mass_kg: 5.972e24,
        radius_km: 6371.0,
        day_hours: 24.0,
        mean_temp_c: 15.0,
        atmosphere: "101 kPa of nitrogen and oxygen",
    },
    World {
        name: "the Moon",
        g: 1.62,
        mass_kg: 7.342e22,
        radius_km: 1737.4,
        day_hours: 708.7,
        mean_temp_c: -20.0,
        atmosphere: "no atmosphere to speak of",
    },
    World {
        name: "Mars",
        g: 3.71,
        mass_kg: 6.417e23,
        radius_km: 3389.5,
        day_hours: 24.66,
        mean_temp_c: -63.0,
        atmosphere: "0.6 kPa of carbon dioxide",
    },
    World {
        name: "Europa",
        g: 1.315,
        mass_kg: 4.80e22,
        radius_km: 1560.8,
        day_hours: 85.2,
        mean_temp_c: -160.0,
        atmosphere: "a trace of oxygen",
    },
    World {
        name: "Titan",
        g: 1.352,
        mass_kg: 1.345e23,
        radius_km: 2574.7,
        day_hours: 382.7,
        mean_temp_c: -179.0,
        atmosphere: "147 kPa of nitrogen, thicker than Earth's",
    },
];

/// The physical questions.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Question {
    Fall,
    Pendulum,
    Range,
    Jump,
    Boiling,
}

const QUESTIONS: [Question; 5] = [
    Question::Fall,
    Question::Pendulum,
    Question::Range,
    Question::Jump,
    Question::Boiling,
];

impl Question {
    fn name(self) -> &'static str {
        match self {
            Question::Fall => "fall_time",
            Question::Pendulum => "pendulum_period",
            Question::Range => "projectile_range",
            Question::Jump => "jump_height",
            Question::Boiling => "boiling_point",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Question::Fall | Question::Pendulum => "s",
            Question::Range | Question::Jump => "m",
            Question::Boiling => "°C",
        }
    }
}

/// Worlds per cluster, by difficulty.
pub fn cluster_size(difficulty: Difficulty) -> usize {
    [2, 3, 4, 5][difficulty.level()]
}

/// Index of the stream a cluster's shared parameters are drawn from (apart from the tasks').
const CLUSTER_STREAM: u64 = 1 << 62;

impl Family for Wmrt {
    fn id(&self) -> FamilyId {
        FamilyId::Wmrt
    }

    fn generate(
        &self,
        count: usize,
        difficulty: Difficulty,
        seed: u64,
    ) -> Result<Vec<BenchTask>, BenchError> {
        let k = cluster_size(difficulty);
        let mut tasks = Vec::with_capacity(count);
        for i in 0..count {
            let (c, v) = (i / k, i % k);
            let mut shared =
                Draw::for_task(FamilyId::Wmrt, difficulty, seed, CLUSTER_STREAM + c as u64);
            let question = shared.pick(&QUESTIONS).copied().unwrap_or(Question::Fall);
            let worlds = shared.sample(WORLDS.len(), k);
            let params = Params::draw(&mut shared, question, difficulty);
            let Some(world) = worlds.get(v).and_then(|&w| WORLDS.get(w)) else {
                return Err(BenchError::Generate {
                    family: FamilyId::Wmrt,
                    index: i,
                    message: format!("no world for variant {v}"),
                });
            };
            let mut own = Draw::for_task(FamilyId::Wmrt, difficulty, seed, i as u64);
            let cluster = format!("wmrt-{difficulty}-s{seed}-c{c:03}");
            tasks.push(variant(
                &mut own, question, &params, world, difficulty, cluster, v,
            ));
        }
        Ok(tasks)
    }

    fn score(&self, task: &BenchTask, outcome: &Outcome) -> Score {
        let fields = match extract_fields(&outcome.text, 1) {
            Ok(f) => f,
            Err(e) => return Score::zero(e),
        };
        let want = task.truth.get("value").and_then(|v| v.as_f64());
        let tolerance = task
            .truth
            .get("tolerance")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        let unit = task
            .truth
            .get("unit")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let Some(want) = want else {
            return Score::zero("the task has no ground truth value");
        };
        let got = match number(&fields[0]) {
            Ok(got) => got,
            Err(e) => return Score::zero(e),
        };
        if within(got, want, tolerance) {
            Score::new(1.0, format!("within ±{} {unit}", fixed(tolerance, 3)))
        } else {
            Score::zero(format!(
                "{} {unit} is off by more than ±{} {unit}",
                fixed(got, 3),
                fixed(tolerance, 3)
            ))
        }
    }
}

/// A cluster's shared numbers.
struct Params {
    /// Height (fall), length (pendulum), or speed (range, jump), in SI units.
    a: f64,
    /// Launch angle (range), degrees; habitat pressure (boiling), kPa.
    b: f64,
}

impl Params {
    fn draw(draw: &mut Draw, question: Question, difficulty: Difficulty) -> Self {
        let scale = [1.0, 4.0, 20.0, 60.0][difficulty.level()];
        match question {
            Question::Fall => Params {
                a: draw.int(2, (20.0 * scale) as i64) as f64,
                b: 0.0,
            },
            Question::Pendulum => Params {
                a: draw.int(5, (20.0 * scale) as i64) as f64 / 10.0,
                b: 0.0,
            },
            Question::Range => Params {
                a: draw.int(5, (8.0 * scale) as i64 + 10) as f64,
                b: draw.int(15, 75) as f64,
            },
            Question::Jump => Params {
                a: draw.int(10, 30 + (5.0 * scale) as i64) as f64 / 10.0,
                b: 0.0,
            },
            Question::Boiling => Params {
                a: 0.0,
                b: draw.int(30, 100) as f64,
            },
        }
    }
}

/// The world's gravity as the task's ground truth uses it: the table value, or GM/R² from the
/// stated mass and radius at extreme.
fn gravity(world: &World, difficulty: Difficulty) -> f64 {
    if difficulty == Difficulty::Extreme {
        G_CONST * world.mass_kg / (world.radius_km * 1000.0).powi(2)
    } else {
        world.g
    }
}

/// Boiling point of water at `kpa`, °C, by Clausius–Clapeyron from 100 °C at 101.325 kPa
/// with ΔH = 40.66 kJ/mol.
fn boiling_c(kpa: f64) -> f64 {
    let inv = 1.0 / 373.15 - 8.314 / 40_660.0 * (kpa / 101.325).ln();
    1.0 / inv - 273.15
}

fn length(metres: f64, difficulty: Difficulty) -> String {
    if difficulty == Difficulty::Extreme {
        format!(
            "{} ft (1 ft = {} m)",
            fixed(metres / FOOT_M, 1),
            fixed(FOOT_M, 4)
        )
    } else {
        format!("{} m", fixed(metres, 1))
    }
}

fn variant(
    draw: &mut Draw,
    question: Question,
    p: &Params,
    world: &World,
    difficulty: Difficulty,
    cluster: String,
    v: usize,
) -> BenchTask {
    let level = difficulty.level();
    let g = gravity(world, difficulty);
    // At extreme, stated lengths are rounded in feet; the truth uses the stated value.
    let a = if difficulty == Difficulty::Extreme
        && matches!(question, Question::Fall | Question::Pendulum)
    {
        fixed(p.a / FOOT_M, 1).parse::<f64>().unwrap_or(0.0) * FOOT_M
    } else {
        p.a
    };
    let (value, decimals) = match question {
        Question::Fall => ((2.0 * a / g).sqrt(), 3),
        Question::Pendulum => (2.0 * std::f64::consts::PI * (a / g).sqrt(), 3),
        Question::Range => (a * a * (2.0 * p.b).to_radians().sin() / g, 2),
        Question::Jump => (a * a / (2.0 * g), 3),
        Question::Boiling => (boiling_c(p.b), 2),
    };
    let where_ = world.name;
    let templates: Vec<String> = match question {
        Question::Fall => vec![
            format!(
                "A tool slips from a ledge {} above the ground on {where_}. How long does it fall before it lands?",
                length(a, difficulty)
            ),
            format!(
                "On {where_}, a sample canister is dropped from rest at a height of {}. Find its time of fall.",
                length(a, difficulty)
            ),
            format!(
                "How many seconds does a stone released from rest take to fall {} on {where_}?",
                length(a, difficulty)
            ),
        ],
        Question::Pendulum => vec![
            format!(
                "A simple pendulum {} long swings gently in a lab on {where_}. What is its period?",
                length(a, difficulty)
            ),
            format!(
                "On {where_}, engineers time a {} pendulum with small swings. How long is one full oscillation?",
                length(a, difficulty)
            ),
            format!(
                "Find the period of small oscillations of a pendulum of length {} on {where_}.",
                length(a, difficulty)
            ),
        ],
        Question::Range => vec![
            format!(
                "On {where_}, a ball is launched from level ground at {} m/s, {}° above the horizontal. How far away does it land?",
                fixed(a, 1),
                fixed(p.b, 0)
            ),
            format!(
                "A rover's sampling mortar fires a pellet at {} m/s at an elevation of {}° over flat terrain on {where_}. What is its range?",
                fixed(a, 1),
                fixed(p.b, 0)
            ),
            format!(
                "What horizontal distance does a projectile cover on flat ground on {where_} when launched at {} m/s and {}°?",
                fixed(a, 1),
                fixed(p.b, 0)
            ),
        ],
        Question::Jump => vec![
            format!(
                "An astronaut on {where_} jumps straight up with a take-off speed of {} m/s. How high does the jump go?",
                fixed(a, 2)
            ),
            format!(
                "On {where_}, a hopping robot leaves the ground vertically at {} m/s. Find the greatest height it reaches.",
                fixed(a, 2)
            ),
            format!(
                "How high does something thrown straight up at {} m/s rise on {where_}?",
                fixed(a, 2)
            ),
        ],
        Question::Boiling => vec![
            format!(
                "A pressurized habitat on {where_} keeps its air at {} kPa. At what temperature does water boil inside it?",
                fixed(p.b, 0)
            ),
            format!(
                "The galley of a base on {where_} runs at a cabin pressure of {} kPa. What is the boiling point of water there?",
                fixed(p.b, 0)
            ),
            format!(
                "Inside a dome on {where_} held at {} kPa, at what temperature will a pot of water boil?",
                fixed(p.b, 0)
            ),
        ],
    };
    let pick = draw.index(templates.len());
    let mut text = templates.get(pick).cloned().unwrap_or_default();
    let mut facts = Vec::new();
    let g_relevant = question != Question::Boiling;
    match difficulty {
        Difficulty::Easy | Difficulty::Medium if g_relevant => facts.push(format!(
            "The surface gravity of {where_} is {} m/s².",
            fixed(world.g, 3)
        )),
        Difficulty::Extreme => facts.push(format!(
            "{} has a mass of {} kg and a radius of {} km (G = {} m³ kg⁻¹ s⁻²).",
            capitalized(where_),
            sci(world.mass_kg),
            fixed(world.radius_km, 1),
            sci(G_CONST)
        )),
        _ => {}
    }
    if question == Question::Boiling && level < 2 {
        facts.push(
            "Water boils at 100 °C at 101.325 kPa; use the Clausius–Clapeyron relation with a \
             heat of vaporization of 40.66 kJ/mol."
                .to_string(),
        );
    }
    let mut distractors = vec![
        format!(
            "A day on {where_} lasts {} hours.",
            fixed(world.day_hours, 1)
        ),
        format!(
            "The mean surface temperature of {where_} is {} °C.",
            fixed(world.mean_temp_c, 0)
        ),
        format!("{} has {}.", capitalized(where_), world.atmosphere),
        format!(
            "The object has a mass of {} kg.",
            fixed(draw.float(0.2, 80.0), 1)
        ),
        format!("The crew's shift began {} hours ago.", draw.int(1, 11)),
    ];
    draw.shuffle(&mut distractors);
    distractors.truncate([0, 1, 3, 5][level]);
    facts.extend(distractors);
    draw.shuffle(&mut facts);
    if matches!(question, Question::Fall | Question::Range | Question::Jump) {
        text.push_str(" Ignore air resistance.");
    }
    let prompt_body = if facts.is_empty() {
        text
    } else {
        format!("{} {text}", facts.join(" "))
    };
    let unit = question.unit();
    let format = AnswerFormat::new(vec![AnswerField {
        name: question.name().into(),
        kind: FieldKind::Number { unit: unit.into() },
    }]);
    // The boiling point does not depend on the world, so every variant of a cluster has the
    // same answer: its tolerance must be narrow, or a constant near the common boiling points
    // passes whole clusters. 0.5 °C where the prompt gives the relation to use; 1 °C where
    // the model must recall it (Clausius–Clapeyron with a constant heat of vaporization and
    // the steam tables differ by up to 0.8 °C down to 30 kPa).
    let tolerance = if question == Question::Boiling {
        if level < 2 { 0.5 } else { 1.0 }
    } else if level == 2 {
        value.abs() * 0.03
    } else {
        value.abs() * 0.02
    };
    let expected = fixed(value, decimals);
    BenchTask {
        id: format!("{cluster}-v{v}"),
        family: FamilyId::Wmrt,
        difficulty,
        cluster,
        prompt: format!("{prompt_body}\n\n{}", format.instruction()),
        system: SYSTEM_PROMPT.to_string(),
        format,
        truth: json!({
            "kind": question.name(),
            "world": world.name,
            "value": expected.parse::<f64>().unwrap_or(0.0),
            "unit": unit,
            "tolerance": fixed(tolerance, 4).parse::<f64>().unwrap_or(0.0),
            "g": fixed(g, 4).parse::<f64>().unwrap_or(0.0),
        }),
        expected,
        tools: TaskTools::None,
        dialogue: None,
    }
}

/// `x` as `m.mmm×10^e` with four significant digits.
fn sci(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return "0".into();
    }
    let e = x.abs().log10().floor() as i32;
    let m = x / 10f64.powi(e);
    format!("{}×10^{e}", fixed(m, 3))
}

fn capitalized(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(n: usize, d: Difficulty, seed: u64) -> Vec<BenchTask> {
        Wmrt.generate(n, d, seed).unwrap()
    }

    #[test]
    fn clusters_share_one_question_across_different_worlds() {
        let ts = tasks(9, Difficulty::Medium, 2);
        for chunk in ts.chunks(3) {
            let cluster = &chunk[0].cluster;
            assert!(chunk.iter().all(|t| &t.cluster == cluster));
            let kind = &chunk[0].truth["kind"];
            assert!(chunk.iter().all(|t| &t.truth["kind"] == kind));
            let mut worlds: Vec<&str> = chunk
                .iter()
                .map(|t| t.truth["world"].as_str().unwrap())
                .collect();
            worlds.dedup();
            assert_eq!(worlds.len(), 3);
        }
        assert_ne!(ts[0].cluster, ts[3].cluster);
    }

    #[test]
    fn difficulty_changes_the_task() {
        let easy = tasks(10, Difficulty::Easy, 1);
        let extreme = tasks(10, Difficulty::Extreme, 1);
        assert_eq!(easy[2].cluster, format!("wmrt-easy-s1-c001"));
        assert!(extreme.iter().all(|t| t.prompt.contains("radius")));
        let hard = tasks(10, Difficulty::Hard, 1);
        assert!(hard.iter().all(|t| !t.prompt.contains("surface gravity")));
        let words = |ts: &[BenchTask]| ts.iter().map(|t| t.prompt.len()).sum::<usize>();
        assert!(words(&extreme) > words(&easy));
    }

    #[test]
    fn an_echo_of_the_question_is_not_an_answer() {
        // The default mock answers `Acknowledged: "<first 60 characters of the prompt>".` and
        // a few stock sentences. Taken as a bare one-line answer, the echo of
        // wmrt-medium-s1-c141-v2 held one number, within tolerance of the truth: the mock
        // scored 0.0023 on WMRT at --count 430 --seed 1.
        let ts = tasks(430, Difficulty::Medium, 1);
        let t = ts
            .iter()
            .find(|t| t.id == "wmrt-medium-s1-c141-v2")
            .unwrap();
        let echo = format!(
            "Acknowledged: \"{}\". Link budget is nominal and the uplink window is open.",
            crate::events::title_of(&t.prompt, 60)
        );
        let echoed = crate::benchmarks::answer::parse_number(&echo).unwrap();
        let tolerance = t.truth["tolerance"].as_f64().unwrap();
        assert!(within(
            echoed,
            t.truth["value"].as_f64().unwrap(),
            tolerance
        ));
        let s = Wmrt.score(t, &Outcome::text(echo.clone()));
        assert_eq!(s.value, 0.0, "{echo}: {}", s.reason);
        assert_eq!(s.reason, "no ANSWER line");
        // Nor is the bare number, or any echo.
        assert_eq!(Wmrt.score(t, &Outcome::text(&t.expected)).value, 0.0);
        for t in &ts {
            let echo = format!(
                "Acknowledged: \"{}\".",
                crate::events::title_of(&t.prompt, 60)
            );
            assert_eq!(Wmrt.score(t, &Outcome::text(echo)).value, 0.0, "{}", t.id);
        }
    }

    #[test]
    fn a_hedged_or_negated_number_is_not_that_number() {
        for d in Difficulty::ALL {
            for t in tasks(20, d, 5) {
                let e = &t.expected;
                assert_eq!(
                    Wmrt.score(&t, &Outcome::text(format!("ANSWER: {e}"))).value,
                    1.0
                );
                assert_eq!(
                    Wmrt.score(&t, &Outcome::text(format!("ANSWER: ≈ {e}")))
                        .value,
                    1.0
                );
                for hedged in [
                    format!("not {e}"),
                    format!("at least {e}"),
                    format!("at most {e}"),
                    format!("more than {e}"),
                    format!("less than {e}"),
                    format!("no {e}"),
                    format!("< {e}"),
                    format!("> {e}"),
                    format!("≤ {e}"),
                    format!("≥ {e}"),
                    format!("between 0 and {e}"),
                    format!("{e} to {e}"),
                    format!("up to {e}"),
                ] {
                    let s = Wmrt.score(&t, &Outcome::text(format!("ANSWER: {hedged}")));
                    assert_eq!(s.value, 0.0, "{}: {hedged} → {}", t.id, s.reason);
                }
            }
        }
    }

    #[test]
    fn physics_is_right() {
        assert!((boiling_c(101.325) - 100.0).abs() < 1e-9);
        assert!((boiling_c(50.0) - 81.0).abs() < 1.0);
        let earth = &WORLDS[0];
        assert!((gravity(earth, Difficulty::Extreme) - 9.82).abs() < 0.02);
        for w in &WORLDS {
            // Mass and radius agree with the table's gravity within 1.5 %.
            let ratio = gravity(w, Difficulty::Extreme) / w.g;
            assert!((ratio - 1.0).abs() < 0.015, "{}: {ratio}", w.name);
        }
        assert_eq!(sci(6.674e-11), "6.674×10^-11");
    }

    #[test]
    fn the_true_answer_scores_1_wrong_answers_0_garbage_0() {
        for d in Difficulty::ALL {
            for t in tasks(10, d, 3) {
                let unit = t.truth["unit"].as_str().unwrap();
                let s = Wmrt.score(&t, &Outcome::text(format!("ANSWER: {} {unit}", t.expected)));
                assert_eq!(s.value, 1.0, "{}: {}", t.id, s.reason);
                let want: f64 = t.expected.parse().unwrap();
                let wrong = fixed(want * 1.5 + 3.0, 3);
                assert_eq!(
                    Wmrt.score(&t, &Outcome::text(format!("ANSWER: {wrong}")))
                        .value,
                    0.0
                );
                for g in ["", "ANSWER: fast", "ANSWER: 1 or 2", "lorem ipsum\ndolor"] {
                    assert_eq!(Wmrt.score(&t, &Outcome::text(g)).value, 0.0, "{g:?}");
                }
            }
        }
    }
}
