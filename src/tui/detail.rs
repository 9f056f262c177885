//! The detail views the loop builds from the core when the operator opens an item: an audit
//! entry in full with its inclusion proof, a violation with the rule that decided it. The
//! builders read the core (off the loop where they read a store) and hand back sanitized
//! lines; [`Notice`] is how background work reports back to the loop.

use super::app::{self, FlashLevel};
use crate::core::VeyraCore;

/// What background work reports back to the loop.
pub(crate) enum Notice {
    /// A message for the status bar.
    Flash(String, FlashLevel),
    /// Something to show in full.
    Detail {
        /// What it is.
        title: String,
        /// Its lines.
        lines: Vec<String>,
    },
}

/// Audit entry `seq` in full ([`service::detail::audit_entry`](crate::service::detail::audit_entry)),
/// as the loop shows it.
#[cfg(test)]
pub(crate) fn audit_detail(core: &VeyraCore, seq: u64) -> Notice {
    detail_notice(crate::service::detail::audit_entry(core, seq))
}

/// An entry's lines as the loop shows them, or why there are none as a flash.
pub(crate) fn detail_notice(result: Result<(String, Vec<String>), String>) -> Notice {
    match result {
        Ok((title, lines)) => Notice::Detail { title, lines },
        Err(e) => Notice::Flash(e, FlashLevel::Error),
    }
}

/// What the console knows of a violation itself, before the rule's text: when, what, who,
/// how, which rule and why. Sanitized.
pub fn explain_header(v: &app::ViolationLine) -> Vec<String> {
    [
        format!("when       {}", v.at.to_rfc3339()),
        format!("operation  {}", v.operation),
        format!("actor      {}", v.actor),
        format!("level      {}", v.level),
        format!("rule       {}", v.rule),
        format!("reason     {}", v.reason),
        String::new(),
    ]
    .into_iter()
    .map(|l| crate::sanitize::sanitize_line(&l).into_owned())
    .collect()
}

/// A violation in full with the rule that decided it (`explain_header`, then
/// [`service::detail::rule_text`](crate::service::detail::rule_text) from `core`).
pub fn explain_rule(core: &VeyraCore, v: &app::ViolationLine) -> Vec<String> {
    let mut lines = explain_header(v);
    lines.extend(crate::service::detail::rule_text(core, &v.rule));
    lines
}
