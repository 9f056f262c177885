//! How much the console keeps, so that one left running for days (or a `veyra bench --tui` of
//! thousands of tasks) holds a bounded amount: at most [`TASKS_KEEP`] ended tasks, the oldest
//! dropped first (a [`TASKS_SLACK`] of them at a time) and never one still active, and each
//! task's newest
//! [`OUTPUT_KEEP`](crate::tui::output::OUTPUT_KEEP) bytes of output (the buffer drops older
//! lines itself; the Output pane's title says so).

use super::*;

/// Tasks the Tasks pane keeps; past this the oldest ended ones go (a benchmark task's output
/// stays readable in `bench.db`: `veyra bench show RUN`; every execution stays on the audit
/// record).
pub const TASKS_KEEP: usize = 1_000;

/// Tasks dropped at once below [`TASKS_KEEP`] when it is passed. Dropping rebuilds the task
/// list and its index, which a benchmark run submitting thousands of tasks a second would
/// otherwise pay on every submission (it was the largest part of the console's processor time
/// while folding such a run: `benches/console.rs`); now it is paid once every this many
/// submissions, and the list stays between `TASKS_KEEP - TASKS_SLACK` and `TASKS_KEEP`.
pub const TASKS_SLACK: usize = TASKS_KEEP / 16;

impl App {
    /// After an event: drops the oldest ended tasks down to `TASKS_KEEP - TASKS_SLACK` when a
    /// task was `submitted` past [`TASKS_KEEP`], and keeps the Output pane's scroll position on
    /// the same text when the task it showed (`shown`: its id and the lines its buffer had
    /// dropped) dropped more.
    pub(super) fn keep_bounds(&mut self, shown: Option<(ExecutionId, usize)>, submitted: bool) {
        if submitted && self.tasks.len() > TASKS_KEEP {
            self.drop_old_tasks(TASKS_KEEP - TASKS_SLACK);
        }
        let gone = match (shown, self.shown_task()) {
            (Some((id, before)), Some(task)) if task.id == id => {
                task.output.dropped_lines().saturating_sub(before)
            }
            _ => 0,
        };
        if gone > 0
            && let Some(anchor) = self.output_anchor.as_mut()
        {
            if anchor.line < gone {
                // The text the view started at is gone: start at the oldest kept.
                *anchor = Anchor::default();
            } else {
                anchor.line -= gone;
            }
        }
    }

    /// Drops the oldest ended tasks until at most `keep` tasks remain (active ones are never
    /// dropped, so more remain while more are active). The selection stays on its task, or
    /// moves to the next one kept when its task went.
    pub(super) fn drop_old_tasks(&mut self, keep: usize) {
        let mut excess = self.tasks.len().saturating_sub(keep);
        if excess == 0 {
            return;
        }
        let selected = self.selected;
        let mut new_selected = None;
        let mut kept = Vec::with_capacity(self.tasks.len() - excess);
        for (i, task) in std::mem::take(&mut self.tasks).into_iter().enumerate() {
            if excess > 0 && !task.is_active() {
                excess -= 1;
                self.tasks_dropped = self.tasks_dropped.saturating_add(1);
                continue;
            }
            if selected.is_some_and(|s| i >= s) && new_selected.is_none() {
                new_selected = Some(kept.len());
                if selected != Some(i) {
                    // The selected task went: the next one kept is shown from its bottom.
                    self.output_anchor = None;
                }
            }
            kept.push(task);
        }
        self.tasks = kept;
        self.index = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i))
            .collect();
        if selected.is_some() && new_selected.is_none() {
            self.output_anchor = None;
            new_selected = self.tasks.len().checked_sub(1);
        }
        self.selected = new_selected;
    }
}

#[cfg(test)]
mod tests;
