//! The state every handler receives: cheap to clone, all `Arc`s inside.

use std::sync::Arc;
use std::time::{Duration, Instant};

use schemas::Analytics;
use store::Store;
use tokio::sync::Mutex;

use crate::metrics::Metrics;

/// Shared handles for handlers.
#[derive(Clone)]
pub struct AppState {
    /// The catalogue database.
    pub store: Store,
    /// Prometheus families.
    pub metrics: Arc<Metrics>,
    /// Analytics scan every rating, so they are computed at most once per TTL.
    pub analytics: Arc<Cached<Analytics>>,
    /// Write endpoints require this key in `x-api-key` when set.
    pub api_key: Option<Arc<str>>,
}

/// A value recomputed at most once per `ttl`; concurrent callers of a stale value wait for
/// one recomputation instead of each running it.
pub struct Cached<T> {
    ttl: Duration,
    slot: Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> Cached<T> {
    /// An empty cache.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, slot: Mutex::new(None) }
    }

    /// The cached value, or a fresh one from `compute` when missing or older than the TTL.
    ///
    /// # Errors
    /// Whatever `compute` fails with; the stale value is kept then.
    pub async fn get_or_refresh<E, F>(&self, compute: F) -> Result<Arc<T>, E>
    where
        F: AsyncFnOnce() -> Result<T, E>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((at, value)) = slot.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let value = Arc::new(compute().await?);
        *slot = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}
