//! The `Log` pane: the newest tracing events of this process, from the tui-logger layer.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use tui_logger::{TuiLoggerLevelOutput, TuiLoggerWidget};

use super::block;
use crate::tui::app::{App, Pane};
use crate::tui::theme::Theme;

/// Draws the pane.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let block = block(
        vec![Span::styled("Log", theme.title)],
        Pane::Log,
        app,
        theme,
    );
    let widget = TuiLoggerWidget::default()
        .block(block)
        .style(theme.text)
        .style_error(theme.error)
        .style_warn(theme.warn)
        .style_info(theme.text)
        .style_debug(theme.muted)
        .style_trace(theme.muted)
        .output_separator(' ')
        .output_timestamp(Some("%H:%M:%S".to_string()))
        .output_level(Some(TuiLoggerLevelOutput::Abbreviated))
        .output_target(false)
        .output_file(false)
        .output_line(false);
    frame.render_widget(widget, area);
}
