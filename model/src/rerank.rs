//! Top-N by re-ranking: EASE proposes each user's best [`Rerank::candidates`] movies and
//! gradient-boosted trees re-order them with what EASE cannot see — when the user rated
//! (popularity around their last rating, how long each movie has been rated), what they rated
//! last (EASE scores of the recent likes, similarity to the last movies), how their ratings run
//! (mean, share of likes, recent mean) and each movie's rating statistics.
//!
//! The trees learn from the training data alone, the way the protocol holds out data: each
//! user's ratings in time order are split 80/20, EASE is fitted on the first 80%, and a
//! candidate's label is whether the user liked it (≥ the positive threshold) in their last
//! 20%. The served model then fits EASE on all the ratings and scores its candidates with the
//! same features. On ml-latest-small this is the model that reaches the top-N goal (see
//! BENCHMARKS.md); the hyper-parameters were chosen on the inner split, never on test.

use std::collections::HashSet;

use forust_ml::gradientbooster::GrowPolicy;
use forust_ml::objective::ObjectiveType;
use forust_ml::sampler::SampleMethod;
use forust_ml::{GradientBooster, Matrix};

use crate::Recommender;
use crate::ease::{Ease, EaseModel};
use crate::error::ModelError;
use crate::explain::Reason;
use crate::ids::{IdMap, ItemId, UserId};
use crate::ratings::{Rating, Ratings};
use crate::topn::{Query, Scored};

/// Features per (user, candidate), named in [`FEATURE_NAMES`] in their column order.
pub const N_FEATURES: usize = 18;

/// Names of the features, in matrix column order (for importances and reports).
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "ease_score",
    "ease_score_vs_best",
    "ln_rank",
    "ease_score_recent_likes",
    "ln_share_of_ratings",
    "ln_share_of_likes",
    "movie_mean",
    "movie_like_rate",
    "ln_share_in_window",
    "window_share_of_movie",
    "years_since_first_rating",
    "ln_user_ratings",
    "user_mean",
    "ease_score_unweighted",
    "max_cosine_to_last_movies",
    "user_like_rate",
    "user_recent_mean",
    "ln_user_span_hours",
];

/// Likes among a user's latest ratings that form the "recent" EASE query.
const RECENT_RATINGS: usize = 20;
/// Latest movies a candidate's cosine similarity is taken against.
const LAST_MOVIES: usize = 5;
/// Latest ratings in the user's recent mean.
const RECENT_MEAN_RATINGS: usize = 10;
/// Users the cosine feature looks at: every user up to this many, else an even sample of
/// this many (every k-th in id order; ml-latest-small has 610 users, so all of them count).
const COSINE_USERS: usize = 8_192;
/// The first tree ensemble scores every candidate; the others only its best
/// `max(CASCADE_FACTOR · n, CASCADE_MIN)` for a top-`n` list (a cascade: most of a list's tree
/// work was spent averaging candidates that end far below the top `n`).
const CASCADE_FACTOR: usize = 3;
const CASCADE_MIN: usize = 30;

/// Hyper-parameters of the re-ranker; `Rerank::default()` is the tuned setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Rerank {
    /// The candidate generator (default: the tuned [`Ease`]).
    pub ease: Ease,
    /// EASE candidates re-ranked per user (default 100; a request for more re-ranks that many).
    pub candidates: usize,
    /// Share of each user's latest ratings held out as labels when training the trees
    /// (default 0.2, the protocol's split). Must be in (0, 1).
    pub holdout: f64,
    /// Boosting rounds per tree ensemble (default 600).
    pub trees: usize,
    /// Shrinkage per round (default 0.05).
    pub learning_rate: f32,
    /// Leaves per tree, grown best-first (default 7).
    pub max_leaves: usize,
    /// Least hessian mass in a leaf (default 1: about 25 candidates at the base like rate).
    pub min_leaf_weight: f32,
    /// Rows sampled per tree (default 0.8).
    pub subsample: f32,
    /// Features sampled per tree (default 0.8).
    pub colsample: f64,
    /// Ensembles trained with different seeds and averaged (default 3; bagging steadies the
    /// ranking, which a single ensemble's sampling noise moves by ±0.003 NDCG@10). At request
    /// time the first ranks every candidate and the others average in on its best only.
    pub ensembles: usize,
    /// Half-width of the time window around a user's last rating in which a movie's share of
    /// all ratings is counted (default 90 days).
    pub window_seconds: i64,
    /// Seed of the first ensemble (the others add 1, 2, …).
    pub seed: u64,
    /// Most users whose held-out likes label training rows (default 20,000; ml-latest-small
    /// has 610): a larger data set samples every k-th user, which bounds the trees' training
    /// time at ml-25m's size (162k users, 16 M candidate rows otherwise).
    pub max_training_users: usize,
}

impl Default for Rerank {
    fn default() -> Self {
        Self {
            ease: Ease::default(),
            candidates: 100,
            holdout: 0.2,
            trees: 600,
            learning_rate: 0.05,
            max_leaves: 7,
            min_leaf_weight: 1.0,
            subsample: 0.8,
            colsample: 0.8,
            ensembles: 3,
            window_seconds: 90 * 86_400,
            seed: 0,
            max_training_users: 20_000,
        }
    }
}

impl Rerank {
    /// Trains the trees on a temporal holdout of `ratings`, then fits the serving EASE on all
    /// of `ratings`.
    ///
    /// If the holdout has no like among the candidates (tiny or one-rating-per-user data), no
    /// trees are trained and the model ranks exactly as EASE.
    ///
    /// # Errors
    /// [`ModelError::EmptyRatings`]; [`ModelError::InvalidParameter`] for a bad setting here or
    /// in [`Rerank::ease`].
    pub fn fit(&self, ratings: &Ratings) -> Result<RerankModel, ModelError> {
        self.validate()?;
        if ratings.is_empty() {
            return Err(ModelError::EmptyRatings);
        }
        let threshold = self.ease.positive_threshold;
        let (early, late) = temporal_holdout(ratings, self.holdout, threshold)?;
        let boosters = match early {
            Some(early) => {
                let context = Context::new(&early, self.ease.fit(&early)?, threshold, self.window_seconds);
                let (features, labels) = self.training_rows(&context, &late);
                if labels.iter().any(|&l| l > 0.5) && labels.iter().any(|&l| l < 0.5) {
                    self.train(&features, &labels)?
                } else {
                    Vec::new()
                }
            }
            None => Vec::new(),
        };
        let context = Context::new(ratings, self.ease.fit(ratings)?, threshold, self.window_seconds);
        Ok(RerankModel { context, boosters, candidates: self.candidates })
    }

    fn validate(&self) -> Result<(), ModelError> {
        let checks: [(&'static str, bool, &str); 10] = [
            ("max_training_users", self.max_training_users >= 1, "must be ≥ 1"),
            ("holdout", self.holdout > 0.0 && self.holdout < 1.0, "must be in (0, 1)"),
            ("candidates", self.candidates >= 1, "must be ≥ 1"),
            ("trees", self.trees >= 1, "must be ≥ 1"),
            ("ensembles", self.ensembles >= 1, "must be ≥ 1"),
            ("max_leaves", self.max_leaves >= 2, "must be ≥ 2"),
            ("learning_rate", self.learning_rate > 0.0 && self.learning_rate <= 1.0, "must be in (0, 1]"),
            ("subsample", self.subsample > 0.0 && self.subsample <= 1.0, "must be in (0, 1]"),
            ("colsample", self.colsample > 0.0 && self.colsample <= 1.0, "must be in (0, 1]"),
            (
                "min_leaf_weight",
                self.min_leaf_weight.is_finite() && self.min_leaf_weight >= 0.0,
                "must be finite and ≥ 0",
            ),
        ];
        if let Some((name, _, rule)) = checks.iter().find(|c| !c.1) {
            return Err(ModelError::InvalidParameter { name, reason: format!("{rule} ({self:?})") });
        }
        if self.window_seconds <= 0 {
            return Err(ModelError::InvalidParameter {
                name: "window_seconds",
                reason: format!("must be > 0, got {}", self.window_seconds),
            });
        }
        Ok(())
    }

    /// One feature row per (user with a held-out like, EASE candidate), and its label.
    fn training_rows(&self, context: &Context, late: &HeldOutLikes) -> (Vec<[f64; N_FEATURES]>, Vec<f64>) {
        let mut features = Vec::new();
        let mut labels = Vec::new();
        // A large data set trains on an even sample of its users (every k-th in id order).
        let step = late.len().div_ceil(self.max_training_users.max(1)).max(1);
        for (user, liked) in late.iter().step_by(step) {
            let Some(u) = context.user_ids.index(*user) else { continue };
            let candidates = context.ease.recommend(*user, &Query::top(self.candidates));
            let liked: HashSet<ItemId> = liked.iter().copied().collect();
            labels.extend(candidates.iter().map(|c| f64::from(u8::from(liked.contains(&c.item)))));
            features.extend(context.features(&context.history_of(u), &candidates));
        }
        (features, labels)
    }

    fn train(&self, features: &[[f64; N_FEATURES]], labels: &[f64]) -> Result<Vec<GradientBooster>, ModelError> {
        let data = column_major(features);
        let matrix = Matrix::new(&data, features.len(), N_FEATURES);
        (0..self.ensembles as u64)
            .map(|k| {
                let mut booster = GradientBooster::default()
                    .set_objective_type(ObjectiveType::LogLoss)
                    .set_iterations(self.trees)
                    .set_learning_rate(self.learning_rate)
                    .set_max_leaves(self.max_leaves)
                    .set_max_depth(self.max_leaves)
                    .set_min_leaf_weight(self.min_leaf_weight)
                    .set_sample_method(if self.subsample < 1.0 { SampleMethod::Random } else { SampleMethod::None })
                    .set_subsample(self.subsample)
                    .set_colsample_bytree(self.colsample)
                    .set_initialize_base_score(true)
                    .set_seed(self.seed + k);
                booster.grow_policy = GrowPolicy::LossGuide;
                booster.fit_unweighted(&matrix, labels, None).map_err(|e| ModelError::InvalidParameter {
                    name: "trees",
                    reason: format!("gradient boosting failed: {e}"),
                })?;
                Ok(booster)
            })
            .collect()
    }
}

/// Each user's liked movies in the held-out part of their ratings.
type HeldOutLikes = Vec<(UserId, Vec<ItemId>)>;

/// Splits each user's ratings, in (timestamp, movie id) order, into the first
/// `floor((1 − holdout) · n)` (as `Ratings`, `None` if empty) and the movies liked among the
/// rest (users without such a like are left out).
fn temporal_holdout(
    ratings: &Ratings,
    holdout: f64,
    threshold: f32,
) -> Result<(Option<Ratings>, HeldOutLikes), ModelError> {
    let mut early = Vec::with_capacity(ratings.len());
    let mut late = Vec::new();
    for u in 0..ratings.n_users() as u32 {
        let user = ratings.user_ids().id(u);
        let row = in_time_order(ratings, u);
        let keep = ((1.0 - holdout) * row.len() as f64).floor() as usize;
        let item = |i: u32| ratings.item_ids().id(i);
        early.extend(row[..keep].iter().map(|&(i, v, t)| Rating { user, item: item(i), value: v, timestamp: t }));
        let liked: Vec<ItemId> = row[keep..].iter().filter(|r| r.1 >= threshold).map(|r| item(r.0)).collect();
        if !liked.is_empty() {
            late.push((user, liked));
        }
    }
    let early = if early.is_empty() { None } else { Some(Ratings::from_rows(early)?) };
    Ok((early, late))
}

/// User `u`'s ratings as (dense movie, rating, time) in (time, movie id) order: the order
/// the protocol splits in.
fn in_time_order(ratings: &Ratings, u: u32) -> Vec<(u32, f32, i64)> {
    let (items, values, times) = ratings.user_row(u);
    let mut row: Vec<(u32, f32, i64)> = items.iter().zip(values).zip(times).map(|((&i, &v), &t)| (i, v, t)).collect();
    row.sort_by_key(|r| (r.2, ratings.item_ids().id(r.0)));
    row
}

fn column_major(rows: &[[f64; N_FEATURES]]) -> Vec<f64> {
    let mut data = Vec::with_capacity(rows.len() * N_FEATURES);
    for f in 0..N_FEATURES {
        data.extend(rows.iter().map(|r| r[f]));
    }
    data
}

/// What the features are computed from: the EASE model and the statistics of the ratings it
/// was fitted on. Dense user and movie indices are those of the `Ratings`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Context {
    ease: EaseModel,
    user_ids: IdMap,
    item_ids: IdMap,
    positive_threshold: f32,
    window: i64,
    n_ratings: f64,
    /// Per movie: likes and first rating time (its count is the length of its CSR row, its
    /// mean comes from [`EaseModel::predict`]).
    item_likes: Vec<u32>,
    item_first: Vec<i64>,
    /// Per movie (CSR by `item_offsets`): rating times ascending.
    item_offsets: Vec<usize>,
    item_times: Vec<i64>,
    /// Per movie: which of the sampled users rated it, for the cosine feature.
    raters: RaterSample,
    /// Every rating time, ascending.
    all_times: Vec<i64>,
    /// Per user (CSR by `user_offsets`): (movie, rating, time), in (time, movie id) order.
    user_offsets: Vec<usize>,
    history: Vec<(u32, f32, i64)>,
}

impl Context {
    fn new(ratings: &Ratings, ease: EaseModel, positive_threshold: f32, window: i64) -> Self {
        let n_items = ratings.n_items();
        let mut item_likes = vec![0u32; n_items];
        for (&i, &v) in ratings.items().iter().zip(ratings.values()) {
            item_likes[i as usize] += u32::from(v >= positive_threshold);
        }
        let (item_offsets, order) = ratings.by_item_order();
        let raters = RaterSample::new(ratings, COSINE_USERS);
        let mut item_times: Vec<i64> = order.iter().map(|&j| ratings.timestamps()[j]).collect();
        for w in item_offsets.windows(2) {
            item_times[w[0]..w[1]].sort_unstable();
        }
        // Every movie of `ratings` has at least one rating.
        let item_first = item_offsets[..n_items].iter().map(|&o| item_times[o]).collect();
        let mut all_times = ratings.timestamps().to_vec();
        all_times.sort_unstable();

        let mut user_offsets = Vec::with_capacity(ratings.n_users() + 1);
        user_offsets.push(0);
        let mut history = Vec::with_capacity(ratings.len());
        for u in 0..ratings.n_users() as u32 {
            history.extend(in_time_order(ratings, u));
            user_offsets.push(history.len());
        }

        Self {
            ease,
            user_ids: ratings.user_ids().clone(),
            item_ids: ratings.item_ids().clone(),
            positive_threshold,
            window,
            n_ratings: ratings.len() as f64,
            item_likes,
            item_first,
            item_offsets,
            item_times,
            raters,
            all_times,
            user_offsets,
            history,
        }
    }

    /// Ratings in `times` (ascending) within the window around `at`.
    fn in_window(&self, times: &[i64], at: i64) -> usize {
        let lo = times.partition_point(|&t| t < at - self.window);
        let hi = times.partition_point(|&t| t <= at + self.window);
        hi - lo
    }

    /// Cosine similarity of two movies over which sampled users rated them (binary): the
    /// same users for every movie, as bitsets, so a request's 500 cosines are at most
    /// 500 × 128 words of AND and popcount even when popular movies have 80k raters (ml-25m).
    fn cosine(&self, a: u32, b: u32) -> f64 {
        self.raters.cosine(a as usize, b as usize)
    }

    /// A training user's history (dense index `u`) as `(movie, rating, time)` in time order.
    fn history_of(&self, u: u32) -> Vec<(ItemId, f32, i64)> {
        self.history[self.user_offsets[u as usize]..self.user_offsets[u as usize + 1]]
            .iter()
            .map(|&(i, v, t)| (self.item_ids.id(i), v, t))
            .collect()
    }

    /// The [`FEATURE_NAMES`] of each candidate (in list order, best EASE score first) for a
    /// user with this history (`(movie, rating, time)` in (time, movie id) order): the training
    /// history, or the live one at request time. Movies the statistics do not know count in
    /// the user's own figures only.
    fn features(&self, history: &[(ItemId, f32, i64)], candidates: &[Scored]) -> Vec<[f64; N_FEATURES]> {
        let Some(&(_, _, last)) = history.last() else { return Vec::new() };
        let first = history[0].2;
        let n = history.len() as f64;
        let mean = history.iter().map(|h| f64::from(h.1)).sum::<f64>() / n;
        let like_rate = history.iter().filter(|h| h.1 >= self.positive_threshold).count() as f64 / n;
        let tail = &history[history.len().saturating_sub(RECENT_MEAN_RATINGS)..];
        let recent_mean = tail.iter().map(|h| f64::from(h.1)).sum::<f64>() / tail.len() as f64;
        let rated = |hs: &[(ItemId, f32, i64)]| -> Vec<(ItemId, f32)> { hs.iter().map(|h| (h.0, h.1)).collect() };
        // The recent and unweighted EASE scores are needed at the candidates only.
        let columns: Vec<Option<usize>> = candidates.iter().map(|c| self.ease.column_of(c.item)).collect();
        let recent = &history[history.len().saturating_sub(RECENT_RATINGS)..];
        let recent_scores = self.ease.scores_at(&rated(recent), true, &columns);
        let plain_scores = self.ease.scores_at(&rated(history), false, &columns);
        let last_movies: Vec<u32> = history[history.len().saturating_sub(LAST_MOVIES)..]
            .iter()
            .filter_map(|h| self.item_ids.index(h.0))
            .collect();
        let window_total = self.in_window(&self.all_times, last).max(1) as f64;
        let best = candidates.first().map_or(1.0, |c| if c.score > 0.0 { f64::from(c.score) } else { 1.0 });

        candidates
            .iter()
            .enumerate()
            .map(|(rank, c)| {
                let Some(i) = self.item_ids.index(c.item) else { return [0.0; N_FEATURES] };
                let iu = i as usize;
                let count = (self.item_offsets[iu + 1] - self.item_offsets[iu]) as f64;
                let likes = f64::from(self.item_likes[iu]);
                let times = &self.item_times[self.item_offsets[iu]..self.item_offsets[iu + 1]];
                let in_window = self.in_window(times, last) as f64;
                let cosine = last_movies.iter().map(|&l| self.cosine(i, l)).fold(0.0, f64::max);
                [
                    f64::from(c.score),
                    f64::from(c.score) / best,
                    (rank as f64).ln_1p(),
                    f64::from(recent_scores[rank]),
                    (count / self.n_ratings * 1e5).ln_1p(),
                    (likes / self.n_ratings * 1e5).ln_1p(),
                    f64::from(self.ease.predict(0, c.item)),
                    likes / count.max(1.0),
                    (in_window / window_total * 1e4).ln_1p(),
                    in_window / count.max(1.0),
                    (last - self.item_first[iu]) as f64 / (365.0 * 86_400.0),
                    n.ln(),
                    mean,
                    f64::from(plain_scores[rank]),
                    cosine,
                    like_rate,
                    recent_mean,
                    ((last - first) as f64 / 3600.0).ln_1p(),
                ]
            })
            .collect()
    }
}

/// A fitted re-ranker: the serving EASE model, its feature statistics and the tree ensembles.
pub struct RerankModel {
    context: Context,
    boosters: Vec<GradientBooster>,
    candidates: usize,
}

impl std::fmt::Debug for RerankModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RerankModel")
            .field("ease_items", &self.context.ease.n_items())
            .field("ensembles", &self.boosters.len())
            .field("candidates", &self.candidates)
            .finish_non_exhaustive()
    }
}

/// A fitted [`RerankModel`] as plain data, for snapshots (the trees as forust's JSON).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RerankState {
    context: Context,
    boosters: Vec<String>,
    candidates: usize,
}

impl RerankModel {
    /// The model as plain data.
    ///
    /// # Errors
    /// [`ModelError::InvalidParameter`] if a tree ensemble cannot be written.
    pub fn export(&self) -> Result<RerankState, ModelError> {
        let boosters = self
            .boosters
            .iter()
            .map(|b| {
                b.json_dump().map_err(|e| ModelError::InvalidParameter {
                    name: "trees",
                    reason: format!("cannot write a tree ensemble: {e}"),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(RerankState { context: self.context.clone(), boosters, candidates: self.candidates })
    }

    /// The model [`Self::export`] wrote.
    ///
    /// # Errors
    /// [`ModelError::InvalidParameter`] if a tree ensemble does not read back.
    pub fn restore(state: RerankState) -> Result<Self, ModelError> {
        let boosters = state
            .boosters
            .iter()
            .map(|json| {
                GradientBooster::from_json(json).map_err(|e| ModelError::InvalidParameter {
                    name: "trees",
                    reason: format!("cannot read a tree ensemble: {e}"),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { context: state.context, boosters, candidates: state.candidates })
    }

    /// EASE candidates re-ranked per list.
    pub fn candidates(&self) -> usize {
        self.candidates
    }

    /// Tree ensembles trained (0 when the holdout had nothing to learn from: EASE order).
    pub fn ensembles(&self) -> usize {
        self.boosters.len()
    }

    /// Gain importance of each feature, summed over the ensembles, in [`FEATURE_NAMES`] order.
    pub fn feature_importance(&self) -> [f64; N_FEATURES] {
        let mut total = [0.0; N_FEATURES];
        for b in &self.boosters {
            for (f, v) in b.calculate_feature_importance(forust_ml::gradientbooster::ImportanceMethod::TotalGain, false)
            {
                if let Some(t) = total.get_mut(f) {
                    *t += f64::from(v);
                }
            }
        }
        total
    }

    /// The EASE model that proposes the candidates.
    pub fn ease(&self) -> &EaseModel {
        &self.context.ease
    }
}

impl Recommender for RerankModel {
    /// As [`EaseModel::predict`]: the movie's shrunk mean rating.
    fn predict(&self, user: UserId, item: ItemId) -> f32 {
        self.context.ease.predict(user, item)
    }

    /// EASE's best `max(candidates, n)` movies under `query`, re-ordered by the mean tree
    /// ensemble score (log-odds of a like) over the first ensemble's best (see
    /// `RerankModel::rerank`), ties to the smaller movie id.
    fn recommend(&self, user: UserId, query: &Query<'_>) -> Vec<Scored> {
        let Some(u) = self.context.user_ids.index(user) else { return Vec::new() };
        if query.n() == 0 {
            return Vec::new();
        }
        let candidates = self.context.ease.recommend(user, &query.clone().with_n(self.candidates.max(query.n())));
        self.rerank(&self.context.history_of(u), candidates, query.n())
    }
}

impl RerankModel {
    /// Top-N for a user with this history (`(movie, rating, time)`, any order): the live
    /// state's ratings at request time, so a rating just given changes the next list without a
    /// refit. EASE's query is the liked movies of `history`, every movie in it counts as seen,
    /// and the trees' user features come from it too.
    pub fn recommend_for_history(&self, history: &[(ItemId, f32, i64)], query: &Query<'_>) -> Vec<Scored> {
        if query.n() == 0 || history.is_empty() {
            return Vec::new();
        }
        let history = time_ordered(history);
        let rated: Vec<(ItemId, f32)> = history.iter().map(|h| (h.0, h.1)).collect();
        let candidates =
            self.context.ease.recommend_for_ratings(&rated, &query.clone().with_n(self.candidates.max(query.n())));
        self.rerank(&history, candidates, query.n())
    }

    /// Why `item` is recommended to a user with this history: EASE's per-movie shares of its
    /// score (see [`EaseModel::explain_for_ratings`]); only liked movies are cited.
    pub fn explain_for_history(&self, history: &[(ItemId, f32, i64)], item: ItemId, n: usize) -> Vec<Reason> {
        let rated: Vec<(ItemId, f32)> = history.iter().map(|h| (h.0, h.1)).collect();
        self.context.ease.explain_for_ratings(&rated, item, n)
    }

    /// Re-orders `candidates` (EASE's, best first) by the trees and keeps the best `n`: the
    /// first ensemble scores them all, the mean of every ensemble orders the first's best
    /// `max(CASCADE_FACTOR · n, CASCADE_MIN)` (see [`CASCADE_FACTOR`]).
    fn rerank(&self, history: &[(ItemId, f32, i64)], candidates: Vec<Scored>, n: usize) -> Vec<Scored> {
        self.rerank_keeping(history, candidates, n, (CASCADE_FACTOR * n).max(CASCADE_MIN))
    }

    /// [`Self::rerank`] with the later ensembles scoring the first's best `keep` only.
    fn rerank_keeping(
        &self,
        history: &[(ItemId, f32, i64)],
        mut candidates: Vec<Scored>,
        n: usize,
        keep: usize,
    ) -> Vec<Scored> {
        let Some((first, rest)) = self.boosters.split_first() else {
            candidates.truncate(n);
            return candidates;
        };
        if candidates.is_empty() {
            return candidates;
        }
        let rows = self.context.features(history, &candidates);
        let data = column_major(&rows);
        let first_scores = first.predict(&Matrix::new(&data, rows.len(), N_FEATURES), false);
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let keep = keep.max(1);
        // Without a cut the later ensembles read the same matrix; with one, only the kept
        // rows (their order does not matter: the mean orders them below).
        let kept_data;
        let matrix = if rows.len() > keep {
            order.select_nth_unstable_by(keep - 1, |&a, &b| {
                first_scores[b].total_cmp(&first_scores[a]).then(candidates[a].item.cmp(&candidates[b].item))
            });
            order.truncate(keep);
            kept_data = column_major(&order.iter().map(|&i| rows[i]).collect::<Vec<_>>());
            Matrix::new(&kept_data, keep, N_FEATURES)
        } else {
            Matrix::new(&data, rows.len(), N_FEATURES)
        };
        let mut scores: Vec<f64> = order.iter().map(|&i| first_scores[i]).collect();
        for b in rest {
            scores.iter_mut().zip(b.predict(&matrix, false)).for_each(|(s, p)| *s += p);
        }
        let mut ranked: Vec<Scored> = order
            .iter()
            .zip(scores)
            .map(|(&i, s)| Scored { score: (s / self.boosters.len() as f64) as f32, ..candidates[i] })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
        ranked.truncate(n);
        ranked
    }
}

/// Which users of a fixed sample rated each movie, one bitset per movie: every `stride`-th
/// user in id order, at most [`COSINE_USERS`] of them (all users on small data sets).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RaterSample {
    stride: u32,
    words: usize,
    /// `words` words per movie, bit `u / stride` set if sampled user `u` rated it.
    bits: Vec<u64>,
    /// Set bits per movie.
    counts: Vec<u32>,
}

impl RaterSample {
    fn new(ratings: &Ratings, max_users: usize) -> Self {
        let n_users = ratings.n_users();
        let stride = n_users.div_ceil(max_users.max(1)).max(1);
        let words = n_users.div_ceil(stride).div_ceil(64).max(1);
        let mut bits = vec![0u64; ratings.n_items() * words];
        for (&u, &i) in ratings.users().iter().zip(ratings.items()) {
            let u = u as usize;
            if u.is_multiple_of(stride) {
                let bit = u / stride;
                bits[i as usize * words + bit / 64] |= 1 << (bit % 64);
            }
        }
        let counts = bits.chunks(words).map(|w| w.iter().map(|x| x.count_ones()).sum()).collect();
        Self { stride: stride as u32, words, bits, counts }
    }

    /// `common / √(raters(a) · raters(b))` over the sample; 0 if either has no sampled rater.
    fn cosine(&self, a: usize, b: usize) -> f64 {
        let (na, nb) = (self.counts[a], self.counts[b]);
        if na == 0 || nb == 0 {
            return 0.0;
        }
        let row = |i: usize| &self.bits[i * self.words..(i + 1) * self.words];
        let common: u32 = row(a).iter().zip(row(b)).map(|(x, y)| (x & y).count_ones()).sum();
        f64::from(common) / (f64::from(na) * f64::from(nb)).sqrt()
    }
}

/// A history in (time, movie id) order, the order training histories are in.
fn time_ordered(history: &[(ItemId, f32, i64)]) -> Vec<(ItemId, f32, i64)> {
    let mut h = history.to_vec();
    h.sort_by_key(|r| (r.2, r.0));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const ERAS: i64 = 4;
    const CLASSICS: i64 = 24;

    /// Movie `1000·(era + 1) + k` (k < 10) came out in `era` (eras two years apart). Each era
    /// has 30 users who first rate the 24 classics (movies 1–24) and then like 6 movies of
    /// their era (the holdout: the last fifth), one user who has rated only the classics,
    /// and 10 fans who rated only the era's movies. The classics co-occur with every era alike,
    /// so EASE cannot tell a classics user's era; the trees learn from the holdout that the
    /// liked late movies are those rated around the user's time.
    fn eras() -> Ratings {
        let mut rows = Vec::new();
        for era in 0..ERAS {
            let start = 1_000_000_000 + era * 730 * DAY;
            for k in 0..31 {
                let user = era * 100 + k;
                let t = start + k * DAY / 2;
                for c in 1..=CLASSICS {
                    rows.push((user, c, if (c + k) % 3 == 0 { 5.0 } else { 4.0 }, t + c));
                }
                if k < 30 {
                    for j in 0..6 {
                        rows.push((user, 1000 * (era + 1) + (k + j) % 10, 4.5, t + 100 + j));
                    }
                }
            }
            for f in 0..10 {
                let t = start + f * DAY;
                for j in 0..10 {
                    rows.push((era * 100 + 50 + f, 1000 * (era + 1) + (f + j) % 10, 4.0, t + j));
                }
            }
        }
        Ratings::from_rows(rows).unwrap()
    }

    fn era_of(item: ItemId) -> i64 {
        item / 1000 - 1
    }

    /// The cascade: a list is the first ensemble's best `keep` candidates ordered by the mean
    /// of every ensemble, each scored with that mean, as computed here from all candidates'
    /// rows at once; a short list keeps `CASCADE_MIN`.
    #[test]
    fn later_ensembles_average_only_the_first_ensembles_best() {
        let model = Rerank { ensembles: 3, trees: 40, ..Rerank::default() }.fit(&eras()).unwrap();
        assert_eq!(model.ensembles(), 3);
        let n = 6;
        let mut cut_changed_a_list = false;
        for user in [30, 130, 230, 330, 5, 250] {
            let history = model.context.history_of(model.context.user_ids.index(user).unwrap());
            let candidates = model.context.ease.recommend(user, &Query::top(model.candidates.max(n)));
            assert!(candidates.len() > CASCADE_MIN, "user {user}: only {} candidates", candidates.len());
            let rows = model.context.features(&history, &candidates);
            let data = column_major(&rows);
            let matrix = Matrix::new(&data, rows.len(), N_FEATURES);
            let each: Vec<Vec<f64>> = model.boosters.iter().map(|b| b.predict(&matrix, false)).collect();
            let mean = |i: usize| (each.iter().map(|s| s[i]).sum::<f64>() / 3.0) as f32;
            let item = |i: usize| candidates[i].item;
            let expected = |keep: usize| -> Vec<(ItemId, f32)> {
                let mut kept: Vec<usize> = (0..rows.len()).collect();
                kept.sort_by(|&a, &b| each[0][b].total_cmp(&each[0][a]).then(item(a).cmp(&item(b))));
                kept.truncate(keep);
                kept.sort_by(|&a, &b| mean(b).total_cmp(&mean(a)).then(item(a).cmp(&item(b))));
                kept[..n].iter().map(|&i| (item(i), mean(i))).collect()
            };
            let list = |keep: usize| -> Vec<(ItemId, f32)> {
                let got = model.rerank_keeping(&history, candidates.clone(), n, keep);
                got.iter().map(|s| (s.item, s.score)).collect()
            };
            for keep in [n, 8, usize::MAX] {
                assert_eq!(list(keep), expected(keep), "user {user}, keeping {keep}");
            }
            cut_changed_a_list |= list(8) != list(usize::MAX);
            let served: Vec<(ItemId, f32)> =
                model.recommend(user, &Query::top(n)).iter().map(|s| (s.item, s.score)).collect();
            assert_eq!(served, expected(CASCADE_MIN), "user {user}");
        }
        assert!(cut_changed_a_list, "keeping 8 of the candidates changed no list: the test data does not test the cut");
    }

    #[test]
    fn the_trees_learn_what_ease_cannot_see_from_the_temporal_holdout() {
        let ratings = eras();
        let rerank = Rerank { ensembles: 1, trees: 100, ..Rerank::default() };
        let model = rerank.fit(&ratings).unwrap();
        assert_eq!(model.ensembles(), 1);
        let mut ease_wrong = 0;
        for era in 0..ERAS {
            let user = era * 100 + 30;
            let reranked = model.recommend(user, &Query::top(6));
            assert_eq!(reranked.len(), 6);
            assert!(
                reranked.iter().all(|s| era_of(s.item) == era),
                "era {era}: {:?}",
                reranked.iter().map(|s| s.item).collect::<Vec<_>>()
            );
            let ease = model.ease().recommend(user, &Query::top(6));
            ease_wrong += ease.iter().filter(|s| era_of(s.item) != era).count();
        }
        // EASE alone ranks the eras alike (so the test could fail without the trees).
        assert!(ease_wrong >= 6, "EASE alone put only {ease_wrong} other-era movies in the lists");
    }

    #[test]
    fn the_holdout_is_each_users_latest_fifth_and_keeps_only_its_likes() {
        let ratings = Ratings::from_rows([
            // User 1: ten ratings; the last two in time (movies 9 and 3) are held out.
            (1, 1, 4.0, 10),
            (1, 2, 4.0, 11),
            (1, 4, 3.0, 12),
            (1, 5, 4.0, 13),
            (1, 6, 2.0, 14),
            (1, 7, 4.0, 15),
            (1, 8, 4.0, 16),
            (1, 10, 4.0, 17),
            (1, 9, 2.0, 30),
            (1, 3, 5.0, 30),
            // User 2: four ratings, the last (a dislike) held out: no like, so no labels.
            (2, 1, 5.0, 1),
            (2, 2, 5.0, 2),
            (2, 3, 5.0, 3),
            (2, 4, 1.0, 4),
        ])
        .unwrap();
        let (early, late) = temporal_holdout(&ratings, 0.2, 4.0).unwrap();
        let early = early.unwrap();
        assert_eq!(early.len(), 8 + 3);
        let held: Vec<(UserId, ItemId)> = ratings
            .iter()
            .filter(|r| !early.iter().any(|e| e.user == r.user && e.item == r.item))
            .map(|r| (r.user, r.item))
            .collect();
        // Same timestamp: ties go to the smaller movie id, so 3 comes before 9.
        assert_eq!(held, vec![(1, 3), (1, 9), (2, 4)]);
        assert_eq!(late, vec![(1, vec![3])]);
    }

    #[test]
    fn without_held_out_likes_it_ranks_as_ease_and_honours_the_query() {
        // Every held-out rating is a dislike: nothing to learn, EASE order.
        let mut rows = Vec::new();
        for u in 0..20i64 {
            for (k, m) in [1, 2, 3, 4].iter().enumerate() {
                rows.push((u, m + (u % 3), 4.5, k as i64));
            }
            rows.push((u, 50 + u % 2, 1.0, 10));
        }
        let ratings = Ratings::from_rows(rows).unwrap();
        let model = Rerank::default().fit(&ratings).unwrap();
        assert_eq!(model.ensembles(), 0);
        for u in 0..20 {
            assert_eq!(model.recommend(u, &Query::top(3)), model.ease().recommend(u, &Query::top(3)));
        }
        let excluded = model.recommend(0, &Query::top(3).exclude([5]));
        assert!(excluded.iter().all(|s| s.item != 5));
        assert!(model.recommend(999, &Query::top(3)).is_empty());
        assert!(model.recommend(0, &Query::top(0)).is_empty());
    }

    #[test]
    fn bad_settings_are_refused() {
        let ratings = eras();
        for bad in [
            Rerank { holdout: 0.0, ..Rerank::default() },
            Rerank { holdout: 1.0, ..Rerank::default() },
            Rerank { candidates: 0, ..Rerank::default() },
            Rerank { max_leaves: 1, ..Rerank::default() },
            Rerank { trees: 0, ..Rerank::default() },
            Rerank { ensembles: 0, ..Rerank::default() },
            Rerank { colsample: 0.0, ..Rerank::default() },
            Rerank { learning_rate: 0.0, ..Rerank::default() },
            Rerank { subsample: 1.5, ..Rerank::default() },
            Rerank { min_leaf_weight: f32::NAN, ..Rerank::default() },
            Rerank { window_seconds: 0, ..Rerank::default() },
            Rerank { ease: Ease { lambda: -1.0, ..Ease::default() }, ..Rerank::default() },
        ] {
            assert!(matches!(bad.fit(&ratings), Err(ModelError::InvalidParameter { .. })), "{bad:?}");
        }
    }

    #[test]
    fn cosine_and_window_counts() {
        let ratings = Ratings::from_rows([
            (1, 10, 4.0, 0),
            (2, 10, 4.0, 100),
            (3, 10, 4.0, 10 * DAY),
            (1, 20, 4.0, 5),
            (2, 20, 4.0, 5),
            (4, 30, 4.0, 5),
        ])
        .unwrap();
        let ease = Ease { lambda: 1.0, ..Ease::default() }.fit(&ratings).unwrap();
        let ctx = Context::new(&ratings, ease, 4.0, DAY);
        let idx = |m| ratings.item_ids().index(m).unwrap();
        // 10: users {1,2,3}; 20: {1,2}; 30: {4}.
        assert!((ctx.cosine(idx(10), idx(20)) - 2.0 / 6f64.sqrt()).abs() < 1e-12);
        assert_eq!(ctx.cosine(idx(10), idx(30)), 0.0);
        let times = |m| &ctx.item_times[ctx.item_offsets[idx(m) as usize]..ctx.item_offsets[idx(m) as usize + 1]];
        assert_eq!(ctx.in_window(times(10), 0), 2);
        assert_eq!(ctx.in_window(times(10), 10 * DAY), 1);
        assert_eq!(ctx.in_window(&ctx.all_times, 0), 5);

        // A sample of at most 2 of the 4 users: every second user in id order (1 and 3).
        let sample = RaterSample::new(&ratings, 2);
        assert_eq!(sample.stride, 2);
        let cos = |a, b| sample.cosine(idx(a) as usize, idx(b) as usize);
        assert!((cos(10, 20) - 1.0 / 2f64.sqrt()).abs() < 1e-12, "10: {{1, 3}}, 20: {{1}}");
        assert_eq!(cos(10, 30), 0.0, "30's only rater, 4, is not sampled");
    }

    #[test]
    fn the_rater_sample_spans_several_words() {
        // 200 users; movie 1 rated by all, movie 2 by users 0, 64, 128, 192 and movie 3 by
        // users 100..200.
        let mut rows = Vec::new();
        for u in 0..200i64 {
            rows.push((u, 1, 4.0, 0));
            if u % 64 == 0 {
                rows.push((u, 2, 4.0, 0));
            }
            if u >= 100 {
                rows.push((u, 3, 4.0, 0));
            }
        }
        let ratings = Ratings::from_rows(rows).unwrap();
        let sample = RaterSample::new(&ratings, COSINE_USERS);
        assert_eq!((sample.stride, sample.words), (1, 4));
        let i = |m| ratings.item_ids().index(m).unwrap() as usize;
        assert!((sample.cosine(i(1), i(2)) - 4.0 / (200.0f64 * 4.0).sqrt()).abs() < 1e-12);
        assert!((sample.cosine(i(1), i(3)) - 100.0 / (200.0f64 * 100.0).sqrt()).abs() < 1e-12);
        assert!((sample.cosine(i(2), i(3)) - 2.0 / (4.0f64 * 100.0).sqrt()).abs() < 1e-12, "users 128, 192");
    }

    #[test]
    fn a_live_history_ranks_as_the_training_one_and_a_new_like_changes_the_list_at_once() {
        let ratings = eras();
        let model = Rerank { ensembles: 1, trees: 50, ..Rerank::default() }.fit(&ratings).unwrap();
        // Era 1's user who has rated only the classics (in shuffled order: any order is taken).
        let user = 130;
        let mut history: Vec<(ItemId, f32, i64)> =
            ratings.iter().filter(|r| r.user == user).map(|r| (r.item, r.value, r.timestamp)).collect();
        history.reverse();
        let before = model.recommend_for_history(&history, &Query::top(6));
        assert_eq!(before, model.recommend(user, &Query::top(6)));
        // Liking an era-3 movie now, no refit: that movie is seen and the list moves.
        let last = history.iter().map(|h| h.2).max().unwrap();
        history.push((4003, 5.0, last + 3 * 730 * DAY));
        let after = model.recommend_for_history(&history, &Query::top(6));
        assert_ne!(after, before);
        assert!(after.iter().all(|s| s.item != 4003));
        let why = model.explain_for_history(&history, after[0].item, 3);
        assert!(why.iter().all(|r| r.rating >= 4.0 && r.weight > 0.0), "{why:?}");
        assert!(model.recommend_for_history(&[], &Query::top(6)).is_empty());
        // A snapshot's copy answers alike.
        let restored = RerankModel::restore(model.export().unwrap()).unwrap();
        assert_eq!(restored.recommend_for_history(&history, &Query::top(6)), after);
    }
}
