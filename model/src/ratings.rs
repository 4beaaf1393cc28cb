//! The in-memory ratings container every batch model fits on.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::error::ModelError;
use crate::ids::{IdBuildHasher, IdMap, ItemId, UserId};

/// One rating event at the API boundary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rating {
    /// MovieLens user id.
    pub user: UserId,
    /// MovieLens movie id.
    pub item: ItemId,
    /// Stars, e.g. 0.5 to 5.0.
    pub value: f32,
    /// Unix seconds; decides which of two ratings of the same pair wins.
    pub timestamp: i64,
}

impl From<(UserId, ItemId, f32, i64)> for Rating {
    fn from((user, item, value, timestamp): (UserId, ItemId, f32, i64)) -> Self {
        Self { user, item, value, timestamp }
    }
}

/// All ratings, one per (user, movie), stored column-wise and grouped by user (then by movie)
/// so per-user rows are slices and the arrays stream well through SGD and sparse products.
///
/// A pair rated twice keeps the newer rating (the later row on equal timestamps), the same
/// rule the store applies, so replayed or corrected events cannot double-count.
#[derive(Debug, Clone)]
pub struct Ratings {
    user_ids: IdMap,
    item_ids: IdMap,
    user_offsets: Vec<usize>,
    users: Vec<u32>,
    items: Vec<u32>,
    values: Vec<f32>,
    timestamps: Vec<i64>,
    /// Built on first use and shared by every model fitted on these ratings.
    seen: OnceLock<Arc<Seen>>,
}

/// Compressed sparse rows: row `r` is `indices[offsets[r]..offsets[r + 1]]` with `values`.
#[derive(Debug, Clone)]
pub(crate) struct Csr {
    pub(crate) offsets: Vec<usize>,
    pub(crate) indices: Vec<u32>,
    pub(crate) values: Vec<f32>,
}

impl Csr {
    pub(crate) fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    #[inline]
    pub(crate) fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.offsets[r], self.offsets[r + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }
}

fn intern(map: &mut HashMap<i64, u32, IdBuildHasher>, raw: &mut Vec<i64>, id: i64) -> u32 {
    *map.entry(id).or_insert_with(|| {
        raw.push(id);
        (raw.len() - 1) as u32
    })
}

/// Turns first-seen indices into ascending-id indices: returns the sorted ids and, for each
/// first-seen index, its final index.
fn sorted_remap(raw: Vec<i64>) -> (Vec<i64>, Vec<u32>) {
    let mut order: Vec<u32> = (0..raw.len() as u32).collect();
    order.sort_unstable_by_key(|&i| raw[i as usize]);
    let mut remap = vec![0u32; raw.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old as usize] = new as u32;
    }
    let ids = order.iter().map(|&i| raw[i as usize]).collect();
    (ids, remap)
}

impl Ratings {
    /// Collects rating rows, e.g. `(user_id, movie_id, rating, timestamp)` tuples.
    ///
    /// # Errors
    /// [`ModelError::InvalidRating`] for a NaN or infinite rating; [`ModelError::TooManyIds`]
    /// beyond `u32::MAX` users, movies or rows.
    pub fn from_rows<R: Into<Rating>>(rows: impl IntoIterator<Item = R>) -> Result<Self, ModelError> {
        let rows = rows.into_iter();
        let hint = rows.size_hint().0;
        let mut user_map = HashMap::with_hasher(IdBuildHasher::default());
        let mut item_map = HashMap::with_hasher(IdBuildHasher::default());
        let (mut raw_users, mut raw_items) = (Vec::new(), Vec::new());
        let mut us = Vec::with_capacity(hint);
        let mut is = Vec::with_capacity(hint);
        let mut vs = Vec::with_capacity(hint);
        let mut ts = Vec::with_capacity(hint);
        for row in rows {
            let r: Rating = row.into();
            if !r.value.is_finite() {
                return Err(ModelError::InvalidRating {
                    user: r.user,
                    item: r.item,
                    value: r.value,
                    min: f32::MIN,
                    max: f32::MAX,
                });
            }
            if us.len() >= u32::MAX as usize {
                return Err(ModelError::TooManyIds { what: "ratings", max: u32::MAX as usize });
            }
            us.push(intern(&mut user_map, &mut raw_users, r.user));
            is.push(intern(&mut item_map, &mut raw_items, r.item));
            vs.push(r.value);
            ts.push(r.timestamp);
        }
        drop((user_map, item_map));
        let (user_ids, user_remap) = sorted_remap(raw_users);
        let (item_ids, item_remap) = sorted_remap(raw_items);
        for u in &mut us {
            *u = user_remap[*u as usize];
        }
        for i in &mut is {
            *i = item_remap[*i as usize];
        }
        drop((user_remap, item_remap));

        // Counting sort by user (stable in arrival order), then per user by (movie, time).
        let n_users = user_ids.len();
        let mut starts = vec![0usize; n_users + 1];
        for &u in &us {
            starts[u as usize + 1] += 1;
        }
        for u in 0..n_users {
            starts[u + 1] += starts[u];
        }
        let mut next = starts.clone();
        let mut perm = vec![0u32; us.len()];
        for (row, &u) in us.iter().enumerate() {
            perm[next[u as usize]] = row as u32;
            next[u as usize] += 1;
        }
        drop(next);
        let mut keep = Vec::with_capacity(perm.len());
        let mut user_offsets = Vec::with_capacity(n_users + 1);
        user_offsets.push(0);
        for u in 0..n_users {
            let seg = &mut perm[starts[u]..starts[u + 1]];
            seg.sort_by_key(|&row| (is[row as usize], ts[row as usize]));
            for (j, &row) in seg.iter().enumerate() {
                let last_of_pair = seg.get(j + 1).is_none_or(|&nxt| is[nxt as usize] != is[row as usize]);
                if last_of_pair {
                    keep.push(row);
                }
            }
            user_offsets.push(keep.len());
        }
        drop(perm);
        let users = keep.iter().map(|&r| us[r as usize]).collect();
        let items = keep.iter().map(|&r| is[r as usize]).collect();
        let values = keep.iter().map(|&r| vs[r as usize]).collect();
        let timestamps = keep.iter().map(|&r| ts[r as usize]).collect();
        Ok(Self {
            user_ids: IdMap::from_sorted(user_ids),
            item_ids: IdMap::from_sorted(item_ids),
            user_offsets,
            users,
            items,
            values,
            timestamps,
            seen: OnceLock::new(),
        })
    }

    /// Number of (user, movie) ratings after de-duplication.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no ratings.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of distinct users.
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    /// Number of distinct movies.
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }

    /// User id <-> dense index.
    pub fn user_ids(&self) -> &IdMap {
        &self.user_ids
    }

    /// Movie id <-> dense index.
    pub fn item_ids(&self) -> &IdMap {
        &self.item_ids
    }

    /// Dense user index of each rating.
    pub fn users(&self) -> &[u32] {
        &self.users
    }

    /// Dense movie index of each rating.
    pub fn items(&self) -> &[u32] {
        &self.items
    }

    /// Stars of each rating.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Unix seconds of each rating.
    pub fn timestamps(&self) -> &[i64] {
        &self.timestamps
    }

    /// The ratings of dense user `user`: movie indices (ascending), stars, timestamps.
    ///
    /// # Panics
    /// If `user >= n_users()`.
    pub fn user_row(&self, user: u32) -> (&[u32], &[f32], &[i64]) {
        let (a, b) = (self.user_offsets[user as usize], self.user_offsets[user as usize + 1]);
        (&self.items[a..b], &self.values[a..b], &self.timestamps[a..b])
    }

    /// Mean of all ratings (0 when empty), accumulated in `f64`.
    pub fn global_mean(&self) -> f32 {
        if self.is_empty() {
            return 0.0;
        }
        (self.values.iter().map(|&v| f64::from(v)).sum::<f64>() / self.len() as f64) as f32
    }

    /// Lowest and highest rating, used to clip predictions; `None` when empty.
    pub fn value_range(&self) -> Option<(f32, f32)> {
        let min = self.values.iter().copied().reduce(f32::min)?;
        let max = self.values.iter().copied().reduce(f32::max)?;
        Some((min, max))
    }

    /// Latest timestamp, the "now" of recency weighting when none is given.
    pub fn latest_timestamp(&self) -> Option<i64> {
        self.timestamps.iter().copied().max()
    }

    /// Iterates the ratings with external ids, grouped by user.
    pub fn iter(&self) -> impl Iterator<Item = Rating> + '_ {
        (0..self.len()).map(move |j| Rating {
            user: self.user_ids.id(self.users[j]),
            item: self.item_ids.id(self.items[j]),
            value: self.values[j],
            timestamp: self.timestamps[j],
        })
    }

    /// Rows = users, columns = movie indices, values mapped by `f(user, item, value)`.
    pub(crate) fn by_user_with(&self, f: impl Fn(u32, u32, f32) -> f32) -> Csr {
        let values = (0..self.len()).map(|j| f(self.users[j], self.items[j], self.values[j])).collect();
        Csr { offsets: self.user_offsets.clone(), indices: self.items.clone(), values }
    }

    /// Rows = movies, columns = user indices (ascending), values mapped by `f(user, item, value)`.
    pub(crate) fn by_item_with(&self, f: impl Fn(u32, u32, f32) -> f32) -> Csr {
        let (offsets, order) = self.by_item_order();
        let indices = order.iter().map(|&j| self.users[j]).collect();
        let values = order.iter().map(|&j| f(self.users[j], self.items[j], self.values[j])).collect();
        Csr { offsets, indices, values }
    }

    /// The ratings grouped by movie: movie `i`'s are the rating positions
    /// `order[offsets[i]..offsets[i + 1]]`, users ascending. Returns `(offsets, order)`.
    pub(crate) fn by_item_order(&self) -> (Vec<usize>, Vec<usize>) {
        let n_items = self.n_items();
        let mut offsets = vec![0usize; n_items + 1];
        for &i in &self.items {
            offsets[i as usize + 1] += 1;
        }
        for i in 0..n_items {
            offsets[i + 1] += offsets[i];
        }
        let mut next = offsets.clone();
        let mut order = vec![0usize; self.len()];
        for (j, &i) in self.items.iter().enumerate() {
            let slot = &mut next[i as usize];
            order[*slot] = j;
            *slot += 1;
        }
        (offsets, order)
    }

    /// Number of ratings of each movie.
    pub fn item_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.n_items()];
        for &i in &self.items {
            counts[i as usize] += 1;
        }
        counts
    }

    /// The movies each user rated, ascending, with their stars: the "seen" lists top-N
    /// excludes. One copy, shared by all models fitted on these ratings.
    pub(crate) fn seen(&self) -> Arc<Seen> {
        Arc::clone(self.seen.get_or_init(|| {
            Arc::new(Seen {
                offsets: self.user_offsets.clone(),
                items: self.items.clone(),
                values: self.values.clone(),
            })
        }))
    }
}

/// Per-user sorted movie indices and their stars: what top-N excludes and explanations cite.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Seen {
    offsets: Vec<usize>,
    items: Vec<u32>,
    values: Vec<f32>,
}

impl Seen {
    pub(crate) fn of(&self, user: u32) -> &[u32] {
        self.rated(user).0
    }

    pub(crate) fn rated(&self, user: u32) -> (&[u32], &[f32]) {
        let u = user as usize;
        if u + 1 >= self.offsets.len() {
            return (&[], &[]);
        }
        let (a, b) = (self.offsets[u], self.offsets[u + 1]);
        (&self.items[a..b], &self.values[a..b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_re_rating_keeps_only_the_newest_value() {
        let r =
            Ratings::from_rows([(1, 10, 2.0, 100), (1, 10, 4.5, 300), (1, 10, 3.0, 200), (2, 10, 5.0, 50)]).unwrap();
        assert_eq!(r.len(), 2);
        let u = r.user_ids().index(1).unwrap();
        let (items, values, ts) = r.user_row(u);
        assert_eq!((items.len(), values[0], ts[0]), (1, 4.5, 300));
    }

    #[test]
    fn dense_indices_follow_ascending_ids_whatever_the_row_order() {
        let a = Ratings::from_rows([(9, 5, 1.0, 0), (3, 7, 2.0, 0), (3, 5, 3.0, 0)]).unwrap();
        let b = Ratings::from_rows([(3, 5, 3.0, 0), (9, 5, 1.0, 0), (3, 7, 2.0, 0)]).unwrap();
        assert_eq!(a.user_ids().ids(), &[3, 9]);
        assert_eq!(a.item_ids().ids(), &[5, 7]);
        assert_eq!(a.users(), b.users());
        assert_eq!(a.items(), b.items());
        assert_eq!(a.values(), b.values());
    }

    #[test]
    fn a_nan_rating_is_rejected() {
        let err = Ratings::from_rows([(1, 2, f32::NAN, 0)]).unwrap_err();
        assert!(matches!(err, ModelError::InvalidRating { user: 1, item: 2, .. }));
    }

    #[test]
    fn item_major_rows_hold_the_same_ratings() {
        let r = Ratings::from_rows([(1, 10, 2.0, 0), (2, 10, 4.0, 0), (2, 11, 5.0, 0)]).unwrap();
        let csr = r.by_item_with(|_, _, v| v);
        assert_eq!(csr.row(0), (&[0u32, 1][..], &[2.0f32, 4.0][..]));
        assert_eq!(csr.row(1), (&[1u32][..], &[5.0f32][..]));
    }
}
