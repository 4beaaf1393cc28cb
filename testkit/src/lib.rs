//! Test support shared by CineData's test suites (a dev-dependency only, never published).
//!
//! - [`postgres`]: a fresh PostgreSQL database per test, dropped when the test ends.
//! - [`metrics`]: the samples of a Prometheus text exposition, and [`metrics::get`], a plain
//!   HTTP/1.0 `GET` for scraping `/metrics`.

pub mod metrics;
pub mod postgres;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `{prefix}_{process id}_{nanoseconds}_{counter}`: unique across test processes and within
/// one, and a valid unquoted SQL identifier when `prefix` is one.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{}_{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::unique_name;

    #[test]
    fn unique_names_differ_and_keep_the_prefix() {
        let (a, b) = (unique_name("cinedata_test"), unique_name("cinedata_test"));
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("cinedata_test_{}_", std::process::id())), "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{a}");
    }
}
