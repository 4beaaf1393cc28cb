//! The operations files, checked against what they run:
//!
//! - [`compose`]: `docker-compose.yml` against the Compose Specification and every CineData
//!   command line in it against that binary's own parser; ports, listeners, URLs and mounts
//!   line up; the Prometheus config passes `promtool`.
//! - [`dashboards`]: every PromQL query of the shipped Grafana dashboards returns data from a
//!   real Prometheus scraping a running demo.

mod compose;
mod dashboards;
