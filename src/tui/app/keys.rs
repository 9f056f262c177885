//! Keys: [`App::handle_key_at`] routes a key by mode (the confirmation modal's guard first,
//! then a binding, the line editor, the help and detail overlays), and [`App::update`] carries
//! out an [`Action`], returning the [`Command`]s the loop must send.

use super::*;

impl App {
    /// [`App::handle_key_at`] now.
    pub fn handle_key(&mut self, key: &KeyEvent) -> Vec<Command> {
        self.handle_key_at(key, tokio::time::Instant::now())
    }

    /// Turns a key that arrived at `now` into an action (or an edit) for the current mode and
    /// applies it. While the confirmation modal is within its guard interval every key is
    /// ignored.
    pub fn handle_key_at(&mut self, key: &KeyEvent, now: tokio::time::Instant) -> Vec<Command> {
        self.settle_confirmation(now);
        if let Some(m) = self.confirm
            && now < m.opened_at + self.confirm_guard
        {
            return Vec::new();
        }
        // A run's question takes no yes within its guard interval (a no is always safe).
        if matches!(self.overlay, Some(Overlay::ConfirmBench(_)))
            && self
                .bench
                .asked_at
                .is_some_and(|at| now < at + self.confirm_guard)
            && self.keymap.action(self.mode(), key) == Some(Action::Yes)
        {
            return Vec::new();
        }
        let commands = self.route_key(key);
        // Leaving the prompt, or an answer with more waiting, opens the (next) modal now.
        self.settle_confirmation(now);
        // A run's question that waited behind the prompt shows from now: its guard too.
        if matches!(self.overlay, Some(Overlay::ConfirmBench(_)))
            && self.bench.asked_at.is_none()
            && self.mode() == Mode::Question
        {
            self.bench.asked_at = Some(now);
        }
        commands
    }

    fn route_key(&mut self, key: &KeyEvent) -> Vec<Command> {
        let mode = self.mode();
        if let Some(action) = self.keymap.action(mode, key) {
            return self.update(action);
        }
        if mode == Mode::Editing
            && let Some(edit) = Edit::from_key(key)
        {
            self.edit(edit);
            return Vec::new();
        }
        if mode == Mode::Command && self.filtering.is_none() {
            use crossterm::event::KeyCode;
            match key.code {
                KeyCode::Up | KeyCode::Down => {
                    self.recall(key.code == KeyCode::Up);
                    return Vec::new();
                }
                KeyCode::Tab => {
                    self.complete();
                    return Vec::new();
                }
                _ => {}
            }
        }
        if mode == Mode::Command
            && let Some(edit) = Edit::from_key(key)
            && let Some(line) = self.command.as_mut()
        {
            apply_edit(line, edit);
            // A `/` filter applies as it is typed.
            if let Some(pane) = self.filtering {
                let text = line.text.trim().to_string();
                self.set_filter(pane, &text);
            }
            return Vec::new();
        }
        if self.overlay == Some(Overlay::Help) {
            // Any unbound key closes the help.
            self.overlay = None;
        } else if matches!(self.overlay, Some(Overlay::Detail { .. })) {
            // A detail view is read with the scroll keys and closed on purpose.
            self.detail_hint();
        } else if mode == Mode::Normal && is_meaningful(key) {
            // A key that does nothing says where to look, rather than nothing at all.
            self.flash(
                format!(
                    "{} does nothing here · {} for help",
                    crate::tui::keymap::describe_key(key),
                    self.keymap.key_hint(Mode::Normal, Action::Help)
                ),
                FlashLevel::Info,
            );
        }
        Vec::new()
    }

    /// A key while a detail view is open: the scroll keys move it (a page is what it shows at
    /// once), copy copies it whole, `Esc`, `Enter` and quit close it, and any other key only
    /// says how.
    fn detail_key(&mut self, action: Action) -> Vec<Command> {
        let Some(Overlay::Detail { lines, .. }) = &self.overlay else {
            return Vec::new();
        };
        let page = DetailPage::new(lines, self.screen);
        let step = |rows: usize| isize::try_from(rows.max(1)).unwrap_or(isize::MAX);
        let delta = match action {
            Action::Up => -1,
            Action::Down => 1,
            Action::PageUp => -step(page.body),
            Action::PageDown => step(page.body),
            Action::Top => isize::MIN / 2,
            Action::Bottom => isize::MAX / 2,
            Action::Cancel | Action::Open | Action::Quit => {
                self.overlay = None;
                self.detail_scroll = 0;
                return Vec::new();
            }
            Action::Copy => {
                let text = lines.join("\n");
                self.flash(
                    format!(
                        "copied {} characters (OSC 52: the terminal must allow clipboard writes)",
                        text.chars().count()
                    ),
                    FlashLevel::Info,
                );
                return vec![Command::Copy(text)];
            }
            _ => {
                self.detail_hint();
                return Vec::new();
            }
        };
        let max = page.max_scroll();
        self.detail_scroll = self
            .detail_scroll
            .min(max)
            .saturating_add_signed(delta)
            .min(max);
        Vec::new()
    }

    /// Says how to read and close a detail view, for a key that does neither.
    fn detail_hint(&mut self) {
        self.flash(
            format!(
                "{}/{} scroll the detail · {} closes it",
                self.key(Action::Down),
                self.key(Action::Up),
                self.key(Action::Cancel)
            ),
            FlashLevel::Info,
        );
    }

    /// The list `/` filters from the focused pane: its own, the Tasks from the Output and the
    /// Prompt, none from the Benchmarks.
    fn filter_pane(&self) -> Option<Pane> {
        match self.focus {
            Pane::Audit | Pane::Safety | Pane::Log => Some(self.focus),
            Pane::Tasks | Pane::Output | Pane::Prompt => Some(Pane::Tasks),
            Pane::Benchmarks => None,
        }
    }

    /// Pasted text goes into the prompt, newlines as spaces.
    pub fn paste(&mut self, text: &str) {
        if self.overlay.is_some() || self.confirm.is_some() {
            return;
        }
        self.editing = true;
        self.focus = Pane::Prompt;
        for c in text.chars() {
            self.input.insert(match c {
                '\n' | '\r' | '\t' => ' ',
                c => c,
            });
        }
    }

    /// Applies a typing action.
    pub fn edit(&mut self, edit: Edit) {
        apply_edit(&mut self.input, edit);
    }

    /// Applies an action; returns what the loop must do.
    pub fn update(&mut self, action: Action) -> Vec<Command> {
        // With the runtime gone, the only question is whether to host one here.
        if matches!(self.overlay, Some(Overlay::RuntimeGone { .. })) {
            return match action {
                Action::Yes => {
                    self.overlay = None;
                    vec![Command::HostHere]
                }
                Action::No | Action::Cancel | Action::Quit => {
                    self.quit = true;
                    vec![Command::Quit]
                }
                _ => Vec::new(),
            };
        }
        // A confirmation shown over a detail view takes its answer first; the view stays.
        if self.confirm.is_none() && matches!(self.overlay, Some(Overlay::Detail { .. })) {
            return self.detail_key(action);
        }
        if self.overlay == Some(Overlay::Help) {
            // Tab turns the help's page; its own key, Esc, or anything else closes it.
            if matches!(action, Action::FocusNext | Action::FocusPrev) {
                self.help_page = (self.help_page + 1) % HELP_PAGES;
                self.help_scroll = 0;
                return Vec::new();
            }
            // On a screen too short for the help, j/k scroll it.
            let step: Option<isize> = match action {
                Action::Up => Some(-1),
                Action::Down => Some(1),
                Action::PageUp => Some(-5),
                Action::PageDown => Some(5),
                Action::Top => Some(isize::MIN / 2),
                _ => None,
            };
            if let Some(step) = step {
                self.help_scroll = self.help_scroll.saturating_add_signed(step).min(64);
                return Vec::new();
            }
            self.overlay = None;
            if matches!(action, Action::Help | Action::Cancel) {
                return Vec::new();
            }
        }
        match action {
            // Ctrl-C on a draft clears it, as shells do; on an empty prompt it quits.
            Action::Quit if self.editing && !self.input.text.is_empty() => {
                self.input = InputLine::default();
                self.flash("draft cleared · Ctrl-C again quits", FlashLevel::Info);
            }
            Action::Quit => {
                let active = self.active_tasks();
                // A benchmark run going is work the operator would lose too; an attached
                // console's runtime keeps both.
                if !self.attached && (active > 0 || self.bench_running()) {
                    self.overlay = Some(Overlay::ConfirmQuit { active });
                } else {
                    self.quit = true;
                    return vec![Command::Quit];
                }
            }
            // A pending confirmation takes the answer before anything else.
            // `a` answers only what may be allowed for the session (a tool call); otherwise
            // it does nothing, rather than pass for a plain yes.
            Action::Always if !self.open_confirmation().is_some_and(|c| c.scopable) => {}
            Action::Yes | Action::No | Action::Always if self.confirm.is_some() => {
                if let Some(m) = self.confirm.take() {
                    self.confirmations.retain(|c| c.request != m.request);
                    return vec![Command::Answer {
                        request: m.request,
                        allowed: action != Action::No,
                        scope: if action == Action::Always {
                            ConfirmScope::Session
                        } else {
                            ConfirmScope::Once
                        },
                    }];
                }
            }
            Action::Always => {}
            Action::Yes | Action::No if matches!(self.overlay, Some(Overlay::ConfirmBench(_))) => {
                return self.answer_bench(action == Action::Yes);
            }
            Action::Yes => {
                if matches!(self.overlay, Some(Overlay::ConfirmQuit { .. })) {
                    self.overlay = None;
                    self.quit = true;
                    return vec![Command::Quit];
                }
            }
            Action::No => self.overlay = None,
            Action::Zoom => {
                self.zoom = !self.zoom;
                if let Some(pane) = self.zoomed() {
                    self.flash(
                        format!(
                            "{} zoomed · {} back",
                            pane.name(),
                            self.keymap.key_hint(Mode::Normal, Action::Zoom)
                        ),
                        FlashLevel::Info,
                    );
                }
            }
            Action::FocusNext => {
                let pane = self.focus.step(true);
                self.show_pane(pane);
            }
            Action::FocusPrev => {
                let pane = self.focus.step(false);
                self.show_pane(pane);
            }
            Action::StartBench => return self.start_bench(BenchRequest::default()),
            Action::Open => match self.focus {
                Pane::Benchmarks => self.bench_detail(),
                Pane::Tasks => match self.shown_task() {
                    Some(task) => {
                        let title = format!("Task {}", task.id.short());
                        let lines = task_detail(task, &self.link().link, self.now());
                        self.show_detail(title, lines);
                    }
                    None => self.flash("no task to open", FlashLevel::Info),
                },
                Pane::Safety => match self.shown_violations().selected().cloned() {
                    Some(violation) => return vec![Command::ExplainRule { violation }],
                    None => self.flash("no violation to open", FlashLevel::Info),
                },
                Pane::Audit => match self.shown_audit().selected().map(|e| e.seq) {
                    Some(seq) => return vec![Command::OpenAuditEntry(seq)],
                    None => self.flash("no audit entry to open", FlashLevel::Info),
                },
                Pane::Log => match self.log_selected() {
                    Some(record) => {
                        let title =
                            format!("Log · {} {}", record.at.format("%H:%M:%S"), record.level);
                        let lines = record.detail();
                        self.show_detail(title, lines);
                    }
                    None => self.flash("no log line to open", FlashLevel::Info),
                },
                Pane::Output | Pane::Prompt => {
                    self.focus = Pane::Prompt;
                    self.editing = true;
                }
            },
            Action::EditPrompt => {
                self.focus = Pane::Prompt;
                self.editing = true;
            }
            Action::Cancel => {
                // Esc clears a `/` filter: the one being typed, or else the focused list's
                // when there is nothing else to close.
                let nothing_open =
                    !self.editing && self.command.is_none() && self.overlay.is_none();
                let clear = self.filtering.take().or_else(|| {
                    let pane = self.filter_pane()?;
                    (nothing_open && self.filter(pane).is_some()).then_some(pane)
                });
                if let Some(pane) = clear {
                    self.set_filter(pane, "");
                }
                let typing = self.editing || self.command.is_some();
                if self.command.take().is_none() {
                    self.editing = false;
                }
                // Leaving the prompt uncovers a run's plan still waiting for its answer.
                if !(typing && matches!(self.overlay, Some(Overlay::ConfirmBench(_)))) {
                    self.overlay = None;
                }
            }
            Action::CommandLine => {
                self.filtering = None;
                self.history_pos = None;
                self.command = Some(InputLine::default());
            }
            Action::Copy => {
                let copied = match self.focus {
                    Pane::Audit => self.shown_audit().selected().map(|e| {
                        format!(
                            "audit entry {}: {} {} {} {} hash {}",
                            e.seq, e.event_type, e.actor, e.action, e.outcome, e.hash
                        )
                    }),
                    Pane::Safety => self.shown_violations().selected().map(|v| {
                        format!(
                            "{} {} {} rule {} by {}: {}",
                            v.at.to_rfc3339(),
                            v.level,
                            v.operation,
                            v.rule,
                            v.actor,
                            v.reason
                        )
                    }),
                    Pane::Log => self.log_selected().map(|r| r.full_text()),
                    Pane::Benchmarks => self.bench_copy_text(),
                    Pane::Tasks | Pane::Output | Pane::Prompt => {
                        self.shown_task().map(|t| t.output.text())
                    }
                };
                match copied {
                    Some(mut text) if !text.is_empty() => {
                        // Terminals cap OSC 52 payloads; past this the copy is cut, and says so.
                        const MAX: usize = 64 * 1024;
                        let cut = text.len() > MAX;
                        if cut {
                            let end = (0..=MAX)
                                .rev()
                                .find(|&i| text.is_char_boundary(i))
                                .unwrap_or(0);
                            text.truncate(end);
                        }
                        self.flash(
                            format!(
                                "copied {} characters{} (OSC 52: the terminal must allow \
                                 clipboard writes)",
                                text.chars().count(),
                                if cut { ", cut at 64 KiB" } else { "" }
                            ),
                            FlashLevel::Info,
                        );
                        return vec![Command::Copy(text)];
                    }
                    _ => self.flash("nothing to copy here", FlashLevel::Info),
                }
            }
            Action::Filter => {
                let Some(pane) = self.filter_pane() else {
                    self.flash(
                        "the Benchmarks pane has no list to filter; Enter lists the misses",
                        FlashLevel::Info,
                    );
                    return Vec::new();
                };
                let text = self.filters.get(&pane).cloned().unwrap_or_default();
                self.filtering = Some(pane);
                self.command = Some(InputLine {
                    cursor: text.chars().count(),
                    text,
                });
            }
            Action::RunCommand => {
                let text = self.command.take().map(|c| c.text).unwrap_or_default();
                if let Some(pane) = self.filtering.take() {
                    self.set_filter(pane, text.trim());
                    return Vec::new();
                }
                let text = text.trim().to_string();
                if !text.is_empty() && self.history.last() != Some(&text) {
                    self.history.push(text.clone());
                    let excess = self.history.len().saturating_sub(HISTORY_LEN);
                    self.history.drain(..excess);
                }
                self.history_pos = None;
                return self.run_command(&text);
            }
            Action::Submit => {
                let prompt = self.input.text.trim().to_string();
                if prompt.is_empty() {
                    self.flash(
                        "the prompt is empty; type something first",
                        FlashLevel::Error,
                    );
                } else {
                    self.input = InputLine::default();
                    self.follow = true;
                    self.output_anchor = None;
                    return vec![Command::Submit {
                        prompt,
                        priority: self.priority,
                    }];
                }
            }
            Action::CyclePriority => self.priority = self.priority.cycle(),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page() as isize)),
            Action::PageDown => self.move_by(self.page() as isize),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::ToggleFollow => {
                self.follow = !self.follow;
                if self.follow {
                    self.output_anchor = None;
                    if !self.tasks.is_empty() {
                        self.selected = Some(self.tasks.len() - 1);
                    }
                }
                self.flash(
                    if self.follow {
                        "follow on"
                    } else {
                        "follow off"
                    },
                    FlashLevel::Info,
                );
            }
            Action::VerifyAudit => {
                if self.audit.enabled {
                    self.audit.verification = Verification::Running;
                    return vec![Command::VerifyAudit];
                }
                // Over a fleet each worker verifies its own trail; the answer is flashed.
                if self.fleet {
                    self.flash("verifying every worker's audit trail…", FlashLevel::Info);
                    return vec![Command::VerifyAudit];
                }
                self.flash("audit is off (governance.audit = false)", FlashLevel::Error);
            }
            Action::NextTheme => {
                if !self.themes.is_empty() {
                    self.theme = (self.theme + 1) % self.themes.len();
                    let name = self.themes[self.theme].name.clone();
                    self.flash(format!("theme: {name}"), FlashLevel::Info);
                    return vec![Command::SetTheme(self.theme)];
                }
            }
            Action::Help => {
                self.help_page = 0;
                self.help_scroll = 0;
                self.overlay = Some(Overlay::Help);
            }
            Action::CancelTask if self.focus == Pane::Benchmarks => return self.cancel_bench(),
            Action::CancelTask => match self.shown_task() {
                Some(task) if task.is_active() => return vec![Command::Cancel(task.id)],
                Some(task) => {
                    let text = format!("task {} already ended; nothing to cancel", task.id.short());
                    self.flash(text, FlashLevel::Error);
                }
                None => self.flash("no task selected", FlashLevel::Error),
            },
            Action::Preset(preset) => return vec![Command::SetPreset(preset)],
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests;
