//! The state every handler receives: cheap to clone, all `Arc`s inside.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use schemas::Analytics;
use store::Store;
use tokio::sync::Mutex;

use crate::cache::{ListCache, ResponseCache};
use crate::charts::Charts;
use crate::live::LiveModel;
use crate::live::retrain::Retrainer;
use crate::metrics::Metrics;
use crate::ui::posters::Posters;

/// Shared handles for handlers.
#[derive(Clone)]
pub struct AppState {
    /// The catalogue database.
    pub store: Store,
    /// Prometheus families.
    pub metrics: Arc<Metrics>,
    /// Analytics scan every rating, so they are computed at most once per TTL.
    pub analytics: Arc<Cached<Analytics>>,
    /// The web interface's chart figures, refreshed in the background like `analytics`.
    pub charts: Arc<Cached<Charts>>,
    /// Movie posters (generated, or looked up at TMDb/OMDb once per movie).
    pub posters: Arc<Posters>,
    /// Recent answers of catalogue reads.
    pub responses: Arc<ResponseCache>,
    /// Recent recommendation lists (see [`ListCache`]).
    pub lists: Arc<ListCache>,
    /// Where `POST /ratings` produces events; `None` when no broker is configured.
    pub ingest: Option<Ingest>,
    /// Write endpoints require this key in `x-api-key` when set.
    pub api_key: Option<Arc<str>>,
    /// The live recommender.
    pub live: Arc<LiveModel>,
    /// Its retrain job (`POST /model/retrain`).
    pub retrainer: Arc<Retrainer>,
}

/// The Kafka producer and topic behind `POST /ratings`.
#[derive(Clone)]
pub struct Ingest {
    /// Idempotent producer (cheap to clone: an `Arc` inside).
    pub producer: rdkafka::producer::FutureProducer,
    /// The ratings topic.
    pub topic: Arc<str>,
}

/// A value recomputed at most once per `ttl`. Once a value exists, callers never wait: a
/// stale value is served while one background task recomputes it (stale-while-revalidate).
/// Only the very first computation is awaited, by one caller at a time.
pub struct Cached<T> {
    ttl: Duration,
    value: RwLock<Option<(Instant, Arc<T>)>>,
    refreshing: AtomicBool,
    first: Mutex<()>,
}

impl<T: Send + Sync + 'static> Cached<T> {
    /// An empty cache.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, value: RwLock::new(None), refreshing: AtomicBool::new(false), first: Mutex::new(()) }
    }

    fn current(&self) -> Option<(Instant, Arc<T>)> {
        self.value.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set(&self, value: Arc<T>) {
        *self.value.write().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), value));
    }

    /// The cached value; when it is older than the TTL a background refresh is started.
    ///
    /// # Errors
    /// Whatever the first `compute` fails with (later failures keep the stale value and are
    /// logged).
    pub async fn get<E, F, Fut>(self: &Arc<Self>, compute: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        if let Some((at, value)) = self.current() {
            if at.elapsed() >= self.ttl && !self.refreshing.swap(true, Ordering::AcqRel) {
                let this = self.clone();
                tokio::spawn(async move {
                    match compute().await {
                        Ok(fresh) => this.set(Arc::new(fresh)),
                        Err(error) => {
                            tracing::warn!(%error, "background refresh failed; serving the stale value")
                        }
                    }
                    this.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(value);
        }
        let _only_one = self.first.lock().await;
        if let Some((_, value)) = self.current() {
            return Ok(value);
        }
        let value = Arc::new(compute().await?);
        self.set(value.clone());
        Ok(value)
    }
}
