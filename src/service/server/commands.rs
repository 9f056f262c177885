//! The commands a client sends, carried out on its behalf through the runtime's one gate
//! ([`as_caller`]), and the responses they get.

use std::collections::HashSet;
use std::sync::Mutex;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{Shared, runtime_info};
use crate::core::{Caller, ExecutionRequest, VeyraCore, as_caller};
use crate::error::VeyraError;
use crate::events::ExecutionId;
use crate::service::detail;
use crate::service::protocol::{self, Reply, Request, RpcError, ServerMessage};

/// Benchmark news a following client may fall behind by before its run is cancelled (about
/// 20 MB of news at most): a client that reads at all keeps far closer than that.
const FOLLOWED_NEWS: usize = 65_536;

/// Longest file name (and `map`) a client's suite may come with, in bytes.
const MAX_SUITE_NAME: usize = 4096;

/// What a client follows: its own prompts (cancelled when it leaves), and whether it follows
/// the benchmark run (cancelled likewise).
#[derive(Debug, Default)]
pub(super) struct Follows {
    /// Its followed executions not yet ended.
    pub executions: Mutex<HashSet<ExecutionId>>,
    /// The benchmark run it follows, while it does.
    pub bench: Mutex<Option<u64>>,
}

pub(super) fn response(id: u64, result: Result<Reply, RpcError>) -> String {
    let (ok, error) = match result {
        Ok(reply) => (Some(reply), None),
        Err(e) => (None, Some(e)),
    };
    protocol::line(&ServerMessage::Response { id, ok, error })
}

/// A library error as the protocol's.
pub fn rpc_error(e: &VeyraError) -> RpcError {
    let kind = match e {
        VeyraError::Usage(_) | VeyraError::Config(_) => "usage",
        VeyraError::Refused(_) | VeyraError::Policy(_) => "refused",
        VeyraError::Cancelled(_) => "cancelled",
        VeyraError::Task { .. } => "task",
        _ => "runtime",
    };
    RpcError {
        kind: kind.into(),
        message: e.to_string(),
    }
}

fn usage(message: String) -> RpcError {
    RpcError {
        kind: "usage".into(),
        message,
    }
}

/// Carries out one request on `caller`'s behalf and queues its response (and, for a followed
/// submission, the execution's events after it).
pub(super) async fn request(
    shared: &Shared,
    caller: &Caller,
    id: u64,
    command: Request,
    subscribed: bool,
    control: &mpsc::Sender<String>,
    follows: &Follows,
) {
    let core = &shared.core;
    let who = || Some(caller.clone());
    let result: Result<Reply, RpcError> = match command {
        Request::Submit {
            prompt,
            priority,
            system,
            backend,
            model,
            tools,
            follow,
        } => {
            let tools = match tools
                .map(|t| t.parse::<crate::config::ToolSelection>())
                .transpose()
            {
                Ok(t) => t,
                Err(e) => {
                    let _ = control
                        .send(response(id, Err(usage(format!("tools: {e}")))))
                        .await;
                    return;
                }
            };
            let mut request = ExecutionRequest::new(prompt).priority(priority);
            request.system = system;
            request.backend = backend;
            request.model = model;
            request.tools = tools;
            request.caller = Some(caller.clone());
            if follow {
                if subscribed {
                    Err(usage(
                        "follow is for a session without events (its events would come twice)"
                            .into(),
                    ))
                } else {
                    follow_execution(core, caller, id, request, control, &follows.executions).await;
                    return;
                }
            } else {
                core.submit(request)
                    .map(|id| Reply::Submitted { id })
                    .map_err(|e| rpc_error(&e))
            }
        }
        Request::Cancel { id: task } => as_caller(who(), async { core.cancel(task) })
            .await
            .map(|()| Reply::Done)
            .map_err(|e| rpc_error(&e)),
        Request::SetPreset { preset } => match preset.parse::<crate::config::LatencyPreset>() {
            Ok(preset) => as_caller(who(), core.set_preset(preset))
                .await
                .map(|link| Reply::Link { link })
                .map_err(|e| rpc_error(&e)),
            Err(e) => Err(usage(format!("preset: {e}"))),
        },
        Request::SetSimulated { on } => as_caller(who(), core.set_simulated(on))
            .await
            .map(|link| Reply::Link { link })
            .map_err(|e| rpc_error(&e)),
        Request::SetBackend { backend, model } => {
            as_caller(who(), core.set_backend(&backend, model.as_deref()))
                .await
                .map(|()| Reply::Done)
                .map_err(|e| rpc_error(&e))
        }
        Request::Answer {
            request,
            allowed,
            scope,
        } => as_caller(who(), async {
            core.answer_confirmation_scoped(
                request,
                allowed,
                scope,
                &format!("operator ({caller})"),
            )
        })
        .await
        .map(|()| Reply::Done)
        .map_err(|e| rpc_error(&e)),
        Request::VerifyAudit => {
            let core = core.clone();
            match tokio::task::spawn_blocking(move || core.verify_audit()).await {
                Ok(Some(Ok(report))) => Ok(Reply::Verified {
                    entries: report.entries,
                    failure: None,
                }),
                Ok(Some(Err(e))) => Ok(Reply::Verified {
                    entries: shared.core.audit().map_or(0, |t| t.len()),
                    failure: Some(e.to_string()),
                }),
                Ok(None) => Err(usage("audit is off in this runtime".into())),
                Err(e) => Err(RpcError {
                    kind: "runtime".into(),
                    message: format!("verifying: {e}"),
                }),
            }
        }
        Request::Undo { seq } => {
            let call = ExecutionId::new();
            let asked = (!subscribed).then(|| forward_questions(core, call, control.clone()));
            let done = as_caller(who(), core.undo_tool_as(call, seq, "operator")).await;
            drop(asked);
            done.map(|done| Reply::Undone {
                undone: done.undone,
                path: done.path.clone(),
                outcome: serde_json::to_value(&done).unwrap_or_default(),
            })
            .map_err(|e| rpc_error(&e))
        }
        Request::InvokeTool { name, args } => {
            let call = ExecutionId::new();
            let asked = (!subscribed).then(|| forward_questions(core, call, control.clone()));
            let done = as_caller(who(), core.invoke_tool_as(call, &name, args, "operator")).await;
            drop(asked);
            done.map(|done| Reply::Tool {
                invocation: serde_json::to_value(&done).unwrap_or_default(),
            })
            .map_err(|e| rpc_error(&e))
        }
        Request::AuditEntry { seq } => {
            let core = core.clone();
            match tokio::task::spawn_blocking(move || detail::audit_entry(&core, seq)).await {
                Ok(Ok((title, lines))) => Ok(Reply::Detail { title, lines }),
                Ok(Err(message)) => Err(RpcError {
                    kind: "not_found".into(),
                    message,
                }),
                Err(e) => Err(RpcError {
                    kind: "runtime".into(),
                    message: format!("reading entry {seq}: {e}"),
                }),
            }
        }
        Request::ExplainRule { rule } => Ok(Reply::Detail {
            title: format!("Rule {}", crate::sanitize::sanitize_line(&rule)),
            lines: detail::rule_text(core, &rule),
        }),
        Request::Status => Ok(Reply::Status {
            runtime: runtime_info(shared),
        }),
        Request::BenchPlan { request } => shared
            .bench
            .plan(request)
            .await
            .map(|plan| Reply::BenchPlan { plan })
            .map_err(usage),
        Request::BenchStart {
            request,
            resume,
            follow,
        } => {
            if follow && subscribed {
                Err(usage(
                    "follow is for a session without events (its news would come twice)".into(),
                ))
            } else if follow {
                let start = || {
                    shared
                        .bench
                        .start(&request, resume.as_deref(), Some(caller.clone()), true)
                        .map_err(usage)
                };
                follow_bench(shared, caller, id, start, control, &follows.bench).await;
                return;
            } else {
                shared
                    .bench
                    .start(&request, resume.as_deref(), Some(caller.clone()), false)
                    .map(|began| Reply::BenchStarted { began })
                    .map_err(usage)
            }
        }
        Request::BenchSuite {
            suite,
            resume,
            follow,
        } => {
            if follow && subscribed {
                Err(usage(
                    "follow is for a session without events (its news would come twice)".into(),
                ))
            } else if shared.bench.running() {
                // Refused before the file is even read: one run at a time.
                Err(usage(
                    "a benchmark run is already going; cancel it first, or wait for its end".into(),
                ))
            } else {
                match suite_job(suite, resume).await {
                    Err(e) => Err(e),
                    Ok(job) if follow => {
                        let by = Some(caller.clone());
                        let start = || {
                            shared
                                .bench
                                .start_suite(job, by, true)
                                .map_err(|e| rpc_error(&e))
                        };
                        follow_bench(shared, caller, id, start, control, &follows.bench).await;
                        return;
                    }
                    Ok(job) => shared
                        .bench
                        .start_suite(job, Some(caller.clone()), false)
                        .map(|began| Reply::BenchStarted { began })
                        .map_err(|e| rpc_error(&e)),
                }
            }
        }
        Request::Tools => Ok(Reply::Tools {
            tools: core.tools().list(),
        }),
        Request::Approvals => Ok(Reply::Approvals {
            approvals: core.approvals(),
        }),
        Request::Approve { tool, argument } => as_caller(who(), async {
            core.approve(&tool, argument, &format!("operator ({caller})"))
                .await
        })
        .await
        .map(|approval| Reply::Approval { approval })
        .map_err(|e| rpc_error(&e)),
        Request::RevokeApproval { id } => as_caller(who(), async {
            core.revoke_approval(id, &format!("operator ({caller})"))
                .await
        })
        .await
        .map(|approval| Reply::Approval { approval })
        .map_err(|e| rpc_error(&e)),
        Request::ReloadPolicy => as_caller(who(), core.reload_policy())
            .await
            .map(|(from, to)| Reply::PolicyReloaded { from, to })
            .map_err(|e| rpc_error(&e)),
        Request::BenchCancel { run } => {
            tracing::info!(client = %caller, run = ?run, "a client cancels the benchmark run");
            shared
                .bench
                .cancel(run)
                .map(|()| Reply::Done)
                .map_err(usage)
        }
    };
    let _ = control.send(response(id, result)).await;
}

/// The suite a client sent, checked and compiled off the async threads (a file may be large),
/// exactly as `veyra bench --suite` checks one it reads: nothing is read from the path it
/// names.
async fn suite_job(
    upload: protocol::SuiteUpload,
    resume: Option<String>,
) -> Result<crate::service::bench::SuiteJob, RpcError> {
    use crate::benchmarks::suite::{FieldMap, format};
    if upload.source.len() > MAX_SUITE_NAME
        || upload.source.chars().any(char::is_control)
        || upload.source.trim().is_empty()
    {
        return Err(usage(format!(
            "the suite's file name must be 1 to {MAX_SUITE_NAME} bytes without control \
             characters"
        )));
    }
    if upload
        .map
        .as_ref()
        .is_some_and(|m| m.len() > MAX_SUITE_NAME)
    {
        return Err(usage(format!("map is longer than {MAX_SUITE_NAME} bytes")));
    }
    if upload.count.is_some() && resume.is_some() {
        return Err(usage(
            "count is for a new run; a resumed run keeps its own samples".into(),
        ));
    }
    // One suite read at a time, however many clients send one (each may be megabytes): the
    // permit goes with the reading itself, so a client that leaves mid-way frees nothing early.
    static READING: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
        std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(1)));
    let reading = std::sync::Arc::clone(&READING)
        .acquire_owned()
        .await
        .map_err(|e| RpcError {
            kind: "runtime".into(),
            message: format!("reading the suite: {e}"),
        })?;
    tokio::task::spawn_blocking(move || {
        let _reading = reading;
        if upload.count == Some(0) {
            return Err(usage("count must be at least 1".into()));
        }
        let map = upload
            .map
            .as_deref()
            .map(FieldMap::parse)
            .transpose()
            .map_err(|e| usage(format!("map: {e}")))?;
        let path = std::path::PathBuf::from(&upload.source);
        let suite =
            format::from_text(&upload.text, &path, map.as_ref()).map_err(|e| rpc_error(&e))?;
        Ok(crate::service::bench::SuiteJob {
            suite: std::sync::Arc::new(suite),
            source: upload.source,
            map: map.map(|m| m.to_string()).unwrap_or_default(),
            resume,
            count: upload.count.map(|c| c as usize),
        })
    })
    .await
    .map_err(|e| RpcError {
        kind: "runtime".into(),
        message: format!("reading the suite: {e}"),
    })?
}

/// A submission the client follows: the response, then every event of the execution in order
/// (its text joined while the client reads slowly), the execution cancelled if the client goes.
async fn follow_execution(
    core: &VeyraCore,
    caller: &Caller,
    id: u64,
    request: ExecutionRequest,
    control: &mpsc::Sender<String>,
    follows: &Mutex<HashSet<ExecutionId>>,
) {
    let mut stream = match core.execute_stream(request) {
        Ok(stream) => stream,
        Err(e) => {
            let _ = control.send(response(id, Err(rpc_error(&e)))).await;
            return;
        }
    };
    let task = stream.id();
    if let Ok(mut set) = follows.lock() {
        set.insert(task);
    }
    let mut gone = control
        .send(response(id, Ok(Reply::Submitted { id: task })))
        .await
        .is_err();
    while !gone && let Some(event) = stream.next().await {
        gone = control
            .send(protocol::line(&ServerMessage::Event { event }))
            .await
            .is_err();
    }
    if gone {
        let _ = as_caller(Some(caller.clone()), async { core.cancel(task) }).await;
    }
    if let Ok(mut set) = follows.lock() {
        set.remove(&task);
    }
}

/// A benchmark run the client follows (`veyra bench`): the response, then the run's every
/// piece of news in order, losslessly; the run is cancelled if the client goes before it ends.
async fn follow_bench(
    shared: &Shared,
    caller: &Caller,
    id: u64,
    start: impl FnOnce() -> Result<crate::service::bench::Began, RpcError>,
    control: &mpsc::Sender<String>,
    following: &Mutex<Option<u64>>,
) {
    use crate::service::bench::BenchNews;
    // Subscribed before the run starts, so none of its news can be missed; what came before
    // its own `began` (the end of the run before it) is not its.
    let mut news = shared.bench.subscribe_bounded(FOLLOWED_NEWS);
    let began = match start() {
        Ok(began) => began,
        Err(e) => {
            let _ = control.send(response(id, Err(e))).await;
            return;
        }
    };
    let number = began.number;
    // The connection's end cancels this run while this is set, even before this notices.
    set_following(following, Some(number));
    let mut gone = control
        .send(response(id, Ok(Reply::BenchStarted { began })))
        .await
        .is_err();
    let mut ours = false;
    let mut ended = false;
    while !gone && let Some(piece) = news.recv().await {
        if let BenchNews::Began(b) = &piece {
            // Its own `began` was the response.
            ours = b.number == number;
            continue;
        }
        if !ours {
            continue;
        }
        ended = piece.is_end();
        gone = control
            .send(protocol::line(&ServerMessage::Bench { news: piece }))
            .await
            .is_err();
        if ended {
            break;
        }
    }
    set_following(following, None);
    if ended {
        return;
    }
    if !gone {
        // The news outran the client by more than the runtime holds for it.
        let _ = control
            .send(protocol::line(&ServerMessage::Closing {
                reason: format!(
                    "this client fell more than {FOLLOWED_NEWS} benchmark news behind; its run \
                     {number} was cancelled (finish it with `veyra bench --resume RUN`, or \
                     `veyra bench --suite FILE --resume RUN` for a suite)"
                ),
            }))
            .await;
    }
    tracing::info!(client = %caller, run = number, "the client following a benchmark run left; cancelling it");
    let _ = shared.bench.cancel(Some(number));
}

fn set_following(following: &Mutex<Option<u64>>, run: Option<u64>) {
    match following.lock() {
        Ok(mut f) => *f = run,
        Err(poisoned) => *poisoned.into_inner() = run,
    }
}

/// Sends a client that follows no events the confirmation requests of call `id` (a tool call
/// or an undo it asked for), so it can answer its own question — and only its own. Stops when
/// dropped.
fn forward_questions(
    core: &VeyraCore,
    id: ExecutionId,
    control: mpsc::Sender<String>,
) -> tokio_util::task::AbortOnDropHandle<()> {
    // Subscribed before the call starts: its question cannot come first.
    let mut events = core.subscribe();
    tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event @ crate::events::Event::ConfirmationRequested { .. })
                    if event.execution() == Some(id) =>
                {
                    if control
                        .send(protocol::line(&ServerMessage::Event { event }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }))
}
