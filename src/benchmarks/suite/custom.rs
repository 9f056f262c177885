//! A benchmark of an embedder's own, in Rust: it generates its tasks and scores each reply
//! ([`CustomBenchmark`]), and runs as a suite does ([`Suite::from_benchmark`], then
//! [`super::run_suite`]): every task one execution through the core as actor `benchmark`,
//! unattended, through the same gate and audit trail, its score summarised with the families'
//! interval.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::format::{Sample, Suite};
use super::scorer::{CustomScore, Scorer, Verdict};
use crate::error::VeyraError;

/// One task of a [`CustomBenchmark`]: what the model is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomTask {
    /// Unique within the run.
    pub id: String,
    /// The whole prompt, saying how to answer (e.g. on an `ANSWER:` line).
    pub prompt: String,
    /// Anything the scorer wants back (the right answer, say).
    pub metadata: serde_json::Value,
}

/// A benchmark family of an embedder's own.
///
/// ```
/// use veyra::benchmarks::suite::{CustomBenchmark, CustomTask, Verdict};
///
/// /// Doubling: the answer is twice the number asked about.
/// struct Doubling;
///
/// impl CustomBenchmark for Doubling {
///     fn name(&self) -> &str {
///         "doubling"
///     }
///     fn generate_tasks(&self, count: usize, seed: u64) -> Vec<CustomTask> {
///         (0..count as u64)
///             .map(|i| CustomTask {
///                 id: format!("d{i}"),
///                 prompt: format!("What is twice {}? End with: ANSWER: <number>", seed + i),
///                 metadata: serde_json::json!({ "want": 2 * (seed + i) }),
///             })
///             .collect()
///     }
///     fn score_result(&self, task: &CustomTask, reply: &str) -> Verdict {
///         // The families' parsing: the last ANSWER line, one plain number.
///         let got = veyra::benchmarks::answer::extract_fields(reply, 1)
///             .ok()
///             .and_then(|f| veyra::benchmarks::answer::number(&f[0]).ok());
///         match got {
///             Some(n) if Some(n) == task.metadata["want"].as_f64() => {
///                 Verdict::right(n.to_string(), "twice the number")
///             }
///             _ => Verdict::wrong(None, "not twice the number"),
///         }
///     }
/// }
///
/// let suite = veyra::benchmarks::suite::Suite::from_benchmark(std::sync::Arc::new(Doubling), 3, 10)?;
/// assert_eq!(suite.samples.len(), 3);
/// let task = CustomTask { id: "x".into(), prompt: String::new(), metadata: serde_json::json!({"want": 20}) };
/// assert_eq!(Doubling.score_result(&task, "ANSWER: 20").score, 1.0);
/// assert_eq!(Doubling.score_result(&task, "What is twice 10?").score, 0.0);
/// # Ok::<(), veyra::VeyraError>(())
/// ```
pub trait CustomBenchmark: Send + Sync + 'static {
    /// Its name, as the run's audit entry and report name it.
    fn name(&self) -> &str;

    /// Its version.
    fn version(&self) -> &str {
        "1"
    }

    /// The system prompt of every task, if any.
    fn system(&self) -> Option<String> {
        None
    }

    /// `count` tasks, the same for the same `seed`.
    fn generate_tasks(&self, count: usize, seed: u64) -> Vec<CustomTask>;

    /// How `reply` answers `task`: 1 for the answer the task asked for, 0 otherwise (an echo,
    /// a hedge or a constant must earn nothing).
    fn score_result(&self, task: &CustomTask, reply: &str) -> Verdict;
}

impl Suite {
    /// `benchmark`'s `count` tasks for `seed`, as a suite [`super::run_suite`] runs. Duplicate
    /// ids and empty prompts are refused.
    pub fn from_benchmark(
        benchmark: Arc<dyn CustomBenchmark>,
        count: usize,
        seed: u64,
    ) -> Result<Suite, VeyraError> {
        let name = benchmark.name().to_string();
        let refuse = |what: String| VeyraError::Usage(format!("benchmark {name}: {what}"));
        let mut seen = BTreeSet::new();
        let mut samples = Vec::with_capacity(count);
        for task in benchmark.generate_tasks(count, seed) {
            if !seen.insert(task.id.clone()) {
                return Err(refuse(format!("task id '{}' is generated twice", task.id)));
            }
            if task.prompt.trim().is_empty() {
                return Err(refuse(format!("task '{}' has an empty prompt", task.id)));
            }
            let task = Arc::new(task);
            let (bench, scored) = (Arc::clone(&benchmark), Arc::clone(&task));
            samples.push(Sample {
                id: task.id.clone(),
                input: task.prompt.clone(),
                prompt: task.prompt.clone(),
                targets: Vec::new(),
                choices: Vec::new(),
                files: Vec::new(),
                tools: Vec::new(),
                metadata: serde_json::Map::new(),
                scorer: Arc::new(Scorer::Custom(CustomScore(Arc::new(move |reply: &str| {
                    bench.score_result(&scored, reply)
                })))),
            });
        }
        Ok(Suite {
            version: benchmark.version().to_string(),
            source: PathBuf::from(format!("<benchmark {name}>")),
            digest: String::new(),
            system: benchmark.system(),
            name,
            samples,
        })
    }
}
