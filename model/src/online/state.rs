//! The online model as plain data, for snapshots: a restart restores the exact model instead
//! of retraining, and rebuilds the cold-start views (popularity, similarity) from it.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::{BLOCK, ItemBlock, OnlineConfig, OnlineModel, Rated, RatedSet, UserRow};
use crate::error::ModelError;
use crate::ids::{IdMap, ItemId, UserId};
use crate::panel::element;
use crate::ratings::Ratings;
use crate::similarity::ItemSimilarity;
use crate::topn::{Query, Scored, Selector};

/// One movie's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// MovieLens movie id.
    pub id: ItemId,
    /// Rating offset.
    pub bias: f32,
    /// Latent factors.
    pub factors: Vec<f32>,
    /// Distinct users who rated it.
    pub count: u32,
}

/// One rating a user gave (the latest per movie).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatedRecord {
    /// MovieLens movie id.
    pub item: ItemId,
    /// Stars.
    pub rating: f32,
    /// Unix seconds.
    pub timestamp: i64,
}

/// One user's parameters and ratings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// MovieLens user id.
    pub id: UserId,
    /// Rating offset.
    pub bias: f32,
    /// Latent factors.
    pub factors: Vec<f32>,
    /// Latest rating of each movie rated.
    pub rated: Vec<RatedRecord>,
}

/// Everything an [`OnlineModel`] learned, as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnlineState {
    /// Latent factors per row.
    pub factors: usize,
    /// Sum and count of the distinct ratings (the global mean).
    pub rating_sum: f64,
    /// See `rating_sum`.
    pub rating_count: u64,
    /// Movies in the model's dense order.
    pub items: Vec<ItemRecord>,
    /// Users by ascending id.
    pub users: Vec<UserRecord>,
}

impl OnlineModel {
    /// A copy of the whole model. Safe while events are applied, but then it may hold part of
    /// an event's effect; take it between events for an exact copy.
    pub fn export(&self) -> OnlineState {
        let inner = &self.inner;
        // Users first: every movie they rated is then already in the item table read after.
        let mut users: Vec<UserRecord> = inner
            .users
            .iter()
            .map(|row| UserRecord {
                id: *row.key(),
                bias: row.bias,
                factors: row.factors.clone(),
                rated: row
                    .rated
                    .iter()
                    .filter_map(|r| {
                        Some(RatedRecord { item: self.item_id(r.item)?, rating: r.rating, timestamp: r.timestamp })
                    })
                    .collect(),
            })
            .collect();
        users.sort_unstable_by_key(|u| u.id);
        let mut items = Vec::with_capacity(self.n_items());
        for b in 0..self.n_items().div_ceil(BLOCK) {
            let Some(block) = inner.blocks[b].get() else { continue };
            let data = block.read();
            for slot in 0..BLOCK {
                if let Some(id) = data.ids[slot] {
                    items.push(ItemRecord {
                        id,
                        bias: data.biases[slot],
                        factors: data.copy_factors(slot, inner.k),
                        count: data.counts[slot],
                    });
                }
            }
        }
        OnlineState {
            factors: inner.k,
            rating_sum: f64::from_bits(inner.sum.load(Ordering::Acquire)),
            rating_count: inner.count.load(Ordering::Acquire),
            items,
            users,
        }
    }

    /// The model `state` was exported from, with `config` for the events that follow (its
    /// factor count is taken from `state`). Ratings of movies missing from `state.items` are
    /// dropped.
    ///
    /// # Errors
    /// [`ModelError::Mismatch`] for a row whose factor count differs from `state.factors`;
    /// [`ModelError::CapacityExceeded`] if it holds more movies than `config` allows.
    pub fn restore(config: OnlineConfig, state: &OnlineState) -> Result<Self, ModelError> {
        let k = state.factors;
        let bad = |what: &str, id: i64| ModelError::Mismatch(format!("{what} {id} has the wrong number of factors"));
        if state.items.len() > config.max_items {
            return Err(ModelError::CapacityExceeded { capacity: config.max_items });
        }
        let model = Self::with_k(config, k);
        let inner = &model.inner;
        for (b, chunk) in state.items.chunks(BLOCK).enumerate() {
            let mut block = ItemBlock::new(k);
            let d = block.0.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (slot, item) in chunk.iter().enumerate() {
                if item.factors.len() != k {
                    return Err(bad("movie", item.id));
                }
                for (f, &v) in item.factors.iter().enumerate() {
                    d.factors[element(slot, f, k)] = v;
                }
                d.biases[slot] = item.bias;
                d.counts[slot] = item.count;
                d.ids[slot] = Some(item.id);
                inner.item_index.insert(item.id, (b * BLOCK + slot) as u32);
            }
            let cell: &OnceLock<Box<ItemBlock>> = &inner.blocks[b];
            let _ = cell.set(Box::new(block));
        }
        inner.n_items.store(state.items.len(), Ordering::Release);
        for user in &state.users {
            if user.factors.len() != k {
                return Err(bad("user", user.id));
            }
            let rated: RatedSet = user
                .rated
                .iter()
                .filter_map(|r| {
                    let item = *inner.item_index.get(&r.item)?;
                    Some(Rated { item, rating: r.rating, timestamp: r.timestamp })
                })
                .collect();
            inner.users.insert(user.id, UserRow { bias: user.bias, factors: user.factors.clone(), rated, steps: 0 });
        }
        inner.sum.store(state.rating_sum.to_bits(), Ordering::Release);
        inner.count.store(state.rating_count, Ordering::Release);
        Ok(model)
    }

    /// Every rating the model learned (the latest per user and movie), for refitting the
    /// cold-start models after a restore.
    ///
    /// # Errors
    /// [`ModelError::EmptyRatings`] if it learned none.
    pub fn ratings(&self) -> Result<Ratings, ModelError> {
        let mut rows = Vec::with_capacity(self.inner.count.load(Ordering::Acquire) as usize);
        for row in self.inner.users.iter() {
            for r in row.rated.iter() {
                if let Some(item) = self.item_id(r.item) {
                    rows.push((*row.key(), item, r.rating, r.timestamp));
                }
            }
        }
        if rows.is_empty() {
            return Err(ModelError::EmptyRatings);
        }
        Ratings::from_rows(rows)
    }

    /// "Similar movies" over the live movie factors, damped by support like the batch one.
    pub fn similarity(&self, shrink: f32) -> ItemSimilarity {
        let mut items: Vec<(ItemId, Vec<f32>, u32)> = Vec::with_capacity(self.n_items());
        for b in 0..self.n_items().div_ceil(BLOCK) {
            let Some(block) = self.inner.blocks[b].get() else { continue };
            let data = block.read();
            for slot in 0..BLOCK {
                if let Some(id) = data.ids[slot] {
                    items.push((id, data.copy_factors(slot, self.inner.k), data.counts[slot]));
                }
            }
        }
        items.sort_unstable_by_key(|i| i.0);
        let k = self.inner.k;
        let mut factors = Array2::zeros((items.len(), k));
        for (mut row, item) in factors.rows_mut().into_iter().zip(&items) {
            row.iter_mut().zip(&item.1).for_each(|(d, s)| *d = *s);
        }
        let counts: Vec<u32> = items.iter().map(|i| i.2).collect();
        let ids = IdMap::from_sorted(items.into_iter().map(|i| i.0).collect());
        ItemSimilarity::from_factors(ids, factors.view(), Some(&counts), shrink)
    }

    /// Most-rated movies (score = distinct raters): the cold-start list before any batch
    /// popularity model exists.
    pub fn most_rated(&self, query: &Query<'_>) -> Vec<Scored> {
        let mut sel = Selector::new(query.n());
        for b in 0..self.n_items().div_ceil(BLOCK) {
            let Some(block) = self.inner.blocks[b].get() else { continue };
            let data = block.read();
            for slot in 0..BLOCK {
                if let Some(id) = data.ids[slot] {
                    sel.offer(id, data.counts[slot] as f32, || query.accepts(id));
                }
            }
        }
        sel.into_sorted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Recommender;

    fn trained() -> OnlineModel {
        let m = OnlineModel::new(OnlineModel::builder().factors(8).build().unwrap());
        for t in 0..2_000i64 {
            let (u, i) = (t % 37, (t * 7) % 300);
            m.update(u, i, ((t % 9) as f32 + 1.0) / 2.0, t).unwrap();
        }
        m
    }

    #[test]
    fn a_restored_model_answers_exactly_like_the_original() {
        let m = trained();
        let state = m.export();
        let r = OnlineModel::restore(m.config().clone(), &state).unwrap();
        assert_eq!(r.export(), state);
        for u in 0..37 {
            assert_eq!(r.recommend(u, &Query::top(10)), m.recommend(u, &Query::top(10)));
            assert_eq!(r.rated(u), m.rated(u));
        }
        assert_eq!(r.global_mean(), m.global_mean());
        // And it keeps learning the same way: replays are still recognised.
        assert_eq!(r.update(0, 0, 0.5, 0).unwrap(), crate::Update::Duplicate);
        let (a, b) = (m.update(5, 1000, 4.0, 9_999).unwrap(), r.update(5, 1000, 4.0, 9_999).unwrap());
        assert_eq!(a, b);
        assert_eq!(m.export(), r.export());
    }

    #[test]
    fn restore_rejects_rows_of_the_wrong_width() {
        let mut state = trained().export();
        state.users[3].factors.pop();
        let config = OnlineModel::builder().build().unwrap();
        assert!(matches!(OnlineModel::restore(config, &state), Err(ModelError::Mismatch(_))));
    }

    #[test]
    fn ratings_similarity_and_most_rated_come_from_what_was_learned() {
        let m = trained();
        let ratings = m.ratings().unwrap();
        let expected: usize = (0..37).map(|u| m.rated(u).len()).sum();
        assert_eq!(ratings.len(), expected);
        let sim = m.similarity(10.0);
        assert_eq!(sim.item_ids().len(), m.n_items());
        let top = m.most_rated(&Query::top(3));
        assert_eq!(top.len(), 3);
        assert!(top.windows(2).all(|w| w[0].score >= w[1].score));
        assert_eq!(top[0].score as u32, (0..300).map(|i| m.item_count(i)).max().unwrap());
        let empty = OnlineModel::new(OnlineModel::builder().factors(4).build().unwrap());
        assert!(matches!(empty.ratings(), Err(ModelError::EmptyRatings)));
        assert!(empty.most_rated(&Query::top(3)).is_empty());
    }
}
