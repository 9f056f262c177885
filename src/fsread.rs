//! Bounded reads of the files Veyra is handed: configs, themes, scenarios, policies, entities,
//! witnesses, keys, exports, cassettes and the command history.
//!
//! A path may name anything: a FIFO that blocks its reader for ever, `/dev/zero` (or a symlink
//! to it) that never ends, a file of many gigabytes. So every such file is read the same way:
//! [`open_regular`] opens it without waiting ([`OPEN_FLAGS`]: a FIFO opens at once instead of
//! blocking until a writer comes) and checks the *opened handle* — not the path, which may be
//! swapped between a check and an open — is a regular file; [`read_capped`] then reads at most
//! one byte more than the cap that fits the kind of file, so a file past its cap is refused,
//! never loaded whole. [`read_regular`] and [`read_regular_to_string`] do both. Every error
//! names the file, the kind of file and, past the cap, the cap, and says what to do.
//!
//! Callers that open through a directory handle (`cap-std`, in the file tools and the cassette
//! reader) pass [`OPEN_FLAGS`] to their own open and check the handle with [`check_regular`].

use std::fs::{File, FileType, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Flags for every open of a file Veyra reads: `O_NONBLOCK`, so that opening a FIFO returns at
/// once (the handle is then refused as not a regular file; a regular file ignores the flag),
/// and `O_NOCTTY`, so that opening a terminal device never makes it the controlling terminal.
pub const OPEN_FLAGS: i32 = libc::O_NONBLOCK | libc::O_NOCTTY;

/// Why a file could not be read (see the module docs). Its `Display` names the file.
#[derive(Debug)]
pub enum BoundedReadError {
    /// Opening, inspecting or reading the file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The kind of file, e.g. `config file`.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The opened handle is not a regular file (a FIFO, a device, a directory, a socket).
    NotRegular {
        /// The file.
        path: PathBuf,
        /// The kind of file, e.g. `config file`.
        what: String,
        /// What it is instead, e.g. `a FIFO (named pipe)`.
        kind: &'static str,
    },
    /// The file holds more than the cap for its kind.
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The kind of file, e.g. `config file`.
        what: String,
        /// The most Veyra reads of this kind of file, in bytes.
        cap: u64,
    },
    /// The file is not UTF-8 text ([`read_regular_to_string`]).
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The kind of file, e.g. `config file`.
        what: String,
        /// Byte offset of the first byte that is not UTF-8.
        offset: usize,
    },
}

impl BoundedReadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            BoundedReadError::Io { path, .. }
            | BoundedReadError::NotRegular { path, .. }
            | BoundedReadError::TooLarge { path, .. }
            | BoundedReadError::NotUtf8 { path, .. } => path,
        }
    }

    /// True when the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, BoundedReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// What is wrong and what to do, without the file's path (for a caller whose own message
    /// names the file already).
    pub fn reason(&self) -> String {
        match self {
            BoundedReadError::Io { what, source, .. } => {
                format!("cannot read the {what}: {source}")
            }
            BoundedReadError::NotRegular { what, kind, .. } => format!(
                "it is {kind}, not a regular file, and Veyra reads {} only from a regular \
                 file (give the path of one)",
                with_article(what)
            ),
            BoundedReadError::TooLarge { what, cap, .. } => format!(
                "it is larger than {}, the most Veyra reads of {}; none of it was used \
                 (check that this is the right file)",
                human_bytes(*cap),
                with_article(what)
            ),
            BoundedReadError::NotUtf8 { what, offset, .. } => {
                format!("the {what} is not UTF-8 text (byte {offset} is not); save it as UTF-8")
            }
        }
    }

    /// The error as an [`std::io::Error`] whose message is [`BoundedReadError::reason`] (an I/O
    /// failure stays the error it was), for callers whose error type holds one.
    pub fn into_io(self) -> std::io::Error {
        match self {
            BoundedReadError::Io { source, .. } => source,
            BoundedReadError::NotRegular { .. } | BoundedReadError::NotUtf8 { .. } => {
                std::io::Error::new(std::io::ErrorKind::InvalidData, self.reason())
            }
            BoundedReadError::TooLarge { .. } => {
                std::io::Error::new(std::io::ErrorKind::FileTooLarge, self.reason())
            }
        }
    }
}

impl std::fmt::Display for BoundedReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path().display(), self.reason())
    }
}

impl std::error::Error for BoundedReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BoundedReadError::Io { source, .. } => Some(source),
            BoundedReadError::NotRegular { .. }
            | BoundedReadError::TooLarge { .. }
            | BoundedReadError::NotUtf8 { .. } => None,
        }
    }
}

/// `what` with `a` or `an` before it (`an audit export`, `a config file`).
fn with_article(what: &str) -> String {
    let vowel = what
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c));
    format!("{} {what}", if vowel { "an" } else { "a" })
}

/// `bytes` in the largest binary unit that divides it (`1 MiB`, `32 KiB`), else in bytes.
pub fn human_bytes(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

/// What a file type is, in words, for a file that is not a regular file.
fn kind_of(file_type: FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Checks that the opened `file` (named `path`, a `what`) is a regular file; its metadata.
pub fn check_regular(file: &File, path: &Path, what: &str) -> Result<Metadata, BoundedReadError> {
    let metadata = file.metadata().map_err(|source| BoundedReadError::Io {
        path: path.to_path_buf(),
        what: what.to_string(),
        source,
    })?;
    if metadata.is_file() {
        Ok(metadata)
    } else {
        Err(BoundedReadError::NotRegular {
            path: path.to_path_buf(),
            what: what.to_string(),
            kind: kind_of(metadata.file_type()),
        })
    }
}

/// Opens `path` (a `what`) for reading without blocking ([`OPEN_FLAGS`]) and checks the opened
/// handle is a regular file. Symbolic links are followed: what they lead to is checked.
pub fn open_regular(path: &Path, what: &str) -> Result<(File, Metadata), BoundedReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OPEN_FLAGS)
        .open(path)
        .map_err(|source| BoundedReadError::Io {
            path: path.to_path_buf(),
            what: what.to_string(),
            source,
        })?;
    let metadata = check_regular(&file, path, what)?;
    Ok((file, metadata))
}

/// Reads `reader` (the file `path`, a `what`) to its end, refusing it past `cap` bytes: at most
/// `cap + 1` bytes are read.
pub fn read_capped(
    reader: impl Read,
    path: &Path,
    cap: u64,
    what: &str,
) -> Result<Vec<u8>, BoundedReadError> {
    let too_large = || BoundedReadError::TooLarge {
        path: path.to_path_buf(),
        what: what.to_string(),
        cap,
    };
    let mut bytes = Vec::new();
    reader
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| BoundedReadError::Io {
            path: path.to_path_buf(),
            what: what.to_string(),
            source,
        })?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > cap {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Reads the regular file `path` (a `what`, e.g. `config file`) whole, if it holds at most
/// `cap` bytes (see the module docs).
pub fn read_regular(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>, BoundedReadError> {
    let (file, metadata) = open_regular(path, what)?;
    if metadata.len() > cap {
        return Err(BoundedReadError::TooLarge {
            path: path.to_path_buf(),
            what: what.to_string(),
            cap,
        });
    }
    read_capped(file, path, cap, what)
}

/// [`read_regular`], as UTF-8 text.
pub fn read_regular_to_string(
    path: &Path,
    cap: u64,
    what: &str,
) -> Result<String, BoundedReadError> {
    utf8(read_regular(path, cap, what)?, path, what)
}

/// `bytes` read from `path` (a `what`) as UTF-8 text.
pub fn utf8(bytes: Vec<u8>, path: &Path, what: &str) -> Result<String, BoundedReadError> {
    String::from_utf8(bytes).map_err(|e| BoundedReadError::NotUtf8 {
        path: path.to_path_buf(),
        what: what.to_string(),
        offset: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo runs");
        assert!(status.success(), "mkfifo {}", path.display());
    }

    /// Runs `f` on another thread and fails the test if it does not return within a minute
    /// (a guard against a hang, not a measure of speed).
    fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the read hung")
    }

    #[test]
    fn a_regular_file_within_its_cap_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "model: {}\n").unwrap();
        assert_eq!(
            read_regular_to_string(&path, 10, "config file").unwrap(),
            "model: {}\n"
        );
        let err = read_regular(&path, 9, "config file").unwrap_err();
        assert!(
            matches!(err, BoundedReadError::TooLarge { cap: 9, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        mkfifo(&path);
        let shown = path.clone();
        let err = within_a_minute(move || read_regular(&shown, 1 << 20, "witness").unwrap_err());
        assert!(
            matches!(err, BoundedReadError::NotRegular { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("FIFO") && text.contains("witness"), "{text}");
    }

    #[test]
    fn a_symlink_to_dev_zero_is_refused_before_a_byte_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let err = within_a_minute(move || read_regular(&path, 1 << 20, "key file").unwrap_err());
        assert!(
            matches!(err, BoundedReadError::NotRegular { kind, .. } if kind == "a character device"),
            "{err:?}"
        );
        // Read directly (stdin, say), an endless stream stops one byte past the cap.
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let err = read_capped(zero, Path::new("/dev/zero"), 1 << 20, "prompt").unwrap_err();
        assert!(matches!(err, BoundedReadError::TooLarge { .. }), "{err:?}");
        assert!(err.to_string().contains("1 MiB"), "{err}");
    }

    #[test]
    fn a_file_past_its_cap_is_refused_by_its_size_and_names_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.json");
        // Sparse: 2 GiB of size, no blocks.
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(2 << 30).unwrap();
        let err = read_regular(&path, 64 << 20, "entities file").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("huge.json") && text.contains("64 MiB"),
            "{text}"
        );
        assert!(text.contains("entities file"), "{text}");
        assert!(matches!(
            err.into_io().kind(),
            std::io::ErrorKind::FileTooLarge
        ));
    }

    #[test]
    fn a_directory_and_a_missing_file_say_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_regular(dir.path(), 1024, "theme").unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        let err = read_regular(&dir.path().join("nope"), 1024, "theme").unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        std::fs::write(dir.path().join("bin"), [b'a', 0xff]).unwrap();
        let err = read_regular_to_string(&dir.path().join("bin"), 1024, "theme").unwrap_err();
        assert!(
            matches!(err, BoundedReadError::NotUtf8 { offset: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_bytes(1 << 20), "1 MiB");
        assert_eq!(human_bytes(32 * 1024), "32 KiB");
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }
}
