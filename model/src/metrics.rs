//! Rating-prediction and top-N metrics, as `EVALUATION.md` defines them: used by `evaluate`
//! and by the pipeline's holdout check, so offline and production figures are computed alike.

use std::collections::HashSet;

use crate::ItemId;

/// The rating scale predictions are clipped to before scoring.
pub const RATING_RANGE: (f32, f32) = (0.5, 5.0);

/// A prediction clipped to [`RATING_RANGE`].
pub fn clip(prediction: f32) -> f32 {
    prediction.clamp(RATING_RANGE.0, RATING_RANGE.1)
}

/// Running sums behind RMSE and MAE.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Errors {
    n: u64,
    squared: f64,
    absolute: f64,
}

impl Errors {
    /// Adds one prediction (already clipped) and its true rating.
    pub fn add(&mut self, prediction: f32, truth: f32) {
        let e = f64::from(prediction) - f64::from(truth);
        self.n += 1;
        self.squared += e * e;
        self.absolute += e.abs();
    }

    /// Predictions added.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Root mean squared error; NaN when empty.
    pub fn rmse(&self) -> f64 {
        (self.squared / self.n as f64).sqrt()
    }

    /// Mean absolute error; NaN when empty.
    pub fn mae(&self) -> f64 {
        self.absolute / self.n as f64
    }
}

/// Mean and population standard deviation; NaN for an empty slice.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// One user's top-K scores with binary relevance.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UserRanking {
    /// hits / K.
    pub precision: f64,
    /// hits / |R|.
    pub recall: f64,
    /// DCG / IDCG, IDCG over min(|R|, K) hits.
    pub ndcg: f64,
    /// (1 / min(|R|, K)) Σ rel_j · hits_in_top_j / j.
    pub average_precision: f64,
    /// 1 if any hit.
    pub hit: f64,
}

/// Scores a list (best first, at most `k` long is used) against the relevant set `relevant`
/// (non-empty). A list shorter than `k` still divides precision by `k`.
pub fn rank_user(list: &[ItemId], relevant: &HashSet<ItemId>, k: usize) -> UserRanking {
    let mut hits = 0usize;
    let (mut dcg, mut ap) = (0.0, 0.0);
    for (j, item) in list.iter().take(k).enumerate() {
        if relevant.contains(item) {
            hits += 1;
            dcg += 1.0 / ((j + 2) as f64).log2();
            ap += hits as f64 / (j + 1) as f64;
        }
    }
    let ideal = relevant.len().min(k);
    let idcg: f64 = (0..ideal).map(|j| 1.0 / ((j + 2) as f64).log2()).sum();
    UserRanking {
        precision: hits as f64 / k as f64,
        recall: hits as f64 / relevant.len() as f64,
        ndcg: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        average_precision: if ideal > 0 { ap / ideal as f64 } else { 0.0 },
        hit: if hits > 0 { 1.0 } else { 0.0 },
    }
}

/// Unweighted means of [`UserRanking`]s over users, plus catalogue coverage.
#[derive(Debug, Clone, Default)]
pub struct Ranking {
    users: usize,
    sum: UserRanking,
    recommended: HashSet<ItemId>,
}

impl Ranking {
    /// Adds one evaluated user's list and scores.
    pub fn add(&mut self, list: &[ItemId], scores: UserRanking) {
        self.users += 1;
        self.sum.precision += scores.precision;
        self.sum.recall += scores.recall;
        self.sum.ndcg += scores.ndcg;
        self.sum.average_precision += scores.average_precision;
        self.sum.hit += scores.hit;
        self.recommended.extend(list.iter().copied());
    }

    /// Users added.
    pub fn users(&self) -> usize {
        self.users
    }

    /// The mean of each metric over users.
    pub fn means(&self) -> UserRanking {
        let n = self.users as f64;
        UserRanking {
            precision: self.sum.precision / n,
            recall: self.sum.recall / n,
            ndcg: self.sum.ndcg / n,
            average_precision: self.sum.average_precision / n,
            hit: self.sum.hit / n,
        }
    }

    /// Distinct recommended movies over the size of the candidate universe.
    pub fn coverage(&self, universe: usize) -> f64 {
        self.recommended.len() as f64 / universe as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn rmse_and_mae_of_known_errors() {
        let mut e = Errors::default();
        e.add(clip(6.0), 4.0); // clipped to 5: error 1
        e.add(3.0, 4.0); // error -1
        e.add(2.0, 4.0); // error -2
        e.add(4.0, 4.0); // error 0
        close(e.rmse(), (6.0f64 / 4.0).sqrt());
        close(e.mae(), 1.0);
        assert_eq!(e.len(), 4);
    }

    #[test]
    fn std_is_the_population_std() {
        let (m, s) = mean_std(&[1.0, 3.0]);
        close(m, 2.0);
        close(s, 1.0);
    }

    #[test]
    fn ranking_metrics_of_a_hand_computed_list() {
        // Relevant {1, 3, 5}; list 1, 2, 3, 4 at K = 4: hits at ranks 1 and 3.
        let relevant: HashSet<ItemId> = [1, 3, 5].into();
        let r = rank_user(&[1, 2, 3, 4], &relevant, 4);
        close(r.precision, 0.5);
        close(r.recall, 2.0 / 3.0);
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        close(r.ndcg, dcg / idcg);
        close(r.average_precision, (1.0 + 2.0 / 3.0) / 3.0);
        close(r.hit, 1.0);
    }

    #[test]
    fn ideal_gain_is_capped_at_k_and_a_miss_scores_zero() {
        let relevant: HashSet<ItemId> = (1..=20).collect();
        let r = rank_user(&[1, 2], &relevant, 2);
        close(r.ndcg, 1.0);
        close(r.average_precision, 1.0);
        close(r.recall, 0.1);
        let miss = rank_user(&[30, 31], &relevant, 2);
        assert_eq!(miss, UserRanking::default());
    }

    #[test]
    fn short_lists_still_divide_precision_by_k() {
        let relevant: HashSet<ItemId> = [7].into();
        let r = rank_user(&[7], &relevant, 10);
        close(r.precision, 0.1);
        close(r.ndcg, 1.0);
    }

    #[test]
    fn means_are_unweighted_and_coverage_counts_distinct_movies() {
        let relevant: HashSet<ItemId> = [1].into();
        let mut acc = Ranking::default();
        acc.add(&[1, 2], rank_user(&[1, 2], &relevant, 2));
        acc.add(&[2, 3], rank_user(&[2, 3], &relevant, 2));
        close(acc.means().precision, 0.25);
        close(acc.means().hit, 0.5);
        close(acc.coverage(6), 0.5);
    }
}
