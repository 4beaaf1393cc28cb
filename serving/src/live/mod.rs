//! The live recommender inside serving: where a rating from the stream meets the model.
//!
//! - [`stream`]: a Kafka consumer of the ratings topic (all partitions, its own group) that
//!   hands each batch of events to [`LiveModel::apply`].
//! - [`LiveModel`]: the current [`Engine`] behind an `ArcSwap` (readers never see a half-built
//!   model), the per-event online updates, the model's version and holdout metrics.
//! - [`retrain`]: the batch job (schedule, every N ratings, or admin) that rebuilds the models
//!   from the store, checks them on a holdout and swaps them in.
//! - [`snapshot`]: the model and the Kafka offsets it includes, saved to disk, so a restart
//!   resumes instead of retraining.
//! - [`movies`]: titles, genres and the content index in memory.

pub mod movies;
pub mod retrain;
pub mod snapshot;
pub mod stream;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use arc_swap::ArcSwap;
use model::{Engine, OnlineConfig, OnlineModel, Update};
use prometheus::{Gauge, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use schemas::recommend::{HoldoutMetrics, ModelInfo, RetrainReport};
use tokio::sync::Notify;

pub use movies::Movies;

/// Rating events kept to re-apply to a freshly trained model: the ones the store may not have
/// had when the retrain read it. Older events are in the store by then unless the store's
/// consumer lags by more than this.
const JOURNAL: usize = 1_000_000;

/// Weight of the newest error in the rolling prequential RMSE/MAE (about the last 10k events).
const ROLLING: f64 = 1e-4;

/// One rating event as the model learns it: (userId, movieId, rating, timestamp).
pub type Event = (i64, i64, f32, i64);

/// What the model's batch part was trained on; kept in snapshots.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Lineage {
    /// Increases at every swap.
    pub version: u64,
    /// Unix seconds of the training; `None` before the first retrain.
    pub trained_at: Option<i64>,
    /// Ratings trained on.
    pub training_ratings: u64,
    /// Holdout error of the batch part.
    pub holdout: Option<HoldoutMetrics>,
}

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
        let gauge = |name: &str, help: &str| Gauge::with_opts(Opts::new(name, help)).expect("valid metric");
        let int_gauge = |name: &str, help: &str| IntGauge::with_opts(Opts::new(name, help)).expect("valid metric");
        let m = Self {
            updates: IntCounterVec::new(
                Opts::new("online_updates_total", "Rating events given to the online model, by outcome."),
                &["outcome"],
            )
            .expect("valid metric"),
            prequential_rmse: gauge(
                "online_prequential_rmse",
                "Rolling RMSE of the online model on events before it learns them (last ~10k events).",
            ),
            prequential_mae: gauge("online_prequential_mae", "Rolling MAE, as online_prequential_rmse."),
            version: int_gauge("model_version", "Version of the model serving answers from."),
            holdout_rmse: gauge("model_holdout_rmse", "Holdout RMSE of the current model's last retrain."),
            holdout_mae: gauge("model_holdout_mae", "Holdout MAE of the current model's last retrain."),
            retrains: IntCounterVec::new(
                Opts::new("model_retrains_total", "Batch retrains by outcome: accepted, rejected, failed."),
                &["outcome"],
            )
            .expect("valid metric"),
            retrain_seconds: Histogram::with_opts(
                HistogramOpts::new("model_retrain_duration_seconds", "Time to read, train and check a retrain.")
                    .buckets(prometheus::exponential_buckets(0.1, 2.0, 14).expect("valid buckets")),
            )
            .expect("valid metric"),
            users: int_gauge("model_users", "Users the live model knows."),
            movies: int_gauge("model_movies", "Movies the live model knows."),
            recommend_seconds: prometheus::HistogramVec::new(
                HistogramOpts::new(
                    "recommendation_duration_seconds",
                    "Time to compute a list, by kind: personal, trending, collaborative, content.",
                )
                .buckets(vec![0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05]),
                &["kind"],
            )
            .expect("valid metric"),
        };
        let families: [Box<dyn prometheus::core::Collector>; 11] = [
            Box::new(m.updates.clone()),
            Box::new(m.prequential_rmse.clone()),
            Box::new(m.prequential_mae.clone()),
            Box::new(m.version.clone()),
            Box::new(m.holdout_rmse.clone()),
            Box::new(m.holdout_mae.clone()),
            Box::new(m.retrains.clone()),
            Box::new(m.retrain_seconds.clone()),
            Box::new(m.users.clone()),
            Box::new(m.movies.clone()),
            Box::new(m.recommend_seconds.clone()),
        ];
        for f in families {
            registry.register(f).expect("unique metric names");
        }
        m
    }
}

/// The single writer's state: taken while events are applied, while a new model is swapped
/// in and while a snapshot is copied, so those three never interleave.
#[derive(Debug, Default)]
struct Writer {
    journal: VecDeque<Event>,
    /// Next offset to read per partition of the ratings topic.
    offsets: BTreeMap<i32, i64>,
    rolling_sq: f64,
    rolling_abs: f64,
    scored: u64,
}

/// The model serving answers from, updated by the stream and replaced by retrains.
pub struct LiveModel {
    engine: ArcSwap<Engine>,
    movies: ArcSwap<Movies>,
    lineage: RwLock<Lineage>,
    writer: Mutex<Writer>,
    online_config: OnlineConfig,
    applied: AtomicU64,
    since_swap: AtomicU64,
    since_retrain: AtomicU64,
    retrain_every: u64,
    /// Count persisted ratings (reported by an in-process store consumer) towards
    /// `retrain_every` instead of applied events: a retrain then always finds them in the store.
    count_persisted: AtomicBool,
    retraining: AtomicBool,
    last_retrain: RwLock<Option<RetrainReport>>,
    retrain_due: Notify,
    metrics: LiveMetrics,
}

impl std::fmt::Debug for LiveModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveModel").field("lineage", &self.lineage()).finish_non_exhaustive()
    }
}

impl LiveModel {
    /// A live model starting from `engine`. `retrain_every` > 0 asks for a retrain each time
    /// that many events were applied.
    pub fn new(
        engine: Engine,
        movies: Movies,
        lineage: Lineage,
        offsets: BTreeMap<i32, i64>,
        online_config: OnlineConfig,
        retrain_every: u64,
        metrics: LiveMetrics,
    ) -> Self {
        metrics.version.set(lineage.version as i64);
        if let Some(h) = lineage.holdout {
            metrics.holdout_rmse.set(h.rmse);
            metrics.holdout_mae.set(h.mae);
        }
        let me = Self {
            engine: ArcSwap::from_pointee(engine),
            movies: ArcSwap::from_pointee(movies),
            lineage: RwLock::new(lineage),
            writer: Mutex::new(Writer { offsets, ..Writer::default() }),
            online_config,
            applied: AtomicU64::new(0),
            since_swap: AtomicU64::new(0),
            since_retrain: AtomicU64::new(0),
            retrain_every,
            count_persisted: AtomicBool::new(false),
            retraining: AtomicBool::new(false),
            last_retrain: RwLock::new(None),
            retrain_due: Notify::new(),
            metrics,
        };
        me.refresh_sizes();
        me
    }

    /// An empty online model (no ratings yet).
    pub fn empty_engine(config: &OnlineConfig, movies: &Movies) -> Engine {
        Engine::from_parts(OnlineModel::new(config.clone()), None, None, Arc::new(movies.content().clone()))
    }

    /// The engine to answer from now (cheap: one atomic load).
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// The catalogue in memory.
    pub fn movies(&self) -> Arc<Movies> {
        self.movies.load_full()
    }

    /// Replaces the catalogue (movies imported since the last load); returns it.
    pub fn replace_movies(&self, movies: Movies) -> Arc<Movies> {
        let movies = Arc::new(movies);
        self.movies.store(movies.clone());
        movies
    }

    /// Settings of the online model (also for the models retrains build).
    pub fn online_config(&self) -> &OnlineConfig {
        &self.online_config
    }

    /// The Prometheus families.
    pub fn metrics(&self) -> &LiveMetrics {
        &self.metrics
    }

    /// What the current model was trained on.
    pub fn lineage(&self) -> Lineage {
        self.lineage.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next offset to read per partition.
    pub fn offsets(&self) -> BTreeMap<i32, i64> {
        self.writer().offsets.clone()
    }

    fn refresh_sizes(&self) {
        let engine = self.engine.load();
        self.metrics.users.set(engine.online().n_users() as i64);
        self.metrics.movies.set(engine.online().n_items() as i64);
    }

    /// Learns a batch of events (one SGD step each, replays recognised) and records the
    /// offsets they came from: `(partition, next offset)`.
    pub fn apply(&self, events: &[Event], offsets: &[(i32, i64)]) {
        let mut w = self.writer();
        let engine = self.engine.load();
        let online = engine.online();
        let (mut applied, mut duplicate, mut outdated, mut invalid) = (0u64, 0u64, 0u64, 0u64);
        for &(user, movie, rating, timestamp) in events {
            match online.update(user, movie, rating, timestamp) {
                Ok(Update::Applied { error, .. }) => {
                    applied += 1;
                    let e = f64::from(error);
                    let alpha = ROLLING.max(1.0 / (w.scored + 1) as f64);
                    w.rolling_sq += alpha * (e * e - w.rolling_sq);
                    w.rolling_abs += alpha * (e.abs() - w.rolling_abs);
                    w.scored += 1;
                }
                Ok(Update::Duplicate) => duplicate += 1,
                Ok(Update::Outdated) => outdated += 1,
                Err(_) => invalid += 1,
            }
            if w.journal.len() == JOURNAL {
                w.journal.pop_front();
            }
            w.journal.push_back((user, movie, rating, timestamp));
        }
        for &(partition, next) in offsets {
            w.offsets.insert(partition, next);
        }
        let (rmse, mae) = (w.rolling_sq.sqrt(), w.rolling_abs);
        drop(w);
        let m = &self.metrics;
        for (outcome, n) in
            [("applied", applied), ("duplicate", duplicate), ("outdated", outdated), ("invalid", invalid)]
        {
            if n > 0 {
                m.updates.with_label_values(&[outcome]).inc_by(n);
            }
        }
        if applied > 0 {
            m.prequential_rmse.set(rmse);
            m.prequential_mae.set(mae);
            self.refresh_sizes();
        }
        let n = events.len() as u64;
        self.applied.fetch_add(n, Ordering::Relaxed);
        self.since_swap.fetch_add(n, Ordering::Relaxed);
        if !self.count_persisted.load(Ordering::Relaxed) {
            self.count_towards_retrain(n);
        }
    }

    fn count_towards_retrain(&self, n: u64) {
        let since = self.since_retrain.fetch_add(n, Ordering::Relaxed) + n;
        if self.retrain_every > 0 && since >= self.retrain_every {
            self.retrain_due.notify_one();
        }
    }

    /// From now on, count ratings persisted by an in-process store consumer (reported with
    /// [`Self::persisted`]) towards `retrain_every`, not applied events.
    pub fn count_persisted_ratings(&self) {
        self.count_persisted.store(true, Ordering::Relaxed);
    }

    /// `n` ratings were committed to the store.
    pub fn persisted(&self, n: u64) {
        if self.count_persisted.load(Ordering::Relaxed) {
            self.count_towards_retrain(n);
        }
    }

    /// Counts events the stream skipped before the model (unknown movie, undecodable).
    pub fn skipped(&self, outcome: &str, n: u64) {
        self.metrics.updates.with_label_values(&[outcome]).inc_by(n);
    }

    /// Replaces the engine: first re-applies the journal of recent events to it (those the
    /// store may have missed when the retrain read it), then swaps it in atomically.
    pub fn swap(&self, engine: Engine, mut lineage: Lineage, movies: Option<Movies>) -> u64 {
        let w = self.writer();
        for &(user, movie, rating, timestamp) in &w.journal {
            let _ = engine.online().update(user, movie, rating, timestamp);
        }
        let version = {
            let mut current = self.lineage.write().unwrap_or_else(PoisonError::into_inner);
            lineage.version = current.version + 1;
            *current = lineage.clone();
            lineage.version
        };
        if let Some(movies) = movies {
            self.movies.store(Arc::new(movies));
        }
        self.engine.store(Arc::new(engine));
        self.since_swap.store(0, Ordering::Relaxed);
        drop(w);
        self.metrics.version.set(version as i64);
        if let Some(h) = lineage.holdout {
            self.metrics.holdout_rmse.set(h.rmse);
            self.metrics.holdout_mae.set(h.mae);
        }
        self.refresh_sizes();
        version
    }

    /// A consistent copy for a snapshot: the model, its lineage and the offsets it includes,
    /// taken while no event is being applied; and the engine it was taken from (whose top-N
    /// model belongs to the lineage's version).
    pub fn export(&self) -> (snapshot::Snapshot, Arc<Engine>) {
        let w = self.writer();
        let engine = self.engine.load_full();
        let snapshot = snapshot::Snapshot {
            lineage: self.lineage(),
            offsets: w.offsets.clone(),
            model: engine.online().export(),
            popularity: engine.popularity().map(model::PopularityModel::export),
        };
        (snapshot, engine)
    }

    /// Marks a retrain as started; `false` if one is already running.
    pub fn begin_retrain(&self) -> bool {
        let started = !self.retraining.swap(true, Ordering::AcqRel);
        if started {
            self.since_retrain.store(0, Ordering::Relaxed);
        }
        started
    }

    /// Marks the running retrain as finished with `report`.
    pub fn end_retrain(&self, report: RetrainReport) {
        *self.last_retrain.write().unwrap_or_else(PoisonError::into_inner) = Some(report);
        self.retraining.store(false, Ordering::Release);
    }

    /// Resolves when enough events arrived for a retrain (see `retrain_every`).
    pub async fn retrain_due(&self) {
        self.retrain_due.notified().await;
    }

    /// Events applied since the process started.
    pub fn events_applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// `GET /model`.
    pub fn info(&self) -> ModelInfo {
        let lineage = self.lineage();
        let engine = self.engine.load();
        let online = engine.online();
        let sgd = online.config().sgd();
        ModelInfo {
            version: lineage.version,
            algorithm: match engine.top_n() {
                Some(top_n) => format!(
                    "personal lists: EASE over the {} most-liked movies (λ {}) folding in each user's live history, \
                     its best {} re-ranked by {} gradient-boosted tree ensembles; rating predictions: online biased \
                     MF (SGD per event, lr {}, reg {}) re-based on batch biased MF at each retrain; trending \
                     popularity for cold users; item-item cosine over MF factors and genre/tag TF-IDF for similar \
                     movies",
                    top_n.ease().n_items(),
                    top_n.ease().lambda(),
                    top_n.candidates(),
                    top_n.ensembles(),
                    sgd.lr_factor,
                    sgd.reg_factor
                ),
                None => format!(
                    "personal lists and rating predictions: online biased MF (SGD per event, lr {}, reg {}) until \
                     the first retrain brings the top-N model; trending popularity for cold users; genre/tag \
                     TF-IDF and live factors for similar movies",
                    sgd.lr_factor, sgd.reg_factor
                ),
            },
            factors: online.factors() as u64,
            trained_at: lineage.trained_at,
            training_ratings: lineage.training_ratings,
            users: online.n_users() as u64,
            movies: online.n_items() as u64,
            holdout: lineage.holdout,
            events_since_trained: self.since_swap.load(Ordering::Relaxed),
            events_applied: self.events_applied(),
            retraining: self.retraining.load(Ordering::Acquire),
            last_retrain: self.last_retrain.read().unwrap_or_else(PoisonError::into_inner).clone(),
        }
    }
}

/// Everything the live model needs at start.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// The stream to follow; `None` serves the store's ratings only (updated by retrains).
    pub stream: Option<stream::StreamSettings>,
    /// Retrain schedule and hyper-parameters.
    pub retrain: retrain::RetrainSettings,
    /// Where snapshots go; `None` disables them (every start retrains).
    pub snapshot_dir: Option<std::path::PathBuf>,
    /// How often to save a snapshot when events arrived.
    pub snapshot_interval: std::time::Duration,
    /// Settings of the online model.
    pub online: OnlineConfig,
}

impl LiveSettings {
    /// Defaults: no stream, no snapshots, default retrain schedule and online model.
    pub fn new() -> Self {
        Self {
            stream: None,
            retrain: retrain::RetrainSettings::default(),
            snapshot_dir: None,
            snapshot_interval: std::time::Duration::from_secs(60),
            online: OnlineModel::builder().build().expect("default online settings are valid"),
        }
    }

    /// What snapshot offsets belong to: the brokers and the topic. Offsets of another
    /// cluster (e.g. a previous run's embedded broker) are not reused.
    fn topic(&self) -> String {
        self.stream
            .as_ref()
            .map_or_else(|| producer::topics::RATINGS.to_owned(), |s| format!("{}/{}", s.brokers, s.topic))
    }
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self::new()
    }
}

/// The live model with its jobs, ready to run.
#[derive(Debug)]
pub struct Live {
    /// The model handlers answer from.
    pub model: Arc<LiveModel>,
    /// Retrains and snapshots.
    pub retrainer: Arc<retrain::Retrainer>,
    stream: Option<stream::StreamSettings>,
    start: BTreeMap<i32, i64>,
    restored: bool,
    store: store::Store,
}

/// An engine around a restored online model: the cold-start parts are rebuilt from what it
/// learned (no retraining).
fn restored_engine(
    online: OnlineModel,
    popularity: Option<&model::PopularityState>,
    top_n: Option<model::RerankState>,
    movies: &Movies,
    settings: &retrain::RetrainSettings,
) -> Result<Engine, model::ModelError> {
    let popularity = match (popularity, online.ratings()) {
        (Some(state), _) => Some(Arc::new(model::PopularityModel::restore(state)?)),
        (None, Ok(r)) => Some(Arc::new(settings.pipeline.popularity().fit(&r)?)),
        (None, Err(_)) => None,
    };
    let similarity = (online.n_items() > 0).then(|| Arc::new(online.similarity(settings.pipeline.similarity_shrink())));
    let engine = Engine::from_parts(online, popularity, similarity, Arc::new(movies.content().clone()));
    Ok(match top_n {
        Some(state) => engine.with_top_n(Arc::new(model::RerankModel::restore(state)?)),
        None => engine,
    })
}

impl Live {
    /// Loads the catalogue and the newest snapshot (if any) and registers the metrics.
    ///
    /// # Errors
    /// The store cannot be read, or a snapshot's model cannot be restored.
    pub async fn open(settings: &LiveSettings, store: &store::Store, registry: &Registry) -> anyhow::Result<Self> {
        let movies = Movies::load(store).await?;
        let found = match &settings.snapshot_dir {
            Some(dir) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || snapshot::latest(&dir)).await??
            }
            None => None,
        };
        let metrics = LiveMetrics::register(registry);
        let every = settings.retrain.every_ratings;
        let (model, start, restored) = match found {
            Some((path, topic, snap)) => {
                let (config, retrain) = (settings.online.clone(), settings.retrain.clone());
                let snapshot::Snapshot { lineage, offsets, model, popularity } = snap;
                let (dir, version) = (settings.snapshot_dir.clone(), lineage.version);
                let (engine, movies) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                    let top_n = match dir {
                        Some(dir) => snapshot::read_top_n(&dir, version).unwrap_or_else(|error| {
                            tracing::warn!(error = format!("{error:#}"), "the top-N model does not read back");
                            None
                        }),
                        None => None,
                    };
                    let online = OnlineModel::restore(config, &model)?;
                    Ok(restored_engine(online, popularity.as_ref(), top_n, &movies, &retrain).map(|e| (e, movies))?)
                })
                .await??;
                let offsets = if topic == settings.topic() {
                    offsets
                } else {
                    tracing::warn!(
                        snapshot = topic,
                        now = settings.topic(),
                        "snapshot of another topic: reading from the start"
                    );
                    BTreeMap::new()
                };
                tracing::info!(path = %path.display(), version = lineage.version, "model restored from snapshot");
                let live =
                    LiveModel::new(engine, movies, lineage, offsets.clone(), settings.online.clone(), every, metrics);
                (live, offsets, true)
            }
            None => {
                let engine = LiveModel::empty_engine(&settings.online, &movies);
                let lineage = Lineage { version: 0, trained_at: None, training_ratings: 0, holdout: None };
                let live =
                    LiveModel::new(engine, movies, lineage, BTreeMap::new(), settings.online.clone(), every, metrics);
                (live, BTreeMap::new(), false)
            }
        };
        let model = Arc::new(model);
        let snapshots = settings.snapshot_dir.as_ref().map(|dir| retrain::SnapshotSettings {
            dir: dir.clone(),
            topic: settings.topic(),
            interval: settings.snapshot_interval,
        });
        let retrainer =
            Arc::new(retrain::Retrainer::new(model.clone(), store.clone(), settings.retrain.clone(), snapshots));
        Ok(Self { model, retrainer, stream: settings.stream.clone(), start, restored, store: store.clone() })
    }

    /// Whether the model came from a snapshot.
    pub fn restored(&self) -> bool {
        self.restored
    }

    /// Runs the stream follower and the retrain schedule until `shutdown` (starting with a
    /// retrain unless the model was restored), then saves a last snapshot.
    pub fn spawn(&self, shutdown: tokio_util::sync::CancellationToken) -> tokio::task::JoinHandle<()> {
        let (model, retrainer, stream, start, store) =
            (self.model.clone(), self.retrainer.clone(), self.stream.clone(), self.start.clone(), self.store.clone());
        if !self.restored {
            retrainer.request("startup");
        } else if self.model.lineage().version > 0 && self.model.engine().top_n().is_none() {
            // A snapshot whose top-N model was lost: lists come from the live factors until
            // this retrain brings a new one.
            tracing::warn!("restored without the top-N model: retraining");
            retrainer.request("restore");
        }
        tokio::spawn(async move {
            let follower = stream.map(|s| {
                let (model, shutdown) = (model.clone(), shutdown.clone());
                tokio::spawn(async move {
                    if let Err(error) = stream::follow(model, store, s, start, shutdown).await {
                        tracing::error!(error = format!("{error:#}"), "the stream follower stopped");
                    }
                })
            });
            retrainer.clone().run(shutdown).await;
            if let Some(f) = follower {
                let _ = f.await;
            }
            if let Err(error) = retrainer.save_snapshot().await {
                tracing::warn!(error = format!("{error:#}"), "could not save the last snapshot");
            }
        })
    }
}
