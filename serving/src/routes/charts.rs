//! `/charts/...`: the series the web interface draws, as JSON for SDKs and notebooks. They
//! come from the precomputed figures ([`crate::charts`]) and `/analytics`, so they cost no scan.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use schemas::charts::{GenreCharts, MonthStats, MovieCharts, TopMovies};
use schemas::{ErrorBody, RatingBucket};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::charts;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::routes::analytics;
use crate::state::AppState;

/// Largest `n` of `/charts/top-movies`.
const MAX_TOP: i64 = 100;

/// The chart routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/charts/ratings-per-month", get(ratings_per_month))
        .route("/charts/rating-histogram", get(rating_histogram))
        .route("/charts/genres", get(genre_charts))
        .route("/charts/top-movies", get(top_movies))
        .route("/charts/movies/{movie_id}", get(movie_charts))
}

/// Ratings per calendar month (UTC) over the whole history, with their mean.
#[utoipa::path(get, path = "/charts/ratings-per-month", tag = "analytics",
    responses((status = 200, body = [MonthStats]), (status = 500, body = ErrorBody)))]
pub async fn ratings_per_month(State(state): State<AppState>) -> ApiResult<Json<Vec<MonthStats>>> {
    Ok(Json(charts::current(&state).await?.months.clone()))
}

/// How many ratings carry each star value.
#[utoipa::path(get, path = "/charts/rating-histogram", tag = "analytics",
    responses((status = 200, body = [RatingBucket]), (status = 500, body = ErrorBody)))]
pub async fn rating_histogram(State(state): State<AppState>) -> ApiResult<Json<Vec<RatingBucket>>> {
    Ok(Json(analytics::current(&state).await?.rating_distribution.clone()))
}

/// Genre popularity and mean rating, overall and per year.
#[utoipa::path(get, path = "/charts/genres", tag = "analytics",
    responses((status = 200, body = GenreCharts), (status = 500, body = ErrorBody)))]
pub async fn genre_charts(State(state): State<AppState>) -> ApiResult<Json<GenreCharts>> {
    let (figures, charts) = tokio::try_join!(analytics::current(&state), charts::current(&state))?;
    Ok(Json(GenreCharts { genres: figures.genres.clone(), by_year: charts.genre_years.clone() }))
}

/// Options of `GET /charts/top-movies`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopOptions {
    /// Movies per list, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    n: Option<i64>,
    /// Ratings a movie needs to rank among the best rated, at least 1 (default 50).
    #[param(minimum = 1)]
    min_ratings: Option<i64>,
}

/// The most-rated movies and the best-rated among those with at least `min_ratings` ratings.
#[utoipa::path(get, path = "/charts/top-movies", tag = "analytics", params(TopOptions),
    responses((status = 200, body = TopMovies), (status = 422, body = ErrorBody)))]
pub async fn top_movies(
    State(state): State<AppState>,
    Query(options): Query<TopOptions>,
) -> ApiResult<Json<TopMovies>> {
    let n = options.n.unwrap_or(10);
    if !(1..=MAX_TOP).contains(&n) {
        return Err(ApiError::Invalid(format!("n must be between 1 and {MAX_TOP}, got {n}")));
    }
    let min = options.min_ratings.unwrap_or(analytics::MIN_RATINGS);
    if min < 1 {
        return Err(ApiError::Invalid(format!("min_ratings must be at least 1, got {min}")));
    }
    Ok(Json(charts::current(&state).await?.top(n as usize, min)))
}

/// One movie's rating histogram and ratings per year.
#[utoipa::path(get, path = "/charts/movies/{movie_id}", tag = "analytics",
    params(("movie_id" = i64, Path, description = "MovieLens movie id")),
    responses((status = 200, body = MovieCharts), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn movie_charts(State(state): State<AppState>, Path(movie_id): Path<i64>) -> ApiResult<Json<MovieCharts>> {
    Ok(Json(movie(&state, movie_id).await?))
}

/// The movie's charts, or 404 when it is not in the catalogue (shared with the movie page).
///
/// # Errors
/// Unknown movie, or a store error.
pub async fn movie(state: &AppState, movie_id: i64) -> ApiResult<MovieCharts> {
    if state.store.movie(movie_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("movie {movie_id} not found")));
    }
    Ok(state.store.movie_charts(movie_id).await?)
}
