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
use crate::events::{ConfirmScope, Event, FinishReason, TaskStatus};
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

/// `veyra run`.
pub async fn run(args: RunArgs, loaded: LoadedConfig) -> Result<ExitCode, VeyraError> {
    let prompt = read_prompt(args.prompt)?;
    let core = VeyraCore::new(loaded.config)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    core.set_confirmation_policy(if args.yes {
        crate::core::ConfirmationPolicy::AllowAll
    } else if interactive {
        crate::core::ConfirmationPolicy::Ask
    } else {
        crate::core::ConfirmationPolicy::DenyAll
    });
    let mut request = ExecutionRequest::new(prompt).priority(args.priority);
    request.system = args.system;
    request.backend = args.backend;
    request.model = args.model;
    request.tools = args.tools;
    // Listen for Ctrl-C, SIGTERM and SIGHUP before anything is submitted, so no signal can
    // slip past.
    let mut signals = StopSignals::install()?;
    let mut stream = core.execute_stream(request)?;
    let mut folder = ResultFolder::new(stream.id());
    let stdout = std::io::stdout();
    // Answer text reaches a terminal only through the sanitizer, unless asked for raw; piped,
    // it stays byte-exact for the next program.
    let sanitize_answer = !args.raw && stdout.is_terminal();
    let write_err = |e| VeyraError::io("writing to stdout", e);
    let mut ends_with_newline = true;
    let mut outcome = None;
    let id = stream.id();
    // The signal that stopped the run, how many tasks it cancelled, whether that is audited.
    let mut interrupted: Option<(StopSignal, usize, bool)> = None;
    loop {
        // A signal stops the core at once, cancelling the task the usual way (and recording
        // the stop), then the task's last events are shown; a second one stops waiting.
        let event = tokio::select! {
            event = stream.next() => event,
            signal = signals.recv() => {
                if let Some((first, _, _)) = interrupted {
                    eprintln!("veyra: {}: signalled twice; not waiting", signal.name());
                    return Ok(first.exit_code());
                }
                if signal == StopSignal::Interrupt {
                    eprintln!("veyra: cancelling task {id} (Ctrl-C again to abort at once)");
                }
                let (report, audited) = core.stop_on_signal(signal.name()).await;
                let cancelled = report.left_queued.len() + report.cancelled_running;
                interrupted = Some((signal, cancelled, audited));
                continue;
            }
        };
        let Some(event) = event else { break };
        if let Event::ConfirmationRequested {
            request,
            operation,
            reason,
            detail,
            scopable,
            ..
        } = &event
        {
            let detail = detail
                .as_deref()
                .map(|d| format!(" with {d}"))
                .unwrap_or_default();
            let choices = if *scopable {
                "[y]es once / [a]lways this run / [N]o"
            } else {
                "[y/N]"
            };
            let question = sanitize(&format!(
                "veyra: {reason}. Allow {operation}{detail}? {choices} "
            ))
            .into_owned();
            let answer = tokio::task::spawn_blocking(move || {
                eprint!("{question}");
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).map(|_| line)
            })
            .await
            .map_err(|e| VeyraError::Runtime(format!("asking for confirmation: {e}")))?
            .map_err(|e| VeyraError::io("reading the answer from the terminal", e))?;
            let (allowed, scope) = match answer.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" => (true, ConfirmScope::Once),
                "a" | "always" if *scopable => (true, ConfirmScope::Session),
                _ => (false, ConfirmScope::Once),
            };
            core.answer_confirmation_scoped(*request, allowed, scope, "operator (terminal)")?;
        }
        if !args.json
            && let Event::AgentStep {
                step,
                tool,
                arguments,
                outcome,
                summary,
                ..
            } = &event
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
        let mut out = stdout.lock();
        if args.json {
            let line = crate::sanitize::to_json_line(&event)
                .map_err(|e| VeyraError::Runtime(format!("encoding an event: {e}")))?;
            writeln!(out, "{line}").map_err(write_err)?;
        } else if let Event::OutputDelta { text, .. } = &event {
            let shown = if sanitize_answer {
                sanitize(text)
            } else {
                std::borrow::Cow::Borrowed(text.as_str())
            };
            out.write_all(shown.as_bytes()).map_err(write_err)?;
            ends_with_newline = text.ends_with('\n');
        } else if let Event::TaskState {
            status: TaskStatus::Running,
            attempt,
            ..
        } = &event
            && *attempt > 1
        {
            // A retry starts the answer over; say so rather than splice two answers.
            if !ends_with_newline {
                writeln!(out).map_err(write_err)?;
            }
            writeln!(out, "--- attempt {attempt} ---").map_err(write_err)?;
            ends_with_newline = true;
        }
        out.flush().map_err(write_err)?;
        if let Some(result) = folder.apply(&event) {
            outcome = Some(result);
        }
    }
    if !args.json && !ends_with_newline {
        let mut out = stdout.lock();
        writeln!(out).map_err(write_err)?;
    }
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
