//! `GET /links` and `GET /links/{movieId}`.

use reqwest::StatusCode;
use schemas::Link;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use testkit::backend_tests;

backend_tests!(
    spawn_app =>
    toy_story_links_to_imdb_and_tmdb,
    missing_tmdb_id_is_null,
    links_are_listed_by_movie_id_with_imdb_ids_as_strings,
    link_pages_cover_every_movie,
    missing_link_is_404,
);

async fn toy_story_links_to_imdb_and_tmdb(app: &TestApp) {
    let link: Value = app.get_ok("/links/1").await;
    assert_eq!(link, json!({"movieId": 1, "imdbId": "0114709", "tmdbId": 862}));
}

async fn missing_tmdb_id_is_null(app: &TestApp) {
    let link: Value = app.get_ok("/links/791").await;
    assert_eq!(link, json!({"movieId": 791, "imdbId": "0113610", "tmdbId": null}));
    assert!(link.as_object().expect("an object").contains_key("tmdbId"), "tmdbId is present as null");
}

async fn links_are_listed_by_movie_id_with_imdb_ids_as_strings(app: &TestApp) {
    let page: Vec<Value> = app.get_ok("/links").await;
    assert_eq!(page.len(), 100, "default limit");
    assert_eq!(page[0], json!({"movieId": 1, "imdbId": "0114709", "tmdbId": 862}));
    for link in &page {
        let imdb = link["imdbId"].as_str().unwrap_or_else(|| panic!("imdbId is a string: {link}"));
        assert_eq!(imdb.len(), 7, "zero-padded: {link}");
        assert!(imdb.bytes().all(|b| b.is_ascii_digit()));
    }
    let ids: Vec<i64> = page.iter().map(|l| l["movieId"].as_i64().expect("movieId")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered by movieId");
}

async fn link_pages_cover_every_movie(app: &TestApp) {
    let all: Vec<Link> = app.get_pages("/links", 1000, 10_000).await.concat();
    assert_eq!(all.len(), 9742);
    assert!(all.windows(2).all(|w| w[0].movie_id < w[1].movie_id));
    let without_tmdb: Vec<i64> = all.iter().filter(|l| l.tmdb_id.is_none()).map(|l| l.movie_id).collect();
    assert_eq!(without_tmdb, [791, 1107, 2851, 4051, 26587, 32600, 40697, 79299]);
    assert_eq!(all.iter().filter(|l| l.imdb_id.starts_with('0')).count(), 7589, "leading zeros kept");

    let window: Vec<Link> = app.get_ok("/links?skip=4990&limit=20").await;
    assert_eq!(window, all[4990..5010]);
}

async fn missing_link_is_404(app: &TestApp) {
    let detail = app.assert_error("/links/999999", StatusCode::NOT_FOUND).await;
    assert!(detail.contains("999999"), "the detail names the movie: {detail}");
}
