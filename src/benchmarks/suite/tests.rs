//! Suites: the formats parse (YAML and JSONL, with and without a field map), bad files are
//! refused naming the sample and the field, every scorer reads only the answer line (an echo,
//! a hedge, a partial match earn nothing), the shipped example suites load and score, and the
//! summary's interval follows the families' rule.

use std::path::Path;

use super::format::{self, FieldMap, from_jsonl, from_yaml};
use super::run::{SampleResult, summarize};
use super::scorer::raw_answer;
use crate::benchmarks::FamilyId;
use crate::benchmarks::answer::extract_fields;
use crate::benchmarks::stats::{self, TaskScores};

fn yaml(text: &str) -> super::Suite {
    from_yaml(text, Path::new("t.yaml")).unwrap()
}

fn yaml_error(text: &str) -> String {
    let e = from_yaml(text, Path::new("t.yaml")).unwrap_err();
    assert_eq!(e.exit_code(), crate::error::ExitCode::Usage, "{e}");
    e.to_string()
}

/// The score of `reply` on sample `i`.
fn score(suite: &super::Suite, i: usize, reply: &str) -> f64 {
    let s = &suite.samples[i];
    s.scorer.score(reply, &s.targets, &s.choices).score
}

const MIXED: &str = r#"
name: mixed
system: Be brief.
scorer: {type: number, tolerance: 0.5, unit: km}
samples:
  - id: n1
    input: How far is it?
    target: 42
  - id: c1
    input: Which planet is red?
    choices: [Venus, Mars, Jupiter]
    target: Mars
    scorer: {type: choice}
  - id: r1
    input: Give a mission code.
    target: AB-12
    scorer: {type: regex, pattern: "[A-Z]{2}-\\d{2}"}
  - id: i1
    input: Name a gas giant.
    target: [jupiter, saturn]
    scorer: {type: includes}
  - id: e1
    input: Say hello.
    target: Hello World
    scorer: {type: exact}
  - id: j1
    input: Give the plan.
    scorer:
      type: json_schema
      schema:
        type: object
        required: [steps]
        properties: {steps: {type: array, items: {type: string}}}
    metadata: {topic: plans}
"#;

#[test]
fn a_yaml_suite_parses_with_its_defaults_and_prompts() {
    let s = yaml(MIXED);
    assert_eq!(s.name, "mixed");
    assert_eq!(s.version, "1");
    assert_eq!(s.system.as_deref(), Some("Be brief."));
    assert_eq!(s.samples.len(), 6);
    assert_eq!(s.samples[0].targets, vec!["42".to_string()]);
    assert_eq!(s.samples[0].scorer.name(), "number");
    assert!(s.samples[0].prompt.starts_with("How far is it?\n\n"));
    assert!(
        s.samples[0]
            .prompt
            .contains("ANSWER: <answer>\nwhere <answer> is a number in km.")
    );
    assert!(s.samples[1].prompt.contains("one of Venus, Mars, Jupiter"));
    assert_eq!(s.samples[5].metadata["topic"], "plans");
    // Numbers where text is meant are read as their text.
    let s = yaml("name: n\nversion: 2\nsamples:\n  - {id: 1, input: q, target: 0.375}\n");
    assert_eq!(s.version, "2");
    assert_eq!(s.samples[0].id, "1");
    assert_eq!(s.samples[0].targets, vec!["0.375".to_string()]);
}

#[test]
fn every_scorer_reads_only_the_answer_line() {
    let s = yaml(MIXED);
    // Right answers, in the dress models give them.
    assert_eq!(score(&s, 0, "It is far.\nANSWER: 42.3 km"), 1.0);
    assert_eq!(score(&s, 1, "**ANSWER:** mars"), 1.0);
    assert_eq!(score(&s, 2, "ANSWER: AB-12"), 1.0);
    // The form without the target earns nothing: the pattern says the form, the target what.
    assert_eq!(score(&s, 2, "ANSWER: CD-34"), 0.0);
    assert_eq!(score(&s, 3, "ANSWER: Planet Saturn"), 1.0);
    assert_eq!(score(&s, 4, "ANSWER: hello   world."), 1.0);
    assert_eq!(score(&s, 5, r#"ANSWER: {"steps": ["a|b", "c"]}"#), 1.0);
    // No answer line: nothing, however right the text.
    for i in 0..6 {
        let sample = &s.samples[i];
        let echo = format!(
            "Acknowledged: \"{}\". {}",
            sample.prompt,
            sample.targets.join(" ")
        );
        assert_eq!(score(&s, i, &echo), 0.0, "{}", sample.id);
        // The prompt echoed back, answer line placeholder and all.
        assert_eq!(score(&s, i, &sample.prompt), 0.0, "{}", sample.id);
    }
    // Hedges, ranges and two numbers are not the number.
    for hedged in [
        "ANSWER: about 40 or 42",
        "ANSWER: between 41 and 43",
        "ANSWER: 42 or 43",
        "ANSWER: at least 42",
        "ANSWER: 41 42",
    ] {
        assert_eq!(score(&s, 0, hedged), 0.0, "{hedged}");
    }
    assert_eq!(score(&s, 0, "ANSWER: 43"), 0.0, "outside the tolerance");
    // A choice that is not one of the choices is wrong, even if it holds the target.
    assert_eq!(score(&s, 1, "ANSWER: Mars or Venus"), 0.0);
    assert_eq!(score(&s, 1, "ANSWER: Venus"), 0.0);
    // The regex matches the whole field, not a part of it.
    assert_eq!(score(&s, 2, "ANSWER: code AB-12 please"), 0.0);
    // `includes` looks in the field only.
    assert_eq!(score(&s, 3, "Saturn is one.\nANSWER: I do not know"), 0.0);
    assert_eq!(score(&s, 4, "ANSWER: Hello World and more"), 0.0);
    // JSON must parse and validate.
    assert_eq!(score(&s, 5, r#"ANSWER: {"steps": "a"}"#), 0.0);
    assert_eq!(score(&s, 5, "ANSWER: steps a and b"), 0.0);
}

#[test]
fn the_json_answer_is_the_line_extract_fields_reads() {
    for reply in [
        "ANSWER: x",
        "answer = {}\nmore",
        "no answer here",
        "ANSWER: 1\nFinal answer: [1, 2]",
        "```\nANSWER: {\"a\": 1}\n```",
        "",
    ] {
        assert_eq!(
            raw_answer(reply).is_some(),
            extract_fields(reply, 1).is_ok(),
            "{reply:?}"
        );
    }
    assert_eq!(
        raw_answer("ANSWER: 1\nFinal answer: `[1, 2]`").as_deref(),
        Some("[1, 2]")
    );
}

#[test]
fn bad_files_are_refused_naming_the_sample_and_the_field() {
    let cases: [(&str, &[&str]); 13] = [
        (
            "name: x\nsamples:\n  - {id: a, input: q, scorer: {type: json_schema, schema: {$ref: 'http://127.0.0.1:9/s.json'}}}\n",
            &["sample 1", "field `scorer`", "JSON Schema"],
        ),
        (
            "name: x\nsamples:\n  - {id: a, input: q, target: t}\n  - {id: a, input: q, target: t}\n",
            &["t.yaml", "sample 2", "id 'a'", "field `id`", "unique"],
        ),
        (
            "name: x\nsamples:\n  - {id: a, input: '  ', target: t}\n",
            &["sample 1", "field `input`", "empty"],
        ),
        (
            "name: x\nsamples:\n  - {id: a, input: q, target: Pluto, choices: [Mars, Venus]}\n",
            &["sample 1", "field `target`", "not one of the choices"],
        ),
        (
            "name: x\nsamples:\n  - {id: a, input: q, target: t, scorer: {type: regex, pattern: '(('}}\n",
            &["sample 1", "field `scorer`", "regular expression"],
        ),
        (
            "name: x\nsamples:\n  - {id: a, input: q, scorer: {type: json_schema, schema: {type: 12}}}\n",
            &["sample 1", "field `scorer`", "JSON Schema"],
        ),
        ("name: x\nsamples: []\n", &["t.yaml", "no samples"]),
        (
            "name: x\nsamples:\n  - {id: a, input: q}\n",
            &["sample 1", "field `target`", "needs a target"],
        ),
        (
            "name: x\nsamples:\n  - {id: a, input: q, target: forty}\nscorer: {type: number}\n",
            &["sample 1", "field `target`", "plain number"],
        ),
        (
            "name: x\nsamples:\n  - {id: a, input: q, target: abc, scorer: {type: regex, pattern: '\\d+'}}\n",
            &["sample 1", "field `target`", "does not match"],
        ),
        (
            "name: x\nsamples:\n  - {id: a, input: q, target: t, tolerance: 1}\n",
            &["t.yaml:3", "unknown field", "bench schema --suite"],
        ),
        (
            "name: x\nscorer: {type: number, tolerance: -1}\nsamples:\n  - {id: a, input: q, target: 1}\n",
            &["field `scorer`", "tolerance"],
        ),
        (
            "name: x\nsamples:\n  - {id: a, input: q, target: t, scorer: {type: regex, pattern: '\\w{1000}{1000}'}}\n",
            &["sample 1", "field `scorer`", "regular expression"],
        ),
    ];
    for (text, needles) in cases {
        let e = yaml_error(text);
        for n in needles {
            assert!(e.contains(n), "{n:?} not in {e:?}");
        }
    }
}

#[test]
fn a_jsonl_dataset_imports_with_question_and_answer_or_a_map() {
    let text = "{\"question\": \"2+2?\", \"answer\": 4, \"source\": \"gsm\"}\n\n\
                {\"id\": 7, \"question\": \"Capital of France?\", \"answer\": \"Paris\"}\n";
    let s = from_jsonl(text, Path::new("/x/data.jsonl"), None).unwrap();
    assert_eq!(s.name, "data");
    assert_eq!(s.version, "1");
    assert_eq!(s.samples[0].id, "1");
    assert_eq!(s.samples[0].input, "2+2?");
    assert_eq!(s.samples[0].targets, vec!["4".to_string()]);
    assert_eq!(s.samples[0].metadata["source"], "gsm");
    assert_eq!(s.samples[0].scorer.name(), "exact");
    assert_eq!(s.samples[1].id, "7");
    assert_eq!(score(&s, 1, "ANSWER: paris"), 1.0);

    let map = FieldMap::parse("input=prompt, target=gold").unwrap();
    let text = "{\"prompt\": \"Pick\", \"gold\": \"B\", \"choices\": [\"A\", \"B\"]}\n";
    let s = from_jsonl(text, Path::new("m.jsonl"), Some(&map)).unwrap();
    assert_eq!(s.samples[0].input, "Pick");
    assert_eq!(s.samples[0].scorer.name(), "choice");
    assert_eq!(score(&s, 0, "ANSWER: b"), 1.0);

    // Without the map, the line has no input: the error says how to name it.
    let e = from_jsonl(text, Path::new("m.jsonl"), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m.jsonl: line 1: field `input`") && e.contains("--map"),
        "{e}"
    );
    let e = from_jsonl(
        "{\"input\": \"q\", \"target\": \"t\", \"choices\": \"A\"}\n",
        Path::new("m.jsonl"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 1: field `choices`"), "{e}");
    let e = from_jsonl("{\"input\": \"q\"\n", Path::new("m.jsonl"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 1: not a JSON object"), "{e}");
    let e = from_jsonl("\n\n", Path::new("m.jsonl"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no samples"), "{e}");
}

#[test]
fn field_maps_parse_and_refuse_what_is_not_a_field() {
    assert_eq!(
        FieldMap::parse("input=question,target=answer").unwrap().0,
        vec![
            ("input".to_string(), "question".to_string()),
            ("target".to_string(), "answer".to_string())
        ]
    );
    assert!(
        FieldMap::parse("inptu=question")
            .unwrap_err()
            .contains("not a sample field")
    );
    assert!(FieldMap::parse("input").unwrap_err().contains("FIELD=NAME"));
    assert!(
        FieldMap::parse("input=a,input=b")
            .unwrap_err()
            .contains("twice")
    );
    assert!(FieldMap::parse("").is_err());
}

#[test]
fn a_file_is_read_by_extension_and_the_bounded_reader() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("suite.txt");
    std::fs::write(&txt, "name: x\n").unwrap();
    let e = format::load(&txt, None).unwrap_err().to_string();
    assert!(e.contains(".yaml") && e.contains("suite.txt"), "{e}");
    let e = format::load(Path::new("/dev/zero"), None).unwrap_err();
    assert_eq!(e.exit_code(), crate::error::ExitCode::Usage);
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let yaml = dir.path().join("s.yaml");
    std::fs::write(&yaml, "name: x\nsamples:\n  - {input: q, target: t}\n").unwrap();
    let map = FieldMap::parse("input=q").unwrap();
    let e = format::load(&yaml, Some(&map)).unwrap_err().to_string();
    assert!(e.contains("--map"), "{e}");
}

/// The summary of a suite follows the rule `stats` applies to a family that is not
/// clustered: the same mean, SE and interval.
#[test]
fn the_summary_interval_is_the_families_rule() {
    let sets: [&[f64]; 6] = [
        &[0.0, 0.0, 0.0, 0.0],
        &[1.0; 10],
        &[1.0, 0.0, 1.0],
        &[0.5, 1.0, 0.25, 0.0],
        &[0.5, 0.5],
        &[1.0],
    ];
    for scores in sets {
        let results: Vec<SampleResult> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| SampleResult {
                id: i.to_string(),
                score: *s,
                reason: String::new(),
                answer: None,
                output: String::new(),
                error: None,
                latency_ms: 0,
            })
            .collect();
        let tasks: Vec<TaskScores> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| TaskScores {
                family: FamilyId::Cplc,
                task_id: i.to_string(),
                cluster: i.to_string(),
                scores: vec![*s],
                errors: 0,
                latency_ms: 0,
                tokens_in: 0,
                tokens_out: 0,
            })
            .collect();
        let family = stats::summarize(&tasks, &[FamilyId::Cplc], &|_| 1.0);
        let ours = summarize(&results, scores.len());
        assert_eq!(ours.score, family.families[0].score, "{scores:?}");
        assert_eq!(ours.n, scores.len());
    }
}

/// The shipped example suites load, a right answer to every sample scores 1, and the echo
/// of the prompt scores 0.
#[test]
fn the_shipped_suites_load_and_score() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/suites");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let suite = format::load(&path, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(suite.samples.len(), 20, "{}", path.display());
        for (i, sample) in suite.samples.iter().enumerate() {
            let right = format!("Working.\nANSWER: {}", sample.targets[0]);
            assert_eq!(
                score(&suite, i, &right),
                1.0,
                "{}: {}",
                path.display(),
                sample.id
            );
            assert_eq!(score(&suite, i, &sample.prompt), 0.0, "{}", sample.id);
        }
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[test]
fn the_schema_describes_the_shipped_yaml_suite() {
    let schema = format::schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/suites/arithmetic.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let value: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let bad =
        serde_json::json!({"name": "x", "samples": [{"input": "q", "scorer": {"type": "fuzzy"}}]});
    assert!(!validator.is_valid(&bad));
}

#[test]
fn no_score_for_the_placeholder_a_turned_around_answer_or_a_form_without_the_target() {
    let suite = yaml(
        r#"
name: loopholes
samples:
  - id: inc
    input: Name the ringed planet.
    target: er
    scorer: {type: includes}
  - id: planet
    input: Name the ringed planet.
    target: Saturn
    scorer: {type: includes}
  - id: code
    input: Give the mission code.
    target: AB-12
    scorer: {type: regex, pattern: "[A-Z]{2}-\\d{2}"}
  - id: plan
    input: Give the plan as JSON.
    target: '{"go": true}'
    scorer: {type: json_schema, schema: {type: object}}
  - id: city
    input: What is the capital of the United States?
    target: Washington, D.C.
    scorer: {type: exact}
"#,
    );
    // The instruction's own placeholder, echoed, is no answer, whatever the target.
    let echo = format!("{}\n", suite.samples[0].prompt);
    assert_eq!(score(&suite, 0, &echo), 0.0);
    assert_eq!(score(&suite, 0, "ANSWER: <answer>"), 0.0);
    // `includes`: whole words, and nothing that turns the answer around or hedges.
    assert_eq!(score(&suite, 1, "ANSWER: Saturn"), 1.0);
    assert_eq!(score(&suite, 1, "ANSWER: it is Saturn, of course"), 1.0);
    assert_eq!(score(&suite, 1, "ANSWER: not Saturn"), 0.0);
    assert_eq!(score(&suite, 1, "ANSWER: Saturn or Jupiter"), 0.0);
    assert_eq!(score(&suite, 1, "ANSWER: Saturnalia"), 0.0);
    // A pattern with a target: the form and the value.
    assert_eq!(score(&suite, 2, "ANSWER: AB-12"), 1.0);
    assert_eq!(score(&suite, 2, "ANSWER: ZZ-99"), 0.0);
    // A schema with a target: valid and equal.
    assert_eq!(score(&suite, 3, r#"ANSWER: {"go": true}"#), 1.0);
    assert_eq!(score(&suite, 3, r#"ANSWER: {"go": false}"#), 0.0);
    // A target is read as an answer is: its own full stop does not stop it matching.
    assert_eq!(score(&suite, 4, "ANSWER: Washington, D.C."), 1.0);
}

#[test]
fn targets_no_answer_line_can_give_and_includes_with_choices_are_refused() {
    let e = yaml_error(
        "name: x\nsamples:\n  - id: a\n    input: q\n    target: 'left | right'\n    scorer: {type: exact}\n",
    );
    assert!(e.contains("'|'") && e.contains("target"), "{e}");
    let e = yaml_error(
        "name: x\nsamples:\n  - id: a\n    input: q\n    choices: [A, B]\n    target: A\n    scorer: {type: includes}\n",
    );
    assert!(e.contains("choices") && e.contains("use `choice`"), "{e}");
    // A downloaded dataset offers the model no tools.
    let e = from_jsonl(
        r#"{"id": "a", "input": "q", "target": "t", "tools": ["file_delete"]}"#,
        Path::new("d.jsonl"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("tools") && e.contains("YAML suite"), "{e}");
}

#[test]
fn a_schemas_patterns_run_on_the_linear_engine() {
    // A backreference needs backtracking: the linear engine cannot compile it, so the suite
    // is refused at load rather than scored with a pattern that could backtrack.
    let e = yaml_error(
        "name: x\nsamples:\n  - id: a\n    input: q\n    scorer:\n      type: json_schema\n      schema: {type: string, pattern: '(a)\\1'}\n",
    );
    assert!(e.contains("schema"), "{e}");
    // An ordinary pattern works.
    let s = yaml(
        "name: x\nsamples:\n  - id: a\n    input: q\n    scorer:\n      type: json_schema\n      schema: {type: string, pattern: '^(a+)+$'}\n",
    );
    assert_eq!(score(&s, 0, r#"ANSWER: "aaaa""#), 1.0);
    assert_eq!(
        score(&s, 0, &format!(r#"ANSWER: "{}b""#, "a".repeat(5_000))),
        0.0
    );
}
