//! The client's error and retry rules, against small local servers that misbehave on purpose
//! (a real CineData never answers garbage, so these cannot be shown against the demo).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use cinedata_client::types::ab::{ExperimentConfig, VariantConfig, VariantModel};
use cinedata_client::types::events::NewRating;
use cinedata_client::{Client, Error, MovieFilter, Retry};
use futures::TryStreamExt;

/// Fast retries, so the tests do not wait.
const QUICK: Retry = Retry { retries: 3, backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(20) };

/// Serves `app` on an ephemeral port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn client(base: &str) -> Client {
    Client::builder(base).retry(QUICK).build().unwrap()
}

const HEALTH: &str = r#"{"status":"ok","version":"test","database":"sqlite"}"#;

/// A server whose every route counts its calls and answers `status` with `body` for the first
/// `failures` calls, then 200 with [`HEALTH`].
async fn flaky(failures: usize, status: StatusCode, body: &'static str) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let answer = move |State(calls): State<Arc<AtomicUsize>>| async move {
        if calls.fetch_add(1, Ordering::SeqCst) < failures {
            (status, [("content-type", "application/json")], body)
        } else {
            (StatusCode::OK, [("content-type", "application/json")], HEALTH)
        }
    };
    let app = Router::new().route("/", get(answer)).route("/ratings", post(answer)).with_state(calls.clone());
    (serve(app).await, calls)
}

fn rating() -> NewRating {
    NewRating { user_id: 1, movie_id: 1, rating: 4.0, timestamp: None }
}

#[tokio::test]
async fn a_read_is_retried_through_503s_with_backoff() {
    let (base, calls) = flaky(2, StatusCode::SERVICE_UNAVAILABLE, r#"{"detail":"warming up"}"#).await;
    let health = client(&base).health().await.expect("the third attempt succeeds");
    assert_eq!(health.status, "ok");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_end_with_unavailable_carrying_the_detail() {
    let (base, calls) = flaky(usize::MAX, StatusCode::SERVICE_UNAVAILABLE, r#"{"detail":"no broker"}"#).await;
    let error = client(&base).health().await.unwrap_err();
    assert!(
        matches!(&error, Error::Unavailable { detail, url } if detail == "no broker" && url == &format!("{base}/")),
        "{error:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4, "the first attempt and three retries");
}

#[tokio::test]
async fn a_4xx_is_never_retried() {
    let (base, calls) =
        flaky(usize::MAX, StatusCode::UNPROCESSABLE_ENTITY, r#"{"detail":"n must be between 1 and 100"}"#).await;
    let error = client(&base).health().await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidRequest { status: 422, detail, .. } if detail == "n must be between 1 and 100"),
        "{error:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_rating_answered_503_is_not_sent_again() {
    let (base, calls) = flaky(usize::MAX, StatusCode::SERVICE_UNAVAILABLE, r#"{"detail":"broker down"}"#).await;
    let error = client(&base).rate(&rating()).await.unwrap_err();
    assert!(matches!(&error, Error::Unavailable { detail, .. } if detail == "broker down"), "{error:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a write is sent once");
}

#[tokio::test]
async fn malformed_json_is_a_decode_error_naming_the_url() {
    let (base, _) = flaky(usize::MAX, StatusCode::OK, "{\"status\": \"ok\", trailing garbage").await;
    let error = client(&base).health().await.unwrap_err();
    assert!(matches!(&error, Error::Decode { .. }), "{error:?}");
    assert!(error.to_string().starts_with(&format!("{base}/: malformed answer")), "{error}");
}

#[tokio::test]
async fn a_plain_text_5xx_keeps_its_text() {
    let (base, calls) = flaky(usize::MAX, StatusCode::BAD_GATEWAY, "upstream went away").await;
    let error = client(&base).health().await.unwrap_err();
    assert!(matches!(&error, Error::Server { status: 502, detail, .. } if detail == "upstream went away"), "{error:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "only 503 and connection failures are retried");
}

#[tokio::test]
async fn a_slow_server_times_out_reads_after_retries_and_writes_at_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let slow = |State(calls): State<Arc<AtomicUsize>>| async move {
        calls.fetch_add(1, Ordering::SeqCst);
        // The server under test answers late on purpose (past the client's timeout): not synchronisation.
        tokio::time::sleep(Duration::from_secs(5)).await;
        HEALTH
    };
    let app = Router::new().route("/", get(slow)).route("/ratings", post(slow)).with_state(calls.clone());
    let base = serve(app).await;
    let client = Client::builder(&base).retry(QUICK).timeout(Duration::from_millis(200)).build().unwrap();
    let error = client.health().await.unwrap_err();
    assert!(matches!(&error, Error::Timeout { timeout, .. } if *timeout == Duration::from_millis(200)), "{error:?}");
    assert!(error.to_string().contains(&base), "{error}");
    assert_eq!(calls.swap(0, Ordering::SeqCst), 4, "a read: the first attempt and three retries");
    let error = client.rate(&rating()).await.unwrap_err();
    assert!(matches!(&error, Error::Timeout { url, .. } if url == &format!("{base}/ratings")), "{error:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a write that may have arrived is not sent again");
}

#[tokio::test]
async fn a_server_that_is_down_is_unavailable_after_the_retries() {
    // A port that was just free: nothing listens there.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let error = client(&base).movie(1).await.unwrap_err();
    assert!(matches!(&error, Error::Unavailable { url, .. } if url == &format!("{base}/movies/1")), "{error:?}");
    // A write may be retried here (it never left), and fails the same way.
    let error = client(&base).rate(&rating()).await.unwrap_err();
    assert!(matches!(&error, Error::Unavailable { url, .. } if url == &format!("{base}/ratings")), "{error:?}");
}

#[test]
fn a_base_url_that_is_not_http_is_refused() {
    for bad in ["127.0.0.1:8000", "ftp://host/", "not a url", "mailto:someone@example.com"] {
        let error = Client::new(bad).unwrap_err();
        assert!(matches!(&error, Error::InvalidUrl { url, .. } if url == bad), "{bad}: {error:?}");
    }
}

#[tokio::test]
async fn the_api_key_is_sent_and_query_options_are_encoded() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let movies = |State(seen): State<Arc<std::sync::Mutex<Vec<String>>>>,
                  headers: HeaderMap,
                  Query(query): Query<Vec<(String, String)>>| async move {
        let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        seen.lock().unwrap().push(format!("{key} {query:?}"));
        // 2,500 movies in pages of at most `limit`.
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.parse::<usize>().unwrap());
        let (skip, limit) = (param("skip").unwrap_or(0), param("limit").unwrap_or(100));
        let rows: Vec<_> = (skip..2_500.min(skip + limit))
            .map(|i| serde_json::json!({"movieId": i + 1, "title": format!("Movie {i}"), "genres": "Drama"}))
            .collect();
        axum::Json(rows).into_response()
    };
    let base = serve(Router::new().route("/movies", get(movies)).with_state(seen.clone())).await;
    let client = Client::builder(&base).api_key("s3cret").build().unwrap();
    let filter = MovieFilter { title: Some("a & b".into()), genre: None };
    let all: Vec<_> = client.movies(&filter).try_collect().await.unwrap();
    assert_eq!(all.len(), 2_500);
    assert_eq!(all.last().unwrap().movie_id, 2_500);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "three pages of at most 1,000: {seen:?}");
    assert_eq!(
        seen[2], r#"s3cret [("title", "a & b"), ("skip", "2000"), ("limit", "1000")]"#,
        "the key on every request, the title percent-encoded and decoded intact"
    );
}

#[tokio::test]
async fn experiment_changes_are_sent_once_with_the_config_and_the_name_as_one_segment() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let busy = |State(seen): State<Arc<std::sync::Mutex<Vec<String>>>>,
                method: Method,
                uri: Uri,
                headers: HeaderMap,
                body: String| async move {
        let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        seen.lock().unwrap().push(format!("{method} {} {key} {body}", uri.path()));
        (StatusCode::SERVICE_UNAVAILABLE, [("content-type", "application/json")], r#"{"detail":"store busy"}"#)
    };
    let base = serve(Router::new().fallback(busy).with_state(seen.clone())).await;
    let client = Client::builder(&base).api_key("s3cret").retry(QUICK).build().unwrap();
    let config = ExperimentConfig {
        variants: vec![VariantConfig { name: "a".into(), model: VariantModel::OnlineMf, share: 1.0 }],
        control: None,
        holdout: 0.0,
        salt: None,
        window_days: 7.0,
    };
    let error = client.put_ab_experiment("a/b c", &config).await.unwrap_err();
    assert!(
        matches!(&error, Error::Unavailable { url, detail } if detail == "store busy" && url == &format!("{base}/experiments/a%2Fb%20c")),
        "{error:?}"
    );
    assert!(matches!(client.start_ab_experiment("exp").await, Err(Error::Unavailable { .. })));
    assert!(matches!(client.stop_ab_experiment("exp").await, Err(Error::Unavailable { .. })));
    assert!(matches!(client.ab_experiment("exp").await, Err(Error::Unavailable { .. })));
    let seen = seen.lock().unwrap().clone();
    let body = r#"{"variants":[{"name":"a","model":"online-mf","share":1.0}],"holdout":0.0,"windowDays":7.0}"#;
    assert_eq!(
        seen[..3],
        [
            format!("PUT /experiments/a%2Fb%20c s3cret {body}"),
            "POST /experiments/exp/start s3cret ".to_owned(),
            "POST /experiments/exp/stop s3cret ".to_owned(),
        ],
        "each change sent once, with the key; the name one path segment"
    );
    assert_eq!(
        seen[3..],
        vec!["GET /experiments/exp s3cret ".to_owned(); 4],
        "a read: the first attempt and three retries"
    );
}
