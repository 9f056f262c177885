//! Lenient but strict answer parsing, shared by every scorer.
//!
//! Lenient about form: case, white space, Markdown emphasis, surrounding prose, a fenced code
//! block around the answer line, `ANSWER:`/`Final answer =` lines, thousands separators,
//! `Jurisdiction::"Mars"` spellings, a unit or an approximation mark (`≈`, `~`, `about`)
//! beside a number or a time. Strict about content:
//! - the answer is the **last** explicit answer line (`ANSWER: …`, `Final answer = …`); a
//!   reply without one has no answer, however short — an echo of the question is not an
//!   answer;
//! - it must have exactly the fields asked for;
//! - a number or time field holds one value and nothing that changes its meaning: a second
//!   number, a negation (`not`, `no`), an inequality or a range (`at least`, `more than`,
//!   `<`, `≥`, `between`, `up to`, `77+`), alternatives (`or`, ` / `) or a refusal
//!   (`REFUSED`, `cannot`) make it invalid, never guessed at ([`number`], [`timestamp`] and
//!   [`qualifier`] hold the one rule for both);
//! - a choice that is not one of the options is wrong.

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDateTime, Utc};
use regex::Regex;

fn answer_line_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)(?:^|[^a-z])(?:final\s+)?answer\s*\**\s*[:=]\s*\**\s*(.*)$").ok()
    })
    .as_ref()
}

fn number_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?").ok()
    })
    .as_ref()
}

/// A date with an optional time and zone, as [`parse_time_text`] reads it.
fn timestamp_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:\s*(?:z|utc|[-+]\d{2}:\d{2}))?",
        )
        .ok()
    })
    .as_ref()
}

/// The answer's fields, or why there is no usable answer.
pub fn extract_fields(text: &str, fields: usize) -> Result<Vec<String>, String> {
    let line = answer_text(text)?;
    let parts: Vec<String> = line.split('|').map(clean_field).collect();
    if parts.len() != fields {
        return Err(format!(
            "expected {fields} field{} separated by '|', found {}",
            if fields == 1 { "" } else { "s" },
            parts.len()
        ));
    }
    if parts.iter().any(String::is_empty) {
        return Err("an answer field is empty".into());
    }
    Ok(parts)
}

/// The text of the answer: the last explicit answer line (`ANSWER: …`, `Final answer = …`).
/// Nothing else is an answer — not a short reply, not a fenced block without such a line: a
/// reply that echoes the question would otherwise answer with the question's own numbers.
fn answer_text(text: &str) -> Result<String, String> {
    let re = answer_line_re().ok_or("the answer pattern did not compile")?;
    for line in text.lines().rev() {
        if let Some(c) = re.captures(line)
            && let Some(m) = c.get(1)
        {
            let value = m.as_str().trim();
            if !value.is_empty() {
                return Ok(value.to_string());
            }
        }
    }
    Err("no ANSWER line".into())
}

/// Trims white space, Markdown emphasis, quotes, brackets and final punctuation, until nothing
/// more comes off. Angle brackets come off only as a pair around the whole field (`<42>`, a
/// placeholder filled in): a lone `<` or `>` is an inequality and stays, for [`qualifier`].
pub fn clean_field(field: &str) -> String {
    let mut t = field;
    loop {
        let next = t.trim_matches(|c: char| {
            c.is_whitespace() || matches!(c, '*' | '`' | '"' | '\'' | '_' | '[' | ']')
        });
        let next = next.trim_end_matches(['.', ';', '!']);
        let next = next
            .strip_prefix('<')
            .and_then(|n| n.strip_suffix('>'))
            .unwrap_or(next);
        if next.len() == t.len() {
            return next.to_string();
        }
        t = next;
    }
}

/// A label in a comparable form: lower case, `Kind::"name"` reduced to the name, runs of
/// white space, `-` and `_` made one `_`.
pub fn norm_label(text: &str) -> String {
    let mut t = text.trim();
    if let Some((_, rest)) = t.rsplit_once("::") {
        t = rest;
    }
    let t = t.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
    let mut out = String::with_capacity(t.len());
    let mut pending = false;
    for c in t.chars() {
        if c.is_whitespace() || c == '-' || c == '_' {
            pending = !out.is_empty();
        } else {
            if pending {
                out.push('_');
                pending = false;
            }
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The one number in `field`, or why it does not hold one: none, more than one, or one with
/// a qualifier that changes its meaning ([`qualifier`]). Thousands separators, a unit, a
/// name (`t =`) and an approximation mark (`≈ 77.1 s`, `about 77`) are fine.
pub fn number(field: &str) -> Result<f64, String> {
    let re = number_re().ok_or("the number pattern did not compile")?;
    let shown = || crate::sanitize::excerpt(field, 40);
    let mut found = re.find_iter(field);
    let Some(first) = found.next() else {
        return Err(format!("'{}' holds no number", shown()));
    };
    if found.next().is_some() {
        return Err(format!("'{}' is not one number", shown()));
    }
    let rest = format!("{} {}", &field[..first.start()], &field[first.end()..]);
    if let Some(why) = qualifier(&rest) {
        return Err(format!("'{}' is not a plain number: {why}", shown()));
    }
    let text: String = first
        .as_str()
        .chars()
        .filter(|c| *c != ',')
        .map(|c| if c == '−' { '-' } else { c })
        .collect();
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("'{}' is not a finite number", shown()))
}

/// [`number`], without the reason.
pub fn parse_number(field: &str) -> Option<f64> {
    number(field).ok()
}

/// The one UTC time in `field`, or why it does not hold one — by the same rule as [`number`]:
/// an approximation mark is fine (`≈ 2031-05-04T10:20:30Z`), a second value or a qualifier
/// ([`qualifier`]: `not before …`, `at least …`, `… or later`) is not. Spellings: RFC 3339,
/// or `YYYY-MM-DD[T ]HH:MM[:SS[.fff]]` with an optional `Z`/`UTC`.
pub fn timestamp(field: &str) -> Result<DateTime<Utc>, String> {
    let re = timestamp_re().ok_or("the time pattern did not compile")?;
    let shown = || crate::sanitize::excerpt(field, 40);
    let mut found = re.find_iter(field);
    let Some(first) = found.next() else {
        return Err(format!("'{}' is not a UTC time", shown()));
    };
    let rest = format!("{} {}", &field[..first.start()], &field[first.end()..]);
    if found.next().is_some() || rest.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!("'{}' is not one UTC time", shown()));
    }
    if let Some(why) = qualifier(&rest) {
        return Err(format!("'{}' is not a plain time: {why}", shown()));
    }
    parse_time_text(first.as_str()).ok_or_else(|| format!("'{}' is not a UTC time", shown()))
}

/// [`timestamp`], without the reason.
pub fn parse_timestamp(field: &str) -> Option<DateTime<Utc>> {
    timestamp(field).ok()
}

/// A UTC time written alone: RFC 3339, or `YYYY-MM-DD[T ]HH:MM[:SS[.fff]]` with an optional
/// `Z`/`UTC`.
fn parse_time_text(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    let upper = t.to_uppercase();
    let mut t = upper.as_str();
    for suffix in ["UTC", "Z"] {
        if let Some(s) = t.strip_suffix(suffix) {
            t = s.trim_end();
            break;
        }
    }
    let t = t.replacen(' ', "T", 1);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&t, f).ok())
        .map(|n| n.and_utc())
}

/// Words that deny a value (`not 77`).
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "neither", "nor", "none", "isn't", "isnt", "aren't", "wasn't", "except",
];
/// Words that make a value a bound or a range (`at least 77`, `more than 77`, `between`).
/// `min` is not one of them: it is minutes as often as a minimum.
const INEQUALITIES: &[&str] = &[
    "least",
    "most",
    "more",
    "less",
    "fewer",
    "greater",
    "larger",
    "smaller",
    "bigger",
    "higher",
    "lower",
    "over",
    "under",
    "above",
    "below",
    "exceed",
    "exceeds",
    "exceeding",
    "beyond",
    "between",
    "range",
    "ranging",
    "max",
    "minimum",
    "maximum",
    "before",
    "after",
    "earlier",
    "later",
    "until",
    "till",
];
/// Words that offer other values beside this one (`77 or 78`, `maybe 77`).
const ALTERNATIVES: &[&str] = &[
    "or",
    "either",
    "alternatively",
    "maybe",
    "perhaps",
    "possibly",
];
/// Words that decline the question (`REFUSED`, `cannot`).
const REFUSALS: &[&str] = &[
    "refused",
    "refuse",
    "refuses",
    "refusing",
    "refusal",
    "decline",
    "declined",
    "declines",
    "declining",
    "cannot",
    "can't",
    "cant",
    "won't",
    "unable",
    "unknown",
];

/// Why the text around a number or a time (`rest`: the field without the value) changes what
/// the value means, or `None` when it does not. One rule for number and time fields: a
/// negation, an inequality or a range, alternatives, a refusal or a question mark make the
/// field invalid; a unit (`m/s`), a name (`t =`) and an approximation mark (`≈`, `~`,
/// `about`) do not.
pub fn qualifier(rest: &str) -> Option<String> {
    let chars: Vec<char> = rest.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let spaced = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_none_or(|c| c.is_whitespace())
        };
        let why = match c {
            '≠' => "a negation",
            '!' if chars.get(i + 1) == Some(&'=') => "a negation",
            '<' | '>' | '≤' | '≥' | '≦' | '≧' | '⩽' | '⩾' | '≮' | '≯' | '≲' | '≳' | '≪' | '≫'
            | '±' | '∓' | '+' => "an inequality or a range",
            '?' => "a question mark",
            // Between two words a slash is a unit (`m/s`); beside a space or the value it
            // separates alternatives (`4 / REFUSED`, `4/REFUSED`).
            '/' if spaced(i.checked_sub(1)) || spaced(Some(i + 1)) => "alternatives",
            _ => continue,
        };
        return Some(format!("it holds {why} ('{c}')"));
    }
    let lower = rest.to_lowercase().replace('’', "'");
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        let why = if NEGATIONS.contains(w) {
            "a negation"
        } else if INEQUALITIES.contains(w) || (*w == "up" && words.get(i + 1) == Some(&"to")) {
            "an inequality or a range"
        } else if ALTERNATIVES.contains(w) {
            "alternatives"
        } else if REFUSALS.contains(w) {
            "a refusal"
        } else {
            continue;
        };
        return Some(format!("it holds {why} ('{w}')"));
    }
    None
}

/// Labels of a set answer (`A, B and C`), normalized; `NONE` or `-` is the empty set.
/// `None` when a part is empty (`A,,B`).
pub fn parse_set(field: &str) -> Option<Vec<String>> {
    let norm = norm_label(field);
    if matches!(norm.as_str(), "none" | "" | "empty") {
        return Some(Vec::new());
    }
    let mut items = Vec::new();
    for part in field.split([',', ';']) {
        for piece in part.split(" and ") {
            let label = norm_label(piece);
            if label.is_empty() {
                return None;
            }
            if !items.contains(&label) {
                items.push(label);
            }
        }
    }
    items.sort();
    Some(items)
}

/// True when `got` is within `tolerance` (absolute) of `want`.
pub fn within(got: f64, want: f64, tolerance: f64) -> bool {
    (got - want).abs() <= tolerance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_answer_line_wins_whatever_its_dress() {
        let text =
            "Let me think.\nAnswer: ALLOW | Earth\nOn reflection:\n**ANSWER:** deny | `Mars`.";
        assert_eq!(
            extract_fields(text, 2),
            Ok(vec!["deny".into(), "Mars".into()])
        );
        assert_eq!(
            extract_fields("final answer = 42 s", 1),
            Ok(vec!["42 s".into()])
        );
        assert_eq!(
            extract_fields("  > ANSWER:   LOCAL  ", 1),
            Ok(vec!["LOCAL".into()])
        );
        // Inside a fenced block, the answer line is still the answer.
        let text = "Here it is:\n```\nANSWER: DENY | Mars\n```\n";
        assert_eq!(
            extract_fields(text, 2),
            Ok(vec!["DENY".into(), "Mars".into()])
        );
        // A filled-in placeholder loses its brackets.
        assert_eq!(extract_fields("ANSWER: <42 s>", 1), Ok(vec!["42 s".into()]));
    }

    #[test]
    fn only_an_explicit_answer_line_is_an_answer() {
        // A short reply, or a fenced block, without an answer line is no answer: the mock's
        // echo of a question (`wmrt-medium-s1-c141-v2`) would otherwise answer with the
        // question's own number.
        assert!(extract_fields("REMOTE", 1).is_err());
        assert!(extract_fields("Here it is:\n```\nDENY | Mars\n```\n", 2).is_err());
        assert!(
            extract_fields(
                "Acknowledged: \"A simple pendulum 1.2 m long swings gently in a lab on…\".",
                1
            )
            .is_err()
        );
    }

    #[test]
    fn prose_without_an_answer_line_is_no_answer() {
        assert!(extract_fields("It could be ALLOW\nor maybe DENY.", 1).is_err());
        assert!(extract_fields("", 1).is_err());
        assert!(extract_fields("ANSWER: ALLOW", 2).is_err());
        assert!(extract_fields("ANSWER: ALLOW | ", 2).is_err());
        assert!(extract_fields("```\nA\nB\n```\nx\ny", 1).is_err());
    }

    #[test]
    fn labels_normalize() {
        assert_eq!(
            norm_label("Jurisdiction::\"Mars-Habitat-1\""),
            "mars_habitat_1"
        );
        assert_eq!(
            norm_label(" Shed  Nonessential-loads "),
            "shed_nonessential_loads"
        );
        assert_eq!(norm_label("LIFE_SUPPORT"), "life_support");
    }

    #[test]
    fn numbers_must_be_unambiguous() {
        assert_eq!(parse_number("1,234.5 s"), Some(1234.5));
        assert_eq!(parse_number("about −3.2e2 m"), Some(-320.0));
        assert_eq!(parse_number("t = 12.5 m/s"), Some(12.5));
        assert_eq!(parse_number("between 10 and 20"), None);
        assert_eq!(parse_number("fast"), None);
    }

    /// Hedges, negations, bounds and refusals, each in front of or behind a number and a time;
    /// none of them leaves a number a scorer may accept.
    const QUALIFIED: [&str; 22] = [
        "not {}",
        "no {}",
        "at least {}",
        "at most {}",
        "more than {}",
        "less than {}",
        "< {}",
        "> {}",
        "≤ {}",
        "≥ {}",
        "<{}",
        "between {} and the next",
        "up to {}",
        "{} or more",
        "{}+",
        "{} or later",
        "{} / REFUSED / REFUSED / DONE",
        "{}/REFUSED",
        "REFUSED, but the final answer = {}",
        "maybe {}",
        "{}?",
        "≠ {}",
    ];

    #[test]
    fn a_hedged_negated_or_refused_number_is_not_that_number() {
        for q in QUALIFIED {
            let field = q.replace("{}", "77.09");
            let e = number(&field);
            assert!(e.is_err(), "{field:?} → {e:?}");
            // The same through the answer line.
            let fields = extract_fields(&format!("ANSWER: {field}"), 1).unwrap();
            assert_eq!(parse_number(&fields[0]), None, "{field:?} → {fields:?}");
        }
        assert!(
            number("not 77.09")
                .unwrap_err()
                .contains("a negation ('not')")
        );
        assert!(
            number("4 / REFUSED")
                .unwrap_err()
                .contains("alternatives ('/')")
        );
        assert!(number("REFUSED 4").unwrap_err().contains("a refusal"));
    }

    #[test]
    fn number_and_time_fields_follow_the_same_rules() {
        let time = "2031-05-04T10:20:30Z";
        let want = parse_timestamp(time);
        assert!(want.is_some());
        for q in QUALIFIED {
            let (n, t) = (q.replace("{}", "77.09"), q.replace("{}", time));
            assert!(number(&n).is_err(), "{n:?}");
            assert!(timestamp(&t).is_err(), "{t:?}");
        }
        // An approximation mark is accepted in both.
        for mark in [
            "≈ {}",
            "≈{}",
            "~{}",
            "about {}",
            "approximately {}",
            "{} (approx.)",
        ] {
            let (n, t) = (mark.replace("{}", "77.09"), mark.replace("{}", time));
            assert_eq!(parse_number(&n), Some(77.09), "{n:?}");
            assert_eq!(parse_timestamp(&t), want, "{t:?}");
        }
        // Two values are one too many in both.
        assert!(number("77.09 78").is_err());
        assert!(timestamp(&format!("{time} {time}")).is_err());
        assert!(timestamp(&format!("{time} (sol 12)")).is_err());
    }

    #[test]
    fn timestamps_parse_in_common_spellings() {
        let want = parse_timestamp("2031-05-04T10:20:30Z");
        assert!(want.is_some());
        assert_eq!(parse_timestamp("2031-05-04 10:20:30 UTC"), want);
        assert_eq!(parse_timestamp("2031-05-04T10:20:30+00:00"), want);
        assert_eq!(parse_timestamp("2031-05-04T10:20:30"), want);
        assert_eq!(parse_timestamp("2031-05-04t10:20:30z"), want);
        assert_eq!(parse_timestamp("ack at 2031-05-04T10:20:30Z"), want);
        assert!(parse_timestamp("2031-05-04T12:20:30+02:00") == want);
        assert!(parse_timestamp("tomorrow").is_none());
        assert!(parse_timestamp("2031-05-04").is_none());
    }

    #[test]
    fn sets_are_order_free() {
        assert_eq!(
            parse_set("C2, c1 and C3"),
            Some(vec!["c1".into(), "c2".into(), "c3".into()])
        );
        assert_eq!(parse_set("NONE"), Some(vec![]));
        assert_eq!(parse_set("A,,B"), None);
    }
}
