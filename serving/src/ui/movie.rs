//! `/ui/movies/{id}`: one movie with its figures, tags, similar movies and fans.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use schemas::recommend::{RecommendedMovie, Strategy};
use store::{Page, RatingQuery, TagQuery};

use super::{Chart, Layout, OrPage, PageError, PageResult, json_script};
use crate::charts::title_year;
use crate::error::ApiError;
use crate::routes::{charts, recommend};
use crate::state::AppState;

/// Similar movies per list, tags shown, fans shown.
const SIMILAR: usize = 8;
const TAGS: usize = 30;
const FANS: i64 = 12;
/// A "fan" rated the movie at least this.
const FAN_RATING: f64 = 4.5;

struct Similar {
    movie_id: i64,
    title: String,
    poster: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "movie.html")]
struct MoviePage {
    layout: Layout,
    title: String,
    year: String,
    genres: Vec<String>,
    poster: String,
    imdb: Option<String>,
    tmdb: Option<String>,
    rating_count: i64,
    mean: String,
    histogram: String,
    per_year: String,
    tags: Vec<(String, u32)>,
    rated_alike: Vec<Similar>,
    rated_alike_label: &'static str,
    content: Vec<Similar>,
    fans: Vec<(i64, f64)>,
}

/// Parses a page's id; anything else is a 404 page (a person typed a wrong address).
pub fn page_id(state: &AppState, what: &str, text: &str) -> PageResult<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| PageError::new(state, ApiError::NotFound(format!("There is no {what} \u{201c}{text}\u{201d}."))))
}

/// `GET /ui/movies/{id}`.
pub async fn page(State(state): State<AppState>, Path(id): Path<String>) -> PageResult<Response> {
    let movie_id = page_id(&state, "movie", &id)?;
    let Some(movie) = state.store.movie(movie_id).await.or_page(&state)? else {
        return Err(PageError::new(&state, ApiError::NotFound(format!("There is no movie {movie_id}."))));
    };
    let tag_query = TagQuery { movie_id: Some(movie_id), user_id: None };
    let fan_query = RatingQuery { movie_id: Some(movie_id), user_id: None, min_rating: Some(FAN_RATING) };
    let (figures, link, tags, fans) = tokio::try_join!(
        charts::movie(&state, movie_id),
        async { state.store.link(movie_id).await.map_err(ApiError::from) },
        async { state.store.tags(&tag_query, Page { skip: 0, limit: 2000 }).await.map_err(ApiError::from) },
        async { state.store.ratings(&fan_query, Page { skip: 0, limit: FANS }).await.map_err(ApiError::from) },
    )
    .or_page(&state)?;

    let uri: Uri = format!("/movies/{movie_id}/similar?n={SIMILAR}").parse().expect("a valid URI");
    let options = axum::extract::Query::try_from_uri(&uri).expect("valid similar options").0;
    let similar =
        recommend::similar(State(state.clone()), crate::extract::Path(movie_id), crate::extract::Query(options))
            .await
            .or_page(&state)?
            .0;
    let to_similar = |m: &RecommendedMovie| Similar {
        movie_id: m.movie_id,
        title: m.title.clone(),
        poster: state.posters.src(m.movie_id),
    };
    let rated_alike: Vec<Similar> = similar.items.iter().map(to_similar).collect();
    let rated_alike_label = match similar.strategy {
        Strategy::Collaborative => "Rated alike",
        Strategy::Content => "Similar genres and tags",
        _ => "Popular now",
    };
    // The content neighbours too, unless the list above already is them.
    let content = if similar.strategy == Strategy::Content {
        Vec::new()
    } else {
        let movies = state.live.movies();
        let keep = |id: i64| movies.contains(id);
        let query = model::Query::top(SIMILAR).include_seen().filter(&keep);
        movies
            .content()
            .similar(movie_id, &query)
            .iter()
            .filter_map(|s| {
                Some(Similar {
                    movie_id: s.item,
                    title: movies.get(s.item)?.title.clone(),
                    poster: state.posters.src(s.item),
                })
            })
            .collect()
    };

    let mut tag_counts: HashMap<String, u32> = HashMap::new();
    for t in tags {
        *tag_counts.entry(t.tag.trim().to_owned()).or_default() += 1;
    }
    let mut tags: Vec<(String, u32)> = tag_counts.into_iter().collect();
    tags.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.to_lowercase().cmp(&b.0.to_lowercase())));
    tags.truncate(TAGS);

    let histogram =
        Chart::rating_counts("bar", figures.histogram.iter().map(|b| (format!("{:.1}", b.rating), b.count as f64)));
    let per_year = Chart::rating_counts("bar", figures.per_year.iter().map(|y| (y.year.to_string(), y.count as f64)));
    let page = MoviePage {
        layout: Layout::new(&state, movie.title.clone(), ""),
        year: title_year(&movie.title).map(|y| y.to_string()).unwrap_or_default(),
        genres: crate::live::movies::genres(&movie.genres).map(str::to_owned).collect(),
        poster: state.posters.src(movie_id),
        imdb: link.as_ref().map(|l| format!("https://www.imdb.com/title/tt{}/", l.imdb_id)),
        tmdb: link.as_ref().and_then(|l| l.tmdb_id).map(|t| format!("https://www.themoviedb.org/movie/{t}")),
        rating_count: figures.rating_count,
        mean: figures.mean_rating.map(|m| format!("{m:.2}")).unwrap_or_else(|| "–".into()),
        histogram: json_script(&histogram),
        per_year: json_script(&per_year),
        tags,
        rated_alike,
        rated_alike_label,
        content,
        fans: fans.iter().map(|r| (r.user_id, r.rating)).collect(),
        title: movie.title,
    };
    Ok(page.into_response())
}
