//! A benchmark from the console is a decision: asked for off the mock, its tasks one row in
//! Tasks, its dashboard naming what runs where, saying when its V-Score covers part of the
//! plan, and comparing only like with like.

use super::*;

/// The console switched to a paid backend.
fn on_openai(app: &mut App) {
    app.apply(Event::BackendChanged {
        backend: "openai".into(),
        model: "gpt-4o-mini".into(),
        at: t0(),
    });
    app.clear_flash();
}

fn screen_text(terminal: &Terminal<TestBackend>) -> String {
    terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect()
}

#[test]
fn a_benchmark_run_on_a_paid_backend_asks_first_80x24() {
    use veyra::tui::app::{BenchPlan, BenchRequest, BenchUpdate, Command, Suite};
    let mut app = busy_app();
    on_openai(&mut app);
    let commands = app.handle_key(&crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('b'),
    ));
    assert_eq!(commands, vec![Command::PlanBench(BenchRequest::default())]);
    app.clear_flash();
    app.apply_bench(BenchUpdate::Plan(Ok(BenchPlan {
        request: BenchRequest::default(),
        suite: Suite {
            families: vec![
                veyra::benchmarks::FamilyId::Msga,
                veyra::benchmarks::FamilyId::Wmrt,
            ],
            count: 20,
            difficulty: veyra::benchmarks::Difficulty::Hard,
        },
        epochs: 1,
        executions: 40,
        backend: "openai".into(),
        model: "gpt-4o-mini".into(),
        prompt_tokens: 23_456,
    })));
    // Too small a screen still shows the question the keys would answer.
    let text = screen_text(&draw(&mut app, 40, 10));
    assert!(
        text.contains("Start a benchmark run of 40") && text.contains("openai/gpt-4o-mini"),
        "{text}"
    );
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 80, 24);
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("Start a benchmark run?"), "{screen}");
    assert!(
        screen.contains("2 families × 20 tasks × hard = 40 executions (msga,wmrt)"),
        "{screen}"
    );
    assert!(
        screen.contains("≈ 23,456 input tokens") && screen.contains("an estimate"),
        "{screen}"
    );
    // Where the money goes stands out.
    assert_eq!(
        style_of(&terminal, "on openai/gpt-4o-mini").fg,
        theme.warn.fg
    );
    assert_eq!(style_of(&terminal, "y start").fg, theme.accent.fg);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn a_benchmark_runs_tasks_are_one_row_in_tasks_80x24() {
    use veyra::tui::app::Pane;
    let mut app = busy_app();
    let _ = app.start_bench(veyra::tui::app::BenchRequest::default());
    app.bench_planned(
        "cplc,msga · 20 × medium · seed 7".into(),
        [
            (veyra::benchmarks::FamilyId::Cplc, 1.0),
            (veyra::benchmarks::FamilyId::Msga, 1.0),
        ]
        .into_iter()
        .collect(),
    );
    app.apply_bench(veyra::tui::app::BenchUpdate::Progress(
        veyra::benchmarks::Progress::Started {
            run_id: "20261126-120000-5eed0007".into(),
            families: vec![
                (veyra::benchmarks::FamilyId::Cplc, 20, 0),
                (veyra::benchmarks::FamilyId::Msga, 20, 0),
            ],
        },
    ));
    // A run's tasks, asked for by `benchmark`; forty of them would fill the pane.
    for n in 100..140 {
        submit_by(
            &mut app,
            n,
            "You are a mission planner…",
            Priority::Low,
            13,
            "benchmark",
        );
    }
    for n in 100..103 {
        state(&mut app, n, TaskStatus::Succeeded, 1, 14);
    }
    app.show_pane(Pane::Tasks);
    app.clear_flash();
    app.tick(t0() + chrono::Duration::seconds(15));
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 80, 24);
    let screen = format!("{}", terminal.backend());
    assert!(
        screen.contains("bench 20261126-120000-5eed0007 cplc,msga 0/40 running · 37 in flight"),
        "{screen}"
    );
    // The operator's four tasks are all there.
    for title in [
        "Check the power budget",
        "Rotate the antenna",
        "Queued background sweep",
        "Summarise the habitat",
    ] {
        assert!(screen.contains(title), "{title}: {screen}");
    }
    assert!(!screen.contains("mission planner"), "{screen}");
    assert_eq!(style_of(&terminal, "▶ bench").fg, theme.running.fg);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn the_sparkline_compares_only_runs_of_the_same_suite_80x24() {
    use veyra::benchmarks::{Difficulty, FamilyId};
    use veyra::tui::app::{BenchUpdate, HistoryPoint, Suite};
    let mut app = bench_app(4);
    let other = Suite {
        families: vec![FamilyId::Msga],
        count: 20,
        difficulty: Difficulty::Hard,
    };
    // Runs of another suite between ours: left out of the sparkline and its count.
    let mut points = Vec::new();
    for (i, (v, suite)) in [
        (0.31, all_8_medium()),
        (0.95, other.clone()),
        (0.42, all_8_medium()),
        (0.05, other),
    ]
    .into_iter()
    .enumerate()
    {
        points.push(HistoryPoint {
            run_id: format!("2026113{i}-120000-0000000{i}"),
            v_score: v,
            suite,
        });
    }
    app.apply_bench(BenchUpdate::History(Ok(points)));
    app.set_zoom(true);
    let screen = format!("{}", draw(&mut app, 80, 24).backend());
    assert!(
        screen.contains("history ▃▄ last 0.420 · 2 runs of all 8 × medium"),
        "{screen}"
    );
    // The pane names the backend, its model and the difficulty.
    assert!(
        screen.contains("mock/veyra-mock-1 · all · 8 × medium"),
        "{screen}"
    );
    // The time shown is the run's wall time, and says so.
    assert!(screen.contains("21s elapsed"), "{screen}");
}

#[test]
fn a_partial_v_score_says_so_and_a_cancelled_run_reports_what_finished_80x24() {
    use veyra::benchmarks::{FamilyId, Progress, RunStatus};
    use veyra::tui::app::BenchUpdate;
    let mut app = bench_app(0);
    // ASR alone has finished tasks (one of two right): its 0.5 is the V-Score so far, not
    // 0.5 / 7.
    for (i, score) in [1.0, 0.0].into_iter().enumerate() {
        app.apply_bench(BenchUpdate::Progress(Progress::TaskFinished {
            family: FamilyId::Asr,
            task_id: format!("asr-medium-s7-{i:04}"),
            cluster: format!("asr-medium-s7-{i:04}"),
            epoch: 0,
            score,
            reason: "r".into(),
            failed: false,
            done: i + 1,
            total: 8,
        }));
    }
    app.tick(t0() + chrono::Duration::seconds(22));
    app.set_zoom(true);
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 80, 24);
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("V-Score 0.500 ±"), "{screen}");
    assert!(screen.contains("over 1 of 7 families so far"), "{screen}");
    assert_eq!(
        style_of(&terminal, "over 1 of 7 families").fg,
        theme.warn.fg
    );
    // Cancelled: the runner's summary counts the six families not begun as zeros; the pane
    // keeps what finished.
    app.apply_bench(BenchUpdate::Progress(Progress::Finished {
        run_id: "20261126-120000-5eed0007".into(),
        status: RunStatus::Cancelled,
    }));
    let planned: Vec<FamilyId> = FamilyId::ALL.to_vec();
    app.apply_bench(BenchUpdate::Ended(Ok(veyra::benchmarks::stats::summarize(
        &[],
        &planned,
        &|_| 1.0,
    ))));
    app.clear_flash();
    let terminal = draw(&mut app, 80, 24);
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("Benchmarks · cancelled"), "{screen}");
    assert!(screen.contains("V-Score 0.500 ±"), "{screen}");
    assert!(
        screen.contains("over 1 of 7 families, what finished"),
        "{screen}"
    );
    assert!(screen.contains("2 of 56 finished"), "{screen}");
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn a_suite_run_shows_its_own_score_never_a_v_score_80x24() {
    use veyra::benchmarks::RunStatus;
    use veyra::benchmarks::store::SuiteRunInfo;
    use veyra::benchmarks::suite::summarize;
    use veyra::service::bench::{Began, SampleNews, SuiteBegan, SuiteEnded};
    use veyra::tui::app::{BenchUpdate, Pane};
    let mut app = busy_app();
    let began = app.now();
    // Begun by `veyra bench --suite` in another shell, on the runtime this console attached
    // to, five seconds before this console heard of it: its time counts from then.
    app.apply_bench(BenchUpdate::Began(Began {
        number: 3,
        resumed: None,
        families: Vec::new(),
        count: 12,
        difficulty: veyra::benchmarks::Difficulty::default(),
        seed: 0,
        epochs: 1,
        weights: Default::default(),
        backend: "mock".into(),
        model: "veyra-mock-1".into(),
        by: "pid 4242 (unix)".into(),
        at: began - chrono::Duration::seconds(5),
        suite: Some(SuiteBegan {
            run: "20261126-120000-5u17e001".into(),
            name: "arith\u{1b}[31metic".into(),
            version: "1".into(),
            source: "configs/suites/arithmetic.yaml".into(),
            total: 12,
            earlier: 0,
        }),
    }));
    for (i, score) in [1.0, 0.0, 1.0, 1.0, 0.0].into_iter().enumerate() {
        app.apply_bench(BenchUpdate::Sample(SampleNews {
            index: i,
            id: format!("sample-{i}"),
            score,
            reason: if score < 1.0 {
                "answered 40, not 41".into()
            } else {
                "ok".into()
            },
            failed: false,
            done: i + 1,
            total: 12,
        }));
    }
    app.show_pane(Pane::Benchmarks);
    app.set_zoom(true);
    app.clear_flash();
    app.tick(began + chrono::Duration::seconds(10));
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 80, 24);
    let screen = format!("{}", terminal.backend());
    assert!(
        screen.contains("suite arith␛[31metic v1 · 12 samples"),
        "{screen}"
    );
    assert!(screen.contains("score 0.600 ±"), "{screen}");
    assert!(screen.contains("over 5 of 12 samples so far"), "{screen}");
    assert!(!screen.contains("V-Score 0"), "{screen}");
    assert!(screen.contains("5/12"), "{screen}");
    assert!(screen.contains("sample-1"), "{screen}");
    assert!(screen.contains("V-Scores only"), "{screen}");
    assert_eq!(
        style_of(&terminal, "over 5 of 12 samples").fg,
        theme.warn.fg
    );
    // Its end: the stored run's own figures over every sample.
    let results: Vec<_> = (0..12)
        .map(|i| veyra::benchmarks::suite::SampleResult {
            id: format!("sample-{i}"),
            score: if i % 3 == 1 { 0.0 } else { 1.0 },
            reason: String::new(),
            answer: None,
            output: String::new(),
            error: None,
            latency_ms: 1,
        })
        .collect();
    app.apply_bench(BenchUpdate::SuiteEnded(
        Some(Box::new(SuiteEnded {
            run: SuiteRunInfo {
                id: "20261126-120000-5u17e001".into(),
                created_at: t0(),
                finished_at: Some(t0()),
                status: RunStatus::Complete,
                name: "arithmetic".into(),
                version: "1".into(),
                digest: String::new(),
                source: "configs/suites/arithmetic.yaml".into(),
                map: String::new(),
                total: 12,
                backend: "mock".into(),
                model: "veyra-mock-1".into(),
                config_hash: String::new(),
                veyra_version: String::new(),
            },
            summary: summarize(&results, 12),
        })),
        None,
    ));
    app.tick(began + chrono::Duration::seconds(24));
    app.clear_flash();
    let terminal = draw(&mut app, 80, 24);
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("Benchmarks · complete"), "{screen}");
    assert!(screen.contains("score 0.667 ±"), "{screen}");
    assert!(!screen.contains("samples so far"), "{screen}");
    assert!(screen.contains("12/12"), "{screen}");
    assert!(screen.contains("15s elapsed"), "{screen}");
    insta::assert_snapshot!(terminal.backend());
}
