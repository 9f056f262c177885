//! A suite's run as the benchmark store keeps it: a new run recorded before anything runs, or
//! the stored run being finished — found by its name and held to the same file read the same
//! way — with the results it has already; and a stored run read back as the report its run
//! printed. `veyra bench --suite` and a serving runtime's suite runs both start here, so a run
//! is kept the same way whoever runs it.

use super::format::Suite;
use super::run::{SampleResult, SuiteReport, summarize};
use crate::benchmarks::store::{BenchStore, RunStatus, SuiteRunInfo};
use crate::core::VeyraCore;
use crate::error::VeyraError;

/// The run `suite` (read from `source` with `map`, `input=question,…` or empty) is kept as:
/// the stored run `resume` names, reopened with its results, or a new one of its first
/// `count` samples (all when `None`), recorded. A suite that cannot run on `core` is refused
/// before anything is stored or reopened.
pub fn open_run(
    store: &BenchStore,
    core: &VeyraCore,
    suite: &Suite,
    source: &str,
    map: &str,
    resume: Option<&str>,
    count: Option<usize>,
) -> Result<(SuiteRunInfo, Vec<(usize, SampleResult)>), VeyraError> {
    match resume {
        Some(name) => {
            let found = find_resumable(store, name, suite, map)?;
            super::run::check(
                core,
                suite,
                Some(usize::try_from(found.total).unwrap_or(usize::MAX)),
            )?;
            // A stored result counts only for the sample at its place with its id (a damaged
            // store's other rows are not results of this run).
            let total = usize::try_from(found.total).unwrap_or(usize::MAX);
            let earlier = store
                .suite_samples(&found.id)?
                .into_iter()
                .filter(|s| {
                    s.ord < total
                        && suite
                            .samples
                            .get(s.ord)
                            .is_some_and(|sample| sample.id == s.result.id)
                })
                .map(|s| (s.ord, s.result))
                .collect::<Vec<_>>();
            store.reopen_suite_run(&found.id)?;
            Ok((found, earlier))
        }
        None => {
            super::run::check(core, suite, count)?;
            let run = SuiteRunInfo {
                id: crate::benchmarks::runner::new_run_id(),
                created_at: chrono::Utc::now(),
                finished_at: None,
                status: RunStatus::Running,
                name: suite.name.clone(),
                version: suite.version.clone(),
                digest: suite.digest.clone(),
                source: source.to_string(),
                map: map.to_string(),
                total: count.map_or(suite.samples.len(), |c| c.min(suite.samples.len())) as u64,
                backend: core.backend_name(),
                model: core.model_name(),
                config_hash: crate::benchmarks::runner::config_hash(core.config()),
                veyra_version: env!("CARGO_PKG_VERSION").to_string(),
            };
            store.create_suite_run(&run)?;
            Ok((run, Vec::new()))
        }
    }
}

/// The run of this suite `name` names (an id, a unique prefix, or `last`: the newest run of
/// this suite), checked against what is being run: the same file's bytes, read with the same
/// `--map`, and not complete.
pub fn find_resumable(
    store: &BenchStore,
    name: &str,
    suite: &Suite,
    map: &str,
) -> Result<SuiteRunInfo, VeyraError> {
    let runs: Vec<SuiteRunInfo> = store
        .suite_runs()?
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| r.name == suite.name)
        .collect();
    let name = name.trim();
    let found = crate::benchmarks::store::named(name, &runs, |r| &r.id);
    let run = match found.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(VeyraError::Usage(format!(
                "no run '{}' of the suite '{}' in {}; `veyra bench list` shows the runs",
                crate::sanitize::quote(name),
                crate::sanitize::quote(&suite.name),
                store.path()
            )));
        }
        many => {
            return Err(VeyraError::Usage(format!(
                "'{}' matches {} runs of the suite; give more of the id",
                crate::sanitize::quote(name),
                many.len()
            )));
        }
    };
    if run.status == RunStatus::Complete {
        return Err(VeyraError::Usage(format!(
            "suite run {} is complete; there is nothing to resume",
            run.id
        )));
    }
    let short = |d: &str| d.chars().take(12).collect::<String>();
    if run.digest != suite.digest {
        return Err(VeyraError::Usage(format!(
            "suite run {} ran {} with SHA-256 {}…; {} has {}… now: a changed suite is a new \
             run (drop --resume)",
            run.id,
            crate::sanitize::quote(&run.source),
            short(&run.digest),
            crate::sanitize::quote(&suite.source.display().to_string()),
            short(&suite.digest)
        )));
    }
    if run.map != map {
        return Err(VeyraError::Usage(format!(
            "suite run {} read its file with --map '{}', not '{}': the samples would be other \
             samples; resume it with the same --map",
            run.id,
            crate::sanitize::quote(&run.map),
            crate::sanitize::quote(map)
        )));
    }
    Ok(run)
}

/// A stored suite run as the report its run printed: every sample it kept, summed over the
/// samples it has in all.
pub fn stored_report(store: &BenchStore, info: &SuiteRunInfo) -> Result<SuiteReport, VeyraError> {
    let total = usize::try_from(info.total).unwrap_or(usize::MAX);
    // A row past the run's samples (a damaged store) is not one of its results.
    let samples: Vec<SampleResult> = store
        .suite_samples(&info.id)?
        .into_iter()
        .filter(|s| s.ord < total)
        .map(|s| s.result)
        .collect();
    Ok(SuiteReport {
        suite: info.name.clone(),
        version: info.version.clone(),
        backend: info.backend.clone(),
        model: info.model.clone(),
        complete: info.status == RunStatus::Complete,
        summary: summarize(&samples, total),
        samples,
    })
}
