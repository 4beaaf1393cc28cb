//! Experiment records end to end: `evaluate` records one row per model in the store it is
//! given, and `evaluate --compare` lists them newest first, filtered, as a table or JSON.

mod common;

use std::path::Path;

use common::{RATINGS, evaluate_command, write_release, write_release_shifted};
use serde_json::Value;

fn run(args: &[&str]) -> std::process::Output {
    evaluate_command().args(args).output().unwrap()
}

fn ok_json(args: &[&str]) -> Vec<Value> {
    let out = run(args);
    assert!(out.status.success(), "evaluate {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("experiments.db").display())
}

/// A temp dir holding the test release: the dir, its path, and the URL of an experiments
/// database in it (not created yet).
fn temp_release() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    write_release(dir.path());
    let data = dir.path().to_str().unwrap().to_owned();
    let db = sqlite_url(dir.path());
    (dir, data, db)
}

/// `evaluate --compare --json --database-url DB ARGS...`: the records, newest first.
fn compare(db: &str, args: &[&str]) -> Vec<Value> {
    ok_json(&[&["--compare", "--json", "--database-url", db][..], args].concat())
}

#[test]
fn evaluate_records_each_model_and_compare_lists_them_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("release");
    std::fs::create_dir(&data).unwrap();
    write_release(&data);
    let data = data.to_str().unwrap();
    let db = sqlite_url(dir.path());

    let out = run(&[
        "--data",
        data,
        "--protocol",
        "cv",
        "--model",
        "global-mean",
        "--model",
        "baseline",
        "--json",
        "--database-url",
        &db,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("recorded experiments 1, 2"));
    let cv: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let topn =
        ok_json(&["--data", data, "--protocol", "topn", "--model", "popularity", "--json", "--database-url", &db]);

    // --compare needs neither --data nor --protocol.
    let all = compare(&db, &[]);
    let models: Vec<&str> = all.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["popularity", "baseline", "global-mean"], "newest first");
    let ids: Vec<i64> = all.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [3, 2, 1]);

    // A record is the --json object plus where and on what it ran.
    let baseline = &all[1];
    for key in ["protocol", "model", "params", "metrics", "folds", "fit_seconds", "predict_seconds"] {
        assert_eq!(baseline[key], cv[1][key], "{key}");
    }
    assert_eq!(all[0]["metrics"], topn[0]["metrics"]);
    assert_eq!(baseline["kind"], "evaluate");
    assert_eq!(baseline["folds"].as_array().unwrap().len(), 5);
    let snapshot = &baseline["data"];
    assert_eq!(snapshot["ratings"], RATINGS);
    assert_eq!((snapshot["users"].as_u64(), snapshot["movies"].as_u64()), (Some(40), Some(30)));
    let canonical = std::fs::canonicalize(data).unwrap();
    assert_eq!(snapshot["path"], canonical.to_str().unwrap());
    let fingerprint = snapshot["fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 32);
    assert!(all.iter().all(|r| r["data"]["fingerprint"] == fingerprint), "reruns on the same data share it");
    let revision = baseline["git_revision"].as_str().unwrap();
    let head = std::process::Command::new("git").args(["rev-parse", "HEAD"]).output().unwrap();
    if head.status.success() {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        assert!(revision == head || revision == format!("{head}-dirty"), "{revision} vs HEAD {head}");
    }
    assert!(!baseline["host"].as_str().unwrap().is_empty());
    let (started, created) = (baseline["started_at"].as_i64().unwrap(), baseline["created_at"].as_i64().unwrap());
    assert!(started > 1_600_000_000 && started <= created, "{started} {created}");

    // Filters.
    let models_of = |args: &[&str]| -> Vec<String> {
        compare(&db, args).iter().map(|r| r["model"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(models_of(&["--protocol", "cv"]), ["baseline", "global-mean"]);
    assert_eq!(models_of(&["--model", "global-mean"]), ["global-mean"]);
    assert_eq!(models_of(&["--model", "no-such-model"]), Vec::<String>::new());
    assert_eq!(models_of(&["--limit", "1"]), ["popularity"]);
    assert_eq!(models_of(&["--data", data]), ["popularity", "baseline", "global-mean"]);
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    write_release_shifted(&other, 5);
    assert_eq!(models_of(&["--data", other.to_str().unwrap()]), Vec::<String>::new(), "other ratings, other data");

    // The table.
    let out = run(&["--compare", "--database-url", &db]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2 + 3, "{table}");
    assert!(
        lines[0].contains("| when (UTC) | git revision |")
            && lines[0].contains("| RMSE | MAE | NDCG@10 | coverage | fit s |")
    );
    assert!(lines[2].starts_with("| 3 | ") && lines[2].contains("| topn | popularity | "), "{table}");
    let rmse = format!("{:.4}", cv[0]["metrics"]["rmse"].as_f64().unwrap());
    assert!(lines[4].contains("| cv | global-mean | ") && lines[4].contains(&rmse), "{table}");
    assert!(lines[4].contains(&fingerprint[..8]));
}

#[test]
fn no_record_leaves_the_store_alone() {
    let (dir, data, db) = temp_release();
    ok_json(&[
        "--data",
        &data,
        "--protocol",
        "prequential",
        "--model",
        "global-mean",
        "--json",
        "--no-record",
        "--database-url",
        &db,
    ]);
    assert!(!dir.path().join("experiments.db").exists());
    assert!(compare(&db, &[]).is_empty());
}

#[test]
fn the_database_url_comes_from_the_environment() {
    let (_dir, data, db) = temp_release();
    let out = evaluate_command()
        .env("CINEDATA_DATABASE_URL", &db)
        .args(["--data", &data, "--protocol", "prequential", "--model", "global-mean"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let recorded = compare(&db, &[]);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["protocol"], "prequential");
}

#[test]
fn an_unreachable_mlflow_server_fails_the_run() {
    let (_dir, data, _) = temp_release();
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let uri = format!("http://127.0.0.1:{port}");
    let out = evaluate_command()
        .args(["--data", &data, "--protocol", "prequential", "--model", "global-mean", "--no-record"])
        .args(["--mlflow-uri", &uri])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MLflow"), "{stderr}");
    assert!(out.stdout.starts_with(b"| model |"), "the results are printed before recording");

    let out = evaluate_command()
        .args(["--data", &data, "--protocol", "prequential", "--no-record", "--mlflow-uri", "file:///tmp/mlruns"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only http:// and https://"));
}

#[test]
fn compare_rejects_run_only_flags_and_run_rejects_unknown_models() {
    let out = run(&["--compare", "--no-record"]);
    assert!(!out.status.success());
    let out = run(&["--compare", "--model", "a", "--model", "b"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most one --model"));
    let out = run(&["--data", ".", "--protocol", "cv", "--model", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model \"nope\""));
    let out = run(&["--protocol", "cv"]);
    assert!(!out.status.success(), "--data is required without --compare");
}
