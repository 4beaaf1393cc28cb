//! A live app: SQLite with ml-latest-small, an embedded broker it follows and produces to,
//! snapshots in a temp dir; restartable on the same database, broker and snapshots.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use movielens::Release;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serving::startup::{Application, ServeSettings};
use store::{ImportOptions, Store};
pub use testkit::ml_small;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What survives a restart: the database file, the snapshots, the broker.
pub struct World {
    pub dir: tempfile::TempDir,
    pub broker: producer::EmbeddedBroker,
}

/// A running app.
pub struct LiveApp {
    pub address: String,
    pub store: Store,
    token: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    client: reqwest::Client,
}

impl World {
    /// A temp dir with ml-latest-small imported into SQLite, and a broker with the topic.
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let topics = [producer::TopicSpec::new("ratings", 4), producer::TopicSpec::new("impressions", 4)];
        let broker = producer::EmbeddedBroker::start(&topics).expect("the in-process Kafka mock starts");
        let world = Self { dir, broker };
        let store = Store::connect(&world.database_url()).await.expect("the store opens");
        let release = Release::new(ml_small());
        assert!(release.exists(), "ml-latest-small not found at {} (set CINEDATA_ML_SMALL)", ml_small().display());
        store.import(&release, &ImportOptions::default()).await.expect("ml-latest-small imports");
        store.close().await;
        world
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("cinedata.db").display())
    }

    pub fn snapshots(&self) -> PathBuf {
        self.dir.path().join("snapshots")
    }

    /// Starts the app and waits until it serves a trained (or restored) model.
    pub async fn start(&self) -> LiveApp {
        let live = self.start_with(|_| {}).await;
        live.wait_for(Duration::from_secs(60), |m| m["version"].as_u64() >= Some(1)).await;
        live
    }

    /// Starts the app with `configure` applied to its settings last; returns once it listens.
    pub async fn start_with(&self, configure: impl FnOnce(&mut ServeSettings)) -> LiveApp {
        let mut settings = ServeSettings::new(self.database_url(), SocketAddr::from(([127, 0, 0, 1], 0)));
        settings.brokers = Some(self.broker.bootstrap_servers().to_owned());
        settings.live.snapshot_dir = Some(self.snapshots());
        settings.live.retrain.interval = None;
        settings.live.retrain.every_ratings = 0;
        // Behaviour, not quality: small models retrain fast (tests/quality.rs uses the defaults).
        settings.live.retrain.pipeline = testkit::quick_pipeline();
        configure(&mut settings);
        let app = Application::build(&settings).await.expect("the app builds");
        let address = format!("http://{}", app.local_addr().expect("a bound address"));
        let store = app.state().store.clone();
        let token = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(token.clone()));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("a client");
        LiveApp { address, store, token, task: Some(task), client }
    }
}

impl LiveApp {
    /// Stops it gracefully (the last snapshot is saved before this returns).
    pub async fn stop(mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("the app task").expect("the app stops cleanly");
        }
    }

    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, Value) {
        let response = self.client.get(format!("{}{path}", self.address)).send().await.expect("GET completes");
        let status = response.status();
        let body = response.text().await.expect("a body");
        (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e} in {body}")))
    }

    pub async fn get_ok<T: DeserializeOwned>(&self, path: &str) -> T {
        let (status, body) = self.get(path).await;
        assert_eq!(status, reqwest::StatusCode::OK, "GET {path}: {body}");
        serde_json::from_value(body).expect("the documented shape")
    }

    pub async fn post(&self, path: &str, body: &Value) -> (reqwest::StatusCode, Value) {
        let response =
            self.client.post(format!("{}{path}", self.address)).json(body).send().await.expect("POST completes");
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }

    /// Polls `GET /model` until `done` holds, panicking after `deadline` with the last answer.
    pub async fn wait_for(&self, deadline: Duration, done: impl Fn(&Value) -> bool) -> Value {
        testkit::wait_until("GET /model to get there", deadline, || async {
            let (_, model) = self.get("/model").await;
            if done(&model) { Ok(model) } else { Err(model.to_string()) }
        })
        .await
    }

    /// Top-n movie ids for a user.
    pub async fn top(&self, user: i64, n: usize) -> Vec<i64> {
        let recs: schemas::recommend::UserRecommendations =
            self.get_ok(&format!("/users/{user}/recommendations?n={n}")).await;
        recs.items.iter().map(|m| m.movie_id).collect()
    }
}

impl Drop for LiveApp {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl LiveApp {
    /// The `/metrics` text.
    pub async fn get_text_metrics(&self) -> String {
        self.client.get(format!("{}/metrics", self.address)).send().await.unwrap().text().await.unwrap()
    }
}
