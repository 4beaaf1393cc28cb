//! Live recommendations: personal top-N, similar movies, rating predictions and user
//! profiles, computed at request time by the [`model::Engine`] over the live state (a rating
//! just learned changes the next answer; the list cache is keyed by the user's updates, and
//! answers a burst of them from the kept list without the rated movies: see `ListCache`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use model::{ListModel, Profile, Query as TopN, Scored, Source};
use schemas::ErrorBody;
use schemas::events::unix_now;
use schemas::recommend::{
    Because, GenreAffinity, Prediction, Predictions, RatedMovie, RecommendedMovie, SimilarMovies, Strategy,
    UserProfile, UserRecommendations,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::ab::Arm;
use crate::cache::{Background, Claim, ListLookup, ListStamp};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::live::Movies;
use crate::live::movies::genres;
use crate::state::AppState;

/// Largest `n` a list accepts.
pub const MAX_N: usize = 100;
/// Largest number of ids in `exclude`.
const MAX_EXCLUDE: usize = 1000;
/// Reasons given per recommended movie with `explain=true`.
const REASONS: usize = 3;
/// Genres and movies a profile shows.
const FAVOURITE_GENRES: usize = 5;
const TOP_RATED: usize = 10;

/// The recommendation routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/{user_id}/recommendations", get(recommendations))
        .route("/users/{user_id}/profile", get(profile))
        .route("/users/{user_id}/predictions", get(predictions))
        .route("/movies/{movie_id}/similar", get(similar))
}

/// Options of `GET /users/{userId}/recommendations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecommendOptions {
    /// Movies to return, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    n: Option<i64>,
    /// Only movies of this genre (case-insensitive, e.g. `comedy`).
    #[param(pattern = r"^[^\u0000]*$")]
    genre: Option<String>,
    /// Comma-separated movie ids never to return, e.g. `1,2` (at most 1000).
    #[param(pattern = r"^\s*([+-]?[0-9]{1,18}\s*(,\s*[+-]?[0-9]{1,18}\s*){0,999})?$")]
    exclude: Option<String>,
    /// Add the liked movies that most drove each recommendation (default false).
    explain: Option<bool>,
}

/// Options of `GET /users/{userId}/predictions`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PredictionOptions {
    /// Comma-separated movie ids to predict, e.g. `1,2` (1 to 1000).
    #[serde(rename = "movieId")]
    #[param(rename = "movieId", pattern = r"^[^\u0000]*$")]
    movie_id: Option<String>,
}

/// Options of `GET /movies/{movieId}/similar`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SimilarOptions {
    /// Movies to return, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    n: Option<i64>,
}

fn positive_id(name: &str, id: i64) -> ApiResult<i64> {
    if id > 0 { Ok(id) } else { Err(ApiError::Invalid(format!("{name} must be a positive integer, got {id}"))) }
}

fn count(n: Option<i64>) -> ApiResult<usize> {
    match n.unwrap_or(10) {
        n if (1..=MAX_N as i64).contains(&n) => Ok(n as usize),
        n => Err(ApiError::Invalid(format!("n must be between 1 and {MAX_N}, got {n}"))),
    }
}

fn parse_exclude(text: Option<&str>) -> ApiResult<Vec<i64>> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(Vec::new()) };
    let ids: Vec<i64> = text
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::Invalid(format!("exclude must be comma-separated movie ids, got {part:?}")))
        })
        .collect::<ApiResult<_>>()?;
    if ids.len() > MAX_EXCLUDE {
        return Err(ApiError::Invalid(format!("exclude takes at most {MAX_EXCLUDE} ids, got {}", ids.len())));
    }
    Ok(ids)
}

fn strategy(source: Source) -> Strategy {
    match source {
        Source::Personal => Strategy::Personal,
        Source::Trending => Strategy::Trending,
        Source::Collaborative => Strategy::Collaborative,
        Source::Content => Strategy::Content,
    }
}

fn movie(movies: &Movies, s: &Scored) -> Option<RecommendedMovie> {
    let info = movies.get(s.item)?;
    Some(RecommendedMovie {
        movie_id: s.item,
        title: info.title.clone(),
        genres: info.genres.clone(),
        score: f64::from(s.score),
        because: None,
    })
}

/// Personal recommendations for a user, computed live; a user without ratings gets trending
/// movies (`strategy: "trending"`).
#[utoipa::path(get, path = "/users/{user_id}/recommendations", tag = "recommendations",
    params(("user_id" = i64, Path, description = "MovieLens user id", minimum = 1), RecommendOptions),
    responses((status = 200, body = UserRecommendations), (status = 422, body = ErrorBody)))]
pub async fn recommendations(
    State(state): State<AppState>,
    uri: Uri,
    Path(user_id): Path<i64>,
    Query(options): Query<RecommendOptions>,
) -> ApiResult<Response> {
    let user_id = positive_id("userId", user_id)?;
    let n = count(options.n)?;
    let exclude = parse_exclude(options.exclude.as_deref())?;
    let live = &state.live;
    let engine = live.engine();
    let version = live.lineage().version;
    let stamp =
        ListStamp { version, catalogue: live.catalogue_generation(), steps: engine.online().user_steps(user_id) };
    // In a running experiment the user's variant picks the model; its lists are kept apart
    // from other variants' and from those of an earlier configuration.
    let running = state.experiments.running();
    let arm = running.as_deref().map(|r| r.arm(user_id));
    let key = match (&running, &arm) {
        (Some(r), Some(a)) => format!("{uri}#{}:{}:{}", a.experiment, r.revision, a.variant),
        _ => uri.to_string(),
    };
    // Kept lists are answered before anything else is looked at: under a stream of ratings
    // most requests end here.
    let compute = match state.lists.get(&key, stamp) {
        ListLookup::Hit(body, answer) => return Ok(shown(&state, arm.as_ref(), body, &answer)),
        ListLookup::RatedSince(body, answer) => {
            let (body, answer) = without_rated(&engine, &answer, body)?;
            return Ok(shown(&state, arm.as_ref(), body, &answer));
        }
        ListLookup::Refresh(body, answer, background) => Compute::Behind(body, answer, background),
        ListLookup::Miss(claim) => Compute::Now(claim),
    };
    let movies = live.movies();
    let genre = options.genre.as_deref().map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned);
    if let Some(g) = &genre
        && movies.genre(g).is_none()
    {
        return Err(ApiError::Invalid(format!("no movie has the genre {g:?}")));
    }
    let asked = List {
        user_id,
        n,
        exclude,
        genre,
        explain: options.explain.unwrap_or(false),
        version,
        arm: arm.as_ref().map(|a| (a.experiment.to_owned(), a.variant.to_owned(), a.model)),
    };
    match compute {
        Compute::Behind(body, answer, background) => {
            let (body, answer) = without_rated(&engine, &answer, body)?;
            let answered = shown(&state, arm.as_ref(), body, &answer);
            let (lists, state) = (state.lists.clone(), state.clone());
            lists.refresh(background, move || {
                if let Err(error) = keep_new_list(&state, key, stamp, asked, &engine, &movies) {
                    tracing::warn!(%error, "refreshing a list in the background");
                }
            });
            Ok(answered)
        }
        // The claim (if any) is held until the new list is kept, so concurrent requests get
        // the previous one meanwhile. With the top-N model a list is 1–2 ms of CPU: computed
        // off the async workers, so that answers from the cache never queue behind one.
        Compute::Now(_claim) => {
            let computing = state.clone();
            let (body, answer) =
                tokio::task::spawn_blocking(move || keep_new_list(&computing, key, stamp, asked, &engine, &movies))
                    .await
                    .map_err(|e| ApiError::Internal(format!("computing a list: {e}")))??;
            Ok(shown(&state, arm.as_ref(), body, &answer))
        }
    }
}

/// The response for a list about to be shown, its impression logged (and counted for the
/// user's experiment arm).
fn shown(state: &AppState, arm: Option<&Arm<'_>>, body: Bytes, answer: &UserRecommendations) -> Response {
    if let Some(arm) = arm {
        state.experiments.served(arm);
    }
    if let Some(log) = &state.impressions {
        let now = unix_now();
        log.shown(answer, state.live.stream_time(now), now);
    }
    json_body(body)
}

/// A user's list exactly as `GET /users/{userId}/recommendations?{query}` answers it (its
/// handler is called: cache, experiment arm and impression included), for the web interface
/// and the demo's replayed viewers.
///
/// # Errors
/// What the endpoint answers with an error status.
pub async fn list_through_handler(state: &AppState, user_id: i64, query: &str) -> ApiResult<UserRecommendations> {
    let uri: Uri =
        format!("/users/{user_id}/recommendations?{query}").parse().map_err(|e| ApiError::Invalid(format!("{e}")))?;
    let options = axum::extract::Query::try_from_uri(&uri).map_err(|e| ApiError::Invalid(e.body_text()))?.0;
    let response = recommendations(State(state.clone()), uri, Path(user_id), Query(options)).await?;
    let body = axum::body::to_bytes(response.into_body(), 4 << 20)
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading recommendations: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| ApiError::Unavailable(format!("decoding recommendations: {e}")))
}

/// How a list not answered from the cache is computed.
enum Compute {
    /// In this request, holding the claim (if any).
    Now(Option<Claim>),
    /// On the background worker, this request answering the kept list without rated movies.
    Behind(Bytes, Arc<UserRecommendations>, Background),
}

/// Computes the list (blocking), keeps it in the list cache and returns it with its body.
fn keep_new_list(
    state: &AppState,
    key: String,
    stamp: ListStamp,
    asked: List,
    engine: &model::Engine,
    movies: &Movies,
) -> ApiResult<(Bytes, Arc<UserRecommendations>)> {
    let started = Instant::now();
    let model = asked.arm.as_ref().map_or(ListModel::Served, |a| a.2);
    let (answer, source) = asked.compute(engine, movies);
    let kind = if source == Source::Personal { "personal" } else { "trending" };
    state.live.metrics().recommend_seconds.with_label_values(&[kind]).observe(started.elapsed().as_secs_f64());
    let body = encode(&answer)?;
    let answer = Arc::new(answer);
    state.lists.put(key, stamp, engine.list_follows_live_factors(model, source), answer.clone(), body.clone());
    Ok((body, answer))
}

/// A list as asked for, checked.
struct List {
    user_id: i64,
    n: usize,
    exclude: Vec<i64>,
    genre: Option<String>,
    explain: bool,
    version: u64,
    /// The experiment, variant and model of the user's arm, if an experiment runs.
    arm: Option<(String, String, ListModel)>,
}

impl List {
    /// The list and the model it came from (blocking: the top-N model runs here).
    fn compute(self, engine: &model::Engine, movies: &Movies) -> (UserRecommendations, Source) {
        let genre = self.genre.as_deref().and_then(|g| movies.genre(g));
        let keep = |id: i64| movies.contains(id) && genre.is_none_or(|g: &HashSet<i64>| g.contains(&id));
        let query = TopN::top(self.n).exclude(self.exclude).filter(&keep);
        let model = self.arm.as_ref().map_or(ListModel::Served, |a| a.2);
        let found = engine.recommend_with(self.user_id, &query, model);
        let mut items: Vec<RecommendedMovie> = found.items.iter().filter_map(|s| movie(movies, s)).collect();
        if self.explain && found.source == Source::Personal {
            let ids: Vec<i64> = items.iter().map(|m| m.movie_id).collect();
            for (item, reasons) in items.iter_mut().zip(engine.explain_each(self.user_id, &ids, REASONS)) {
                item.because = Some(
                    reasons
                        .into_iter()
                        .filter_map(|r| {
                            Some(Because {
                                movie_id: r.item,
                                title: movies.get(r.item)?.title.clone(),
                                rating: f64::from(r.rating),
                                weight: f64::from(r.weight),
                            })
                        })
                        .collect(),
                );
            }
        }
        let strategy = strategy(found.source);
        let (experiment, variant) = self.arm.map(|(e, v, _)| (e, v)).unzip();
        let answer = UserRecommendations {
            user_id: self.user_id,
            strategy,
            model_version: self.version,
            items,
            experiment,
            variant,
        };
        (answer, found.source)
    }
}

/// A kept list from before the user's latest ratings, without the movies they rated since:
/// its body and the answer it encodes.
fn without_rated(
    engine: &model::Engine,
    answer: &Arc<UserRecommendations>,
    body: Bytes,
) -> ApiResult<(Bytes, Arc<UserRecommendations>)> {
    let ids: Vec<i64> = answer.items.iter().map(|m| m.movie_id).collect();
    let rated = engine.online().rated_among(answer.user_id, &ids);
    if !rated.contains(&true) {
        return Ok((body, answer.clone()));
    }
    let items = answer.items.iter().zip(rated).filter(|(_, r)| !r).map(|(m, _)| m.clone()).collect();
    let answer = UserRecommendations {
        items,
        user_id: answer.user_id,
        strategy: answer.strategy,
        model_version: answer.model_version,
        experiment: answer.experiment.clone(),
        variant: answer.variant.clone(),
    };
    Ok((encode(&answer)?, Arc::new(answer)))
}

fn encode(answer: &UserRecommendations) -> ApiResult<Bytes> {
    serde_json::to_vec(answer).map(Bytes::from).map_err(|e| ApiError::Internal(format!("encoding a list: {e}")))
}

fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Movies similar to one: rated alike once it has enough ratings (`collaborative`), sharing
/// genres and tags before that (`content`).
#[utoipa::path(get, path = "/movies/{movie_id}/similar", tag = "recommendations",
    params(("movie_id" = i64, Path, description = "MovieLens movie id", minimum = 1), SimilarOptions),
    responses((status = 200, body = SimilarMovies), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn similar(
    State(state): State<AppState>,
    Path(movie_id): Path<i64>,
    Query(options): Query<SimilarOptions>,
) -> ApiResult<axum::Json<SimilarMovies>> {
    let started = Instant::now();
    let movie_id = positive_id("movieId", movie_id)?;
    let n = count(options.n)?;
    let live = &state.live;
    let Some(movies) = live.movies_with(&state.store, movie_id).await? else {
        return Err(ApiError::NotFound(format!("movie {movie_id} not found")));
    };
    let keep = |id: i64| movies.contains(id);
    let query = TopN::top(n).include_seen().filter(&keep);
    // The catalogue's own content index: it also knows movies imported since the last retrain.
    let found = live.engine().similar_in(movie_id, &query, movies.content());
    let kind = match found.source {
        Source::Collaborative => "collaborative",
        Source::Content => "content",
        _ => "trending",
    };
    live.metrics().recommend_seconds.with_label_values(&[kind]).observe(started.elapsed().as_secs_f64());
    Ok(axum::Json(SimilarMovies {
        movie_id,
        strategy: strategy(found.source),
        model_version: live.lineage().version,
        items: found.items.iter().filter_map(|s| movie(&movies, s)).collect(),
    }))
}

/// The live model's predicted ratings of some movies by a user (a user or movie it does not
/// know yet falls back to the biases it has, else the mean rating).
#[utoipa::path(get, path = "/users/{user_id}/predictions", tag = "recommendations",
    params(("user_id" = i64, Path, description = "MovieLens user id", minimum = 1), PredictionOptions),
    responses((status = 200, body = Predictions), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn predictions(
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
    Query(options): Query<PredictionOptions>,
) -> ApiResult<axum::Json<Predictions>> {
    let user_id = positive_id("userId", user_id)?;
    let ids = parse_exclude(options.movie_id.as_deref())
        .map_err(|_| ApiError::Invalid("movieId must be comma-separated movie ids, e.g. 1,2".into()))?;
    if ids.is_empty() {
        return Err(ApiError::Invalid("movieId is required: one or more comma-separated movie ids".into()));
    }
    let live = &state.live;
    let movies = live.movies();
    if let Some(unknown) = ids.iter().find(|&&id| !movies.contains(id)) {
        return Err(ApiError::NotFound(format!("movie {unknown} not found")));
    }
    let engine = live.engine();
    let rated: HashMap<i64, f32> = engine.history(user_id).into_iter().map(|h| (h.0, h.1)).collect();
    let items = ids
        .iter()
        .filter_map(|&id| {
            Some(Prediction {
                movie_id: id,
                title: movies.get(id)?.title.clone(),
                predicted_rating: f64::from(engine.predict(user_id, id)),
                rated: rated.get(&id).map(|&r| f64::from(r)),
            })
        })
        .collect();
    Ok(axum::Json(Predictions { user_id, model_version: live.lineage().version, items }))
}

/// What the live model knows of a user: rating count and mean, favourite genres, top-rated
/// movies.
#[utoipa::path(get, path = "/users/{user_id}/profile", tag = "recommendations",
    params(("user_id" = i64, Path, description = "MovieLens user id", minimum = 1)),
    responses((status = 200, body = UserProfile), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn profile(State(state): State<AppState>, Path(user_id): Path<i64>) -> ApiResult<axum::Json<UserProfile>> {
    let user_id = positive_id("userId", user_id)?;
    let live = &state.live;
    let movies = live.movies();
    let rated: Vec<(i64, f32)> = live.engine().history(user_id).into_iter().map(|h| (h.0, h.1)).collect();
    let genres_of = |id: i64| movies.get(id).map(|info| genres(&info.genres)).into_iter().flatten();
    let Some(profile) = Profile::of(&rated, genres_of) else {
        return Err(ApiError::NotFound(format!("user {user_id} has no ratings")));
    };
    let rated_movie = |&(id, rating): &(i64, f32)| {
        Some(RatedMovie { movie_id: id, title: movies.get(id)?.title.clone(), rating: f64::from(rating) })
    };
    Ok(axum::Json(UserProfile {
        user_id,
        rating_count: profile.ratings as u64,
        mean_rating: profile.mean,
        favourite_genres: profile
            .genres
            .into_iter()
            .take(FAVOURITE_GENRES)
            .map(|g| GenreAffinity { genre: g.genre, count: g.count, mean_rating: g.mean })
            .collect(),
        top_rated: profile.top_rated.iter().filter_map(rated_movie).take(TOP_RATED).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_lists_parse_or_fail_clearly() {
        assert_eq!(parse_exclude(None).unwrap(), Vec::<i64>::new());
        assert_eq!(parse_exclude(Some(" 1, 2 ,3")).unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_exclude(Some("")).unwrap(), Vec::<i64>::new());
        assert!(matches!(parse_exclude(Some("1,x")), Err(ApiError::Invalid(_))));
        assert!(matches!(parse_exclude(Some("1,,2")), Err(ApiError::Invalid(_))));
        let many = (0..=MAX_EXCLUDE).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        assert!(matches!(parse_exclude(Some(&many)), Err(ApiError::Invalid(_))));
    }

    #[test]
    fn n_is_bounded() {
        assert_eq!(count(None).unwrap(), 10);
        assert_eq!(count(Some(100)).unwrap(), 100);
        assert!(count(Some(0)).is_err() && count(Some(101)).is_err() && count(Some(-5)).is_err());
    }
}
