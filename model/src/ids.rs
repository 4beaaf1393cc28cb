//! MovieLens ids at the API boundary, dense `u32` indices inside.
//!
//! Dense indices let factors live in contiguous matrices; ids are assigned in ascending id
//! order so a model does not depend on the order its ratings arrived in.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A MovieLens `userId`.
pub type UserId = i64;
/// A MovieLens `movieId`; "item" in the model's vocabulary.
pub type ItemId = i64;

/// A fast hasher for integer ids (one multiply and a fold), instead of SipHash: ids are not
/// attacker-chosen keys here and hashing sits on the per-event hot path.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Fold the high half down: hashbrown takes bucket bits from the low end and dashmap
        // its shard from the high end; both need to see the multiply's mixing.
        let x = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^ (x >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(32) ^ n).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

/// `BuildHasher` for [`IdHasher`], usable with `HashMap` and `DashMap`.
pub type IdBuildHasher = BuildHasherDefault<IdHasher>;

/// Bidirectional map between external ids and dense indices `0..len`. Serialised as its
/// sorted ids; the index is rebuilt on load.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(from = "Vec<i64>", into = "Vec<i64>")]
pub struct IdMap {
    ids: Vec<i64>,
    index: HashMap<i64, u32, IdBuildHasher>,
}

impl IdMap {
    /// Maps distinct ids, already sorted ascending, to `0..ids.len()`.
    pub(crate) fn from_sorted(ids: Vec<i64>) -> Self {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let mut index = HashMap::with_capacity_and_hasher(ids.len(), IdBuildHasher::default());
        for (i, &id) in ids.iter().enumerate() {
            index.insert(id, i as u32);
        }
        Self { ids, index }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Dense index of `id`, if known.
    #[inline]
    pub fn index(&self, id: i64) -> Option<u32> {
        self.index.get(&id).copied()
    }

    /// External id of dense index `index`.
    ///
    /// # Panics
    /// If `index >= len()`.
    #[inline]
    pub fn id(&self, index: u32) -> i64 {
        self.ids[index as usize]
    }

    /// All ids, ascending (position = dense index).
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }
}

impl From<Vec<i64>> for IdMap {
    fn from(mut ids: Vec<i64>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        Self::from_sorted(ids)
    }
}

impl From<IdMap> for Vec<i64> {
    fn from(map: IdMap) -> Self {
        map.ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_dense_indices() {
        let map = IdMap::from_sorted(vec![-3, 7, 1_000_000_007]);
        for (i, &id) in map.ids().iter().enumerate() {
            assert_eq!(map.index(id), Some(i as u32));
            assert_eq!(map.id(i as u32), id);
        }
        assert_eq!(map.index(8), None);
    }

    #[test]
    fn id_hasher_spreads_consecutive_ids_over_high_and_low_bits() {
        let hashes: Vec<u64> = (0..1024i64)
            .map(|id| {
                let mut h = IdHasher::default();
                h.write_i64(id);
                h.finish()
            })
            .collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 63).collect();
        let high: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 58).collect();
        assert!(low.len() == 64 && high.len() == 64, "{} {}", low.len(), high.len());
    }
}
