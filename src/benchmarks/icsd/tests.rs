//! Tests of the ICSD family: generated tasks, their reference answers and the scorer.

use super::*;

fn tasks(n: usize, d: Difficulty, seed: u64) -> Vec<BenchTask> {
    Icsd.generate(n, d, seed).unwrap()
}

#[test]
fn the_fault_table_names_real_metrics_and_actions() {
    for f in &FAULTS {
        for s in f.root.iter().chain(f.knock_on) {
            let m = metric(s.metric).unwrap_or_else(|| panic!("{}", s.metric));
            // Symptoms lie outside the nominal range.
            assert!(
                s.range.0 > m.nominal.1 || s.range.1 < m.nominal.0,
                "{}",
                s.metric
            );
        }
        assert!(SUBSYSTEMS.contains(&f.subsystem));
        assert!(ACTIONS.contains(&f.action));
    }
}

#[test]
fn difficulty_changes_the_task() {
    let easy = &tasks(1, Difficulty::Easy, 4)[0];
    let hard = &tasks(1, Difficulty::Hard, 4)[0];
    let extreme = &tasks(1, Difficulty::Extreme, 4)[0];
    let rows = |t: &BenchTask| t.prompt.matches("(nominal").count();
    assert!(rows(easy) < rows(hard));
    assert_eq!(rows(extreme), 3 * rows(hard));
    assert!(hard.prompt.contains("Event log") && !easy.prompt.contains("Event log"));
    assert!(extreme.prompt.contains("Snapshot T-10 min"));
}

#[test]
fn the_true_answer_scores_1_wrong_answers_0_garbage_0() {
    for d in Difficulty::ALL {
        for t in tasks(14, d, 6) {
            let s = Icsd.score(
                &t,
                &perfect_outcome(&t, &format!("Diagnosis…\n```\nANSWER: {}\n```", t.expected)),
            );
            assert_eq!(s.value, 1.0, "{}: {}", t.id, s.reason);
            let spaced = t.expected.replace('_', " ").to_uppercase();
            assert_eq!(
                Icsd.score(&t, &perfect_outcome(&t, &format!("ANSWER: {spaced}")))
                    .value,
                1.0
            );
            let wrong_sub = SUBSYSTEMS
                .iter()
                .find(|s| **s != t.truth["subsystem"])
                .unwrap();
            let wrong_act = ACTIONS.iter().find(|a| **a != t.truth["action"]).unwrap();
            let s = Icsd.score(
                &t,
                &Outcome::text(format!("ANSWER: {wrong_sub} | {wrong_act}")),
            );
            assert_eq!(s.value, 0.0);
            for g in [
                "",
                "ANSWER: power",
                "power and thermal | rotate_logs | x | y",
                "\u{202e}",
            ] {
                assert_eq!(Icsd.score(&t, &Outcome::text(g)).value, 0.0, "{g:?}");
            }
        }
    }
}

#[test]
fn hard_levels_ask_the_link_and_judge_it_by_what_system_status_reported() {
    let easy = &tasks(1, Difficulty::Medium, 4)[0];
    assert_eq!(easy.tools, TaskTools::None);
    assert_eq!(easy.format.fields.len(), 2);
    let t = &tasks(1, Difficulty::Hard, 4)[0];
    assert_eq!(t.tools, TaskTools::Only(vec!["system_status".into()]));
    assert!(t.prompt.contains("system_status") && t.expected.ends_with(LINK));
    let right = t.expected.replace(LINK, "mars");
    // Right diagnosis but no call: the link part cannot be known.
    let s = Icsd.score(t, &Outcome::text(format!("ANSWER: {right}")));
    assert!((s.value - 2.0 / 3.0).abs() < 1e-9, "{}", s.reason);
    assert!(
        s.reason.contains("system_status was not called"),
        "{}",
        s.reason
    );
    // The tool said mars; an answer of earth is wrong, whatever the config says.
    let wrong = t.expected.replace(LINK, "earth");
    let s = Icsd.score(t, &perfect_outcome(t, &format!("ANSWER: {wrong}")));
    assert!((s.value - 2.0 / 3.0).abs() < 1e-9, "{}", s.reason);
    // A step that claims the call without an audit entry (audit on) does not count.
    let mut o = perfect_outcome(t, &format!("ANSWER: {right}"));
    o.audit = Some(Vec::new());
    assert!(Icsd.score(t, &o).value < 1.0);
    assert_eq!(
        reported_preset("1 queued, 0 running, backend mock healthy, link deep-space clear"),
        Some("deep-space")
    );
    assert_eq!(reported_preset("garbage"), None);
}

/// The summary the scorer reads is the one the real tool writes.
#[tokio::test]
async fn the_real_system_status_summary_names_the_preset() {
    let mut config = crate::config::VeyraConfig::default();
    config.governance.store = crate::config::AuditStoreKind::Memory;
    config.latency.preset = crate::config::LatencyPreset::DeepSpace;
    let core = crate::core::VeyraCore::new(config).unwrap();
    let done = core
        .invoke_tool("system_status", json!({}), "operator")
        .await
        .unwrap();
    assert_eq!(reported_preset(&done.output.summary), Some("deep-space"));
}
