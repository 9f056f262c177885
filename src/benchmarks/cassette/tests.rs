//! Tests of the cassettes: the key, recording (timing on tokio's paused clock, errors, tool
//! calls, order of repeated requests, secrets), replaying (pacing, misses), and every hostile
//! cassette the brief names: garbage, truncated, another version, huge, an offset of years, a
//! symbolic link out of DIR, a manifest naming another plan.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::{MockFailure, MockFailureKind, ModelConfig};
use crate::models::{
    ChunkStream, MalformedArguments, MockBackend, ModelBackend, ModelError, StreamChunk, ToolCall,
};

const KEY: &str = "sk-cassette-SENTINEL-51c0ffee";

fn plan() -> RunPlan {
    RunPlan {
        families: vec![FamilyId::Cplc, FamilyId::Msga],
        count: 3,
        difficulty: Difficulty::Medium,
        seed: 7,
        epochs: 2,
        weights: Default::default(),
    }
}

fn request(prompt: &str) -> ModelRequest {
    ModelRequest::new("veyra-mock-1", Some("Be brief.".into()), prompt, 0.7, 64)
}

/// What a stream delivered: its chunks, then the error that ended it, if any.
type Collected = (Vec<StreamChunk>, Option<ModelError>);

async fn collect(backend: &dyn ModelBackend, request: &ModelRequest) -> Collected {
    let mut stream = match backend.stream(request).await {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut chunks = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(c) => chunks.push(c),
            Err(e) => return (chunks, Some(e)),
        }
    }
    (chunks, None)
}

fn writer(dir: &Path, key: Option<&str>, tripwire: Option<Tripwire>) -> Arc<CassetteWriter> {
    let manifest = Manifest::new(&plan(), &ModelConfig::default());
    Arc::new(
        CassetteWriter::create(dir, &manifest, key.map(Secret::new), tripwire)
            .expect("create the cassette"),
    )
}

fn replayer(dir: &Path, pacing: Pacing) -> (ReplayBackend, Tripwire) {
    let cassette = Arc::new(Cassette::open(dir).expect("open the cassette"));
    let tripwire = Tripwire::new(CancellationToken::new());
    (
        ReplayBackend::new(cassette, pacing, Some(tripwire.clone())),
        tripwire,
    )
}

fn call_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join(CALLS))
        .expect("calls")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

/// A backend that answers call `n` (from 0) with `answers[n]`, one chunk per `delay`.
struct Scripted {
    answers: Vec<Result<Vec<Result<StreamChunk, ModelError>>, ModelError>>,
    next: AtomicUsize,
    delay: Duration,
}

#[async_trait::async_trait]
impl ModelBackend for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn stream(&self, _request: &ModelRequest) -> Result<ChunkStream, ModelError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let answer = self
            .answers
            .get(n)
            .cloned()
            .unwrap_or_else(|| Ok(Vec::new()));
        let delay = self.delay;
        let chunks = answer?;
        Ok(Box::pin(futures_util::stream::iter(chunks).then(
            move |c| async move {
                tokio::time::sleep(delay).await;
                c
            },
        )))
    }

    async fn health_check(&self) -> Result<(), ModelError> {
        Ok(())
    }
}

fn done(output: u64) -> Result<StreamChunk, ModelError> {
    Ok(StreamChunk::Done {
        finish_reason: FinishReason::Stop,
        usage: TokenUsage { input: 3, output },
    })
}

fn text(t: &str) -> Result<StreamChunk, ModelError> {
    Ok(StreamChunk::Text(t.into()))
}

// ---------------------------------------------------------------------------------------------
// The key

#[test]
fn the_key_is_the_sha256_of_the_canonical_request_and_sees_every_part() {
    let (key, json) = request_key(&request("hello")).unwrap();
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(request_key(&request("hello")).unwrap().0, key, "stable");
    let canonical = serde_json_canonicalizer::to_string(&json).unwrap();
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(canonical.as_bytes())), key);
    // Keys sorted, no white space: RFC 8785.
    assert!(canonical.starts_with(r#"{"max_tokens":64,"messages":[{"content":"hello","role":"user"}],"model":"veyra-mock-1","system":"Be brief.""#), "{canonical}");
    let mut other = request("hello");
    other.temperature = 0.2;
    assert_ne!(request_key(&other).unwrap().0, key);
    let mut other = request("hello");
    other.model = "another".into();
    assert_ne!(request_key(&other).unwrap().0, key);
    assert_ne!(request_key(&request("hello!")).unwrap().0, key);
    let tools = crate::models::base::tool_conversation();
    let (k1, _) = request_key(&tools).unwrap();
    let mut fewer = tools.clone();
    fewer.tools.pop();
    assert_ne!(
        request_key(&fewer).unwrap().0,
        k1,
        "the tools offered count"
    );
    // A tool result is part of the key, but for `system_status`, whose answer is live state
    // (backend name, audit head, queue) that differs between recording and replay by design.
    let with_result = |name: &str, content: &str| {
        let mut r = request("hello");
        r.messages.push(crate::models::Message::Tool(
            crate::models::base::ToolResult {
                call_id: "c1".into(),
                name: name.into(),
                content: content.into(),
                is_error: false,
            },
        ));
        request_key(&r).unwrap().0
    };
    assert_eq!(
        with_result("system_status", r#"{"backend":"mock"}"#),
        with_result("system_status", r#"{"backend":"replay"}"#)
    );
    assert_ne!(
        with_result("calculator", "4"),
        with_result("calculator", "5")
    );
    let mut non_finite = request("hello");
    non_finite.temperature = f64::NAN;
    // Not a panic: either a key or a clear error.
    let _ = request_key(&non_finite);
}

// ---------------------------------------------------------------------------------------------
// Record, then replay

#[tokio::test(start_paused = true)]
async fn a_recorded_mock_stream_replays_chunk_for_chunk_with_its_timing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ModelConfig::default();
    config.mock.token_delay_ms = 40;
    let mock: Arc<dyn ModelBackend> = Arc::new(MockBackend::from_config(&config).unwrap());
    let recorder = RecordingBackend::new(Arc::clone(&mock), writer(dir.path(), None, None));
    assert_eq!(
        recorder.name(),
        "mock",
        "a recorded run is a run of its backend"
    );
    let req = request("Status of the habitat?");
    let live = collect(&recorder, &req).await;
    assert_eq!(
        live,
        collect(mock.as_ref(), &req).await,
        "passed through as is"
    );
    let files = call_files(dir.path());
    assert_eq!(files.len(), 1);
    let call: RecordedCall = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(call.seq, 1);
    assert_eq!(call.key, request_key(&req).unwrap().0);
    assert!(files[0].ends_with(format!("00000001-{}.json", call.key)));
    assert_eq!(call.request["messages"][0]["role"], "user");
    let offsets: Vec<u64> = call.events.iter().map(|e| e.at_ms).collect();
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{offsets:?}");
    let last = *offsets.last().unwrap();
    assert!(
        last >= 40,
        "the mock's delays are on the record: {offsets:?}"
    );
    assert!(matches!(
        call.events.last().unwrap().event,
        StreamEvent::Done { .. }
    ));

    // As fast as possible: the same chunks, no time passes.
    let (replay, tripwire) = replayer(dir.path(), Pacing::Instant);
    assert_eq!(replay.name(), "replay");
    let started = tokio::time::Instant::now();
    assert_eq!(collect(&replay, &req).await, live);
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(tripwire.tripped().is_none());

    // At the recorded pace, and twice as fast.
    for (scale, expected) in [(1.0, last), (2.0, last / 2)] {
        let (replay, _) = replayer(dir.path(), Pacing::Recorded { time_scale: scale });
        let started = tokio::time::Instant::now();
        assert_eq!(collect(&replay, &req).await, live);
        let took = started.elapsed().as_millis() as u64;
        assert!(
            took.abs_diff(expected) <= 1,
            "scale {scale}: {took} ms, {expected} expected"
        );
    }
}

/// A cassette holds prompts and answers: the directories it makes are 0700, its files 0600.
#[tokio::test(start_paused = true)]
async fn a_cassette_is_its_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("tapes/run-1");
    let mock: Arc<dyn ModelBackend> =
        Arc::new(MockBackend::from_config(&ModelConfig::default()).unwrap());
    let recorder = RecordingBackend::new(Arc::clone(&mock), writer(&dir, None, None));
    collect(&recorder, &request("Status of the habitat?")).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&top.path().join("tapes")), 0o700);
    assert_eq!(mode(&dir), 0o700);
    let files = call_files(&dir);
    assert_eq!(files.len(), 1);
    let calls = files[0].parent().unwrap();
    assert_eq!(mode(calls), 0o700);
    assert_eq!(mode(&files[0]), 0o600);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn repeated_requests_replay_in_the_order_recorded_and_one_more_is_a_clear_miss() {
    let dir = tempfile::tempdir().unwrap();
    let scripted: Arc<dyn ModelBackend> = Arc::new(Scripted {
        answers: vec![
            Ok(vec![text("first"), done(1)]),
            Ok(vec![text("second"), done(1)]),
            Ok(vec![text("other"), done(1)]),
        ],
        next: AtomicUsize::new(0),
        delay: Duration::from_millis(5),
    });
    let recorder = RecordingBackend::new(scripted, writer(dir.path(), None, None));
    let same = request("again");
    collect(&recorder, &same).await;
    collect(&recorder, &same).await;
    collect(&recorder, &request("elsewhere")).await;
    assert_eq!(call_files(dir.path()).len(), 3);

    assert_eq!(Cassette::open(dir.path()).unwrap().len(), 3);
    let (replay, tripwire) = replayer(dir.path(), Pacing::Instant);
    assert_eq!(
        collect(&replay, &request("elsewhere")).await.0[0],
        StreamChunk::Text("other".into())
    );
    assert_eq!(
        collect(&replay, &same).await.0[0],
        StreamChunk::Text("first".into())
    );
    assert_eq!(
        collect(&replay, &same).await.0[0],
        StreamChunk::Text("second".into())
    );
    let (_, e) = collect(&replay, &same).await;
    let e = e.expect("a third call is a miss");
    assert_eq!(e.kind, ModelErrorKind::Config, "not retried");
    assert_eq!(e.backend, "replay");
    assert!(
        e.message.contains("2 times") && e.message.contains("--epochs 2"),
        "{e}"
    );
    let (kind, message) = tripwire.tripped().expect("the run is stopped");
    assert_eq!(kind, TripKind::Usage);
    assert_eq!(message, e.message);
}

#[tokio::test(start_paused = true)]
async fn a_request_not_recorded_is_an_error_saying_what_to_do_and_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let recorder =
        RecordingBackend::new(Arc::new(MockBackend::new()), writer(dir.path(), None, None));
    collect(&recorder, &request("recorded")).await;
    let cancel = CancellationToken::new();
    let tripwire = Tripwire::new(cancel.clone());
    let replay = ReplayBackend::new(
        Arc::new(Cassette::open(dir.path()).unwrap()),
        Pacing::Instant,
        Some(tripwire.clone()),
    );
    let (chunks, e) = collect(&replay, &request("never recorded")).await;
    assert!(chunks.is_empty());
    let e = e.expect("a miss");
    for needle in [
        "not in the cassette",
        "never recorded",
        "--record",
        "seed 7",
    ] {
        assert!(e.message.contains(needle), "{needle}: {e}");
    }
    assert!(cancel.is_cancelled(), "the run stops at the first miss");
    assert!(matches!(tripwire.error(), Some(VeyraError::Usage(_))));
    // Another temperature is another request.
    let mut warmer = request("recorded");
    warmer.temperature = 1.0;
    assert!(collect(&replay, &warmer).await.1.is_some());
    assert!(collect(&replay, &request("recorded")).await.1.is_none());
}

#[tokio::test(start_paused = true)]
async fn errors_before_and_during_the_stream_replay_where_they_happened() {
    let dir = tempfile::tempdir().unwrap();
    let mut early = ModelConfig::default();
    early.mock.fail = Some(MockFailure {
        kind: MockFailureKind::RateLimit,
        after_tokens: 0,
        message: Some("slow down".into()),
    });
    let mut late = ModelConfig::default();
    late.mock.fail = Some(MockFailure {
        kind: MockFailureKind::Server,
        after_tokens: 2,
        message: None,
    });
    let w = writer(dir.path(), None, None);
    let a = RecordingBackend::new(
        Arc::new(MockBackend::from_config(&early).unwrap()),
        w.clone(),
    );
    let b = RecordingBackend::new(Arc::new(MockBackend::from_config(&late).unwrap()), w);
    let early_live = collect(&a, &request("early")).await;
    let late_live = collect(&b, &request("late")).await;
    assert!(early_live.0.is_empty() && early_live.1.is_some());
    assert_eq!(late_live.0.len(), 2);
    assert!(
        late_live
            .1
            .as_ref()
            .is_some_and(|e| e.mid_stream || e.kind == ModelErrorKind::Server)
    );

    let (replay, tripwire) = replayer(dir.path(), Pacing::Instant);
    // Not opened: the error comes from `stream` itself, as it did (a retry is safe).
    match replay.stream(&request("early")).await {
        Err(e) => assert_eq!(Some(e), early_live.1),
        Ok(_) => panic!("the recorded call failed before streaming"),
    }
    assert_eq!(collect(&replay, &request("late")).await, late_live);
    assert!(
        tripwire.tripped().is_none(),
        "recorded errors are answers, not misses"
    );
}

#[tokio::test(start_paused = true)]
async fn tool_calls_and_malformed_arguments_survive_the_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let call = |id: &str, arguments| {
        Ok(StreamChunk::ToolCall(ToolCall {
            id: id.into(),
            name: "get_power".into(),
            arguments,
        }))
    };
    let chunks = vec![
        call("c1", Ok(serde_json::json!({"zone": "hab-1", "n": 1.5}))),
        call("c2", MalformedArguments::parse("{\"zone\": hab".into())),
        Ok(StreamChunk::Done {
            finish_reason: FinishReason::ToolCalls,
            usage: TokenUsage {
                input: 5,
                output: 2,
            },
        }),
    ];
    let scripted = Scripted {
        answers: vec![Ok(chunks.clone())],
        next: AtomicUsize::new(0),
        delay: Duration::ZERO,
    };
    let recorder = RecordingBackend::new(Arc::new(scripted), writer(dir.path(), None, None));
    let req = crate::models::base::tool_conversation();
    collect(&recorder, &req).await;
    let (replay, _) = replayer(dir.path(), Pacing::Instant);
    let replayed = collect(&replay, &req).await;
    let expected: Vec<StreamChunk> = chunks.into_iter().map(|c| c.unwrap()).collect();
    assert_eq!(replayed, (expected, None));
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_unfinished_is_not_kept_and_a_crash_leftover_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let scripted = Scripted {
        answers: vec![Ok(vec![text("a"), text("b"), done(2)])],
        next: AtomicUsize::new(0),
        delay: Duration::from_millis(1),
    };
    let recorder = RecordingBackend::new(Arc::new(scripted), writer(dir.path(), None, None));
    let mut stream = recorder.stream(&request("cancelled")).await.unwrap();
    assert!(stream.next().await.is_some());
    drop(stream);
    assert!(call_files(dir.path()).is_empty());
    // What a crash in the middle of a write leaves: a hidden temporary file.
    std::fs::write(
        dir.path().join(CALLS).join(".00000009-x.json.tmp"),
        "{\"seq\": 9",
    )
    .unwrap();
    assert!(Cassette::open(dir.path()).unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Secrets

#[tokio::test(start_paused = true)]
async fn the_configured_key_is_never_written_even_when_a_backend_lets_it_through() {
    let dir = tempfile::tempdir().unwrap();
    // A backend that does not scrub (the HTTP ones do: see tests/cli/bench.rs): the writer
    // still removes the key from text, tool calls, errors and the request.
    let scripted = Scripted {
        answers: vec![
            Ok(vec![
                text(&format!("your key is {KEY}")),
                Ok(StreamChunk::ToolCall(ToolCall {
                    id: KEY.into(),
                    name: "echo".into(),
                    arguments: Ok(serde_json::json!({ KEY: KEY })),
                })),
                done(4),
            ]),
            Err(ModelError::new(
                "scripted",
                ModelErrorKind::Auth,
                format!("bad key {KEY}"),
            )),
        ],
        next: AtomicUsize::new(0),
        delay: Duration::ZERO,
    };
    let recorder = RecordingBackend::new(Arc::new(scripted), writer(dir.path(), Some(KEY), None));
    let live = collect(&recorder, &request(&format!("the operator pasted {KEY}"))).await;
    assert!(
        format!("{live:?}").contains(KEY),
        "the wrapper changes nothing it passes on"
    );
    collect(&recorder, &request("second")).await;
    let mut written = std::fs::read_to_string(dir.path().join(MANIFEST)).unwrap();
    for f in call_files(dir.path()) {
        written.push_str(&std::fs::read_to_string(f).unwrap());
    }
    assert!(!written.contains(KEY), "the key was written: {written}");
    assert!(written.contains("[redacted]"));
}

#[tokio::test(start_paused = true)]
async fn a_key_split_between_two_text_events_is_not_written_nor_joined_back_on_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (head, tail) = KEY.split_at(7);
    // A backend that does not scrub hands the key on in two pieces, then more text, a tool
    // call after a held-back tail, and a tail at the very end.
    let scripted = Scripted {
        answers: vec![Ok(vec![
            text(&format!("your key is {head}")),
            text(&format!("{tail}. Next: sk-")),
            Ok(StreamChunk::ToolCall(ToolCall {
                id: "c1".into(),
                name: "echo".into(),
                arguments: Ok(serde_json::json!({})),
            })),
            text(head),
            done(4),
        ])],
        next: AtomicUsize::new(0),
        delay: Duration::from_millis(3),
    };
    let recorder = RecordingBackend::new(Arc::new(scripted), writer(dir.path(), Some(KEY), None));
    collect(&recorder, &request("split")).await;
    let written: String = call_files(dir.path())
        .into_iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(!written.contains(KEY), "the key was written: {written}");
    assert!(
        !written.contains(tail),
        "its second piece was written: {written}"
    );

    let (replay, _) = replayer(dir.path(), Pacing::Instant);
    let (chunks, error) = collect(&replay, &request("split")).await;
    assert_eq!(error, None);
    let shown: Vec<String> = chunks
        .iter()
        .map(|c| match c {
            StreamChunk::Text(t) => t.clone(),
            StreamChunk::ToolCall(call) => format!("<{}>", call.name),
            StreamChunk::Done { .. } => "<done>".into(),
        })
        .collect();
    assert_eq!(
        shown,
        [
            "your key is ",
            "[redacted]. Next: ",
            "sk-",
            "<echo>",
            head,
            "<done>"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Writing

#[test]
fn recording_refuses_a_directory_that_holds_anything_or_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = Manifest::new(&plan(), &ModelConfig::default());
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let e = CassetteWriter::create(dir.path(), &manifest, None, None).unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
    let file = dir.path().join("notes.txt");
    let e = CassetteWriter::create(&file, &manifest, None, None).unwrap_err();
    assert!(
        matches!(e, CassetteError::Invalid(_) | CassetteError::Io { .. }),
        "{e}"
    );
    // A new nested directory is made; the manifest is complete JSON at once.
    let new = dir.path().join("a/b");
    CassetteWriter::create(&new, &manifest, None, None).unwrap();
    let back: Manifest =
        serde_json::from_slice(&std::fs::read(new.join(MANIFEST)).unwrap()).unwrap();
    assert_eq!(back, manifest);
    assert_eq!(back.format, FORMAT);
    let mut replanned = RunPlan {
        families: vec![],
        count: 1,
        difficulty: Difficulty::Easy,
        seed: 0,
        epochs: 1,
        weights: Default::default(),
    };
    back.plan.apply(&mut replanned).unwrap();
    assert_eq!(replanned.families, plan().families);
    assert_eq!(
        (replanned.count, replanned.seed, replanned.epochs),
        (3, 7, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn a_write_that_fails_trips_the_run_as_a_runtime_failure() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let tripwire = Tripwire::new(cancel.clone());
    let w = writer(dir.path(), None, Some(tripwire.clone()));
    std::fs::remove_dir(dir.path().join(CALLS)).unwrap();
    let recorder = RecordingBackend::new(Arc::new(MockBackend::new()), w);
    let (chunks, e) = collect(&recorder, &request("lost")).await;
    assert!(
        e.is_none() && !chunks.is_empty(),
        "the answer itself is not lost"
    );
    assert!(cancel.is_cancelled());
    let t = tripwire.tripped().unwrap();
    assert_eq!(t.0, TripKind::Runtime);
    assert!(t.1.contains("recording into"), "{}", t.1);
}

// ---------------------------------------------------------------------------------------------
// Hostile cassettes

/// A valid cassette with one recorded call of `request("x")`; returns its call file.
async fn one_call(dir: &Path) -> std::path::PathBuf {
    let recorder = RecordingBackend::new(Arc::new(MockBackend::new()), writer(dir, None, None));
    collect(&recorder, &request("x")).await;
    call_files(dir).remove(0)
}

fn open_err(dir: &Path) -> String {
    match Cassette::open(dir) {
        Ok(_) => panic!("{} should be refused", dir.display()),
        Err(e) => {
            assert!(matches!(e, CassetteError::Invalid(_)), "{e:?}");
            e.to_string()
        }
    }
}

/// The miss a replay of `request("x")` gives.
async fn replay_err(dir: &Path) -> String {
    let (replay, tripwire) = replayer(dir, Pacing::Recorded { time_scale: 1.0 });
    let (_, e) = collect(&replay, &request("x")).await;
    let e = e.expect("a damaged call is an error");
    assert_eq!(e.kind, ModelErrorKind::Config);
    assert!(tripwire.tripped().is_some());
    e.message
}

#[tokio::test(start_paused = true)]
async fn a_manifest_swapped_for_a_fifo_after_its_check_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    one_call(dir.path()).await;
    let path = dir.path().to_path_buf();
    // Off the test's thread, with the hook on that thread: between the checks of the
    // manifest's name and its open, the manifest becomes a FIFO.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        super::replay::BEFORE_OPEN.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(|at: &Path| {
                if at.ends_with(MANIFEST) {
                    std::fs::remove_file(at).unwrap();
                    let made = std::process::Command::new("mkfifo")
                        .arg(at)
                        .status()
                        .unwrap();
                    assert!(made.success());
                }
            }));
        });
        let _ = tx.send(Cassette::open(&path).map(|_| ()));
    });
    let err = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("opening the cassette hung")
        .unwrap_err();
    assert!(matches!(err, CassetteError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("not a plain file"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_missing_or_garbage_or_foreign_manifest_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    assert!(open_err(&missing).contains("no such directory"));
    one_call(dir.path()).await;
    let manifest = dir.path().join(MANIFEST);
    let original = std::fs::read_to_string(&manifest).unwrap();
    let cases: Vec<(String, &str)> = vec![
        ("\u{0}\u{1}garbage\u{ff}".into(), "not JSON"),
        (original[..original.len() / 2].into(), "not JSON"),
        ("{\"hello\": 1}".into(), "not a Veyra cassette"),
        (
            original.replace(FORMAT, "veyra.cassette/2"),
            "'veyra.cassette/2' is not readable",
        ),
        (original.replace("\"seed\": 7", "\"seed\": -1"), "damaged"),
        (
            original.replace("\"cplc\"", "\"zzz\""),
            "unknown benchmark family",
        ),
        (
            original.replace("\"count\": 3", "\"count\": 0"),
            "'plan.count' is 0",
        ),
        (
            original.replace("\"epochs\": 2", "\"epochs\": 1000"),
            "'plan.epochs'",
        ),
        (
            original.replace("\"medium\"", "\"impossible\""),
            "plan.difficulty",
        ),
        (
            original.replace("\"model\": \"veyra-mock-1\"", "\"model\": \"\""),
            "'model'",
        ),
        (
            original.replace("\"plan\"", "\"extra\": 1, \"plan\""),
            "unknown field",
        ),
    ];
    for (text, needle) in cases {
        std::fs::write(&manifest, &text).unwrap();
        let e = open_err(dir.path());
        assert!(e.contains(needle), "{needle:?} not in {e}");
        assert!(e.contains("manifest.json"), "{e}");
    }
    std::fs::remove_file(&manifest).unwrap();
    assert!(open_err(dir.path()).contains("is missing"));
    // Huge: refused by its size, never read whole.
    let f = std::fs::File::create(&manifest).unwrap();
    f.set_len(MAX_MANIFEST_BYTES + 1).unwrap();
    assert!(open_err(dir.path()).contains("larger than"));
}

#[tokio::test(start_paused = true)]
async fn symlinks_are_refused_so_nothing_outside_the_cassette_is_read() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.json");
    std::fs::write(&secret, "{\"format\": \"veyra.cassette/1\"}").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = one_call(dir.path()).await;
    // A call file that points outside.
    let name = file.file_name().unwrap().to_owned();
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&secret, &file).unwrap();
    let e = open_err(dir.path());
    assert!(e.contains("symbolic link"), "{e}");
    assert!(e.contains(&*name.to_string_lossy()), "{e}");
    // The manifest pointing outside.
    std::fs::remove_file(&file).unwrap();
    let manifest = dir.path().join(MANIFEST);
    std::fs::remove_file(&manifest).unwrap();
    std::os::unix::fs::symlink(&secret, &manifest).unwrap();
    assert!(open_err(dir.path()).contains("symbolic link"));
    // The calls folder pointing outside.
    std::fs::remove_file(&manifest).unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    one_call(dir2.path()).await;
    std::fs::remove_dir_all(dir2.path().join(CALLS)).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir2.path().join(CALLS)).unwrap();
    assert!(open_err(dir2.path()).contains("not a plain directory"));
}

#[tokio::test(start_paused = true)]
async fn stray_and_duplicate_call_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_call(dir.path()).await;
    let stray = dir.path().join(CALLS).join("notes.txt");
    std::fs::write(&stray, "hi").unwrap();
    assert!(open_err(dir.path()).contains("is not a call file"));
    std::fs::remove_file(&stray).unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let twin = dir
        .path()
        .join(CALLS)
        .join(name.replacen("00000001", "1", 1));
    std::fs::copy(&file, &twin).unwrap();
    assert!(open_err(dir.path()).contains("appears twice"));
    std::fs::remove_file(&twin).unwrap();
    std::fs::create_dir(
        dir.path()
            .join(CALLS)
            .join(format!("2-{}.json", "a".repeat(64))),
    )
    .unwrap();
    assert!(open_err(dir.path()).contains("is not a call file"));
}

#[tokio::test(start_paused = true)]
async fn damaged_call_files_are_clear_errors_when_their_request_comes() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_call(dir.path()).await;
    let original = std::fs::read_to_string(&file).unwrap();
    let at_ms = |ms: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
        v["events"][0]["at_ms"] = serde_json::from_str(ms).unwrap();
        v.to_string()
    };
    let with_events = |events: serde_json::Value| {
        let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
        v["events"] = events;
        v.to_string()
    };
    let done = serde_json::json!({"at_ms": 1, "event": {"type": "done", "finish_reason": "stop",
        "usage": {"input": 1, "output": 1}}});
    let text = serde_json::json!({"at_ms": 2, "event": {"type": "text", "text": "late"}});
    let key = request_key(&request("x")).unwrap().0;
    let cases: Vec<(String, &str)> = vec![
        ("garbage \u{7} not json".into(), "not a valid call record"),
        (
            original[..original.len() - 7].into(),
            "not a valid call record",
        ),
        (
            original.replace(&key, &"0".repeat(64)),
            "does not match its name",
        ),
        (
            original.replace("\"seq\":1", "\"seq\":2"),
            "does not match its name",
        ),
        // Sleeping for years: refused when read, before any wait.
        (at_ms("31536000000000"), "later than"),
        (at_ms("18446744073709551615"), "later than"),
        (at_ms("-5"), "not a valid call record"),
        (
            with_events(serde_json::json!([done, text])),
            "follows the stream's final one",
        ),
        (
            original.replace("\"opened\":true", "\"opened\":false"),
            "exactly its error",
        ),
        (
            original.replace("\"type\":\"text\"", "\"type\":\"teleport\""),
            "not a valid call record",
        ),
    ];
    for (content, needle) in cases {
        std::fs::write(&file, &content).unwrap();
        let started = tokio::time::Instant::now();
        let e = replay_err(dir.path()).await;
        assert!(e.contains(needle), "{needle:?} not in {e}");
        assert!(e.contains("record it again"), "{e}");
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "no wait on a damaged call"
        );
    }
    // Huge (sparse, so the test writes nothing): refused by size.
    let f = std::fs::File::create(&file).unwrap();
    f.set_len(MAX_CALL_BYTES + 1).unwrap();
    assert!(replay_err(dir.path()).await.contains("larger than"));
}

#[tokio::test(start_paused = true)]
async fn the_longest_recorded_offset_is_a_bounded_wait() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_call(dir.path()).await;
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let n = v["events"].as_array().unwrap().len();
    v["events"][n - 1]["at_ms"] = MAX_OFFSET_MS.into();
    std::fs::write(&file, v.to_string()).unwrap();
    let (replay, _) = replayer(dir.path(), Pacing::Recorded { time_scale: 1000.0 });
    let started = tokio::time::Instant::now();
    assert!(collect(&replay, &request("x")).await.1.is_none());
    let took = started.elapsed().as_millis() as u64;
    assert!(took.abs_diff(MAX_OFFSET_MS / 1000) <= 1, "{took} ms");
}
