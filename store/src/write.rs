//! Idempotent bulk upserts: replaying the same rows any number of times leaves the same table.
//!
//! A rating is keyed by (user, movie); a re-rating replaces the stored one only if it is at
//! least as new, so an old event redelivered after a newer one changes nothing. SQLite takes
//! multi-row `VALUES` statements inside one transaction; PostgreSQL takes `UNNEST` arrays.

use std::collections::HashSet;

use movielens::{LinkRow, MovieRow, NO_GENRES, RatingRow, TagRow};
use sqlx::{Acquire, AssertSqlSafe, PgPool, SqliteConnection, SqlitePool};

use crate::pool::Pool;
use crate::{Store, StoreError, summary};

/// SQLite allows 32,766 bound parameters per statement; stay under it.
const SQLITE_MAX_PARAMS: usize = 32_000;
/// Rows per PostgreSQL `UNNEST` statement.
const PG_CHUNK: usize = 50_000;

pub(crate) const RATING_CONFLICT: &str = " ON CONFLICT (user_id, movie_id) DO UPDATE SET rating = excluded.rating, \
     timestamp = excluded.timestamp WHERE excluded.timestamp >= ratings.timestamp";
const TAG_CONFLICT: &str = " ON CONFLICT (user_id, movie_id, tag) DO UPDATE SET timestamp = excluded.timestamp";
const MOVIE_CONFLICT: &str = " ON CONFLICT (movie_id) DO UPDATE SET title = excluded.title, title_key = excluded.title_key, genres = excluded.genres";
const LINK_CONFLICT: &str =
    " ON CONFLICT (movie_id) DO UPDATE SET imdb_id = excluded.imdb_id, tmdb_id = excluded.tmdb_id";

/// `INSERT ... VALUES (?,?),(?,?)...` for `rows` rows of `cols` columns (SQLite only).
///
/// Anonymous `?` on purpose: SQLite resolves each named or numbered parameter (`$7`) by a
/// linear scan of the statement's parameter names, which makes a 32k-parameter statement
/// quadratic to prepare and bind.
fn values_sql(head: &str, cols: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * cols * 8);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push(',');
            }
            sql.push('?');
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

/// Keeps one row per key: the newest by timestamp, the later one on ties.
/// The result is sorted by key.
pub(crate) fn dedup_newest<T: Copy, K: Ord>(rows: &[T], key: impl Fn(&T) -> K, ts: impl Fn(&T) -> i64) -> Vec<T> {
    // MovieLens files come sorted by key: then there is nothing to sort or drop.
    if rows.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
        return rows.to_vec();
    }
    let mut sorted: Vec<(usize, T)> = rows.iter().copied().enumerate().collect();
    sorted.sort_by(|a, b| key(&a.1).cmp(&key(&b.1)).then(ts(&a.1).cmp(&ts(&b.1))).then(a.0.cmp(&b.0)));
    let mut out: Vec<T> = Vec::with_capacity(sorted.len());
    for (_, row) in sorted {
        match out.last_mut() {
            Some(last) if key(last) == key(&row) => *last = row,
            _ => out.push(row),
        }
    }
    out
}

fn genre_string(genres: &[String]) -> String {
    if genres.is_empty() { NO_GENRES.to_owned() } else { genres.join("|") }
}

impl Store {
    /// Inserts or replaces movies and their genre rows.
    ///
    /// # Errors
    /// A database error; nothing of the batch is written then.
    pub async fn upsert_movies(&self, rows: &[MovieRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = rows.iter().map(|m| m.movie_id).collect();
        let titles: Vec<String> = rows.iter().map(|m| m.title.clone()).collect();
        let keys: Vec<String> = rows.iter().map(|m| m.title.to_lowercase()).collect();
        let genres: Vec<String> = rows.iter().map(|m| genre_string(&m.genres)).collect();
        let mut pairs: Vec<(i64, String)> = Vec::new();
        let mut seen = HashSet::new();
        for m in rows {
            for g in &m.genres {
                if seen.insert((m.movie_id, g.as_str())) {
                    pairs.push((m.movie_id, g.clone()));
                }
            }
        }
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                for chunk in (0..rows.len()).collect::<Vec<_>>().chunks(SQLITE_MAX_PARAMS / 4) {
                    let sql = values_sql(
                        "INSERT INTO movies (movie_id, title, title_key, genres)",
                        4,
                        chunk.len(),
                        MOVIE_CONFLICT,
                    );
                    let mut q = sqlx::query(AssertSqlSafe(sql));
                    for &i in chunk {
                        q = q.bind(ids[i]).bind(titles[i].clone()).bind(keys[i].clone()).bind(genres[i].clone());
                    }
                    q.execute(&mut *tx).await?;
                }
                for chunk in ids.chunks(SQLITE_MAX_PARAMS) {
                    let sql =
                        format!("DELETE FROM movie_genres WHERE movie_id IN ({})", vec!["?"; chunk.len()].join(","));
                    let mut q = sqlx::query(AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    q.execute(&mut *tx).await?;
                }
                for chunk in pairs.chunks(SQLITE_MAX_PARAMS / 2) {
                    let sql = values_sql("INSERT INTO movie_genres (movie_id, genre)", 2, chunk.len(), "");
                    let mut q = sqlx::query(AssertSqlSafe(sql));
                    for (id, g) in chunk {
                        q = q.bind(*id).bind(g.clone());
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO movies (movie_id, title, title_key, genres) \
                     SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[]){MOVIE_CONFLICT}"
                )))
                .bind(&ids)
                .bind(&titles)
                .bind(&keys)
                .bind(&genres)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM movie_genres WHERE movie_id = ANY($1)").bind(&ids).execute(&mut *tx).await?;
                let (gid, gname): (Vec<i64>, Vec<String>) = pairs.into_iter().unzip();
                sqlx::query(
                    "INSERT INTO movie_genres (movie_id, genre) SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[])",
                )
                .bind(&gid)
                .bind(&gname)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
        }
        Ok(rows.len() as u64)
    }

    /// Inserts ratings; an existing (user, movie) rating is replaced only by a newer or
    /// equally new one. Returns the number of distinct (user, movie) rows written.
    ///
    /// # Errors
    /// A database error (including a rating for a movie not in the catalogue); nothing of the
    /// batch is written then.
    pub async fn upsert_ratings(&self, rows: &[RatingRow]) -> Result<u64, StoreError> {
        let rows = dedup_newest(rows, |r| (r.user_id, r.movie_id), |r| r.timestamp);
        if rows.is_empty() {
            return Ok(0);
        }
        match &self.pool {
            Pool::Sqlite(pool) => {
                on_own_connection(pool, async |conn| sqlite_insert_ratings(conn, &rows).await).await?
            }
            Pool::Postgres(pool) => pg_insert_ratings(pool, &rows).await?,
        }
        Ok(rows.len() as u64)
    }

    /// Inserts tags; an existing (user, movie, tag) keeps one row with the latest timestamp.
    ///
    /// # Errors
    /// A database error; nothing of the batch is written then.
    pub async fn upsert_tags(&self, rows: &[TagRow]) -> Result<u64, StoreError> {
        let mut seen = HashSet::new();
        let rows: Vec<&TagRow> =
            rows.iter().rev().filter(|t| seen.insert((t.user_id, t.movie_id, t.tag.as_str()))).collect();
        if rows.is_empty() {
            return Ok(0);
        }
        match &self.pool {
            Pool::Sqlite(pool) => on_own_connection(pool, async |conn| sqlite_insert_tags(conn, &rows).await).await?,
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                for chunk in rows.chunks(PG_CHUNK) {
                    let users: Vec<i64> = chunk.iter().map(|t| t.user_id).collect();
                    let movies: Vec<i64> = chunk.iter().map(|t| t.movie_id).collect();
                    let tags: Vec<String> = chunk.iter().map(|t| t.tag.clone()).collect();
                    let stamps: Vec<i64> = chunk.iter().map(|t| t.timestamp).collect();
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO tags (user_id, movie_id, tag, timestamp) \
                         SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[]){TAG_CONFLICT}"
                    )))
                    .bind(&users)
                    .bind(&movies)
                    .bind(&tags)
                    .bind(&stamps)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(rows.len() as u64)
    }

    /// Inserts or replaces links.
    ///
    /// # Errors
    /// A database error; nothing of the batch is written then.
    pub async fn upsert_links(&self, rows: &[LinkRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                for chunk in rows.chunks(SQLITE_MAX_PARAMS / 3) {
                    let sql =
                        values_sql("INSERT INTO links (movie_id, imdb_id, tmdb_id)", 3, chunk.len(), LINK_CONFLICT);
                    let mut q = sqlx::query(AssertSqlSafe(sql));
                    for l in chunk {
                        q = q.bind(l.movie_id).bind(l.imdb_id.clone()).bind(l.tmdb_id);
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Pool::Postgres(pool) => {
                let ids: Vec<i64> = rows.iter().map(|l| l.movie_id).collect();
                let imdb: Vec<String> = rows.iter().map(|l| l.imdb_id.clone()).collect();
                let tmdb: Vec<Option<i64>> = rows.iter().map(|l| l.tmdb_id).collect();
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO links (movie_id, imdb_id, tmdb_id) \
                     SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[]){LINK_CONFLICT}"
                )))
                .bind(&ids)
                .bind(&imdb)
                .bind(&tmdb)
                .execute(pool)
                .await?;
            }
        }
        Ok(rows.len() as u64)
    }

    /// Every movie id in the catalogue, so writers can reject ratings for unknown movies
    /// before they hit the foreign key.
    ///
    /// # Errors
    /// A database error.
    pub async fn movie_ids(&self) -> Result<HashSet<i64>, StoreError> {
        let ids: Vec<(i64,)> =
            crate::pool::with_pool!(self, |pool| sqlx::query_as("SELECT movie_id FROM movies").fetch_all(pool).await)?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }
}

/// Rows per SQLite ratings statement: the rows travel as one JSON text parameter.
const SQLITE_JSON_CHUNK: usize = 50_000;

/// Inserts ratings into SQLite by binding one JSON array of `[user, movie, rating, timestamp]`
/// rows and expanding it with `json_each` inside SQLite. One bound text beats tens of thousands
/// of bound values: sqlx boxes each value and crosses to its worker thread with all of them.
async fn sqlite_insert_ratings(conn: &mut SqliteConnection, rows: &[RatingRow]) -> Result<(), sqlx::Error> {
    use std::fmt::Write;
    let sql = format!(
        "INSERT INTO ratings (user_id, movie_id, rating, timestamp) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each($1) WHERE true{RATING_CONFLICT}"
    );
    let mut json = String::new();
    // IMMEDIATE: the write lock before the summaries' read of the stored ratings (`summary`).
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
    for chunk in rows.chunks(SQLITE_JSON_CHUNK) {
        let stored: Vec<(i64, i64, f64, i64)> =
            sqlx::query_as(summary::SQLITE_STORED).bind(summary::keys_json(chunk)).fetch_all(&mut *tx).await?;
        let stored: summary::Stored = stored.into_iter().map(|(u, m, r, t)| ((u, m), (r, t))).collect();
        json.clear();
        json.push('[');
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            let _ = write!(json, "[{},{},{},{}]", r.user_id, r.movie_id, r.rating, r.timestamp);
        }
        json.push(']');
        sqlx::query(AssertSqlSafe(sql.clone())).bind(json.clone()).execute(&mut *tx).await?;
        for (upsert, changes) in summary::SQLITE_UPSERTS.into_iter().zip(summary::Changes::of(chunk, &stored).json()) {
            sqlx::query(upsert).bind(changes).execute(&mut *tx).await?;
        }
    }
    tx.commit().await
}

async fn sqlite_insert_tags(conn: &mut SqliteConnection, rows: &[&TagRow]) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    for chunk in rows.chunks(SQLITE_MAX_PARAMS / 4) {
        let sql = values_sql("INSERT INTO tags (user_id, movie_id, tag, timestamp)", 4, chunk.len(), TAG_CONFLICT);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for t in chunk {
            q = q.bind(t.user_id).bind(t.movie_id).bind(t.tag.clone()).bind(t.timestamp);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Runs `write` on a pooled SQLite connection and, if it fails, closes that connection instead
/// of returning it to the pool. After a full disk or an I/O error its rollback can fail too,
/// leaving the transaction open and the database's write lock held: back in the pool it would
/// make every later write fail with "database is locked", even once space is freed. Closing it
/// rolls back and releases the lock; the pool opens a fresh connection when one is next needed.
async fn on_own_connection(
    pool: &SqlitePool,
    write: impl AsyncFnOnce(&mut SqliteConnection) -> Result<(), sqlx::Error>,
) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    if let Err(error) = write(&mut conn).await {
        if let Err(error) = sqlx::Connection::close(conn.detach()).await {
            tracing::warn!(%error, "closing a SQLite connection after a failed write");
        }
        return Err(error.into());
    }
    Ok(())
}

async fn pg_insert_ratings(pool: &PgPool, rows: &[RatingRow]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for chunk in rows.chunks(PG_CHUNK) {
        let users: Vec<i64> = chunk.iter().map(|r| r.user_id).collect();
        let movies: Vec<i64> = chunk.iter().map(|r| r.movie_id).collect();
        let values: Vec<f64> = chunk.iter().map(|r| f64::from(r.rating)).collect();
        let stamps: Vec<i64> = chunk.iter().map(|r| r.timestamp).collect();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO ratings (user_id, movie_id, rating, timestamp) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::DOUBLE PRECISION[], $4::BIGINT[])\
             {RATING_CONFLICT}"
        )))
        .bind(&users)
        .bind(&movies)
        .bind(&values)
        .bind(&stamps)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// The secondary index on ratings, dropped during a bulk load into an empty table and built
/// once at the end ([`crate::RatingsLoader`]): sorting once is about twice as fast as updating
/// it row by row.
pub(crate) const RATINGS_BY_MOVIE: &str = "CREATE INDEX IF NOT EXISTS ratings_by_movie ON ratings (movie_id)";

/// Re-adds the ratings → movies foreign key if a bulk load dropped it (PostgreSQL).
pub(crate) const PG_RATINGS_FK: &str = "DO $$ BEGIN \
     IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'ratings_movie_id_fkey') THEN \
     ALTER TABLE ratings ADD CONSTRAINT ratings_movie_id_fkey FOREIGN KEY (movie_id) REFERENCES movies (movie_id); \
     END IF; END $$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_sql_numbers_every_placeholder() {
        assert_eq!(values_sql("INSERT INTO t (a, b)", 2, 2, " X"), "INSERT INTO t (a, b) VALUES (?,?),(?,?) X");
    }

    #[test]
    fn dedup_keeps_the_newest_rating_per_user_and_movie() {
        let rows = [
            RatingRow::new(1, 1, 2.0, 10),
            RatingRow::new(1, 1, 4.0, 20),
            RatingRow::new(1, 1, 3.0, 15),
            RatingRow::new(2, 1, 1.0, 5),
        ];
        let out = dedup_newest(&rows, |r| (r.user_id, r.movie_id), |r| r.timestamp);
        assert_eq!(out, vec![RatingRow::new(1, 1, 4.0, 20), RatingRow::new(2, 1, 1.0, 5)]);
    }

    #[test]
    fn dedup_prefers_the_later_row_on_equal_timestamps() {
        let rows = [RatingRow::new(1, 1, 2.0, 10), RatingRow::new(1, 1, 4.5, 10)];
        assert_eq!(
            dedup_newest(&rows, |r| (r.user_id, r.movie_id), |r| r.timestamp),
            vec![RatingRow::new(1, 1, 4.5, 10)]
        );
    }
}
