//! [`VeyraCore`]: the handle every front end (console, CLI, benchmarks) drives.
//!
//! An execution takes a prompt through the backend, streaming its answer as
//! [`Event::OutputDelta`]s, records one `EXECUTION` entry in the audit trail, and publishes each
//! state change once on the [`EventBus`]. Every execution runs inside a tracing span carrying its
//! id, so one grep of the log follows it through the layers.

use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::Utc;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::config::VeyraConfig;
use crate::error::VeyraError;
use crate::events::{Event, EventBus, ExecutionId, FinishReason, Priority, TokenUsage, title_of};
use crate::governance::{AuditEventType, AuditRecord, AuditTrail, VerifyReport, summarize_input};
use crate::models::{BackendRegistry, ModelBackend, ModelError, ModelRequest, StreamChunk};

/// What to execute.
#[derive(Debug, Clone, PartialEq)]
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
    /// Token counts.
    pub usage: TokenUsage,
    /// Time from start to last token.
    pub latency: Duration,
    /// Sequence number of the `EXECUTION` audit entry, when audit is on.
    pub audit_seq: Option<u64>,
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
    config: VeyraConfig,
    registry: BackendRegistry,
    backend: RwLock<Arc<dyn ModelBackend>>,
    audit: Option<AuditTrail>,
    bus: EventBus,
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

    /// A core with a caller-supplied backend registry.
    pub fn with_registry(
        config: VeyraConfig,
        registry: BackendRegistry,
    ) -> Result<Self, VeyraError> {
        let backend = registry.get_backend(&config.model.backend, &config.model)?;
        let audit = config.governance.audit.then(AuditTrail::in_memory);
        Ok(VeyraCore {
            inner: Arc::new(CoreInner {
                config,
                registry,
                backend: RwLock::new(backend),
                audit,
                bus: EventBus::default(),
            }),
        })
    }

    /// The configuration the core runs with.
    pub fn config(&self) -> &VeyraConfig {
        &self.inner.config
    }

    /// A subscriber to every event published from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.inner.bus.subscribe()
    }

    /// The bus itself, for layers above the core that publish their own events.
    pub fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    /// The audit trail, when audit is on.
    pub fn audit(&self) -> Option<&AuditTrail> {
        self.inner.audit.as_ref()
    }

    /// Name of the current backend.
    pub fn backend_name(&self) -> String {
        self.current_backend().name().to_string()
    }

    fn current_backend(&self) -> Arc<dyn ModelBackend> {
        match self.inner.backend.read() {
            Ok(b) => Arc::clone(&b),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
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

    /// Runs one request to completion.
    pub async fn execute_async(
        &self,
        request: ExecutionRequest,
    ) -> Result<ExecutionResult, VeyraError> {
        let prepared = self.prepare(request)?;
        self.run(prepared, None).await
    }

    /// Starts one request and returns its events as a lossless stream (ending with
    /// `ExecutionFinished` or `ExecutionFailed`), plus the final result. Needs a tokio runtime.
    pub fn execute_stream(&self, request: ExecutionRequest) -> Result<ExecutionStream, VeyraError> {
        let prepared = self.prepare(request)?;
        let id = prepared.id;
        let (tx, rx) = mpsc::unbounded_channel();
        let core = self.clone();
        let handle = tokio::spawn(async move { core.run(prepared, Some(tx)).await });
        Ok(ExecutionStream { id, rx, handle })
    }

    /// Starts one request in the background and returns its id at once; follow it on the bus.
    /// Needs a tokio runtime.
    pub fn submit(&self, request: ExecutionRequest) -> Result<ExecutionId, VeyraError> {
        let prepared = self.prepare(request)?;
        let id = prepared.id;
        let core = self.clone();
        tokio::spawn(async move {
            // The outcome reaches subscribers as events; nothing else waits for it.
            let _ = core.run(prepared, None).await;
        });
        Ok(id)
    }

    /// Checks the backend and the audit chain.
    pub async fn health_check(&self) -> HealthReport {
        let backend = self.current_backend();
        let backend_error = backend.health_check().await.err().map(|e| e.to_string());
        let audit = self.inner.audit.as_ref().map(|trail| AuditHealth {
            entries: trail.len(),
            failure: trail.verify_integrity().err().map(|e| e.to_string()),
        });
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
        let result = trail.verify_integrity();
        self.inner.bus.publish(Event::AuditVerified {
            entries: match &result {
                Ok(r) => r.entries,
                Err(_) => trail.len(),
            },
            failure: result.as_ref().err().map(|e| e.to_string()),
            at: Utc::now(),
        });
        Some(result.map_err(VeyraError::from))
    }

    /// Checks a request and resolves its backend before anything is published.
    fn prepare(&self, request: ExecutionRequest) -> Result<Prepared, VeyraError> {
        if request.prompt.trim().is_empty() {
            return Err(VeyraError::Usage(
                "the prompt is empty; type a prompt or pipe one on stdin".into(),
            ));
        }
        let model_cfg = &self.inner.config.model;
        let backend = match &request.backend {
            Some(name) if *name != self.backend_name() => {
                self.inner.registry.get_backend(name, model_cfg)?
            }
            _ => self.current_backend(),
        };
        let model_request = ModelRequest {
            prompt: request.prompt,
            system: request.system,
            model: request.model.unwrap_or_else(|| model_cfg.model.clone()),
            temperature: model_cfg.temperature,
            max_tokens: model_cfg.max_tokens,
        };
        Ok(Prepared {
            id: ExecutionId::new(),
            priority: request.priority,
            actor: request.actor,
            backend,
            request: model_request,
        })
    }

    async fn run(
        &self,
        prepared: Prepared,
        observer: Option<mpsc::UnboundedSender<Event>>,
    ) -> Result<ExecutionResult, VeyraError> {
        let span = tracing::info_span!("execution", execution_id = %prepared.id);
        self.run_in_span(prepared, observer).instrument(span).await
    }

    async fn run_in_span(
        &self,
        prepared: Prepared,
        observer: Option<mpsc::UnboundedSender<Event>>,
    ) -> Result<ExecutionResult, VeyraError> {
        let emit = |event: Event| {
            if let Some(tx) = &observer {
                // A dropped receiver only means the caller stopped listening.
                let _ = tx.send(event.clone());
            }
            self.inner.bus.publish(event);
        };
        let Prepared {
            id,
            priority,
            actor,
            backend,
            request,
        } = prepared;
        let backend_name = backend.name().to_string();
        emit(Event::ExecutionSubmitted {
            id,
            title: title_of(&request.prompt, 80),
            priority,
            backend: backend_name.clone(),
            model: request.model.clone(),
            at: Utc::now(),
        });
        tracing::info!(backend = %backend_name, model = %request.model, %priority, "execution started");
        emit(Event::ExecutionStarted { id, at: Utc::now() });
        let started = tokio::time::Instant::now();

        let outcome = stream_answer(backend.as_ref(), &request, |text| {
            emit(Event::OutputDelta { id, text })
        })
        .await;
        let latency = started.elapsed();
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);

        let (audit_outcome, mut metadata) = match &outcome {
            Ok((_, finish_reason, usage)) => (
                "success",
                serde_json::json!({
                    "finish_reason": finish_reason,
                    "tokens_in": usage.input,
                    "tokens_out": usage.output,
                }),
            ),
            Err(e) => (
                "failure",
                serde_json::json!({ "error_kind": e.kind.name() }),
            ),
        };
        if let serde_json::Value::Object(map) = &mut metadata {
            map.insert("execution_id".into(), id.to_string().into());
            map.insert("backend".into(), backend_name.clone().into());
            map.insert("model".into(), request.model.clone().into());
            map.insert("priority".into(), priority.name().into());
            map.insert("latency_ms".into(), latency_ms.into());
        }
        let audit_seq = match &self.inner.audit {
            Some(trail) => {
                let entry = trail.record(AuditRecord {
                    event_type: AuditEventType::Execution,
                    actor: actor.clone(),
                    action: "execute".into(),
                    resource: format!("backend:{backend_name}"),
                    outcome: audit_outcome.into(),
                    input_summary: summarize_input(&request.prompt),
                    metadata,
                });
                match entry {
                    Ok(entry) => {
                        emit(Event::AuditRecorded {
                            seq: entry.seq,
                            event_type: entry.event_type.name().into(),
                            actor: entry.actor.clone(),
                            action: entry.action.clone(),
                            outcome: entry.outcome.clone(),
                            hash: entry.hash.clone(),
                            execution: Some(id),
                        });
                        Some(entry.seq)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "audit record failed");
                        emit(Event::ExecutionFailed {
                            id,
                            error: format!("the audit trail could not record this execution: {e}"),
                            kind: "audit".into(),
                            at: Utc::now(),
                        });
                        return Err(e.into());
                    }
                }
            }
            None => None,
        };

        match outcome {
            Ok((text, finish_reason, usage)) => {
                tracing::info!(
                    tokens_in = usage.input,
                    tokens_out = usage.output,
                    latency_ms,
                    "execution finished"
                );
                emit(Event::ExecutionFinished {
                    id,
                    usage,
                    finish_reason: finish_reason.clone(),
                    latency_ms,
                    at: Utc::now(),
                });
                Ok(ExecutionResult {
                    id,
                    text,
                    backend: backend_name,
                    model: request.model,
                    finish_reason,
                    usage,
                    latency,
                    audit_seq,
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "execution failed");
                emit(Event::ExecutionFailed {
                    id,
                    error: e.to_string(),
                    kind: e.kind.name().into(),
                    at: Utc::now(),
                });
                Err(e.into())
            }
        }
    }
}

/// Streams an answer, handing each text piece to `on_text`; returns text, finish reason, usage.
async fn stream_answer(
    backend: &dyn ModelBackend,
    request: &ModelRequest,
    mut on_text: impl FnMut(String),
) -> Result<(String, FinishReason, TokenUsage), ModelError> {
    let mut stream = backend.stream(request).await?;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk? {
            StreamChunk::Text(t) => {
                text.push_str(&t);
                on_text(t);
            }
            StreamChunk::Done {
                finish_reason,
                usage,
            } => return Ok((text, finish_reason, usage)),
        }
    }
    Err(ModelError::new(
        backend.name(),
        crate::models::ModelErrorKind::Protocol,
        "the answer stream ended before its final chunk",
    ))
}

struct Prepared {
    id: ExecutionId,
    priority: Priority,
    actor: String,
    backend: Arc<dyn ModelBackend>,
    request: ModelRequest,
}

/// A running execution's events (see [`VeyraCore::execute_stream`]).
#[derive(Debug)]
pub struct ExecutionStream {
    id: ExecutionId,
    rx: mpsc::UnboundedReceiver<Event>,
    handle: tokio::task::JoinHandle<Result<ExecutionResult, VeyraError>>,
}

impl ExecutionStream {
    /// The execution's id.
    pub fn id(&self) -> ExecutionId {
        self.id
    }

    /// Waits for the execution to end and returns its result. Events not yet read are dropped.
    pub async fn finish(self) -> Result<ExecutionResult, VeyraError> {
        match self.handle.await {
            Ok(result) => result,
            Err(e) => Err(VeyraError::Runtime(format!(
                "the execution task ended abnormally: {e}"
            ))),
        }
    }
}

impl Stream for ExecutionStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests;
