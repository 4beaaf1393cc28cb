//! Building the service on a listener and running it until the shutdown token fires.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use secrecy::SecretString;
use store::{DatabaseUrl, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ab::Experiments;
use crate::ab::impressions::ImpressionLog;
use crate::cache::{ListCache, ResponseCache};
use crate::journal::Journal;
use crate::live::stream::StreamSettings;
use crate::live::{Live, LiveSettings};
use crate::metrics::Metrics;
use crate::routes;
use crate::server::{self, ServerLimits};
use crate::state::{AppState, Cached, Ingest};
use crate::ui::posters::{PosterSettings, Posters};

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// `sqlite://FILE` or `postgres://...`.
    pub database_url: DatabaseUrl,
    /// Address to bind; port 0 picks a free one (tests).
    pub listen: SocketAddr,
    /// Required in `x-api-key` on write endpoints when set.
    pub api_key: Option<SecretString>,
    /// How long `/analytics` figures are reused.
    pub analytics_ttl: Duration,
    /// How long catalogue answers are reused (zero disables the response cache).
    pub cache_ttl: Duration,
    /// Kafka bootstrap servers for `POST /ratings`; without them that endpoint answers 503.
    pub brokers: Option<String>,
    /// The topic `POST /ratings` produces to and the live model follows.
    pub ratings_topic: String,
    /// The topic every served list is logged to (with `brokers`); empty logs nothing.
    pub impressions_topic: String,
    /// The live model: retrain schedule, snapshots, online settings. Its stream defaults to
    /// `brokers` and `ratings_topic` when not set.
    pub live: LiveSettings,
    /// Timeouts and the connection limit of the HTTP server.
    pub limits: ServerLimits,
    /// Where `POST /ratings` journals each rating before its 202 (the demo, whose broker is
    /// in memory); `None` trusts the broker's acknowledgement.
    pub journal: Option<PathBuf>,
    /// Where the web interface's posters come from.
    pub posters: PosterSettings,
}

impl ServeSettings {
    /// Defaults for `database_url` on `listen`: no API key, 5 s analytics, 1 s cache, no
    /// broker, default live model settings and server limits.
    pub fn new(database_url: impl Into<DatabaseUrl>, listen: SocketAddr) -> Self {
        Self {
            database_url: database_url.into(),
            listen,
            api_key: None,
            analytics_ttl: Duration::from_secs(5),
            cache_ttl: Duration::from_secs(1),
            brokers: None,
            ratings_topic: producer::topics::RATINGS.into(),
            impressions_topic: producer::topics::IMPRESSIONS.into(),
            live: LiveSettings::new(),
            limits: ServerLimits::default(),
            journal: None,
            posters: PosterSettings::new(),
        }
    }
}

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    live: Live,
    limits: ServerLimits,
}

impl Application {
    /// Connects the store, migrates it, binds the listener.
    ///
    /// # Errors
    /// The database is unreachable or the address cannot be bound.
    pub async fn build(settings: &ServeSettings) -> anyhow::Result<Self> {
        let store = Store::connect(settings.database_url.expose())
            .await
            .with_context(|| format!("connecting to {}", settings.database_url))?;
        let listener =
            TcpListener::bind(settings.listen).await.with_context(|| format!("binding {}", settings.listen))?;
        let ingest = match &settings.brokers {
            Some(brokers) => Some(Ingest {
                producer: producer::future_producer(brokers)
                    .with_context(|| format!("connecting to Kafka at {brokers}"))?,
                topic: Arc::from(settings.ratings_topic.as_str()),
                journal: match &settings.journal {
                    Some(path) => Some(Arc::new(Journal::open(path)?)),
                    None => None,
                },
            }),
            None => None,
        };
        let metrics = Metrics::new();
        let impressions = match &settings.brokers {
            Some(brokers) if !settings.impressions_topic.is_empty() => Some(Arc::new(
                ImpressionLog::new(brokers, &settings.impressions_topic, &metrics.impressions)
                    .with_context(|| format!("an impressions producer for {brokers}"))?,
            )),
            _ => None,
        };
        let experiments =
            Experiments::load(store.clone(), metrics.ab.clone()).await.context("loading the experiments")?;
        let mut live_settings = settings.live.clone();
        if live_settings.stream.is_none()
            && let Some(brokers) = &settings.brokers
        {
            live_settings.stream = Some(StreamSettings {
                brokers: brokers.clone(),
                topic: settings.ratings_topic.clone(),
                group: "cinedata-serving".into(),
            });
        }
        let live = Live::open(&live_settings, &store, metrics.registry()).await.context("opening the live model")?;
        let state = AppState {
            live: live.model.clone(),
            retrainer: live.retrainer.clone(),
            store,
            responses: ResponseCache::new(settings.cache_ttl, 100_000, metrics.cache_lookups.clone()),
            lists: ListCache::new(
                settings.cache_ttl,
                settings.live.list_refresh,
                100_000,
                metrics.cache_lookups.clone(),
            ),
            metrics,
            ingest,
            analytics: Arc::new(Cached::new(settings.analytics_ttl)),
            charts: Arc::new(Cached::new(settings.analytics_ttl)),
            posters: Posters::new(settings.posters.clone()),
            api_key: settings.api_key.clone(),
            experiments,
            impressions,
        };
        let router = routes::app(state.clone());
        Ok(Self { listener, router, state, live, limits: settings.limits.clone() })
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

    /// The live model and its jobs.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Serves until `shutdown` fires, then drains in-flight requests, stops the live model's
    /// jobs (saving a last snapshot) and closes the store.
    ///
    /// # Errors
    /// None at present (accept errors are logged and retried); kept for callers' `?`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let store = self.state.store.clone();
        let warm = self.state.clone();
        tokio::spawn(async move {
            if let Err(error) = routes::analytics::current(&warm).await {
                tracing::warn!(%error, "could not precompute analytics");
            }
            if let Err(error) = crate::charts::current(&warm).await {
                tracing::warn!(%error, "could not precompute the chart figures");
            }
        });
        let stop_jobs = shutdown.child_token();
        let jobs = self.live.spawn(stop_jobs.clone());
        let experiments = self.state.experiments.spawn(stop_jobs.clone());
        let impressions = self.state.impressions.clone();
        server::serve(self.listener, self.router, &self.limits, self.state.metrics.clone(), shutdown).await;
        stop_jobs.cancel();
        if let Err(error) = jobs.await {
            tracing::error!(%error, "live model jobs");
        }
        let _ = experiments.await;
        if let Some(log) = impressions {
            tokio::task::spawn_blocking(move || log.flush(Duration::from_secs(5))).await.ok();
        }
        store.close().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_debug_shows_no_secret() {
        let mut settings = ServeSettings::new(
            "postgres://cine:hunter2@db/cinedata?password=hunter3",
            SocketAddr::from(([127, 0, 0, 1], 0)),
        );
        settings.api_key = Some("key-s3cret".into());
        settings.posters.tmdb_api_key = Some("tmdb-s3cret".into());
        settings.posters.omdb_api_key = Some("omdb-s3cret".into());
        let shown = format!("{settings:?}");
        assert!(shown.contains("cine:***@db"), "{shown}");
        for secret in ["hunter2", "hunter3", "key-s3cret", "tmdb-s3cret", "omdb-s3cret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        let demo = crate::demo::DemoSettings {
            api_key: settings.api_key.clone(),
            ..crate::demo::DemoSettings::in_dir("x".into(), std::path::Path::new("/tmp"))
        };
        assert!(!format!("{demo:?}").contains("key-s3cret"));
    }
}
