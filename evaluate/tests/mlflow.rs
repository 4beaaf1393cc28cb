//! `evaluate --mlflow-uri` against a real MLflow tracking server (PyPI's `mlflow`, started
//! here as `mlflow server` on a free port with a SQLite backend in a temp dir): each result
//! becomes a finished run whose params, metrics and tags are read back over the REST API.
//!
//! The server comes from `CINEDATA_MLFLOW` (the `mlflow` executable), else `mlflow` on `PATH`,
//! else the workspace's `.venv-tools/mlflow/bin/mlflow`; `scripts/test.sh` installs it there.
//! Without one the test fails with that advice; with one that cannot serve, it fails too.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{evaluate_command, write_release};
use serde_json::{Value, json};

/// The server is given this long to answer `/health` (its first start migrates its database).
const STARTUP: Duration = Duration::from_secs(180);

fn find_mlflow() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CINEDATA_MLFLOW") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join("mlflow")).collect::<Vec<_>>())
        .unwrap_or_default();
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-tools/mlflow/bin/mlflow");
    on_path.into_iter().chain(std::iter::once(venv)).find(|p| p.is_file())
}

/// A running `mlflow server`, stopped with its whole process group on drop.
struct MlflowServer {
    child: Child,
    url: String,
    log: PathBuf,
}

impl MlflowServer {
    fn start(binary: &Path, dir: &Path) -> Self {
        use std::os::unix::process::CommandExt as _;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join("mlflow.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .args(["server", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--default-artifact-root")
            .arg(dir.join("artifacts"))
            .current_dir(dir)
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .env("DO_NOT_TRACK", "true")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            // Its own process group, so the workers it forks stop with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} server: {e}", binary.display()));
        let mut server = Self { child, url: format!("http://127.0.0.1:{port}"), log };
        server.wait_until_healthy();
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_until_healthy(&mut self) {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into();
        let (child, url) = (&mut self.child, &self.url);
        let log = || std::fs::read_to_string(&self.log).unwrap_or_default();
        testkit::wait_until_blocking("the mlflow server to answer /health", STARTUP, || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("mlflow server exited ({status}) before answering:\n{}", log());
            }
            match agent.get(format!("{url}/health")).call() {
                Ok(_) => Ok(()),
                Err(e) => Err(format!("{e}; its log:\n{}", log())),
            }
        });
    }

    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Value {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut request = agent.get(format!("{}/api/2.0/mlflow/{endpoint}", self.url));
        for (k, v) in query {
            request = request.query(*k, *v);
        }
        let mut response = request.call().unwrap();
        let body = response.body_mut().read_to_string().unwrap();
        assert_eq!(response.status().as_u16(), 200, "{endpoint}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn post(&self, endpoint: &str, body: &Value) -> Value {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut response = agent
            .post(format!("{}/api/2.0/mlflow/{endpoint}", self.url))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
        let text = response.body_mut().read_to_string().unwrap();
        assert_eq!(response.status().as_u16(), 200, "{endpoint}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Every run of the experiment called `name`, by model.
    fn runs(&self, name: &str) -> Vec<Value> {
        let experiment = self.get("experiments/get-by-name", &[("experiment_name", name)]);
        let id = experiment["experiment"]["experiment_id"].as_str().unwrap().to_owned();
        let found = self.post("runs/search", &json!({"experiment_ids": [id], "max_results": 100}));
        found["runs"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        // Up to 10 s to exit on SIGTERM, then SIGKILL.
        let _ = testkit::poll_until_blocking(Duration::from_secs(10), || match self.child.try_wait() {
            Ok(Some(status)) => Ok(status),
            other => Err(format!("{other:?}")),
        });
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// `[{key, value}]` as a map.
fn pairs(list: &Value) -> serde_json::Map<String, Value> {
    list.as_array()
        .map(|items| items.iter().map(|p| (p["key"].as_str().unwrap().to_owned(), p["value"].clone())).collect())
        .unwrap_or_default()
}

fn run_of<'a>(runs: &'a [Value], model: &str) -> &'a Value {
    runs.iter()
        .find(|r| pairs(&r["data"]["params"]).get("model") == Some(&json!(model)))
        .unwrap_or_else(|| panic!("no run of {model} in {runs:#?}"))
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() <= 1e-12 * b.abs().max(1.0))
}

#[test]
fn evaluate_logs_each_result_as_a_finished_mlflow_run() {
    let Some(binary) = find_mlflow() else {
        panic!(
            "mlflow not found: set CINEDATA_MLFLOW to the `mlflow` executable, put it on PATH, or run \
             scripts/test.sh, which installs the pinned version into .venv-tools/mlflow/"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("release");
    std::fs::create_dir(&data).unwrap();
    write_release(&data);
    let server = MlflowServer::start(&binary, dir.path());
    let db = format!("sqlite://{}", dir.path().join("experiments.db").display());

    let evaluate = |args: &[&str]| -> Vec<Value> {
        let out = evaluate_command()
            .arg("--data")
            .arg(&data)
            .args(args)
            .args(["--json", "--database-url", &db, "--mlflow-uri", &server.url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}\nserver log:\n{}", String::from_utf8_lossy(&out.stderr), server.log());
        assert!(String::from_utf8_lossy(&out.stderr).contains("MLflow: "));
        serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
    };
    let cv = evaluate(&["--protocol", "cv", "--model", "global-mean", "--model", "mf"]);
    let topn = evaluate(&["--protocol", "topn", "--model", "popularity"]);
    let out = evaluate_command().args(["--compare", "--json", "--database-url", &db]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let record_of = |model: &str| records.iter().find(|r| r["model"] == model).unwrap();

    let runs = server.runs("cinedata-cv");
    assert_eq!(runs.len(), 2, "{runs:#?}");
    for report in &cv {
        let model = report["model"].as_str().unwrap();
        let run = run_of(&runs, model);
        let record = record_of(model);
        assert_eq!(run["info"]["status"], "FINISHED");
        assert_eq!(run["info"]["run_name"], format!("{model} cv"));

        let params = pairs(&run["data"]["params"]);
        assert_eq!(params["protocol"], "cv");
        assert_eq!(params["kind"], "evaluate");
        assert_eq!(params["data.ratings"], common::RATINGS.to_string());
        for (key, value) in report["params"].as_object().unwrap() {
            let expected = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            assert_eq!(params[key], expected, "param {key}");
        }

        let metrics = pairs(&run["data"]["metrics"]);
        for key in ["rmse", "mae", "rmse_std", "fit_seconds", "predict_seconds"] {
            let expected = report["metrics"].get(key).unwrap_or(&report[key]).as_f64().unwrap();
            assert!(close(&metrics[key], expected), "metric {key}: {} vs {expected}", metrics[key]);
        }
        assert!(!metrics.contains_key("ndcg_at_10"), "cv measures no ranking: {metrics:?}");

        let tags = pairs(&run["data"]["tags"]);
        let revision = record["git_revision"].as_str().unwrap();
        assert_eq!(tags["cinedata.git_revision"], revision);
        let commit = revision.strip_suffix("-dirty").unwrap_or(revision);
        if commit.len() == 40 {
            assert_eq!(tags["mlflow.source.git.commit"], commit);
        }
        assert_eq!(tags["cinedata.data_fingerprint"], record["data"]["fingerprint"]);
        assert_eq!(tags["cinedata.experiment_id"], record["id"].to_string());
        assert_eq!(tags["cinedata.kind"], "evaluate");

        // Each fold's numbers are one metric history, stepped by fold.
        let run_id = run["info"]["run_id"].as_str().unwrap();
        let history = server.get("metrics/get-history", &[("run_id", run_id), ("metric_key", "fold/rmse")]);
        let mut steps: Vec<(i64, f64)> = history["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["step"].as_i64().unwrap_or(0), m["value"].as_f64().unwrap()))
            .collect();
        steps.sort_by_key(|s| s.0);
        let folds: Vec<(i64, f64)> = report["folds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["fold"].as_i64().unwrap(), f["rmse"].as_f64().unwrap()))
            .collect();
        assert_eq!(steps.len(), 5);
        for (got, want) in steps.iter().zip(&folds) {
            assert_eq!(got.0, want.0);
            assert!(close(&json!(got.1), want.1));
        }
    }

    // '@' is not allowed in MLflow names: ndcg@10 arrives as ndcg_at_10.
    let runs = server.runs("cinedata-topn");
    assert_eq!(runs.len(), 1);
    let metrics = pairs(&run_of(&runs, "popularity")["data"]["metrics"]);
    for (ours, theirs) in [("ndcg@10", "ndcg_at_10"), ("precision@10", "precision_at_10"), ("coverage", "coverage")] {
        let expected = topn[0]["metrics"][ours].as_f64().unwrap();
        assert!(close(&metrics[theirs], expected), "{theirs}: {} vs {expected}", metrics[theirs]);
    }
    let tags = pairs(&run_of(&runs, "popularity")["data"]["tags"]);
    assert_eq!(tags["cinedata.metric.level"], "test");

    // --mlflow-experiment names the experiment; a second run lands in the existing one.
    for _ in 0..2 {
        evaluate(&["--protocol", "prequential", "--model", "global-mean", "--mlflow-experiment", "cinedata-tests"]);
    }
    assert_eq!(server.runs("cinedata-tests").len(), 2);
}
