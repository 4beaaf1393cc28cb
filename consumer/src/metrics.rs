//! Counters of what the consumer did, shared by handle with whoever runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A cloneable handle on the consumer's counters.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    received: AtomicU64,
    handled: AtomicU64,
    ratings: AtomicU64,
    tags: AtomicU64,
    dead_letters: AtomicU64,
    batches: AtomicU64,
    db_retries: AtomicU64,
    dlq_retries: AtomicU64,
    rebalances: AtomicU64,
    by_kind: Mutex<BTreeMap<&'static str, u64>>,
    assigned: Mutex<BTreeSet<(String, i32)>>,
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
    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let i = &self.0;
        Snapshot {
            received: i.received.load(Ordering::Relaxed),
            handled: i.handled.load(Ordering::Relaxed),
            ratings: i.ratings.load(Ordering::Relaxed),
            tags: i.tags.load(Ordering::Relaxed),
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

    pub(crate) fn received(&self, n: usize) {
        add(&self.0.received, n as u64);
    }

    pub(crate) fn batch_done(&self, messages: usize, ratings: usize, tags: usize) {
        add(&self.0.ratings, ratings as u64);
        add(&self.0.tags, tags as u64);
        add(&self.0.batches, 1);
        add(&self.0.handled, messages as u64);
    }

    pub(crate) fn dead_lettered(&self, kind: &'static str) {
        add(&self.0.dead_letters, 1);
        if let Ok(mut m) = self.0.by_kind.lock() {
            *m.entry(kind).or_default() += 1;
        }
    }

    pub(crate) fn db_retry(&self) {
        add(&self.0.db_retries, 1);
    }

    pub(crate) fn dlq_retry(&self) {
        add(&self.0.dlq_retries, 1);
    }

    pub(crate) fn assigned(&self, partitions: impl IntoIterator<Item = (String, i32)>) {
        add(&self.0.rebalances, 1);
        if let Ok(mut a) = self.0.assigned.lock() {
            a.extend(partitions);
        }
    }

    pub(crate) fn revoked(&self, partitions: impl IntoIterator<Item = (String, i32)>) {
        add(&self.0.rebalances, 1);
        if let Ok(mut a) = self.0.assigned.lock() {
            for p in partitions {
                a.remove(&p);
            }
        }
    }
}
