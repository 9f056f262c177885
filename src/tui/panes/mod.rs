//! One pure render function per pane: `render(&App, &Theme, &mut Frame, Rect)`.

pub mod audit;
pub mod benchmarks;
pub mod log;
pub mod output;
pub mod overlay;
pub mod prompt;
pub mod safety;
pub mod status;
pub mod tasks;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders};

use super::app::{App, Pane};
use super::theme::Theme;

/// `text` cut to `width` columns, ending with `…` when cut.
pub fn ellipsize(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    if text.width() <= width {
        return text.to_string();
    }
    clip(text, width.saturating_sub(1))
}

/// The one truncation of the console: the longest prefix of `text` that fits `room` columns,
/// then `…` (so `room + 1` columns in all). It cuts between graphemes, measured by display
/// width ([`unicode_truncate`]): an emoji with its variation selector, or a letter with its
/// accents, stays whole or goes whole.
pub fn clip(text: &str, room: usize) -> String {
    use unicode_truncate::UnicodeTruncateStr;
    let (kept, _) = text.unicode_truncate(room);
    format!("{kept}…")
}

/// The one wrapper of the console's messages: `text` wrapped at spaces into lines of at most
/// `width` columns by display width, first fit ([`textwrap`]); a word longer than a line is
/// split, the spaces at a break go, and every other character is kept. Words are not split at
/// their hyphens: the console's words are names (`earth-no-offworld-background`), read whole.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let options = textwrap::Options::new(width.max(1))
        .break_words(true)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .wrap_algorithm(textwrap::WrapAlgorithm::FirstFit);
    textwrap::wrap(text, options)
        .into_iter()
        .map(std::borrow::Cow::into_owned)
        .collect()
}

/// Styled spans wrapped into lines of at most `width` columns by [`wrap`], each piece of text
/// keeping its span's style: how a pane shows a row whole, and measures it first (the number
/// of lines is `wrap(text, width).len()` for the spans' text).
pub fn wrap_spans<'a>(spans: &[Span<'a>], width: usize) -> Vec<Line<'a>> {
    let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
    // Where each span starts in `text`, with its style.
    let mut starts = Vec::with_capacity(spans.len());
    let mut at = 0;
    for span in spans {
        starts.push((at, span.style));
        at += span.content.len();
    }
    let mut lines = Vec::new();
    let mut from = 0;
    for row in wrap(&text, width) {
        // The wrapper keeps every character but the spaces at a break, in order: the row is
        // the next place the text reads it (were it not, the row goes unstyled, whole).
        let Some(start) = text[from..].find(row.as_str()).map(|i| from + i) else {
            lines.push(Line::from(row));
            continue;
        };
        let end = start + row.len();
        from = end;
        let mut pieces = Vec::new();
        for (i, &(span_start, style)) in starts.iter().enumerate() {
            let span_end = starts.get(i + 1).map_or(text.len(), |s| s.0);
            let (a, b) = (span_start.max(start), span_end.min(end));
            if a < b {
                pieces.push(Span::styled(text[a..b].to_string(), style));
            }
        }
        lines.push(Line::from(pieces));
    }
    lines
}

/// [`wrap_spans`] for a whole line: the rows it wraps into keep its style (and each piece its
/// span's).
pub fn wrap_line<'a>(line: &Line<'a>, width: usize) -> Vec<Line<'a>> {
    wrap_spans(&line.spans, width)
        .into_iter()
        .map(|row| row.style(line.style))
        .collect()
}

/// `line` drawn as the selected row of a list: every span in the selection's colours (a
/// span's own colour would otherwise win over the line's), the line too, so the row is one
/// bar however much of it the text fills.
pub fn highlight<'a>(mut line: Line<'a>, selection: ratatui::style::Style) -> Line<'a> {
    for span in &mut line.spans {
        span.style = selection;
    }
    line.style(selection)
}

/// One row of spans cut to `width` columns: the span that crosses the edge ends with `…`
/// and those after it go, so a cut row says it was cut rather than stopping mid-word.
pub fn fit_row(spans: Vec<Span<'_>>, width: usize) -> Line<'_> {
    use unicode_width::UnicodeWidthStr;
    let total: usize = spans.iter().map(|s| s.content.width()).sum();
    if total <= width {
        return Line::from(spans);
    }
    // Columns before the `…`.
    let room = width.saturating_sub(1);
    let mut used = 0;
    let mut out = Vec::with_capacity(spans.len());
    for span in spans {
        let w = span.content.width();
        if used + w <= room {
            used += w;
            out.push(span);
            continue;
        }
        let keep = clip(&span.content, room - used);
        out.push(Span::styled(keep, span.style));
        break;
    }
    Line::from(out)
}

/// The bordered block of a pane, highlighted when focused.
pub fn block<'a>(title: Vec<Span<'a>>, pane: Pane, app: &App, theme: &Theme) -> Block<'a> {
    framed(title, pane, app, theme, Borders::ALL)
}

/// A pane framed only by a titled rule on top (`─ Output ───`), thick while focused.
pub fn rule_block<'a>(title: Vec<Span<'a>>, pane: Pane, app: &App, theme: &Theme) -> Block<'a> {
    framed(title, pane, app, theme, Borders::TOP)
}

fn framed<'a>(
    title: Vec<Span<'a>>,
    pane: Pane,
    app: &App,
    theme: &Theme,
    borders: Borders,
) -> Block<'a> {
    let focused = app.focus() == pane;
    let (border, border_type) = if focused {
        (theme.border_focused, BorderType::Thick)
    } else {
        (theme.border, BorderType::Plain)
    };
    let mut spans = Vec::new();
    if !borders.contains(Borders::LEFT) {
        // No corner to start the rule: it starts with a piece of the line.
        let piece = if focused { "━" } else { "─" };
        spans.push(Span::styled(piece, border));
    }
    spans.push(Span::raw(" "));
    spans.extend(title);
    if app.zoomed() == Some(pane) {
        spans.push(Span::styled(" · zoomed", theme.accent));
    }
    spans.push(Span::raw(" "));
    Block::default()
        .borders(borders)
        .border_type(border_type)
        .border_style(border)
        .title(Line::from(spans))
}

/// The spans that fit in `width` columns, in order: the first that does not fit whole is
/// left out with everything after it, so a title or a row never shows a figure cut in half.
/// Put what matters most first.
pub fn fit_spans(spans: Vec<Span<'_>>, width: usize) -> Vec<Span<'_>> {
    use unicode_width::UnicodeWidthStr;
    let mut used = 0;
    let mut kept = Vec::new();
    for span in spans {
        let w = span.content.width();
        if used + w > width {
            break;
        }
        used += w;
        kept.push(span);
    }
    kept
}

/// Columns a pane's title may take inside `area`: the corners, the spaces around the title,
/// and the ` · zoomed` mark when it is there.
pub fn title_room(area: Rect, pane: Pane, app: &App) -> usize {
    let zoomed = if app.zoomed() == Some(pane) { 9 } else { 0 };
    usize::from(area.width).saturating_sub(4 + zoomed)
}

/// The area inside a pane's border.
pub fn inner(area: Rect) -> Rect {
    Rect {
        x: area.x.saturating_add(1),
        y: area.y.saturating_add(1),
        width: area.width.saturating_sub(2),
        height: area.height.saturating_sub(2),
    }
}

#[cfg(test)]
mod tests {
    use ratatui::style::{Color, Style};
    use ratatui::text::Span;

    #[test]
    fn clipping_keeps_whole_graphemes_by_display_width() {
        assert_eq!(super::ellipsize("abcdef", 6), "abcdef");
        assert_eq!(super::ellipsize("abcdef", 4), "abc…");
        assert_eq!(super::ellipsize("火星火星", 4), "火…");
        assert_eq!(super::ellipsize("⚠\u{fe0f}⚠\u{fe0f}x", 4), "⚠\u{fe0f}…");
        assert_eq!(super::ellipsize("abc", 0), "…");
    }

    #[test]
    fn wrapped_spans_keep_their_styles_and_the_line_its_own() {
        let red = Style::default().fg(Color::Red);
        let muted = Style::default().fg(Color::DarkGray);
        let spans = vec![
            Span::raw("rule: "),
            Span::styled("earth-no-offworld-background decided", red),
        ];
        let rows = super::wrap_spans(&spans, 30);
        let text: Vec<String> = rows.iter().map(ToString::to_string).collect();
        // Names are not split at their hyphens; the measure is the wrapper's.
        assert_eq!(text, ["rule:", "earth-no-offworld-background", "decided"]);
        assert_eq!(
            rows.len(),
            super::wrap("rule: earth-no-offworld-background decided", 30).len()
        );
        assert_eq!(rows[1].spans[0].style, red);
        assert_eq!(rows[0].spans[0].style, Style::default());
        let line = ratatui::text::Line::styled("every answer is audited", muted);
        let rows = super::wrap_line(&line, 12);
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.style == muted));
    }

    #[test]
    fn a_row_too_wide_ends_with_an_ellipsis_in_the_style_of_what_was_cut() {
        let red = Style::default().fg(Color::Red);
        let row = || {
            vec![
                Span::raw("  5 "),
                Span::styled("✗ SAFETY_VIOLATION ", red),
                Span::raw("x y"),
            ]
        };
        let text = |w| super::fit_row(row(), w).to_string();
        assert_eq!(text(40), "  5 ✗ SAFETY_VIOLATION x y", "it fits: unchanged");
        assert_eq!(text(26), "  5 ✗ SAFETY_VIOLATION x y");
        assert_eq!(text(25), "  5 ✗ SAFETY_VIOLATION x…");
        assert_eq!(text(15), "  5 ✗ SAFETY_V…");
        let cut = super::fit_row(row(), 15);
        assert_eq!(cut.spans.last().map(|s| s.style), Some(red));
        // Right at a span's end, the next one is the ellipsis alone.
        assert_eq!(text(24), "  5 ✗ SAFETY_VIOLATION …");
        // Wide characters are never split.
        assert_eq!(
            super::fit_row(vec![Span::raw("火星火星")], 4).to_string(),
            "火…"
        );
        assert_eq!(super::fit_row(vec![Span::raw("abc")], 0).to_string(), "…");
    }
}
