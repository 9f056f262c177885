//! A backend that lets the terminal move rows instead of rewriting them.
//!
//! When streamed text scrolls the Output pane one line, every row of the pane changes, and
//! ratatui's diff rewrites all of them: over SSH that was some forty bytes per streamed
//! character. A terminal can move rows itself (a scroll region: DECSTBM, then SU or SD), but a
//! region spans the screen's whole width, and ratatui's buffers know nothing of it.
//!
//! [`ScrollingBackend`] wraps the real backend and keeps its own copy of what the terminal
//! shows. Told which area may scroll ([`ScrollingBackend::hint`]), it looks at each frame's
//! changes for that area's rows moved up or down; when scrolling those rows (full width) and
//! then writing whatever still differs costs fewer bytes than writing the changes as they
//! are, it does that. Either way the terminal ends up showing exactly ratatui's buffer: the
//! writes after a scroll are the diff between the scrolled copy and that buffer, so the other
//! panes on the same rows are put back too. The hint only decides what is tried, never what
//! the screen shows.

use std::ops::Range;

use ratatui::backend::{Backend, ClearType, WindowSize};
use ratatui::buffer::{Buffer, Cell, CellDiffOption, CellWidth};
use ratatui::layout::{Position, Rect, Size};

/// Bytes a scroll costs on the wire: set the region, scroll, reset the region
/// (`ESC[12;40r ESC[1S ESC[r`).
const SCROLL_COST: usize = 16;

/// Bytes a cursor move costs before a run of changed cells (`ESC[12;40H`).
const MOVE_COST: usize = 8;

/// Unchanged cells written rather than moved over (a move costs about this many bytes).
const GAP: u16 = 6;

/// Shifts looked at in each direction, nearest first.
const CANDIDATES: usize = 3;

/// The real backend, plus a copy of the screen so whole rows can be moved by the terminal.
#[derive(Debug)]
pub struct ScrollingBackend<B> {
    inner: B,
    /// What the terminal shows (equal to ratatui's previous buffer between frames).
    screen: Buffer,
    /// The area whose rows may scroll in the next frames.
    hint: Option<Rect>,
    /// Cells written to the terminal so far.
    cells_written: u64,
    /// Scrolls the terminal was asked for so far.
    scrolls: u64,
    /// Whether the cursor shows, when known (ratatui says so again every frame).
    cursor_shown: Option<bool>,
    /// Where the cursor is, when known (anything written moves it).
    cursor_at: Option<Position>,
    /// False once something reached the terminal that the copy cannot follow (a frame larger
    /// than the copy, lines appended, a partial clear): from then on every frame's changes go
    /// as they are, as a plain backend sends them, until a full clear starts a new copy.
    trusted: bool,
}

impl<B: Backend> ScrollingBackend<B> {
    /// Wraps `inner`, whose screen is blank (a fresh alternate screen, as ratatui assumes).
    pub fn new(inner: B) -> Result<Self, B::Error> {
        let size = inner.size()?;
        Ok(ScrollingBackend {
            inner,
            screen: Buffer::empty(Rect::new(0, 0, size.width, size.height)),
            hint: None,
            cells_written: 0,
            scrolls: 0,
            cursor_shown: None,
            cursor_at: None,
            trusted: true,
        })
    }

    /// Names the area whose rows may move in the next frames (the Output pane's text), or none.
    pub fn hint(&mut self, area: Option<Rect>) {
        self.hint = area.filter(|a| a.height >= 2 && a.width > 0);
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The wrapped backend, to write what ratatui does not (an OSC 52 copy). It must not
    /// change what the screen shows.
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// Cells written and scrolls asked for so far (for tests and diagnostics).
    pub fn counts(&self) -> (u64, u64) {
        (self.cells_written, self.scrolls)
    }

    /// Writes `cells` (in row order; the copy already shows them). A short run of unchanged
    /// cells between two changed ones on a row is written too when that is cheaper than the
    /// cursor move over it (streamed words are changes with a space between). Nothing at all
    /// is written for no changes: the backend would still reset the colours.
    fn write(&mut self, cells: Vec<(u16, u16, Cell)>) -> Result<(), B::Error> {
        if cells.is_empty() {
            return Ok(());
        }
        if !self.trusted {
            return self.send(cells);
        }
        let mut out: Vec<(u16, u16, Cell)> = Vec::with_capacity(cells.len());
        for (x, y, cell) in cells {
            if let Some((px, py, prev)) = out.last()
                && *py == y
                && x > px + 1
                && x - px - 1 <= GAP
                && plain(prev)
            {
                let (px, style) = (*px, prev.style());
                let gap = px + 1..x;
                let plain = gap.clone().all(|gx| {
                    self.screen
                        .cell((gx, y))
                        .is_some_and(|c| plain(c) && c.style() == style)
                });
                if plain {
                    out.extend(gap.map(|gx| (gx, y, self.screen[(gx, y)].clone())));
                }
            }
            out.push((x, y, cell));
        }
        self.send(out)
    }

    fn send(&mut self, cells: Vec<(u16, u16, Cell)>) -> Result<(), B::Error> {
        self.cells_written += cells.len() as u64;
        self.cursor_at = None;
        self.inner
            .draw(cells.iter().map(|(x, y, cell)| (*x, *y, cell)))
    }
}

/// A cell that takes one column and is compared like any other: one that may be written
/// again in a gap, or be the cell a gap follows.
fn plain(cell: &Cell) -> bool {
    cell.diff_option == CellDiffOption::None && cell.cell_width() == 1
}

/// Puts `cell` at (`x`, `y`) of `buffer` as the terminal shows it: a wide character covers the
/// columns after it, which ratatui blanks in its buffer but never sends, so the copy blanks
/// them too (else an old character there could be written again later).
fn put(buffer: &mut Buffer, x: u16, y: u16, cell: &Cell) {
    let width = cell.cell_width();
    if let Some(c) = buffer.cell_mut((x, y)) {
        *c = cell.clone();
    }
    for dx in 1..width {
        if let Some(c) = buffer.cell_mut((x.saturating_add(dx), y)) {
            *c = Cell::EMPTY;
        }
    }
}

impl<B: Backend> Backend for ScrollingBackend<B> {
    type Error = B::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let updates: Vec<(u16, u16, Cell)> =
            content.map(|(x, y, cell)| (x, y, cell.clone())).collect();
        let area = self.screen.area;
        let inside = |x: u16, y: u16| area.contains(Position::new(x, y));
        // Only a frame that changes the hinted rows, and is the size the copy is, is looked
        // at; the others' changes go as they are, and the copy follows them.
        if !updates.iter().all(|&(x, y, _)| inside(x, y)) {
            // ratatui's frame is larger than the copy (the terminal grew between the two
            // size reads): the copy can no longer be followed.
            self.trusted = false;
        }
        if !self.trusted {
            return self.send(updates);
        }
        let hinted = self
            .hint
            .map(|h| h.intersection(area))
            .filter(|h| h.height >= 2 && h.width > 0)
            .filter(|h| {
                updates
                    .iter()
                    .any(|&(_, y, _)| (h.top()..h.bottom()).contains(&y))
            });
        let Some(hinted) = hinted else {
            for (x, y, cell) in &updates {
                put(&mut self.screen, *x, *y, cell);
            }
            return self.write(updates);
        };
        let mut target = self.screen.clone();
        for (x, y, cell) in &updates {
            put(&mut target, *x, *y, cell);
        }
        match best_shift(&self.screen, &target, hinted) {
            Some(shift) => {
                let region = hinted.top()..hinted.bottom();
                match shift {
                    Shift::Up(k) => self.inner.scroll_region_up(region.clone(), k)?,
                    Shift::Down(k) => self.inner.scroll_region_down(region.clone(), k)?,
                }
                self.scrolls += 1;
                // Setting a scroll region sends the cursor home.
                self.cursor_at = None;
                shift_rows(&mut self.screen, region, shift);
                let rest: Vec<(u16, u16, Cell)> = self
                    .screen
                    .diff(&target)
                    .into_iter()
                    .map(|(x, y, cell)| (x, y, cell.clone()))
                    .collect();
                self.screen = target;
                self.write(rest)
            }
            None => {
                self.screen = target;
                self.write(updates)
            }
        }
    }

    fn append_lines(&mut self, n: u16) -> Result<(), Self::Error> {
        // Only inline viewports append lines; the copy cannot follow them.
        self.trusted = false;
        self.cursor_at = None;
        self.inner.append_lines(n)
    }

    // ratatui shows (or hides) and places the cursor after every frame; over SSH each of
    // those is bytes, so only changes are passed on.
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        if self.cursor_shown != Some(false) {
            self.inner.hide_cursor()?;
            self.cursor_shown = Some(false);
        }
        Ok(())
    }

    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        if self.cursor_shown != Some(true) {
            self.inner.show_cursor()?;
            self.cursor_shown = Some(true);
        }
        Ok(())
    }

    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        let position = position.into();
        if self.cursor_at != Some(position) {
            self.inner.set_cursor_position(position)?;
            self.cursor_at = Some(position);
        }
        Ok(())
    }

    fn clear(&mut self) -> Result<(), Self::Error> {
        self.clear_region(ClearType::All)
    }

    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)?;
        self.cursor_at = None;
        if clear_type == ClearType::All {
            // ratatui clears on a resize: the copy takes the new size, blank.
            let size = self.inner.size()?;
            self.screen = Buffer::empty(Rect::new(0, 0, size.width, size.height));
            self.trusted = true;
        } else {
            // Part of the screen went blank, from a cursor position the copy does not know.
            self.trusted = false;
        }
        Ok(())
    }

    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }

    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }

    fn scroll_region_up(&mut self, region: Range<u16>, amount: u16) -> Result<(), Self::Error> {
        self.inner.scroll_region_up(region.clone(), amount)?;
        self.cursor_at = None;
        shift_rows(&mut self.screen, region, Shift::Up(amount));
        Ok(())
    }

    fn scroll_region_down(&mut self, region: Range<u16>, amount: u16) -> Result<(), Self::Error> {
        self.inner.scroll_region_down(region.clone(), amount)?;
        self.cursor_at = None;
        shift_rows(&mut self.screen, region, Shift::Down(amount));
        Ok(())
    }
}

/// A move of a region's rows by the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Shift {
    /// Rows move up by this many; blank rows come in at the bottom.
    Up(u16),
    /// Rows move down by this many; blank rows come in at the top.
    Down(u16),
}

impl Shift {
    /// The row of `rows` whose content lands on row `y`, if one does (none: a blank row).
    fn source(self, y: u16, rows: &Range<u16>) -> Option<u16> {
        match self {
            Shift::Up(k) => y.checked_add(k),
            Shift::Down(k) => y.checked_sub(k),
        }
        .filter(|s| rows.contains(s))
    }
}

/// The shift of `hinted`'s rows that makes `screen` cheapest to turn into `target`, if any
/// beats writing the changes as they are.
fn best_shift(screen: &Buffer, target: &Buffer, hinted: Rect) -> Option<Shift> {
    let (top, bottom) = (hinted.top(), hinted.bottom());
    let columns = hinted.left()..hinted.right();
    let same = |a: &Buffer, ay: u16, b: &Buffer, by: u16| {
        columns.clone().all(|x| a[(x, ay)] == b[(x, by)])
    };
    let blank = |b: &Buffer, y: u16| columns.clone().all(|x| b[(x, y)] == Cell::EMPTY);
    let mut shifts = Vec::with_capacity(2 * CANDIDATES);
    // Up by k: the area's new first row was row top + k. A blank row matches too much to
    // say anything.
    if !blank(target, top) {
        shifts.extend(
            (1..bottom - top)
                .filter(|&k| same(target, top, screen, top + k))
                .take(CANDIDATES)
                .map(Shift::Up),
        );
    }
    // Down by k: the area's new last row was row bottom - 1 - k.
    let last = bottom - 1;
    if !blank(target, last) {
        shifts.extend(
            (1..bottom - top)
                .filter(|&k| same(target, last, screen, last - k))
                .take(CANDIDATES)
                .map(Shift::Down),
        );
    }
    let region = top..bottom;
    let as_is = cost(screen, target, region.clone(), None);
    shifts
        .into_iter()
        .map(|shift| {
            let c = cost(screen, target, region.clone(), Some(shift));
            (c + SCROLL_COST, shift)
        })
        .filter(|&(c, _)| c < as_is)
        .min()
        .map(|(_, shift)| shift)
}

/// Bytes (roughly) needed to turn `screen`, with `rows` shifted by `shift`, into `target` on
/// those rows: each changed cell's text, and a cursor move before each run.
fn cost(screen: &Buffer, target: &Buffer, rows: Range<u16>, shift: Option<Shift>) -> usize {
    let mut total = 0;
    for y in rows.clone() {
        let source = match shift {
            Some(shift) => shift.source(y, &rows),
            None => Some(y),
        };
        let mut run = false;
        for x in target.area.left()..target.area.right() {
            let old = source.map_or(&Cell::EMPTY, |s| &screen[(x, s)]);
            let new = &target[(x, y)];
            if old == new {
                run = false;
            } else {
                total += new.symbol().len() + if run { 0 } else { MOVE_COST };
                run = true;
            }
        }
    }
    total
}

/// Moves `rows` of `buffer` by `shift`, blank rows coming in, as the terminal does with a
/// scroll region.
fn shift_rows(buffer: &mut Buffer, rows: Range<u16>, shift: Shift) {
    let area = buffer.area;
    let rows = rows.start.min(area.bottom())..rows.end.min(area.bottom());
    let width = usize::from(area.width);
    let start = width * usize::from(rows.start - area.top());
    let end = width * usize::from(rows.end - area.top());
    let cells = &mut buffer.content[start..end];
    let by = |k: u16| (width * usize::from(k)).min(cells.len());
    match shift {
        Shift::Up(k) => {
            let by = by(k);
            cells.rotate_left(by);
            let len = cells.len();
            cells[len - by..].fill(Cell::EMPTY);
        }
        Shift::Down(k) => {
            let by = by(k);
            cells.rotate_right(by);
            cells[..by].fill(Cell::EMPTY);
        }
    }
}

#[cfg(test)]
mod tests;
