//! The full recompute: the one recommender pipeline that serving's retrain and `evaluate`
//! share. [`Recompute::run`] holds out the latest ratings of a sample of users, fits every
//! batch model on the rest ([`Recompute::fit`]), checks them on the held-out part (RMSE of
//! the batch MF, NDCG@10 of the top-N model) and returns a [`Published`] candidate, which
//! [`Published::engine`] turns into the [`Engine`] serving answers from (the held-out
//! ratings are learned by the online model and read from the live history, so nothing is lost).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::Recommender;
use crate::content::ContentIndex;
use crate::engine::Engine;
use crate::error::ModelError;
use crate::ids::{ItemId, UserId};
use crate::metrics::{Errors, Ranking, rank_user};
use crate::mf::{BiasedMf, MfModel};
use crate::online::{OnlineConfig, OnlineModel};
use crate::popularity::{Popularity, PopularityModel};
use crate::ratings::{Rating, Ratings};
use crate::rerank::{Rerank, RerankModel};
use crate::similarity::ItemSimilarity;
use crate::svd::{PureSvd, TruncatedSvd};
use crate::topn::Query;

/// The list length the holdout's ranking metric scores (NDCG@10, as protocol C).
pub const HOLDOUT_K: usize = 10;

/// Most held-out users whose lists are scored (an even sample beyond: at ml-25m's size 10%
/// of users is 16k lists, a minute of the retrain, for no steadier a figure).
const RANKING_USERS: usize = 2_000;

/// What the periodic recompute fits and how it checks it; construct with
/// [`Recompute::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recompute {
    mf: BiasedMf,
    svd: TruncatedSvd,
    popularity: Popularity,
    similarity_shrink: f32,
    top_n: Rerank,
    holdout: Holdout,
}

/// Which ratings the check holds out: the latest `fraction` (in time order, ties to the
/// smaller movie id) of the ratings of a fixed hash-chosen `users` share of users, so
/// successive retrains check on comparable holdouts and the check asks what protocol C asks
/// (the rest of a user's session).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Holdout {
    /// Share of users held out (default 0.1; 0 checks nothing). In [0, 1).
    pub users: f64,
    /// Share of each held-out user's ratings (default 0.2). In (0, 1).
    pub fraction: f64,
}

impl Default for Holdout {
    fn default() -> Self {
        Self { users: 0.1, fraction: 0.2 }
    }
}

impl Holdout {
    /// Whether `user`'s latest ratings are held out: a fixed hash of the id.
    pub fn holds(&self, user: UserId) -> bool {
        let mut x = (user as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        (x as f64 / u64::MAX as f64) < self.users
    }

    /// Splits `rows` into (kept, held out); the held-out part in time order.
    pub fn split(&self, rows: Vec<Rating>) -> (Vec<Rating>, Vec<Rating>) {
        let mut by_user: HashMap<UserId, Vec<Rating>> = HashMap::new();
        let mut kept = Vec::with_capacity(rows.len());
        for r in rows {
            if self.holds(r.user) {
                by_user.entry(r.user).or_default().push(r);
            } else {
                kept.push(r);
            }
        }
        let mut held = Vec::new();
        for (_, mut row) in by_user {
            row.sort_by_key(|r| (r.timestamp, r.item));
            let keep = ((1.0 - self.fraction) * row.len() as f64).floor() as usize;
            held.extend(row.drain(keep.max(1).min(row.len())..));
            kept.extend(row);
        }
        held.sort_by_key(|r| (r.timestamp, r.user, r.item));
        (kept, held)
    }
}

/// Builder of [`Recompute`]; every part defaults to its own builder's defaults.
#[derive(Debug, Clone)]
pub struct RecomputeBuilder {
    mf: Option<BiasedMf>,
    svd: Option<TruncatedSvd>,
    popularity: Option<Popularity>,
    similarity_shrink: f32,
    top_n: Rerank,
    holdout: Holdout,
}

impl RecomputeBuilder {
    /// The batch MF hyper-parameters.
    pub fn mf(mut self, mf: BiasedMf) -> Self {
        self.mf = Some(mf);
        self
    }

    /// The truncated SVD hyper-parameters.
    pub fn svd(mut self, svd: TruncatedSvd) -> Self {
        self.svd = Some(svd);
        self
    }

    /// The popularity and trending hyper-parameters.
    pub fn popularity(mut self, popularity: Popularity) -> Self {
        self.popularity = Some(popularity);
        self
    }

    /// Support damping of item–item similarity (default 20 ratings, see
    /// [`ItemSimilarity::from_factors`]).
    pub fn similarity_shrink(mut self, shrink: f32) -> Self {
        self.similarity_shrink = shrink;
        self
    }

    /// The top-N model: EASE re-ranked by trees (default: the tuned [`Rerank`], the best
    /// model of protocol C).
    pub fn top_n(mut self, top_n: Rerank) -> Self {
        self.top_n = top_n;
        self
    }

    /// What [`Recompute::run`] holds out to check the models.
    pub fn holdout(mut self, holdout: Holdout) -> Self {
        self.holdout = holdout;
        self
    }

    /// Fills in defaults and validates.
    ///
    /// # Errors
    /// [`ModelError::InvalidParameter`] from a default builder, for a negative shrink or a
    /// holdout share out of range.
    pub fn build(self) -> Result<Recompute, ModelError> {
        if !(self.similarity_shrink.is_finite() && self.similarity_shrink >= 0.0) {
            return Err(ModelError::InvalidParameter { name: "similarity_shrink", reason: "must be >= 0".into() });
        }
        if !((0.0..1.0).contains(&self.holdout.users) && self.holdout.fraction > 0.0 && self.holdout.fraction < 1.0) {
            return Err(ModelError::InvalidParameter {
                name: "holdout",
                reason: format!("users must be in [0, 1) and fraction in (0, 1), got {:?}", self.holdout),
            });
        }
        Ok(Recompute {
            mf: self.mf.map_or_else(|| BiasedMf::builder().build(), Ok)?,
            svd: self.svd.map_or_else(|| TruncatedSvd::builder().build(), Ok)?,
            popularity: self.popularity.map_or_else(|| Popularity::builder().build(), Ok)?,
            similarity_shrink: self.similarity_shrink,
            top_n: self.top_n,
            holdout: self.holdout,
        })
    }
}

/// Everything the periodic recompute produces.
#[derive(Debug, Clone)]
pub struct BatchModels {
    /// Biased MF: rating prediction, and the base of the next online model.
    pub mf: MfModel,
    /// PureSVD: top-N scores and movie embeddings.
    pub svd: PureSvd,
    /// "Similar movies" from the MF movie factors: on ml-latest-small they give Toy Story
    /// → Aladdin, Toy Story 2, Toy Story 3, Finding Nemo, The Incredibles; the same space as
    /// the online model's, so batch and live similarity agree.
    pub similarity: ItemSimilarity,
    /// Popular and trending lists for cold start.
    pub popularity: PopularityModel,
    /// Personal top-N lists: EASE candidates re-ranked by trees, folding in the user's live
    /// history at request time.
    pub top_n: Arc<RerankModel>,
}

/// How the candidate did on the held-out ratings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HoldoutReport {
    /// RMSE of the batch MF's predictions (clipped to the training range).
    pub rmse: f64,
    /// MAE, likewise.
    pub mae: f64,
    /// RMSE of the training ratings' mean on the same ratings: the floor the MF must clear.
    pub mean_rmse: f64,
    /// Held-out ratings.
    pub ratings: u64,
    /// NDCG@10 of the top-N model's lists for the held-out users against their held-out
    /// likes (protocol C's definition); `None` when no held-out user liked anything.
    pub ndcg_at_10: Option<f64>,
    /// HitRate@10 of the same lists.
    pub hit_rate_at_10: Option<f64>,
    /// NDCG@10 of the popularity model's lists for the same users: the floor a personal
    /// model must clear on this very holdout (figures from different holdouts move by more
    /// than models differ).
    pub popularity_ndcg_at_10: Option<f64>,
    /// Users the ranking metrics average over.
    pub ranking_users: u64,
}

/// What the retrain gate decides about a candidate.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Swap it in.
    Accept,
    /// Swap it in with personal lists off: they lose to the popularity list, otherwise sound.
    ListsLose(String),
    /// Keep it out, for this reason.
    KeepOut(String),
}

impl HoldoutReport {
    /// The retrain gate, which serving applies before a swap and `evaluate --protocol
    /// stream-topn` replays. Both checks compare on the candidate's own holdout: its MF against
    /// the training mean, its lists against the popularity list for the same users. (Comparing
    /// with the serving model's figures compares two holdouts: as users rate, their held-out
    /// latest ratings move, and on the demo's replay the same model's RMSE moved 2–6% and its
    /// NDCG@10 0.148 → 0.128 between retrains; a tolerance on that comparison kept good models
    /// out.)
    ///
    /// A candidate whose lists lose to the popularity list is kept out, except while nothing
    /// trained serves yet (`serving_nothing`): the empty start-up model knows no stored
    /// rating, so keeping it out on a store whose personal lists lose to popularity (the
    /// synthetic 25 M release) would leave every user unknown (their pages 404, their lists
    /// repeat movies they rated). Then it is swapped in with personal lists off, which is what
    /// the holdout says serves them best.
    pub fn verdict(&self, serving_nothing: bool) -> Verdict {
        if self.rmse >= self.mean_rmse {
            return Verdict::KeepOut(format!(
                "holdout RMSE {:.4} does not beat the training mean's {:.4}",
                self.rmse, self.mean_rmse
            ));
        }
        if let (Some(n), Some(p)) = (self.ndcg_at_10, self.popularity_ndcg_at_10)
            && n < p
        {
            let reason = format!("holdout NDCG@10 {n:.4} is below the popularity list's {p:.4} on the same users");
            return if serving_nothing { Verdict::ListsLose(reason) } else { Verdict::KeepOut(reason) };
        }
        Verdict::Accept
    }
}

/// A fitted and checked candidate, ready to publish.
#[derive(Debug, Clone)]
pub struct Published {
    /// The batch models, fitted on `ratings`.
    pub models: BatchModels,
    /// The ratings they were fitted on (the online model starts from them).
    pub ratings: Ratings,
    /// The held-out ratings, in time order.
    pub held: Vec<Rating>,
    /// The check; `None` when nothing was held out.
    pub holdout: Option<HoldoutReport>,
}

impl Published {
    /// The engine serving answers from: an online model re-based on the batch MF that then
    /// learns the held-out ratings as events (so the live history holds every rating), with
    /// the batch models behind it.
    ///
    /// # Errors
    /// [`ModelError::CapacityExceeded`] if the catalogue exceeds the online model's capacity.
    pub fn engine(self, online: OnlineConfig, content: Arc<ContentIndex>) -> Result<Engine, ModelError> {
        let model = OnlineModel::from_batch(online, &self.models.mf, &self.ratings)?;
        for r in &self.held {
            let _ = model.update(r.user, r.item, r.value, r.timestamp);
        }
        Ok(Engine::new(model, Arc::new(self.models), content))
    }
}

impl Recompute {
    /// A builder with every part at its defaults.
    pub fn builder() -> RecomputeBuilder {
        RecomputeBuilder {
            mf: None,
            svd: None,
            popularity: None,
            similarity_shrink: 20.0,
            top_n: Rerank::default(),
            holdout: Holdout::default(),
        }
    }

    /// The top-N model's settings.
    pub fn top_n(&self) -> &Rerank {
        &self.top_n
    }

    /// The batch MF's settings.
    pub fn mf(&self) -> &BiasedMf {
        &self.mf
    }

    /// The popularity settings.
    pub fn popularity(&self) -> &Popularity {
        &self.popularity
    }

    /// Support damping of item–item similarity.
    pub fn similarity_shrink(&self) -> f32 {
        self.similarity_shrink
    }

    /// What [`Self::run`] holds out.
    pub fn holdout(&self) -> Holdout {
        self.holdout
    }

    /// Fit, check, publish: holds out the latest ratings of a sample of users (see
    /// [`Holdout`]), fits every model on the rest and scores them on the held-out part.
    ///
    /// # Errors
    /// [`ModelError::EmptyRatings`] or any model's fitting error.
    pub fn run(&self, rows: Vec<Rating>) -> Result<Published, ModelError> {
        let (mut kept, mut held) = self.holdout.split(rows);
        if kept.is_empty() {
            // Too little data to hold any out: train on all of it.
            kept.append(&mut held);
        }
        let ratings = Ratings::from_rows(kept)?;
        let models = self.fit(&ratings)?;
        let holdout = (!held.is_empty()).then(|| check(&models, &ratings, &held));
        Ok(Published { models, ratings, held, holdout })
    }

    /// Fits every model on `ratings`. MF and the SVD run on a second thread while the top-N
    /// model and popularity run on this one; each is seeded, so the result does not depend on
    /// scheduling.
    ///
    /// # Errors
    /// [`ModelError::EmptyRatings`], or [`ModelError::Diverged`] from MF.
    pub fn fit(&self, ratings: &Ratings) -> Result<BatchModels, ModelError> {
        if ratings.is_empty() {
            return Err(ModelError::EmptyRatings);
        }
        std::thread::scope(|scope| {
            let factors = scope.spawn(|| Ok::<_, ModelError>((self.mf.fit(ratings)?, self.svd.fit(ratings)?)));
            let top_n = Arc::new(self.top_n.fit(ratings)?);
            let popularity = self.popularity.fit(ratings)?;
            let (mf, svd) = factors.join().unwrap_or_else(|e| std::panic::resume_unwind(e))?;
            let counts = ratings.item_counts();
            let similarity = ItemSimilarity::from_factors(
                ratings.item_ids().clone(),
                mf.item_factors(),
                Some(&counts),
                self.similarity_shrink,
            );
            Ok(BatchModels { mf, svd, similarity, popularity, top_n })
        })
    }
}

/// Scores `models` (fitted on `ratings`) on the held-out ratings.
fn check(models: &BatchModels, ratings: &Ratings, held: &[Rating]) -> HoldoutReport {
    let (lo, hi) = ratings.value_range().unwrap_or((f32::MIN, f32::MAX));
    let (mut errors, mut mean_errors) = (Errors::default(), Errors::default());
    let mean = ratings.global_mean();
    let mut liked: HashMap<UserId, HashSet<ItemId>> = HashMap::new();
    let threshold = models.top_n.ease().positive_threshold();
    for r in held {
        errors.add(models.mf.predict(r.user, r.item).clamp(lo, hi), r.value);
        mean_errors.add(mean, r.value);
        if r.value >= threshold {
            liked.entry(r.user).or_default().insert(r.item);
        }
    }
    let (mut ranking, mut popular) = (Ranking::default(), Ranking::default());
    let mut users: Vec<&UserId> = liked.keys().collect();
    users.sort_unstable();
    let step = users.len().div_ceil(RANKING_USERS).max(1);
    for user in users.into_iter().step_by(step) {
        let query = Query::top(HOLDOUT_K);
        let list: Vec<ItemId> = models.top_n.recommend(*user, &query).into_iter().map(|s| s.item).collect();
        ranking.add(&list, rank_user(&list, &liked[user], HOLDOUT_K));
        let list: Vec<ItemId> = models.popularity.recommend(*user, &query).into_iter().map(|s| s.item).collect();
        popular.add(&list, rank_user(&list, &liked[user], HOLDOUT_K));
    }
    let means = (ranking.users() > 0).then(|| ranking.means());
    HoldoutReport {
        rmse: errors.rmse(),
        mae: errors.mae(),
        mean_rmse: mean_errors.rmse(),
        ratings: errors.len(),
        ndcg_at_10: means.map(|m| m.ndcg),
        hit_rate_at_10: means.map(|m| m.hit),
        popularity_ndcg_at_10: means.map(|_| popular.means().ndcg),
        ranking_users: ranking.users() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(rmse: f64, ndcg: Option<f64>) -> HoldoutReport {
        HoldoutReport {
            rmse,
            mae: 0.7,
            mean_rmse: 1.0,
            ratings: 100,
            ndcg_at_10: ndcg,
            hit_rate_at_10: None,
            popularity_ndcg_at_10: Some(0.05),
            ranking_users: 50,
        }
    }

    fn kept_out(v: &Verdict) -> &str {
        match v {
            Verdict::KeepOut(reason) => reason,
            other => panic!("kept out expected, got {other:?}"),
        }
    }

    #[test]
    fn a_candidate_that_loses_to_a_baseline_on_its_own_holdout_is_kept_out() {
        assert_eq!(h(0.90, Some(0.15)).verdict(false), Verdict::Accept);
        assert_eq!(h(0.99, Some(0.06)).verdict(false), Verdict::Accept, "beats both baselines, if narrowly");
        assert!(kept_out(&h(1.0, Some(0.20)).verdict(false)).contains("training mean"));
        assert!(kept_out(&h(0.85, Some(0.04)).verdict(false)).contains("popularity"));
        assert_eq!(h(0.85, None).verdict(false), Verdict::Accept, "no ranking figure to compare");
    }

    #[test]
    fn with_nothing_served_yet_lists_below_popularity_still_bring_the_users_in() {
        let Verdict::ListsLose(reason) = h(0.85, Some(0.04)).verdict(true) else { panic!("swapped in, lists off") };
        assert!(reason.contains("popularity"), "{reason}");
        // A bad rating model stays out even then.
        assert!(kept_out(&h(1.0, Some(0.04)).verdict(true)).contains("training mean"));
        assert_eq!(h(0.85, Some(0.15)).verdict(true), Verdict::Accept);
    }

    /// 40 users in two tastes over movies 1–20 (odd or even), each rating in time order.
    fn rows() -> Vec<Rating> {
        let mut rows = Vec::new();
        for u in 1..=40i64 {
            for (k, m) in (1..=20i64).filter(|m| m % 2 == u % 2).enumerate() {
                let value = if (u + m) % 5 == 0 { 2.0 } else { 4.5 };
                rows.push(Rating { user: u, item: m, value, timestamp: 1_000 * u + k as i64 });
            }
        }
        rows
    }

    fn small() -> Recompute {
        Recompute::builder()
            .mf(BiasedMf::builder().factors(4).epochs(5).build().unwrap())
            .svd(TruncatedSvd::builder().rank(3).build().unwrap())
            .top_n(Rerank { trees: 20, ensembles: 1, ..Rerank::default() })
            .holdout(Holdout { users: 0.5, fraction: 0.2 })
            .build()
            .unwrap()
    }

    #[test]
    fn the_holdout_is_the_latest_fifth_of_a_fixed_sample_of_users() {
        let holdout = Holdout { users: 0.5, fraction: 0.2 };
        let (kept, held) = holdout.split(rows());
        assert_eq!(kept.len() + held.len(), rows().len());
        let held_users: HashSet<UserId> = held.iter().map(|r| r.user).collect();
        assert!((10..=30).contains(&held_users.len()), "{}", held_users.len());
        for u in 1..=40 {
            let mine: Vec<&Rating> = held.iter().filter(|r| r.user == u).collect();
            assert_eq!(mine.len(), if holdout.holds(u) { 2 } else { 0 }, "user {u}");
            // The held-out ones are the user's latest.
            let last_kept = kept.iter().filter(|r| r.user == u).map(|r| r.timestamp).max().unwrap();
            assert!(mine.iter().all(|r| r.timestamp > last_kept));
        }
        assert!(held.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        assert_eq!(Holdout { users: 0.0, fraction: 0.2 }.split(rows()).1.len(), 0);
    }

    #[test]
    fn run_checks_rmse_and_ndcg_and_the_engine_knows_every_rating() {
        let published = small().run(rows()).unwrap();
        let report = published.holdout.expect("ratings were held out");
        assert_eq!(report.ratings as usize, published.held.len());
        assert!(report.rmse.is_finite() && report.rmse < 2.5, "{report:?}");
        assert!(report.mean_rmse.is_finite(), "{report:?}");
        let ndcg = report.ndcg_at_10.expect("held-out likes");
        // The tastes are separable: the held-out likes of a user rank near the top.
        assert!(ndcg > 0.5, "{report:?}");
        assert!(report.popularity_ndcg_at_10.is_some_and(|p| p < ndcg), "{report:?}");
        assert_eq!(published.ratings.len() + published.held.len(), rows().len());
        let held = published.held.clone();
        let engine =
            published.engine(OnlineModel::builder().build().unwrap(), Arc::new(ContentIndex::default())).unwrap();
        for r in &held {
            assert!(engine.history(r.user).iter().any(|h| h.0 == r.item && h.1 == r.value), "{r:?}");
        }
        assert!(engine.top_n().is_some());
    }

    #[test]
    fn bad_holdouts_are_refused() {
        for holdout in [Holdout { users: 1.0, fraction: 0.2 }, Holdout { users: 0.1, fraction: 0.0 }] {
            assert!(Recompute::builder().holdout(holdout).build().is_err(), "{holdout:?}");
        }
    }
}
