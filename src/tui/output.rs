//! The text of one task's answer, stored as committed lines plus a live tail, and wrapped for
//! display only where it is visible. Appending is O(new text); drawing a window is
//! O(visible rows), whatever the total size.

use unicode_width::UnicodeWidthChar;

/// A task's streamed text, with the agent's tool calls as lines of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputBuffer {
    lines: Vec<String>,
    /// The kind of each committed line (the tail is always text).
    kinds: Vec<LineKind>,
    tail: String,
    bytes: usize,
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
}

impl OutputBuffer {
    /// Adds a line of `kind` of its own, after the text so far (an unfinished line of text
    /// is committed first).
    pub fn push_line(&mut self, kind: LineKind, text: &str) {
        if !self.tail.is_empty() {
            self.lines.push(std::mem::take(&mut self.tail));
            self.kinds.push(LineKind::Text);
        }
        self.bytes += text.len();
        self.lines.push(text.replace(['\n', '\r'], " "));
        self.kinds.push(kind);
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
            self.tail.push_str(rest[..i].trim_end_matches('\r'));
            self.lines.push(std::mem::take(&mut self.tail));
            self.kinds.push(LineKind::Text);
            rest = &rest[i + 1..];
        }
        self.tail.push_str(rest);
    }

    /// Total bytes received.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of logical lines (the tail counts when not empty).
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

    /// The whole text, lines joined with `\n` (tool lines included).
    pub fn text(&self) -> String {
        let mut out = self.lines.join("\n");
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
pub fn visible_rows(
    buffer: &OutputBuffer,
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
pub fn bottom_anchor(buffer: &OutputBuffer, width: usize, height: usize) -> Anchor {
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
pub fn scroll(buffer: &OutputBuffer, anchor: Anchor, delta: isize, width: usize) -> Anchor {
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
