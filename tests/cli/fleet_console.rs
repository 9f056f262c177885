//! One console over the fleet against one attached to a worker's own socket: the same Tasks
//! pane, cell for cell and style for style (a worker in this process, serving its runtime on
//! its socket and on the bus through one service, as `veyra worker` does).

use std::time::Duration;

use chrono::Utc;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc::Receiver;
use tokio_util::sync::CancellationToken;
use veyra::config::{AuditStoreKind, VeyraConfig};
use veyra::core::{ConfirmationPolicy, VeyraCore};
use veyra::events::{ExecutionId, LinkStatus, Priority};
use veyra::fleet::wire::{TASK_FORMAT, TaskMessage};
use veyra::fleet::{Fleet, Submitter, Worker, WorkerOptions};
use veyra::service::{Client, Inbound, Service};
use veyra::tui::app::{App, LinkView};
use veyra::tui::keymap::KeyMap;
use veyra::tui::theme::Theme;

use super::fleet::nats_server;

/// A console's view, as the loop folds what its session brings, until the snapshot is in.
async fn folded(inbound: &mut Receiver<Inbound>, link: LinkStatus) -> App {
    let mut app = App::new(
        LinkView {
            backend: "mock".into(),
            model: "veyra-mock-1".into(),
            link,
        },
        false,
        KeyMap::default(),
        vec![veyra::config::theme::default_theme().unwrap()],
        Utc::now(),
    );
    let fold = async {
        loop {
            match inbound.recv().await.expect("the session goes on") {
                Inbound::Resync { missed, .. } => app.resync(missed),
                Inbound::Event(event) => app.apply(event),
                Inbound::Live => break,
                Inbound::Closed(why) => panic!("the session closed: {why}"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), fold)
        .await
        .expect("the snapshot comes within 30 s");
    app
}

/// The Tasks pane alone, as the console draws it.
fn tasks_pane(app: &App) -> Terminal<TestBackend> {
    let theme = Theme::from(app.current_theme().unwrap());
    let mut terminal = Terminal::new(TestBackend::new(100, 8)).unwrap();
    terminal
        .draw(|f| veyra::tui::panes::tasks::render(app, &theme, f, f.area()))
        .unwrap();
    terminal
}

/// The pane's text with what differs run to run (a task's duration) put as `⟨t⟩`.
fn redacted(terminal: &Terminal<TestBackend>) -> String {
    let text = terminal.backend().to_string();
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|word| {
                    let digits = word.trim_end_matches(['m', 's', '│', '"']);
                    let unit = &word[digits.len()..];
                    if !digits.is_empty()
                        && unit.starts_with(['m', 's'])
                        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
                    {
                        format!(
                            "{:>w$}",
                            format!("⟨t⟩{}", unit.trim_start_matches(['m', 's'])),
                            w = word.chars().count()
                        )
                    } else {
                        word.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_over_the_fleet_shows_the_tasks_pane_of_one_attached_to_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_server, url)) = nats_server(dir.path()) else {
        return;
    };
    let mut config = VeyraConfig::default();
    config.governance.store = AuditStoreKind::Sqlite;
    config.governance.store_path = Some(dir.path().join("worker").join("audit.db"));
    config.governance.witness_dir = Some(dir.path().join("witness"));
    config.tools.workspace = Some(dir.path().join("ws"));
    config.latency.simulate = false;
    config.nats.url = Some(url);
    config.nats.ack_wait_ms = 2_000;
    let core = VeyraCore::new(config.clone()).unwrap();
    core.set_confirmation_policy(ConfirmationPolicy::DenyAll);
    // As `veyra worker` serves it: one service on its socket and on the bus.
    let bench = veyra::service::bench::BenchHost::new(&core);
    let service = Service::new(&core, &bench, "worker").unwrap();
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    std::fs::set_permissions(
        &run_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let socket = run_dir.join("worker.sock");
    let _served = service.serve(&socket).unwrap();
    let worker = Worker::new(
        Fleet::connect(&config.nats, None).await.unwrap(),
        core.clone(),
        WorkerOptions {
            name: "gpu-1".into(),
            in_flight: 16,
        },
    )
    .with_service(service);
    let stop = CancellationToken::new();
    let running = {
        let stop = stop.clone();
        tokio::spawn(async move { worker.run(stop).await })
    };
    // Tasks through the fleet at four priorities: one refused by the worker (a tool it does
    // not have), three answered.
    let submitter = Submitter::new(Fleet::connect(&config.nats, None).await.unwrap());
    let tasks = [
        (
            "Rotate the antenna",
            Priority::Critical,
            Some("no_such_tool"),
        ),
        (
            "Check the power budget for the next two sols",
            Priority::High,
            None,
        ),
        ("Summarise the habitat telemetry", Priority::Normal, None),
        ("Queue a background sweep", Priority::Background, None),
    ];
    for (prompt, priority, tools) in tasks {
        let mut submission = submitter
            .submit(TaskMessage {
                format: TASK_FORMAT.into(),
                id: ExecutionId::new(),
                prompt: prompt.into(),
                priority,
                system: None,
                backend: None,
                model: None,
                tools: Some(tools.unwrap_or("none").into()),
                by: "the snapshot test".into(),
                items: Vec::new(),
            })
            .await
            .unwrap();
        let follow = async {
            while let Some(event) = submission.next().await {
                event.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(30), follow)
            .await
            .unwrap();
    }
    let link = core.link_status();
    let (_local, mut local_in) = Client::connect(&socket, "console", true)
        .await
        .unwrap()
        .expect("the worker serves its socket");
    let (_over, mut fleet_in) = veyra::fleet::attach(
        Fleet::connect(&config.nats, None).await.unwrap(),
        &config,
        "console",
    )
    .await
    .unwrap();
    let mut local = folded(&mut local_in, link.clone()).await;
    let mut fleet = folded(&mut fleet_in, link).await;
    // The task the worker refused (a tool it does not have) never reached its core, and is
    // shown all the same: submitted, and failed with why.
    assert_eq!(local.tasks().len(), 4);
    let now = Utc::now();
    local.tick(now);
    fleet.tick(now);
    let (a, b) = (tasks_pane(&local), tasks_pane(&fleet));
    assert_eq!(
        a.backend().buffer(),
        b.backend().buffer(),
        "the same cells and styles:\n{}\n{}",
        a.backend(),
        b.backend()
    );
    insta::assert_snapshot!(redacted(&b));
    // The refused task reads as a failure: its mark in the theme's error colour (the first
    // row; the newest, selected, is drawn in the selection's colours).
    let theme = Theme::from(fleet.current_theme().unwrap());
    let mark = &b.backend().buffer()[(1, 1)];
    assert_eq!(mark.symbol(), "✗");
    assert_eq!(Some(mark.fg), theme.error.fg);
    stop.cancel();
    let _ = running.await;
}
