//! `--demo`: the scripted tour. A [`Scenario`] (`configs/scenarios/demo.yaml`, built in, or the
//! operator's own file with `--scenario`) is a list of steps, each acting as an operator
//! would — a prompt, a `:` command line, a key — through the same [`App`] paths the keyboard
//! takes, so the tour runs on the real runtime. The [`Player`] plays them on tokio's clock;
//! the first key the operator presses stops it and leaves the console to them.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use crossterm::event::KeyEvent;
use serde::Deserialize;
use tokio::time::Instant;

use super::app::{App, Command, FlashLevel, Pane};
use super::keymap::{Action, KeySpec, Mode};
use crate::error::VeyraError;
use crate::events::Priority;

/// The built-in scenario's text.
pub const BUILTIN: &str = include_str!("../../configs/scenarios/demo.yaml");
/// What errors call the built-in scenario.
const BUILTIN_NAME: &str = "<built-in configs/scenarios/demo.yaml>";
/// The longest wait one step may ask for.
const MAX_AFTER_SECS: f64 = 600.0;
/// The most steps a scenario may hold.
const MAX_STEPS: usize = 1_000;
/// The largest scenario file read.
const MAX_BYTES: u64 = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioSpec {
    steps: Vec<StepSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    #[serde(default)]
    after: f64,
    #[serde(default)]
    say: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    key: Option<String>,
}

/// What one step does besides what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Send a prompt (at this priority, or the console's).
    Prompt {
        /// The prompt.
        text: String,
        /// Its priority; `None` for the console's current one.
        priority: Option<Priority>,
    },
    /// Run a `:` command line (without the colon).
    Command(String),
    /// Press a key.
    Key(KeySpec),
}

/// One step of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// How long after the previous step (or the start) it plays.
    pub after: Duration,
    /// A line for the status bar.
    pub say: Option<String>,
    /// What it does, if anything besides saying.
    pub act: Option<Act>,
}

/// A demo scenario: its steps, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The steps.
    pub steps: Vec<Step>,
}

impl Scenario {
    /// The scenario built into the binary (`configs/scenarios/demo.yaml`).
    pub fn builtin() -> Result<Self, VeyraError> {
        Self::parse(BUILTIN, BUILTIN_NAME)
    }

    /// Reads a scenario file: a regular file of at most 1 MiB (a FIFO, a device or anything
    /// larger is refused without blocking or reading it whole).
    pub fn load(path: &Path) -> Result<Self, VeyraError> {
        let name = path.display().to_string();
        let text = crate::fsread::read_regular_to_string(path, MAX_BYTES, "demo scenario")
            .map_err(|e| {
                VeyraError::Usage(
                    crate::sanitize::sanitize_line(&format!(
                        "demo scenario {name}: {}{}",
                        e.reason(),
                        if matches!(e, crate::fsread::BoundedReadError::TooLarge { .. }) {
                            "; a scenario is a short list of steps"
                        } else {
                            ""
                        }
                    ))
                    .into_owned(),
                )
            })?;
        Self::parse(&text, &name)
    }

    /// Parses a scenario; `origin` names it in errors, which say the line, or the step, that
    /// is wrong and how to put it right.
    pub fn parse(text: &str, origin: &str) -> Result<Self, VeyraError> {
        let spec: ScenarioSpec = serde_saphyr::from_str(text).map_err(|e| {
            let (at, first) = crate::config::yaml_error_parts(&e);
            let first = first.as_str();
            VeyraError::Usage(crate::sanitize::sanitize_line(&format!(
                "demo scenario {origin}{at}: {first}; a step has `after` (seconds), `say`, and one of `prompt` (with `priority`), `command` or `key`"
            )).into_owned())
        })?;
        if spec.steps.len() > MAX_STEPS {
            return Err(VeyraError::Usage(format!(
                "demo scenario {origin} has {} steps; at most {MAX_STEPS}",
                spec.steps.len()
            )));
        }
        let steps = spec
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                step(s).map_err(|e| {
                    VeyraError::Usage(
                        crate::sanitize::sanitize_line(&format!(
                            "demo scenario {origin}, step {}: {e}",
                            i + 1
                        ))
                        .into_owned(),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Scenario { steps })
    }
}

fn step(s: StepSpec) -> Result<Step, String> {
    if !s.after.is_finite() || !(0.0..=MAX_AFTER_SECS).contains(&s.after) {
        return Err(format!(
            "`after: {}` is not a wait; use seconds from 0 to {MAX_AFTER_SECS}",
            s.after
        ));
    }
    if s.priority.is_some() && s.prompt.is_none() {
        return Err("`priority` goes with a `prompt`".into());
    }
    let mut acts = Vec::new();
    if let Some(text) = s.prompt {
        if text.trim().is_empty() {
            return Err("the `prompt` is empty".into());
        }
        acts.push(Act::Prompt {
            text,
            priority: s.priority,
        });
    }
    if let Some(line) = s.command {
        let line = line.trim().trim_start_matches(':').to_string();
        if line.is_empty() {
            return Err("the `command` is empty; write it as typed after `:`, e.g. verify".into());
        }
        scripted_command_allowed(&line)?;
        acts.push(Act::Command(line));
    }
    if let Some(key) = s.key {
        let spec = KeySpec::parse(&key)?;
        // Told at load where the default bindings show it; the console's own bindings are
        // checked again as the key plays ([`press_scripted_key`]).
        let event = KeyEvent::new(spec.code, spec.modifiers);
        if let Some(action) = super::keymap::KeyMap::default().action(Mode::Normal, &event)
            && let Err(why) = scripted_action_allowed(action, Pane::Output)
        {
            return Err(format!("a scenario may not press `{key}`: {why}"));
        }
        acts.push(Act::Key(spec));
    }
    if acts.len() > 1 {
        return Err("a step does one thing: a `prompt`, a `command` or a `key`".into());
    }
    let act = acts.pop();
    if act.is_none() && s.say.is_none() {
        return Err("the step does nothing; give it a `say`, `prompt`, `command` or `key`".into());
    }
    Ok(Step {
        after: Duration::from_secs_f64(s.after),
        say: s.say,
        act,
    })
}

/// The `:` commands a scenario may run. A tour shows; it does not act for the operator where it
/// would matter: no `:backend` (it would send prompts to another server), no `:undo` (it would
/// change files), no `:cancel` or `:quit` (the operator's tasks and console are theirs).
const SCRIPTED_COMMANDS: [&str; 8] = [
    "preset", "theme", "priority", "focus", "log", "verify", "bench", "help",
];

/// `Ok` when a scenario may run the `:` command `line` (without the colon).
fn scripted_command_allowed(line: &str) -> Result<(), String> {
    let name = line
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if SCRIPTED_COMMANDS.contains(&name.as_str()) {
        return Ok(());
    }
    let why = match name.as_str() {
        "backend" => "it would send the tour's prompts to another backend",
        "undo" => "it would change files for the operator",
        "policy" => "it would change what the runtime allows",
        "approve" | "approvals" => "approvals are the operator's to give and take back",
        "cancel" | "quit" => "the operator's tasks and console are theirs to stop",
        _ => "it is not one a tour may use",
    };
    Err(format!(
        "a scenario may not run `:{name}`: {why} (a scenario may run :{})",
        SCRIPTED_COMMANDS.join(", :")
    ))
}

/// Whether a scenario's key may do `action` (in the browsing mode, the only one a scripted
/// key is pressed in). Keys never open the prompt editor or the `:` command line — a script
/// sends prompts with `prompt:` and runs only the allowed `command:`s — never answer a
/// question, and never stop the operator's tasks or console.
fn scripted_action_allowed(action: Action, focus: Pane) -> Result<(), &'static str> {
    match action {
        Action::FocusNext
        | Action::FocusPrev
        | Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::Top
        | Action::Bottom
        | Action::ToggleFollow
        | Action::VerifyAudit
        | Action::NextTheme
        | Action::Help
        | Action::Zoom
        | Action::Cancel
        | Action::StartBench
        | Action::Preset(_)
        | Action::Copy => Ok(()),
        // On the Prompt, Open edits it.
        Action::Open if focus == Pane::Prompt => {
            Err("it would open the prompt editor; send prompts with `prompt:`")
        }
        Action::Open => Ok(()),
        Action::EditPrompt | Action::Submit | Action::CyclePriority => {
            Err("it would open the prompt editor; send prompts with `prompt:`")
        }
        Action::CommandLine | Action::RunCommand | Action::Filter => {
            Err("it would open an input line; run commands with `command:`")
        }
        Action::Yes | Action::Always | Action::No => Err("questions are the operator's to answer"),
        Action::Quit | Action::CancelTask => {
            Err("the operator's tasks and console are theirs to stop")
        }
    }
}

/// Presses a scenario's key as the operator's keyboard would, but only where
/// [`scripted_action_allowed`] says a script may act; the key must leave the console browsing
/// panes (whatever route a key binding takes, a script never ends up typing).
fn press_scripted_key(app: &mut App, key: KeySpec, now: Instant) -> Result<Vec<Command>, String> {
    let shown = super::keymap::describe_key(&KeyEvent::new(key.code, key.modifiers));
    let refused = |why: &str| format!("the scenario's key {shown} was not pressed: {why}");
    if app.mode() != Mode::Normal {
        return Err(refused("the console is not browsing panes"));
    }
    let event = KeyEvent::new(key.code, key.modifiers);
    if let Some(action) = app.keymap().action(Mode::Normal, &event) {
        scripted_action_allowed(action, app.focus()).map_err(refused)?;
    }
    let commands = app.handle_key_at(&event, now);
    if app.mode() != Mode::Normal {
        // A binding this check did not foresee opened an input: close it, unused.
        app.close_inputs();
        return Err(refused(
            "it opened an input line, which a script may not type into",
        ));
    }
    Ok(commands)
}

/// Plays a [`Scenario`] into an [`App`] on tokio's clock.
#[derive(Debug)]
pub struct Player {
    steps: VecDeque<Step>,
    due: Instant,
}

impl Player {
    /// A player whose first step is due its `after` from `now`.
    pub fn new(scenario: Scenario, now: Instant) -> Self {
        let steps: VecDeque<Step> = scenario.steps.into();
        let due = now + steps.front().map_or(Duration::ZERO, |s| s.after);
        Player { steps, due }
    }

    /// When the next step is due; `None` once every step has played (or the player stopped).
    pub fn due(&self) -> Option<Instant> {
        (!self.steps.is_empty()).then_some(self.due)
    }

    /// Plays every step due by `now`, in order, through `app`; returns the commands they give
    /// (for the console to carry out, as it does a key's).
    pub fn play(&mut self, app: &mut App, now: Instant) -> Vec<Command> {
        let mut commands = Vec::new();
        while !self.steps.is_empty() && self.due <= now {
            let Some(step) = self.steps.pop_front() else {
                break;
            };
            if let Some(next) = self.steps.front() {
                self.due += next.after;
            }
            let before = app.flash_message().as_ref().map(|f| f.text.clone());
            match step.act {
                None => {}
                Some(Act::Prompt { text, priority }) => commands.push(Command::Submit {
                    prompt: text,
                    priority: priority.unwrap_or(app.priority()),
                }),
                // Checked again as it plays: the allow-list holds however the step was made.
                Some(Act::Command(line)) => match scripted_command_allowed(&line) {
                    Ok(()) => commands.extend(app.run_command(&line)),
                    Err(why) => app.flash(format!("demo: {why}"), FlashLevel::Error),
                },
                // Confirmations are the operator's alone (a benchmark run's plan too): with one
                // waiting, a scripted key could answer it, so the script presses nothing until
                // it is answered.
                Some(Act::Key(_))
                    if app.confirm().is_some()
                        || !app.confirmations().is_empty()
                        || app.bench_question().is_some() =>
                {
                    app.flash(
                        "demo: a confirmation is waiting for you; the script never answers one",
                        FlashLevel::Info,
                    );
                    continue;
                }
                Some(Act::Key(key)) => match press_scripted_key(app, key, now) {
                    Ok(given) => commands.extend(given),
                    Err(why) => app.flash(format!("demo: {why}"), FlashLevel::Error),
                },
            }
            // The story's line replaces what the act said of itself ("Output focused"), but
            // not an error the act just raised: a scenario's mistake must be seen.
            let failed = app.flash_message().as_ref().is_some_and(|f| {
                f.level == FlashLevel::Error && before.as_deref() != Some(f.text.as_str())
            });
            if let Some(say) = &step.say
                && !failed
            {
                app.flash(
                    crate::sanitize::sanitize_line(say).into_owned(),
                    FlashLevel::Info,
                );
            }
        }
        commands
    }

    /// The operator pressed a key: the script stops (saying so) and the console is theirs.
    pub fn stop(&mut self, app: &mut App) {
        if !self.steps.is_empty() {
            self.steps.clear();
            app.flash(
                "demo script stopped: the console is yours (? for help)",
                FlashLevel::Info,
            );
        }
    }
}

#[cfg(test)]
mod tests;
