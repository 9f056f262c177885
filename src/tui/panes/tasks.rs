//! The `Tasks` pane: one row per task with state, priority, title and a live countdown while it
//! crosses the link, waits out a blackout or a retry (elapsed time otherwise). Wide panes add
//! the state's name, the task kind and the attempt. Only the visible rows are built, so ten
//! thousand tasks cost what a screenful does.
//!
//! A benchmark run's tasks are not listed: each run of the session is one row at the top
//! (`▶ bench 20261206-… msga,wmrt 37/140 running · 8 in flight`), so the operator's own
//! prompts are never buried under hundreds of them. The rows below are the operator's tasks.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::block;
use crate::duration;
use crate::events::Priority;
use crate::events::TaskStatus;
use crate::tui::app::{App, BenchState, BenchTasksRow, Pane, TaskView};
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
    let width = inner.width as usize;
    // The session's benchmark runs first, newest last, one row each: at most a third of the
    // pane (one row at least), the newest kept.
    let runs = app.bench_task_rows();
    let run_rows = runs.len().min((inner.height as usize / 3).max(1));
    let mut lines: Vec<Line> = runs[runs.len() - run_rows..]
        .iter()
        .map(|run| run_line(run, theme, width))
        .collect();
    let rows = (inner.height as usize).saturating_sub(run_rows);
    if visible.is_empty() {
        let text = if !app.tasks().is_empty() {
            "No task matches the filter (/ to change it)."
        } else if runs.is_empty() {
            "No tasks yet."
        } else {
            "No tasks of yours yet."
        };
        lines.push(Line::styled(text, theme.muted));
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    }
    let selected = app.shown_task_index().unwrap_or(visible[visible.len() - 1]);
    let selected_row = visible.iter().position(|&i| i == selected).unwrap_or(0);
    let offset = (selected_row + 1).saturating_sub(rows);
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
            // Whole seconds while it runs: a clock ticking tenths redraws the row every
            // frame (bytes on every frame over SSH); the final time keeps its tenths.
            None if task.is_active() => {
                duration::short(duration::whole_seconds(task.elapsed(app.now())))
            }
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
        let line = Line::from(spans);
        lines.push(if i == selected {
            super::highlight(line, theme.selection)
        } else {
            line
        });
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The row of one benchmark run: `▶ bench 20261206-… msga,wmrt 37/140 running · 8 in flight`.
/// The id gives way first where the row does not fit.
fn run_line<'a>(run: &BenchTasksRow, theme: &Theme, width: usize) -> Line<'a> {
    let (symbol, style) = match run.state {
        BenchState::Starting => ("·", theme.queued),
        BenchState::Running => ("▶", theme.running),
        BenchState::Cancelling => ("⊗", theme.warn),
        BenchState::Complete => ("✓", theme.ok),
        BenchState::Cancelled => ("⊗", theme.muted),
        BenchState::Failed(_) => ("✗", theme.error),
    };
    let counts = format!(" {} {}/{} ", run.families, run.done, run.total);
    let in_flight = if run.in_flight > 0 {
        format!(" · {} in flight", run.in_flight)
    } else {
        String::new()
    };
    let head = format!("{symbol} ");
    let fixed = head.width() + "bench ".width() + counts.width() + run.state.name().width();
    let id = run.run_id.as_deref().unwrap_or("(not recorded yet)");
    let id = super::ellipsize(id, width.saturating_sub(fixed + in_flight.width()).max(10));
    Line::from(super::fit_spans(
        vec![
            Span::styled(head, style),
            Span::styled("bench ", theme.title),
            Span::styled(id, theme.muted),
            Span::styled(counts, theme.text),
            Span::styled(run.state.name(), style),
            Span::styled(in_flight, theme.muted),
        ],
        width,
    ))
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
