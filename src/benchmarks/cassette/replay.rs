//! Replaying: [`Cassette`] opens a cassette directory (manifest checked, call files indexed
//! by name, none read yet) and [`ReplayBackend`] answers each request with the next recorded
//! stream of the same key.
//!
//! # Timing
//! By default ([`Pacing::Instant`]) a replay sends every recorded chunk at once: a re-score
//! wants speed. [`Pacing::Recorded`] honours the recorded offsets divided by a time scale
//! (`veyra bench --replay DIR --paced` uses `latency.time_scale`), for a replay that should
//! look like the run did. Offsets are bounded by [`super::MAX_OFFSET_MS`] when a call is read,
//! and waits go through [`crate::limits`], so no recorded number can sleep for ever.
//!
//! # Misses
//! A request whose key is not in the cassette, or asked for more often than recorded, or whose
//! call file is damaged, is a `config` error from backend `replay` (never retried) that says
//! what differs and what to do, and it trips the [`Tripwire`] so the run stops at once.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cap_std::fs::Dir;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::{
    CALLS, CassetteError, FORMAT, FORMAT_FAMILY, MANIFEST, MAX_CALL_BYTES, MAX_CALLS,
    MAX_MANIFEST_BYTES, MAX_OFFSET_MS, Manifest, REPLAY_BACKEND, RecordedArguments, RecordedCall,
    StreamEvent, TripKind, Tripwire, request_key,
};
use crate::models::{
    ChunkStream, MalformedArguments, ModelBackend, ModelError, ModelErrorKind, ModelRequest,
    StreamChunk, ToolCall,
};

/// How a replay spaces the recorded chunks (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Pacing {
    /// Every chunk at once.
    #[default]
    Instant,
    /// Each chunk at its recorded offset divided by `time_scale` (2 plays twice as fast).
    Recorded {
        /// How much faster than recorded; non-positive or NaN waits nothing.
        time_scale: f64,
    },
}

/// The recorded calls of one key, in order.
#[derive(Debug, Default)]
struct Queue {
    /// (seq, file name) of the calls not replayed yet.
    files: VecDeque<(u64, String)>,
    /// How many calls of this key the cassette holds.
    recorded: usize,
}

/// Why no recorded call answers a request.
enum Miss {
    /// The key is not in the cassette.
    NotRecorded,
    /// Every recorded call of the key was replayed already.
    Exhausted(usize),
    /// The call file is unusable.
    Damaged(String),
}

/// An opened cassette directory.
#[derive(Debug)]
pub struct Cassette {
    path: PathBuf,
    calls: Dir,
    manifest: Manifest,
    queues: Mutex<BTreeMap<String, Queue>>,
    total: usize,
}

/// A test's hook, called with the file's path between [`read_bounded`]'s checks of a name and
/// its open (tests swap files there).
#[cfg(test)]
pub(super) type OpenHook = Box<dyn Fn(&Path)>;

#[cfg(test)]
thread_local! {
    /// The hook of the current thread, if any.
    pub(super) static BEFORE_OPEN: std::cell::RefCell<Option<OpenHook>> =
        const { std::cell::RefCell::new(None) };
}

/// Reads `dir/name` whole when it is a plain file of at most `limit` bytes. The name is
/// checked first (a missing file or a symlink says so), then opened without waiting
/// ([`crate::fsread::OPEN_FLAGS`]) and the opened handle checked again: a FIFO or device swapped
/// in between is refused, never waited on or read without end.
fn read_bounded(dir: &Dir, name: &str, limit: u64, shown: &Path) -> Result<Vec<u8>, CassetteError> {
    use cap_std::fs::OpenOptionsExt;
    let file_path = shown.join(name);
    let path = file_path.display();
    let meta = dir.symlink_metadata(name).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CassetteError::Invalid(format!(
                "{path} is missing: {} is not a complete cassette; give the directory `veyra \
                 bench --record DIR` wrote",
                shown.display()
            ))
        } else {
            CassetteError::io(format!("reading {path}"), e)
        }
    })?;
    if meta.file_type().is_symlink() {
        return Err(CassetteError::Invalid(format!(
            "{path} is a symbolic link; a cassette holds plain files only (copy the file in \
             instead of linking it)"
        )));
    }
    let not_plain = || {
        CassetteError::Invalid(format!(
            "{path} is not a plain file; the cassette is damaged, record it again"
        ))
    };
    if !meta.is_file() {
        return Err(not_plain());
    }
    let too_big = || {
        CassetteError::Invalid(format!(
            "{path} is larger than {} (the most a cassette file may have); it is not a \
             cassette file, record the run again",
            crate::fsread::human_bytes(limit)
        ))
    };
    if meta.len() > limit {
        return Err(too_big());
    }
    #[cfg(test)]
    BEFORE_OPEN.with(|hook| {
        if let Some(hook) = hook.borrow().as_ref() {
            hook(&file_path);
        }
    });
    let mut options = cap_std::fs::OpenOptions::new();
    options.read(true).custom_flags(crate::fsread::OPEN_FLAGS);
    let file = dir
        .open_with(name, &options)
        .map_err(|e| CassetteError::io(format!("opening {path}"), e))?
        .into_std();
    let checked = |e: crate::fsread::BoundedReadError| match e {
        crate::fsread::BoundedReadError::Io { source, .. } => {
            CassetteError::io(format!("reading {path}"), source)
        }
        crate::fsread::BoundedReadError::NotRegular { .. }
        | crate::fsread::BoundedReadError::NotUtf8 { .. } => not_plain(),
        crate::fsread::BoundedReadError::TooLarge { .. } => too_big(),
    };
    let meta = crate::fsread::check_regular(&file, &file_path, "cassette file").map_err(checked)?;
    if meta.len() > limit {
        return Err(too_big());
    }
    crate::fsread::read_capped(file, &file_path, limit, "cassette file").map_err(checked)
}

/// `(seq, key)` of a call file name `<seq>-<64 hex>.json`.
fn parse_call_name(name: &str) -> Option<(u64, String)> {
    let stem = name.strip_suffix(".json")?;
    let (seq, key) = stem.split_once('-')?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if key.len() != 64 || !key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Some((seq.parse().ok()?, key.to_string()))
}

impl Cassette {
    /// Opens the cassette in `path`: reads and checks the manifest and indexes the call files.
    /// Every problem is a [`CassetteError::Invalid`] naming the file and what to do.
    pub fn open(path: &Path) -> Result<Self, CassetteError> {
        let shown = path.display();
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority()).map_err(|e| match e
            .kind()
        {
            std::io::ErrorKind::NotFound => CassetteError::Invalid(format!(
                "--replay {shown}: no such directory; give the directory `veyra bench \
                     --record DIR` wrote"
            )),
            std::io::ErrorKind::NotADirectory => CassetteError::Invalid(format!(
                "--replay {shown}: not a directory; give the directory `veyra bench --record \
                     DIR` wrote"
            )),
            _ => CassetteError::io(format!("opening {shown}"), e),
        })?;
        let manifest = read_manifest(&dir, path)?;
        let calls_path = path.join(CALLS);
        let calls_meta = dir.symlink_metadata(CALLS).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CassetteError::Invalid(format!(
                    "{} is missing: not a complete cassette; record it again",
                    calls_path.display()
                ))
            } else {
                CassetteError::io(format!("reading {}", calls_path.display()), e)
            }
        })?;
        if !calls_meta.is_dir() || calls_meta.file_type().is_symlink() {
            return Err(CassetteError::Invalid(format!(
                "{} is not a plain directory; the cassette is damaged, record it again",
                calls_path.display()
            )));
        }
        let calls = dir
            .open_dir(CALLS)
            .map_err(|e| CassetteError::io(format!("opening {}", calls_path.display()), e))?;
        let mut index: Vec<(u64, String, String)> = Vec::new();
        let entries = calls
            .entries()
            .map_err(|e| CassetteError::io(format!("listing {}", calls_path.display()), e))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| CassetteError::io(format!("listing {}", calls_path.display()), e))?;
            let os_name = entry.file_name();
            let name = os_name.to_string_lossy().into_owned();
            // Temporary files of a write that a crash interrupted: not calls.
            if name.starts_with('.') {
                continue;
            }
            let shown_name = crate::sanitize::quote(&name);
            let kind = entry.file_type().map_err(|e| {
                CassetteError::io(format!("reading {}/{shown_name}", calls_path.display()), e)
            })?;
            if kind.is_symlink() {
                return Err(CassetteError::Invalid(format!(
                    "{}/{shown_name} is a symbolic link; a cassette holds plain files only",
                    calls_path.display()
                )));
            }
            let parsed = os_name
                .to_str()
                .and_then(parse_call_name)
                .filter(|_| kind.is_file());
            let Some((seq, key)) = parsed else {
                return Err(CassetteError::Invalid(format!(
                    "{}/{shown_name} is not a call file (<seq>-<sha256>.json); remove it or \
                     record the cassette again",
                    calls_path.display()
                )));
            };
            if index.len() >= MAX_CALLS {
                return Err(CassetteError::Invalid(format!(
                    "{} holds more than {MAX_CALLS} calls, more than a cassette may; split the \
                     run into smaller ones",
                    calls_path.display()
                )));
            }
            index.push((seq, key, name));
        }
        index.sort();
        if let Some(w) = index.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(CassetteError::Invalid(format!(
                "{}: call number {} appears twice ({} and {}); the cassette is damaged, record \
                 it again",
                calls_path.display(),
                w[0].0,
                w[0].2,
                w[1].2
            )));
        }
        let total = index.len();
        let mut queues: BTreeMap<String, Queue> = BTreeMap::new();
        for (seq, key, name) in index {
            let q = queues.entry(key).or_default();
            q.files.push_back((seq, name));
            q.recorded += 1;
        }
        Ok(Cassette {
            path: path.to_path_buf(),
            calls,
            manifest,
            queues: Mutex::new(queues),
            total,
        })
    }

    /// The cassette's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The cassette's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many calls it holds.
    pub fn len(&self) -> usize {
        self.total
    }

    /// True when it holds no call.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The next recorded call of `key`, read and checked.
    fn next_call(&self, key: &str) -> Result<RecordedCall, Miss> {
        let (seq, name) = {
            let mut queues = match self.queues.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let Some(queue) = queues.get_mut(key) else {
                return Err(Miss::NotRecorded);
            };
            match queue.files.pop_front() {
                Some(next) => next,
                None => return Err(Miss::Exhausted(queue.recorded)),
            }
        };
        let dir = self.path.join(CALLS);
        let bytes = read_bounded(&self.calls, &name, MAX_CALL_BYTES, &dir)
            .map_err(|e| Miss::Damaged(e.to_string()))?;
        let file = dir.join(&name);
        let call: RecordedCall = serde_json::from_slice(&bytes).map_err(|e| {
            Miss::Damaged(format!(
                "{} is not a valid call record ({e}); the cassette is damaged, record it again",
                file.display()
            ))
        })?;
        check_call(&call, seq, key).map_err(|m| {
            Miss::Damaged(format!(
                "{}: {m}; the cassette is damaged, record it again",
                file.display()
            ))
        })?;
        Ok(call)
    }
}

/// Reads and checks `manifest.json`.
fn read_manifest(dir: &Dir, path: &Path) -> Result<Manifest, CassetteError> {
    let file = path.join(MANIFEST);
    let shown = file.display();
    let bytes = read_bounded(dir, MANIFEST, MAX_MANIFEST_BYTES, path)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        CassetteError::Invalid(format!(
            "{shown} is not JSON ({e}); it is not a Veyra cassette or it is damaged, record it \
             again"
        ))
    })?;
    match value.get("format").and_then(serde_json::Value::as_str) {
        Some(FORMAT) => {}
        Some(other) if other.starts_with(FORMAT_FAMILY) => {
            return Err(CassetteError::Invalid(format!(
                "{shown}: cassette format '{}' is not readable by this Veyra, which reads \
                 {FORMAT}; replay it with the Veyra version that recorded it, or record it again",
                crate::sanitize::quote(other)
            )));
        }
        _ => {
            return Err(CassetteError::Invalid(format!(
                "{shown} has no \"format\": \"{FORMAT}\"; it is not a Veyra cassette"
            )));
        }
    }
    let manifest: Manifest = serde_json::from_value(value).map_err(|e| {
        CassetteError::Invalid(format!(
            "{shown}: {e}; the manifest is damaged, record the cassette again"
        ))
    })?;
    manifest.validate().map_err(|m| {
        CassetteError::Invalid(format!(
            "{shown}: {m}; the manifest is damaged, record the cassette again"
        ))
    })?;
    Ok(manifest)
}

/// What a call file must hold to be replayed.
fn check_call(call: &RecordedCall, seq: u64, key: &str) -> Result<(), String> {
    if call.seq != seq || call.key != key {
        return Err(format!(
            "its content (call {}, key {}) does not match its name",
            call.seq,
            crate::sanitize::quote(&crate::sanitize::excerpt(&call.key, 64))
        ));
    }
    if let Some(e) = call.events.iter().find(|e| e.at_ms > MAX_OFFSET_MS) {
        return Err(format!(
            "an event at {} ms is later than the {MAX_OFFSET_MS} ms a call may last",
            e.at_ms
        ));
    }
    let finals = call.events.iter().filter(|e| e.event.is_final()).count();
    let last_final = call.events.last().is_some_and(|e| e.event.is_final());
    if finals > 1 || (finals == 1 && !last_final) {
        return Err("an event follows the stream's final one".into());
    }
    let only_an_error = call.events.len() == 1
        && matches!(
            call.events.first().map(|e| &e.event),
            Some(StreamEvent::Error { .. })
        );
    if !call.opened && !only_an_error {
        return Err("a call that failed before streaming must hold exactly its error".into());
    }
    Ok(())
}

/// The chunk or error a recorded event replays as.
fn replayed(event: StreamEvent) -> Result<StreamChunk, ModelError> {
    match event {
        StreamEvent::Text { text } => Ok(StreamChunk::Text(text)),
        StreamEvent::ToolCall {
            id,
            name,
            arguments,
        } => Ok(StreamChunk::ToolCall(ToolCall {
            id,
            name,
            arguments: match arguments {
                RecordedArguments::Json(value) => Ok(value),
                RecordedArguments::Malformed { raw, error } => {
                    Err(MalformedArguments { raw, error })
                }
            },
        })),
        StreamEvent::Done {
            finish_reason,
            usage,
        } => Ok(StreamChunk::Done {
            finish_reason,
            usage,
        }),
        StreamEvent::Error {
            backend,
            kind,
            message,
            request_id,
            mid_stream,
        } => Err(ModelError {
            backend,
            kind,
            message,
            request_id,
            mid_stream,
        }),
    }
}

/// Waits until `at_ms` after `started` when pacing asks for it.
async fn pace(pacing: Pacing, started: Instant, at_ms: u64) {
    if let Pacing::Recorded { time_scale } = pacing {
        let wait = crate::limits::secs_f64(at_ms as f64 / 1000.0 / time_scale);
        tokio::time::sleep_until(crate::limits::deadline(started, wait)).await;
    }
}

/// The `replay` backend: answers from a cassette (see the module docs).
#[derive(Debug, Clone)]
pub struct ReplayBackend {
    cassette: Arc<Cassette>,
    pacing: Pacing,
    tripwire: Option<Tripwire>,
}

impl ReplayBackend {
    /// Replays `cassette` with `pacing`; a miss trips `tripwire`.
    pub fn new(cassette: Arc<Cassette>, pacing: Pacing, tripwire: Option<Tripwire>) -> Self {
        ReplayBackend {
            cassette,
            pacing,
            tripwire,
        }
    }

    /// The error of a miss, after tripping the tripwire with it.
    fn fail(&self, message: String) -> ModelError {
        if let Some(t) = &self.tripwire {
            t.trip(TripKind::Usage, message.clone());
        }
        ModelError::new(REPLAY_BACKEND, ModelErrorKind::Config, message)
    }

    fn miss_message(&self, miss: Miss, key: &str, request: &ModelRequest) -> String {
        let path = self.cassette.path.display();
        let prompt = crate::sanitize::quote(&crate::sanitize::excerpt(request.prompt(), 60));
        let short = key.get(..12).unwrap_or(key);
        let m = &self.cassette.manifest;
        match miss {
            Miss::NotRecorded => format!(
                "replay: request {short} (prompt \"{prompt}\") is not in the cassette {path}, \
                 recorded as {}; the tasks, prompts, tools or model settings differ from the \
                 recording — replay with the recorded plan (no --family/--count/--difficulty/\
                 --seed) and configuration, or record the run again with `veyra bench --record \
                 DIR`",
                m.describe()
            ),
            Miss::Exhausted(n) => format!(
                "replay: the cassette {path} holds request {short} (prompt \"{prompt}\") {n} \
                 time{} and the run asked for it once more; replay with the recorded --epochs \
                 {}, or record the run again with `veyra bench --record DIR`",
                if n == 1 { "" } else { "s" },
                m.plan.epochs
            ),
            Miss::Damaged(message) => format!("replay: {message}"),
        }
    }
}

#[async_trait::async_trait]
impl ModelBackend for ReplayBackend {
    fn name(&self) -> &str {
        REPLAY_BACKEND
    }

    async fn stream(&self, request: &ModelRequest) -> Result<ChunkStream, ModelError> {
        let started = Instant::now();
        let (key, _) = request_key(request).map_err(|m| self.fail(format!("replay: {m}")))?;
        let call = self
            .cassette
            .next_call(&key)
            .map_err(|miss| self.fail(self.miss_message(miss, &key, request)))?;
        let pacing = self.pacing;
        if !call.opened {
            // `check_call` made sure the one event is the error.
            let mut events = call.events.into_iter();
            return match events.next() {
                Some(e) => {
                    pace(pacing, started, e.at_ms).await;
                    match replayed(e.event) {
                        Err(error) => Err(error),
                        Ok(_) => Err(self.fail("replay: a failed call holds no error".into())),
                    }
                }
                None => Err(self.fail("replay: a failed call holds no error".into())),
            };
        }
        let stream = futures_util::stream::iter(call.events).then(move |e| async move {
            pace(pacing, started, e.at_ms).await;
            replayed(e.event)
        });
        Ok(Box::pin(stream))
    }

    async fn health_check(&self) -> Result<(), ModelError> {
        Ok(())
    }
}
