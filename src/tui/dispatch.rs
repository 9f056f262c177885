//! Carrying out the view's commands: [`Dispatch::dispatch`] is the one place a [`Command`] from
//! the console meets the core, the terminal (the clipboard), the theme and the benchmark slot;
//! what runs in the background reports back as a [`Notice`].

use super::app::{App, BenchUpdate, Command, FlashLevel};
use super::detail::{detail_notice, explain_header};
use super::outlet::Outlet;
use super::theme::{self, Theme};
use super::{Notice, bench, set_mouse};
use crate::service::Handle;

/// Whether the loop goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Keep going.
    Continue,
    /// Leave the console.
    Quit,
    /// Host a runtime here (the one attached to is gone).
    Host,
}

/// What a [`Command`] from the view may act on: the terminal (the clipboard), the core, the
/// view (to say what happened), the theme being drawn, the benchmark slot, and the channel
/// background work reports back on.
pub(super) struct Dispatch<'a> {
    /// The terminal's clipboard (and bell).
    pub(super) terminal: &'a mut dyn Outlet,
    /// The runtime: this process's core, or one attached to.
    pub(super) runtime: &'a Handle,
    pub(super) app: &'a mut App,
    pub(super) theme: &'a mut Theme,
    pub(super) depth: theme::ColourDepth,
    pub(super) bench: &'a mut bench::BenchSlot,
    pub(super) notices: &'a tokio::sync::mpsc::UnboundedSender<Notice>,
    /// Where commands for the runtime wait their turn.
    pub(super) orders: &'a Orders,
}

/// A command for the runtime, ready to run.
type Order = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Commands for the runtime, carried out one after another, in the order given, by a task of
/// their own: the loop goes on drawing and folding events while an attached runtime answers
/// (a console that waited for each answer could wait behind the very events it was not
/// reading). When the loop ends, what is queued is still carried out (a prompt sent just
/// before quitting is not lost), then the task ends.
pub(super) struct Orders {
    tx: tokio::sync::mpsc::UnboundedSender<Order>,
}

impl Orders {
    /// Starts the task that carries them out.
    pub(super) fn start() -> Orders {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Order>();
        tokio::spawn(async move {
            while let Some(order) = rx.recv().await {
                order.await;
            }
        });
        Orders { tx }
    }
}

impl Dispatch<'_> {
    /// Queues `f` (given the runtime and where to report) behind the commands before it.
    fn order<F, Fut>(&self, f: F)
    where
        F: FnOnce(Handle, tokio::sync::mpsc::UnboundedSender<Notice>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let order: Order = Box::pin(f(self.runtime.clone(), self.notices.clone()));
        let _ = self.orders.tx.send(order);
    }

    /// Carries out one command of the view's: the one place a [`Command`] meets the core.
    pub(super) async fn dispatch(&mut self, command: Command) -> Flow {
        match command {
            // What goes to the runtime goes through [`Orders`]: in order, and never holding
            // the loop (an attached runtime answers over a socket, perhaps over ssh).
            Command::Submit { prompt, priority } => self.order(|runtime, notices| async move {
                if let Err(e) = runtime.submit(prompt, priority).await {
                    let _ = notices.send(Notice::Flash(e, FlashLevel::Error));
                }
            }),
            Command::VerifyAudit => {
                let fleet = self.app.fleet();
                self.order(move |runtime, notices| async move {
                    // The result arrives as an event; only a failure to ask is said here. Over
                    // a fleet the workers' audit events stay with them: their answer is said.
                    let said = match runtime.verify_audit().await {
                        Err(e) => Some((e, FlashLevel::Error)),
                        Ok(Some((entries, None))) if fleet => Some((
                            format!("every worker's audit trail verifies ({entries} entries)"),
                            FlashLevel::Info,
                        )),
                        Ok(Some((_, Some(failure)))) if fleet => Some((
                            crate::sanitize::sanitize_line(&format!(
                                "audit chain broken: {failure}"
                            ))
                            .into_owned(),
                            FlashLevel::Error,
                        )),
                        Ok(_) => None,
                    };
                    if let Some((text, level)) = said {
                        let _ = notices.send(Notice::Flash(text, level));
                    }
                })
            }
            Command::SetMouse(on) => set_mouse(on),
            Command::SetTheme(i) => {
                if let Some(t) = self.app.themes().get(i) {
                    *self.theme = Theme::for_depth(t, self.depth);
                }
            }
            Command::Cancel(id) => self.order(move |runtime, notices| async move {
                let note = match runtime.cancel(id).await {
                    Ok(()) => {
                        Notice::Flash(format!("cancelling task {}", id.short()), FlashLevel::Info)
                    }
                    Err(e) => Notice::Flash(e, FlashLevel::Error),
                };
                let _ = notices.send(note);
            }),
            Command::SetPreset(preset) => self.order(move |runtime, notices| async move {
                if let Err(e) = runtime.set_preset(preset).await {
                    let _ = notices.send(Notice::Flash(e, FlashLevel::Error));
                }
            }),
            Command::SetSimulated(on) => self.order(move |runtime, notices| async move {
                let note = match runtime.set_simulated(on).await {
                    Ok(link) => Notice::Flash(
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
                    Err(e) => Notice::Flash(e, FlashLevel::Error),
                };
                let _ = notices.send(note);
            }),
            Command::SetBackend { backend, model } => {
                self.order(|runtime, notices| async move {
                    if let Err(e) = runtime.set_backend(&backend, model.as_deref()).await {
                        let _ = notices.send(Notice::Flash(e, FlashLevel::Error));
                    }
                });
            }
            Command::Answer {
                request,
                allowed,
                scope,
            } => self.order(move |runtime, notices| async move {
                if let Err(e) = runtime.answer(request, allowed, scope).await {
                    let _ = notices.send(Notice::Flash(e, FlashLevel::Error));
                }
            }),
            Command::ExplainRule { violation } => self.order(|runtime, notices| async move {
                let mut lines = explain_header(&violation);
                match runtime.rule_text(&violation.rule).await {
                    Ok(text) => lines.extend(text),
                    Err(e) => lines.push(crate::sanitize::sanitize_line(&e).into_owned()),
                }
                let _ = notices.send(Notice::Detail {
                    title: format!("Violation: {}", violation.operation),
                    lines,
                });
            }),
            Command::Copy(text) => {
                // The text already passed the sanitizer on its way into the view.
                if let Err(e) = self.terminal.copy(text) {
                    self.app
                        .flash(format!("copying failed: {e}"), FlashLevel::Error);
                }
            }
            Command::Undo(seq) => {
                // In the background: the gate may ask the operator, through this loop.
                let runtime = self.runtime.clone();
                let notices = self.notices.clone();
                tokio::spawn(async move {
                    let note = match runtime.undo(seq).await {
                        Ok((undone, path)) => (
                            format!("undid entry {undone}: {path} is as it was before"),
                            FlashLevel::Info,
                        ),
                        Err(e) => (format!("undo: {e}"), FlashLevel::Error),
                    };
                    let _ = notices.send(Notice::Flash(note.0, note.1));
                });
            }
            Command::OpenAuditEntry(seq) => {
                // Reading (and proving) an entry reads the store: off the loop.
                let runtime = self.runtime.clone();
                let notices = self.notices.clone();
                tokio::spawn(async move {
                    let _ = notices.send(detail_notice(runtime.audit_entry(seq).await));
                });
            }
            Command::Approvals => self.order(|runtime, notices| async move {
                let note = match runtime.approvals().await {
                    Ok(list) => Notice::Detail {
                        title: "Approvals".into(),
                        lines: approval_lines(&list),
                    },
                    Err(e) => Notice::Flash(format!("approvals: {e}"), FlashLevel::Error),
                };
                let _ = notices.send(note);
            }),
            Command::Approve { tool, argument } => self.order(|runtime, notices| async move {
                let note = match runtime.approve(tool, argument).await {
                    Ok(a) => Notice::Flash(
                        format!(
                            "approval #{}: {} allowed without asking until you quit \
                             (:approvals revoke {} takes it back); recorded in the audit trail",
                            a.id,
                            describe_approval(&a),
                            a.id
                        ),
                        FlashLevel::Info,
                    ),
                    Err(e) => Notice::Flash(format!("not approved: {e}"), FlashLevel::Error),
                };
                let _ = notices.send(note);
            }),
            Command::RevokeApproval(id) => self.order(move |runtime, notices| async move {
                let note = match runtime.revoke_approval(id).await {
                    Ok(a) => Notice::Flash(
                        format!(
                            "approval #{} revoked: {} asks again; recorded in the audit trail",
                            a.id,
                            describe_approval(&a)
                        ),
                        FlashLevel::Info,
                    ),
                    Err(e) => Notice::Flash(format!("not revoked: {e}"), FlashLevel::Error),
                };
                let _ = notices.send(note);
            }),
            Command::ReloadPolicy => self.order(|runtime, notices| async move {
                // The hashes may come over a socket: shortened by characters, sanitized.
                let short = |h: &str| {
                    crate::sanitize::sanitize_line(&h.chars().take(12).collect::<String>())
                        .into_owned()
                };
                let note = match runtime.reload_policy().await {
                    Ok((from, to)) if from == to => Notice::Flash(
                        format!(
                            "policy set reloaded: unchanged ({}); recorded in the audit trail",
                            short(&to)
                        ),
                        FlashLevel::Info,
                    ),
                    Ok((from, to)) => Notice::Flash(
                        format!(
                            "policy set reloaded: {} → {}; recorded in the audit trail",
                            short(&from),
                            short(&to)
                        ),
                        FlashLevel::Info,
                    ),
                    Err(e) => Notice::Flash(
                        format!("policy set not reloaded, the one in force stays: {e}"),
                        FlashLevel::Error,
                    ),
                };
                let _ = notices.send(note);
            }),
            // A run is the runtime's, like a prompt: asked for in order, its news folded as
            // it comes (from this process's runtime or over the session).
            Command::StartBench(request) => {
                let updates = self.bench.sender();
                self.order(move |runtime, _| async move {
                    if let Err(e) = runtime.bench_start(request).await {
                        let _ = updates.send(BenchUpdate::NotStarted(e));
                    }
                });
            }
            Command::PlanBench(request) => {
                let updates = self.bench.sender();
                self.order(move |runtime, _| async move {
                    let plan = runtime.bench_plan(request).await.map(Into::into);
                    let _ = updates.send(BenchUpdate::Plan(plan));
                });
            }
            Command::CancelBench => {
                // The run the pane shows, and no other: a cancel that arrives after it ended
                // never stops the next.
                let Some(run) = self.app.bench().run.as_ref().and_then(|r| r.number) else {
                    // Not begun on the runtime yet: no number to name, and a cancel without one
                    // could stop another client's run.
                    self.app.flash(
                        "the run is still starting; press c again once it runs",
                        FlashLevel::Info,
                    );
                    return Flow::Continue;
                };
                let run = Some(run);
                self.order(move |runtime, notices| async move {
                    if let Err(e) = runtime.bench_cancel(run).await {
                        let _ = notices.send(Notice::Flash(
                            format!("benchmark run not cancelled: {e}"),
                            FlashLevel::Error,
                        ));
                    }
                });
                self.app.flash(
                    "cancelling the benchmark run; what finished is kept",
                    FlashLevel::Info,
                );
            }
            Command::Quit => return Flow::Quit,
            Command::HostHere => return Flow::Host,
        }
        Flow::Continue
    }
}

/// An approval in words: its tool, and its argument pattern when it has one (sanitized: the
/// list may come over a socket).
fn describe_approval(a: &crate::core::Approval) -> String {
    let text = match &a.argument {
        Some(p) => format!("{} when {} matches {}", a.tool, p.name, p.pattern),
        None => a.tool.clone(),
    };
    crate::sanitize::sanitize_line(&text).into_owned()
}

/// The `:approvals` overlay's lines.
fn approval_lines(list: &[crate::core::Approval]) -> Vec<String> {
    if list.is_empty() {
        return vec![
            "No approvals stand: every call that needs a confirmation asks.".into(),
            String::new(),
            "Answer a confirmation with a (allow for the session), or type".into(),
            ":approve TOOL [ARG=PATTERN], e.g. :approve file_write path=notes/*.md".into(),
        ];
    }
    let mut lines = Vec::with_capacity(list.len() + 2);
    for a in list {
        lines.push(format!(
            "#{}  {}  — given {} by {}",
            a.id,
            describe_approval(a),
            a.at.format("%H:%M:%S"),
            crate::sanitize::sanitize_line(&a.by)
        ));
    }
    lines.push(String::new());
    lines.push(
        ":approvals revoke N takes one back; each ends when the console that gave it closes."
            .into(),
    );
    lines
}
