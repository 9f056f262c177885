//! The screen, top to bottom. Every pane has a pure render function in `panes/`.
//!
//! ```text
//! ┌ Tasks (3 · 1 running) ─┐┌ Output · 1a2b3c4d · running · follow ───────┐
//! │▶ NORM Summarise the…2s ││Acknowledged: "Summarise the telemetry". Link │
//! │✓ HIGH Check the pow…1s ││budget is nominal and the uplink window is…   │
//! │                        ││                                              │
//! └────────────────────────┘└──────────────────────────────────────────────┘
//! ┌ Log ─────────────────────┐┌ Audit (2) ─────────────┐┌ Safety (1) ───────────┐
//! │12:00:01 I execution star…││head 9c40dec8e461       ││12:00:02 ⊘ execute:ope…│
//! │                          ││   2 EXECUTION execute …││                       │
//! └──────────────────────────┘└────────────────────────┘└───────────────────────┘
//! ┌ Prompt · priority normal ──────────────────────────────────────────────┐
//! │> █                                                                      │
//! └────────────────────────────────────────────────────────────────────────┘
//!  mock/veyra-mock-1 │ link earth (off) │ audit 2 a1b2c3d4e5f6 ✓ │ 12:00:03 UTC
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::app::{App, Pane};
use super::panes;
use super::theme::Theme;

/// Screens at least this wide give Benchmarks its own column beside Output.
pub const WIDE: u16 = 140;

/// Smallest usable terminal.
pub const MIN_SIZE: (u16, u16) = (60, 16);

/// Where each pane goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// Tasks pane.
    pub tasks: Rect,
    /// Output pane.
    pub output: Rect,
    /// Log pane.
    pub log: Rect,
    /// Audit pane.
    pub audit: Rect,
    /// Safety pane.
    pub safety: Rect,
    /// Benchmarks pane (on narrow screens it takes the Output's place while shown).
    pub benchmarks: Rect,
    /// True when Output and Benchmarks share one place (narrower than [`WIDE`]).
    pub shared: bool,
    /// Prompt line.
    pub prompt: Rect,
    /// Status bar.
    pub status: Rect,
}

impl Areas {
    /// Splits the screen; while `zoom` names a pane, it takes the whole body (everything
    /// above the Prompt) and the other panes are not drawn. Screens narrower than
    /// [`WIDE`] have no column for Benchmarks: it shares the Output's place, and `bench_tab`
    /// says which of the two is shown (the other's area is empty).
    /// `status_rows` is the status bar's height (more than one while a long message shows).
    pub fn of(area: Rect, zoom: Option<Pane>, bench_tab: bool, status_rows: u16) -> Areas {
        let mut areas = Areas::split(area, status_rows);
        if areas.benchmarks.is_empty() && bench_tab {
            areas.benchmarks = areas.output;
            areas.output = Rect::ZERO;
        }
        if let Some(pane) = zoom {
            let body = areas
                .tasks
                .union(areas.output)
                .union(areas.benchmarks)
                .union(areas.log)
                .union(areas.safety);
            let keep = |p: Pane| if p == pane { body } else { Rect::ZERO };
            areas.tasks = keep(Pane::Tasks);
            areas.output = keep(Pane::Output);
            areas.log = keep(Pane::Log);
            areas.audit = keep(Pane::Audit);
            areas.safety = keep(Pane::Safety);
            areas.benchmarks = keep(Pane::Benchmarks);
        }
        areas
    }

    /// The pane that shares `pane`'s place and is not shown now (narrow screens).
    pub fn tab_of(&self, pane: Pane) -> Option<Pane> {
        let (shown, other) = match pane {
            Pane::Output => (self.output, Pane::Benchmarks),
            Pane::Benchmarks => (self.benchmarks, Pane::Output),
            _ => return None,
        };
        let other_area = match other {
            Pane::Output => self.output,
            _ => self.benchmarks,
        };
        (self.shared && !shown.is_empty() && other_area.is_empty()).then_some(other)
    }

    fn split(area: Rect, status_rows: u16) -> Areas {
        let [main, bottom, prompt, status] = Layout::vertical([
            Constraint::Min(6),
            Constraint::Percentage(28),
            Constraint::Length(3),
            Constraint::Length(status_rows.max(1)),
        ])
        .areas(area);
        let [log, audit, safety] = Layout::horizontal([
            Constraint::Percentage(36),
            Constraint::Percentage(30),
            Constraint::Percentage(34),
        ])
        .areas(bottom);
        let (tasks, output, benchmarks) = if area.width >= WIDE {
            // The Benchmarks column is as wide as its V-Score line with the interval.
            let [tasks, output, benchmarks] = Layout::horizontal([
                Constraint::Percentage(28),
                Constraint::Min(40),
                Constraint::Length(48),
            ])
            .areas(main);
            (tasks, output, benchmarks)
        } else {
            let tasks_width = (area.width * 2 / 5).clamp(28, 64);
            let [tasks, output] =
                Layout::horizontal([Constraint::Length(tasks_width), Constraint::Min(20)])
                    .areas(main);
            (tasks, output, Rect::ZERO)
        };
        Areas {
            tasks,
            output,
            log,
            audit,
            safety,
            benchmarks,
            shared: area.width < WIDE,
            prompt,
            status,
        }
    }

    /// The Output pane's text area (inside its border).
    pub fn output_text(&self) -> Rect {
        panes::inner(self.output)
    }

    /// Rows of the Tasks list.
    pub fn task_rows(&self) -> u16 {
        panes::inner(self.tasks).height
    }
}

/// Tells `app` the sizes its keys depend on (a page of Output, rows of Tasks) for a screen of
/// `area`: the loop calls it before every frame, tests and benchmarks before drawing.
pub fn fit(app: &mut App, area: Rect) {
    let areas = Areas::of(
        area,
        app.zoomed(),
        app.bench_tab,
        panes::status::rows(app, area.width),
    );
    let text = areas.output_text();
    app.output_size = (text.width, text.height);
    app.tasks_rows = areas.task_rows();
}

/// True when the terminal is too small to lay out the panes.
pub fn too_small(area: Rect) -> bool {
    area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1
}

/// Draws the whole console.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame) {
    let area = frame.area();
    if too_small(area) {
        let mut text = vec![
            Line::styled("Terminal too small", theme.error),
            Line::from(format!(
                "{}×{} — Veyra needs at least {}×{}.",
                area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
            )),
            Line::styled(
                "Resize the window; tasks keep running. q quits.",
                theme.muted,
            ),
        ];
        // A question waiting for an answer is shown even here, so no key answers it unseen.
        if let Some(c) = app.open_confirmation() {
            text.push(Line::styled(
                format!(
                    "Waiting: allow {}? y once{} · n deny",
                    c.operation,
                    if c.scopable { " · a session" } else { "" }
                ),
                theme.warn,
            ));
        } else if let Some(super::app::Overlay::ConfirmQuit { active }) = &app.overlay {
            text.push(Line::styled(
                format!("Quit? {active} in flight: y quits and cancels them · n keeps working"),
                theme.warn,
            ));
        }
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let areas = Areas::of(
        area,
        app.zoomed(),
        app.bench_tab,
        panes::status::rows(app, area.width),
    );
    // A zoomed-away pane has no area and is not drawn.
    let drawn = |rect: Rect| !rect.is_empty();
    if drawn(areas.tasks) {
        panes::tasks::render(app, theme, frame, areas.tasks);
    }
    // A zoomed pane shares its place with nothing.
    let tab = |pane| {
        if app.zoomed().is_some() {
            None
        } else {
            areas.tab_of(pane)
        }
    };
    if drawn(areas.output) {
        panes::output::render(app, theme, frame, areas.output, tab(Pane::Output));
    }
    if drawn(areas.benchmarks) {
        panes::benchmarks::render(app, theme, frame, areas.benchmarks, tab(Pane::Benchmarks));
    }
    if drawn(areas.log) {
        panes::log::render(app, theme, frame, areas.log);
    }
    if drawn(areas.audit) {
        panes::audit::render(app, theme, frame, areas.audit);
    }
    if drawn(areas.safety) {
        panes::safety::render(app, theme, frame, areas.safety);
    }
    panes::prompt::render(app, theme, frame, areas.prompt);
    panes::status::render(app, theme, frame, areas.status);
    panes::overlay::render(app, theme, frame, area);
}
