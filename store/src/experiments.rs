//! Experiment records ([`schemas::ExperimentRecord`]): written after each `evaluate` run and
//! each production retrain, listed newest first by `evaluate --compare`.
//!
//! JSON fields (`params`, `metrics`, `folds`) are stored as JSON text on both backends, so one
//! portable SQL text serves both.

use schemas::{DataSnapshot, ExperimentKind, ExperimentRecord};
use sqlx::AssertSqlSafe;

use crate::pool::{Arg, bind_args, with_pool};
use crate::{Store, StoreError};

/// Filters for [`Store::experiments`]; the default lists every record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExperimentQuery {
    /// Only this protocol (`cv`, `prequential`, `topn`, ...).
    pub protocol: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// Only `evaluate` runs or only retrains.
    pub kind: Option<ExperimentKind>,
    /// Only records on data with this fingerprint.
    pub data_fingerprint: Option<String>,
    /// At most this many records (the newest).
    pub limit: Option<i64>,
}

const COLUMNS: &str = "id, kind, protocol, model, params, data_path, data_fingerprint, data_ratings, data_users, \
     data_movies, metrics, folds, fit_seconds, predict_seconds, git_revision, host, started_at, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    kind: String,
    protocol: String,
    model: String,
    params: String,
    data_path: String,
    data_fingerprint: String,
    data_ratings: i64,
    data_users: i64,
    data_movies: i64,
    metrics: String,
    folds: String,
    fit_seconds: f64,
    predict_seconds: f64,
    git_revision: String,
    host: String,
    started_at: i64,
    created_at: i64,
}

pub(crate) fn decode_error(column: &str, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Database(sqlx::Error::ColumnDecode { index: column.to_owned(), source: Box::new(source) })
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| decode_error(column, e))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl TryFrom<Row> for ExperimentRecord {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<Self, StoreError> {
        let kind = row.kind.parse::<ExperimentKind>().map_err(|reason| decode_error("kind", BadValue(reason)))?;
        Ok(ExperimentRecord {
            id: Some(row.id),
            kind,
            protocol: row.protocol,
            model: row.model,
            params: json("params", &row.params)?,
            data: DataSnapshot {
                path: row.data_path,
                fingerprint: row.data_fingerprint,
                ratings: count(row.data_ratings),
                users: count(row.data_users),
                movies: count(row.data_movies),
            },
            metrics: json("metrics", &row.metrics)?,
            folds: json("folds", &row.folds)?,
            fit_seconds: row.fit_seconds,
            predict_seconds: row.predict_seconds,
            git_revision: row.git_revision,
            host: row.host,
            started_at: row.started_at,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BadValue(pub(crate) String);

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// Writes one experiment record (its `id` is ignored) and returns the id it got.
    ///
    /// # Errors
    /// A database error.
    pub async fn record_experiment(&self, record: &ExperimentRecord) -> Result<i64, StoreError> {
        // Serialising a `serde_json::Value` cannot fail (its map keys are strings).
        let params = record.params.to_string();
        let metrics = record.metrics.to_string();
        let folds = serde_json::Value::from(record.folds.clone()).to_string();
        let sql = "INSERT INTO experiments (kind, protocol, model, params, data_path, data_fingerprint, data_ratings, \
             data_users, data_movies, metrics, folds, fit_seconds, predict_seconds, git_revision, host, started_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             RETURNING id";
        let id: (i64,) = with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(record.kind.as_str())
                .bind(&record.protocol)
                .bind(&record.model)
                .bind(&params)
                .bind(&record.data.path)
                .bind(&record.data.fingerprint)
                .bind(int(record.data.ratings))
                .bind(int(record.data.users))
                .bind(int(record.data.movies))
                .bind(&metrics)
                .bind(&folds)
                .bind(record.fit_seconds)
                .bind(record.predict_seconds)
                .bind(&record.git_revision)
                .bind(&record.host)
                .bind(record.started_at)
                .bind(record.created_at)
                .fetch_one(pool)
                .await
        })?;
        Ok(id.0)
    }

    /// Experiment records matching `query`, newest first (by `created_at`, then id).
    ///
    /// # Errors
    /// A database error, or a stored JSON column that does not parse.
    pub async fn experiments(&self, query: &ExperimentQuery) -> Result<Vec<ExperimentRecord>, StoreError> {
        let mut clauses = Vec::new();
        let mut args = Vec::new();
        let mut push = |column: &str, arg: Arg| {
            args.push(arg);
            clauses.push(format!("{column} = ${}", args.len()));
        };
        if let Some(protocol) = &query.protocol {
            push("protocol", Arg::Text(protocol.clone()));
        }
        if let Some(model) = &query.model {
            push("model", Arg::Text(model.clone()));
        }
        if let Some(kind) = query.kind {
            push("kind", Arg::Text(kind.as_str().to_owned()));
        }
        if let Some(fingerprint) = &query.data_fingerprint {
            push("data_fingerprint", Arg::Text(fingerprint.clone()));
        }
        let mut sql = format!("SELECT {COLUMNS} FROM experiments");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC");
        if let Some(limit) = query.limit {
            args.push(Arg::Int(limit.max(0)));
            sql.push_str(&format!(" LIMIT ${}", args.len()));
        }
        let rows: Vec<Row> =
            with_pool!(self, |pool| { bind_args(sqlx::query_as(AssertSqlSafe(sql)), &args).fetch_all(pool).await })?;
        rows.into_iter().map(ExperimentRecord::try_from).collect()
    }
}
