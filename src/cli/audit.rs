//! `veyra audit …`: verify, list, export, prove, rotate-key, adopt. Parsing and printing only;
//! the rules live in [`crate::governance`] (one verification for stores, exports and
//! witnesses).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{parse_rfc3339, print_all};
use crate::config::{self, LoadedConfig};
use crate::error::{ExitCode, VeyraError};
use crate::governance::{
    AuditError, AuditExport, AuditFilter, AuditTrail, Expectation, SqliteStore, StoreOptions,
    TrustAnchors, VerifyReport, checkpoint,
};

/// Most bytes of an audit export `veyra audit verify --file` reads: about a million entries.
pub const MAX_EXPORT_BYTES: u64 = 1 << 30;

/// `veyra audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the audit log (the store, or an export offline) against its checkpoints, its
    /// signer and its witnesses; exit 3 naming what is wrong.
    Verify(VerifyArgs),
    /// List entries, oldest first.
    List {
        /// The store to read (default: governance.store_path).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Which entries.
        #[command(flatten)]
        filter: FilterArgs,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Prove that entry SEQ is in the log (RFC 6962 inclusion proof against the current tree head).
    Prove {
        /// Sequence number of the entry.
        seq: u64,
        /// The store to read (default: governance.store_path).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
    /// Export entries as a JSON document that `veyra audit verify --file` checks offline
    /// (a filtered export carries an inclusion proof per entry).
    Export {
        /// The store to read (default: governance.store_path).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Which entries.
        #[command(flatten)]
        filter: FilterArgs,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Hand the log to a new signing key, endorsed by the old one and recorded in the log.
    RotateKey {
        /// The store (default: governance.store_path).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
    /// Accept a store that has no witness here (moved deliberately): verify all of it against
    /// its key file, then start witnessing it.
    Adopt {
        /// The store (default: governance.store_path).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
}

/// `veyra audit verify` options.
#[derive(Debug, Args, Clone, Default)]
pub struct VerifyArgs {
    /// The store to verify (default: governance.store_path).
    #[arg(long, value_name = "PATH", conflicts_with = "file")]
    pub db: Option<PathBuf>,
    /// An export document written by `veyra audit export`.
    #[arg(long, value_name = "EXPORT")]
    pub file: Option<PathBuf>,
    /// A witness to hold the log against (repeatable): a file, or a fleet's witness bucket
    /// (`nats://host:port/BUCKET`, where each worker keeps its store's newest checkpoint); the
    /// store's own witnesses are always used.
    #[arg(long, value_name = "FILE|URL")]
    pub witness: Vec<PathBuf>,
    /// The signer's public key as published by the log's owner (64 hex digits).
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    pub key: Option<[u8; 32]>,
    /// A published checkpoint's size: the log must have `--expect-head` at this many entries.
    #[arg(long, value_name = "N", requires = "expect_head")]
    pub expect_size: Option<u64>,
    /// A published checkpoint's tree head (64 hex digits), with `--expect-size`.
    #[arg(long, value_name = "HEX", requires = "expect_size", value_parser = parse_hash)]
    pub expect_head: Option<[u8; 32]>,
}

fn parse_key(text: &str) -> Result<[u8; 32], String> {
    checkpoint::parse_public_key(text).ok_or_else(|| {
        "not an Ed25519 public key; give 64 hex digits as `veyra audit verify` prints them".into()
    })
}

fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            "not a tree head; give 64 hex digits as `veyra audit verify` prints them".into()
        })
}

impl VerifyArgs {
    /// The witness arguments that name a fleet's bucket rather than a file.
    fn fleet_witnesses(&self) -> Vec<String> {
        self.witness
            .iter()
            .filter_map(|w| w.to_str())
            .filter(|w| w.starts_with("nats://") || w.starts_with("tls://"))
            .map(str::to_string)
            .collect()
    }

    /// The anchors named on the command line (`fleet`: the witnesses fetched from a fleet's
    /// bucket, for the `nats://` ones).
    fn anchors(
        &self,
        fleet: Vec<crate::governance::witness::FoundWitness>,
    ) -> Result<TrustAnchors, VeyraError> {
        let urls = self.fleet_witnesses();
        let files: Vec<PathBuf> = self
            .witness
            .iter()
            .filter(|w| !w.to_str().is_some_and(|w| urls.iter().any(|u| u == w)))
            .cloned()
            .collect();
        let mut witnesses = crate::governance::verify::witness_files(&files)
            .map_err(|e| VeyraError::Usage(e.to_string()))?;
        witnesses.extend(fleet);
        let expect = self
            .expect_size
            .zip(self.expect_head)
            .map(|(tree_size, tree_head)| Expectation {
                tree_size,
                tree_head,
            });
        Ok(TrustAnchors {
            explicit: self.key.is_some() || !witnesses.is_empty() || expect.is_some(),
            key: self.key,
            witnesses,
            expect,
            key_file: None,
            missing_witness_hint: String::new(),
        })
    }
}

/// Entry filters of `veyra audit list` and `export`.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Only this event type (EXECUTION, TOOL_INVOCATION, POLICY_CHECK, SAFETY_CHECK,
    /// SAFETY_VIOLATION, CONFIG_CHANGE, LATENCY_CHANGE, BENCHMARK, SYSTEM).
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_event_type)]
    pub event_type: Option<crate::governance::AuditEventType>,
    /// Only this actor.
    #[arg(long)]
    pub actor: Option<String>,
    /// Not before this time (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Not after this time (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

impl FilterArgs {
    fn to_filter(&self) -> AuditFilter {
        AuditFilter {
            event_type: self.event_type,
            actor: self.actor.clone(),
            since: self.since,
            until: self.until,
        }
    }
}

fn parse_event_type(text: &str) -> Result<crate::governance::AuditEventType, String> {
    use crate::governance::AuditEventType;
    let upper = text.to_ascii_uppercase().replace('-', "_");
    upper.parse::<AuditEventType>().map_err(|_| {
        let names: Vec<&str> = AuditEventType::ALL.iter().map(|t| t.name()).collect();
        format!(
            "unknown event type{}; valid: {}",
            config::suggest::did_you_mean(&upper, names.iter().copied()),
            names.join(", ")
        )
    })
}

/// The trail of the store at `path`, opened read-only.
pub(crate) fn open_trail(path: &Path, options: &StoreOptions) -> Result<AuditTrail, VeyraError> {
    let store = SqliteStore::open_read_only(path, options)?;
    Ok(AuditTrail::new(std::sync::Arc::new(store))?)
}

/// The trail of `--db` or the configured store, read-only, with the configured witnesses.
pub(crate) fn open_configured(
    db: Option<&Path>,
    loaded: &LoadedConfig,
) -> Result<AuditTrail, VeyraError> {
    open_trail(
        &store_path(db, loaded),
        &crate::governance::StoreOptions::from_config(&loaded.config),
    )
}

fn store_path(db: Option<&Path>, loaded: &LoadedConfig) -> PathBuf {
    db.map(Path::to_path_buf)
        .unwrap_or_else(|| loaded.config.audit_store_path())
}

fn describe(report: &VerifyReport) -> String {
    let mut out = format!(
        "chain head {}\ntree head  {}\n",
        report.head, report.tree_head
    );
    match &report.checkpoint {
        Some(cp) => {
            let fp = checkpoint::parse_public_key(&cp.public_key)
                .map(|k| checkpoint::fingerprint(&k))
                .unwrap_or_default();
            out.push_str(&format!(
                "checkpoint {} entries, signed {} by key {} (fingerprint {fp})\n",
                cp.tree_size,
                cp.timestamp
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                cp.public_key
            ));
        }
        None => out.push_str("checkpoint none (an empty log)\n"),
    }
    if !report.pinned_by.is_empty() {
        out.push_str(&format!("pinned by  {}\n", report.pinned_by.join("; ")));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// `veyra audit verify [--db PATH] [--witness FILE] [--key HEX] [--expect-size N --expect-head HEX]`.
pub fn audit_verify_db(args: &VerifyArgs, loaded: &LoadedConfig) -> Result<ExitCode, VeyraError> {
    let path = store_path(args.db.as_deref(), loaded);
    let urls = args.fleet_witnesses();
    let fleet = if urls.is_empty() {
        Vec::new()
    } else {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| VeyraError::io("starting the runtime to reach the fleet", e))?;
        runtime.block_on(async {
            let mut found = Vec::new();
            for url in &urls {
                found.push(crate::fleet::fetch_witness(&loaded.config.nats, url, &path).await?);
            }
            Ok::<_, VeyraError>(found)
        })?
    };
    let anchors = args.anchors(fleet)?;
    let trail = open_trail(
        &path,
        &crate::governance::StoreOptions::from_config(&loaded.config),
    )?;
    let started = std::time::Instant::now();
    let report = trail.verify_with(&anchors)?;
    print_all(&format!(
        "{}: ok — {} entries verified in {:.1?}\n{}",
        path.display(),
        report.entries,
        started.elapsed(),
        describe(&report)
    ))
}

/// `veyra audit verify --file EXPORT`: works without a configuration; when one loads, the local
/// store's key pins the signer too.
pub fn audit_verify_file(
    args: &VerifyArgs,
    loaded: Option<&LoadedConfig>,
) -> Result<ExitCode, VeyraError> {
    let Some(file) = args.file.as_deref() else {
        return Err(VeyraError::Usage("audit verify --file needs a file".into()));
    };
    let text = crate::fsread::read_regular_to_string(file, MAX_EXPORT_BYTES, "audit export")
        .map_err(|e| match e {
            crate::fsread::BoundedReadError::Io { source, .. } => {
                VeyraError::io(format!("reading audit export {}", file.display()), source)
            }
            e @ (crate::fsread::BoundedReadError::NotRegular { .. }
            | crate::fsread::BoundedReadError::TooLarge { .. }
            | crate::fsread::BoundedReadError::NotUtf8 { .. }) => VeyraError::Usage(e.to_string()),
        })?;
    let export: AuditExport = serde_json::from_str(&text).map_err(|e| {
        VeyraError::Usage(format!(
            "{}:{}:{}: not a Veyra audit export: {e}",
            file.display(),
            e.line(),
            e.column()
        ))
    })?;
    if export.format != crate::governance::EXPORT_FORMAT_TAG {
        return Err(VeyraError::Usage(format!(
            "{}: unsupported export format '{}'; this Veyra reads '{}'",
            file.display(),
            export.format,
            crate::governance::EXPORT_FORMAT_TAG
        )));
    }
    let mut anchors = args.anchors(Vec::new())?;
    if let Some(loaded) = loaded {
        let store = loaded.config.audit_store_path();
        if let Ok(key) = checkpoint::key_file_public_key(&store) {
            anchors.key_file = Some(Ok(key));
        }
    }
    let report = export
        .verify(&anchors)
        .map_err(|f| VeyraError::Audit(AuditError::Integrity(f)))?;
    print_all(&format!(
        "{}: ok — {} {}entries\n{}",
        file.display(),
        report.entries,
        if export.filtered {
            "proved (filtered) "
        } else {
            ""
        },
        describe(&report)
    ))
}

/// `veyra audit list`.
pub fn audit_list(
    db: Option<&Path>,
    filter: &FilterArgs,
    json: bool,
    loaded: &LoadedConfig,
) -> Result<ExitCode, VeyraError> {
    let trail = open_configured(db, loaded)?;
    let entries = trail.query(&filter.to_filter())?;
    let mut out = String::new();
    if json {
        out = super::json_lines(&entries, "an entry")?;
    } else {
        out.push_str(&format!(
            "{:>6}  {:<27}  {:<16}  {:<10}  {:<14}  {:<9}  {}\n",
            "SEQ", "TIME (UTC)", "TYPE", "ACTOR", "ACTION", "OUTCOME", "HASH"
        ));
        for e in &entries {
            out.push_str(&format!(
                "{:>6}  {:<27}  {:<16}  {:<10}  {:<14}  {:<9}  {}\n",
                e.seq,
                e.timestamp
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                e.event_type.name(),
                e.actor,
                e.action,
                e.outcome,
                e.short_hash()
            ));
        }
        out.push_str(&format!("{} entries\n", entries.len()));
    }
    print_all(&out)
}

/// `veyra audit export`: verifies the store first; a broken store is not exported.
pub fn audit_export(
    db: Option<&Path>,
    filter: &FilterArgs,
    out: Option<&Path>,
    loaded: &LoadedConfig,
) -> Result<ExitCode, VeyraError> {
    let trail = open_configured(db, loaded)?;
    let export = trail.export(&filter.to_filter())?;
    let mut text = crate::sanitize::to_json_pretty(&export)
        .map_err(|e| VeyraError::Runtime(format!("encoding the export: {e}")))?;
    text.push('\n');
    match out {
        None => print_all(&text),
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|e| VeyraError::io(format!("writing {}", path.display()), e))?;
            eprintln!(
                "{} entries written to {}",
                export.entries.len(),
                crate::sanitize::sanitize(&path.display().to_string())
            );
            Ok(ExitCode::Success)
        }
    }
}

/// `veyra audit prove SEQ`: the inclusion proof as JSON, checked before it is printed.
pub fn audit_prove(
    seq: u64,
    db: Option<&Path>,
    loaded: &LoadedConfig,
) -> Result<ExitCode, VeyraError> {
    let path = store_path(db, loaded);
    let trail = open_trail(
        &path,
        &crate::governance::StoreOptions::from_config(&loaded.config),
    )?;
    let Some(proof) = trail.prove(seq)? else {
        return Err(VeyraError::Usage(format!(
            "no entry {seq} in {}; it holds entries 1 to {}",
            path.display(),
            trail.len()
        )));
    };
    let mut text = crate::sanitize::to_json_pretty(&proof)
        .map_err(|e| VeyraError::Runtime(format!("encoding the proof: {e}")))?;
    text.push('\n');
    print_all(&text)
}

fn open_writer(path: &Path, options: &StoreOptions) -> Result<AuditTrail, VeyraError> {
    let store = SqliteStore::open(path, options)?;
    Ok(AuditTrail::new(std::sync::Arc::new(store))?)
}

/// `veyra audit rotate-key`.
pub fn audit_rotate_key(db: Option<&Path>, loaded: &LoadedConfig) -> Result<ExitCode, VeyraError> {
    let path = store_path(db, loaded);
    let trail = open_writer(
        &path,
        &crate::governance::StoreOptions::from_config(&loaded.config),
    )?;
    let entry = trail.rotate_signing_key("operator")?;
    let to = entry.metadata["to"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    drop(trail);
    let fp = checkpoint::parse_public_key(&to)
        .map(|k| checkpoint::fingerprint(&k))
        .unwrap_or_default();
    print_all(&format!(
        "{}: signing key rotated at entry seq {}\nnew key {to} (fingerprint {fp})\npublish it where verifiers can find it; the old key endorsed it in the log\n",
        path.display(),
        entry.seq
    ))
}

/// `veyra audit adopt`.
pub fn audit_adopt(db: Option<&Path>, loaded: &LoadedConfig) -> Result<ExitCode, VeyraError> {
    let path = store_path(db, loaded);
    let mut options = crate::governance::StoreOptions::from_config(&loaded.config);
    options.adopt = true;
    let trail = open_writer(&path, &options)?;
    let report = trail.verify_integrity()?;
    drop(trail);
    print_all(&format!(
        "{}: adopted — {} entries verified against its key file and witnessed from now on\n{}",
        path.display(),
        report.entries,
        describe(&report)
    ))
}
