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
    // The demo's behaviour, not its quality (that is the next file's test): small models.
    live.retrain.pipeline = testkit::quick_pipeline();
    DemoSettings {
        data,
        download: false,
        database_url: format!("sqlite://{}", dir.path().join("cinedata.db").display()),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        pace: Pace::Max,
        api_key: None,
        live,
        limits: Default::default(),
        journal: Some(dir.path().join("ratings.journal")),
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

/// `CINEDATA_SNAPSHOT_DIR=` (empty) is accepted as "no snapshots", as documented: the binary
/// gets past argument parsing and fails only at the (deliberately missing) database folder.
#[test]
fn an_empty_snapshot_dir_variable_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("missing/cinedata.db").display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_serving"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &database])
        .env("CINEDATA_SNAPSHOT_DIR", "")
        .output()
        .expect("the serving binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a missing database folder fails: {stderr}");
    assert!(!stderr.contains("invalid value"), "the empty variable parses: {stderr}");
    assert!(stderr.contains("connecting to"), "fails at the database, after parsing: {stderr}");
}

/// A `serving demo` process on `dir`'s database and journal; its address once it prints it.
fn start_demo_process(dir: &std::path::Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_serving"))
        .arg("demo")
        .arg("--data")
        .arg(ml_small())
        .args(["--listen", "127.0.0.1:0", "--snapshot-dir", "", "--retrain-every", "0", "--retrain-interval", "0"])
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.join("cinedata.db").display()))
        .arg("--journal")
        .arg(dir.join("ratings.journal"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the demo starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("CineData demo: ") {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
            }
        }
    });
    let address = rx.recv_timeout(Duration::from_secs(120)).expect("the demo prints its address");
    (child, address)
}

/// The crash: kill -9 right after the last `POST /ratings` got its 202, while the
/// release is still being replayed. Every acknowledged rating is in the store after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratings_acknowledged_with_202_survive_kill_9_of_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let (mut child, address) = start_demo_process(dir.path());
    let deadline = Instant::now() + Duration::from_secs(120);
    while !client.get(format!("{address}/movies/1")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "the demo serves /movies/1");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let users: Vec<i64> = (1_000_001..=1_000_150).collect();
    let posts = users.iter().map(|&user| {
        let client = client.clone();
        let url = format!("{address}/ratings");
        async move {
            let body = serde_json::json!({"userId": user, "movieId": 1, "rating": 4.5});
            let response = client.post(url).json(&body).send().await.expect("POST /ratings");
            assert_eq!(response.status(), 202, "{:?}", response.text().await);
        }
    });
    futures::future::join_all(posts).await;
    child.kill().expect("kill -9");
    child.wait().expect("the killed demo is reaped");

    let (mut child, address) = start_demo_process(dir.path());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut missing = users.clone();
    while !missing.is_empty() {
        let mut still = Vec::new();
        for &user in &missing {
            let found = client.get(format!("{address}/ratings/{user}/1")).send().await.is_ok_and(|r| r.status() == 200);
            if !found {
                still.push(user);
            }
        }
        missing = still;
        assert!(
            Instant::now() < deadline,
            "acknowledged ratings lost after kill -9: {} of 150: {missing:?}",
            missing.len()
        );
        if !missing.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    child.kill().expect("stopping the demo");
    let _ = child.wait();
}
