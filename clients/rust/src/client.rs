//! The transport: one `reqwest::Client`, the base URL, the API key, and the retry rules.
//!
//! Reads are retried with exponential backoff when the server cannot be reached, does not
//! answer in time or answers 503; nothing is retried on a 4xx or another 5xx. Writes (`POST`) are retried only when the
//! connection could not be made at all, so the request never reached the server: the API has
//! no idempotency key, and a rating sent twice would be learned twice.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::options::Query;

/// How often and how patiently a read is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts after the first.
    pub retries: u32,
    /// The wait before the first retry; each further retry waits twice as long.
    pub backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { retries: 3, backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2) }
    }
}

impl Retry {
    /// No retries at all.
    pub const NONE: Retry = Retry { retries: 0, backoff: Duration::ZERO, max_backoff: Duration::ZERO };

    fn wait(&self, attempt: u32) -> Duration {
        self.backoff.saturating_mul(2u32.saturating_pow(attempt)).min(self.max_backoff)
    }
}

/// A CineData API client. Cheap to clone (clones share one connection pool).
///
/// ```no_run
/// # async fn run() -> Result<(), cinedata_client::Error> {
/// let client = cinedata_client::Client::new("http://127.0.0.1:8000")?;
/// let toy_story = client.movie(1).await?;
/// println!("{} has {} ratings", toy_story.title, toy_story.ratings.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    api_key: Option<SecretString>,
    timeout: Duration,
    retry: Retry,
}

/// Settings for a [`Client`]: `Client::builder(url).api_key(k).timeout(t).build()`.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    api_key: Option<SecretString>,
    timeout: Duration,
    retry: Retry,
}

impl ClientBuilder {
    /// Sent as `x-api-key` on writes and reads alike (the service checks it on writes).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// The longest a single attempt may take, from connecting to the last byte (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The retry rules for reads (default: 3 retries from 100 ms, doubling, at most 2 s apart).
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the base URL is not an absolute http(s) URL.
    pub fn build(self) -> Result<Client, Error> {
        let invalid = |detail: String| Error::InvalidUrl { url: self.base_url.clone(), detail };
        let base = Url::parse(&self.base_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("expected http://HOST[:PORT][/PREFIX]".into()));
        }
        // The timeout is applied per attempt in `send` (one timer for the request and its body).
        let http = reqwest::Client::builder().build().map_err(|e| invalid(format!("building the HTTP client: {e}")))?;
        Ok(Client { http, base, api_key: self.api_key, timeout: self.timeout, retry: self.retry })
    }
}

/// Whether a request may be sent again after an ambiguous failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotent {
    /// A read: retried on connection failures, timeouts and 503.
    Yes,
    /// A write: retried only when the connection was never made.
    No,
}

impl Client {
    /// A client for the service at `base_url` (e.g. `http://127.0.0.1:8000`) with the default
    /// timeout and retries.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when `base_url` is not an absolute http(s) URL.
    pub fn new(base_url: &str) -> Result<Self, Error> {
        Self::builder(base_url).build()
    }

    /// A client configured from `CINEDATA_URL` (default `http://127.0.0.1:8000`) and
    /// `CINEDATA_API_KEY`.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when `CINEDATA_URL` is not an absolute http(s) URL.
    pub fn from_env() -> Result<Self, Error> {
        let url = std::env::var("CINEDATA_URL").unwrap_or_else(|_| "http://127.0.0.1:8000".to_owned());
        let mut builder = Self::builder(&url);
        if let Ok(key) = std::env::var("CINEDATA_API_KEY") {
            builder = builder.api_key(key);
        }
        builder.build()
    }

    /// Settings for a client of the service at `base_url`.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_owned(),
            api_key: None,
            timeout: Duration::from_secs(30),
            retry: Retry::default(),
        }
    }

    /// The base URL requests are made under.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` (each percent-encoded as one path segment) under the base URL.
    pub(crate) fn url(&self, segments: &[&str], query: Query) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("checked in build: a base URL").pop_if_empty().extend(segments);
        if !query.0.is_empty() {
            url.query_pairs_mut().extend_pairs(query.0);
        }
        url
    }

    /// `GET` a JSON document.
    pub(crate) async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, Error> {
        self.send(Method::GET, url, None::<&()>, Idempotent::Yes).await
    }

    /// Sends one request under the retry rules and decodes its JSON answer.
    pub(crate) async fn send<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
        idempotent: Idempotent,
    ) -> Result<T, Error> {
        let mut attempt = 0;
        loop {
            let mut request = self.http.request(method.clone(), url.clone());
            if let Some(key) = &self.api_key {
                request = request.header("x-api-key", key.expose_secret());
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let answer = tokio::time::timeout(self.timeout, async {
                let response = request.send().await?;
                let status = response.status();
                Ok::<_, reqwest::Error>((status, response.bytes().await?))
            });
            let (error, retry) = match answer.await {
                Ok(Ok((status, bytes))) if status.is_success() => {
                    return serde_json::from_slice(&bytes)
                        .map_err(|e| Error::Decode { url: url.to_string(), detail: e.to_string() });
                }
                Ok(Ok((status, bytes))) => {
                    let retry = status == StatusCode::SERVICE_UNAVAILABLE && idempotent == Idempotent::Yes;
                    (Error::from_status(url.to_string(), status, &bytes), retry)
                }
                // A read may be sent again after any transport failure or a timeout; a write
                // only when the connection was never made, so it never left.
                Ok(Err(e)) => (self.transport(url.as_str(), &e), idempotent == Idempotent::Yes || e.is_connect()),
                Err(_elapsed) => {
                    (Error::Timeout { url: url.to_string(), timeout: self.timeout }, idempotent == Idempotent::Yes)
                }
            };
            if !retry || attempt >= self.retry.retries {
                return Err(error);
            }
            tokio::time::sleep(self.retry.wait(attempt)).await;
            attempt += 1;
        }
    }

    /// A transport failure: the server unreachable, or the connection lost.
    fn transport(&self, url: &str, e: &reqwest::Error) -> Error {
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            detail = format!("{detail}: {cause}");
            source = cause.source();
        }
        Error::Unavailable { url: url.to_owned(), detail }
    }
}
