//! `/experiments`: A/B experiments on live traffic. Configure one (`PUT`), start and stop it
//! (admin, with the API key), and read how each variant's users responded (`GET`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use schemas::ErrorBody;
use schemas::ab::{ExperimentConfig, ExperimentList, ExperimentReport, ExperimentSummary};

use crate::error::ApiResult;
use crate::extract::{ApiKey, Json, Path};
use crate::state::AppState;

/// The experiment routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/experiments", get(list))
        .route("/experiments/{name}", get(report).put(put))
        .route("/experiments/{name}/start", post(start))
        .route("/experiments/{name}/stop", post(stop))
}

/// Every experiment with its status and configuration.
#[utoipa::path(get, path = "/experiments", tag = "experiments", responses((status = 200, body = ExperimentList)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<axum::Json<ExperimentList>> {
    Ok(axum::Json(ExperimentList { experiments: state.experiments.list().await? }))
}

/// An experiment's configuration, status, change history and outcomes per variant: lists
/// shown, lists whose user liked one of their top 10 within the window (hit rate@10), users,
/// position-weighted gain, and each variant's difference to the control with a 95% confidence
/// interval (users as clusters).
#[utoipa::path(get, path = "/experiments/{name}", tag = "experiments",
    params(("name" = String, Path, description = "Experiment name")),
    responses((status = 200, body = ExperimentReport), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ExperimentReport>> {
    Ok(axum::Json(ExperimentReport::clone(&*state.experiments.report(&name).await?)))
}

/// Create an experiment (as a draft: 201) or change its configuration (200; a running one
/// goes on with the new shares and models at once, every replica within a second). Recorded
/// in its history.
#[utoipa::path(put, path = "/experiments/{name}", tag = "experiments", request_body = ExperimentConfig,
    params(("name" = String, Path, description = "Experiment name"),
        ("x-api-key" = Option<String>, Header, description = "Required when the service has an API key")),
    responses((status = 200, body = ExperimentSummary), (status = 201, body = ExperimentSummary),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    _key: ApiKey,
    Path(name): Path<String>,
    Json(config): Json<ExperimentConfig>,
) -> ApiResult<(StatusCode, axum::Json<ExperimentSummary>)> {
    let (created, summary) = state.experiments.put(&name, config).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, axum::Json(summary)))
}

/// Start (or resume) an experiment: from now on each user's lists come from their variant's
/// model. 409 while another experiment runs.
#[utoipa::path(post, path = "/experiments/{name}/start", tag = "experiments",
    params(("name" = String, Path, description = "Experiment name"),
        ("x-api-key" = Option<String>, Header, description = "Required when the service has an API key")),
    responses((status = 200, body = ExperimentSummary), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    _key: ApiKey,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ExperimentSummary>> {
    Ok(axum::Json(state.experiments.start(&name).await?))
}

/// Stop an experiment: lists come from the served model again; its outcomes stay readable.
#[utoipa::path(post, path = "/experiments/{name}/stop", tag = "experiments",
    params(("name" = String, Path, description = "Experiment name"),
        ("x-api-key" = Option<String>, Header, description = "Required when the service has an API key")),
    responses((status = 200, body = ExperimentSummary), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn stop(
    State(state): State<AppState>,
    _key: ApiKey,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ExperimentSummary>> {
    Ok(axum::Json(state.experiments.stop(&name).await?))
}
