//! `/charts/...` and `/model/experiments`: the web interface's figures as JSON, checked
//! against ml-latest-small (the expected values were counted from its ratings.csv).

use serde_json::Value;

use crate::helpers::{ML_SMALL_RATING_HISTOGRAM, TestApp, spawn_app};
use testkit::backend_tests;

backend_tests!(
    spawn_app =>
    ratings_per_month_span_the_release,
    the_histogram_counts_each_star_value,
    genres_per_year_add_up_and_have_means,
    top_movies_follow_the_minimum_count,
    a_movies_charts_count_its_ratings,
    chart_inputs_are_validated,
    experiments_are_listed_newest_first_and_filtered,
);

async fn ratings_per_month_span_the_release(app: &TestApp) {
    let months: Vec<Value> = app.get_ok("/charts/ratings-per-month").await;
    assert_eq!(months.len(), 267, "months with ratings");
    assert_eq!((months[0]["month"].as_str(), months[0]["count"].as_i64()), (Some("1996-03"), Some(58)));
    let last = months.last().unwrap();
    assert_eq!((last["month"].as_str(), last["count"].as_i64()), (Some("2018-09"), Some(604)));
    let busiest = months.iter().max_by_key(|m| m["count"].as_i64()).unwrap();
    assert_eq!((busiest["month"].as_str(), busiest["count"].as_i64()), (Some("2017-05"), Some(2397)));
    assert_eq!(months.iter().map(|m| m["count"].as_i64().unwrap()).sum::<i64>(), 100_836);
}

async fn the_histogram_counts_each_star_value(app: &TestApp) {
    let buckets: Vec<Value> = app.get_ok("/charts/rating-histogram").await;
    let got: Vec<(f64, i64)> =
        buckets.iter().map(|b| (b["rating"].as_f64().unwrap(), b["count"].as_i64().unwrap())).collect();
    assert_eq!(got, ML_SMALL_RATING_HISTOGRAM);
}

async fn genres_per_year_add_up_and_have_means(app: &TestApp) {
    let charts: Value = app.get_ok("/charts/genres").await;
    let by_year = charts["byYear"].as_array().expect("byYear");
    let drama_2000 = by_year.iter().find(|g| g["genre"] == "Drama" && g["year"] == 2000).expect("Drama in 2000");
    assert_eq!(drama_2000["count"], 4032);
    assert!((drama_2000["meanRating"].as_f64().unwrap() - 3.608_630_952).abs() < 1e-6, "{drama_2000}");
    for genre in charts["genres"].as_array().unwrap() {
        let per_year: i64 =
            by_year.iter().filter(|g| g["genre"] == genre["genre"]).map(|g| g["count"].as_i64().unwrap()).sum();
        assert_eq!(per_year, genre["rating_count"].as_i64().unwrap(), "{genre}: years add up to the total");
    }
}

async fn top_movies_follow_the_minimum_count(app: &TestApp) {
    let top: Value = app.get_ok("/charts/top-movies?n=5&min_ratings=50").await;
    assert_eq!(top["mostRated"][0]["movieId"], 356, "Forrest Gump");
    assert_eq!(top["mostRated"][0]["rating_count"], 329);
    assert_eq!(top["mostRated"].as_array().unwrap().len(), 5);
    let analytics: Value = app.get_ok("/analytics").await;
    let ids = |v: &Value| v.as_array().unwrap().iter().map(|m| m["movieId"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&top["bestRated"]), ids(&analytics["best_rated"])[..5], "the same ranking as /analytics");
    let strict: Value = app.get_ok("/charts/top-movies?n=100&min_ratings=300").await;
    assert!(strict["bestRated"].as_array().unwrap().iter().all(|m| m["rating_count"].as_i64().unwrap() >= 300));
    assert_eq!(strict["bestRated"].as_array().unwrap().len(), 3, "three movies have 300 ratings or more");
}

async fn a_movies_charts_count_its_ratings(app: &TestApp) {
    let gump: Value = app.get_ok("/charts/movies/356").await;
    assert_eq!(gump["ratingCount"], 329);
    assert!((gump["meanRating"].as_f64().unwrap() - 4.164_133_738).abs() < 1e-6);
    let histogram: i64 = gump["histogram"].as_array().unwrap().iter().map(|b| b["count"].as_i64().unwrap()).sum();
    let years: i64 = gump["perYear"].as_array().unwrap().iter().map(|b| b["count"].as_i64().unwrap()).sum();
    assert_eq!((histogram, years), (329, 329));
}

async fn chart_inputs_are_validated(app: &TestApp) {
    use reqwest::StatusCode;
    app.assert_error("/charts/movies/999999999", StatusCode::NOT_FOUND).await;
    app.assert_errors(
        [
            "/charts/movies/abc",
            "/charts/top-movies?n=0",
            "/charts/top-movies?n=101",
            "/charts/top-movies?min_ratings=0",
            "/charts/top-movies?n=x",
            "/model/experiments?kind=nope",
            "/model/experiments?limit=0",
            "/model/experiments?limit=1001",
        ],
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

async fn experiments_are_listed_newest_first_and_filtered(app: &TestApp) {
    use schemas::{DataSnapshot, ExperimentKind, ExperimentRecord};
    let record = |model: &str, kind: ExperimentKind, at: i64, rmse: f64| ExperimentRecord {
        id: None,
        kind,
        protocol: "holdout".into(),
        model: model.into(),
        params: serde_json::json!({"factors": 8}),
        data: DataSnapshot { path: "db".into(), fingerprint: "f".into(), ratings: 100, users: 10, movies: 10 },
        metrics: serde_json::json!({"rmse": rmse}),
        folds: vec![],
        fit_seconds: 1.0,
        predict_seconds: 0.1,
        git_revision: "abc".into(),
        host: "test".into(),
        started_at: at,
        created_at: at,
    };
    for (i, (model, kind)) in
        [("mf", ExperimentKind::Evaluate), ("mf", ExperimentKind::Retrain), ("ease", ExperimentKind::Evaluate)]
            .into_iter()
            .enumerate()
    {
        app.store
            .record_experiment(&record(model, kind, 2_000_000_000 + i as i64, 0.8 + i as f64 / 100.0))
            .await
            .unwrap();
    }
    let all: Vec<Value> = app.get_ok("/model/experiments").await;
    let mine: Vec<&Value> = all.iter().filter(|r| r["host"] == "test").collect();
    assert_eq!(mine.iter().map(|r| r["model"].as_str().unwrap()).collect::<Vec<_>>(), ["ease", "mf", "mf"]);
    let retrains: Vec<Value> = app.get_ok("/model/experiments?kind=retrain&model=mf").await;
    assert!(retrains.iter().all(|r| r["kind"] == "retrain" && r["model"] == "mf"));
    assert!(retrains.iter().any(|r| r["host"] == "test" && r["metrics"]["rmse"] == 0.81));
    let one: Vec<Value> = app.get_ok("/model/experiments?limit=1").await;
    assert_eq!(one.len(), 1);
}
