//! The OpenAPI 3 document, derived from the handlers' annotations.

use utoipa::OpenApi;

use crate::routes::{analytics, catalogue, charts, experiments, health, ingest, model, recommend};

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
        model::model_info,
        model::retrain,
        experiments::experiments,
    ),
    tags(
        (name = "health", description = "Liveness"),
        (name = "catalogue", description = "Movies, ratings, tags and links"),
        (name = "analytics", description = "Catalogue-wide figures"),
        (name = "ingest", description = "Submitting ratings to the stream"),
        (name = "recommendations", description = "Live recommendations, similar movies, profiles and the model"),
    )
)]
pub struct ApiDoc;
