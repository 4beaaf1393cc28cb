//! What the live model needs at start.

use model::{OnlineConfig, OnlineModel};

use super::{retrain, stream};

/// Everything the live model needs at start.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// The stream to follow; `None` serves the store's ratings only (updated by retrains).
    pub stream: Option<stream::StreamSettings>,
    /// Retrain schedule and hyper-parameters.
    pub retrain: retrain::RetrainSettings,
    /// Where snapshots go; `None` disables them (every start retrains).
    pub snapshot_dir: Option<std::path::PathBuf>,
    /// How often to save a snapshot when events arrived.
    pub snapshot_interval: std::time::Duration,
    /// Settings of the online model.
    pub online: OnlineConfig,
    /// Least time between two recomputations of a user's list for their own ratings (see
    /// `crate::cache::ListCache`): the first after a quiet spell is immediate.
    pub list_refresh: std::time::Duration,
}

impl LiveSettings {
    /// Defaults: no stream, no snapshots, default retrain schedule and online model.
    pub fn new() -> Self {
        Self {
            stream: None,
            retrain: retrain::RetrainSettings::default(),
            snapshot_dir: None,
            snapshot_interval: std::time::Duration::from_secs(60),
            online: OnlineModel::builder().build().expect("default online settings are valid"),
            list_refresh: std::time::Duration::from_secs(1),
        }
    }

    /// What snapshot offsets belong to: the brokers and the topic. Offsets of another
    /// cluster (e.g. a previous run's embedded broker) are not reused.
    pub(super) fn topic(&self) -> String {
        self.stream
            .as_ref()
            .map_or_else(|| producer::topics::RATINGS.to_owned(), |s| format!("{}/{}", s.brokers, s.topic))
    }
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self::new()
    }
}
