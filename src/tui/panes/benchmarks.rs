//! The `Benchmarks` pane: the console's benchmark run as it goes, and the runs before it.
//!
//! ```text
//! ┌ Benchmarks · running ──────────────────────────┐
//! │V-Score 0.412 ± 0.051  95% CI 0.361–0.463       │
//! │84/140 60% · 12s · ETA 8s · run 20261201-1024…  │
//! │CPLC ▕██████████░░░░░▏ 12/20 0.65 ±0.08         │
//! │MSGA ▕████████░░░░░░░▏ 11/20 0.40 ±0.11 1✗      │
//! │…                                               │
//! │history ▁▂▅▄▆ last 0.398 · 5 runs               │
//! │Enter 34 misses · c cancel                      │
//! └────────────────────────────────────────────────┘
//! ```
//!
//! Every bar has its numbers beside it and every state its word, so nothing depends on colour
//! (16 colours, `NO_COLOR`, a screen share). A V-Score is never shown without its interval.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::{block, fit_spans, title_room};
use crate::benchmarks::draw::fixed;
use crate::benchmarks::stats::Estimate;
use crate::duration;
use crate::tui::app::{App, BenchRun, BenchState, Pane};
use crate::tui::keymap::{Action, Mode};
use crate::tui::theme::Theme;

/// The sparkline's eight levels, 0 to 1.
const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The sparkline character of a score in `0..=1`.
pub fn spark(value: f64) -> char {
    let v = if value.is_finite() {
        value.clamp(0.0, 1.0)
    } else {
        0.0
    };
    // 0..=1 onto 0..=7; the cast cannot overflow after the clamp.
    let i = (v * 7.0).round() as usize;
    LEVELS[i.min(LEVELS.len() - 1)]
}

/// `0.412 ± 0.051  95% CI 0.361–0.463`, or the mean with why there is no interval yet.
pub fn estimate_text(e: &Estimate, digits: u32) -> String {
    match (e.se, e.ci_low, e.ci_high) {
        (Some(se), Some(lo), Some(hi)) => format!(
            "{} ± {}  95% CI {}–{}",
            fixed(e.mean, digits),
            fixed(Z * se, digits),
            fixed(lo, digits),
            fixed(hi, digits)
        ),
        _ => format!(
            "{} ± ?  (an interval needs 2+ tasks a family)",
            fixed(e.mean, digits)
        ),
    }
}

const Z: f64 = crate::benchmarks::stats::Z95;

/// One family's row, as text, before the columns are aligned.
struct BarRow {
    name: String,
    counts: String,
    score: String,
    errors: String,
    done: usize,
    total: usize,
}

/// Draws the pane.
pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect, tab: Option<Pane>) {
    let run = app.bench().run.as_ref();
    let mut title = vec![Span::styled("Benchmarks", theme.title)];
    if let Some(run) = run {
        title.push(Span::styled(
            format!(" · {}", run.state.name()),
            state_style(&run.state, theme),
        ));
    }
    if let Some(other) = tab {
        title.push(Span::styled(format!(" · ⇄ {}", other.name()), theme.muted));
    }
    let title = fit_spans(title, title_room(area, Pane::Benchmarks, app));
    let block = block(title, Pane::Benchmarks, app, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let mut lines: Vec<Line> = Vec::new();
    let mut extra: Vec<Line> = Vec::new();
    match run {
        None => {
            let hint = app.keymap().key_hint(Mode::Normal, Action::StartBench);
            lines.push(Line::styled(
                "No benchmark run in this session.",
                theme.muted,
            ));
            lines.push(Line::from(vec![
                Span::styled(format!("{hint} "), theme.accent),
                Span::styled("runs the configured suite (bench:)", theme.muted),
            ]));
            lines.push(Line::from(vec![
                Span::styled(":bench msga 20 hard ", theme.accent),
                Span::styled("runs a chosen one", theme.muted),
            ]));
        }
        Some(run) => run_lines(app, run, theme, width, &mut lines, &mut extra),
    }
    // The history and the key hints stay at the bottom; family rows give way first.
    let mut footer = vec![history_line(app, theme)];
    if let Some(hints) = hint_line(app, theme) {
        footer.push(hints);
    }
    let room = usize::from(inner.height).saturating_sub(footer.len());
    if lines.len() > room {
        let cut = lines.len() - room;
        lines.truncate(room.saturating_sub(1));
        if room > 0 {
            lines.push(Line::styled(
                format!("… {} more rows ({} zooms)", cut + 1, app.key(Action::Zoom)),
                theme.muted,
            ));
        }
    } else {
        // Misses fill what room is left (all of them are one key away).
        let spare = room - lines.len();
        let shown = extra.len().min(spare);
        lines.extend(extra.into_iter().take(if shown >= 3 { shown } else { 0 }));
        lines.extend(std::iter::repeat_n(Line::raw(""), room - lines.len()));
    }
    lines.extend(footer);
    frame.render_widget(Paragraph::new(lines), inner);
}

fn state_style(state: &BenchState, theme: &Theme) -> ratatui::style::Style {
    match state {
        BenchState::Starting | BenchState::Running => theme.running,
        BenchState::Cancelling => theme.warn,
        BenchState::Complete => theme.ok,
        BenchState::Cancelled => theme.warn,
        BenchState::Failed(_) => theme.error,
    }
}

/// [`fit_spans`] as a line.
fn fitting<'a>(spans: Vec<Span<'a>>, width: usize) -> Line<'a> {
    Line::from(fit_spans(spans, width))
}

fn run_lines<'a>(
    app: &App,
    run: &'a BenchRun,
    theme: &Theme,
    width: usize,
    lines: &mut Vec<Line<'a>>,
    extra: &mut Vec<Line<'a>>,
) {
    // V-Score first: the figure a team watches. The interval is part of it: where the whole
    // line does not fit, the CI part goes, the ± stays.
    let v = run.summary.as_ref().map(|s| s.v_score.score);
    let (done, total) = run.progress();
    lines.push(match v {
        Some(e) if done > 0 => {
            let text = estimate_text(&e, 3);
            let short = text.split("  ").next().unwrap_or_default().to_string();
            let text = if "V-Score ".width() + text.width() <= width {
                text
            } else {
                short
            };
            fitting(
                vec![
                    Span::styled("V-Score ", theme.title),
                    Span::styled(text, theme.text),
                ],
                width,
            )
        }
        _ => fitting(
            vec![
                Span::styled("V-Score ", theme.title),
                Span::styled("— (no task finished yet)", theme.muted),
            ],
            width,
        ),
    });
    let mut status = vec![Span::styled(
        format!(
            "{done}/{total} {}%",
            (done * 100).checked_div(total).unwrap_or(0)
        ),
        theme.text,
    )];
    let end = run.ended.unwrap_or(app.now());
    status.push(Span::styled(
        format!(" · {}", duration::short_signed(end - run.started)),
        theme.muted,
    ));
    if let Some(eta) = run.eta(app.now()) {
        status.push(Span::styled(
            format!(" · ETA {}", duration::short_signed(eta)),
            theme.accent,
        ));
    }
    match &run.id {
        Some(id) => status.push(Span::styled(format!(" · run {id}"), theme.muted)),
        None => status.push(Span::styled(format!(" · {}", run.label), theme.muted)),
    }
    lines.push(fitting(status, width));
    if let BenchState::Failed(e) = &run.state {
        // The whole error, wrapped: it says what to do.
        let text = format!("failed: {e}");
        for piece in super::wrap(&text, width) {
            lines.push(Line::styled(piece, theme.error));
        }
    }
    // One row per family; the figures are columns aligned over all rows, and the bar takes
    // what is left (none below three cells: the figures say it all).
    let families = run.summary.as_ref().map(|s| &s.families);
    let rows: Vec<BarRow> = run
        .families
        .iter()
        .map(|bar| {
            let score = families
                .and_then(|fs| fs.iter().find(|f| f.family == bar.family))
                .filter(|f| f.n > 0)
                .map(|f| f.score);
            BarRow {
                name: bar.family.name().to_ascii_uppercase(),
                counts: format!("{}/{}", bar.done, bar.total),
                score: match score {
                    Some(Estimate {
                        mean, se: Some(se), ..
                    }) => format!("{} ±{}", fixed(mean, 2), fixed(Z * se, 2)),
                    Some(e) => format!("{} ±?", fixed(e.mean, 2)),
                    None => "–".to_string(),
                },
                errors: if bar.errors > 0 {
                    format!("{}✗", bar.errors)
                } else {
                    String::new()
                },
                done: bar.done,
                total: bar.total,
            }
        })
        .collect();
    let col = |f: fn(&BarRow) -> &String| rows.iter().map(|r| f(r).width()).max().unwrap_or(0);
    let (name_w, count_w, score_w, err_w) = (
        col(|r| &r.name),
        col(|r| &r.counts),
        col(|r| &r.score),
        col(|r| &r.errors),
    );
    let figures = name_w + 1 + count_w + 1 + score_w + if err_w > 0 { 1 + err_w } else { 0 };
    // " ▕" + bar + "▏" around the bar.
    let bar_width = width.saturating_sub(figures + 3).min(40);
    for row in rows {
        let mut spans = vec![Span::styled(format!("{:<name_w$}", row.name), theme.title)];
        if bar_width >= 3 {
            let filled = (row.done * bar_width)
                .checked_div(row.total)
                .unwrap_or(0)
                .min(bar_width);
            spans.push(Span::styled(" ▕", theme.muted));
            spans.push(Span::styled("█".repeat(filled), theme.running));
            spans.push(Span::styled("░".repeat(bar_width - filled), theme.muted));
            spans.push(Span::styled("▏", theme.muted));
        }
        spans.push(Span::styled(
            format!(" {:>count_w$}", row.counts),
            theme.text,
        ));
        spans.push(Span::styled(
            format!(" {:<score_w$}", row.score),
            theme.accent,
        ));
        if !row.errors.is_empty() {
            spans.push(Span::styled(format!(" {}", row.errors), theme.error));
        }
        lines.push(fitting(spans, width));
    }
    // Room left (a zoomed dashboard): the newest misses, so the failures are in sight.
    if !run.misses.is_empty() {
        extra.push(Line::raw(""));
        extra.push(Line::styled("newest misses", theme.title));
        for m in run.misses.iter().rev() {
            let head = format!("{} {} ", m.task_id, fixed(m.score, 2));
            // The reason takes what is left, cut with an ellipsis (which takes a cell too).
            let room = width.saturating_sub(3 + head.width());
            extra.push(fitting(
                vec![
                    Span::styled(
                        if m.failed { "✗ " } else { "· " },
                        if m.failed { theme.error } else { theme.muted },
                    ),
                    Span::styled(head, theme.text),
                    Span::styled(crate::sanitize::excerpt(&m.reason, room), theme.muted),
                ],
                width,
            ));
        }
    }
}

fn history_line<'a>(app: &App, theme: &Theme) -> Line<'a> {
    let h = &app.bench().history;
    if let Some(e) = &app.bench().history_error {
        return Line::styled(format!("history unavailable: {e}"), theme.error);
    }
    let Some(last) = h.last() else {
        return Line::styled("history: no complete run stored yet", theme.muted);
    };
    Line::from(vec![
        Span::styled("history ", theme.title),
        Span::styled(
            h.iter().map(|p| spark(p.v_score)).collect::<String>(),
            theme.accent,
        ),
        Span::styled(
            format!(
                " last {} · {} run{}",
                fixed(last.v_score, 3),
                h.len(),
                if h.len() == 1 { "" } else { "s" }
            ),
            theme.muted,
        ),
    ])
}

fn hint_line<'a>(app: &App, theme: &Theme) -> Option<Line<'a>> {
    let run = app.bench().run.as_ref()?;
    let key = |a| app.keymap().key_hint(Mode::Normal, a);
    let mut spans = vec![
        Span::styled(key(Action::Open), theme.accent),
        Span::styled(
            format!(
                " {} miss{}",
                run.miss_count,
                if run.miss_count == 1 { "" } else { "es" }
            ),
            theme.muted,
        ),
    ];
    if run.state.is_active() {
        spans.push(Span::styled(" · ", theme.muted));
        spans.push(Span::styled(key(Action::CancelTask), theme.accent));
        spans.push(Span::styled(" cancel", theme.muted));
    } else {
        spans.push(Span::styled(" · ", theme.muted));
        spans.push(Span::styled(key(Action::StartBench), theme.accent));
        spans.push(Span::styled(" run again", theme.muted));
    }
    Some(Line::from(spans))
}
