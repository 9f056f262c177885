//! Undo of file tool calls: the journal a write leaves, the undo and its audit entry, and the
//! refusals (a changed file, a second undo, the agent, no journal).

use super::*;
use crate::config::VeyraConfig;
use crate::core::ConfirmationPolicy;
use crate::core::testing::core_with;

/// [`core_with`], with every confirmation answered yes.
fn core_allowing_all(f: impl FnOnce(&mut VeyraConfig)) -> (VeyraCore, tempfile::TempDir) {
    let (core, ws) = core_with(f);
    core.set_confirmation_policy(ConfirmationPolicy::AllowAll);
    (core, ws)
}

async fn write(core: &VeyraCore, path: &str, content: &str) -> u64 {
    core.invoke_tool(
        "file_write",
        serde_json::json!({ "path": path, "content": content }),
        "operator",
    )
    .await
    .unwrap()
    .audit_seq
    .unwrap()
}

fn entries(core: &VeyraCore) -> Vec<AuditEntry> {
    core.audit()
        .unwrap()
        .query(&AuditFilter::default())
        .unwrap()
}

#[tokio::test]
async fn a_write_is_undone_from_the_journal_and_the_undo_is_audited() {
    let (core, ws) = core_allowing_all(|_| {});
    let file = ws.path().join("plan.txt");
    std::fs::write(&file, "first draft").unwrap();
    let seq = write(&core, "plan.txt", "second draft").await;
    let written = entries(&core).into_iter().find(|e| e.seq == seq).unwrap();
    let undo = &written.metadata["undo"];
    assert_eq!(undo["existed"], true);
    assert_eq!(undo["prior_sha256"], sha256_hex(b"first draft"));
    assert_eq!(undo["after_sha256"], sha256_hex(b"second draft"));
    assert_eq!(undo["bytes"], 11);
    assert!(!written.metadata.to_string().contains("first draft"));
    let mut rx = core.subscribe();
    let done = core.undo_tool(None, "operator").await.unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "first draft");
    assert_eq!((done.undone, done.tool.as_str()), (seq, "file_write"));
    assert_eq!(
        done.restored,
        Restored::Content {
            bytes: 11,
            sha256: sha256_hex(b"first draft")
        }
    );
    let own = entries(&core).pop().unwrap();
    assert_eq!(Some(own.seq), done.audit_seq);
    assert_eq!(
        (own.action.as_str(), own.outcome.as_str()),
        (UNDO_ACTION, "success")
    );
    assert_eq!(own.metadata["undoes"], seq);
    let mut published = false;
    while let Ok(e) = rx.try_recv() {
        if let Event::ToolInvoked { tool, outcome, .. } = e {
            published |= tool == "undo" && outcome == "success";
        }
    }
    assert!(published);
    assert!(core.verify_audit().unwrap().is_ok());
}

#[tokio::test]
async fn a_changed_file_a_second_undo_and_nothing_to_undo_are_refused() {
    let (core, ws) = core_allowing_all(|_| {});
    let file = ws.path().join("log.txt");
    let seq = write(&core, "log.txt", "aaaa").await;
    std::fs::write(&file, "bbbb").unwrap();
    let err = core.undo_tool(Some(seq), "operator").await.unwrap_err();
    let VeyraError::Refused(message) = &err else {
        panic!("{err:?}");
    };
    assert!(
        message.contains(&format!("changed since entry {seq}")),
        "{message}"
    );
    assert!(message.contains(&sha256_hex(b"bbbb")), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "bbbb");
    let refused = entries(&core);
    assert!(
        refused
            .iter()
            .any(|e| e.action == UNDO_ACTION && e.outcome == "refused")
    );
    std::fs::write(&file, "aaaa").unwrap();
    let done = core.undo_tool(Some(seq), "operator").await.unwrap();
    assert_eq!(done.restored, Restored::Removed);
    assert!(!file.exists());
    let again = core.undo_tool(Some(seq), "operator").await.unwrap_err();
    assert!(
        matches!(&again, VeyraError::Refused(m) if m.contains("already undone")),
        "{again:?}"
    );
    let none = core.undo_tool(None, "operator").await.unwrap_err();
    assert!(
        matches!(&none, VeyraError::Usage(m) if m.contains("nothing to undo")),
        "{none:?}"
    );
}

#[tokio::test]
async fn the_agent_may_not_undo_under_the_default_policy() {
    let (core, ws) = core_allowing_all(|_| {});
    write(&core, "a.txt", "x").await;
    let err = core.undo_tool(None, "agent").await.unwrap_err();
    assert!(matches!(err, VeyraError::Refused(_)), "{err:?}");
    assert!(ws.path().join("a.txt").exists());
}

#[tokio::test]
async fn file_tools_are_reversible_only_while_the_journal_is_kept() {
    let (core, _ws) = core_allowing_all(|c| c.governance.reversible_only = true);
    write(&core, "kept.txt", "x").await;
    let (off, ws) = core_allowing_all(|c| {
        c.governance.reversible_only = true;
        c.governance.audit = false;
    });
    let err = off
        .invoke_tool(
            "file_write",
            serde_json::json!({ "path": "lost.txt", "content": "x" }),
            "operator",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VeyraError::Refused(m) if m.contains("reversible_only")),
        "{err:?}"
    );
    assert!(!ws.path().join("lost.txt").exists());
    let none = off.undo_tool(None, "operator").await.unwrap_err();
    assert!(matches!(none, VeyraError::Usage(_)), "{none:?}");
}
