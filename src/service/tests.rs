//! The service through real sockets: a runtime serving a core, clients attached to it, and
//! clients that misbehave.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::protocol::{self, ClientMessage, PROTOCOL, Reply, Request, ServerMessage};
use super::*;
use crate::core::testing::core_with;
use crate::events::{Event, ExecutionId, Priority, TaskStatus};

/// A runtime serving a fresh core on a socket in a private temporary directory.
struct Served {
    core: VeyraCore,
    bench: std::sync::Arc<bench::BenchHost>,
    server: Server,
    _ws: tempfile::TempDir,
    dir: tempfile::TempDir,
}

fn served(f: impl FnOnce(&mut crate::config::VeyraConfig)) -> Served {
    let (core, ws) = core_with(f);
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run").join("test.sock");
    let bench = bench::BenchHost::new(&core);
    let server = Server::start(&core, &bench, &socket, "test").unwrap();
    Served {
        core,
        bench,
        server,
        _ws: ws,
        dir,
    }
}

/// Reads lines until `pred` holds for a parsed message (or 10 s pass).
async fn until<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
    mut pred: impl FnMut(&ServerMessage) -> bool,
) -> ServerMessage {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the runtime closed");
            let message: ServerMessage = serde_json::from_str(&line).unwrap();
            if pred(&message) {
                return message;
            }
        }
    })
    .await
    .expect("the awaited message never came")
}

async fn raw(
    served: &Served,
) -> (
    tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    tokio::net::unix::OwnedWriteHalf,
) {
    let stream = UnixStream::connect(served.server.socket()).await.unwrap();
    let (r, w) = stream.into_split();
    (BufReader::new(r).lines(), w)
}

/// A submission of `prompt` at `priority`, followed or not, with every other field default.
fn submit(prompt: &str, priority: Priority, follow: bool) -> Request {
    Request::Submit {
        prompt: prompt.into(),
        priority,
        system: None,
        backend: None,
        model: None,
        tools: None,
        follow,
    }
}

fn hello(events: bool) -> String {
    protocol::line(&ClientMessage::Hello {
        protocol: PROTOCOL.into(),
        client: "test".into(),
        events,
    }) + "\n"
}

#[tokio::test]
async fn a_console_sees_a_followed_run_and_the_audit_names_the_client_that_asked() {
    let s = served(|_| {});
    let (console, mut inbound) = Client::connect(s.server.socket(), "console", true)
        .await
        .unwrap()
        .expect("a runtime serves");
    assert_eq!(console.runtime.pid, std::process::id());
    assert_eq!(console.you.transport, "unix");
    assert_eq!(console.you.pid, Some(std::process::id() as i32));
    // The snapshot of an idle runtime: a resync, nothing, live.
    assert!(matches!(
        inbound.recv().await,
        Some(Inbound::Resync { missed: 0, .. })
    ));
    assert_eq!(inbound.recv().await, Some(Inbound::Live));

    let (run, mut followed) = Client::connect(s.server.socket(), "veyra run", false)
        .await
        .unwrap()
        .unwrap();
    let reply = run
        .request(submit("status report", Priority::High, true))
        .await
        .unwrap();
    let Reply::Submitted { id } = reply else {
        panic!("{reply:?}")
    };
    // The follower gets every event of its task, to its end.
    let mut text = String::new();
    loop {
        match followed.recv().await.unwrap() {
            Inbound::Event(Event::OutputDelta { text: t, .. }) => text.push_str(&t),
            Inbound::Event(e) if e.is_terminal() => {
                assert!(matches!(
                    e,
                    Event::TaskState {
                        status: TaskStatus::Succeeded,
                        ..
                    }
                ));
                break;
            }
            Inbound::Event(e) => assert_eq!(e.execution(), Some(id), "{e:?}"),
            other => panic!("a follower got {other:?}"),
        }
    }
    assert!(text.contains("status report"), "{text}");
    // The console saw the same task submitted, at its priority, and its end.
    let mut seen_submitted = false;
    loop {
        match inbound.recv().await.unwrap() {
            Inbound::Event(Event::TaskSubmitted {
                id: seen, priority, ..
            }) if seen == id => {
                assert_eq!(priority, Priority::High);
                seen_submitted = true;
            }
            Inbound::Event(e) if e.is_terminal() && e.execution() == Some(id) => break,
            _ => {}
        }
    }
    assert!(seen_submitted);
    // Every entry of the execution names the client: pid, uid, transport.
    let trail = s.core.audit().unwrap();
    let entries = trail.query(&Default::default()).unwrap();
    let of_task: Vec<_> = entries
        .iter()
        .filter(|e| e.metadata["execution_id"] == id.to_string())
        .collect();
    assert!(!of_task.is_empty());
    for entry in of_task {
        assert_eq!(
            entry.metadata["client"]["pid"],
            serde_json::json!(std::process::id()),
            "{entry:?}"
        );
        assert_eq!(entry.metadata["client"]["transport"], "unix");
    }
    assert!(trail.verify_integrity().is_ok());
}

#[tokio::test]
async fn a_console_attaching_later_gets_the_tasks_so_far_from_a_snapshot() {
    let s = served(|_| {});
    let done = s
        .core
        .execute_async(crate::core::ExecutionRequest::new("first prompt"))
        .await
        .unwrap();
    let (_console, mut inbound) = Client::connect(s.server.socket(), "console", true)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(inbound.recv().await, Some(Inbound::Resync { .. })));
    let mut events = Vec::new();
    loop {
        match inbound.recv().await.unwrap() {
            Inbound::Live => break,
            Inbound::Event(e) => events.push(e),
            other => panic!("{other:?}"),
        }
    }
    let mut app_text = String::new();
    for e in &events {
        if let Event::OutputDelta { id, text } = e {
            assert_eq!(*id, done.id);
            app_text.push_str(text);
        }
    }
    assert_eq!(app_text, done.text, "the answer arrives whole, joined");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::TaskSubmitted { id, .. } if *id == done.id))
    );
    assert!(
        events
            .iter()
            .any(|e| e.is_terminal() && e.execution() == Some(done.id))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::AuditRecorded { .. }))
    );
}

#[tokio::test]
async fn a_confirmation_goes_to_every_console_and_the_first_answer_wins() {
    let s = served(|c| c.governance.require_confirmation = vec!["execute".into()]);
    let (a, mut a_in) = Client::connect(s.server.socket(), "console", true)
        .await
        .unwrap()
        .unwrap();
    let (b, mut b_in) = Client::connect(s.server.socket(), "console", true)
        .await
        .unwrap()
        .unwrap();
    let id = match a
        .request(submit("needs a yes", Priority::Normal, false))
        .await
        .unwrap()
    {
        Reply::Submitted { id } => id,
        other => panic!("{other:?}"),
    };
    let request = asked(&mut a_in, id).await;
    assert_eq!(
        asked(&mut b_in, id).await,
        request,
        "both consoles are asked"
    );
    b.request(Request::Answer {
        request,
        allowed: true,
        scope: crate::events::ConfirmScope::Once,
    })
    .await
    .unwrap();
    let late = a
        .request(Request::Answer {
            request,
            allowed: false,
            scope: crate::events::ConfirmScope::Once,
        })
        .await;
    assert!(late.is_err(), "a second answer does not count: {late:?}");
    // Console A hears who answered, and the task goes ahead on B's yes.
    loop {
        if let Some(Inbound::Event(Event::ConfirmationAnswered { by, allowed, .. })) =
            a_in.recv().await
        {
            assert!(allowed);
            assert!(by.starts_with("operator (pid "), "{by}");
            break;
        }
    }
    loop {
        if let Some(Inbound::Event(e)) = a_in.recv().await
            && e.is_terminal()
            && e.execution() == Some(id)
        {
            assert!(matches!(
                e,
                Event::TaskState {
                    status: TaskStatus::Succeeded,
                    ..
                }
            ));
            break;
        }
    }
}

/// The number of the first question about task `id`.
async fn asked(inbound: &mut tokio::sync::mpsc::Receiver<Inbound>, id: ExecutionId) -> u64 {
    loop {
        if let Some(Inbound::Event(Event::ConfirmationRequested { request, id: t, .. })) =
            inbound.recv().await
        {
            assert_eq!(t, id);
            return request;
        }
    }
}

#[tokio::test]
async fn a_follower_that_goes_away_takes_its_task_with_it() {
    let s = served(|c| c.model.mock.token_delay_ms = 200);
    let (run, _followed) = Client::connect(s.server.socket(), "veyra run", false)
        .await
        .unwrap()
        .unwrap();
    let mut bus = s.core.subscribe();
    let id = match run
        .request(submit("a long answer", Priority::Normal, true))
        .await
        .unwrap()
    {
        Reply::Submitted { id } => id,
        other => panic!("{other:?}"),
    };
    drop(run);
    drop(_followed);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = bus.recv().await.unwrap();
            if e.is_terminal() && e.execution() == Some(id) {
                return e;
            }
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(
            ended,
            Event::TaskState {
                status: TaskStatus::Cancelled { .. },
                ..
            }
        ),
        "{ended:?}"
    );
}

#[tokio::test]
async fn hostile_clients_are_refused_or_closed_with_a_reason_and_the_runtime_serves_on() {
    let s = served(|_| {});
    // Another protocol version: refused, naming both.
    let (mut lines, mut w) = raw(&s).await;
    w.write_all(
        b"{\"type\":\"hello\",\"protocol\":\"veyra.rpc/9\",\"client\":\"x\",\"events\":true}\n",
    )
    .await
    .unwrap();
    match until(&mut lines, |_| true).await {
        ServerMessage::Refused { reason } => {
            assert!(
                reason.contains("veyra.rpc/1") && reason.contains("veyra.rpc/9"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Garbage before the hello: refused.
    let (mut lines, mut w) = raw(&s).await;
    w.write_all(b"\x1b[2J garbage\n").await.unwrap();
    assert!(matches!(
        until(&mut lines, |_| true).await,
        ServerMessage::Refused { .. }
    ));
    // Garbage after the hello: closed, saying why.
    let (mut lines, mut w) = raw(&s).await;
    w.write_all(hello(false).as_bytes()).await.unwrap();
    assert!(matches!(
        until(&mut lines, |_| true).await,
        ServerMessage::Welcome { .. }
    ));
    w.write_all(b"not json at all\n").await.unwrap();
    match until(&mut lines, |m| matches!(m, ServerMessage::Closing { .. })).await {
        ServerMessage::Closing { reason } => {
            assert!(reason.contains("not a veyra.rpc/1"), "{reason}")
        }
        _ => unreachable!(),
    }
    assert!(
        lines.next_line().await.unwrap().is_none(),
        "the connection is closed"
    );
    // A line over the cap: closed, saying why, without holding the whole line.
    let (mut lines, mut w) = raw(&s).await;
    w.write_all(hello(false).as_bytes()).await.unwrap();
    assert!(matches!(
        until(&mut lines, |_| true).await,
        ServerMessage::Welcome { .. }
    ));
    let big = vec![b'x'; protocol::MAX_CLIENT_LINE + 1024];
    let _ = w.write_all(&big).await;
    match until(&mut lines, |m| matches!(m, ServerMessage::Closing { .. })).await {
        ServerMessage::Closing { reason } => assert!(reason.contains("longer than"), "{reason}"),
        _ => unreachable!(),
    }
    // A request the runtime cannot carry out is an error response, and the session goes on.
    let (client, _) = Client::connect(s.server.socket(), "test", false)
        .await
        .unwrap()
        .unwrap();
    let err = client
        .request(Request::SetPreset {
            preset: "jupiter".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, "usage");
    let err = client
        .request(Request::Cancel {
            id: ExecutionId::new(),
        })
        .await
        .unwrap_err();
    assert!(!err.message.is_empty());
    assert!(matches!(
        client.request(Request::Status).await.unwrap(),
        Reply::Status { .. }
    ));
    // Many connections at once: the ones past the cap are refused, saying so.
    let mut held = Vec::new();
    for _ in 0..server::MAX_CLIENTS + 8 {
        held.push(UnixStream::connect(s.server.socket()).await.unwrap());
    }
    let stream = UnixStream::connect(s.server.socket()).await.unwrap();
    let mut lines = BufReader::new(stream).lines();
    match until(&mut lines, |_| true).await {
        ServerMessage::Refused { reason } => assert!(reason.contains("most it serves"), "{reason}"),
        other => panic!("{other:?}"),
    }
    drop(held);
    // And the runtime still serves.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        Client::connect(s.server.socket(), "test", false)
            .await
            .unwrap()
            .is_some()
    );
    let _ = s.dir;
}

#[test]
fn a_stale_socket_is_replaced_and_an_open_directory_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    socket::private_dir(&run).unwrap();
    let path = run.join("x.sock");
    std::fs::write(&path, "left by a dead runtime").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = socket::bind(&path).unwrap();
        drop(listener);
        // A file nobody answers on is no runtime.
        assert!(Client::connect(&path, "t", false).await.unwrap().is_none());
    });
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = socket::check_private(&run).unwrap_err().to_string();
    assert!(err.contains("open to others"), "{err}");
    let err = rt
        .block_on(Client::connect(&path, "t", false))
        .unwrap_err()
        .to_string();
    assert!(err.contains("open to others"), "{err}");
}

#[tokio::test]
async fn a_peer_of_another_user_is_refused_before_any_command_is_read() {
    // Needs root (to run the client as another user), setpriv and a system python.
    let python = std::path::Path::new("/usr/bin/python3");
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    if socket::own_uid() != 0 || !python.exists() || !setpriv.exists() {
        eprintln!(
            "skipped: running a client as another user needs root, /usr/bin/setpriv and \
             /usr/bin/python3"
        );
        return;
    }
    let s = served(|_| {});
    // Open the way to the socket, as a careless mode would: the peer's credentials, not the
    // file mode, must keep the other user out.
    use std::os::unix::fs::PermissionsExt;
    let socket = s.server.socket().to_path_buf();
    for dir in [s.dir.path(), socket.parent().unwrap()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut bus = s.core.subscribe();
    // As `nobody`: connect, send a hello and a submission, print what comes back.
    let script = format!(
        "import socket,sys\n\
         s=socket.socket(socket.AF_UNIX)\n\
         s.connect(sys.argv[1])\n\
         s.sendall(b'{}'+b'{}')\n\
         s.shutdown(socket.SHUT_WR)\n\
         data=b''\n\
         while True:\n    \
             chunk=s.recv(65536)\n    \
             if not chunk: break\n    \
             data+=chunk\n\
         sys.stdout.write(data.decode())\n",
        hello(false).trim_end().replace('\'', "\\'") + "\\n",
        protocol::line(&ClientMessage::Request {
            id: 1,
            command: submit("sent by another user", Priority::Critical, false),
        })
        .replace('\'', "\\'")
            + "\\n",
    );
    let out = tokio::process::Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(python)
        .arg("-c")
        .arg(&script)
        .arg(&socket)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: ServerMessage =
        serde_json::from_str(stdout.lines().next().expect("a refusal")).unwrap();
    match first {
        ServerMessage::Refused { reason } => {
            assert!(reason.contains("only its own user"), "{reason}");
        }
        other => panic!("another user got {other:?}"),
    }
    assert_eq!(
        stdout.lines().count(),
        1,
        "nothing but the refusal: {stdout}"
    );
    // Nothing was submitted.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        bus.try_recv().is_err(),
        "a refused peer's command reached the core"
    );
}

#[tokio::test]
async fn a_request_after_the_runtime_closed_fails_at_once() {
    let s = served(|_| {});
    let (client, mut inbound) = Client::connect(s.server.socket(), "test", true)
        .await
        .unwrap()
        .unwrap();
    let Served { server, .. } = s;
    drop(server);
    loop {
        match inbound.recv().await {
            Some(Inbound::Closed(reason)) => {
                assert!(reason.contains("shutting down"), "{reason}");
                break;
            }
            Some(_) => {}
            None => panic!("the session ended without saying why"),
        }
    }
    let answered = tokio::time::timeout(Duration::from_secs(2), client.request(Request::Status))
        .await
        .expect("a request to a closed session must not wait");
    assert_eq!(answered.unwrap_err().kind, "gone");
}

#[tokio::test]
async fn a_tool_call_whose_client_left_is_withdrawn_and_never_acts() {
    let s = served(|_| {});
    let file = s._ws.path().join("keep.txt");
    std::fs::write(&file, "still here").unwrap();
    let mut bus = s.core.subscribe();
    let (client, mut inbound) = Client::connect(s.server.socket(), "veyra tools", false)
        .await
        .unwrap()
        .unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .request(Request::InvokeTool {
                    name: "file_delete".into(),
                    args: serde_json::json!({ "path": "keep.txt" }),
                })
                .await
        }
    });
    // Its own question comes to it (file_delete always asks)...
    let request = loop {
        if let Inbound::Event(Event::ConfirmationRequested { request, .. }) =
            inbound.recv().await.expect("the question")
        {
            break request;
        }
    };
    // ...and it leaves without answering.
    call.abort();
    drop(client);
    drop(inbound);
    let withdrawn = tokio::time::timeout(server::REQUEST_GRACE + Duration::from_secs(5), async {
        loop {
            if let Ok(Event::ConfirmationAnswered {
                request: r,
                allowed,
                by,
                ..
            }) = bus.recv().await
                && r == request
            {
                return (allowed, by);
            }
        }
    })
    .await
    .expect("the question is withdrawn once its asker is gone");
    assert!(!withdrawn.0);
    assert!(withdrawn.1.contains("withdrawn"), "{}", withdrawn.1);
    // A yes now changes nothing.
    assert!(
        s.core
            .answer_confirmation(request, true, "operator")
            .is_err()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "still here");
}

/// A small run of CPLC on the mock.
fn small_run(count: u32) -> crate::benchmarks::request::BenchRequest {
    crate::benchmarks::request::BenchRequest {
        families: Some(vec![crate::benchmarks::FamilyId::Cplc]),
        count: Some(count),
        difficulty: Some(crate::benchmarks::Difficulty::Easy),
        seed: Some(3),
        epochs: Some(1),
    }
}

/// The next benchmark news on `inbound` (other items skipped), waiting at most a minute.
async fn next_news(inbound: &mut tokio::sync::mpsc::Receiver<Inbound>) -> bench::BenchNews {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match inbound.recv().await.expect("the session is open") {
                Inbound::Bench(news) => return news,
                Inbound::Closed(reason) => panic!("closed: {reason}"),
                _ => {}
            }
        }
    })
    .await
    .expect("news within a minute")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_benchmark_run_reaches_its_follower_every_console_and_a_later_snapshot() {
    let s = served(|c| c.latency.simulate = false);
    let (_console, mut watching) = Client::connect(s.server.socket(), "console", true)
        .await
        .unwrap()
        .unwrap();
    let (bench_client, mut followed) = Client::connect(s.server.socket(), "veyra bench", false)
        .await
        .unwrap()
        .unwrap();
    // A follower with events would get the news twice: refused.
    let refused = _console
        .request(Request::BenchStart {
            request: small_run(2),
            resume: None,
            follow: true,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.kind, "usage");
    let reply = bench_client
        .request(Request::BenchStart {
            request: small_run(4),
            resume: None,
            follow: true,
        })
        .await
        .unwrap();
    let Reply::BenchStarted { began } = reply else {
        panic!("{reply:?}")
    };
    assert!(began.by.contains("unix"), "{}", began.by);
    assert_eq!(began.count, 4);
    // The follower: the runner's start, four items, the end.
    let mut finished = 0;
    let ended = loop {
        match next_news(&mut followed).await {
            bench::BenchNews::Progress {
                progress: crate::benchmarks::Progress::TaskFinished { .. },
            } => finished += 1,
            bench::BenchNews::Progress { .. } => {}
            end @ bench::BenchNews::Ended { .. } => break end,
            other @ (bench::BenchNews::Began(_) | bench::BenchNews::Sample { .. }) => {
                panic!("{other:?}")
            }
        }
    };
    assert_eq!(finished, 4);
    let bench::BenchNews::Ended {
        run: Some(info),
        error: None,
        ..
    } = &ended
    else {
        panic!("{ended:?}")
    };
    // The console saw it begin and end, the same run.
    let mut seen = vec![next_news(&mut watching).await];
    while !seen.last().is_some_and(bench::BenchNews::is_end) {
        seen.push(next_news(&mut watching).await);
    }
    assert!(matches!(seen[0], bench::BenchNews::Began(_)));
    assert_eq!(seen.last(), Some(&ended));
    // A console attaching now gets the run from its snapshot.
    let (_later, mut later) = Client::connect(s.server.socket(), "console", true)
        .await
        .unwrap()
        .unwrap();
    let mut snapshot = Vec::new();
    loop {
        match later.recv().await.unwrap() {
            Inbound::Bench(news) => snapshot.push(news),
            Inbound::Live => break,
            _ => {}
        }
    }
    assert_eq!(snapshot, seen);
    // Every item's audit entries name the client that asked for the run.
    let entries = s.core.audit().unwrap().query(&Default::default()).unwrap();
    let items: Vec<_> = entries
        .iter()
        .filter(|e| {
            e.actor == "benchmark" && e.event_type == crate::governance::AuditEventType::Execution
        })
        .collect();
    assert_eq!(items.len(), 4, "{}", info.id);
    for entry in items {
        assert_eq!(entry.metadata["client"]["transport"], "unix", "{entry:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_leaves_cancels_its_run_and_an_attached_console_cancels_one_too() {
    let s = served(|c| {
        c.latency.simulate = false;
        // Slow enough that each run is still going when its client acts.
        c.model.mock.token_delay_ms = 20;
    });
    let mut news = s.bench.subscribe();
    let (bench_client, _followed) = Client::connect(s.server.socket(), "veyra bench", false)
        .await
        .unwrap()
        .unwrap();
    bench_client
        .request(Request::BenchStart {
            request: small_run(300),
            resume: None,
            follow: true,
        })
        .await
        .unwrap();
    drop(bench_client);
    drop(_followed);
    let status = loop {
        let piece = tokio::time::timeout(Duration::from_secs(60), news.recv())
            .await
            .unwrap()
            .unwrap();
        if let bench::BenchNews::Ended { run, .. } = piece {
            break run.map(|r| r.status);
        }
    };
    assert_eq!(status, Some(crate::benchmarks::RunStatus::Cancelled));
    // A console starts one (not followed: it goes on without the console) and cancels it.
    let (console, _inbound) = Client::connect(s.server.socket(), "console", true)
        .await
        .unwrap()
        .unwrap();
    let handle = Handle::Attached(Box::new(console));
    let began = handle.bench_start(small_run(300)).await.unwrap();
    let again = handle.bench_start(small_run(2)).await.unwrap_err();
    assert!(again.contains("already going"), "{again}");
    // A cancel naming another run is refused; naming this one stops it.
    let wrong = handle
        .bench_cancel(Some(began.number + 7))
        .await
        .unwrap_err();
    assert!(wrong.contains("is not going"), "{wrong}");
    handle.bench_cancel(Some(began.number)).await.unwrap();
    let status = loop {
        let piece = tokio::time::timeout(Duration::from_secs(60), news.recv())
            .await
            .unwrap()
            .unwrap();
        if let bench::BenchNews::Ended { run, .. } = piece {
            break run.map(|r| r.status);
        }
    };
    assert_eq!(status, Some(crate::benchmarks::RunStatus::Cancelled));
    assert_eq!(
        handle.bench_cancel(None).await.unwrap_err(),
        "no benchmark run is going"
    );
    // A plan comes back with the runtime's figures.
    let plan = handle.bench_plan(small_run(5)).await.unwrap();
    assert_eq!((plan.executions, plan.backend.as_str()), (5, "mock"));
}

#[tokio::test]
async fn an_approval_given_by_a_console_ends_when_that_console_leaves() {
    let s = served(|c| c.governance.require_confirmation = vec!["tool:file_write".into()]);
    let (console, _inbound) = Client::connect(s.server.socket(), "console", false)
        .await
        .unwrap()
        .expect("a runtime serves");
    let reply = console
        .request(Request::Approve {
            tool: "file_write".into(),
            argument: Some(crate::core::ArgumentPattern::parse("path=*.md").unwrap()),
        })
        .await
        .unwrap();
    let Reply::Approval { approval } = reply else {
        panic!("{reply:?}");
    };
    assert_eq!(approval.client.as_ref(), Some(&console.you));
    assert_eq!(s.core.approvals().len(), 1);
    let err = console
        .request(Request::Approve {
            tool: "no_such_tool".into(),
            argument: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, "usage", "{err:?}");
    drop(console);
    tokio::time::timeout(Duration::from_secs(10), async {
        while !s.core.approvals().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the approval ends with the console that gave it");
    let revoked = s
        .core
        .audit()
        .unwrap()
        .query(&crate::governance::AuditFilter::default())
        .unwrap()
        .into_iter()
        .find(|e| e.action == "revoke")
        .expect("the revocation is recorded");
    assert_eq!(revoked.metadata["by"], "the client that gave it left");
    assert!(
        revoked.metadata["client"]["transport"].is_string(),
        "{revoked:?}"
    );
}
