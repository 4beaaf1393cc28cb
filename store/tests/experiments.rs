//! Experiment records on SQLite and PostgreSQL: a record reads back as written, newest first,
//! filtered by protocol, model, kind and data fingerprint, limited.
//!
//! Each test body is `async fn name(db: &TestDb)`; `backend_tests!` runs it as `name::sqlite`
//! and `name::postgres` on a fresh database. PostgreSQL comes from `CINEDATA_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`); when it is unreachable the postgres
//! variants fail rather than skip.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use schemas::{DataSnapshot, ExperimentKind, ExperimentRecord};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use store::{Backend, ExperimentQuery, Store};

/// A fresh, migrated, empty database that is removed on drop.
struct TestDb {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    pg_database: Option<(String, String)>,
}

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

impl TestDb {
    async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temp dir");
                let url = format!("sqlite://{}", dir.path().join("store.db").display());
                let store = Store::connect(&url).await.expect("SQLite connects");
                Self { store, _dir: Some(dir), pg_database: None }
            }
            Backend::Postgres => {
                let server =
                    std::env::var("CINEDATA_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let mut conn = PgConnection::connect(&server).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is unreachable at {server} ({e}). These tests run against PostgreSQL as \
                         well as SQLite: start it (scripts/test.sh does) or set CINEDATA_TEST_POSTGRES_URL."
                    )
                });
                let name = format!("cinedata_test_{}", unique_suffix());
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
                let _ = conn.close().await;
                let store = Store::connect(&with_database(&server, &name)).await.expect("PostgreSQL connects");
                Self { store, _dir: None, pg_database: Some((server, name)) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((server, name)) = self.pg_database.take() else {
            return;
        };
        // Best effort, on its own runtime because `Drop` cannot await.
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&server).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}_{}_{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Replaces the database name of a PostgreSQL URL, keeping any query string.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
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

backend_tests!(
    a_record_reads_back_as_written,
    records_are_listed_newest_first_and_filtered,
    an_empty_store_has_no_records,
);

fn record(kind: ExperimentKind, protocol: &str, model: &str, created_at: i64) -> ExperimentRecord {
    ExperimentRecord {
        id: None,
        kind,
        protocol: protocol.to_owned(),
        model: model.to_owned(),
        params: json!({"factors": 64, "lr": 0.007, "centring": "Global", "schedule": {"decay": 0.95}}),
        data: DataSnapshot {
            path: "/data/ml-latest-small".to_owned(),
            fingerprint: "0123456789abcdef0123456789abcdef".to_owned(),
            ratings: 100_836,
            users: 610,
            movies: 9724,
        },
        metrics: json!({"rmse": 0.8712345678901234, "mae": 0.67, "ndcg@10": null, "level": "test"}),
        folds: vec![json!({"fold": 1, "rmse": 0.87, "fit_seconds": 0.25}), json!({"fold": 2, "rmse": 0.88})],
        fit_seconds: 0.125,
        predict_seconds: 1e-3,
        git_revision: "0123456789abcdef0123456789abcdef01234567-dirty".to_owned(),
        host: "ünïcode-host".to_owned(),
        started_at: created_at - 7,
        created_at,
    }
}

async fn a_record_reads_back_as_written(db: &TestDb) {
    let written = record(ExperimentKind::Retrain, "holdout", "online", 1_800_000_000);
    let id = db.store.record_experiment(&written).await.expect("recorded");
    let read = db.store.experiments(&ExperimentQuery::default()).await.expect("listed");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0], ExperimentRecord { id: Some(id), ..written.clone() });

    // The id a record carries is ignored: the store assigns the next one.
    let second = db.store.record_experiment(&ExperimentRecord { id: Some(id), ..written }).await.expect("recorded");
    assert!(second > id);
}

async fn records_are_listed_newest_first_and_filtered(db: &TestDb) {
    let rows = [
        record(ExperimentKind::Evaluate, "cv", "mf", 100),
        record(ExperimentKind::Evaluate, "cv", "baseline", 300),
        record(ExperimentKind::Evaluate, "topn", "pure-svd", 200),
        record(ExperimentKind::Retrain, "holdout", "mf", 300),
        ExperimentRecord {
            data: DataSnapshot { fingerprint: "ffff".to_owned(), ..DataSnapshot::default() },
            ..record(ExperimentKind::Evaluate, "cv", "mf", 50)
        },
    ];
    let mut ids = Vec::new();
    for r in &rows {
        ids.push(db.store.record_experiment(r).await.expect("recorded"));
    }
    let list = |query: ExperimentQuery| async move {
        let found = db.store.experiments(&query).await.expect("listed");
        found.iter().map(|r| (r.protocol.clone(), r.model.clone(), r.created_at)).collect::<Vec<_>>()
    };
    let key = |p: &str, m: &str, t: i64| (p.to_owned(), m.to_owned(), t);

    // Newest first; equal times by id, the later written first.
    assert_eq!(
        list(ExperimentQuery::default()).await,
        [
            key("holdout", "mf", 300),
            key("cv", "baseline", 300),
            key("topn", "pure-svd", 200),
            key("cv", "mf", 100),
            key("cv", "mf", 50)
        ]
    );
    let cv = ExperimentQuery { protocol: Some("cv".to_owned()), ..ExperimentQuery::default() };
    assert_eq!(list(cv.clone()).await, [key("cv", "baseline", 300), key("cv", "mf", 100), key("cv", "mf", 50)]);
    let mf = ExperimentQuery { model: Some("mf".to_owned()), ..ExperimentQuery::default() };
    assert_eq!(list(mf.clone()).await, [key("holdout", "mf", 300), key("cv", "mf", 100), key("cv", "mf", 50)]);
    let cv_mf = ExperimentQuery { model: Some("mf".to_owned()), ..cv.clone() };
    assert_eq!(list(cv_mf).await, [key("cv", "mf", 100), key("cv", "mf", 50)]);
    let retrains = ExperimentQuery { kind: Some(ExperimentKind::Retrain), ..ExperimentQuery::default() };
    assert_eq!(list(retrains).await, [key("holdout", "mf", 300)]);
    let other_data = ExperimentQuery { data_fingerprint: Some("ffff".to_owned()), ..ExperimentQuery::default() };
    assert_eq!(list(other_data).await, [key("cv", "mf", 50)]);
    assert_eq!(list(ExperimentQuery { limit: Some(2), ..mf }).await, [key("holdout", "mf", 300), key("cv", "mf", 100)]);
    assert!(list(ExperimentQuery { limit: Some(0), ..cv }).await.is_empty());
    let none = ExperimentQuery { protocol: Some("prequential".to_owned()), ..ExperimentQuery::default() };
    assert!(list(none).await.is_empty());
}

async fn an_empty_store_has_no_records(db: &TestDb) {
    assert!(db.store.experiments(&ExperimentQuery::default()).await.expect("listed").is_empty());
}
