//! The README's main command, in-process: `serving demo` on ml-latest-small with a SQLite file
//! in a temp dir and the embedded broker, as a fresh machine would run it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use producer::replay::Pace;
use serde_json::Value;
use serving::demo::{Demo, DemoSettings};
use serving::live::LiveSettings;
use tokio_util::sync::CancellationToken;

fn ml_small() -> PathBuf {
    std::env::var_os("CINEDATA_ML_SMALL").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/movielens/ml-latest-small"),
        PathBuf::from,
    )
}

fn settings(dir: &tempfile::TempDir, data: PathBuf) -> DemoSettings {
    let mut live = LiveSettings::new();
    live.snapshot_dir = Some(dir.path().join("snapshots"));
    live.retrain.every_ratings = 25_000;
    DemoSettings {
        data,
        download: false,
        database_url: format!("sqlite://{}", dir.path().join("cinedata.db").display()),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        pace: Pace::Max,
        api_key: None,
        live,
        posters: serving::ui::posters::PosterSettings::new(),
    }
}

async fn get(client: &reqwest::Client, url: String) -> Value {
    let response = client.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(response.status().is_success(), "GET {url}: {}", response.status());
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn the_demo_replays_the_release_persists_it_learns_it_and_serves_recommendations() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(settings(&dir, ml_small())).await.expect("the demo starts");
    let base = format!("http://{}", demo.address());
    let token = CancellationToken::new();
    let task = tokio::spawn(demo.run(token.clone()));
    let client = reqwest::Client::new();

    // Every rating reaches the live model and the store; retrains run on the way.
    let started = Instant::now();
    loop {
        let model = get(&client, format!("{base}/model")).await;
        let counts = get(&client, format!("{base}/analytics")).await;
        if model["eventsApplied"].as_u64() >= Some(100_836)
            && model["trainingRatings"] == 100_836
            && model["lastRetrain"]["trigger"] == "replay"
            && counts["rating_count"] == 100_836
            && counts["tag_count"] == 3_683
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "the demo did not get there: {model} {counts}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let recs = get(&client, format!("{base}/users/1/recommendations?explain=true")).await;
    assert_eq!(recs["strategy"], "personal");
    assert_eq!(recs["items"].as_array().map(Vec::len), Some(10));
    let movie = get(&client, format!("{base}/movies/1")).await;
    assert_eq!(movie["ratings"].as_array().map(Vec::len), Some(215), "the replay persisted movie 1's ratings");
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("cinedata_online_updates_total{outcome=\"applied\"}"), "{metrics}");

    token.cancel();
    task.await.expect("the demo task").expect("the demo stops cleanly");
    assert!(dir.path().join("snapshots").read_dir().unwrap().count() >= 1, "a snapshot on the way out");
}

#[tokio::test]
async fn without_a_release_the_demo_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("ml-latest-small");
    let error = match Demo::start(settings(&dir, missing)).await {
        Ok(_) => panic!("a demo without data must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("--download") && error.contains("data/README.md"), "{error}");
}
