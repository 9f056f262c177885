//! Recording: [`CassetteWriter`] creates a cassette directory and writes each finished call
//! atomically; [`RecordingBackend`] wraps any backend, passes every chunk through unchanged
//! and hands the call to the writer when its stream ends (see the parent module for the
//! format).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use tokio::time::Instant;

use super::{
    CALLS, CassetteError, MANIFEST, Manifest, RecordedArguments, RecordedCall, RecordedEvent,
    StreamEvent, TripKind, Tripwire, request_key, scrub, scrub_text_events,
};
use crate::config::Secret;
use crate::models::{
    ChunkStream, ModelBackend, ModelError, ModelErrorKind, ModelRequest, StreamChunk,
};

/// Writes one cassette directory.
#[derive(Debug)]
pub struct CassetteWriter {
    dir: PathBuf,
    calls: PathBuf,
    next_seq: AtomicU64,
    key: Option<Secret>,
    tripwire: Option<Tripwire>,
}

impl CassetteWriter {
    /// Creates the cassette in `dir` (which must not exist or be empty) and writes its
    /// manifest. `key` is the configured API key, scrubbed from everything written; a write
    /// that fails later trips `tripwire` (a runtime failure).
    pub fn create(
        dir: &Path,
        manifest: &Manifest,
        key: Option<Secret>,
        tripwire: Option<Tripwire>,
    ) -> Result<Self, CassetteError> {
        let shown = dir.display();
        match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(CassetteError::Invalid(format!(
                        "--record {shown}: the directory is not empty; record into a new or an \
                         empty directory (a cassette is never overwritten)"
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A cassette holds prompts and answers: its owner's alone (an empty directory
                // the operator made keeps the mode they gave it).
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| CassetteError::io(format!("creating {shown}"), e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                return Err(CassetteError::Invalid(format!(
                    "--record {shown}: not a directory; name a new directory for the cassette"
                )));
            }
            Err(e) => return Err(CassetteError::io(format!("reading {shown}"), e)),
        }
        let calls = dir.join(CALLS);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&calls)
            .map_err(|e| CassetteError::io(format!("creating {}", calls.display()), e))?;
        let text = serde_json::to_string_pretty(manifest)
            .map_err(|e| CassetteError::Invalid(format!("encoding the manifest: {e}")))?;
        write_atomically(dir, MANIFEST, text.as_bytes())?;
        Ok(CassetteWriter {
            dir: dir.to_path_buf(),
            calls,
            next_seq: AtomicU64::new(1),
            key,
            tripwire,
        })
    }

    /// The cassette's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The number the next call gets.
    fn take_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Writes `call` (the key scrubbed from every string, and from the text its `text` events
    /// join to) as `calls/<seq>-<key>.json`.
    pub fn write_call(&self, call: &RecordedCall) -> Result<(), CassetteError> {
        let value = match &self.key {
            Some(key) => serde_json::to_value(RecordedCall {
                seq: call.seq,
                key: call.key.clone(),
                request: call.request.clone(),
                opened: call.opened,
                events: scrub_text_events(&call.events, Some(key)),
            }),
            None => serde_json::to_value(call),
        }
        .map_err(|e| CassetteError::Invalid(format!("encoding call {}: {e}", call.seq)))?;
        let text = serde_json::to_string(&scrub(value, self.key.as_ref()))
            .map_err(|e| CassetteError::Invalid(format!("encoding call {}: {e}", call.seq)))?;
        write_atomically(
            &self.calls,
            &call_file_name(call.seq, &call.key),
            text.as_bytes(),
        )
    }

    /// [`CassetteWriter::keep`] on the blocking pool: the write syncs the file to disk, which
    /// must not hold an async worker. Resolves once the call is written (or its failure
    /// reported), so the stream's final chunk passes only after its call is on disk.
    async fn keep_off_worker(writer: Arc<CassetteWriter>, call: RecordedCall) {
        let seq = call.seq;
        if let Err(e) = tokio::task::spawn_blocking(move || writer.keep(&call)).await {
            tracing::error!(error = %e, seq, "the thread recording a model call failed");
        }
    }

    /// Writes `call`; a failure trips the tripwire (the run stops) and is logged.
    fn keep(&self, call: &RecordedCall) {
        if let Err(e) = self.write_call(call) {
            tracing::error!(error = %e, "recording a model call failed");
            if let Some(t) = &self.tripwire {
                t.trip(
                    TripKind::Runtime,
                    format!(
                        "recording into {} failed ({e}); the cassette lacks call {} and later \
                         ones, record again once the disk is fixed",
                        self.dir.display(),
                        call.seq
                    ),
                );
            }
        }
    }
}

/// `<seq, 8 digits or more>-<key>.json`.
pub(super) fn call_file_name(seq: u64, key: &str) -> String {
    format!("{seq:08}-{key}.json")
}

/// Writes `bytes` to `dir/name` atomically ([`crate::fswrite::replace`]: a synced, 0600 hidden
/// temporary file created new, then a rename), so the name holds the whole content or nothing.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), CassetteError> {
    crate::fswrite::replace(dir, name, bytes)
        .map_err(|e| CassetteError::io(format!("writing {}", dir.join(name).display()), e))
}

/// Any backend, recorded into a cassette. Its name is the wrapped backend's: a recorded run
/// is a run of that backend.
pub struct RecordingBackend {
    inner: Arc<dyn ModelBackend>,
    writer: Arc<CassetteWriter>,
}

impl RecordingBackend {
    /// Records `inner`'s calls with `writer`.
    pub fn new(inner: Arc<dyn ModelBackend>, writer: Arc<CassetteWriter>) -> Self {
        RecordingBackend { inner, writer }
    }
}

/// Milliseconds since `started` on tokio's clock.
fn offset_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The recorded form of a chunk.
fn event_of(chunk: &StreamChunk) -> StreamEvent {
    match chunk {
        StreamChunk::Text(text) => StreamEvent::Text { text: text.clone() },
        StreamChunk::ToolCall(call) => StreamEvent::ToolCall {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: match &call.arguments {
                Ok(value) => RecordedArguments::Json(value.clone()),
                Err(m) => RecordedArguments::Malformed {
                    raw: m.raw.clone(),
                    error: m.error.clone(),
                },
            },
        },
        StreamChunk::Done {
            finish_reason,
            usage,
        } => StreamEvent::Done {
            finish_reason: finish_reason.clone(),
            usage: *usage,
        },
    }
}

/// The recorded form of an error.
fn error_event(e: &ModelError) -> StreamEvent {
    StreamEvent::Error {
        backend: e.backend.clone(),
        kind: e.kind,
        message: e.message.clone(),
        request_id: e.request_id.clone(),
        mid_stream: e.mid_stream,
    }
}

/// A stream being recorded: `call` grows as chunks pass, and is written once it ends.
struct Tape {
    inner: ChunkStream,
    call: RecordedCall,
    started: Instant,
    writer: Arc<CassetteWriter>,
    written: bool,
}

impl Tape {
    fn push(&mut self, event: StreamEvent) {
        self.call.events.push(RecordedEvent {
            at_ms: offset_ms(self.started),
            event,
        });
    }

    /// Writes the call once (off the async workers); the tape keeps nothing after that.
    async fn write_once(&mut self) {
        if !self.written {
            self.written = true;
            let call = RecordedCall {
                seq: self.call.seq,
                key: std::mem::take(&mut self.call.key),
                request: std::mem::take(&mut self.call.request),
                opened: self.call.opened,
                events: std::mem::take(&mut self.call.events),
            };
            CassetteWriter::keep_off_worker(Arc::clone(&self.writer), call).await;
        }
    }
}

#[async_trait::async_trait]
impl ModelBackend for RecordingBackend {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn stream(&self, request: &ModelRequest) -> Result<ChunkStream, ModelError> {
        let seq = self.writer.take_seq();
        let started = Instant::now();
        let (key, request_json) = request_key(request)
            .map_err(|m| ModelError::new(self.name(), ModelErrorKind::Config, m))?;
        let mut call = RecordedCall {
            seq,
            key,
            request: request_json,
            opened: true,
            events: Vec::new(),
        };
        let inner = match self.inner.stream(request).await {
            Ok(stream) => stream,
            Err(e) => {
                call.opened = false;
                call.events.push(RecordedEvent {
                    at_ms: offset_ms(started),
                    event: error_event(&e),
                });
                CassetteWriter::keep_off_worker(Arc::clone(&self.writer), call).await;
                return Err(e);
            }
        };
        let tape = Tape {
            inner,
            call,
            started,
            writer: Arc::clone(&self.writer),
            written: false,
        };
        let stream = futures_util::stream::unfold(tape, |mut tape| async move {
            let item = tape.inner.next().await;
            if tape.written {
                // After the final chunk nothing more is recorded; what follows passes as is.
                return item.map(|i| (i, tape));
            }
            match &item {
                Some(Ok(chunk)) => {
                    tape.push(event_of(chunk));
                    if matches!(chunk, StreamChunk::Done { .. }) {
                        tape.write_once().await;
                    }
                }
                Some(Err(e)) => {
                    tape.push(error_event(e));
                    tape.write_once().await;
                }
                // Ended without a final chunk: kept so, and replayed so.
                None => tape.write_once().await,
            }
            item.map(|i| (i, tape))
        });
        Ok(Box::pin(stream))
    }

    async fn health_check(&self) -> Result<(), ModelError> {
        self.inner.health_check().await
    }
}
