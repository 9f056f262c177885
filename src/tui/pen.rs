//! The console's crossterm backend: ratatui's, except that the terminal's pen (colours and
//! attributes) is remembered from one frame to the next.
//!
//! ratatui's `CrosstermBackend` assumes the default pen at the start of every frame and
//! resets it at the end: twenty bytes (`ESC[39m ESC[49m ESC[59m ESC[0m`) a frame, however
//! little it drew. At a model's real pace (thirty tokens a second, a frame every 100 ms) a frame
//! carries a dozen characters, so those resets alone were a byte and a half per character over
//! SSH. [`PenBackend`] knows what the pen is after each frame and sets only what changes; it
//! puts the default pen back wherever the terminal would use it on blank cells (before a
//! clear, a scroll or new lines: they fill with the current background) and when it is
//! dropped, so the shell never inherits a colour.

use std::io::{self, Write};

use crossterm::cursor::MoveTo;
use crossterm::queue;
use crossterm::style::{
    Attribute, Color as CtColor, Colors, Print, SetAttribute, SetColors, SetUnderlineColor,
};
use ratatui::backend::{Backend, ClearType, CrosstermBackend, IntoCrossterm, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::style::{Color, Modifier};

/// Colours and attributes the terminal draws with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pen {
    fg: Color,
    bg: Color,
    underline: Color,
    modifier: Modifier,
}

impl Pen {
    /// The terminal's own pen, as `ESC[0m` leaves it.
    const DEFAULT: Pen = Pen {
        fg: Color::Reset,
        bg: Color::Reset,
        underline: Color::Reset,
        modifier: Modifier::empty(),
    };
}

/// A crossterm backend that remembers the pen between frames (module docs).
#[derive(Debug)]
pub struct PenBackend<W: Write> {
    inner: CrosstermBackend<W>,
    /// The pen now; `None` until the first frame (what the terminal had is unknown).
    pen: Option<Pen>,
}

impl<W: Write> PenBackend<W> {
    /// Draws on `writer`.
    pub fn new(writer: W) -> Self {
        PenBackend {
            inner: CrosstermBackend::new(writer),
            pen: None,
        }
    }

    /// Puts the default pen back (unless it is known to be there already).
    fn reset_pen(&mut self) -> io::Result<()> {
        if self.pen != Some(Pen::DEFAULT) {
            queue!(self.inner, SetAttribute(Attribute::Reset))?;
            self.pen = Some(Pen::DEFAULT);
        }
        Ok(())
    }
}

/// Sets the attributes of `to` on a pen that has exactly those of `from`, or none when a
/// reset comes first.
fn add_attributes<W: Write>(w: &mut W, from: Modifier, to: Modifier) -> io::Result<()> {
    let added = to - from;
    for (modifier, attribute) in [
        (Modifier::BOLD, Attribute::Bold),
        (Modifier::DIM, Attribute::Dim),
        (Modifier::ITALIC, Attribute::Italic),
        (Modifier::UNDERLINED, Attribute::Underlined),
        (Modifier::SLOW_BLINK, Attribute::SlowBlink),
        (Modifier::RAPID_BLINK, Attribute::RapidBlink),
        (Modifier::REVERSED, Attribute::Reverse),
        (Modifier::HIDDEN, Attribute::Hidden),
        (Modifier::CROSSED_OUT, Attribute::CrossedOut),
    ] {
        if added.contains(modifier) {
            queue!(w, SetAttribute(attribute))?;
        }
    }
    Ok(())
}

impl<W: Write> Write for PenBackend<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Write::flush(&mut self.inner)
    }
}

impl<W: Write> Backend for PenBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        // Unknown until this frame is written whole: a write that fails part way leaves the
        // terminal's pen unknown, and the next frame (or the drop) starts with a reset.
        let mut pen = match self.pen.take() {
            Some(pen) => pen,
            None => {
                queue!(self.inner, SetAttribute(Attribute::Reset))?;
                Pen::DEFAULT
            }
        };
        let mut last: Option<Position> = None;
        for (x, y, cell) in content {
            if !matches!(last, Some(p) if x == p.x + 1 && y == p.y) {
                queue!(self.inner, MoveTo(x, y))?;
            }
            last = Some(Position { x, y });
            if cell.modifier != pen.modifier {
                if !(pen.modifier - cell.modifier).is_empty() {
                    // An attribute goes: start from the default pen (one short reset, where
                    // undoing each attribute costs as much or more).
                    queue!(self.inner, SetAttribute(Attribute::Reset))?;
                    pen = Pen::DEFAULT;
                }
                add_attributes(&mut self.inner, pen.modifier, cell.modifier)?;
                pen.modifier = cell.modifier;
            }
            if cell.fg != pen.fg || cell.bg != pen.bg {
                queue!(
                    self.inner,
                    SetColors(Colors::new(
                        cell.fg.into_crossterm(),
                        cell.bg.into_crossterm()
                    ))
                )?;
                pen.fg = cell.fg;
                pen.bg = cell.bg;
            }
            if cell.underline_color != pen.underline {
                let color: CtColor = cell.underline_color.into_crossterm();
                queue!(self.inner, SetUnderlineColor(color))?;
                pen.underline = cell.underline_color;
            }
            queue!(self.inner, Print(cell.symbol()))?;
        }
        self.pen = Some(pen);
        Ok(())
    }

    fn append_lines(&mut self, n: u16) -> io::Result<()> {
        self.reset_pen()?;
        self.inner.append_lines(n)
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        self.inner.hide_cursor()
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        self.inner.show_cursor()
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.inner.set_cursor_position(position)
    }

    fn clear(&mut self) -> io::Result<()> {
        self.reset_pen()?;
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.reset_pen()?;
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> io::Result<Size> {
        self.inner.size()
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> io::Result<()> {
        Backend::flush(&mut self.inner)
    }

    fn scroll_region_up(&mut self, region: std::ops::Range<u16>, amount: u16) -> io::Result<()> {
        self.reset_pen()?;
        self.inner.scroll_region_up(region, amount)
    }

    fn scroll_region_down(&mut self, region: std::ops::Range<u16>, amount: u16) -> io::Result<()> {
        self.reset_pen()?;
        self.inner.scroll_region_down(region, amount)
    }
}

impl<W: Write> Drop for PenBackend<W> {
    fn drop(&mut self) {
        // Whatever happens next on this terminal starts from its own pen (known to be it, or
        // unknown).
        if self.pen != Some(Pen::DEFAULT) {
            let _ = queue!(self.inner, SetAttribute(Attribute::Reset));
            let _ = Write::flush(&mut self.inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    use super::*;

    /// A writer the test keeps a handle on.
    #[derive(Clone, Default)]
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        /// What was written since `from` bytes.
        fn since(&self, from: usize) -> String {
            String::from_utf8_lossy(&self.0.borrow()[from..]).into_owned()
        }

        fn len(&self) -> usize {
            self.0.borrow().len()
        }
    }

    /// What `PenBackend` writes for each of `frames` (cells as `(x, y, cell)`), drawn one
    /// after the other on one backend.
    fn written(frames: &[Vec<(u16, u16, Cell)>]) -> Vec<String> {
        let sink = Shared::default();
        let mut backend = PenBackend::new(sink.clone());
        let mut out = Vec::new();
        for frame in frames {
            let before = sink.len();
            backend
                .draw(frame.iter().map(|(x, y, c)| (*x, *y, c)))
                .unwrap();
            out.push(sink.since(before));
        }
        out
    }

    fn cell(symbol: &str, style: Style) -> Cell {
        let mut buffer = Buffer::empty(Rect::new(0, 0, 1, 1));
        buffer[(0, 0)].set_symbol(symbol).set_style(style);
        buffer[(0, 0)].clone()
    }

    #[test]
    fn the_pen_is_set_once_and_carried_into_the_next_frame() {
        let red = Style::new().fg(Color::Red);
        let frames = written(&[
            vec![(0, 0, cell("a", red)), (1, 0, cell("b", red))],
            vec![(2, 0, cell("c", red))],
            vec![(0, 1, cell("d", Style::new()))],
        ]);
        // The first frame starts from a known pen and sets red once; no reset at its end.
        assert_eq!(frames[0], "\x1b[0m\x1b[1;1H\x1b[38;5;1;49mab");
        // Still red: only the move and the text.
        assert_eq!(frames[1], "\x1b[1;3Hc");
        // Back to the default colours, still without a trailing reset.
        assert_eq!(frames[2], "\x1b[2;1H\x1b[39;49md");
    }

    #[test]
    fn an_attribute_taken_away_resets_the_pen_then_sets_what_stays() {
        let bold_red = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
        let reversed = Style::new().add_modifier(Modifier::REVERSED);
        let frames = written(&[
            vec![(0, 0, cell("a", bold_red))],
            vec![(1, 0, cell("b", reversed))],
        ]);
        assert_eq!(frames[0], "\x1b[0m\x1b[1;1H\x1b[1m\x1b[38;5;1;49ma");
        // Bold goes: reset (which also drops the red), then reverse.
        assert_eq!(frames[1], "\x1b[1;2H\x1b[0m\x1b[7mb");
    }

    #[test]
    fn blank_cells_and_the_shell_get_the_default_pen() {
        let on_blue = Style::new().bg(Color::Blue);
        let sink = Shared::default();
        let mut backend = PenBackend::new(sink.clone());
        let c = cell("x", on_blue);
        backend.draw(std::iter::once((0, 0, &c))).unwrap();
        let before = sink.len();
        // A clear fills with the current background: the pen goes back to the default first.
        backend.clear_region(ClearType::AfterCursor).unwrap();
        let after = sink.since(before);
        assert!(after.starts_with("\x1b[0m"), "{after:?}");
        // Known to be the default now: a second clear adds no reset.
        let before = sink.len();
        backend.clear_region(ClearType::AfterCursor).unwrap();
        let again = sink.since(before);
        assert!(!again.contains("\x1b[0m"), "{again:?}");
        // Dropped with a colour set, it leaves the terminal's own pen behind.
        backend.draw(std::iter::once((0, 0, &c))).unwrap();
        let before = sink.len();
        drop(backend);
        assert_eq!(sink.since(before), "\x1b[0m");
    }
}
