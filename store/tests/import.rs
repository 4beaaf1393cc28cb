//! The importer and the upserts, on SQLite and PostgreSQL: re-runnable imports, bad rows
//! reported with file and line, and re-ratings where the newer timestamp wins.
//!
//! Each test body is `async fn name(db: &TestDb)`; `testkit::backend_tests!` runs it as
//! `name::sqlite` and `name::postgres` on a fresh database (`TestDb::new`).

use std::path::Path;

use movielens::{RatingRow, Release};
use sqlx::Connection;
use store::{ImportOptions, ImportReport};
use testkit::ml_small;

mod common;

use common::TestDb;
use testkit::backend_tests;

backend_tests!(
    TestDb::new =>
    importing_ml_latest_small_twice_leaves_the_same_tables,
    synthetic_release_imports_good_rows_and_reports_bad_ones_by_file_and_line,
    synthetic_release_with_lf_endings_reports_the_same_lines,
    reimporting_a_release_with_bad_rows_is_idempotent,
    rerating_keeps_the_newer_timestamp,
    an_older_rerating_in_the_same_batch_loses,
    an_unsorted_release_with_repeated_pairs_keeps_the_newest_in_an_empty_store,
    an_empty_store_and_a_non_empty_one_end_with_the_same_ratings,
    reimporting_an_overlapping_release_upserts_into_a_non_empty_store,
    an_import_into_an_empty_store_leaves_its_keys_and_indexes_in_place,
);

async fn import(db: &TestDb, dir: &Path) -> ImportReport {
    // A small batch size so even the synthetic release spans several write batches.
    let options = ImportOptions { batch_size: 3, ..ImportOptions::default() };
    db.store.import(&Release::new(dir), &options).await.expect("the import runs")
}

async fn importing_ml_latest_small_twice_leaves_the_same_tables(db: &TestDb) {
    let release = Release::new(ml_small());
    assert!(release.exists(), "ml-latest-small not found at {} (set CINEDATA_ML_SMALL)", release.dir().display());
    let expected = (9742, 100836, 3683, 9742);

    let first = db.store.import(&release, &ImportOptions::default()).await.expect("first import");
    assert_eq!((first.movies, first.ratings, first.tags, first.links), (9742, 100836, 3683, 9742));
    assert_eq!(first.rejected, 0, "{:?}", first.errors);
    assert_eq!(db.store.counts().await.expect("counts"), expected);

    let second = db.store.import(&release, &ImportOptions::default()).await.expect("second import");
    assert_eq!(second.rejected, 0);
    assert_eq!(db.store.counts().await.expect("counts"), expected, "a re-import adds no duplicates");

    let rating = db.store.rating(1, 1).await.expect("a query").expect("user 1 rated movie 1");
    assert_eq!((rating.rating, rating.timestamp), (4.0, 964982703));
    let link = db.store.link(791).await.expect("a query").expect("movie 791 has a link");
    assert_eq!(link.tmdb_id, None);
    let movie = db.store.movie(1).await.expect("a query").expect("movie 1");
    assert_eq!(movie.genres, "Adventure|Animation|Children|Comedy|Fantasy");
}

/// A MovieLens-shaped release with CRLF line endings, quoted titles holding commas and
/// quotes, an empty tmdbId and one bad row of each kind. The comments give each bad row's
/// line number (the header is line 1).
fn write_synthetic_release_with(dir: &Path, eol: &str) {
    let files: [(&str, &[&str]); 4] = [
        (
            "movies.csv",
            &[
                "movieId,title,genres",
                "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy",
                "2,\"American President, The (1995)\",Comedy|Drama|Romance",
                "x3,Not A Number (2000),Drama", // line 4: non-numeric id
                "4,\"Quote \"\"Inside\"\", Comma (2001)\",(no genres listed)",
                "5,Too Many Columns (2002),Drama,extra", // line 6: wrong column count
                "6,Heat (1995),Action|Crime|Thriller",
            ],
        ),
        (
            "ratings.csv",
            &[
                "userId,movieId,rating,timestamp",
                "1,1,4.0,964982703",
                "1,2,3.5,964982704",
                "1,4,7.0,964982705",  // line 4: rating off the scale
                "2,99,3.0,964982706", // line 5: movie not in movies.csv
                "2,1,5.0",            // line 6: wrong column count
                "2,2,0.5,964982707",
                "abc,1,3.0,964982708", // line 8: non-numeric user id
                "2,6,4.5,964982709",
                "3,3,4.0,964982710", // line 10: movie 3 was rejected, so it is unknown
            ],
        ),
        (
            "tags.csv",
            &[
                "userId,movieId,tag,timestamp",
                "1,1,pixar,1139045764",
                "1,2,\"politics, satire\",1139045765",
                "1,99,orphan,1139045766", // line 4: movie not in movies.csv
                "2,6,Highly quotable,1139045767",
                "x,6,bad user,1139045768", // line 6: non-numeric user id
            ],
        ),
        (
            "links.csv",
            &[
                "movieId,imdbId,tmdbId",
                "1,0114709,862",
                "2,0112346,",
                "4,0000001,42",
                "6,0113277,949",
                "99,0999999,1", // line 6: movie not in movies.csv
            ],
        ),
    ];
    for (name, lines) in files {
        let mut text = lines.join(eol);
        text.push_str(eol);
        std::fs::write(dir.join(name), text).expect("writing the synthetic release");
    }
}

/// The synthetic release with CRLF line endings, as MovieLens ships them.
fn write_synthetic_release(dir: &Path) {
    write_synthetic_release_with(dir, "\r\n");
}

/// Where each bad row of the synthetic release is reported, in import order (movies, links,
/// ratings, tags).
const EXPECTED_REJECTS: [&str; 10] = [
    "movies.csv:4:",
    "movies.csv:6:",
    "links.csv:6:",
    "ratings.csv:4:",
    "ratings.csv:5:",
    "ratings.csv:6:",
    "ratings.csv:8:",
    "ratings.csv:10:",
    "tags.csv:4:",
    "tags.csv:6:",
];

/// Each rejection's `file:line:` (reported as `/dir/file:line: reason`), in import order.
fn rejected_locations(report: &ImportReport) -> Vec<String> {
    let location = |error: &str| {
        let path_and_line = error.split(": ").next().unwrap_or(error);
        let file_and_line = path_and_line.rsplit(std::path::MAIN_SEPARATOR).next().unwrap_or(path_and_line);
        format!("{file_and_line}:")
    };
    report.errors.iter().map(|e| location(e)).collect()
}

async fn synthetic_release_with_lf_endings_reports_the_same_lines(db: &TestDb) {
    let dir = tempfile::tempdir().expect("a temp dir");
    write_synthetic_release_with(dir.path(), "\n");
    let report = import(db, dir.path()).await;
    assert_eq!(rejected_locations(&report), EXPECTED_REJECTS, "{:#?}", report.errors);
    assert_eq!(db.store.counts().await.expect("counts"), (4, 4, 3, 4));
}

async fn synthetic_release_imports_good_rows_and_reports_bad_ones_by_file_and_line(db: &TestDb) {
    let dir = tempfile::tempdir().expect("a temp dir");
    write_synthetic_release(dir.path());
    let report = import(db, dir.path()).await;
    assert_eq!(rejected_locations(&report), EXPECTED_REJECTS, "{:#?}", report.errors);
    assert_eq!(report.rejected, EXPECTED_REJECTS.len() as u64);
    assert!(report.errors[3].contains("rating 7"), "the reason names the bad rating: {}", report.errors[3]);
    assert!(report.errors[4].contains("movieId 99"), "the reason names the unknown movie: {}", report.errors[4]);

    assert_eq!((report.movies, report.ratings, report.tags, report.links), (4, 4, 3, 4));
    assert_eq!(db.store.counts().await.expect("counts"), (4, 4, 3, 4));

    let titled = db.store.movie(2).await.expect("a query").expect("movie 2");
    assert_eq!(titled.title, "American President, The (1995)");
    let quoted = db.store.movie(4).await.expect("a query").expect("movie 4");
    assert_eq!(quoted.title, "Quote \"Inside\", Comma (2001)");
    assert_eq!(quoted.genres, "(no genres listed)");
    let heat = db.store.movie(6).await.expect("a query").expect("movie 6 (after the bad rows)");
    assert_eq!(heat.genres, "Action|Crime|Thriller", "no carriage return left on the last field");
    assert!(db.store.movie(3).await.expect("a query").is_none());
    assert!(db.store.movie(5).await.expect("a query").is_none());

    let link = db.store.link(2).await.expect("a query").expect("movie 2's link");
    assert_eq!((link.imdb_id.as_str(), link.tmdb_id), ("0112346", None));
    let link = db.store.link(4).await.expect("a query").expect("movie 4's link");
    assert_eq!((link.imdb_id.as_str(), link.tmdb_id), ("0000001", Some(42)), "leading zeros kept");
    assert!(db.store.link(99).await.expect("a query").is_none());

    let tag = db.store.tag(1, 2, "politics, satire").await.expect("a query");
    assert!(tag.is_some(), "a quoted tag keeps its comma");
    let tag = db.store.tag(2, 6, "Highly quotable").await.expect("a query").expect("a tag with spaces");
    assert_eq!(tag.timestamp, 1139045767);

    let rating = db.store.rating(2, 6).await.expect("a query").expect("a rating after bad rows");
    assert_eq!((rating.rating, rating.timestamp), (4.5, 964982709));
    assert!(db.store.rating(2, 99).await.expect("a query").is_none());
    assert!(db.store.rating(1, 4).await.expect("a query").is_none(), "rating 7.0 was rejected");
}

async fn reimporting_a_release_with_bad_rows_is_idempotent(db: &TestDb) {
    let dir = tempfile::tempdir().expect("a temp dir");
    write_synthetic_release(dir.path());
    let first = import(db, dir.path()).await;
    let counts = db.store.counts().await.expect("counts");
    let second = import(db, dir.path()).await;
    assert_eq!(db.store.counts().await.expect("counts"), counts, "no duplicates");
    assert_eq!(second.rejected, first.rejected);
    assert_eq!(second.errors, first.errors, "the same rows are reported the same way");
}

fn rating(user_id: i64, movie_id: i64, rating: f32, timestamp: i64) -> RatingRow {
    RatingRow { user_id, movie_id, rating, timestamp }
}

async fn rerating_keeps_the_newer_timestamp(db: &TestDb) {
    let dir = tempfile::tempdir().expect("a temp dir");
    write_synthetic_release(dir.path());
    import(db, dir.path()).await;
    let stored = |db: &TestDb| {
        let store = db.store.clone();
        async move {
            let r = store.rating(1, 1).await.expect("a query").expect("user 1 rated movie 1");
            (r.rating, r.timestamp)
        }
    };
    assert_eq!(stored(db).await, (4.0, 964982703));

    db.store.upsert_ratings(&[rating(1, 1, 2.5, 964982800)]).await.expect("a newer re-rating");
    assert_eq!(stored(db).await, (2.5, 964982800), "the newer rating replaces the stored one");

    db.store.upsert_ratings(&[rating(1, 1, 5.0, 964982700)]).await.expect("an older re-rating");
    assert_eq!(stored(db).await, (2.5, 964982800), "an older rating changes nothing");

    db.store.upsert_ratings(&[rating(1, 1, 3.0, 964982800)]).await.expect("a replay at the same time");
    assert_eq!(stored(db).await.1, 964982800);

    assert_eq!(db.store.counts().await.expect("counts").1, 4, "re-ratings add no rows");
}

async fn an_older_rerating_in_the_same_batch_loses(db: &TestDb) {
    let dir = tempfile::tempdir().expect("a temp dir");
    write_synthetic_release(dir.path());
    import(db, dir.path()).await;
    let batch = [rating(7, 6, 1.0, 2_000_000_000), rating(7, 6, 4.0, 1_000_000_000), rating(7, 2, 3.0, 5)];
    db.store.upsert_ratings(&batch).await.expect("a batch with a duplicate key");
    let r = db.store.rating(7, 6).await.expect("a query").expect("user 7 rated movie 6");
    assert_eq!((r.rating, r.timestamp), (1.0, 2_000_000_000));
    assert_eq!(db.store.counts().await.expect("counts").1, 6);
}

/// A catalogue of movies 1..=6 and `ratings` (`user,movie,rating,timestamp` lines, in file
/// order) as a release folder.
fn write_release_with_ratings(dir: &Path, ratings: &[&str]) {
    let movies: Vec<String> = (1..=6).map(|id| format!("{id},Movie {id} (2000),Drama")).collect();
    std::fs::write(dir.join("movies.csv"), format!("movieId,title,genres\n{}\n", movies.join("\n")))
        .expect("writing movies.csv");
    std::fs::write(dir.join("ratings.csv"), format!("userId,movieId,rating,timestamp\n{}\n", ratings.join("\n")))
        .expect("writing ratings.csv");
}

/// Sorted for two batches of three, then pairs already written come back out of order (newer,
/// older, same time), then a new pair: the importer's copy-straight-in path for an empty table
/// must notice and merge from there on.
const UNSORTED_RATINGS: [&str; 10] = [
    "1,1,4.0,100",
    "1,2,3.0,100",
    "1,6,2.0,100",
    "2,1,5.0,100",
    "2,2,1.0,100",
    "3,6,3.5,100",
    "1,1,2.0,200", // newer: replaces 4.0
    "2,2,4.5,50",  // older: 1.0 stays
    "1,2,5.0,100", // same time, later row: replaces 3.0
    "4,4,3.0,100",
];

/// What `UNSORTED_RATINGS` leaves, sorted by (user, movie).
const UNSORTED_EXPECTED: [(i64, i64, f32, i64); 7] = [
    (1, 1, 2.0, 200),
    (1, 2, 5.0, 100),
    (1, 6, 2.0, 100),
    (2, 1, 5.0, 100),
    (2, 2, 1.0, 100),
    (3, 6, 3.5, 100),
    (4, 4, 3.0, 100),
];

async fn sorted_ratings(db: &TestDb) -> Vec<(i64, i64, f32, i64)> {
    let mut all = db.store.all_ratings().await.expect("all ratings");
    all.sort_by_key(|&(user, movie, _, _)| (user, movie));
    all
}

async fn an_unsorted_release_with_repeated_pairs_keeps_the_newest_in_an_empty_store(db: &TestDb) {
    let dir = tempfile::tempdir().expect("a temp dir");
    write_release_with_ratings(dir.path(), &UNSORTED_RATINGS);
    let report = import(db, dir.path()).await;
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
    assert_eq!(sorted_ratings(db).await, UNSORTED_EXPECTED);
}

async fn an_empty_store_and_a_non_empty_one_end_with_the_same_ratings(db: &TestDb) {
    // Users 1..=30 rate movies 1..=6 in file order, then some pairs come back out of order.
    let mut ratings: Vec<String> = (1..=30)
        .flat_map(|user| (1..=6).map(move |movie| format!("{user},{movie},{}.5,{}", (user + movie) % 5, 1000 + user)))
        .collect();
    ratings.extend(["5,3,1.0,2000", "2,2,4.0,10", "30,6,2.0,1030", "1,1,3.0,1001"].map(String::from));
    let lines: Vec<&str> = ratings.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().expect("a temp dir");
    write_release_with_ratings(dir.path(), &lines);

    // `db` starts empty, so the importer copies straight in; `seeded` already holds an older
    // rating of a pair the release has, so every batch goes through the merge.
    let seeded = TestDb::new(db.store.backend()).await;
    let catalogue = tempfile::tempdir().expect("a temp dir");
    write_release_with_ratings(catalogue.path(), &[]);
    import(&seeded, catalogue.path()).await;
    seeded.store.upsert_ratings(&[rating(1, 1, 0.5, 1)]).await.expect("a seed rating");

    let first = import(db, dir.path()).await;
    let second = import(&seeded, dir.path()).await;
    assert_eq!((first.rejected, second.rejected), (0, 0), "{:?} {:?}", first.errors, second.errors);
    let expected = sorted_ratings(db).await;
    assert_eq!(expected.len(), 180);
    assert!(expected.contains(&(5, 3, 1.0, 2000)) && expected.contains(&(30, 6, 2.0, 1030)));
    assert!(expected.contains(&(1, 1, 3.0, 1001)) && expected.contains(&(2, 2, 4.5, 1002)));
    assert_eq!(sorted_ratings(&seeded).await, expected);
}

async fn reimporting_an_overlapping_release_upserts_into_a_non_empty_store(db: &TestDb) {
    let dir = tempfile::tempdir().expect("a temp dir");
    write_release_with_ratings(dir.path(), &["1,1,4.0,100", "1,2,3.0,100", "2,1,5.0,100", "2,2,1.0,100"]);
    import(db, dir.path()).await;
    write_release_with_ratings(
        dir.path(),
        &[
            "1,1,2.0,200", // newer: replaces
            "1,2,5.0,50",  // older: ignored
            "2,1,0.5,100", // same time: the later import wins
            "3,3,4.0,100", // new pair
        ],
    );
    let report = import(db, dir.path()).await;
    assert_eq!(report.rejected, 0, "{:?}", report.errors);
    assert_eq!(
        sorted_ratings(db).await,
        [(1, 1, 2.0, 200), (1, 2, 3.0, 100), (2, 1, 0.5, 100), (2, 2, 1.0, 100), (3, 3, 4.0, 100)]
    );
}

/// The indexes on `ratings` and, on PostgreSQL, its constraints, by name (SQLite names the
/// primary key `sqlite_autoindex_ratings_1`; its foreign keys live in the table definition).
async fn ratings_schema(db: &TestDb) -> Vec<String> {
    let mut names: Vec<String> = match db.store.backend() {
        store::Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("SQLite connects");
            sqlx::query_scalar("SELECT name FROM pragma_index_list('ratings')").fetch_all(&mut conn).await
        }
        store::Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("PostgreSQL connects");
            sqlx::query_scalar(
                "SELECT indexname::TEXT FROM pg_indexes WHERE tablename = 'ratings' \
                 UNION SELECT conname::TEXT FROM pg_constraint WHERE conrelid = 'ratings'::regclass",
            )
            .fetch_all(&mut conn)
            .await
        }
    }
    .expect("the schema query");
    names.sort();
    names.dedup();
    names
}

async fn an_import_into_an_empty_store_leaves_its_keys_and_indexes_in_place(db: &TestDb) {
    let before = ratings_schema(db).await;
    let expected: &[&str] = match db.store.backend() {
        store::Backend::Sqlite => &["ratings_by_movie", "sqlite_autoindex_ratings_1"],
        store::Backend::Postgres => &["ratings_by_movie", "ratings_movie_id_fkey", "ratings_pkey"],
    };
    assert_eq!(before, expected);
    let dir = tempfile::tempdir().expect("a temp dir");
    write_release_with_ratings(dir.path(), &UNSORTED_RATINGS[..6]);
    import(db, dir.path()).await;
    assert_eq!(ratings_schema(db).await, before, "the import rebuilt what it dropped");

    let unknown_movie = db.store.upsert_ratings(&[rating(1, 99, 3.0, 1)]).await;
    assert!(unknown_movie.is_err(), "the foreign key holds again");
    db.store.upsert_ratings(&[rating(1, 1, 1.0, 500)]).await.expect("an upsert on the rebuilt key");
    assert_eq!(db.store.counts().await.expect("counts").1, 6);
}

#[tokio::test]
async fn an_in_memory_sqlite_store_imports_through_the_bulk_path() {
    let store = store::Store::connect("sqlite::memory:").await.expect("an in-memory store");
    let dir = tempfile::tempdir().expect("a temp dir");
    write_release_with_ratings(dir.path(), &UNSORTED_RATINGS);
    let report = store.import(&Release::new(dir.path()), &ImportOptions::default()).await.expect("the import runs");
    assert_eq!((report.ratings, report.rejected), (7, 0), "{:?}", report.errors);
    let mut all = store.all_ratings().await.expect("all ratings");
    all.sort_by_key(|&(user, movie, _, _)| (user, movie));
    assert_eq!(all, UNSORTED_EXPECTED, "the loader wrote into the store's own in-memory database");
}
