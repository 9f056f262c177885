//! [`Secret`]: a string that never shows itself.
//!
//! API keys live in this type from the moment they are read from the environment. Its `Debug`,
//! `Display` and `Serialize` print a fixed placeholder, so a key cannot reach a log line, an
//! event, the audit trail, an error message or `veyra config show` by accident. The only way to
//! the bytes is [`Secret::expose`], which a backend calls when it builds a request header.

use std::fmt;

/// The text every secret prints as.
pub const REDACTED: &str = "***redacted***";

/// A secret string (an API key). See the module docs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Call only where the value leaves the process on purpose
    /// (an HTTP header), never to format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let key = Secret::new("sk-sentinel-0123456789");
        assert!(!format!("{key:?}").contains("sentinel"));
        assert!(!format!("{key}").contains("sentinel"));
        assert!(!serde_json::to_string(&key).unwrap().contains("sentinel"));
        assert_eq!(key.expose(), "sk-sentinel-0123456789");
    }
}
