//! Prometheus metrics of the producer (served by [`runtime::metrics`]).
//!
//! Families (all under the `cinedata_` prefix of [`runtime::metrics::registry`]):
//!
//! | name | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `producer_events_sent_total` | counter | `topic` | events handed to librdkafka |
//! | `producer_events_delivered_total` | counter | `topic` | events the broker acknowledged |
//! | `producer_delivery_failures_total` | counter | `topic` | events whose delivery failed |
//! | `producer_send_duration_seconds` | histogram | | send → acknowledgement (replays sample 1 event in [`LATENCY_SAMPLE`]) |
//! | `producer_replay_lag_seconds` | gauge | | how far a paced replay is behind its schedule |
//! | `producer_replay_planned_events` | gauge | | events the running replay will send (progress = sent / planned) |
//!
//! The replay sends ~1M events/s, so it never looks a label up per event: per-topic handles are
//! resolved once ([`TopicMetrics`]), sends are counted locally and flushed every 1024 events, and
//! only one delivery in [`LATENCY_SAMPLE`] is timed.

use std::time::Duration;

use prometheus::{Gauge, Histogram, IntCounter, IntCounterVec, IntGauge, Registry};

/// A replay times the delivery of one event in this many.
pub const LATENCY_SAMPLE: u64 = 64;

/// The producer's metric families; cloning shares them.
#[derive(Clone, Debug)]
pub struct ProducerMetrics {
    sent: IntCounterVec,
    delivered: IntCounterVec,
    failures: IntCounterVec,
    send_duration: Histogram,
    replay_lag: Gauge,
    replay_planned: IntGauge,
}

/// The counters of one topic, resolved once so that the hot path never looks a label up.
#[derive(Clone, Debug)]
pub struct TopicMetrics {
    /// `producer_events_sent_total{topic}`.
    pub sent: IntCounter,
    /// `producer_events_delivered_total{topic}`.
    pub delivered: IntCounter,
    /// `producer_delivery_failures_total{topic}`.
    pub failures: IntCounter,
}

impl ProducerMetrics {
    /// Registers the producer's families in `registry`.
    ///
    /// # Errors
    /// A family of the same name is already registered there.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let f = runtime::metrics::Families(registry);
        let counter = |name: &str, help: &str| f.counter_vec(name, help, &["topic"]);
        Ok(Self {
            sent: counter("producer_events_sent_total", "Events handed to the Kafka client, by topic.")?,
            delivered: counter("producer_events_delivered_total", "Events acknowledged by the broker, by topic.")?,
            failures: counter(
                "producer_delivery_failures_total",
                "Events whose delivery failed (timed out, refused), by topic.",
            )?,
            send_duration: f.histogram(
                "producer_send_duration_seconds",
                "Time from handing an event to the Kafka client to the broker's acknowledgement \
                 (replays time one event in 64).",
                vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            )?,
            replay_lag: f.gauge(
                "producer_replay_lag_seconds",
                "How far a paced replay (--speed, --rate) is behind its schedule; 0 when on time or unpaced.",
            )?,
            replay_planned: f.int_gauge(
                "producer_replay_planned_events",
                "Events the running replay will send (limit included); its progress is sent / planned.",
            )?,
        })
    }

    /// The counters of `topic` (created at 0, so they show before the first event).
    pub fn topic(&self, topic: &str) -> TopicMetrics {
        TopicMetrics {
            sent: self.sent.with_label_values(&[topic]),
            delivered: self.delivered.with_label_values(&[topic]),
            failures: self.failures.with_label_values(&[topic]),
        }
    }

    /// Records one delivery latency.
    pub fn observe_send(&self, latency: Duration) {
        self.send_duration.observe(latency.as_secs_f64());
    }

    /// Sets how far behind schedule the replay is.
    pub fn set_replay_lag(&self, behind: Duration) {
        self.replay_lag.set(behind.as_secs_f64());
    }

    /// Sets the replay's planned number of events.
    pub fn set_replay_planned(&self, events: u64) {
        self.replay_planned.set(i64::try_from(events).unwrap_or(i64::MAX));
    }
}
