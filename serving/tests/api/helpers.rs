//! Spawning the service on a fresh, imported database, and a small HTTP client around it.
//!
//! Every test gets its own database (a temp SQLite file, or a `cinedata_test_*` database on the
//! PostgreSQL server named by `CINEDATA_TEST_POSTGRES_URL`) holding ml-latest-small, and its
//! own server on `127.0.0.1:0`. Tests run one per process under cargo-nextest, so nothing is
//! shared and nothing needs cleaning up between them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use movielens::Release;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serving::startup::{Application, ServeSettings};
use sqlx::{Connection, PgConnection};
use store::{Backend, ImportOptions, Store};
use tokio_util::sync::CancellationToken;

/// The PostgreSQL server the postgres variants use (any database on it; ours are created beside).
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

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
    /// The PostgreSQL database to drop: (server URL, database name).
    pg_database: Option<(String, String)>,
}

/// Generates one `#[tokio::test]` per backend for each body `async fn name(app: &TestApp)`,
/// as `name::sqlite` and `name::postgres`.
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app(store::Backend::Sqlite).await;
                super::$name(&app).await;
            }

            #[tokio::test]
            async fn postgres() {
                let app = $crate::helpers::spawn_app(store::Backend::Postgres).await;
                super::$name(&app).await;
            }
        }
    )+};
}
pub(crate) use backend_tests;

/// The ml-latest-small folder: `CINEDATA_ML_SMALL`, else `shared/` beside the workspace.
pub fn ml_small() -> PathBuf {
    std::env::var_os("CINEDATA_ML_SMALL").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/movielens/ml-latest-small")
        },
        PathBuf::from,
    )
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Replaces the database name (the path) of a PostgreSQL URL, keeping any query string.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    }
}

/// Creates an empty database `cinedata_test_<unique>` on the test server and returns
/// (server URL, database name, URL of the new database).
///
/// # Panics
/// When PostgreSQL cannot be reached: the postgres variants must not pass silently.
pub async fn create_postgres_database() -> (String, String, String) {
    let server = std::env::var("CINEDATA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let mut conn = PgConnection::connect(&server).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is unreachable at {server} ({e}). The suite runs against PostgreSQL as well as \
             SQLite: start it (scripts/test.sh does) or point CINEDATA_TEST_POSTGRES_URL at a server."
        )
    });
    let name = format!("cinedata_test_{}", unique_suffix());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating database {name} on {server}: {e}"));
    let _ = conn.close().await;
    let url = with_database(&server, &name);
    (server, name, url)
}

/// Drops a test database, ending the connections still open on it. Best effort: runs on its
/// own thread and runtime because it is called from `Drop`.
pub fn drop_postgres_database(server: String, name: String) {
    let dropper = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            if let Ok(mut conn) = PgConnection::connect(&server).await {
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        });
    });
    let _ = dropper.join();
}

/// Starts the service on a fresh database holding ml-latest-small.
///
/// # Panics
/// When the data set is missing, PostgreSQL is unreachable (postgres variant) or the app
/// fails to start: a test cannot go on then.
pub async fn spawn_app(backend: Backend) -> TestApp {
    let data = ml_small();
    let release = Release::new(&data);
    assert!(
        release.exists(),
        "ml-latest-small not found at {} (set CINEDATA_ML_SMALL to the release folder)",
        data.display()
    );

    let (database_url, dir, pg_database) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temp dir");
            let url = format!("sqlite://{}", dir.path().join("cinedata.db").display());
            (url, Some(dir), None)
        }
        Backend::Postgres => {
            let (server, name, url) = create_postgres_database().await;
            (url, None, Some((server, name)))
        }
    };

    let settings = ServeSettings {
        database_url: database_url.clone(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        api_key: None,
        analytics_ttl: Duration::ZERO,
    };
    let app = Application::build(&settings).await.expect("the app builds");
    let address = format!("http://{}", app.local_addr().expect("a bound address"));
    let store = app.state().store.clone();
    assert_eq!(store.backend(), backend);

    let report = store
        .import(&release, &ImportOptions::default())
        .await
        .expect("ml-latest-small imports");
    assert_eq!(
        report.rejected, 0,
        "ml-latest-small has no bad rows: {:?}",
        report.errors
    );

    let token = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(token.clone()));

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client");
    TestApp {
        address,
        store,
        token,
        backend,
        client,
        _dir: dir,
        pg_database,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.token.cancel();
        if let Some((server, name)) = self.pg_database.take() {
            drop_postgres_database(server, name);
        }
    }
}

impl TestApp {
    /// `GET path` (path and query, starting with `/`).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"))
    }

    /// `GET path`, asserting 200, decoded as `T`.
    pub async fn get_ok<T: DeserializeOwned>(&self, path: &str) -> T {
        let response = self.get(path).await;
        let status = response.status();
        let body = response.text().await.expect("a body");
        assert_eq!(
            status,
            StatusCode::OK,
            "GET {path} ({}): {body}",
            self.backend.name()
        );
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e} in {body}"))
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
        assert!(
            content_type.starts_with("application/json"),
            "GET {path}: content type {content_type:?}"
        );
        let json: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e} in {body}"));
        let detail = json["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("GET {path}: no string `detail` in {body}"));
        assert!(!detail.is_empty(), "GET {path}: empty detail");
        detail.to_owned()
    }
}

#[test]
fn with_database_replaces_only_the_database_name() {
    assert_eq!(
        with_database("postgres://u@h:5432/test", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h/test?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}
