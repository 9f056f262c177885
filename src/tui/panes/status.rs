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

/// How long a segment stays when the bar is short of room: the lowest goes first.
const DROP_FIRST: u8 = 0;
const DROP_LATER: u8 = 1;
const KEEP: u8 = 2;
/// What must be seen whatever else goes: a broken chain, a blackout.
const ALARM: u8 = 3;
/// A message: cut to the room left (with `…`) rather than dropped.
const SHRINK: u8 = 4;

/// The spans that fit in `width` columns: while they do not, the segment of lowest priority
/// (the last of equals) goes; a message (`SHRINK`) is cut to what is left with `…`. A segment
/// is never cut otherwise, so a hash or a count is shown whole or not at all.
pub fn fit_segments(mut segs: Vec<(u8, Span<'_>)>, width: usize) -> Vec<Span<'_>> {
    use unicode_width::UnicodeWidthStr;
    let total = |segs: &[(u8, Span<'_>)]| segs.iter().map(|s| s.1.content.width()).sum::<usize>();
    while total(&segs) > width {
        let lowest = segs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.0 < SHRINK)
            .min_by_key(|(i, s)| (s.0, std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        let message = segs.iter().position(|s| s.0 == SHRINK);
        match (lowest, message) {
            // Keep what must stay while a message can still give way; a message alone in
            // the bar is cut too.
            (Some(i), Some(m)) if segs[i].0 >= KEEP => cut_to_fit(&mut segs, m, width),
            (None, Some(m)) => cut_to_fit(&mut segs, m, width),
            (Some(i), _) => {
                segs.remove(i);
            }
            (None, None) => break,
        }
    }
    segs.into_iter().map(|s| s.1).collect()
}

/// Cuts the message at `m` so the bar fits `width`, ending it with `…`; it then counts as a
/// segment to keep.
fn cut_to_fit(segs: &mut [(u8, Span<'_>)], m: usize, width: usize) {
    use unicode_width::UnicodeWidthStr;
    let total: usize = segs.iter().map(|s| s.1.content.width()).sum();
    let over = total.saturating_sub(width);
    let text = segs[m].1.content.to_string();
    let room = text.width().saturating_sub(over + 1);
    // The longest prefix that fits, measured as a string (as the total was): a sequence such
    // as an emoji with its variation selector is as wide together as the total counted it.
    let end = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .take_while(|&i| text[..i].width() <= room)
        .last()
        .unwrap_or(0);
    segs[m].1.content = format!("{}…", &text[..end]).into();
    segs[m].0 = KEEP;
}

/// Draws the bar.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let sep = Span::styled(" │ ", theme.status);
    let waiting = app.confirmations.len();
    // While a message is up it matters more than the backend's name, which can give way to
    // keep it whole at 80 columns.
    let message = (waiting > 0 && app.confirm.is_none()) || app.flash.is_some();
    // With a message the backend and its separator are one segment, so they go together.
    let mut left = vec![if message {
        (
            DROP_LATER,
            Span::styled(
                format!(" {}/{} │", app.link.backend, app.link.model),
                theme.status,
            ),
        )
    } else {
        (
            KEEP,
            Span::styled(
                format!(" {}/{}", app.link.backend, app.link.model),
                theme.status,
            ),
        )
    }];
    // Tokens/s of the task in view (the selected one, else the newest) while it streams, where
    // the bar has room beside the audit state; the Output pane's title shows it at any width.
    // Nothing streaming, no rate: a finished task's average is not a live figure.
    if area.width >= 100
        && !message
        && let Some(rate) = app
            .selected_task()
            .or_else(|| app.tasks.last())
            .filter(|t| t.is_active())
            .and_then(|t| t.tokens_per_second(app.now))
    {
        left.push((
            DROP_FIRST,
            Span::styled(format!(" {}", rate_text(rate)), theme.status),
        ));
    }
    if !message {
        left.push((KEEP, sep.clone()));
    }
    // A waiting confirmation the modal does not show (the operator is typing) comes first;
    // then a message; either takes the place of the link and audit summary, so it is readable
    // at 80 columns.
    if waiting > 0 && app.confirm.is_none() {
        let plural = if waiting == 1 { "" } else { "s" };
        left.push((
            SHRINK,
            Span::styled(
                format!(
                    " ⚠ {waiting} confirmation{plural} waiting · {} to answer",
                    app.leave_key()
                ),
                theme.status.patch(theme.warn),
            ),
        ));
    } else if let Some(flash) = &app.flash {
        let style = match flash.level {
            FlashLevel::Info => theme.status,
            FlashLevel::Error => theme.status.patch(theme.error),
        };
        left.push((SHRINK, Span::styled(format!(" {}", flash.text), style)));
    } else {
        let link = &app.link.link;
        if link.simulated {
            let one_way = crate::tui::panes::tasks::countdown_text(
                std::time::Duration::from_millis(link.one_way_ms),
            );
            left.push((
                DROP_LATER,
                Span::styled(
                    format!(
                        "{} {} {one_way} ×{}",
                        link.preset, link.mode, link.time_scale
                    ),
                    theme.status,
                ),
            ));
            // The simulated date only where it fits beside the audit summary.
            if link.time_scale != 1.0 && area.width >= 110 {
                let sim = link.sim_time_at(app.now);
                left.push((
                    DROP_FIRST,
                    Span::styled(sim.format(" sim %m-%d %H:%M").to_string(), theme.status),
                ));
            }
            match link.conjunction.as_str() {
                "blackout" => left.push((
                    ALARM,
                    Span::styled(" BLACKOUT", theme.status.patch(theme.error)),
                )),
                "reduced" => left.push((
                    KEEP,
                    Span::styled(" reduced", theme.status.patch(theme.warn)),
                )),
                _ => {}
            }
        } else {
            left.push((
                DROP_LATER,
                Span::styled(format!("{} sim off", link.preset), theme.status),
            ));
        }
        left.push((DROP_LATER, sep));
        if app.audit.enabled {
            let short = app.audit.head.get(..8).unwrap_or(&app.audit.head);
            left.push((
                DROP_LATER,
                Span::styled(
                    format!("audit {} {short} ", app.audit.entries),
                    theme.status,
                ),
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
            // A broken chain is never dropped; the rest of the audit state may be.
            let keep = if matches!(app.audit.verification, Verification::Failed { .. }) {
                ALARM
            } else {
                DROP_LATER
            };
            left.push((keep, Span::styled(mark, style)));
        } else {
            left.push((DROP_LATER, Span::styled("audit off", theme.status)));
        }
    }
    let clock = app.now.format(" %H:%M:%S UTC ").to_string();
    let [l, r] = Layout::horizontal([Constraint::Min(10), Constraint::Length(clock.len() as u16)])
        .areas(area);
    let left = fit_segments(left, usize::from(l.width));
    frame.render_widget(Paragraph::new(Line::from(left)).style(theme.status), l);
    frame.render_widget(
        Paragraph::new(Line::styled(clock, theme.status)).style(theme.status),
        r,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(spans: &[Span<'_>]) -> String {
        spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn segments_give_way_by_priority_and_are_never_cut() {
        let segs = || {
            vec![
                (KEEP, Span::raw(" mock/m")),
                (DROP_FIRST, Span::raw(" 42 tok/s")),
                (KEEP, Span::raw(" │ ")),
                (DROP_LATER, Span::raw("mars fixed 12m ×60")),
                (DROP_FIRST, Span::raw(" sim 12-01 10:00")),
                (DROP_LATER, Span::raw(" │ ")),
                (DROP_LATER, Span::raw("audit 81 d953e114 ")),
                (ALARM, Span::raw("✗ CHAIN BROKEN")),
            ]
        };
        let all = text(&fit_segments(segs(), 200));
        assert_eq!(
            all,
            " mock/m 42 tok/s │ mars fixed 12m ×60 sim 12-01 10:00 │ audit 81 d953e114 ✗ CHAIN BROKEN"
        );
        // Narrower: the sim date and the rate go first, later segments of a level before
        // earlier ones; the hash is whole or absent, the broken chain always there.
        for width in 20..all.chars().count() {
            let got = text(&fit_segments(segs(), width));
            assert!(got.chars().count() <= width, "{width}: {got}");
            assert!(got.contains("✗ CHAIN BROKEN"), "{width}: {got}");
            assert!(
                got.contains("d953e114") || !got.contains("d953"),
                "{width}: the hash cut: {got}"
            );
        }
        assert_eq!(
            text(&fit_segments(segs(), 63)),
            " mock/m │ mars fixed 12m ×60 │ audit 81 d953e114 ✗ CHAIN BROKEN"
        );
        assert_eq!(
            text(&fit_segments(segs(), 62)),
            " mock/m │ mars fixed 12m ×60 │ ✗ CHAIN BROKEN"
        );
    }

    #[test]
    fn a_message_is_cut_with_an_ellipsis_before_what_must_stay_goes() {
        let segs = vec![
            (KEEP, Span::raw(" mock/m")),
            (KEEP, Span::raw(" │ ")),
            (
                SHRINK,
                Span::raw("benchmark run failed: the store is on a full disk; free space"),
            ),
        ];
        let got = text(&fit_segments(segs, 40));
        assert_eq!(got.chars().count(), 40, "{got}");
        assert!(got.starts_with(" mock/m │ benchmark run failed"), "{got}");
        assert!(got.ends_with('…'), "{got}");
    }

    #[test]
    fn a_message_alone_is_cut_to_fit_whatever_its_characters() {
        use unicode_width::UnicodeWidthStr;
        for message in [
            " the store is on a full disk; free space and resume",
            " ⚠️ relay ⚠️ overloaded ⚠️ again ⚠️ and again ⚠️",
            " 火星への中継が過負荷です。後で再試行してください",
        ] {
            for width in 1..message.width() {
                let got = text(&fit_segments(
                    vec![
                        (DROP_LATER, Span::raw(" mock/m │")),
                        (SHRINK, Span::raw(message)),
                    ],
                    width,
                ));
                assert!(got.width() <= width, "{width}: {got:?} is {}", got.width());
                assert!(got.ends_with('…'), "{width}: {got:?}");
                assert!(
                    !got.contains("mock/m"),
                    "the backend gives way first: {got:?}"
                );
            }
        }
    }
}
