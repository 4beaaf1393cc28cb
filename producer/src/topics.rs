//! Topic names and sizes, and creating the topics on a real broker.

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

/// Default topic of [`RatingSubmitted`](schemas::events::RatingSubmitted) events.
pub const RATINGS: &str = "ratings";
/// Default topic of [`TagAdded`](schemas::events::TagAdded) events.
pub const TAGS: &str = "tags";
/// Default topic of [`ListShown`](schemas::events::ListShown) events: the lists serving showed.
pub const IMPRESSIONS: &str = "impressions";
/// Default dead-letter topic: poison events, unchanged, with `x-dlq-*` headers.
pub const DEAD_LETTERS: &str = "ratings.dlq";
/// Default partitions per topic: room for 32 consumers, and on the embedded broker (whose log
/// keeps ~5 MiB per partition) room for a lagging consumer.
pub const PARTITIONS: i32 = 32;
/// Default partitions of the impressions topic. Every list served is an impression, so its
/// traffic is the request rate; serving batches them for 100 ms, and fewer partitions make
/// fewer, larger message sets: less work per impression for the producer, the broker and the
/// consumer group (the embedded broker scans a partition's message sets on every fetch). Eight
/// still leave the embedded broker 40 MiB of log for a lagging consumer, and room for eight
/// consumers to share them.
pub const IMPRESSION_PARTITIONS: i32 = 8;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Its partition count.
    pub partitions: i32,
}

impl TopicSpec {
    /// A topic of `partitions` partitions.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self { name: name.into(), partitions }
    }
}

/// Creates the topics that do not exist yet (replication factor 1; Kafka clusters that need
/// more should create them beforehand). Existing topics are left alone.
///
/// # Errors
/// The broker is unreachable or refused a creation for a reason other than "already exists".
#[tracing::instrument(skip(topics), fields(topics = ?topics.iter().map(|t| &t.name).collect::<Vec<_>>()))]
pub async fn ensure_topics(brokers: &str, topics: &[TopicSpec]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    // Only ask for what is missing: some brokers (the embedded one) have no CreateTopics API.
    let config = ClientConfig::new().set("bootstrap.servers", brokers).clone();
    let existing = tokio::task::spawn_blocking(move || -> Result<HashSet<String>, KafkaError> {
        let client: BaseProducer = config.create()?;
        let metadata = client.client().fetch_metadata(None, Duration::from_secs(10))?;
        Ok(metadata.topics().iter().filter(|t| t.error().is_none()).map(|t| t.name().to_owned()).collect())
    })
    .await
    .map_err(|_| KafkaError::Canceled)??;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .filter(|t| !existing.contains(&t.name))
        .map(|t| NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(1)))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new, &options).await? {
        match result {
            Ok(name) => tracing::info!(topic = %name, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(KafkaError::AdminOp(code))
                    .inspect_err(|_| tracing::error!(topic = %name, %code, "creating topic"));
            }
        }
    }
    Ok(())
}
