//! The `:` command history kept between runs: read back bounded and sanitized, written whole
//! and private to the operator.

/// Most bytes of the `:` history file read back (far more than [`super::app::HISTORY_LEN`] commands).
pub const MAX_HISTORY_BYTES: u64 = 1 << 20;

/// The `:` history kept by an earlier run: one command a line, the newest last. A missing or
/// unreadable file is an empty history, and so is one that is not a regular file of at most
/// [`MAX_HISTORY_BYTES`] ([`crate::fsread`]); lines are sanitized, as everything shown is.
pub fn load_history(path: &std::path::Path) -> Vec<String> {
    let Ok(text) = crate::fsread::read_regular(path, MAX_HISTORY_BYTES, "command history") else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&text);
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| crate::sanitize::sanitize_line(l.trim()).into_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let excess = lines.len().saturating_sub(super::app::HISTORY_LEN);
    lines.drain(..excess);
    lines
}

/// Writes the `:` history (0600 in a directory created 0700: it is the operator's own) through
/// a new temporary file renamed into place, so a crash leaves the old history or the new, never
/// half of one.
pub fn save_history(path: &std::path::Path, history: &[String]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut text = String::new();
    for line in history {
        text.push_str(line);
        text.push('\n');
    }
    crate::fswrite::replace(dir, name, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_history_that_is_a_fifo_dev_zero_or_huge_is_an_empty_history_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let huge = dir.path().join("huge");
        std::fs::write(&huge, "preset mars\n".repeat(100_000)).unwrap();
        for path in [fifo, zero, huge] {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(super::load_history(&path));
            });
            let loaded = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("loading the history hung");
            assert!(loaded.is_empty(), "{loaded:?}");
        }
        // Saved into a private directory, whatever a leftover temporary file was.
        let path = dir.path().join("state/veyra/command_history");
        super::save_history(&path, &["theme mono".into()]).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, "planted").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::save_history(&path, &["theme mono".into()]).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(super::load_history(&path), ["theme mono"]);
    }
}
