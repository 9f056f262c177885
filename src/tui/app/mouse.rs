//! The mouse, when the operator turned it on (`tui.mouse`, `:mouse`): a click focuses the pane
//! (or the tab) under it, the wheel scrolls the pane under it. It never answers a question and
//! never types: while a modal, an overlay, the prompt or the command line has the keys, the
//! mouse does nothing but close the help or a detail view (and scroll a detail view).
//!
//! Where the mouse is — which tab or pane — is the layout's to say
//! ([`crate::tui::layout::mouse_target`]); the state only learns the answer, so it knows nothing
//! of where panes are drawn.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

use super::*;

/// What a mouse event is over, as the layout found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MouseTarget {
    /// A label of the tab strip (small screens).
    Tab(Pane),
    /// A pane's place.
    Pane(Pane),
    /// Nothing that reacts: a border between panes, the strip past its labels, the status bar.
    Nothing,
}

/// Lines one notch of the wheel moves.
const WHEEL_LINES: usize = 3;

impl App {
    /// Applies a mouse event over `target`: `None` when it did nothing (a movement, a click on
    /// nothing, any event while the keys are taken).
    pub fn handle_mouse(
        &mut self,
        event: &MouseEvent,
        target: MouseTarget,
    ) -> Option<Vec<Command>> {
        let click = matches!(event.kind, MouseEventKind::Down(MouseButton::Left));
        let wheel = match event.kind {
            MouseEventKind::ScrollUp => Some(Action::Up),
            MouseEventKind::ScrollDown => Some(Action::Down),
            _ => None,
        };
        if !click && wheel.is_none() {
            return None;
        }
        if self.mode() != Mode::Normal {
            // A question is answered with keys only; typing is not interrupted.
            return None;
        }
        if self.overlay.is_some() {
            // The wheel scrolls a detail view as its keys do.
            if let Some(action) = wheel
                && matches!(self.overlay, Some(Overlay::Detail { .. }))
            {
                return Some((0..WHEEL_LINES).flat_map(|_| self.update(action)).collect());
            }
            if click && !matches!(self.overlay, Some(Overlay::ConfirmQuit { .. })) {
                self.overlay = None;
                self.detail_scroll = 0;
                return Some(Vec::new());
            }
            return None;
        }
        let pane = match target {
            MouseTarget::Tab(pane) if click => {
                self.show_pane(pane);
                return Some(Vec::new());
            }
            MouseTarget::Pane(pane) => pane,
            MouseTarget::Tab(_) | MouseTarget::Nothing => return None,
        };
        if self.focus != pane {
            self.show_pane(pane);
        }
        Some(match wheel {
            Some(action) => (0..WHEEL_LINES).flat_map(|_| self.update(action)).collect(),
            None => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyModifiers;
    use ratatui::layout::Rect;

    use super::super::tests::*;
    use super::*;
    use crate::tui::layout::{Areas, mouse_target};

    /// The event as the console hands it over: resolved by the layout first.
    fn press(app: &mut App, event: &MouseEvent, areas: &Areas) -> Option<Vec<Command>> {
        let target = mouse_target(app, areas, event.column, event.row);
        app.handle_mouse(event, target)
    }

    fn mouse(kind: MouseEventKind, column: u16, row: u16) -> MouseEvent {
        MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        }
    }

    fn click(column: u16, row: u16) -> MouseEvent {
        mouse(MouseEventKind::Down(MouseButton::Left), column, row)
    }

    #[test]
    fn a_click_focuses_the_pane_under_it_and_the_wheel_scrolls_it() {
        let mut app = app();
        let screen = Rect::new(0, 0, 160, 48);
        let areas = Areas::for_app(&app, screen);
        let inside = |r: Rect| (r.x + 2, r.y + 1);
        let (x, y) = inside(areas.audit);
        press(&mut app, &click(x, y), &areas);
        assert_eq!(app.focus, Pane::Audit);
        let (x, y) = inside(areas.safety);
        press(&mut app, &click(x, y), &areas);
        assert_eq!(app.focus, Pane::Safety);
        // The wheel over Output focuses it and scrolls back: following stops.
        app.apply(submitted(7));
        app.apply(state(7, TaskStatus::Running, 1, now()));
        let text: String = (0..40).map(|i| format!("line {i}\n")).collect();
        app.apply(Event::OutputDelta {
            id: ExecutionId(uuid::Uuid::from_u128(7)),
            text,
        });
        crate::tui::layout::fit(&mut app, screen);
        assert!(app.follow);
        let (x, y) = inside(areas.output);
        press(&mut app, &mouse(MouseEventKind::ScrollUp, x, y), &areas);
        assert_eq!(app.focus, Pane::Output);
        assert!(!app.follow, "scrolled back from the live end");
        // Where nothing is drawn, nothing happens, and no frame is wanted; nor for a movement.
        assert_eq!(press(&mut app, &click(0, 47), &areas), None);
        assert_eq!(app.focus, Pane::Output);
        let moved = mouse(MouseEventKind::Moved, x, y);
        assert_eq!(press(&mut app, &moved, &areas), None);
    }

    #[test]
    fn on_a_small_screen_a_click_on_the_strip_shows_that_tab() {
        let mut app = app();
        let screen = Rect::new(0, 0, 80, 24);
        let areas = Areas::for_app(&app, screen);
        assert!(!areas.tabs.is_empty());
        let strip = crate::tui::layout::tab_labels(&app);
        let mut x = 0;
        for (pane, label) in &strip {
            let areas = Areas::for_app(&app, screen);
            press(&mut app, &click(x + 1, areas.tabs.y), &areas);
            assert_eq!(
                app.shown_tab(),
                *pane,
                "clicked {label:?} at column {}",
                x + 1
            );
            x += u16::try_from(unicode_width::UnicodeWidthStr::width(label.as_str())).unwrap();
        }
    }

    #[test]
    fn the_mouse_never_answers_a_question_nor_interrupts_typing() {
        let mut app = app();
        let areas = Areas::for_app(&app, Rect::new(0, 0, 160, 48));
        let (x, y) = (areas.audit.x + 2, areas.audit.y + 1);
        app.editing = true;
        app.focus = Pane::Prompt;
        press(&mut app, &click(x, y), &areas);
        assert_eq!(app.focus, Pane::Prompt, "typing keeps the focus");
        app.editing = false;
        app.overlay = Some(Overlay::ConfirmQuit { active: 1 });
        press(&mut app, &click(x, y), &areas);
        assert!(
            matches!(app.overlay, Some(Overlay::ConfirmQuit { .. })),
            "the quit question stays until a key answers it"
        );
        assert_eq!(app.focus, Pane::Prompt);
    }
}
