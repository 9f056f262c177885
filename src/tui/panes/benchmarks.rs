//! The `Benchmarks` pane: the console's benchmark run as it goes, and the runs before it.
//!
//! ```text
//! ┌ Benchmarks · running ──────────────────────────┐
//! │openai/gpt-4o-mini · cplc,msga · 20 × hard · se…│
//! │V-Score 0.412 ± 0.051 · over 2 of 7 families so…│
//! │84/140 60% · 12s elapsed · ETA 8s · run 2026120…│
//! │CPLC ▕██████████░░░░░▏ 12/20 0.65 ±0.08         │
//! │MSGA ▕████████░░░░░░░▏ 11/20 1.00 CI 0.72–1.00  │
//! │…                                               │
//! │history ▁▂▅▄▆ last 0.398 · 5 of this suite      │
//! │Enter 34 misses · c cancel                      │
//! └────────────────────────────────────────────────┘
//! ```
//!
//! Every bar has its numbers beside it and every state its word, so nothing depends on colour
//! (16 colours, `NO_COLOR`, a screen share). A V-Score is never shown without its interval; a
//! score of exactly 0 or 1 shows its (one-sided) interval rather than a ±. The pane names what
//! runs where, says when the V-Score covers only part of the plan, and its sparkline holds only
//! runs of the same suite. The time shown is the run's wall time (`elapsed`), not the tasks'
//! times summed. [`plan_lines`] is the question asked before a run off the mock and replay.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::{block, fit_spans, title_room};
use crate::benchmarks::draw::{fixed, grouped};
use crate::benchmarks::stats::Estimate;
use crate::duration;
use crate::tui::app::{App, BenchPlan, BenchRun, BenchState, Pane};
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

/// `0.412 ± 0.051  95% CI 0.361–0.463`, or the mean with why there is no interval yet. Where
/// a ± would say nothing — a mean of exactly 0 or 1, whose Wilson interval is one-sided, or a
/// ± that rounds to zero — the interval stands alone, as the CLI's table gives it:
/// `1.000  95% CI 0.839–1.000`.
pub fn estimate_text(e: &Estimate, digits: u32) -> String {
    match (e.se, e.ci_low, e.ci_high) {
        (Some(se), Some(lo), Some(hi)) if plain_pm(e.mean, se, digits) => format!(
            "{} ± {}  95% CI {}–{}",
            fixed(e.mean, digits),
            fixed(Z * se, digits),
            fixed(lo, digits),
            fixed(hi, digits)
        ),
        (_, Some(lo), Some(hi)) => format!(
            "{}  95% CI {}–{}",
            fixed(e.mean, digits),
            fixed(lo, digits),
            fixed(hi, digits)
        ),
        _ => format!(
            "{} ± ?  (an interval needs 2+ tasks a family)",
            fixed(e.mean, digits)
        ),
    }
}

/// The narrow form of [`estimate_text`]: `0.41 ±0.05` (with `gap` after the `±`: `" "` for
/// the V-Score's `0.412 ± 0.051`), or `1.00 CI 0.84–1.00` where a ± would say nothing.
pub fn estimate_short(e: &Estimate, digits: u32, gap: &str) -> String {
    match (e.se, e.ci_low, e.ci_high) {
        (Some(se), Some(_), Some(_)) if plain_pm(e.mean, se, digits) => {
            format!("{} ±{gap}{}", fixed(e.mean, digits), fixed(Z * se, digits))
        }
        (_, Some(lo), Some(hi)) => format!(
            "{} CI {}–{}",
            fixed(e.mean, digits),
            fixed(lo, digits),
            fixed(hi, digits)
        ),
        (Some(se), _, _) => format!("{} ±{gap}{}", fixed(e.mean, digits), fixed(Z * se, digits)),
        _ => format!("{} ±{gap}?", fixed(e.mean, digits)),
    }
}

/// True when `mean ± Z·se` says what the interval does: the mean is inside (0, 1) and the ±
/// does not round to zero at `digits`.
fn plain_pm(mean: f64, se: f64, digits: u32) -> bool {
    let zero = fixed(0.0, digits);
    mean > 0.0 && mean < 1.0 && fixed(Z * se, digits) != zero
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
    let mut footer = vec![history_line(app, theme, width)];
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

/// The question before a run off the mock and replay: what it runs, where, and what its
/// prompts come to, in lines at most `width` wide (the last one the answers).
pub fn plan_lines<'a>(app: &App, plan: &BenchPlan, theme: &Theme, width: usize) -> Vec<Line<'a>> {
    let key = |action| app.keymap().key_hint(Mode::Question, action);
    let families = plan.suite.families.len();
    let epochs = if plan.epochs == 1 {
        String::new()
    } else {
        format!(" × {} epochs", plan.epochs)
    };
    let paragraphs = [
        (
            format!(
                "{} famil{} × {} tasks × {}{epochs} = {} executions ({})",
                families,
                if families == 1 { "y" } else { "ies" },
                plan.suite.count,
                plan.suite.difficulty,
                grouped(plan.executions as f64, 0),
                crate::tui::app::families_name(&plan.suite.families)
            ),
            theme.text,
        ),
        (
            format!(
                "on {}/{}: each execution is a call to this backend",
                plan.backend, plan.model
            ),
            theme.warn,
        ),
        (
            format!(
                "≈ {} input tokens in the prompts — an estimate (characters ÷ 4); answers, \
                 tool results and later dialogue turns come on top",
                grouped(plan.prompt_tokens as f64, 0)
            ),
            theme.text,
        ),
    ];
    let mut lines: Vec<Line> = paragraphs
        .into_iter()
        .flat_map(|(text, style)| {
            super::wrap(&text, width)
                .into_iter()
                .map(move |piece| Line::styled(piece, style))
        })
        .collect();
    lines.push(Line::from(vec![
        Span::styled(key(Action::Yes), theme.accent),
        Span::styled(" start the run · ", theme.text),
        Span::styled(key(Action::No), theme.accent),
        Span::styled(" do not", theme.text),
    ]));
    lines
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

/// The V-Score line: the figure a team watches. While a run goes (or once it was cut short)
/// it covers the families with a finished task, and says so.
fn v_score_line<'a>(run: &BenchRun, theme: &Theme, width: usize) -> Line<'a> {
    let (done, _) = run.progress();
    let (covered, planned) = run.coverage();
    let v = run
        .summary
        .as_ref()
        .map(|s| s.v_score.score)
        .filter(|_| done > 0);
    let partial = (covered < planned)
        .then(|| format!(" · over {covered} of {planned} families{}", so_far(run)));
    score_line(
        "V-Score ",
        v,
        partial,
        "— (no task finished yet)",
        theme,
        width,
    )
}

/// A suite's run's line: its own score with its interval, never called a V-Score.
fn eval_score_line<'a>(
    eval: &crate::tui::app::EvalBar,
    run: &BenchRun,
    theme: &Theme,
    width: usize,
) -> Line<'a> {
    let partial = (eval.covered < eval.total).then(|| {
        format!(
            " · over {} of {} samples{}",
            eval.covered,
            eval.total,
            so_far(run)
        )
    });
    let e = eval.estimate.filter(|_| eval.covered > 0);
    score_line(
        "score ",
        e,
        partial,
        "— (no sample finished yet)",
        theme,
        width,
    )
}

/// ` so far` while the run goes, else `, what finished`.
fn so_far(run: &BenchRun) -> &'static str {
    if run.state.is_active() {
        " so far"
    } else {
        ", what finished"
    }
}

/// `name` and the estimate `e` with its interval (where the whole line does not fit, the CI
/// part goes, the ± stays), then what it covers when that is not everything; `none` while
/// nothing finished.
fn score_line<'a>(
    name: &'static str,
    e: Option<Estimate>,
    partial: Option<String>,
    none: &'static str,
    theme: &Theme,
    width: usize,
) -> Line<'a> {
    let Some(e) = e else {
        return fitting(
            vec![
                Span::styled(name, theme.title),
                Span::styled(none, theme.muted),
            ],
            width,
        );
    };
    let partial = partial.unwrap_or_default();
    let text = estimate_text(&e, 3);
    let text = if name.width() + text.width() + partial.width() <= width {
        text
    } else {
        estimate_short(&e, 3, " ")
    };
    fitting(
        vec![
            Span::styled(name, theme.title),
            Span::styled(text, theme.text),
            Span::styled(partial, theme.warn),
        ],
        width,
    )
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
    // What runs where: the backend, its model and the suite (difficulty included) are named,
    // so a shared screen never leaves them to be guessed.
    let on = if run.backend.is_empty() {
        String::new()
    } else {
        format!("{}/{} · ", run.backend, run.model)
    };
    lines.push(fitting(
        vec![
            Span::styled(on, theme.accent),
            Span::styled(run.label.clone(), theme.text),
        ],
        width,
    ));
    let (done, total) = run.progress();
    match &run.eval {
        Some(eval) => lines.push(eval_score_line(eval, run, theme, width)),
        None => lines.push(v_score_line(run, theme, width)),
    }
    let mut status = vec![Span::styled(
        if run.state.is_active() || run.state == BenchState::Complete {
            format!(
                "{done}/{total} {}%",
                (done * 100).checked_div(total).unwrap_or(0)
            )
        } else {
            format!("{done} of {total} finished")
        },
        theme.text,
    )];
    let end = run.ended.unwrap_or(app.now());
    // Wall time since the run was asked for (not the tasks' times summed: they overlap).
    status.push(Span::styled(
        format!(" · {} elapsed", duration::short_signed(end - run.started)),
        theme.muted,
    ));
    if let Some(eta) = run.eta(app.now()) {
        status.push(Span::styled(
            format!(" · ETA {}", duration::short_signed(eta)),
            theme.accent,
        ));
    }
    if let Some(id) = &run.id {
        status.push(Span::styled(format!(" · run {id}"), theme.muted));
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
    let mut rows: Vec<BarRow> = run
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
                score: score.map_or_else(|| "–".to_string(), |e| estimate_short(&e, 2, "")),
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
    // A suite's run has one bar: the suite's.
    if let Some(eval) = &run.eval {
        rows.push(BarRow {
            name: format!(
                "{} v{}",
                crate::sanitize::excerpt(&eval.name, 20),
                crate::sanitize::excerpt(&eval.version, 8)
            ),
            counts: format!("{}/{}", eval.done, eval.total),
            score: eval
                .estimate
                .filter(|_| eval.covered > 0)
                .map_or_else(|| "–".to_string(), |e| estimate_short(&e, 2, "")),
            errors: if eval.errors > 0 {
                format!("{}✗", eval.errors)
            } else {
                String::new()
            },
            done: eval.done,
            total: eval.total,
        });
    }
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

/// The sparkline of past runs of one suite — the console's run's, or the newest stored
/// run's — named, so a run is only ever compared with runs that measured the same thing.
fn history_line<'a>(app: &App, theme: &Theme, width: usize) -> Line<'a> {
    let bench = app.bench();
    if let Some(why) = &bench.unkept {
        return Line::styled(format!("history: {why}"), theme.muted);
    }
    if let Some(e) = &bench.history_error {
        return Line::styled(format!("history unavailable: {e}"), theme.error);
    }
    if bench.run.as_ref().is_some_and(|r| r.eval.is_some()) {
        // The sparkline holds V-Scores: an eval suite's score is never one of them.
        return Line::styled(
            "history: V-Scores only; `veyra bench list` lists this suite's runs",
            theme.muted,
        );
    }
    let suite = bench
        .run
        .as_ref()
        .and_then(|r| r.suite.clone())
        .or_else(|| bench.history.last().map(|p| p.suite.clone()));
    let Some(suite) = suite else {
        return Line::styled("history: no complete run stored yet", theme.muted);
    };
    let h: Vec<_> = bench.history.iter().filter(|p| p.suite == suite).collect();
    let Some(last) = h.last() else {
        return Line::styled(
            format!("history: no complete run of {} stored yet", suite.name()),
            theme.muted,
        );
    };
    let runs = format!("{} run{}", h.len(), if h.len() == 1 { "" } else { "s" });
    let head = vec![
        Span::styled("history ", theme.title),
        Span::styled(
            h.iter().map(|p| spark(p.v_score)).collect::<String>(),
            theme.accent,
        ),
        Span::styled(format!(" last {}", fixed(last.v_score, 3)), theme.muted),
    ];
    // Which suite, in as many words as fit: its name, or (the run's own, named above) "this
    // suite"; never a name cut short.
    let used: usize = head.iter().map(|s| s.content.width()).sum();
    let named = format!(" · {runs} of {}", suite.name());
    let this = bench.run.as_ref().and_then(|r| r.suite.as_ref()) == Some(&suite);
    let tail = if used + named.width() <= width || !this {
        named
    } else {
        format!(" · {} of this suite", h.len())
    };
    let mut spans = head;
    spans.push(Span::styled(tail, theme.muted));
    fitting(spans, width)
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
        // `b` runs the configured families: a suite's run is not run again by it.
        spans.push(Span::styled(
            if run.eval.is_some() {
                " run the families"
            } else {
                " run again"
            },
            theme.muted,
        ));
    }
    Some(Line::from(spans))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::benchmarks::FamilyId;
    use crate::benchmarks::stats::{self, TaskScores};

    fn family_estimate(scores: &[f64]) -> Estimate {
        let tasks: Vec<TaskScores> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| TaskScores {
                family: FamilyId::Msga,
                task_id: format!("t{i}"),
                cluster: format!("t{i}"),
                scores: vec![*s],
                errors: 0,
                latency_ms: 0,
                tokens_in: 0,
                tokens_out: 0,
            })
            .collect();
        stats::summarize(&tasks, &[FamilyId::Msga], &|_| 1.0).families[0].score
    }

    #[test]
    fn a_score_of_exactly_0_or_1_shows_its_wilson_interval_never_a_plus_minus() {
        // 1,000 right of 1,000: Wilson's interval is [0.996, 1]; `± 0.002` (or `±0.00` at two
        // digits) would claim a symmetric certainty.
        let all = family_estimate(&vec![1.0; 1000]);
        let (lo, hi) = stats::wilson(1000.0, 1000.0).unwrap();
        assert_eq!(
            estimate_text(&all, 3),
            format!("1.000  95% CI {}–{}", fixed(lo, 3), fixed(hi, 3))
        );
        assert_eq!(
            estimate_short(&all, 2, ""),
            format!("1.00 CI {}–1.00", fixed(lo, 2))
        );
        let none = family_estimate(&[0.0; 20]);
        assert_eq!(estimate_text(&none, 3), "0.000  95% CI 0.000–0.161");
        assert_eq!(estimate_short(&none, 2, ""), "0.00 CI 0.00–0.16");
        for text in [
            estimate_text(&all, 3),
            estimate_short(&all, 2, ""),
            estimate_text(&none, 3),
        ] {
            assert!(!text.contains('±'), "{text}");
        }
        // Inside (0, 1) with a ± that says something, the ± stays.
        let half = family_estimate(&[1.0, 0.0, 1.0, 0.0]);
        assert!(estimate_text(&half, 3).starts_with("0.500 ± "));
        assert!(estimate_short(&half, 2, "").starts_with("0.50 ±"));
        // A ± that rounds to nothing gives way to the interval too.
        let mut many = vec![1.0; 50_000];
        many.extend(vec![0.0; 50_000]);
        let tight = family_estimate(&many);
        assert!(
            !estimate_short(&tight, 2, "").contains('±'),
            "{}",
            estimate_short(&tight, 2, "")
        );
    }
}
