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

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColourDepth {
    /// 24-bit colour: `#rrggbb` is drawn as written.
    TrueColor,
    /// The 16 ANSI colours: `#rrggbb` maps to the nearest of them.
    Ansi16,
}

impl ColourDepth {
    /// What `COLORTERM` announces: `truecolor` or `24bit` is [`ColourDepth::TrueColor`];
    /// anything else, or nothing (`TERM=xterm` over SSH), the 16 colours every terminal has.
    pub fn from_colorterm(colorterm: Option<&str>) -> Self {
        match colorterm.map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("truecolor") || v.eq_ignore_ascii_case("24bit") => {
                ColourDepth::TrueColor
            }
            _ => ColourDepth::Ansi16,
        }
    }

    /// From the process environment.
    pub fn detect() -> Self {
        Self::from_colorterm(std::env::var("COLORTERM").ok().as_deref())
    }
}

/// The 16 ANSI colours as xterm draws them, by index.
const ANSI_RGB: [(u8, u8, u8); 16] = [
    (0, 0, 0),
    (205, 0, 0),
    (0, 205, 0),
    (205, 205, 0),
    (0, 0, 238),
    (205, 0, 205),
    (0, 205, 205),
    (229, 229, 229),
    (127, 127, 127),
    (255, 0, 0),
    (0, 255, 0),
    (255, 255, 0),
    (92, 92, 255),
    (255, 0, 255),
    (0, 255, 255),
    (255, 255, 255),
];

/// The index of the ANSI colour nearest to `(r, g, b)` (squared distance, weighted for the
/// eye: green counts most, blue least). A clearly coloured input (saturation 0.3 or more) maps
/// to a colour, never to black, grey or white: by distance alone a light red is nearer to grey
/// than to red, and would lose its meaning.
pub fn nearest_ansi(r: u8, g: u8, b: u8) -> u8 {
    const GREYS: [usize; 4] = [0, 7, 8, 15];
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let saturated = max > 0 && f32::from(max - min) / f32::from(max) >= 0.3;
    let distance = |&(ar, ag, ab): &(u8, u8, u8)| {
        let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2);
        3 * d(r, ar) + 4 * d(g, ag) + 2 * d(b, ab)
    };
    let best = ANSI_RGB
        .iter()
        .enumerate()
        .filter(|(i, _)| !(saturated && GREYS.contains(i)))
        .min_by_key(|(_, c)| distance(c))
        .map_or(15, |(i, _)| i);
    // 16 entries: the index always fits.
    u8::try_from(best).unwrap_or(15)
}

fn colour(c: ThemeColour, depth: ColourDepth) -> Color {
    match c {
        ThemeColour::Reset => Color::Reset,
        ThemeColour::Rgb(r, g, b) if depth == ColourDepth::TrueColor => Color::Rgb(r, g, b),
        ThemeColour::Rgb(r, g, b) => colour(ThemeColour::Ansi(nearest_ansi(r, g, b)), depth),
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
    /// The theme in true colour (see [`Theme::for_depth`]).
    fn from(t: &ResolvedTheme) -> Self {
        Theme::for_depth(t, ColourDepth::TrueColor)
    }
}

impl Theme {
    /// Styles for a terminal of `depth` colours.
    pub fn for_depth(t: &ResolvedTheme, depth: ColourDepth) -> Self {
        if t.monochrome {
            return Theme::monochrome(&t.name);
        }
        let colour = |c| colour(c, depth);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::theme::{builtin_names, load_theme};

    #[test]
    fn colorterm_decides_the_depth() {
        assert_eq!(
            ColourDepth::from_colorterm(Some("truecolor")),
            ColourDepth::TrueColor
        );
        assert_eq!(
            ColourDepth::from_colorterm(Some("24bit")),
            ColourDepth::TrueColor
        );
        for other in [None, Some(""), Some("yes"), Some("256")] {
            assert_eq!(ColourDepth::from_colorterm(other), ColourDepth::Ansi16);
        }
    }

    #[test]
    fn rgb_maps_to_the_nearest_ansi_colour() {
        assert_eq!(nearest_ansi(0, 0, 0), 0);
        assert_eq!(nearest_ansi(255, 255, 255), 15);
        assert_eq!(nearest_ansi(0xff, 0x6b, 0x6b), 9, "a light red");
        assert_eq!(nearest_ansi(0x05, 0x50, 0xae), 4, "a deep blue");
        assert_eq!(nearest_ansi(0x1f, 0x23, 0x28), 0, "near black");
        let t = load_theme("deep-space").unwrap();
        let ansi = Theme::for_depth(&t, ColourDepth::Ansi16);
        assert_eq!(ansi.error.fg, Some(Color::LightRed));
        let rgb = Theme::for_depth(&t, ColourDepth::TrueColor);
        assert_eq!(rgb.error.fg, Some(Color::Rgb(0xff, 0x6b, 0x6b)));
    }

    /// Every built-in theme keeps its meanings apart in both depths: success, warning and
    /// failure never share a colour, and none of them looks like plain text.
    #[test]
    fn every_builtin_theme_keeps_meanings_apart_at_both_depths() {
        let names = builtin_names();
        assert!(names.len() >= 5, "{names:?}");
        for name in names {
            let t = load_theme(name).unwrap();
            if t.monochrome {
                continue;
            }
            for depth in [ColourDepth::TrueColor, ColourDepth::Ansi16] {
                let th = Theme::for_depth(&t, depth);
                let fgs = [th.ok.fg, th.warn.fg, th.error.fg];
                for (i, a) in fgs.iter().enumerate() {
                    assert_ne!(*a, th.text.fg, "{name} {depth:?}: role {i} looks like text");
                    for b in &fgs[i + 1..] {
                        assert_ne!(a, b, "{name} {depth:?}: two meanings share a colour");
                    }
                }
                assert_ne!(
                    th.selection.fg, th.selection.bg,
                    "{name} {depth:?}: the selection is unreadable"
                );
            }
        }
    }
}
