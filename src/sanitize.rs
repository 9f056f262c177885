//! The one sanitizer for untrusted text on its way to a terminal (DESIGN §7).
//!
//! Prompts, model output, server replies, tool output, config values and arguments may hold
//! bytes a terminal acts on: C0 controls (other than newline and tab), DEL, ESC, the C1 range
//! U+0080–U+009F (U+009B is a one-character CSI), and the bidi overrides U+202A–U+202E and
//! U+2066–U+2069 that make text read differently from what it says. [`sanitize`] turns each into
//! a visible placeholder that a terminal only prints:
//!
//! | what | becomes |
//! |---|---|
//! | C0 `U+0000`–`U+001F` but `\n` and `\t` | its control picture, `␀`…`␟` (ESC is `␛`, CR is `␍`) |
//! | DEL `U+007F` | `␡` |
//! | C1 `U+0080`–`U+009F`, bidi overrides | `<U+XXXX>`, e.g. `<U+009B>`, `<U+202E>` |
//!
//! Clean text (nearly all of it) is returned borrowed, after one byte scan with a lookup table:
//! this runs on the streaming hot path. [`escape_json`] does the same job for JSON, whose
//! encoder already escapes C0 but leaves DEL, C1 and bidi characters raw, and [`excerpt`] caps
//! how much of an input an error message repeats. This module knows no terminal library; the
//! console and the CLI call it before they draw or print.

use std::borrow::Cow;

/// Most characters of an input that an error message repeats before it says "…".
pub const EXCERPT_CHARS: usize = 200;

/// Bytes that can start a character [`needs_placeholder`] may be true for: C0 but `\n` and
/// `\t`, DEL, `0xC2` (lead byte of U+0080–U+00BF) and `0xE2` (lead byte of U+2000–U+2FFF).
const SUSPECT: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b != b'\n' as usize && b != b'\t' as usize;
        b += 1;
    }
    table[0x7F] = true;
    table[0xC2] = true;
    table[0xE2] = true;
    table
};

/// True for a character a terminal may act on or that disguises the text around it (see the
/// module docs); `\n` and `\t` are not.
pub fn needs_placeholder(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{B}'..='\u{1F}' | '\u{7F}'..='\u{9F}'
        | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Appends the visible placeholder of `c` (which [`needs_placeholder`]) to `out`.
fn push_placeholder(out: &mut String, c: char) {
    let code = u32::from(c);
    match code {
        // Control Pictures: U+2400 + code for C0, U+2421 for DEL.
        0..=0x1F => out.push(char::from_u32(0x2400 + code).unwrap_or('\u{FFFD}')),
        0x7F => out.push('\u{2421}'),
        _ => {
            use std::fmt::Write;
            let _ = write!(out, "<U+{code:04X}>");
        }
    }
}

/// Position of the first byte of the first character needing a placeholder, if any.
fn first_suspect(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    loop {
        let offset = bytes
            .get(from..)?
            .iter()
            .position(|&b| SUSPECT[usize::from(b)])?;
        let at = from + offset;
        // A suspect byte starts a character here (0xC2 and 0xE2 are lead bytes, the others
        // ASCII), so `at` is a char boundary.
        match text.get(at..).and_then(|rest| rest.chars().next()) {
            Some(c) if needs_placeholder(c) => return Some(at),
            Some(c) => from = at + c.len_utf8(),
            None => return None,
        }
    }
}

/// `text` with every character a terminal could act on replaced by a visible placeholder
/// (module docs). Borrowed, and copied nowhere, when nothing needs replacing.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    let Some(at) = first_suspect(text) else {
        return Cow::Borrowed(text);
    };
    let (clean, rest) = text.split_at(at);
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(clean);
    for c in rest.chars() {
        if needs_placeholder(c) {
            push_placeholder(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`sanitize`] for text that must stay on one line (titles, table cells, status text): a
/// newline becomes `␤` and a tab a space as well.
pub fn sanitize_line(text: &str) -> Cow<'_, str> {
    let cleaned = sanitize(text);
    if !cleaned.contains(['\n', '\t']) {
        return cleaned;
    }
    Cow::Owned(
        cleaned
            .chars()
            .map(|c| match c {
                '\n' => '\u{2424}',
                '\t' => ' ',
                c => c,
            })
            .collect(),
    )
}

/// JSON text with DEL, C1 and bidi override characters written as `\uXXXX` escapes (the
/// encoder already escapes C0). Valid JSON stays valid and means the same: these characters can
/// only occur inside strings. Returned unchanged when there is nothing to escape.
pub fn escape_json(json: String) -> String {
    if first_suspect(&json).is_none() {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if needs_placeholder(c) {
            use std::fmt::Write;
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `value` as one line of JSON with [`escape_json`] applied.
pub fn to_json_line<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string(value).map(escape_json)
}

/// `value` as indented JSON with [`escape_json`] applied.
pub fn to_json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(value).map(escape_json)
}

/// At most `max` characters of `text`, then `…` when some were left off.
pub fn excerpt(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((i, _)) => Cow::Owned(format!("{}…", text.get(..i).unwrap_or_default())),
        None => Cow::Borrowed(text),
    }
}

/// A piece of user input for an error message: one line, sanitized, at most
/// [`EXCERPT_CHARS`] characters.
pub fn quote(text: &str) -> String {
    sanitize_line(&excerpt(text, EXCERPT_CHARS)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::ptr_arg)] // The point is to look at the Cow, not the str.
    fn is_borrowed(c: &Cow<'_, str>) -> bool {
        matches!(c, Cow::Borrowed(_))
    }

    #[test]
    fn clean_text_is_borrowed() {
        for text in [
            "",
            "plain ASCII text",
            "line one\nline two\twith a tab",
            "Ünïcödé — ✓ ← → ‘quotes’ € 日本語 🚀",
            "\u{A0}\u{BF}\u{2010}\u{2029}\u{202F}\u{2065}\u{206A}",
        ] {
            let out = sanitize(text);
            assert!(is_borrowed(&out), "{text:?} was copied");
            assert_eq!(out, text);
        }
    }

    #[test]
    fn every_c0_control_but_newline_and_tab_becomes_its_picture() {
        for code in 0u32..0x20 {
            let c = char::from_u32(code).unwrap();
            let out = sanitize(&format!("a{c}b")).into_owned();
            if c == '\n' || c == '\t' {
                assert_eq!(out, format!("a{c}b"));
            } else {
                let picture = char::from_u32(0x2400 + code).unwrap();
                assert_eq!(out, format!("a{picture}b"), "U+{code:04X}");
            }
        }
        assert_eq!(sanitize("\u{1b}[2J"), "␛[2J");
        assert_eq!(sanitize("a\rb"), "a␍b");
    }

    #[test]
    fn del_c1_and_bidi_overrides_are_shown() {
        assert_eq!(sanitize("x\u{7f}y"), "x␡y");
        for code in 0x80u32..=0x9F {
            let c = char::from_u32(code).unwrap();
            assert_eq!(sanitize(&c.to_string()), format!("<U+{code:04X}>"));
        }
        for code in (0x202Au32..=0x202E).chain(0x2066..=0x2069) {
            let c = char::from_u32(code).unwrap();
            assert_eq!(sanitize(&format!("ab{c}cd")), format!("ab<U+{code:04X}>cd"));
        }
        assert_eq!(sanitize("\u{9b}31m"), "<U+009B>31m");
    }

    #[test]
    fn hostile_sequences_keep_no_escape_byte() {
        let hostile =
            "hi \u{1b}]0;PWNED\u{7}\u{1b}[2J\u{1b}]52;c;aGk=\u{7} \u{9b}6n \u{202e}txt.exe";
        let out = sanitize(hostile);
        assert!(!out.contains(needs_placeholder), "{out}");
        assert_eq!(
            out,
            "hi ␛]0;PWNED␇␛[2J␛]52;c;aGk=␇ <U+009B>6n <U+202E>txt.exe"
        );
    }

    #[test]
    fn one_line_form_shows_newlines() {
        assert_eq!(sanitize_line("a\nb\tc\u{1b}"), "a␤b c␛");
        assert!(is_borrowed(&sanitize_line("clean")));
    }

    #[test]
    fn json_escapes_c1_del_and_bidi() {
        let json = to_json_line(&serde_json::json!({"t": "a\u{9b}b\u{7f}\u{202e}\u{1b}"})).unwrap();
        assert_eq!(json, r#"{"t":"a\u009bb\u007f\u202e\u001b"}"#);
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["t"], "a\u{9b}b\u{7f}\u{202e}\u{1b}");
        let clean = String::from("{\"t\":\"ok ✓\"}");
        assert_eq!(escape_json(clean.clone()), clean);
    }

    #[test]
    fn excerpts_are_capped() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        let long = "é".repeat(10_000);
        assert_eq!(quote(&long).chars().count(), EXCERPT_CHARS + 1);
    }

    proptest::proptest! {
        #[test]
        fn never_leaves_a_control_and_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let out = sanitize(&text);
            proptest::prop_assert!(!out.contains(needs_placeholder));
            if !text.contains(needs_placeholder) {
                proptest::prop_assert!(is_borrowed(&out));
            }
            let line = sanitize_line(&text);
            proptest::prop_assert!(!line.contains(['\n', '\t']));
            let _ = quote(&text);
        }

        #[test]
        fn arbitrary_chars_are_handled(text in "\\PC*|[\\x00-\\x{a0}\\x{2028}-\\x{206f}]*") {
            let out = sanitize(&text);
            proptest::prop_assert!(!out.contains(needs_placeholder));
            let json = to_json_line(&text).unwrap();
            proptest::prop_assert!(!json.contains(needs_placeholder));
            let back: String = serde_json::from_str(&json).unwrap();
            proptest::prop_assert_eq!(back, text);
        }
    }
}
