//! Top-N selection: what a request may return (size, exclusions, filters) and the bounded
//! heap that picks the best candidates without sorting the catalogue.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};
use std::fmt;

use crate::ids::ItemId;
use crate::panel::PANEL;

/// A movie and its score (a predicted rating, a similarity, a popularity), best first in lists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// MovieLens movie id.
    pub item: ItemId,
    /// Higher is better; comparable only within one list.
    pub score: f32,
}

/// What a top-N request may return.
///
/// Checks run only on candidates that would enter the current top-N, so exclusions and
/// filters cost almost nothing however long the catalogue is. Genres are not known to the
/// models: pass them as an allowed set or a predicate.
#[derive(Clone)]
pub struct Query<'a> {
    n: usize,
    exclude: Vec<ItemId>,
    allowed: Option<&'a HashSet<ItemId>>,
    filter: Option<&'a dyn Fn(ItemId) -> bool>,
    exclude_seen: bool,
}

impl fmt::Debug for Query<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("n", &self.n)
            .field("exclude", &self.exclude)
            .field("allowed", &self.allowed.map(HashSet::len))
            .field("filter", &self.filter.is_some())
            .field("exclude_seen", &self.exclude_seen)
            .finish()
    }
}

impl<'a> Query<'a> {
    /// The best `n` movies, excluding those the user already rated.
    pub fn top(n: usize) -> Self {
        Self { n, exclude: Vec::new(), allowed: None, filter: None, exclude_seen: true }
    }

    /// Never return these movies (e.g. already shown, or the query movie itself).
    pub fn exclude(mut self, items: impl IntoIterator<Item = ItemId>) -> Self {
        self.exclude.extend(items);
        self.exclude.sort_unstable();
        self.exclude.dedup();
        self
    }

    /// Only return movies in `allowed` (e.g. the movies of one genre).
    pub fn within(mut self, allowed: &'a HashSet<ItemId>) -> Self {
        self.allowed = Some(allowed);
        self
    }

    /// Only return movies for which `keep` is true.
    pub fn filter(mut self, keep: &'a dyn Fn(ItemId) -> bool) -> Self {
        self.filter = Some(keep);
        self
    }

    /// Also return movies the user already rated (re-watch lists, evaluation of raw scores).
    pub fn include_seen(mut self) -> Self {
        self.exclude_seen = false;
        self
    }

    /// The same query for `n` movies (e.g. a wider candidate list to re-rank).
    pub fn with_n(mut self, n: usize) -> Self {
        self.n = n;
        self
    }

    /// How many movies to return at most.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Whether already-rated movies are excluded.
    pub fn excludes_seen(&self) -> bool {
        self.exclude_seen
    }

    /// Whether `item` passes the exclude list, the allowed set and the filter (seen movies are
    /// checked separately, by the model that knows them).
    #[inline]
    pub fn accepts(&self, item: ItemId) -> bool {
        self.exclude.binary_search(&item).is_err()
            && self.allowed.is_none_or(|s| s.contains(&item))
            && self.filter.is_none_or(|f| f(item))
    }
}

/// Heap entry ordered so that the *worst* candidate is the maximum: lower score, then larger
/// id (ties go to the smaller movie id, as the evaluation protocol ranks them).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Worst(Scored);

impl Eq for Worst {}

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.score.total_cmp(&self.0.score).then(self.0.item.cmp(&other.0.item))
    }
}

impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Keeps the best `n` of a stream of scored movies.
#[derive(Debug)]
pub(crate) struct Selector {
    n: usize,
    heap: BinaryHeap<Worst>,
}

impl Selector {
    pub(crate) fn new(n: usize) -> Self {
        Self { n, heap: BinaryHeap::with_capacity(n + 1) }
    }

    /// Scores below this can never enter; `-inf` until `n` movies are held.
    #[inline]
    pub(crate) fn floor(&self) -> f32 {
        match self.heap.peek() {
            Some(w) if self.heap.len() >= self.n => w.0.score,
            _ if self.n == 0 => f32::INFINITY,
            _ => f32::NEG_INFINITY,
        }
    }

    /// Whether `(item, score)` would enter the current top-N.
    #[inline]
    pub(crate) fn admits(&self, item: ItemId, score: f32) -> bool {
        if score.is_nan() || self.n == 0 {
            return false;
        }
        match self.heap.peek() {
            Some(w) if self.heap.len() >= self.n => score > w.0.score || (score == w.0.score && item < w.0.item),
            _ => true,
        }
    }

    /// Inserts a candidate that [`Self::admits`] accepted.
    #[inline]
    pub(crate) fn push(&mut self, item: ItemId, score: f32) {
        if self.heap.len() >= self.n {
            self.heap.pop();
        }
        self.heap.push(Worst(Scored { item, score }));
    }

    /// Offers a candidate, running `passes` only when it would enter.
    #[inline]
    pub(crate) fn offer(&mut self, item: ItemId, score: f32, passes: impl FnOnce() -> bool) {
        if self.admits(item, score) && passes() {
            self.push(item, score);
        }
    }

    /// Offers one scored panel of dense rows `base..base + PANEL` (capped at `rows`), adding
    /// `offset` to every score. `seen` is sorted dense indices; `id` maps a dense row to its
    /// movie id (`None` for a free slot).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn offer_panel(
        &mut self,
        base: usize,
        rows: usize,
        scores: &[f32; PANEL],
        offset: f32,
        seen: &[u32],
        query: &Query<'_>,
        id: impl Fn(usize) -> Option<ItemId>,
    ) {
        let floor = self.floor() - offset;
        // Most panels hold nothing good enough once the list is full: one vectorised max
        // rejects them without touching lanes one by one (NaN scores never win here).
        let best = scores.iter().fold(f32::NEG_INFINITY, |m, &s| if s > m { s } else { m });
        if best < floor {
            return;
        }
        let end = PANEL.min(rows.saturating_sub(base));
        for (lane, &s) in scores[..end].iter().enumerate() {
            if s < floor {
                continue;
            }
            let row = base + lane;
            let Some(item) = id(row) else { continue };
            let score = s + offset;
            self.offer(item, score, || {
                !(query.exclude_seen && seen.binary_search(&(row as u32)).is_ok()) && query.accepts(item)
            });
        }
    }

    /// The held movies, best first.
    pub(crate) fn into_sorted(self) -> Vec<Scored> {
        let mut v: Vec<Scored> = self.heap.into_vec().into_iter().map(|w| w.0).collect();
        v.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
        v
    }
}

/// Best `query.n()` of `(item, score)` pairs that pass the query (not the seen check).
#[cfg(test)]
pub(crate) fn select(candidates: impl IntoIterator<Item = (ItemId, f32)>, query: &Query<'_>) -> Vec<Scored> {
    let mut sel = Selector::new(query.n());
    for (item, score) in candidates {
        sel.offer(item, score, || query.accepts(item));
    }
    sel.into_sorted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_keeps_the_best_and_breaks_ties_toward_smaller_ids() {
        let got = select([(5, 1.0), (3, 2.0), (9, 2.0), (1, 0.5), (2, 2.0), (4, f32::NAN)], &Query::top(3));
        let ids: Vec<_> = got.iter().map(|s| s.item).collect();
        assert_eq!(ids, vec![2, 3, 9]);
    }

    #[test]
    fn exclude_list_allowed_set_and_filter_all_hold() {
        let allowed: HashSet<ItemId> = (0..100).filter(|i| i % 2 == 0).collect();
        let not_div_by_3 = |i: ItemId| i % 3 != 0;
        let q = Query::top(5).exclude([98, 96]).within(&allowed).filter(&not_div_by_3);
        let got = select((0..100).map(|i| (i, i as f32)), &q);
        let ids: Vec<_> = got.iter().map(|s| s.item).collect();
        assert_eq!(ids, vec![94, 92, 88, 86, 82]);
    }

    #[test]
    fn zero_n_returns_nothing() {
        assert!(select([(1, 1.0)], &Query::top(0)).is_empty());
    }
}
