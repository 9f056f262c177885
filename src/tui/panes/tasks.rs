//! The `Tasks` pane: one row per submitted prompt with state, priority, title and elapsed time.
//! Only the visible rows are built, so ten thousand tasks cost what a screenful does.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::{block, short_duration};
use crate::events::Priority;
use crate::tui::app::{App, Pane, TaskState};
use crate::tui::theme::Theme;

/// Four-letter priority tag.
pub fn priority_tag(p: Priority) -> &'static str {
    match p {
        Priority::Critical => "CRIT",
        Priority::High => "HIGH",
        Priority::Normal => "NORM",
        Priority::Low => "LOW ",
        Priority::Background => "BKGD",
    }
}

/// Symbol of a state; readable without colour.
pub fn state_symbol(s: &TaskState) -> &'static str {
    match s {
        TaskState::Queued => "·",
        TaskState::Running => "▶",
        TaskState::Succeeded => "✓",
        TaskState::Failed { .. } => "✗",
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.width() <= width {
        return format!(
            "{text:<width$}",
            width = width.saturating_sub(text.width() - text.chars().count())
        );
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    used += 1;
    out.push_str(&" ".repeat(width.saturating_sub(used)));
    out
}

/// Draws the pane.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let active = app.active_tasks();
    let mut title = vec![Span::styled("Tasks", theme.title)];
    if !app.tasks.is_empty() {
        title.push(Span::styled(
            format!(" ({} · {active} active)", app.tasks.len()),
            theme.muted,
        ));
    }
    let block = block(title, Pane::Tasks, app, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = inner.height as usize;
    if app.tasks.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("No tasks yet.", theme.muted)),
            inner,
        );
        return;
    }
    let selected = app.selected.unwrap_or(app.tasks.len() - 1);
    let offset = (selected + 1).saturating_sub(rows);
    let width = inner.width as usize;
    let mut lines = Vec::with_capacity(rows);
    for (i, task) in app.tasks.iter().enumerate().skip(offset).take(rows) {
        let elapsed = short_duration(task.elapsed(app.now));
        let state_style = match &task.state {
            TaskState::Queued => theme.queued,
            TaskState::Running => theme.running,
            TaskState::Succeeded => theme.ok,
            TaskState::Failed { .. } => theme.error,
        };
        let fixed = 2 + 5 + 1 + elapsed.len();
        let title_width = width.saturating_sub(fixed);
        let mut line = Line::from(vec![
            Span::styled(format!("{} ", state_symbol(&task.state)), state_style),
            Span::styled(
                format!("{} ", priority_tag(task.priority)),
                theme.priority(task.priority),
            ),
            Span::styled(truncate(&task.title, title_width), theme.text),
            Span::styled(format!(" {elapsed}"), theme.muted),
        ]);
        if i == selected {
            line = line.style(theme.selection);
            for span in &mut line.spans {
                span.style = theme.selection;
            }
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
