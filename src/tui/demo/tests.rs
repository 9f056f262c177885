//! The scripted tour: parsing, playing in order, what a scenario may and may not do (by
//! command and by key, however the keys are bound), and bounded, regular scenario files.

use super::*;

#[test]
fn the_builtin_scenario_parses_and_tells_a_story_in_under_a_minute() {
    let s = Scenario::builtin().expect("the built-in scenario parses");
    let total: Duration = s.steps.iter().map(|s| s.after).sum();
    assert!(total < Duration::from_secs(60), "{total:?}");
    let acts: Vec<&Act> = s.steps.iter().filter_map(|s| s.act.as_ref()).collect();
    assert!(
        acts.iter()
            .any(|a| matches!(a, Act::Command(c) if c.starts_with("bench")))
    );
    assert!(
        acts.iter()
            .any(|a| matches!(a, Act::Command(c) if c == "verify"))
    );
    assert!(
        acts.iter()
            .filter(|a| matches!(a, Act::Prompt { .. }))
            .count()
            >= 4
    );
}

fn flash(app: &App) -> String {
    app.flash_message()
        .as_ref()
        .map(|f| f.text.clone())
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn steps_play_in_order_when_due_through_the_app_and_the_operator_stops_the_rest() {
    let scenario = Scenario::parse(
        "steps:\n  - say: hello\n  - after: 2\n    prompt: one\n    priority: high\n  \
         - after: 1\n    command: ':priority low'\n  - after: 1\n    prompt: two\n  \
         - after: 5\n    key: z\n",
        "t.yaml",
    )
    .expect("parses");
    let mut app = crate::tui::app::tests::app();
    let start = Instant::now();
    let mut player = Player::new(scenario, start);
    assert_eq!(player.due(), Some(start));
    assert!(player.play(&mut app, start).is_empty());
    assert_eq!(flash(&app), "hello");
    assert_eq!(player.due(), Some(start + Duration::from_secs(2)));
    // Nothing is due a second in.
    assert!(
        player
            .play(&mut app, start + Duration::from_secs(1))
            .is_empty()
    );
    // Four seconds in, three steps are due: played in order, the command between the
    // prompts changing the second one's priority as typed `:priority low` would.
    let commands = player.play(&mut app, start + Duration::from_secs(4));
    assert_eq!(
        commands,
        vec![
            Command::Submit {
                prompt: "one".into(),
                priority: Priority::High
            },
            Command::Submit {
                prompt: "two".into(),
                priority: Priority::Low
            },
        ]
    );
    assert_eq!(player.due(), Some(start + Duration::from_secs(9)));
    // The operator presses a key: the rest never plays.
    player.stop(&mut app);
    assert!(
        flash(&app).contains("demo script stopped"),
        "{}",
        flash(&app)
    );
    assert_eq!(player.due(), None);
    assert!(!app.zoom());
    assert!(
        player
            .play(&mut app, start + Duration::from_secs(60))
            .is_empty()
    );
    assert!(!app.zoom(), "a stopped script pressed its key");
}

#[tokio::test(start_paused = true)]
async fn a_step_says_its_line_over_the_acts_own_feedback_but_never_over_its_error() {
    let scenario = Scenario::parse(
        "steps:\n  - say: the story\n    command: focus audit\n  \
         - after: 1\n    say: hidden\n    command: focus nowhere\n",
        "t.yaml",
    )
    .expect("parses");
    let mut app = crate::tui::app::tests::app();
    let now = Instant::now();
    let mut player = Player::new(scenario, now);
    player.play(&mut app, now);
    assert_eq!(flash(&app), "the story");
    player.play(&mut app, now + Duration::from_secs(1));
    assert!(
        flash(&app).starts_with("unknown pane 'nowhere'"),
        "{}",
        flash(&app)
    );
}

#[tokio::test(start_paused = true)]
async fn a_scripted_key_never_answers_a_confirmation() {
    // `y` then `a` a little later: both would answer the modal if pressed.
    let scenario = Scenario::parse(
        "steps:\n  - after: 1\n    key: y\n  - after: 1\n    key: a\n",
        "t.yaml",
    )
    .expect("parses");
    let mut app = crate::tui::app::tests::app();
    let start = Instant::now();
    app.apply(crate::events::Event::ConfirmationRequested {
        request: 7,
        id: crate::events::ExecutionId::new(),
        operation: "tool:file_write".into(),
        reason: "'tool:file_write' is in governance.require_confirmation".into(),
        detail: None,
        scopable: true,
    });
    // Open, and past its guard interval: a real key now would answer it.
    app.settle_confirmation(start);
    assert!(app.confirm().is_some());
    let mut player = Player::new(scenario, start);
    let commands = player.play(&mut app, start + Duration::from_secs(5));
    assert!(
        !commands.iter().any(|c| matches!(c, Command::Answer { .. })),
        "{commands:?}"
    );
    assert!(app.confirm().is_some(), "the modal is still open");
    assert!(flash(&app).contains("never answers"), "{}", flash(&app));
}

#[test]
fn a_scenario_may_not_switch_the_backend_or_undo() {
    for (line, why) in [
        ("backend openai gpt-4o", "another backend"),
        (":undo 3", "change files"),
        ("Policy reload", "what the runtime allows"),
    ] {
        let text = format!("steps:\n  - command: '{line}'\n");
        let e = Scenario::parse(&text, "t.yaml")
            .expect_err(line)
            .to_string();
        assert!(e.contains("may not run") && e.contains(why), "{e}");
    }
}

#[test]
fn a_scenario_may_run_only_the_allowed_commands_however_they_are_written() {
    for line in [
        "backend openai x",
        ":undo 3",
        "  BACKEND mock",
        "cancel",
        "quit",
        // Whether tasks cross the link is the operator's to switch.
        "sim off",
    ] {
        let text = format!("steps:\n  - command: '{line}'\n");
        let e = Scenario::parse(&text, "t.yaml")
            .expect_err(line)
            .to_string();
        assert!(e.contains("may not run"), "{line}: {e}");
    }
    for key in [":", "i", "/", "q", "ctrl-c", "c"] {
        let text = format!("steps:\n  - key: '{key}'\n");
        let e = Scenario::parse(&text, "t.yaml").expect_err(key).to_string();
        assert!(e.contains("may not press"), "{key}: {e}");
    }
}

/// The route the issue found: `:`, the letters of `backend openai x` and Enter as `key:`
/// steps. With the console's keys rebound so that the load-time check cannot see it (`x`
/// opens the command line), the keys still never open an input, so nothing is typed and
/// no backend switch is ever asked for.
#[tokio::test(start_paused = true)]
async fn scripted_keys_never_open_the_command_line_or_the_prompt_by_any_binding() {
    let mut overrides = std::collections::BTreeMap::new();
    overrides.insert("command_line".to_string(), vec!["x".to_string()]);
    overrides.insert("edit_prompt".to_string(), vec!["e".to_string()]);
    let keymap = super::super::keymap::KeyMap::with_overrides(&overrides).expect("valid keys");
    for opener in ["x", "e", "enter"] {
        // Built as steps, not parsed: the load-time check refuses `c` and `b` (in
        // "backend") by the default bindings, and this is about what plays.
        let mut keys = vec![opener.to_string()];
        keys.extend("backend openai x".chars().map(|c| match c {
            ' ' => "space".to_string(),
            c => c.to_string(),
        }));
        keys.push("enter".into());
        let mut steps = vec![Step {
            after: Duration::ZERO,
            say: None,
            act: Some(Act::Command("focus prompt".into())),
        }];
        steps.extend(keys.iter().map(|k| Step {
            after: Duration::ZERO,
            say: None,
            act: Some(Act::Key(KeySpec::parse(k).expect("a key name"))),
        }));
        let scenario = Scenario { steps };
        let mut app = crate::tui::app::tests::app();
        app.set_keymap(keymap.clone());
        let now = Instant::now();
        let mut player = Player::new(scenario, now);
        let commands = player.play(&mut app, now);
        assert!(
            !commands
                .iter()
                .any(|c| matches!(c, Command::SetBackend { .. } | Command::Submit { .. })),
            "{opener}: {commands:?}"
        );
        assert_eq!(app.mode(), Mode::Normal, "{opener}");
        assert!(app.input().text.is_empty(), "{opener}: nothing was typed");
        let said = flash(&app);
        assert!(said.contains("was not pressed"), "{opener}: {said}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_key_step_acts_as_the_key_would() {
    let scenario = Scenario::parse("steps:\n  - key: z\n", "t.yaml").expect("parses");
    let mut app = crate::tui::app::tests::app();
    let now = Instant::now();
    let mut player = Player::new(scenario, now);
    assert!(player.play(&mut app, now).is_empty());
    assert!(app.zoom(), "z zooms the focused pane");
    // Stopping a finished script says nothing.
    app.clear_flash();
    player.stop(&mut app);
    assert!(app.flash_message().is_none());
}

#[test]
fn the_demo_adds_its_script_and_refusals_never_lifts_one_and_answers_every_prompt() {
    let mut config = crate::config::VeyraConfig::default();
    config.governance.prohibited_operations = vec!["tool:calculator".into()];
    config.governance.require_confirmation = vec!["TOOL:FILE_WRITE".into()];
    crate::tui::apply_demo(&mut config).expect("the built-in demo configuration parses");
    let g = &config.governance;
    assert!(
        g.prohibited_operations
            .iter()
            .any(|o| o == "tool:calculator")
    );
    assert!(
        g.prohibited_operations
            .iter()
            .any(|o| o == "tool:file_delete")
    );
    assert!(g.prohibited_operations.iter().any(|o| o == "delete_all"));
    let confirmed = g
        .require_confirmation
        .iter()
        .filter(|o| o.eq_ignore_ascii_case("tool:file_write"))
        .count();
    assert_eq!(confirmed, 1, "{:?}", g.require_confirmation);
    assert!(config.latency.simulate);
    assert_eq!(
        config.model.backend, "mock",
        "a tour never calls a paid API"
    );
    assert_eq!(
        config.governance.store,
        crate::config::AuditStoreKind::Memory,
        "the tour stays out of the durable trail"
    );
    // Every prompt of the tour has a scripted answer.
    let rules: Vec<regex::Regex> = config
        .model
        .mock
        .script
        .iter()
        .map(|r| regex::Regex::new(&r.pattern).expect("the demo's patterns compile"))
        .collect();
    for step in Scenario::builtin().expect("parses").steps {
        if let Some(Act::Prompt { text, .. }) = step.act {
            assert!(
                rules.iter().any(|r| r.is_match(&text)),
                "no answer for {text:?}"
            );
        }
    }
    // A mock with a script of its own keeps it.
    let mut own = config.clone();
    own.model.mock.script.truncate(1);
    crate::tui::apply_demo(&mut own).expect("parses");
    assert_eq!(own.model.mock.script.len(), 1);
}

#[test]
fn the_demo_plays_on_its_own_date_unless_the_configuration_names_one() {
    let mut config = crate::config::VeyraConfig::default();
    crate::tui::apply_demo(&mut config).expect("parses");
    let start = config.latency.start.expect("the demo pins the link's date");
    assert_eq!(start.to_rfc3339(), "2026-12-01T00:00:00+00:00");
    // On that date the tour's link is clear and its delay the one it was written for.
    let report = crate::runtime::latency::link_report(
        crate::config::LatencyPreset::Mars,
        start,
        &config.latency,
    )
    .expect("in the ephemeris's years");
    assert_eq!(
        report.conjunction,
        crate::runtime::latency::Conjunction::Clear
    );
    let minutes = report.one_way.as_secs_f64() / 60.0;
    assert!((9.7..9.9).contains(&minutes), "{minutes}");
    // A date of the operator's own is kept.
    let mut own = crate::config::VeyraConfig::default();
    let date = "2026-01-09T00:00:00Z".parse().expect("RFC 3339");
    own.latency.start = Some(date);
    crate::tui::apply_demo(&mut own).expect("parses");
    assert_eq!(own.latency.start, Some(date));
}

#[test]
fn bad_steps_are_refused_with_the_step_and_what_to_write() {
    let cases = [
        ("steps:\n  - after: -1\n    say: x\n", "step 1: `after: -1`"),
        ("steps:\n  - after: .inf\n    say: x\n", "is not a wait"),
        (
            "steps:\n  - say: a\n  - after: 1\n",
            "step 2: the step does nothing",
        ),
        (
            "steps:\n  - prompt: hi\n    command: verify\n",
            "a step does one thing",
        ),
        (
            "steps:\n  - priority: high\n    say: x\n",
            "`priority` goes with",
        ),
        ("steps:\n  - key: ctrl-nope\n", "is not a key"),
        ("steps:\n  - command: ':'\n", "the `command` is empty"),
        (
            "steps:\n  - prompt: hi\n    priority: urgent\n",
            "demo scenario t.yaml:",
        ),
        ("steps:\n  - sey: hi\n", "demo scenario t.yaml:2"),
        ("nothing: here\n", "demo scenario t.yaml"),
    ];
    for (text, want) in cases {
        let e = Scenario::parse(text, "t.yaml").expect_err(text).to_string();
        assert!(e.contains(want), "{text:?} gave {e}");
    }
}

#[test]
fn hostile_text_in_a_scenario_error_is_neutralised() {
    let e = Scenario::parse("steps:\n  - key: \"\\e]52;c;eA==\\a\"\n", "t\u{1b}[2J.yaml")
        .expect_err("not a key")
        .to_string();
    assert!(!e.contains('\u{1b}'), "{e:?}");
    assert!(!e.contains('\u{7}'), "{e:?}");
}

#[test]
fn a_huge_scenario_file_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("big.yaml");
    std::fs::write(&path, "#".repeat((MAX_BYTES + 10) as usize)).expect("written");
    let e = Scenario::load(&path).expect_err("too big").to_string();
    assert!(e.contains("larger than 1 MiB"), "{e}");
    let e = Scenario::load(&dir.path().join("missing.yaml"))
        .expect_err("missing")
        .to_string();
    assert!(e.contains("missing.yaml"), "{e}");
    // A FIFO nobody writes to, and an endless device behind a symlink: refused at once.
    let fifo = dir.path().join("fifo.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let e = Scenario::load(&fifo).expect_err("a FIFO").to_string();
    assert!(e.contains("FIFO") && e.contains("regular file"), "{e}");
    let zero = dir.path().join("zero.yaml");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlinked");
    let e = Scenario::load(&zero).expect_err("a device").to_string();
    assert!(e.contains("zero.yaml") && e.contains("regular file"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn the_tours_benchmark_starts_at_once_on_the_mock_and_a_script_never_approves_a_plan() {
    // The built-in tour's `:bench` step, on the demo's mock: started without a question (its
    // run stays out of `bench.db`: `tui::bench`, a console whose audit trail is in memory).
    let bench_step = Scenario::builtin()
        .unwrap()
        .steps
        .into_iter()
        .find(|s| matches!(&s.act, Some(Act::Command(c)) if c.starts_with("bench")))
        .expect("the tour runs a benchmark");
    let mut app = crate::tui::app::tests::app();
    let start = Instant::now();
    let mut player = Player::new(
        Scenario {
            steps: vec![Step {
                after: Duration::ZERO,
                ..bench_step
            }],
        },
        start,
    );
    let commands = player.play(&mut app, start);
    assert!(
        matches!(commands.as_slice(), [Command::StartBench(_)]),
        "{commands:?}"
    );
    // Off the mock a run waits for the operator's `y`, which a script never presses.
    let mut app = crate::tui::app::tests::app();
    app.apply(crate::events::Event::BackendChanged {
        backend: "openai".into(),
        model: "gpt-4o-mini".into(),
        at: chrono::Utc::now(),
    });
    let scenario = Scenario::parse(
        "steps:\n  - command: bench cplc 2 easy\n  - after: 1\n    key: y\n",
        "t.yaml",
    )
    .expect("parses");
    let mut player = Player::new(scenario, start);
    let commands = player.play(&mut app, start);
    let [Command::PlanBench(request)] = commands.as_slice() else {
        panic!("{commands:?}");
    };
    app.apply_bench(crate::tui::app::BenchUpdate::Plan(Ok(
        crate::tui::app::BenchPlan {
            request: request.clone(),
            suite: crate::tui::app::Suite {
                families: vec![crate::benchmarks::FamilyId::Cplc],
                count: 2,
                difficulty: crate::benchmarks::Difficulty::Easy,
            },
            epochs: 1,
            executions: 2,
            backend: "openai".into(),
            model: "gpt-4o-mini".into(),
            prompt_tokens: 300,
        },
    )));
    let commands = player.play(&mut app, start + Duration::from_secs(2));
    assert!(commands.is_empty(), "{commands:?}");
    assert!(app.bench_question().is_some(), "the question still waits");
    assert!(flash(&app).contains("never answers"), "{}", flash(&app));
    assert!(!app.bench_running());
}
