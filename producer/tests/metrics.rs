//! The producer's Prometheus metrics: a replay to the embedded broker counts what it sent and
//! what was acknowledged per topic; deliveries that fail are counted as failures; the
//! `producer replay --metrics-listen` binary serves them over HTTP until SIGTERM.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use movielens::{RatingRow, TagRow};
use producer::metrics::{LATENCY_SAMPLE, ProducerMetrics};
use producer::replay::{Backpressure, ReplayOptions, Timeline, replay_blocking};
use producer::{EmbeddedBroker, Pace, TopicSpec, producer_config};
use runtime::metrics::{registry, render};
use testkit::metrics::{MetricsProcess, samples};
use tokio_util::sync::CancellationToken;

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples.get(key).unwrap_or_else(|| panic!("no sample {key} in {samples:?}"))
}

/// `n` ratings (users 1..=50, movies 1..=40) and `tags` tags, one second apart.
fn timeline(n: usize, tags: usize) -> Timeline {
    let ratings = (0..n).map(|i| RatingRow {
        user_id: (i % 50 + 1) as i64,
        movie_id: (i % 40 + 1) as i64,
        rating: 0.5 * ((i % 10) + 1) as f32,
        timestamp: 1_000_000_000 + i as i64,
    });
    let tags = (0..tags).map(|i| TagRow {
        user_id: (i % 7 + 1) as i64,
        movie_id: 3,
        tag: format!("tag {i}"),
        timestamp: 1_000_000_000 + i as i64,
    });
    Timeline::from_rows(ratings, tags)
}

#[test]
fn a_replay_counts_sent_and_delivered_events_per_topic() {
    let broker = EmbeddedBroker::start(&[TopicSpec::new("ratings", 8), TopicSpec::new("tags", 4)]).expect("broker");
    let registry = registry();
    let metrics = ProducerMetrics::register(&registry).expect("families register");
    let timeline = timeline(5_000, 123);
    let options =
        ReplayOptions { tags_topic: Some("tags".into()), metrics: Some(metrics), ..ReplayOptions::new("ratings") };
    let report = replay_blocking(
        &producer_config(broker.bootstrap_servers()),
        timeline.iter(),
        Some(timeline.len()),
        &options,
        &CancellationToken::new(),
    )
    .expect("the replay runs");
    assert!(report.is_complete(), "{report:?}");

    let m = samples(&render(&registry));
    assert_eq!(value(&m, "cinedata_producer_events_sent_total{topic=\"ratings\"}"), 5_000.0);
    assert_eq!(value(&m, "cinedata_producer_events_sent_total{topic=\"tags\"}"), 123.0);
    assert_eq!(value(&m, "cinedata_producer_events_delivered_total{topic=\"ratings\"}"), 5_000.0);
    assert_eq!(value(&m, "cinedata_producer_events_delivered_total{topic=\"tags\"}"), 123.0);
    assert_eq!(value(&m, "cinedata_producer_delivery_failures_total{topic=\"ratings\"}"), 0.0);
    assert_eq!(value(&m, "cinedata_producer_delivery_failures_total{topic=\"tags\"}"), 0.0);
    // One event in LATENCY_SAMPLE is timed: events 0, 64, 128, ... of the 5,123.
    let timed = 5_123_u64.div_ceil(LATENCY_SAMPLE) as f64;
    assert_eq!(value(&m, "cinedata_producer_send_duration_seconds_count"), timed);
    let sum = value(&m, "cinedata_producer_send_duration_seconds_sum");
    assert!(sum > 0.0 && sum < timed * 30.0, "implausible latency sum {sum}");
    assert_eq!(value(&m, "cinedata_producer_replay_planned_events"), 5_123.0);
    assert_eq!(value(&m, "cinedata_producer_replay_lag_seconds"), 0.0);
}

#[test]
fn deliveries_that_fail_are_counted_as_failures() {
    let registry = registry();
    let metrics = ProducerMetrics::register(&registry).expect("families register");
    let timeline = timeline(40, 0);
    let mut config = producer_config("127.0.0.1:1");
    config.set("message.timeout.ms", "1000");
    let options = ReplayOptions {
        metrics: Some(metrics),
        flush_timeout: Duration::from_secs(30),
        ..ReplayOptions::new("ratings")
    };
    let report = replay_blocking(&config, timeline.iter(), Some(40), &options, &CancellationToken::new())
        .expect("the replay runs");
    assert_eq!((report.sent, report.delivered, report.failed), (40, 0, 40), "{report:?}");
    let m = samples(&render(&registry));
    assert_eq!(value(&m, "cinedata_producer_events_sent_total{topic=\"ratings\"}"), 40.0);
    assert_eq!(value(&m, "cinedata_producer_events_delivered_total{topic=\"ratings\"}"), 0.0);
    assert_eq!(value(&m, "cinedata_producer_delivery_failures_total{topic=\"ratings\"}"), 40.0);
    assert_eq!(value(&m, "cinedata_producer_send_duration_seconds_count"), 0.0, "a failure timed as a delivery");
}

#[test]
fn a_paced_replay_held_back_shows_how_far_behind_schedule_it_is() {
    // 10,000 events/s, but a consumer that never handles anything holds the replay back after
    // 1,024 events (backpressure at most 1,000 in flight): it falls behind its schedule.
    let broker = EmbeddedBroker::start(&[TopicSpec::new("ratings", 2)]).expect("broker");
    let registry = registry();
    let metrics = ProducerMetrics::register(&registry).expect("families register");
    let timeline = timeline(20_000, 0);
    let options = ReplayOptions {
        pace: Pace::Rate(10_000.0),
        backpressure: Some(Backpressure { handled: Arc::new(|| 0), max_lag: 1_000 }),
        metrics: Some(metrics),
        ..ReplayOptions::new("ratings")
    };
    let cancel = CancellationToken::new();
    let replay = {
        let (config, cancel) = (producer_config(broker.bootstrap_servers()), cancel.clone());
        std::thread::spawn(move || replay_blocking(&config, timeline.iter(), Some(20_000), &options, &cancel))
    };
    let lag =
        |registry: &prometheus::Registry| value(&samples(&render(registry)), "cinedata_producer_replay_lag_seconds");
    testkit::wait_until_blocking("the held-back replay to show a schedule lag", Duration::from_secs(30), || {
        if lag(&registry) < 0.5 { Err(render(&registry)) } else { Ok(()) }
    });
    assert!(lag(&registry) < 30.0);
    let sent = value(&samples(&render(&registry)), "cinedata_producer_events_sent_total{topic=\"ratings\"}");
    assert_eq!(sent, 1_024.0, "sends are flushed to the counter at each 1,024-event checkpoint");
    cancel.cancel();
    let report = replay.join().expect("replay thread").expect("the replay runs");
    assert!(report.interrupted, "{report:?}");
    let m = samples(&render(&registry));
    // Once the replay ends the gauge is reset, and every send is counted.
    assert_eq!(value(&m, "cinedata_producer_replay_lag_seconds"), 0.0);
    assert_eq!(value(&m, "cinedata_producer_events_sent_total{topic=\"ratings\"}"), report.sent as f64);
}

/// `GET /metrics` over HTTP/1.0: status and body.
async fn get_metrics(addr: SocketAddr) -> std::io::Result<(u16, String)> {
    testkit::metrics::get(addr, "/metrics").await.map(|r| (r.status, r.body))
}

#[tokio::test]
async fn the_server_answers_metrics_and_stops_with_its_token() {
    let registry = registry();
    let metrics = ProducerMetrics::register(&registry).expect("families register");
    metrics.topic("ratings").sent.inc_by(7);
    let stop = CancellationToken::new();
    let (addr, task) =
        runtime::metrics::serve(([127, 0, 0, 1], 0).into(), registry, stop.clone()).await.expect("binds");
    let (status, body) = get_metrics(addr).await.expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    assert_eq!(value(&samples(&body), "cinedata_producer_events_sent_total{topic=\"ratings\"}"), 7.0);
    let response = testkit::metrics::get(addr, "/nothing").await.expect("GET /nothing");
    assert!(response.head.starts_with("HTTP/1.0 404"), "{response:?}");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("the server stops").expect("task");
    assert!(get_metrics(addr).await.is_err(), "still answering after its token fired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_replay_serves_its_metrics_on_metrics_listen_until_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ratings = std::fs::File::create(dir.path().join("ratings.csv")).expect("ratings.csv");
    writeln!(ratings, "userId,movieId,rating,timestamp").unwrap();
    for i in 0..300 {
        writeln!(ratings, "{},{},{},{}", i % 20 + 1, i % 30 + 1, 0.5 * f64::from(i % 10 + 1), 1_000_000_000 + i)
            .unwrap();
    }
    let mut tags = std::fs::File::create(dir.path().join("tags.csv")).expect("tags.csv");
    writeln!(tags, "userId,movieId,tag,timestamp").unwrap();
    for i in 0..12 {
        writeln!(tags, "{},5,tag {i},{}", i + 1, 1_000_000_000 + i).unwrap();
    }
    std::fs::write(dir.path().join("movies.csv"), "movieId,title,genres\n1,A (2000),Drama\n").unwrap();

    let process = MetricsProcess::start(
        "the producer",
        Command::new(env!("CARGO_BIN_EXE_producer"))
            .args(["replay", "--data"])
            .arg(dir.path())
            .args(["--quiet", "--partitions", "4", "--metrics-listen", "127.0.0.1:0"])
            .env_remove("CINEDATA_BROKERS"),
    )
    .await;
    let addr = process.addr;

    // Without --brokers the replay runs into an embedded broker and then waits for Ctrl-C.
    let m = testkit::wait_until("the replay to deliver everything", Duration::from_secs(60), || async {
        let (status, body) = get_metrics(addr).await.expect("GET /metrics");
        assert_eq!(status, 200);
        let m = samples(&body);
        let delivered = |t: &str| m.get(&format!("cinedata_producer_events_delivered_total{{topic=\"{t}\"}}")).copied();
        if delivered("ratings") == Some(300.0) && delivered("tags") == Some(12.0) {
            Ok(m)
        } else {
            Err(format!("{m:?}"))
        }
    })
    .await;
    assert_eq!(value(&m, "cinedata_producer_events_sent_total{topic=\"ratings\"}"), 300.0);
    assert_eq!(value(&m, "cinedata_producer_events_sent_total{topic=\"tags\"}"), 12.0);
    assert_eq!(value(&m, "cinedata_producer_delivery_failures_total{topic=\"ratings\"}"), 0.0);
    assert_eq!(value(&m, "cinedata_producer_replay_planned_events"), 312.0);
    assert!(value(&m, "cinedata_producer_send_duration_seconds_count") >= 1.0);

    process.terminate().await;
}
