//! Embedding Veyra with parts of your own: a backend, a tool, a benchmark. Every call passes
//! the same gate as the built-in parts — the Cedar policy decides it, the safety boundary
//! checks it, the audit trail records it — and the run ends by verifying that trail.
//!
//! Run: `cargo run --example embed`. No network, no keys: the backend is this file's.

use std::sync::Arc;

use futures_util::stream;
use veyra::VeyraCore;
use veyra::config::{AuditStoreKind, ModelConfig, VeyraConfig};
use veyra::core::ExecutionRequest;
use veyra::events::{FinishReason, TokenUsage};
use veyra::models::{ChunkStream, Message, ModelBackend, ModelError, ModelRequest, StreamChunk};
use veyra::tools::{Capability, Tool, ToolCategory, ToolError, ToolOutput};

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
            name: "oxygen_reserve",
            description: "Hours of oxygen left in the habitat for a crew of the given size.",
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

    // A benchmark of our own: samples, each run through the core and scored by the answer the
    // task asked for (the last `ANSWER:` line), as `veyra bench --suite` scores a suite file.
    let samples = [(3, 4), (120, 7), (999, 1)];
    let mut score = 0.0;
    for (a, b) in samples {
        let reply = core
            .execute_async(ExecutionRequest::new(format!("What is {a} plus {b}?")))
            .await?;
        let answer = veyra::benchmarks::answer::extract_fields(&reply.text, 1)
            .ok()
            .and_then(|f| {
                f.first()
                    .and_then(|f| veyra::benchmarks::answer::number(f).ok())
            });
        if answer == Some((a + b) as f64) {
            score += 1.0;
        }
    }
    println!("own benchmark: {score} of {}", samples.len());

    // Everything above is on one audit trail, which verifies.
    let trail = core.audit().ok_or_else(|| {
        veyra::VeyraError::Runtime("audit is on in the default configuration".into())
    })?;
    let report = trail.verify_integrity()?;
    println!("audit trail: {} entries, verified", report.entries);
    core.shutdown(std::time::Duration::from_secs(1)).await;
    Ok(())
}
