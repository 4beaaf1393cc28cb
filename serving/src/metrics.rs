//! Prometheus metrics: one registry per app, a middleware that counts and times every
//! request by route template and method (never by raw path or raw method, so no client can
//! grow label cardinality), and the `/metrics` exposition.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry};

use crate::ab::AbMetrics;

/// The service's metric families.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Rows per table, refreshed when analytics are computed.
    pub store_rows: IntGaugeVec,
    /// Response cache lookups by result (hit, miss).
    pub cache_lookups: IntCounterVec,
    /// Client connections open now.
    pub connections_open: IntGauge,
    /// Connections answered 503 and closed because the connection limit was reached.
    pub connections_refused: IntCounter,
    /// Impressions sent to the impressions topic, by result.
    pub impressions: IntCounterVec,
    /// A/B experiments, by experiment and variant.
    pub ab: AbMetrics,
}

impl Metrics {
    /// Registers every family in a fresh registry.
    ///
    /// # Panics
    /// Only if two families share a name, which is a programming error caught by any test.
    pub fn new() -> Arc<Self> {
        let registry = runtime::metrics::registry();
        let f = runtime::metrics::Families(&registry);
        let requests = f
            .counter_vec(
                "http_requests_total",
                "HTTP requests answered, by method, route template and status.",
                &["method", "route", "status"],
            )
            .expect("valid metric");
        let latency = f
            .histogram_vec(
                "http_request_duration_seconds",
                "HTTP request latency by method and route template.",
                vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
                &["method", "route"],
            )
            .expect("valid metric");
        let store_rows =
            f.int_gauge_vec("store_rows", "Rows in each catalogue table.", &["table"]).expect("valid metric");
        let cache_lookups = f
            .counter_vec(
                "http_cache_lookups_total",
                "Response and list cache lookups by result: hit, stale (served while one request refreshes), \
rated_since (a list from before the user's latest ratings, those movies left out), miss.",
                &["result"],
            )
            .expect("valid metric");
        let connections_open =
            f.int_gauge("http_connections_open", "Client connections open now.").expect("valid metric");
        let connections_refused = f
            .counter(
                "http_connections_refused_total",
                "Connections answered 503 and closed because the connection limit was reached.",
            )
            .expect("valid metric");
        let impressions = f
            .counter_vec(
                "impressions_total",
                "Shown lists logged to the impressions topic, by result: delivered, failed (not acknowledged), \
dropped (the pending lists or the producer's queue were full), invalid.",
                &["result"],
            )
            .expect("valid metric");
        let ab = ab_metrics(&f).expect("valid metric");
        // process_cpu_seconds_total, process_resident_memory_bytes, ... (Linux only).
        let _ = registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()));
        Arc::new(Self {
            registry,
            requests,
            latency,
            store_rows,
            cache_lookups,
            connections_open,
            connections_refused,
            impressions,
            ab,
        })
    }

    /// The registry, for other components to add their families.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        runtime::metrics::render(&self.registry)
    }
}

fn ab_metrics(f: &runtime::metrics::Families<'_>) -> prometheus::Result<AbMetrics> {
    let labels = ["experiment", "variant"];
    Ok(AbMetrics {
        lists: f.counter_vec("experiment_lists_total", "Lists served in the running A/B experiment.", &labels)?,
        users: f.int_gauge_vec("experiment_users", "Users shown a list, per experiment and variant.", &labels)?,
        hit_users: f.int_gauge_vec(
            "experiment_hit_users",
            "Users with a hit list: they liked (rated >= 4) one of its top 10 movies within the window after it.",
            &labels,
        )?,
        hit_rate: f.gauge_vec("experiment_hit_rate", "Hit rate@10: lists with a hit / lists shown.", &labels)?,
        impressions: f.int_gauge_vec(
            "experiment_impressions",
            "Impressions stored, per experiment and variant.",
            &labels,
        )?,
    })
}

/// The `method` label: one of the standard methods, else `other` (a method is any token a
/// client likes, up to the whole header size).
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN.iter().find(|(known, _)| known == method).map_or("other", |(_, label)| label)
}

/// Counts and times each request under its route template and [`method_label`]; unmatched
/// paths share one label.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = method_label(req.method());
    let response = next.run(req).await;
    metrics.latency.with_label_values(&[method, &route]).observe(started.elapsed().as_secs_f64());
    metrics.requests.with_label_values(&[method, &route, response.status().as_str()]).inc();
    response
}

/// `GET /metrics`.
pub async fn exposition(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"PROPFIND").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(&[b'X'; 30_000]).unwrap()), "other");
    }
}
