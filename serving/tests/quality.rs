//! What users get, measured as users get it: protocol C of `EVALUATION.md` through the demo.
//! The train part of ml-latest-small's temporal split is streamed in through the embedded
//! broker, persisted, learned and retrained on with the default models; then each evaluated
//! user's list is asked for over HTTP and scored against their test likes.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use evaluate::splits::{Part, temporal_split};
use model::metrics::{Ranking, rank_user};
use movielens::{RatingRow, Release};
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

async fn get(client: &reqwest::Client, url: String) -> Value {
    let response = client.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(response.status().is_success(), "GET {url}: {}", response.status());
    response.json().await.expect("JSON")
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
    let mut live = LiveSettings::new();
    // One retrain, on all of the train part, once the replay is persisted (the default models).
    live.retrain.every_ratings = 0;
    live.retrain.interval = None;
    let settings = DemoSettings {
        data: train_release(dir.path(), &train),
        download: false,
        database_url: format!("sqlite://{}", dir.path().join("cinedata.db").display()),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        pace: Pace::Max,
        api_key: None,
        live,
        limits: Default::default(),
        journal: None,
        posters: serving::ui::posters::PosterSettings::new(),
    };
    let demo = Demo::start(settings).await.expect("the demo starts");
    let base = format!("http://{}", demo.address());
    let token = CancellationToken::new();
    let task = tokio::spawn(demo.run(token.clone()));
    let client = reqwest::Client::new();

    let n = train.len() as u64;
    let started = Instant::now();
    loop {
        let model = get(&client, format!("{base}/model")).await;
        if model["eventsApplied"].as_u64() >= Some(n)
            && model["trainingRatings"].as_u64() == Some(n)
            && model["lastRetrain"]["trigger"] == "replay"
        {
            assert!(model["holdout"]["ndcgAt10"].as_f64().is_some_and(|v| v > 0.05), "{model}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "the demo did not get there: {model}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let mut ranking = Ranking::default();
    let mut users: Vec<&i64> = liked.keys().collect();
    users.sort_unstable();
    for user in users {
        let answer = get(&client, format!("{base}/users/{user}/recommendations?n=10")).await;
        let list: Vec<i64> =
            answer["items"].as_array().unwrap().iter().map(|m| m["movieId"].as_i64().unwrap()).collect();
        assert!(list.iter().all(|m| universe.contains(m)), "user {user}: a movie nobody rated in train");
        ranking.add(&list, rank_user(&list, &liked[user], 10));
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
