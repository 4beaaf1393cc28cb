//! The web interface under `/ui/`: server-rendered pages (askama templates in
//! `serving/templates/`), htmx for partial updates, ECharts for charts. One module per page;
//! each handler builds its template from the same calls the JSON API makes (the store, the
//! precomputed [`crate::charts`], the recommendation handlers), never a second query layer.
//!
//! - [`overview`]: `/ui/` stat cards, rating trends, genres, top movies, live event counter.
//! - [`movies`]: `/ui/movies` the searchable table (its rows are the `/ui/movies/table` partial).
//! - [`movie`]: `/ui/movies/{id}` one movie.
//! - [`user`]: `/ui/users/{id}` a user's tastes and live recommendations; rating from the page.
//! - [`model`]: `/ui/model` the model, its retrain history and the experiment records.
//! - [`assets`]: the embedded scripts and styles; [`posters`]: movie posters.
//!
//! Chart data travel as `<script type="application/json">` beside each chart, so HTTP tests
//! read the numbers and `assets/app.js` only draws them.

pub mod assets;
pub mod model;
pub mod movie;
pub mod movies;
pub mod overview;
pub mod posters;
pub mod user;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Serialize;
use tower_http::compression::CompressionLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// The pages, the assets and the posters, compressed when the browser accepts gzip.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(overview::page))
        .route("/ui/live", get(overview::live_counter))
        .route("/ui/movies", get(movies::page))
        .route("/ui/movies/table", get(movies::table))
        .route("/ui/movies/{movie_id}", get(movie::page))
        .route("/ui/users/{user_id}", get(user::page))
        .route("/ui/users/{user_id}/ratings", axum::routing::post(user::rate))
        .route("/ui/model", get(model::page))
        .route("/ui/{*rest}", get(not_found_page))
        .route("/assets/{name}", get(assets::serve))
        .route("/posters/{file}", get(posters::serve))
        .layer(CompressionLayer::new())
}

/// Browsers asking for `/` get the interface; JSON clients keep the health answer.
pub async fn redirect_browsers(request: Request, next: Next) -> Response {
    let wants_html = request.uri().path() == "/"
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    if wants_html { Redirect::to("/ui/").into_response() } else { next.run(request).await }
}

/// What every page's frame shows.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The `<title>` and the heading.
    pub title: String,
    /// Which navigation entry is current (`overview`, `movies`, `model`, or empty).
    pub active: &'static str,
    /// Script and style URLs.
    pub assets: &'static assets::AssetUrls,
    /// Whether to show TMDb's attribution (posters come from TMDb).
    pub tmdb: bool,
}

impl Layout {
    /// A page's frame.
    pub fn new(state: &AppState, title: impl Into<String>, active: &'static str) -> Self {
        Self { title: title.into(), active, assets: assets::urls(), tmdb: state.posters.uses_tmdb() }
    }
}

/// The error page.
#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    message: String,
}

/// A page that could not be built: rendered as an HTML error page with the API's status.
#[derive(Debug)]
pub struct PageError {
    error: ApiError,
    tmdb: bool,
}

impl PageError {
    /// Wraps an API error for a page of `state`.
    pub fn new(state: &AppState, error: ApiError) -> Self {
        Self { error, tmdb: state.posters.uses_tmdb() }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.error.status_code();
        let message = match &self.error {
            ApiError::Store(e) => {
                tracing::error!(error = %e, "store error on a page");
                "Something went wrong on our side.".to_owned()
            }
            other => other.to_string(),
        };
        let title = match status {
            StatusCode::NOT_FOUND => "Not found".to_owned(),
            s => s.canonical_reason().unwrap_or("Error").to_owned(),
        };
        let page = ErrorPage {
            layout: Layout { title, active: "", assets: assets::urls(), tmdb: self.tmdb },
            status: status.as_u16(),
            message,
        };
        (status, page).into_response()
    }
}

/// Page handler result.
pub type PageResult<T> = Result<T, PageError>;

/// Attaches the state to an API error.
pub trait OrPage<T> {
    /// `Err(e)` → `Err(PageError)`.
    ///
    /// # Errors
    /// When `self` is an error.
    fn or_page(self, state: &AppState) -> PageResult<T>;
}

impl<T, E: Into<ApiError>> OrPage<T> for Result<T, E> {
    fn or_page(self, state: &AppState) -> PageResult<T> {
        self.map_err(|e| PageError::new(state, e.into()))
    }
}

/// JSON for a `<script type="application/json">` element: `<` is escaped so no value can
/// close the element.
pub fn json_script(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into()).replace('<', "\\u003c")
}

/// One chart as `assets/app.js` draws it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Chart {
    /// `bar`, `hbar` (horizontal bars) or `line`.
    pub kind: &'static str,
    /// Category labels along the x axis (y for `hbar`).
    pub x: Vec<String>,
    /// One or more series over `x`.
    pub series: Vec<Series>,
    /// Axis name of the values.
    pub y_name: String,
}

impl Chart {
    /// Ratings counted per category (`kind` `bar` or `hbar`): one "Ratings" series.
    pub fn rating_counts(kind: &'static str, counts: impl Iterator<Item = (String, f64)>) -> Self {
        let (x, data) = counts.map(|(label, n)| (label, Some(n))).unzip();
        Self { kind, x, series: vec![Series { name: "Ratings".into(), data }], y_name: "ratings".into() }
    }
}

/// A line chart over time as `assets/app.js` draws it (`kind: "time"`): a time axis with one
/// point per moment, so uneven gaps between moments show as such.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeChart {
    /// Always `time`.
    pub kind: &'static str,
    /// Each point's moment in Unix milliseconds (what an ECharts time axis reads).
    pub times: Vec<i64>,
    /// Each point's title in the tooltip.
    pub labels: Vec<String>,
    /// One or more series over `times`.
    pub series: Vec<Series>,
    /// Axis name of the values.
    pub y_name: String,
}

/// A named series of values (null where a category has no value).
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// One value per category.
    pub data: Vec<Option<f64>>,
}

/// `2023-05-01 12:00` (UTC) from Unix seconds: the one formatter the records table also uses.
pub use schemas::events::utc as date_time;

/// `12 345` style thousands for stat cards.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

async fn not_found_page(
    axum::extract::State(state): axum::extract::State<AppState>,
    uri: axum::http::Uri,
) -> PageError {
    PageError::new(&state, ApiError::NotFound(format!("There is no page at {}.", uri.path())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(date_time(0), "1970-01-01 00:00");
        assert_eq!(date_time(964_982_703), "2000-07-30 18:45");
        assert_eq!(date_time(1_709_251_200), "2024-03-01 00:00");
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(100_836), "100,836");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(-1_000), "-1,000");
    }

    #[test]
    fn script_json_cannot_close_its_element() {
        assert_eq!(json_script(&"</script>"), "\"\\u003c/script>\"");
    }
}
