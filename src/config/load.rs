//! Loading: the data and state directories, the config file lookup order (DESIGN §4), reading
//! a file through [`crate::fsread`], parsing YAML with located errors, `VEYRA_*` environment
//! overrides, and the record of where each value came from ([`LoadedConfig`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{ConfigError, Origin, VeyraConfig, env, lines, suggest, takes};

/// The per-user data directory: `$XDG_DATA_HOME/veyra`, else `~/.local/share/veyra`,
/// else `./.veyra` when no home is known.
pub fn data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("veyra");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/veyra");
    }
    PathBuf::from(".veyra")
}

/// Veyra's state directory: `$XDG_STATE_HOME/veyra`, else `~/.local/state/veyra`; it holds
/// the audit witnesses, apart from the data directory.
pub fn state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("veyra");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/state/veyra");
    }
    PathBuf::from(".veyra-state")
}

/// The config file that [`load_config`] would read without `--config`, if any exists:
/// `$VEYRA_CONFIG`, `./veyra.yaml`, `$XDG_CONFIG_HOME/veyra/config.yaml` (or `~/.config/…`).
/// `VEYRA_CONFIG` naming a missing file is returned anyway, so loading reports it.
pub fn find_config_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VEYRA_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from("veyra.yaml");
    if local.is_file() {
        return Some(local);
    }
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let user = config_home.join("veyra/config.yaml");
    user.is_file().then_some(user)
}

/// A loaded configuration and where its values came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The effective configuration.
    pub config: VeyraConfig,
    /// The file it was read from; `None` for built-in defaults.
    pub file: Option<PathBuf>,
    /// Dotted key → the `VEYRA_*` variable that overrode it.
    pub overrides: BTreeMap<String, String>,
    /// Dotted key → the line of [`LoadedConfig::file`] that set it (keys the file sets).
    pub file_lines: BTreeMap<String, u64>,
}

impl LoadedConfig {
    /// Where `key`'s value came from: the `VEYRA_*` variable that overrode it, else the file
    /// and line that set it, else the built-in defaults. What `veyra config show` lists, per
    /// key; validation errors name it.
    pub fn origin(&self, key: &str) -> Origin {
        if let Some(var) = self.overrides.get(key) {
            return Origin::Env(var.clone());
        }
        match (&self.file, self.file_lines.get(key)) {
            (Some(path), Some(line)) => Origin::File {
                path: path.clone(),
                line: Some(*line),
            },
            _ => Origin::Default,
        }
    }
}

/// Loads the effective configuration: the file (`path`, else the lookup order of DESIGN §4,
/// else built-in defaults), then `VEYRA_<SECTION>__<FIELD>` overrides from the process
/// environment, then validation.
pub fn load_config(path: Option<&Path>) -> Result<VeyraConfig, ConfigError> {
    load_config_with_sources(path).map(|l| l.config)
}

/// [`load_config`], also telling where the values came from.
pub fn load_config_with_sources(path: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
    let vars = env::process_vars()?;
    load_from(path, &vars)
}

/// [`load_config_with_sources`] with an explicit environment (for tests and embedding).
pub fn load_from(
    path: Option<&Path>,
    vars: &[(String, String)],
) -> Result<LoadedConfig, ConfigError> {
    let found = match path {
        Some(p) => Some(p.to_path_buf()),
        None => find_config_file(),
    };
    let (config, file_lines) = match &found {
        Some(p) => {
            let text = read_config_text(p)?;
            let lines = lines::key_lines(&text)
                .into_iter()
                .map(|(key, at)| (key, at.line))
                .collect();
            (parse_str(&text, p)?, lines)
        }
        None => (VeyraConfig::default(), BTreeMap::new()),
    };
    let (config, overrides) = env::apply_overrides(config, vars)?;
    let loaded = LoadedConfig {
        config,
        file: found,
        overrides,
        file_lines,
    };
    loaded.config.validate(&|key: &str| loaded.origin(key))?;
    Ok(loaded)
}

/// Reads and validates one file on its own, without environment overrides
/// (`veyra config check`).
pub fn check_file(path: &Path) -> Result<VeyraConfig, ConfigError> {
    let text = read_config_text(path)?;
    let config = parse_str(&text, path)?;
    let lines = lines::key_lines(&text);
    config.validate(&|key: &str| Origin::File {
        path: path.to_path_buf(),
        line: lines.get(key).map(|at| at.line),
    })?;
    Ok(config)
}

/// Most bytes of a config or theme file: a config is a page of YAML, never a megabyte.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Parses a YAML file into a config, with located, actionable errors. The file must be a
/// regular file of at most [`MAX_FILE_BYTES`] ([`crate::fsread`]).
pub fn parse_file(path: &Path) -> Result<VeyraConfig, ConfigError> {
    parse_str(&read_config_text(path)?, path)
}

/// The text of the config file at `path`; a missing file is [`ConfigError::NotFound`].
fn read_config_text(path: &Path) -> Result<String, ConfigError> {
    read_file(path, "config file").map_err(|e| match e {
        ConfigError::Unreadable { path, source }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            ConfigError::NotFound { path }
        }
        other => other,
    })
}

/// Reads a config or theme file (`what`) as [`crate::fsread`] reads every file it is handed.
pub(crate) fn read_file(path: &Path, what: &str) -> Result<String, ConfigError> {
    crate::fsread::read_regular_to_string(path, MAX_FILE_BYTES, what).map_err(|e| {
        ConfigError::Unreadable {
            path: path.to_path_buf(),
            source: e.into_io(),
        }
    })
}

/// Parses YAML text; `path` is used for error messages only.
pub fn parse_str(text: &str, path: &Path) -> Result<VeyraConfig, ConfigError> {
    // A file holding only comments or nothing at all is the defaults.
    let is_empty = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---");
    if is_empty {
        return Ok(VeyraConfig::default());
    }
    serde_saphyr::from_str::<VeyraConfig>(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        // The message and the line may quote the file: both are capped and sanitized, so a
        // megabyte-long line is not echoed whole.
        let explained = explain_serde_message(&yaml_error_message(&e));
        let source = text
            .lines()
            .nth(
                usize::try_from(line)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(1),
            )
            .filter(|_| line > 0);
        // A value of the wrong kind: say what the key takes, in words.
        if takes::is_type_error(&explained)
            && let Some(source) = source
            && let Some(key) = lines::key_at(&lines::key_lines(text), line, column)
            && let Some(takes) = takes::takes(key)
        {
            let got: String = source
                .chars()
                .skip(usize::try_from(column.saturating_sub(1)).unwrap_or(0))
                .collect();
            return ConfigError::File {
                path: path.to_path_buf(),
                line,
                column,
                message: takes::wrong_kind(key, &takes, &got),
            };
        }
        let mut message = crate::sanitize::sanitize_line(&crate::sanitize::excerpt(
            &explained,
            3 * crate::sanitize::EXCERPT_CHARS,
        ))
        .into_owned();
        if !message.starts_with("unknown key")
            && let Some(source) = source
        {
            message.push_str(&format!(
                " (in `{}`)",
                crate::sanitize::quote(source.trim())
            ));
        }
        ConfigError::File {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

/// Where a YAML error is (`:LINE:COLUMN`, or nothing when serde-saphyr does not say) and its
/// message without its snippet and location suffix: how every YAML file Veyra reads (the
/// configuration, a theme, a demo scenario, an eval suite) reports one.
pub fn yaml_error_parts(e: &serde_saphyr::Error) -> (String, String) {
    let at = e
        .location()
        .map(|l| format!(":{}:{}", l.line(), l.column()))
        .unwrap_or_default();
    (at, yaml_error_message(e))
}

/// The message of a YAML error without its snippet and location suffix.
fn yaml_error_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("").trim();
    // serde-saphyr appends " at line N column M"; the location is printed in front instead.
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" into
/// "unknown key 'x' in section 's' (did you mean 'a'?); valid keys: a, b".
pub(crate) fn explain_serde_message(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((key, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let expected = expected.trim_start_matches(',').trim();
    let list = expected
        .strip_prefix("expected one of ")
        .or_else(|| expected.strip_prefix("expected "))
        .unwrap_or("");
    let valid: Vec<&str> = list
        .split(',')
        .map(|s| s.trim().trim_matches('`'))
        .filter(|s| !s.is_empty() && *s != "nothing")
        .collect();
    let section = section_with_fields(&valid)
        .map(|s| {
            if s == "top level" {
                " at the top level".to_string()
            } else {
                format!(" in section '{s}'")
            }
        })
        .unwrap_or_default();
    format!(
        "unknown key '{key}'{section}{}; valid keys: {}",
        suggest::did_you_mean(key, valid.iter().copied()),
        valid.join(", ")
    )
}

/// The dotted name of the config section whose keys are exactly `fields`.
fn section_with_fields(fields: &[&str]) -> Option<String> {
    fn walk(value: &serde_json::Value, path: &str, fields: &[&str]) -> Option<String> {
        let serde_json::Value::Object(map) = value else {
            return None;
        };
        let mut want: Vec<&str> = fields.to_vec();
        let mut have: Vec<&str> = map.keys().map(String::as_str).collect();
        want.sort_unstable();
        have.sort_unstable();
        if !want.is_empty() && want == have {
            return Some(if path.is_empty() {
                "top level".to_string()
            } else {
                path.to_string()
            });
        }
        map.iter().find_map(|(k, v)| {
            let child = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            walk(v, &child, fields)
        })
    }
    let defaults = serde_json::to_value(VeyraConfig::default()).ok()?;
    walk(&defaults, "", fields)
}
