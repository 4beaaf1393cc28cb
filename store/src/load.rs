//! The importer's bulk path for ratings: [`RatingsLoader`], the fastest way each backend takes
//! millions of rows, with the same upsert semantics as [`Store::upsert_ratings`].
//!
//! - SQLite: a dedicated rusqlite connection to the same file, run on a blocking thread, steps
//!   one prepared `INSERT ... ON CONFLICT` per row (no per-statement or per-value overhead),
//!   one transaction per batch. When the table starts empty, `ratings_by_movie` is dropped and
//!   built once at the end (with SQLite's multi-threaded sorter), and the rating summaries
//!   (`summary`) are summed in memory while keys keep increasing and written once at the end;
//!   otherwise each batch updates them in its own transaction.
//! - PostgreSQL: binary `COPY`. When the table starts empty, the whole load is one transaction
//!   that drops the primary key, the secondary index and the foreign key, copies the rows
//!   straight into `ratings` and rebuilds all three once; as long as the rows arrive strictly
//!   increasing by (user, movie), as MovieLens ships them, no key can repeat. At the first key
//!   out of order (or when the table was not empty) each batch is copied into a temporary
//!   staging table and merged with one `INSERT ... SELECT ... ON CONFLICT`. The summaries'
//!   statement triggers are off while rows are copied straight in: their changes are summed in
//!   memory and written once (at the first merge or at the end); merges go through them.

use std::path::PathBuf;

use movielens::RatingRow;
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, PgConnection, PgPool, Postgres, SqlitePool, Transaction};

use crate::pool::Pool;
use crate::write::{PG_RATINGS_FK, RATING_CONFLICT, RATINGS_BY_MOVIE, dedup_newest};
use crate::{Store, StoreError, summary};

/// A bulk load of ratings, for imports: [`RatingsLoader::load`] each batch, then
/// [`RatingsLoader::finish`].
///
/// Dropped without `finish`, a PostgreSQL load into an empty table rolls back whole; a SQLite
/// load keeps the batches written so far, and the next [`Store::connect`] rebuilds the index.
pub struct RatingsLoader {
    target: Target,
}

enum Target {
    /// Boxed, both: they hold the summaries' changes.
    Sqlite(Box<SqliteLoad>),
    Postgres(Box<PgLoad>),
}

impl Store {
    /// Starts a bulk load of ratings.
    ///
    /// # Errors
    /// A database error.
    pub async fn ratings_loader(&self) -> Result<RatingsLoader, StoreError> {
        let target = match &self.pool {
            Pool::Sqlite(pool) => Target::Sqlite(Box::new(SqliteLoad::start(pool).await?)),
            Pool::Postgres(pool) => Target::Postgres(Box::new(PgLoad::start(pool).await?)),
        };
        Ok(RatingsLoader { target })
    }
}

impl RatingsLoader {
    /// Writes one batch (same semantics as [`Store::upsert_ratings`]). Returns the number of
    /// distinct (user, movie) rows in the batch.
    ///
    /// # Errors
    /// A database error; nothing of the batch is written then.
    pub async fn load(&mut self, rows: &[RatingRow]) -> Result<u64, StoreError> {
        let rows = dedup_newest(rows, |r| (r.user_id, r.movie_id), |r| r.timestamp);
        let written = rows.len() as u64;
        if rows.is_empty() {
            return Ok(0);
        }
        match &mut self.target {
            Target::Sqlite(load) => load.load(rows).await?,
            Target::Postgres(load) => load.load(&rows).await?,
        }
        Ok(written)
    }

    /// Rebuilds what the load dropped (indexes, constraints) and commits.
    ///
    /// # Errors
    /// A database error.
    pub async fn finish(self) -> Result<(), StoreError> {
        match self.target {
            Target::Sqlite(load) => (*load).finish().await,
            Target::Postgres(load) => (*load).finish().await,
        }
    }
}

/// The loader's own connection to the SQLite file. It is never handed back to the sqlx pool,
/// so its bulk settings (no foreign-key checks, no fsync, big cache) die with it.
struct SqliteLoad {
    /// `None` only while a batch runs on the blocking thread.
    conn: Option<rusqlite::Connection>,
    /// The table was empty, so `ratings_by_movie` was dropped and `finish` builds it.
    index_dropped: bool,
    /// The summaries' changes held back while the table started empty and every key so far
    /// was greater than the last (so nothing stored can be replaced); `None` once a key came
    /// out of order and the held changes were written.
    held: Option<(summary::Changes, Option<(i64, i64)>)>,
}

const SQLITE_INSERT: &str = "INSERT INTO ratings (user_id, movie_id, rating, timestamp) VALUES (?1, ?2, ?3, ?4)";

impl SqliteLoad {
    async fn start(pool: &SqlitePool) -> Result<Self, StoreError> {
        let options = pool.connect_options();
        let path: PathBuf = options.get_filename().to_owned();
        let in_memory = path.to_string_lossy().starts_with("file:sqlx-in-memory-");
        let (conn, index_dropped) = tokio::task::spawn_blocking(move || open_sqlite_loader(&path, in_memory)).await??;
        let held = index_dropped.then(|| (summary::Changes::default(), None));
        Ok(Self { conn: Some(conn), index_dropped, held })
    }

    async fn load(&mut self, rows: Vec<RatingRow>) -> Result<(), StoreError> {
        // `None` only if an earlier batch's thread panicked, which already failed the load.
        let Some(mut conn) = self.conn.take() else { return Err(StoreError::LoaderBroken) };
        // Rows come sorted by key: while each batch starts after the last one ended, none can
        // replace a stored rating, and the summaries' changes are summed here instead.
        let mut held = self.held.take();
        let in_order = held.as_ref().is_some_and(|(_, last)| rows.first().map(|r| (r.user_id, r.movie_id)) > *last);
        let (conn, held, result) = tokio::task::spawn_blocking(move || {
            let result = if in_order {
                let result = sqlite_insert(&mut conn, &rows, None);
                if result.is_ok() {
                    let (changes, last) = held.as_mut().expect("held while in order");
                    changes.record(&rows, &summary::Stored::new());
                    *last = rows.last().map(|r| (r.user_id, r.movie_id));
                }
                result
            } else {
                // Written with this batch; if it fails, the load is cut short and the next
                // connect rebuilds the summaries (the index is still missing).
                sqlite_insert(&mut conn, &rows, Some(held.take().map(|(changes, _)| changes)))
            };
            (conn, held, result)
        })
        .await?;
        self.conn = Some(conn);
        self.held = held;
        Ok(result?)
    }

    async fn finish(mut self) -> Result<(), StoreError> {
        let Some(mut conn) = self.conn.take() else { return Ok(()) };
        let index_dropped = self.index_dropped;
        let held = self.held.take();
        tokio::task::spawn_blocking(move || {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if let Some((changes, _)) = held {
                write_held(&tx, &changes)?;
            }
            if index_dropped {
                tx.execute_batch(RATINGS_BY_MOVIE)?;
            }
            tx.commit()?;
            conn.close().map_err(|(_, e)| e)
        })
        .await??;
        Ok(())
    }
}

/// Opens the loader connection with bulk settings; drops `ratings_by_movie` if the table is
/// empty. Returns the connection and whether it dropped the index.
fn open_sqlite_loader(path: &std::path::Path, in_memory: bool) -> rusqlite::Result<(rusqlite::Connection, bool)> {
    use rusqlite::OpenFlags;
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if in_memory {
        // sqlx names its shared in-memory databases `file:sqlx-in-memory-N`; open the same one.
        flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
    }
    let conn = rusqlite::Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // No per-row foreign-key checks (the importer has already checked every movie id), no fsync
    // (a crash mid-import loses only the import, which is re-runnable), a page cache big enough
    // for the B-trees' working set, sorts in memory and on two threads (the index build).
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -1048576; \
         PRAGMA temp_store = MEMORY; PRAGMA threads = 2;",
    )?;
    let empty: bool = conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM ratings)", [], |row| row.get(0))?;
    if empty {
        conn.execute_batch("DROP INDEX IF EXISTS ratings_by_movie")?;
    }
    Ok((conn, empty))
}

/// One transaction, one prepared statement stepped once per row. `summaries`: `None` while
/// the caller sums the changes itself; else the batch's changes (with any handed in, which
/// come from earlier batches) are written in the same transaction.
fn sqlite_insert(
    conn: &mut rusqlite::Connection,
    rows: &[RatingRow],
    summaries: Option<Option<summary::Changes>>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut changes = None;
    if let Some(earlier) = summaries {
        let mut stored = summary::Stored::new();
        let mut read = tx.prepare(summary::SQLITE_STORED)?;
        let mut found = read.query([summary::keys_json(rows)])?;
        while let Some(row) = found.next()? {
            stored.insert((row.get(0)?, row.get(1)?), (row.get(2)?, row.get(3)?));
        }
        changes = Some((earlier, summary::Changes::of(rows, &stored)));
    }
    {
        let mut insert = tx.prepare(&format!("{SQLITE_INSERT}{RATING_CONFLICT}"))?;
        for r in rows {
            insert.execute((r.user_id, r.movie_id, f64::from(r.rating), r.timestamp))?;
        }
    }
    if let Some((earlier, batch)) = changes {
        if let Some(earlier) = earlier {
            write_held(&tx, &earlier)?;
        }
        write_changes(&tx, &batch)?;
    }
    tx.commit()
}

/// Adds `changes` to the summary tables.
fn write_changes(tx: &rusqlite::Transaction<'_>, changes: &summary::Changes) -> rusqlite::Result<()> {
    for (upsert, json) in summary::SQLITE_UPSERTS.into_iter().zip(changes.json()) {
        tx.execute(upsert, [json])?;
    }
    Ok(())
}

/// Writes the changes a load into an empty table held back, unless a connect found the load's
/// index missing meanwhile and recomputed the summaries (`summary::sqlite_recover`): then
/// they hold only the rows written before that, so recompute them again, now with every row.
fn write_held(tx: &rusqlite::Transaction<'_>, held: &summary::Changes) -> rusqlite::Result<()> {
    let recovered: bool = tx.query_row(summary::SQLITE_HAS_INDEX, [], |row| row.get(0))?;
    if recovered { tx.execute_batch(summary::SQLITE_REBUILD) } else { write_changes(tx, held) }
}

/// Where PostgreSQL batches go.
enum PgConn {
    /// The table was empty: one transaction for the whole load, committed by `finish`.
    Whole(Transaction<'static, Postgres>),
    /// The table had rows: one transaction per batch.
    PerBatch(PoolConnection<Postgres>),
}

struct PgLoad {
    conn: PgConn,
    /// Rows are being copied straight into `ratings` (primary key dropped), which stays right
    /// only while every key is greater than the last one written.
    direct: bool,
    last: Option<(i64, i64)>,
    /// The summaries' changes of the rows copied straight in, while the summary triggers are
    /// off (a load into an empty table); written when the load merges its first batch or ends.
    held: Option<summary::Changes>,
}

impl PgLoad {
    async fn start(pool: &PgPool) -> Result<Self, StoreError> {
        let mut tx = pool.begin().await?;
        // Held to the end if the table is empty: no other writer can slip rows in while the
        // primary key is gone, and readers wait for the finished table instead of seeing a
        // half-built one.
        sqlx::query("LOCK TABLE ratings IN ACCESS EXCLUSIVE MODE").execute(&mut *tx).await?;
        let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM ratings)").fetch_one(&mut *tx).await?;
        if !empty {
            tx.rollback().await?;
            return Ok(Self { conn: PgConn::PerBatch(pool.acquire().await?), direct: false, last: None, held: None });
        }
        for sql in [
            // For the index builds in `finish`.
            "SET LOCAL maintenance_work_mem = '1GB'",
            // A no-op on an empty table, but it lets `COPY ... FREEZE` write the rows frozen.
            "TRUNCATE ratings",
            // Maintaining a B-tree and checking a foreign key row by row costs more than
            // building them once at the end.
            "ALTER TABLE ratings DROP CONSTRAINT IF EXISTS ratings_pkey, \
             DROP CONSTRAINT IF EXISTS ratings_movie_id_fkey",
            "DROP INDEX IF EXISTS ratings_by_movie",
        ] {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        // The rows copied straight in are counted here and their sums written once.
        for trigger in summary::PG_TRIGGERS {
            sqlx::query(sqlx::AssertSqlSafe(format!("ALTER TABLE ratings DISABLE TRIGGER {trigger}")))
                .execute(&mut *tx)
                .await?;
        }
        Ok(Self { conn: PgConn::Whole(tx), direct: true, last: None, held: Some(summary::Changes::default()) })
    }

    /// `rows` are deduplicated and sorted by key.
    async fn load(&mut self, rows: &[RatingRow]) -> Result<(), StoreError> {
        let data = copy_binary(rows);
        match &mut self.conn {
            PgConn::Whole(tx) => {
                let first = rows.first().map(|r| (r.user_id, r.movie_id));
                if self.direct && first <= self.last {
                    // A key out of order could repeat one already written: restore the primary
                    // key (the rows so far are strictly increasing, so unique) and merge from now on.
                    sqlx::query(PG_RATINGS_PK).execute(&mut **tx).await?;
                    self.direct = false;
                    // Merges may replace stored ratings: the triggers count them from now on.
                    if let Some(held) = self.held.take() {
                        pg_write_held(tx, &held).await?;
                    }
                }
                if self.direct {
                    let mut copy = tx
                        .copy_in_raw(
                            "COPY ratings (user_id, movie_id, rating, timestamp) FROM STDIN (FORMAT binary, FREEZE)",
                        )
                        .await?;
                    copy.send(data).await?;
                    copy.finish().await?;
                    self.last = rows.last().map(|r| (r.user_id, r.movie_id));
                    if let Some(held) = &mut self.held {
                        held.record(rows, &summary::Stored::new());
                    }
                } else {
                    pg_merge(tx, data).await?;
                }
            }
            PgConn::PerBatch(conn) => {
                let mut tx = conn.begin().await?;
                pg_merge(&mut tx, data).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    async fn finish(self) -> Result<(), StoreError> {
        match self.conn {
            PgConn::Whole(mut tx) => {
                if self.direct {
                    sqlx::query(PG_RATINGS_PK).execute(&mut *tx).await?;
                }
                sqlx::query(RATINGS_BY_MOVIE).execute(&mut *tx).await?;
                sqlx::query(PG_RATINGS_FK).execute(&mut *tx).await?;
                sqlx::query(DROP_STAGE).execute(&mut *tx).await?;
                if let Some(held) = &self.held {
                    pg_write_held(&mut tx, held).await?;
                }
                tx.commit().await?;
            }
            PgConn::PerBatch(mut conn) => {
                sqlx::query(DROP_STAGE).execute(&mut *conn).await?;
            }
        }
        Ok(())
    }
}

/// Writes the changes held while the summary triggers were off, and turns them back on.
async fn pg_write_held(conn: &mut PgConnection, held: &summary::Changes) -> Result<(), sqlx::Error> {
    held.write_pg(conn).await?;
    for trigger in summary::PG_TRIGGERS {
        sqlx::query(sqlx::AssertSqlSafe(format!("ALTER TABLE ratings ENABLE TRIGGER {trigger}")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

const PG_RATINGS_PK: &str = "ALTER TABLE ratings ADD CONSTRAINT ratings_pkey PRIMARY KEY (user_id, movie_id)";
const DROP_STAGE: &str = "DROP TABLE IF EXISTS pg_temp.ratings_stage";

/// Copies one batch (binary `COPY` data) into a session-private staging table and merges it
/// into `ratings` with the usual upsert.
async fn pg_merge(conn: &mut PgConnection, data: Vec<u8>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS ratings_stage (user_id BIGINT NOT NULL, movie_id BIGINT NOT NULL, \
         rating DOUBLE PRECISION NOT NULL, timestamp BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let mut copy = conn.copy_in_raw("COPY pg_temp.ratings_stage FROM STDIN (FORMAT binary)").await?;
    copy.send(data).await?;
    copy.finish().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ratings (user_id, movie_id, rating, timestamp) \
         SELECT user_id, movie_id, rating, timestamp FROM pg_temp.ratings_stage{RATING_CONFLICT}"
    )))
    .execute(&mut *conn)
    .await?;
    sqlx::query("TRUNCATE pg_temp.ratings_stage").execute(&mut *conn).await?;
    Ok(())
}

/// Encodes ratings in PostgreSQL's binary `COPY` format
/// (<https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4>): a fixed header,
/// then per row the field count and each field as a length and its big-endian bytes
/// (`BIGINT`, `BIGINT`, `DOUBLE PRECISION`, `BIGINT`), then a `-1` trailer.
fn copy_binary(rows: &[RatingRow]) -> Vec<u8> {
    const FIELDS: i16 = 4;
    let mut buf = Vec::with_capacity(19 + rows.len() * (2 + 4 * 12) + 2);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
    buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for r in rows {
        buf.extend_from_slice(&FIELDS.to_be_bytes());
        for field in [
            r.user_id.to_be_bytes(),
            r.movie_id.to_be_bytes(),
            f64::from(r.rating).to_be_bytes(),
            r.timestamp.to_be_bytes(),
        ] {
            buf.extend_from_slice(&8i32.to_be_bytes());
            buf.extend_from_slice(&field);
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_binary_frames_each_row_as_four_eight_byte_fields() {
        let data = copy_binary(&[RatingRow { user_id: 1, movie_id: 2, rating: 3.5, timestamp: 4 }]);
        assert_eq!(&data[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(data.len(), 19 + 2 + 4 * 12 + 2);
        assert_eq!(&data[19..21], &4i16.to_be_bytes());
        assert_eq!(&data[21..25], &8i32.to_be_bytes());
        assert_eq!(&data[25..33], &1i64.to_be_bytes());
        assert_eq!(&data[45..49], &8i32.to_be_bytes());
        assert_eq!(&data[49..57], &3.5f64.to_be_bytes());
        assert_eq!(&data[data.len() - 2..], &(-1i16).to_be_bytes());
    }
}
