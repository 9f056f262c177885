//! The `Tasks` pane: one row per task with state, priority, title and a live countdown while it
//! crosses the link, waits out a blackout or a retry (elapsed time otherwise). Wide panes add
//! the state's name, the task kind and the attempt. Only the visible rows are built, so ten
//! thousand tasks cost what a screenful does.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::block;
use crate::duration;
use crate::events::Priority;
use crate::events::TaskStatus;
use crate::tui::app::{App, Pane, TaskView};
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
pub fn state_symbol(s: &TaskStatus) -> &'static str {
    match s {
        TaskStatus::Queued => "·",
        TaskStatus::Uplink { .. } => "↑",
        TaskStatus::Running => "▶",
        TaskStatus::Downlink { .. } => "↓",
        TaskStatus::Retrying { .. } => "↻",
        TaskStatus::Blackout { .. } => "⊘",
        TaskStatus::Succeeded => "✓",
        TaskStatus::Failed { .. } => "✗",
        TaskStatus::Cancelled { .. } => "⊗",
    }
}

fn status_style(task: &TaskView, theme: &Theme) -> ratatui::style::Style {
    match &task.status {
        TaskStatus::Queued => theme.queued,
        TaskStatus::Uplink { .. } | TaskStatus::Running | TaskStatus::Downlink { .. } => {
            theme.running
        }
        TaskStatus::Retrying { .. } | TaskStatus::Blackout { .. } => theme.warn,
        TaskStatus::Succeeded => theme.ok,
        TaskStatus::Failed { .. } => theme.error,
        TaskStatus::Cancelled { .. } => theme.muted,
    }
}

/// `text` cut or padded to exactly `width` columns. Widths are display columns, not chars: a
/// zero-width or wide character counts for what it shows, and nothing here can underflow.
fn truncate(text: &str, width: usize) -> String {
    let mut out = super::ellipsize(text, width);
    let shown = out.width();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(shown)));
    out
}

/// Draws the pane.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let active = app.active_tasks();
    let mut title = vec![Span::styled("Tasks", theme.title)];
    if !app.tasks().is_empty() {
        title.push(Span::styled(
            format!(" ({} · {active} active)", app.tasks().len()),
            theme.muted,
        ));
    }
    if app.tasks_dropped() > 0 {
        // Only the newest ended tasks are kept (`tui::app::TASKS_KEEP`).
        title.push(Span::styled(
            format!(" · {} older dropped", app.tasks_dropped()),
            theme.muted,
        ));
    }
    let visible = app.visible_tasks();
    if let Some(filter) = app.filter(Pane::Tasks) {
        title.push(Span::styled(
            format!(" /{filter} ({})", visible.len()),
            theme.accent,
        ));
    }
    let block = block(title, Pane::Tasks, app, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = inner.height as usize;
    if visible.is_empty() {
        let text = if app.tasks().is_empty() {
            "No tasks yet."
        } else {
            "No task matches the filter (/ to change it)."
        };
        frame.render_widget(Paragraph::new(Line::styled(text, theme.muted)), inner);
        return;
    }
    let selected = app.shown_task_index().unwrap_or(visible[visible.len() - 1]);
    let selected_row = visible.iter().position(|&i| i == selected).unwrap_or(0);
    let offset = (selected_row + 1).saturating_sub(rows);
    let width = inner.width as usize;
    let mut lines = Vec::with_capacity(rows);
    let wide = width >= 56;
    for (i, task) in visible
        .iter()
        .skip(offset)
        .take(rows)
        .map(|&i| (i, &app.tasks()[i]))
    {
        let right = match task.countdown(app.now()) {
            // A countdown says so (T-): it is time left, not time spent.
            Some(left) => format!("T-{}", duration::short(left)),
            None => duration::short_signed(task.elapsed(app.now())),
        };
        let style = status_style(task, theme);
        let mut spans = vec![
            Span::styled(format!("{} ", state_symbol(&task.status)), style),
            Span::styled(
                format!("{} ", priority_tag(task.priority)),
                theme.priority(task.priority),
            ),
        ];
        let mut fixed = 2 + 5 + 1 + right.len();
        if wide {
            spans.push(Span::styled(format!("{:<9} ", task.status.name()), style));
            spans.push(Span::styled(
                format!("{:<8} ", truncate(&task.kind, 8)),
                theme.muted,
            ));
            fixed += 10 + 9;
        }
        let attempt = if task.attempt > 1 {
            format!(" ×{}", task.attempt)
        } else {
            String::new()
        };
        fixed += attempt.chars().count();
        let title_width = width.saturating_sub(fixed);
        spans.push(Span::styled(truncate(&task.title, title_width), theme.text));
        spans.push(Span::styled(attempt, theme.warn));
        spans.push(Span::styled(
            format!(" {right}"),
            style
                .patch(theme.muted)
                .patch(if task.countdown(app.now()).is_some() {
                    style
                } else {
                    theme.muted
                }),
        ));
        let mut line = Line::from(spans);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_width_and_wide_characters_pad_to_the_column() {
        for title in ["a\u{200B}b", "\u{200B}", "日本", "e\u{301}", "", "plain"] {
            for width in 0..8 {
                let cell = truncate(title, width);
                if title.width() <= width {
                    assert_eq!(cell.width(), width, "{title:?} in {width}");
                } else {
                    assert!(cell.width() <= width.max(1), "{title:?} in {width}");
                }
            }
        }
    }
}
