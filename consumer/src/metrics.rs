//! Counters of what the consumer did, shared by handle with whoever runs it; optionally also
//! recorded in Prometheus families ([`Metrics::with_registry`]).
//!
//! Prometheus families (under the registry's `cinedata_` prefix):
//!
//! | name | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `consumer_events_received_total` | counter | `topic` | messages taken from Kafka |
//! | `consumer_events_persisted_total` | counter | `kind` (`rating`, `tag`) | events written to the store |
//! | `consumer_dead_letters_total` | counter | `reason` ([`DEAD_LETTER_REASONS`]) | poison events published to the dead-letter topic |
//! | `consumer_batch_size` | histogram | | events per batch |
//! | `consumer_db_write_duration_seconds` | histogram | | one attempt to persist a batch (catalogue check and upserts; failed attempts too) |
//! | `consumer_db_retries_total` | counter | | database writes retried after an error |
//! | `consumer_dlq_retries_total` | counter | | dead-letter publications retried after an error |
//! | `consumer_rebalances_total` | counter | | rebalances seen (assignments and revocations) |
//! | `consumer_assigned_partitions` | gauge | | partitions currently assigned |
//! | `consumer_lag` | gauge | `topic`, `partition` | high watermark − next offset to persist, per assigned partition |
//!
//! Everything is recorded once per batch (or per rebalance, per dead letter), never per event,
//! so the families cost nothing measurable next to the database write.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry};

/// Every dead-letter reason: the kinds of [`schemas::events::EventError`]. Their counters
/// exist from the start (at 0), so a rate over them is defined before the first poison event.
pub const DEAD_LETTER_REASONS: [&str; 5] =
    ["malformed", "unsupported-version", "invalid", "unknown-movie", "too-large"];

/// A cloneable handle on the consumer's counters.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    received: AtomicU64,
    handled: AtomicU64,
    ratings: AtomicU64,
    tags: AtomicU64,
    impressions: AtomicU64,
    dead_letters: AtomicU64,
    batches: AtomicU64,
    db_retries: AtomicU64,
    dlq_retries: AtomicU64,
    rebalances: AtomicU64,
    by_kind: Mutex<BTreeMap<&'static str, u64>>,
    assigned: Mutex<BTreeSet<(String, i32)>>,
    prometheus: Option<Families>,
}

/// The Prometheus side: families, and the handles of bounded labels resolved once.
#[derive(Debug)]
struct Families {
    received: IntCounterVec,
    persisted_ratings: IntCounter,
    persisted_tags: IntCounter,
    persisted_impressions: IntCounter,
    dead_letters: IntCounterVec,
    reasons: [IntCounter; DEAD_LETTER_REASONS.len()],
    batch_size: Histogram,
    db_write: Histogram,
    db_retries: IntCounter,
    dlq_retries: IntCounter,
    rebalances: IntCounter,
    assigned: IntGauge,
    lag: IntGaugeVec,
    /// Next offset to read after what is persisted, per (topic, partition), as stored.
    stored: Mutex<HashMap<(String, i32), i64>>,
}

impl Families {
    fn register(registry: &Registry) -> prometheus::Result<Self> {
        let f = runtime::metrics::Families(registry);
        let received = f.counter_vec(
            "consumer_events_received_total",
            "Messages taken from Kafka, by topic (a redelivered one counts again).",
            &["topic"],
        )?;
        let persisted = f.counter_vec(
            "consumer_events_persisted_total",
            "Events written to the store, by kind: rating, tag, impression.",
            &["kind"],
        )?;
        let dead_letters = f.counter_vec(
            "consumer_dead_letters_total",
            "Poison events published to the dead-letter topic, by reason (the x-dlq-kind header).",
            &["reason"],
        )?;
        let batch_size = f.histogram(
            "consumer_batch_size",
            "Events per batch (one database transaction per kind).",
            vec![1.0, 10.0, 100.0, 500.0, 1_000.0, 5_000.0, 10_000.0, 25_000.0, 50_000.0, 100_000.0, 250_000.0],
        )?;
        let db_write = f.histogram(
            "consumer_db_write_duration_seconds",
            "One attempt to persist a batch: catalogue check and upserts, failed attempts included.",
            vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
        )?;
        let lag = f.int_gauge_vec(
            "consumer_lag",
            "Events not yet persisted per assigned partition: high watermark minus the next offset to persist \
             (refreshed every few seconds).",
            &["topic", "partition"],
        )?;
        Ok(Self {
            persisted_ratings: persisted.with_label_values(&["rating"]),
            persisted_tags: persisted.with_label_values(&["tag"]),
            persisted_impressions: persisted.with_label_values(&["impression"]),
            reasons: DEAD_LETTER_REASONS.map(|r| dead_letters.with_label_values(&[r])),
            received,
            dead_letters,
            batch_size,
            db_write,
            db_retries: f.counter("consumer_db_retries_total", "Database writes retried after an error.")?,
            dlq_retries: f.counter("consumer_dlq_retries_total", "Dead-letter publications retried after an error.")?,
            rebalances: f.counter("consumer_rebalances_total", "Rebalances seen (assignments and revocations).")?,
            assigned: f.int_gauge("consumer_assigned_partitions", "Partitions currently assigned.")?,
            lag,
            stored: Mutex::new(HashMap::new()),
        })
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Messages taken from Kafka (a redelivered one counts again).
    pub received: u64,
    /// Messages whose batch is done: persisted or dead-lettered, offsets stored.
    pub handled: u64,
    /// Rating events written to the store (a redelivered one counts again).
    pub ratings: u64,
    /// Tag events written to the store.
    pub tags: u64,
    /// Impressions written to the store (a redelivered one counts again; it is stored once).
    pub impressions: u64,
    /// Poison events published to the dead-letter topic.
    pub dead_letters: u64,
    /// Dead letters per reason kind (`malformed`, `invalid`, `unknown-movie`, ...).
    pub dead_letters_by_kind: BTreeMap<String, u64>,
    /// Batches done.
    pub batches: u64,
    /// Database writes retried after an error.
    pub db_retries: u64,
    /// Dead-letter publications retried after an error.
    pub dlq_retries: u64,
    /// Rebalances seen (assignments and revocations).
    pub rebalances: u64,
    /// Partitions currently assigned, as (topic, partition).
    pub assigned: BTreeSet<(String, i32)>,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// Counters that are also recorded in Prometheus families registered in `registry`
    /// (see the module's table; e.g. [`runtime::metrics::registry`] for the `cinedata_` prefix).
    ///
    /// # Errors
    /// A family of the same name is already registered there.
    pub fn with_registry(registry: &Registry) -> prometheus::Result<Self> {
        Ok(Self(Arc::new(Inner { prometheus: Some(Families::register(registry)?), ..Inner::default() })))
    }

    /// Whether Prometheus families are recorded (then the consumer also refreshes the lag).
    pub fn is_exported(&self) -> bool {
        self.0.prometheus.is_some()
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let i = &self.0;
        Snapshot {
            received: i.received.load(Ordering::Relaxed),
            handled: i.handled.load(Ordering::Relaxed),
            ratings: i.ratings.load(Ordering::Relaxed),
            tags: i.tags.load(Ordering::Relaxed),
            impressions: i.impressions.load(Ordering::Relaxed),
            dead_letters: i.dead_letters.load(Ordering::Relaxed),
            dead_letters_by_kind: i
                .by_kind
                .lock()
                .map(|m| m.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect())
                .unwrap_or_default(),
            batches: i.batches.load(Ordering::Relaxed),
            db_retries: i.db_retries.load(Ordering::Relaxed),
            dlq_retries: i.dlq_retries.load(Ordering::Relaxed),
            rebalances: i.rebalances.load(Ordering::Relaxed),
            assigned: i.assigned.lock().map(|a| a.clone()).unwrap_or_default(),
        }
    }

    /// Messages done (persisted or dead-lettered): what a producer's backpressure compares
    /// with what it sent.
    pub fn handled(&self) -> u64 {
        self.0.handled.load(Ordering::Relaxed)
    }

    /// `n` messages of `topic` taken from Kafka (once per batch and topic).
    pub(crate) fn received(&self, topic: &str, n: usize) {
        add(&self.0.received, n as u64);
        if let Some(p) = &self.0.prometheus {
            p.received.with_label_values(&[topic]).inc_by(n as u64);
        }
    }

    /// One attempt to persist a batch took `took`.
    pub(crate) fn db_write(&self, took: Duration) {
        if let Some(p) = &self.0.prometheus {
            p.db_write.observe(took.as_secs_f64());
        }
    }

    pub(crate) fn batch_done(&self, messages: usize, ratings: usize, tags: usize, impressions: usize) {
        add(&self.0.ratings, ratings as u64);
        add(&self.0.tags, tags as u64);
        add(&self.0.impressions, impressions as u64);
        add(&self.0.batches, 1);
        add(&self.0.handled, messages as u64);
        if let Some(p) = &self.0.prometheus {
            p.persisted_ratings.inc_by(ratings as u64);
            p.persisted_tags.inc_by(tags as u64);
            p.persisted_impressions.inc_by(impressions as u64);
            p.batch_size.observe(messages as f64);
        }
    }

    pub(crate) fn dead_lettered(&self, kind: &'static str) {
        add(&self.0.dead_letters, 1);
        if let Ok(mut m) = self.0.by_kind.lock() {
            *m.entry(kind).or_default() += 1;
        }
        if let Some(p) = &self.0.prometheus {
            match DEAD_LETTER_REASONS.iter().position(|r| *r == kind) {
                Some(i) => p.reasons[i].inc(),
                None => p.dead_letters.with_label_values(&[kind]).inc(),
            }
        }
    }

    pub(crate) fn db_retry(&self) {
        add(&self.0.db_retries, 1);
        if let Some(p) = &self.0.prometheus {
            p.db_retries.inc();
        }
    }

    pub(crate) fn dlq_retry(&self) {
        add(&self.0.dlq_retries, 1);
        if let Some(p) = &self.0.prometheus {
            p.dlq_retries.inc();
        }
    }

    pub(crate) fn assigned(&self, partitions: impl IntoIterator<Item = (String, i32)>) {
        add(&self.0.rebalances, 1);
        if let Ok(mut a) = self.0.assigned.lock() {
            a.extend(partitions);
            if let Some(p) = &self.0.prometheus {
                p.rebalances.inc();
                p.assigned.set(a.len() as i64);
            }
        }
    }

    pub(crate) fn revoked(&self, partitions: impl IntoIterator<Item = (String, i32)>) {
        add(&self.0.rebalances, 1);
        if let Ok(mut a) = self.0.assigned.lock() {
            let prometheus = self.0.prometheus.as_ref();
            let mut stored = prometheus.and_then(|p| p.stored.lock().ok());
            for tp in partitions {
                if let Some(p) = prometheus {
                    let _ = p.lag.remove_label_values(&[tp.0.as_str(), &tp.1.to_string()]);
                }
                if let Some(stored) = &mut stored {
                    stored.remove(&tp);
                }
                a.remove(&tp);
            }
            if let Some(p) = prometheus {
                p.rebalances.inc();
                p.assigned.set(a.len() as i64);
            }
        }
    }

    /// The offsets of a persisted batch were stored: `next` is the next offset to read.
    pub(crate) fn offset_stored(&self, topic: &str, partition: i32, next: i64) {
        if let Some(p) = &self.0.prometheus
            && let Ok(mut stored) = p.stored.lock()
        {
            let position = stored.entry((topic.to_owned(), partition)).or_insert(next);
            *position = (*position).max(next);
        }
    }

    /// The next offset to persist of a partition, as far as this consumer stored it.
    pub(crate) fn stored_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let p = self.0.prometheus.as_ref()?;
        p.stored.lock().ok()?.get(&(topic.to_owned(), partition)).copied()
    }

    /// Sets the lag of a partition, if it is still assigned (a refresh may race a revocation).
    pub(crate) fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        if let Some(p) = &self.0.prometheus
            && let Ok(assigned) = self.0.assigned.lock()
            && assigned.contains(&(topic.to_owned(), partition))
        {
            p.lag.with_label_values(&[topic, &partition.to_string()]).set(lag);
        }
    }
}

/// Events of a partition not yet persisted: its high watermark minus the next offset to
/// persist, which is the larger of what this consumer stored and what the group committed, or
/// else the partition's low watermark (`auto.offset.reset=earliest`). Never negative.
pub fn partition_lag(high: i64, low: i64, committed: Option<i64>, stored: Option<i64>) -> i64 {
    let position = match (committed, stored) {
        (Some(c), Some(s)) => c.max(s),
        (Some(o), None) | (None, Some(o)) => o,
        (None, None) => low,
    };
    (high - position.max(low)).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_furthest_known_position() {
        // Nothing committed or stored: everything from the low watermark waits.
        assert_eq!(partition_lag(100, 0, None, None), 100);
        assert_eq!(partition_lag(100, 40, None, None), 60);
        // Stored ahead of the last auto-commit.
        assert_eq!(partition_lag(100, 0, Some(50), Some(80)), 20);
        // Committed by a previous owner, nothing stored here yet.
        assert_eq!(partition_lag(100, 0, Some(90), None), 10);
        // Caught up, or a watermark older than the position: never negative.
        assert_eq!(partition_lag(100, 0, Some(100), Some(100)), 0);
        assert_eq!(partition_lag(100, 0, None, Some(120)), 0);
        // A committed offset older than the log start counts from the log start.
        assert_eq!(partition_lag(100, 70, Some(10), None), 30);
    }

    #[test]
    fn every_counter_is_recorded_in_both_places() {
        let registry = runtime::metrics::registry();
        let metrics = Metrics::with_registry(&registry).expect("families register");
        metrics.received("ratings", 10);
        metrics.received("tags", 2);
        metrics.dead_lettered("malformed");
        metrics.dead_lettered("unknown-movie");
        metrics.dead_lettered("malformed");
        metrics.batch_done(12, 8, 1, 0);
        metrics.db_retry();
        metrics.db_write(Duration::from_millis(3));
        metrics.assigned([("ratings".to_owned(), 0), ("ratings".to_owned(), 1)]);
        metrics.set_lag("ratings", 0, 5);
        metrics.set_lag("ratings", 1, 7);
        metrics.revoked([("ratings".to_owned(), 1)]);
        let text = runtime::metrics::render(&registry);
        for line in [
            "cinedata_consumer_events_received_total{topic=\"ratings\"} 10",
            "cinedata_consumer_events_received_total{topic=\"tags\"} 2",
            "cinedata_consumer_events_persisted_total{kind=\"rating\"} 8",
            "cinedata_consumer_events_persisted_total{kind=\"tag\"} 1",
            "cinedata_consumer_dead_letters_total{reason=\"malformed\"} 2",
            "cinedata_consumer_dead_letters_total{reason=\"unknown-movie\"} 1",
            "cinedata_consumer_dead_letters_total{reason=\"too-large\"} 0",
            "cinedata_consumer_batch_size_sum 12",
            "cinedata_consumer_batch_size_count 1",
            "cinedata_consumer_db_write_duration_seconds_count 1",
            "cinedata_consumer_db_retries_total 1",
            "cinedata_consumer_rebalances_total 2",
            "cinedata_consumer_assigned_partitions 1",
            "cinedata_consumer_lag{partition=\"0\",topic=\"ratings\"} 5",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
        }
        assert!(!text.contains("partition=\"1\""), "a revoked partition's lag stays exported:\n{text}");
        let s = metrics.snapshot();
        assert_eq!((s.received, s.handled, s.ratings, s.tags, s.dead_letters, s.db_retries), (12, 12, 8, 1, 3, 1));
    }

    #[test]
    fn default_metrics_export_nothing_and_count_all_the_same() {
        let metrics = Metrics::default();
        assert!(!metrics.is_exported());
        metrics.received("ratings", 3);
        metrics.batch_done(3, 3, 0, 0);
        metrics.offset_stored("ratings", 0, 3);
        assert_eq!(metrics.stored_offset("ratings", 0), None);
        assert_eq!(metrics.handled(), 3);
    }
}
