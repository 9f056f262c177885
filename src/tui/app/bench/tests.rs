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
        })
        .collect();
    app.apply_bench(BenchUpdate::History(Ok(points)));
    assert_eq!(app.bench.history.len(), HISTORY_KEPT);
    assert_eq!(app.bench.history[0].run_id, "r5");
}
