//! A minimal blocking MLflow tracking client over the REST API (`/api/2.0/mlflow/...`): one
//! [`ExperimentRecord`] becomes one finished MLflow run.
//!
//! - The MLflow experiment is found by name (`experiments/get-by-name`) or created
//!   (`experiments/create`); [`experiment_name`] gives the default, `cinedata-<protocol>`.
//! - `runs/create` with the tags, `runs/log-batch` (in chunks within MLflow's limits: 100
//!   params, 100 tags, 1000 metrics, 1000 entities per request) with the params and metrics,
//!   then `runs/update` to `FINISHED` (or `FAILED` if logging failed). Tags go with
//!   `runs/create`.
//! - Params: the record's `params` flattened (`a.b` for nested objects; strings as they are,
//!   everything else as JSON), plus `model`, `protocol`, `kind` and the data counts. Values
//!   longer than [`MAX_PARAM_VALUE`] are cut.
//! - Metrics: every numeric metric, `fit_seconds`, `predict_seconds`, and each fold's numbers as
//!   `fold/<name>` at step = fold number. MLflow allows only alphanumerics, `_ - . /`, spaces
//!   (and `:` off Windows) in names, so [`metric_key`] maps `@` to `_at_` (as MLflow's own
//!   loggers do: `ndcg@10` → `ndcg_at_10`) and anything else to `_`. Non-finite values are left out (JSON
//!   cannot carry them).
//! - Tags: `mlflow.runName`, `mlflow.source.name`, `mlflow.source.git.commit` (the commit without
//!   `-dirty`), and `cinedata.*`: the full git revision, kind, data path and fingerprint, host,
//!   the store id of the record when it has one, and non-numeric metrics.
//!
//! `MLFLOW_TRACKING_TOKEN` (bearer) or `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`
//! (basic) are sent when set, as MLflow's own clients do.

use std::time::Duration;

use schemas::ExperimentRecord;
use serde_json::{Value, json};

/// Longest param value sent; longer ones are cut (MLflow 2.x/3.x accept 6000 characters).
pub const MAX_PARAM_VALUE: usize = 6000;
/// Longest tag value sent; longer ones are cut (MLflow accepts 8000 characters).
pub const MAX_TAG_VALUE: usize = 8000;
/// Longest param, metric or tag key MLflow accepts.
pub const MAX_KEY: usize = 250;

const MAX_PARAMS_PER_BATCH: usize = 100;
const MAX_METRICS_PER_BATCH: usize = 1000;
const MAX_ENTITIES_PER_BATCH: usize = 1000;

/// Why talking to MLflow failed.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// The tracking URI is not an `http://` or `https://` URL.
    #[error("MLflow tracking URI {0:?}: only http:// and https:// servers are supported")]
    Uri(String),
    /// The request did not get a response.
    #[error("MLflow {endpoint}: {source}")]
    Http {
        /// The API path, e.g. `runs/create`.
        endpoint: String,
        /// The transport error.
        source: Box<ureq::Error>,
    },
    /// The server answered with an error.
    #[error("MLflow {endpoint}: HTTP {status}: {body}")]
    Api {
        /// The API path.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// MLflow's `error_code` (e.g. `RESOURCE_DOES_NOT_EXIST`), if the body had one.
        error_code: Option<String>,
        /// The response body.
        body: String,
    },
    /// A success response without the expected field.
    #[error("MLflow {endpoint}: unexpected response {body}")]
    Response {
        /// The API path.
        endpoint: String,
        /// The response body.
        body: String,
    },
}

impl MlflowError {
    fn error_code(&self) -> Option<&str> {
        match self {
            MlflowError::Api { error_code, .. } => error_code.as_deref(),
            _ => None,
        }
    }
}

/// A blocking client for one MLflow tracking server.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    base: String,
    agent: ureq::Agent,
    authorization: Option<String>,
}

/// The default MLflow experiment of a record: `cinedata-<protocol>`.
pub fn experiment_name(record: &ExperimentRecord) -> String {
    format!("cinedata-{}", record.protocol)
}

/// A name MLflow accepts for a param, metric or tag: `@` → `_at_`, any character outside ASCII
/// alphanumerics, `_ - . /` and space → `_` (colons too: Windows servers refuse them), at most
/// [`MAX_KEY`] characters, never empty.
pub fn metric_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '@' => out.push_str("_at_"),
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ') => out.push(c),
            _ => out.push('_'),
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    truncate(out, MAX_KEY)
}

fn truncate(mut s: String, max_chars: usize) -> String {
    if let Some((cut, _)) = s.char_indices().nth(max_chars) {
        s.truncate(cut);
    }
    s
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if prefix.is_empty() || !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        Value::Null => {}
        // A bare value where an object of params belongs.
        _ if prefix.is_empty() => flatten("params", value, out),
        Value::String(s) => out.push((metric_key(prefix), truncate(s.clone(), MAX_PARAM_VALUE))),
        other => out.push((metric_key(prefix), truncate(other.to_string(), MAX_PARAM_VALUE))),
    }
}

/// The params of a record's run, in order, keys unique.
pub fn params(record: &ExperimentRecord) -> Vec<(String, String)> {
    let mut out = vec![
        ("model".to_owned(), record.model.clone()),
        ("protocol".to_owned(), record.protocol.clone()),
        ("kind".to_owned(), record.kind.as_str().to_owned()),
        ("data.ratings".to_owned(), record.data.ratings.to_string()),
        ("data.users".to_owned(), record.data.users.to_string()),
        ("data.movies".to_owned(), record.data.movies.to_string()),
    ];
    let mut model_params = Vec::new();
    flatten("", &record.params, &mut model_params);
    for (k, v) in model_params {
        if !out.iter().any(|(existing, _)| *existing == k) {
            out.push((k, v));
        }
    }
    out
}

/// The metrics of a record's run as `(key, value, step)`.
pub fn metrics(record: &ExperimentRecord) -> Vec<(String, f64, i64)> {
    let mut out = Vec::new();
    if let Some(map) = record.metrics.as_object() {
        for (k, v) in map {
            if let Some(x) = v.as_f64().filter(|x| x.is_finite()) {
                out.push((metric_key(k), x, 0));
            }
        }
    }
    for (k, x) in [("fit_seconds", record.fit_seconds), ("predict_seconds", record.predict_seconds)] {
        if x.is_finite() {
            out.push((k.to_owned(), x, 0));
        }
    }
    for (i, fold) in record.folds.iter().enumerate() {
        let step = fold.get("fold").and_then(Value::as_i64).unwrap_or(i as i64 + 1);
        if let Some(map) = fold.as_object() {
            for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "fold") {
                if let Some(x) = v.as_f64().filter(|x| x.is_finite()) {
                    out.push((metric_key(&format!("fold/{k}")), x, step));
                }
            }
        }
    }
    out
}

/// The tags of a record's run (`store_id`: the record's id in the store, if recorded).
pub fn tags(record: &ExperimentRecord) -> Vec<(String, String)> {
    let commit = record.git_revision.strip_suffix("-dirty").unwrap_or(&record.git_revision);
    let mut out = vec![
        ("mlflow.runName".to_owned(), format!("{} {}", record.model, record.protocol)),
        ("mlflow.source.name".to_owned(), format!("cinedata {}", record.kind)),
        ("mlflow.source.type".to_owned(), "LOCAL".to_owned()),
        ("cinedata.kind".to_owned(), record.kind.as_str().to_owned()),
        ("cinedata.git_revision".to_owned(), record.git_revision.clone()),
        ("cinedata.data_path".to_owned(), record.data.path.clone()),
        ("cinedata.data_fingerprint".to_owned(), record.data.fingerprint.clone()),
        ("cinedata.host".to_owned(), record.host.clone()),
    ];
    if commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        out.push(("mlflow.source.git.commit".to_owned(), commit.to_owned()));
    }
    if let Some(id) = record.id {
        out.push(("cinedata.experiment_id".to_owned(), id.to_string()));
    }
    if let Some(map) = record.metrics.as_object() {
        for (k, v) in map {
            if let Value::String(s) = v {
                out.push((metric_key(&format!("cinedata.metric.{k}")), s.clone()));
            }
        }
    }
    out.into_iter().map(|(k, v)| (k, truncate(v, MAX_TAG_VALUE))).collect()
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl MlflowClient {
    /// A client for the tracking server at `uri` (e.g. `http://127.0.0.1:5000`; a path prefix is
    /// kept). Credentials come from `MLFLOW_TRACKING_TOKEN` or `MLFLOW_TRACKING_USERNAME` and
    /// `MLFLOW_TRACKING_PASSWORD`.
    ///
    /// # Errors
    /// [`MlflowError::Uri`] for anything but an http(s) URL.
    pub fn new(uri: &str) -> Result<Self, MlflowError> {
        let base = uri.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() <= "https://".len() {
            return Err(MlflowError::Uri(uri.to_owned()));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(60)))
            .user_agent(concat!("cinedata-evaluate/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let authorization = match (env("MLFLOW_TRACKING_TOKEN"), env("MLFLOW_TRACKING_USERNAME")) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, Some(user)) => {
                let password = env("MLFLOW_TRACKING_PASSWORD").unwrap_or_default();
                Some(format!("Basic {}", base64(format!("{user}:{password}").as_bytes())))
            }
            (None, None) => None,
        };
        Ok(Self { base: base.to_owned(), agent, authorization })
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/api/2.0/mlflow/{endpoint}", self.base)
    }

    fn answer(
        endpoint: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, MlflowError> {
        let mut response =
            result.map_err(|source| MlflowError::Http { endpoint: endpoint.to_owned(), source: Box::new(source) })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|source| MlflowError::Http { endpoint: endpoint.to_owned(), source: Box::new(source) })?;
        let parsed: Option<Value> = serde_json::from_str(&body).ok();
        if !(200..300).contains(&status) {
            let error_code =
                parsed.as_ref().and_then(|v| v.get("error_code")).and_then(Value::as_str).map(str::to_owned);
            return Err(MlflowError::Api { endpoint: endpoint.to_owned(), status, error_code, body });
        }
        parsed.ok_or(MlflowError::Response { endpoint: endpoint.to_owned(), body })
    }

    /// `POST`s `body` to `/api/2.0/mlflow/<endpoint>` and returns the JSON answer.
    ///
    /// # Errors
    /// No response, an error status, or a body that is not JSON.
    pub fn post(&self, endpoint: &str, body: &Value) -> Result<Value, MlflowError> {
        let mut request = self.agent.post(self.url(endpoint)).header("content-type", "application/json");
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        Self::answer(endpoint, request.send(body.to_string()))
    }

    /// `GET`s `/api/2.0/mlflow/<endpoint>?<query>` and returns the JSON answer.
    ///
    /// # Errors
    /// No response, an error status, or a body that is not JSON.
    pub fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Value, MlflowError> {
        let mut request = self.agent.get(self.url(endpoint));
        for (k, v) in query {
            request = request.query(*k, *v);
        }
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        Self::answer(endpoint, request.call())
    }

    /// The id of the experiment called `name`, created if it does not exist.
    ///
    /// # Errors
    /// The server's errors.
    pub fn experiment_id(&self, name: &str) -> Result<String, MlflowError> {
        let id_of = |endpoint: &str, v: &Value, pointer: &str| {
            v.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| MlflowError::Response { endpoint: endpoint.to_owned(), body: v.to_string() })
        };
        let lookup = |name: &str| match self.get("experiments/get-by-name", &[("experiment_name", name)]) {
            Ok(v) => id_of("experiments/get-by-name", &v, "/experiment/experiment_id").map(Some),
            Err(e) if e.error_code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e),
        };
        if let Some(id) = lookup(name)? {
            return Ok(id);
        }
        match self.post("experiments/create", &json!({ "name": name })) {
            Ok(v) => id_of("experiments/create", &v, "/experiment_id"),
            // Created meanwhile by another client.
            Err(e) if e.error_code() == Some("RESOURCE_ALREADY_EXISTS") => lookup(name)?.ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// Logs `record` as one finished run of the experiment `experiment_id`; returns the run id.
    ///
    /// # Errors
    /// The server's errors; the run is marked `FAILED` if it was created but logging failed.
    pub fn log_record(&self, experiment_id: &str, record: &ExperimentRecord) -> Result<String, MlflowError> {
        let to_kv = |pairs: Vec<(String, String)>| -> Vec<Value> {
            pairs.into_iter().map(|(key, value)| json!({ "key": key, "value": value })).collect()
        };
        let start_ms = record.started_at.saturating_mul(1000);
        let end_ms = record.created_at.max(record.started_at).saturating_mul(1000);
        let created = self.post(
            "runs/create",
            &json!({
                "experiment_id": experiment_id,
                "run_name": format!("{} {}", record.model, record.protocol),
                "start_time": start_ms,
                "tags": to_kv(tags(record)),
            }),
        )?;
        let run_id = created
            .pointer("/run/info/run_id")
            .or_else(|| created.pointer("/run/info/run_uuid"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| MlflowError::Response { endpoint: "runs/create".to_owned(), body: created.to_string() })?;

        let params = to_kv(params(record));
        let metrics: Vec<Value> = metrics(record)
            .into_iter()
            .map(|(key, value, step)| json!({ "key": key, "value": value, "timestamp": end_ms, "step": step }))
            .collect();
        let logged = self.log_batches(&run_id, params, metrics);
        let status = if logged.is_ok() { "FINISHED" } else { "FAILED" };
        let updated = self.post("runs/update", &json!({ "run_id": run_id, "status": status, "end_time": end_ms }));
        logged?;
        updated?;
        Ok(run_id)
    }

    fn log_batches(&self, run_id: &str, mut params: Vec<Value>, mut metrics: Vec<Value>) -> Result<(), MlflowError> {
        while !params.is_empty() || !metrics.is_empty() {
            let p: Vec<Value> = params.drain(..params.len().min(MAX_PARAMS_PER_BATCH)).collect();
            let room = MAX_ENTITIES_PER_BATCH - p.len();
            let m: Vec<Value> = metrics.drain(..metrics.len().min(MAX_METRICS_PER_BATCH).min(room)).collect();
            self.post("runs/log-batch", &json!({ "run_id": run_id, "params": p, "metrics": m, "tags": [] }))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::ExperimentKind;

    #[test]
    fn metric_names_are_made_valid_for_mlflow() {
        assert_eq!(metric_key("ndcg@10"), "ndcg_at_10");
        assert_eq!(metric_key("hit_rate@10"), "hit_rate_at_10");
        assert_eq!(metric_key("fold/rmse"), "fold/rmse");
        assert_eq!(metric_key("a(b)"), "a_b_");
        assert_eq!(metric_key(&"x".repeat(300)).len(), MAX_KEY);
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")]
        {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn a_record_maps_to_params_metrics_and_tags() {
        let mut record = ExperimentRecord::new(ExperimentKind::Evaluate, "cv", "mf", "0.1.0");
        record.id = Some(7);
        record.git_revision = format!("{}-dirty", "a".repeat(40));
        record.params = json!({"factors": 100, "schedule": {"decay": 0.95}, "name": "x", "none": null, "empty": {}});
        record.metrics = json!({"rmse": 0.84, "ndcg@10": null, "level": "test"});
        record.folds = vec![json!({"fold": 1, "rmse": 0.85}), json!({"fold": 2, "rmse": 0.83})];
        record.fit_seconds = 1.5;

        let p = params(&record);
        let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("factors"), Some("100"));
        assert_eq!(get("schedule.decay"), Some("0.95"));
        assert_eq!(get("name"), Some("x"));
        assert_eq!(get("none"), None);
        assert_eq!(get("empty"), Some("{}"));
        assert!(p.iter().all(|(k, _)| !k.is_empty()));
        record.params = json!({});
        assert_eq!(params(&record).len(), 6, "model, protocol, kind and the data counts only");
        assert_eq!(get("model"), Some("mf"));

        let m = metrics(&record);
        assert!(m.contains(&("rmse".to_owned(), 0.84, 0)));
        assert!(m.contains(&("fold/rmse".to_owned(), 0.83, 2)));
        assert!(m.contains(&("fit_seconds".to_owned(), 1.5, 0)));
        assert!(!m.iter().any(|(k, _, _)| k.contains("ndcg")), "null metrics are left out");

        let t = tags(&record);
        let tag = |k: &str| t.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(tag("mlflow.source.git.commit"), Some("a".repeat(40).as_str()));
        assert_eq!(tag("cinedata.git_revision"), Some(record.git_revision.as_str()));
        assert_eq!(tag("cinedata.experiment_id"), Some("7"));
        assert_eq!(tag("cinedata.metric.level"), Some("test"));
    }
}
