//! A task's detail view: what was asked, where it ran, what it cost, what it waits for now,
//! and every state it went through.

use chrono::{DateTime, Utc};

use super::*;
use crate::events::{FinishReason, LinkStatus};

/// A task in full: what was asked, where it ran, what it cost, what it waits for now, and
/// every state it went through with its time (wall clock; transit waits also in simulated
/// time, blackouts with the date the link reopened). `link` and `now` date the waits.
pub fn task_detail(task: &TaskView, link: &LinkStatus, now: DateTime<Utc>) -> Vec<String> {
    let short = crate::duration::short;
    let ms = |ms: u64| short(std::time::Duration::from_millis(ms));
    let mut lines = vec![
        format!("prompt     {}", task.title),
        format!("id         {}", task.id),
        format!(
            "ran        {} · {}/{} · priority {}",
            task.kind,
            task.backend,
            task.model,
            task.priority.name()
        ),
        format!(
            "attempts   {}{}",
            task.attempt,
            match &task.finish_reason {
                Some(r) => format!(" · finish reason {}", finish_name(r)),
                None => String::new(),
            }
        ),
    ];
    if let Some(u) = task.usage {
        lines.push(format!("tokens     in {} / out {}", u.input, u.output));
    }
    if matches!(task.status, TaskStatus::Blackout { .. })
        && let Some((end, left)) = task.reopens(link, now)
    {
        let sun = link
            .sun_deg
            .map(|deg| format!(", the Sun {deg:.1}° from {}", link.far_end()))
            .unwrap_or_default();
        lines.push(format!("waiting    solar conjunction{sun}"));
        lines.push(format!(
            "reopens    {} simulated (in {} real)",
            end.format("%Y-%m-%d %H:%M UTC"),
            short(left)
        ));
    }
    lines.push("states (wall clock)".into());
    for (at, status, attempt) in &task.timeline {
        let extra = match status {
            TaskStatus::Uplink { sim_ms, real_ms } | TaskStatus::Downlink { sim_ms, real_ms } => {
                format!(
                    " — {} light time (simulated), {} wall",
                    ms(*sim_ms),
                    ms(*real_ms)
                )
            }
            TaskStatus::Blackout { sim_ms, real_ms } => {
                // The runtime's figure, saturated rather than overflowing a date.
                let end = link
                    .sim_time_at(*at)
                    .checked_add_signed(chrono::TimeDelta::milliseconds(
                        i64::try_from(*sim_ms)
                            .unwrap_or(i64::MAX)
                            .min(1_000_000_000_000_000),
                    ))
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
                format!(
                    " — solar conjunction until {} ({} simulated, {} wall)",
                    end.format("%Y-%m-%d"),
                    ms(*sim_ms),
                    ms(*real_ms)
                )
            }
            TaskStatus::Retrying { delay_ms, error } => {
                format!(" — in {} after: {error}", ms(*delay_ms))
            }
            TaskStatus::Failed { kind, error, .. } => format!(" — {kind}: {error}"),
            TaskStatus::Cancelled { reason } => format!(" — {reason}"),
            TaskStatus::Queued | TaskStatus::Running | TaskStatus::Succeeded => String::new(),
        };
        let attempt = if *attempt > 1 {
            format!(" (attempt {attempt})")
        } else {
            String::new()
        };
        lines.push(format!(
            "  {} {}{attempt}{extra}",
            at.format("%H:%M:%S%.3f"),
            status.name()
        ));
    }
    lines
}

fn finish_name(r: &FinishReason) -> String {
    match r {
        FinishReason::Stop => "stop".into(),
        FinishReason::Length => "length (cut at max_tokens)".into(),
        FinishReason::ToolCalls => "tool_calls".into(),
        FinishReason::MaxSteps => "max_steps".into(),
        FinishReason::TokenBudget => "token_budget".into(),
        FinishReason::ContentFilter => "content_filter".into(),
        FinishReason::Other(o) => o.clone(),
    }
}
