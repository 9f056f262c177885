//! The gate every act passes: Cedar policy → safety boundary → operator confirmation → (the act,
//! done by the caller) → audit entry + event.
//!
//! [`CoreInner::admit`] runs the first three steps for one [`Passage`]: each policy request is
//! decided and recorded (`POLICY_CHECK`), the operation's names go to the safety boundary
//! (a block is recorded as `SAFETY_VIOLATION`), and a rule that asks for confirmation asks the
//! operator through the one confirmation path (the answer is recorded as `SAFETY_CHECK`, a "no"
//! as a violation). Executions and tool calls both pass it; link and backend switches pass its
//! policy step. [`CoreInner::record`] is the one place that appends an audit entry and publishes
//! its [`Event::AuditRecorded`]; it is async and awaits the store's acknowledgement that the
//! entry is durable, so a task waiting for the disk holds no worker thread.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{ConfirmationPolicy, Confirmations, CoreInner, REFUSED};
use crate::events::{ConfirmScope, Event, EventSink, ExecutionId};
use crate::governance::policy::PolicyRequest;
use crate::governance::{
    AuditEntry, AuditError, AuditEventType, AuditRecord, JournalBlob, PolicyDecision,
    summarize_input,
};
use crate::runtime::scheduler::{TaskError, off_slot};
use crate::tools::safety::{SafetyBoundary, SafetyLevel, SafetyVerdict, Violation};

/// The rule named when a tool asks for confirmation by itself.
pub(crate) const TOOL_CONFIRMATION: &str = "tool_confirmation";

/// One act at the gate: what policy decides, what the safety boundary checks, who asks.
#[derive(Debug)]
pub(crate) struct Passage<'a> {
    /// Policy requests, all of which must be allowed (a tool call: `invoke_tool`, and
    /// `read_file`/`write_file` for the files it touches).
    pub policy: Vec<PolicyRequest>,
    /// The operation's names for the safety boundary, the most specific last.
    pub operations: &'a [&'a str],
    /// False when the act cannot be undone (blocked while `reversible_only` is on).
    pub reversible: bool,
    /// True when the act itself asks for confirmation (a tool that always asks), whatever
    /// `require_confirmation` says.
    pub confirm: bool,
    /// Who asks.
    pub actor: &'a str,
    /// The execution or tool call the audit entries and events belong to.
    pub id: ExecutionId,
    /// False on a retry whose first attempt was already confirmed.
    pub ask: bool,
    /// What exactly would happen, shown with a confirmation (a tool call's arguments,
    /// sanitized and shortened).
    pub detail: Option<String>,
    /// True for tool calls: a yes may cover the same tool for the rest of the session.
    pub scopable: bool,
    /// The call's arguments, for an approval with an argument pattern (tool calls only).
    pub arguments: Option<&'a serde_json::Value>,
    /// Nobody attends the act (a benchmark execution or its model's tool call): a
    /// confirmation is denied at once, whatever the policy or a session-wide yes says, so an
    /// unattended run never waits for an answer that cannot come.
    pub unattended: bool,
}

/// Who denied a confirmation in an unattended execution, as the audit trail records it.
pub(crate) const UNATTENDED: &str = "unattended: a benchmark run has no operator to ask";

impl CoreInner {
    pub(super) fn confirmations(&self) -> std::sync::MutexGuard<'_, Confirmations> {
        match self.confirmations.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Policy, safety and confirmation for one act; `Ok` means the caller may act.
    /// Refusals end with a [`REFUSED`] task error whose message is the operator's sentence.
    pub(crate) async fn admit(
        &self,
        passage: &Passage<'_>,
        cancel: &CancellationToken,
    ) -> Result<(), TaskError> {
        for request in &passage.policy {
            self.enforce_policy(request, Some(passage.id)).await?;
        }
        let operation = passage.operations.last().copied().unwrap_or_default();
        let verdict =
            match self
                .safety
                .check_any(passage.operations, passage.reversible, passage.actor)
            {
                SafetyVerdict::Allowed if passage.confirm => SafetyVerdict::NeedsConfirmation {
                    rule: TOOL_CONFIRMATION.into(),
                },
                other => other,
            };
        match verdict {
            SafetyVerdict::Allowed => Ok(()),
            SafetyVerdict::Blocked(v) => {
                tracing::warn!(rule = %v.rule, operation, "refused by the safety boundary");
                self.record_violation(&v, Some(passage.id)).await?;
                Err(TaskError::permanent(REFUSED, v.reason))
            }
            // Asked once per task: a retry was already confirmed.
            SafetyVerdict::NeedsConfirmation { .. } if !passage.ask => Ok(()),
            SafetyVerdict::NeedsConfirmation { rule } => {
                let granted = if passage.scopable && !passage.unattended {
                    let tool = operation.strip_prefix("tool:").unwrap_or(operation);
                    self.confirmations()
                        .approvals
                        .covering(tool, passage.arguments)
                } else {
                    None
                };
                let (allowed, by, scope) = match granted {
                    None if passage.unattended => {
                        (false, UNATTENDED.to_string(), ConfirmScope::Once)
                    }
                    Some(approval) => (
                        true,
                        format!("standing approval #{approval}"),
                        ConfirmScope::Session,
                    ),
                    None => {
                        let Some(answer) = self.confirm(passage, operation, &rule, cancel).await
                        else {
                            return Err(TaskError::permanent(
                                "cancelled",
                                "cancelled while waiting for confirmation",
                            ));
                        };
                        answer
                    }
                };
                let decision = Violation {
                    operation: operation.to_string(),
                    level: SafetyLevel::NeedsConfirmation,
                    rule: rule.clone(),
                    reason: format!(
                        "confirmation {} ({by})",
                        if allowed { "given" } else { "denied" }
                    ),
                    actor: passage.actor.to_string(),
                    at: Utc::now(),
                };
                self.audit_safety(
                    AuditEventType::SafetyCheck,
                    &decision,
                    if allowed { "allowed" } else { "denied" },
                    Some(passage.id),
                    Some(scope),
                )
                .await?;
                if allowed {
                    return Ok(());
                }
                let mut v = SafetyBoundary::denied(operation, passage.actor, &by);
                v.rule = rule;
                self.record_violation(&v, Some(passage.id)).await?;
                Err(TaskError::permanent(REFUSED, v.reason))
            }
        }
    }

    /// Appends one audit entry and publishes it; `Ok(None)` when audit is off.
    pub(crate) async fn record(
        &self,
        record: AuditRecord,
        execution: Option<ExecutionId>,
    ) -> Result<Option<Arc<AuditEntry>>, AuditError> {
        self.record_journaled(record, None, execution).await
    }

    /// [`CoreInner::record`] keeping `journal` (what a tool call replaced) with the entry, in
    /// the same commit (see `governance::journal`).
    pub(crate) async fn record_journaled(
        &self,
        record: AuditRecord,
        journal: Option<JournalBlob>,
        execution: Option<ExecutionId>,
    ) -> Result<Option<Arc<AuditEntry>>, AuditError> {
        let Some(trail) = &self.audit else {
            return Ok(None);
        };
        // A client of a serving runtime asked: the entry names it.
        let record = super::caller::stamp(record);
        // Waiting for the commit is not work at the backend: the task's slot goes to the next
        // task meanwhile, so a run bound by commit latency keeps every slot busy.
        let entry = off_slot(trail.record_journaled(record, journal)).await?;
        self.emitter.emit(Event::AuditRecorded {
            seq: entry.seq,
            event_type: entry.event_type.name().into(),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            outcome: entry.outcome.clone(),
            hash: entry.hash.clone(),
            execution,
        });
        Ok(Some(entry))
    }

    /// [`CoreInner::record`] for a task: a failure ends the task, naming `what` was lost.
    pub(crate) async fn record_for_task(
        &self,
        record: AuditRecord,
        execution: Option<ExecutionId>,
        what: &str,
    ) -> Result<Option<Arc<AuditEntry>>, TaskError> {
        self.record(record, execution).await.map_err(|e| {
            tracing::error!(error = %e, "audit record failed");
            TaskError::permanent(
                "audit",
                format!("the audit trail could not record {what}: {e}"),
            )
        })
    }

    /// Asks the policy engine, records the decision (`POLICY_CHECK`) and, on a deny, publishes
    /// it as a violation. A request the engine cannot decide is denied (fail closed).
    pub(crate) async fn enforce_policy(
        &self,
        request: &PolicyRequest,
        id: Option<ExecutionId>,
    ) -> Result<PolicyDecision, TaskError> {
        let policy = self.policy_engine();
        let (decision, error) = match policy.decide(request) {
            Ok(d) => (d, None),
            Err(e) => (
                PolicyDecision {
                    allowed: false,
                    policies: Vec::new(),
                    errors: vec![e.to_string()],
                },
                Some(e),
            ),
        };
        // The sentence for the operator, needed only when the answer is no.
        let reason = match &error {
            Some(e) => format!("the policy engine could not decide: {e}"),
            None if decision.allowed => String::new(),
            None => decision.reason(request),
        };
        if self.audit.is_some() {
            let context: serde_json::Map<String, serde_json::Value> = request
                .context
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                .collect();
            let mut metadata = serde_json::json!({
                "policies": decision.policies.iter().map(|p| &p.id).collect::<Vec<_>>(),
                "jurisdictions": decision.jurisdictions(),
                "context": context,
                "execution_id": id.map(|i| i.to_string()),
            });
            // An allow's policies say why; a deny also keeps the sentence shown.
            if !decision.allowed {
                metadata["reason"] = reason.as_str().into();
            }
            if !decision.errors.is_empty() {
                metadata["errors"] = decision.errors.clone().into();
            }
            // Which set decided: what `veyra policy replay` compares a candidate set against.
            if let Some(hash) = policy.set_hash() {
                metadata["policy_set"] = hash.into();
            }
            self.record_for_task(
                AuditRecord {
                    event_type: AuditEventType::PolicyCheck,
                    actor: request.principal.clone(),
                    action: request.action.clone(),
                    resource: request.resource.to_string(),
                    outcome: decision.name().into(),
                    input_summary: summarize_input(&request.describe()),
                    metadata,
                },
                id,
                "a policy decision",
            )
            .await?;
        }
        if decision.allowed {
            return Ok(decision);
        }
        tracing::warn!(rule = %decision.rule(), request = %request.describe(), "refused by policy");
        self.emitter.emit(Event::SafetyViolation {
            id,
            operation: format!("{} {}", request.action, request.resource),
            level: SafetyLevel::Blocked.name().into(),
            rule: format!("policy:{}", decision.rule()),
            reason: reason.clone(),
            actor: request.principal.clone(),
            at: Utc::now(),
        });
        Err(match error {
            Some(_) => TaskError::permanent("policy", reason),
            None => TaskError::permanent(REFUSED, reason),
        })
    }

    /// Records a violation (`SAFETY_VIOLATION`) and publishes it.
    pub(crate) async fn record_violation(
        &self,
        v: &Violation,
        id: Option<ExecutionId>,
    ) -> Result<(), TaskError> {
        self.emitter.emit(Event::SafetyViolation {
            id,
            operation: v.operation.clone(),
            level: v.level.name().into(),
            rule: v.rule.clone(),
            reason: v.reason.clone(),
            actor: v.actor.clone(),
            at: v.at,
        });
        self.audit_safety(AuditEventType::SafetyViolation, v, "refused", id, None)
            .await
    }

    async fn audit_safety(
        &self,
        event_type: AuditEventType,
        v: &Violation,
        outcome: &str,
        id: Option<ExecutionId>,
        scope: Option<ConfirmScope>,
    ) -> Result<(), TaskError> {
        let mut metadata = serde_json::json!({
            "rule": v.rule,
            "level": v.level.name(),
            "reason": v.reason,
            "execution_id": id.map(|i| i.to_string()),
        });
        if let Some(scope) = scope {
            metadata["scope"] = scope.name().into();
        }
        self.record_for_task(
            AuditRecord {
                event_type,
                actor: v.actor.clone(),
                action: v.operation.clone(),
                resource: "safety_boundary".into(),
                outcome: outcome.into(),
                input_summary: summarize_input(&v.operation),
                metadata,
            },
            id,
            "a safety decision",
        )
        .await
        .map(|_| ())
    }

    /// Asks for a confirmation per the policy; `None` when the task was cancelled meanwhile.
    /// A session-wide yes to a scopable passage stands as an approval of its tool (the
    /// registered tool's exact name, never text the model wrote: see `approvals`).
    async fn confirm(
        &self,
        passage: &Passage<'_>,
        operation: &str,
        rule: &str,
        cancel: &CancellationToken,
    ) -> Option<(bool, String, ConfirmScope)> {
        let id = passage.id;
        let (request, rx) = {
            let mut c = self.confirmations();
            match c.policy {
                ConfirmationPolicy::AllowAll => {
                    return Some((true, "--yes".into(), ConfirmScope::Once));
                }
                ConfirmationPolicy::DenyAll => {
                    return Some((false, "no terminal to ask on".into(), ConfirmScope::Once));
                }
                ConfirmationPolicy::Ask => {}
            }
            let request = c.next;
            c.next += 1;
            let (tx, rx) = oneshot::channel();
            c.waiting.insert(request, (id, tx));
            (request, rx)
        };
        self.emitter.emit(Event::ConfirmationRequested {
            request,
            id,
            operation: operation.to_string(),
            reason: if rule == TOOL_CONFIRMATION {
                format!("'{operation}' always asks for confirmation")
            } else {
                format!("'{operation}' is in governance.require_confirmation")
            },
            detail: passage.detail.clone(),
            scopable: passage.scopable,
        });
        // Should the wait end without an answer — the task cancelled, or the act abandoned
        // (its future dropped: a client of a serving runtime went away) — the question is
        // withdrawn, said as a no, so no console keeps asking and no later yes acts.
        let mut withdraw = Withdraw {
            core: self,
            request,
            id,
            armed: true,
        };
        let answer = tokio::select! {
            answer = rx => answer.ok(),
            () = cancel.cancelled() => None,
        };
        withdraw.armed = answer.is_none();
        drop(withdraw);
        let (allowed, by, scope) = {
            let mut c = self.confirmations();
            c.waiting.remove(&request);
            let (allowed, by, asked, client) = answer?;
            // Only a yes to a tool call may reach beyond this request.
            let mut scope = if allowed && passage.scopable {
                asked
            } else {
                ConfirmScope::Once
            };
            if scope == ConfirmScope::Session {
                let tool = operation.strip_prefix("tool:").unwrap_or(operation);
                if let Err(e) = c.approvals.grant(
                    tool,
                    None,
                    format!("confirmation #{request} ({by})"),
                    client,
                ) {
                    // Too many stand: this yes still answers this request.
                    tracing::warn!(error = %e, "a yes for the session was kept for this call only");
                    scope = ConfirmScope::Once;
                }
            }
            (allowed, by, scope)
        };
        self.emitter.emit(Event::ConfirmationAnswered {
            request,
            id,
            allowed,
            by: by.clone(),
            scope,
        });
        Some((allowed, by, scope))
    }
}

/// Withdraws a confirmation request whose wait ended without an answer (see its use).
struct Withdraw<'a> {
    core: &'a CoreInner,
    request: u64,
    id: ExecutionId,
    armed: bool,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self
            .core
            .confirmations()
            .waiting
            .remove(&self.request)
            .is_some()
        {
            self.core.emitter.emit(Event::ConfirmationAnswered {
                request: self.request,
                id: self.id,
                allowed: false,
                by: "nobody: the request was withdrawn".into(),
                scope: ConfirmScope::Once,
            });
        }
    }
}
