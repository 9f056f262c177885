//! Carrying out the view's commands: [`Dispatch::dispatch`] is the one place a [`Command`] from
//! the console meets the core, the terminal (the clipboard), the theme and the benchmark slot;
//! what runs in the background reports back as a [`Notice`].

use super::app::{App, BenchUpdate, Command, FlashLevel};
use super::outlet::Outlet;
use super::theme::{self, Theme};
use super::{Notice, audit_detail, bench, explain_rule, set_mouse};
use crate::core::{ExecutionRequest, VeyraCore};

/// Whether the loop goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Keep going.
    Continue,
    /// Leave the console.
    Quit,
}

/// What a [`Command`] from the view may act on: the terminal (the clipboard), the core, the
/// view (to say what happened), the theme being drawn, the benchmark slot, and the channel
/// background work reports back on.
pub(super) struct Dispatch<'a> {
    /// The terminal's clipboard (and bell).
    pub(super) terminal: &'a mut dyn Outlet,
    pub(super) core: &'a VeyraCore,
    pub(super) app: &'a mut App,
    pub(super) theme: &'a mut Theme,
    pub(super) depth: theme::ColourDepth,
    pub(super) bench: &'a mut bench::BenchSlot,
    pub(super) notices: &'a tokio::sync::mpsc::UnboundedSender<Notice>,
}

impl Dispatch<'_> {
    /// Carries out one command of the view's: the one place a [`Command`] meets the core.
    pub(super) async fn dispatch(&mut self, command: Command) -> Flow {
        match command {
            Command::Submit { prompt, priority } => {
                if let Err(e) = self
                    .core
                    .submit(ExecutionRequest::new(prompt).priority(priority))
                {
                    self.app.flash(e.to_string(), FlashLevel::Error);
                }
            }
            Command::VerifyAudit => {
                let core = self.core.clone();
                tokio::task::spawn_blocking(move || core.verify_audit());
            }
            Command::SetMouse(on) => set_mouse(on),
            Command::SetTheme(i) => {
                if let Some(t) = self.app.themes().get(i) {
                    *self.theme = Theme::for_depth(t, self.depth);
                }
            }
            Command::Cancel(id) => match self.core.cancel(id) {
                Ok(()) => self
                    .app
                    .flash(format!("cancelling task {}", id.short()), FlashLevel::Info),
                Err(e) => self.app.flash(e.to_string(), FlashLevel::Error),
            },
            Command::SetPreset(preset) => {
                if let Err(e) = self.core.set_preset(preset).await {
                    self.app.flash(e.to_string(), FlashLevel::Error);
                }
            }
            Command::SetSimulated(on) => match self.core.set_simulated(on).await {
                Ok(link) => self.app.flash(
                    if on {
                        format!(
                            "simulation on: tasks sent now cross the {} link",
                            link.preset
                        )
                    } else {
                        "simulation off: no task waits on the link (benchmark items never do)"
                            .to_string()
                    },
                    FlashLevel::Info,
                ),
                Err(e) => self.app.flash(e.to_string(), FlashLevel::Error),
            },
            Command::SetBackend { backend, model } => {
                if let Err(e) = self.core.set_backend(&backend, model.as_deref()).await {
                    self.app.flash(e.to_string(), FlashLevel::Error);
                }
            }
            Command::Answer {
                request,
                allowed,
                scope,
            } => {
                if let Err(e) = self
                    .core
                    .answer_confirmation_scoped(request, allowed, scope, "operator")
                {
                    self.app.flash(e.to_string(), FlashLevel::Error);
                }
            }
            Command::ExplainRule { violation } => {
                let lines = explain_rule(self.core, &violation);
                self.app
                    .show_detail(format!("Violation: {}", violation.operation), lines);
            }
            Command::Copy(text) => {
                // The text already passed the sanitizer on its way into the view.
                if let Err(e) = self.terminal.copy(text) {
                    self.app
                        .flash(format!("copying failed: {e}"), FlashLevel::Error);
                }
            }
            Command::Undo(seq) => {
                // In the background: the gate may ask the operator, through this loop.
                let core = self.core.clone();
                let notices = self.notices.clone();
                tokio::spawn(async move {
                    let note = match core.undo_tool(seq, "operator").await {
                        Ok(done) => (
                            format!(
                                "undid entry {}: {} is as it was before",
                                done.undone, done.path
                            ),
                            FlashLevel::Info,
                        ),
                        Err(e) => (format!("undo: {e}"), FlashLevel::Error),
                    };
                    let _ = notices.send(Notice::Flash(note.0, note.1));
                });
            }
            Command::OpenAuditEntry(seq) => {
                // Reading (and proving) an entry reads the store: off the loop.
                let core = self.core.clone();
                let notices = self.notices.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = notices.send(audit_detail(&core, seq));
                });
            }
            Command::StartBench(request) => match self.bench.start(&request) {
                Ok(started) => {
                    self.app.bench_planned(started.label, started.weights);
                    self.app.bench_suite(started.suite);
                }
                Err(e) => self.app.apply_bench(BenchUpdate::Ended(Err(e))),
            },
            Command::PlanBench(request) => self.bench.plan(request),
            Command::CancelBench => {
                self.bench.cancel();
                self.app.flash(
                    "cancelling the benchmark run; what finished is kept",
                    FlashLevel::Info,
                );
            }
            Command::Quit => return Flow::Quit,
        }
        Flow::Continue
    }
}
