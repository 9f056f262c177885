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
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width.saturating_sub(1) {
            out.push('…');
            return out;
        }
        used += w;
        out.push(c);
    }
    out
}

/// One row of spans cut to `width` columns: the span that crosses the edge ends with `…`
/// and those after it go, so a cut row says it was cut rather than stopping mid-word.
pub fn fit_row(spans: Vec<Span<'_>>, width: usize) -> Line<'_> {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
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
        let mut keep = String::new();
        for c in span.content.chars() {
            let cw = c.width().unwrap_or(0);
            if used + cw > room {
                break;
            }
            used += cw;
            keep.push(c);
        }
        keep.push('…');
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

/// `1.2s`, `42s`, `3m05s`, `2h10m` — short elapsed times for narrow columns.
pub fn short_duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 10_000 {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    } else if ms < 60_000 {
        format!("{}s", ms / 1000)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

#[cfg(test)]
mod tests {
    use ratatui::style::{Color, Style};
    use ratatui::text::Span;

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
