//! The `consumer` command: persist events from a broker (or from an embedded one, optionally
//! replaying a release into it) until the shutdown signal, then report what was done.

use anyhow::Context;
use clap::Parser;
use movielens::Release;
use producer::ProducerMetrics;
use runtime::metrics::MetricsServer;
use store::Store;
use tokio_util::sync::CancellationToken;

use crate::{Embedded, Metrics, ReplayPlan, Settings};

/// CineData's Kafka consumer: persists rating and tag events; poison goes to a dead-letter
/// topic. Without --brokers it runs an embedded broker (and can replay a release into it).
#[derive(Debug, Parser)]
#[command(name = "consumer", version, about)]
pub struct Cli {
    /// Everything the consumer reads from flags and `CINEDATA_*` variables.
    #[command(flatten)]
    pub settings: Settings,
}

/// Runs the consumer with `settings` until `shutdown`, then prints what it persisted.
///
/// # Errors
/// The store, the broker or the metrics address cannot be reached, or the replay fails.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = Store::connect(settings.database_url.expose())
        .await
        .with_context(|| format!("connecting to {}", settings.database_url))?;
    // With --metrics-listen: the consumer's families (and, with --replay, the replay's).
    let (metrics, registry, server) = match settings.metrics_listen {
        Some(listen) => {
            let registry = runtime::metrics::registry();
            let metrics = Metrics::with_registry(&registry)?;
            let server = MetricsServer::start(listen, registry.clone(), &shutdown)
                .await
                .with_context(|| format!("serving metrics on {listen}"))?;
            (metrics, Some(registry), Some(server))
        }
        None => (Metrics::default(), None, None),
    };
    let result = match &settings.brokers {
        Some(brokers) => {
            if settings.replay.is_some() {
                tracing::warn!("--replay works with the embedded broker only; use `producer replay --brokers ...`");
            }
            if let Err(e) = producer::ensure_topics(brokers, &settings.topic_specs()).await {
                tracing::warn!(error = %e, "could not create the topics; assuming they exist");
            }
            crate::run(&settings, store.clone(), metrics.clone(), None, shutdown).await
        }
        None => {
            let embedded = Embedded::start(&settings)?;
            eprintln!(
                "embedded Kafka broker at {} (nothing survives this process); produce with \
                 `producer send --brokers {}`",
                embedded.brokers(),
                embedded.brokers()
            );
            let plan = match &settings.replay {
                Some(dir) => {
                    let release = Release::new(dir);
                    let movies: Vec<_> = release.movies()?.collect::<Result<_, _>>().context("reading movies.csv")?;
                    store.upsert_movies(&movies).await.context("loading movies.csv into the catalogue")?;
                    let mut plan = ReplayPlan::release(release, embedded.settings(), true).await?;
                    plan.options.metrics = registry.as_ref().map(ProducerMetrics::register).transpose()?;
                    Some(plan)
                }
                None => None,
            };
            embedded.run(store.clone(), metrics.clone(), None, plan, shutdown).await.map(|_| ())
        }
    };
    store.close().await;
    if let Some(server) = server {
        server.stop().await;
    }
    let s = metrics.snapshot();
    eprintln!(
        "persisted {} ratings and {} tags, dead-lettered {}, in {} batches ({} database retries)",
        s.ratings, s.tags, s.dead_letters, s.batches, s.db_retries
    );
    result
}
