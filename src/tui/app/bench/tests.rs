use chrono::TimeZone;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::benchmarks::FamilyId::{Cplc, Msga, Wmrt};
use crate::tui::testing::app_at;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn finished(family: FamilyId, task: &str, cluster: &str, score: f64, done: usize) -> BenchUpdate {
    BenchUpdate::Progress(Progress::TaskFinished {
        family,
        task_id: task.into(),
        cluster: cluster.into(),
        epoch: 0,
        score,
        reason: if score < 1.0 {
            "decision 'ALLOW' != 'DENY'".into()
        } else {
            "ok".into()
        },
        failed: false,
        done,
        total: 4,
    })
}

fn started(app: &mut App) {
    let cmds = app.handle_key(&key('b'));
    assert_eq!(cmds, vec![Command::StartBench(BenchRequest::default())]);
    app.bench_planned(
        "cplc,msga · 4 × medium · seed 7".into(),
        [(Cplc, 1.0), (Msga, 1.0)].into_iter().collect(),
    );
    app.apply_bench(BenchUpdate::Progress(Progress::Started {
        run_id: "20261201-120000-abcdef01".into(),
        families: vec![(Cplc, 4, 0), (Msga, 4, 0)],
    }));
}

#[test]
fn b_starts_a_run_shows_the_pane_and_a_second_b_is_refused() {
    let mut app = app_at(now());
    started(&mut app);
    assert_eq!(app.focus, Pane::Benchmarks);
    assert!(
        app.bench_tab,
        "a narrow screen shows Benchmarks in the Output's place"
    );
    assert!(app.bench_running());
    assert!(app.handle_key(&key('b')).is_empty());
    let flash = app
        .flash
        .as_ref()
        .map(|f| f.text.clone())
        .unwrap_or_default();
    assert!(
        flash.contains("c on the Benchmarks pane cancels it"),
        "{flash}"
    );
}

#[test]
fn bars_fill_and_the_v_score_follows_the_stats_module() {
    let mut app = app_at(now());
    started(&mut app);
    app.apply_bench(finished(Cplc, "c0", "c0", 1.0, 1));
    app.apply_bench(finished(Cplc, "c1", "c1", 0.0, 2));
    app.apply_bench(finished(Msga, "m0", "m0", 1.0, 1));
    app.apply_bench(finished(Msga, "m1", "m1", 1.0, 2));
    let run = app.bench.run.as_ref().unwrap();
    assert_eq!(run.progress(), (4, 8));
    assert!(run.stale, "estimates wait for the clock");
    app.tick(now() + chrono::Duration::seconds(4));
    let run = app.bench.run.as_ref().unwrap();
    let summary = run.summary.as_ref().unwrap();
    // CPLC 1 of 2 right, MSGA 2 of 2: pass/fail families get Wilson's interval, whose
    // half-width / 1.96 is their SE. V = 0.75, SE = √(SE_c² + SE_m²)/2.
    let se = |k: f64, n: f64| {
        let (lo, hi) = crate::benchmarks::stats::wilson(k, n).unwrap();
        (hi - lo) / (2.0 * crate::benchmarks::stats::Z95)
    };
    let want = (se(1.0, 2.0).powi(2) + se(2.0, 2.0).powi(2)).sqrt() / 2.0;
    assert!((summary.v_score.score.mean - 0.75).abs() < 1e-12);
    assert!((summary.v_score.score.se.unwrap() - want).abs() < 1e-12);
    // Half done in 4 s: 4 s left.
    assert_eq!(run.eta(app.now), Some(chrono::Duration::seconds(4)));
    assert_eq!(run.miss_count, 1);
    assert_eq!(run.misses[0].task_id, "c1");
}

#[test]
fn clustered_families_are_estimated_over_clusters() {
    let mut app = app_at(now());
    let _ = app.start_bench(BenchRequest::default());
    app.bench_planned("wmrt".into(), [(Wmrt, 1.0)].into_iter().collect());
    app.apply_bench(BenchUpdate::Progress(Progress::Started {
        run_id: "r".into(),
        families: vec![(Wmrt, 4, 0)],
    }));
    for (task, cluster, score) in [
        ("a", "c0", 1.0),
        ("b", "c0", 1.0),
        ("c", "c1", 0.0),
        ("d", "c1", 0.0),
    ] {
        app.apply_bench(finished(Wmrt, task, cluster, score, 1));
    }
    app.tick(now());
    let f = &app
        .bench
        .run
        .as_ref()
        .unwrap()
        .summary
        .as_ref()
        .unwrap()
        .families[0];
    assert_eq!(f.clusters, Some(2), "two clusters, not four tasks");
}

#[test]
fn c_on_the_pane_cancels_the_run_once_and_elsewhere_cancels_tasks() {
    let mut app = app_at(now());
    started(&mut app);
    assert_eq!(app.handle_key(&key('c')), vec![Command::CancelBench]);
    assert_eq!(
        app.bench.run.as_ref().unwrap().state,
        BenchState::Cancelling
    );
    assert!(app.handle_key(&key('c')).is_empty(), "asked once is enough");
    app.apply_bench(BenchUpdate::Progress(Progress::Finished {
        run_id: "20261201-120000-abcdef01".into(),
        status: RunStatus::Cancelled,
    }));
    assert_eq!(app.bench.run.as_ref().unwrap().state, BenchState::Cancelled);
    assert!(!app.bench_running());
    // With the Tasks pane focused, c is about tasks again.
    app.show_pane(Pane::Tasks);
    assert!(app.handle_key(&key('c')).is_empty());
    let flash = app
        .flash
        .as_ref()
        .map(|f| f.text.clone())
        .unwrap_or_default();
    assert!(flash.contains("no task selected"), "{flash}");
}

#[test]
fn a_failed_run_says_why_and_a_new_one_may_start() {
    let mut app = app_at(now());
    started(&mut app);
    app.apply_bench(BenchUpdate::Ended(Err(
        "benchmark store x: disk full\x1b[2J".into(),
    )));
    let run = app.bench.run.as_ref().unwrap();
    match &run.state {
        BenchState::Failed(e) => {
            assert!(e.contains("disk full"));
            assert!(!e.contains('\x1b'), "error text is sanitized: {e:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(app.handle_key(&key('b')).len(), 1);
}

#[test]
fn enter_lists_the_misses_newest_first_and_sanitized() {
    let mut app = app_at(now());
    started(&mut app);
    app.apply_bench(finished(Cplc, "c0", "c0", 0.0, 1));
    app.apply_bench(BenchUpdate::Progress(Progress::TaskFinished {
        family: Msga,
        task_id: "m0".into(),
        cluster: "m0".into(),
        epoch: 0,
        score: 0.0,
        reason: "backend said \x1b]52;c;aGk=\x07 nope".into(),
        failed: true,
        done: 1,
        total: 4,
    }));
    app.handle_key(&KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let Some(Overlay::Detail { title, lines }) = &app.overlay else {
        panic!("no detail: {:?}", app.overlay);
    };
    assert_eq!(title, "Benchmark misses");
    let m0 = lines.iter().position(|l| l.contains("m0")).unwrap();
    let c0 = lines.iter().position(|l| l.contains("c0")).unwrap();
    assert!(m0 < c0, "newest first: {lines:#?}");
    assert!(
        lines[m0].starts_with('✗'),
        "a failed execution is marked: {}",
        lines[m0]
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.contains('\x1b') && !l.contains('\x07'))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("veyra bench show 20261201-120000-abcdef01"))
    );
}

#[test]
fn bench_command_parses_in_any_order_and_names_bad_words() {
    assert_eq!(
        BenchRequest::parse(&["msga", "20", "hard"]),
        Ok(BenchRequest {
            families: Some(vec![Msga]),
            count: Some(20),
            difficulty: Some(Difficulty::Hard),
            ..BenchRequest::default()
        })
    );
    assert_eq!(
        BenchRequest::parse(&["extreme", "all"])
            .map(|r| (r.families.map(|f| f.len()), r.difficulty)),
        Ok((Some(FamilyId::ALL.len()), Some(Difficulty::Extreme)))
    );
    assert!(BenchRequest::parse(&["0"]).unwrap_err().contains("from 1"));
    assert!(
        BenchRequest::parse(&["msga", "cplc"])
            .unwrap_err()
            .contains("names families twice")
    );
    // A word that is nothing it could be is named as such, not as one word too many.
    let err = BenchRequest::parse(&["msga", "abc"]).unwrap_err();
    assert!(
        err.starts_with("'abc' is not a count (1 to ")
            && err.contains("easy, medium, hard, extreme"),
        "{err}"
    );
    assert!(
        BenchRequest::parse(&["nope"])
            .unwrap_err()
            .contains("valid families")
    );
    let mut app = app_at(now());
    assert_eq!(
        app.run_command("bench cplc 5 easy"),
        vec![Command::StartBench(BenchRequest {
            families: Some(vec![Cplc]),
            count: Some(5),
            difficulty: Some(Difficulty::Easy),
            ..BenchRequest::default()
        })]
    );
}

#[test]
fn history_keeps_the_newest_runs() {
    let mut app = app_at(now());
    let points: Vec<HistoryPoint> = (0..HISTORY_KEPT + 5)
        .map(|i| HistoryPoint {
            run_id: format!("r{i}"),
            v_score: 0.5,
            suite: Suite {
                families: vec![Msga],
                count: 20,
                difficulty: Difficulty::Hard,
            },
        })
        .collect();
    app.apply_bench(BenchUpdate::History(Ok(points)));
    assert_eq!(app.bench.history.len(), HISTORY_KEPT);
    assert_eq!(app.bench.history[0].run_id, "r5");
}

fn on_openai(app: &mut App) {
    app.link.backend = "openai".into();
    app.link.model = "gpt-4o-mini".into();
}

fn plan_of(request: BenchRequest) -> BenchPlan {
    BenchPlan {
        request,
        suite: Suite {
            families: vec![Msga, Wmrt],
            count: 20,
            difficulty: Difficulty::Hard,
        },
        epochs: 1,
        executions: 40,
        backend: "openai".into(),
        model: "gpt-4o-mini".into(),
        prompt_tokens: 12_345,
    }
}

fn flash_text(app: &App) -> String {
    app.flash
        .as_ref()
        .map(|f| f.text.clone())
        .unwrap_or_default()
}

#[test]
fn b_on_a_paid_backend_shows_the_plan_and_starts_only_on_y() {
    let mut app = app_at(now());
    on_openai(&mut app);
    // `b` asks the loop for the plan; nothing starts.
    assert_eq!(
        app.handle_key(&key('b')),
        vec![Command::PlanBench(BenchRequest::default())]
    );
    assert!(app.bench.run.is_none() && !app.bench_running());
    assert!(flash_text(&app).contains("openai/gpt-4o-mini"));
    app.apply_bench(BenchUpdate::Plan(Ok(plan_of(BenchRequest::default()))));
    assert_eq!(app.mode(), Mode::Question);
    assert_eq!(app.bench_question().map(|p| p.executions), Some(40));
    // `n` leaves it: no run, no command.
    assert!(app.handle_key(&key('n')).is_empty());
    assert!(app.overlay.is_none() && app.bench.run.is_none());
    assert!(
        flash_text(&app).contains("not started"),
        "{}",
        flash_text(&app)
    );
    // Esc too.
    app.apply_bench(BenchUpdate::Plan(Ok(plan_of(BenchRequest::default()))));
    assert!(
        app.handle_key(&KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE))
            .is_empty()
    );
    assert!(app.overlay.is_none() && app.bench.run.is_none());
    // `y` starts the run asked for, on the backend named — not a `y` pressed as the plan
    // lands (meant for something else), only one after the guard interval.
    app.apply_bench(BenchUpdate::Plan(Ok(plan_of(BenchRequest::default()))));
    let shown = tokio::time::Instant::now();
    assert!(app.handle_key_at(&key('y'), shown).is_empty());
    assert_eq!(app.mode(), Mode::Question, "still asking");
    assert_eq!(
        app.handle_key_at(&key('y'), shown + std::time::Duration::from_millis(500)),
        vec![Command::StartBench(BenchRequest::default())]
    );
    assert!(app.overlay.is_none());
    assert!(app.bench_running());
    let run = app.bench.run.as_ref().unwrap();
    assert_eq!(
        (run.backend.as_str(), run.model.as_str()),
        ("openai", "gpt-4o-mini")
    );
    assert_eq!(app.focus, Pane::Benchmarks);
}

#[test]
fn bench_on_a_paid_backend_asks_too_and_a_y_typed_in_the_prompt_is_text() {
    let mut app = app_at(now());
    on_openai(&mut app);
    let asked = BenchRequest {
        families: Some(vec![Msga]),
        count: Some(20),
        difficulty: Some(Difficulty::Hard),
        ..BenchRequest::default()
    };
    assert_eq!(
        app.run_command("bench msga 20 hard"),
        vec![Command::PlanBench(asked.clone())]
    );
    // The operator started typing before the plan arrived: their `y` is a letter.
    app.handle_key(&key('i'));
    assert!(app.editing);
    app.apply_bench(BenchUpdate::Plan(Ok(plan_of(asked.clone()))));
    assert_eq!(app.mode(), Mode::Editing);
    assert!(app.handle_key(&key('y')).is_empty());
    assert_eq!(app.input.text, "y");
    assert!(app.bench.run.is_none());
    // Leaving the prompt uncovers the question, still waiting; its guard starts then.
    let left = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    app.handle_key_at(&KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE), left);
    assert_eq!(app.mode(), Mode::Question);
    assert!(app.handle_key_at(&key('y'), left).is_empty());
    assert_eq!(
        app.handle_key_at(&key('y'), left + std::time::Duration::from_millis(500)),
        vec![Command::StartBench(asked)]
    );
}

#[test]
fn a_plan_for_another_backend_or_over_another_question_never_starts() {
    let mut app = app_at(now());
    on_openai(&mut app);
    app.apply_bench(BenchUpdate::Plan(Ok(plan_of(BenchRequest::default()))));
    // The backend changes while the question is open (from another client, a script).
    app.apply(crate::events::Event::BackendChanged {
        backend: "anthropic".into(),
        model: "claude-x".into(),
        at: now(),
    });
    let later = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    assert!(app.handle_key_at(&key('y'), later).is_empty());
    assert!(app.bench.run.is_none());
    assert!(
        flash_text(&app).contains("the plan was for openai/gpt-4o-mini"),
        "{}",
        flash_text(&app)
    );
    // A plan landing on an open quit question never takes its place.
    on_openai(&mut app);
    app.apply(crate::tui::app::tests::submitted(1));
    app.handle_key(&key('q'));
    assert!(matches!(app.overlay, Some(Overlay::ConfirmQuit { .. })));
    app.apply_bench(BenchUpdate::Plan(Ok(plan_of(BenchRequest::default()))));
    assert!(matches!(app.overlay, Some(Overlay::ConfirmQuit { .. })));
    assert!(flash_text(&app).contains("press b again"));
}

#[test]
fn on_the_mock_and_replay_b_starts_at_once_and_a_plan_that_failed_says_why() {
    for backend in ["mock", "replay"] {
        let mut app = app_at(now());
        app.link.backend = backend.into();
        assert_eq!(
            app.handle_key(&key('b')),
            vec![Command::StartBench(BenchRequest::default())],
            "{backend}"
        );
        assert!(app.overlay.is_none());
    }
    let mut app = app_at(now());
    on_openai(&mut app);
    app.handle_key(&key('b'));
    app.apply_bench(BenchUpdate::Plan(
        Err("every family chosen weighs 0".into()),
    ));
    assert!(app.overlay.is_none());
    assert!(flash_text(&app).contains("weighs 0"));
}

/// Task `n` submitted by `actor` at `priority`.
fn submitted_by(
    app: &mut App,
    n: u128,
    priority: crate::events::Priority,
    actor: &str,
) -> ExecutionId {
    let id = ExecutionId(uuid::Uuid::from_u128(n));
    app.apply(crate::events::Event::TaskSubmitted {
        id,
        kind: "execute".into(),
        title: format!("task {n}"),
        priority,
        backend: Some("mock".into()),
        model: Some("veyra-mock-1".into()),
        actor: Some(actor.into()),
        at: now(),
    });
    id
}

#[test]
fn a_runs_tasks_fold_into_one_row_and_the_operators_own_stay_listed() {
    use crate::events::{Event, Priority, TaskStatus};
    let mut app = app_at(now());
    let before = submitted_by(&mut app, 1, Priority::Low, "benchmark");
    started(&mut app);
    let bench: Vec<ExecutionId> = (10..13)
        .map(|n| submitted_by(&mut app, n, Priority::Low, "benchmark"))
        .collect();
    // The operator's own low-priority prompts, sent during the run, are theirs: the core says
    // who asked.
    let mine = ExecutionId(uuid::Uuid::from_u128(20));
    assert_eq!(submitted_by(&mut app, 20, Priority::Low, "operator"), mine);
    let also_mine = submitted_by(&mut app, 22, Priority::Low, "operator");
    let normal = submitted_by(&mut app, 21, Priority::Normal, "operator");
    // A benchmark task is never listed, even one of a run this console did not see going (a
    // run that ended before it attached).
    let listed: Vec<ExecutionId> = app.tasks().iter().map(|t| t.id).collect();
    assert_eq!(listed, vec![mine, also_mine, normal]);
    assert!(!app.is_bench_task(before));
    assert!(bench.iter().all(|id| app.is_bench_task(*id)));
    app.apply_bench(finished(Cplc, "c0", "c0", 1.0, 1));
    let rows = app.bench_task_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].run_id.as_deref(), Some("20261201-120000-abcdef01"));
    assert_eq!(rows[0].families, "cplc,msga");
    assert_eq!((rows[0].done, rows[0].total, rows[0].in_flight), (1, 8, 3));
    assert_eq!(rows[0].state, BenchState::Running);
    // A run's task ending is counted, and raises no flash of its own.
    app.clear_flash();
    app.apply(Event::TaskState {
        id: bench[0],
        status: TaskStatus::Failed {
            error: "backend down".into(),
            kind: "server".into(),
            not_retried: None,
        },
        attempt: 1,
        at: now(),
    });
    assert_eq!(app.bench_task_rows()[0].in_flight, 2);
    assert!(app.flash.is_none());
    // The selection moves over the operator's tasks only.
    app.show_pane(Pane::Tasks);
    app.handle_key(&key('k'));
    app.handle_key(&key('k'));
    assert_eq!(app.shown_task().map(|t| t.id), Some(mine));
    // Ended, the run keeps its row; the next run has its own.
    app.apply_bench(BenchUpdate::Progress(Progress::Finished {
        run_id: "20261201-120000-abcdef01".into(),
        status: RunStatus::Cancelled,
    }));
    app.apply_bench(BenchUpdate::Ended(Ok(stats::summarize(&[], &[], &|_| 1.0))));
    assert_eq!(app.bench_task_rows()[0].in_flight, 0);
    assert_eq!(app.bench_task_rows()[0].state, BenchState::Cancelled);
    // Another client's benchmark task, with no run going here: not listed, not counted.
    let late = submitted_by(&mut app, 30, Priority::Low, "benchmark");
    assert!(!app.tasks().iter().any(|t| t.id == late));
    assert_eq!(app.bench_task_rows()[0].in_flight, 0);
    // The operator's own low task is listed, run or no run.
    let own = submitted_by(&mut app, 31, Priority::Low, "operator");
    assert!(app.tasks().iter().any(|t| t.id == own));
    let _ = app.handle_key(&key('b'));
    let rows = app.bench_task_rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].state, BenchState::Cancelled);
    assert_eq!(rows[1].state, BenchState::Starting);
}

#[test]
fn while_running_the_v_score_covers_only_the_families_with_a_finished_task() {
    use crate::benchmarks::FamilyId::Asr;
    let mut app = app_at(now());
    let _ = app.start_bench(BenchRequest::default());
    app.bench_planned(
        "all · 20 × medium · seed 7".into(),
        FamilyId::ALL.iter().map(|f| (*f, 1.0)).collect(),
    );
    app.apply_bench(BenchUpdate::Progress(Progress::Started {
        run_id: "r".into(),
        families: FamilyId::ALL.iter().map(|f| (*f, 20, 0)).collect(),
    }));
    for (task, score, done) in [("a0", 1.0, 1), ("a1", 0.0, 2)] {
        app.apply_bench(BenchUpdate::Progress(Progress::TaskFinished {
            family: Asr,
            task_id: task.into(),
            cluster: task.into(),
            epoch: 0,
            score,
            reason: "r".into(),
            failed: false,
            done,
            total: 20,
        }));
    }
    app.tick(now());
    let run = app.bench.run.as_ref().unwrap();
    // ASR's 0.5 is not diluted to 0.071 by six families that have not begun.
    let v = run.summary.as_ref().unwrap().v_score.score.mean;
    assert!((v - 0.5).abs() < 1e-12, "{v}");
    assert_eq!(run.coverage(), (1, 7));
    // Cancelled: the runner sums the plan (unfinished families as zeros); the pane keeps
    // what finished.
    let mut planned = run.tasks.clone();
    planned.push(TaskScores {
        family: Cplc,
        task_id: "never".into(),
        cluster: "never".into(),
        scores: vec![],
        errors: 0,
        latency_ms: 0,
        tokens_in: 0,
        tokens_out: 0,
    });
    let runner_summary = stats::summarize(&planned, &FamilyId::ALL, &|_| 1.0);
    assert!(runner_summary.v_score.score.mean < 0.1);
    app.apply_bench(BenchUpdate::Progress(Progress::Finished {
        run_id: "r".into(),
        status: RunStatus::Cancelled,
    }));
    app.apply_bench(BenchUpdate::Ended(Ok(runner_summary)));
    let run = app.bench.run.as_ref().unwrap();
    assert_eq!(run.state, BenchState::Cancelled);
    let v = run.summary.as_ref().unwrap().v_score.score.mean;
    assert!((v - 0.5).abs() < 1e-12, "{v}");
    assert_eq!(run.coverage(), (1, 7));
    let copied = app.bench_copy_text().unwrap();
    assert!(
        copied.contains("2 of 140 items finished") && copied.contains("over the 1 of 7 families"),
        "{copied}"
    );
}

fn began(number: u64, by: &str) -> BenchUpdate {
    BenchUpdate::Began(crate::service::bench::Began {
        number,
        resumed: None,
        families: vec![Cplc],
        count: 3,
        difficulty: crate::benchmarks::Difficulty::Easy,
        seed: 1,
        epochs: 1,
        weights: [(Cplc, 1.0)].into_iter().collect(),
        backend: "mock".into(),
        model: "veyra-mock-1".into(),
        by: by.into(),
        at: now(),
        suite: None,
    })
}

#[test]
fn a_run_another_client_started_is_shown_and_a_refused_start_here_does_not_fail_it() {
    // Another client's run, while this console shows none: it joins the pane, saying who.
    let mut app = app_at(now());
    app.apply_bench(began(4, "pid 77, uid 0, unix"));
    let run = app.bench().run.as_ref().unwrap();
    assert_eq!(
        (run.number, run.by.as_str()),
        (Some(4), "pid 77, uid 0, unix")
    );
    assert_eq!(run.label, "cplc · 3 × easy · seed 1");
    assert!(app.bench_running());

    // `b` here just as another client's run begins: that run takes the pane; this console's
    // start, refused, says so and fails nothing.
    let mut app = app_at(now());
    let _ = app.handle_key(&key('b'));
    app.apply_bench(began(5, "pid 78, uid 0, unix"));
    app.apply_bench(BenchUpdate::NotStarted(
        "a benchmark run is already going (started by pid 78, uid 0, unix)".into(),
    ));
    let run = app.bench().run.as_ref().unwrap();
    assert_eq!(run.number, Some(5));
    assert_eq!(run.state, BenchState::Starting);
    assert!(app.flash.as_ref().unwrap().text.contains("not started"));

    // A start refused with nothing else going: this console's run shows why.
    let mut app = app_at(now());
    let _ = app.handle_key(&key('b'));
    app.apply_bench(BenchUpdate::NotStarted("count 0 is out of range".into()));
    assert_eq!(
        app.bench().run.as_ref().unwrap().state,
        BenchState::Failed("count 0 is out of range".into())
    );
}
