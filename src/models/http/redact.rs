//! [`Redactor`]: the secrets a server may send back, taken out before anything else sees
//! them.
//!
//! Errors (status messages, error bodies, stream error events, transport failures that quote
//! the URL) lose the configured key, anything shaped like a bearer token or API key, and the
//! user-info of any URL. Answer text loses the configured key only (a model may write
//! "Bearer"): whole texts and tool calls through [`Redactor::answer`] and
//! [`Redactor::tool_call`], streamed text through the [`StreamRedactor`] that
//! [`Redactor::stream`] gives, which also catches a key split between two pieces. A tool call
//! is assembled whole before it is scrubbed, so its pieces need no such care.

use std::sync::Arc;

use crate::config::{Secret, StreamRedactor};
use crate::models::base::{ModelError, ToolCall};

/// Scrubs secrets from what a server sends back (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    key: Option<Arc<Secret>>,
}

impl Redactor {
    /// A redactor for `key`, the configured API key if any.
    pub(crate) fn new(key: Option<Secret>) -> Self {
        Redactor {
            key: key.map(Arc::new),
        }
    }

    /// A redactor of answer text that arrives in pieces (see the module docs).
    pub(crate) fn stream(&self) -> StreamRedactor {
        StreamRedactor::new(self.key.clone())
    }

    /// `text` without the key, anything shaped like a credential, or a URL's user-info.
    pub(crate) fn text<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        crate::config::redact(text, self.key.as_deref())
    }

    /// Answer text without the configured key (only that: see the module docs).
    pub(crate) fn answer(&self, text: String) -> String {
        match crate::config::redact_key(&text, self.key.as_deref()) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(clean) => clean,
        }
    }

    /// A tool call without the configured key in its id, name or arguments (a server may
    /// echo the key into any of them; the call's arguments are shown to the operator).
    pub(crate) fn tool_call(&self, mut call: ToolCall) -> ToolCall {
        if self.key.is_none() {
            return call;
        }
        call.id = self.answer(call.id);
        call.name = self.answer(call.name);
        call.arguments = match call.arguments {
            Ok(value) => Ok(self.json(value)),
            Err(mut malformed) => {
                malformed.raw = self.answer(malformed.raw);
                malformed.error = self.answer(malformed.error);
                Err(malformed)
            }
        };
        call
    }

    /// `value` with the configured key taken out of every string and object key in it.
    fn json(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(text) => Value::String(self.answer(text)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.answer(k), self.json(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// `error` with its message and request id scrubbed.
    pub(crate) fn error(&self, mut error: ModelError) -> ModelError {
        if let std::borrow::Cow::Owned(clean) = self.text(&error.message) {
            error.message = clean;
        }
        error.request_id = error
            .request_id
            .map(|id| crate::sanitize::excerpt(&self.text(&id), 120).into_owned());
        error
    }
}
