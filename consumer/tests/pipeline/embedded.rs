//! The pipeline on the embedded (in-process mock) broker and SQLite.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use consumer::group::{DLQ_KIND, DLQ_REASON, DLQ_TOPIC};
use consumer::{Embedded, Metrics, Settings};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::events::{RatingSubmitted, TagAdded, unix_now};
use store::Store;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Settings for a consumer of ratings only.
fn ratings_only(db: &TestDb) -> Settings {
    Settings {
        tags_topic: String::new(),
        impressions_topic: String::new(),
        batch_size: 5_000,
        ..Settings::new(None, db.url.clone())
    }
}

/// Settings pointing at the embedded broker.
fn start(settings: &Settings) -> (Embedded, Settings) {
    let embedded = Embedded::start(settings).expect("embedded broker");
    let settings = embedded.settings().clone();
    (embedded, settings)
}

fn spawn_consumer(
    settings: &Settings,
    store: &Store,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let (settings, store, metrics, shutdown) = (settings.clone(), store.clone(), metrics.clone(), shutdown.clone());
    tokio::spawn(async move { consumer::run(&settings, store, metrics, None, shutdown).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_ml_latest_small_fills_the_tables_with_exactly_the_csv_files() {
    replay_ml_small_and_check_the_tables(&TestDb::sqlite().await, TIMEOUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_process_killed_mid_stream_loses_nothing_and_duplicates_nothing() {
    let db = TestDb::sqlite().await;
    let (embedded, settings) = start(&ratings_only(&db));
    kill_a_consumer_process_mid_stream(&db, embedded.brokers(), &settings).await;
}

/// Replays ml-latest-small into `brokers` while a `consumer` process persists it, kills that
/// process (SIGKILL) part-way, lets a consumer in the same group finish, and checks the table
/// equals the CSV: nothing lost, nothing twice. Also run against tansu (`tansu.rs`).
pub(crate) async fn kill_a_consumer_process_mid_stream(db: &TestDb, brokers: &str, settings: &Settings) {
    let shutdown = CancellationToken::new();
    // Paced, so the stream is still flowing when the consumer dies.
    let replay = spawn_replay(brokers, ratings_timeline(), producer::Pace::Rate(40_000.0), shutdown.clone());

    let mut child = Command::new(env!("CARGO_BIN_EXE_consumer"))
        .args(["--brokers", brokers, "--database-url", &db.url, "--group", &settings.group])
        .args(["--tags-topic", "", "--impressions-topic", "", "--session-timeout-ms", "6000"])
        .args(["--batch-size", "1000", "--batch-ms", "20"])
        .args(["--partitions", &settings.partitions.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the consumer binary starts");
    wait_for_ratings_at_least(&db.store, 20_000).await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let at_kill = rating_count(&db.store).await;
    assert!(at_kill < ML_SMALL_RATINGS as i64, "the consumer finished before it could be killed");

    let metrics = Metrics::default();
    let consumer = spawn_consumer(settings, &db.store, &metrics, &shutdown);
    wait_for_ratings(&db.store, ML_SMALL_RATINGS as i64, TIMEOUT, || format!("{:?}", metrics.snapshot())).await;
    assert_delivered(&replay.await.expect("replay task"), ML_SMALL_RATINGS);
    shutdown.cancel();
    consumer.await.expect("consumer task").expect("consumer runs");

    assert_ratings_equal_csv(&db.store, &ml_small()).await;
    let s = metrics.snapshot();
    assert!(
        s.ratings >= ML_SMALL_RATINGS as u64 - at_kill as u64,
        "the restarted consumer persisted {} events, fewer than the {} left at the crash",
        s.ratings,
        ML_SMALL_RATINGS as i64 - at_kill
    );
}

async fn wait_for_ratings_at_least(store: &Store, n: i64) {
    wait_for(&format!("at least {n} ratings"), TIMEOUT, || async {
        let count = rating_count(store).await;
        if count >= n { Ok(()) } else { Err(format!("{count} ratings")) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_task_dropped_mid_batch_loses_nothing() {
    let db = TestDb::sqlite().await;
    let (embedded, settings) = start(&Settings { batch_size: 1_000, batch_ms: 20, ..ratings_only(&db) });
    let shutdown = CancellationToken::new();
    let replay = spawn_replay(embedded.brokers(), ratings_timeline(), producer::Pace::Rate(40_000.0), shutdown.clone());

    let first = spawn_consumer(&settings, &db.store, &Metrics::default(), &shutdown);
    wait_for_ratings_at_least(&db.store, 20_000).await;
    // Dropped wherever it is, without a final commit: perhaps mid-transaction.
    first.abort();
    assert!(first.await.expect_err("aborted").is_cancelled());
    let at_abort = rating_count(&db.store).await;
    assert!(at_abort < ML_SMALL_RATINGS as i64, "the consumer finished before it could be dropped");

    let metrics = Metrics::default();
    let second = spawn_consumer(&settings, &db.store, &metrics, &shutdown);
    wait_for_ratings(&db.store, ML_SMALL_RATINGS as i64, TIMEOUT, || format!("{:?}", metrics.snapshot())).await;
    assert_delivered(&replay.await.expect("replay task"), ML_SMALL_RATINGS);
    shutdown.cancel();
    second.await.expect("consumer task").expect("consumer runs");
    assert_ratings_equal_csv(&db.store, &ml_small()).await;
}

/// A poison message: where it goes, its bytes, and the reason kind expected in the DLQ.
struct Poison {
    topic: &'static str,
    payload: Option<Vec<u8>>,
    kind: &'static str,
}

/// A message read back from the dead-letter topic: payload and headers.
type DeadLetter = (Option<Vec<u8>>, BTreeMap<String, String>);

fn poison_messages() -> Vec<Poison> {
    let now = unix_now();
    let valid = |f: &dyn Fn(&mut RatingSubmitted)| {
        let mut e = RatingSubmitted::new(1, 1, 4.0, 1_000_000_000);
        f(&mut e);
        serde_json::to_vec(&e).unwrap()
    };
    let mut oversized = valid(&|_| {});
    oversized.splice(1..1, std::iter::repeat_n(b' ', 3_000));
    let mut v2 = serde_json::to_value(RatingSubmitted::new(1, 1, 4.0, 1_000_000_000)).unwrap();
    v2["schemaVersion"] = 2.into();
    let wrong_types = br#"{"schemaVersion":1,"eventId":"5f0c2a9e8b7d4c3f9a1e2d3c4b5a6978","userId":"seven","movieId":1,"rating":4,"timestamp":1000000000}"#;
    vec![
        Poison { topic: "ratings", payload: Some(b"this is not JSON".to_vec()), kind: "malformed" },
        Poison { topic: "ratings", payload: Some(wrong_types.to_vec()), kind: "malformed" },
        Poison { topic: "ratings", payload: Some(valid(&|e| e.rating = 6.0)), kind: "invalid" },
        Poison { topic: "ratings", payload: Some(valid(&|e| e.rating = 3.3)), kind: "invalid" },
        Poison { topic: "ratings", payload: Some(valid(&|e| e.user_id = 0)), kind: "invalid" },
        Poison { topic: "ratings", payload: Some(valid(&|e| e.timestamp = now + 7 * 86_400)), kind: "invalid" },
        Poison { topic: "ratings", payload: Some(valid(&|e| e.movie_id = 999_999_999)), kind: "unknown-movie" },
        Poison { topic: "ratings", payload: Some(oversized), kind: "too-large" },
        Poison { topic: "ratings", payload: Some(serde_json::to_vec(&v2).unwrap()), kind: "unsupported-version" },
        Poison { topic: "ratings", payload: None, kind: "malformed" },
        Poison { topic: "tags", payload: Some(valid(&|_| {})), kind: "malformed" },
        Poison {
            topic: "tags",
            payload: Some(serde_json::to_vec(&TagAdded::new(1, 1, "  ", 1_000_000_000)).unwrap()),
            kind: "invalid",
        },
        Poison {
            topic: "tags",
            payload: Some(serde_json::to_vec(&TagAdded::new(1, 424_242_424, "ok", 1_000_000_000)).unwrap()),
            kind: "unknown-movie",
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_events_land_in_the_dead_letter_topic_with_their_reasons_and_the_rest_is_persisted() {
    let db = TestDb::sqlite().await;
    let (embedded, settings) = start(&Settings::new(None, db.url.clone()));
    poison_round_trip(&db, embedded.brokers(), &settings).await;
}

/// Sends 3,000 valid ratings with every kind of poison message in the middle to `brokers`
/// while a consumer runs: each poison message reaches the dead-letter topic unchanged with its
/// reason, and exactly the valid ratings are persisted. Also run against tansu (`tansu.rs`).
pub(crate) async fn poison_round_trip(db: &TestDb, brokers: &str, settings: &Settings) {
    let shutdown = CancellationToken::new();
    let metrics = Metrics::default();
    let consumer = spawn_consumer(settings, &db.store, &metrics, &shutdown);

    // 3,000 valid ratings with the poison in the middle.
    let valid_rows = first_ratings(3_000);
    let poison = poison_messages();
    let producer: FutureProducer = producer::producer_config(brokers).create().expect("producer");
    let mut deliveries = Vec::new();
    let send_valid = |rows: &[movielens::RatingRow]| {
        rows.iter()
            .map(|r| {
                let e = RatingSubmitted::new(r.user_id, r.movie_id, f64::from(r.rating), r.timestamp);
                (producer::send::key(r.user_id), schemas::events::encode(&e).expect("valid"))
            })
            .collect::<Vec<_>>()
    };
    let (head, tail) = valid_rows.split_at(1_500);
    for (key, payload) in send_valid(head) {
        deliveries.push(producer.send_result(FutureRecord::to("ratings").key(&key).payload(&payload)).ok().unwrap());
    }
    for (i, p) in poison.iter().enumerate() {
        let key = format!("poison-{i}");
        let headers = OwnedHeaders::new().insert(Header { key: "trace-id", value: Some(&key) });
        let mut record = FutureRecord::<str, [u8]>::to(p.topic).key(&key).headers(headers);
        if let Some(payload) = &p.payload {
            record = record.payload(payload.as_slice());
        }
        deliveries.push(producer.send_result(record).ok().unwrap());
    }
    for (key, payload) in send_valid(tail) {
        deliveries.push(producer.send_result(FutureRecord::to("ratings").key(&key).payload(&payload)).ok().unwrap());
    }
    for d in deliveries {
        d.await.expect("delivery future").expect("delivered");
    }

    let total = (valid_rows.len() + poison.len()) as u64;
    wait_for("every event handled", TIMEOUT, || async {
        let s = metrics.snapshot();
        if s.handled >= total { Ok(()) } else { Err(format!("{s:?}")) }
    })
    .await;

    // Every poison message is in the dead-letter topic, unchanged, with its reason.
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .expect("DLQ reader");
    reader.subscribe(&[&settings.dlq_topic]).expect("subscribe");
    let mut dead: BTreeMap<String, DeadLetter> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while dead.len() < poison.len() {
        let m = tokio::time::timeout_at(deadline, reader.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {} dead letters arrived: {dead:?}", dead.len(), poison.len()))
            .expect("DLQ message");
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let key = String::from_utf8_lossy(m.key().expect("key kept")).into_owned();
        dead.insert(key, (m.payload().map(<[u8]>::to_vec), headers));
    }
    for (i, p) in poison.iter().enumerate() {
        let key = format!("poison-{i}");
        let (payload, headers) = dead.get(&key).unwrap_or_else(|| panic!("{key} ({}) not dead-lettered", p.kind));
        assert_eq!(payload, &p.payload, "{key}: payload changed");
        assert_eq!(headers.get(DLQ_KIND).map(String::as_str), Some(p.kind), "{key}: {headers:?}");
        assert!(headers.get(DLQ_REASON).is_some_and(|r| !r.is_empty()), "{key}: no reason: {headers:?}");
        assert_eq!(headers.get(DLQ_TOPIC).map(String::as_str), Some(p.topic), "{key}");
        assert_eq!(headers.get("trace-id"), Some(&key), "{key}: original headers lost");
    }

    let s = metrics.snapshot();
    assert_eq!(s.dead_letters, poison.len() as u64, "{s:?}");
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for p in &poison {
        *kinds.entry(p.kind.to_owned()).or_default() += 1;
    }
    assert_eq!(s.dead_letters_by_kind, kinds);

    let mut expected: Vec<RatingTuple> =
        valid_rows.iter().map(|r| (r.user_id, r.movie_id, f64::from(r.rating), r.timestamp)).collect();
    expected.sort_by_key(|a| (a.0, a.1));
    assert_same_rows("valid ratings", &stored_ratings(&db.store).await, &expected);
    shutdown.cancel();
    consumer.await.expect("consumer task").expect("consumer runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_in_one_group_split_the_partitions_and_persist_everything_once() {
    let db = TestDb::sqlite().await;
    let (embedded, settings) = start(&ratings_only(&db));
    let shutdown = CancellationToken::new();
    let (a, b) = (Metrics::default(), Metrics::default());
    let first = spawn_consumer(&settings, &db.store, &a, &shutdown);
    wait_for("the first consumer to own every partition", TIMEOUT, || async {
        let n = a.snapshot().assigned.len();
        if n == 32 { Ok(()) } else { Err(format!("{n} assigned")) }
    })
    .await;
    let second = spawn_consumer(&settings, &db.store, &b, &shutdown);
    let split = || {
        let (sa, sb) = (a.snapshot().assigned, b.snapshot().assigned);
        let union: BTreeSet<_> = sa.union(&sb).collect();
        let shared = sa.intersection(&sb).count();
        (sa.len(), sb.len(), union.len(), shared)
    };
    wait_for("the two consumers to split the 32 partitions", TIMEOUT, || async {
        let (na, nb, union, shared) = split();
        if na > 0 && nb > 0 && union == 32 && shared == 0 { Ok(()) } else { Err(format!("{:?}", split())) }
    })
    .await;
    let rebalances = (a.snapshot().rebalances, b.snapshot().rebalances);

    let replay = spawn_replay(embedded.brokers(), ratings_timeline(), producer::Pace::Max, shutdown.clone());
    wait_for_ratings(&db.store, ML_SMALL_RATINGS as i64, TIMEOUT, || format!("{:?}", split())).await;
    assert_delivered(&replay.await.expect("replay task"), ML_SMALL_RATINGS);
    wait_for("both consumers to finish their batches", TIMEOUT, || async {
        let handled = a.handled() + b.handled();
        if handled >= ML_SMALL_RATINGS as u64 { Ok(()) } else { Err(format!("{handled} handled")) }
    })
    .await;
    let (sa, sb) = (a.snapshot(), b.snapshot());
    shutdown.cancel();
    first.await.expect("task").expect("first consumer runs");
    second.await.expect("task").expect("second consumer runs");

    assert_ratings_equal_csv(&db.store, &ml_small()).await;
    assert!(sa.ratings > 0 && sb.ratings > 0, "one consumer did all the work: {} / {}", sa.ratings, sb.ratings);
    // Each event was persisted once, unless a rebalance during the stream redelivered some.
    if (sa.rebalances, sb.rebalances) == rebalances {
        assert_eq!(sa.ratings + sb.ratings, ML_SMALL_RATINGS as u64, "an event was persisted twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_consumer_process_after_committing_what_it_persisted() {
    let db = TestDb::sqlite().await;
    let (embedded, settings) = start(&ratings_only(&db));
    let brokers = embedded.brokers().to_owned();
    let rows = first_ratings(20_000);
    let timeline = std::sync::Arc::new(producer::Timeline::from_rows(rows.iter().copied(), []));
    let replay = spawn_replay(&brokers, timeline, producer::Pace::Max, CancellationToken::new());
    assert_delivered(&replay.await.expect("replay task"), rows.len());

    let mut child = Command::new(env!("CARGO_BIN_EXE_consumer"))
        .args(["--brokers", &brokers, "--database-url", &db.url, "--group", &settings.group])
        .args(["--tags-topic", "", "--session-timeout-ms", "6000"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the consumer binary starts");
    wait_for_ratings(&db.store, rows.len() as i64, TIMEOUT, || "consumer process running".into()).await;
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || child.wait()).await.expect("wait task").expect("wait");
    assert!(exited.success(), "the consumer exited with {exited:?} on SIGTERM");

    // Every persisted event's offset is committed: a restart would redo nothing.
    let group = settings.group.clone();
    let committed = tokio::task::spawn_blocking(move || {
        let reader: rdkafka::consumer::BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", &group).create().expect("client");
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..32 {
            tpl.add_partition("ratings", p);
        }
        let offsets = reader.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
        offsets.elements().iter().map(|e| e.offset().to_raw().unwrap_or(0).max(0)).sum::<i64>()
    })
    .await
    .expect("offsets task");
    assert_eq!(committed, rows.len() as i64, "committed offsets do not cover exactly the persisted events");
}
