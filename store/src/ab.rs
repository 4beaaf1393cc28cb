//! A/B experiments ([`schemas::ab`]): their configuration, status and change log, and the
//! impressions (shown lists) their outcomes are computed from.
//!
//! Impressions are keyed by event id and inserted with `ON CONFLICT DO NOTHING`, so the
//! consumer group may deliver one any number of times and it is stored once.

use schemas::ab::{ExperimentChange, ExperimentConfig, ExperimentStatus, ExperimentSummary};
use schemas::events::ListShown;

use crate::experiments::{BadValue, decode_error, json};
use crate::pool::{Pool, with_pool};
use crate::{Store, StoreError};

/// Impressions per PostgreSQL statement / SQLite JSON document.
const CHUNK: usize = 20_000;

/// One stored impression, as outcomes need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impression {
    /// The user shown the list.
    pub user_id: i64,
    /// Their variant (or `holdout`).
    pub variant: String,
    /// The movies shown, best first.
    pub movie_ids: Vec<i64>,
    /// The stream's clock when shown (Unix seconds).
    pub stream_time: i64,
}

fn config(text: &str) -> Result<ExperimentConfig, StoreError> {
    json("config", text)
}

fn ids_text(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn parse_ids(text: &str) -> Result<Vec<i64>, StoreError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(|id| id.parse::<i64>().map_err(|e| decode_error("movie_ids", e))).collect()
}

impl Store {
    /// Every experiment, by name.
    ///
    /// # Errors
    /// A database error, or a stored row that does not parse.
    pub async fn ab_experiments(&self) -> Result<Vec<ExperimentSummary>, StoreError> {
        let rows: Vec<(String, String, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT name, status, config, updated_at FROM ab_experiments ORDER BY name")
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter()
            .map(|(name, status, text, updated_at)| {
                let status = status.parse::<ExperimentStatus>().map_err(|e| decode_error("status", BadValue(e)))?;
                Ok(ExperimentSummary { name, status, config: config(&text)?, updated_at })
            })
            .collect()
    }

    /// Records a change of experiment `name`: its configuration and status from now on, and a
    /// log row saying `action` (`created`, `changed`, `started`, `stopped`), in one transaction.
    ///
    /// # Errors
    /// A database error; nothing is written then.
    pub async fn ab_record(
        &self,
        name: &str,
        action: &str,
        status: ExperimentStatus,
        config: &ExperimentConfig,
        at: i64,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(config).map_err(|e| decode_error("config", e))?;
        let upsert = "INSERT INTO ab_experiments (name, status, config, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET status = excluded.status, config = excluded.config, \
             updated_at = excluded.updated_at";
        let log = "INSERT INTO ab_experiment_log (name, at, action, config) VALUES ($1, $2, $3, $4)";
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(upsert).bind(name).bind(status.as_str()).bind(&text).bind(at).execute(&mut *tx).await?;
            sqlx::query(log).bind(name).bind(at).bind(action).bind(&text).execute(&mut *tx).await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// Every recorded change of experiment `name`, oldest first.
    ///
    /// # Errors
    /// A database error, or a stored row that does not parse.
    pub async fn ab_history(&self, name: &str) -> Result<Vec<ExperimentChange>, StoreError> {
        let rows: Vec<(i64, String, String)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT at, action, config FROM ab_experiment_log WHERE name = $1 ORDER BY id")
                .bind(name)
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(|(at, action, text)| Ok(ExperimentChange { at, action, config: config(&text)? })).collect()
    }

    /// The newest change's id (0 before any): replicas reload the experiments when it moves.
    ///
    /// # Errors
    /// A database error.
    pub async fn ab_revision(&self) -> Result<i64, StoreError> {
        let (id,): (Option<i64>,) =
            with_pool!(self, |pool| { sqlx::query_as("SELECT MAX(id) FROM ab_experiment_log").fetch_one(pool).await })?;
        Ok(id.unwrap_or(0))
    }

    /// Stores shown lists; one already stored (same event id) is left as it is.
    ///
    /// # Errors
    /// A database error; nothing of the batch is written then.
    pub async fn insert_impressions(&self, events: &[ListShown]) -> Result<u64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        match &self.pool {
            Pool::Sqlite(pool) => {
                let sql = "INSERT INTO impressions (event_id, user_id, experiment, variant, model_version, strategy, \
                     movie_ids, stream_time, shown_at) SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, \
                     value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8 FROM json_each($1) WHERE true \
                     ON CONFLICT (event_id) DO NOTHING";
                let mut tx = pool.begin().await?;
                for chunk in events.chunks(CHUNK) {
                    // Tuples encode as JSON arrays, written straight into one text.
                    let rows: Vec<_> = chunk
                        .iter()
                        .map(|e| {
                            (
                                e.event_id.to_string(),
                                e.user_id,
                                &e.experiment,
                                &e.variant,
                                e.model_version,
                                &e.strategy,
                                ids_text(&e.movie_ids),
                                e.stream_time,
                                e.timestamp,
                            )
                        })
                        .collect();
                    let json = serde_json::to_string(&rows).expect("strings and numbers always encode");
                    sqlx::query(sql).bind(json).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Pool::Postgres(pool) => {
                let sql = "INSERT INTO impressions (event_id, user_id, experiment, variant, model_version, strategy, \
                     movie_ids, stream_time, shown_at) SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[], \
                     $4::TEXT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[]) \
                     ON CONFLICT (event_id) DO NOTHING";
                let mut tx = pool.begin().await?;
                for chunk in events.chunks(CHUNK) {
                    let ids: Vec<String> = chunk.iter().map(|e| e.event_id.to_string()).collect();
                    let users: Vec<i64> = chunk.iter().map(|e| e.user_id).collect();
                    let experiments: Vec<Option<String>> = chunk.iter().map(|e| e.experiment.clone()).collect();
                    let variants: Vec<Option<String>> = chunk.iter().map(|e| e.variant.clone()).collect();
                    let versions: Vec<i64> =
                        chunk.iter().map(|e| i64::try_from(e.model_version).unwrap_or(i64::MAX)).collect();
                    let strategies: Vec<String> = chunk.iter().map(|e| e.strategy.clone()).collect();
                    let movies: Vec<String> = chunk.iter().map(|e| ids_text(&e.movie_ids)).collect();
                    let stream: Vec<i64> = chunk.iter().map(|e| e.stream_time).collect();
                    let shown: Vec<i64> = chunk.iter().map(|e| e.timestamp).collect();
                    sqlx::query(sql)
                        .bind(&ids)
                        .bind(&users)
                        .bind(&experiments)
                        .bind(&variants)
                        .bind(&versions)
                        .bind(&strategies)
                        .bind(&movies)
                        .bind(&stream)
                        .bind(&shown)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(events.len() as u64)
    }

    /// The event ids of every stored impression, in no particular order (tests and audits).
    ///
    /// # Errors
    /// A database error.
    pub async fn impression_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            with_pool!(self, |pool| sqlx::query_as("SELECT event_id FROM impressions").fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The impressions of experiment `name`, in stream order.
    ///
    /// # Errors
    /// A database error, or a stored row that does not parse.
    pub async fn impressions_of(&self, name: &str) -> Result<Vec<Impression>, StoreError> {
        let rows: Vec<(i64, Option<String>, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, variant, movie_ids, stream_time FROM impressions WHERE experiment = $1 \
                 ORDER BY stream_time, shown_at",
            )
            .bind(name)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter()
            .map(|(user_id, variant, ids, stream_time)| {
                Ok(Impression {
                    user_id,
                    variant: variant.unwrap_or_default(),
                    movie_ids: parse_ids(&ids)?,
                    stream_time,
                })
            })
            .collect()
    }

    /// The stored ratings of at least `threshold` stars by users shown a list in experiment
    /// `name`: `(user, movie, timestamp)`.
    ///
    /// # Errors
    /// A database error.
    pub async fn liked_by_exposed(&self, name: &str, threshold: f64) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, movie_id, timestamp FROM ratings WHERE rating >= $2 AND user_id IN \
                 (SELECT DISTINCT user_id FROM impressions WHERE experiment = $1)",
            )
            .bind(name)
            .bind(threshold)
            .fetch_all(pool)
            .await
        })?)
    }
}
