//! What the benchmark store keeps, as the rest of Veyra sees it: a run's plan and where it
//! stands, and one finished epoch of one task.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::benchmarks::framework::{Difficulty, FamilyId};

/// Where a run stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RunStatus {
    /// Started and not finished: running now, or the process stopped (resume it).
    Running,
    /// Every task of every epoch finished.
    Complete,
    /// Cancelled by the operator; resume it to finish.
    Cancelled,
}

impl RunStatus {
    /// The name stored and shown.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// What a run is: its plan and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's id (`YYYYMMDD-HHMMSS-xxxxxxxx`).
    pub id: String,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it last finished (completed or cancelled).
    pub finished_at: Option<DateTime<Utc>>,
    /// Where it stands.
    pub status: RunStatus,
    /// Families run.
    pub families: Vec<FamilyId>,
    /// Tasks per family.
    pub count: u32,
    /// Difficulty.
    pub difficulty: Difficulty,
    /// Generator seed.
    pub seed: u64,
    /// Epochs per task.
    pub epochs: u32,
    /// V-Score weights.
    pub weights: BTreeMap<FamilyId, f64>,
    /// SHA-256 prefix of the effective configuration (RFC 8785 JSON).
    pub config_hash: String,
    /// Backend that answered.
    pub backend: String,
    /// Model that answered.
    pub model: String,
    /// Veyra's version.
    pub veyra_version: String,
}

impl RunInfo {
    /// The weight of `family` (1 when not recorded).
    pub fn weight(&self, family: FamilyId) -> f64 {
        self.weights.get(&family).copied().unwrap_or(1.0)
    }
}

/// One finished epoch of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The task.
    pub task_id: String,
    /// The epoch, from 0.
    pub epoch: u32,
    /// The model's whole answer (empty when the execution failed).
    pub output: String,
    /// Score, 0 to 1.
    pub score: f64,
    /// Why that score.
    pub reason: String,
    /// The execution's error, when it failed (scored 0).
    pub error: Option<String>,
    /// Wall time from submission to the final state, ms.
    pub latency_ms: u64,
    /// Input tokens.
    pub tokens_in: u64,
    /// Output tokens.
    pub tokens_out: u64,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
}
