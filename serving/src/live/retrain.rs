//! The batch job: read every rating from the store and run the recommender pipeline
//! ([`model::Recompute::run`]: fit every batch model, check it on a holdout) off the async
//! runtime, then swap the candidate in only if it is not worse than the current model on the
//! holdout, in rating error (RMSE) and in ranking (NDCG@10).
//!
//! The new online model starts from the batch MF factors; the held-out ratings are then
//! learned as events, and [`LiveModel::swap`] re-applies the recent stream (events the store
//! may not have had yet), so nothing the old model learned is lost.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use model::{Engine, Rating, Recompute, Verdict};
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
    /// Retrain when the service starts without a snapshot to restore. Off only where nothing
    /// asks for personal lists (the catalogue API suites): the model then knows no stored
    /// rating until the first retrain.
    pub on_startup: bool,
    /// The pipeline: what is fitted (top-N model, batch MF, SVD, popularity, similarity) and
    /// what is held out to check it.
    pub pipeline: Recompute,
    /// MLflow tracking URI: each retrain's record is also logged there as a run.
    pub mlflow_uri: Option<String>,
}

impl Default for RetrainSettings {
    fn default() -> Self {
        Self {
            interval: Some(Duration::from_secs(3600)),
            every_ratings: 100_000,
            on_startup: true,
            pipeline: Recompute::builder().build().expect("the default pipeline is valid"),
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

/// The model name of retrain experiment records: the top-N model and the rating predictor.
pub const RETRAIN_MODEL: &str = "ease-rerank+mf";

/// Runs retrains and snapshots for one [`LiveModel`].
#[derive(Debug)]
pub struct Retrainer {
    live: Arc<LiveModel>,
    store: Store,
    settings: RetrainSettings,
    snapshots: Option<SnapshotSettings>,
    /// One save at a time: a slow save (a new top-N model to write) must not finish after,
    /// and so shadow, a later save that exported newer state.
    saving: tokio::sync::Mutex<()>,
}

/// A trained candidate.
struct Candidate {
    engine: Engine,
    movies: Movies,
    holdout: Option<HoldoutMetrics>,
    /// The holdout as the gate reads it.
    report: Option<model::HoldoutReport>,
    training_ratings: u64,
    data: DataFingerprint,
    fit_seconds: f64,
}

fn holdout_metrics(h: model::HoldoutReport) -> HoldoutMetrics {
    HoldoutMetrics {
        rmse: h.rmse,
        mae: h.mae,
        mean_rmse: Some(h.mean_rmse),
        ratings: h.ratings,
        ndcg_at_10: h.ndcg_at_10,
        hit_rate_at_10: h.hit_rate_at_10,
        popularity_ndcg_at_10: h.popularity_ndcg_at_10,
        ranking_users: h.ranking_users,
    }
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
    let training_ratings = rows.len() as u64;
    let published = s.pipeline.run(rows.into_iter().map(Rating::from).collect())?;
    let report = published.holdout;
    let holdout = report.map(holdout_metrics);
    let engine = published.engine(config.clone(), Arc::new(movies.content().clone()))?;
    let fit_seconds = started.elapsed().as_secs_f64();
    Ok(Candidate { engine, movies, holdout, report, training_ratings, data, fit_seconds })
}

impl Retrainer {
    /// A retrainer for `live` reading from `store`.
    pub fn new(
        live: Arc<LiveModel>,
        store: Store,
        settings: RetrainSettings,
        snapshots: Option<SnapshotSettings>,
    ) -> Self {
        Self { live, store, settings, snapshots, saving: tokio::sync::Mutex::new(()) }
    }

    /// The model it retrains.
    pub fn live(&self) -> &Arc<LiveModel> {
        &self.live
    }

    /// When and how it retrains.
    pub fn settings(&self) -> &RetrainSettings {
        &self.settings
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
            Ok(Some(mut c)) => {
                report.training_ratings = c.training_ratings;
                report.holdout = c.holdout;
                // Nothing held out: nothing to judge by.
                let serving_nothing = self.live.lineage().version == 0;
                let verdict = c.report.map_or(Verdict::Accept, |h| h.verdict(serving_nothing));
                // Only retrains swap models, one at a time: an accepted candidate becomes the
                // next version, and its record says so before the swap makes it visible.
                let kept_out = matches!(verdict, Verdict::KeepOut(_));
                let next = (!kept_out).then(|| self.live.lineage().version + 1);
                self.record(&c, started_at, trigger, next).await;
                match verdict {
                    Verdict::KeepOut(reason) => report.reason = Some(reason),
                    Verdict::ListsLose(reason) => {
                        c.engine = c.engine.without_personal_lists();
                        report.reason = Some(format!(
                            "{reason}: swapped in with popularity lists for everyone (nothing served yet)"
                        ));
                    }
                    Verdict::Accept => {}
                }
                if !kept_out {
                    let lineage = Lineage {
                        version: 0,
                        trained_at: Some(report.finished_at),
                        training_ratings: c.training_ratings,
                        holdout: c.holdout,
                    };
                    let version = self.live.swap(c.engine, lineage, Some(c.movies));
                    debug_assert_eq!(Some(version), next, "the recorded version");
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

    /// Writes the experiment record of a trained candidate to the store, with the model
    /// version it becomes (`null` when it is kept out).
    async fn record(&self, c: &Candidate, started_at: i64, trigger: &str, version: Option<u64>) {
        let s = &self.settings;
        let (mf, top_n, holdout) = (s.pipeline.mf(), s.pipeline.top_n(), s.pipeline.holdout());
        let sgd = mf.sgd();
        let mut record =
            ExperimentRecord::new(ExperimentKind::Retrain, "holdout", RETRAIN_MODEL, env!("CARGO_PKG_VERSION"));
        record.started_at = started_at;
        record.params = json!({
            "factors": mf.factors(), "epochs": mf.epochs(), "lr_bias": sgd.lr_bias, "lr_factor": sgd.lr_factor,
            "reg_bias": sgd.reg_bias, "reg_factor": sgd.reg_factor,
            "ease_lambda": top_n.ease.lambda, "ease_max_items": top_n.ease.max_items,
            "rerank_candidates": top_n.candidates, "rerank_trees": top_n.trees,
            "rerank_ensembles": top_n.ensembles, "holdout_users": holdout.users,
            "holdout_fraction": holdout.fraction, "trigger": trigger, "version": version,
        });
        record.data = c.data.snapshot("store");
        record.metrics = match c.holdout {
            Some(h) => json!({
                "rmse": h.rmse, "mae": h.mae, "mean_rmse": h.mean_rmse, "holdout_ratings": h.ratings, "ndcg@10": h.ndcg_at_10,
                "hr@10": h.hit_rate_at_10, "popularity_ndcg@10": h.popularity_ndcg_at_10,
                "ranking_users": h.ranking_users,
            }),
            None => json!({}),
        };
        record.fit_seconds = c.fit_seconds;
        if let Err(error) = self.store.record_experiment(&record).await {
            tracing::warn!(%error, "could not record the retrain");
        }
        if let Some(uri) = s.mlflow_uri.clone() {
            let logged = tokio::task::spawn_blocking(move || {
                let client = mlflow::MlflowClient::new(&uri)?;
                let experiment = client.experiment_id(&mlflow::experiment_name(&record))?;
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
        let _one_at_a_time = self.saving.lock().await;
        let live = self.live.clone();
        let path = tokio::task::spawn_blocking(move || {
            let (snap, engine) = live.export();
            let version = snap.lineage.version;
            if let Some(top_n) = engine.top_n()
                && !snapshot::has_top_n(&s.dir, version)
            {
                snapshot::save_top_n(&s.dir, version, &top_n.export()?)?;
            }
            snapshot::save(&s.dir, &s.topic, snap)
        })
        .await??;
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
