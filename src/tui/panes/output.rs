//! The `Output` pane: the selected task's streamed answer, wrapped to the pane, following the
//! live tail or anchored where the operator scrolled. The title carries state and token usage.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Padding, Paragraph, Wrap};

use super::rule_block;
use crate::events::{FinishReason, TaskStatus};
use crate::tui::app::{App, Pane, reopens_text};
use crate::tui::output::{LineKind, visible_rows};
use crate::tui::theme::Theme;

/// The pane's frame: a titled rule on top, and no side borders. Output spans the screen's
/// width and its text scrolls; rows a terminal scrolls in come blank, and side borders would
/// have to be written again on each (about sixty bytes a row over SSH). Its bottom edge is the
/// top border of the panes below.
fn frame_block<'a>(title: Vec<Span<'a>>, app: &App, theme: &Theme) -> Block<'a> {
    rule_block(title, Pane::Output, app, theme).padding(Padding::horizontal(1))
}

/// Where the text goes in a pane drawn in `area` (as `frame_block`'s inner area).
pub fn text_area(area: Rect) -> Rect {
    Rect {
        x: area.x.saturating_add(1),
        y: area.y.saturating_add(1),
        width: area.width.saturating_sub(2),
        height: area.height.saturating_sub(1),
    }
}

/// Draws the pane.
/// `tab` names the pane that shares this one's place on a narrow screen (shown in the title so
/// the operator knows Tab reaches it).
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect, tab: Option<Pane>) {
    let tab_span = tab.map(|p| Span::styled(format!(" · ⇄ {}", p.name()), theme.muted));
    let room = super::title_room(area, Pane::Output, app);
    let Some(task) = app.shown_task() else {
        let block = frame_block(
            super::fit_spans(
                std::iter::once(Span::styled("Output", theme.title))
                    .chain(tab_span)
                    .collect(),
                room,
            ),
            app,
            theme,
        );
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let hint = vec![
            Line::styled("Nothing to show yet.", theme.muted),
            Line::styled(
                format!(
                    "Press {} to type a prompt, {} to send it, {} for help.",
                    app.keymap().key_hint(
                        crate::tui::keymap::Mode::Normal,
                        crate::tui::keymap::Action::EditPrompt
                    ),
                    app.keymap().key_hint(
                        crate::tui::keymap::Mode::Editing,
                        crate::tui::keymap::Action::Submit
                    ),
                    app.keymap().key_hint(
                        crate::tui::keymap::Mode::Normal,
                        crate::tui::keymap::Action::Help
                    ),
                ),
                theme.muted,
            ),
        ];
        frame.render_widget(Paragraph::new(hint), inner);
        return;
    };
    let mut title = vec![Span::styled("Output", theme.title)];
    title.push(Span::styled(format!(" · {}", task.id.short()), theme.muted));
    let countdown = task
        .countdown(app.now())
        .map(crate::duration::short)
        .unwrap_or_default();
    let (state, style) = match &task.status {
        TaskStatus::Queued => ("queued".to_string(), theme.queued),
        TaskStatus::Uplink { .. } => (format!("uplink {countdown}"), theme.running),
        TaskStatus::Running => ("running".to_string(), theme.running),
        TaskStatus::Downlink { .. } => (format!("downlink {countdown}"), theme.running),
        TaskStatus::Retrying { .. } => (format!("retry in {countdown}"), theme.warn),
        // The date the link reopens (simulated); the text below says the real wait.
        TaskStatus::Blackout { .. } => match task.reopens(&app.link().link, app.now()) {
            Some((end, left)) => (
                format!("BLACKOUT until {}", reopens_text(end, left, true)),
                theme.warn,
            ),
            None => (format!("BLACKOUT {countdown}"), theme.warn),
        },
        TaskStatus::Succeeded => match &task.finish_reason {
            Some(FinishReason::Length) => ("truncated at max_tokens".to_string(), theme.warn),
            Some(FinishReason::MaxSteps) => ("stopped at tools.max_steps".to_string(), theme.warn),
            Some(FinishReason::TokenBudget) => {
                ("stopped at the token budget".to_string(), theme.warn)
            }
            Some(FinishReason::ContentFilter) => {
                ("filtered by the provider".to_string(), theme.warn)
            }
            _ => ("done".to_string(), theme.ok),
        },
        TaskStatus::Failed { kind, .. } => (format!("failed: {kind}"), theme.error),
        TaskStatus::Cancelled { .. } => ("cancelled".to_string(), theme.muted),
    };
    title.push(Span::styled(format!(" · {state}"), style));
    if task.output.dropped_lines() > 0 {
        // The buffer keeps only the newest text (`tui::output::OUTPUT_KEEP`).
        title.push(Span::styled(" · older output dropped", theme.warn));
    }
    if task.attempt > 1 {
        title.push(Span::styled(
            format!(" · attempt {}", task.attempt),
            theme.warn,
        ));
    }
    if let Some(rate) = task.tokens_per_second(app.now()) {
        // Live while it streams; once it ended, the task's average, and labelled so.
        let avg = if task.is_active() { "" } else { "avg " };
        title.push(Span::styled(
            format!(" · {avg}{}", crate::tui::panes::status::rate_text(rate)),
            theme.muted,
        ));
    }
    if let Some(u) = task.usage {
        title.push(Span::styled(
            format!(" · in {} / out {} tok", u.input, u.output),
            theme.muted,
        ));
    }
    if app.follow() {
        title.push(Span::styled(" · follow", theme.accent));
    } else if app.output_anchor().is_some() {
        title.push(Span::styled(" · scrolled", theme.warn));
    }
    title.extend(tab_span);
    let block = frame_block(super::fit_spans(title, room), app, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    // A task with nothing to show yet says what it waits for, where the text will be.
    let running = app
        .tasks()
        .iter()
        .filter(|t| matches!(t.status, TaskStatus::Running))
        .count();
    let waiting = task
        .output
        .is_empty()
        .then(|| task.waiting_for(&app.link().link, running, app.now()))
        .flatten();
    if let Some(waiting) = waiting {
        let style = match task.status {
            TaskStatus::Blackout { .. } | TaskStatus::Retrying { .. } => theme.warn,
            _ => theme.muted,
        };
        frame.render_widget(
            Paragraph::new(Line::styled(waiting, style)).wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    // The text, then how the task ended when it did not end well (an error, a cut answer):
    // one text, wrapped and scrolled as a whole, so every row of a long error can be read.
    let text = task.shown_text();
    let rows = visible_rows(
        &text,
        app.output_anchor(),
        usize::from(inner.width),
        usize::from(inner.height),
    );
    let lines: Vec<Line> = rows
        .into_iter()
        .map(|(row, kind)| {
            let style = match kind {
                LineKind::Text => theme.text,
                LineKind::ToolOk => theme.accent,
                LineKind::ToolError | LineKind::Failure => theme.error,
                LineKind::Warning => theme.warn,
            };
            Line::styled(row.to_string(), style)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
