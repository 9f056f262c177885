//! The status bar: backend/model and live tokens/s, link preset, audit head and verification,
//! confirmations waiting, flash messages, and the UTC clock.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::wrap;
use crate::events::LinkStatus;
use crate::tui::app::{App, FlashLevel, Verification, reopens_text};
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

/// A part of the bar: how long it stays (`DROP_FIRST` … `SHRINK`), its text, and the shorter
/// forms it takes before going (longest first, each with how long it stays).
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    keep: u8,
    span: Span<'a>,
    shorter: Vec<(u8, Span<'a>)>,
    /// The forms given up, the last the one shown before this.
    longer: Vec<(u8, Span<'a>)>,
}

impl<'a> From<(u8, Span<'a>)> for Segment<'a> {
    fn from((keep, span): (u8, Span<'a>)) -> Self {
        Segment {
            keep,
            span,
            shorter: Vec::new(),
            longer: Vec::new(),
        }
    }
}

/// The spans that fit in `width` columns: while they do not, the segment of lowest priority
/// (the last of equals) takes its next shorter form, or goes when it has none; a message
/// (`SHRINK`) is cut to what is left with `…`. A segment is never cut otherwise, so a hash or
/// a count is shown whole or not at all.
pub fn fit_segments<'a, S: Into<Segment<'a>>>(segs: Vec<S>, width: usize) -> Vec<Span<'a>> {
    use unicode_width::UnicodeWidthStr;
    let mut segs: Vec<Segment<'a>> = segs.into_iter().map(Into::into).collect();
    let total = |segs: &[Segment<'_>]| segs.iter().map(|s| s.span.content.width()).sum::<usize>();
    while total(&segs) > width {
        let lowest = segs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.keep < SHRINK)
            .min_by_key(|(i, s)| (s.keep, std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        let message = segs.iter().position(|s| s.keep == SHRINK);
        match (lowest, message) {
            // Keep what must stay while a message can still give way; a message alone in
            // the bar is cut too.
            (Some(i), Some(m)) if segs[i].keep >= KEEP => cut_to_fit(&mut segs, m, width),
            (None, Some(m)) => cut_to_fit(&mut segs, m, width),
            (Some(i), _) if !segs[i].shorter.is_empty() => {
                let (keep, span) = segs[i].shorter.remove(0);
                let seg = &mut segs[i];
                let old_keep = std::mem::replace(&mut seg.keep, keep);
                let old_span = std::mem::replace(&mut seg.span, span);
                seg.longer.push((old_keep, old_span));
            }
            (Some(i), _) => {
                segs.remove(i);
            }
            (None, None) => break,
        }
    }
    // What went later may have left room for a longer form given up before it.
    for i in 0..segs.len() {
        while let Some((_, longer)) = segs[i].longer.last() {
            let grown = total(&segs) - segs[i].span.content.width() + longer.content.width();
            if grown > width {
                break;
            }
            if let Some((keep, span)) = segs[i].longer.pop() {
                segs[i].keep = keep;
                segs[i].span = span;
            }
        }
    }
    segs.into_iter().map(|s| s.span).collect()
}

/// Cuts the message at `m` so the bar fits `width`, ending it with `…`; it then counts as a
/// segment to keep.
fn cut_to_fit(segs: &mut [Segment<'_>], m: usize, width: usize) {
    use unicode_width::UnicodeWidthStr;
    let total: usize = segs.iter().map(|s| s.span.content.width()).sum();
    let over = total.saturating_sub(width);
    let text = segs[m].span.content.to_string();
    let room = text.width().saturating_sub(over + 1);
    segs[m].span.content = super::clip(&text, room).into();
    segs[m].keep = KEEP;
}

/// The most rows a long message may take.
const MAX_ROWS: usize = 3;

/// How a message reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    Info,
    Warn,
    Error,
}

impl Tone {
    fn style(self, theme: &Theme) -> Style {
        match self {
            Tone::Info => theme.status,
            Tone::Warn => theme.status.patch(theme.warn),
            Tone::Error => theme.status.patch(theme.error),
        }
    }
}

/// The message the bar shows instead of the link and audit summary: a waiting confirmation
/// the modal does not show (the operator is typing), else a flash.
fn message(app: &App) -> Option<(String, Tone)> {
    let waiting = app.confirmations().len();
    if waiting > 0 && app.confirm().is_none() {
        let plural = if waiting == 1 { "" } else { "s" };
        return Some((
            format!(
                "⚠ {waiting} confirmation{plural} waiting · {} to answer",
                app.leave_key()
            ),
            Tone::Warn,
        ));
    }
    app.flash_message().as_ref().map(|flash| {
        let tone = match flash.level {
            FlashLevel::Info => Tone::Info,
            FlashLevel::Error => Tone::Error,
        };
        (flash.text.clone(), tone)
    })
}

/// The clock's text (fixed width): hours and minutes. Seconds would rewrite the bar every
/// second, bytes on every frame over SSH; the Log pane stamps each line to the second.
fn clock_text(app: &App) -> String {
    app.now().format(" %H:%M UTC ").to_string()
}

/// How many rows the bar needs at `width` columns: one, or up to three while a message too
/// long for one line shows (it wraps rather than losing its end, where a suggestion is).
pub fn rows(app: &App, width: u16) -> u16 {
    use unicode_width::UnicodeWidthStr;
    let Some((text, _)) = message(app) else {
        return 1;
    };
    let avail = usize::from(width).saturating_sub(clock_text(app).width() + 1);
    if text.width() <= avail {
        return 1;
    }
    wrap(&text, avail).len().clamp(1, MAX_ROWS) as u16
}

/// The link's delay as the bar says it: `mars ephemeris 21m45s` (the light time now),
/// `mars fixed 12m42s` (the value every task waits), `mars uniform 3m06s–22m18s` (the range
/// each task draws from).
pub fn delay_text(link: &LinkStatus) -> String {
    let ms = |ms| crate::duration::delay(std::time::Duration::from_millis(ms));
    let delay = if link.mode == "uniform" && link.one_way_min_ms < link.one_way_max_ms {
        format!("{}–{}", ms(link.one_way_min_ms), ms(link.one_way_max_ms))
    } else {
        ms(link.one_way_ms)
    };
    format!("{} {} {delay}", link.preset, link.mode)
}

/// The blackout alarm, never dropped: `BLACKOUT · Sun 1.2° · reopens 2021-10-26 (in 3m10s)`
/// where it fits (the date simulated, the countdown real), then `… · Sun 1.2° → 2021-10-26
/// (in 3m10s)`, then `BLACKOUT → 10-26 (in 3m10s)`, then `BLACKOUT → 10-26`.
fn blackout_alarm<'a>(link: &LinkStatus, now: DateTime<Utc>, theme: &Theme) -> Segment<'a> {
    let style = theme.status.patch(theme.error);
    let sun = link
        .sun_deg
        .map(|deg| format!(" · Sun {deg:.1}°"))
        .unwrap_or_default();
    let Some(end) = link.blackout_ends else {
        return Segment {
            keep: DROP_LATER,
            span: Span::styled(format!(" BLACKOUT{sun}"), style),
            shorter: vec![(ALARM, Span::styled(" BLACKOUT", style))],
            longer: Vec::new(),
        };
    };
    let left = link.real_until(end, now);
    let reopens = reopens_text(end, left, false);
    let countdown = if left.is_zero() {
        "reopening".to_string()
    } else {
        format!("in {}", crate::duration::short(left))
    };
    let date = reopens_text(end, left, true);
    let form = |text: String| Span::styled(text, style);
    Segment {
        keep: DROP_FIRST,
        span: form(format!(" BLACKOUT{sun} · reopens {reopens}")),
        shorter: vec![
            (DROP_LATER, form(format!(" BLACKOUT{sun} → {reopens}"))),
            (KEEP, form(format!(" BLACKOUT → {date} ({countdown})"))),
            (ALARM, form(format!(" BLACKOUT → {date}"))),
        ],
        longer: Vec::new(),
    }
}

/// The fitted spans with no doubled space where a segment between two went, and no
/// separator left at the end.
fn close_gaps(mut spans: Vec<Span<'_>>) -> Vec<Span<'_>> {
    if spans.last().is_some_and(|s| s.content == " │ ") {
        spans.pop();
    }
    for i in 1..spans.len() {
        if spans[i - 1].content.ends_with(' ') && spans[i].content.starts_with(' ') {
            let trimmed = spans[i].content[1..].to_string();
            spans[i].content = trimmed.into();
        }
    }
    spans
}

/// Draws the bar.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    if area.height > 1
        && let Some((text, tone)) = message(app)
    {
        return render_wrapped(app, theme, frame, area, &text, tone.style(theme));
    }
    let sep = Span::styled(" │ ", theme.status);
    // A message takes the place of the link and audit summary, and matters more than the
    // backend's name, which can give way to keep it whole at 80 columns.
    let shown = message(app);
    let message = shown.is_some();
    // With a message the backend and its separator are one segment, so they go together.
    let mut left: Vec<Segment<'_>> = vec![Segment::from(if message {
        (
            DROP_LATER,
            Span::styled(
                format!(" {}/{} │", app.link().backend, app.link().model),
                theme.status,
            ),
        )
    } else {
        (
            KEEP,
            Span::styled(
                format!(" {}/{}", app.link().backend, app.link().model),
                theme.status,
            ),
        )
    })];
    // Where the runtime is, when not simply here: attached to another process, or serving (a
    // message takes its place).
    if !message && let Some(peer) = app.peer() {
        // Over a fleet, how many workers are up is what the operator watches: it stays as
        // long as the link does.
        let keep = if app.fleet() { DROP_LATER } else { DROP_FIRST };
        left.push(Segment::from((
            keep,
            Span::styled(format!(" ⇄ {peer}"), theme.status),
        )));
    }
    // Tokens/s of the task in view (the selected one, else the newest) while it streams, where
    // the bar has room beside the audit state; the Output pane's title shows it at any width.
    // Nothing streaming, no rate: a finished task's average is not a live figure.
    if area.width >= 100
        && !message
        && let Some(rate) = app
            .shown_task()
            .or_else(|| app.tasks().last())
            .filter(|t| t.is_active())
            .and_then(|t| t.tokens_per_second(app.now()))
    {
        left.push(Segment::from((
            DROP_FIRST,
            Span::styled(format!(" {}", rate_text(rate)), theme.status),
        )));
    }
    if !message {
        left.push((KEEP, sep.clone()).into());
    }
    if let Some((text, tone)) = shown {
        left.push((SHRINK, Span::styled(format!(" {text}"), tone.style(theme))).into());
    } else {
        let link = &app.link().link;
        if link.simulated {
            left.push(Segment::from((
                DROP_LATER,
                Span::styled(
                    format!("{} ×{}", delay_text(link), link.time_scale),
                    theme.status,
                ),
            )));
            // The simulated date, with its year, where it is not today's and fits beside the
            // audit summary.
            let sim = link.sim_time_at(app.now());
            if (sim - app.now()).abs() >= chrono::TimeDelta::minutes(1) && area.width >= 110 {
                left.push(Segment::from((
                    DROP_FIRST,
                    Span::styled(sim.format(" sim %Y-%m-%d %H:%M").to_string(), theme.status),
                )));
            }
            match link.conjunction.as_str() {
                "blackout" => left.push(blackout_alarm(link, app.now(), theme)),
                "reduced" => left.push(Segment::from((
                    KEEP,
                    Span::styled(" reduced", theme.status.patch(theme.warn)),
                ))),
                _ => {}
            }
        } else {
            left.push(Segment::from((
                DROP_LATER,
                Span::styled(format!("{} sim off", link.preset), theme.status),
            )));
        }
        left.push((DROP_LATER, sep).into());
        if app.audit().enabled {
            let short = app.audit().head.get(..8).unwrap_or(&app.audit().head);
            left.push(Segment::from((
                DROP_LATER,
                Span::styled(
                    format!("audit {} {short} ", app.audit().entries),
                    theme.status,
                ),
            )));
            let (mark, style) = match &app.audit().verification {
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
            let keep = if matches!(app.audit().verification, Verification::Failed { .. }) {
                ALARM
            } else {
                DROP_LATER
            };
            left.push((keep, Span::styled(mark, style)).into());
        } else {
            // Over a fleet each worker keeps, verifies and witnesses its own trail.
            let said = if app.fleet() {
                "audit at each worker"
            } else {
                "audit off"
            };
            left.push((DROP_LATER, Span::styled(said, theme.status)).into());
        }
    }
    let clock = clock_text(app);
    let [l, r] = Layout::horizontal([Constraint::Min(10), Constraint::Length(clock.len() as u16)])
        .areas(area);
    let left = close_gaps(fit_segments(left, usize::from(l.width)));
    frame.render_widget(Paragraph::new(Line::from(left)).style(theme.status), l);
    frame.render_widget(
        Paragraph::new(Line::styled(clock, theme.status)).style(theme.status),
        r,
    );
}

/// A message too long for one line, wrapped over the bar's rows (the last ends with `…` if
/// even they are too few), the clock beside the first.
fn render_wrapped(
    app: &App,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    text: &str,
    style: Style,
) {
    use unicode_width::UnicodeWidthStr;
    let clock = clock_text(app);
    let [l, r] = Layout::horizontal([
        Constraint::Min(10),
        Constraint::Length(clock.width() as u16),
    ])
    .areas(area);
    let avail = usize::from(l.width).saturating_sub(1);
    let mut lines = wrap(text, avail);
    let rows = usize::from(area.height);
    if lines.len() > rows {
        lines.truncate(rows);
        if let Some(last) = lines.last_mut() {
            *last = super::ellipsize(&format!("{last} …"), avail);
        }
    }
    let lines: Vec<Line<'_>> = lines
        .into_iter()
        .map(|line| Line::styled(format!(" {line}"), style))
        .collect();
    frame.render_widget(Paragraph::new(lines).style(theme.status), l);
    frame.render_widget(
        Paragraph::new(Line::styled(clock, theme.status)).style(theme.status),
        r,
    );
}

#[cfg(test)]
mod tests;
