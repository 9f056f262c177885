//! Theme files: named colour roles, with a palette of named colours at the top.
//!
//! A theme names *roles* (`border_focused`, `priority_critical`, …), not widgets. A colour is an
//! ANSI name (`red`, `lightblue`, `darkgray`, `reset`, …), `#rrggbb`, or a palette name. A theme
//! file only lists what it changes: everything else comes from the built-in default theme. This
//! module knows nothing of ratatui; the console converts roles to its own styles.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ConfigError, suggest};

/// Every role a theme can set, with what it colours.
pub const ROLES: [(&str, &str); 22] = [
    ("text", "ordinary text"),
    ("muted", "secondary text, hints, timestamps"),
    ("accent", "highlights and key names"),
    ("border", "borders of unfocused panes"),
    ("border_focused", "border and title of the focused pane"),
    ("title", "pane titles"),
    ("selection_fg", "text of the selected row"),
    ("selection_bg", "background of the selected row"),
    ("status_fg", "status bar text"),
    ("status_bg", "status bar background"),
    ("ok", "success: finished tasks, verified chain"),
    ("warn", "warnings"),
    ("error", "failures"),
    ("running", "running tasks"),
    ("queued", "queued tasks"),
    ("priority_critical", "CRITICAL priority"),
    ("priority_high", "HIGH priority"),
    ("priority_normal", "NORMAL priority"),
    ("priority_low", "LOW priority"),
    ("priority_background", "BACKGROUND priority"),
    ("input", "text being typed"),
    ("overlay_bg", "background of overlays (help, confirmations)"),
];

/// ANSI colour names a theme may use.
pub const ANSI_COLOURS: [&str; 17] = [
    "reset",
    "black",
    "red",
    "green",
    "yellow",
    "blue",
    "magenta",
    "cyan",
    "gray",
    "darkgray",
    "lightred",
    "lightgreen",
    "lightyellow",
    "lightblue",
    "lightmagenta",
    "lightcyan",
    "white",
];

/// Built-in themes: name and YAML text (the files in `themes/`).
pub const BUILTIN_THEMES: [(&str, &str); 5] = [
    ("default", include_str!("../../themes/default.yaml")),
    ("daylight", include_str!("../../themes/daylight.yaml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.yaml"),
    ),
    ("deep-space", include_str!("../../themes/deep-space.yaml")),
    ("mono", include_str!("../../themes/mono.yaml")),
];

/// A theme file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ThemeSpec {
    /// Display name.
    pub name: String,
    /// Named colours for use in `roles`.
    pub palette: BTreeMap<String, String>,
    /// Role → colour.
    pub roles: BTreeMap<String, String>,
    /// Draw without any colour, using bold and reverse video only (like `NO_COLOR`).
    pub monochrome: bool,
}

/// A colour after palette lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeColour {
    /// The terminal's own colour.
    Reset,
    /// One of the 16 ANSI colours, by its index in [`ANSI_COLOURS`] minus one.
    Ansi(u8),
    /// A 24-bit colour.
    Rgb(u8, u8, u8),
}

/// A theme with every role resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTheme {
    /// Display name.
    pub name: String,
    /// Role → colour, for every role in [`ROLES`].
    pub roles: BTreeMap<String, ThemeColour>,
    /// See [`ThemeSpec::monochrome`].
    pub monochrome: bool,
}

impl ResolvedTheme {
    /// The colour of a role ([`ThemeColour::Reset`] for an unknown one).
    pub fn colour(&self, role: &str) -> ThemeColour {
        self.roles.get(role).copied().unwrap_or(ThemeColour::Reset)
    }
}

fn parse_colour(text: &str) -> Option<ThemeColour> {
    let t = text.trim().to_ascii_lowercase();
    if let Some(hex) = t.strip_prefix('#') {
        if hex.len() != 6 {
            return None;
        }
        let v = u32::from_str_radix(hex, 16).ok()?;
        return Some(ThemeColour::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
    }
    let t = if t == "default" {
        "reset".to_string()
    } else {
        t.replace(['-', '_', ' '], "")
    };
    let t = if t == "grey" {
        "gray".into()
    } else if t == "darkgrey" {
        "darkgray".into()
    } else {
        t
    };
    match ANSI_COLOURS.iter().position(|c| *c == t)? {
        0 => Some(ThemeColour::Reset),
        i => Some(ThemeColour::Ansi((i - 1) as u8)),
    }
}

impl ThemeSpec {
    /// Parses a theme from YAML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        serde_saphyr::from_str::<ThemeSpec>(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let msg = e.without_snippet().to_string();
            let first = msg.lines().next().unwrap_or("").to_string();
            let first = match first.rfind(" at line ") {
                Some(i) => first[..i].to_string(),
                None => first,
            };
            ConfigError::File {
                path: origin.to_path_buf(),
                line,
                column,
                message: super::explain_serde_message(&first),
            }
        })
    }

    /// Resolves this theme over `base` (roles it does not set keep the base's colour).
    pub fn resolve(
        &self,
        base: Option<&ResolvedTheme>,
        origin: &Path,
    ) -> Result<ResolvedTheme, ConfigError> {
        let role_names: Vec<&str> = ROLES.iter().map(|(r, _)| *r).collect();
        let mut roles = base.map(|b| b.roles.clone()).unwrap_or_default();
        let bad = |message: String| ConfigError::Invalid {
            key: "theme".into(),
            origin: super::Origin::file(origin),
            message,
        };
        for (role, value) in &self.roles {
            if !role_names.contains(&role.as_str()) {
                return Err(bad(format!(
                    "unknown role '{role}'{}; valid roles: {}",
                    suggest::did_you_mean(role, role_names.iter().copied()),
                    role_names.join(", ")
                )));
            }
            let text = self.palette.get(value).map(String::as_str).unwrap_or(value);
            let colour = parse_colour(text).ok_or_else(|| {
                bad(format!(
                    "role '{role}': '{value}' is not a colour; use an ANSI name ({}), #rrggbb, or a palette name ({})",
                    ANSI_COLOURS.join(", "),
                    self.palette.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            roles.insert(role.clone(), colour);
        }
        for role in role_names {
            roles.entry(role.to_string()).or_insert(ThemeColour::Reset);
        }
        Ok(ResolvedTheme {
            name: if self.name.is_empty() {
                base.map(|b| b.name.clone()).unwrap_or_default()
            } else {
                self.name.clone()
            },
            roles,
            monochrome: self.monochrome,
        })
    }
}

/// The built-in default theme, resolved.
pub fn default_theme() -> Result<ResolvedTheme, ConfigError> {
    builtin("default", None)
}

fn builtin(name: &str, base: Option<&ResolvedTheme>) -> Result<ResolvedTheme, ConfigError> {
    let text = BUILTIN_THEMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or("");
    let origin = Path::new("themes").join(format!("{name}.yaml"));
    ThemeSpec::parse(text, &origin)?.resolve(base, &origin)
}

/// Loads a theme by built-in name or file path, over the default theme.
pub fn load_theme(name_or_path: &str) -> Result<ResolvedTheme, ConfigError> {
    let base = default_theme()?;
    if name_or_path == "default" {
        return Ok(base);
    }
    if BUILTIN_THEMES.iter().any(|(n, _)| *n == name_or_path) {
        return builtin(name_or_path, Some(&base));
    }
    let path = Path::new(name_or_path);
    if !path.exists() {
        let names: Vec<&str> = BUILTIN_THEMES.iter().map(|(n, _)| *n).collect();
        return Err(ConfigError::Invalid {
            key: "tui.theme".into(),
            origin: super::Origin::Default,
            message: format!(
                "'{name_or_path}' is neither a built-in theme{} nor an existing file; built-in themes: {}",
                suggest::did_you_mean(name_or_path, names.iter().copied()),
                names.join(", ")
            ),
        });
    }
    let text = super::read_file(path, "theme file")?;
    ThemeSpec::parse(&text, path)?.resolve(Some(&base), path)
}

/// Names of the built-in themes, in cycling order.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN_THEMES.iter().map(|(n, _)| *n).collect()
}
