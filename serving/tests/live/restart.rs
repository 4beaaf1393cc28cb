//! Restart from the snapshot: no retrain, same answers.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::StatusCode;
use schemas::recommend::ModelInfo;
use serde_json::json;

use crate::helpers::World;

/// The ratings topic's partitions in a [`World`].
const PARTITIONS: i32 = 4;

#[tokio::test]
async fn a_restarted_service_resumes_from_its_snapshot_with_the_same_answers() {
    let world = World::new().await;
    let app = world.start().await;
    // Some live events on top of the trained model, so the snapshot holds more than a retrain.
    for (user, movie, rating) in [(1, 2, 4.0), (5, 1, 5.0), (700, 1, 3.5), (700, 260, 5.0)] {
        let (status, body) = app.post("/ratings", &json!({"userId": user, "movieId": movie, "rating": rating})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    app.wait_for(Duration::from_secs(10), |m| m["eventsApplied"].as_u64() >= Some(4)).await;
    let users: Vec<i64> = vec![1, 3, 5, 42, 99, 250, 414, 600, 700, 123456];
    let mut before = Vec::new();
    for &u in &users {
        before.push(app.top(u, 10).await);
    }
    let info_before: ModelInfo = app.get_ok("/model").await;
    app.stop().await;
    assert!(std::fs::read_dir(world.snapshots()).unwrap().count() >= 1, "a snapshot was saved");

    let app = world.start().await;
    let info: ModelInfo = app.get_ok("/model").await;
    assert_eq!(info.version, info_before.version, "restored, not retrained");
    assert_eq!(info.trained_at, info_before.trained_at);
    assert!(info.last_retrain.is_none(), "no retrain ran on restart");
    assert_eq!((info.users, info.movies), (info_before.users, info_before.movies));
    for (u, expected) in users.iter().zip(&before) {
        assert_eq!(&app.top(*u, 10).await, expected, "user {u}");
    }
    // It resumed from the snapshot's offsets: the events it already had are not re-read. An
    // undecodable marker at the end of every partition (skipped as "malformed", never applied)
    // shows when the follower has read each partition to its end, past any event it re-read.
    let producer: FutureProducer = producer::producer_config(world.broker.bootstrap_servers()).create().unwrap();
    for partition in 0..PARTITIONS {
        let marker = FutureRecord::<str, [u8]>::to("ratings").partition(partition).payload(b"marker");
        producer.send(marker, Duration::from_secs(10)).await.expect("the marker is produced");
    }
    testkit::wait_until("the follower to read every partition to its end", Duration::from_secs(10), || async {
        let metrics = app.get_text_metrics().await;
        match testkit::metrics::value(&metrics, "cinedata_online_updates_total{outcome=\"malformed\"}") {
            Some(n) if n == f64::from(PARTITIONS) => Ok(()),
            other => Err(format!("{other:?} of the {PARTITIONS} markers read")),
        }
    })
    .await;
    let info: ModelInfo = app.get_ok("/model").await;
    assert_eq!(info.events_applied, 0, "events before the snapshot's offsets were read again");
    // And it keeps following the stream.
    let (status, _) = app.post("/ratings", &json!({"userId": 700, "movieId": 2, "rating": 4.0})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.wait_for(Duration::from_secs(10), |m| m["eventsApplied"].as_u64() == Some(1)).await;
}
