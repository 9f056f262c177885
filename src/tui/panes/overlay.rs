//! Modals drawn over the panes: an operation waiting for the operator's confirmation (what is
//! asked, by which rule, and the answers), the help overlay (generated from the key map) and
//! the quit confirmation.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};

use crate::tui::app::{App, COMMAND_TABLE, DetailPage, Overlay};
use crate::tui::keymap::{Action, Mode};
use crate::tui::theme::Theme;

use super::ellipsize;

/// Tasks not yet ended, counted by where they are: `1 on the uplink, 2 running`.
fn in_flight(app: &App) -> String {
    use crate::events::TaskStatus;
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for t in app.tasks().iter().filter(|t| t.is_active()) {
        let place = match t.status {
            TaskStatus::Queued => "queued",
            TaskStatus::Uplink { .. } => "on the uplink",
            TaskStatus::Running => "running",
            TaskStatus::Downlink { .. } => "on the downlink",
            TaskStatus::Retrying { .. } => "waiting to retry",
            TaskStatus::Blackout { .. } => "held by a blackout",
            TaskStatus::Succeeded | TaskStatus::Failed { .. } | TaskStatus::Cancelled { .. } => {
                continue;
            }
        };
        match counts.iter_mut().find(|(p, _)| *p == place) {
            Some((_, n)) => *n += 1,
            None => counts.push((place, 1)),
        }
    }
    counts
        .iter()
        .map(|(place, n)| format!("{n} {place}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where an overlay goes: the screen, and the framed panes drawn under it.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The whole screen.
    pub area: Rect,
    /// The panes drawn with a frame (every side bordered) under the overlay.
    pub frames: Vec<Rect>,
}

impl Stage {
    /// A box of `width` × `height` (at most the screen) in the middle of the screen, moved
    /// (or grown) by a row where it would cover a framed pane whole but for its top or bottom
    /// border: a frame's edge never dangles alone beside a box.
    fn centered(&self, width: u16, height: u16) -> Rect {
        let area = self.area;
        let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
            .flex(Flex::Center)
            .areas(area);
        let [rect] = Layout::horizontal([Constraint::Length(width.min(area.width))])
            .flex(Flex::Center)
            .areas(v);
        let fits = |r: &Rect| area.contains(r.as_position()) && r.bottom() <= area.bottom();
        for candidate in [
            rect,
            Rect {
                y: rect.y + 1,
                ..rect
            },
            Rect {
                y: rect.y.saturating_sub(1),
                ..rect
            },
            Rect {
                height: rect.height + 1,
                ..rect
            },
            Rect {
                y: rect.y.saturating_sub(1),
                height: rect.height + 1,
                ..rect
            },
        ] {
            if fits(&candidate) && !self.leaves_an_edge(candidate) {
                return candidate;
            }
        }
        rect
    }

    /// Whether `rect`, spanning a framed pane's width, covers all of it but its bottom or its
    /// top border row.
    fn leaves_an_edge(&self, rect: Rect) -> bool {
        self.frames.iter().any(|p| {
            let spans = rect.x <= p.x && rect.right() >= p.right() && !p.is_empty();
            let bottom_left = p.y >= rect.y && p.bottom() == rect.bottom() + 1;
            let top_left = p.bottom() <= rect.bottom() && p.y + 1 == rect.y;
            spans && (bottom_left || top_left)
        })
    }
}

/// Draws the open overlay, if any, over the panes framed in `stage`.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, stage: &Stage) {
    let area = stage.area;
    if let Some(c) = app.open_confirmation() {
        let key = |action| app.keymap().key_hint(Mode::Question, action);
        let mut text = vec![Line::from(vec![
            Span::raw("Allow "),
            Span::styled(c.operation.clone(), theme.accent),
            Span::raw(format!(" for task {}?", c.id.short())),
        ])];
        // The modal is at most 72 columns wide, and narrower on a narrow screen: its lines
        // wrap to it, the arguments (which can be a whole file) cut to one row.
        let width = area.width.min(72);
        let inner = usize::from(width.saturating_sub(2));
        if let Some(detail) = &c.detail {
            text.push(Line::from(vec![
                Span::styled("with: ", theme.muted),
                Span::styled(ellipsize(detail, inner.saturating_sub(8)), theme.text),
            ]));
        }
        text.push(Line::from(vec![
            Span::styled("rule: ", theme.muted),
            Span::styled(c.reason.clone(), theme.text),
        ]));
        text.push(Line::from(vec![
            Span::styled(key(Action::Yes), theme.accent),
            Span::raw(" allow once · "),
            Span::styled(key(Action::No), theme.accent),
            Span::raw(" deny"),
        ]));
        if c.scopable {
            text.push(Line::from(vec![
                Span::styled(key(Action::Always), theme.accent),
                Span::raw(" allow this tool until the console closes"),
            ]));
        }
        text.push(Line::styled(
            format!(
                "every answer is audited · keys are ignored for {:.1} s at first",
                app.confirm_guard().as_secs_f64()
            ),
            theme.muted,
        ));
        let waiting = app.confirmations().len();
        if waiting > 1 {
            text.push(Line::styled(
                format!("{} more waiting", waiting - 1),
                theme.muted,
            ));
        }
        let text: Vec<Line> = text
            .into_iter()
            .flat_map(|line| super::wrap_line(&line, inner))
            .collect();
        let rect = stage.centered(
            width,
            u16::try_from(text.len())
                .unwrap_or(u16::MAX)
                .saturating_add(2),
        );
        let block = Block::default()
            .borders(Borders::ALL)
            .border_type(BorderType::Double)
            .border_style(theme.warn)
            .title(Span::styled(" Confirm operation ", theme.title))
            .style(theme.overlay);
        frame.render_widget(Clear, rect);
        frame.render_widget(Paragraph::new(text).block(block), rect);
        return;
    }
    match &app.overlay() {
        None => {}
        Some(Overlay::Help) => help(app, theme, frame, stage),
        Some(Overlay::Detail { title, lines }) => detail(app, theme, frame, stage, title, lines),
        Some(Overlay::ConfirmBench(plan)) => {
            let text = super::benchmarks::plan_lines(app, plan, theme, 68);
            let rect = stage.centered(72, u16::try_from(text.len() + 2).unwrap_or(u16::MAX));
            let block = Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Double)
                .border_style(theme.warn)
                .title(Span::styled(" Start a benchmark run? ", theme.title))
                .style(theme.overlay);
            frame.render_widget(Clear, rect);
            frame.render_widget(Paragraph::new(text).block(block), rect);
        }
        Some(Overlay::ConfirmQuit { active }) => {
            let key = |action| app.keymap().key_hint(Mode::Question, action);
            let mut text = Vec::new();
            let mut width = 60;
            if *active > 0 {
                text.push(Line::from(format!(
                    "{active} task{} in flight:",
                    if *active == 1 { " is" } else { "s are" }
                )));
                text.push(Line::styled(in_flight(app), theme.muted));
            }
            // Quitting cancels the console's benchmark run too: say which, and how to finish it.
            if let Some(run) = app.bench().run.as_ref().filter(|r| r.state.is_active()) {
                width = 76;
                // A resumed run's id came from the command line: untrusted text.
                let id = run
                    .id
                    .as_deref()
                    .map(|id| crate::sanitize::sanitize_line(id).into_owned());
                text.push(Line::from(match &id {
                    Some(id) => format!("benchmark run {id} will be cancelled"),
                    None => format!("benchmark run {} will be cancelled", run.label),
                }));
                if let Some(id) = &id {
                    text.push(Line::styled(
                        format!("(finish it later: veyra bench --resume {id})"),
                        theme.muted,
                    ));
                }
            }
            text.push(Line::from(vec![
                Span::styled(key(Action::Yes), theme.accent),
                Span::raw(" quit and cancel them · "),
                Span::styled(key(Action::No), theme.accent),
                Span::raw(" keep working"),
            ]));
            let height = u16::try_from(text.len())
                .unwrap_or(u16::MAX)
                .saturating_add(2);
            let rect = stage.centered(width, height);
            let block = Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Double)
                .border_style(theme.warn)
                .title(Span::styled(" Quit? ", theme.title))
                .style(theme.overlay);
            frame.render_widget(Clear, rect);
            frame.render_widget(Paragraph::new(text).block(block), rect);
        }
        Some(Overlay::RuntimeGone { reason }) => {
            let key = |action| app.keymap().key_hint(Mode::Question, action);
            let width = 64;
            let inner = usize::from(width - 2);
            let lines = vec![
                Line::from("The runtime this console was attached to is gone:"),
                Line::styled(reason.clone(), theme.muted),
                Line::from(""),
                Line::from("The tasks it was running ended with it."),
                Line::from(vec![
                    Span::styled(key(Action::Yes), theme.accent),
                    Span::raw(" host a runtime here · "),
                    Span::styled(key(Action::No), theme.accent),
                    Span::raw(" quit"),
                ]),
            ];
            let text: Vec<Line> = lines
                .into_iter()
                .flat_map(|line| super::wrap_line(&line, inner))
                .collect();
            let height = u16::try_from(text.len())
                .unwrap_or(u16::MAX)
                .saturating_add(2);
            let rect = stage.centered(width, height);
            let block = Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Double)
                .border_style(theme.error)
                .title(Span::styled(" Runtime gone ", theme.title))
                .style(theme.overlay);
            frame.render_widget(Clear, rect);
            frame.render_widget(Paragraph::new(text).block(block), rect);
        }
    }
}

/// A detail view: its lines wrapped to the box ([`DetailPage`]), from where the operator
/// scrolled, and a footer that stays on the box's last row saying where in the text it is and
/// which keys scroll and close it.
fn detail(
    app: &App,
    theme: &Theme,
    frame: &mut Frame,
    stage: &Stage,
    title: &str,
    lines: &[String],
) {
    let area = stage.area;
    let page = DetailPage::new(lines, (area.width, area.height));
    let offset = app.detail_scroll().min(page.max_scroll());
    let height = u16::try_from(page.body + 3).unwrap_or(u16::MAX);
    let rect = stage.centered(page.width, height);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.border_focused)
        .title(Span::styled(format!(" {title} "), theme.title))
        .style(theme.overlay);
    frame.render_widget(Clear, rect);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let text: Vec<Line> = page
        .rows
        .iter()
        .skip(offset)
        .take(page.body)
        .map(|row| Line::styled(row.to_string(), theme.text))
        .collect();
    let [body, footer] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
    frame.render_widget(Paragraph::new(text), body);
    // What matters most first: a narrow box drops hints from the end.
    let key = |action| app.key(action);
    let mut hints = Vec::new();
    let scrolls = page.max_scroll() > 0;
    if scrolls {
        let last = offset + page.body;
        hints.push(Span::styled(
            format!(
                "{} {}–{}/{} · ",
                if last < page.rows.len() { "↓" } else { "↑" },
                offset + 1,
                last,
                page.rows.len()
            ),
            theme.accent,
        ));
    }
    hints.push(Span::styled(
        format!("{} closes", key(Action::Cancel)),
        theme.muted,
    ));
    if scrolls {
        hints.push(Span::styled(
            format!(
                " · {}/{} {}/{} {}/{} scroll",
                key(Action::Down),
                key(Action::Up),
                key(Action::PageDown),
                key(Action::PageUp),
                key(Action::Top),
                key(Action::Bottom)
            ),
            theme.muted,
        ));
    }
    hints.push(Span::styled(
        format!(" · {} copies", key(Action::Copy)),
        theme.muted,
    ));
    frame.render_widget(
        Paragraph::new(Line::from(super::fit_spans(
            hints,
            usize::from(footer.width),
        ))),
        footer,
    );
}

fn help(app: &App, theme: &Theme, frame: &mut Frame, stage: &Stage) {
    let area = stage.area;
    if app.help_page() == 1 {
        return help_story(app, theme, frame, stage);
    }
    const SECTIONS: [(Mode, &str); 4] = [
        (Mode::Normal, "Browsing"),
        (Mode::Editing, "Editing the prompt"),
        (Mode::Command, "Command line"),
        (Mode::Question, "Questions"),
    ];
    let bindings = app.keymap().bindings();
    // Bindings, section headings, footer, borders.
    let fits = (bindings.len() + SECTIONS.len() + 1 + 2) as u16 <= area.height;
    // Two columns on short terminals: at most two keys per action to keep them narrow.
    let max_keys = if fits { usize::MAX } else { 2 };
    let key_text = |b: &crate::tui::keymap::Binding| {
        b.keys
            .iter()
            .take(max_keys)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let key_width = bindings
        .iter()
        .map(|b| key_text(b).chars().count())
        .max()
        .unwrap_or(10)
        + 2;
    let mut lines: Vec<Line> = Vec::new();
    for (mode, heading) in SECTIONS {
        lines.push(Line::styled(heading, theme.title));
        for b in bindings.iter().filter(|b| b.mode == mode) {
            lines.push(Line::from(vec![
                Span::styled(format!(" {:<key_width$}", key_text(b)), theme.accent),
                Span::styled(b.description, theme.text),
            ]));
        }
    }
    lines.push(Line::styled(
        format!(
            "{}: page 2 · other keys close",
            app.keymap().key_hint(Mode::Normal, Action::FocusNext)
        ),
        theme.muted,
    ));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.border_focused)
        .title(Span::styled(" Help 1/2 — keys ", theme.title))
        .style(theme.overlay);
    if fits {
        let rect = stage.centered(64, lines.len() as u16 + 2);
        frame.render_widget(Clear, rect);
        frame.render_widget(Paragraph::new(lines).block(block), rect);
        return;
    }
    let room = usize::from(area.height.saturating_sub(2)).max(1);
    let half = lines.len().div_ceil(2);
    // Two columns where they fit whole; otherwise one column that scrolls (j/k), so no key's
    // description is cut and no section lost.
    if area.width >= 80 && half <= room {
        let right = lines.split_off(half);
        let rect = stage.centered(area.width, u16::try_from(half + 2).unwrap_or(u16::MAX));
        frame.render_widget(Clear, rect);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [l, r] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(inner);
        frame.render_widget(Paragraph::new(lines), l);
        frame.render_widget(Paragraph::new(right), r);
        return;
    }
    let max = lines.len().saturating_sub(room);
    let offset = app.help_scroll().min(max);
    lines.drain(..offset);
    let block = block.title(Span::styled(
        format!(
            " {} {}/{} — {}/{} scroll ",
            if offset < max { "↓" } else { "↑" },
            offset + room.min(lines.len()),
            offset + lines.len(),
            app.key(Action::Down),
            app.key(Action::Up)
        ),
        theme.accent,
    ));
    let rect = stage.centered(
        area.width.min(64),
        u16::try_from(room.min(lines.len()) + 2).unwrap_or(u16::MAX),
    );
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}

/// The help's second page: what each pane is for, what the glyphs mean, and the `:` commands
/// (from the command table). Two columns; fits 80×24.
fn help_story(app: &App, theme: &Theme, frame: &mut Frame, stage: &Stage) {
    let area = stage.area;
    let row = |key: &str, width: usize, text: &str| {
        Line::from(vec![
            Span::styled(format!(" {key:<width$}"), theme.accent),
            Span::styled(text.to_string(), theme.text),
        ])
    };
    let mut left = vec![Line::styled("Panes", theme.title)];
    let key = |a| app.key(a);
    for (pane, what) in [
        ("Tasks", "prompts, state, time".to_string()),
        ("Output", "the answer; ⚙ tool calls".to_string()),
        ("Log", format!("log; {} shows fields", key(Action::Open))),
        ("Audit", "hash chain, its checks".to_string()),
        ("Safety", "refusals, newest first".to_string()),
        (
            "Benchmarks",
            format!("V-Score, bars; {} runs", key(Action::StartBench)),
        ),
        (
            "Prompt",
            format!(
                "{} types, {} sends",
                key(Action::EditPrompt),
                app.keymap().key_hint(Mode::Editing, Action::Submit)
            ),
        ),
        ("status", "backend, link, audit".to_string()),
    ] {
        left.push(row(pane, 11, &what));
    }
    left.push(Line::styled("Task states", theme.title));
    for (glyph, what) in [
        ("· ↑ ▶ ↓", "queued/up/running/down"),
        ("↻ ⊘", "retry wait, blackout"),
        ("✓ ✗ ⊗", "done, failed, cancelled"),
        ("T-3m05s", "time left (link: sim time)"),
        ("1.2s", "wall time since sent"),
        ("⇄ [ ]", "shares the place; tab shown"),
    ] {
        left.push(row(glyph, 8, what));
    }
    let mut right = vec![Line::styled("Commands (:)", theme.title)];
    // The longest command's name and a space: `approvals [revoke N]`.
    let width = COMMAND_TABLE
        .iter()
        .map(|(name, _, _)| name.chars().count())
        .max()
        .unwrap_or(8)
        + 1;
    for (name, args, what) in COMMAND_TABLE {
        let text = if args.is_empty() {
            what.to_string()
        } else {
            format!("{args}: {what}")
        };
        right.push(row(name, width, &text));
    }
    right.push(Line::styled("Audit rows", theme.title));
    right.push(row("✓ ✗ ⊗", width, "ok, refused/failed, cancelled"));
    right.push(Line::styled(
        format!(
            "{}: keys · other keys close",
            app.keymap().key_hint(Mode::Normal, Action::FocusNext)
        ),
        theme.muted,
    ));
    let rows = left.len().max(right.len());
    let room = usize::from(area.height.saturating_sub(2)).max(1);
    if area.width < 80 || rows > room {
        // Narrow or short: one column, scrolled with j/k, nothing cut.
        let mut lines = left;
        lines.append(&mut right);
        let max = lines.len().saturating_sub(room);
        let offset = app.help_scroll().min(max);
        lines.drain(..offset);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_type(BorderType::Rounded)
            .border_style(theme.border_focused)
            .title(Span::styled(" Help 2/2 ", theme.title))
            .title(Span::styled(
                format!(
                    " {} {}/{} — {}/{} scroll ",
                    if offset < max { "↓" } else { "↑" },
                    offset + room.min(lines.len()),
                    offset + lines.len(),
                    app.key(Action::Down),
                    app.key(Action::Up)
                ),
                theme.accent,
            ))
            .style(theme.overlay);
        let rect = stage.centered(
            area.width.min(64),
            u16::try_from(room.min(lines.len()) + 2).unwrap_or(u16::MAX),
        );
        frame.render_widget(Clear, rect);
        frame.render_widget(Paragraph::new(lines).block(block), rect);
        return;
    }
    let height = u16::try_from(rows + 2).unwrap_or(u16::MAX);
    let rect = stage.centered(area.width.min(110), height);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.border_focused)
        .title(Span::styled(
            " Help 2/2 — panes, glyphs, commands ",
            theme.title,
        ))
        .style(theme.overlay);
    frame.render_widget(Clear, rect);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [l, r] = Layout::horizontal([Constraint::Length(37), Constraint::Min(20)]).areas(inner);
    frame.render_widget(Paragraph::new(left), l);
    frame.render_widget(Paragraph::new(right), r);
}
