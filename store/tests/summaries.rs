//! The rating summaries behind `/analytics` and the charts stay equal to the ratings they
//! summarise, through every write path: the importer's bulk load into an empty store and into a
//! non-empty one, upserts, newer and older re-ratings, repeated keys in one batch.
//!
//! The expected figures are recomputed from every stored rating (`Store::all_ratings`) in Rust,
//! so a summary that misses a change, counts one twice or files it under the wrong month fails.

use std::collections::BTreeMap;

use movielens::{MovieRow, RatingRow, Release};
use schemas::charts::MonthStats;
use schemas::{RatingBucket, YearStats};
use store::ImportOptions;

mod common;

use common::TestDb;
use testkit::backend_tests;

backend_tests!(
    TestDb::new =>
    every_write_path_keeps_the_summaries_equal_to_the_ratings,
    ml_latest_small_summaries_equal_a_recount,
);

fn rating(user_id: i64, movie_id: i64, rating: f32, timestamp: i64) -> RatingRow {
    RatingRow { user_id, movie_id, rating, timestamp }
}

/// 2000-12-31 23:59:59 UTC: the last second of a month and of a year.
const END_2000: i64 = 978_307_199;

/// What the summaries should say, recomputed from the stored ratings.
#[derive(Debug, Default)]
struct Recount {
    months: BTreeMap<String, (i64, f64)>,
    movie_years: BTreeMap<(i64, i64), (i64, f64)>,
    histograms: BTreeMap<i64, BTreeMap<u64, i64>>,
    users: BTreeMap<i64, i64>,
    latest: Option<i64>,
    timestamps: Vec<i64>,
}

async fn recount(store: &store::Store) -> Recount {
    let mut r = Recount::default();
    for (user, movie, rating, ts) in store.all_ratings().await.expect("every rating") {
        let date = schemas::events::utc(ts);
        let rating = f64::from(rating);
        let m = r.months.entry(date[..7].to_owned()).or_default();
        m.0 += 1;
        m.1 += rating;
        let y = r.movie_years.entry((movie, date[..4].parse().expect("a year"))).or_default();
        y.0 += 1;
        y.1 += rating;
        *r.histograms.entry(movie).or_default().entry(rating.to_bits()).or_default() += 1;
        *r.users.entry(user).or_default() += 1;
        r.latest = r.latest.max(Some(ts));
        r.timestamps.push(ts);
    }
    r
}

/// Every figure read from the summaries equals the recount; returns the recount.
async fn assert_summaries_match(store: &store::Store, step: &str) -> Recount {
    let expected = recount(store).await;
    let aggregates = store.rating_aggregates().await.expect("the aggregates");
    let months: Vec<MonthStats> = expected
        .months
        .iter()
        .map(|(month, (count, sum))| MonthStats {
            month: month.clone(),
            count: *count,
            mean_rating: sum / *count as f64,
        })
        .collect();
    assert_eq!(aggregates.months, months, "{step}: ratings per month");
    let mut movie_years: Vec<_> =
        aggregates.movie_years.iter().map(|y| ((y.movie_id, y.year), (y.count, y.sum))).collect();
    movie_years.sort_by_key(|y| y.0);
    assert_eq!(movie_years, expected.movie_years.clone().into_iter().collect::<Vec<_>>(), "{step}: per movie and year");
    assert_eq!(aggregates.latest, expected.latest, "{step}: the newest rating");
    let last_day = expected.latest.map_or(0, |l| {
        expected.timestamps.iter().filter(|t| (l / 3600 - 24 + 1..=l / 3600).contains(&(**t / 3600))).count()
    });
    assert_eq!(aggregates.last_day, last_day as i64, "{step}: ratings in the last day");

    for (movie, histogram) in &expected.histograms {
        let charts = store.movie_charts(*movie).await.expect("a movie's charts");
        let buckets: Vec<RatingBucket> = histogram
            .iter()
            .map(|(bits, count)| RatingBucket { rating: f64::from_bits(*bits), count: *count })
            .collect();
        assert_eq!(charts.histogram, buckets, "{step}: movie {movie}'s histogram");
        let years: Vec<YearStats> = expected
            .movie_years
            .range((*movie, i64::MIN)..=(*movie, i64::MAX))
            .map(|((_, year), (count, sum))| YearStats { year: *year, count: *count, mean_rating: sum / *count as f64 })
            .collect();
        assert_eq!(charts.per_year, years, "{step}: movie {movie} per year");
    }

    let analytics = store.analytics(10, 1, 0).await.expect("the analytics");
    let total: i64 = expected.users.values().sum();
    assert_eq!(analytics.rating_count, total, "{step}: ratings");
    assert_eq!(analytics.user_count, expected.users.len() as i64, "{step}: users");
    assert_eq!(analytics.rated_movie_count, expected.histograms.len() as i64, "{step}: rated movies");
    let sum: f64 = expected.months.values().map(|m| m.1).sum();
    assert_eq!(analytics.mean_rating, (total > 0).then(|| sum / total as f64), "{step}: mean rating");
    let mut distribution: BTreeMap<u64, i64> = BTreeMap::new();
    for h in expected.histograms.values() {
        for (bits, count) in h {
            *distribution.entry(*bits).or_default() += count;
        }
    }
    let mut distribution: Vec<(f64, i64)> = distribution.into_iter().map(|(b, c)| (f64::from_bits(b), c)).collect();
    distribution.sort_by(|a, b| a.0.total_cmp(&b.0));
    let got: Vec<(f64, i64)> = analytics.rating_distribution.iter().map(|b| (b.rating, b.count)).collect();
    assert_eq!(got, distribution, "{step}: rating distribution");
    let mut per_year: BTreeMap<i64, (i64, f64)> = BTreeMap::new();
    for (month, (count, sum)) in &expected.months {
        let y = per_year.entry(month[..4].parse().expect("a year")).or_default();
        y.0 += count;
        y.1 += sum;
    }
    let per_year: Vec<YearStats> = per_year
        .into_iter()
        .map(|(year, (count, sum))| YearStats { year, count, mean_rating: sum / count as f64 })
        .collect();
    assert_eq!(analytics.ratings_per_year, per_year, "{step}: ratings per year");
    expected
}

async fn every_write_path_keeps_the_summaries_equal_to_the_ratings(db: &TestDb) {
    let movies: Vec<MovieRow> = (1..=4)
        .map(|id| MovieRow { movie_id: id, title: format!("Movie {id} (2000)"), genres: vec!["Drama".into()] })
        .collect();
    db.store.upsert_movies(&movies).await.expect("the catalogue");
    assert_summaries_match(&db.store, "empty").await;

    // The bulk path into an empty store (indexes dropped and rebuilt; COPY on PostgreSQL).
    let mut loader = db.store.ratings_loader().await.expect("a loader");
    loader.load(&[rating(1, 1, 4.0, END_2000), rating(1, 2, 3.5, END_2000 + 1)]).await.expect("batch 1");
    loader.load(&[rating(2, 1, 5.0, END_2000 - 86_400), rating(3, 3, 1.0, 1)]).await.expect("batch 2");
    // A key out of order ends the load's in-memory summing: it replaces a stored rating.
    loader.load(&[rating(1, 2, 5.0, END_2000 + 5)]).await.expect("batch 3, out of order");
    loader.load(&[rating(2, 3, 2.0, END_2000 + 7)]).await.expect("batch 4");
    loader.finish().await.expect("the load finishes");
    let r = assert_summaries_match(&db.store, "bulk load into an empty store").await;
    // By hand: 1970-01 (1), 2000-12 (2), 2001-01 (2).
    let months: Vec<_> = r.months.iter().map(|(m, c)| (m.as_str(), c.0)).collect();
    assert_eq!(months, [("1970-01", 1), ("2000-12", 2), ("2001-01", 2)]);
    assert_eq!(r.months["2001-01"].1, 7.0, "user 1's movie 2 counts with its newer 5.0");

    // A newer re-rating moves the rating to another month, year and value; an older one and a
    // replay of the stored one change nothing; a batch's repeated key counts its newest row.
    db.store.upsert_ratings(&[rating(1, 1, 2.0, END_2000 + 10)]).await.expect("a newer re-rating");
    db.store.upsert_ratings(&[rating(1, 2, 0.5, 5)]).await.expect("an older re-rating");
    db.store.upsert_ratings(&[rating(1, 2, 3.5, END_2000 + 1)]).await.expect("a replay");
    db.store
        .upsert_ratings(&[rating(4, 4, 1.5, 2_000_000_000), rating(4, 4, 4.5, 1_000_000_000), rating(4, 1, 3.0, 7)])
        .await
        .expect("a batch with a repeated key");
    let r = assert_summaries_match(&db.store, "upserts").await;
    assert_eq!(r.months["2000-12"].0, 1, "user 1's rating of movie 1 left December 2000");
    assert_eq!(r.histograms[&4].len(), 1, "only the newest of the repeated rows counts");

    // The bulk path into a non-empty store, overlapping what is stored (newer and older rows).
    let mut loader = db.store.ratings_loader().await.expect("a loader");
    loader.load(&[rating(1, 1, 5.0, END_2000 + 20), rating(1, 3, 2.5, 3)]).await.expect("batch 1");
    loader.load(&[rating(3, 3, 4.0, 0), rating(4, 4, 3.0, 2_000_000_001)]).await.expect("batch 2");
    loader.finish().await.expect("the load finishes");
    let r = assert_summaries_match(&db.store, "bulk load into a non-empty store").await;
    assert_eq!(r.users[&1], 3);
}

async fn ml_latest_small_summaries_equal_a_recount(db: &TestDb) {
    let release = Release::new(testkit::ml_small());
    db.store.import(&release, &ImportOptions::default()).await.expect("ml-latest-small imports");
    let r = assert_summaries_match(&db.store, "ml-latest-small").await;
    assert_eq!(r.users.len(), 610);
    assert_eq!(r.users.values().sum::<i64>(), 100_836);
}

/// A SQLite bulk load into an empty table sums its summary changes in memory: cut short, the
/// next connect recomputes the summaries; a connect in the middle of a load and the load's own
/// end do not count a rating twice.
#[tokio::test]
async fn a_sqlite_bulk_load_cut_short_or_interrupted_by_a_connect_keeps_the_summaries_right() {
    let db = TestDb::new(store::Backend::Sqlite).await;
    let movies: Vec<MovieRow> =
        (1..=3).map(|id| MovieRow { movie_id: id, title: format!("M{id}"), genres: vec!["Drama".into()] }).collect();
    db.store.upsert_movies(&movies).await.expect("the catalogue");

    let mut loader = db.store.ratings_loader().await.expect("a loader");
    loader.load(&[rating(1, 1, 4.0, END_2000), rating(1, 2, 3.0, 100)]).await.expect("batch 1");
    drop(loader);
    let reconnected = store::Store::connect(&db.url).await.expect("reconnects");
    let r = assert_summaries_match(&reconnected, "after a load cut short").await;
    assert_eq!(r.users[&1], 2);

    let fresh = TestDb::new(store::Backend::Sqlite).await;
    fresh.store.upsert_movies(&movies).await.expect("the catalogue");
    let mut loader = fresh.store.ratings_loader().await.expect("a loader");
    loader.load(&[rating(1, 1, 4.0, END_2000), rating(1, 2, 3.0, 100)]).await.expect("batch 1");
    // Another process connects mid-load: it finds the index missing and recomputes.
    let other = store::Store::connect(&fresh.url).await.expect("a second connection");
    loader.load(&[rating(2, 1, 5.0, 7), rating(2, 3, 1.0, 8)]).await.expect("batch 2");
    loader.finish().await.expect("the load finishes");
    drop(other);
    let r = assert_summaries_match(&fresh.store, "a load with a connect in the middle").await;
    assert_eq!(r.users.values().sum::<i64>(), 4);
}
