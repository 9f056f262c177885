//! The status bar: what gives way at each width, and what never does.

use super::*;

fn text(spans: &[Span<'_>]) -> String {
    spans.iter().map(|s| s.content.as_ref()).collect()
}

#[test]
fn segments_give_way_by_priority_and_are_never_cut() {
    let segs = || {
        vec![
            (KEEP, Span::raw(" mock/m")),
            (DROP_FIRST, Span::raw(" 42 tok/s")),
            (KEEP, Span::raw(" │ ")),
            (DROP_LATER, Span::raw("mars fixed 12m ×60")),
            (DROP_FIRST, Span::raw(" sim 12-01 10:00")),
            (DROP_LATER, Span::raw(" │ ")),
            (DROP_LATER, Span::raw("audit 81 d953e114 ")),
            (ALARM, Span::raw("✗ CHAIN BROKEN")),
        ]
    };
    let all = text(&fit_segments(segs(), 200));
    assert_eq!(
        all,
        " mock/m 42 tok/s │ mars fixed 12m ×60 sim 12-01 10:00 │ audit 81 d953e114 ✗ CHAIN BROKEN"
    );
    // Narrower: the sim date and the rate go first, later segments of a level before
    // earlier ones; the hash is whole or absent, the broken chain always there.
    for width in 20..all.chars().count() {
        let got = text(&fit_segments(segs(), width));
        assert!(got.chars().count() <= width, "{width}: {got}");
        assert!(got.contains("✗ CHAIN BROKEN"), "{width}: {got}");
        assert!(
            got.contains("d953e114") || !got.contains("d953"),
            "{width}: the hash cut: {got}"
        );
    }
    assert_eq!(
        text(&fit_segments(segs(), 63)),
        " mock/m │ mars fixed 12m ×60 │ audit 81 d953e114 ✗ CHAIN BROKEN"
    );
    assert_eq!(
        text(&fit_segments(segs(), 62)),
        " mock/m │ mars fixed 12m ×60 │ ✗ CHAIN BROKEN"
    );
}

/// The console's test fixture on `link`, its clock five real minutes after the status.
fn on_link(link: LinkStatus) -> App {
    let mut app = crate::tui::testing::app();
    let at = app.now();
    app.apply(crate::events::Event::LinkChanged {
        link,
        switched: false,
        at,
    });
    app.clear_flash();
    app.tick(at + chrono::TimeDelta::minutes(5));
    app
}

fn mars(mode: &str, conjunction: &str) -> LinkStatus {
    use chrono::TimeZone;
    let now = crate::tui::testing::now();
    LinkStatus {
        simulated: true,
        preset: "mars".into(),
        mode: mode.into(),
        one_way_ms: 762_000,
        one_way_min_ms: 186_000,
        one_way_max_ms: 1_338_000,
        sun_deg: Some(1.23),
        conjunction: conjunction.into(),
        time_scale: 60.0,
        sim_time: Utc.with_ymd_and_hms(2021, 10, 8, 0, 0, 0).unwrap(),
        taken_at: now,
        blackout_ends: (conjunction == "blackout")
            .then(|| Utc.with_ymd_and_hms(2021, 10, 14, 0, 0, 0).unwrap()),
    }
}

/// The bar drawn `width` columns wide: its text, and the style of the cell at `needle`.
fn drawn(app: &App, width: u16, needle: &str) -> (String, Option<Style>) {
    let theme = Theme::from(&crate::config::theme::default_theme().unwrap());
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, 1)).unwrap();
    terminal.draw(|f| render(app, &theme, f, f.area())).unwrap();
    let buffer = terminal.backend().buffer();
    let cells: Vec<_> = buffer.content().iter().collect();
    let line: String = cells.iter().map(|c| c.symbol()).collect();
    let style = line
        .find(needle)
        .map(|byte| cells[line[..byte].chars().count()].style());
    (line, style)
}

#[test]
fn a_blackout_says_the_sun_angle_and_when_the_link_reopens_at_every_width() {
    let app = on_link(mars("ephemeris", "blackout"));
    let theme = Theme::from(&crate::config::theme::default_theme().unwrap());
    // Five real minutes at 60× are five simulated hours: 5d19h simulated are left, which
    // the operator waits 2h19m for.
    let want = [
        (
            160,
            "mars ephemeris 12m42s ×60 sim 2021-10-08 05:00 BLACKOUT · Sun 1.2° · reopens \
             2021-10-14 (in 2h19m) │ audit 0 00000000 unverified",
        ),
        (
            120,
            "mars ephemeris 12m42s ×60 BLACKOUT · Sun 1.2° · reopens 2021-10-14 (in 2h19m)",
        ),
        (100, "mars ephemeris 12m42s ×60 BLACKOUT → 10-14 (in 2h19m)"),
        (
            80,
            " mock/veyra-mock-1 │ BLACKOUT · Sun 1.2° → 2021-10-14 (in 2h19m) ",
        ),
        (70, " mock/veyra-mock-1 │ BLACKOUT → 10-14 (in 2h19m) "),
        (60, " mock/veyra-mock-1 │ BLACKOUT → 10-14 "),
        (40, "BLACKOUT → 10-14 "),
    ];
    for (width, text) in want {
        let (line, style) = drawn(&app, width, "BLACKOUT");
        assert!(line.contains(text), "{width}: {line}");
        assert!(!line.contains("  BLACKOUT"), "{width}: {line}");
        assert_eq!(
            style.map(|s| s.fg),
            Some(theme.status.patch(theme.error).fg),
            "{width}: the alarm is in the error style"
        );
    }
}

#[test]
fn over_a_fleet_the_bar_counts_workers_and_their_links_and_keeps_them_at_80_columns() {
    // A console over a fleet has no audit trail of its own.
    let mut app = App::new(
        crate::tui::testing::app().link().clone(),
        false,
        crate::tui::keymap::KeyMap::default(),
        vec![crate::config::theme::default_theme().unwrap()],
        crate::tui::testing::now(),
    );
    let worker = |name: &str, link: LinkStatus| crate::service::protocol::FleetWorker {
        name: name.into(),
        host: "gpu-1".into(),
        pid: 1,
        version: "0".into(),
        backend: "mock".into(),
        model: "veyra-mock-1".into(),
        link,
        running: 0,
        room: 512,
        at: crate::tui::testing::now(),
    };
    let mut earth = mars("uniform", "clear");
    earth.preset = "earth".into();
    earth.simulated = false;
    app.set_fleet(&[
        worker("a", earth.clone()),
        worker("b", mars("uniform", "clear")),
        worker("c\u{1b}[2J", earth),
    ]);
    let (line, _) = drawn(&app, 160, "fleet");
    assert!(
        line.contains("⇄ fleet · 3 workers (earth ×2, mars ×1)"),
        "{line}"
    );
    assert!(line.contains("audit at each worker"), "{line}");
    let (line, _) = drawn(&app, 80, "fleet");
    assert!(line.contains("fleet · 3 workers"), "{line}");
    app.set_fleet(&[]);
    let (line, _) = drawn(&app, 80, "fleet");
    assert!(line.contains("fleet · no workers"), "{line}");
}

#[test]
fn the_bar_says_a_uniform_delay_is_a_range_and_a_fixed_one_its_value() {
    let (line, _) = drawn(&on_link(mars("uniform", "clear")), 120, "mars");
    assert!(line.contains("mars uniform 3m06s–22m18s ×60"), "{line}");
    let (line, _) = drawn(&on_link(mars("fixed", "clear")), 120, "mars");
    assert!(line.contains("mars fixed 12m42s ×60"), "{line}");
    assert!(!line.contains("BLACKOUT"), "{line}");
}

#[test]
fn a_segment_takes_its_shorter_forms_before_it_goes() {
    let segs = || {
        vec![
            Segment::from((KEEP, Span::raw("mock"))),
            Segment::from((DROP_LATER, Span::raw(" mars"))),
            Segment {
                keep: DROP_FIRST,
                span: Span::raw(" ALARM long"),
                shorter: vec![(ALARM, Span::raw(" AL"))],
                longer: Vec::new(),
            },
        ]
    };
    assert_eq!(text(&fit_segments(segs(), 20)), "mock mars ALARM long");
    assert_eq!(text(&fit_segments(segs(), 19)), "mock mars AL");
    assert_eq!(text(&fit_segments(segs(), 8)), "mock AL");
    assert_eq!(text(&fit_segments(segs(), 3)), " AL");
}

#[test]
fn a_message_is_cut_with_an_ellipsis_before_what_must_stay_goes() {
    let segs = vec![
        (KEEP, Span::raw(" mock/m")),
        (KEEP, Span::raw(" │ ")),
        (
            SHRINK,
            Span::raw("benchmark run failed: the store is on a full disk; free space"),
        ),
    ];
    let got = text(&fit_segments(segs, 40));
    assert_eq!(got.chars().count(), 40, "{got}");
    assert!(got.starts_with(" mock/m │ benchmark run failed"), "{got}");
    assert!(got.ends_with('…'), "{got}");
}

#[test]
fn a_long_message_wraps_at_spaces_and_keeps_every_character() {
    use unicode_width::UnicodeWidthStr;
    let text = "unknown command ':prset'; did you mean 'preset'? commands: backend, preset, theme";
    for width in [1, 7, 20, 33, 80] {
        let lines = wrap(text, width);
        for l in &lines {
            assert!(l.width() <= width, "{width}: {l:?}");
        }
        let joined: String = lines.concat();
        assert_eq!(joined.replace(' ', ""), text.replace(' ', ""), "{width}");
    }
    assert_eq!(
        wrap(text, 33),
        [
            "unknown command ':prset'; did you",
            "mean 'preset'? commands: backend,",
            "preset, theme"
        ]
    );
    assert_eq!(wrap("火星火星", 3), ["火", "星", "火", "星"]);
}

#[test]
fn the_bar_grows_for_a_long_message_and_no_more_than_three_rows() {
    let mut app = crate::tui::app::tests::app();
    assert_eq!(rows(&app, 80), 1);
    app.flash("short", FlashLevel::Info);
    assert_eq!(rows(&app, 80), 1);
    app.flash("word ".repeat(20), FlashLevel::Error);
    assert_eq!(rows(&app, 80), 2, "100 columns of words at 80");
    app.flash("word ".repeat(200), FlashLevel::Error);
    assert_eq!(rows(&app, 80), 3);
    // Drawn: the whole message over two rows, the clock beside the first.
    app.flash(
        "unknown command ':prset'; did you mean 'preset'? commands: backend, preset, theme, priority, focus, log",
        FlashLevel::Error,
    );
    let theme = Theme::from(&crate::config::theme::default_theme().unwrap());
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 2)).unwrap();
    terminal
        .draw(|f| render(&app, &theme, f, f.area()))
        .unwrap();
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("did you mean 'preset'?"), "{screen}");
    assert!(screen.contains("focus, log"), "the end is kept: {screen}");
    assert!(screen.contains("UTC"), "{screen}");
}

#[test]
fn a_message_alone_is_cut_to_fit_whatever_its_characters() {
    use unicode_width::UnicodeWidthStr;
    for message in [
        " the store is on a full disk; free space and resume",
        " ⚠️ relay ⚠️ overloaded ⚠️ again ⚠️ and again ⚠️",
        " 火星への中継が過負荷です。後で再試行してください",
    ] {
        for width in 1..message.width() {
            let got = text(&fit_segments(
                vec![
                    (DROP_LATER, Span::raw(" mock/m │")),
                    (SHRINK, Span::raw(message)),
                ],
                width,
            ));
            assert!(got.width() <= width, "{width}: {got:?} is {}", got.width());
            assert!(got.ends_with('…'), "{width}: {got:?}");
            assert!(
                !got.contains("mock/m"),
                "the backend gives way first: {got:?}"
            );
        }
    }
}
