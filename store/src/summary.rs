//! SQLite's half of the rating summaries (`migrations/sqlite/0003_rating_summaries.sql`): the
//! tables the charts and `/analytics` read instead of scanning `ratings`.
//!
//! Both SQLite writers (`Store::upsert_ratings` and the importer's bulk path) do the same three
//! steps in one write transaction, so the summaries never drift from `ratings`: read the stored
//! ratings a batch may replace ([`SQLITE_STORED`]), write the batch, then add its signed changes
//! ([`Changes`]) with [`SQLITE_UPSERTS`]. The write transaction holds SQLite's single write
//! lock, so nothing can change a stored rating between the read and the write. A bulk load into
//! an empty table sums its changes in memory and writes them once at the end; if it is cut
//! short, the next connect finds the secondary index missing and rebuilds the summaries too.
//! Row triggers would be simpler but cost SQLite 8–25 µs per rating each (3–8× the insert).
//!
//! PostgreSQL keeps them with statement triggers over transition tables (its migration 0003);
//! its bulk load turns them off and writes its in-memory sums with [`Changes::write_pg`]: the
//! same JSON arrays, through the same upserts in PostgreSQL's dialect.

use std::collections::HashMap;
use std::fmt::Write;

use movielens::RatingRow;
use rustc_hash::FxHashMap;

/// The stored `(user, movie, rating, timestamp)` rows of a batch's keys; `$1` is
/// [`keys_json`] of the batch.
pub(crate) const SQLITE_STORED: &str = "SELECT r.user_id, r.movie_id, r.rating, r.timestamp FROM json_each($1) j \
     JOIN ratings r ON r.user_id = j.value ->> 0 AND r.movie_id = j.value ->> 1";

/// One upsert per summary table, each adding the rows of one of [`Changes::json`]'s arrays.
pub(crate) const SQLITE_UPSERTS: [&str; 5] = [
    "INSERT INTO rating_months (month, rating_count, rating_sum) \
     SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1) WHERE true \
     ON CONFLICT (month) DO UPDATE SET rating_count = rating_count + excluded.rating_count, \
     rating_sum = rating_sum + excluded.rating_sum",
    "INSERT INTO movie_years (movie_id, year, rating_count, rating_sum) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each($1) WHERE true \
     ON CONFLICT (movie_id, year) DO UPDATE SET rating_count = rating_count + excluded.rating_count, \
     rating_sum = rating_sum + excluded.rating_sum",
    "INSERT INTO movie_rating_counts (movie_id, rating, rating_count) \
     SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1) WHERE true \
     ON CONFLICT (movie_id, rating) DO UPDATE SET rating_count = rating_count + excluded.rating_count",
    "INSERT INTO user_rating_counts (user_id, rating_count) \
     SELECT value ->> 0, value ->> 1 FROM json_each($1) WHERE true \
     ON CONFLICT (user_id) DO UPDATE SET rating_count = rating_count + excluded.rating_count",
    "INSERT INTO rating_hours (hour, rating_count, latest) \
     SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1) WHERE true \
     ON CONFLICT (hour) DO UPDATE SET rating_count = rating_count + excluded.rating_count, \
     latest = MAX(latest, excluded.latest)",
];

/// [`SQLITE_UPSERTS`] in PostgreSQL's dialect, for [`Changes::write_pg`].
const PG_UPSERTS: [&str; 5] = [
    "INSERT INTO rating_months AS s (month, rating_count, rating_sum) \
     SELECT j ->> 0, (j ->> 1)::BIGINT, (j ->> 2)::FLOAT8 FROM jsonb_array_elements($1::jsonb) AS t(j) \
     ON CONFLICT (month) DO UPDATE SET rating_count = s.rating_count + excluded.rating_count, \
     rating_sum = s.rating_sum + excluded.rating_sum",
    "INSERT INTO movie_years AS s (movie_id, year, rating_count, rating_sum) \
     SELECT (j ->> 0)::BIGINT, (j ->> 1)::BIGINT, (j ->> 2)::BIGINT, (j ->> 3)::FLOAT8 \
     FROM jsonb_array_elements($1::jsonb) AS t(j) \
     ON CONFLICT (movie_id, year) DO UPDATE SET rating_count = s.rating_count + excluded.rating_count, \
     rating_sum = s.rating_sum + excluded.rating_sum",
    "INSERT INTO movie_rating_counts AS s (movie_id, rating, rating_count) \
     SELECT (j ->> 0)::BIGINT, (j ->> 1)::FLOAT8, (j ->> 2)::BIGINT FROM jsonb_array_elements($1::jsonb) AS t(j) \
     ON CONFLICT (movie_id, rating) DO UPDATE SET rating_count = s.rating_count + excluded.rating_count",
    "INSERT INTO user_rating_counts AS s (user_id, rating_count) \
     SELECT (j ->> 0)::BIGINT, (j ->> 1)::BIGINT FROM jsonb_array_elements($1::jsonb) AS t(j) \
     ON CONFLICT (user_id) DO UPDATE SET rating_count = s.rating_count + excluded.rating_count",
    "INSERT INTO rating_hours AS s (hour, rating_count, latest) \
     SELECT (j ->> 0)::BIGINT, (j ->> 1)::BIGINT, (j ->> 2)::BIGINT FROM jsonb_array_elements($1::jsonb) AS t(j) \
     ON CONFLICT (hour) DO UPDATE SET rating_count = s.rating_count + excluded.rating_count, \
     latest = GREATEST(s.latest, excluded.latest)",
];

/// Recomputes every summary from `ratings` (one grouping pass per table), for a store whose
/// bulk load was cut short. SQLite's migration 0003 ends with the same statements.
pub(crate) const SQLITE_REBUILD: &str = "\
    DELETE FROM rating_months; DELETE FROM movie_years; DELETE FROM movie_rating_counts; \
    DELETE FROM user_rating_counts; DELETE FROM rating_hours; \
    INSERT INTO rating_months \
    SELECT strftime('%Y-%m', timestamp, 'unixepoch'), COUNT(*), SUM(rating) FROM ratings GROUP BY 1; \
    INSERT INTO movie_years SELECT movie_id, CAST(strftime('%Y', timestamp, 'unixepoch') AS INTEGER), \
    COUNT(*), SUM(rating) FROM ratings GROUP BY 1, 2; \
    INSERT INTO movie_rating_counts SELECT movie_id, rating, COUNT(*) FROM ratings GROUP BY 1, 2; \
    INSERT INTO user_rating_counts SELECT user_id, COUNT(*) FROM ratings GROUP BY 1; \
    INSERT INTO rating_hours SELECT timestamp / 3600, COUNT(*), MAX(timestamp) FROM ratings GROUP BY 1;";

/// Whether `ratings_by_movie` exists. A bulk load into an empty table drops it until it ends,
/// so its absence at connect means a load was cut short (or runs right now).
pub(crate) const SQLITE_HAS_INDEX: &str =
    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'ratings_by_movie')";

/// At connect: if a bulk load into an empty table was cut short, its summed summary changes
/// were lost with it, so recompute the summaries, and build the index it dropped. A load still
/// running sees the index back and recomputes the summaries itself when it ends
/// (`load::SqliteLoad`), so the two never count a rating twice.
///
/// # Errors
/// A database error.
pub(crate) async fn sqlite_recover(pool: &sqlx::SqlitePool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let has_index: bool = sqlx::query_scalar(SQLITE_HAS_INDEX).fetch_one(&mut *tx).await?;
    if !has_index {
        tracing::warn!("a bulk load of ratings did not finish: rebuilding ratings_by_movie and the rating summaries");
        sqlx::raw_sql(SQLITE_REBUILD).execute(&mut *tx).await?;
        sqlx::query(crate::write::RATINGS_BY_MOVIE).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// PostgreSQL's summary triggers, which a bulk load into an empty table turns off while it
/// sums the changes itself ([`Changes::write_pg`]).
pub(crate) const PG_TRIGGERS: [&str; 2] = ["ratings_summarise_insert", "ratings_summarise_update"];

/// The batch's keys as a JSON array of `[user, movie]`, for [`SQLITE_STORED`].
pub(crate) fn keys_json<'a>(rows: impl IntoIterator<Item = &'a RatingRow>) -> String {
    let mut json = String::from("[");
    for (i, r) in rows.into_iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(json, "[{},{}]", r.user_id, r.movie_id);
    }
    json.push(']');
    json
}

/// A stored rating a batch may replace, keyed by (user, movie): (rating, timestamp).
pub(crate) type Stored = HashMap<(i64, i64), (f64, i64)>;

/// What a batch changes in each summary table, summed per key. Counts and sums are signed: a
/// re-rating takes the replaced rating out (-1) and puts the new one in (+1).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Changes {
    /// (year, month) → (count, sum).
    months: FxHashMap<(i64, i64), (i64, f64)>,
    /// (movie, year) → (count, sum).
    movie_years: FxHashMap<(i64, i64), (i64, f64)>,
    /// (movie, rating's bits) → count.
    movie_ratings: FxHashMap<(i64, u64), i64>,
    /// user → count.
    users: FxHashMap<i64, i64>,
    /// hour (timestamp / 3600) → (count, newest timestamp of the changes).
    hours: FxHashMap<i64, (i64, i64)>,
}

impl Changes {
    /// The changes of writing `batch` (one row per key) over the `stored` rows, under the
    /// writers' rule: a rating replaces the stored one only if it is at least as new.
    pub(crate) fn of(batch: &[RatingRow], stored: &Stored) -> Self {
        let mut changes = Self::default();
        changes.record(batch, stored);
        changes
    }

    /// Adds the changes of writing `batch` over `stored` (see [`Changes::of`]).
    pub(crate) fn record(&mut self, batch: &[RatingRow], stored: &Stored) {
        for r in batch {
            let new = (f64::from(r.rating), r.timestamp);
            match stored.get(&(r.user_id, r.movie_id)) {
                None => self.add(r.user_id, r.movie_id, new, 1),
                Some(&old) if r.timestamp >= old.1 => {
                    self.add(r.user_id, r.movie_id, old, -1);
                    self.add(r.user_id, r.movie_id, new, 1);
                }
                Some(_) => {}
            }
        }
    }

    fn add(&mut self, user_id: i64, movie_id: i64, (rating, timestamp): (f64, i64), n: i64) {
        let (year, month, _) = schemas::events::utc_date(timestamp);
        let m = self.months.entry((year, month)).or_default();
        m.0 += n;
        m.1 += n as f64 * rating;
        let y = self.movie_years.entry((movie_id, year)).or_default();
        y.0 += n;
        y.1 += n as f64 * rating;
        *self.movie_ratings.entry((movie_id, rating.to_bits())).or_default() += n;
        *self.users.entry(user_id).or_default() += n;
        let h = self.hours.entry(timestamp / 3600).or_insert((0, timestamp));
        h.0 += n;
        h.1 = h.1.max(timestamp);
    }

    /// The five JSON arrays [`SQLITE_UPSERTS`] take, in its order; keys whose changes cancel
    /// out (count and sum) are left out, so an array can be `[]`.
    pub(crate) fn json(&self) -> [String; 5] {
        /// `[row,...]` of the entries whose change `counts`.
        fn array<K, V>(entries: &FxHashMap<K, V>, counts: fn(&V) -> bool, row: impl Fn(&K, &V) -> String) -> String {
            let rows: Vec<String> = entries.iter().filter(|(_, v)| counts(v)).map(|(k, v)| row(k, v)).collect();
            format!("[{}]", rows.join(","))
        }
        let sum = |c: &(i64, f64)| c.0 != 0 || c.1 != 0.0;
        let count = |n: &i64| *n != 0;
        [
            array(&self.months, sum, |(y, m), c| format!("[\"{y:04}-{m:02}\",{},{}]", c.0, c.1)),
            array(&self.movie_years, sum, |(movie, year), c| format!("[{movie},{year},{},{}]", c.0, c.1)),
            array(&self.movie_ratings, count, |(movie, bits), n| format!("[{movie},{},{n}]", f64::from_bits(*bits))),
            array(&self.users, count, |user, n| format!("[{user},{n}]")),
            array(&self.hours, |_| true, |hour, (n, latest)| format!("[{hour},{n},{latest}]")),
        ]
    }
}

impl Changes {
    /// Adds the changes to PostgreSQL's summary tables, one `UNNEST` upsert per table (for a
    /// bulk load, which turns the triggers off and sums the changes in memory).
    ///
    /// # Errors
    /// A database error.
    pub(crate) async fn write_pg(&self, conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        for (upsert, json) in PG_UPSERTS.into_iter().zip(self.json()) {
            sqlx::query(upsert).bind(json).execute(&mut *conn).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_rating_counts_once_in_every_table() {
        let c = Changes::of(&[RatingRow::new(7, 1, 4.5, 964_982_703)], &Stored::new());
        assert_eq!(
            c.json(),
            ["[[\"2000-07\",1,4.5]]", "[[1,2000,1,4.5]]", "[[1,4.5,1]]", "[[7,1]]", "[[268050,1,964982703]]"]
        );
    }

    #[test]
    fn a_newer_rerating_moves_the_rating_and_an_older_one_changes_nothing() {
        let stored = Stored::from([((7, 1), (2.0, 964_982_703))]);
        // 2001-09-09: out of July 2000 and into September 2001; the user's count is unchanged.
        let c = Changes::of(&[RatingRow::new(7, 1, 5.0, 1_000_000_000)], &stored);
        let [months, years, ratings, users, hours] = c.json();
        let mut months: Vec<&str> = months.trim_matches(['[', ']']).split("],[").collect();
        months.sort_unstable();
        assert_eq!(months, ["\"2000-07\",-1,-2", "\"2001-09\",1,5"]);
        assert!(years.contains("[1,2000,-1,-2]") && years.contains("[1,2001,1,5]"), "{years}");
        assert!(ratings.contains("[1,2,-1]") && ratings.contains("[1,5,1]"), "{ratings}");
        assert_eq!(users, "[]");
        assert!(hours.contains("[268050,-1,964982703]") && hours.contains("[277777,1,1000000000]"), "{hours}");
        assert_eq!(Changes::of(&[RatingRow::new(7, 1, 5.0, 964_982_702)], &stored), Changes::default());
        // Equally new replaces (same rule as the upsert), even with the same value: no net
        // change but the hour's newest time, which is the same.
        let same = Changes::of(&[RatingRow::new(7, 1, 2.0, 964_982_703)], &stored);
        assert_eq!(same.json(), ["[]", "[]", "[]", "[]", "[[268050,0,964982703]]"]);
    }

    #[test]
    fn a_rerating_in_the_same_month_changes_only_the_sums() {
        let stored = Stored::from([((7, 1), (2.0, 964_982_703))]);
        let c = Changes::of(&[RatingRow::new(7, 1, 5.0, 964_982_800)], &stored);
        let [months, years, ratings, users, _] = c.json();
        assert_eq!((months.as_str(), years.as_str()), ("[[\"2000-07\",0,3]]", "[[1,2000,0,3]]"));
        assert!(ratings.contains("[1,2,-1]") && ratings.contains("[1,5,1]"), "{ratings}");
        assert_eq!(users, "[]");
    }

    #[test]
    fn keys_are_json_pairs() {
        assert_eq!(keys_json(&[RatingRow::new(1, 2, 3.0, 4), RatingRow::new(5, 6, 1.0, 0)]), "[[1,2],[5,6]]");
        assert_eq!(keys_json(&[]), "[]");
    }
}
