//! End-to-end tests of the catalogue data API: the real server on a socket, a fresh database
//! holding ml-latest-small, and every test run against SQLite and PostgreSQL
//! (`area::test_name::sqlite` / `area::test_name::postgres`).
//!
//! - [`helpers`]: `spawn_app(backend)` (the setup of `testkit::backend_tests!`) and HTTP helpers.
//! - [`movies`], [`ratings`], [`tags`], [`links`]: the listings, lookups and filters.
//! - [`analytics`]: counts and the catalogue-wide insights.
//! - [`charts`]: `/charts/...` and `/model/experiments`.
//! - [`ui`]: the web interface's pages over plain HTTP.
//! - [`errors`]: 404s, 422s and the JSON error shape.
//! - [`hostile`]: slow, idle, stalled, oversize and junk-method clients (SQLite only: the
//!   HTTP layer is the same on both backends).
//! - [`docs`]: OpenAPI, Swagger UI, ReDoc, health and `/metrics`.
//! - [`schemathesis`]: property-based fuzzing of `/openapi.json` with the schemathesis CLI.

mod analytics;
mod charts;
mod docs;
mod errors;
mod helpers;
mod hostile;
mod ingest;
mod links;
mod movies;
mod ratings;
mod schemathesis;
mod tags;
mod ui;
