//! Missing resources answer 404 and bad input 422, both as `{"detail": "..."}`; never a 500.

use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app};
use testkit::backend_tests;

backend_tests!(
    spawn_app =>
    missing_resources_are_404_with_a_detail,
    unknown_routes_are_404_with_a_detail,
    limit_must_be_between_1_and_1000,
    skip_must_not_be_negative,
    non_numeric_parameters_are_422_with_a_detail,
    out_of_range_filters_are_422,
    ids_too_large_for_64_bits_are_422_not_500,
    wrong_method_is_405_json,
    nul_bytes_in_text_parameters_are_rejected_not_a_server_error,
);

const LISTINGS: [&str; 4] = ["/movies", "/ratings", "/tags", "/links"];

async fn missing_resources_are_404_with_a_detail(app: &TestApp) {
    let detail = app.assert_error("/movies/999999", StatusCode::NOT_FOUND).await;
    assert!(detail.contains("999999"), "{detail}");
    app.assert_errors(
        ["/movies/0", "/movies/-1", "/ratings/1/999999", "/tags/2/60756/no%20such%20tag", "/links/999999"],
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn unknown_routes_are_404_with_a_detail(app: &TestApp) {
    app.assert_errors(["/nope", "/movies/1/extra", "/ratings/1", "/tags/2/60756"], StatusCode::NOT_FOUND).await;
}

async fn limit_must_be_between_1_and_1000(app: &TestApp) {
    for listing in LISTINGS {
        let ok: Vec<serde_json::Value> = app.get_ok(&format!("{listing}?limit=1000")).await;
        assert_eq!(ok.len(), 1000, "{listing}?limit=1000");
        let one: Vec<serde_json::Value> = app.get_ok(&format!("{listing}?limit=1")).await;
        assert_eq!(one.len(), 1, "{listing}?limit=1");
        let bad = ["1001", "0", "-1", "1000000"].map(|limit| format!("{listing}?limit={limit}"));
        app.assert_errors(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

async fn skip_must_not_be_negative(app: &TestApp) {
    for listing in LISTINGS {
        app.assert_error(&format!("{listing}?skip=-1"), StatusCode::UNPROCESSABLE_ENTITY).await;
        let zero: Vec<serde_json::Value> = app.get_ok(&format!("{listing}?skip=0&limit=5")).await;
        assert_eq!(zero.len(), 5);
    }
}

async fn non_numeric_parameters_are_422_with_a_detail(app: &TestApp) {
    for listing in LISTINGS {
        let bad = ["limit=abc", "skip=abc", "limit=1.5"].map(|query| format!("{listing}?{query}"));
        app.assert_errors(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    app.assert_errors(
        [
            "/movies/abc",
            "/movies/1.5",
            "/ratings/abc/1",
            "/ratings/1/abc",
            "/tags/abc/1/pixar",
            "/links/abc",
            "/ratings?user_id=abc",
            "/ratings?movieId=abc",
            "/ratings?min_rating=abc",
            "/tags?userId=abc",
            "/tags?movie_id=x",
        ],
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

async fn out_of_range_filters_are_422(app: &TestApp) {
    app.assert_errors(
        [
            "/ratings?min_rating=5.5",
            "/ratings?min_rating=-1",
            "/ratings?min_rating=NaN",
            "/ratings?min_rating=inf",
            "/ratings?user_id=0",
            "/ratings?movie_id=-5",
            "/tags?user_id=-1",
            "/tags?movieId=0",
        ],
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

async fn ids_too_large_for_64_bits_are_422_not_500(app: &TestApp) {
    let huge = "99999999999999999999";
    app.assert_errors(
        [
            format!("/movies/{huge}"),
            format!("/ratings/{huge}/1"),
            format!("/links/{huge}"),
            format!("/movies?skip={huge}"),
            format!("/ratings?user_id={huge}"),
        ],
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let far: Vec<serde_json::Value> = app.get_ok(&format!("/movies?skip={}", i64::MAX)).await;
    assert!(far.is_empty(), "the largest skip is valid and finds nothing");
    app.assert_errors([i64::MAX, i64::MIN].map(|id| format!("/movies/{id}")), StatusCode::NOT_FOUND).await;
}

async fn wrong_method_is_405_json(app: &TestApp) {
    let response =
        reqwest::Client::new().post(format!("{}/movies", app.address)).send().await.expect("POST /movies answers");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert!(body["detail"].is_string(), "{body}");
}

/// A NUL byte can be in a URL but in no MovieLens text: it must never reach the database as
/// a 500 (PostgreSQL refuses it in text) nor be cut short (SQLite's LIKE stops at it).
async fn nul_bytes_in_text_parameters_are_rejected_not_a_server_error(app: &TestApp) {
    for path in ["/movies?title=%00", "/movies?title=toy%00story", "/movies?genre=%00", "/movies?genre=Comedy%00x"] {
        let (status, body) = app.get_text(path).await;
        let rejected = status == StatusCode::UNPROCESSABLE_ENTITY;
        let empty = status == StatusCode::OK && body.trim() == "[]";
        assert!(
            rejected || empty,
            "GET {path} ({}): 422 or an empty list, got {status}: {body:.300}",
            app.backend.name()
        );
    }
    let (status, body) = app.get_text("/tags/2/60756/Highly%00quotable").await;
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::UNPROCESSABLE_ENTITY,
        "a tag with a NUL byte is not found or rejected ({}), got {status}: {body}",
        app.backend.name()
    );
}
