//! Item-based k-nearest-neighbour correction of the baselines (Koren's "KNNBaseline", as in
//! Surprise with `pearson_baseline` similarity): the prediction is `b_ui` plus the similarity-
//! weighted mean of the user's residuals `r_uj - b_uj` on the `k` movies most similar to the
//! target. It errs differently from factor models, which is what makes it worth blending.

use std::thread;

use crate::Recommender;
use crate::baseline::{Baseline, BaselineModel};
use crate::error::ModelError;
use crate::ids::{IdMap, ItemId, UserId};
use crate::ratings::{Csr, Ratings};
use crate::topn::{Query, Scored, Selector};

/// Hyper-parameters; [`KnnBaseline::default`] is Surprise's (k 40, shrinkage 100, min_k 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnnBaseline {
    /// Neighbours averaged per prediction.
    pub k: usize,
    /// Pearson correlations over `n` common raters are scaled by `(n - 1) / (n - 1 + shrink)`.
    pub shrink: f32,
    /// Fewer positive-similarity neighbours than this and the prediction is the baseline.
    pub min_k: usize,
    /// The baselines that are corrected (and that centre the similarity).
    pub baseline: Baseline,
}

impl Default for KnnBaseline {
    fn default() -> Self {
        Self { k: 40, shrink: 100.0, min_k: 1, baseline: Baseline::default() }
    }
}

impl KnnBaseline {
    /// Fits the baselines, then the movie–movie similarities of every pair with at least two
    /// common raters (sparse: pairs rated together once have similarity 0 after shrinkage).
    /// Movies are split across the available cores.
    ///
    /// # Errors
    /// [`ModelError::EmptyRatings`]; [`ModelError::InvalidParameter`] for `k == 0` or a
    /// negative shrinkage.
    pub fn fit(&self, ratings: &Ratings) -> Result<KnnBaselineModel, ModelError> {
        if self.k == 0 {
            return Err(ModelError::InvalidParameter { name: "k", reason: "must be >= 1".into() });
        }
        if !(self.shrink.is_finite() && self.shrink >= 0.0) {
            return Err(ModelError::InvalidParameter { name: "shrink", reason: "must be finite and >= 0".into() });
        }
        let base = self.baseline.fit(ratings)?;
        let residual = |u: u32, i: u32, r: f32| r - base.estimate(u, i);
        let by_user = ratings.by_user_with(residual);
        let by_item = ratings.by_item_with(residual);
        let n_items = ratings.n_items();
        let threads = thread::available_parallelism().map_or(1, |n| n.get()).min(n_items.max(1));
        let chunk = n_items.div_ceil(threads);
        let shrink = f64::from(self.shrink);
        let parts: Vec<Csr> = thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (by_user, by_item) = (&by_user, &by_item);
                    let range = (t * chunk).min(n_items)..((t + 1) * chunk).min(n_items);
                    s.spawn(move || similarity_rows(by_user, by_item, range, n_items, shrink))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        });
        let mut sims = Csr { offsets: vec![0], indices: Vec::new(), values: Vec::new() };
        for part in parts {
            let base_offset = sims.indices.len();
            sims.offsets.extend(part.offsets[1..].iter().map(|o| o + base_offset));
            sims.indices.extend(part.indices);
            sims.values.extend(part.values);
        }
        Ok(KnnBaselineModel {
            params: *self,
            user_ids: ratings.user_ids().clone(),
            item_ids: ratings.item_ids().clone(),
            base,
            residuals: by_user,
            sims,
        })
    }
}

/// Shrunk Pearson-baseline similarities of the movies in `range` with every other movie:
/// for each movie, walk its raters' rows once, accumulating the co-rating sums per movie.
fn similarity_rows(by_user: &Csr, by_item: &Csr, range: std::ops::Range<usize>, n_items: usize, shrink: f64) -> Csr {
    let mut num = vec![0f64; n_items];
    let mut sii = vec![0f64; n_items];
    let mut sjj = vec![0f64; n_items];
    let mut count = vec![0u32; n_items];
    let mut touched: Vec<u32> = Vec::new();
    let mut out = Csr { offsets: vec![0], indices: Vec::new(), values: Vec::new() };
    for i in range {
        let (raters, zi) = by_item.row(i);
        for (&u, &zi) in raters.iter().zip(zi) {
            let zi = f64::from(zi);
            let (items, zs) = by_user.row(u as usize);
            for (&j, &zj) in items.iter().zip(zs) {
                let j = j as usize;
                if count[j] == 0 {
                    touched.push(j as u32);
                }
                let zj = f64::from(zj);
                count[j] += 1;
                num[j] += zi * zj;
                sii[j] += zi * zi;
                sjj[j] += zj * zj;
            }
        }
        touched.sort_unstable();
        for &j in &touched {
            let j = j as usize;
            let n = f64::from(count[j]);
            let den = (sii[j] * sjj[j]).sqrt();
            if j != i && n >= 2.0 && den > 0.0 {
                let sim = num[j] / den * (n - 1.0) / (n - 1.0 + shrink);
                if sim != 0.0 {
                    out.indices.push(j as u32);
                    out.values.push(sim as f32);
                }
            }
            (num[j], sii[j], sjj[j], count[j]) = (0.0, 0.0, 0.0, 0);
        }
        touched.clear();
        out.offsets.push(out.indices.len());
    }
    out
}

/// A fitted [`KnnBaseline`].
#[derive(Debug, Clone)]
pub struct KnnBaselineModel {
    params: KnnBaseline,
    user_ids: IdMap,
    item_ids: IdMap,
    base: BaselineModel,
    /// Users' residuals `r_uj - b_uj`, movies ascending.
    residuals: Csr,
    /// Row `i`: the movies with a non-zero similarity to `i`, ascending, and the similarity.
    sims: Csr,
}

impl KnnBaselineModel {
    /// Stored movie pairs (each direction counted).
    pub fn pairs(&self) -> usize {
        self.sims.indices.len()
    }

    /// The unclipped estimate by dense indices.
    fn estimate(&self, u: u32, i: u32, buf: &mut Vec<(f32, f32)>) -> f32 {
        let base = self.base.estimate(u, i);
        let (items, zs) = self.residuals.row(u as usize);
        let (nbrs, sims) = self.sims.row(i as usize);
        // Merge the two ascending lists: the user's movies that have a similarity to `i`.
        buf.clear();
        let (mut a, mut b) = (0, 0);
        while a < items.len() && b < nbrs.len() {
            match items[a].cmp(&nbrs[b]) {
                std::cmp::Ordering::Less => a += 1,
                std::cmp::Ordering::Greater => b += 1,
                std::cmp::Ordering::Equal => {
                    buf.push((sims[b], zs[a]));
                    a += 1;
                    b += 1;
                }
            }
        }
        let k = self.params.k;
        if buf.len() > k {
            buf.select_nth_unstable_by(k - 1, |x, y| y.0.total_cmp(&x.0));
            buf.truncate(k);
        }
        let (mut weight, mut sum, mut used) = (0f32, 0f32, 0usize);
        for &(s, z) in buf.iter().filter(|(s, _)| *s > 0.0) {
            weight += s;
            sum += s * z;
            used += 1;
        }
        if used >= self.params.min_k && weight > 0.0 { base + sum / weight } else { base }
    }
}

impl Recommender for KnnBaselineModel {
    /// Unknown users or movies fall back to the baselines.
    fn predict(&self, user: UserId, item: ItemId) -> f32 {
        let (Some(u), Some(i)) = (self.user_ids.index(user), self.item_ids.index(item)) else {
            return self.base.predict(user, item);
        };
        let (lo, hi) = self.base.range();
        self.estimate(u, i, &mut Vec::new()).clamp(lo, hi)
    }

    /// Ranks every movie by predicted rating: exact, and costly (each score merges two lists),
    /// which is why evaluation uses this model for rating prediction only.
    fn recommend(&self, user: UserId, query: &Query<'_>) -> Vec<Scored> {
        let Some(u) = self.user_ids.index(user) else {
            return self.base.recommend(user, query);
        };
        let seen = self.residuals.row(u as usize).0;
        let mut sel = Selector::new(query.n());
        let mut buf = Vec::new();
        for i in 0..self.item_ids.len() as u32 {
            let item = self.item_ids.id(i);
            let score = self.estimate(u, i, &mut buf);
            sel.offer(item, score, || {
                query.accepts(item) && !(query.excludes_seen() && seen.binary_search(&i).is_ok())
            });
        }
        sel.into_sorted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Users who like movie 1 like movie 2 and dislike 3; a new fan of 1 should get 2 above 3.
    #[test]
    fn neighbours_pull_the_prediction_toward_co_rated_movies() {
        let mut rows = Vec::new();
        for u in 0..20 {
            let fan = u % 2 == 0;
            rows.push((u, 1, if fan { 5.0 } else { 1.0 }, 0));
            rows.push((u, 2, if fan { 5.0 } else { 1.0 }, 0));
            rows.push((u, 3, if fan { 1.0 } else { 5.0 }, 0));
        }
        rows.push((100, 1, 5.0, 0));
        rows.push((101, 2, 3.0, 0));
        rows.push((101, 3, 3.0, 0));
        let train = Ratings::from_rows(rows).unwrap();
        let knn = KnnBaseline::default().fit(&train).unwrap();
        let base = Baseline::default().fit(&train).unwrap();
        assert!(knn.pairs() > 0);
        // Movie 2 correlates with the fan's movie 1: its prediction rises above the baselines.
        assert!(knn.predict(100, 2) > base.predict(100, 2) + 0.5);
        // Movie 3 correlates negatively with 1: only positive neighbours count (as Surprise's
        // KNNBaseline), so it keeps its baseline.
        assert_eq!(knn.predict(100, 3), base.predict(100, 3));
        let top = knn.recommend(100, &Query::top(2));
        assert_eq!(top.iter().map(|s| s.item).collect::<Vec<_>>(), vec![2, 3]);
        // Unknown user or movie: the baselines.
        assert_eq!(knn.predict(999, 2), base.predict(999, 2));
        assert_eq!(knn.predict(100, 999), base.predict(100, 999));
    }

    #[test]
    fn bad_parameters_are_rejected() {
        let train = Ratings::from_rows([(1, 1, 3.0, 0)]).unwrap();
        assert!(KnnBaseline { k: 0, ..KnnBaseline::default() }.fit(&train).is_err());
        assert!(KnnBaseline { shrink: -1.0, ..KnnBaseline::default() }.fit(&train).is_err());
    }
}
