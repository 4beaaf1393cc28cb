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

use std::f64::consts::TAU;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use rand::{Rng, RngCore};

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
pub fn movies(cfg: &SyntheticConfig) -> Result<Movies, SyntheticError> {
    cfg.validate()?;
    Ok(Movies { seed: cfg.seed, next: 1, last: cfg.movies })
}

/// Streams `links.csv` rows in id order.
///
/// # Errors
/// [`SyntheticError::Config`] if the config is invalid.
pub fn links(cfg: &SyntheticConfig) -> Result<Links, SyntheticError> {
    cfg.validate()?;
    Ok(Links { seed: cfg.seed, movies: cfg.movies, next: 1 })
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

/// Iterator over synthetic `movies.csv` rows; see [`movies`].
#[derive(Debug, Clone)]
pub struct Movies {
    seed: u64,
    next: u32,
    last: u32,
}

impl Iterator for Movies {
    type Item = MovieRow;
    fn next(&mut self) -> Option<MovieRow> {
        if self.next > self.last {
            return None;
        }
        let id = self.next;
        self.next += 1;
        let profile = MovieProfile::new(self.seed, id);
        Some(MovieRow {
            movie_id: i64::from(id),
            title: profile.title(id),
            genres: profile.genres().map(|g| GENRES[g].to_owned()).collect(),
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (u64::from(self.last) + 1 - u64::from(self.next)) as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Movies {}

/// Iterator over synthetic `links.csv` rows; see [`links`].
#[derive(Debug, Clone)]
pub struct Links {
    seed: u64,
    movies: u32,
    next: u32,
}

impl Iterator for Links {
    type Item = LinkRow;
    fn next(&mut self) -> Option<LinkRow> {
        if self.next > self.movies {
            return None;
        }
        let id = self.next;
        self.next += 1;
        let mut rng = Rng64::stream(self.seed, STREAM_LINK, u64::from(id));
        let index = u64::from(id - 1);
        // Unique ids: one random value inside each movie's own slot of the id range.
        let imdb_slot = (9_000_000 / u64::from(self.movies)).max(1);
        let imdb = 100_000 + index * imdb_slot + rng.random_range(0..imdb_slot);
        let tmdb_slot = (1_200_000 / u64::from(self.movies)).max(1);
        let tmdb = 2 + index * tmdb_slot + rng.random_range(0..tmdb_slot);
        let tmdb_id = if rng.random::<f64>() < 0.001 { None } else { Some(tmdb as i64) };
        Some(LinkRow { movie_id: i64::from(id), imdb_id: format!("{imdb:07}"), tmdb_id })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (u64::from(self.movies) + 1 - u64::from(self.next)) as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Links {}

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

/// What one movie looks like, derived from its own random stream (so [`movies`] needs no
/// model).
struct MovieProfile {
    year: u32,
    /// Genre indices; the first is the primary genre, which decides the movie's taste group.
    genres: [u8; 3],
    genre_count: u8,
    /// Title decoration: article, alternative title, quotes.
    variant: u8,
}

impl MovieProfile {
    fn new(seed: u64, id: u32) -> Self {
        let mut rng = Rng64::stream(seed, STREAM_MOVIE, u64::from(id));
        // Release years: most movies recent, a tail back to the 1900s.
        let age = (exponential(&mut rng) * 16.0).floor() as u32;
        let year = 2022u32.saturating_sub(age).max(1902);
        let count = match rng.random::<f64>() {
            x if x < 0.33 => 1,
            x if x < 0.71 => 2,
            _ => 3,
        };
        let mut genres = [0u8; 3];
        let total: f64 = GENRE_WEIGHTS.iter().sum();
        let mut n = 0;
        while n < count {
            let g = pick_weighted(&GENRE_WEIGHTS, total, rng.random::<f64>()) as u8;
            if !genres[..n].contains(&g) {
                genres[n] = g;
                n += 1;
            }
        }
        let variant = match rng.random::<f64>() {
            x if x < 0.050 => 1, // "..., The"
            x if x < 0.070 => 2, // "..., A"
            x if x < 0.075 => 3, // "..., Les"
            x if x < 0.100 => 4, // alternative title with accents
            x if x < 0.105 => 5, // quoted part
            _ => 0,
        };
        Self { year, genres, genre_count: count as u8, variant }
    }

    fn primary_genre(&self) -> usize {
        usize::from(self.genres[0])
    }

    /// Genres in MovieLens order (alphabetical).
    fn genres(&self) -> impl Iterator<Item = usize> + use<> {
        let mut sorted = self.genres;
        let n = usize::from(self.genre_count);
        sorted[..n].sort_unstable();
        (0..n).map(move |i| usize::from(sorted[i]))
    }

    fn title(&self, id: u32) -> String {
        let year = self.year;
        match self.variant {
            1 => format!("Synthetic Movie {id}, The ({year})"),
            2 => format!("Synthetic Movie {id}, A ({year})"),
            3 => format!("Synthetic Movie {id}, Les ({year})"),
            4 => format!("Synthetic Movie {id} (Film synthétique n° {id}) ({year})"),
            5 => format!("\"Synthetic\" Movie {id} ({year})"),
            _ => format!("Synthetic Movie {id} ({year})"),
        }
    }
}

/// Everything shared across users: movie popularity, biases and factors, per-genre sampling
/// tables, and the per-user rating and tag counts. O(users + movies) memory.
struct Model {
    cfg: SyntheticConfig,
    /// Movie bias (genre effect + popularity effect + noise), indexed by `movie_id - 1`.
    movie_bias: Vec<f32>,
    /// Movie taste factors, indexed by `movie_id - 1`.
    movie_factors: Vec<[f32; FACTORS]>,
    /// Primary genre of each movie.
    movie_genre: Vec<u8>,
    /// Popularity weight of each movie (Zipf-Mandelbrot over a shuffled rank).
    popularity: Vec<f64>,
    /// Taste direction of each genre; movies of a genre lie around it.
    genre_factors: [[f64; FACTORS]; 19],
    /// Total popularity weight of each genre's movies.
    genre_weight: [f64; 19],
    /// Alias tables for drawing a movie of a genre by popularity, concatenated per genre.
    genre_start: [usize; 20],
    members: Vec<u32>,
    alias_prob: Vec<f64>,
    alias: Vec<u32>,
    /// Share of picks drawn uniformly over the catalogue.
    tail_floor: f64,
    ratings_per_user: Vec<u32>,
    tags_per_user: Vec<u32>,
}

impl Model {
    fn build(cfg: &SyntheticConfig) -> Result<Self, SyntheticError> {
        cfg.validate()?;
        let m = cfg.movies as usize;
        let mut rng = Rng64::stream(cfg.seed, STREAM_MODEL, 0);

        let mut genre_factors = [[0.0; FACTORS]; 19];
        for row in &mut genre_factors {
            for x in row.iter_mut() {
                *x = normal(&mut rng);
            }
        }

        // Popularity: Zipf-Mandelbrot over ranks, ranks shuffled over ids so that popularity
        // does not follow the id.
        let mut rank: Vec<u32> = (0..cfg.movies).collect();
        for i in (1..m).rev() {
            let j = rng.random_range(0..=i);
            rank.swap(i, j);
        }
        let q = ZIPF_Q;
        let exponent = (ZIPF_S + ZIPF_S_GROWTH * (m as f64 / 9_742.0).ln()).clamp(1.1, 2.5);
        let popularity: Vec<f64> = rank.iter().map(|&r| (f64::from(r) + q).powf(-exponent)).collect();
        let log_pop: Vec<f64> = popularity.iter().map(|p| p.ln()).collect();
        // Centred on what the ratings see (popularity-weighted), so the mean rating does not
        // drift with the scale.
        let weight: f64 = popularity.iter().sum();
        let mean = popularity.iter().zip(&log_pop).map(|(p, l)| p * l).sum::<f64>() / weight;
        let var = popularity.iter().zip(&log_pop).map(|(p, l)| p * (l - mean).powi(2)).sum::<f64>() / weight;
        let sd = var.sqrt().max(1e-9);

        let mut movie_bias = Vec::with_capacity(m);
        let mut movie_factors = Vec::with_capacity(m);
        let mut movie_genre = Vec::with_capacity(m);
        for id in 1..=cfg.movies {
            let profile = MovieProfile::new(cfg.seed, id);
            let i = id as usize - 1;
            let g = profile.primary_genre();
            let genre_bias: f32 = profile.genres().map(|g| GENRE_BIAS[g]).sum::<f32>() / f32::from(profile.genre_count);
            let mut r = Rng64::stream(cfg.seed, STREAM_MOVIE_LATENT, u64::from(id));
            let bias =
                f64::from(genre_bias) + POPULARITY_BIAS * (log_pop[i] - mean) / sd + MOVIE_BIAS_SD * normal(&mut r);
            let mut f = [0.0f32; FACTORS];
            for (k, x) in f.iter_mut().enumerate() {
                *x = (GENRE_FACTOR_SCALE * genre_factors[g][k] + MOVIE_FACTOR_NOISE_SD * normal(&mut r)) as f32;
            }
            movie_bias.push(bias as f32);
            movie_factors.push(f);
            movie_genre.push(g as u8);
        }

        // Per-genre alias tables.
        let mut genre_start = [0usize; 20];
        for &g in &movie_genre {
            genre_start[usize::from(g) + 1] += 1;
        }
        for g in 0..19 {
            genre_start[g + 1] += genre_start[g];
        }
        let mut fill = genre_start;
        let mut members = vec![0u32; m];
        for (i, &g) in movie_genre.iter().enumerate() {
            members[fill[usize::from(g)]] = i as u32;
            fill[usize::from(g)] += 1;
        }
        let mut alias_prob = vec![0.0; m];
        let mut alias = vec![0u32; m];
        let mut genre_weight = [0.0; 19];
        for g in 0..19 {
            let range = genre_start[g]..genre_start[g + 1];
            let weights: Vec<f64> = members[range.clone()].iter().map(|&i| popularity[i as usize]).collect();
            genre_weight[g] = weights.iter().sum();
            build_alias(&weights, &mut alias_prob[range.clone()], &mut alias[range]);
        }

        // Activity: the minimum for everyone, the rest shared out log-normally, capped at a
        // third of the catalogue (or more when the config is that dense).
        let min = cfg.min_ratings_per_user();
        let users = cfg.users as usize;
        let cap =
            u64::from((cfg.movies / 3).max(min)).max(cfg.ratings.div_ceil(users as u64)).min(u64::from(cfg.movies));
        let activity: Vec<f64> = (1..=cfg.users)
            .map(|u| (ACTIVITY_SIGMA * normal(&mut Rng64::stream(cfg.seed, STREAM_USER_PLAN, u64::from(u)))).exp())
            .collect();
        let ratings_per_user = allocate(cfg.ratings, &activity, &vec![min; users], &vec![cap as u32; users]);

        // Taggers: about one user in ten, log-normal counts, at most three tags per rating.
        let mut tag_weight: Vec<f64> = Vec::with_capacity(users);
        for u in 1..=cfg.users {
            let mut r = Rng64::stream(cfg.seed, STREAM_TAG_PLAN, u64::from(u));
            let chosen = r.random::<f64>() < TAGGER_SHARE;
            let w = (TAG_SIGMA * normal(&mut r)).exp();
            tag_weight.push(if chosen { w } else { -w });
        }
        let tag_cap: Vec<u32> = ratings_per_user.iter().map(|&n| n.saturating_mul(MAX_TAGS_PER_MOVIE)).collect();
        let chosen_capacity: u64 =
            tag_weight.iter().zip(&tag_cap).filter(|(w, _)| **w > 0.0).map(|(_, &c)| u64::from(c)).sum();
        if chosen_capacity < cfg.tags {
            // Too few taggers for the requested tags: everyone may tag.
            for w in &mut tag_weight {
                *w = w.abs();
            }
        }
        for w in &mut tag_weight {
            *w = w.max(0.0);
        }
        let tags_per_user = allocate(cfg.tags, &tag_weight, &vec![0; users], &tag_cap);

        Ok(Self {
            cfg: *cfg,
            movie_bias,
            movie_factors,
            movie_genre,
            popularity,
            genre_factors,
            genre_weight,
            genre_start,
            members,
            alias_prob,
            alias,
            tail_floor: (TAIL_FLOOR * m as f64 / cfg.ratings as f64).min(0.5),
            ratings_per_user,
            tags_per_user,
        })
    }

    /// One user's ratings, sorted by movie id, with increasing timestamps.
    fn user_ratings(&self, user: u32, scratch: &mut Scratch, out: &mut Vec<RatingRow>) {
        out.clear();
        let n = self.ratings_per_user[user as usize - 1] as usize;
        let movies = self.cfg.movies as usize;
        let mut rng = Rng64::stream(self.cfg.seed, STREAM_USER_RATINGS, u64::from(user));

        // Taste and the genre mix it leads to.
        let bias = USER_BIAS_SD * normal(&mut rng);
        let mut taste = [0.0f64; FACTORS];
        for x in &mut taste {
            *x = USER_FACTOR_SD * normal(&mut rng);
        }
        let mut genre_cdf = [0.0f64; 19];
        let mut total = 0.0;
        for (g, cdf) in genre_cdf.iter_mut().enumerate() {
            let fit: f64 = (0..FACTORS).map(|k| taste[k] * self.genre_factors[g][k]).sum();
            let w = self.genre_weight[g] * (TASTE_SELECTION * fit + 0.3 * normal(&mut rng)).exp();
            total += w;
            *cdf = total;
        }
        // A small uniform share of picks keeps the tail populated.
        let explore = self.tail_floor;

        // Distinct movies. Heavy users: exact weighted sampling without replacement over the
        // whole catalogue (Efraimidis-Spirakis keys), so they rate nearly every popular movie
        // and go on down the tail. Others: rejection on a bitset, cheap for small samples.
        let chosen = &mut scratch.chosen;
        chosen.clear();
        if n > movies / HEAVY_USER_DIVISOR {
            let mut share = [0.0f64; 19];
            let mut below = 0.0;
            for (g, s) in share.iter_mut().enumerate() {
                if self.genre_weight[g] > 0.0 {
                    *s = (genre_cdf[g] - below) / total / self.genre_weight[g];
                }
                below = genre_cdf[g];
            }
            let keys = &mut scratch.keys;
            keys.clear();
            let uniform = explore / movies as f64;
            for i in 0..movies {
                let w = (1.0 - explore) * share[usize::from(self.movie_genre[i])] * self.popularity[i] + uniform;
                keys.push((exponential(&mut rng) / w, i as u32));
            }
            keys.select_nth_unstable_by(n - 1, |a, b| a.0.total_cmp(&b.0));
            chosen.extend(keys[..n].iter().map(|k| k.1));
        } else {
            let mut attempts = 4 * n + 64;
            while chosen.len() < n && attempts > 0 {
                attempts -= 1;
                let i = if rng.random::<f64>() < explore {
                    rng.random_range(0..movies)
                } else {
                    let g = pick_cdf(&genre_cdf, rng.random::<f64>() * total);
                    let (start, end) = (self.genre_start[g], self.genre_start[g + 1]);
                    let k = start + rng.random_range(0..end - start);
                    if rng.random::<f64>() < self.alias_prob[k] {
                        self.members[k] as usize
                    } else {
                        self.members[start + self.alias[k] as usize] as usize
                    }
                };
                if scratch.seen.insert(i) {
                    chosen.push(i as u32);
                }
            }
            // Out of attempts (a narrow taste exhausted): fill uniformly.
            while chosen.len() < n {
                let i = rng.random_range(0..movies);
                if scratch.seen.insert(i) {
                    chosen.push(i as u32);
                }
            }
            for &i in chosen.iter() {
                scratch.seen.remove(i as usize);
            }
        }
        chosen.sort_unstable();

        // Activity window and session-shaped gaps, scaled to fit it.
        let start_year = pick_weighted(&START_YEAR_WEIGHTS, START_YEAR_WEIGHTS.iter().sum(), rng.random::<f64>());
        let year_start = jan_first(1996 + start_year as i64);
        let mut start = year_start + (rng.random::<f64>() * 365.0 * 86_400.0) as i64;
        // Median two days, a tail of years.
        let mut span = (2.0 * 86_400.0 * (2.5 * normal(&mut rng)).exp()) as i64;
        let min_span = 30 * n as i64;
        span = span.max(min_span).min(LAST_SECOND - FIRST_SECOND);
        start = start.min(LAST_SECOND - span).max(FIRST_SECOND);
        let half_stars = start >= HALF_STARS_FROM && rng.random::<f64>() < HALF_STAR_USERS;
        let gaps = &mut scratch.gaps;
        gaps.clear();
        let mut sum = 0.0;
        for _ in 0..n {
            let gap = if rng.random::<f64>() < 0.04 { 300.0 * exponential(&mut rng) } else { exponential(&mut rng) };
            sum += gap;
            gaps.push(sum);
        }
        let scale = if sum > 0.0 { (span - n as i64) as f64 / sum } else { 0.0 };

        let mut last = start - 1;
        let uid = i64::from(user);
        for (j, &i) in chosen.iter().enumerate() {
            let i = i as usize;
            let t = (start + (gaps[j] * scale) as i64 + j as i64).max(last + 1);
            last = t;
            let f = &self.movie_factors[i];
            let fit: f64 = (0..FACTORS).map(|k| taste[k] * f64::from(f[k])).sum();
            let mut score = GLOBAL_MEAN + bias + f64::from(self.movie_bias[i]) + fit + NOISE_SD * normal(&mut rng);
            if rng.random::<f64>() < LETDOWN_CHANCE {
                score -= LETDOWN_MEAN * exponential(&mut rng);
            }
            let steps =
                if half_stars { (score * 2.0).round().clamp(1.0, 10.0) } else { score.round().clamp(1.0, 5.0) * 2.0 };
            out.push(RatingRow { user_id: uid, movie_id: i as i64 + 1, rating: steps as f32 * 0.5, timestamp: t });
        }
    }

    /// One user's tags, on movies from `rated` (that user's ratings), sorted by movie id.
    fn user_tags(&self, user: u32, rated: &[RatingRow], out: &mut Vec<TagRow>) {
        out.clear();
        let t = self.tags_per_user[user as usize - 1] as usize;
        if t == 0 || rated.is_empty() {
            return;
        }
        let mut rng = Rng64::stream(self.cfg.seed, STREAM_USER_TAGS, u64::from(user));
        let per = MAX_TAGS_PER_MOVIE as usize;
        // About 1.6 tags per tagged movie, at most three.
        let m = (t as f64 / 1.6).ceil() as usize;
        let m = m.min(rated.len()).max(t.div_ceil(per));
        let mut picks: Vec<usize> = (0..rated.len()).collect();
        for j in 0..m {
            let k = rng.random_range(j..picks.len());
            picks.swap(j, k);
        }
        picks.truncate(m);
        picks.sort_unstable();
        let mut counts = vec![1usize; m];
        let mut extra = t - m;
        while extra > 0 {
            let j = rng.random_range(0..m);
            if counts[j] < per {
                counts[j] += 1;
                extra -= 1;
            }
        }
        let mut used: Vec<&str> = Vec::with_capacity(per);
        for (&r, &count) in picks.iter().zip(&counts) {
            let row = &rated[r];
            let genre = usize::from(self.movie_genre[row.movie_id as usize - 1]);
            used.clear();
            while used.len() < count {
                let tag = if rng.random::<f64>() < 0.7 {
                    let list = GENRE_TAGS[genre];
                    list[rng.random_range(0..list.len())]
                } else {
                    GENERIC_TAGS[rng.random_range(0..GENERIC_TAGS.len())]
                };
                if !used.contains(&tag) {
                    used.push(tag);
                }
            }
            for tag in &used {
                let delay = 1 + rng.random_range(0..600);
                out.push(TagRow {
                    user_id: row.user_id,
                    movie_id: row.movie_id,
                    tag: (*tag).to_owned(),
                    timestamp: (row.timestamp + delay).min(LAST_SECOND),
                });
            }
        }
    }
}

/// Per-iterator working memory, reused across users.
struct Scratch {
    seen: BitSet,
    chosen: Vec<u32>,
    gaps: Vec<f64>,
    keys: Vec<(f64, u32)>,
}

impl Scratch {
    fn new(movies: u32) -> Self {
        Self { seen: BitSet::new(movies as usize), chosen: Vec::new(), gaps: Vec::new(), keys: Vec::new() }
    }
}

struct BitSet(Vec<u64>);

impl BitSet {
    fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }
    /// Sets bit `i`; true if it was clear.
    fn insert(&mut self, i: usize) -> bool {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        let fresh = self.0[w] & b == 0;
        self.0[w] |= b;
        fresh
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1u64 << (i % 64));
    }
}

/// Shares `total` out in proportion to `weights`, each index getting at least `min[i]` and at
/// most `max[i]`; the caller guarantees `sum(min) <= total <= sum(max)` for indices with
/// positive weight (and `min` only on those). Deterministic.
fn allocate(total: u64, weights: &[f64], min: &[u32], max: &[u32]) -> Vec<u32> {
    let mut out: Vec<u32> = min.to_vec();
    let mut left = total - out.iter().map(|&x| u64::from(x)).sum::<u64>();
    // Proportional passes; capped indices drop out and their share goes round again.
    while left > 0 {
        let open = |out: &[u32], i: usize| weights[i] > 0.0 && out[i] < max[i];
        let weight: f64 = (0..out.len()).filter(|&i| open(&out, i)).map(|i| weights[i]).sum();
        if weight <= 0.0 {
            break;
        }
        let mut given = 0u64;
        for i in 0..out.len() {
            if !open(&out, i) {
                continue;
            }
            let share = (left as f64 * weights[i] / weight).floor() as u64;
            let give = share.min(u64::from(max[i] - out[i]));
            out[i] += give as u32;
            given += give;
        }
        left -= given;
        if given == 0 {
            break;
        }
    }
    // The rounding remainder, one each, heaviest first.
    if left > 0 {
        let mut order: Vec<usize> = (0..out.len()).filter(|&i| weights[i] > 0.0).collect();
        order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
        while left > 0 {
            let before = left;
            for &i in &order {
                if left == 0 {
                    break;
                }
                if out[i] < max[i] {
                    out[i] += 1;
                    left -= 1;
                }
            }
            assert!(left < before, "allocate: capacity below total (validated by the caller)");
        }
    }
    out
}

/// Vose's alias method: fills `prob` and `alias` (local indices) for drawing from `weights`.
fn build_alias(weights: &[f64], prob: &mut [f64], alias: &mut [u32]) {
    let n = weights.len();
    if n == 0 {
        return;
    }
    let total: f64 = weights.iter().sum();
    let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
    let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < 1.0);
    while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
        small.pop();
        prob[s] = scaled[s];
        alias[s] = l as u32;
        scaled[l] -= 1.0 - scaled[s];
        if scaled[l] < 1.0 {
            large.pop();
            small.push(l);
        }
    }
    for i in small.into_iter().chain(large) {
        prob[i] = 1.0;
        alias[i] = i as u32;
    }
}

/// Index `i` with `cdf[i-1] <= x < cdf[i]`.
fn pick_cdf(cdf: &[f64], x: f64) -> usize {
    cdf.iter().position(|&c| x < c).unwrap_or(cdf.len() - 1)
}

/// Index drawn in proportion to `weights` (summing to `total`) with `u` uniform in [0, 1).
fn pick_weighted(weights: &[f64], total: f64, u: f64) -> usize {
    let mut x = u * total;
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

fn normal(rng: &mut Rng64) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

fn exponential(rng: &mut Rng64) -> f64 {
    -(1.0 - rng.random::<f64>()).ln()
}

/// Unix seconds of January 1st of `year` (proleptic Gregorian, UTC).
fn jan_first(year: i64) -> i64 {
    let y = year - 1;
    let days = 365 * (y - 1969) + (y / 4 - 1969 / 4) - (y / 100 - 1969 / 100) + (y / 400 - 1969 / 400);
    days * 86_400
}

/// xoshiro256++ seeded through SplitMix64: small, fast, and fixed here so a seed means the
/// same data on every platform and `rand` release.
#[derive(Debug, Clone)]
struct Rng64 {
    s: [u64; 4],
}

impl Rng64 {
    /// The random stream for one purpose (`stream`) and one entity (`id`) under `seed`.
    fn stream(seed: u64, stream: u64, id: u64) -> Self {
        let mut x = splitmix(seed ^ splitmix(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ splitmix(id)));
        let mut s = [0u64; 4];
        for v in &mut s {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *v = splitmix(x);
        }
        Self { s }
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl RngCore for Rng64 {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// A CSV file being written (csv crate, LF line endings, quoting only where needed) under a
/// temporary name until [`CsvFile::finish`] renames it into place.
struct CsvFile {
    path: PathBuf,
    tmp: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
}

impl CsvFile {
    fn create(dir: &Path, name: &str, header: &[&str]) -> Result<Self, SyntheticError> {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.partial"));
        let file = File::create(&tmp).map_err(|source| SyntheticError::Io { path: tmp.clone(), source })?;
        let writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(BufWriter::with_capacity(1 << 20, file));
        let mut out = Self { path, tmp, writer };
        out.row(header)?;
        Ok(out)
    }

    fn row(&mut self, row: impl serde::Serialize) -> Result<(), SyntheticError> {
        self.writer.serialize(row).map_err(|source| SyntheticError::Csv { path: self.tmp.clone(), source })
    }

    /// Flushes, renames into place, returns the file's size.
    fn finish(mut self) -> Result<u64, SyntheticError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| SyntheticError::Io { path, source }
        };
        self.writer.flush().map_err(io(&self.tmp))?;
        drop(self.writer);
        fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        Ok(fs::metadata(&self.path).map_err(io(&self.path))?.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::release::{Release, valid_rating};

    /// Small enough for a debug build, big enough for shape checks.
    fn tiny() -> SyntheticConfig {
        SyntheticConfig { users: 120, movies: 2_000, ratings: 20_000, tags: 800, seed: 7 }
    }

    fn read_all(dir: &Path) -> (Vec<MovieRow>, Vec<RatingRow>, Vec<TagRow>, Vec<LinkRow>) {
        let release = Release::new(dir);
        let movies = release.movies().unwrap().collect::<Result<Vec<_>, _>>().unwrap();
        let ratings = release.ratings().unwrap().collect::<Result<Vec<_>, _>>().unwrap();
        let tags = release.tags().unwrap().collect::<Result<Vec<_>, _>>().unwrap();
        let links = release.links().unwrap().collect::<Result<Vec<_>, _>>().unwrap();
        (movies, ratings, tags, links)
    }

    #[test]
    fn same_seed_gives_same_rows_and_another_seed_does_not() {
        let cfg = tiny();
        let a: Vec<RatingRow> = ratings(&cfg).unwrap().collect();
        let b: Vec<RatingRow> = ratings(&cfg).unwrap().collect();
        assert_eq!(a, b);
        let c: Vec<RatingRow> = ratings(&cfg.with_seed(8)).unwrap().collect();
        assert_ne!(a, c);
        let t1: Vec<TagRow> = tags(&cfg).unwrap().collect();
        let t2: Vec<TagRow> = tags(&cfg).unwrap().collect();
        assert_eq!(t1, t2);
        assert_eq!(movies(&cfg).unwrap().collect::<Vec<_>>(), movies(&cfg).unwrap().collect::<Vec<_>>());
    }

    #[test]
    fn same_config_writes_the_same_bytes() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_release(&tiny(), a.path()).unwrap();
        write_release(&tiny(), b.path()).unwrap();
        for name in ["movies.csv", "ratings.csv", "tags.csv", "links.csv"] {
            assert_eq!(fs::read(a.path().join(name)).unwrap(), fs::read(b.path().join(name)).unwrap(), "{name}");
        }
    }

    #[test]
    fn small_config_round_trips_through_the_files() {
        let cfg = SyntheticConfig::small();
        let dir = tempfile::tempdir().unwrap();
        let summary = write_release(&cfg, dir.path()).unwrap();
        assert_eq!(
            (summary.movies, summary.ratings, summary.tags, summary.links),
            (u64::from(cfg.movies), cfg.ratings, cfg.tags, u64::from(cfg.movies))
        );
        let (m, r, t, l) = read_all(dir.path());
        assert_eq!(m, movies(&cfg).unwrap().collect::<Vec<_>>());
        assert_eq!(r, ratings(&cfg).unwrap().collect::<Vec<_>>());
        assert_eq!(t, tags(&cfg).unwrap().collect::<Vec<_>>());
        assert_eq!(l, links(&cfg).unwrap().collect::<Vec<_>>());
        assert_eq!(r.iter().map(|x| x.user_id).collect::<HashSet<_>>().len(), cfg.users as usize);
        // Some titles need quoting, and they came back whole.
        assert!(m.iter().any(|x| x.title.contains(", The (")));
        assert!(m.iter().any(|x| x.title.contains('"')));
        assert!(t.iter().any(|x| x.tag.contains(',')));
    }

    #[test]
    fn files_have_movielens_headers_and_lf_line_endings() {
        let dir = tempfile::tempdir().unwrap();
        write_release(&tiny(), dir.path()).unwrap();
        for (name, header) in [
            ("movies.csv", "movieId,title,genres\n"),
            ("ratings.csv", "userId,movieId,rating,timestamp\n"),
            ("tags.csv", "userId,movieId,tag,timestamp\n"),
            ("links.csv", "movieId,imdbId,tmdbId\n"),
        ] {
            let text = fs::read_to_string(dir.path().join(name)).unwrap();
            assert!(text.starts_with(header), "{name}");
            assert!(!text.contains('\r'), "{name}");
            assert!(text.ends_with('\n'), "{name}");
        }
        let ratings = fs::read_to_string(dir.path().join("ratings.csv")).unwrap();
        let rating = ratings.lines().nth(1).unwrap().split(',').nth(2).unwrap();
        assert!(RATING_TEXT.contains(&rating), "{rating}");
        // No temporary files left behind.
        assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')));
    }

    #[test]
    fn ratings_are_sorted_unique_per_user_and_in_time_order() {
        let cfg = tiny();
        let rows: Vec<RatingRow> = ratings(&cfg).unwrap().collect();
        assert_eq!(rows.len() as u64, cfg.ratings);
        let min = cfg.min_ratings_per_user();
        let mut per_user: HashMap<i64, u32> = HashMap::new();
        for pair in rows.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!((a.user_id, a.movie_id) < (b.user_id, b.movie_id), "{a:?} then {b:?}");
            if a.user_id == b.user_id {
                assert!(a.timestamp < b.timestamp, "{a:?} then {b:?}");
            }
        }
        for r in &rows {
            assert!((1..=i64::from(cfg.users)).contains(&r.user_id));
            assert!((1..=i64::from(cfg.movies)).contains(&r.movie_id));
            assert!((FIRST_SECOND..=LAST_SECOND).contains(&r.timestamp));
            *per_user.entry(r.user_id).or_default() += 1;
        }
        assert_eq!(per_user.len(), cfg.users as usize);
        assert!(per_user.values().all(|&n| n >= min), "min {min}");
    }

    #[test]
    fn ratings_look_like_movielens_ratings() {
        let rows: Vec<RatingRow> = ratings(&SyntheticConfig::small()).unwrap().collect();
        assert!(rows.iter().all(|r| valid_rating(r.rating)));
        let mean = rows.iter().map(|r| f64::from(r.rating)).sum::<f64>() / rows.len() as f64;
        assert!((3.35..=3.65).contains(&mean), "mean {mean}");
        let mut counts = [0usize; 10];
        for r in &rows {
            counts[(r.rating * 2.0) as usize - 1] += 1;
        }
        let mode = (0..10).max_by_key(|&i| counts[i]).unwrap();
        assert_eq!(RATING_TEXT[mode], "4.0", "{counts:?}");
        // Both whole-star-only and half-star users exist.
        assert!(counts[6] > rows.len() / 20 && counts[5] > counts[6]);
    }

    #[test]
    fn popularity_and_activity_are_long_tailed() {
        let cfg = SyntheticConfig::small();
        let rows: Vec<RatingRow> = ratings(&cfg).unwrap().collect();
        let mut per_movie = vec![0u64; cfg.movies as usize];
        let mut per_user = vec![0u64; cfg.users as usize];
        for r in &rows {
            per_movie[r.movie_id as usize - 1] += 1;
            per_user[r.user_id as usize - 1] += 1;
        }
        per_movie.sort_unstable_by(|a, b| b.cmp(a));
        let top1: u64 = per_movie[..per_movie.len() / 100].iter().sum();
        let top10: u64 = per_movie[..per_movie.len() / 10].iter().sum();
        // ml-latest-small: 16% and 60%.
        assert!(top1 as f64 > 0.12 * rows.len() as f64, "top 1% hold {top1}");
        assert!(top10 as f64 > 0.5 * rows.len() as f64, "top 10% hold {top10}");
        let singles = per_movie.iter().filter(|&&c| c == 1).count();
        assert!(singles > per_movie.len() / 10, "{singles} movies with one rating");
        per_user.sort_unstable();
        let median = per_user[per_user.len() / 2];
        let max = *per_user.last().unwrap();
        assert!((40..=120).contains(&median) && max > 10 * median, "median {median}, max {max}");
    }

    #[test]
    fn ratings_have_structure_a_recommender_can_learn() {
        // Hold out every fifth rating; user and movie means must beat the global mean clearly.
        let rows: Vec<RatingRow> = ratings(&SyntheticConfig::small()).unwrap().collect();
        let (train, test): (Vec<_>, Vec<_>) = rows.iter().enumerate().partition(|(i, _)| i % 5 != 0);
        let mean = train.iter().map(|(_, r)| f64::from(r.rating)).sum::<f64>() / train.len() as f64;
        let damped = |sums: &HashMap<i64, (f64, f64)>, id: i64| sums.get(&id).map_or(0.0, |&(s, n)| s / (n + 10.0));
        let mut by_movie: HashMap<i64, (f64, f64)> = HashMap::new();
        for (_, r) in &train {
            let e = by_movie.entry(r.movie_id).or_default();
            e.0 += f64::from(r.rating) - mean;
            e.1 += 1.0;
        }
        let mut by_user: HashMap<i64, (f64, f64)> = HashMap::new();
        for (_, r) in &train {
            let e = by_user.entry(r.user_id).or_default();
            e.0 += f64::from(r.rating) - mean - damped(&by_movie, r.movie_id);
            e.1 += 1.0;
        }
        let rmse = |predict: &dyn Fn(&RatingRow) -> f64| {
            (test.iter().map(|(_, r)| (predict(r) - f64::from(r.rating)).powi(2)).sum::<f64>() / test.len() as f64)
                .sqrt()
        };
        let global = rmse(&|_| mean);
        let biased = rmse(&|r| mean + damped(&by_movie, r.movie_id) + damped(&by_user, r.user_id));
        assert!(biased < global - 0.08, "global {global:.3}, biases {biased:.3}");
    }

    #[test]
    fn tags_sit_on_rated_movies_after_the_rating() {
        let cfg = tiny();
        let rated: HashMap<(i64, i64), i64> =
            ratings(&cfg).unwrap().map(|r| ((r.user_id, r.movie_id), r.timestamp)).collect();
        let rows: Vec<TagRow> = tags(&cfg).unwrap().collect();
        assert_eq!(rows.len() as u64, cfg.tags);
        let mut per_pair: HashMap<(i64, i64), HashSet<&str>> = HashMap::new();
        for t in &rows {
            let at = rated.get(&(t.user_id, t.movie_id)).expect("tag on a rated movie");
            assert!(t.timestamp > *at);
            assert!(per_pair.entry((t.user_id, t.movie_id)).or_default().insert(&t.tag), "repeated tag");
        }
        assert!(per_pair.values().all(|s| s.len() <= MAX_TAGS_PER_MOVIE as usize));
        assert!(rows.windows(2).all(|w| (w[0].user_id, w[0].movie_id) <= (w[1].user_id, w[1].movie_id)));
        let taggers = rows.iter().map(|t| t.user_id).collect::<HashSet<_>>().len();
        assert!(taggers < cfg.users as usize / 3, "{taggers} taggers");
    }

    #[test]
    fn movies_have_years_and_one_to_three_movielens_genres() {
        let links: Vec<LinkRow> = links(&tiny()).unwrap().collect();
        for m in movies(&tiny()).unwrap() {
            assert!((1..=3).contains(&m.genres.len()), "{m:?}");
            assert!(m.genres.iter().all(|g| GENRES.contains(&g.as_str())));
            assert!(m.genres.windows(2).all(|w| w[0] < w[1]), "sorted, distinct: {m:?}");
            let year: u32 = m.title[m.title.len() - 5..m.title.len() - 1].parse().unwrap();
            assert!((1902..=2023).contains(&year), "{m:?}");
        }
        assert!(links.iter().all(|l| l.imdb_id.len() == 7));
        assert_eq!(links.iter().map(|l| &l.imdb_id).collect::<HashSet<_>>().len(), links.len());
        let tmdb: Vec<i64> = links.iter().filter_map(|l| l.tmdb_id).collect();
        assert_eq!(tmdb.iter().collect::<HashSet<_>>().len(), tmdb.len());
        let small: Vec<LinkRow> = super::links(&SyntheticConfig::small()).unwrap().collect();
        assert!(small.iter().any(|l| l.tmdb_id.is_none()));
    }

    #[test]
    fn dense_and_tiny_configs_work() {
        for cfg in [
            SyntheticConfig { users: 3, movies: 5, ratings: 15, tags: 45, seed: 1 },
            SyntheticConfig { users: 1, movies: 1, ratings: 1, tags: 0, seed: 1 },
            SyntheticConfig { users: 50, movies: 40, ratings: 1_000, tags: 10, seed: 1 },
        ] {
            let dir = tempfile::tempdir().unwrap();
            write_release(&cfg, dir.path()).unwrap();
            let (m, r, t, l) = read_all(dir.path());
            assert_eq!(
                (m.len() as u32, r.len() as u64, t.len() as u64, l.len() as u32),
                (cfg.movies, cfg.ratings, cfg.tags, cfg.movies)
            );
            assert_eq!(r.iter().map(|x| (x.user_id, x.movie_id)).collect::<HashSet<_>>().len(), r.len());
        }
    }

    #[test]
    fn impossible_configs_are_rejected() {
        let ok = tiny();
        for bad in [
            SyntheticConfig { users: 0, ..ok },
            SyntheticConfig { movies: 0, ..ok },
            SyntheticConfig { ratings: 119, ..ok },
            SyntheticConfig { ratings: 120 * 2_000 + 1, ..ok },
            SyntheticConfig { tags: 3 * 20_000 + 1, ..ok },
        ] {
            assert!(matches!(ratings(&bad), Err(SyntheticError::Config(_))), "{bad:?}");
            assert!(write_release(&bad, Path::new("/nonexistent/never-created")).is_err());
        }
    }

    #[test]
    fn scaled_configs_follow_movielens_sizes() {
        let near = |a: u64, b: u64| (a as f64 / b as f64 - 1.0).abs() < 0.05;
        for (scaled, real) in [
            (SyntheticConfig::scaled(100_836), SyntheticConfig::small()),
            (SyntheticConfig::scaled(25_000_095), SyntheticConfig::ml_25m()),
        ] {
            assert_eq!(scaled.ratings, real.ratings);
            assert!(near(u64::from(scaled.movies), u64::from(real.movies)), "{scaled:?}");
            assert!(near(u64::from(scaled.users), u64::from(real.users)), "{scaled:?}");
            assert!(scaled.validate().is_ok());
        }
        for n in [1, 10, 1_000, 1_000_000] {
            SyntheticConfig::scaled(n).validate().unwrap();
        }
    }

    #[test]
    fn allocate_meets_total_minimum_and_cap() {
        let weights = [5.0, 1.0, 0.0, 100.0, 0.5];
        let out = allocate(60, &weights, &[1, 1, 0, 1, 1], &[30, 30, 30, 20, 30]);
        assert_eq!(out.iter().map(|&x| u64::from(x)).sum::<u64>(), 60);
        assert_eq!(out[2], 0);
        assert_eq!(out[3], 20);
        assert!(out.iter().zip([1, 1, 0, 1, 1]).all(|(&x, m)| x >= m));
    }

    #[test]
    fn jan_first_matches_known_instants() {
        assert_eq!(jan_first(1970), 0);
        assert_eq!(jan_first(1996), FIRST_SECOND);
        assert_eq!(jan_first(2024) - 1, LAST_SECOND);
        assert_eq!(jan_first(2001), 978_307_200);
    }
}
