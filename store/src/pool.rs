//! Connecting to either backend, and the dispatch that lets one query serve both.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Database, Encode, PgPool, SqlitePool, Type};

use crate::StoreError;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A local SQLite file: the zero-setup default.
    Sqlite,
    /// A PostgreSQL server: for scale-out.
    Postgres,
}

impl Backend {
    /// "sqlite" or "postgres".
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A cloneable handle on the catalogue database (an `Arc`ed pool inside).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
}

/// Runs the same expression against whichever pool the store holds.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::pool::Pool::Sqlite($pool) => $body,
            $crate::pool::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// A bind value for SQL built at run time (optional filters).
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Real(f64),
    Text(String),
}

/// Binds `args` in order onto a query for any backend.
pub(crate) fn bind_args<'q, DB, O>(
    mut query: sqlx::query::QueryAs<'q, DB, O, <DB as Database>::Arguments>,
    args: &[Arg],
) -> sqlx::query::QueryAs<'q, DB, O, <DB as Database>::Arguments>
where
    DB: Database,
    i64: Encode<'q, DB> + Type<DB>,
    f64: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
{
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(*v),
            Arg::Real(v) => query.bind(*v),
            Arg::Text(v) => query.bind(v.clone()),
        };
    }
    query
}

impl Store {
    /// Connects to `url` and brings its schema up to date.
    ///
    /// `sqlite://path.db` (or `sqlite:path.db`) creates the file if needed and uses WAL so
    /// readers never wait for the writer; `postgres://` / `postgresql://` uses a server.
    ///
    /// # Errors
    /// An unsupported scheme, an unreachable database or a failed migration.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory")
                .pragma("mmap_size", "268435456")
                .disable_statement_logging();
            let pool = SqlitePoolOptions::new().max_connections(8).min_connections(1).connect_with(options).await?;
            sqlx::migrate!("migrations/sqlite").run(&pool).await?;
            crate::summary::sqlite_recover(&pool).await?;
            Store { pool: Pool::Sqlite(pool) }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?.disable_statement_logging();
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            sqlx::migrate!("migrations/postgres").run(&pool).await?;
            sqlx::query(crate::write::RATINGS_BY_MOVIE).execute(&pool).await?;
            sqlx::query(crate::write::PG_RATINGS_FK).execute(&pool).await?;
            Store { pool: Pool::Postgres(pool) }
        } else {
            return Err(StoreError::UnsupportedUrl(crate::DatabaseUrl::new(url).redacted()));
        };
        Ok(store)
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Checks the database answers.
    ///
    /// # Errors
    /// The database is unreachable.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Closes every connection, letting SQLite checkpoint its WAL.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await);
    }
}
