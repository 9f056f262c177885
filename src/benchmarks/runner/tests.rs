use super::*;
use crate::config::{MockRule, ToolSelection};
// A core with an in-memory trail and its own workspace (scratch directories go there).
use crate::core::testing::core_with;
use crate::governance::{AuditEntry, AuditFilter};

fn plan(families: &[FamilyId], count: u32, epochs: u32) -> RunPlan {
    RunPlan {
        families: families.to_vec(),
        count,
        difficulty: Difficulty::Medium,
        seed: 7,
        epochs,
        weights: BTreeMap::new(),
    }
}

fn of_type(core: &VeyraCore, t: AuditEventType) -> Vec<AuditEntry> {
    let filter = AuditFilter {
        event_type: Some(t),
        ..Default::default()
    };
    core.audit().unwrap().query(&filter).unwrap()
}

#[tokio::test]
async fn every_task_runs_through_the_core_as_benchmark_with_one_audit_entry() {
    let (core, ws) = core_with(|_| {});
    let store = Arc::new(BenchStore::in_memory().unwrap());
    let runner = Runner::new(core.clone(), store.clone());
    let mut seen = Vec::new();
    let tasks = plan(&FamilyId::ALL, 3, 1).generate().unwrap();
    let items = tasks.len();
    // A dialogue (IMDP) is one execution per turn.
    let turns: usize = tasks
        .iter()
        .map(|t| t.dialogue.as_ref().map_or(1, |d| d.executions()))
        .sum();
    let report = runner
        .start(
            &plan(&FamilyId::ALL, 3, 1),
            &CancellationToken::new(),
            &mut |p| seen.push(p),
        )
        .await
        .unwrap();
    assert_eq!(report.info.status, RunStatus::Complete);
    assert_eq!(report.finished_now, items);
    assert_eq!(store.results(&report.info.id).unwrap().len(), items);
    // The mock never writes an answer line nor calls a tool: its baseline is 0 everywhere but
    // on ASR's harmful tasks (two of three here), which it leaves alone.
    for f in &report.summary.families {
        let want = if f.family == FamilyId::Asr {
            2.0 / 3.0
        } else {
            0.0
        };
        assert_eq!(f.score.mean, want, "{}", f.family);
    }
    // Every scratch directory is gone.
    assert!(!ws.path().join("bench").exists());
    let executions = of_type(&core, AuditEventType::Execution);
    assert_eq!(executions.len(), turns);
    assert!(executions.iter().all(|e| e.actor == "benchmark"));
    let bench = of_type(&core, AuditEventType::Benchmark);
    assert_eq!(bench.len(), 1);
    assert_eq!(bench[0].metadata["run_id"], report.info.id);
    assert_eq!(bench[0].metadata["seed"], "7");
    assert_eq!(bench[0].outcome, "success");
    assert!(bench[0].metadata["config_hash"].as_str().unwrap().len() == 16);
    assert!(core.audit().unwrap().verify_integrity().is_ok());
    // Progress: the start, one line per item with running counts, the end.
    assert!(
        matches!(&seen[0], Progress::Started { families, .. } if families.len() == FamilyId::ALL.len()
        && families.iter().all(|f| f.1 == 3 && f.2 == 0))
    );
    let finished: Vec<&Progress> = seen
        .iter()
        .filter(|p| matches!(p, Progress::TaskFinished { .. }))
        .collect();
    assert_eq!(finished.len(), items);
    assert!(matches!(
        seen.last(),
        Some(Progress::Finished {
            status: RunStatus::Complete,
            ..
        })
    ));
}

#[tokio::test]
async fn right_answers_score_one_through_the_whole_path() {
    // The families scored on the answer alone (TOME and ASR: see the scripted tests below).
    let families = [
        FamilyId::Cplc,
        FamilyId::Msga,
        FamilyId::Wmrt,
        FamilyId::Icsd,
    ];
    let tasks = plan(&families, 4, 1).generate().unwrap();
    // A scripted mock that answers each prompt with its expected answer.
    let (core, _ws) = core_with(|c| {
        c.model.mock.script = tasks
            .iter()
            .map(|t| MockRule {
                pattern: format!("^{}", regex::escape(&t.prompt)),
                response: format!("Working it out.\nANSWER: {}", t.expected),
                fail: None,
                tool_calls: Vec::new(),
                repeat: false,
            })
            .collect();
    });
    let store = Arc::new(BenchStore::in_memory().unwrap());
    let report = Runner::new(core, store)
        .start(
            &plan(&families, 4, 1),
            &CancellationToken::new(),
            &mut |_| {},
        )
        .await
        .unwrap();
    for f in &report.summary.families {
        assert_eq!(f.score.mean, 1.0, "{}", f.family);
    }
    assert_eq!(report.summary.v_score.score.mean, 1.0);
    // Four of four right is not certainty: the interval is Wilson's, below 1.
    let v = report.summary.v_score.score;
    assert!(v.se.is_some_and(|se| se > 0.0), "{v:?}");
    assert!(v.ci_low.is_some_and(|lo| lo < 1.0), "{v:?}");
}

#[tokio::test]
async fn a_cancelled_run_keeps_what_finished_and_resume_runs_only_the_rest() {
    let (core, _ws) = core_with(|c| c.runtime.max_concurrent = 2);
    let store = Arc::new(BenchStore::in_memory().unwrap());
    let runner = Runner::new(core.clone(), store.clone());
    let cancel = CancellationToken::new();
    let mut finished = 0;
    let report = runner
        .start(
            &plan(&[FamilyId::Msga, FamilyId::Icsd], 5, 2),
            &cancel,
            &mut |p| {
                if matches!(p, Progress::TaskFinished { .. }) {
                    finished += 1;
                    if finished == 6 {
                        cancel.cancel();
                    }
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(report.info.status, RunStatus::Cancelled);
    let before = store.results(&report.info.id).unwrap();
    assert!(
        before.len() >= 6 && before.len() < 20,
        "{} stored",
        before.len()
    );
    assert_eq!(report.finished_now, before.len());
    let bench = of_type(&core, AuditEventType::Benchmark);
    assert_eq!(bench.len(), 1);
    assert_eq!(bench[0].outcome, "cancelled");

    // Resume by a prefix of the id.
    let prefix = &report.info.id[..report.info.id.len() - 2];
    let mut started = None;
    let resumed = runner
        .resume(prefix, &CancellationToken::new(), &mut |p| {
            if let Progress::Started { families, .. } = p {
                started = Some(families);
            }
        })
        .await
        .unwrap();
    assert_eq!(resumed.info.status, RunStatus::Complete);
    assert_eq!(resumed.finished_now, 20 - before.len());
    let done: usize = started.unwrap().iter().map(|f| f.2).sum();
    assert_eq!(done, before.len());
    let after = store.results(&report.info.id).unwrap();
    assert_eq!(after.len(), 20);
    for r in &before {
        assert!(
            after.contains(r),
            "{} epoch {} was rerun",
            r.task_id,
            r.epoch
        );
    }
    assert_eq!(of_type(&core, AuditEventType::Benchmark).len(), 2);
    // A complete run cannot be resumed.
    let again = runner
        .resume(&report.info.id, &CancellationToken::new(), &mut |_| {})
        .await;
    assert!(matches!(again, Err(VeyraError::Usage(m)) if m.contains("already complete")));
}

#[tokio::test]
async fn failed_executions_are_kept_as_zero_with_their_error() {
    let (core, _ws) = core_with(|c| {
        c.runtime.retries = 0;
        c.model.retries = 0;
        c.model.mock.fail = Some(crate::config::MockFailure {
            kind: crate::config::MockFailureKind::BadRequest,
            after_tokens: 0,
            message: Some("injected".into()),
        });
    });
    let store = Arc::new(BenchStore::in_memory().unwrap());
    let report = Runner::new(core, store.clone())
        .start(
            &plan(&[FamilyId::Cplc], 2, 1),
            &CancellationToken::new(),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(report.info.status, RunStatus::Complete);
    let results = store.results(&report.info.id).unwrap();
    assert!(results.iter().all(|r| r.error.is_some() && r.score == 0.0));
    assert_eq!(report.summary.families[0].errors, 2);
}

#[test]
fn the_work_list_interleaves_families_and_skips_what_is_done() {
    let tasks = plan(&[FamilyId::Cplc, FamilyId::Msga], 2, 1)
        .generate()
        .unwrap();
    let mut done = BTreeSet::new();
    done.insert((tasks[0].id.as_str(), 0));
    let work = remote::work_list(&tasks, 2, &done);
    // Tasks: cplc0 cplc1 msga0 msga1 (indices 0..4).
    assert_eq!(
        work,
        vec![(2, 0), (1, 0), (3, 0), (0, 1), (2, 1), (1, 1), (3, 1)]
    );
}

#[test]
fn work_solved_elsewhere_goes_in_the_same_chunks_however_much_of_it_is_done() {
    let tasks = plan(&[FamilyId::Cplc, FamilyId::Msga], 20, 1)
        .generate()
        .unwrap();
    let none = BTreeSet::new();
    let fresh = remote::work(&tasks, 1, &none, Some(16));
    // 40 items: two full chunks and the rest, every item wanted.
    assert_eq!(fresh.iter().map(Vec::len).collect::<Vec<_>>(), [16, 16, 8]);
    assert!(fresh.iter().flatten().all(|&(_, _, wanted)| wanted));
    // At home, one item at a time.
    let home = remote::work(&tasks, 1, &none, None);
    assert_eq!(home.len(), 40);
    assert!(home.iter().all(|c| c.len() == 1));
    // Resumed with the first chunk whole and one item of the second done: the first is not
    // asked for, the second is the same chunk with that item not wanted.
    let mut done = BTreeSet::new();
    for &(i, e, _) in fresh[0].iter().chain(&fresh[1][..1]) {
        done.insert((tasks[i].id.as_str(), e));
    }
    let resumed = remote::work(&tasks, 1, &done, Some(16));
    assert_eq!(resumed.len(), 2);
    let items = |c: &remote::Chunk| c.iter().map(|&(i, e, _)| (i, e)).collect::<Vec<_>>();
    assert_eq!(items(&resumed[0]), items(&fresh[1]));
    assert!(!resumed[0][0].2 && resumed[0][1..].iter().all(|&(_, _, w)| w));
    assert_eq!(resumed[1], fresh[2]);
}

#[test]
fn chunks_follow_the_runs_size_within_their_bounds() {
    // Small runs go an item to a chunk, so even a few items spread over many workers.
    assert_eq!(chunk_for(0), 1);
    assert_eq!(chunk_for(40), 1);
    assert_eq!(chunk_for(2 * MIN_CHUNKS - 1), 1);
    assert_eq!(chunk_for(2 * MIN_CHUNKS), 2);
    assert_eq!(chunk_for(3_000), 23);
    // `--family all --count 1000`: 7,000 items, 32 to a chunk, 219 chunks.
    assert_eq!(chunk_for(7_000), MAX_CHUNK);
    assert_eq!(7_000usize.div_ceil(chunk_for(7_000)), 219);
    // Large runs stop at the most a chunk carries.
    assert_eq!(chunk_for(MAX_CHUNK * MIN_CHUNKS), MAX_CHUNK);
    assert_eq!(chunk_for(usize::MAX), MAX_CHUNK);
    // A solver's own figure is held within the bounds too (nothing is dropped or duplicated).
    let tasks = plan(&[FamilyId::Cplc], 10, 1).generate().unwrap();
    for asked in [0, 1, 3, MAX_CHUNK + 1, usize::MAX] {
        let work = remote::work(&tasks, 1, &BTreeSet::new(), Some(asked));
        assert!(work.iter().all(|c| (1..=MAX_CHUNK).contains(&c.len())));
        assert_eq!(work.iter().map(Vec::len).sum::<usize>(), 10, "{asked}");
    }
}

/// Solves items through a core of its own, as a worker would, in the chunks it is asked
/// for, and counts them and how many it was solving at once.
#[derive(Debug)]
struct CountingSolver {
    core: VeyraCore,
    chunk: usize,
    room: Option<usize>,
    chunks: std::sync::Mutex<Vec<usize>>,
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    /// Cancelled once the first chunk is solved (a run stopped part way).
    stop: Option<CancellationToken>,
    /// Rooms it says in turn (the last one from then on) instead of `room`, and a chunk that
    /// waits for the second saying (a worker joining while the run goes).
    rooms: Option<(
        Vec<usize>,
        std::sync::atomic::AtomicUsize,
        tokio::sync::Notify,
    )>,
}

impl CountingSolver {
    fn new(core: VeyraCore, chunk: usize, room: Option<usize>) -> CountingSolver {
        CountingSolver {
            core,
            chunk,
            room,
            chunks: Default::default(),
            now: Default::default(),
            most: Default::default(),
            stop: None,
            rooms: None,
        }
    }
}

impl ItemSolver for CountingSolver {
    fn solve<'a>(
        &'a self,
        items: &'a [ItemRef<'a>],
        target: &'a Target,
        cancel: &'a CancellationToken,
    ) -> futures_util::future::BoxFuture<'a, Vec<Result<SolvedItem, VeyraError>>> {
        use std::sync::atomic::Ordering::SeqCst;
        Box::pin(async move {
            self.chunks.lock().unwrap().push(items.len());
            let now = self.now.fetch_add(items.len(), SeqCst) + items.len();
            self.most.fetch_max(now, SeqCst);
            // Every chunk waits for the others the run keeps in flight to start.
            tokio::task::yield_now().await;
            if let Some((_, asked, grown)) = &self.rooms
                && asked.load(SeqCst) < 2
            {
                // Not for ever: a run that never asks again fails the test rather than hang it.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), grown.notified())
                    .await;
            }
            let mut out = Vec::new();
            for item in items {
                out.push(solve_item(&self.core, item.task, item.epoch, target, cancel).await);
            }
            self.now.fetch_sub(items.len(), SeqCst);
            if let Some(stop) = &self.stop {
                stop.cancel();
            }
            out
        })
    }

    fn chunk(&self, _total: usize) -> usize {
        self.chunk
    }

    fn room(&self) -> futures_util::future::BoxFuture<'_, Option<usize>> {
        use std::sync::atomic::Ordering::SeqCst;
        let Some((said, asked, grown)) = &self.rooms else {
            return Box::pin(std::future::ready(self.room));
        };
        let n = asked.fetch_add(1, SeqCst);
        if n + 1 >= 2 {
            grown.notify_waiters();
        }
        Box::pin(std::future::ready(said.get(n).or(said.last()).copied()))
    }
}

/// Twenty items (ten of CPLC, ten of MSGA) through the runner `runner` makes over an
/// in-memory store: the run completes with a result for each.
async fn complete_twenty(runner: impl FnOnce(Arc<BenchStore>) -> Runner) {
    let store = Arc::new(BenchStore::in_memory().unwrap());
    let report = runner(store.clone())
        .start(
            &plan(&[FamilyId::Cplc, FamilyId::Msga], 10, 1),
            &CancellationToken::new(),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(report.info.status, RunStatus::Complete);
    assert_eq!(store.results(&report.info.id).unwrap().len(), 20);
}

#[tokio::test]
async fn a_run_solved_elsewhere_goes_in_the_solvers_chunks_and_fills_its_room() {
    for (room, most) in [(Some(8), 8), (None, 20)] {
        let (core, _ws) = core_with(|_| {});
        let (worker, _wws) = core_with(|_| {});
        let solver = Arc::new(CountingSolver::new(worker, 4, room));
        complete_twenty(|store| {
            Runner::new(core, store)
                .with_in_flight(20)
                .with_solver(solver.clone())
        })
        .await;
        // 20 items, four to a chunk.
        assert_eq!(*solver.chunks.lock().unwrap(), [4; 5]);
        // As many in flight as the solver has room for, or, when it does not say, the run's
        // own figure.
        let seen = solver.most.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(seen, most, "room {room:?}");
    }
}

#[tokio::test]
async fn a_room_that_grows_while_the_run_goes_is_taken_up() {
    let (core, _ws) = core_with(|_| {});
    let (worker, _wws) = core_with(|_| {});
    // One chunk of four at first; twenty items' room once a worker has joined.
    let mut solver = CountingSolver::new(worker, 4, None);
    solver.rooms = Some((vec![4, 20], Default::default(), Default::default()));
    let solver = Arc::new(solver);
    complete_twenty(|store| {
        Runner::new(core, store)
            .with_solver(solver.clone())
            .with_room_every(std::time::Duration::from_millis(10))
    })
    .await;
    // The first chunk went alone; once it ended, the other four went together.
    assert_eq!(solver.most.load(std::sync::atomic::Ordering::SeqCst), 16);
}

#[tokio::test]
async fn a_resumed_run_cuts_the_chunks_it_first_went_out_with_and_refuses_a_changed_figure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let store = Arc::new(BenchStore::open(&path).unwrap());
    let (core, _ws) = core_with(|_| {});
    let (worker, _wws) = core_with(|_| {});
    let plan = plan(&[FamilyId::Cplc, FamilyId::Msga], 10, 1);
    // Four to a chunk, one chunk in flight, stopped once the first is solved.
    let stop = CancellationToken::new();
    let mut first = CountingSolver::new(worker.clone(), 4, Some(4));
    first.stop = Some(stop.clone());
    let report = Runner::new(core.clone(), store.clone())
        .with_solver(Arc::new(first))
        .start(&plan, &stop, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.info.status, RunStatus::Cancelled);
    assert_eq!(store.results(&report.info.id).unwrap().len(), 4);
    let id = report.info.id.clone();
    // Someone changed the kept figure: the run is not resumed with chunks cut otherwise.
    let tamper = |chunk: i64| {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE run_chunks SET chunk = ?1", [chunk])
            .unwrap();
    };
    for bad in [0, -1, MAX_CHUNK as i64 + 1] {
        tamper(bad);
        let refused = Runner::new(core.clone(), store.clone())
            .with_solver(Arc::new(CountingSolver::new(worker.clone(), 4, None)))
            .resume(&id, &CancellationToken::new(), &mut |_| {})
            .await;
        let Err(e) = refused else {
            panic!("resumed with the chunk size {bad}")
        };
        let said = e.to_string();
        let want = format!(
            "run {id}: its items went {bad} to a chunk, and this version cuts 1 to {MAX_CHUNK}; \
             resume it with the version that started it"
        );
        assert!(said.contains(&want), "{said}");
        // Refused before it was reopened: still as it stopped.
        assert_eq!(store.resolve(&id).unwrap().status, RunStatus::Cancelled);
    }
    tamper(4);
    // This version would cut five to a chunk: the run's four stay.
    let second = Arc::new(CountingSolver::new(worker, 5, None));
    let report = Runner::new(core, store.clone())
        .with_solver(second.clone())
        .resume(&id, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.info.status, RunStatus::Complete);
    assert_eq!(store.results(&id).unwrap().len(), 20);
    assert_eq!(*second.chunks.lock().unwrap(), [4; 4]);
    assert_eq!(store.run_chunk(&id, 9, MAX_CHUNK).unwrap(), 4);
}

#[test]
fn requests_run_as_benchmark_unattended_without_tools() {
    let task = &plan(&[FamilyId::Icsd], 1, 1).generate().unwrap()[0];
    let r = request_for(task);
    assert_eq!(r.actor, "benchmark");
    assert!(r.unattended);
    assert_eq!(r.tools, Some(ToolSelection::None));
    assert_eq!(r.system.as_deref(), Some(task.system.as_str()));
}

#[test]
fn plans_come_from_the_config() {
    let mut bench = BenchConfig {
        family: "wmrt,cplc".into(),
        ..BenchConfig::default()
    };
    bench.weights.insert("wmrt".into(), 2.0);
    let p = RunPlan::from_config(&bench).unwrap();
    assert_eq!(p.families, vec![FamilyId::Cplc, FamilyId::Wmrt]);
    assert_eq!(p.family_weights()[&FamilyId::Wmrt], 2.0);
    assert_eq!(p.family_weights().len(), 2);
    assert_eq!(
        config_hash(&VeyraConfig::default()),
        config_hash(&VeyraConfig::default())
    );
    let id = new_run_id();
    assert_eq!(id.len(), "20260101-000000-abcdef12".len());
}

/// IMDP dialogues played out through the runner, turn by turn.
mod dialogue;
/// Scripted good and bad models on TOME and ASR, through the real tools and the gate.
mod scripted;
