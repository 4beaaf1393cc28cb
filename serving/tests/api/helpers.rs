//! Spawning the service on a fresh database holding ml-latest-small, and a small HTTP client.
//!
//! Every test gets its own database and its own server on `127.0.0.1:0`; tests run one per
//! process under cargo-nextest, so nothing is shared between them.
//!
//! - SQLite: a temp file, into which ml-latest-small is imported (about half a second).
//! - PostgreSQL (`CINEDATA_TEST_POSTGRES_URL`): a `cinedata_test_<unique>` database (a
//!   `testkit` [`TestDatabase`]), dropped when the [`TestApp`] drops. Creating and filling a
//!   PostgreSQL database costs seconds, so the first test process of a build imports
//!   ml-latest-small once into a template database named after this test binary (so any
//!   rebuild makes a new one), and every test copies it ([`TestDatabase::from_template`]). The
//!   importer itself is tested in `store/tests/`.
//!
//! `testkit::backend_tests!(spawn_app => name, ...)` runs each `async fn name(app: &TestApp)`
//! as `name::sqlite` and `name::postgres`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

use movielens::Release;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serving::startup::{Application, ServeSettings};
use sqlx::Connection;
use store::{Backend, ImportOptions, Store};
pub use testkit::ml_small;
use testkit::postgres::{self, TestDatabase, execute, server_url, with_database};
use tokio_util::sync::CancellationToken;

/// Advisory lock serialising template creation and copies across test processes.
const TEMPLATE_LOCK: i64 = 0x00C1_DE7A;
/// Template databases start with this; stale ones (from older builds) are dropped.
const TEMPLATE_PREFIX: &str = "cinedata_tpl_";

/// A running service on its own database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub address: String,
    /// The store the service reads, for tests that check the database directly.
    pub store: Store,
    /// Cancelled on drop: stops the server.
    pub token: CancellationToken,
    /// Which backend this app runs on.
    pub backend: Backend,
    client: reqwest::Client,
    /// Keeps the SQLite file alive until the app is dropped.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database, dropped after the server is stopped (fields drop after `drop`).
    _pg_database: Option<TestDatabase>,
    /// The in-process Kafka mock `POST /ratings` produces to.
    pub broker: producer::EmbeddedBroker,
}

/// The topic test apps produce ratings to.
pub const RATINGS_TOPIC: &str = "ratings";

/// ml-latest-small's ratings per star value, (rating, count), counted from its ratings.csv:
/// `/analytics` and `/charts/rating-histogram` both give them.
pub const ML_SMALL_RATING_HISTOGRAM: [(f64, i64); 10] = [
    (0.5, 1370),
    (1.0, 2811),
    (1.5, 1791),
    (2.0, 7551),
    (2.5, 5550),
    (3.0, 20047),
    (3.5, 13136),
    (4.0, 26818),
    (4.5, 8551),
    (5.0, 13211),
];

fn ml_small_release() -> Release {
    let data = ml_small();
    let release = Release::new(&data);
    assert!(
        release.exists(),
        "ml-latest-small not found at {} (set CINEDATA_ML_SMALL to the release folder)",
        data.display()
    );
    release
}

async fn import_ml_small(store: &Store) {
    let report = store.import(&ml_small_release(), &ImportOptions::default()).await.expect("ml-latest-small imports");
    assert_eq!(report.rejected, 0, "ml-latest-small has no bad rows: {:?}", report.errors);
}

/// The template's name: a hash of this test binary (so a rebuild of the store, the importer
/// or the migrations never reuses an old template) and of the data files.
fn template_name() -> String {
    let mut hasher = DefaultHasher::new();
    let exe = std::env::current_exe().expect("the test binary's path");
    let meta = std::fs::metadata(&exe).expect("the test binary's metadata");
    (exe, meta.len(), meta.modified().ok()).hash(&mut hasher);
    let data = ml_small();
    for file in ["movies.csv", "ratings.csv", "tags.csv", "links.csv"] {
        std::fs::metadata(data.join(file)).map(|m| m.len()).ok().hash(&mut hasher);
    }
    format!("{TEMPLATE_PREFIX}{:016x}", hasher.finish())
}

/// Creates `cinedata_test_<unique>` holding ml-latest-small (a [`TestDatabase`] copied from
/// the template), building the template first if this build has none yet.
///
/// # Panics
/// When PostgreSQL cannot be reached: the postgres variants must fail, not pass silently.
async fn create_postgres_database() -> TestDatabase {
    let server = server_url();
    let mut admin = postgres::connect(&server).await;
    // Session-level: released by the unlock below, or by the server if this process dies.
    sqlx::query("SELECT pg_advisory_lock($1)").bind(TEMPLATE_LOCK).execute(&mut admin).await.expect("advisory lock");

    let template = template_name();
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&template)
        .fetch_one(&mut admin)
        .await
        .expect("looking up the template");
    if !exists {
        let stale: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{TEMPLATE_PREFIX}%"))
            .fetch_all(&mut admin)
            .await
            .expect("listing old templates");
        for name in stale {
            let _ = execute(&mut admin, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
        // Filled under another name and renamed when complete, so a crash mid-import never
        // leaves a half-filled template behind.
        let building = format!("{template}_building");
        execute(&mut admin, format!("CREATE DATABASE {building}")).await.expect("creating the template");
        let store = Store::connect(&with_database(&server, &building)).await.expect("connecting to the template");
        import_ml_small(&store).await;
        store.close().await;
        execute(&mut admin, format!("ALTER DATABASE {building} RENAME TO {template}")).await.expect("renaming");
    }

    // Still under the lock: PostgreSQL refuses a copy while another session uses the template.
    let database = TestDatabase::from_template(&template, "cinedata_test").await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(TEMPLATE_LOCK).execute(&mut admin).await;
    let _ = admin.close().await;
    database
}

/// Starts the service on a fresh database holding ml-latest-small.
///
/// # Panics
/// When the data set is missing, PostgreSQL is unreachable (postgres variant) or the app
/// fails to start: a test cannot go on then.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, None).await
}

/// [`spawn_app`] with an API key guarding the write endpoints.
pub async fn spawn_app_with(backend: Backend, api_key: Option<&str>) -> TestApp {
    let api_key = api_key.map(secrecy::SecretString::from);
    spawn_app_configured(backend, move |settings| settings.api_key = api_key).await
}

/// [`spawn_app`] with `configure` applied to the settings last (server limits, API key...).
pub async fn spawn_app_configured(backend: Backend, configure: impl FnOnce(&mut ServeSettings)) -> TestApp {
    let (database_url, dir, pg_database) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temp dir");
            let url = format!("sqlite://{}", dir.path().join("cinedata.db").display());
            (url, Some(dir), None)
        }
        Backend::Postgres => {
            let database = create_postgres_database().await;
            (database.url().to_owned(), None, Some(database))
        }
    };

    let broker = producer::EmbeddedBroker::start(&[producer::TopicSpec::new(RATINGS_TOPIC, 4)])
        .expect("the in-process Kafka mock starts");
    let mut settings = ServeSettings::new(database_url, SocketAddr::from(([127, 0, 0, 1], 0)));
    settings.analytics_ttl = Duration::ZERO;
    settings.brokers = Some(broker.bootstrap_servers().to_owned());
    settings.ratings_topic = RATINGS_TOPIC.to_owned();
    // The catalogue suites do not look at recommendations: no retrain at start (one over the
    // 100k ratings cost each test about 4 s of CPU, most of the suite's time), and a small,
    // fast model should a test ask for one.
    settings.live.retrain.on_startup = false;
    settings.live.retrain.pipeline = testkit::quick_pipeline_with(
        model::Recompute::builder().mf(model::BiasedMf::builder().factors(8).epochs(3).build().expect("valid MF")),
    );
    configure(&mut settings);
    let app = Application::build(&settings).await.expect("the app builds");
    let address = format!("http://{}", app.local_addr().expect("a bound address"));
    let store = app.state().store.clone();
    assert_eq!(store.backend(), backend);
    if backend == Backend::Sqlite {
        import_ml_small(&store).await;
    }

    let token = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(token.clone()));

    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("an HTTP client");
    TestApp { address, store, token, backend, client, _dir: dir, _pg_database: pg_database, broker }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl TestApp {
    /// POSTs a JSON body, with `x-api-key` when given.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value, key: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(format!("{}{path}", self.address)).json(body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.send().await.expect("the request completes")
    }

    /// `GET path` (path and query, starting with `/`).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"))
    }

    /// `GET path` as its status and body text.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.text().await.expect("a body"))
    }

    /// `GET path`, asserting 200, decoded as `T`.
    pub async fn get_ok<T: DeserializeOwned>(&self, path: &str) -> T {
        let (status, body) = self.get_text(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path} ({}): {body}", self.backend.name());
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e} in {body}"))
    }

    /// A listing read page by page with [`get_ok`](Self::get_ok): `skip` at 0, `limit`,
    /// 2·`limit`, ... below `end`, each page asking for `limit` rows; the pages in order.
    /// `listing` is a path, with or without a query of its own (`/movies?genre=comedy`).
    pub async fn get_pages<T: DeserializeOwned>(&self, listing: &str, limit: usize, end: usize) -> Vec<Vec<T>> {
        let separator = if listing.contains('?') { '&' } else { '?' };
        let mut pages = Vec::new();
        for skip in (0..end).step_by(limit) {
            pages.push(self.get_ok(&format!("{listing}{separator}skip={skip}&limit={limit}")).await);
        }
        pages
    }

    /// Asserts `GET path` answers `status` with a JSON `{"detail": "..."}` body; returns the detail.
    pub async fn assert_error(&self, path: &str, status: StatusCode) -> String {
        let response = self.get(path).await;
        let got = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.text().await.expect("a body");
        assert_eq!(got, status, "GET {path} ({}): {body}", self.backend.name());
        assert!(content_type.starts_with("application/json"), "GET {path}: content type {content_type:?}");
        let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e} in {body}"));
        let detail = json["detail"].as_str().unwrap_or_else(|| panic!("GET {path}: no string `detail` in {body}"));
        assert!(!detail.is_empty(), "GET {path}: empty detail");
        detail.to_owned()
    }

    /// [`assert_error`](Self::assert_error) for each of `paths` in turn, all with `status`.
    pub async fn assert_errors<P: AsRef<str>>(&self, paths: impl IntoIterator<Item = P>, status: StatusCode) {
        for path in paths {
            self.assert_error(path.as_ref(), status).await;
        }
    }
}
