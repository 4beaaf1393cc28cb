//! Item–item similarity for "similar movies": cosine between movie embeddings (MF factors or
//! `V Σ` of the SVD), damped for movies with few ratings whose embeddings are mostly noise.

use ndarray::{Array2, ArrayView2};

use crate::ids::{IdMap, ItemId};
use crate::panel::Panels;
use crate::topn::{Query, Scored, Selector};

/// Cosine similarity between movie embeddings, scored a whole catalogue at a time.
#[derive(Debug, Clone)]
pub struct ItemSimilarity {
    item_ids: IdMap,
    /// Unit rows (zero rows stay zero).
    unit: Array2<f32>,
    /// `unit` rows scaled by each movie's support weight, in panels.
    panels: Panels,
}

impl ItemSimilarity {
    /// Builds from one embedding row per dense movie index of `item_ids`.
    ///
    /// `support`: ratings per movie; with `shrink > 0` a candidate's cosine is multiplied by
    /// `n / (n + shrink)`, so a movie seen twice cannot top the list on a noisy embedding.
    ///
    /// # Panics
    /// If the row count differs from `item_ids.len()` or from `support.len()`.
    pub fn from_factors(item_ids: IdMap, factors: ArrayView2<'_, f32>, support: Option<&[u32]>, shrink: f32) -> Self {
        assert_eq!(factors.nrows(), item_ids.len(), "one embedding per movie");
        let mut unit = factors.to_owned();
        for mut row in unit.rows_mut() {
            let norm = row.dot(&row).sqrt();
            if norm > 0.0 {
                row /= norm;
            }
        }
        let mut weighted = unit.clone();
        if let Some(support) = support {
            assert_eq!(support.len(), item_ids.len(), "one support count per movie");
            if shrink > 0.0 {
                for (mut row, &n) in weighted.rows_mut().into_iter().zip(support) {
                    row *= n as f32 / (n as f32 + shrink);
                }
            }
        }
        let panels = Panels::from_rows(weighted.view(), None);
        Self { item_ids, unit, panels }
    }

    /// Movies known to the index.
    pub fn item_ids(&self) -> &IdMap {
        &self.item_ids
    }

    /// Cosine of two movies' embeddings (without support damping); `None` if either is unknown.
    pub fn similarity(&self, a: ItemId, b: ItemId) -> Option<f32> {
        let (i, j) = (self.item_ids.index(a)?, self.item_ids.index(b)?);
        Some(self.unit.row(i as usize).dot(&self.unit.row(j as usize)))
    }

    /// The movies most similar to `item` (never `item` itself); empty if it is unknown.
    pub fn similar(&self, item: ItemId, query: &Query<'_>) -> Vec<Scored> {
        let Some(i) = self.item_ids.index(item) else { return Vec::new() };
        let target = self.unit.row(i as usize).to_vec();
        self.similar_to_vector(&target, &[i], query)
    }

    /// The movies most similar to an embedding, e.g. the mean of a user's liked movies.
    /// `skip` lists dense indices never to return.
    pub(crate) fn similar_to_vector(&self, target: &[f32], skip: &[u32], query: &Query<'_>) -> Vec<Scored> {
        let mut sel = Selector::new(query.n());
        let rows = self.panels.rows();
        let ids = &self.item_ids;
        self.panels.for_each_panel(target, |base, scores| {
            // `skip` goes through the seen check, so it applies even with `include_seen`.
            sel.offer_panel(base, rows, scores, 0.0, &[], query, |r| {
                if skip.contains(&(r as u32)) { None } else { Some(ids.id(r as u32)) }
            });
        });
        sel.into_sorted()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    #[test]
    fn the_most_similar_movie_points_the_same_way_and_the_query_movie_is_skipped() {
        let ids = IdMap::from_sorted(vec![10, 20, 30, 40]);
        let f = array![[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]];
        let sim = ItemSimilarity::from_factors(ids, f.view(), None, 0.0);
        let got = sim.similar(10, &Query::top(3));
        let order: Vec<_> = got.iter().map(|s| s.item).collect();
        assert_eq!(order, vec![20, 30, 40]);
        assert!((sim.similarity(10, 40).unwrap() + 1.0).abs() < 1e-6);
    }

    #[test]
    fn rarely_rated_movies_are_damped() {
        let ids = IdMap::from_sorted(vec![1, 2, 3]);
        let f = array![[1.0, 0.0], [1.0, 0.0], [0.95, 0.3]];
        let sim = ItemSimilarity::from_factors(ids, f.view(), Some(&[100, 1, 500]), 10.0);
        let got = sim.similar(1, &Query::top(2));
        assert_eq!(got[0].item, 3, "{got:?}");
    }
}
