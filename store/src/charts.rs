//! Rating aggregates for the web interface's charts: one pass per grouping over `ratings`,
//! read by the serving side in the background and kept in memory, so pages never scan.

use schemas::charts::{MonthStats, MovieCharts};
use schemas::{RatingBucket, YearStats};
use sqlx::AssertSqlSafe;

use crate::{Backend, Store, StoreError};

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
    /// Ratings in the day before `latest`.
    pub last_day: i64,
}

/// SQL for a rating's calendar year (UTC) from its epoch-seconds `timestamp`.
pub(crate) fn year_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "CAST(strftime('%Y', timestamp, 'unixepoch') AS INTEGER)",
        Backend::Postgres => "CAST(EXTRACT(YEAR FROM to_timestamp(timestamp) AT TIME ZONE 'UTC') AS BIGINT)",
    }
}

fn month_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "strftime('%Y-%m', timestamp, 'unixepoch')",
        Backend::Postgres => "to_char(to_timestamp(timestamp) AT TIME ZONE 'UTC', 'YYYY-MM')",
    }
}

impl Store {
    /// Ratings per month, per movie and year, and the last day's count. Scans every rating
    /// twice: callers keep the result and refresh it in the background.
    ///
    /// # Errors
    /// A database error.
    pub async fn rating_aggregates(&self) -> Result<RatingAggregates, StoreError> {
        let months_sql = format!(
            "SELECT {m} AS m, COUNT(*), AVG(rating) FROM ratings GROUP BY m ORDER BY m",
            m = month_sql(self.backend())
        );
        let movie_years_sql = format!(
            "SELECT movie_id, {y} AS y, COUNT(*), SUM(rating) FROM ratings GROUP BY movie_id, y",
            y = year_sql(self.backend())
        );
        let (months, movie_years, latest) = crate::pool::with_pool!(self, |pool| {
            let months: Vec<(String, i64, f64)> = sqlx::query_as(AssertSqlSafe(months_sql)).fetch_all(pool).await?;
            let movie_years: Vec<(i64, i64, i64, f64)> =
                sqlx::query_as(AssertSqlSafe(movie_years_sql)).fetch_all(pool).await?;
            let latest: (Option<i64>,) = sqlx::query_as("SELECT MAX(timestamp) FROM ratings").fetch_one(pool).await?;
            Ok::<_, sqlx::Error>((months, movie_years, latest.0))
        })?;
        let last_day = match latest {
            Some(latest) => {
                crate::pool::with_pool!(self, |pool| {
                    sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM ratings WHERE timestamp > $1")
                        .bind(latest - 86_400)
                        .fetch_one(pool)
                        .await
                })?
                .0
            }
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

    /// One movie's rating histogram and ratings per year (through the by-movie index).
    ///
    /// # Errors
    /// A database error.
    pub async fn movie_charts(&self, movie_id: i64) -> Result<MovieCharts, StoreError> {
        let per_year_sql = format!(
            "SELECT {y} AS y, COUNT(*), AVG(rating) FROM ratings WHERE movie_id = $1 GROUP BY y ORDER BY y",
            y = year_sql(self.backend())
        );
        let (histogram, per_year) = crate::pool::with_pool!(self, |pool| {
            let histogram: Vec<(f64, i64)> = sqlx::query_as(
                "SELECT rating, COUNT(*) FROM ratings WHERE movie_id = $1 GROUP BY rating ORDER BY rating",
            )
            .bind(movie_id)
            .fetch_all(pool)
            .await?;
            let per_year: Vec<(i64, i64, f64)> =
                sqlx::query_as(AssertSqlSafe(per_year_sql)).bind(movie_id).fetch_all(pool).await?;
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
