//! `tui:` — the console's settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `tui:` — the console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TuiConfig {
    /// Theme name (`default`, `daylight`, `high-contrast`, `deep-space`, `mono`) or path to a
    /// theme file.
    pub theme: String,
    /// Upper bound on redraws per second, 1 to 120.
    pub frame_rate: u32,
    /// Key overrides: action name → list of keys (e.g. `quit: ["q", "ctrl-q"]`).
    pub keys: BTreeMap<String, Vec<String>>,
    /// Mouse: a click focuses a pane (or a tab), the wheel scrolls it. Off by default: while
    /// the console holds the mouse the terminal's own text selection needs Shift. `:mouse`
    /// switches it while the console runs.
    pub mouse: bool,
}

impl Default for TuiConfig {
    fn default() -> Self {
        TuiConfig {
            theme: "default".into(),
            frame_rate: 30,
            keys: BTreeMap::new(),
            mouse: false,
        }
    }
}
