//! Property-based testing of the whole API from its own OpenAPI document, with the
//! schemathesis CLI (PyPI): no server error, no response outside the documented schema,
//! valid input accepted and invalid input rejected. Runs on both backends: some inputs (a NUL
//! byte in text) only break one of them.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{TestApp, spawn_app};
use testkit::backend_tests;

/// Test cases per API operation and phase.
const MAX_EXAMPLES: &str = "50";
/// A fixed seed keeps CI reproducible; set `SCHEMATHESIS_SEED` to explore other inputs.
const DEFAULT_SEED: &str = "20240601";
/// The run is killed (and the test fails) after this long.
const DEADLINE: Duration = Duration::from_secs(300);

/// `SCHEMATHESIS`, else `schemathesis`/`st` on `PATH`, else the workspace's `.venv-tools/`.
fn find_schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SCHEMATHESIS") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .flat_map(|dir| [dir.join("schemathesis"), dir.join("st")]);
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-tools/bin/schemathesis");
    on_path.chain(std::iter::once(venv)).find(|p| p.is_file())
}

backend_tests!(spawn_app => schemathesis_finds_no_failure);

async fn schemathesis_finds_no_failure(app: &TestApp) {
    let Some(binary) = find_schemathesis() else {
        panic!(
            "schemathesis not found: set SCHEMATHESIS to its path, put it on PATH, or install it with \
             `python3 -m venv .venv-tools && .venv-tools/bin/pip install schemathesis` in the workspace \
             (scripts/test.sh does this)"
        );
    };
    let schema_url = format!("{}/openapi.json", app.address);
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| DEFAULT_SEED.to_owned());
    let workdir = tempfile::tempdir().expect("a temp dir for schemathesis' files");

    // The server runs on this test's runtime, so wait for the CLI on a blocking thread.
    let (status, output) = tokio::task::spawn_blocking(move || {
        let log_path = workdir.path().join("schemathesis.log");
        let log = std::fs::File::create(&log_path).expect("a log file");
        let mut child = Command::new(&binary)
            .args(["run", &schema_url, "--checks", "all", "--max-examples", MAX_EXAMPLES, "--seed", &seed])
            // POST /ratings also rejects schema-valid ratings for reasons no schema can state (a
            // movie not in the catalogue, a timestamp later than now + 1 day), so the check that
            // every schema-valid request is accepted cannot hold; every other check runs.
            .args(["--exclude-checks", "positive_data_acceptance"])
            .args(["--workers", "2", "--request-timeout", "30", "--generation-database", "none", "--no-color"])
            .current_dir(workdir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a second handle on the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let exited = testkit::poll_until_blocking(DEADLINE, || {
            child.try_wait().expect("waiting for schemathesis").ok_or_else(|| "running".to_owned())
        });
        let status = match exited {
            Ok(status) => Some(status),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        };
        (status, std::fs::read_to_string(&log_path).unwrap_or_default())
    })
    .await
    .expect("the schemathesis runner thread");

    match status {
        None => panic!("schemathesis did not finish within {DEADLINE:?}:\n{output}"),
        Some(status) => assert!(status.success(), "schemathesis found failures ({status}):\n{output}"),
    }
}
