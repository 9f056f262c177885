//! `veyra bench --record DIR` and `--replay DIR [--paced]`: the backend registry a run uses.
//!
//! `--record` wraps the configured backend in a [`RecordingBackend`] writing into a new
//! cassette whose manifest holds the run's plan. `--replay` opens the cassette first, so its
//! plan becomes the run's defaults (flags still override), and registers the `replay` backend
//! with the recorded model, temperature and max_tokens, which every recorded request carries.

use std::path::Path;
use std::sync::Arc;

use crate::benchmarks::RunPlan;
use crate::benchmarks::cassette::{
    Cassette, CassetteWriter, Manifest, Pacing, REPLAY_BACKEND, RecordingBackend, ReplayBackend,
    Tripwire,
};
use crate::config::VeyraConfig;
use crate::error::VeyraError;
use crate::models::{BackendRegistry, ModelBackend};

/// Opens the cassette in `dir`, makes its plan `plan` and its model the configuration's.
pub(super) fn open_replay(
    dir: &Path,
    config: &mut VeyraConfig,
    plan: &mut RunPlan,
) -> Result<Arc<Cassette>, VeyraError> {
    let cassette = Cassette::open(dir)?;
    let manifest = cassette.manifest();
    if let Some(suite) = &manifest.suite {
        return Err(VeyraError::Usage(format!(
            "{} recorded a run of the suite '{}'; replay it with `veyra bench --suite FILE \
             --replay {}`",
            dir.display(),
            crate::sanitize::quote(&suite.name),
            dir.display()
        )));
    }
    manifest.plan.apply(plan).map_err(|m| {
        VeyraError::Usage(format!(
            "{}: {m}; the manifest is damaged, record the cassette again",
            dir.join(crate::benchmarks::cassette::MANIFEST).display()
        ))
    })?;
    replay_model(dir, manifest, config)?;
    Ok(Arc::new(cassette))
}

/// Opens the cassette in `dir` for a run of `suite`: it must have recorded this suite, from a
/// file of the same bytes.
pub(super) fn open_suite_replay(
    dir: &Path,
    config: &mut VeyraConfig,
    suite: &crate::benchmarks::suite::Suite,
) -> Result<Arc<Cassette>, VeyraError> {
    let cassette = Cassette::open(dir)?;
    let manifest = cassette.manifest();
    match &manifest.suite {
        None => {
            return Err(VeyraError::Usage(format!(
                "{} recorded a run of the families, not a suite; replay it with `veyra bench \
                 --replay {}`",
                dir.display(),
                dir.display()
            )));
        }
        Some(recorded) if recorded.digest != suite.digest => {
            return Err(VeyraError::Usage(format!(
                "{} recorded the suite '{}' from a file with SHA-256 {}…; {} has {}… now: \
                 replay it with the file it recorded",
                dir.display(),
                crate::sanitize::quote(&recorded.name),
                recorded.digest.get(..12).unwrap_or(&recorded.digest),
                suite.source.display(),
                suite.digest.get(..12).unwrap_or(&suite.digest)
            )));
        }
        Some(_) => {}
    }
    replay_model(dir, manifest, config)?;
    Ok(Arc::new(cassette))
}

/// The configuration a replay runs with: backend `replay`, the recorded model, temperature and
/// max_tokens, and a workspace of its own.
fn replay_model(
    dir: &Path,
    manifest: &Manifest,
    config: &mut VeyraConfig,
) -> Result<(), VeyraError> {
    config.model.backend = REPLAY_BACKEND.to_string();
    config.model.model = manifest.model.clone();
    config.model.temperature = manifest.temperature;
    if !crate::config::RANGE_MAX_TOKENS.contains(&u64::from(manifest.max_tokens)) {
        return Err(VeyraError::Usage(format!(
            "{}: max_tokens {} is out of range; record the cassette again",
            dir.join(crate::benchmarks::cassette::MANIFEST).display(),
            manifest.max_tokens
        )));
    }
    config.model.max_tokens = manifest.max_tokens;
    // A cassette may come from someone else: the file tool calls it replays act on a workspace
    // of their own, never on the operator's files (the runner's scratch directories are made
    // there too).
    config.tools.workspace = Some(crate::config::data_dir().join("replay-workspace"));
    Ok(())
}

/// The registry a run uses: the built-in backends, with the configured one recorded into a
/// new cassette in `record`, or with `replay` answering from `replay`.
pub(super) fn registry(
    config: &VeyraConfig,
    manifest: &Manifest,
    record: Option<&Path>,
    replay: Option<(Arc<Cassette>, bool)>,
    tripwire: &Tripwire,
) -> Result<BackendRegistry, VeyraError> {
    let builtins = BackendRegistry::with_builtins();
    let mut registry = builtins.clone();
    if let Some(dir) = record {
        // Fail on the backend before a cassette directory is made for it.
        builtins.get_backend(&config.model.backend, &config.model)?;
        let writer = Arc::new(CassetteWriter::create(
            dir,
            manifest,
            config.model.api_key().ok().flatten(),
            Some(tripwire.clone()),
        )?);
        let name = config.model.backend.clone();
        registry.register_backend(
            &config.model.backend,
            Arc::new(move |cfg| {
                let inner = builtins.get_backend(&name, cfg)?;
                Ok(Arc::new(RecordingBackend::new(inner, Arc::clone(&writer)))
                    as Arc<dyn ModelBackend>)
            }),
        );
    }
    if let Some((cassette, paced)) = replay {
        let pacing = if paced {
            Pacing::Recorded {
                time_scale: config.latency.time_scale,
            }
        } else {
            Pacing::Instant
        };
        let backend: Arc<dyn ModelBackend> =
            Arc::new(ReplayBackend::new(cassette, pacing, Some(tripwire.clone())));
        registry.register_backend(REPLAY_BACKEND, Arc::new(move |_| Ok(Arc::clone(&backend))));
    }
    Ok(registry)
}
