//! Tracing set-up: a JSON-lines (or text) file layer from `logging:`, plus an optional extra
//! layer supplied by the front end (the console adds its log pane's layer). Nothing is written to
//! the terminal: under the console the screen belongs to the console, and headless commands keep
//! stdout for answers and stderr for errors.
//!
//! The file is capped: past `logging.max_bytes` it is rotated (`veyra.log` → `veyra.log.1` →
//! … → `veyra.log.<keep>`, the oldest dropped), so a long benchmark or a chatty server never
//! fills the disk. Every file is its owner's alone (0600, in a 0700 directory).

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::{LogFormat, LoggingConfig};

/// The configured log file (`logging.file`) could not be opened: the logging layer's own
/// error, turned into the caller's at the edge.
#[derive(Debug, thiserror::Error)]
#[error("opening log file {} (logging.file): {source}", path.display())]
pub struct LoggingError {
    /// The file.
    pub path: std::path::PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// A boxed layer a front end adds to the subscriber.
pub type ExtraLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// What [`init`] set up, for the start-up log line and the console's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingStatus {
    /// The log file, if one could be opened.
    pub file: Option<std::path::PathBuf>,
    /// Why the default log file could not be opened, if so.
    pub warning: Option<String>,
}

/// The level filter for a validated `logging.level`.
pub fn level_filter(level: &str) -> LevelFilter {
    match level.to_ascii_lowercase().as_str() {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "warn" => LevelFilter::WARN,
        "error" => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    }
}

/// Opens the log for appending. It is created readable by its owner only (mode 0600), and an
/// older file that others could read is narrowed to that: a log quotes prompts and servers.
fn open_log(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let permissions = file.metadata()?.permissions();
    if permissions.mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(permissions.mode() & 0o700))?;
    }
    Ok(file)
}

/// The log file, rotated by size: a record that would take it past `max_bytes` first moves
/// it to `<path>.1` (shifting older ones up to `<path>.<keep>`, dropping the oldest) and starts
/// a new file. Records are never split across two files.
struct RotatingLog {
    path: std::path::PathBuf,
    file: File,
    /// Bytes in `file`, as far as this process knows.
    size: u64,
    /// 0: never rotate.
    max_bytes: u64,
    keep: u32,
}

impl RotatingLog {
    fn open(path: &Path, max_bytes: u64, keep: u32) -> std::io::Result<Self> {
        let file = open_log(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingLog {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes,
            keep,
        })
    }

    /// `<path>.<n>`.
    fn numbered(&self, n: u32) -> std::path::PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        name.into()
    }

    fn write_record(&mut self, record: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let len = record.len() as u64;
        if self.max_bytes > 0 && self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(record)?;
        self.size = self.size.saturating_add(len);
        Ok(())
    }

    /// Moves the full file aside and opens a fresh one. Another Veyra process writing the same
    /// log may have rotated it already: then the path is no longer this file, and it is only
    /// reopened (what that process started is not rotated again).
    fn rotate(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let mine = self.file.metadata()?;
        let still_ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.dev() == mine.dev() && m.ino() == mine.ino());
        if still_ours {
            if self.keep == 0 {
                std::fs::remove_file(&self.path)?;
            } else {
                for n in (1..self.keep).rev() {
                    let from = self.numbered(n);
                    if from.exists() {
                        std::fs::rename(&from, self.numbered(n + 1))?;
                    }
                }
                std::fs::rename(&self.path, self.numbered(1))?;
            }
        }
        self.file = open_log(&self.path)?;
        self.size = self.file.metadata()?.len();
        Ok(())
    }
}

/// The log file behind a filter: someone will `tail -f` it on a terminal, and its lines quote
/// prompts, answers and servers. JSON lines get `\uXXXX` escapes for what the encoder leaves
/// raw (DEL, C1, bidi overrides); text lines get the sanitizer's visible placeholders.
struct Scrubbed {
    log: RotatingLog,
    json: bool,
}

impl std::io::Write for Scrubbed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes each record whole, so a record is never split mid-character
        // (nor across two files when the log rotates).
        let text = String::from_utf8_lossy(buf);
        if self.json {
            let line = crate::sanitize::escape_json(text.into_owned());
            self.log.write_record(line.as_bytes())?;
        } else {
            self.log
                .write_record(crate::sanitize::sanitize(&text).as_bytes())?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.log.file.flush()
    }
}

/// Installs the global subscriber. An explicitly configured log file that cannot be opened is an
/// error; the default one failing only disables file logging (reported in the status).
/// Calling it twice is harmless: the second call changes nothing.
pub fn init(
    config: &LoggingConfig,
    default_file: &Path,
    extra: Option<ExtraLayer>,
) -> Result<LoggingStatus, LoggingError> {
    // Libraries speak at Veyra's level, but the MCP SDK not at all: its lines quote what a
    // server sent, unscrubbed (Veyra logs each server's state and errors itself, scrubbed).
    let level = tracing_subscriber::filter::Targets::new()
        .with_default(level_filter(&config.level))
        .with_target("rmcp", LevelFilter::OFF);
    let (file, status) = match &config.file {
        Some(path) => {
            let f = RotatingLog::open(path, config.max_bytes, config.keep).map_err(|source| {
                LoggingError {
                    path: path.clone(),
                    source,
                }
            })?;
            (
                Some(f),
                LoggingStatus {
                    file: Some(path.clone()),
                    warning: None,
                },
            )
        }
        None => match RotatingLog::open(default_file, config.max_bytes, config.keep) {
            Ok(f) => (
                Some(f),
                LoggingStatus {
                    file: Some(default_file.to_path_buf()),
                    warning: None,
                },
            ),
            Err(e) => (
                None,
                LoggingStatus {
                    file: None,
                    warning: Some(format!(
                        "file logging is off: cannot open {}: {e}; set logging.file to a writable path",
                        default_file.display()
                    )),
                },
            ),
        },
    };
    let file_layer: Option<ExtraLayer> = file.map(|f| {
        let writer = Mutex::new(Scrubbed {
            log: f,
            json: config.format == LogFormat::Json,
        });
        match config.format {
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(writer)
                .with_filter(level.clone())
                .boxed(),
            LogFormat::Text => tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(level.clone())
                .boxed(),
        }
    });
    // `try_init` fails only when a subscriber is already installed (tests, a second call).
    let mut layers: Vec<ExtraLayer> = Vec::new();
    layers.extend(file_layer);
    layers.extend(extra.map(|l| l.with_filter(level).boxed()));
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(status)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_log_is_private_to_its_owner() {
        let dir = tempfile::tempdir().expect("a directory");
        let fresh = dir.path().join("sub/veyra.log");
        drop(open_log(&fresh).expect("created"));
        let mode = std::fs::metadata(&fresh)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let old = dir.path().join("old.log");
        std::fs::write(&old, "x").expect("written");
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        drop(open_log(&old).expect("opened"));
        let mode = std::fs::metadata(&old)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_log_rotates_by_size_keeping_the_newest_files_whole() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("veyra.log");
        let mut log = Scrubbed {
            log: RotatingLog::open(&path, 100, 2).expect("opened"),
            json: false,
        };
        // Ten records of 40 bytes: two fit in 100 bytes, the third starts a new file.
        for i in 0..10 {
            let record = format!("{i:0>39}\n");
            log.write_all(record.as_bytes()).expect("written");
        }
        let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("a log file");
        assert_eq!(read(&path), format!("{:0>39}\n{:0>39}\n", 8, 9));
        assert_eq!(
            read(&dir.path().join("veyra.log.1")),
            format!("{:0>39}\n{:0>39}\n", 6, 7)
        );
        assert_eq!(
            read(&dir.path().join("veyra.log.2")),
            format!("{:0>39}\n{:0>39}\n", 4, 5)
        );
        assert!(!dir.path().join("veyra.log.3").exists(), "keep: 2");
        for name in ["veyra.log", "veyra.log.1", "veyra.log.2"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        // A record larger than the cap still goes in whole, on a file of its own.
        let big = "x".repeat(300);
        log.write_all(big.as_bytes()).expect("written");
        assert_eq!(read(&path), big);

        // keep: 0 drops the full file; max_bytes: 0 never rotates.
        let lone = dir.path().join("lone.log");
        let mut log = RotatingLog::open(&lone, 100, 0).expect("opened");
        for _ in 0..5 {
            log.write_record(&[b'y'; 40]).expect("written");
        }
        assert_eq!(read(&lone).len(), 40);
        assert!(!dir.path().join("lone.log.1").exists());
        let endless = dir.path().join("endless.log");
        let mut log = RotatingLog::open(&endless, 0, 3).expect("opened");
        for _ in 0..50 {
            log.write_record(&[b'z'; 40]).expect("written");
        }
        assert_eq!(read(&endless).len(), 2000);
    }
}
