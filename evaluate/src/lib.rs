//! Offline evaluation of CineData's models on the protocols of `EVALUATION.md`, so our
//! numbers compare fold for fold with Surprise, River and implicit.
//!
//! Modules, one concept each:
//! - [`splits`]: the splitmix64 5-fold assignment and the per-user temporal 80/20 split (with
//!   its inner split for tuning), computed or read from the published split files.
//! - [`metrics`]: RMSE, MAE, Precision/Recall/NDCG/MAP/HitRate@K and coverage.
//! - [`models`]: the models selectable by name and their per-protocol hyper-parameters.
//! - [`protocols`]: cross-validation, prequential and top-N runs, each giving a [`Report`].
//! - [`stream_topn`]: streaming top-N, the offline twin of an A/B test: the release replayed
//!   in time order, each liked next movie scored against the list serving would have shown.
//! - [`record`]: reports as [`schemas::ExperimentRecord`]s for the store, and the `--compare`
//!   table of past records.
//!
//! [`evaluate`] (or [`run`], reports only) is the `evaluate` binary minus argument parsing and
//! recording.
#![deny(missing_docs)]

mod markdown;
pub mod metrics;
pub mod models;
pub mod protocols;
pub mod record;
pub mod splits;
pub mod stream_topn;

use std::fmt;
use std::path::{Path, PathBuf};

use model::ModelError;
use movielens::{RatingRow, Release, RowError};
use schemas::{DataFingerprint, DataSnapshot};
use serde_json::{Value, json};

pub use models::ModelName;
pub use protocols::Level;
pub use splits::Part;
pub use stream_topn::StreamSettings;

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The release folder lacks `ratings.csv` or `movies.csv`.
    #[error("{0}: not a MovieLens release (needs ratings.csv and movies.csv)")]
    NotARelease(PathBuf),
    /// A ratings row could not be read.
    #[error(transparent)]
    Row(#[from] RowError),
    /// A split file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A split file does not match the ratings.
    #[error("{path}:{line}: {reason}")]
    SplitFile {
        /// The file.
        path: PathBuf,
        /// 1-based line (the header is line 1).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A model failed to fit or learn.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model cannot run under the protocol (e.g. batch MF prequentially).
    #[error("model {model} does not apply to protocol {protocol}")]
    NotApplicable {
        /// The model.
        model: ModelName,
        /// The protocol.
        protocol: Protocol,
    },
}

/// The evaluation protocols: A–C of `EVALUATION.md`, and D, streaming top-N
/// (`evaluate/STREAM-TOPN.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Protocol {
    /// A: 5-fold cross-validation of rating prediction.
    Cv,
    /// B: test-then-train over the time-ordered stream.
    Prequential,
    /// C: per-user temporal 80/20 split, top-10 ranking.
    #[value(name = "topn")]
    TopN,
    /// D: the stream replayed in time order, each liked next movie scored against the top-10
    /// the model would have shown just before.
    #[value(name = "stream-topn")]
    StreamTopN,
}

impl Protocol {
    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Cv => "cv",
            Protocol::Prequential => "prequential",
            Protocol::TopN => "topn",
            Protocol::StreamTopN => "stream-topn",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one model under one protocol.
#[derive(Debug, Clone)]
pub struct Report {
    /// The protocol run.
    pub protocol: Protocol,
    /// The model evaluated.
    pub model: ModelName,
    /// Its hyper-parameters.
    pub params: Value,
    /// Metric name to value (means over folds for cv, with `_std` the population std).
    pub metrics: Value,
    /// One object per fold (cv) or per time window (stream-topn).
    pub folds: Vec<Value>,
    /// Seconds to fit (mean per fold for cv; 0 for prequential; the refits summed for
    /// stream-topn, where they run beside the replay).
    pub fit_seconds: f64,
    /// Seconds to predict (mean per fold for cv; the whole predict+learn loop for prequential;
    /// the whole replay's wall time for stream-topn).
    pub predict_seconds: f64,
}

/// Metric keys every JSON report carries, `null` where the protocol does not measure them.
const METRIC_KEYS: [&str; 8] =
    ["rmse", "mae", "precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10", "coverage"];

impl Report {
    /// The JSON object of `--json`.
    pub fn to_json(&self) -> Value {
        let mut metrics = self.metrics.clone();
        if let Some(m) = metrics.as_object_mut() {
            for key in METRIC_KEYS {
                m.entry(key).or_insert(Value::Null);
            }
        }
        json!({
            "protocol": self.protocol.as_str(),
            "model": self.model.as_str(),
            "params": self.params,
            "metrics": metrics,
            "folds": self.folds,
            "fit_seconds": self.fit_seconds,
            "predict_seconds": self.predict_seconds,
        })
    }

    fn metric(&self, key: &str) -> f64 {
        self.metrics.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
    }
}

/// A Markdown table of reports of one protocol (cv adds a per-fold RMSE table, stream-topn
/// its hit rate and MRR per window).
pub fn table(reports: &[Report]) -> String {
    let mut out = String::new();
    let Some(first) = reports.first() else { return out };
    let columns = Column::of(first.protocol);
    markdown::header(&mut out, std::iter::once("model").chain(columns.iter().map(|(name, _)| *name)));
    for r in reports {
        markdown::row(&mut out, std::iter::once(r.model.to_string()).chain(columns.iter().map(|(_, c)| c.cell(r))));
    }
    if first.protocol == Protocol::Cv {
        out.push('\n');
        markdown::header(&mut out, ["model", "fold", "RMSE", "MAE", "fit s"]);
        for r in reports {
            for f in &r.folds {
                let get = |k: &str| f.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
                let (fold, rmse, mae, fit) = (get("fold"), get("rmse"), get("mae"), get("fit_seconds"));
                markdown::row(
                    &mut out,
                    [r.model.to_string(), fold.to_string(), f4(rmse), f4(mae), format!("{fit:.3}")],
                );
            }
        }
    }
    if first.protocol == Protocol::StreamTopN {
        for (key, title) in [("hit_rate@10", "HR@10"), ("mrr@10", "MRR@10")] {
            out.push('\n');
            window_table(&mut out, reports, key, title);
        }
    }
    out
}

/// One stream-topn metric per window (rows) and model (columns). Every model of one run is
/// scored on the same events, so the first report's windows label them all.
fn window_table(out: &mut String, reports: &[Report], key: &str, title: &str) {
    let names: Vec<String> = reports.iter().map(|r| format!("{title} {}", r.model)).collect();
    markdown::header(out, ["window", "from", "to", "events"].into_iter().chain(names.iter().map(String::as_str)));
    for (j, w) in reports[0].folds.iter().enumerate() {
        let text =
            |k: &str| w.get(k).map_or_else(String::new, |v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
        let cells = [(j + 1).to_string(), text("from"), text("to"), text("events")];
        let values = reports.iter().map(|r| {
            r.folds.get(j).and_then(|f| f.get(key)).and_then(Value::as_f64).map_or_else(|| "-".to_owned(), f4)
        });
        markdown::row(out, cells.into_iter().chain(values));
    }
}

/// What a column of [`table`] shows of a report.
#[derive(Debug, Clone, Copy)]
enum Column {
    /// A metric with this many decimals.
    Metric(&'static str, usize),
    /// A metric's mean and its `_std` in brackets.
    MeanStd(&'static str),
    /// Fit seconds (per fold for cv).
    Fit,
    /// Predict seconds (per fold for cv).
    Predict,
}

impl Column {
    /// Each protocol's columns after the model's name, with their headers.
    fn of(protocol: Protocol) -> &'static [(&'static str, Column)] {
        use Column::{Fit, MeanStd, Metric, Predict};
        match protocol {
            Protocol::Cv => &[
                ("RMSE mean (std)", MeanStd("rmse")),
                ("MAE mean (std)", MeanStd("mae")),
                ("fit s/fold", Fit),
                ("predict s/fold", Predict),
            ],
            Protocol::Prequential => &[
                ("RMSE all", Metric("rmse", 4)),
                ("MAE all", Metric("mae", 4)),
                ("RMSE last 20%", Metric("rmse_last20", 4)),
                ("MAE last 20%", Metric("mae_last20", 4)),
                ("RMSE first 20%", Metric("rmse_first20", 4)),
                ("ratings/s (median of runs)", Metric("ratings_per_second", 0)),
            ],
            Protocol::TopN => &[
                ("P@10", Metric("precision@10", 4)),
                ("R@10", Metric("recall@10", 4)),
                ("NDCG@10", Metric("ndcg@10", 4)),
                ("MAP@10", Metric("map@10", 4)),
                ("HR@10", Metric("hit_rate@10", 4)),
                ("coverage", Metric("coverage", 4)),
                ("fit s", Fit),
                ("predict s", Predict),
            ],
            Protocol::StreamTopN => &[
                ("HR@10", Metric("hit_rate@10", 4)),
                ("MRR@10", Metric("mrr@10", 4)),
                ("scored events", Metric("scored", 0)),
                ("personal lists", Metric("personal_share", 3)),
                ("refits", Metric("refits", 0)),
                ("fit s", Fit),
                ("replay wall s", Predict),
            ],
        }
    }

    fn cell(self, r: &Report) -> String {
        match self {
            Column::Metric(key, digits) => format!("{:.digits$}", r.metric(key)),
            Column::MeanStd(key) => format!("{} ({})", f4(r.metric(key)), f4(r.metric(&format!("{key}_std")))),
            Column::Fit => format!("{:.3}", r.fit_seconds),
            Column::Predict => format!("{:.3}", r.predict_seconds),
        }
    }
}

fn f4(value: f64) -> String {
    format!("{value:.4}")
}

/// The data folder an example program takes: its first argument, else `$CINEDATA_ML_SMALL`,
/// else `../shared/data/movielens/ml-latest-small`.
pub fn example_data_dir() -> PathBuf {
    std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os("CINEDATA_ML_SMALL"))
        .map_or_else(|| PathBuf::from("../shared/data/movielens/ml-latest-small"), PathBuf::from)
}

/// Reads every rating of a release folder, in file order.
///
/// # Errors
/// [`EvalError::NotARelease`] without `ratings.csv`/`movies.csv`; [`EvalError::Row`] for an
/// unreadable file or row.
pub fn load_ratings(dir: &Path) -> Result<Vec<RatingRow>, EvalError> {
    let release = Release::new(dir);
    if !release.exists() {
        return Err(EvalError::NotARelease(dir.to_owned()));
    }
    Ok(release.ratings()?.collect::<Result<Vec<_>, _>>()?)
}

/// What one `evaluate` invocation does.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The release folder.
    pub data: PathBuf,
    /// The protocol.
    pub protocol: Protocol,
    /// Models to run; empty = every model that applies.
    pub models: Vec<ModelName>,
    /// A `userId,movieId,fold` file to use instead of computing the folds: a line per rating, any order.
    pub folds: Option<PathBuf>,
    /// A `userId,movieId,split,inner` file to use instead of computing the top-N split (any order).
    pub split: Option<PathBuf>,
    /// Top-N only: evaluate on the inner split (tuning) instead of the test part.
    pub level: Level,
    /// Stream-topn only: refit cadence and windows.
    pub stream: StreamSettings,
}

/// The reports of one `evaluate` invocation and the data they ran on.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// One report per model, in order.
    pub reports: Vec<Report>,
    /// The release folder (absolute when it resolves) and the fingerprint of its ratings.
    pub data: DataSnapshot,
}

/// The snapshot of `rows` read from `dir`: counts and the order-independent fingerprint.
pub fn snapshot(dir: &Path, rows: &[RatingRow]) -> DataSnapshot {
    let mut fingerprint = DataFingerprint::new();
    for r in rows {
        fingerprint.add(r.user_id, r.movie_id, f64::from(r.rating), r.timestamp);
    }
    let path = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    fingerprint.snapshot(path.display().to_string())
}

/// Runs `settings.protocol` for each model, in order.
///
/// # Errors
/// Unreadable data or split files, a model that does not apply, a model that fails.
pub fn run(settings: &Settings) -> Result<Vec<Report>, EvalError> {
    Ok(evaluate(settings)?.reports)
}

/// [`run`], also returning the [`snapshot`] of the data.
///
/// # Errors
/// As [`run`].
pub fn evaluate(settings: &Settings) -> Result<Evaluation, EvalError> {
    let rows = load_ratings(&settings.data)?;
    let data = snapshot(&settings.data, &rows);
    let reports = run_on(&rows, settings)?;
    Ok(Evaluation { reports, data })
}

fn run_on(rows: &[RatingRow], settings: &Settings) -> Result<Vec<Report>, EvalError> {
    let models =
        if settings.models.is_empty() { ModelName::defaults(settings.protocol) } else { settings.models.clone() };
    if let Some(&model) = models.iter().find(|m| !m.applies_to(settings.protocol)) {
        return Err(EvalError::NotApplicable { model, protocol: settings.protocol });
    }
    match settings.protocol {
        Protocol::Cv => {
            let folds = match &settings.folds {
                Some(path) => splits::read_folds(path, rows)?,
                None => splits::assign_folds(rows, 5),
            };
            models.into_iter().map(|m| protocols::cross_validate(rows, &folds, m)).collect()
        }
        Protocol::Prequential => models.into_iter().map(|m| protocols::prequential(rows, m)).collect(),
        Protocol::TopN => {
            let parts = match &settings.split {
                Some(path) => splits::read_split(path, rows)?,
                None => splits::temporal_split(rows),
            };
            models.into_iter().map(|m| protocols::top_n(rows, &parts, settings.level, m)).collect()
        }
        Protocol::StreamTopN => {
            let stream = protocols::stream_ratings(rows);
            models.into_iter().map(|m| stream_topn::stream_topn_on(&stream, m, &settings.stream)).collect()
        }
    }
}
