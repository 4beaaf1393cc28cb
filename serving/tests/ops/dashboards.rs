//! Every PromQL query of the shipped Grafana dashboards returns data from a real Prometheus
//! (Debian's `prometheus`; `PROMETHEUS` names the binary, scripts/test.sh exports it) scraping a
//! running demo on ml-latest-small that answers traffic, runs an A/B experiment and
//! dead-letters a malformed event.

use std::cell::Cell;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use producer::replay::Pace;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use serving::demo::{Demo, DemoExperiment, DemoSettings};
use testkit::{ml_small, wait_until, workspace};
use tokio_util::sync::CancellationToken;

fn prometheus_binary() -> PathBuf {
    let path = std::env::var_os("PROMETHEUS").map_or_else(|| PathBuf::from("/usr/bin/prometheus"), PathBuf::from);
    assert!(
        path.exists(),
        "Prometheus not found at {} (scripts/test.sh installs Debian's prometheus and exports PROMETHEUS)",
        path.display()
    );
    path
}

/// Percent-encodes a query-string value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Every `expr` of every panel (rows included) of every dashboard file.
fn dashboard_queries() -> Vec<(String, String, String)> {
    let dir = workspace().join("ops/grafana/dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut stack: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
        while let Some(panel) = stack.pop() {
            stack.extend(panel["panels"].as_array().into_iter().flatten());
            for target in panel["targets"].as_array().into_iter().flatten() {
                assert_eq!(panel["datasource"]["uid"], "prometheus", "{}: {}", path.display(), panel["title"]);
                let expr = target["expr"].as_str().expect("a PromQL target").to_owned();
                out.push((path.file_name().unwrap().to_string_lossy().into_owned(), panel["title"].to_string(), expr));
            }
        }
    }
    out
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn every_dashboard_query_returns_data_from_a_scraped_demo() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "the dashboards cover ingest, lag, DLQ, model, retrains, HTTP, resources");
    let prometheus = prometheus_binary();

    let dir = tempfile::tempdir().unwrap();
    let mut settings = DemoSettings::in_dir(ml_small(), dir.path());
    settings.live.snapshot_dir = Some(dir.path().join("snapshots"));
    // Slow enough that the replay is still running while Prometheus scrapes.
    settings.pace = Pace::Rate(5_000.0);
    // An A/B experiment on the replay, for the Experiments row.
    settings.experiment = Some(
        DemoExperiment::parse(
            r#"{"name": "dash", "variants": [{"name": "a", "model": "served", "share": 1},
                {"name": "b", "model": "popularity", "share": 1}]}"#,
        )
        .expect("a valid experiment"),
    );
    let demo = Demo::start(settings).await.expect("the demo starts");
    let (address, brokers) = (demo.address(), demo.brokers().to_owned());
    let token = CancellationToken::new();
    let task = tokio::spawn(demo.run(token.clone()));

    // Prometheus scraping the demo every second.
    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: serving\n    \
             static_configs:\n      - targets: ['{address}']\n"
        ),
    )
    .unwrap();
    let _prometheus = Prometheus(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", prometheus.display())),
    );

    // Traffic: reads of every kind, ratings in, a poison event for the dead-letter topic.
    let client = reqwest::Client::new();
    let base = format!("http://{address}");
    let producer: FutureProducer = producer::producer_config(&brokers).create().unwrap();
    producer
        .send(FutureRecord::<str, [u8]>::to("ratings").key("1").payload(b"not json"), Duration::from_secs(10))
        .await
        .expect("the poison event is produced");
    let pending = Cell::new(queries);
    let round = Cell::new(0u64);
    wait_until("data for every dashboard query", Duration::from_secs(120), || async {
        // Ten rounds of traffic 100 ms apart, then the queries still without data are asked again.
        for _ in 0..10 {
            let r = round.get();
            for path in [
                "/users/1/recommendations",
                "/users/999999/recommendations",
                "/movies/1/similar",
                "/movies/1",
                "/analytics",
                "/movies/0",
            ] {
                let _ = client.get(format!("{base}{path}")).send().await;
            }
            let _ = client
                .post(format!("{base}/ratings"))
                .json(&json!({"userId": 1 + r % 600, "movieId": 1, "rating": 4.0}))
                .send()
                .await;
            if r.is_multiple_of(20) {
                let _ = client.post(format!("{base}/model/retrain")).send().await;
            }
            round.set(r + 1);
            // Pacing, not synchronisation: traffic spread over Prometheus's 1 s scrapes, for the rates.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut still = Vec::new();
        for (file, title, expr) in pending.take() {
            let answer: Option<Value> = match client
                .get(format!("http://127.0.0.1:{port}/api/v1/query?query={}", encode(&expr)))
                .send()
                .await
            {
                Ok(r) => r.json().await.ok(),
                Err(_) => None,
            };
            let has_data = answer.as_ref().is_some_and(|a| {
                a["status"] == "success" && a["data"]["result"].as_array().is_some_and(|r| !r.is_empty())
            });
            if let Some(a) = &answer {
                assert_ne!(a["errorType"], "bad_data", "{file} {title}: invalid PromQL {expr}: {a}");
            }
            if !has_data {
                still.push((file, title, expr));
            }
        }
        let status = format!("queries without data: {still:#?}");
        let done = still.is_empty();
        pending.set(still);
        if done { Ok(()) } else { Err(status) }
    })
    .await;
    token.cancel();
    task.await.unwrap().unwrap();
}
