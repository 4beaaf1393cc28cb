//! CineData's recommender algorithms: pure, synchronous and seeded (ndarray, no I/O).
//!
//! Modules, one concept each:
//! - [`ratings`]: the in-memory ratings container every batch model fits on.
//! - [`baseline`]: ALS user/movie biases (Surprise's BaselineOnly).
//! - [`knn`]: item-based neighbourhood correction of the baselines (KNNBaseline).
//! - [`blend`]: least-squares blends of rating predictors.
//! - [`sgd`]: the one SGD step shared by online updates and offline training.
//! - [`online`]: the live biased MF model the consumer updates while serving reads.
//! - [`mf`]: batch biased MF (Funk-SVD), which re-bases the online model.
//! - [`svd`]: sparse randomized truncated SVD and PureSVD top-N.
//! - [`linalg`]: the small dense solvers behind it (Jacobi eigen and SVD).
//! - [`ease`]: EASE item–item top-N (a closed-form shallow autoencoder of the liked movies).
//! - [`rerank`]: EASE candidates re-ranked by gradient-boosted trees learnt from a temporal
//!   holdout of the training ratings (the best top-N model offline).
//! - [`similarity`]: item–item cosine for "similar movies".
//! - [`content`]: genre/tag similarity for movies without ratings.
//! - [`popularity`]: popular and trending lists for cold start.
//! - [`profile`]: what a user's ratings say about them (mean, favourite genres, top rated).
//! - [`topn`]: top-N queries (exclusions, filters) and selection.
//! - [`explain`]: "because you rated X".
//! - [`metrics`]: RMSE, MAE and the top-N metrics of `EVALUATION.md`.
//! - [`batch`]: the full recompute, the one pipeline shared by serving's retrain and
//!   `evaluate`: fit every batch model, check on a holdout, publish an [`Engine`].
//! - [`engine`]: the facade serving calls: personal lists from the top-N model over the live
//!   history, cold-start routing, similar movies with their fallbacks, explanations.
//! - [`ids`], [`error`]: id types and the crate's error.
//!
//! Ids are MovieLens `i64` ids at the API boundary and dense `u32` indices inside.
#![deny(missing_docs)]

pub mod baseline;
pub mod batch;
pub mod blend;
pub mod content;
pub mod ease;
pub mod engine;
pub mod error;
pub mod explain;
pub mod ids;
mod init;
pub mod knn;
pub mod linalg;
pub mod metrics;
pub mod mf;
pub mod online;
mod panel;
pub mod popularity;
pub mod profile;
pub mod ratings;
pub mod rerank;
pub mod sgd;
pub mod similarity;
pub mod svd;
pub mod topn;

pub use baseline::{Baseline, BaselineModel};
pub use batch::{BatchModels, Holdout, HoldoutReport, Published, Recompute, RecomputeBuilder, Verdict};
pub use blend::{BlendModel, LinearBlend, Member};
pub use content::ContentIndex;
pub use ease::{Ease, EaseModel};
pub use engine::{ColdStart, Engine, ListModel, Recommendations, Source};
pub use error::ModelError;
pub use explain::Reason;
pub use ids::{IdMap, ItemId, UserId};
pub use knn::{KnnBaseline, KnnBaselineModel};
pub use mf::{BiasedMf, MfModel, Shuffle};
pub use online::{
    ItemRecord, ItemState, OnlineConfig, OnlineModel, OnlineState, RatedRecord, Update, UserRecord, UserState,
};
pub use popularity::{PopularItem, Popularity, PopularityModel, PopularityState};
pub use profile::{GenreTaste, Profile};
pub use ratings::{Rating, Ratings};
pub use rerank::{Rerank, RerankModel, RerankState};
pub use sgd::{BiasRates, SgdParams, sgd_step, sgd_step_with};
pub use similarity::ItemSimilarity;
pub use svd::{Centring, PureSvd, TruncatedSvd};
pub use topn::{Query, Scored};

/// What evaluation needs from any model: rating predictions and top-N lists, so metrics
/// (RMSE, precision@k, NDCG) can be written once for all models.
pub trait Recommender {
    /// Predicted rating of `item` by `user`, clipped to the rating scale. Unknown users or
    /// movies fall back to what the model does know (biases, means).
    fn predict(&self, user: UserId, item: ItemId) -> f32;

    /// The best movies for `user` under `query`, best first, ties to the smaller movie id.
    fn recommend(&self, user: UserId, query: &Query<'_>) -> Vec<Scored>;
}
