//! A linear blend of rating predictors: `w0 + Σ w_m · prediction_m`, with the weights fitted by
//! least squares on a hashed slice of the *training* ratings that the members did not see,
//! then the members refitted on everything. Factor models and neighbourhood models err on
//! different ratings, so their blend beats both (the Netflix Prize lesson).

use crate::Recommender;
use crate::error::ModelError;
use crate::ids::{ItemId, UserId};
use crate::init::mix;
use crate::linalg::symmetric_eigen;
use crate::ratings::{Rating, Ratings};
use crate::topn::{Query, Scored};
use ndarray::{Array1, Array2};

/// Fits one member model on some ratings.
pub type Member<'a> = (&'a str, &'a dyn Fn(&Ratings) -> Result<Box<dyn Recommender>, ModelError>);

/// How to fit the blend weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearBlend {
    /// Share of the training ratings held out to fit the weights (default 0.1).
    pub holdout: f64,
    /// Seeds which ratings are held out.
    pub seed: u64,
    /// Ridge penalty on the weights (default 1e-3 per held-out rating, negligible but keeps
    /// the normal equations solvable when two members agree exactly).
    pub ridge: f64,
}

impl Default for LinearBlend {
    fn default() -> Self {
        Self { holdout: 0.1, seed: 42, ridge: 1e-3 }
    }
}

impl LinearBlend {
    /// Fits the members on ~90% of `ratings`, the weights on the other ~10%, then refits the
    /// members on all of `ratings`.
    ///
    /// # Errors
    /// [`ModelError::InvalidParameter`] for no members or a holdout outside (0, 1);
    /// [`ModelError::EmptyRatings`] when either part is empty; a member's fitting error.
    pub fn fit(&self, ratings: &Ratings, members: &[Member<'_>]) -> Result<BlendModel, ModelError> {
        if members.is_empty() {
            return Err(ModelError::InvalidParameter { name: "members", reason: "must not be empty".into() });
        }
        if !(self.holdout > 0.0 && self.holdout < 1.0) {
            return Err(ModelError::InvalidParameter { name: "holdout", reason: "must be in (0, 1)".into() });
        }
        let cut = (self.holdout * u64::MAX as f64) as u64;
        let held = |r: &Rating| mix(self.seed ^ mix((r.user as u64) << 32 ^ r.item as u64)) < cut;
        let fit_part = Ratings::from_rows(ratings.iter().filter(|r| !held(r)))?;
        let holdout: Vec<Rating> = ratings.iter().filter(held).collect();
        if fit_part.is_empty() || holdout.is_empty() {
            return Err(ModelError::EmptyRatings);
        }
        // Columns: 1 (intercept), then each member's prediction.
        let m = members.len() + 1;
        let mut x = Array2::<f64>::zeros((holdout.len(), m));
        x.column_mut(0).fill(1.0);
        for (c, (_, fit)) in members.iter().enumerate() {
            let model = fit(&fit_part)?;
            for (row, r) in holdout.iter().enumerate() {
                x[[row, c + 1]] = f64::from(model.predict(r.user, r.item));
            }
        }
        drop(fit_part);
        let y = Array1::from_iter(holdout.iter().map(|r| f64::from(r.value)));
        let mut gram = x.t().dot(&x);
        for d in 1..m {
            gram[[d, d]] += self.ridge * holdout.len() as f64;
        }
        let rhs = x.t().dot(&y);
        // gram is symmetric positive definite: solve through its eigen-decomposition.
        let (values, vectors) = symmetric_eigen(gram.view());
        let projected = vectors.t().dot(&rhs) / values.mapv(|v| v.max(1e-12));
        let weights = vectors.dot(&projected);
        let fitted = members.iter().map(|(_, fit)| fit(ratings)).collect::<Result<Vec<_>, _>>()?;
        let range = ratings.value_range().ok_or(ModelError::EmptyRatings)?;
        Ok(BlendModel {
            names: members.iter().map(|(n, _)| (*n).to_owned()).collect(),
            intercept: weights[0] as f32,
            weights: weights.iter().skip(1).map(|&w| w as f32).collect(),
            members: fitted,
            range,
        })
    }
}

/// A fitted [`LinearBlend`].
pub struct BlendModel {
    names: Vec<String>,
    intercept: f32,
    weights: Vec<f32>,
    members: Vec<Box<dyn Recommender>>,
    range: (f32, f32),
}

impl std::fmt::Debug for BlendModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlendModel").field("intercept", &self.intercept).field("weights", &self.weights()).finish()
    }
}

impl BlendModel {
    /// The intercept.
    pub fn intercept(&self) -> f32 {
        self.intercept
    }

    /// Each member's name and weight.
    pub fn weights(&self) -> Vec<(&str, f32)> {
        self.names.iter().map(String::as_str).zip(self.weights.iter().copied()).collect()
    }
}

impl Recommender for BlendModel {
    fn predict(&self, user: UserId, item: ItemId) -> f32 {
        let s: f32 = self.members.iter().zip(&self.weights).map(|(m, w)| w * m.predict(user, item)).sum();
        (self.intercept + s).clamp(self.range.0, self.range.1)
    }

    /// Re-ranks the union of the members' own lists (each `2n` long) by the blended prediction.
    fn recommend(&self, user: UserId, query: &Query<'_>) -> Vec<Scored> {
        let wide = query.clone().with_n(query.n() * 2);
        let mut items: Vec<ItemId> =
            self.members.iter().flat_map(|m| m.recommend(user, &wide)).map(|s| s.item).collect();
        items.sort_unstable();
        items.dedup();
        let mut list: Vec<Scored> =
            items.into_iter().map(|item| Scored { item, score: self.predict(user, item) }).collect();
        list.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
        list.truncate(query.n());
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Predicts with a fixed formula, ignoring what it is fitted on.
    struct Formula(fn(UserId, ItemId) -> f32);

    impl Recommender for Formula {
        fn predict(&self, user: UserId, item: ItemId) -> f32 {
            (self.0)(user, item)
        }
        fn recommend(&self, _: UserId, query: &Query<'_>) -> Vec<Scored> {
            (0..40).map(|item| Scored { item, score: self.predict(0, item) }).take(query.n()).collect()
        }
    }

    fn truth(u: UserId, i: ItemId) -> f32 {
        1.0 + ((u + i) % 5) as f32
    }

    #[test]
    fn the_weights_follow_the_member_that_predicts_the_held_out_ratings() {
        let rows: Vec<(i64, i64, f32, i64)> =
            (0..60).flat_map(|u| (0..40).map(move |i| (u, i, truth(u, i), 0))).collect();
        let ratings = Ratings::from_rows(rows).unwrap();
        let good = |_: &Ratings| Ok(Box::new(Formula(truth)) as Box<dyn Recommender>);
        let noise =
            |_: &Ratings| Ok(Box::new(Formula(|u, i| ((u * 31 + i * 17) % 9) as f32 * 0.5)) as Box<dyn Recommender>);
        let model = LinearBlend::default().fit(&ratings, &[("good", &good), ("noise", &noise)]).unwrap();
        let w = model.weights();
        assert_eq!(w[0].0, "good");
        assert!((w[0].1 - 1.0).abs() < 0.02, "{w:?}");
        assert!(w[1].1.abs() < 0.02, "{w:?}");
        assert!((model.predict(7, 3) - truth(7, 3)).abs() < 0.05);
        // Predictions stay on the training scale.
        assert!((1.0..=5.0).contains(&model.predict(1000, 1000)));
    }

    #[test]
    fn no_members_or_a_bad_holdout_is_rejected() {
        let ratings = Ratings::from_rows([(1, 1, 3.0, 0), (2, 2, 4.0, 0)]).unwrap();
        assert!(LinearBlend::default().fit(&ratings, &[]).is_err());
        let good = |_: &Ratings| Ok(Box::new(Formula(truth)) as Box<dyn Recommender>);
        let bad = LinearBlend { holdout: 1.5, ..LinearBlend::default() };
        assert!(bad.fit(&ratings, &[("good", &good)]).is_err());
    }
}
