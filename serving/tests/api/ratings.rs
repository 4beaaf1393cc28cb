//! `GET /ratings` and `GET /ratings/{userId}/{movieId}`.

use reqwest::StatusCode;
use schemas::Rating;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use testkit::backend_tests;

backend_tests!(
    spawn_app =>
    user_one_rated_toy_story_four_stars,
    ratings_are_ordered_by_user_then_movie,
    rating_pages_line_up_across_users,
    user_filter_and_its_alias_agree,
    movie_filter_and_its_alias_agree,
    min_rating_filter_keeps_ratings_at_or_above_it,
    filters_combine,
    unknown_user_has_no_ratings,
    missing_rating_is_404,
);

fn keys(ratings: &[Rating]) -> Vec<(i64, i64)> {
    ratings.iter().map(|r| (r.user_id, r.movie_id)).collect()
}

fn strictly_increasing<T: PartialOrd>(items: &[T]) -> bool {
    items.windows(2).all(|w| w[0] < w[1])
}

async fn user_one_rated_toy_story_four_stars(app: &TestApp) {
    let rating: Value = app.get_ok("/ratings/1/1").await;
    assert_eq!(rating, json!({"userId": 1, "movieId": 1, "rating": 4.0, "timestamp": 964982703}));
}

async fn ratings_are_ordered_by_user_then_movie(app: &TestApp) {
    let page: Vec<Value> = app.get_ok("/ratings").await;
    assert_eq!(page.len(), 100, "default limit");
    assert_eq!(page[0], json!({"userId": 1, "movieId": 1, "rating": 4.0, "timestamp": 964982703}));
    let big: Vec<Rating> = app.get_ok("/ratings?limit=1000").await;
    assert_eq!(big.len(), 1000);
    assert!(strictly_increasing(&keys(&big)), "ordered by (userId, movieId)");
    assert_eq!(big[232].user_id, 2, "user 1 has 232 ratings, then user 2 follows");
}

async fn rating_pages_line_up_across_users(app: &TestApp) {
    let all: Vec<Rating> = app.get_ok("/ratings?skip=200&limit=80").await;
    let first: Vec<Rating> = app.get_ok("/ratings?skip=200&limit=32").await;
    let second: Vec<Rating> = app.get_ok("/ratings?skip=232&limit=48").await;
    assert_eq!(first.iter().chain(&second).copied().collect::<Vec<_>>(), all);
    assert!(first.iter().all(|r| r.user_id == 1));
    assert!(second.iter().all(|r| r.user_id == 2 || r.user_id == 3));
    assert_eq!(second[0].user_id, 2);

    let tail: Vec<Rating> = app.get_ok("/ratings?skip=100830&limit=1000").await;
    assert_eq!(tail.len(), 6, "100836 ratings in all");
    assert!(tail.iter().all(|r| r.user_id == 610));
}

async fn user_filter_and_its_alias_agree(app: &TestApp) {
    let snake: Vec<Rating> = app.get_ok("/ratings?user_id=1&limit=1000").await;
    let camel: Vec<Rating> = app.get_ok("/ratings?userId=1&limit=1000").await;
    assert_eq!(snake.len(), 232);
    assert_eq!(snake, camel);
    assert!(snake.iter().all(|r| r.user_id == 1));
    assert!(strictly_increasing(&keys(&snake)));
    assert_eq!(snake[0], Rating { user_id: 1, movie_id: 1, rating: 4.0, timestamp: 964982703 });
}

async fn movie_filter_and_its_alias_agree(app: &TestApp) {
    let snake: Vec<Rating> = app.get_ok("/ratings?movie_id=1&limit=1000").await;
    let camel: Vec<Rating> = app.get_ok("/ratings?movieId=1&limit=1000").await;
    assert_eq!(snake.len(), 215, "Toy Story has 215 ratings");
    assert_eq!(snake, camel);
    assert!(snake.iter().all(|r| r.movie_id == 1));
    assert!(strictly_increasing(&keys(&snake)), "ordered by userId");

    let forrest: Vec<Rating> = app.get_ok("/ratings?movieId=356&limit=1000").await;
    assert_eq!(forrest.len(), 329);
}

async fn min_rating_filter_keeps_ratings_at_or_above_it(app: &TestApp) {
    let high: Vec<Rating> = app.get_ok("/ratings?movie_id=1&min_rating=4.5&limit=1000").await;
    assert_eq!(high.len(), 65);
    assert!(high.iter().all(|r| r.rating >= 4.5 && r.movie_id == 1));

    let page: Vec<Rating> = app.get_ok("/ratings?min_rating=5&limit=1000").await;
    assert_eq!(page.len(), 1000);
    assert!(page.iter().all(|r| r.rating == 5.0));
    assert!(strictly_increasing(&keys(&page)));

    let everything: Vec<Rating> = app.get_ok("/ratings?user_id=1&min_rating=0&limit=1000").await;
    assert_eq!(everything.len(), 232, "min_rating=0 keeps every rating");
}

async fn filters_combine(app: &TestApp) {
    let one: Vec<Rating> = app.get_ok("/ratings?user_id=1&movieId=1").await;
    assert_eq!(one, [Rating { user_id: 1, movie_id: 1, rating: 4.0, timestamp: 964982703 }]);
    let above: Vec<Rating> = app.get_ok("/ratings?userId=1&movie_id=1&min_rating=4.5").await;
    assert!(above.is_empty(), "user 1 gave Toy Story 4.0");
    let user_high: Vec<Rating> = app.get_ok("/ratings?userId=1&min_rating=5&limit=1000").await;
    assert!(!user_high.is_empty());
    assert!(user_high.iter().all(|r| r.user_id == 1 && r.rating == 5.0));
}

async fn unknown_user_has_no_ratings(app: &TestApp) {
    let none: Vec<Rating> = app.get_ok("/ratings?user_id=999999").await;
    assert!(none.is_empty());
    let none: Vec<Rating> = app.get_ok("/ratings?movie_id=999999").await;
    assert!(none.is_empty());
}

async fn missing_rating_is_404(app: &TestApp) {
    app.assert_errors(["/ratings/1/2", "/ratings/999999/1", "/ratings/1/999999"], StatusCode::NOT_FOUND).await;
}
