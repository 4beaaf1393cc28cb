//! "Because you rated X": which of a user's ratings pushed a recommendation up.

use crate::ids::ItemId;

/// One rated movie behind a recommendation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reason {
    /// The movie the user rated.
    pub item: ItemId,
    /// The stars they gave it.
    pub rating: f32,
    /// Similarity of that movie to the recommended one times the rating's deviation from the
    /// user's (damped) mean: a loved similar movie weighs most. Always > 0.
    pub weight: f32,
}

/// Ratings a damped user mean trusts as much as the user's own ratings: one 5-star rating
/// should still read as "liked", not as the user's average.
const MEAN_DAMPING: f32 = 5.0;

/// Ranks the user's rated movies by `similarity × (rating − damped user mean)`, keeping the `n`
/// with the largest positive weight. `rated` yields (movie, stars, similarity to the target).
pub(crate) fn reasons(rated: impl Iterator<Item = (ItemId, f32, f32)>, global_mean: f32, n: usize) -> Vec<Reason> {
    let rated: Vec<(ItemId, f32, f32)> = rated.collect();
    let sum: f32 = rated.iter().map(|r| r.1).sum();
    let mean = (sum + MEAN_DAMPING * global_mean) / (rated.len() as f32 + MEAN_DAMPING);
    let mut out: Vec<Reason> = rated
        .into_iter()
        .map(|(item, rating, sim)| Reason { item, rating, weight: sim * (rating - mean) })
        .filter(|r| r.weight > 0.0 && r.weight.is_finite())
        .collect();
    out.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.item.cmp(&b.item)));
    out.truncate(n);
    out
}

/// Cosine of two equally long vectors (0 when either is zero).
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut d, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 { 0.0 } else { d / (na.sqrt() * nb.sqrt()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loved_similar_movie_explains_more_than_a_disliked_or_unrelated_one() {
        let rated = [(1, 5.0, 0.9), (2, 1.0, 0.95), (3, 5.0, 0.1), (4, 4.5, 0.8)];
        let got = reasons(rated.into_iter(), 3.5, 10);
        let ids: Vec<_> = got.iter().map(|r| r.item).collect();
        assert_eq!(ids, vec![1, 4, 3]);
    }
}
