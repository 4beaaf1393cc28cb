//! `GET /movies` and `GET /movies/{movieId}`.

use schemas::Movie;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use testkit::backend_tests;

backend_tests!(
    spawn_app =>
    movie_one_is_toy_story_with_its_ratings_tags_and_link,
    movie_detail_has_a_null_tmdb_id_when_the_link_has_none,
    movies_are_listed_by_id_one_hundred_at_a_time_by_default,
    movie_pages_line_up_with_one_big_page,
    movie_pages_past_the_end_are_short_or_empty,
    title_filter_is_a_case_insensitive_substring,
    title_filter_folds_case_beyond_ascii,
    title_filter_matches_sql_wildcards_literally,
    genre_filter_is_case_insensitive_and_exact,
    genre_filter_pages_through_every_comedy,
    title_and_genre_filters_combine,
    empty_filters_mean_no_filter,
);

fn ids(movies: &[Movie]) -> Vec<i64> {
    movies.iter().map(|m| m.movie_id).collect()
}

async fn movie_one_is_toy_story_with_its_ratings_tags_and_link(app: &TestApp) {
    let movie: Value = app.get_ok("/movies/1").await;

    assert_eq!(movie["movieId"], 1);
    assert_eq!(movie["title"], "Toy Story (1995)");
    assert_eq!(movie["genres"], "Adventure|Animation|Children|Comedy|Fantasy");
    assert_eq!(movie["link"], json!({"imdbId": "0114709", "tmdbId": 862}));

    let ratings = movie["ratings"].as_array().expect("ratings is an array");
    assert_eq!(ratings.len(), 215);
    assert_eq!(ratings[0], json!({"userId": 1, "movieId": 1, "rating": 4.0, "timestamp": 964982703}));
    assert!(ratings.iter().all(|r| r["movieId"] == 1));
    let users: Vec<i64> = ratings.iter().map(|r| r["userId"].as_i64().expect("userId")).collect();
    assert!(users.windows(2).all(|w| w[0] < w[1]), "ratings ordered by userId");

    let tags = movie["tags"].as_array().expect("tags is an array");
    assert_eq!(tags.len(), 3);
    let texts: Vec<(i64, &str)> =
        tags.iter().map(|t| (t["userId"].as_i64().expect("userId"), t["tag"].as_str().expect("tag"))).collect();
    assert_eq!(texts, [(336, "pixar"), (474, "pixar"), (567, "fun")]);
    assert!(tags.iter().all(|t| t["movieId"] == 1 && t["timestamp"].is_i64()));
}

async fn movie_detail_has_a_null_tmdb_id_when_the_link_has_none(app: &TestApp) {
    let movie: Value = app.get_ok("/movies/791").await;
    assert_eq!(movie["movieId"], 791);
    assert_eq!(movie["link"]["imdbId"], "0113610");
    assert!(movie["link"].as_object().expect("a link object").contains_key("tmdbId"));
    assert_eq!(movie["link"]["tmdbId"], Value::Null);
}

async fn movies_are_listed_by_id_one_hundred_at_a_time_by_default(app: &TestApp) {
    let page: Vec<Value> = app.get_ok("/movies").await;
    assert_eq!(page.len(), 100);
    assert_eq!(
        page[0],
        json!({"movieId": 1, "title": "Toy Story (1995)", "genres": "Adventure|Animation|Children|Comedy|Fantasy"})
    );
    let first: Vec<i64> = page.iter().map(|m| m["movieId"].as_i64().expect("movieId")).collect();
    assert!(first.windows(2).all(|w| w[0] < w[1]), "ordered by movieId: {first:?}");

    let big: Vec<Movie> = app.get_ok("/movies?limit=1000").await;
    assert_eq!(big.len(), 1000);
    assert_eq!(first, ids(&big)[..100]);
}

async fn movie_pages_line_up_with_one_big_page(app: &TestApp) {
    let all: Vec<Movie> = app.get_ok("/movies?skip=0&limit=300").await;
    let pages: Vec<Vec<Movie>> = app.get_pages("/movies", 75, 300).await;
    for page in &pages {
        assert_eq!(page.len(), 75);
    }
    assert_eq!(pages.concat(), all);
}

async fn movie_pages_past_the_end_are_short_or_empty(app: &TestApp) {
    let tail: Vec<Movie> = app.get_ok("/movies?skip=9740&limit=10").await;
    assert_eq!(tail.len(), 2, "9742 movies in all");
    assert_eq!(tail.last().map(|m| m.movie_id), Some(193609));
    let none: Vec<Movie> = app.get_ok("/movies?skip=100000").await;
    assert!(none.is_empty());
}

async fn title_filter_is_a_case_insensitive_substring(app: &TestApp) {
    for query in ["toy%20story", "TOY%20STORY", "Toy+Story", "toy%20STORY"] {
        let movies: Vec<Movie> = app.get_ok(&format!("/movies?title={query}")).await;
        assert_eq!(ids(&movies), [1, 3114, 78499], "title={query}");
    }
    let movies: Vec<Movie> = app.get_ok("/movies?title=toy%20story").await;
    assert_eq!(movies[1].title, "Toy Story 2 (1999)");
    assert!(movies.iter().all(|m| m.title.to_lowercase().contains("toy story")));

    let none: Vec<Movie> = app.get_ok("/movies?title=no%20such%20film%20xyzzy").await;
    assert!(none.is_empty());
}

async fn title_filter_folds_case_beyond_ascii(app: &TestApp) {
    let upper_query: Vec<Movie> = app.get_ok("/movies?title=MIS%C3%89RABLES").await;
    assert_eq!(ids(&upper_query), [73, 1873, 99149, 99532], "MISÉRABLES finds \"Misérables, Les\"");
    let upper_title: Vec<Movie> = app.get_ok("/movies?title=%C3%A1%20k%C3%B6ldum").await;
    assert_eq!(ids(&upper_title), [649], "á köldum finds \"Cold Fever (Á köldum klaka) (1995)\"");
}

async fn title_filter_matches_sql_wildcards_literally(app: &TestApp) {
    let underscore: Vec<Movie> = app.get_ok("/movies?title=_").await;
    assert_eq!(
        underscore.iter().map(|m| m.title.as_str()).collect::<Vec<_>>(),
        ["Cry_Wolf (a.k.a. Cry Wolf) (2005)"],
        "`_` is a literal underscore, not any character"
    );
    let percent: Vec<Movie> = app.get_ok("/movies?title=%25").await;
    assert!(percent.is_empty(), "`%` is a literal percent sign: {percent:?}");
    let backslash: Vec<Movie> = app.get_ok("/movies?title=%5C").await;
    assert!(backslash.is_empty(), "no title holds a backslash: {backslash:?}");
}

async fn genre_filter_is_case_insensitive_and_exact(app: &TestApp) {
    let canonical: Vec<Movie> = app.get_ok("/movies?genre=Comedy&limit=1000").await;
    assert_eq!(canonical.len(), 1000);
    assert_eq!(canonical[0].movie_id, 1);
    for genre in ["comedy", "COMEDY", "cOmEdY"] {
        let movies: Vec<Movie> = app.get_ok(&format!("/movies?genre={genre}&limit=1000")).await;
        assert_eq!(movies, canonical, "genre={genre}");
    }
    assert!(canonical.iter().all(|m| m.genres.split('|').any(|g| g == "Comedy")));
    let ids = ids(&canonical);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered by movieId");

    let sci_fi: Vec<Movie> = app.get_ok("/movies?genre=sci-fi&limit=1000").await;
    assert_eq!(sci_fi.len(), 980);
    assert!(sci_fi.iter().all(|m| m.genres.split('|').any(|g| g == "Sci-Fi")));

    let partial: Vec<Movie> = app.get_ok("/movies?genre=Com").await;
    assert!(partial.is_empty(), "a genre matches whole, not by prefix");
    let unknown: Vec<Movie> = app.get_ok("/movies?genre=Nonexistent").await;
    assert!(unknown.is_empty());
}

async fn genre_filter_pages_through_every_comedy(app: &TestApp) {
    let all: Vec<Movie> = app.get_pages("/movies?genre=comedy", 1000, 4000).await.concat();
    assert_eq!(all.len(), 3756, "ml-latest-small has 3756 comedies");
    let ids = ids(&all);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "pages line up without gaps or repeats");
}

async fn title_and_genre_filters_combine(app: &TestApp) {
    let movies: Vec<Movie> = app.get_ok("/movies?title=toy&genre=animation").await;
    assert_eq!(ids(&movies), [1, 3114, 78499]);
    let none: Vec<Movie> = app.get_ok("/movies?title=toy%20story&genre=horror").await;
    assert!(none.is_empty());
    let paged: Vec<Movie> = app.get_ok("/movies?title=toy%20story&genre=comedy&skip=1&limit=1").await;
    assert_eq!(ids(&paged), [3114]);
}

async fn empty_filters_mean_no_filter(app: &TestApp) {
    let plain: Vec<Movie> = app.get_ok("/movies").await;
    let empty: Vec<Movie> = app.get_ok("/movies?title=&genre=").await;
    assert_eq!(empty, plain);
}
