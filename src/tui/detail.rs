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

/// Audit entry `seq` in full: every field, its hashes, and an RFC 6962 inclusion proof against
/// the tree head of the log as last verified in full, saying when that was and how many entries
/// came after ([`AuditTrail::prove_entry`](crate::governance::AuditTrail::prove_entry)). Lines
/// are sanitized: entries quote input.
pub(crate) fn audit_detail(core: &VeyraCore, seq: u64) -> Notice {
    let Some(trail) = core.audit() else {
        return Notice::Flash("audit is off".into(), FlashLevel::Error);
    };
    let entry = match trail.entry(seq) {
        Ok(Some(e)) => e,
        Ok(None) => {
            return Notice::Flash(format!("no audit entry {seq}"), FlashLevel::Error);
        }
        Err(e) => return Notice::Flash(format!("reading entry {seq}: {e}"), FlashLevel::Error),
    };
    let metadata = serde_json::to_string_pretty(&entry.metadata).unwrap_or_default();
    let mut lines = vec![
        format!("seq        {}", entry.seq),
        format!("time       {}", entry.timestamp.to_rfc3339()),
        format!("type       {}", entry.event_type.name()),
        format!("actor      {}", entry.actor),
        format!("action     {}", entry.action),
        format!("resource   {}", entry.resource),
        format!("outcome    {}", entry.outcome),
        format!("input      {}", entry.input_summary),
        format!("prev hash  {}", entry.prev_hash),
        format!("hash       {}", entry.hash),
        "metadata".into(),
    ];
    lines.extend(metadata.lines().map(|l| format!("  {l}")));
    match trail.prove_entry(seq) {
        Ok(Some(proved)) => {
            let p = &proved.inclusion;
            lines.push(format!(
                "inclusion  proved in a tree of {} entries, head {}",
                p.tree_size, p.root
            ));
            // What the head rests on: a full verification, when, and what came after it.
            let when = proved.verified_at.format("%Y-%m-%d %H:%M:%S UTC");
            lines.push(match proved.appended_since {
                0 => format!("  against the log as verified in full at {when}"),
                n => format!(
                    "  against the log as verified in full at {when}; {n} entries were \
                     appended since"
                ),
            });
            lines.push(format!("  leaf {}", p.leaf_hash));
            lines.extend(p.path.iter().map(|h| format!("  path {h}")));
        }
        Ok(None) => lines.push("inclusion  no proof: the entry is not in the tree".into()),
        Err(e) => lines.push(format!("inclusion  the store does not verify: {e}")),
    }
    Notice::Detail {
        title: format!("Audit entry {seq}"),
        lines: lines
            .into_iter()
            .map(|l| crate::sanitize::sanitize_line(&l).into_owned())
            .collect(),
    }
}

/// A violation in full with the rule that decided it: for a policy, its Cedar text, `@reason`
/// and jurisdiction, and the file it came from; for a boundary rule, the configuration that
/// makes it. Every line is sanitized (policy files are operator input, not trusted text).
pub fn explain_rule(core: &VeyraCore, v: &app::ViolationLine) -> Vec<String> {
    let mut lines = vec![
        format!("when       {}", v.at.to_rfc3339()),
        format!("operation  {}", v.operation),
        format!("actor      {}", v.actor),
        format!("level      {}", v.level),
        format!("rule       {}", v.rule),
        format!("reason     {}", v.reason),
        String::new(),
    ];
    let governance = &core.config().governance;
    // A denial decided by several policies names them all (`policy:a, b`): each is shown.
    let ids = v.policy_ids();
    match v.rule.strip_prefix("policy:") {
        Some(_) if ids == ["default-deny"] => lines.push(
            "No policy permits this request, and Cedar denies what no policy permits. Add a \
             permit to the policy files to allow it."
                .into(),
        ),
        Some(_) if ids.is_empty() => lines.push(format!("rule '{}' names no policy", v.rule)),
        Some(_) => {
            let loaded = core.policy().policies();
            if ids.len() > 1 {
                lines.push(format!("decided by {} policies", ids.len()));
                lines.push(String::new());
            }
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    lines.push(String::new());
                }
                match loaded.iter().find(|p| p.id == *id) {
                    Some(p) => {
                        lines.push(format!(
                            "policy {} ({:?}) from {}",
                            p.id, p.effect, p.source
                        ));
                        for (k, val) in &p.annotations {
                            lines.push(format!("  @{k}: {val}"));
                        }
                        lines.push(String::new());
                        lines.extend(p.text.lines().map(str::to_string));
                    }
                    None => lines.push(format!(
                        "policy '{id}' is not among the loaded policies (they changed since?)"
                    )),
                }
            }
        }
        None => lines.push(match v.rule.as_str() {
            "prohibited_operations" => format!(
                "governance.prohibited_operations: [{}] — blocked whatever policy says",
                governance.prohibited_operations.join(", ")
            ),
            "reversible_only" => "governance.reversible_only: true — nothing that cannot be \
                                  undone may run"
                .into(),
            "require_confirmation" => format!(
                "governance.require_confirmation: [{}] — the operator answers each one",
                governance.require_confirmation.join(", ")
            ),
            "tool_confirmation" => {
                "the tool always asks for confirmation (veyra tools list)".into()
            }
            other => format!("rule '{other}' (see veyra tools describe, or the README)"),
        }),
    }
    lines
        .into_iter()
        .map(|l| crate::sanitize::sanitize_line(&l).into_owned())
        .collect()
}
