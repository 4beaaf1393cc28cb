//! The HTTP surface: [`app`] merges each area's router with docs, metrics, body limits and
//! error fallbacks (every error answer is JSON).

pub mod ab;
pub mod analytics;
pub mod catalogue;
pub mod charts;
pub mod experiments;
pub mod health;
pub mod ingest;
pub mod model;
pub mod recommend;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa_redoc::{Redoc, Servable};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::cache;
use crate::error::{self, ApiError};
use crate::metrics;
use crate::openapi;
use crate::state::AppState;

/// The whole application router.
pub fn app(state: AppState) -> Router {
    let cached = Router::new()
        .merge(catalogue::router())
        .merge(analytics::router())
        .route_layer(middleware::from_fn_with_state(state.responses.clone(), cache::layer));
    let api = Router::new()
        .merge(health::router())
        .merge(cached)
        .merge(ingest::router())
        .merge(recommend::router())
        .merge(model::router())
        .merge(experiments::router())
        .merge(ab::router())
        .merge(charts::router())
        .merge(crate::ui::router())
        .route("/metrics", get(metrics::exposition).with_state(state.metrics.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    Router::new()
        // The document is built per request (its rating timestamp bound moves hourly).
        .merge(SwaggerUi::new("/docs").config(Config::from("/openapi.json")))
        .route("/openapi.json", get(openapi::json))
        .merge(Redoc::with_url("/redoc", openapi::document(schemas::events::unix_now())))
        .merge(api)
        .layer(middleware::from_fn(error::refuse_oversize))
        .layer(DefaultBodyLimit::max(error::MAX_BODY_BYTES))
        .layer(middleware::from_fn(crate::ui::redirect_browsers))
        .layer(middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
        .layer(middleware::from_fn(error::json_bodies))
        .layer(CatchPanicLayer::custom(|panic: Box<dyn std::any::Any + Send>| {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            ApiError::Internal(format!("handler panicked: {message}")).into_response()
        }))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
