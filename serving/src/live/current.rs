//! [`LiveModel`]: the engine serving answers from, the per-event online updates, the model's
//! version and rolling errors.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use arc_swap::ArcSwap;
use model::{Engine, OnlineConfig, OnlineModel, Rating, Update};
use schemas::recommend::{HoldoutMetrics, ModelInfo, RetrainReport};
use tokio::sync::Notify;

use super::{LiveMetrics, Movies, snapshot};

/// Rating events kept to re-apply to a freshly trained model: the ones the store may not have
/// had when the retrain read it. Older events are in the store by then unless the store's
/// consumer lags by more than this.
const JOURNAL: usize = 1_000_000;

/// Weight of the newest error in the rolling prequential RMSE/MAE (about the last 10k events).
const ROLLING: f64 = 1e-4;

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

/// The single writer's state: taken while events are applied, while a new model is swapped
/// in and while a snapshot is copied, so those three never interleave.
#[derive(Debug, Default)]
struct Writer {
    journal: VecDeque<Rating>,
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
    /// Bumped each time `movies` is replaced (caches of answers holding titles check it).
    catalogue: AtomicU64,
    lineage: RwLock<Lineage>,
    writer: Mutex<Writer>,
    online_config: OnlineConfig,
    applied: AtomicU64,
    /// The newest rating time applied (Unix seconds; 0 before any): the stream's clock.
    stream_time: AtomicI64,
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
            catalogue: AtomicU64::new(0),
            lineage: RwLock::new(lineage),
            writer: Mutex::new(Writer { offsets, ..Writer::default() }),
            online_config,
            applied: AtomicU64::new(0),
            stream_time: AtomicI64::new(0),
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

    /// The stream's clock: the newest rating time applied, or `now` before any (a replay of
    /// old ratings runs on their time, so outcome windows are measured in it).
    pub fn stream_time(&self, now: i64) -> i64 {
        match self.stream_time.load(Ordering::Relaxed) {
            0 => now,
            t => t,
        }
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
        let before = self.movies.swap(movies.clone());
        // Movies are only ever added: a reload that found none new (the stream reloads when
        // events name unknown movies) keeps the kept lists.
        if before.len() != movies.len() {
            self.catalogue.fetch_add(1, Ordering::Release);
        }
        movies
    }

    /// How many times the catalogue was replaced since start: answers built from an older
    /// one may name a movie differently or miss one.
    pub fn catalogue_generation(&self) -> u64 {
        self.catalogue.load(Ordering::Acquire)
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
    pub fn apply(&self, events: &[Rating], offsets: &[(i32, i64)]) {
        let mut w = self.writer();
        let engine = self.engine.load();
        let online = engine.online();
        let (mut applied, mut duplicate, mut outdated, mut invalid) = (0u64, 0u64, 0u64, 0u64);
        for &event in events {
            match online.update(event.user, event.item, event.value, event.timestamp) {
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
            w.journal.push_back(event);
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
        if let Some(newest) = events.iter().map(|e| e.timestamp).max() {
            self.stream_time.fetch_max(newest, Ordering::Relaxed);
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

    /// Whether `movie` is in the catalogue in memory, the one the stream and `POST /ratings`
    /// (through [`Self::movies_with`]) both check.
    pub fn knows_movie(&self, movie: i64) -> bool {
        self.movies.load().contains(movie)
    }

    /// The catalogue in memory with `movie` in it, if the movie exists: a movie imported since
    /// the catalogue was loaded reloads it from `store`; only a movie it does not know costs a
    /// query.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn movies_with(
        &self,
        store: &store::Store,
        movie: i64,
    ) -> Result<Option<Arc<Movies>>, store::StoreError> {
        let movies = self.movies();
        if movies.contains(movie) {
            return Ok(Some(movies));
        }
        if store.movie(movie).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(self.replace_movies(Movies::load(store).await?)))
    }

    /// Counts events the stream skipped before the model (unknown movie, undecodable).
    pub fn skipped(&self, outcome: &str, n: u64) {
        self.metrics.updates.with_label_values(&[outcome]).inc_by(n);
    }

    /// Replaces the engine: first re-applies the journal of recent events to it (those the
    /// store may have missed when the retrain read it), then swaps it in atomically.
    pub fn swap(&self, engine: Engine, mut lineage: Lineage, movies: Option<Movies>) -> u64 {
        let w = self.writer();
        for r in &w.journal {
            let _ = engine.online().update(r.user, r.item, r.value, r.timestamp);
        }
        let version = {
            let mut current = self.lineage.write().unwrap_or_else(PoisonError::into_inner);
            lineage.version = current.version + 1;
            *current = lineage.clone();
            lineage.version
        };
        if let Some(movies) = movies {
            self.movies.store(Arc::new(movies));
            self.catalogue.fetch_add(1, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::live::movies::MovieInfo;

    fn movies(n: i64) -> Movies {
        let info = |i: i64| MovieInfo { title: format!("Movie {i} (2000)"), genres: "Drama".into() };
        Movies::build((1..=n).map(|i| (i, info(i))), &HashMap::new())
    }

    #[test]
    fn the_catalogue_generation_moves_only_when_a_reload_found_new_movies() {
        let config = OnlineModel::builder().build().unwrap();
        let engine = LiveModel::empty_engine(&config, &movies(2));
        let lineage = Lineage { version: 0, trained_at: None, training_ratings: 0, holdout: None };
        let metrics = LiveMetrics::register(&prometheus::Registry::new());
        let live = LiveModel::new(engine, movies(2), lineage, BTreeMap::new(), config, 0, metrics);
        assert_eq!(live.catalogue_generation(), 0);
        live.replace_movies(movies(2));
        assert_eq!(live.catalogue_generation(), 0, "nothing new: kept lists stay valid");
        live.replace_movies(movies(3));
        assert_eq!((live.catalogue_generation(), live.movies().len()), (1, 3));
    }
}
