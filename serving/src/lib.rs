//! CineData's HTTP service.
//!
//! Where things live:
//! - [`ab`]: A/B experiments on live traffic: the running experiment, sticky variants, the
//!   impressions log and the outcomes per variant.
//! - [`cache`]: the short-lived response cache in front of catalogue reads.
//! - [`charts`]: the precomputed chart figures (ratings per month, per genre and year, per movie).
//! - [`cli`]: the `serving` command line (`import`, `serve`, `demo`) and its settings.
//! - [`demo`]: the one-command demo: embedded broker, SQLite, replay, live model, HTTP.
//! - [`journal`]: the demo's synced journal of accepted ratings (durable 202s) and its recovery.
//! - [`live`]: the live recommender: stream → online model, retrains with hot swap, snapshots.
//! - [`server`]: the HTTP/1 server loop and its connection limits (timeouts, maximum
//!   connections, the open-file limit).
//! - [`parse_errors`]: hyper's own empty 400/414/431 for requests it cannot parse, rewritten
//!   as JSON on their way to the socket.
//! - [`startup`]: building the app on a listener and running it until shutdown.
//! - [`routes`]: one module per area of the API; handlers extract, call the store or the live
//!   model, map to DTOs.
//! - [`ui`]: the web interface under `/ui/` (pages, assets, posters).
//! - [`error`]: the one `ApiError` and how each case maps to a status and a JSON body.
//! - [`extract`]: `Query`/`Path` extractors whose rejections become 422 JSON errors.
//! - [`metrics`]: the Prometheus registry, the per-route middleware and `/metrics`.
//! - [`openapi`]: the OpenAPI document behind `/openapi.json`, `/docs` and `/redoc`.
//! - [`state`]: `AppState`, the cloneable bundle every handler receives.

pub mod ab;
pub mod background;
pub mod cache;
pub mod charts;
pub mod cli;
pub mod demo;
pub mod error;
pub mod extract;
pub mod journal;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod parse_errors;
pub mod routes;
pub mod server;
pub mod startup;
pub mod state;
pub mod ui;
