//! The `Safety` pane: operations the safety boundary refused (and confirmations the operator
//! denied), newest first, with time, operation, rule or reason, and actor; the count is in the
//! title.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::block;
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
    let block = block(title, Pane::Safety, app, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.violations().is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no violations", theme.muted)),
            inner,
        );
        return;
    }
    // Each violation whole: wrapped over as many rows as it needs, never cut mid-word;
    // newest first, from where the operator scrolled (j/k while focused).
    let shown = app.shown_violations();
    let skip = shown.skip;
    let mut lines: Vec<Line> = Vec::new();
    if skip > 0 {
        lines.push(Line::styled(
            format!(
                "↑ {skip} newer ({} / {} to return)",
                app.key(Action::Up),
                app.key(Action::Top)
            ),
            theme.accent,
        ));
    }
    lines.extend(shown.window().map(|v| {
        Line::from(vec![
            Span::styled(v.at.format("%H:%M:%S ").to_string(), theme.muted),
            Span::styled(
                format!("{} ", if v.level == "blocked" { "⊘" } else { "✗" }),
                theme.error,
            ),
            Span::styled(format!("{} ", v.operation), theme.text),
            Span::styled(format!("{} ", v.rule), theme.warn),
            Span::styled(format!("{} ", v.actor), theme.muted),
            Span::styled(v.reason.clone(), theme.muted),
        ])
    }));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
}
