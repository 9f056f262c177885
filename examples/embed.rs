//! Embedding Veyra with parts of your own: a backend, a tool, a benchmark family. Every call passes
//! the same gate as the built-in parts — the Cedar policy decides it, the safety boundary
//! checks it, the audit trail records it — and the run ends by verifying that trail.
//!
//! Run: `cargo run --example embed`. No network, no keys: the backend is this file's.

use std::sync::Arc;

use futures_util::stream;
use veyra::VeyraCore;
use veyra::benchmarks::suite::{CustomBenchmark, CustomTask, Suite, Verdict};
use veyra::config::{AuditStoreKind, ModelConfig, VeyraConfig};
use veyra::core::ExecutionRequest;
use veyra::events::{FinishReason, TokenUsage};
use veyra::models::{ChunkStream, Message, ModelBackend, ModelError, ModelRequest, StreamChunk};
use veyra::tools::{Capability, Tool, ToolCategory, ToolError, ToolOutput};

/// A benchmark family: sums of two numbers, scored by the last `ANSWER:` line through the
/// families' own parsing (an echo, a hedge or a second number earn nothing).
struct Addition;

impl CustomBenchmark for Addition {
    fn name(&self) -> &str {
        "addition"
    }

    fn generate_tasks(&self, count: usize, seed: u64) -> Vec<CustomTask> {
        (0..count as u64)
            .map(|i| {
                let (a, b) = (seed * 31 + i * 17, seed + i * 5);
                CustomTask {
                    id: format!("add-{i}"),
                    prompt: format!(
                        "What is {a} plus {b}? End your reply with a line ANSWER: <number>."
                    ),
                    metadata: serde_json::json!({ "sum": a + b }),
                }
            })
            .collect()
    }

    fn score_result(&self, task: &CustomTask, reply: &str) -> Verdict {
        let want = task.metadata["sum"].as_f64();
        let field = veyra::benchmarks::answer::extract_fields(reply, 1)
            .map(|mut f| f.pop().unwrap_or_default());
        match field {
            Err(why) => Verdict::wrong(None, why),
            Ok(field) => match veyra::benchmarks::answer::number(&field) {
                Ok(n) if Some(n) == want => Verdict::right(field, "the sum"),
                Ok(_) => Verdict::wrong(Some(field), "not the sum"),
                Err(why) => Verdict::wrong(Some(field), why),
            },
        }
    }
}

/// A backend that answers arithmetic questions of the form "What is A plus B?" and says so
/// plainly otherwise: a stand-in for a model served in-house.
struct Adder;

#[async_trait::async_trait]
impl ModelBackend for Adder {
    fn name(&self) -> &str {
        "adder"
    }

    async fn stream(&self, request: &ModelRequest) -> Result<ChunkStream, ModelError> {
        let question = request
            .messages
            .iter()
            .rev()
            .find_map(|m| match m {
                Message::User(text) => Some(text.as_str()),
                _ => None,
            })
            .unwrap_or_default();
        let numbers: Vec<i64> = question
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        let answer = match numbers.as_slice() {
            [a, b, ..] => format!("{a} plus {b} is {}.\nANSWER: {}", a + b, a + b),
            _ => "I only add two numbers.".to_string(),
        };
        let words = answer.split_inclusive(' ').count() as u64;
        let chunks = vec![
            Ok(StreamChunk::Text(answer)),
            Ok(StreamChunk::Done {
                finish_reason: FinishReason::Stop,
                usage: TokenUsage {
                    input: question.split_whitespace().count() as u64,
                    output: words,
                },
            }),
        ];
        Ok(Box::pin(stream::iter(chunks)))
    }

    async fn health_check(&self) -> Result<(), ModelError> {
        Ok(())
    }
}

/// A tool: the habitat's oxygen reserve in hours for a crew size. It changes nothing, so it is
/// reversible, and it asks no one.
struct OxygenReserve;

#[async_trait::async_trait]
impl Tool for OxygenReserve {
    fn capability(&self) -> Capability {
        Capability {
            name: "oxygen_reserve".into(),
            description: "Hours of oxygen left in the habitat for a crew of the given size.".into(),
            category: ToolCategory::Computation,
            reversible: true,
            confirmation: false,
            schema: serde_json::json!({
                "type": "object",
                "properties": {"crew": {"type": "integer", "minimum": 1, "maximum": 64}},
                "required": ["crew"],
                "additionalProperties": false
            }),
        }
    }

    async fn invoke(&self, args: &serde_json::Value) -> Result<ToolOutput, ToolError> {
        let crew = args["crew"].as_u64().unwrap_or(1).max(1);
        // 2,400 kg of stored oxygen; a person breathes about 0.84 kg a day.
        let hours = 2_400.0 / (0.84 * crew as f64) * 24.0;
        Ok(ToolOutput::new(
            serde_json::json!({ "crew": crew, "hours": hours.round() }),
            format!("{crew} crew: {} hours", hours.round()),
        ))
    }
}

#[tokio::main]
async fn main() -> Result<(), veyra::VeyraError> {
    let mut config = VeyraConfig::default();
    // Kept in memory: an example leaves nothing behind.
    config.governance.store = AuditStoreKind::Memory;
    config.latency.simulate = false;
    config.model.backend = "adder".into();
    config.model.model = "adder-1".into();
    let core = VeyraCore::builder(config)
        .backend(
            "adder",
            Arc::new(|_: &ModelConfig| Ok(Arc::new(Adder) as Arc<dyn ModelBackend>)),
        )
        .tool(Arc::new(OxygenReserve))
        .build()?;

    // A prompt to the backend: decided by the policy, recorded, answered.
    let result = core
        .execute_async(ExecutionRequest::new("What is 17 plus 25?"))
        .await?;
    println!("adder answered: {}", result.text.replace('\n', " / "));

    // The tool, called as the operator: the same gate (policy, boundary, audit).
    let call = core
        .invoke_tool("oxygen_reserve", serde_json::json!({"crew": 6}), "operator")
        .await?;
    println!("oxygen_reserve: {}", call.output.summary);

    // A benchmark family of our own: it generates its tasks and scores each reply by the
    // answer the task asked for; it runs as `veyra bench --suite` runs a suite file.
    let suite = Suite::from_benchmark(Arc::new(Addition), 5, 7)?;
    let report = veyra::benchmarks::suite::run_suite(
        &core,
        &suite,
        None,
        4,
        &tokio_util::sync::CancellationToken::new(),
        &mut |_| {},
    )
    .await?;
    println!(
        "own benchmark '{}': {} of {} right, score {:.3}",
        report.suite,
        report.samples.iter().filter(|s| s.score == 1.0).count(),
        report.summary.n,
        report.summary.score.mean
    );

    // Everything above is on one audit trail, which verifies.
    let trail = core.audit().ok_or_else(|| {
        veyra::VeyraError::Runtime("audit is on in the default configuration".into())
    })?;
    let report = trail.verify_integrity()?;
    println!("audit trail: {} entries, verified", report.entries);
    core.shutdown(std::time::Duration::from_secs(1)).await;
    Ok(())
}
