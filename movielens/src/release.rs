//! Streaming readers for a MovieLens release folder.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a row or a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// The file is missing or unreadable.
    #[error("{file}: {source}")]
    Io {
        /// The file that failed.
        file: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A row does not fit the file's schema (wrong column count, a value of the wrong type,
    /// a value out of range).
    #[error("{file}:{line}: {reason}")]
    Invalid {
        /// The file holding the row.
        file: PathBuf,
        /// 1-based line number in the file (the header is line 1).
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// One row of `movies.csv`; `genres` is split on `|`, and `(no genres listed)` becomes empty.
#[derive(Debug, Clone, PartialEq)]
pub struct MovieRow {
    /// MovieLens movie id.
    pub movie_id: i64,
    /// Title with the release year in parentheses, as MovieLens writes it.
    pub title: String,
    /// Genre names in file order.
    pub genres: Vec<String>,
}

/// One row of `ratings.csv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatingRow {
    /// MovieLens user id.
    pub user_id: i64,
    /// MovieLens movie id.
    pub movie_id: i64,
    /// 0.5 to 5.0 in half-star steps.
    pub rating: f32,
    /// Unix seconds.
    pub timestamp: i64,
}

impl RatingRow {
    /// A row in `ratings.csv`'s column order (user, movie, rating, timestamp).
    pub const fn new(user_id: i64, movie_id: i64, rating: f32, timestamp: i64) -> Self {
        Self { user_id, movie_id, rating, timestamp }
    }
}

/// One row of `tags.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRow {
    /// MovieLens user id.
    pub user_id: i64,
    /// MovieLens movie id.
    pub movie_id: i64,
    /// Free text chosen by the user.
    pub tag: String,
    /// Unix seconds.
    pub timestamp: i64,
}

/// One row of `links.csv`. `imdb_id` keeps its leading zeros (IMDb ids are strings).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRow {
    /// MovieLens movie id.
    pub movie_id: i64,
    /// IMDb id without the `tt` prefix, zero-padded as in the file.
    pub imdb_id: String,
    /// TMDb id; absent for a few movies.
    pub tmdb_id: Option<i64>,
}

/// The genre string MovieLens uses for a movie with no genre.
pub const NO_GENRES: &str = "(no genres listed)";

/// A release folder such as `ml-latest-small/` or `ml-25m/`.
#[derive(Debug, Clone)]
pub struct Release {
    dir: PathBuf,
}

impl Release {
    /// Points at a release folder; files are opened lazily by each reader.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of one of the release's files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Whether the folder holds a `ratings.csv` and a `movies.csv`, the two files every
    /// MovieLens-shaped data set has.
    pub fn exists(&self) -> bool {
        self.file("movies.csv").is_file() && self.file("ratings.csv").is_file()
    }

    /// Streams `movies.csv`.
    ///
    /// # Errors
    /// The outer error if the file cannot be opened; per-row errors inside the iterator.
    pub fn movies(&self) -> Result<Rows<MovieRow>, RowError> {
        Rows::open(self.file("movies.csv"), |r: RawMovie| {
            if r.movie_id <= 0 {
                return Err("movieId must be positive".into());
            }
            let title = r.title.trim().to_owned();
            if title.is_empty() {
                return Err("empty title".into());
            }
            let genres = if r.genres.is_empty() || r.genres == NO_GENRES {
                Vec::new()
            } else {
                r.genres.split('|').map(str::to_owned).collect()
            };
            Ok(MovieRow { movie_id: r.movie_id, title, genres })
        })
    }

    /// Streams `ratings.csv`, checking ids are positive and ratings are 0.5..=5.0 in half steps.
    ///
    /// # Errors
    /// The outer error if the file cannot be opened; per-row errors inside the iterator.
    pub fn ratings(&self) -> Result<Rows<RatingRow>, RowError> {
        Rows::open(self.file("ratings.csv"), |r: RatingRaw| {
            check_ids(r.user_id, r.movie_id)?;
            if !valid_rating(r.rating) {
                return Err(format!("rating {} is not 0.5..=5.0 in 0.5 steps", r.rating));
            }
            Ok(RatingRow { user_id: r.user_id, movie_id: r.movie_id, rating: r.rating, timestamp: r.timestamp })
        })
    }

    /// Streams `tags.csv`. A missing file yields no rows: some MovieLens-shaped data sets have
    /// no tags.
    ///
    /// # Errors
    /// Per-row errors inside the iterator; an unreadable (not missing) file as the outer error.
    pub fn tags(&self) -> Result<Rows<TagRow>, RowError> {
        self.optional("tags.csv", |r: RawTag| {
            check_ids(r.user_id, r.movie_id)?;
            if r.tag.is_empty() {
                return Err("empty tag".into());
            }
            Ok(TagRow { user_id: r.user_id, movie_id: r.movie_id, tag: r.tag, timestamp: r.timestamp })
        })
    }

    /// Streams `links.csv`; a missing file yields no rows.
    ///
    /// # Errors
    /// Per-row errors inside the iterator; an unreadable (not missing) file as the outer error.
    pub fn links(&self) -> Result<Rows<LinkRow>, RowError> {
        self.optional("links.csv", |r: RawLink| {
            if r.movie_id <= 0 {
                return Err("movieId must be positive".into());
            }
            if r.imdb_id.is_empty() || !r.imdb_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("imdbId {:?} is not a string of digits", r.imdb_id));
            }
            Ok(LinkRow { movie_id: r.movie_id, imdb_id: r.imdb_id, tmdb_id: r.tmdb_id })
        })
    }

    fn optional<R, T: 'static>(&self, name: &str, convert: fn(R) -> Result<T, String>) -> Result<Rows<T>, RowError>
    where
        R: for<'de> Deserialize<'de> + 'static,
    {
        let path = self.file(name);
        if path.exists() { Rows::open(path, convert) } else { Ok(Rows::empty(path)) }
    }
}

/// Whether a rating is on MovieLens' scale: 0.5 to 5.0 in half-star steps.
pub fn valid_rating(rating: f32) -> bool {
    (0.5..=5.0).contains(&rating) && (rating * 2.0).fract() == 0.0
}

fn check_ids(user_id: i64, movie_id: i64) -> Result<(), String> {
    if user_id <= 0 {
        return Err("userId must be positive".into());
    }
    if movie_id <= 0 {
        return Err("movieId must be positive".into());
    }
    Ok(())
}

#[derive(Deserialize)]
struct RawMovie {
    #[serde(rename = "movieId")]
    movie_id: i64,
    title: String,
    genres: String,
}

#[derive(Deserialize)]
struct RatingRaw {
    #[serde(rename = "userId")]
    user_id: i64,
    #[serde(rename = "movieId")]
    movie_id: i64,
    rating: f32,
    timestamp: i64,
}

#[derive(Deserialize)]
struct RawTag {
    #[serde(rename = "userId")]
    user_id: i64,
    #[serde(rename = "movieId")]
    movie_id: i64,
    tag: String,
    timestamp: i64,
}

#[derive(Deserialize)]
struct RawLink {
    #[serde(rename = "movieId")]
    movie_id: i64,
    #[serde(rename = "imdbId")]
    imdb_id: String,
    #[serde(rename = "tmdbId")]
    tmdb_id: Option<i64>,
}

/// Rows with their line numbers, boxed so every file type shares one iterator type.
type NumberedRows<T> = Box<dyn Iterator<Item = Result<(u64, T), RowError>> + Send>;

/// A streaming iterator over one file's rows; each item is a row or the reason it was rejected.
pub struct Rows<T> {
    file: PathBuf,
    inner: Option<NumberedRows<T>>,
}

impl<T: 'static> Rows<T> {
    fn open<R>(file: PathBuf, convert: fn(R) -> Result<T, String>) -> Result<Self, RowError>
    where
        R: for<'de> Deserialize<'de> + 'static,
    {
        let handle = File::open(&file).map_err(|source| RowError::Io { file: file.clone(), source })?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            // Split on `\n` only and let trimming drop the `\r` of CRLF files: the csv crate
            // miscounts line positions for CRLF terminators (BurntSushi/rust-csv#395).
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(BufReader::with_capacity(1 << 20, handle));
        let headers = reader
            .byte_headers()
            .map_err(|e| RowError::Invalid { file: file.clone(), line: 1, reason: e.to_string() })?
            .clone();
        let path = file.clone();
        let iter = reader.into_byte_records().map(move |record| {
            let invalid = |line: u64, reason: String| RowError::Invalid { file: path.clone(), line, reason };
            let record = record.map_err(|e| invalid(e.position().map_or(0, |p| p.line()), e.to_string()))?;
            let line = record.position().map_or(0, |p| p.line());
            let raw: R = record.deserialize(Some(&headers)).map_err(|e| invalid(line, e.to_string()))?;
            convert(raw).map(|row| (line, row)).map_err(|reason| invalid(line, reason))
        });
        Ok(Self { file, inner: Some(Box::new(iter)) })
    }

    fn empty(file: PathBuf) -> Self {
        Self { file, inner: None }
    }

    /// The file being read.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The same rows, each with its 1-based line number in the file (the header is line 1),
    /// so a caller that rejects a row for its own reasons can say where it was.
    pub fn numbered(self) -> impl Iterator<Item = Result<(u64, T), RowError>> + Send {
        self.inner.into_iter().flatten()
    }
}

impl<T> Iterator for Rows<T> {
    type Item = Result<T, RowError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.as_mut()?.next().map(|row| row.map(|(_, row)| row))
    }
}
