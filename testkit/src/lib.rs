//! Test support shared by CineData's test suites (a dev-dependency only, never published).
//!
//! - [`postgres`]: a fresh PostgreSQL database per test, dropped when the test ends.
//! - [`ml_small`]: where the suites find ml-latest-small; [`workspace`]: the workspace root.
//! - [`quick_pipeline`]: small, fast model settings for suites that do not measure quality.
//! - [`metrics`]: the samples of a Prometheus text exposition, [`metrics::get`], a plain
//!   HTTP/1.0 `GET` for scraping `/metrics`, and [`metrics::MetricsProcess`], one of our
//!   binaries serving `/metrics` until SIGTERM.
//! - [`wait_until`] (and [`wait`]'s other functions): polling a condition until a deadline,
//!   the suites' only way to wait for something to happen.
//! - [`backend_tests!`]: each test body run on SQLite and on PostgreSQL.

pub mod metrics;
pub mod postgres;
pub mod wait;

pub use wait::{poll_until, poll_until_blocking, wait_until, wait_until_blocking};

/// Generates, for each test body `async fn name(fixture: &F)`, two `#[tokio::test]`s in a
/// module `name`: `name::sqlite` and `name::postgres`. Each builds its fixture with
/// `setup(store::Backend::Sqlite).await` (resp. `Postgres`) and passes it by reference.
///
/// `setup` is an async function taking a `store::Backend`, named as the calling module names
/// it; the calling crate depends on `store` and `tokio` (testkit does not depend on `store`,
/// whose own tests use this macro).
///
/// ```ignore
/// backend_tests!(spawn_app => movies_are_listed, a_missing_movie_is_404);
///
/// async fn movies_are_listed(app: &TestApp) { /* ... */ }
/// ```
#[macro_export]
macro_rules! backend_tests {
    ($setup:path => $($name:ident),+ $(,)?) => {$(
        mod $name {
            #[allow(unused_imports, reason = "for a `setup` path relative to the calling module")]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let fixture = $setup(::store::Backend::Sqlite).await;
                super::$name(&fixture).await;
            }

            #[tokio::test]
            async fn postgres() {
                let fixture = $setup(::store::Backend::Postgres).await;
                super::$name(&fixture).await;
            }
        }
    )+};
}

use std::path::PathBuf;

/// The workspace's root folder (scripts, ops files, the Python SDK live there).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit/ sits in the workspace").to_path_buf()
}

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
