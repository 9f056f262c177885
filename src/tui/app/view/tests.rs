//! What a waiting task says it waits for, and a task in full in human durations.

use chrono::{TimeDelta, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::events::Event;
use crate::tui::output::LineKind;
use crate::tui::testing::{app, now};

/// The Mars link at 60× in the 2021 conjunction, as taken at the console's `now`.
fn mars_in_blackout() -> LinkStatus {
    LinkStatus {
        simulated: true,
        preset: "mars".into(),
        mode: "ephemeris".into(),
        one_way_ms: 1_336_000,
        one_way_min_ms: 186_000,
        one_way_max_ms: 1_338_000,
        sun_deg: Some(1.23),
        conjunction: "blackout".into(),
        time_scale: 60.0,
        sim_time: Utc.with_ymd_and_hms(2021, 10, 8, 0, 0, 0).unwrap(),
        taken_at: now(),
        blackout_ends: Some(Utc.with_ymd_and_hms(2021, 10, 14, 0, 0, 0).unwrap()),
    }
}

/// Task 1 through `states` (each at `now` plus its seconds); the task as the console holds it.
fn task(states: &[(i64, TaskStatus)]) -> TaskView {
    let mut app = app();
    let id = ExecutionId(Uuid::from_u128(1));
    app.apply(Event::TaskSubmitted {
        id,
        kind: "execute".into(),
        title: "Ping the far-side relay".into(),
        priority: Priority::Normal,
        backend: Some("mock".into()),
        model: Some("veyra-mock-1".into()),
        actor: None,
        at: now(),
    });
    for (secs, status) in states {
        app.apply(Event::TaskState {
            id,
            status: status.clone(),
            attempt: 1,
            at: now() + TimeDelta::seconds(*secs),
        });
    }
    app.tasks()[0].clone()
}

#[test]
fn a_waiting_task_says_what_it_waits_for() {
    let link = mars_in_blackout();
    let later = now() + TimeDelta::minutes(5);
    // Six simulated days at 60× are 2h24m; five minutes are gone.
    let dark = task(&[(
        0,
        TaskStatus::Blackout {
            sim_ms: 518_400_000,
            real_ms: 8_640_000,
        },
    )]);
    assert_eq!(
        dark.waiting_for(&link, 4, later).as_deref(),
        Some("waiting out a solar conjunction: the Mars link reopens 2021-10-14 (in 2h19m)")
    );
    let up = task(&[(
        0,
        TaskStatus::Uplink {
            sim_ms: 252_000,
            real_ms: 4_200,
        },
    )]);
    assert_eq!(
        up.waiting_for(&link, 4, now()).as_deref(),
        Some("on the uplink to Mars, arrives in 4m12s (simulated; 4.2s real)")
    );
    let at_one = LinkStatus {
        time_scale: 1.0,
        ..link.clone()
    };
    assert_eq!(
        up.waiting_for(&at_one, 4, now()).as_deref(),
        Some("on the uplink to Mars, arrives in 4m12s")
    );
    assert_eq!(
        task(&[]).waiting_for(&link, 4, now()).as_deref(),
        Some("queued for a slot (4 running)")
    );
    let retrying = task(&[(
        0,
        TaskStatus::Retrying {
            delay_ms: 2_000,
            error: "backend 'mock' (overloaded): relay orbiter overloaded".into(),
        },
    )]);
    assert_eq!(
        retrying.waiting_for(&link, 4, now()).as_deref(),
        Some(
            "attempt 1 failed, retrying in 2.0s: backend 'mock' (overloaded): relay orbiter overloaded"
        )
    );
    assert_eq!(
        task(&[(0, TaskStatus::Running)]).waiting_for(&link, 4, now()),
        None
    );
    assert_eq!(
        task(&[(0, TaskStatus::Succeeded)]).waiting_for(&link, 4, now()),
        None
    );
}

#[test]
fn a_task_in_full_gives_human_durations_and_when_a_blackout_ends() {
    let link = mars_in_blackout();
    let dark = task(&[(
        0,
        TaskStatus::Blackout {
            sim_ms: 518_400_000,
            real_ms: 8_640_000,
        },
    )]);
    let text = task_detail(&dark, &link, now() + TimeDelta::minutes(5)).join("\n");
    for needle in [
        "waiting    solar conjunction, the Sun 1.2° from Mars",
        "reopens    2021-10-14 00:00 UTC simulated (in 2h19m real)",
        "blackout — solar conjunction until 2021-10-14 (6d0h simulated, 2h24m wall)",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    assert!(!text.contains(" ms"), "no raw milliseconds:\n{text}");
    let done = task(&[
        (
            0,
            TaskStatus::Retrying {
                delay_ms: 2_000,
                error: "overloaded".into(),
            },
        ),
        (
            2,
            TaskStatus::Downlink {
                sim_ms: 252_000,
                real_ms: 4_200,
            },
        ),
        (7, TaskStatus::Succeeded),
    ]);
    let text = task_detail(&done, &link, now() + TimeDelta::minutes(5)).join("\n");
    for needle in [
        "retrying — in 2.0s after: overloaded",
        "downlink — 4m12s light time (simulated), 4.2s wall",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    assert!(!text.contains("waiting"), "{text}");
}

/// The error a task failed with, however long, is text like the rest: every wrapped row of it
/// shows at the live end (it was cut at three rows, and a word-wrapped row more than its
/// width alone counted for was lost), and scrolling back and down again returns to it.
#[test]
fn every_row_of_a_long_error_shows_at_the_end_of_the_output() {
    let error = "backend 'openai' (unreachable): error sending request for url \
                 (http://127.0.0.1:9/v1/chat/completions): client error (Connect): tcp connect \
                 error: Connection refused (os error 111) (is the server at http://127.0.0.1:9 \
                 running? check model.base_url, or start it)";
    let mut app = app();
    let id = ExecutionId(Uuid::from_u128(1));
    app.apply(Event::TaskSubmitted {
        id,
        kind: "execute".into(),
        title: "Summarise the telemetry".into(),
        priority: Priority::Normal,
        backend: Some("openai".into()),
        model: Some("gpt".into()),
        actor: None,
        at: now(),
    });
    app.apply(Event::OutputDelta {
        id,
        text: (1..=30).map(|i| format!("line {i}\n")).collect(),
    });
    app.apply(Event::TaskState {
        id,
        status: TaskStatus::Failed {
            error: error.into(),
            kind: "unreachable".into(),
            not_retried: None,
        },
        attempt: 1,
        at: now(),
    });
    // The Output pane's text at 80×24 (78 columns) and at 120×40.
    for (width, height) in [(78u16, 19u16), (118, 30)] {
        app.set_pane_sizes((width, height), 5, (width, height), (width + 2, height + 5));
        let task = &app.tasks()[0];
        let text = task.shown_text();
        let rows =
            crate::tui::output::visible_rows(&text, None, usize::from(width), usize::from(height));
        let shown: String = rows
            .iter()
            .filter(|(_, kind)| *kind == LineKind::Failure)
            .map(|(row, _)| *row)
            .collect();
        assert_eq!(shown, format!("✗ {error}"), "at {width} columns");
        assert_eq!(rows.last().map(|r| r.1), Some(LineKind::Failure));
        assert!(
            rows.iter().any(|(row, _)| *row == "line 30"),
            "the text above it"
        );
    }
    // Scrolled back to the top and down to the end again: back at the live end, error shown.
    app.show_pane(Pane::Output);
    app.update(crate::tui::keymap::Action::Top);
    assert!(app.output_anchor().is_some());
    app.update(crate::tui::keymap::Action::Bottom);
    assert_eq!(app.output_anchor(), None, "the end is the error's last row");
}
