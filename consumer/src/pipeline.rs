//! The whole pipeline in one process: embedded broker, consumer group, and a replay.
//!
//! librdkafka's mock cluster lives only inside the process that started it, so a replay in one
//! process and a consumer in another cannot share it unless one of them keeps it alive. This
//! module is that keeper: [`Embedded::start`] starts the broker and creates the topics,
//! [`Embedded::run`] runs the consumer (and optionally a replay into the broker, its pace held
//! back so the consumer's lag stays bounded) until shutdown. Other clients, in this process or
//! another, can produce to [`Embedded::brokers`] meanwhile (e.g. `POST /ratings`).
//!
//! What the embedded broker does not give: see [`producer::embedded`] (nothing survives the
//! process; each partition keeps only ~5 MiB, so a consumer lagging further loses events).

use std::sync::Arc;

use anyhow::Context;
use movielens::Release;
use producer::replay::{Backpressure, Outgoing, ReplayOptions, ReplayReport, Timeline};
use producer::{EmbeddedBroker, producer_config};
use store::Store;
use tokio_util::sync::CancellationToken;

use crate::group::{OnPersisted, run};
use crate::{Metrics, Settings};

/// Default bound on events sent but not yet handled by the consumer: at ~60 compressed bytes
/// an event over 32 partitions, about 1 MiB a partition, well inside the mock's ~5 MiB.
pub const MAX_LAG: u64 = 500_000;

/// Session timeout of consumers on the embedded broker, whose rebalances wait for it.
pub const EMBEDDED_SESSION_TIMEOUT_MS: u32 = 6_000;

/// Events to replay into the embedded broker.
pub struct ReplayPlan {
    /// The events, in the order to send.
    pub events: Box<dyn Iterator<Item = Outgoing> + Send>,
    /// How many there are (sizes the progress bar).
    pub total: Option<u64>,
    /// Topics, pace, limit; its `backpressure` is set by [`Embedded::run`].
    pub options: ReplayOptions,
    /// Most events sent but not yet handled by the consumer.
    pub max_lag: u64,
}

impl std::fmt::Debug for ReplayPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayPlan").field("total", &self.total).field("options", &self.options).finish_non_exhaustive()
    }
}

impl ReplayPlan {
    /// A whole timeline, with [`MAX_LAG`].
    pub fn timeline(timeline: Arc<Timeline>, options: ReplayOptions) -> Self {
        let total = Some(timeline.len());
        Self { events: Box::new(timeline.into_events()), total, options, max_lag: MAX_LAG }
    }

    /// Loads a release's ratings and tags (on a blocking thread) and replays them to the
    /// settings' topics as fast as the consumer keeps up.
    ///
    /// # Errors
    /// The release cannot be read.
    pub async fn release(release: Release, settings: &Settings, progress: bool) -> anyhow::Result<Self> {
        let with_tags = !settings.tags_topic.is_empty();
        let dir = release.dir().to_path_buf();
        let timeline = tokio::task::spawn_blocking(move || Timeline::load(&release, with_tags))
            .await?
            .with_context(|| format!("reading {}", dir.display()))?;
        let options = ReplayOptions {
            tags_topic: with_tags.then(|| settings.tags_topic.clone()),
            progress,
            ..ReplayOptions::new(settings.ratings_topic.clone())
        };
        Ok(Self::timeline(Arc::new(timeline), options))
    }
}

/// A running embedded broker with the pipeline's topics.
#[derive(Debug)]
pub struct Embedded {
    broker: EmbeddedBroker,
    settings: Settings,
}

impl Embedded {
    /// Starts the broker and creates the ratings, tags and dead-letter topics of `settings`.
    ///
    /// # Errors
    /// librdkafka could not start the mock cluster.
    pub fn start(settings: &Settings) -> anyhow::Result<Self> {
        let broker = EmbeddedBroker::start(&settings.topic_specs()).context("starting the embedded broker")?;
        let settings = Settings {
            brokers: Some(broker.bootstrap_servers().to_owned()),
            // The mock's rebalances wait for the session timeout: keep it short.
            session_timeout_ms: settings.session_timeout_ms.or(Some(EMBEDDED_SESSION_TIMEOUT_MS)),
            ..settings.clone()
        };
        Ok(Self { broker, settings })
    }

    /// The broker's `bootstrap.servers`, for producers (`POST /ratings`) and other consumers.
    pub fn brokers(&self) -> &str {
        self.broker.bootstrap_servers()
    }

    /// The broker itself (to create more topics).
    pub fn broker(&self) -> &EmbeddedBroker {
        &self.broker
    }

    /// The settings with `brokers` pointing at the embedded broker.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs the consumer until `shutdown`, and meanwhile the replay if one is given (holding
    /// it back so that at most `max_lag` events wait for the consumer). Returns the replay's
    /// report once the consumer has stopped.
    ///
    /// # Errors
    /// The consumer or the replay's producer could not be created.
    pub async fn run(
        &self,
        store: Store,
        metrics: Metrics,
        on_persisted: Option<OnPersisted>,
        replay: Option<ReplayPlan>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Option<ReplayReport>> {
        // The replay stops with the consumer: its backpressure would wait for it forever.
        let stop_replay = shutdown.child_token();
        let consumer = {
            let settings = self.settings.clone();
            let (metrics, shutdown, stop_replay) = (metrics.clone(), shutdown.clone(), stop_replay.clone());
            tokio::spawn(async move {
                let result = run(&settings, store, metrics, on_persisted, shutdown).await;
                stop_replay.cancel();
                result
            })
        };
        let report = match replay {
            Some(plan) => {
                let handled = metrics.clone();
                let options = ReplayOptions {
                    backpressure: Some(Backpressure {
                        handled: Arc::new(move || handled.handled()),
                        max_lag: plan.max_lag,
                    }),
                    ..plan.options
                };
                let config = producer_config(self.brokers());
                let report = producer::replay::replay(config, plan.events, plan.total, options, stop_replay).await;
                match &report {
                    Ok(r) => tracing::info!(
                        sent = r.sent,
                        delivered = r.delivered,
                        failed = r.failed,
                        rate = r.rate() as u64,
                        max_lag = r.max_lag,
                        "replay done"
                    ),
                    Err(e) => tracing::error!(error = %e, "replay failed"),
                }
                Some(report)
            }
            None => None,
        };
        consumer.await.context("consumer task")??;
        report.transpose().context("replaying")
    }
}
