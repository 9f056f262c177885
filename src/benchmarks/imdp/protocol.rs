//! IMDP's protocol message: its JSON Schema ([`schema`]), the checker data a task keeps in its
//! ground truth ([`Setting`]), lenient-but-strict extraction of the message from a reply
//! ([`extract_json`]), and the constraint check behind the score ([`check`]).
//!
//! A message is `{"protocol": "veyra.imdp/1", "agreement": [{"agent", "start", "end",
//! "bandwidth_mbps"}, …]}`: one pass `[start, end)` in whole hours and one bandwidth per agent.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The `protocol` value every message carries.
pub const PROTOCOL: &str = "veyra.imdp/1";
/// Hours in the planning horizon: passes lie within hour 0 to hour 24.
pub const HORIZON: i64 = 24;
/// Longest reply the scorer looks at; a longer one scores 0 unread.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;
/// The most a schema-valid message earns when its plan breaks any constraint — the dish's
/// capacity or an agent's hard constraint: the plan itself then scores 0, and this share
/// of the fraction of constraints met is all that is left. A content-free plan (everyone the
/// whole day at full capacity, an equal share for all, an hour at 1 Mbit/s each) is not part
/// of a plan.
pub const SCHEMA_CREDIT: f64 = 0.1;

/// One agent's private constraints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRules {
    /// Its name (lower case, as in the schema's enum).
    pub name: String,
    /// The relay sees it from this hour…
    pub open: i64,
    /// …to this hour: its pass must lie within `[open, close]`.
    pub close: i64,
    /// Shortest pass it accepts, hours.
    pub min_hours: i64,
    /// Least bandwidth it accepts, Mbit/s.
    pub min_mbps: i64,
    /// Its pass must end by this hour, when set.
    pub deadline: Option<i64>,
}

/// The checker data of a task: everything [`check`] needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// Total downlink of the relay at any hour, Mbit/s.
    pub capacity: i64,
    /// Every agent's constraints, in speaking order.
    pub agents: Vec<AgentRules>,
    /// Pairs of agents whose passes must not overlap.
    pub conflicts: Vec<(String, String)>,
}

/// One agent's pass in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    /// The agent.
    pub agent: String,
    /// First hour.
    pub start: i64,
    /// Hour it ends (exclusive).
    pub end: i64,
    /// Bandwidth during the pass, Mbit/s.
    pub bandwidth_mbps: i64,
}

/// A protocol message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Always [`PROTOCOL`].
    pub protocol: String,
    /// One pass per agent.
    pub agreement: Vec<Pass>,
}

/// The JSON Schema (draft 2020-12) of a message for `setting`.
pub fn schema(setting: &Setting) -> Value {
    let names: Vec<&str> = setting.agents.iter().map(|a| a.name.as_str()).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "veyra.imdp/1 protocol message",
        "type": "object",
        "required": ["protocol", "agreement"],
        "additionalProperties": false,
        "properties": {
            "protocol": { "const": PROTOCOL },
            "agreement": {
                "type": "array",
                "minItems": 1,
                "maxItems": names.len(),
                "items": {
                    "type": "object",
                    "required": ["agent", "start", "end", "bandwidth_mbps"],
                    "additionalProperties": false,
                    "properties": {
                        "agent": { "enum": names },
                        "start": { "type": "integer", "minimum": 0, "maximum": HORIZON - 1 },
                        "end": { "type": "integer", "minimum": 1, "maximum": HORIZON },
                        "bandwidth_mbps": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": setting.capacity
                        }
                    }
                }
            }
        }
    })
}

/// The last JSON object in `text`: the last top-level `{…}` span (braces matched outside JSON
/// strings) that parses. Prose, a fenced block or an `ANSWER:` prefix around it are fine; a
/// reply whose last object is not the message does not score. Linear in the text.
pub fn extract_json(text: &str) -> Result<Value, String> {
    if text.len() > MAX_REPLY_BYTES {
        return Err(format!(
            "the reply is {} bytes; the scorer reads at most {MAX_REPLY_BYTES}",
            text.len()
        ));
    }
    let spans = object_spans(text);
    if spans.is_empty() {
        return Err("no JSON object in the reply".into());
    }
    let mut last_error = String::new();
    for (start, end) in spans.into_iter().rev() {
        let Some(candidate) = text.get(start..end) else {
            continue;
        };
        match serde_json::from_str::<Value>(candidate) {
            Ok(v) => return Ok(v),
            Err(e) => {
                if last_error.is_empty() {
                    last_error = e.to_string();
                }
            }
        }
    }
    Err(format!("the last JSON object does not parse: {last_error}"))
}

/// Byte ranges of the top-level `{…}` spans of `text`, in order. Inside a span, braces in JSON
/// strings (with their escapes) do not count; outside, everything but `{` is prose.
fn object_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        if depth == 0 {
            if b == b'{' {
                depth = 1;
                start = i;
                in_string = false;
                escaped = false;
            }
            continue;
        }
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    spans.push((start, i + 1));
                }
            }
            _ => {}
        }
    }
    spans
}

/// An integer field of a schema-valid pass (`3` or `3.0`).
fn int_field(pass: &Value, key: &str) -> Option<i64> {
    let v = pass.get(key)?;
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
            .map(|f| f as i64)
    })
}

/// The passes of a message already valid against [`schema`].
pub fn passes(message: &Value) -> Result<Vec<Pass>, String> {
    let items = message
        .get("agreement")
        .and_then(Value::as_array)
        .ok_or("the message has no agreement list")?;
    items
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let field = |key: &str| {
                int_field(p, key).ok_or_else(|| format!("agreement[{i}].{key} is not an integer"))
            };
            Ok(Pass {
                agent: p
                    .get("agent")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("agreement[{i}].agent is not a name"))?
                    .to_string(),
                start: field("start")?,
                end: field("end")?,
                bandwidth_mbps: field("bandwidth_mbps")?,
            })
        })
        .collect()
}

/// One constraint and whether the message meets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What it asks (`ares: window 3–15`).
    pub constraint: String,
    /// Met or not.
    pub met: bool,
}

/// The outcome of [`check`].
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// Every constraint, in a fixed order.
    pub verdicts: Vec<Verdict>,
    /// True when the shared capacity holds at every hour.
    pub capacity_ok: bool,
}

impl Checked {
    /// True when every constraint holds: the plan is a solution.
    pub fn solved(&self) -> bool {
        !self.verdicts.is_empty() && self.capacity_ok && self.verdicts.iter().all(|v| v.met)
    }

    /// 1 for a solution; otherwise [`SCHEMA_CREDIT`] × constraints met / constraints — every
    /// constraint is hard, so a plan that breaks one is no plan and earns only a little for
    /// its valid form.
    pub fn score(&self) -> f64 {
        if self.verdicts.is_empty() {
            return 0.0;
        }
        if self.solved() {
            return 1.0;
        }
        let met = self.verdicts.iter().filter(|v| v.met).count();
        SCHEMA_CREDIT * met as f64 / self.verdicts.len() as f64
    }

    /// `k of n constraints met` and the first failed ones.
    pub fn reason(&self) -> String {
        let met = self.verdicts.iter().filter(|v| v.met).count();
        let failed: Vec<&str> = self
            .verdicts
            .iter()
            .filter(|v| !v.met)
            .map(|v| v.constraint.as_str())
            .collect();
        let mut text = format!("{met} of {} constraints met", self.verdicts.len());
        if !failed.is_empty() {
            let shown = failed
                .iter()
                .take(3)
                .copied()
                .collect::<Vec<_>>()
                .join("; ");
            let more = failed.len().saturating_sub(3);
            text.push_str(&format!("; failed: {shown}"));
            if more > 0 {
                text.push_str(&format!(" (+{more} more)"));
            }
        }
        if !self.capacity_ok {
            text.push_str("; capacity broken");
        }
        if !self.solved() {
            text.push_str(&format!(
                "; a plan that breaks a constraint scores 0, the valid message {SCHEMA_CREDIT} × \
                 the share met"
            ));
        }
        text
    }
}

/// Checks every constraint of `setting` against `passes`:
/// per agent — listed exactly once, the pass inside its window (and `start < end`), at least
/// its hours, at least its bandwidth, ending by its deadline (when it has one); per conflict
/// pair — the two passes do not overlap; and the shared capacity at every hour (every listed
/// pass counts, duplicates too). An agent not listed exactly once fails all its constraints
/// and its conflicts.
pub fn check(setting: &Setting, passes: &[Pass]) -> Checked {
    let mut verdicts = Vec::new();
    let only = |name: &str| -> Option<&Pass> {
        let mut found = passes.iter().filter(|p| p.agent == name);
        let first = found.next()?;
        found.next().is_none().then_some(first)
    };
    for a in &setting.agents {
        let pass = only(&a.name);
        let mut add = |constraint: String, ok: fn(&AgentRules, &Pass) -> bool| {
            verdicts.push(Verdict {
                met: pass.is_some_and(|p| ok(a, p)),
                constraint,
            });
        };
        add(format!("{}: listed exactly once", a.name), |_, _| true);
        add(
            format!("{}: pass within hours {}–{}", a.name, a.open, a.close),
            |a, p| p.start < p.end && p.start >= a.open && p.end <= a.close,
        );
        add(format!("{}: at least {} h", a.name, a.min_hours), |a, p| {
            p.end.saturating_sub(p.start) >= a.min_hours
        });
        add(
            format!("{}: at least {} Mbit/s", a.name, a.min_mbps),
            |a, p| p.bandwidth_mbps >= a.min_mbps,
        );
        if let Some(deadline) = a.deadline {
            add(format!("{}: ends by hour {deadline}", a.name), |a, p| {
                a.deadline.is_some_and(|d| p.end <= d)
            });
        }
    }
    for (x, y) in &setting.conflicts {
        let met = match (only(x), only(y)) {
            (Some(p), Some(q)) => p.end <= q.start || q.end <= p.start,
            _ => false,
        };
        verdicts.push(Verdict {
            constraint: format!("{x} and {y} do not overlap"),
            met,
        });
    }
    let capacity_ok = (0..HORIZON).all(|hour| {
        let load: i64 = passes
            .iter()
            .filter(|p| p.start <= hour && hour < p.end)
            .map(|p| p.bandwidth_mbps.max(0))
            .fold(0i64, i64::saturating_add);
        load <= setting.capacity
    });
    verdicts.push(Verdict {
        constraint: format!("at most {} Mbit/s at every hour", setting.capacity),
        met: capacity_ok,
    });
    Checked {
        verdicts,
        capacity_ok,
    }
}

/// The peak load of `passes` over the horizon, Mbit/s.
pub fn peak_load(passes: &[Pass]) -> i64 {
    (0..HORIZON)
        .map(|hour| {
            passes
                .iter()
                .filter(|p| p.start <= hour && hour < p.end)
                .map(|p| p.bandwidth_mbps)
                .sum::<i64>()
        })
        .max()
        .unwrap_or(0)
}
