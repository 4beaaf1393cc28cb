//! Slow, idle, stalled, oversize and junk clients: the server drops them after its timeouts,
//! refuses connections past its limit with a JSON 503, keeps answering everyone else, and
//! every error it controls is JSON. Raw sockets, since an HTTP client would not misbehave.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use serving::server::ServerLimits;
use store::Backend;
use testkit::wait_until;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app_configured};

/// A response read off a raw socket.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    head: String,
    body: String,
}

impl RawResponse {
    /// Asserts a JSON `{"detail": ...}` body with a `content-type: application/json`.
    fn assert_json_error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{self:?}");
        assert!(self.head.to_ascii_lowercase().contains("content-type: application/json"), "{self:?}");
        let json: Value = serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e} in {self:?}"));
        json["detail"].as_str().filter(|d| !d.is_empty()).unwrap_or_else(|| panic!("no detail in {self:?}")).to_owned()
    }
}

fn socket_addr(app: &TestApp) -> SocketAddr {
    app.address.trim_start_matches("http://").parse().expect("the app's socket address")
}

/// Reads one response (head, then `content-length` bytes of body, or up to EOF), failing
/// past `deadline`.
async fn read_response(stream: &mut TcpStream, deadline: Duration) -> RawResponse {
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let length = head.lines().find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
                });
                if let Some(length) = length
                    && buf.len() >= end + 4 + length
                {
                    break;
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(deadline, read).await.expect("a response before the deadline");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response head in {text:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {head:?}"));
    RawResponse { status, head: head.to_owned(), body: body.to_owned() }
}

/// Sends `request` on a new connection and reads the response.
async fn exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    exchange_within(addr, request, Duration::from_secs(10)).await
}

/// [`exchange`], the response due within `deadline`.
async fn exchange_within(addr: SocketAddr, request: &[u8], deadline: Duration) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream.write_all(request).await.expect("request written");
    read_response(&mut stream, deadline).await
}

/// Whether the server closes `stream` (EOF or reset) before `deadline`.
async fn closed_by_server(stream: &mut TcpStream, deadline: Duration) -> bool {
    let mut sink = [0u8; 1024];
    tokio::time::timeout(deadline, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// The lock-out: a thousand connections that send half a header and wait. With the
/// default limits they are all held, every normal request is still answered, and the
/// header-read timeout closes them.
#[tokio::test]
async fn a_thousand_half_open_clients_do_not_lock_out_others() {
    serving::server::raise_open_file_limit();
    let app = spawn_app_configured(Backend::Sqlite, |_| {}).await;
    let addr = socket_addr(&app);
    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..1000 {
        let mut stream = TcpStream::connect(addr).await.expect("a slow client connects");
        stream.write_all(b"GET / HTTP/1.1\r\nX: ").await.expect("half a header");
        slow.push(stream);
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    wait_until("the server to hold the slow clients", Duration::from_secs(5), || async {
        let metrics = client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
        let open = metrics
            .lines()
            .find_map(|l| l.strip_prefix("cinedata_http_connections_open "))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("the open connections gauge");
        if open >= 1000.0 { Ok(()) } else { Err(format!("{open} open")) }
    })
    .await;
    for id in 1..=50 {
        let response = client
            .get(format!("{}/movies/{id}", app.address))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /movies/{id} while 1,000 slow clients are held: {e}"));
        assert!(response.status() == 200 || response.status() == 404, "{}", response.status());
    }
    assert!(opened.elapsed() < ServerLimits::default().header_timeout, "the checks ran while the clients were held");
    for stream in &mut slow {
        assert!(
            closed_by_server(stream, Duration::from_secs(30)).await,
            "the header-read timeout closes a slow client"
        );
    }
    let _: Value = app.get_ok("/movies/1").await;
}

#[tokio::test]
async fn idle_keep_alive_and_half_header_connections_are_closed() {
    let app = spawn_app_configured(Backend::Sqlite, |s| s.limits.header_timeout = Duration::from_secs(1)).await;
    let addr = socket_addr(&app);
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut idle, Duration::from_secs(10)).await.status, 200);
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nX: ").await.unwrap();
    let started = Instant::now();
    assert!(closed_by_server(&mut idle, Duration::from_secs(10)).await, "an idle keep-alive connection is closed");
    assert!(closed_by_server(&mut half, Duration::from_secs(10)).await, "a half-sent header is closed");
    assert!(started.elapsed() >= Duration::from_millis(500), "not closed before the timeout");
}

#[tokio::test]
async fn connections_past_the_limit_get_a_json_503_and_service_resumes() {
    let app = spawn_app_configured(Backend::Sqlite, |s| s.limits.max_connections = 8).await;
    let addr = socket_addr(&app);
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Accepted in order: the ninth finds no slot.
    let refused = exchange(addr, b"GET /movies/1 HTTP/1.1\r\nhost: test\r\n\r\n").await;
    let detail = refused.assert_json_error(503);
    assert!(detail.contains("too many open connections"), "{detail}");
    assert!(refused.head.to_ascii_lowercase().contains("retry-after"), "{refused:?}");
    drop(held);
    let response = wait_until("slots back once the held connections close", Duration::from_secs(10), || async {
        let response = exchange(addr, b"GET /metrics HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").await;
        if response.status == 200 { Ok(response) } else { Err(format!("{response:?}")) }
    })
    .await;
    assert!(response.body.contains("cinedata_http_connections_refused_total 1"), "{}", response.body);
}

#[tokio::test]
async fn a_stalled_body_gets_a_json_408() {
    let app = spawn_app_configured(Backend::Sqlite, |s| s.limits.body_timeout = Duration::from_secs(1)).await;
    let request = b"POST /ratings HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 60\r\n\r\n{\"userId\": 1,";
    let detail = exchange(socket_addr(&app), request).await.assert_json_error(408);
    assert!(detail.contains("stopped arriving"), "{detail}");
}

#[tokio::test]
async fn an_oversize_content_length_is_refused_before_its_body() {
    // A long body timeout: the answer can only come from the Content-Length check.
    let app = spawn_app_configured(Backend::Sqlite, |s| s.limits.body_timeout = Duration::from_secs(120)).await;
    let request =
        b"POST /ratings HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 3000000\r\n\r\n";
    let detail = exchange_within(socket_addr(&app), request, Duration::from_secs(5)).await.assert_json_error(413);
    assert!(detail.contains("3000000 bytes"), "{detail}");
}

#[tokio::test]
async fn an_oversize_chunked_body_is_413_json() {
    let app = spawn_app_configured(Backend::Sqlite, |_| {}).await;
    let stream = TcpStream::connect(socket_addr(&app)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        let head = b"POST /ratings HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        writer.write_all(head).await?;
        let chunk = [b' '; 65_536];
        for _ in 0..48 {
            writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            writer.write_all(&chunk).await?;
            writer.write_all(b"\r\n").await?;
        }
        writer.write_all(b"0\r\n\r\n").await
    });
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut buf)).await;
    let _ = sender.await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("application/json") && text.contains("\"detail\""), "{text}");
}

/// The metric blow-up: 100 requests with distinct 30 KB methods used to add 55 MB to
/// `/metrics`. Each gets a JSON 405, and they all share the `other` label.
#[tokio::test]
async fn junk_methods_get_json_errors_and_do_not_grow_metrics() {
    let app = spawn_app_configured(Backend::Sqlite, |_| {}).await;
    let addr = socket_addr(&app);
    let before = app.get_text("/metrics").await.1.len();
    for i in 0..100u32 {
        // Distinct 30 KB tokens: the index in letters, then padding.
        let mut method: String = i.to_string().chars().map(|d| (b'A' + d as u8 - b'0') as char).collect();
        method.extend(std::iter::repeat_n('Q', 30_000 - method.len()));
        let request = format!("{method} /movies/1 HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
        exchange(addr, request.as_bytes()).await.assert_json_error(405);
    }
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(metrics.contains("method=\"other\""), "junk methods are counted as `other`");
    assert!(metrics.len() < before + 8_192, "/metrics grew from {before} to {} bytes", metrics.len());
}

/// Answers from libraries and layers (Swagger UI's file server, the fallback) are JSON too.
#[tokio::test]
async fn library_error_answers_are_json() {
    let app = spawn_app_configured(Backend::Sqlite, |_| {}).await;
    let addr = socket_addr(&app);
    for path in ["/docs/%2e%2e", "/docs/nothing-here.js", "/no/such/route"] {
        let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
        exchange(addr, request.as_bytes()).await.assert_json_error(404);
    }
}

/// Request targets and heads past our limits get JSON 414 and 431 from the app, not hyper's
/// empty-bodied ones (hyper's own limits sit far beyond ours); a target at the `exclude`
/// limit (1,000 ids, percent-encoded) still passes.
#[tokio::test]
async fn long_targets_and_large_heads_get_json_414_and_431() {
    let app = spawn_app_configured(Backend::Sqlite, |_| {}).await;
    let addr = socket_addr(&app);
    let long = format!("/movies?title={}", "a".repeat(20_000));
    let request = format!("GET {long} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    let detail = exchange(addr, request.as_bytes()).await.assert_json_error(414);
    assert!(detail.contains("16384"), "{detail}");

    let cookie = "c".repeat(40_000);
    let request = format!("GET /movies/1 HTTP/1.1\r\nhost: test\r\ncookie: {cookie}\r\nconnection: close\r\n\r\n");
    let detail = exchange(addr, request.as_bytes()).await.assert_json_error(431);
    assert!(detail.contains("32768"), "{detail}");
    // Many small headers add up the same way.
    let many: String = (0..90).map(|i| format!("x-h{i}: {}\r\n", "v".repeat(400))).collect();
    let request = format!("GET /movies/1 HTTP/1.1\r\nhost: test\r\n{many}connection: close\r\n\r\n");
    exchange(addr, request.as_bytes()).await.assert_json_error(431);

    // 1,000 six-digit ids with percent-encoded commas: under the limit, answered normally.
    let exclude = (100_000..101_000).map(|id: u32| id.to_string()).collect::<Vec<_>>().join("%2C");
    let request =
        format!("GET /users/1/recommendations?exclude={exclude} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    let response = exchange(addr, request.as_bytes()).await;
    assert!(response.status != 414 && response.status != 431 && response.status < 500, "{response:?}");
}

/// What hyper refuses before any handler runs (a malformed request line or header, a target
/// over its 64 KiB, more than its 100 headers) is JSON too: the bare answers hyper writes are
/// rewritten on their way to the socket.
#[tokio::test]
async fn requests_hyper_cannot_parse_get_json_errors() {
    let app = spawn_app_configured(Backend::Sqlite, |_| {}).await;
    let addr = socket_addr(&app);
    exchange(addr, b"THIS IS NOT HTTP\r\n\r\n").await.assert_json_error(400);
    exchange(addr, b"GET /movies/1 HTTP/1.1\r\nhost: test\r\nbad header line\r\n\r\n").await.assert_json_error(400);
    let huge = format!("GET /movies?title={} HTTP/1.1\r\nhost: test\r\n\r\n", "a".repeat(70_000));
    exchange(addr, huge.as_bytes()).await.assert_json_error(414);
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let request = format!("GET /movies/1 HTTP/1.1\r\nhost: test\r\n{many}\r\n");
    exchange(addr, request.as_bytes()).await.assert_json_error(431);
    // The same connection type still serves normal requests.
    let ok = exchange(addr, b"GET /movies/1 HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").await;
    assert_eq!(ok.status, 200, "{ok:?}");
}
