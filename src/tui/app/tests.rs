use crate::events::ConfirmScope;
use crate::events::TokenUsage;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use uuid::Uuid;

use super::*;

// Other modules' tests reach the console fixtures through here too.
pub(crate) use crate::tui::testing::{app, now};

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn named(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub(crate) fn submitted(n: u128) -> Event {
    Event::TaskSubmitted {
        id: ExecutionId(Uuid::from_u128(n)),
        kind: "execute".into(),
        title: format!("task {n}"),
        priority: Priority::Normal,
        backend: Some("mock".into()),
        model: Some("m".into()),
        actor: Some("operator".into()),
        at: now(),
    }
}

pub(crate) fn state(n: u128, status: TaskStatus, attempt: u32, at: DateTime<Utc>) -> Event {
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
    // Ctrl-P raises the priority first: one press from `normal` is `high`.
    app.handle_key(&KeyEvent::new(KeyCode::Char('p'), KeyModifiers::CONTROL));
    assert_eq!(app.priority, Priority::High);
    // While typing, 'q' is text, not quit.
    app.handle_key(&key('q'));
    app.handle_key(&named(KeyCode::Backspace));
    let commands = app.handle_key(&named(KeyCode::Enter));
    assert_eq!(
        commands,
        vec![Command::Submit {
            prompt: "hi there".into(),
            priority: Priority::High
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

    // An attached console's runtime keeps its tasks: nothing to warn of, q quits.
    let mut attached = super::tests::app();
    attached.set_attached(true);
    attached.apply(submitted(1));
    assert_eq!(attached.handle_key(&key('q')), vec![Command::Quit]);
    assert_eq!(attached.overlay, None);
}

#[test]
fn the_quit_question_follows_the_work_and_quits_once_nothing_is_left() {
    let mut app = app();
    app.apply(submitted(1));
    app.apply(submitted(2));
    app.handle_key(&key('q'));
    assert_eq!(app.overlay, Some(Overlay::ConfirmQuit { active: 2 }));
    // One ends: the question says so.
    app.apply(state(1, TaskStatus::Succeeded, 1, now()));
    assert_eq!(app.overlay, Some(Overlay::ConfirmQuit { active: 1 }));
    assert!(!app.quit);
    // The last ends: nothing is left to cancel, so the operator's q stands.
    app.apply(state(2, TaskStatus::Succeeded, 1, now()));
    assert_eq!(app.overlay, None);
    assert!(app.quit);
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
fn an_execution_submitted_again_starts_its_row_anew_and_keeps_one() {
    // A fleet task whose worker was lost is taken over by another, under the same id.
    let mut app = app();
    app.apply(submitted(7));
    app.apply(state(7, TaskStatus::Running, 1, now()));
    app.apply(submitted(8));
    app.apply(submitted(7));
    assert_eq!(app.tasks.len(), 2);
    assert_eq!(app.tasks[0].id, ExecutionId(Uuid::from_u128(7)));
    assert_ne!(
        app.tasks[0].status,
        TaskStatus::Running,
        "the new attempt's row"
    );
    app.apply(state(7, TaskStatus::Succeeded, 2, now()));
    assert_eq!(app.tasks[0].status, TaskStatus::Succeeded);
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
fn over_a_fleet_the_verify_key_asks_every_worker_rather_than_say_audit_is_off() {
    let mut app = app();
    app.audit.enabled = false;
    app.handle_key(&key('v'));
    assert!(
        app.flash
            .as_ref()
            .is_some_and(|f| f.text.contains("audit is off"))
    );
    app.set_fleet(&[]);
    assert_eq!(app.handle_key(&key('v')), vec![Command::VerifyAudit]);
    assert!(
        app.flash
            .as_ref()
            .is_some_and(|f| f.text.contains("every worker")),
        "{:?}",
        app.flash
    );
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

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn confirmation(request: u64) -> Event {
    Event::ConfirmationRequested {
        request,
        id: ExecutionId(Uuid::from_u128(1)),
        operation: "execute:mock".into(),
        reason: "'execute:mock' is in governance.require_confirmation".into(),
        detail: None,
        scopable: false,
    }
}

#[test]
fn a_confirmation_over_a_detail_view_takes_its_answer_and_the_view_stays() {
    let t0 = tokio::time::Instant::now();
    let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
    let mut app = app();
    app.show_detail("Task 1".into(), vec!["line".into()]);
    app.apply(confirmation(9));
    app.settle_confirmation(at(0));
    assert_eq!(app.mode(), Mode::Question);
    assert_eq!(
        app.handle_key_at(&key('n'), at(1000)),
        vec![Command::Answer {
            request: 9,
            allowed: false,
            scope: ConfirmScope::Once,
        }]
    );
    assert!(
        matches!(app.overlay, Some(Overlay::Detail { .. })),
        "the view is still open under it"
    );
    // Then its own keys again: Esc closes it.
    app.handle_key_at(&named(KeyCode::Esc), at(1100));
    assert_eq!(app.overlay, None);
}

#[test]
fn keys_typed_as_prompt_text_never_answer_a_confirmation() {
    let t0 = tokio::time::Instant::now();
    let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
    let mut app = app();
    app.handle_key_at(&key('i'), at(0));
    for c in "wh".chars() {
        app.handle_key_at(&key(c), at(10));
    }
    app.apply(confirmation(7));
    app.settle_confirmation(at(20));
    assert!(app.bell, "the request rings the bell");
    assert!(
        app.confirm.is_none(),
        "no modal under the operator's fingers"
    );
    assert_eq!(app.mode(), Mode::Editing);
    let flash = app
        .flash
        .as_ref()
        .map(|f| f.text.clone())
        .unwrap_or_default();
    assert!(flash.contains("confirmation waiting"), "{flash}");
    // The operator keeps typing: "why yes no" goes into the prompt, nothing is answered.
    for (i, c) in "y yes no nnn yyy".chars().enumerate() {
        let commands = app.handle_key_at(&key(c), at(30 + i as u64));
        assert!(
            commands.is_empty(),
            "{c:?} answered something: {commands:?}"
        );
    }
    assert_eq!(app.input.text, "why yes no nnn yyy");
    assert_eq!(app.confirmations.len(), 1, "still waiting");

    // Esc leaves the prompt: the modal opens, and keys within the guard are ignored.
    assert!(app.handle_key_at(&named(KeyCode::Esc), at(1000)).is_empty());
    assert_eq!(app.mode(), Mode::Question);
    assert_eq!(app.open_confirmation().map(|c| c.request), Some(7));
    for ms in [1000, 1100, 1399] {
        assert!(app.handle_key_at(&key('y'), at(ms)).is_empty(), "{ms} ms");
    }
    assert_eq!(
        app.confirmations.len(),
        1,
        "still waiting after the guard keys"
    );
    assert_eq!(
        app.handle_key_at(&key('y'), at(1400)),
        vec![Command::Answer {
            request: 7,
            allowed: true,
            scope: ConfirmScope::Once,
        }]
    );
    assert!(app.confirm.is_none() && app.confirmations.is_empty());
    assert_eq!(app.input.text, "why yes no nnn yyy", "the draft is kept");
}

#[test]
fn each_waiting_confirmation_gets_its_own_guard_and_ctrl_c_denies() {
    let t0 = tokio::time::Instant::now();
    let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
    let mut app = app();
    app.apply(confirmation(7));
    app.apply(confirmation(8));
    app.settle_confirmation(at(0));
    assert_eq!(
        app.mode(),
        Mode::Question,
        "not typing: the modal opens at once"
    );
    assert!(
        app.handle_key_at(&key('n'), at(100)).is_empty(),
        "within the guard"
    );
    assert_eq!(
        app.handle_key_at(&key('n'), at(500)),
        vec![Command::Answer {
            request: 7,
            allowed: false,
            scope: ConfirmScope::Once,
        }]
    );
    // A double tap cannot answer the next one.
    assert!(app.handle_key_at(&key('n'), at(520)).is_empty());
    assert_eq!(
        app.handle_key_at(&ctrl('c'), at(1000)),
        vec![Command::Answer {
            request: 8,
            allowed: false,
            scope: ConfirmScope::Once,
        }],
        "Ctrl-C denies"
    );
    assert_eq!(app.mode(), Mode::Normal);

    // Answered elsewhere: the modal closes by itself.
    app.apply(confirmation(9));
    app.settle_confirmation(at(2000));
    assert!(app.confirm.is_some());
    app.apply(Event::ConfirmationAnswered {
        request: 9,
        id: ExecutionId(Uuid::from_u128(1)),
        allowed: true,
        by: "--yes".into(),
        scope: crate::events::ConfirmScope::Once,
    });
    app.settle_confirmation(at(2001));
    assert!(app.confirm.is_none() && app.confirmations.is_empty());
}

#[test]
fn ctrl_c_clears_a_draft_and_quits_on_an_empty_prompt() {
    let mut app = app();
    app.handle_key(&key('i'));
    for c in "half a thought".chars() {
        app.handle_key(&key(c));
    }
    assert!(app.handle_key(&ctrl('c')).is_empty());
    assert_eq!(app.input.text, "");
    assert!(!app.quit, "the draft went, the console stays");
    assert_eq!(app.handle_key(&ctrl('c')), vec![Command::Quit]);
    assert!(app.quit);
}

#[test]
fn untrusted_text_enters_the_view_sanitized() {
    let mut app = app();
    app.apply(Event::TaskSubmitted {
        id: ExecutionId(Uuid::from_u128(1)),
        kind: "execute".into(),
        title: "hi \u{1b}]0;PWNED\u{7}\u{202e}".into(),
        priority: Priority::Normal,
        backend: Some("mock\u{9b}".into()),
        model: None,
        actor: None,
        at: now(),
    });
    app.apply(Event::OutputDelta {
        id: ExecutionId(Uuid::from_u128(1)),
        text: "a\u{1b}[2Jb\nline two".into(),
    });
    app.apply(state(
        1,
        TaskStatus::Failed {
            error: "HTTP 400: \u{1b}[31mred".into(),
            kind: "bad_request".into(),
            not_retried: None,
        },
        1,
        now(),
    ));
    let t = &app.tasks[0];
    assert_eq!(t.title, "hi ␛]0;PWNED␇<U+202E>");
    assert_eq!(t.backend, "mock<U+009B>");
    assert_eq!(t.output.line(0), Some("a␛[2Jb"));
    let flash = app
        .flash
        .as_ref()
        .map(|f| f.text.clone())
        .unwrap_or_default();
    assert!(
        flash.contains("␛[31mred") && !flash.contains('\u{1b}'),
        "{flash}"
    );
    app.handle_key(&key('i'));
    app.paste("x\u{1b}[2J\u{9b}\ny");
    assert_eq!(app.input.text, "x␛[2J<U+009B> y");
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
    assert_eq!(
        app.flash.as_ref().map(|f| (f.text.as_str(), f.level)),
        Some(("prompts go out at priority high", FlashLevel::Info)),
        "success says so"
    );
    assert_eq!(app.run_command("verify"), vec![Command::VerifyAudit]);
    assert_eq!(
        app.run_command("sim off"),
        vec![Command::SetSimulated(false)]
    );
    assert_eq!(app.run_command("sim ON"), vec![Command::SetSimulated(true)]);
    assert_eq!(
        app.run_command("policy reload"),
        vec![Command::ReloadPolicy]
    );
    assert_eq!(app.run_command("approvals"), vec![Command::Approvals]);
    assert_eq!(
        app.run_command("approvals revoke 3"),
        vec![Command::RevokeApproval(3)]
    );
    assert!(app.run_command("approvals revoke x").is_empty());
    assert_eq!(
        app.run_command("approve mcp:files:write path=notes/*.md"),
        vec![Command::Approve {
            tool: "mcp:files:write".into(),
            argument: Some(crate::core::ArgumentPattern {
                name: "path".into(),
                pattern: "notes/*.md".into()
            }),
        }]
    );
    assert!(app.run_command("approve").is_empty());
    assert!(app.run_command("approve file_write path").is_empty());
    assert!(app.run_command("policy").is_empty());
    assert!(
        app.flash
            .as_ref()
            .is_some_and(|f| f.level == FlashLevel::Error && f.text.contains(":policy reload"))
    );
    assert!(app.run_command("sim maybe").is_empty());
    assert_eq!(
        app.flash.as_ref().map(|f| (f.text.as_str(), f.level)),
        Some((":sim takes on or off, not 'maybe'", FlashLevel::Error))
    );
    assert!(app.run_command("sim").is_empty());
    assert!(
        app.flash
            .as_ref()
            .unwrap()
            .text
            .contains(":sim needs on or off")
    );
    assert!(app.run_command("prest mars").is_empty());
    assert!(
        app.flash
            .as_ref()
            .unwrap()
            .text
            .contains("did you mean 'preset'?")
    );
    assert!(app.run_command("preset venus").is_empty());
    assert!(
        app.flash
            .as_ref()
            .unwrap()
            .text
            .contains("use one of earth, lunar, mars")
    );
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

#[test]
fn the_undo_command_names_an_entry_or_takes_the_newest() {
    let mut app = app();
    assert_eq!(app.run_command("undo"), vec![Command::Undo(None)]);
    assert_eq!(app.run_command("undo 42"), vec![Command::Undo(Some(42))]);
    assert!(app.run_command("undo last").is_empty());
    assert!(
        app.flash
            .as_ref()
            .unwrap()
            .text
            .contains(":undo takes the number of a TOOL_INVOCATION audit entry")
    );
    assert!(app.run_command("undoo").is_empty());
    assert!(
        app.flash
            .as_ref()
            .unwrap()
            .text
            .contains("did you mean 'undo'?")
    );
}

#[test]
fn a_allows_a_tool_for_the_session_and_nothing_else() {
    let t0 = tokio::time::Instant::now();
    let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
    let mut app = app();
    // An execution's confirmation cannot be allowed for the session: `a` does nothing.
    app.apply(confirmation(7));
    app.apply(Event::ConfirmationRequested {
        request: 8,
        id: ExecutionId(Uuid::from_u128(1)),
        operation: "tool:file_delete".into(),
        reason: "'tool:file_delete' always asks for confirmation".into(),
        detail: Some("{\"path\":\"notes\u{1b}[2J.txt\"}".into()),
        scopable: true,
    });
    app.settle_confirmation(at(0));
    assert!(app.handle_key_at(&key('a'), at(1000)).is_empty());
    assert_eq!(app.open_confirmation().map(|c| c.request), Some(7));
    assert_eq!(
        app.handle_key_at(&key('y'), at(1000)),
        vec![Command::Answer {
            request: 7,
            allowed: true,
            scope: ConfirmScope::Once,
        }]
    );
    app.settle_confirmation(at(1000));
    let open = app.open_confirmation().expect("the tool's confirmation");
    assert!(open.scopable);
    assert!(
        !open
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains('\u{1b}'),
        "the arguments are shown sanitized"
    );
    assert_eq!(
        app.handle_key_at(&key('a'), at(2000)),
        vec![Command::Answer {
            request: 8,
            allowed: true,
            scope: ConfirmScope::Session,
        }]
    );
}

#[test]
fn a_key_that_does_nothing_points_to_help() {
    let mut app = app();
    assert!(app.handle_key(&key('x')).is_empty());
    assert_eq!(
        app.flash.as_ref().map(|f| f.text.as_str()),
        Some("x does nothing here · ? for help")
    );
    app.flash = None;
    assert!(app.handle_key(&ctrl('x')).is_empty());
    assert_eq!(
        app.flash.as_ref().map(|f| f.text.as_str()),
        Some("Ctrl-X does nothing here · ? for help")
    );
    // While typing, keys are text, not hints.
    app.flash = None;
    app.handle_key(&key('i'));
    app.handle_key(&key('x'));
    assert!(app.flash.is_none());
    assert_eq!(app.input.text, "x");
}

#[test]
fn keys_move_the_focused_pane_only() {
    let mut app = app();
    for n in 1..=3u128 {
        app.apply(submitted(n));
    }
    for seq in 1..=5 {
        app.apply(Event::AuditRecorded {
            seq,
            event_type: "EXECUTION".into(),
            actor: "operator".into(),
            action: "execute".into(),
            outcome: "success".into(),
            hash: "ab".repeat(32),
            execution: None,
        });
    }
    app.focus = Pane::Tasks;
    app.handle_key(&key('g'));
    let selected = app.selected;
    for pane in [Pane::Audit, Pane::Safety, Pane::Log] {
        app.focus = pane;
        app.handle_key(&key('j'));
        app.handle_key(&key('G'));
        assert_eq!(
            app.selected, selected,
            "{pane:?} moved the hidden Tasks selection"
        );
    }
    app.focus = Pane::Audit;
    app.handle_key(&key('g'));
    app.handle_key(&key('j'));
    app.handle_key(&key('j'));
    assert_eq!(app.shown_audit().selected, 2);
    for _ in 0..10 {
        app.handle_key(&key('j'));
    }
    assert_eq!(app.shown_audit().selected, 4, "stops at the oldest entry");
    app.handle_key(&key('g'));
    assert_eq!(app.shown_audit().selected, 0, "g returns to the newest");
    app.focus = Pane::Log;
    app.take_log(log_records(&["one", "two", "three"]));
    app.handle_key(&key('k'));
    assert!(app.log_view.scrolled());
    assert_eq!(app.log_selected().unwrap().message, "two");
    app.handle_key(&key('G'));
    assert!(!app.log_view.scrolled(), "G returns to the live tail");
}

#[test]
fn slash_filters_the_focused_list_and_bang_inverts() {
    let mut app = app();
    for (n, title) in [
        (1u128, "Check the seals"),
        (2, "Rotate the antenna"),
        (3, "Check power"),
    ] {
        let mut e = submitted(n);
        if let Event::TaskSubmitted { title: t, .. } = &mut e {
            *t = title.into();
        }
        app.apply(e);
    }
    app.focus = Pane::Tasks;
    let type_text = |app: &mut App, text: &str| {
        for c in text.chars() {
            app.handle_key(&key(c));
        }
        app.handle_key(&named(KeyCode::Enter));
    };
    app.handle_key(&key('/'));
    assert_eq!(app.mode(), Mode::Command);
    assert_eq!(app.filtering, Some(Pane::Tasks));
    type_text(&mut app, "CHECK");
    assert_eq!(app.filter(Pane::Tasks), Some("CHECK"));
    assert_eq!(
        app.visible_tasks(),
        vec![0, 2],
        "case-insensitive substring"
    );
    assert_eq!(
        app.flash.as_ref().map(|f| f.text.as_str()),
        Some("Tasks: 2 shown · /CHECK")
    );
    // The selection moves within what is shown.
    app.handle_key(&key('g'));
    assert_eq!(app.selected, Some(0));
    app.handle_key(&key('j'));
    assert_eq!(app.selected, Some(2));
    // `!` hides the matches; the text comes back for editing.
    app.handle_key(&key('/'));
    assert_eq!(app.command.as_ref().map(|c| c.text.as_str()), Some("CHECK"));
    for _ in 0..5 {
        app.handle_key(&named(KeyCode::Backspace));
    }
    type_text(&mut app, "!check");
    assert_eq!(app.visible_tasks(), vec![1]);
    assert_eq!(
        app.selected,
        Some(1),
        "the selection moved onto a shown row"
    );
    // Esc clears the filter (and closes the line); so does an empty one.
    app.handle_key(&key('/'));
    app.handle_key(&named(KeyCode::Esc));
    assert_eq!(app.filter(Pane::Tasks), None);
    assert_eq!(app.filtering, None);
    assert_eq!(app.visible_tasks(), vec![0, 1, 2]);
    app.set_filter(Pane::Tasks, "check");
    app.set_filter(Pane::Tasks, "");
    assert_eq!(app.visible_tasks(), vec![0, 1, 2]);
    // The Log pane filters its own lines, not the Tasks.
    app.focus = Pane::Log;
    app.handle_key(&key('/'));
    assert_eq!(app.filtering, Some(Pane::Log));
}

#[test]
fn y_copies_what_the_focused_pane_shows() {
    let mut app = app();
    app.apply(submitted(1));
    app.apply(Event::OutputDelta {
        id: ExecutionId(Uuid::from_u128(1)),
        text: "line one\nline two".into(),
    });
    app.focus = Pane::Output;
    assert_eq!(
        app.handle_key(&key('y')),
        vec![Command::Copy("line one\nline two".into())]
    );
    assert!(
        app.flash
            .as_ref()
            .unwrap()
            .text
            .starts_with("copied 17 characters")
    );
    app.apply(Event::AuditRecorded {
        seq: 7,
        event_type: "EXECUTION".into(),
        actor: "operator".into(),
        action: "execute".into(),
        outcome: "success".into(),
        hash: "ab".repeat(32),
        execution: None,
    });
    app.focus = Pane::Audit;
    match app.handle_key(&key('y')).as_slice() {
        [Command::Copy(text)] => {
            assert!(
                text.starts_with("audit entry 7: EXECUTION operator execute success hash abab")
            );
        }
        other => panic!("{other:?}"),
    }
    app.focus = Pane::Safety;
    assert!(app.handle_key(&key('y')).is_empty());
    assert_eq!(app.flash.as_ref().unwrap().text, "nothing to copy here");
}

#[test]
fn the_command_line_recalls_history_and_completes() {
    let mut app = app();
    let run = |app: &mut App, text: &str| {
        app.handle_key(&key(':'));
        for c in text.chars() {
            app.handle_key(&key(c));
        }
        app.handle_key(&named(KeyCode::Enter))
    };
    run(&mut app, "priority low");
    run(&mut app, "preset mars");
    run(&mut app, "preset mars");
    assert_eq!(app.history, ["priority low", "preset mars"], "no repeats");
    app.handle_key(&key(':'));
    app.handle_key(&named(KeyCode::Up));
    assert_eq!(app.command.as_ref().unwrap().text, "preset mars");
    app.handle_key(&named(KeyCode::Up));
    app.handle_key(&named(KeyCode::Up));
    assert_eq!(
        app.command.as_ref().unwrap().text,
        "priority low",
        "stops at the oldest"
    );
    app.handle_key(&named(KeyCode::Down));
    app.handle_key(&named(KeyCode::Down));
    assert_eq!(
        app.command.as_ref().unwrap().text,
        "",
        "past the newest: a fresh line"
    );
    // Tab completes a command, then its argument.
    for c in "pre".chars() {
        app.handle_key(&key(c));
    }
    app.handle_key(&named(KeyCode::Tab));
    assert_eq!(app.command.as_ref().unwrap().text, "preset ");
    app.handle_key(&key('d'));
    app.handle_key(&named(KeyCode::Tab));
    assert_eq!(app.command.as_ref().unwrap().text, "preset deep-space ");
    // Several candidates: what they share, and the list in the status bar.
    app.handle_key(&named(KeyCode::Esc));
    app.handle_key(&key(':'));
    app.handle_key(&key('p'));
    app.handle_key(&key('r'));
    app.handle_key(&named(KeyCode::Tab));
    assert_eq!(app.command.as_ref().unwrap().text, "pr");
    assert_eq!(app.flash.as_ref().unwrap().text, "preset priority");
}

#[test]
fn focus_names_a_pane_completes_and_says_what_it_did() {
    let mut app = app();
    app.run_command("focus AUDIT");
    assert_eq!(app.focus, Pane::Audit);
    assert_eq!(app.flash.as_ref().unwrap().text, "Audit focused");
    app.run_command("focus benchmarks");
    assert_eq!(app.focus, Pane::Benchmarks);
    assert!(
        app.bench_tab,
        "on a narrow screen the Benchmarks tab is shown"
    );
    app.run_command("focus nowhere");
    assert_eq!(
        app.focus,
        Pane::Benchmarks,
        "an unknown pane changes nothing"
    );
    let flash = app.flash.as_ref().unwrap();
    assert_eq!(flash.level, FlashLevel::Error);
    assert!(
        flash
            .text
            .contains("unknown pane 'nowhere'; panes: tasks, output"),
        "{}",
        flash.text
    );
    app.run_command("focus");
    assert!(app.flash.as_ref().unwrap().text.contains(":focus tasks"));
    // Tab completes the pane.
    app.handle_key(&key(':'));
    for c in "focus sa".chars() {
        app.handle_key(&key(c));
    }
    app.handle_key(&named(KeyCode::Tab));
    assert_eq!(app.command.as_ref().unwrap().text, "focus safety ");
}

#[test]
fn log_sets_the_least_severe_level_shown_and_says_so() {
    let mut app = app();
    assert_eq!(
        app.log_view.level,
        tracing::level_filters::LevelFilter::TRACE
    );
    app.take_log(log_records(&["one", "two"]));
    app.log_view.selected = Some(1);
    app.run_command("log WARN");
    assert_eq!(
        app.log_view.level,
        tracing::level_filters::LevelFilter::WARN
    );
    assert!(
        !app.log_view.scrolled(),
        "a new level starts at the live tail"
    );
    assert_eq!(app.flash.as_ref().unwrap().text, "Log shows warn and above");
    app.run_command("log loud");
    assert_eq!(
        app.log_view.level,
        tracing::level_filters::LevelFilter::WARN,
        "unchanged"
    );
    let flash = app.flash.as_ref().unwrap();
    assert_eq!(flash.level, FlashLevel::Error);
    assert!(
        flash
            .text
            .contains("levels: error, warn, info, debug, trace, all"),
        "{}",
        flash.text
    );
    app.run_command("log off");
    assert_eq!(
        app.log_view.level,
        tracing::level_filters::LevelFilter::WARN,
        "the pane never goes blank"
    );
    app.run_command("log all");
    assert_eq!(
        app.log_view.level,
        tracing::level_filters::LevelFilter::TRACE
    );
    assert_eq!(app.flash.as_ref().unwrap().text, "Log shows every level");
    // The title says what is hidden.
    app.run_command("log error");
    let theme = crate::tui::theme::Theme::from(&crate::config::theme::default_theme().unwrap());
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(40, 5)).unwrap();
    terminal
        .draw(|f| crate::tui::panes::log::render(&app, &theme, f, f.area()))
        .unwrap();
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("Log · error+"), "{screen}");
}

#[test]
fn missed_events_are_counted_and_said_each_time() {
    let mut app = app();
    app.missed(3);
    app.missed(u64::MAX);
    assert_eq!(app.missed_events, u64::MAX, "saturates");
    let flash = app.flash.as_ref().unwrap();
    assert_eq!(flash.level, FlashLevel::Error);
    assert!(
        flash.text.contains("skipped 18446744073709551615 events"),
        "{}",
        flash.text
    );
    assert!(
        flash.text.contains("panes may be incomplete"),
        "{}",
        flash.text
    );
}

#[test]
fn the_history_file_round_trips_and_survives_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/command_history");
    assert!(
        crate::tui::load_history(&path).is_empty(),
        "missing is empty"
    );
    crate::tui::save_history(&path, &["preset mars".into(), "theme mono".into()]).unwrap();
    assert_eq!(
        crate::tui::load_history(&path),
        ["preset mars", "theme mono"]
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::write(&path, b"\xff\xfe bad\n\x1b[2J clear\n\nok\n").unwrap();
    let loaded = crate::tui::load_history(&path);
    assert_eq!(loaded.len(), 3);
    assert!(loaded.iter().all(|l| !l.contains('\u{1b}')));
    assert_eq!(loaded[2], "ok");
}

#[test]
fn enter_opens_a_task_with_its_timeline_and_esc_closes_it() {
    let mut app = app();
    app.apply(submitted(1));
    for (ms, status) in [
        (
            10,
            TaskStatus::Uplink {
                sim_ms: 180_000,
                real_ms: 1_500,
            },
        ),
        (1_510, TaskStatus::Running),
        (1_900, TaskStatus::Succeeded),
    ] {
        app.apply(Event::TaskState {
            id: ExecutionId(Uuid::from_u128(1)),
            status,
            attempt: 1,
            at: now() + chrono::Duration::milliseconds(ms),
        });
    }
    app.focus = Pane::Tasks;
    assert!(app.handle_key(&named(KeyCode::Enter)).is_empty());
    let Some(Overlay::Detail { title, lines }) = &app.overlay else {
        panic!("{:?}", app.overlay);
    };
    assert!(title.starts_with("Task "), "{title}");
    let text = lines.join("\n");
    for needle in [
        "queued",
        "uplink — 3m00s light time (simulated), 1.5s wall",
        "running",
        "succeeded",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    // Only Esc (or Enter, or quit) closes it: another key says how.
    app.handle_key(&key('x'));
    assert!(app.overlay.is_some());
    assert!(app.flash.as_ref().unwrap().text.contains("Esc closes it"));
    app.handle_key(&named(KeyCode::Esc));
    assert_eq!(app.overlay, None);
    // Elsewhere Enter still edits the prompt.
    app.focus = Pane::Output;
    app.handle_key(&named(KeyCode::Enter));
    assert!(app.editing);
}

#[test]
fn a_violation_opens_with_the_text_of_the_rule_that_decided_it() {
    let mut config = crate::config::VeyraConfig::default();
    config.governance.store = crate::config::AuditStoreKind::Memory;
    config.governance.prohibited_operations = vec!["delete_all".into()];
    let core = crate::core::VeyraCore::new(config).unwrap();
    let violation = |rule: &str| ViolationLine {
        seq: 1,
        at: now(),
        operation: "write_file file:a.txt".into(),
        level: "blocked".into(),
        rule: rule.into(),
        reason: "no".into(),
        actor: "agent".into(),
    };
    let text =
        crate::tui::explain_rule(&core, &violation("policy:agent-writes-reversibly")).join("\n");
    assert!(
        text.contains("context.reversible"),
        "the policy text: {text}"
    );
    assert!(
        text.contains("@reason: models may change files only when the change can be undone"),
        "{text}"
    );
    let text = crate::tui::explain_rule(&core, &violation("prohibited_operations")).join("\n");
    assert!(
        text.contains("governance.prohibited_operations: [delete_all]"),
        "{text}"
    );
    let text = crate::tui::explain_rule(&core, &violation("policy:default-deny")).join("\n");
    assert!(text.contains("No policy permits"), "{text}");
}

/// A denial two policies decided (`policy:a, b`, as the core names them) opens with each
/// policy's text; an id no longer loaded says so by itself, the others still shown.
#[test]
fn a_denial_decided_by_two_policies_opens_with_both_policies() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs/policies/multi-jurisdiction");
    let mut config = crate::config::VeyraConfig::default();
    config.governance.store = crate::config::AuditStoreKind::Memory;
    config.governance.policy_entities = Some(dir.join("entities.json"));
    config.governance.policy_file = Some(dir);
    let core = crate::core::VeyraCore::new(config).unwrap();
    let mut app = app();
    app.apply(Event::SafetyViolation {
        id: None,
        operation: "execute backend:mock".into(),
        level: "blocked".into(),
        rule: "policy:earth-no-offworld-background, habitat-no-deep-space-relay".into(),
        reason: "two jurisdictions".into(),
        actor: "operator".into(),
        at: now(),
    });
    app.show_pane(Pane::Safety);
    let commands = app.handle_key(&named(KeyCode::Enter));
    let [Command::ExplainRule { violation }] = commands.as_slice() else {
        panic!("Enter did not ask for the rule");
    };
    assert_eq!(
        violation.policy_ids(),
        [
            "earth-no-offworld-background",
            "habitat-no-deep-space-relay"
        ]
    );
    let text = crate::tui::explain_rule(&core, violation).join("\n");
    assert!(!text.contains("is not among the loaded policies"), "{text}");
    assert!(text.contains("decided by 2 policies"), "{text}");
    for needle in [
        "policy earth-no-offworld-background (Forbid)",
        "@reason: Earth compute is reserved for critical, high and normal work from off-world",
        "policy habitat-no-deep-space-relay (Forbid)",
        "@reason: Mars-Habitat-1 does not relay work to deep space",
        "when { context.destination in Veyra::Jurisdiction::\"Deep-Space\" };",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    let mut gone = violation.clone();
    gone.rule = "policy:earth-no-offworld-background, retired-policy".into();
    let text = crate::tui::explain_rule(&core, &gone).join("\n");
    assert!(
        text.contains("policy 'retired-policy' is not among the loaded policies"),
        "{text}"
    );
    assert!(
        text.contains("policy earth-no-offworld-background (Forbid)"),
        "{text}"
    );
}

#[test]
fn enter_on_audit_opens_the_entry_with_its_inclusion_proof() {
    let mut config = crate::config::VeyraConfig::default();
    config.governance.store = crate::config::AuditStoreKind::Memory;
    let core = crate::core::VeyraCore::new(config).unwrap();
    core.execute("hello").unwrap();
    let crate::tui::Notice::Detail { title, lines } = crate::tui::audit_detail(&core, 2) else {
        panic!("no detail");
    };
    assert_eq!(title, "Audit entry 2");
    let text = lines.join("\n");
    assert!(text.contains("type       EXECUTION"), "{text}");
    assert!(
        text.contains("inclusion  proved in a tree of 2 entries"),
        "{text}"
    );
    assert!(matches!(
        crate::tui::audit_detail(&core, 99),
        crate::tui::Notice::Flash(..)
    ));
    // The pane asks for the entry at the top of what it shows.
    let mut app = app();
    app.apply(Event::AuditRecorded {
        seq: 2,
        event_type: "EXECUTION".into(),
        actor: "operator".into(),
        action: "execute".into(),
        outcome: "success".into(),
        hash: "ab".repeat(32),
        execution: None,
    });
    app.focus = Pane::Audit;
    assert_eq!(
        app.handle_key(&named(KeyCode::Enter)),
        vec![Command::OpenAuditEntry(2)]
    );
}

/// Info records with these messages, a second apart, each with one field.
pub(crate) fn log_records(messages: &[&str]) -> Vec<crate::tui::log_layer::LogRecord> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| crate::tui::log_layer::LogRecord {
            seq: 0,
            at: now() + chrono::Duration::seconds(i as i64),
            level: tracing::Level::INFO,
            execution_id: Some("75289885-828e-420e-a615-a5c4fa1e4d79".into()),
            message: (*m).to_string(),
            fields: vec![("attempt", "1".to_string())],
            target: "veyra::core".into(),
        })
        .collect()
}

#[test]
fn the_log_keeps_its_selection_as_lines_arrive_and_opens_copies_and_filters_it() {
    let mut app = app();
    app.show_pane(Pane::Log);
    app.take_log(log_records(&["started", "asked for a tool", "finished"]));
    assert_eq!(
        app.log_selected().unwrap().message,
        "finished",
        "the live tail"
    );
    app.handle_key(&key('k'));
    assert_eq!(app.log_selected().unwrap().message, "asked for a tool");
    // New lines while paged back: the selection stays on its line.
    app.take_log(log_records(&["later", "later still"]));
    assert_eq!(app.log_selected().unwrap().message, "asked for a tool");
    // Enter opens its fields.
    app.handle_key(&named(KeyCode::Enter));
    match &app.overlay {
        Some(Overlay::Detail { title, lines }) => {
            assert!(title.starts_with("Log · "), "{title}");
            assert_eq!(lines[0], "asked for a tool");
            assert!(lines.contains(&"attempt       1".to_string()), "{lines:?}");
            assert!(
                lines.contains(&"execution_id  75289885-828e-420e-a615-a5c4fa1e4d79".to_string()),
                "{lines:?}"
            );
        }
        other => panic!("no detail view: {other:?}"),
    }
    app.handle_key(&named(KeyCode::Esc));
    assert!(app.overlay.is_none());
    // y copies the selected line whole.
    let commands = app.handle_key(&key('y'));
    match commands.as_slice() {
        [Command::Copy(text)] => {
            assert!(text.contains("asked for a tool attempt=1"), "{text}");
        }
        other => panic!("no copy: {other:?}"),
    }
    // / filters, ! inverts: the selected line is still shown, and stays selected.
    app.handle_key(&key('/'));
    for c in "!later".chars() {
        app.handle_key(&key(c));
    }
    app.handle_key(&named(KeyCode::Enter));
    assert_eq!(app.log_shown().len(), 3);
    assert_eq!(app.log_selected().unwrap().message, "asked for a tool");
    // Clearing the filter keeps the same line, not the one at the same distance.
    app.set_filter(Pane::Log, "");
    assert_eq!(app.log_selected().unwrap().message, "asked for a tool");
    // A filter on another pane leaves the Log alone.
    app.set_filter(Pane::Audit, "x");
    assert_eq!(app.log_selected().unwrap().message, "asked for a tool");
    // Down to the newest returns to the live tail.
    for _ in 0..4 {
        app.handle_key(&key('j'));
    }
    assert!(!app.log_view.scrolled());
    assert_eq!(app.log_selected().unwrap().message, "later still");
}

/// Paged back, the window stays where it is as lines arrive and moves only as far as the
/// selection needs; the oldest lines going past the limit take nothing else with them.
#[test]
fn the_log_window_holds_still_while_lines_arrive() {
    use crate::tui::app::{LOG_KEEP, log_window};
    let mut app = app();
    app.show_pane(Pane::Log);
    app.pane_rows = 3;
    let names: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    app.take_log(log_records(&names));
    let window = |app: &App| {
        let shown = app.log_shown();
        let (top, selected) = log_window(&app.log_view, &shown, 3);
        (shown[top].message.clone(), shown[selected].message.clone())
    };
    assert_eq!(
        window(&app),
        ("line 7".into(), "line 9".into()),
        "the live tail"
    );
    app.handle_key(&key('k'));
    assert_eq!(
        window(&app),
        ("line 7".into(), "line 8".into()),
        "the window holds"
    );
    app.handle_key(&key('k'));
    app.handle_key(&key('k'));
    assert_eq!(
        window(&app),
        ("line 6".into(), "line 6".into()),
        "moved by one row"
    );
    app.take_log(log_records(&["new 1", "new 2"]));
    assert_eq!(
        window(&app),
        ("line 6".into(), "line 6".into()),
        "new lines move nothing"
    );
    // g goes to the oldest; a full page is drawn from there.
    app.handle_key(&key('g'));
    assert_eq!(window(&app), ("line 0".into(), "line 0".into()));
    // Past the limit the oldest go; the selection falls to the oldest kept.
    let many: Vec<String> = (0..LOG_KEEP).map(|i| format!("more {i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    app.take_log(log_records(&many));
    assert_eq!(app.log_view.records.len(), LOG_KEEP);
    assert_eq!(app.log_selected().unwrap().message, "more 0");
}

#[test]
fn audit_lines_announced_out_of_order_are_kept_by_number() {
    let mut app = app();
    for seq in [1, 3, 2, 5, 4] {
        app.apply(Event::AuditRecorded {
            seq,
            event_type: "EXECUTION".into(),
            actor: "operator".into(),
            action: "execute".into(),
            outcome: "success".into(),
            hash: format!("{seq:064}"),
            execution: None,
        });
    }
    let seqs: Vec<u64> = app.audit().recent.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(app.audit().entries, 5);
    assert_eq!(app.audit().head, format!("{:064}", 5));
}

#[test]
fn a_gone_runtime_asks_once_y_hosts_here_n_quits_and_nothing_else_answers() {
    let mut app = app();
    app.apply(confirmation(1));
    app.runtime_gone("the runtime closed the connection\x1b[2J");
    assert_eq!(app.mode(), Mode::Question);
    assert!(app.confirm.is_none() && app.confirmations.is_empty());
    match &app.overlay {
        Some(Overlay::RuntimeGone { reason }) => assert!(!reason.contains('\x1b'), "{reason}"),
        other => panic!("{other:?}"),
    }
    for c in ['i', 'x', 'a', '3'] {
        assert!(app.handle_key(&key(c)).is_empty(), "{c} acted");
    }
    assert_eq!(app.handle_key(&key('y')), vec![Command::HostHere]);
    assert!(app.overlay.is_none() && !app.quit());
    app.runtime_gone("again");
    assert_eq!(app.handle_key(&key('n')), vec![Command::Quit]);
    assert!(app.quit());
}

#[test]
fn a_question_answered_elsewhere_closes_its_modal_saying_who_answered() {
    let t0 = tokio::time::Instant::now();
    let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
    let mut app = app();
    app.apply(confirmation(4));
    app.settle_confirmation(at(0));
    assert!(app.confirm.is_some_and(|m| m.request == 4));
    app.apply(Event::ConfirmationAnswered {
        request: 4,
        id: ExecutionId(Uuid::from_u128(1)),
        allowed: true,
        by: "operator (pid 4242, uid 1000, ssh from 10.0.0.7:5555)\u{1b}[2J".into(),
        scope: ConfirmScope::Once,
    });
    assert!(app.confirm.is_none() && app.confirmations.is_empty());
    let flash = app.flash_message().expect("a flash").text.clone();
    assert!(
        flash.contains("request 4 was answered yes by operator (pid 4242"),
        "{flash}"
    );
    assert!(!flash.contains('\u{1b}'), "{flash}");
    // Answered here: no flash about it.
    app.apply(confirmation(5));
    app.settle_confirmation(at(0));
    let app2 = &mut app;
    let commands = app2.update(Action::Yes);
    assert!(matches!(commands[..], [Command::Answer { request: 5, .. }]));
    let before = app2.flash_message().map(|f| f.text.clone());
    app2.apply(Event::ConfirmationAnswered {
        request: 5,
        id: ExecutionId(Uuid::from_u128(1)),
        allowed: true,
        by: "operator".into(),
        scope: ConfirmScope::Once,
    });
    assert_eq!(app2.flash_message().map(|f| f.text.clone()), before);
}
