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

/// The bordered block of a pane, highlighted when focused.
pub fn block<'a>(title: Vec<Span<'a>>, pane: Pane, app: &App, theme: &Theme) -> Block<'a> {
    let focused = app.focus == pane;
    let (border, border_type) = if focused {
        (theme.border_focused, BorderType::Thick)
    } else {
        (theme.border, BorderType::Plain)
    };
    let mut spans = vec![Span::raw(" ")];
    spans.extend(title);
    if app.zoomed() == Some(pane) {
        spans.push(Span::styled(" · zoomed", theme.accent));
    }
    spans.push(Span::raw(" "));
    Block::default()
        .borders(Borders::ALL)
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
