//! The MovieLens release format, shared by the importer, the producer and the evaluator.
//!
//! - [`release`]: streaming readers for a release folder (`movies.csv`, `ratings.csv`,
//!   `tags.csv`, `links.csv`; CRLF or LF; quoted fields). A row that breaks the schema is
//!   returned as a [`RowError`] naming file and line, so callers can report it and go on.
//! - [`synthetic`]: a seeded generator of MovieLens-shaped releases at any scale.
//! - [`download`]: the GroupLens releases we know, with their checksums; `verify` checks an
//!   unpacked copy, `fetch` downloads, checks and unpacks one.

pub mod download;
pub mod release;
pub mod synthetic;

pub use release::{LinkRow, MovieRow, NO_GENRES, RatingRow, Release, RowError, TagRow, valid_rating};
