//! Impressions (`ListShown` events in batches, the lists serving showed) through the consumer
//! group: every one persisted exactly once across a consumer killed mid-stream, a bad batch
//! dead-lettered whole and a bad list alone, each with its reason.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use consumer::group::{DLQ_KIND, DLQ_LIST};
use consumer::{Embedded, Metrics, Settings};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::events::{EventId, ListShown, ListsShownWriter, SCHEMA_VERSION, unix_now};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

const TIMEOUT: Duration = Duration::from_secs(120);
const SHOWN: usize = 20_000;

fn shown(i: usize) -> ListShown {
    let user = (i % 600) as i64 + 1;
    ListShown {
        schema_version: SCHEMA_VERSION,
        event_id: EventId::random(),
        user_id: user,
        movie_ids: (0..10).map(|p| (i as i64 * 7 + p) % 9000 + 1).collect(),
        strategy: "personal".into(),
        model_version: 1,
        experiment: i.is_multiple_of(2).then(|| "exp".to_owned()),
        variant: i.is_multiple_of(2).then(|| if i.is_multiple_of(4) { "a".to_owned() } else { "b".to_owned() }),
        stream_time: 1_000_000_000 + i as i64,
        timestamp: unix_now(),
    }
}

async fn stored(store: &store::Store) -> usize {
    store.impression_ids().await.expect("reads impressions").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_impression_is_persisted_exactly_once_through_a_consumer_killed_mid_stream() {
    let db = TestDb::sqlite().await;
    let base = Settings { tags_topic: String::new(), ..Settings::new(None, db.url.clone()) };
    let embedded = Embedded::start(&base).expect("embedded broker");
    let settings = embedded.settings().clone();
    let brokers = embedded.brokers().to_owned();

    let events: Vec<ListShown> = (0..SHOWN).map(shown).collect();
    let producer: FutureProducer = producer::producer_config(&brokers).create().expect("producer");
    let mut pending = Vec::new();
    let now = unix_now();
    let mut too_long = serde_json::to_value(&events[0]).unwrap();
    too_long["movieIds"] = (1..=101).collect::<Vec<i64>>().into();
    let too_long = too_long.to_string();
    // As serving sends them: batches of lists, here 5 per message (4,000 messages, so the
    // consumer below, 50 messages a batch, is still at it when it is killed).
    for (i, chunk) in events.chunks(5).enumerate() {
        let mut writer = ListsShownWriter::new();
        for e in chunk {
            assert!(writer.push(e, now).expect("valid impression"));
        }
        let payload = writer.take();
        pending
            .push(producer.send_result(FutureRecord::to("impressions").key("r1").payload(&payload)).expect("queued"));
        if i == SHOWN / 10 {
            // Two poison impressions among them: a malformed batch, and a list of 101 movies
            // beside a good one (sent again: stored once).
            let again = serde_json::to_string(&events[0]).unwrap();
            let mixed = format!(r#"{{"schemaVersion":1,"lists":[{again},{too_long}]}}"#);
            for (key, bad) in [("bad-1", b"{\"schemaVersion\":1}".to_vec()), ("bad-2", mixed.into_bytes())] {
                pending.push(producer.send_result(FutureRecord::to("impressions").key(key).payload(&bad)).unwrap());
            }
        }
    }
    for p in pending {
        p.await.expect("delivered").expect("acknowledged");
    }

    // A consumer process in small batches, killed once part of the stream is in.
    let mut child = Command::new(env!("CARGO_BIN_EXE_consumer"))
        .args(["--brokers", &brokers, "--database-url", &db.url, "--group", &settings.group])
        .args(["--tags-topic", "", "--session-timeout-ms", "6000", "--batch-size", "50", "--batch-ms", "5"])
        .args(["--partitions", &settings.partitions.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the consumer binary starts");
    wait_for("some impressions stored", TIMEOUT, || async {
        let n = stored(&db.store).await;
        if n >= 1 { Ok(()) } else { Err(format!("{n} stored")) }
    })
    .await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let at_kill = stored(&db.store).await;
    assert!(at_kill < SHOWN, "the consumer finished before it could be killed");

    let metrics = Metrics::default();
    let shutdown = CancellationToken::new();
    let consumer = {
        let (settings, store, metrics, shutdown) =
            (settings.clone(), db.store.clone(), metrics.clone(), shutdown.clone());
        tokio::spawn(async move { consumer::run(&settings, store, metrics, None, shutdown).await })
    };
    wait_for("every impression stored and the poison dead-lettered", TIMEOUT, || async {
        let (n, s) = (stored(&db.store).await, metrics.snapshot());
        if n >= SHOWN && s.dead_letters >= 2 { Ok(()) } else { Err(format!("{n} stored, {s:?}")) }
    })
    .await;
    shutdown.cancel();
    consumer.await.expect("consumer task").expect("consumer runs");

    let ids = db.store.impression_ids().await.unwrap();
    let unique: BTreeSet<&String> = ids.iter().collect();
    let expected: BTreeSet<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(ids.len(), SHOWN, "exactly one row per impression");
    assert_eq!(unique.len(), SHOWN);
    assert!(unique.iter().all(|id| expected.contains(*id)), "only the impressions sent");
    let s = metrics.snapshot();
    assert_eq!(s.dead_letters_by_kind.values().sum::<u64>(), 2, "{s:?}");
    assert!(s.impressions as usize >= SHOWN - at_kill, "{s:?}");

    // The experiment's impressions read back with their variant, movies and stream time.
    let of = db.store.impressions_of("exp").await.unwrap();
    assert_eq!(of.len(), SHOWN / 2);
    let first = &of[0];
    assert_eq!((first.user_id, first.variant.as_str(), first.stream_time), (1, "a", 1_000_000_000));
    assert_eq!(first.movie_ids, events[0].movie_ids);

    // The bad batch is dead-lettered whole; the bad list alone, as its own bytes, with its place.
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", testkit::unique_name("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("DLQ reader");
    reader.subscribe(&[&settings.dlq_topic]).expect("subscribe");
    let mut dead = BTreeMap::new();
    while dead.len() < 2 {
        let m = tokio::time::timeout(TIMEOUT, reader.recv()).await.expect("dead letters arrive").expect("a message");
        let header = |name: &str| {
            m.headers()
                .and_then(|h| h.iter().find(|h| h.key == name))
                .map(|h| String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
        };
        let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
        let payload = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
        dead.insert(key, (payload, header(DLQ_KIND), header(DLQ_LIST)));
    }
    assert_eq!(dead["bad-1"], ("{\"schemaVersion\":1}".to_owned(), Some("malformed".to_owned()), None));
    assert_eq!(dead["bad-2"], (too_long, Some("invalid".to_owned()), Some("1".to_owned())));
}
