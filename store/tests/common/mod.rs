//! What the store's test files share: a fresh database per test, [`TestDb::new`], the setup
//! `testkit::backend_tests!(TestDb::new => ...)` runs each test body with on SQLite and on
//! PostgreSQL.
//!
//! PostgreSQL comes from `CINEDATA_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); when it is unreachable the postgres variants fail
//! rather than skip.

use store::{Backend, Store};
use testkit::postgres::TestDatabase;

/// A fresh, migrated, empty database that is removed on drop.
pub struct TestDb {
    pub store: Store,
    /// The database's URL, for tests that look at the schema with their own connection.
    #[allow(dead_code, reason = "read by the import tests, not by every test binary")]
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<TestDatabase>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temp dir");
                let url = format!("sqlite://{}", dir.path().join("store.db").display());
                let store = Store::connect(&url).await.expect("SQLite connects");
                Self { store, url, _dir: Some(dir), _pg: None }
            }
            Backend::Postgres => {
                let pg = TestDatabase::create("cinedata_test").await;
                let store = Store::connect(pg.url()).await.expect("PostgreSQL connects");
                Self { store, url: pg.url().to_owned(), _dir: None, _pg: Some(pg) }
            }
        }
    }
}
