//! Policy figures (#4): one Cedar decision against 100 policies, the request crossing three
//! jurisdictions (an operator in Mars-Habitat-1, inside Mars, running on an Earth backend).
//! Also `veyra policy replay` over 100,000 recorded decisions under the same set.
//! Run: `cargo bench --bench policy`.

use divan::Bencher;
use veyra::config::LatencyPreset;
use veyra::governance::PolicyEngine;
use veyra::governance::policy::{
    CedarEngine, ContextValue, PolicyRequest, PolicySources, Resource, SourceText,
};

fn main() {
    divan::main();
}

const JURISDICTIONS: [&str; 5] = ["Earth", "Moon", "Mars", "Mars-Habitat-1", "Deep-Space"];
const PRIORITIES: [&str; 5] = ["critical", "high", "normal", "low", "background"];

/// 100 policies of the shapes real rule sets have: permits scoped by actor and action,
/// forbids scoped by jurisdiction with conditions on the context.
fn hundred_policies() -> String {
    let mut text = String::new();
    for i in 0..100 {
        let j = JURISDICTIONS[i % JURISDICTIONS.len()];
        let p = PRIORITIES[i % PRIORITIES.len()];
        let policy = match i % 4 {
            0 => format!(
                "@id(\"p{i}\") @jurisdiction(\"{j}\") @reason(\"permit {i}\")\n\
                 permit (principal in Veyra::Jurisdiction::\"{j}\", action == Veyra::Action::\"execute\", resource)\n\
                 when {{ context.prompt_chars < {} }};\n",
                1000 + i
            ),
            1 => format!(
                "@id(\"p{i}\") @jurisdiction(\"{j}\") @reason(\"forbid {i}\")\n\
                 forbid (principal, action == Veyra::Action::\"execute\", resource in Veyra::Jurisdiction::\"{j}\")\n\
                 when {{ context.priority == \"{p}\" && context.model == \"model-{i}\" }}\n\
                 unless {{ principal in Veyra::Jurisdiction::\"{j}\" }};\n"
            ),
            2 => format!(
                "@id(\"p{i}\") @jurisdiction(\"{j}\") @reason(\"forbid {i}\")\n\
                 forbid (principal in Veyra::Jurisdiction::\"{j}\", action, resource)\n\
                 when {{ context.destination in Veyra::Jurisdiction::\"Deep-Space\" && context.preset == \"p{i}\" }};\n"
            ),
            _ => format!(
                "@id(\"p{i}\") @jurisdiction(\"{j}\") @reason(\"permit {i}\")\n\
                 permit (principal == Veyra::Actor::\"actor-{i}\", action in [Veyra::Action::\"execute\", Veyra::Action::\"switch_backend\"], resource);\n"
            ),
        };
        text.push_str(&policy);
    }
    text
}

fn engine() -> CedarEngine {
    let mut sources = PolicySources::builtin();
    sources.policies = vec![SourceText {
        name: "hundred.cedar".into(),
        text: hundred_policies(),
    }];
    sources.entities = SourceText {
        name: "entities.json".into(),
        text: std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/configs/policies/multi-jurisdiction/entities.json"
        ))
        .expect("the shipped example entities"),
    };
    let engine = CedarEngine::load(&sources).expect("the generated policies validate");
    assert_eq!(engine.policies().len(), 100);
    engine
}

fn request() -> PolicyRequest {
    PolicyRequest::new(
        "operator",
        "execute",
        Resource::backend("mock"),
        LatencyPreset::Mars,
    )
    .with("priority", ContextValue::Str("normal".into()))
    .with("model", ContextValue::Str("veyra-mock-1".into()))
    .with("prompt_chars", ContextValue::Long(120))
}

#[divan::bench]
fn decide_100_policies(bencher: Bencher) {
    let engine = engine();
    let request = request();
    let decision = engine.decide(&request).expect("a decision");
    assert!(decision.allowed, "{}", decision.rule());
    bencher.bench_local(|| engine.decide(divan::black_box(&request)));
}

#[divan::bench]
fn decide_default_policy(bencher: Bencher) {
    let engine = CedarEngine::builtin().expect("the built-in policy");
    let request = request();
    bencher.bench_local(|| engine.decide(divan::black_box(&request)));
}

/// Recorded decisions `policy_replay_100k` decides again.
const RECORDED: usize = 100_000;

/// A trail holding [`RECORDED`] `POLICY_CHECK` entries of the mix a busy runtime writes: every
/// priority, several models and prompt lengths, two backends, three presets.
fn recorded_trail() -> &'static veyra::governance::AuditTrail {
    static TRAIL: std::sync::OnceLock<veyra::governance::AuditTrail> = std::sync::OnceLock::new();
    TRAIL.get_or_init(|| {
        use veyra::governance::{AuditEventType, AuditRecord};
        let trail = veyra::governance::AuditTrail::in_memory();
        let presets = [
            LatencyPreset::Earth,
            LatencyPreset::Mars,
            LatencyPreset::Lunar,
        ];
        for i in 0..RECORDED {
            let request = PolicyRequest::new(
                if i % 7 == 0 { "benchmark" } else { "operator" },
                "execute",
                Resource::backend(if i % 3 == 0 { "openai" } else { "mock" }),
                presets[i % presets.len()],
            )
            .with("priority", ContextValue::Str(PRIORITIES[i % 5].into()))
            .with("model", ContextValue::Str(format!("model-{}", i % 11)))
            .with("prompt_chars", ContextValue::Long((i % 2000) as i64));
            let context: serde_json::Map<String, serde_json::Value> = request
                .context
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).expect("plain values")))
                .collect();
            trail
                .record_blocking(AuditRecord {
                    event_type: AuditEventType::PolicyCheck,
                    actor: request.principal.clone(),
                    action: request.action.clone(),
                    resource: request.resource.to_string(),
                    outcome: if i % 4 == 0 { "deny" } else { "allow" }.into(),
                    input_summary: String::new(),
                    metadata: serde_json::json!({ "context": context }),
                })
                .expect("an in-memory append");
        }
        trail
    })
}

/// `veyra policy replay`'s work over 100,000 recorded decisions under the 100-policy set: the
/// log verified, every entry's question rebuilt and decided again. Decisions per second are
/// 100,000 ÷ the time (divan prints it as items/s).
#[divan::bench(sample_count = 5, sample_size = 1)]
fn policy_replay_100k(bencher: Bencher) {
    let engine = engine();
    let trail = recorded_trail();
    bencher
        .counter(divan::counter::ItemsCount::new(RECORDED))
        .bench_local(|| {
            let report = veyra::governance::replay::replay(
                trail,
                &engine,
                &veyra::governance::replay::ReplayWindow::default(),
            )
            .expect("the trail verifies");
            assert_eq!(report.decided, RECORDED as u64);
            report
        });
}
