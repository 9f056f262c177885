//! The runtime's benchmark runs on their own: plans, one run at a time, news in order,
//! cancelling and resuming, and a demo's runs kept out of `bench.db`.

use std::time::Duration;

use super::*;
use crate::benchmarks::{Difficulty, FamilyId::Cplc, RunStatus};

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

/// The news up to the run's end, waiting at most a minute for each (a guard against a hang,
/// not a measurement).
async fn until_end(news: &mut UnboundedReceiver<BenchNews>) -> Vec<BenchNews> {
    let mut seen = Vec::new();
    loop {
        let piece = tokio::time::timeout(Duration::from_secs(60), news.recv())
            .await
            .expect("news within a minute")
            .expect("the host is there");
        let end = piece.is_end();
        seen.push(piece);
        if end {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_counts_the_executions_and_the_run_approved_takes_its_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let core = VeyraCore::new(config_in(dir.path())).unwrap();
    let host = BenchHost::new(&core);
    let plan = host.plan(request()).await.unwrap();
    let tasks = host.run_plan(&request()).unwrap().generate().unwrap();
    let chars: usize = tasks
        .iter()
        .map(|t| t.prompt.chars().count() + t.system.chars().count())
        .sum();
    assert_eq!(plan.executions, 3 * 2, "3 tasks × 2 epochs");
    assert_eq!(plan.prompt_tokens, chars.div_ceil(4) as u64 * 2);
    assert!(plan.prompt_tokens > 0);
    assert_eq!((plan.backend.as_str(), plan.epochs), ("mock", 2));
    assert_eq!(plan.families, vec![Cplc]);
    // The run approved takes the tasks generated for its plan.
    let began = host.start(&request(), None, None, false).unwrap();
    assert!(host.planned.lock().unwrap().is_none());
    assert_eq!(
        (began.families, began.count, began.by.as_str()),
        (vec![Cplc], 3, "operator")
    );
    host.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_at_a_time_told_in_order_to_every_sink_and_cancelled_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    // Slow enough that the run is still going when it is cancelled.
    config.model.mock.token_delay_ms = 20;
    let core = VeyraCore::new(config).unwrap();
    let host = BenchHost::new(&core);
    let mut first = host.subscribe();
    let mut second = host.subscribe();
    assert_eq!(host.cancel(None).unwrap_err(), "no benchmark run is going");
    let by = Caller {
        pid: Some(4242),
        uid: 1000,
        transport: "unix".into(),
    };
    let big = BenchRequest {
        count: Some(200),
        ..request()
    };
    let first_run = host.start(&big, None, Some(by), false).unwrap().number;
    let refused = host.start(&request(), None, None, false).unwrap_err();
    assert!(
        refused.contains("already going") && refused.contains("4242"),
        "{refused}"
    );
    // The run's first news: it began, then the runner started it.
    let began = first.recv().await.unwrap();
    let BenchNews::Began(began) = began else {
        panic!("{began:?}")
    };
    assert!(began.by.contains("4242"), "{}", began.by);
    assert!(matches!(
        first.recv().await.unwrap(),
        BenchNews::Progress {
            progress: Progress::Started { .. }
        }
    ));
    // A cancel naming another run stops nothing.
    assert!(host.cancel(Some(first_run + 1)).is_err());
    host.cancel(Some(first_run)).unwrap();
    let seen = until_end(&mut first).await;
    let Some(BenchNews::Ended {
        run: Some(info),
        summary: Some(_),
        error: None,
        ..
    }) = seen.last()
    else {
        panic!("{:?}", seen.last())
    };
    assert_eq!(info.status, RunStatus::Cancelled);
    // Every sink got the same news in the same order.
    let all = until_end(&mut second).await;
    assert_eq!(all.len(), seen.len() + 2);
    assert_eq!(&all[2..], &seen[..]);
    // Resuming finishes it; a complete run is not resumed again.
    let id = info.id.clone();
    let began = host
        .start(&BenchRequest::default(), Some(&id), None, false)
        .unwrap();
    assert_eq!(began.resumed.as_deref(), Some(id.as_str()));
    host.close().await;
    let refused = host
        .start(&BenchRequest::default(), Some("no-such-run"), None, false)
        .unwrap_err();
    assert!(refused.contains("no-such-run"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_finishes_and_then_cannot_be_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let core = VeyraCore::new(config_in(dir.path())).unwrap();
    let host = BenchHost::new(&core);
    let mut news = host.subscribe();
    let first = BenchRequest {
        epochs: Some(1),
        ..request()
    };
    host.start(&first, None, None, false).unwrap();
    let seen = until_end(&mut news).await;
    let Some(BenchNews::Ended {
        run: Some(info), ..
    }) = seen.last()
    else {
        panic!("{:?}", seen.last())
    };
    assert_eq!(info.status, RunStatus::Complete);
    let refused = host
        .start(&BenchRequest::default(), Some(&info.id), None, false)
        .unwrap_err();
    assert!(refused.contains("already complete"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_runs_stay_in_memory_out_of_bench_db() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    crate::tui::apply_demo(&mut config).unwrap();
    // The tour's Mars link and slow tokens are not what this test is about.
    config.latency.simulate = false;
    config.model.mock.token_delay_ms = 0;
    let core = VeyraCore::new(config).unwrap();
    let host = BenchHost::new(&core);
    assert!(host.unkept().is_some());
    let mut news = host.subscribe();
    let request = BenchRequest {
        epochs: Some(1),
        ..request()
    };
    host.start(&request, None, None, false).unwrap();
    let seen = until_end(&mut news).await;
    assert!(
        matches!(seen.last(), Some(BenchNews::Ended { error: None, .. })),
        "{seen:?}"
    );
    host.close().await;
    assert!(!dir.path().join("bench.db").exists());
    // A runtime with a durable audit store keeps its runs.
    let kept = BenchHost::new(&VeyraCore::new(config_in(dir.path())).unwrap());
    assert!(kept.unkept().is_none());
}

#[test]
fn news_round_trips_through_json() {
    let news = BenchNews::Progress {
        progress: Progress::TaskFinished {
            family: Cplc,
            task_id: "cplc-1".into(),
            cluster: "cplc-1".into(),
            epoch: 1,
            score: 0.5,
            reason: "half".into(),
            failed: false,
            done: 1,
            total: 3,
        },
    };
    let text = serde_json::to_string(&news).unwrap();
    assert!(text.contains(r#""news":"progress""#) && text.contains(r#""step":"task_finished""#));
    assert_eq!(serde_json::from_str::<BenchNews>(&text).unwrap(), news);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_end_is_told_before_the_next_begins_and_an_old_cancel_stops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let core = VeyraCore::new(config_in(dir.path())).unwrap();
    let host = BenchHost::new(&core);
    let mut news = host.subscribe();
    let tiny = BenchRequest {
        count: Some(1),
        epochs: Some(1),
        ..request()
    };
    // Each run started the moment the one before is told to have ended, as a client that
    // hears the end and starts again does.
    let mut numbers = Vec::new();
    for _ in 0..5 {
        let began = loop {
            match host.start(&tiny, None, None, false) {
                Ok(b) => break b,
                Err(e) if e.contains("already going") => tokio::task::yield_now().await,
                Err(e) => panic!("{e}"),
            }
        };
        numbers.push(began.number);
        let seen = until_end(&mut news).await;
        // Every piece between this run's began and its end is this run's.
        let BenchNews::Began(b) = &seen[0] else {
            panic!("{seen:?}")
        };
        assert_eq!(b.number, began.number);
        assert_eq!(
            seen.iter()
                .filter(|n| matches!(n, BenchNews::Began(_)))
                .count(),
            1
        );
        // A cancel meant for this run, arriving after its end, stops nothing.
        assert!(host.cancel(Some(began.number)).is_err());
    }
    assert_eq!(numbers, vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_request_from_the_wire_is_held_to_the_configurations_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let core = VeyraCore::new(config_in(dir.path())).unwrap();
    let host = BenchHost::new(&core);
    for (bad, needle) in [
        (
            BenchRequest {
                count: Some(4_000_000_000),
                ..request()
            },
            "count 4000000000 is out of range",
        ),
        (
            BenchRequest {
                count: Some(0),
                ..request()
            },
            "count 0 is out of range",
        ),
        (
            BenchRequest {
                epochs: Some(1_000),
                ..request()
            },
            "epochs 1000 is out of range",
        ),
        (
            BenchRequest {
                families: Some(vec![]),
                ..request()
            },
            "no family",
        ),
        (
            BenchRequest {
                families: Some(vec![Cplc, Cplc]),
                ..request()
            },
            "named twice",
        ),
    ] {
        let planned = host.plan(bad.clone()).await.unwrap_err();
        assert!(planned.contains(needle), "{planned}");
        let started = host.start(&bad, None, None, false).unwrap_err();
        assert!(started.contains(needle), "{started}");
    }
    assert!(!host.running());
}

/// A suite of `n` arithmetic samples, read as the file `name` would be.
fn suite_of(n: usize, name: &str) -> Arc<crate::benchmarks::suite::Suite> {
    let mut text = String::from("name: sums\nversion: \"2\"\nscorer: {type: number}\nsamples:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  - {{id: s{i}, input: \"What is {i} plus 1?\", target: {}}}\n",
            i + 1
        ));
    }
    Arc::new(
        crate::benchmarks::suite::format::from_text(&text, std::path::Path::new(name), None)
            .unwrap(),
    )
}

fn job(suite: &Arc<crate::benchmarks::suite::Suite>, resume: Option<String>) -> SuiteJob {
    SuiteJob {
        suite: Arc::clone(suite),
        source: "sums.yaml".into(),
        map: String::new(),
        resume,
        count: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_runs_in_the_run_slot_kept_as_it_goes_cancelled_and_resumed_with_what_it_had() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    // Slow enough that the run is still going when it is cancelled.
    config.model.mock.token_delay_ms = 10;
    let core = VeyraCore::new(config).unwrap();
    let host = BenchHost::new(&core);
    let suite = suite_of(40, "sums.yaml");
    let mut news = host.subscribe();
    let by = Caller {
        pid: Some(77),
        uid: 1000,
        transport: "unix".into(),
    };
    let began = host
        .start_suite(job(&suite, None), Some(by), false)
        .unwrap();
    let label = began.suite.clone().unwrap();
    assert_eq!((label.total, label.earlier), (40, 0));
    assert!(began.families.is_empty());
    assert_eq!(began.label(), "suite sums v2 · 40 samples");
    // One run at a time, the families' and the suites' alike.
    let refused = host.start(&request(), None, None, false).unwrap_err();
    assert!(
        refused.contains("already going") && refused.contains("77"),
        "{refused}"
    );
    // Cancelled once a few samples finished: each was kept as it finished.
    let mut seen = 0;
    while seen < 3 {
        if let BenchNews::Sample { sample } = news.recv().await.unwrap() {
            assert_eq!(sample.total, 40);
            seen += 1;
        }
    }
    host.cancel(Some(began.number)).unwrap();
    let rest = until_end(&mut news).await;
    let Some(BenchNews::Ended {
        suite: Some(end),
        error: None,
        ..
    }) = rest.last()
    else {
        panic!("{:?}", rest.last())
    };
    assert_eq!(end.run.status, RunStatus::Cancelled);
    let store = host.store().unwrap();
    let kept = store.suite_samples(&label.run).unwrap().len();
    let told = seen
        + rest
            .iter()
            .filter(|n| matches!(n, BenchNews::Sample { .. }))
            .count();
    assert_eq!(kept, told, "every sample told was kept, and only those");
    assert_eq!(end.summary.n, kept);
    assert!(kept < 40);
    // A changed file is another suite: not resumed.
    let changed = suite_of(41, "sums.yaml");
    let refused = host
        .start_suite(job(&changed, Some(label.run.clone())), None, false)
        .unwrap_err();
    assert!(
        refused.to_string().contains("changed suite is a new run"),
        "{refused}"
    );
    // Resumed: only the samples it lacks run, and it completes.
    let resumed = host
        .start_suite(job(&suite, Some("last".into())), None, false)
        .unwrap();
    let again = resumed.suite.unwrap();
    assert_eq!(
        (again.run.as_str(), again.earlier),
        (label.run.as_str(), kept as u64)
    );
    let rest = until_end(&mut news).await;
    let samples = rest
        .iter()
        .filter(|n| matches!(n, BenchNews::Sample { .. }))
        .count();
    assert_eq!(samples, 40 - kept, "nothing finished was run again");
    let Some(BenchNews::Ended {
        suite: Some(end),
        error: None,
        ..
    }) = rest.last()
    else {
        panic!("{:?}", rest.last())
    };
    assert_eq!(end.run.status, RunStatus::Complete);
    assert_eq!((end.summary.n, end.summary.total), (40, 40));
    assert_eq!(store.suite_samples(&label.run).unwrap().len(), 40);
    // The run's BENCHMARK entries name the client that asked for the first part.
    let entries = core.audit().unwrap().query(&Default::default()).unwrap();
    let runs: Vec<_> = entries
        .iter()
        .filter(|e| e.event_type == crate::governance::AuditEventType::Benchmark)
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].metadata["client"]["pid"], 77, "{:?}", runs[0]);
    assert_eq!(runs[1].action, "resume_suite");
    host.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sends_a_suite_the_runtime_checks_runs_and_tells_every_console() {
    use crate::service::protocol::{Reply, Request, SuiteUpload};
    use crate::service::{Client, Server};
    let dir = tempfile::tempdir().unwrap();
    let core = VeyraCore::new(config_in(dir.path())).unwrap();
    let host = BenchHost::new(&core);
    let socket = dir.path().join("run").join("test.sock");
    let server = Server::start(&core, &host, &socket, "test").unwrap();
    let (_console, mut watching) = Client::connect(server.socket(), "console", true)
        .await
        .unwrap()
        .unwrap();
    let (client, mut followed) = Client::connect(server.socket(), "veyra bench", false)
        .await
        .unwrap()
        .unwrap();
    let upload = |text: &str, source: &str| SuiteUpload {
        source: source.into(),
        text: text.into(),
        map: None,
        count: None,
    };
    // A wrong file is refused as the CLI refuses it, naming the sample and the field; the
    // path is only a name (nothing is read from it).
    let bad = "name: x\nversion: \"1\"\nsamples:\n  - {id: a, input: q, target: 1, scorer: \
               {type: choice}}\n";
    let refused = client
        .request(Request::BenchSuite {
            suite: upload(bad, "/etc/shadow.yaml"),
            resume: None,
            follow: true,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.kind, "usage");
    assert!(
        refused.message.contains("/etc/shadow.yaml") && refused.message.contains("choice"),
        "{}",
        refused.message
    );
    let good = "name: sums\nversion: \"1\"\nscorer: {type: number}\nsamples:\n  - {id: one, \
                input: \"What is 1 plus 1?\", target: 2}\n  - {id: two, input: \"What is 2 \
                plus 2?\", target: 4}\n";
    let reply = client
        .request(Request::BenchSuite {
            suite: SuiteUpload {
                count: Some(0),
                ..upload(good, "sums.yaml")
            },
            resume: None,
            follow: true,
        })
        .await
        .unwrap_err();
    assert!(reply.message.contains("at least 1"), "{}", reply.message);
    // A file name with control characters, or one of megabytes, is refused before the text is
    // read; so is a count for a resumed run (it keeps its own samples).
    for source in [
        "sums\u{1b}[2J.yaml".to_string(),
        format!("{}.yaml", "x".repeat(5000)),
    ] {
        let refused = client
            .request(Request::BenchSuite {
                suite: upload(good, &source),
                resume: None,
                follow: true,
            })
            .await
            .unwrap_err();
        assert!(refused.message.contains("file name"), "{}", refused.message);
    }
    let refused = client
        .request(Request::BenchSuite {
            suite: SuiteUpload {
                count: Some(1),
                ..upload(good, "sums.yaml")
            },
            resume: Some("last".into()),
            follow: true,
        })
        .await
        .unwrap_err();
    assert!(
        refused.message.contains("count is for a new run"),
        "{}",
        refused.message
    );
    let reply = client
        .request(Request::BenchSuite {
            suite: upload(good, "sums.yaml"),
            resume: None,
            follow: true,
        })
        .await
        .unwrap();
    let Reply::BenchStarted { began } = reply else {
        panic!("{reply:?}")
    };
    assert!(began.by.contains("unix"), "{}", began.by);
    let mut mine = Vec::new();
    loop {
        let piece = next_bench(&mut followed).await;
        let end = piece.is_end();
        mine.push(piece);
        if end {
            break;
        }
    }
    let samples: Vec<_> = mine
        .iter()
        .filter_map(|n| match n {
            BenchNews::Sample { sample } => Some(sample.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(samples.len(), 2, "{mine:?}");
    let Some(BenchNews::Ended {
        suite: Some(end),
        error: None,
        ..
    }) = mine.last()
    else {
        panic!("{mine:?}")
    };
    assert_eq!(end.run.source, "sums.yaml");
    assert_eq!(end.run.status, RunStatus::Complete);
    // Kept in the runtime's store, where `veyra bench list` on this store finds it.
    let stored = host.store().unwrap().suite_runs().unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0.id, end.run.id);
    // The console saw the same run: its began, both samples and the end.
    let mut seen = Vec::new();
    loop {
        let piece = next_bench(&mut watching).await;
        let end = piece.is_end();
        seen.push(piece);
        if end {
            break;
        }
    }
    assert!(matches!(&seen[0], BenchNews::Began(b) if b.suite.is_some()));
    assert_eq!(&seen[1..], &mine[..]);
    drop(server);
    host.close().await;
}

/// The next benchmark news on `inbound` (other items skipped), waiting at most a minute.
async fn next_bench(
    inbound: &mut tokio::sync::mpsc::Receiver<crate::service::Inbound>,
) -> BenchNews {
    use crate::service::Inbound;
    let next = async {
        loop {
            match inbound.recv().await.expect("the session is open") {
                Inbound::Bench(news) => return news,
                Inbound::Closed(reason) => panic!("closed: {reason}"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), next)
        .await
        .expect("news within a minute")
}
