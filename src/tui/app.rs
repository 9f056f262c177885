//! The console's view state and the only ways it changes: [`App::update`] with an [`Action`]
//! from the keyboard (and [`App::handle_mouse`], [`App::paste`]), [`App::apply`] with an
//! [`Event`] from the core, and the loop's few reports (the clock, the screen's size, a detail
//! read in the background; `reports.rs`). Keys are routed and acted on in `keys.rs`, events
//! folded in `fold.rs`. Its fields are private: renderers read them through `read.rs`. None
//! of this touches the core: `update` returns [`Command`]s that the loop in `mod.rs` sends.
//!
//! Untrusted text enters the view here and only here, and passes the sanitizer on the way in
//! (DESIGN §7): every string of an event, every flash message and every typed or pasted
//! character. What the panes draw from this state therefore never holds a byte a terminal acts
//! on; the console's own styling is added by the panes, after.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;

use super::keymap::{Action, KeyMap, Mode};
use super::output::{self, Anchor, LineKind, OutputBuffer};
use crate::config::{LatencyPreset, ResolvedTheme};
use crate::events::{ConfirmScope, Event, ExecutionId, FinishReason, Priority, TaskStatus};

/// Panes that take focus, in `Tab` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pane {
    /// Task list.
    Tasks,
    /// Output of the selected task.
    Output,
    /// Log lines.
    Log,
    /// The audit trail.
    Audit,
    /// Safety violations.
    Safety,
    /// The benchmark run and past V-Scores.
    Benchmarks,
    /// The prompt input line.
    Prompt,
}

impl Pane {
    /// Every pane, in focus order (Tab).
    pub const ORDER: [Pane; 7] = [
        Pane::Tasks,
        Pane::Output,
        Pane::Benchmarks,
        Pane::Log,
        Pane::Audit,
        Pane::Safety,
        Pane::Prompt,
    ];

    /// The pane's title.
    pub fn name(self) -> &'static str {
        match self {
            Pane::Tasks => "Tasks",
            Pane::Output => "Output",
            Pane::Log => "Log",
            Pane::Audit => "Audit",
            Pane::Safety => "Safety",
            Pane::Benchmarks => "Benchmarks",
            Pane::Prompt => "Prompt",
        }
    }

    fn step(self, forward: bool) -> Pane {
        let i = Self::ORDER.iter().position(|p| *p == self).unwrap_or(0);
        let n = Self::ORDER.len();
        Self::ORDER[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }
}

/// What the console asks of the core or the loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run a prompt.
    Submit {
        /// The prompt.
        prompt: String,
        /// Its priority.
        priority: Priority,
    },
    /// Verify the audit chain.
    VerifyAudit,
    /// Switch to the theme at this index of the theme list.
    SetTheme(usize),
    /// Take the mouse (clicks and wheel) or give it back to the terminal.
    SetMouse(bool),
    /// Cancel a task.
    Cancel(ExecutionId),
    /// Switch the link preset.
    SetPreset(LatencyPreset),
    /// Switch the simulated link on or off (`:sim on|off`).
    SetSimulated(bool),
    /// Load the policy set again and put it in force (`:policy reload`).
    ReloadPolicy,
    /// Show the standing approvals (`:approvals`).
    Approvals,
    /// Allow a tool without asking until the console closes (`:approve TOOL [ARG=PATTERN]`).
    Approve {
        /// The tool, by its registered name.
        tool: String,
        /// Only calls whose argument matches.
        argument: Option<crate::core::ArgumentPattern>,
    },
    /// Take back a standing approval (`:approvals revoke N`).
    RevokeApproval(u64),
    /// Switch the backend (and model) for prompts sent from now on.
    SetBackend {
        /// Registered backend name.
        backend: String,
        /// Model; the configured one when `None`.
        model: Option<String>,
    },
    /// Answer a confirmation.
    Answer {
        /// The request.
        request: u64,
        /// Yes or no.
        allowed: bool,
        /// How far a yes reaches.
        scope: ConfirmScope,
    },
    /// Explain the rule that decided a violation: its policy's text, or the boundary rule.
    ExplainRule {
        /// The violation, as the Safety pane shows it (the rule is `policy:ID` or a
        /// boundary rule's name).
        violation: ViolationLine,
    },
    /// Read audit entry `seq` in full (with its inclusion proof) and show it.
    OpenAuditEntry(u64),
    /// Put this text on the terminal's clipboard (OSC 52, so it works over SSH).
    Copy(String),
    /// Undo a file tool call: the one in this audit entry, or the newest not yet undone.
    Undo(Option<u64>),
    /// Start a benchmark run.
    StartBench(BenchRequest),
    /// Work out a run's plan for the operator to approve (answered with
    /// [`BenchUpdate::Plan`]).
    PlanBench(BenchRequest),
    /// Cancel the console's benchmark run.
    CancelBench,
    /// Leave the console.
    Quit,
    /// Host a runtime in this console, the one it was attached to being gone.
    HostHere,
}

/// Everything the console shows.
#[derive(Debug)]
pub struct App {
    /// Tasks in submission order.
    tasks: Vec<TaskView>,
    index: HashMap<ExecutionId, usize>,
    /// Ended tasks dropped past [`TASKS_KEEP`], oldest first.
    tasks_dropped: u64,
    /// Index of the selected task.
    selected: Option<usize>,
    /// Focused pane.
    focus: Pane,
    /// Typing in the prompt.
    editing: bool,
    /// The prompt text.
    input: InputLine,
    /// Priority the next prompt is submitted at.
    priority: Priority,
    /// Follow the newest task and the bottom of its output.
    follow: bool,
    /// The focused pane fills the body ([`App::zoomed`]).
    zoom: bool,
    /// `:` commands run, oldest first (kept across runs in the state directory).
    history: Vec<String>,
    /// Where ↑/↓ is in `history` while the command line is open.
    history_pos: Option<usize>,
    /// While the command line is open as a `/` filter: the list it filters.
    filtering: Option<Pane>,
    /// Each list's filter (Tasks, Audit, Safety): a substring, case-insensitive; `!x` keeps
    /// the rows without `x`.
    filters: HashMap<Pane, String>,
    /// The help overlay's page: 0 keys, 1 panes, glyphs and commands.
    help_page: usize,
    /// Rows the help is scrolled by, where the screen is too short for it.
    help_scroll: usize,
    /// Rows a detail overlay is scrolled by.
    detail_scroll: usize,
    /// The Audit pane's selection and window.
    audit_pick: Pick,
    /// The Safety pane's selection and window.
    safety_pick: Pick,
    /// The Log pane: its records, selection and level.
    log_view: LogView,
    /// Output view anchor; `None` shows the bottom.
    output_anchor: Option<Anchor>,
    /// Size of the Output pane's text area (set by the loop after layout).
    output_size: (u16, u16),
    /// Rows of the Tasks pane's list (set by the loop after layout).
    tasks_rows: u16,
    /// Rows inside the focused pane (set with `tasks_rows`): a page of Log, Audit or Safety.
    pane_rows: u16,
    /// Columns inside the focused pane (set with `pane_rows`): where Safety wraps its rows.
    pane_width: u16,
    /// The screen's size (set with the panes'): what a detail overlay has to show its lines.
    screen: (u16, u16),
    /// Open modal.
    overlay: Option<Overlay>,
    /// Backend and link.
    link: LinkView,
    /// Audit summary.
    audit: AuditView,
    /// Status message.
    flash: Option<Flash>,
    /// Current time, set on every tick.
    now: DateTime<Utc>,
    /// Key bindings.
    keymap: KeyMap,
    /// Themes to cycle through with their names.
    themes: Vec<ResolvedTheme>,
    /// Index of the current theme.
    theme: usize,
    /// Events missed because the console fell behind.
    missed_events: u64,
    /// Safety violations, newest last.
    violations: std::collections::VecDeque<ViolationLine>,
    /// Total violations seen.
    violation_count: u64,
    /// Confirmations waiting, oldest first.
    confirmations: std::collections::VecDeque<PendingConfirmation>,
    /// The confirmation modal, when it is open. Requests wait unanswered without it: a request
    /// arriving while the operator types only announces itself (status bar, Safety badge,
    /// bell), and the modal opens once the operator leaves the prompt.
    confirm: Option<ConfirmModal>,
    /// Keys arriving this soon after the modal opens are ignored ([`CONFIRM_GUARD`]).
    confirm_guard: std::time::Duration,
    /// Ring the terminal bell after the next frame (a confirmation wants attention).
    bell: bool,
    /// The `:` command being typed, when the command line is open.
    command: Option<InputLine>,
    /// The Benchmarks pane's run and history.
    bench: BenchView,
    /// Where Output and Benchmarks share a place (narrow screens): true shows Benchmarks.
    bench_tab: bool,
    /// The pane shown while the Prompt has focus on a small screen, where the panes are
    /// tabs: the last one focused.
    tab: Pane,
    /// The console takes mouse events (`tui.mouse`, `:mouse`).
    mouse: bool,
    /// Set when the console should exit.
    quit: bool,
    /// Where the runtime is, for the status bar: `attached pid N`, or `serving · N clients`
    /// while this console hosts a runtime others attach to.
    peer: Option<String>,
    /// The runtime is another process's: quitting this console cancels nothing of it.
    attached: bool,
    /// The console is over a fleet (`veyra attach nats://…`): each worker keeps its own audit
    /// trail, so the status bar says so rather than `audit off`.
    fleet: bool,
}

impl App {
    /// A console with no tasks.
    pub fn new(
        link: LinkView,
        audit_enabled: bool,
        keymap: KeyMap,
        themes: Vec<ResolvedTheme>,
        now: DateTime<Utc>,
    ) -> Self {
        App {
            tasks: Vec::new(),
            index: HashMap::new(),
            tasks_dropped: 0,
            selected: None,
            focus: Pane::Prompt,
            zoom: false,
            history: Vec::new(),
            history_pos: None,
            filtering: None,
            filters: HashMap::new(),
            help_page: 0,
            help_scroll: 0,
            detail_scroll: 0,
            audit_pick: Pick::default(),
            safety_pick: Pick::default(),
            log_view: LogView::default(),
            editing: false,
            input: InputLine::default(),
            priority: Priority::Normal,
            follow: true,
            output_anchor: None,
            output_size: (0, 0),
            tasks_rows: 0,
            pane_rows: 0,
            pane_width: 0,
            screen: (0, 0),
            overlay: None,
            link,
            audit: AuditView {
                enabled: audit_enabled,
                entries: 0,
                head: crate::governance::GENESIS_PREV_HASH.to_string(),
                verification: Verification::Never,
                recent: std::collections::VecDeque::new(),
                signs_checkpoints: false,
                checkpoint: None,
            },
            flash: None,
            now,
            keymap,
            themes,
            theme: 0,
            missed_events: 0,
            violations: std::collections::VecDeque::new(),
            violation_count: 0,
            confirmations: std::collections::VecDeque::new(),
            confirm: None,
            confirm_guard: CONFIRM_GUARD,
            bell: false,
            command: None,
            bench: BenchView::default(),
            bench_tab: false,
            tab: Pane::Output,
            mouse: false,
            quit: false,
            peer: None,
            attached: false,
            fleet: false,
        }
    }

    /// The pane that fills the body while zoomed: the focused one (the Output for the
    /// Prompt, whose answer is what the operator wants to see larger).
    pub fn zoomed(&self) -> Option<Pane> {
        self.zoom.then_some(match self.focus {
            Pane::Prompt => Pane::Output,
            other => other,
        })
    }

    /// The pane shown on a small screen, where the panes are tabs: the focused one, or the
    /// last one focused while the Prompt has focus.
    pub fn shown_tab(&self) -> Pane {
        match self.focus {
            Pane::Prompt => self.tab,
            other => other,
        }
    }

    /// The first key of `action` while browsing, as the help writes it (`v`, `Ctrl-C`): every
    /// hint the console shows comes from the key map, so overrides show too.
    pub fn key(&self, action: Action) -> String {
        self.keymap.key_hint(Mode::Normal, action)
    }

    /// The key that leaves the prompt (and opens a waiting confirmation).
    pub fn leave_key(&self) -> String {
        self.keymap.key_hint(Mode::Editing, Action::Cancel)
    }

    /// Focuses `pane`; where Output and Benchmarks share a place, shows the one focused.
    pub fn show_pane(&mut self, pane: Pane) {
        self.focus = pane;
        if pane != Pane::Prompt {
            self.tab = pane;
        }
        match pane {
            Pane::Benchmarks => self.bench_tab = true,
            Pane::Output => self.bench_tab = false,
            Pane::Tasks | Pane::Log | Pane::Audit | Pane::Safety | Pane::Prompt => {}
        }
    }

    /// The mode keys are routed in. Only an open modal asks questions: a confirmation that
    /// waits while the operator types leaves the keys to the prompt.
    pub fn mode(&self) -> Mode {
        // A run's plan waits while the operator types: its `y` is never a typed letter.
        let bench_question = matches!(self.overlay, Some(Overlay::ConfirmBench(_)))
            && !self.editing
            && self.command.is_none();
        if self.confirm.is_some()
            || bench_question
            || matches!(
                self.overlay,
                Some(Overlay::ConfirmQuit { .. } | Overlay::RuntimeGone { .. })
            )
        {
            Mode::Question
        } else if self.command.is_some() {
            Mode::Command
        } else if self.editing {
            Mode::Editing
        } else {
            Mode::Normal
        }
    }

    /// The current theme.
    pub fn current_theme(&self) -> Option<&ResolvedTheme> {
        self.themes.get(self.theme)
    }

    /// Tasks not yet ended.
    pub fn active_tasks(&self) -> usize {
        self.tasks.iter().filter(|t| t.is_active()).count()
    }

    /// True when some task shows a live countdown (the clock should tick faster).
    pub fn has_countdowns(&self) -> bool {
        self.tasks
            .iter()
            .rev()
            .take(256)
            .any(|t| t.countdown(self.now).is_some())
    }

    /// Shows a message in the status bar for a few seconds (sanitized: messages quote errors,
    /// which quote servers and arguments).
    pub fn flash(&mut self, text: impl Into<String>, level: FlashLevel) {
        self.flash = Some(Flash {
            text: one_line(text.into()),
            level,
            until: self.now + chrono::Duration::seconds(5),
        });
    }

    /// Advances the clock; drops an expired flash.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        self.now = now;
        for t in &mut self.tasks {
            t.deltas_ticked = t.deltas;
        }
        // Live estimates are recomputed at the clock's pace, not once per finished task.
        if let Some(run) = self.bench.run.as_mut() {
            run.refresh();
        }
        if self.flash.as_ref().is_some_and(|f| f.until <= now) {
            self.flash = None;
        }
    }

    /// Opens the confirmation modal when a request waits and the operator is not typing (in
    /// the prompt or the command line); closes it when its request was answered elsewhere.
    /// `now` starts the modal's guard interval. The loop calls this after every batch of
    /// events and keys.
    pub fn settle_confirmation(&mut self, now: tokio::time::Instant) {
        if let Some(m) = self.confirm
            && !self.confirmations.iter().any(|c| c.request == m.request)
        {
            self.confirm = None;
        }
        if self.confirm.is_none()
            && !self.editing
            && self.command.is_none()
            && let Some(front) = self.confirmations.front()
        {
            if self.overlay == Some(Overlay::Help) {
                self.overlay = None;
            }
            self.confirm = Some(ConfirmModal {
                request: front.request,
                opened_at: now,
            });
        }
    }

    /// The waiting confirmation the modal shows, if it is open.
    pub fn open_confirmation(&self) -> Option<&PendingConfirmation> {
        let m = self.confirm?;
        self.confirmations.iter().find(|c| c.request == m.request)
    }
}

mod bench;
mod bounds;
mod commands;
mod keys;
mod mouse;
pub use mouse::MouseTarget;
mod read;
mod reports;
mod scroll;
mod shown;
pub use bench::*;
pub use bounds::TASKS_KEEP;
pub use shown::{Pick, Shown};
mod fold;
mod view;
pub use commands::COMMAND_TABLE;
pub use view::*;
mod input;

use fold::one_line;
pub use input::{Edit, InputLine};
use input::{apply_edit, is_meaningful};

#[cfg(test)]
pub(crate) mod tests;
