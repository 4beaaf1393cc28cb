//! The state every handler receives: cheap to clone, all `Arc`s inside.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use schemas::Analytics;
use secrecy::SecretString;
use store::Store;
use tokio::sync::Mutex;

use crate::ab::Experiments;
use crate::ab::impressions::ImpressionLog;
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
    pub api_key: Option<SecretString>,
    /// The live recommender.
    pub live: Arc<LiveModel>,
    /// Its retrain job (`POST /model/retrain`).
    pub retrainer: Arc<Retrainer>,
    /// A/B experiments: the running one and the admin operations.
    pub experiments: Arc<Experiments>,
    /// Where every served list is logged; `None` without a broker or with the topic disabled.
    pub impressions: Option<Arc<ImpressionLog>>,
}

/// The Kafka producer and topic behind `POST /ratings`.
#[derive(Clone)]
pub struct Ingest {
    /// Idempotent producer (cheap to clone: an `Arc` inside).
    pub producer: rdkafka::producer::FutureProducer,
    /// The ratings topic.
    pub topic: Arc<str>,
    /// The demo's journal: each rating is on disk here before its 202 (see [`crate::journal`]).
    pub journal: Option<Arc<crate::journal::Journal>>,
}

/// A value recomputed at most once per `ttl`, never served older than twice `ttl`. A value
/// between one and two TTLs old is served while one background task recomputes it
/// (stale-while-revalidate); an older one (after an idle spell) or none at all is recomputed
/// while the caller waits, one computation at a time, so an answer is never more than
/// `2 × ttl` behind the store.
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

    /// The cached value; when it is older than the TTL a background refresh is started, and
    /// when older than twice the TTL it is recomputed before answering.
    ///
    /// # Errors
    /// Whatever a computation the caller waits for fails with (background failures keep the
    /// stale value and are logged).
    pub async fn get<E, F, Fut>(self: &Arc<Self>, compute: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        if let Some((at, value)) = self.current() {
            let age = at.elapsed();
            if age < self.ttl {
                return Ok(value);
            }
            if age < self.ttl * 2 {
                if !self.refreshing.swap(true, Ordering::AcqRel) {
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
        }
        let waited = Instant::now();
        let _only_one = self.first.lock().await;
        // Another caller may have computed it while this one waited for the lock.
        if let Some((at, value)) = self.current()
            && at >= waited
        {
            return Ok(value);
        }
        let value = Arc::new(compute().await?);
        self.set(value.clone());
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    /// A cache of the number of computations so far.
    async fn get(cache: &Arc<Cached<u32>>, computed: &Arc<AtomicU32>) -> u32 {
        let computed = computed.clone();
        let value = cache
            .get(move || async move { Ok::<_, std::convert::Infallible>(computed.fetch_add(1, Ordering::SeqCst) + 1) })
            .await;
        *value.unwrap()
    }

    // Real time (no paused clock in this build): only checks that load cannot make fail.
    #[tokio::test]
    async fn a_value_is_never_served_older_than_twice_the_ttl() {
        let (cache, computed) = (Arc::new(Cached::new(Duration::from_millis(100))), Arc::new(AtomicU32::new(0)));
        assert_eq!(get(&cache, &computed).await, 1);
        // An idle spell three times over the bound: recomputed before answering, not served.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(get(&cache, &computed).await, 2, "too stale: recomputed before answering");
        assert_eq!(computed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_fresh_value_is_reused_and_a_zero_ttl_computes_every_time() {
        let (cache, computed) = (Arc::new(Cached::new(Duration::from_secs(3600))), Arc::new(AtomicU32::new(0)));
        assert_eq!(get(&cache, &computed).await, 1);
        assert_eq!(get(&cache, &computed).await, 1);
        let (cache, computed) = (Arc::new(Cached::new(Duration::ZERO)), Arc::new(AtomicU32::new(0)));
        assert_eq!(get(&cache, &computed).await, 1);
        assert_eq!(get(&cache, &computed).await, 2);
    }
}
