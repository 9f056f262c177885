//! [`VeyraCore`]: the handle every front end (console, CLI, benchmarks) drives.
//!
//! Every prompt becomes a task of kind `execute` in the [`Scheduler`]; the task crosses the
//! simulated link when it is on, and its handler takes the prompt through the backend,
//! streaming the answer as [`Event::OutputDelta`]s and recording one `EXECUTION` audit entry per
//! attempt. Each state change is published once on the [`EventBus`]; a caller that wants one
//! execution's events without loss gets its own ordered copy ([`VeyraCore::execute_stream`]).
//! Every attempt runs inside a tracing span carrying the execution id, so one grep of the log
//! follows it through the layers.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::config::{LatencyPreset, ToolSelection, VeyraConfig};
use crate::error::VeyraError;
use crate::events::{
    ConfirmScope, Event, EventBus, EventSink, ExecutionId, FinishReason, LinkStatus, Priority,
    TaskStatus, TokenUsage, title_of,
};
use crate::governance::policy::{ContextValue, PolicyRequest, Resource};
use crate::governance::{
    AuditEventType, AuditRecord, AuditTrail, CedarEngine, PolicyEngine, PolicyError, VerifyReport,
    summarize_input,
};
use crate::models::{BackendRegistry, ModelBackend, ModelError};
use crate::runtime::latency::LinkSim;
use crate::runtime::scheduler::{Scheduler, SchedulerConfig, ShutdownReport, TaskSpec};
use crate::tools::safety::SafetyBoundary;

mod emitter;
mod execute;
mod gate;
mod stream;
mod tools;
mod undo;

use emitter::{Emitter, Watchers};
pub use stream::{ExecutionStream, ResultFolder};
pub use tools::ToolInvocation;
pub use undo::{Restored, UNDO_ACTION, UndoOutcome};

use execute::ExecuteHandler;
use gate::Passage;

/// Task kind of prompt executions.
pub const EXECUTE: &str = "execute";

/// What to execute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRequest {
    /// The prompt; must not be blank.
    pub prompt: String,
    /// Optional system prompt.
    pub system: Option<String>,
    /// Scheduling priority.
    pub priority: Priority,
    /// Backend for this execution only (default: the core's current backend).
    pub backend: Option<String>,
    /// Model for this execution only (default: `model.model`).
    pub model: Option<String>,
    /// Who asks (`operator`, `benchmark`, …), as recorded in the audit trail.
    pub actor: String,
    /// The tools the model is offered (default: `tools.offer`). Its calls run as actor
    /// `agent` through the gate.
    pub tools: Option<ToolSelection>,
    /// True when nobody attends the execution (a benchmark run): anything in it that needs a
    /// confirmation — the prompt itself or a tool call of its model — is denied at once,
    /// recorded as such, whatever the confirmation policy or earlier session-wide answers say.
    #[serde(default)]
    pub unattended: bool,
    /// Work done once, off the async threads, before the first tool call of the execution
    /// runs (a benchmark makes a task's scratch directory here, so an answer without tool
    /// calls touches no disk). An error ends the attempt before the call runs. Not part of
    /// the request's data: never serialized.
    #[serde(skip)]
    pub before_tools: Option<BeforeTools>,
}

/// See [`ExecutionRequest::before_tools`]. Runs at most once per attempt; a retried attempt
/// calls it again, so it must be idempotent.
#[derive(Clone)]
pub struct BeforeTools(Arc<dyn Fn() -> Result<(), String> + Send + Sync>);

impl BeforeTools {
    /// Wraps `f`.
    pub fn new(f: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        BeforeTools(Arc::new(f))
    }

    /// Runs it on the blocking pool.
    pub(crate) async fn run(&self) -> Result<(), String> {
        let f = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || f())
            .await
            .map_err(|e| e.to_string())?
    }
}

impl std::fmt::Debug for BeforeTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeforeTools(..)")
    }
}

/// Two hooks are equal when they are the same closure.
impl PartialEq for BeforeTools {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl ExecutionRequest {
    /// A normal-priority request from the operator.
    pub fn new(prompt: impl Into<String>) -> Self {
        ExecutionRequest {
            prompt: prompt.into(),
            system: None,
            priority: Priority::Normal,
            backend: None,
            model: None,
            actor: "operator".to_string(),
            tools: None,
            unattended: false,
            before_tools: None,
        }
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the system prompt.
    pub fn system(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Sets the tools the model is offered.
    pub fn tools(mut self, tools: ToolSelection) -> Self {
        self.tools = Some(tools);
        self
    }

    /// Marks the execution unattended (see [`ExecutionRequest::unattended`]).
    pub fn unattended(mut self) -> Self {
        self.unattended = true;
        self
    }

    /// Sets the work done before the first tool call (see [`ExecutionRequest::before_tools`]).
    pub fn before_tools(mut self, hook: BeforeTools) -> Self {
        self.before_tools = Some(hook);
        self
    }
}

/// A finished execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionResult {
    /// The execution.
    pub id: ExecutionId,
    /// The whole answer.
    pub text: String,
    /// Backend that answered.
    pub backend: String,
    /// Model that answered.
    pub model: String,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Token counts, summed over every model call of the agent loop.
    pub usage: TokenUsage,
    /// Time from start to last token.
    pub latency: Duration,
    /// Sequence number of the `EXECUTION` audit entry, when audit is on.
    pub audit_seq: Option<u64>,
    /// Tool calls the model made (each one an [`Event::AgentStep`]).
    pub tool_steps: u32,
}

/// Health of the core's parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// Backend name.
    pub backend: String,
    /// `None` when the backend answered its health check, else why not.
    pub backend_error: Option<String>,
    /// Audit trail state: `None` when audit is off.
    pub audit: Option<AuditHealth>,
}

/// Audit part of [`HealthReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditHealth {
    /// Entries in the chain.
    pub entries: u64,
    /// `None` when the chain verifies, else the first bad entry.
    pub failure: Option<String>,
}

impl HealthReport {
    /// True when every part is healthy.
    pub fn is_healthy(&self) -> bool {
        self.backend_error.is_none() && self.audit.as_ref().is_none_or(|a| a.failure.is_none())
    }
}

struct CoreInner {
    policy: Arc<dyn PolicyEngine>,
    safety: SafetyBoundary,
    confirmations: Mutex<Confirmations>,
    /// The link state last published, to tell when it has moved.
    last_link: Mutex<Option<LinkStatus>>,
    config: VeyraConfig,
    registry: BackendRegistry,
    backend: RwLock<Arc<dyn ModelBackend>>,
    /// Model for prompts that name none (`model.model`, or what `set_backend` chose).
    model: RwLock<String>,
    audit: Option<AuditTrail>,
    emitter: Arc<Emitter>,
    scheduler: Scheduler,
    link: Arc<LinkSim>,
    tools: crate::tools::ToolRegistry,
}

/// An operator's answer: yes or no, who gave it, and how far a yes reaches.
type ConfirmAnswer = (bool, String, ConfirmScope);

/// Pending confirmations and how to answer them.
struct Confirmations {
    policy: ConfirmationPolicy,
    next: u64,
    waiting: HashMap<u64, (ExecutionId, oneshot::Sender<ConfirmAnswer>)>,
    /// Operations (`tool:<name>`) the operator allowed for the session, with the request
    /// that granted it.
    session: HashMap<String, u64>,
}

/// The embedded runtime core. Cloning is cheap and shares the core.
#[derive(Clone)]
pub struct VeyraCore {
    inner: Arc<CoreInner>,
}

impl std::fmt::Debug for VeyraCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VeyraCore")
            .field("backend", &self.backend_name())
            .finish_non_exhaustive()
    }
}

impl VeyraCore {
    /// A core with the built-in backends and an in-memory audit trail.
    pub fn new(config: VeyraConfig) -> Result<Self, VeyraError> {
        Self::with_registry(config, BackendRegistry::with_builtins())
    }

    /// A core with a caller-supplied backend registry; policies as `governance:` names them.
    pub fn with_registry(
        config: VeyraConfig,
        registry: BackendRegistry,
    ) -> Result<Self, VeyraError> {
        let policy = Arc::new(CedarEngine::from_config(&config.governance)?);
        Self::with_parts(config, registry, policy)
    }

    /// A core with a caller-supplied backend registry and policy engine. Fails when the engine
    /// cannot answer the requests Veyra makes (a schema without Veyra's actions or context).
    pub fn with_parts(
        config: VeyraConfig,
        registry: BackendRegistry,
        policy: Arc<dyn PolicyEngine>,
    ) -> Result<Self, VeyraError> {
        probe_policy(policy.as_ref(), &config)?;
        let backend = registry.get_backend(&config.model.backend, &config.model)?;
        let audit = if config.governance.audit {
            Some(match config.governance.store {
                crate::config::AuditStoreKind::Memory => AuditTrail::in_memory(),
                crate::config::AuditStoreKind::Sqlite => {
                    let path = config.audit_store_path();
                    if config.governance.store_path.is_none() {
                        // The default data directory is Veyra's own: keep it private.
                        let _ = crate::governance::witness::private_dir(
                            path.parent().unwrap_or(std::path::Path::new(".")),
                        );
                    }
                    let store = crate::governance::SqliteStore::open(
                        &path,
                        &crate::governance::StoreOptions::from_config(&config),
                    )?;
                    AuditTrail::new(Arc::new(store))?
                }
            })
        } else {
            None
        };
        let seed = config
            .runtime
            .seed
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
        let emitter = Arc::new(Emitter {
            bus: EventBus::default(),
            watchers: Mutex::new(Watchers::default()),
            watched: AtomicUsize::new(0),
            streaming: AtomicUsize::new(0),
            stepping: AtomicUsize::new(0),
        });
        if let Some(trail) = &audit {
            let emitter = Arc::clone(&emitter);
            trail.on_checkpoint(Arc::new(move |cp| {
                emitter.emit(Event::AuditCheckpoint {
                    tree_size: cp.tree_size,
                    root: cp.root.clone(),
                    at: cp.timestamp,
                });
            }));
        }
        let start = config.latency.start.unwrap_or_else(Utc::now);
        let link = Arc::new(LinkSim::new(&config.latency, seed, start));
        let scheduler = Scheduler::new(
            SchedulerConfig::from_runtime(&config.runtime, seed),
            emitter.clone(),
            config.latency.simulate.then(|| Arc::clone(&link)),
        );
        let probe = crate::tools::system::ProbeSlot::default();
        let tools = crate::tools::builtin::with_builtins(&config, Arc::clone(&probe))
            .map_err(|e| VeyraError::Runtime(format!("registering the built-in tools: {e}")))?;
        for name in config.tools.offer.names() {
            tools
                .get(name)
                .map_err(|e| VeyraError::Usage(format!("tools.offer: {e}")))?;
        }
        let inner = Arc::new(CoreInner {
            tools,
            policy,
            safety: SafetyBoundary::from_config(&config.governance),
            last_link: Mutex::new(None),
            confirmations: Mutex::new(Confirmations {
                policy: ConfirmationPolicy::Ask,
                next: 1,
                waiting: HashMap::new(),
                session: HashMap::new(),
            }),
            model: RwLock::new(config.model.model.clone()),
            config,
            registry,
            backend: RwLock::new(backend),
            audit,
            emitter,
            scheduler,
            link,
        });
        inner.scheduler.register_handler(
            EXECUTE,
            Arc::new(ExecuteHandler {
                core: Arc::downgrade(&inner),
            }),
        );
        let weak: std::sync::Weak<dyn crate::tools::system::SystemProbe> =
            Arc::downgrade(&inner) as std::sync::Weak<CoreInner>;
        // The slot was made empty just above and nothing else can fill it.
        let _ = probe.set(weak);
        Ok(VeyraCore { inner })
    }

    /// The configuration the core runs with.
    pub fn config(&self) -> &VeyraConfig {
        &self.inner.config
    }

    /// A subscriber to every event published from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.inner.emitter.bus.subscribe()
    }

    /// The bus itself, for layers above the core that publish their own events.
    pub fn bus(&self) -> &EventBus {
        &self.inner.emitter.bus
    }

    /// The scheduler, to register handlers of other task kinds.
    pub fn scheduler(&self) -> &Scheduler {
        &self.inner.scheduler
    }

    /// The policy engine every action is checked against.
    pub fn policy(&self) -> &dyn PolicyEngine {
        self.inner.policy.as_ref()
    }

    /// The audit trail, when audit is on.
    pub fn audit(&self) -> Option<&AuditTrail> {
        self.inner.audit.as_ref()
    }

    /// Name of the current backend.
    pub fn backend_name(&self) -> String {
        self.inner.current_backend().name().to_string()
    }

    /// The simulated link as the status bar shows it.
    pub fn link_status(&self) -> LinkStatus {
        let mut status = self.inner.link.status();
        status.simulated = self.inner.config.latency.simulate;
        status
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
        let new = self
            .inner
            .registry
            .get_backend(backend, &self.inner.config.model)?;
        let model = model.map_or_else(|| self.inner.config.model.model.clone(), str::to_string);
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
    /// also allows later calls of the same tool until the core shuts down (the scope is
    /// ignored for anything else, and recorded in the audit trail either way).
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
                let _ = tx.send((allowed, by.to_string(), scope));
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

    /// Runs one prompt to completion, blocking the calling thread. Must not be called from
    /// inside an async runtime (use [`VeyraCore::execute_async`] there).
    pub fn execute(&self, prompt: &str) -> Result<ExecutionResult, VeyraError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(VeyraError::Usage(
                "VeyraCore::execute blocks and cannot run inside an async runtime; use execute_async"
                    .into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| VeyraError::io("starting the async runtime", e))?;
        runtime.block_on(self.execute_async(ExecutionRequest::new(prompt)))
    }

    /// Runs one request through the scheduler to its final state.
    pub async fn execute_async(
        &self,
        request: ExecutionRequest,
    ) -> Result<ExecutionResult, VeyraError> {
        self.execute_as(ExecutionId::new(), request).await
    }

    /// [`VeyraCore::execute_async`] under an id the caller chose, so that it can
    /// [`VeyraCore::cancel`] the execution while waiting. Only the final state is kept for the
    /// caller, not every event ([`VeyraCore::execute_stream`] for those): the cheapest way to
    /// run a request to its end. The id must be new.
    pub async fn execute_as(
        &self,
        id: ExecutionId,
        request: ExecutionRequest,
    ) -> Result<ExecutionResult, VeyraError> {
        self.execute_watched(id, request, false).await.0
    }

    /// [`VeyraCore::execute_as`] that also keeps the execution's [`Event::AgentStep`]s, in
    /// order: every tool call the model made, run or refused. Cheaper than
    /// [`VeyraCore::execute_stream`] when those are all a caller needs, since no token is
    /// forwarded.
    pub async fn execute_with_steps(
        &self,
        id: ExecutionId,
        request: ExecutionRequest,
    ) -> (Result<ExecutionResult, VeyraError>, Vec<Event>) {
        self.execute_watched(id, request, true).await
    }

    async fn execute_watched(
        &self,
        id: ExecutionId,
        request: ExecutionRequest,
        keep_steps: bool,
    ) -> (Result<ExecutionResult, VeyraError>, Vec<Event>) {
        /// Forgets the watch if the caller stops waiting (its future dropped), so that
        /// nothing is kept for a caller that is gone.
        struct Watch<'a>(&'a Emitter, ExecutionId);
        impl Drop for Watch<'_> {
            fn drop(&mut self) {
                self.0.unwatch(self.1);
            }
        }
        let (tx, rx) = oneshot::channel();
        self.inner.emitter.watch_final(id, tx, keep_steps);
        let watch = Watch(&self.inner.emitter, id);
        if let Err(e) = self.submit_with_id(id, request) {
            return (Err(e), Vec::new());
        }
        let status = rx
            .await
            .map_err(|_| VeyraError::Runtime("the execution ended without a final state".into()));
        // The final state came (its watch went with it) or its sender was dropped with the
        // watch: what is left is the answer and steps, which `take` removes.
        let (answer, steps) = self.inner.emitter.take(id);
        std::mem::forget(watch);
        (Self::final_result(status, answer), steps)
    }

    fn final_result(
        status: Result<TaskStatus, VeyraError>,
        answer: Option<ExecutionResult>,
    ) -> Result<ExecutionResult, VeyraError> {
        match status? {
            TaskStatus::Succeeded => answer.ok_or_else(|| {
                VeyraError::Runtime("the execution succeeded but left no answer".into())
            }),
            TaskStatus::Failed { error, kind, .. } => Err(task_error(&kind, &error)),
            TaskStatus::Cancelled { reason } => Err(VeyraError::Cancelled(reason)),
            other => Err(VeyraError::Runtime(format!(
                "the execution ended in a non-final state ({})",
                other.name()
            ))),
        }
    }

    /// Submits one request and returns its events as a lossless, ordered stream that ends with
    /// its final `TaskState`. Needs a tokio runtime.
    pub fn execute_stream(&self, request: ExecutionRequest) -> Result<ExecutionStream, VeyraError> {
        let id = ExecutionId::new();
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.emitter.watch_stream(id, tx);
        if let Err(e) = self.submit_with_id(id, request) {
            self.inner.emitter.unwatch(id);
            return Err(e);
        }
        Ok(ExecutionStream { id, rx })
    }

    /// Submits one request and returns its id at once; follow it on the bus.
    /// Needs a tokio runtime.
    pub fn submit(&self, request: ExecutionRequest) -> Result<ExecutionId, VeyraError> {
        self.submit_with_id(ExecutionId::new(), request)
    }

    fn submit_with_id(
        &self,
        id: ExecutionId,
        request: ExecutionRequest,
    ) -> Result<ExecutionId, VeyraError> {
        if request.prompt.trim().is_empty() {
            return Err(VeyraError::Usage(
                "the prompt is empty; type a prompt or pipe one on stdin".into(),
            ));
        }
        if let Some(offer) = &request.tools {
            for name in offer.names() {
                self.inner
                    .tools
                    .get(name)
                    .map_err(|e| VeyraError::Usage(format!("--tools: {e}")))?;
            }
        }
        let backend = self.inner.resolve_backend(request.backend.as_deref())?;
        // The task runs on what was current when it was sent, whatever is switched meanwhile.
        let mut request = request;
        let model = request
            .model
            .get_or_insert_with(|| self.inner.current_model())
            .clone();
        request
            .backend
            .get_or_insert_with(|| backend.name().to_string());
        let title = title_of(&request.prompt, 80);
        let priority = request.priority;
        let spec = TaskSpec {
            kind: EXECUTE.to_string(),
            title,
            priority,
            payload: Arc::new(request),
            backend: Some(backend.name().to_string()),
            model: Some(model),
        };
        self.inner
            .scheduler
            .submit_with_id(id, spec)
            .map_err(|e| match e {
                crate::runtime::scheduler::SubmitError::UnknownKind { .. } => {
                    VeyraError::Usage(e.to_string())
                }
                other => VeyraError::Runtime(other.to_string()),
            })
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

impl CoreInner {
    /// Publishes the link's state when `switched`, or when it moved enough to show (see
    /// [`VeyraCore::watch_link`]).
    fn publish_link(&self, switched: bool) {
        let mut status = self.link.status();
        status.simulated = self.config.latency.simulate;
        let mut last = match self.last_link.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let moved = match last.as_ref() {
            None => true,
            Some(prev) => {
                prev.preset != status.preset
                    || prev.conjunction != status.conjunction
                    || prev.one_way_ms.abs_diff(status.one_way_ms) >= 1000
            }
        };
        if !(switched || moved) {
            return;
        }
        *last = Some(status.clone());
        drop(last);
        self.emitter.emit(Event::LinkChanged {
            link: status,
            switched,
            at: Utc::now(),
        });
    }

    fn current_model(&self) -> String {
        match self.model.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn current_backend(&self) -> Arc<dyn ModelBackend> {
        match self.backend.read() {
            Ok(b) => Arc::clone(&b),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn resolve_backend(&self, name: Option<&str>) -> Result<Arc<dyn ModelBackend>, ModelError> {
        let current = self.current_backend();
        match name {
            Some(name) if name != current.name() => {
                self.registry.get_backend(name, &self.config.model)
            }
            _ => Ok(current),
        }
    }
}

#[async_trait::async_trait]
impl crate::tools::system::SystemProbe for CoreInner {
    async fn system_status(&self) -> serde_json::Value {
        let backend = self.current_backend();
        let health = backend.health_check().await;
        let audit = match &self.audit {
            Some(trail) => serde_json::json!({
                "enabled": true,
                "entries": trail.len(),
                "head": trail.head_hash(),
            }),
            None => serde_json::json!({ "enabled": false }),
        };
        serde_json::json!({
            "queue": {
                "queued": self.scheduler.queued(),
                "running": self.scheduler.running(),
                "max_concurrent": self.config.runtime.max_concurrent,
            },
            "backend": {
                "name": backend.name(),
                "model": self.current_model(),
                "healthy": health.is_ok(),
                "error": health.err().map(|e| crate::sanitize::excerpt(&e.to_string(), 200).into_owned()),
            },
            "link": self.link.status(),
            "audit": audit,
        })
    }
}

/// Asks `policy` one request of each kind Veyra makes, so a schema that does not declare
/// Veyra's actions or their context stops start-up instead of failing every execution.
fn probe_policy(policy: &dyn PolicyEngine, config: &VeyraConfig) -> Result<(), VeyraError> {
    let preset = config.latency.preset;
    let probes = [
        PolicyRequest::new("operator", EXECUTE, Resource::backend("mock"), preset)
            .with("priority", ContextValue::Str("normal".into()))
            .with("model", ContextValue::Str(config.model.model.clone()))
            .with("prompt_chars", ContextValue::Long(1)),
        PolicyRequest::new("operator", "switch_preset", Resource::link(preset), preset),
        PolicyRequest::new(
            "operator",
            "switch_backend",
            Resource::backend("mock"),
            preset,
        ),
    ];
    for probe in &probes {
        if let Err(e) = policy.decide(probe) {
            return Err(VeyraError::Policy(PolicyError::Request(format!(
                "the policy schema cannot answer Veyra's '{}' requests ({e}); declare the action \
                 and its context as configs/policies/veyra.cedarschema does",
                probe.action
            ))));
        }
    }
    Ok(())
}

/// The error a failed task ends the caller's wait with; refusals keep their own exit code.
fn task_error(kind: &str, message: &str) -> VeyraError {
    if kind == REFUSED {
        VeyraError::Refused(message.to_string())
    } else {
        VeyraError::Task {
            kind: kind.to_string(),
            message: message.to_string(),
        }
    }
}

/// Task error kind of an operation refused by the safety boundary or the operator.
pub const REFUSED: &str = "refused";

/// How confirmations are answered when the boundary asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmationPolicy {
    /// Publish [`Event::ConfirmationRequested`] and wait for
    /// [`VeyraCore::answer_confirmation`] (the console, an interactive `veyra run`).
    Ask,
    /// Allow without asking (`veyra run --yes`).
    AllowAll,
    /// Deny without asking (no terminal to ask on).
    DenyAll,
}

#[cfg(test)]
mod tests;
