//! The OpenAPI 3 document, derived from the handlers' annotations, plus the one bound that
//! depends on the clock.

use schemas::events::{MAX_CLOCK_SKEW_SECS, unix_now};
use utoipa::OpenApi;
use utoipa::openapi::schema::{Object, Schema};
use utoipa::openapi::{self, RefOr};

use crate::routes::{ab, analytics, catalogue, charts, experiments, health, ingest, model, recommend};

/// CineData's API description, served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "CineData", description = "MovieLens catalogue data API and live recommendations."),
    paths(
        health::health,
        catalogue::list_movies,
        catalogue::get_movie,
        catalogue::list_ratings,
        catalogue::get_rating,
        catalogue::list_tags,
        catalogue::get_tag,
        catalogue::list_links,
        catalogue::get_link,
        analytics::analytics,
        charts::ratings_per_month,
        charts::rating_histogram,
        charts::genre_charts,
        charts::top_movies,
        charts::movie_charts,
        ingest::post_rating,
        recommend::recommendations,
        recommend::similar,
        recommend::profile,
        recommend::predictions,
        model::model_info,
        model::retrain,
        experiments::experiments,
        ab::list,
        ab::report,
        ab::put,
        ab::start,
        ab::stop,
    ),
    tags(
        (name = "health", description = "Liveness"),
        (name = "catalogue", description = "Movies, ratings, tags and links"),
        (name = "analytics", description = "Catalogue-wide figures"),
        (name = "ingest", description = "Submitting ratings to the stream"),
        (name = "recommendations", description = "Live recommendations, similar movies, profiles and the model"),
        (name = "experiments", description = "A/B experiments on live traffic: variants, impressions, outcomes"),
    )
)]
pub struct ApiDoc;

/// The latest rating timestamp `POST /ratings` accepts at `now`: the clock skew allowed past
/// the current hour. It moves once an hour, not every second, so the maximum published in
/// [`document`] is exactly what validation applies to requests made in the same hour (an
/// always-moving bound could never match a document fetched earlier).
pub fn latest_timestamp(now: i64) -> i64 {
    now - now.rem_euclid(3600) + MAX_CLOCK_SKEW_SECS
}

/// [`ApiDoc`] with `NewRating.timestamp`'s maximum set to [`latest_timestamp`] at `now`;
/// `/openapi.json` builds it per request.
pub fn document(now: i64) -> openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    if let Some(timestamp) = object_property(&mut doc, "NewRating", "timestamp") {
        timestamp.maximum = Some(latest_timestamp(now).into());
    }
    doc
}

/// `GET /openapi.json`.
pub async fn json() -> axum::Json<openapi::OpenApi> {
    axum::Json(document(unix_now()))
}

fn object_property<'a>(doc: &'a mut openapi::OpenApi, schema: &str, property: &str) -> Option<&'a mut Object> {
    let RefOr::T(Schema::Object(object)) = doc.components.as_mut()?.schemas.get_mut(schema)? else { return None };
    match object.properties.get_mut(property)? {
        RefOr::T(Schema::Object(property)) => Some(property),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_timestamp_maximum_is_the_one_validation_applies() {
        let now = 1_700_000_000;
        let doc = serde_json::to_value(document(now)).unwrap();
        let timestamp = &doc["components"]["schemas"]["NewRating"]["properties"]["timestamp"];
        assert_eq!(timestamp["maximum"].as_i64(), Some(latest_timestamp(now)), "{timestamp}");
        assert_eq!(timestamp["minimum"], schemas::events::EARLIEST_TIMESTAMP);
        // Never later than the events' own bound, never earlier than an hour less.
        assert!(latest_timestamp(now) <= now + MAX_CLOCK_SKEW_SECS);
        assert!(latest_timestamp(now) > now + MAX_CLOCK_SKEW_SECS - 3600);
        assert_eq!(latest_timestamp(now), latest_timestamp(now - now.rem_euclid(3600)));
    }
}
