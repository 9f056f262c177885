//! The screen, top to bottom. Every pane has a pure render function in `panes/`.
//!
//! ```text
//! ┌ Tasks (3 · 1 running) ─────────────────────────┐┌ Benchmarks (wide screens) ┐
//! │▶ NORM Summarise the telemetry               2s ││No benchmark run in this…  │
//! │✓ HIGH Check the power budget                1s ││                           │
//! └────────────────────────────────────────────────┘└───────────────────────────┘
//! ┌ Output · 1a2b3c4d · running · follow ──────────────────────────────────────┐
//! │Acknowledged: "Summarise the telemetry". Link budget is nominal and the     │
//! │uplink window is open.                                                      │
//! └────────────────────────────────────────────────────────────────────────────┘
//! ┌ Log ─────────────────────┐┌ Audit (2) ─────────────┐┌ Safety (1) ───────────┐
//! │12:00:01 I execution star…││head 9c40dec8e461       ││12:00:02 ⊘ execute:ope…│
//! │                          ││   2 EXECUTION execute …││                       │
//! └──────────────────────────┘└────────────────────────┘└───────────────────────┘
//! ┌ Prompt · priority normal ──────────────────────────────────────────────┐
//! │> █                                                                      │
//! └────────────────────────────────────────────────────────────────────────┘
//!  mock/veyra-mock-1 │ link earth (off) │ audit 2 a1b2c3d4e5f6 ✓ │ 12:00 UTC
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::app::{App, MouseTarget, Pane};
use super::panes;
use super::theme::Theme;

/// Screens at least this wide give Benchmarks its own place beside Tasks.
pub const WIDE: u16 = 140;

/// Smallest usable terminal.
pub const MIN_SIZE: (u16, u16) = (60, 16);

/// Screens narrower or lower than this show one pane at a time, as tabs (80×24 does).
pub const ROOMY: (u16, u16) = (100, 30);

/// True when the panes are tabs on a screen of `area`, one shown at a time.
pub fn compact(area: Rect) -> bool {
    area.width < ROOMY.0 || area.height < ROOMY.1
}

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
    /// The tab strip naming every pane, on small screens ([`compact`]); empty otherwise.
    pub tabs: Rect,
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

    /// Where the panes go for `app` on a screen of `area`: tabs on a small screen (the shown
    /// one and the Prompt), else every pane at once.
    pub fn for_app(app: &App, area: Rect) -> Areas {
        let status_rows = panes::status::rows(app, area.width);
        if compact(area) {
            // Zoomed, the shown pane takes the strip's row too.
            let shown = app.zoomed().unwrap_or(app.shown_tab());
            Areas::tabbed(area, shown, app.zoom(), status_rows)
        } else {
            Areas::of(area, app.zoomed(), app.bench_tab(), status_rows)
        }
    }

    /// One pane, `shown`, under a strip naming them all (none while `zoom`); the Prompt and
    /// status bar below.
    pub fn tabbed(area: Rect, shown: Pane, zoom: bool, status_rows: u16) -> Areas {
        let [tabs, body, prompt, status] = Layout::vertical([
            Constraint::Length(u16::from(!zoom)),
            Constraint::Min(3),
            Constraint::Length(3),
            Constraint::Length(status_rows.max(1)),
        ])
        .areas(area);
        let place = |p: Pane| if p == shown { body } else { Rect::ZERO };
        Areas {
            tasks: place(Pane::Tasks),
            output: place(Pane::Output),
            log: place(Pane::Log),
            audit: place(Pane::Audit),
            safety: place(Pane::Safety),
            benchmarks: place(Pane::Benchmarks),
            shared: false,
            tabs,
            prompt,
            status,
        }
    }

    /// Every pane's place, in focus order (empty where a pane is not drawn).
    pub fn places(&self) -> [(Rect, Pane); 7] {
        Pane::ORDER.map(|pane| {
            let rect = match pane {
                Pane::Tasks => self.tasks,
                Pane::Output => self.output,
                Pane::Benchmarks => self.benchmarks,
                Pane::Log => self.log,
                Pane::Audit => self.audit,
                Pane::Safety => self.safety,
                Pane::Prompt => self.prompt,
            };
            (rect, pane)
        })
    }

    /// The pane drawn at `at`, if any.
    pub fn pane_at(&self, at: ratatui::layout::Position) -> Option<Pane> {
        self.places()
            .into_iter()
            .find(|(rect, _)| rect.contains(at))
            .map(|(_, pane)| pane)
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
        // Output spans the whole width: streamed text scrolls it, and a terminal scrolls
        // whole rows, so with nothing beside it the terminal moves its lines instead of the
        // console rewriting them (see `scrolling`). Tasks (and Benchmarks) sit above it.
        let top_rows = (main.height * 42 / 100).clamp(5, 13);
        let [top, output] =
            Layout::vertical([Constraint::Length(top_rows), Constraint::Min(4)]).areas(main);
        let (tasks, benchmarks) = if area.width >= WIDE {
            // The Benchmarks column is as wide as its V-Score line with the interval.
            let [tasks, benchmarks] =
                Layout::horizontal([Constraint::Min(40), Constraint::Length(48)]).areas(top);
            (tasks, benchmarks)
        } else {
            (top, Rect::ZERO)
        };
        Areas {
            tasks,
            output,
            log,
            audit,
            safety,
            benchmarks,
            shared: area.width < WIDE,
            tabs: Rect::ZERO,
            prompt,
            status,
        }
    }

    /// The Output pane's text area (inside its border).
    pub fn output_text(&self) -> Rect {
        panes::output::text_area(self.output)
    }

    /// Rows of the Tasks list.
    pub fn task_rows(&self) -> u16 {
        panes::inner(self.tasks).height
    }
}

/// Tells `app` the sizes its keys depend on (a page of Output, rows of Tasks) for a screen of
/// `area`: the loop calls it before every frame, tests and benchmarks before drawing. Returns
/// where the panes go.
pub fn fit(app: &mut App, area: Rect) -> Areas {
    let areas = Areas::for_app(app, area);
    let text = areas.output_text();
    let focused = match app.focus() {
        Pane::Tasks | Pane::Prompt => areas.tasks,
        Pane::Output => areas.output,
        Pane::Log => areas.log,
        Pane::Audit => areas.audit,
        Pane::Safety => areas.safety,
        Pane::Benchmarks => areas.benchmarks,
    };
    let pane = panes::inner(focused);
    app.set_pane_sizes(
        (text.width, text.height),
        areas.task_rows(),
        (pane.width, pane.height),
        (area.width, area.height),
    );
    areas
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
        } else if let Some(plan) = app.bench_question() {
            text.push(Line::styled(
                format!(
                    "Start a benchmark run of {} executions on {}/{}? y starts · n cancels",
                    plan.executions, plan.backend, plan.model
                ),
                theme.warn,
            ));
        } else if let Some(super::app::Overlay::ConfirmQuit { active }) = &app.overlay() {
            text.push(Line::styled(
                format!("Quit? {active} in flight: y quits and cancels them · n keeps working"),
                theme.warn,
            ));
        }
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let areas = Areas::for_app(app, area);
    if !areas.tabs.is_empty() {
        render_tabs(app, theme, frame, areas.tabs);
    }
    // A zoomed-away pane (or a tab not shown) has no area and is not drawn.
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
    // Overlays know the framed panes under them, so that none is left showing a lone edge.
    let frames = areas
        .places()
        .into_iter()
        .filter(|(rect, pane)| *pane != Pane::Output && !rect.is_empty())
        .map(|(rect, _)| rect)
        .collect();
    panes::overlay::render(app, theme, frame, &panes::overlay::Stage { area, frames });
}

/// The strip's labels, in order: every pane but the Prompt, with what needs attention (active
/// tasks, refusals, a run going, a broken chain), the shown one between `[ ]` so it reads
/// without colour.
pub fn tab_labels(app: &App) -> Vec<(Pane, String)> {
    let shown = app.shown_tab();
    Pane::ORDER
        .into_iter()
        .filter(|p| *p != Pane::Prompt)
        .map(|pane| {
            let name = match pane {
                Pane::Tasks if app.active_tasks() > 0 => {
                    format!("Tasks {}", app.active_tasks())
                }
                Pane::Safety if !app.violations().is_empty() => {
                    format!("Safety {}", app.violations().len())
                }
                Pane::Benchmarks if app.bench_running() => "Benchmarks ▶".to_string(),
                Pane::Audit if chain_broken(app) => "Audit ✗".to_string(),
                other => other.name().to_string(),
            };
            let label = if pane == shown {
                format!("[{name}]")
            } else {
                format!(" {name} ")
            };
            (pane, label)
        })
        .collect()
}

/// What the mouse is over at (`column`, `row`) of a screen laid out as `areas`.
pub fn mouse_target(app: &App, areas: &Areas, column: u16, row: u16) -> MouseTarget {
    let at = ratatui::layout::Position::new(column, row);
    if areas.tabs.contains(at) {
        return tab_at(app, areas.tabs, column).map_or(MouseTarget::Nothing, MouseTarget::Tab);
    }
    areas
        .pane_at(at)
        .map_or(MouseTarget::Nothing, MouseTarget::Pane)
}

/// The tab whose label is at `column` of the strip drawn in `strip`.
pub fn tab_at(app: &App, strip: Rect, column: u16) -> Option<Pane> {
    use unicode_width::UnicodeWidthStr;
    let mut x = strip.x;
    for (pane, label) in tab_labels(app) {
        let width = u16::try_from(label.width()).unwrap_or(u16::MAX);
        if (x..x.saturating_add(width)).contains(&column) {
            return Some(pane);
        }
        x = x.saturating_add(width);
    }
    None
}

fn chain_broken(app: &App) -> bool {
    matches!(
        app.audit().verification,
        super::app::Verification::Failed { .. }
    )
}

/// The strip of tabs on a small screen ([`tab_labels`]) and the key that moves on. A broken
/// chain's tab is red from any tab.
fn render_tabs(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    use ratatui::text::Span;
    let shown = app.shown_tab();
    let mut spans: Vec<Span> = tab_labels(app)
        .into_iter()
        .map(|(pane, label)| {
            let style = if pane == shown {
                theme.selection
            } else if pane == Pane::Audit && chain_broken(app) {
                theme.error
            } else {
                theme.muted
            };
            Span::styled(label, style)
        })
        .collect();
    let next = app.key(super::keymap::Action::FocusNext);
    spans.push(Span::styled(format!(" · {next} next"), theme.muted));
    frame.render_widget(
        Paragraph::new(Line::from(panes::fit_spans(spans, usize::from(area.width)))),
        area,
    );
}
