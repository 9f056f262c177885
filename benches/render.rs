//! One full console frame at 160×48 into ratatui's `TestBackend`, with 10,000 tasks and 5 MB
//! of streamed output held in the panes. Run: `cargo bench --bench render`.

use chrono::{TimeZone, Utc};
use divan::Bencher;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use uuid::Uuid;
use veyra::config::theme::default_theme;
use veyra::events::{Event, ExecutionId, LinkStatus, Priority, TaskStatus};
use veyra::tui::app::{App, LinkView};
use veyra::tui::keymap::KeyMap;
use veyra::tui::layout;
use veyra::tui::theme::Theme;

fn main() {
    divan::main();
}

const TASKS: u128 = 10_000;
const TOTAL_BYTES: usize = 5 * 1024 * 1024;

fn loaded_app() -> App {
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
        .single()
        .expect("valid date");
    let link = LinkView {
        backend: "mock".into(),
        model: "veyra-mock-1".into(),
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
            sim_time: t0,
            taken_at: t0,
            blackout_ends: None,
        },
    };
    let theme = default_theme().expect("built-in theme parses");
    let mut app = App::new(link, true, KeyMap::default(), vec![theme], t0);
    let line = "Telemetry from the habitat shows all subsystems within limits; thermal margins are healthy.\n";
    let per_task = TOTAL_BYTES / TASKS as usize;
    for n in 0..TASKS {
        let id = ExecutionId(Uuid::from_u128(n + 1));
        app.apply(Event::TaskSubmitted {
            id,
            kind: "execute".into(),
            title: format!("Prompt number {n} about the rover traverse"),
            priority: Priority::ALL[(n % 5) as usize],
            backend: Some("mock".into()),
            model: Some("veyra-mock-1".into()),
            actor: None,
            at: t0,
        });
        let status = match n % 3 {
            0 => TaskStatus::Running,
            1 => TaskStatus::Uplink {
                sim_ms: 1_140_000,
                real_ms: 19_000,
            },
            _ => TaskStatus::Downlink {
                sim_ms: 1_140_000,
                real_ms: 19_000,
            },
        };
        app.apply(Event::TaskState {
            id,
            status,
            attempt: 1,
            at: t0,
        });
        let mut text = String::with_capacity(per_task);
        while text.len() + line.len() <= per_task {
            text.push_str(line);
        }
        app.apply(Event::OutputDelta { id, text });
    }
    // Select a task in the middle (of those the console keeps), so the list is scrolled.
    app.select_task(app.tasks().len() / 2);
    app
}

#[divan::bench]
fn full_frame_160x48_10k_tasks_5mb(bencher: Bencher) {
    let mut app = loaded_app();
    let theme = Theme::from(app.current_theme().expect("one theme loaded"));
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("test backend");
    layout::fit(&mut app, ratatui::layout::Rect::new(0, 0, 160, 48));
    bencher.bench_local(|| {
        terminal
            .draw(|f| layout::render(&app, &theme, f))
            .expect("drawing into a test backend cannot fail")
            .area
    });
}
