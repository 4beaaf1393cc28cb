//! End-to-end tests of live recommendations: the real server on a socket over a SQLite file
//! holding ml-latest-small, the in-process Kafka mock as the stream, snapshots in a temp dir.
//!
//! - [`experiments`]: an A/B experiment over HTTP: sticky variants, persisted impressions, a hit.
//! - [`recommendations`]: personal lists react to a posted rating; filters, exclusions,
//!   explanations, profiles; cold users and movies without ratings.
//! - [`retrain`]: a retrain under concurrent queries, and the model's status.
//! - [`restart`]: stop and start again from the snapshot, same answers.
//! - [`replicas`]: two replicas on one PostgreSQL store follow the same stream and agree.

mod experiments;
mod helpers;
mod recommendations;
mod replicas;
mod restart;
mod retrain;
