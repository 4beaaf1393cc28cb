//! The catalogue data API: movies, ratings, tags, links.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use schemas::{ErrorBody, Link, Movie, MovieDetail, Rating, Tag};
use serde::Deserialize;
use store::{MovieQuery, Page, RatingQuery, TagQuery};
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::state::AppState;

/// Largest `limit` a listing accepts.
pub const MAX_LIMIT: i64 = 1000;
const DEFAULT_LIMIT: i64 = 100;

/// The catalogue routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/movies", get(list_movies))
        .route("/movies/{movie_id}", get(get_movie))
        .route("/ratings", get(list_ratings))
        .route("/ratings/{user_id}/{movie_id}", get(get_rating))
        .route("/tags", get(list_tags))
        .route("/tags/{user_id}/{movie_id}/{tag}", get(get_tag))
        .route("/links", get(list_links))
        .route("/links/{movie_id}", get(get_link))
}

/// Pagination shared by every listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Rows to skip (default 0).
    #[param(minimum = 0)]
    skip: Option<i64>,
    /// Rows to return, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

impl Paging {
    fn page(&self) -> ApiResult<Page> {
        let skip = self.skip.unwrap_or(0);
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if skip < 0 {
            return Err(ApiError::Invalid(format!("skip must be >= 0, got {skip}")));
        }
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::Invalid(format!("limit must be between 1 and {MAX_LIMIT}, got {limit}")));
        }
        Ok(Page { skip, limit })
    }
}

/// An empty text filter means "no filter", as in most query UIs. NUL characters are refused:
/// PostgreSQL cannot store or compare them in text.
fn text_filter(name: &str, value: Option<String>) -> ApiResult<Option<String>> {
    match value {
        Some(v) if v.contains('\0') => Err(ApiError::Invalid(format!("{name} must not contain NUL characters"))),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => Ok(Some(v.trim().to_owned())),
        None => Ok(None),
    }
}

fn positive(name: &str, value: Option<i64>) -> ApiResult<Option<i64>> {
    match value {
        Some(v) if v <= 0 => Err(ApiError::Invalid(format!("{name} must be a positive integer, got {v}"))),
        other => Ok(other),
    }
}

/// The row a lookup found, or a 404 saying what is missing.
fn found<T>(row: Option<T>, missing: impl FnOnce() -> String) -> ApiResult<axum::Json<T>> {
    row.map(axum::Json).ok_or_else(|| ApiError::NotFound(missing()))
}

/// Filters for `GET /movies`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MovieFilter {
    /// Case-insensitive substring of the title.
    #[param(pattern = r"^[^\u0000]*$")]
    title: Option<String>,
    /// Case-insensitive genre name, e.g. `comedy`.
    #[param(pattern = r"^[^\u0000]*$")]
    genre: Option<String>,
}

/// List movies ordered by movieId.
#[utoipa::path(get, path = "/movies", tag = "catalogue", params(Paging, MovieFilter),
    responses((status = 200, body = [Movie]), (status = 422, body = ErrorBody)))]
pub async fn list_movies(
    State(state): State<AppState>,
    Query(paging): Query<Paging>,
    Query(filter): Query<MovieFilter>,
) -> ApiResult<axum::Json<Vec<Movie>>> {
    let query = MovieQuery { title: text_filter("title", filter.title)?, genre: text_filter("genre", filter.genre)? };
    Ok(axum::Json(state.store.movies(&query, paging.page()?).await?))
}

/// One movie with its ratings, tags and link.
#[utoipa::path(get, path = "/movies/{movie_id}", tag = "catalogue",
    params(("movie_id" = i64, Path, description = "MovieLens movie id")),
    responses((status = 200, body = MovieDetail), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_movie(State(state): State<AppState>, Path(movie_id): Path<i64>) -> ApiResult<axum::Json<MovieDetail>> {
    found(state.store.movie_detail(movie_id).await?, || format!("movie {movie_id} not found"))
}

/// The user and movie filters of `GET /ratings` and `GET /tags`; `movieId`/`userId` are
/// accepted as aliases.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OwnerFilter {
    /// Only this movie's rows (alias `movieId`).
    #[serde(alias = "movieId")]
    #[param(minimum = 1)]
    movie_id: Option<i64>,
    /// Only this user's rows (alias `userId`).
    #[serde(alias = "userId")]
    #[param(minimum = 1)]
    user_id: Option<i64>,
}

impl OwnerFilter {
    /// `(movie_id, user_id)`, each checked to be positive when given.
    fn ids(&self) -> ApiResult<(Option<i64>, Option<i64>)> {
        Ok((positive("movie_id", self.movie_id)?, positive("user_id", self.user_id)?))
    }
}

/// The rating threshold of `GET /ratings`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RatingFilter {
    /// Only ratings at or above this value, 0 to 5.
    #[param(minimum = 0.0, maximum = 5.0)]
    min_rating: Option<f64>,
}

/// List ratings ordered by (userId, movieId).
#[utoipa::path(get, path = "/ratings", tag = "catalogue", params(Paging, OwnerFilter, RatingFilter),
    responses((status = 200, body = [Rating]), (status = 422, body = ErrorBody)))]
pub async fn list_ratings(
    State(state): State<AppState>,
    Query(paging): Query<Paging>,
    Query(owner): Query<OwnerFilter>,
    Query(filter): Query<RatingFilter>,
) -> ApiResult<axum::Json<Vec<Rating>>> {
    if let Some(min) = filter.min_rating
        && !(0.0..=5.0).contains(&min)
    {
        return Err(ApiError::Invalid(format!("min_rating must be between 0 and 5, got {min}")));
    }
    let (movie_id, user_id) = owner.ids()?;
    let query = RatingQuery { movie_id, user_id, min_rating: filter.min_rating };
    Ok(axum::Json(state.store.ratings(&query, paging.page()?).await?))
}

/// One user's rating of one movie.
#[utoipa::path(get, path = "/ratings/{user_id}/{movie_id}", tag = "catalogue",
    params(("user_id" = i64, Path, description = "MovieLens user id"), ("movie_id" = i64, Path, description = "MovieLens movie id")),
    responses((status = 200, body = Rating), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_rating(
    State(state): State<AppState>,
    Path((user_id, movie_id)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<Rating>> {
    found(state.store.rating(user_id, movie_id).await?, || format!("no rating by user {user_id} for movie {movie_id}"))
}

/// List tags ordered by (userId, movieId, tag).
#[utoipa::path(get, path = "/tags", tag = "catalogue", params(Paging, OwnerFilter),
    responses((status = 200, body = [Tag]), (status = 422, body = ErrorBody)))]
pub async fn list_tags(
    State(state): State<AppState>,
    Query(paging): Query<Paging>,
    Query(owner): Query<OwnerFilter>,
) -> ApiResult<axum::Json<Vec<Tag>>> {
    let (movie_id, user_id) = owner.ids()?;
    let query = TagQuery { movie_id, user_id };
    Ok(axum::Json(state.store.tags(&query, paging.page()?).await?))
}

/// One tag, matched exactly (percent-encode the tag text in the path).
#[utoipa::path(get, path = "/tags/{user_id}/{movie_id}/{tag}", tag = "catalogue",
    params(("user_id" = i64, Path, description = "MovieLens user id", example = 2),
        ("movie_id" = i64, Path, description = "MovieLens movie id", example = 60756),
        ("tag" = String, Path, description = "The tag text, percent-encoded", example = "Highly quotable",
            pattern = r"^[^\u0000]*$")),
    responses((status = 200, body = Tag), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_tag(
    State(state): State<AppState>,
    Path((user_id, movie_id, tag)): Path<(i64, i64, String)>,
) -> ApiResult<axum::Json<Tag>> {
    if tag.contains('\0') {
        return Err(ApiError::Invalid("tag must not contain NUL characters".into()));
    }
    found(state.store.tag(user_id, movie_id, &tag).await?, || {
        format!("no tag {tag:?} by user {user_id} on movie {movie_id}")
    })
}

/// List links ordered by movieId.
#[utoipa::path(get, path = "/links", tag = "catalogue", params(Paging),
    responses((status = 200, body = [Link]), (status = 422, body = ErrorBody)))]
pub async fn list_links(
    State(state): State<AppState>,
    Query(paging): Query<Paging>,
) -> ApiResult<axum::Json<Vec<Link>>> {
    Ok(axum::Json(state.store.links(paging.page()?).await?))
}

/// One movie's IMDb and TMDb ids.
#[utoipa::path(get, path = "/links/{movie_id}", tag = "catalogue",
    params(("movie_id" = i64, Path, description = "MovieLens movie id")),
    responses((status = 200, body = Link), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_link(State(state): State<AppState>, Path(movie_id): Path<i64>) -> ApiResult<axum::Json<Link>> {
    found(state.store.link(movie_id).await?, || format!("no link for movie {movie_id}"))
}
