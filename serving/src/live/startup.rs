//! Opening the live model (from the newest snapshot, or empty) and running its jobs.

use std::collections::BTreeMap;
use std::sync::Arc;

use model::{Engine, OnlineModel};
use prometheus::Registry;

use super::{Lineage, LiveMetrics, LiveModel, LiveSettings, Movies, retrain, snapshot, stream};

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
    /// retrain unless the model was restored or start-up retrains are off), then saves a last
    /// snapshot.
    pub fn spawn(&self, shutdown: tokio_util::sync::CancellationToken) -> tokio::task::JoinHandle<()> {
        let (model, retrainer, stream, start, store) =
            (self.model.clone(), self.retrainer.clone(), self.stream.clone(), self.start.clone(), self.store.clone());
        if !self.restored {
            if retrainer.settings().on_startup {
                retrainer.request("startup");
            }
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
                    let sink = Arc::new(stream::LiveFollower { model, store });
                    if let Err(error) = consumer::follow::follow(sink, s, start, shutdown).await {
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
