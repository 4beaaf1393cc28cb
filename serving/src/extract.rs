//! Extractors that turn axum's plain-text rejections into our 422 JSON errors, so a client
//! sending `limit=abc` or `/movies/abc` gets the same error shape as any other bad input.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// Wraps an axum extractor of request parts so its rejection becomes a 422 JSON error.
macro_rules! with_json_errors {
    ($(#[$doc:meta])* $name:ident wraps $axum:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name<T>(pub T);

        impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for $name<T> {
            type Rejection = ApiError;
            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
                <$axum>::from_request_parts(parts, state)
                    .await
                    .map(|extracted| $name(extracted.0))
                    .map_err(|e| ApiError::Invalid(e.body_text()))
            }
        }
    };
}

with_json_errors!(
    /// `axum::extract::Query` with JSON errors.
    Query wraps axum::extract::Query<T>
);
with_json_errors!(
    /// `axum::extract::Path` with JSON errors.
    Path wraps axum::extract::Path<T>
);

/// `axum::Json` with JSON errors: bad syntax, wrong types and a wrong content type give 422,
/// a body over the limit 413, a body that stalls (the server's body timeout) 408.
#[derive(Debug, Clone, Copy)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state).await.map(|j| Json(j.0)).map_err(|e| {
            if caused_by::<tower_http::timeout::TimeoutError>(&e) {
                ApiError::BodyTimeout("the request body stopped arriving".into())
            } else if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(format!("the body is over the limit of {} bytes", crate::error::MAX_BODY_BYTES))
            } else {
                ApiError::Invalid(e.body_text())
            }
        })
    }
}

/// Whether an `E` is anywhere in `error`'s source chain.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<E>() {
            return true;
        }
        next = error.source();
    }
    false
}

/// Guards write endpoints: when the service has an API key, the request must carry it in
/// `x-api-key` (compared in constant time). Placed before the body extractor so an
/// unauthorised request is refused before its body is even parsed.
#[derive(Debug, Clone, Copy)]
pub struct ApiKey;

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(expected) = state.api_key.as_ref().map(ExposeSecret::expose_secret) else { return Ok(ApiKey) };
        let given = parts.headers.get("x-api-key").map(|v| v.as_bytes()).unwrap_or_default();
        let same = given.len() == expected.len()
            && given.iter().zip(expected.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if same { Ok(ApiKey) } else { Err(ApiError::Unauthorized) }
    }
}
