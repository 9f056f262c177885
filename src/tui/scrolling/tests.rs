//! Tests of the scrolling backend over a recording terminal: whatever rows it moves, the screen
//! shows what ratatui drew (a property), and a scroll is taken only where it saves writes.

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
