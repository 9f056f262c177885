use std::time::Duration;

use super::*;
use crate::benchmarks::{Difficulty, FamilyId::Cplc};
use crate::core::VeyraCore;

/// The next update, waiting at most a minute (a guard against a hang, not a measurement).
async fn next(slot: &mut BenchSlot) -> BenchUpdate {
    tokio::time::timeout(Duration::from_secs(60), slot.updates.recv())
        .await
        .expect("an update within a minute")
        .expect("the channel is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosting_console_folds_its_runtimes_run_then_reads_the_history_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::config::VeyraConfig::default();
    config.governance.store_path = Some(dir.path().join("audit.db"));
    config.latency.simulate = false;
    let core = VeyraCore::new(config.clone()).unwrap();
    let host = BenchHost::new(&core);
    let runtime = Handle::Local(core, Arc::clone(&host));
    let mut slot = BenchSlot::new(&runtime, &config);
    // Started by another client of the runtime: this console is told all the same.
    let request = crate::benchmarks::request::BenchRequest {
        families: Some(vec![Cplc]),
        count: Some(2),
        difficulty: Some(Difficulty::Easy),
        seed: Some(1),
        epochs: Some(1),
    };
    host.start(&request, None, None, false).unwrap();
    assert!(matches!(next(&mut slot).await, BenchUpdate::Began(_)));
    loop {
        match next(&mut slot).await {
            BenchUpdate::Progress(_) => {}
            BenchUpdate::Ended(ended) => {
                assert!(ended.is_ok(), "{ended:?}");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let BenchUpdate::History(Ok(points)) = next(&mut slot).await else {
        panic!("no history after the run");
    };
    assert_eq!(points.len(), 1);
    slot.close().await;
}
