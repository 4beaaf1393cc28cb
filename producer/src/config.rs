//! Producer settings shared by every CineData producer.

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;

/// How long a message may wait for its acknowledgement, retries included, before its delivery
/// fails (librdkafka's default: long enough to ride out a broker restart).
pub const DELIVERY_TIMEOUT_MS: u32 = 300_000;

/// The settings of every CineData producer, on top of `bootstrap.servers`:
///
/// - `enable.idempotence=true`: retries never duplicate or reorder a partition's messages;
/// - `compression.type=lz4`: cheap, and the embedded broker keeps only ~5 MiB per partition;
/// - `partitioner=murmur2_random`: the Java client's partitioner, so producers in any language
///   send a user's events to the same partition (we key by `userId`);
/// - large batches and queue, so a replay is limited by the broker, not by the client.
pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "10")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", DELIVERY_TIMEOUT_MS.to_string());
    config
}

/// How long an interactive send (`POST /ratings`, `producer send`) waits for its
/// acknowledgement before failing, so a caller hears of a broker outage within seconds.
pub const INTERACTIVE_DELIVERY_TIMEOUT_MS: u32 = 15_000;

/// An async producer with [`producer_config`], for sending single events (`POST /ratings`):
/// a delivery that takes longer than [`INTERACTIVE_DELIVERY_TIMEOUT_MS`] fails.
///
/// # Errors
/// librdkafka refused the configuration.
pub fn future_producer(brokers: &str) -> Result<FutureProducer, KafkaError> {
    producer_config(brokers).set("message.timeout.ms", INTERACTIVE_DELIVERY_TIMEOUT_MS.to_string()).create()
}
