//! Every list served becomes a [`ListShown`] event on the impressions topic, sent without
//! waiting: the request never waits for Kafka. librdkafka batches them (its queue holds up to
//! a million), a thread of its own delivers them, and the idempotent producer keeps each once
//! per partition; the consumer group persists them keyed by event id. An impression that
//! cannot be queued (queue full, broker long gone) is counted, not retried: showing the list
//! matters more than recording it.

use prometheus::{IntCounter, IntCounterVec};
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use schemas::events::{EventId, ListShown, SCHEMA_VERSION, encode_at};
use schemas::recommend::{Strategy, UserRecommendations};

/// How long librdkafka gathers impressions into a batch before sending it.
const LINGER_MS: u32 = 100;

/// Counts deliveries as librdkafka reports them.
struct Deliveries {
    delivered: IntCounter,
    failed: IntCounter,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.inc(),
            Err((error, _)) => {
                self.failed.inc();
                tracing::debug!(%error, "an impression was not delivered");
            }
        }
    }
}

/// Where shown lists go.
pub struct ImpressionLog {
    producer: ThreadedProducer<Deliveries>,
    topic: String,
    dropped: IntCounter,
    invalid: IntCounter,
}

impl ImpressionLog {
    /// A producer to `topic` on `brokers`, counting into `counter` (label `result`:
    /// `delivered`, `failed`, `dropped`, `invalid`).
    ///
    /// # Errors
    /// librdkafka refused the configuration.
    pub fn new(brokers: &str, topic: &str, counter: &IntCounterVec) -> Result<Self, KafkaError> {
        let [delivered, failed, dropped, invalid] =
            ["delivered", "failed", "dropped", "invalid"].map(|r| counter.with_label_values(&[r]));
        // Nobody waits for an impression: batches of up to 100 ms make fewer, larger message
        // sets, which every broker (the embedded one most: it scans them linearly per fetch)
        // and the consumer group handle for less CPU than many small ones.
        let producer = producer::producer_config(brokers)
            .set("linger.ms", LINGER_MS.to_string())
            .create_with_context(Deliveries { delivered, failed })?;
        Ok(Self { producer, topic: topic.to_owned(), dropped, invalid })
    }

    /// Queues the impression of `list` as shown now, at stream time `stream_time`.
    pub fn shown(&self, list: &UserRecommendations, stream_time: i64, now: i64) {
        let event = ListShown {
            schema_version: SCHEMA_VERSION,
            event_id: EventId::time_ordered(),
            user_id: list.user_id,
            movie_ids: list.items.iter().map(|m| m.movie_id).collect(),
            strategy: match list.strategy {
                Strategy::Trending => "trending",
                _ => "personal",
            }
            .to_owned(),
            model_version: list.model_version,
            experiment: list.experiment.clone(),
            variant: list.variant.clone(),
            stream_time,
            timestamp: now,
        };
        let payload = match encode_at(&event, now) {
            Ok(payload) => payload,
            Err(error) => {
                self.invalid.inc();
                tracing::warn!(%error, "an impression failed its own checks");
                return;
            }
        };
        let key = producer::send::key(list.user_id);
        if let Err((error, _)) = self.producer.send(BaseRecord::to(&self.topic).key(&key).payload(&payload)) {
            self.dropped.inc();
            tracing::debug!(%error, "an impression could not be queued");
        }
    }

    /// Waits up to `timeout` for queued impressions to be delivered (at shutdown).
    pub fn flush(&self, timeout: std::time::Duration) {
        if let Err(error) = self.producer.flush(timeout) {
            tracing::warn!(%error, "impressions still queued at shutdown");
        }
    }
}
