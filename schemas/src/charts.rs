//! The chart series behind the web interface, also served as JSON under `/charts/...` so SDKs
//! and notebooks draw the same figures.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{GenreStats, MovieStats, RatingBucket, YearStats};

/// Rating activity in one calendar month (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonthStats {
    /// `YYYY-MM`.
    pub month: String,
    /// Ratings made that month.
    pub count: i64,
    /// Their mean.
    pub mean_rating: f64,
}

/// One genre's ratings in one calendar year (UTC), by the rating's timestamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenreYearStats {
    /// Genre name as in movies.csv.
    pub genre: String,
    /// Calendar year.
    pub year: i64,
    /// Ratings of the genre's movies made that year.
    pub count: i64,
    /// Their mean.
    pub mean_rating: f64,
}

/// `GET /charts/genres`: popularity and mean rating per genre, and both per year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenreCharts {
    /// Per genre over the whole history, most-rated first.
    pub genres: Vec<GenreStats>,
    /// Per genre and year, by genre then year.
    pub by_year: Vec<GenreYearStats>,
}

/// `GET /charts/top-movies`: the most-rated and the best-rated movies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopMovies {
    /// Most ratings first.
    pub most_rated: Vec<MovieStats>,
    /// Highest mean first, among movies with at least `minRatings` ratings.
    pub best_rated: Vec<MovieStats>,
    /// The rating count a movie needs to be among the best rated.
    pub min_ratings: i64,
}

/// `GET /charts/movies/{movieId}`: one movie's rating histogram and ratings per year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MovieCharts {
    /// MovieLens movie id.
    pub movie_id: i64,
    /// Ratings of the movie.
    pub rating_count: i64,
    /// Their mean (null without ratings).
    pub mean_rating: Option<f64>,
    /// Ratings per star value, ascending.
    pub histogram: Vec<RatingBucket>,
    /// Ratings per calendar year, ascending.
    pub per_year: Vec<YearStats>,
}
