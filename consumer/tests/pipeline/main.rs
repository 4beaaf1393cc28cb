//! End-to-end tests of the event pipeline: producer → Kafka → consumer group → store.
//!
//! - `embedded`: on librdkafka's in-process mock cluster and SQLite: a full ml-latest-small
//!   replay, crashes mid-stream (a killed process, an aborted task), poison events, two
//!   consumers sharing the partitions.
//! - `diskfull`: SQLite on a small tmpfs that fills and is freed; the consumer resumes by
//!   itself (skipped, saying so, where mounting is not allowed).
//! - `metrics`: the Prometheus families scraped from `/metrics`: counters after a replay with
//!   poison, the lag while the database is down, the binary's `--metrics-listen`.
//! - `impressions`: shown lists persisted exactly once through a consumer killed mid-stream.
//! - `postgres`: the full replay into PostgreSQL (`CINEDATA_TEST_POSTGRES_URL`, default
//!   `postgres://postgres@127.0.0.1:5432/test`; a fresh database per test).
//! - `processes`: two `consumer` processes in one group (the first keeps the embedded broker)
//!   persist a replay into PostgreSQL exactly once between them.
//! - `tansu`: against tansu, a Kafka-compatible broker in its own process: a broker restart
//!   mid-stream, a `consumer` process killed mid-stream, poison events (the last two share
//!   their bodies with `embedded`'s). Needs `tansu` on the PATH (or `CINEDATA_TANSU`); fails, not skips,
//!   without it.
//!
//! Waits are deadline-bounded polls; nothing asserts on timing.

mod diskfull;
mod embedded;
mod helpers;
mod impressions;
mod metrics;
mod postgres;
mod processes;
mod tansu;
