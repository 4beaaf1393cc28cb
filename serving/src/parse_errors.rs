//! hyper's own answers to requests it cannot parse, made JSON.
//!
//! For a malformed request line or header, a target over 64 KiB, more than 100 headers or a
//! head over its read buffer, hyper writes a bare `400`/`414`/`431` with an empty body itself,
//! before any handler runs, and offers no hook for that body. The service itself never sends
//! those statuses without a body ([`crate::error::json_bodies`] gives every error one), so
//! [`JsonParseErrors`] recognises hyper's in the bytes written to the socket and writes the
//! same `{"detail": ...}` JSON every other error has instead.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's I/O that rewrites hyper's empty-bodied parse-error answers as JSON.
pub struct JsonParseErrors<T> {
    inner: T,
    pending: Option<Rewritten>,
}

/// A rewritten answer on its way out.
struct Rewritten {
    bytes: Vec<u8>,
    /// How many of `bytes` are written.
    written: usize,
    /// How many of the caller's bytes it replaces: reported as written once it all is.
    stands_for: usize,
}

impl<T> JsonParseErrors<T> {
    /// Wraps a connection's I/O.
    pub fn new(inner: T) -> Self {
        Self { inner, pending: None }
    }
}

/// The statuses hyper answers parse errors with.
const STATUSES: [&[u8]; 3] = [b"HTTP/1.1 400 ", b"HTTP/1.1 414 ", b"HTTP/1.1 431 "];

/// `buf` rewritten with a JSON body if it is exactly one of hyper's parse-error answers: one of
/// [`STATUSES`], `content-length: 0`, nothing after the head.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    let code = STATUSES.iter().find(|s| buf.starts_with(s))?;
    if !buf.ends_with(b"\r\n\r\n") || buf.windows(4).position(|w| w == b"\r\n\r\n")? != buf.len() - 4 {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?;
    let mut lines = head.trim_end().split("\r\n");
    let status_line = lines.next()?;
    let headers: Vec<&str> = lines.collect();
    if !headers.iter().any(|h| h.eq_ignore_ascii_case("content-length: 0")) {
        return None;
    }
    let status = axum::http::StatusCode::from_bytes(&code[9..12]).ok()?;
    let detail = status.canonical_reason().unwrap_or("error").to_lowercase();
    let body = serde_json::to_string(&schemas::ErrorBody { detail }).ok()?;
    let mut out = format!("{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", body.len());
    for h in headers.iter().filter(|h| !h.to_ascii_lowercase().starts_with("content-length:")) {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonParseErrors<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> JsonParseErrors<T> {
    /// Writes what is left of the rewritten answer.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(p) = &mut self.pending {
            while p.written < p.bytes.len() {
                match ready!(Pin::new(&mut self.inner).poll_write(cx, &p.bytes[p.written..])) {
                    Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Ok(n) => p.written += n,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes the rewritten answer out, then reports the caller's bytes it stands for.
    fn finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        ready!(self.drive(cx))?;
        Poll::Ready(Ok(self.pending.take().map_or(0, |p| p.stands_for)))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.pending.is_none()
            && let Some(bytes) = rewrite(buf)
        {
            self.pending = Some(Rewritten { bytes, written: 0, stands_for: buf.len() });
        }
        if self.pending.is_some() {
            return self.finish(cx);
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Only what starts like one of hyper's answers is copied and looked at whole.
        let looks_like = bufs.iter().find(|b| !b.is_empty()).is_some_and(|b| b.starts_with(b"HTTP/1.1 4"));
        if self.pending.is_none()
            && looks_like
            && let Some(bytes) = rewrite(&bufs.iter().flat_map(|b| b.iter().copied()).collect::<Vec<u8>>())
        {
            self.pending = Some(Rewritten { bytes, written: 0, stands_for: bufs.iter().map(|b| b.len()).sum() });
        }
        if self.pending.is_some() {
            return self.finish(cx);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drive(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drive(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_s_bare_parse_error_answers_get_a_json_body() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 08:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(hyper).expect("rewritten")).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{head}");
        assert!(head.contains("content-type: application/json") && head.contains("date: Sun"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())) && !head.contains("content-length: 0"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["detail"], "request header fields too large");
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").is_some());
        assert!(rewrite(b"HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\n\r\n").is_some());
    }

    #[test]
    fn every_other_answer_passes_unchanged() {
        for other in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 24\r\n\r\n{\"detail\":\"bad request\"}"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK\r\n",
            b"{\"detail\":\"HTTP/1.1 400 \"}",
        ] {
            assert_eq!(rewrite(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    #[tokio::test]
    async fn a_rewritten_answer_is_written_whole_and_reported_as_the_original() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(16);
        let mut server = JsonParseErrors::new(server);
        let hyper = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        // The duplex buffer (16 bytes) takes the answer in several writes.
        let n = std::future::poll_fn(|cx| Pin::new(&mut server).poll_write(cx, hyper)).await.unwrap();
        assert_eq!(n, hyper.len());
        server.shutdown().await.unwrap();
        drop(server);
        let got = String::from_utf8(reader.await.unwrap()).unwrap();
        assert!(got.ends_with("{\"detail\":\"bad request\"}"), "{got}");
    }
}
