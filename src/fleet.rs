//! The fleet: tasks run by workers on many hosts, over NATS JetStream — the runtime
//! service's events and commands on another transport, never one of Veyra's own (DESIGN §8).
//!
//! ```text
//! submitter ──publish (msg id = execution id)──▶ <prefix>.tasks.<priority>   (work-queue stream)
//!                                                   │ one durable pull consumer per priority,
//!                                                   ▼ shared by every worker, critical first
//! worker (a full core: its own policy, boundary, audit store) ──▶ <prefix>.events.<execution>
//!        └─ attempts KV: who runs it, whether its tools acted (written before they act), and
//!           its outcome (the record made final, kept before the task is acknowledged)
//! ```
//!
//! - [`wire`]: what crosses the bus — a task, an attempt record, a result — each one JSON
//!   object, size-capped and checked before anything acts on it.
//! - [`Fleet`]: one connection and the names derived from `nats:` (the stream, its
//!   consumers, the buckets), created when missing with settings a 2.9 server takes.
//! - [`Worker`]: pulls, runs through its own core and gate, says it is still at a task well
//!   within `ack_wait`, and acknowledges once the outcome is kept. A task redelivered after a
//!   worker was lost runs again only if its first attempt's tools had not acted and nothing had
//!   streamed (DESIGN §9): otherwise it fails, named as lost with that worker.
//! - [`Submitter`]: publishes a task and follows its events to their end.
//! - [`fetch_witness`] and the worker's witness publisher: each store's newest signed
//!   checkpoint kept in the `<stream>_WITNESS` bucket, outside the node.
//! - `node` (worker side) and [`attach`] (console side): one console over every worker. Each
//!   worker says it is up in the `<stream>_WORKERS` bucket, forwards its runtime's journal on
//!   `<prefix>.node.<worker>.events` while a console watches, sends a console its snapshot, and
//!   carries out the runtime-wide commands a console sends on
//!   `<prefix>.commands.node.<worker>`; the console's side serves all of it as one
//!   `veyra.rpc/1` session, so the console is the one it is on a single runtime.

pub mod bench;
pub mod wire;

mod node;
mod submit;
mod view;
mod witness;
mod worker;

pub use submit::{Submission, Submitter};
pub use view::attach;
pub use witness::fetch_witness;
pub use worker::{Worker, WorkerOptions};

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};

use crate::config::NatsConfig;
use crate::error::VeyraError;
use crate::events::Priority;

/// One connection to the fleet's server, and the names `nats:` derives.
#[derive(Clone)]
pub struct Fleet {
    client: async_nats::Client,
    js: jetstream::Context,
    config: std::sync::Arc<NatsConfig>,
    url: std::sync::Arc<str>,
    /// Opened once at connect: opening a bucket asks the server for its stream's info.
    buckets: std::sync::Arc<Buckets>,
}

/// The fleet's key-value buckets.
struct Buckets {
    /// Who runs each execution, whether its tools acted, and its outcome once it ended.
    attempts: kv::Store,
    /// Each store's newest signed checkpoint.
    witness: kv::Store,
    /// Each live worker's [`FleetWorker`](crate::service::protocol::FleetWorker).
    workers: kv::Store,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("url", &self.url)
            .field("stream", &self.config.stream)
            .finish_non_exhaustive()
    }
}

/// A NATS error as Veyra's: what failed, and the server's reason.
pub(crate) fn nats_error(what: &str, e: impl std::fmt::Display) -> VeyraError {
    VeyraError::Runtime(crate::sanitize::sanitize_line(&format!("{what}: {e}")).into_owned())
}

impl Fleet {
    /// Connects to `url` (or `nats.url`) with `nats.credentials` when set, and makes sure the
    /// stream, its consumers and the buckets exist.
    pub async fn connect(config: &NatsConfig, url: Option<&str>) -> Result<Fleet, VeyraError> {
        let url = match url.or(config.url.as_deref()) {
            Some(u) => u.to_string(),
            None => {
                return Err(VeyraError::Usage(
                    "no NATS server named: give --nats URL or set nats.url".into(),
                ));
            }
        };
        if let Some(why) = crate::config::nats_url_refusal(&url) {
            return Err(VeyraError::Usage(format!("--nats {why}")));
        }
        let mut options = async_nats::ConnectOptions::new()
            .name(concat!("veyra/", env!("CARGO_PKG_VERSION")))
            .connection_timeout(Duration::from_secs(5));
        if let Some(creds) = &config.credentials {
            options = options.credentials_file(creds).await.map_err(|e| {
                VeyraError::Usage(format!(
                    "nats.credentials {}: {e}",
                    crate::sanitize::quote(&creds.display().to_string())
                ))
            })?;
        }
        let client = options
            .connect(url.as_str())
            .await
            .map_err(|e| nats_error(&format!("connecting to {url}"), e))?;
        let js = jetstream::new(client.clone());
        let buckets = ensure(&js, config).await?;
        Ok(Fleet {
            client,
            js,
            config: std::sync::Arc::new(config.clone()),
            url: url.into(),
            buckets: std::sync::Arc::new(buckets),
        })
    }

    /// The server's address, as connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The subject a task of `priority` is published on.
    pub fn task_subject(&self, priority: Priority) -> String {
        task_subject(&self.config, priority)
    }

    /// The subject an execution's events are published on.
    pub fn events_subject(&self, id: crate::events::ExecutionId) -> String {
        format!("{}.events.{}", self.config.subject_prefix, id.0.simple())
    }

    /// The subject a cancel of an execution is published on.
    pub fn cancel_subject(&self, id: crate::events::ExecutionId) -> String {
        format!(
            "{}.commands.cancel.{}",
            self.config.subject_prefix,
            id.0.simple()
        )
    }

    /// The subject a submitter says it has published on (the priority's name as the message),
    /// so idle workers poll that priority at once.
    pub fn wake_subject(&self) -> String {
        format!("{}.wake", self.config.subject_prefix)
    }

    /// Where worker `key` ([`node::node_key`]) publishes its runtime's events for consoles.
    fn node_events_subject(&self, key: &str) -> String {
        format!("{}.node.{key}.events", self.config.subject_prefix)
    }

    /// Where worker `key` is asked for its runtime's snapshot.
    fn node_snapshot_subject(&self, key: &str) -> String {
        format!("{}.node.{key}.snapshot", self.config.subject_prefix)
    }

    /// Where worker `key` takes a console's commands.
    fn node_command_subject(&self, key: &str) -> String {
        format!("{}.commands.node.{key}", self.config.subject_prefix)
    }

    /// Where consoles say they are watching, so workers publish their events.
    fn watch_subject(&self) -> String {
        format!("{}.watch", self.config.subject_prefix)
    }

    fn consumer_name(&self, priority: Priority) -> String {
        consumer_name(&self.config, priority)
    }

    async fn consumer(
        &self,
        priority: Priority,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, VeyraError> {
        let stream = self
            .js
            .get_stream(&self.config.stream)
            .await
            .map_err(|e| nats_error("opening the task stream", e))?;
        let name = self.consumer_name(priority);
        stream
            .get_consumer(&name)
            .await
            .map_err(|e| nats_error(&format!("opening consumer {name}"), e))
    }

    /// The attempts bucket: who runs each execution, and whether its tools acted.
    fn attempts(&self) -> kv::Store {
        self.buckets.attempts.clone()
    }

    /// The presence bucket: each live worker's [`FleetWorker`](crate::service::protocol::FleetWorker).
    fn workers(&self) -> kv::Store {
        self.buckets.workers.clone()
    }

    /// The witness bucket: each store's newest signed checkpoint.
    fn witnesses(&self) -> kv::Store {
        self.buckets.witness.clone()
    }

    /// The final outcome of execution `id`, when a worker kept one (its record is final).
    pub async fn result(
        &self,
        id: crate::events::ExecutionId,
    ) -> Result<Option<wire::TaskResult>, VeyraError> {
        let Some(bytes) = self
            .buckets
            .attempts
            .get(wire::key(id))
            .await
            .map_err(|e| nats_error("reading a result", e))?
        else {
            return Ok(None);
        };
        let damaged =
            |e: String| VeyraError::Runtime(format!("the record of {id} is damaged: {e}"));
        let head = wire::AttemptHead::decode(&bytes).map_err(damaged)?;
        if head.phase != wire::Phase::Final {
            return Ok(None);
        }
        if !head.has_outcome() {
            return self.legacy_result(id).await;
        }
        match wire::Attempt::decode(&bytes) {
            Ok(record) => Ok(record.outcome),
            // Final, but written by a newer worker in a form this version cannot read: told as
            // such, not waited on for ever.
            Err(e) => Ok(Some(wire::TaskResult {
                id,
                worker: head.worker,
                attempt: head.attempt,
                status: "failed".into(),
                text: String::new(),
                error: Some(format!(
                    "it ended on the fleet, but its outcome is in a form this version of veyra \
                     cannot read ({e}); upgrade to read it"
                )),
                at: chrono::Utc::now(),
                items: Vec::new(),
            })),
        }
    }

    /// The outcome an earlier version's worker kept apart from its final record, in the
    /// `<stream>_RESULTS` bucket (kept a week), when there is that bucket and it has one.
    pub(crate) async fn legacy_result(
        &self,
        id: crate::events::ExecutionId,
    ) -> Result<Option<wire::TaskResult>, VeyraError> {
        let bucket = format!("{}_RESULTS", self.config.stream);
        // No such bucket is the answer "none"; a server that cannot say is an error (the
        // caller hands the task back rather than take it for lost).
        if let Err(e) = self.js.get_stream(format!("KV_{bucket}")).await {
            return match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(None)
                }
                _ => Err(nats_error("looking for an earlier version's results", e)),
            };
        }
        let store = self
            .js
            .get_key_value(&bucket)
            .await
            .map_err(|e| nats_error(&format!("opening bucket {bucket}"), e))?;
        let Some(bytes) = store
            .get(wire::key(id))
            .await
            .map_err(|e| nats_error("reading a result", e))?
        else {
            return Ok(None);
        };
        // One that cannot be read is still kept: told as a failure that says so, rather than
        // an error asked about again for ever.
        let read = if bytes.len() > wire::MAX_RESULT_BYTES {
            Err(format!("{} bytes, over the limit", bytes.len()))
        } else {
            serde_json::from_slice::<wire::TaskResult>(&bytes).map_err(|e| e.to_string())
        };
        Ok(Some(read.unwrap_or_else(|e| wire::TaskResult {
            id,
            worker: "(an earlier version's worker)".into(),
            attempt: 0,
            status: "failed".into(),
            text: String::new(),
            error: Some(format!("its kept result is damaged ({e})")),
            at: chrono::Utc::now(),
            items: Vec::new(),
        })))
    }
}

/// The subject a task of `priority` is published on.
fn task_subject(config: &NatsConfig, priority: Priority) -> String {
    format!("{}.tasks.{}", config.subject_prefix, priority.name())
}

fn consumer_name(config: &NatsConfig, priority: Priority) -> String {
    format!("{}-{}", config.subject_prefix, priority.name())
}

/// The stream, a consumer per priority and the buckets, created when missing; the buckets
/// opened.
async fn ensure(js: &jetstream::Context, config: &NatsConfig) -> Result<Buckets, VeyraError> {
    let stream = js
        .get_or_create_stream(stream::Config {
            name: config.stream.clone(),
            // The five priorities only: a message on any other subject would match no
            // consumer and stay for good.
            subjects: Priority::ALL
                .iter()
                .map(|p| task_subject(config, *p))
                .collect(),
            // A task nobody took within a week is dropped rather than kept for ever.
            max_age: Duration::from_secs(7 * 24 * 3600),
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            max_message_size: i32::try_from(wire::MAX_TASK_BYTES).unwrap_or(i32::MAX),
            duplicate_window: Duration::from_secs(120),
            ..stream::Config::default()
        })
        .await
        .map_err(|e| nats_error(&format!("creating stream {}", config.stream), e))?;
    for priority in Priority::ALL {
        let name = consumer_name(config, priority);
        stream
            .get_or_create_consumer::<consumer::pull::Config>(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: task_subject(config, priority),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_millis(config.ack_wait_ms),
                    max_ack_pending: 10_000,
                    ..consumer::pull::Config::default()
                },
            )
            .await
            .map_err(|e| nats_error(&format!("creating consumer {name}"), e))?;
    }
    let bucket = |what: &str| format!("{}_{what}", config.stream);
    // Records and results are kept a week: long past any redelivery.
    let week = Duration::from_secs(7 * 24 * 3600);
    let file = stream::StorageType::File;
    Ok(Buckets {
        attempts: ensure_bucket(js, &bucket("ATTEMPTS"), week, file, wire::MAX_RESULT_BYTES)
            .await?,
        witness: ensure_bucket(js, &bucket("WITNESS"), week, file, wire::MAX_RESULT_BYTES).await?,
        // Who is up: each worker says so every PRESENCE_EVERY, and one that stops saying so is
        // forgotten by the server after PRESENCE_AGE. Nothing in it outlives a restart.
        workers: ensure_bucket(
            js,
            &bucket("WORKERS"),
            node::PRESENCE_AGE,
            stream::StorageType::Memory,
            node::MAX_NODE_MESSAGE,
        )
        .await?,
    })
}

/// A key-value bucket, opened, or created when missing as the client library would create it
/// — a stream `KV_<bucket>` on `$KV.<bucket>.>` keeping the last value of each key — but
/// without its account query, whose answer a 2.9 server words in a way this client version
/// does not read.
async fn ensure_bucket(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
    storage: stream::StorageType,
    max_size: usize,
) -> Result<kv::Store, VeyraError> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        max_message_size: i32::try_from(max_size).unwrap_or(i32::MAX),
        storage,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..stream::Config::default()
    })
    .await
    .map_err(|e| nats_error(&format!("creating bucket {bucket}"), e))?;
    js.get_key_value(bucket)
        .await
        .map_err(|e| nats_error(&format!("opening bucket {bucket}"), e))
}

#[cfg(test)]
mod tests;
