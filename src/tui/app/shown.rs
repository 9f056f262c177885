//! What each list pane shows, decided once: the Tasks pane's selected task (which is also the
//! task the Output pane shows), and the Audit and Safety panes' rows, their selection and
//! window. The renderers draw from these, and `Enter` (open), copy and cancel act on the
//! same item, so what is drawn and what is acted on can never disagree. (The Log pane's
//! window is [`log_window`](super::log_window), read the same way by its renderer and
//! [`App::log_selected`].)
//!
//! The Audit and Safety panes list the newest first and hold their selection by entry number
//! ([`Pick`]): until the operator moves it follows the newest; moved, it stays on its entry
//! and the window stays on its entries while new ones arrive above them.

use super::*;

/// A list's selection, held by entry number (the Audit pane's by sequence number, the Safety
/// pane's by arrival), so that entries arriving, old ones dropped, or a filter changing never
/// move it onto another entry. The lists show the newest first; until the operator moves, the
/// selection follows the newest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pick {
    /// The selected entry's number once the operator moved; `None` follows the newest.
    pub selected: Option<u64>,
    /// The number of the entry on the window's first row once the operator moved.
    pub top: u64,
}

/// A list pane's rows as shown: filtered, newest first, the selected row, and where the
/// operator left the window.
#[derive(Debug)]
pub struct Shown<'a, T> {
    /// The rows the filter lets through, newest first.
    pub rows: Vec<&'a T>,
    /// The selected row's index in `rows` (0 when there are none): the row highlighted, the
    /// one `Enter` opens and copy copies.
    pub selected: usize,
    /// True while the selection follows the newest row.
    pub live: bool,
    /// The index of the row the window started at when the operator last moved.
    top: usize,
    /// Each row's number (what a [`Pick`] holds).
    number: fn(&T) -> u64,
}

impl<'a, T> Shown<'a, T> {
    fn new(rows: Vec<&'a T>, pick: Pick, number: fn(&T) -> u64) -> Self {
        // The row numbered `n`, or the nearest older one shown (the oldest when none is).
        let at = |n: u64| {
            rows.partition_point(|r| number(r) > n)
                .min(rows.len().saturating_sub(1))
        };
        let (selected, top) = match pick.selected {
            None => (0, 0),
            Some(n) => (at(n), at(pick.top)),
        };
        Shown {
            selected,
            top,
            live: pick.selected.is_none(),
            rows,
            number,
        }
    }

    /// The selected row: what `Enter` opens and copy copies.
    pub fn selected(&self) -> Option<&'a T> {
        self.rows.get(self.selected).copied()
    }

    /// The first row drawn in `room` rows, where a row takes `height` rows: where the operator
    /// left the window, moved only as far as it must to show the selection whole, and back
    /// towards the newest while rows below it would leave the room part empty.
    pub fn start(&self, room: usize, height: impl Fn(&T) -> usize) -> usize {
        window_start(&self.rows, self.top, self.selected, room, height)
    }

    /// The selection moved by `delta` rows (down is older; a large delta goes to an end), with
    /// the window over `room` rows kept around it. Back on the newest row, it follows the
    /// newest again.
    pub fn moved(&self, delta: isize, room: usize, height: impl Fn(&T) -> usize) -> Pick {
        let Some(last) = self.rows.len().checked_sub(1) else {
            return Pick::default();
        };
        let next = self.selected.saturating_add_signed(delta).min(last);
        if next == 0 && (delta < 0 || self.live) {
            return Pick::default();
        }
        let top = if self.live { 0 } else { self.top };
        let start = window_start(&self.rows, top, next, room, height);
        Pick {
            selected: Some((self.number)(self.rows[next])),
            top: (self.number)(self.rows[start]),
        }
    }
}

/// [`Shown::start`] for a window left at `top` with row `selected` selected.
fn window_start<T>(
    rows: &[&T],
    top: usize,
    selected: usize,
    room: usize,
    height: impl Fn(&T) -> usize,
) -> usize {
    if rows.is_empty() {
        return 0;
    }
    let selected = selected.min(rows.len() - 1);
    let h = |i: usize| height(rows[i]).max(1);
    let mut start = top.min(selected);
    // The selection whole in the window: move on until it fits (alone, it always starts one).
    let mut used: usize = (start..=selected).map(h).sum();
    while start < selected && used > room {
        used -= h(start);
        start += 1;
    }
    // No empty rows under the oldest while newer rows wait above the window.
    let mut below: usize = (start..rows.len()).map(h).sum();
    while start > 0 && below + h(start - 1) <= room {
        start -= 1;
        below += h(start);
    }
    start
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

    /// The Audit pane's entries as shown: through its filter, by sequence number, newest
    /// first, with the selection.
    pub fn shown_audit(&self) -> Shown<'_, AuditLine> {
        let filter = self.filter(Pane::Audit);
        let rows = self
            .audit
            .recent
            .iter()
            .rev()
            .filter(|e| matches_filter(filter, &e.filter_text()))
            .collect();
        Shown::new(rows, self.audit_pick, |e| e.seq)
    }

    /// The Safety pane's violations as shown: through its filter, newest first (in the order
    /// they arrived), with the selection.
    pub fn shown_violations(&self) -> Shown<'_, ViolationLine> {
        let filter = self.filter(Pane::Safety);
        let rows = self
            .violations
            .iter()
            .rev()
            .filter(|v| matches_filter(filter, &v.filter_text()))
            .collect();
        Shown::new(rows, self.safety_pick, |v| v.seq)
    }

    /// Rows the Audit pane gives its entries inside `height` rows: all but the lines above
    /// them (the head, the newest checkpoint when the store signs them, the verification),
    /// as the pane draws them.
    pub fn audit_rows(&self, height: usize) -> usize {
        let above = 2 + usize::from(self.audit.signs_checkpoints);
        height.saturating_sub(above)
    }
}

#[cfg(test)]
mod tests;
