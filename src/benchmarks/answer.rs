//! Lenient but strict answer parsing, shared by every scorer.
//!
//! Lenient about form: case, white space, Markdown emphasis, surrounding prose, a fenced code
//! block, `ANSWER:`/`Final answer =` lines, thousands separators, `Jurisdiction::"Mars"`
//! spellings. Strict about content: the answer is the **last** `ANSWER:` line (else the only
//! line of the last fenced block, else a reply that is one short line), it must have exactly
//! the fields asked for, and each field must hold one value — a number field with two numbers
//! in it, or a choice that is not one of the options, is wrong, never guessed at.

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDateTime, Utc};
use regex::Regex;

/// Longest reply line accepted as a bare answer when there is no `ANSWER:` line.
const BARE_ANSWER_MAX: usize = 200;

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

/// The text of the answer: the last `ANSWER:` line, else the only line of the last fenced
/// block, else the whole reply when it is one short line.
fn answer_text(text: &str) -> Result<String, String> {
    let re = answer_line_re().ok_or("the answer pattern did not compile")?;
    let lines: Vec<&str> = text.lines().collect();
    for line in lines.iter().rev() {
        if let Some(c) = re.captures(line)
            && let Some(m) = c.get(1)
        {
            let value = m.as_str().trim();
            if !value.is_empty() {
                return Ok(value.to_string());
            }
        }
    }
    if let Some(block) = last_fenced_block(&lines) {
        let inner: Vec<&str> = block
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        if inner.len() == 1 {
            return Ok(inner[0].to_string());
        }
    }
    let trimmed = text.trim();
    if !trimmed.is_empty() && !trimmed.contains('\n') && trimmed.chars().count() <= BARE_ANSWER_MAX
    {
        return Ok(trimmed.to_string());
    }
    Err("no ANSWER line".into())
}

/// The lines inside the last complete ```` ``` ```` block.
fn last_fenced_block<'a>(lines: &[&'a str]) -> Option<Vec<&'a str>> {
    let fences: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("```"))
        .map(|(i, _)| i)
        .collect();
    let pairs = fences.len() / 2;
    if pairs == 0 {
        return None;
    }
    let (open, close) = (fences[2 * pairs - 2], fences[2 * pairs - 1]);
    Some(lines[open + 1..close].to_vec())
}

/// Trims white space, Markdown emphasis, quotes, angle brackets and final punctuation, until
/// nothing more comes off.
fn clean_field(field: &str) -> String {
    let mut t = field;
    loop {
        let next = t.trim_matches(|c: char| {
            c.is_whitespace() || matches!(c, '*' | '`' | '"' | '\'' | '<' | '>' | '_' | '[' | ']')
        });
        let next = next.trim_end_matches(['.', ';', '!']);
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

/// The one number in `field` (thousands separators allowed); `None` when there is none or
/// more than one.
pub fn parse_number(field: &str) -> Option<f64> {
    let re = number_re()?;
    let mut found = re.find_iter(field);
    let first = found.next()?;
    if found.next().is_some() {
        return None;
    }
    let text: String = first
        .as_str()
        .chars()
        .filter(|c| *c != ',')
        .map(|c| if c == '−' { '-' } else { c })
        .collect();
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A UTC time: RFC 3339, or `YYYY-MM-DD[T ]HH:MM[:SS[.fff]]` with an optional `Z`/`UTC`.
pub fn parse_timestamp(field: &str) -> Option<DateTime<Utc>> {
    let t = field.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    let mut t = t.to_string();
    for suffix in [" UTC", "UTC", "Z", "z"] {
        if let Some(s) = t.strip_suffix(suffix) {
            t = s.trim_end().to_string();
            break;
        }
    }
    let t = t.replacen(' ', "T", 1);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&t, f).ok())
        .map(|n| n.and_utc())
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
    }

    #[test]
    fn fenced_blocks_and_bare_lines_are_answers() {
        let text = "Here it is:\n```\nDENY | Mars\n```\n";
        assert_eq!(
            extract_fields(text, 2),
            Ok(vec!["DENY".into(), "Mars".into()])
        );
        assert_eq!(extract_fields("REMOTE", 1), Ok(vec!["REMOTE".into()]));
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
        assert_eq!(parse_number("between 10 and 20"), None);
        assert_eq!(parse_number("fast"), None);
    }

    #[test]
    fn timestamps_parse_in_common_spellings() {
        let want = parse_timestamp("2031-05-04T10:20:30Z");
        assert!(want.is_some());
        assert_eq!(parse_timestamp("2031-05-04 10:20:30 UTC"), want);
        assert_eq!(parse_timestamp("2031-05-04T10:20:30+00:00"), want);
        assert_eq!(parse_timestamp("2031-05-04T10:20:30"), want);
        assert!(parse_timestamp("tomorrow").is_none());
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
