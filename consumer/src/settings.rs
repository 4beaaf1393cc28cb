//! The consumer's settings: flags, each also read from a `CINEDATA_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use producer::topics;
use store::DatabaseUrl;

/// What a consumer needs to know.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Kafka bootstrap servers, e.g. `127.0.0.1:9092`. Without it the consumer starts an
    /// embedded in-process broker (nothing survives the process) and prints its address.
    #[arg(long, env = "CINEDATA_BROKERS")]
    pub brokers: Option<String>,
    /// `sqlite://FILE` (created if missing) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "CINEDATA_DATABASE_URL", default_value = "sqlite://cinedata.db")]
    pub database_url: DatabaseUrl,
    /// Consumer group id: consumers sharing it split the partitions.
    #[arg(long, env = "CINEDATA_GROUP", default_value = "cinedata-store")]
    pub group: String,
    /// Topic of the rating events.
    #[arg(long = "topic", env = "CINEDATA_RATINGS_TOPIC", default_value = topics::RATINGS)]
    pub ratings_topic: String,
    /// Topic of the tag events; empty to consume ratings only.
    #[arg(long, env = "CINEDATA_TAGS_TOPIC", default_value = topics::TAGS)]
    pub tags_topic: String,
    /// Topic of the impressions (lists serving showed); empty to leave them unpersisted.
    #[arg(long, env = "CINEDATA_IMPRESSIONS_TOPIC", default_value = topics::IMPRESSIONS)]
    pub impressions_topic: String,
    /// Where poison events go, unchanged, with `x-dlq-reason` and `x-dlq-kind` headers.
    #[arg(long, env = "CINEDATA_DLQ_TOPIC", default_value = topics::DEAD_LETTERS)]
    pub dlq_topic: String,
    /// Partitions of topics this consumer creates (existing topics are left alone).
    #[arg(long, env = "CINEDATA_PARTITIONS", default_value_t = topics::PARTITIONS)]
    pub partitions: i32,
    /// Partitions of the impressions topic when this consumer creates it.
    #[arg(long, env = "CINEDATA_IMPRESSION_PARTITIONS", default_value_t = topics::IMPRESSION_PARTITIONS)]
    pub impression_partitions: i32,
    /// Most events per batch (one database transaction per batch).
    #[arg(long, env = "CINEDATA_CONSUMER_BATCH_SIZE", default_value_t = 100_000)]
    pub batch_size: usize,
    /// Longest wait in milliseconds for a batch to fill once its first event arrived.
    #[arg(long, env = "CINEDATA_CONSUMER_BATCH_MS", default_value_t = 100)]
    pub batch_ms: u64,
    /// Group session timeout in milliseconds. Default 45000; 6000 on the embedded broker,
    /// whose rebalances wait for it.
    #[arg(long, env = "CINEDATA_SESSION_TIMEOUT_MS")]
    pub session_timeout_ms: Option<u32>,
    /// Embedded mode only: replay this MovieLens release into the embedded broker while
    /// consuming it (a one-process demo of the whole pipeline).
    #[arg(long, env = "CINEDATA_REPLAY")]
    pub replay: Option<PathBuf>,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (e.g. `0.0.0.0:9100`); none by default.
    #[arg(long, env = "CINEDATA_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// How often the lag of each assigned partition is refreshed when metrics are exported
    /// (not a flag; tests shorten it).
    #[arg(skip = DEFAULT_LAG_REFRESH)]
    pub lag_refresh: Duration,
}

/// How often `consumer_lag` is refreshed by default.
pub const DEFAULT_LAG_REFRESH: Duration = Duration::from_secs(5);

impl Settings {
    /// The defaults, for `brokers` and `database_url`.
    pub fn new(brokers: Option<String>, database_url: impl Into<DatabaseUrl>) -> Self {
        Self {
            brokers,
            database_url: database_url.into(),
            group: "cinedata-store".into(),
            ratings_topic: topics::RATINGS.into(),
            tags_topic: topics::TAGS.into(),
            impressions_topic: topics::IMPRESSIONS.into(),
            dlq_topic: topics::DEAD_LETTERS.into(),
            partitions: topics::PARTITIONS,
            impression_partitions: topics::IMPRESSION_PARTITIONS,
            batch_size: 100_000,
            batch_ms: 100,
            session_timeout_ms: None,
            replay: None,
            metrics_listen: None,
            lag_refresh: DEFAULT_LAG_REFRESH,
        }
    }

    /// The topics consumed: ratings, and tags and impressions unless disabled.
    pub fn topics(&self) -> Vec<&str> {
        let mut topics = vec![self.ratings_topic.as_str()];
        for optional in [&self.tags_topic, &self.impressions_topic] {
            if !optional.is_empty() {
                topics.push(optional.as_str());
            }
        }
        topics
    }

    /// What a message of `topic` should hold.
    pub fn kind_of(&self, topic: &str) -> crate::ingest::Kind {
        use crate::ingest::Kind;
        if topic == self.ratings_topic {
            Kind::Rating
        } else if topic == self.impressions_topic {
            Kind::Impression
        } else {
            Kind::Tag
        }
    }

    /// The topic of messages of `kind`.
    pub fn topic_of(&self, kind: crate::ingest::Kind) -> &str {
        use crate::ingest::Kind;
        match kind {
            Kind::Rating => &self.ratings_topic,
            Kind::Tag => &self.tags_topic,
            Kind::Impression => &self.impressions_topic,
        }
    }

    /// Every topic the pipeline uses, dead letters included, to create them.
    pub fn topic_specs(&self) -> Vec<topics::TopicSpec> {
        let mut specs: Vec<topics::TopicSpec> = self
            .topics()
            .into_iter()
            .map(|t| {
                let partitions = if t == self.impressions_topic { self.impression_partitions } else { self.partitions };
                topics::TopicSpec::new(t, partitions)
            })
            .collect();
        specs.push(topics::TopicSpec::new(&self.dlq_topic, self.partitions.min(4)));
        specs
    }

    /// The batch wait as a duration.
    pub fn batch_wait(&self) -> Duration {
        Duration::from_millis(self.batch_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_impressions_topic_gets_its_own_partition_count() {
        let specs = |s: &Settings| -> Vec<(String, i32)> {
            s.topic_specs().into_iter().map(|t| (t.name, t.partitions)).collect()
        };
        let mut settings = Settings::new(None, "sqlite://x.db");
        assert_eq!(
            specs(&settings),
            [("ratings".into(), 32), ("tags".into(), 32), ("impressions".into(), 8), ("ratings.dlq".into(), 4)]
        );
        settings.impression_partitions = 2;
        settings.impressions_topic = "shown".into();
        assert_eq!(specs(&settings)[2], ("shown".into(), 2));
        settings.impressions_topic = String::new();
        assert_eq!(specs(&settings).len(), 3, "no impressions topic when they are not persisted");
    }

    #[test]
    fn debug_hides_the_database_password() {
        let settings = Settings::new(None, "postgres://cine:hunter2@db/cinedata");
        let shown = format!("{settings:?}");
        assert!(shown.contains("cine:***@db") && !shown.contains("hunter2"), "{shown}");
    }
}
