//! Witnesses outside the node: after each checkpoint its store signs, a worker puts the
//! store's witness (the newest signed checkpoint and its Merkle frontier, `veyra.witness/1`) in
//! the fleet's `<stream>_WITNESS` bucket under the store's key. `veyra audit verify --witness
//! nats://host:port/BUCKET` holds a store against it: a node whose store was rolled back is
//! caught even when its local witness was rolled back with it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::{Fleet, nats_error};
use crate::core::VeyraCore;
use crate::error::VeyraError;
use crate::governance::witness::{FoundWitness, find_witnesses, parse_witness, store_key};

/// Longest a new checkpoint waits before its witness goes out: checkpoints that come faster
/// are sent as one (the newest).
const EVERY: Duration = Duration::from_millis(200);

/// Puts `core`'s witness in the fleet's bucket now and after each checkpoint, until `stop`
/// (and once more then). A failed put is logged; the next checkpoint tries again.
pub(super) async fn publish_witnesses(fleet: Fleet, core: VeyraCore, stop: CancellationToken) {
    let Some(store) = core.audit().map(|_| core.config().audit_store_path()) else {
        return;
    };
    let dirs = core.config().audit_witness_dirs();
    let bucket = fleet.witnesses();
    let key = store_key(&store);
    // Listened to before the first put, so a checkpoint made meanwhile is put after it.
    let mut checkpoints = core.checkpoints();
    let put = |bucket: async_nats::jetstream::kv::Store,
               store: PathBuf,
               dirs: Vec<PathBuf>,
               key: String| async move {
        let found = tokio::task::spawn_blocking(move || find_witnesses(&store, &dirs)).await;
        let Ok(Ok(found)) = found else { return };
        let Some(newest) = found
            .into_iter()
            .max_by_key(|f| f.witness.checkpoint.tree_size)
        else {
            return;
        };
        match serde_json::to_vec(&newest.witness) {
            Ok(bytes) => {
                if let Err(e) = bucket.put(&key, Bytes::from(bytes)).await {
                    tracing::warn!("putting the witness in the fleet's bucket: {e}");
                }
            }
            Err(e) => tracing::warn!("encoding the witness: {e}"),
        }
    };
    put(bucket.clone(), store.clone(), dirs.clone(), key.clone()).await;
    // When the checkpoints made since the last put are put: EVERY after the first of them,
    // however many come meanwhile.
    let mut due: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            changed = checkpoints.changed() => match changed {
                Ok(()) => {
                    due.get_or_insert_with(|| tokio::time::Instant::now() + EVERY);
                }
                Err(_) => break,
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                due = None;
                put(bucket.clone(), store.clone(), dirs.clone(), key.clone()).await;
            }
            () = stop.cancelled() => break,
        }
    }
    put(bucket, store, dirs, key).await;
}

/// The witness the fleet at `url` (`nats://host:port/BUCKET`) holds for the store at `store`.
pub async fn fetch_witness(
    config: &crate::config::NatsConfig,
    url: &str,
    store: &Path,
) -> Result<FoundWitness, VeyraError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| VeyraError::Usage(format!("--witness {url}: not a URL ({e})")))?;
    let bucket = parsed.path().trim_matches('/').to_string();
    if !crate::config::is_nats_token(&bucket) {
        return Err(VeyraError::Usage(format!(
            "--witness {}: name the bucket after the server, e.g. nats://127.0.0.1:4222/VEYRA_TASKS_WITNESS",
            crate::sanitize::quote(url)
        )));
    }
    let server = format!(
        "{}://{}:{}",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default(),
        parsed.port().unwrap_or(4222)
    );
    if let Some(why) = crate::config::nats_url_refusal(&server) {
        return Err(VeyraError::Usage(format!("--witness {why}")));
    }
    let mut options = async_nats::ConnectOptions::new()
        .name(concat!("veyra/", env!("CARGO_PKG_VERSION")))
        .connection_timeout(Duration::from_secs(5));
    if let Some(creds) = &config.credentials {
        options = options
            .credentials_file(creds)
            .await
            .map_err(|e| VeyraError::Usage(format!("nats.credentials: {e}")))?;
    }
    let client = options
        .connect(server.as_str())
        .await
        .map_err(|e| nats_error(&format!("connecting to {server}"), e))?;
    let js = async_nats::jetstream::new(client);
    let kv = js
        .get_key_value(&bucket)
        .await
        .map_err(|e| nats_error(&format!("opening bucket {bucket}"), e))?;
    let key = store_key(store);
    let shown = format!("{server}/{bucket} (key {key})");
    let bytes = kv
        .get(&key)
        .await
        .map_err(|e| nats_error(&format!("reading {shown}"), e))?
        .ok_or_else(|| {
            VeyraError::Usage(format!(
                "{shown} holds no witness of {}; a worker puts one after its store's first checkpoint",
                store.display()
            ))
        })?;
    let witness = parse_witness(&bytes, &shown)?;
    Ok(FoundWitness {
        path: PathBuf::from(shown),
        witness,
    })
}
