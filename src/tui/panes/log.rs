//! The `Log` pane: this process's log, one compact line per event — time (UTC), level, the
//! short execution id, the message — oldest at the top. `k`/`j` select a line (the pane
//! pages back with the selection), `Enter` opens its fields, `G` returns to the live tail.
//!
//! ```text
//! ┌ Log · warn+ · /mock ──────────────────────────┐
//! │12:03:14 I 75289885 execution started +4      │
//! │12:03:16 I 75289885 execution finished +5     │
//! └───────────────────────────────────────────────┘
//! ```
//!
//! Every text was sanitized when it was logged (`log_layer`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{block, fit_row};
use crate::tui::app::{App, Pane, log_window};
use crate::tui::log_layer::LogRecord;
use crate::tui::theme::Theme;
use tracing::Level;
use tracing::level_filters::LevelFilter;

/// Draws the pane.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut title = vec![Span::styled("Log", theme.title)];
    if app.log_view().level != LevelFilter::TRACE {
        let level = app.log_view().level.to_string().to_ascii_lowercase();
        title.push(Span::styled(format!(" · {level}+"), theme.accent));
    }
    if let Some(filter) = app.filter(Pane::Log) {
        title.push(Span::styled(format!(" /{filter}"), theme.accent));
    }
    if app.log_view().scrolled() {
        let live = app.key(crate::tui::keymap::Action::Bottom);
        title.push(Span::styled(
            format!(" · paged back ({live}: live)"),
            theme.warn,
        ));
    }
    let room = super::title_room(area, Pane::Log, app);
    let block = block(super::fit_spans(title, room), Pane::Log, app, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let shown = app.log_shown();
    if shown.is_empty() {
        let empty = if app.log_view().records.is_empty() {
            "no log lines yet"
        } else {
            "no log line matches the level or the filter"
        };
        frame.render_widget(Paragraph::new(Line::styled(empty, theme.muted)), inner);
        return;
    }
    // At the live tail the newest lines; paged back, a window that moves only as far as it
    // must to keep the selection in it.
    let rows = usize::from(inner.height);
    let (start, selected) = log_window(app.log_view(), &shown, rows);
    let end = (start + rows).min(shown.len());
    let focused = app.focus() == Pane::Log;
    let width = usize::from(inner.width);
    let lines: Vec<Line> = shown[start..end]
        .iter()
        .enumerate()
        .map(|(i, record)| row(record, theme, focused && start + i == selected, width))
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// One record's row: the compact line in its level's colour, then `+N` (its fields, on
/// `Enter`) in the muted colour; cut with `…` when too wide.
fn row<'a>(record: &LogRecord, theme: &Theme, selected: bool, width: usize) -> Line<'a> {
    let style = match record.level {
        Level::ERROR => theme.error,
        Level::WARN => theme.warn,
        Level::INFO => theme.text,
        _ => theme.muted,
    };
    let mut spans = vec![Span::styled(record.compact(), style)];
    if !record.fields.is_empty() {
        spans.push(Span::styled(
            format!(" +{}", record.fields.len()),
            theme.muted,
        ));
    }
    let line = fit_row(spans, width);
    if selected {
        super::highlight(line, theme.selection)
    } else {
        line
    }
}
