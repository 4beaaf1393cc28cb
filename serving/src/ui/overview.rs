//! `/ui/`: the catalogue at a glance.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use schemas::MovieStats;

use super::{Chart, Layout, OrPage, PageResult, Series, json_script, thousands};
use crate::charts;
use crate::routes::analytics::{self, MIN_RATINGS};
use crate::state::AppState;

/// Genres drawn in the mean-over-time chart (the most rated ones; more is unreadable).
const GENRE_LINES: usize = 6;

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
struct OverviewPage {
    layout: Layout,
    cards: Vec<(&'static str, String)>,
    counter: LiveCounter,
    months: String,
    histogram: String,
    genre_popularity: String,
    genre_means: String,
    most_rated: Vec<MovieStats>,
    best_rated: Vec<MovieStats>,
    min_ratings: i64,
}

/// The live counter (`/ui/live`, polled by the overview).
#[derive(Template, WebTemplate)]
#[template(path = "live_counter.html")]
pub struct LiveCounter {
    events: u64,
    version: u64,
}

fn counter(state: &AppState) -> LiveCounter {
    LiveCounter { events: state.live.events_applied(), version: state.live.lineage().version }
}

/// `GET /ui/`.
pub async fn page(State(state): State<AppState>) -> PageResult<Response> {
    let (figures, charts) = tokio::try_join!(analytics::current(&state), charts::current(&state)).or_page(&state)?;
    let cards = vec![
        ("Movies", thousands(figures.movie_count)),
        ("Users", thousands(figures.user_count)),
        ("Ratings", thousands(figures.rating_count)),
        ("Tags", thousands(figures.tag_count)),
        ("Ratings in the last day of the stream", thousands(charts.last_day)),
        ("Model version", state.live.lineage().version.to_string()),
    ];
    let months = Chart::rating_counts("bar", charts.months.iter().map(|m| (m.month.clone(), m.count as f64)));
    let histogram = Chart::rating_counts(
        "bar",
        figures.rating_distribution.iter().map(|b| (format!("{:.1}", b.rating), b.count as f64)),
    );
    let popular: Vec<_> = figures.genres.iter().filter(|g| g.rating_count > 0).collect();
    let genre_popularity =
        Chart::rating_counts("hbar", popular.iter().map(|g| (g.genre.clone(), g.rating_count as f64)));
    let mut years: Vec<i64> = charts.genre_years.iter().map(|g| g.year).collect();
    years.sort_unstable();
    years.dedup();
    let genre_means = Chart {
        kind: "line",
        x: years.iter().map(i64::to_string).collect(),
        series: popular
            .iter()
            .take(GENRE_LINES)
            .map(|g| Series {
                name: g.genre.clone(),
                data: years
                    .iter()
                    .map(|y| {
                        charts.genre_years.iter().find(|s| s.genre == g.genre && s.year == *y).map(|s| s.mean_rating)
                    })
                    .collect(),
            })
            .collect(),
        y_name: "mean rating".into(),
    };
    let top = charts.top(10, MIN_RATINGS);
    let page = OverviewPage {
        layout: Layout::new(&state, "CineData overview", "overview"),
        cards,
        counter: counter(&state),
        months: json_script(&months),
        histogram: json_script(&histogram),
        genre_popularity: json_script(&genre_popularity),
        genre_means: json_script(&genre_means),
        most_rated: top.most_rated,
        best_rated: top.best_rated,
        min_ratings: top.min_ratings,
    };
    Ok(page.into_response())
}

/// `GET /ui/live`: events applied by the live model and its version.
pub async fn live_counter(State(state): State<AppState>) -> Response {
    counter(&state).into_response()
}
