//! Whole-file replacement on the host's file system: the command history and the cassette's
//! files are written to a new, private (0600) temporary file beside their target, synced, and
//! renamed over it, so a crash leaves the old content or the new, never half of one.
//!
//! The temporary file is [`tempfile`]'s: created new under an unpredictable name (nothing
//! planted there is followed or reused), hidden (a leading `.`, which cassette replay skips),
//! and removed again if the write fails. The file tools write beneath a workspace `cap_std`
//! directory handle instead (`tools::files::replace_atomically`), which `tempfile` cannot
//! confine.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Replaces (or creates) `dir/name` with `bytes` through a synced, 0600 hidden temporary file
/// in `dir` and a rename.
pub fn replace(dir: &Path, name: impl AsRef<OsStr>, bytes: &[u8]) -> std::io::Result<()> {
    let name = name.as_ref();
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut file = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(dir.join(name)).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_is_private_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kept"), "old").unwrap();
        replace(dir.path(), "kept", b"new").unwrap();
        replace(dir.path(), "fresh", b"first").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("kept")).unwrap(),
            "new"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("fresh")).unwrap(),
            "first"
        );
        let mode = std::fs::metadata(dir.path().join("fresh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["fresh", "kept"]);
        assert!(replace(&dir.path().join("missing"), "x", b"").is_err());
    }
}
