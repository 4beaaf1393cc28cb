//! Reports as experiment records, and the `--compare` table of past records.

use schemas::experiments::{DataSnapshot, ExperimentKind, ExperimentRecord, git_revision, host_name, unix_now};

use crate::{Report, markdown};

/// What every record of one `evaluate` invocation shares.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The data the models ran on.
    pub data: DataSnapshot,
    /// [`git_revision`] of the code.
    pub git_revision: String,
    /// The machine.
    pub host: String,
    /// When the invocation started, Unix seconds.
    pub started_at: i64,
}

impl RunInfo {
    /// The revision of the current checkout (or this crate's version) and this host, for a run
    /// that started at `started_at` on `data`.
    pub fn here(data: DataSnapshot, started_at: i64) -> Self {
        Self { data, git_revision: git_revision(env!("CARGO_PKG_VERSION")), host: host_name(), started_at }
    }
}

impl Report {
    /// The experiment record of this report (kind `evaluate`, made now), with the same
    /// `protocol`, `model`, `params`, `metrics`, `folds` and durations as [`Report::to_json`].
    pub fn to_record(&self, info: &RunInfo) -> ExperimentRecord {
        let json = self.to_json();
        ExperimentRecord {
            id: None,
            kind: ExperimentKind::Evaluate,
            protocol: self.protocol.as_str().to_owned(),
            model: self.model.as_str().to_owned(),
            params: self.params.clone(),
            data: info.data.clone(),
            metrics: json["metrics"].clone(),
            folds: self.folds.clone(),
            fit_seconds: self.fit_seconds,
            predict_seconds: self.predict_seconds,
            git_revision: info.git_revision.clone(),
            host: info.host.clone(),
            started_at: info.started_at,
            created_at: unix_now(),
        }
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) of Unix seconds (shared with serving's web pages).
pub use schemas::events::utc;

/// A git revision shortened for a table: 12 hex digits, `-dirty` kept.
pub fn short_revision(revision: &str) -> String {
    let (commit, dirty) = revision.strip_suffix("-dirty").map_or((revision, ""), |commit| (commit, "-dirty"));
    if commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("{}{dirty}", &commit[..12])
    } else {
        revision.to_owned()
    }
}

/// The `--compare` Markdown table, one row per record in the given order (newest first from
/// the store): when (UTC), git revision, kind, protocol, model, data fingerprint (8 digits),
/// RMSE, MAE, NDCG@10, coverage, fit seconds; `-` where a metric was not measured.
pub fn compare_table(records: &[ExperimentRecord]) -> String {
    let mut out = String::new();
    let names = ["id", "when (UTC)", "git revision", "kind", "protocol", "model", "data"];
    markdown::header(&mut out, names.into_iter().chain(["RMSE", "MAE", "NDCG@10", "coverage", "fit s"]));
    let metric = |r: &ExperimentRecord, key: &str| r.metric(key).map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"));
    for r in records {
        let cells = [
            r.id.map_or_else(|| "-".to_owned(), |id| id.to_string()),
            utc(r.created_at),
            short_revision(&r.git_revision),
            r.kind.to_string(),
            r.protocol.clone(),
            r.model.clone(),
            r.data.fingerprint.get(..8).unwrap_or(&r.data.fingerprint).to_owned(),
        ];
        let metrics = ["rmse", "mae", "ndcg@10", "coverage"].map(|key| metric(r, key));
        markdown::row(&mut out, cells.into_iter().chain(metrics).chain([format!("{:.3}", r.fit_seconds)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_civil_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(964_982_703), "2000-07-30 18:45");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc(-1), "1969-12-31 23:59");
    }

    #[test]
    fn revisions_are_shortened_for_the_table() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(short_revision(sha), "0123456789ab");
        assert_eq!(short_revision(&format!("{sha}-dirty")), "0123456789ab-dirty");
        assert_eq!(short_revision("0.1.0"), "0.1.0");
    }

    #[test]
    fn the_table_shows_missing_metrics_as_dashes() {
        let mut record = ExperimentRecord::new(ExperimentKind::Evaluate, "cv", "mf", "0.1.0");
        record.id = Some(3);
        record.metrics = serde_json::json!({"rmse": 0.85, "mae": 0.65, "ndcg@10": null});
        record.data.fingerprint = "0123456789abcdef".to_owned();
        let table = compare_table(&[record]);
        let row = table.lines().nth(2).unwrap();
        assert!(row.starts_with("| 3 | "), "{row}");
        assert!(row.contains("| cv | mf | 01234567 | 0.8500 | 0.6500 | - | - | 0.000 |"), "{row}");
    }
}
