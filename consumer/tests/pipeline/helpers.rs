//! Databases, data, brokers and waiting, for the pipeline tests.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use movielens::{MovieRow, Release};
use producer::replay::{ReplayOptions, ReplayReport, Timeline};
use producer::{Outgoing, Pace};
use sqlx::{Connection, PgConnection};
use store::{Page, RatingQuery, Store, TagQuery};
use tokio_util::sync::CancellationToken;

/// ml-latest-small's size.
pub const ML_SMALL_RATINGS: usize = 100_836;
/// ml-latest-small's tags.
pub const ML_SMALL_TAGS: usize = 3_683;

pub fn ml_small() -> Release {
    let dir = std::env::var_os("CINEDATA_ML_SMALL").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/movielens/ml-latest-small"),
        PathBuf::from,
    );
    let release = Release::new(dir);
    assert!(release.exists(), "ml-latest-small not found at {} (set CINEDATA_ML_SMALL)", release.dir().display());
    release
}

pub type RatingTuple = (i64, i64, f64, i64);
pub type TagTuple = (i64, i64, String, i64);

/// ratings.csv as (user, movie, rating, timestamp), sorted.
pub fn expected_ratings(release: &Release) -> Vec<RatingTuple> {
    let mut rows: Vec<RatingTuple> = release
        .ratings()
        .expect("ratings.csv opens")
        .map(|r| r.expect("ratings.csv parses"))
        .map(|r| (r.user_id, r.movie_id, f64::from(r.rating), r.timestamp))
        .collect();
    rows.sort_by_key(|a| (a.0, a.1));
    rows
}

/// tags.csv as (user, movie, tag, timestamp), sorted.
pub fn expected_tags(release: &Release) -> Vec<TagTuple> {
    let mut rows: Vec<TagTuple> = release
        .tags()
        .expect("tags.csv opens")
        .map(|r| r.expect("tags.csv parses"))
        .map(|t| (t.user_id, t.movie_id, t.tag, t.timestamp))
        .collect();
    rows.sort();
    rows
}

pub async fn stored_ratings(store: &Store) -> Vec<RatingTuple> {
    let page = Page { skip: 0, limit: i64::MAX };
    let mut rows: Vec<RatingTuple> = store
        .ratings(&RatingQuery::default(), page)
        .await
        .expect("reading ratings")
        .into_iter()
        .map(|r| (r.user_id, r.movie_id, r.rating, r.timestamp))
        .collect();
    rows.sort_by_key(|a| (a.0, a.1));
    rows
}

pub async fn stored_tags(store: &Store) -> Vec<TagTuple> {
    let page = Page { skip: 0, limit: i64::MAX };
    let mut rows: Vec<TagTuple> = store
        .tags(&TagQuery::default(), page)
        .await
        .expect("reading tags")
        .into_iter()
        .map(|t| (t.user_id, t.movie_id, t.tag, t.timestamp))
        .collect();
    rows.sort();
    rows
}

pub async fn rating_count(store: &Store) -> i64 {
    store.counts().await.map_or(-1, |c| c.1)
}

/// Asserts two sorted row lists are equal, naming a few differences instead of dumping both.
pub fn assert_same_rows<T: std::fmt::Debug + PartialEq>(what: &str, actual: &[T], expected: &[T]) {
    if actual == expected {
        return;
    }
    let a: BTreeSet<String> = actual.iter().map(|r| format!("{r:?}")).collect();
    let e: BTreeSet<String> = expected.iter().map(|r| format!("{r:?}")).collect();
    let missing: Vec<_> = e.difference(&a).take(5).collect();
    let unexpected: Vec<_> = a.difference(&e).take(5).collect();
    panic!(
        "{what}: {} rows stored, {} expected ({} distinct stored); missing e.g. {missing:?}; unexpected e.g. {unexpected:?}",
        actual.len(),
        expected.len(),
        a.len()
    );
}

pub async fn assert_ratings_equal_csv(store: &Store, release: &Release) {
    let expected = expected_ratings(release);
    assert_eq!(expected.len(), ML_SMALL_RATINGS);
    assert_same_rows("ratings table vs ratings.csv", &stored_ratings(store).await, &expected);
}

pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{}_{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Polls `check` every 50 ms until it returns `Ok`, or panics after `timeout` with the last
/// `Err` (the state it was waiting to change).
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let state = match check().await {
            Ok(()) => return,
            Err(state) => state,
        };
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}; last state: {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the ratings table holds `n` rows.
pub async fn wait_for_ratings(store: &Store, n: i64, timeout: Duration, status: impl Fn() -> String) {
    wait_for(&format!("{n} ratings in the store"), timeout, || async {
        let count = rating_count(store).await;
        if count == n { Ok(()) } else { Err(format!("{count} ratings; {}", status())) }
    })
    .await;
}

/// A fresh migrated database holding ml-latest-small's movies, removed on drop.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

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

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("pipeline.db").display());
        let store = Store::connect(&url).await.expect("SQLite connects");
        let db = Self { store, url, _dir: Some(dir), pg: None };
        db.load_movies().await;
        db
    }

    pub async fn postgres() -> Self {
        let server = std::env::var("CINEDATA_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        // CREATE DATABASE from the always-present `postgres` database.
        let admin = with_database(&server, "postgres");
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is unreachable at {admin} ({e}). The pipeline runs against PostgreSQL as well as \
                 SQLite: start it (scripts/test.sh does) or set CINEDATA_TEST_POSTGRES_URL."
            )
        });
        let name = unique("cinedata_pipe");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        let _ = conn.close().await;
        let url = with_database(&server, &name);
        let store = Store::connect(&url).await.expect("PostgreSQL connects");
        let db = Self { store, url, _dir: None, pg: Some((admin, name)) };
        db.load_movies().await;
        db
    }

    /// The admin URL and database name of a PostgreSQL test database.
    pub fn postgres_admin(&self) -> Option<(String, String)> {
        self.pg.clone()
    }

    async fn load_movies(&self) {
        let movies: Vec<MovieRow> =
            ml_small().movies().expect("movies.csv opens").map(|m| m.expect("movies.csv parses")).collect();
        self.store.upsert_movies(&movies).await.expect("movies load");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else { return };
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// ml-latest-small's ratings (no tags) in time order.
pub fn ratings_timeline() -> Arc<Timeline> {
    Arc::new(Timeline::load(&ml_small(), false).expect("ml-latest-small loads"))
}

/// Replays ratings only to `brokers` at `pace` on a blocking thread.
pub fn spawn_replay(
    brokers: &str,
    timeline: Arc<Timeline>,
    pace: Pace,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<ReplayReport> {
    let options = ReplayOptions { pace, ..ReplayOptions::new(producer::topics::RATINGS) };
    let config = producer::producer_config(brokers);
    let total = timeline.len();
    tokio::spawn(async move {
        producer::replay::replay(config, timeline.into_events(), Some(total), options, cancel)
            .await
            .expect("the replay runs")
    })
}

/// Asserts a replay delivered every event.
pub fn assert_delivered(report: &ReplayReport, n: usize) {
    assert!(report.is_complete(), "replay incomplete: {report:?}");
    assert_eq!(report.delivered, n as u64, "{report:?}");
}

/// The events of ml-latest-small's first `n` ratings of ratings.csv, as [`Outgoing`].
pub fn first_ratings(n: usize) -> Vec<movielens::RatingRow> {
    ml_small().ratings().expect("ratings.csv").take(n).map(|r| r.expect("parses")).collect()
}

#[allow(dead_code)]
pub fn outgoing(rows: &[movielens::RatingRow]) -> Vec<Outgoing> {
    rows.iter().copied().map(Outgoing::Rating).collect()
}
