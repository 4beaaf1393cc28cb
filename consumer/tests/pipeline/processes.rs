//! Scale-out (issue 7): two `consumer` processes in one group against PostgreSQL persist a
//! replay of ml-latest-small exactly once between them.
//!
//! The first process runs in embedded mode (no `--brokers`): it keeps librdkafka's mock broker
//! alive and prints its address, which the second process gets as `--brokers`. Both serve
//! `/metrics` on a port of their own; the test reads their assignment and their persisted
//! counts from there, and the table from PostgreSQL.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use producer::replay::{ReplayOptions, Timeline};
use producer::topics::{RATINGS, TAGS};
use store::ImportOptions;
use testkit::metrics::samples;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

const TIMEOUT: Duration = Duration::from_secs(60);
/// Both topics have 32 partitions (`producer::topics::PARTITIONS`).
const PARTITIONS: f64 = 64.0;
const RATINGS_PERSISTED: &str = "cinedata_consumer_events_persisted_total{kind=\"rating\"}";
const TAGS_PERSISTED: &str = "cinedata_consumer_events_persisted_total{kind=\"tag\"}";
const ASSIGNED: &str = "cinedata_consumer_assigned_partitions";
const REBALANCES: &str = "cinedata_consumer_rebalances_total";

/// What a `consumer` process announces on stderr.
enum Announced {
    Metrics(SocketAddr),
    Broker(String),
}

/// A `consumer` process, its stderr collected; killed (SIGKILL) on drop, panics included.
struct Process {
    name: &'static str,
    child: Mutex<Child>,
    log: Arc<Mutex<Vec<String>>>,
    metrics: SocketAddr,
}

impl Process {
    /// Starts `consumer ARGS --metrics-listen 127.0.0.1:0` and waits for its metrics address
    /// (and, in embedded mode, its broker's address, returned as well).
    async fn start(name: &'static str, args: &[&str], embedded: bool) -> (Self, Option<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_consumer"))
            .args(args)
            .args(["--metrics-listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env_remove("CINEDATA_BROKERS")
            .env_remove("CINEDATA_REPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the consumer binary starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(addr) = line.strip_prefix("metrics at http://").and_then(|l| l.strip_suffix("/metrics"))
                    {
                        let _ = tx.send(Announced::Metrics(addr.parse().expect("a socket address")));
                    } else if let Some(rest) = line.strip_prefix("embedded Kafka broker at ") {
                        let addr = rest.split_whitespace().next().unwrap_or_default().to_owned();
                        let _ = tx.send(Announced::Broker(addr));
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut process = Self { name, child: Mutex::new(child), log, metrics: ([0, 0, 0, 0], 0).into() };
        let (metrics, broker) = process.announcements(rx, embedded).await;
        process.metrics = metrics;
        (process, broker)
    }

    async fn announcements(&self, rx: Receiver<Announced>, embedded: bool) -> (SocketAddr, Option<String>) {
        let got = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + TIMEOUT;
            let (mut metrics, mut broker) = (None, None);
            while metrics.is_none() || (embedded && broker.is_none()) {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(Announced::Metrics(addr)) => metrics = Some(addr),
                    Ok(Announced::Broker(addr)) => broker = Some(addr),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            metrics.map(|m| (m, broker))
        })
        .await
        .expect("reader task");
        match got {
            Some((metrics, broker)) if broker.is_some() || !embedded => (metrics, broker),
            _ => panic!("{} did not announce its metrics (and broker) address; {}", self.name, self.tail()),
        }
    }

    /// Panics with the log if the process has exited.
    fn assert_running(&self) {
        if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
            panic!("{} exited with {status}; {}", self.name, self.tail());
        }
    }

    /// The last lines of stderr, for failure messages.
    fn tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let start = log.len().saturating_sub(30);
        format!("last stderr lines of {}:\n{}", self.name, log[start..].join("\n"))
    }

    async fn scrape(&self) -> BTreeMap<String, f64> {
        self.assert_running();
        match get_metrics(self.metrics).await {
            Ok(body) => samples(&body),
            Err(e) => panic!("scraping {} at {}: {e}; {}", self.name, self.metrics, self.tail()),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The body of `GET /metrics` (plain HTTP/1.0), if the status is 200.
async fn get_metrics(addr: SocketAddr) -> Result<String, String> {
    let response = testkit::metrics::get(addr, "/metrics").await.map_err(|e| e.to_string())?;
    if response.status == 200 { Ok(response.body) } else { Err(response.head) }
}

fn get(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(f64::NAN)
}

/// One member's figures: (assigned partitions, rebalances, ratings persisted, tags persisted).
async fn figures(p: &Process) -> (f64, f64, f64, f64) {
    let m = p.scrape().await;
    (get(&m, ASSIGNED), get(&m, REBALANCES), get(&m, RATINGS_PERSISTED), get(&m, TAGS_PERSISTED))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumer_processes_in_one_group_persist_a_replay_into_postgres_exactly_once_between_them() {
    // Declared first, dropped last: the processes are killed before the database is dropped.
    let db = TestDb::postgres().await;
    let release = ml_small();
    let imported = db
        .store
        .import(&release, &ImportOptions { catalogue_only: true, ..Default::default() })
        .await
        .expect("the catalogue imports");
    assert_eq!((imported.ratings, imported.tags), (0, 0), "only the catalogue is imported: {imported:?}");
    let counts = db.store.counts().await.expect("counts");
    assert_eq!(counts, (9_742, 0, 0, 9_742), "(movies, ratings, tags, links) before the replay");

    let group = unique("processes");
    // Ratings and tags (no impressions): 64 partitions between the two.
    let common =
        ["--database-url", &db.url, "--group", &group, "--session-timeout-ms", "6000", "--impressions-topic", ""];
    let (first, broker) = Process::start("the first consumer (embedded broker)", &common, true).await;
    let brokers = broker.expect("the embedded broker's address");
    let second_args: Vec<&str> = common.iter().copied().chain(["--brokers", brokers.as_str()]).collect();
    let (second, _) = Process::start("the second consumer (--brokers)", &second_args, false).await;

    // The mock broker's group joins take ~3 s and the rebalance for the second member waits
    // for the session timeout: wait until the two own all 64 partitions between them.
    wait_for("both processes to own partitions, 64 between them", TIMEOUT, || async {
        let (a, b) = (figures(&first).await.0, figures(&second).await.0);
        if a > 0.0 && b > 0.0 && a + b == PARTITIONS { Ok(()) } else { Err(format!("assigned {a} + {b}")) }
    })
    .await;
    let rebalances_before = (figures(&first).await.1, figures(&second).await.1);

    // The replay, in this process (the producer binary is not built for this crate's tests).
    let timeline = tokio::task::spawn_blocking(move || Timeline::load(&release, true))
        .await
        .expect("load task")
        .expect("ml-latest-small loads");
    assert_eq!((timeline.len(), timeline.rating_count()), ((ML_SMALL_RATINGS + ML_SMALL_TAGS) as u64, 100_836));
    let options = ReplayOptions { tags_topic: Some(TAGS.to_owned()), ..ReplayOptions::new(RATINGS) };
    let report = producer::replay::replay_timeline(
        producer::producer_config(&brokers),
        Arc::new(timeline),
        options,
        CancellationToken::new(),
    )
    .await
    .expect("the replay runs");
    assert_delivered(&report, ML_SMALL_RATINGS + ML_SMALL_TAGS);

    let want = (ML_SMALL_RATINGS as i64, ML_SMALL_TAGS as i64);
    wait_for("every rating and tag in PostgreSQL", TIMEOUT, || async {
        let (_, ratings, tags, _) = db.store.counts().await.expect("counts");
        if (ratings, tags) == want {
            return Ok(());
        }
        let (a, b) = (figures(&first).await, figures(&second).await);
        Err(format!("{ratings} ratings, {tags} tags; (assigned, rebalances, ratings, tags): {a:?} / {b:?}"))
    })
    .await;
    // A batch's counters move right after its commit: wait for them to cover the table.
    let shares = || async {
        let (a, b) = (figures(&first).await, figures(&second).await);
        ((a.2, b.2), (a.3, b.3), (a.1, b.1))
    };
    wait_for("the persisted counters to cover every event", TIMEOUT, || async {
        let (r, t, _) = shares().await;
        if r.0 + r.1 >= want.0 as f64 && t.0 + t.1 >= want.1 as f64 { Ok(()) } else { Err(format!("{r:?} {t:?}")) }
    })
    .await;
    let ((ra, rb), (ta, tb), rebalances_after) = shares().await;

    // The tables are exactly the CSV files, row for row.
    assert_ratings_equal_csv(&db.store, &ml_small()).await;
    assert_same_rows("tags table vs tags.csv", &stored_tags(&db.store).await, &expected_tags(&ml_small()));
    let (_, ratings, tags, _) = db.store.counts().await.expect("counts");
    assert_eq!((ratings, tags), want, "rows appeared after the wait");

    // Both members did part of the work ...
    assert!(ra > 0.0 && rb > 0.0, "one process persisted every rating: {ra} / {rb}");
    // ... and together each event exactly once. Only a rebalance during the stream could
    // redeliver (a revoked partition's batch persisted but its offset not yet committed). Then
    // a counter may count an event twice, but the upsert keyed by (user, movie), newer
    // timestamp wins, leaves the table exact, as checked above; so with a rebalance we only
    // require the shares to cover the total.
    let (total_ratings, total_tags) = (ra + rb, ta + tb);
    if rebalances_after == rebalances_before {
        assert_eq!(total_ratings, ML_SMALL_RATINGS as f64, "ratings persisted by the two: {ra} + {rb}");
        assert_eq!(total_tags, ML_SMALL_TAGS as f64, "tags persisted by the two: {ta} + {tb}");
    } else {
        eprintln!("a rebalance during the stream ({rebalances_before:?} -> {rebalances_after:?}): shares may overlap");
        assert!(total_ratings >= ML_SMALL_RATINGS as f64, "{ra} + {rb}");
        assert!(total_tags >= ML_SMALL_TAGS as f64, "{ta} + {tb}");
    }
    eprintln!("ratings persisted: {ra} + {rb}; tags: {ta} + {tb}");
    drop(second);
    drop(first);
}
