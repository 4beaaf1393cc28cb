//! The live recommender inside serving: where a rating from the stream meets the model.
//!
//! - [`stream`]: a Kafka consumer of the ratings topic (all partitions, its own group) that
//!   hands each batch of events to [`LiveModel::apply`].
//! - [`LiveModel`] (`current.rs`): the current `model::Engine` behind an `ArcSwap` (readers
//!   never see a half-built model), the per-event online updates, the version and errors.
//! - [`retrain`]: the batch job (schedule, every N ratings, or admin) that rebuilds the models
//!   from the store, checks them on a holdout and swaps them in.
//! - [`snapshot`]: the model and the Kafka offsets it includes, saved to disk, so a restart
//!   resumes instead of retraining.
//! - [`movies`]: titles, genres and the content index in memory.
//! - [`LiveMetrics`], [`LiveSettings`] and [`Live`] (opening the model from a snapshot or
//!   empty, then running the follower and the retrains): one file each.

mod current;
mod metrics;
pub mod movies;
pub mod retrain;
mod settings;
pub mod snapshot;
mod startup;
pub mod stream;

pub use current::{Lineage, LiveModel};
pub use metrics::LiveMetrics;
pub use movies::Movies;
pub use settings::LiveSettings;
pub use startup::Live;
