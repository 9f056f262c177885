//! A suite's file formats and the checks that make a file a [`Suite`].
//!
//! - **YAML** (`.yaml`, `.yml`): one document, a [`SuiteSpec`] — `name`, `version` (default
//!   `"1"`), `system`, `scorer` (the samples' default) and `samples`.
//! - **JSONL** (`.jsonl`, `.ndjson`): one [`SampleSpec`] object per line; the suite's name is
//!   the file's stem, its version `"1"`. A [`FieldMap`] (`--map input=question,target=answer`)
//!   renames a dataset's fields; without one, a line with `question`/`answer` and no
//!   `input`/`target` is read as if mapped so (inspect_ai and lm-eval datasets). Fields the
//!   format does not know are kept in the sample's `metadata`; a numeric `id` or `target` is
//!   read as its text.
//!
//! The default scorer, when neither the sample nor the suite names one, is `choice` for a
//! sample with choices and `exact` otherwise. Every file is read with the bounded reader
//! ([`crate::fsread`]) and checked whole before anything runs: duplicate ids, an empty input,
//! a choice target not among the choices, an invalid regex or schema, an empty suite are all
//! refused (exit 2) with the file, the sample and the field named.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scorer::{Scorer, ScorerSpec};
use crate::error::VeyraError;

/// Most bytes of a suite file Veyra reads.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Most samples in one suite.
pub const MAX_SAMPLES: usize = 100_000;
/// Most distinct `regex` patterns and `json_schema` schemas in one suite: each compiles once
/// (samples naming the same one share it), within [`super::scorer::REGEX_SIZE_LIMIT`].
pub const MAX_COMPILED: usize = 64;

/// A suite file (YAML): what `veyra bench schema --suite` describes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteSpec {
    /// The suite's name, shown with its score.
    pub name: String,
    /// Its version (default "1"): change it when the samples change.
    #[serde(default = "default_version")]
    pub version: Scalar,
    /// A system prompt for every sample.
    #[serde(default)]
    pub system: Option<String>,
    /// The scorer of samples that name none (default: `choice` for a sample with choices,
    /// else `exact`).
    #[serde(default)]
    pub scorer: Option<ScorerSpec>,
    /// The samples, at least one.
    pub samples: Vec<SampleSpec>,
}

fn default_version() -> Scalar {
    Scalar::Text("1".into())
}

/// One sample of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleSpec {
    /// Unique within the suite (default: its position, from 1); a number is read as its text.
    #[serde(default)]
    pub id: Option<Scalar>,
    /// The question, not empty.
    pub input: String,
    /// The right answer, or several (any one of them is right; for `includes`, the answer
    /// must include one). Needed by every scorer but `regex` and `json_schema`, which check
    /// it against their pattern or schema when given.
    #[serde(default)]
    pub target: Option<TargetSpec>,
    /// The options of a multiple-choice question, listed in the prompt.
    #[serde(default)]
    pub choices: Option<Vec<String>>,
    /// Files for the sample. Accepted and kept, not used yet: no file reaches the model.
    #[serde(default)]
    pub files: Vec<String>,
    /// Tools offered to the model, by name (default: none).
    #[serde(default)]
    pub tools: Vec<String>,
    /// Anything else about the sample (a JSON object), kept with it.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// This sample's scorer, over the suite's.
    #[serde(default)]
    pub scorer: Option<ScorerSpec>,
}

/// A target: one answer or a list of them; a number is read as its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TargetSpec {
    /// One answer.
    One(Scalar),
    /// Several; any one is right.
    Many(Vec<Scalar>),
}

/// A text, or a number read as its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    /// Text.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// A number.
    Number(f64),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(t) => t.clone(),
            Scalar::Integer(i) => i.to_string(),
            Scalar::Number(n) => n.to_string(),
        }
    }
}

impl TargetSpec {
    fn texts(&self) -> Vec<String> {
        match self {
            TargetSpec::One(s) => vec![s.text()],
            TargetSpec::Many(list) => list.iter().map(Scalar::text).collect(),
        }
    }
}

/// A suite checked and compiled, ready to run.
#[derive(Debug)]
pub struct Suite {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The file it came from.
    pub source: PathBuf,
    /// The SHA-256 (hex) of the file's bytes, as read (empty for a suite not read from a
    /// file): what its `BENCHMARK` entry names, so two files at one path are told apart.
    pub digest: String,
    /// The system prompt of every sample.
    pub system: Option<String>,
    /// The samples, in file order.
    pub samples: Vec<Sample>,
}

/// One sample, checked, with its compiled scorer and its whole prompt.
#[derive(Debug)]
pub struct Sample {
    /// Unique within the suite.
    pub id: String,
    /// The question as written.
    pub input: String,
    /// The prompt sent: the question and the answer-format sentence.
    pub prompt: String,
    /// The right answers (any one is right).
    pub targets: Vec<String>,
    /// The options, for a multiple-choice question.
    pub choices: Vec<String>,
    /// Files named by the sample (kept, not used yet).
    pub files: Vec<String>,
    /// Tools offered to the model.
    pub tools: Vec<String>,
    /// Metadata, kept with the sample.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The scorer.
    pub scorer: Arc<Scorer>,
}

/// Field renames for a JSONL dataset: `input=question,target=answer` reads the dataset's
/// `question` as the sample's `input` and its `answer` as the `target`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldMap(pub Vec<(String, String)>);

/// The fields a sample has, as a [`FieldMap`] may name them.
const SAMPLE_FIELDS: [&str; 8] = [
    "id", "input", "target", "choices", "files", "tools", "metadata", "scorer",
];

/// As stored with a run and given back to `--map`: `input=question,target=answer`.
impl std::fmt::Display for FieldMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (to, from)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{to}={from}")?;
        }
        Ok(())
    }
}

impl FieldMap {
    /// Parses `ours=theirs[,ours=theirs…]`.
    pub fn parse(text: &str) -> Result<FieldMap, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((ours, theirs)) = part.split_once('=') else {
                return Err(format!(
                    "'{}' is not FIELD=NAME; write e.g. input=question,target=answer",
                    crate::sanitize::quote(part)
                ));
            };
            let (ours, theirs) = (ours.trim(), theirs.trim());
            if !SAMPLE_FIELDS.contains(&ours) {
                return Err(format!(
                    "'{}' is not a sample field; map one of {}",
                    crate::sanitize::quote(ours),
                    SAMPLE_FIELDS.join(", ")
                ));
            }
            if theirs.is_empty() {
                return Err(format!("'{ours}=' names no dataset field"));
            }
            if pairs.iter().any(|(o, _)| o == ours) {
                return Err(format!("'{ours}' is mapped twice"));
            }
            pairs.push((ours.to_string(), theirs.to_string()));
        }
        if pairs.is_empty() {
            return Err("no mapping given; write e.g. input=question,target=answer".into());
        }
        Ok(FieldMap(pairs))
    }
}

/// Reads, checks and compiles the suite at `path` (YAML or JSONL, by extension); `map`
/// renames a JSONL dataset's fields. Every error is a usage error naming the file.
pub fn load(path: &Path, map: Option<&FieldMap>) -> Result<Suite, VeyraError> {
    let shown = path.display().to_string();
    let text =
        crate::fsread::read_regular_to_string(path, MAX_FILE_BYTES, "suite file").map_err(|e| {
            VeyraError::Usage(
                crate::sanitize::sanitize_line(&format!("suite {shown}: {}", e.reason()))
                    .into_owned(),
            )
        })?;
    from_text(&text, path, map)
}

/// Checks and compiles a suite file's `text` already read (a serving runtime gets it from the
/// client that read it): `path` is only its name, for its format (by extension), its errors
/// and its run's source; nothing is read from it.
pub fn from_text(text: &str, path: &Path, map: Option<&FieldMap>) -> Result<Suite, VeyraError> {
    let shown = path.display().to_string();
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(usage(
            &shown,
            &format!(
                "the file is larger than {} MiB; split the suite",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let digest = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(text.as_bytes()))
    };
    let suite = match extension.as_deref() {
        Some("yaml" | "yml") => {
            if map.is_some() {
                return Err(usage(
                    &shown,
                    "--map renames the fields of a JSONL dataset; a YAML suite names its fields \
                     `input` and `target` itself",
                ));
            }
            from_yaml(text, path)
        }
        Some("jsonl" | "ndjson") => from_jsonl(text, path, map),
        _ => Err(usage(
            &shown,
            "a suite is a .yaml/.yml file or a .jsonl dataset; rename the file to say which",
        )),
    };
    suite.map(|mut suite| {
        suite.digest = digest;
        suite
    })
}

fn usage(file: &str, message: &str) -> VeyraError {
    VeyraError::Usage(
        crate::sanitize::sanitize_line(&format!("suite {file}: {message}")).into_owned(),
    )
}

/// Parses a YAML suite (see the module docs); `path` names it in errors.
pub fn from_yaml(text: &str, path: &Path) -> Result<Suite, VeyraError> {
    let shown = path.display().to_string();
    let spec: SuiteSpec = serde_saphyr::from_str(text).map_err(|e| {
        let (at, first) = crate::config::yaml_error_parts(&e);
        let first = first.as_str();
        VeyraError::Usage(
            crate::sanitize::sanitize_line(&format!(
                "suite {shown}{at}: {}; `veyra bench schema --suite` prints the format",
                crate::sanitize::excerpt(first, 300)
            ))
            .into_owned(),
        )
    })?;
    let positions: Vec<String> = (1..=spec.samples.len())
        .map(|i| format!("sample {i}"))
        .collect();
    build(spec, positions, path)
}

/// Parses a JSONL dataset (see the module docs); `path` names it in errors and gives the
/// suite its name.
pub fn from_jsonl(text: &str, path: &Path, map: Option<&FieldMap>) -> Result<Suite, VeyraError> {
    let shown = path.display().to_string();
    let mut samples = Vec::new();
    let mut positions = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("line {}", i + 1);
        if samples.len() == MAX_SAMPLES {
            return Err(usage(
                &shown,
                &format!("more than {MAX_SAMPLES} samples; split the dataset"),
            ));
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| usage(&shown, &format!("{at}: not a JSON object: {e}")))?;
        let serde_json::Value::Object(object) = value else {
            return Err(usage(
                &shown,
                &format!("{at}: not a JSON object; each line is one sample object"),
            ));
        };
        let sample = sample_from_object(object, map)
            .map_err(|(field, why)| usage(&shown, &format!("{at}: field `{field}`: {why}")))?;
        samples.push(sample);
        positions.push(at);
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "suite".into());
    let spec = SuiteSpec {
        name,
        version: default_version(),
        system: None,
        scorer: None,
        samples,
    };
    build(spec, positions, path)
}

/// One JSONL line as a sample: the map applied (or `question`/`answer` read as
/// `input`/`target`), each known field read on its own so an error names it, the rest kept
/// as metadata.
fn sample_from_object(
    mut object: serde_json::Map<String, serde_json::Value>,
    map: Option<&FieldMap>,
) -> Result<SampleSpec, (String, String)> {
    match map {
        Some(FieldMap(pairs)) => {
            for (ours, theirs) in pairs {
                if let Some(v) = object.remove(theirs) {
                    object.insert(ours.clone(), v);
                }
            }
        }
        None => {
            for (ours, theirs) in [("input", "question"), ("target", "answer")] {
                if !object.contains_key(ours)
                    && let Some(v) = object.remove(theirs)
                {
                    object.insert(ours.into(), v);
                }
            }
        }
    }
    fn take<T: serde::de::DeserializeOwned>(
        object: &mut serde_json::Map<String, serde_json::Value>,
        field: &str,
    ) -> Result<Option<T>, (String, String)> {
        match object.remove(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| (field.to_string(), e.to_string())),
        }
    }
    let id = match object.remove("id") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(Scalar::Text(s)),
        Some(serde_json::Value::Number(n)) => Some(Scalar::Text(n.to_string())),
        Some(_) => return Err(("id".into(), "an id is a string or a number".into())),
    };
    let Some(input) = take::<String>(&mut object, "input")? else {
        return Err((
            "input".into(),
            "missing; name the question field with --map input=FIELD".into(),
        ));
    };
    let target = take(&mut object, "target")?;
    let choices = take(&mut object, "choices")?;
    let files = take(&mut object, "files")?.unwrap_or_default();
    // A dataset is often downloaded: its lines offer the model no tool (they would run
    // unattended in the operator's workspace). A YAML suite, written for the purpose, may.
    if object.contains_key("tools") {
        return Err((
            "tools".into(),
            "a JSONL dataset's samples offer no tools; write a YAML suite to offer them".into(),
        ));
    }
    let tools = Vec::new();
    let scorer = take(&mut object, "scorer")?;
    let mut metadata = match object.remove("metadata") {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(m)) => m,
        Some(_) => return Err(("metadata".into(), "metadata is a JSON object".into())),
    };
    // What the format does not know stays with the sample.
    for (k, v) in object {
        metadata.entry(k).or_insert(v);
    }
    Ok(SampleSpec {
        id,
        input,
        target,
        choices,
        files,
        tools,
        metadata: (!metadata.is_empty()).then_some(serde_json::Value::Object(metadata)),
        scorer,
    })
}

/// Checks `spec` whole and compiles its scorers; `positions[i]` says where sample `i` is in
/// the file (`sample 3`, `line 7`).
fn build(spec: SuiteSpec, positions: Vec<String>, path: &Path) -> Result<Suite, VeyraError> {
    let shown = path.display().to_string();
    if spec.name.trim().is_empty() {
        return Err(usage(&shown, "field `name`: empty; give the suite a name"));
    }
    if spec.samples.is_empty() {
        return Err(usage(
            &shown,
            "the suite has no samples; add at least one (each with `input` and `target`)",
        ));
    }
    if spec.samples.len() > MAX_SAMPLES {
        return Err(usage(
            &shown,
            &format!("more than {MAX_SAMPLES} samples; split the suite"),
        ));
    }
    // Each distinct pattern or schema compiles once; samples naming it share it.
    let mut compiled: BTreeMap<String, Arc<Scorer>> = BTreeMap::new();
    let mut compile = |spec: &ScorerSpec| -> Result<Arc<Scorer>, String> {
        let key = serde_json::to_string(spec).map_err(|e| e.to_string())?;
        if let Some(s) = compiled.get(&key) {
            return Ok(Arc::clone(s));
        }
        let heavy = matches!(
            spec,
            ScorerSpec::Regex { .. } | ScorerSpec::JsonSchema { .. }
        );
        let heavy_count = compiled
            .values()
            .filter(|s| matches!(s.as_ref(), Scorer::Regex { .. } | Scorer::JsonSchema { .. }))
            .count();
        if heavy && heavy_count >= MAX_COMPILED {
            return Err(format!(
                "more than {MAX_COMPILED} distinct regex patterns and JSON schemas; give the \
                 suite one scorer and the samples fewer of their own"
            ));
        }
        let scorer = Arc::new(Scorer::compile(spec)?);
        compiled.insert(key, Arc::clone(&scorer));
        Ok(scorer)
    };
    let suite_scorer = match &spec.scorer {
        Some(s) => {
            Some(compile(s).map_err(|why| usage(&shown, &format!("field `scorer`: {why}")))?)
        }
        None => None,
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut samples = Vec::with_capacity(spec.samples.len());
    for (i, (sample, at)) in spec.samples.into_iter().zip(positions).enumerate() {
        let id = sample
            .id
            .as_ref()
            .map_or_else(|| (i + 1).to_string(), Scalar::text);
        let place = match &sample.id {
            Some(_) => format!("{at} (id '{}')", crate::sanitize::quote(&id)),
            None => at,
        };
        let bad =
            |field: &str, why: &str| usage(&shown, &format!("{place}: field `{field}`: {why}"));
        if id.trim().is_empty() {
            return Err(bad("id", "empty; give the sample an id, or leave it out"));
        }
        if !seen.insert(id.clone()) {
            return Err(bad(
                "id",
                "the same id as an earlier sample; ids must be unique",
            ));
        }
        if sample.input.trim().is_empty() {
            return Err(bad("input", "empty; a sample needs a question"));
        }
        let metadata = match sample.metadata {
            None => serde_json::Map::new(),
            Some(serde_json::Value::Object(m)) => m,
            Some(_) => return Err(bad("metadata", "not a JSON object")),
        };
        let choices = sample.choices.unwrap_or_default();
        let targets = sample
            .target
            .as_ref()
            .map(TargetSpec::texts)
            .unwrap_or_default();
        let scorer = match (&sample.scorer, &suite_scorer) {
            (Some(own), _) => compile(own).map_err(|why| bad("scorer", &why))?,
            (None, Some(s)) => Arc::clone(s),
            (None, None) if !choices.is_empty() => {
                compile(&ScorerSpec::Choice).map_err(|why| bad("scorer", &why))?
            }
            (None, None) => compile(&ScorerSpec::Exact).map_err(|why| bad("scorer", &why))?,
        };
        scorer
            .check(&targets, &choices)
            .map_err(|(field, why)| bad(field, &why))?;
        if let Some(t) = sample.tools.iter().find(|t| t.trim().is_empty()) {
            return Err(bad("tools", &format!("a tool name is empty ('{t}')")));
        }
        let prompt = format!(
            "{}\n\n{}",
            sample.input.trim_end(),
            scorer.instruction(&choices)
        );
        samples.push(Sample {
            id,
            input: sample.input,
            prompt,
            targets,
            choices,
            files: sample.files,
            tools: sample.tools,
            metadata,
            scorer,
        });
    }
    Ok(Suite {
        name: spec.name,
        version: spec.version.text(),
        source: path.to_path_buf(),
        digest: String::new(),
        system: spec.system,
        samples,
    })
}

/// The JSON Schema of a YAML suite ([`SuiteSpec`]).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(SuiteSpec)).unwrap_or_default()
}
