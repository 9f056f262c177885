//! How keys move what the focused pane shows: the selection in Tasks, the Output's anchor,
//! the Audit and Safety selections, the Log's pages. Never a pane out of sight.

use super::*;

impl App {
    /// Rows a page moves in the focused pane.
    pub(super) fn page(&self) -> usize {
        match self.focus {
            Pane::Output => self.output_size.1.max(1) as usize,
            // The pane's height as drawn (a whole tab on a small screen).
            Pane::Audit | Pane::Safety | Pane::Log => self.pane_rows.max(1) as usize,
            Pane::Tasks | Pane::Prompt => self.tasks_rows.max(1) as usize,
            // Every family fits on the pane (zoom when it does not): nothing to page.
            Pane::Benchmarks => 1,
        }
    }

    /// Moves what the focused pane shows by `delta` rows (a large delta: to an end).
    pub(super) fn move_by(&mut self, delta: isize) {
        // Keys move what the focused pane shows, never a pane out of sight.
        match self.focus {
            Pane::Output => self.scroll_output(delta),
            // The selection, within the rows the filter shows (newest first: down is older);
            // the window follows it as the pane draws it.
            Pane::Audit => {
                let rows = self.audit_rows(usize::from(self.pane_rows));
                self.audit_pick = self.shown_audit().moved(delta, rows, |_| 1);
            }
            Pane::Safety => {
                let width = usize::from(self.pane_width);
                self.safety_pick =
                    self.shown_violations()
                        .moved(delta, usize::from(self.pane_rows), |v| v.rows(width));
            }
            // Oldest at the top: up goes back in time, down towards the live tail.
            Pane::Log => self.move_log(delta, usize::from(self.pane_rows)),
            // Nothing on the Benchmarks pane scrolls; Enter opens the misses, which do.
            Pane::Benchmarks => {}
            Pane::Tasks | Pane::Prompt => {
                // Within the rows the filter shows.
                let visible = self.visible_tasks();
                let Some(&last) = visible.last() else {
                    return;
                };
                let current = self
                    .shown_task_index()
                    .and_then(|s| visible.iter().position(|&i| i == s))
                    .unwrap_or(visible.len() - 1);
                let at = current.saturating_add_signed(delta).min(visible.len() - 1);
                let next = visible[at];
                if Some(next) != self.selected {
                    self.output_anchor = None;
                }
                self.selected = Some(next);
                self.follow = next == last && self.follow;
            }
        }
    }

    fn scroll_output(&mut self, delta: isize) {
        let (width, height) = (self.output_size.0 as usize, self.output_size.1 as usize);
        let Some(task) = self.shown_task() else {
            return;
        };
        // The text as the pane shows it: with the line that says how the task ended.
        let text = task.shown_text();
        let bottom = output::bottom_anchor(&text, width, height);
        let from = self.output_anchor.unwrap_or(bottom);
        let next = output::scroll(&text, from, delta, width);
        // Reaching the bottom again returns to the live tail.
        let at_bottom = (next.line, next.row) >= (bottom.line, bottom.row);
        self.output_anchor = if at_bottom { None } else { Some(next) };
        if !at_bottom {
            self.follow = false;
        }
    }
}
