//! TOME — Tool-Orchestrated Meta-Engineering: tasks that need tools, whose calls run for real
//! through the registry and the gate (as actor `agent` inside the `benchmark` execution).
//!
//! Four kinds of task, in turn (task `i` is kind `i mod 4`); every task offers the same tools —
//! `calculator`, `file_list`, `file_read`, `file_write`, `light_time` — so choosing the right
//! one is part of the task:
//! - **calc**: arithmetic on numbers too large to do reliably by hand (an exact integer; every
//!   intermediate below 2^53 so the calculator's `f64` is exact). One call.
//! - **light**: light time between Earth and the Moon, Mars or Jupiter at a date, with ground
//!   truth from [`crate::ephemeris`] exactly as the `light_time` tool computes it.
//!   One call; two (two bodies or two dates) from hard on.
//! - **file**: read sensor readings from a file in the task's scratch directory, compute a
//!   total or mean, and (from medium on) write it to a result file the scorer reads back.
//!   Read + write; extreme adds a calibration file to read.
//! - **chain**: a mission file names a body, a date and a number of command exchanges; the
//!   total link time is exchanges × round-trip light time. Read + light time, and from hard on
//!   a result file to write.
//!
//! Difficulty: bigger numbers and more operations (calc), round trips then differences and
//! sums over two bodies or dates (light), more rows, decimals, distractor sensors and a second
//! file (file), a result file to write (chain).
//!
//! Tolerances sit well below the spread of the true answers, so that no constant passes a
//! computed task: 0.5 for exact integers, [`LIGHT_TOLERANCE_S`] (5 ms) per one-way light time
//! the answer is made of (a round trip 10 ms, a chain of `n` exchanges `n` × 10 ms), 0.005 for
//! totals and 0.002 for means. The test `best_constant_answers_stay_at_the_floor`
//! (`src/benchmarks/tests/floors.rs`) checks it over 200 tasks of every difficulty.
//!
//! **Score** = correctness × (½ + ½ × economy). Correctness is the mean of the parts: the
//! answer line (a number within the task's tolerance) and, when the task asks for a result
//! file, that file's content (one number within the same tolerance). Economy is
//! `min(1, needed / made)`: `needed` is the fewest calls the task needs, `made` every call
//! the model made (refused and rejected ones too); a correct answer with no calls at all keeps
//! economy 1. A right answer with twice the calls needed scores 0.75; a wrong one scores 0
//! however few calls it made.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::answer::{extract_fields, number, parse_number, within};
use super::draw::{Draw, fixed};
use super::framework::{
    AnswerField, AnswerFormat, BenchError, BenchTask, Difficulty, Family, FamilyId, FieldKind,
    Outcome, SYSTEM_PROMPT, Score, TaskTools, per_index, task_id,
};
use super::record::ScratchFile;
use super::scratch::WORKDIR;
use crate::ephemeris::{self, Body, C_KM_S};

/// The TOME family.
#[derive(Debug, Clone, Copy)]
pub struct Tome;

/// The tools every TOME task offers, sorted.
pub const TOOLS: [&str; 5] = [
    "calculator",
    "file_list",
    "file_read",
    "file_write",
    "light_time",
];

/// First and last second of the dates tasks are set on (2026-01-01 to 2045-12-31).
const DATE_RANGE: (i64, i64) = (1_767_225_600, 2_398_377_599);

/// Tolerance per one-way light time an answer is made of, seconds. The truth rounds each
/// one-way time to the millisecond and the `light_time` tool gives it to full precision, so
/// 5 ms is room for rounding, not for guessing: the one-way time to the Moon alone spreads
/// over 0.17 s (1.19–1.36 s), and a tolerance as wide as that let a constant pass.
pub const LIGHT_TOLERANCE_S: f64 = 0.005;

/// Sensor names of the readings files.
const SENSORS: [&str; 6] = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];

/// A generated task before it becomes a [`BenchTask`].
struct Made {
    prompt: String,
    value: f64,
    decimals: u32,
    tolerance: f64,
    unit: &'static str,
    needed: u32,
    kind: &'static str,
    files: Option<Vec<ScratchFile>>,
    result_file: Option<String>,
}

impl Family for Tome {
    fn id(&self) -> FamilyId {
        FamilyId::Tome
    }

    fn generate(
        &self,
        count: usize,
        difficulty: Difficulty,
        seed: u64,
    ) -> Result<Vec<BenchTask>, BenchError> {
        per_index(count, |i| {
            let mut draw = Draw::for_task(FamilyId::Tome, difficulty, seed, i as u64);
            let level = difficulty.level();
            let made = match i % 4 {
                0 => calc(&mut draw, level),
                1 => light(&mut draw, level),
                2 => file(&mut draw, level),
                _ => chain(&mut draw, level),
            }
            .map_err(|message| BenchError::Generate {
                family: FamilyId::Tome,
                index: i,
                message,
            })?;
            let id = task_id(FamilyId::Tome, difficulty, seed, i);
            let format = AnswerFormat::new(vec![AnswerField {
                name: "value".into(),
                kind: FieldKind::Number {
                    unit: made.unit.into(),
                },
            }]);
            let expected = fixed(made.value, made.decimals);
            let mut truth = json!({
                "kind": made.kind,
                "value": expected.parse::<f64>().unwrap_or(made.value),
                "tolerance": fixed(made.tolerance, 4).parse::<f64>().unwrap_or(made.tolerance),
                "needed_calls": made.needed,
            });
            if let Some(files) = &made.files {
                truth["files"] = json!(files);
            }
            if let Some(result) = &made.result_file {
                truth["result_file"] = json!(result);
            }
            Ok(BenchTask {
                cluster: id.clone(),
                id,
                family: FamilyId::Tome,
                difficulty,
                prompt: format!("{}\n\n{}", made.prompt, format.instruction()),
                system: SYSTEM_PROMPT.to_string(),
                format,
                expected,
                truth,
                tools: TaskTools::Only(TOOLS.iter().map(|t| t.to_string()).collect()),
                dialogue: None,
            })
        })
    }

    fn score(&self, task: &BenchTask, outcome: &Outcome) -> Score {
        let Some(want) = task.truth.get("value").and_then(serde_json::Value::as_f64) else {
            return Score::zero("the task has no ground truth value");
        };
        let tolerance = task
            .truth
            .get("tolerance")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        let needed = task
            .truth
            .get("needed_calls")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1);
        let shown = fixed(want, 3);
        let mut parts: Vec<(f64, String)> = Vec::new();
        match extract_fields(&outcome.text, 1) {
            Err(e) => parts.push((0.0, format!("answer: {e}"))),
            Ok(fields) => match number(&fields[0]) {
                Ok(got) if within(got, want, tolerance) => parts.push((1.0, "answer ok".into())),
                Ok(got) => parts.push((
                    0.0,
                    format!(
                        "answer {} != {shown} (tolerance {})",
                        fixed(got, 3),
                        fixed(tolerance, 3)
                    ),
                )),
                Err(e) => parts.push((0.0, format!("answer: {e}"))),
            },
        }
        let result_file = task.truth_str("result_file");
        if !result_file.is_empty() {
            parts.push(match outcome.file(result_file) {
                None if outcome.files.is_none() => (
                    0.0,
                    format!("{result_file}: no scratch directory was recorded"),
                ),
                None => (0.0, format!("{result_file} was not written")),
                Some(f) => match parse_number(f.content.trim()) {
                    Some(got) if within(got, want, tolerance) => (1.0, format!("{result_file} ok")),
                    Some(got) => (
                        0.0,
                        format!("{result_file} holds {} != {shown}", fixed(got, 3)),
                    ),
                    None => (0.0, format!("{result_file} does not hold one number")),
                },
            });
        }
        let correct = parts.iter().map(|p| p.0).sum::<f64>() / parts.len() as f64;
        let made = outcome.steps.len().max(outcome.tool_calls as usize) as u64;
        let economy = if made <= needed {
            1.0
        } else {
            needed as f64 / made as f64
        };
        let reason = format!(
            "{}; {made} call{} made, {needed} needed (economy {})",
            parts
                .iter()
                .map(|p| p.1.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            if made == 1 { "" } else { "s" },
            fixed(economy, 2)
        );
        Score::new(correct * (0.5 + 0.5 * economy), reason)
    }
}

/// A date in [`DATE_RANGE`], whole seconds.
fn date(draw: &mut Draw) -> Result<DateTime<Utc>, String> {
    let secs = draw.int(DATE_RANGE.0, DATE_RANGE.1);
    Utc.timestamp_opt(secs, 0)
        .single()
        .ok_or_else(|| format!("{secs} is not a valid time"))
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The bodies the `light_time` tool knows, with their names in prompts.
const BODIES: [(&str, &str); 3] = [
    ("moon", "the Moon"),
    ("mars", "Mars"),
    ("jupiter", "Jupiter"),
];

/// One-way light time in seconds from Earth to `body` at `at`, as `light_time` computes it.
pub fn one_way_s(body: &str, at: DateTime<Utc>) -> Result<f64, String> {
    let km = match body {
        "moon" => ephemeris::moon_distance_km(at).map_err(|e| e.to_string())?,
        "mars" => ephemeris::planet_link(Body::Mars, at)
            .map_err(|e| e.to_string())?
            .distance_km(),
        "jupiter" => ephemeris::planet_link(Body::Jupiter, at)
            .map_err(|e| e.to_string())?
            .distance_km(),
        other => return Err(format!("unknown body '{other}'")),
    };
    Ok(km / C_KM_S)
}

/// `value` rounded to 3 decimals the way the truth stores it.
fn round3(value: f64) -> f64 {
    fixed(value, 3).parse::<f64>().unwrap_or(value)
}

fn calc(draw: &mut Draw, level: usize) -> Result<Made, String> {
    let (prompt, value) = match level {
        0 => {
            let (a, b) = (draw.int(1_000, 9_999), draw.int(1_000, 9_999));
            (format!("What is {a} × {b}?"), a * b)
        }
        1 => {
            let (a, b, c) = (
                draw.int(10_000, 99_999),
                draw.int(10_000, 99_999),
                draw.int(100_000, 999_999),
            );
            (format!("What is {a} × {b} + {c}?"), a * b + c)
        }
        2 => {
            let (a, b, c, d) = (
                draw.int(100_000, 999_999),
                draw.int(100_000, 999_999),
                draw.int(1_000_000, 9_999_999),
                draw.int(11, 97),
            );
            (format!("What is ({a} × {b} − {c}) × {d}?"), (a * b - c) * d)
        }
        _ => {
            let (a, b, c) = (
                draw.int(10_000, 99_999),
                draw.int(10_000, 99_999),
                draw.int(1_000, 8_999),
            );
            let (d, e, f) = (
                draw.int(10_000, 99_999),
                draw.int(10_000, 99_999),
                draw.int(2, 9),
            );
            (
                format!(
                    "A relay buffers {a} × {b} × {c} bits per orbit, minus {d} × {e} bits of \
                     framing, shared by {f} relays that must each get the same whole number of \
                     bits — the remainder is discarded. How many bits does each relay get?"
                ),
                (a * b * c - d * e) / f,
            )
        }
    };
    Ok(Made {
        prompt: format!(
            "Compute exactly (the calculator tool is available; numbers this large are easy to \
             get wrong by hand).\n{prompt}"
        ),
        value: value as f64,
        decimals: 0,
        tolerance: 0.5,
        unit: "",
        needed: 1,
        kind: "calc",
        files: None,
        result_file: None,
    })
}

fn light(draw: &mut Draw, level: usize) -> Result<Made, String> {
    let pick = |draw: &mut Draw| {
        BODIES
            .get(draw.index(BODIES.len()))
            .copied()
            .unwrap_or(BODIES[1])
    };
    let (body, name) = pick(draw);
    let at = date(draw)?;
    let one = round3(one_way_s(body, at)?);
    // (prompt, value, calls needed, one-way times the value is made of)
    let (prompt, value, needed, terms) = match level {
        0 => (
            format!(
                "What is the one-way light time from Earth to {name} at {}, in seconds?",
                rfc3339(at)
            ),
            one,
            1,
            1.0,
        ),
        1 => (
            format!(
                "A command is sent from Earth to {name} at {} and answered at once. How many \
                 seconds pass until the answer is back (the round trip)?",
                rfc3339(at)
            ),
            2.0 * one,
            1,
            2.0,
        ),
        2 => {
            let later = date(draw)?;
            let two = round3(one_way_s(body, later)?);
            (
                format!(
                    "By how many seconds does the one-way light time from Earth to {name} at {} \
                     exceed the one at {}? (A negative number if it is shorter.)",
                    rfc3339(later),
                    rfc3339(at)
                ),
                two - one,
                2,
                2.0,
            )
        }
        _ => {
            let (other, other_name) = loop {
                let b = pick(draw);
                if b.0 != body {
                    break b;
                }
            };
            let later = date(draw)?;
            let two = round3(one_way_s(other, later)?);
            let pause = draw.int(30, 600);
            (
                format!(
                    "A relay sequence: a command goes from Earth to {name} at {} and its answer \
                     comes straight back; then, after a {pause} s pause on the ground, the same \
                     exchange is made with {other_name}, starting at {}. What is the total of \
                     both round trips plus the pause, in seconds? (Use the light time at each \
                     start time.)",
                    rfc3339(at),
                    rfc3339(later)
                ),
                2.0 * one + pause as f64 + 2.0 * two,
                2,
                4.0,
            )
        }
    };
    let tolerance = terms * LIGHT_TOLERANCE_S;
    Ok(Made {
        prompt: format!(
            "Use the light_time tool (it takes the body and an RFC 3339 date) for the \
             ephemeris.\n{prompt} Give the seconds to 3 decimals (within {} s).",
            fixed(tolerance, 3)
        ),
        value,
        decimals: 3,
        tolerance,
        unit: "s",
        needed,
        kind: "light",
        files: None,
        result_file: None,
    })
}

/// Readings as hundredths: (sensor, value × 100).
fn readings(draw: &mut Draw, rows: usize, sensors: usize, cents: bool) -> Vec<(&'static str, i64)> {
    (0..rows)
        .map(|_| {
            let sensor = SENSORS
                .get(draw.index(sensors.min(SENSORS.len())))
                .copied()
                .unwrap_or(SENSORS[0]);
            let value = if cents {
                draw.int(-50_000, 250_000)
            } else {
                draw.int(1, 9_999) * 100
            };
            (sensor, value)
        })
        .collect()
}

fn csv(rows: &[(&str, i64)]) -> String {
    let mut text = String::from("sensor,value\n");
    for (sensor, v) in rows {
        text.push_str(&format!("{sensor},{}\n", fixed(*v as f64 / 100.0, 2)));
    }
    text
}

fn file(draw: &mut Draw, level: usize) -> Result<Made, String> {
    let rows = [6, 10, 16, 24][level.min(3)];
    let data = readings(draw, rows, if level >= 2 { 4 } else { 1 }, level >= 1);
    let target = data.first().map(|r| r.0).unwrap_or(SENSORS[0]);
    let mut files = vec![ScratchFile {
        path: "readings.csv".into(),
        content: csv(&data),
    }];
    let chosen: Vec<i64> = data
        .iter()
        .filter(|r| level < 2 || r.0 == target)
        .map(|r| r.1)
        .collect();
    let (ask, value, decimals, needed) = match level {
        0 => (
            "the total of all values".to_string(),
            chosen.iter().sum::<i64>() as f64 / 100.0,
            2,
            1,
        ),
        1 => (
            "the mean of all values, to 3 decimals".to_string(),
            chosen.iter().sum::<i64>() as f64 / 100.0 / chosen.len().max(1) as f64,
            3,
            2,
        ),
        2 => (
            format!("the total of the values of sensor {target} only"),
            chosen.iter().sum::<i64>() as f64 / 100.0,
            2,
            2,
        ),
        _ => {
            let offset = draw.int(-999, 999);
            files.push(ScratchFile {
                path: "calibration.txt".into(),
                content: format!(
                    "# calibration offsets, added to every reading of the sensor\n\
                     alpha 0.00\n{target}_offset {}\n",
                    fixed(offset as f64 / 100.0, 2)
                ),
            });
            let total: i64 = chosen.iter().map(|v| v + offset).sum();
            (
                format!(
                    "the total of the calibrated values of sensor {target} only (each reading \
                     plus the offset for {target} in {WORKDIR}/calibration.txt)"
                ),
                total as f64 / 100.0,
                2,
                3,
            )
        }
    };
    let result_file = (level >= 1).then(|| "result.txt".to_string());
    let write = match &result_file {
        Some(f) => format!(
            " Write the result, as one number and nothing else, to {WORKDIR}/{f} (create it)."
        ),
        None => String::new(),
    };
    Ok(Made {
        prompt: format!(
            "The file {WORKDIR}/readings.csv in your workspace holds sensor readings (use the \
             file tools; paths are relative to the workspace). Compute {ask}.{write}"
        ),
        value,
        decimals,
        tolerance: if decimals == 3 { 0.002 } else { 0.005 },
        unit: "",
        needed,
        kind: "file",
        files: Some(files),
        result_file,
    })
}

fn chain(draw: &mut Draw, level: usize) -> Result<Made, String> {
    let (body, name) = BODIES
        .get(draw.index(BODIES.len()))
        .copied()
        .unwrap_or(BODIES[1]);
    let at = date(draw)?;
    let exchanges = draw.int(2, [5, 12, 40, 120][level.min(3)]);
    let one = round3(one_way_s(body, at)?);
    let mut content = format!(
        "mission: survey-{}\nbody: {body}\nstart: {}\nexchanges: {exchanges}\n",
        draw.int(100, 999),
        rfc3339(at)
    );
    if level >= 2 {
        // A distractor the model must not use.
        content.push_str(&format!(
            "previous_body: {}\nprevious_start: {}\n",
            if body == "mars" { "moon" } else { "mars" },
            rfc3339(date(draw)?)
        ));
    }
    let result_file = (level >= 2).then(|| "link_budget.txt".to_string());
    let write = match &result_file {
        Some(f) => format!(" Write the total, as one number, to {WORKDIR}/{f}."),
        None => String::new(),
    };
    // Two one-way times per exchange.
    let tolerance = 2.0 * exchanges as f64 * LIGHT_TOLERANCE_S;
    Ok(Made {
        prompt: format!(
            "The file {WORKDIR}/mission.txt in your workspace describes a survey of {name}: the \
             body, the start time and the number of command exchanges. Each exchange is one \
             round trip at the light time of the start time. Read it, get the light time with \
             the light_time tool, and compute the total link time in seconds over all \
             exchanges, to 3 decimals (within {} s).{write}",
            fixed(tolerance, 3)
        ),
        value: 2.0 * one * exchanges as f64,
        decimals: 3,
        tolerance,
        unit: "s",
        needed: if result_file.is_some() { 3 } else { 2 },
        kind: "chain",
        files: Some(vec![ScratchFile {
            path: "mission.txt".into(),
            content,
        }]),
        result_file,
    })
}

/// The outcome a perfect solver leaves: `text`, the fewest calls the task needs (each ran and
/// audited), and the result file holding the expected value.
#[cfg(test)]
pub(crate) fn perfect_outcome(task: &BenchTask, text: &str) -> Outcome {
    use super::record::{AuditedCall, ToolStep};
    let needed = task.truth["needed_calls"].as_u64().unwrap_or(1) as u32;
    let mut outcome = Outcome::text(text);
    outcome.workdir = format!("bench/{}/e0", task.id);
    let mut audit = Vec::new();
    for step in 1..=needed {
        outcome.steps.push(ToolStep {
            step,
            tool: "calculator".into(),
            arguments: "{}".into(),
            outcome: "success".into(),
            summary: "ok".into(),
            audit_seq: Some(u64::from(step)),
        });
        audit.push(AuditedCall {
            seq: u64::from(step),
            tool: "calculator".into(),
            outcome: "success".into(),
            step: Some(step),
            path: None,
            summary: "ok".into(),
        });
    }
    outcome.tool_calls = needed;
    outcome.audit = Some(audit);
    if let Some(files) = super::scratch::task_files(task).and_then(Result::ok) {
        let mut files = files;
        let result = task.truth_str("result_file");
        if !result.is_empty() {
            files.push(ScratchFile {
                path: result.into(),
                content: format!("{}\n", task.expected),
            });
        }
        outcome.files = Some(files);
    }
    outcome
}

#[cfg(test)]
mod tests;
