//! The `Audit` pane: entries in the chain, its head, the newest signed checkpoint, the last
//! verification (when, result, how long) and the entries kept, newest first by sequence
//! number. `j`/`k` move a highlighted selection that stays on its entry as new ones arrive;
//! `Enter` opens it with its inclusion proof, `y` copies it. A failed verification turns the
//! pane red and names the first bad entry.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::block;
use crate::tui::app::{App, Pane, Verification};
use crate::tui::keymap::Action;
use crate::tui::theme::Theme;

/// Draws the pane.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let audit = &app.audit();
    let failed = matches!(audit.verification, Verification::Failed { .. });
    let mut title = vec![Span::styled("Audit", theme.title)];
    if audit.enabled {
        title.push(Span::styled(format!(" ({})", audit.entries), theme.muted));
    }
    let filter = app.filter(Pane::Audit);
    if let Some(f) = filter {
        title.push(Span::styled(format!(" /{f}"), theme.accent));
    }
    // The entries, newest first, from where the operator left the window (j/k move the
    // selection; it stays on its entry as new ones arrive above it).
    let shown = app.shown_audit();
    let room = app.audit_rows(usize::from(super::inner(area).height));
    let start = shown.start(room, |_| 1);
    if start > 0 {
        title.push(Span::styled(
            format!(" · ↑ {start} newer ({}: newest)", app.key(Action::Top)),
            theme.warn,
        ));
    }
    let title_room = super::title_room(area, Pane::Audit, app);
    let mut block = block(super::fit_spans(title, title_room), Pane::Audit, app, theme);
    if failed {
        block = block.border_style(theme.error);
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if !audit.enabled {
        // Over a fleet each worker keeps its own trail, held against the fleet's witnesses.
        let said: &[&str] = if app.fleet() {
            &[
                "each worker keeps its own trail",
                "(on its host: veyra audit verify --witness nats://…)",
            ]
        } else {
            &["audit off (governance.audit)"]
        };
        let lines: Vec<Line<'_>> = said.iter().map(|l| Line::styled(*l, theme.muted)).collect();
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        return;
    }
    let head = audit.head.get(..12).unwrap_or(&audit.head);
    let mut lines = vec![Line::from(vec![
        Span::styled("head ", theme.muted),
        Span::styled(head.to_string(), theme.accent),
    ])];
    if audit.signs_checkpoints {
        lines.push(match audit.checkpoint {
            Some((size, at)) => Line::from(vec![
                Span::styled("checkpoint ", theme.muted),
                Span::styled(format!("{size} {}", at.format("%H:%M:%S")), theme.text),
            ]),
            None => Line::styled("no signed checkpoint yet", theme.muted),
        });
    }
    match &audit.verification {
        Verification::Never => lines.push(Line::styled(
            format!("not verified yet ({})", app.key(Action::VerifyAudit)),
            theme.muted,
        )),
        Verification::Running => lines.push(Line::styled("verifying…", theme.running)),
        Verification::Verified {
            entries,
            duration_ms,
            at,
        } => lines.push(Line::styled(
            format!(
                "✓ {entries} verified {} ({duration_ms} ms)",
                at.format("%H:%M:%S")
            ),
            theme.ok,
        )),
        Verification::Failed {
            failure,
            duration_ms,
            at,
        } => {
            // The failure first: on a small screen it is what must stay visible.
            let mut first = vec![
                Line::styled(
                    format!("✗ BROKEN {} ({duration_ms} ms)", at.format("%H:%M:%S")),
                    theme.error,
                ),
                Line::styled(failure.clone(), theme.error),
            ];
            first.append(&mut lines);
            let lines = first;
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
            return;
        }
    }
    let focused = app.focus() == Pane::Audit;
    for (i, e) in shown.rows.iter().enumerate().skip(start).take(room) {
        // The outcome leads as a glyph, so it survives the narrowest pane; the word follows.
        let (glyph, glyph_style, style) = match e.outcome.as_str() {
            "success" | "allowed" | "allow" => ("✓", theme.ok, theme.text),
            "cancelled" => ("⊗", theme.muted, theme.warn),
            _ => ("✗", theme.error, theme.warn),
        };
        let row = super::fit_row(
            vec![
                Span::styled(format!("{:>4} ", e.seq), theme.muted),
                Span::styled(format!("{glyph} "), glyph_style),
                Span::styled(format!("{} ", e.event_type), style),
                Span::styled(format!("{} {}", e.action, e.outcome), theme.muted),
            ],
            usize::from(inner.width),
        );
        lines.push(if focused && i == shown.selected {
            super::highlight(row, theme.selection)
        } else {
            row
        });
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
