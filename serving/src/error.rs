//! The one error type of the HTTP layer, and the one place it becomes a status code; the
//! middleware that gives every other error response (a library's, a layer's) the same JSON
//! shape; and the refusal, before any handler runs, of bodies over [`MAX_BODY_BYTES`] on their
//! `Content-Length`, of URIs over [`MAX_URI_BYTES`] and of request heads over
//! [`MAX_HEADER_BYTES`].

use axum::Json;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use schemas::ErrorBody;

/// The largest request body accepted (axum's default limit, made explicit so the
/// `Content-Length` check and the body reader agree).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The longest request target accepted: room for `exclude=` at its limit of 1,000 movie ids
/// percent-encoded (~9 KB). Longer ones get a JSON 414 from us; hyper's own limit (64 KiB)
/// stays behind it, answering an empty-bodied 414 only to what is far past this.
pub const MAX_URI_BYTES: usize = 16 * 1024;

/// The largest request head (header names and values) accepted, nginx's 4 × 8 KiB. Larger
/// ones get a JSON 431 from us; hyper's read-buffer limit (~400 KiB) and its 100-header limit
/// stay behind it, answering an empty-bodied 431 only to what is far past this.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

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
    /// The request target is longer than [`MAX_URI_BYTES`].
    #[error("{0}")]
    UriTooLong(String),
    /// The request's headers are larger than [`MAX_HEADER_BYTES`].
    #[error("{0}")]
    HeadersTooLarge(String),
    /// The method is not one the route answers.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The store failed: logged, answered with an opaque 500.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Anything else that went wrong on our side (a handler's panic, an answer that cannot be
    /// encoded): logged, answered with an opaque 500.
    #[error("{0}")]
    Internal(String),
    /// An error status set by a layer or a library (e.g. the request timeout's 503) without
    /// a body of ours: its reason phrase becomes the detail.
    #[error("{}", .0.canonical_reason().unwrap_or("error").to_lowercase())]
    Status(StatusCode),
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
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Status(status) => *status,
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
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        (status, Json(ErrorBody { detail })).into_response()
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

/// Refuses, before reading any body, a request whose target is over [`MAX_URI_BYTES`], whose
/// headers are over [`MAX_HEADER_BYTES`] or whose body is announced over [`MAX_BODY_BYTES`].
pub async fn refuse_oversize(req: Request, next: Next) -> Response {
    match oversize(&req) {
        Some(error) => error.into_response(),
        None => next.run(req).await,
    }
}

/// What is too large about `req`, if anything.
fn oversize(req: &Request) -> Option<ApiError> {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Some(ApiError::UriTooLong(format!(
            "a request target of {uri} bytes is over the limit of {MAX_URI_BYTES}"
        )));
    }
    // Each header as it travels: "name: value\r\n".
    let headers: usize = req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if headers > MAX_HEADER_BYTES {
        return Some(ApiError::HeadersTooLarge(format!(
            "request headers of {headers} bytes are over the limit of {MAX_HEADER_BYTES}"
        )));
    }
    let announced =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(length) if length > MAX_BODY_BYTES as u64 => {
            Some(ApiError::TooLarge(format!("a body of {length} bytes is over the limit of {MAX_BODY_BYTES}")))
        }
        _ => None,
    }
}

/// Gives an error response that is not JSON (from a layer, a library's handler or an
/// empty-bodied status) the `{"detail": ...}` shape of [`ApiError::Status`], keeping its status
/// and other headers.
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
    let (ours, body) = ApiError::Status(status).into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(ours.headers);
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(error: ApiError) -> (StatusCode, String, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, content_type, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn every_error_is_a_json_detail_and_internal_ones_say_nothing_more() {
        let (status, content_type, body) = answer(ApiError::Internal("secret path /x/y".into())).await;
        assert_eq!((status, content_type.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "application/json"));
        assert_eq!(body["detail"], "internal error");
        let (status, _, body) = answer(ApiError::Status(StatusCode::SERVICE_UNAVAILABLE)).await;
        assert_eq!((status, body["detail"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("service unavailable")));
        let (status, _, body) = answer(ApiError::MethodNotAllowed).await;
        assert_eq!((status, body["detail"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method not allowed")));
        let (status, _, _) = answer(ApiError::UriTooLong("long".into())).await;
        assert_eq!(status, StatusCode::URI_TOO_LONG);
        let (status, _, _) = answer(ApiError::HeadersTooLarge("large".into())).await;
        assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
}
