//! Personal lists, filters, explanations, profiles and cold start.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use schemas::recommend::{SimilarMovies, Strategy, UserProfile, UserRecommendations};
use serde_json::json;
use store::{Page, RatingQuery};
use testkit::wait_until;

use crate::helpers::World;

async fn rated(store: &store::Store, user: i64) -> HashSet<i64> {
    let query = RatingQuery { user_id: Some(user), ..RatingQuery::default() };
    store.ratings(&query, Page { skip: 0, limit: 100_000 }).await.unwrap().iter().map(|r| r.movie_id).collect()
}

#[tokio::test]
async fn a_posted_rating_changes_the_users_recommendations_within_a_second() {
    let world = World::new().await;
    let app = world.start().await;
    let before = app.top(1, 10).await;
    assert_eq!(before.len(), 10);
    // User 1 rates their current top recommendation: it must leave the list.
    let (status, body) = app.post("/ratings", &json!({"userId": 1, "movieId": before[0], "rating": 1.0})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let now = wait_until("the recommendations to change within 1 s of the rating", Duration::from_secs(1), || async {
        let now = app.top(1, 10).await;
        if now != before { Ok(now) } else { Err(format!("unchanged: {now:?}")) }
    })
    .await;
    assert!(!now.contains(&before[0]), "a rated movie is never recommended: {now:?}");

    // A brand-new user: trending first, personal once they rated something.
    let cold: UserRecommendations = app.get_ok("/users/987654/recommendations").await;
    assert_eq!((cold.strategy, cold.items.len()), (Strategy::Trending, 10));
    let (status, _) = app.post("/ratings", &json!({"userId": 987654, "movieId": 1, "rating": 5.0})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let warm = wait_until("a personal list within 1 s of the first rating", Duration::from_secs(1), || async {
        let warm: UserRecommendations = app.get_ok("/users/987654/recommendations").await;
        if warm.strategy == Strategy::Personal { Ok(warm) } else { Err(format!("still cold: {:?}", warm.strategy)) }
    })
    .await;
    assert!(warm.items.iter().all(|m| m.movie_id != 1));
    let profile: UserProfile = app.get_ok("/users/987654/profile").await;
    assert_eq!((profile.rating_count, profile.mean_rating), (1, 5.0));
    assert_eq!(profile.top_rated[0].title, "Toy Story (1995)");
}

#[tokio::test]
async fn ratings_in_quick_succession_leave_the_list_at_once_and_re_rank_it_once_per_refresh() {
    let world = World::new().await;
    let refresh = Duration::from_secs(4);
    let app = world.start_with(|s| s.live.list_refresh = refresh).await;
    app.wait_for(Duration::from_secs(60), |m| m["version"].as_u64() >= Some(1)).await;
    let rate = |movie: i64| {
        let app = &app;
        async move {
            let (status, body) = app.post("/ratings", &json!({"userId": 1, "movieId": movie, "rating": 0.5})).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        }
    };
    let first = app.top(1, 10).await;
    // The first own rating after a quiet spell re-ranks the next list at once: ten movies.
    rate(first[0]).await;
    let second = wait_until("the rated movie to leave the list", Duration::from_secs(2), || async {
        let now = app.top(1, 10).await;
        if now.contains(&first[0]) { Err(format!("still there: {now:?}")) } else { Ok(now) }
    })
    .await;
    let recomputed = std::time::Instant::now();
    assert_eq!(second.len(), 10, "re-ranked, not just filtered: {second:?}");
    // Another rating within the refresh: the same list at once, without that movie.
    rate(second[0]).await;
    let third = wait_until("the second rated movie to leave the list", Duration::from_secs(2), || async {
        let now = app.top(1, 10).await;
        if now.contains(&second[0]) { Err(format!("still there: {now:?}")) } else { Ok(now) }
    })
    .await;
    assert!(recomputed.elapsed() < refresh, "the check ran within the refresh");
    assert_eq!(third, second[1..], "the kept list without the movie rated since");
    // Once the refresh has passed, the next request re-ranks again: ten movies, none rated.
    let fourth = wait_until("a re-ranked list after the refresh", refresh + Duration::from_secs(5), || async {
        let now = app.top(1, 10).await;
        assert!(!now.contains(&first[0]) && !now.contains(&second[0]), "a rated movie came back: {now:?}");
        if now.len() == 10 { Ok(now) } else { Err(format!("still the kept list: {now:?}")) }
    })
    .await;
    assert!(recomputed.elapsed() >= refresh, "re-ranked only after the refresh: {fourth:?}");
    let recomputed = std::time::Instant::now();

    // A burst: two ratings in the refresh. Past it, the next answer is the kept list without
    // them, given at once while the list is recomputed in the background for a later request.
    rate(fourth[0]).await;
    rate(fourth[1]).await;
    wait_until("both rated movies to leave the list", Duration::from_secs(3), || async {
        let now = app.top(1, 10).await;
        if now == fourth[2..] { Ok(()) } else { Err(format!("not yet: {now:?}")) }
    })
    .await;
    assert!(recomputed.elapsed() < refresh, "the burst fell within the refresh");
    tokio::time::sleep((refresh + Duration::from_millis(200)).saturating_sub(recomputed.elapsed())).await;
    assert_eq!(app.top(1, 10).await, fourth[2..], "answered from the kept list while it is recomputed");
    let fifth = wait_until("the list recomputed in the background", Duration::from_secs(5), || async {
        let now = app.top(1, 10).await;
        if now.len() == 10 { Ok(now) } else { Err(format!("still the kept list: {now:?}")) }
    })
    .await;
    let rated = [first[0], second[0], fourth[0], fourth[1]];
    assert!(rated.iter().all(|m| !fifth.contains(m)), "no rated movie: {fifth:?}");
}

#[tokio::test]
async fn lists_never_hold_rated_or_excluded_movies_and_honour_the_genre() {
    let world = World::new().await;
    let app = world.start().await;
    for user in [1, 2, 7, 68, 414, 610] {
        let seen = rated(&app.store, user).await;
        let recs: UserRecommendations = app.get_ok(&format!("/users/{user}/recommendations?n=100")).await;
        assert_eq!((recs.strategy, recs.items.len()), (Strategy::Personal, 100));
        assert!(recs.items.iter().all(|m| !seen.contains(&m.movie_id)), "user {user} got a movie they rated");
        assert!(recs.items.windows(2).all(|w| w[0].score >= w[1].score), "best first");

        let exclude: Vec<i64> = recs.items.iter().take(5).map(|m| m.movie_id).collect();
        let list = exclude.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let path = format!("/users/{user}/recommendations?n=20&genre=comedy&exclude={list}");
        let comedies: UserRecommendations = app.get_ok(&path).await;
        assert_eq!(comedies.items.len(), 20);
        for m in &comedies.items {
            assert!(m.genres.split('|').any(|g| g == "Comedy"), "{} is not a comedy", m.title);
            assert!(!exclude.contains(&m.movie_id) && !seen.contains(&m.movie_id));
        }
    }
    let explained: UserRecommendations = app.get_ok("/users/1/recommendations?n=5&explain=true").await;
    let query = RatingQuery { user_id: Some(1), ..RatingQuery::default() };
    let ratings = app.store.ratings(&query, Page { skip: 0, limit: 1000 }).await.unwrap();
    let liked: HashSet<i64> = ratings.iter().filter(|r| r.rating >= 4.0).map(|r| r.movie_id).collect();
    let reasons: Vec<_> = explained.items.iter().flat_map(|m| m.because.clone().expect("explain=true")).collect();
    assert!(!reasons.is_empty(), "user 1 has 232 ratings: some support the list");
    // Only movies user 1 liked are cited, each with the stars they gave it.
    assert!(reasons.iter().all(|b| liked.contains(&b.movie_id) && b.weight > 0.0 && !b.title.is_empty()));
    assert!(reasons.iter().all(|b| b.rating >= 4.0), "{reasons:?}");

    // Predicted ratings from the live model.
    let predicted: schemas::recommend::Predictions = app.get_ok("/users/1/predictions?movieId=1,2").await;
    assert_eq!(predicted.items.iter().map(|p| p.movie_id).collect::<Vec<_>>(), vec![1, 2]);
    assert!(predicted.items.iter().all(|p| (0.5..=5.0).contains(&p.predicted_rating)));
    assert_eq!((predicted.items[0].rated, predicted.items[1].rated), (Some(4.0), None), "user 1 rated movie 1 only");
    assert_eq!(app.get("/users/1/predictions?movieId=99999999").await.0, StatusCode::NOT_FOUND);

    let profile: UserProfile = app.get_ok("/users/1/profile").await;
    assert_eq!(profile.rating_count, 232);
    assert!((profile.mean_rating - 4.366).abs() < 0.01, "{}", profile.mean_rating);
    assert!(!profile.favourite_genres.is_empty() && profile.top_rated.len() == 10);
    assert!(profile.top_rated.iter().all(|m| m.rating == 5.0));

    // Bad input: 4xx JSON, never a 500.
    for path in [
        "/users/0/recommendations",
        "/users/abc/recommendations",
        "/users/1/recommendations?n=0",
        "/users/1/recommendations?n=101",
        "/users/1/recommendations?exclude=1,x",
        "/users/1/recommendations?genre=not-a-genre",
        "/users/1/recommendations?explain=maybe",
        "/movies/1/similar?n=1000",
        "/movies/-1/similar",
        "/users/1/predictions",
        "/users/1/predictions?movieId=1,x",
        "/users/0/predictions?movieId=1",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert!(body["detail"].is_string());
    }
    assert_eq!(app.get("/movies/999999999/similar").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/users/999999/profile").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cold_users_and_movies_without_ratings_get_sensible_answers() {
    let world = World::new().await;
    let app = world.start().await;
    let cold: UserRecommendations = app.get_ok("/users/5000000/recommendations?n=20&genre=Drama").await;
    assert_eq!((cold.strategy, cold.items.len()), (Strategy::Trending, 20));
    assert!(cold.items.iter().all(|m| m.genres.contains("Drama")));

    let toy: SimilarMovies = app.get_ok("/movies/1/similar").await;
    assert_eq!((toy.strategy, toy.items.len()), (Strategy::Collaborative, 10));
    assert!(toy.items.iter().all(|m| m.movie_id != 1));
    assert!(toy.items.iter().any(|m| m.title.starts_with("Toy Story")), "{:?}", toy.items);

    // A movie of ml-latest-small nobody rated, and one added to the catalogue while serving.
    let rated: HashSet<i64> = app.store.all_ratings().await.unwrap().iter().map(|r| r.1).collect();
    let all = app.store.movies(&store::MovieQuery::default(), Page { skip: 0, limit: 100_000 }).await.unwrap();
    let unrated = all.iter().find(|m| !rated.contains(&m.movie_id) && !m.genres.starts_with('(')).unwrap();
    let similar: SimilarMovies = app.get_ok(&format!("/movies/{}/similar", unrated.movie_id)).await;
    assert_eq!(similar.strategy, Strategy::Content);
    assert_eq!(similar.items.len(), 10);
    let first_genre = unrated.genres.split('|').next().unwrap();
    assert!(similar.items.iter().all(|m| m.movie_id != unrated.movie_id));
    assert!(similar.items.iter().any(|m| m.genres.contains(first_genre)), "{similar:?}");

    let new = movielens::MovieRow {
        movie_id: 300_000,
        title: "Brand New (2026)".into(),
        genres: vec!["Animation".into(), "Children".into()],
    };
    app.store.upsert_movies(&[new]).await.unwrap();
    let similar: SimilarMovies = app.get_ok("/movies/300000/similar").await;
    assert_eq!(similar.strategy, Strategy::Content);
    assert!(
        !similar.items.is_empty()
            && similar.items.iter().all(|m| m.genres.contains("Animation") || m.genres.contains("Children"))
    );
    // Its first rating reaches the model and its similar list stays sensible.
    let (status, _) = app.post("/ratings", &json!({"userId": 1, "movieId": 300000, "rating": 4.5})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_until("the new movie's rating to reach the model", Duration::from_secs(10), || async {
        let count = app.get_ok::<UserProfile>("/users/1/profile").await.rating_count;
        if count == 233 { Ok(()) } else { Err(format!("user 1's profile has {count} ratings, not 233")) }
    })
    .await;
    assert_eq!(app.get("/movies/300000/similar").await.0, StatusCode::OK);

    // A movie imported while serving and rated straight away: `POST /ratings` finds it (the
    // catalogue in memory reloads) and the follower learns the rating.
    let newer = movielens::MovieRow { movie_id: 300_001, title: "Newer (2026)".into(), genres: vec!["Drama".into()] };
    app.store.upsert_movies(&[newer]).await.unwrap();
    let (status, body) = app.post("/ratings", &json!({"userId": 1, "movieId": 300001, "rating": 4.0})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_until("the newer movie's rating to reach the model", Duration::from_secs(10), || async {
        let count = app.get_ok::<UserProfile>("/users/1/profile").await.rating_count;
        if count == 234 { Ok(()) } else { Err(format!("user 1's profile has {count} ratings, not 234")) }
    })
    .await;
    let (status, body) = app.post("/ratings", &json!({"userId": 1, "movieId": 300002, "rating": 4.0})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a movie in no catalogue: {body}");
}
