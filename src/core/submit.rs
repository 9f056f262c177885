//! Running prompts: [`VeyraCore::submit`] hands a request to the scheduler as an `execute`
//! task, and the `execute*` calls wait on it — blocking ([`VeyraCore::execute`]), for the final
//! state only ([`VeyraCore::execute_async`], [`VeyraCore::execute_as`]), with the tool steps
//! ([`VeyraCore::execute_with_steps`]) or as an ordered stream of the execution's events
//! ([`VeyraCore::execute_stream`]). [`task_error`] turns a failed task into the caller's error.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::error::VeyraError;
use crate::events::{Event, ExecutionId, TaskStatus, title_of};
use crate::runtime::scheduler::TaskSpec;

use super::stream::StreamFeed;
use super::{
    EXECUTE, Emitter, ExecutionRequest, ExecutionResult, ExecutionStream, REFUSED, VeyraCore,
};

impl VeyraCore {
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
    /// its final `TaskState`. A reader that falls behind finds the pieces of text it has not
    /// read yet joined into one `OutputDelta`, so what waits for it stays short however long
    /// the answer (see [`ExecutionStream`]). Needs a tokio runtime.
    pub fn execute_stream(&self, request: ExecutionRequest) -> Result<ExecutionStream, VeyraError> {
        self.execute_stream_as(ExecutionId::new(), request)
    }

    /// [`VeyraCore::execute_stream`] under the id `id` a fleet's submitter gave the task, so
    /// its events carry the id the submitter follows. The caller runs one execution of an id
    /// at a time (a fleet worker keeps the set of those it runs).
    pub fn execute_stream_as(
        &self,
        id: ExecutionId,
        request: ExecutionRequest,
    ) -> Result<ExecutionStream, VeyraError> {
        let (feed, stream) = StreamFeed::new(id);
        self.inner.emitter.watch_stream(id, feed);
        if let Err(e) = self.submit_with_id(id, request) {
            self.inner.emitter.unwatch(id);
            return Err(e);
        }
        Ok(stream)
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
        // A prompt that names its backend meets the same rule as a switch to it.
        super::control::check_model(&self.inner.config.model, backend.name(), &model)?;
        request
            .backend
            .get_or_insert_with(|| backend.name().to_string());
        let title = title_of(&request.prompt, 80);
        let priority = request.priority;
        let local = request.local;
        let actor = Some(request.actor.clone());
        let spec = TaskSpec {
            kind: EXECUTE.to_string(),
            title,
            priority,
            payload: Arc::new(request),
            backend: Some(backend.name().to_string()),
            model: Some(model),
            actor,
            local,
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
}

/// The error a failed task ends the caller's wait with; refusals keep their own exit code.
pub(super) fn task_error(kind: &str, message: &str) -> VeyraError {
    if kind == REFUSED {
        VeyraError::Refused(message.to_string())
    } else {
        VeyraError::Task {
            kind: kind.to_string(),
            message: message.to_string(),
        }
    }
}
