//! `GET /analytics`: catalogue-wide figures, cached briefly because they scan every rating.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use schemas::{Analytics, ErrorBody};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How many movies the most-rated and best-rated lists hold.
const TOP: i64 = 10;
/// Ratings a movie needs before it can rank among the best-rated.
pub const MIN_RATINGS: i64 = 50;

/// The analytics route.
pub fn router() -> Router<AppState> {
    Router::new().route("/analytics", get(analytics))
}

/// Counts, rating distribution, ratings per year, genre popularity and mean rating,
/// most-rated and best-rated movies (with at least 50 ratings).
#[utoipa::path(get, path = "/analytics", tag = "analytics",
    responses((status = 200, body = Analytics), (status = 500, body = ErrorBody)))]
pub async fn analytics(State(state): State<AppState>) -> ApiResult<Json<Arc<Analytics>>> {
    Ok(Json(current(&state).await?))
}

/// The cached analytics, computing them if none exist yet (from the store's rating summaries,
/// seconds at 25 M ratings). Also called once at start-up so the first client need not wait.
///
/// # Errors
/// The store fails on the first computation.
pub async fn current(state: &AppState) -> ApiResult<Arc<Analytics>> {
    let store = state.store.clone();
    let metrics = state.metrics.clone();
    state
        .analytics
        .get(move || async move {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            let a = store.analytics(TOP, MIN_RATINGS, now).await?;
            for (table, n) in
                [("movies", a.movie_count), ("ratings", a.rating_count), ("tags", a.tag_count), ("links", a.link_count)]
            {
                metrics.store_rows.with_label_values(&[table]).set(n);
            }
            Ok::<_, ApiError>(a)
        })
        .await
}
