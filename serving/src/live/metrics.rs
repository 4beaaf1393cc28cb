//! The live model's Prometheus families.

use prometheus::{Gauge, Histogram, IntCounterVec, IntGauge, Registry};

/// The live model's Prometheus families.
#[derive(Clone)]
pub struct LiveMetrics {
    /// Events by outcome: applied, duplicate, outdated, invalid, unknown_movie.
    pub updates: IntCounterVec,
    /// Rolling prequential errors of the online model (each event scored before it is learned).
    pub prequential_rmse: Gauge,
    /// See `prequential_rmse`.
    pub prequential_mae: Gauge,
    /// Current model version.
    pub version: IntGauge,
    /// Holdout error of the current model's batch part.
    pub holdout_rmse: Gauge,
    /// See `holdout_rmse`.
    pub holdout_mae: Gauge,
    /// Retrains by outcome: accepted, rejected, failed.
    pub retrains: IntCounterVec,
    /// Time to read, train and check a retrain.
    pub retrain_seconds: Histogram,
    /// Users and movies in the live model.
    pub users: IntGauge,
    /// See `users`.
    pub movies: IntGauge,
    /// Time to compute a recommendation or similar-movies list, by kind.
    pub recommend_seconds: prometheus::HistogramVec,
}

impl LiveMetrics {
    /// Registers the families in `registry`.
    ///
    /// # Panics
    /// If a name is already registered (a programming error).
    pub fn register(registry: &Registry) -> Self {
        Self::families(&runtime::metrics::Families(registry)).expect("valid, unique metric families")
    }

    fn families(f: &runtime::metrics::Families<'_>) -> prometheus::Result<Self> {
        Ok(Self {
            updates: f.counter_vec(
                "online_updates_total",
                "Rating events given to the online model, by outcome.",
                &["outcome"],
            )?,
            prequential_rmse: f.gauge(
                "online_prequential_rmse",
                "Rolling RMSE of the online model on events before it learns them (last ~10k events).",
            )?,
            prequential_mae: f.gauge("online_prequential_mae", "Rolling MAE, as online_prequential_rmse.")?,
            version: f.int_gauge("model_version", "Version of the model serving answers from.")?,
            holdout_rmse: f.gauge("model_holdout_rmse", "Holdout RMSE of the current model's last retrain.")?,
            holdout_mae: f.gauge("model_holdout_mae", "Holdout MAE of the current model's last retrain.")?,
            retrains: f.counter_vec(
                "model_retrains_total",
                "Batch retrains by outcome: accepted, rejected, failed.",
                &["outcome"],
            )?,
            retrain_seconds: f.histogram(
                "model_retrain_duration_seconds",
                "Time to read, train and check a retrain.",
                prometheus::exponential_buckets(0.1, 2.0, 14)?,
            )?,
            users: f.int_gauge("model_users", "Users the live model knows.")?,
            movies: f.int_gauge("model_movies", "Movies the live model knows.")?,
            recommend_seconds: f.histogram_vec(
                "recommendation_duration_seconds",
                "Time to compute a list, by kind: personal, trending, collaborative, content.",
                vec![0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
                &["kind"],
            )?,
        })
    }
}
