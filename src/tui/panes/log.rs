//! The `Log` pane: the newest tracing events of this process, from the tui-logger layer.
//!
//! Log messages quote errors, which quote servers and arguments, so the pane draws them with
//! its own [`LogFormatter`] that passes every message through the sanitizer (tui-logger's
//! standard formatter would hand them to the screen as they are).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use tui_logger::{ExtLogRecord, LogFormatter, TuiLoggerWidget};

use super::block;
use crate::tui::app::{App, Pane};
use crate::tui::theme::Theme;

/// Columns continuation lines are indented by (under the time stamp).
const INDENT: usize = 9;

/// `HH:MM:SS L message`, wrapped to the pane, every message sanitized.
struct SanitizingFormatter {
    error: Style,
    warn: Style,
    info: Style,
    debug: Style,
    trace: Style,
}

impl SanitizingFormatter {
    fn push_wrapped(lines: &mut Vec<Line<'static>>, style: Style, text: &str, width: usize) {
        let width = width.max(INDENT + 1);
        let chars: Vec<char> = text.chars().collect();
        let mut start = 0;
        let mut first = lines.is_empty();
        loop {
            let room = if first { width } else { width - INDENT };
            let mut end = (start + room).min(chars.len());
            // Break after the last space of the line when there is one past its middle, so
            // a field is not cut in two (a long one still is, at the edge).
            if end < chars.len()
                && let Some(space) = (start + room / 2..end).rev().find(|&i| chars[i] == ' ')
            {
                end = space + 1;
            }
            let piece: String = chars.get(start..end).unwrap_or_default().iter().collect();
            let mut spans = Vec::with_capacity(2);
            if !first {
                spans.push(Span::styled(" ".repeat(INDENT), style));
            }
            spans.push(Span::styled(piece, style));
            lines.push(Line::from(spans));
            first = false;
            start = end;
            if start >= chars.len() {
                break;
            }
        }
    }
}

impl LogFormatter for SanitizingFormatter {
    fn min_width(&self) -> u16 {
        INDENT as u16 + 4
    }

    fn format(&self, width: usize, evt: &ExtLogRecord) -> Vec<Line<'_>> {
        let (style, level) = match evt.level.as_str() {
            "ERROR" => (self.error, 'E'),
            "WARN" => (self.warn, 'W'),
            "DEBUG" => (self.debug, 'D'),
            "TRACE" => (self.trace, 'T'),
            _ => (self.info, 'I'),
        };
        let message = crate::sanitize::sanitize(evt.msg());
        let mut lines = Vec::new();
        for (i, part) in message.split('\n').enumerate() {
            let part = part.replace('\t', " ");
            let text = if i == 0 {
                format!("{} {level} {part}", evt.timestamp.strftime("%H:%M:%S"))
            } else {
                part
            };
            Self::push_wrapped(&mut lines, style, &text, width);
        }
        lines
    }
}

/// Draws the pane.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut title = vec![Span::styled("Log", theme.title)];
    if app.log_view.level != tui_logger::LevelFilter::Trace {
        let level = app.log_view.level.as_str().to_ascii_lowercase();
        title.push(Span::styled(format!(" · {level}+"), theme.accent));
    }
    if app.log_view.scrolled {
        title.push(Span::styled(" · paged back (G: live)", theme.warn));
    }
    let block = block(title, Pane::Log, app, theme);
    let widget = TuiLoggerWidget::default()
        .state(&app.log_view.state)
        .block(block)
        .style(theme.text)
        .formatter(Box::new(SanitizingFormatter {
            error: theme.error,
            warn: theme.warn,
            info: theme.text,
            debug: theme.muted,
            trace: theme.muted,
        }));
    frame.render_widget(widget, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_indents_continuations_and_keeps_every_character() {
        let mut lines = Vec::new();
        SanitizingFormatter::push_wrapped(&mut lines, Style::default(), &"x".repeat(25), 12);
        let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
        let mut expected = vec!["x".repeat(12)];
        expected.extend(std::iter::repeat_n(format!("{}xxx", " ".repeat(INDENT)), 4));
        expected.push(format!("{}x", " ".repeat(INDENT)));
        assert_eq!(text, expected);
    }

    #[test]
    fn wrapping_breaks_between_fields_where_it_can() {
        let mut lines = Vec::new();
        let line = "18:03:16 I d8a31df7 execution finished attempt=1 tokens_in=1 latency_ms=0";
        SanitizingFormatter::push_wrapped(&mut lines, Style::default(), line, 40);
        let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "18:03:16 I d8a31df7 execution finished ",
                "         attempt=1 tokens_in=1 ",
                "         latency_ms=0",
            ]
        );
        let kept: String = text
            .iter()
            .map(|l| l.trim_start())
            .collect::<Vec<_>>()
            .join("");
        assert_eq!(kept.replace("  ", " "), line.replace("  ", " "));
    }
}
