//! Standing approvals: a yes to a tool that reaches beyond one confirmation, until it is
//! revoked, the client that gave it leaves, or the runtime stops ("allow until the console
//! closes").
//!
//! An approval names one tool by its registered name (`mcp:files:write` is one server's one
//! tool) and optionally one argument whose string value must match a pattern the operator
//! typed. It is matched against the name the core resolved and the arguments as they will
//! run, never against text the model wrote about the call (a tool name it made up, a reason):
//! the model's call name is mapped to the registry by the names the core offered, and an
//! unknown name never reaches the gate. A value with a `..` path segment never matches a
//! pattern (`docs/*` must not admit `docs/../secrets`).
//!
//! Every grant and every revocation is a `SAFETY_CHECK` entry (action `approve` or `revoke`,
//! resource `tool:<name>`); a yes given with "allow for the session" in a confirmation is the
//! confirmation's own `SAFETY_CHECK` entry (scope `session`). `:approvals` lists them and
//! `:approvals revoke N` takes one back; the service revokes a client's approvals when it
//! leaves.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Caller, CoreInner, VeyraCore};
use crate::error::VeyraError;
use crate::governance::{AuditEventType, AuditRecord, summarize_input};

/// Most approvals standing at once (each is checked on every confirmation).
pub const MAX_APPROVALS: usize = 64;
/// Longest argument pattern, in characters.
const MAX_PATTERN_CHARS: usize = 256;

/// An approval's condition on one argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArgumentPattern {
    /// The argument: a top-level property of the tool's arguments.
    pub name: String,
    /// A pattern over its string value: `*` any characters but `/`, `**` any characters, `?`
    /// one character but `/`; everything else stands for itself. The whole value must match.
    pub pattern: String,
}

impl ArgumentPattern {
    /// Parses `NAME=PATTERN`, e.g. `path=notes/*.md`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some((name, pattern)) = text.split_once('=') else {
            return Err(format!(
                "'{}' is not ARGUMENT=PATTERN; write e.g. path=notes/*.md",
                crate::sanitize::quote(text)
            ));
        };
        let p = ArgumentPattern {
            name: name.trim().to_string(),
            pattern: pattern.to_string(),
        };
        p.compile()?;
        Ok(p)
    }

    /// The pattern as an anchored regular expression on the linear-time engine.
    fn compile(&self) -> Result<regex::Regex, String> {
        if self.name.is_empty() {
            return Err("the argument's name is empty; write e.g. path=notes/*.md".into());
        }
        if self.pattern.is_empty() || self.pattern.chars().count() > MAX_PATTERN_CHARS {
            return Err(format!(
                "the pattern must have 1 to {MAX_PATTERN_CHARS} characters"
            ));
        }
        let mut re = String::from("^");
        let mut chars = self.pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    re.push_str(".*");
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                other => re.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
            }
        }
        re.push('$');
        regex::RegexBuilder::new(&re)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("the pattern does not compile: {e}"))
    }
}

/// A standing yes to one tool (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Approval {
    /// Its number, for `:approvals revoke N`.
    pub id: u64,
    /// The tool, by its registered name.
    pub tool: String,
    /// Only calls whose argument matches, when set.
    pub argument: Option<ArgumentPattern>,
    /// Who gave it, in words (`operator`, `confirmation #3 (operator)`).
    pub by: String,
    /// The client of a serving runtime that gave it: it ends when that client leaves.
    pub client: Option<Caller>,
    /// When.
    pub at: DateTime<Utc>,
}

/// An approval with its pattern compiled.
pub(super) struct Granted {
    pub(super) approval: Approval,
    matcher: Option<regex::Regex>,
}

impl Granted {
    /// Whether a call of `tool` with `args` is covered.
    pub(super) fn admits(&self, tool: &str, args: Option<&serde_json::Value>) -> bool {
        if self.approval.tool != tool {
            return false;
        }
        let (Some(p), Some(re)) = (&self.approval.argument, &self.matcher) else {
            return self.approval.argument.is_none();
        };
        args.and_then(|a| a.get(&p.name))
            .and_then(serde_json::Value::as_str)
            .is_some_and(|v| !v.split(['/', '\\']).any(|seg| seg == "..") && re.is_match(v))
    }
}

/// Clients remembered as gone, so that a yes they gave just before leaving, granted after,
/// does not stand (the oldest are forgotten past this many).
const DEPARTED: usize = 256;

/// The standing approvals.
#[derive(Default)]
pub(super) struct Approvals {
    next: u64,
    granted: Vec<Granted>,
    /// Clients that left, most recent last.
    departed: std::collections::VecDeque<Caller>,
}

impl Approvals {
    /// The approval covering a call of `tool` with `args`, if any.
    pub(super) fn covering(&self, tool: &str, args: Option<&serde_json::Value>) -> Option<u64> {
        self.granted
            .iter()
            .find(|g| g.admits(tool, args))
            .map(|g| g.approval.id)
    }

    /// Adds one; fails when [`MAX_APPROVALS`] stand, its pattern does not compile, or its
    /// client has left.
    pub(super) fn grant(
        &mut self,
        tool: &str,
        argument: Option<ArgumentPattern>,
        by: String,
        client: Option<Caller>,
    ) -> Result<Approval, String> {
        let granted = self.prepare(tool, argument, by, client)?;
        let approval = granted.approval.clone();
        self.insert(granted)?;
        Ok(approval)
    }

    /// An approval numbered and compiled, not standing yet ([`Approvals::insert`]).
    pub(super) fn prepare(
        &mut self,
        tool: &str,
        argument: Option<ArgumentPattern>,
        by: String,
        client: Option<Caller>,
    ) -> Result<Granted, String> {
        if self.granted.len() >= MAX_APPROVALS {
            return Err(format!(
                "{MAX_APPROVALS} approvals stand already; revoke one first (:approvals)"
            ));
        }
        let matcher = argument
            .as_ref()
            .map(ArgumentPattern::compile)
            .transpose()?;
        self.next += 1;
        Ok(Granted {
            approval: Approval {
                id: self.next,
                tool: tool.to_string(),
                argument,
                by,
                client,
                at: Utc::now(),
            },
            matcher,
        })
    }

    /// Makes a prepared approval stand, unless its client has left meanwhile.
    pub(super) fn insert(&mut self, granted: Granted) -> Result<(), String> {
        if let Some(client) = &granted.approval.client
            && self.departed.contains(client)
        {
            return Err(format!("the client that gave it ({client}) has left"));
        }
        if self.granted.len() >= MAX_APPROVALS {
            return Err(format!(
                "{MAX_APPROVALS} approvals stand already; revoke one first (:approvals)"
            ));
        }
        self.granted.push(granted);
        Ok(())
    }

    /// Notes that `client` left: what it gave is taken back (returned), and nothing it gives
    /// from now on stands.
    fn depart(&mut self, client: &Caller) -> Vec<Approval> {
        if !self.departed.contains(client) {
            if self.departed.len() == DEPARTED {
                self.departed.pop_front();
            }
            self.departed.push_back(client.clone());
        }
        self.take(|a| a.client.as_ref() != Some(client))
    }

    fn take(&mut self, keep: impl Fn(&Approval) -> bool) -> Vec<Approval> {
        let (gone, kept): (Vec<Granted>, Vec<Granted>) = std::mem::take(&mut self.granted)
            .into_iter()
            .partition(|g| !keep(&g.approval));
        self.granted = kept;
        gone.into_iter().map(|g| g.approval).collect()
    }

    pub(super) fn list(&self) -> Vec<Approval> {
        self.granted.iter().map(|g| g.approval.clone()).collect()
    }
}

impl VeyraCore {
    /// The approvals standing now, oldest first.
    pub fn approvals(&self) -> Vec<Approval> {
        self.inner.confirmations().approvals.list()
    }

    /// Allows calls of `tool` (optionally only those whose `argument` matches) without asking,
    /// until revoked or the runtime stops; recorded as a `SAFETY_CHECK` entry. The tool must
    /// be registered and the argument one its schema names. Policy and the boundary still
    /// decide every call: an approval only answers a confirmation.
    pub async fn approve(
        &self,
        tool: &str,
        argument: Option<ArgumentPattern>,
        by: &str,
    ) -> Result<Approval, VeyraError> {
        let info = self
            .inner
            .tools
            .describe(tool)
            .map_err(|e| VeyraError::Usage(e.to_string()))?;
        if let Some(p) = &argument {
            let declared = info
                .capability
                .schema
                .get("properties")
                .and_then(serde_json::Value::as_object);
            if declared.is_some_and(|props| !props.contains_key(&p.name)) {
                return Err(VeyraError::Usage(format!(
                    "tool '{tool}' takes no argument '{}'; `veyra tools describe {tool}` shows \
                     what it takes",
                    crate::sanitize::quote(&p.name)
                )));
            }
        }
        let client = super::caller::current();
        let granted = self
            .inner
            .confirmations()
            .approvals
            .prepare(tool, argument, by.to_string(), client)
            .map_err(VeyraError::Usage)?;
        // Recorded before it stands: an approval never acts unrecorded, even if this call is
        // abandoned between the two.
        let approval = granted.approval.clone();
        self.inner
            .record_approval(&approval, "approve", "granted", by)
            .await
            .map_err(|e| VeyraError::Runtime(format!("the approval was not given: {e}")))?;
        self.inner
            .confirmations()
            .approvals
            .insert(granted)
            .map_err(VeyraError::Usage)?;
        Ok(approval)
    }

    /// Takes back approval `id`; recorded as a `SAFETY_CHECK` entry.
    pub async fn revoke_approval(&self, id: u64, by: &str) -> Result<Approval, VeyraError> {
        let gone = self.inner.confirmations().approvals.take(|a| a.id != id);
        let Some(approval) = gone.into_iter().next() else {
            return Err(VeyraError::Usage(format!(
                "no approval #{id} stands; :approvals lists them"
            )));
        };
        // Taken back either way: a revocation never waits on the disk.
        let _ = self
            .inner
            .record_approval(&approval, "revoke", "revoked", by)
            .await;
        Ok(approval)
    }

    /// Takes back every approval `client` gave: it left.
    pub async fn revoke_client_approvals(&self, client: &Caller) {
        let gone = self.inner.confirmations().approvals.depart(client);
        for approval in gone {
            let _ = self
                .inner
                .record_approval(
                    &approval,
                    "revoke",
                    "revoked",
                    "the client that gave it left",
                )
                .await;
        }
    }
}

impl CoreInner {
    /// The `SAFETY_CHECK` entry of a grant or revocation. A failure is logged and returned: a
    /// grant that was not recorded is not given; a revocation stands either way (it must never
    /// be undone by a full disk).
    async fn record_approval(
        &self,
        a: &Approval,
        action: &str,
        outcome: &str,
        by: &str,
    ) -> Result<(), crate::governance::AuditError> {
        let record = AuditRecord {
            event_type: AuditEventType::SafetyCheck,
            actor: "operator".into(),
            action: action.into(),
            resource: format!("tool:{}", a.tool),
            outcome: outcome.into(),
            input_summary: summarize_input(&a.tool),
            metadata: serde_json::json!({
                "approval": a.id,
                "scope": "session",
                "argument": a.argument.as_ref().map(|p| &p.name),
                "pattern": a.argument.as_ref().map(|p| &p.pattern),
                "by": by,
            }),
        };
        if let Err(e) = self.record(record, None).await {
            tracing::error!(error = %e, approval = a.id, "the audit trail could not record an approval change");
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(tool: &str, arg: Option<&str>) -> Approvals {
        let mut a = Approvals::default();
        a.grant(
            tool,
            arg.map(|t| ArgumentPattern::parse(t).unwrap()),
            "operator".into(),
            None,
        )
        .unwrap();
        a
    }

    #[test]
    fn an_approval_covers_one_tool_and_its_pattern_only() {
        let a = granted("mcp:files:write", Some("path=notes/*.md"));
        let args = |p: &str| serde_json::json!({ "path": p });
        assert!(
            a.covering("mcp:files:write", Some(&args("notes/a.md")))
                .is_some()
        );
        assert!(
            a.covering("mcp:files:write", Some(&args("notes/a.txt")))
                .is_none()
        );
        assert!(
            a.covering("mcp:files:write", Some(&args("notes/x/a.md")))
                .is_none()
        );
        assert!(
            a.covering("mcp:files:write", Some(&args("notes/../a.md")))
                .is_none()
        );
        assert!(
            a.covering("mcp:files:write", Some(&serde_json::json!({})))
                .is_none()
        );
        assert!(
            a.covering("mcp:files:write", Some(&serde_json::json!({ "path": 3 })))
                .is_none()
        );
        assert!(
            a.covering("mcp:files:read", Some(&args("notes/a.md")))
                .is_none()
        );
        assert!(
            a.covering("mcp:other:write", Some(&args("notes/a.md")))
                .is_none()
        );
        let deep = granted("file_write", Some("path=notes/**"));
        assert!(
            deep.covering("file_write", Some(&args("notes/x/y.md")))
                .is_some()
        );
        assert!(
            deep.covering("file_write", Some(&args("notes/x/../../y")))
                .is_none()
        );
        let whole = granted("file_write", None);
        assert!(
            whole
                .covering("file_write", Some(&args("anything")))
                .is_some()
        );
        // Regex syntax in a pattern is literal.
        let lit = granted("file_write", Some("path=a.(b)+"));
        assert!(lit.covering("file_write", Some(&args("a.(b)+"))).is_some());
        assert!(lit.covering("file_write", Some(&args("axbb"))).is_none());
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(ArgumentPattern::parse("path").is_err());
        assert!(ArgumentPattern::parse("=x").is_err());
        assert!(ArgumentPattern::parse("path=").is_err());
        assert!(ArgumentPattern::parse(&format!("path={}", "a".repeat(300))).is_err());
    }

    /// A core where `file_write` needs a confirmation nobody can give (no terminal).
    fn asking_core() -> (VeyraCore, tempfile::TempDir) {
        let (core, ws) = crate::core::testing::core_with(|c| {
            c.governance.require_confirmation = vec!["tool:file_write".into()];
        });
        core.set_confirmation_policy(crate::core::ConfirmationPolicy::DenyAll);
        (core, ws)
    }

    async fn write(core: &VeyraCore, path: &str) -> Result<(), VeyraError> {
        core.invoke_tool(
            "file_write",
            serde_json::json!({ "path": path, "content": "x" }),
            "operator",
        )
        .await
        .map(drop)
    }

    fn safety_checks(core: &VeyraCore) -> Vec<crate::governance::AuditEntry> {
        core.audit()
            .unwrap()
            .query(&crate::governance::AuditFilter {
                event_type: Some(AuditEventType::SafetyCheck),
                ..Default::default()
            })
            .unwrap()
    }

    #[tokio::test]
    async fn an_approval_answers_for_its_calls_until_it_is_revoked_and_both_are_audited() {
        let (core, _ws) = asking_core();
        assert!(matches!(
            write(&core, "notes-a.md").await,
            Err(VeyraError::Refused(_))
        ));
        let a = core
            .approve(
                "file_write",
                Some(ArgumentPattern::parse("path=notes-*.md").unwrap()),
                "operator",
            )
            .await
            .unwrap();
        write(&core, "notes-a.md").await.unwrap();
        // Outside its pattern the call still asks (and nobody can answer).
        assert!(matches!(
            write(&core, "other.md").await,
            Err(VeyraError::Refused(_))
        ));
        assert_eq!(core.approvals().len(), 1);
        core.revoke_approval(a.id, "operator").await.unwrap();
        assert!(matches!(
            write(&core, "notes-b.md").await,
            Err(VeyraError::Refused(_))
        ));
        assert!(core.approvals().is_empty());
        let checks = safety_checks(&core);
        let actions: Vec<(&str, &str)> = checks
            .iter()
            .map(|e| (e.action.as_str(), e.outcome.as_str()))
            .collect();
        assert!(actions.contains(&("approve", "granted")), "{actions:?}");
        assert!(actions.contains(&("revoke", "revoked")), "{actions:?}");
        let used = checks
            .iter()
            .find(|e| e.outcome == "allowed")
            .expect("the approved call's confirmation is recorded");
        assert!(
            used.metadata["reason"]
                .as_str()
                .is_some_and(|r| r.contains(&format!("standing approval #{}", a.id))),
            "{used:?}"
        );
        // Unknown tools, unknown arguments and unknown approvals are refused.
        assert!(core.approve("file_wrte", None, "operator").await.is_err());
        assert!(
            core.approve(
                "file_write",
                Some(ArgumentPattern::parse("colour=red").unwrap()),
                "operator"
            )
            .await
            .is_err()
        );
        assert!(core.revoke_approval(99, "operator").await.is_err());
    }

    #[tokio::test]
    async fn a_clients_approvals_end_when_it_leaves_and_no_one_elses_do() {
        let (core, _ws) = asking_core();
        let console = Caller {
            pid: Some(41),
            uid: 0,
            transport: "unix".into(),
        };
        let other = Caller {
            pid: Some(42),
            ..console.clone()
        };
        super::super::as_caller(Some(console.clone()), core.approve("file_write", None, "a"))
            .await
            .unwrap();
        super::super::as_caller(Some(other.clone()), core.approve("file_list", None, "b"))
            .await
            .unwrap();
        core.revoke_client_approvals(&console).await;
        let left: Vec<String> = core.approvals().into_iter().map(|a| a.tool).collect();
        assert_eq!(left, vec!["file_list".to_string()]);
        // A yes it gave just before leaving, granted after, does not stand.
        let late =
            super::super::as_caller(Some(console.clone()), core.approve("file_write", None, "a"))
                .await;
        assert!(late.is_err(), "{late:?}");
        assert_eq!(core.approvals().len(), 1);
        assert!(matches!(
            write(&core, "x.md").await,
            Err(VeyraError::Refused(_))
        ));
    }
}
