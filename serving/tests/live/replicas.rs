//! Two serving replicas on one PostgreSQL store and one broker: each follows every partition
//! into its own model, and both answer the same.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use serving::startup::{Application, ServeSettings};
use store::{ImportOptions, Store};
use testkit::postgres::TestDatabase;
use tokio_util::sync::CancellationToken;

use crate::helpers::ml_small;

/// A fresh database holding ml-latest-small, dropped with the returned [`TestDatabase`].
async fn database() -> TestDatabase {
    let db = TestDatabase::create("cinedata_replicas").await;
    let store = Store::connect(db.url()).await.unwrap();
    store.import(&movielens::Release::new(ml_small()), &ImportOptions::default()).await.unwrap();
    store.close().await;
    db
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> Value {
    let response = client.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {base}{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn two_replicas_on_one_postgres_store_answer_consistently() {
    let db = database().await;
    let broker = producer::EmbeddedBroker::start(&[producer::TopicSpec::new("ratings", 4)]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = CancellationToken::new();
    let mut bases = Vec::new();
    for replica in 0..2 {
        let mut settings = ServeSettings::new(db.url(), SocketAddr::from(([127, 0, 0, 1], 0)));
        settings.brokers = Some(broker.bootstrap_servers().to_owned());
        settings.live.snapshot_dir = Some(dir.path().join(format!("replica-{replica}")));
        settings.live.retrain.interval = None;
        settings.live.retrain.every_ratings = 0;
        let app = Application::build(&settings).await.expect("a replica builds");
        bases.push(format!("http://{}", app.local_addr().unwrap()));
        tokio::spawn(app.run_until_stopped(token.clone()));
    }
    let client = reqwest::Client::new();
    let wait_for = |check: &'static str, f: fn(&Value) -> bool| {
        let (client, bases) = (client.clone(), bases.clone());
        async move {
            testkit::wait_until(&format!("every replica {check}"), Duration::from_secs(90), || async {
                for base in &bases {
                    let model = get(&client, base, "/model").await;
                    if !f(&model) {
                        return Err(format!("{base}: not {check}: {model}"));
                    }
                }
                Ok(())
            })
            .await;
        }
    };
    wait_for("trained", |m| m["version"] == 1).await;

    // Ratings posted to one replica reach both models (one user: one partition, one order).
    for (movie, rating) in [(2, 5.0), (3, 1.0), (5, 4.5), (6, 2.0), (10, 4.0)] {
        let response = client
            .post(format!("{}/ratings", bases[0]))
            .json(&json!({"userId": 1, "movieId": movie, "rating": rating}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    wait_for("applied the 5 events", |m| m["eventsApplied"] == 5).await;

    let paths = [
        "/users/1/recommendations?n=20",
        "/users/2/recommendations?n=20&genre=comedy",
        "/users/414/recommendations?n=10&explain=true",
        "/users/424242/recommendations",
        "/movies/1/similar",
        "/users/1/profile",
        "/movies/1",
        "/ratings?user_id=7",
    ];
    for path in paths {
        let (a, b) = (get(&client, &bases[0], path).await, get(&client, &bases[1], path).await);
        assert_eq!(a, b, "the replicas disagree on {path}");
    }
    let profile = get(&client, &bases[1], "/users/1/profile").await;
    assert_eq!(profile["ratingCount"], 232 + 3, "movies 2, 3, 5, 6, 10: three are new to user 1");
    let (a, b) = (get(&client, &bases[0], "/model").await, get(&client, &bases[1], "/model").await);
    assert_eq!((&a["version"], &a["users"], &a["movies"]), (&b["version"], &b["users"], &b["movies"]));
    token.cancel();
}
