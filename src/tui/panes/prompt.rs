//! The `Prompt` input line: the text being typed, its priority, and the cursor while editing.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::block;
use crate::tui::app::{App, Pane};
use crate::tui::keymap::{Action, Mode};
use crate::tui::theme::Theme;

/// Draws the pane and, while editing, places the terminal cursor.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    if let Some(command) = &app.command() {
        let (title, prefix) = match app.filtering() {
            Some(pane) => (
                // It applies as it is typed; whole hints only, the ways out first.
                std::iter::once(Span::styled(format!("Filter {}", pane.name()), theme.title))
                    .chain(
                        ["Esc clears", "Enter keeps", "text to keep", "!text to hide"]
                            .into_iter()
                            .map(|hint| Span::styled(format!(" · {hint}"), theme.muted)),
                    )
                    .collect::<Vec<_>>(),
                "/",
            ),
            None => (
                // Whole hints only, the ways out first: at 80 columns the list is cut
                // between hints, never inside one (`:help` lists every command).
                std::iter::once(Span::styled("Command", theme.title))
                    .chain(
                        [
                            "Esc closes",
                            "Tab completes",
                            "↑ history",
                            "help",
                            "preset NAME",
                            "theme NAME",
                            "priority P",
                            "verify",
                            "cancel",
                            "undo [N]",
                            "quit",
                        ]
                        .into_iter()
                        .map(|hint| Span::styled(format!(" · {hint}"), theme.muted)),
                    )
                    .collect::<Vec<_>>(),
                ":",
            ),
        };
        let room = super::title_room(area, Pane::Prompt, app);
        let block = block(super::fit_spans(title, room), Pane::Prompt, app, theme);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let line = Line::from(vec![
            Span::styled(prefix, theme.accent),
            Span::styled(command.text.clone(), theme.input),
        ]);
        frame.render_widget(Paragraph::new(line), inner);
        let before: String = command.text.chars().take(command.cursor).collect();
        // Saturating: a command line longer than the screen (or than u16) must not overflow.
        let x = inner
            .x
            .saturating_add(1)
            .saturating_add(u16::try_from(before.width()).unwrap_or(u16::MAX));
        frame.set_cursor_position(Position::new(
            x.min(inner.right().saturating_sub(1)),
            inner.y,
        ));
        return;
    }
    let title = vec![
        Span::styled("Prompt", theme.title),
        Span::styled(" · priority ", theme.muted),
        Span::styled(app.priority().name(), theme.priority(app.priority())),
        Span::styled(
            if app.editing() {
                format!(
                    " · {} send · {} priority · {} stop",
                    app.keymap().key_hint(Mode::Editing, Action::Submit),
                    app.keymap().key_hint(Mode::Editing, Action::CyclePriority),
                    app.keymap().key_hint(Mode::Editing, Action::Cancel)
                )
            } else {
                String::new()
            },
            theme.muted,
        ),
    ];
    let block = block(title, Pane::Prompt, app, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if !app.editing() && app.input().text.is_empty() {
        let hint = format!(
            "press {} to type a prompt · {} help · {} quit",
            app.keymap().key_hint(Mode::Normal, Action::EditPrompt),
            app.keymap().key_hint(Mode::Normal, Action::Help),
            app.keymap().key_hint(Mode::Normal, Action::Quit),
        );
        frame.render_widget(Paragraph::new(Line::styled(hint, theme.muted)), inner);
        return;
    }
    // Scroll horizontally so the cursor stays visible.
    let available = (inner.width as usize).saturating_sub(2).max(1);
    let before: String = app.input().text.chars().take(app.input().cursor).collect();
    let before_width = before.width();
    let skip_cols = before_width.saturating_sub(available - 1);
    let mut skipped = 0;
    let visible: String = app
        .input()
        .text
        .chars()
        .skip_while(|c| {
            let w = unicode_width::UnicodeWidthChar::width(*c).unwrap_or(0);
            if skipped < skip_cols {
                skipped += w;
                true
            } else {
                false
            }
        })
        .collect();
    let line = Line::from(vec![
        Span::styled("> ", theme.accent),
        Span::styled(visible, theme.input),
    ]);
    frame.render_widget(Paragraph::new(line), inner);
    if app.editing() && app.overlay().is_none() {
        let shown = u16::try_from(before_width.saturating_sub(skipped)).unwrap_or(u16::MAX);
        let x = inner.x.saturating_add(2).saturating_add(shown);
        frame.set_cursor_position(Position::new(
            x.min(inner.right().saturating_sub(1)),
            inner.y,
        ));
    }
}
