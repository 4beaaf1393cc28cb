//! The read side of the catalogue: what the data API lists and looks up.

use schemas::{
    Analytics, GenreStats, Link, LinkIds, Movie, MovieDetail, MovieStats, Rating, RatingBucket, Tag, YearStats,
};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::pool::{Arg, bind_args, with_pool};
use crate::{Store, StoreError};

/// Offset pagination; validated by the caller (the API caps `limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub skip: i64,
    /// Rows to return at most.
    pub limit: i64,
}

/// Filters for [`Store::movies`].
#[derive(Debug, Clone, Default)]
pub struct MovieQuery {
    /// Case-insensitive substring of the title.
    pub title: Option<String>,
    /// Case-insensitive genre name.
    pub genre: Option<String>,
}

/// Filters for [`Store::ratings`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RatingQuery {
    /// Only this movie's ratings.
    pub movie_id: Option<i64>,
    /// Only this user's ratings.
    pub user_id: Option<i64>,
    /// Only ratings at or above this value.
    pub min_rating: Option<f64>,
}

/// Filters for [`Store::tags`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TagQuery {
    /// Only this movie's tags.
    pub movie_id: Option<i64>,
    /// Only this user's tags.
    pub user_id: Option<i64>,
}

/// Builds `WHERE a AND b ...` with `$N` placeholders numbered in bind order.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

impl Filter {
    /// `user_id = ?` and `movie_id = ?` for the ids given (ratings and tags).
    fn of_user_movie(user_id: Option<i64>, movie_id: Option<i64>) -> Self {
        let mut filter = Self::default();
        for (clause, id) in [("user_id = ?", user_id), ("movie_id = ?", movie_id)] {
            if let Some(id) = id {
                filter.push(clause, Arg::Int(id));
            }
        }
        filter
    }

    /// Adds a clause whose single `?` becomes the next `$N`.
    fn push(&mut self, clause: &str, arg: Arg) {
        self.args.push(arg);
        self.clauses.push(clause.replace('?', &format!("${}", self.args.len())));
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!(" WHERE {}", self.clauses.join(" AND ")) }
    }

    /// Appends `LIMIT/OFFSET` as the last two placeholders.
    fn paged(mut self, head: &str, order: &str, page: Page) -> (String, Vec<Arg>) {
        let n = self.args.len();
        let sql = format!("{head}{} ORDER BY {order} LIMIT ${} OFFSET ${}", self.sql(), n + 1, n + 2);
        self.args.push(Arg::Int(page.limit));
        self.args.push(Arg::Int(page.skip));
        (sql, self.args)
    }
}

/// Escapes LIKE wildcards so user text matches literally.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

type RatingTuple = (i64, i64, f64, i64);
type TagTuple = (i64, i64, String, i64);

fn rating((user_id, movie_id, rating, timestamp): RatingTuple) -> Rating {
    Rating { user_id, movie_id, rating, timestamp }
}

fn tag((user_id, movie_id, tag, timestamp): TagTuple) -> Tag {
    Tag { user_id, movie_id, tag, timestamp }
}

fn link((movie_id, imdb_id, tmdb_id): (i64, String, Option<i64>)) -> Link {
    Link { movie_id, imdb_id, tmdb_id }
}

impl Store {
    /// The rows of a query built at run time, with its arguments.
    async fn fetch_all<T>(&self, sql: String, args: &[Arg]) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        Ok(with_pool!(self, |pool| bind_args(sqlx::query_as(AssertSqlSafe(sql)), args).fetch_all(pool).await)?)
    }

    /// Movies by id, optionally filtered by title substring and genre.
    ///
    /// # Errors
    /// A database error.
    pub async fn movies(&self, query: &MovieQuery, page: Page) -> Result<Vec<Movie>, StoreError> {
        let mut filter = Filter::default();
        if let Some(title) = &query.title {
            filter.push("m.title_key LIKE ? ESCAPE '\\'", Arg::Text(like_pattern(title)));
        }
        if let Some(genre) = &query.genre {
            filter.push(
                "m.movie_id IN (SELECT g.movie_id FROM movie_genres g WHERE lower(g.genre) = ?)",
                Arg::Text(genre.to_lowercase()),
            );
        }
        let (sql, args) = filter.paged("SELECT m.movie_id, m.title, m.genres FROM movies m", "m.movie_id", page);
        let rows: Vec<(i64, String, String)> = self.fetch_all(sql, &args).await?;
        Ok(rows.into_iter().map(|(movie_id, title, genres)| Movie { movie_id, title, genres }).collect())
    }

    /// Every rating as `(userId, movieId, rating, timestamp)`, streamed in storage order
    /// without the API's ordering: what a full retrain reads.
    ///
    /// # Errors
    /// A database error.
    pub async fn all_ratings(&self) -> Result<Vec<(i64, i64, f32, i64)>, StoreError> {
        use futures::TryStreamExt;
        let sql = "SELECT user_id, movie_id, rating, timestamp FROM ratings";
        let mut out = Vec::new();
        with_pool!(self, |pool| {
            let mut rows = sqlx::query_as::<_, (i64, i64, f64, i64)>(sql).fetch(pool);
            while let Some((u, m, r, t)) = rows.try_next().await? {
                out.push((u, m, r as f32, t));
            }
            Ok::<(), sqlx::Error>(())
        })?;
        Ok(out)
    }

    /// One movie without its ratings and tags.
    ///
    /// # Errors
    /// A database error.
    pub async fn movie(&self, movie_id: i64) -> Result<Option<Movie>, StoreError> {
        let row: Option<(i64, String, String)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT movie_id, title, genres FROM movies WHERE movie_id = $1")
                .bind(movie_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|(movie_id, title, genres)| Movie { movie_id, title, genres }))
    }

    /// One movie with all its ratings, tags and link. The movie and its link come in one
    /// query; ratings and tags are fetched concurrently on two connections.
    ///
    /// # Errors
    /// A database error.
    pub async fn movie_detail(&self, movie_id: i64) -> Result<Option<MovieDetail>, StoreError> {
        type Head = (String, String, Option<String>, Option<i64>);
        let head: Option<Head> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT m.title, m.genres, l.imdb_id, l.tmdb_id FROM movies m \
                 LEFT JOIN links l ON l.movie_id = m.movie_id WHERE m.movie_id = $1",
            )
            .bind(movie_id)
            .fetch_optional(pool)
            .await
        })?;
        let Some((title, genres, imdb_id, tmdb_id)) = head else {
            return Ok(None);
        };
        let all = Page { skip: 0, limit: i64::MAX };
        let rating_query = RatingQuery { movie_id: Some(movie_id), ..Default::default() };
        let tag_query = TagQuery { movie_id: Some(movie_id), ..Default::default() };
        let (ratings, tags) = tokio::try_join!(self.ratings(&rating_query, all), self.tags(&tag_query, all))?;
        let link = imdb_id.map(|imdb_id| LinkIds { imdb_id, tmdb_id });
        Ok(Some(MovieDetail { movie_id, title, genres, ratings, tags, link }))
    }

    /// Ratings ordered by (userId, movieId).
    ///
    /// # Errors
    /// A database error.
    pub async fn ratings(&self, query: &RatingQuery, page: Page) -> Result<Vec<Rating>, StoreError> {
        let mut filter = Filter::of_user_movie(query.user_id, query.movie_id);
        if let Some(min) = query.min_rating {
            filter.push("rating >= ?", Arg::Real(min));
        }
        let (sql, args) =
            filter.paged("SELECT user_id, movie_id, rating, timestamp FROM ratings", "user_id, movie_id", page);
        let rows: Vec<RatingTuple> = self.fetch_all(sql, &args).await?;
        Ok(rows.into_iter().map(rating).collect())
    }

    /// One rating.
    ///
    /// # Errors
    /// A database error.
    pub async fn rating(&self, user_id: i64, movie_id: i64) -> Result<Option<Rating>, StoreError> {
        let row: Option<RatingTuple> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, movie_id, rating, timestamp FROM ratings WHERE user_id = $1 AND movie_id = $2",
            )
            .bind(user_id)
            .bind(movie_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(rating))
    }

    /// Tags ordered by (userId, movieId, tag).
    ///
    /// # Errors
    /// A database error.
    pub async fn tags(&self, query: &TagQuery, page: Page) -> Result<Vec<Tag>, StoreError> {
        let filter = Filter::of_user_movie(query.user_id, query.movie_id);
        let (sql, args) =
            filter.paged("SELECT user_id, movie_id, tag, timestamp FROM tags", "user_id, movie_id, tag", page);
        let rows: Vec<TagTuple> = self.fetch_all(sql, &args).await?;
        Ok(rows.into_iter().map(tag).collect())
    }

    /// One tag, matched exactly.
    ///
    /// # Errors
    /// A database error.
    pub async fn tag(&self, user_id: i64, movie_id: i64, text: &str) -> Result<Option<Tag>, StoreError> {
        let row: Option<TagTuple> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, movie_id, tag, timestamp FROM tags WHERE user_id = $1 AND movie_id = $2 AND tag = $3",
            )
            .bind(user_id)
            .bind(movie_id)
            .bind(text)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(tag))
    }

    /// Links ordered by movieId.
    ///
    /// # Errors
    /// A database error.
    pub async fn links(&self, page: Page) -> Result<Vec<Link>, StoreError> {
        let (sql, args) = Filter::default().paged("SELECT movie_id, imdb_id, tmdb_id FROM links", "movie_id", page);
        let rows: Vec<(i64, String, Option<i64>)> = self.fetch_all(sql, &args).await?;
        Ok(rows.into_iter().map(link).collect())
    }

    /// One movie's link.
    ///
    /// # Errors
    /// A database error.
    pub async fn link(&self, movie_id: i64) -> Result<Option<Link>, StoreError> {
        let row: Option<(i64, String, Option<i64>)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT movie_id, imdb_id, tmdb_id FROM links WHERE movie_id = $1")
                .bind(movie_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(link))
    }

    /// Row counts of the four tables: (movies, ratings, tags, links). The ratings' count comes
    /// from the rating summaries (counting 25 M rows would scan an index).
    ///
    /// # Errors
    /// A database error.
    pub async fn counts(&self) -> Result<(i64, i64, i64, i64), StoreError> {
        let row: (i64, i64, i64, i64) = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM movies), \
                 (SELECT CAST(COALESCE(SUM(rating_count), 0) AS BIGINT) FROM rating_months), \
                 (SELECT COUNT(*) FROM tags), (SELECT COUNT(*) FROM links)",
            )
            .fetch_one(pool)
            .await
        })?;
        Ok(row)
    }

    /// Catalogue-wide figures: counts, rating distribution, ratings per year, genre popularity
    /// and mean rating, the `top` most-rated movies and the `top` best-rated among those with
    /// at least `min_ratings` ratings. Reads the rating summaries, never `ratings` itself.
    ///
    /// # Errors
    /// A database error.
    pub async fn analytics(&self, top: i64, min_ratings: i64, now: i64) -> Result<Analytics, StoreError> {
        let (movie_count, rating_count, tag_count, link_count) = self.counts().await?;
        // Per-movie totals of the summaries.
        const MOVIE_TOTALS: &str = "SELECT movie_id, CAST(SUM(rating_count) AS BIGINT) AS n, SUM(rating_sum) AS total \
             FROM movie_years GROUP BY movie_id HAVING SUM(rating_count) > 0";
        let movie_stats_sql = |order: &str, having: &str| {
            format!(
                "SELECT m.movie_id, m.title, s.n, s.total / s.n FROM ({MOVIE_TOTALS}) s \
                 JOIN movies m ON m.movie_id = s.movie_id {having} ORDER BY {order} LIMIT $1"
            )
        };
        let most_sql = movie_stats_sql("s.n DESC, m.movie_id", "");
        let best_sql = movie_stats_sql("s.total / s.n DESC, s.n DESC, m.movie_id", "WHERE s.n >= $2");
        let genres_sql = format!(
            "SELECT g.genre, COUNT(DISTINCT g.movie_id), CAST(COALESCE(SUM(s.n), 0) AS BIGINT), SUM(s.total) / CAST(SUM(s.n) AS BIGINT) \
             FROM movie_genres g LEFT JOIN ({MOVIE_TOTALS}) s ON s.movie_id = g.movie_id \
             GROUP BY g.genre ORDER BY COALESCE(SUM(s.n), 0) DESC, g.genre"
        );

        let (totals, distribution, per_year, genres, most, best) = with_pool!(self, |pool| {
            let totals: (i64, i64, Option<f64>) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM user_rating_counts WHERE rating_count > 0), \
                 (SELECT COUNT(DISTINCT movie_id) FROM movie_rating_counts WHERE rating_count > 0), \
                 (SELECT SUM(rating_sum) / CAST(SUM(rating_count) AS BIGINT) FROM rating_months WHERE rating_count > 0)",
            )
            .fetch_one(pool)
            .await?;
            let distribution: Vec<(f64, i64)> = sqlx::query_as(
                "SELECT rating, CAST(SUM(rating_count) AS BIGINT) FROM movie_rating_counts \
                 GROUP BY rating HAVING SUM(rating_count) > 0 ORDER BY rating",
            )
            .fetch_all(pool)
            .await?;
            let per_year: Vec<(i64, i64, f64)> = sqlx::query_as(
                "SELECT CAST(SUBSTR(month, 1, 4) AS BIGINT) AS y, CAST(SUM(rating_count) AS BIGINT), \
                 SUM(rating_sum) / CAST(SUM(rating_count) AS BIGINT) FROM rating_months \
                 GROUP BY y HAVING SUM(rating_count) > 0 ORDER BY y",
            )
            .fetch_all(pool)
            .await?;
            let genres: Vec<(String, i64, i64, Option<f64>)> =
                sqlx::query_as(AssertSqlSafe(genres_sql)).fetch_all(pool).await?;
            let most: Vec<(i64, String, i64, f64)> =
                sqlx::query_as(AssertSqlSafe(most_sql)).bind(top).fetch_all(pool).await?;
            let best: Vec<(i64, String, i64, f64)> =
                sqlx::query_as(AssertSqlSafe(best_sql)).bind(top).bind(min_ratings).fetch_all(pool).await?;
            Ok::<_, sqlx::Error>((totals, distribution, per_year, genres, most, best))
        })?;
        let stats = |rows: Vec<(i64, String, i64, f64)>| {
            rows.into_iter()
                .map(|(movie_id, title, rating_count, mean_rating)| MovieStats {
                    movie_id,
                    title,
                    rating_count,
                    mean_rating,
                })
                .collect()
        };
        Ok(Analytics {
            movie_count,
            rating_count,
            tag_count,
            link_count,
            user_count: totals.0,
            rated_movie_count: totals.1,
            mean_rating: totals.2,
            rating_distribution: distribution
                .into_iter()
                .map(|(rating, count)| RatingBucket { rating, count })
                .collect(),
            ratings_per_year: per_year
                .into_iter()
                .map(|(year, count, mean_rating)| YearStats { year, count, mean_rating })
                .collect(),
            genres: genres
                .into_iter()
                .map(|(genre, movie_count, rating_count, mean_rating)| GenreStats {
                    genre,
                    movie_count,
                    rating_count,
                    mean_rating,
                })
                .collect(),
            most_rated: stats(most),
            best_rated: stats(best),
            min_ratings,
            computed_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_user_text_match_literally() {
        assert_eq!(like_pattern("100%_A\\b"), "%100\\%\\_a\\\\b%");
    }

    #[test]
    fn filter_numbers_placeholders_in_bind_order() {
        let mut f = Filter::default();
        f.push("a = ?", Arg::Int(1));
        f.push("b >= ?", Arg::Real(2.0));
        let (sql, args) = f.paged("SELECT x FROM t", "x", Page { skip: 5, limit: 10 });
        assert_eq!(sql, "SELECT x FROM t WHERE a = $1 AND b >= $2 ORDER BY x LIMIT $3 OFFSET $4");
        assert_eq!(args.len(), 4);
    }
}
