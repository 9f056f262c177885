//! The text of one task's answer, stored as committed lines plus a live tail, and wrapped for
//! display only where it is visible. Appending is O(new text); drawing a window is
//! O(visible rows), whatever the total size. A buffer keeps the newest [`OUTPUT_KEEP`] bytes
//! and counts the lines it dropped.

use std::collections::VecDeque;

use unicode_width::UnicodeWidthChar;

/// Bytes of a task's output kept by default (about sixteen thousand tokens): past this the
/// oldest lines go, so a console left running keeps a bounded amount of text per task.
pub const OUTPUT_KEEP: usize = 64 * 1024;

/// A task's streamed text, with the agent's tool calls as lines of their own. It keeps the
/// newest [`OUTPUT_KEEP`] bytes (or the cap it was made with): older lines are dropped, and
/// counted, so the Output pane can say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputBuffer {
    lines: VecDeque<String>,
    /// The kind of each committed line (the tail is always text).
    kinds: VecDeque<LineKind>,
    tail: String,
    /// Bytes received in all.
    bytes: usize,
    /// Bytes kept: the committed lines' and the tail's.
    kept: usize,
    /// Most bytes kept.
    cap: usize,
    /// Lines dropped from the front (a cut tail counts as one).
    dropped_lines: usize,
}

impl Default for OutputBuffer {
    fn default() -> Self {
        OutputBuffer::with_cap(OUTPUT_KEEP)
    }
}

/// What a line of output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineKind {
    /// The model's answer.
    #[default]
    Text,
    /// A tool call that ran and succeeded.
    ToolOk,
    /// A tool call refused, rejected or failed.
    ToolError,
    /// Why the task failed, is retrying or was cancelled (after its text).
    Failure,
    /// An answer that did not end on its own: cut at `max_tokens`, stopped, filtered.
    Warning,
}

/// Logical lines the Output pane wraps and scrolls over: a task's [`OutputBuffer`], or the
/// buffer with the line that says how the task ended ([`Closed`]).
pub trait Lines {
    /// Number of logical lines.
    fn line_count(&self) -> usize;
    /// Logical line `i`.
    fn line(&self, i: usize) -> Option<&str>;
    /// The kind of logical line `i`.
    fn kind(&self, i: usize) -> LineKind;
}

impl Lines for OutputBuffer {
    fn line_count(&self) -> usize {
        OutputBuffer::line_count(self)
    }
    fn line(&self, i: usize) -> Option<&str> {
        OutputBuffer::line(self, i)
    }
    fn kind(&self, i: usize) -> LineKind {
        OutputBuffer::kind(self, i)
    }
}

/// A task's output as the Output pane shows it: the buffer's lines, then a closing line when
/// the task did not end well (its error, a cut answer). The closing line is text like any
/// other: wrapped whole and scrolled with the rest, so however long an error is, every row of
/// it can be read.
#[derive(Debug, Clone)]
pub struct Closed<'a> {
    /// The task's text.
    pub buffer: &'a OutputBuffer,
    /// The closing line and its kind ([`LineKind::Failure`] or [`LineKind::Warning`]).
    pub closing: Option<(String, LineKind)>,
}

impl Lines for Closed<'_> {
    fn line_count(&self) -> usize {
        self.buffer.line_count() + usize::from(self.closing.is_some())
    }
    fn line(&self, i: usize) -> Option<&str> {
        let n = self.buffer.line_count();
        if i < n {
            self.buffer.line(i)
        } else if i == n {
            self.closing.as_ref().map(|(text, _)| text.as_str())
        } else {
            None
        }
    }
    fn kind(&self, i: usize) -> LineKind {
        match self.closing {
            Some((_, kind)) if i == self.buffer.line_count() => kind,
            _ => self.buffer.kind(i),
        }
    }
}

impl OutputBuffer {
    /// An empty buffer that keeps the newest `cap` bytes (at least one line's worth is kept
    /// whatever the cap: the newest line, cut to `cap` when longer).
    pub fn with_cap(cap: usize) -> Self {
        OutputBuffer {
            lines: VecDeque::new(),
            kinds: VecDeque::new(),
            tail: String::new(),
            bytes: 0,
            kept: 0,
            cap: cap.max(1),
            dropped_lines: 0,
        }
    }

    /// Adds a line of `kind` of its own, after the text so far (an unfinished line of text
    /// is committed first).
    pub fn push_line(&mut self, kind: LineKind, text: &str) {
        if !self.tail.is_empty() {
            self.lines.push_back(std::mem::take(&mut self.tail));
            self.kinds.push_back(LineKind::Text);
        }
        self.bytes += text.len();
        let line = text.replace(['\n', '\r'], " ");
        self.kept += line.len();
        self.lines.push_back(line);
        self.kinds.push_back(kind);
        self.trim();
    }

    /// The kind of logical line `i`.
    pub fn kind(&self, i: usize) -> LineKind {
        self.kinds.get(i).copied().unwrap_or_default()
    }

    /// Appends streamed text; every `\n` commits a line.
    pub fn push(&mut self, text: &str) {
        self.bytes += text.len();
        let mut rest = text;
        while let Some(i) = rest.find('\n') {
            let piece = rest[..i].trim_end_matches('\r');
            self.kept += piece.len();
            self.tail.push_str(piece);
            self.lines.push_back(std::mem::take(&mut self.tail));
            self.kinds.push_back(LineKind::Text);
            rest = &rest[i + 1..];
        }
        self.kept += rest.len();
        self.tail.push_str(rest);
        self.trim();
    }

    /// Drops the oldest lines while more than the cap is kept; a tail longer than the cap
    /// loses its front (at a character boundary).
    fn trim(&mut self) {
        while self.kept > self.cap
            && let Some(line) = self.lines.pop_front()
        {
            self.kinds.pop_front();
            self.kept -= line.len();
            self.dropped_lines += 1;
        }
        if self.kept > self.cap {
            let excess = self.kept - self.cap;
            let cut = (excess..=self.tail.len())
                .find(|&i| self.tail.is_char_boundary(i))
                .unwrap_or(self.tail.len());
            self.tail.drain(..cut);
            self.kept -= cut;
            if self.dropped_lines == 0 {
                self.dropped_lines = 1;
            }
        }
    }

    /// Total bytes received.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Lines dropped to keep the buffer under its cap (0: the whole output is kept). Logical
    /// line numbers count from the oldest line kept.
    pub fn dropped_lines(&self) -> usize {
        self.dropped_lines
    }

    /// Number of logical lines kept (the tail counts when not empty).
    pub fn line_count(&self) -> usize {
        self.lines.len() + usize::from(!self.tail.is_empty())
    }

    /// Logical line `i`.
    pub fn line(&self, i: usize) -> Option<&str> {
        if i < self.lines.len() {
            Some(&self.lines[i])
        } else if i == self.lines.len() && !self.tail.is_empty() {
            Some(&self.tail)
        } else {
            None
        }
    }

    /// The whole text kept, lines joined with `\n` (tool lines included).
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(self.kept + self.lines.len());
        for (i, line) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(line);
        }
        if !self.tail.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&self.tail);
        }
        out
    }

    /// True when nothing was received.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }
}

/// Where the output view starts: a logical line and a wrapped row within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Anchor {
    /// Logical line.
    pub line: usize,
    /// Wrapped row inside that line.
    pub row: usize,
}

/// Splits `line` into rows of at most `width` columns, breaking after spaces where it can.
///
/// Hand-written rather than [`crate::tui::panes::wrap`] (`textwrap`): the rows partition the
/// model's text exactly, so indentation and runs of spaces survive a break (textwrap drops the
/// spaces at a break and turns a line's leading indentation into an empty row), and they are
/// borrowed slices, cheap to recompute for every visible line on every frame.
pub fn wrap(line: &str, width: usize) -> Vec<&str> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut start = 0;
    let mut cols = 0;
    let mut last_space: Option<usize> = None;
    let mut iter = line.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let w = c.width().unwrap_or(0);
        if cols + w > width && i > start {
            let cut = match last_space {
                Some(s) if s > start => s,
                _ => i,
            };
            rows.push(&line[start..cut]);
            start = cut;
            cols = line[start..i].chars().map(|c| c.width().unwrap_or(0)).sum();
            last_space = None;
        }
        cols += w;
        if c == ' ' {
            last_space = Some(i + 1);
        }
        let _ = iter.peek();
    }
    if start < line.len() || rows.is_empty() {
        rows.push(&line[start..]);
    }
    rows
}

/// The rows to show: `height` wrapped rows from `anchor`, or the last `height` rows when
/// `anchor` is `None` (following).
pub fn visible_rows<L: Lines + ?Sized>(
    buffer: &L,
    anchor: Option<Anchor>,
    width: usize,
    height: usize,
) -> Vec<(&str, LineKind)> {
    let mut out = Vec::with_capacity(height);
    match anchor {
        None => {
            let mut i = buffer.line_count();
            while i > 0 && out.len() < height {
                i -= 1;
                let rows = wrap(buffer.line(i).unwrap_or(""), width);
                for r in rows.into_iter().rev() {
                    if out.len() == height {
                        break;
                    }
                    out.push((r, buffer.kind(i)));
                }
            }
            out.reverse();
        }
        Some(a) => {
            let mut i = a.line;
            let mut skip = a.row;
            while out.len() < height {
                let Some(line) = buffer.line(i) else { break };
                for r in wrap(line, width).into_iter().skip(skip) {
                    if out.len() == height {
                        break;
                    }
                    out.push((r, buffer.kind(i)));
                }
                skip = 0;
                i += 1;
            }
        }
    }
    out
}

/// The anchor of the view that currently shows the last `height` rows.
pub fn bottom_anchor<L: Lines + ?Sized>(buffer: &L, width: usize, height: usize) -> Anchor {
    let mut remaining = height;
    let mut i = buffer.line_count();
    while i > 0 {
        i -= 1;
        let n = wrap(buffer.line(i).unwrap_or(""), width).len();
        if n >= remaining {
            return Anchor {
                line: i,
                row: n - remaining,
            };
        }
        remaining -= n;
    }
    Anchor::default()
}

/// Moves an anchor by `delta` rows (negative is up), clamped to the text.
pub fn scroll<L: Lines + ?Sized>(buffer: &L, anchor: Anchor, delta: isize, width: usize) -> Anchor {
    let mut a = anchor;
    if delta < 0 {
        for _ in 0..delta.unsigned_abs() {
            if a.row > 0 {
                a.row -= 1;
            } else if a.line > 0 {
                a.line -= 1;
                a.row = wrap(buffer.line(a.line).unwrap_or(""), width)
                    .len()
                    .saturating_sub(1);
            } else {
                break;
            }
        }
    } else {
        for _ in 0..delta as usize {
            let rows = wrap(buffer.line(a.line).unwrap_or(""), width).len();
            if a.row + 1 < rows {
                a.row += 1;
            } else if a.line + 1 < buffer.line_count() {
                a.line += 1;
                a.row = 0;
            } else {
                break;
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_text_is_kept_and_the_buffer_says_what_went() {
        let mut b = OutputBuffer::with_cap(11);
        b.push("one\ntwo\n");
        assert_eq!((b.dropped_lines(), b.text().as_str()), (0, "one\ntwo"));
        b.push_line(LineKind::ToolOk, "⚙ ok");
        b.push("three");
        // 3 + 3 + 6 + 5 bytes kept in 11: "one" and "two" went; the tool line keeps its kind.
        assert_eq!(b.dropped_lines(), 2);
        assert_eq!(b.text(), "⚙ ok\nthree");
        assert_eq!(b.kind(0), LineKind::ToolOk);
        assert_eq!(b.bytes(), 19);
        // A line longer than the cap keeps its newest characters, cut at a boundary.
        let mut b = OutputBuffer::with_cap(5);
        b.push("ééééé");
        assert_eq!(b.text(), "éé");
        assert_eq!(b.dropped_lines(), 1);
        // A long stream stays within its cap.
        let mut b = OutputBuffer::default();
        for _ in 0..10_000 {
            b.push("a line of streamed text\n");
        }
        let kept: usize = (0..b.line_count())
            .filter_map(|i| b.line(i))
            .map(str::len)
            .sum();
        assert!(kept <= OUTPUT_KEEP, "{kept}");
        assert_eq!(b.line_count() + b.dropped_lines(), 10_000);
    }

    #[test]
    fn push_commits_lines_and_keeps_a_tail() {
        let mut b = OutputBuffer::default();
        b.push("one\ntw");
        b.push("o\nthree");
        assert_eq!(b.line_count(), 3);
        assert_eq!(b.line(1), Some("two"));
        assert_eq!(b.line(2), Some("three"));
        assert_eq!(b.bytes(), 13);
    }

    #[test]
    fn wraps_at_spaces_then_hard() {
        assert_eq!(wrap("hello world foo", 11), vec!["hello ", "world foo"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert_eq!(wrap("", 5), vec![""]);
    }

    #[test]
    fn tool_lines_stand_apart_from_the_text_around_them() {
        let mut b = OutputBuffer::default();
        b.push("Let me check");
        b.push_line(
            LineKind::ToolOk,
            "⚙ calculator {\"expression\":\"6*7\"} → 42",
        );
        b.push("The answer is 42.");
        b.push_line(LineKind::ToolError, "⚙ file_delete refused:\nno");
        let rows = visible_rows(&b, None, 80, 10);
        assert_eq!(
            rows,
            vec![
                ("Let me check", LineKind::Text),
                (
                    "⚙ calculator {\"expression\":\"6*7\"} → 42",
                    LineKind::ToolOk
                ),
                ("The answer is 42.", LineKind::Text),
                ("⚙ file_delete refused: no", LineKind::ToolError),
            ]
        );
    }

    #[test]
    fn follows_the_bottom_and_scrolls_from_an_anchor() {
        let mut b = OutputBuffer::default();
        for i in 0..10 {
            b.push(&format!("line {i}\n"));
        }
        fn text(rows: Vec<(&str, LineKind)>) -> Vec<&str> {
            rows.into_iter().map(|r| r.0).collect()
        }
        assert_eq!(
            text(visible_rows(&b, None, 20, 3)),
            vec!["line 7", "line 8", "line 9"]
        );
        let a = bottom_anchor(&b, 20, 3);
        assert_eq!(a, Anchor { line: 7, row: 0 });
        let up = scroll(&b, a, -2, 20);
        assert_eq!(
            text(visible_rows(&b, Some(up), 20, 2)),
            vec!["line 5", "line 6"]
        );
        let clamped = scroll(&b, up, 100, 20);
        assert_eq!(clamped.line, 9);
    }
}
