//! `GET /model/experiments`: the experiment records (`evaluate` runs and production retrains)
//! as `evaluate --compare` lists them, for the model page's table and for notebooks.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use schemas::{ErrorBody, ExperimentKind, ExperimentRecord};
use serde::Deserialize;
use store::ExperimentQuery;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::state::AppState;

/// Largest `limit`.
pub const MAX_LIMIT: i64 = 1000;

/// The experiments route.
pub fn router() -> Router<AppState> {
    Router::new().route("/model/experiments", get(experiments))
}

/// Filters of `GET /model/experiments`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExperimentFilter {
    /// Only this protocol (`cv`, `prequential`, `topn`, `holdout`, ...).
    #[param(pattern = r"^[^\u0000]*$")]
    pub protocol: Option<String>,
    /// Only this model.
    #[param(pattern = r"^[^\u0000]*$")]
    pub model: Option<String>,
    /// Only `evaluate` runs or only `retrain`s.
    #[param(pattern = r"^[^\u0000]*$")]
    pub kind: Option<String>,
    /// At most this many records, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

impl ExperimentFilter {
    /// The store query, or why the filter is invalid.
    ///
    /// # Errors
    /// An unknown kind, a limit out of range, NUL characters.
    pub fn query(&self) -> ApiResult<ExperimentQuery> {
        let text = |name: &str, v: &Option<String>| -> ApiResult<Option<String>> {
            match v.as_deref().map(str::trim) {
                Some(t) if t.contains('\0') => {
                    Err(ApiError::Invalid(format!("{name} must not contain NUL characters")))
                }
                Some("") | None => Ok(None),
                Some(t) => Ok(Some(t.to_owned())),
            }
        };
        let kind = match text("kind", &self.kind)?.as_deref() {
            None => None,
            Some("evaluate") => Some(ExperimentKind::Evaluate),
            Some("retrain") => Some(ExperimentKind::Retrain),
            Some(other) => {
                return Err(ApiError::Invalid(format!("kind must be \"evaluate\" or \"retrain\", got {other:?}")));
            }
        };
        let limit = self.limit.unwrap_or(100);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::Invalid(format!("limit must be between 1 and {MAX_LIMIT}, got {limit}")));
        }
        Ok(ExperimentQuery {
            protocol: text("protocol", &self.protocol)?,
            model: text("model", &self.model)?,
            kind,
            data_fingerprint: None,
            limit: Some(limit),
        })
    }
}

/// Experiment records, newest first: model, hyper-parameters, protocol, metrics, data
/// snapshot, git revision, timings.
#[utoipa::path(get, path = "/model/experiments", tag = "recommendations", params(ExperimentFilter),
    responses((status = 200, body = [ExperimentRecord]), (status = 422, body = ErrorBody)))]
pub async fn experiments(
    State(state): State<AppState>,
    Query(filter): Query<ExperimentFilter>,
) -> ApiResult<Json<Vec<ExperimentRecord>>> {
    Ok(Json(state.store.experiments(&filter.query()?).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_validated() {
        let ok = ExperimentFilter { kind: Some("retrain".into()), limit: Some(5), ..Default::default() };
        let q = ok.query().unwrap();
        assert_eq!((q.kind, q.limit), (Some(ExperimentKind::Retrain), Some(5)));
        assert!(ExperimentFilter { kind: Some("x".into()), ..Default::default() }.query().is_err());
        assert!(ExperimentFilter { limit: Some(0), ..Default::default() }.query().is_err());
        assert!(ExperimentFilter { model: Some("a\0".into()), ..Default::default() }.query().is_err());
        assert_eq!(
            ExperimentFilter { protocol: Some(" ".into()), ..Default::default() }.query().unwrap().protocol,
            None
        );
    }
}
