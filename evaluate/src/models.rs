//! The models `evaluate` can run, selectable by name, with the hyper-parameters each protocol
//! uses. Batch models implement [`Recommender`]; prequential models implement [`Learner`].

use std::fmt;
use std::str::FromStr;

use model::{
    BiasedMf, Centring, Ease, ItemId, KnnBaseline, LinearBlend, ModelError, OnlineConfig, OnlineModel, Popularity,
    Query, Rating, Ratings, Recommender, Rerank, Scored, SgdParams, TruncatedSvd, Update, UserId,
};
use serde_json::{Value, json};

use crate::Protocol;
use crate::metrics::clip;

/// A model selectable with `--model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelName {
    /// The mean of the training ratings (running mean in prequential).
    GlobalMean,
    /// User and movie biases fitted by alternating least squares (Surprise's BaselineOnly).
    Baseline,
    /// Batch biased MF ([`model::BiasedMf`]).
    Mf,
    /// Item-based neighbourhood on the baselines ([`model::KnnBaseline`], Surprise's KNNBaseline).
    KnnBaseline,
    /// Least-squares blend of `mf` and `knn-baseline` ([`model::LinearBlend`]).
    Blend,
    /// The live per-event biased MF ([`model::OnlineModel`]) with the prequential settings:
    /// 16 factors, fast factor steps, warming bias rates.
    Online,
    /// [`model::OnlineModel`] with River's BiasedMF settings (the prequential anchor).
    OnlineRiver,
    /// [`model::OnlineModel`] with the defaults `serving` uses on top of a batch model.
    OnlineServing,
    /// PureSVD ([`model::TruncatedSvd`]).
    PureSvd,
    /// EASE on the liked (≥ 4.0) ratings ([`model::Ease`]), each liked movie weighted
    /// `rating − 3` in the query; top-N only.
    Ease,
    /// Plain EASE: every liked movie weighs 1 in the query; top-N only.
    EasePlain,
    /// `ease`'s best 100 movies re-ranked by gradient-boosted trees trained on a temporal
    /// holdout of the training data ([`model::Rerank`]); top-N only.
    EaseRerank,
    /// Most-liked movies ([`model::Popularity`]).
    Popularity,
    /// Most recently liked movies ([`model::PopularityModel::trending`], likes halving every 60
    /// days): what serving shows a user without history; stream-topn only, since a fixed
    /// "now" (the last training rating) is all it can mean on a static split.
    Trending,
    /// What serving answers with: the production pipeline ([`model::Recompute::run`]: fit on
    /// all but a holdout, check, publish) and its [`model::Engine`], whose lists come from the
    /// top-N model over each user's live history; top-N only.
    Served,
}

impl ModelName {
    /// Every model, in report order.
    pub const ALL: [ModelName; 15] = [
        ModelName::GlobalMean,
        ModelName::Baseline,
        ModelName::Mf,
        ModelName::KnnBaseline,
        ModelName::Blend,
        ModelName::Online,
        ModelName::OnlineRiver,
        ModelName::OnlineServing,
        ModelName::PureSvd,
        ModelName::Ease,
        ModelName::EasePlain,
        ModelName::EaseRerank,
        ModelName::Popularity,
        ModelName::Trending,
        ModelName::Served,
    ];

    /// The `--model` name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelName::GlobalMean => "global-mean",
            ModelName::Baseline => "baseline",
            ModelName::Mf => "mf",
            ModelName::KnnBaseline => "knn-baseline",
            ModelName::Blend => "blend",
            ModelName::Online => "online",
            ModelName::OnlineRiver => "online-river",
            ModelName::OnlineServing => "online-serving",
            ModelName::PureSvd => "pure-svd",
            ModelName::Ease => "ease",
            ModelName::EasePlain => "ease-plain",
            ModelName::EaseRerank => "ease-rerank",
            ModelName::Popularity => "popularity",
            ModelName::Trending => "trending",
            ModelName::Served => "served",
        }
    }

    /// Whether the model can run under `protocol`: batch models for cv and top-N, per-event
    /// learners for prequential (a constant global mean is no ranking, so not in top-N). The
    /// neighbourhood model and the blend predict ratings: ranking a whole catalogue with them
    /// costs a list merge per movie and rating predictors rank poorly anyway, so cv only. EASE
    /// ranks but predicts no rating (its predictions are movie means), so top-N only.
    ///
    /// Stream-topn takes the models whose lists follow a user's live history as serving's do:
    /// the rankers that fold a history in (PureSVD, EASE, the re-ranker, `served`), the
    /// non-personal lists and the live factor models; `mf` and `baseline` keep a user's factors
    /// or bias fixed until the next refit, so serving never answers from them, and River's
    /// settings are there to reproduce its prequential anchor only.
    pub fn applies_to(self, protocol: Protocol) -> bool {
        use ModelName::{Ease, EasePlain, EaseRerank, Online, OnlineServing, Popularity, PureSvd, Served, Trending};
        match protocol {
            Protocol::Cv => !self.is_online() && !matches!(self, Ease | EasePlain | EaseRerank | Served | Trending),
            Protocol::Prequential => self == ModelName::GlobalMean || self.is_online(),
            Protocol::TopN => {
                !matches!(self, ModelName::GlobalMean | ModelName::KnnBaseline | ModelName::Blend | Trending)
                    && !self.is_online()
            }
            Protocol::StreamTopN => matches!(
                self,
                Online | OnlineServing | PureSvd | Ease | EasePlain | EaseRerank | Popularity | Trending | Served
            ),
        }
    }

    fn is_online(self) -> bool {
        matches!(self, ModelName::Online | ModelName::OnlineRiver | ModelName::OnlineServing)
    }

    /// The models of `protocol`, in report order.
    pub fn defaults(protocol: Protocol) -> Vec<ModelName> {
        Self::ALL.into_iter().filter(|m| m.applies_to(protocol)).collect()
    }

    /// Fits a batch model on `train` with the hyper-parameters of `protocol`; returns it and
    /// its parameters as JSON.
    ///
    /// # Errors
    /// The model's fitting error, or [`ModelError::InvalidParameter`] for a model that is not
    /// a batch model.
    pub fn fit(self, train: &Ratings, protocol: Protocol) -> Result<(Box<dyn Recommender>, Value), ModelError> {
        Ok(match self {
            ModelName::GlobalMean => (Box::new(GlobalMean { mean: train.global_mean() }), json!({})),
            ModelName::Baseline => {
                let b = model::Baseline::default();
                let params = json!({"epochs": b.epochs, "reg_user": b.reg_user, "reg_item": b.reg_item});
                (Box::new(b.fit(train)?), params)
            }
            ModelName::Mf => {
                let mf = BiasedMf::builder().build()?;
                (Box::new(mf.fit(train)?), mf_params(&mf))
            }
            ModelName::KnnBaseline => {
                let knn = KnnBaseline::default();
                (Box::new(knn.fit(train)?), knn_params(&knn))
            }
            ModelName::Blend => {
                let (mf, knn) = (BiasedMf::builder().build()?, KnnBaseline::default());
                let fit_mf = |r: &Ratings| Ok(Box::new(mf.fit(r)?) as Box<dyn Recommender>);
                let fit_knn = |r: &Ratings| Ok(Box::new(knn.fit(r)?) as Box<dyn Recommender>);
                let blend = LinearBlend::default();
                let model = blend.fit(train, &[("mf", &fit_mf), ("knn-baseline", &fit_knn)])?;
                let weights: serde_json::Map<String, Value> =
                    model.weights().into_iter().map(|(n, w)| (n.to_owned(), json!(w))).collect();
                let params = json!({
                    "members": {"mf": mf_params(&mf), "knn-baseline": knn_params(&knn)},
                    "holdout": blend.holdout, "seed": blend.seed, "ridge": blend.ridge,
                    "intercept": model.intercept(), "weights": weights,
                });
                (Box::new(model), params)
            }
            ModelName::PureSvd => {
                let (svd, params) = pure_svd(protocol)?;
                (Box::new(svd.fit(train)?), params)
            }
            ModelName::Ease | ModelName::EasePlain => {
                let (ease, params) = self.ease();
                (Box::new(ease.fit(train)?), params)
            }
            ModelName::EaseRerank => {
                // Chosen on the inner split (see `model::rerank` and BENCHMARKS.md).
                let r = Rerank::default();
                let model = r.fit(train)?;
                let params = rerank_params(&r, &model);
                (Box::new(model), params)
            }
            ModelName::Served => {
                let pipeline = model::Recompute::builder().build()?;
                let published = pipeline.run(train.iter().collect())?;
                let params = served_params(&pipeline, published.holdout.as_ref());
                let engine = published
                    .engine(OnlineModel::builder().build()?, std::sync::Arc::new(model::ContentIndex::default()))?;
                (Box::new(engine), params)
            }
            ModelName::Popularity => {
                let (p, params) = popularity()?;
                (Box::new(p.fit(train)?), params)
            }
            ModelName::Trending => {
                return Err(ModelError::InvalidParameter {
                    name: "model",
                    reason: "trending is evaluated by stream-topn only".into(),
                });
            }
            ModelName::Online | ModelName::OnlineRiver | ModelName::OnlineServing => {
                return Err(ModelError::InvalidParameter {
                    name: "model",
                    reason: "online is evaluated prequentially only".into(),
                });
            }
        })
    }

    /// The online model's settings under each name. `online`'s were chosen on the first 20% of
    /// the prequential stream (BENCHMARKS.md lists the grid); River's are its BiasedMF anchor's
    /// (its squared loss' gradient is 2·error, so its rates 0.025 / 0.05 are 0.05 / 0.1 here).
    pub(crate) fn online_config(self) -> Result<OnlineConfig, ModelError> {
        let sgd = |lr_bias, lr_factor, reg_factor| SgdParams {
            lr_bias,
            lr_factor,
            reg_bias: 0.0,
            reg_factor,
            ..SgdParams::default()
        };
        match self {
            ModelName::OnlineRiver => OnlineModel::builder()
                .factors(10)
                .init_std(0.1)
                .sgd(sgd(0.05, 0.1, 0.0))
                .no_bias_warmup()
                .prior_mean(0.0)
                .build(),
            ModelName::OnlineServing => OnlineModel::builder().build(),
            _ => OnlineModel::builder().factors(16).init_std(0.05).sgd(sgd(0.05, 0.15, 0.01)).bias_warmup(5.0).build(),
        }
    }

    /// A fresh per-event learner and its parameters as JSON, or `None` for a batch-only model.
    ///
    /// # Errors
    /// The model's configuration error.
    pub fn learner(self) -> Result<Option<NewLearner>, ModelError> {
        Ok(match self {
            ModelName::GlobalMean => Some((Box::new(RunningMean::default()), json!({}))),
            ModelName::Online | ModelName::OnlineRiver | ModelName::OnlineServing => {
                let config = self.online_config()?;
                let params = online_params(&config);
                Some((Box::new(OnlineModel::new(config)), params))
            }
            _ => None,
        })
    }

    /// `ease`'s or `ease-plain`'s settings and their parameters as JSON.
    pub(crate) fn ease(self) -> (Ease, Value) {
        // λ = 100 and the query weighting were chosen on the inner split (see `model::ease`).
        let mut ease = Ease::default();
        if self == ModelName::EasePlain {
            ease.query_offset = None;
        }
        let params = json!({"lambda": ease.lambda, "positive": ease.positive_threshold,
            "max_items": ease.max_items, "query_offset": ease.query_offset});
        (ease, params)
    }
}

/// `pure-svd`'s settings under `protocol` and their parameters as JSON.
pub(crate) fn pure_svd(protocol: Protocol) -> Result<(TruncatedSvd, Value), ModelError> {
    // Raw stars rank best for top-N (see `Centring::None`); centred ratings predict.
    let (rank, centring) = match protocol {
        Protocol::TopN | Protocol::StreamTopN => (16, Centring::None),
        Protocol::Cv | Protocol::Prequential => (32, Centring::Global),
    };
    let svd = TruncatedSvd::builder().rank(rank).centring(centring).build()?;
    let params =
        json!({"rank": rank, "centring": format!("{centring:?}"), "oversample": 16, "power_iters": 3, "seed": 42});
    Ok((svd, params))
}

/// `popularity`'s settings (likes are ratings ≥ 4.0) and their parameters as JSON.
pub(crate) fn popularity() -> Result<(Popularity, Value), ModelError> {
    Ok((Popularity::builder().positive_threshold(4.0).build()?, json!({"positive": 4.0})))
}

/// The parameters of a fitted `ease-rerank` as JSON, with each feature's share of the gain.
pub(crate) fn rerank_params(r: &Rerank, model: &model::RerankModel) -> Value {
    let importance: serde_json::Map<String, Value> = model::rerank::FEATURE_NAMES
        .iter()
        .zip(model.feature_importance())
        .map(|(n, g)| ((*n).to_owned(), json!((g * 10.0).round() / 10.0)))
        .collect();
    json!({
        "ease": {"lambda": r.ease.lambda, "positive": r.ease.positive_threshold,
            "query_offset": r.ease.query_offset},
        "candidates": r.candidates, "holdout": r.holdout, "trees": r.trees,
        "learning_rate": r.learning_rate, "max_leaves": r.max_leaves,
        "min_leaf_weight": r.min_leaf_weight, "subsample": r.subsample, "colsample": r.colsample,
        "ensembles": model.ensembles(), "window_days": r.window_seconds / 86_400, "seed": r.seed,
        "feature_gain": importance,
    })
}

/// The parameters of a `served` pipeline run as JSON: its holdout and what it measured there.
pub(crate) fn served_params(pipeline: &model::Recompute, holdout: Option<&model::HoldoutReport>) -> Value {
    let h = pipeline.holdout();
    json!({
        "holdout_users": h.users, "holdout_fraction": h.fraction,
        "holdout_ndcg@10": holdout.and_then(|h| h.ndcg_at_10),
        "holdout_rmse": holdout.map(|h| h.rmse),
    })
}

/// An online model's settings as JSON.
pub(crate) fn online_params(config: &OnlineConfig) -> Value {
    let sgd = config.sgd();
    json!({
        "factors": config.factors(), "lr_bias": sgd.lr_bias, "lr_factor": sgd.lr_factor,
        "reg_bias": sgd.reg_bias, "reg_factor": sgd.reg_factor, "bias_warmup": config.bias_warmup(),
        "init_std": config.init_std(), "seed": 42,
    })
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
            format!("unknown model {s:?}; expected one of {}", names.join(", "))
        })
    }
}

fn mf_params(mf: &BiasedMf) -> Value {
    let sgd = mf.sgd();
    json!({
        "factors": mf.factors(), "epochs": mf.epochs(), "lr_bias": sgd.lr_bias, "lr_factor": sgd.lr_factor,
        "reg_bias": sgd.reg_bias, "reg_factor": sgd.reg_factor, "lr_decay": 0.95, "seed": 42,
    })
}

fn knn_params(knn: &KnnBaseline) -> Value {
    json!({
        "k": knn.k, "shrink": knn.shrink, "min_k": knn.min_k, "similarity": "pearson_baseline",
        "baseline": {"epochs": knn.baseline.epochs, "reg_user": knn.baseline.reg_user, "reg_item": knn.baseline.reg_item},
    })
}

/// A fresh prequential learner and its hyper-parameters as JSON.
pub type NewLearner = (Box<dyn Learner>, Value);

/// A model that predicts, then learns, one rating at a time (protocol B).
pub trait Learner {
    /// The prediction for `rating`'s pair from the state before it (clipped by the caller),
    /// then learns the rating: one prequential test.
    ///
    /// # Errors
    /// The model's rejection of the rating.
    fn predict_then_learn(&mut self, rating: &Rating) -> Result<f32, ModelError>;
}

impl Learner for OnlineModel {
    /// One locked pass: `update` reports the prediction it made before stepping.
    fn predict_then_learn(&mut self, r: &Rating) -> Result<f32, ModelError> {
        match self.update(r.user, r.item, r.value, r.timestamp)? {
            Update::Applied { prediction, .. } => Ok(prediction),
            // Nothing was learned, so the state is still the one before the event.
            Update::Duplicate | Update::Outdated => Ok(Recommender::predict(self, r.user, r.item)),
        }
    }
}

/// The mean of the ratings seen so far (0 before the first, so clipped to 0.5, as River's).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunningMean {
    sum: f64,
    n: u64,
}

impl Learner for RunningMean {
    fn predict_then_learn(&mut self, r: &Rating) -> Result<f32, ModelError> {
        let prediction = if self.n == 0 { clip(0.0) } else { clip((self.sum / self.n as f64) as f32) };
        self.sum += f64::from(r.value);
        self.n += 1;
        Ok(prediction)
    }
}

/// Predicts the training mean for everything; ranks nothing.
#[derive(Debug, Clone, Copy)]
pub struct GlobalMean {
    mean: f32,
}

impl Recommender for GlobalMean {
    fn predict(&self, _: UserId, _: ItemId) -> f32 {
        clip(self.mean)
    }

    fn recommend(&self, _: UserId, _: &Query<'_>) -> Vec<Scored> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in ModelName::ALL {
            assert_eq!(m.as_str().parse::<ModelName>(), Ok(m));
        }
        assert!("svd++".parse::<ModelName>().is_err());
    }

    #[test]
    fn running_mean_predicts_before_it_learns() {
        let mut m = RunningMean::default();
        let rating = |item, value| Rating { user: 1, item, value, timestamp: 0 };
        assert_eq!(m.predict_then_learn(&rating(1, 4.0)).unwrap(), 0.5);
        assert_eq!(m.predict_then_learn(&rating(2, 2.0)).unwrap(), 4.0);
        assert_eq!(m.predict_then_learn(&rating(3, 1.0)).unwrap(), 3.0);
    }
}
