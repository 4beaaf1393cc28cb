//! The README's main command, in-process: `serving demo` on ml-latest-small with a SQLite file
//! in a temp dir and the embedded broker, as a fresh machine would run it.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use evaluate::splits::{Part, temporal_split};
use model::metrics::{Ranking, rank_user};
use movielens::{RatingRow, Release};

use producer::replay::Pace;
use schemas::ab::ExperimentReport;
use serde_json::Value;
use serving::demo::{Demo, DemoExperiment, DemoSettings};
use serving::live::LiveSettings;
use testkit::{ml_small, wait_until};
use tokio_util::sync::CancellationToken;

mod support;
use support::{start_demo, start_demo_with};

fn settings(dir: &tempfile::TempDir, data: PathBuf) -> DemoSettings {
    let mut settings = DemoSettings::in_dir(data, dir.path());
    settings.live.snapshot_dir = Some(dir.path().join("snapshots"));
    settings.live.retrain.every_ratings = 25_000;
    // The demo's behaviour, not its quality (that is the next file's test): small models.
    settings.live.retrain.pipeline = testkit::quick_pipeline();
    settings
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
    wait_until("the demo to learn and persist the release", Duration::from_secs(180), || async {
        let model = get(&client, format!("{base}/model")).await;
        let counts = get(&client, format!("{base}/analytics")).await;
        if model["eventsApplied"].as_u64() >= Some(100_836)
            && model["trainingRatings"] == 100_836
            && model["lastRetrain"]["trigger"] == "replay"
            && counts["rating_count"] == 100_836
            && counts["tag_count"] == 3_683
        {
            Ok(())
        } else {
            Err(format!("{model} {counts}"))
        }
    })
    .await;
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

/// The shipped experiment whose winner is planted (`ops/experiments/planted.json`): the served
/// model (EASE re-ranked) against random unrated movies. The replayed users' real later
/// ratings must pick the served model with 95% confidence, and the model page must say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_better_variant_wins_the_demo_experiment() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(&dir, ml_small());
    settings.experiment =
        Some(DemoExperiment::read(&testkit::workspace().join("ops/experiments/planted.json")).expect("the file"));
    settings.pace = Pace::Rate(2_000.0);
    let demo = Demo::start(settings).await.expect("the demo starts");
    let base = format!("http://{}", demo.address());
    let token = CancellationToken::new();
    let task = tokio::spawn(demo.run(token.clone()));
    let client = reqwest::Client::new();

    wait_until("the replay persisted", Duration::from_secs(300), || async {
        let counts = get(&client, format!("{base}/analytics")).await;
        if counts["rating_count"] == 100_836 { Ok(()) } else { Err(counts.to_string()) }
    })
    .await;
    let report: ExperimentReport = wait_until("outcomes over the whole replay", Duration::from_secs(60), || async {
        let report: ExperimentReport =
            serde_json::from_value(get(&client, format!("{base}/experiments/planted")).await)
                .expect("an experiment report");
        let users: u64 = report.outcomes.iter().map(|o| o.users).sum();
        if users >= 500 { Ok(report) } else { Err(format!("{:?}", report.outcomes)) }
    })
    .await;
    println!("{:#?}", report.outcomes);
    let [random, served, holdout] = &report.outcomes[..] else { panic!("{:?}", report.outcomes) };
    let names = (random.variant.as_str(), served.variant.as_str(), holdout.variant.as_str());
    assert_eq!(names, ("random", "served", "holdout"));
    let won = served.vs_control.expect("compared with the control");
    assert!(won.low > 0.0, "the served model wins with 95% confidence: {served:?} against {random:?}");
    assert!(served.gain > random.gain);
    let page = client.get(format!("{base}/ui/model")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("served leads"), "the model page names the winner");

    token.cancel();
    task.await.expect("the demo task").expect("the demo stops cleanly");
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

/// Secrets never printed: a database password and the API keys given to `serve` appear
/// nowhere in its output when it fails to connect, though the error names the database.
#[test]
fn a_failed_start_names_the_database_without_its_password_or_the_keys() {
    for url in ["postgres://cine:hunter2@127.0.0.1:1/cinedata", "mysql://cine:hunter2@127.0.0.1/cinedata"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_serving"))
            .args(["serve", "--listen", "127.0.0.1:0", "--snapshot-dir", "", "--database-url", url])
            .args(["--api-key", "key-s3cret", "--tmdb-api-key", "tmdb-s3cret"])
            .env("RUST_LOG", "debug")
            .output()
            .expect("the serving binary runs");
        let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "an unreachable database fails the start: {output}");
        assert!(output.contains("cine:***@127.0.0.1"), "the error names the database: {output}");
        for secret in ["hunter2", "key-s3cret", "tmdb-s3cret"] {
            assert!(!output.contains(secret), "{secret} printed: {output}");
        }
    }
}

/// The crash: kill -9 right after the last `POST /ratings` got its 202, while the
/// release is still being replayed. Every acknowledged rating is in the store after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratings_acknowledged_with_202_survive_kill_9_of_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let (mut child, address) = start_demo(dir.path());
    wait_until("the demo to serve /movies/1", Duration::from_secs(120), || async {
        match client.get(format!("{address}/movies/1")).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(r.status().to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
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
    child.kill();

    let (child, address) = start_demo(dir.path());
    // The users whose rating was not found yet: only those are asked again.
    let missing = Cell::new(users.clone());
    wait_until("every acknowledged rating after kill -9", Duration::from_secs(120), || async {
        let mut still = Vec::new();
        for user in missing.take() {
            let found = client.get(format!("{address}/ratings/{user}/1")).send().await.is_ok_and(|r| r.status() == 200);
            if !found {
                still.push(user);
            }
        }
        let status = format!("acknowledged ratings lost after kill -9: {} of 150: {still:?}", still.len());
        let done = still.is_empty();
        missing.set(still);
        if done { Ok(()) } else { Err(status) }
    })
    .await;
    drop(child);
}

/// kill -9 while a retrain runs (after the replay's retrain wrote a snapshot, and after 20
/// acknowledged ratings): the restarted demo restores the snapshot, keeps every acknowledged
/// rating and the whole release, and retrains again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_retrain_loses_no_rating_and_the_restart_retrains() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = dir.path().join("snapshots");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let (mut child, address) = start_demo_with(dir.path(), Some(&snapshots));
    let model = wait_for_model(&client, &address, "the replay's retrain and its snapshot", |m| {
        m["lastRetrain"]["trigger"] == "replay" && m["version"].as_u64() >= Some(1) && snapshot_count(&snapshots) > 0
    })
    .await;
    let version = model["version"].as_u64().unwrap();

    let users: Vec<i64> = (2_000_001..=2_000_020).collect();
    for &user in &users {
        let body = serde_json::json!({"userId": user, "movieId": 1, "rating": 4.0});
        let response = client.post(format!("{address}/ratings")).json(&body).send().await.expect("POST /ratings");
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
    }
    let response = client.post(format!("{address}/model/retrain")).send().await.expect("POST /model/retrain");
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    let model = get(&client, format!("{address}/model")).await;
    assert_eq!(model["retraining"], true, "the retrain is still running at the kill: {model}");
    child.kill();

    let (child, address) = start_demo_with(dir.path(), Some(&snapshots));
    let total = 100_836 + users.len() as u64;
    let model = wait_for_model(&client, &address, "the restart's retrain on every rating", |m| {
        m["lastRetrain"]["trigger"] == "replay" && m["trainingRatings"].as_u64() == Some(total)
    })
    .await;
    // Versions continue from the restored snapshot: without it the restart would count from 1.
    assert!(model["version"].as_u64() > Some(version), "the restart restored version {version} and retrained: {model}");
    for &user in &users {
        let response = client.get(format!("{address}/ratings/{user}/1")).send().await.expect("GET a rating");
        assert_eq!(response.status(), 200, "user {user}'s acknowledged rating is kept");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&snapshots)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left in the snapshot folder: {leftovers:?}");
    drop(child);
}

/// Model snapshot files written so far.
fn snapshot_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().starts_with("model-")).count()
    })
}

/// Polls `GET /model` until `done` holds (four minutes at most), returning that answer.
async fn wait_for_model(client: &reqwest::Client, address: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_until(what, Duration::from_secs(240), || async {
        if let Ok(response) = client.get(format!("{address}/model")).send().await
            && let Ok(model) = response.json::<Value>().await
        {
            if done(&model) { Ok(model) } else { Err(format!("not reached: {model}")) }
        } else {
            Err("/model never answered".to_owned())
        }
    })
    .await
}

// What users get, measured as users get it: protocol C of `EVALUATION.md` through the demo.
// The train part of ml-latest-small's temporal split is streamed in through the embedded
// broker, persisted, learned and retrained on with the default models; then each evaluated
// user's list is asked for over HTTP and scored against their test likes.

/// A release folder with the catalogue and the train ratings only (no tags).
fn train_release(dir: &std::path::Path, train: &[&RatingRow]) -> PathBuf {
    let out = dir.join("ml-latest-small-train");
    std::fs::create_dir_all(&out).unwrap();
    for name in ["movies.csv", "links.csv"] {
        std::fs::copy(ml_small().join(name), out.join(name)).unwrap();
    }
    let mut ratings = std::io::BufWriter::new(std::fs::File::create(out.join("ratings.csv")).unwrap());
    writeln!(ratings, "userId,movieId,rating,timestamp").unwrap();
    for r in train {
        writeln!(ratings, "{},{},{:.1},{}", r.user_id, r.movie_id, r.rating, r.timestamp).unwrap();
    }
    ratings.flush().unwrap();
    std::fs::write(out.join("tags.csv"), "userId,movieId,tag,timestamp\n").unwrap();
    out
}

#[tokio::test]
async fn served_lists_meet_the_top_n_goal_on_protocol_c() {
    let release = Release::new(ml_small());
    assert!(release.exists(), "ml-latest-small not found at {} (set CINEDATA_ML_SMALL)", ml_small().display());
    let rows: Vec<RatingRow> = release.ratings().unwrap().map(|r| r.unwrap()).collect();
    let parts = temporal_split(&rows);
    let train: Vec<&RatingRow> = rows.iter().zip(&parts).filter(|(_, p)| **p != Part::Test).map(|(r, _)| r).collect();
    let mut liked: HashMap<i64, HashSet<i64>> = HashMap::new();
    for (r, _) in rows.iter().zip(&parts).filter(|(r, p)| **p == Part::Test && r.rating >= 4.0) {
        liked.entry(r.user_id).or_default().insert(r.movie_id);
    }
    let universe: HashSet<i64> = train.iter().map(|r| r.movie_id).collect();
    assert_eq!((liked.len(), universe.len()), (592, 8230), "EVALUATION.md's figures");

    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(&dir, train_release(dir.path(), &train));
    // One retrain, on all of the train part, once the replay is persisted, with the default
    // models: the quality users get.
    settings.live = LiveSettings::new();
    settings.live.retrain.every_ratings = 0;
    settings.live.retrain.interval = None;
    let demo = Demo::start(settings).await.expect("the demo starts");
    let base = format!("http://{}", demo.address());
    let token = CancellationToken::new();
    let task = tokio::spawn(demo.run(token.clone()));
    // Asked as a Rust user of the API would: through the typed client.
    let client = cinedata_client::Client::new(&base).unwrap();

    let n = train.len() as u64;
    let model = wait_until("the demo to learn the train part and retrain", Duration::from_secs(600), || async {
        let model = client.model().await.expect("GET /model");
        if model.events_applied >= n
            && model.training_ratings == n
            && model.last_retrain.as_ref().is_some_and(|r| r.trigger == "replay")
        {
            Ok(model)
        } else {
            Err(format!("{model:?}"))
        }
    })
    .await;
    assert!(model.holdout.and_then(|h| h.ndcg_at_10).is_some_and(|v| v > 0.05), "{model:?}");

    let mut ranking = Ranking::default();
    let mut users: Vec<&i64> = liked.keys().collect();
    users.sort_unstable();
    let ten = cinedata_client::RecommendOptions { n: Some(10), ..Default::default() };
    for &user in users {
        let answer = client.recommendations(user, &ten).await.expect("a list");
        let list: Vec<i64> = answer.items.iter().map(|m| m.movie_id).collect();
        assert!(list.iter().all(|m| universe.contains(m)), "user {user}: a movie nobody rated in train");
        ranking.add(&list, rank_user(&list, &liked[&user], 10));
    }
    let (means, coverage) = (ranking.means(), ranking.coverage(universe.len()));
    println!(
        "served over HTTP: NDCG@10 {:.4}, P@10 {:.4}, HR@10 {:.4}, coverage {coverage:.4} ({} users)",
        means.ndcg,
        means.precision,
        means.hit,
        ranking.users()
    );
    // The top-N goal (1.2 × implicit's ALS) and ALS's coverage, as served.
    assert!(means.ndcg >= 0.147, "served NDCG@10 {:.4} < 0.147", means.ndcg);
    assert!(coverage >= 0.0588, "served coverage {coverage:.4} < 0.0588");

    token.cancel();
    task.await.expect("the demo task").expect("the demo stops cleanly");
}
