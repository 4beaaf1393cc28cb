//! `GET /tags` and `GET /tags/{userId}/{movieId}/{tag}`.

use reqwest::StatusCode;
use schemas::Tag;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use testkit::backend_tests;

backend_tests!(
    spawn_app =>
    tag_with_spaces_is_found_by_its_percent_encoded_text,
    tag_lookup_is_exact,
    tags_are_ordered_by_user_then_movie,
    tag_pages_line_up,
    user_and_movie_filters_and_their_aliases_agree,
    missing_tag_is_404,
);

async fn tag_with_spaces_is_found_by_its_percent_encoded_text(app: &TestApp) {
    let tag: Value = app.get_ok("/tags/2/60756/Highly%20quotable").await;
    assert_eq!(tag, json!({"userId": 2, "movieId": 60756, "tag": "Highly quotable", "timestamp": 1445714996}));
    let tag: Tag = app.get_ok("/tags/2/106782/Leonardo%20DiCaprio").await;
    assert_eq!(tag.tag, "Leonardo DiCaprio");
}

async fn tag_lookup_is_exact(app: &TestApp) {
    app.assert_errors(
        [
            "/tags/2/60756/highly%20quotable",
            "/tags/2/60756/Highly",
            "/tags/2/60756/Highly%20quotable%20",
            "/tags/2/60756/%25",
        ],
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn tags_are_ordered_by_user_then_movie(app: &TestApp) {
    let page: Vec<Tag> = app.get_ok("/tags").await;
    assert_eq!(page.len(), 100, "default limit");
    assert_eq!(page[0].user_id, 2);
    let keys: Vec<(i64, i64)> = page.iter().map(|t| (t.user_id, t.movie_id)).collect();
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "ordered by (userId, movieId): {keys:?}");

    let all: Vec<Tag> = app.get_ok("/tags?limit=1000").await;
    assert_eq!(all.len(), 1000);
    let keys: Vec<(i64, i64)> = all.iter().map(|t| (t.user_id, t.movie_id)).collect();
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "ordered by (userId, movieId)");
}

async fn tag_pages_line_up(app: &TestApp) {
    let all: Vec<Tag> = app.get_pages("/tags", 1000, 4000).await.concat();
    assert_eq!(all.len(), 3683, "ml-latest-small has 3683 tags");
    let window: Vec<Tag> = app.get_ok("/tags?skip=995&limit=10").await;
    assert_eq!(window, all[995..1005]);
}

async fn user_and_movie_filters_and_their_aliases_agree(app: &TestApp) {
    let snake: Vec<Tag> = app.get_ok("/tags?user_id=2").await;
    let camel: Vec<Tag> = app.get_ok("/tags?userId=2").await;
    assert_eq!(snake, camel);
    let listed: Vec<(i64, &str)> = snake.iter().map(|t| (t.movie_id, t.tag.as_str())).collect();
    assert_eq!(
        listed,
        [
            (60756, "Highly quotable"),
            (60756, "funny"),
            (60756, "will ferrell"),
            (89774, "Boxing story"),
            (89774, "MMA"),
            (89774, "Tom Hardy"),
            (106782, "Leonardo DiCaprio"),
            (106782, "Martin Scorsese"),
            (106782, "drugs"),
        ]
    );

    let snake: Vec<Tag> = app.get_ok("/tags?movie_id=1").await;
    let camel: Vec<Tag> = app.get_ok("/tags?movieId=1").await;
    assert_eq!(snake, camel);
    assert_eq!(snake.len(), 3, "Toy Story has 3 tags");
    assert!(snake.iter().all(|t| t.movie_id == 1));

    let both: Vec<Tag> = app.get_ok("/tags?userId=2&movie_id=60756").await;
    assert_eq!(both.len(), 3);
    let none: Vec<Tag> = app.get_ok("/tags?user_id=1").await;
    assert!(none.is_empty(), "user 1 tagged nothing");
}

async fn missing_tag_is_404(app: &TestApp) {
    app.assert_errors(["/tags/1/1/pixar", "/tags/999999/1/pixar"], StatusCode::NOT_FOUND).await;
}
