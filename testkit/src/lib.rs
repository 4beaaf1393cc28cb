//! Test support shared by CineData's test suites (a dev-dependency only, never published).
//!
//! - [`postgres`]: a fresh PostgreSQL database per test, dropped when the test ends.
//! - [`ml_small`]: where the suites find ml-latest-small.
//! - [`quick_pipeline`]: small, fast model settings for suites that do not measure quality.
//! - [`metrics`]: the samples of a Prometheus text exposition, and [`metrics::get`], a plain
//!   HTTP/1.0 `GET` for scraping `/metrics`.

pub mod metrics;
pub mod postgres;

use std::path::PathBuf;

/// The ml-latest-small release folder the suites read: `CINEDATA_ML_SMALL`, else
/// `shared/data/movielens/ml-latest-small` beside the workspace.
pub fn ml_small() -> PathBuf {
    std::env::var_os("CINEDATA_ML_SMALL").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/movielens/ml-latest-small"),
        PathBuf::from,
    )
}

/// The recommender pipeline with a small top-N model (one 60-tree ensemble) and the default
/// MF (whose factors give "similar movies"): suites that test behaviour rather than list
/// quality retrain in a few seconds with it.
pub fn quick_pipeline() -> model::Recompute {
    quick_pipeline_with(model::Recompute::builder())
}

/// [`quick_pipeline`] on top of other settings (e.g. a smaller MF).
pub fn quick_pipeline_with(builder: model::RecomputeBuilder) -> model::Recompute {
    builder
        .top_n(model::Rerank { trees: 60, ensembles: 1, ..model::Rerank::default() })
        .build()
        .expect("valid pipeline settings")
}

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
