//! The one error type of the HTTP layer, and the one place it becomes a status code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemas::ErrorBody;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A parameter or body is malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// A write endpoint was called without the configured API key.
    #[error("missing or wrong API key")]
    Unauthorized,
    /// The request conflicts with work in progress (e.g. a retrain already running).
    #[error("{0}")]
    Conflict(String),
    /// A dependency is not ready (e.g. the model is still warming up).
    #[error("{0}")]
    Unavailable(String),
    /// The store failed: logged, answered with an opaque 500.
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl ApiError {
    /// The status code for each case.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let detail = match &self {
            ApiError::Store(e) => {
                tracing::error!(error = %e, "store error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        (status, Json(ErrorBody { detail })).into_response()
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;
