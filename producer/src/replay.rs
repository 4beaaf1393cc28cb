//! Replaying events in timestamp order, paced, waiting for every delivery report.
//!
//! `ratings.csv` is sorted by user, so a replay first loads the release into a [`Timeline`]:
//! every rating packed into 16 bytes (timestamp, user, movie, half-stars in one `u128`, so
//! sorting the integers sorts by time), 25 M ratings in 400 MB, and the tags beside them. The
//! two are merged by timestamp as they are sent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use movielens::{RatingRow, Release, RowError, TagRow};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use schemas::events::{RatingSubmitted, TagAdded, encode_at, unix_now};
use tokio_util::sync::CancellationToken;

use crate::metrics::{LATENCY_SAMPLE, ProducerMetrics, TopicMetrics};

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as the broker takes them.
    Max,
    /// This many times real time, following the events' timestamps (`--speed 1000`).
    Speed(f64),
    /// This many events per second (`--rate 5000`).
    Rate(f64),
}

impl Pace {
    /// Parses `--speed`: a positive factor or `max`.
    ///
    /// # Errors
    /// Anything else.
    pub fn speed(text: &str) -> Result<Pace, String> {
        if text.eq_ignore_ascii_case("max") {
            return Ok(Pace::Max);
        }
        match text.parse::<f64>() {
            Ok(x) if x > 0.0 && x.is_finite() => Ok(Pace::Speed(x)),
            _ => Err(format!("{text:?} is neither a positive number nor \"max\"")),
        }
    }
}

/// Keeps the consumer's lag bounded on the embedded broker, whose partitions drop old messages:
/// sending pauses while more than `max_lag` sent events are not yet `handled`.
#[derive(Clone)]
pub struct Backpressure {
    /// How many events the consumer has handled (persisted or dead-lettered) so far.
    pub handled: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// The most events allowed in flight between producer and consumer.
    pub max_lag: u64,
}

impl std::fmt::Debug for Backpressure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backpressure").field("max_lag", &self.max_lag).finish_non_exhaustive()
    }
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Topic of the ratings.
    pub topic: String,
    /// Topic of the tags; `None` leaves tags out.
    pub tags_topic: Option<String>,
    /// How fast.
    pub pace: Pace,
    /// Send at most this many events (the first ones in time order).
    pub limit: Option<u64>,
    /// Draw a progress bar with events/s on stderr (hidden when stderr is not a terminal).
    pub progress: bool,
    /// Bound the consumer's lag (embedded broker).
    pub backpressure: Option<Backpressure>,
    /// How long to wait for the last delivery reports.
    pub flush_timeout: Duration,
    /// Count sends, deliveries and failures per topic, time a sample of deliveries and show
    /// the schedule lag in these Prometheus families.
    pub metrics: Option<ProducerMetrics>,
}

impl ReplayOptions {
    /// Ratings to `topic`, no tags, as fast as possible, no progress bar.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            tags_topic: None,
            pace: Pace::Max,
            limit: None,
            progress: false,
            backpressure: None,
            flush_timeout: Duration::from_millis(u64::from(crate::config::DELIVERY_TIMEOUT_MS) + 10_000),
            metrics: None,
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// Events handed to the producer.
    pub sent: u64,
    /// Events the broker acknowledged.
    pub delivered: u64,
    /// Events whose delivery failed.
    pub failed: u64,
    /// Events not sent because they are invalid (logged).
    pub skipped: u64,
    /// The first delivery error.
    pub first_error: Option<String>,
    /// The largest gap seen between sent and handled events (with [`Backpressure`]).
    pub max_lag: u64,
    /// From the first send to the last delivery report.
    pub elapsed: Duration,
    /// Stopped early by the cancellation token.
    pub interrupted: bool,
}

impl ReplayReport {
    /// Every event sent was acknowledged, and the replay ran to its end.
    pub fn is_complete(&self) -> bool {
        !self.interrupted && self.failed == 0 && self.delivered == self.sent
    }

    /// Acknowledged events per second.
    pub fn rate(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One event to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// To the ratings topic.
    Rating(RatingRow),
    /// To the tags topic.
    Tag(TagRow),
}

impl Outgoing {
    /// Its timestamp.
    pub fn timestamp(&self) -> i64 {
        match self {
            Outgoing::Rating(r) => r.timestamp,
            Outgoing::Tag(t) => t.timestamp,
        }
    }
}

/// A release's ratings and tags in timestamp order, compactly.
#[derive(Debug, Default)]
pub struct Timeline {
    ratings: Vec<u128>,
    tags: Vec<TagRow>,
    /// Rows of the release's files that do not parse (logged and left out).
    pub rejected: u64,
}

fn pack(r: &RatingRow) -> Option<u128> {
    let ts = u32::try_from(r.timestamp).ok()?;
    let user = u32::try_from(r.user_id).ok()?;
    let movie = u32::try_from(r.movie_id).ok()?;
    let half = r.rating * 2.0;
    if half.fract() != 0.0 || !(0.0..=255.0).contains(&half) {
        return None;
    }
    Some((u128::from(ts) << 96) | (u128::from(user) << 64) | (u128::from(movie) << 32) | u128::from(half as u8))
}

fn unpack(p: u128) -> RatingRow {
    RatingRow {
        timestamp: i64::from((p >> 96) as u32),
        user_id: i64::from((p >> 64) as u32),
        movie_id: i64::from((p >> 32) as u32),
        rating: f32::from(p as u8) / 2.0,
    }
}

impl Timeline {
    /// Loads and sorts a release's ratings (and tags when `with_tags`).
    ///
    /// # Errors
    /// `ratings.csv` (or an existing `tags.csv`) cannot be opened. Bad rows are counted in
    /// [`Timeline::rejected`] and logged.
    pub fn load(release: &Release, with_tags: bool) -> Result<Self, RowError> {
        let started = Instant::now();
        let ratings = release.ratings()?;
        let tags = if with_tags { Some(release.tags()?) } else { None };
        let estimate = std::fs::metadata(release.file("ratings.csv")).map_or(0, |m| m.len() / 24);
        let mut timeline = Timeline { ratings: Vec::with_capacity(estimate as usize), ..Default::default() };
        for row in ratings {
            match row {
                Ok(row) => timeline.push_rating(&row),
                Err(e) => timeline.reject(&e),
            }
        }
        for row in tags.into_iter().flatten() {
            match row {
                Ok(row) => timeline.tags.push(row),
                Err(e) => timeline.reject(&e),
            }
        }
        timeline.sort();
        tracing::info!(
            ratings = timeline.ratings.len(),
            tags = timeline.tags.len(),
            rejected = timeline.rejected,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "timeline loaded"
        );
        Ok(timeline)
    }

    /// A timeline of the given rows (any order).
    pub fn from_rows(ratings: impl IntoIterator<Item = RatingRow>, tags: impl IntoIterator<Item = TagRow>) -> Self {
        let mut timeline = Timeline::default();
        for r in ratings {
            timeline.push_rating(&r);
        }
        timeline.tags.extend(tags);
        timeline.sort();
        timeline
    }

    fn push_rating(&mut self, row: &RatingRow) {
        match pack(row) {
            Some(p) => self.ratings.push(p),
            None => self.reject(&format!("rating {row:?} has an id or timestamp outside 0..2^32")),
        }
    }

    fn reject(&mut self, error: &dyn std::fmt::Display) {
        self.rejected += 1;
        if self.rejected <= 20 {
            tracing::warn!(%error, "row left out of the replay");
        }
    }

    fn sort(&mut self) {
        self.ratings.sort_unstable();
        self.tags.sort_by_key(|t| (t.timestamp, t.user_id, t.movie_id));
    }

    /// Events in it.
    pub fn len(&self) -> u64 {
        (self.ratings.len() + self.tags.len()) as u64
    }

    /// Whether it has no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ratings in it.
    pub fn rating_count(&self) -> u64 {
        self.ratings.len() as u64
    }

    /// All events, ratings and tags merged by timestamp.
    pub fn iter(&self) -> Events<&Timeline> {
        Events { timeline: self, rating: 0, tag: 0 }
    }

    /// [`Timeline::iter`] owning a shared timeline, for another thread.
    pub fn into_events(self: Arc<Self>) -> Events<Arc<Timeline>> {
        Events { timeline: self, rating: 0, tag: 0 }
    }
}

/// The events of a [`Timeline`] in time order.
#[derive(Debug)]
pub struct Events<T> {
    timeline: T,
    rating: usize,
    tag: usize,
}

impl<T: std::ops::Deref<Target = Timeline>> Iterator for Events<T> {
    type Item = Outgoing;

    fn next(&mut self) -> Option<Outgoing> {
        let timeline = &*self.timeline;
        let rating = timeline.ratings.get(self.rating).map(|&p| unpack(p));
        let tag = timeline.tags.get(self.tag);
        match (rating, tag) {
            (Some(r), Some(t)) if t.timestamp < r.timestamp => {
                self.tag += 1;
                Some(Outgoing::Tag(t.clone()))
            }
            (Some(r), _) => {
                self.rating += 1;
                Some(Outgoing::Rating(r))
            }
            (None, Some(t)) => {
                self.tag += 1;
                Some(Outgoing::Tag(t.clone()))
            }
            (None, None) => None,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.timeline.ratings.len() - self.rating + self.timeline.tags.len() - self.tag;
        (left, Some(left))
    }
}

/// Index of the ratings topic in [`DeliveryCounter::topics`] and in a delivery opaque.
const RATINGS: usize = 0;
/// Index of the tags topic.
const TAGS: usize = 1;

/// What a message carries to its delivery report, in one `usize`: bit 0 is the topic
/// ([`RATINGS`] or [`TAGS`]); the rest, when the message is one of the timed sample, is 1 + the
/// nanoseconds from the replay's start to its send (0: not timed).
fn opaque(topic: usize, sent_nanos: Option<u64>) -> usize {
    let stamp = sent_nanos.map_or(0, |n| (n as usize).saturating_add(1) & (usize::MAX >> 1));
    (stamp << 1) | topic
}

/// Counts delivery reports (called on the producer's polling thread).
#[derive(Default)]
struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Prometheus: the families, and the ratings' and tags' counters.
    metrics: Option<(ProducerMetrics, [Option<TopicMetrics>; 2])>,
    /// When the replay started (the origin of the timed sends).
    started: Option<Instant>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let topic = self.metrics.as_ref().and_then(|(_, topics)| topics[opaque & 1].as_ref());
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                if let Some(t) = topic {
                    t.delivered.inc();
                }
                let stamp = opaque >> 1;
                if stamp != 0
                    && let (Some((metrics, _)), Some(started)) = (&self.metrics, self.started)
                {
                    let sent = Duration::from_nanos((stamp - 1) as u64);
                    metrics.observe_send(started.elapsed().saturating_sub(sent));
                }
            }
            Err((error, _)) => {
                if let Some(t) = topic {
                    t.failures.inc();
                }
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::error!(%error, "delivery failed");
                }
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| error.to_string());
                }
            }
        }
    }
}

/// Sends counted per topic since the last flush to Prometheus (the hot path touches no
/// shared counter).
struct SendCounts {
    topics: [Option<TopicMetrics>; 2],
    pending: [u64; 2],
}

impl SendCounts {
    fn flush(&mut self) {
        for (topic, pending) in self.topics.iter().zip(&mut self.pending) {
            if let Some(t) = topic
                && *pending > 0
            {
                t.sent.inc_by(*pending);
            }
            *pending = 0;
        }
    }
}

/// Paces the send loop.
struct Pacer {
    pace: Pace,
    started: Instant,
    first_ts: Option<i64>,
}

impl Pacer {
    /// How long to wait before sending event number `index` with timestamp `ts`.
    fn wait(&mut self, index: u64, ts: i64) -> Option<Duration> {
        let due = match self.pace {
            Pace::Max => return None,
            Pace::Speed(x) => {
                let first = *self.first_ts.get_or_insert(ts);
                Duration::from_secs_f64(((ts - first).max(0) as f64) / x)
            }
            Pace::Rate(n) => Duration::from_secs_f64(index as f64 / n),
        };
        let elapsed = self.started.elapsed();
        (due > elapsed + Duration::from_millis(1)).then(|| due - elapsed)
    }

    /// How far behind schedule event number `index` with timestamp `ts` is (zero when on
    /// time, and always for [`Pace::Max`]).
    fn behind(&self, index: u64, ts: i64) -> Duration {
        let due = match self.pace {
            Pace::Max => return Duration::ZERO,
            Pace::Speed(x) => match self.first_ts {
                Some(first) => Duration::from_secs_f64(((ts - first).max(0) as f64) / x),
                None => return Duration::ZERO,
            },
            Pace::Rate(n) => Duration::from_secs_f64(index as f64 / n),
        };
        self.started.elapsed().saturating_sub(due)
    }
}

fn progress_bar(show: bool, total: Option<u64>) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let template = "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events {per_sec:>14} eta {eta}";
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Sleeps `total` in slices, so cancellation is noticed; returns false if cancelled.
fn sleep_unless_cancelled(total: Duration, cancel: &CancellationToken) -> bool {
    let until = Instant::now() + total;
    loop {
        if cancel.is_cancelled() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Sends `events` on the calling (blocking) thread with a [`ThreadedProducer`] made from
/// `config`, and waits for every delivery report. `total` sizes the progress bar.
///
/// # Errors
/// The producer could not be created, or librdkafka refused a message outright (unknown
/// topic name, message too large). Failed deliveries are not errors: they are counted in the
/// report ([`ReplayReport::is_complete`]).
pub fn replay_blocking(
    config: &ClientConfig,
    events: impl Iterator<Item = Outgoing>,
    total: Option<u64>,
    options: &ReplayOptions,
    cancel: &CancellationToken,
) -> Result<ReplayReport, KafkaError> {
    let topics =
        |m: &ProducerMetrics| [Some(m.topic(&options.topic)), options.tags_topic.as_deref().map(|t| m.topic(t))];
    let counter = DeliveryCounter {
        metrics: options.metrics.as_ref().map(|m| (m.clone(), topics(m))),
        started: Some(Instant::now()),
        ..DeliveryCounter::default()
    };
    let time_origin = counter.started.unwrap_or_else(Instant::now);
    let producer: ThreadedProducer<DeliveryCounter> = config.create_with_context(counter)?;
    let total = match (total, options.limit) {
        (Some(t), Some(l)) => Some(t.min(l)),
        (t, l) => t.or(l),
    };
    let metrics = options.metrics.as_ref();
    let mut counts = SendCounts { topics: metrics.map_or([None, None], topics), pending: [0, 0] };
    if let (Some(m), Some(total)) = (metrics, total) {
        m.set_replay_planned(total);
    }
    let bar = progress_bar(options.progress, total);
    let now = unix_now();
    let mut report = ReplayReport::default();
    let mut pacer = Pacer { pace: options.pace, started: Instant::now(), first_ts: None };
    let started = Instant::now();
    let mut key_buf = String::new();
    let limit = options.limit.unwrap_or(u64::MAX);
    let mut unreported = 0;

    for (index, event) in events.take(usize::try_from(limit).unwrap_or(usize::MAX)).enumerate() {
        let index = index as u64;
        if index.is_multiple_of(1024) {
            if let Some(m) = metrics {
                counts.flush();
                m.set_replay_lag(pacer.behind(index, event.timestamp()));
            }
            if cancel.is_cancelled() {
                report.interrupted = true;
                break;
            }
            if let Some(bp) = &options.backpressure {
                loop {
                    let lag = report.sent.saturating_sub((bp.handled)());
                    report.max_lag = report.max_lag.max(lag);
                    if lag <= bp.max_lag {
                        break;
                    }
                    if let Some(m) = metrics {
                        // Held back by the consumer: the schedule slips while we wait.
                        m.set_replay_lag(pacer.behind(index, event.timestamp()));
                    }
                    if !sleep_unless_cancelled(Duration::from_millis(2), cancel) {
                        break;
                    }
                }
            }
        }
        if let Some(wait) = pacer.wait(index, event.timestamp())
            && !sleep_unless_cancelled(wait, cancel)
        {
            report.interrupted = true;
            break;
        }
        let (topic, topic_index, payload, user) = match &event {
            Outgoing::Rating(r) => {
                let e = RatingSubmitted::new(r.user_id, r.movie_id, f64::from(r.rating), r.timestamp);
                (options.topic.as_str(), RATINGS, encode_at(&e, now), r.user_id)
            }
            Outgoing::Tag(t) => {
                let Some(topic) = &options.tags_topic else { continue };
                let e = TagAdded::new(t.user_id, t.movie_id, t.tag.as_str(), t.timestamp);
                (topic.as_str(), TAGS, encode_at(&e, now), t.user_id)
            }
        };
        let payload = match payload {
            Ok(p) => p,
            Err(error) => {
                report.skipped += 1;
                if report.skipped <= 20 {
                    tracing::warn!(%error, ?event, "invalid event not sent");
                }
                continue;
            }
        };
        crate::send::write_key(&mut key_buf, user);
        let timed = metrics.is_some() && report.sent.is_multiple_of(LATENCY_SAMPLE);
        let stamp = timed.then(|| time_origin.elapsed().as_nanos() as u64);
        let mut record =
            BaseRecord::with_opaque_to(topic, opaque(topic_index, stamp)).key(key_buf.as_str()).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // The polling thread drains the queue as acknowledgements arrive.
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    counts.flush();
                    bar.abandon();
                    return Err(e);
                }
            }
        }
        report.sent += 1;
        counts.pending[topic_index] += 1;
        unreported += 1;
        if unreported == 4096 {
            bar.inc(unreported);
            unreported = 0;
        }
    }
    bar.inc(unreported);
    counts.flush();

    if let Err(e) = producer.flush(Timeout::After(options.flush_timeout)) {
        tracing::error!(error = %e, "not every event was acknowledged in time");
    }
    report.elapsed = started.elapsed();
    if let Some(m) = metrics {
        m.set_replay_lag(Duration::ZERO);
    }
    let counter = producer.context();
    report.delivered = counter.delivered.load(Ordering::Relaxed);
    report.failed = counter.failed.load(Ordering::Relaxed);
    report.first_error = counter.first_error.lock().ok().and_then(|e| e.clone());
    if report.is_complete() {
        bar.finish();
    } else {
        bar.abandon();
    }
    Ok(report)
}

/// [`replay_blocking`] on a blocking thread.
///
/// # Errors
/// As [`replay_blocking`].
pub async fn replay<I>(
    config: ClientConfig,
    events: I,
    total: Option<u64>,
    options: ReplayOptions,
    cancel: CancellationToken,
) -> Result<ReplayReport, KafkaError>
where
    I: Iterator<Item = Outgoing> + Send + 'static,
{
    tokio::task::spawn_blocking(move || replay_blocking(&config, events, total, &options, &cancel))
        .await
        .map_err(|_| KafkaError::Canceled)?
}

/// Replays a whole [`Timeline`] on a blocking thread.
///
/// # Errors
/// As [`replay_blocking`].
pub async fn replay_timeline(
    config: ClientConfig,
    timeline: Arc<Timeline>,
    options: ReplayOptions,
    cancel: CancellationToken,
) -> Result<ReplayReport, KafkaError> {
    let total = timeline.len();
    tokio::task::spawn_blocking(move || {
        replay_blocking(&config, timeline.into_events(), Some(total), &options, &cancel)
    })
    .await
    .map_err(|_| KafkaError::Canceled)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_keeps_every_field() {
        for row in [
            RatingRow::new(1, 1, 0.5, 788_918_400),
            RatingRow::new(162_541, 209_171, 5.0, 1_574_327_703),
            RatingRow::new(7, 3, 3.5, 0),
        ] {
            assert_eq!(unpack(pack(&row).unwrap()), row);
        }
        assert!(pack(&RatingRow::new(1, 1, 4.0, -5)).is_none());
        assert!(pack(&RatingRow::new(1 << 40, 1, 4.0, 5)).is_none());
    }

    #[test]
    fn the_timeline_is_in_time_order_with_tags_merged() {
        let ratings = vec![RatingRow::new(2, 1, 4.0, 30), RatingRow::new(1, 5, 3.0, 10), RatingRow::new(1, 2, 2.5, 20)];
        let tags = vec![
            TagRow { user_id: 1, movie_id: 5, tag: "late".into(), timestamp: 40 },
            TagRow { user_id: 1, movie_id: 5, tag: "early".into(), timestamp: 15 },
        ];
        let timeline = Timeline::from_rows(ratings, tags);
        let stamps: Vec<i64> = timeline.iter().map(|e| e.timestamp()).collect();
        assert_eq!(stamps, vec![10, 15, 20, 30, 40]);
        assert_eq!(timeline.len(), 5);
        assert_eq!(timeline.rating_count(), 3);
    }

    #[test]
    fn speed_parses_numbers_and_max() {
        assert_eq!(Pace::speed("max"), Ok(Pace::Max));
        assert_eq!(Pace::speed("1000"), Ok(Pace::Speed(1000.0)));
        assert!(Pace::speed("0").is_err());
        assert!(Pace::speed("fast").is_err());
    }

    #[test]
    fn the_pacer_spaces_events_by_rate_and_by_speed() {
        let mut rate = Pacer { pace: Pace::Rate(10.0), started: Instant::now(), first_ts: None };
        assert!(rate.wait(0, 0).is_none());
        let wait = rate.wait(10, 0).unwrap();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        let mut speed = Pacer { pace: Pace::Speed(100.0), started: Instant::now(), first_ts: None };
        assert!(speed.wait(0, 1_000).is_none());
        let wait = speed.wait(1, 1_200).unwrap();
        assert!(wait > Duration::from_millis(1900) && wait <= Duration::from_secs(2), "{wait:?}");
        let mut max = Pacer { pace: Pace::Max, started: Instant::now(), first_ts: None };
        assert!(max.wait(1_000_000, 0).is_none());
    }
}
