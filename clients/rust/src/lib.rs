//! A typed async client for CineData's HTTP API.
//!
//! Every endpoint of `/openapi.json` is a method of [`Client`]; answers are the API's own
//! wire types from the `schemas` crate (re-exported as [`types`]); errors name the URL and carry
//! the API's `detail` ([`Error`]). Lists are pages or [`futures::Stream`]s over every page.
//! Reads are retried on connection failures, timeouts and 503 ([`Retry`]); writes are not (see
//! [`Client::rate`]).

mod api;
mod client;
mod error;
mod options;

pub use client::{Client, ClientBuilder, Retry};
pub use error::Error;
pub use options::{ExperimentFilter, MovieFilter, Page, RatingFilter, RecommendOptions, TagFilter};
/// The API's request and answer types.
pub use schemas as types;
