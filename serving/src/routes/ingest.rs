//! `POST /ratings`: a client rates a movie; the event goes to Kafka and the pipeline persists it.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use schemas::ErrorBody;
use schemas::events::{NewRating, RatingAccepted, unix_now};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiKey, Json};
use crate::state::AppState;

/// The ingestion route.
pub fn router() -> Router<AppState> {
    Router::new().route("/ratings", post(post_rating))
}

/// Submit a rating. It is validated (scale, ids, timestamp, movie in the catalogue), produced
/// to the ratings topic keyed by userId, and acknowledged by the broker before the 202; in the
/// demo it is also synced to the ratings journal first, so the 202 survives a crash.
#[utoipa::path(post, path = "/ratings", tag = "ingest", request_body = NewRating,
    params(("x-api-key" = Option<String>, Header, description = "Required when the service has an API key")),
    responses((status = 202, body = RatingAccepted), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn post_rating(
    State(state): State<AppState>,
    _key: ApiKey,
    Json(body): Json<NewRating>,
) -> ApiResult<(StatusCode, axum::Json<RatingAccepted>)> {
    Ok((StatusCode::ACCEPTED, axum::Json(submit(&state, body).await?)))
}

/// Validates a rating and produces it to the ratings topic (also used by the web interface's
/// rating form); in the demo it is journalled too (see [`post_rating`]).
///
/// # Errors
/// An invalid rating or unknown movie (422), no broker configured or the broker or journal
/// failing (503).
pub async fn submit(state: &AppState, body: NewRating) -> ApiResult<RatingAccepted> {
    let now = unix_now();
    let latest = crate::openapi::latest_timestamp(now);
    if let Some(timestamp) = body.timestamp.filter(|&t| t > latest) {
        return Err(ApiError::Invalid(format!("timestamp {timestamp} is after {latest}, the published maximum")));
    }
    let event = body.into_event(now).map_err(|e| ApiError::Invalid(e.to_string()))?;
    // The catalogue in memory the stream checks too; the store only for a movie it lacks.
    if state.live.movies_with(&state.store, event.movie_id).await?.is_none() {
        return Err(ApiError::Invalid(format!("movie {} is not in the catalogue", event.movie_id)));
    }
    let Some(ingest) = &state.ingest else {
        return Err(ApiError::Unavailable("no Kafka brokers configured (--brokers)".into()));
    };
    // The journal sync and the broker's acknowledgement run side by side: the 202 waits for
    // both. Either failing answers 503; the event may still be stored then (at least once).
    let journalled = async {
        match &ingest.journal {
            Some(journal) => journal.append(&event).await,
            None => Ok(()),
        }
    };
    let (journalled, delivered) =
        tokio::join!(journalled, producer::send_rating(&ingest.producer, &ingest.topic, &event));
    journalled.map_err(|e| ApiError::Unavailable(format!("could not journal the rating: {e}")))?;
    let delivered = delivered.map_err(|e| match e {
        producer::SendError::Invalid(e) => ApiError::Invalid(e.to_string()),
        other => ApiError::Unavailable(other.to_string()),
    })?;
    Ok(RatingAccepted { event_id: delivered.event_id.to_string() })
}
