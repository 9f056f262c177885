//! Key bindings as data: each [`Action`] has default keys and a description; the help overlay
//! and the footer are generated from the same table, and `tui.keys` overrides replace an
//! action's keys. Keys route by mode: while the prompt is being edited, editing bindings come
//! first and any other printable key is typed.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::config::{LatencyPreset, suggest};

/// What a key asks the console to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Quit (asks first while tasks run).
    Quit,
    /// Focus the next pane.
    FocusNext,
    /// Focus the previous pane.
    FocusPrev,
    /// Start editing the prompt.
    EditPrompt,
    /// Open the focused item in full (a task, a violation), or edit the prompt elsewhere.
    Open,
    /// Move the selection or scroll up.
    Up,
    /// Move the selection or scroll down.
    Down,
    /// Scroll a page up.
    PageUp,
    /// Scroll a page down.
    PageDown,
    /// Jump to the first task or the top of the output.
    Top,
    /// Jump to the last task or the bottom of the output.
    Bottom,
    /// Follow the output of the newest task on/off.
    ToggleFollow,
    /// Verify the audit chain now.
    VerifyAudit,
    /// Switch to the next theme.
    NextTheme,
    /// Show or hide the help overlay.
    Help,
    /// Zoom the focused pane to the whole body, or back.
    Zoom,
    /// Submit the prompt (editing).
    Submit,
    /// Leave editing or close an overlay.
    Cancel,
    /// Cycle the prompt's priority (editing).
    CyclePriority,
    /// Answer yes to a question.
    Yes,
    /// Answer yes to a tool's confirmation for the rest of the session.
    Always,
    /// Answer no to a question.
    No,
    /// Cancel the selected task (on the Benchmarks pane: the benchmark run).
    CancelTask,
    /// Start a benchmark run with the configuration's `bench:` defaults.
    StartBench,
    /// Switch the link preset.
    Preset(LatencyPreset),
    /// Open the `:` command line.
    CommandLine,
    /// Filter the focused list (`/`).
    Filter,
    /// Copy what the focused pane shows to the clipboard (OSC 52).
    Copy,
    /// Run the typed command.
    RunCommand,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Browsing panes.
    Normal,
    /// Typing in the prompt.
    Editing,
    /// A yes/no question is open.
    Question,
    /// Typing a `:` command.
    Command,
}

/// One row of the binding table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The action.
    pub action: Action,
    /// Config name of the action (`tui.keys`).
    pub name: &'static str,
    /// Mode it applies in.
    pub mode: Mode,
    /// Keys that trigger it.
    pub keys: Vec<KeySpec>,
    /// What it does, for the help overlay.
    pub description: &'static str,
}

/// A key with modifiers, as written in config (`ctrl-c`, `shift-tab`, `q`, `pgup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    /// The key.
    pub code: KeyCode,
    /// Ctrl, Alt (Shift only for named keys).
    pub modifiers: KeyModifiers,
}

impl KeySpec {
    const fn plain(c: char) -> Self {
        KeySpec {
            code: KeyCode::Char(c),
            modifiers: KeyModifiers::NONE,
        }
    }
    const fn named(code: KeyCode) -> Self {
        KeySpec {
            code,
            modifiers: KeyModifiers::NONE,
        }
    }
    const fn ctrl(c: char) -> Self {
        KeySpec {
            code: KeyCode::Char(c),
            modifiers: KeyModifiers::CONTROL,
        }
    }

    /// Parses `ctrl-c`, `alt-x`, `shift-tab`, `enter`, `esc`, `f1`, `q`, `?`.
    pub fn parse(text: &str) -> Result<KeySpec, String> {
        let lower = text.trim().to_ascii_lowercase();
        if lower.is_empty() {
            return Err("an empty key".into());
        }
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = lower.as_str();
        loop {
            if let Some(r) = rest
                .strip_prefix("ctrl-")
                .or_else(|| rest.strip_prefix("c-"))
            {
                modifiers |= KeyModifiers::CONTROL;
                rest = r;
            } else if let Some(r) = rest
                .strip_prefix("alt-")
                .or_else(|| rest.strip_prefix("m-"))
            {
                modifiers |= KeyModifiers::ALT;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("shift-") {
                modifiers |= KeyModifiers::SHIFT;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" if modifiers.contains(KeyModifiers::SHIFT) => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pgup" | "pageup" => KeyCode::PageUp,
            "pgdn" | "pagedown" => KeyCode::PageDown,
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            f if f.starts_with('f')
                && f.len() > 1
                && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) =>
            {
                KeyCode::F(f[1..].parse().unwrap_or(1))
            }
            _ => {
                // Single characters keep their case from the original text ("G" ≠ "g").
                let original = text.trim();
                let suffix = original.get(original.len() - rest.len()..).unwrap_or(rest);
                let mut chars = suffix.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(c),
                    _ => {
                        return Err(format!(
                            "'{text}' is not a key; use e.g. q, ctrl-c, shift-tab, enter, esc, up, pgdn, f1"
                        ));
                    }
                }
            }
        };
        Ok(KeySpec { code, modifiers })
    }

    /// True when the key event is this key.
    pub fn matches(&self, key: &KeyEvent) -> bool {
        let mut mods = key.modifiers;
        // Shift is part of the character for printable keys ('G', '?', ':'), and of BackTab
        // (terminals send `ESC [ Z`, which crossterm reads as BackTab with Shift held).
        if matches!(key.code, KeyCode::Char(_) | KeyCode::BackTab) {
            mods.remove(KeyModifiers::SHIFT);
        }
        let code = match (key.code, self.modifiers.contains(KeyModifiers::CONTROL)) {
            (KeyCode::Char(c), true) => KeyCode::Char(c.to_ascii_lowercase()),
            (c, _) => c,
        };
        code == self.code && mods == self.modifiers
    }
}

/// A pressed key as the help writes keys (`x`, `Ctrl-X`, `F5`, `PgUp`).
pub fn describe_key(key: &KeyEvent) -> String {
    let mut modifiers = key.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
    if !matches!(key.code, KeyCode::Char(_) | KeyCode::BackTab) {
        modifiers |= key.modifiers & KeyModifiers::SHIFT;
    }
    KeySpec {
        code: key.code,
        modifiers,
    }
    .to_string()
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        if self.modifiers.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if self.modifiers.contains(KeyModifiers::CONTROL) => {
                write!(f, "{}", c.to_ascii_uppercase())
            }
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The default binding table.
fn defaults() -> Vec<Binding> {
    use Action::*;
    use KeySpec as K;
    let b = |action, name, mode, keys: Vec<KeySpec>, description| Binding {
        action,
        name,
        mode,
        keys,
        description,
    };
    vec![
        b(
            Quit,
            "quit",
            Mode::Normal,
            vec![K::plain('q'), K::ctrl('c')],
            "quit (asks if busy)",
        ),
        b(
            FocusNext,
            "focus_next",
            Mode::Normal,
            vec![K::named(KeyCode::Tab)],
            "focus next pane",
        ),
        b(
            FocusPrev,
            "focus_prev",
            Mode::Normal,
            vec![K::named(KeyCode::BackTab)],
            "focus previous pane",
        ),
        b(
            Zoom,
            "zoom",
            Mode::Normal,
            vec![K::plain('z')],
            "zoom the pane / back",
        ),
        b(
            EditPrompt,
            "edit_prompt",
            Mode::Normal,
            vec![K::plain('i')],
            "edit the prompt",
        ),
        b(
            Open,
            "open",
            Mode::Normal,
            vec![K::named(KeyCode::Enter)],
            "open the item in full",
        ),
        b(
            Up,
            "up",
            Mode::Normal,
            vec![K::plain('k'), K::named(KeyCode::Up)],
            "up: select / scroll",
        ),
        b(
            Down,
            "down",
            Mode::Normal,
            vec![K::plain('j'), K::named(KeyCode::Down)],
            "down: select / scroll",
        ),
        b(
            PageUp,
            "page_up",
            Mode::Normal,
            vec![K::named(KeyCode::PageUp), K::ctrl('b')],
            "page up",
        ),
        b(
            PageDown,
            "page_down",
            Mode::Normal,
            vec![K::named(KeyCode::PageDown), K::ctrl('f')],
            "page down",
        ),
        b(
            Top,
            "top",
            Mode::Normal,
            vec![K::plain('g'), K::named(KeyCode::Home)],
            "first task / top",
        ),
        b(
            Bottom,
            "bottom",
            Mode::Normal,
            vec![K::plain('G'), K::named(KeyCode::End)],
            "last task / bottom",
        ),
        b(
            ToggleFollow,
            "follow",
            Mode::Normal,
            vec![K::plain('f')],
            "follow newest on/off",
        ),
        b(
            CancelTask,
            "cancel_task",
            Mode::Normal,
            vec![K::plain('c')],
            "cancel task / bench run",
        ),
        b(
            StartBench,
            "start_bench",
            Mode::Normal,
            vec![K::plain('b')],
            "start a benchmark run",
        ),
        b(
            Preset(LatencyPreset::Earth),
            "preset_earth",
            Mode::Normal,
            vec![K::plain('1')],
            "link: earth",
        ),
        b(
            Preset(LatencyPreset::Lunar),
            "preset_lunar",
            Mode::Normal,
            vec![K::plain('2')],
            "link: lunar",
        ),
        b(
            Preset(LatencyPreset::Mars),
            "preset_mars",
            Mode::Normal,
            vec![K::plain('3')],
            "link: mars",
        ),
        b(
            Preset(LatencyPreset::DeepSpace),
            "preset_deep_space",
            Mode::Normal,
            vec![K::plain('4')],
            "link: deep space",
        ),
        b(
            VerifyAudit,
            "verify_audit",
            Mode::Normal,
            vec![K::plain('v')],
            "verify audit chain",
        ),
        b(
            NextTheme,
            "next_theme",
            Mode::Normal,
            vec![K::plain('t')],
            "next theme",
        ),
        b(Help, "help", Mode::Normal, vec![K::plain('?')], "this help"),
        b(
            CommandLine,
            "command_line",
            Mode::Normal,
            vec![K::plain(':')],
            "command line (:help)",
        ),
        b(
            Copy,
            "copy",
            Mode::Normal,
            vec![K::plain('y')],
            "copy (OSC 52)",
        ),
        b(
            Filter,
            "filter",
            Mode::Normal,
            vec![K::plain('/')],
            "filter the list",
        ),
        b(
            RunCommand,
            "run_command",
            Mode::Command,
            vec![K::named(KeyCode::Enter)],
            "run the command",
        ),
        b(
            Cancel,
            "close_command",
            Mode::Command,
            vec![K::named(KeyCode::Esc)],
            "close the command line",
        ),
        b(
            Cancel,
            "close",
            Mode::Normal,
            vec![K::named(KeyCode::Esc)],
            "close overlay",
        ),
        b(
            Submit,
            "submit",
            Mode::Editing,
            vec![K::named(KeyCode::Enter)],
            "send at the priority",
        ),
        b(
            Cancel,
            "leave_editing",
            Mode::Editing,
            vec![K::named(KeyCode::Esc)],
            "stop editing, keep text",
        ),
        b(
            CyclePriority,
            "cycle_priority",
            Mode::Editing,
            vec![K::ctrl('p')],
            "cycle priority",
        ),
        b(
            Quit,
            "quit_editing",
            Mode::Editing,
            vec![K::ctrl('c')],
            "clear draft or quit",
        ),
        b(
            Yes,
            "yes",
            Mode::Question,
            vec![K::plain('y')],
            "answer yes",
        ),
        b(
            Always,
            "always",
            Mode::Question,
            vec![K::plain('a')],
            "yes for this session",
        ),
        b(
            No,
            "no",
            Mode::Question,
            vec![K::plain('n'), K::named(KeyCode::Esc), K::ctrl('c')],
            "answer no",
        ),
    ]
}

/// The effective bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    bindings: Vec<Binding>,
}

impl Default for KeyMap {
    fn default() -> Self {
        KeyMap {
            bindings: defaults(),
        }
    }
}

impl KeyMap {
    /// Defaults with `tui.keys` overrides applied. Unknown action names and unparseable keys are
    /// errors naming the entry.
    pub fn with_overrides(overrides: &BTreeMap<String, Vec<String>>) -> Result<Self, String> {
        let mut map = KeyMap::default();
        for (name, keys) in overrides {
            let names: Vec<&str> = map.bindings.iter().map(|b| b.name).collect();
            let Some(binding) = map.bindings.iter_mut().find(|b| b.name == name) else {
                return Err(format!(
                    "tui.keys: unknown action '{name}'{}; actions: {}",
                    suggest::did_you_mean(name, names.iter().copied()),
                    names.join(", ")
                ));
            };
            let parsed = keys
                .iter()
                .map(|k| KeySpec::parse(k).map_err(|e| format!("tui.keys.{name}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            if parsed.is_empty() {
                return Err(format!("tui.keys.{name}: give at least one key"));
            }
            binding.keys = parsed;
        }
        Ok(map)
    }

    /// The action bound to `key` in `mode`, if any. Key releases are ignored.
    pub fn action(&self, mode: Mode, key: &KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        self.bindings
            .iter()
            .filter(|b| b.mode == mode)
            .find(|b| b.keys.iter().any(|k| k.matches(key)))
            .map(|b| b.action)
    }

    /// Every binding, in table order.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The first key of an action in a mode, as text (for hints).
    pub fn key_hint(&self, mode: Mode, action: Action) -> String {
        self.bindings
            .iter()
            .find(|b| b.mode == mode && b.action == action)
            .and_then(|b| b.keys.first())
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn parses_keys() {
        assert_eq!(KeySpec::parse("ctrl-c").unwrap(), KeySpec::ctrl('c'));
        assert_eq!(
            KeySpec::parse("shift-tab").unwrap(),
            KeySpec::named(KeyCode::BackTab)
        );
        assert_eq!(KeySpec::parse("G").unwrap(), KeySpec::plain('G'));
        assert_eq!(KeySpec::parse("f5").unwrap(), KeySpec::named(KeyCode::F(5)));
        assert!(KeySpec::parse("hyper-x").is_err());
    }

    #[test]
    fn routes_by_mode() {
        let map = KeyMap::default();
        let q = key(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(map.action(Mode::Normal, &q), Some(Action::Quit));
        assert_eq!(map.action(Mode::Editing, &q), None);
        let enter = key(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(map.action(Mode::Editing, &enter), Some(Action::Submit));
        let shifted_g = key(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(map.action(Mode::Normal, &shifted_g), Some(Action::Bottom));
        // `ESC [ Z`, as crossterm reads it: BackTab with Shift held — and without, from
        // terminals that report no modifier.
        for mods in [KeyModifiers::SHIFT, KeyModifiers::NONE] {
            let back = key(KeyCode::BackTab, mods);
            assert_eq!(map.action(Mode::Normal, &back), Some(Action::FocusPrev));
            assert_eq!(describe_key(&back), "Shift-Tab");
        }
    }

    #[test]
    fn overrides_replace_keys_and_reject_unknown_actions() {
        let mut o = BTreeMap::new();
        o.insert("quit".to_string(), vec!["ctrl-q".to_string()]);
        let map = KeyMap::with_overrides(&o).unwrap();
        let ctrl_q = key(KeyCode::Char('q'), KeyModifiers::CONTROL);
        assert_eq!(map.action(Mode::Normal, &ctrl_q), Some(Action::Quit));
        let q = key(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(map.action(Mode::Normal, &q), None);

        let mut bad = BTreeMap::new();
        bad.insert("qiut".to_string(), vec!["x".to_string()]);
        let err = KeyMap::with_overrides(&bad).unwrap_err();
        assert!(err.contains("did you mean 'quit'"), "{err}");
    }
}
