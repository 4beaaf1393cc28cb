//! The consumer's Prometheus metrics, scraped over HTTP from a `/metrics` server: counters by
//! name and value after a replay with poison, the lag while the database is down, and the
//! `consumer` binary's `--metrics-listen`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use consumer::{Embedded, Metrics, Settings};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::events::{RatingSubmitted, TagAdded, encode};
use store::Store;
use testkit::metrics::{MetricsProcess, samples};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

const TIMEOUT: Duration = Duration::from_secs(120);

/// `GET /metrics` over plain HTTP/1.0: the status code and the body.
async fn get_metrics(addr: SocketAddr) -> Result<(u16, String), String> {
    let response = testkit::metrics::get(addr, "/metrics").await.map_err(|e| format!("GET {addr}/metrics: {e}"))?;
    assert!(
        response.head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"),
        "not the text exposition format: {}",
        response.head
    );
    Ok((response.status, response.body))
}

/// Scrapes `/metrics` (asserting a 200).
async fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (status, body) = get_metrics(addr).await.expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    samples(&body)
}

/// The value of one sample, failing with what there is.
fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples.get(key).unwrap_or_else(|| {
        let names: Vec<&String> = samples.keys().filter(|k| k.contains("consumer")).collect();
        panic!("no sample {key}; consumer samples: {names:?}")
    })
}

/// The `consumer_lag` samples of a topic: (number of partitions, summed lag).
fn lag(samples: &BTreeMap<String, f64>, topic: &str) -> (usize, f64) {
    let topic = format!("topic=\"{topic}\"");
    let series: Vec<f64> = testkit::metrics::series(samples, "cinedata_consumer_lag")
        .filter(|(labels, _)| labels.contains(&topic))
        .map(|(_, v)| v)
        .collect();
    (series.len(), series.iter().sum())
}

/// An embedded broker, metrics exported to a registry served on a free port, and a consumer.
struct Running {
    embedded: Embedded,
    metrics: Metrics,
    addr: SocketAddr,
    shutdown: CancellationToken,
    consumer: tokio::task::JoinHandle<anyhow::Result<()>>,
    server: tokio::task::JoinHandle<()>,
}

async fn start_exported(settings: Settings, store: Store) -> Running {
    let embedded = Embedded::start(&settings).expect("embedded broker");
    let registry = runtime::metrics::registry();
    let metrics = Metrics::with_registry(&registry).expect("the consumer's families register");
    let shutdown = CancellationToken::new();
    let (addr, server) = runtime::metrics::serve(([127, 0, 0, 1], 0).into(), registry, shutdown.clone())
        .await
        .expect("the metrics server binds");
    let consumer = {
        let (settings, metrics, shutdown) = (embedded.settings().clone(), metrics.clone(), shutdown.clone());
        tokio::spawn(async move { consumer::run(&settings, store, metrics, None, shutdown).await })
    };
    Running { embedded, metrics, addr, shutdown, consumer, server }
}

fn rating_payload(r: &movielens::RatingRow) -> (String, Vec<u8>) {
    let e = RatingSubmitted::new(r.user_id, r.movie_id, f64::from(r.rating), r.timestamp);
    (producer::send::key(r.user_id), encode(&e).expect("valid rating"))
}

/// Sends `(topic, key, payload)` messages and waits for every acknowledgement.
async fn send_all(brokers: &str, messages: &[(&str, String, Vec<u8>)]) {
    let producer: FutureProducer = producer::producer_config(brokers).create().expect("producer");
    let mut deliveries = Vec::new();
    for (topic, key, payload) in messages {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).expect("queued"));
    }
    for d in deliveries {
        d.await.expect("delivery future").expect("delivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_counts_received_persisted_and_dead_lettered_events_and_the_lag_ends_at_zero() {
    let db = TestDb::sqlite().await;
    let settings = Settings {
        impressions_topic: String::new(),
        lag_refresh: Duration::from_millis(200),
        ..Settings::new(None, db.url.clone())
    };
    let run = start_exported(settings, db.store.clone()).await;
    let brokers = run.embedded.brokers().to_owned();

    // 300 valid ratings, 20 valid tags, and 9 poison events of every reason, interleaved.
    let ratings = first_ratings(300);
    let mut messages: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for (i, r) in ratings.iter().enumerate() {
        let (key, payload) = rating_payload(r);
        messages.push(("ratings", key, payload));
        if i % 15 == 0 {
            let tag = TagAdded::new(r.user_id, 1, format!("tag {i}"), 1_000_000_000);
            messages.push(("tags", producer::send::key(r.user_id), encode(&tag).expect("valid tag")));
        }
    }
    let bad_rating = |f: &dyn Fn(&mut RatingSubmitted)| {
        let mut e = RatingSubmitted::new(1, 1, 4.0, 1_000_000_000);
        f(&mut e);
        serde_json::to_vec(&e).unwrap()
    };
    let mut v2 = serde_json::to_value(RatingSubmitted::new(1, 1, 4.0, 1_000_000_000)).unwrap();
    v2["schemaVersion"] = 2.into();
    let mut oversized = bad_rating(&|_| {});
    oversized.splice(1..1, std::iter::repeat_n(b' ', 3_000));
    let poison: Vec<(&str, Vec<u8>)> = vec![
        ("ratings", b"not JSON".to_vec()),
        ("ratings", b"{\"schemaVersion\":1}".to_vec()),
        ("ratings", b"[1,2,3]".to_vec()),
        ("ratings", bad_rating(&|e| e.rating = 6.0)),
        ("ratings", bad_rating(&|e| e.user_id = 0)),
        ("ratings", bad_rating(&|e| e.movie_id = 999_999_999)),
        ("ratings", oversized),
        ("ratings", serde_json::to_vec(&v2).unwrap()),
        ("tags", b"{\"tag\":".to_vec()),
    ];
    for (i, (topic, payload)) in poison.into_iter().enumerate() {
        messages.insert(i * 31 + 7, (topic, format!("poison-{i}"), payload));
    }
    let count = |topic: &str| messages.iter().filter(|m| m.0 == topic).count() as f64;
    let (sent_ratings, sent_tags) = (count("ratings"), count("tags"));
    assert_eq!((sent_ratings, sent_tags), (308.0, 21.0));
    send_all(&brokers, &messages).await;

    wait_for("every event handled", TIMEOUT, || async {
        let s = run.metrics.snapshot();
        if s.handled >= messages.len() as u64 { Ok(()) } else { Err(format!("{s:?}")) }
    })
    .await;
    // The lag is refreshed every 200 ms: wait until it covers all 64 partitions, all caught up.
    wait_for("the lag of every partition at 0", TIMEOUT, || async {
        let m = scrape(run.addr).await;
        let (r, t) = (lag(&m, "ratings"), lag(&m, "tags"));
        if r == (32, 0.0) && t == (32, 0.0) { Ok(()) } else { Err(format!("ratings {r:?}, tags {t:?}")) }
    })
    .await;

    let m = &scrape(run.addr).await;
    let (r, t) = (lag(m, "ratings"), lag(m, "tags"));
    assert_eq!((r, t), ((32, 0.0), (32, 0.0)));
    assert_eq!(value(m, "cinedata_consumer_events_received_total{topic=\"ratings\"}"), sent_ratings);
    assert_eq!(value(m, "cinedata_consumer_events_received_total{topic=\"tags\"}"), sent_tags);
    assert_eq!(value(m, "cinedata_consumer_events_persisted_total{kind=\"rating\"}"), 300.0);
    assert_eq!(value(m, "cinedata_consumer_events_persisted_total{kind=\"tag\"}"), 20.0);
    for (reason, n) in
        [("malformed", 4.0), ("invalid", 2.0), ("unknown-movie", 1.0), ("too-large", 1.0), ("unsupported-version", 1.0)]
    {
        assert_eq!(value(m, &format!("cinedata_consumer_dead_letters_total{{reason=\"{reason}\"}}")), n, "{reason}");
    }
    let batches = value(m, "cinedata_consumer_batch_size_count");
    assert!(batches >= 1.0, "no batch observed");
    assert_eq!(value(m, "cinedata_consumer_batch_size_sum"), sent_ratings + sent_tags, "events over all batches");
    assert_eq!(value(m, "cinedata_consumer_batch_size_bucket{le=\"+Inf\"}"), batches);
    // One write attempt per batch: nothing failed.
    assert_eq!(value(m, "cinedata_consumer_db_write_duration_seconds_count"), batches);
    assert!(value(m, "cinedata_consumer_db_write_duration_seconds_sum") > 0.0);
    assert_eq!(value(m, "cinedata_consumer_db_retries_total"), 0.0);
    assert_eq!(value(m, "cinedata_consumer_assigned_partitions"), 64.0);
    assert!(value(m, "cinedata_consumer_rebalances_total") >= 1.0);
    // The Snapshot agrees with the exposition.
    let s = run.metrics.snapshot();
    assert_eq!(s.batches as f64, batches);
    assert_eq!((s.ratings, s.tags, s.dead_letters), (300, 20, 9));

    run.shutdown.cancel();
    run.consumer.await.expect("consumer task").expect("consumer runs");
    tokio::time::timeout(Duration::from_secs(10), run.server)
        .await
        .expect("the metrics server stops with the shutdown token")
        .expect("server task");
    assert!(get_metrics(run.addr).await.is_err(), "the metrics server still answers after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_down_the_lag_counts_the_waiting_events_and_retries_are_counted() {
    let db = TestDb::sqlite().await;
    // A store whose pool is closed: every write fails, the batch is retried, no offset stored.
    let down = Store::connect(&db.url).await.expect("connects");
    down.close().await;
    let settings = Settings {
        tags_topic: String::new(),
        impressions_topic: String::new(),
        lag_refresh: Duration::from_millis(200),
        ..Settings::new(None, db.url.clone())
    };
    let run = start_exported(settings, down).await;
    let rows = first_ratings(200);
    let messages: Vec<(&str, String, Vec<u8>)> = rows
        .iter()
        .map(|r| {
            let (key, payload) = rating_payload(r);
            ("ratings", key, payload)
        })
        .collect();
    send_all(run.embedded.brokers(), &messages).await;

    wait_for("the lag to show the 200 waiting events and two retries", TIMEOUT, || async {
        let m = scrape(run.addr).await;
        let lag = lag(&m, "ratings");
        let retries = m.get("cinedata_consumer_db_retries_total").copied().unwrap_or(0.0);
        if lag == (32, 200.0) && retries >= 2.0 { Ok(()) } else { Err(format!("lag {lag:?}, retries {retries}")) }
    })
    .await;
    let m = scrape(run.addr).await;
    assert_eq!(value(&m, "cinedata_consumer_events_persisted_total{kind=\"rating\"}"), 0.0);
    assert_eq!(value(&m, "cinedata_consumer_batch_size_count"), 0.0, "a batch was counted as done");
    assert!(value(&m, "cinedata_consumer_db_write_duration_seconds_count") >= 2.0, "failed attempts are timed");
    assert_eq!(run.metrics.snapshot().handled, 0);

    run.shutdown.cancel();
    run.consumer.await.expect("consumer task").expect("the consumer stops while retrying");
    assert_eq!(rating_count(&db.store).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_binary_serves_metrics_on_metrics_listen_until_sigterm() {
    let db = TestDb::sqlite().await;
    let settings =
        Settings { tags_topic: String::new(), impressions_topic: String::new(), ..Settings::new(None, db.url.clone()) };
    let embedded = Embedded::start(&settings).expect("embedded broker");
    let brokers = embedded.brokers().to_owned();
    let rows = first_ratings(150);
    let timeline = Arc::new(producer::Timeline::from_rows(rows.iter().copied(), []));
    let replay = spawn_replay(&brokers, timeline, producer::Pace::Max, CancellationToken::new());
    assert_delivered(&replay.await.expect("replay task"), rows.len());

    // The binary says where it listens on stderr; stderr is drained after that.
    let process = MetricsProcess::start(
        "the consumer",
        Command::new(env!("CARGO_BIN_EXE_consumer"))
            .args(["--brokers", &brokers, "--database-url", &db.url, "--group", "metrics-binary"])
            .args(["--tags-topic", "", "--impressions-topic", "", "--session-timeout-ms", "6000"])
            .args(["--metrics-listen", "127.0.0.1:0"]),
    )
    .await;
    let addr = process.addr;

    // Lag is refreshed every 5 s in the binary.
    wait_for("150 ratings persisted and the lag of 32 partitions at 0", TIMEOUT, || async {
        let m = scrape(addr).await;
        let persisted = m.get("cinedata_consumer_events_persisted_total{kind=\"rating\"}").copied();
        let lag = lag(&m, "ratings");
        if persisted == Some(150.0) && lag == (32, 0.0) {
            Ok(())
        } else {
            Err(format!("persisted {persisted:?}, lag {lag:?}"))
        }
    })
    .await;
    let m = scrape(addr).await;
    assert_eq!(value(&m, "cinedata_consumer_events_received_total{topic=\"ratings\"}"), 150.0);
    assert_eq!(value(&m, "cinedata_consumer_dead_letters_total{reason=\"malformed\"}"), 0.0);
    assert_eq!(value(&m, "cinedata_consumer_assigned_partitions"), 32.0);

    process.terminate().await;
    assert_eq!(rating_count(&db.store).await, 150);
}
