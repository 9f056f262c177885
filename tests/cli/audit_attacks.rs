//! Attacks on the audit trail by someone with write access to the data directory (an `sqlite3`
//! shell with the append-only triggers dropped, a hex editor, a text editor on an export), each
//! performed for real and checked through the binary: `veyra audit verify` exits 3 and says
//! what is wrong, and a writer (`veyra run`) refuses to sign over the damage. Controls that
//! must pass: an untouched store, a restart, whole and filtered exports, a key rotation.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use rusqlite::{Connection, params};
use veyra::governance::AuditEntry;
use veyra::governance::checkpoint::Checkpoint;
use veyra::governance::merkle::Frontier;

use super::{Run, Sandbox, assert_error, run};

/// A sandbox whose store holds `runs` × 2 entries (a policy decision and an execution each).
fn store_with_runs(runs: usize) -> Sandbox {
    let sb = Sandbox::new();
    for i in 0..runs {
        let mut c = sb.cmd();
        c.args(["run", &format!("prompt {i}")]);
        let r = run(c);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
    }
    sb
}

fn db(sb: &Sandbox) -> PathBuf {
    sb.dir.path().join("data/veyra/audit.db")
}

fn key_file(sb: &Sandbox) -> PathBuf {
    sb.dir.path().join("data/veyra/audit.key")
}

/// The store with the append-only triggers dropped, as an attacker would open it.
fn attacker(sb: &Sandbox) -> Connection {
    let conn = Connection::open(db(sb)).expect("open the store");
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS audit_entries_no_update; DROP TRIGGER IF EXISTS audit_entries_no_delete; \
         DROP TRIGGER IF EXISTS audit_checkpoints_no_update; DROP TRIGGER IF EXISTS audit_checkpoints_no_delete; \
         DROP TRIGGER IF EXISTS audit_head_no_rollback; DROP TRIGGER IF EXISTS audit_head_no_delete;",
    )
    .expect("drop the triggers");
    conn
}

fn sql(sb: &Sandbox, batch: &str) {
    attacker(sb).execute_batch(batch).expect("the attack's SQL");
}

fn verify(sb: &Sandbox) -> Run {
    let mut c = sb.cmd();
    c.args(["audit", "verify"]);
    run(c)
}

fn one_more_run(sb: &Sandbox) -> Run {
    let mut c = sb.cmd();
    c.args(["run", "one more"]);
    run(c)
}

/// Verify fails with exit 3 and `needles`; an ordinary run refuses to append (exit 3), and
/// verify still fails afterwards: nothing launders the damage.
fn assert_detected_and_not_laundered(sb: &Sandbox, needles: &[&str]) {
    assert_error(&verify(sb), 3, needles);
    assert_error(&one_more_run(sb), 3, &["audit"]);
    assert_error(&verify(sb), 3, needles);
    let mut c = sb.cmd();
    c.arg("health");
    let r = run(c);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    assert!(r.stdout.contains("audit: FAILED"), "{}", r.stdout);
}

fn entries(sb: &Sandbox) -> Vec<AuditEntry> {
    let conn = Connection::open(db(sb)).expect("open the store");
    let mut stmt = conn
        .prepare("SELECT seq FROM audit_entries ORDER BY seq")
        .expect("query");
    let seqs: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .expect("rows")
        .map(|r| r.expect("a seq"))
        .collect();
    drop(stmt);
    let mut c = sb.cmd();
    c.args(["audit", "list", "--json"]);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let out: Vec<AuditEntry> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("an entry"))
        .collect();
    assert_eq!(out.len(), seqs.len());
    out
}

/// Rewrites history from `from` on (outcome of `from` changed, every later entry rehashed),
/// deletes every checkpoint, and signs a new head with `key`: a consistent, re-signed forgery.
fn rewrite_and_resign(sb: &Sandbox, from: u64, key: &SigningKey) {
    let mut all = entries(sb);
    let conn = attacker(sb);
    let mut prev = veyra::governance::GENESIS_PREV_HASH.to_string();
    let mut frontier = Frontier::new();
    for e in &mut all {
        if e.seq >= from {
            if e.seq == from {
                e.outcome = "failure".into();
            }
            e.prev_hash.clone_from(&prev);
            e.hash = e.compute_hash().expect("hash").expect("hex");
            conn.execute(
                "UPDATE audit_entries SET outcome = ?1, prev_hash = ?2, hash = ?3, canonical = ?4 WHERE seq = ?5",
                params![e.outcome, e.prev_hash, e.hash, e.canonical_bytes().expect("bytes"), e.seq as i64],
            )
            .expect("rewrite");
        }
        prev.clone_from(&e.hash);
        frontier.push(&e.canonical_bytes().expect("bytes"));
    }
    let cp = Checkpoint::sign(key, frontier.size(), frontier.root(), &prev);
    conn.execute_batch("DELETE FROM audit_head; DELETE FROM audit_checkpoints;")
        .expect("delete checkpoints");
    conn.execute(
        "INSERT INTO audit_head (slot, tree_size, root, chain_head, timestamp, public_key, signature) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            cp.tree_size as i64,
            cp.root,
            cp.chain_head,
            cp.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            cp.public_key,
            cp.signature
        ],
    )
    .expect("insert the forged head");
}

fn genuine_key(sb: &Sandbox) -> SigningKey {
    let text = std::fs::read_to_string(key_file(sb)).expect("the key file");
    let seed: [u8; 32] = hex::decode(text.trim())
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    SigningKey::from_bytes(&seed)
}

// --- controls -------------------------------------------------------------------------------

#[test]
fn an_untouched_store_verifies_across_restarts() {
    let sb = store_with_runs(2);
    let r = verify(&sb);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("4 entries verified"), "{}", r.stdout);
    assert!(r.stdout.contains("pinned by  witness"), "{}", r.stdout);
    assert_eq!(one_more_run(&sb).code, Some(0));
    let r = verify(&sb);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("6 entries verified"), "{}", r.stdout);
}

#[test]
fn whole_and_filtered_exports_verify_offline_and_strictly() {
    let sb = store_with_runs(3);
    let mut c = sb.cmd();
    c.args(["audit", "export", "--out", "all.json"]);
    assert_eq!(run(c).code, Some(0));
    let mut c = sb.cmd();
    c.args([
        "audit",
        "export",
        "--type",
        "EXECUTION",
        "--out",
        "exec.json",
    ]);
    assert_eq!(run(c).code, Some(0));
    for file in ["all.json", "exec.json"] {
        let mut c = sb.cmd();
        c.args(["audit", "verify", "--file", file]);
        let r = run(c);
        assert_eq!(r.code, Some(0), "{file}: {}", r.stderr);
    }
    // Away from the store (no config, no key file), an export needs a pin.
    let elsewhere = Sandbox::new();
    let all = sb.work().join("all.json");
    let mut c = elsewhere.cmd();
    c.args(["audit", "verify", "--file"]).arg(&all);
    assert_error(&run(c), 3, &["cannot pin the signer"]);
    let public = hex::encode(genuine_key(&sb).verifying_key().to_bytes());
    let mut c = elsewhere.cmd();
    c.args(["audit", "verify", "--key", &public, "--file"])
        .arg(&all);
    assert_eq!(run(c).code, Some(0));
    let witness = std::fs::read_dir(sb.dir.path().join("state/veyra/witness"))
        .expect("the witness directory")
        .next()
        .expect("a witness")
        .expect("an entry")
        .path();
    let mut c = elsewhere.cmd();
    c.args(["audit", "verify", "--witness"])
        .arg(&witness)
        .arg("--file")
        .arg(&all);
    assert_eq!(run(c).code, Some(0));
}

#[test]
fn a_published_checkpoint_pins_size_and_head() {
    let sb = store_with_runs(2);
    let r = verify(&sb);
    let tree_head = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("tree head  "))
        .expect("a tree head")
        .to_string();
    let mut c = sb.cmd();
    c.args([
        "audit",
        "verify",
        "--expect-size",
        "4",
        "--expect-head",
        &tree_head,
    ]);
    assert_eq!(run(c).code, Some(0));
    let mut c = sb.cmd();
    c.args([
        "audit",
        "verify",
        "--expect-size",
        "3",
        "--expect-head",
        &tree_head,
    ]);
    assert_error(&run(c), 3, &["history rewritten", "at 3 entries"]);
    let mut c = sb.cmd();
    c.args([
        "audit",
        "verify",
        "--expect-size",
        "9",
        "--expect-head",
        &tree_head,
    ]);
    assert_error(&run(c), 3, &["5 acknowledged entries are missing"]);
}

#[test]
fn a_rotated_key_is_endorsed_by_the_old_one() {
    let sb = store_with_runs(1);
    let old = hex::encode(genuine_key(&sb).verifying_key().to_bytes());
    let mut c = sb.cmd();
    c.args(["audit", "rotate-key"]);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains("signing key rotated at entry seq 3"),
        "{}",
        r.stdout
    );
    let new = hex::encode(genuine_key(&sb).verifying_key().to_bytes());
    assert_ne!(old, new);
    assert_eq!(one_more_run(&sb).code, Some(0));
    let r = verify(&sb);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains(&new), "{}", r.stdout);
    let mut c = sb.cmd();
    c.args(["audit", "verify", "--key", &old]);
    assert_eq!(
        run(c).code,
        Some(0),
        "the old key pins the log it handed over"
    );
    let mut c = sb.cmd();
    c.args(["audit", "list", "--type", "CONFIG_CHANGE"]);
    assert!(run(c).stdout.contains("rotate_signing_key"));
}

// --- rollback -------------------------------------------------------------------------------

#[test]
fn rollbacks_are_detected() {
    let attacks = [
        (
            "newest entries and their checkpoints deleted",
            "DELETE FROM audit_entries WHERE seq > 2; DELETE FROM audit_head; DELETE FROM audit_checkpoints;",
            "4 acknowledged entries are missing",
        ),
        (
            "newest checkpoint deleted",
            "DELETE FROM audit_head;",
            "not covered by any signed checkpoint",
        ),
        (
            "every checkpoint deleted",
            "DELETE FROM audit_head; DELETE FROM audit_checkpoints;",
            "not covered by any signed checkpoint",
        ),
        (
            "checkpoint tables dropped",
            "DROP TABLE audit_head; DROP TABLE audit_checkpoints;",
            "not covered by any signed checkpoint",
        ),
        (
            "both tables emptied",
            "DELETE FROM audit_entries; DELETE FROM audit_head; DELETE FROM audit_checkpoints;",
            "6 acknowledged entries are missing",
        ),
    ];
    for (name, attack, needle) in attacks {
        let sb = store_with_runs(3);
        sql(&sb, attack);
        let r = verify(&sb);
        assert!(r.stderr.contains(needle), "{name}: {}", r.stderr);
        assert_detected_and_not_laundered(&sb, &[needle]);
    }
}

#[test]
fn every_checkpoint_deleted_with_a_cut_tail_or_a_rewrite_is_detected() {
    let sb = store_with_runs(3);
    sql(
        &sb,
        "DELETE FROM audit_entries WHERE seq > 4; DELETE FROM audit_head; DELETE FROM audit_checkpoints;",
    );
    assert_detected_and_not_laundered(&sb, &["2 acknowledged entries are missing"]);

    let sb = store_with_runs(3);
    let key = genuine_key(&sb);
    rewrite_and_resign(&sb, 3, &key);
    assert_detected_and_not_laundered(&sb, &["history rewritten", "witness"]);
}

// --- laundering -----------------------------------------------------------------------------

#[test]
fn a_cut_tail_is_not_laundered_by_the_next_run() {
    let sb = store_with_runs(3);
    sql(&sb, "DELETE FROM audit_entries WHERE seq > 4;");
    assert_detected_and_not_laundered(&sb, &["2 acknowledged entries are missing"]);
}

#[test]
fn a_rehashed_history_signed_with_the_genuine_key_is_not_laundered() {
    let sb = store_with_runs(3);
    let key = genuine_key(&sb);
    rewrite_and_resign(&sb, 2, &key);
    assert_detected_and_not_laundered(&sb, &["history rewritten"]);
}

// --- the signer -----------------------------------------------------------------------------

#[test]
fn a_history_re_signed_with_a_new_key_fails_whatever_is_done_to_the_key_file() {
    let mallory = SigningKey::from_bytes(&[7; 32]);
    type KeyEdit = fn(&Path);
    let edits: [(&str, KeyEdit); 5] = [
        ("left alone", |_| {}),
        ("deleted", |k| std::fs::remove_file(k).expect("delete")),
        ("made readable by others", |k| {
            std::fs::set_permissions(k, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .expect("chmod")
        }),
        ("overwritten with garbage", |k| {
            std::fs::write(k, "not a key").expect("write")
        }),
        ("replaced by the forger's key", |k| {
            std::fs::write(k, hex::encode([7u8; 32])).expect("write")
        }),
    ];
    for (name, edit) in edits {
        let sb = store_with_runs(2);
        rewrite_and_resign(&sb, 1, &mallory);
        edit(&key_file(&sb));
        let r = verify(&sb);
        assert_eq!(r.code, Some(3), "{name}: {}", r.stderr);
        assert!(
            r.stderr.contains("cannot pin the signer") || r.stderr.contains("history rewritten"),
            "{name}: {}",
            r.stderr
        );
        assert_eq!(one_more_run(&sb).code, Some(3), "{name}");
    }
}

#[test]
fn a_deleted_or_exposed_key_is_refused_and_never_silently_replaced() {
    let sb = store_with_runs(1);
    std::fs::remove_file(key_file(&sb)).expect("delete the key");
    assert_error(&verify(&sb), 3, &["cannot pin the signer", "missing"]);
    assert_error(&one_more_run(&sb), 3, &["cannot pin the signer", "missing"]);
    assert!(
        !key_file(&sb).exists(),
        "no new key for a store with entries"
    );

    let sb = store_with_runs(1);
    std::fs::set_permissions(
        key_file(&sb),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
    assert_error(&verify(&sb), 3, &["cannot pin the signer", "chmod 600"]);
}

// --- forged append --------------------------------------------------------------------------

#[test]
fn a_forged_append_is_detected() {
    let sb = store_with_runs(2);
    let last = entries(&sb).pop().expect("an entry");
    let mut forged = last.clone();
    forged.seq = last.seq + 1;
    forged.id = uuid::Uuid::new_v4();
    forged.outcome = "success".into();
    forged.prev_hash.clone_from(&last.hash);
    forged.hash = forged.compute_hash().expect("hash").expect("hex");
    let conn = attacker(&sb);
    let canonical = forged.canonical_bytes().expect("bytes");
    let metadata = String::from_utf8(canonical.clone()).expect("utf-8");
    let metadata = &metadata[metadata.find("\"metadata\":").expect("metadata") + 11
        ..metadata.find(",\"outcome\"").expect("outcome")];
    conn.execute(
        "INSERT INTO audit_entries (seq, id, timestamp, event_type, actor, action, resource, outcome, input_summary, metadata, prev_hash, hash, canonical) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            forged.seq as i64,
            forged.id.to_string(),
            forged.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            forged.event_type.name(),
            forged.actor,
            forged.action,
            forged.resource,
            forged.outcome,
            forged.input_summary,
            metadata,
            forged.prev_hash,
            forged.hash,
            canonical
        ],
    )
    .expect("append");
    drop(conn);
    assert_detected_and_not_laundered(
        &sb,
        &["entry seq 5 is not covered by any signed checkpoint"],
    );
}

// --- lost WAL frames and missing files ------------------------------------------------------

/// A store whose newest commits still live in its WAL, with no process holding it (as a
/// backup or a copy leaves it): a reader holds the database open while the runs write, so no
/// run is the last connection to close (the last one folds the WAL into the main file); the
/// files are copied then, and put back once the reader is gone.
fn store_in_wal(runs: usize) -> Sandbox {
    let sb = store_with_runs(1);
    let holder = Connection::open(db(&sb)).expect("hold the store open");
    holder
        .query_row("SELECT COUNT(*) FROM audit_entries", [], |r| {
            r.get::<_, i64>(0)
        })
        .expect("a read");
    for i in 0..runs {
        let mut c = sb.cmd();
        c.args(["run", &format!("in the wal {i}")]);
        assert_eq!(run(c).code, Some(0));
    }
    let snapshot = sb.dir.path().join("snapshot");
    std::fs::create_dir_all(&snapshot).expect("a snapshot directory");
    for suffix in ["db", "db-wal"] {
        std::fs::copy(db(&sb).with_extension(suffix), snapshot.join(suffix)).expect("copy");
    }
    drop(holder);
    for suffix in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(db(&sb).with_extension(suffix));
    }
    for suffix in ["db", "db-wal"] {
        std::fs::copy(snapshot.join(suffix), db(&sb).with_extension(suffix)).expect("restore");
    }
    let wal = db(&sb).with_extension("db-wal");
    assert!(
        std::fs::metadata(&wal).expect("a WAL").len() > 0,
        "the data is in the WAL"
    );
    sb
}

#[test]
fn a_flipped_byte_or_a_cut_in_the_wal_is_detected() {
    // The untouched copy is sound: the WAL holds every commit.
    let sb = store_in_wal(3);
    let r = verify(&sb);
    assert_eq!(r.code, Some(0), "{}", r.stderr);

    // One byte of the newest frame flipped: SQLite drops that frame's commit.
    let sb = store_in_wal(3);
    let wal = db(&sb).with_extension("db-wal");
    let mut bytes = std::fs::read(&wal).expect("the WAL");
    let at = bytes.len() - 100;
    bytes[at] ^= 0x01;
    std::fs::write(&wal, bytes).expect("flip a byte");
    assert_error(&verify(&sb), 3, &["acknowledged entr", "lost WAL frames"]);
    assert_error(&one_more_run(&sb), 3, &["acknowledged entr"]);

    // Cut in half.
    let sb = store_in_wal(3);
    let wal = db(&sb).with_extension("db-wal");
    let len = std::fs::metadata(&wal).expect("the WAL").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .expect("open the WAL")
        .set_len(len / 2)
        .expect("cut it");
    assert_error(&verify(&sb), 3, &["acknowledged entries are missing"]);
}

#[test]
fn a_missing_wal_or_main_file_counts_the_missing_entries() {
    // A backup that copied only audit.db: the WAL is gone.
    let sb = store_in_wal(2);
    std::fs::remove_file(db(&sb).with_extension("db-wal")).expect("delete the WAL");
    let r = verify(&sb);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains("acknowledged entries are missing"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("no such table"), "{}", r.stderr);
    assert_error(&one_more_run(&sb), 3, &["acknowledged entries are missing"]);

    // The main file gone altogether.
    let sb = store_with_runs(3);
    for suffix in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(db(&sb).with_extension(suffix));
    }
    assert_error(&verify(&sb), 3, &["6 acknowledged entries are missing"]);
}

// --- exports ----------------------------------------------------------------------------------

fn export(sb: &Sandbox) -> serde_json::Value {
    let mut c = sb.cmd();
    c.args(["audit", "export"]);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    serde_json::from_str(&r.stdout).expect("an export")
}

fn verify_export(sb: &Sandbox, doc: &serde_json::Value) -> Run {
    let path = sb.write(
        "edited.json",
        &serde_json::to_string_pretty(doc).expect("json"),
    );
    let mut c = sb.cmd();
    c.args(["audit", "verify", "--file"]).arg(path);
    run(c)
}

#[test]
fn edited_exports_are_rejected() {
    let sb = store_with_runs(3);
    let doc = export(&sb);

    // Tail cut, checkpoint removed.
    let mut cut = doc.clone();
    cut["entries"].as_array_mut().expect("entries").truncate(4);
    cut["checkpoint"] = serde_json::Value::Null;
    assert_error(
        &verify_export(&sb, &cut),
        3,
        &["not covered by any signed checkpoint"],
    );

    // A forged entry appended.
    let mut forged = doc.clone();
    let entries = forged["entries"].as_array_mut().expect("entries");
    let mut extra: AuditEntry = serde_json::from_value(entries[5].clone()).expect("an entry");
    extra.seq = 7;
    extra.prev_hash.clone_from(&extra.hash);
    extra.hash = extra.compute_hash().expect("hash").expect("hex");
    entries.push(serde_json::to_value(&extra).expect("json"));
    assert_error(
        &verify_export(&sb, &forged),
        3,
        &["entry seq 7 is not covered"],
    );

    // A full rewrite re-signed with another key (the local store's key pins the signer).
    let mallory = SigningKey::from_bytes(&[7; 32]);
    let mut rewritten = doc.clone();
    let mut prev = veyra::governance::GENESIS_PREV_HASH.to_string();
    let mut frontier = Frontier::new();
    for value in rewritten["entries"].as_array_mut().expect("entries") {
        let mut e: AuditEntry = serde_json::from_value(value.clone()).expect("an entry");
        e.outcome = "failure".into();
        e.prev_hash = prev;
        e.hash = e.compute_hash().expect("hash").expect("hex");
        prev = e.hash.clone();
        frontier.push(&e.canonical_bytes().expect("bytes"));
        *value = serde_json::to_value(&e).expect("json");
    }
    let cp = Checkpoint::sign(&mallory, frontier.size(), frontier.root(), &prev);
    rewritten["checkpoint"] = serde_json::to_value(&cp).expect("json");
    let r = verify_export(&sb, &rewritten);
    assert_error(&r, 3, &["cannot pin the signer"]);
    assert!(r.stdout.is_empty());
}

/// `veyra policy replay`: the same set flips nothing (exit 0); a candidate that forbids
/// background work flips exactly the background prompt's decision (exit 5, counted under the
/// new policy's id, with the entry as an example); a log whose POLICY_CHECK outcome was
/// rewritten is refused before anything is replayed (exit 3) — a replay over forged decisions
/// would answer with them.
#[test]
fn policy_replay_reports_what_a_candidate_would_flip_and_refuses_a_forged_log() {
    let sb = store_with_runs(1);
    let mut c = sb.cmd();
    c.args(["run", "--priority", "background", "tidy the logs"]);
    assert_eq!(run(c).code, Some(0));
    let same =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/policies/default.cedar");
    let mut c = sb.cmd();
    c.args(["policy", "replay", "--policy"]).arg(&same);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("nothing would flip"), "{}", r.stdout);

    let dir = sb.work().join("candidate");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&same, dir.join("default.cedar")).unwrap();
    std::fs::write(
        dir.join("quiet-hours.cedar"),
        "@id(\"no-background\")\n@reason(\"background work waits for the next pass\")\n\
         forbid (principal, action == Veyra::Action::\"execute\", resource)\n\
         when { context has priority && context.priority == \"background\" };\n",
    )
    .unwrap();
    let mut c = sb.cmd();
    c.args(["policy", "replay", "--json", "--policy"]).arg(&dir);
    let r = run(c);
    assert_eq!(r.code, Some(5), "{}{}", r.stdout, r.stderr);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["allow_to_deny"], 1, "{report}");
    assert_eq!(report["deny_to_allow"], 0, "{report}");
    assert_eq!(report["by_policy"]["no-background"]["allow_to_deny"], 1);
    assert_eq!(report["examples"][0]["resource"], "backend:mock");
    // Every decision names the set that made it.
    let sets = report["recorded_sets"].as_object().unwrap();
    assert_eq!(sets.len(), 1, "{report}");
    assert!(!sets.contains_key("unrecorded"), "{report}");
    // The window: nothing decided before yesterday.
    let mut c = sb.cmd();
    c.args([
        "policy",
        "replay",
        "--until",
        "2026-01-01T00:00:00Z",
        "--policy",
    ])
    .arg(&dir);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("replayed 0 POLICY_CHECK"), "{}", r.stdout);

    // A forged decision: the replay refuses the log, as verify does.
    let forged = entries(&sb)
        .into_iter()
        .find(|e| e.event_type == veyra::governance::AuditEventType::PolicyCheck)
        .unwrap();
    sql(
        &sb,
        &format!(
            "UPDATE audit_entries SET outcome = 'deny' WHERE seq = {}",
            forged.seq
        ),
    );
    let mut c = sb.cmd();
    c.args(["policy", "replay", "--policy"]).arg(&dir);
    assert_error(&run(c), 3, &["audit"]);
}
