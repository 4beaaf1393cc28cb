//! CineData's shared wire types: what the HTTP API returns and what travels on Kafka.
//!
//! - [`ab`]: A/B experiments: configuration, sticky assignment, outcomes.
//! - [`charts`]: the chart series of the web interface (`/charts/...`).
//! - [`catalogue`]: movies, ratings, tags, links and analytics as the data API serves them
//!   (field names are the public contract: `movieId`, `userId`, ...).
//! - [`error`]: the JSON error body every endpoint uses.
//! - [`events`]: the versioned Kafka events (`RatingSubmitted`, `TagAdded`, `ListShown`) and the one
//!   [`decode`](events::decode) function every consumer uses.
//! - [`experiments`]: experiment records (an `evaluate` run or a production retrain) and the
//!   data fingerprint they carry.
//! - [`recommend`]: live recommendations, similar movies, user profiles and model status.
//! - [`splitmix`]: the one integer mixer (fold assignment, fingerprints, synthetic seeding).

pub mod ab;
pub mod catalogue;
pub mod charts;
pub mod error;
pub mod events;
pub mod experiments;
pub mod recommend;
pub mod splitmix;

pub use catalogue::*;
pub use error::ErrorBody;
pub use experiments::{DataFingerprint, DataSnapshot, ExperimentKind, ExperimentRecord};
