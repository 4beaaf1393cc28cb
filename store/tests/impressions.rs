//! Impressions on SQLite and PostgreSQL: kept once per event id, read back per experiment, and
//! the experiment index covering only lists served inside an experiment (most lists are not).
//!
//! Each test body is `async fn name(db: &TestDb)`; `testkit::backend_tests!` runs it as
//! `name::sqlite` and `name::postgres` on a fresh database (`TestDb::new`).

use schemas::events::{EventId, ListShown, SCHEMA_VERSION};
use sqlx::Connection;

mod common;

use common::TestDb;
use testkit::backend_tests;

backend_tests!(
    TestDb::new =>
    impressions_are_kept_once_and_read_back_per_experiment,
    the_experiment_index_covers_experiment_lists_only,
);

fn shown(id: u128, user: i64, experiment: Option<&str>, stream_time: i64) -> ListShown {
    ListShown {
        schema_version: SCHEMA_VERSION,
        event_id: EventId::time_ordered_at(1_765_000_000_000 + u64::try_from(id).unwrap(), id),
        user_id: user,
        movie_ids: vec![10, 20, 30],
        strategy: "personal".into(),
        model_version: 3,
        experiment: experiment.map(str::to_owned),
        variant: experiment.map(|_| "control".to_owned()),
        stream_time,
        timestamp: 1_765_000_000,
    }
}

async fn impressions_are_kept_once_and_read_back_per_experiment(db: &TestDb) {
    let batch = [shown(1, 7, Some("exp"), 200), shown(2, 8, None, 100), shown(3, 9, Some("exp"), 100)];
    db.store.insert_impressions(&batch).await.expect("first delivery");
    db.store.insert_impressions(&batch[..2]).await.expect("a redelivery");
    let mut ids = db.store.impression_ids().await.expect("ids");
    ids.sort();
    let mut expected: Vec<String> = batch.iter().map(|e| e.event_id.to_string()).collect();
    expected.sort();
    assert_eq!(ids, expected);
    let of: Vec<(i64, i64)> =
        db.store.impressions_of("exp").await.expect("read").iter().map(|i| (i.user_id, i.stream_time)).collect();
    assert_eq!(of, [(9, 100), (7, 200)], "the experiment's lists only, in stream order");
    assert!(db.store.impressions_of("other").await.expect("read").is_empty());
}

async fn the_experiment_index_covers_experiment_lists_only(db: &TestDb) {
    let definition: String = match db.store.backend() {
        store::Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("SQLite connects");
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as("EXPLAIN QUERY PLAN SELECT user_id FROM impressions WHERE experiment = 'x'")
                    .fetch_all(&mut conn)
                    .await
                    .expect("a query plan");
            let plan: Vec<String> = plan.into_iter().map(|row| row.3).collect();
            assert!(
                plan.iter().any(|d| d.contains("impressions_by_experiment")),
                "an experiment's impressions are read through the index: {plan:?}"
            );
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'impressions_by_experiment'")
                .fetch_one(&mut conn)
                .await
                .expect("the index exists")
        }
        store::Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("PostgreSQL connects");
            sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE indexname = 'impressions_by_experiment'")
                .fetch_one(&mut conn)
                .await
                .expect("the index exists")
        }
    };
    assert!(
        definition.to_lowercase().contains("where") && definition.contains("experiment IS NOT NULL"),
        "a partial index: {definition}"
    );
}
