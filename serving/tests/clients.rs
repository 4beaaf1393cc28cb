//! The clients users reach the API with, run against the real `serving` binary:
//!
//! - the Python SDK's pytest suite (`clients/python/tests/`), which starts its own demo on
//!   ml-latest-small with this binary (`CINEDATA_SERVING_BIN`);
//! - the exploration notebook (`notebooks/exploration.ipynb`), executed top to bottom by
//!   nbconvert against a demo started here, rendered to `target/notebooks/exploration.html`.
//!
//! Both need the SDK's Python environment: `CINEDATA_SDK_PYTHON`, else `.venv-tools/sdk/`
//! (`scripts/test.sh` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testkit::{ml_small, workspace};

mod support;
use support::{Group, log_of, run_logged, start_demo};

/// The pytest suite is killed (and the test fails) after this long.
const PYTEST_DEADLINE: Duration = Duration::from_secs(1200);
/// The demo must have replayed ml-latest-small and retrained within this.
const READY_DEADLINE: Duration = Duration::from_secs(600);
/// nbconvert is killed after this long; each cell gets `CELL_TIMEOUT` seconds.
const NOTEBOOK_DEADLINE: Duration = Duration::from_secs(900);
const CELL_TIMEOUT: &str = "600";

/// `CINEDATA_SDK_PYTHON`, else the workspace's `.venv-tools/sdk/bin/python`.
fn sdk_python() -> PathBuf {
    if let Some(path) = std::env::var_os("CINEDATA_SDK_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = workspace().join(".venv-tools/sdk/bin/python");
    if venv.is_file() {
        return venv;
    }
    panic!(
        "the SDK's Python environment was not found: set CINEDATA_SDK_PYTHON to a python with the SDK \
         (`pip install './clients/python[pandas]'`), pytest, pytest-asyncio, plotly, nbconvert and ipykernel, \
         or run ./scripts/test.sh, which installs them into .venv-tools/sdk/"
    );
}

#[test]
fn the_python_sdk_suite_passes_against_a_demo() {
    let python = sdk_python();
    let dir = tempfile::tempdir().expect("a temp dir");
    run_logged(
        &format!("{} -m pytest clients/python/tests", python.display()),
        Command::new(&python)
            .args(["-m", "pytest", "clients/python/tests", "-q", "-p", "no:cacheprovider", "--basetemp"])
            .arg(dir.path().join("pytest"))
            .current_dir(workspace())
            .env("CINEDATA_SERVING_BIN", env!("CARGO_BIN_EXE_serving"))
            .env("CINEDATA_ML_SMALL", ml_small())
            .env_remove("CINEDATA_URL")
            .env_remove("CINEDATA_API_KEY"),
        &dir.path().join("pytest.log"),
        PYTEST_DEADLINE,
    );
}

fn get(url: &str) -> Option<Value> {
    let mut response = ureq::get(url).call().ok()?;
    serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()
}

/// Waits until every rating reached the store and the live model and the retrain after the
/// replay is done (as in `serving/tests/demo.rs`).
fn wait_until_ready(address: &str, demo: &mut Group, dir: &Path) {
    // The last answer seen, kept through polls that got none.
    let mut last = String::from("no answer yet");
    testkit::wait_until_blocking("the demo to be ready", READY_DEADLINE, || {
        if let Some(status) = demo.0.try_wait().expect("the demo's status") {
            panic!("the demo exited ({status}):\n{}", log_of(&dir.join("demo.log")));
        }
        if let (Some(model), Some(counts)) = (get(&format!("{address}/model")), get(&format!("{address}/analytics"))) {
            if model["eventsApplied"].as_u64() >= Some(100_836)
                && model["trainingRatings"] == 100_836
                && model["lastRetrain"]["trigger"] == "replay"
                && counts["rating_count"] == 100_836
                && counts["tag_count"] == 3_683
            {
                return Ok(());
            }
            last = format!("{model} {}", counts["rating_count"]);
        }
        Err(last.clone())
    });
}

#[test]
fn the_exploration_notebook_runs_top_to_bottom_against_a_demo() {
    let python = sdk_python();
    let dir = tempfile::tempdir().expect("a temp dir");
    let (mut demo, address) = start_demo(dir.path());
    wait_until_ready(&address, &mut demo, dir.path());

    let out_dir = workspace().join("target/notebooks");
    std::fs::create_dir_all(&out_dir).expect("target/notebooks");
    let html = out_dir.join("exploration.html");
    let _ = std::fs::remove_file(&html);
    // The kernel is the SDK's Python: jupyter starts `python` from PATH.
    let bin = python.parent().expect("python's folder").to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin)
            .chain(std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default()),
    )
    .expect("PATH");
    run_logged(
        "executing notebooks/exploration.ipynb with nbconvert",
        Command::new(&python)
            .args(["-m", "nbconvert", "--execute", "--to", "html", "--template", "offline"])
            .arg(format!("--ExecutePreprocessor.timeout={CELL_TIMEOUT}"))
            .arg("--TemplateExporter.extra_template_basedirs=notebooks/templates")
            .arg("--output-dir")
            .arg(&out_dir)
            .args(["--output", "exploration", "notebooks/exploration.ipynb"])
            .current_dir(workspace())
            .env("CINEDATA_URL", &address)
            .env("PATH", path)
            .env("JUPYTER_PLATFORM_DIRS", "1")
            .env_remove("CINEDATA_API_KEY"),
        &dir.path().join("nbconvert.log"),
        NOTEBOOK_DEADLINE,
    );
    drop(demo);

    let page = std::fs::read_to_string(&html).expect("the rendered notebook");
    // plotly.js itself mentions cdn.plot.ly (the default URL of its map topologies, unused
    // here), so look for what would load something: a script src or a module import.
    for remote in ["src=\"http", "src='http", "import \"http", "cdn.plot.ly/plotly"] {
        assert!(!page.contains(remote), "the rendered notebook loads something from the network: {remote}");
    }
    assert!(page.contains("plotly.js v"), "plotly.js is embedded in the page");
    assert!(page.matches("Plotly.newPlot").count() >= 7, "the page has its seven figures");
    for output in ["Forrest Gump (1994)", "because you liked", "retrain finished: accepted="] {
        assert!(page.contains(output), "the executed outputs are in the page: {output}");
    }
}
