//! The console's view types: what each pane shows (tasks, audit and safety lines, the link,
//! messages, overlays), and the pure helpers that read them (filters, a task in full).

use chrono::{DateTime, Utc};

use super::Pane;
use crate::events::{ExecutionId, FinishReason, LinkStatus, Priority, TaskStatus, TokenUsage};
use crate::tui::log_layer::LogRecord;
use crate::tui::output::OutputBuffer;
use tracing::level_filters::LevelFilter;

/// One row of the Tasks pane and the text of the Output pane.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    /// Execution id.
    pub id: ExecutionId,
    /// One-line prompt preview.
    pub title: String,
    /// Priority.
    pub priority: Priority,
    /// Backend.
    pub backend: String,
    /// Model.
    pub model: String,
    /// Handler kind.
    pub kind: String,
    /// State.
    pub status: TaskStatus,
    /// When the state was entered.
    pub status_at: DateTime<Utc>,
    /// Attempt number (0 before the first).
    pub attempt: u32,
    /// Accepted at.
    pub submitted_at: DateTime<Utc>,
    /// Ended at.
    pub finished_at: Option<DateTime<Utc>>,
    /// Streamed answer.
    pub output: OutputBuffer,
    /// Token usage when finished.
    pub usage: Option<TokenUsage>,
    /// Why it stopped, when finished.
    pub finish_reason: Option<FinishReason>,
    /// Pieces of output received (a backend sends about one token per piece).
    pub deltas: u64,
    /// `deltas` as of the last clock tick: the live rate moves at the clock's pace, not with
    /// every piece (each change is bytes on the wire while text streams).
    pub deltas_ticked: u64,
    /// Every state the task went through: when, which, on which attempt (newest last).
    pub timeline: Vec<(DateTime<Utc>, TaskStatus, u32)>,
    /// Time from the start of the answer to its last token, when finished.
    pub latency_ms: Option<u64>,
}

impl TaskView {
    /// Tokens per second: exact once finished (output tokens over the answer's time), else
    /// estimated from the pieces received since the attempt started.
    pub fn tokens_per_second(&self, now: DateTime<Utc>) -> Option<f64> {
        if let (Some(usage), Some(ms)) = (self.usage, self.latency_ms) {
            return (ms > 0 && usage.output > 0).then(|| usage.output as f64 * 1000.0 / ms as f64);
        }
        if !matches!(self.status, TaskStatus::Running) || self.deltas_ticked == 0 {
            return None;
        }
        let elapsed = (now - self.status_at).num_milliseconds();
        (elapsed >= 200).then(|| self.deltas_ticked as f64 * 1000.0 / elapsed as f64)
    }
}

impl TaskView {
    /// What the `/` filter searches: title, priority, state, kind, backend, model, id.
    pub fn filter_text(&self) -> String {
        format!(
            "{} {} {} {} {} {} {}",
            self.title,
            self.priority.name(),
            self.status.name(),
            self.kind,
            self.backend,
            self.model,
            self.id
        )
    }

    /// Time from submission to the end, or to `now` while active.
    pub fn elapsed(&self, now: DateTime<Utc>) -> chrono::Duration {
        self.finished_at.unwrap_or(now) - self.submitted_at
    }

    /// True until the task reaches a final state.
    pub fn is_active(&self) -> bool {
        !self.status.is_final()
    }

    /// What is left of a timed wait (transit and blackout in simulated time, a retry backoff in
    /// real time), counted down from when the state was entered.
    pub fn countdown(&self, now: DateTime<Utc>) -> Option<std::time::Duration> {
        let waited = (now - self.status_at).num_milliseconds().max(0) as u64;
        match &self.status {
            TaskStatus::Uplink { sim_ms, real_ms }
            | TaskStatus::Downlink { sim_ms, real_ms }
            | TaskStatus::Blackout { sim_ms, real_ms } => {
                let done = if *real_ms == 0 {
                    *sim_ms
                } else {
                    (u128::from(waited) * u128::from(*sim_ms) / u128::from(*real_ms)) as u64
                };
                Some(std::time::Duration::from_millis(
                    sim_ms.saturating_sub(done),
                ))
            }
            TaskStatus::Retrying { delay_ms, .. } => Some(std::time::Duration::from_millis(
                delay_ms.saturating_sub(waited),
            )),
            TaskStatus::Queued
            | TaskStatus::Running
            | TaskStatus::Succeeded
            | TaskStatus::Failed { .. }
            | TaskStatus::Cancelled { .. } => None,
        }
    }
}

impl TaskView {
    /// What is left of a timed wait in real time: what the operator waits.
    pub fn real_countdown(&self, now: DateTime<Utc>) -> Option<std::time::Duration> {
        let waited = (now - self.status_at).num_milliseconds().max(0) as u64;
        let left = match &self.status {
            TaskStatus::Uplink { real_ms, .. }
            | TaskStatus::Downlink { real_ms, .. }
            | TaskStatus::Blackout { real_ms, .. } => real_ms.saturating_sub(waited),
            TaskStatus::Retrying { delay_ms, .. } => delay_ms.saturating_sub(waited),
            TaskStatus::Queued
            | TaskStatus::Running
            | TaskStatus::Succeeded
            | TaskStatus::Failed { .. }
            | TaskStatus::Cancelled { .. } => return None,
        };
        Some(std::time::Duration::from_millis(left))
    }

    /// While it waits out a blackout: when the link reopens (simulated time, on `link`'s
    /// clock) and the real time left until then.
    pub fn reopens(
        &self,
        link: &LinkStatus,
        now: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, std::time::Duration)> {
        let TaskStatus::Blackout { sim_ms, .. } = self.status else {
            return None;
        };
        // The runtime's figure, saturated rather than overflowing a date.
        let end = link
            .sim_time_at(self.status_at)
            .checked_add_signed(chrono::TimeDelta::milliseconds(
                i64::try_from(sim_ms)
                    .unwrap_or(i64::MAX)
                    .min(1_000_000_000_000_000),
            ))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Some((end, self.real_countdown(now)?))
    }

    /// What the task waits for, in the operator's words, while it waits: `waiting out a solar
    /// conjunction: the Mars link reopens 2021-10-26 (in 3m10s)`, `on the uplink to Mars,
    /// arrives in 4m12s`, `queued for a slot (4 running)`, `attempt 2 failed, retrying in 2.0s: <error>`.
    /// `running` is how many tasks hold a slot. `None` while it runs or once it ended.
    pub fn waiting_for(
        &self,
        link: &LinkStatus,
        running: usize,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let short = crate::duration::short;
        // Light time is simulated; say what it is in real time where the clock runs faster.
        let transit = |sim: std::time::Duration| {
            let real = self.real_countdown(now).unwrap_or_default();
            if link.time_scale == 1.0 {
                short(sim)
            } else {
                format!("{} (simulated; {} real)", short(sim), short(real))
            }
        };
        match &self.status {
            TaskStatus::Queued => Some(format!("queued for a slot ({running} running)")),
            TaskStatus::Uplink { .. } => Some(format!(
                "on the uplink to {}, arrives in {}",
                link.far_end(),
                transit(self.countdown(now).unwrap_or_default())
            )),
            TaskStatus::Downlink { .. } => Some(format!(
                "on the downlink from {}, arrives in {}",
                link.far_end(),
                transit(self.countdown(now).unwrap_or_default())
            )),
            TaskStatus::Blackout { .. } => {
                let (end, left) = self.reopens(link, now)?;
                Some(format!(
                    "waiting out a solar conjunction: the {} link reopens {}",
                    link.far_end(),
                    reopens_text(end, left, false)
                ))
            }
            TaskStatus::Retrying { error, .. } => Some(format!(
                "attempt {} failed, retrying in {}: {error}",
                self.attempt,
                short(self.real_countdown(now).unwrap_or_default())
            )),
            TaskStatus::Running
            | TaskStatus::Succeeded
            | TaskStatus::Failed { .. }
            | TaskStatus::Cancelled { .. } => None,
        }
    }
}

/// When a blackout ends: the simulated date, and the real time the operator waits for it
/// (`2021-10-26 (in 3m10s)`), or the month and day alone when `short` (`10-26`).
pub fn reopens_text(end: DateTime<Utc>, real_left: std::time::Duration, short: bool) -> String {
    if short {
        return end.format("%m-%d").to_string();
    }
    let date = end.format("%Y-%m-%d");
    if real_left.is_zero() {
        format!("{date} (reopening)")
    } else {
        format!("{date} (in {})", crate::duration::short(real_left))
    }
}

/// State of the last audit verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Not verified since start.
    Never,
    /// A verification is running.
    Running,
    /// The chain verified.
    Verified {
        /// Entries checked.
        entries: u64,
        /// How long it took, ms.
        duration_ms: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// The chain is broken.
    Failed {
        /// First bad entry and why.
        failure: String,
        /// How long it took, ms.
        duration_ms: u64,
        /// When.
        at: DateTime<Utc>,
    },
}

/// One line of the Audit pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    /// Sequence number.
    pub seq: u64,
    /// Event type.
    pub event_type: String,
    /// Actor.
    pub actor: String,
    /// Action.
    pub action: String,
    /// Outcome.
    pub outcome: String,
    /// Entry hash (hex).
    pub hash: String,
}

impl AuditLine {
    /// What the `/` filter searches.
    pub fn filter_text(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.seq, self.event_type, self.actor, self.action, self.outcome
        )
    }
}

/// One line of the Safety pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViolationLine {
    /// Its number in the order the console received violations, from 1: the pane's order,
    /// and what its selection holds on to.
    pub seq: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// The operation.
    pub operation: String,
    /// `blocked` or `needs_confirmation`.
    pub level: String,
    /// The rule.
    pub rule: String,
    /// Why.
    pub reason: String,
    /// Who asked.
    pub actor: String,
}

impl ViolationLine {
    /// What the `/` filter searches.
    pub fn filter_text(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.operation, self.level, self.rule, self.actor, self.reason
        )
    }

    /// The row as the Safety pane draws it, in parts: time, glyph, operation, rule, actor and
    /// reason, each but the last ending with a space. The pane wraps their concatenation, and
    /// [`App::shown_violations`](super::App::shown_violations) measures it the same way.
    pub fn row_parts(&self) -> [String; 6] {
        [
            self.at.format("%H:%M:%S ").to_string(),
            format!(
                "{} ",
                if self.level == "blocked" {
                    "⊘"
                } else {
                    "✗"
                }
            ),
            format!("{} ", self.operation),
            format!("{} ", self.rule),
            format!("{} ", self.actor),
            self.reason.clone(),
        ]
    }

    /// Rows the violation takes wrapped at `width` columns (the Safety pane's wrapper).
    pub fn rows(&self, width: usize) -> usize {
        crate::tui::panes::wrap(&self.row_parts().concat(), width)
            .len()
            .max(1)
    }

    /// The policies that decided it, for a rule `policy:ID` or `policy:ID, ID` (a denial that
    /// two policies decided names both); empty for a boundary rule. `default-deny` is kept as
    /// it is: it names no policy but Cedar's default.
    pub fn policy_ids(&self) -> Vec<&str> {
        crate::service::detail::policy_ids(&self.rule)
    }
}

/// A confirmation waiting for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConfirmation {
    /// Request number (to answer by).
    pub request: u64,
    /// The task waiting.
    pub id: ExecutionId,
    /// The operation.
    pub operation: String,
    /// Why it needs confirmation.
    pub reason: String,
    /// What exactly would happen (a tool call's arguments), sanitized.
    pub detail: Option<String>,
    /// Whether `a` (allow this tool until the console closes) may answer it.
    pub scopable: bool,
}

/// Entries kept for the Audit and Safety panes.
pub const PANE_HISTORY: usize = 200;

/// How long the confirmation modal ignores keys after it appears, so that a key meant for
/// something else (the next letter of a word) cannot answer it.
pub const CONFIRM_GUARD: std::time::Duration = std::time::Duration::from_millis(400);

/// The confirmation the modal shows: it has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmModal {
    /// The request it asks about.
    pub request: u64,
    /// When it appeared; keys before `opened_at + guard` are ignored.
    pub opened_at: tokio::time::Instant,
}

/// The audit summary in the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditView {
    /// Audit on at all.
    pub enabled: bool,
    /// Entries recorded.
    pub entries: u64,
    /// Chain head (hex).
    pub head: String,
    /// Last verification.
    pub verification: Verification,
    /// Newest entries last.
    pub recent: std::collections::VecDeque<AuditLine>,
    /// The store signs checkpoints (the durable store does; the in-memory one does not).
    pub signs_checkpoints: bool,
    /// Newest signed checkpoint: entries covered and when.
    pub checkpoint: Option<(u64, DateTime<Utc>)>,
}

/// What the status bar says about the backend and the link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkView {
    /// Backend name.
    pub backend: String,
    /// Model name.
    pub model: String,
    /// The simulated link.
    pub link: LinkStatus,
}

/// Severity of a flash message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashLevel {
    /// Information.
    Info,
    /// Something failed.
    Error,
}

/// A short message in the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// The text.
    pub text: String,
    /// Severity.
    pub level: FlashLevel,
    /// Hidden after this time.
    pub until: DateTime<Utc>,
}

/// A modal on top of the panes; it takes every key while open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// Key bindings.
    Help,
    /// One item in full (a task's timeline, a violation and the rule that decided it).
    Detail {
        /// What it is.
        title: String,
        /// Its lines (sanitized).
        lines: Vec<String>,
    },
    /// "Tasks are running — quit anyway?"
    ConfirmQuit {
        /// Tasks still active.
        active: usize,
    },
    /// "Start this benchmark run?" — its plan, off the mock and replay backends.
    ConfirmBench(super::BenchPlan),
    /// The runtime this console was attached to is gone: host one here, or quit.
    RuntimeGone {
        /// Why, as the session ended (sanitized).
        reason: String,
    },
}

/// Whether `text` passes `filter`: a case-insensitive substring; `!x` passes what lacks `x`.
pub fn matches_filter(filter: Option<&str>, text: &str) -> bool {
    let Some(filter) = filter else { return true };
    let (invert, needle) = match filter.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, filter),
    };
    let found = text.to_lowercase().contains(&needle.to_lowercase());
    found != invert
}

/// Commands kept in the history.
pub const HISTORY_LEN: usize = 200;

/// Pages of the help overlay.
pub const HELP_PAGES: usize = 2;

/// Log records the Log pane keeps (the oldest go first).
pub const LOG_KEEP: usize = 5_000;

/// The Log pane: the records kept, which one is selected, where its window starts, and the
/// least severe level shown (`:log LEVEL`). The selection and the window hold records by
/// number, so lines arriving, old ones dropped, or a filter changing never move them onto
/// another record.
#[derive(Debug, Clone)]
pub struct LogView {
    /// Records, oldest first (at most [`LOG_KEEP`]), numbered from 1.
    pub records: std::collections::VecDeque<LogRecord>,
    /// The selected record's number while paged back; `None` follows the live tail.
    pub selected: Option<u64>,
    /// The number of the record on the window's first row while paged back.
    pub top: u64,
    /// Records less severe than this are hidden (`TRACE`: everything).
    pub level: LevelFilter,
    /// The number the next record gets.
    next_seq: u64,
    /// Each record's text for the `/` filter, lowercased once (same order as `records`).
    search: std::collections::VecDeque<String>,
}

impl Default for LogView {
    fn default() -> Self {
        LogView::at(LevelFilter::TRACE)
    }
}

impl LogView {
    /// The live tail, showing `level` and above.
    pub fn at(level: LevelFilter) -> Self {
        LogView {
            records: std::collections::VecDeque::new(),
            selected: None,
            top: 0,
            level,
            next_seq: 1,
            search: std::collections::VecDeque::new(),
        }
    }

    /// True while paged back from the live tail (`G` returns).
    pub fn scrolled(&self) -> bool {
        self.selected.is_some()
    }
}

/// The position in `shown` (numbered, in order) of record `seq`, or of the nearest shown
/// before it (the first when none is).
pub fn log_index(shown: &[&LogRecord], seq: u64) -> usize {
    shown.partition_point(|r| r.seq <= seq).saturating_sub(1)
}

/// The Log's window: the first row's position in `shown` for a pane of `rows`, and the
/// selected position. At the live tail the window ends with the newest; paged back it starts
/// at `top`, moved only as far as needed to keep the selection in it.
pub fn log_window(view: &LogView, shown: &[&LogRecord], rows: usize) -> (usize, usize) {
    let len = shown.len();
    let rows = rows.max(1);
    match view.selected {
        None => (len.saturating_sub(rows), len.saturating_sub(1)),
        Some(seq) => {
            let selected = log_index(shown, seq);
            let mut top = log_index(shown, view.top).min(len.saturating_sub(rows));
            if selected < top {
                top = selected;
            } else if selected >= top + rows {
                top = selected + 1 - rows;
            }
            (top, selected)
        }
    }
}

/// The `/` filters of the lists.
impl super::App {
    /// Sets (or, empty, clears) a list's filter and says what it shows.
    pub fn set_filter(&mut self, pane: Pane, filter: &str) {
        if filter.is_empty() || filter == "!" {
            self.filters.remove(&pane);
            self.flash(format!("{}: filter cleared", pane.name()), FlashLevel::Info);
            return;
        }
        self.filters.insert(pane, filter.to_string());
        let shown = match pane {
            Pane::Tasks => self.visible_tasks().len(),
            Pane::Audit => self.shown_audit().rows.len(),
            Pane::Safety => self.shown_violations().rows.len(),
            Pane::Log => self.log_shown().len(),
            Pane::Output | Pane::Benchmarks | Pane::Prompt => 0,
        };
        if pane == Pane::Tasks {
            // Keep the selection on a row that is shown.
            let visible = self.visible_tasks();
            if !self.selected.is_some_and(|s| visible.contains(&s)) {
                self.selected = visible.last().copied();
                self.output_anchor = None;
            }
        }
        self.flash(
            format!("{}: {shown} shown · /{filter}", pane.name()),
            FlashLevel::Info,
        );
    }

    /// The Log records shown, oldest first: at the chosen level or more severe, through the
    /// Log's filter.
    pub fn log_shown(&self) -> Vec<&LogRecord> {
        let view = &self.log_view;
        let filter = self.filter(Pane::Log).map(|f| {
            let (invert, needle) = match f.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, f),
            };
            (invert, needle.to_lowercase())
        });
        view.records
            .iter()
            .zip(&view.search)
            .filter(|(r, text)| {
                view.level >= r.level
                    && filter
                        .as_ref()
                        .is_none_or(|(invert, needle)| text.contains(needle.as_str()) != *invert)
            })
            .map(|(r, _)| r)
            .collect()
    }

    /// The selected Log record: the newest shown at the live tail.
    pub fn log_selected(&self) -> Option<&LogRecord> {
        let shown = self.log_shown();
        let (_, selected) = log_window(&self.log_view, &shown, 1);
        shown.get(selected).copied()
    }

    /// Moves the Log's selection by `delta` records (up is back in time); reaching the
    /// newest returns to the live tail. The window follows it over `rows` rows.
    pub(super) fn move_log(&mut self, delta: isize, rows: usize) {
        let shown = self.log_shown();
        let Some(last) = shown.len().checked_sub(1) else {
            return;
        };
        let (top, current) = log_window(&self.log_view, &shown, rows);
        let next = current.saturating_add_signed(delta).min(last);
        let (selected, top) = if next == last && delta > 0 {
            (None, 0)
        } else {
            // Paging back from the tail starts from the window the operator was looking at.
            (
                shown.get(next).map(|r| r.seq),
                shown.get(top).map_or(0, |r| r.seq),
            )
        };
        self.log_view.selected = selected;
        self.log_view.top = top;
        if selected.is_some() {
            // Keep the selection inside the window.
            let shown = self.log_shown();
            let (top, _) = log_window(&self.log_view, &shown, rows);
            if let Some(first) = shown.get(top) {
                self.log_view.top = first.seq;
            }
        }
    }

    /// Takes new log records (the loop, before each frame), numbering them; the oldest go
    /// past [`LOG_KEEP`].
    pub fn take_log(&mut self, records: Vec<LogRecord>) {
        let view = &mut self.log_view;
        for mut record in records {
            record.seq = view.next_seq;
            view.next_seq += 1;
            view.search.push_back(record.full_text().to_lowercase());
            view.records.push_back(record);
            if view.records.len() > LOG_KEEP {
                view.records.pop_front();
                view.search.pop_front();
            }
        }
    }

    /// The filter of `pane`, if any.
    pub fn filter(&self, pane: Pane) -> Option<&str> {
        self.filters.get(&pane).map(String::as_str)
    }

    /// Whether the Tasks filter lets `task` through. Without a filter the task's text is not
    /// even made: this runs twice for every event the console folds.
    pub fn shows_task(&self, task: &TaskView) -> bool {
        self.filter(Pane::Tasks)
            .is_none_or(|f| matches_filter(Some(f), &task.filter_text()))
    }

    /// Indices of the tasks the Tasks filter lets through, in order.
    pub fn visible_tasks(&self) -> Vec<usize> {
        (0..self.tasks.len())
            .filter(|&i| self.shows_task(&self.tasks[i]))
            .collect()
    }
}

mod closing;
mod detail;
mod page;

pub use detail::task_detail;
pub use page::DetailPage;

#[cfg(test)]
mod tests;
