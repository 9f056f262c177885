//! The scorers a suite's samples name, compiled once at load, and the answer-format sentence
//! each sample's prompt ends with.
//!
//! Every scorer reads the reply through [`crate::benchmarks::answer`]: the answer is the last
//! `ANSWER:` line's field, and a reply without one scores 0 — an echo of the question is not
//! an answer. A sample with several targets is right when any one of them is.
//! - `exact`: the field equals a target, ignoring case and runs of white space.
//! - `choice`: the field is one of the sample's choices and equals the target (both compared
//!   with [`norm_label`]).
//! - `number`: the field holds one plain number ([`answer::number`]: hedges, ranges and two
//!   numbers are refused) within `tolerance` (absolute) of a target. The unit is asked for in
//!   the prompt; a unit written beside the number is allowed, not checked.
//! - `regex`: the pattern matches the whole field (anchored), compiled with a size limit;
//!   with targets, the field must also be one of them (the pattern says the form, the target
//!   what the answer is).
//! - `includes`: the field holds a target as whole words, ignoring case, and no word that
//!   turns it around or hedges (`not`, `or`, …); never the whole reply, and never with
//!   choices (an answer listing them all would include the target).
//! - `json_schema`: the rest of the answer line after `ANSWER:` is one JSON document valid
//!   against the schema (compiled at load; no remote `$ref` is fetched), and equal to a target
//!   when there are targets.
//! - `custom`: an embedder's own [`super::CustomBenchmark::score_result`].
//!
//! Targets and choices are read as an answer field is (quotes, emphasis, a trailing full stop
//! off), and the instruction's own `ANSWER: <answer>` line, echoed, is no answer.

use regex::{Regex, RegexBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::benchmarks::answer::{self, norm_label};
use crate::benchmarks::framework::{AnswerField, AnswerFormat, FieldKind};

/// Most bytes a compiled `regex` pattern (and its lazy DFA) may take: a hostile suite cannot
/// blow up memory with one pattern, nor with many ([`super::format`] caps how many).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How a sample's answer is scored, as a suite file names it (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScorerSpec {
    /// The answer equals the target, ignoring case and runs of white space.
    Exact,
    /// The answer is one of the choices and equals the target.
    Choice,
    /// The answer is one plain number within `tolerance` of the target.
    Number {
        /// Absolute tolerance (default 0).
        #[serde(default)]
        tolerance: f64,
        /// The unit the prompt asks for (not checked in the answer).
        #[serde(default)]
        unit: Option<String>,
    },
    /// The pattern matches the whole answer.
    Regex {
        /// A regular expression (Rust `regex` syntax), anchored at both ends.
        pattern: String,
    },
    /// The answer contains the target, ignoring case.
    Includes,
    /// The answer is one JSON document valid against the schema.
    JsonSchema {
        /// A JSON Schema.
        schema: serde_json::Value,
    },
}

/// An embedder's own scoring of one task's reply (see [`super::CustomBenchmark`]).
#[derive(Clone)]
pub struct CustomScore(pub std::sync::Arc<dyn Fn(&str) -> Verdict + Send + Sync>);

impl std::fmt::Debug for CustomScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomScore")
    }
}

/// A compiled scorer.
#[derive(Debug)]
pub enum Scorer {
    /// The field equals a target, ignoring case and runs of white space.
    Exact,
    /// The field is one of the choices and equals the target.
    Choice,
    /// The field is one plain number within `tolerance` of a target.
    Number {
        /// Absolute tolerance.
        tolerance: f64,
        /// The unit the prompt asks for.
        unit: Option<String>,
    },
    /// The pattern matches the whole field.
    Regex {
        /// The pattern as written.
        pattern: String,
        /// The pattern anchored at both ends.
        compiled: Regex,
    },
    /// The field holds a target as whole words, ignoring case, and nothing turning it around.
    Includes,
    /// The answer is one JSON document valid against the schema.
    JsonSchema {
        /// The schema as written (shown in the prompt).
        schema: serde_json::Value,
        /// The compiled schema.
        validator: Box<jsonschema::Validator>,
    },
    /// An embedder's benchmark scores the reply itself.
    Custom(CustomScore),
}

/// A scored reply: the score in `[0, 1]`, why, and the answer field read (when there was one).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// 1 right, 0 wrong.
    pub score: f64,
    /// Why, in words.
    pub reason: String,
    /// The answer field, when the reply had an answer line.
    pub answer: Option<String>,
}

impl Verdict {
    /// A right answer (score 1).
    pub fn right(answer: String, reason: impl Into<String>) -> Self {
        Verdict {
            score: 1.0,
            reason: reason.into(),
            answer: Some(answer),
        }
    }

    /// A wrong answer, or none (score 0).
    pub fn wrong(answer: Option<String>, reason: impl Into<String>) -> Self {
        Verdict {
            score: 0.0,
            reason: reason.into(),
            answer,
        }
    }
}

impl Scorer {
    /// Compiles `spec`: a regex with [`REGEX_SIZE_LIMIT`], a schema checked as a JSON Schema.
    /// The error is what is wrong with it, for the loader to place.
    pub fn compile(spec: &ScorerSpec) -> Result<Scorer, String> {
        Ok(match spec {
            ScorerSpec::Exact => Scorer::Exact,
            ScorerSpec::Choice => Scorer::Choice,
            ScorerSpec::Includes => Scorer::Includes,
            ScorerSpec::Number { tolerance, unit } => {
                if !tolerance.is_finite() || *tolerance < 0.0 {
                    return Err(format!(
                        "the tolerance {tolerance} is not a finite number of 0 or more"
                    ));
                }
                Scorer::Number {
                    tolerance: *tolerance,
                    unit: unit.clone().filter(|u| !u.trim().is_empty()),
                }
            }
            ScorerSpec::Regex { pattern } => {
                let compiled = RegexBuilder::new(&format!("^(?:{pattern})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| {
                        format!(
                            "the pattern is not a usable regular expression: {}",
                            crate::sanitize::quote(&e.to_string())
                        )
                    })?;
                Scorer::Regex {
                    pattern: pattern.clone(),
                    compiled,
                }
            }
            ScorerSpec::JsonSchema { schema } => {
                // The schema's own `pattern`s run on the linear-time engine with the `regex`
                // scorer's limits: a hostile pattern cannot make scoring backtrack.
                let validator = jsonschema::options()
                    .with_pattern_options(
                        jsonschema::PatternOptions::regex()
                            .size_limit(REGEX_SIZE_LIMIT)
                            .dfa_size_limit(REGEX_SIZE_LIMIT),
                    )
                    .build(schema)
                    .map_err(|e| {
                        format!(
                            "the schema is not a usable JSON Schema: {}",
                            crate::sanitize::quote(&e.to_string())
                        )
                    })?;
                Scorer::JsonSchema {
                    schema: schema.clone(),
                    validator: Box::new(validator),
                }
            }
        })
    }

    /// The scorer's name, as a suite names it.
    pub fn name(&self) -> &'static str {
        match self {
            Scorer::Exact => "exact",
            Scorer::Choice => "choice",
            Scorer::Number { .. } => "number",
            Scorer::Regex { .. } => "regex",
            Scorer::Includes => "includes",
            Scorer::JsonSchema { .. } => "json_schema",
            Scorer::Custom(_) => "custom",
        }
    }

    /// Checks a sample's targets and choices against this scorer, before anything runs: the
    /// field at fault and what is wrong with it.
    pub fn check(
        &self,
        targets: &[String],
        choices: &[String],
    ) -> Result<(), (&'static str, String)> {
        let needs_target = matches!(
            self,
            Scorer::Exact | Scorer::Choice | Scorer::Number { .. } | Scorer::Includes
        );
        if needs_target && targets.is_empty() {
            return Err((
                "target",
                format!("the `{}` scorer needs a target; add one", self.name()),
            ));
        }
        if let Some(empty) = targets.iter().position(|t| t.trim().is_empty()) {
            return Err(("target", format!("target {} is empty", empty + 1)));
        }
        // An answer is one line, its field one `|`-free piece: a target that is not could
        // never be answered.
        if !matches!(self, Scorer::JsonSchema { .. })
            && let Some(t) = targets.iter().find(|t| t.contains(['|', '\n', '\r']))
        {
            return Err((
                "target",
                format!(
                    "the target '{}' holds a '|' or a line break, which no answer line can; \
                     reword it",
                    crate::sanitize::quote(t)
                ),
            ));
        }
        match self {
            Scorer::Custom(_) => Ok(()),
            // Every choice is in the prompt: an answer listing them all would include the
            // target.
            Scorer::Includes if !choices.is_empty() => Err((
                "choices",
                "the `includes` scorer cannot be given choices (an answer listing them all would \
                 include the target); use `choice`"
                    .into(),
            )),
            Scorer::Exact | Scorer::Includes => Ok(()),
            Scorer::Choice => {
                if choices.len() < 2 {
                    return Err((
                        "choices",
                        "the `choice` scorer needs at least two choices".into(),
                    ));
                }
                let labels: Vec<String> = choices.iter().map(|c| norm_label(c)).collect();
                for (i, label) in labels.iter().enumerate() {
                    if label.is_empty() {
                        return Err(("choices", format!("choice {} is empty", i + 1)));
                    }
                    if labels[..i].contains(label) {
                        return Err((
                            "choices",
                            format!(
                                "choice '{}' is given twice (choices are compared ignoring case, \
                                 spaces, '-' and '_')",
                                crate::sanitize::quote(&choices[i])
                            ),
                        ));
                    }
                }
                match targets.iter().find(|t| !labels.contains(&norm_label(t))) {
                    Some(t) => Err((
                        "target",
                        format!(
                            "the target '{}' is not one of the choices; make it one of them",
                            crate::sanitize::quote(t)
                        ),
                    )),
                    None => Ok(()),
                }
            }
            Scorer::Number { .. } => match targets.iter().find_map(|t| answer::number(t).err()) {
                Some(why) => Err((
                    "target",
                    format!("the `number` scorer needs a plain number as target: {why}"),
                )),
                None => Ok(()),
            },
            Scorer::Regex { compiled, .. } => {
                match targets.iter().find(|t| !compiled.is_match(t.trim())) {
                    Some(t) => Err((
                        "target",
                        format!(
                            "the target '{}' does not match the scorer's pattern (which must \
                             match the whole answer); fix one of them",
                            crate::sanitize::quote(t)
                        ),
                    )),
                    None => Ok(()),
                }
            }
            Scorer::JsonSchema { validator, .. } => {
                for t in targets {
                    let value: serde_json::Value = serde_json::from_str(t)
                        .map_err(|e| ("target", format!("the target is not JSON: {e}")))?;
                    if let Some(e) = validator.iter_errors(&value).next() {
                        return Err((
                            "target",
                            format!(
                                "the target is not valid against the schema: {}",
                                crate::sanitize::quote(&e.to_string())
                            ),
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// The sentence appended to the prompt that states the answer format, in the words the
    /// built-in families use ([`AnswerFormat::instruction`]).
    pub fn instruction(&self, choices: &[String]) -> String {
        let field = |kind| {
            AnswerFormat::new(vec![AnswerField {
                name: "answer".into(),
                kind,
            }])
            .instruction()
        };
        let plain = |what: &str| {
            format!(
                "Finish your reply with exactly one line of the form\nANSWER: <answer>\nwhere \
                 <answer> is {what}.\n"
            )
        };
        match self {
            Scorer::Choice => field(FieldKind::Choice {
                options: choices.to_vec(),
            }),
            Scorer::Number { unit, .. } => field(FieldKind::Number {
                unit: unit.clone().unwrap_or_default(),
            }),
            Scorer::JsonSchema { schema, .. } => format!(
                "The answer is one JSON document valid against this JSON Schema:\n{}\nFinish \
                 your reply with exactly one line of the form\nANSWER: <answer>\nwhere <answer> \
                 is that JSON document, on one line.\n",
                serde_json::to_string(schema).unwrap_or_default()
            ),
            Scorer::Exact | Scorer::Regex { .. } | Scorer::Includes if !choices.is_empty() => {
                plain(&format!("one of {}", choices.join(", ")))
            }
            Scorer::Exact | Scorer::Regex { .. } | Scorer::Includes => plain("your answer alone"),
            // The embedder's prompt says how to answer.
            Scorer::Custom(_) => String::new(),
        }
    }

    /// Scores `reply` against the sample's `targets` and `choices` (see the module docs).
    pub fn score(&self, reply: &str, targets: &[String], choices: &[String]) -> Verdict {
        if let Scorer::JsonSchema { validator, .. } = self {
            return score_json(reply, validator, targets);
        }
        if let Scorer::Custom(score) = self {
            return (score.0)(reply);
        }
        let field = match answer::extract_fields(reply, 1) {
            Ok(mut fields) => fields.pop().unwrap_or_default(),
            Err(why) => return Verdict::wrong(None, why),
        };
        // The instruction's own `ANSWER: <answer>` line, echoed back, is no answer.
        if squash(&field) == "answer" {
            return Verdict::wrong(
                None,
                "the reply gives the instruction's placeholder, not an answer",
            );
        }
        // Targets and choices read as an answer field is read (its quotes, emphasis and
        // trailing full stop off), so `Washington, D.C.` matches itself.
        let clean = |t: &String| answer::clean_field(t);
        match self {
            Scorer::Exact => {
                let got = squash(&field);
                if targets.iter().any(|t| squash(&clean(t)) == got) {
                    Verdict::right(field, "exact match")
                } else {
                    Verdict::wrong(Some(field), "not the target")
                }
            }
            Scorer::Includes => {
                // The target as whole words of the answer, and nothing that turns it around
                // (`not Saturn`) or hedges between it and others (`Saturn or Jupiter`).
                let got = format!(" {} ", words(&field));
                if let Some(word) = HEDGES.iter().find(|w| got.contains(&format!(" {w} "))) {
                    return Verdict::wrong(
                        Some(field.clone()),
                        format!("the answer says '{word}': one answer, stated, is asked for"),
                    );
                }
                if targets
                    .iter()
                    .any(|t| got.contains(&format!(" {} ", words(&clean(t)))))
                {
                    Verdict::right(field, "the answer includes the target")
                } else {
                    Verdict::wrong(Some(field), "the answer does not include the target")
                }
            }
            Scorer::Choice => {
                let got = norm_label(&field);
                if !choices.iter().any(|c| norm_label(&clean(c)) == got) {
                    Verdict::wrong(Some(field), "not one of the choices")
                } else if targets.iter().any(|t| norm_label(&clean(t)) == got) {
                    Verdict::right(field, "the right choice")
                } else {
                    Verdict::wrong(Some(field), "the wrong choice")
                }
            }
            Scorer::Number { tolerance, .. } => match answer::number(&field) {
                Err(why) => Verdict::wrong(Some(field), why),
                Ok(got) => {
                    let hit = targets
                        .iter()
                        .filter_map(|t| answer::parse_number(t))
                        .any(|want| answer::within(got, want, *tolerance));
                    if hit {
                        Verdict::right(field, format!("within {tolerance} of the target"))
                    } else {
                        Verdict::wrong(
                            Some(field),
                            format!("{got} is not within {tolerance} of the target"),
                        )
                    }
                }
            },
            Scorer::Regex { compiled, .. } => {
                if !compiled.is_match(&field) {
                    return Verdict::wrong(Some(field), "the answer does not match the pattern");
                }
                // With targets, the pattern says what form the answer takes and the target
                // what it is: both must hold. Without, the pattern alone decides.
                if targets.is_empty() || targets.iter().any(|t| squash(&clean(t)) == squash(&field))
                {
                    Verdict::right(field, "the answer matches the pattern")
                } else {
                    Verdict::wrong(Some(field), "the answer has the form, not the target")
                }
            }
            Scorer::JsonSchema { validator, .. } => score_json(reply, validator, targets),
            Scorer::Custom(score) => (score.0)(reply),
        }
    }
}

/// Words that turn an `includes` answer around or hedge it.
const HEDGES: [&str; 7] = ["not", "no", "never", "or", "isn't", "nor", "neither"];

/// `text` lower-cased as words: letters and digits kept, every other run of characters made
/// one space.
fn words(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` lower-cased, trimmed, with every run of white space made one space.
fn squash(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The same answer line [`answer::extract_fields`] reads (the last explicit `ANSWER:` line),
/// but its text whole: a JSON document may hold `|`, brackets and quotes that the field
/// cleaning would cut.
fn answer_line_re() -> Option<&'static Regex> {
    static RE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)(?:^|[^a-z])(?:final\s+)?answer\s*\**\s*[:=]\s*\**\s*(.*)$").ok()
    })
    .as_ref()
}

/// The raw text of the last answer line, trimmed of white space and code marks.
pub(super) fn raw_answer(reply: &str) -> Option<String> {
    let re = answer_line_re()?;
    reply.lines().rev().find_map(|line| {
        let text = re.captures(line)?.get(1)?.as_str();
        let text = text.trim().trim_matches('`').trim();
        (!text.is_empty()).then(|| text.to_string())
    })
}

fn score_json(reply: &str, validator: &jsonschema::Validator, targets: &[String]) -> Verdict {
    let Some(text) = raw_answer(reply) else {
        return Verdict::wrong(None, "no ANSWER line");
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return Verdict::wrong(Some(text), format!("the answer is not JSON: {e}")),
    };
    match validator.iter_errors(&value).next() {
        // With targets, the schema says what form the answer takes and a target what it is.
        None if !targets.is_empty()
            && !targets.iter().any(|t| {
                serde_json::from_str::<serde_json::Value>(t).is_ok_and(|t| t == value)
            }) =>
        {
            Verdict::wrong(Some(text), "valid against the schema, but not the target")
        }
        None => Verdict::right(text, "valid against the schema"),
        Some(e) => {
            let why = format!(
                "not valid against the schema: {}",
                crate::sanitize::excerpt(&e.to_string(), 120)
            );
            Verdict::wrong(Some(text), why)
        }
    }
}
