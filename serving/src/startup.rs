//! Building the service on a listener and running it until the shutdown token fires.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cache::ResponseCache;
use crate::metrics::Metrics;
use crate::routes;
use crate::state::{AppState, Cached, Ingest};

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// `sqlite://FILE` or `postgres://...`.
    pub database_url: String,
    /// Address to bind; port 0 picks a free one (tests).
    pub listen: SocketAddr,
    /// Required in `x-api-key` on write endpoints when set.
    pub api_key: Option<String>,
    /// How long `/analytics` figures are reused.
    pub analytics_ttl: Duration,
    /// How long catalogue answers are reused (zero disables the response cache).
    pub cache_ttl: Duration,
    /// Kafka bootstrap servers for `POST /ratings`; without them that endpoint answers 503.
    pub brokers: Option<String>,
    /// The topic `POST /ratings` produces to.
    pub ratings_topic: String,
}

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Connects the store, migrates it, binds the listener.
    ///
    /// # Errors
    /// The database is unreachable or the address cannot be bound.
    pub async fn build(settings: &ServeSettings) -> anyhow::Result<Self> {
        let store = Store::connect(&settings.database_url)
            .await
            .with_context(|| format!("connecting to {}", settings.database_url))?;
        let listener =
            TcpListener::bind(settings.listen).await.with_context(|| format!("binding {}", settings.listen))?;
        let ingest = match &settings.brokers {
            Some(brokers) => Some(Ingest {
                producer: producer::future_producer(brokers)
                    .with_context(|| format!("connecting to Kafka at {brokers}"))?,
                topic: Arc::from(settings.ratings_topic.as_str()),
            }),
            None => None,
        };
        let metrics = Metrics::new();
        let state = AppState {
            store,
            responses: ResponseCache::new(settings.cache_ttl, 100_000, metrics.cache_lookups.clone()),
            metrics,
            ingest,
            analytics: Arc::new(Cached::new(settings.analytics_ttl)),
            api_key: settings.api_key.as_deref().map(Arc::from),
        };
        let router = routes::app(state.clone());
        Ok(Self { listener, router, state })
    }

    /// The bound address (the real port when 0 was asked for).
    ///
    /// # Errors
    /// The socket has no local address (not expected once bound).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state, e.g. for tests to reach the store.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` fires, then drains in-flight requests and closes the store.
    ///
    /// # Errors
    /// The server fails to accept.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let store = self.state.store.clone();
        let warm = self.state.clone();
        tokio::spawn(async move {
            if let Err(error) = routes::analytics::current(&warm).await {
                tracing::warn!(%error, "could not precompute analytics");
            }
        });
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .context("serving HTTP")?;
        store.close().await;
        Ok(())
    }
}
