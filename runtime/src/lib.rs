//! The runtime plumbing the three binaries (`producer`, `consumer`, `serving`) share, and
//! nothing else: the shutdown signal, logging set-up, and the Prometheus registry and
//! `/metrics` server.

pub mod metrics;
pub mod shutdown;

/// Logs to stderr, filtered by `RUST_LOG`, else by `default_filter` (e.g. `info`).
pub fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
