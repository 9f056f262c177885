//! What goes wrong in the policy layer, said where it went wrong: [`PolicyError`], and the
//! [`Problem`]s of a policy, schema or entities file, each located at `file:line:column` from
//! Cedar's diagnostic ([`SourceText::problem`](super::sources::SourceText::problem)) so start-up can stop with a message the operator can act on.

use std::fmt;
use std::path::PathBuf;

/// A problem in a policy, schema or entities file, located where Cedar says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or `<built-in …>`).
    pub path: String,
    /// 1-based line; 0 when unknown.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    /// Cedar's message, with its help when it has one.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path, self.line, self.column, self.message
            )
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Errors of the policy layer.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Policies, schema or entities do not parse or validate (start-up stops).
    #[error("{}", join_problems(.0))]
    Invalid(Vec<Problem>),
    /// A file could not be read.
    #[error("{}: cannot read the {what}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// `policy file`, `schema` or `entities file`.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The request itself is malformed (unknown action, wrong context, bad resource).
    #[error("policy request: {0}")]
    Request(String),
}

fn join_problems(problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&p.to_string());
    }
    out
}

/// 1-based line and column of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}
