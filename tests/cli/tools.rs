//! `veyra tools …` through the real binary: listing and describing tools, and
//! invoking them through the gate — unknown tools and misfit arguments (exit 2, naming the
//! field), path traversal in every form (a lexical escape refused and recorded as one whether
//! or not its directories exist) and oversized or hard-linked files (exit 4), policy
//! denial and safety refusal (exit 4, with POLICY_CHECK / SAFETY_VIOLATION entries), a tool
//! that needs confirmation refused without a terminal and allowed with `--yes`, and the
//! TOOL_INVOCATION entries verifying afterwards. Undo (`veyra tools undo`): a write, a delete
//! and a created file undone; a file changed since, a second undo and a tampered journal
//! refused (exit 4) with the file untouched; undos audited and the log verifying. `http_get`
//! off by default.

use std::path::PathBuf;

use super::{Run, Sandbox, assert_error, run};

impl Sandbox {
    /// The default workspace of file tools (`$XDG_DATA_HOME/veyra/workspace`).
    pub(super) fn workspace(&self) -> PathBuf {
        let ws = self.dir.path().join("data/veyra/workspace");
        std::fs::create_dir_all(&ws).expect("create the workspace");
        ws
    }

    pub(super) fn tools(&self, args: &[&str]) -> Run {
        let mut cmd = self.cmd();
        cmd.arg("tools").args(args);
        run(cmd)
    }

    fn tools_with(&self, config: &std::path::Path, args: &[&str]) -> Run {
        let mut cmd = self.cmd();
        cmd.arg("--config").arg(config).arg("tools").args(args);
        run(cmd)
    }

    /// `veyra audit list --json` of the default store.
    pub(super) fn audit_json(&self) -> String {
        let mut cmd = self.cmd();
        cmd.args(["audit", "list", "--json"]);
        let r = run(cmd);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        r.stdout
    }

    pub(super) fn assert_audit_verifies(&self) {
        let mut cmd = self.cmd();
        cmd.args(["audit", "verify"]);
        let r = run(cmd);
        assert_eq!(r.code, Some(0), "audit verify: {}\n{}", r.stdout, r.stderr);
    }
}

fn assert_ok(r: &Run) {
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn tools_list_shows_every_builtin_with_category_reversibility_and_confirmation() {
    let sb = Sandbox::new();
    let r = sb.tools(&["list"]);
    assert_ok(&r);
    for name in [
        "calculator",
        "light_time",
        "file_read",
        "file_list",
        "file_write",
        "file_delete",
        "check_operation",
        "list_prohibited",
    ] {
        assert!(r.stdout.contains(name), "{name} missing:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("CATEGORY") && r.stdout.contains("REVERSIBLE"));
    let r = sb.tools(&["list", "--json"]);
    assert_ok(&r);
    let delete = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["name"] == "file_delete")
        .unwrap();
    assert_eq!(delete["category"], "filesystem");
    // Reversible through the undo journal, which lives in the audit store.
    assert_eq!(delete["reversible"], true);
    assert_eq!(delete["confirmation"], true);
    assert!(!r.stdout.contains("http_get"), "http_get is off by default");
    let config = sb.write("no-audit.yaml", "governance:\n  audit: false\n");
    let r = sb.tools_with(&config, &["list", "--json"]);
    assert_ok(&r);
    let write = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["name"] == "file_write")
        .unwrap();
    assert_eq!(write["reversible"], false);
}

#[test]
fn tools_describe_prints_the_schema_and_unknown_names_get_a_suggestion() {
    let sb = Sandbox::new();
    let r = sb.tools(&["describe", "calculator"]);
    assert_ok(&r);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["schema"]["required"][0], "expression");
    let r = sb.tools(&["describe", "calculater"]);
    assert_error(
        &r,
        2,
        &["no tool named 'calculater'", "did you mean 'calculator'"],
    );
}

#[test]
fn invoking_an_unknown_tool_is_a_usage_error_with_a_suggestion() {
    let sb = Sandbox::new();
    let r = sb.tools(&["invoke", "file_raed", "--arg", "path=a"]);
    assert_error(
        &r,
        2,
        &["no tool named 'file_raed'", "did you mean 'file_read'"],
    );
}

#[test]
fn missing_extra_and_wrongly_typed_arguments_name_the_field() {
    let sb = Sandbox::new();
    let r = sb.tools(&["invoke", "calculator"]);
    assert_error(&r, 2, &["expression"]);
    let r = sb.tools(&[
        "invoke",
        "calculator",
        "--arg",
        "expression=1+1",
        "--arg",
        "colour=red",
    ]);
    assert_error(&r, 2, &["colour"]);
    let r = sb.tools(&[
        "invoke",
        "check_operation",
        "--arg",
        "operation=x",
        "--arg",
        "reversible=maybe",
    ]);
    assert_error(&r, 2, &["argument 'reversible'"]);
    let r = sb.tools(&["invoke", "calculator", "--arg", "expression"]);
    assert_error(&r, 2, &["KEY=VALUE"]);
}

#[test]
fn calculator_answers_and_its_call_is_audited_and_verifies() {
    let sb = Sandbox::new();
    let r = sb.tools(&["invoke", "calculator", "--arg", "expression=2*(3+4)"]);
    assert_ok(&r);
    assert!(r.stdout.contains("14"), "{}", r.stdout);
    let r = sb.tools(&["invoke", "calculator", "--arg", "expression=1+1", "--json"]);
    assert_ok(&r);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["output"]["value"]["value"], 2.0);
    let audit = sb.audit_json();
    let invocation = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event_type"] == "TOOL_INVOCATION")
        .expect("a TOOL_INVOCATION entry");
    assert_eq!(invocation["resource"], "tool:calculator");
    assert_eq!(invocation["outcome"], "success");
    assert_eq!(invocation["metadata"]["category"], "computation");
    assert!(
        invocation["input_summary"]
            .as_str()
            .unwrap()
            .starts_with("hash:")
    );
    sb.assert_audit_verifies();
}

#[test]
fn calculator_refuses_huge_deep_and_overflowing_expressions() {
    let sb = Sandbox::new();
    let deep = format!("expression={}1{}", "(".repeat(40), ")".repeat(40));
    let r = sb.tools(&["invoke", "calculator", "--arg", &deep]);
    assert_error(&r, 2, &["nests"]);
    let huge = format!("expression={}1", "1+".repeat(600));
    let r = sb.tools(&["invoke", "calculator", "--arg", &huge]);
    assert_error(&r, 2, &["expression"]);
    let r = sb.tools(&["invoke", "calculator", "--arg", "expression=10^400"]);
    assert_error(&r, 1, &["finite"]);
}

#[test]
fn file_tools_write_read_list_and_delete_inside_the_workspace() {
    let sb = Sandbox::new();
    let ws = sb.workspace();
    let r = sb.tools(&[
        "invoke",
        "file_write",
        "--arg",
        "path=notes.txt",
        "--arg",
        "content=secret plans",
    ]);
    assert_ok(&r);
    assert_eq!(
        std::fs::read_to_string(ws.join("notes.txt")).unwrap(),
        "secret plans"
    );
    let r = sb.tools(&["invoke", "file_read", "--arg", "path=notes.txt"]);
    assert_ok(&r);
    assert_eq!(r.stdout.trim(), "secret plans");
    let r = sb.tools(&["invoke", "file_list"]);
    assert_ok(&r);
    assert!(r.stdout.contains("notes.txt"), "{}", r.stdout);
    let r = sb.tools(&["invoke", "file_delete", "--arg", "path=notes.txt", "--yes"]);
    assert_ok(&r);
    assert!(!ws.join("notes.txt").exists());
    // File contents never reach the audit trail.
    assert!(!sb.audit_json().contains("secret plans"));
    sb.assert_audit_verifies();
}

#[test]
fn path_traversal_in_every_form_is_refused_with_exit_4() {
    let sb = Sandbox::new();
    let ws = sb.workspace();
    std::os::unix::fs::symlink("/", ws.join("root")).unwrap();
    std::fs::create_dir_all(ws.join("a")).unwrap();
    for path in [
        "../../etc/passwd",
        "/etc/passwd",
        "a/../../b",
        "root/etc/passwd",
    ] {
        let arg = format!("path={path}");
        let r = sb.tools(&["invoke", "file_read", "--arg", &arg]);
        assert_error(&r, 4, &["outside the workspace", "tools.workspace"]);
        assert!(!r.stdout.contains("root:"), "{path} leaked:\n{}", r.stdout);
    }
    let r = sb.tools(&[
        "invoke",
        "file_write",
        "--arg",
        "path=root/tmp/veyra-escape",
        "--arg",
        "content=x",
    ]);
    assert_error(&r, 4, &["outside the workspace"]);
    assert!(!std::path::Path::new("/tmp/veyra-escape").exists());
    let audit = sb.audit_json();
    assert!(audit.contains("SAFETY_VIOLATION"), "{audit}");
    assert!(audit.contains("\"refused\""), "{audit}");
    sb.assert_audit_verifies();
}

#[test]
fn a_path_that_leaves_by_its_letters_is_refused_whether_or_not_its_directories_exist() {
    let sb = Sandbox::new();
    let ws = sb.workspace();
    for present in [false, true] {
        if present {
            std::fs::create_dir_all(ws.join("a")).unwrap();
        }
        let r = sb.tools(&["invoke", "file_read", "--arg", "path=a/../../../etc/passwd"]);
        assert_error(&r, 4, &["outside the workspace", "tools.workspace"]);
        assert!(!r.stderr.contains("does not exist"), "{}", r.stderr);
        assert!(!r.stdout.contains("root:"), "{}", r.stdout);
    }
    // Recorded as the refusals they are.
    let audit = sb.audit_json();
    let refusals = audit
        .lines()
        .filter(|l| l.contains("SAFETY_VIOLATION") && l.contains("tools.workspace"))
        .count();
    assert_eq!(refusals, 2, "{audit}");
    sb.assert_audit_verifies();
}

#[test]
fn a_hard_link_to_a_file_outside_the_workspace_is_refused() {
    let sb = Sandbox::new();
    let ws = sb.workspace();
    let secret = sb.dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP SECRET").unwrap();
    std::fs::hard_link(&secret, ws.join("notes.txt")).unwrap();
    let r = sb.tools(&["invoke", "file_read", "--arg", "path=notes.txt"]);
    assert_error(&r, 4, &["hard link", "notes.txt"]);
    assert!(!r.stdout.contains("TOP SECRET"), "{}", r.stdout);
    let r = sb.tools(&[
        "invoke",
        "file_write",
        "--arg",
        "path=notes.txt",
        "--arg",
        "content=overwritten",
    ]);
    assert_error(&r, 4, &["hard link"]);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "TOP SECRET");
    assert!(!sb.audit_json().contains("TOP SECRET"));
    sb.assert_audit_verifies();
}

#[test]
fn a_file_over_the_read_limit_is_refused_before_reading() {
    let sb = Sandbox::new();
    let ws = sb.workspace();
    // Sparse: 2 GB of size, no blocks.
    let f = std::fs::File::create(ws.join("huge.bin")).unwrap();
    f.set_len(2 * 1024 * 1024 * 1024).unwrap();
    let r = sb.tools(&["invoke", "file_read", "--arg", "path=huge.bin"]);
    assert_error(&r, 4, &["max_read_bytes", "was not read"]);
    // A device is not a regular file, even through a symlink inside the workspace that
    // cap-std refuses to follow out.
    std::os::unix::fs::symlink("/dev/zero", ws.join("zero")).unwrap();
    let r = sb.tools(&["invoke", "file_read", "--arg", "path=zero"]);
    assert_error(&r, 4, &[]);
}

#[test]
fn policy_denial_of_a_tool_exits_4_and_is_recorded() {
    let sb = Sandbox::new();
    let policy = sb.write(
        "only-prompts.cedar",
        "permit (principal == Veyra::Actor::\"operator\", action == Veyra::Action::\"execute\", resource);\n",
    );
    let config = sb.write(
        "veyra.yaml",
        &format!("governance:\n  policy_file: {}\n", policy.display()),
    );
    let r = sb.tools_with(&config, &["invoke", "calculator", "--arg", "expression=1"]);
    assert_error(&r, 4, &["invoke_tool"]);
    let audit = sb.audit_json();
    let check = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event_type"] == "POLICY_CHECK" && e["resource"] == "tool:calculator")
        .expect("a POLICY_CHECK entry");
    assert_eq!(check["outcome"], "deny");
    assert!(!audit.contains("TOOL_INVOCATION"));
}

#[test]
fn safety_refuses_prohibited_tools_and_irreversible_ones_in_reversible_only_mode() {
    let sb = Sandbox::new();
    let config = sb.write(
        "prohibit.yaml",
        "governance:\n  prohibited_operations: [tool:calculator]\n",
    );
    let r = sb.tools_with(&config, &["invoke", "calculator", "--arg", "expression=1"]);
    assert_error(&r, 4, &["prohibited_operations"]);
    // Without audit there is no undo journal, so deleting cannot be undone.
    let config = sb.write(
        "reversible.yaml",
        "governance:\n  reversible_only: true\n  audit: false\n",
    );
    std::fs::write(sb.workspace().join("keep.txt"), "keep").unwrap();
    let r = sb.tools_with(
        &config,
        &["invoke", "file_delete", "--arg", "path=keep.txt", "--yes"],
    );
    assert_error(&r, 4, &["reversible_only"]);
    assert!(sb.workspace().join("keep.txt").exists());
    assert!(sb.audit_json().contains("SAFETY_VIOLATION"));
    sb.assert_audit_verifies();
}

#[test]
fn a_tool_that_needs_confirmation_is_refused_without_a_terminal_and_allowed_with_yes() {
    let sb = Sandbox::new();
    std::fs::write(sb.workspace().join("old.txt"), "old").unwrap();
    let r = sb.tools(&["invoke", "file_delete", "--arg", "path=old.txt"]);
    assert_error(&r, 4, &["--yes"]);
    assert!(sb.workspace().join("old.txt").exists());
    let r = sb.tools(&["invoke", "file_delete", "--arg", "path=old.txt", "--yes"]);
    assert_ok(&r);
    assert!(!sb.workspace().join("old.txt").exists());
    let audit = sb.audit_json();
    assert!(audit.contains("SAFETY_CHECK"), "{audit}");
    assert!(audit.contains("tool_confirmation"), "{audit}");
    sb.assert_audit_verifies();
}

impl Sandbox {
    /// `veyra tools invoke … --yes --json`, succeeding; returns its audit sequence number.
    fn invoke_seq(&self, args: &[&str]) -> u64 {
        let mut all = vec!["invoke"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--yes", "--json"]);
        let r = self.tools(&all);
        assert_ok(&r);
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
        v["audit_seq"].as_u64().expect("an audit_seq")
    }

    fn write_seq(&self, path: &str, content: &str) -> u64 {
        let path = format!("path={path}");
        let content = format!("content={content}");
        self.invoke_seq(&["file_write", "--arg", &path, "--arg", &content])
    }

    /// The audit entries as JSON values.
    fn audit_entries(&self) -> Vec<serde_json::Value> {
        self.audit_json()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn audit_db(&self) -> PathBuf {
        self.dir.path().join("data/veyra/audit.db")
    }
}

#[test]
fn undo_puts_back_what_writes_replaced_newest_first_and_is_audited() {
    let sb = Sandbox::new();
    let file = sb.workspace().join("orbit.txt");
    let created = sb.write_seq("orbit.txt", "periapsis 410 km");
    let rewritten = sb.write_seq("orbit.txt", "periapsis 395 km");
    let r = sb.tools(&["undo"]);
    assert_ok(&r);
    let said = format!("undid entry {rewritten} (file_write 'orbit.txt'): restored");
    assert!(r.stdout.contains(&said), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "periapsis 410 km");
    // The next undo reaches the write that created the file: it goes again.
    let r = sb.tools(&["undo", "--json"]);
    assert_ok(&r);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["undone"], created);
    assert_eq!(v["restored"]["kind"], "removed");
    assert!(!file.exists());
    let r = sb.tools(&["undo"]);
    assert_error(&r, 2, &["nothing to undo"]);
    let entries = sb.audit_entries();
    let undos: Vec<_> = entries
        .iter()
        .filter(|e| e["action"] == "undo_tool")
        .collect();
    assert_eq!(undos.len(), 2);
    assert_eq!(undos[0]["event_type"], "TOOL_INVOCATION");
    assert_eq!(undos[0]["metadata"]["undoes"], rewritten);
    assert_eq!(undos[1]["metadata"]["undoes"], created);
    let journaled = entries
        .iter()
        .find(|e| e["seq"] == rewritten)
        .expect("the write's entry");
    let undo = &journaled["metadata"]["undo"];
    assert_eq!(undo["existed"], true);
    assert_eq!(undo["bytes"], 16);
    assert!(undo["prior_sha256"].as_str().unwrap().len() == 64);
    // Hashes and sizes only: no content in the trail.
    let audit = sb.audit_json();
    assert!(!audit.contains("periapsis"), "{audit}");
    sb.assert_audit_verifies();
}

#[test]
fn undo_needs_no_model_a_missing_key_never_stands_in_its_way() {
    let sb = Sandbox::new();
    let file = sb.workspace().join("orbit.txt");
    sb.write_seq("orbit.txt", "periapsis 410 km");
    // OpenAI configured, its key not exported in this shell: a prompt could not go out, but
    // a tool call or an undo calls no model.
    let mut cmd = sb.cmd();
    cmd.env("VEYRA_MODEL__BACKEND", "openai")
        .env("VEYRA_MODEL__MODEL", "gpt-4o-mini")
        .env("VEYRA_MODEL__API_KEY_ENV", "ORBIT_TEST_UNSET_KEY")
        .env_remove("ORBIT_TEST_UNSET_KEY")
        .args(["tools", "undo"]);
    let r = run(cmd);
    assert_ok(&r);
    assert!(!file.exists(), "the write that created it is undone");
}

#[test]
fn undo_of_a_delete_restores_the_file() {
    let sb = Sandbox::new();
    let file = sb.workspace().join("manifest.txt");
    std::fs::write(&file, "3 crew, 2 rovers").unwrap();
    let deleted = sb.invoke_seq(&["file_delete", "--arg", "path=manifest.txt"]);
    assert!(!file.exists());
    let arg = deleted.to_string();
    let r = sb.tools(&["undo", &arg]);
    assert_ok(&r);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "3 crew, 2 rovers");
    sb.assert_audit_verifies();
}

#[test]
fn undo_refuses_a_file_changed_since_and_leaves_it_alone() {
    let sb = Sandbox::new();
    let file = sb.workspace().join("burn.txt");
    std::fs::write(&file, "before").unwrap();
    let seq = sb.write_seq("burn.txt", "aaaa");
    std::fs::write(&file, "bbbb").unwrap();
    let arg = seq.to_string();
    let r = sb.tools(&["undo", &arg]);
    assert_error(
        &r,
        4,
        &[
            &format!("changed since entry {seq} (sha256 now"),
            "expected",
            "undo refused, nothing was changed",
        ],
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "bbbb");
    std::fs::write(&file, "grown longer").unwrap();
    let r = sb.tools(&["undo", &arg]);
    assert_error(&r, 4, &["changed since entry", "size now 12 bytes"]);
    std::fs::remove_file(&file).unwrap();
    let r = sb.tools(&["undo", &arg]);
    assert_error(&r, 4, &["it was deleted"]);
    assert!(!file.exists());
    // Each refusal is on the record.
    let refused = sb
        .audit_entries()
        .into_iter()
        .filter(|e| e["action"] == "undo_tool" && e["outcome"] == "refused")
        .count();
    assert_eq!(refused, 3);
    sb.assert_audit_verifies();
}

#[test]
fn a_second_undo_of_the_same_call_is_refused() {
    let sb = Sandbox::new();
    let seq = sb.write_seq("once.txt", "x");
    let arg = seq.to_string();
    assert_ok(&sb.tools(&["undo", &arg]));
    let r = sb.tools(&["undo", &arg]);
    assert_error(
        &r,
        4,
        &[&format!("entry {seq} was already undone by entry")],
    );
}

#[test]
fn undo_of_what_kept_nothing_is_a_usage_error() {
    let sb = Sandbox::new();
    let seq = sb.invoke_seq(&["calculator", "--arg", "expression=1+1"]);
    let arg = seq.to_string();
    let r = sb.tools(&["undo", &arg]);
    assert_error(&r, 2, &["kept nothing to restore"]);
    let r = sb.tools(&["undo", "9999"]);
    assert_error(&r, 2, &["no audit entry 9999"]);
}

#[test]
fn a_tampered_journal_is_refused_and_the_file_left_alone() {
    let sb = Sandbox::new();
    let file = sb.workspace().join("keys.txt");
    std::fs::write(&file, "genuine").unwrap();
    let seq = sb.write_seq("keys.txt", "replaced");
    // Someone with write access to the data directory swaps the kept content.
    let db = rusqlite::Connection::open(sb.audit_db()).unwrap();
    db.execute_batch("DROP TRIGGER tool_journal_no_update")
        .unwrap();
    db.execute(
        "UPDATE tool_journal SET content = ?1 WHERE seq = ?2",
        rusqlite::params![b"planted".to_vec(), seq as i64],
    )
    .unwrap();
    drop(db);
    let arg = seq.to_string();
    let r = sb.tools(&["undo", &arg]);
    assert_error(
        &r,
        4,
        &[
            "does not match the hash its audit entry holds",
            "the journal was altered",
        ],
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "replaced");
    // The journal is outside the chain: the log itself still verifies.
    sb.assert_audit_verifies();
    // A blob removed altogether is refused too.
    let db = rusqlite::Connection::open(sb.audit_db()).unwrap();
    db.execute_batch("DROP TRIGGER tool_journal_no_delete; DELETE FROM tool_journal;")
        .unwrap();
    drop(db);
    let r = sb.tools(&["undo", &arg]);
    assert_error(&r, 4, &["holds no content for entry"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "replaced");
}

#[test]
fn http_get_is_off_until_hosts_are_allowed() {
    let sb = Sandbox::new();
    let r = sb.tools(&["invoke", "http_get", "--arg", "url=https://example.com/"]);
    assert_error(&r, 2, &["http_get", "is off", "tools.http_allow"]);
    let config = sb.write(
        "http.yaml",
        "tools:\n  http_allow: [api.example.com, 'localhost:8080']\n",
    );
    let r = sb.tools_with(&config, &["describe", "http_get"]);
    assert_ok(&r);
    assert!(r.stdout.contains("network"), "{}", r.stdout);
    // Refused before any connection: the host is not on the list.
    let r = sb.tools_with(
        &config,
        &["invoke", "http_get", "--arg", "url=http://127.0.0.1:9/"],
    );
    assert_error(&r, 4, &["not on tools.http_allow"]);
    let bad = sb.write(
        "bad-http.yaml",
        "tools:\n  http_allow: ['https://x.org/']\n",
    );
    let r = sb.tools_with(&bad, &["list"]);
    assert_error(&r, 2, &["tools.http_allow", "not a bare host"]);
}

/// `veyra run` lets the mock call tools by its script: steps on stderr, the answer on stdout;
/// `--tools none` offers nothing; an unknown name is exit 2; a model that never stops is cut
/// at `tools.max_steps` (exit 1, naming the limit), every step audited.
#[test]
fn veyra_run_lets_the_model_use_tools_within_its_limits() {
    let sb = Sandbox::new();
    let config = sb.write(
        "agent.yaml",
        r#"model:
  mock:
    script:
      - pattern: "^compute"
        tool_calls:
          - { name: calculator, arguments: { expression: "6*7" } }
        response: "The result is {result}."
      - pattern: "^forever"
        tool_calls:
          - { name: light_time, arguments: { body: moon, at: "2026-12-01T00:00:00Z" } }
        repeat: true
        response: "never"
tools:
  max_steps: 3
"#,
    );
    let veyra = |args: &[&str]| {
        let mut cmd = sb.cmd();
        cmd.arg("--config").arg(&config).args(args);
        run(cmd)
    };
    let r = veyra(&["run", "compute six times seven"]);
    assert_ok(&r);
    assert_eq!(r.stdout.trim_end(), "The result is {\"value\":42.0}.");
    assert!(
        r.stderr
            .contains("step 1: calculator {\"expression\":\"6*7\"} → 6*7 = 42"),
        "{}",
        r.stderr
    );

    let r = veyra(&["run", "--tools", "none", "compute six times seven"]);
    assert_ok(&r);
    assert_eq!(r.stdout.trim_end(), "The result is .");
    assert!(!r.stderr.contains("step 1"), "{}", r.stderr);

    let r = veyra(&["run", "--tools", "calculator,shell", "compute"]);
    assert_error(&r, 2, &["shell"]);
    let r = veyra(&["run", "--tools", "Calc ulator", "compute"]);
    assert_error(&r, 2, &["not a tool name"]);

    let r = veyra(&["run", "forever and ever"]);
    assert_error(&r, 1, &["stopped after 3 tool calls", "tools.max_steps"]);
    assert_eq!(r.stderr.matches("light_time").count(), 3, "{}", r.stderr);
    let audit = sb.audit_json();
    assert_eq!(
        audit.matches("\"TOOL_INVOCATION\"").count(),
        4,
        "one calculator call and three light_time calls"
    );
    assert!(audit.contains("max_steps"), "{audit}");
    sb.assert_audit_verifies();
}
