//! What a client opens in full, built where the facts are (the runtime): an audit entry with
//! its inclusion proof, and the text of the rule behind a violation. The console builds these
//! from its own core when it hosts the runtime, and asks the runtime for them when attached.
//! Every line is sanitized: entries quote input, and policy files are operator input.

use crate::core::VeyraCore;

/// Audit entry `seq` in full: every field, its hashes, and an RFC 6962 inclusion proof against
/// the tree head of the log as last verified in full, saying when that was and how many entries
/// came after ([`AuditTrail::prove_entry`](crate::governance::AuditTrail::prove_entry)). The
/// title and the lines, or why there are none.
pub fn audit_entry(core: &VeyraCore, seq: u64) -> Result<(String, Vec<String>), String> {
    let Some(trail) = core.audit() else {
        return Err("audit is off".into());
    };
    let entry = match trail.entry(seq) {
        Ok(Some(e)) => e,
        Ok(None) => {
            return Err(format!("no audit entry {seq}"));
        }
        Err(e) => return Err(format!("reading entry {seq}: {e}")),
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
    Ok((
        format!("Audit entry {seq}"),
        lines
            .into_iter()
            .map(|l| crate::sanitize::sanitize_line(&l).into_owned())
            .collect(),
    ))
}

/// The policy ids a violation's rule names: `policy:a, b` → `[a, b]`.
pub fn policy_ids(rule: &str) -> Vec<&str> {
    rule.strip_prefix("policy:")
        .map(|ids| {
            ids.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The rule behind a violation: for a policy, its Cedar text, `@reason` and jurisdiction, and
/// the file it came from; for a boundary rule, the configuration that makes it.
pub fn rule_text(core: &VeyraCore, rule: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let governance = &core.config().governance;
    // A denial decided by several policies names them all (`policy:a, b`): each is shown.
    let ids = policy_ids(rule);
    match rule.strip_prefix("policy:") {
        Some(_) if ids == ["default-deny"] => lines.push(
            "No policy permits this request, and Cedar denies what no policy permits. Add a \
             permit to the policy files to allow it."
                .into(),
        ),
        Some(_) if ids.is_empty() => lines.push(format!("rule '{}' names no policy", rule)),
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
        None => lines.push(match rule {
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
