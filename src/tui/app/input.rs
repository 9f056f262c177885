//! The line editor behind the prompt and the `:` command line: a line of text with a
//! character cursor, and the editing keys that are not configurable bindings.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The prompt being typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputLine {
    /// The text.
    pub text: String,
    /// Cursor position in characters.
    pub cursor: usize,
}

impl InputLine {
    fn byte_at(&self, char_index: usize) -> usize {
        self.text
            .char_indices()
            .nth(char_index)
            .map(|(i, _)| i)
            .unwrap_or(self.text.len())
    }

    fn len(&self) -> usize {
        self.text.chars().count()
    }

    /// Inserts `c` at the cursor; a control character goes in as its visible placeholder, so
    /// what the operator sees is what is sent.
    pub(super) fn insert(&mut self, c: char) {
        if crate::sanitize::needs_placeholder(c) {
            let mut buf = [0u8; 4];
            for p in crate::sanitize::sanitize(c.encode_utf8(&mut buf)).chars() {
                self.insert_plain(p);
            }
        } else {
            self.insert_plain(c);
        }
    }

    fn insert_plain(&mut self, c: char) {
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    fn delete(&mut self) {
        if self.cursor < self.len() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    fn delete_word(&mut self) {
        while self.cursor > 0 && self.text.chars().nth(self.cursor - 1) == Some(' ') {
            self.backspace();
        }
        while self.cursor > 0 && self.text.chars().nth(self.cursor - 1) != Some(' ') {
            self.backspace();
        }
    }
}

/// Editing keys that are not configurable bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// Type a character.
    Insert(char),
    /// Delete before the cursor.
    Backspace,
    /// Delete at the cursor.
    Delete,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// Cursor to start.
    Home,
    /// Cursor to end.
    End,
    /// Delete the word before the cursor.
    DeleteWord,
    /// Clear the line.
    Clear,
}

impl Edit {
    /// The edit a key stands for while typing, if any.
    pub fn from_key(key: &KeyEvent) -> Option<Edit> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        Some(match key.code {
            KeyCode::Char('u') if ctrl => Edit::Clear,
            KeyCode::Char('w') if ctrl => Edit::DeleteWord,
            KeyCode::Char('a') if ctrl => Edit::Home,
            KeyCode::Char('e') if ctrl => Edit::End,
            KeyCode::Char(_) if ctrl || key.modifiers.contains(KeyModifiers::ALT) => return None,
            KeyCode::Char(c) => Edit::Insert(c),
            KeyCode::Backspace => Edit::Backspace,
            KeyCode::Delete => Edit::Delete,
            KeyCode::Left => Edit::Left,
            KeyCode::Right => Edit::Right,
            KeyCode::Home => Edit::Home,
            KeyCode::End => Edit::End,
            _ => return None,
        })
    }
}

/// Applies a typing action to a line.
pub(super) fn apply_edit(input: &mut InputLine, edit: Edit) {
    match edit {
        Edit::Insert(c) => input.insert(c),
        Edit::Backspace => input.backspace(),
        Edit::Delete => input.delete(),
        Edit::Left => input.cursor = input.cursor.saturating_sub(1),
        Edit::Right => input.cursor = (input.cursor + 1).min(input.len()),
        Edit::Home => input.cursor = 0,
        Edit::End => input.cursor = input.len(),
        Edit::DeleteWord => input.delete_word(),
        Edit::Clear => *input = InputLine::default(),
    }
}

/// True for a key an operator presses on purpose: not a bare modifier or a media key.
pub(super) fn is_meaningful(key: &KeyEvent) -> bool {
    matches!(
        key.code,
        KeyCode::Char(_)
            | KeyCode::F(_)
            | KeyCode::Enter
            | KeyCode::Backspace
            | KeyCode::Delete
            | KeyCode::Insert
            | KeyCode::Left
            | KeyCode::Right
            | KeyCode::Up
            | KeyCode::Down
            | KeyCode::Home
            | KeyCode::End
            | KeyCode::PageUp
            | KeyCode::PageDown
            | KeyCode::Tab
            | KeyCode::BackTab
    )
}
