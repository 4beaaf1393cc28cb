//! A/B experiments through the real app: configured and started over HTTP, sticky variants in
//! every list, impressions persisted by a consumer group on the same broker, and outcomes
//! counting a hit for a shown movie the user then liked.

use std::time::Duration;

use reqwest::StatusCode;
use schemas::ab::{ExperimentConfig, ExperimentReport, HOLDOUT};
use schemas::recommend::{Strategy, UserRecommendations};
use serde_json::{Value, json};
use testkit::wait_until;
use tokio_util::sync::CancellationToken;

use crate::helpers::World;

const TIMEOUT: Duration = Duration::from_secs(60);

fn config() -> Value {
    json!({
        "variants": [
            {"name": "control", "model": "served", "share": 1},
            {"name": "popular", "model": "popularity", "share": 1}
        ],
        "holdout": 0.2
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_splits_users_stickily_and_scores_hits_from_persisted_impressions() {
    let world = World::new().await;
    let app = world.start().await;
    let client = reqwest::Client::new();
    let put = |name: &str, body: Value| {
        let (client, url) = (client.clone(), format!("{}/experiments/{name}", app.address));
        async move {
            let response = client.put(url).json(&body).send().await.expect("PUT completes");
            (response.status(), response.json::<Value>().await.expect("a JSON body"))
        }
    };

    // Configured as a draft: lists carry no variant yet.
    let (status, body) = put("exp-1", config()).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::CREATED, Some("draft")), "{body}");
    let list: UserRecommendations = app.get_ok("/users/1/recommendations").await;
    assert_eq!((list.experiment, list.variant), (None, None));

    // Bad input: a clear 4xx, nothing changed.
    let (status, body) = put("exp-1", json!({"variants": [], "holdout": 0})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("variants"), "{body}");
    let (status, _) = put("bad name!", config()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = put("exp-1", json!({"variants": [{"name": "a", "model": "nope", "share": 1}]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(app.post("/experiments/nope/start", &json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/experiments/nope").await.0, StatusCode::NOT_FOUND);

    let (status, body) = app.post("/experiments/exp-1/start", &json!({})).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("running")), "{body}");
    // One experiment at a time.
    assert_eq!(put("exp-2", config()).await.0, StatusCode::CREATED);
    let (status, body) = app.post("/experiments/exp-2/start", &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Every list says its variant: the one the shared assignment gives, the same every time;
    // popularity users get the trending list, holdout users the control's model.
    let parsed: ExperimentConfig = serde_json::from_value(config()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for user in 1..=60 {
        let list: UserRecommendations = app.get_ok(&format!("/users/{user}/recommendations")).await;
        let expected = parsed.assign("exp-1", user);
        assert_eq!(list.experiment.as_deref(), Some("exp-1"));
        assert_eq!(list.variant.as_deref(), Some(expected.variant), "user {user}");
        if expected.variant == "popular" {
            assert_eq!(list.strategy, Strategy::Trending, "user {user}");
        } else {
            assert_eq!(list.strategy, Strategy::Personal, "user {user} ({})", expected.variant);
        }
        let again: UserRecommendations = app.get_ok(&format!("/users/{user}/recommendations")).await;
        assert_eq!(again.variant, list.variant, "sticky");
        seen.insert(expected.variant.to_owned());
    }
    assert_eq!(seen.len(), 3, "control, popular and holdout among 60 users: {seen:?}");
    // Another replica on the same store (started after the experiment) answers with the same
    // variants: the assignment is a hash, the running experiment is read from the store.
    let replica = world.start_with(|_| {}).await;
    for user in [1, 2, 3, 4, 5] {
        let list: UserRecommendations = replica.get_ok(&format!("/users/{user}/recommendations")).await;
        assert_eq!(list.variant.as_deref(), Some(parsed.assign("exp-1", user).variant), "replica, user {user}");
    }
    replica.stop().await;
    let metrics = app.get_text_metrics().await;
    assert!(metrics.contains("cinedata_experiment_lists_total{experiment=\"exp-1\",variant=\"control\"}"), "{metrics}");

    // A consumer group persists the impressions (and ratings) from the same broker.
    let settings = consumer::Settings {
        brokers: Some(world.broker.bootstrap_servers().to_owned()),
        tags_topic: String::new(),
        session_timeout_ms: Some(6000),
        batch_ms: 20,
        ..consumer::Settings::new(None, world.database_url())
    };
    let stop = CancellationToken::new();
    let group = {
        let (store, stop) = (app.store.clone(), stop.clone());
        tokio::spawn(async move { consumer::run(&settings, store, consumer::Metrics::default(), None, stop).await })
    };
    wait_until("the 120 impressions stored", TIMEOUT, || async {
        let n = app.store.impressions_of("exp-1").await.unwrap().len();
        if n >= 120 { Ok(()) } else { Err(format!("{n} stored")) }
    })
    .await;

    // User 1 likes the movie shown first: a hit for their variant, and for nobody else.
    let shown: UserRecommendations = app.get_ok("/users/1/recommendations").await;
    let variant = shown.variant.clone().unwrap();
    let (status, body) =
        app.post("/ratings", &json!({"userId": 1, "movieId": shown.items[0].movie_id, "rating": 5})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let report = wait_until("user 1's hit in the outcomes", TIMEOUT, || async {
        let report: ExperimentReport = app.get_ok("/experiments/exp-1").await;
        let mine = report.outcomes.iter().find(|o| o.variant == variant).unwrap();
        if mine.hit_users >= 1 { Ok(report) } else { Err(format!("{:?}", report.outcomes)) }
    })
    .await;
    let names: Vec<&str> = report.outcomes.iter().map(|o| o.variant.as_str()).collect();
    assert_eq!(names, ["control", "popular", HOLDOUT]);
    assert_eq!(report.outcomes.iter().map(|o| o.hit_users).sum::<u64>(), 1, "{:?}", report.outcomes);
    assert!(report.outcomes.iter().all(|o| o.users >= 1 && o.impressions >= o.users));
    assert_eq!(report.outcomes.iter().map(|o| o.users).sum::<u64>(), 60);
    let popular = &report.outcomes[1];
    assert!(popular.vs_control.is_some() && report.outcomes[0].vs_control.is_none());

    // Stopped: lists come from the served model again, and the history has every change.
    let (status, _) = app.post("/experiments/exp-1/stop", &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let list: UserRecommendations = app.get_ok("/users/2/recommendations").await;
    assert_eq!(list.variant, None);
    let report: ExperimentReport = wait_until("the report to show the stop", TIMEOUT, || async {
        let report: ExperimentReport = app.get_ok("/experiments/exp-1").await;
        if report.history.len() == 3 { Ok(report) } else { Err(format!("{:?}", report.history)) }
    })
    .await;
    let actions: Vec<&str> = report.history.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(actions, ["created", "started", "stopped"]);
    let metrics = app.get_text_metrics().await;
    assert!(metrics.contains("cinedata_experiment_users{experiment=\"exp-1\",variant=\"popular\"}"), "{metrics}");

    stop.cancel();
    group.await.expect("the consumer task").expect("the consumer runs");
    app.stop().await;
}
