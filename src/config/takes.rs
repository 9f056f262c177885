//! What a configuration key takes, in the operator's words ("a whole number from 1 to 4096"),
//! for errors about a value of the wrong type in a file or a `VEYRA_*` variable: the parser's
//! own words (`invalid u64`, `expected string scalar`, `expected usize`) name Rust types, not
//! what to write. The kind of value comes from the defaults; the range from the same
//! constants validation checks.

use std::ops::RangeInclusive;

use super::*;

/// Whole-number keys and their ranges (as validation checks them).
const WHOLE_RANGES: &[(&str, RangeInclusive<u64>)] = &[
    ("model.max_tokens", RANGE_MAX_TOKENS),
    ("model.timeout", RANGE_MODEL_TIMEOUT_S),
    ("model.retries", RANGE_RETRIES),
    ("model.mock.token_delay_ms", RANGE_DELAY_MS),
    ("latency.custom.min_ms", RANGE_DELAY_MS),
    ("latency.custom.max_ms", RANGE_DELAY_MS),
    ("runtime.max_concurrent", RANGE_MAX_CONCURRENT),
    ("runtime.retries", RANGE_RETRIES),
    ("runtime.backoff_ms", RANGE_BACKOFF_MS),
    ("runtime.backoff_max_ms", RANGE_BACKOFF_MS),
    ("runtime.task_timeout", RANGE_TASK_TIMEOUT_S),
    ("runtime.aging_ms", RANGE_AGING_MS),
    ("runtime.queue_capacity", RANGE_QUEUE_CAPACITY),
    ("runtime.max_tokens_per_task", RANGE_TASK_TOKENS),
    ("logging.max_bytes", RANGE_LOG_BYTES),
    ("logging.keep", RANGE_LOG_KEEP),
    ("tools.max_read_bytes", RANGE_TOOL_BYTES),
    ("tools.max_write_bytes", RANGE_TOOL_BYTES),
    ("tools.http_max_bytes", RANGE_TOOL_BYTES),
    ("tools.max_steps", RANGE_TOOL_STEPS),
    ("tools.http_timeout_ms", RANGE_HTTP_TIMEOUT_MS),
    ("bench.count", bench::RANGE_BENCH_COUNT),
    ("bench.epochs", bench::RANGE_BENCH_EPOCHS),
];

/// Decimal keys and their ranges.
const NUMBER_RANGES: &[(&str, RangeInclusive<f64>)] = &[
    ("model.temperature", 0.0..=2.0),
    ("latency.time_scale", RANGE_TIME_SCALE),
    ("latency.deep_space_au", RANGE_DEEP_SPACE_AU),
];

/// True when a parser's message is about the kind of value (a word where a number goes, a
/// list where text goes), not about which words are allowed or the YAML itself.
pub(crate) fn is_type_error(message: &str) -> bool {
    const TYPE_ERRORS: [&str; 4] = ["invalid type", "invalid value", "expected ", "invalid "];
    !message.starts_with("unknown ")
        && !message.contains("unknown variant")
        && TYPE_ERRORS.iter().any(|p| message.starts_with(p))
}

/// What `key` takes, in words, e.g. "a whole number from 1 to 4096"; `None` for a key not in
/// the config or whose kind the defaults do not show (an unset optional value).
pub(crate) fn takes(key: &str) -> Option<String> {
    if let Some((_, range)) = WHOLE_RANGES.iter().find(|(k, _)| *k == key) {
        return Some(format!(
            "a whole number from {} to {}",
            group(*range.start()),
            group(*range.end())
        ));
    }
    if let Some((_, range)) = NUMBER_RANGES.iter().find(|(k, _)| *k == key) {
        return Some(format!(
            "a number from {} to {}",
            range.start(),
            range.end()
        ));
    }
    let defaults = serde_json::to_value(VeyraConfig::default()).ok()?;
    let mut node = &defaults;
    for part in key.split('.') {
        node = node.get(part)?;
    }
    Some(
        match node {
            serde_json::Value::Bool(_) => "true or false",
            serde_json::Value::Number(n) if n.is_u64() => "a whole number (0 or more)",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::String(_) => "text",
            serde_json::Value::Array(_) => "a list",
            serde_json::Value::Object(_) => "a section of keys (a mapping)",
            serde_json::Value::Null => return None,
        }
        .to_string(),
    )
}

/// The sentence for a value of the wrong kind: `runtime.max_concurrent takes a whole number
/// from 1 to 4096, got "abc"`. `got` is quoted, capped and sanitized here.
pub(crate) fn wrong_kind(key: &str, takes: &str, got: &str) -> String {
    let got = crate::sanitize::sanitize_line(&crate::sanitize::excerpt(
        got.trim(),
        crate::sanitize::EXCERPT_CHARS,
    ))
    .into_owned();
    format!("{key} takes {takes}, got \"{got}\"")
}

/// `4096` as `4096`, `10000000` as `10,000,000`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    if digits.len() <= 4 {
        return digits;
    }
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_described_in_words_with_their_ranges() {
        assert_eq!(
            takes("runtime.max_concurrent").as_deref(),
            Some("a whole number from 1 to 4096")
        );
        assert_eq!(
            takes("runtime.queue_capacity").as_deref(),
            Some("a whole number from 1 to 10,000,000")
        );
        assert_eq!(takes("model.model").as_deref(), Some("text"));
        assert_eq!(takes("runtime.jitter").as_deref(), Some("true or false"));
        assert_eq!(
            takes("model.temperature").as_deref(),
            Some("a number from 0 to 2")
        );
        assert_eq!(takes("no.such.key"), None);
    }

    #[test]
    fn only_errors_about_the_kind_of_value_are_reworded() {
        assert!(is_type_error("invalid u64"));
        assert!(is_type_error("expected string scalar"));
        assert!(is_type_error(
            "invalid type: string \"abc\", expected usize"
        ));
        assert!(!is_type_error(
            "unknown variant `venus`, expected one of `earth`"
        ));
        assert!(!is_type_error("unknown field `x`"));
    }
}
