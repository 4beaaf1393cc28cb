//! Experiment records on SQLite and PostgreSQL: a record reads back as written, newest first,
//! filtered by protocol, model, kind and data fingerprint, limited.
//!
//! Each test body is `async fn name(db: &TestDb)`; `testkit::backend_tests!` runs it as
//! `name::sqlite` and `name::postgres` on a fresh database (`TestDb::new`).

use schemas::{DataSnapshot, ExperimentKind, ExperimentRecord};
use serde_json::json;
use store::ExperimentQuery;

mod common;

use common::TestDb;
use testkit::backend_tests;

backend_tests!(
    TestDb::new =>
    a_record_reads_back_as_written,
    records_are_listed_newest_first_and_filtered,
    an_empty_store_has_no_records,
);

fn record(kind: ExperimentKind, protocol: &str, model: &str, created_at: i64) -> ExperimentRecord {
    ExperimentRecord {
        id: None,
        kind,
        protocol: protocol.to_owned(),
        model: model.to_owned(),
        params: json!({"factors": 64, "lr": 0.007, "centring": "Global", "schedule": {"decay": 0.95}}),
        data: DataSnapshot {
            path: "/data/ml-latest-small".to_owned(),
            fingerprint: "0123456789abcdef0123456789abcdef".to_owned(),
            ratings: 100_836,
            users: 610,
            movies: 9724,
        },
        metrics: json!({"rmse": 0.8712345678901234, "mae": 0.67, "ndcg@10": null, "level": "test"}),
        folds: vec![json!({"fold": 1, "rmse": 0.87, "fit_seconds": 0.25}), json!({"fold": 2, "rmse": 0.88})],
        fit_seconds: 0.125,
        predict_seconds: 1e-3,
        git_revision: "0123456789abcdef0123456789abcdef01234567-dirty".to_owned(),
        host: "ünïcode-host".to_owned(),
        started_at: created_at - 7,
        created_at,
    }
}

async fn a_record_reads_back_as_written(db: &TestDb) {
    let written = record(ExperimentKind::Retrain, "holdout", "online", 1_800_000_000);
    let id = db.store.record_experiment(&written).await.expect("recorded");
    let read = db.store.experiments(&ExperimentQuery::default()).await.expect("listed");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0], ExperimentRecord { id: Some(id), ..written.clone() });

    // The id a record carries is ignored: the store assigns the next one.
    let second = db.store.record_experiment(&ExperimentRecord { id: Some(id), ..written }).await.expect("recorded");
    assert!(second > id);
}

async fn records_are_listed_newest_first_and_filtered(db: &TestDb) {
    let rows = [
        record(ExperimentKind::Evaluate, "cv", "mf", 100),
        record(ExperimentKind::Evaluate, "cv", "baseline", 300),
        record(ExperimentKind::Evaluate, "topn", "pure-svd", 200),
        record(ExperimentKind::Retrain, "holdout", "mf", 300),
        ExperimentRecord {
            data: DataSnapshot { fingerprint: "ffff".to_owned(), ..DataSnapshot::default() },
            ..record(ExperimentKind::Evaluate, "cv", "mf", 50)
        },
    ];
    let mut ids = Vec::new();
    for r in &rows {
        ids.push(db.store.record_experiment(r).await.expect("recorded"));
    }
    let list = |query: ExperimentQuery| async move {
        let found = db.store.experiments(&query).await.expect("listed");
        found.iter().map(|r| (r.protocol.clone(), r.model.clone(), r.created_at)).collect::<Vec<_>>()
    };
    let key = |p: &str, m: &str, t: i64| (p.to_owned(), m.to_owned(), t);

    // Newest first; equal times by id, the later written first.
    assert_eq!(
        list(ExperimentQuery::default()).await,
        [
            key("holdout", "mf", 300),
            key("cv", "baseline", 300),
            key("topn", "pure-svd", 200),
            key("cv", "mf", 100),
            key("cv", "mf", 50)
        ]
    );
    let cv = ExperimentQuery { protocol: Some("cv".to_owned()), ..ExperimentQuery::default() };
    assert_eq!(list(cv.clone()).await, [key("cv", "baseline", 300), key("cv", "mf", 100), key("cv", "mf", 50)]);
    let mf = ExperimentQuery { model: Some("mf".to_owned()), ..ExperimentQuery::default() };
    assert_eq!(list(mf.clone()).await, [key("holdout", "mf", 300), key("cv", "mf", 100), key("cv", "mf", 50)]);
    let cv_mf = ExperimentQuery { model: Some("mf".to_owned()), ..cv.clone() };
    assert_eq!(list(cv_mf).await, [key("cv", "mf", 100), key("cv", "mf", 50)]);
    let retrains = ExperimentQuery { kind: Some(ExperimentKind::Retrain), ..ExperimentQuery::default() };
    assert_eq!(list(retrains).await, [key("holdout", "mf", 300)]);
    let other_data = ExperimentQuery { data_fingerprint: Some("ffff".to_owned()), ..ExperimentQuery::default() };
    assert_eq!(list(other_data).await, [key("cv", "mf", 50)]);
    assert_eq!(list(ExperimentQuery { limit: Some(2), ..mf }).await, [key("holdout", "mf", 300), key("cv", "mf", 100)]);
    assert!(list(ExperimentQuery { limit: Some(0), ..cv }).await.is_empty());
    let none = ExperimentQuery { protocol: Some("prequential".to_owned()), ..ExperimentQuery::default() };
    assert!(list(none).await.is_empty());
}

async fn an_empty_store_has_no_records(db: &TestDb) {
    assert!(db.store.experiments(&ExperimentQuery::default()).await.expect("listed").is_empty());
}
