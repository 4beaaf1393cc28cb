//! The catalogue as the data API serves it. Field names follow MovieLens' CSV headers
//! (`movieId`, `userId`, `imdbId`, ...), which is the contract analysts' SDKs expect.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A movie in a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Movie {
    /// MovieLens movie id.
    pub movie_id: i64,
    /// Title with the year in parentheses, e.g. "Toy Story (1995)".
    pub title: String,
    /// `|`-separated genres as in movies.csv, or "(no genres listed)".
    pub genres: String,
}

/// One user's rating of one movie.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rating {
    /// MovieLens user id.
    pub user_id: i64,
    /// MovieLens movie id.
    pub movie_id: i64,
    /// 0.5 to 5.0 in half-star steps.
    pub rating: f64,
    /// Unix seconds.
    pub timestamp: i64,
}

/// One user's free-text tag on one movie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    /// MovieLens user id.
    pub user_id: i64,
    /// MovieLens movie id.
    pub movie_id: i64,
    /// The tag text.
    pub tag: String,
    /// Unix seconds.
    pub timestamp: i64,
}

/// A movie's ids on IMDb and TMDb.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// MovieLens movie id.
    pub movie_id: i64,
    /// IMDb id without "tt", leading zeros kept (e.g. "0114709").
    pub imdb_id: String,
    /// TMDb id; null for the few movies TMDb does not list.
    pub tmdb_id: Option<i64>,
}

/// The external ids embedded in a movie's detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkIds {
    /// IMDb id without "tt", leading zeros kept.
    pub imdb_id: String,
    /// TMDb id, or null.
    pub tmdb_id: Option<i64>,
}

/// A movie with everything known about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MovieDetail {
    /// MovieLens movie id.
    pub movie_id: i64,
    /// Title with the year in parentheses.
    pub title: String,
    /// `|`-separated genres.
    pub genres: String,
    /// Every rating of the movie, by userId.
    pub ratings: Vec<Rating>,
    /// Every tag on the movie, by userId then tag.
    pub tags: Vec<Tag>,
    /// External ids, or null when links.csv has none.
    pub link: Option<LinkIds>,
}

/// How many ratings carry each star value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RatingBucket {
    /// The star value, 0.5 to 5.0.
    pub rating: f64,
    /// Ratings with that value.
    pub count: i64,
}

/// Rating activity in one calendar year (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct YearStats {
    /// Calendar year.
    pub year: i64,
    /// Ratings made that year.
    pub count: i64,
    /// Their mean.
    pub mean_rating: f64,
}

/// How popular and how liked a genre is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GenreStats {
    /// Genre name as in movies.csv.
    pub genre: String,
    /// Movies carrying the genre.
    pub movie_count: i64,
    /// Ratings of those movies.
    pub rating_count: i64,
    /// Mean of those ratings (null when none).
    pub mean_rating: Option<f64>,
}

/// A movie ranked by its ratings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MovieStats {
    /// MovieLens movie id.
    pub movie_id: i64,
    /// Title.
    pub title: String,
    /// Number of ratings.
    #[serde(rename = "rating_count")]
    pub rating_count: i64,
    /// Mean rating.
    #[serde(rename = "mean_rating")]
    pub mean_rating: f64,
}

/// Catalogue-wide figures and the insights an analyst asks for next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Analytics {
    /// Movies in the catalogue.
    pub movie_count: i64,
    /// Ratings stored.
    pub rating_count: i64,
    /// Tags stored.
    pub tag_count: i64,
    /// Links stored.
    pub link_count: i64,
    /// Distinct users who rated.
    pub user_count: i64,
    /// Distinct movies with at least one rating.
    pub rated_movie_count: i64,
    /// Mean of all ratings (null when there are none).
    pub mean_rating: Option<f64>,
    /// Ratings per star value, ascending.
    pub rating_distribution: Vec<RatingBucket>,
    /// Ratings per calendar year, ascending.
    pub ratings_per_year: Vec<YearStats>,
    /// Per-genre popularity and mean rating, most-rated first.
    pub genres: Vec<GenreStats>,
    /// The most-rated movies, most first.
    pub most_rated: Vec<MovieStats>,
    /// The best-rated movies among those with at least `min_ratings` ratings.
    pub best_rated: Vec<MovieStats>,
    /// The minimum rating count for `best_rated`.
    pub min_ratings: i64,
    /// Unix seconds when these figures were computed (they are cached briefly).
    pub computed_at: i64,
}

/// What `GET /` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// "ok" when the store answers.
    pub status: String,
    /// The service's version.
    pub version: String,
    /// "sqlite" or "postgres".
    pub database: String,
}
