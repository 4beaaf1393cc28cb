//! Databases, data, brokers and waiting, for the pipeline tests.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use movielens::{MovieRow, Release};
use producer::replay::{ReplayOptions, ReplayReport, Timeline};
use producer::{Outgoing, Pace};
use store::{Page, RatingQuery, Store, TagQuery};
use testkit::postgres::{TestDatabase, server_url, with_database};
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

/// Ratings in the order both sides of a comparison list them: by (user, movie), the table's
/// key (the tuples have no total order: a rating is an `f64`).
fn in_rating_order(rows: impl IntoIterator<Item = RatingTuple>) -> Vec<RatingTuple> {
    let mut rows: Vec<RatingTuple> = rows.into_iter().collect();
    rows.sort_by_key(|a| (a.0, a.1));
    rows
}

/// Tags in the order both sides of a comparison list them: sorted whole (a user may give a
/// movie several tags).
fn in_tag_order(rows: impl IntoIterator<Item = TagTuple>) -> Vec<TagTuple> {
    let mut rows: Vec<TagTuple> = rows.into_iter().collect();
    rows.sort();
    rows
}

/// Every row of a table, in one page.
const ALL_ROWS: Page = Page { skip: 0, limit: i64::MAX };

/// ratings.csv as (user, movie, rating, timestamp), sorted.
pub fn expected_ratings(release: &Release) -> Vec<RatingTuple> {
    let rows = release.ratings().expect("ratings.csv opens").map(|r| r.expect("ratings.csv parses"));
    in_rating_order(rows.map(|r| (r.user_id, r.movie_id, f64::from(r.rating), r.timestamp)))
}

/// tags.csv as (user, movie, tag, timestamp), sorted.
pub fn expected_tags(release: &Release) -> Vec<TagTuple> {
    let rows = release.tags().expect("tags.csv opens").map(|r| r.expect("tags.csv parses"));
    in_tag_order(rows.map(|t| (t.user_id, t.movie_id, t.tag, t.timestamp)))
}

/// The ratings table, as [`expected_ratings`] lists ratings.csv.
pub async fn stored_ratings(store: &Store) -> Vec<RatingTuple> {
    let rows = store.ratings(&RatingQuery::default(), ALL_ROWS).await.expect("reading ratings");
    in_rating_order(rows.into_iter().map(|r| (r.user_id, r.movie_id, r.rating, r.timestamp)))
}

/// The tags table, as [`expected_tags`] lists tags.csv.
pub async fn stored_tags(store: &Store) -> Vec<TagTuple> {
    let rows = store.tags(&TagQuery::default(), ALL_ROWS).await.expect("reading tags");
    in_tag_order(rows.into_iter().map(|t| (t.user_id, t.movie_id, t.tag, t.timestamp)))
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

/// `{prefix}_{pid}_{nanos}_{counter}`: database, group and topic names of their own.
pub use testkit::unique_name as unique;

/// Polls `check` until it returns `Ok`, or panics after `timeout` with the last `Err` (the
/// state it was waiting to change): testkit's [`testkit::wait_until`].
pub use testkit::wait_until as wait_for;

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
    pg: Option<TestDatabase>,
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
        // CREATE DATABASE from the always-present `postgres` database.
        let admin = with_database(&server_url(), "postgres");
        let pg = TestDatabase::create_via(&admin, "cinedata_pipe").await;
        let url = pg.url().to_owned();
        let store = Store::connect(&url).await.expect("PostgreSQL connects");
        let db = Self { store, url, _dir: None, pg: Some(pg) };
        db.load_movies().await;
        db
    }

    /// The admin URL and database name of a PostgreSQL test database.
    pub fn postgres_admin(&self) -> Option<(String, String)> {
        self.pg.as_ref().map(|pg| (pg.admin_url().to_owned(), pg.name().to_owned()))
    }

    async fn load_movies(&self) {
        let movies: Vec<MovieRow> =
            ml_small().movies().expect("movies.csv opens").map(|m| m.expect("movies.csv parses")).collect();
        self.store.upsert_movies(&movies).await.expect("movies load");
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

/// Replays ml-latest-small through the embedded broker into `db` and checks that the tables
/// then hold exactly the CSV files and that nothing was dead-lettered (both backends' suites).
pub async fn replay_ml_small_and_check_the_tables(db: &TestDb, timeout: Duration) {
    use consumer::{Embedded, Metrics, ReplayPlan, Settings};
    let release = ml_small();
    let embedded = Embedded::start(&Settings::new(None, db.url.clone())).expect("embedded broker");
    let plan = ReplayPlan::release(release.clone(), embedded.settings(), false).await.expect("release loads");
    let metrics = Metrics::default();
    let shutdown = CancellationToken::new();
    let total = (ML_SMALL_RATINGS + ML_SMALL_TAGS) as u64;

    let run = embedded.run(db.store.clone(), metrics.clone(), None, Some(plan), shutdown.clone());
    let wait = async {
        wait_for("every event handled", timeout, || async {
            let s = metrics.snapshot();
            if s.handled >= total { Ok(()) } else { Err(format!("{s:?}")) }
        })
        .await;
        shutdown.cancel();
    };
    let (report, ()) = tokio::join!(run, wait);
    let report = report.expect("the pipeline runs").expect("a replay report");
    assert_delivered(&report, ML_SMALL_RATINGS + ML_SMALL_TAGS);

    assert_ratings_equal_csv(&db.store, &release).await;
    assert_same_rows("tags table vs tags.csv", &stored_tags(&db.store).await, &expected_tags(&release));
    let s = metrics.snapshot();
    assert_eq!((s.ratings, s.tags, s.dead_letters), (ML_SMALL_RATINGS as u64, ML_SMALL_TAGS as u64, 0), "{s:?}");
}
