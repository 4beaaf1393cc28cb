//! Sends CineData events to Kafka.
//!
//! - [`config`]: the producer settings every CineData producer uses (idempotent, lz4, keyed by
//!   user with Java's murmur2 partitioner).
//! - [`send`]: validate and send one event and wait for the broker's acknowledgement
//!   ([`send_rating`], [`send_tag`]); what `POST /ratings` and `producer send` call.
//! - [`replay`]: a MovieLens release (or any event stream) in timestamp order, paced, with a
//!   progress bar, waiting for every delivery report.
//! - [`metrics`]: the producer's Prometheus families.
//! - [`embedded`]: librdkafka's in-process mock cluster in a thread of ours, the broker used
//!   when no `--brokers` is given.
//! - [`topics`]: topic names and sizes, and creating them on a real broker.
//! - [`cli`]: the `producer` command line.

pub mod cli;
pub mod config;
pub mod embedded;
pub mod metrics;
pub mod replay;
pub mod send;
pub mod topics;

pub use config::{future_producer, producer_config};
pub use embedded::EmbeddedBroker;
pub use metrics::ProducerMetrics;
pub use replay::{Backpressure, Outgoing, Pace, ReplayOptions, ReplayReport, Timeline};
pub use send::{Delivered, SendError, send_event, send_rating, send_tag};
pub use topics::{TopicSpec, ensure_topics};
