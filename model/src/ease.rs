//! EASE top-N (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): a linear
//! item-to-item model with a closed form. On the binary matrix `X` (users × movies) of the
//! *positive* ratings (≥ [`Ease::positive_threshold`]),
//!
//! ```text
//! P = (XᵀX + λI)⁻¹,    B = I − P · diagMat(1 / diag(P)),    scores(u) = X_u · B
//! ```
//!
//! so `B` has a zero diagonal (a movie cannot recommend itself) and a user's score for movie `j`
//! is the sum of `B[i, j]` over the movies `i` they liked, each weighted by how much they liked
//! it (`rating − query_offset`, so a 5 counts twice a 4 at the default offset 3; see
//! [`Ease::query_offset`]). `B` itself is fitted on the binary matrix: weighting the Gram
//! matrix by rating as well ranks worse.
//!
//! The Gram matrix is dense, one row and column per movie with at least one positive rating;
//! its inverse comes from `faer`'s blocked Cholesky (`LLᵀ`, then `P = L⁻ᵀ L⁻¹`), multithreaded
//! on the rayon pool. Fitting holds at most two dense `f64` matrices at once (about
//! `16 · n²` bytes for `n` movies, 400 MB at 5,000) and the fitted model keeps `B` as `f32`
//! (`4 · n²` bytes), so [`Ease::max_items`] caps `n`: a catalogue of ml-25m's size (62k movies,
//! 15 GB dense) keeps its most-liked movies (BENCHMARKS.md gives the quality cost of the cap
//! on ml-latest-small).
//!
//! On the ml-latest-small top-N split (EVALUATION.md C) λ = 100 was chosen on the inner split
//! (NDCG@10 0.140 there vs 0.137 at 50 and 0.139 at 200), and so was the query weighting
//! (inner NDCG@10: binary 0.140, `r − 3` 0.143, `r − 3.5` 0.139, `(r − 3)²` 0.135; with
//! `r − 3`, λ = 100 still beats 50 and 200).
//! Fitting on all ratings instead of the positives ranks much worse (NDCG@10 0.102 vs 0.127 on
//! test).

use std::sync::Arc;

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{LltRegularization, cholesky_in_place, cholesky_in_place_scratch};
use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::{Accum, Mat, Par};
use ndarray::{Array2, ArrayView2};

use crate::Recommender;
use crate::error::ModelError;
use crate::explain::Reason;
use crate::ids::{IdMap, ItemId, UserId};
use crate::ratings::{Ratings, Seen};
use crate::topn::{Query, Scored, Selector};

/// Pseudo-ratings at the global mean added to each movie's mean in [`EaseModel::predict`], so
/// a movie with one 5-star rating is not predicted 5 stars.
const PREDICT_PRIOR: f64 = 5.0;

/// Below this many movies the factorisation runs on the calling thread (spawning costs more).
const PARALLEL_FROM: usize = 256;

/// Hyper-parameters of EASE; `Ease::default()` is the tuned setting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ease {
    /// L2 penalty `λ` added to the Gram diagonal (default 100, chosen on the inner split of
    /// ml-latest-small; 50–400 are within 0.003 NDCG@10 there). Must be finite and > 0.
    pub lambda: f32,
    /// Ratings at or above this are the positives `X` is built from (default 4.0, the
    /// protocol's "liked"); lower ratings only count as seen.
    pub positive_threshold: f32,
    /// Most movies to fit on (default 10,000: about 1.6 GB while fitting, 400 MB for `B`):
    /// a larger catalogue keeps its most-liked movies, and the tail (movies with few likes,
    /// rarely in anyone's top 10) is left to the popularity and content models. Must be ≥ 1.
    pub max_items: usize,
    /// A liked movie weighs `rating − query_offset` in a user's query (default `Some(3.0)`,
    /// chosen on the inner split); `None` weighs every liked movie 1 (plain EASE). Must be
    /// finite and below `positive_threshold`.
    pub query_offset: Option<f32>,
}

impl Default for Ease {
    fn default() -> Self {
        Self { lambda: 100.0, positive_threshold: 4.0, max_items: 10_000, query_offset: Some(3.0) }
    }
}

impl Ease {
    /// Fits `B` on the positive ratings of `ratings`. Seen lists keep every rating.
    ///
    /// A data set without any positive rating fits an empty model that recommends nothing.
    ///
    /// # Errors
    /// [`ModelError::EmptyRatings`]; [`ModelError::InvalidParameter`] for a `lambda` that is not
    /// finite and > 0, a non-finite `positive_threshold`, or `max_items` of 0.
    pub fn fit(&self, ratings: &Ratings) -> Result<EaseModel, ModelError> {
        if !(self.lambda.is_finite() && self.lambda > 0.0) {
            return Err(ModelError::InvalidParameter {
                name: "lambda",
                reason: format!("must be finite and > 0, got {}", self.lambda),
            });
        }
        if !self.positive_threshold.is_finite() {
            return Err(ModelError::InvalidParameter {
                name: "positive_threshold",
                reason: format!("must be finite, got {}", self.positive_threshold),
            });
        }
        if let Some(offset) = self.query_offset
            && !(offset.is_finite() && offset < self.positive_threshold)
        {
            return Err(ModelError::InvalidParameter {
                name: "query_offset",
                reason: format!(
                    "must be finite and below the positive threshold {}, got {offset}",
                    self.positive_threshold
                ),
            });
        }
        if self.max_items == 0 {
            return Err(ModelError::InvalidParameter { name: "max_items", reason: "must be ≥ 1".into() });
        }
        if ratings.is_empty() {
            return Err(ModelError::EmptyRatings);
        }

        // Columns of X: the movies with at least one positive, at most `max_items` of them
        // (the most liked; ties to the smaller id), in ascending dense index (so ascending
        // MovieLens id).
        let liked = |v: f32| v >= self.positive_threshold;
        let mut likes = vec![0u32; ratings.n_items()];
        for (&i, &v) in ratings.items().iter().zip(ratings.values()) {
            if liked(v) {
                likes[i as usize] += 1;
            }
        }
        let mut items: Vec<u32> = (0..ratings.n_items() as u32).filter(|&i| likes[i as usize] > 0).collect();
        if items.len() > self.max_items {
            items.sort_by_key(|&i| (std::cmp::Reverse(likes[i as usize]), i));
            items.truncate(self.max_items);
            items.sort_unstable();
        }
        let mut column = vec![u32::MAX; ratings.n_items()];
        for (c, &i) in items.iter().enumerate() {
            column[i as usize] = c as u32;
        }
        let n = items.len();

        // Each user's positive columns, ascending (user rows are sorted by movie).
        let mut user_offsets = Vec::with_capacity(ratings.n_users() + 1);
        user_offsets.push(0);
        let mut user_items = Vec::new();
        let mut user_weights = Vec::new();
        for u in 0..ratings.n_users() as u32 {
            let (row_items, row_values, _) = ratings.user_row(u);
            for (&i, &v) in
                row_items.iter().zip(row_values).filter(|(i, v)| liked(**v) && column[**i as usize] != u32::MAX)
            {
                user_items.push(column[i as usize]);
                user_weights.push(query_weight(self.query_offset, v));
            }
            user_offsets.push(user_items.len());
        }

        let weights = ease_weights(n, &user_offsets, &user_items, f64::from(self.lambda))?;

        let (item_mean, global_mean) = item_means(ratings);
        Ok(EaseModel {
            lambda: self.lambda,
            positive_threshold: self.positive_threshold,
            user_ids: ratings.user_ids().clone(),
            item_ids: ratings.item_ids().clone(),
            items,
            column,
            weights,
            query_offset: self.query_offset,
            user_offsets,
            user_items,
            user_weights,
            seen: ratings.seen(),
            item_mean,
            global_mean,
            range: ratings.value_range().unwrap_or((f32::MIN, f32::MAX)),
        })
    }
}

/// A liked rating's weight in the user's query ([`Ease::query_offset`]).
fn query_weight(offset: Option<f32>, rating: f32) -> f32 {
    offset.map_or(1.0, |offset| rating - offset)
}

/// `B = I − P diagMat(1/diag(P))` with `P = (XᵀX + λI)⁻¹`, row-major `f32` (row `i` = what
/// liking movie `i` adds to every movie's score). `X`'s rows are `user_items` sliced by
/// `user_offsets`, each ascending.
fn ease_weights(n: usize, user_offsets: &[usize], user_items: &[u32], lambda: f64) -> Result<Array2<f32>, ModelError> {
    let par = if n >= PARALLEL_FROM { Par::rayon(0) } else { Par::Seq };
    // Lower triangle of G = XᵀX + λI (column-major): column a, rows b ≥ a.
    let mut g = Mat::<f64>::zeros(n, n);
    for w in user_offsets.windows(2) {
        let row = &user_items[w[0]..w[1]];
        for (k, &a) in row.iter().enumerate() {
            let col = g.col_as_slice_mut(a as usize);
            for &b in &row[k..] {
                col[b as usize] += 1.0;
            }
        }
    }
    for j in 0..n {
        g[(j, j)] += lambda;
    }

    // G = L Lᵀ in place, then L⁻¹, then P = L⁻ᵀ L⁻¹ (lower triangle): at most two n × n
    // matrices alive at once.
    let mut mem = MemBuffer::new(cholesky_in_place_scratch::<f64>(n, par, Default::default()));
    cholesky_in_place(g.as_mut(), LltRegularization::default(), par, MemStack::new(&mut mem), Default::default())
        .map_err(|e| ModelError::InvalidParameter {
            name: "lambda",
            reason: format!("XᵀX + λI is not positive definite ({e}); raise lambda"),
        })?;
    drop(mem);
    let mut l_inv = Mat::<f64>::zeros(n, n);
    invert_lower_triangular(l_inv.as_mut(), g.as_ref(), par);
    drop(g);
    let mut p = Mat::<f64>::zeros(n, n);
    matmul(
        p.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        l_inv.transpose(),
        BlockStructure::TriangularUpper,
        l_inv.as_ref(),
        BlockStructure::TriangularLower,
        1.0,
        par,
    );
    drop(l_inv);

    // B[i, j] = −P[i, j] / P[j, j] off the diagonal, 0 on it; P is symmetric and only its
    // lower triangle (j ≥ i in column i) is filled.
    let diag: Vec<f64> = (0..n).map(|j| p[(j, j)]).collect();
    let mut b = Array2::<f32>::zeros((n, n));
    for i in 0..n {
        let col = &p.col_as_slice(i)[i + 1..];
        for (off, &v) in col.iter().enumerate() {
            let j = i + 1 + off;
            b[[i, j]] = (-v / diag[j]) as f32;
            b[[j, i]] = (-v / diag[i]) as f32;
        }
    }
    if b.iter().any(|x| !x.is_finite()) {
        return Err(ModelError::InvalidParameter {
            name: "lambda",
            reason: "the inverse Gram matrix is not finite; raise lambda".into(),
        });
    }
    Ok(b)
}

/// Per-movie mean rating shrunk toward the global mean by [`PREDICT_PRIOR`] pseudo-ratings,
/// and the global mean.
fn item_means(ratings: &Ratings) -> (Vec<f32>, f32) {
    let mu = f64::from(ratings.global_mean());
    let mut sum = vec![0f64; ratings.n_items()];
    let mut count = vec![0f64; ratings.n_items()];
    for (&i, &v) in ratings.items().iter().zip(ratings.values()) {
        sum[i as usize] += f64::from(v);
        count[i as usize] += 1.0;
    }
    let means = sum.iter().zip(&count).map(|(s, c)| ((s + PREDICT_PRIOR * mu) / (c + PREDICT_PRIOR)) as f32).collect();
    (means, mu as f32)
}

/// A fitted EASE model: the item–item weights `B` and each user's liked movies.
///
/// Only movies with at least one positive training rating have a column in `B`, so movies
/// nobody liked are never recommended. A user with no positive rating (or an unknown user) has
/// nothing to score from and gets an empty list: route such users to popularity.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EaseModel {
    lambda: f32,
    positive_threshold: f32,
    user_ids: IdMap,
    item_ids: IdMap,
    /// Dense movie index (of `item_ids`) of each column of `B`.
    items: Vec<u32>,
    /// Column of each dense movie index, `u32::MAX` for movies without a positive.
    column: Vec<u32>,
    weights: Array2<f32>,
    query_offset: Option<f32>,
    user_offsets: Vec<usize>,
    /// Each user's positive columns, ascending.
    user_items: Vec<u32>,
    /// The query weight of each entry of `user_items`.
    user_weights: Vec<f32>,
    seen: Arc<Seen>,
    item_mean: Vec<f32>,
    global_mean: f32,
    range: (f32, f32),
}

impl EaseModel {
    /// The `λ` it was fitted with.
    pub fn lambda(&self) -> f32 {
        self.lambda
    }

    /// Ratings at or above this are likes (the query and the positives `B` was fitted on).
    pub fn positive_threshold(&self) -> f32 {
        self.positive_threshold
    }

    /// Number of movies with a column in `B` (at least one positive training rating).
    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// MovieLens ids of `B`'s rows and columns, ascending.
    pub fn item_ids(&self) -> impl ExactSizeIterator<Item = ItemId> + '_ {
        self.items.iter().map(|&i| self.item_ids.id(i))
    }

    /// The weights `B` (zero diagonal), rows and columns in [`EaseModel::item_ids`] order.
    pub fn weights(&self) -> ArrayView2<'_, f32> {
        self.weights.view()
    }

    /// Scores of every column for a user who liked the `liked` columns with these query weights.
    fn scores(&self, liked: &[u32], weights: &[f32]) -> Vec<f32> {
        let mut scores = vec![0f32; self.items.len()];
        for (&i, &q) in liked.iter().zip(weights) {
            let row = self.weights.row(i as usize);
            let row = row.as_slice().unwrap_or(&[]);
            scores.iter_mut().zip(row).for_each(|(s, &w)| *s += q * w);
        }
        scores
    }

    /// Column of `item` in `B`, if anyone liked it in training.
    pub(crate) fn column_of(&self, item: ItemId) -> Option<usize> {
        let c = self.column[self.item_ids.index(item)? as usize];
        (c != u32::MAX).then_some(c as usize)
    }

    /// The scores at `columns` only (each `Some(column)` of [`Self::column_of`], `None` scores
    /// 0) for a user with these ratings: `|liked| · |columns|` work instead of a whole row.
    pub(crate) fn scores_at(&self, rated: &[(ItemId, f32)], weighted: bool, columns: &[Option<usize>]) -> Vec<f32> {
        let (liked, weights) = self.query_of(rated, weighted);
        columns
            .iter()
            .map(|c| {
                c.map_or(0.0, |c| liked.iter().zip(&weights).map(|(&i, &q)| q * self.weights[[i as usize, c]]).sum())
            })
            .collect()
    }

    /// Why `item` scores for a user with these `(movie, rating)` ratings: each liked movie's
    /// share `wᵢ · B[i, item]` of the score, the largest `n` that are positive, largest first
    /// (ties to the smaller id). Only liked movies are in the query, so only they are cited.
    pub fn explain_for_ratings(&self, rated: &[(ItemId, f32)], item: ItemId, n: usize) -> Vec<Reason> {
        let Some(target) = self.column_of(item) else { return Vec::new() };
        let mut cited = std::collections::HashSet::new();
        let mut out: Vec<Reason> = rated
            .iter()
            .filter(|r| r.1 >= self.positive_threshold && r.0 != item && cited.insert(r.0))
            .filter_map(|&(i, v)| {
                let weight = query_weight(self.query_offset, v) * self.weights[[self.column_of(i)?, target]];
                (weight > 0.0 && weight.is_finite()).then_some(Reason { item: i, rating: v, weight })
            })
            .collect();
        out.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.item.cmp(&b.item)));
        out.truncate(n);
        out
    }

    /// The query of a user with these `(movie, rating)` ratings: the columns of the liked
    /// movies, ascending, and their weights (`weighted`: as in training; else 1). Movies
    /// unknown to the model are ignored; a movie rated twice counts once, with its first rating.
    fn query_of(&self, rated: &[(ItemId, f32)], weighted: bool) -> (Vec<u32>, Vec<f32>) {
        let mut liked: Vec<(u32, f32)> = rated
            .iter()
            .filter(|r| r.1 >= self.positive_threshold)
            .filter_map(|&(item, v)| Some((self.column_of(item)? as u32, v)))
            .collect();
        liked.sort_by_key(|l| l.0);
        liked.dedup_by_key(|l| l.0);
        liked.into_iter().map(|(c, v)| (c, if weighted { query_weight(self.query_offset, v) } else { 1.0 })).unzip()
    }

    /// The best columns under `query`; `seen` holds sorted dense movie indices to exclude.
    fn top_n(&self, liked: &[u32], weights: &[f32], seen: &[u32], query: &Query<'_>) -> Vec<Scored> {
        if liked.is_empty() || query.n() == 0 {
            return Vec::new();
        }
        let mut sel = Selector::new(query.n());
        for (&dense, score) in self.items.iter().zip(self.scores(liked, weights)) {
            let item = self.item_ids.id(dense);
            sel.offer(item, score, || {
                !(query.excludes_seen() && seen.binary_search(&dense).is_ok()) && query.accepts(item)
            });
        }
        sel.into_sorted()
    }

    /// EASE top-N from a user's current ratings (new or just-updated users, no refit):
    /// ratings ≥ the positive threshold are the liked movies (weighted as in training), and
    /// every rated movie counts as seen. Movies unknown to the model are ignored; a movie rated
    /// twice counts once, with its first rating.
    pub fn recommend_for_ratings(&self, rated: &[(ItemId, f32)], query: &Query<'_>) -> Vec<Scored> {
        let (liked, weights) = self.query_of(rated, true);
        let mut seen: Vec<u32> = rated.iter().filter_map(|r| self.item_ids.index(r.0)).collect();
        seen.sort_unstable();
        self.top_n(&liked, &weights, &seen, query)
    }
}

impl Recommender for EaseModel {
    /// EASE scores are not ratings: this is the movie's mean training rating shrunk toward the
    /// global mean by 5 pseudo-ratings (the global mean for unknown movies), whoever the user.
    fn predict(&self, _user: UserId, item: ItemId) -> f32 {
        let raw = self.item_ids.index(item).map_or(self.global_mean, |i| self.item_mean[i as usize]);
        raw.clamp(self.range.0, self.range.1)
    }

    /// Scores are `Σ wᵢ B[i, ·]` over the user's liked training movies; ties go to the smaller
    /// movie id. Unknown users and users without a liked movie get an empty list.
    fn recommend(&self, user: UserId, query: &Query<'_>) -> Vec<Scored> {
        let Some(u) = self.user_ids.index(user) else { return Vec::new() };
        let row = self.user_offsets[u as usize]..self.user_offsets[u as usize + 1];
        self.top_n(&self.user_items[row.clone()], &self.user_weights[row], self.seen.of(u), query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratings::Rating;

    /// Users 1–4 like movies 10 and 20 together; users 5–7 like 30 and 40 together; movie 50
    /// is liked by one user who also liked 10 and disliked by others.
    fn ratings() -> Ratings {
        Ratings::from_rows([
            (1, 10, 5.0, 0),
            (1, 20, 4.5, 0),
            (2, 10, 4.0, 0),
            (2, 20, 5.0, 0),
            (3, 10, 5.0, 0),
            (3, 20, 4.0, 0),
            (3, 30, 1.0, 0),
            (4, 10, 4.0, 0),
            (4, 20, 4.0, 0),
            (4, 50, 4.0, 0),
            (5, 30, 5.0, 0),
            (5, 40, 4.0, 0),
            (6, 30, 4.5, 0),
            (6, 40, 5.0, 0),
            (7, 30, 4.0, 0),
            (7, 40, 4.0, 0),
            (7, 50, 1.0, 0),
            // User 8 liked only 10; user 9 liked only 30; user 10 liked nothing.
            (8, 10, 5.0, 0),
            (8, 40, 2.0, 0),
            (9, 30, 5.0, 0),
            (10, 20, 2.0, 0),
            // Movie 60: rated, never liked.
            (10, 60, 3.0, 0),
        ])
        .unwrap()
    }

    fn ids(list: &[Scored]) -> Vec<ItemId> {
        list.iter().map(|s| s.item).collect()
    }

    fn small() -> Ease {
        Ease { lambda: 1.0, ..Ease::default() }
    }

    #[test]
    fn co_liked_movies_are_recommended_first() {
        let m = small().fit(&ratings()).unwrap();
        // User 8 liked 10 (and rated 40): 20, always liked with 10, comes first.
        assert_eq!(ids(&m.recommend(8, &Query::top(1))), vec![20]);
        // User 9 liked 30: 40 first.
        assert_eq!(ids(&m.recommend(9, &Query::top(1))), vec![40]);
        // Folding the same ratings in gives the same list.
        assert_eq!(m.recommend_for_ratings(&[(10, 5.0), (40, 2.0)], &Query::top(3)), m.recommend(8, &Query::top(3)));
    }

    #[test]
    fn seen_movies_are_excluded_whatever_their_rating_unless_asked() {
        let m = small().fit(&ratings()).unwrap();
        let all = m.recommend(8, &Query::top(10));
        assert!(!ids(&all).contains(&10) && !ids(&all).contains(&40), "{all:?}");
        // Only liked movies have columns: 60 (never liked) is not a candidate.
        assert_eq!(ids(&all).len(), 3);
        assert!(!ids(&all).contains(&60));
        let with_seen = m.recommend(8, &Query::top(10).include_seen());
        assert!(ids(&with_seen).contains(&10) && ids(&with_seen).contains(&40));
    }

    #[test]
    fn query_filters_and_n_are_honoured_and_lists_are_sorted() {
        let m = small().fit(&ratings()).unwrap();
        let list = m.recommend(8, &Query::top(2).exclude([20]));
        assert_eq!(list.len(), 2);
        assert!(!ids(&list).contains(&20));
        assert!(list.windows(2).all(|w| w[0].score >= w[1].score));
        let allowed = [30, 50].into_iter().collect();
        assert!(ids(&m.recommend(8, &Query::top(5).within(&allowed))).iter().all(|i| allowed.contains(i)));
        assert!(m.recommend(8, &Query::top(0)).is_empty());
    }

    #[test]
    fn a_five_star_movie_pulls_harder_than_a_four_star_one() {
        let m = small().fit(&ratings()).unwrap();
        // Liking 10 and 30: the partner of the one rated 5 (20 or 40) comes first.
        assert_eq!(ids(&m.recommend_for_ratings(&[(10, 5.0), (30, 4.0)], &Query::top(1))), vec![20]);
        assert_eq!(ids(&m.recommend_for_ratings(&[(10, 4.0), (30, 5.0)], &Query::top(1))), vec![40]);
        // Plain EASE weighs both likes 1: the same list whichever got the 5.
        let plain = Ease { query_offset: None, ..small() }.fit(&ratings()).unwrap();
        assert_eq!(
            plain.recommend_for_ratings(&[(10, 5.0), (30, 4.0)], &Query::top(4)),
            plain.recommend_for_ratings(&[(10, 4.0), (30, 5.0)], &Query::top(4))
        );
        // Training users are weighted the same way as folded-in ratings.
        assert_eq!(m.recommend(1, &Query::top(3)), m.recommend_for_ratings(&[(10, 5.0), (20, 4.5)], &Query::top(3)));
    }

    #[test]
    fn users_without_a_liked_movie_get_nothing() {
        let m = small().fit(&ratings()).unwrap();
        assert!(m.recommend(10, &Query::top(5)).is_empty(), "liked nothing");
        assert!(m.recommend(999, &Query::top(5)).is_empty(), "unknown");
    }

    #[test]
    fn weights_solve_the_ease_normal_equations() {
        // (G + λI)(I − B) must be diagonal, and B's diagonal zero, with G = XᵀX.
        let r = ratings();
        let m = Ease { lambda: 2.5, ..Ease::default() }.fit(&r).unwrap();
        let cols: Vec<ItemId> = m.item_ids().collect();
        assert_eq!(cols, vec![10, 20, 30, 40, 50]);
        let n = cols.len();
        let mut x = Array2::<f64>::zeros((r.n_users(), n));
        for rating in r.iter().filter(|r| r.value >= 4.0) {
            let c = cols.iter().position(|&i| i == rating.item).unwrap();
            x[[r.user_ids().index(rating.user).unwrap() as usize, c]] = 1.0;
        }
        let g = x.t().dot(&x) + Array2::<f64>::eye(n) * 2.5;
        let b = m.weights().mapv(f64::from);
        let prod = g.dot(&(Array2::<f64>::eye(n) - &b));
        for i in 0..n {
            assert_eq!(b[[i, i]], 0.0);
            assert!(prod[[i, i]] > 0.0);
            for j in (0..n).filter(|&j| j != i) {
                assert!(prod[[i, j]].abs() < 1e-5, "({i}, {j}) = {}", prod[[i, j]]);
            }
        }
        // 10 and 20 reinforce each other; 10 and 30 (never co-liked) do not.
        assert!(b[[0, 1]] > 0.0 && b[[1, 0]] > 0.0);
        assert!(b[[0, 2]] <= 0.0);
    }

    #[test]
    fn the_factorisation_matches_on_the_parallel_path() {
        // Enough movies to take the multithreaded path: 300 movies in blocks of 3 co-liked.
        let mut rows = Vec::new();
        for u in 0..600i64 {
            let block = (u % 100) * 3;
            for k in 0..3i64 {
                rows.push((u, block + k, if (u / 100 + k) % 3 == 0 { 3.0 } else { 5.0 }, 0));
            }
        }
        let r = Ratings::from_rows(rows).unwrap();
        let m = Ease { lambda: 10.0, ..Ease::default() }.fit(&r).unwrap();
        assert!(m.n_items() >= PARALLEL_FROM);
        // A user who liked only movie 0 of block 0 gets its block-mates first.
        let list = m.recommend_for_ratings(&[(0, 5.0)], &Query::top(2));
        assert_eq!(ids(&list), vec![1, 2]);
        assert!(list[1].score > 0.0);
        assert!(m.weights().iter().all(|w| w.is_finite()));
    }

    #[test]
    fn bad_parameters_are_rejected() {
        let r = ratings();
        for lambda in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let err = Ease { lambda, ..Ease::default() }.fit(&r).unwrap_err();
            assert!(matches!(err, ModelError::InvalidParameter { name: "lambda", .. }), "{lambda}: {err}");
        }
        let err = Ease { positive_threshold: f32::NAN, ..Ease::default() }.fit(&r).unwrap_err();
        assert!(matches!(err, ModelError::InvalidParameter { name: "positive_threshold", .. }));
        for offset in [4.0, 4.5, f32::NAN, f32::NEG_INFINITY] {
            let err = Ease { query_offset: Some(offset), ..Ease::default() }.fit(&r).unwrap_err();
            assert!(matches!(err, ModelError::InvalidParameter { name: "query_offset", .. }), "{offset}: {err}");
        }
        let err = Ease { max_items: 0, ..Ease::default() }.fit(&r).unwrap_err();
        assert!(matches!(err, ModelError::InvalidParameter { name: "max_items", .. }), "{err}");
        assert_eq!(
            Ease::default().fit(&Ratings::from_rows(Vec::<Rating>::new()).unwrap()).unwrap_err(),
            ModelError::EmptyRatings
        );
    }

    #[test]
    fn no_positive_rating_fits_an_empty_model_and_predictions_are_item_means() {
        let r = Ratings::from_rows([(1, 10, 2.0, 0), (2, 10, 3.0, 0), (2, 20, 1.0, 0)]).unwrap();
        let m = Ease::default().fit(&r).unwrap();
        assert_eq!(m.n_items(), 0);
        assert!(m.recommend(2, &Query::top(5)).is_empty());
        // Global mean 2; movie 10: (2 + 3 + 5·2) / 7.
        assert!((m.predict(1, 10) - 15.0 / 7.0).abs() < 1e-6);
        assert!((m.predict(1, 99) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn a_capped_catalogue_keeps_its_most_liked_movies() {
        // Likes: 10 and 20 four each, 30 and 40 three each, 50 one.
        let m = Ease { max_items: 3, ..Ease::default() }.fit(&ratings()).unwrap();
        assert_eq!(m.item_ids().collect::<Vec<_>>(), vec![10, 20, 30]);
        for u in 1..=7 {
            assert!(m.recommend(u, &Query::top(5)).iter().all(|s| s.item != 40 && s.item != 50));
        }
    }

    #[test]
    fn explanations_cite_liked_movies_by_their_share_of_the_score() {
        let m = Ease { lambda: 1.0, ..Ease::default() }.fit(&ratings()).unwrap();
        // A user who loved 10, liked 30 and disliked 40: 20 is explained by 10 (it co-occurs
        // with 10 only), never by the disliked 40.
        let rated = [(10, 5.0), (30, 4.0), (40, 1.0)];
        let why = m.explain_for_ratings(&rated, 20, 3);
        assert_eq!(why.first().map(|r| r.item), Some(10));
        assert!(why.iter().all(|r| r.item != 40 && r.weight > 0.0 && r.rating >= 4.0));
        let total: f32 = m.scores_at(&rated, true, &[m.column_of(20)])[0];
        let cited: f32 = why.iter().map(|r| r.weight).sum();
        assert!(cited >= total - 1e-6, "every positive share is cited: {cited} vs score {total}");
        assert!(m.explain_for_ratings(&rated, 999, 3).is_empty());
    }
}
