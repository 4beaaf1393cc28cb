//! `/ui/model`: the model serving answers, its retrain history (metrics on a time axis, each
//! point named by the version it became) and the experiment records (what MLflow's
//! comparison view gives), with links to the API docs, metrics and Grafana.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use schemas::recommend::ModelInfo;
use schemas::{ExperimentKind, ExperimentRecord};
use store::ExperimentQuery;

use super::{Layout, OrPage, PageResult, Series, TimeChart, date_time, json_script};
use crate::state::AppState;

/// Records listed in the table.
const RECORDS: i64 = 200;
/// The metrics shown as columns, in order, when a record has them.
const METRICS: [&str; 5] = ["rmse", "mae", "ndcg@10", "precision@10", "coverage"];

struct Cell {
    text: String,
    /// Sort key: numbers sort numerically, empty cells last.
    key: String,
}

struct RecordRow {
    cells: Vec<Cell>,
}

#[derive(Template, WebTemplate)]
#[template(path = "model.html")]
struct ModelPage {
    layout: Layout,
    info: ModelInfo,
    trained_at: String,
    holdout: Option<(String, String, u64)>,
    last_retrain: Option<(String, String, String)>,
    history: String,
    has_history: bool,
    columns: Vec<&'static str>,
    records: Vec<RecordRow>,
}

fn metric(record: &ExperimentRecord, name: &str) -> Option<f64> {
    record.metrics.get(name).and_then(serde_json::Value::as_f64)
}

fn number(value: Option<f64>, digits: usize) -> Cell {
    match value {
        Some(v) => Cell { text: format!("{v:.digits$}"), key: format!("{v}") },
        None => Cell { text: "–".into(), key: String::new() },
    }
}

fn text(value: String) -> Cell {
    Cell { key: value.clone(), text: value }
}

/// A retrain's tooltip title: the model version it became (records from before versions were
/// recorded have none; `null` means the candidate was kept out) and when.
fn retrain_label(record: &ExperimentRecord) -> String {
    let when = format!("{} UTC", date_time(record.created_at));
    let version = record.params.get("version");
    match version.and_then(serde_json::Value::as_u64) {
        Some(v) => format!("Version {v}, {when}"),
        None if version.is_some_and(serde_json::Value::is_null) => format!("Kept out, {when}"),
        None => when,
    }
}

/// `GET /ui/model`.
pub async fn page(State(state): State<AppState>) -> PageResult<Response> {
    let info = state.live.info();
    let query = ExperimentQuery { limit: Some(RECORDS), ..ExperimentQuery::default() };
    let records = state.store.experiments(&query).await.or_page(&state)?;
    let mut retrains: Vec<&ExperimentRecord> = records.iter().filter(|r| r.kind == ExperimentKind::Retrain).collect();
    retrains.sort_by_key(|r| (r.created_at, r.id));
    let history = TimeChart {
        kind: "time",
        times: retrains.iter().map(|r| r.created_at.saturating_mul(1000)).collect(),
        labels: retrains.iter().map(|r| retrain_label(r)).collect(),
        series: ["rmse", "mae"]
            .iter()
            .map(|m| Series {
                name: m.to_uppercase(),
                data: retrains.iter().map(|r| metric(r, m).map(|v| (v * 1e4).round() / 1e4)).collect(),
            })
            .collect(),
        y_name: "holdout error (stars)".into(),
    };
    let mut columns = vec!["When", "Kind", "Protocol", "Model", "Ratings"];
    columns.extend(METRICS);
    columns.extend(["Fit s", "Git revision"]);
    let rows = records
        .iter()
        .map(|r| {
            let mut cells = vec![
                Cell { text: date_time(r.created_at), key: r.created_at.to_string() },
                text(r.kind.to_string()),
                text(r.protocol.clone()),
                text(r.model.clone()),
                Cell { text: super::thousands(r.data.ratings as i64), key: r.data.ratings.to_string() },
            ];
            cells.extend(METRICS.iter().map(|m| number(metric(r, m), 4)));
            cells.push(number(Some(r.fit_seconds), 2));
            cells.push(text(r.git_revision.chars().take(12).collect()));
            RecordRow { cells }
        })
        .collect();
    let page = ModelPage {
        layout: Layout::new(&state, "Model", "model"),
        trained_at: info.trained_at.map(date_time).unwrap_or_else(|| "not yet".into()),
        holdout: info.holdout.as_ref().map(|h| (format!("{:.4}", h.rmse), format!("{:.4}", h.mae), h.ratings)),
        last_retrain: info.last_retrain.as_ref().map(|r| {
            let outcome = if r.accepted {
                "accepted".to_owned()
            } else {
                format!("kept out: {}", r.reason.clone().unwrap_or_default())
            };
            (date_time(r.finished_at), r.trigger.clone(), outcome)
        }),
        has_history: !retrains.is_empty(),
        history: json_script(&history),
        columns,
        records: rows,
        info,
    };
    Ok(page.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrains_are_named_by_the_version_they_became() {
        let mut record = ExperimentRecord::new(ExperimentKind::Retrain, "holdout", "online", "0");
        record.created_at = 1_700_000_000;
        assert_eq!(retrain_label(&record), "2023-11-14 22:13 UTC", "an older record without a version");
        record.params = serde_json::json!({"version": 3});
        assert_eq!(retrain_label(&record), "Version 3, 2023-11-14 22:13 UTC");
        record.params = serde_json::json!({"version": null});
        assert_eq!(retrain_label(&record), "Kept out, 2023-11-14 22:13 UTC");
    }
}
