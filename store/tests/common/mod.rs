//! What the store's test files share: a fresh database per test, and `backend_tests!`, which
//! runs each test body on SQLite and on PostgreSQL.
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

/// Runs each `async fn name(db: &TestDb)` on both backends, as `name::sqlite` and `name::postgres`.
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(&super::TestDb::new(store::Backend::Sqlite).await).await;
            }

            #[tokio::test]
            async fn postgres() {
                super::$name(&super::TestDb::new(store::Backend::Postgres).await).await;
            }
        }
    )+};
}
pub(crate) use backend_tests;
