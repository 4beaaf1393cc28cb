//! Popularity and trending: the cold-start answer when a user has no history, and the prior
//! that breaks ties between otherwise equal candidates.

use std::sync::Arc;

use crate::Recommender;
use crate::error::ModelError;
use crate::ids::{IdMap, ItemId, UserId};
use crate::ratings::{Ratings, Seen};
use crate::topn::{Query, Scored};

/// Ratings a damped movie mean trusts as much as its own ratings.
const MEAN_DAMPING: f32 = 10.0;

/// Hyper-parameters of popularity and trending; construct with [`Popularity::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    positive: f32,
    half_life_days: f64,
    now: Option<i64>,
}

/// Builder of [`Popularity`].
#[derive(Debug, Clone)]
pub struct PopularityBuilder(Popularity);

impl Default for PopularityBuilder {
    fn default() -> Self {
        Self(Popularity { positive: 4.0, half_life_days: 60.0, now: None })
    }
}

impl PopularityBuilder {
    /// Ratings at or above this count as "liked" (default 4.0): popularity counts likes, not
    /// views, so a much-watched flop does not lead the list.
    pub fn positive_threshold(mut self, stars: f32) -> Self {
        self.0.positive = stars;
        self
    }

    /// A like loses half its trending weight every this many days (default 60).
    pub fn half_life_days(mut self, days: f64) -> Self {
        self.0.half_life_days = days;
        self
    }

    /// The instant trending is computed for (Unix seconds); default: the latest rating, which
    /// keeps fits reproducible.
    pub fn now(mut self, timestamp: i64) -> Self {
        self.0.now = Some(timestamp);
        self
    }

    /// Validates the hyper-parameters.
    ///
    /// # Errors
    /// [`ModelError::InvalidParameter`] for a non-finite threshold or a non-positive half-life.
    pub fn build(self) -> Result<Popularity, ModelError> {
        if !self.0.positive.is_finite() {
            return Err(ModelError::InvalidParameter { name: "positive_threshold", reason: "must be finite".into() });
        }
        if !(self.0.half_life_days.is_finite() && self.0.half_life_days > 0.0) {
            return Err(ModelError::InvalidParameter { name: "half_life_days", reason: "must be > 0".into() });
        }
        Ok(self.0)
    }
}

impl Popularity {
    /// A builder with the default hyper-parameters.
    pub fn builder() -> PopularityBuilder {
        PopularityBuilder::default()
    }

    /// Counts likes, recency-weighted likes and damped mean ratings per movie.
    ///
    /// # Errors
    /// [`ModelError::EmptyRatings`].
    pub fn fit(&self, ratings: &Ratings) -> Result<PopularityModel, ModelError> {
        if ratings.is_empty() {
            return Err(ModelError::EmptyRatings);
        }
        let n = ratings.n_items();
        let now = self.now.or(ratings.latest_timestamp()).unwrap_or(0);
        let half_life = self.half_life_days * 86_400.0;
        let (mut counts, mut likes, mut trending, mut sums) =
            (vec![0u32; n], vec![0f32; n], vec![0f64; n], vec![0f64; n]);
        for ((&i, &v), &t) in ratings.items().iter().zip(ratings.values()).zip(ratings.timestamps()) {
            let i = i as usize;
            counts[i] += 1;
            sums[i] += f64::from(v);
            if v >= self.positive {
                likes[i] += 1.0;
                // Future-dated events count as fresh, not as more than fresh.
                let age = (now - t).max(0) as f64;
                trending[i] += (-std::f64::consts::LN_2 * age / half_life).exp();
            }
        }
        let mu = ratings.global_mean();
        let means = sums
            .iter()
            .zip(&counts)
            .map(|(&s, &c)| ((s as f32) + MEAN_DAMPING * mu) / (c as f32 + MEAN_DAMPING))
            .collect();
        let trending: Vec<f32> = trending.into_iter().map(|x| x as f32).collect();
        let columns = Columns { counts, likes, trending, means };
        Ok(PopularityModel::ranked(ratings.user_ids().clone(), ratings.item_ids().clone(), columns, ratings.seen(), mu))
    }
}

struct Columns {
    counts: Vec<u32>,
    likes: Vec<f32>,
    trending: Vec<f32>,
    means: Vec<f32>,
}

/// One movie of a [`PopularityState`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PopularItem {
    /// MovieLens movie id.
    pub id: ItemId,
    /// Ratings.
    pub count: u32,
    /// Ratings at or above the like threshold.
    pub likes: f32,
    /// Recency-weighted likes.
    pub trending: f32,
    /// Damped mean rating.
    pub mean: f32,
}

/// A [`PopularityModel`] as plain data (for snapshots), movies by ascending id.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PopularityState {
    /// Per movie.
    pub items: Vec<PopularItem>,
    /// Mean of all ratings.
    pub global_mean: f32,
}

/// Per-movie likes, trending weight and damped mean, with both rankings precomputed so a
/// request only walks the head of a list past the excluded movies.
#[derive(Debug, Clone)]
pub struct PopularityModel {
    user_ids: IdMap,
    item_ids: IdMap,
    counts: Vec<u32>,
    likes: Vec<f32>,
    trending: Vec<f32>,
    means: Vec<f32>,
    popular_order: Vec<u32>,
    trending_order: Vec<u32>,
    max_likes: f32,
    seen: Arc<Seen>,
    global_mean: f32,
}

impl PopularityModel {
    /// Precomputes both rankings over the columns.
    fn ranked(user_ids: IdMap, item_ids: IdMap, c: Columns, seen: Arc<Seen>, global_mean: f32) -> Self {
        let n = item_ids.len();
        let order_by = |key: &dyn Fn(usize) -> (f32, f32)| {
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.sort_by(|&a, &b| {
                let (ka, kb) = (key(a as usize), key(b as usize));
                kb.0.total_cmp(&ka.0).then(kb.1.total_cmp(&ka.1)).then(a.cmp(&b))
            });
            order
        };
        let popular_order = order_by(&|i| (c.likes[i], c.counts[i] as f32));
        let trending_order = order_by(&|i| (c.trending[i], c.likes[i]));
        let max_likes = c.likes.iter().copied().fold(0f32, f32::max);
        Self {
            user_ids,
            item_ids,
            counts: c.counts,
            likes: c.likes,
            trending: c.trending,
            means: c.means,
            popular_order,
            trending_order,
            max_likes,
            seen,
            global_mean,
        }
    }

    /// The model as plain data. Who rated what is not kept: a restored model's
    /// [`Recommender::recommend`] excludes nothing (callers pass exclusions in the query).
    pub fn export(&self) -> PopularityState {
        let items = (0..self.item_ids.len())
            .map(|i| PopularItem {
                id: self.item_ids.id(i as u32),
                count: self.counts[i],
                likes: self.likes[i],
                trending: self.trending[i],
                mean: self.means[i],
            })
            .collect();
        PopularityState { items, global_mean: self.global_mean }
    }

    /// The model [`Self::export`] gave, with the same rankings.
    ///
    /// # Errors
    /// [`ModelError::Mismatch`] if the movie ids are not strictly ascending.
    pub fn restore(state: &PopularityState) -> Result<Self, ModelError> {
        if !state.items.windows(2).all(|w| w[0].id < w[1].id) {
            return Err(ModelError::Mismatch("popularity movies must be in ascending id order".into()));
        }
        let item_ids = IdMap::from_sorted(state.items.iter().map(|i| i.id).collect());
        let columns = Columns {
            counts: state.items.iter().map(|i| i.count).collect(),
            likes: state.items.iter().map(|i| i.likes).collect(),
            trending: state.items.iter().map(|i| i.trending).collect(),
            means: state.items.iter().map(|i| i.mean).collect(),
        };
        Ok(Self::ranked(IdMap::default(), item_ids, columns, Arc::default(), state.global_mean))
    }

    /// The first `n` movies of a precomputed ranking that pass the query: already sorted,
    /// so no selection is needed and a request stops as soon as it has `n`.
    fn walk(&self, order: &[u32], score: &[f32], seen: &[u32], query: &Query<'_>) -> Vec<Scored> {
        order
            .iter()
            .filter(|&&i| !(query.excludes_seen() && seen.binary_search(&i).is_ok()))
            .map(|&i| Scored { item: self.item_ids.id(i), score: score[i as usize] })
            .filter(|s| query.accepts(s.item))
            .take(query.n())
            .collect()
    }

    /// Most-liked movies (score = number of likes).
    pub fn popular(&self, query: &Query<'_>) -> Vec<Scored> {
        self.walk(&self.popular_order, &self.likes, &[], query)
    }

    /// Movies liked most recently (score = likes weighted by `2^(−age / half-life)`).
    pub fn trending(&self, query: &Query<'_>) -> Vec<Scored> {
        self.walk(&self.trending_order, &self.trending, &[], query)
    }

    /// Number of ratings of `item` (0 if unknown).
    pub fn count(&self, item: ItemId) -> u32 {
        self.item_ids.index(item).map_or(0, |i| self.counts[i as usize])
    }

    /// Popularity in [0, 1] on a log scale (`ln(1 + likes) / ln(1 + max likes)`): a prior for
    /// tie-breaking other rankings.
    pub fn prior(&self, item: ItemId) -> f32 {
        match self.item_ids.index(item) {
            Some(i) if self.max_likes > 0.0 => self.likes[i as usize].ln_1p() / self.max_likes.ln_1p(),
            _ => 0.0,
        }
    }

    /// Movies known to the model.
    pub fn item_ids(&self) -> &IdMap {
        &self.item_ids
    }
}

impl Recommender for PopularityModel {
    /// The movie's damped mean rating: the best guess knowing nothing of the user.
    fn predict(&self, _user: UserId, item: ItemId) -> f32 {
        self.item_ids.index(item).map_or(self.global_mean, |i| self.means[i as usize])
    }

    /// Most-liked movies the user has not rated: the non-personalised baseline.
    fn recommend(&self, user: UserId, query: &Query<'_>) -> Vec<Scored> {
        let seen = self.user_ids.index(user).map_or(&[][..], |u| self.seen.of(u));
        self.walk(&self.popular_order, &self.likes, seen, query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratings() -> Ratings {
        let day = 86_400;
        Ratings::from_rows([
            // Movie 1: many old likes. Movie 2: a few fresh likes. Movie 3: fresh dislikes.
            (1, 1, 5.0, 0),
            (2, 1, 4.0, 0),
            (3, 1, 4.5, 0),
            (4, 1, 5.0, 0),
            (1, 2, 5.0, 400 * day),
            (2, 2, 4.0, 400 * day),
            (3, 3, 1.0, 400 * day),
            (4, 3, 1.0, 400 * day),
            (5, 3, 2.0, 400 * day),
        ])
        .unwrap()
    }

    #[test]
    fn popular_counts_likes_and_trending_favours_fresh_likes() {
        let pop = Popularity::builder().build().unwrap().fit(&ratings()).unwrap();
        let ids = |v: Vec<Scored>| v.iter().map(|s| s.item).collect::<Vec<_>>();
        assert_eq!(ids(pop.popular(&Query::top(3))), vec![1, 2, 3]);
        assert_eq!(ids(pop.trending(&Query::top(2))), vec![2, 1]);
        assert_eq!(ids(pop.trending(&Query::top(2).exclude([2]))), vec![1, 3]);
        assert!(pop.prior(1) > pop.prior(2) && pop.prior(3) == 0.0);
    }

    #[test]
    fn a_restored_model_ranks_exactly_like_the_original() {
        let pop = Popularity::builder().build().unwrap().fit(&ratings()).unwrap();
        let back = PopularityModel::restore(&pop.export()).unwrap();
        assert_eq!(back.export(), pop.export());
        for q in [Query::top(3), Query::top(2).exclude([2])] {
            assert_eq!(back.trending(&q), pop.trending(&q));
            assert_eq!(back.popular(&q), pop.popular(&q));
        }
        assert_eq!(back.prior(1), pop.prior(1));
        let mut bad = pop.export();
        bad.items.swap(0, 1);
        assert!(PopularityModel::restore(&bad).is_err());
    }

    #[test]
    fn the_popularity_baseline_skips_what_the_user_rated() {
        let pop = Popularity::builder().build().unwrap().fit(&ratings()).unwrap();
        let got = pop.recommend(1, &Query::top(3));
        assert_eq!(got.iter().map(|s| s.item).collect::<Vec<_>>(), vec![3]);
    }
}
