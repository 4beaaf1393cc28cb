//! A/B experiments on live traffic: which experiment is running, which variant a user is in,
//! what each variant's users did with what they were shown.
//!
//! - The experiments live in the store (`store::ab`): configuration, status and a log of every
//!   change. Each replica reloads them when the log's newest id moves (checked every
//!   [`SYNC_EVERY`]), so an admin call to any replica reaches all of them without a restart.
//! - At most one experiment runs at a time (a list comes from one model). Assignment is
//!   [`ExperimentConfig::assign`]: a hash of the salt and the user id, the same on every replica.
//! - [`impressions`]: every list served is logged to the impressions topic; the consumer group
//!   persists them. [`outcomes`] joins them with the ratings that followed.

pub mod impressions;
pub mod outcomes;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use model::ListModel;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec};
use schemas::ab::{
    ExperimentConfig, ExperimentReport, ExperimentStatus, ExperimentSummary, HOLDOUT, VariantModel, valid_name,
};
use schemas::events::unix_now;
use store::{Store, StoreError};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ApiResult};

/// How often a replica checks the store for changed experiments.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How long computed outcomes are reused.
pub const OUTCOMES_TTL: Duration = Duration::from_secs(5);
/// Rating from which a shown movie counts as liked.
pub const LIKED: f64 = 4.0;

/// The running experiment, as lists need it.
#[derive(Debug)]
pub struct Running {
    /// Its name.
    pub name: String,
    /// Its configuration (validated).
    pub config: ExperimentConfig,
    /// The store's change id it was loaded at: part of list cache keys, so a changed
    /// configuration never answers from lists of the old one.
    pub revision: i64,
}

/// Where one user falls.
#[derive(Debug, Clone, Copy)]
pub struct Arm<'a> {
    /// The experiment.
    pub experiment: &'a str,
    /// The variant name, or `holdout`.
    pub variant: &'a str,
    /// The model the user's lists come from.
    pub model: ListModel,
}

impl Running {
    /// The user's arm.
    pub fn arm(&self, user: i64) -> Arm<'_> {
        let a = self.config.assign(&self.name, user);
        Arm { experiment: &self.name, variant: a.variant, model: list_model(a.model) }
    }
}

/// The engine's list model for a variant's model.
pub fn list_model(model: VariantModel) -> ListModel {
    match model {
        VariantModel::Served => ListModel::Served,
        VariantModel::Ease => ListModel::Ease,
        VariantModel::OnlineMf => ListModel::OnlineMf,
        VariantModel::Popularity => ListModel::Popularity,
        VariantModel::Random => ListModel::Random,
    }
}

/// The Prometheus families of experiments: labels are experiment and variant only.
#[derive(Clone)]
pub struct AbMetrics {
    /// Lists served per experiment and variant (this replica).
    pub lists: IntCounterVec,
    /// Users shown a list, from the outcomes (all replicas, via the store).
    pub users: IntGaugeVec,
    /// Users with a hit list.
    pub hit_users: IntGaugeVec,
    /// Hit rate@10: lists with a hit over lists shown.
    pub hit_rate: GaugeVec,
    /// Impressions stored.
    pub impressions: IntGaugeVec,
}

/// The experiments this replica knows, kept in step with the store.
pub struct Experiments {
    store: Store,
    running: ArcSwapOption<Running>,
    revision: AtomicI64,
    /// One admin change at a time in this replica (read, check, write).
    changing: Mutex<()>,
    reports: std::sync::Mutex<HashMap<String, (Instant, Arc<ExperimentReport>)>>,
    metrics: AbMetrics,
}

impl Experiments {
    /// Loads the experiments from `store`.
    ///
    /// # Errors
    /// A database error.
    pub async fn load(store: Store, metrics: AbMetrics) -> Result<Arc<Self>, StoreError> {
        let me = Arc::new(Self {
            store,
            running: ArcSwapOption::empty(),
            revision: AtomicI64::new(-1),
            changing: Mutex::new(()),
            reports: std::sync::Mutex::new(HashMap::new()),
            metrics,
        });
        me.sync().await?;
        Ok(me)
    }

    /// The running experiment, if any (one atomic load).
    pub fn running(&self) -> Option<Arc<Running>> {
        self.running.load_full()
    }

    /// Counts a served list of `arm`.
    pub fn served(&self, arm: &Arm<'_>) {
        self.metrics.lists.with_label_values(&[arm.experiment, arm.variant]).inc();
    }

    /// Reloads from the store if anything changed since the last load.
    ///
    /// # Errors
    /// A database error (the previous state stays).
    pub async fn sync(&self) -> Result<(), StoreError> {
        let revision = self.store.ab_revision().await?;
        if revision == self.revision.load(Ordering::Acquire) {
            return Ok(());
        }
        let all = self.store.ab_experiments().await?;
        let running = all
            .into_iter()
            .filter(|e| e.status == ExperimentStatus::Running && e.config.validate().is_ok())
            .max_by_key(|e| e.updated_at)
            .map(|e| Arc::new(Running { name: e.name, config: e.config, revision }));
        let name = running.as_ref().map(|r| r.name.clone());
        self.running.store(running);
        self.revision.store(revision, Ordering::Release);
        tracing::info!(revision, running = ?name, "experiments loaded");
        Ok(())
    }

    /// Every [`SYNC_EVERY`] until `shutdown`: [`Self::sync`], and the outcomes of the running
    /// experiment for Prometheus every [`OUTCOMES_TTL`].
    pub fn spawn(self: &Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut last_outcomes = Instant::now();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(SYNC_EVERY) => {}
                }
                if let Err(error) = me.sync().await {
                    tracing::warn!(%error, "reloading experiments");
                }
                if last_outcomes.elapsed() >= OUTCOMES_TTL
                    && let Some(running) = me.running()
                {
                    last_outcomes = Instant::now();
                    if let Err(error) = me.report(&running.name).await {
                        tracing::warn!(%error, "computing experiment outcomes");
                    }
                }
            }
        })
    }

    /// Every experiment, by name.
    ///
    /// # Errors
    /// A database error.
    pub async fn list(&self) -> ApiResult<Vec<ExperimentSummary>> {
        Ok(self.store.ab_experiments().await?)
    }

    async fn find(&self, name: &str) -> ApiResult<Option<ExperimentSummary>> {
        Ok(self.store.ab_experiments().await?.into_iter().find(|e| e.name == name))
    }

    /// Creates experiment `name` (as a draft) or changes its configuration (a running one goes
    /// on with the new one at once). Returns whether it was created.
    ///
    /// # Errors
    /// An invalid name or configuration (422); a database error.
    pub async fn put(&self, name: &str, config: ExperimentConfig) -> ApiResult<(bool, ExperimentSummary)> {
        check_name(name)?;
        config.validate().map_err(ApiError::Invalid)?;
        let _one = self.changing.lock().await;
        let existing = self.find(name).await?;
        let (action, status) = match &existing {
            None => ("created", ExperimentStatus::Draft),
            Some(e) => ("changed", e.status),
        };
        let at = unix_now();
        self.store.ab_record(name, action, status, &config, at).await?;
        self.forget_report(name);
        self.sync().await?;
        Ok((existing.is_none(), ExperimentSummary { name: name.to_owned(), status, config, updated_at: at }))
    }

    /// Starts (or resumes) experiment `name`.
    ///
    /// # Errors
    /// No such experiment (404); another one is running (409); a database error.
    pub async fn start(&self, name: &str) -> ApiResult<ExperimentSummary> {
        self.set_status(name, ExperimentStatus::Running, "started").await
    }

    /// Stops experiment `name`: lists come from the served model again; its outcomes stay.
    ///
    /// # Errors
    /// No such experiment (404); a database error.
    pub async fn stop(&self, name: &str) -> ApiResult<ExperimentSummary> {
        self.set_status(name, ExperimentStatus::Stopped, "stopped").await
    }

    async fn set_status(&self, name: &str, status: ExperimentStatus, action: &str) -> ApiResult<ExperimentSummary> {
        check_name(name)?;
        let _one = self.changing.lock().await;
        let all = self.store.ab_experiments().await?;
        let Some(found) = all.iter().find(|e| e.name == name) else {
            return Err(ApiError::NotFound(format!("no experiment named {name:?}")));
        };
        if status == ExperimentStatus::Running
            && let Some(other) = all.iter().find(|e| e.status == ExperimentStatus::Running && e.name != name)
        {
            return Err(ApiError::Conflict(format!(
                "experiment {:?} is running; stop it first (one experiment runs at a time)",
                other.name
            )));
        }
        if found.status == status {
            return Ok(found.clone());
        }
        let at = unix_now();
        self.store.ab_record(name, action, status, &found.config, at).await?;
        self.forget_report(name);
        self.sync().await?;
        Ok(ExperimentSummary { name: name.to_owned(), status, config: found.config.clone(), updated_at: at })
    }

    fn forget_report(&self, name: &str) {
        self.reports.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
    }

    /// Configuration, status, history and outcomes of experiment `name` (outcomes reused for
    /// [`OUTCOMES_TTL`]); also sets its Prometheus gauges.
    ///
    /// # Errors
    /// No such experiment (404); a database error.
    pub async fn report(&self, name: &str) -> ApiResult<Arc<ExperimentReport>> {
        check_name(name)?;
        if let Some((at, report)) = self.reports.lock().unwrap_or_else(|e| e.into_inner()).get(name)
            && at.elapsed() < OUTCOMES_TTL
        {
            return Ok(report.clone());
        }
        let Some(found) = self.find(name).await? else {
            return Err(ApiError::NotFound(format!("no experiment named {name:?}")));
        };
        let history = self.store.ab_history(name).await?;
        let impressions = self.store.impressions_of(name).await?;
        let liked = self.store.liked_by_exposed(name, LIKED).await?;
        let config = found.config.clone();
        let computed = tokio::task::spawn_blocking(move || outcomes::outcomes(&config, &impressions, &liked))
            .await
            .map_err(|e| ApiError::Internal(format!("computing outcomes: {e}")))?;
        for o in &computed {
            let labels = [name, o.variant.as_str()];
            self.metrics.users.with_label_values(&labels).set(o.users as i64);
            self.metrics.hit_users.with_label_values(&labels).set(o.hit_users as i64);
            self.metrics.impressions.with_label_values(&labels).set(o.impressions as i64);
            if let Some(rate) = o.hit_rate {
                self.metrics.hit_rate.with_label_values(&labels).set(rate);
            }
        }
        let report = Arc::new(ExperimentReport {
            name: found.name,
            status: found.status,
            control: found.config.control().name.clone(),
            config: found.config,
            history,
            outcomes: computed,
            computed_at: unix_now(),
        });
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), (Instant::now(), report.clone()));
        Ok(report)
    }
}

fn check_name(name: &str) -> ApiResult<()> {
    if valid_name(name) && name != HOLDOUT {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!(
            "experiment name {name:?} must be 1 to {} letters, digits, '-', '_' or '.'",
            schemas::ab::MAX_NAME
        )))
    }
}
