//! `GET /`: liveness with the store checked.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use schemas::{ErrorBody, Health};

use crate::error::ApiResult;
use crate::state::AppState;

/// The health route.
pub fn router() -> Router<AppState> {
    Router::new().route("/", get(health))
}

/// Health: "ok" when the database answers.
#[utoipa::path(get, path = "/", tag = "health",
    responses((status = 200, body = Health), (status = 500, body = ErrorBody)))]
pub async fn health(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    state.store.ping().await?;
    Ok(Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        database: state.store.backend().name().into(),
    }))
}
