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
            let at = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            let message = e.without_snippet().to_string();
            let first = message.lines().next().unwrap_or_default();
            let first = first.rfind(" at line ").map_or(first, |i| &first[..i]);
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
                // Confirmations are the operator's alone: with one waiting, a scripted key
                // could answer it, so the script presses nothing until it is answered.
                Some(Act::Key(_)) if app.confirm().is_some() || !app.confirmations().is_empty() => {
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
mod tests {
    use super::*;

    #[test]
    fn the_builtin_scenario_parses_and_tells_a_story_in_under_a_minute() {
        let s = Scenario::builtin().expect("the built-in scenario parses");
        let total: Duration = s.steps.iter().map(|s| s.after).sum();
        assert!(total < Duration::from_secs(60), "{total:?}");
        let acts: Vec<&Act> = s.steps.iter().filter_map(|s| s.act.as_ref()).collect();
        assert!(
            acts.iter()
                .any(|a| matches!(a, Act::Command(c) if c.starts_with("bench")))
        );
        assert!(
            acts.iter()
                .any(|a| matches!(a, Act::Command(c) if c == "verify"))
        );
        assert!(
            acts.iter()
                .filter(|a| matches!(a, Act::Prompt { .. }))
                .count()
                >= 4
        );
    }

    fn flash(app: &App) -> String {
        app.flash_message()
            .as_ref()
            .map(|f| f.text.clone())
            .unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn steps_play_in_order_when_due_through_the_app_and_the_operator_stops_the_rest() {
        let scenario = Scenario::parse(
            "steps:\n  - say: hello\n  - after: 2\n    prompt: one\n    priority: high\n  \
             - after: 1\n    command: ':priority low'\n  - after: 1\n    prompt: two\n  \
             - after: 5\n    key: z\n",
            "t.yaml",
        )
        .expect("parses");
        let mut app = crate::tui::app::tests::app();
        let start = Instant::now();
        let mut player = Player::new(scenario, start);
        assert_eq!(player.due(), Some(start));
        assert!(player.play(&mut app, start).is_empty());
        assert_eq!(flash(&app), "hello");
        assert_eq!(player.due(), Some(start + Duration::from_secs(2)));
        // Nothing is due a second in.
        assert!(
            player
                .play(&mut app, start + Duration::from_secs(1))
                .is_empty()
        );
        // Four seconds in, three steps are due: played in order, the command between the
        // prompts changing the second one's priority as typed `:priority low` would.
        let commands = player.play(&mut app, start + Duration::from_secs(4));
        assert_eq!(
            commands,
            vec![
                Command::Submit {
                    prompt: "one".into(),
                    priority: Priority::High
                },
                Command::Submit {
                    prompt: "two".into(),
                    priority: Priority::Low
                },
            ]
        );
        assert_eq!(player.due(), Some(start + Duration::from_secs(9)));
        // The operator presses a key: the rest never plays.
        player.stop(&mut app);
        assert!(
            flash(&app).contains("demo script stopped"),
            "{}",
            flash(&app)
        );
        assert_eq!(player.due(), None);
        assert!(!app.zoom());
        assert!(
            player
                .play(&mut app, start + Duration::from_secs(60))
                .is_empty()
        );
        assert!(!app.zoom(), "a stopped script pressed its key");
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_says_its_line_over_the_acts_own_feedback_but_never_over_its_error() {
        let scenario = Scenario::parse(
            "steps:\n  - say: the story\n    command: focus audit\n  \
             - after: 1\n    say: hidden\n    command: focus nowhere\n",
            "t.yaml",
        )
        .expect("parses");
        let mut app = crate::tui::app::tests::app();
        let now = Instant::now();
        let mut player = Player::new(scenario, now);
        player.play(&mut app, now);
        assert_eq!(flash(&app), "the story");
        player.play(&mut app, now + Duration::from_secs(1));
        assert!(
            flash(&app).starts_with("unknown pane 'nowhere'"),
            "{}",
            flash(&app)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_scripted_key_never_answers_a_confirmation() {
        // `y` then `a` a little later: both would answer the modal if pressed.
        let scenario = Scenario::parse(
            "steps:\n  - after: 1\n    key: y\n  - after: 1\n    key: a\n",
            "t.yaml",
        )
        .expect("parses");
        let mut app = crate::tui::app::tests::app();
        let start = Instant::now();
        app.apply(crate::events::Event::ConfirmationRequested {
            request: 7,
            id: crate::events::ExecutionId::new(),
            operation: "tool:file_write".into(),
            reason: "'tool:file_write' is in governance.require_confirmation".into(),
            detail: None,
            scopable: true,
        });
        // Open, and past its guard interval: a real key now would answer it.
        app.settle_confirmation(start);
        assert!(app.confirm().is_some());
        let mut player = Player::new(scenario, start);
        let commands = player.play(&mut app, start + Duration::from_secs(5));
        assert!(
            !commands.iter().any(|c| matches!(c, Command::Answer { .. })),
            "{commands:?}"
        );
        assert!(app.confirm().is_some(), "the modal is still open");
        assert!(flash(&app).contains("never answers"), "{}", flash(&app));
    }

    #[test]
    fn a_scenario_may_not_switch_the_backend_or_undo() {
        for (line, why) in [
            ("backend openai gpt-4o", "another backend"),
            (":undo 3", "change files"),
        ] {
            let text = format!("steps:\n  - command: '{line}'\n");
            let e = Scenario::parse(&text, "t.yaml")
                .expect_err(line)
                .to_string();
            assert!(e.contains("may not run") && e.contains(why), "{e}");
        }
    }

    #[test]
    fn a_scenario_may_run_only_the_allowed_commands_however_they_are_written() {
        for line in [
            "backend openai x",
            ":undo 3",
            "  BACKEND mock",
            "cancel",
            "quit",
        ] {
            let text = format!("steps:\n  - command: '{line}'\n");
            let e = Scenario::parse(&text, "t.yaml")
                .expect_err(line)
                .to_string();
            assert!(e.contains("may not run"), "{line}: {e}");
        }
        for key in [":", "i", "/", "q", "ctrl-c", "c"] {
            let text = format!("steps:\n  - key: '{key}'\n");
            let e = Scenario::parse(&text, "t.yaml").expect_err(key).to_string();
            assert!(e.contains("may not press"), "{key}: {e}");
        }
    }

    /// The route the issue found: `:`, the letters of `backend openai x` and Enter as `key:`
    /// steps. With the console's keys rebound so that the load-time check cannot see it (`x`
    /// opens the command line), the keys still never open an input, so nothing is typed and
    /// no backend switch is ever asked for.
    #[tokio::test(start_paused = true)]
    async fn scripted_keys_never_open_the_command_line_or_the_prompt_by_any_binding() {
        let mut overrides = std::collections::BTreeMap::new();
        overrides.insert("command_line".to_string(), vec!["x".to_string()]);
        overrides.insert("edit_prompt".to_string(), vec!["e".to_string()]);
        let keymap = super::super::keymap::KeyMap::with_overrides(&overrides).expect("valid keys");
        for opener in ["x", "e", "enter"] {
            // Built as steps, not parsed: the load-time check refuses `c` and `b` (in
            // "backend") by the default bindings, and this is about what plays.
            let mut keys = vec![opener.to_string()];
            keys.extend("backend openai x".chars().map(|c| match c {
                ' ' => "space".to_string(),
                c => c.to_string(),
            }));
            keys.push("enter".into());
            let mut steps = vec![Step {
                after: Duration::ZERO,
                say: None,
                act: Some(Act::Command("focus prompt".into())),
            }];
            steps.extend(keys.iter().map(|k| Step {
                after: Duration::ZERO,
                say: None,
                act: Some(Act::Key(KeySpec::parse(k).expect("a key name"))),
            }));
            let scenario = Scenario { steps };
            let mut app = crate::tui::app::tests::app();
            app.set_keymap(keymap.clone());
            let now = Instant::now();
            let mut player = Player::new(scenario, now);
            let commands = player.play(&mut app, now);
            assert!(
                !commands
                    .iter()
                    .any(|c| matches!(c, Command::SetBackend { .. } | Command::Submit { .. })),
                "{opener}: {commands:?}"
            );
            assert_eq!(app.mode(), Mode::Normal, "{opener}");
            assert!(app.input().text.is_empty(), "{opener}: nothing was typed");
            let said = flash(&app);
            assert!(said.contains("was not pressed"), "{opener}: {said}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_step_acts_as_the_key_would() {
        let scenario = Scenario::parse("steps:\n  - key: z\n", "t.yaml").expect("parses");
        let mut app = crate::tui::app::tests::app();
        let now = Instant::now();
        let mut player = Player::new(scenario, now);
        assert!(player.play(&mut app, now).is_empty());
        assert!(app.zoom(), "z zooms the focused pane");
        // Stopping a finished script says nothing.
        app.clear_flash();
        player.stop(&mut app);
        assert!(app.flash_message().is_none());
    }

    #[test]
    fn the_demo_adds_its_script_and_refusals_never_lifts_one_and_answers_every_prompt() {
        let mut config = crate::config::VeyraConfig::default();
        config.governance.prohibited_operations = vec!["tool:calculator".into()];
        config.governance.require_confirmation = vec!["TOOL:FILE_WRITE".into()];
        crate::tui::apply_demo(&mut config).expect("the built-in demo configuration parses");
        let g = &config.governance;
        assert!(
            g.prohibited_operations
                .iter()
                .any(|o| o == "tool:calculator")
        );
        assert!(
            g.prohibited_operations
                .iter()
                .any(|o| o == "tool:file_delete")
        );
        assert!(g.prohibited_operations.iter().any(|o| o == "delete_all"));
        let confirmed = g
            .require_confirmation
            .iter()
            .filter(|o| o.eq_ignore_ascii_case("tool:file_write"))
            .count();
        assert_eq!(confirmed, 1, "{:?}", g.require_confirmation);
        assert!(config.latency.simulate);
        assert_eq!(
            config.model.backend, "mock",
            "a tour never calls a paid API"
        );
        assert_eq!(
            config.governance.store,
            crate::config::AuditStoreKind::Memory,
            "the tour stays out of the durable trail"
        );
        // Every prompt of the tour has a scripted answer.
        let rules: Vec<regex::Regex> = config
            .model
            .mock
            .script
            .iter()
            .map(|r| regex::Regex::new(&r.pattern).expect("the demo's patterns compile"))
            .collect();
        for step in Scenario::builtin().expect("parses").steps {
            if let Some(Act::Prompt { text, .. }) = step.act {
                assert!(
                    rules.iter().any(|r| r.is_match(&text)),
                    "no answer for {text:?}"
                );
            }
        }
        // A mock with a script of its own keeps it.
        let mut own = config.clone();
        own.model.mock.script.truncate(1);
        crate::tui::apply_demo(&mut own).expect("parses");
        assert_eq!(own.model.mock.script.len(), 1);
    }

    #[test]
    fn the_demo_plays_on_its_own_date_unless_the_configuration_names_one() {
        let mut config = crate::config::VeyraConfig::default();
        crate::tui::apply_demo(&mut config).expect("parses");
        let start = config.latency.start.expect("the demo pins the link's date");
        assert_eq!(start.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        // On that date the tour's link is clear and its delay the one it was written for.
        let report = crate::runtime::latency::link_report(
            crate::config::LatencyPreset::Mars,
            start,
            &config.latency,
        )
        .expect("in the ephemeris's years");
        assert_eq!(
            report.conjunction,
            crate::runtime::latency::Conjunction::Clear
        );
        let minutes = report.one_way.as_secs_f64() / 60.0;
        assert!((9.7..9.9).contains(&minutes), "{minutes}");
        // A date of the operator's own is kept.
        let mut own = crate::config::VeyraConfig::default();
        let date = "2026-01-09T00:00:00Z".parse().expect("RFC 3339");
        own.latency.start = Some(date);
        crate::tui::apply_demo(&mut own).expect("parses");
        assert_eq!(own.latency.start, Some(date));
    }

    #[test]
    fn bad_steps_are_refused_with_the_step_and_what_to_write() {
        let cases = [
            ("steps:\n  - after: -1\n    say: x\n", "step 1: `after: -1`"),
            ("steps:\n  - after: .inf\n    say: x\n", "is not a wait"),
            (
                "steps:\n  - say: a\n  - after: 1\n",
                "step 2: the step does nothing",
            ),
            (
                "steps:\n  - prompt: hi\n    command: verify\n",
                "a step does one thing",
            ),
            (
                "steps:\n  - priority: high\n    say: x\n",
                "`priority` goes with",
            ),
            ("steps:\n  - key: ctrl-nope\n", "is not a key"),
            ("steps:\n  - command: ':'\n", "the `command` is empty"),
            (
                "steps:\n  - prompt: hi\n    priority: urgent\n",
                "demo scenario t.yaml:",
            ),
            ("steps:\n  - sey: hi\n", "demo scenario t.yaml:2"),
            ("nothing: here\n", "demo scenario t.yaml"),
        ];
        for (text, want) in cases {
            let e = Scenario::parse(text, "t.yaml").expect_err(text).to_string();
            assert!(e.contains(want), "{text:?} gave {e}");
        }
    }

    #[test]
    fn hostile_text_in_a_scenario_error_is_neutralised() {
        let e = Scenario::parse("steps:\n  - key: \"\\e]52;c;eA==\\a\"\n", "t\u{1b}[2J.yaml")
            .expect_err("not a key")
            .to_string();
        assert!(!e.contains('\u{1b}'), "{e:?}");
        assert!(!e.contains('\u{7}'), "{e:?}");
    }

    #[test]
    fn a_huge_scenario_file_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("big.yaml");
        std::fs::write(&path, "#".repeat((MAX_BYTES + 10) as usize)).expect("written");
        let e = Scenario::load(&path).expect_err("too big").to_string();
        assert!(e.contains("larger than 1 MiB"), "{e}");
        let e = Scenario::load(&dir.path().join("missing.yaml"))
            .expect_err("missing")
            .to_string();
        assert!(e.contains("missing.yaml"), "{e}");
        // A FIFO nobody writes to, and an endless device behind a symlink: refused at once.
        let fifo = dir.path().join("fifo.yaml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let e = Scenario::load(&fifo).expect_err("a FIFO").to_string();
        assert!(e.contains("FIFO") && e.contains("regular file"), "{e}");
        let zero = dir.path().join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlinked");
        let e = Scenario::load(&zero).expect_err("a device").to_string();
        assert!(e.contains("zero.yaml") && e.contains("regular file"), "{e}");
    }
}
