//! The importer's bulk path for ratings: [`RatingsLoader`], the fastest way each backend takes
//! millions of rows, with the same upsert semantics as [`Store::upsert_ratings`].
//!
//! - SQLite: a dedicated rusqlite connection to the same file, run on a blocking thread, steps
//!   one prepared `INSERT ... ON CONFLICT` per row (no per-statement or per-value overhead),
//!   one transaction per batch. When the table starts empty, `ratings_by_movie` is dropped and
//!   built once at the end (with SQLite's multi-threaded sorter).
//! - PostgreSQL: binary `COPY`. When the table starts empty, the whole load is one transaction
//!   that drops the primary key, the secondary index and the foreign key, copies the rows
//!   straight into `ratings` and rebuilds all three once; as long as the rows arrive strictly
//!   increasing by (user, movie), as MovieLens ships them, no key can repeat. At the first key
//!   out of order (or when the table was not empty) each batch is copied into a temporary
//!   staging table and merged with one `INSERT ... SELECT ... ON CONFLICT`.

use std::path::PathBuf;

use movielens::RatingRow;
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, PgConnection, PgPool, Postgres, SqlitePool, Transaction};

use crate::pool::Pool;
use crate::write::{PG_RATINGS_FK, RATING_CONFLICT, RATINGS_BY_MOVIE, dedup_newest};
use crate::{Store, StoreError};

/// A bulk load of ratings, for imports: [`RatingsLoader::load`] each batch, then
/// [`RatingsLoader::finish`].
///
/// Dropped without `finish`, a PostgreSQL load into an empty table rolls back whole; a SQLite
/// load keeps the batches written so far, and the next [`Store::connect`] rebuilds the index.
pub struct RatingsLoader {
    target: Target,
}

enum Target {
    Sqlite(SqliteLoad),
    Postgres(PgLoad),
}

impl Store {
    /// Starts a bulk load of ratings.
    ///
    /// # Errors
    /// A database error.
    pub async fn ratings_loader(&self) -> Result<RatingsLoader, StoreError> {
        let target = match &self.pool {
            Pool::Sqlite(pool) => Target::Sqlite(SqliteLoad::start(pool).await?),
            Pool::Postgres(pool) => Target::Postgres(PgLoad::start(pool).await?),
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
            Target::Sqlite(load) => load.finish().await,
            Target::Postgres(load) => load.finish().await,
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
}

const SQLITE_INSERT: &str = "INSERT INTO ratings (user_id, movie_id, rating, timestamp) VALUES (?1, ?2, ?3, ?4)";

impl SqliteLoad {
    async fn start(pool: &SqlitePool) -> Result<Self, StoreError> {
        let options = pool.connect_options();
        let path: PathBuf = options.get_filename().to_owned();
        let in_memory = path.to_string_lossy().starts_with("file:sqlx-in-memory-");
        let (conn, index_dropped) = tokio::task::spawn_blocking(move || open_sqlite_loader(&path, in_memory)).await??;
        Ok(Self { conn: Some(conn), index_dropped })
    }

    async fn load(&mut self, rows: Vec<RatingRow>) -> Result<(), StoreError> {
        // `None` only if an earlier batch's thread panicked, which already failed the load.
        let Some(mut conn) = self.conn.take() else { return Err(StoreError::LoaderBroken) };
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = sqlite_insert(&mut conn, &rows);
            (conn, result)
        })
        .await?;
        self.conn = Some(conn);
        Ok(result?)
    }

    async fn finish(mut self) -> Result<(), StoreError> {
        let Some(conn) = self.conn.take() else { return Ok(()) };
        let index_dropped = self.index_dropped;
        tokio::task::spawn_blocking(move || {
            if index_dropped {
                conn.execute_batch(RATINGS_BY_MOVIE)?;
            }
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

/// One transaction, one prepared statement stepped once per row.
fn sqlite_insert(conn: &mut rusqlite::Connection, rows: &[RatingRow]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare(&format!("{SQLITE_INSERT}{RATING_CONFLICT}"))?;
        for r in rows {
            insert.execute((r.user_id, r.movie_id, f64::from(r.rating), r.timestamp))?;
        }
    }
    tx.commit()
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
            return Ok(Self { conn: PgConn::PerBatch(pool.acquire().await?), direct: false, last: None });
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
        Ok(Self { conn: PgConn::Whole(tx), direct: true, last: None })
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
                tx.commit().await?;
            }
            PgConn::PerBatch(mut conn) => {
                sqlx::query(DROP_STAGE).execute(&mut *conn).await?;
            }
        }
        Ok(())
    }
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
