//! [`Secret`]: a string that never shows itself.
//!
//! API keys live in this type from the moment they are read from the environment. Its `Debug`,
//! `Display` and `Serialize` print a fixed placeholder, so a key cannot reach a log line, an
//! event, the audit trail, an error message or `veyra config show` by accident. The only way to
//! the bytes is [`Secret::expose`], which a backend calls when it builds a request header.
//!
//! Text from a server loses secrets here too: [`redact`] and [`redact_key`] for whole texts,
//! [`StreamRedactor`] for text that arrives in pieces (a key may be split between two), and
//! [`display_url`] / [`mask_userinfo`] for URLs that carry a credential in their user-info.

mod stream;
mod userinfo;

pub use stream::StreamRedactor;
pub use userinfo::{MASKED_USERINFO, display_url, mask_userinfo};

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// The text every secret prints as.
pub const REDACTED: &str = "***redacted***";

/// What a secret found inside text from a server is replaced by ([`redact`]).
pub const REDACTED_IN_TEXT: &str = "[redacted]";

/// Keys shorter than this are not searched for in text: they would blank ordinary words.
pub const MIN_KEY_LEN: usize = 8;

/// Shapes of credentials, whoever they belong to: `Bearer <token>`, `sk-…`-style keys, and
/// `api_key: <value>` / `x-api-key=<value>` pairs. Compiled once; the patterns are constants
/// (a unit test compiles them), so `None` is unreachable and would only mean "no pattern".
static TOKEN_SHAPES: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?P<bearer>\bbearer\s+)[A-Za-z0-9._~+/=-]{6,}|\b(?:sk|rk|pk)-[A-Za-z0-9_-]{8,}|(?P<pair>\b(?:x-api-key|api[_-]?key|access[_-]?token|authorization)["']?\s*[:=]\s*["']?)[A-Za-z0-9._~+/=-]{8,}"#,
    )
    .ok()
});

/// `text` with the configured `key` and anything shaped like a bearer token or API key
/// replaced by [`REDACTED_IN_TEXT`], and the user-info of any URL in it masked
/// ([`mask_userinfo`]). Used on every text a server sends back that is not the answer itself
/// (error bodies, headers, stream error events) and on transport errors (which quote the URL)
/// before it reaches an error, an event, the log or the audit trail. Borrowed when there is
/// nothing to hide.
pub fn redact<'a>(text: &'a str, key: Option<&Secret>) -> Cow<'a, str> {
    let mut out = redact_key(text, key);
    if let Cow::Owned(masked) = mask_userinfo(&out) {
        out = Cow::Owned(masked);
    }
    if let Some(shapes) = TOKEN_SHAPES.as_ref()
        && shapes.is_match(&out)
    {
        let replaced = shapes
            .replace_all(&out, |caps: &regex::Captures<'_>| {
                let prefix = caps
                    .name("bearer")
                    .or_else(|| caps.name("pair"))
                    .map_or("", |m| m.as_str());
                format!("{prefix}{REDACTED_IN_TEXT}")
            })
            .into_owned();
        out = Cow::Owned(replaced);
    }
    out
}

/// `text` with every occurrence of the configured `key` replaced by [`REDACTED_IN_TEXT`];
/// nothing else is touched (answer text: a model may well write "Bearer" or "sk-"). Keys
/// shorter than [`MIN_KEY_LEN`] bytes are not searched for: they would blank ordinary words.
pub fn redact_key<'a>(text: &'a str, key: Option<&Secret>) -> Cow<'a, str> {
    match key.map(Secret::expose) {
        Some(k) if k.len() >= MIN_KEY_LEN && text.contains(k) => {
            Cow::Owned(text.replace(k, REDACTED_IN_TEXT))
        }
        _ => Cow::Borrowed(text),
    }
}

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
    fn the_token_patterns_compile() {
        assert!(TOKEN_SHAPES.is_some());
    }

    #[test]
    fn server_text_loses_keys_and_tokens() {
        let key = Secret::new("my-own-configured-key-123");
        for (text, want) in [
            (
                r#"{"error":"bad header Authorization: Bearer abc.DEF-123_xyz"}"#,
                r#"{"error":"bad header Authorization: Bearer [redacted]"}"#,
            ),
            (
                "invalid key sk-proj-AbCdEf0123456789",
                "invalid key [redacted]",
            ),
            (
                "key sk-ant-api03-AAAABBBBCCCC rejected",
                "key [redacted] rejected",
            ),
            (
                "you sent my-own-configured-key-123!",
                "you sent [redacted]!",
            ),
            (
                r#"{"api_key": "q1w2e3r4t5y6u7"}"#,
                r#"{"api_key": "[redacted]"}"#,
            ),
            ("x-api-key=abcdefgh12345678", "x-api-key=[redacted]"),
            (
                "error sending request for url (http://u:hunter2@host/v1/models)",
                "error sending request for url (http://***@host/v1/models)",
            ),
        ] {
            assert_eq!(redact(text, Some(&key)), want, "{text}");
        }
        let clean = "HTTP 400: the model 'gpt-4o' does not exist";
        assert!(matches!(redact(clean, Some(&key)), Cow::Borrowed(_)));
        assert!(matches!(
            redact_key("Bearer tokens are fine here", Some(&key)),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            redact_key("a my-own-configured-key-123 b", Some(&key)),
            "a [redacted] b"
        );
        assert_eq!(
            redact_key("short keys stay", Some(&Secret::new("a"))),
            "short keys stay"
        );
    }

    #[test]
    fn never_prints_its_value() {
        let key = Secret::new("sk-sentinel-0123456789");
        assert!(!format!("{key:?}").contains("sentinel"));
        assert!(!format!("{key}").contains("sentinel"));
        assert!(!serde_json::to_string(&key).unwrap().contains("sentinel"));
        assert_eq!(key.expose(), "sk-sentinel-0123456789");
    }
}
