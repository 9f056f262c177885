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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::text::Line;
    use ratatui::widgets::{Block, Borders, Clear, Paragraph};

    /// What a frame shows: a list beside a pane of text that follows its end.
    #[derive(Debug, Clone)]
    struct Scene {
        lines: Vec<String>,
        /// Lines scrolled back from the end.
        back: usize,
        tick: u32,
        popup: bool,
    }

    fn draw(frame: &mut ratatui::Frame, scene: &Scene, text: Rect) {
        let area = frame.area();
        let list = Rect::new(0, 0, text.x.saturating_sub(1), area.height);
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(format!("tick {}", scene.tick)),
                Line::from("static"),
            ])
            .block(Block::default().borders(Borders::ALL).title("Tasks")),
            list,
        );
        let end = scene.lines.len().saturating_sub(scene.back);
        let shown = &scene.lines[end.saturating_sub(usize::from(text.height))..end];
        frame.render_widget(
            Paragraph::new(
                shown
                    .iter()
                    .map(|l| Line::from(l.as_str()))
                    .collect::<Vec<_>>(),
            ),
            text,
        );
        if scene.popup {
            let popup = Rect::new(text.x + 2, text.y + 1, 12, 3);
            frame.render_widget(Clear, popup);
            frame.render_widget(
                Paragraph::new("popup").block(Block::default().borders(Borders::ALL)),
                popup,
            );
        }
    }

    /// A terminal as far as these tests need one: cells land as on a real terminal, where a
    /// wide character covers the next column (blanking what was there) and writing into
    /// either half of a wide character erases all of it. ratatui's `TestBackend` just stores
    /// each cell it is sent, so a hidden old cell would show again later.
    #[derive(Debug)]
    struct Term(TestBackend);

    impl Term {
        fn new(width: u16, height: u16) -> Self {
            Term(TestBackend::new(width, height))
        }

        fn land(&mut self, x: u16, y: u16, cell: &Cell) {
            let mut buffer = self.0.buffer().clone();
            // Writing over the right half of a wide character erases its left half.
            if x > 0 && buffer[(x - 1, y)].cell_width() > 1 {
                buffer[(x - 1, y)] = Cell::EMPTY;
            }
            // Writing over the left half of one erases its right half.
            if buffer[(x, y)].cell_width() > 1 && x + 1 < buffer.area.width {
                buffer[(x + 1, y)] = Cell::EMPTY;
            }
            put(&mut buffer, x, y, cell);
            let width = cell.cell_width().max(1);
            let cells: Vec<(u16, u16, Cell)> = (x.saturating_sub(1)..x + width + 1)
                .filter_map(|cx| buffer.cell((cx, y)).map(|c| (cx, y, c.clone())))
                .collect();
            self.0
                .draw(cells.iter().map(|(x, y, c)| (*x, *y, c)))
                .unwrap();
        }
    }

    impl Backend for Term {
        type Error = <TestBackend as Backend>::Error;
        fn draw<'a, I: Iterator<Item = (u16, u16, &'a Cell)>>(
            &mut self,
            content: I,
        ) -> Result<(), Self::Error> {
            for (x, y, cell) in content {
                self.land(x, y, cell);
            }
            Ok(())
        }
        fn hide_cursor(&mut self) -> Result<(), Self::Error> {
            self.0.hide_cursor()
        }
        fn show_cursor(&mut self) -> Result<(), Self::Error> {
            self.0.show_cursor()
        }
        fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
            self.0.get_cursor_position()
        }
        fn set_cursor_position<P: Into<Position>>(&mut self, p: P) -> Result<(), Self::Error> {
            self.0.set_cursor_position(p)
        }
        fn clear(&mut self) -> Result<(), Self::Error> {
            self.0.clear()
        }
        fn clear_region(&mut self, t: ClearType) -> Result<(), Self::Error> {
            self.0.clear_region(t)
        }
        fn size(&self) -> Result<Size, Self::Error> {
            self.0.size()
        }
        fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
            self.0.window_size()
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            self.0.flush()
        }
        fn scroll_region_up(&mut self, r: Range<u16>, n: u16) -> Result<(), Self::Error> {
            self.0.scroll_region_up(r, n)
        }
        fn scroll_region_down(&mut self, r: Range<u16>, n: u16) -> Result<(), Self::Error> {
            self.0.scroll_region_down(r, n)
        }
    }

    /// What a terminal shows of `buffer`, row by row: each character with its colours; the
    /// columns a wide character covers are not cells of their own.
    fn visible(buffer: &Buffer) -> Vec<String> {
        let area = buffer.area;
        (area.top()..area.bottom())
            .map(|y| {
                let mut row = String::new();
                let mut x = area.left();
                while x < area.right() {
                    let cell = &buffer[(x, y)];
                    row.push_str(&format!("{}{:?}{:?}|", cell.symbol(), cell.fg, cell.bg));
                    x += cell.cell_width().max(1);
                }
                row
            })
            .collect()
    }

    #[derive(Debug, Clone)]
    enum Step {
        Append(u8),
        Back(u8),
        Forward(u8),
        Popup,
        Tick,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (1u8..4).prop_map(Step::Append),
            1 => (1u8..6).prop_map(Step::Back),
            1 => (1u8..6).prop_map(Step::Forward),
            1 => Just(Step::Popup),
            1 => Just(Step::Tick),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever scrolls, the terminal (a test backend) shows what ratatui drew.
        #[test]
        fn the_screen_always_shows_what_ratatui_drew(steps in proptest::collection::vec(step(), 1..40)) {
            let (width, height) = (40, 12);
            let text = Rect::new(15, 1, 24, 10);
            let mut scrolling =
                Terminal::new(ScrollingBackend::new(Term::new(width, height)).unwrap()).unwrap();
            let mut scene = Scene { lines: Vec::new(), back: 0, tick: 0, popup: false };
            for (i, step) in steps.into_iter().enumerate() {
                match step {
                    Step::Append(n) => {
                        for _ in 0..n {
                            let k = scene.lines.len();
                            // Wide characters now and then: the cells they cover must
                            // never come back.
                            let wide = match k % 4 {
                                0 => "コン",
                                1 => "✅",
                                _ => "",
                            };
                            scene.lines.push(format!("line {k} {wide}{}", "x".repeat(k % 7)));
                        }
                    }
                    Step::Back(n) => {
                        scene.back = (scene.back + usize::from(n)).min(scene.lines.len());
                    }
                    Step::Forward(n) => scene.back = scene.back.saturating_sub(usize::from(n)),
                    Step::Popup => scene.popup = !scene.popup,
                    Step::Tick => scene.tick += 1,
                }
                scrolling.backend_mut().hint(Some(text));
                let drawn = visible(scrolling.draw(|f| draw(f, &scene, text)).unwrap().buffer);
                prop_assert_eq!(
                    drawn,
                    visible(scrolling.backend().inner().0.buffer()),
                    "after step {}", i
                );
            }
        }
    }

    /// A line streamed in at the end of a full pane costs one row, not the pane.
    #[test]
    fn a_line_scrolled_in_writes_about_one_row() {
        let (width, height) = (60, 22);
        let text = Rect::new(20, 1, 39, 20);
        let mut terminal =
            Terminal::new(ScrollingBackend::new(TestBackend::new(width, height)).unwrap()).unwrap();
        terminal.backend_mut().hint(Some(text));
        let mut scene = Scene {
            lines: (0..30)
                .map(|k| format!("a full line of text, number {k}"))
                .collect(),
            back: 0,
            tick: 0,
            popup: false,
        };
        terminal.draw(|f| draw(f, &scene, text)).unwrap();
        let (before, scrolls) = terminal.backend().counts();
        assert_eq!(scrolls, 0, "the first frame has nothing to move");
        scene.lines.push("the next line".into());
        terminal.draw(|f| draw(f, &scene, text)).unwrap();
        let (after, scrolls) = terminal.backend().counts();
        assert_eq!(scrolls, 1, "the pane's rows were scrolled");
        // The new line, plus what the neighbour on the same rows needs put back: its two
        // lines of text, and its borders on the row that came in blank.
        let written = after - before;
        let most = "the next line".len() + "tick 0".len() + "static".len() + 2 + 2 * GAP as usize;
        assert!(
            written <= most as u64,
            "{written} cells written for a 13-character line (at most {most})"
        );
        // Scrolling back up moves the rows the other way.
        scene.back = 1;
        terminal.draw(|f| draw(f, &scene, text)).unwrap();
        assert_eq!(terminal.backend().counts().1, 2);
    }

    /// Rows that share the region with another pane come back after the scroll; when that
    /// costs more than rewriting, nothing scrolls.
    #[test]
    fn a_scroll_that_costs_more_than_it_saves_is_not_taken() {
        let (width, height) = (60, 12);
        let text = Rect::new(50, 1, 10, 10);
        let mut terminal =
            Terminal::new(ScrollingBackend::new(TestBackend::new(width, height)).unwrap()).unwrap();
        terminal.backend_mut().hint(Some(text));
        let busy = |frame: &mut ratatui::Frame, n: usize| {
            let rows: Vec<Line> = (0..12)
                .map(|r| Line::from(format!("{r:>2} a wide and busy neighbour of the text pane")))
                .collect();
            frame.render_widget(Paragraph::new(rows), Rect::new(0, 0, 49, 12));
            let lines: Vec<Line> = (n..n + 10).map(|k| Line::from(format!("{k}"))).collect();
            frame.render_widget(Paragraph::new(lines), text);
        };
        terminal.draw(|f| busy(f, 0)).unwrap();
        terminal.draw(|f| busy(f, 1)).unwrap();
        assert_eq!(terminal.backend().counts().1, 0);
    }

    /// Words with a space between are one run of text, not a cursor move per word; a gap
    /// beside a wide character is never written over.
    #[test]
    fn short_gaps_are_written_through_and_wide_characters_are_left_whole() {
        let mut backend = ScrollingBackend::new(TestBackend::new(20, 2)).unwrap();
        let a = Cell::new("a");
        let b = Cell::new("b");
        backend.screen[(1, 0)] = Cell::new(" ");
        backend.draw([(0, 0, &a), (2, 0, &b)].into_iter()).unwrap();
        assert_eq!(backend.counts().0, 3, "a, the space between, b");
        let wide = Cell::new("コ");
        backend.screen[(10, 1)] = wide.clone();
        backend.draw([(9, 1, &a), (12, 1, &b)].into_iter()).unwrap();
        assert_eq!(
            backend.counts().0,
            5,
            "the wide character between is not rewritten"
        );
    }

    #[test]
    fn a_clear_forgets_the_screen_and_takes_the_new_size() {
        let mut backend = ScrollingBackend::new(TestBackend::new(10, 4)).unwrap();
        let cell = Cell::new("x");
        backend.draw([(1, 1, &cell)].into_iter()).unwrap();
        backend.inner.resize(12, 5);
        backend.clear().unwrap();
        assert_eq!(backend.screen, Buffer::empty(Rect::new(0, 0, 12, 5)));
    }
}
