//! The pipeline into PostgreSQL.

use std::time::Duration;

use consumer::{Embedded, Metrics, Settings};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_ml_latest_small_into_postgres_fills_the_tables_with_exactly_the_csv_files() {
    replay_ml_small_and_check_the_tables(&TestDb::postgres().await, Duration::from_secs(120)).await;
}

/// Runs SQL on the server's `postgres` database (to fence a test database off and back on).
async fn admin(db: &TestDb, sql: &str) {
    use sqlx::Connection;
    let (admin_url, _) = db.postgres_admin().expect("a PostgreSQL test database");
    let mut conn = sqlx::PgConnection::connect(&admin_url).await.expect("admin connection");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_down_the_consumer_retries_and_then_persists_everything() {
    let db = TestDb::postgres().await;
    let (_, name) = db.postgres_admin().expect("a PostgreSQL test database");
    let settings = Settings { tags_topic: String::new(), ..Settings::new(None, db.url.clone()) };
    let embedded = Embedded::start(&settings).expect("embedded broker");
    let settings = embedded.settings().clone();
    let metrics = Metrics::default();
    let shutdown = CancellationToken::new();

    // The database refuses every connection, and the open ones are cut.
    admin(&db, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
    admin(&db, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).await;

    let consumer = {
        let (settings, store, metrics, shutdown) =
            (settings.clone(), db.store.clone(), metrics.clone(), shutdown.clone());
        tokio::spawn(async move { consumer::run(&settings, store, metrics, None, shutdown).await })
    };
    let rows = first_ratings(5_000);
    let timeline = std::sync::Arc::new(producer::Timeline::from_rows(rows.iter().copied(), []));
    let replay = spawn_replay(embedded.brokers(), timeline, producer::Pace::Max, shutdown.clone());
    assert_delivered(&replay.await.expect("replay task"), rows.len());
    wait_for("the consumer to retry", Duration::from_secs(120), || async {
        let s = metrics.snapshot();
        if s.db_retries >= 2 { Ok(()) } else { Err(format!("{s:?}")) }
    })
    .await;
    assert_eq!(metrics.handled(), 0, "a batch was acknowledged while the database was down");

    admin(&db, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    wait_for_ratings(&db.store, rows.len() as i64, Duration::from_secs(120), || format!("{:?}", metrics.snapshot()))
        .await;
    shutdown.cancel();
    consumer.await.expect("consumer task").expect("consumer runs");
    let mut expected: Vec<RatingTuple> =
        rows.iter().map(|r| (r.user_id, r.movie_id, f64::from(r.rating), r.timestamp)).collect();
    expected.sort_by_key(|r| (r.0, r.1));
    assert_same_rows("ratings after the outage", &stored_ratings(&db.store).await, &expected);
    assert_eq!(metrics.snapshot().dead_letters, 0);
}
