//! The Prometheus plumbing every CineData binary shares: one registry prefix, the text
//! exposition, and the tiny `/metrics` server the standalone `producer` and `consumer` run
//! with `--metrics-listen` (serving answers `/metrics` on its own router).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The prefix of every CineData metric family.
pub const NAMESPACE: &str = "cinedata";

/// A fresh registry whose families are all prefixed `cinedata_`, as every binary's.
///
/// # Panics
/// Never: the prefix is valid.
pub fn registry() -> Registry {
    Registry::new_custom(Some(NAMESPACE.into()), None).expect("a valid prefix")
}

/// Makes metric families already registered in one registry, so none can be left out of
/// `/metrics`. Each method fails if the name is invalid or already registered.
#[derive(Debug, Clone, Copy)]
pub struct Families<'a>(pub &'a Registry);

impl Families<'_> {
    fn add<C: Collector + Clone + 'static>(&self, family: prometheus::Result<C>) -> prometheus::Result<C> {
        let family = family?;
        self.0.register(Box::new(family.clone()))?;
        Ok(family)
    }

    /// A counter.
    pub fn counter(&self, name: &str, help: &str) -> prometheus::Result<IntCounter> {
        self.add(IntCounter::new(name, help))
    }

    /// A counter per value of `labels`.
    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
        self.add(IntCounterVec::new(Opts::new(name, help), labels))
    }

    /// A gauge of real values.
    pub fn gauge(&self, name: &str, help: &str) -> prometheus::Result<Gauge> {
        self.add(Gauge::new(name, help))
    }

    /// A gauge of real values per value of `labels`.
    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
        self.add(GaugeVec::new(Opts::new(name, help), labels))
    }

    /// A gauge of integers.
    pub fn int_gauge(&self, name: &str, help: &str) -> prometheus::Result<IntGauge> {
        self.add(IntGauge::new(name, help))
    }

    /// A gauge of integers per value of `labels`.
    pub fn int_gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels))
    }

    /// A histogram with these bucket bounds.
    pub fn histogram(&self, name: &str, help: &str, buckets: Vec<f64>) -> prometheus::Result<Histogram> {
        self.add(Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)))
    }

    /// A histogram with these bucket bounds per value of `labels`.
    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        buckets: Vec<f64>,
        labels: &[&str],
    ) -> prometheus::Result<HistogramVec> {
        self.add(HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels))
    }
}

/// The registry in the text exposition format (version 0.0.4).
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::with_capacity(16 * 1024);
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// Serves `GET /metrics` (the text exposition of `registry`) on `listen` until `shutdown`.
/// Returns the bound address (`listen` may ask for port 0) and the server's task, which ends
/// once `shutdown` fired and open requests are answered.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(
    listen: SocketAddr,
    registry: Registry,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let body = render(&registry);
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response() }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
            tracing::warn!(%error, "the metrics server stopped");
        }
    });
    tracing::info!(%bound, "Prometheus metrics at http://{bound}/metrics");
    Ok((bound, task))
}

/// A running `/metrics` server of a binary; [`MetricsServer::stop`] ends it.
#[derive(Debug)]
pub struct MetricsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// [`serve`] until `shutdown` or [`MetricsServer::stop`], and say where on stderr.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn start(listen: SocketAddr, registry: Registry, shutdown: &CancellationToken) -> std::io::Result<Self> {
        let stop = shutdown.child_token();
        let (addr, task) = serve(listen, registry, stop.clone()).await?;
        eprintln!("metrics at http://{addr}/metrics");
        Ok(Self { addr, stop, task })
    }

    /// Stops serving and waits (at most 2 s) for the server to close.
    pub async fn stop(self) {
        self.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(2), self.task).await.is_err() {
            tracing::debug!("the metrics server did not close within 2 s");
        }
    }
}
