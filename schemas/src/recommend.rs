//! Live recommendations and the model behind them, as the serving API returns them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which model produced a list, so a client can label it ("Trending now", "Because you liked").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Personal scores from the top-N model over the user's ratings (the user liked at least
    /// one movie it knows; before the first retrain, the live factor model).
    Personal,
    /// Recently liked movies: a user without ratings or without a liked movie (cold start).
    Trending,
    /// Movies rated alike (the movie has enough ratings).
    Collaborative,
    /// Movies sharing genres and tags (a movie with few or no ratings).
    Content,
}

/// A movie the user rated that supports a recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Because {
    /// The rated movie.
    pub movie_id: i64,
    /// Its title.
    pub title: String,
    /// The user's rating of it.
    pub rating: f64,
    /// How much it supports the recommendation (higher is stronger).
    pub weight: f64,
}

/// One recommended or similar movie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendedMovie {
    /// MovieLens movie id.
    pub movie_id: i64,
    /// Title with year.
    pub title: String,
    /// `|`-separated genres.
    pub genres: String,
    /// Ranking score: the re-ranker's log-odds that the user will like it (personal), a
    /// recency-weighted like count (trending) or a similarity (similar movies). Compare scores
    /// within one list only; `GET /users/{userId}/predictions` gives predicted stars.
    pub score: f64,
    /// With `explain=true`: the movies the user liked that most drove this one's score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub because: Option<Vec<Because>>,
}

/// `GET /users/{userId}/recommendations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserRecommendations {
    /// The user asked about.
    pub user_id: i64,
    /// `personal`, or `trending` for a user without ratings.
    pub strategy: Strategy,
    /// Version of the model that answered (see `GET /model`).
    pub model_version: u64,
    /// Best first; never a movie the user rated or excluded.
    pub items: Vec<RecommendedMovie>,
    /// The running A/B experiment the user is in, if any (see `GET /experiments/{name}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// The user's variant in it (or `holdout`): which model configuration made this list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// `GET /movies/{movieId}/similar`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimilarMovies {
    /// The movie asked about.
    pub movie_id: i64,
    /// `collaborative`, or `content` for a movie with few ratings.
    pub strategy: Strategy,
    /// Version of the model that answered.
    pub model_version: u64,
    /// Most similar first; never the movie itself.
    pub items: Vec<RecommendedMovie>,
}

/// One predicted rating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prediction {
    /// MovieLens movie id.
    pub movie_id: i64,
    /// Title with year.
    pub title: String,
    /// The live model's predicted stars, within the rating scale.
    pub predicted_rating: f64,
    /// The user's own rating of it, if they rated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rated: Option<f64>,
}

/// `GET /users/{userId}/predictions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Predictions {
    /// The user asked about.
    pub user_id: i64,
    /// Version of the model that answered.
    pub model_version: u64,
    /// One per movie asked about, in the order asked.
    pub items: Vec<Prediction>,
}

/// A genre in a user's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenreAffinity {
    /// Genre name as in movies.csv.
    pub genre: String,
    /// Movies of this genre the user rated.
    pub count: u64,
    /// The user's mean rating of them.
    pub mean_rating: f64,
}

/// A rated movie in a user's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatedMovie {
    /// MovieLens movie id.
    pub movie_id: i64,
    /// Title with year.
    pub title: String,
    /// The user's rating.
    pub rating: f64,
}

/// `GET /users/{userId}/profile`: what the live model knows of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    /// The user.
    pub user_id: i64,
    /// Distinct movies rated.
    pub rating_count: u64,
    /// Mean of those ratings.
    pub mean_rating: f64,
    /// Genres by how much the user likes them (count-damped mean rating), best first, at most 5.
    pub favourite_genres: Vec<GenreAffinity>,
    /// The user's highest-rated movies, at most 10.
    pub top_rated: Vec<RatedMovie>,
}

/// How a model did on ratings held out of its training: the latest ratings of a fixed sample
/// of users (rating error of the batch MF, ranking quality of the personal lists).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldoutMetrics {
    /// Root mean squared error in stars.
    pub rmse: f64,
    /// Mean absolute error in stars.
    pub mae: f64,
    /// RMSE of the training mean on the same ratings: the floor the model must clear.
    #[serde(default)]
    pub mean_rmse: Option<f64>,
    /// Ratings held out.
    pub ratings: u64,
    /// NDCG@10 of the held-out users' personal lists against the movies they liked (≥ 4) in
    /// their held-out ratings; null when none of them liked one.
    #[serde(default)]
    pub ndcg_at_10: Option<f64>,
    /// Share of those users with at least one liked movie in their top 10.
    #[serde(default)]
    pub hit_rate_at_10: Option<f64>,
    /// NDCG@10 of the most-liked movies for the same users: the floor the personal lists
    /// must clear on this holdout.
    #[serde(default)]
    pub popularity_ndcg_at_10: Option<f64>,
    /// Users the ranking metrics average over.
    #[serde(default)]
    pub ranking_users: u64,
}

/// The outcome of one batch recompute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrainReport {
    /// Whether the new model was swapped in (it is kept out when its holdout error is worse).
    pub accepted: bool,
    /// Why it was kept out, or why the retrain failed; on an accepted one, why its personal
    /// lists are off (they lost to the popularity list while nothing trained was serving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What started it: `startup`, `schedule`, `ratings` (N new ratings) or `admin`.
    pub trigger: String,
    /// Unix seconds when it finished.
    pub finished_at: i64,
    /// Seconds spent reading, training and evaluating.
    pub seconds: f64,
    /// Ratings trained on.
    pub training_ratings: u64,
    /// The candidate's holdout error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<HoldoutMetrics>,
}

/// `GET /model`: the model serving answers from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    /// Increases by one at every swap (retrain); kept across restarts by the snapshot.
    pub version: u64,
    /// What answers: the algorithms and their main hyper-parameters.
    pub algorithm: String,
    /// Latent factors per user and movie.
    pub factors: u64,
    /// Unix seconds when the batch part was trained; null before the first retrain.
    pub trained_at: Option<i64>,
    /// Ratings the batch part was trained on.
    pub training_ratings: u64,
    /// Users and movies the live model knows now.
    pub users: u64,
    /// See `users`.
    pub movies: u64,
    /// Holdout error of the batch part; null before the first retrain.
    pub holdout: Option<HoldoutMetrics>,
    /// Rating events applied to the live model since this version was swapped in.
    pub events_since_trained: u64,
    /// Rating events applied since the process started.
    pub events_applied: u64,
    /// Whether a retrain is running now.
    pub retraining: bool,
    /// The latest retrain, accepted or not.
    pub last_retrain: Option<RetrainReport>,
}

/// `POST /model/retrain` → 202.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrainStarted {
    /// The model version when the retrain started; `GET /model` shows a higher one once the
    /// new model is swapped in.
    pub version: u64,
}
