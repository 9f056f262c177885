//! CPLC — Cross-Planet Latency Cognition: planning under light-time delay.
//!
//! Three kinds of task, in turn (task `i` is kind `i mod 3`), all with ground truth from
//! [`crate::ephemeris`] and the link model of [`crate::runtime::latency`]:
//! - **ack**: a command is sent at a date; when does its acknowledgement reach Earth?
//!   (a UTC time, scored within `max(5 s, 0.1 %)` of the elapsed time).
//! - **decide**: a hazard with a deadline; can the ground decide in time (`REMOTE`) or must
//!   the asset decide itself (`LOCAL`)? Scored exactly.
//! - **blackout**: commands queued before a real Mars solar conjunction (Sun–Earth–Mars angle
//!   under [`BLACKOUT_DEG`]); sent earliest deadline first, which arrive late? A set, scored
//!   exactly. Margins are kept wide enough that the rounding of stated numbers cannot flip it.
//!
//! Difficulty: easy states light times directly; medium gives distances in km; hard gives
//! distances in au with distractors, relays and blackouts; extreme adds ground-station contact
//! windows, more steps and small margins.

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::answer::{extract_fields, norm_label, parse_set, parse_timestamp, timestamp, within};
use super::draw::{Draw, fixed, grouped};
use super::framework::{
    AnswerField, AnswerFormat, BenchError, BenchTask, Difficulty, Family, FamilyId, FieldKind,
    Outcome, SYSTEM_PROMPT, Score, TaskTools, combine, field_result, per_index, task_id,
};
use crate::ephemeris::{self, AU_KM, Body, C_KM_S};
use crate::runtime::latency::BLACKOUT_DEG;

/// The CPLC family.
#[derive(Debug, Clone, Copy)]
pub struct Cplc;

/// First and last second of the dates tasks are set on (2026-01-01 to 2045-12-31).
const DATE_RANGE: (i64, i64) = (1_767_225_600, 2_398_377_599);

impl Family for Cplc {
    fn id(&self) -> FamilyId {
        FamilyId::Cplc
    }

    fn generate(
        &self,
        count: usize,
        difficulty: Difficulty,
        seed: u64,
    ) -> Result<Vec<BenchTask>, BenchError> {
        per_index(count, |i| {
            let mut draw = Draw::for_task(FamilyId::Cplc, difficulty, seed, i as u64);
            let made = match i % 3 {
                0 => ack_task(&mut draw, difficulty),
                1 => decide_task(&mut draw, difficulty),
                _ => blackout_task(&mut draw, difficulty),
            };
            let made = made.map_err(|message| BenchError::Generate {
                family: FamilyId::Cplc,
                index: i,
                message,
            })?;
            let id = task_id(FamilyId::Cplc, difficulty, seed, i);
            Ok(BenchTask {
                cluster: id.clone(),
                id,
                family: FamilyId::Cplc,
                difficulty,
                prompt: format!("{}\n\n{}", made.prompt, made.format.instruction()),
                system: SYSTEM_PROMPT.to_string(),
                format: made.format,
                expected: made.expected,
                truth: made.truth,
                tools: TaskTools::None,
                dialogue: None,
            })
        })
    }

    fn score(&self, task: &BenchTask, outcome: &Outcome) -> Score {
        let fields = match extract_fields(&outcome.text, task.format.fields.len()) {
            Ok(f) => f,
            Err(e) => return Score::zero(e),
        };
        let kind = task
            .truth
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("");
        let Some(field) = fields.first() else {
            return Score::zero("no answer field");
        };
        match kind {
            "ack" => {
                let want = task
                    .truth
                    .get("answer_utc")
                    .and_then(|v| v.as_str())
                    .and_then(parse_timestamp);
                let tolerance = task
                    .truth
                    .get("tolerance_s")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(5.0);
                let Some(want) = want else {
                    return Score::zero("the task has no ground truth time");
                };
                let got = match timestamp(field) {
                    Ok(got) => got,
                    Err(e) => return Score::zero(e),
                };
                let off = (got - want).num_milliseconds() as f64 / 1000.0;
                if within(off, 0.0, tolerance) {
                    Score::new(1.0, format!("ack time within {} s", fixed(tolerance, 1)))
                } else {
                    Score::zero(format!(
                        "ack time off by {} s (tolerance {} s)",
                        fixed(off, 1),
                        fixed(tolerance, 1)
                    ))
                }
            }
            "decide" => {
                let want = task
                    .truth
                    .get("decision")
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                let got = norm_label(field);
                combine(vec![field_result(
                    "decision",
                    got == norm_label(want),
                    field,
                    want,
                )])
            }
            "blackout" => {
                let want: Vec<String> = task
                    .truth
                    .get("late")
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        let mut v: Vec<String> = a
                            .iter()
                            .filter_map(|x| x.as_str())
                            .map(norm_label)
                            .collect();
                        v.sort();
                        v
                    })
                    .unwrap_or_default();
                match parse_set(field) {
                    Some(got) => combine(vec![field_result(
                        "late commands",
                        got == want,
                        field,
                        &task.expected,
                    )]),
                    None => Score::zero("the set of late commands is malformed"),
                }
            }
            other => Score::zero(format!("unknown CPLC task kind '{other}'")),
        }
    }
}

/// A task before it gets its id.
struct Made {
    prompt: String,
    format: AnswerFormat,
    expected: String,
    truth: serde_json::Value,
}

fn utc(secs: i64) -> Result<DateTime<Utc>, String> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .ok_or_else(|| format!("{secs} s is not a representable time"))
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One-way light time to `body` at `secs`, seconds.
fn light_s(body: Target, secs: i64) -> Result<f64, String> {
    let at = utc(secs)?;
    match body {
        Target::Moon => ephemeris::moon_distance_km(at)
            .map(|km| km / C_KM_S)
            .map_err(|e| e.to_string()),
        Target::Mars => ephemeris::planet_link(Body::Mars, at)
            .map(|g| g.light_seconds())
            .map_err(|e| e.to_string()),
    }
}

fn elongation_deg(secs: i64) -> Result<f64, String> {
    ephemeris::planet_link(Body::Mars, utc(secs)?)
        .map(|g| g.elongation_deg)
        .map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Moon,
    Mars,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Moon => "the Moon",
            Target::Mars => "Mars",
        }
    }
}

const ASSETS: [&str; 6] = [
    "rover Perseverance-B",
    "lander Tianwen-4",
    "drill platform Ares-2",
    "habitat Jezero-Base",
    "crawler Dust-Devil",
    "relay-linked rover Sojourner-3",
];
const LUNAR_ASSETS: [&str; 4] = [
    "rover Lunokhod-7",
    "Shackleton station",
    "ice miner Artemis-Prime",
    "lander Chang'e-12",
];

/// How the light time is stated in the prompt, by difficulty.
fn state_light(difficulty: Difficulty, light: f64, target: Target) -> String {
    let km = light * C_KM_S;
    match difficulty {
        Difficulty::Easy => format!(
            "The one-way light time between Earth and {} is {} s.",
            target.name(),
            fixed(light, 1)
        ),
        Difficulty::Medium => format!(
            "Earth and {} are {} km apart; radio signals travel at {} km/s.",
            target.name(),
            grouped(km, 0),
            grouped(C_KM_S, 3)
        ),
        Difficulty::Hard | Difficulty::Extreme => format!(
            "Earth and {} are {} au apart (1 au = {} km); radio signals travel at {} km/s.",
            target.name(),
            fixed(km / AU_KM, 6),
            grouped(AU_KM, 1),
            grouped(C_KM_S, 3)
        ),
    }
}

/// Facts that do not matter, for the harder levels.
fn distractors(draw: &mut Draw, at: i64, n: usize) -> Result<Vec<String>, String> {
    let mut facts = Vec::new();
    let when = utc(at)?;
    if let Ok(g) = ephemeris::planet_link(Body::Jupiter, when) {
        facts.push(format!(
            "Jupiter is {} au from Earth that day.",
            fixed(g.distance_au, 3)
        ));
    }
    if let Ok(km) = ephemeris::moon_distance_km(when) {
        facts.push(format!(
            "The Moon is {} km from Earth that day.",
            grouped(km, 0)
        ));
    }
    facts.push(format!(
        "The ground station's antenna is {} m across.",
        draw.int(18, 70)
    ));
    facts.push(format!(
        "The previous command took {} min to prepare.",
        draw.int(3, 90)
    ));
    facts.push(format!(
        "The data rate of the link is {} kbit/s.",
        draw.int(2, 2000)
    ));
    draw.shuffle(&mut facts);
    facts.truncate(n);
    Ok(facts)
}

fn ack_task(draw: &mut Draw, difficulty: Difficulty) -> Result<Made, String> {
    let level = difficulty.level();
    let target = if level < 2 && draw.chance(0.4) {
        Target::Moon
    } else {
        Target::Mars
    };
    let asset = match target {
        Target::Moon => draw.pick(&LUNAR_ASSETS),
        Target::Mars => draw.pick(&ASSETS),
    }
    .copied()
    .unwrap_or("rover");
    let asked = clear_date(draw)?;
    let processing = draw.int(5, 60 * (1 + 5 * level as i64));
    let mut lines = Vec::new();
    // Extreme: the command leaves only in a ground-station contact window.
    let send = if difficulty == Difficulty::Extreme {
        let mut windows = Vec::new();
        let mut t = asked - draw.int(3_600, 7_200);
        for _ in 0..4 {
            let len = draw.int(20, 90) * 60;
            windows.push((t, t + len));
            t += len + draw.int(60, 240) * 60;
        }
        let send = windows
            .iter()
            .find_map(|&(a, b)| {
                if asked < a {
                    Some(a)
                } else if asked < b {
                    Some(asked)
                } else {
                    None
                }
            })
            .unwrap_or(asked);
        let listed: Vec<String> = windows
            .iter()
            .map(|&(a, b)| Ok(format!("{} to {}", stamp(utc(a)?), stamp(utc(b)?))))
            .collect::<Result<_, String>>()?;
        lines.push(format!(
            "The ground station can transmit only during its contact windows: {}.",
            listed.join("; ")
        ));
        send
    } else {
        asked
    };
    let up = light_s(target, send)?;
    lines.push(state_light(difficulty, up, target));
    // Hard and up: the command goes through an orbiter that forwards it on its next pass.
    let (arrival, relay_note) = if level >= 2 {
        let at_orbiter = send as f64 + up;
        let mut passes = Vec::new();
        let mut t = send + draw.int(-3_600, 1_800);
        for _ in 0..(3 + level) {
            passes.push(t);
            t += draw.int(90, 150) * 60;
        }
        let pass = passes
            .iter()
            .map(|&p| p as f64)
            .find(|&p| p >= at_orbiter)
            .unwrap_or(at_orbiter);
        let listed: Vec<String> = passes
            .iter()
            .map(|&p| utc(p).map(stamp))
            .collect::<Result<_, String>>()?;
        (
            pass,
            Some(format!(
                "The {asset} cannot hear Earth directly: the command reaches the relay orbiter \
                 after the light time and is forwarded at the start of the orbiter's next pass \
                 over the {asset} (passes begin at {}; forwarding itself takes no time). The \
                 acknowledgement goes straight back to Earth.",
                listed.join(", ")
            )),
        )
    } else {
        (send as f64 + up, None)
    };
    let reply_at = arrival + processing as f64;
    let down = light_s(target, reply_at.round() as i64)?;
    let ack = reply_at + down;
    if let Some(note) = relay_note {
        lines.push(note);
    }
    if level >= 2 {
        lines.push(
            "The light time changes by under a second over the hours involved; use the value \
             above for the reply as well (the answer tolerance covers the difference)."
                .to_string(),
        );
        lines.extend(distractors(draw, send, level)?);
    } else {
        lines.push("Use the same light time for the reply.".to_string());
    }
    let prompt = format!(
        "Mission control on Earth asks to send a command to the {asset} on {} at {}. {}\nThe \
         {asset} needs {} s to carry out the command and then sends its acknowledgement \
         immediately.\nWhen does the acknowledgement reach Earth, at the earliest?",
        target.name(),
        stamp(utc(asked)?),
        lines.join(" "),
        processing
    );
    let elapsed = ack - asked as f64;
    let tolerance = (elapsed * 0.001).max(5.0);
    let answer = utc(ack.round() as i64)?;
    Ok(Made {
        prompt,
        format: AnswerFormat::new(vec![AnswerField {
            name: "ack_time_utc".into(),
            kind: FieldKind::Timestamp,
        }]),
        expected: stamp(answer),
        truth: json!({
            "kind": "ack",
            "answer_utc": stamp(answer),
            "tolerance_s": fixed(tolerance, 1).parse::<f64>().unwrap_or(5.0),
            "one_way_s": fixed(up, 3).parse::<f64>().unwrap_or(0.0),
            "sent_utc": stamp(utc(send)?),
        }),
    })
}

fn decide_task(draw: &mut Draw, difficulty: Difficulty) -> Result<Made, String> {
    let level = difficulty.level();
    let target = if draw.chance(0.25) {
        Target::Moon
    } else {
        Target::Mars
    };
    let asset = match target {
        Target::Moon => draw.pick(&LUNAR_ASSETS),
        Target::Mars => draw.pick(&ASSETS),
    }
    .copied()
    .unwrap_or("rover");
    // Hard and up: one Mars task in three falls in a real solar conjunction.
    let in_blackout = level >= 2 && target == Target::Mars && draw.chance(0.34);
    let at = if in_blackout {
        let windows = conjunctions()?;
        let Some(&(b, e)) = draw.pick(windows) else {
            return Err("no solar conjunction found in the ephemeris range".into());
        };
        draw.int(b + 600, (e - 600).max(b + 600))
    } else {
        clear_date(draw)?
    };
    let light = light_s(target, at)?;
    let deliberation = draw.int(2, 10 + 20 * level as i64) * 60;
    let uplink_wait = if level >= 3 { draw.int(1, 30) * 60 } else { 0 };
    let round_trip = 2.0 * light + deliberation as f64 + uplink_wait as f64;
    // The deadline sits on one side of the round trip by a margin that shrinks with level.
    let margin = [0.4, 0.15, 0.05, 0.02][level.min(3)];
    let remote = draw.chance(0.5);
    let factor = if remote {
        1.0 + margin + draw.float(0.0, margin)
    } else {
        1.0 - margin - draw.float(0.0, margin.min(0.3))
    };
    let deadline = (round_trip * factor).round().max(1.0);
    let elong = if target == Target::Mars {
        Some(elongation_deg(at)?)
    } else {
        None
    };
    let blackout = elong.is_some_and(|e| e < BLACKOUT_DEG);
    let decision = if blackout || round_trip > deadline {
        "LOCAL"
    } else {
        "REMOTE"
    };
    let mut lines = vec![state_light(difficulty, light, target)];
    lines.push(format!(
        "The ground team needs {} min to decide once the report arrives.",
        deliberation / 60
    ));
    if uplink_wait > 0 {
        lines.push(format!(
            "The ground's reply then waits {} min for an uplink slot.",
            uplink_wait / 60
        ));
    }
    if level >= 2
        && let Some(e) = elong
    {
        lines.push(format!(
            "The Sun–Earth–Mars angle is {}°; below {}° the Sun blocks all communication.",
            fixed(e, 2),
            fixed(BLACKOUT_DEG, 0)
        ));
    }
    if level >= 2 {
        lines.extend(distractors(draw, at, level)?);
    }
    let deadline_text = if level == 0 {
        format!("{} min", fixed(deadline / 60.0, 1))
    } else {
        format!("{} s", fixed(deadline, 0))
    };
    let prompt = format!(
        "At {} the {asset} on {} detects a hazard and reports it to Earth at once. A response \
         must be under way within {deadline_text} of the detection. {}\nCan the decision wait \
         for the ground (REMOTE), or must the {asset} decide itself (LOCAL)?",
        stamp(utc(at)?),
        target.name(),
        lines.join(" ")
    );
    Ok(Made {
        prompt,
        format: AnswerFormat::new(vec![AnswerField {
            name: "decision".into(),
            kind: FieldKind::Choice {
                options: vec!["LOCAL".into(), "REMOTE".into()],
            },
        }]),
        expected: decision.to_string(),
        truth: json!({
            "kind": "decide",
            "decision": decision,
            "round_trip_s": fixed(round_trip, 1).parse::<f64>().unwrap_or(0.0),
            "deadline_s": deadline,
            "blackout": blackout,
        }),
    })
}

/// A date in [`DATE_RANGE`] at least 3° clear of a Mars solar conjunction (about two days),
/// so nothing but the stated facts decides the task.
fn clear_date(draw: &mut Draw) -> Result<i64, String> {
    let mut at = draw.int(DATE_RANGE.0, DATE_RANGE.1 - 10 * 86_400);
    // Each redraw leaves a conjunction with probability ~0.97; 64 of them cannot all fail
    // in practice, and the last date is used if they do.
    for _ in 0..64 {
        if elongation_deg(at)? >= BLACKOUT_DEG + 1.0 {
            break;
        }
        at = draw.int(DATE_RANGE.0, DATE_RANGE.1 - 10 * 86_400);
    }
    Ok(at)
}

/// Mars solar conjunctions (Sun–Earth–Mars angle under [`BLACKOUT_DEG`]) from 2026 to 2049,
/// as (start, end) in Unix seconds to the minute; computed once.
pub fn conjunctions() -> Result<&'static [(i64, i64)], String> {
    static WINDOWS: OnceLock<Result<Vec<(i64, i64)>, String>> = OnceLock::new();
    WINDOWS
        .get_or_init(|| {
            let inside = |t: i64| elongation_deg(t).map(|e| e < BLACKOUT_DEG);
            // Refines a boundary between `a` (state `sa`) and `b` to the minute.
            let refine = |mut a: i64, mut b: i64, sa: bool| -> Result<i64, String> {
                while b - a > 60 {
                    let m = a + (b - a) / 2;
                    if inside(m)? == sa {
                        a = m;
                    } else {
                        b = m;
                    }
                }
                Ok(b)
            };
            let step = 6 * 3600;
            let (mut t, end) = (DATE_RANGE.0, 2_524_607_999); // to 2049-12-31
            let mut was = inside(t)?;
            let mut start = None;
            let mut out = Vec::new();
            while t < end {
                let next = t + step;
                let now = inside(next)?;
                if now != was {
                    let edge = refine(t, next, was)?;
                    if now {
                        start = Some(edge);
                    } else if let Some(s) = start.take() {
                        out.push((s, edge));
                    }
                }
                was = now;
                t = next;
            }
            if out.is_empty() {
                return Err("the ephemeris shows no Mars solar conjunction".into());
            }
            Ok(out)
        })
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

fn blackout_task(draw: &mut Draw, difficulty: Difficulty) -> Result<Made, String> {
    let level = difficulty.level();
    let windows = conjunctions()?;
    let Some(&(b, e)) = draw.pick(windows) else {
        return Err("no solar conjunction found in the ephemeris range".into());
    };
    let n = [3, 5, 7, 10][level.min(3)];
    let lead = draw.int(4, 8 + 4 * n as i64) * 3600 / 4;
    let now = b - lead;
    let light = light_s(Target::Mars, now)?;
    let labels: Vec<String> = (1..=n).map(|i| format!("C{i}")).collect();
    // Up to 50 tries for deadlines no closer than 10 min to an arrival; then the last try.
    let mut best = None;
    for _ in 0..50 {
        let durations: Vec<i64> = (0..n)
            .map(|_| {
                if level >= 3 {
                    draw.int(2, 12) * 10 * 60
                } else {
                    3600
                }
            })
            .collect();
        let deadlines: Vec<i64> = (0..n)
            .map(|_| {
                let lo = now + 2 * 3600;
                let hi = e + lead + 24 * 3600;
                // Minute resolution, so stated deadlines are exact.
                draw.int(lo / 60, hi / 60) * 60
            })
            .collect();
        // Earliest deadline first; ties by label order.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (deadlines[i], i));
        let mut t = now;
        let mut arrivals = vec![0i64; n];
        for &i in &order {
            let d = durations[i];
            if t < e && t + d > b {
                t = e;
            }
            let done = t + d;
            arrivals[i] = done + light_s(Target::Mars, done)?.round() as i64;
            t = done;
        }
        let tight = (0..n).any(|i| (arrivals[i] - deadlines[i]).abs() < 600);
        best = Some((durations, deadlines, order, arrivals));
        if !tight {
            break;
        }
    }
    let Some((durations, deadlines, order, arrivals)) = best else {
        return Err("no command plan was drawn".into());
    };
    let late: Vec<String> = (0..n)
        .filter(|&i| arrivals[i] > deadlines[i])
        .map(|i| labels[i].clone())
        .collect();
    let mut lines = Vec::new();
    for i in 0..n {
        let dur = if level >= 3 {
            format!(", takes {} min to transmit", durations[i] / 60)
        } else {
            String::new()
        };
        lines.push(format!(
            "- {}{dur}, must reach Mars by {}",
            labels[i],
            stamp(utc(deadlines[i])?)
        ));
    }
    let slot = if level >= 3 {
        "Each command is transmitted in full before the next starts.".to_string()
    } else {
        "Each command takes 60 min to transmit; the next starts when it ends.".to_string()
    };
    let mut facts = vec![state_light(difficulty, light, Target::Mars)];
    if level >= 2 {
        facts.extend(distractors(draw, now, level)?);
    }
    let prompt = format!(
        "It is {} on Earth. These commands for the Mars rover are waiting to be sent:\n{}\n{slot} \
         They are sent in order of deadline, earliest first, starting now. Solar conjunction \
         blocks the link from {} to {}: no transmission may overlap that period, so a command \
         that would overlap it waits until the link returns. A command reaches Mars one light \
         time after its transmission ends. {}\nWhich commands reach Mars after their deadline?",
        stamp(utc(now)?),
        lines.join("\n"),
        stamp(utc(b)?),
        stamp(utc(e)?),
        facts.join(" ")
    );
    let expected = if late.is_empty() {
        "NONE".to_string()
    } else {
        late.join(", ")
    };
    Ok(Made {
        prompt,
        format: AnswerFormat::new(vec![AnswerField {
            name: "late_commands".into(),
            kind: FieldKind::Set,
        }]),
        expected,
        truth: json!({
            "kind": "blackout",
            "late": late,
            "order": order.iter().map(|&i| labels[i].clone()).collect::<Vec<_>>(),
            "blackout_utc": [stamp(utc(b)?), stamp(utc(e)?)],
        }),
    })
}

#[cfg(test)]
mod tests;
