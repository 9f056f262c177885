//! The `:` command line: parsing a typed command into view changes and [`Command`]s.

use super::*;

/// The `:` commands: name, arguments, what it does. The help overlay and the error for an
/// unknown command are generated from this table.
pub const COMMAND_TABLE: [(&str, &str, &str); 17] = [
    ("backend", "NAME [MODEL]", "switch backend"),
    ("preset", "PRESET", "switch the link"),
    ("sim", "on|off", "tasks cross the link"),
    ("theme", "NAME", "colour theme"),
    ("priority", "PRIORITY", "for new prompts"),
    ("focus", "PANE", "focus a pane"),
    ("log", "LEVEL", "least severe in Log"),
    ("verify", "", "verify the audit chain"),
    ("cancel", "", "cancel the selected task"),
    ("undo", "[SEQ]", "undo a file tool call"),
    ("policy", "reload", "reload the policy set"),
    ("approve", "TOOL [A=PAT]", "stop asking"),
    ("approvals", "[revoke N]", "list, take back"),
    ("bench", "[F] [N] [LVL]", "run benchmarks"),
    ("mouse", "[on|off]", "clicks and wheel"),
    ("help", "", "this help"),
    ("quit", "", "quit"),
];

/// What `:log` takes, most severe first.
const LOG_LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "all"];

impl App {
    /// Runs a `:` command (see [`COMMAND_TABLE`]).
    pub fn run_command(&mut self, text: &str) -> Vec<Command> {
        const COMMANDS: [&str; COMMAND_TABLE.len()] = {
            let mut names = [""; COMMAND_TABLE.len()];
            let mut i = 0;
            while i < COMMAND_TABLE.len() {
                names[i] = COMMAND_TABLE[i].0;
                i += 1;
            }
            names
        };
        let mut words = text.split_whitespace();
        let Some(name) = words.next() else {
            return Vec::new();
        };
        let arg = words.next();
        let name = name.to_ascii_lowercase();
        if name == "bench" {
            let words: Vec<&str> = arg.into_iter().chain(words).collect();
            return match BenchRequest::parse(&words) {
                Ok(request) => self.start_bench(request),
                Err(e) => {
                    self.flash(e, FlashLevel::Error);
                    Vec::new()
                }
            };
        }
        if name == "approve" {
            let Some(tool) = arg else {
                self.flash(
                    ":approve needs a tool, e.g. :approve mcp:files:write or :approve file_write \
                     path=notes/*.md",
                    FlashLevel::Error,
                );
                return Vec::new();
            };
            let argument = match words.next().map(crate::core::ArgumentPattern::parse) {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    self.flash(format!(":approve: {e}"), FlashLevel::Error);
                    return Vec::new();
                }
            };
            if words.next().is_some() {
                self.flash(
                    ":approve takes a tool and at most one ARG=PATTERN",
                    FlashLevel::Error,
                );
                return Vec::new();
            }
            return vec![Command::Approve {
                tool: tool.to_string(),
                argument,
            }];
        }
        if name == "approvals" {
            return match (arg, words.next()) {
                (None, _) => vec![Command::Approvals],
                (Some("revoke"), Some(n)) if n.parse::<u64>().is_ok() => {
                    vec![Command::RevokeApproval(n.parse().unwrap_or_default())]
                }
                _ => {
                    self.flash(
                        ":approvals lists them; :approvals revoke N takes approval N back",
                        FlashLevel::Error,
                    );
                    Vec::new()
                }
            };
        }
        if name == "backend" {
            return match (arg, words.next()) {
                (Some(backend), model) => vec![Command::SetBackend {
                    backend: backend.to_string(),
                    model: model.map(str::to_string),
                }],
                (None, _) => {
                    self.flash(
                        ":backend needs a name, e.g. :backend openai gpt-4o-mini",
                        FlashLevel::Error,
                    );
                    Vec::new()
                }
            };
        }
        match (name.as_str(), arg) {
            ("preset", Some(p)) => match p.parse::<LatencyPreset>() {
                Ok(preset) => return vec![Command::SetPreset(preset)],
                Err(e) => self.flash(e, FlashLevel::Error),
            },
            ("theme", Some(t)) => match self.themes.iter().position(|th| th.name == t) {
                Some(i) => {
                    self.theme = i;
                    // Success says so, and replaces any stale error.
                    self.flash(format!("theme {t}"), FlashLevel::Info);
                    return vec![Command::SetTheme(i)];
                }
                None => {
                    let names: Vec<&str> = self.themes.iter().map(|th| th.name.as_str()).collect();
                    self.flash(format!("unknown theme '{t}'; themes: {}", names.join(", ")), FlashLevel::Error);
                }
            },
            ("priority", Some(p)) => match p.parse::<Priority>() {
                Ok(priority) => {
                    self.priority = priority;
                    self.flash(
                        format!("prompts go out at priority {}", priority.name()),
                        FlashLevel::Info,
                    );
                }
                Err(e) => self.flash(e, FlashLevel::Error),
            },
            ("focus", Some(p)) => {
                match Pane::ORDER.iter().find(|pane| pane.name().eq_ignore_ascii_case(p)) {
                    Some(&pane) => {
                        self.show_pane(pane);
                        self.flash(format!("{} focused", pane.name()), FlashLevel::Info);
                    }
                    None => {
                        let names: Vec<String> =
                            Pane::ORDER.iter().map(|p| p.name().to_ascii_lowercase()).collect();
                        self.flash(
                            format!("unknown pane '{p}'; panes: {}", names.join(", ")),
                            FlashLevel::Error,
                        );
                    }
                }
            }
            ("log", Some(level)) => {
                use tracing::level_filters::LevelFilter;
                let parsed = match level.to_ascii_lowercase().as_str() {
                    "all" => Ok(LevelFilter::TRACE),
                    other => other.parse::<LevelFilter>(),
                };
                match parsed {
                    Ok(level) if level != LevelFilter::OFF => {
                        self.log_view.level = level;
                        self.log_view.selected = None;
                        let shown = level.to_string().to_ascii_lowercase();
                        self.flash(
                            if level == LevelFilter::TRACE {
                                "Log shows every level".to_string()
                            } else {
                                format!("Log shows {shown} and above")
                            },
                            FlashLevel::Info,
                        );
                    }
                    _ => self.flash(
                        format!("unknown level '{level}'; levels: {}", LOG_LEVELS.join(", ")),
                        FlashLevel::Error,
                    ),
                }
            }
            ("undo", None) => return vec![Command::Undo(None)],
            ("undo", Some(n)) => match n.parse::<u64>() {
                Ok(seq) => return vec![Command::Undo(Some(seq))],
                Err(_) => self.flash(
                    format!(
                        ":undo takes the number of a TOOL_INVOCATION audit entry, e.g. :undo 42, not '{n}'"
                    ),
                    FlashLevel::Error,
                ),
            },
            ("mouse", value) => {
                let on = match value.map(str::to_ascii_lowercase).as_deref() {
                    None => Some(!self.mouse),
                    Some("on") => Some(true),
                    Some("off") => Some(false),
                    Some(_) => None,
                };
                match on {
                    Some(on) => {
                        self.mouse = on;
                        self.flash(
                            if on {
                                "mouse on: a click focuses, the wheel scrolls; Shift-drag selects text (:mouse off gives it back)"
                            } else {
                                "mouse off: the terminal selects text again"
                            },
                            FlashLevel::Info,
                        );
                        return vec![Command::SetMouse(on)];
                    }
                    None => self.flash(
                        format!(":mouse takes on or off, not '{}'", value.unwrap_or_default()),
                        FlashLevel::Error,
                    ),
                }
            }
            ("sim", value) => match value.map(str::to_ascii_lowercase).as_deref() {
                Some("on") => return vec![Command::SetSimulated(true)],
                Some("off") => return vec![Command::SetSimulated(false)],
                other => self.flash(
                    match other {
                        None => ":sim needs on or off, e.g. :sim off".to_string(),
                        Some(_) => format!(
                            ":sim takes on or off, not '{}'",
                            value.unwrap_or_default()
                        ),
                    },
                    FlashLevel::Error,
                ),
            },
            ("policy", value) => match value.map(str::to_ascii_lowercase).as_deref() {
                Some("reload") => return vec![Command::ReloadPolicy],
                _ => self.flash(
                    ":policy reload loads the policy files again (`veyra policy replay` tries a \
                     set against the log first)",
                    FlashLevel::Error,
                ),
            },
            ("verify", None) => return self.update(Action::VerifyAudit),
            ("cancel", None) => return self.update(Action::CancelTask),
            ("help", None) => {
                self.help_page = 0;
                self.overlay = Some(Overlay::Help);
            }
            ("quit" | "q", None) => return self.update(Action::Quit),
            ("preset" | "theme" | "priority" | "focus" | "log", None) => {
                self.flash(format!(":{name} needs a value, e.g. :{name} {}", match name.as_str() {
                    "preset" => "mars",
                    "theme" => "mono",
                    "focus" => "tasks",
                    "log" => "warn",
                    _ => "high",
                }), FlashLevel::Error);
            }
            (known, Some(_)) if COMMANDS.contains(&known) => {
                self.flash(format!(":{known} takes no value"), FlashLevel::Error);
            }
            (unknown, _) => self.flash(
                format!(
                    "unknown command ':{unknown}'{}; commands: {}",
                    crate::config::suggest::did_you_mean(unknown, COMMANDS),
                    COMMANDS.join(", ")
                ),
                FlashLevel::Error,
            ),
        }
        Vec::new()
    }

    /// ↑ (`back`) or ↓ through the command history, into the open command line.
    pub(super) fn recall(&mut self, back: bool) {
        if self.history.is_empty() {
            return;
        }
        let last = self.history.len() - 1;
        let pos = match (self.history_pos, back) {
            (None, true) => Some(last),
            (None, false) => None,
            (Some(0), true) => Some(0),
            (Some(p), true) => Some(p - 1),
            (Some(p), false) if p >= last => None,
            (Some(p), false) => Some(p + 1),
        };
        self.history_pos = pos;
        let text = pos
            .and_then(|p| self.history.get(p))
            .cloned()
            .unwrap_or_default();
        self.command = Some(InputLine {
            cursor: text.chars().count(),
            text,
        });
    }

    /// Tab: completes the command name, or its argument where the values are known (presets,
    /// themes, priorities); with several candidates, completes what they share and lists them.
    pub(super) fn complete(&mut self) {
        let Some(line) = self.command.as_ref() else {
            return;
        };
        let text = line.text.clone();
        let (done, word, candidates): (String, &str, Vec<String>) = match text.split_once(' ') {
            None => (
                String::new(),
                text.as_str(),
                COMMAND_TABLE.iter().map(|c| c.0.to_string()).collect(),
            ),
            Some((name, arg)) if !arg.contains(' ') => {
                let values: Vec<String> = match name {
                    "preset" => LatencyPreset::ALL
                        .iter()
                        .map(|p| p.name().to_string())
                        .collect(),
                    "priority" => Priority::ALL.iter().map(|p| p.name().to_string()).collect(),
                    "log" => LOG_LEVELS.iter().map(|l| l.to_string()).collect(),
                    "focus" => Pane::ORDER
                        .iter()
                        .map(|p| p.name().to_ascii_lowercase())
                        .collect(),
                    "theme" => self.themes.iter().map(|t| t.name.clone()).collect(),
                    "mouse" | "sim" => vec!["on".to_string(), "off".to_string()],
                    "policy" => vec!["reload".to_string()],
                    "bench" => std::iter::once("all".to_string())
                        .chain(
                            crate::benchmarks::FamilyId::ALL
                                .iter()
                                .map(|f| f.name().to_string()),
                        )
                        .collect(),
                    _ => Vec::new(),
                };
                (format!("{name} "), arg, values)
            }
            Some(_) => return,
        };
        let matching: Vec<&String> = candidates.iter().filter(|c| c.starts_with(word)).collect();
        let completed = match matching.as_slice() {
            [] => {
                self.flash(format!("nothing completes '{word}'"), FlashLevel::Info);
                return;
            }
            [one] => format!("{done}{one} "),
            several => {
                let shared = several.iter().skip(1).fold(several[0].clone(), |acc, c| {
                    acc.chars()
                        .zip(c.chars())
                        .take_while(|(a, b)| a == b)
                        .map(|(a, _)| a)
                        .collect()
                });
                self.flash(
                    several
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                    FlashLevel::Info,
                );
                format!("{done}{shared}")
            }
        };
        self.command = Some(InputLine {
            cursor: completed.chars().count(),
            text: completed,
        });
    }
}
