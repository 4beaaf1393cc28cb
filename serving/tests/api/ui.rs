//! The web interface over plain HTTP: every page answers with HTML built from ml-latest-small,
//! the chart data beside each chart hold the real figures, bad input gets a 404 page or a
//! message next to the field, and user text is escaped. (The browser suite in `tests/browser/`
//! checks what a person sees.)

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app, spawn_app_configured};

async fn page(app: &TestApp, path: &str) -> String {
    let response = app.get(path).await;
    let status = response.status();
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    assert!(content_type.starts_with("text/html"), "GET {path}: {content_type}");
    body
}

/// The JSON of `<script type="application/json" id="data-NAME">`.
fn chart(html: &str, name: &str) -> Value {
    let start_tag = format!("<script type=\"application/json\" id=\"data-{name}\">");
    let start = html.find(&start_tag).unwrap_or_else(|| panic!("no chart {name}")) + start_tag.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap_or_else(|e| panic!("chart {name}: {e}"))
}

fn values(chart: &Value, series: usize) -> Vec<f64> {
    chart["series"][series]["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect()
}

#[tokio::test]
async fn the_overview_shows_the_catalogue_figures_and_charts() {
    let app = spawn_app(store::Backend::Sqlite).await;
    let html = page(&app, "/ui/").await;
    for card in ["9,742", "610", "100,836", "3,683"] {
        assert!(html.contains(&format!("<span class=\"card-value\">{card}</span>")), "card {card}");
    }
    assert!(html.contains(
        "<span class=\"card-value\">3</span><span class=\"card-label\">Ratings in the last day of the stream"
    ));
    let months = chart(&html, "months");
    assert_eq!(months["x"][0], "1996-03");
    assert_eq!(values(&months, 0).iter().sum::<f64>(), 100_836.0);
    let histogram = chart(&html, "histogram");
    assert_eq!(histogram["x"][7], "4.0");
    assert_eq!(values(&histogram, 0)[7], 26_818.0);
    let genres = chart(&html, "genres");
    assert_eq!(genres["x"][0], "Drama", "the most rated genre first");
    let means = chart(&html, "genre-means");
    assert_eq!(means["series"].as_array().unwrap().len(), 6);
    assert!(html.contains("<a href=\"/ui/movies/356\">Forrest Gump (1994)</a></td><td class=\"num\">329</td>"));
    assert!(html.contains("id=\"live-counter\""));
}

#[tokio::test]
async fn browsers_asking_for_the_root_are_sent_to_the_interface() {
    let app = spawn_app(store::Backend::Sqlite).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let html = client.get(format!("{}/", app.address)).header("accept", "text/html,*/*").send().await.unwrap();
    assert_eq!(html.status(), StatusCode::SEE_OTHER);
    assert_eq!(html.headers()["location"], "/ui/");
    let json: Value = app.get_ok("/").await;
    assert_eq!(json["status"], "ok", "JSON clients keep the health answer");
}

#[tokio::test]
async fn the_movie_table_filters_sorts_and_pages() {
    let app = spawn_app(store::Backend::Sqlite).await;
    let html = page(&app, "/ui/movies").await;
    assert!(html.contains("<span id=\"match-count\">9742</span>"));
    assert!(html.contains("src=\"/posters/356.svg\" alt=\"Poster of Forrest Gump (1994)\""), "most rated first");
    let table = page(&app, "/ui/movies/table?title=toy+story&sort=year").await;
    assert!(table.contains("<span id=\"match-count\">3</span>"), "Toy Story 1, 2 and 3");
    let first = table.find("Toy Story 3 (2010)").unwrap();
    assert!(first < table.find("Toy Story (1995)").unwrap(), "newest first");
    let filtered = page(&app, "/ui/movies/table?genre=Animation&year_from=1995&year_to=1995&min_ratings=100").await;
    assert!(
        filtered.contains("<span id=\"match-count\">1</span>") && filtered.contains("Toy Story (1995)"),
        "{filtered}"
    );
    let second = page(&app, "/ui/movies?page=2").await;
    assert!(second.contains("page 2 of 390"));
    let response = app.get("/ui/movies/table?title=heat").await;
    assert_eq!(response.headers()["hx-push-url"], "/ui/movies?title=heat");
}

/// An attribute of an HTML start tag, with `&` decoded (askama writes `&#38;`).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    Some(tag[start..start + tag[start..].find('"')?].replace("&#38;", "&"))
}

/// The movie table's header link sorting by `key`: its `<th>`'s `aria-sort`, its `href` and
/// its `hx-get`.
fn sort_header(html: &str, key: &str) -> (Option<String>, String, String) {
    let link = html.find(&format!("<a class=\"sort\" id=\"sort-{key}\"")).unwrap_or_else(|| panic!("no link {key}"));
    let th = html[..link].rfind("<th").unwrap();
    let tag = &html[link..link + html[link..].find('>').unwrap()];
    (attribute(&html[th..link], "aria-sort"), attribute(tag, "href").unwrap(), attribute(tag, "hx-get").unwrap())
}

#[tokio::test]
async fn the_movie_table_headers_sort_by_their_column_and_reverse_the_current_one() {
    let app = spawn_app(store::Backend::Sqlite).await;
    let html = page(&app, "/ui/movies").await;
    assert_eq!(html.matches("aria-sort=").count(), 1, "only the sorted column says how");
    let ratings = sort_header(&html, "ratings");
    assert_eq!(
        ratings,
        (Some("descending".into()), "/ui/movies?dir=reverse".into(), "/ui/movies/table?dir=reverse".into())
    );
    assert_eq!(
        sort_header(&html, "title"),
        (None, "/ui/movies?sort=title".into(), "/ui/movies/table?sort=title".into())
    );
    assert!(html.contains("<th scope=\"col\">Genres</th>"), "genres do not sort");
    assert!(html.contains("data-sort=\"ratings\" data-dir=\"default\""), "the order the form follows");

    // Filters stay, the page goes back to 1; the sorted column's link reverses it.
    let table = page(&app, "/ui/movies/table?title=toy+story&min_ratings=1&page=1&sort=title").await;
    let (order, href, partial) = sort_header(&table, "title");
    assert_eq!(order.as_deref(), Some("ascending"));
    assert_eq!(href, "/ui/movies?title=toy%20story&min_ratings=1&sort=title&dir=reverse");
    assert_eq!(partial, "/ui/movies/table?title=toy%20story&min_ratings=1&sort=title&dir=reverse");
    assert_eq!(sort_header(&table, "year").1, "/ui/movies?title=toy%20story&min_ratings=1&sort=year");
    assert!(table.find("Toy Story (1995)").unwrap() < table.find("Toy Story 3 (2010)").unwrap(), "A to Z");
    let response = app.get(&partial).await;
    assert_eq!(response.headers()["hx-push-url"].to_str().unwrap(), href, "the address bar shows the link's page");
    let reversed = response.text().await.unwrap();
    assert_eq!(sort_header(&reversed, "title").0.as_deref(), Some("descending"));
    assert_eq!(sort_header(&reversed, "title").1, "/ui/movies?title=toy%20story&min_ratings=1&sort=title");
    assert!(reversed.find("Toy Story 3 (2010)").unwrap() < reversed.find("Toy Story (1995)").unwrap(), "Z to A");
    assert!(reversed.contains("data-sort=\"title\" data-dir=\"reverse\""));
    // Without JavaScript the link is the whole page, with the form's controls set to match.
    let page_html = page(&app, &href).await;
    assert!(page_html.contains("<option value=\"title\" selected>Title</option>"));
    assert!(page_html.contains("<option value=\"reverse\" selected>Reversed</option>"));
    assert_eq!(sort_header(&page_html, "title").0.as_deref(), Some("descending"));
}

#[tokio::test]
async fn bad_filters_get_a_message_next_to_their_field() {
    let app = spawn_app(store::Backend::Sqlite).await;
    let html = page(&app, "/ui/movies?year_from=abc&min_ratings=-3&genre=Nope&year_to=1800").await;
    assert!(html.contains("id=\"error-year_from\" aria-live=\"polite\">Enter a year between 1870 and 2100"));
    assert!(html.contains("id=\"error-year_to\" aria-live=\"polite\">Enter a year between 1870 and 2100"));
    assert!(html.contains("id=\"error-min_ratings\" aria-live=\"polite\">Enter a whole number"));
    assert!(html.contains("id=\"error-genre\" aria-live=\"polite\">Choose a genre from the list."));
    assert!(html.contains("<span id=\"match-count\">0</span>"));
    let partial = page(&app, "/ui/movies/table?year_from=2000&year_to=1990").await;
    assert!(partial.contains(
        "id=\"error-year_to\" aria-live=\"polite\" hx-swap-oob=\"true\">The last year must not be before the first."
    ));
}

#[tokio::test]
async fn user_text_is_escaped() {
    let app = spawn_app(store::Backend::Sqlite).await;
    let html = page(&app, "/ui/movies?title=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert!(!html.contains("<script>alert(1)</script>"));
    let marker = "name=\"title\" type=\"search\" value=\"";
    let start = html.find(marker).expect("the title field") + marker.len();
    let value = &html[start..start + html[start..].find('"').unwrap()];
    assert!(value.contains("script") && !value.contains('<') && !value.contains('>'), "escaped: {value}");
    let (status, body) = app.get_text("/ui/movies/%3Cb%3Ex").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.contains("<b>x"), "{body}");
}

#[tokio::test]
async fn the_movie_page_shows_figures_links_tags_and_fans() {
    let app = spawn_app(store::Backend::Sqlite).await;
    let html = page(&app, "/ui/movies/356").await;
    assert!(html.contains("<h1>Forrest Gump (1994)</h1>"));
    assert!(html.contains("<dd id=\"rating-count\">329</dd>") && html.contains("<dd id=\"mean-rating\">4.16</dd>"));
    assert!(
        html.contains("https://www.imdb.com/title/tt0109830/") && html.contains("https://www.themoviedb.org/movie/13")
    );
    assert_eq!(values(&chart(&html, "movie-histogram"), 0).iter().sum::<f64>(), 329.0);
    assert_eq!(values(&chart(&html, "movie-years"), 0).iter().sum::<f64>(), 329.0);
    assert!(html.contains("id=\"tags\""), "Forrest Gump has tags");
    assert!(html.contains("id=\"fans\"") && html.contains("href=\"/ui/users/"));
    assert!(html.contains("src=\"/posters/356.svg\" alt=\"Poster of Forrest Gump (1994)\""));
}

#[tokio::test]
async fn unknown_pages_movies_and_users_get_a_404_page() {
    let app = spawn_app(store::Backend::Sqlite).await;
    for path in ["/ui/movies/999999999", "/ui/movies/abc", "/ui/users/999999", "/ui/users/0", "/ui/nope"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/html"), "{path}: {content_type}");
        assert!(response.text().await.unwrap().contains("<h1>Not found</h1>"), "{path}");
    }
}

#[tokio::test]
async fn the_model_page_lists_experiment_records() {
    let app = spawn_app(store::Backend::Sqlite).await;
    let html = page(&app, "/ui/model").await;
    assert!(html.contains("id=\"model-version\""));
    assert!(html.contains("href=\"/docs\"") && html.contains("href=\"/metrics\""));
}

#[tokio::test]
async fn the_model_page_charts_retrains_on_a_time_axis_named_by_version() {
    use schemas::{ExperimentKind, ExperimentRecord};
    let app = spawn_app(store::Backend::Sqlite).await;
    let record = |kind, created_at: i64, version: Value, rmse: f64| {
        let mut r = ExperimentRecord::new(kind, "holdout", "online", "0.1.0");
        (r.started_at, r.created_at) = (created_at - 60, created_at);
        r.params = serde_json::json!({ "version": version });
        r.metrics = serde_json::json!({ "rmse": rmse, "mae": rmse - 0.2 });
        r
    };
    // Recorded out of time order, a day then three days apart; an evaluate run between them.
    let day = 86_400;
    let t0 = 1_700_000_000;
    for r in [
        record(ExperimentKind::Retrain, t0 + 4 * day, Value::Null, 0.95),
        record(ExperimentKind::Retrain, t0, 1.into(), 0.9),
        record(ExperimentKind::Evaluate, t0 + 2 * day, Value::Null, 0.5),
        record(ExperimentKind::Retrain, t0 + day, 2.into(), 0.87),
    ] {
        app.store.record_experiment(&r).await.unwrap();
    }
    let html = page(&app, "/ui/model").await;
    let history = chart(&html, "retrains");
    assert_eq!(history["kind"], "time");
    let times: Vec<i64> = history["times"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()).collect();
    // The app's own startup retrain may add a point; ours are found by their time.
    let at = |t: i64| times.iter().position(|x| *x == t * 1000).unwrap_or_else(|| panic!("no point at {t}: {times:?}"));
    let ours = [at(t0), at(t0 + day), at(t0 + 4 * day)];
    assert!(ours.windows(2).all(|w| w[0] < w[1]) && times.is_sorted(), "in time order: {times:?}");
    assert!(!times.contains(&((t0 + 2 * day) * 1000)), "evaluate runs are not retrains");
    let labels = &history["labels"];
    assert_eq!(labels[ours[0]], "Version 1, 2023-11-14 22:13 UTC");
    assert_eq!(labels[ours[1]], "Version 2, 2023-11-15 22:13 UTC");
    assert_eq!(labels[ours[2]], "Kept out, 2023-11-18 22:13 UTC");
    assert_eq!(history["series"][0]["name"], "RMSE");
    let rmse = values(&history, 0);
    assert_eq!([rmse[ours[0]], rmse[ours[1]], rmse[ours[2]]], [0.9, 0.87, 0.95]);
    assert_eq!(values(&history, 1).len(), times.len(), "MAE at every point");
}

#[tokio::test]
async fn posters_are_generated_svgs_without_a_key() {
    let app = spawn_app(store::Backend::Sqlite).await;
    let response = app.get("/posters/1.svg").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[reqwest::header::CONTENT_TYPE], "image/svg+xml");
    let svg = response.text().await.unwrap();
    assert!(svg.starts_with("<svg") && svg.contains(">TS</text>") && svg.contains(">1995</text>"));
    assert!(svg.contains("#c2682b"), "Adventure's colour");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let redirect = client.get(format!("{}/posters/1", app.address)).send().await.unwrap();
    assert_eq!(redirect.headers()["location"], "/posters/1.svg");
    app.assert_error("/posters/999999999.svg", StatusCode::NOT_FOUND).await;
    app.assert_error("/posters/x.svg", StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn assets_are_versioned_immutable_and_compressed() {
    let app = spawn_app(store::Backend::Sqlite).await;
    let html = page(&app, "/ui/").await;
    let client = reqwest::Client::new();
    for name in ["htmx-2.0.11.min.js", "echarts-6.1.0.common.min.js"] {
        assert!(html.contains(&format!("src=\"/assets/{name}\"")), "{name} is linked");
        let response = client
            .get(format!("{}/assets/{name}", app.address))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(response.headers()["content-encoding"], "gzip");
    }
    let app_js = html.split("src=\"/assets/app.").nth(1).and_then(|s| s.split('"').next()).expect("app.js is linked");
    let response = app.get(&format!("/assets/app.{app_js}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.get("/assets/app.0000.js").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/assets/echarts-6.1.0.LICENSE.txt").await.status(), StatusCode::OK);
}

/// A fake TMDb: `/3/movie/862` (Toy Story) has a poster, anything else is 404; counts calls.
async fn fake_tmdb() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = axum::Router::new().route(
        "/3/movie/{id}",
        axum::routing::get(move |axum::extract::Path(id): axum::extract::Path<i64>, query: axum::extract::RawQuery| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                assert_eq!(query.0.as_deref(), Some("api_key=test-key"), "the key is sent");
                if id == 862 {
                    (StatusCode::OK, axum::Json(serde_json::json!({"id": 862, "poster_path": "/toy.jpg"})))
                } else {
                    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"status_code": 34})))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (address, hits)
}

#[tokio::test]
async fn tmdb_posters_are_looked_up_once_and_fall_back_to_the_svg() {
    let (tmdb, hits) = fake_tmdb().await;
    let app = spawn_app_configured(store::Backend::Sqlite, |s| {
        s.posters.tmdb_api_key = Some("test-key".into());
        s.posters.tmdb_api_url = tmdb.clone();
        s.posters.tmdb_image_url = "http://images.invalid/w342".into();
    })
    .await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let location = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_owned();
    for _ in 0..3 {
        let toy = client.get(format!("{}/posters/1", app.address)).send().await.unwrap();
        assert_eq!(location(&toy), "http://images.invalid/w342/toy.jpg");
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "looked up once");
    let jumanji = client.get(format!("{}/posters/2", app.address)).send().await.unwrap();
    assert_eq!(location(&jumanji), "/posters/2.svg", "no TMDb poster: the generated one");
    let html = page(&app, "/ui/movies/1").await;
    assert!(html.contains("src=\"/posters/1\""));
    assert!(html.contains("This product uses the TMDb API but is not endorsed or certified by TMDb."));
}

#[tokio::test]
async fn an_unreachable_poster_service_falls_back_to_the_svg() {
    let app = spawn_app_configured(store::Backend::Sqlite, |s| {
        s.posters.omdb_api_key = Some("k".into());
        s.posters.omdb_api_url = "http://127.0.0.1:9".into();
    })
    .await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client.get(format!("{}/posters/1", app.address)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/posters/1.svg");
}
