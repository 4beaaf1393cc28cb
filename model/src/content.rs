//! Content similarity from movie features (genres, tags): how a movie with no ratings yet
//! still gets "similar movies", until collaborative signals take over.

use std::collections::HashMap;

use crate::ids::{IdBuildHasher, ItemId};
use crate::topn::{Query, Scored, Selector};

/// TF-IDF vectors of movie feature sets with an inverted index, so a query touches only the
/// movies sharing a feature with it.
///
/// Features are opaque strings; prefix them to keep kinds apart (`"genre:Drama"`,
/// `"tag:time travel"`). Rare features weigh more (IDF): sharing "tag:pixar" says more than
/// sharing "genre:Drama".
#[derive(Debug, Clone, Default)]
pub struct ContentIndex {
    ids: Vec<ItemId>,
    index: HashMap<ItemId, u32, IdBuildHasher>,
    vocab: HashMap<String, u32>,
    idf: Vec<f32>,
    /// Per movie: (feature, unit-normalised TF-IDF weight).
    vectors: Vec<Vec<(u32, f32)>>,
    /// Per feature: (movie, weight).
    postings: Vec<Vec<(u32, f32)>>,
    /// Per movie: additive prior (see [`Self::with_prior`]).
    prior: Vec<f32>,
}

impl ContentIndex {
    /// Indexes `(movie, features)` pairs; repeated movies have their features merged and
    /// repeated features count once.
    pub fn build<I, F, S>(items: I) -> Self
    where
        I: IntoIterator<Item = (ItemId, F)>,
        F: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut me = Self::default();
        let mut raw: Vec<Vec<u32>> = Vec::new();
        for (item, features) in items {
            let slot = *me.index.entry(item).or_insert_with(|| {
                me.ids.push(item);
                raw.push(Vec::new());
                (me.ids.len() - 1) as u32
            }) as usize;
            for f in features {
                let next = me.vocab.len() as u32;
                let id = *me.vocab.entry(f.as_ref().to_owned()).or_insert(next);
                raw[slot].push(id);
            }
        }
        let mut df = vec![0u32; me.vocab.len()];
        for feats in &mut raw {
            feats.sort_unstable();
            feats.dedup();
            feats.iter().for_each(|&f| df[f as usize] += 1);
        }
        let n = me.ids.len() as f32;
        me.idf = df.iter().map(|&d| ((n + 1.0) / (d as f32 + 1.0)).ln() + 1.0).collect();
        me.postings = vec![Vec::new(); me.vocab.len()];
        me.vectors = raw
            .iter()
            .enumerate()
            .map(|(slot, feats)| {
                let norm = feats.iter().map(|&f| me.idf[f as usize].powi(2)).sum::<f32>().sqrt();
                let v: Vec<(u32, f32)> = feats.iter().map(|&f| (f, me.idf[f as usize] / norm)).collect();
                for &(f, w) in &v {
                    me.postings[f as usize].push((slot as u32, w));
                }
                v
            })
            .collect();
        me.prior = vec![0.0; me.ids.len()];
        me
    }

    /// Adds `weight × prior(movie)` to every similarity, e.g. `0.05 × popularity prior`, so
    /// among equally similar movies the well-known ones come first.
    pub fn with_prior(mut self, weight: f32, prior: impl Fn(ItemId) -> f32) -> Self {
        self.prior = self.ids.iter().map(|&id| weight * prior(id)).collect();
        self
    }

    /// Number of indexed movies.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no movie is indexed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether `item` is indexed.
    pub fn contains(&self, item: ItemId) -> bool {
        self.index.contains_key(&item)
    }

    /// Movies sharing the most (IDF-weighted) features with `item`, never `item` itself;
    /// empty if it is not indexed.
    pub fn similar(&self, item: ItemId, query: &Query<'_>) -> Vec<Scored> {
        let Some(&slot) = self.index.get(&item) else { return Vec::new() };
        self.score(&self.vectors[slot as usize], Some(slot), query)
    }

    /// Movies most similar to a feature set, e.g. a new movie not indexed yet. Features the
    /// index has never seen are ignored.
    pub fn similar_to<S: AsRef<str>>(&self, features: &[S], query: &Query<'_>) -> Vec<Scored> {
        let mut feats: Vec<u32> = features.iter().filter_map(|f| self.vocab.get(f.as_ref()).copied()).collect();
        feats.sort_unstable();
        feats.dedup();
        let norm = feats.iter().map(|&f| self.idf[f as usize].powi(2)).sum::<f32>().sqrt();
        let v: Vec<(u32, f32)> = feats.iter().map(|&f| (f, self.idf[f as usize] / norm)).collect();
        self.score(&v, None, query)
    }

    fn score(&self, v: &[(u32, f32)], skip: Option<u32>, query: &Query<'_>) -> Vec<Scored> {
        let mut acc: HashMap<u32, f32, IdBuildHasher> = HashMap::default();
        for &(f, w) in v {
            for &(slot, w2) in &self.postings[f as usize] {
                *acc.entry(slot).or_insert(0.0) += w * w2;
            }
        }
        let mut sel = Selector::new(query.n());
        for (slot, cos) in acc {
            if Some(slot) == skip {
                continue;
            }
            let item = self.ids[slot as usize];
            sel.offer(item, cos + self.prior[slot as usize], || query.accepts(item));
        }
        sel.into_sorted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> ContentIndex {
        ContentIndex::build([
            (1, vec!["genre:Animation", "genre:Comedy", "tag:pixar"]),
            (2, vec!["genre:Animation", "genre:Comedy", "tag:pixar"]),
            (3, vec!["genre:Comedy", "genre:Romance"]),
            (4, vec!["genre:Horror"]),
            (5, vec!["genre:Animation", "genre:Comedy"]),
        ])
    }

    #[test]
    fn a_new_movie_gets_content_similar_movies() {
        let idx = index();
        let got = idx.similar_to(&["genre:Animation", "tag:pixar", "tag:never-seen"], &Query::top(10));
        let ids: Vec<_> = got.iter().map(|s| s.item).collect();
        assert_eq!(&ids[..2], &[1, 2]);
        assert_eq!(ids[2], 5);
        assert!(!ids.contains(&4), "no shared feature, not similar: {ids:?}");
    }

    #[test]
    fn an_indexed_movie_is_never_similar_to_itself_and_filters_hold() {
        let idx = index();
        let got = idx.similar(1, &Query::top(10).exclude([2]));
        let ids: Vec<_> = got.iter().map(|s| s.item).collect();
        assert_eq!(ids, vec![5, 3]);
    }

    #[test]
    fn the_prior_breaks_ties_between_equally_similar_movies() {
        let idx = index().with_prior(0.01, |id| if id == 2 { 1.0 } else { 0.0 });
        let got = idx.similar_to(&["tag:pixar"], &Query::top(2));
        assert_eq!(got[0].item, 2);
    }
}
