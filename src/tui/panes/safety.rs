//! The `Safety` pane: operations the safety boundary refused (and confirmations the operator
//! denied), newest first in the order they arrived, each whole with time, operation, rule or
//! reason, and actor; the count is in the title. `j`/`k` move a highlighted selection that
//! stays on its violation as new ones arrive; `Enter` explains the rule, `y` copies it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{block, wrap_spans};
use crate::tui::app::{App, Pane};
use crate::tui::keymap::Action;
use crate::tui::theme::Theme;

/// Draws the pane.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut title = vec![Span::styled("Safety", theme.title)];
    if app.violation_count() > 0 {
        title.push(Span::styled(
            format!(" ({})", app.violation_count()),
            theme.error,
        ));
    }
    // A confirmation waiting while the operator types is announced here too.
    if !app.confirmations().is_empty() {
        title.push(Span::styled(
            format!(" ⚠ {} waiting", app.confirmations().len()),
            theme.warn,
        ));
    }
    let filter = app.filter(Pane::Safety);
    if let Some(f) = filter {
        title.push(Span::styled(format!(" /{f}"), theme.accent));
    }
    // Each violation whole: wrapped over as many rows as it needs, never cut mid-word;
    // newest first, from where the operator left the window (j/k move the selection; it stays
    // on its violation as new ones arrive above it).
    let shown = app.shown_violations();
    let inner = super::inner(area);
    let width = usize::from(inner.width);
    let start = shown.start(usize::from(inner.height), |v| v.rows(width));
    if start > 0 {
        title.push(Span::styled(
            format!(" · ↑ {start} newer ({}: newest)", app.key(Action::Top)),
            theme.warn,
        ));
    }
    let title_room = super::title_room(area, Pane::Safety, app);
    let block = block(
        super::fit_spans(title, title_room),
        Pane::Safety,
        app,
        theme,
    );
    frame.render_widget(block, area);
    if app.violations().is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no violations", theme.muted)),
            inner,
        );
        return;
    }
    let focused = app.focus() == Pane::Safety;
    let mut lines: Vec<Line> = Vec::new();
    for (i, v) in shown.rows.iter().enumerate().skip(start) {
        if lines.len() >= usize::from(inner.height) {
            break;
        }
        let [time, glyph, operation, rule, actor, reason] = v.row_parts();
        let spans = [
            Span::styled(time, theme.muted),
            Span::styled(glyph, theme.error),
            Span::styled(operation, theme.text),
            Span::styled(rule, theme.warn),
            Span::styled(actor, theme.muted),
            Span::styled(reason, theme.muted),
        ];
        let selected = focused && i == shown.selected;
        lines.extend(wrap_spans(&spans, width).into_iter().map(|line| {
            if selected {
                super::highlight(line, theme.selection)
            } else {
                line
            }
        }));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
