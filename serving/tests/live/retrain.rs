//! Retrains under load, and what `GET /model` says.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use schemas::recommend::{ModelInfo, UserRecommendations};

use crate::helpers::World;

#[tokio::test]
async fn a_retrain_under_concurrent_queries_swaps_in_a_new_version_without_a_single_bad_answer() {
    let world = World::new().await;
    let app = Arc::new(world.start().await);
    let first: ModelInfo = app.get_ok("/model").await;
    assert_eq!(first.version, 1);
    assert_eq!(first.training_ratings, 100_836);
    let holdout = first.holdout.expect("holdout metrics after a retrain");
    assert!(holdout.ratings > 1000 && holdout.rmse > 0.5 && holdout.rmse < 1.0, "{holdout:?}");
    assert!(first.last_retrain.as_ref().is_some_and(|r| r.accepted && r.trigger == "startup"));

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for worker in 0..4i64 {
        let (app, stop, answered) = (app.clone(), stop.clone(), answered.clone());
        readers.push(tokio::spawn(async move {
            let mut user = 1 + worker;
            while !stop.load(Ordering::Relaxed) {
                let path = format!("/users/{user}/recommendations?n=10");
                let (status, body) = app.get(&path).await;
                assert_eq!(status, StatusCode::OK, "{path}: {body}");
                let recs: UserRecommendations = serde_json::from_value(body).unwrap();
                assert_eq!(recs.items.len(), 10, "{path}: an empty or short answer during a retrain");
                answered.fetch_add(1, Ordering::Relaxed);
                user = user % 610 + 4;
            }
        }));
    }
    let (status, body) = app.post("/model/retrain", &serde_json::json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["version"], 1);
    // A second request while the first runs is refused, not queued.
    let (status, body) = app.post("/model/retrain", &serde_json::json!({})).await;
    assert!(status == StatusCode::CONFLICT || status == StatusCode::ACCEPTED, "{status}: {body}");
    let model =
        app.wait_for(Duration::from_secs(60), |m| m["version"].as_u64() >= Some(2) && m["retraining"] == false).await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.expect("no reader failed");
    }
    assert!(answered.load(Ordering::Relaxed) > 20, "readers ran during the retrain");
    let info: ModelInfo = serde_json::from_value(model).unwrap();
    assert!(info.last_retrain.is_some_and(|r| r.accepted && r.trigger == "admin"));
    // The same data and seed give the same holdout error: the gate accepted it.
    assert!((info.holdout.unwrap().rmse - holdout.rmse).abs() < 1e-6);
    let metrics = app.get_text_metrics().await;
    assert!(metrics.contains(&format!("cinedata_model_version {}", info.version)), "{metrics}");
    let accepted = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cinedata_model_retrains_total{outcome=\"accepted\"} "))
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(accepted, Some(info.version), "one accepted retrain per version: {metrics}");
    // Every retrain left an experiment record in the store (`evaluate --compare` lists them).
    let query = store::ExperimentQuery { kind: Some(schemas::ExperimentKind::Retrain), ..Default::default() };
    let records = app.store.experiments(&query).await.unwrap();
    assert_eq!(records.len() as u64, info.version, "{records:?}");
    // Each names the version it became (the model page's retrain chart shows it).
    let mut versions: Vec<u64> = records.iter().filter_map(|r| r.params["version"].as_u64()).collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=info.version).collect::<Vec<_>>(), "{records:?}");
    assert!(records.iter().all(|r| r.metric("rmse").is_some_and(|v| (v - holdout.rmse).abs() < 1e-6)));
    // The ranking check is recorded beside the rating error, and shown by GET /model.
    let ndcg = holdout.ndcg_at_10.expect("a ranking figure on the holdout");
    assert!(ndcg > 0.0 && ndcg <= 1.0 && holdout.ranking_users > 10, "{holdout:?}");
    assert!(records.iter().all(|r| r.metric("ndcg@10").is_some_and(|v| (v - ndcg).abs() < 1e-6)));
    assert!(records.iter().all(|r| r.data.ratings == 100_836 && r.model == serving::live::retrain::RETRAIN_MODEL));
}

/// The catalogue suites start without a retrain: the model stays empty, and says so, until a
/// retrain is asked for. (The start-up retrain is requested before the server answers, so the
/// first `GET /model` would already show it running.)
#[tokio::test]
async fn with_start_up_retrains_off_nothing_trains_until_asked() {
    let world = World::new().await;
    let app = world.start_with(|s| s.live.retrain.on_startup = false).await;
    let model: ModelInfo = app.get_ok("/model").await;
    assert_eq!((model.version, model.training_ratings), (0, 0), "{model:?}");
    assert!(!model.retraining && model.last_retrain.is_none(), "{model:?}");
    let (status, body) = app.post("/model/retrain", &serde_json::json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let model = app.wait_for(Duration::from_secs(60), |m| m["version"] == 1 && m["retraining"] == false).await;
    let info: ModelInfo = serde_json::from_value(model).unwrap();
    assert_eq!(info.training_ratings, 100_836);
    assert!(info.last_retrain.is_some_and(|r| r.accepted && r.trigger == "admin"));
}
