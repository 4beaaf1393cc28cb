//! `evaluate` end to end on a small release folder holding only movies.csv and ratings.csv.

mod common;

use std::path::Path;

use common::{evaluate_command, write_release};
use serde_json::Value;

fn evaluate(dir: &Path, args: &[&str]) -> Vec<Value> {
    let out = evaluate_command().arg("--data").arg(dir).args(args).args(["--json", "--no-record"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

fn metric(report: &Value, key: &str) -> f64 {
    report["metrics"][key].as_f64().unwrap_or_else(|| panic!("{key} missing in {report}"))
}

#[test]
fn every_protocol_runs_on_a_release_without_tags_or_links() {
    let dir = tempfile::tempdir().unwrap();
    write_release(dir.path());

    let cv = evaluate(dir.path(), &["--protocol", "cv"]);
    let names: Vec<&str> = cv.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(names, ["global-mean", "baseline", "mf", "knn-baseline", "blend", "pure-svd", "popularity"]);
    for r in &cv {
        assert_eq!(r["protocol"], "cv");
        assert_eq!(r["folds"].as_array().unwrap().len(), 5);
        assert!(r["metrics"]["ndcg@10"].is_null());
    }
    assert!(metric(&cv[2], "rmse") < metric(&cv[0], "rmse"), "mf beats the global mean");

    let online = evaluate(dir.path(), &["--protocol", "prequential"]);
    let names: Vec<&str> = online.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(names, ["global-mean", "online", "online-river", "online-serving"]);
    assert!(metric(&online[1], "ratings_per_second") > 0.0);

    let topn = evaluate(dir.path(), &["--protocol", "topn", "--model", "popularity", "--model", "pure-svd"]);
    assert_eq!(topn.len(), 2);
    for r in &topn {
        for key in ["precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10", "coverage"] {
            let v = metric(r, key);
            assert!((0.0..=1.0).contains(&v), "{key} = {v}");
        }
    }
}

#[test]
fn a_split_file_that_does_not_match_the_ratings_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write_release(dir.path());
    let folds = dir.path().join("folds.csv");
    std::fs::write(&folds, "userId,movieId,fold\n1,2,1\n").unwrap();
    let out = evaluate_command()
        .arg("--no-record")
        .arg("--data")
        .arg(dir.path())
        .args(["--protocol", "cv", "--folds"])
        .arg(&folds)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("folds.csv:2"));
}
