//! Where policies come from: the policy files (or directory), schema and entities that
//! `governance:` names, each falling back to the file shipped in `configs/policies/` and compiled
//! in. Files are read through [`crate::fsread`] (regular files, bounded size) into
//! [`SourceText`]s, named so that every problem found later points at its file; the Cedar engine
//! ([`super::cedar`]) is built from the [`PolicySources`].

use std::path::Path;

use miette::Diagnostic;

use super::error::{PolicyError, Problem, line_col};
use crate::config::GovernanceConfig;

/// The default policy, `configs/policies/default.cedar`.
pub const DEFAULT_POLICY: &str = include_str!("../../../configs/policies/default.cedar");
/// The schema, `configs/policies/veyra.cedarschema`.
pub const DEFAULT_SCHEMA: &str = include_str!("../../../configs/policies/veyra.cedarschema");
/// The default entities, `configs/policies/entities.json`.
pub const DEFAULT_ENTITIES: &str = include_str!("../../../configs/policies/entities.json");

/// One text to load, with the name errors give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceText {
    /// File path, or `<built-in configs/policies/…>`.
    pub name: String,
    /// Its contents.
    pub text: String,
}

impl SourceText {
    fn builtin(file: &str, text: &str) -> Self {
        SourceText {
            name: format!("<built-in configs/policies/{file}>"),
            text: text.to_string(),
        }
    }

    /// Reads a policy file, schema or entities file: a regular file of at most
    /// [`MAX_SOURCE_BYTES`] ([`crate::fsread`]).
    pub(super) fn read(path: &Path, what: &'static str) -> Result<Self, PolicyError> {
        crate::fsread::read_regular_to_string(path, MAX_SOURCE_BYTES, what)
            .map(|text| SourceText {
                name: path.display().to_string(),
                text,
            })
            .map_err(|e| PolicyError::Unreadable {
                path: path.to_path_buf(),
                what,
                source: e.into_io(),
            })
    }

    /// A [`Problem`] from a Cedar diagnostic: located at its first label, with its help.
    pub(super) fn problem(&self, d: &dyn Diagnostic) -> Problem {
        let offset = d
            .labels()
            .and_then(|mut labels| labels.next())
            .map(|l| l.offset());
        let (line, column) = offset.map_or((0, 0), |o| line_col(&self.text, o));
        let mut message = d.to_string();
        // Some Cedar errors say only what failed and keep the why in their source chain.
        let mut cause = std::error::Error::source(d);
        while let Some(c) = cause {
            let c_text = c.to_string();
            if !message.contains(&c_text) {
                message.push_str(&format!(": {c_text}"));
            }
            cause = c.source();
        }
        if let Some(help) = d.help() {
            message.push_str(&format!(" (help: {help})"));
        }
        Problem {
            path: self.name.clone(),
            line,
            column,
            message,
        }
    }
}

/// Most bytes of one policy file, schema or entities file: hand-written policies are
/// kilobytes, and an entities file listing every principal stays within a few MiB.
pub const MAX_SOURCE_BYTES: u64 = 8 << 20;

/// The texts a [`CedarEngine`](super::CedarEngine) is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySources {
    /// Policy files, in load order.
    pub policies: Vec<SourceText>,
    /// The schema (Cedar schema syntax).
    pub schema: SourceText,
    /// Entities (Cedar entities JSON).
    pub entities: SourceText,
}

impl PolicySources {
    /// The SHA-256 (hex) of what decides: every policy text in load order, the schema and the
    /// entities, each length-prefixed (file names and paths are not part of it: the same
    /// texts are the same set wherever they live). A `POLICY_CHECK` entry records it.
    pub fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"veyra.policy-set/1");
        let texts = self.policies.iter().map(|s| ("policy", &s.text)).chain([
            ("schema", &self.schema.text),
            ("entities", &self.entities.text),
        ]);
        for (what, text) in texts {
            h.update(what.as_bytes());
            h.update((text.len() as u64).to_be_bytes());
            h.update(text.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The shipped default policy, schema and entities.
    pub fn builtin() -> Self {
        PolicySources {
            policies: vec![SourceText::builtin("default.cedar", DEFAULT_POLICY)],
            schema: SourceText::builtin("veyra.cedarschema", DEFAULT_SCHEMA),
            entities: SourceText::builtin("entities.json", DEFAULT_ENTITIES),
        }
    }

    /// What `governance:` names, each part falling back to the built-in one. A `policy_file`
    /// that is a directory contributes every `*.cedar` file in it, sorted by name.
    pub fn from_config(g: &GovernanceConfig) -> Result<Self, PolicyError> {
        let mut sources = PolicySources::builtin();
        if let Some(path) = &g.policy_file {
            sources.policies = if path.is_dir() {
                let listing =
                    std::fs::read_dir(path).map_err(|source| PolicyError::Unreadable {
                        path: path.clone(),
                        what: "policy directory",
                        source,
                    })?;
                let mut files = Vec::new();
                for entry in listing {
                    let entry = entry.map_err(|source| PolicyError::Unreadable {
                        path: path.clone(),
                        what: "policy directory",
                        source,
                    })?;
                    let p = entry.path();
                    if p.extension().is_some_and(|e| e == "cedar") {
                        files.push(p);
                    }
                }
                files.sort();
                if files.is_empty() {
                    return Err(PolicyError::Invalid(vec![Problem {
                        path: path.display().to_string(),
                        line: 0,
                        column: 0,
                        message: "the policy directory holds no *.cedar file; with no policy \
                                  everything is denied — add one, or unset governance.policy_file \
                                  for the default policy"
                            .into(),
                    }]));
                }
                files
                    .iter()
                    .map(|p| SourceText::read(p, "policy file"))
                    .collect::<Result<_, _>>()?
            } else {
                vec![SourceText::read(path, "policy file")?]
            };
        }
        if let Some(path) = &g.policy_schema {
            sources.schema = SourceText::read(path, "schema")?;
        }
        if let Some(path) = &g.policy_entities {
            sources.entities = SourceText::read(path, "entities file")?;
        }
        Ok(sources)
    }
}
