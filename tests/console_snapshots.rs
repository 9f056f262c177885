//! Snapshots of the console at fixed sizes (80×24 and 160×48) over ratatui's `TestBackend`:
//! every pane, the overlays, the too-small screen. Times and ids are fixed, so nothing needs
//! filtering. Review changes with `cargo insta review` (or INSTA_UPDATE=always and `git diff`).

use chrono::{DateTime, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use uuid::Uuid;
use veyra::config::theme::default_theme;
use veyra::events::{
    Event, ExecutionId, FinishReason, LinkStatus, Priority, TaskStatus, TokenUsage,
};
use veyra::tui::app::{App, LinkView, Overlay, Pane};
use veyra::tui::keymap::{Action, KeyMap};
use veyra::tui::layout;
use veyra::tui::theme::Theme;

/// The Benchmarks pane and the Tasks pane when a run is a decision (`console_snapshots/`).
#[path = "console_snapshots/bench_decisions.rs"]
mod bench_decisions;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn id(n: u128) -> ExecutionId {
    ExecutionId(Uuid::from_u128(0x1a2b3c4d_0000_4000_8000_000000000000 + n))
}

fn app() -> App {
    let link = LinkView {
        backend: "mock".into(),
        model: "veyra-mock-1".into(),
        link: LinkStatus {
            simulated: false,
            preset: "earth".into(),
            mode: "uniform".into(),
            one_way_ms: 150,
            one_way_min_ms: 50,
            one_way_max_ms: 250,
            sun_deg: None,
            conjunction: "clear".into(),
            time_scale: 1.0,
            sim_time: t0(),
            taken_at: t0(),
            blackout_ends: None,
        },
    };
    App::new(
        link,
        true,
        KeyMap::default(),
        vec![default_theme().unwrap()],
        t0(),
    )
}

fn submit(app: &mut App, n: u128, title: &str, priority: Priority, secs: i64) {
    submit_by(app, n, title, priority, secs, "operator");
}

/// As [`submit`], asked for by `actor` (`benchmark` for a run's task).
fn submit_by(app: &mut App, n: u128, title: &str, priority: Priority, secs: i64, actor: &str) {
    app.apply(Event::TaskSubmitted {
        id: id(n),
        kind: "execute".into(),
        title: title.into(),
        priority,
        backend: Some("mock".into()),
        model: Some("veyra-mock-1".into()),
        actor: Some(actor.into()),
        at: t0() + chrono::Duration::seconds(secs),
    });
}

fn state(app: &mut App, n: u128, status: TaskStatus, attempt: u32, secs: i64) {
    app.apply(Event::TaskState {
        id: id(n),
        status,
        attempt,
        at: t0() + chrono::Duration::seconds(secs),
    });
}

/// Four tasks: done, failed, queued, running (selected, streaming).
fn busy_app() -> App {
    let mut app = app();
    submit(
        &mut app,
        1,
        "Check the power budget for the next two sols",
        Priority::High,
        0,
    );
    state(&mut app, 1, TaskStatus::Running, 1, 0);
    app.apply(Event::OutputDelta {
        id: id(1),
        text: "Power reserves are sufficient.".into(),
    });
    app.apply(Event::AuditRecorded {
        seq: 1,
        event_type: "EXECUTION".into(),
        actor: "operator".into(),
        action: "execute".into(),
        outcome: "success".into(),
        hash: "9c40dec8e4610f3f".repeat(4),
        execution: Some(id(1)),
    });
    app.apply(Event::ExecutionFinished {
        id: id(1),
        usage: TokenUsage {
            input: 9,
            output: 4,
        },
        finish_reason: FinishReason::Stop,
        latency_ms: 1200,
        at: t0() + chrono::Duration::milliseconds(1200),
    });
    app.apply(Event::TaskState {
        id: id(1),
        status: TaskStatus::Succeeded,
        attempt: 1,
        at: t0() + chrono::Duration::milliseconds(1200),
    });
    submit(&mut app, 2, "Rotate the antenna", Priority::Critical, 3);
    state(&mut app, 2, TaskStatus::Running, 1, 3);
    state(
        &mut app,
        2,
        TaskStatus::Failed {
            error: "backend 'mock' (bad_request): injected bad_request failure (model.mock)".into(),
            kind: "bad_request".into(),
            not_retried: None,
        },
        1,
        4,
    );
    submit(
        &mut app,
        4,
        "Queued background sweep",
        Priority::Background,
        9,
    );
    submit(
        &mut app,
        3,
        "Summarise the habitat telemetry",
        Priority::Normal,
        5,
    );
    state(&mut app, 3, TaskStatus::Running, 1, 5);
    app.apply(Event::OutputDelta {
        id: id(3),
        text: "Acknowledged: \"Summarise the habitat telemetry\". Telemetry from the habitat shows all subsystems within limits.\nThermal margins are healthy across the monitored zones. Dust lev".into(),
    });
    app.clear_flash();
    app.tick(t0() + chrono::Duration::seconds(12));
    app
}

/// Every state the scheduler has, on the Mars link at 60×.
fn link_app() -> App {
    let mut app = app();
    // The same conjunction state as before: a delay moving says nothing in the status bar.
    app.apply(Event::LinkChanged {
        link: LinkStatus {
            simulated: true,
            preset: "mars".into(),
            mode: "ephemeris".into(),
            one_way_ms: 1_140_000,
            one_way_min_ms: 186_000,
            one_way_max_ms: 1_338_000,
            sun_deg: Some(40.0),
            conjunction: "clear".into(),
            time_scale: 60.0,
            sim_time: t0(),
            taken_at: t0(),
            blackout_ends: None,
        },
        switched: false,
        at: t0(),
    });
    let rows: [(u128, &str, Priority, TaskStatus, u32); 8] = [
        (
            1,
            "Plan the traverse to the ridge",
            Priority::High,
            TaskStatus::Uplink {
                sim_ms: 1_140_000,
                real_ms: 19_000,
            },
            1,
        ),
        (
            2,
            "Summarise the habitat telemetry",
            Priority::Normal,
            TaskStatus::Running,
            1,
        ),
        (
            3,
            "Relay the dust forecast",
            Priority::Low,
            TaskStatus::Downlink {
                sim_ms: 1_140_000,
                real_ms: 19_000,
            },
            1,
        ),
        (
            4,
            "Check the power budget",
            Priority::Critical,
            TaskStatus::Retrying {
                delay_ms: 4_000,
                error: "backend 'mock' (overloaded): relay orbiter overloaded".into(),
            },
            2,
        ),
        (
            5,
            "Queued background sweep",
            Priority::Background,
            TaskStatus::Queued,
            0,
        ),
        (
            6,
            "Ping the far-side relay",
            Priority::Normal,
            TaskStatus::Blackout {
                sim_ms: 1_036_800_000,
                real_ms: 17_280_000,
            },
            1,
        ),
        (
            7,
            "Cancelled status request",
            Priority::Normal,
            TaskStatus::Cancelled {
                reason: "operator".into(),
            },
            1,
        ),
        (
            8,
            "Finished status request",
            Priority::Normal,
            TaskStatus::Succeeded,
            1,
        ),
    ];
    for (n, title, priority, status, attempt) in rows {
        submit(&mut app, n, title, priority, 0);
        state(&mut app, n, status, attempt, 2);
    }
    app.select_task(3);
    app.clear_flash();
    // Three real seconds into each wait: three simulated minutes gone at 60×.
    app.tick(t0() + chrono::Duration::seconds(5));
    app
}

fn draw(app: &mut App, width: u16, height: u16) -> Terminal<TestBackend> {
    let theme = Theme::from(app.current_theme().unwrap());
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    layout::fit(app, ratatui::layout::Rect::new(0, 0, width, height));
    terminal.draw(|f| layout::render(app, &theme, f)).unwrap();
    terminal
}

#[test]
fn empty_console_80x24() {
    insta::assert_snapshot!(draw(&mut app(), 80, 24).backend());
}

#[test]
fn busy_console_80x24() {
    insta::assert_snapshot!(draw(&mut busy_app(), 80, 24).backend());
}

#[test]
fn busy_console_160x48() {
    insta::assert_snapshot!(draw(&mut busy_app(), 160, 48).backend());
}

#[test]
fn failed_task_selected_160x48() {
    let mut app = busy_app();
    app.select_task(1);
    insta::assert_snapshot!(draw(&mut app, 160, 48).backend());
}

#[test]
fn editing_a_prompt_80x24() {
    let mut app = busy_app();
    app.update(Action::EditPrompt);
    while app.priority() != Priority::Critical {
        app.update(Action::CyclePriority);
    }
    for c in "Plan the rover traverse to the ridge".chars() {
        app.handle_key(&crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Char(c),
        ));
    }
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

#[test]
fn help_overlay_80x24() {
    let mut app = busy_app();
    app.update(Action::Help);
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

#[test]
fn help_overlay_160x48() {
    let mut app = busy_app();
    app.update(Action::Help);
    insta::assert_snapshot!(draw(&mut app, 160, 48).backend());
}

#[test]
fn quit_confirmation_80x24() {
    let mut app = busy_app();
    app.update(Action::Quit);
    assert_eq!(app.overlay(), Some(&Overlay::ConfirmQuit { active: 2 }));
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

#[test]
fn too_small_terminal_says_so() {
    insta::assert_snapshot!(draw(&mut busy_app(), 40, 10).backend());
}

/// `q` in the too-small view asks a question the operator must be able to see.
#[test]
fn too_small_terminal_shows_the_question_it_waits_on() {
    let mut app = busy_app();
    app.handle_key(&crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('q'),
    ));
    assert!(matches!(app.overlay(), Some(Overlay::ConfirmQuit { .. })));
    let terminal = draw(&mut app, 40, 10);
    let screen: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(screen.contains("Quit?"), "{screen}");
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn error_message_is_readable_at_80x24() {
    let mut app = busy_app();
    app.flash(
        "task 1a2b3c4d failed: backend 'mock' (overloaded): relay orbiter overloaded",
        veyra::tui::app::FlashLevel::Error,
    );
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

#[test]
fn every_task_state_on_the_mars_link_80x24() {
    insta::assert_snapshot!(draw(&mut link_app(), 80, 24).backend());
}

#[test]
fn every_task_state_on_the_mars_link_160x48() {
    insta::assert_snapshot!(draw(&mut link_app(), 160, 48).backend());
}

/// Audit entries, a verification, violations and a confirmation waiting.
fn governed_app() -> App {
    let mut app = busy_app();
    for (seq, event_type, action, outcome) in [
        (2, "POLICY_CHECK", "execute", "allow"),
        (3, "EXECUTION", "execute", "success"),
        (4, "POLICY_CHECK", "execute", "deny"),
        (5, "SAFETY_VIOLATION", "execute:openai", "refused"),
    ] {
        app.apply(Event::AuditRecorded {
            seq,
            event_type: event_type.into(),
            actor: "operator".into(),
            action: action.into(),
            outcome: outcome.into(),
            hash: format!("{seq:x}").repeat(64),
            execution: None,
        });
    }
    app.apply(Event::AuditVerified {
        entries: 5,
        failure: None,
        duration_ms: 1,
        at: t0() + chrono::Duration::seconds(11),
    });
    app.apply(Event::AuditCheckpoint {
        tree_size: 5,
        root: "ab".repeat(32),
        at: t0() + chrono::Duration::seconds(11),
    });
    app.apply(Event::SafetyViolation {
        id: Some(id(1)),
        operation: "execute backend:mock".into(),
        level: "blocked".into(),
        rule: "policy:earth-no-offworld-background".into(),
        reason: "Earth compute is reserved for critical, high and normal work from off-world \
                 (Earth, policy earth-no-offworld-background)"
            .into(),
        actor: "operator".into(),
        at: t0() + chrono::Duration::seconds(9),
    });
    app.apply(Event::SafetyViolation {
        id: Some(id(2)),
        operation: "execute:openai".into(),
        level: "blocked".into(),
        rule: "prohibited_operations".into(),
        reason: "'execute:openai' is in governance.prohibited_operations".into(),
        actor: "operator".into(),
        at: t0() + chrono::Duration::seconds(10),
    });
    app.clear_flash();
    app
}

#[test]
fn audit_and_safety_panes_160x48() {
    insta::assert_snapshot!(draw(&mut governed_app(), 160, 48).backend());
}

#[test]
fn a_broken_chain_turns_the_audit_pane_red_80x24() {
    let mut app = governed_app();
    app.apply(Event::AuditVerified {
        entries: 5,
        failure: Some(
            "entry #1 (seq 2): content changed: its fields no longer hash to its recorded hash"
                .into(),
        ),
        duration_ms: 1,
        at: t0() + chrono::Duration::seconds(12),
    });
    app.clear_flash();
    let theme = Theme::from(app.current_theme().unwrap());
    // At 80×24 the panes are tabs: the Audit tab says so in red from wherever one is.
    let terminal = draw(&mut app, 80, 24);
    assert_eq!(style_of(&terminal, " Audit ✗ ").fg, theme.error.fg);
    app.show_pane(Pane::Audit);
    let terminal = draw(&mut app, 80, 24);
    // Really red: the failure line and the pane's border take the error colour.
    let buffer = terminal.backend().buffer();
    let cells: Vec<_> = buffer.content().iter().collect();
    let broken = cells
        .windows(2)
        .position(|w| w[0].symbol() == "✗" && w[1].symbol() == " ")
        .expect("the ✗ BROKEN line");
    assert_eq!(cells[broken].style().fg, theme.error.fg);
    // The pane's title, below the tab strip's row.
    let width = usize::from(buffer.area.width);
    let audit_title = width
        + cells[width..]
            .windows(5)
            .position(|w| w.iter().map(|c| c.symbol()).collect::<String>() == "Audit")
            .expect("the Audit title");
    assert_eq!(
        cells[audit_title - 2].style().fg,
        theme.error.fg,
        "the border"
    );
    insta::assert_snapshot!(terminal.backend());
}

/// Confirmation `request`: may task 3 run on the mock (a `governance.require_confirmation`
/// operation)?
fn ask_to_run_on_mock(app: &mut App, request: u64) {
    app.apply(Event::ConfirmationRequested {
        request,
        id: id(3),
        operation: "execute:mock".into(),
        reason: "'execute:mock' is in governance.require_confirmation".into(),
        detail: None,
        scopable: false,
    });
}

#[test]
fn confirmation_modal_80x24() {
    let mut app = governed_app();
    for request in [1, 2] {
        ask_to_run_on_mock(&mut app, request);
    }
    app.settle_confirmation(tokio::time::Instant::now());
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

/// A confirmation arriving while the operator types: announced in the status bar and on the
/// Safety title, no modal, the draft untouched.
#[test]
fn confirmation_waiting_while_typing_80x24() {
    let mut app = governed_app();
    app.handle_key(&crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('i'),
    ));
    for c in "why not".chars() {
        app.handle_key(&crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Char(c),
        ));
    }
    ask_to_run_on_mock(&mut app, 1);
    app.settle_confirmation(tokio::time::Instant::now());
    app.clear_flash();
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

#[test]
fn command_line_80x24() {
    let mut app = busy_app();
    app.update(Action::CommandLine);
    for c in "preset mars".chars() {
        app.handle_key(&crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Char(c),
        ));
    }
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

/// An agent at work: its tool steps inline in `Output` between the answer's text — a success
/// in the accent colour, a refusal in the error colour — and a tool's confirmation modal with
/// its arguments and the session answer.
#[test]
fn agent_steps_inline_and_a_tool_confirmation_80x24() {
    let mut app = app();
    submit(&mut app, 1, "Tidy the workspace", Priority::Normal, 0);
    state(&mut app, 1, TaskStatus::Running, 1, 0);
    app.apply(Event::OutputDelta {
        id: id(1),
        text: "Checking first.".into(),
    });
    for (step, tool, arguments, outcome, summary) in [
        (
            1,
            "calculator",
            r#"{"expression":"6*7"}"#,
            "success",
            "6*7 = 42",
        ),
        (
            2,
            "file_delete",
            r#"{"path":"notes.md"}"#,
            "refused",
            "'tool:file_delete' needs confirmation and was denied (operator)",
        ),
    ] {
        app.apply(Event::AgentStep {
            id: id(1),
            step,
            tool: tool.into(),
            arguments: arguments.into(),
            outcome: outcome.into(),
            summary: summary.into(),
            audit_seq: Some(u64::from(step) + 3),
            at: t0(),
        });
    }
    app.apply(Event::OutputDelta {
        id: id(1),
        text: "I could not delete notes.md.".into(),
    });
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 80, 24);
    let buffer = terminal.backend().buffer();
    let style_of = |needle: &str| {
        (0..buffer.area.height)
            .find_map(|y| {
                let row: String = (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect();
                row.find(needle).map(|byte| {
                    let x = row[..byte].chars().count() as u16;
                    buffer[(x, y)].style()
                })
            })
            .unwrap_or_else(|| panic!("'{needle}' is not on the screen"))
    };
    assert_eq!(style_of("⚙ calculator").fg, theme.accent.fg);
    assert_eq!(style_of("⚙ file_delete").fg, theme.error.fg);
    assert_eq!(style_of("Checking first.").fg, theme.text.fg);
    assert_ne!(theme.accent.fg, theme.error.fg);
    insta::assert_snapshot!("agent_steps_inline_80x24", terminal.backend());

    app.apply(Event::ConfirmationRequested {
        request: 1,
        id: id(1),
        operation: "tool:file_delete".into(),
        reason: "'tool:file_delete' always asks for confirmation".into(),
        detail: Some(format!(r#"{{"path":"{}"}}"#, "very/long/".repeat(10))),
        scopable: true,
    });
    app.settle_confirmation(tokio::time::Instant::now());
    insta::assert_snapshot!("tool_confirmation_80x24", draw(&mut app, 80, 24).backend());
}

/// An answer cut at `max_tokens` is not "done": the title and a line under the text say so,
/// in the warning colour, and no live rate stays in the status bar once nothing streams.
#[test]
fn a_truncated_answer_says_so_160x48() {
    let mut app = app();
    submit(&mut app, 1, "Write the long report", Priority::Normal, 0);
    state(&mut app, 1, TaskStatus::Running, 1, 0);
    app.apply(Event::OutputDelta {
        id: id(1),
        text: "The report begins with power, then thermal, then".into(),
    });
    app.apply(Event::ExecutionFinished {
        id: id(1),
        usage: TokenUsage {
            input: 4,
            output: 8,
        },
        finish_reason: FinishReason::Length,
        latency_ms: 800,
        at: t0() + chrono::Duration::seconds(1),
    });
    state(&mut app, 1, TaskStatus::Succeeded, 1, 1);
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 160, 48);
    let screen: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(screen.contains("truncated at max_tokens"), "{screen}");
    assert!(screen.contains("⚠ the answer was cut at model.max_tokens"));
    let buffer = terminal.backend().buffer();
    let warn_cells = buffer
        .content()
        .iter()
        .filter(|c| c.symbol() == "⚠")
        .map(|c| c.style().fg)
        .collect::<Vec<_>>();
    assert_eq!(warn_cells, vec![theme.warn.fg]);
    insta::assert_snapshot!(terminal.backend());
}

/// `z` zooms the focused pane to the whole body; the title says so; `z` again restores.
#[test]
fn zoomed_output_80x24() {
    let mut app = busy_app();
    app.show_pane(veyra::tui::app::Pane::Output);
    app.handle_key(&crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('z'),
    ));
    assert_eq!(app.zoomed(), Some(veyra::tui::app::Pane::Output));
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
    app.handle_key(&crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('z'),
    ));
    assert_eq!(app.zoomed(), None);
}

/// The help's second page: what each pane is for, the glyphs, the `:` commands — at 80×24.
#[test]
fn help_panes_glyphs_and_commands_80x24() {
    let mut app = busy_app();
    app.handle_key(&crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('?'),
    ));
    app.handle_key(&crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Tab,
    ));
    assert_eq!(app.help_page(), 1);
    assert_eq!(app.overlay(), Some(&Overlay::Help));
    insta::assert_snapshot!(draw(&mut app, 80, 24).backend());
}

/// A filtered Safety pane says so in its title and shows only what matches.
#[test]
fn a_filtered_safety_pane_160x48() {
    let mut app = governed_app();
    app.set_filter(veyra::tui::app::Pane::Safety, "openai");
    app.clear_flash();
    let terminal = draw(&mut app, 160, 48);
    let screen: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(screen.contains("Safety (2) /openai"), "{screen}");
    assert!(!screen.contains("earth-no-offworld"), "{screen}");
    insta::assert_snapshot!(terminal.backend());
}

/// At 60×16 the keys do not fit even in two columns: the help scrolls (j/k) and says so, so
/// no section is lost.
#[test]
fn help_scrolls_at_60x16() {
    let mut app = busy_app();
    let key = |c| crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(c));
    app.handle_key(&key('?'));
    let top = draw(&mut app, 60, 16);
    insta::assert_snapshot!("help_60x16_top", top.backend());
    for _ in 0..40 {
        app.handle_key(&key('j'));
    }
    assert_eq!(
        app.overlay(),
        Some(&Overlay::Help),
        "j scrolls, it does not close"
    );
    let bottom = draw(&mut app, 60, 16);
    let screen: String = bottom
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(
        screen.contains("page 2"),
        "the last line is reachable: {screen}"
    );
    insta::assert_snapshot!("help_60x16_bottom", bottom.backend());
    app.handle_key(&crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Tab,
    ));
    insta::assert_snapshot!("help_page_2_60x16", draw(&mut app, 60, 16).backend());
}

/// The suite of the snapshots' benchmark runs: every family, 8 tasks each, medium.
fn all_8_medium() -> veyra::tui::app::Suite {
    veyra::tui::app::Suite {
        families: veyra::benchmarks::FamilyId::ALL.to_vec(),
        count: 8,
        difficulty: veyra::benchmarks::Difficulty::Medium,
    }
}

/// A console whose benchmark run is half done: every family started, some scores in, two
/// misses (one a failed execution), five past runs in the store.
fn bench_app(done_per_family: usize) -> App {
    use veyra::benchmarks::{FamilyId, Progress};
    use veyra::tui::app::{BenchRequest, BenchUpdate, HistoryPoint};
    let mut app = app();
    let _ = app.start_bench(BenchRequest::default());
    app.bench_planned(
        "all · 8 × medium · seed 7".into(),
        FamilyId::ALL.iter().map(|f| (*f, 1.0)).collect(),
    );
    app.bench_suite(all_8_medium());
    app.apply_bench(BenchUpdate::History(Ok([0.31, 0.35, 0.42, 0.38, 0.47]
        .iter()
        .enumerate()
        .map(|(i, v)| HistoryPoint {
            run_id: format!("2026113{i}-120000-0000000{i}"),
            v_score: *v,
            suite: all_8_medium(),
        })
        .collect())));
    app.apply_bench(BenchUpdate::Progress(Progress::Started {
        run_id: "20261126-120000-5eed0007".into(),
        families: FamilyId::ALL.iter().map(|f| (*f, 8, 0)).collect(),
    }));
    for (k, family) in FamilyId::ALL.iter().enumerate() {
        for i in 0..done_per_family {
            // Scores that differ by family and task, so each bar has its own figures.
            let score = if (i + k) % 3 == 0 { 0.0 } else { 1.0 };
            app.apply_bench(BenchUpdate::Progress(Progress::TaskFinished {
                family: *family,
                task_id: format!("{family}-medium-s7-{i:04}"),
                cluster: format!("{family}-medium-s7-{i:04}"),
                epoch: 0,
                score,
                reason: if score < 1.0 {
                    "decision 'ALLOW' != 'DENY'".into()
                } else {
                    "ok".into()
                },
                failed: k == 1 && i == 0,
                done: i + 1,
                total: 8,
            }));
        }
    }
    app.tick(t0() + chrono::Duration::seconds(21));
    app
}

/// The cell styles of the first occurrence of `text` on the screen.
fn style_of(terminal: &Terminal<TestBackend>, text: &str) -> ratatui::style::Style {
    let buffer = terminal.backend().buffer();
    let width = buffer.area.width as usize;
    let cells: Vec<_> = buffer.content().iter().collect();
    let n = text.chars().count();
    let at = cells
        .windows(n)
        .enumerate()
        .position(|(i, w)| {
            // Within one row.
            i % width + n <= width && w.iter().map(|c| c.symbol()).collect::<String>() == text
        })
        .unwrap_or_else(|| panic!("'{text}' is not on the screen:\n{}", terminal.backend()));
    cells[at].style()
}

#[test]
fn benchmarks_running_as_a_tab_80x24() {
    let mut app = bench_app(4);
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 80, 24);
    let screen = format!("{}", terminal.backend());
    // At 80×24 the panes are tabs; the strip says a run goes on.
    assert!(screen.contains("[Benchmarks ▶]"), "{screen}");
    assert!(screen.contains("Benchmarks · running"), "{screen}");
    assert!(screen.contains("V-Score"), "{screen}");
    assert!(
        screen.contains("±"),
        "never a V-Score without its interval: {screen}"
    );
    assert!(screen.contains("ETA"), "{screen}");
    // Meaning does not hang on colour alone, but colour agrees with it.
    assert_eq!(style_of(&terminal, "running").fg, theme.running.fg);
    assert_eq!(style_of(&terminal, "1✗").fg, theme.error.fg, "{screen}");
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn benchmarks_dashboard_zoomed_80x24() {
    use veyra::benchmarks::{Progress, RunStatus};
    use veyra::tui::app::BenchUpdate;
    let mut app = bench_app(8);
    app.apply_bench(BenchUpdate::Progress(Progress::Finished {
        run_id: "20261126-120000-5eed0007".into(),
        status: RunStatus::Complete,
    }));
    app.set_zoom(true);
    app.tick(t0() + chrono::Duration::seconds(30));
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 80, 24);
    assert_eq!(style_of(&terminal, "complete").fg, theme.ok.fg);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn benchmarks_have_their_own_column_160x48() {
    let mut app = bench_app(3);
    app.show_pane(veyra::tui::app::Pane::Tasks);
    insta::assert_snapshot!(draw(&mut app, 160, 48).backend());
}

#[test]
fn a_failed_benchmark_run_says_why_80x24() {
    use veyra::tui::app::BenchUpdate;
    let mut app = bench_app(2);
    app.apply_bench(BenchUpdate::Ended(Err(
        "benchmark store /data/bench.db: disk I/O error; free some space and run `veyra bench --resume last`".into(),
    )));
    app.clear_flash();
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 80, 24);
    assert_eq!(style_of(&terminal, "failed").fg, theme.error.fg);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn every_hint_names_the_keys_the_operator_configured() {
    let overrides: std::collections::BTreeMap<String, Vec<String>> = [
        ("verify_audit", "V"),
        ("start_bench", "B"),
        ("zoom", "Z"),
        ("up", "K"),
        ("top", "home"),
        ("submit", "ctrl-s"),
        ("open", "o"),
    ]
    .into_iter()
    .map(|(a, k)| (a.to_string(), vec![k.to_string()]))
    .collect();
    let mut app = app();
    app.set_keymap(KeyMap::with_overrides(&overrides).unwrap());
    let screen = format!("{}", draw(&mut app, 160, 48).backend());
    assert!(screen.contains("not verified yet (V)"), "{screen}");
    assert!(screen.contains("B runs the configured suite"), "{screen}");
    assert!(screen.contains("Ctrl-S to send it"), "{screen}");
    // The help's second page too.
    app.update(Action::Help);
    app.update(Action::FocusNext);
    assert_eq!(app.help_page(), 1);
    let screen = format!("{}", draw(&mut app, 160, 48).backend());
    assert!(screen.contains("V-Score, bars; B runs"), "{screen}");
    assert!(screen.contains("log; o shows fields"), "{screen}");
}

// ---------------------------------------------------------------------------------------------
// Screenshots (`screenshots/`, shown in the README): the real render of one scripted state —
// tasks, a tool call's steps, audit, refusals and a benchmark run — at fixed sizes and themes,
// as SVG and as text. The test fails when a file differs from the render; to write them:
//
//     VEYRA_WRITE_SCREENSHOTS=1 cargo test --test console_snapshots screenshots

/// The state the screenshots show: the governed console (four tasks, audit entries, two
/// refusals), a tool call in the selected task's output, and a benchmark run half done.
fn showcase(theme: &str) -> App {
    use veyra::benchmarks::{FamilyId, Progress};
    use veyra::tui::app::{BenchRequest, BenchUpdate, HistoryPoint};
    let mut app = governed_app();
    app.set_themes(vec![veyra::config::theme::load_theme(theme).unwrap()]);
    app.apply(Event::AgentStep {
        id: id(3),
        step: 1,
        tool: "light_time".into(),
        arguments: r#"{"body":"mars"}"#.into(),
        outcome: "success".into(),
        summary: "Mars: 12m31s one way, 25m02s round trip (Sun–Earth–Mars 38°)".into(),
        audit_seq: Some(6),
        at: t0() + chrono::Duration::seconds(12),
    });
    let _ = app.start_bench(BenchRequest::default());
    app.bench_planned(
        "all · 8 × medium · seed 7".into(),
        FamilyId::ALL.iter().map(|f| (*f, 1.0)).collect(),
    );
    app.bench_suite(all_8_medium());
    app.apply_bench(BenchUpdate::History(Ok([0.31, 0.35, 0.42, 0.38, 0.47]
        .iter()
        .enumerate()
        .map(|(i, v)| HistoryPoint {
            run_id: format!("2026113{i}-120000-0000000{i}"),
            v_score: *v,
            suite: all_8_medium(),
        })
        .collect())));
    app.apply_bench(BenchUpdate::Progress(Progress::Started {
        run_id: "20261126-120000-5eed0007".into(),
        families: FamilyId::ALL.iter().map(|f| (*f, 8, 0)).collect(),
    }));
    for (k, family) in FamilyId::ALL.iter().enumerate() {
        for i in 0..(3 + k % 4) {
            let score = if (i + k) % 3 == 0 { 0.0 } else { 1.0 };
            app.apply_bench(BenchUpdate::Progress(Progress::TaskFinished {
                family: *family,
                task_id: format!("{family}-medium-s7-{i:04}"),
                cluster: format!("{family}-medium-s7-{i:04}"),
                epoch: 0,
                score,
                reason: if score < 1.0 {
                    "decision 'ALLOW' != 'DENY'".into()
                } else {
                    "ok".into()
                },
                failed: false,
                done: i + 1,
                total: 8,
            }));
        }
    }
    // The process's own log, as the console's tracing layer records it.
    let record = |secs: i64, level, message: &str, fields: Vec<(&'static str, &str)>| {
        veyra::tui::log_layer::LogRecord {
            seq: 0,
            at: t0() + chrono::Duration::seconds(secs),
            level,
            execution_id: Some(id(3).0.to_string()),
            message: message.to_string(),
            fields: fields
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect(),
            target: "veyra::core".into(),
        }
    };
    app.take_log(vec![
        record(
            7,
            tracing::Level::INFO,
            "execution started",
            vec![
                ("attempt", "1"),
                ("backend", "mock"),
                ("priority", "normal"),
            ],
        ),
        record(
            9,
            tracing::Level::WARN,
            "refused by the safety boundary",
            vec![
                ("operation", "execute:openai"),
                ("rule", "prohibited_operations"),
            ],
        ),
        record(
            12,
            tracing::Level::INFO,
            "the model asked for a tool",
            vec![("tool", "light_time"), ("call_id", "call_1_1")],
        ),
    ]);
    app.show_pane(veyra::tui::app::Pane::Tasks);
    app.clear_flash();
    app.tick(t0() + chrono::Duration::seconds(21));
    app
}

/// An SVG of the buffer: one `<rect>` per run of background, one `<text>` per run of style,
/// each run stretched to its cells so columns line up in any monospace font.
fn svg(buffer: &ratatui::buffer::Buffer, light: bool) -> String {
    use ratatui::style::{Color, Modifier};
    use std::fmt::Write;
    const CW: f64 = 8.4;
    const CH: f64 = 17.0;
    let (page_fg, page_bg) = if light {
        ("#24292f", "#ffffff")
    } else {
        ("#c9d1d9", "#0d1117")
    };
    // The 16 ANSI colours as xterm-like terminals show them.
    let ansi = |c: Color| -> Option<String> {
        let hex = match c {
            Color::Reset => return None,
            Color::Black => "#000000",
            Color::Red => "#cd3131",
            Color::Green => "#0dbc79",
            Color::Yellow => "#e5e510",
            Color::Blue => "#2472c8",
            Color::Magenta => "#bc3fbc",
            Color::Cyan => "#11a8cd",
            Color::Gray => "#e5e5e5",
            Color::DarkGray => "#666666",
            Color::LightRed => "#f14c4c",
            Color::LightGreen => "#23d18b",
            Color::LightYellow => "#f5f543",
            Color::LightBlue => "#3b8eea",
            Color::LightMagenta => "#d670d6",
            Color::LightCyan => "#29b8db",
            Color::White => "#ffffff",
            Color::Rgb(r, g, b) => return Some(format!("#{r:02x}{g:02x}{b:02x}")),
            // xterm's 256: the 16 above, a 6×6×6 cube, then a grey ramp.
            Color::Indexed(i) if i < 16 => return None,
            Color::Indexed(i) if i < 232 => {
                let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
                let i = i - 16;
                let (r, g, b) = (level(i / 36), level(i / 6 % 6), level(i % 6));
                return Some(format!("#{r:02x}{g:02x}{b:02x}"));
            }
            Color::Indexed(i) => {
                let v = 8 + 10 * (i - 232);
                return Some(format!("#{v:02x}{v:02x}{v:02x}"));
            }
        };
        Some(hex.to_string())
    };
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let area = buffer.area;
    let (w, h) = (f64::from(area.width) * CW, f64::from(area.height) * CH);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.1} {h:.1}" font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace" font-size="14px">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="{page_bg}"/>"#
    );
    for y in 0..area.height {
        // Cells of the row with their resolved colours.
        let cells: Vec<(String, String, Option<String>, Modifier)> = (0..area.width)
            .map(|x| {
                let cell = &buffer[(x, y)];
                let mut fg = ansi(cell.fg).unwrap_or_else(|| page_fg.to_string());
                let mut bg = ansi(cell.bg);
                if cell.modifier.contains(Modifier::REVERSED) {
                    let old_fg = fg.clone();
                    fg = bg.unwrap_or_else(|| page_bg.to_string());
                    bg = Some(old_fg);
                }
                (cell.symbol().to_string(), fg, bg, cell.modifier)
            })
            .collect();
        let top = f64::from(y) * CH;
        let mut x = 0;
        while x < cells.len() {
            let bg = &cells[x].2;
            let run = cells[x..].iter().take_while(|c| &c.2 == bg).count();
            if let Some(bg) = bg {
                let _ = writeln!(
                    out,
                    r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{CH:.1}" fill="{bg}"/>"#,
                    x as f64 * CW,
                    run as f64 * CW
                );
            }
            x += run;
        }
        let mut x = 0;
        while x < cells.len() {
            let (fg, modifier) = (&cells[x].1, cells[x].3);
            let run = cells[x..]
                .iter()
                .take_while(|c| &c.1 == fg && c.3 == modifier)
                .count();
            let text: String = cells[x..x + run].iter().map(|c| c.0.as_str()).collect();
            if !text.trim().is_empty() {
                let mut attrs = String::new();
                if modifier.contains(Modifier::BOLD) {
                    attrs.push_str(r#" font-weight="bold""#);
                }
                if modifier.contains(Modifier::ITALIC) {
                    attrs.push_str(r#" font-style="italic""#);
                }
                if modifier.contains(Modifier::DIM) {
                    attrs.push_str(r#" opacity="0.6""#);
                }
                if modifier.contains(Modifier::UNDERLINED) {
                    attrs.push_str(r#" text-decoration="underline""#);
                }
                let _ = writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" fill="{fg}" textLength="{:.1}" lengthAdjust="spacingAndGlyphs" xml:space="preserve"{attrs}>{}</text>"#,
                    x as f64 * CW,
                    top + CH * 0.78,
                    run as f64 * CW,
                    escape(&text)
                );
            }
            x += run;
        }
    }
    out.push_str("</svg>\n");
    out
}

#[test]
fn screenshots_are_the_current_render() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots");
    let write = std::env::var_os("VEYRA_WRITE_SCREENSHOTS").is_some();
    let mut stale = Vec::new();
    for (name, theme, width, height) in [
        ("console-160x48", "default", 160, 48),
        ("console-daylight-160x48", "daylight", 160, 48),
        ("console-80x24", "default", 80, 24),
    ] {
        let mut app = showcase(theme);
        let terminal = draw(&mut app, width, height);
        let buffer = terminal.backend().buffer();
        let text: String = (0..height)
            .map(|y| {
                let row: String = (0..width).map(|x| buffer[(x, y)].symbol()).collect();
                format!("{}\n", row.trim_end())
            })
            .collect();
        let image = svg(buffer, theme == "daylight");
        for (file, content) in [
            (dir.join(format!("{name}.txt")), text),
            (dir.join(format!("{name}.svg")), image),
        ] {
            if write {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&file, &content).unwrap();
            } else if std::fs::read_to_string(&file).ok().as_deref() != Some(content.as_str()) {
                stale.push(file.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale screenshots (the console's render changed): {stale:?}; write them with \
         VEYRA_WRITE_SCREENSHOTS=1 cargo test --test console_snapshots screenshots, look at \
         them, and commit them"
    );
}

/// Every theme, at 80×24 (tabs) and 160×48, with each pane focused in turn and with each
/// overlay open: the focused frame really differs (thick line, and the focus colour), the
/// others keep the plain border colour, a failed task's `✗` is the error colour and a done
/// one's `✓` the ok colour, and a question's frame is the warning colour. The text of these
/// screens is in the snapshots above; this checks what colour says.
#[test]
fn every_theme_keeps_focus_and_meaning_in_its_styles_at_both_sizes() {
    use ratatui::layout::Rect;
    for name in veyra::config::theme::builtin_names() {
        for (width, height) in [(80u16, 24u16), (160, 48)] {
            let at = format!("theme {name} at {width}×{height}");
            for focus in Pane::ORDER {
                let mut app = showcase(name);
                let theme = Theme::from(app.current_theme().unwrap());
                app.show_pane(focus);
                let terminal = draw(&mut app, width, height);
                let buffer = terminal.backend().buffer();
                let areas = layout::Areas::for_app(&app, Rect::new(0, 0, width, height));
                let mut seen_focus = false;
                for (area, pane) in areas.places().into_iter().filter(|(a, _)| !a.is_empty()) {
                    let corner = &buffer[(area.x, area.y)];
                    if pane == focus {
                        seen_focus = true;
                        assert!(
                            ["┏", "━"].contains(&corner.symbol()),
                            "{at}: focused {pane:?} starts {:?}",
                            corner.symbol()
                        );
                        assert_eq!(
                            corner.fg,
                            fg(theme.border_focused),
                            "{at}: focused {pane:?}"
                        );
                    } else {
                        assert!(
                            ["┌", "─"].contains(&corner.symbol()),
                            "{at}: {pane:?} (focus on {focus:?}) starts {:?}",
                            corner.symbol()
                        );
                        assert_eq!(corner.fg, fg(theme.border), "{at}: {pane:?}");
                    }
                }
                assert!(seen_focus, "{at}: the focused {focus:?} is on the screen");
                if !areas.tasks.is_empty() {
                    // The showcase has a failed task and a done one.
                    assert_eq!(fg(style_of(&terminal, "✗ CRIT")), fg(theme.error), "{at}");
                    assert_eq!(fg(style_of(&terminal, "✓ HIGH")), fg(theme.ok), "{at}");
                }
            }
            // The overlays: help in the focus colour, the questions in the warning colour.
            let mut app = showcase(name);
            let theme = Theme::from(app.current_theme().unwrap());
            app.update(Action::Help);
            let terminal = draw(&mut app, width, height);
            let corner = style_of(&terminal, "╭ Help");
            assert_eq!(
                fg(corner),
                fg(theme.overlay.patch(theme.border_focused)),
                "{at}: help"
            );
            let mut app = showcase(name);
            app.update(Action::Quit);
            assert_eq!(app.overlay(), Some(&Overlay::ConfirmQuit { active: 2 }));
            let terminal = draw(&mut app, width, height);
            assert_eq!(
                fg(style_of(&terminal, "╔ Quit?")),
                fg(theme.overlay.patch(theme.warn)),
                "{at}: quit"
            );
            let mut app = showcase(name);
            ask_to_run_on_mock(&mut app, 9);
            app.settle_confirmation(tokio::time::Instant::now());
            let terminal = draw(&mut app, width, height);
            assert_eq!(
                fg(style_of(&terminal, "╔ Confirm")),
                fg(theme.overlay.patch(theme.warn)),
                "{at}: confirmation"
            );
        }
    }
}

/// A style's foreground as drawn (no colour set is the terminal's own).
fn fg(style: ratatui::style::Style) -> ratatui::style::Color {
    style.fg.unwrap_or(ratatui::style::Color::Reset)
}

/// The Mars link in the 2021 solar conjunction at 60×: one task waits it out (selected, no
/// output yet), one runs, one is queued.
fn blackout_app() -> App {
    let mut app = app();
    let sim = Utc.with_ymd_and_hms(2021, 10, 8, 0, 0, 0).unwrap();
    app.apply(Event::LinkChanged {
        link: LinkStatus {
            simulated: true,
            preset: "mars".into(),
            mode: "ephemeris".into(),
            one_way_ms: 1_336_000,
            one_way_min_ms: 186_000,
            one_way_max_ms: 1_338_000,
            sun_deg: Some(1.23),
            conjunction: "blackout".into(),
            time_scale: 60.0,
            sim_time: sim,
            taken_at: t0(),
            blackout_ends: Some(Utc.with_ymd_and_hms(2021, 10, 14, 0, 0, 0).unwrap()),
        },
        switched: false,
        at: t0(),
    });
    submit(&mut app, 1, "Ping the far-side relay", Priority::Normal, 0);
    state(
        &mut app,
        1,
        TaskStatus::Blackout {
            sim_ms: 518_400_000,
            real_ms: 8_640_000,
        },
        1,
        0,
    );
    submit(
        &mut app,
        2,
        "Summarise the habitat telemetry",
        Priority::High,
        0,
    );
    state(&mut app, 2, TaskStatus::Running, 1, 0);
    submit(
        &mut app,
        3,
        "Queued background sweep",
        Priority::Background,
        0,
    );
    app.select_task(0);
    app.clear_flash();
    // Five real minutes in: five simulated hours gone at 60×.
    app.tick(t0() + chrono::Duration::minutes(5));
    app
}

/// The status bar's row of a drawn screen.
fn status_row(terminal: &Terminal<TestBackend>) -> String {
    let screen = format!("{}", terminal.backend());
    screen
        .lines()
        .find(|l| l.contains("UTC"))
        .expect("a status bar")
        .to_string()
}

#[test]
fn the_status_bar_says_why_in_a_blackout_80x24() {
    let mut app = blackout_app();
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 80, 24);
    let bar = status_row(&terminal);
    // Short of room, the delay gives way and the alarm shortens; it never goes, and it is
    // in the error colour.
    assert!(
        bar.contains(" mock/veyra-mock-1 │ BLACKOUT · Sun 1.2° → 2021-10-14 (in 2h19m) "),
        "{bar}"
    );
    assert_eq!(style_of(&terminal, "BLACKOUT · Sun").fg, theme.error.fg);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn the_status_bar_says_why_in_a_blackout_160x48() {
    let mut app = blackout_app();
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 160, 48);
    let bar = status_row(&terminal);
    // The simulated date with its year, the Sun angle, the date the link reopens and the
    // real time until then.
    assert!(
        bar.contains(
            "mars ephemeris 22m16s ×60 sim 2021-10-08 05:00 BLACKOUT · Sun 1.2° · reopens \
             2021-10-14 (in 2h19m) │ audit"
        ),
        "{bar}"
    );
    assert_eq!(style_of(&terminal, "BLACKOUT · Sun").fg, theme.error.fg);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn the_output_of_a_task_in_blackout_says_what_it_waits_for_160x48() {
    let mut app = blackout_app();
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 160, 48);
    let waiting = "waiting out a solar conjunction: the Mars link reopens 2021-10-14 (in 2h19m)";
    assert!(
        format!("{}", terminal.backend()).contains(waiting),
        "{}",
        terminal.backend()
    );
    assert_eq!(style_of(&terminal, "waiting out").fg, theme.warn.fg);
    // The queued task says what it waits for too.
    app.select_task(2);
    let terminal = draw(&mut app, 160, 48);
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("queued for a slot (1 running)"), "{screen}");
}

/// An audit entry as the core records it: seq `n` of the given type and outcome.
fn audit_entry(app: &mut App, seq: u64, event_type: &str, outcome: &str) {
    app.apply(Event::AuditRecorded {
        seq,
        event_type: event_type.into(),
        actor: "operator".into(),
        action: "execute".into(),
        outcome: outcome.into(),
        hash: format!("{seq:x}").repeat(64),
        execution: None,
    });
}

/// The Audit pane keeps its rows by number and its selection on the entry the operator chose:
/// a burst arriving out of order (21, 23, 24, 22) lands above it in order, the window holds, the
/// title counts what is newer, and the selected row is highlighted.
#[test]
fn the_audit_selection_holds_while_a_burst_arrives_80x24() {
    let mut app = governed_app();
    for seq in 6..=20 {
        let outcome = if seq % 4 == 0 { "deny" } else { "success" };
        audit_entry(&mut app, seq, "EXECUTION", outcome);
    }
    app.show_pane(Pane::Audit);
    draw(&mut app, 80, 24);
    let key = |c| crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(c));
    app.handle_key(&key('j'));
    app.handle_key(&key('j'));
    for seq in [21, 23, 24, 22] {
        audit_entry(&mut app, seq, "EXECUTION", "success");
    }
    app.clear_flash();
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 80, 24);
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("↑ 4 newer (g: newest)"), "{screen}");
    assert!(
        !screen.contains("  24 "),
        "the burst is above the window: {screen}"
    );
    let selected = style_of(&terminal, "  18 ✓ EXECUTION");
    assert_eq!(
        (selected.fg, selected.bg),
        (theme.selection.fg, theme.selection.bg)
    );
    let other = style_of(&terminal, "  19 ✓ EXECUTION");
    assert_ne!(
        other.bg, theme.selection.bg,
        "only the selected row is highlighted"
    );
    insta::assert_snapshot!(terminal.backend());
    assert_eq!(
        app.update(Action::Open),
        vec![veyra::tui::app::Command::OpenAuditEntry(18)]
    );
}

/// The Safety pane highlights its selected violation (wrapped whole) and keeps it as new ones
/// arrive above.
#[test]
fn the_safety_selection_is_highlighted_and_held_160x48() {
    let mut app = governed_app();
    app.show_pane(Pane::Safety);
    draw(&mut app, 160, 48);
    app.handle_key(&crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('j'),
    ));
    app.apply(Event::SafetyViolation {
        id: Some(id(3)),
        operation: "tool:file_delete".into(),
        level: "blocked".into(),
        rule: "tool_confirmation".into(),
        reason: "'tool:file_delete' needs confirmation and was denied (operator)".into(),
        actor: "agent".into(),
        at: t0() + chrono::Duration::seconds(11),
    });
    app.clear_flash();
    let theme = Theme::from(app.current_theme().unwrap());
    let terminal = draw(&mut app, 160, 48);
    let selected = style_of(&terminal, "12:00:09 ⊘ execute backend:mock");
    assert_eq!(
        (selected.fg, selected.bg),
        (theme.selection.fg, theme.selection.bg)
    );
    // Its wrapped rows are highlighted too; the newer rows are not.
    let wrapped = style_of(&terminal, "work from off-world");
    assert_eq!(wrapped.bg, theme.selection.bg);
    assert_ne!(
        style_of(&terminal, "12:00:11 ⊘ tool:file_delete").bg,
        theme.selection.bg
    );
    insta::assert_snapshot!(terminal.backend());
}

/// A task failed with an error too long for three rows: every row of it shows under the text,
/// at 80×24 and at 120×40, ending with its last words.
#[test]
fn a_long_error_shows_whole_80x24_and_120x40() {
    let mut app = app();
    submit(
        &mut app,
        1,
        "Summarise the habitat telemetry",
        Priority::Normal,
        0,
    );
    state(&mut app, 1, TaskStatus::Running, 1, 0);
    app.apply(Event::OutputDelta {
        id: id(1),
        text: "Telemetry summary follows.\n".into(),
    });
    state(
        &mut app,
        1,
        TaskStatus::Failed {
            error: "backend 'openai' (unreachable): error sending request for url \
                    (http://127.0.0.1:9/v1/chat/completions): client error (Connect): tcp \
                    connect error: Connection refused (os error 111) (is the server at \
                    http://127.0.0.1:9 running? Start it, or set model.base_url to where it \
                    listens)"
                .into(),
            kind: "unreachable".into(),
            not_retried: None,
        },
        1,
        2,
    );
    app.clear_flash();
    let theme = Theme::from(app.current_theme().unwrap());
    for (width, height) in [(80, 24), (120, 40)] {
        let terminal = draw(&mut app, width, height);
        let screen = format!("{}", terminal.backend());
        assert!(screen.contains("to where it"), "{screen}");
        assert!(screen.contains("listens)"), "{screen}");
        assert_eq!(style_of(&terminal, "listens)").fg, theme.error.fg);
        insta::assert_snapshot!(
            format!("a_long_error_shows_whole_{width}x{height}"),
            terminal.backend()
        );
    }
}

/// An audit entry's detail at 80×24 is longer than the screen: it opens at its top with the
/// footer on its last row, scrolls to the inclusion proof with the usual keys, and `j` does
/// not close it.
#[test]
fn an_audit_entry_detail_scrolls_80x24() {
    let mut app = governed_app();
    let mut lines: Vec<String> = [
        "seq        5",
        "time       2026-11-26T12:00:10+00:00",
        "type       SAFETY_VIOLATION",
        "actor      operator",
        "action     execute:openai",
        "resource   backend:openai",
        "outcome    refused",
        "input      hash:3f2a9c01:len:24",
        "prev hash  4444444444444444444444444444444444444444444444444444444444444444",
        "hash       5555555555555555555555555555555555555555555555555555555555555555",
        "metadata",
        "  {",
        "    \"rule\": \"prohibited_operations\",",
        "    \"tool_calls\": [",
        "      {",
        "        \"name\": \"shell\",",
        "        \"arguments\": \"{\\\"command\\\":\\\"rm -rf /data/archive\\\"}\"",
        "      }",
        "    ]",
        "  }",
        "inclusion  proved in a tree of 5 entries, head 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "  against the log as verified in full at 2026-11-26 12:00:11 UTC",
        "  leaf 5555555555555555555555555555555555555555555555555555555555555555",
        "  path 4444444444444444444444444444444444444444444444444444444444444444",
        "  path 3333333333333333333333333333333333333333333333333333333333333333",
    ]
    .map(String::from)
    .to_vec();
    lines.push("  path 2222222222222222222222222222222222222222222222222222222222222222".into());
    app.show_detail("Audit entry 5".into(), lines);
    let terminal = draw(&mut app, 80, 24);
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("Esc closes"), "{screen}");
    insta::assert_snapshot!("an_audit_entry_detail_80x24_top", terminal.backend());
    let key = |c| crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(c));
    app.handle_key(&key('j'));
    assert!(app.overlay().is_some(), "j scrolls, it does not close");
    app.handle_key(&key('G'));
    let terminal = draw(&mut app, 80, 24);
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("path 2222"), "{screen}");
    assert!(screen.contains("Esc closes"), "{screen}");
    insta::assert_snapshot!("an_audit_entry_detail_80x24_end", terminal.backend());
}

/// At the smallest screen the confirmation modal wraps its text within the screen rather than
/// cutting it at the edge.
#[test]
fn confirmation_modal_wraps_at_60x16() {
    let mut app = governed_app();
    for request in [1, 2] {
        ask_to_run_on_mock(&mut app, request);
    }
    app.settle_confirmation(tokio::time::Instant::now());
    let terminal = draw(&mut app, 60, 16);
    let screen = format!("{}", terminal.backend());
    for needle in [
        "governance.require_confirmation",
        "ignored for 0.4 s at",
        "1 more waiting",
    ] {
        assert!(screen.contains(needle), "{needle}:\n{screen}");
    }
    insta::assert_snapshot!(terminal.backend());
}

/// `/` filters as it is typed: the list shows what matches before Enter.
#[test]
fn a_filter_applies_as_it_is_typed_80x24() {
    let mut app = governed_app();
    app.show_pane(Pane::Tasks);
    app.handle_key(&crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('/'),
    ));
    for c in "ante".chars() {
        app.handle_key(&crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Char(c),
        ));
    }
    app.clear_flash();
    let terminal = draw(&mut app, 80, 24);
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("Rotate the antenna"), "{screen}");
    assert!(!screen.contains("Queued background sweep"), "{screen}");
    insta::assert_snapshot!(terminal.backend());
}

/// A vertical border glyph on the screen is part of a box (the cell above or below it carries
/// the line on: a side or a corner) or a separator between two words of the status bar, and a
/// corner has its side (a bottom corner the side above it, a top corner the side below): no
/// other `│` may dangle, nor a frame's lone edge be left beside an overlay.
fn dangling_borders(terminal: &Terminal<TestBackend>) -> Vec<(u16, u16)> {
    let buffer = terminal.backend().buffer();
    let area = buffer.area;
    let at = |x: i32, y: i32| -> &str {
        match (u16::try_from(x), u16::try_from(y)) {
            (Ok(x), Ok(y)) if x < area.width && y < area.height => buffer[(x, y)].symbol(),
            _ => " ",
        }
    };
    let carries = |s: &str| "│┃║┌┐└┘┏┓┗┛╔╗╚╝╭╮╰╯├┤".contains(s) && s != " ";
    let mut found = Vec::new();
    for y in 0..i32::from(area.height) {
        for x in 0..i32::from(area.width) {
            let side = |s: &str| "│┃║".contains(s) && s != " ";
            if "└┘┗┛╰╯╚╝".contains(at(x, y)) && at(x, y) != " " && !side(at(x, y - 1))
                || "┌┐┏┓╭╮╔╗".contains(at(x, y)) && at(x, y) != " " && !side(at(x, y + 1))
            {
                found.extend(u16::try_from(x).ok().zip(u16::try_from(y).ok()));
                continue;
            }
            if !["│", "┃", "║"].contains(&at(x, y)) {
                continue;
            }
            let boxed = carries(at(x, y - 1)) || carries(at(x, y + 1));
            let separator = at(x - 1, y) == " "
                && at(x + 1, y) == " "
                && at(x - 2, y) != " "
                && at(x + 2, y) != " ";
            if !boxed && !separator {
                found.extend(u16::try_from(x).ok().zip(u16::try_from(y).ok()));
            }
        }
    }
    found
}

/// No border glyph dangles at 80 columns, whatever is on the screen: each tab, focused or
/// under the Prompt, zoomed, with the help, a detail, a confirmation, a filter or the command
/// line open, and with a message in the status bar.
#[test]
fn no_border_dangles_at_80_columns() {
    use crossterm::event::{KeyCode, KeyEvent};
    let press = |app: &mut App, code: KeyCode| {
        app.handle_key(&KeyEvent::from(code));
    };
    let states: [fn(&mut App); 9] = [
        |_| {},
        |app| app.update(Action::Zoom).truncate(0),
        |app| app.update(Action::Help).truncate(0),
        |app| {
            app.update(Action::Help);
            app.update(Action::FocusNext);
        },
        |app| {
            let lines = (0..40)
                .map(|i| {
                    format!("line {i} of a detail long enough to wrap at eighty columns, with more")
                })
                .collect();
            app.show_detail("Audit entry 5".into(), lines);
        },
        |app| {
            ask_to_run_on_mock(app, 1);
            app.settle_confirmation(tokio::time::Instant::now());
        },
        |app| {
            app.update(Action::Filter);
            for c in "mock".chars() {
                app.handle_key(&KeyEvent::from(KeyCode::Char(c)));
            }
        },
        |app| app.update(Action::CommandLine).truncate(0),
        |app| {
            app.flash(
                "task 1a2b3c4d failed: backend 'mock' (overloaded): relay orbiter overloaded",
                veyra::tui::app::FlashLevel::Error,
            )
        },
    ];
    for height in [24, 40] {
        for pane in Pane::ORDER {
            for (i, state) in states.iter().enumerate() {
                for (make, under_prompt) in [governed_app, link_app, blackout_app]
                    .into_iter()
                    .flat_map(|make| [(make, false), (make, true)])
                {
                    let mut app = make();
                    app.show_pane(pane);
                    if under_prompt {
                        // The same tab shown while the Prompt has the focus.
                        press(&mut app, KeyCode::Char('i'));
                        press(&mut app, KeyCode::Esc);
                    }
                    state(&mut app);
                    let terminal = draw(&mut app, 80, height);
                    let found = dangling_borders(&terminal);
                    assert!(
                        found.is_empty(),
                        "{pane:?} (under the Prompt: {under_prompt}), state {i}, 80×{height}: \
                         a border dangles at {found:?}:\n{}",
                        terminal.backend()
                    );
                }
            }
        }
    }
}

/// What another process sends (an attached runtime, a fleet worker's status) may carry any
/// figure: dates at the ends of chrono's range, delays of u64::MAX. The console draws them
/// (saturated), never panics.
#[test]
fn figures_at_the_ends_of_their_range_never_panic_the_console() {
    use chrono::{DateTime, TimeZone};
    for (sim_time, time_scale) in [
        (DateTime::<Utc>::MAX_UTC, 1_000_000.0),
        (DateTime::<Utc>::MIN_UTC, 1_000_000.0),
        (
            Utc.with_ymd_and_hms(262_000, 12, 31, 0, 0, 0).unwrap(),
            1e300,
        ),
    ] {
        let mut app = app();
        app.apply(Event::LinkChanged {
            link: LinkStatus {
                simulated: true,
                preset: "mars".into(),
                mode: "ephemeris".into(),
                one_way_ms: u64::MAX,
                one_way_min_ms: u64::MAX,
                one_way_max_ms: u64::MAX,
                sun_deg: Some(f64::MAX),
                conjunction: "blackout".into(),
                time_scale,
                sim_time,
                taken_at: DateTime::<Utc>::MIN_UTC,
                blackout_ends: Some(DateTime::<Utc>::MAX_UTC),
            },
            switched: true,
            at: t0(),
        });
        submit(&mut app, 1, "Wait out the conjunction", Priority::High, 0);
        for status in [
            TaskStatus::Blackout {
                sim_ms: u64::MAX,
                real_ms: u64::MAX,
            },
            TaskStatus::Uplink {
                sim_ms: u64::MAX,
                real_ms: u64::MAX,
            },
            TaskStatus::Retrying {
                delay_ms: u64::MAX,
                error: "x".into(),
            },
        ] {
            state(&mut app, 1, status, u32::MAX, 0);
            app.tick(DateTime::<Utc>::MAX_UTC);
            for (w, h) in [(80, 24), (160, 48)] {
                let _ = draw(&mut app, w, h);
            }
            app.tick(t0());
            let _ = draw(&mut app, 80, 24);
        }
    }
}
