//! The Kafka side of the consumer: a consumer group that persists events in batches.
//!
//! Each round: collect up to `batch_size` messages (or whatever arrived within `batch_ms` of
//! the first) and [`decode`] them; then, in a writer task while the next batch is collected,
//! [`persist`] them (one database transaction for the ratings, one for the tags), publish the
//! poison ones to the dead-letter topic and wait for the broker's acknowledgement, and only
//! then store the batch's offsets (`enable.auto.offset.store=false`; auto-commit
//! commits stored offsets every second). A database error backs off and retries the same batch,
//! storing nothing. On shutdown the batch in hand is finished, then stored offsets are committed
//! synchronously. Rebalance callbacks log, keep the assignment in [`Metrics`], and commit stored
//! offsets before partitions are revoked. When the metrics are exported to Prometheus, a third
//! task refreshes the lag of every assigned partition every `lag_refresh` (watermarks fetched on
//! a blocking thread).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use schemas::events::{EventError, RatingSubmitted, unix_now};
use store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ingest::{Catalogue, Decoded, Incoming, Kind, Outcome, decode, persist};
use crate::metrics::partition_lag;
use crate::{Metrics, Settings};

/// Called with the ratings of every batch once they are committed to the store (e.g. to
/// update an online model). Runs on the consumer's task: keep it quick.
pub type OnPersisted = Arc<dyn Fn(&[RatingSubmitted]) + Send + Sync>;

/// Header naming why a dead letter was rejected (human text).
pub const DLQ_REASON: &str = "x-dlq-reason";
/// Header with the reason's stable code (`malformed`, `invalid`, `unknown-movie`, ...).
pub const DLQ_KIND: &str = "x-dlq-kind";
/// Headers locating the original message.
pub const DLQ_TOPIC: &str = "x-dlq-topic";
/// See [`DLQ_TOPIC`].
pub const DLQ_PARTITION: &str = "x-dlq-partition";
/// See [`DLQ_TOPIC`].
pub const DLQ_OFFSET: &str = "x-dlq-offset";
/// For a bad list of an impressions batch (dead-lettered alone, its own JSON as payload): its
/// position in the batch's `lists`, from 0.
pub const DLQ_LIST: &str = "x-dlq-list";

/// Logs rebalances, tracks the assignment and commits stored offsets before a revocation, so
/// the next owner of a partition starts right after what this consumer persisted.
pub struct GroupContext {
    metrics: Metrics,
}

fn partitions(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect()
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = tpl.count(), "partitions revoked; committing stored offsets");
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "commit on revoke failed; the next owner may redo some events")
                    }
                }
                self.metrics.revoked(partitions(tpl));
            }
            Rebalance::Assign(tpl) => tracing::info!(partitions = tpl.count(), "partitions assigned"),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.metrics.assigned(partitions(tpl));
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => tracing::debug!(partitions = offsets.count(), "offsets committed"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(error = %e, "offset commit failed; will retry with the next one"),
        }
    }
}

/// The consumer's librdkafka settings.
pub fn consumer_config(settings: &Settings, brokers: &str) -> ClientConfig {
    let session = settings.session_timeout_ms.unwrap_or(45_000);
    let heartbeat = (session / 12).clamp(100, 3_000);
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", &settings.group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", session.to_string())
        .set("heartbeat.interval.ms", heartbeat.to_string())
        .set("fetch.wait.max.ms", "50");
    config
}

/// Doubling delays from 100 ms to 10 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }

    /// Waits the next delay; false if shut down meanwhile.
    async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(10));
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

/// Warns at most every few seconds, so a broker outage does not flood the log.
struct Throttle(Option<Instant>);

impl Throttle {
    fn ready(&mut self) -> bool {
        let ready = self.0.is_none_or(|t| t.elapsed() > Duration::from_secs(5));
        if ready {
            self.0 = Some(Instant::now());
        }
        ready
    }
}

/// Runs the consumer group until `shutdown`: subscribes to the ratings (and tags) topics on
/// `settings.brokers`, persists into `store`, counts into `metrics`.
///
/// Two stages overlap: this task collects and decodes the next batch while a writer task
/// persists the previous one, dead-letters its poison and stores its offsets (batches stay in
/// order; at most one waits between the stages).
///
/// # Errors
/// No brokers configured, or librdkafka refused the configuration or subscription. Broker
/// outages and database errors are not errors: they are retried.
pub async fn run(
    settings: &Settings,
    store: Store,
    metrics: Metrics,
    on_persisted: Option<OnPersisted>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let brokers = settings.brokers.as_deref().context("the consumer needs --brokers")?;
    let consumer: Arc<StreamConsumer<GroupContext>> = Arc::new(
        consumer_config(settings, brokers)
            .create_with_context(GroupContext { metrics: metrics.clone() })
            .context("creating the Kafka consumer")?,
    );
    consumer.subscribe(&settings.topics()).context("subscribing")?;
    let dlq: FutureProducer =
        producer::producer_config(brokers).create().context("creating the dead-letter producer")?;
    tracing::info!(group = %settings.group, topics = ?settings.topics(), %brokers, "consumer started");

    let (to_writer, from_reader) = mpsc::channel::<Work>(1);
    let writer = Writer {
        consumer: consumer.clone(),
        dlq,
        store,
        catalogue: Catalogue::new(),
        metrics: metrics.clone(),
        on_persisted,
        settings: settings.clone(),
    };
    let writer = tokio::spawn(writer.run(from_reader, shutdown.clone()));
    for topic in settings.topics() {
        metrics.received(topic, 0);
    }
    let stop_lag = CancellationToken::new();
    let lag = metrics
        .is_exported()
        .then(|| tokio::spawn(track_lag(consumer.clone(), metrics.clone(), settings.lag_refresh, stop_lag.clone())));

    let mut recv_errors = Throttle(None);
    loop {
        let (batch, stopping) = collect(&consumer, settings, &shutdown, &mut recv_errors).await;
        if !batch.is_empty() {
            let work = Work::new(&batch, settings);
            drop(batch);
            for kind in [Kind::Rating, Kind::Tag, Kind::Impression] {
                let n = work.messages.iter().filter(|m| m.topic == kind).count();
                if n > 0 {
                    metrics.received(settings.topic_of(kind), n);
                }
            }
            let handed_over = tokio::select! {
                biased;
                () = shutdown.cancelled() => false,
                sent = to_writer.send(work) => sent.is_ok(),
            };
            if !handed_over {
                break;
            }
        }
        if stopping {
            break;
        }
    }
    // Let the writer finish the batch in hand, then commit what it stored.
    drop(to_writer);
    if let Err(e) = writer.await {
        tracing::error!(error = %e, "the writer task failed");
    }
    stop_lag.cancel();
    if let Some(lag) = lag
        && let Err(e) = lag.await
    {
        tracing::error!(error = %e, "the lag task failed");
    }
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => tracing::warn!(error = %e, "final commit failed; some events will be redelivered"),
    }
    let s = metrics.snapshot();
    tracing::info!(
        received = s.received,
        ratings = s.ratings,
        tags = s.tags,
        dead_letters = s.dead_letters,
        batches = s.batches,
        db_retries = s.db_retries,
        "consumer stopped"
    );
    Ok(())
}

/// Every `every` until `stop`: refreshes the lag gauge of every assigned partition (on a
/// blocking thread: fetching watermarks and committed offsets are blocking calls).
async fn track_lag(
    consumer: Arc<StreamConsumer<GroupContext>>,
    metrics: Metrics,
    every: Duration,
    stop: CancellationToken,
) {
    let errors = Arc::new(std::sync::Mutex::new(Throttle(None)));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let (consumer, metrics, stop, errors) = (consumer.clone(), metrics.clone(), stop.clone(), errors.clone());
        let refreshed = tokio::task::spawn_blocking(move || refresh_lag(&consumer, &metrics, &stop)).await;
        match refreshed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if errors.lock().is_ok_and(|mut t| t.ready()) {
                    tracing::warn!(error = %e, "could not refresh the consumer lag (retrying)");
                }
            }
            Err(e) => tracing::error!(error = %e, "the lag refresh failed"),
        }
    }
}

/// Sets `consumer_lag` of each assigned partition: its high watermark minus the next offset
/// to persist ([`partition_lag`]). Gives up early once `stop` fires.
fn refresh_lag(
    consumer: &StreamConsumer<GroupContext>,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> KafkaResult<()> {
    const TIMEOUT: Duration = Duration::from_secs(2);
    let assignment = consumer.assignment()?;
    if assignment.count() == 0 {
        return Ok(());
    }
    let committed: HashMap<(String, i32), i64> = consumer
        .committed_offsets(assignment.clone(), TIMEOUT)?
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
            _ => None,
        })
        .collect();
    for e in assignment.elements() {
        if stop.is_cancelled() {
            break;
        }
        let (topic, partition) = (e.topic(), e.partition());
        let (low, high) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
        let committed = committed.get(&(topic.to_owned(), partition)).copied();
        let lag = partition_lag(high, low, committed, metrics.stored_offset(topic, partition));
        metrics.set_lag(topic, partition, lag);
    }
    Ok(())
}

/// Up to `batch_size` messages: waits for the first, then at most `batch_ms` for the rest.
/// The flag says shutdown was requested (the messages in hand are still to be processed).
async fn collect<'c>(
    consumer: &'c StreamConsumer<GroupContext>,
    settings: &Settings,
    shutdown: &CancellationToken,
    errors: &mut Throttle,
) -> (Vec<BorrowedMessage<'c>>, bool) {
    let mut batch = Vec::new();
    let mut push = |batch: &mut Vec<BorrowedMessage<'c>>, result: KafkaResult<BorrowedMessage<'c>>| match result {
        Ok(m) => batch.push(m),
        Err(e) => {
            if errors.ready() {
                tracing::warn!(error = %e, "Kafka error while consuming (retrying)");
            }
        }
    };
    tokio::select! {
        biased;
        () = shutdown.cancelled() => return (batch, true),
        r = consumer.recv() => push(&mut batch, r),
    }
    if batch.is_empty() {
        // An error (broker down, topic missing): do not spin on it.
        tokio::select! {
            () = shutdown.cancelled() => return (batch, true),
            () = tokio::time::sleep(Duration::from_millis(100)) => return (batch, false),
        }
    }
    let deadline = tokio::time::sleep(settings.batch_wait());
    tokio::pin!(deadline);
    while batch.len() < settings.batch_size {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return (batch, true),
            () = &mut deadline => break,
            r = consumer.recv() => push(&mut batch, r),
        }
    }
    (batch, false)
}

/// A message kept for the dead-letter topic: everything it must be republished with.
struct Held {
    topic: Kind,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
}

/// A collected batch, decoded, owned, handed from the reader to the writer.
struct Work {
    decoded: Decoded,
    messages: Vec<Held>,
}

impl Work {
    fn new(batch: &[BorrowedMessage<'_>], settings: &Settings) -> Self {
        let kind = |m: &BorrowedMessage<'_>| settings.kind_of(m.topic());
        let incoming: Vec<Incoming<'_>> =
            batch.iter().map(|m| Incoming { kind: kind(m), payload: m.payload().unwrap_or_default() }).collect();
        let decoded = decode(&incoming, unix_now());
        let messages = batch
            .iter()
            .map(|m| Held {
                topic: kind(m),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec),
                headers: m.headers().map(|h| h.detach()),
            })
            .collect();
        Self { decoded, messages }
    }
}

/// One dead letter: a whole message, or one bad list of an impressions batch.
struct DeadLetter<'a> {
    /// Index of the message in the batch.
    message: usize,
    /// The bad list's position in its batch and its bytes.
    list: Option<(usize, &'a [u8])>,
    reason: &'a EventError,
}

/// Every dead letter of a persisted batch, in message order.
fn dead_letters(outcome: &Outcome) -> Vec<DeadLetter<'_>> {
    let whole = outcome.rejected.iter().map(|(message, reason)| DeadLetter { message: *message, list: None, reason });
    let lists = outcome.rejected_lists.iter().map(|(message, bad)| DeadLetter {
        message: *message,
        list: Some((bad.index, bad.payload.as_slice())),
        reason: &bad.error,
    });
    let mut letters: Vec<DeadLetter<'_>> = whole.chain(lists).collect();
    letters.sort_by_key(|l| (l.message, l.list.map(|(i, _)| i)));
    letters
}

/// The second stage: persists batches, dead-letters poison, stores offsets.
struct Writer {
    consumer: Arc<StreamConsumer<GroupContext>>,
    dlq: FutureProducer,
    store: Store,
    catalogue: Catalogue,
    metrics: Metrics,
    on_persisted: Option<OnPersisted>,
    settings: Settings,
}

impl Writer {
    async fn run(mut self, mut batches: mpsc::Receiver<Work>, shutdown: CancellationToken) {
        while let Some(work) = batches.recv().await {
            if !self.process(&work, &shutdown).await {
                break;
            }
        }
    }

    fn topic(&self, kind: Kind) -> &str {
        self.settings.topic_of(kind)
    }

    /// Handles one batch to the end: persisted, poison dead-lettered, offsets stored. Returns
    /// false if shutdown interrupted it (nothing of it stored then).
    async fn process(&mut self, work: &Work, shutdown: &CancellationToken) -> bool {
        let mut backoff = Backoff::new();
        let outcome = loop {
            let started = Instant::now();
            let persisted = persist(&self.store, &mut self.catalogue, &work.decoded).await;
            self.metrics.db_write(started.elapsed());
            match persisted {
                Ok(outcome) => break outcome,
                Err(error) => {
                    self.metrics.db_retry();
                    tracing::warn!(%error, events = work.messages.len(), "database write failed; retrying the batch");
                    if !backoff.wait(shutdown).await {
                        return false;
                    }
                }
            }
        };
        if let Some(follow) = &self.on_persisted {
            follow(&outcome.persisted_ratings);
        }

        if !outcome.rejected.is_empty() || !outcome.rejected_lists.is_empty() {
            let letters = dead_letters(&outcome);
            let mut backoff = Backoff::new();
            loop {
                match self.dead_letter(&work.messages, &letters).await {
                    Ok(()) => break,
                    Err(error) => {
                        self.metrics.dlq_retry();
                        tracing::warn!(%error, "publishing dead letters failed; retrying");
                        if !backoff.wait(shutdown).await {
                            return false;
                        }
                    }
                }
            }
            for letter in &letters {
                self.metrics.dead_lettered(letter.reason.kind());
                let m = &work.messages[letter.message];
                tracing::debug!(topic = self.topic(m.topic), offset = m.offset, reason = %letter.reason, "dead-lettered");
            }
        }

        // The batch is safe: store the next offset of each partition it touched.
        let mut last: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for m in &work.messages {
            let offset = last.entry((self.topic(m.topic), m.partition)).or_insert(m.offset);
            *offset = (*offset).max(m.offset);
        }
        for ((topic, partition), offset) in last {
            // `store_offset` stores offset + 1, the next message to read.
            match self.consumer.store_offset(topic, partition, offset) {
                Ok(()) => self.metrics.offset_stored(topic, partition, offset + 1),
                Err(e) => {
                    tracing::debug!(error = %e, topic, partition, "offset not stored (partition revoked meanwhile)");
                }
            }
        }
        self.metrics.batch_done(work.messages.len(), outcome.ratings, outcome.tags, outcome.impressions);
        true
    }

    /// Publishes the rejected messages unchanged (key, payload, headers) and the bad lists of
    /// impression batches (the message's key and headers, the list's own bytes) to the
    /// dead-letter topic, with the reason in headers, and waits for every acknowledgement.
    async fn dead_letter(&self, messages: &[Held], letters: &[DeadLetter<'_>]) -> Result<(), KafkaError> {
        let mut pending = Vec::with_capacity(letters.len());
        for letter in letters {
            let m = &messages[letter.message];
            let mut headers = m.headers.clone().unwrap_or_default();
            let text = letter.reason.to_string();
            let partition = m.partition.to_string();
            let offset = m.offset.to_string();
            for (key, value) in [
                (DLQ_REASON, text.as_str()),
                (DLQ_KIND, letter.reason.kind()),
                (DLQ_TOPIC, self.topic(m.topic)),
                (DLQ_PARTITION, partition.as_str()),
                (DLQ_OFFSET, offset.as_str()),
            ] {
                headers = headers.insert(Header { key, value: Some(value) });
            }
            if let Some((index, _)) = letter.list {
                let index = index.to_string();
                headers = headers.insert(Header { key: DLQ_LIST, value: Some(index.as_str()) });
            }
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.settings.dlq_topic).headers(headers);
            if let Some(key) = &m.key {
                record = record.key(key.as_slice());
            }
            if let Some((_, list)) = letter.list {
                record = record.payload(list);
            } else if let Some(payload) = &m.payload {
                record = record.payload(payload.as_slice());
            }
            pending.push(self.dlq.send_result(record).map_err(|(e, _)| e)?);
        }
        for delivery in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(e),
                Err(_) => return Err(KafkaError::Canceled),
            }
        }
        Ok(())
    }
}
