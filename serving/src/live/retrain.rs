//! The batch job: read every rating from the store, fit the batch models off the async
//! runtime, check them on a holdout, and swap them in only if they are not worse.
//!
//! The new online model starts from the batch MF factors; the held-out ratings are then
//! learned as events, and [`LiveModel::swap`] re-applies the recent stream (events the store
//! may not have had yet), so nothing the old model learned is lost.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use model::{BiasedMf, Engine, ItemSimilarity, OnlineModel, Popularity, Ratings, Recommender};
use schemas::events::unix_now;
use schemas::experiments::{DataFingerprint, ExperimentKind, ExperimentRecord};
use schemas::recommend::{HoldoutMetrics, RetrainReport};
use serde_json::json;
use store::Store;
use tokio_util::sync::CancellationToken;

use super::snapshot;
use super::{Lineage, LiveModel, Movies};

/// When and how to retrain.
#[derive(Debug, Clone)]
pub struct RetrainSettings {
    /// Retrain this often (`None`: only on ratings count or admin request).
    pub interval: Option<Duration>,
    /// Retrain after this many new rating events (0: never on count).
    pub every_ratings: u64,
    /// Fraction of ratings held out to check a candidate (default 0.02).
    pub holdout: f64,
    /// A candidate is swapped in unless its holdout RMSE exceeds the current model's by more
    /// than this fraction (default 0.02: the data changed between the two holdouts).
    pub tolerance: f64,
    /// Batch MF hyper-parameters.
    pub mf: BiasedMf,
    /// Trending/popularity hyper-parameters.
    pub popularity: Popularity,
    /// Support damping of item–item similarity.
    pub similarity_shrink: f32,
    /// MLflow tracking URI: each retrain's record is also logged there as a run.
    pub mlflow_uri: Option<String>,
}

impl Default for RetrainSettings {
    fn default() -> Self {
        Self {
            interval: Some(Duration::from_secs(3600)),
            every_ratings: 100_000,
            holdout: 0.02,
            tolerance: 0.02,
            mf: BiasedMf::builder().build().expect("default MF settings are valid"),
            popularity: Popularity::builder().positive_threshold(4.0).build().expect("valid popularity settings"),
            similarity_shrink: 20.0,
            mlflow_uri: None,
        }
    }
}

/// Where snapshots go.
#[derive(Debug, Clone)]
pub struct SnapshotSettings {
    /// The snapshot directory.
    pub dir: PathBuf,
    /// The ratings topic the offsets belong to.
    pub topic: String,
    /// Save this often when events arrived since the last save.
    pub interval: Duration,
}

/// Runs retrains and snapshots for one [`LiveModel`].
#[derive(Debug)]
pub struct Retrainer {
    live: Arc<LiveModel>,
    store: Store,
    settings: RetrainSettings,
    snapshots: Option<SnapshotSettings>,
}

/// A trained candidate.
struct Candidate {
    engine: Engine,
    movies: Movies,
    holdout: Option<HoldoutMetrics>,
    training_ratings: u64,
    data: DataFingerprint,
    fit_seconds: f64,
}

/// Whether a rating is held out: a fixed hash of the pair, so the same rating is always on the
/// same side and successive retrains see comparable holdouts.
fn held_out(user: i64, movie: i64, fraction: f64) -> bool {
    let mut x = (user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (movie as u64);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x as f64 / u64::MAX as f64) < fraction
}

fn train(
    rows: Vec<(i64, i64, f32, i64)>,
    movies: Movies,
    config: &model::OnlineConfig,
    s: &RetrainSettings,
) -> Result<Candidate, model::ModelError> {
    let started = Instant::now();
    let mut data = DataFingerprint::new();
    for &(u, m, r, t) in &rows {
        data.add(u, m, f64::from(r), t);
    }
    let (mut held, fit): (Vec<_>, Vec<_>) = rows.iter().partition(|r| held_out(r.0, r.1, s.holdout));
    // Too little data to hold any out: train on all of it.
    if fit.is_empty() {
        held.clear();
    }
    let fit = if fit.is_empty() { rows.clone() } else { fit };
    let ratings = Ratings::from_rows(fit)?;
    let mf = s.mf.fit(&ratings)?;
    let holdout = (!held.is_empty()).then(|| {
        let (mut se, mut ae) = (0f64, 0f64);
        for &(u, m, r, _) in &held {
            let e = f64::from(mf.predict(u, m) - r);
            se += e * e;
            ae += e.abs();
        }
        let n = held.len() as f64;
        HoldoutMetrics { rmse: (se / n).sqrt(), mae: ae / n, ratings: held.len() as u64 }
    });
    let online = OnlineModel::from_batch(config.clone(), &mf, &ratings)?;
    held.sort_by_key(|r| r.3);
    for &(u, m, r, t) in &held {
        let _ = online.update(u, m, r, t);
    }
    let counts = ratings.item_counts();
    let similarity =
        ItemSimilarity::from_factors(ratings.item_ids().clone(), mf.item_factors(), Some(&counts), s.similarity_shrink);
    let training_ratings = rows.len() as u64;
    let popularity = s.popularity.fit(&Ratings::from_rows(rows)?)?;
    let engine = Engine::from_parts(
        online,
        Some(Arc::new(popularity)),
        Some(Arc::new(similarity)),
        Arc::new(movies.content().clone()),
    );
    Ok(Candidate { engine, movies, holdout, training_ratings, data, fit_seconds: started.elapsed().as_secs_f64() })
}

impl Retrainer {
    /// A retrainer for `live` reading from `store`.
    pub fn new(
        live: Arc<LiveModel>,
        store: Store,
        settings: RetrainSettings,
        snapshots: Option<SnapshotSettings>,
    ) -> Self {
        Self { live, store, settings, snapshots }
    }

    /// The model it retrains.
    pub fn live(&self) -> &Arc<LiveModel> {
        &self.live
    }

    /// Starts a retrain in the background unless one is running (`false` then).
    pub fn request(self: &Arc<Self>, trigger: &'static str) -> bool {
        if !self.live.begin_retrain() {
            return false;
        }
        let me = self.clone();
        tokio::spawn(async move { me.run_begun(trigger).await });
        true
    }

    /// Retrains now and waits for it; `None` if one was already running.
    pub async fn retrain(&self, trigger: &'static str) -> Option<RetrainReport> {
        if !self.live.begin_retrain() {
            return None;
        }
        Some(self.run_begun(trigger).await)
    }

    async fn run_begun(&self, trigger: &'static str) -> RetrainReport {
        let started = Instant::now();
        let started_at = unix_now();
        let outcome = self.candidate().await;
        let seconds = started.elapsed().as_secs_f64();
        let metrics = self.live.metrics();
        metrics.retrain_seconds.observe(seconds);
        let mut report = RetrainReport {
            accepted: false,
            reason: None,
            trigger: trigger.to_owned(),
            finished_at: unix_now(),
            seconds,
            training_ratings: 0,
            holdout: None,
        };
        let mut failed = false;
        match outcome {
            Ok(None) => report.reason = Some("no ratings in the store yet".into()),
            Ok(Some(c)) => {
                report.training_ratings = c.training_ratings;
                report.holdout = c.holdout;
                self.record(&c, started_at, trigger).await;
                let current = self.live.lineage().holdout;
                let worse = match (c.holdout, current) {
                    (Some(new), Some(old)) => new.rmse > old.rmse * (1.0 + self.settings.tolerance),
                    _ => false,
                };
                if worse {
                    report.reason = Some(format!(
                        "holdout RMSE {:.4} is worse than the current model's {:.4}",
                        c.holdout.map_or(0.0, |h| h.rmse),
                        current.map_or(0.0, |h| h.rmse)
                    ));
                } else {
                    let lineage = Lineage {
                        version: 0,
                        trained_at: Some(report.finished_at),
                        training_ratings: c.training_ratings,
                        holdout: c.holdout,
                    };
                    let version = self.live.swap(c.engine, lineage, Some(c.movies));
                    report.accepted = true;
                    tracing::info!(version, trigger, seconds, holdout = ?c.holdout, "new model swapped in");
                }
            }
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), trigger, "retrain failed");
                report.reason = Some(format!("failed: {error:#}"));
                failed = true;
            }
        }
        let outcome = match (report.accepted, failed) {
            (true, _) => "accepted",
            (false, true) => "failed",
            (false, false) => "rejected",
        };
        metrics.retrains.with_label_values(&[outcome]).inc();
        if !report.accepted {
            tracing::info!(trigger, reason = report.reason.as_deref().unwrap_or(""), "retrain kept out");
        }
        self.live.end_retrain(report.clone());
        if report.accepted
            && let Err(error) = self.save_snapshot().await
        {
            tracing::warn!(error = format!("{error:#}"), "could not save a snapshot after the retrain");
        }
        report
    }

    /// Writes the experiment record of a trained candidate (accepted or not) to the store.
    async fn record(&self, c: &Candidate, started_at: i64, trigger: &str) {
        let s = &self.settings;
        let sgd = s.mf.sgd();
        let mut record = ExperimentRecord::new(ExperimentKind::Retrain, "holdout", "mf", env!("CARGO_PKG_VERSION"));
        record.started_at = started_at;
        record.params = json!({
            "factors": s.mf.factors(), "epochs": s.mf.epochs(), "lr_bias": sgd.lr_bias, "lr_factor": sgd.lr_factor,
            "reg_bias": sgd.reg_bias, "reg_factor": sgd.reg_factor, "holdout": s.holdout, "trigger": trigger,
        });
        record.data = c.data.snapshot("store");
        record.metrics = match c.holdout {
            Some(h) => json!({"rmse": h.rmse, "mae": h.mae, "holdout_ratings": h.ratings}),
            None => json!({}),
        };
        record.fit_seconds = c.fit_seconds;
        if let Err(error) = self.store.record_experiment(&record).await {
            tracing::warn!(%error, "could not record the retrain");
        }
        if let Some(uri) = s.mlflow_uri.clone() {
            let logged = tokio::task::spawn_blocking(move || {
                let client = evaluate::mlflow::MlflowClient::new(&uri)?;
                let experiment = client.experiment_id(&evaluate::mlflow::experiment_name(&record))?;
                client.log_record(&experiment, &record)
            })
            .await;
            match logged {
                Ok(Ok(run)) => tracing::info!(run, "retrain logged to MLflow"),
                Ok(Err(error)) => tracing::warn!(%error, "could not log the retrain to MLflow"),
                Err(error) => tracing::warn!(%error, "MLflow logging task"),
            }
        }
    }

    async fn candidate(&self) -> anyhow::Result<Option<Candidate>> {
        let (rows, movies) = tokio::try_join!(self.store.all_ratings(), Movies::load(&self.store))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let config = self.live.online_config().clone();
        let settings = self.settings.clone();
        let candidate = tokio::task::spawn_blocking(move || train(rows, movies, &config, &settings)).await??;
        Ok(Some(candidate))
    }

    /// Saves a snapshot now, if snapshots are configured.
    ///
    /// # Errors
    /// The snapshot could not be written.
    pub async fn save_snapshot(&self) -> anyhow::Result<Option<PathBuf>> {
        let Some(s) = self.snapshots.clone() else { return Ok(None) };
        let live = self.live.clone();
        let path = tokio::task::spawn_blocking(move || snapshot::save(&s.dir, &s.topic, live.export())).await??;
        tracing::info!(path = %path.display(), "model snapshot saved");
        Ok(Some(path))
    }

    /// Runs the schedule until `shutdown`: retrains on the interval and after `every_ratings`
    /// new events (admin requests go through [`Self::request`]); saves snapshots on their
    /// interval when events arrived.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let never = Duration::from_secs(365 * 86_400);
        let mut retrain_tick = tokio::time::interval(self.settings.interval.unwrap_or(never));
        retrain_tick.reset();
        let snapshot_every = self.snapshots.as_ref().map_or(never, |s| s.interval);
        let mut snapshot_tick = tokio::time::interval(snapshot_every);
        snapshot_tick.reset();
        let mut saved_at = self.live.events_applied();
        loop {
            let trigger = tokio::select! {
                () = shutdown.cancelled() => break,
                _ = retrain_tick.tick() => "schedule",
                () = self.live.retrain_due() => "ratings",
                _ = snapshot_tick.tick() => {
                    let applied = self.live.events_applied();
                    if applied != saved_at {
                        match self.save_snapshot().await {
                            Ok(_) => saved_at = applied,
                            Err(error) => tracing::warn!(error = format!("{error:#}"), "could not save a snapshot"),
                        }
                    }
                    continue;
                }
            };
            self.retrain(trigger).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holdout_is_a_stable_fraction_of_pairs() {
        let n = (1..=200).flat_map(|u| (1..=500).map(move |m| (u, m))).filter(|&(u, m)| held_out(u, m, 0.02)).count();
        let share = n as f64 / 100_000.0;
        assert!((0.015..0.025).contains(&share), "{share}");
        assert_eq!(held_out(7, 11, 0.02), held_out(7, 11, 0.02));
        assert!(!held_out(7, 11, 0.0));
    }
}
