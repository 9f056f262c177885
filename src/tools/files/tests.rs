//! Tests of the file tools: paths and links that would lead out of the workspace, the size
//! limits, files swapped after their check, and what a write keeps for undo.

use super::*;
use serde_json::json;

fn tool(op: FileOp, ws: &Path) -> FileTool {
    let config = ToolsConfig {
        workspace: Some(ws.to_path_buf()),
        max_read_bytes: 16,
        max_write_bytes: 16,
        ..ToolsConfig::default()
    };
    FileTool::new(op, &config)
}

fn run(t: &FileTool, args: serde_json::Value) -> Result<ToolOutput, ToolError> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(t.invoke(&args))
}

#[test]
fn paths_out_of_the_workspace_are_refused_by_construction() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join("a")).unwrap();
    std::fs::write(dir.path().join("outside.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), ws.join("link")).unwrap();
    let read = tool(FileOp::Read, &ws);
    for path in [
        "../outside.txt",
        "a/../../outside.txt",
        "/etc/passwd",
        "link",
    ] {
        let err = run(&read, serde_json::json!({ "path": path })).unwrap_err();
        assert!(
            matches!(&err, ToolError::Refused { rule, .. } if rule == "tools.workspace"),
            "{path}: {err:?}"
        );
    }
}

#[test]
fn size_limits_hold_for_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("big")).unwrap();
    f.set_len(2 * 1024 * 1024 * 1024).unwrap();
    let err = run(
        &tool(FileOp::Read, dir.path()),
        serde_json::json!({ "path": "big" }),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ToolError::Refused { rule, .. } if rule == "tools.max_read_bytes"),
        "{err:?}"
    );
    let err = run(
        &tool(FileOp::Write, dir.path()),
        serde_json::json!({ "path": "w", "content": "x".repeat(17) }),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ToolError::Refused { rule, .. } if rule == "tools.max_write_bytes"),
        "{err:?}"
    );
    assert!(!dir.path().join("w").exists());
}

/// `tool` with a hook called between its checks and each open.
fn hooked(t: FileTool, hook: impl Fn(&Path, &str) + Send + Sync + 'static) -> FileTool {
    FileTool {
        before_open: Some(OpenHook(std::sync::Arc::new(hook))),
        ..t
    }
}

fn refused_by(err: &ToolError, rule: &str) -> bool {
    matches!(err, ToolError::Refused { rule: r, .. } if r == rule)
}

#[test]
fn a_2_gb_file_is_refused_by_the_size_limits_before_it_is_opened() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("big")).unwrap();
    // Sparse: 2 GB of size, no blocks.
    f.set_len(2 * 1024 * 1024 * 1024).unwrap();
    static OPENS: AtomicUsize = AtomicUsize::new(0);
    let count = |_: &Path, _: &str| {
        OPENS.fetch_add(1, Ordering::SeqCst);
    };
    let read = hooked(tool(FileOp::Read, dir.path()), count);
    let err = run(&read, json!({ "path": "big" })).unwrap_err();
    assert!(refused_by(&err, "tools.max_read_bytes"), "{err:?}");
    assert!(err.to_string().contains("was not read"), "{err}");
    // With the journal on, replacing or deleting it would need more than the journal keeps.
    let write = hooked(tool(FileOp::Write, dir.path()).journaled(true), count);
    let err = run(&write, json!({ "path": "big", "content": "small" })).unwrap_err();
    assert!(refused_by(&err, "tools.max_write_bytes"), "{err:?}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    let delete = hooked(tool(FileOp::Delete, dir.path()).journaled(true), count);
    let err = run(&delete, json!({ "path": "big" })).unwrap_err();
    assert!(refused_by(&err, "tools.max_write_bytes"), "{err:?}");
    assert_eq!(OPENS.load(Ordering::SeqCst), 0, "a refused file was opened");
    let len = std::fs::metadata(dir.path().join("big")).unwrap().len();
    assert_eq!(len, 2 * 1024 * 1024 * 1024);
}

#[test]
fn a_symlink_to_the_root_inside_the_workspace_is_refused_by_every_file_tool() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::os::unix::fs::symlink("/", ws.join("root")).unwrap();
    let cases = [
        (FileOp::Read, json!({ "path": "root/etc/passwd" })),
        (FileOp::List, json!({ "path": "root" })),
        (FileOp::List, json!({ "path": "root/etc" })),
        (
            FileOp::Write,
            json!({ "path": "root/tmp/veyra-escape", "content": "x" }),
        ),
        (FileOp::Write, json!({ "path": "root", "content": "x" })),
        (FileOp::Delete, json!({ "path": "root/etc/hostname" })),
        (FileOp::Delete, json!({ "path": "root" })),
    ];
    for (op, args) in cases {
        for journal in [false, true] {
            let t = tool(op, &ws).journaled(journal);
            let err = run(&t, args.clone()).unwrap_err();
            assert!(
                refused_by(&err, "tools.workspace"),
                "{op:?} {args}: {err:?}"
            );
        }
    }
    assert!(!Path::new("/tmp/veyra-escape").exists());
    assert!(
        ws.join("root").is_symlink(),
        "the link itself was not deleted"
    );
}

#[test]
fn a_file_swapped_for_a_symlink_after_its_check_cannot_lead_out() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP SECRET").unwrap();
    std::fs::write(ws.join("notes.txt"), "notes").unwrap();
    // Between the checks (a small regular file) and the open, the file becomes a symlink
    // to a file outside the workspace.
    let outside = secret.clone();
    let swap = move |ws: &Path, path: &str| {
        let at = ws.join(path);
        if !at.is_symlink() {
            std::fs::remove_file(&at).unwrap();
            std::os::unix::fs::symlink(&outside, &at).unwrap();
        }
    };
    let read = hooked(tool(FileOp::Read, &ws), swap.clone());
    let err = run(&read, json!({ "path": "notes.txt" })).unwrap_err();
    assert!(refused_by(&err, "tools.workspace"), "{err:?}");
    // A path-based open (std::fs) would have followed the swapped link out.
    assert_eq!(
        std::fs::read_to_string(ws.join("notes.txt")).unwrap(),
        "TOP SECRET"
    );
    // A write after the same swap replaces the link in the workspace; the file outside
    // keeps its content (std::fs::write would have written through the link).
    std::fs::remove_file(ws.join("notes.txt")).unwrap();
    std::fs::write(ws.join("notes.txt"), "notes").unwrap();
    let write = hooked(tool(FileOp::Write, &ws), swap);
    run(&write, json!({ "path": "notes.txt", "content": "new" })).unwrap();
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "TOP SECRET");
    assert!(!ws.join("notes.txt").is_symlink());
    assert_eq!(
        std::fs::read_to_string(ws.join("notes.txt")).unwrap(),
        "new"
    );
}

/// Runs the tool off the test's thread and fails if it does not answer within a minute
/// (a guard against a hang, not a measure of speed).
fn run_guarded(t: FileTool, args: serde_json::Value) -> Result<ToolOutput, ToolError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run(&t, args));
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the file tool hung")
}

#[test]
fn a_file_swapped_for_a_fifo_after_its_check_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().to_path_buf();
    // Between the checks (a small regular file) and the open, the file becomes a FIFO.
    let swap = |ws: &Path, path: &str| {
        let at = ws.join(path);
        std::fs::remove_file(&at).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&at)
            .status()
            .unwrap();
        assert!(made.success());
    };
    std::fs::write(ws.join("notes.txt"), "notes").unwrap();
    let read = hooked(tool(FileOp::Read, &ws), swap);
    let err = run_guarded(read, json!({ "path": "notes.txt" })).unwrap_err();
    assert!(refused_by(&err, "tools.workspace"), "{err:?}");
    assert!(err.to_string().contains("not a regular file"), "{err}");
    // With the journal on, a write and a delete read what they replace: the same swap.
    for (op, args) in [
        (
            FileOp::Write,
            json!({ "path": "notes.txt", "content": "new" }),
        ),
        (FileOp::Delete, json!({ "path": "notes.txt" })),
    ] {
        std::fs::remove_file(ws.join("notes.txt")).unwrap();
        std::fs::write(ws.join("notes.txt"), "notes").unwrap();
        let t = hooked(tool(op, &ws).journaled(true), swap);
        let err = run_guarded(t, args).unwrap_err();
        assert!(refused_by(&err, "tools.workspace"), "{op:?}: {err:?}");
    }
}

#[test]
fn a_hard_link_to_a_file_outside_is_neither_read_nor_written_nor_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP SECRET").unwrap();
    std::fs::hard_link(&secret, ws.join("notes.txt")).unwrap();
    let cases = [
        (FileOp::Read, json!({ "path": "notes.txt" })),
        (
            FileOp::Write,
            json!({ "path": "notes.txt", "content": "x" }),
        ),
        (FileOp::Delete, json!({ "path": "notes.txt" })),
    ];
    for (op, args) in cases {
        for journal in [false, true] {
            let t = tool(op, &ws).journaled(journal);
            let err = run(&t, args.clone()).unwrap_err();
            assert!(refused_by(&err, "tools.workspace"), "{op:?}: {err:?}");
            assert!(err.to_string().contains("hard link"), "{err}");
            assert!(!err.to_string().contains("TOP SECRET"), "{err}");
        }
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "TOP SECRET");
    assert!(ws.join("notes.txt").exists());
    // Linked after the checks, the opened handle still tells.
    std::fs::remove_file(ws.join("notes.txt")).unwrap();
    std::fs::write(ws.join("plain.txt"), "plain").unwrap();
    let outside = dir.path().join("another-name");
    let link = move |ws: &Path, path: &str| {
        let _ = std::fs::hard_link(ws.join(path), &outside);
    };
    let read = hooked(tool(FileOp::Read, &ws), link);
    let err = run(&read, json!({ "path": "plain.txt" })).unwrap_err();
    assert!(err.to_string().contains("hard link"), "{err}");
}

#[test]
fn a_path_that_leaves_by_its_letters_is_refused_before_any_lookup() {
    let dir = tempfile::tempdir().unwrap();
    // The workspace does not even exist: nothing is looked up, nothing created.
    let ws = dir.path().join("ws");
    for op in [FileOp::Read, FileOp::List, FileOp::Write, FileOp::Delete] {
        for path in [
            "a/../../../etc/passwd",
            "../x",
            "/etc/passwd",
            "./a/b/../../..",
        ] {
            let t = tool(op, &ws);
            let err = run(&t, json!({ "path": path, "content": "x" })).unwrap_err();
            assert!(
                refused_by(&err, "tools.workspace"),
                "{op:?} {path}: {err:?}"
            );
            assert!(err.to_string().contains("outside the workspace"), "{err}");
        }
    }
    assert!(!ws.exists(), "the workspace was created for a refused path");
    // Climbing down and back up within it is no escape.
    std::fs::create_dir_all(ws.join("a")).unwrap();
    std::fs::write(ws.join("b.txt"), "b").unwrap();
    let out = run(&tool(FileOp::Read, &ws), json!({ "path": "a/../b.txt" })).unwrap();
    assert_eq!(out.value["content"], "b");
    // `a` exists or not, the answer is the same refusal.
    for present in [true, false] {
        if !present {
            std::fs::remove_dir(ws.join("a")).unwrap();
        }
        let err = run(
            &tool(FileOp::Read, &ws),
            json!({ "path": "a/../../../etc/passwd" }),
        )
        .unwrap_err();
        assert!(refused_by(&err, "tools.workspace"), "{present}: {err:?}");
    }
}

#[test]
fn with_the_journal_on_writes_and_deletes_keep_what_they_replace() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    std::fs::write(ws.join("a.txt"), "old").unwrap();
    let write = tool(FileOp::Write, ws).journaled(true);
    assert!(write.capability().reversible);
    assert!(!tool(FileOp::Write, ws).capability().reversible);
    let out = run(&write, json!({ "path": "a.txt", "content": "newer" })).unwrap();
    let undo = out.undo.clone().unwrap();
    assert_eq!(undo.prior.as_deref(), Some(&b"old"[..]));
    assert_eq!(undo.after_bytes, 5);
    assert_eq!(
        undo.after_sha256.as_deref(),
        Some(hex::encode(Sha256::digest(b"newer")).as_str())
    );
    // The content never shows: not in the output's JSON, not in its Debug form.
    assert!(!serde_json::to_string(&out).unwrap().contains("old"));
    assert!(!format!("{undo:?}").contains("old"));
    let fresh = run(&write, json!({ "path": "b.txt", "content": "b" })).unwrap();
    assert_eq!(fresh.undo.unwrap().prior, None);
    let delete = tool(FileOp::Delete, ws).journaled(true);
    let gone = run(&delete, json!({ "path": "a.txt" }))
        .unwrap()
        .undo
        .unwrap();
    assert_eq!(gone.prior.as_deref(), Some(&b"newer"[..]));
    assert_eq!(gone.after_sha256, None);
    // Off, nothing is kept.
    let plain = run(
        &tool(FileOp::Write, ws),
        json!({ "path": "b.txt", "content": "c" }),
    );
    assert!(plain.unwrap().undo.is_none());
}

#[test]
fn an_atomic_replace_keeps_permissions_and_leaves_no_temporary_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let file = dir.path().join("sub/f");
    std::fs::write(&file, "one").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let ws = Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).unwrap();
    replace_atomically(&ws, "sub/f", b"two").unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "two");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["f"]);
    assert!(replace_atomically(&ws, "missing/f", b"x").is_err());
    assert!(replace_atomically(&ws, "sub/..", b"x").is_err());
}
