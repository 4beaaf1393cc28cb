//! CineData's relational store: the MovieLens catalogue in SQLite (default) or PostgreSQL.
//!
//! - [`Store`]: one cloneable handle over either backend; the URL scheme picks it
//!   (`sqlite://file.db` or `postgres://...`). Migrations run on connect.
//! - [`ab`]: A/B experiments (configuration, change log) and the impressions they are scored on.
//! - [`catalogue`]: the read side the data API serves (listings, details, analytics).
//! - [`charts`]: rating aggregates behind the web interface's charts.
//! - [`write`]: idempotent bulk upserts (a re-rating replaces the older one; newer timestamp wins).
//! - [`import`]: loads a MovieLens release folder, reporting bad rows and carrying on.
//! - [`load`]: the importer's bulk path for ratings (prepared statements on SQLite, binary
//!   `COPY` on PostgreSQL).
//! - [`experiments`]: experiment records of `evaluate` runs and production retrains.
//! - [`DatabaseUrl`]: a database URL that never prints its password.
//!
//! SQL text is shared between backends where it is portable (`$N` placeholders work in both);
//! the bulk write paths differ so each backend uses its fastest form.

pub mod ab;
pub mod catalogue;
pub mod charts;
pub mod error;
pub mod experiments;
pub mod import;
pub mod load;
pub mod write;

mod pool;
mod summary;
mod url;

pub use ab::Impression;
pub use catalogue::{MovieQuery, Page, RatingQuery, TagQuery};
pub use charts::{MovieYear, RatingAggregates};
pub use error::StoreError;
pub use experiments::ExperimentQuery;
pub use import::{ImportOptions, ImportReport};
pub use load::RatingsLoader;
pub use pool::{Backend, Store};
pub use url::DatabaseUrl;
