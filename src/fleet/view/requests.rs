//! A console's requests over the fleet: read beside the session's loop (a resync waiting on
//! a slow worker never holds a prompt or a cancel back), each carried out on its own — a
//! prompt to the task stream, a cancel as a withdrawal or on the bus, the runtime-wide
//! commands to every worker, the rest refused with where to do them.

use super::*;
use crate::fleet::node::NodeCommand;
use crate::fleet::wire;
use crate::service::protocol::{Reply, Request, RpcError};

/// Reads the client's requests until it is gone (then `closed`), each carried out on its own.
pub(super) async fn requests(
    mut lines: FramedRead<ReadHalf<DuplexStream>, LinesCodec>,
    known: tokio::sync::watch::Receiver<(Vec<String>, RuntimeInfo)>,
    (fleet, submitter, by): (Fleet, Submitter, NodeCaller),
    out: Out,
    closed: tokio_util::sync::CancellationToken,
) {
    let _closed = closed.drop_guard();
    while let Some(Ok(text)) = lines.next().await {
        if text.trim().is_empty() {
            continue;
        }
        let Ok(ClientMessage::Request { id, command }) =
            serde_json::from_str::<ClientMessage>(&text)
        else {
            tracing::warn!("the fleet session's client sent something not a request");
            return;
        };
        let (workers, info) = known.borrow().clone();
        let ctx = Ctx {
            fleet: fleet.clone(),
            submitter: submitter.clone(),
            by: by.clone(),
            workers,
            info,
            out: out.clone(),
        };
        let out = out.clone();
        tokio::spawn(async move {
            let (ok, error) = match ctx.answer(command).await {
                Ok(reply) => (Some(reply), None),
                Err(e) => (None, Some(e)),
            };
            let _ = out
                .send(protocol::line(&ServerMessage::Response { id, ok, error }))
                .await;
        });
    }
}

/// What a request needs, taken when it came.
struct Ctx {
    fleet: Fleet,
    submitter: Submitter,
    by: NodeCaller,
    /// The live workers' names.
    workers: Vec<String>,
    info: RuntimeInfo,
    /// The session's lines: its own prompts are shown queued before a worker takes them.
    out: Out,
}

fn usage(message: String) -> RpcError {
    RpcError {
        kind: "usage".into(),
        message,
    }
}

impl Ctx {
    async fn answer(&self, command: Request) -> Result<Reply, RpcError> {
        let per_worker = |what: &str| {
            Err(usage(format!(
                "{what} acts on one runtime's store: attach to that worker's own runtime \
                 (`veyra attach ssh://HOST`) to do it"
            )))
        };
        match command {
            Request::Submit {
                prompt,
                priority,
                system,
                backend,
                model,
                tools,
                follow,
            } => {
                if follow {
                    return Err(usage(
                        "follow is for a session without events; `veyra run` with \
                         runtime.executor: nats follows its task"
                            .into(),
                    ));
                }
                if let Some(t) = &tools {
                    t.parse::<crate::config::ToolSelection>()
                        .map_err(|e| usage(format!("tools: {e}")))?;
                }
                let task = wire::TaskMessage {
                    format: wire::TASK_FORMAT.into(),
                    id: crate::events::ExecutionId::new(),
                    prompt,
                    priority,
                    system,
                    backend,
                    model,
                    tools,
                    by: format!("console on {} (pid {})", self.by.host, self.by.pid),
                    items: Vec::new(),
                };
                // Shown queued to this console before it is published, so a worker's events of
                // it (which start its row anew) always come after; other consoles see it when
                // a worker takes it.
                let (id, at) = (task.id, chrono::Utc::now());
                let tell = |event: crate::events::Event| {
                    self.out
                        .send(protocol::line(&ServerMessage::Event { event }))
                };
                let _ = tell(task.submitted("operator", at)).await;
                let _ = tell(crate::events::Event::TaskState {
                    id,
                    status: crate::events::TaskStatus::Queued,
                    attempt: 0,
                    at,
                })
                .await;
                match self.submitter.submit(task).await {
                    Ok(_) => Ok(Reply::Submitted { id }),
                    // Refused before it was published (too large, a duplicate): it failed. An
                    // error after (no acknowledgement from the server) may be a task the
                    // stream holds all the same: its row is left for a worker to tell.
                    Err(e @ VeyraError::Usage(_)) => {
                        let error = format!("the fleet did not take it: {e}");
                        let _ = tell(crate::events::Event::TaskState {
                            id,
                            status: crate::events::TaskStatus::Failed {
                                error: error.clone(),
                                kind: "fleet".into(),
                                not_retried: None,
                            },
                            attempt: 0,
                            at: chrono::Utc::now(),
                        })
                        .await;
                        Err(RpcError {
                            kind: "usage".into(),
                            message: error,
                        })
                    }
                    Err(e) => Err(RpcError {
                        kind: "runtime".into(),
                        message: format!(
                            "the fleet's server did not confirm task {id} ({e}); it may run \
                             all the same"
                        ),
                    }),
                }
            }
            Request::Cancel { id } => {
                // Withdrawn before any worker took it: no worker will tell of it, so this
                // session does (its row was shown queued here).
                if self.submitter.withdraw_by(id, Some(&self.by)).await {
                    let _ = self
                        .out
                        .send(protocol::line(&ServerMessage::Event {
                            event: crate::events::Event::TaskState {
                                id,
                                status: crate::events::TaskStatus::Cancelled {
                                    reason: "withdrawn before a worker took it".into(),
                                },
                                attempt: 0,
                                at: chrono::Utc::now(),
                            },
                        }))
                        .await;
                }
                Ok(Reply::Done)
            }
            Request::Status => Ok(Reply::Status {
                runtime: self.info.clone(),
            }),
            command @ (Request::SetPreset { .. }
            | Request::SetSimulated { .. }
            | Request::SetBackend { .. }
            | Request::VerifyAudit
            | Request::ReloadPolicy) => self.every_worker(command).await,
            Request::Answer { .. } => Err(usage(
                "nobody answers questions at a fleet worker: its confirmation policy decides"
                    .into(),
            )),
            Request::BenchPlan { .. }
            | Request::BenchStart { .. }
            | Request::BenchSuite { .. }
            | Request::BenchCancel { .. } => Err(usage(
                "a benchmark run over the fleet is `veyra bench` with runtime.executor: nats \
                 (its items fan out over the workers)"
                    .into(),
            )),
            Request::Undo { .. } => per_worker("an undo"),
            Request::InvokeTool { .. } => per_worker("a tool call"),
            Request::AuditEntry { .. } => per_worker("an audit entry"),
            Request::ExplainRule { .. } => per_worker("a rule's text"),
            Request::Approvals | Request::Approve { .. } | Request::RevokeApproval { .. } => {
                per_worker("a standing approval")
            }
            Request::Tools => per_worker("the tool list"),
        }
    }

    /// `command` sent to every live worker, each deciding and auditing it: the first
    /// worker's answer when all agree to it (verifications summed), else each refusal with
    /// its worker.
    async fn every_worker(&self, command: Request) -> Result<Reply, RpcError> {
        if self.workers.is_empty() {
            return Err(RpcError {
                kind: "runtime".into(),
                message: "no worker of the fleet is up to carry it out".into(),
            });
        }
        let payload = serde_json::to_vec(&NodeCommand {
            by: self.by.clone(),
            command,
        })
        .map_err(|e| usage(format!("the command does not encode: {e}")))?;
        let payload = Bytes::from(payload);
        let asks = self.workers.iter().map(|name| {
            let subject = self.fleet.node_command_subject(&node::node_key(name));
            let client = self.fleet.client.clone();
            let payload = payload.clone();
            async move {
                let asked = client.send_request(
                    subject,
                    async_nats::Request::new()
                        .payload(payload)
                        .timeout(Some(COMMAND_WAIT)),
                );
                let answer = match asked.await {
                    Err(e) => Err(e.to_string()),
                    Ok(message) => {
                        match serde_json::from_slice::<ServerMessage>(&message.payload) {
                            Ok(ServerMessage::Response { ok: Some(r), .. }) => Ok(r),
                            Ok(ServerMessage::Response { error: Some(e), .. }) => Err(e.message),
                            _ => Err("its answer does not read".into()),
                        }
                    }
                };
                (name.clone(), answer)
            }
        });
        let answers = futures_util::future::join_all(asks).await;
        let mut first: Option<Reply> = None;
        let mut refusals = Vec::new();
        for (name, answer) in answers {
            let name = crate::sanitize::sanitize_line(&name).into_owned();
            match answer {
                Ok(Reply::Verified { entries, failure }) => {
                    let failure = failure.map(|f| format!("worker {name}: {f}"));
                    first = Some(match first {
                        Some(Reply::Verified {
                            entries: e,
                            failure: f,
                        }) => Reply::Verified {
                            entries: e.saturating_add(entries),
                            failure: f.or(failure),
                        },
                        _ => Reply::Verified { entries, failure },
                    });
                }
                Ok(reply) => {
                    first.get_or_insert(reply);
                }
                Err(why) => refusals.push(format!(
                    "worker {name}: {}",
                    crate::sanitize::sanitize_line(&why)
                )),
            }
        }
        match (first, refusals.is_empty()) {
            (Some(reply), true) => Ok(reply),
            _ => Err(RpcError {
                kind: "refused".into(),
                message: refusals.join("; "),
            }),
        }
    }
}
