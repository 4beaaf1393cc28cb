//! The model's status and the admin retrain.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use schemas::ErrorBody;
use schemas::recommend::{ModelInfo, RetrainStarted};

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiKey;
use crate::state::AppState;

/// The model routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/model", get(model_info)).route("/model/retrain", post(retrain))
}

/// The model serving answers from: version, algorithm, training, holdout metrics, events
/// applied since, the latest retrain.
#[utoipa::path(get, path = "/model", tag = "recommendations", responses((status = 200, body = ModelInfo)))]
pub async fn model_info(State(state): State<AppState>) -> axum::Json<ModelInfo> {
    axum::Json(state.live.info())
}

/// Start a full retrain now. The new model is swapped in when it is ready and not worse on
/// the holdout; `GET /model` then shows a higher version. 409 while a retrain is running.
#[utoipa::path(post, path = "/model/retrain", tag = "recommendations",
    params(("x-api-key" = Option<String>, Header, description = "Required when the service has an API key")),
    responses((status = 202, body = RetrainStarted), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn retrain(
    State(state): State<AppState>,
    _key: ApiKey,
) -> ApiResult<(StatusCode, axum::Json<RetrainStarted>)> {
    let version = state.live.lineage().version;
    if !state.retrainer.request("admin") {
        return Err(ApiError::Conflict("a retrain is already running".into()));
    }
    Ok((StatusCode::ACCEPTED, axum::Json(RetrainStarted { version })))
}
