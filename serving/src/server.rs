//! The HTTP/1 server loop, with the connection limits a public server needs (nginx's
//! defaults are the model): a client that sends half a header, idles on a keep-alive
//! connection or stalls its body is dropped after a timeout, and past a maximum number of
//! open connections new ones get a short JSON 503 instead of using up file descriptors.
//!
//! `axum::serve` runs hyper without a timer, so hyper's header-read timeout never fires
//! there; this loop is the same hyper connection with a timer and the limits added.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::metrics::Metrics;
use crate::parse_errors::JsonParseErrors;

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Time a client has to send a complete request head, counted from the connection's
    /// start or from the end of the previous response: it is both the header-read timeout
    /// and the idle keep-alive timeout (hyper runs one timer for both).
    pub header_timeout: Duration,
    /// Longest pause allowed while a request body arrives; past it the request is answered
    /// 408 and the connection closed.
    pub body_timeout: Duration,
    /// Open connections at most; further ones are answered 503 and closed. Capped at start
    /// to what the open-file limit leaves after [`FD_RESERVE`].
    pub max_connections: usize,
}

impl Default for ServerLimits {
    /// 10 s for a request head or between two body reads, 4,096 connections.
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(10), body_timeout: Duration::from_secs(10), max_connections: 4096 }
    }
}

/// File descriptors kept for everything but client connections (database pool, Kafka
/// sockets, snapshots, the refusals below).
pub const FD_RESERVE: u64 = 256;

/// Refused connections being answered at once at most; past it they are closed unanswered,
/// so a flood of refusals cannot use up descriptors either.
const MAX_REFUSALS: usize = 64;

/// What a connection past the limit is told before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
connection: close\r\nretry-after: 1\r\ncontent-length: 58\r\n\r\n\
{\"detail\":\"too many open connections, retry in a moment\"}\n";

/// Raises this process's open-file soft limit to its hard limit and returns the soft limit
/// in force (unchanged where the platform has none or refuses).
pub fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(u64::MAX, |(soft, _)| soft)
        }
    }
}

/// `limits.max_connections`, lowered so that connections cannot exhaust the open-file
/// limit `nofile`.
pub fn effective_max_connections(limits: &ServerLimits, nofile: u64) -> usize {
    let room = usize::try_from(nofile.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX).max(1);
    limits.max_connections.clamp(1, room)
}

/// Serves `router` on `listener` until `shutdown` fires, then lets open requests finish
/// (idle connections close at once) and returns when every connection is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ServerLimits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let max = effective_max_connections(limits, raise_open_file_limit());
    if max < limits.max_connections {
        tracing::warn!(max, asked = limits.max_connections, "open-file limit lowers the connection limit");
    }
    let slots = Arc::new(Semaphore::new(max));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let service = tower::ServiceBuilder::new()
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .service(router)
        .map_request(|req: Request<Incoming>| req.map(Body::new));
    let service = TowerToHyperService::new(service);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);

    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Per-connection errors (reset before accept) and EMFILE alike: wait a
                    // little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.connections_refused.inc();
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(permit);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = http.serve_connection(TokioIo::new(JsonParseErrors::new(stream)), service.clone());
        let shutdown = shutdown.clone();
        let metrics = metrics.clone();
        metrics.connections_open.inc();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
            metrics.connections_open.dec();
            drop(slot);
        });
    }
    drop(listener);
    // Every slot back means every connection closed.
    let _ = slots.acquire_many(u32::try_from(max).unwrap_or(u32::MAX)).await;
}

/// Answers a connection over the limit with [`REFUSAL`], then reads what the client sent
/// (briefly) so that closing does not reset the connection before the client reads the 503.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_content_length_matches_its_body() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head} / {body:?}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["detail"].as_str().unwrap().contains("too many"));
    }

    #[test]
    fn connection_limit_leaves_room_for_other_descriptors() {
        let limits = ServerLimits::default();
        assert_eq!(effective_max_connections(&limits, 1024), 1024 - 256);
        assert_eq!(effective_max_connections(&limits, 1_048_576), 4096);
        assert_eq!(effective_max_connections(&limits, 10), 1);
    }
}
