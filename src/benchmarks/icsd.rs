//! ICSD — Infrastructure Cognition & Self-Diagnostics: a generated telemetry snapshot of a
//! habitat (power, thermal, comms, compute, storage, life support) with one injected fault;
//! the model names the failing subsystem and the first remedial action, both from labelled
//! lists in the prompt, and is scored by exact match on the normalized labels (half a point
//! each).
//!
//! A fault has a root subsystem, the metrics it drives out of their nominal range, and knock-on
//! symptoms in other subsystems that appear later. Difficulty: easy shows three subsystems and
//! only the root symptoms; medium shows all six with noise and one knock-on symptom; hard adds
//! every knock-on symptom and an event log whose order gives the root away; extreme shows three
//! snapshots ten minutes apart, in which the fault develops and one unrelated sensor glitches
//! once and recovers.
//!
//! Hard and extreme also ask something only Veyra itself can answer: the link preset the
//! runtime is on, which the model must get from the `system_status` tool (offered to these
//! tasks alone). Its ground truth is not in the task: it is what `system_status` returned in
//! that execution, read from the record (the audit entry's summary, `… link <preset> …`), so it
//! stays computed by code. Such an answer has three fields, a third each; the expected answer
//! holds the placeholder [`LINK`] for the reported preset.

use serde_json::json;

use super::answer::{extract_fields, norm_label};
use super::draw::{Draw, fixed};
use super::framework::{
    AnswerField, AnswerFormat, BenchError, BenchTask, Difficulty, Family, FamilyId, FieldKind,
    Outcome, SYSTEM_PROMPT, Score, TaskTools, combine, field_result, per_index, task_id,
};

/// The ICSD family.
#[derive(Debug, Clone, Copy)]
pub struct Icsd;

/// In the expected answer of hard and extreme tasks: the preset `system_status` reports.
pub const LINK: &str = "{link}";

/// The tool whose report answers the third field.
const STATUS_TOOL: &str = "system_status";

/// Link presets as `system_status` names them.
const PRESETS: [&str; 5] = ["earth", "lunar", "mars", "deep-space", "custom"];

/// The link preset in a `system_status` summary (`… backend mock healthy, link mars clear`).
pub fn reported_preset(summary: &str) -> Option<&str> {
    let at = summary.rfind(", link ")? + ", link ".len();
    summary.get(at..)?.split_whitespace().next()
}

/// Subsystem labels, in display order.
pub const SUBSYSTEMS: [&str; 6] = [
    "power",
    "thermal",
    "comms",
    "compute",
    "storage",
    "life_support",
];

/// Remedial action labels the prompt offers (the faults' own and plausible distractors).
pub const ACTIONS: [&str; 10] = [
    "isolate_battery_string",
    "shed_nonessential_loads",
    "isolate_coolant_loop",
    "repoint_antenna",
    "kill_runaway_task",
    "rotate_logs",
    "switch_to_backup_scrubber",
    "reboot_flight_computer",
    "wait_and_monitor",
    "evacuate_module",
];

/// A metric: subsystem, name, unit, nominal range and decimals shown.
struct Metric {
    subsystem: &'static str,
    name: &'static str,
    unit: &'static str,
    nominal: (f64, f64),
    decimals: u32,
}

const METRICS: [Metric; 17] = [
    Metric {
        subsystem: "power",
        name: "bus_voltage",
        unit: "V",
        nominal: (27.6, 28.4),
        decimals: 2,
    },
    Metric {
        subsystem: "power",
        name: "battery_soc",
        unit: "%",
        nominal: (60.0, 95.0),
        decimals: 1,
    },
    Metric {
        subsystem: "power",
        name: "solar_input",
        unit: "W",
        nominal: (900.0, 1400.0),
        decimals: 0,
    },
    Metric {
        subsystem: "thermal",
        name: "avionics_temp",
        unit: "°C",
        nominal: (18.0, 28.0),
        decimals: 1,
    },
    Metric {
        subsystem: "thermal",
        name: "radiator_outlet",
        unit: "°C",
        nominal: (-5.0, 5.0),
        decimals: 1,
    },
    Metric {
        subsystem: "thermal",
        name: "coolant_pressure",
        unit: "kPa",
        nominal: (180.0, 220.0),
        decimals: 0,
    },
    Metric {
        subsystem: "comms",
        name: "link_snr",
        unit: "dB",
        nominal: (8.0, 15.0),
        decimals: 1,
    },
    Metric {
        subsystem: "comms",
        name: "packet_loss",
        unit: "%",
        nominal: (0.0, 1.0),
        decimals: 2,
    },
    Metric {
        subsystem: "compute",
        name: "cpu_load",
        unit: "%",
        nominal: (20.0, 60.0),
        decimals: 0,
    },
    Metric {
        subsystem: "compute",
        name: "task_queue_depth",
        unit: "tasks",
        nominal: (0.0, 20.0),
        decimals: 0,
    },
    Metric {
        subsystem: "compute",
        name: "error_rate",
        unit: "/min",
        nominal: (0.0, 2.0),
        decimals: 1,
    },
    Metric {
        subsystem: "storage",
        name: "disk_used",
        unit: "%",
        nominal: (40.0, 75.0),
        decimals: 1,
    },
    Metric {
        subsystem: "storage",
        name: "write_errors",
        unit: "/min",
        nominal: (0.0, 0.5),
        decimals: 1,
    },
    Metric {
        subsystem: "life_support",
        name: "o2_partial_pressure",
        unit: "kPa",
        nominal: (20.0, 22.0),
        decimals: 2,
    },
    Metric {
        subsystem: "life_support",
        name: "co2",
        unit: "ppm",
        nominal: (400.0, 1500.0),
        decimals: 0,
    },
    Metric {
        subsystem: "life_support",
        name: "cabin_humidity",
        unit: "%",
        nominal: (35.0, 55.0),
        decimals: 0,
    },
    Metric {
        subsystem: "comms",
        name: "link_margin",
        unit: "dB",
        nominal: (3.0, 9.0),
        decimals: 1,
    },
];

/// A metric driven into a range by a fault.
struct Symptom {
    metric: &'static str,
    range: (f64, f64),
}

/// An injectable fault.
struct Fault {
    name: &'static str,
    subsystem: &'static str,
    action: &'static str,
    root: &'static [Symptom],
    knock_on: &'static [Symptom],
    log: &'static str,
    knock_log: &'static str,
}

const FAULTS: [Fault; 7] = [
    Fault {
        name: "battery_cell_short",
        subsystem: "power",
        action: "isolate_battery_string",
        root: &[
            Symptom {
                metric: "bus_voltage",
                range: (24.0, 25.6),
            },
            Symptom {
                metric: "battery_soc",
                range: (18.0, 35.0),
            },
        ],
        knock_on: &[Symptom {
            metric: "avionics_temp",
            range: (8.0, 14.0),
        }],
        log: "battery string B reports a cell voltage imbalance",
        knock_log: "avionics heaters duty-cycled down",
    },
    Fault {
        name: "solar_array_degraded",
        subsystem: "power",
        action: "shed_nonessential_loads",
        root: &[
            Symptom {
                metric: "solar_input",
                range: (150.0, 420.0),
            },
            Symptom {
                metric: "battery_soc",
                range: (35.0, 52.0),
            },
        ],
        knock_on: &[Symptom {
            metric: "link_margin",
            range: (0.5, 2.2),
        }],
        log: "array current below the model for the sun angle",
        knock_log: "transmitter power reduced by the power manager",
    },
    Fault {
        name: "coolant_leak",
        subsystem: "thermal",
        action: "isolate_coolant_loop",
        root: &[
            Symptom {
                metric: "coolant_pressure",
                range: (90.0, 135.0),
            },
            Symptom {
                metric: "avionics_temp",
                range: (44.0, 60.0),
            },
        ],
        knock_on: &[Symptom {
            metric: "error_rate",
            range: (8.0, 25.0),
        }],
        log: "coolant loop A pressure decaying",
        knock_log: "processor thermal throttling events",
    },
    Fault {
        name: "antenna_mispointed",
        subsystem: "comms",
        action: "repoint_antenna",
        root: &[
            Symptom {
                metric: "link_snr",
                range: (0.0, 3.0),
            },
            Symptom {
                metric: "packet_loss",
                range: (25.0, 60.0),
            },
        ],
        knock_on: &[Symptom {
            metric: "task_queue_depth",
            range: (150.0, 600.0),
        }],
        log: "high-gain antenna pointing error above limit",
        knock_log: "outbound telemetry queue growing",
    },
    Fault {
        name: "runaway_process",
        subsystem: "compute",
        action: "kill_runaway_task",
        root: &[
            Symptom {
                metric: "cpu_load",
                range: (97.0, 100.0),
            },
            Symptom {
                metric: "task_queue_depth",
                range: (200.0, 900.0),
            },
        ],
        knock_on: &[Symptom {
            metric: "avionics_temp",
            range: (31.0, 36.0),
        }],
        log: "watchdog: task 'image_compress' exceeded its CPU budget",
        knock_log: "avionics bay warming",
    },
    Fault {
        name: "disk_full",
        subsystem: "storage",
        action: "rotate_logs",
        root: &[
            Symptom {
                metric: "disk_used",
                range: (99.0, 100.0),
            },
            Symptom {
                metric: "write_errors",
                range: (40.0, 200.0),
            },
        ],
        knock_on: &[Symptom {
            metric: "error_rate",
            range: (6.0, 20.0),
        }],
        log: "log volume has no free blocks",
        knock_log: "tasks failing to write results",
    },
    Fault {
        name: "co2_scrubber_fault",
        subsystem: "life_support",
        action: "switch_to_backup_scrubber",
        root: &[Symptom {
            metric: "co2",
            range: (4000.0, 8000.0),
        }],
        knock_on: &[Symptom {
            metric: "cabin_humidity",
            range: (62.0, 75.0),
        }],
        log: "scrubber bed 1 regeneration cycle did not complete",
        knock_log: "dehumidifier load rising",
    },
];

/// The metric called `name` (the tests check that the fault table names real metrics).
#[cfg(test)]
fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

impl Family for Icsd {
    fn id(&self) -> FamilyId {
        FamilyId::Icsd
    }

    fn generate(
        &self,
        count: usize,
        difficulty: Difficulty,
        seed: u64,
    ) -> Result<Vec<BenchTask>, BenchError> {
        per_index(count, |i| {
            let mut draw = Draw::for_task(FamilyId::Icsd, difficulty, seed, i as u64);
            let fault = draw.pick(&FAULTS).ok_or_else(|| BenchError::Generate {
                family: FamilyId::Icsd,
                index: i,
                message: "the fault catalogue is empty".into(),
            })?;
            let id = task_id(FamilyId::Icsd, difficulty, seed, i);
            let asks_link = difficulty.level() >= 2;
            let format = answer_format(asks_link);
            let mut prompt = make_prompt(&mut draw, fault, difficulty);
            let mut expected = format!("{} | {}", fault.subsystem, fault.action);
            let mut truth = json!({
                "subsystem": fault.subsystem,
                "action": fault.action,
                "fault": fault.name,
            });
            let mut tools = TaskTools::None;
            if asks_link {
                prompt.push_str(
                    "\nThe response plan also depends on the link to the ground: call the \
                     system_status tool and give, as the third part of the answer, the link \
                     preset it reports the runtime is on right now.",
                );
                expected.push_str(&format!(" | {LINK}"));
                truth["link_from"] = json!(STATUS_TOOL);
                tools = TaskTools::Only(vec![STATUS_TOOL.to_string()]);
            }
            Ok(BenchTask {
                cluster: id.clone(),
                id,
                family: FamilyId::Icsd,
                difficulty,
                prompt: format!("{prompt}\n\n{}", format.instruction()),
                system: SYSTEM_PROMPT.to_string(),
                format,
                expected,
                truth,
                tools,
                dialogue: None,
            })
        })
    }

    fn score(&self, task: &BenchTask, outcome: &Outcome) -> Score {
        let asks_link = !task.truth_str("link_from").is_empty();
        let fields = match extract_fields(&outcome.text, if asks_link { 3 } else { 2 }) {
            Ok(f) => f,
            Err(e) => return Score::zero(e),
        };
        let (subsystem, action) = (task.truth_str("subsystem"), task.truth_str("action"));
        let mut parts = vec![
            field_result(
                "subsystem",
                norm_label(&fields[0]) == norm_label(subsystem),
                &fields[0],
                subsystem,
            ),
            field_result(
                "action",
                norm_label(&fields[1]) == norm_label(action),
                &fields[1],
                action,
            ),
        ];
        if asks_link {
            // The truth is what the tool reported in this execution, by the record.
            let reported = outcome
                .calls()
                .into_iter()
                .rev()
                .find(|c| c.ran && c.tool == STATUS_TOOL)
                .and_then(|c| reported_preset(&c.summary).map(str::to_string));
            parts.push(match reported {
                None => (0.0, format!("link: {STATUS_TOOL} was not called")),
                Some(preset) => field_result(
                    "link",
                    norm_label(&fields[2]) == norm_label(&preset),
                    &fields[2],
                    &crate::sanitize::excerpt(&preset, 20),
                ),
            });
        }
        combine(parts)
    }
}

fn answer_format(asks_link: bool) -> AnswerFormat {
    let mut fields = vec![
        AnswerField {
            name: "subsystem".into(),
            kind: FieldKind::Choice {
                options: SUBSYSTEMS.iter().map(|s| s.to_string()).collect(),
            },
        },
        AnswerField {
            name: "action".into(),
            kind: FieldKind::Choice {
                options: ACTIONS.iter().map(|s| s.to_string()).collect(),
            },
        },
    ];
    if asks_link {
        fields.push(AnswerField {
            name: "link".into(),
            kind: FieldKind::Choice {
                options: PRESETS.iter().map(|s| s.to_string()).collect(),
            },
        });
    }
    AnswerFormat::new(fields)
}

/// The outcome a perfect solver leaves: `text` (the preset filled in where the expected
/// answer has [`LINK`]) and, for tasks that ask for the link, one audited `system_status`
/// call that reported `mars`.
#[cfg(test)]
pub(crate) fn perfect_outcome(task: &BenchTask, text: &str) -> Outcome {
    use super::record::{AuditedCall, ToolStep};
    let text = text
        .replace(LINK, "mars")
        .replace(&LINK.to_uppercase(), "MARS");
    let mut outcome = Outcome::text(text);
    if !task.truth_str("link_from").is_empty() {
        let summary = "0 queued, 1 running, backend mock healthy, link mars clear".to_string();
        outcome.steps.push(ToolStep {
            step: 1,
            tool: STATUS_TOOL.into(),
            arguments: "{}".into(),
            outcome: "success".into(),
            summary: summary.clone(),
            audit_seq: Some(1),
        });
        outcome.audit = Some(vec![AuditedCall {
            seq: 1,
            tool: STATUS_TOOL.into(),
            outcome: "success".into(),
            step: Some(1),
            path: None,
            summary,
        }]);
        outcome.tool_calls = 1;
    }
    outcome
}

/// A value well inside the nominal range (the middle 60 %), or exactly mid-range without noise.
fn nominal(draw: &mut Draw, m: &Metric, noisy: bool) -> f64 {
    let (lo, hi) = m.nominal;
    if noisy {
        draw.float(lo + 0.2 * (hi - lo), hi - 0.2 * (hi - lo))
    } else {
        (lo + hi) / 2.0
    }
}

fn line(m: &Metric, value: f64) -> String {
    format!(
        "{}.{} = {} {} (nominal {} to {})",
        m.subsystem,
        m.name,
        fixed(value, m.decimals),
        m.unit,
        fixed(m.nominal.0, m.decimals),
        fixed(m.nominal.1, m.decimals)
    )
}

/// One snapshot's values: metric name → value, for the metrics shown.
fn snapshot(
    draw: &mut Draw,
    shown: &[&'static Metric],
    overrides: &[(&str, f64)],
    noisy: bool,
) -> Vec<String> {
    shown
        .iter()
        .map(|m| {
            let base = nominal(draw, m, noisy);
            let value = overrides
                .iter()
                .find(|(n, _)| *n == m.name)
                .map_or(base, |(_, v)| *v);
            line(m, value)
        })
        .collect()
}

fn make_prompt(draw: &mut Draw, fault: &Fault, difficulty: Difficulty) -> String {
    let level = difficulty.level();
    // Which subsystems are shown.
    let mut subsystems: Vec<&str> = if level == 0 {
        let mut others: Vec<&str> = SUBSYSTEMS
            .iter()
            .copied()
            .filter(|s| *s != fault.subsystem)
            .collect();
        draw.shuffle(&mut others);
        others.truncate(2);
        others.push(fault.subsystem);
        others
    } else {
        SUBSYSTEMS.to_vec()
    };
    subsystems.sort_by_key(|s| SUBSYSTEMS.iter().position(|x| x == s));
    let shown: Vec<&'static Metric> = METRICS
        .iter()
        .filter(|m| subsystems.contains(&m.subsystem))
        .collect();
    let mut roots: Vec<(&str, f64)> = fault
        .root
        .iter()
        .map(|s| (s.metric, draw.float(s.range.0, s.range.1)))
        .collect();
    let knock: Vec<(&str, f64)> = match level {
        0 => Vec::new(),
        1 => fault
            .knock_on
            .first()
            .map(|s| vec![(s.metric, draw.float(s.range.0, s.range.1))])
            .unwrap_or_default(),
        _ => fault
            .knock_on
            .iter()
            .map(|s| (s.metric, draw.float(s.range.0, s.range.1)))
            .collect(),
    };
    // Knock-on symptoms only where their metric is shown and not already a root symptom.
    let knock: Vec<(&str, f64)> = knock
        .into_iter()
        .filter(|(n, _)| shown.iter().any(|m| m.name == *n) && !roots.iter().any(|(r, _)| r == n))
        .collect();
    let noisy = level >= 1;
    let mut text = String::from(
        "You are the diagnostics assistant of a crewed surface habitat. Exactly one fault \
         has occurred; other anomalies, if any, are its consequences or harmless glitches.\n",
    );
    if level >= 3 {
        // Three snapshots: the root appears first, knock-on symptoms later, and one unrelated
        // metric glitches in the middle snapshot only.
        let glitch = shown
            .iter()
            .filter(|m| {
                m.subsystem != fault.subsystem
                    && !knock.iter().any(|(n, _)| *n == m.name)
                    && !roots.iter().any(|(n, _)| *n == m.name)
            })
            .collect::<Vec<_>>();
        let glitch = draw.pick(&glitch).map(|m| {
            let (lo, hi) = m.nominal;
            (m.name, hi + (hi - lo) * draw.float(0.6, 1.5))
        });
        let early: Vec<(&str, f64)> = roots.iter().map(|(n, v)| (*n, *v)).collect();
        let mut middle = early.clone();
        middle.extend(glitch);
        let mut late = early.clone();
        late.extend(knock.iter().copied());
        for (label, overrides) in [
            ("T-20 min", &early),
            ("T-10 min", &middle),
            ("T (now)", &late),
        ] {
            text.push_str(&format!("\nSnapshot {label}:\n"));
            for l in snapshot(draw, &shown, overrides, noisy) {
                text.push_str(&format!("  {l}\n"));
            }
        }
    } else {
        roots.extend(knock.iter().copied());
        text.push_str("\nTelemetry snapshot:\n");
        for l in snapshot(draw, &shown, &roots, noisy) {
            text.push_str(&format!("  {l}\n"));
        }
    }
    if level >= 2 {
        let minute = draw.int(0, 40);
        let gap = draw.int(3, 12);
        let mut events = [
            format!("  +{minute:02} min  {}: {}", fault.subsystem, fault.log),
            format!("  +{:02} min  {}", minute + gap, fault.knock_log),
            format!(
                "  +{:02} min  routine: crew exercise period started",
                draw.int(0, 55)
            ),
        ];
        events.sort();
        text.push_str("\nEvent log (minutes since the shift began):\n");
        text.push_str(&events.join("\n"));
        text.push('\n');
    }
    text.push_str(&format!(
        "\nWhich subsystem has failed, and what is the first remedial action?\nSubsystems: {}.\n\
         Actions: {}.",
        SUBSYSTEMS.join(", "),
        ACTIONS.join(", ")
    ));
    text
}

#[cfg(test)]
mod tests;
