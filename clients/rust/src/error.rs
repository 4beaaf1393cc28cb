//! What can go wrong talking to CineData, each case naming the URL it happened on.

use std::time::Duration;

use reqwest::StatusCode;
use schemas::ErrorBody;

/// An error from the client. Every variant but [`Error::InvalidUrl`] names the request's URL;
/// the HTTP ones carry the API's own `detail` text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404: no such movie, rating, tag, link or user.
    #[error("{url}: not found: {detail}")]
    NotFound { url: String, detail: String },
    /// 400, 409, 413, 422 and other 4xx but 401/404: the request itself was refused.
    #[error("{url}: invalid request ({status}): {detail}")]
    InvalidRequest { url: String, status: u16, detail: String },
    /// 401: the service needs an API key (`x-api-key`) and none or a wrong one was sent.
    #[error("{url}: unauthorized: {detail}")]
    Unauthorized { url: String, detail: String },
    /// 503, or no connection to the server, after the retries the request was allowed.
    #[error("{url}: unavailable: {detail}")]
    Unavailable { url: String, detail: String },
    /// No complete answer within the client's timeout, after the retries the request was
    /// allowed (a write is not retried).
    #[error("{url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    /// Any other 5xx.
    #[error("{url}: server error ({status}): {detail}")]
    Server { url: String, status: u16, detail: String },
    /// A 2xx whose body is not the JSON the API documents.
    #[error("{url}: malformed answer: {detail}")]
    Decode { url: String, detail: String },
    /// The base URL given to the client is not an absolute http(s) URL.
    #[error("invalid base URL {url:?}: {detail}")]
    InvalidUrl { url: String, detail: String },
}

impl Error {
    /// The error for an HTTP answer with a non-success `status` and `body`: the API's
    /// `{"detail": ...}` when the body is one, else the start of the body itself.
    pub(crate) fn from_status(url: String, status: StatusCode, body: &[u8]) -> Self {
        let detail = serde_json::from_slice::<ErrorBody>(body).map(|b| b.detail).unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() { status.to_string() } else { text.chars().take(200).collect() }
        });
        let code = status.as_u16();
        match status {
            StatusCode::NOT_FOUND => Error::NotFound { url, detail },
            StatusCode::UNAUTHORIZED => Error::Unauthorized { url, detail },
            StatusCode::SERVICE_UNAVAILABLE => Error::Unavailable { url, detail },
            s if s.is_client_error() => Error::InvalidRequest { url, status: code, detail },
            _ => Error::Server { url, status: code, detail },
        }
    }

    /// The HTTP status this error came from, if it came from one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::NotFound { .. } => Some(404),
            Error::Unauthorized { .. } => Some(401),
            Error::InvalidRequest { status, .. } | Error::Server { status, .. } => Some(*status),
            Error::Unavailable { .. } | Error::Timeout { .. } | Error::Decode { .. } | Error::InvalidUrl { .. } => None,
        }
    }

    /// The API's `detail` text, or this client's description of the failure.
    pub fn detail(&self) -> String {
        match self {
            Error::NotFound { detail, .. }
            | Error::InvalidRequest { detail, .. }
            | Error::Unauthorized { detail, .. }
            | Error::Unavailable { detail, .. }
            | Error::Server { detail, .. }
            | Error::Decode { detail, .. }
            | Error::InvalidUrl { detail, .. } => detail.clone(),
            Error::Timeout { timeout, .. } => format!("no answer within {timeout:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_variants_with_the_api_detail() {
        let body = br#"{"detail":"movie 42 not found"}"#;
        let e = Error::from_status("http://x/movies/42".into(), StatusCode::NOT_FOUND, body);
        assert!(matches!(&e, Error::NotFound { detail, .. } if detail == "movie 42 not found"), "{e:?}");
        assert_eq!(e.to_string(), "http://x/movies/42: not found: movie 42 not found");
        let e = Error::from_status("u".into(), StatusCode::UNPROCESSABLE_ENTITY, br#"{"detail":"n"}"#);
        assert!(matches!(e, Error::InvalidRequest { status: 422, .. }));
        assert!(matches!(Error::from_status("u".into(), StatusCode::UNAUTHORIZED, b""), Error::Unauthorized { .. }));
        assert!(matches!(
            Error::from_status("u".into(), StatusCode::SERVICE_UNAVAILABLE, b""),
            Error::Unavailable { .. }
        ));
        let e = Error::from_status("u".into(), StatusCode::BAD_GATEWAY, b"<html>proxy down</html>");
        assert!(
            matches!(&e, Error::Server { status: 502, detail, .. } if detail == "<html>proxy down</html>"),
            "{e:?}"
        );
        assert_eq!(e.status(), Some(502));
    }
}
