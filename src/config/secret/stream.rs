//! [`StreamRedactor`]: the configured key taken out of text that arrives in pieces.
//!
//! A server may echo the key split over two pieces (`"sk-SENT"`, then `"INEL-…"`): neither
//! piece holds it, their join does. The redactor hands each piece on at once except for its
//! tail when that tail could begin the key (the longest one that is a proper prefix of it):
//! that much is held back and joined to the next piece. Whatever the split, the pieces it
//! hands on join to exactly [`redact_key`](super::redact_key) of the whole text: matches are
//! found left to right, and a place where the key could still start is never handed on before
//! the text after it has decided. Streaming stays live: at most the key's length less one byte
//! waits, and only when it looks like the key's start. Keys shorter than
//! [`MIN_KEY_LEN`](super::MIN_KEY_LEN) are not searched for, as in `redact_key`.

use std::sync::Arc;

use super::{MIN_KEY_LEN, REDACTED_IN_TEXT, Secret};

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct StreamRedactor {
    /// The key, when one long enough to search for is configured.
    key: Option<Arc<Secret>>,
    /// The tail held back: a proper prefix of the key.
    held: String,
}

impl StreamRedactor {
    /// A redactor of `key` (none, or one too short to search for: pieces pass unchanged).
    pub fn new(key: Option<Arc<Secret>>) -> Self {
        StreamRedactor {
            key: key.filter(|k| k.expose().len() >= MIN_KEY_LEN),
            held: String::new(),
        }
    }

    /// The text of `piece` that can be handed on now, the key redacted; possibly empty (all of
    /// it may begin the key).
    pub fn push(&mut self, piece: String) -> String {
        let Some(key) = self.key.as_deref().map(Secret::expose) else {
            return piece;
        };
        let mut text = if self.held.is_empty() {
            piece
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.push_str(&piece);
            joined
        };
        let (redacted, pos, hold) = scan(&text, key);
        self.held = text.get(hold..).unwrap_or_default().to_string();
        match redacted {
            Some(mut out) => {
                out.push_str(text.get(pos..hold).unwrap_or_default());
                out
            }
            None => {
                text.truncate(hold);
                text
            }
        }
    }

    /// The text held back, now that no more comes (it was not the key).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// True when text is being held back.
    pub fn holds(&self) -> bool {
        !self.held.is_empty()
    }
}

/// One pass over `text` for `key`: the text up to the last whole match with every match
/// redacted (`None` when there is none), where the text after that match starts, and where the
/// tail that could begin the key starts (the longest suffix that is a proper prefix of `key`;
/// `text.len()` when there is none). Only the places where the key's first byte occurs are
/// looked at, left to right, so matches are found as `str::replace` finds them; that byte
/// begins a character of `key`, so every place found is a character boundary of `text`.
fn scan(text: &str, key: &str) -> (Option<String>, usize, usize) {
    let (bytes, key_bytes) = (text.as_bytes(), key.as_bytes());
    let Some(&first) = key_bytes.first() else {
        return (None, 0, text.len());
    };
    let mut redacted: Option<String> = None;
    let mut pos = 0;
    let mut from = 0;
    while let Some(offset) = bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == first))
    {
        let at = from + offset;
        let rest = bytes.get(at..).unwrap_or_default();
        if rest.starts_with(key_bytes) {
            let out = redacted.get_or_insert_with(String::new);
            out.push_str(text.get(pos..at).unwrap_or_default());
            out.push_str(REDACTED_IN_TEXT);
            pos = at + key_bytes.len();
            from = pos;
        } else if key_bytes.starts_with(rest) {
            return (redacted, pos, at);
        } else {
            from = at + 1;
        }
    }
    (redacted, pos, text.len())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::redact_key;
    use super::*;

    const KEY: &str = "sk-SENTINEL-0123456789";

    fn redactor(key: &str) -> StreamRedactor {
        StreamRedactor::new(Some(Arc::new(Secret::new(key))))
    }

    /// Every piece the redactor hands on, and the flush.
    fn run(key: &str, pieces: &[&str]) -> Vec<String> {
        let mut r = redactor(key);
        let mut out: Vec<String> = pieces.iter().map(|p| r.push(p.to_string())).collect();
        out.push(r.finish());
        out
    }

    #[test]
    fn a_key_split_over_two_pieces_is_redacted_and_the_rest_flows_at_once() {
        assert_eq!(
            run(KEY, &["Your key: sk-SENT", "INEL-0123456789. Done."]),
            ["Your key: ", "[redacted]. Done.", ""]
        );
        // Over many pieces, one byte at a time.
        let text = format!("a {KEY} b {KEY}");
        let pieces: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        assert_eq!(run(KEY, &refs).concat(), "a [redacted] b [redacted]");
        // A tail that only looked like the key's start is handed on with the next piece.
        assert_eq!(run(KEY, &["see sk-", "LINES"]), ["see ", "sk-LINES", ""]);
        // At the end of the stream it is flushed.
        assert_eq!(run(KEY, &["ends with sk-SEN"]), ["ends with ", "sk-SEN"]);
    }

    #[test]
    fn text_that_cannot_begin_the_key_is_never_held() {
        let mut r = redactor(KEY);
        for piece in ["plain text", " and more", " s", "k"] {
            let out = r.push(piece.to_string());
            if piece.ends_with('s') {
                assert_eq!(out, " ");
                assert!(r.holds());
            } else if piece == "k" {
                assert_eq!(out, "");
            } else {
                assert_eq!(out, piece);
                assert!(!r.holds());
            }
        }
        assert_eq!(r.finish(), "sk");
    }

    #[test]
    fn without_a_key_or_with_a_short_one_pieces_pass_unchanged() {
        let mut none = StreamRedactor::new(None);
        assert_eq!(none.push("sk-SENT".into()), "sk-SENT");
        let mut short = redactor("sk-1");
        assert_eq!(short.push("sk-".into()), "sk-");
        assert_eq!(short.push("1".into()), "1");
        assert_eq!(short.finish(), "");
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        let key = "clé-secrète-éé";
        assert_eq!(
            run(key, &["voici clé-sec", "rète-éé, fin"]),
            ["voici ", "[redacted], fin", ""]
        );
        assert_eq!(run(key, &["ééé cl"]), ["ééé ", "cl"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the text and however it is cut, the pieces join to the whole-text
        /// redaction.
        #[test]
        fn any_split_joins_to_the_whole_text_redaction(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("sk-SENTINEL-0123456789".to_string()),
                    Just("sk-SENT".to_string()),
                    Just("INEL-0123456789".to_string()),
                    Just("sk-sk-SENTINEL-01234567".to_string()),
                    Just("é".to_string()),
                    "[a-zS -]{0,6}",
                ],
                0..12,
            ),
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let text = parts.concat();
            let mut bounds: Vec<usize> = cuts
                .into_iter()
                .map(|c| c.min(text.len()))
                .filter(|&c| text.is_char_boundary(c))
                .collect();
            bounds.push(0);
            bounds.push(text.len());
            bounds.sort_unstable();
            let pieces: Vec<&str> = bounds.windows(2).map(|w| &text[w[0]..w[1]]).collect();
            let joined = run(KEY, &pieces).concat();
            let key = Secret::new(KEY);
            prop_assert_eq!(joined, redact_key(&text, Some(&key)).into_owned());
        }
    }
}
