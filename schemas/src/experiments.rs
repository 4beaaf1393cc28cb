//! Experiment records: what one model scored under one protocol on one data snapshot, written
//! by `evaluate` after each run and by the serving side after each production retrain.
//!
//! Field names are snake_case and match `evaluate --json` (`protocol`, `model`, `params`,
//! `metrics`, `folds`, `fit_seconds`, `predict_seconds`), so a record is that object plus where
//! and on what it ran. The store keeps them (`store::Store::record_experiment`); `evaluate
//! --compare` lists them; with an MLflow tracking URI they also go to MLflow.
//!
//! [`DataFingerprint`] hashes the rating rows themselves, not a file, and ignores their order:
//! `evaluate` on a release folder and a retrain on the same ratings read back from the
//! database get the same fingerprint.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::splitmix::splitmix64;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// What produced a record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExperimentKind {
    /// An offline `evaluate` run.
    #[default]
    Evaluate,
    /// A production retrain by the serving side.
    Retrain,
}

impl ExperimentKind {
    /// "evaluate" or "retrain", as stored and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentKind::Evaluate => "evaluate",
            ExperimentKind::Retrain => "retrain",
        }
    }
}

impl fmt::Display for ExperimentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExperimentKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "evaluate" => Ok(ExperimentKind::Evaluate),
            "retrain" => Ok(ExperimentKind::Retrain),
            other => Err(format!("unknown experiment kind {other:?}; expected evaluate or retrain")),
        }
    }
}

/// The data a model was trained and scored on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DataSnapshot {
    /// Where the ratings came from: a release folder (absolute path) or a database (URL
    /// without credentials).
    pub path: String,
    /// [`DataFingerprint`] of the rating rows: equal for equal sets of ratings.
    pub fingerprint: String,
    /// Rating rows.
    pub ratings: u64,
    /// Distinct users among the ratings.
    pub users: u64,
    /// Distinct movies among the ratings.
    pub movies: u64,
}

/// One model's result under one protocol, with what is needed to reproduce and compare it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExperimentRecord {
    /// The store's id; `None` until recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// `evaluate` run or production retrain.
    pub kind: ExperimentKind,
    /// `cv`, `prequential`, `topn` for `evaluate`; the retrain's own protocol name otherwise.
    pub protocol: String,
    /// The algorithm / model name (`evaluate --model` names).
    pub model: String,
    /// Hyper-parameters, as `evaluate --json` prints them.
    pub params: Value,
    /// The ratings it ran on.
    pub data: DataSnapshot,
    /// Metric name to value (`rmse`, `mae`, `ndcg@10`, `coverage`, ...); null where unmeasured.
    pub metrics: Value,
    /// One object per fold (cross-validation); empty otherwise.
    #[serde(default)]
    pub folds: Vec<Value>,
    /// Seconds to fit (mean per fold for cross-validation).
    pub fit_seconds: f64,
    /// Seconds to predict (mean per fold for cross-validation).
    pub predict_seconds: f64,
    /// `git rev-parse HEAD` of the code, `-dirty` appended for uncommitted changes, or the
    /// crate version outside a checkout (see [`git_revision`]).
    pub git_revision: String,
    /// The machine it ran on.
    pub host: String,
    /// When the run started, Unix seconds.
    pub started_at: i64,
    /// When the record was made, Unix seconds.
    pub created_at: i64,
}

impl ExperimentRecord {
    /// A record stamped now, on this host, with empty params, metrics and data; `git_revision`
    /// is [`git_revision`]`(fallback_version)`, so pass `env!("CARGO_PKG_VERSION")`.
    pub fn new(
        kind: ExperimentKind,
        protocol: impl Into<String>,
        model: impl Into<String>,
        fallback_version: &str,
    ) -> Self {
        let now = unix_now();
        Self {
            id: None,
            kind,
            protocol: protocol.into(),
            model: model.into(),
            params: Value::Object(serde_json::Map::new()),
            data: DataSnapshot::default(),
            metrics: Value::Object(serde_json::Map::new()),
            folds: Vec::new(),
            fit_seconds: 0.0,
            predict_seconds: 0.0,
            git_revision: git_revision(fallback_version),
            host: host_name(),
            started_at: now,
            created_at: now,
        }
    }

    /// A metric as a number, if present and numeric.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.metrics.get(key).and_then(Value::as_f64)
    }
}

/// An order-independent hash of rating rows, with their counts.
///
/// Each row `(user, movie, rating, timestamp)` (rating in thousandths of a star, so `f32` and
/// `f64` agree) is hashed twice with splitmix64 under two seeds; the row hashes are summed
/// (wrapping). The fingerprint is the two sums as 32 hex digits: the same multiset of rows
/// gives the same fingerprint in any order.
#[derive(Debug, Clone, Default)]
pub struct DataFingerprint {
    ratings: u64,
    users: HashSet<i64>,
    movies: HashSet<i64>,
    sums: [u64; 2],
}

const SEEDS: [u64; 2] = [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344];

impl DataFingerprint {
    /// An empty fingerprint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one rating row.
    pub fn add(&mut self, user_id: i64, movie_id: i64, rating: f64, timestamp: i64) {
        self.ratings += 1;
        self.users.insert(user_id);
        self.movies.insert(movie_id);
        let milli = (rating * 1000.0).round() as i64;
        for (sum, seed) in self.sums.iter_mut().zip(SEEDS) {
            let mut h = seed;
            for field in [user_id, movie_id, milli, timestamp] {
                h = splitmix64(h ^ field as u64);
            }
            *sum = sum.wrapping_add(h);
        }
    }

    /// The fingerprint so far: 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.sums[0], self.sums[1])
    }

    /// The snapshot of the rows added, read from `path`.
    pub fn snapshot(&self, path: impl Into<String>) -> DataSnapshot {
        DataSnapshot {
            path: path.into(),
            fingerprint: self.hex(),
            ratings: self.ratings,
            users: self.users.len() as u64,
            movies: self.movies.len() as u64,
        }
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// This machine's host name: `/proc/sys/kernel/hostname`, else `$HOSTNAME`/`$COMPUTERNAME`,
/// else "unknown".
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The code's revision: `git rev-parse HEAD` with `-dirty` appended when `git status
/// --porcelain` lists anything, asked first in the running executable's folder (a binary built
/// in a checkout's `target/` reports that checkout from any working directory), then in the
/// current directory; `fallback` (the crate version) when neither is in a git checkout or git
/// is missing.
pub fn git_revision(fallback: &str) -> String {
    let exe_dir = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_owned));
    exe_dir
        .into_iter()
        .map(Some)
        .chain(std::iter::once(None))
        .find_map(|dir| git_revision_in(dir.as_deref()))
        .unwrap_or_else(|| fallback.to_owned())
}

/// `git rev-parse HEAD` (plus `-dirty`) in `dir`, or the current directory for `None`.
fn git_revision_in(dir: Option<&Path>) -> Option<String> {
    let git = |args: &[&str]| {
        let mut command = std::process::Command::new("git");
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        command
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "HEAD"]).filter(|head| !head.is_empty())?;
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_ignores_row_order_and_rating_precision() {
        let rows = [(1, 10, 4.0, 100), (1, 11, 3.5, 101), (2, 10, 0.5, 102)];
        let mut forward = DataFingerprint::new();
        for &(u, m, r, t) in &rows {
            forward.add(u, m, r, t);
        }
        let mut backward = DataFingerprint::new();
        for &(u, m, r, t) in rows.iter().rev() {
            backward.add(u, m, f64::from(r as f32), t);
        }
        assert_eq!(forward.hex(), backward.hex());
        let snap = forward.snapshot("/data");
        assert_eq!((snap.ratings, snap.users, snap.movies), (3, 2, 2));
        assert_eq!(snap.fingerprint.len(), 32);

        let mut changed = DataFingerprint::new();
        for &(u, m, r, t) in &rows {
            changed.add(u, m, if m == 11 { 4.0 } else { r }, t);
        }
        assert_ne!(changed.hex(), forward.hex(), "a changed rating changes the fingerprint");
        let mut swapped = DataFingerprint::new();
        for &(u, m, r, t) in &rows {
            swapped.add(m, u, r, t);
        }
        assert_ne!(swapped.hex(), forward.hex(), "fields are not interchangeable");
    }

    #[test]
    fn a_record_round_trips_through_json_with_snake_case_fields() {
        let mut record = ExperimentRecord::new(ExperimentKind::Retrain, "holdout", "online", "0.1.0");
        record.metrics = serde_json::json!({"rmse": 0.85, "ndcg@10": null});
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["kind"], "retrain");
        assert!(json.get("fit_seconds").is_some() && json.get("id").is_none());
        let back: ExperimentRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.metric("rmse"), Some(0.85));
        assert_eq!(back.metric("ndcg@10"), None);
        assert!(!back.git_revision.is_empty() && !back.host.is_empty() && back.created_at > 0);
    }
}
