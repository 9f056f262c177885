//! Scratch directories for tasks that work on files (TOME, ASR).
//!
//! A task that needs files carries them in its ground truth, `truth.files`: a list of
//! `{ "path": …, "content": … }` ([`ScratchFile`]), so the task stays self-contained and
//! storable. Each (task, epoch) has the directory `bench/<task id>/e<epoch>/` inside
//! `tools.workspace`; the prompt names it through the placeholder [`WORKDIR`], replaced when
//! the request is made (the stored prompt stays byte-identical for a seed; the directory holds
//! no run id so that the mock's answers, which depend on the prompt, are reproducible too).
//!
//! The directory is made **when the execution's first tool call is about to run**
//! ([`LazyScratch`], through [`crate::core::BeforeTools`]) — removing whatever a crashed or
//! earlier run left there — and the files are written into it. Only a tool can touch the
//! workspace, so a model that answers without calling one leaves the files exactly as planned
//! and costs no disk work. After the execution the runner reads a made directory back
//! ([`Scratch::collect`], for scorers that check files the model wrote) and **removes it**:
//! nothing of a run stays in the workspace.
//!
//! Hostile paths are impossible by construction: task ids and file paths are checked against
//! a small alphabet (no `..`, no absolute path, no separator but `/`) before anything is
//! touched, and every operation goes through a `cap-std` handle on the workspace, beneath which
//! the operating system resolves each path — a symlink cannot lead out. Two runs of the same
//! seed at the same moment in one workspace would share directories; run them one after the
//! other (or give them separate workspaces).

use std::io::Read;
use std::path::Path;

use cap_std::fs::Dir;

use super::framework::BenchTask;
use super::record::ScratchFile;
use crate::tools::files::FileTool;

/// The placeholder in a prompt that stands for the task's scratch directory.
pub const WORKDIR: &str = "{workdir}";
/// Most files a task may carry, and most read back after a run.
pub const MAX_FILES: usize = 64;
/// Largest file a task may carry, and most bytes read back of one file after a run.
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// Deepest directory nesting read back after a run.
const MAX_DEPTH: usize = 4;

/// The files of `task`'s ground truth: `None` when it needs no scratch directory, an error
/// when the list is malformed or names a path that is not a plain relative path.
pub fn task_files(task: &BenchTask) -> Option<Result<Vec<ScratchFile>, String>> {
    let value = task.truth.get("files")?;
    Some(parse_files(value))
}

fn parse_files(value: &serde_json::Value) -> Result<Vec<ScratchFile>, String> {
    let files: Vec<ScratchFile> = serde_json::from_value(value.clone())
        .map_err(|e| format!("truth.files is not a list of {{path, content}}: {e}"))?;
    if files.len() > MAX_FILES {
        return Err(format!(
            "truth.files lists {} files; at most {MAX_FILES} are allowed",
            files.len()
        ));
    }
    for f in &files {
        check_path(&f.path)?;
        if f.content.len() > MAX_FILE_BYTES {
            return Err(format!(
                "truth.files: '{}' is {} bytes; at most {MAX_FILE_BYTES} are allowed",
                f.path,
                f.content.len()
            ));
        }
    }
    Ok(files)
}

/// A plain relative path: 1 to 4 parts of `[A-Za-z0-9._-]`, none of them `.` or `..`, joined
/// by `/`, at most 128 characters.
pub fn check_path(path: &str) -> Result<(), String> {
    let shown = crate::sanitize::quote(path);
    let parts: Vec<&str> = path.split('/').collect();
    let plain = |p: &&str| {
        !p.is_empty()
            && *p != "."
            && *p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if path.len() > 128 || parts.len() > MAX_DEPTH || !parts.iter().all(plain) {
        return Err(format!(
            "'{shown}' is not a plain relative path (1 to {MAX_DEPTH} parts of letters, digits, \
             '.', '_' and '-', no '..', at most 128 characters)"
        ));
    }
    Ok(())
}

/// One task epoch's scratch directory, made and filled (see the module docs).
#[derive(Debug)]
pub struct Scratch {
    workspace: Dir,
    rel: String,
}

impl Scratch {
    /// Makes `bench/<task id>/e<epoch>/` in `workspace` afresh and writes `files` into it
    /// ([`Scratch::plan`], then [`Planned::make`]).
    pub fn prepare(
        workspace: &Path,
        task_id: &str,
        epoch: u32,
        files: &[ScratchFile],
    ) -> Result<Scratch, String> {
        Scratch::plan(task_id, epoch, files.to_vec())?.make(workspace)
    }

    /// Checks the task id and the file paths and names the directory, touching nothing.
    pub fn plan(task_id: &str, epoch: u32, files: Vec<ScratchFile>) -> Result<Planned, String> {
        let plain_id = !task_id.is_empty()
            && task_id.len() <= 100
            && task_id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !plain_id {
            return Err(format!(
                "task id '{}' cannot name a scratch directory (letters a-z, digits and '-' only)",
                crate::sanitize::quote(task_id)
            ));
        }
        for f in &files {
            check_path(&f.path)?;
        }
        Ok(Planned {
            rel: format!("bench/{task_id}/e{epoch}"),
            files,
        })
    }

    /// The directory relative to the workspace, as the prompt names it.
    pub fn rel(&self) -> &str {
        &self.rel
    }

    /// The regular files in the directory now (at most [`MAX_FILES`], each cut at
    /// [`MAX_FILE_BYTES`], 4 levels deep), sorted by path. Symlinks and other special files
    /// are skipped; what cannot be read is left out.
    pub fn collect(&self) -> Vec<ScratchFile> {
        let mut out = Vec::new();
        if let Ok(dir) = self.workspace.open_dir(&self.rel) {
            walk(&dir, "", 1, &mut out);
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Removes the directory, and `bench/<task id>` and `bench` when that leaves them empty.
    pub fn remove(self) -> Result<(), String> {
        self.workspace.remove_dir_all(&self.rel).map_err(|e| {
            format!(
                "removing the scratch directory {} from the workspace: {e}",
                self.rel
            )
        })?;
        let mut parent = self.rel.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            // Fails, harmlessly, while another task's directory is still there.
            if self.workspace.remove_dir(up).is_err() {
                break;
            }
            parent = up;
        }
        Ok(())
    }
}

/// A scratch directory checked and named but not made yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    rel: String,
    files: Vec<ScratchFile>,
}

impl Planned {
    /// The directory relative to the workspace, as the prompt names it.
    pub fn rel(&self) -> &str {
        &self.rel
    }

    /// Makes the directory in `workspace` afresh — removing whatever a crashed or earlier run
    /// left there — and writes the files into it.
    pub fn make(&self, workspace: &Path) -> Result<Scratch, String> {
        let dir = FileTool::open_workspace_dir(workspace).map_err(|e| e.to_string())?;
        let rel = self.rel.clone();
        let shown = format!(
            "the scratch directory {rel} in the workspace {}",
            crate::sanitize::quote(&workspace.display().to_string())
        );
        let failed = |what: &str, e: std::io::Error| format!("{shown}: {what}: {e}");
        match dir.symlink_metadata(&rel) {
            Ok(_) => dir
                .remove_dir_all(&rel)
                .map_err(|e| failed("removing what an earlier run left", e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed("looking at it", e)),
        }
        let filled = (|| {
            dir.create_dir_all(&rel)
                .map_err(|e| failed("creating it", e))?;
            for f in &self.files {
                let path = format!("{rel}/{}", f.path);
                if f.path.contains('/')
                    && let Some((parent, _)) = path.rsplit_once('/')
                {
                    dir.create_dir_all(parent)
                        .map_err(|e| failed("creating a subdirectory", e))?;
                }
                dir.write(&path, f.content.as_bytes())
                    .map_err(|e| failed(&format!("writing {}", f.path), e))?;
            }
            Ok(())
        })();
        if let Err(e) = filled {
            // Half a directory is no use to anyone: leave nothing behind.
            let _ = dir.remove_dir_all(&rel);
            return Err(e);
        }
        Ok(Scratch {
            workspace: dir,
            rel,
        })
    }

    /// The files as planned, sorted by path as [`Scratch::collect`] gives them.
    fn files_sorted(&self) -> Vec<ScratchFile> {
        let mut files = self.files.clone();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    }
}

/// A task epoch's scratch directory made only when first needed — before the first tool call
/// of its execution ([`crate::core::BeforeTools`]) — and closed when the execution has ended.
/// Only a tool can touch the workspace, so an answer given without tool calls leaves the
/// files exactly as planned, and the directory is never made: no disk work for it at all.
#[derive(Debug)]
pub struct LazyScratch {
    workspace: std::path::PathBuf,
    plan: Planned,
    state: std::sync::Mutex<LazyState>,
}

#[derive(Debug)]
enum LazyState {
    Pending,
    Made(Scratch),
    Failed(String),
    Closed,
}

/// What a closed [`LazyScratch`] leaves.
#[derive(Debug)]
pub struct Closed {
    /// The files after the execution, sorted by path.
    pub files: Vec<ScratchFile>,
    /// True when the directory was made (and so read back and removed).
    pub made: bool,
    /// Why the directory could not be removed, if it could not.
    pub not_removed: Option<String>,
}

impl LazyScratch {
    /// A scratch directory for `plan` in `workspace`, not made yet.
    pub fn new(workspace: std::path::PathBuf, plan: Planned) -> Self {
        LazyScratch {
            workspace,
            plan,
            state: std::sync::Mutex::new(LazyState::Pending),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LazyState> {
        // A panic while holding the lock leaves a state that is still one of the four.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the directory unless it is made; the same error again if making it failed; an
    /// error once it is closed (the task is over: nothing may be made for it any more).
    pub fn ensure(&self) -> Result<(), String> {
        let mut state = self.state();
        match &*state {
            LazyState::Made(_) => Ok(()),
            LazyState::Failed(e) => Err(e.clone()),
            LazyState::Closed => Err(format!(
                "the task's scratch directory {} is closed: its run is over",
                self.plan.rel
            )),
            LazyState::Pending => match self.plan.make(&self.workspace) {
                Ok(made) => {
                    *state = LazyState::Made(made);
                    Ok(())
                }
                Err(e) => {
                    *state = LazyState::Failed(e.clone());
                    Err(e)
                }
            },
        }
    }

    /// Closes it at once if it was never made (no disk work: the files as planned); `None`
    /// when it was made, could not be made, or is being made right now — then
    /// [`LazyScratch::close`] it off the async threads. Never waits for the lock.
    pub fn close_if_pending(&self) -> Option<Closed> {
        let mut state = match self.state.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        if !matches!(*state, LazyState::Pending) {
            return None;
        }
        *state = LazyState::Closed;
        Some(Closed {
            files: self.plan.files_sorted(),
            made: false,
            not_removed: None,
        })
    }

    /// Closes it: a made directory is read back and removed; one never made (or that could
    /// not be made) leaves the files as planned.
    pub fn close(&self) -> Closed {
        let state = std::mem::replace(&mut *self.state(), LazyState::Closed);
        match state {
            LazyState::Made(scratch) => {
                let files = scratch.collect();
                Closed {
                    files,
                    made: true,
                    not_removed: scratch.remove().err(),
                }
            }
            LazyState::Failed(_) => {
                // `make` cleans up after itself; this is for what it could not.
                let leftover = self.workspace.join(&self.plan.rel);
                let not_removed = match std::fs::symlink_metadata(&leftover) {
                    Ok(_) => FileTool::open_workspace_dir(&self.workspace)
                        .map_err(|e| e.to_string())
                        .and_then(|dir| {
                            dir.remove_dir_all(&self.plan.rel).map_err(|e| {
                                format!(
                                    "removing the scratch directory {} from the workspace: {e}",
                                    self.plan.rel
                                )
                            })
                        })
                        .err(),
                    Err(_) => None,
                };
                Closed {
                    files: self.plan.files_sorted(),
                    made: false,
                    not_removed,
                }
            }
            LazyState::Pending | LazyState::Closed => Closed {
                files: self.plan.files_sorted(),
                made: false,
                not_removed: None,
            },
        }
    }
}

fn walk(dir: &Dir, prefix: &str, depth: usize, out: &mut Vec<ScratchFile>) {
    let Ok(entries) = dir.entries() else { return };
    let mut names: Vec<(String, bool)> = Vec::new();
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        if kind.is_file() {
            names.push((name, false));
        } else if kind.is_dir() {
            names.push((name, true));
        }
    }
    names.sort();
    for (name, is_dir) in names {
        if out.len() >= MAX_FILES {
            return;
        }
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if is_dir {
            if depth < MAX_DEPTH
                && let Ok(sub) = dir.open_dir(&name)
            {
                walk(&sub, &path, depth + 1, out);
            }
            continue;
        }
        let Ok(file) = dir.open(&name) else { continue };
        let mut bytes = Vec::new();
        if file
            .take(MAX_FILE_BYTES as u64)
            .read_to_end(&mut bytes)
            .is_err()
        {
            continue;
        }
        out.push(ScratchFile {
            path,
            content: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> ScratchFile {
        ScratchFile {
            path: path.into(),
            content: content.into(),
        }
    }

    #[test]
    fn a_scratch_directory_is_made_filled_read_back_and_removed() {
        let ws = tempfile::tempdir().unwrap();
        // What an earlier, crashed run left is cleared first.
        std::fs::create_dir_all(ws.path().join("bench/tome-easy-s1-0000/e0")).unwrap();
        std::fs::write(ws.path().join("bench/tome-easy-s1-0000/e0/stale.txt"), "x").unwrap();
        let s = Scratch::prepare(
            ws.path(),
            "tome-easy-s1-0000",
            0,
            &[file("a.txt", "alpha"), file("data/b.csv", "1,2")],
        )
        .unwrap();
        assert_eq!(s.rel(), "bench/tome-easy-s1-0000/e0");
        std::fs::write(ws.path().join("bench/tome-easy-s1-0000/e0/out.txt"), "42").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", ws.path().join(s.rel()).join("link")).unwrap();
        let files = s.collect();
        assert_eq!(
            files,
            vec![
                file("a.txt", "alpha"),
                file("data/b.csv", "1,2"),
                file("out.txt", "42")
            ]
        );
        s.remove().unwrap();
        assert!(!ws.path().join("bench").exists());
    }

    #[test]
    fn a_lazy_directory_is_made_only_when_asked_and_never_after_close() {
        let ws = tempfile::tempdir().unwrap();
        let plan = || {
            Scratch::plan(
                "asr-easy-s1-0000",
                0,
                vec![file("z.txt", "last"), file("a.txt", "first")],
            )
            .unwrap()
        };
        // Never asked for: no disk work, the files as planned (sorted like `collect`).
        let lazy = LazyScratch::new(ws.path().to_path_buf(), plan());
        let closed = lazy.close_if_pending().unwrap();
        assert!(!closed.made);
        assert_eq!(
            closed.files,
            vec![file("a.txt", "first"), file("z.txt", "last")]
        );
        assert!(!ws.path().join("bench").exists());
        // Closed: a late tool call cannot make it any more.
        assert!(lazy.ensure().is_err());
        assert!(!ws.path().join("bench").exists());

        // Asked for twice: made once (what a tool wrote stays), read back and removed.
        let lazy = LazyScratch::new(ws.path().to_path_buf(), plan());
        lazy.ensure().unwrap();
        let dir = ws.path().join("bench/asr-easy-s1-0000/e0");
        std::fs::write(dir.join("a.txt"), "changed").unwrap();
        lazy.ensure().unwrap();
        assert!(lazy.close_if_pending().is_none());
        let closed = lazy.close();
        assert!(closed.made);
        assert_eq!(closed.not_removed, None);
        assert_eq!(
            closed.files,
            vec![file("a.txt", "changed"), file("z.txt", "last")]
        );
        assert!(!ws.path().join("bench").exists());

        // A workspace that cannot hold it: the same error every time, and closing is clean.
        let blocked = ws.path().join("blocked");
        std::fs::write(&blocked, "a file, not a directory").unwrap();
        let lazy = LazyScratch::new(blocked, plan());
        let first = lazy.ensure().unwrap_err();
        assert_eq!(lazy.ensure().unwrap_err(), first);
        assert!(!lazy.close().made);
    }

    #[test]
    fn hostile_ids_and_paths_are_refused_before_anything_is_touched() {
        let ws = tempfile::tempdir().unwrap();
        for id in ["../x", "a/b", "", "A-1", "x y"] {
            assert!(Scratch::prepare(ws.path(), id, 0, &[]).is_err(), "{id:?}");
        }
        for path in [
            "../a",
            "/etc/passwd",
            "a/../../b",
            "a//b",
            "./a",
            "a\\b",
            "",
            "a/b/c/d/e",
        ] {
            assert!(check_path(path).is_err(), "{path:?}");
            assert!(
                Scratch::prepare(ws.path(), "t-1", 0, &[file(path, "x")]).is_err(),
                "{path:?}"
            );
        }
        assert!(check_path("data/readings-2.csv").is_ok());
        let bad = serde_json::json!([{ "path": "a" }]);
        assert!(parse_files(&bad).is_err());
        let many: Vec<ScratchFile> = (0..=MAX_FILES)
            .map(|i| file(&format!("f{i}"), ""))
            .collect();
        assert!(parse_files(&serde_json::to_value(many).unwrap()).is_err());
        assert!(!ws.path().join("etc").exists());
    }
}
