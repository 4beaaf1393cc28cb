//! The store's one error type.

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL {0:?}: use sqlite://FILE or postgres://...")]
    UnsupportedUrl(String),
    /// A query or connection failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The importer's own SQLite connection failed (see [`crate::RatingsLoader`]).
    #[error(transparent)]
    SqliteLoad(#[from] rusqlite::Error),
    /// A bulk-load worker thread panicked or was cancelled.
    #[error("bulk-load worker failed: {0}")]
    LoaderWorker(#[from] tokio::task::JoinError),
    /// A loader used after one of its batches failed.
    #[error("bulk load used after a failed batch")]
    LoaderBroken,
    /// A release file could not be opened.
    #[error(transparent)]
    Release(#[from] movielens::RowError),
}
