use std::time::Duration;

use super::*;
use crate::benchmarks::{Difficulty, FamilyId::Cplc};

/// A configuration on the mock whose stores live in `dir`.
fn config_in(dir: &std::path::Path) -> crate::config::VeyraConfig {
    let mut config = crate::config::VeyraConfig::default();
    config.governance.store_path = Some(dir.join("audit.db"));
    config.latency.simulate = false;
    config
}

fn request() -> BenchRequest {
    BenchRequest {
        families: Some(vec![Cplc]),
        count: Some(3),
        difficulty: Some(Difficulty::Easy),
        seed: Some(7),
        epochs: Some(2),
    }
}

/// The next update, waiting at most a minute (a guard against a hang, not a measurement).
async fn next(slot: &mut BenchSlot) -> BenchUpdate {
    tokio::time::timeout(Duration::from_secs(60), slot.updates.recv())
        .await
        .expect("an update within a minute")
        .expect("the channel is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_counts_the_executions_and_estimates_tokens_from_the_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let core = VeyraCore::new(config_in(dir.path())).unwrap();
    let mut slot = BenchSlot::new(&core);
    slot.plan(request());
    let BenchUpdate::Plan(Ok(plan)) = next(&mut slot).await else {
        panic!("no plan");
    };
    let tasks = slot.run_plan(&request()).unwrap().generate().unwrap();
    let chars: usize = tasks
        .iter()
        .map(|t| t.prompt.chars().count() + t.system.chars().count())
        .sum();
    assert_eq!(plan.executions, 3 * 2, "3 tasks × 2 epochs");
    assert_eq!(plan.prompt_tokens, chars.div_ceil(4) as u64 * 2);
    assert!(plan.prompt_tokens > 0);
    assert_eq!((plan.backend.as_str(), plan.epochs), ("mock", 2));
    assert_eq!(plan.suite.families, vec![Cplc]);
    // The run approved takes the tasks generated for its plan.
    let started = slot.start(&request()).unwrap();
    assert!(slot.planned.lock().unwrap().is_none());
    assert_eq!(started.suite, plan.suite);
    slot.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_runs_stay_in_memory_out_of_bench_db_and_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    crate::tui::apply_demo(&mut config).unwrap();
    // The tour's Mars link and slow tokens are not what this test is about.
    config.latency.simulate = false;
    config.model.mock.token_delay_ms = 0;
    let core = VeyraCore::new(config).unwrap();
    let mut slot = BenchSlot::new(&core);
    slot.load_history();
    assert!(matches!(next(&mut slot).await, BenchUpdate::Unkept(_)));
    let request = BenchRequest {
        epochs: Some(1),
        ..request()
    };
    slot.start(&request).unwrap();
    loop {
        match next(&mut slot).await {
            BenchUpdate::Ended(ended) => {
                assert!(ended.is_ok(), "{ended:?}");
                break;
            }
            BenchUpdate::Progress(_) => {}
            other => panic!("{other:?}"),
        }
    }
    slot.close().await;
    // No history follows the run, and nothing was written beside the audit store.
    assert!(slot.updates.try_recv().is_err());
    assert!(!dir.path().join("bench.db").exists());
    // A console with a durable audit store keeps its runs.
    let kept = BenchSlot::new(&VeyraCore::new(config_in(dir.path())).unwrap());
    assert!(kept.unkept.is_none());
}
