//! SQLite on a small tmpfs that fills up and is freed again: the consumer keeps retrying
//! while the disk is full and, once space returns, persists everything by itself, without a
//! restart and without losing or skipping an event. Mounting needs root (CAP_SYS_ADMIN):
//! where it is refused the test says so and returns.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use consumer::{Embedded, Metrics, Settings};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::events::{RatingSubmitted, encode};
use store::Store;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

const TIMEOUT: Duration = Duration::from_secs(120);

/// A tmpfs mounted on a temp dir, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with the reason printed) where this process may not mount.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Self { dir }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run `mount`: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes a file until the file system is full; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("the filler file");
    let block = vec![0xA5u8; 64 * 1024];
    loop {
        if file.write_all(&block).is_err() || file.sync_all().is_err() {
            break;
        }
    }
    // Whatever is left in partial blocks too.
    let _ = file.write_all(&block[..4096]);
    path
}

async fn send(brokers: &str, rows: &[movielens::RatingRow]) {
    let producer: FutureProducer = producer::producer_config(brokers).create().expect("producer");
    let mut deliveries = Vec::new();
    for r in rows {
        let event = RatingSubmitted::new(r.user_id, r.movie_id, f64::from(r.rating), r.timestamp);
        let (key, payload) = (producer::send::key(r.user_id), encode(&event).expect("a valid rating"));
        let record = FutureRecord::to(producer::topics::RATINGS).key(&key).payload(&payload);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).expect("queued"));
    }
    for d in deliveries {
        d.await.expect("delivery future").expect("delivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stalls_the_consumer_which_resumes_by_itself_when_space_is_freed() {
    let Some(tmpfs) = Tmpfs::mount("24m") else { return };
    let url = format!("sqlite://{}", tmpfs.path().join("pipeline.db").display());
    let store = Store::connect(&url).await.expect("SQLite on the tmpfs");
    let movies: Vec<movielens::MovieRow> =
        ml_small().movies().expect("movies.csv").map(|m| m.expect("movies.csv parses")).collect();
    store.upsert_movies(&movies).await.expect("movies load");

    let settings = Settings { tags_topic: String::new(), batch_size: 2_000, ..Settings::new(None, url.clone()) };
    let embedded = Embedded::start(&settings).expect("embedded broker");
    let settings = embedded.settings().clone();
    let (metrics, shutdown) = (Metrics::default(), CancellationToken::new());
    let consumer = {
        let (settings, store, metrics, shutdown) = (settings.clone(), store.clone(), metrics.clone(), shutdown.clone());
        tokio::spawn(async move { consumer::run(&settings, store, metrics, None, shutdown).await })
    };
    let rows = first_ratings(60_000);
    let status = || format!("{:?}", metrics.snapshot());

    send(embedded.brokers(), &rows[..10_000]).await;
    wait_for_ratings(&store, 10_000, TIMEOUT, status).await;

    let filler = fill(tmpfs.path());
    send(embedded.brokers(), &rows[10_000..]).await;
    wait_for("database writes failing on the full disk", TIMEOUT, || async {
        let s = metrics.snapshot();
        if s.db_retries >= 3 { Ok(()) } else { Err(format!("{s:?}")) }
    })
    .await;
    assert!(!consumer.is_finished(), "the consumer keeps running on a full disk");

    std::fs::remove_file(&filler).expect("space freed");
    wait_for_ratings(&store, 60_000, TIMEOUT, status).await;
    assert!(!consumer.is_finished(), "resumed in the same process");
    let stored = stored_ratings(&store).await;
    let mut expected: Vec<RatingTuple> =
        rows.iter().map(|r| (r.user_id, r.movie_id, f64::from(r.rating), r.timestamp)).collect();
    expected.sort_by_key(|a| (a.0, a.1));
    assert_same_rows("ratings", &stored, &expected);

    shutdown.cancel();
    consumer.await.expect("consumer task").expect("the consumer stops cleanly");
    store.close().await;
}
