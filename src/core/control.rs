//! The core's control plane: what the operator changes while the core runs, and what they ask
//! of it. The link preset ([`VeyraCore::set_preset`], [`VeyraCore::watch_link`]), the backend
//! and model ([`VeyraCore::set_backend`]), confirmations (their policy and the operator's
//! answers), cancelling and shutting down, and the health of the backend and the audit chain
//! ([`VeyraCore::health_check`], [`VeyraCore::verify_audit`]). Each change is checked against
//! policy, audited, and published once as an [`Event`].

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::config::LatencyPreset;
use crate::error::VeyraError;
use crate::events::{ConfirmScope, Event, EventSink, ExecutionId, LinkStatus};
use crate::governance::policy::{PolicyRequest, Resource};
use crate::governance::{AuditEventType, AuditRecord, VerifyReport, summarize_input};
use crate::runtime::scheduler::ShutdownReport;

use super::{AuditHealth, ConfirmationPolicy, HealthReport, VeyraCore, task_error};

impl VeyraCore {
    /// The simulated link as the status bar shows it.
    pub fn link_status(&self) -> LinkStatus {
        self.inner.link.status()
    }

    /// Switches the link preset. Tasks already in transit keep their delay; tasks not yet sent
    /// use the new preset. Records a `LATENCY_CHANGE` audit entry and publishes the new link.
    /// Refused (exit 4) when policy denies the operator `switch_preset` on `link:<preset>`.
    pub async fn set_preset(&self, preset: LatencyPreset) -> Result<LinkStatus, VeyraError> {
        let request = PolicyRequest::new(
            "operator",
            "switch_preset",
            Resource::link(preset),
            self.inner.link.preset(),
        );
        self.inner
            .enforce_policy(&request, None)
            .await
            .map_err(|e| task_error(&e.kind, &e.message))?;
        let previous = self.inner.link.set_preset(preset);
        let status = self.link_status();
        self.inner
            .record(
                AuditRecord {
                    event_type: AuditEventType::LatencyChange,
                    actor: "operator".into(),
                    action: "switch_preset".into(),
                    resource: format!("link:{}", preset.name()),
                    outcome: "success".into(),
                    input_summary: summarize_input(preset.name()),
                    metadata: serde_json::json!({
                        "from": previous.name(),
                        "to": preset.name(),
                        "one_way_ms": status.one_way_ms,
                        "simulated": status.simulated,
                    }),
                },
                None,
            )
            .await?;
        self.inner.publish_link(true);
        Ok(status)
    }

    /// Switches the simulated link on or off (`:sim on|off`). Off, no task waits on light
    /// time or a blackout — those on their way arrive at once — while the status bar still
    /// tells the link's geometry; on, tasks sent from now on cross it. Benchmark items never
    /// cross it either way. Records a `LATENCY_CHANGE` audit entry (action `switch_simulation`)
    /// and publishes the link; switching to the state in force changes and records nothing.
    pub async fn set_simulated(&self, on: bool) -> Result<LinkStatus, VeyraError> {
        let word = |on: bool| if on { "on" } else { "off" };
        // One switch, one record: the swap says whether this call changed anything.
        let was = self.inner.link.set_on(on);
        if was == on {
            return Ok(self.link_status());
        }
        let status = self.link_status();
        self.inner
            .record(
                AuditRecord {
                    event_type: AuditEventType::LatencyChange,
                    actor: "operator".into(),
                    action: "switch_simulation".into(),
                    resource: format!("link:{}", status.preset),
                    outcome: "success".into(),
                    input_summary: summarize_input(word(on)),
                    metadata: serde_json::json!({
                        "from": word(was),
                        "to": word(on),
                        "preset": status.preset,
                        "one_way_ms": status.one_way_ms,
                    }),
                },
                None,
            )
            .await?;
        self.inner.publish_link(true);
        Ok(status)
    }

    /// Keeps the link's state current for watchers: every `period` (on tokio's clock) it
    /// publishes [`Event::LinkChanged`] if the one-way delay moved by a whole second or more
    /// since the last one published, or the conjunction state changed (a blackout began or
    /// ended). The console runs it so its status bar never goes stale. Watching stops when the
    /// handle is dropped, or with the core.
    pub fn watch_link(&self, period: Duration) -> tokio_util::task::AbortOnDropHandle<()> {
        let core = Arc::downgrade(&self.inner);
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let Some(core) = core.upgrade() else { return };
                core.publish_link(false);
            }
        }))
    }

    /// Model for prompts that name none.
    pub fn model_name(&self) -> String {
        self.inner.current_model()
    }

    /// Makes `backend` (and `model`, else the configured one) current for prompts sent from
    /// now on; tasks already sent keep theirs. Refused (exit 4) when policy denies the operator
    /// `switch_backend` on `backend:<name>`; an unknown backend is a usage error. Records a
    /// `CONFIG_CHANGE` audit entry and publishes [`Event::BackendChanged`].
    pub async fn set_backend(&self, backend: &str, model: Option<&str>) -> Result<(), VeyraError> {
        let request = PolicyRequest::new(
            "operator",
            "switch_backend",
            Resource::backend(backend),
            self.inner.link.preset(),
        );
        self.inner
            .enforce_policy(&request, None)
            .await
            .map_err(|e| task_error(&e.kind, &e.message))?;
        // The same checks start-up runs ([`VeyraCore::with_parts`]): the backend builds from
        // the configuration (a provider's API key is there), and the model is one it knows.
        let new = self
            .inner
            .registry
            .get_backend(backend, &self.inner.config.model)?;
        let model = model.map_or_else(|| self.inner.config.model.model.clone(), str::to_string);
        check_model(&self.inner.config.model, backend, &model)?;
        let previous = {
            let mut b = match self.inner.backend.write() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            std::mem::replace(&mut *b, new)
        };
        let previous_model = {
            let mut m = match self.inner.model.write() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            std::mem::replace(&mut *m, model.clone())
        };
        self.inner
            .record(
                AuditRecord {
                    event_type: AuditEventType::ConfigChange,
                    actor: "operator".into(),
                    action: "switch_backend".into(),
                    resource: format!("backend:{backend}"),
                    outcome: "success".into(),
                    input_summary: summarize_input(&format!("{backend}/{model}")),
                    metadata: serde_json::json!({
                        "from": { "backend": previous.name(), "model": previous_model },
                        "to": { "backend": backend, "model": model },
                    }),
                },
                None,
            )
            .await?;
        tracing::info!(from = %previous.name(), to = %backend, %model, "backend switched");
        self.inner.emitter.emit(Event::BackendChanged {
            backend: backend.to_string(),
            model,
            at: Utc::now(),
        });
        Ok(())
    }

    /// Loads the policy set `governance:` names again (its files as they are now), and, when
    /// it loads, validates and can answer Veyra's requests, puts it in place of the one in
    /// force for every decision from then on; recorded as a `CONFIG_CHANGE` with both sets'
    /// hashes. A set that does not load changes nothing, and the error says where it is
    /// wrong. Returns the hashes before and after.
    pub async fn reload_policy(&self) -> Result<(String, String), VeyraError> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let hash = |p: &dyn crate::governance::PolicyEngine| {
            p.set_hash().unwrap_or_else(|| "unknown".into())
        };
        let from = hash(self.inner.policy_engine().as_ref());
        let config = self.inner.config.governance.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            crate::governance::CedarEngine::from_config(&config)
        })
        .await
        .map_err(|e| VeyraError::Runtime(format!("loading the policy set: {e}")))
        .and_then(|r| r.map_err(VeyraError::from))
        .and_then(|engine| {
            let engine: Arc<dyn crate::governance::PolicyEngine> = Arc::new(engine);
            super::probe_policy(engine.as_ref(), &self.inner.config).map(|()| engine)
        });
        let new = match loaded {
            Ok(engine) => engine,
            Err(e) => {
                // Tried and refused: on the record too, with why; the set in force stays. The
                // load's error is the one to tell, even if recording it failed too.
                let _ = self
                    .inner
                    .record(
                        AuditRecord {
                            event_type: AuditEventType::ConfigChange,
                            actor: "operator".into(),
                            action: "reload_policy".into(),
                            resource: format!(
                                "policy:{}",
                                from.chars().take(16).collect::<String>()
                            ),
                            outcome: "failure".into(),
                            input_summary: summarize_input(&e.to_string()),
                            metadata: serde_json::json!({ "from": from, "error": e.to_string() }),
                        },
                        None,
                    )
                    .await
                    .inspect_err(
                        |r| tracing::error!(error = %r, "recording a refused policy reload failed"),
                    );
                return Err(e);
            }
        };
        let to = hash(new.as_ref());
        let sources = new.sources();
        // Recorded before it is in force: a set the trail could not record never decides.
        self.inner
            .record(
                AuditRecord {
                    event_type: AuditEventType::ConfigChange,
                    actor: "operator".into(),
                    action: "reload_policy".into(),
                    resource: format!("policy:{}", to.chars().take(16).collect::<String>()),
                    outcome: "success".into(),
                    input_summary: summarize_input(&sources.join(", ")),
                    metadata: serde_json::json!({
                        "from": from,
                        "to": to,
                        "sources": sources,
                    }),
                },
                None,
            )
            .await?;
        {
            let mut p = match self.inner.policy.write() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            *p = new;
        }
        tracing::info!(from = %from, to = %to, "policy set reloaded");
        Ok((from, to))
    }

    /// How the boundary's confirmation requests are answered from now on.
    pub fn set_confirmation_policy(&self, policy: ConfirmationPolicy) {
        self.inner.confirmations().policy = policy;
    }

    /// Answers a pending confirmation; `by` names who answered (for the audit trail).
    pub fn answer_confirmation(
        &self,
        request: u64,
        allowed: bool,
        by: &str,
    ) -> Result<(), VeyraError> {
        self.answer_confirmation_scoped(request, allowed, ConfirmScope::Once, by)
    }

    /// Answers a pending confirmation; a yes with [`ConfirmScope::Session`] to a tool call
    /// also allows later calls of the same tool until it is revoked (`VeyraCore::revoke_approval`),
    /// the client that answered leaves, or the core shuts down (the scope is ignored for
    /// anything else, and recorded in the audit trail either way).
    pub fn answer_confirmation_scoped(
        &self,
        request: u64,
        allowed: bool,
        scope: ConfirmScope,
        by: &str,
    ) -> Result<(), VeyraError> {
        let waiting = self.inner.confirmations().waiting.remove(&request);
        match waiting {
            Some((_, tx)) => {
                // The task may have been cancelled meanwhile; then nobody waits for the answer.
                let _ = tx.send((allowed, by.to_string(), scope, super::caller::current()));
                Ok(())
            }
            None => Err(VeyraError::Usage(format!(
                "no pending confirmation #{request}; it was answered or its task ended"
            ))),
        }
    }

    /// Cancels a task (queued, in transit, waiting or running).
    pub fn cancel(&self, id: ExecutionId) -> Result<(), VeyraError> {
        self.inner
            .scheduler
            .cancel(id)
            .map_err(|e| VeyraError::Usage(e.to_string()))
    }

    /// Stops accepting work, cancels what waits, and gives running tasks `grace` to finish.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        self.inner.scheduler.shutdown(grace).await
    }

    /// Stops at once for `signal` (`SIGTERM`, `SIGHUP`, `SIGINT`): [`VeyraCore::shutdown`]
    /// with no grace, so everything in flight is cancelled the usual way (a running
    /// execution's `EXECUTION` entry says `cancelled`), then one `SYSTEM` entry records the
    /// signal and every task it cancelled, those that never reached a backend included.
    /// Returns what was cancelled and whether the audit trail recorded it.
    pub async fn stop_on_signal(&self, signal: &str) -> (ShutdownReport, bool) {
        let report = self.shutdown(Duration::ZERO).await;
        let cancelled = report.left_queued.len() + report.cancelled_running;
        let recorded = self
            .inner
            .record(
                AuditRecord {
                    event_type: AuditEventType::System,
                    actor: "operator".into(),
                    action: "shutdown".into(),
                    resource: "process".into(),
                    outcome: if cancelled > 0 {
                        "cancelled"
                    } else {
                        "success"
                    }
                    .into(),
                    input_summary: summarize_input(signal),
                    metadata: serde_json::json!({
                        "signal": signal,
                        "cancelled_running": report.cancelled_running,
                        "left_queued": report
                            .left_queued
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>(),
                    }),
                },
                None,
            )
            .await;
        let audited = match recorded {
            Ok(entry) => entry.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "the signal's shutdown could not be recorded");
                false
            }
        };
        (report, audited)
    }

    /// Checks the backend and the audit chain. The chain's full verification reads the whole
    /// log, so it runs on the blocking pool, not on an async worker.
    pub async fn health_check(&self) -> HealthReport {
        let backend = self.inner.current_backend();
        let backend_error = backend.health_check().await.err().map(|e| e.to_string());
        let audit = match self.inner.audit.clone() {
            None => None,
            Some(trail) => {
                let entries = trail.len();
                let verified = tokio::task::spawn_blocking(move || trail.verify_integrity()).await;
                let failure = match verified {
                    Ok(result) => result.err().map(|e| e.to_string()),
                    Err(e) => Some(format!("the audit verification stopped: {e}")),
                };
                Some(AuditHealth { entries, failure })
            }
        };
        HealthReport {
            backend: backend.name().to_string(),
            backend_error,
            audit,
        }
    }

    /// Verifies the audit chain now and publishes [`Event::AuditVerified`].
    /// `None` when audit is off.
    pub fn verify_audit(&self) -> Option<Result<VerifyReport, VeyraError>> {
        let trail = self.inner.audit.as_ref()?;
        let started = std::time::Instant::now();
        let result = trail.verify_integrity();
        self.inner.emitter.emit(Event::AuditVerified {
            entries: match &result {
                Ok(r) => r.entries,
                Err(_) => trail.len(),
            },
            failure: result.as_ref().err().map(|e| e.to_string()),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            at: Utc::now(),
        });
        Some(result.map_err(VeyraError::from))
    }
}

/// Backends that talk to a provider's own API when `model.base_url` is not set, and the
/// host of that API.
const PROVIDER_APIS: [(&str, &str); 2] = [
    ("openai", "://api.openai.com"),
    ("anthropic", "://api.anthropic.com"),
];

/// The rule for the model a backend is sent, at start-up, at a switch and for a prompt that
/// names its backend: a provider's own API is never sent the mock's model name (`model.model`
/// left at its default while only `model.backend` was changed). There is no model to guess
/// for the operator (each costs differently), so it is an error that says how to name one.
pub(crate) fn check_model(
    config: &crate::config::ModelConfig,
    backend: &str,
    model: &str,
) -> Result<(), VeyraError> {
    let providers_own = PROVIDER_APIS.iter().any(|(name, host)| {
        *name == backend
            && config
                .base_url
                .as_deref()
                .is_none_or(|url| url.contains(host))
    });
    if model == crate::config::MOCK_MODEL && providers_own {
        return Err(crate::models::ModelError::new(
            backend,
            crate::models::ModelErrorKind::Config,
            format!(
                "no model named for it: '{model}' is the mock backend's model; set model.model \
                 (e.g. VEYRA_MODEL__MODEL) to one of {backend}'s models, or name one with \
                 `--model MODEL` or `:backend {backend} MODEL`"
            ),
        )
        .into());
    }
    Ok(())
}

/// A blackout beginning or ending between two link states, as the line the log gets: a
/// warning on entering (the Sun angle and when the link reopens, simulated time), information
/// on leaving. `None` when neither happened (a delay moving, a first state that is clear).
pub(super) fn blackout_news(
    previous: Option<&LinkStatus>,
    current: &LinkStatus,
) -> Option<(tracing::Level, String)> {
    let blackout = |s: &LinkStatus| s.simulated && s.conjunction == "blackout";
    let sun = |s: &LinkStatus| {
        s.sun_deg
            .map(|deg| format!(": Sun {deg:.1}° from {}", s.far_end()))
            .unwrap_or_default()
    };
    match (previous.is_some_and(blackout), blackout(current)) {
        (false, true) => Some((
            tracing::Level::WARN,
            format!(
                "{} link in blackout{}, {} (solar conjunction)",
                current.preset,
                sun(current),
                match current.blackout_ends {
                    Some(end) => format!("reopens {} simulated", end.format("%Y-%m-%d %H:%M UTC")),
                    None => "reopening not known".into(),
                }
            ),
        )),
        (true, false) => {
            let previous = previous?;
            Some((
                tracing::Level::INFO,
                if previous.preset == current.preset {
                    format!(
                        "{} link out of blackout{}; tasks waiting on it go up",
                        current.preset,
                        sun(current)
                    )
                } else {
                    format!(
                        "{} blackout left: the link is now {}",
                        previous.preset, current.preset
                    )
                },
            ))
        }
        (false, false) | (true, true) => None,
    }
}

/// Logs [`blackout_news`], if any.
pub(super) fn log_blackout_change(previous: Option<&LinkStatus>, current: &LinkStatus) {
    match blackout_news(previous, current) {
        Some((tracing::Level::WARN, line)) => tracing::warn!(
            preset = %current.preset,
            sun_deg = current.sun_deg.map(|d| format!("{d:.2}")).unwrap_or_default(),
            "{line}"
        ),
        Some((_, line)) => tracing::info!(preset = %current.preset, "{line}"),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn status(preset: &str, conjunction: &str, sun: f64) -> LinkStatus {
        let at = Utc.with_ymd_and_hms(2021, 10, 8, 0, 0, 0).unwrap();
        LinkStatus {
            simulated: true,
            preset: preset.into(),
            mode: "ephemeris".into(),
            one_way_ms: 1_300_000,
            one_way_min_ms: 186_000,
            one_way_max_ms: 1_338_000,
            sun_deg: (preset == "mars").then_some(sun),
            conjunction: conjunction.into(),
            time_scale: 60.0,
            sim_time: at,
            taken_at: at,
            blackout_ends: (conjunction == "blackout")
                .then(|| Utc.with_ymd_and_hms(2021, 10, 26, 6, 0, 0).unwrap()),
        }
    }

    #[test]
    fn entering_and_leaving_a_blackout_are_news_once() {
        let dark = status("mars", "blackout", 1.23);
        let (level, line) = blackout_news(None, &dark).unwrap();
        assert_eq!(level, tracing::Level::WARN);
        assert_eq!(
            line,
            "mars link in blackout: Sun 1.2° from Mars, reopens 2021-10-26 06:00 UTC simulated \
             (solar conjunction)"
        );
        // Still dark, a delay moving: nothing more.
        assert_eq!(blackout_news(Some(&dark), &dark), None);
        let (level, line) = blackout_news(Some(&dark), &status("mars", "reduced", 2.01)).unwrap();
        assert_eq!(level, tracing::Level::INFO);
        assert_eq!(
            line,
            "mars link out of blackout: Sun 2.0° from Mars; tasks waiting on it go up"
        );
        let (_, line) = blackout_news(Some(&dark), &status("earth", "clear", 0.0)).unwrap();
        assert_eq!(line, "mars blackout left: the link is now earth");
        // Clear skies say nothing, and neither does a link that is not simulated.
        assert_eq!(blackout_news(None, &status("mars", "clear", 40.0)), None);
        let off = LinkStatus {
            simulated: false,
            ..dark.clone()
        };
        assert_eq!(blackout_news(None, &off), None);
    }
}
