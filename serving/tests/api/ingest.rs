//! `POST /ratings`: validated, produced to Kafka, acknowledged with the event id.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use reqwest::StatusCode;
use schemas::events::{RatingSubmitted, decode};
use serde_json::json;

use crate::helpers::{RATINGS_TOPIC, TestApp, spawn_app, spawn_app_with};
use testkit::backend_tests;

/// Reads the ratings topic from the start until the event with `event_id` shows up.
fn find_event(bootstrap: &str, event_id: &str) -> Option<RatingSubmitted> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ingest-test")
        .create()
        .expect("a consumer");
    let mut partitions = TopicPartitionList::new();
    for p in 0..4 {
        partitions.add_partition_offset(RATINGS_TOPIC, p, Offset::Beginning).expect("a partition");
    }
    consumer.assign(&partitions).expect("assigned");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else { continue };
        let event: RatingSubmitted = decode(message.payload().unwrap_or_default()).expect("a valid event");
        if event.event_id.to_string() == event_id {
            assert_eq!(message.key(), Some(event.user_id.to_string().as_bytes()), "keyed by userId");
            return Some(event);
        }
    }
    None
}

async fn a_valid_rating_is_produced_and_acknowledged_with_its_event_id(app: &TestApp) {
    let response = app
        .post_json("/ratings", &json!({"userId": 7, "movieId": 1, "rating": 4.5, "timestamp": 1_700_000_000}), None)
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = response.json().await.expect("JSON");
    let event_id = body["eventId"].as_str().expect("an eventId").to_owned();
    let bootstrap = app.broker.bootstrap_servers().to_owned();
    let event = tokio::task::spawn_blocking(move || find_event(&bootstrap, &event_id))
        .await
        .expect("the reader ran")
        .expect("the event is on the topic");
    assert_eq!((event.user_id, event.movie_id, event.rating, event.timestamp), (7, 1, 4.5, 1_700_000_000));
}

async fn invalid_ratings_are_422_with_the_reason(app: &TestApp) {
    for (body, needle) in [
        (json!({"userId": 7, "movieId": 1, "rating": 7.0}), "rating"),
        (json!({"userId": 7, "movieId": 1, "rating": 3.3}), "rating"),
        (json!({"userId": 0, "movieId": 1, "rating": 3.0}), "user"),
        (json!({"userId": 7, "movieId": 999_999_999, "rating": 3.0}), "not in the catalogue"),
        (json!({"userId": 7, "movieId": 1}), "rating"),
        (json!({"userId": "seven", "movieId": 1, "rating": 3.0}), "userId"),
    ] {
        let response = app.post_json("/ratings", &body, None).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let error: serde_json::Value = response.json().await.expect("JSON");
        let detail = error["detail"].as_str().expect("a detail").to_lowercase();
        assert!(detail.contains(&needle.to_lowercase()), "{body}: {detail}");
    }
}

backend_tests!(
    spawn_app =>
    a_valid_rating_is_produced_and_acknowledged_with_its_event_id,
    invalid_ratings_are_422_with_the_reason,
);

#[tokio::test(flavor = "multi_thread")]
async fn with_an_api_key_writes_need_it() {
    let app = spawn_app_with(store::Backend::Sqlite, Some("s3cret")).await;
    let body = json!({"userId": 7, "movieId": 1, "rating": 4.0});
    assert_eq!(app.post_json("/ratings", &body, None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.post_json("/ratings", &body, Some("wrong!")).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.post_json("/ratings", &body, Some("s3cret")).await.status(), StatusCode::ACCEPTED);
    // Reads stay open.
    assert_eq!(app.get("/movies/1").await.status(), StatusCode::OK);
}
