//! The live-model follower: every serving replica reads all partitions of the ratings topic
//! into its own model. Partitions are assigned explicitly (no group rebalancing, so replicas
//! never split the stream) and offsets live in the model's snapshots, not in Kafka: a restart
//! resumes exactly where the snapshot's model stopped. What the events feed is a [`Follower`]
//! (serving's live model); this module is the Kafka side, as [`crate::group`] is for the store.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use schemas::events::{RatingSubmitted, decode_at, unix_now};
use tokio_util::sync::CancellationToken;

/// Most messages handed to the model at once.
const BATCH: usize = 4096;
/// Shortest time between two catalogue reloads for unknown movies.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// Where the stream comes from.
#[derive(Debug, Clone)]
pub struct FollowSettings {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// The ratings topic.
    pub topic: String,
    /// Group id the consumer identifies as (it commits nothing: offsets are in snapshots).
    pub group: String,
}

/// What the follower feeds: a model that learns each rating (serving's live model).
pub trait Follower: Send + Sync + 'static {
    /// Whether `movie` is in the catalogue the model knows.
    fn knows_movie(&self, movie: i64) -> bool;
    /// Loads the catalogue again (movies imported since it was loaded).
    fn reload_catalogue(&self) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Learns `ratings` (of known movies, in stream order) and records the offsets they came
    /// from: `(partition, next offset)`.
    fn apply(&self, ratings: &[RatingSubmitted], offsets: &[(i32, i64)]);
    /// Counts events skipped: `malformed` (undecodable or invalid) or `unknown_movie`.
    fn skipped(&self, reason: &'static str, n: u64);
}

fn consumer(settings: &FollowSettings) -> anyhow::Result<StreamConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // A rating posted over HTTP should reach the model within a few tens of milliseconds.
        .set("fetch.wait.max.ms", "20")
        .create()
        .with_context(|| format!("creating the model's consumer on {}", settings.brokers))
}

/// The topic's partition ids, waiting (until `shutdown`) for the topic to exist.
async fn partitions(
    consumer: &Arc<StreamConsumer>,
    topic: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Vec<i32>>> {
    let mut warned = false;
    loop {
        let (c, t) = (consumer.clone(), topic.to_owned());
        let found = tokio::task::spawn_blocking(move || {
            c.fetch_metadata(Some(&t), Duration::from_secs(5)).map(|m| {
                m.topics()
                    .iter()
                    .filter(|mt| mt.name() == t && mt.error().is_none())
                    .flat_map(|mt| mt.partitions().iter().map(|p| p.id()))
                    .collect::<Vec<i32>>()
            })
        })
        .await?;
        match found {
            Ok(ids) if !ids.is_empty() => return Ok(Some(ids)),
            other => {
                if !warned {
                    tracing::warn!(topic, result = ?other.err(), "waiting for the ratings topic");
                    warned = true;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Reads the ratings topic from `start` (next offset per partition; partitions without one
/// start at the beginning) into `model` until `shutdown`. Each event is decoded and checked
/// against the catalogue once; undecodable events and ratings of movies outside the catalogue
/// are skipped and counted (the store's consumer group dead-letters them). A movie not seen
/// before reloads the catalogue (at most every few seconds), so movies imported while serving
/// are learned too.
///
/// # Errors
/// The consumer cannot be created or assigned.
pub async fn follow<F: Follower>(
    model: Arc<F>,
    settings: FollowSettings,
    start: BTreeMap<i32, i64>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let consumer = Arc::new(consumer(&settings)?);
    let Some(ids) = partitions(&consumer, &settings.topic, &shutdown).await? else { return Ok(()) };
    let mut assignment = TopicPartitionList::new();
    for &p in &ids {
        let offset = start.get(&p).map_or(Offset::Beginning, |&o| Offset::Offset(o));
        assignment.add_partition_offset(&settings.topic, p, offset)?;
    }
    consumer.assign(&assignment).context("assigning the ratings partitions")?;
    tracing::info!(topic = settings.topic, partitions = ids.len(), resumed = !start.is_empty(), "following the stream");

    let mut messages = consumer.stream().ready_chunks(BATCH);
    let mut decoded: Vec<Option<RatingSubmitted>> = Vec::with_capacity(BATCH);
    let mut known: Vec<RatingSubmitted> = Vec::with_capacity(BATCH);
    let mut known_flags: Vec<Option<bool>> = Vec::with_capacity(BATCH);
    let mut offsets: HashMap<i32, i64> = HashMap::new();
    let mut reloaded = Instant::now();
    loop {
        let chunk = tokio::select! {
            () = shutdown.cancelled() => break,
            chunk = messages.next() => match chunk { Some(c) => c, None => break },
        };
        let now = unix_now();
        for message in chunk {
            match message {
                Ok(m) => {
                    offsets.insert(m.partition(), m.offset() + 1);
                    decoded.push(decode_at::<RatingSubmitted>(m.payload().unwrap_or_default(), now).ok());
                }
                Err(error) => tracing::warn!(%error, "reading the ratings topic"),
            }
        }
        // One catalogue check per event; only the unknown ones are checked again, after a reload.
        known_flags.extend(decoded.iter().map(|e| e.as_ref().map(|e| model.knows_movie(e.movie_id))));
        if reloaded.elapsed() > RELOAD_EVERY && known_flags.contains(&Some(false)) {
            reloaded = Instant::now();
            match model.reload_catalogue().await {
                Ok(()) => {
                    for (flag, e) in known_flags.iter_mut().zip(&decoded) {
                        if let (Some(false), Some(e)) = (*flag, e) {
                            *flag = Some(model.knows_movie(e.movie_id));
                        }
                    }
                }
                Err(error) => tracing::warn!(error = format!("{error:#}"), "reloading the catalogue"),
            }
        }
        let (mut malformed, mut unknown) = (0u64, 0u64);
        for (event, flag) in decoded.drain(..).zip(known_flags.drain(..)) {
            match (event, flag) {
                (Some(e), Some(true)) => known.push(e),
                (Some(_), _) => unknown += 1,
                (None, _) => malformed += 1,
            }
        }
        let done: Vec<(i32, i64)> = offsets.drain().collect();
        model.apply(&known, &done);
        known.clear();
        if malformed > 0 {
            model.skipped("malformed", malformed);
        }
        if unknown > 0 {
            model.skipped("unknown_movie", unknown);
        }
    }
    Ok(())
}
