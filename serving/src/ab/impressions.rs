//! Every list served becomes a [`ListShown`] event on the impressions topic, without the
//! request waiting for Kafka or paying for a Kafka message: the handler appends the list to a
//! pending vector (a lock and a push), and a thread of its own takes the vector every
//! [`LINGER`], encodes its lists into batches ([`ListsShownWriter`], one Kafka message per
//! batch) and hands them to librdkafka. At 10,000 lists a second, one message per list cost
//! serving 2.5 µs of CPU per request and the one-process demo 21 µs; batched, 0.6 and 7 µs
//! (BENCHMARKS.md): a batch pays the producer's queue, delivery report, broker and consumer
//! fetch once for a thousand lists. The idempotent producer keeps each batch once per
//! partition; the consumer group persists each list keyed by its own event id. An impression
//! that cannot be queued (the pending vector or librdkafka's queue full, broker long gone) is
//! counted, not retried: showing the list matters more than recording it.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec};
use rdkafka::ClientContext;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use schemas::events::{EventId, ListShown, ListsShownWriter, SCHEMA_VERSION, unix_now};
use schemas::recommend::{Strategy, UserRecommendations};

/// How long lists gather before they are sent: the delay an impression may wait, and what
/// sets the batches' size (the request rate times this).
pub const LINGER: Duration = Duration::from_millis(100);

/// Most lists waiting to be encoded (ten seconds at 10,000 requests/s): beyond it, while the
/// sending thread cannot keep up, new impressions are dropped and counted.
const MAX_PENDING: usize = 100_000;

/// Counts deliveries, in lists, as librdkafka reports them for each batch.
struct Deliveries {
    delivered: IntCounter,
    failed: IntCounter,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    /// The number of lists in the batch.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, lists: usize) {
        let lists = lists as u64;
        match result {
            Ok(_) => self.delivered.inc_by(lists),
            Err((error, _)) => {
                self.failed.inc_by(lists);
                tracing::debug!(%error, lists, "a batch of impressions was not delivered");
            }
        }
    }
}

/// What the handlers and the sending thread share.
struct Shared {
    state: Mutex<Pending>,
    /// Wakes the sending thread early, to stop.
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    lists: Vec<ListShown>,
    /// Set at shutdown: send what is pending, wait up to this long for deliveries, stop.
    stop: Option<Duration>,
}

/// Counters of impressions that never reached the producer.
#[derive(Clone)]
struct Lost {
    dropped: IntCounter,
    invalid: IntCounter,
}

/// Where shown lists go.
pub struct ImpressionLog {
    shared: Arc<Shared>,
    lost: Lost,
    sender: Mutex<Option<JoinHandle<()>>>,
}

impl ImpressionLog {
    /// A producer to `topic` on `brokers` and its sending thread, counting into `counter`
    /// (label `result`, in lists: `delivered`, `failed`, `dropped`, `invalid`).
    ///
    /// # Errors
    /// librdkafka refused the configuration, or the thread could not start.
    pub fn new(brokers: &str, topic: &str, counter: &IntCounterVec) -> anyhow::Result<Self> {
        let [delivered, failed, dropped, invalid] =
            ["delivered", "failed", "dropped", "invalid"].map(|r| counter.with_label_values(&[r]));
        let producer: ThreadedProducer<Deliveries> =
            producer::producer_config(brokers).create_with_context(Deliveries { delivered, failed })?;
        let shared = Arc::new(Shared { state: Mutex::new(Pending::default()), wake: Condvar::new() });
        let lost = Lost { dropped, invalid };
        let sender = Sender { shared: shared.clone(), producer, topic: topic.to_owned(), lost: lost.clone() };
        let sender = std::thread::Builder::new().name("impressions".into()).spawn(move || sender.run())?;
        Ok(Self { shared, lost, sender: Mutex::new(Some(sender)) })
    }

    /// Records `list` as shown now, at stream time `stream_time`; the sending thread gives it
    /// an event id and sends it within [`LINGER`].
    pub fn shown(&self, list: &UserRecommendations, stream_time: i64, now: i64) {
        let event = ListShown {
            schema_version: SCHEMA_VERSION,
            event_id: EventId::from_u128(0),
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
        let mut pending = self.shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.stop.is_some() || pending.lists.len() >= MAX_PENDING {
            drop(pending);
            self.lost.dropped.inc();
            return;
        }
        pending.lists.push(event);
    }

    /// Sends what is pending and waits up to `timeout` for it to be delivered (at shutdown).
    /// Lists shown afterwards are dropped.
    pub fn flush(&self, timeout: Duration) {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner).stop = Some(timeout);
        self.shared.wake.notify_one();
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(sender) = sender
            && sender.join().is_err()
        {
            tracing::error!("the impressions thread panicked");
        }
    }
}

impl Drop for ImpressionLog {
    fn drop(&mut self) {
        self.flush(Duration::ZERO);
    }
}

/// The sending thread: takes the pending lists every [`LINGER`], encodes them in batches and
/// queues each batch with librdkafka (whose own thread delivers it).
struct Sender {
    shared: Arc<Shared>,
    producer: ThreadedProducer<Deliveries>,
    topic: String,
    lost: Lost,
}

impl Sender {
    fn run(self) {
        let mut writer = ListsShownWriter::new();
        let mut lists = Vec::new();
        loop {
            let stop = {
                let pending = self.shared.state.lock().unwrap_or_else(PoisonError::into_inner);
                let (mut pending, _) = self
                    .shared
                    .wake
                    .wait_timeout_while(pending, LINGER, |p| p.stop.is_none())
                    .unwrap_or_else(PoisonError::into_inner);
                // Swap rather than take, so both vectors keep their capacity.
                std::mem::swap(&mut pending.lists, &mut lists);
                pending.stop
            };
            self.send(&mut writer, &mut lists);
            if let Some(timeout) = stop {
                if let Err(error) = self.producer.flush(timeout) {
                    tracing::warn!(%error, "impressions still queued at shutdown");
                }
                return;
            }
        }
    }

    /// Encodes `lists` (emptying it) into batches and queues them.
    fn send(&self, writer: &mut ListsShownWriter, lists: &mut Vec<ListShown>) {
        let now = unix_now();
        for mut list in lists.drain(..) {
            list.event_id = EventId::time_ordered();
            let pushed = match writer.push(&list, now) {
                Ok(false) => {
                    self.queue(writer);
                    writer.push(&list, now)
                }
                pushed => pushed,
            };
            if let Err(error) = pushed {
                self.lost.invalid.inc();
                tracing::warn!(%error, "an impression failed its own checks");
            }
        }
        self.queue(writer);
    }

    /// Hands the batch in `writer`, if any, to librdkafka.
    fn queue(&self, writer: &mut ListsShownWriter) {
        let lists = writer.len();
        if lists == 0 {
            return;
        }
        let payload = writer.take();
        // No key: batches spread over the partitions; each list names its user.
        let record: BaseRecord<'_, (), [u8], usize> = BaseRecord::with_opaque_to(&self.topic, lists).payload(&payload);
        if let Err((error, _)) = self.producer.send(record) {
            self.lost.dropped.inc_by(lists as u64);
            tracing::debug!(%error, lists, "a batch of impressions could not be queued");
        }
    }
}

#[cfg(test)]
mod tests {
    use producer::TopicSpec;
    use producer::embedded::EmbeddedBroker;
    use prometheus::Opts;
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use schemas::events::decode_lists_at;
    use schemas::recommend::RecommendedMovie;

    use super::*;

    fn list(user_id: i64, experiment: bool) -> UserRecommendations {
        UserRecommendations {
            user_id,
            strategy: Strategy::Personal,
            model_version: 4,
            items: (1..=10)
                .map(|m| RecommendedMovie {
                    movie_id: user_id * 100 + m,
                    title: String::new(),
                    genres: String::new(),
                    score: 0.0,
                    because: None,
                })
                .collect(),
            experiment: experiment.then(|| "exp".to_owned()),
            variant: experiment.then(|| "b".to_owned()),
        }
    }

    /// The topic's messages, as payloads, until they hold `lists` lists (or 30 s pass).
    fn batches(brokers: &str, topic: &str, lists: usize, now: i64) -> Vec<Vec<ListShown>> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "impressions-test")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut batches: Vec<Vec<ListShown>> = Vec::new();
        while batches.iter().map(Vec::len).sum::<usize>() < lists && std::time::Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                let decoded = decode_lists_at(m.payload().unwrap_or_default(), now).unwrap();
                batches.push(decoded.into_iter().map(Result::unwrap).collect());
            }
        }
        batches
    }

    #[test]
    fn shown_lists_travel_in_batches_each_list_with_its_own_time_ordered_id() {
        let broker = EmbeddedBroker::start(&[TopicSpec::new("impressions", 2)]).unwrap();
        let counter = IntCounterVec::new(Opts::new("impressions_total", "test"), &["result"]).unwrap();
        let log = ImpressionLog::new(broker.bootstrap_servers(), "impressions", &counter).unwrap();
        let now = unix_now();
        for user in 1..=2_500 {
            log.shown(&list(user, user % 2 == 0), 1_000_000_000 + user, now);
        }
        log.flush(Duration::from_secs(10));
        log.shown(&list(1, false), 1_000_000_000, now);
        let count = |result: &str| counter.with_label_values(&[result]).get();
        assert_eq!((count("delivered"), count("failed"), count("invalid")), (2_500, 0, 0));
        assert_eq!(count("dropped"), 1, "a list shown after the flush is dropped");

        // Far fewer messages than lists, each a batch under the size limit.
        let batches = batches(broker.bootstrap_servers(), "impressions", 2_500, now);
        assert!((2..=10).contains(&batches.len()), "{} messages", batches.len());
        let mut lists: Vec<ListShown> = batches.into_iter().flatten().collect();
        lists.sort_by_key(|l| l.user_id);
        assert_eq!(lists.len(), 2_500);
        let second = &lists[1];
        assert_eq!((second.user_id, second.stream_time, second.timestamp), (2, 1_000_000_002, now));
        assert_eq!(second.movie_ids, (201..=210).collect::<Vec<i64>>());
        assert_eq!((second.experiment.as_deref(), second.variant.as_deref()), (Some("exp"), Some("b")));
        assert_eq!((lists[0].experiment.as_deref(), lists[0].strategy.as_str()), (None, "personal"));
        let ids: std::collections::HashSet<u128> = lists.iter().map(|l| l.event_id.as_u128()).collect();
        assert_eq!(ids.len(), 2_500, "every list has its own id");
        let millis = u128::try_from(now).unwrap() * 1000;
        assert!(ids.iter().all(|id| id >> 80 >= millis - 1000), "ids are time-ordered (UUIDv7) from now");
    }
}
