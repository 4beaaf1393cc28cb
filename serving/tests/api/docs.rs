//! Health, the OpenAPI document and its two viewers, and `/metrics`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};
use testkit::backend_tests;

backend_tests!(
    spawn_app =>
    health_is_ok_and_names_the_backend,
    openapi_3_document_lists_every_path,
    swagger_ui_and_redoc_serve_html,
    metrics_count_requests_per_route_template,
);

/// Every path of the data API, as the OpenAPI document must list it.
const PATHS: [&str; 10] = [
    "/",
    "/movies",
    "/movies/{movie_id}",
    "/ratings",
    "/ratings/{user_id}/{movie_id}",
    "/tags",
    "/tags/{user_id}/{movie_id}/{tag}",
    "/links",
    "/links/{movie_id}",
    "/analytics",
];

async fn health_is_ok_and_names_the_backend(app: &TestApp) {
    let health: Value = app.get_ok("/").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], app.backend.name());
}

async fn openapi_3_document_lists_every_path(app: &TestApp) {
    let doc: Value = app.get_ok("/openapi.json").await;
    let version = doc["openapi"].as_str().expect("an `openapi` version");
    assert!(version.starts_with("3."), "OpenAPI 3, got {version}");
    let paths = doc["paths"].as_object().expect("a `paths` object");
    for path in PATHS {
        let get = &paths.get(path).unwrap_or_else(|| panic!("{path} is documented"))["get"];
        assert!(get.is_object(), "GET {path} is documented");
        assert!(get["responses"]["200"].is_object(), "GET {path} documents its 200 response");
    }
    let movie_params: Vec<&str> = paths["/movies"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for name in ["skip", "limit", "title", "genre"] {
        assert!(movie_params.contains(&name), "/movies documents `{name}`: {movie_params:?}");
    }
    let schemas = doc["components"]["schemas"].as_object().expect("component schemas");
    for schema in ["Movie", "MovieDetail", "Rating", "Tag", "Link", "Analytics", "ErrorBody"] {
        assert!(schemas.contains_key(schema), "schema {schema} is documented");
    }
    let movie = &schemas["Movie"]["properties"];
    for field in ["movieId", "title", "genres"] {
        assert!(movie[field].is_object(), "Movie documents `{field}`");
    }
}

async fn swagger_ui_and_redoc_serve_html(app: &TestApp) {
    for path in ["/docs", "/docs/", "/redoc"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE].to_str().expect("ASCII").to_owned();
        assert!(content_type.starts_with("text/html"), "GET {path}: {content_type}");
        let body = response.text().await.expect("a body");
        assert!(body.to_lowercase().contains("<html"), "GET {path} is an HTML page");
    }
}

/// The value of the sample whose line starts with `prefix` (name and labels), if any.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

async fn metrics_count_requests_per_route_template(app: &TestApp) {
    for path in ["/movies/1", "/movies/2", "/movies/999999", "/ratings/1/1", "/nope"] {
        let _ = app.get(path).await;
    }
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("a body");

    let requests = "cinedata_http_requests_total";
    assert_eq!(
        sample(&text, &format!(r#"{requests}{{method="GET",route="/movies/{{movie_id}}",status="200"}}"#)),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!(r#"{requests}{{method="GET",route="/movies/{{movie_id}}",status="404"}}"#)),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &format!(r#"{requests}{{method="GET",route="/ratings/{{user_id}}/{{movie_id}}",status="200"}}"#)),
        Some(1.0)
    );
    let latency = "cinedata_http_request_duration_seconds_count";
    assert_eq!(sample(&text, &format!(r#"{latency}{{method="GET",route="/movies/{{movie_id}}"}}"#)), Some(3.0));
    assert!(text.contains("cinedata_http_request_duration_seconds_bucket{"), "latency histogram buckets");
    assert!(!text.contains(r#"route="/movies/1""#), "raw paths never become labels");
    assert!(!text.contains(r#"route="/nope""#), "unknown paths never become labels");
}
