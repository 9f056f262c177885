use chrono::TimeZone;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use uuid::Uuid;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn app() -> App {
    let link = LinkView {
        backend: "mock".into(),
        model: "veyra-mock-1".into(),
        link: crate::events::LinkStatus {
            simulated: false,
            preset: "earth".into(),
            mode: "uniform".into(),
            one_way_ms: 150,
            conjunction: "clear".into(),
            time_scale: 1.0,
            sim_time: now(),
            taken_at: now(),
        },
    };
    App::new(link, true, KeyMap::default(), Vec::new(), now())
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn named(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn submitted(n: u128) -> Event {
    Event::TaskSubmitted {
        id: ExecutionId(Uuid::from_u128(n)),
        kind: "execute".into(),
        title: format!("task {n}"),
        priority: Priority::Normal,
        backend: Some("mock".into()),
        model: Some("m".into()),
        at: now(),
    }
}

fn state(n: u128, status: TaskStatus, attempt: u32, at: DateTime<Utc>) -> Event {
    Event::TaskState {
        id: ExecutionId(Uuid::from_u128(n)),
        status,
        attempt,
        at,
    }
}

#[test]
fn typing_and_enter_submit_at_the_chosen_priority() {
    let mut app = app();
    assert!(app.handle_key(&key('i')).is_empty());
    assert!(app.editing);
    for c in "hi there".chars() {
        app.handle_key(&key(c));
    }
    app.handle_key(&KeyEvent::new(KeyCode::Char('p'), KeyModifiers::CONTROL));
    assert_eq!(app.priority, Priority::Low);
    // While typing, 'q' is text, not quit.
    app.handle_key(&key('q'));
    app.handle_key(&named(KeyCode::Backspace));
    let commands = app.handle_key(&named(KeyCode::Enter));
    assert_eq!(
        commands,
        vec![Command::Submit {
            prompt: "hi there".into(),
            priority: Priority::Low
        }]
    );
    assert!(app.input.text.is_empty());
    assert!(app.editing, "stays in editing for the next prompt");
    app.handle_key(&named(KeyCode::Esc));
    assert!(!app.editing);
}

#[test]
fn an_empty_prompt_is_not_sent() {
    let mut app = app();
    app.handle_key(&key('i'));
    assert!(app.handle_key(&named(KeyCode::Enter)).is_empty());
    assert_eq!(app.flash.as_ref().unwrap().level, FlashLevel::Error);
}

#[test]
fn cursor_editing_handles_multibyte_text() {
    let mut app = app();
    app.handle_key(&key('i'));
    for c in "héllo".chars() {
        app.handle_key(&key(c));
    }
    app.handle_key(&named(KeyCode::Left));
    app.handle_key(&named(KeyCode::Left));
    app.handle_key(&named(KeyCode::Backspace));
    assert_eq!(app.input.text, "hélo");
    app.handle_key(&KeyEvent::new(KeyCode::Char('w'), KeyModifiers::CONTROL));
    assert_eq!(app.input.text, "lo");
    app.handle_key(&KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    assert_eq!(app.input, InputLine::default());
}

#[test]
fn quitting_asks_while_tasks_are_active() {
    let mut app = app();
    app.apply(submitted(1));
    assert!(app.handle_key(&key('q')).is_empty());
    assert_eq!(app.overlay, Some(Overlay::ConfirmQuit { active: 1 }));
    app.handle_key(&key('n'));
    assert_eq!(app.overlay, None);
    assert!(!app.quit);
    app.handle_key(&key('q'));
    assert_eq!(app.handle_key(&key('y')), vec![Command::Quit]);
    assert!(app.quit);

    let mut idle = super::tests::app();
    assert_eq!(idle.handle_key(&key('q')), vec![Command::Quit]);
}

#[test]
fn tab_cycles_focus_both_ways() {
    let mut app = app();
    assert_eq!(app.focus, Pane::Prompt);
    app.handle_key(&named(KeyCode::Tab));
    assert_eq!(app.focus, Pane::Tasks);
    app.handle_key(&named(KeyCode::BackTab));
    assert_eq!(app.focus, Pane::Prompt);
}

#[test]
fn events_fold_into_tasks() {
    let mut app = app();
    let id = ExecutionId(Uuid::from_u128(7));
    app.apply(submitted(7));
    app.apply(state(7, TaskStatus::Running, 1, now()));
    app.apply(Event::OutputDelta {
        id,
        text: "one\ntw".into(),
    });
    app.apply(Event::OutputDelta {
        id,
        text: "o".into(),
    });
    app.apply(Event::AuditRecorded {
        seq: 1,
        event_type: "EXECUTION".into(),
        actor: "operator".into(),
        action: "execute".into(),
        outcome: "success".into(),
        hash: "ab".repeat(32),
        execution: Some(id),
    });
    app.apply(Event::ExecutionFinished {
        id,
        usage: TokenUsage {
            input: 1,
            output: 2,
        },
        finish_reason: FinishReason::Stop,
        latency_ms: 5,
        at: now() + chrono::Duration::seconds(2),
    });
    app.apply(state(
        7,
        TaskStatus::Succeeded,
        1,
        now() + chrono::Duration::seconds(2),
    ));
    let t = &app.tasks[0];
    assert_eq!(t.status, TaskStatus::Succeeded);
    assert_eq!(t.output.line(1), Some("two"));
    assert_eq!(
        t.elapsed(now() + chrono::Duration::hours(1)),
        chrono::Duration::seconds(2)
    );
    assert_eq!(app.audit.entries, 1);
    // Unknown ids are ignored, not a panic.
    app.apply(Event::OutputDelta {
        id: ExecutionId(Uuid::from_u128(99)),
        text: "x".into(),
    });
}

#[test]
fn selection_follows_new_tasks_until_the_operator_moves() {
    let mut app = app();
    app.tasks_rows = 10;
    for n in 0..3 {
        app.apply(submitted(n));
    }
    assert_eq!(app.selected, Some(2));
    app.handle_key(&named(KeyCode::Tab)); // Tasks
    app.handle_key(&key('k'));
    assert_eq!(app.selected, Some(1));
    assert!(!app.follow);
    app.apply(submitted(3));
    assert_eq!(
        app.selected,
        Some(1),
        "a new task does not steal the selection"
    );
    app.handle_key(&key('f'));
    assert!(app.follow);
    assert_eq!(app.selected, Some(3));
    app.handle_key(&key('g'));
    assert_eq!(app.selected, Some(0));
}

#[test]
fn output_scrolls_and_returns_to_the_live_tail() {
    let mut app = app();
    let id = ExecutionId(Uuid::from_u128(1));
    app.apply(submitted(1));
    for i in 0..50 {
        app.apply(Event::OutputDelta {
            id,
            text: format!("line {i}\n"),
        });
    }
    app.output_size = (40, 10);
    app.focus = Pane::Output;
    app.handle_key(&key('k'));
    assert!(app.output_anchor.is_some());
    assert!(!app.follow);
    app.handle_key(&key('j'));
    assert_eq!(
        app.output_anchor, None,
        "back at the bottom means live again"
    );
    app.handle_key(&key('g'));
    assert_eq!(app.output_anchor, Some(Anchor { line: 0, row: 0 }));
}

#[test]
fn verify_key_asks_the_core_and_shows_progress() {
    let mut app = app();
    assert_eq!(app.handle_key(&key('v')), vec![Command::VerifyAudit]);
    assert_eq!(app.audit.verification, Verification::Running);
    app.apply(Event::AuditVerified {
        entries: 3,
        failure: Some("entry #1 (seq 2): content changed".into()),
        duration_ms: 1,
        at: now(),
    });
    assert!(matches!(
        app.audit.verification,
        Verification::Failed { .. }
    ));
}

#[test]
fn help_opens_and_any_key_closes_it() {
    let mut app = app();
    app.handle_key(&key('?'));
    assert_eq!(app.overlay, Some(Overlay::Help));
    app.handle_key(&key('x'));
    assert_eq!(app.overlay, None);
}

#[test]
fn countdowns_run_in_simulated_time() {
    let mut app = app();
    app.apply(submitted(1));
    app.apply(state(
        1,
        TaskStatus::Uplink {
            sim_ms: 600_000,
            real_ms: 10_000,
        },
        1,
        now(),
    ));
    let t = &app.tasks[0];
    assert_eq!(
        t.countdown(now()),
        Some(std::time::Duration::from_secs(600))
    );
    // 5 real seconds at 60×: five simulated minutes gone.
    assert_eq!(
        t.countdown(now() + chrono::Duration::seconds(5)),
        Some(std::time::Duration::from_secs(300))
    );
    assert_eq!(
        t.countdown(now() + chrono::Duration::seconds(50)),
        Some(std::time::Duration::ZERO)
    );
}

#[test]
fn c_cancels_the_selected_task_and_digits_switch_the_link() {
    let mut app = app();
    app.apply(submitted(1));
    assert_eq!(
        app.handle_key(&key('c')),
        vec![Command::Cancel(ExecutionId(Uuid::from_u128(1)))]
    );
    app.apply(state(
        1,
        TaskStatus::Cancelled {
            reason: "operator".into(),
        },
        0,
        now(),
    ));
    assert!(app.handle_key(&key('c')).is_empty());
    assert!(app.flash.as_ref().unwrap().text.contains("already ended"));
    assert_eq!(
        app.handle_key(&key('3')),
        vec![Command::SetPreset(LatencyPreset::Mars)]
    );
    assert_eq!(
        app.handle_key(&key('4')),
        vec![Command::SetPreset(LatencyPreset::DeepSpace)]
    );
}

#[test]
fn a_retry_marks_the_output_with_the_new_attempt() {
    let mut app = app();
    let id = ExecutionId(Uuid::from_u128(1));
    app.apply(submitted(1));
    app.apply(state(1, TaskStatus::Running, 1, now()));
    app.apply(Event::OutputDelta {
        id,
        text: "partial".into(),
    });
    app.apply(state(
        1,
        TaskStatus::Retrying {
            delay_ms: 500,
            error: "overloaded".into(),
        },
        1,
        now(),
    ));
    app.apply(state(1, TaskStatus::Running, 2, now()));
    let t = &app.tasks[0];
    assert_eq!(t.output.line(1), Some("── attempt 2 ──"));
    assert_eq!(t.attempt, 2);
}

#[test]
fn a_confirmation_takes_the_next_yes_or_no_even_while_typing() {
    let mut app = app();
    app.handle_key(&key('i'));
    let id = ExecutionId(Uuid::from_u128(1));
    for request in [7, 8] {
        app.apply(Event::ConfirmationRequested {
            request,
            id,
            operation: "execute:mock".into(),
            reason: "needs confirmation".into(),
        });
    }
    assert_eq!(app.mode(), Mode::Question);
    assert_eq!(
        app.handle_key(&key('y')),
        vec![Command::Answer {
            request: 7,
            allowed: true
        }]
    );
    assert_eq!(
        app.handle_key(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        vec![Command::Answer {
            request: 8,
            allowed: false
        }],
        "Ctrl-C denies"
    );
    assert_eq!(app.mode(), Mode::Editing, "back to typing");
    app.apply(Event::ConfirmationRequested {
        request: 9,
        id,
        operation: "execute:mock".into(),
        reason: "r".into(),
    });
    app.apply(Event::ConfirmationAnswered {
        request: 9,
        id,
        allowed: true,
        by: "--yes".into(),
    });
    assert!(app.confirmations.is_empty());
}

#[test]
fn violations_and_audit_entries_are_kept_for_their_panes() {
    let mut app = app();
    app.apply(Event::SafetyViolation {
        id: None,
        operation: "delete_all".into(),
        level: "blocked".into(),
        rule: "prohibited_operations".into(),
        reason: "'delete_all' is in governance.prohibited_operations".into(),
        actor: "agent".into(),
        at: now(),
    });
    assert_eq!((app.violation_count, app.violations.len()), (1, 1));
    assert!(
        app.flash
            .as_ref()
            .unwrap()
            .text
            .starts_with("blocked: delete_all")
    );
    app.apply(Event::AuditVerified {
        entries: 3,
        failure: None,
        duration_ms: 2,
        at: now(),
    });
    assert!(matches!(
        app.audit.verification,
        Verification::Verified { entries: 3, .. }
    ));
}

#[test]
fn the_command_line_runs_commands_and_explains_mistakes() {
    let mut app = app();
    app.handle_key(&key(':'));
    assert_eq!(app.mode(), Mode::Command);
    for c in "preset mars".chars() {
        app.handle_key(&key(c));
    }
    assert_eq!(
        app.handle_key(&named(KeyCode::Enter)),
        vec![Command::SetPreset(LatencyPreset::Mars)]
    );
    assert_eq!(app.mode(), Mode::Normal);
    assert!(app.run_command("priority high").is_empty());
    assert_eq!(app.priority, Priority::High);
    assert_eq!(app.run_command("verify"), vec![Command::VerifyAudit]);
    assert!(app.run_command("prest mars").is_empty());
    assert!(
        app.flash
            .as_ref()
            .unwrap()
            .text
            .contains("did you mean 'preset'?")
    );
    assert!(app.run_command("preset venus").is_empty());
    assert!(app.flash.as_ref().unwrap().text.contains("presets: earth"));
    app.handle_key(&key(':'));
    app.handle_key(&named(KeyCode::Esc));
    assert_eq!(app.mode(), Mode::Normal);
}

#[test]
fn the_backend_command_switches_backend_and_model() {
    let mut app = app();
    assert_eq!(
        app.run_command("backend openai gpt-4o-mini"),
        vec![Command::SetBackend {
            backend: "openai".into(),
            model: Some("gpt-4o-mini".into()),
        }]
    );
    assert!(app.run_command("backend").is_empty());
    assert!(
        app.flash
            .as_ref()
            .unwrap()
            .text
            .contains(":backend needs a name")
    );
    app.apply(Event::BackendChanged {
        backend: "openai".into(),
        model: "gpt-4o-mini".into(),
        at: Utc::now(),
    });
    assert_eq!(
        (app.link.backend.as_str(), app.link.model.as_str()),
        ("openai", "gpt-4o-mini")
    );
}
