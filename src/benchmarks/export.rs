//! The JSON export of a run, format `veyra.bench.run/1`, and its JSON Schema ([`SCHEMA`],
//! printed by `veyra bench schema`).
//!
//! A document holds the run ([`RunInfo`]), its summary (recomputed from the results), and
//! every task with every finished epoch. A later format that changes the meaning of a field
//! gets a new version; readers check `format` first.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::framework::{BenchError, BenchTask};
use super::stats::{self, RunSummary};
use super::store::{BenchStore, RunInfo, TaskResult, task_scores};

/// The format tag of an export.
pub const FORMAT: &str = "veyra.bench.run/1";

/// The JSON Schema (draft 2020-12) of a `veyra.bench.run/1` document.
pub const SCHEMA: &str = include_str!("bench-run.schema.json");

/// A run as exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunExport {
    /// Always [`FORMAT`].
    pub format: String,
    /// The run.
    pub run: RunInfo,
    /// Its summary.
    pub summary: RunSummary,
    /// Every task with its finished epochs, in run order.
    pub tasks: Vec<ExportedTask>,
}

/// One task and its finished epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedTask {
    /// The task.
    #[serde(flatten)]
    pub task: BenchTask,
    /// Finished epochs, in epoch order.
    pub results: Vec<ExportedResult>,
}

/// One epoch of one task, without the task id its parent holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedResult {
    /// Epoch, from 0.
    pub epoch: u32,
    /// The answer.
    pub output: String,
    /// Score, 0 to 1.
    pub score: f64,
    /// Why.
    pub reason: String,
    /// The execution's error, if it failed.
    pub error: Option<String>,
    /// Wall time, ms.
    pub latency_ms: u64,
    /// Input tokens.
    pub tokens_in: u64,
    /// Output tokens.
    pub tokens_out: u64,
    /// When it finished (RFC 3339).
    pub finished_at: chrono::DateTime<chrono::Utc>,
}

impl From<&TaskResult> for ExportedResult {
    fn from(r: &TaskResult) -> Self {
        ExportedResult {
            epoch: r.epoch,
            output: r.output.clone(),
            score: r.score,
            reason: r.reason.clone(),
            error: r.error.clone(),
            latency_ms: r.latency_ms,
            tokens_in: r.tokens_in,
            tokens_out: r.tokens_out,
            finished_at: r.finished_at,
        }
    }
}

/// Builds the export of a run from its tasks and results.
pub fn build(info: &RunInfo, tasks: Vec<BenchTask>, results: &[TaskResult]) -> RunExport {
    let summary = stats::summarize(&task_scores(&tasks, results), &info.families, &|f| {
        info.weight(f)
    });
    // Each task's results in one pass (a run has thousands of tasks), in epoch order.
    let mut by_task: HashMap<&str, Vec<ExportedResult>> = HashMap::new();
    for r in results {
        by_task
            .entry(r.task_id.as_str())
            .or_default()
            .push(ExportedResult::from(r));
    }
    let tasks = tasks
        .into_iter()
        .map(|task| {
            let mut results = by_task.remove(task.id.as_str()).unwrap_or_default();
            results.sort_by_key(|r| r.epoch);
            ExportedTask { task, results }
        })
        .collect();
    RunExport {
        format: FORMAT.to_string(),
        run: info.clone(),
        summary,
        tasks,
    }
}

/// The export of run `info` from `store`.
pub fn from_store(store: &BenchStore, info: &RunInfo) -> Result<RunExport, BenchError> {
    let tasks = store.tasks(&info.id)?;
    let results = store.results(&info.id)?;
    Ok(build(info, tasks, &results))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_valid_json_schema() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        assert!(jsonschema::validator_for(&schema).is_ok());
        assert_eq!(schema["properties"]["format"]["const"], FORMAT);
    }

    fn sample() -> RunExport {
        use crate::benchmarks::family;
        use crate::benchmarks::framework::{Difficulty, FamilyId};
        use crate::benchmarks::store::RunStatus;
        let mut tasks = Vec::new();
        for f in FamilyId::ALL {
            tasks.extend(family(f).generate(3, Difficulty::Hard, 5).unwrap());
        }
        let results: Vec<TaskResult> = tasks
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 != 3)
            .map(|(i, t)| TaskResult {
                task_id: t.id.clone(),
                epoch: 0,
                output: format!("ANSWER: {}", t.expected),
                score: if i % 2 == 0 { 1.0 } else { 0.5 },
                reason: "ok".into(),
                error: (i == 5).then(|| "backend failed".to_string()),
                latency_ms: 3,
                tokens_in: 40,
                tokens_out: 9,
                finished_at: chrono::Utc::now(),
            })
            .collect();
        let info = RunInfo {
            id: "20310504-100000-aaaa1111".into(),
            created_at: chrono::Utc::now(),
            finished_at: Some(chrono::Utc::now()),
            status: RunStatus::Cancelled,
            families: FamilyId::ALL.to_vec(),
            count: 3,
            difficulty: Difficulty::Hard,
            seed: 5,
            epochs: 1,
            weights: FamilyId::ALL.iter().map(|f| (*f, 1.0)).collect(),
            config_hash: "0123456789abcdef".into(),
            backend: "mock".into(),
            model: "veyra-mock-1".into(),
            veyra_version: "0.1.0".into(),
        };
        build(&info, tasks, &results)
    }

    #[test]
    fn exports_validate_against_the_schema_and_read_back() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let export = sample();
        let value = serde_json::to_value(&export).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let back: RunExport = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(back, export);
        // A document that breaks the format is caught.
        let mut broken = value;
        broken["tasks"][0]["family"] = serde_json::json!("zeta");
        assert!(!validator.is_valid(&broken));
        let families = crate::benchmarks::FamilyId::ALL.len();
        assert_eq!(export.summary.families.len(), families);
        // Only multi-agent tasks carry a dialogue; the others export as before.
        for t in back.tasks.iter().map(|t| serde_json::to_value(t).unwrap()) {
            let imdp = t["family"] == "imdp";
            assert_eq!(t.get("dialogue").is_some(), imdp, "{}", t["id"]);
        }
        // Every fourth task (3 per family) has no result.
        assert_eq!(
            export.tasks.iter().filter(|t| t.results.is_empty()).count(),
            families * 3 / 4
        );
    }
}
