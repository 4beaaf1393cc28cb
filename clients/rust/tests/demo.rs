//! Every endpoint through the client, against the real demo run in-process (embedded broker,
//! SQLite in a temp dir, ml-latest-small replayed and learned), with ml-latest-small's values.

use std::path::PathBuf;
use std::time::Duration;

use cinedata_client::types::ab::{ExperimentConfig, ExperimentStatus, HOLDOUT, VariantConfig, VariantModel};
use cinedata_client::types::events::NewRating;
use cinedata_client::types::recommend::Strategy;
use cinedata_client::{Client, Error, ExperimentFilter, MovieFilter, Page, RatingFilter, RecommendOptions, TagFilter};
use futures::{StreamExt, TryStreamExt};
use serving::demo::{Demo, DemoSettings};
use testkit::{ml_small, wait_until};
use tokio_util::sync::CancellationToken;

/// The demo on ml-latest-small with the small test models; returns its base URL.
async fn start_demo(dir: &tempfile::TempDir, token: CancellationToken) -> String {
    let mut settings = DemoSettings::in_dir(ml_small(), dir.path());
    settings.live.retrain.every_ratings = 0;
    settings.live.retrain.pipeline = testkit::quick_pipeline();
    let demo = Demo::start(settings).await.expect("the demo starts");
    let base = format!("http://{}", demo.address());
    tokio::spawn(demo.run(token));
    base
}

/// Waits until every rating is persisted and learned and the replay's retrain is in.
async fn wait_until_ready(client: &Client) {
    wait_until("the demo to get ready", Duration::from_secs(240), || async {
        let model = client.model().await.expect("GET /model");
        let analytics = client.analytics().await.expect("GET /analytics");
        let replayed = model.last_retrain.as_ref().is_some_and(|r| r.trigger == "replay");
        if model.events_applied >= 100_836
            && replayed
            && analytics.rating_count == 100_836
            && analytics.tag_count == 3_683
        {
            Ok(())
        } else {
            Err(format!("{model:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_with_ml_latest_small_through_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let token = CancellationToken::new();
    let base = start_demo(&dir, token.clone()).await;
    let client = Client::new(&base).unwrap();
    wait_until_ready(&client).await;

    // Health and the catalogue.
    let health = client.health().await.unwrap();
    assert_eq!((health.status.as_str(), health.database.as_str()), ("ok", "sqlite"));
    let first = client.movies_page(&MovieFilter::default(), Page::default()).await.unwrap();
    assert_eq!(first.len(), 100);
    assert_eq!((first[0].movie_id, first[0].title.as_str()), (1, "Toy Story (1995)"));
    let toy = MovieFilter { title: Some("toy story".into()), genre: Some("animation".into()) };
    let found: Vec<_> = client.movies(&toy).map_ok(|m| m.movie_id).try_collect().await.unwrap();
    assert_eq!(found, [1, 3114, 78499], "Toy Story 1 to 3");
    assert_eq!(client.movies(&MovieFilter::default()).count().await, 9_742);
    let movie = client.movie(1).await.unwrap();
    assert_eq!(movie.ratings.len(), 215);
    match client.movie(99_999_999).await {
        Err(Error::NotFound { detail, url }) => {
            assert!(detail.contains("99999999"), "{detail}");
            assert_eq!(url, format!("{base}/movies/99999999"));
        }
        other => panic!("an unknown movie is NotFound: {other:?}"),
    }

    // Every rating, walked page by page; one user's; one rating.
    let all: Vec<_> = client.ratings(&RatingFilter::default()).try_collect().await.unwrap();
    assert_eq!(all.len(), 100_836);
    assert!(all.windows(2).all(|w| (w[0].user_id, w[0].movie_id) < (w[1].user_id, w[1].movie_id)), "no row twice");
    let user_1 = RatingFilter { user_id: Some(1), ..Default::default() };
    assert_eq!(client.ratings(&user_1).count().await, 232);
    let page = client.ratings_page(&user_1, Page { skip: 230, limit: 10 }).await.unwrap();
    assert_eq!(page.len(), 2);
    let rating = client.rating(1, 1).await.unwrap();
    assert_eq!((rating.rating, rating.timestamp), (4.0, 964_982_703));

    // Tags (a tag with a space is one path segment) and links.
    let tags: Vec<_> = client.tags(&TagFilter { user_id: Some(2), movie_id: Some(60756) }).try_collect().await.unwrap();
    let mut texts: Vec<_> = tags.iter().map(|t| t.tag.as_str()).collect();
    texts.sort_unstable();
    assert_eq!(texts, ["Highly quotable", "funny", "will ferrell"]);
    assert_eq!(client.tag(2, 60756, "Highly quotable").await.unwrap().timestamp, 1_445_714_996);
    assert!(matches!(client.tag(2, 60756, "not a tag/at all").await, Err(Error::NotFound { .. })));
    assert_eq!(client.tags(&TagFilter::default()).count().await, 3_683);
    let link = client.link(1).await.unwrap();
    assert_eq!((link.imdb_id.as_str(), link.tmdb_id), ("0114709", Some(862)));
    assert_eq!(client.links().count().await, 9_742);
    assert_eq!(client.links_page(Page { skip: 9_740, limit: 10 }).await.unwrap().len(), 2);

    // Analytics and the chart series.
    let analytics = client.analytics().await.unwrap();
    assert_eq!((analytics.movie_count, analytics.user_count), (9_742, 610));
    let months = client.ratings_per_month().await.unwrap();
    assert_eq!(months.iter().map(|m| m.count).sum::<i64>(), 100_836);
    let histogram = client.rating_histogram().await.unwrap();
    assert_eq!(histogram.len(), 10);
    assert_eq!(histogram.iter().map(|b| b.count).sum::<i64>(), 100_836);
    let genres = client.genre_charts().await.unwrap();
    assert!(genres.genres.iter().any(|g| g.genre == "Drama"), "{:?}", genres.genres);
    let comedy = genres.genres.iter().find(|g| g.genre == "Comedy").expect("Comedy");
    let by_year: i64 = genres.by_year.iter().filter(|g| g.genre == "Comedy").map(|g| g.count).sum();
    assert_eq!(by_year, comedy.rating_count, "the yearly counts add up to the genre's");
    assert!(genres.by_year.iter().filter(|g| g.genre == "Comedy").all(|g| (1996..=2018).contains(&g.year)));
    let top = client.top_movies(Some(3), None).await.unwrap();
    let most: Vec<_> = top.most_rated.iter().map(|m| (m.movie_id, m.rating_count)).collect();
    assert_eq!(most, [(356, 329), (318, 317), (296, 307)]);
    assert_eq!(client.movie_charts(1).await.unwrap().rating_count, 215);
    assert!(matches!(client.top_movies(Some(0), None).await, Err(Error::InvalidRequest { status: 422, .. })));

    // Live recommendations, similar movies, the profile and predictions.
    let options = RecommendOptions { n: Some(5), explain: true, ..Default::default() };
    let recs = client.recommendations(1, &options).await.unwrap();
    assert_eq!((recs.user_id, recs.strategy, recs.items.len()), (1, Strategy::Personal, 5));
    let rated: std::collections::HashSet<i64> =
        client.ratings(&user_1).map_ok(|r| r.movie_id).try_collect().await.unwrap();
    assert!(recs.items.iter().all(|m| !rated.contains(&m.movie_id)), "nothing the user already rated");
    assert!(recs.items.iter().all(|m| m.because.as_ref().is_some_and(|b| !b.is_empty())), "explained");
    let excluded = RecommendOptions { exclude: vec![recs.items[0].movie_id], genre: Some("comedy".into()), ..options };
    let other = client.recommendations(1, &excluded).await.unwrap();
    assert!(other.items.iter().all(|m| m.movie_id != recs.items[0].movie_id && m.genres.contains("Comedy")));
    let similar = client.similar(1, Some(5)).await.unwrap();
    assert_eq!(similar.items.len(), 5);
    assert!(similar.items.iter().all(|m| m.movie_id != 1));
    let profile = client.profile(1).await.unwrap();
    assert_eq!(profile.rating_count, 232);
    let predictions = client.predictions(1, &[1, 2]).await.unwrap();
    assert_eq!(predictions.items.iter().map(|p| p.movie_id).collect::<Vec<_>>(), [1, 2]);
    assert_eq!((predictions.items[0].rated, predictions.items[1].rated), (Some(4.0), None));
    assert!(predictions.items.iter().all(|p| (0.5..=5.0).contains(&p.predicted_rating)));

    // The model and its records.
    let model = client.model().await.unwrap();
    assert!(model.version >= 1 && model.holdout.is_some(), "{model:?}");
    let retrains = ExperimentFilter { kind: Some("retrain".into()), ..Default::default() };
    assert!(!client.experiments(&retrains).await.unwrap().is_empty());
    assert!(matches!(
        client.experiments(&ExperimentFilter { kind: Some("nonsense".into()), ..Default::default() }).await,
        Err(Error::InvalidRequest { status: 422, .. })
    ));

    // A/B experiments: configured, started (every list names its variant), stopped.
    ab_experiments(&client).await;

    // A new rating: accepted, persisted and learned; a bad one refused with the reason.
    let accepted = client.rate(&NewRating { user_id: 1, movie_id: 2, rating: 5.0, timestamp: None }).await.unwrap();
    assert!(!accepted.event_id.is_empty());
    wait_until("the new rating to be persisted", Duration::from_secs(30), || async {
        client.rating(1, 2).await.map_err(|e| e.to_string())
    })
    .await;
    let new = NewRating { user_id: 1, movie_id: 2, rating: 7.0, timestamp: None };
    match client.rate_many(&[NewRating { rating: 3.0, ..new }, new]).await {
        Err((1, Error::InvalidRequest { status: 422, detail, .. })) => assert!(detail.contains("rating"), "{detail}"),
        other => panic!("the second rating is refused: {other:?}"),
    }
    let started = client.retrain().await.unwrap();
    assert!(started.version >= model.version);

    // The README's example runs as written (with this demo's address).
    readme_example(&base).await.expect("the README's example runs");
    token.cancel();
}

/// An experiment through its whole life; it is stopped before returning, since a running one
/// changes every list (a failed assertion ends the test, and its demo, anyway).
async fn ab_experiments(client: &Client) {
    let variant = |name: &str, model, share| VariantConfig { name: name.into(), model, share };
    let mut config = ExperimentConfig {
        variants: vec![
            variant("control", VariantModel::Served, 1.0),
            variant("popular", VariantModel::Popularity, 1.0),
        ],
        control: None,
        holdout: 0.2,
        salt: None,
        window_days: 7.0,
    };
    let draft = client.put_ab_experiment("client-ab", &config).await.unwrap();
    assert_eq!((draft.name.as_str(), draft.status), ("client-ab", ExperimentStatus::Draft));
    config.window_days = 3.0;
    let changed = client.put_ab_experiment("client-ab", &config).await.unwrap();
    assert_eq!((changed.status, &changed.config), (ExperimentStatus::Draft, &config));
    let listed = client.ab_experiments().await.unwrap();
    assert_eq!(listed.experiments, [changed]);
    assert_eq!(client.recommendations(1, &RecommendOptions::default()).await.unwrap().variant, None, "a draft");
    let refused = client.put_ab_experiment("client-ab", &ExperimentConfig { holdout: 0.6, ..config.clone() }).await;
    assert!(
        matches!(&refused, Err(Error::InvalidRequest { status: 422, detail, .. }) if detail.contains("holdout")),
        "{refused:?}"
    );
    assert!(matches!(client.ab_experiment("bad name!").await, Err(Error::InvalidRequest { status: 422, .. })));
    assert!(matches!(client.ab_experiment("no-such").await, Err(Error::NotFound { .. })));
    assert!(matches!(client.start_ab_experiment("no-such").await, Err(Error::NotFound { .. })));

    assert_eq!(client.start_ab_experiment("client-ab").await.unwrap().status, ExperimentStatus::Running);
    client.put_ab_experiment("client-ab-2", &config).await.unwrap();
    let conflict = client.start_ab_experiment("client-ab-2").await;
    assert!(matches!(&conflict, Err(Error::InvalidRequest { status: 409, .. })), "{conflict:?}");
    let mut seen = std::collections::BTreeSet::new();
    for user in 1..=60 {
        let options = RecommendOptions { n: Some(5), ..Default::default() };
        let list = client.recommendations(user, &options).await.unwrap();
        assert_eq!(list.experiment.as_deref(), Some("client-ab"), "user {user}");
        let expected = config.assign("client-ab", user).variant;
        assert_eq!(list.variant.as_deref(), Some(expected), "user {user}");
        let strategy = if expected == "popular" { Strategy::Trending } else { Strategy::Personal };
        assert_eq!(list.strategy, strategy, "user {user} in {expected}");
        seen.insert(expected);
    }
    assert_eq!(seen.len(), 3, "control, popular and {HOLDOUT} among 60 users: {seen:?}");
    let report = client.ab_experiment("client-ab").await.unwrap();
    assert_eq!((report.status, report.control.as_str()), (ExperimentStatus::Running, "control"));
    let names: Vec<&str> = report.outcomes.iter().map(|o| o.variant.as_str()).collect();
    assert_eq!(names, ["control", "popular", HOLDOUT]);
    assert_eq!(client.stop_ab_experiment("client-ab").await.unwrap().status, ExperimentStatus::Stopped);
    assert_eq!(client.recommendations(1, &RecommendOptions::default()).await.unwrap().experiment, None);
    let report = client.ab_experiment("client-ab").await.unwrap();
    let actions: Vec<&str> = report.history.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(actions, ["created", "changed", "started", "stopped"]);
    assert_eq!(report.config, config);
}

/// The lines between the markers are the README's "From Rust" example, word for word, with
/// the demo's address for `http://127.0.0.1:8000`.
async fn readme_example(base: &str) -> Result<(), cinedata_client::Error> {
    // README begin
    use cinedata_client::{Client, RecommendOptions};
    let client = Client::new(base)?;
    println!("{}", client.movie(1).await?.title);
    let options = RecommendOptions { n: Some(5), explain: true, ..Default::default() };
    for movie in client.recommendations(1, &options).await?.items {
        println!("{:.2} {} (because of {:?})", movie.score, movie.title, movie.because);
    }
    // README end
    Ok(())
}

#[test]
fn the_readme_shows_the_tested_example() {
    let readme = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let section = readme.split("## From Rust").nth(1).expect("README has a \"From Rust\" section");
    let block = section.split("```rust\n").nth(1).and_then(|b| b.split("```").next()).expect("a rust block");
    let source = include_str!("demo.rs");
    let tested = source.split("// README begin\n").nth(1).and_then(|s| s.split("    // README end").next()).unwrap();
    let tested: Vec<String> = tested
        .lines()
        .map(|l| {
            l.strip_prefix("    ").unwrap_or(l).replace("Client::new(base)", "Client::new(\"http://127.0.0.1:8000\")")
        })
        .collect();
    let shown: Vec<&str> = block.lines().filter(|l| !l.starts_with("# ")).collect();
    assert_eq!(shown, tested, "README's \"From Rust\" example and readme_example() differ");
}
