use std::path::Path;
use std::str::FromStr;

use cedar_policy::{Decision, EntityId, EntityTypeName, EntityUid, Request};

use super::error::line_col;
use super::*;
use crate::config::{GovernanceConfig, LatencyPreset};

fn text(name: &str, text: &str) -> SourceText {
    SourceText {
        name: name.into(),
        text: text.into(),
    }
}

/// The built-in schema and entities with these policy files.
fn engine_with(policies: &[(&str, &str)]) -> Result<CedarEngine, PolicyError> {
    let mut sources = PolicySources::builtin();
    sources.policies = policies.iter().map(|(n, t)| text(n, t)).collect();
    CedarEngine::load(&sources)
}

fn problems(result: Result<CedarEngine, PolicyError>) -> Vec<Problem> {
    match result {
        Err(PolicyError::Invalid(p)) => p,
        Err(other) => panic!("expected located problems, got {other}"),
        Ok(_) => panic!("expected the policies to be refused"),
    }
}

fn execute(actor: &str, backend: &str, preset: LatencyPreset, priority: &str) -> PolicyRequest {
    PolicyRequest::new(actor, "execute", Resource::backend(backend), preset)
        .with("priority", ContextValue::Str(priority.into()))
        .with("model", ContextValue::Str("veyra-mock-1".into()))
        .with("prompt_chars", ContextValue::Long(12))
}

fn multi_jurisdiction() -> CedarEngine {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/policies/multi-jurisdiction");
    let g = GovernanceConfig {
        policy_file: Some(dir.clone()),
        policy_entities: Some(dir.join("entities.json")),
        ..GovernanceConfig::default()
    };
    match CedarEngine::from_config(&g) {
        Ok(e) => e,
        Err(e) => panic!("the shipped multi-jurisdiction example must load: {e}"),
    }
}

fn decide(engine: &CedarEngine, request: &PolicyRequest) -> PolicyDecision {
    match engine.decide(request) {
        Ok(d) => d,
        Err(e) => panic!("{}: {e}", request.describe()),
    }
}

#[test]
fn default_policy_lets_the_operator_work_and_names_the_permit() {
    let engine = CedarEngine::builtin().expect("the built-in policy loads");
    let d = decide(
        &engine,
        &execute("operator", "mock", LatencyPreset::Earth, "normal"),
    );
    assert!(d.allowed);
    assert_eq!(d.rule(), "operator-operates");
    assert_eq!(d.policies[0].effect, PolicyEffect::Permit);
    assert_eq!(
        d.policies[0].annotations.get("reason").map(String::as_str),
        Some("operators run prompts and steer the console")
    );
    assert_eq!(d.jurisdictions(), vec!["Sol".to_string()]);
    assert!(
        !d.policies[0].annotations.contains_key("id"),
        "@id is the id, not an annotation to repeat"
    );

    let d = decide(
        &engine,
        &PolicyRequest::new(
            "operator",
            "switch_preset",
            Resource::link(LatencyPreset::Mars),
            LatencyPreset::Mars,
        ),
    );
    assert!(d.allowed);
    let d = decide(
        &engine,
        &execute("benchmark", "mock", LatencyPreset::Mars, "low"),
    );
    assert!(d.allowed, "{}", d.rule());
}

#[test]
fn anything_not_permitted_is_denied_by_default() {
    let engine = CedarEngine::builtin().expect("the built-in policy loads");
    let request = execute("agent", "mock", LatencyPreset::Earth, "normal");
    let d = decide(&engine, &request);
    assert!(!d.allowed);
    assert!(d.policies.is_empty());
    assert_eq!(d.rule(), "default-deny");
    assert!(
        d.reason(&request)
            .contains("no policy permits agent → execute → backend:mock"),
        "{}",
        d.reason(&request)
    );
    // An actor the entities never mention is just as unknown to the policy.
    let d = decide(
        &engine,
        &execute("stranger", "mock", LatencyPreset::Earth, "normal"),
    );
    assert!(!d.allowed);
    // A model may write files only where the undo journal can put them back; the operator
    // may write any.
    let write = |who: &str, reversible: bool| {
        PolicyRequest::new(
            who,
            "write_file",
            Resource::from_str("file:/tmp/notes.txt").expect("valid resource"),
            LatencyPreset::Earth,
        )
        .with("reversible", ContextValue::Bool(reversible))
    };
    assert!(!decide(&engine, &write("agent", false)).allowed);
    assert!(decide(&engine, &write("agent", true)).allowed);
    assert!(decide(&engine, &write("operator", false)).allowed);
}

#[test]
fn jurisdictions_each_keep_their_veto() {
    let engine = multi_jurisdiction();
    // The Sol baseline permits; Earth's rule for its own backends forbids off-world
    // background work, and forbid wins.
    let request = execute("operator", "mock", LatencyPreset::Mars, "background");
    let d = decide(&engine, &request);
    assert!(!d.allowed);
    assert_eq!(d.rule(), "earth-no-offworld-background");
    assert_eq!(d.policies[0].effect, PolicyEffect::Forbid);
    assert_eq!(d.jurisdictions(), vec!["Earth".to_string()]);
    assert_eq!(
        d.reason(&request),
        "Earth compute is reserved for critical, high and normal work from off-world \
         (Earth, policy earth-no-offworld-background)"
    );
    // The same work from Earth itself, or at normal priority, passes.
    assert!(
        decide(
            &engine,
            &execute("benchmark", "mock", LatencyPreset::Mars, "background")
        )
        .allowed
    );
    assert!(
        decide(
            &engine,
            &execute("operator", "mock", LatencyPreset::Mars, "normal")
        )
        .allowed
    );
    // The habitat's backend is not Earth's business.
    assert!(
        decide(
            &engine,
            &execute("operator", "ollama", LatencyPreset::Mars, "background")
        )
        .allowed
    );

    // The habitat charter (Mars-Habitat-1, inside Mars) forbids deep-space relays.
    let d = decide(
        &engine,
        &execute("operator", "ollama", LatencyPreset::DeepSpace, "normal"),
    );
    assert!(!d.allowed);
    assert_eq!(d.rule(), "habitat-no-deep-space-relay");

    // Two jurisdictions at once: background work to deep space on an Earth backend.
    let d = decide(
        &engine,
        &execute("operator", "mock", LatencyPreset::DeepSpace, "background"),
    );
    assert!(!d.allowed);
    assert_eq!(
        d.rule(),
        "earth-no-offworld-background, habitat-no-deep-space-relay"
    );
    assert_eq!(
        d.jurisdictions(),
        vec!["Earth".to_string(), "Mars-Habitat-1".to_string()]
    );

    // Mars rules reach the habitat's agent through the hierarchy.
    let tool = |reversible: bool| {
        PolicyRequest::new(
            "agent",
            "invoke_tool",
            Resource::from_str("tool:shell").expect("valid resource"),
            LatencyPreset::Mars,
        )
        .with("reversible", ContextValue::Bool(reversible))
    };
    assert!(decide(&engine, &tool(true)).allowed);
    let d = decide(&engine, &tool(false));
    assert!(!d.allowed);
    assert_eq!(d.jurisdictions(), vec!["Mars".to_string()]);

    // Only the habitat crew switches the link; the benchmark runner sits on Earth.
    let switch = |who: &str| {
        PolicyRequest::new(
            who,
            "switch_preset",
            Resource::link(LatencyPreset::Earth),
            LatencyPreset::Earth,
        )
    };
    assert!(decide(&engine, &switch("operator")).allowed);
    assert!(!decide(&engine, &switch("benchmark")).allowed);
}

#[test]
fn every_shipped_policy_has_an_id_reason_and_jurisdiction() {
    for engine in [
        CedarEngine::builtin().expect("built-in loads"),
        multi_jurisdiction(),
    ] {
        let policies = engine.policies();
        assert!(!policies.is_empty());
        for p in policies {
            assert!(!p.id.contains('#'), "{} has no @id", p.id);
            assert!(
                p.annotations.contains_key("reason"),
                "{} has no @reason",
                p.id
            );
            assert!(
                p.annotations.contains_key("jurisdiction"),
                "{} has no @jurisdiction",
                p.id
            );
        }
    }
}

#[test]
fn every_destination_is_a_declared_jurisdiction() {
    let v: serde_json::Value = serde_json::from_str(DEFAULT_ENTITIES).expect("valid JSON");
    let declared: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["uid"]["type"].as_str() == Some("Veyra::Jurisdiction"))
        .filter_map(|e| e["uid"]["id"].as_str())
        .collect();
    for preset in [
        LatencyPreset::Earth,
        LatencyPreset::Lunar,
        LatencyPreset::Mars,
        LatencyPreset::DeepSpace,
        LatencyPreset::Custom,
    ] {
        assert!(
            declared.contains(&destination_of(preset)),
            "{preset} leads to an undeclared jurisdiction"
        );
    }
}

#[test]
fn a_parse_error_names_file_line_and_column() {
    let src = "// header\n@id(\"ok\")\npermit (principal, action, resource)\n  when { context.priority == };\n";
    let p = problems(engine_with(&[("bad.cedar", src)]));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "bad.cedar");
    assert_eq!(p[0].line, 4, "{}", p[0]);
    assert!(p[0].to_string().starts_with("bad.cedar:4:"), "{}", p[0]);
}

#[test]
fn a_validation_error_names_the_line_and_cedars_message() {
    let src = "@id(\"a\")\npermit (principal, action, resource);\n\n@id(\"b\")\npermit (principal == Veyra::Actr::\"x\", action, resource);\n";
    let p = problems(engine_with(&[("typo.cedar", src)]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].line, 5, "{}", p[0]);
    assert!(p[0].message.contains("Veyra::Actr"), "{}", p[0]);
    assert!(
        p[0].message.contains("Veyra::Actor"),
        "suggests the right type: {}",
        p[0]
    );

    let src = "@id(\"c\")\npermit (principal, action == Veyra::Action::\"execute\", resource)\nwhen { context.prioirty == \"high\" };\n";
    let p = problems(engine_with(&[("attr.cedar", src)]));
    assert_eq!(p[0].line, 3, "{}", p[0]);
    assert!(p[0].message.contains("prioirty"), "{}", p[0]);

    // Every problem in every file is reported, not just the first.
    let p = problems(engine_with(&[
        (
            "one.cedar",
            "permit (principal == Veyra::Nope::\"x\", action, resource);",
        ),
        (
            "two.cedar",
            "permit (principal, action, resource) when { 1 + };",
        ),
    ]));
    assert_eq!(
        p.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(),
        ["one.cedar", "two.cedar"]
    );
}

#[test]
fn policies_without_an_id_are_named_by_file_and_position() {
    let engine = engine_with(&[(
        "/etc/veyra/rules.cedar",
        "permit (principal, action == Veyra::Action::\"execute\", resource);\n\
         forbid (principal == Veyra::Actor::\"agent\", action, resource);",
    )])
    .expect("valid policies");
    let ids: Vec<String> = engine.policies().into_iter().map(|p| p.id).collect();
    assert_eq!(ids, ["rules.cedar#1", "rules.cedar#2"]);
    let d = decide(
        &engine,
        &execute("agent", "mock", LatencyPreset::Earth, "high"),
    );
    assert_eq!(d.rule(), "rules.cedar#2");
    assert_eq!(
        d.reason(&execute("agent", "mock", LatencyPreset::Earth, "high")),
        "policy rules.cedar#2"
    );
}

#[test]
fn duplicate_ids_and_templates_are_refused() {
    let p = problems(engine_with(&[
        (
            "a.cedar",
            "@id(\"same\") permit (principal, action, resource);",
        ),
        (
            "b.cedar",
            "@id(\"same\") forbid (principal, action, resource);",
        ),
    ]));
    assert!(
        p[0].message.contains("two policies are named 'same'"),
        "{}",
        p[0]
    );
    assert_eq!(p[0].path, "b.cedar");

    let p = problems(engine_with(&[(
        "t.cedar",
        "permit (principal == ?principal, action, resource);",
    )]));
    assert!(p[0].message.contains("templates"), "{}", p[0]);
}

#[test]
fn bad_schema_and_entities_are_located() {
    let mut sources = PolicySources::builtin();
    sources.schema = text(
        "s.cedarschema",
        "namespace Veyra {\n  entity Actor in [\n}\n",
    );
    let p = problems(CedarEngine::load(&sources));
    assert_eq!(p[0].path, "s.cedarschema");
    assert!(p[0].line >= 2, "{}", p[0]);

    let mut sources = PolicySources::builtin();
    sources.entities = text(
        "e.json",
        "[\n  { \"uid\": { \"type\": \"Veyra::Actor\", \"id\": \"x\" },\n}\n]",
    );
    let p = problems(CedarEngine::load(&sources));
    assert_eq!((p[0].path.as_str(), p[0].line), ("e.json", 3), "{}", p[0]);

    let mut sources = PolicySources::builtin();
    sources.entities = text(
        "e.json",
        r#"[{ "uid": { "type": "Veyra::Planet", "id": "Mars" }, "attrs": {}, "parents": [] }]"#,
    );
    let p = problems(CedarEngine::load(&sources));
    assert!(p[0].message.contains("Veyra::Planet"), "{}", p[0]);
}

#[test]
fn malformed_requests_are_errors_not_decisions() {
    let engine = CedarEngine::builtin().expect("built-in loads");
    let err = engine
        .decide(&PolicyRequest::new(
            "operator",
            "exectue",
            Resource::backend("mock"),
            LatencyPreset::Earth,
        ))
        .expect_err("unknown action");
    assert!(err.to_string().contains("did you mean 'execute'"), "{err}");

    // Context of the wrong type, and a missing attribute.
    let request = execute("operator", "mock", LatencyPreset::Earth, "normal")
        .with("prompt_chars", ContextValue::Str("many".into()));
    let err = engine.decide(&request).expect_err("wrong type");
    assert!(err.to_string().contains("prompt_chars"), "{err}");
    let request = PolicyRequest::new(
        "operator",
        "execute",
        Resource::backend("mock"),
        LatencyPreset::Earth,
    );
    assert!(engine.decide(&request).is_err());

    // A resource of a kind the action does not apply to.
    let request = PolicyRequest::new(
        "operator",
        "switch_preset",
        Resource::backend("mock"),
        LatencyPreset::Earth,
    );
    assert!(engine.decide(&request).is_err());
}

#[test]
fn resources_parse_from_kind_and_name() {
    assert_eq!(
        Resource::from_str("backend:mock").expect("valid"),
        Resource::backend("mock")
    );
    assert_eq!(
        Resource::from_str("file:/tmp/a:b").expect("valid").id,
        "/tmp/a:b"
    );
    let err = Resource::from_str("bakend:mock").expect_err("typo");
    assert!(err.to_string().contains("did you mean 'backend'"), "{err}");
    assert!(Resource::from_str("mock").is_err());
    assert!(Resource::from_str("tool:").is_err());
    assert_eq!(
        Resource::link(LatencyPreset::DeepSpace).to_string(),
        "link:deep-space"
    );
}

#[test]
fn a_policy_directory_loads_every_cedar_file_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("b.cedar"),
        "@id(\"b\") permit (principal, action, resource);",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("a.cedar"),
        "@id(\"a\") forbid (principal, action, resource);",
    )
    .expect("write");
    std::fs::write(dir.path().join("notes.txt"), "not a policy").expect("write");
    let g = GovernanceConfig {
        policy_file: Some(dir.path().to_path_buf()),
        ..GovernanceConfig::default()
    };
    let engine = CedarEngine::from_config(&g).expect("loads");
    let sources = engine.sources();
    assert_eq!(sources.len(), 2);
    assert!(sources[0].ends_with("a.cedar") && sources[1].ends_with("b.cedar"));

    let empty = tempfile::tempdir().expect("temp dir");
    let g = GovernanceConfig {
        policy_file: Some(empty.path().to_path_buf()),
        ..GovernanceConfig::default()
    };
    let err = CedarEngine::from_config(&g).expect_err("no policies");
    assert!(err.to_string().contains("no *.cedar file"), "{err}");

    let g = GovernanceConfig {
        policy_file: Some(dir.path().join("missing.cedar")),
        ..GovernanceConfig::default()
    };
    let err = CedarEngine::from_config(&g).expect_err("missing file");
    assert!(
        err.to_string()
            .contains("missing.cedar: cannot read the policy file"),
        "{err}"
    );
}

#[test]
fn policy_entities_and_schema_files_are_bounded_regular_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("entities.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let zero = dir.path().join("zero.cedar");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
    let huge = dir.path().join("huge.cedarschema");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(MAX_SOURCE_BYTES + 1))
        .expect("a sparse file");
    let cases = [
        (
            GovernanceConfig {
                policy_entities: Some(fifo),
                ..GovernanceConfig::default()
            },
            "FIFO",
        ),
        (
            GovernanceConfig {
                policy_file: Some(zero),
                ..GovernanceConfig::default()
            },
            "character device",
        ),
        (
            GovernanceConfig {
                policy_schema: Some(huge),
                ..GovernanceConfig::default()
            },
            "8 MiB",
        ),
    ];
    for (g, needle) in cases {
        // Off the test's thread: a FIFO that blocked the open would hang it for ever.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(CedarEngine::from_config(&g).map(|_| ()));
        });
        let err = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("loading the policies hung")
            .expect_err("refused");
        assert!(matches!(err, PolicyError::Unreadable { .. }), "{err:?}");
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[test]
fn line_col_counts_characters() {
    assert_eq!(line_col("ab\ncd", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
    assert_eq!(line_col("é\nx", 3), (2, 1));
    assert_eq!(line_col("abc", 99), (1, 4));
}

/// The decision Cedar gives with every policy and a schema-validated request: what
/// [`CedarEngine::decide`] must give with its memos.
fn reference(engine: &CedarEngine, request: &PolicyRequest) -> Option<(bool, Vec<String>, usize)> {
    let uid = |t: &EntityTypeName, id: &str| {
        EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
    };
    let cedar = Request::new(
        uid(&engine.actor, &request.principal),
        uid(&engine.action, &request.action),
        uid(
            engine.resource_type(request.resource.kind),
            &request.resource.id,
        ),
        engine.context(request).ok()?,
        Some(&engine.schema),
    )
    .ok()?;
    let response = engine
        .authorizer
        .is_authorized(&cedar, &engine.policies, &engine.entities);
    let mut ids: Vec<String> = response
        .diagnostics()
        .reason()
        .map(ToString::to_string)
        .collect();
    ids.sort();
    Some((
        response.decision() == Decision::Allow,
        ids,
        response.diagnostics().errors().count(),
    ))
}

mod memo_equivalence {
    use proptest::prelude::*;

    use super::*;

    const ACTORS: [&str; 5] = ["operator", "agent", "benchmark", "stranger", "actor-3"];
    const ACTIONS: [&str; 4] = ["execute", "switch_preset", "invoke_tool", "write_file"];
    const PRESETS: [LatencyPreset; 4] = [
        LatencyPreset::Earth,
        LatencyPreset::Lunar,
        LatencyPreset::Mars,
        LatencyPreset::DeepSpace,
    ];
    const PRIORITIES: [&str; 5] = ["critical", "high", "normal", "low", "background"];

    /// The shipped multi-jurisdiction rules plus policies of every scope shape, one of which
    /// errors at evaluation (an overflow) so skipped policies are compared too.
    fn engine() -> CedarEngine {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/policies/multi-jurisdiction");
        let mut sources = PolicySources::builtin();
        sources.entities = SourceText::read(&dir.join("entities.json"), "entities").unwrap();
        sources.policies = ["sol.cedar", "earth.cedar", "mars.cedar", "habitat.cedar"]
            .iter()
            .map(|f| SourceText::read(&dir.join(f), "policy").unwrap())
            .collect();
        sources.policies.push(text(
            "shapes.cedar",
            r#"
            @id("is") permit (principal is Veyra::Actor, action == Veyra::Action::"write_file", resource is Veyra::File in Veyra::Jurisdiction::"Earth");
            @id("is-in") forbid (principal is Veyra::Actor in Veyra::Jurisdiction::"Mars", action in [Veyra::Action::"write_file", Veyra::Action::"invoke_tool"], resource);
            @id("eq-resource") forbid (principal, action, resource == Veyra::Link::"deep-space");
            @id("in-resource") permit (principal == Veyra::Actor::"actor-3", action, resource in Veyra::Jurisdiction::"Mars-Habitat-1");
            @id("overflow") forbid (principal == Veyra::Actor::"agent", action == Veyra::Action::"execute", resource) when { context.prompt_chars * 9223372036854775807 > 0 };
            "#,
        ));
        CedarEngine::load(&sources).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn memos_change_no_decision(
            actor in 0..ACTORS.len(),
            action in 0..ACTIONS.len(),
            preset in 0..PRESETS.len(),
            priority in 0..PRIORITIES.len(),
            chars in 0i64..5,
            reversible in any::<bool>(),
            backend in prop::sample::select(vec!["mock", "ollama", "openai"]),
            file in prop::sample::select(vec!["/earth/log", "/habitat/log"]),
        ) {
            let engine = engine();
            // Twice each, so the second answer comes from the memos.
            for _ in 0..2 {
                let preset = PRESETS[preset];
                let resource = match ACTIONS[action] {
                    "execute" => Resource::backend(backend),
                    "switch_preset" => Resource::link(preset),
                    "invoke_tool" => Resource::from_str("tool:shell").unwrap(),
                    _ => Resource::from_str(&format!("file:{file}")).unwrap(),
                };
                let mut request = PolicyRequest::new(ACTORS[actor], ACTIONS[action], resource, preset);
                match ACTIONS[action] {
                    "execute" => {
                        request = request
                            .with("priority", ContextValue::Str(PRIORITIES[priority].into()))
                            .with("model", ContextValue::Str("m".into()))
                            .with("prompt_chars", ContextValue::Long(chars));
                    }
                    "invoke_tool" | "write_file" => {
                        request = request.with("reversible", ContextValue::Bool(reversible));
                    }
                    _ => {}
                }
                let expected = reference(&engine, &request).expect("a valid request");
                let got = engine.decide(&request).expect("a decision");
                let ids: Vec<String> = got.policies.iter().map(|p| p.id.clone()).collect();
                prop_assert_eq!((got.allowed, ids, got.errors.len()), expected);
            }
        }
    }
}

#[test]
fn action_groups_from_the_schema_apply() {
    let mut sources = PolicySources::builtin();
    sources.schema = text(
        "grouped.cedarschema",
        &DEFAULT_SCHEMA.replace(
            "action execute appliesTo",
            "action steer;\n  action execute in [steer] appliesTo",
        ),
    );
    sources.policies = vec![text(
        "g.cedar",
        r#"@id("steerers") permit (principal == Veyra::Actor::"agent", action in Veyra::Action::"steer", resource);"#,
    )];
    let engine = CedarEngine::load(&sources).expect("valid");
    let d = decide(
        &engine,
        &execute("agent", "mock", LatencyPreset::Earth, "low"),
    );
    assert!(d.allowed, "execute is in the steer group");
    assert_eq!(d.rule(), "steerers");
}
