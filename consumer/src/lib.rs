//! Everything that reads CineData's Kafka topics: the consumer group that persists rating and
//! tag events (events in, store rows out), and the follower that feeds each event to a live model.
//!
//! - [`settings`]: what the `consumer` binary reads from flags and `CINEDATA_*` variables.
//! - [`cli`]: the `consumer` command (its `main.rs` only parses and calls it).
//! - [`ingest`]: [`handle`](ingest::handle), one batch of raw payloads → decode, validate,
//!   check the catalogue, upsert in the store; free of Kafka types, so unit-testable.
//! - [`group`]: the Kafka side: batches from a consumer group, dead letters, offsets stored
//!   only after the database commit, rebalance logging, graceful shutdown.
//! - [`follow`]: the other reader of the ratings topic: every partition into a live model
//!   (serving's), offsets kept by the model's snapshots rather than in Kafka.
//! - [`metrics`]: counters shared with whoever runs the consumer (tests, the serving demo),
//!   optionally also recorded in Prometheus families ([`Metrics::with_registry`]).
//! - [`pipeline`]: the embedded mode: one process runs the in-process broker, the consumer
//!   and optionally a replay (what `consumer` does without `--brokers`, and what the serving
//!   demo reuses).
//!
//! Delivery is at least once: an offset is stored only after its event is committed to the
//! database (or published to the dead-letter topic), and writes are idempotent upserts (newer
//! timestamp wins), so a redelivered event changes nothing: exactly once in effect.

pub mod cli;
pub mod follow;
pub mod group;
pub mod ingest;
pub mod metrics;
pub mod pipeline;
pub mod settings;

pub use group::{OnPersisted, run};
pub use metrics::{Metrics, Snapshot};
pub use pipeline::{Embedded, ReplayPlan};
pub use settings::Settings;
