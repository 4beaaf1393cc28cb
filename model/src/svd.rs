//! Truncated SVD of the user × movie rating matrix, computed sparsely by randomized range
//! finding with power iterations (Halko, Martinsson & Tropp 2011), and the PureSVD recommender
//! built on it (Cremonesi et al. 2010): `scores(u) = r_u · V · Vᵀ`.
//!
//! Only the nonzeros are touched: the matrix enters through sparse products with thin dense
//! blocks, and the small projected problem is solved by the Jacobi eigensolver in
//! [`crate::linalg`], so no LAPACK is needed.

use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Slice};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::Recommender;
use crate::error::ModelError;
use crate::explain::{Reason, cosine, reasons};
use crate::ids::{IdMap, ItemId, UserId};
use crate::init::normal_matrix;
use crate::linalg::{orthonormalize, symmetric_eigen};
use crate::panel::Panels;
use crate::ratings::{Csr, Ratings, Seen};
use crate::topn::{Query, Scored, Selector};

/// What is subtracted from each observed rating before the decomposition; missing cells stay
/// 0, i.e. "at the centre", which keeps the matrix sparse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Centring {
    /// Raw stars: missing = 0 stars, so the factors also encode what people watch (the
    /// original PureSVD). On the ml-latest-small top-N split it ranks best (NDCG@10 0.108 at
    /// rank 16, vs 0.101 for `Global` at rank 32).
    None,
    /// Stars minus the global mean: a true SVD of the centred matrix that still keeps some
    /// "what people watch" signal, since every observed rating is informative.
    #[default]
    Global,
    /// Stars minus the user's own mean: harsh and generous raters look alike, but a
    /// one-rating user contributes nothing.
    User,
}

/// Hyper-parameters of the truncated SVD; construct with [`TruncatedSvd::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct TruncatedSvd {
    rank: usize,
    oversample: usize,
    power_iters: usize,
    centring: Centring,
    seed: u64,
}

/// Builder of [`TruncatedSvd`].
#[derive(Debug, Clone)]
pub struct TruncatedSvdBuilder(TruncatedSvd);

impl Default for TruncatedSvdBuilder {
    fn default() -> Self {
        Self(TruncatedSvd { rank: 32, oversample: 16, power_iters: 3, centring: Centring::Global, seed: 42 })
    }
}

impl TruncatedSvdBuilder {
    /// Singular triplets to keep (default 32; top-N quality falls beyond ~32 on ml-latest-small).
    pub fn rank(mut self, rank: usize) -> Self {
        self.0.rank = rank;
        self
    }

    /// Extra random directions beyond `rank` (default 16); more makes the leading triplets
    /// more accurate for little cost.
    pub fn oversample(mut self, p: usize) -> Self {
        self.0.oversample = p;
        self
    }

    /// Power iterations (default 3): each sharpens a slowly decaying spectrum, at the cost of
    /// two sparse products.
    pub fn power_iters(mut self, q: usize) -> Self {
        self.0.power_iters = q;
        self
    }

    /// What to subtract from ratings (default [`Centring::Global`]).
    pub fn centring(mut self, c: Centring) -> Self {
        self.0.centring = c;
        self
    }

    /// Seed of the random test matrix (default 42).
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }

    /// Validates the hyper-parameters.
    ///
    /// # Errors
    /// [`ModelError::InvalidParameter`] for rank 0.
    pub fn build(self) -> Result<TruncatedSvd, ModelError> {
        if self.0.rank == 0 {
            return Err(ModelError::InvalidParameter { name: "rank", reason: "must be >= 1".into() });
        }
        Ok(self.0)
    }
}

/// A thin decomposition `A ≈ u · diag(s) · vᵀ` (u: m × r, v: n × r).
#[derive(Debug, Clone)]
pub(crate) struct Decomposition {
    pub(crate) u: Array2<f64>,
    pub(crate) s: Array1<f64>,
    pub(crate) v: Array2<f64>,
}

/// Sparse (rows × cols) times dense (cols × l), row-parallel for large matrices; each output
/// row is computed the same way whatever the thread count, so results stay deterministic.
fn csr_mul(csr: &Csr, x: &Array2<f64>) -> Array2<f64> {
    let l = x.ncols();
    let x = x.as_standard_layout();
    let xs = x.as_slice().unwrap_or(&[]);
    let rows = csr.rows();
    let mut out = vec![0f64; rows * l];
    let nnz = csr.indices.len();
    let threads = if nnz >= 1 << 20 { std::thread::available_parallelism().map_or(1, |n| n.get().min(8)) } else { 1 };
    let mul_rows = |first: usize, out: &mut [f64]| {
        for (k, orow) in out.chunks_exact_mut(l).enumerate() {
            let (idx, vals) = csr.row(first + k);
            for (&c, &v) in idx.iter().zip(vals) {
                let v = f64::from(v);
                let xr = &xs[c as usize * l..(c as usize + 1) * l];
                orow.iter_mut().zip(xr).for_each(|(o, &x)| *o += v * x);
            }
        }
    };
    if threads <= 1 || l == 0 {
        mul_rows(0, &mut out);
    } else {
        // Split rows so each thread gets about the same number of nonzeros.
        let mut bounds = vec![0usize];
        for t in 1..threads {
            let target = nnz * t / threads;
            bounds.push(csr.offsets.partition_point(|&o| o < target).min(rows));
        }
        bounds.push(rows);
        std::thread::scope(|scope| {
            let mut rest = out.as_mut_slice();
            for w in bounds.windows(2) {
                let (chunk, tail) = rest.split_at_mut((w[1] - w[0]) * l);
                rest = tail;
                let first = w[0];
                scope.spawn(move || mul_rows(first, chunk));
            }
        });
    }
    Array2::from_shape_vec((rows, l), out).unwrap_or_else(|_| Array2::zeros((rows, l)))
}

/// Randomized truncated SVD of the sparse matrix given both row-wise (`rows`) and column-wise
/// (`cols` = its transpose). Returns at most `rank` triplets with nonzero singular values.
pub(crate) fn randomized_svd(
    rows: &Csr,
    cols: &Csr,
    rank: usize,
    oversample: usize,
    power_iters: usize,
    seed: u64,
) -> Decomposition {
    let (m, n) = (rows.rows(), cols.rows());
    let l = (rank + oversample).min(m).min(n);
    let mut rng = StdRng::seed_from_u64(seed);
    let omega = normal_matrix(n, l, 1.0, &mut rng);
    let mut q = orthonormalize(&csr_mul(rows, &omega));
    for _ in 0..power_iters {
        let z = orthonormalize(&csr_mul(cols, &q));
        q = orthonormalize(&csr_mul(rows, &z));
    }
    // B = Qᵀ A, kept transposed (n × l'); its small Gram B Bᵀ = W Λ Wᵀ gives A ≈ (Q W) Σ Vᵀ.
    let bt = csr_mul(cols, &q);
    let (lambda, w) = symmetric_eigen(bt.t().dot(&bt).view());
    let top = lambda.first().copied().unwrap_or(0.0).max(0.0).sqrt();
    let r = lambda.iter().take(rank).take_while(|&&x| x > 0.0 && x.sqrt() > 1e-10 * top).count();
    let w = w.slice_axis(Axis(1), Slice::from(..r)).to_owned();
    let sv: Array1<f64> = lambda.iter().take(r).map(|x| x.sqrt()).collect();
    let u = q.dot(&w);
    let mut v = bt.dot(&w);
    for (mut col, &sj) in v.axis_iter_mut(Axis(1)).zip(&sv) {
        col /= sj;
    }
    Decomposition { u, s: sv, v }
}

impl TruncatedSvd {
    /// A builder with the default hyper-parameters.
    pub fn builder() -> TruncatedSvdBuilder {
        TruncatedSvdBuilder::default()
    }

    /// Decomposes the centred rating matrix of `ratings`.
    ///
    /// # Errors
    /// [`ModelError::EmptyRatings`].
    pub fn fit(&self, ratings: &Ratings) -> Result<PureSvd, ModelError> {
        if ratings.is_empty() {
            return Err(ModelError::EmptyRatings);
        }
        let mu = ratings.global_mean();
        let offsets: Array1<f32> = match self.centring {
            Centring::None => Array1::zeros(ratings.n_users()),
            Centring::Global => Array1::from_elem(ratings.n_users(), mu),
            Centring::User => (0..ratings.n_users() as u32)
                .map(|u| {
                    let v = ratings.user_row(u).1;
                    (v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64) as f32
                })
                .collect(),
        };
        let centre = |u: u32, _: u32, v: f32| v - offsets[u as usize];
        let by_user = ratings.by_user_with(centre);
        let by_item = ratings.by_item_with(centre);
        let d = randomized_svd(&by_user, &by_item, self.rank, self.oversample, self.power_iters, self.seed);
        drop((by_user, by_item));
        let item_vectors = d.v.mapv(|x| x as f32);
        Ok(PureSvd {
            user_ids: ratings.user_ids().clone(),
            item_ids: ratings.item_ids().clone(),
            centring: self.centring,
            global_mean: mu,
            panels: Panels::from_rows(item_vectors.view(), None),
            singular_values: d.s.mapv(|x| x as f32),
            user_vectors: d.u.mapv(|x| x as f32),
            item_vectors,
            offsets,
            seen: ratings.seen(),
            range: ratings.value_range().unwrap_or((f32::MIN, f32::MAX)),
        })
    }
}

/// A truncated SVD `R − offsets ≈ U Σ Vᵀ` of the rating matrix and the PureSVD top-N built on
/// it: a user's scores are their centred ratings projected on the movie subspace, `r_u V Vᵀ`.
#[derive(Debug, Clone)]
pub struct PureSvd {
    user_ids: IdMap,
    item_ids: IdMap,
    centring: Centring,
    global_mean: f32,
    offsets: Array1<f32>,
    singular_values: Array1<f32>,
    user_vectors: Array2<f32>,
    item_vectors: Array2<f32>,
    panels: Panels,
    seen: Arc<Seen>,
    range: (f32, f32),
}

impl PureSvd {
    /// Number of singular triplets kept (≤ the requested rank when the matrix has lower rank).
    pub fn rank(&self) -> usize {
        self.singular_values.len()
    }

    /// Singular values, descending.
    pub fn singular_values(&self) -> ArrayView1<'_, f32> {
        self.singular_values.view()
    }

    /// Left singular vectors `U`, one row per dense user index.
    pub fn user_vectors(&self) -> ArrayView2<'_, f32> {
        self.user_vectors.view()
    }

    /// Right singular vectors `V`, one row per dense movie index.
    pub fn item_vectors(&self) -> ArrayView2<'_, f32> {
        self.item_vectors.view()
    }

    /// Movie embeddings `V Σ` for item–item similarity: directions weighted by how much of
    /// the rating matrix they explain.
    pub fn item_embeddings(&self) -> Array2<f32> {
        &self.item_vectors * &self.singular_values
    }

    /// Users known to the model.
    pub fn user_ids(&self) -> &IdMap {
        &self.user_ids
    }

    /// Movies known to the model.
    pub fn item_ids(&self) -> &IdMap {
        &self.item_ids
    }

    /// The centring used.
    pub fn centring(&self) -> Centring {
        self.centring
    }

    fn offset_for(&self, rated: &[(ItemId, f32)]) -> f32 {
        match self.centring {
            Centring::None => 0.0,
            Centring::Global => self.global_mean,
            Centring::User if rated.is_empty() => self.global_mean,
            Centring::User => rated.iter().map(|r| r.1).sum::<f32>() / rated.len() as f32,
        }
    }

    /// Projects a user's current ratings on the movie subspace (`Σ_i (r_i − offset) V_i`): a
    /// new or just-updated user gets PureSVD scores without recomputing the SVD. Unknown
    /// movies are ignored.
    pub fn fold_in(&self, rated: &[(ItemId, f32)]) -> Vec<f32> {
        let offset = self.offset_for(rated);
        let mut p = vec![0f32; self.rank()];
        for &(item, r) in rated {
            if let Some(i) = self.item_ids.index(item) {
                let v = self.item_vectors.row(i as usize);
                p.iter_mut().zip(v.iter()).for_each(|(a, &b)| *a += (r - offset) * b);
            }
        }
        p
    }

    /// PureSVD top-N from a user's current ratings (folded in), excluding those movies.
    pub fn recommend_for_ratings(&self, rated: &[(ItemId, f32)], query: &Query<'_>) -> Vec<Scored> {
        let p = self.fold_in(rated);
        let mut seen: Vec<u32> = rated.iter().filter_map(|r| self.item_ids.index(r.0)).collect();
        seen.sort_unstable();
        self.top_n(&p, self.offset_for(rated), &seen, query)
    }

    fn top_n(&self, p: &[f32], offset: f32, seen: &[u32], query: &Query<'_>) -> Vec<Scored> {
        let mut sel = Selector::new(query.n());
        let rows = self.panels.rows();
        self.panels.for_each_panel(p, |base, scores| {
            sel.offer_panel(base, rows, scores, offset, seen, query, |r| Some(self.item_ids.id(r as u32)));
        });
        sel.into_sorted()
    }

    fn user_vector(&self, u: u32) -> Vec<f32> {
        self.user_vectors.row(u as usize).iter().zip(&self.singular_values).map(|(a, b)| a * b).collect()
    }

    /// The rated movies of `user` that most explain recommending `item`, by similarity of
    /// their `V Σ` embeddings. Empty when either is unknown.
    pub fn explain(&self, user: UserId, item: ItemId, n: usize) -> Vec<Reason> {
        let (Some(u), Some(i)) = (self.user_ids.index(user), self.item_ids.index(item)) else {
            return Vec::new();
        };
        let emb = |j: u32| -> Vec<f32> {
            self.item_vectors.row(j as usize).iter().zip(&self.singular_values).map(|(a, b)| a * b).collect()
        };
        let target = emb(i);
        let (items, values) = self.seen.rated(u);
        let rated = items.iter().zip(values).filter(|(j, _)| **j != i);
        reasons(rated.map(|(&j, &r)| (self.item_ids.id(j), r, cosine(&target, &emb(j)))), self.global_mean, n)
    }
}

impl Recommender for PureSvd {
    fn predict(&self, user: UserId, item: ItemId) -> f32 {
        let raw = match (self.user_ids.index(user), self.item_ids.index(item)) {
            (Some(u), Some(i)) => {
                let p = self.user_vector(u);
                self.offsets[u as usize]
                    + self.item_vectors.row(i as usize).iter().zip(&p).map(|(a, b)| a * b).sum::<f32>()
            }
            (Some(u), None) => self.offsets[u as usize],
            _ => self.global_mean,
        };
        raw.clamp(self.range.0, self.range.1)
    }

    /// Scores are reconstructed (centred-back) ratings. An unknown user gets an empty list:
    /// PureSVD has nothing to project (route cold users to popularity).
    fn recommend(&self, user: UserId, query: &Query<'_>) -> Vec<Scored> {
        let Some(u) = self.user_ids.index(user) else { return Vec::new() };
        self.top_n(&self.user_vector(u), self.offsets[u as usize], self.seen.of(u), query)
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;
    use crate::linalg::dense_svd;

    fn sparse(a: &Array2<f64>) -> (Csr, Csr) {
        let to_csr = |m: ArrayView2<'_, f64>| {
            let mut offsets = vec![0];
            let (mut indices, mut values) = (Vec::new(), Vec::new());
            for row in m.outer_iter() {
                for (c, &v) in row.iter().enumerate() {
                    if v != 0.0 {
                        indices.push(c as u32);
                        values.push(v as f32);
                    }
                }
                offsets.push(indices.len());
            }
            Csr { offsets, indices, values }
        };
        (to_csr(a.view()), to_csr(a.t()))
    }

    /// A sparse matrix with a decaying spectrum: planted rank-6 signal on ~40% of cells.
    fn test_matrix(m: usize, n: usize, seed: u64) -> Array2<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let a = normal_matrix(m, 6, 1.0, &mut rng);
        let b = normal_matrix(n, 6, 1.0, &mut rng);
        let scale = Array1::from_iter((0..6).map(|j| 2f64.powi(-j)));
        let full = (&a * &scale).dot(&b.t());
        full.mapv(|x| if rng.random::<f64>() < 0.4 { (x * 4.0).round() / 4.0 } else { 0.0 })
    }

    /// Largest principal-angle sine between the column spaces of orthonormal `a` and `b`.
    fn subspace_gap(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> f64 {
        let proj = a.dot(&a.t().dot(&b));
        let resid = &b - &proj;
        (0..resid.ncols()).map(|j| resid.column(j).dot(&resid.column(j)).sqrt()).fold(0.0, f64::max)
    }

    #[test]
    fn the_truncated_svd_matches_a_dense_svd_on_small_matrices() {
        for (m, n, seed) in [(60, 40, 1), (35, 70, 2)] {
            let a = test_matrix(m, n, seed);
            let (rows, cols) = sparse(&a);
            let exact = dense_svd(a.view());
            let k = 5;
            // Masking flattens the spectrum (σ5/σ6 ≈ 1.1), so give the power iterations room.
            let got = randomized_svd(&rows, &cols, k, 10, 8, seed);
            assert_eq!(got.s.len(), k);
            for j in 0..k {
                let rel = (got.s[j] - exact.s[j]).abs() / exact.s[j];
                assert!(rel < 1e-5, "{m}x{n} σ{j}: {} vs {}", got.s[j], exact.s[j]);
            }
            // The leading singular subspaces agree (left and right), and vectors pair up.
            let eu = exact.u.slice_axis(Axis(1), Slice::from(..k));
            let ev = exact.vt.slice_axis(Axis(0), Slice::from(..k)).t().to_owned();
            assert!(subspace_gap(eu, got.u.view()) < 1e-3, "left subspace {m}x{n}: {}", subspace_gap(eu, got.u.view()));
            assert!(subspace_gap(ev.view(), got.v.view()) < 1e-3, "right subspace {m}x{n}");
            let rebuilt = (&got.u * &got.s).dot(&got.v.t());
            let best = (&eu.to_owned() * &exact.s.slice_axis(Axis(0), Slice::from(..k))).dot(&ev.t());
            assert!((&rebuilt - &best).iter().all(|d| d.abs() < 1e-4));
        }
    }

    #[test]
    fn with_enough_directions_the_randomized_svd_is_exact() {
        let a = test_matrix(30, 20, 9);
        let (rows, cols) = sparse(&a);
        let got = randomized_svd(&rows, &cols, 20, 0, 0, 3);
        let rebuilt = (&got.u * &got.s).dot(&got.v.t());
        assert!((&rebuilt - &a).iter().all(|d| d.abs() < 1e-9));
    }

    #[test]
    fn pure_svd_excludes_seen_movies_and_folds_in_new_users() {
        let rows: Vec<(i64, i64, f32, i64)> = (1..=30)
            .flat_map(|u| (1..=12).filter(move |i| (u + i) % 3 != 0).map(move |i| (u, i, ((u * i) % 5 + 1) as f32, 0)))
            .collect();
        let ratings = Ratings::from_rows(rows).unwrap();
        let svd = TruncatedSvd::builder().rank(4).build().unwrap().fit(&ratings).unwrap();
        for u in ratings.user_ids().ids() {
            let seen: Vec<ItemId> = ratings.iter().filter(|r| r.user == *u).map(|r| r.item).collect();
            let got = svd.recommend(*u, &Query::top(20));
            assert_eq!(got.len(), 12 - seen.len());
            assert!(got.iter().all(|s| !seen.contains(&s.item)));
        }
        // Folding a training user's own ratings in reproduces U Σ for that user.
        let u = 7i64;
        let rated: Vec<(ItemId, f32)> = ratings.iter().filter(|r| r.user == u).map(|r| (r.item, r.value)).collect();
        let folded = svd.fold_in(&rated);
        let direct = svd.user_vector(svd.user_ids.index(u).unwrap());
        assert!(folded.iter().zip(&direct).all(|(a, b)| (a - b).abs() < 1e-3), "{folded:?} vs {direct:?}");
    }
}
