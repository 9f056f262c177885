//! Tracing set-up: a JSON-lines (or text) file layer from `logging:`, plus an optional extra
//! layer supplied by the front end (the console adds its log pane's layer). Nothing is written to
//! the terminal: under the console the screen belongs to the console, and headless commands keep
//! stdout for answers and stderr for errors.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::{LogFormat, LoggingConfig};
use crate::error::VeyraError;

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
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
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

/// The log file behind a filter: someone will `tail -f` it on a terminal, and its lines quote
/// prompts, answers and servers. JSON lines get `\uXXXX` escapes for what the encoder leaves
/// raw (DEL, C1, bidi overrides); text lines get the sanitizer's visible placeholders.
struct Scrubbed {
    file: File,
    json: bool,
}

impl std::io::Write for Scrubbed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes each record whole, so a record is never split mid-character.
        let text = String::from_utf8_lossy(buf);
        if self.json {
            let line = crate::sanitize::escape_json(text.into_owned());
            self.file.write_all(line.as_bytes())?;
        } else {
            self.file
                .write_all(crate::sanitize::sanitize(&text).as_bytes())?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Installs the global subscriber. An explicitly configured log file that cannot be opened is an
/// error; the default one failing only disables file logging (reported in the status).
/// Calling it twice is harmless: the second call changes nothing.
pub fn init(
    config: &LoggingConfig,
    default_file: &Path,
    extra: Option<ExtraLayer>,
) -> Result<LoggingStatus, VeyraError> {
    let level = level_filter(&config.level);
    let (file, status) = match &config.file {
        Some(path) => {
            let f = open_log(path).map_err(|e| {
                VeyraError::io(
                    format!("opening log file {} (logging.file)", path.display()),
                    e,
                )
            })?;
            (
                Some(f),
                LoggingStatus {
                    file: Some(path.clone()),
                    warning: None,
                },
            )
        }
        None => match open_log(default_file) {
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
            file: f,
            json: config.format == LogFormat::Json,
        });
        match config.format {
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(writer)
                .with_filter(level)
                .boxed(),
            LogFormat::Text => tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(level)
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
}
