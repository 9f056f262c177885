//! The event fold: [`App::apply`] turns each core [`Event`] into view state, sanitizing every
//! string on the way in.

use super::*;

impl App {
    /// The bus dropped `n` events the console had not read (it fell behind): counted, and
    /// said, since what the panes show may now be incomplete.
    pub fn missed(&mut self, n: u64) {
        self.missed_events = self.missed_events.saturating_add(n);
        self.flash(
            format!(
                "console fell behind and skipped {n} events ({} in all); panes may be incomplete",
                self.missed_events
            ),
            FlashLevel::Error,
        );
    }

    /// Folds one core event into the view, then keeps the view within its bounds
    /// ([`App::keep_bounds`]).
    pub fn apply(&mut self, event: Event) {
        let submitted = matches!(event, Event::TaskSubmitted { .. });
        let shown = self.shown_task().map(|t| (t.id, t.output.dropped_lines()));
        self.fold(event);
        self.keep_bounds(shown, submitted);
    }

    fn fold(&mut self, event: Event) {
        match event {
            Event::TaskSubmitted {
                id,
                kind,
                title,
                priority,
                backend,
                model,
                at,
            } => {
                self.index.insert(id, self.tasks.len());
                self.tasks.push(TaskView {
                    id,
                    title: one_line(title),
                    priority,
                    backend: one_line(backend.unwrap_or_default()),
                    model: one_line(model.unwrap_or_default()),
                    kind: one_line(kind),
                    status: TaskStatus::Queued,
                    status_at: at,
                    attempt: 0,
                    submitted_at: at,
                    finished_at: None,
                    output: OutputBuffer::default(),
                    usage: None,
                    finish_reason: None,
                    deltas: 0,
                    deltas_ticked: 0,
                    latency_ms: None,
                    timeline: vec![(at, TaskStatus::Queued, 0)],
                });
                if self.follow || self.selected.is_none() {
                    self.selected = Some(self.tasks.len() - 1);
                    self.output_anchor = None;
                }
            }
            Event::TaskState {
                id,
                status,
                attempt,
                at,
            } => {
                let short = id.short();
                let status = clean_status(status);
                let Some(t) = self.task_mut(id) else { return };
                if matches!(status, TaskStatus::Running) && attempt > 1 {
                    if !t.output.is_empty() {
                        t.output.push("\n");
                    }
                    t.output.push(&format!("── attempt {attempt} ──\n"));
                    // The live rate counts this attempt's pieces over this attempt's time.
                    t.deltas = 0;
                    t.deltas_ticked = 0;
                }
                if status.is_final() {
                    t.finished_at = Some(at);
                }
                let failure = match &status {
                    TaskStatus::Failed { error, .. } => {
                        Some(format!("task {short} failed: {error}"))
                    }
                    _ => None,
                };
                // Kept whole (states are few: at most a handful per attempt).
                t.timeline.push((at, status.clone(), attempt));
                t.status = status;
                t.status_at = at;
                t.attempt = attempt;
                if let Some(text) = failure {
                    self.flash(text, FlashLevel::Error);
                }
            }
            Event::AgentStep {
                id,
                tool,
                arguments,
                outcome,
                summary,
                ..
            } => {
                if let Some(t) = self.task_mut(id) {
                    let (kind, result) = match outcome.as_str() {
                        "success" => (LineKind::ToolOk, format!("→ {}", one_line(summary))),
                        other => (
                            LineKind::ToolError,
                            format!("{}: {}", one_line(other.to_string()), one_line(summary)),
                        ),
                    };
                    t.output.push_line(
                        kind,
                        &format!("⚙ {} {} {result}", one_line(tool), one_line(arguments)),
                    );
                }
            }
            Event::OutputDelta { id, text } => {
                if let Some(t) = self.task_mut(id) {
                    t.output.push(&crate::sanitize::sanitize(&text));
                    t.deltas += 1;
                }
            }
            Event::ExecutionFinished {
                id,
                usage,
                finish_reason,
                latency_ms,
                ..
            } => {
                if let Some(t) = self.task_mut(id) {
                    t.usage = Some(usage);
                    t.finish_reason = Some(match finish_reason {
                        FinishReason::Other(other) => FinishReason::Other(one_line(other)),
                        known => known,
                    });
                    t.latency_ms = Some(latency_ms);
                }
            }
            Event::BackendChanged { backend, model, .. } => {
                let (backend, model) = (one_line(backend), one_line(model));
                self.flash(format!("backend: {backend}/{model}"), FlashLevel::Info);
                self.link.backend = backend;
                self.link.model = model;
            }
            Event::LinkChanged { link, switched, .. } => {
                // A switch, or a blackout beginning or ending, is news; a delay drifting by a
                // second only updates the status bar.
                let news = switched || link.conjunction != self.link.link.conjunction;
                let text = format!(
                    "link: {} ({}){}{}",
                    link.preset,
                    link.mode,
                    if link.conjunction == "clear" {
                        String::new()
                    } else {
                        format!(" — conjunction: {}", link.conjunction)
                    },
                    if link.simulated {
                        ""
                    } else {
                        " — simulation is off (latency.simulate)"
                    }
                );
                self.link.link = link;
                if news {
                    self.flash(text, FlashLevel::Info);
                }
            }
            Event::AuditRecorded {
                seq,
                event_type,
                actor,
                action,
                outcome,
                hash,
                ..
            } => {
                if seq >= self.audit.entries {
                    self.audit.entries = seq;
                    self.audit.head.clone_from(&hash);
                }
                // Entries that share one commit are announced as their callers resume, in any
                // order: the pane keeps them by number.
                let at = self
                    .audit
                    .recent
                    .iter()
                    .rposition(|line| line.seq < seq)
                    .map_or(0, |i| i + 1);
                self.audit.recent.insert(
                    at,
                    AuditLine {
                        seq,
                        event_type: one_line(event_type),
                        actor: one_line(actor),
                        action: one_line(action),
                        outcome: one_line(outcome),
                        hash: one_line(hash),
                    },
                );
                if self.audit.recent.len() > PANE_HISTORY {
                    self.audit.recent.pop_front();
                }
            }
            Event::AuditCheckpoint { tree_size, at, .. } => {
                self.audit.signs_checkpoints = true;
                if self
                    .audit
                    .checkpoint
                    .is_none_or(|(size, _)| tree_size >= size)
                {
                    self.audit.checkpoint = Some((tree_size, at));
                }
            }
            Event::AuditVerified {
                entries,
                failure,
                duration_ms,
                at,
            } => {
                self.audit.verification = match failure.map(one_line) {
                    None => Verification::Verified {
                        entries,
                        duration_ms,
                        at,
                    },
                    Some(failure) => {
                        self.flash(format!("audit chain FAILED: {failure}"), FlashLevel::Error);
                        Verification::Failed {
                            failure,
                            duration_ms,
                            at,
                        }
                    }
                };
            }
            Event::SafetyViolation {
                operation,
                level,
                rule,
                reason,
                actor,
                at,
                ..
            } => {
                let (operation, level, rule, reason, actor) = (
                    one_line(operation),
                    one_line(level),
                    one_line(rule),
                    one_line(reason),
                    one_line(actor),
                );
                self.flash(
                    format!("blocked: {operation} — {reason}"),
                    FlashLevel::Error,
                );
                self.violation_count += 1;
                self.violations.push_back(ViolationLine {
                    at,
                    operation,
                    level,
                    rule,
                    reason,
                    actor,
                });
                if self.violations.len() > PANE_HISTORY {
                    self.violations.pop_front();
                }
            }
            Event::ConfirmationRequested {
                request,
                id,
                operation,
                reason,
                detail,
                scopable,
            } => {
                let operation = one_line(operation);
                // Never under the operator's fingers: while they type, the request only
                // announces itself; the modal waits until they leave the prompt.
                if self.editing || self.command.is_some() {
                    self.flash(
                        format!(
                            "confirmation waiting: {operation} · {} to answer",
                            self.leave_key()
                        ),
                        FlashLevel::Error,
                    );
                }
                self.bell = true;
                self.confirmations.push_back(PendingConfirmation {
                    request,
                    id,
                    operation,
                    reason: one_line(reason),
                    detail: detail.map(one_line),
                    scopable,
                });
            }
            Event::ToolInvoked {
                tool,
                outcome,
                summary,
                ..
            } => {
                let level = if outcome == "success" {
                    FlashLevel::Info
                } else {
                    FlashLevel::Error
                };
                self.flash(
                    format!(
                        "tool {}: {} — {}",
                        one_line(tool),
                        one_line(outcome.clone()),
                        one_line(summary)
                    ),
                    level,
                );
            }
            Event::ConfirmationAnswered { request, .. } => {
                // Answered elsewhere (or here): it no longer waits.
                self.confirmations.retain(|c| c.request != request);
            }
        }
    }

    fn task_mut(&mut self, id: ExecutionId) -> Option<&mut TaskView> {
        let i = *self.index.get(&id)?;
        self.tasks.get_mut(i)
    }
}

/// `text` sanitized to one line, reusing its allocation when it is clean.
pub(super) fn one_line(text: String) -> String {
    match crate::sanitize::sanitize_line(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(clean) => clean,
    }
}

/// A task state with its texts (an error, a cancel reason) sanitized.
fn clean_status(status: TaskStatus) -> TaskStatus {
    match status {
        TaskStatus::Failed {
            error,
            kind,
            not_retried,
        } => TaskStatus::Failed {
            error: one_line(error),
            kind: one_line(kind),
            not_retried: not_retried.map(one_line),
        },
        TaskStatus::Cancelled { reason } => TaskStatus::Cancelled {
            reason: one_line(reason),
        },
        TaskStatus::Retrying { delay_ms, error } => TaskStatus::Retrying {
            delay_ms,
            error: one_line(error),
        },
        other @ (TaskStatus::Queued
        | TaskStatus::Uplink { .. }
        | TaskStatus::Running
        | TaskStatus::Downlink { .. }
        | TaskStatus::Blackout { .. }
        | TaskStatus::Succeeded) => other,
    }
}
