//! `tools:` — where file tools may act, how much they may read and write, and how many tool
//! steps one task may take.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Range of `tools.max_read_bytes` and `tools.max_write_bytes` (1 byte to 64 MiB).
pub const RANGE_TOOL_BYTES: std::ops::RangeInclusive<u64> = 1..=64 * 1024 * 1024;
/// Range of `tools.max_steps`.
pub const RANGE_TOOL_STEPS: std::ops::RangeInclusive<u64> = 1..=100;

/// `tools:` — limits of the built-in tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// The one directory file tools may touch; default `$XDG_DATA_HOME/veyra/workspace`.
    /// Paths given to file tools are relative to it and can never leave it.
    pub workspace: Option<PathBuf>,
    /// Largest file `file_read` reads, in bytes, 1 to 67,108,864.
    pub max_read_bytes: u64,
    /// Largest content `file_write` writes, in bytes, 1 to 67,108,864; with the undo journal on,
    /// also the largest file `file_write` may replace and `file_delete` may delete (the most
    /// the journal keeps of one file).
    pub max_write_bytes: u64,
    /// Tool calls one task may make before it is stopped, 1 to 100.
    pub max_steps: u32,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            workspace: None,
            max_read_bytes: 1024 * 1024,
            max_write_bytes: 1024 * 1024,
            max_steps: 8,
        }
    }
}

impl ToolsConfig {
    /// The workspace directory file tools are confined to.
    pub fn workspace_dir(&self) -> PathBuf {
        self.workspace
            .clone()
            .unwrap_or_else(|| super::data_dir().join("workspace"))
    }

    /// Checks every range; `Err((key, message))` names the first value out of range.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let within = |key: &'static str, value: u64, range: std::ops::RangeInclusive<u64>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err((
                    key,
                    format!(
                        "{value} is out of range; use {} to {}",
                        range.start(),
                        range.end()
                    ),
                ))
            }
        };
        within(
            "tools.max_read_bytes",
            self.max_read_bytes,
            RANGE_TOOL_BYTES,
        )?;
        within(
            "tools.max_write_bytes",
            self.max_write_bytes,
            RANGE_TOOL_BYTES,
        )?;
        within("tools.max_steps", self.max_steps.into(), RANGE_TOOL_STEPS)?;
        if self
            .workspace
            .as_ref()
            .is_some_and(|w| w.as_os_str().is_empty())
        {
            return Err((
                "tools.workspace",
                "is empty; name a directory, or leave it null for the default".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_limits_name_their_key() {
        assert!(ToolsConfig::default().check().is_ok());
        let c = ToolsConfig {
            max_read_bytes: 0,
            ..ToolsConfig::default()
        };
        assert_eq!(c.check().unwrap_err().0, "tools.max_read_bytes");
        let c = ToolsConfig {
            max_steps: 1000,
            ..ToolsConfig::default()
        };
        assert_eq!(c.check().unwrap_err().0, "tools.max_steps");
        let c = ToolsConfig {
            workspace: Some(PathBuf::new()),
            ..ToolsConfig::default()
        };
        assert_eq!(c.check().unwrap_err().0, "tools.workspace");
    }
}
