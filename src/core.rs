//! [`VeyraCore`]: the handle every front end (console, CLI, benchmarks) drives.
//!
//! Every prompt becomes a task of kind `execute` in the [`Scheduler`]; the task crosses the
//! simulated link when it is on, and its handler takes the prompt through the backend,
//! streaming the answer as [`Event::OutputDelta`]s and recording one `EXECUTION` audit entry per
//! attempt. Each state change is published once on the [`EventBus`]; a caller that wants one
//! execution's events without loss gets its own ordered copy ([`VeyraCore::execute_stream`]).
//! Every attempt runs inside a tracing span carrying the execution id, so one grep of the log
//! follows it through the layers.
//!
//! One concept per file: `request` holds the values crossing the core's edge, `control` what
//! the operator changes while it runs (link, backend, confirmations, health), `submit` how a
//! prompt is handed to the scheduler and waited on, `execute` the task handler itself, with
//! `gate`, `tools`, `undo`, `stream` and `emitter` beneath. This file builds the core and
//! re-exports the public names, so callers write `crate::core::ExecutionRequest`.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock};

use chrono::Utc;
use tokio::sync::oneshot;

use crate::config::VeyraConfig;
use crate::error::VeyraError;
use crate::events::{ConfirmScope, Event, EventBus, EventSink, ExecutionId, LinkStatus};
use crate::governance::policy::{ContextValue, PolicyRequest, Resource};
use crate::governance::{AuditTrail, CedarEngine, PolicyEngine, PolicyError};
use crate::models::{BackendRegistry, ModelBackend, ModelError};
use crate::runtime::latency::LinkSim;
use crate::runtime::scheduler::{Scheduler, SchedulerConfig};
use crate::tools::safety::SafetyBoundary;

mod approvals;
mod caller;
mod control;
mod emitter;
mod execute;
mod gate;
mod request;
mod stream;
mod submit;
#[cfg(test)]
pub(crate) mod testing;
mod tools;
mod undo;

pub use approvals::{Approval, ArgumentPattern, MAX_APPROVALS};
pub use caller::{Caller, WithClient, as_caller, hostname};
use emitter::{Emitter, Watchers};
pub use request::{
    AuditHealth, BeforeTools, ConfirmationPolicy, ExecutionRequest, ExecutionResult, HealthReport,
    REFUSED,
};
pub use stream::{ExecutionStream, ResultFolder};
pub use tools::ToolInvocation;
pub use undo::{Restored, UNDO_ACTION, UndoOutcome};

use execute::ExecuteHandler;
use gate::Passage;
use submit::task_error;

/// Task kind of prompt executions.
pub const EXECUTE: &str = "execute";

struct CoreInner {
    /// The policy engine; `:policy reload` swaps it whole.
    policy: RwLock<Arc<dyn PolicyEngine>>,
    /// Held through a whole reload (read, load, record, install): two at once would record
    /// one set and install the other.
    reloading: tokio::sync::Mutex<()>,
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
    /// The tree size of the audit store's newest signed checkpoint (0 before the first).
    checkpoints: tokio::sync::watch::Sender<u64>,
    emitter: Arc<Emitter>,
    scheduler: Scheduler,
    link: Arc<LinkSim>,
    tools: crate::tools::ToolRegistry,
    /// The MCP servers whose tools are mounted in `tools` (`tools.mcp_servers`); dropped with
    /// the core, which stops them.
    mcp: Arc<crate::tools::mcp::McpHub>,
}

/// An operator's answer: yes or no, who gave it, how far a yes reaches, and the client of a
/// serving runtime that answered (a yes for the session ends when it leaves).
type ConfirmAnswer = (bool, String, ConfirmScope, Option<Caller>);

/// Pending confirmations and how to answer them.
struct Confirmations {
    policy: ConfirmationPolicy,
    next: u64,
    waiting: HashMap<u64, (ExecutionId, oneshot::Sender<ConfirmAnswer>)>,
    /// Standing yeses to tools ([`approvals`]).
    approvals: approvals::Approvals,
}

/// Builds a [`VeyraCore`] with an embedder's own parts ([`VeyraCore::builder`]). Whatever is
/// added passes the same gate as the built-in parts: a tool's every call is decided by the
/// policy (`invoke_tool` on `tool:<name>`), checked by the safety boundary (its capability says
/// whether it is reversible or always asks), confirmed when the configuration says so, and
/// recorded (`TOOL_INVOCATION`); a backend's every execution is decided and recorded as the
/// built-in ones are.
///
/// ```
/// use std::sync::Arc;
/// use veyra::VeyraCore;
/// use veyra::config::VeyraConfig;
/// use veyra::tools::{Capability, Tool, ToolCategory, ToolError, ToolOutput};
///
/// /// Says a word back in capitals: reversible (it changes nothing), asks no one.
/// struct Shout;
///
/// #[async_trait::async_trait]
/// impl Tool for Shout {
///     fn capability(&self) -> Capability {
///         Capability {
///             name: "shout".into(),
///             description: "Says a word back in capitals.".into(),
///             category: ToolCategory::Computation,
///             reversible: true,
///             confirmation: false,
///             schema: serde_json::json!({
///                 "type": "object",
///                 "properties": {"word": {"type": "string", "maxLength": 64}},
///                 "required": ["word"],
///                 "additionalProperties": false
///             }),
///         }
///     }
///     async fn invoke(&self, args: &serde_json::Value) -> Result<ToolOutput, ToolError> {
///         let word = args["word"].as_str().unwrap_or_default().to_uppercase();
///         Ok(ToolOutput::new(serde_json::json!({ "word": word }), "shouted a word"))
///     }
/// }
///
/// let mut config = VeyraConfig::default();
/// config.governance.store = veyra::config::AuditStoreKind::Memory;
/// let core = VeyraCore::builder(config).tool(Arc::new(Shout)).build()?;
/// assert!(core.tools().describe("shout").is_ok());
/// # Ok::<(), veyra::VeyraError>(())
/// ```
pub struct CoreBuilder {
    config: VeyraConfig,
    registry: BackendRegistry,
    policy: Option<Arc<dyn PolicyEngine>>,
    tools: Vec<Arc<dyn crate::tools::Tool>>,
}

impl std::fmt::Debug for CoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreBuilder")
            .field("backends", &self.registry.names())
            .field("tools", &self.tools.len())
            .finish_non_exhaustive()
    }
}

impl CoreBuilder {
    /// Registers backend `name` beside the built-in ones (or in place of one of them); a
    /// prompt reaches it when `model.backend`, `set_backend` or the request names it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use veyra::VeyraCore;
    /// use veyra::core::ExecutionRequest;
    /// use veyra::events::{FinishReason, TokenUsage};
    /// use veyra::models::{ChunkStream, ModelBackend, ModelError, ModelRequest, StreamChunk};
    ///
    /// /// Answers every prompt with one fixed line.
    /// struct Steady;
    ///
    /// #[async_trait::async_trait]
    /// impl ModelBackend for Steady {
    ///     fn name(&self) -> &str {
    ///         "steady"
    ///     }
    ///     async fn stream(&self, _: &ModelRequest) -> Result<ChunkStream, ModelError> {
    ///         let chunks = vec![
    ///             Ok(StreamChunk::Text("All systems nominal.".into())),
    ///             Ok(StreamChunk::Done {
    ///                 finish_reason: FinishReason::Stop,
    ///                 usage: TokenUsage { input: 1, output: 3 },
    ///             }),
    ///         ];
    ///         Ok(Box::pin(futures_util::stream::iter(chunks)))
    ///     }
    ///     async fn health_check(&self) -> Result<(), ModelError> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # tokio_test_rt().block_on(async {
    /// let mut config = veyra::config::VeyraConfig::default();
    /// config.governance.store = veyra::config::AuditStoreKind::Memory;
    /// config.latency.simulate = false;
    /// config.model.backend = "steady".into();
    /// let core = VeyraCore::builder(config)
    ///     .backend("steady", Arc::new(|_: &veyra::config::ModelConfig| {
    ///         Ok(Arc::new(Steady) as Arc<dyn ModelBackend>)
    ///     }))
    ///     .build()?;
    /// let answer = core.execute_async(ExecutionRequest::new("status?")).await?;
    /// assert_eq!(answer.text, "All systems nominal.");
    /// # Ok::<(), veyra::VeyraError>(())
    /// # })?;
    /// # fn tokio_test_rt() -> tokio::runtime::Runtime {
    /// #     tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
    /// # }
    /// # Ok::<(), veyra::VeyraError>(())
    /// ```
    pub fn backend(mut self, name: &str, factory: crate::models::BackendFactory) -> Self {
        self.registry.register_backend(name, factory);
        self
    }

    /// Decides with `engine` instead of the Cedar policies `governance:` names. It must answer
    /// Veyra's own requests: [`CoreBuilder::build`] probes it.
    pub fn policy(mut self, engine: Arc<dyn PolicyEngine>) -> Self {
        self.policy = Some(engine);
        self
    }

    /// Registers `tool` beside the built-in ones; a name already taken is an error at
    /// [`CoreBuilder::build`]. Models are offered it when `tools.offer` names it (or is `all`).
    pub fn tool(mut self, tool: Arc<dyn crate::tools::Tool>) -> Self {
        self.tools.push(tool);
        self
    }

    /// The core.
    pub fn build(self) -> Result<VeyraCore, VeyraError> {
        let policy = match self.policy {
            Some(p) => p,
            None => Arc::new(CedarEngine::from_config(&self.config.governance)?),
        };
        VeyraCore::assemble(self.config, self.registry, policy, self.tools)
    }
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
        Self::assemble(config, registry, policy, Vec::new())
    }

    /// A core with parts of an embedder's own: backends beside the built-in ones, tools beside
    /// the built-in ones, another policy engine (see [`CoreBuilder`]).
    pub fn builder(config: VeyraConfig) -> CoreBuilder {
        CoreBuilder {
            config,
            registry: BackendRegistry::with_builtins(),
            policy: None,
            tools: Vec::new(),
        }
    }

    fn assemble(
        config: VeyraConfig,
        registry: BackendRegistry,
        policy: Arc<dyn PolicyEngine>,
        extra_tools: Vec<Arc<dyn crate::tools::Tool>>,
    ) -> Result<Self, VeyraError> {
        probe_policy(policy.as_ref(), &config)?;
        let backend = registry.get_backend(&config.model.backend, &config.model)?;
        control::check_model(&config.model, &config.model.backend, &config.model.model)?;
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
            tap: std::sync::OnceLock::new(),
        });
        let checkpoints = tokio::sync::watch::Sender::new(0u64);
        if let Some(trail) = &audit {
            let emitter = Arc::clone(&emitter);
            let told = checkpoints.clone();
            trail.on_checkpoint(Arc::new(move |cp| {
                told.send_replace(cp.tree_size);
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
            // Always the link: whether a task crosses it is decided as it sets off
            // (`latency.simulate`, switched with `VeyraCore::set_simulated`).
            Some(Arc::clone(&link)),
        );
        let probe = crate::tools::system::ProbeSlot::default();
        let mut tools = crate::tools::builtin::with_builtins(&config, Arc::clone(&probe))
            .map_err(|e| VeyraError::Runtime(format!("registering the built-in tools: {e}")))?;
        for tool in extra_tools {
            let name = tool.capability().name;
            tools
                .register(tool)
                .map_err(|e| VeyraError::Usage(format!("registering tool '{name}': {e}")))?;
        }
        let mcp = Arc::new(crate::tools::mcp::McpHub::new(
            &config,
            Arc::clone(&emitter) as Arc<dyn crate::events::EventSink>,
        ));
        tools.mount(Arc::clone(&mcp) as Arc<dyn crate::tools::registry::ToolSource>);
        for name in config.tools.offer.names() {
            // An MCP server's tools are listed once it is up: its name is checked here.
            if name.starts_with(crate::tools::mcp::PREFIX) {
                if !mcp.knows_server(name) {
                    return Err(VeyraError::Usage(format!(
                        "tools.offer: '{}' names no server in tools.mcp_servers",
                        crate::sanitize::quote(name)
                    )));
                }
                continue;
            }
            tools
                .get(name)
                .map_err(|e| VeyraError::Usage(format!("tools.offer: {e}")))?;
        }
        // Started now when the core is built on a runtime (else on first use): a server's
        // tools appear when it is up; nothing waits for it.
        mcp.start();
        let inner = Arc::new(CoreInner {
            tools,
            policy: RwLock::new(policy),
            reloading: tokio::sync::Mutex::new(()),
            safety: SafetyBoundary::from_config(&config.governance),
            last_link: Mutex::new(None),
            confirmations: Mutex::new(Confirmations {
                policy: ConfirmationPolicy::Ask,
                next: 1,
                waiting: HashMap::new(),
                approvals: approvals::Approvals::default(),
            }),
            model: RwLock::new(config.model.model.clone()),
            config,
            registry,
            backend: RwLock::new(backend),
            audit,
            checkpoints,
            emitter,
            scheduler,
            link,
            mcp,
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

    /// Told the tree size of each signed checkpoint of the audit store as it is made: a wait
    /// for checkpoints that is not woken by every other event.
    pub fn checkpoints(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.checkpoints.subscribe()
    }

    /// The bus itself, for layers above the core that publish their own events.
    pub fn bus(&self) -> &EventBus {
        &self.inner.emitter.bus
    }

    /// Gives `sink` every event the core publishes, in order, before the bus does: what a
    /// serving runtime's journal needs (a bus subscriber can lag and miss events). Called from
    /// the publishing thread, so `sink` must be quick. One tap per core: a second is refused.
    pub fn tap(&self, sink: Arc<dyn EventSink>) -> Result<(), VeyraError> {
        self.inner
            .emitter
            .tap
            .set(sink)
            .map_err(|_| VeyraError::Runtime("the core already has an event tap".into()))
    }

    /// The scheduler, to register handlers of other task kinds.
    pub fn scheduler(&self) -> &Scheduler {
        &self.inner.scheduler
    }

    /// The policy engine every action is checked against now.
    pub fn policy(&self) -> Arc<dyn PolicyEngine> {
        self.inner.policy_engine()
    }

    /// The audit trail, when audit is on.
    pub fn audit(&self) -> Option<&AuditTrail> {
        self.inner.audit.as_ref()
    }

    /// Name of the current backend.
    pub fn backend_name(&self) -> String {
        self.inner.current_backend().name().to_string()
    }
}

impl CoreInner {
    /// The policy engine in force now.
    fn policy_engine(&self) -> Arc<dyn PolicyEngine> {
        match self.policy.read() {
            Ok(p) => Arc::clone(&p),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Publishes the link's state when `switched`, or when it moved enough to show (see
    /// [`VeyraCore::watch_link`]).
    fn publish_link(&self, switched: bool) {
        let status = self.link.status();
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
        control::log_blackout_change(last.as_ref(), &status);
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

#[cfg(test)]
mod tests;
