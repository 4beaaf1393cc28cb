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
use movielens::{Release, RowError, release::Rows};
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
        let max = options.max_reported;

        let movies = release.movies()?;
        let movies_bar = bar(options.progress, "movies");
        let mut rx = parse_in_background(movies, options.batch_size, |_| Ok(()));
        while let Some(batch) = rx.recv().await {
            match batch {
                Batch::Rows(rows) => {
                    report.movies += self.upsert_movies(&rows).await?;
                    movies_bar.inc(rows.len() as u64);
                }
                Batch::Rejected(e) => report.reject(&e, max),
            }
        }
        movies_bar.finish();

        let known = Arc::new(self.movie_ids().await?);
        let known_movie = |known: Arc<HashSet<i64>>| {
            move |movie_id: i64| {
                if known.contains(&movie_id) { Ok(()) } else { Err(format!("movieId {movie_id} is not in movies.csv")) }
            }
        };

        let check = known_movie(known.clone());
        let links_bar = bar(options.progress, "links");
        let mut rx = parse_in_background(release.links()?, options.batch_size, move |l| check(l.movie_id));
        while let Some(batch) = rx.recv().await {
            match batch {
                Batch::Rows(rows) => {
                    report.links += self.upsert_links(&rows).await?;
                    links_bar.inc(rows.len() as u64);
                }
                Batch::Rejected(e) => report.reject(&e, max),
            }
        }
        links_bar.finish();
        if options.catalogue_only {
            report.elapsed = started.elapsed();
            return Ok(report);
        }

        tracing::debug!(elapsed = ?started.elapsed(), "catalogue imported");
        let check = known_movie(known.clone());
        let ratings_bar = bar(options.progress, "ratings");
        let mut rx = parse_in_background(release.ratings()?, options.batch_size, move |r| check(r.movie_id));
        let mut loader = self.ratings_loader().await?;
        while let Some(batch) = rx.recv().await {
            match batch {
                Batch::Rows(rows) => {
                    report.ratings += loader.load(&rows).await?;
                    ratings_bar.inc(rows.len() as u64);
                }
                Batch::Rejected(e) => report.reject(&e, max),
            }
        }
        tracing::debug!(elapsed = ?started.elapsed(), "ratings written");
        loader.finish().await?;
        ratings_bar.finish();
        tracing::debug!(elapsed = ?started.elapsed(), "ratings indexed");

        let check = known_movie(known);
        let tags_bar = bar(options.progress, "tags");
        let mut rx = parse_in_background(release.tags()?, options.batch_size, move |t| check(t.movie_id));
        while let Some(batch) = rx.recv().await {
            match batch {
                Batch::Rows(rows) => {
                    report.tags += self.upsert_tags(&rows).await?;
                    tags_bar.inc(rows.len() as u64);
                }
                Batch::Rejected(e) => report.reject(&e, max),
            }
        }
        tags_bar.finish();

        report.elapsed = started.elapsed();
        Ok(report)
    }
}
