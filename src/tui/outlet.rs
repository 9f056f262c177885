//! What the console's loop writes to a terminal besides frames: the bell and an OSC 52 copy.
//! The real console writes them to crossterm's stdout; ratatui's `TestBackend` (the loop run
//! headless by [`super::drive`], for tests and the `console` bench) takes them and writes
//! nothing.

use std::io::Write;

use ratatui::backend::TestBackend;

use super::pen::PenBackend;

/// The bell and the clipboard beside a backend the console's loop draws on.
pub trait Outlet {
    /// Rings the terminal's bell (best effort: a bell that cannot be written is no error).
    fn bell(&mut self);
    /// Puts `text` on the terminal's clipboard (OSC 52). The text is already sanitized.
    fn copy(&mut self, text: String) -> std::io::Result<()>;
}

impl Outlet for PenBackend<std::io::Stdout> {
    fn bell(&mut self) {
        let _ = self.write_all(b"\x07").and_then(|()| self.flush());
    }

    fn copy(&mut self, text: String) -> std::io::Result<()> {
        crossterm::execute!(
            self,
            crossterm::clipboard::CopyToClipboard::to_clipboard_from(text)
        )
    }
}

impl Outlet for TestBackend {
    fn bell(&mut self) {}

    fn copy(&mut self, _text: String) -> std::io::Result<()> {
        Ok(())
    }
}

/// Turns a backend's error into the console's, saying what was being done (`what`).
pub(super) fn failed<E: std::error::Error + Send + Sync + 'static>(
    what: &'static str,
) -> impl Fn(E) -> crate::error::VeyraError {
    move |e| {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
        let io = match boxed.downcast::<std::io::Error>() {
            Ok(io) => *io,
            Err(other) => std::io::Error::other(other),
        };
        crate::error::VeyraError::io(what, io)
    }
}
