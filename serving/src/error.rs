//! The one error type of the HTTP layer, and the one place it becomes a status code; the
//! middleware that gives every other error response (a library's, a layer's) the same JSON
//! shape; and the refusal of bodies over [`MAX_BODY_BYTES`] on their `Content-Length`.

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use schemas::ErrorBody;

/// The largest request body accepted (axum's default limit, made explicit so the
/// `Content-Length` check and the body reader agree).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

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
    /// The request body is larger than [`MAX_BODY_BYTES`].
    #[error("{0}")]
    TooLarge(String),
    /// The client stopped sending its body.
    #[error("{0}")]
    BodyTimeout(String),
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
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
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

/// Refuses a body announced larger than [`MAX_BODY_BYTES`] before reading any of it.
pub async fn refuse_oversize(req: Request, next: Next) -> Response {
    let announced =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(length) if length > MAX_BODY_BYTES as u64 => {
            ApiError::TooLarge(format!("a body of {length} bytes is over the limit of {MAX_BODY_BYTES}"))
                .into_response()
        }
        _ => next.run(req).await,
    }
}

/// Gives an error response that is not JSON (from a layer, a library's handler or an
/// empty-bodied status) the `{"detail": ...}` shape, keeping its status and other headers.
/// The web interface (`/ui/`) renders its own HTML error pages for people, so those pass.
pub async fn json_bodies(req: Request, next: Next) -> Response {
    let page = req.uri().path() == "/ui" || req.uri().path().starts_with("/ui/");
    let response = next.run(req).await;
    if page {
        return response;
    }
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let detail = status.canonical_reason().unwrap_or("error").to_lowercase();
    let body = serde_json::to_vec(&ErrorBody { detail }).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    Response::from_parts(parts, Body::from(body))
}
