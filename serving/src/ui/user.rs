//! `/ui/users/{id}`: a user's tastes and rating history beside their live recommendations.
//! Rating a movie from the page produces the event to the stream like `POST /ratings`, waits
//! (at most [`APPLY_WAIT`]) until the live model has learned it, and shows the new list.

use std::collections::BTreeMap;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use schemas::events::NewRating;
use schemas::recommend::{Strategy, UserRecommendations};
use secrecy::ExposeSecret;
use serde::Deserialize;
use store::{Page, RatingQuery};

use super::movie::page_id;
use super::{Chart, Layout, OrPage, PageResult, Series, date_time, json_script};
use crate::error::{ApiError, ApiResult};
use crate::routes::{ingest, recommend};
use crate::state::AppState;

/// Recommendations shown.
const RECOMMENDATIONS: usize = 10;
/// Rating history rows shown (newest first).
const HISTORY: usize = 20;
/// How long a rating from the page may take to reach the live model before the list is
/// shown anyway (with a note).
pub const APPLY_WAIT: Duration = Duration::from_secs(3);

struct Reason {
    movie_id: i64,
    title: String,
    rating: f64,
}

struct Recommended {
    movie_id: i64,
    title: String,
    genres: String,
    score: String,
    poster: String,
    because: Vec<Reason>,
}

/// The recommendations and the rating form (the part a rating replaces).
#[derive(Template, WebTemplate)]
#[template(path = "user_recs.html")]
struct RecsPanel {
    user_id: i64,
    strategy: &'static str,
    version: u64,
    recs: Vec<Recommended>,
    messages: BTreeMap<&'static str, String>,
    notice: Option<String>,
    needs_key: bool,
    movie_value: String,
    rating_value: String,
}

impl RecsPanel {
    fn message(&self, field: &str) -> String {
        self.messages.get(field).cloned().unwrap_or_default()
    }
}

struct HistoryRow {
    movie_id: i64,
    title: String,
    rating: f64,
    when: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "user.html")]
struct UserPage {
    layout: Layout,
    rating_count: u64,
    mean: String,
    genres: String,
    history: Vec<HistoryRow>,
    panel: RecsPanel,
}

/// The live recommendations with explanations, exactly as `GET /users/{id}/recommendations`
/// computes them (its handler is called, so ranking changes there show here).
async fn recommendations(state: &AppState, user_id: i64) -> ApiResult<UserRecommendations> {
    recommend::list_through_handler(state, user_id, &format!("n={RECOMMENDATIONS}&explain=true")).await
}

async fn panel(state: &AppState, user_id: i64) -> ApiResult<RecsPanel> {
    let found = recommendations(state, user_id).await?;
    let recs = found
        .items
        .into_iter()
        .map(|m| Recommended {
            poster: state.posters.src(m.movie_id),
            movie_id: m.movie_id,
            title: m.title,
            genres: m.genres.replace('|', ", "),
            score: format!("{:.2}", m.score),
            because: m
                .because
                .unwrap_or_default()
                .into_iter()
                .map(|b| Reason { movie_id: b.movie_id, title: b.title, rating: b.rating })
                .collect(),
        })
        .collect();
    Ok(RecsPanel {
        user_id,
        strategy: match found.strategy {
            Strategy::Personal => "personal",
            Strategy::Trending => "trending",
            Strategy::Collaborative => "collaborative",
            Strategy::Content => "content",
        },
        version: found.model_version,
        recs,
        messages: BTreeMap::new(),
        notice: None,
        needs_key: state.api_key.is_some(),
        movie_value: String::new(),
        rating_value: String::new(),
    })
}

/// `GET /ui/users/{id}`.
pub async fn page(State(state): State<AppState>, Path(id): Path<String>) -> PageResult<Response> {
    let user_id = page_id(&state, "user", &id)?;
    let profile = match recommend::profile(State(state.clone()), crate::extract::Path(user_id)).await {
        Ok(p) => p.0,
        Err(ApiError::NotFound(_)) => {
            return Err(super::PageError::new(
                &state,
                ApiError::NotFound(format!("User {user_id} has no ratings yet.")),
            ));
        }
        Err(e) => return Err(super::PageError::new(&state, e)),
    };
    let query = RatingQuery { user_id: Some(user_id), movie_id: None, min_rating: None };
    let (mut rated, panel, charts) = tokio::try_join!(
        async { state.store.ratings(&query, Page { skip: 0, limit: 100_000 }).await.map_err(ApiError::from) },
        panel(&state, user_id),
        crate::charts::current(&state),
    )
    .or_page(&state)?;
    rated.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then(a.movie_id.cmp(&b.movie_id)));
    let history = rated
        .iter()
        .take(HISTORY)
        .map(|r| HistoryRow {
            movie_id: r.movie_id,
            title: charts.movie(r.movie_id).map_or_else(|| format!("Movie {}", r.movie_id), |m| m.title.clone()),
            rating: r.rating,
            when: date_time(r.timestamp),
        })
        .collect();
    let genres = Chart {
        kind: "hbar",
        x: profile.favourite_genres.iter().map(|g| format!("{} ({})", g.genre, g.count)).collect(),
        series: vec![Series {
            name: "Mean rating".into(),
            data: profile.favourite_genres.iter().map(|g| Some((g.mean_rating * 100.0).round() / 100.0)).collect(),
        }],
        y_name: "mean rating".into(),
    };
    let page = UserPage {
        layout: Layout::new(&state, format!("User {user_id}"), ""),
        rating_count: profile.rating_count,
        mean: format!("{:.2}", profile.mean_rating),
        genres: json_script(&genres),
        history,
        panel,
    };
    Ok(page.into_response())
}

/// The rating form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct RateForm {
    #[serde(default)]
    movie_id: String,
    #[serde(default)]
    rating: String,
    #[serde(default)]
    api_key: String,
}

fn same_key(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// `POST /ui/users/{id}/ratings` (htmx): rate a movie, answer with the refreshed panel.
/// Without htmx the browser is sent back to the page.
pub async fn rate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    axum::extract::Form(form): axum::extract::Form<RateForm>,
) -> PageResult<Response> {
    let user_id = page_id(&state, "user", &id)?;
    let mut messages = BTreeMap::new();
    let movie_id = match form.movie_id.trim().parse::<i64>() {
        Ok(m) if m > 0 => match state.store.movie(m).await.or_page(&state)? {
            Some(_) => Some(m),
            None => {
                messages.insert("movie_id", format!("There is no movie {m}."));
                None
            }
        },
        _ => {
            messages.insert("movie_id", "Enter a movie id (a positive whole number).".into());
            None
        }
    };
    let rating = match form.rating.trim().parse::<f64>() {
        Ok(r) if (0.5..=5.0).contains(&r) && (r * 2.0).fract() == 0.0 => Some(r),
        _ => {
            messages.insert("rating", "Choose a rating from 0.5 to 5 stars.".into());
            None
        }
    };
    if let Some(expected) = state.api_key.as_ref().map(ExposeSecret::expose_secret)
        && !same_key(form.api_key.trim(), expected)
    {
        messages.insert("api_key", "This service needs its API key to accept ratings.".into());
    }
    let mut notice = None;
    if let (Some(movie_id), Some(rating), true) = (movie_id, rating, messages.is_empty()) {
        let before = state.live.engine().online().user_steps(user_id);
        let rating_event = NewRating { user_id, movie_id, rating, timestamp: None };
        match ingest::submit(&state, rating_event).await {
            Ok(_) => {
                let deadline = tokio::time::Instant::now() + APPLY_WAIT;
                let mut applied = false;
                while tokio::time::Instant::now() < deadline {
                    if state.live.engine().online().user_steps(user_id) > before {
                        applied = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                notice = Some(if applied {
                    format!("Rated movie {movie_id} with {rating} stars; the list below already includes it.")
                } else {
                    format!("Rated movie {movie_id} with {rating} stars; the model has not applied it yet.")
                });
            }
            Err(ApiError::Invalid(m)) => {
                messages.insert("movie_id", m);
            }
            Err(e) => notice = Some(format!("The rating was not accepted: {e}")),
        }
    }
    if !headers.contains_key("HX-Request") {
        return Ok(Redirect::to(&format!("/ui/users/{user_id}")).into_response());
    }
    let mut panel = panel(&state, user_id).await.or_page(&state)?;
    if !messages.is_empty() {
        panel.movie_value = form.movie_id.trim().chars().take(20).collect();
        panel.rating_value = form.rating.trim().chars().take(10).collect();
    }
    panel.messages = messages;
    panel.notice = notice;
    Ok(panel.into_response())
}
