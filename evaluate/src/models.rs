//! The models `evaluate` can run, selectable by name, with the hyper-parameters each protocol
//! uses. Batch models implement [`Recommender`]; prequential models implement [`Learner`].

use std::fmt;
use std::str::FromStr;

use model::{
    BiasedMf, Centring, ItemId, ModelError, OnlineModel, Popularity, Query, Ratings, Recommender, Scored, TruncatedSvd,
    UserId,
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
    /// The live per-event biased MF ([`model::OnlineModel`]).
    Online,
    /// PureSVD ([`model::TruncatedSvd`]).
    PureSvd,
    /// Most-liked movies ([`model::Popularity`]).
    Popularity,
}

impl ModelName {
    /// Every model, in report order.
    pub const ALL: [ModelName; 6] = [
        ModelName::GlobalMean,
        ModelName::Baseline,
        ModelName::Mf,
        ModelName::Online,
        ModelName::PureSvd,
        ModelName::Popularity,
    ];

    /// The `--model` name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelName::GlobalMean => "global-mean",
            ModelName::Baseline => "baseline",
            ModelName::Mf => "mf",
            ModelName::Online => "online",
            ModelName::PureSvd => "pure-svd",
            ModelName::Popularity => "popularity",
        }
    }

    /// Whether the model can run under `protocol`: batch models for cv and top-N, per-event
    /// learners for prequential (a constant global mean is no ranking, so not in top-N).
    pub fn applies_to(self, protocol: Protocol) -> bool {
        match protocol {
            Protocol::Cv => self != ModelName::Online,
            Protocol::Prequential => matches!(self, ModelName::GlobalMean | ModelName::Online),
            Protocol::TopN => !matches!(self, ModelName::GlobalMean | ModelName::Online),
        }
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
                let b = Baseline::default();
                let params = json!({"epochs": b.epochs, "reg_user": b.reg_user, "reg_item": b.reg_item});
                (Box::new(b.fit(train)?), params)
            }
            ModelName::Mf => {
                let mf = BiasedMf::builder().build()?;
                let sgd = mf.sgd();
                let params = json!({
                    "factors": mf.factors(), "epochs": 40, "lr_bias": sgd.lr_bias, "lr_factor": sgd.lr_factor,
                    "reg_bias": sgd.reg_bias, "reg_factor": sgd.reg_factor, "lr_decay": 0.95, "seed": 42,
                });
                (Box::new(mf.fit(train)?), params)
            }
            ModelName::PureSvd => {
                // Raw stars rank best for top-N (see `Centring::None`); centred ratings predict.
                let (rank, centring) = match protocol {
                    Protocol::TopN => (16, Centring::None),
                    _ => (32, Centring::Global),
                };
                let svd = TruncatedSvd::builder().rank(rank).centring(centring).build()?;
                let params = json!({"rank": rank, "centring": format!("{centring:?}"), "oversample": 16,
                    "power_iters": 3, "seed": 42});
                (Box::new(svd.fit(train)?), params)
            }
            ModelName::Popularity => {
                let p = Popularity::builder().positive_threshold(4.0).build()?;
                (Box::new(p.fit(train)?), json!({"positive": 4.0}))
            }
            ModelName::Online => {
                return Err(ModelError::InvalidParameter {
                    name: "model",
                    reason: "online is evaluated prequentially only".into(),
                });
            }
        })
    }

    /// A fresh per-event learner and its parameters as JSON, or `None` for a batch-only model.
    ///
    /// # Errors
    /// The model's configuration error.
    pub fn learner(self) -> Result<Option<NewLearner>, ModelError> {
        Ok(match self {
            ModelName::GlobalMean => Some((Box::new(RunningMean::default()), json!({}))),
            ModelName::Online => {
                let config = OnlineModel::builder().build()?;
                let sgd = config.sgd();
                let params = json!({
                    "factors": config.factors(), "lr_bias": sgd.lr_bias, "lr_factor": sgd.lr_factor,
                    "reg_bias": sgd.reg_bias, "reg_factor": sgd.reg_factor, "init_std": 0.05, "seed": 42,
                });
                Some((Box::new(OnlineModel::new(config)), params))
            }
            _ => None,
        })
    }
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

/// A fresh prequential learner and its hyper-parameters as JSON.
pub type NewLearner = (Box<dyn Learner>, Value);

/// A model that predicts, then learns, one rating at a time (protocol B).
pub trait Learner {
    /// The prediction for `(user, item)` before learning it, clipped.
    fn predict(&self, user: UserId, item: ItemId) -> f32;

    /// Learns one rating.
    ///
    /// # Errors
    /// The model's rejection of the rating.
    fn learn(&mut self, user: UserId, item: ItemId, rating: f32, timestamp: i64) -> Result<(), ModelError>;
}

impl Learner for OnlineModel {
    fn predict(&self, user: UserId, item: ItemId) -> f32 {
        Recommender::predict(self, user, item)
    }

    fn learn(&mut self, user: UserId, item: ItemId, rating: f32, timestamp: i64) -> Result<(), ModelError> {
        self.update(user, item, rating, timestamp).map(|_| ())
    }
}

/// The mean of the ratings seen so far (0 before the first, so clipped to 0.5, as River's).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunningMean {
    sum: f64,
    n: u64,
}

impl Learner for RunningMean {
    fn predict(&self, _: UserId, _: ItemId) -> f32 {
        if self.n == 0 { clip(0.0) } else { clip((self.sum / self.n as f64) as f32) }
    }

    fn learn(&mut self, _: UserId, _: ItemId, rating: f32, _: i64) -> Result<(), ModelError> {
        self.sum += f64::from(rating);
        self.n += 1;
        Ok(())
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

/// Hyper-parameters of ALS baselines, Surprise's defaults: `b_i` then `b_u` in each epoch,
/// each the regularised mean of the residuals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    epochs: usize,
    reg_user: f32,
    reg_item: f32,
}

impl Default for Baseline {
    fn default() -> Self {
        Self { epochs: 10, reg_user: 15.0, reg_item: 10.0 }
    }
}

impl Baseline {
    /// Fits the biases on `train`.
    ///
    /// # Errors
    /// [`ModelError::EmptyRatings`].
    pub fn fit(&self, train: &Ratings) -> Result<BaselineModel, ModelError> {
        if train.is_empty() {
            return Err(ModelError::EmptyRatings);
        }
        let mu = f64::from(train.global_mean());
        let (users, items, values) = (train.users(), train.items(), train.values());
        let mut bu = vec![0f64; train.n_users()];
        let mut bi = vec![0f64; train.n_items()];
        let mut n_item = vec![0f64; train.n_items()];
        let mut n_user = vec![0f64; train.n_users()];
        for (&u, &i) in users.iter().zip(items) {
            n_user[u as usize] += 1.0;
            n_item[i as usize] += 1.0;
        }
        let mut acc_i = vec![0f64; train.n_items()];
        let mut acc_u = vec![0f64; train.n_users()];
        for _ in 0..self.epochs {
            acc_i.fill(0.0);
            for ((&u, &i), &r) in users.iter().zip(items).zip(values) {
                acc_i[i as usize] += f64::from(r) - mu - bu[u as usize];
            }
            for (b, (a, n)) in bi.iter_mut().zip(acc_i.iter().zip(&n_item)) {
                *b = a / (f64::from(self.reg_item) + n);
            }
            acc_u.fill(0.0);
            for ((&u, &i), &r) in users.iter().zip(items).zip(values) {
                acc_u[u as usize] += f64::from(r) - mu - bi[i as usize];
            }
            for (b, (a, n)) in bu.iter_mut().zip(acc_u.iter().zip(&n_user)) {
                *b = a / (f64::from(self.reg_user) + n);
            }
        }
        let seen = (0..train.n_users() as u32)
            .map(|u| {
                let mut s: Vec<ItemId> = train.user_row(u).0.iter().map(|&i| train.item_ids().id(i)).collect();
                s.sort_unstable();
                s
            })
            .collect();
        Ok(BaselineModel {
            mu: mu as f32,
            user_ids: train.user_ids().ids().to_vec(),
            item_ids: train.item_ids().ids().to_vec(),
            user_bias: bu.into_iter().map(|b| b as f32).collect(),
            item_bias: bi.into_iter().map(|b| b as f32).collect(),
            seen,
        })
    }
}

/// Fitted baselines: `mu + b_u + b_i`.
#[derive(Debug, Clone)]
pub struct BaselineModel {
    mu: f32,
    /// Sorted MovieLens ids, index = dense index.
    user_ids: Vec<UserId>,
    item_ids: Vec<ItemId>,
    user_bias: Vec<f32>,
    item_bias: Vec<f32>,
    /// Each user's training movies, sorted.
    seen: Vec<Vec<ItemId>>,
}

impl Recommender for BaselineModel {
    fn predict(&self, user: UserId, item: ItemId) -> f32 {
        let bu = self.user_ids.binary_search(&user).map_or(0.0, |u| self.user_bias[u]);
        let bi = self.item_ids.binary_search(&item).map_or(0.0, |i| self.item_bias[i]);
        clip(self.mu + bu + bi)
    }

    /// Ranks by movie bias (the user's bias shifts every score alike).
    fn recommend(&self, user: UserId, query: &Query<'_>) -> Vec<Scored> {
        let seen = self.user_ids.binary_search(&user).map_or(&[][..], |u| &self.seen[u][..]);
        let mut list: Vec<Scored> = self
            .item_ids
            .iter()
            .zip(&self.item_bias)
            .filter(|&(&item, _)| query.accepts(item))
            .filter(|&(item, _)| !query.excludes_seen() || seen.binary_search(item).is_err())
            .map(|(&item, &b)| Scored { item, score: self.mu + b })
            .collect();
        list.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
        list.truncate(query.n());
        list
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
    fn baseline_learns_that_a_liked_movie_beats_a_disliked_one() {
        let rows = [(1, 10, 5.0, 0), (2, 10, 4.5, 0), (1, 20, 1.0, 0), (2, 20, 2.0, 0), (3, 30, 3.0, 0)];
        let train = Ratings::from_rows(rows).unwrap();
        let m = Baseline::default().fit(&train).unwrap();
        assert!(m.predict(3, 10) > m.predict(3, 20));
        let list = m.recommend(3, &Query::top(5));
        assert_eq!(list.iter().map(|s| s.item).collect::<Vec<_>>(), vec![10, 20]);
        // An unknown user and movie fall back to the global mean.
        assert!((m.predict(99, 99) - train.global_mean()).abs() < 1e-6);
    }

    #[test]
    fn running_mean_predicts_before_it_learns() {
        let mut m = RunningMean::default();
        assert_eq!(m.predict(1, 1), 0.5);
        m.learn(1, 1, 4.0, 0).unwrap();
        m.learn(1, 2, 2.0, 0).unwrap();
        assert_eq!(m.predict(1, 3), 3.0);
    }
}
