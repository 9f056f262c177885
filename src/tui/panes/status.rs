//! The status bar: backend/model and live tokens/s, link preset, audit head and verification,
//! confirmations waiting, flash messages, and the UTC clock.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, FlashLevel, Verification};
use crate::tui::theme::Theme;

/// `42 tok/s`, or `0.8 tok/s` below ten.
pub fn rate_text(rate: f64) -> String {
    if rate < 10.0 {
        format!("{rate:.1} tok/s")
    } else {
        format!("{rate:.0} tok/s")
    }
}

/// Draws the bar.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let sep = Span::styled(" │ ", theme.status);
    let mut left = vec![Span::styled(
        format!(" {}/{}", app.link.backend, app.link.model),
        theme.status,
    )];
    // Tokens/s of the task in view (the selected one, else the newest) while it streams, where
    // the bar has room beside the audit state; the Output pane's title shows it at any width.
    // Nothing streaming, no rate: a finished task's average is not a live figure.
    if area.width >= 100
        && let Some(rate) = app
            .selected_task()
            .or_else(|| app.tasks.last())
            .filter(|t| t.is_active())
            .and_then(|t| t.tokens_per_second(app.now))
    {
        left.push(Span::styled(format!(" {}", rate_text(rate)), theme.status));
    }
    left.push(sep.clone());
    // A waiting confirmation the modal does not show (the operator is typing) comes first;
    // then a message; either takes the place of the link and audit summary, so it is readable
    // at 80 columns.
    let waiting = app.confirmations.len();
    if waiting > 0 && app.confirm.is_none() {
        let plural = if waiting == 1 { "" } else { "s" };
        left.push(Span::styled(
            format!(
                "⚠ {waiting} confirmation{plural} waiting · {} to answer",
                app.leave_key()
            ),
            theme.status.patch(theme.warn),
        ));
    } else if let Some(flash) = &app.flash {
        let style = match flash.level {
            FlashLevel::Info => theme.status,
            FlashLevel::Error => theme.status.patch(theme.error),
        };
        left.push(Span::styled(flash.text.clone(), style));
    } else {
        let link = &app.link.link;
        if link.simulated {
            let one_way = crate::tui::panes::tasks::countdown_text(
                std::time::Duration::from_millis(link.one_way_ms),
            );
            left.push(Span::styled(
                format!(
                    "{} {} {one_way} ×{}",
                    link.preset, link.mode, link.time_scale
                ),
                theme.status,
            ));
            // The simulated date only where it fits beside the audit summary.
            if link.time_scale != 1.0 && area.width >= 110 {
                let sim = link.sim_time_at(app.now);
                left.push(Span::styled(
                    sim.format(" sim %m-%d %H:%M").to_string(),
                    theme.status,
                ));
            }
            match link.conjunction.as_str() {
                "blackout" => left.push(Span::styled(" BLACKOUT", theme.status.patch(theme.error))),
                "reduced" => left.push(Span::styled(" reduced", theme.status.patch(theme.warn))),
                _ => {}
            }
        } else {
            left.push(Span::styled(
                format!("{} sim off", link.preset),
                theme.status,
            ));
        }
        left.push(sep);
        if app.audit.enabled {
            let short = app.audit.head.get(..8).unwrap_or(&app.audit.head);
            left.push(Span::styled(
                format!("audit {} {short} ", app.audit.entries),
                theme.status,
            ));
            let (mark, style) = match &app.audit.verification {
                Verification::Never => ("unverified".to_string(), theme.status),
                Verification::Running => ("verifying…".to_string(), theme.status),
                Verification::Verified { entries, .. } => {
                    (format!("✓ {entries} verified"), theme.status)
                }
                Verification::Failed { .. } => (
                    "✗ CHAIN BROKEN".to_string(),
                    theme.status.patch(theme.error),
                ),
            };
            left.push(Span::styled(mark, style));
        } else {
            left.push(Span::styled("audit off", theme.status));
        }
    }
    let clock = app.now.format(" %H:%M:%S UTC ").to_string();
    let [l, r] = Layout::horizontal([Constraint::Min(10), Constraint::Length(clock.len() as u16)])
        .areas(area);
    frame.render_widget(Paragraph::new(Line::from(left)).style(theme.status), l);
    frame.render_widget(
        Paragraph::new(Line::styled(clock, theme.status)).style(theme.status),
        r,
    );
}
