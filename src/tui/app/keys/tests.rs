//! Keys over a detail view (they scroll it; only `Esc`, `Enter` or quit close it) and the `/`
//! filter (applied as it is typed; `Esc` clears it).

use crossterm::event::{KeyCode, KeyEvent};

use super::*;
use crate::tui::app::tests::submitted;
use crate::tui::testing::app;

fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    app.handle_key(&KeyEvent::from(code))
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

/// An audit entry's detail, 40 lines long, on an 80×24 screen.
fn long_detail() -> App {
    let mut app = app();
    app.set_pane_sizes((78, 19), 5, (78, 19), (80, 24));
    let lines: Vec<String> = (1..=40).map(|i| format!("line {i}")).collect();
    app.show_detail("Audit entry 7".into(), lines);
    app
}

#[test]
fn a_detail_view_scrolls_with_the_usual_keys_and_only_esc_enter_or_quit_close_it() {
    let mut app = long_detail();
    let page = |app: &App| match &app.overlay {
        Some(Overlay::Detail { lines, .. }) => DetailPage::new(lines, app.screen).max_scroll(),
        other => panic!("{other:?}"),
    };
    // 24 rows: 21 lines between the title and the footer; the last page starts at line 20.
    assert_eq!(page(&app), 19);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Down);
    assert_eq!(app.detail_scroll, 2, "j and ↓ scroll, and leave it open");
    press(&mut app, KeyCode::Char('k'));
    assert_eq!(app.detail_scroll, 1);
    press(&mut app, KeyCode::PageDown);
    assert_eq!(app.detail_scroll, 19, "a page, up to the last one");
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.detail_scroll, 19);
    press(&mut app, KeyCode::Char('k'));
    assert_eq!(app.detail_scroll, 18, "up from the end moves at once");
    press(&mut app, KeyCode::Home);
    assert_eq!(app.detail_scroll, 0);
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(app.detail_scroll, 19);
    press(&mut app, KeyCode::PageUp);
    assert_eq!(app.detail_scroll, 0);
    press(&mut app, KeyCode::End);
    assert_eq!(app.detail_scroll, 19);
    // Other keys say how to close it, and do nothing else.
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Char('x'));
    assert!(matches!(app.overlay, Some(Overlay::Detail { .. })));
    assert_eq!(
        app.focus,
        Pane::Prompt,
        "Tab did not move the focus under it"
    );
    // y copies it whole.
    match press(&mut app, KeyCode::Char('y')).as_slice() {
        [Command::Copy(text)] => assert!(text.starts_with("line 1\nline 2\n"), "{text}"),
        other => panic!("{other:?}"),
    }
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.overlay, None);
    // Opened again, it starts at its first line; Enter and q close it too.
    let mut app = long_detail();
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.overlay, None);
    let mut app = long_detail();
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(press(&mut app, KeyCode::Char('q')), []);
    assert_eq!(app.overlay, None);
    assert!(!app.quit(), "q closed the detail, not the console");
    app.show_detail("again".into(), vec!["one".into()]);
    assert_eq!(app.detail_scroll, 0);
}

#[test]
fn slash_filters_as_it_is_typed_and_esc_clears_it() {
    let mut app = app();
    for n in [1u128, 2, 12] {
        app.apply(submitted(n));
    }
    app.show_pane(Pane::Tasks);
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "task 1");
    // Before Enter: the list already shows what matches.
    assert_eq!(app.filter(Pane::Tasks), Some("task 1"));
    assert_eq!(app.visible_tasks(), vec![0, 2]);
    type_text(&mut app, "2");
    assert_eq!(app.visible_tasks(), vec![2]);
    press(&mut app, KeyCode::Backspace);
    assert_eq!(app.visible_tasks(), vec![0, 2]);
    // Esc clears it and closes the line.
    press(&mut app, KeyCode::Esc);
    assert_eq!(
        (app.filter(Pane::Tasks), app.command.is_none()),
        (None, true)
    );
    assert_eq!(app.visible_tasks(), vec![0, 1, 2]);
    // Enter keeps it; Esc on the pane afterwards clears it too.
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "12");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.filter(Pane::Tasks), Some("12"));
    assert_eq!(app.mode(), Mode::Normal);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.filter(Pane::Tasks), None);
    // Another pane's filter is its own: Esc on the Tasks leaves the Audit's.
    app.set_filter(Pane::Audit, "deny");
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.filter(Pane::Audit), Some("deny"));
}
