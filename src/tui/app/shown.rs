//! What each list pane shows, decided once: the Tasks pane's selected task (which is also the
//! task the Output pane shows), and the Audit and Safety panes' rows from where the operator
//! scrolled. The renderers draw from these, and `Enter` (open), copy and cancel act on the
//! same item, so what is drawn and what is acted on can never disagree. (The Log pane's
//! window is [`log_window`](super::log_window), read the same way by its renderer and
//! [`App::log_selected`].)

use super::*;

/// A list pane's rows as shown: filtered, newest first, and where the shown window starts.
#[derive(Debug)]
pub struct Shown<'a, T> {
    /// The rows the filter lets through, newest first.
    pub rows: Vec<&'a T>,
    /// How many of the newest are scrolled past (always a row's index, or 0 when there are
    /// none): the first row drawn, and the one `Enter` and copy act on.
    pub skip: usize,
}

impl<'a, T> Shown<'a, T> {
    fn new(rows: Vec<&'a T>, scroll: usize) -> Self {
        let skip = scroll.min(rows.len().saturating_sub(1));
        Shown { rows, skip }
    }

    /// The row at the top of the window: what `Enter` opens and copy copies.
    pub fn selected(&self) -> Option<&'a T> {
        self.rows.get(self.skip).copied()
    }

    /// The rows from the top of the window on.
    pub fn window(&self) -> impl Iterator<Item = &'a T> + '_ {
        self.rows.iter().skip(self.skip).copied()
    }
}

impl App {
    /// The index of the task the Tasks pane highlights and the Output pane shows: the
    /// selected one if the Tasks filter shows it, else the newest it shows.
    pub fn shown_task_index(&self) -> Option<usize> {
        self.selected
            .filter(|&i| self.tasks.get(i).is_some_and(|t| self.shows_task(t)))
            .or_else(|| self.tasks.iter().rposition(|t| self.shows_task(t)))
    }

    /// The task the Tasks pane highlights, the Output pane shows, and `Enter`, copy and
    /// cancel act on ([`App::shown_task_index`]).
    pub fn shown_task(&self) -> Option<&TaskView> {
        self.shown_task_index().and_then(|i| self.tasks.get(i))
    }

    /// The Audit pane's entries as shown: through its filter, newest first, from where it is
    /// scrolled.
    pub fn shown_audit(&self) -> Shown<'_, AuditLine> {
        let filter = self.filter(Pane::Audit);
        let rows = self
            .audit
            .recent
            .iter()
            .rev()
            .filter(|e| matches_filter(filter, &e.filter_text()))
            .collect();
        Shown::new(rows, self.audit_scroll)
    }

    /// The Safety pane's violations as shown: through its filter, newest first, from where it
    /// is scrolled.
    pub fn shown_violations(&self) -> Shown<'_, ViolationLine> {
        let filter = self.filter(Pane::Safety);
        let rows = self
            .violations
            .iter()
            .rev()
            .filter(|v| matches_filter(filter, &v.filter_text()))
            .collect();
        Shown::new(rows, self.safety_scroll)
    }
}
