//! `/ui/model`: the model serving answers, its retrain history (metrics on a time axis, each
//! point named by the version it became) and the experiment records (what MLflow's
//! comparison view gives), the A/B experiments' outcomes per variant, with links to the API
//! docs, metrics and Grafana.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use schemas::ab::{ExperimentReport, HOLDOUT};
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
    ab: Vec<AbTable>,
}

/// One A/B experiment's outcomes as the page shows them.
struct AbTable {
    name: String,
    status: &'static str,
    window: String,
    variants: Vec<AbRow>,
    /// Which variant leads with confidence (its interval excludes zero), if any.
    verdict: Option<String>,
}

struct AbRow {
    name: String,
    model: &'static str,
    control: bool,
    leads: bool,
    users: u64,
    impressions: u64,
    hit_impressions: u64,
    hit_users: u64,
    hit_rate: String,
    gain: String,
    difference: String,
    p_value: String,
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{:.1}%", 100.0 * v))
}

/// The page's view of an experiment report.
fn ab_table(report: &ExperimentReport) -> AbTable {
    let mut leader: Option<(&str, f64)> = None;
    let mut control_beats_all = !report.outcomes.is_empty();
    let variants = report
        .outcomes
        .iter()
        .map(|o| {
            let d = o.vs_control;
            if let Some(d) = d {
                if d.low > 0.0 && leader.is_none_or(|(_, best)| d.hit_rate > best) {
                    leader = Some((o.variant.as_str(), d.hit_rate));
                }
                control_beats_all &= d.high < 0.0 || o.variant == HOLDOUT;
            }
            AbRow {
                name: o.variant.clone(),
                model: o.model.as_str(),
                control: o.variant == report.control,
                leads: false,
                users: o.users,
                impressions: o.impressions,
                hit_impressions: o.hit_impressions,
                hit_users: o.hit_users,
                hit_rate: percent(o.hit_rate),
                gain: o.gain.map_or_else(|| "–".into(), |g| format!("{g:.3}")),
                difference: d.map_or_else(
                    || "–".into(),
                    |d| format!("{:+.1} pp [{:+.1}, {:+.1}]", 100.0 * d.hit_rate, 100.0 * d.low, 100.0 * d.high),
                ),
                p_value: d.map_or_else(|| "–".into(), |d| format!("{:.3}", d.p_value)),
            }
        })
        .collect::<Vec<_>>();
    let compared = report.outcomes.iter().filter(|o| o.vs_control.is_some() && o.variant != HOLDOUT).count();
    let winner = match leader {
        Some((name, _)) => Some(name.to_owned()),
        None if control_beats_all && compared > 0 => Some(report.control.clone()),
        None => None,
    };
    let variants = variants.into_iter().map(|mut v| {
        v.leads = winner.as_deref() == Some(v.name.as_str());
        v
    });
    AbTable {
        name: report.name.clone(),
        status: report.status.as_str(),
        window: format!("{}", report.config.window_days),
        variants: variants.collect(),
        verdict: winner.map(|w| format!("{w} leads: its hit rate differs from the others' with 95% confidence.")),
    }
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
    let mut ab = Vec::new();
    for experiment in state.experiments.list().await.or_page(&state)? {
        if let Ok(report) = state.experiments.report(&experiment.name).await {
            ab.push(ab_table(&report));
        }
    }
    let page = ModelPage {
        ab,
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
    fn the_experiment_table_names_a_leader_only_with_confidence() {
        use schemas::ab::{
            Difference, ExperimentConfig, ExperimentStatus, VariantConfig, VariantModel, VariantOutcome,
        };
        let outcome = |variant: &str, hit_rate: f64, vs: Option<(f64, f64)>| VariantOutcome {
            variant: variant.into(),
            model: VariantModel::Served,
            impressions: 10,
            hit_impressions: 4,
            users: 5,
            hit_users: 2,
            hit_rate: Some(hit_rate),
            gain: Some(0.5),
            vs_control: vs.map(|(low, high)| Difference { hit_rate: (low + high) / 2.0, low, high, p_value: 0.01 }),
        };
        let config = ExperimentConfig {
            variants: vec![VariantConfig { name: "a".into(), model: VariantModel::Served, share: 1.0 }],
            control: None,
            holdout: 0.0,
            salt: None,
            window_days: 7.0,
        };
        let mut report = ExperimentReport {
            name: "e".into(),
            status: ExperimentStatus::Running,
            config,
            control: "a".into(),
            history: vec![],
            outcomes: vec![outcome("a", 0.4, None), outcome("b", 0.6, Some((0.05, 0.35)))],
            computed_at: 0,
        };
        let table = ab_table(&report);
        assert!(table.verdict.unwrap().starts_with("b leads"));
        assert!(table.variants[1].leads && !table.variants[0].leads && table.variants[0].control);
        assert_eq!(table.variants[1].hit_rate, "60.0%");
        assert_eq!(table.variants[1].difference, "+20.0 pp [+5.0, +35.0]");
        // An interval across zero: no leader.
        report.outcomes[1].vs_control = Some(Difference { hit_rate: 0.1, low: -0.05, high: 0.25, p_value: 0.2 });
        assert!(ab_table(&report).verdict.is_none());
        // The control ahead of every variant with confidence.
        report.outcomes[1].vs_control = Some(Difference { hit_rate: -0.2, low: -0.3, high: -0.1, p_value: 0.001 });
        assert!(ab_table(&report).verdict.unwrap().starts_with("a leads"));
    }

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
