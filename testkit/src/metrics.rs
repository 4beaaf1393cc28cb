//! Reading Prometheus' text exposition format, scraping it over plain HTTP/1.0, finding the
//! metrics address a child process announces on stderr, and running such a process until
//! SIGTERM ([`MetricsProcess`]).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The samples of an exposition, keyed by series: `name{labels}` exactly as written (`name`
/// alone without labels). Comments, blank lines and unparsable values are skipped.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of one series (`name{labels}` exactly as written) in an exposition.
pub fn value(text: &str, series: &str) -> Option<f64> {
    samples(text).get(series).copied()
}

/// The series of metric `name` among `samples`, as (labels without braces, value): `""` for
/// the series without labels.
pub fn series<'a>(samples: &'a BTreeMap<String, f64>, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    samples.iter().filter_map(move |(key, value)| {
        let rest = key.strip_prefix(name)?;
        let labels = if rest.is_empty() { "" } else { rest.strip_prefix('{')?.strip_suffix('}')? };
        Some((labels, *value))
    })
}

/// The sum of every series of metric `name` in an exposition (0 when there is none).
pub fn sum(text: &str, name: &str) -> f64 {
    series(&samples(text), name).map(|(_, v)| v).sum()
}

/// An HTTP response: the status code, the head (status line and headers) and the body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// `GET path` over plain HTTP/1.0 (the server closes the connection after the body).
///
/// # Errors
/// When the connection or the exchange fails, or the answer has no head or status line.
pub async fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {response:?}"));
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| invalid("no end of the head"))?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| invalid("no status"))?;
    Ok(Response { status, head: head.to_owned(), body: body.to_owned() })
}

/// A child process's stderr, read to the end on a thread of its own (so the child never blocks
/// on a full pipe): every line is kept, and the address of each
/// `metrics at http://ADDR/metrics` line is passed on.
pub struct StderrWatch {
    addresses: mpsc::Receiver<SocketAddr>,
    reader: JoinHandle<Vec<String>>,
}

impl StderrWatch {
    /// Starts reading `stderr` (e.g. `child.stderr.take()`).
    pub fn start(stderr: impl Read + Send + 'static) -> Self {
        let (tx, addresses) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("metrics at http://").and_then(|l| l.strip_suffix("/metrics")) {
                    let _ = tx.send(addr.parse().expect("a socket address"));
                }
                lines.push(line);
            }
            lines
        });
        Self { addresses, reader }
    }

    /// The next metrics address announced within `timeout`; `None` if none was, or stderr
    /// ended first.
    pub async fn metrics_address(&self, timeout: Duration) -> Option<SocketAddr> {
        let next = crate::poll_until(timeout, || async {
            match self.addresses.try_recv() {
                Ok(addr) => Ok(Some(addr)),
                Err(TryRecvError::Disconnected) => Ok(None),
                Err(TryRecvError::Empty) => Err("no address yet".to_owned()),
            }
        });
        next.await.unwrap_or(None)
    }

    /// Every line, once stderr has ended (the process has exited). Blocks until then.
    ///
    /// # Panics
    /// When the reader panicked (an unparsable announced address).
    pub fn lines(self) -> Vec<String> {
        self.reader.join().expect("stderr reader")
    }
}

/// One of our binaries run with `--metrics-listen 127.0.0.1:0`: the process, its stderr
/// watched, and the address it announced for `/metrics`.
pub struct MetricsProcess {
    /// Names the process in failure messages, e.g. "the consumer".
    name: String,
    child: Child,
    stderr: StderrWatch,
    /// Where it serves `/metrics`.
    pub addr: SocketAddr,
}

impl MetricsProcess {
    /// Starts `command` (which must pass `--metrics-listen`) with `RUST_LOG=warn`, stdout
    /// discarded and stderr watched, and waits up to 60 s for the metrics address it announces.
    ///
    /// # Panics
    /// When the process does not start or announces no address in time.
    pub async fn start(name: &str, command: &mut Command) -> Self {
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        let stderr = StderrWatch::start(child.stderr.take().expect("stderr"));
        let addr = stderr
            .metrics_address(Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("{name} printed no metrics address"));
        Self { name: name.to_owned(), child, stderr, addr }
    }

    /// Stops the process with SIGTERM and waits for it.
    ///
    /// # Panics
    /// Unless it exits successfully (its stderr is in the message) and its metrics port is
    /// closed afterwards.
    pub async fn terminate(self) {
        let Self { name, mut child, stderr, addr } = self;
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
        assert!(status.success());
        let exited = tokio::task::spawn_blocking(move || child.wait()).await.expect("wait task").expect("wait");
        let lines = stderr.lines();
        assert!(exited.success(), "{name} exited with {exited:?} on SIGTERM; stderr:\n{}", lines.join("\n"));
        assert!(get(addr, "/metrics").await.is_err(), "the metrics port is still open after {name} exited");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP lag Lag.\n# TYPE lag gauge\nlag{topic=\"a\",partition=\"0\"} 3\n\
                        lag{topic=\"a\",partition=\"1\"} 4.5\nlag_total 7\nup 1\nbroken x\n\n";

    #[test]
    fn samples_are_keyed_by_series_as_written() {
        let m = samples(TEXT);
        assert_eq!(m.len(), 4, "{m:?}");
        assert_eq!(m.get("lag{topic=\"a\",partition=\"1\"}"), Some(&4.5));
        assert_eq!(value(TEXT, "up"), Some(1.0));
        assert_eq!(value(TEXT, "broken"), None);
        assert_eq!(value(TEXT, "lag"), None);
    }

    #[test]
    fn series_and_sum_take_one_metric_and_not_its_prefix_namesakes() {
        let m = samples(TEXT);
        let lag: Vec<_> = series(&m, "lag").collect();
        assert_eq!(lag, [("topic=\"a\",partition=\"0\"", 3.0), ("topic=\"a\",partition=\"1\"", 4.5)]);
        assert_eq!(series(&m, "up").collect::<Vec<_>>(), [("", 1.0)]);
        assert_eq!(sum(TEXT, "lag"), 7.5);
        assert_eq!(sum(TEXT, "missing"), 0.0);
    }

    #[tokio::test]
    async fn get_reads_status_head_and_body_and_fails_on_a_closed_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("an address");
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accepts");
            let mut request = vec![0; 1024];
            let n = stream.read(&mut request).await.expect("reads");
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nup 1\n").await.expect("writes");
            request
        });
        let response = get(addr, "/metrics").await.expect("GET /metrics");
        assert_eq!(response.status, 200);
        assert!(response.head.contains("Content-Type: text/plain"), "{}", response.head);
        assert_eq!(response.body, "up 1\n");
        assert!(server.await.expect("server").starts_with("GET /metrics HTTP/1.0\r\n"));
        assert!(get(addr, "/metrics").await.is_err(), "answered on a closed port");
    }

    #[tokio::test]
    async fn stderr_watch_finds_the_announced_address_and_keeps_every_line() {
        let text = "starting\nmetrics at http://127.0.0.1:9100/metrics\nrunning\n";
        let watch = StderrWatch::start(io::Cursor::new(text.as_bytes().to_vec()));
        let addr = watch.metrics_address(Duration::from_secs(5)).await;
        assert_eq!(addr, Some(SocketAddr::from(([127, 0, 0, 1], 9100))));
        assert_eq!(watch.metrics_address(Duration::from_secs(5)).await, None, "stderr ended");
        assert_eq!(watch.lines(), ["starting", "metrics at http://127.0.0.1:9100/metrics", "running"]);
    }
}
