//! Seeded generator of MovieLens-shaped releases at any scale.
//!
//! The output has the shape of a GroupLens release, so every reader, importer and benchmark
//! can run on it without the real data:
//!
//! - `movies.csv`: titles like `Synthetic Movie 123 (1997)`, some with commas (`..., The`),
//!   double quotes or accented letters, so CSV quoting and UTF-8 get exercised; 1 to 3 of the
//!   19 MovieLens genres, drawn with MovieLens' genre frequencies.
//! - `ratings.csv`: sorted by `userId` then `movieId`, one rating per (user, movie), on the
//!   0.5..=5.0 half-star scale (mean about 3.5, mode 4.0). Movie popularity is long-tailed
//!   (Zipf-Mandelbrot), user activity is long-tailed (log-normal above a minimum of 20 ratings,
//!   scaled down for very sparse configurations). Ratings follow a latent-factor model (global
//!   mean + user bias + movie bias + a few taste factors + noise), and users pick movies from
//!   the genres their taste favours, so both rating prediction and top-N recommendation have
//!   something to learn. Timestamps lie in 1996..=2023 and increase strictly down each user's
//!   rows; they come in sessions (bursts of seconds apart, then gaps of days or months).
//!   Users who started before February 2003 (when MovieLens added half stars) rate in whole
//!   stars only.
//! - `tags.csv`: about one user in ten tags; a few users tag a lot. Tags are placed on movies
//!   the user rated, a few seconds to minutes after the rating, and come from a vocabulary
//!   tied to the movie's genre.
//! - `links.csv`: unique 7-digit zero-padded `imdbId`s and unique `tmdbId`s, about 0.1% empty.
//!
//! Memory is O(users + movies): every user's rows are regenerated from a per-user random
//! stream, so [`ratings`] streams 25 M rows without holding them. The output depends only on
//! the [`SyntheticConfig`] (the random generator is implemented here, so a seed gives the same
//! bytes on every platform and with every `rand` 0.9.x).

use std::fs;
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::release::{LinkRow, MovieRow, RatingRow, TagRow};

/// Size and seed of a synthetic release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticConfig {
    /// Number of users; user ids are `1..=users`, and every user has at least one rating.
    pub users: u32,
    /// Number of movies; movie ids are `1..=movies`. Not every movie gets a rating (the long
    /// tail), as in the ml-25m and ml-32m releases.
    pub movies: u32,
    /// Exact number of rows in `ratings.csv`; at least `users`, at most `users * movies`.
    pub ratings: u64,
    /// Exact number of rows in `tags.csv`; at most `3 * ratings` (tags sit on rated movies,
    /// at most three per user and movie).
    pub tags: u64,
    /// Seed of every random choice: the same config gives the same bytes.
    pub seed: u64,
}

/// Seed used by the named configurations.
pub const DEFAULT_SEED: u64 = 42;

impl SyntheticConfig {
    /// The size of ml-latest-small (September 2018): 100,836 ratings by 610 users of 9,742
    /// movies, 3,683 tags.
    pub fn small() -> Self {
        Self { users: 610, movies: 9_742, ratings: 100_836, tags: 3_683, seed: DEFAULT_SEED }
    }

    /// The size of ml-25m: 25,000,095 ratings by 162,541 users of 62,423 movies, 1,093,360 tags.
    pub fn ml_25m() -> Self {
        Self { users: 162_541, movies: 62_423, ratings: 25_000_095, tags: 1_093_360, seed: DEFAULT_SEED }
    }

    /// A release of `ratings` ratings whose other sizes follow MovieLens: about 160 ratings a
    /// user, a catalogue growing like `ratings^0.34` (which passes through both ml-latest-small
    /// and ml-25m), and 4 tags per 100 ratings. `scaled(100_836)` is close to [`Self::small`],
    /// `scaled(25_000_095)` to [`Self::ml_25m`].
    pub fn scaled(ratings: u64) -> Self {
        let ratings = ratings.max(1);
        let users = (ratings as f64 / 160.0).round().clamp(1.0, f64::from(u32::MAX)) as u32;
        let movies =
            (9_742.0 * (ratings as f64 / 100_836.0).powf(0.3366)).round().clamp(1.0, f64::from(u32::MAX)) as u32;
        let cells = u64::from(users) * u64::from(movies);
        let ratings = ratings.min(cells).max(u64::from(users));
        let tags = (ratings as f64 * 0.04).round() as u64;
        Self { users, movies, ratings, tags, seed: DEFAULT_SEED }
    }

    /// The same sizes with another seed.
    pub fn with_seed(self, seed: u64) -> Self {
        Self { seed, ..self }
    }

    /// Checks that the sizes can be met.
    ///
    /// # Errors
    /// [`SyntheticError::Config`] naming the broken constraint.
    pub fn validate(&self) -> Result<(), SyntheticError> {
        let fail = |reason: String| Err(SyntheticError::Config(reason));
        if self.users == 0 || self.movies == 0 {
            return fail("users and movies must be at least 1".into());
        }
        if self.ratings < u64::from(self.users) {
            return fail(format!("{} ratings cannot give each of {} users one rating", self.ratings, self.users));
        }
        let cells = u64::from(self.users) * u64::from(self.movies);
        if self.ratings > cells {
            return fail(format!(
                "{} ratings exceed users x movies = {cells} (one rating per user and movie)",
                self.ratings
            ));
        }
        if self.tags > self.ratings.saturating_mul(u64::from(MAX_TAGS_PER_MOVIE)) {
            return fail(format!("{} tags exceed {MAX_TAGS_PER_MOVIE} per rating", self.tags));
        }
        Ok(())
    }

    /// The smallest number of ratings any user gets: 20 as in MovieLens, lowered to a quarter
    /// of the mean activity when users rate fewer than 80 movies on average (and never above
    /// the catalogue).
    pub fn min_ratings_per_user(&self) -> u32 {
        let mean = self.ratings / u64::from(self.users.max(1));
        (mean / 4).clamp(1, 20).min(u64::from(self.movies.max(1))) as u32
    }
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self::small()
    }
}

/// Why a synthetic release could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SyntheticError {
    /// The configuration cannot be met.
    #[error("invalid synthetic config: {0}")]
    Config(String),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A row could not be written.
    #[error("{path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: csv::Error,
    },
}

/// What [`write_release`] wrote: the folder and the data rows per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The release folder.
    pub dir: PathBuf,
    /// Rows in `movies.csv`.
    pub movies: u64,
    /// Rows in `ratings.csv`.
    pub ratings: u64,
    /// Rows in `tags.csv`.
    pub tags: u64,
    /// Rows in `links.csv`.
    pub links: u64,
    /// Bytes written, all files together.
    pub bytes: u64,
}

/// The 19 MovieLens genres, in the alphabetical order MovieLens lists them in.
pub const GENRES: [&str; 19] = [
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// Movies per genre in ml-latest-small, used as drawing weights.
const GENRE_WEIGHTS: [f64; 19] = [
    1828.0, 1263.0, 611.0, 664.0, 3756.0, 1199.0, 440.0, 4361.0, 779.0, 87.0, 978.0, 158.0, 334.0, 573.0, 1596.0,
    980.0, 1894.0, 382.0, 167.0,
];

/// Shift of the mean rating per genre (film noir and documentaries are rated higher, horror
/// and children's films lower), averaged over a movie's genres.
const GENRE_BIAS: [f32; 19] = [
    -0.08, -0.02, 0.05, -0.15, -0.10, 0.08, 0.20, 0.10, -0.03, 0.25, -0.30, 0.05, 0.00, 0.05, 0.00, -0.02, -0.03, 0.15,
    0.03,
];

/// Tag vocabulary per genre (same order as [`GENRES`]).
const GENRE_TAGS: [&[&str]; 19] = [
    &["action", "explosions", "car chase", "martial arts", "heist", "superhero"],
    &["adventure", "treasure hunt", "epic", "journey"],
    &["animation", "pixar", "beautiful animation", "anime"],
    &["family", "kids", "disney", "talking animals"],
    &["funny", "dark comedy", "hilarious", "quirky", "satire", "will ferrell"],
    &["crime", "mafia", "police", "serial killer", "heist"],
    &["documentary", "true story", "history", "nature"],
    &["drama", "tearjerker", "coming of age", "thought-provoking", "based on a book"],
    &["fantasy", "magic", "fantasy world", "dragons"],
    &["film noir", "femme fatale", "black and white", "detective"],
    &["horror", "gore", "zombies", "creepy", "haunted house"],
    &["imax", "visually stunning", "3d"],
    &["musical", "great soundtrack", "singing", "dance"],
    &["mystery", "twist ending", "whodunit", "psychological"],
    &["romance", "love story", "chick flick", "romantic comedy"],
    &["sci-fi", "space", "dystopia", "time travel", "aliens", "artificial intelligence"],
    &["thriller", "suspense", "twist ending", "conspiracy"],
    &["war", "world war ii", "vietnam", "military"],
    &["western", "cowboys", "gunfight", "frontier"],
];

/// Tags that fit any movie; a few hold commas or quotes to exercise CSV quoting.
const GENERIC_TAGS: [&str; 24] = [
    "atmospheric",
    "classic",
    "overrated",
    "underrated",
    "predictable",
    "visually appealing",
    "great acting",
    "good dialogue",
    "boring",
    "cult film",
    "Oscar (Best Picture)",
    "seen more than once",
    "in netflix queue",
    "stylized",
    "nonlinear",
    "slow, but worth it",
    "funny, sad, beautiful",
    "\"so bad it's good\"",
    "must see",
    "remake",
    "sequel",
    "based on a true story",
    "cinematography",
    "soundtrack",
];

/// At most this many tags per (user, movie).
const MAX_TAGS_PER_MOVIE: u32 = 3;

/// Half-star values as MovieLens writes them, indexed by `2 * rating - 1`.
const RATING_TEXT: [&str; 10] = ["0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0"];

// Shape parameters. Tuned so ml-latest-small-sized output matches the real file's summary
// statistics (see the tests).
/// Latent taste factors per user and movie.
const FACTORS: usize = 4;
/// Zipf-Mandelbrot exponent of movie popularity at ml-latest-small's catalogue size. It grows
/// by `ZIPF_S_GROWTH` per e-fold of catalogue, because bigger releases add obscure movies to the
/// tail and are more concentrated: item Gini of the rated movies is 0.72 in ml-latest-small and
/// 0.94 in ml-25m; the generator gives 0.69 and 0.92 at those sizes.
const ZIPF_S: f64 = 1.6;
const ZIPF_S_GROWTH: f64 = 0.15;
/// Zipf-Mandelbrot offset (flattens the head), fixed so the most-rated movie is rated by about
/// half the users at any scale, as in ml-latest-small and ml-25m.
const ZIPF_Q: f64 = 100.0;
/// Ratings per movie that the uniform floor of popularity adds on average: the long tail of
/// movies with one or two ratings.
const TAIL_FLOOR: f64 = 0.6;
/// Users rating more than `movies / HEAVY_USER_DIVISOR` movies are sampled over the whole
/// catalogue (O(movies) each) rather than by rejection.
const HEAVY_USER_DIVISOR: usize = 20;
/// Spread of user activity above the minimum (log-normal sigma).
const ACTIVITY_SIGMA: f64 = 1.4;
/// Share of users who tag, and spread of their tag counts.
const TAGGER_SHARE: f64 = 0.095;
const TAG_SIGMA: f64 = 2.0;
/// Rating model. The mean of the written ratings ends up near 3.5 after clamping to the scale
/// and the occasional letdown.
const GLOBAL_MEAN: f64 = 3.58;
const USER_BIAS_SD: f64 = 0.45;
const MOVIE_BIAS_SD: f64 = 0.38;
/// Rating shift per standard deviation of log-popularity (popular movies are rated higher).
const POPULARITY_BIAS: f64 = 0.12;
const NOISE_SD: f64 = 0.75;
/// Chance that a rating is a disappointment, and how far it falls (mean of an exponential):
/// real ratings are skewed to the left.
const LETDOWN_CHANCE: f64 = 0.06;
const LETDOWN_MEAN: f64 = 1.5;
const USER_FACTOR_SD: f64 = 0.30;
const MOVIE_FACTOR_NOISE_SD: f64 = 0.25;
const GENRE_FACTOR_SCALE: f64 = 0.45;
/// How strongly taste steers which genres a user watches.
const TASTE_SELECTION: f64 = 1.5;
/// Chance that a user who started after half stars were introduced uses them.
const HALF_STAR_USERS: f64 = 0.85;

/// 1996-01-01T00:00:00Z.
const FIRST_SECOND: i64 = 820_454_400;
/// 2023-12-31T23:59:59Z.
const LAST_SECOND: i64 = 1_704_067_199;
/// 2003-02-18T00:00:00Z: MovieLens has offered half stars since about then.
const HALF_STARS_FROM: i64 = 1_045_526_400;
/// Relative number of users starting in each year 1996..=2023 (shaped after ml-latest-small).
const START_YEAR_WEIGHTS: [f64; 28] = [
    6.0, 2.0, 1.0, 3.0, 8.0, 4.0, 4.0, 4.0, 4.0, 5.0, 4.0, 6.0, 4.0, 4.0, 2.5, 2.0, 4.0, 2.0, 2.0, 6.0, 6.0, 7.0, 6.0,
    4.0, 4.0, 3.0, 3.0, 3.0,
];

// Independent random streams, so adding draws to one never shifts another.
const STREAM_MODEL: u64 = 1;
const STREAM_MOVIE: u64 = 2;
const STREAM_MOVIE_LATENT: u64 = 3;
const STREAM_USER_PLAN: u64 = 4;
const STREAM_USER_RATINGS: u64 = 5;
const STREAM_TAG_PLAN: u64 = 6;
const STREAM_USER_TAGS: u64 = 7;
const STREAM_LINK: u64 = 8;

/// Streams `movies.csv` rows in id order.
///
/// # Errors
/// [`SyntheticError::Config`] if the config is invalid.
pub fn movies(cfg: &SyntheticConfig) -> Result<impl ExactSizeIterator<Item = MovieRow> + Clone, SyntheticError> {
    cfg.validate()?;
    let seed = cfg.seed;
    Ok((1..cfg.movies + 1).map(move |id| movie_row(seed, id)))
}

/// Streams `links.csv` rows in id order.
///
/// # Errors
/// [`SyntheticError::Config`] if the config is invalid.
pub fn links(cfg: &SyntheticConfig) -> Result<impl ExactSizeIterator<Item = LinkRow> + Clone, SyntheticError> {
    cfg.validate()?;
    let (seed, movies) = (cfg.seed, cfg.movies);
    Ok((1..movies + 1).map(move |id| link_row(seed, movies, id)))
}

/// Streams `ratings.csv` rows sorted by user id then movie id; exactly `cfg.ratings` rows.
/// Building the generator takes O(users + movies) time and memory; rows are then produced one
/// user at a time.
///
/// # Errors
/// [`SyntheticError::Config`] if the config is invalid.
pub fn ratings(cfg: &SyntheticConfig) -> Result<Ratings, SyntheticError> {
    let model = Model::build(cfg)?;
    let scratch = Scratch::new(cfg.movies);
    Ok(Ratings { model, scratch, user: 0, buf: Vec::new(), pos: 0, left: cfg.ratings })
}

/// Streams `tags.csv` rows sorted by user id then movie id; exactly `cfg.tags` rows. Tags sit
/// on movies the same user rated in [`ratings`], shortly after the rating.
///
/// # Errors
/// [`SyntheticError::Config`] if the config is invalid.
pub fn tags(cfg: &SyntheticConfig) -> Result<Tags, SyntheticError> {
    let model = Model::build(cfg)?;
    let scratch = Scratch::new(cfg.movies);
    Ok(Tags { model, scratch, user: 0, ratings: Vec::new(), buf: Vec::new(), pos: 0, left: cfg.tags })
}

/// Writes `movies.csv`, `ratings.csv`, `tags.csv`, `links.csv` (MovieLens headers, LF line
/// endings, UTF-8) and a `README.txt` naming the config into `dir`, creating it if needed.
/// Each file is written under a temporary name and renamed when complete.
///
/// # Errors
/// [`SyntheticError::Config`] for an invalid config, [`SyntheticError::Io`] or
/// [`SyntheticError::Csv`] naming the file that could not be written.
pub fn write_release(cfg: &SyntheticConfig, dir: &Path) -> Result<Summary, SyntheticError> {
    let model = Model::build(cfg)?;
    fs::create_dir_all(dir).map_err(|source| SyntheticError::Io { path: dir.to_owned(), source })?;
    let mut summary = Summary { dir: dir.to_owned(), movies: 0, ratings: 0, tags: 0, links: 0, bytes: 0 };

    let mut out = CsvFile::create(dir, "movies.csv", &["movieId", "title", "genres"])?;
    let mut genres = String::new();
    for movie in movies(cfg)? {
        genres.clear();
        for (i, genre) in movie.genres.iter().enumerate() {
            if i > 0 {
                genres.push('|');
            }
            genres.push_str(genre);
        }
        out.row((movie.movie_id, &movie.title, &genres))?;
        summary.movies += 1;
    }
    summary.bytes += out.finish()?;

    let mut out = CsvFile::create(dir, "links.csv", &["movieId", "imdbId", "tmdbId"])?;
    for link in links(cfg)? {
        out.row((link.movie_id, &link.imdb_id, link.tmdb_id))?;
        summary.links += 1;
    }
    summary.bytes += out.finish()?;

    // Ratings and tags in one pass: a tagger's tags reuse the ratings just generated.
    let mut rating_out = CsvFile::create(dir, "ratings.csv", &["userId", "movieId", "rating", "timestamp"])?;
    let mut tag_out = CsvFile::create(dir, "tags.csv", &["userId", "movieId", "tag", "timestamp"])?;
    let mut scratch = Scratch::new(cfg.movies);
    let mut rows = Vec::new();
    let mut tag_rows = Vec::new();
    for user in 1..=cfg.users {
        model.user_ratings(user, &mut scratch, &mut rows);
        for r in &rows {
            rating_out.row((r.user_id, r.movie_id, rating_text(r.rating), r.timestamp))?;
        }
        summary.ratings += rows.len() as u64;
        model.user_tags(user, &rows, &mut tag_rows);
        for t in &tag_rows {
            tag_out.row((t.user_id, t.movie_id, &t.tag, t.timestamp))?;
        }
        summary.tags += tag_rows.len() as u64;
    }
    summary.bytes += rating_out.finish()?;
    summary.bytes += tag_out.finish()?;

    let readme = format!(
        "Synthetic MovieLens-shaped release made by the CineData `synth` tool (movielens::synthetic).\n\
         It holds no GroupLens data: every row is generated.\n\n\
         users: {}\nmovies: {}\nratings: {}\ntags: {}\nseed: {}\n",
        cfg.users, cfg.movies, cfg.ratings, cfg.tags, cfg.seed
    );
    let path = dir.join("README.txt");
    fs::write(&path, &readme).map_err(|source| SyntheticError::Io { path, source })?;
    summary.bytes += readme.len() as u64;
    Ok(summary)
}

/// A rating as MovieLens writes it: `4.0`, `3.5`.
fn rating_text(rating: f32) -> &'static str {
    RATING_TEXT[((rating * 2.0) as usize).clamp(1, 10) - 1]
}

/// Movie `id` of the release seeded `seed`.
fn movie_row(seed: u64, id: u32) -> MovieRow {
    let profile = MovieProfile::new(seed, id);
    MovieRow {
        movie_id: i64::from(id),
        title: profile.title(id),
        genres: profile.genres().map(|g| GENRES[g].to_owned()).collect(),
    }
}

/// The links of movie `id` of `movies` in the release seeded `seed`.
fn link_row(seed: u64, movies: u32, id: u32) -> LinkRow {
    let mut rng = Rng64::stream(seed, STREAM_LINK, u64::from(id));
    let index = u64::from(id - 1);
    // Unique ids: one random value inside each movie's own slot of the id range.
    let imdb_slot = (9_000_000 / u64::from(movies)).max(1);
    let imdb = 100_000 + index * imdb_slot + rng.random_range(0..imdb_slot);
    let tmdb_slot = (1_200_000 / u64::from(movies)).max(1);
    let tmdb = 2 + index * tmdb_slot + rng.random_range(0..tmdb_slot);
    let tmdb_id = if rng.random::<f64>() < 0.001 { None } else { Some(tmdb as i64) };
    LinkRow { movie_id: i64::from(id), imdb_id: format!("{imdb:07}"), tmdb_id }
}

/// Iterator over synthetic `ratings.csv` rows; see [`ratings`].
pub struct Ratings {
    model: Model,
    scratch: Scratch,
    user: u32,
    buf: Vec<RatingRow>,
    pos: usize,
    left: u64,
}

impl Iterator for Ratings {
    type Item = RatingRow;
    fn next(&mut self) -> Option<RatingRow> {
        while self.pos == self.buf.len() {
            if self.user == self.model.cfg.users {
                return None;
            }
            self.user += 1;
            self.model.user_ratings(self.user, &mut self.scratch, &mut self.buf);
            self.pos = 0;
        }
        self.pos += 1;
        self.left -= 1;
        Some(self.buf[self.pos - 1])
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.left).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

/// Iterator over synthetic `tags.csv` rows; see [`tags`].
pub struct Tags {
    model: Model,
    scratch: Scratch,
    user: u32,
    ratings: Vec<RatingRow>,
    buf: Vec<TagRow>,
    pos: usize,
    left: u64,
}

impl Iterator for Tags {
    type Item = TagRow;
    fn next(&mut self) -> Option<TagRow> {
        while self.pos == self.buf.len() {
            if self.user == self.model.cfg.users {
                return None;
            }
            self.user += 1;
            self.pos = 0;
            self.buf.clear();
            if self.model.tags_per_user.get(self.user as usize - 1).copied().unwrap_or(0) > 0 {
                self.model.user_ratings(self.user, &mut self.scratch, &mut self.ratings);
                self.model.user_tags(self.user, &self.ratings, &mut self.buf);
            }
        }
        let row = &mut self.buf[self.pos];
        self.pos += 1;
        self.left -= 1;
        Some(TagRow {
            user_id: row.user_id,
            movie_id: row.movie_id,
            tag: std::mem::take(&mut row.tag),
            timestamp: row.timestamp,
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.left).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

mod csv_file;
mod model;
mod random;
#[cfg(test)]
mod tests;

use csv_file::CsvFile;
use model::{Model, MovieProfile, Scratch};
use random::Rng64;
