//! Console styles, converted at the edge from a [`ResolvedTheme`] (which knows no ratatui).

use ratatui::style::{Color, Modifier, Style};

use crate::config::{ResolvedTheme, ThemeColour};
use crate::events::Priority;

/// Styles by role, ready to draw with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    /// Theme name.
    pub name: String,
    /// Ordinary text.
    pub text: Style,
    /// Secondary text.
    pub muted: Style,
    /// Highlights, key names.
    pub accent: Style,
    /// Unfocused borders.
    pub border: Style,
    /// Focused border.
    pub border_focused: Style,
    /// Pane titles.
    pub title: Style,
    /// Selected row.
    pub selection: Style,
    /// Status bar.
    pub status: Style,
    /// Success.
    pub ok: Style,
    /// Warning.
    pub warn: Style,
    /// Failure.
    pub error: Style,
    /// Running tasks.
    pub running: Style,
    /// Queued tasks.
    pub queued: Style,
    /// Per priority, highest first.
    pub priorities: [Style; 5],
    /// Text being typed.
    pub input: Style,
    /// Overlay background.
    pub overlay: Style,
}

fn colour(c: ThemeColour) -> Color {
    match c {
        ThemeColour::Reset => Color::Reset,
        ThemeColour::Rgb(r, g, b) => Color::Rgb(r, g, b),
        ThemeColour::Ansi(i) => match i {
            0 => Color::Black,
            1 => Color::Red,
            2 => Color::Green,
            3 => Color::Yellow,
            4 => Color::Blue,
            5 => Color::Magenta,
            6 => Color::Cyan,
            7 => Color::Gray,
            8 => Color::DarkGray,
            9 => Color::LightRed,
            10 => Color::LightGreen,
            11 => Color::LightYellow,
            12 => Color::LightBlue,
            13 => Color::LightMagenta,
            14 => Color::LightCyan,
            _ => Color::White,
        },
    }
}

impl From<&ResolvedTheme> for Theme {
    fn from(t: &ResolvedTheme) -> Self {
        if t.monochrome {
            return Theme::monochrome(&t.name);
        }
        let fg = |role: &str| Style::default().fg(colour(t.colour(role)));
        Theme {
            name: t.name.clone(),
            text: fg("text"),
            muted: fg("muted"),
            accent: fg("accent"),
            border: fg("border"),
            border_focused: fg("border_focused").add_modifier(Modifier::BOLD),
            title: fg("title").add_modifier(Modifier::BOLD),
            selection: fg("selection_fg").bg(colour(t.colour("selection_bg"))),
            status: fg("status_fg").bg(colour(t.colour("status_bg"))),
            ok: fg("ok"),
            warn: fg("warn"),
            error: fg("error").add_modifier(Modifier::BOLD),
            running: fg("running"),
            queued: fg("queued"),
            priorities: [
                fg("priority_critical").add_modifier(Modifier::BOLD),
                fg("priority_high"),
                fg("priority_normal"),
                fg("priority_low"),
                fg("priority_background"),
            ],
            input: fg("input"),
            overlay: Style::default().bg(colour(t.colour("overlay_bg"))),
        }
    }
}

impl Theme {
    /// No colour at all: bold, dim and reverse video carry the meaning (`NO_COLOR`).
    pub fn monochrome(name: &str) -> Self {
        let plain = Style::default();
        let bold = plain.add_modifier(Modifier::BOLD);
        Theme {
            name: name.to_string(),
            text: plain,
            muted: plain.add_modifier(Modifier::DIM),
            accent: bold,
            border: plain,
            border_focused: bold,
            title: bold,
            selection: plain.add_modifier(Modifier::REVERSED),
            status: plain.add_modifier(Modifier::REVERSED),
            ok: plain,
            warn: bold,
            error: bold,
            running: bold,
            queued: plain,
            priorities: [bold, bold, plain, plain, plain.add_modifier(Modifier::DIM)],
            input: plain,
            overlay: plain,
        }
    }

    /// Style of a priority.
    pub fn priority(&self, p: Priority) -> Style {
        let i = Priority::ALL.iter().position(|x| *x == p).unwrap_or(2);
        self.priorities[i]
    }
}
