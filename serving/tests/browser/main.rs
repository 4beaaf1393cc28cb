//! The web interface in a real browser: Debian's chromium driven through chromedriver by
//! fantoccini (plain HTTP to 127.0.0.1; `scripts/test.sh` installs both when missing), against
//! the real app with ml-latest-small and a trained live model. One test, so one browser at a
//! time; the session is closed and chromedriver stopped at the end (or killed if a step fails).
//!
//! It checks what a person sees: every page loads without a console error, charts drew (SVG
//! marks counted once `<html data-charts-ready>` is set), typing in the movie search filters
//! the table, rating a movie on the user page changes the recommendation list, posters are the
//! local SVGs; and what a keyboard alone does: sort the movie table by a column header, open a
//! movie, rate one from the user page, with a visible focus ring on the way. Full-page
//! screenshots go to `serving/tests/screenshots/` (git-ignored).

#[allow(dead_code)]
#[path = "../live/helpers.rs"]
mod live;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long any one thing in the browser may take.
const DEADLINE: Duration = Duration::from_secs(20);

/// chromedriver, killed on drop if the test did not stop it.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let child = Command::new(&program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program} ({e}); scripts/test.sh installs chromium-driver"));
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let client = reqwest::Client::new();
    testkit::wait_until(&format!("chromedriver to answer on {}", driver.url), DEADLINE, || async {
        match client.get(format!("{}/status", driver.url)).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("GET /status: {}", r.status())),
            Err(e) => Err(format!("GET /status: {e}")),
        }
    })
    .await;
    driver
}

async fn browser(driver: &Driver) -> Client {
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": binary, "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
            "--disable-gpu", "--window-size=1280,900", "--hide-scrollbars"]}),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

/// Polls `script` (a JS expression) until it is truthy; returns its value.
async fn wait_for(client: &Client, what: &str, script: &str) -> Value {
    testkit::wait_until(what, DEADLINE, || async {
        let value = client.execute(&format!("return {script};"), vec![]).await.expect("script runs");
        if value.as_bool().unwrap_or(!value.is_null()) && value != json!(false) && value != json!(0) {
            Ok(value)
        } else {
            Err(format!("still {value}"))
        }
    })
    .await
}

/// The browser console's errors since the last call (chromedriver's log endpoint).
async fn console_errors(client: &Client, driver: &Driver) -> Vec<Value> {
    let session = client.session_id().await.expect("a session").expect("a session id");
    let log: Value = reqwest::Client::new()
        .post(format!("{}/session/{session}/se/log", driver.url))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .expect("the log endpoint answers")
        .json()
        .await
        .expect("a JSON log");
    log["value"].as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["level"] == "SEVERE").collect()
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    dir
}

/// A full-page screenshot at `width`: the page is reloaded at that width (as a phone would
/// load it), then the window grows to the page's height.
async fn screenshot(client: &Client, name: &str, width: u32) {
    client.set_window_size(width, 900).await.expect("resize");
    if width != 1280 {
        client.refresh().await.expect("reload");
        wait_for(client, "charts ready after reload", "document.documentElement.dataset.chartsReady === 'true'").await;
        let overflow = client
            .execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth;", vec![])
            .await
            .expect("widths");
        assert_eq!(overflow, json!(0), "{name}: nothing sticks out sideways at {width} px");
    }
    let height = client
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .expect("page height")
        .as_u64()
        .unwrap_or(900);
    client.set_window_size(width, height.clamp(600, 6000) as u32).await.expect("resize");
    // Charts follow the window's size; give them a frame to redraw.
    client
        .execute("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));", vec![])
        .await
        .ok();
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).expect("saving the screenshot");
    client.set_window_size(1280, 900).await.expect("resize");
}

/// Opens a page, waits for its charts, checks each drew at least `min_marks` SVG marks and
/// that the console stayed clean.
async fn open(client: &Client, driver: &Driver, url: &str, min_marks: u64) -> Vec<u64> {
    client.goto(url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"));
    wait_for(client, &format!("{url}: charts ready"), "document.documentElement.dataset.chartsReady === 'true'").await;
    let marks = client
        .execute(
            "return Array.from(document.querySelectorAll('.chart')).map(c => c.querySelectorAll('svg path, svg rect').length);",
            vec![],
        )
        .await
        .expect("counting marks");
    let marks: Vec<u64> = marks.as_array().unwrap().iter().map(|m| m.as_u64().unwrap()).collect();
    assert!(marks.iter().all(|m| *m >= min_marks), "{url}: SVG marks per chart {marks:?}");
    let errors = console_errors(client, driver).await;
    assert!(errors.is_empty(), "{url}: console errors {errors:?}");
    marks
}

async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in client.find_all(Locator::Css(css)).await.expect("find") {
        out.push(e.text().await.expect("text"));
    }
    out
}

async fn recommended(client: &Client) -> Vec<String> {
    let ids = client
        .execute(
            "return Array.from(document.querySelectorAll('#recommendations li')).map(li => li.dataset.movieId);",
            vec![],
        )
        .await
        .expect("the list");
    ids.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

/// Presses `key` where the focus is, as a keyboard does (the element that has the focus
/// receives it; nothing is clicked or focused by script).
async fn press(client: &Client, key: impl std::fmt::Display) {
    let keys = key.to_string();
    let focused = client.active_element().await.expect("a focused element");
    focused.send_keys(&keys).await.unwrap_or_else(|e| panic!("pressing {keys:?}: {e}"));
}

/// Presses Tab until the focused element matches `css`, at most `limit` times.
async fn tab_to(client: &Client, css: &str, limit: usize) {
    for _ in 0..limit {
        press(client, Key::Tab).await;
        let here = client.execute("return document.activeElement.matches(arguments[0]);", vec![json!(css)]).await;
        if here.expect("the focused element") == json!(true) {
            return;
        }
    }
    let at = client.execute("return document.activeElement.outerHTML.slice(0, 120);", vec![]).await.unwrap();
    panic!("{limit} Tab presses did not reach {css}; the focus is on {at}");
}

/// Asserts the focused element shows the focus ring of `app.css` (`:focus-visible`).
async fn assert_focus_ring(client: &Client, what: &str) {
    let ring = client
        .execute(
            "const e = document.activeElement, s = getComputedStyle(e); \
             return [e.matches(':focus-visible'), s.outlineStyle, s.outlineWidth, s.outlineColor];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(ring, json!([true, "solid", "3px", "rgb(244, 162, 97)"]), "{what}: focus ring");
}

async fn focused_id(client: &Client) -> Value {
    client.execute("return document.activeElement.id;", vec![]).await.unwrap()
}

/// The movie table's titles are in `Charts::search`'s title order (or its reverse).
async fn assert_title_order(client: &Client, descending: bool) {
    let titles = texts(client, "#movie-table tbody td:nth-child(2)").await;
    assert_eq!(titles.len(), 25, "a full page");
    let lower: Vec<String> = titles.iter().map(|t| t.to_lowercase()).collect();
    let sorted = lower.windows(2).all(|w| if descending { w[0] >= w[1] } else { w[0] <= w[1] });
    assert!(sorted, "titles in {} order: {titles:?}", if descending { "Z-A" } else { "A-Z" });
}

/// Keyboard only: sort the movie table by a header (and reverse it), open a movie from the
/// table, rate a movie from a user page.
async fn keyboard(client: &Client, driver: &Driver, base: &str) {
    open(client, driver, &format!("{base}/ui/movies"), 0).await;
    client.execute("window.__sameDocument = true; return true;", vec![]).await.unwrap();
    tab_to(client, "#movie-table th a#sort-title", 40).await;
    assert_focus_ring(client, "the title header").await;
    press(client, Key::Enter).await;
    wait_for(
        client,
        "Enter on the header sorts by title",
        "location.search === '?sort=title' && document.getElementById('movie-results').dataset.sort === 'title'",
    )
    .await;
    let state = "[document.getElementById('sort-title').parentElement.getAttribute('aria-sort'), \
                 document.getElementById('f-sort').value, document.getElementById('f-dir').value, window.__sameDocument]";
    let shown = client.execute(&format!("return {state};"), vec![]).await.unwrap();
    assert_eq!(shown, json!(["ascending", "title", "default", true]), "header, form and no reload");
    assert_title_order(client, false).await;
    assert_eq!(focused_id(client).await, json!("sort-title"), "the focus stays on the header");
    press(client, Key::Enter).await;
    wait_for(client, "Enter again reverses", "location.search === '?sort=title&dir=reverse'").await;
    let shown = client.execute(&format!("return {state};"), vec![]).await.unwrap();
    assert_eq!(shown, json!(["descending", "title", "reverse", true]));
    assert_title_order(client, true).await;

    // On to the first movie of the table.
    tab_to(client, "#movie-table tbody a", 10).await;
    assert_focus_ring(client, "a movie link").await;
    let link = client
        .execute("return [document.activeElement.getAttribute('href'), document.activeElement.textContent];", vec![])
        .await
        .unwrap();
    let (href, title) = (link[0].as_str().unwrap().to_owned(), link[1].as_str().unwrap().to_owned());
    assert!(href.starts_with("/ui/movies/"), "{href}");
    press(client, Key::Enter).await;
    wait_for(client, "Enter opens the movie", &format!("location.pathname === {}", json!(href))).await;
    wait_for(client, "the movie's page", &format!("document.querySelector('h1')?.textContent === {}", json!(title)))
        .await;
    assert!(console_errors(client, driver).await.is_empty());

    // A user page: type a movie id, pick the lowest rating, submit.
    open(client, driver, &format!("{base}/ui/users/2"), 3).await;
    let before = recommended(client).await;
    assert_eq!(before.len(), 10, "ten recommendations");
    tab_to(client, "#rate-movie", 80).await;
    assert_focus_ring(client, "the movie id field").await;
    press(client, &before[0]).await;
    press(client, Key::Tab).await;
    assert_eq!(focused_id(client).await, json!("rate-rating"));
    assert_focus_ring(client, "the rating list").await;
    press(client, Key::End).await;
    wait_for(client, "End picks the lowest rating", "document.getElementById('rate-rating').value === '0.5'").await;
    press(client, Key::Tab).await;
    assert_eq!(focused_id(client).await, json!("rate-submit"));
    assert_focus_ring(client, "the Rate button").await;
    press(client, Key::Enter).await;
    wait_for(client, "the rating is acknowledged", "document.querySelector('#recs-panel .notice')").await;
    let notice = texts(client, "#recs-panel .notice").await;
    assert!(notice[0].starts_with(&format!("Rated movie {} with 0.5 stars", before[0])), "{notice:?}");
    let after = recommended(client).await;
    assert!(!after.contains(&before[0]), "the rated movie left the list: {after:?}");
    assert_eq!(focused_id(client).await, json!("rate-submit"), "the focus stays on the button");
    assert!(console_errors(client, driver).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_interface_works_in_a_real_browser() {
    let world = live::World::new().await;
    let app = world.start().await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let base = app.address.clone();

    // Overview: four charts, the months chart with a bar per month.
    let marks = open(&client, &driver, &format!("{base}/ui/"), 5).await;
    assert_eq!(marks.len(), 4);
    assert!(marks[0] >= 267, "one bar per month with ratings: {marks:?}");
    let cards = texts(&client, ".card-value").await;
    assert_eq!(&cards[..4], ["9,742", "610", "100,836", "3,683"]);
    screenshot(&client, "overview", 1280).await;
    screenshot(&client, "overview-390px", 390).await;

    // Movies: typing filters the table without a reload.
    open(&client, &driver, &format!("{base}/ui/movies"), 0).await;
    client.execute("window.__sameDocument = true; return true;", vec![]).await.unwrap();
    let search = client.find(Locator::Css("#f-title")).await.expect("the title field");
    search.send_keys("toy story").await.expect("typing");
    wait_for(&client, "the table filters", "document.getElementById('match-count').textContent === '3'").await;
    let titles = texts(&client, "#movie-table tbody td:nth-child(2)").await;
    assert_eq!(titles.len(), 3);
    assert!(titles.iter().all(|t| t.starts_with("Toy Story")), "{titles:?}");
    assert_eq!(
        client.execute("return window.__sameDocument === true;", vec![]).await.unwrap(),
        json!(true),
        "no reload"
    );
    wait_for(&client, "the address follows", "location.pathname + location.search === '/ui/movies?title=toy%20story'")
        .await;
    let address = client.current_url().await.unwrap();
    assert_eq!(address.as_str(), format!("{base}/ui/movies?title=toy%20story"), "the address follows");
    let posters = client
        .execute(
            "return Array.from(document.querySelectorAll('#movie-table img')).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]);",
            vec![],
        )
        .await
        .unwrap();
    for poster in posters.as_array().unwrap() {
        assert!(
            poster[0].as_str().unwrap().ends_with(".svg") && poster[0].as_str().unwrap().starts_with("/posters/"),
            "{poster}"
        );
    }
    wait_for(
        &client,
        "posters load",
        "Array.from(document.querySelectorAll('#movie-table img')).every(i => i.complete && i.naturalWidth > 0)",
    )
    .await;
    assert!(console_errors(&client, &driver).await.is_empty());
    screenshot(&client, "movies", 1280).await;

    // A movie: two charts, a local poster.
    open(&client, &driver, &format!("{base}/ui/movies/1"), 5).await;
    let poster = client.find(Locator::Css("img.poster")).await.unwrap().attr("src").await.unwrap();
    assert_eq!(poster.as_deref(), Some("/posters/1.svg"));
    screenshot(&client, "movie", 1280).await;

    // A user: rating the top recommendation re-ranks the list.
    open(&client, &driver, &format!("{base}/ui/users/1"), 3).await;
    let before = recommended(&client).await;
    assert_eq!(before.len(), 10, "ten recommendations");
    client.find(Locator::Css("#rate-movie")).await.unwrap().send_keys(&before[0]).await.unwrap();
    client.find(Locator::Css("#rate-rating option[value='0.5']")).await.unwrap().click().await.unwrap();
    client.find(Locator::Css("#rate-submit")).await.unwrap().click().await.unwrap();
    wait_for(&client, "the rating is acknowledged", "document.querySelector('#recs-panel .notice')").await;
    let after = recommended(&client).await;
    assert_ne!(after, before, "the list changed");
    assert!(!after.contains(&before[0]), "the rated movie left the list");
    let notice = texts(&client, "#recs-panel .notice").await;
    assert!(notice[0].contains("already includes it"), "{notice:?}");
    assert!(console_errors(&client, &driver).await.is_empty());
    screenshot(&client, "user", 1280).await;

    // The model page: the startup retrain's record, drawn and listed; headers sort the table.
    open(&client, &driver, &format!("{base}/ui/model"), 3).await;
    let column = |n: usize| {
        format!("Array.from(document.querySelectorAll('#experiments tbody tr')).map(r => r.cells[{n}].dataset.key)")
    };
    let rows = client.execute(&format!("return {};", column(0)), vec![]).await.unwrap();
    assert!(!rows.as_array().unwrap().is_empty(), "the retrain is listed");
    let header = client.find(Locator::Css("#experiments button.sort[data-column='0']")).await.unwrap();
    header.click().await.unwrap();
    let ascending: Vec<i64> =
        serde_json::from_value::<Vec<String>>(client.execute(&format!("return {};", column(0)), vec![]).await.unwrap())
            .unwrap()
            .iter()
            .map(|k| k.parse().unwrap())
            .collect();
    assert!(ascending.windows(2).all(|w| w[0] <= w[1]), "sorted by time: {ascending:?}");
    let sort = client.find(Locator::Css("#experiments th")).await.unwrap().attr("aria-sort").await.unwrap();
    assert_eq!(sort.as_deref(), Some("ascending"));
    assert!(console_errors(&client, &driver).await.is_empty());
    screenshot(&client, "model", 1280).await;
    // The retrain history is drawn over time; its tooltip names the version.
    let retrains = "echarts.getInstanceByDom(document.querySelector('.chart[data-chart=retrains]'))";
    let axis = client.execute(&format!("return {retrains}.getOption().xAxis[0].type;"), vec![]).await.unwrap();
    assert_eq!(axis, json!("time"));
    client
        .execute(
            &format!("{retrains}.dispatchAction({{type: 'showTip', seriesIndex: 0, dataIndex: 0}}); return true;"),
            vec![],
        )
        .await
        .unwrap();
    let tip = wait_for(
        &client,
        "the retrain tooltip",
        "Array.from(document.querySelectorAll('.chart[data-chart=retrains] div')).filter(d => !d.querySelector('svg')) \
         .map(d => d.innerText).find(t => t.includes('RMSE'))",
    )
    .await;
    assert!(tip.as_str().unwrap().starts_with("Version 1, "), "{tip}");

    keyboard(&client, &driver, &base).await;

    client.close().await.expect("the session closes");
    drop(driver);
    app.stop().await;
}
