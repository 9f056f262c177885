use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<VeyraConfig, ConfigError> {
    parse_str(text, Path::new("test.yaml"))
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn empty_and_comment_only_files_are_the_defaults() {
    assert_eq!(parse("").unwrap(), VeyraConfig::default());
    assert_eq!(parse("# nothing\n\n").unwrap(), VeyraConfig::default());
}

#[test]
fn sections_merge_with_defaults() {
    let c = parse("model:\n  temperature: 0.2\n").unwrap();
    assert_eq!(c.model.temperature, 0.2);
    assert_eq!(c.model.backend, "mock");
    assert_eq!(c.runtime, RuntimeConfig::default());
}

#[test]
fn unknown_key_names_section_place_and_suggestion() {
    let err = parse("model:\n  backnd: mock\n").unwrap_err().to_string();
    assert!(
        err.starts_with("test.yaml:2:3: unknown key 'backnd' in section 'model'"),
        "{err}"
    );
    assert!(err.contains("did you mean 'backend'?"), "{err}");

    let err = parse("latency:\n  custom:\n    min: 1\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("in section 'latency.custom'"), "{err}");

    let err = parse("modle: {}\n").unwrap_err().to_string();
    assert!(
        err.contains("at the top level (did you mean 'model'?)"),
        "{err}"
    );
}

#[test]
fn syntax_and_type_errors_have_line_and_column() {
    let err = parse("model:\n  temperature: hot\n").unwrap_err();
    let ConfigError::File { line, column, .. } = &err else {
        panic!("expected a located error, got {err:?}");
    };
    assert_eq!((*line, *column), (2, 16));
    // What the key takes, in words, not the parser's Rust types.
    assert!(
        err.to_string()
            .contains("model.temperature takes a number from 0 to 2, got \"hot\""),
        "{err}"
    );

    let err = parse("model: [1\n").unwrap_err().to_string();
    assert!(err.starts_with("test.yaml:1:"), "{err}");
}

#[test]
fn out_of_range_values_are_rejected_with_their_origin() {
    for (yaml, key) in [
        ("model:\n  temperature: 3.5\n", "model.temperature"),
        ("model:\n  max_tokens: 0\n", "model.max_tokens"),
        ("runtime:\n  max_concurrent: 0\n", "runtime.max_concurrent"),
        ("latency:\n  time_scale: 0\n", "latency.time_scale"),
        ("latency:\n  time_scale: -2\n", "latency.time_scale"),
        (
            "latency:\n  custom: {min_ms: 5, max_ms: 1}\n",
            "latency.custom",
        ),
        ("logging:\n  level: loud\n", "logging.level"),
        ("tui:\n  frame_rate: 0\n", "tui.frame_rate"),
        (
            "model:\n  mock:\n    script: [{pattern: '(', response: x}]\n",
            "model.mock.script[0].pattern",
        ),
    ] {
        let config = parse(yaml).unwrap();
        let origin = Origin::file("test.yaml");
        let err = config.validate(&|_| origin.clone()).unwrap_err();
        match &err {
            ConfigError::Invalid { key: k, .. } => assert_eq!(k, key, "{yaml}"),
            other => panic!("{yaml}: expected Invalid, got {other:?}"),
        }
        assert!(err.to_string().contains("(from test.yaml)"), "{err}");
    }
}

#[test]
fn every_number_has_a_range_and_hostile_ones_are_refused() {
    for (yaml, key) in [
        (
            "runtime:\n  task_timeout: 9223372036854775807\n",
            "runtime.task_timeout",
        ),
        ("latency:\n  time_scale: 1.0e-300\n", "latency.time_scale"),
        ("latency:\n  time_scale: .inf\n", "latency.time_scale"),
        ("latency:\n  time_scale: .nan\n", "latency.time_scale"),
        ("latency:\n  start: 2051-01-01T00:00:00Z\n", "latency.start"),
        ("latency:\n  start: 1799-12-31T23:59:59Z\n", "latency.start"),
        (
            "latency:\n  deep_space_au: 1.0e17\n",
            "latency.deep_space_au",
        ),
        ("latency:\n  deep_space_au: 0\n", "latency.deep_space_au"),
        (
            "latency:\n  custom: {min_ms: 0, max_ms: 18446744073709551615}\n",
            "latency.custom.max_ms",
        ),
        ("model:\n  timeout: 18446744073709551615\n", "model.timeout"),
        ("model:\n  timeout: 0\n", "model.timeout"),
        ("model:\n  retries: 4000000000\n", "model.retries"),
        (
            "model:\n  mock: {token_delay_ms: 18446744073709551615}\n",
            "model.mock.token_delay_ms",
        ),
        ("runtime:\n  retries: 4000000000\n", "runtime.retries"),
        (
            "runtime:\n  backoff_ms: 18446744073709551615\n  backoff_max_ms: 18446744073709551615\n",
            "runtime.backoff_ms",
        ),
        (
            "runtime:\n  aging_ms: 18446744073709551615\n",
            "runtime.aging_ms",
        ),
        (
            "runtime:\n  max_concurrent: 18446744073709551615\n",
            "runtime.max_concurrent",
        ),
        ("runtime:\n  queue_capacity: 0\n", "runtime.queue_capacity"),
    ] {
        let config = parse(yaml).unwrap();
        let err = config.validate(&|_| Origin::Default).unwrap_err();
        match &err {
            ConfigError::Invalid {
                key: k, message, ..
            } => {
                assert_eq!(k, key, "{yaml}");
                assert!(message.contains("out of range"), "{yaml}: {message}");
            }
            other => panic!("{yaml}: expected Invalid, got {other:?}"),
        }
    }
    // The edges themselves are valid.
    let edges = "latency:\n  time_scale: 0.001\n  deep_space_au: 100000\nruntime:\n  task_timeout: 604800\n";
    parse(edges)
        .unwrap()
        .validate(&|_| Origin::Default)
        .unwrap();
}

#[test]
fn an_api_key_in_api_key_env_is_refused_without_repeating_it() {
    for key in [
        "sk-proj-AbCdEf0123456789xyz",
        "sk-ant-api03-secretsecret",
        "0123456789abcdefABCDEF0123456789",
        "OPENAI_API_KEY=sk-x",
        "Bearer abc",
        "",
    ] {
        let mut config = VeyraConfig::default();
        config.model.api_key_env = Some(key.into());
        let err = config
            .validate(&|_| Origin::Default)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.api_key_env"), "{err}");
        assert!(key.is_empty() || !err.contains(key), "{err} repeats {key}");
    }
    for name in [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "my_key",
        "SK_LIVE_TOKEN_FOR_VEYRA_TESTS",
    ] {
        let mut config = VeyraConfig::default();
        config.model.api_key_env = Some(name.into());
        config.validate(&|_| Origin::Default).unwrap();
    }
}

#[test]
fn a_megabyte_line_is_not_echoed_whole() {
    let line = format!(
        "model:\n  temperature: \"{}\u{1b}[2J\"\n",
        "x".repeat(1 << 20)
    );
    let err = parse(&line).unwrap_err().to_string();
    assert!(err.len() < 2000, "{} bytes", err.len());
    assert!(err.contains('…'), "{err}");
    assert!(!err.contains('\u{1b}'), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    #[test]
    fn arbitrary_bytes_never_panic_the_loader(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(config) = parse(&text) {
            let _ = config.validate(&|_| Origin::Default);
        }
    }

    #[test]
    fn yaml_shaped_input_never_panics_the_loader(
        section in "model|latency|runtime|logging|governance|tui",
        key in "[a-z_]{1,14}",
        value in "-?[0-9]{1,25}(\\.[0-9]{0,5})?(e-?[0-9]{1,3})?|\\.inf|\\.nan|\\PC{0,20}",
    ) {
        let text = format!("{section}:\n  {key}: {value}\n");
        if let Ok(config) = parse(&text) {
            let _ = config.validate(&|_| Origin::Default);
        }
        let (config, _) = match env::apply_overrides(
            VeyraConfig::default(),
            &vars(&[(&format!("VEYRA_{}__{}", section.to_uppercase(), key.to_uppercase()), &value)]),
        ) {
            Ok(applied) => applied,
            Err(_) => return Ok(()),
        };
        let _ = config.validate(&|_| Origin::Default);
    }
}

#[test]
fn env_overrides_are_typed_and_win_over_the_file() {
    let base = parse("model:\n  backend: mock\n").unwrap();
    let (c, sources) = env::apply_overrides(
        base,
        &vars(&[
            ("VEYRA_MODEL__TEMPERATURE", "0.1"),
            ("VEYRA_RUNTIME__MAX_CONCURRENT", "8"),
            ("VEYRA_LATENCY__PRESET", "mars"),
            ("VEYRA_LATENCY__SIMULATE", "true"),
            ("VEYRA_MODEL__MODEL", "4"),
            ("VEYRA_MODEL__MOCK__TOKEN_DELAY_MS", "30"),
            ("VEYRA_GOVERNANCE__PROHIBITED_OPERATIONS", "a, b"),
            ("VEYRA_CONFIG", "ignored.yaml"),
            ("OTHER", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(c.model.temperature, 0.1);
    assert_eq!(c.runtime.max_concurrent, 8);
    assert_eq!(c.latency.preset, LatencyPreset::Mars);
    assert!(c.latency.simulate);
    assert_eq!(
        c.model.model, "4",
        "a number is text where the key wants text"
    );
    assert_eq!(c.model.mock.token_delay_ms, 30);
    assert_eq!(c.governance.prohibited_operations, vec!["a", "b"]);
    assert_eq!(sources["model.temperature"], "VEYRA_MODEL__TEMPERATURE");
}

#[test]
fn env_errors_name_the_variable() {
    let err = env::apply_overrides(
        VeyraConfig::default(),
        &vars(&[("VEYRA_RUNTIME__MAX_CONCURRENT", "abc")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("environment variable VEYRA_RUNTIME__MAX_CONCURRENT:"),
        "{err}"
    );
    assert!(
        err.contains("runtime.max_concurrent takes a whole number from 1 to 4096, got \"abc\""),
        "{err}"
    );
    assert!(!err.contains("usize"), "{err}");

    let err = env::apply_overrides(
        VeyraConfig::default(),
        &vars(&[("VEYRA_MODEL__BACKND", "x")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("did you mean VEYRA_MODEL__BACKEND?"), "{err}");

    let err = env::apply_overrides(
        VeyraConfig::default(),
        &vars(&[("VEYRA_MODLE__BACKEND", "x")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown section 'modle'"), "{err}");

    let err = env::apply_overrides(VeyraConfig::default(), &vars(&[("VEYRA_MODEL", "x")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a section"), "{err}");

    let err = env::apply_overrides(
        VeyraConfig::default(),
        &vars(&[("VEYRA_LATENCY__PRESET", "venus")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("VEYRA_LATENCY__PRESET"), "{err}");
}

#[test]
fn env_validation_names_the_variable_as_origin() {
    let loaded = load_from(
        Some(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/configs/local.yaml"
        ))),
        &vars(&[("VEYRA_MODEL__TEMPERATURE", "5")]),
    );
    let err = loaded.unwrap_err().to_string();
    assert!(
        err.contains("from environment variable VEYRA_MODEL__TEMPERATURE"),
        "{err}"
    );
}

#[test]
fn every_shipped_config_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            check_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 1, "no configs found in {}", dir.display());
}

#[test]
fn the_commented_local_config_is_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/local.yaml");
    assert_eq!(check_file(&path).unwrap(), VeyraConfig::default());
}

#[test]
fn missing_file_is_not_found() {
    let err = parse_file(Path::new("/nonexistent/veyra.yaml")).unwrap_err();
    assert!(matches!(err, ConfigError::NotFound { .. }), "{err:?}");
}

#[test]
fn every_shipped_theme_parses_and_broken_ones_are_explained() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("themes");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        theme::load_theme(path.to_str().unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    for name in theme::builtin_names() {
        theme::load_theme(name).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let bad_role = dir.path().join("bad.yaml");
    std::fs::write(&bad_role, "roles:\n  borderr: red\n").unwrap();
    let err = theme::load_theme(bad_role.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean 'border'?"), "{err}");
    let bad_colour = dir.path().join("colour.yaml");
    std::fs::write(&bad_colour, "roles:\n  border: blurple\n").unwrap();
    let err = theme::load_theme(bad_colour.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("'blurple' is not a colour"), "{err}");
    let err = theme::load_theme("dracul").unwrap_err().to_string();
    assert!(err.contains("built-in themes: default"), "{err}");
}

#[test]
fn a_user_theme_overrides_only_what_it_sets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.yaml");
    std::fs::write(
        &path,
        "name: mine\npalette:\n  hot: '#ff0000'\nroles:\n  error: hot\n",
    )
    .unwrap();
    let mine = theme::load_theme(path.to_str().unwrap()).unwrap();
    let base = theme::default_theme().unwrap();
    assert_eq!(mine.colour("error"), ThemeColour::Rgb(255, 0, 0));
    assert_eq!(mine.colour("ok"), base.colour("ok"));
    assert_eq!(mine.name, "mine");
}

#[test]
fn the_shown_configuration_masks_the_base_urls_user_info_and_overrides_still_apply() {
    let config =
        parse("model:\n  backend: openai\n  base_url: http://u:hunter2-key@host:8080/v1\n")
            .unwrap();
    let shown = config.for_display();
    assert_eq!(
        shown.model.base_url.as_deref(),
        Some("http://***@host:8080/v1")
    );
    assert_eq!(
        VeyraConfig {
            model: ModelConfig {
                base_url: config.model.base_url.clone(),
                ..shown.model.clone()
            },
            ..shown
        },
        config,
        "nothing else changes"
    );
    // The configuration used keeps its URL, through an override of another key too.
    let (overridden, _) =
        env::apply_overrides(config, &vars(&[("VEYRA_MODEL__MODEL", "m2")])).unwrap();
    assert_eq!(
        overridden.model.base_url.as_deref(),
        Some("http://u:hunter2-key@host:8080/v1")
    );
    // An error about the URL does not repeat its user-info.
    let err = parse("model:\n  base_url: ftp://u:hunter2-key@host/v1\n")
        .unwrap()
        .validate(&|_| Origin::Default)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ftp://***@host/v1"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
