//! The Audit and Safety panes' selection: kept by entry as entries arrive (in a burst, out of
//! order), moved by the keys within what the filter shows, and the entry `Enter` opens and `y`
//! copies is always the one highlighted.

use crossterm::event::{KeyCode, KeyEvent};

use super::*;
use crate::tui::testing::{app, now};

/// A key as the operator presses it, through the key map.
fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    app.handle_key(&KeyEvent::from(code))
}

fn recorded(seq: u64) -> Event {
    Event::AuditRecorded {
        seq,
        event_type: "EXECUTION".into(),
        actor: "operator".into(),
        action: "execute".into(),
        outcome: "success".into(),
        hash: format!("{seq:064}"),
        execution: None,
    }
}

fn refused(operation: &str) -> Event {
    Event::SafetyViolation {
        id: None,
        operation: operation.into(),
        level: "blocked".into(),
        rule: "prohibited_operations".into(),
        reason: "listed".into(),
        actor: "agent".into(),
        at: now(),
    }
}

fn audit_seqs(app: &App) -> Vec<u64> {
    app.shown_audit().rows.iter().map(|e| e.seq).collect()
}

fn selected_seq(app: &App) -> Option<u64> {
    app.shown_audit().selected().map(|e| e.seq)
}

#[test]
fn audit_lists_by_number_and_its_selection_stays_on_its_entry_as_a_burst_arrives() {
    let mut app = app();
    app.show_pane(Pane::Audit);
    // A pane of 6 rows: the head and the verification above 4 entries.
    app.set_pane_sizes((80, 10), 5, (40, 6), (80, 24));
    // Entries that share one commit are announced in any order.
    for seq in [20, 21, 23, 24, 22] {
        app.apply(recorded(seq));
    }
    assert_eq!(
        audit_seqs(&app),
        [24, 23, 22, 21, 20],
        "newest first, by number"
    );
    // Following the newest until the operator moves.
    assert_eq!(selected_seq(&app), Some(24));
    app.apply(recorded(25));
    assert_eq!(selected_seq(&app), Some(25));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(selected_seq(&app), Some(23));
    assert_eq!(
        app.shown_audit().start(4, |_| 1),
        0,
        "the window has not moved"
    );
    // A burst arrives, out of order: the selection stays on entry 23, and so does the window.
    for seq in [28, 26, 27] {
        app.apply(recorded(seq));
    }
    assert_eq!(audit_seqs(&app), [28, 27, 26, 25, 24, 23, 22, 21, 20]);
    assert_eq!(selected_seq(&app), Some(23));
    let shown = app.shown_audit();
    assert_eq!(
        shown.rows[shown.start(4, |_| 1)].seq,
        25,
        "3 newer above it"
    );
    // Enter and y act on the selected entry, not the newest.
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        [Command::OpenAuditEntry(23)]
    );
    match press(&mut app, KeyCode::Char('y')).as_slice() {
        [Command::Copy(text)] => assert!(text.starts_with("audit entry 23:"), "{text}"),
        other => panic!("{other:?}"),
    }
    // Down past the window's last row moves it by one row; up within it, not at all.
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(selected_seq(&app), Some(20));
    let start = |app: &App| {
        let shown = app.shown_audit();
        shown.rows[shown.start(4, |_| 1)].seq
    };
    assert_eq!(start(&app), 23);
    press(&mut app, KeyCode::Char('k'));
    assert_eq!((selected_seq(&app), start(&app)), (Some(21), 23));
    // A filter that hides it selects the nearest older entry shown; clearing it, the same
    // entry again.
    app.set_filter(Pane::Audit, "!21");
    assert_eq!(selected_seq(&app), Some(20));
    app.set_filter(Pane::Audit, "");
    assert_eq!(selected_seq(&app), Some(21));
    // g returns to the newest, and follows it again.
    press(&mut app, KeyCode::Char('g'));
    assert_eq!(selected_seq(&app), Some(28));
    app.apply(recorded(29));
    assert_eq!(selected_seq(&app), Some(29));
    // G goes to the oldest kept.
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(selected_seq(&app), Some(20));
}

#[test]
fn safety_keeps_its_selection_on_its_violation_and_enter_and_y_act_on_it() {
    let mut app = app();
    app.show_pane(Pane::Safety);
    app.set_pane_sizes((80, 10), 5, (60, 6), (80, 24));
    for op in ["first", "second", "third"] {
        app.apply(refused(op));
    }
    let selected = |app: &App| {
        app.shown_violations()
            .selected()
            .map(|v| v.operation.clone())
    };
    assert_eq!(selected(&app).as_deref(), Some("third"), "the newest first");
    press(&mut app, KeyCode::Down);
    assert_eq!(selected(&app).as_deref(), Some("second"));
    app.apply(refused("fourth"));
    app.apply(refused("fifth"));
    assert_eq!(selected(&app).as_deref(), Some("second"));
    let ops: Vec<&str> = app
        .shown_violations()
        .rows
        .iter()
        .map(|v| v.operation.as_str())
        .collect();
    assert_eq!(ops, ["fifth", "fourth", "third", "second", "first"]);
    match press(&mut app, KeyCode::Enter).as_slice() {
        [Command::ExplainRule { violation }] => assert_eq!(violation.operation, "second"),
        other => panic!("{other:?}"),
    }
    match press(&mut app, KeyCode::Char('y')).as_slice() {
        [Command::Copy(text)] => assert!(text.contains("second"), "{text}"),
        other => panic!("{other:?}"),
    }
    // Up to the newest: it follows the newest again.
    press(&mut app, KeyCode::Up);
    press(&mut app, KeyCode::Up);
    press(&mut app, KeyCode::Up);
    assert_eq!(selected(&app).as_deref(), Some("fifth"));
    app.apply(refused("sixth"));
    assert_eq!(selected(&app).as_deref(), Some("sixth"));
}

/// A violation that wraps over several rows is shown whole: the window starts late enough to
/// show the selected one entirely, and early enough to leave no empty rows under the oldest.
#[test]
fn the_window_shows_the_selection_whole_and_no_empty_rows_under_the_oldest() {
    let rows = [&1u64, &2, &3, &4, &5];
    let height = |n: &u64| if *n == 4 { 3 } else { 1 };
    // Row 4 (three rows tall) selected in a window of 4 left at row 0: it moves on to row 2.
    assert_eq!(window_start(&rows, 0, 3, 4, height), 2);
    // Left at row 4 with row 4 selected in 10 rows: everything fits, from row 0.
    assert_eq!(window_start(&rows, 4, 4, 10, height), 0);
    // A selection taller than the room starts the window itself.
    assert_eq!(window_start(&rows, 0, 3, 2, height), 3);
    assert_eq!(window_start::<u64>(&[], 3, 3, 2, |_| 1), 0);
}
