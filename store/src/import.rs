//! Loading a MovieLens release folder into the store.
//!
//! Re-runnable: every write is an upsert, so importing twice leaves the same tables. A row
//! that breaks the schema (bad number, rating off the scale, a movie not in movies.csv) is
//! reported with its file and line and skipped; the rest of the release still loads.
//! Parsing runs on a blocking thread and hands batches to the writer over a channel, so
//! CSV decoding and database writes overlap.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use movielens::release::{LinkRow, MovieRow, RatingRow, Rows, TagRow};
use movielens::{Release, RowError};
use tokio::sync::mpsc;

use crate::{Store, StoreError};

/// How to run an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Rows per write transaction.
    pub batch_size: usize,
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// Rejected rows kept verbatim in the report (all are counted).
    pub max_reported: usize,
    /// Load only movies and links, leaving ratings and tags to arrive as events (the demo).
    pub catalogue_only: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self { batch_size: 100_000, progress: false, max_reported: 100, catalogue_only: false }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Movies written.
    pub movies: u64,
    /// Ratings written (distinct user/movie pairs per batch).
    pub ratings: u64,
    /// Tags written.
    pub tags: u64,
    /// Links written.
    pub links: u64,
    /// Rows skipped because they break the schema.
    pub rejected: u64,
    /// The first rejected rows, as `file:line: reason`.
    pub errors: Vec<String>,
    /// Wall-clock time of the whole import.
    pub elapsed: Duration,
}

impl ImportReport {
    fn reject(&mut self, error: &RowError, max: usize) {
        self.rejected += 1;
        if self.errors.len() < max {
            self.errors.push(error.to_string());
        }
        tracing::warn!(%error, "row rejected");
    }
}

enum Batch<T> {
    Rows(Vec<T>),
    Rejected(RowError),
}

/// Parses `rows` on a blocking thread, keeping rows that pass `keep` (else rejecting them with
/// the reason it gives), and sends them in batches.
fn parse_in_background<T: Send + 'static>(
    rows: Rows<T>,
    batch_size: usize,
    keep: impl Fn(&T) -> Result<(), String> + Send + 'static,
) -> mpsc::Receiver<Batch<T>> {
    let (tx, rx) = mpsc::channel(4);
    let file = rows.file().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(batch_size);
        for row in rows.numbered() {
            let item = match row {
                Ok((line, row)) => match keep(&row) {
                    Ok(()) => {
                        batch.push(row);
                        if batch.len() == batch_size {
                            let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                            if tx.blocking_send(Batch::Rows(full)).is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                    Err(reason) => RowError::Invalid { file: file.clone(), line, reason },
                },
                Err(e) => e,
            };
            if tx.blocking_send(Batch::Rejected(item)).is_err() {
                return;
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Batch::Rows(batch));
        }
    });
    rx
}

fn bar(show: bool, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix:>8} {human_pos:>12} rows  {per_sec:>14}  {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A release row that names a movie.
trait OfMovie {
    fn movie_id(&self) -> i64;
}

macro_rules! of_movie {
    ($($row:ty),*) => {
        $(impl OfMovie for $row {
            fn movie_id(&self) -> i64 {
                self.movie_id
            }
        })*
    };
}
of_movie!(MovieRow, LinkRow, RatingRow, TagRow);

impl ImportReport {
    /// Parses one file in the background (rejecting rows whose movie is not in `known`, when
    /// given) and hands its batches to `write`, with a progress bar; returns the rows stored.
    async fn load<T: OfMovie + Send + 'static>(
        &mut self,
        what: &str,
        rows: Rows<T>,
        options: &ImportOptions,
        known: Option<&Arc<HashSet<i64>>>,
        mut write: impl AsyncFnMut(&[T]) -> Result<u64, StoreError>,
    ) -> Result<u64, StoreError> {
        let progress = bar(options.progress, what);
        let known = known.cloned();
        let keep = move |row: &T| match &known {
            Some(known) if !known.contains(&row.movie_id()) => {
                Err(format!("movieId {} is not in movies.csv", row.movie_id()))
            }
            _ => Ok(()),
        };
        let mut rx = parse_in_background(rows, options.batch_size, keep);
        let mut written = 0;
        while let Some(batch) = rx.recv().await {
            match batch {
                Batch::Rows(rows) => {
                    written += write(&rows).await?;
                    progress.inc(rows.len() as u64);
                }
                Batch::Rejected(e) => self.reject(&e, options.max_reported),
            }
        }
        progress.finish();
        Ok(written)
    }
}

impl Store {
    /// Imports a release folder: movies first, then links, ratings and tags (which must name a
    /// known movie).
    ///
    /// # Errors
    /// A missing `movies.csv`/`ratings.csv` or a database error. Bad rows are not errors:
    /// they are counted in the report.
    pub async fn import(&self, release: &Release, options: &ImportOptions) -> Result<ImportReport, StoreError> {
        let started = Instant::now();
        let mut report = ImportReport::default();
        let movies = release.movies()?;
        report.movies = report.load("movies", movies, options, None, async |r| self.upsert_movies(r).await).await?;

        let known = Some(Arc::new(self.movie_ids().await?));
        let links = release.links()?;
        report.links =
            report.load("links", links, options, known.as_ref(), async |r| self.upsert_links(r).await).await?;
        if options.catalogue_only {
            report.elapsed = started.elapsed();
            return Ok(report);
        }

        tracing::debug!(elapsed = ?started.elapsed(), "catalogue imported");
        let mut loader = self.ratings_loader().await?;
        let ratings = release.ratings()?;
        report.ratings =
            report.load("ratings", ratings, options, known.as_ref(), async |r| loader.load(r).await).await?;
        tracing::debug!(elapsed = ?started.elapsed(), "ratings written");
        loader.finish().await?;
        tracing::debug!(elapsed = ?started.elapsed(), "ratings indexed");

        let tags = release.tags()?;
        report.tags = report.load("tags", tags, options, known.as_ref(), async |r| self.upsert_tags(r).await).await?;

        report.elapsed = started.elapsed();
        Ok(report)
    }
}
