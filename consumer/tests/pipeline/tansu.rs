//! The pipeline against tansu, a Kafka-compatible broker in a separate process (SQLite storage,
//! the only correct one per KAFKA.md), including a broker crash and restart mid-stream.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use consumer::{Metrics, Settings};
use producer::topics::TopicSpec;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

const TIMEOUT: Duration = Duration::from_secs(150);

/// `tansu` from `CINEDATA_TANSU` or the PATH; a missing one fails the test with the fix.
fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CINEDATA_TANSU") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("tansu")).find(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "tansu is not installed, and these tests run the pipeline against it: install it with \
                 `cargo install tansu --locked --features libsql` (scripts/test.sh does, ~15 min once) \
                 or point CINEDATA_TANSU at the binary"
            )
        })
}

/// A tansu broker on a free port with SQLite storage in a temp dir; killed on drop.
struct Tansu {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Tansu {
    async fn start() -> Self {
        let binary = tansu_binary();
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let mut tansu = Tansu { binary, dir: tempfile::tempdir().expect("temp dir"), port, child: None };
        tansu.spawn().await;
        tansu
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .expect("log file");
        let child = Command::new(&self.binary)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.dir.path())
            .env_remove("STORAGE_ENGINE")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let log = self.dir.path().join("tansu.log");
        wait_for("tansu to listen", Duration::from_secs(30), || async {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(_) => Ok(()),
                Err(e) => Err(format!("{e}; log: {}", std::fs::read_to_string(&log).unwrap_or_default())),
            }
        })
        .await;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

fn settings(db: &TestDb, tansu: &Tansu) -> Settings {
    Settings {
        brokers: Some(tansu.brokers()),
        group: unique("tansu"),
        tags_topic: String::new(),
        partitions: 8,
        session_timeout_ms: Some(6_000),
        batch_size: 5_000,
        ..Settings::new(None, db.url.clone())
    }
}

async fn create_topics(settings: &Settings) {
    let brokers = settings.brokers.clone().expect("brokers");
    let specs: Vec<TopicSpec> = settings.topic_specs();
    producer::ensure_topics(&brokers, &specs).await.expect("tansu creates the topics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_through_tansu_survives_a_broker_restart_mid_stream() {
    let mut tansu = Tansu::start().await;
    let db = TestDb::sqlite().await;
    let settings = settings(&db, &tansu);
    create_topics(&settings).await;
    let shutdown = CancellationToken::new();
    let metrics = Metrics::default();
    let consumer = {
        let (settings, store, metrics, shutdown) =
            (settings.clone(), db.store.clone(), metrics.clone(), shutdown.clone());
        tokio::spawn(async move { consumer::run(&settings, store, metrics, None, shutdown).await })
    };
    let replay = spawn_replay(&tansu.brokers(), ratings_timeline(), producer::Pace::Rate(20_000.0), shutdown.clone());

    wait_for("30,000 ratings before the crash", TIMEOUT, || async {
        let n = rating_count(&db.store).await;
        if n >= 30_000 { Ok(()) } else { Err(format!("{n} ratings; {:?}", metrics.snapshot())) }
    })
    .await;
    tansu.kill();
    let at_crash = rating_count(&db.store).await;
    assert!(at_crash < ML_SMALL_RATINGS as i64, "the stream ended before the broker could be killed");
    tansu.spawn().await;

    wait_for_ratings(&db.store, ML_SMALL_RATINGS as i64, TIMEOUT, || format!("{:?}", metrics.snapshot())).await;
    let report = replay.await.expect("replay task");
    assert_delivered(&report, ML_SMALL_RATINGS);
    shutdown.cancel();
    consumer.await.expect("consumer task").expect("consumer runs");
    assert_ratings_equal_csv(&db.store, &ml_small()).await;
}

/// kill -9 of the standalone `consumer` process against an out-of-process broker: the
/// restarted group resumes from the committed offsets and the table equals the CSV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_process_killed_mid_stream_against_tansu_loses_nothing() {
    let tansu = Tansu::start().await;
    let db = TestDb::sqlite().await;
    let settings = settings(&db, &tansu);
    create_topics(&settings).await;
    crate::embedded::kill_a_consumer_process_mid_stream(&db, &tansu.brokers(), &settings).await;
}

/// Poison events through a real broker: every kind reaches the dead-letter topic on tansu with
/// its reason and headers, and exactly the valid ratings are persisted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_events_through_tansu_land_in_its_dead_letter_topic() {
    let tansu = Tansu::start().await;
    let db = TestDb::sqlite().await;
    let settings = Settings { tags_topic: producer::topics::TAGS.into(), ..settings(&db, &tansu) };
    create_topics(&settings).await;
    crate::embedded::poison_round_trip(&db, &tansu.brokers(), &settings).await;
}
