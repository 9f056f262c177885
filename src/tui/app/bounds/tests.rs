use super::*;
use crate::tui::app::tests::{app, now, state, submitted};

fn id(n: u128) -> ExecutionId {
    ExecutionId(uuid::Uuid::from_u128(n))
}

fn cancelled(n: u128) -> Event {
    state(
        n,
        TaskStatus::Cancelled {
            reason: "test".into(),
        },
        1,
        now(),
    )
}

#[test]
fn the_oldest_ended_tasks_go_past_the_cap_and_active_ones_never_do() {
    let mut app = app();
    // Task 1 stays active; 2..=6 end.
    for n in 1..=6 {
        app.apply(submitted(n));
        if n > 1 {
            app.apply(cancelled(n));
        }
    }
    app.selected = Some(4); // task 5
    app.follow = false;
    app.drop_old_tasks(3);
    let ids: Vec<_> = app.tasks.iter().map(|t| t.id).collect();
    // 2, 3 and 4 (the oldest ended) went; 1 is active and stays.
    assert_eq!(ids, [id(1), id(5), id(6)]);
    assert_eq!(app.tasks_dropped, 3);
    // The selection stays on its task, and the index finds every task kept.
    assert_eq!(app.shown_task().map(|t| t.id), Some(id(5)));
    for (i, t) in app.tasks.iter().enumerate() {
        assert_eq!(app.index.get(&t.id), Some(&i));
    }
    app.apply(Event::OutputDelta {
        id: id(6),
        text: "still folded".into(),
    });
    assert_eq!(app.tasks[2].output.text(), "still folded");
}

#[test]
fn a_console_left_running_keeps_at_most_the_cap_of_ended_tasks() {
    let mut app = app();
    let total = TASKS_KEEP as u128 + 50;
    for n in 1..=total {
        app.apply(submitted(n));
        app.apply(cancelled(n));
    }
    // Past the cap, the oldest went a slack's worth at once: never more than the cap kept.
    let dropped = TASKS_SLACK as u64 + 1;
    assert_eq!(app.tasks.len() as u64, total as u64 - dropped);
    assert!(app.tasks.len() <= TASKS_KEEP);
    assert_eq!(app.tasks_dropped, dropped);
    // Following: the newest is selected and shown.
    assert_eq!(app.shown_task().map(|t| t.id), Some(id(total)));
    assert_eq!(app.tasks[0].id, id(u128::from(dropped) + 1));
}

#[test]
fn a_dropped_selection_moves_to_the_next_task_kept() {
    let mut app = app();
    for n in 1..=4 {
        app.apply(submitted(n));
        app.apply(cancelled(n));
    }
    app.selected = Some(0);
    app.follow = false;
    app.output_anchor = Some(Anchor { line: 3, row: 0 });
    app.drop_old_tasks(2);
    assert_eq!(app.shown_task().map(|t| t.id), Some(id(3)));
    assert_eq!(app.output_anchor, None);
}

#[test]
fn the_output_anchor_stays_on_its_text_when_older_lines_go() {
    let mut app = app();
    app.apply(submitted(1));
    app.follow = false;
    app.tasks[0].output = OutputBuffer::with_cap(12);
    app.apply(Event::OutputDelta {
        id: id(1),
        text: "aaaa\nbbbb\ncccc\n".into(),
    });
    app.output_anchor = Some(Anchor { line: 2, row: 0 });
    // 12 bytes kept, the cap; eight more drop "aaaa" and "bbbb".
    app.apply(Event::OutputDelta {
        id: id(1),
        text: "dddd\neeee\n".into(),
    });
    let output = &app.tasks[0].output;
    assert_eq!(output.dropped_lines(), 2);
    assert_eq!(output.line(0), Some("cccc"));
    assert_eq!(app.output_anchor, Some(Anchor { line: 0, row: 0 }));
}

fn violation(op: &str) -> Event {
    Event::SafetyViolation {
        id: None,
        operation: op.into(),
        level: "blocked".into(),
        rule: "prohibited_operations".into(),
        reason: "listed".into(),
        actor: "agent".into(),
        at: now(),
    }
}

#[test]
fn safety_open_and_copy_act_on_the_row_drawn_first_whatever_the_filter() {
    let mut app = app();
    for op in ["rm_one", "keep_a", "rm_two", "keep_b"] {
        app.apply(violation(op));
    }
    app.set_filter(Pane::Safety, "rm_");
    app.show_pane(Pane::Safety);
    // The selection held on a violation the filter hides: the pane selects the nearest older
    // one it shows, and Enter and copy act on that one (before, they found nothing).
    app.safety_pick = Pick {
        selected: Some(2),
        top: 4,
    };
    let shown = app.shown_violations();
    assert_eq!(shown.rows.len(), 2);
    assert_eq!(
        shown.selected().map(|v| v.operation.as_str()),
        Some("rm_one")
    );
    match app.update(Action::Open).as_slice() {
        [Command::ExplainRule { violation }] => assert_eq!(violation.operation, "rm_one"),
        other => panic!("{other:?}"),
    }
    match app.update(Action::Copy).as_slice() {
        [Command::Copy(text)] => assert!(text.contains("rm_one"), "{text}"),
        other => panic!("{other:?}"),
    }
    // Keys move within the rows shown.
    app.update(Action::Up);
    assert_eq!(
        app.shown_violations()
            .selected()
            .map(|v| v.operation.as_str()),
        Some("rm_two")
    );
}

#[test]
fn the_task_drawn_is_the_task_opened_copied_and_cancelled_when_the_filter_hides_the_selection() {
    let mut app = app();
    app.apply(submitted(1));
    app.apply(Event::OutputDelta {
        id: id(1),
        text: "first".into(),
    });
    app.set_filter(Pane::Tasks, "task 1");
    // A new task the filter hides is selected (follow), but the pane shows task 1.
    app.apply(submitted(2));
    assert_eq!(app.selected, Some(1));
    assert_eq!(app.shown_task().map(|t| t.id), Some(id(1)));
    app.show_pane(Pane::Tasks);
    assert_eq!(app.update(Action::CancelTask), [Command::Cancel(id(1))]);
    assert_eq!(
        app.update(Action::Copy),
        [Command::Copy("first".to_string())]
    );
}
