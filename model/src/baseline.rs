//! Baseline estimates `mu + b_u + b_i` fitted by alternating least squares, as Surprise's
//! BaselineOnly: each epoch sets every `b_i`, then every `b_u`, to the regularised mean of its
//! residuals. The neighbourhood model corrects these baselines, and evaluation uses them as
//! the anchor every factor model must beat.

use crate::Recommender;
use crate::error::ModelError;
use crate::ids::{IdMap, ItemId, UserId};
use crate::ratings::Ratings;
use crate::topn::{Query, Scored};

/// Hyper-parameters of the ALS baselines (Surprise's defaults: 10 epochs, `reg_i` 10, `reg_u` 15).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// Alternations of the two closed-form updates.
    pub epochs: usize,
    /// Penalty on user biases (a pseudo-count of zero residuals).
    pub reg_user: f32,
    /// Penalty on movie biases.
    pub reg_item: f32,
}

impl Default for Baseline {
    fn default() -> Self {
        Self { epochs: 10, reg_user: 15.0, reg_item: 10.0 }
    }
}

impl Baseline {
    /// Fits the biases on `ratings`.
    ///
    /// # Errors
    /// [`ModelError::EmptyRatings`].
    pub fn fit(&self, ratings: &Ratings) -> Result<BaselineModel, ModelError> {
        if ratings.is_empty() {
            return Err(ModelError::EmptyRatings);
        }
        let mu = f64::from(ratings.global_mean());
        let (users, items, values) = (ratings.users(), ratings.items(), ratings.values());
        let (n_users, n_items) = (ratings.n_users(), ratings.n_items());
        let mut bu = vec![0f64; n_users];
        let mut bi = vec![0f64; n_items];
        let mut n_item = vec![0f64; n_items];
        let mut n_user = vec![0f64; n_users];
        for (&u, &i) in users.iter().zip(items) {
            n_user[u as usize] += 1.0;
            n_item[i as usize] += 1.0;
        }
        let mut acc_i = vec![0f64; n_items];
        let mut acc_u = vec![0f64; n_users];
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
        let mut seen: Vec<Vec<ItemId>> = Vec::with_capacity(n_users);
        for u in 0..n_users as u32 {
            // Dense movie indices ascend with MovieLens ids, so each row is already sorted.
            seen.push(ratings.user_row(u).0.iter().map(|&i| ratings.item_ids().id(i)).collect());
        }
        Ok(BaselineModel {
            mu: mu as f32,
            user_ids: ratings.user_ids().clone(),
            item_ids: ratings.item_ids().clone(),
            user_bias: bu.into_iter().map(|b| b as f32).collect(),
            item_bias: bi.into_iter().map(|b| b as f32).collect(),
            range: ratings.value_range().ok_or(ModelError::EmptyRatings)?,
            seen,
        })
    }
}

/// Fitted baselines: `mu + b_u + b_i`.
#[derive(Debug, Clone)]
pub struct BaselineModel {
    mu: f32,
    user_ids: IdMap,
    item_ids: IdMap,
    user_bias: Vec<f32>,
    item_bias: Vec<f32>,
    range: (f32, f32),
    /// Each user's training movies, ascending.
    seen: Vec<Vec<ItemId>>,
}

impl BaselineModel {
    /// `mu + b_u + b_i` by dense indices, unclipped.
    pub(crate) fn estimate(&self, user: u32, item: u32) -> f32 {
        self.mu + self.user_bias[user as usize] + self.item_bias[item as usize]
    }

    /// The training ratings' lowest and highest values, the clip of predictions.
    pub(crate) fn range(&self) -> (f32, f32) {
        self.range
    }
}

impl Recommender for BaselineModel {
    fn predict(&self, user: UserId, item: ItemId) -> f32 {
        let bu = self.user_ids.index(user).map_or(0.0, |u| self.user_bias[u as usize]);
        let bi = self.item_ids.index(item).map_or(0.0, |i| self.item_bias[i as usize]);
        (self.mu + bu + bi).clamp(self.range.0, self.range.1)
    }

    /// Ranks by movie bias (the user's bias shifts every score alike).
    fn recommend(&self, user: UserId, query: &Query<'_>) -> Vec<Scored> {
        let seen = self.user_ids.index(user).map_or(&[][..], |u| &self.seen[u as usize][..]);
        let mut list: Vec<Scored> = self
            .item_ids
            .ids()
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
    fn a_liked_movie_beats_a_disliked_one_and_unknowns_fall_back_to_the_mean() {
        let rows = [(1, 10, 5.0, 0), (2, 10, 4.5, 0), (1, 20, 1.0, 0), (2, 20, 2.0, 0), (3, 30, 3.0, 0)];
        let train = Ratings::from_rows(rows).unwrap();
        let m = Baseline::default().fit(&train).unwrap();
        assert!(m.predict(3, 10) > m.predict(3, 20));
        let list = m.recommend(3, &Query::top(5));
        assert_eq!(list.iter().map(|s| s.item).collect::<Vec<_>>(), vec![10, 20]);
        assert!((m.predict(99, 99) - train.global_mean()).abs() < 1e-6);
    }
}
