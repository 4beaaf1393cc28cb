//! `GET /analytics`: counts and catalogue-wide insights, checked against ml-latest-small.

use serde_json::Value;

use crate::helpers::{ML_SMALL_RATING_HISTOGRAM, TestApp, spawn_app};
use testkit::backend_tests;

backend_tests!(
    spawn_app =>
    counts_match_ml_latest_small,
    rating_distribution_sums_to_the_rating_count,
    ratings_per_year_cover_1996_to_2018,
    genres_report_popularity_and_mean_rating,
    forrest_gump_is_the_most_rated_movie,
    best_rated_movies_have_the_minimum_count,
);

fn i(value: &Value) -> i64 {
    value.as_i64().unwrap_or_else(|| panic!("an integer: {value}"))
}

fn f(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("a number: {value}"))
}

fn list<'a>(analytics: &'a Value, field: &str) -> &'a Vec<Value> {
    analytics[field].as_array().unwrap_or_else(|| panic!("`{field}` is an array"))
}

async fn counts_match_ml_latest_small(app: &TestApp) {
    let a: Value = app.get_ok("/analytics").await;
    assert_eq!(a["movie_count"], 9742);
    assert_eq!(a["rating_count"], 100836);
    assert_eq!(a["tag_count"], 3683);
    assert_eq!(a["link_count"], 9742);
    let counts = app.store.counts().await.expect("the store counts its tables");
    assert_eq!(counts, (9742, 100836, 3683, 9742), "the API and the store agree");
    assert_eq!(a["user_count"], 610);
    assert_eq!(a["rated_movie_count"], 9724);
    assert!((f(&a["mean_rating"]) - 3.501557).abs() < 1e-6, "mean rating {}", a["mean_rating"]);
}

async fn rating_distribution_sums_to_the_rating_count(app: &TestApp) {
    let a: Value = app.get_ok("/analytics").await;
    let buckets: Vec<(f64, i64)> =
        list(&a, "rating_distribution").iter().map(|b| (f(&b["rating"]), i(&b["count"]))).collect();
    assert_eq!(buckets, ML_SMALL_RATING_HISTOGRAM);
    assert_eq!(buckets.iter().map(|b| b.1).sum::<i64>(), i(&a["rating_count"]));
}

async fn ratings_per_year_cover_1996_to_2018(app: &TestApp) {
    let a: Value = app.get_ok("/analytics").await;
    let years = list(&a, "ratings_per_year");
    let by_year: Vec<(i64, i64)> = years.iter().map(|y| (i(&y["year"]), i(&y["count"]))).collect();
    assert_eq!(by_year.first(), Some(&(1996, 6040)), "years in UTC");
    assert_eq!(by_year.last(), Some(&(2018, 6418)));
    assert_eq!(by_year.len(), 23);
    assert!(by_year.contains(&(2000, 10061)));
    assert!(by_year.windows(2).all(|w| w[0].0 < w[1].0), "ordered by year");
    assert_eq!(by_year.iter().map(|y| y.1).sum::<i64>(), 100836);
    assert!(years.iter().all(|y| (0.5..=5.0).contains(&f(&y["mean_rating"]))));
}

async fn genres_report_popularity_and_mean_rating(app: &TestApp) {
    let a: Value = app.get_ok("/analytics").await;
    let genres = list(&a, "genres");
    assert_eq!(genres.len(), 19, "the 19 MovieLens genres (no-genre movies have none)");
    let drama = &genres[0];
    assert_eq!(drama["genre"], "Drama", "most rated genre first");
    assert_eq!(drama["movie_count"], 4361);
    assert_eq!(drama["rating_count"], 41928);
    assert!((f(&drama["mean_rating"]) - 3.656184).abs() < 1e-6);
    let comedy = &genres[1];
    assert_eq!((comedy["genre"].as_str(), i(&comedy["movie_count"])), (Some("Comedy"), 3756));
    assert_eq!(comedy["rating_count"], 39053);
    let counts: Vec<i64> = genres.iter().map(|g| i(&g["rating_count"])).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "ordered by rating count");
}

async fn forrest_gump_is_the_most_rated_movie(app: &TestApp) {
    let a: Value = app.get_ok("/analytics").await;
    let most = list(&a, "most_rated");
    assert_eq!(most.len(), 10);
    assert_eq!(most[0]["movieId"], 356);
    assert_eq!(most[0]["title"], "Forrest Gump (1994)");
    assert_eq!(most[0]["rating_count"], 329);
    let top: Vec<(i64, i64)> = most.iter().take(3).map(|m| (i(&m["movieId"]), i(&m["rating_count"]))).collect();
    assert_eq!(top, [(356, 329), (318, 317), (296, 307)]);
    let counts: Vec<i64> = most.iter().map(|m| i(&m["rating_count"])).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "ordered by rating count");
}

async fn best_rated_movies_have_the_minimum_count(app: &TestApp) {
    let a: Value = app.get_ok("/analytics").await;
    let min = i(&a["min_ratings"]);
    assert!(min >= 1);
    let best = list(&a, "best_rated");
    assert!(!best.is_empty());
    assert!(best.iter().all(|m| i(&m["rating_count"]) >= min), "every best-rated movie has >= {min} ratings");
    let means: Vec<f64> = best.iter().map(|m| f(&m["mean_rating"])).collect();
    assert!(means.windows(2).all(|w| w[0] >= w[1]), "ordered by mean rating");
    if min == 50 {
        assert_eq!(best[0]["movieId"], 318);
        assert_eq!(best[0]["title"], "Shawshank Redemption, The (1994)");
        assert!((means[0] - 4.429022).abs() < 1e-6);
    }
}
