//! The event fold: [`App::apply`] turns each core [`Event`] into view state, sanitizing every
//! string on the way in. One match hands each event to its step, grouped by family: a task's
//! life, the link, the audit trail, governance.

use super::*;
use crate::events::{LinkStatus, TokenUsage};

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

    /// A question was answered. One answered here left the list when the key was pressed; one
    /// still listed was answered elsewhere (another console, a `veyra run`): its modal closes,
    /// saying who answered.
    fn confirmation_answered(&mut self, request: u64, allowed: bool, by: &str) {
        let waiting = self.confirmations.iter().any(|c| c.request == request)
            || self.confirm.is_some_and(|m| m.request == request);
        self.confirmations.retain(|c| c.request != request);
        if self.confirm.is_some_and(|m| m.request == request) {
            self.confirm = None;
        }
        if waiting {
            self.flash(
                format!(
                    "request {request} was answered {} by {}",
                    if allowed { "yes" } else { "no" },
                    crate::sanitize::sanitize_line(by)
                ),
                FlashLevel::Info,
            );
        }
    }

    /// The runtime this console was attached to is gone (`reason`): its questions can no longer
    /// be answered, and the operator is asked whether to host a runtime here or quit.
    pub fn runtime_gone(&mut self, reason: &str) {
        self.confirmations.clear();
        self.confirm = None;
        self.editing = false;
        self.command = None;
        self.peer = Some("runtime gone".into());
        self.overlay = Some(Overlay::RuntimeGone {
            reason: crate::sanitize::sanitize_line(reason).into_owned(),
        });
    }

    /// The runtime this console is attached to sends a fresh snapshot (on attaching, or after
    /// this console fell behind it): what was folded from events — tasks and their output,
    /// audit lines, violations, open questions — is forgotten and rebuilt from the events
    /// that follow. `missed` events were skipped by falling behind.
    pub fn resync(&mut self, missed: u64) {
        self.tasks.clear();
        self.index.clear();
        self.tasks_dropped = 0;
        self.selected = None;
        self.output_anchor = None;
        self.audit.recent.clear();
        self.violations.clear();
        self.violation_count = 0;
        self.confirmations.clear();
        self.confirm = None;
        // The snapshot holds the benchmark run going (or the last one), told again from its
        // start; a run this console just asked for stays, to take its news.
        if self
            .bench
            .run
            .as_ref()
            .is_some_and(|r| r.state != BenchState::Starting || r.number.is_some())
        {
            self.bench.run = None;
        }
        if missed > 0 {
            self.missed_events = self.missed_events.saturating_add(missed);
            self.flash(
                format!(
                    "this console fell behind the runtime by {missed} events; redrawn from its \
                     snapshot"
                ),
                FlashLevel::Info,
            );
        }
    }

    /// Folds one core event into the view, then keeps the view within its bounds
    /// (`App::keep_bounds`).
    pub fn apply(&mut self, event: Event) {
        let submitted = matches!(event, Event::TaskSubmitted { .. });
        let shown = self.shown_task().map(|t| (t.id, t.output.dropped_lines()));
        self.fold(event);
        self.keep_bounds(shown, submitted);
        self.settle_quit_question();
    }

    /// The quit question follows the work it warns of: its count stays current, and once
    /// nothing is left to cancel the console does what the operator asked and quits.
    pub(super) fn settle_quit_question(&mut self) {
        if !matches!(self.overlay, Some(Overlay::ConfirmQuit { .. })) {
            return;
        }
        let active = self.active_tasks();
        if active == 0 && !self.bench_running() {
            self.overlay = None;
            self.quit = true;
        } else {
            self.overlay = Some(Overlay::ConfirmQuit { active });
        }
    }

    /// Hands each event to the step that folds it, by family: a task's life, the link, the
    /// audit trail, and governance (violations, confirmations, tools).
    fn fold(&mut self, event: Event) {
        match event {
            Event::TaskSubmitted {
                id,
                kind,
                title,
                priority,
                backend,
                model,
                actor,
                at,
            } => self.task_submitted(
                TaskView::submitted(id, kind, title, priority, backend, model, at),
                actor.as_deref(),
            ),
            Event::TaskState {
                id,
                status,
                attempt,
                at,
            } => self.task_state(id, status, attempt, at),
            Event::AgentStep {
                id,
                tool,
                arguments,
                outcome,
                summary,
                ..
            } => self.agent_step(id, tool, arguments, &outcome, summary),
            Event::OutputDelta { id, text } => self.output_delta(id, &text),
            Event::ExecutionFinished {
                id,
                usage,
                finish_reason,
                latency_ms,
                ..
            } => self.execution_finished(id, usage, finish_reason, latency_ms),
            Event::BackendChanged { backend, model, .. } => self.backend_changed(backend, model),
            Event::LinkChanged { link, switched, .. } => self.link_changed(link, switched),
            Event::McpServer {
                server,
                state,
                tools,
                detail,
                again,
                ..
            } => {
                if !again {
                    self.mcp_server(&server, &state, tools, detail);
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
            } => self.audit_recorded(seq, event_type, actor, action, outcome, hash),
            Event::AuditCheckpoint { tree_size, at, .. } => self.audit_checkpoint(tree_size, at),
            Event::AuditVerified {
                entries,
                failure,
                duration_ms,
                at,
            } => self.audit_verified(entries, failure, duration_ms, at),
            Event::SafetyViolation {
                operation,
                level,
                rule,
                reason,
                actor,
                at,
                ..
            } => self.safety_violation(operation, level, rule, reason, actor, at),
            Event::ConfirmationRequested {
                request,
                id,
                operation,
                reason,
                detail,
                scopable,
            } => self.confirmation_requested(request, id, operation, reason, detail, scopable),
            Event::ToolInvoked {
                tool,
                outcome,
                summary,
                ..
            } => self.tool_invoked(tool, outcome, summary),
            Event::ConfirmationAnswered {
                request,
                allowed,
                by,
                ..
            } => self.confirmation_answered(request, allowed, &by),
        }
    }

    // A task's life.

    /// A new task joins the list; the selection follows it unless the operator moved away.
    fn task_submitted(&mut self, task: TaskView, actor: Option<&str>) {
        // A benchmark run's task is counted in the run's row, not listed (`bench.rs`).
        if self.claim_bench_task(task.id, actor) {
            return;
        }
        // The same execution submitted again (a fleet task another worker took over when its
        // first worker was lost) starts its row anew rather than leave a second, stale one.
        if let Some(row) = self
            .index
            .get(&task.id)
            .copied()
            .and_then(|at| self.tasks.get_mut(at))
            .filter(|row| row.id == task.id)
        {
            *row = task;
            return;
        }
        self.index.insert(task.id, self.tasks.len());
        self.tasks.push(task);
        if self.follow || self.selected.is_none() {
            self.selected = Some(self.tasks.len() - 1);
            self.output_anchor = None;
        }
    }

    /// A task's new state: kept in its timeline, a new attempt marked in its output, a failure
    /// flashed.
    fn task_state(&mut self, id: ExecutionId, status: TaskStatus, attempt: u32, at: DateTime<Utc>) {
        if status.is_final() && self.bench_task_ended(id) {
            return;
        }
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
            TaskStatus::Failed { error, .. } => Some(format!("task {short} failed: {error}")),
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

    /// One step of the agent loop: a line in the task's output, the tool's result after it.
    fn agent_step(
        &mut self,
        id: ExecutionId,
        tool: String,
        arguments: String,
        outcome: &str,
        summary: String,
    ) {
        if let Some(t) = self.task_mut(id) {
            let (kind, result) = match outcome {
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

    /// Streamed text, sanitized, onto the task's output.
    fn output_delta(&mut self, id: ExecutionId, text: &str) {
        if let Some(t) = self.task_mut(id) {
            t.output.push(&crate::sanitize::sanitize(text));
            t.deltas += 1;
        }
    }

    /// A finished execution's usage, finish reason and latency.
    fn execution_finished(
        &mut self,
        id: ExecutionId,
        usage: TokenUsage,
        finish_reason: FinishReason,
        latency_ms: u64,
    ) {
        if let Some(t) = self.task_mut(id) {
            t.usage = Some(usage);
            t.finish_reason = Some(match finish_reason {
                FinishReason::Other(other) => FinishReason::Other(one_line(other)),
                known => known,
            });
            t.latency_ms = Some(latency_ms);
        }
    }

    // The link.

    /// Another backend or model: flashed, and shown in the status bar.
    fn backend_changed(&mut self, backend: String, model: String) {
        let (backend, model) = (one_line(backend), one_line(model));
        self.flash(format!("backend: {backend}/{model}"), FlashLevel::Info);
        self.link.backend = backend;
        self.link.model = model;
    }

    /// The link's new status; a switch or a blackout beginning or ending is flashed.
    fn link_changed(&mut self, link: LinkStatus, switched: bool) {
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
                " — simulation is off (`:sim on` to switch it on)"
            }
        );
        self.link.link = link;
        if news {
            self.flash(text, FlashLevel::Info);
        }
    }

    // The audit trail.

    /// A new entry: the trail's head moves on, and the pane keeps the entry in order.
    fn audit_recorded(
        &mut self,
        seq: u64,
        event_type: String,
        actor: String,
        action: String,
        outcome: String,
        hash: String,
    ) {
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

    /// A signed checkpoint: the newest (largest) one is kept.
    fn audit_checkpoint(&mut self, tree_size: u64, at: DateTime<Utc>) {
        self.audit.signs_checkpoints = true;
        if self
            .audit
            .checkpoint
            .is_none_or(|(size, _)| tree_size >= size)
        {
            self.audit.checkpoint = Some((tree_size, at));
        }
    }

    /// A verification's result; a failure is flashed.
    fn audit_verified(
        &mut self,
        entries: u64,
        failure: Option<String>,
        duration_ms: u64,
        at: DateTime<Utc>,
    ) {
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

    // Governance: violations, confirmations, tools.

    /// A blocked act: flashed, counted, and kept for the Violations pane.
    fn safety_violation(
        &mut self,
        operation: String,
        level: String,
        rule: String,
        reason: String,
        actor: String,
        at: DateTime<Utc>,
    ) {
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
            seq: self.violation_count,
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

    /// A confirmation the operator is asked for: queued (and the bell rung), announced only
    /// while they type.
    fn confirmation_requested(
        &mut self,
        request: u64,
        id: ExecutionId,
        operation: String,
        reason: String,
        detail: Option<String>,
        scopable: bool,
    ) {
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

    /// A tool the operator called: its outcome flashed.
    /// An MCP server came up or went down: flashed (a start beginning, or a fall for the
    /// reason of the last one, is not news). The hosting console's Log pane has the same line
    /// from the log.
    fn mcp_server(&mut self, server: &str, state: &str, tools: u32, detail: Option<String>) {
        let server = one_line(server.to_string());
        match state {
            "up" => self.flash(
                format!("mcp server '{server}' is up: {tools} tools"),
                FlashLevel::Info,
            ),
            "down" => self.flash(
                format!(
                    "mcp server '{server}' is down: {}",
                    one_line(detail.unwrap_or_default())
                ),
                FlashLevel::Error,
            ),
            _ => {}
        }
    }

    fn tool_invoked(&mut self, tool: String, outcome: String, summary: String) {
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

    fn task_mut(&mut self, id: ExecutionId) -> Option<&mut TaskView> {
        let i = *self.index.get(&id)?;
        self.tasks.get_mut(i)
    }
}

impl TaskView {
    /// A task just submitted, queued, its texts sanitized.
    fn submitted(
        id: ExecutionId,
        kind: String,
        title: String,
        priority: Priority,
        backend: Option<String>,
        model: Option<String>,
        at: DateTime<Utc>,
    ) -> TaskView {
        TaskView {
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
        }
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
