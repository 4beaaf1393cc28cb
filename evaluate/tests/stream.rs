//! Streaming top-N (`--protocol stream-topn`): end to end on a small release, recorded like the
//! other protocols; and on ml-latest-small (`CINEDATA_ML_SMALL` overrides the folder), where
//! the personal models must beat the popularity list.

mod common;

use std::path::PathBuf;

use common::{evaluate_command, write_release};
use evaluate::ModelName;
use evaluate::stream_topn::{StreamSettings, stream_topn};
use serde_json::Value;

fn metric(report: &Value, key: &str) -> f64 {
    report["metrics"][key].as_f64().unwrap_or_else(|| panic!("{key} missing in {report}"))
}

#[test]
fn stream_topn_runs_end_to_end_and_is_recorded_with_its_windows() {
    let dir = tempfile::tempdir().unwrap();
    write_release(dir.path());
    let db = format!("sqlite://{}", dir.path().join("experiments.db").display());
    let args = ["--protocol", "stream-topn", "--model", "popularity", "--model", "ease", "--model", "online"];
    let out = evaluate_command()
        .arg("--data")
        .arg(dir.path())
        .args(args)
        .args(["--refit-every", "200", "--windows", "4", "--json", "--database-url", &db])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reports: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = reports.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(names, ["popularity", "ease", "online"]);
    for r in &reports {
        assert_eq!(r["protocol"], "stream-topn");
        let (hit, mrr) = (metric(r, "hit_rate@10"), metric(r, "mrr@10"));
        assert!((0.0..=1.0).contains(&hit) && mrr <= hit, "{r}");
        assert_eq!(r["params"]["refit_every"], 200);
        let windows = r["folds"].as_array().unwrap();
        assert_eq!(windows.len(), 4);
        let events: u64 = windows.iter().map(|w| w["events"].as_u64().unwrap()).sum();
        assert_eq!(events, r["metrics"]["scored"].as_u64().unwrap());
    }
    // 960 ratings: refits after 200, 400, 600 and 800 for the batch models, none online.
    assert_eq!(reports[0]["metrics"]["refits"], 4);
    assert_eq!(reports[2]["metrics"]["refits"], 0);
    // The planted taste (users like movies of their parity) is there to be found.
    assert!(metric(&reports[1], "hit_rate@10") > metric(&reports[0], "hit_rate@10"), "{reports:?}");

    let out = evaluate_command()
        .args(["--compare", "--json", "--protocol", "stream-topn", "--database-url", &db])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r["folds"].as_array().is_some_and(|w| w.len() == 4)), "{records:?}");

    // The table prints the windows per model; a refit cadence of 0 is refused.
    let out = evaluate_command()
        .arg("--data")
        .arg(dir.path())
        .args(["--protocol", "stream-topn", "--model", "trending", "--windows", "3", "--no-record"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("| window | from | to | events | HR@10 trending |"), "{table}");
    assert!(table.contains("| window | from | to | events | MRR@10 trending |"), "{table}");
    let out = evaluate_command()
        .arg("--data")
        .arg(dir.path())
        .args(["--protocol", "stream-topn", "--refit-every", "0", "--no-record"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--refit-every"));
}

fn ml_latest_small() -> Vec<movielens::RatingRow> {
    let dir = std::env::var_os("CINEDATA_ML_SMALL")
        .map_or_else(|| PathBuf::from("/work/shared/data/movielens/ml-latest-small"), PathBuf::from);
    evaluate::load_ratings(&dir).unwrap_or_else(|e| panic!("{e}; set CINEDATA_ML_SMALL"))
}

#[test]
fn on_ml_latest_small_the_personal_models_beat_the_popularity_list() {
    let rows = ml_latest_small();
    let settings = StreamSettings::default();
    let run = |m| stream_topn(&rows, m, &settings).unwrap().to_json();
    let [popularity, trending, svd, ease, online] =
        [ModelName::Popularity, ModelName::Trending, ModelName::PureSvd, ModelName::Ease, ModelName::OnlineServing]
            .map(run);
    // Every model is scored on the same events: the likes that are a user's first rating of
    // the movie, cut into ten windows of 4,858.
    for r in [&popularity, &trending, &svd, &ease, &online] {
        assert_eq!(r["metrics"]["scored"], 48_580, "{}", r["model"]);
        let windows = r["folds"].as_array().unwrap();
        assert!(windows.len() == 10 && windows.iter().all(|w| w["events"] == 4_858), "{}", r["model"]);
        let (hit, mrr) = (metric(r, "hit_rate@10"), metric(r, "mrr@10"));
        assert!(hit > 0.02 && hit < 0.5 && mrr > 0.005 && mrr < hit, "{}: {hit} {mrr}", r["model"]);
    }
    // Before the first refit (the first 25,000 ratings) every batch model shows the same
    // cold-start list.
    let first = |r: &Value| r["folds"][0]["hit_rate@10"].as_f64().unwrap();
    assert!([&trending, &svd, &ease].iter().all(|r| first(r) == first(&popularity)));
    let hit = |r: &Value| metric(r, "hit_rate@10");
    assert!(hit(&ease) >= hit(&popularity) + 0.015, "ease {} vs popularity {}", hit(&ease), hit(&popularity));
    assert!(hit(&svd) >= hit(&popularity) + 0.01, "pure-svd {} vs popularity {}", hit(&svd), hit(&popularity));
    assert!(metric(&ease, "mrr@10") > metric(&popularity, "mrr@10"));
    assert!(metric(&online, "personal_share") > 0.9, "the live factors rank for every known user");
}
