//! Rating aggregates for the web interface's charts, read from the rating summaries the
//! writers keep (migration 0003, [`crate::summary`] on SQLite); the serving side keeps them in
//! memory and refreshes them in the background, so pages never touch `ratings`.

use schemas::charts::{MonthStats, MovieCharts};
use schemas::{RatingBucket, YearStats};

use crate::{Store, StoreError};

/// Ratings of one movie in one calendar year (UTC).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MovieYear {
    /// MovieLens movie id.
    pub movie_id: i64,
    /// Calendar year.
    pub year: i64,
    /// Ratings that year.
    pub count: i64,
    /// Their sum (sums add up across groupings; means do not).
    pub sum: f64,
}

/// Everything the charts derive from the whole rating history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RatingAggregates {
    /// Ratings per calendar month, ascending.
    pub months: Vec<MonthStats>,
    /// Ratings per movie and year: per-movie totals and per-genre years sum these.
    pub movie_years: Vec<MovieYear>,
    /// The newest rating's timestamp (the stream's "now"), if any.
    pub latest: Option<i64>,
    /// Ratings in the 24 whole hours (UTC) up to and including `latest`'s hour.
    pub last_day: i64,
}

impl Store {
    /// Ratings per month, per movie and year, the newest rating's time and the last day's
    /// count, read from the rating summaries (no scan of `ratings`).
    ///
    /// # Errors
    /// A database error.
    pub async fn rating_aggregates(&self) -> Result<RatingAggregates, StoreError> {
        let (months, movie_years, latest) = crate::pool::with_pool!(self, |pool| {
            let months: Vec<(String, i64, f64)> = sqlx::query_as(
                "SELECT month, rating_count, rating_sum / rating_count FROM rating_months \
                 WHERE rating_count > 0 ORDER BY month",
            )
            .fetch_all(pool)
            .await?;
            let movie_years: Vec<(i64, i64, i64, f64)> = sqlx::query_as(
                "SELECT movie_id, year, rating_count, rating_sum FROM movie_years WHERE rating_count > 0",
            )
            .fetch_all(pool)
            .await?;
            // The newest hour with a count holds the newest rating (see migration 0003).
            let latest: Option<i64> =
                sqlx::query_scalar("SELECT latest FROM rating_hours WHERE rating_count > 0 ORDER BY hour DESC LIMIT 1")
                    .fetch_optional(pool)
                    .await?;
            Ok::<_, sqlx::Error>((months, movie_years, latest))
        })?;
        let last_day = match latest {
            Some(latest) => crate::pool::with_pool!(self, |pool| {
                sqlx::query_as::<_, (Option<i64>,)>(
                    "SELECT CAST(SUM(rating_count) AS BIGINT) FROM rating_hours WHERE hour > $1 AND hour <= $2",
                )
                .bind(latest / 3600 - 24)
                .bind(latest / 3600)
                .fetch_one(pool)
                .await
            })?
            .0
            .unwrap_or_default(),
            None => 0,
        };
        Ok(RatingAggregates {
            months: months
                .into_iter()
                .map(|(month, count, mean_rating)| MonthStats { month, count, mean_rating })
                .collect(),
            movie_years: movie_years
                .into_iter()
                .map(|(movie_id, year, count, sum)| MovieYear { movie_id, year, count, sum })
                .collect(),
            latest,
            last_day,
        })
    }

    /// One movie's rating histogram and ratings per year, from the rating summaries.
    ///
    /// # Errors
    /// A database error.
    pub async fn movie_charts(&self, movie_id: i64) -> Result<MovieCharts, StoreError> {
        let (histogram, per_year) = crate::pool::with_pool!(self, |pool| {
            let histogram: Vec<(f64, i64)> = sqlx::query_as(
                "SELECT rating, rating_count FROM movie_rating_counts \
                 WHERE movie_id = $1 AND rating_count > 0 ORDER BY rating",
            )
            .bind(movie_id)
            .fetch_all(pool)
            .await?;
            let per_year: Vec<(i64, i64, f64)> = sqlx::query_as(
                "SELECT year, rating_count, rating_sum / rating_count FROM movie_years \
                 WHERE movie_id = $1 AND rating_count > 0 ORDER BY year",
            )
            .bind(movie_id)
            .fetch_all(pool)
            .await?;
            Ok::<_, sqlx::Error>((histogram, per_year))
        })?;
        let rating_count: i64 = histogram.iter().map(|h| h.1).sum();
        let sum: f64 = histogram.iter().map(|h| h.0 * h.1 as f64).sum();
        Ok(MovieCharts {
            movie_id,
            rating_count,
            mean_rating: (rating_count > 0).then(|| sum / rating_count as f64),
            histogram: histogram.into_iter().map(|(rating, count)| RatingBucket { rating, count }).collect(),
            per_year: per_year
                .into_iter()
                .map(|(year, count, mean_rating)| YearStats { year, count, mean_rating })
                .collect(),
        })
    }
}
