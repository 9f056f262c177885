//! `veyra run`: one prompt, from the argument or stdin, through the full path; the answer
//! streams to stdout (or every event as a JSON line), tool steps and confirmations go to
//! stderr, and Ctrl-C (or SIGTERM, SIGHUP) cancels the task: the process then says so and exits
//! 130 (143, 129).

use std::io::{IsTerminal, Write};

use futures_util::StreamExt;

use super::RunArgs;
use crate::config::LoadedConfig;
use crate::core::{ExecutionRequest, ResultFolder, VeyraCore};
use crate::error::{ExitCode, VeyraError};
use crate::events::{ConfirmScope, Event, ExecutionId, FinishReason, TaskStatus};
use crate::sanitize::sanitize;
use crate::signals::{StopSignal, StopSignals};

/// Most bytes of a prompt read from stdin: far past any model's context window.
pub const MAX_PROMPT_BYTES: u64 = 16 << 20;

/// Reads the prompt from the argument or stdin.
fn read_prompt(arg: Option<String>) -> Result<String, VeyraError> {
    let from_stdin = matches!(arg.as_deref(), None | Some("-"));
    if !from_stdin {
        return Ok(arg.unwrap_or_default());
    }
    let stdin = std::io::stdin();
    if arg.is_none() && stdin.is_terminal() {
        return Err(VeyraError::Usage(
            "no prompt given; run `veyra run \"PROMPT\"` or pipe one: `echo PROMPT | veyra run -`"
                .into(),
        ));
    }
    // Stdin may be a pipe that never ends (`veyra run - < /dev/zero`): read no further than
    // the largest prompt.
    let shown = std::path::Path::new("stdin");
    let text = crate::fsread::read_capped(stdin.lock(), shown, MAX_PROMPT_BYTES, "prompt")
        .and_then(|bytes| crate::fsread::utf8(bytes, shown, "prompt"))
        .map_err(|e| match e {
            crate::fsread::BoundedReadError::Io { source, .. } => {
                VeyraError::io("reading the prompt from stdin", source)
            }
            crate::fsread::BoundedReadError::TooLarge { cap, .. } => VeyraError::Usage(format!(
                "the prompt on stdin is larger than {}, the most `veyra run -` reads; none of it \
                 was used (pipe a shorter prompt)",
                crate::fsread::human_bytes(cap)
            )),
            e @ (crate::fsread::BoundedReadError::NotRegular { .. }
            | crate::fsread::BoundedReadError::NotUtf8 { .. }) => VeyraError::Usage(e.to_string()),
        })?;
    if text.trim().is_empty() {
        return Err(VeyraError::Usage(
            "stdin closed without a prompt; pipe some text, e.g. `echo PROMPT | veyra run -`"
                .into(),
        ));
    }
    Ok(text)
}

/// `veyra run`: through the runtime serving the configured store when one does (unless
/// `standalone`), else on a runtime of its own.
pub async fn run(
    args: RunArgs,
    loaded: LoadedConfig,
    standalone: bool,
) -> Result<ExitCode, VeyraError> {
    let prompt = read_prompt(args.prompt.clone())?;
    // Listen for Ctrl-C, SIGTERM and SIGHUP before anything is submitted, so no signal can
    // slip past.
    let mut signals = StopSignals::install()?;
    if loaded.config.runtime.executor == crate::config::Executor::Nats && !standalone {
        let source = submit_to_fleet(&loaded, &args, prompt).await?;
        let id = match &source {
            Source::Fleet(s) => s.id(),
            _ => return Err(VeyraError::Runtime("the fleet gave no task".into())),
        };
        return follow(source, id, &args, &mut signals).await;
    }
    let attached = if standalone {
        None
    } else {
        crate::service::attach_configured(&loaded.config, "veyra run", false).await?
    };
    let (source, id) = match attached {
        Some((client, inbound)) => {
            eprintln!(
                "veyra: attached to {}; --standalone runs without it",
                client.describe()
            );
            let id = submit_attached(&client, &args, prompt).await?;
            (Source::Attached { client, inbound }, id)
        }
        None => {
            let core = VeyraCore::new(loaded.config)?;
            core.set_confirmation_policy(if args.yes {
                crate::core::ConfirmationPolicy::AllowAll
            } else if interactive() {
                crate::core::ConfirmationPolicy::Ask
            } else {
                crate::core::ConfirmationPolicy::DenyAll
            });
            let mut request = ExecutionRequest::new(prompt).priority(args.priority);
            request.system = args.system.clone();
            request.backend = args.backend.clone();
            request.model = args.model.clone();
            request.tools = args.tools.clone();
            let stream = core.execute_stream(request)?;
            let id = stream.id();
            (Source::Local { core, stream }, id)
        }
    };
    follow(source, id, &args, &mut signals).await
}

/// Submits the prompt to the fleet (`runtime.executor: nats`): a worker runs it through its
/// own core and gate, where nobody answers questions (`--yes` does not reach across).
async fn submit_to_fleet(
    loaded: &LoadedConfig,
    args: &RunArgs,
    prompt: String,
) -> Result<Source, VeyraError> {
    let fleet = crate::fleet::Fleet::connect(&loaded.config.nats, None).await?;
    let host = crate::core::hostname();
    let task = crate::fleet::wire::TaskMessage {
        format: crate::fleet::wire::TASK_FORMAT.into(),
        id: ExecutionId::new(),
        prompt,
        priority: args.priority,
        system: args.system.clone(),
        backend: args.backend.clone(),
        model: args.model.clone(),
        tools: args.tools.as_ref().map(ToString::to_string),
        by: format!("veyra run on {host} (pid {})", std::process::id()),
        items: Vec::new(),
    };
    eprintln!(
        "veyra: submitted to the fleet at {} as task {}; --standalone runs it here",
        fleet.url(),
        task.id
    );
    let submission = crate::fleet::Submitter::new(fleet).submit(task).await?;
    Ok(Source::Fleet(Box::new(submission)))
}

/// Questions can be asked: stdin and stderr are a terminal.
fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Submits the prompt to a serving runtime as this client's, followed: every event of it
/// comes to this client, and the runtime cancels it if the client goes away.
async fn submit_attached(
    client: &crate::service::Client,
    args: &RunArgs,
    prompt: String,
) -> Result<ExecutionId, VeyraError> {
    use crate::service::protocol::{Reply, Request};
    let submitted = client
        .request(Request::Submit {
            prompt,
            priority: args.priority,
            system: args.system.clone(),
            backend: args.backend.clone(),
            model: args.model.clone(),
            tools: args.tools.as_ref().map(ToString::to_string),
            follow: true,
        })
        .await;
    match submitted {
        Ok(Reply::Submitted { id }) => Ok(id),
        Ok(other) => Err(VeyraError::Runtime(format!(
            "the runtime answered the submission with {other:?}"
        ))),
        Err(e) => Err(remote_error(e)),
    }
}

/// Where the run's events come from: a runtime of its own, or the one it attached to.
enum Source {
    /// This process's core and the execution's own stream.
    Local {
        core: VeyraCore,
        stream: crate::core::ExecutionStream,
    },
    /// A serving runtime's session, following the execution.
    Attached {
        client: crate::service::Client,
        inbound: tokio::sync::mpsc::Receiver<crate::service::Inbound>,
    },
    /// A task submitted to the fleet (`runtime.executor: nats`), followed on the bus.
    Fleet(Box<crate::fleet::Submission>),
}

impl Source {
    /// The execution's next event; `None` once its stream ends. A runtime that goes away
    /// first is an error.
    async fn next(&mut self, id: ExecutionId) -> Result<Option<Event>, VeyraError> {
        use crate::service::Inbound;
        match self {
            Source::Local { stream, .. } => Ok(stream.next().await),
            Source::Fleet(submission) => submission.next().await.transpose(),
            Source::Attached { client, inbound } => loop {
                match inbound.recv().await {
                    Some(Inbound::Event(event)) if event.execution() == Some(id) => {
                        return Ok(Some(event));
                    }
                    Some(
                        Inbound::Event(_)
                        | Inbound::Resync { .. }
                        | Inbound::Live
                        | Inbound::Fleet(_)
                        | Inbound::Bench(_),
                    ) => {}
                    Some(Inbound::Closed(reason)) => {
                        return Err(VeyraError::Runtime(format!(
                            "the runtime (pid {}) went away before task {id} ended: {}",
                            client.runtime.pid,
                            crate::sanitize::sanitize_line(&reason)
                        )));
                    }
                    None => return Ok(None),
                }
            },
        }
    }

    /// Stops on `signal`: a runtime of its own cancels what is in flight and records the stop;
    /// a serving runtime cancels this task (and records that). How many tasks were cancelled,
    /// and whether the audit trail has it.
    async fn stop(&self, id: ExecutionId, signal: StopSignal) -> (usize, bool) {
        match self {
            Source::Local { core, .. } => {
                let (report, audited) = core.stop_on_signal(signal.name()).await;
                (report.left_queued.len() + report.cancelled_running, audited)
            }
            Source::Attached { client, .. } => {
                let cancelled = client
                    .request(crate::service::protocol::Request::Cancel { id })
                    .await
                    .is_ok();
                (usize::from(cancelled), cancelled)
            }
            // The worker running it cancels it and records that; its final state follows.
            Source::Fleet(submission) => {
                let sent = submission.cancel().await.is_ok();
                (usize::from(sent), false)
            }
        }
    }

    /// Answers the run's own question.
    async fn answer(
        &self,
        request: u64,
        allowed: bool,
        scope: ConfirmScope,
    ) -> Result<(), VeyraError> {
        match self {
            Source::Local { core, .. } => {
                core.answer_confirmation_scoped(request, allowed, scope, "operator (terminal)")
            }
            Source::Attached { client, .. } => {
                let answered = client
                    .request(crate::service::protocol::Request::Answer {
                        request,
                        allowed,
                        scope,
                    })
                    .await;
                if let Err(e) = answered {
                    // Answered elsewhere first (a console): that answer stands.
                    eprintln!("veyra: {}", crate::sanitize::sanitize_line(&e.message));
                }
                Ok(())
            }
            // Nobody answers at a worker, and no answer crosses the bus: its gate refused.
            Source::Fleet(_) => Ok(()),
        }
    }
}

/// Follows execution `id` to its end: prints it, asks its questions (`--yes` answers yes;
/// with no terminal, no), and stops on a signal — the task is cancelled the usual way and its
/// last events shown; a second signal stops waiting.
async fn follow(
    mut source: Source,
    id: ExecutionId,
    args: &RunArgs,
    signals: &mut StopSignals,
) -> Result<ExitCode, VeyraError> {
    let mut folder = ResultFolder::new(id);
    let mut printer = Printer::new(args);
    let mut outcome = None;
    // The signal that stopped the run, how many tasks it cancelled, whether that is audited.
    let mut interrupted: Option<(StopSignal, usize, bool)> = None;
    loop {
        let event = tokio::select! {
            event = source.next(id) => event,
            signal = signals.recv() => {
                if let Some((first, _, _)) = interrupted {
                    eprintln!("veyra: {}: signalled twice; not waiting", signal.name());
                    return Ok(first.exit_code());
                }
                if signal == StopSignal::Interrupt {
                    eprintln!("veyra: cancelling task {id} (Ctrl-C again to abort at once)");
                }
                let (cancelled, audited) = source.stop(id, signal).await;
                interrupted = Some((signal, cancelled, audited));
                continue;
            }
        };
        let event = match event {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(e) => {
                printer.end()?;
                return Err(e);
            }
        };
        // Nobody answers at a fleet worker, and no answer crosses the bus: a question on a fleet
        // task's subject is not one this terminal can answer, and is not asked.
        if let Some(question) = Question::of(&event).filter(|_| !matches!(source, Source::Fleet(_)))
        {
            let (allowed, scope) = if args.yes {
                (true, ConfirmScope::Once)
            } else if !interactive() {
                (false, ConfirmScope::Once)
            } else {
                question.ask().await?
            };
            source.answer(question.request, allowed, scope).await?;
        }
        printer.show(&event)?;
        if let Some(result) = folder.apply(&event) {
            outcome = Some(result);
            break;
        }
    }
    printer.end()?;
    finish(interrupted, outcome)
}

/// A runtime's refusal as this process's error (exit code kept: a refusal is 4, a usage
/// error 2).
pub(super) fn remote_error(e: crate::service::protocol::RpcError) -> VeyraError {
    let message = crate::sanitize::sanitize_line(&e.message).into_owned();
    match e.kind.as_str() {
        "usage" => VeyraError::Usage(message),
        "refused" => VeyraError::Refused(message),
        _ => VeyraError::Runtime(message),
    }
}

/// A confirmation the run's own task asks for.
struct Question {
    request: u64,
    text: String,
    scopable: bool,
}

impl Question {
    fn of(event: &Event) -> Option<Question> {
        let Event::ConfirmationRequested {
            request,
            operation,
            reason,
            detail,
            scopable,
            ..
        } = event
        else {
            return None;
        };
        let detail = detail
            .as_deref()
            .map(|d| format!(" with {d}"))
            .unwrap_or_default();
        let choices = if *scopable {
            "[y]es once / [a]lways this run / [N]o"
        } else {
            "[y/N]"
        };
        Some(Question {
            request: *request,
            text: sanitize(&format!(
                "veyra: {reason}. Allow {operation}{detail}? {choices} "
            ))
            .into_owned(),
            scopable: *scopable,
        })
    }

    /// Asks on the terminal: yes, always (when the question allows it) or no.
    async fn ask(&self) -> Result<(bool, ConfirmScope), VeyraError> {
        let question = self.text.clone();
        let answer = tokio::task::spawn_blocking(move || {
            eprint!("{question}");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await
        .map_err(|e| VeyraError::Runtime(format!("asking for confirmation: {e}")))?
        .map_err(|e| VeyraError::io("reading the answer from the terminal", e))?;
        Ok(match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => (true, ConfirmScope::Once),
            "a" | "always" if self.scopable => (true, ConfirmScope::Session),
            _ => (false, ConfirmScope::Once),
        })
    }
}

/// What the run prints: the answer (or every event as JSON) on stdout, tool steps on stderr.
struct Printer {
    json: bool,
    /// Answer text reaches a terminal only through the sanitizer, unless asked for raw;
    /// piped, it stays byte-exact for the next program.
    sanitize_answer: bool,
    ends_with_newline: bool,
}

fn write_err(e: std::io::Error) -> VeyraError {
    VeyraError::io("writing to stdout", e)
}

impl Printer {
    fn new(args: &RunArgs) -> Self {
        Printer {
            json: args.json,
            sanitize_answer: !args.raw && std::io::stdout().is_terminal(),
            ends_with_newline: true,
        }
    }

    fn show(&mut self, event: &Event) -> Result<(), VeyraError> {
        if !self.json
            && let Event::AgentStep {
                step,
                tool,
                arguments,
                outcome,
                summary,
                ..
            } = event
        {
            // Tool calls go to stderr, so stdout stays the answer alone.
            let result = if outcome == "success" {
                format!("→ {summary}")
            } else {
                format!("{outcome}: {summary}")
            };
            eprintln!(
                "{}",
                sanitize(&format!(
                    "veyra: ⚙ step {step}: {tool} {arguments} {result}"
                ))
            );
        }
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if self.json {
            let line = crate::sanitize::to_json_line(event)
                .map_err(|e| VeyraError::Runtime(format!("encoding an event: {e}")))?;
            writeln!(out, "{line}").map_err(write_err)?;
        } else if let Event::OutputDelta { text, .. } = event {
            let shown = if self.sanitize_answer {
                sanitize(text)
            } else {
                std::borrow::Cow::Borrowed(text.as_str())
            };
            out.write_all(shown.as_bytes()).map_err(write_err)?;
            self.ends_with_newline = text.ends_with('\n');
        } else if let Event::TaskState {
            status: TaskStatus::Running,
            attempt,
            ..
        } = event
            && *attempt > 1
        {
            // A retry starts the answer over; say so rather than splice two answers.
            if !self.ends_with_newline {
                writeln!(out).map_err(write_err)?;
            }
            writeln!(out, "--- attempt {attempt} ---").map_err(write_err)?;
            self.ends_with_newline = true;
        }
        out.flush().map_err(write_err)
    }

    /// Ends the answer's last line.
    fn end(&mut self) -> Result<(), VeyraError> {
        if !self.json && !self.ends_with_newline {
            writeln!(std::io::stdout().lock()).map_err(write_err)?;
            self.ends_with_newline = true;
        }
        Ok(())
    }
}

/// The exit: a signal's (with its farewell), or the task's outcome.
fn finish(
    interrupted: Option<(StopSignal, usize, bool)>,
    outcome: Option<Result<crate::core::ExecutionResult, VeyraError>>,
) -> Result<ExitCode, VeyraError> {
    if let Some((signal, cancelled, audited)) = interrupted {
        // Closed by a signal: say what it cancelled, exit as the signal says (128 + number).
        // After a hangup stderr may be gone: that is no error.
        let _ = writeln!(std::io::stderr(), "{}", signal.farewell(cancelled, audited));
        return Ok(signal.exit_code());
    }
    match outcome {
        Some(Ok(result)) => match result.finish_reason {
            // A hard stop: the model did not finish its answer.
            FinishReason::MaxSteps => Err(VeyraError::Task {
                kind: "max_steps".into(),
                message: format!(
                    "stopped after {} tool calls (tools.max_steps); the answer is incomplete — \
                     raise tools.max_steps or narrow the task",
                    result.tool_steps
                ),
            }),
            FinishReason::TokenBudget => Err(VeyraError::Task {
                kind: "token_budget".into(),
                message: format!(
                    "stopped at {} tokens (runtime.max_tokens_per_task) after {} tool calls; the \
                     answer is incomplete — raise the budget or narrow the task",
                    result.usage.input + result.usage.output,
                    result.tool_steps
                ),
            }),
            _ => Ok(ExitCode::Success),
        },
        Some(Err(e)) => Err(e),
        None => Err(VeyraError::Runtime(
            "the execution ended without a final state".into(),
        )),
    }
}
